//! python-outbox-core's JSON: the flat `to_message()` = `model_dump(mode="json")` layout.
//!
//! ```json
//! {"event_id":"…","event_type":"com.gridflow.invite.created","aggregate_id":"invite-123",
//!  "occurred_at":"2024-05-01T10:00:00+00:00","source":"user-service","data_version":"1.0",
//!  "correlation_id":null,"causation_id":null,"email":"zoe@example.com"}
//! ```
//!
//! The metadata keys come first, in `IOutboxEvent`'s field order, then the payload's own
//! members. Two optional members carry what `to_message()` has no place for, written only
//! when the event has it: `partition_key` (a key other than the aggregate id) and
//! `cloudevent` (an object with `datacontenttype` when it is not `application/json`,
//! `subject`, `dataschema` and any other extensions by name). A payload member may not use
//! one of these names.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result, quote};
use crate::escape::write_str;
use crate::event::{DEFAULT_DATA_VERSION, JSON, OUTBOX_EXTENSIONS, OutboxEvent, content_type_of};
use crate::format::{Scalar, Str, scalar_str};
use crate::names::{
    EventType, ExtensionName, check_absolute_uri, check_extension_name, check_non_empty,
    check_uri_reference, parse_uuid, write_hyphenated,
};
use crate::payload::{FromData, ToData};
use crate::time;
use crate::wire::{Data, ExtensionValue, check_extension_value};

/// Reads an `occurred_at` as [`OutboxEvent::from_message_json`] reads that member: an RFC
/// 3339 timestamp, or one without an offset, read as UTC (python-outbox-core's events written
/// with `datetime.utcnow()` have none). Whatever reads the time of an event before it is
/// published (the age of a backlog, say) reads it with this, and so agrees with the reader.
///
/// ```
/// let at = outbox_cloudevents::parse_occurred_at("2024-05-01 10:00:00").unwrap();
/// assert_eq!(at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
/// assert!(outbox_cloudevents::parse_occurred_at("yesterday").is_err());
/// ```
///
/// # Errors
/// [`ErrorKind::Invalid`] on the field `occurred_at` for text that is not such a timestamp.
pub fn parse_occurred_at(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    time::parse(text, true).map_err(|e| e.field("occurred_at"))
}

/// The members this layout owns; a payload member may not use these names.
const METADATA: [&str; 10] = [
    "event_id",
    "event_type",
    "aggregate_id",
    "occurred_at",
    "source",
    "data_version",
    "correlation_id",
    "causation_id",
    "partition_key",
    "cloudevent",
];

impl<P: ToData> OutboxEvent<P> {
    /// Writes the event in python-outbox-core's `to_message()` layout, compact, with
    /// `occurred_at` as `IOutboxEvent` writes an aware UTC datetime: `isoformat()`, so
    /// `+00:00` and 0 or 6 fraction digits (9 when nanoseconds are set).
    ///
    /// # Errors
    /// [`ErrorKind::Payload`] when the payload is not a JSON object or one of its members
    /// uses a metadata name.
    pub fn to_message_json(&self) -> Result<Vec<u8>> {
        self.write_message(time::isoformat(&self.occurred_at).as_bytes())
    }

