//! A YAML document as a tree of positioned nodes, read with serde-saphyr (or, for the
//! common subset plans are written in, by `fast`, which builds the same tree).
//!
//! serde deserialization stops at the first error, but validation must report every
//! mistake at once. So the text is first read into this generic tree (every node and every
//! mapping key carries its span), which then becomes a JSON value plus a source map that
//! later stages use to point at the offending line and column.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// Byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    fn of(loc: &serde_saphyr::Location) -> Span {
        let s = loc.span();
        match (s.byte_offset(), s.byte_len()) {
            (Some(o), Some(l)) => Span {
                offset: o as usize,
                len: l as usize,
            },
            _ => Span {
                offset: s.offset() as usize,
                len: s.len() as usize,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub span: Span,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<Kind> = Spanned::deserialize(d)?;
        Ok(Node {
            span: Span::of(&s.referenced),
            kind: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<Kind> = Spanned::deserialize(d)?;
        let text = s
            .value
            .key_text()
            .ok_or_else(|| de::Error::custom("a mapping key must be a plain value"))?;
        Ok(Key {
            span: Span::of(&s.referenced),
            text,
        })
    }
}

impl Kind {
    /// The text of a mapping key with this value: a JSON object's keys are strings. `None`
    /// for a collection.
    pub(super) fn key_text(self) -> Option<String> {
        Some(match self {
            Kind::Str(t) => t,
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Bool(b) => b.to_string(),
            Kind::Null => "null".to_string(),
            Kind::Seq(_) | Kind::Map(_) => return None,
        })
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        i64::try_from(v)
            .map(Kind::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Key>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Kind::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scalar and every key points at its own text in the source (quotes included).
    #[test]
    fn scalars_and_keys_carry_their_spans() {
        let text = "a: 1\nbb:\n  - x: \"q\"\n    yy: [1, 2]\n  - plain text\nc: {d: e}\n";
        let n: Node = serde_saphyr::from_str(text).unwrap();
        let mut seen = Vec::new();
        fn walk<'t>(text: &'t str, n: &Node, seen: &mut Vec<&'t str>) {
            match &n.kind {
                Kind::Seq(items) => items.iter().for_each(|i| walk(text, i, seen)),
                Kind::Map(es) => es.iter().for_each(|(k, v)| {
                    seen.push(&text[k.span.offset..k.span.offset + k.span.len]);
                    walk(text, v, seen);
                }),
                _ => seen.push(&text[n.span.offset..n.span.offset + n.span.len]),
            }
        }
        walk(text, &n, &mut seen);
        assert_eq!(
            seen,
            [
                "a",
                "1",
                "bb",
                "x",
                "\"q\"",
                "yy",
                "1",
                "2",
                "plain text",
                "c",
                "d",
                "e"
            ]
        );
    }
}
