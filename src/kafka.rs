//! The CloudEvents Kafka protocol binding: binary and structured content modes.
//!
//! The message types here know no Kafka client; `rdkafka` conversions live behind the
//! `rdkafka` feature.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Location, Result, quote};
use crate::event::{JSON, OutboxEvent};
use crate::format::check_specversion;
use crate::mapping::Profile;
use crate::names::{RESERVED, check_extension_name, check_string};
use crate::payload::{FromData, ToData};
use crate::time;
use crate::wire::{Data, ExtensionValue, TimeStyle, WireEvent, is_json_content_type};

/// The `content-type` of structured mode with the JSON event format.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// A Kafka record header: a name and an optional value. Kafka allows duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name.
    pub name: Cow<'static, str>,
    /// The value; `None` is a null header value.
    pub value: Option<Vec<u8>>,
}

impl Header {
    /// A header with a value.
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// A Kafka message: key, ordered headers (duplicates kept) and value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record headers, in order.
    pub headers: Vec<Header>,
    /// The record value; `None` is a null value (a tombstone on a compacted topic).
    pub value: Option<Vec<u8>>,
}

impl Message {
    /// A borrowed view for decoding.
    pub fn as_ref(&self) -> MessageRef<'_> {
        MessageRef {
            key: self.key.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|h| HeaderRef {
                    name: h.name.as_bytes(),
                    value: h.value.as_deref(),
                })
                .collect(),
            value: self.value.as_deref(),
        }
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_deref())
    }
}

/// A borrowed header, as a Kafka client hands it out. Names are bytes so that a name that is
/// not UTF-8 reaches the decoder and is reported rather than lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The header name.
    pub name: &'a [u8],
    /// The value; `None` is a null header value.
    pub value: Option<&'a [u8]>,
}

/// A borrowed Kafka message; decoding it copies only what the returned event must own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The record headers, in order.
    pub headers: Vec<HeaderRef<'a>>,
    /// The record value.
    pub value: Option<&'a [u8]>,
}

/// The binding's content modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Attributes in `ce_` headers, data in the value.
    Binary,
    /// The whole event, in the JSON event format, in the value.
    Structured,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "binary" => Ok(Mode::Binary),
            "structured" => Ok(Mode::Structured),
            _ => Err(Error::new(
                ErrorKind::Invalid,
                format!("{} is not a mode: use `binary` or `structured`", quote(s)),
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Binary => "binary",
            Mode::Structured => "structured",
        })
    }
}

type KeyMapper = Arc<dyn Fn(&WireEvent<'_>) -> Option<Vec<u8>> + Send + Sync>;

/// Encodes events as Kafka messages.
///
/// By default the key is the partition key of an outbox event (in either profile) and the
/// `partitionkey` extension of a CloudEvent, events without data are refused in binary mode (see
/// [`allow_tombstones`](Encoder::allow_tombstones)), and outbox events use
/// [`Profile::Canonical`].
#[derive(Clone)]
pub struct Encoder {
    mode: Mode,
    profile: Profile,
    key: Option<KeyMapper>,
    tombstones: bool,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("mode", &self.mode)
            .field("profile", &self.profile)
            .field("custom_key", &self.key.is_some())
            .field("tombstones", &self.tombstones)
            .finish()
    }
}

impl Encoder {
    /// An encoder for `mode` with the defaults above.
    pub fn new(mode: Mode) -> Self {
        Encoder {
            mode,
            profile: Profile::Canonical,
            key: None,
            tombstones: false,
        }
    }