    /// Writes the event as [`OutboxEvent::to_message_json`] does, but with `occurred_at` as
    /// python-outbox-core writes the `datetime` that pydantic reads from `occurred_at`, the
    /// text the event's time was stored as: `isoformat()` in the offset the text has, with
    /// `+00:00` for `Z`, and without an offset when the text has none
    /// (`2025-04-01T00:00:00` stays `2025-04-01T00:00:00`, `2025-04-01 00:00:00.5` becomes
    /// `2025-04-01T00:00:00.500000`). What python-outbox-core's publisher sends for an event
    /// read from a table, where `to_message_json` writes every time in UTC.
    ///
    /// Two cases differ from Python, which cannot hold them: a time with nanoseconds keeps
    /// 9 fraction digits (pydantic cuts them to 6), and a leap second is written as second
    /// 60 (pydantic refuses it).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] on field `occurred_at` when `occurred_at` is not a timestamp
    /// (RFC 3339, with or without an offset) or not the event's instant; then as
    /// [`OutboxEvent::to_message_json`].
    pub fn to_message_json_with_occurred_at(&self, occurred_at: &str) -> Result<Vec<u8>> {
        let (instant, offset) =
            time::parse_with_offset(occurred_at, true).map_err(|e| e.field("occurred_at"))?;
        let stamp = time::isoformat_in(&instant, offset)
            .filter(|_| instant == self.occurred_at)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Invalid,
                    format!(
                        "{} is not the event's time, {}",
                        quote(occurred_at),
                        String::from_utf8_lossy(time::canonical(&self.occurred_at).as_bytes())
                    ),
                )
                .field("occurred_at")
            })?;
        self.write_message(stamp.as_bytes())
    }

    /// The `to_message()` object with `occurred_at` written as `occurred_at`.
    fn write_message(&self, occurred_at: &[u8]) -> Result<Vec<u8>> {
        let data = self.payload.to_data()?;
        let Some(Data::Json(raw)) = &data else {
            return Err(Error::new(
                ErrorKind::Payload,
                "the to_message() layout holds only a JSON object payload; write this event as a CloudEvent",
            )
            .attribute("data"));
        };
        let members = object_body(raw.get()).ok_or_else(|| {
            Error::new(
                ErrorKind::Payload,
                "the to_message() layout holds only a JSON object payload",
            )
            .attribute("data")
        })?;
        if let Some(clash) = metadata_key(raw.get()) {
            return Err(Error::new(
                ErrorKind::Payload,
                format!(
                    "payload member {} clashes with an outbox field",
                    quote(&clash)
                ),
            )
            .attribute("data"));
        }
        // Written by hand because it pays: 6,400 instructions a realistic event, where
        // serde_json writing a struct with the payload's members flattened into it takes
        // 18,600 (callgrind), for it must parse the payload into its members first.
        // Room for the member names, three UUIDs, the time and a few escapes besides the
        // strings: one allocation for most events.
        let strings = [
            self.event_type.as_str(),
            &self.aggregate_id,
            &self.source,
            &self.data_version,
            self.partition_key.as_deref().unwrap_or_default(),
        ];
        let mut out = Vec::with_capacity(
            384 + raw.get().len() + strings.iter().map(|s| s.len()).sum::<usize>(),
        );
        out.extend_from_slice(b"{\"event_id\":\"");
        write_hyphenated(&mut out, self.event_id);
        out.extend_from_slice(b"\",\"event_type\":");
        write_str(&mut out, self.event_type.as_str());
        out.extend_from_slice(b",\"aggregate_id\":");
        write_str(&mut out, &self.aggregate_id);
        out.extend_from_slice(b",\"occurred_at\":\"");
        out.extend_from_slice(occurred_at);
        out.extend_from_slice(b"\",\"source\":");
        write_str(&mut out, &self.source);
        out.extend_from_slice(b",\"data_version\":");
        write_str(&mut out, &self.data_version);
        for (name, id) in [
            ("correlation_id", self.correlation_id),
            ("causation_id", self.causation_id),
        ] {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            match id {
                Some(id) => {
                    out.extend_from_slice(b"\":\"");
                    write_hyphenated(&mut out, id);
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"\":null"),
            }
        }
        if !members.is_empty() {
            out.push(b',');
            out.extend_from_slice(members.as_bytes());
        }
        if let Some(key) = &self.partition_key {
            out.extend_from_slice(b",\"partition_key\":");
            write_str(&mut out, key);
        }
        self.write_extras(&mut out);
        out.push(b'}');
        Ok(out)
    }

    fn write_extras(&self, out: &mut Vec<u8>) {
        let content_type =
            (self.content_type.as_deref() != Some(JSON)).then_some(&self.content_type);
        if content_type.is_none()
            && self.subject.is_none()
            && self.dataschema.is_none()
            && self.extensions.is_empty()
        {
            return;
        }
        out.extend_from_slice(b",\"cloudevent\":{");
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, name);
            out.push(b':');
        };
        if let Some(ct) = content_type {
            member(out, "datacontenttype");
            match ct {
                Some(ct) => write_str(out, ct),
                None => out.extend_from_slice(b"null"),
            }
        }
        for (name, value) in [("subject", &self.subject), ("dataschema", &self.dataschema)] {
            if let Some(value) = value {
                member(out, name);
                write_str(out, value);
            }
        }
        for (name, value) in &self.extensions {
            member(out, name.as_str());
            match value {
                ExtensionValue::String(s) => write_str(out, s),
                other => out.extend_from_slice(other.to_canonical_string().as_bytes()),
            }
        }
        out.push(b'}');
    }
}

