//! [`Decoder`]: Kafka messages to events, in either content mode.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::Mode;
use super::message::MessageRef;
use crate::error::{Error, ErrorKind, Location, Result, quote};
use crate::event::{JSON, OutboxEvent, outbox_extension};
use crate::format::check_specversion;
use crate::mapping::Profile;
use crate::names::{check_extension_name, check_string};
use crate::payload::FromData;
use crate::time;
use crate::wire::{Data, ExtensionValue, TimeStyle, WireEvent, is_json_content_type};

/// Something real producers send that the binding does not allow, and that a [`Decoder`]
/// reads the way the producer meant it unless told to be strict. All are on by default.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leniency {
    /// A null value on the header of an optional attribute or extension (or on
    /// `content-type`) reads as unset, as `null` does in the JSON format: the JavaScript SDK
    /// writes one for every unset attribute. Strict: an [`ErrorKind::NullHeader`].
    NullHeaders,
    /// A `ce_datacontenttype` header beside `content-type` is accepted when the two agree:
    /// the JavaScript SDK writes both. Strict: an [`ErrorKind::Invalid`] on that header, as
    /// the binding carries `datacontenttype` only in `content-type`.
    DatacontenttypeHeader,
    /// A binary-mode value without a `content-type` is JSON when it parses and bytes
    /// otherwise. Strict: it must be JSON, as an absent `datacontenttype` means JSON.
    UntypedValue,
    /// An empty binary-mode value under a JSON content type is no data, which producers send
    /// for an event without data. Strict: an [`ErrorKind::Json`] error.
    EmptyValue,
    /// A `time` without an offset reads as UTC, as python-outbox-core's events written with
    /// `datetime.utcnow()` carry it. Strict: an [`ErrorKind::Invalid`] on `time`.
    TimeWithoutOffset,
}

impl Leniency {
    /// Every leniency.
    pub const ALL: [Leniency; 5] = [
        Leniency::NullHeaders,
        Leniency::DatacontenttypeHeader,
        Leniency::UntypedValue,
        Leniency::EmptyValue,
        Leniency::TimeWithoutOffset,
    ];

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Decodes Kafka messages into CloudEvents ([`WireEvent`]), outbox events and
/// `cloudevents::Event`s.
///
/// The mode comes from `content-type`, as the binding says: a media type starting with
/// `application/cloudevents` (any case) is structured mode, anything else with `ce_` headers
/// is binary mode; [`require_mode`](Decoder::require_mode) refuses the other one. Outbox
/// events are read in [`Profile::Canonical`] unless [`profile`](Decoder::profile) says
/// otherwise. Every [`Leniency`] is on until [`strict`](Decoder::strict) or
/// [`leniency`](Decoder::leniency) turns it off.
///
/// The key and headers that are not CloudEvents attributes stay on the message: nothing
/// becomes an attribute that was not sent as one.
///
/// ```
/// use outbox_cloudevents::{Decoder, Encoder, Leniency, Mode, OutboxEvent, Payload, Profile};
/// # fn main() -> Result<(), outbox_cloudevents::Error> {
/// # let event = OutboxEvent::new(uuid::Uuid::nil(), "com.shop.order.placed", "order-1",
/// #     "2024-05-01T10:00:00Z".parse().unwrap(), "shop", Payload::from_json("{}")?)?;
/// let message = Encoder::new(Mode::Binary).encode(&event)?;
/// let decoder = Decoder::new()
///     .require_mode(Mode::Binary)
///     .profile(Profile::Canonical)
///     .leniency(Leniency::NullHeaders, false);
/// assert_eq!(decoder.detect_mode(&message.as_ref())?, Mode::Binary);
/// let back: OutboxEvent<Payload> = decoder.decode(&message.as_ref())?;
/// assert_eq!(back, event);
/// let cloudevent = decoder.decode_cloudevent(&message.as_ref())?;
/// assert_eq!(cloudevent.id(), "00000000-0000-0000-0000-000000000000");
/// # use cloudevents::AttributesReader as _;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoder {
    mode: Option<Mode>,
    profile: Profile,
    leniencies: u8,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// The decoder of [`decode`] and [`OutboxEvent::from_message`].
const DEFAULT: Decoder = Decoder::new();

impl Decoder {
    /// A decoder that detects the mode, reads outbox events in the canonical profile and
    /// allows every [`Leniency`].
    pub const fn new() -> Self {
        let mut leniencies = 0;
        let mut rest: &[Leniency] = &Leniency::ALL;
        while let [first, tail @ ..] = rest {
            leniencies |= first.bit();
            rest = tail;
        }
        Decoder {
            mode: None,
            profile: Profile::Canonical,
            leniencies,
        }
    }

