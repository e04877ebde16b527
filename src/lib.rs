//! Transactional-outbox events as CloudEvents and Kafka messages, without losing a bit.
//!
//! [`OutboxEvent`] is the Rust form of python-outbox-core's `IOutboxEvent`. It converts
//! losslessly to and from `cloudevents::Event` (crate `cloudevents-sdk`) and to and from Kafka
//! messages in the CloudEvents Kafka binding's binary and structured content modes. Messages
//! from any conforming producer decode: this crate, the Python, JavaScript and Rust SDKs, and
//! python-outbox-core.
//!
//! ```
//! use outbox_cloudevents::{Decoder, Encoder, Mode, OutboxEvent, Payload, Profile};
//! # fn main() -> Result<(), outbox_cloudevents::Error> {
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct InviteCreated { email: String, role: String }
//!
//! let event = OutboxEvent::new(
//!     "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11".parse().unwrap(),
//!     "com.gridflow.invite.created",
//!     "invite-123",
//!     "2024-05-01T10:00:00.123456Z".parse().unwrap(),
//!     "user-service",
//!     InviteCreated { email: "zoë@example.com".into(), role: "admin".into() },
//! )?;
//!
//! // Outbox event -> Kafka message (binary mode: attributes in `ce_` headers).
//! let message = Encoder::new(Mode::Binary).encode(&event)?;
//! assert_eq!(message.key.as_deref(), Some(&b"invite-123"[..]));
//! assert_eq!(message.header("ce_aggregateid"), Some(&b"invite-123"[..]));
//! assert_eq!(message.header("ce_time"), Some(&b"2024-05-01T10:00:00.123456Z"[..]));
//!
//! // Kafka message -> outbox event, typed or raw.
//! let back = OutboxEvent::<InviteCreated>::from_message(&message.as_ref(), &Profile::Canonical)?;
//! assert_eq!(back, event);
//! let raw = OutboxEvent::<Payload>::from_message(&message.as_ref(), &Profile::Canonical)?;
//! assert_eq!(raw.payload().as_json(), Some(r#"{"email":"zoë@example.com","role":"admin"}"#));
//!
//! // The same with a `Decoder`: a required mode, a profile, fewer leniencies; and to
//! // `cloudevents::Event`.
//! let decoder = Decoder::new().require_mode(Mode::Binary).strict();
//! assert_eq!(decoder.decode::<InviteCreated>(&message.as_ref())?, event);
//! let sdk = decoder.decode_cloudevent(&message.as_ref())?;
//! assert_eq!(sdk, cloudevents::Event::try_from(&event)?);
//!
//! // Outbox event <-> cloudevents::Event.
//! let cloudevent = cloudevents::Event::try_from(&event)?;
//! assert_eq!(OutboxEvent::<InviteCreated>::try_from(&cloudevent)?, event);
//! # Ok(()) }
//! ```
//!
//! # The API in brief
//!
//! - [`OutboxEvent`]: the event; `with_*` builders (a `Result` where a string is checked),
//!   [`to_message_json`](OutboxEvent::to_message_json) /
//!   [`from_message_json`](OutboxEvent::from_message_json) for python-outbox-core's JSON,
//!   [`to_cloudevent`](OutboxEvent::to_cloudevent) /
//!   [`from_cloudevent`](OutboxEvent::from_cloudevent) and `TryFrom` for `cloudevents::Event`.
//! - [`WireEvent`]: a CloudEvent as the codecs read and write it, borrowing where it can.
//! - [`Encoder`] and [`Decoder`]: Kafka messages in either mode; [`decode`] and
//!   [`OutboxEvent::from_message`] are the short forms of the default decoder.
//! - [`Message`] (owned), [`MessageRef`] (borrowed, free to take from a `Message`) and
//!   [`EncodedMessage`] (whose binary-mode value borrows the event's payload).
//! - [`Error`], with an [`ErrorKind`] and a [`Location`].
//!
//! # The mapping (canonical profile)
//!
//! | outbox | CloudEvent |
//! |---|---|
//! | `event_id` | `id` (lower-case hyphenated UUID) |
//! | `event_type` | `type` |
//! | `source` | `source` |
//! | `occurred_at` | `time` (RFC 3339, `Z`, 0/3/6/9 fraction digits, the same string in every mode) |
//! | `aggregate_id` | extension `aggregateid` |
//! | `data_version` | extension `dataversion` (always written) |
//! | `correlation_id` / `causation_id` | extensions `correlationid` / `causationid`, only when set |
//! | partition key | extension `partitionkey` (always written; the Kafka key by default) |
//! | payload | `data`, with `datacontenttype: application/json` |
//! | anything else | kept: `subject`, `dataschema`, other content types, unknown extensions |
//!
//! [`Profile::PythonOutboxCore`] instead writes what python-outbox-core's
//! `CloudEventsFormatter` writes (`subject` = aggregate id, `data` = the whole `to_message()`
//! object, `correlationid`, `time` in `isoformat()` form) and reads it back.
//!
//! # The round-trip laws
//!
//! Each is a property test in `tests/`:
//! 1. outbox -> CloudEvent -> outbox is the identity, payload included;
//! 2. CloudEvent -> outbox -> CloudEvent is the identity for events carrying the outbox
//!    attributes, `subject`, `dataschema` and unknown extensions included;
//! 3. decode(encode(x)) == x in both Kafka modes;
//! 4. decoders invent nothing: the Kafka key never becomes `partitionkey`;
//! 5. output is deterministic: attribute and header order fixed, extensions sorted;
//! 6. the JSON payload is byte-for-byte the same on the Kafka paths; through
//!    `cloudevents::Event` it is an equal JSON value with key order kept.
//!
//! Where they stop: binary mode carries every attribute as a string, so Integer and Boolean
//! extensions of a CloudEvent come back as strings, and non-JSON data comes back as bytes
//! (the binding cannot tell a text payload from a binary one). `cloudevents::Event` holds
//! JSON data as a `serde_json::Value`, so integers beyond 64 bits become floats there unless
//! this crate's `arbitrary-precision` feature is on; the Kafka paths and [`Payload`] keep them
//! exactly either way.
//!
//! # Features
//! - `rdkafka`: conversions between [`Message`] and rdkafka's records and consumed messages.
//! - `arbitrary-precision`: exact numbers in `cloudevents::Event` JSON data (turns on
//!   serde_json's `arbitrary_precision` for the whole build).
//! - `interchange`: the interchange JSON lines (Kafka messages as JSON objects), the format of
//!   the fixtures and of the `outbox-ce` command line.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod escape;
mod event;
mod format;
#[cfg(feature = "interchange")]
#[cfg_attr(docsrs, doc(cfg(feature = "interchange")))]
pub mod interchange;
pub mod kafka;
mod mapping;
mod names;
mod outbox_json;
mod payload;
#[cfg(feature = "rdkafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "rdkafka")))]
pub mod rdkafka;
mod sdk;
mod time;
mod wire;
mod word;

pub use error::{Error, ErrorKind, Location, Result};
pub use event::{DEFAULT_DATA_VERSION, OutboxEvent, PartitionKey};
pub use kafka::{
    Decoder, EncodedMessage, Encoder, Header, HeaderRef, HeadersRef, Leniency, Message, MessageRef,
    Mode, decode,
};
pub use mapping::Profile;
pub use names::{EventType, ExtensionName};
pub use outbox_json::parse_occurred_at;
pub use payload::{FromData, Payload, ToData};
pub use wire::{Data, ExtensionValue, WireEvent};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
