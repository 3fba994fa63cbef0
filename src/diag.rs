//! Located diagnostics: every error a user can fix in a file points at its line and column.
//!
//! Loading and checking collect all of them and report them together, like a compiler.
//! Rendering is miette's; the text is fixed here so snapshots and the README agree.

use crate::load::Span;
use miette::{LabeledSpan, SourceCode};
use std::fmt;
use std::sync::Arc;

/// A file as read, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    /// The 0-based number of `text`'s first line in the file: 0, except for the excerpt of a
    /// long line that a report shows (`clip`).
    first_line: usize,
    /// In such an excerpt: the line (of `text`) whose head was cut and replaced by `…`, and
    /// how many bytes were cut (miette counts columns in bytes).
    cut_head: Option<(usize, usize)>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
            first_line: 0,
            cut_head: None,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

/// One problem found in a plan, a site or a saved plan.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Namespaced and stable, e.g. `drplan::plan::unknown_key`.
    pub code: &'static str,
    pub message: String,
    /// Where: the file and the byte span of the offending node.
    pub at: Option<(SourceFile, Span)>,
    /// Short text under the caret.
    pub label: Option<String>,
    /// What the user can do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: capped(message.into()),
            at: None,
            label: None,
            help: None,
        }
    }

    pub fn at(mut self, file: &SourceFile, span: Span) -> Self {
        self.at = Some((file.clone(), span));
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(capped(label.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(capped(help.into()));
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help.map(capped).or(self.help);
        self
    }

    /// `file:line:column`, for one-line forms (JSON output, logs).
    pub fn location(&self) -> Option<(String, usize, usize)> {
        self.at.as_ref().map(|(f, s)| {
            let (l, c) = f.line_col(s.offset);
            (f.name.clone(), l, c)
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.at.as_ref().map(|(f, _)| f as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span) = self.at.as_ref()?;
        let label = LabeledSpan::new(self.label.clone(), span.offset, span.len.max(1));
        Some(Box::new(std::iter::once(label)))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        // A column after the `…` that stands for `cut` bytes.
        let column = match self.cut_head {
            Some((line, cut)) if inner.line() == line && inner.column() >= CUT.len() => {
                inner.column() - CUT.len() + cut
            }
            _ => inner.column(),
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count(),
        )))
    }
}

/// Everything wrong with an input, reported together.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// Errors sorted by file and position, so output reads top to bottom.
    pub fn sorted(mut self) -> Self {
        self.0
            .sort_by_key(|d| d.at.as_ref().map(|(f, s)| (f.name.clone(), s.offset)));
        self
    }
    /// Ok(value) when nothing was found, else the diagnostics.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `help` text for a did-you-mean, if any.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Render for the terminal (or a snapshot): miette's graphical form, colour optional. A
/// source line longer than `SHOWN_LINE` characters is shown as a window around the error.
pub fn render(diags: &Diagnostics, color: bool) -> String {
    let handler = handler(color);
    let mut out = String::new();
    for d in &diags.0 {
        let clipped = clip(d);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, clipped.as_ref().unwrap_or(d));
    }
    let n = diags.len();
    out.push_str(&format!("{n} error{}\n", if n == 1 { "" } else { "s" }));
    out
}

/// One typed error (any `miette::Diagnostic`) as the terminal shows it: code, message,
/// causes and help. With `render`, the only way drplan shows an error.
pub fn render_one(d: &dyn miette::Diagnostic, color: bool) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler(color).render_report(&mut out, d);
    out
}

/// The most characters of one source line a report shows; a longer line (a 1 MB line in a
/// hostile file) is shown as a window of about this size around the error, with `…` where
/// it was cut.
pub const SHOWN_LINE: usize = 160;

/// Where a shown line was cut.
const CUT: &str = "…";

/// The most characters of a message, label or help: they quote the file (`unknown action
/// `…``), and a hostile file's 1 MB word must not come back whole.
pub const SHOWN_MESSAGE: usize = 1000;

fn capped(text: String) -> String {
    match text.char_indices().nth(SHOWN_MESSAGE) {
        Some((end, _)) => format!("{}{CUT}", &text[..end]),
        None => text,
    }
}

