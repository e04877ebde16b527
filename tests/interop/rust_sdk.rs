//! cloudevents-sdk 0.9 as a Kafka peer, through its own message traits.
//!
//! The crate is built without its `rdkafka` feature, so its Kafka binding is not compiled in.
//! These two types put the SDK's serializer and deserializer traits on this crate's `Message`,
//! mapping names as that binding does: `datacontenttype` <-> `content-type`, every other
//! attribute and extension <-> `ce_<name>` with the SDK's string form of the value, structured
//! mode under `content-type: application/cloudevents+json`. The SDK itself walks the event
//! (`BinaryDeserializer for Event`), writes its JSON (`serde_json`), and builds events from
//! headers (`MessageDeserializer::into_event`, which goes through `EventBuilderV10`).

use cloudevents::event::SpecVersion;
use cloudevents::message::{
    BinaryDeserializer, BinarySerializer, Encoding, Error, MessageAttributeValue,
    MessageDeserializer, Result, StructuredDeserializer, StructuredSerializer,
};
use outbox_cloudevents::{Header, Message};

const STRUCTURED: &str = "application/cloudevents+json";

fn header_name(attribute: &str) -> String {
    if attribute == "datacontenttype" {
        "content-type".to_owned()
    } else {
        format!("ce_{attribute}")
    }
}

/// A Kafka message being written by the SDK.
#[derive(Default)]
pub struct Outgoing(Message);

impl Outgoing {
    /// The SDK's binary-mode message for `event`.
    pub fn binary(event: cloudevents::Event) -> Result<Message> {
        event.deserialize_binary(Outgoing::default())
    }

    /// The SDK's structured-mode message for `event`.
    pub fn structured(event: cloudevents::Event) -> Result<Message> {
        let json = serde_json::to_vec(&event)?;
        Outgoing::default().set_structured_event(json)
    }
}

impl BinarySerializer<Message> for Outgoing {
    fn set_spec_version(mut self, spec_version: SpecVersion) -> Result<Self> {
        let value = spec_version.to_string();
        self.0.headers.push(Header::new("ce_specversion", value));
        Ok(self)
    }

    fn set_attribute(mut self, name: &str, value: MessageAttributeValue) -> Result<Self> {
        let value = value.to_string();
        self.0.headers.push(Header::new(header_name(name), value));
        Ok(self)
    }

    fn set_extension(self, name: &str, value: MessageAttributeValue) -> Result<Self> {
        self.set_attribute(name, value)
    }

    fn end_with_data(mut self, bytes: Vec<u8>) -> Result<Message> {
        self.0.value = Some(bytes);
        Ok(self.0)
    }

    fn end(self) -> Result<Message> {
        Ok(self.0)
    }
}

impl StructuredSerializer<Message> for Outgoing {
    fn set_structured_event(mut self, bytes: Vec<u8>) -> Result<Message> {
        self.0.headers.push(Header::new("content-type", STRUCTURED));
        self.0.value = Some(bytes);
        Ok(self.0)
    }
}

/// A Kafka message being read by the SDK.
pub struct Incoming<'a>(pub &'a Message);

/// The SDK's reading of `message`: its own mode detection, then its event builder or its JSON
/// format.
pub fn to_event(message: &Message) -> Result<cloudevents::Event> {
    MessageDeserializer::into_event(Incoming(message))
}

fn text(value: &Option<Vec<u8>>) -> Result<String> {
    let bytes = value.clone().ok_or_else(|| Error::Other {
        source: "null header value".into(),
    })?;
    String::from_utf8(bytes).map_err(|e| Error::Other {
        source: Box::new(e),
    })
}

impl BinaryDeserializer for Incoming<'_> {
    fn deserialize_binary<R: Sized, V: BinarySerializer<R>>(self, mut visitor: V) -> Result<R> {
        let message = self.0;
        let version = message
            .headers
            .iter()
            .find(|h| *h.name == *b"ce_specversion")
            .ok_or(Error::WrongEncoding {})?;
        let version = SpecVersion::try_from(text(&version.value)?.as_str())?;
        let known = version.attribute_names();
        visitor = visitor.set_spec_version(version)?;
        for header in &message.headers {
            let value = || text(&header.value).map(MessageAttributeValue::String);
            let name = header.name_str().ok_or(Error::WrongEncoding {})?;
            if name == "content-type" {
                visitor = visitor.set_attribute("datacontenttype", value()?)?;
            } else if let Some(name) = name.strip_prefix("ce_") {
                if name == "specversion" {
                    continue;
                }
                visitor = if known.contains(&name) {
                    visitor.set_attribute(name, value()?)?
                } else {
                    visitor.set_extension(name, value()?)?
                };
            }
        }
        match &message.value {
            Some(bytes) => visitor.end_with_data(bytes.clone()),
            None => visitor.end(),
        }
    }
}

impl StructuredDeserializer for Incoming<'_> {
    fn deserialize_structured<R: Sized, V: StructuredSerializer<R>>(self, visitor: V) -> Result<R> {
        let value = self.0.value.clone().ok_or(Error::WrongEncoding {})?;
        visitor.set_structured_event(value)
    }
}

impl MessageDeserializer for Incoming<'_> {
    fn encoding(&self) -> Encoding {
        let content_type = self
            .0
            .headers
            .iter()
            .find(|h| *h.name == *b"content-type")
            .and_then(|h| h.value.as_deref());
        if content_type.is_some_and(|ct| ct.starts_with(STRUCTURED.as_bytes())) {
            Encoding::STRUCTURED
        } else if self.0.headers.iter().any(|h| *h.name == *b"ce_specversion") {
            Encoding::BINARY
        } else {
            Encoding::UNKNOWN
        }
    }
}
