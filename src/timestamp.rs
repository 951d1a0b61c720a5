//! [`Timestamp`]: a .NET `DateTimeOffset` as key files store it.
//!
//! Read: `yyyy-MM-ddTHH:mm:ss`, 0 to 7 fractional digits, then `Z`, `±hh:mm`, or nothing (read as
//! UTC). Written: as `XmlConvert.ToString(DateTimeOffset)` writes it: trailing fractional zeros
//! trimmed, `Z` for a zero offset. The text read is kept, so rewriting a file keeps it exactly.

use std::cmp::Ordering;
use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::{Error, Result};

/// A point in time with its offset, as found in `creationDate`, `activationDate`,
/// `expirationDate` and `revocationDate`.
#[derive(Clone)]
pub struct Timestamp {
    value: OffsetDateTime,
    text: Box<str>,
}

impl Timestamp {
    /// Parses the XML form of a `DateTimeOffset`.
    pub fn parse(text: &str) -> Result<Timestamp> {
        let t = text.trim();
        let bad = || {
            Error::format(format!(
                "'{}' is not a date in the form 2024-05-04T19:16:30.1234567Z",
                t.chars().take(40).collect::<String>()
            ))
        };
        if t.len() > 40 || !t.contains('T') {
            return Err(bad());
        }
        if let Some(frac) = t.split_once('.').map(|(_, f)| f) {
            let digits = frac.chars().take_while(char::is_ascii_digit).count();
            if digits == 0 || digits > 7 {
                return Err(bad());
            }
        }
        let value = match OffsetDateTime::parse(t, &Rfc3339) {
            Ok(v) => v,
            Err(_) => {
                // XmlConvert also reads a date without an offset; .NET would take the machine's
                // local time, dpwrap takes UTC so that results do not depend on the machine.
                let format = time::macros::format_description!(
                    version = 2,
                    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
                );
                PrimitiveDateTime::parse(t, &format)
                    .map_err(|_| bad())?
                    .assume_utc()
            }
        };
        Ok(Timestamp {
            value,
            text: t.into(),
        })
    }

    /// A timestamp for `value`, written the way .NET writes it.
    pub fn from_datetime(value: OffsetDateTime) -> Timestamp {
        // DateTimeOffset has 100 ns ticks.
        let nanos = value.nanosecond() / 100 * 100;
        let value = value.replace_nanosecond(nanos).unwrap_or(value);
        Timestamp {
            text: format_dotnet(value).into(),
            value,
        }
    }

    /// The current time in UTC.
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(OffsetDateTime::now_utc())
    }

    /// The instant.
    pub fn datetime(&self) -> OffsetDateTime {
        self.value
    }

    /// The text as read (or as .NET would write it).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// This timestamp plus `duration`.
    pub fn checked_add(&self, duration: time::Duration) -> Option<Timestamp> {
        self.value
            .checked_add(duration)
            .map(Timestamp::from_datetime)
    }
}

fn format_dotnet(v: OffsetDateTime) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        v.year(),
        u8::from(v.month()),
        v.day(),
        v.hour(),
        v.minute(),
        v.second()
    );
    let ticks = v.nanosecond() / 100;
    if ticks != 0 {
        let frac = format!("{ticks:07}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    let offset: UtcOffset = v.offset();
    if offset.is_utc() {
        s.push('Z');
    } else {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        s.push_str(&format!(
            "{sign}{:02}:{:02}",
            h.unsigned_abs(),
            m.unsigned_abs()
        ));
    }
    s
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Timestamp) -> bool {
        self.value == other.value
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Timestamp) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Timestamp) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.text)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_dotnet_form() {
        for s in [
            "2023-05-04T19:16:30.3590154Z",
            "2023-05-04T19:16:30Z",
            "2023-05-04T19:16:30.5+02:00",
            "2023-05-04T19:16:30.359015-07:30",
            "2023-05-04T19:16:30",
            "2023-05-04T19:16:30.1",
        ] {
            let t = Timestamp::parse(s).unwrap();
            assert_eq!(t.as_str(), s);
        }
        for s in [
            "2023-05-04",
            "2023-05-04T19:16:30.12345678Z",
            "yesterday",
            "2023-13-04T19:16:30Z",
            "",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn compares_instants_across_offsets() {
        let a = Timestamp::parse("2023-05-04T19:16:30Z").unwrap();
        let b = Timestamp::parse("2023-05-04T21:16:30+02:00").unwrap();
        let c = Timestamp::parse("2023-05-04T19:16:30.0000001Z").unwrap();
        assert_eq!(a, b);
        assert!(a < c);
    }

    #[test]
    fn writes_like_xmlconvert() {
        let t = Timestamp::parse("2026-08-26T19:46:53.518235Z").unwrap();
        assert_eq!(format_dotnet(t.datetime()), "2026-08-26T19:46:53.518235Z");
        let t = Timestamp::parse("2026-08-26T19:46:53.5000000+01:00").unwrap();
        assert_eq!(format_dotnet(t.datetime()), "2026-08-26T19:46:53.5+01:00");
        let t = Timestamp::parse("2026-08-26T19:46:53.0000000Z").unwrap();
        assert_eq!(format_dotnet(t.datetime()), "2026-08-26T19:46:53Z");
    }
}
