//! Validated names and strings: event types, extension names, URI-references.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result, quote};
use crate::word::{below, equal};

/// An outbox event type in reverse-DNS form, such as `com.gridflow.invite.created`.
///
/// Accepted: at least two labels separated by `.`; each label 1 to 63 characters of ASCII
/// letters, digits, `-` and `_`; the first label starts with a letter; 255 characters at most.
/// Case is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(String);

impl EventType {
    /// Validates `value` as a reverse-DNS event type.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] naming the rule that `value` breaks.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_event_type(&value).map_err(|why| {
            Error::new(
                ErrorKind::Invalid,
                format!("{} is not a reverse-DNS event type: {why}", quote(&value)),
            )
            .field("event_type")
        })?;
        Ok(EventType(value))
    }

    /// The event type as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_event_type(value: &str) -> Result<(), &'static str> {
    if is_plain_event_type(value.as_bytes()) {
        return Ok(());
    }
    if value.len() > 255 {
        return Err("longer than 255 characters");
    }
    let mut labels = 0;
    for label in value.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err("it has an empty label");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("labels may hold only ASCII letters, digits, `-` and `_`");
        }
    }
    if labels < 2 {
        return Err("it needs at least two labels separated by `.`");
    }
    if !value
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
    {
        return Err("it must start with a letter");
    }
    Ok(())
}

/// Byte classes for the fast paths, one bit each.
const EXTENSION_BYTE: u8 = 1;
const LABEL_BYTE: u8 = 2;
const LABEL_OR_DOT_BYTE: u8 = 4;
// `i` runs below 256, the table's length.
#[allow(clippy::indexing_slicing)]
const CLASSES: [u8; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            table[i] |= EXTENSION_BYTE;
        }
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            table[i] |= LABEL_BYTE | LABEL_OR_DOT_BYTE;
        }
        if b == b'.' {
            table[i] |= LABEL_OR_DOT_BYTE;
        }
        i += 1;
    }
    table
};

/// Whether every byte is in `class` (without early exit, so that it runs on whole vectors).
// A `u8` is below 256, the table's length.
#[allow(clippy::indexing_slicing)]
fn all_in(bytes: &[u8], class: u8) -> bool {
    bytes
        .iter()
        .fold(class, |all, &b| all & CLASSES[usize::from(b)])
        != 0
}

/// Accepts only what [`check_event_type`] accepts, faster; anything else takes the
/// rule-by-rule path that names the broken rule.
fn is_plain_event_type(bytes: &[u8]) -> bool {
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) || bytes.last() == Some(&b'.') {
        return false;
    }
    if bytes.len() > 63 {
        // Labels may be too long: label by label.
        let mut labels = 0;
        for label in bytes.split(|&b| b == b'.') {
            labels += 1;
            if label.is_empty() || label.len() > 63 || !all_in(label, LABEL_BYTE) {
                return false;
            }
        }
        return bytes.len() <= 255 && labels >= 2;
    }
    // No label can be longer than 63 bytes; each test runs over the whole without early
    // exit, so that it runs on whole vectors. The first byte is a letter and the last not a
    // `.`, so with a `.` and no `..` there are two labels or more, none empty.
    let dots = bytes.iter().fold(0u8, |n, &b| n + u8::from(b == b'.'));
    let doubled = bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .fold(false, |found, (&a, &b)| found | ((a == b'.') & (b == b'.')));
    all_in(bytes, LABEL_OR_DOT_BYTE) && dots > 0 && !doubled
}

/// The name of a CloudEvents extension attribute: `a-z` and `0-9` only, not `data`, and not
/// the name of a core attribute (CloudEvents 1.0, "Extension Context Attributes").
///
/// The spec's advice to stay within 20 characters and start with a letter is not enforced,
/// so events from other producers that ignore it still read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtensionName(pub(crate) String);

/// Core attribute names and the JSON format's reserved members, in the order of
/// [`reserved_index`], which the code uses; this list is for the tests that walk them.
#[cfg(test)]
pub(crate) const RESERVED: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

