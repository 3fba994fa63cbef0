//! A second, faster reader for the YAML that plans are made of.
//!
//! serde-saphyr's `Spanned` path (`node.rs`) costs about three times the event parser
//! underneath it, and reading YAML was three quarters of validating a 10,000-step plan. This
//! reader takes the same parser's events (`serde_saphyr::granit_parser`, with the parser
//! options serde-saphyr uses for us) and builds the same `Node` tree directly.
//!
//! It reads only a common subset: one document of block or flow mappings and sequences and
//! untagged scalars (plain, quoted, block), nested at most `MAX_DEPTH` deep, with no anchors,
//! aliases, tags, `%YAML` directives, merge keys (`<<`), mapping keys that are collections,
//! or keys written twice; a plain scalar resolves only where its meaning is certain (null,
//! YAML 1.2 booleans, plain decimal integers and fractions, and text that no numeric form
//! could match). On anything else, and on every parse error, it declines (`None`) at the
//! first such event, and `Document::parse` reads the text again with serde-saphyr: every
//! error message, location and unusual construct stays serde-saphyr's.
//!
//! `tests/yaml_fast.rs` and the `yaml` fuzz target run both readers and require the
//! same tree (values and every span) wherever this one accepts.

use super::node::{Key, Kind, Node, Span};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span as ParserSpan};
use std::borrow::Cow;
use std::collections::HashSet;

/// Deeper documents go to serde-saphyr (its budget allows 64).
const MAX_DEPTH: usize = 32;

/// Larger texts go to serde-saphyr, whose node and byte budgets were sized for files of at
/// most `load::MAX_FILE` bytes.
const MAX_TEXT: usize = super::MAX_FILE as usize;

type Events<'t> = Parser<'t, serde_saphyr::granit_parser::StrInput<'t>>;

/// The tree serde-saphyr would build from `text`, or `None` when `text` is outside the
/// subset this reader handles (or is not valid YAML).
pub(super) fn parse(text: &str) -> Option<Node> {
    if text.len() > MAX_TEXT || text.starts_with('\u{feff}') {
        return None;
    }
    // The options serde-saphyr gives the parser with drplan's settings: its budget's limits
    // are the parser's defaults, and it is built without comments.
    let mut options = Options::default();
    options.emit_comments = false;
    let mut events = Parser::new_from_str_with_options(text, options);
    let Some(Ok((Event::StreamStart, _))) = events.next() else {
        return None;
    };
    let Some(Ok((Event::DocumentStart(_, None), _))) = events.next() else {
        return None;
    };
    let (first, span) = events.next()?.ok()?;
    let root = node(&mut events, first, span, 0)?;
    let Some(Ok((Event::DocumentEnd, _))) = events.next() else {
        return None;
    };
    let Some(Ok((Event::StreamEnd, _))) = events.next() else {
        return None;
    };
    events.next().is_none().then_some(root)
}

/// The node that starts with `event`, its children read from `events`.
fn node<'t>(
    events: &mut Events<'t>,
    event: Event<'t>,
    span: ParserSpan,
    depth: usize,
) -> Option<Node> {
    let kind = match event {
        Event::Scalar(value, style, 0, None) => scalar(value, style)?,
        Event::SequenceStart(_, 0, None) if depth < MAX_DEPTH => {
            let mut items = Vec::new();
            loop {
                match events.next()?.ok()? {
                    (Event::SequenceEnd, _) => break,
                    (e, s) => items.push(node(events, e, s, depth + 1)?),
                }
            }
            Kind::Seq(items)
        }
        Event::MappingStart(_, 0, None) if depth < MAX_DEPTH => Kind::Map(entries(events, depth)?),
        _ => return None,
    };
    Some(Node {
        span: of(&span)?,
        kind,
    })
}

