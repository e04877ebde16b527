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

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result, quote};
use crate::event::{DEFAULT_DATA_VERSION, JSON, OUTBOX_EXTENSIONS, OutboxEvent};
use crate::format::{Scalar, Str, find_special, scalar_str, write_str};
use crate::names::{
    EventType, ExtensionName, check_absolute_uri, check_extension_name, check_non_empty,
    check_uri_reference, hyphenated, parse_uuid,
};
use crate::payload::{FromData, ToData};
use crate::time;
use crate::wire::{Data, ExtensionValue, check_extension_value};

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
        if let Some(clash) = top_level_keys(members).find(|k| METADATA.contains(&k.as_ref())) {
            return Err(Error::new(
                ErrorKind::Payload,
                format!(
                    "payload member {} clashes with an outbox field",
                    quote(&clash)
                ),
            )
            .attribute("data"));
        }
        let mut out = Vec::with_capacity(256 + raw.get().len());
        out.extend_from_slice(b"{\"event_id\":\"");
        out.extend_from_slice(hyphenated(self.event_id).as_bytes());
        out.extend_from_slice(b"\",\"event_type\":");
        write_str(&mut out, self.event_type.as_str());
        out.extend_from_slice(b",\"aggregate_id\":");
        write_str(&mut out, &self.aggregate_id);
        out.extend_from_slice(b",\"occurred_at\":\"");
        out.extend_from_slice(time::isoformat(&self.occurred_at).as_bytes());
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
                    out.extend_from_slice(hyphenated(id).as_bytes());
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
        // python-outbox-core's events written with `datetime.utcnow()` have no offset.
        let occurred_at =
            time::parse(&required("occurred_at")?, true).map_err(|e| e.field("occurred_at"))?;
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
            content_type: Some(JSON.to_owned()),
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
                    self.content_type = scalar_str(scalar).map_err(at)?.map(Cow::into_owned);
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

/// The metadata members of a `to_message()` object, each by its name in [`METADATA`], as
/// raw JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta<'a>([(&'static str, Option<&'a str>); METADATA.len()]);

impl<'a> Meta<'a> {
    fn new() -> Self {
        Meta(METADATA.map(|name| (name, None)))
    }

    /// The slot of metadata member `name`; `None` for a payload member.
    fn slot(&mut self, name: &str) -> Option<&mut Option<&'a str>> {
        self.0
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }

    /// The text of metadata member `name`, when the object has it.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| *v)
    }
}

/// The metadata members of a `to_message()` object and the other members as the payload
/// object.
type Split<'a> = (Meta<'a>, Box<RawValue>);

fn split(json: &[u8]) -> Result<Split<'_>> {
    let text = std::str::from_utf8(json).map_err(|e| {
        Error::new(
            ErrorKind::NotUtf8,
            format!("{} is not UTF-8", quote(&String::from_utf8_lossy(json))),
        )
        .caused_by(e)
    })?;
    if let Some((meta, payload)) = Scanner::split(text)
        && let Ok(payload) = RawValue::from_string(payload)
    {
        return Ok((meta, payload));
    }
    // Anything the scanner does not take (escaped names, bad JSON, duplicates) goes through
    // serde_json, which words the error.
    split_with_serde(text)
}

fn split_with_serde(text: &str) -> Result<Split<'_>> {
    let mut meta = Meta::new();
    let mut payload = Vec::with_capacity(text.len());
    payload.push(b'{');
    for (key, value) in object_members(text)? {
        match meta.slot(&key) {
            Some(Some(_)) => {
                return Err(
                    Error::new(ErrorKind::Duplicate, "member given twice").field(key.into_owned())
                );
            }
            Some(slot) => *slot = Some(value.get()),
            None => {
                if payload.len() > 1 {
                    payload.push(b',');
                }
                write_str(&mut payload, &key);
                payload.push(b':');
                payload.extend_from_slice(value.get().as_bytes());
            }
        }
    }
    payload.push(b'}');
    let payload = String::from_utf8(payload)
        .map_err(|e| Error::new(ErrorKind::NotUtf8, "payload members").caused_by(e))?;
    let payload = RawValue::from_string(payload)
        .map_err(|e| Error::new(ErrorKind::Json, "payload members are not JSON").caused_by(e))?;
    Ok((meta, payload))
}

