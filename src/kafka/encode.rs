//! [`Encoder`]: events to Kafka messages.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::decode::is_structured;
use super::message::{EncodedMessage, Header, Message};
use super::{Mode, STRUCTURED_CONTENT_TYPE};
use crate::error::{Error, ErrorKind, Location, Result, quote};
use crate::event::{JSON, OutboxEvent};
use crate::mapping::Profile;
use crate::payload::ToData;
use crate::wire::{Data, WireEvent, is_json_content_type};

type KeyMapper = Arc<dyn Fn(&WireEvent<'_>) -> Option<Vec<u8>> + Send + Sync>;

/// Encodes events as Kafka messages.
///
/// By default the key is the partition key of an outbox event (in either profile) and the
/// `partitionkey` extension of a CloudEvent, events without data are refused in binary mode (see
/// [`allow_tombstones`](Encoder::allow_tombstones)), and outbox events use
/// [`Profile::Canonical`].
///
/// Each `encode*` method returns an owned [`Message`]; the `*_borrowed` ones return an
/// [`EncodedMessage`] whose binary-mode value is the event's data without a copy, for
/// producers that only borrow what they send.
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
        self.encode_borrowed(event).map(EncodedMessage::into_owned)
    }

    /// Encodes an outbox event into a message whose binary-mode value borrows the payload:
    /// a [`Payload`](crate::Payload) of 64 KiB is not copied. A typed payload is serialized,
    /// and the message owns that JSON.
    ///
    /// # Errors
    /// As [`Encoder::encode`].
    pub fn encode_borrowed<'e, P: ToData>(
        &self,
        event: &'e OutboxEvent<P>,
    ) -> Result<EncodedMessage<'e>> {
        let wire = event.to_wire(&self.profile)?;
        if self.mode == Mode::Binary
            && matches!(wire.data, Some(Data::Json(_)))
            && let Some(ct) = wire.datacontenttype()
            && ct != JSON
            && !is_json_content_type(Some(ct))
        {
            // The binding says a receiver reads the value by `content-type`: under a type that
            // is not JSON these bytes come back as bytes, and the event would not decode to
            // itself (decode(encode(x)) == x).
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "{} is not a JSON content type, so binary mode would carry the JSON payload as bytes that do not read back as it; use structured mode or a JSON content type",
                    quote(ct)
                ),
            )
            .attribute("datacontenttype"));
        }
        let key = match &self.key {
            Some(mapper) => mapper(&wire),
            // The outbox contract: the partition key, in every profile.
            None => Some(event.partition_key().as_bytes().to_vec()),
        };
        self.encode_with_key(wire, key)
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
        self.encode_wire_borrowed(event)
            .map(EncodedMessage::into_owned)
    }

    /// Encodes a CloudEvent into a message whose binary-mode value borrows the event's data.
    ///
    /// # Errors
    /// As [`Encoder::encode_wire`].
    pub fn encode_wire_borrowed<'e>(&self, event: &'e WireEvent<'_>) -> Result<EncodedMessage<'e>> {
        let key = match &self.key {
            Some(mapper) => mapper(event),
            None => event
                .extension("partitionkey")
                .map(|v| v.to_canonical_string().as_bytes().to_vec()),
        };
        self.check(event)?;
        Ok(self.write(
            event,
            key,
            event.data.as_ref().map(|d| Cow::Borrowed(d.as_bytes())),
        ))
    }

    /// Encodes `event`, which may borrow from a longer-lived source, moving its data into
    /// the value.
    fn encode_with_key<'e>(
        &self,
        mut event: WireEvent<'e>,
        key: Option<Vec<u8>>,
    ) -> Result<EncodedMessage<'e>> {
        self.check(&event)?;
        let value = match self.mode {
            Mode::Binary => event.data.take().map(Data::into_bytes),
            Mode::Structured => None,
        };
        Ok(self.write(&event, key, value))
    }

    /// What binary mode refuses.
    fn check(&self, event: &WireEvent<'_>) -> Result<()> {
        if self.mode == Mode::Structured {
            return Ok(());
        }
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
        Ok(())
    }

    /// The message of a checked event; in binary mode `value` is its data.
    fn write<'v>(
        &self,
        event: &WireEvent<'_>,
        key: Option<Vec<u8>>,
        value: Option<Cow<'v, [u8]>>,
    ) -> EncodedMessage<'v> {
        match self.mode {
            Mode::Structured => EncodedMessage {
                key,
                headers: vec![Header::new("content-type", STRUCTURED_CONTENT_TYPE)],
                value: Some(Cow::Owned(event.to_json())),
            },
            Mode::Binary => EncodedMessage {
                key,
                headers: binary_headers(event),
                value,
            },
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
        headers.push(Header::new("ce_time", stamp.as_bytes()));
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
    match KNOWN.iter().find(|h| h.strip_prefix("ce_") == Some(name)) {
        Some(h) => Cow::Borrowed(h),
        None => Cow::Owned(format!("ce_{name}")),
    }
}
