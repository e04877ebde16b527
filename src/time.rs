//! RFC 3339 timestamps: one lenient reader, three exact writers.
//!
//! The reader takes what real producers send: `Z`, `z` or any `±hh:mm` offset (normalised to
//! UTC), `T`, `t` or a space between date and time, and any number of fraction digits (kept to
//! the nanosecond, further digits dropped). A timestamp without an offset, as Python's
//! `datetime.utcnow().isoformat()` writes it, reads as UTC. Epoch numbers and `GMT` suffixes
//! are refused.
//!
//! A leap second (second 60, RFC 3339 section 5.7) is the instant after 23:59:59 UTC, in
//! whatever offset it is written: `1990-12-31T15:59:60-08:00` and `1990-12-31T23:59:60Z` are
//! one instant, held as chrono holds a leap second (nanoseconds from 1\_000\_000\_000 on
//! second 59) and written back as second 60. Second 60 at any other minute of UTC is refused.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};

use crate::error::{Error, ErrorKind, Result, quote};

/// Parses an RFC 3339 timestamp, or, when `without_offset` allows it, one without an offset
/// (read as UTC).
///
/// An instant whose UTC form falls outside the years 0000–9999 (such as
/// `0000-01-01T00:00:00+23:59`) is refused: RFC 3339 cannot write it in UTC, so no reader,
/// this one included, would take it back.
pub(crate) fn parse(text: &str, without_offset: bool) -> Result<DateTime<Utc>> {
    parse_with_offset(text, without_offset).map(|(utc, _)| utc)
}

/// [`parse`], and the offset the text is written in, in seconds east of UTC: `Some(0)` for
/// `Z`, `None` for a text without an offset.
pub(crate) fn parse_with_offset(
    text: &str,
    without_offset: bool,
) -> Result<(DateTime<Utc>, Option<i32>)> {
    let (utc, offset) = match parse_parts(text.as_bytes()) {
        Ok((_, None)) if !without_offset => {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "{} has no offset; an RFC 3339 timestamp ends in `Z` or `±hh:mm`",
                    quote(text)
                ),
            ));
        }
        Ok(parts) => parts,
        Err(Bad::LeapSecond(utc)) => {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "{} has second 60 at {} UTC; a leap second is only ever 23:59:60 UTC",
                    quote(text),
                    utc.format("%H:%M")
                ),
            ));
        }
        Err(Bad::Syntax) => {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{} is not an RFC 3339 timestamp", quote(text)),
            ));
        }
    };
    // Four digits make a year within the range; only an offset can move it out.
    if !(0..=9999).contains(&chrono::Datelike::year(&utc.naive_utc())) {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "{} is outside the years 0000–9999 in UTC, which RFC 3339 cannot write",
                quote(text)
            ),
        ));
    }
    Ok((utc, offset))
}