    /// Maps outbox events to CloudEvents in `profile`.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Computes the key from the event instead of `partitionkey`. The event itself is not
    /// changed: `partitionkey` is still written.
    pub fn key_mapper(
        mut self,
        mapper: impl Fn(&WireEvent<'_>) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        self.key = Some(Arc::new(mapper));
        self
    }

    /// Lets an event without data become a binary-mode message without a value, which a
    /// compacted topic reads as a tombstone.
    pub fn allow_tombstones(mut self, allow: bool) -> Self {
        self.tombstones = allow;
        self
    }

    /// The content mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Encodes an outbox event.
    ///
    /// # Errors
    /// As [`OutboxEvent::to_wire`] and [`Encoder::encode_wire`]; and [`ErrorKind::Invalid`] in
    /// binary mode for a JSON payload under a `datacontenttype` that is not JSON, which would
    /// read back as bytes, not as the payload.
    pub fn encode<P: ToData>(&self, event: &OutboxEvent<P>) -> Result<Message> {
        let wire = event.to_wire(&self.profile)?;
        if self.mode == Mode::Binary
            && matches!(wire.data, Some(Data::Json(_)))
            && !is_json_content_type(wire.datacontenttype())
        {
            // The binding says a receiver reads the value by `content-type`: under a type that
            // is not JSON these bytes come back as bytes, and the event would not decode to
            // itself (decode(encode(x)) == x).
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "{} is not a JSON content type, so binary mode would carry the JSON payload as bytes that do not read back as it; use structured mode or a JSON content type",
                    quote(wire.datacontenttype().unwrap_or_default())
                ),
            )
            .attribute("datacontenttype"));
        }
        let key = match &self.key {
            Some(mapper) => mapper(&wire),
            // The outbox contract: the partition key, in every profile.
            None => Some(event.partition_key().as_bytes().to_vec()),
        };
        self.encode_with_key(&wire, key)
    }

    /// Encodes a `cloudevents::Event`.
    ///
    /// # Errors
    /// As [`WireEvent::try_from`] for the event and [`Encoder::encode_wire`].
    pub fn encode_cloudevent(&self, event: &cloudevents::Event) -> Result<Message> {
        self.encode_wire(&WireEvent::try_from(event)?)
    }

    /// Encodes a CloudEvent.
    ///
    /// # Errors
    /// [`ErrorKind::Tombstone`] for an event without data in binary mode unless tombstones
    /// are allowed; [`ErrorKind::Invalid`] in binary mode for bytes or text data under a JSON
    /// content type (or none), which would come back as JSON or not at all, and for a
    /// `datacontenttype` starting with `application/cloudevents`, which would make the message
    /// read as structured mode.
    pub fn encode_wire(&self, event: &WireEvent<'_>) -> Result<Message> {
        let key = match &self.key {
            Some(mapper) => mapper(event),
            None => event
                .extension("partitionkey")
                .map(|v| v.to_canonical_string().as_bytes().to_vec()),
        };
        self.encode_with_key(event, key)
    }

    fn encode_with_key(&self, event: &WireEvent<'_>, key: Option<Vec<u8>>) -> Result<Message> {
        match self.mode {
            Mode::Structured => Ok(Message {
                key,
                headers: vec![Header::new("content-type", STRUCTURED_CONTENT_TYPE)],
                value: Some(event.to_json()),
            }),
            Mode::Binary => {
                if event.data.is_none() && !self.tombstones {
                    return Err(Error::new(
                        ErrorKind::Tombstone,
                        "the event has no data, so its binary-mode message would have no value: a tombstone on a compacted topic; allow tombstones to send it",
                    )
                    .at(Location::Value));
                }
                if let Some(ct) = event.datacontenttype()
                    && !matches!(is_structured(ct), Ok(false))
                {
                    // Binary mode's `content-type` is `datacontenttype`; this one would make a
                    // receiver read the message as structured mode.
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        format!(
                            "{} as `content-type` marks a structured-mode message, so binary mode cannot carry it; use structured mode",
                            quote(ct)
                        ),
                    )
                    .attribute("datacontenttype"));
                }
                if let Some(data @ (Data::Binary(_) | Data::Text(_))) = &event.data
                    && is_json_content_type(event.datacontenttype())
                {
                    // The value of a binary-mode message under a JSON (or no) content type is
                    // read as JSON: bytes or text there would not come back as they went.
                    let what = if matches!(data, Data::Binary(_)) {
                        "bytes"
                    } else {
                        "text"
                    };
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        format!(
                            "{what} under a JSON content type cannot be carried in binary mode, where the value is read as JSON; use structured mode or a non-JSON content type"
                        ),
                    )
                    .attribute("data"));
                }
                Ok(Message {
                    key,
                    headers: binary_headers(event),
                    value: event.data.as_ref().map(|d| d.as_bytes().to_vec()),
                })
            }
        }
    }
}