impl ExtensionName {
    /// Validates `name` as an extension name.
    ///
    /// # Errors
    /// [`ErrorKind::ExtensionName`] when a character is outside `a-z0-9` or the name is
    /// reserved.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_extension_name(&name)?;
        Ok(ExtensionName(name))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The place of a core attribute name or reserved JSON-format member among the ten
/// (`specversion` 0 … `data_base64` 9); `None` for any other name. A `match`, which
/// compiles to a length switch, not ten comparisons.
pub(crate) fn reserved_index(name: &str) -> Option<usize> {
    Some(match name {
        "specversion" => 0,
        "id" => 1,
        "source" => 2,
        "type" => 3,
        "datacontenttype" => 4,
        "dataschema" => 5,
        "subject" => 6,
        "time" => 7,
        "data" => 8,
        "data_base64" => 9,
        _ => return None,
    })
}

pub(crate) fn check_extension_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "is empty"
    } else if !all_in(name.as_bytes(), EXTENSION_BYTE) {
        "may hold only `a-z` and `0-9`"
    } else if reserved_index(name).is_some() {
        "is a core attribute, not an extension"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::ExtensionName,
        format!("extension name {} {why}", quote(name)),
    )
    .attribute(name.to_owned()))
}

/// Whether `bytes` hold a byte below 0x20, 0x7F, or 0xC2 (which starts U+0080–U+009F in
/// UTF-8): without one, a string has no control character. Sixteen bytes at a time, the last
/// block overlapping the one before, so no byte is tested alone unless the string is shorter
/// than eight bytes.
fn may_hold_control(bytes: &[u8]) -> bool {
    /// One block, without early exit, so that it compiles to vector compares.
    #[inline(always)]
    fn block(chunk: &[u8; 16]) -> bool {
        chunk.iter().fold(false, |found, &b| {
            found | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
        })
    }
    /// One word.
    #[inline(always)]
    fn word(chunk: &[u8; 8]) -> bool {
        let x = u64::from_le_bytes(*chunk);
        (below(x, 0x20) | equal(x, 0x7f) | equal(x, 0xc2)) != 0
    }
    if let Some(last) = bytes.last_chunk::<16>() {
        let mut chunks = bytes.chunks_exact(16);
        let mut found = false;
        for chunk in &mut chunks {
            found |= <&[u8; 16]>::try_from(chunk).is_ok_and(block);
        }
        if !chunks.remainder().is_empty() {
            found |= block(last);
        }
        return found;
    }
    if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return word(first) | word(last);
    }
    bytes.iter().any(|&b| b < 0x20 || b == 0x7f || b == 0xc2)
}

/// Checks a CloudEvents String: no control characters U+0000–U+001F and U+007F–U+009F
/// (CloudEvents 1.0, "Type System").
pub(crate) fn check_string(value: &str) -> Result<()> {
    if !may_hold_control(value.as_bytes()) {
        return Ok(());
    }
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "{} holds the control character U+{:04X}",
                quote(value),
                c as u32
            ),
        )),
    }
}

/// Checks a non-empty CloudEvents String.
pub(crate) fn check_non_empty(value: &str) -> Result<()> {
    check_filled(value)?;
    check_string(value)
}

/// Checks that a string known to be a CloudEvents String is not empty.
pub(crate) fn check_filled(value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::new(ErrorKind::Invalid, "must not be empty"));
    }
    Ok(())
}

/// Checks a URI-reference (RFC 3986 section 4.1): non-empty, only the characters RFC 3986
/// allows, `%` only before two hex digits, and a well-formed scheme when there is one. A
/// relative reference such as `user-service` is legal.
pub(crate) fn check_uri_reference(value: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::Invalid,
            format!("{} is not a URI-reference: {why}", quote(value)),
        ))
    };
    // Fast path: unreserved characters and `/` only (RFC 3986 section 2.3), so no `%` and no
    // scheme to check.
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'))
    {
        return Ok(());
    }
    if value.is_empty() {
        return bad("it is empty");
    }
    let bytes = value.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return bad("`%` must be followed by two hex digits");
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return bad("it holds a character RFC 3986 does not allow");
        }
        i += 1;
    }
    // A colon before the first `/`, `?` or `#` ends a scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    let head = value
        .split_once(['/', '?', '#'])
        .map_or(value, |(head, _)| head);
    if let Some((scheme, _)) = head.split_once(':') {
        let mut chars = scheme.bytes();
        let first_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
        if !first_ok || !chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
            return bad("the part before `:` is not a scheme");
        }
    }
    Ok(())
}

