//! A positioned YAML tree → a JSON value and a source map from JSON pointers to spans.

use super::node::{Kind, Node, Span};
use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use serde_json::{Map, Number, Value};

/// Where each node of a document is: its value's span and, in a mapping, its key's.
///
/// The nodes are stored in the shape of the document's JSON value (mapping entries in file
/// order, which `serde_json`'s `preserve_order` keeps), each container's children side by
/// side, so a JSON pointer is resolved by walking the value and this table together: no
/// pointer string or hash per node is made while reading, only when a diagnostic asks.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    nodes: Vec<Located>,
}

/// One node: its spans, and where its children sit in `SourceMap::nodes`.
#[derive(Debug, Clone, Copy, Default)]
struct Located {
    key: Option<Span>,
    value: Span,
    first_child: u32,
    children: u32,
}

impl SourceMap {
    /// The span of the value at `pointer` in `root`, or of its nearest ancestor that has one.
    pub fn value(&self, root: &Value, pointer: &str) -> Span {
        self.lookup(root, pointer).value
    }

    /// The span of the key naming `pointer` (the value's span when it has no key).
    pub fn key(&self, root: &Value, pointer: &str) -> Span {
        let n = self.lookup(root, pointer);
        n.key.unwrap_or(n.value)
    }

    fn lookup(&self, root: &Value, pointer: &str) -> Located {
        let Some(mut node) = self.nodes.first().copied() else {
            return Located::default();
        };
        let mut value = root;
        for token in pointer.split('/').skip(1) {
            let token = unescape(token);
            let found = match value {
                Value::Array(items) => token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| Some((i, items.get(i)?))),
                Value::Object(entries) => entries
                    .iter()
                    .enumerate()
                    .find(|(_, (k, _))| **k == *token)
                    .map(|(i, (_, v))| (i, v)),
                _ => None,
            };
            let Some((i, v)) = found.filter(|&(i, _)| i < node.children as usize) else {
                break;
            };
            node = self.nodes[node.first_child as usize + i];
            value = v;
        }
        node
    }
}

/// A JSON pointer's reference token as the key it names (`~1` is `/`, `~0` is `~`).
fn unescape(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// Append one escaped reference token to a JSON pointer.
pub fn child(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    push_token(&mut out, token);
    out
}

/// Append `/token`, escaped, to `pointer` in place (`pointer.truncate` takes it off again).
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    if token.contains(['~', '/']) {
        pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
    } else {
        pointer.push_str(token);
    }
}

/// A parsed file: its value, where each node sits, and the text for diagnostics.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub map: SourceMap,
    pub file: SourceFile,
}

impl Document {
    /// Read YAML text. A syntax error is one located diagnostic.
    pub fn parse(file: SourceFile) -> Result<Document, Diagnostics> {
        // The fast reader takes the common subset; everything else, errors included, is
        // serde-saphyr's (see `fast`).
        let node = match super::fast::parse(&file.text) {
            Some(n) => n,
            None => saphyr(&file.text).map_err(|e| syntax_error(&file, &e))?,
        };
        let mut map = SourceMap::default();
        map.nodes.push(Located::default());
        let value = convert(node, 0, None, &mut map);
        Ok(Document { value, map, file })
    }

    /// The span of the value at `pointer`, or of its nearest ancestor in the file.
    pub fn value_span(&self, pointer: &str) -> Span {
        self.map.value(&self.value, pointer)
    }

    /// The span of the key naming `pointer` (the value's span when it has no key).
    pub fn key_span(&self, pointer: &str) -> Span {
        self.map.key(&self.value, pointer)
    }

    /// A diagnostic pointing at the value at `pointer`.
    pub fn error_at(
        &self,
        code: &'static str,
        pointer: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(code, message).at(&self.file, self.value_span(pointer))
    }

    /// The span of `len` bytes at byte `at` of the string `value` found at `pointer`, when
    /// the file holds that string verbatim (plain, or quoted without escapes); else the span
    /// of the whole value.
    pub fn span_within(&self, pointer: &str, value: &str, at: usize, len: usize) -> Span {
        let whole = self.value_span(pointer);
        let raw = self
            .file
            .text
            .get(whole.offset..whole.offset + whole.len)
            .unwrap_or("");
        let skip = if raw == value {
            0
        } else if raw.len() == value.len() + 2 && raw.get(1..raw.len() - 1) == Some(value) {
            1
        } else {
            return whole;
        };
        Span {
            offset: whole.offset + skip + at,
            len,
        }
    }

    /// A diagnostic pointing at the key naming `pointer`.
    pub fn error_at_key(
        &self,
        code: &'static str,
        pointer: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(code, message).at(&self.file, self.key_span(pointer))
    }
}

