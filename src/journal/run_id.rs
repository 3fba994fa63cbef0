//! Run ids: `20261125T203456.789Z-3f9a`, UTC creation time to the millisecond plus 16 random
//! bits. Sorting ids as strings sorts runs by creation time; the random part keeps two
//! controllers starting in the same millisecond apart (and `create_run` refuses a clash).
//!
//! Milliseconds, not just seconds: a test or a script may run twice within one second, and
//! "the latest run" must still be the latest. An id is also a directory name, so `parse`
//! accepts exactly this shape and nothing a path could abuse (`..`, `/`).

use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::time::SystemTime;

use super::JournalError;
use crate::clock::UtcTime;

/// The id of one run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

/// `YYYYMMDDTHHMMSS.mmmZ-xxxx`
const LEN: usize = 25;

impl RunId {
    /// A new id for a run starting now.
    pub fn generate() -> Result<Self, JournalError> {
        let mut random = [0u8; 2];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(|e| JournalError::io("/dev/urandom", "read random bytes for a run id", e))?;
        Ok(Self::at(SystemTime::now(), u16::from_be_bytes(random)))
    }

    fn at(time: SystemTime, random: u16) -> Self {
        let t = UtcTime::from_system(time);
        Self(format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{random:04x}",
            t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the run was created (from the id itself).
    pub fn created(&self) -> SystemTime {
        self.fields()
            .and_then(UtcTime::checked)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn fields(&self) -> Option<UtcTime> {
        let s = self.0.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(range)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let shape = s.len() == LEN
            && s[8] == b'T'
            && s[15] == b'.'
            && s[19] == b'Z'
            && s[20] == b'-'
            && s[21..]
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !shape {
            return None;
        }
        let t = UtcTime {
            year: i64::from(num(0..4)?),
            month: num(4..6)?,
            day: num(6..8)?,
            hour: num(9..11)?,
            minute: num(11..13)?,
            second: num(13..15)?,
            millis: num(16..19)?,
        };
        // A real date and time (no 30 February, no hour 25).
        t.checked().map(|_| t)
    }
}

impl FromStr for RunId {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = Self(s.to_owned());
        match id.fields() {
            Some(_) => Ok(id),
            None => Err(JournalError::InvalidRunId { id: s.to_owned() }),
        }
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn shape_round_trip_and_order() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_638_896_789);
        let id = RunId::at(t, 0x3f9a);
        assert_eq!(id.as_str(), "20261125T203456.789Z-3f9a");
        assert_eq!(id.as_str().parse::<RunId>().unwrap(), id);
        assert_eq!(id.created(), t);
        let later = RunId::at(t + Duration::from_millis(1), 0x0000);
        assert!(
            later > id,
            "a later run sorts after, whatever its random part"
        );
        let generated = RunId::generate().unwrap();
        assert_eq!(generated.as_str().parse::<RunId>().unwrap(), generated);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "..",
            "../../etc",
            "20261224T203456.789Z-3f9",
            "20261224T203456.789Z-3F9A",
            "20261324T203456.789Z-3f9a",
            "20261224T253456.789Z-3f9a",
            "20261224T203456.789Z/3f9a",
            "2026122xT203456.789Z-3f9a",
            "20260230T203456.789Z-3f9a",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} accepted");
        }
    }
}