    /// Accepts only messages in `mode`; a message in the other one is an
    /// [`ErrorKind::UnexpectedMode`] error.
    pub fn require_mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Reads outbox events in `profile`.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Turns one leniency on or off.
    pub fn leniency(mut self, leniency: Leniency, on: bool) -> Self {
        if on {
            self.leniencies |= leniency.bit();
        } else {
            self.leniencies &= !leniency.bit();
        }
        self
    }

    /// Turns every leniency off: only what the binding and the spec allow decodes.
    pub fn strict(mut self) -> Self {
        self.leniencies = 0;
        self
    }

    /// Whether `leniency` is on.
    pub fn is_lenient(&self, leniency: Leniency) -> bool {
        self.leniencies & leniency.bit() != 0
    }

    /// Which content mode a message is in.
    ///
    /// # Errors
    /// As [`Decoder::decode_wire`] for the `content-type` header;
    /// [`ErrorKind::NotACloudEvent`] when the message has neither a CloudEvents
    /// `content-type` nor `ce_` headers.
    pub fn detect_mode(&self, message: &MessageRef<'_>) -> Result<Mode> {
        self.mode_of(message, self.content_type(message)?)
    }

    /// Decodes a message into an outbox event in the decoder's profile.
    ///
    /// # Errors
    /// As [`Decoder::decode_wire`] and [`OutboxEvent::from_wire`].
    pub fn decode<P: FromData>(&self, message: &MessageRef<'_>) -> Result<OutboxEvent<P>> {
        OutboxEvent::from_wire(self.decode_wire(message)?, &self.profile)
    }

    /// Decodes a message into a `cloudevents::Event`.
    ///
    /// # Errors
    /// As [`Decoder::decode_wire`], and when cloudevents-sdk refuses the event.
    pub fn decode_cloudevent(&self, message: &MessageRef<'_>) -> Result<cloudevents::Event> {
        cloudevents::Event::try_from(self.decode_wire(message)?)
    }

