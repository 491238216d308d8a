//! Times on the command line and in events: everything compared as the canonical RFC 3339
//! text the writers use (`2026-11-24T14:03:07.123456Z`), which sorts as time does.

use std::borrow::Cow;

use crate::event::Timestamp;

/// The days of `month` (1 to 12) in `year` of the proleptic Gregorian calendar.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `time` in the canonical form: as it is when it already is (every writer's), else
/// parsed and written again; `None` when it is not RFC 3339.
pub fn canonical_time(time: &str) -> Option<Cow<'_, str>> {
    let b = time.as_bytes();
    let canonical = b.len() == 27
        && b[26] == b'Z'
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && [
            0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25,
        ]
        .iter()
        .all(|&i| b[i].is_ascii_digit());
    if canonical {
        let number = |at: usize, len: usize| -> u32 {
            b[at..at + len]
                .iter()
                .fold(0, |n, digit| n * 10 + u32::from(digit - b'0'))
        };
        // Digits in the right places are not yet a time: they must sort as the time does,
        // and name a day the month has (`2026-02-30` is no date, as it is to the parser
        // below).
        let (year, month, day) = (number(0, 4), number(5, 2), number(8, 2));
        let valid = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && number(11, 2) <= 23
            && number(14, 2) <= 59
            && number(17, 2) <= 60;
        return valid.then_some(Cow::Borrowed(time));
    }
    // Written again: a year outside 0000-9999 would not be 27 characters, nor sort as it
    // should among the others.
    Timestamp::parse(time)
        .map(|t| t.to_string())
        .filter(|text| text.len() == 27)
        .map(Cow::Owned)
}

/// An RFC 3339 time, or an age before `now`: `30d`, `12h`, `2w`, `45m`.
///
/// # Errors
///
/// When `text` is neither, the age is negative or over 100 years, or the time falls outside
/// the years 0000 to 9999 in UTC (`9999-12-31T23:59:59-01:00`): RFC 3339 has four-digit
/// years, and the report writes the time back.
///
/// ```
/// use oauth_audit::event::Timestamp;
/// use oauth_audit::report::parse_time;
///
/// let now = Timestamp::parse("2026-12-01T00:00:00Z").unwrap();
/// assert_eq!(parse_time("30d", now).unwrap().to_string(), "2026-11-01T00:00:00.000000Z");
/// assert!(parse_time("last tuesday", now).is_err());
/// ```
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    if let Some(time) = Timestamp::parse(text) {
        // Written back with a four-digit year only (`canonical_time` reads the trail so).
        if time.to_string().len() != 27 {
            return Err(format!(
                "{text:?} falls outside the years 0000 to 9999 in UTC"
            ));
        }
        return Ok(time);
    }
    let unit = match text.chars().last() {
        Some('m') => 60,
        Some('h') => 3_600,
        Some('d') => 86_400,
        Some('w') => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?} is neither RFC 3339 nor an age such as 30d"
            ))
        }
    };
    let count: i64 = text[..text.len() - 1]
        .parse()
        .ok()
        .filter(|n| *n >= 0 && *n <= 100 * 365)
        .ok_or_else(|| format!("{text:?} is neither RFC 3339 nor an age such as 30d"))?;
    Timestamp::from_unix_micros(now.unix_micros() - count * unit * 1_000_000)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// Days, `90` or `90d`, from 1 to 365 (as IAM Access Analyzer allows).
///
/// # Errors
///
/// When `text` is not a number of days in that range.
pub fn parse_days(text: &str) -> Result<u32, String> {
    let digits = text.strip_suffix('d').unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(days @ 1..=365) => Ok(days),
        _ => Err(format!("{text:?}: give days from 1 to 365, such as 90d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_written_back_past_four_digit_years_is_refused() {
        let now = Timestamp::parse("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(
            parse_time("9999-12-31T23:59:59Z", now).unwrap().to_string(),
            "9999-12-31T23:59:59.000000Z"
        );
        assert_eq!(
            parse_time("0000-01-01T00:30:00+00:00", now)
                .unwrap()
                .to_string(),
            "0000-01-01T00:30:00.000000Z"
        );
        for past in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00"] {
            let error = parse_time(past, now).unwrap_err();
            assert!(error.contains("outside the years 0000 to 9999"), "{error}");
        }
    }

    #[test]
    fn canonical_times_are_kept_and_others_rewritten() {
        let t = "2026-11-24T14:03:07.123456Z";
        assert!(matches!(canonical_time(t), Some(Cow::Borrowed(_))));
        assert_eq!(
            canonical_time("2026-11-24T15:03:07.123456+01:00").as_deref(),
            Some(t)
        );
        assert_eq!(
            canonical_time("2026-11-24T14:03:07Z").as_deref(),
            Some("2026-11-24T14:03:07.000000Z")
        );
        assert_eq!(canonical_time("yesterday"), None);
        assert_eq!(canonical_time("2026-99-99T99:99:99.999999Z"), None);
        assert_eq!(canonical_time("2026-02-30T25:00:00.000000Z"), None);
        assert_eq!(canonical_time("2026-02-30T12:00:00.000000Z"), None);
        assert_eq!(canonical_time("2026-04-31T12:00:00.000000Z"), None);
        assert_eq!(canonical_time("2027-02-29T12:00:00.000000Z"), None);
        assert!(canonical_time("2028-02-29T12:00:00.000000Z").is_some());
        assert!(canonical_time("2000-02-29T12:00:00.000000Z").is_some());
        assert_eq!(canonical_time("2100-02-29T12:00:00.000000Z"), None);
        // Each day as the parser sees it, over four years and a century's exceptions.
        for year in [1900, 2000, 2024, 2025, 2026, 2027] {
            for month in 1..=12 {
                for day in 27..=32 {
                    let time = format!("{year}-{month:02}-{day:02}T00:00:00.000000Z");
                    assert_eq!(
                        canonical_time(&time).is_some(),
                        Timestamp::parse(&time).is_some(),
                        "{time}"
                    );
                }
            }
        }
        assert!(canonical_time("2026-12-31T23:59:59.999999Z").is_some());
        // Past 9999 in UTC: it would sort before every real time.
        assert_eq!(canonical_time("9999-12-31T23:00:00-02:00"), None);
        assert_eq!(canonical_time("2026-11-24T14:03:07.12345xZ"), None);
    }

    #[test]
    fn ages_count_back_from_now() {
        let now = Timestamp::parse("2026-12-01T00:00:00Z").unwrap();
        let back = |text| parse_time(text, now).unwrap().to_string();
        assert_eq!(back("30d"), "2026-11-01T00:00:00.000000Z");
        assert_eq!(back("12h"), "2026-11-30T12:00:00.000000Z");
        assert_eq!(back("1w"), "2026-11-24T00:00:00.000000Z");
        assert_eq!(back("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05.000000Z");
        assert!(parse_time("30x", now).is_err());
        assert!(parse_time("-3d", now).is_err());
        assert!(parse_time("d", now).is_err());
    }

    #[test]
    fn unused_after_takes_one_to_365_days() {
        assert_eq!(parse_days("90d"), Ok(90));
        assert_eq!(parse_days("1"), Ok(1));
        assert_eq!(parse_days("365d"), Ok(365));
        assert!(parse_days("0d").is_err());
        assert!(parse_days("366").is_err());
        assert!(parse_days("3w").is_err());
    }
}
