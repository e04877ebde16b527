//! RFC 3339 timestamps: one lenient reader, three exact writers.
//!
//! The reader takes what real producers send: `Z`, `z` or any `±hh:mm` offset (normalised to
//! UTC), `T`, `t` or a space between date and time, and any number of fraction digits (kept to
//! the nanosecond, further digits dropped). A timestamp without an offset, as Python's
//! `datetime.utcnow().isoformat()` writes it, reads as UTC. Epoch numbers and `GMT` suffixes
//! are refused.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};

use crate::error::{Error, ErrorKind, Result, quote};

/// Parses an RFC 3339 timestamp, or, when `without_offset` allows it, one without an offset
/// (read as UTC).
///
/// An instant whose UTC form falls outside the years 0000–9999 (such as
/// `0000-01-01T00:00:00+23:59`) is refused: RFC 3339 cannot write it in UTC, so no reader,
/// this one included, would take it back.
pub(crate) fn parse(text: &str, without_offset: bool) -> Result<DateTime<Utc>> {
    let utc = match parse_parts(text.as_bytes()) {
        Some((time, has_offset)) if has_offset || without_offset => time,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "{} has no offset; an RFC 3339 timestamp ends in `Z` or `±hh:mm`",
                    quote(text)
                ),
            ));
        }
        None => {
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
    Ok(utc)
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let chunk = bytes.get(at..at + n)?;
    chunk.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// The instant, and whether the text has an offset.
fn parse_parts(b: &[u8]) -> Option<(DateTime<Utc>, bool)> {
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
    let (offset_seconds, has_offset): (i64, bool) = match b.get(at..)? {
        [] => (0, false),
        [b'Z' | b'z'] => (0, true),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2], 0, 2)?;
            let minutes = digits(&[*m1, *m2], 0, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = i64::from(hours * 3600 + minutes * 60);
            (if *sign == b'-' { -magnitude } else { magnitude }, true)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    // A leap second (second 60) is carried in chrono's nanosecond field.
    let time = if second == 60 {
        NaiveTime::from_hms_nano_opt(hour, minute, 59, 1_000_000_000 + nanos)?
    } else {
        NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?
    };
    let local = NaiveDateTime::new(date, time);
    let utc = if offset_seconds == 0 {
        local
    } else {
        local.checked_sub_signed(TimeDelta::seconds(offset_seconds))?
    };
    Some((utc.and_utc(), has_offset))
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
fn write(time: &DateTime<Utc>, fraction: Fraction, suffix: &[u8]) -> Stamp {
    use chrono::Datelike;
    // The fields of the UTC date and time, read without an offset conversion per field.
    let time = time.naive_utc();
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
    write(time, Fraction::Auto, b"Z")
}

/// The form Python's `datetime.isoformat()` writes for an aware UTC datetime.
pub(crate) fn isoformat(time: &DateTime<Utc>) -> Stamp {
    write(time, Fraction::Python, b"+00:00")
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
}
