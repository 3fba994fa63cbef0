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
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
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
            message: message.into(),
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
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Self {
        self.help = help.or(self.help);
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
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
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

/// Render for the terminal (or a snapshot): miette's graphical form, colour optional.
pub fn render(diags: &Diagnostics, color: bool) -> String {
    let handler = handler(color);
    let mut out = String::new();
    for d in &diags.0 {
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, d);
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
    fn line_and_column_are_one_based() {
        let f = SourceFile::new("x", "ab\ncdé f\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(9), (2, 6));
    }
}
