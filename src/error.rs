//! The one error type of the crate.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, for callers that branch on it.
///
/// The list grows as the crate learns new cases, so match it with a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required attribute, header or field is absent (or `null`).
    Missing,
    /// A value has the wrong form: a bad UUID, time, URI, event type, an empty string,
    /// a control character, a JSON value of the wrong type.
    Invalid,
    /// An extension name outside `[a-z0-9]`, or one that clashes with a core attribute.
    ExtensionName,
    /// `specversion` is not `1.0`.
    SpecVersion,
    /// A structured-mode format other than JSON, such as `application/cloudevents+avro`.
    UnsupportedFormat,
    /// The same attribute twice: two `ce_` headers of one name, or one JSON member twice.
    Duplicate,
    /// A header with no value where the binding requires one.
    NullHeader,
    /// Bytes that had to be UTF-8 and are not.
    NotUtf8,
    /// Bytes that had to be JSON and are not, or JSON that is not a CloudEvent.
    Json,
    /// A Kafka message that carries no CloudEvent in either content mode.
    NotACloudEvent,
    /// A Kafka message in a content mode the decoder was told not to accept.
    UnexpectedMode,
    /// `data` and `data_base64` both present.
    ConflictingData,
    /// The payload does not match the payload type it is read into, or cannot be written in
    /// the requested layout.
    Payload,
    /// An event without data would become a message without a value (a tombstone) and the
    /// caller did not ask for that.
    Tombstone,
}

/// Where the error is: the attribute, header or field it concerns.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A CloudEvents attribute or extension, by name.
    Attribute(Cow<'static, str>),
    /// A Kafka header, by name (lossily decoded when it is not UTF-8).
    Header(String),
    /// A member of python-outbox-core's `to_message()` JSON.
    Field(Cow<'static, str>),
    /// The Kafka message value.
    Value,
    /// The Kafka message as a whole.
    Message,
}

impl fmt::Display for Location {
    /// Names come from the input: they are cut after 80 characters and their control
    /// characters escaped, so that a name can neither fake a line of its own nor flood one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Attribute(name) => write!(f, "attribute `{}`", Shown(name)),
            Location::Header(name) => write!(f, "header `{}`", Shown(name)),
            Location::Field(name) => write!(f, "field `{}`", Shown(name)),
            Location::Value => f.write_str("message value"),
            Location::Message => f.write_str("message"),
        }
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from building, mapping, encoding or decoding an event.
///
/// [`kind`](Error::kind) tells what went wrong, [`location`](Error::location) where, and
/// [`source`](std::error::Error::source) the underlying cause when there is one. The
/// `Display` form reads `header `ce_time`: `2024-13-01T00:00:00Z` is not an RFC 3339 timestamp`.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    location: Option<Location>,
    message: String,
    cause: Option<Cause>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                location: None,
                message: message.into(),
                cause: None,
            }),
        }
    }

    pub(crate) fn at(mut self, location: Location) -> Self {
        self.inner.location = Some(location);
        self
    }

    /// Sets the location unless a more precise one is already set.
    pub(crate) fn or_at(self, location: Location) -> Self {
        if self.inner.location.is_some() {
            self
        } else {
            self.at(location)
        }
    }

    pub(crate) fn attribute(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.at(Location::Attribute(name.into()))
    }

    pub(crate) fn field(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.at(Location::Field(name.into()))
    }

    pub(crate) fn header(self, name: &[u8]) -> Self {
        self.at(Location::Header(String::from_utf8_lossy(name).into_owned()))
    }

    /// For an error reading `text` as JSON: names a cause that serde_json's message would
    /// hide, a byte-order mark or an unpaired surrogate escape.
    pub(crate) fn reading_json(mut self, text: &[u8]) -> Self {
        if text.starts_with("\u{feff}".as_bytes()) {
            self.inner
                .message
                .push_str(": it starts with a byte-order mark (U+FEFF), which JSON text must not");
        } else if let Some(escape) = unpaired_surrogate(text) {
            self.inner.message.push_str(&format!(
                ": `{escape}` is an unpaired surrogate, which encodes no character"
            ));
        }
        self
    }

    pub(crate) fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        self.inner.cause = Some(cause.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The attribute, header or field concerned, when there is one.
    pub fn location(&self) -> Option<&Location> {
        self.inner.location.as_ref()
    }

    /// The name of the attribute, header or field concerned, when there is one.
    pub fn name(&self) -> Option<&str> {
        match self.inner.location.as_ref()? {
            Location::Attribute(n) | Location::Field(n) => Some(n),
            Location::Header(n) => Some(n),
            Location::Value | Location::Message => None,
        }
    }
}

impl fmt::Display for Error {
    /// One line: control characters that a value, a name or a cause brought in are escaped
    /// (`\n`, `\u{1b}`), so the message can be written where each line is one report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Escaping(f);
        if let Some(location) = &self.inner.location {
            fmt::Write::write_fmt(&mut out, format_args!("{location}: "))?;
        }
        fmt::Write::write_str(&mut out, &self.inner.message)?;
        if let Some(cause) = &self.inner.cause {
            fmt::Write::write_fmt(&mut out, format_args!(" ({cause})"))?;
        }
        Ok(())
    }
}

/// Writes through to a formatter, escaping the characters that could end a line, move the
/// cursor, change colours or reorder text on a terminal.
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| needs_escape(*c)) {
            self.0.write_str(&rest[..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// C0 and C1 controls, DEL, the zero-width characters and the byte-order mark, the line and
/// paragraph separators, and the bidirectional marks, overrides and isolates.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// The longest name or value quoted in a message, in characters.
const MAX_SHOWN: usize = 80;

/// A name or value from the input as a message shows it: cut after [`MAX_SHOWN`]
/// characters (marked `…`), special characters escaped.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (text, cut) = match self.0.char_indices().nth(MAX_SHOWN) {
            Some((at, _)) => (&self.0[..at], "…"),
            None => (self.0, ""),
        };
        fmt::Write::write_str(&mut Escaping(f), text)?;
        f.write_str(cut)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("location", &self.inner.location)
            .field("message", &self.inner.message)
            .field("cause", &self.inner.cause)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The first `\uXXXX` escape in `text` that is half of a surrogate pair without its other
/// half.
fn unpaired_surrogate(text: &[u8]) -> Option<&str> {
    let unit = |at: usize| -> Option<u32> {
        let escape = text.get(at..at + 6)?;
        if escape.get(..2)? != b"\\u" {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(escape.get(2..)?).ok()?, 16).ok()
    };
    let mut at = 0;
    while let Some(offset) = text.get(at..)?.iter().position(|&b| b == b'\\') {
        at += offset;
        let Some(first) = unit(at) else {
            // Another escape, such as `\\`: skip both bytes.
            at += 2;
            continue;
        };
        let paired = match first {
            0xd800..=0xdbff => unit(at + 6).is_some_and(|u| (0xdc00..=0xdfff).contains(&u)),
            0xdc00..=0xdfff => false,
            _ => true,
        };
        if !paired {
            return text
                .get(at..at + 6)
                .and_then(|e| std::str::from_utf8(e).ok());
        }
        at += if (0xd800..=0xdbff).contains(&first) {
            12
        } else {
            6
        };
    }
    None
}

/// Quotes a value for an error message, cut short when it is long, special characters
/// escaped.
pub(crate) fn quote(value: &str) -> String {
    format!("`{}`", Shown(value))
}
