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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Attribute(name) => write!(f, "attribute `{name}`"),
            Location::Header(name) => write!(f, "header `{name}`"),
            Location::Field(name) => write!(f, "field `{name}`"),
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.inner.location {
            write!(f, "{location}: ")?;
        }
        f.write_str(&self.inner.message)?;
        if let Some(cause) = &self.inner.cause {
            write!(f, " ({cause})")?;
        }
        Ok(())
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

/// Quotes a value for an error message, cut short when it is long.
pub(crate) fn quote(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        // `cut` is where a character starts, so the split cannot fall inside one.
        Some((cut, _)) => format!("`{}…`", value.split_at(cut).0),
        None => format!("`{value}`"),
    }
}