/// Why a text is not a timestamp.
enum Bad {
    /// Not RFC 3339 (nor RFC 3339 without its offset).
    Syntax,
    /// Second 60 at a minute of UTC other than 23:59 (the UTC time given, second 59).
    LeapSecond(NaiveDateTime),
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let chunk = bytes.get(at..at + n)?;
    chunk.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// The instant, and the offset written (seconds east of UTC; `None` without one).
fn parse_parts(b: &[u8]) -> std::result::Result<(DateTime<Utc>, Option<i32>), Bad> {
    let (utc, leap, offset) = read_fields(b).ok_or(Bad::Syntax)?;
    if !leap {
        return Ok((utc.and_utc(), offset));
    }
    if (utc.hour(), utc.minute(), utc.second()) != (23, 59, 59) {
        return Err(Bad::LeapSecond(utc));
    }
    // 23:59:59 with nanoseconds below 1e9 becomes 23:59:60 with the same fraction.
    let leap = utc
        .with_nanosecond(1_000_000_000 + utc.nanosecond())
        .ok_or(Bad::Syntax)?;
    Ok((leap.and_utc(), offset))
}

/// The UTC date and time of the text, with second 60 read as second 59; whether it was
/// second 60; the offset written.
fn read_fields(b: &[u8]) -> Option<(NaiveDateTime, bool, Option<i32>)> {
    // date-time = full-date "T" full-time  (RFC 3339 section 5.6)
    let year = digits(b, 0, 4)?;
    let month = (b.get(4) == Some(&b'-')).then(|| digits(b, 5, 2))??;
    let day = (b.get(7) == Some(&b'-')).then(|| digits(b, 8, 2))??;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = (b.get(13) == Some(&b':')).then(|| digits(b, 14, 2))??;
    let second = (b.get(16) == Some(&b':')).then(|| digits(b, 17, 2))??;
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(d) = b.get(at).filter(|d| d.is_ascii_digit()) {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            at += 1;
        }
        let count = at - start;
        if count == 0 {
            return None;
        }
        // The scale of the digits read: 10^(9 - count) for fewer than nine.
        const SCALE: [u32; 9] = [
            1_000_000_000,
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
            100,
            10,
        ];
        if let Some(scale) = SCALE.get(count) {
            nanos *= scale;
        }
    }
    let offset: Option<i32> = match b.get(at..)? {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2], 0, 2)?;
            let minutes = digits(&[*m1, *m2], 0, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            // At most 23 * 3600 + 59 * 60, which an i32 holds.
            let magnitude = (hours * 3600 + minutes * 60) as i32;
            Some(if *sign == b'-' { -magnitude } else { magnitude })
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    // A leap second is read as second 59 and moved to UTC as that (chrono's arithmetic does
    // not keep a leap second across an offset); `parse_parts` makes it second 60 again.
    let leap = second == 60;
    let second = if leap { 59 } else { second };
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = NaiveDateTime::new(date, time);
    let utc = match offset {
        None | Some(0) => local,
        Some(seconds) => local.checked_sub_signed(TimeDelta::seconds(i64::from(seconds)))?,
    };
    Some((utc, leap, offset))
}

/// How many fraction digits a writer uses.
#[derive(Clone, Copy)]
enum Fraction {
    /// 0, 3, 6 or 9 digits: the fewest that keep the instant.
    Auto,
    /// 0, 6 or 9 digits, as Python writes microseconds (9 only when nanoseconds are set).
    Python,
}

/// The longest timestamp written: `+yyyy-mm-ddThh:mm:ss.nnnnnnnnn+00:00` fits.
pub(crate) const MAX_LEN: usize = 40;

/// A formatted timestamp on the stack.
pub(crate) struct Stamp {
    buf: [u8; MAX_LEN],
    len: usize,
}

impl Stamp {
    /// The timestamp's ASCII bytes.
    // `len` grows only in `write`, by bytes it has written within `buf`.
    #[allow(clippy::indexing_slicing)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap()
    }
}

