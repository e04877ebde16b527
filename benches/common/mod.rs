//! The benchmark events and the baselines: what a user would write with `cloudevents-sdk` and
//! serde_json to do the same conversions.

use cloudevents::event::SpecVersion;
use cloudevents::message::{
    BinaryDeserializer, BinarySerializer, Error as SdkError, MessageAttributeValue,
    Result as SdkResult,
};
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use outbox_cloudevents::{Message, OutboxEvent, Payload};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use uuid::Uuid;

/// A realistic outbox event: correlation and causation ids, a data version and a partition
/// key of its own (so five extensions), and a JSON payload of about 150 bytes.
pub fn realistic() -> OutboxEvent<Payload> {
    event(
        Payload::from_json(concat!(
            r#"{"invite_id":"inv_7Hq2xKp9","email":"zoë.martin@example.com","role":"admin","#,
            r#""tenant":"tenant-42","invited_by":"user-1729","expires_at":"2024-05-08T10:00:00Z"}"#
        ))
        .expect("the payload is JSON"),
    )
}

/// The same event with about 64 KiB of JSON payload (the size CloudEvents intermediaries must
/// forward): an array of line items with strings, numbers and an escaped character or two.
pub fn large() -> OutboxEvent<Payload> {
    let mut json = String::from(r#"{"order_id":"ord-5521","lines":["#);
    let mut i = 0;
    while json.len() < 64 * 1024 - 200 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            r#"{{"sku":"SKU-{i:06}","name":"Widget \"{i}\" – café edition","qty":{},"price":{}.{:02},"tags":["a","b"]}}"#,
            i % 7 + 1,
            i % 500,
            i % 100
        ));
        i += 1;
    }
    json.push_str(r#"],"currency":"EUR"}"#);
    event(Payload::from_json(json).expect("the payload is JSON"))
}

fn event(payload: Payload) -> OutboxEvent<Payload> {
    OutboxEvent::new(
        "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11"
            .parse()
            .expect("uuid"),
        "com.gridflow.invite.created",
        "invite-8c1f2a",
        "2024-05-01T10:00:00.123456Z".parse().expect("time"),
        "user-service",
        payload,
    )
    .and_then(|e| e.with_data_version("1.2.0"))
    .expect("a valid event")
    .with_correlation_id(
        "5b7e4a10-8f3c-4c1d-a5b2-7e9f0c1d2e3f"
            .parse()
            .expect("uuid"),
    )
    .with_causation_id(
        "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
            .parse()
            .expect("uuid"),
    )
    .with_partition_key("tenant-42")
    .expect("a valid partition key")
}

/// The payload's JSON text.
pub fn payload_json(event: &OutboxEvent<Payload>) -> &str {
    event.payload().as_json().expect("a JSON payload")
}

/// Builds the `cloudevents::Event` for an outbox event with `EventBuilderV10`, as a user of
/// the SDK would. `data` is the payload in the form the caller needs.
pub fn sdk_event(event: &OutboxEvent<Payload>, data: impl Into<cloudevents::Data>) -> Event {
    let mut builder = EventBuilderV10::new()
        .id(event.event_id().to_string())
        .source(event.source())
        .ty(event.event_type().as_str())
        .time(event.occurred_at())
        .extension("aggregateid", event.aggregate_id())
        .extension("dataversion", event.data_version())
        .extension("partitionkey", event.partition_key());
    if let Some(id) = event.correlation_id() {
        builder = builder.extension("correlationid", id.to_string());
    }
    if let Some(id) = event.causation_id() {
        builder = builder.extension("causationid", id.to_string());
    }
    builder
        .data("application/json", data)
        .build()
        .expect("the SDK accepts the event")
}

/// A binary-mode message as an SDK binding builds one: owned header names and values.
#[derive(Debug, Default)]
pub struct SdkRecord {
    /// The key (the partition key, as the library writes it).
    pub key: Option<Vec<u8>>,
    /// Header names and values, in the order the SDK writes them.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The value.
    pub value: Option<Vec<u8>>,
}

impl SdkRecord {
    /// An empty record with room for the headers of the benchmark events.
    pub fn new() -> Self {
        SdkRecord {
            key: None,
            headers: Vec::with_capacity(12),
            value: None,
        }
    }
}

/// The Kafka binding's header names: `content-type` for `datacontenttype`, `ce_` + name for
/// every other attribute.
impl BinarySerializer<SdkRecord> for SdkRecord {
    fn set_spec_version(mut self, spec_version: SpecVersion) -> SdkResult<Self> {
        self.headers.push((
            "ce_specversion".to_owned(),
            spec_version.as_str().as_bytes().to_vec(),
        ));
        Ok(self)
    }

