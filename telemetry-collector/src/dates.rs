//! Calendar days in UTC, as `YYYY-MM-DD` text: the day and week (starting Monday) a report
//! is counted in, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of the civil date `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `days` since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The days since 1970-01-01 of `YYYY-MM-DD`, if it is a real date.
pub fn parse_day(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = text[0..4].parse().ok()?;
    let m: u32 = text[5..7].parse().ok()?;
    let d: u32 = text[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// The Monday of the week holding day `days`.
pub fn week_of(days: i64) -> i64 {
    // 1970-01-01 was a Thursday: Monday is 3 days before it.
    days - (days + 3).rem_euclid(7)
}

/// Today (UTC), in days since 1970-01-01.
pub fn today() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs / 86_400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_weeks_start_on_monday() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(format_day(parse_day("2026-12-07").unwrap()), "2026-12-07");
        assert_eq!(parse_day("2026-02-29"), None);
        assert_eq!(
            parse_day("2024-02-29").map(format_day).as_deref(),
            Some("2024-02-29")
        );
        // 2026-12-07 is a Monday; 2026-12-13 the Sunday of that week.
        let monday = parse_day("2026-12-07").unwrap();
        assert_eq!(week_of(monday), monday);
        assert_eq!(week_of(parse_day("2026-12-13").unwrap()), monday);
        assert_eq!(week_of(parse_day("2026-12-14").unwrap()), monday + 7);
    }
}