/// Checks an absolute URI, as `dataschema` requires.
pub(crate) fn check_absolute_uri(value: &str) -> Result<()> {
    check_uri_reference(value)?;
    url::Url::parse(value).map(drop).map_err(|e| {
        Error::new(
            ErrorKind::Invalid,
            format!("{} is not an absolute URI", quote(value)),
        )
        .caused_by(e)
    })
}

macro_rules! string_newtype {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $ty::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                $ty::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                $ty::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
    };
}

string_newtype!(EventType);
string_newtype!(ExtensionName);

/// An event id as this crate writes it: a lower-case hyphenated UUID.
pub(crate) fn hyphenated(id: Uuid) -> String {
    id.hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// Writes `id` as [`hyphenated`] does, without a `String` of its own.
pub(crate) fn write_hyphenated(out: &mut Vec<u8>, id: Uuid) {
    let mut buffer = Uuid::encode_buffer();
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
}

/// Parses a UUID in its hyphenated form (either case), the form python-outbox-core and this
/// crate write.
pub(crate) fn parse_uuid(text: &str) -> Result<Uuid> {
    parse_hyphenated(text.as_bytes()).ok_or_else(|| {
        Error::new(
            ErrorKind::Invalid,
            format!("{} is not a hyphenated UUID", quote(text)),
        )
    })
}

/// The value of each hex digit (either case); 0x10 for any other byte.
// `i` runs below 256, the table's length.
#[allow(clippy::indexing_slicing)]
const HEX: [u8; 256] = {
    let mut table = [0x10; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => 0x10,
        };
        i += 1;
    }
    table
};