    fn set_attribute(mut self, name: &str, value: MessageAttributeValue) -> SdkResult<Self> {
        let name = if name == "datacontenttype" {
            "content-type".to_owned()
        } else {
            format!("ce_{name}")
        };
        self.headers.push((name, value.to_string().into_bytes()));
        Ok(self)
    }

    fn set_extension(self, name: &str, value: MessageAttributeValue) -> SdkResult<Self> {
        self.set_attribute(name, value)
    }

    fn end_with_data(mut self, bytes: Vec<u8>) -> SdkResult<Self> {
        self.value = Some(bytes);
        Ok(self)
    }

    fn end(self) -> SdkResult<Self> {
        Ok(self)
    }
}

/// W1 baseline: outbox event -> `cloudevents::Event` -> binary-mode headers through the SDK's
/// serializer traits. The payload goes in as bytes, the SDK's cheapest path (the value is the
/// same bytes; parsing it into a `serde_json::Value` would only cost more).
pub fn sdk_encode_binary(event: &OutboxEvent<Payload>) -> SdkRecord {
    let sdk = sdk_event(event, payload_json(event).as_bytes().to_vec());
    let mut record = BinaryDeserializer::deserialize_binary(sdk, SdkRecord::new())
        .expect("the SDK writes the event");
    record.key = Some(event.partition_key().as_bytes().to_vec());
    record
}

/// W2 baseline: outbox event -> `cloudevents::Event` -> `serde_json::to_vec`. The payload must
/// become a `serde_json::Value`: as bytes the SDK would write `data_base64`.
pub fn sdk_encode_structured(event: &OutboxEvent<Payload>) -> Vec<u8> {
    let data: serde_json::Value =
        serde_json::from_str(payload_json(event)).expect("the payload is JSON");
    serde_json::to_vec(&sdk_event(event, data)).expect("the SDK event serializes")
}

fn hyphenated<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
}

fn hyphenated_opt<S: Serializer>(id: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => hyphenated(id, s),
        None => s.serialize_none(),
    }
}

/// The same members as the structured event, in a plain serde struct: the cost of writing the
/// bytes with serde_json.
#[derive(Serialize)]
pub struct PlainStructured<'a> {
    specversion: &'static str,
    #[serde(serialize_with = "hyphenated")]
    id: Uuid,
    source: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    datacontenttype: Option<&'a str>,
    time: chrono::DateTime<chrono::Utc>,
    aggregateid: &'a str,
    #[serde(
        serialize_with = "hyphenated_opt",
        skip_serializing_if = "Option::is_none"
    )]
    causationid: Option<Uuid>,
    #[serde(
        serialize_with = "hyphenated_opt",
        skip_serializing_if = "Option::is_none"
    )]
    correlationid: Option<Uuid>,
    dataversion: &'a str,
    partitionkey: &'a str,
    data: &'a RawValue,
}

/// W2 plain-struct baseline: the struct borrows the outbox event's fields, serde_json writes it.
pub fn plain_structured(event: &OutboxEvent<Payload>) -> Vec<u8> {
    let Payload::Json(data) = event.payload() else {
        panic!("the benchmark events carry JSON")
    };
    let plain = PlainStructured {
        specversion: "1.0",
        id: event.event_id(),
        source: event.source(),
        ty: event.event_type().as_str(),
        datacontenttype: event.content_type(),
        time: event.occurred_at(),
        aggregateid: event.aggregate_id(),
        causationid: event.causation_id(),
        correlationid: event.correlation_id(),
        dataversion: event.data_version(),
        partitionkey: event.partition_key(),
        data,
    };
    serde_json::to_vec(&plain).expect("the struct serializes")
}

/// A received binary-mode message as an SDK binding hands it to the SDK's
/// `BinaryDeserializer`: header values become owned strings, the value an owned `Vec`.
pub struct SdkBinaryMessage<'a>(pub &'a Message);

fn utf8(bytes: &[u8]) -> SdkResult<String> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| SdkError::Other {
            source: Box::new(e),
        })
}

impl BinaryDeserializer for SdkBinaryMessage<'_> {
    fn deserialize_binary<R: Sized, V: BinarySerializer<R>>(self, mut visitor: V) -> SdkResult<R> {
        let spec_version = self
            .0
            .header("ce_specversion")
            .ok_or(SdkError::WrongEncoding {})?;
        let spec_version = SpecVersion::try_from(utf8(spec_version)?.as_str())?;
        let attributes = spec_version.attribute_names();
        visitor = visitor.set_spec_version(spec_version)?;
        for header in &self.0.headers {
            let Some(value) = &header.value else {
                continue;
            };
            let Some(name) = header.name_str() else {
                continue;
            };
            if name == "content-type" {
                visitor = visitor.set_attribute(
                    "datacontenttype",
                    MessageAttributeValue::String(utf8(value)?),
                )?;
                continue;
            }
            let Some(name) = name.strip_prefix("ce_") else {
                continue;
            };
            if name == "specversion" {
                continue;
            }
            let value = MessageAttributeValue::String(utf8(value)?);
            visitor = if attributes.contains(&name) {
                visitor.set_attribute(name, value)?
            } else {
                visitor.set_extension(name, value)?
            };
        }
        match &self.0.value {
            Some(bytes) => visitor.end_with_data(bytes.clone()),
            None => visitor.end(),
        }
    }
}

