//! Wall-clock helpers: milliseconds since the epoch, log timestamps, and GoCD's dashboard date format.
//!
//! Everything is UTC (the lab has no time zones to speak of).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Broken-down UTC time.
#[derive(Debug, PartialEq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

/// Converts milliseconds since the epoch to a UTC calendar time
/// (Howard Hinnant's `civil_from_days`).
pub fn civil(ms: u64) -> Civil {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        millis: (ms % 1000) as u32,
    }
}

/// `2026-11-25T20:36:01.123Z`, for log lines.
pub fn iso(ms: u64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// GoCD's dashboard.json date format, Gson's `MMM d, YYYY HH:mm:ss`, e.g. `Nov 25, 2026 20:36:01`.
///
/// GoCD's pattern uses `YYYY` (the *week* year), which prints the wrong year in the last days
/// of December; the stand-in prints the calendar year.
pub fn gocd_date(ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(ms);
    let month = MONTHS[(c.month as usize).saturating_sub(1).min(11)];
    format!(
        "{} {}, {} {:02}:{:02}:{:02}",
        month, c.day, c.year, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z (a leap day)
        assert_eq!(iso(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(iso(1_798_761_599_000), "2026-12-31T23:59:59.000Z");
    }

    #[test]
    fn gocd_format() {
        assert_eq!(gocd_date(0), "Jan 1, 1970 00:00:00");
        assert_eq!(gocd_date(1_709_210_096_789), "Feb 29, 2024 12:34:56");
    }
}
