//! Dates and durations on the command line.

use dpwrap::Timestamp;

use crate::fail::{Fail, Outcome};

/// Longest lifetime accepted: 100 years.
const MAX_DAYS: i64 = 36_500;

/// A date: `2025-01-31` (midnight UTC) or `2025-01-31T12:00:00Z` (any offset, up to 7
/// fractional digits). Written back the way .NET writes dates.
pub fn parse_date(option: &str, text: &str) -> Outcome<Timestamp> {
    let t = text.trim();
    let full = if t.len() == 10 && !t.contains('T') {
        format!("{t}T00:00:00Z")
    } else {
        t.to_owned()
    };
    let parsed = Timestamp::parse(&full).map_err(|_| {
        Fail::usage(format!(
            "{option} '{}' is not a date; write 2025-01-31 or 2025-01-31T12:00:00Z",
            t.chars().take(40).collect::<String>()
        ))
    })?;
    Ok(Timestamp::from_datetime(parsed.datetime()))
}

/// A key lifetime (`--lifetime`): see [`parse_duration`].
pub fn parse_lifetime(text: &str) -> Outcome<time::Duration> {
    parse_duration("--lifetime", text)
}

/// A duration: `90d`, `12h`, `2w`, or a number of days.
pub fn parse_duration(option: &str, text: &str) -> Outcome<time::Duration> {
    let t = text.trim();
    let bad = || {
        Fail::usage(format!(
            "{option} '{}' is not a duration; write 90d, 12h or 2w (at most {MAX_DAYS} days)",
            t.chars().take(40).collect::<String>()
        ))
    };
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (t.get(..i).unwrap_or(""), c),
        _ => (t, 'd'),
    };
    let n: i64 = number.trim().parse().map_err(|_| bad())?;
    // Clamped both ways before the duration is built: time's constructors panic on overflow.
    let duration = match unit.to_ascii_lowercase() {
        'd' => time::Duration::days(n.clamp(0, MAX_DAYS + 1)),
        'h' => time::Duration::hours(n.clamp(0, (MAX_DAYS + 1) * 24)),
        'w' => time::Duration::weeks(n.clamp(0, MAX_DAYS / 7 + 1)),
        _ => return Err(bad()),
    };
    if !duration.is_positive() || duration > time::Duration::days(MAX_DAYS) {
        return Err(bad());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d").unwrap(), time::Duration::days(90));
        assert_eq!(parse_lifetime("90").unwrap(), time::Duration::days(90));
        assert_eq!(parse_lifetime("12h").unwrap(), time::Duration::hours(12));
        assert_eq!(parse_lifetime("2w").unwrap(), time::Duration::weeks(2));
        for bad in [
            "",
            "0d",
            "-1d",
            "5y",
            "d",
            "99999999999999999999d",
            "36501d",
            "-999999999999999999d",
            "-9999999999999999h",
            "-9999999999999999w",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("--x", "2025-01-31").unwrap().as_str(),
            "2025-01-31T00:00:00Z"
        );
        assert_eq!(
            parse_date("--x", "2025-01-31T12:00:00.5+00:00")
                .unwrap()
                .as_str(),
            "2025-01-31T12:00:00.5Z"
        );
        assert!(parse_date("--x", "yesterday").is_err());
    }
}