impl<P: FromData> OutboxEvent<P> {
    /// Reads an event from python-outbox-core's `to_message()` layout.
    ///
    /// `occurred_at` without an offset (Python's `datetime.utcnow().isoformat()`) reads as
    /// UTC; any number of fraction digits reads. An absent `data_version` is `"1.0"`; absent
    /// or `null` ids are unset. Every member that is not metadata belongs to the payload, in
    /// its original order and spelling.
    ///
    /// # Errors
    /// [`ErrorKind::Json`] when `json` is not one JSON object, [`ErrorKind::Missing`] for an
    /// absent required field, [`ErrorKind::Duplicate`] for a metadata member given twice,
    /// [`ErrorKind::Invalid`] for a field of the wrong form (each naming the field), and
    /// [`ErrorKind::Payload`] when the payload does not match `P`.
    pub fn from_message_json(json: &[u8]) -> Result<Self> {
        let (meta, payload) = split(json)?;
        let text = |name: &'static str| -> Result<Option<Cow<'_, str>>> {
            let Some(text) = meta.get(name) else {
                return Ok(None);
            };
            // A string without escapes is its own text; anything else is parsed.
            if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
                && !inner.contains('\\')
            {
                return Ok(Some(Cow::Borrowed(inner)));
            }
            let scalar: Scalar<'_> = serde_json::from_str(text).map_err(|e| {
                Error::new(ErrorKind::Json, "bad JSON")
                    .reading_json(text.as_bytes())
                    .caused_by(e)
                    .field(name)
            })?;
            scalar_str(scalar).map_err(|e| e.field(name))
        };
        let required = |name: &'static str| -> Result<Cow<'_, str>> {
            text(name)?.ok_or_else(|| {
                Error::new(ErrorKind::Missing, "required field is absent").field(name)
            })
        };
        let uuid = |name: &'static str| -> Result<Option<uuid::Uuid>> {
            text(name)?
                .map(|t| parse_uuid(&t).map_err(|e| e.field(name)))
                .transpose()
        };
        let event_id = parse_uuid(&required("event_id")?).map_err(|e| e.field("event_id"))?;
        let event_type = EventType::new(required("event_type")?.into_owned())?;
        let aggregate_id = required("aggregate_id")?.into_owned();
        check_non_empty(&aggregate_id).map_err(|e| e.field("aggregate_id"))?;
        let occurred_at = parse_occurred_at(&required("occurred_at")?)?;
        let source = required("source")?.into_owned();
        check_uri_reference(&source).map_err(|e| e.field("source"))?;
        let data_version =
            text("data_version")?.map_or_else(|| DEFAULT_DATA_VERSION.to_owned(), Cow::into_owned);
        check_non_empty(&data_version).map_err(|e| e.field("data_version"))?;
        let correlation_id = uuid("correlation_id")?;
        let causation_id = uuid("causation_id")?;
        let partition_key = text("partition_key")?.map(Cow::into_owned);
        let mut event = OutboxEvent {
            event_id,
            event_type,
            aggregate_id,
            occurred_at,
            source,
            data_version,
            correlation_id,
            causation_id,
            partition_key: None,
            payload: P::from_data(Some(Data::Json(Cow::Owned(payload))))?,
            content_type: Some(Cow::Borrowed(JSON)),
            subject: None,
            dataschema: None,
            extensions: BTreeMap::new(),
        };
        if let Some(key) = partition_key {
            event = event
                .with_partition_key(key)
                .map_err(|e| e.field("partition_key"))?;
        }
        if let Some(extras) = meta.get("cloudevent") {
            event.read_extras(extras)?;
        }
        Ok(event)
    }

    /// Reads the `cloudevent` member; an error names the member within it, as
    /// `cloudevent.subject`.
    fn read_extras(&mut self, extras: &str) -> Result<()> {
        let members = object_members(extras).map_err(|e| e.field("cloudevent"))?;
        for (name, raw) in members {
            let at = |e: Error| e.field(format!("cloudevent.{name}"));
            let scalar: Scalar<'_> = serde_json::from_str(raw.get()).map_err(|e| {
                at(Error::new(ErrorKind::Json, "bad JSON")
                    .reading_json(raw.get().as_bytes())
                    .caused_by(e))
            })?;
            match name.as_ref() {
                "datacontenttype" => {
                    self.content_type = scalar_str(scalar).map_err(at)?.map(content_type_of);
                }
                "subject" => {
                    if let Some(s) = scalar_str(scalar).map_err(at)? {
                        check_non_empty(&s).map_err(at)?;
                        self.subject = Some(s.into_owned());
                    }
                }
                "dataschema" => {
                    if let Some(s) = scalar_str(scalar).map_err(at)? {
                        check_absolute_uri(&s).map_err(at)?;
                        self.dataschema = Some(s.into_owned());
                    }
                }
                other => {
                    check_extension_name(other).map_err(at)?;
                    if OUTBOX_EXTENSIONS.contains(&other) {
                        return Err(at(Error::new(
                            ErrorKind::ExtensionName,
                            "set by an outbox field",
                        )));
                    }
                    let value = match scalar {
                        Scalar::Str(s) => ExtensionValue::String(Cow::Owned(s.into_owned())),
                        Scalar::Bool(b) => ExtensionValue::Boolean(b),
                        Scalar::Int(i) => ExtensionValue::Integer(i),
                        bad => {
                            return Err(at(Error::new(
                                ErrorKind::Invalid,
                                format!("must be a string, boolean or integer, not {}", bad.kind()),
                            )));
                        }
                    };
                    check_extension_value(other, &value).map_err(at)?;
                    self.extensions
                        .insert(ExtensionName(other.to_owned()), value);
                }
            }
        }
        Ok(())
    }
}