/// A one-pass reader of the common case: member names without escapes, metadata values that
/// are plain strings, `null` or (for `cloudevent`) an object. Payload values are only
/// delimited here; the payload object is validated whole when it becomes a `RawValue`.
/// Anything else makes it give up, and [`split`] falls back to serde_json.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn split(text: &'a str) -> Option<(Meta<'a>, String)> {
        let mut s = Scanner { text, at: 0 };
        let mut meta = Meta::new();
        let mut payload = String::with_capacity(text.len());
        payload.push('{');
        s.expect(b'{')?;
        if s.peek()? == b'}' {
            s.at += 1;
        } else {
            loop {
                let key = s.plain_string()?;
                let name = key.strip_prefix('"')?.strip_suffix('"')?;
                s.expect(b':')?;
                s.space();
                let start = s.at;
                match meta.slot(name) {
                    Some(Some(_)) => return None,
                    Some(slot) if name == "cloudevent" => {
                        s.skip_value()?;
                        // Rare, and not part of the payload: checked here.
                        let extras = text.get(start..s.at)?;
                        serde_json::from_str::<&RawValue>(extras).ok()?;
                        *slot = Some(extras);
                    }
                    Some(slot) if s.peek()? == b'"' => *slot = Some(s.plain_string()?),
                    Some(slot) => {
                        s.literal("null")?;
                        *slot = Some("null");
                    }
                    None => {
                        s.skip_value()?;
                        if payload.len() > 1 {
                            payload.push(',');
                        }
                        payload.push_str(key);
                        payload.push(':');
                        payload.push_str(text.get(start..s.at)?);
                    }
                }
                match s.peek()? {
                    b',' => s.at += 1,
                    b'}' => {
                        s.at += 1;
                        break;
                    }
                    _ => return None,
                }
                s.space();
            }
        }
        s.space();
        (s.at == text.len()).then_some(())?;
        payload.push('}');
        Some((meta, payload))
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn space(&mut self) {
        while matches!(
            self.bytes().get(self.at),
            Some(b' ' | b'\t' | b'\n' | b'\r')
        ) {
            self.at += 1;
        }
    }

    /// The next byte after white space, not taken.
    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// A string with neither escapes nor control characters, quotes included.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at;
        (self.bytes().get(start) == Some(&b'"')).then_some(())?;
        let end = find_special(self.bytes(), start + 1);
        (self.bytes().get(end) == Some(&b'"')).then_some(())?;
        self.at = end + 1;
        Some(&self.text[start..self.at])
    }

    /// Moves past one JSON value: strings by their quotes, nesting by its brackets, other
    /// tokens up to the next delimiter. The value's own syntax is checked later.
    fn skip_value(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let delimiter = |b: Option<&u8>| {
            matches!(
                b,
                None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            )
        };
        if delimiter(bytes.get(self.at)) {
            return None;
        }
        let mut depth = 0usize;
        loop {
            match *bytes.get(self.at)? {
                b'"' => loop {
                    let special = find_special(bytes, self.at + 1);
                    match *bytes.get(special)? {
                        b'"' => {
                            self.at = special + 1;
                            break;
                        }
                        // An escape: skip the backslash and the byte after it.
                        b'\\' => self.at = special + 1,
                        _ => return None,
                    }
                },
                b'{' | b'[' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                }
                _ => self.at += 1,
            }
            if depth == 0 && delimiter(bytes.get(self.at)) {
                return Some(());
            }
        }
    }
}