    /// Decodes a message into a CloudEvent that borrows from the message where it can.
    ///
    /// # Errors
    /// Every malformed message is an error naming the header or attribute: a null value on a
    /// required attribute's header (`ce_specversion`, `ce_id`, `ce_source`, `ce_type`), a
    /// non-UTF-8 CloudEvents header, a `ce_` header given twice, a missing or unsupported
    /// `specversion`, a missing required attribute, an empty `id`, a bad `time`, an illegal
    /// extension name, a structured-mode format other than JSON, a null or non-JSON
    /// structured value, a message that is not a CloudEvent at all, a message in a mode
    /// other than the required one, and what a [`Leniency`] turned off allowed.
    pub fn decode_wire<'a>(&self, message: &MessageRef<'a>) -> Result<WireEvent<'a>> {
        let content_type = self.content_type(message)?;
        match self.mode_of(message, content_type)? {
            Mode::Structured => self.decode_structured(message),
            Mode::Binary => self.decode_binary(message, content_type),
        }
    }

    /// [`detect_mode`](Self::detect_mode) with the `content-type` header already read.
    fn mode_of(&self, message: &MessageRef<'_>, content_type: Option<&str>) -> Result<Mode> {
        let mode = if let Some(ct) = content_type
            && is_structured(ct)?
        {
            Mode::Structured
        } else if message.headers.iter().any(|h| h.name.starts_with(b"ce_")) {
            Mode::Binary
        } else {
            return Err(Error::new(
                ErrorKind::NotACloudEvent,
                "not a CloudEvent: no `content-type: application/cloudevents…` header and no `ce_` headers",
            )
            .at(Location::Message));
        };
        match self.mode {
            Some(required) if required != mode => Err(Error::new(
                ErrorKind::UnexpectedMode,
                format!("a {mode}-mode message; this decoder takes {required} mode only"),
            )
            .at(Location::Message)),
            _ => Ok(mode),
        }
    }

    /// The `content-type` header: at most one, with a UTF-8 value.
    fn content_type<'a>(&self, message: &MessageRef<'a>) -> Result<Option<&'a str>> {
        let mut found = None;
        let mut seen = false;
        for header in message.headers.iter() {
            if !is_content_type(header.name) {
                continue;
            }
            if std::mem::replace(&mut seen, true) {
                return Err(
                    Error::new(ErrorKind::Duplicate, "header given twice").header(header.name)
                );
            }
            match header.value {
                Some(value) => found = Some(utf8(header.name, value)?),
                // A null `content-type` is an unset one, as for the optional `ce_` headers.
                None => self.null_header(header.name, false)?,
            }
        }
        Ok(found)
    }

    /// A header with a null value: unset when it is optional and nulls are allowed.
    fn null_header(&self, name: &[u8], required: bool) -> Result<()> {
        if required {
            return Err(Error::new(
                ErrorKind::NullHeader,
                "a required attribute's header needs a value; it is null",
            )
            .header(name));
        }
        if self.is_lenient(Leniency::NullHeaders) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::NullHeader,
            "the header has a null value; leave the header out for an unset attribute",
        )
        .header(name))
    }

    fn decode_structured<'a>(&self, message: &MessageRef<'a>) -> Result<WireEvent<'a>> {
        let value = message.value.ok_or_else(|| {
            Error::new(
                ErrorKind::Missing,
                "a structured-mode message needs a value; it is null",
            )
            .at(Location::Value)
        })?;
        WireEvent::from_json_with(value, self.is_lenient(Leniency::TimeWithoutOffset))
            .map_err(|e| e.or_at(Location::Value))
    }

    /// `content_type` is the message's `content-type` header, read by the caller.
    fn decode_binary<'a>(
        &self,
        message: &MessageRef<'a>,
        content_type: Option<&'a str>,
    ) -> Result<WireEvent<'a>> {
        let mut core = Core::default();
        let mut extensions = Vec::new();
        for header in message.headers.iter() {
            let Some(attribute) = header.name.strip_prefix(b"ce_") else {
                continue;
            };
            // Core names and the outbox extensions are matched as bytes; only other names
            // need the UTF-8 and name checks.
            if let Some(Slot {
                required,
                value: slot,
            }) = core.slot(attribute)
            {
                let Some(value) = header.value else {
                    self.null_header(header.name, required)?;
                    continue;
                };
                let value = utf8(header.name, value)?;
                if slot.is_some() {
                    return Err(
                        Error::new(ErrorKind::Duplicate, "header given twice").header(header.name)
                    );
                }
                *slot = Some(value);
                continue;
            }
            let (name, known) = match outbox_extension(attribute) {
                Some(name) => (name, true),
                None => (
                    std::str::from_utf8(attribute).map_err(|e| {
                        Error::new(ErrorKind::NotUtf8, "header name is not UTF-8")
                            .header(header.name)
                            .caused_by(e)
                    })?,
                    false,
                ),
            };
            let Some(value) = header.value else {
                self.null_header(header.name, false)?;
                continue;
            };
            let value = utf8(header.name, value)?;
            if !known {
                check_extension_name(name).map_err(|e| e.header(header.name))?;
            }
            if extensions.capacity() == 0 {
                // Room for every header but the required ones: one allocation.
                extensions.reserve_exact(message.headers.len().saturating_sub(Core::REQUIRED));
            }
            check_string(value).map_err(|e| e.header(header.name))?;
            extensions.push((
                Cow::Borrowed(name),
                ExtensionValue::String(Cow::Borrowed(value)),
            ));
        }
        let missing = |name: &'static str| {
            move || {
                Error::new(ErrorKind::Missing, "required header is absent")
                    .at(Location::Header(format!("ce_{name}")))
            }
        };
        let specversion = core.specversion.ok_or_else(missing("specversion"))?;
        check_specversion(specversion).map_err(|e| e.header(b"ce_specversion"))?;
        let datacontenttype = match (content_type, core.datacontenttype) {
            (_, Some(_)) if !self.is_lenient(Leniency::DatacontenttypeHeader) => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    "binary mode carries `datacontenttype` in `content-type`, not in a `ce_` header",
                )
                .header(b"ce_datacontenttype"));
            }
            // The JavaScript SDK also writes `ce_datacontenttype`; accepted when it agrees.
            (Some(a), Some(b)) if a != b => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!("{} disagrees with `content-type` {}", quote(b), quote(a)),
                )
                .header(b"ce_datacontenttype"));
            }
            (a, b) => a.or(b),
        };
        let time = core
            .time
            .map(|t| {
                time::parse(t, self.is_lenient(Leniency::TimeWithoutOffset))
                    .map_err(|e| e.header(b"ce_time"))
            })
            .transpose()?;
        let data = match message.value {
            None => None,
            Some(bytes) => self.binary_data(bytes, datacontenttype)?,
        };
        let mut event = WireEvent {
            id: Cow::Borrowed(core.id.ok_or_else(missing("id"))?),
            source: Cow::Borrowed(core.source.ok_or_else(missing("source"))?),
            ty: Cow::Borrowed(core.ty.ok_or_else(missing("type"))?),
            datacontenttype: datacontenttype.map(Cow::Borrowed),
            dataschema: core.dataschema.map(Cow::Borrowed),
            subject: core.subject.map(Cow::Borrowed),
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

    /// The value of a binary-mode message as data. A JSON content type must carry JSON; with
    /// no content type the value is JSON when it parses and bytes otherwise
    /// ([`Leniency::UntypedValue`]); an empty value under a JSON type is no data
    /// ([`Leniency::EmptyValue`]).
    fn binary_data<'a>(
        &self,
        bytes: &'a [u8],
        content_type: Option<&str>,
    ) -> Result<Option<Data<'a>>> {
        // `application/json`, by far the most common type, is matched without parsing it.
        if content_type != Some(JSON) && !is_json_content_type(content_type) {
            return Ok(Some(Data::Binary(Cow::Borrowed(bytes))));
        }
        if bytes.is_empty() && self.is_lenient(Leniency::EmptyValue) {
            return Ok(None);
        }
        match serde_json::from_slice::<&RawValue>(bytes) {
            Ok(raw) => Ok(Some(Data::Json(Cow::Borrowed(raw)))),
            Err(_) if content_type.is_none() && self.is_lenient(Leniency::UntypedValue) => {
                Ok(Some(Data::Binary(Cow::Borrowed(bytes))))
            }
            Err(e) => Err(Error::new(
                ErrorKind::Json,
                match content_type {
                    Some(ct) => format!("not JSON, though `content-type` is {}", quote(ct)),
                    None => "not JSON, which a value without `content-type` must be".to_owned(),
                },
            )
            .at(Location::Value)
            .caused_by(e)),
        }
    }
}

