use std::time::SystemTime;

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Timelike, Utc};
use serde::{Serialize, Serializer};

/// An instant in UTC, serialised as RFC 3339 with microseconds and `Z`
/// (`2026-11-24T14:03:07.123456Z`), the `time` field of schema v1.
///
/// Kept at microsecond precision, so a time read back from an event equals the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        // Whole microseconds from the clock's reading, without chrono's calendar arithmetic
        // for the nanoseconds that would be dropped anyway.
        let micros = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).ok(),
            Err(before) => i64::try_from(before.duration().as_micros())
                .ok()
                .map(|m| -m),
        };
        micros
            .and_then(DateTime::from_timestamp_micros)
            .map_or_else(|| Timestamp(Utc::now().trunc_subsecs(6)), Timestamp)
    }

    /// From seconds since the Unix epoch (JWT `iat`/`exp`); `None` when out of range.
    pub fn from_unix(secs: i64) -> Option<Self> {
        DateTime::from_timestamp(secs, 0).map(Timestamp)
    }

    /// Reads an RFC 3339 time (any offset, converted to UTC); `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp(t.with_timezone(&Utc).trunc_subsecs(6)))
    }

    /// From microseconds since the Unix epoch; `None` when out of range.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Timestamp)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        self.0.timestamp()
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// A new UUIDv7 of this time: its milliseconds, and 74 random bits. Unique, but not
    /// ordered among ids of the same millisecond, and it reads neither the clock nor the
    /// process-wide counter that `Uuid::now_v7` locks.
    pub(crate) fn uuid_v7(&self) -> uuid::Uuid {
        let millis = u64::try_from(self.unix_micros().div_euclid(1_000)).unwrap_or(0);
        super::uuid_text::uuid_v7(millis)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp(DateTime::<Utc>::from(t).trunc_subsecs(6))
    }
}

/// `2026-11-24T14:03:07.123456Z`.
const TEXT_LEN: usize = 27;

/// `00` to `99`, two bytes each.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// A [`Timestamp`] written out, on the stack: every event writes one or more, and
/// chrono's formatting (through `fmt` and a `String`) cost about 1,300 instructions each.
pub(super) struct TimeText([u8; TEXT_LEN]);

impl TimeText {
    /// The text's bytes, all ASCII.
    pub(super) fn as_bytes(&self) -> &[u8; TEXT_LEN] {
        &self.0
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ASCII digits and separators were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Timestamp {
    /// The RFC 3339 text, for a year of four digits and no leap second; `None` otherwise
    /// (chrono writes those).
    ///
    /// The digits are written two at a time from a table: a division per digit cost about
    /// 290 instructions on every event.
    pub(super) fn text(&self) -> Option<TimeText> {
        let (date, time) = (self.0.date_naive(), self.0.time());
        let nanos = time.nanosecond();
        // A leap second (nanoseconds past 999,999,999) is left to chrono.
        if nanos >= 1_000_000_000 {
            return None;
        }
        let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
        let (second, micro) = (time.num_seconds_from_midnight(), nanos / 1_000);
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, two_digits: u32| {
            // Each below a hundred, so within the table.
            let pair = two_digits as usize * 2;
            text[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        };
        put(0, year / 100);
        put(2, year % 100);
        put(5, date.month());
        put(8, date.day());
        put(11, second / 3_600);
        put(14, second / 60 % 60);
        put(17, second % 60);
        put(20, micro / 10_000);
        put(22, micro / 100 % 100);
        put(24, micro % 100);
        Some(TimeText(text))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.text() {
            Some(text) => f.write_str(text.as_str()),
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.text() {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_the_clock_in_whole_microseconds() {
        let before = Utc::now().trunc_subsecs(6);
        let now = Timestamp::now();
        let after = Utc::now();
        assert!(
            before <= now.0 && now.0 <= after,
            "{before} {} {after}",
            now.0
        );
        assert_eq!(now.0.timestamp_subsec_nanos() % 1_000, 0);
    }

    #[test]
    fn formats_microseconds_in_utc() {
        let t = Timestamp(DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap());
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            Timestamp::from_unix(0).unwrap().to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    /// What chrono writes, for comparison.
    fn chrono_text(t: &Timestamp) -> String {
        t.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    #[test]
    fn years_past_four_digits_are_written_by_chrono() {
        let far = Timestamp::from_unix(300_000_000_000).unwrap();
        assert_eq!(far.to_string(), chrono_text(&far));
        assert!(far.to_string().starts_with("+11476-"), "{far}");
        let serialised = serde_json::to_string(&far).unwrap();
        assert_eq!(serialised, format!("\"{far}\""));
    }

    #[test]
    fn a_leap_second_is_written_by_chrono() {
        let leap = Timestamp(DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap());
        assert!(leap.text().is_none());
        assert_eq!(leap.to_string(), chrono_text(&leap));
        assert!(
            leap.to_string().starts_with("2016-12-31T23:59:60.5"),
            "{leap}"
        );
    }

    proptest::proptest! {
        #[test]
        fn written_as_chrono_writes_it(micros in -62_135_596_800_000_000i64..253_402_300_800_000_000) {
            let t = Timestamp::from_unix_micros(micros).unwrap();
            let text = t.to_string();
            proptest::prop_assert_eq!(&text, &chrono_text(&t));
            proptest::prop_assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{text}\""));
            proptest::prop_assert_eq!(Timestamp::parse(&text), Some(t));
        }
    }
}