/// A mapping's entries, up to its end; `None` on a key that is not a plain value, a merge
/// key or a key written twice.
fn entries<'t>(events: &mut Events<'t>, depth: usize) -> Option<Vec<(Key, Node)>> {
    let mut entries: Vec<(Key, Node)> = Vec::new();
    // Small mappings are checked for repeats by scanning; big ones with a set.
    let mut seen: Option<HashSet<String>> = None;
    loop {
        let (key, span) = match events.next()?.ok()? {
            (Event::MappingEnd, _) => return Some(entries),
            (Event::Scalar(value, style, 0, None), span) => (scalar(value, style)?, span),
            _ => return None,
        };
        let text = key.key_text()?;
        if text == "<<" {
            return None;
        }
        let repeated = match &mut seen {
            Some(set) => !set.insert(text.clone()),
            None if entries.len() >= 16 => {
                let mut set: HashSet<String> =
                    entries.iter().map(|(k, _)| k.text.clone()).collect();
                let repeated = !set.insert(text.clone());
                seen = Some(set);
                repeated
            }
            None => entries.iter().any(|(k, _)| k.text == text),
        };
        if repeated {
            return None;
        }
        let key = Key {
            span: of(&span)?,
            text,
        };
        let (event, span) = events.next()?.ok()?;
        entries.push((key, node(events, event, span, depth + 1)?));
    }
}

/// A scalar's value as serde-saphyr resolves it for drplan (YAML 1.2 core schema, strict
/// booleans); `None` where that is not certain.
fn scalar(value: Cow<'_, str>, style: ScalarStyle) -> Option<Kind> {
    if style != ScalarStyle::Plain {
        return Some(Kind::Str(value.into_owned()));
    }
    // serde-saphyr trims these before resolving; a plain scalar never has them at its ends,
    // but leave any doubt to it.
    if value.starts_with([' ', '\t', '\r', '\n']) || value.ends_with([' ', '\t', '\r', '\n']) {
        return None;
    }
    match &*value {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Kind::Null),
        "true" | "True" | "TRUE" => return Some(Kind::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Kind::Bool(false)),
        _ => {}
    }
    // Every integer and float form (`0x1F`, `-1_000`, `1e5`, `.inf`, `+.5`, …) starts with a
    // digit, a sign or a dot: anything else is text.
    if !value.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return Some(Kind::Str(value.into_owned()));
    }
    number(&value).or_else(|| not_a_number(&value).then(|| Kind::Str(value.into_owned())))
}

/// `-?(0|[1-9][0-9]*)` as an integer, `-?(0|[1-9][0-9]*)\.[0-9]+` as a float, at most 15
/// digits on either side of the dot (so neither overflows nor rounds differently).
fn number(text: &str) -> Option<Kind> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |t: &str| (1..=15).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (whole.len() > 1 && whole.starts_with('0')) {
        return None;
    }
    match fraction {
        None => text.parse().ok().map(Kind::Int),
        Some(f) if digits(f) => text.parse().ok().map(Kind::Float),
        Some(_) => None,
    }
}

/// Whether no integer or float parser could read `text` (one that starts with a digit, sign
/// or dot): it holds a character no numeric form has (`20ms`, `10.0.0.1/24`), or it is made
/// of digits, dots and signs in a shape no number has (`10.0.0.1`, `2026-12-01`).
fn not_a_number(text: &str) -> bool {
    // Digits, `.`, signs, `_`, hex digits, radix letters, and the letters of inf/infinity/nan.
    let numeric = |b: u8| {
        b.is_ascii_hexdigit()
            || matches!(
                b.to_ascii_lowercase(),
                b'.' | b'+' | b'-' | b'_' | b'i' | b'n' | b'o' | b't' | b'x' | b'y'
            )
    };
    if !text.bytes().all(numeric) {
        return true;
    }
    let digits_dots_signs = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-'));
    digits_dots_signs
        && (text.bytes().filter(|&b| b == b'.').count() > 1
            || text.bytes().skip(1).any(|b| matches!(b, b'+' | b'-')))
}

/// The byte span serde-saphyr's `Location` gives an event (`location::location_from_span`).
fn of(span: &ParserSpan) -> Option<Span> {
    let start = span.start.byte_offset()?;
    let end = span.end.byte_offset()?;
    Some(Span {
        offset: start,
        len: end.saturating_sub(start),
    })
}