/// W3 baseline: the SDK's binary deserializer into an `Event`, then the mapping.
pub fn sdk_decode_binary(message: &Message) -> OutboxEvent<Payload> {
    let event = BinaryDeserializer::into_event(SdkBinaryMessage(message))
        .expect("the SDK reads the message");
    OutboxEvent::try_from(event).expect("the SDK event maps")
}

/// W4 baseline: `serde_json::from_slice::<cloudevents::Event>`, then the mapping.
pub fn sdk_decode_structured(message: &Message) -> OutboxEvent<Payload> {
    let value = message.value.as_deref().expect("a structured value");
    let event: Event = serde_json::from_slice(value).expect("the SDK reads the event");
    OutboxEvent::try_from(event).expect("the SDK event maps")
}

/// W4 plain-struct baseline: the structured event's members as borrowed strings and `data`
/// as its text, read by serde_json from the same bytes. The cost of reading the bytes.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct PlainEvent<'a> {
    pub specversion: &'a str,
    pub id: &'a str,
    pub source: &'a str,
    #[serde(rename = "type")]
    pub ty: &'a str,
    pub datacontenttype: Option<&'a str>,
    pub time: &'a str,
    pub aggregateid: &'a str,
    pub causationid: Option<&'a str>,
    pub correlationid: Option<&'a str>,
    pub dataversion: &'a str,
    pub partitionkey: &'a str,
    pub data: &'a RawValue,
}

/// W4 plain-struct baseline: serde_json reads the structured value into [`PlainEvent`].
pub fn plain_decode_structured(message: &Message) -> PlainEvent<'_> {
    serde_json::from_slice(message.value.as_deref().expect("a structured value"))
        .expect("serde_json reads the event")
}

/// W3 plain-struct baseline: the binary message's header values and its value as one JSON
/// object, `{"content-type": ..., "ce_specversion": ..., ..., "value": VALUE}`, the header
/// values as JSON strings and the value as it is (JSON). These are "the same bytes" for
/// binary mode: every byte the decoder must read, in the form serde_json reads.
pub fn plain_binary_bytes(message: &Message) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    for header in &message.headers {
        let value = std::str::from_utf8(header.value.as_deref().expect("a value")).expect("UTF-8");
        object.insert(
            header.name_str().expect("UTF-8").to_owned(),
            value.to_owned().into(),
        );
    }
    let mut bytes = serde_json::to_vec(&object).expect("writes");
    bytes.pop();
    bytes.extend_from_slice(b",\"value\":");
    bytes.extend_from_slice(message.value.as_deref().expect("a value"));
    bytes.push(b'}');
    bytes
}

/// The struct serde_json reads [`plain_binary_bytes`] into: borrowed strings, the value's
/// text.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct PlainBinary<'a> {
    #[serde(rename = "content-type")]
    pub content_type: &'a str,
    #[serde(rename = "ce_specversion")]
    pub specversion: &'a str,
    #[serde(rename = "ce_id")]
    pub id: &'a str,
    #[serde(rename = "ce_source")]
    pub source: &'a str,
    #[serde(rename = "ce_type")]
    pub ty: &'a str,
    #[serde(rename = "ce_time")]
    pub time: &'a str,
    #[serde(rename = "ce_aggregateid")]
    pub aggregateid: &'a str,
    #[serde(rename = "ce_causationid")]
    pub causationid: Option<&'a str>,
    #[serde(rename = "ce_correlationid")]
    pub correlationid: Option<&'a str>,
    #[serde(rename = "ce_dataversion")]
    pub dataversion: &'a str,
    #[serde(rename = "ce_partitionkey")]
    pub partitionkey: &'a str,
    pub value: &'a RawValue,
}

/// W3 plain-struct baseline: serde_json reads [`plain_binary_bytes`] into [`PlainBinary`].
pub fn plain_decode_binary(bytes: &[u8]) -> PlainBinary<'_> {
    serde_json::from_slice(bytes).expect("serde_json reads the headers and value")
}

/// The validation binary mode owes a JSON value: serde_json's `RawValue` parse of it.
pub fn validate_value(message: &Message) -> &RawValue {
    serde_json::from_slice(message.value.as_deref().expect("a value")).expect("JSON")
}