/// `content-type` first, then `ce_` headers in the JSON format's member order, extensions
/// by name (Kafka protocol binding, section 3.2.3).
fn binary_headers(event: &WireEvent<'_>) -> Vec<Header> {
    let mut headers = Vec::with_capacity(8 + event.extensions.len());
    if let Some(ct) = &event.datacontenttype {
        headers.push(Header::new("content-type", ct.as_bytes()));
    }
    headers.push(Header::new("ce_specversion", "1.0"));
    headers.push(Header::new("ce_id", event.id.as_bytes()));
    headers.push(Header::new("ce_source", event.source.as_bytes()));
    headers.push(Header::new("ce_type", event.ty.as_bytes()));
    if let Some(schema) = &event.dataschema {
        headers.push(Header::new("ce_dataschema", schema.as_bytes()));
    }
    if let Some(subject) = &event.subject {
        headers.push(Header::new("ce_subject", subject.as_bytes()));
    }
    if let Some(stamp) = event.time_stamp() {
        headers.push(Header::new("ce_time", stamp.as_str().as_bytes()));
    }
    for (name, value) in &event.extensions {
        headers.push(Header::new(
            extension_header(name),
            value.to_canonical_string().as_bytes(),
        ));
    }
    headers
}

fn extension_header(name: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 5] = [
        "ce_aggregateid",
        "ce_causationid",
        "ce_correlationid",
        "ce_dataversion",
        "ce_partitionkey",
    ];
    match KNOWN.iter().find(|h| &h[3..] == name) {
        Some(h) => Cow::Borrowed(h),
        None => Cow::Owned(format!("ce_{name}")),
    }
}

/// Which content mode a message is in.
///
/// # Errors
/// As [`decode`] for the `content-type` header; [`ErrorKind::NotACloudEvent`] when the message
/// has neither a CloudEvents `content-type` nor `ce_` headers.
pub fn detect_mode(message: &MessageRef<'_>) -> Result<Mode> {
    mode_of(message, content_type(message)?)
}

/// [`detect_mode`] with the `content-type` header already read.
fn mode_of(message: &MessageRef<'_>, content_type: Option<&str>) -> Result<Mode> {
    if let Some(ct) = content_type
        && is_structured(ct)?
    {
        return Ok(Mode::Structured);
    }
    if message.headers.iter().any(|h| h.name.starts_with(b"ce_")) {
        Ok(Mode::Binary)
    } else {
        Err(Error::new(
            ErrorKind::NotACloudEvent,
            "not a CloudEvent: no `content-type: application/cloudevents…` header and no `ce_` headers",
        )
        .at(Location::Message))
    }
}

/// Decodes a Kafka message in either mode, detected from `content-type` as the binding says:
/// a media type starting with `application/cloudevents` (any case) is structured mode,
/// anything else with `ce_` headers is binary mode.
///
/// The key and headers that are not CloudEvents attributes stay on the message: nothing
/// becomes an attribute that was not sent as one.
///
/// # Errors
/// Every malformed message is an error naming the header or attribute: a null value on a
/// required attribute's header (`ce_specversion`, `ce_id`, `ce_source`, `ce_type`), a
/// non-UTF-8 CloudEvents header, a `ce_` header given twice, a missing or unsupported `specversion`,
/// a missing required attribute, an empty `id`, a bad `time`, an illegal extension name, a
/// structured-mode format other than JSON, a null or non-JSON structured value, and a
/// message that is not a CloudEvent at all.
pub fn decode<'a>(message: &MessageRef<'a>) -> Result<WireEvent<'a>> {
    let content_type = content_type(message)?;
    match mode_of(message, content_type)? {
        Mode::Structured => decode_structured(message),
        Mode::Binary => decode_binary(message, content_type),
    }
}

