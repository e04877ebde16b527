//! Conversions between [`Message`] and rdkafka's records and consumed messages.
//!
//! ```no_run
//! # use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile, MessageRef};
//! # use rdkafka::{Message as _, consumer::{BaseConsumer, Consumer}, producer::FutureProducer};
//! # async fn run(producer: FutureProducer, consumer: BaseConsumer, event: OutboxEvent<Payload>) -> Result<(), Box<dyn std::error::Error>> {
//! let message = Encoder::new(Mode::Binary).encode(&event)?;
//! producer
//!     .send(message.to_record("events"), std::time::Duration::from_secs(5))
//!     .await
//!     .map_err(|(e, _)| e)?;
//!
//! if let Some(consumed) = consumer.poll(std::time::Duration::from_secs(5)) {
//!     let consumed = consumed?;
//!     let back = OutboxEvent::<Payload>::from_message(&MessageRef::from(&consumed), &Profile::Canonical)?;
//! }
//! # Ok(()) }
//! ```
//!
//! rdkafka hands out header names as `&str` and panics on a name that is not UTF-8 before
//! this crate sees it; every other malformed message is this crate's error value.

use rdkafka::message::{BorrowedMessage, Header as RdHeader, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;

use crate::kafka::{HeaderRef, Message, MessageRef};

impl Message {
    /// The headers as rdkafka's owned headers, in order, null values kept.
    pub fn to_owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(
            OwnedHeaders::new_with_capacity(self.headers.len()),
            |headers, h| {
                headers.insert(RdHeader {
                    key: h.name.as_ref(),
                    value: h.value.as_ref(),
                })
            },
        )
    }

    /// A record for rdkafka's `FutureProducer`, borrowing key and value.
    pub fn to_record<'a>(&'a self, topic: &'a str) -> FutureRecord<'a, [u8], [u8]> {
        let mut record = FutureRecord::to(topic).headers(self.to_owned_headers());
        if let Some(key) = &self.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &self.value {
            record = record.payload(value.as_slice());
        }
        record
    }
}

fn view<'a, M: rdkafka::Message>(message: &'a M) -> MessageRef<'a> {
    MessageRef {
        key: message.key(),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| HeaderRef {
                        name: h.key.as_bytes(),
                        value: h.value,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        value: message.payload(),
    }
}

impl<'a> From<&'a BorrowedMessage<'_>> for MessageRef<'a> {
    /// Borrows key, headers and value from a consumed message; nothing is copied.
    fn from(message: &'a BorrowedMessage<'_>) -> Self {
        view(message)
    }
}

impl<'a> From<&'a OwnedMessage> for MessageRef<'a> {
    /// Borrows key, headers and value from a detached message; nothing is copied.
    fn from(message: &'a OwnedMessage) -> Self {
        view(message)
    }
}

impl From<&OwnedMessage> for Message {
    /// Copies key, headers and value out of a detached message.
    fn from(message: &OwnedMessage) -> Self {
        to_message(view(message))
    }
}

impl From<&BorrowedMessage<'_>> for Message {
    /// Copies key, headers and value out of a consumed message.
    fn from(message: &BorrowedMessage<'_>) -> Self {
        to_message(view(message))
    }
}

fn to_message(view: MessageRef<'_>) -> Message {
    Message {
        key: view.key.map(<[u8]>::to_vec),
        headers: view
            .headers
            .iter()
            .map(|h| crate::kafka::Header {
                // rdkafka has already checked that the name is UTF-8.
                name: String::from_utf8_lossy(h.name).into_owned().into(),
                value: h.value.map(<[u8]>::to_vec),
            })
            .collect(),
        value: view.value.map(<[u8]>::to_vec),
    }
}