/// `8-4-4-4-12` hex digits, as `Uuid::try_parse` reads a 36-byte text, without its
/// dispatch on the length and form: every pair of digits is read before one test of them all.
// The places in `AT` (plus one) lie below 36, the text's length; a `u8` is below 256, the
// length of `HEX`; `i` runs below 16, the length of `AT` and `out`.
#[allow(clippy::indexing_slicing)]
fn parse_hyphenated(text: &[u8]) -> Option<Uuid> {
    /// Where each byte's two digits start.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let text: &[u8; 36] = text.try_into().ok()?;
    if text[8] != b'-' || text[13] != b'-' || text[18] != b'-' || text[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bad = 0;
    for i in 0..16 {
        let high = HEX[usize::from(text[AT[i]])];
        let low = HEX[usize::from(text[AT[i] + 1])];
        bad |= high | low;
        out[i] = (high << 4) | low;
    }
    (bad & 0x10 == 0).then(|| Uuid::from_bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        for ok in [
            "com.gridflow.invite.created",
            "io.example.OrderPlaced",
            "org.acme.order_placed.v2",
            "a.b",
        ] {
            assert!(EventType::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "invite",
            "invite created",
            "com..x",
            ".com.x",
            "com.x.",
            "1com.x",
            "com/x.y",
            "com.exämple.x",
        ] {
            let err = EventType::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}");
            assert_eq!(err.name(), Some("event_type"));
        }
    }

    /// The fast paths accept exactly what the rules accept, at every length around the
    /// block sizes.
    #[test]
    fn fast_paths_agree_with_the_rules() {
        for len in 0..80 {
            for at in 0..len {
                for bad in [0x00u8, 0x1f, 0x7f, 0xc2] {
                    let mut bytes = vec![b'a'; len];
                    if let Some(b) = bytes.get_mut(at) {
                        *b = bad;
                    }
                    assert!(may_hold_control(&bytes), "{len} {at} {bad:#x}");
                }
            }
            assert!(!may_hold_control(&vec![b'~'; len]), "{len}");
            assert!(!may_hold_control(&vec![0x20; len]), "{len}");
        }
        let slow = |s: &str| {
            // The rules alone, as when no fast path takes the value.
            if s.len() > 255 || !s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
                return false;
            }
            let labels: Vec<&str> = s.split('.').collect();
            labels.len() >= 2
                && labels.iter().all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        let long = "x".repeat(63);
        let longer = "x".repeat(64);
        for value in [
            "a.b".to_owned(),
            "a..b".to_owned(),
            "a.b.".to_owned(),
            "a".to_owned(),
            "a.b-c_d.E9".to_owned(),
            "a.b c".to_owned(),
            format!("a.{long}"),
            format!("a.{longer}"),
            format!("a.{long}.{long}.{long}"),
            format!("a.{long}..{long}"),
            format!("a.{long}.{long}.{long}.{long}"),
            format!("{long}.b"),
            format!("a{long}.b"),
        ] {
            assert_eq!(
                is_plain_event_type(value.as_bytes()),
                slow(&value),
                "{value}"
            );
            assert_eq!(check_event_type(&value).is_ok(), slow(&value), "{value}");
        }
        for (i, name) in RESERVED.iter().enumerate() {
            assert_eq!(reserved_index(name), Some(i), "{name}");
        }
        for name in ["", "dat", "ids", "datas", "aggregateid", "partitionkey"] {
            assert_eq!(reserved_index(name), None, "{name}");
        }
    }

    /// The hyphenated-UUID reader accepts what `Uuid::try_parse` accepts at 36 bytes, and
    /// reads the same value.
    #[test]
    fn uuids_read_as_the_uuid_crate_reads_them() {
        let good = "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11";
        let mut cases = vec![
            good.to_owned(),
            good.to_uppercase(),
            "0D6f8A52-5a1F-4bB3-9d0E-3c8f6F5f2a11".to_owned(),
            "00000000-0000-0000-0000-000000000000".to_owned(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff".to_owned(),
            good.replace('-', ""),
            format!("{{{good}}}"),
            format!("urn:uuid:{good}"),
            good[..35].to_owned(),
            format!("{good}0"),
            "0d6f8a525-a1f-4bb3-9d0e-3c8f6f5f2a11".to_owned(),
            "0d6f8a52-5a1f-4bb3-9d0e+3c8f6f5f2a11".to_owned(),
            "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a1g".to_owned(),
            "g0d6f8a5-5a1f-4bb3-9d0e-3c8f6f5f2a11".to_owned(),
            "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a1é".to_owned(),
            String::new(),
        ];
        // Every position replaced by each kind of byte.
        for at in 0..36 {
            for b in ['-', 'a', 'F', '9', 'g', ' ', '/', ':', '@', '`', 'G'] {
                let mut text: Vec<char> = good.chars().collect();
                text[at] = b;
                cases.push(text.into_iter().collect());
            }
        }
        for text in cases {
            let expected = Uuid::try_parse(&text).ok().filter(|_| text.len() == 36);
            assert_eq!(parse_uuid(&text).ok(), expected, "{text}");
        }
    }

    /// The outbox extensions matched as bytes are exactly the list, and valid names, so the
    /// decoders may skip the name check for them.
    #[test]
    fn outbox_extensions_match_as_bytes() {
        for name in crate::event::OUTBOX_EXTENSIONS {
            assert_eq!(crate::event::outbox_extension(name.as_bytes()), Some(name));
            assert!(check_extension_name(name).is_ok(), "{name}");
        }
        for name in ["", "aggregate", "aggregateid2", "Aggregateid", "time"] {
            assert_eq!(crate::event::outbox_extension(name.as_bytes()), None);
        }
    }

    #[test]
    fn extension_names() {
        assert!(ExtensionName::new("aggregateid").is_ok());
        assert!(ExtensionName::new("x1").is_ok());
        for bad in [
            "",
            "Aggregate",
            "aggregate_id",
            "trace-parent",
            "data",
            "id",
            "é",
        ] {
            assert_eq!(
                ExtensionName::new(bad).unwrap_err().kind(),
                ErrorKind::ExtensionName,
                "{bad}"
            );
        }
    }

    #[test]
    fn uri_references() {
        for ok in [
            "user-service",
            "/orders",
            "https://example.com/x?y=1#z",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "a%20b",
            "//host/path",
        ] {
            assert!(check_uri_reference(ok).is_ok(), "{ok}");
        }
        for bad in ["", "user service", "a%2", "1http:x", "ü", "a\"b"] {
            assert!(check_uri_reference(bad).is_err(), "{bad}");
        }
    }
}