/// The metadata members of a `to_message()` object, each by its place in [`METADATA`], as
/// raw JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Meta<'a>([Option<&'a str>; METADATA.len()]);

/// The place of `name` in [`METADATA`]; `None` for a payload member. A `match`, which the
/// compiler turns into a switch on the length and one comparison.
fn metadata_index(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"event_id" => 0,
        b"event_type" => 1,
        b"aggregate_id" => 2,
        b"occurred_at" => 3,
        b"source" => 4,
        b"data_version" => 5,
        b"correlation_id" => 6,
        b"causation_id" => 7,
        b"partition_key" => 8,
        b"cloudevent" => 9,
        _ => return None,
    })
}

impl<'a> Meta<'a> {
    /// The text of metadata member `name`, when the object has it.
    fn get(&self, name: &str) -> Option<&'a str> {
        metadata_index(name.as_bytes()).and_then(|i| self.0.get(i).copied().flatten())
    }
}

/// The metadata members of a `to_message()` object and the other members as the payload
/// object.
type Split<'a> = (Meta<'a>, Box<RawValue>);

/// Reads a `to_message()` object with serde_json: every member's value as its text, the
/// metadata by name, the rest as the payload object in their order.
fn split(json: &[u8]) -> Result<Split<'_>> {
    let text = std::str::from_utf8(json).map_err(|e| {
        Error::new(
            ErrorKind::NotUtf8,
            format!("{} is not UTF-8", quote(&String::from_utf8_lossy(json))),
        )
        .caused_by(e)
    })?;
    let mut meta = Meta::default();
    let mut duplicate = None;
    let mut payload = Vec::with_capacity(16);
    each_member(text, |key, value| {
        match metadata_index(key.as_bytes()).and_then(|i| meta.0.get_mut(i)) {
            Some(Some(_)) => {
                duplicate.get_or_insert(key);
            }
            Some(slot) => *slot = Some(value.get()),
            None => payload.push((key, value)),
        }
    })?;
    if let Some(key) = duplicate {
        return Err(Error::new(ErrorKind::Duplicate, "member given twice").field(key.into_owned()));
    }
    // serde_json writes the members' values as their text and validates nothing again: 1,780
    // instructions a realistic event, where writing the text with `write_str` and handing it
    // to `RawValue::from_string`, which parses it again, took 2,270 (callgrind).
    let payload = serde_json::value::to_raw_value(&Object(&payload))
        .map_err(|e| Error::new(ErrorKind::Json, "payload members").caused_by(e))?;
    Ok((meta, payload))
}

/// Members written as a JSON object, each value as its text.
struct Object<'m, 'a>(&'m Members<'a>);

impl Serialize for Object<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// The members of a JSON object's text, between its braces and without the white space
/// around them; `None` when the text is not an object.
fn object_body(object: &str) -> Option<&str> {
    let inner = object.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(inner.trim())
}

/// Whether the JSON text `json` may have a member named as a metadata member: without a
/// backslash, its quotes are exactly its strings' ends, so every member name is one of the
/// pieces between two quotes; the pieces outside strings are punctuation, white space,
/// numbers and literals, never a metadata name. A text with a backslash may escape a name,
/// so it may have one.
///
/// Nearly every payload has none and is not parsed again: 1,600 instructions a realistic
/// event instead of 2,850 for the parse (callgrind).
fn may_name_metadata(json: &[u8]) -> bool {
    json.contains(&b'\\')
        || json
            .split(|&byte| byte == b'"')
            .any(|piece| metadata_index(piece).is_some())
}