impl<P: FromData> OutboxEvent<P> {
    /// Decodes a Kafka message (either mode) into an outbox event in `profile`.
    ///
    /// # Errors
    /// As [`decode`] and [`OutboxEvent::from_wire`].
    pub fn from_message(message: &MessageRef<'_>, profile: &Profile) -> Result<Self> {
        OutboxEvent::from_wire(decode(message)?, profile)
    }
}

fn is_content_type(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-type")
}

/// The `content-type` header: at most one, with a UTF-8 value.
fn content_type<'a>(message: &MessageRef<'a>) -> Result<Option<&'a str>> {
    let mut found = None;
    let mut seen = false;
    for header in message.headers.iter().filter(|h| is_content_type(h.name)) {
        if std::mem::replace(&mut seen, true) {
            return Err(Error::new(ErrorKind::Duplicate, "header given twice").header(header.name));
        }
        // A null `content-type` is an unset one, as for the optional `ce_` headers.
        if let Some(value) = header.value {
            found = Some(utf8(header.name, value)?);
        }
    }
    Ok(found)
}

fn utf8<'a>(name: &[u8], value: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(value).map_err(|e| {
        Error::new(ErrorKind::NotUtf8, "header value is not UTF-8")
            .header(name)
            .caused_by(e)
    })
}

/// Whether a `content-type` names structured mode; only the JSON format is supported.
fn is_structured(content_type: &str) -> Result<bool> {
    // Compared as bytes: the media type may hold non-ASCII text, and a `str` slice that
    // cut a character would panic.
    const PREFIX: &[u8] = b"application/cloudevents";
    // The media type is what precedes the parameters.
    let end = content_type.bytes().position(|b| b == b';');
    let media = content_type[..end.unwrap_or(content_type.len())].trim();
    let media = media.as_bytes();
    if media.len() < PREFIX.len() || !media[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return Ok(false);
    }
    if media[PREFIX.len()..].eq_ignore_ascii_case(b"+json") {
        Ok(true)
    } else {
        Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "{} is a CloudEvents format this crate does not read; only application/cloudevents+json is supported",
                quote(content_type)
            ),
        )
        .header(b"content-type"))
    }
}

fn decode_structured<'a>(message: &MessageRef<'a>) -> Result<WireEvent<'a>> {
    let value = message.value.ok_or_else(|| {
        Error::new(
            ErrorKind::Missing,
            "a structured-mode message needs a value; it is null",
        )
        .at(Location::Value)
    })?;
    WireEvent::from_json(value).map_err(|e| e.or_at(Location::Value))
}

/// The first four are required.
const REQUIRED: usize = 4;

/// The core attributes; `data` and `data_base64` are not headers.
const CORE_HEADERS: &[&str] = RESERVED.split_at(8).0;

