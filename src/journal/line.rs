//! The journal's line format, and reading a journal back (pure: bytes in, records out).
//!
//! One record per line, each line itself JSON (so `jq` reads the file):
//! `{"seq":7,"sha256":"9f86d081884c7d65","record":{…}}` + `\n`. `seq` counts from 1 without
//! gaps; `sha256` is the first 16 hex digits of SHA-256 over the record's bytes exactly as
//! they appear in the line (serde_json's compact form), read back verbatim via `RawValue`
//! so that no re-serialisation can change what is checked.
//!
//! Only the last line can be torn by a crash (lines are written whole, one write each, and
//! fsync'd before the next): a last line that is incomplete or fails its checksum is
//! reported as a torn tail, never returned. Any other damage is an error with its line number.

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// What reading a journal found.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scan {
    pub records: Vec<serde_json::Value>,
    /// length in bytes of the intact prefix (where the next line goes)
    pub valid_len: u64,
    pub torn_tail: bool,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    seq: u64,
    sha256: &'a str,
    #[serde(borrow)]
    record: &'a RawValue,
}

/// Damage a crash cannot explain, and where it is.
pub(crate) struct Damage {
    pub line: usize,
    pub reason: String,
}

pub(crate) fn checksum(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut sum = String::with_capacity(16);
    for b in &digest[..8] {
        sum.push(char::from(HEX[usize::from(b >> 4)]));
        sum.push(char::from(HEX[usize::from(b & 15)]));
    }
    sum
}

/// The full line (newline included) for record number `seq`: what serialising a `Line`
/// gives (compact, its fields in order), written out directly so that the record is
/// serialised once and never parsed back.
pub(crate) fn encode(seq: u64, record: &serde_json::Value) -> serde_json::Result<Vec<u8>> {
    let body = serde_json::to_vec(record)?;
    let sum = checksum(&body);
    let seq = seq.to_string();
    let mut line = Vec::with_capacity(body.len() + seq.len() + 48);
    line.extend_from_slice(b"{\"seq\":");
    line.extend_from_slice(seq.as_bytes());
    line.extend_from_slice(b",\"sha256\":\"");
    line.extend_from_slice(sum.as_bytes());
    line.extend_from_slice(b"\",\"record\":");
    line.extend_from_slice(&body);
    line.extend_from_slice(b"}\n");
    Ok(line)
}

/// Read every intact record. Errors only for damage a crash cannot explain.
pub(crate) fn scan(bytes: &[u8]) -> Result<Scan, Damage> {
    let mut scan = Scan::default();
    let mut pos = 0usize;
    let mut number = 0usize;
    while pos < bytes.len() {
        number += 1;
        let Some(len) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // No newline: the write of this line never completed.
            scan.torn_tail = true;
            break;
        };
        let end = pos + len;
        let is_last = end + 1 == bytes.len();
        let expected = scan.records.len() as u64 + 1;
        match decode(&bytes[pos..end], expected) {
            Ok(record) => scan.records.push(record),
            Err(Problem::Unreadable(reason)) if !is_last => {
                return Err(Damage {
                    line: number,
                    reason,
                });
            }
            Err(Problem::Unreadable(_)) => {
                scan.torn_tail = true;
                break;
            }
            // An intact line in the wrong place is no crash artefact: never a torn tail.
            Err(Problem::OutOfSequence(found)) => {
                return Err(Damage {
                    line: number,
                    reason: format!("sequence number {found} where {expected} was expected"),
                });
            }
        }
        pos = end + 1;
        scan.valid_len = pos as u64;
    }
    Ok(scan)
}

enum Problem {
    Unreadable(String),
    OutOfSequence(u64),
}

fn decode(line: &[u8], expected: u64) -> Result<serde_json::Value, Problem> {
    let parsed: Line<'_> = serde_json::from_slice(line)
        .map_err(|e| Problem::Unreadable(format!("not a journal line ({e})")))?;
    if checksum(parsed.record.get().as_bytes()) != parsed.sha256 {
        return Err(Problem::Unreadable("checksum mismatch".to_owned()));
    }
    if parsed.seq != expected {
        return Err(Problem::OutOfSequence(parsed.seq));
    }
    serde_json::from_str(parsed.record.get())
        .map_err(|e| Problem::Unreadable(format!("record is not JSON ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn journal(records: &[serde_json::Value]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (i, r) in records.iter().enumerate() {
            bytes.extend(encode(i as u64 + 1, r).unwrap());
        }
        bytes
    }

    #[test]
    fn lines_are_json_with_seq_and_checksum() {
        let line = encode(1, &json!({"step": "promote", "n": 1.5})).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"seq\":1,\"sha256\":\"{}\",\"record\":{{\"step\":\"promote\",\"n\":1.5}}}}\n",
                checksum(br#"{"step":"promote","n":1.5}"#)
            )
        );
    }

    #[test]
    fn a_line_out_of_sequence_is_damage_even_at_the_end() {
        let mut bytes = journal(&[json!(1)]);
        bytes.extend(encode(3, &json!(3)).unwrap());
        let damage = scan(&bytes).unwrap_err();
        assert_eq!(damage.line, 2);
        assert!(damage.reason.contains("sequence"), "{}", damage.reason);
    }

    #[test]
    fn a_line_is_what_serialising_it_gives() {
        let record = json!({"kind": "step_started", "step": "a \"quoted\" é", "attempt": 2});
        let body = serde_json::to_string(&record).unwrap();
        let raw = RawValue::from_string(body).unwrap();
        let sum = checksum(raw.get().as_bytes());
        let mut expected = serde_json::to_vec(&Line {
            seq: 12,
            sha256: &sum,
            record: &raw,
        })
        .unwrap();
        expected.push(b'\n');
        assert_eq!(encode(12, &record).unwrap(), expected);
    }

    #[test]
    fn an_empty_journal_is_empty() {
        assert_eq!(scan(b"").ok(), Some(Scan::default()));
    }
}