/// `d` pointing into an excerpt of its file: the error's line and the one before and after
/// it, each at most `SHOWN_LINE` characters. None when every such line is short enough to
/// show whole.
fn clip(d: &Diagnostic) -> Option<Diagnostic> {
    let (file, span) = d.at.as_ref()?;
    let text: &str = &file.text;
    let at = span.offset.min(text.len());
    let line_start = |i: usize| text[..i].rfind('\n').map_or(0, |n| n + 1);
    let line_end = |i: usize| text[i..].find('\n').map_or(text.len(), |n| i + n);
    let start = line_start(at);
    let end = line_end(at);
    let first = if start == 0 { 0 } else { line_start(start - 1) };
    let last = if end == text.len() {
        end
    } else {
        line_end(end + 1)
    };
    let lines: Vec<&str> = text[first..last].split('\n').collect();
    if lines.iter().all(|l| l.chars().count() <= SHOWN_LINE) {
        return None;
    }
    let mut excerpt = String::new();
    let mut new_span = Span { offset: 0, len: 0 };
    let mut cut_head = None;
    let mut offset = first;
    for (i, line) in lines.into_iter().enumerate() {
        if !excerpt.is_empty() {
            excerpt.push('\n');
        }
        if offset == start {
            // The error's line: a window from a little before the error's column.
            let column = line[..at - start].chars().count();
            let from = column.saturating_sub(SHOWN_LINE / 3);
            let (shown, byte_from) = window(line, from, SHOWN_LINE);
            let in_window = at - start - byte_from;
            let cut_mark = if byte_from > 0 {
                cut_head = Some((i, byte_from));
                CUT.len()
            } else {
                0
            };
            new_span.offset = excerpt.len() + cut_mark + in_window;
            let room = shown.len().saturating_sub(new_span.offset - excerpt.len());
            new_span.len = span.len.min(room).max(1);
            excerpt.push_str(&shown);
        } else {
            excerpt.push_str(&window(line, 0, SHOWN_LINE).0);
        }
        offset += line.len() + 1;
    }
    let mut shown = d.clone();
    let lines_before = text[..first].matches('\n').count();
    let source = SourceFile {
        name: file.name.clone(),
        text: excerpt.into(),
        first_line: file.first_line + lines_before,
        cut_head,
    };
    shown.at = Some((source, new_span));
    Some(shown)
}

/// At most `len` characters of `line` from character `from`, with `…` where it was cut;
/// and the byte where the kept part begins.
fn window(line: &str, from: usize, len: usize) -> (String, usize) {
    let byte = |c: usize| line.char_indices().nth(c).map_or(line.len(), |(b, _)| b);
    let (a, b) = (byte(from), byte(from + len));
    let mut out = String::new();
    if a > 0 {
        out.push_str(CUT);
    }
    out.push_str(&line[a..b]);
    if b < line.len() {
        out.push_str(CUT);
    }
    (out, a)
}

fn handler(color: bool) -> miette::GraphicalReportHandler {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    // Not wrapped: a path, a run id or a command to copy must stay whole on its line; the
    // terminal wraps what is too long for it.
    miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_wrap_lines(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_for_typos_only() {
        assert_eq!(did_you_mean("nmae", ["name", "needs", "on"]), Some("name"));
        assert_eq!(
            did_you_mean("pg_stanby", ["pg_standby", "pg_primary"]),
            Some("pg_standby")
        );
        assert_eq!(did_you_mean("zzz", ["name", "needs"]), None);
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_error() {
        let long = format!("key: {}BAD{}\n", "x".repeat(500_000), "y".repeat(500_000));
        let text = format!("version: 1\n{long}last: 1\n");
        let file = SourceFile::new("plan.yaml", text.clone());
        let at = text.find("BAD").unwrap();
        let d = Diagnostic::new("drplan::test", "bad value")
            .at(&file, Span { offset: at, len: 3 })
            .label("here");
        let shown = render(&Diagnostics::from(d), false);
        assert!(shown.len() < 2_000, "{} bytes shown", shown.len());
        assert!(shown.contains("…xxx"), "{shown}");
        assert!(shown.contains("BADyyy"), "{shown}");
        assert!(shown.contains("plan.yaml:2:500006]"), "{shown}");
        assert!(
            shown.contains(" 2 │ key: …") || shown.contains(" 2 │ …"),
            "{shown}"
        );
        assert!(shown.contains(" 3 │ last: 1"), "{shown}");
        // The caret under the error: its label is shown.
        assert!(shown.contains("here"), "{shown}");
    }

    #[test]
    fn line_and_column_are_one_based() {
        let f = SourceFile::new("x", "ab\ncdé f\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(9), (2, 6));
    }
}