/// `content_type` is the message's `content-type` header, read by the caller.
fn decode_binary<'a>(
    message: &MessageRef<'a>,
    content_type: Option<&'a str>,
) -> Result<WireEvent<'a>> {
    let mut core: [Option<&'a str>; 8] = [None; 8];
    let mut extensions = Vec::new();
    for header in &message.headers {
        let Some(attribute) = header.name.strip_prefix(b"ce_") else {
            continue;
        };
        // Core names are matched as bytes; only other names need the UTF-8 check.
        let position = CORE_HEADERS.iter().position(|c| c.as_bytes() == attribute);
        let attribute = match position {
            Some(i) => CORE_HEADERS[i],
            None => std::str::from_utf8(attribute).map_err(|e| {
                Error::new(ErrorKind::NotUtf8, "header name is not UTF-8")
                    .header(header.name)
                    .caused_by(e)
            })?,
        };
        let Some(value) = header.value else {
            // A null value on an optional attribute reads as unset, as `null` does in the
            // JSON format: the JavaScript SDK writes one for every unset attribute.
            if position.is_some_and(|i| i < REQUIRED) {
                return Err(Error::new(
                    ErrorKind::NullHeader,
                    "a required attribute's header needs a value; it is null",
                )
                .header(header.name));
            }
            continue;
        };
        let value = utf8(header.name, value)?;
        match position {
            Some(i) if core[i].is_some() => {
                return Err(
                    Error::new(ErrorKind::Duplicate, "header given twice").header(header.name)
                );
            }
            Some(i) => core[i] = Some(value),
            None => {
                check_extension_name(attribute).map_err(|e| e.header(header.name))?;
                check_string(value).map_err(|e| e.header(header.name))?;
                if extensions.capacity() == 0 {
                    // Room for every header but the four required ones: one allocation.
                    extensions.reserve_exact(message.headers.len().saturating_sub(REQUIRED));
                }
                extensions.push((
                    Cow::Borrowed(attribute),
                    ExtensionValue::String(Cow::Borrowed(value)),
                ));
            }
        }
    }
    let [
        specversion,
        id,
        source,
        ty,
        ce_datacontenttype,
        dataschema,
        subject,
        time,
    ] = core;
    let missing = |name: &'static str| {
        move || {
            Error::new(ErrorKind::Missing, "required header is absent")
                .at(Location::Header(format!("ce_{name}")))
        }
    };
    let specversion = specversion.ok_or_else(missing("specversion"))?;
    check_specversion(specversion).map_err(|e| e.header(b"ce_specversion"))?;
    // The JavaScript SDK also writes `ce_datacontenttype`; accepted when it agrees.
    let datacontenttype = match (content_type, ce_datacontenttype) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{} disagrees with `content-type` {}", quote(b), quote(a)),
            )
            .header(b"ce_datacontenttype"));
        }
        (a, b) => a.or(b),
    };
    let time = time
        .map(|t| time::parse(t).map_err(|e| e.header(b"ce_time")))
        .transpose()?;
    let data = match message.value {
        None => None,
        Some(bytes) => binary_data(bytes, datacontenttype)?,
    };
    let mut event = WireEvent {
        id: Cow::Borrowed(id.ok_or_else(missing("id"))?),
        source: Cow::Borrowed(source.ok_or_else(missing("source"))?),
        ty: Cow::Borrowed(ty.ok_or_else(missing("type"))?),
        datacontenttype: datacontenttype.map(Cow::Borrowed),
        dataschema: dataschema.map(Cow::Borrowed),
        subject: subject.map(Cow::Borrowed),
        time,
        extensions,
        data,
        time_style: TimeStyle::Canonical,
    };
    event.validate_read().map_err(|e| match e.location() {
        Some(Location::Attribute(name)) => {
            let header = format!("ce_{name}");
            e.at(Location::Header(header))
        }
        _ => e,
    })?;
    Ok(event)
}

/// The value of a binary-mode message as data. A JSON content type must carry JSON; with no
/// content type the value is JSON when it parses and bytes otherwise; an empty value under a
/// JSON type is no data (what producers send for an event without data).
fn binary_data<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Result<Option<Data<'a>>> {
    // `application/json`, by far the most common type, is matched without parsing it.
    if content_type != Some(JSON) && !is_json_content_type(content_type) {
        return Ok(Some(Data::Binary(Cow::Borrowed(bytes))));
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(raw) => Ok(Some(Data::Json(Cow::Borrowed(raw)))),
        Err(_) if content_type.is_none() => Ok(Some(Data::Binary(Cow::Borrowed(bytes)))),
        Err(e) => Err(Error::new(
            ErrorKind::Json,
            format!(
                "not JSON, though `content-type` is {}",
                quote(content_type.unwrap_or_default())
            ),
        )
        .at(Location::Value)
        .caused_by(e)),
    }
}