/// Read `text` into a tree with serde-saphyr.
pub(super) fn saphyr(text: &str) -> Result<Node, serde_saphyr::Error> {
    // YAML 1.2 core booleans only: `on:` is a step key here, not `true`. Duplicate keys are
    // errors (the default), so a repeated `with:` cannot silently win.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // serde-saphyr is built without its `comments` feature: comments are still checked as
    // syntax, but nothing here reads their text, and keeping it cost a tenth of reading.
    // The default budget stops at 250,000 nodes; a 10,000-step plan has ~400,000. Keep a
    // budget (alias bombs stay refused), sized for plans far beyond any real runbook.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(20_000_000);
    budget.max_events = budget.max_events.max(40_000_000);
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options(text, options)
}

/// `node` as a JSON value; its spans go to `map.nodes[at]`, its children's to a block of
/// slots of their own.
fn convert(node: Node, at: usize, key: Option<Span>, map: &mut SourceMap) -> Value {
    let first = map.nodes.len();
    let value = match node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(b),
        Kind::Int(i) => Value::Number(i.into()),
        Kind::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Kind::Str(s) => Value::String(s),
        Kind::Seq(items) => {
            map.nodes.resize(first + items.len(), Located::default());
            Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| convert(n, first + i, None, map))
                    .collect(),
            )
        }
        Kind::Map(entries) => {
            map.nodes.resize(first + entries.len(), Located::default());
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                // A key written twice in different forms (`1:` and `"1":`) is one JSON key:
                // the later value replaces the earlier in its place, as in the value.
                let slot = match out.get_key_value(&k.text) {
                    Some(_) => out.keys().position(|e| *e == k.text).unwrap_or(out.len()),
                    None => out.len(),
                };
                let converted = convert(v, first + slot, Some(k.span), map);
                out.insert(k.text, converted);
            }
            Value::Object(out)
        }
    };
    let children = match &value {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => 0,
    };
    map.nodes[at] = Located {
        key,
        value: node.span,
        first_child: first as u32,
        children: children as u32,
    };
    value
}

fn syntax_error(file: &SourceFile, e: &serde_saphyr::Error) -> Diagnostic {
    // serde-saphyr's Display starts with its own "error: line L column C:" and may append a
    // snippet; keep just the sentence, miette shows the place.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let message = match first
        .split_once(": line ")
        .and_then(|(_, rest)| rest.split_once(": "))
    {
        Some((_, sentence)) => sentence,
        None => first,
    };
    // The parser's advice is for programmers using it, not for someone editing a plan.
    let message = match message.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(rest);
            format!("duplicate key `{key}`: a key may appear only once in a mapping")
        }
        None => message.to_string(),
    };
    let d = Diagnostic::new("drplan::yaml::syntax", format!("invalid YAML: {message}"))
        .label("here")
        .help("fix the YAML syntax; everything else is checked once the file parses");
    match e.location() {
        Some(l) => d.at(
            file,
            Span {
                offset: byte_offset(&file.text, l.line(), l.column()),
                len: 0,
            },
        ),
        None => d,
    }
}

/// Byte offset of a 1-based line and column (in characters): error locations may come
/// without byte offsets, and character offsets are wrong after any non-ASCII text.
fn byte_offset(text: &str, line: u64, column: u64) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let rest = &text[line_start.min(text.len())..];
    let col: usize = rest
        .chars()
        .take(column.saturating_sub(1) as usize)
        .map(char::len_utf8)
        .sum();
    line_start + col
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse(SourceFile::new("t.yaml", text)).expect("parses")
    }

    fn text(d: &Document, s: Span) -> &str {
        &d.file.text[s.offset..s.offset + s.len]
    }

    /// Pointers (escaped tokens too) resolve to their value's and key's text; one past the
    /// document resolves to its nearest ancestor.
    #[test]
    fn pointers_find_their_spans() {
        let d = doc("a: 1\nb:\n  - x\n  - {c/d: 2, e~f: [3, \"q\"]}\n");
        assert_eq!(text(&d, d.value_span("/a")), "1");
        assert_eq!(text(&d, d.key_span("/a")), "a");
        assert_eq!(text(&d, d.value_span("/b/1/c~1d")), "2");
        assert_eq!(text(&d, d.key_span("/b/1/c~1d")), "c/d");
        assert_eq!(text(&d, d.key_span("/b/1/e~0f")), "e~f");
        assert_eq!(text(&d, d.value_span("/b/1/e~0f/1")), "\"q\"");
        assert_eq!(text(&d, d.value_span("/b/0/nothing")), "x");
        assert_eq!(d.value_span("/b/9"), d.value_span("/b"));
        assert_eq!(d.key_span("/b/1/zz"), d.value_span("/b/1"));
        assert_eq!(d.value_span(""), d.value_span("/nothing"));
    }

    /// `1:` and `"1":` are one JSON key: the later value and key, in the first one's place.
    #[test]
    fn a_key_written_twice_in_two_forms_is_found_once() {
        let d = doc("1: a\nz: c\n\"1\": b\n");
        assert_eq!(d.value, serde_json::json!({ "1": "b", "z": "c" }));
        assert_eq!(text(&d, d.value_span("/1")), "b");
        assert_eq!(text(&d, d.key_span("/1")), "\"1\"");
        assert_eq!(text(&d, d.value_span("/z")), "c");
    }
}