type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// The members of a JSON object's text, between its braces and without the white space
/// around them; `None` when the text is not an object.
fn object_body(object: &str) -> Option<&str> {
    let inner = object.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(inner.trim())
}

/// The keys of the members in `body` (an object's text between its braces, valid JSON as a
/// `RawValue` guarantees), without parsing the values: strings are skipped by their quotes,
/// nesting by its brackets.
fn top_level_keys(body: &str) -> impl Iterator<Item = Cow<'_, str>> {
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut expect_key = true;
    std::iter::from_fn(move || {
        while let Some(&b) = bytes.get(i) {
            i += 1;
            match b {
                b'"' => {
                    let start = i;
                    let mut escaped = false;
                    while let Some(&c) = bytes.get(i).filter(|&&c| c != b'"') {
                        if c == b'\\' {
                            escaped = true;
                            i += 1;
                        }
                        i += 1;
                    }
                    let end = i.min(bytes.len());
                    i += 1;
                    if depth == 0 && std::mem::take(&mut expect_key) {
                        let key = &body[start..end];
                        return Some(if escaped {
                            let quoted = &body[start - 1..(end + 1).min(body.len())];
                            serde_json::from_str::<String>(quoted)
                                .map_or(Cow::Borrowed(key), Cow::Owned)
                        } else {
                            Cow::Borrowed(key)
                        });
                    }
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => expect_key = true,
                _ => {}
            }
        }
        None
    })
}

/// The members of a JSON object, in order, values as raw text.
pub(crate) fn object_members(json: &str) -> Result<Members<'_>> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Members<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::with_capacity(16);
            while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                members.push((key, map.next_value::<&'de RawValue>()?));
            }
            Ok(members)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(V)
        .and_then(|m| de.end().map(|()| m))
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
    fn top_level_keys_skip_nested_members_and_strings() {
        let body = object_body(r#" { "a" : {"source":1, "x":[{"event_id":2}]}, "b\u0063":"s,\"t\"", "c":[1,{"d":2}] , "e":null } "#).unwrap();
        let keys: Vec<Cow<'_, str>> = top_level_keys(body).collect();
        assert_eq!(keys, ["a", "bc", "c", "e"]);
        assert_eq!(top_level_keys("").count(), 0);
        assert_eq!(object_body("[1]"), None);
    }

    #[test]
    fn scanner_agrees_with_serde_json() {
        let lines = [
            include_str!("../fixtures/python-outbox-core/events.jsonl"),
            include_str!("../fixtures/golden/outbox-extras.jsonl"),
        ];
        let mut compared = 0;
        for line in lines.iter().flat_map(|text| text.lines()) {
            // The line itself, every line one byte shorter, and every line with one byte
            // replaced by a quote, a backslash, a comma or a brace.
            let shorter = (0..line.len()).map(|i| {
                let mut bytes = line.as_bytes().to_vec();
                bytes.remove(i);
                bytes
            });
            let replaced = (0..line.len()).flat_map(|i| {
                b"\"\\,}".iter().map(move |&b| {
                    let mut bytes = line.as_bytes().to_vec();
                    bytes[i] = b;
                    bytes
                })
            });
            let variants = std::iter::once(line.as_bytes().to_vec())
                .chain(shorter)
                .chain(replaced)
                .filter_map(|bytes| String::from_utf8(bytes).ok());
            for text in variants {
                let Some((meta, payload)) = Scanner::split(&text) else {
                    continue;
                };
                let Ok(payload) = RawValue::from_string(payload) else {
                    continue;
                };
                let (serde_meta, serde_payload) = split_with_serde(&text)
                    .unwrap_or_else(|e| panic!("the scanner took what serde refuses: {text}: {e}"));
                assert_eq!(meta, serde_meta, "{text}");
                assert_eq!(payload.get(), serde_payload.get(), "{text}");
                compared += 1;
            }
        }
        assert!(compared > 100, "only {compared} lines compared");
    }
}