// The longest stamp fits `buf`: a year of at most 7 characters (chrono's years lie within
// ±262143), 15 of date and time, 10 of fraction and 6 of offset make 38. `digits` is 3, 6 or
// 9 where it cuts `frac`, which holds 10 bytes.
#[allow(clippy::indexing_slicing)]
fn write(time: NaiveDateTime, fraction: Fraction, suffix: &[u8]) -> Stamp {
    use chrono::Datelike;
    let mut s = Stamp {
        buf: [0; MAX_LEN],
        len: 0,
    };
    let mut push = |bytes: &[u8]| {
        s.buf[s.len..s.len + bytes.len()].copy_from_slice(bytes);
        s.len += bytes.len();
    };
    let two = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let year = time.year();
    if (0..=9999).contains(&year) {
        let y = year as u32;
        push(&two(y / 100));
        push(&two(y % 100));
    } else {
        // Outside RFC 3339's range; written as chrono does, so the reader refuses it loudly.
        push(format!("{year:+05}").as_bytes());
    }
    push(b"-");
    push(&two(time.month()));
    push(b"-");
    push(&two(time.day()));
    push(b"T");
    push(&two(time.hour()));
    push(b":");
    push(&two(time.minute()));
    push(b":");
    // A leap second is stored as nanoseconds >= 1e9 on second 59.
    let (second, nanos) = match time.nanosecond() {
        n if n >= 1_000_000_000 => (60, n - 1_000_000_000),
        n => (time.second(), n),
    };
    push(&two(second));
    let digits = match fraction {
        _ if nanos == 0 => 0,
        Fraction::Auto if nanos % 1_000_000 == 0 => 3,
        Fraction::Auto | Fraction::Python if nanos % 1_000 == 0 => 6,
        _ => 9,
    };
    if digits > 0 {
        let mut frac = [0u8; 10];
        frac[0] = b'.';
        let mut n = nanos;
        for i in (1..=9).rev() {
            frac[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        push(&frac[..=digits]);
    }
    push(suffix);
    s
}

/// The canonical form: UTC with `Z` and 0, 3, 6 or 9 fraction digits. The same string in
/// every mode and every profile.
pub(crate) fn canonical(time: &DateTime<Utc>) -> Stamp {
    write(time.naive_utc(), Fraction::Auto, b"Z")
}

/// The form Python's `datetime.isoformat()` writes for an aware UTC datetime.
pub(crate) fn isoformat(time: &DateTime<Utc>) -> Stamp {
    write(time.naive_utc(), Fraction::Python, b"+00:00")
}

/// The form Python's `datetime.isoformat()` writes for the datetime pydantic reads from a
/// text in `offset` ([`parse_with_offset`]): the local time and `±hh:mm` (`+00:00` for UTC),
/// nothing after the time for a text without an offset. `None` when the local time is
/// beyond what chrono holds.
pub(crate) fn isoformat_in(time: &DateTime<Utc>, offset: Option<i32>) -> Option<Stamp> {
    let utc = time.naive_utc();
    let Some(seconds) = offset.filter(|s| *s != 0) else {
        let suffix: &[u8] = if offset.is_some() { b"+00:00" } else { b"" };
        return Some(write(utc, Fraction::Python, suffix));
    };
    // A leap second is moved as second 59 and made second 60 again in the local time.
    let nanos = utc.nanosecond();
    let leap = nanos >= 1_000_000_000;
    let utc = if leap {
        utc.with_nanosecond(nanos - 1_000_000_000)?
    } else {
        utc
    };
    let local = utc.checked_add_signed(TimeDelta::seconds(i64::from(seconds)))?;
    let local = if leap {
        local.with_nanosecond(nanos)?
    } else {
        local
    };
    let magnitude = seconds.unsigned_abs();
    let (hours, minutes) = (magnitude / 3600, magnitude % 3600 / 60);
    let two = |n: u32| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let [h1, h2] = two(hours);
    let [m1, m2] = two(minutes);
    let sign = if seconds < 0 { b'-' } else { b'+' };
    Some(write(
        local,
        Fraction::Python,
        &[sign, h1, h2, b':', m1, m2],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> String {
        canonical(&parse(text, true).unwrap()).as_str().to_owned()
    }

    #[test]
    fn reads_what_producers_send() {
        assert_eq!(at("2024-05-01T10:00:00Z"), "2024-05-01T10:00:00Z");
        assert_eq!(at("2024-05-01T10:00:00+00:00"), "2024-05-01T10:00:00Z");
        assert_eq!(at("2024-05-01t10:00:00z"), "2024-05-01T10:00:00Z");
        assert_eq!(at("2024-05-01 10:00:00"), "2024-05-01T10:00:00Z");
        assert_eq!(at("2024-05-01T12:30:00+02:30"), "2024-05-01T10:00:00Z");
        assert_eq!(at("2024-05-01T00:00:00-05:00"), "2024-05-01T05:00:00Z");
        assert_eq!(at("2024-05-01T10:00:00.1Z"), "2024-05-01T10:00:00.100Z");
        assert_eq!(
            at("2024-05-01T10:00:00.123456Z"),
            "2024-05-01T10:00:00.123456Z"
        );
        assert_eq!(
            at("2024-05-01T10:00:00.1234567Z"),
            "2024-05-01T10:00:00.123456700Z"
        );
        assert_eq!(
            at("2024-05-01T10:00:00.123456789123Z"),
            "2024-05-01T10:00:00.123456789Z"
        );
        assert_eq!(at("2016-12-31T23:59:60Z"), "2016-12-31T23:59:60Z");
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "",
            "1714557600000",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:00:00 GMT",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00+0200",
            "2024-05-01T10:00:00+24:00",
            "Wed, 01 May 2024 10:00:00 GMT",
            "２０２４-05-01T10:00:00Z",
        ] {
            assert!(parse(bad, true).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn an_offset_is_required_unless_allowed() {
        let err = parse("2024-05-01T10:00:00", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("has no offset"), "{err}");
        assert_eq!(
            parse("2024-05-01T10:00:00", true).unwrap(),
            parse("2024-05-01T10:00:00Z", false).unwrap()
        );
    }

    #[test]
    fn python_forms() {
        let t = parse("2024-05-01T10:00:00.120Z", false).unwrap();
        assert_eq!(isoformat(&t).as_str(), "2024-05-01T10:00:00.120000+00:00");
        let t = parse("2024-05-01T10:00:00Z", false).unwrap();
        assert_eq!(isoformat(&t).as_str(), "2024-05-01T10:00:00+00:00");
    }

    fn as_written(text: &str) -> String {
        let (instant, offset) = parse_with_offset(text, true).unwrap();
        isoformat_in(&instant, offset).unwrap().as_str().to_owned()
    }

    #[test]
    fn python_forms_keep_the_offset_written() {
        // What pydantic and isoformat() make of each text (python-outbox-core 0.1.0).
        for (text, python) in [
            ("2025-04-01T00:00:00", "2025-04-01T00:00:00"),
            ("2025-04-01 00:00:00", "2025-04-01T00:00:00"),
            ("2025-04-01T00:00:00Z", "2025-04-01T00:00:00+00:00"),
            ("2025-04-01t00:00:00z", "2025-04-01T00:00:00+00:00"),
            ("2025-04-01T00:00:00-00:00", "2025-04-01T00:00:00+00:00"),
            ("2025-04-01T02:30:00+02:30", "2025-04-01T02:30:00+02:30"),
            ("2025-04-01T00:00:00-09:45", "2025-04-01T00:00:00-09:45"),
            ("2025-04-01T00:00:00.1", "2025-04-01T00:00:00.100000"),
            ("2025-04-01T00:00:00.000000", "2025-04-01T00:00:00"),
            ("2025-04-01T00:00:00+23:59", "2025-04-01T00:00:00+23:59"),
            // Where Python cannot follow: nanoseconds are kept, and so is a leap second.
            (
                "2025-04-01T00:00:00.123456789Z",
                "2025-04-01T00:00:00.123456789+00:00",
            ),
            (
                "1990-12-31T15:59:60.5-08:00",
                "1990-12-31T15:59:60.500000-08:00",
            ),
        ] {
            assert_eq!(as_written(text), python, "{text}");
        }
    }

    #[test]
    fn a_leap_second_is_23_59_60_utc_in_any_offset() {
        for text in [
            "1990-12-31T23:59:60Z",
            "1990-12-31T15:59:60-08:00",
            "1991-01-01T05:29:60+05:30",
        ] {
            assert_eq!(at(text), "1990-12-31T23:59:60Z", "{text}");
        }
        assert_eq!(
            at("1990-12-31T15:59:60.25-08:00"),
            "1990-12-31T23:59:60.250Z"
        );
        for text in [
            "2024-05-01T10:30:60Z",
            "1990-12-31T23:59:60-08:00",
            "1990-12-31T23:58:60",
        ] {
            let error = parse(text, true).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("a leap second is only ever 23:59:60 UTC"),
                "{text}: {error}"
            );
        }
        let error = parse("1990-12-31T15:58:60-08:00", true).unwrap_err();
        assert!(
            error.to_string().contains("second 60 at 23:58 UTC"),
            "{error}"
        );
    }
}
