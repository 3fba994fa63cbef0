//! UTC time for records, events, locks, reports and run ids, over the `jiff` date crate.
//!
//! [`Timestamp`] is what journal records, events, lock files and readiness reports carry:
//! RFC 3339 in UTC to the millisecond (`2026-11-25T20:34:56.789Z`). Reading accepts any
//! RFC 3339 instant, so journals written before milliseconds were recorded
//! (`2026-11-25T20:34:56Z`) still resume. [`UtcTime`] breaks an instant into calendar
//! fields, for names that embed a time (run ids, copies of a data directory).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

/// An instant, in UTC, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

impl Timestamp {
    /// Now, to the millisecond.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// `t` to the millisecond; times before 1970 (a badly set clock) are clamped to the
    /// epoch.
    pub fn from_system(t: SystemTime) -> Self {
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Out of jiff's range (past the year 9999) only with a clock gone mad.
        Self(jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::MAX))
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub fn as_millis(self) -> i64 {
        self.0.as_millisecond()
    }
}

impl Default for Timestamp {
    /// The epoch: the time of a record that has none.
    fn default() -> Self {
        Self(jiff::Timestamp::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}

/// Not an RFC 3339 instant.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 time (like 2026-11-25T20:34:56.789Z): {reason}")]
pub struct BadTimestamp {
    text: String,
    reason: String,
}

impl FromStr for Timestamp {
    type Err = BadTimestamp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| BadTimestamp {
            text: s.to_owned(),
            reason: e.to_string(),
        })?;
        // Kept to the millisecond, as written: what is read back compares equal.
        Ok(Self(
            jiff::Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t),
        ))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A UTC instant broken into calendar fields (millisecond precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl UtcTime {
    /// Times before 1970 (a badly set clock) are clamped to the epoch.
    pub fn from_system(t: SystemTime) -> Self {
        let dt = jiff::tz::Offset::UTC.to_datetime(Timestamp::from_system(t).0);
        // Every field is in range for its type (jiff's years are -9999..=9999).
        Self {
            year: i64::from(dt.year()),
            month: dt.month() as u32,
            day: dt.day() as u32,
            hour: dt.hour() as u32,
            minute: dt.minute() as u32,
            second: dt.second() as u32,
            millis: dt.millisecond() as u32,
        }
    }

    /// The instant, or `None` when the fields are not a real date and time (a 30 February).
    pub fn checked(self) -> Option<SystemTime> {
        let small = |v: u32| i8::try_from(v).ok();
        let date = jiff::civil::Date::new(
            i16::try_from(self.year).ok()?,
            small(self.month)?,
            small(self.day)?,
        )
        .ok()?;
        let time = jiff::civil::Time::new(
            small(self.hour)?,
            small(self.minute)?,
            small(self.second)?,
            i32::try_from(self.millis).ok()?.checked_mul(1_000_000)?,
        )
        .ok()?;
        let t = jiff::tz::Offset::UTC
            .to_timestamp(date.to_datetime(time))
            .ok()?;
        SystemTime::try_from(t).ok()
    }

    /// The instant (the epoch when the fields are not a real date and time).
    pub fn to_system(self) -> SystemTime {
        self.checked().unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// `2026-11-25T20:34:56Z`
    pub fn rfc3339(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> UtcTime {
        UtcTime::from_system(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000).rfc3339(), "2023-11-14T22:13:20Z");
        assert_eq!(at(1_709_164_800).rfc3339(), "2024-02-29T00:00:00Z");
        assert_eq!(at(4_107_542_400).rfc3339(), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn fields_round_trip_and_impossible_dates_are_refused() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_638_896_789);
        assert_eq!(UtcTime::from_system(t).to_system(), t);
        let feb30 = UtcTime {
            month: 2,
            day: 30,
            ..UtcTime::from_system(t)
        };
        assert_eq!(feb30.checked(), None);
    }

    #[test]
    fn timestamps_are_written_to_the_millisecond() {
        let t = Timestamp::from_system(UNIX_EPOCH + Duration::from_millis(1_795_638_896_780));
        assert_eq!(t.to_string(), "2026-11-25T20:34:56.780Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#""2026-11-25T20:34:56.780Z""#
        );
        assert_eq!(t.as_millis(), 1_795_638_896_780);
    }

    #[test]
    fn timestamps_read_back_older_and_other_rfc3339_forms() {
        // What drplan wrote before it recorded milliseconds.
        let old: Timestamp = serde_json::from_str(r#""2026-11-25T20:34:56Z""#).unwrap();
        assert_eq!(old.to_string(), "2026-11-25T20:34:56.000Z");
        let offset: Timestamp = "2026-11-25T21:34:56.5+01:00".parse().unwrap();
        assert_eq!(offset.to_string(), "2026-11-25T20:34:56.500Z");
        let new = Timestamp::now();
        assert_eq!(new.to_string().parse::<Timestamp>().unwrap(), new);
        let bad = "yesterday".parse::<Timestamp>().unwrap_err().to_string();
        assert!(
            bad.starts_with("\"yesterday\" is not an RFC 3339 time"),
            "{bad}"
        );
    }
}
