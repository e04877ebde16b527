//! What the engine needs from a destination, whatever it is: take a message, say later
//! whether it was acknowledged.

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use outbox_cloudevents::{Encoder, Message, Mode, OutboxEvent, Payload, Profile};

use crate::schema::Table;
use crate::source::Row;

/// What a row becomes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// The CloudEvents Kafka binding's binary mode: attributes in `ce_` headers.
    Binary,
    /// Its structured mode: the whole CloudEvent as JSON in the value.
    Structured,
    /// What python-outbox-core's publisher sends: value = the `to_message()` object, key = the
    /// partition key, no headers.
    OutboxJson,
}

impl FromStr for OutputMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(OutputMode::Binary),
            "structured" => Ok(OutputMode::Structured),
            "outbox-json" => Ok(OutputMode::OutboxJson),
            _ => Err(format!(
                "`{s}` is not a mode: use binary, structured or outbox-json"
            )),
        }
    }
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputMode::Binary => "binary",
            OutputMode::Structured => "structured",
            OutputMode::OutboxJson => "outbox-json",
        })
    }
}

/// Turns outbox events into messages: the library's [`Encoder`] (whose key is the partition
/// key) for the CloudEvents modes, `to_message()` for `outbox-json`.
#[derive(Debug, Clone)]
pub struct MessageEncoder {
    mode: OutputMode,
    encoder: Encoder,
}

impl MessageEncoder {
    /// An encoder for `mode`; `profile` applies to the CloudEvents modes.
    pub fn new(mode: OutputMode, profile: Profile) -> Self {
        let library_mode = match mode {
            OutputMode::Structured => Mode::Structured,
            OutputMode::Binary | OutputMode::OutboxJson => Mode::Binary,
        };
        MessageEncoder {
            mode,
            encoder: Encoder::new(library_mode).profile(profile),
        }
    }

    /// The message for `event`.
    ///
    /// # Errors
    /// The library's error when the event cannot be written in this mode (for example a
    /// payload that is not a JSON object in `outbox-json` or the python-outbox-core profile).
    pub fn encode(&self, event: &OutboxEvent<Payload>) -> outbox_cloudevents::Result<Message> {
        self.encode_stored(event, None)
    }

    /// The message for `event`, read from a row or a message where its `occurred_at` was
    /// stored as the text `occurred_at`. In `outbox-json` mode that time is written as
    /// python-outbox-core's publisher writes the `datetime` it reads from that text: in the
    /// text's own offset (`+00:00` for `Z`), and without an offset when the text has none
    /// (`OutboxEvent::to_message_json_with_occurred_at`). The CloudEvents modes write every
    /// time in UTC, whatever the text.
    ///
    /// # Errors
    /// As [`MessageEncoder::encode`]; and the library's error when `occurred_at` is not the
    /// event's time.
    pub fn encode_stored(
        &self,
        event: &OutboxEvent<Payload>,
        occurred_at: Option<&str>,
    ) -> outbox_cloudevents::Result<Message> {
        match self.mode {
            OutputMode::OutboxJson => Ok(Message {
                key: Some(event.partition_key().as_bytes().to_vec()),
                headers: Vec::new(),
                value: Some(match occurred_at {
                    Some(text) => event.to_message_json_with_occurred_at(text)?,
                    None => event.to_message_json()?,
                }),
            }),
            OutputMode::Binary | OutputMode::Structured => self.encoder.encode(event),
        }
    }

    /// The message for the event `row` holds ([`Row::event`]), its `occurred_at` written from
    /// the text the row stores ([`MessageEncoder::encode_stored`]).
    ///
    /// # Errors
    /// The text [`Row::event`] fails with, or the library's error for an event this mode
    /// cannot carry.
    pub fn encode_row(&self, row: &Row, table: &Table) -> Result<Message, String> {
        let event = row.event(table)?;
        let stored = match self.mode {
            OutputMode::OutboxJson => row.stored_occurred_at(),
            OutputMode::Binary | OutputMode::Structured => None,
        };
        self.encode_stored(&event, stored.as_deref())
            .map_err(|e| e.to_string())
    }
}

/// The text of the `occurred_at` member of a `to_message()` object; `None` when `json` is not
/// an object with a string there (the library's reader then says what is wrong).
pub(crate) fn occurred_at_member(json: &[u8]) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).ok()?;
    match object.get("occurred_at")? {
        serde_json::Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// Where a message goes: the main topic or the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The destination's topic.
    Main,
    /// The dead-letter topic.
    DeadLetter,
}

/// Why a message was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    /// What the destination said.
    pub message: String,
    /// How the engine treats it.
    pub kind: SinkErrorKind,
}

/// The classes of [`SinkError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// May go away by itself (broker unreachable, timeout, leader change, queue full): sent
    /// again after a backoff; never fails the row.
    Transient,
    /// Refused for this message (too large, invalid topic, not authorised): counts as an
    /// attempt; the row fails after `max_retry_count` retries.
    Permanent,
    /// The destination is gone (standard output closed): the relay stops.
    Fatal,
}

impl SinkError {
    /// A transient error.
    pub fn transient(message: impl fmt::Display) -> Self {
        SinkError {
            message: message.to_string(),
            kind: SinkErrorKind::Transient,
        }
    }

    /// A permanent error for one message.
    pub fn permanent(message: impl fmt::Display) -> Self {
        SinkError {
            message: message.to_string(),
            kind: SinkErrorKind::Permanent,
        }
    }

    /// An error that stops the relay.
    pub fn fatal(message: impl fmt::Display) -> Self {
        SinkError {
            message: message.to_string(),
            kind: SinkErrorKind::Fatal,
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SinkError {}

/// Checks a destination; `Err` says why it is unreachable.
pub type Probe = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// A destination for messages.
pub trait Sink: Send {
    /// The future that resolves when the destination acknowledged or refused a message.
    type Delivery: Future<Output = Result<(), SinkError>> + Send + 'static;

    /// Hands `message` over. Messages given in order for one key are delivered in that
    /// order or not at all; the engine sends the next message of a key only after the
    /// previous one was acknowledged.
    fn send(&mut self, route: Route, message: &Message) -> Self::Delivery;

    /// Makes every acknowledged message durable before the engine marks rows (standard
    /// output: flushes it).
    ///
    /// # Errors
    /// A fatal [`SinkError`] when that fails.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// A check of whether the destination's broker is reachable, for `/health`; `None`
    /// when it has none (standard output), and the check says `not_applicable`.
    fn probe(&self) -> Option<Probe>;

    /// The last error the destination's client reported by itself (Kafka: librdkafka's
    /// error callback, such as every broker being down), for the error of a relay that
    /// gave up on it; `None` when it reported none.
    fn last_error(&self) -> Option<String> {
        None
    }

    /// A short description for logs.
    fn describe(&self) -> String;
}
