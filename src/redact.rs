//! The values drplan must never let out, and masking them in text.
//!
//! A secret reaches output in more forms than its own: shell-quoted by `shell_quote` (a
//! `'` becomes `'\''`), quoted again when a command is shown (`show_argv`), escaped inside
//! JSON text or a Rust `{:?}`, transformed by a template (`| upper`, a slice, a `~`
//! concatenation: the executor adds every string rendered from `secrets.*`), cut in lines
//! (each long line of a multi-line secret is masked on its own), or cut at the start of a
//! kept tail. Each of those forms is masked as `(sensitive)`, the longest first.
//!
//! Masking happens before anything is cut to size: the kept tail of an output or the last
//! lines of stderr are taken from text already masked, and what is left of a secret at the
//! start of a tail cut by someone else is masked by `redact_tail`.
//!
//! One `Redactor` serves a whole run: clones share what they were told, so a value learnt
//! while rendering a step is masked in everything that step prints afterwards. This module
//! imports nothing of ours.

use std::sync::{Arc, RwLock};

/// Shown wherever a secret could otherwise be printed or journaled.
pub const SENSITIVE: &str = "(sensitive)";

/// The shortest line of a multi-line secret that is masked on its own (shorter lines, like
/// `-----END-----` framing or blank lines, would mask ordinary text).
const MIN_LINE: usize = 8;

/// What must never be shown; cheap to clone (the clones share it).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mask `value` from now on, in every form it may take in output.
    pub fn add(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut forms = Vec::new();
        for v in std::iter::once(value).chain(value.lines().filter(|l| l.trim().len() >= MIN_LINE))
        {
            let quoted = shell_body(v);
            let twice = shell_body(&quoted);
            for q in [v.to_owned(), quoted, twice] {
                forms.push(json_body(&q));
                forms.push(debug_body(&q));
                forms.push(q);
            }
        }
        let Ok(mut needles) = self.needles.write() else {
            return;
        };
        for f in forms {
            if !f.is_empty() && !needles.contains(&f) {
                needles.push(f);
            }
        }
        // Longest first: a form is masked whole before a shorter one inside it is.
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Nothing to mask?
    pub fn is_empty(&self) -> bool {
        self.needles.read().map_or(true, |n| n.is_empty())
    }

    /// `text` with every sensitive form replaced by `(sensitive)`.
    pub fn redact(&self, text: &str) -> String {
        let Ok(needles) = self.needles.read() else {
            return SENSITIVE.to_owned();
        };
        let mut out = text.to_owned();
        for n in needles.iter() {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), SENSITIVE);
            }
        }
        out
    }

    /// Does `text` hold a sensitive value (in any form)?
    pub fn is_sensitive(&self, text: &str) -> bool {
        self.needles
            .read()
            .map_or(true, |n| n.iter().any(|x| text.contains(x.as_str())))
    }

    /// `text` that is the kept tail of something longer (`cut`): masked, and whatever is
    /// left of a secret at its very start (the end of one whose beginning was cut away)
    /// masked too.
    pub fn redact_tail(&self, text: &str, cut: bool) -> String {
        let masked = self.redact(text);
        if !cut {
            return masked;
        }
        let Ok(needles) = self.needles.read() else {
            return SENSITIVE.to_owned();
        };
        let partial = needles
            .iter()
            .filter_map(|n| {
                // The longest proper suffix of `n` that `masked` starts with.
                (1..n.len())
                    .filter(|&i| n.is_char_boundary(i))
                    .map(|i| &n[i..])
                    .find(|suffix| masked.starts_with(suffix))
                    .map(str::len)
            })
            .max();
        match partial {
            Some(len) => format!("{SENSITIVE}{}", &masked[len..]),
            None => masked,
        }
    }

    /// Bytes as `redact_tail` would mask their (lossy) text.
    pub fn redact_bytes(&self, bytes: &[u8], cut: bool) -> Vec<u8> {
        if self.is_empty() {
            return bytes.to_vec();
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => self.redact_tail(text, cut).into_bytes(),
            Err(_) => self
                .redact_tail(&String::from_utf8_lossy(bytes), cut)
                .into_bytes(),
        }
    }
}

/// The body of a `shell_quote`d value: `'` written as `'\''`.
fn shell_body(s: &str) -> String {
    s.replace('\'', r"'\''")
}

/// The body of a JSON string literal.
fn json_body(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// The body of a Rust `{:?}` of a string.
fn debug_body(s: &str) -> String {
    let quoted = format!("{s:?}");
    quoted[1..quoted.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(secrets: &[&str]) -> Redactor {
        let r = Redactor::new();
        for s in secrets {
            r.add(s);
        }
        r
    }

    #[test]
    fn quoted_and_escaped_forms_are_masked() {
        let r = with(&["it's \"a\"\\pw"]);
        for shown in [
            r#"raw: it's "a"\pw"#,
            r#"quoted: 'it'\''s "a"\pw'"#,
            r#"quoted twice: 'it'\''\'\'''\''s "a"\pw'"#,
            r#"json: "it's \"a\"\\pw""#,
        ] {
            let out = r.redact(shown);
            assert!(out.contains(SENSITIVE), "{shown} -> {out}");
            assert!(!out.contains("pw"), "{shown} -> {out}");
        }
    }

    #[test]
    fn the_end_of_a_secret_cut_at_the_start_of_a_tail_is_masked() {
        let r = with(&["correct horse battery staple"]);
        assert_eq!(
            r.redact_tail("battery staple\nrest", true),
            "(sensitive)\nrest"
        );
        // Not cut: an ordinary word stays.
        assert_eq!(r.redact_tail("staple\nrest", false), "staple\nrest");
    }

    #[test]
    fn each_long_line_of_a_multi_line_secret_is_masked_on_its_own() {
        let key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\nQDd7sy0ZJ2PvF3e6hX\n-----END KEY-----";
        let r = with(&[key]);
        let out = r.redact("> AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n> QDd7sy0ZJ2PvF3e6hX\n");
        assert_eq!(out, "> (sensitive)\n> (sensitive)\n");
    }
}