/// The first top-level member name of the JSON object `json` that is a metadata name.
fn metadata_key(json: &str) -> Option<String> {
    if !may_name_metadata(json.as_bytes()) {
        return None;
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // serde_json wants the whole object read, also after a clash.
            let mut clash = None;
            while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                if clash.is_none() && metadata_index(key.as_bytes()).is_some() {
                    clash = Some(key.into_owned());
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(clash)
        }
    }
    // The payload is JSON (a `RawValue`), so this reads to the end.
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(V).ok().flatten()
}

/// The members of a JSON object, in order, values as raw text.
pub(crate) fn object_members(json: &str) -> Result<Members<'_>> {
    let mut members = Vec::with_capacity(16);
    each_member(json, |key, value| members.push((key, value)))?;
    Ok(members)
}

/// Calls `member` with each member of the JSON object `json`, in order, its value as raw
/// text.
fn each_member<'a>(json: &'a str, member: impl FnMut(Cow<'a, str>, &'a RawValue)) -> Result<()> {
    struct V<F>(F);
    impl<'de, F: FnMut(Cow<'de, str>, &'de RawValue)> Visitor<'de> for V<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                (self.0)(key, map.next_value::<&'de RawValue>()?);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(V(member))
        .and_then(|()| de.end())
        .map_err(|e| {
            Error::new(
                ErrorKind::Json,
                format!("{} is not one JSON object", quote(json)),
            )
            .reading_json(json.as_bytes())
            .caused_by(e)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_time_is_written_as_python_writes_it_and_must_be_the_events() {
        let message = |at: &str| {
            format!(
                r#"{{"event_id":"3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01","event_type":"com.a.b","aggregate_id":"a","occurred_at":"{at}","source":"s","data_version":"1.0","correlation_id":null,"causation_id":null}}"#
            )
        };
        let event = OutboxEvent::<crate::Payload>::from_message_json(
            message("2025-04-01T00:00:00").as_bytes(),
        )
        .unwrap();
        let naive = event
            .to_message_json_with_occurred_at("2025-04-01T00:00:00")
            .unwrap();
        assert_eq!(naive, message("2025-04-01T00:00:00").as_bytes());
        let utc = event.to_message_json().unwrap();
        assert_eq!(utc, message("2025-04-01T00:00:00+00:00").as_bytes());
        let other = event
            .to_message_json_with_occurred_at("2025-04-01T00:00:00+02:00")
            .unwrap_err();
        assert_eq!(other.name(), Some("occurred_at"));
        assert!(
            other.to_string().contains("not the event's time"),
            "{other}"
        );
        let bad = event
            .to_message_json_with_occurred_at("yesterday")
            .unwrap_err();
        assert_eq!(bad.name(), Some("occurred_at"));
    }

    #[test]
    fn a_metadata_name_is_found_however_the_payload_is_written() {
        for (payload, clash) in [
            (r#"{"event_id":1}"#, Some("event_id")),
            (
                r#"{ "a" : 1 ,	"source"
                : {"x":[1,"y"]} }"#,
                Some("source"),
            ),
            (r#"{"a":"\"","cloudevent":null}"#, Some("cloudevent")),
            (r#"{"\u0065vent_type":"x"}"#, Some("event_type")),
            (r#"{"partition\u005fkey":1}"#, Some("partition_key")),
            // Metadata names as values, or below the top level, are no clash.
            (r#"{"a":"source","b":["event_id"]}"#, None),
            (r#"{"a":{"event_id":1,"source":"x"}}"#, None),
            (r#"{"a":"\\","b":"occurred_at"}"#, None),
            (r#"{"sources":1,"event_i":2," source":3}"#, None),
            ("{}", None),
        ] {
            assert_eq!(metadata_key(payload).as_deref(), clash, "{payload}");
        }
    }

    #[test]
    fn metadata_index_is_the_place_in_metadata() {
        for (i, name) in METADATA.iter().enumerate() {
            assert_eq!(metadata_index(name.as_bytes()), Some(i), "{name}");
        }
        for name in ["", "email", "event", "event_ids", "cloudevents", "Source"] {
            assert_eq!(metadata_index(name.as_bytes()), None, "{name}");
        }
    }

    #[test]
    fn only_a_text_that_may_name_metadata_is_parsed_again() {
        assert!(!may_name_metadata(br#"{"a":"x","b":{"c":[1,2]}}"#));
        assert!(!may_name_metadata(br#"{"sources":1}"#));
        // A value may look like a name: the parse then decides.
        assert!(may_name_metadata(br#"{"a":"source"}"#));
        assert!(may_name_metadata(br#"{"a":"\n"}"#));
    }
}
