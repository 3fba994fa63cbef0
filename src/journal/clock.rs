//! UTC calendar time from `SystemTime`, for run ids and lock timestamps, without a date crate.
//!
//! drplan needs exactly two things from a calendar: sortable run ids and RFC 3339 timestamps
//! an operator can read. Howard Hinnant's civil-date algorithms do both in a few lines
//! (<https://howardhinnant.github.io/date_algorithms.html>), so chrono/jiff are not worth
//! their weight here. No time zones, no parsing of user input: that is not this file's job.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant broken into calendar fields (millisecond precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime {
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
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 2);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        Self {
            year,
            month,
            day,
            // rem < 86 400, so these fit
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            millis: since.subsec_millis(),
        }
    }

    pub fn to_system(self) -> SystemTime {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        let secs = u64::try_from(secs).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(u64::from(self.millis))
    }

    /// `2026-11-25T20:34:56Z`
    pub fn rfc3339(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

pub fn now_rfc3339() -> String {
    UtcTime::from_system(SystemTime::now()).rfc3339()
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> UtcTime {
        UtcTime::from_system(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000).rfc3339(), "2023-11-14T22:13:20Z");
        assert_eq!(at(1_709_164_800).rfc3339(), "2024-02-29T00:00:00Z");
        assert_eq!(at(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(at(4_107_542_399).rfc3339(), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400).rfc3339(), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn round_trips_every_few_hours_for_two_centuries() {
        let mut secs = 0u64;
        while secs < 7_000_000_000 {
            let t = UNIX_EPOCH + Duration::from_millis(secs * 1000 + 123);
            assert_eq!(UtcTime::from_system(t).to_system(), t, "at {secs}");
            secs += 12_345;
        }
    }
}