/// Which content mode a message is in, with the default [`Decoder`].
///
/// # Errors
/// As [`Decoder::detect_mode`].
pub fn detect_mode(message: &MessageRef<'_>) -> Result<Mode> {
    DEFAULT.detect_mode(message)
}

/// Decodes a Kafka message in either mode into a CloudEvent: the short form of
/// [`Decoder::decode_wire`] with the default [`Decoder`].
///
/// # Errors
/// As [`Decoder::decode_wire`].
pub fn decode<'a>(message: &MessageRef<'a>) -> Result<WireEvent<'a>> {
    DEFAULT.decode_wire(message)
}

impl<P: FromData> OutboxEvent<P> {
    /// Decodes a Kafka message (either mode) into an outbox event in `profile`: the short
    /// form of [`Decoder::decode`] with the default leniencies.
    ///
    /// # Errors
    /// As [`Decoder::decode_wire`] and [`OutboxEvent::from_wire`].
    pub fn from_message(message: &MessageRef<'_>, profile: &Profile) -> Result<Self> {
        OutboxEvent::from_wire(DEFAULT.decode_wire(message)?, profile)
    }
}

/// The core attributes a binary-mode message carries in `ce_` headers, by name.
#[derive(Default)]
struct Core<'a> {
    specversion: Option<&'a str>,
    id: Option<&'a str>,
    source: Option<&'a str>,
    ty: Option<&'a str>,
    datacontenttype: Option<&'a str>,
    dataschema: Option<&'a str>,
    subject: Option<&'a str>,
    time: Option<&'a str>,
}

/// Where a core attribute's header value goes.
struct Slot<'s, 'a> {
    required: bool,
    value: &'s mut Option<&'a str>,
}

impl<'a> Core<'a> {
    /// How many attributes are required.
    const REQUIRED: usize = 4;

    /// The slot of core attribute `name` (a header name without `ce_`); `None` for an
    /// extension. `data` and `data_base64` are not headers, so they are extensions here,
    /// and refused as such.
    fn slot(&mut self, name: &[u8]) -> Option<Slot<'_, 'a>> {
        let (required, value) = match name {
            b"specversion" => (true, &mut self.specversion),
            b"id" => (true, &mut self.id),
            b"source" => (true, &mut self.source),
            b"type" => (true, &mut self.ty),
            b"datacontenttype" => (false, &mut self.datacontenttype),
            b"dataschema" => (false, &mut self.dataschema),
            b"subject" => (false, &mut self.subject),
            b"time" => (false, &mut self.time),
            _ => return None,
        };
        Some(Slot { required, value })
    }
}

fn is_content_type(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-type")
}

fn utf8<'a>(name: &[u8], value: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(value).map_err(|e| {
        Error::new(ErrorKind::NotUtf8, "header value is not UTF-8")
            .header(name)
            .caused_by(e)
    })
}

/// Whether a `content-type` names structured mode; only the JSON format is supported.
pub(super) fn is_structured(content_type: &str) -> Result<bool> {
    // What encoders write, matched whole: about 300 of the 17,000 instructions of a
    // structured decode go to the general path below.
    match content_type {
        super::STRUCTURED_CONTENT_TYPE | "application/cloudevents+json" => return Ok(true),
        JSON => return Ok(false),
        _ => {}
    }
    // Compared as bytes: the media type may hold non-ASCII text, and a `str` slice that
    // cut a character would panic.
    const PREFIX: &[u8] = b"application/cloudevents";
    // The media type is what precedes the parameters.
    let media = content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim();
    let Some(rest) = strip_prefix_ignore_case(media.as_bytes(), PREFIX) else {
        return Ok(false);
    };
    if rest.eq_ignore_ascii_case(b"+json") {
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

/// `bytes` without `prefix`, matched ignoring ASCII case.
pub(crate) fn strip_prefix_ignore_case<'b>(bytes: &'b [u8], prefix: &[u8]) -> Option<&'b [u8]> {
    let (head, rest) = bytes.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RESERVED;

    /// Every core attribute but the data members has a header slot, and nothing else does.
    #[test]
    fn every_core_attribute_has_a_header_slot() {
        let mut core = Core::default();
        let mut required = 0;
        for name in RESERVED {
            match core.slot(name.as_bytes()) {
                Some(slot) => required += usize::from(slot.required),
                None => assert!(
                    name.starts_with("data") && name != "datacontenttype" && name != "dataschema",
                    "{name}"
                ),
            }
        }
        assert_eq!(required, Core::REQUIRED);
        assert!(core.slot(b"partitionkey").is_none());
    }
}
