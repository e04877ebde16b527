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
//! Header names are read as the bytes on the wire: rdkafka's own accessors hand them out as
//! `&str` and panic on a name that is not UTF-8, so any producer could stop a consumer. A
//! message with such a name is this crate's error value, as every malformed message is.

use std::ffi::{CStr, c_char, c_void};

use rdkafka::bindings as sys;
use rdkafka::message::{
    BorrowedHeaders, BorrowedMessage, Header as RdHeader, Headers, OwnedHeaders, OwnedMessage,
};
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

fn view<'a, M: rdkafka::Message>(message: &'a M) -> MessageRef<'a>
where
    M::Headers: AsBorrowed,
{
    MessageRef {
        key: message.key(),
        headers: message
            .headers()
            .map(|headers| {
                let headers = headers.as_borrowed_headers();
                (0..headers.count())
                    .map_while(|index| raw_header(headers, index))
                    .collect()
            })
            .unwrap_or_default(),
        value: message.payload(),
    }
}

/// The headers of both kinds of rdkafka message, as librdkafka's header list.
trait AsBorrowed {
    fn as_borrowed_headers(&self) -> &BorrowedHeaders;
}

impl AsBorrowed for BorrowedHeaders {
    fn as_borrowed_headers(&self) -> &BorrowedHeaders {
        self
    }
}

impl AsBorrowed for OwnedHeaders {
    fn as_borrowed_headers(&self) -> &BorrowedHeaders {
        self.as_borrowed()
    }
}

/// Header `index`, its name as bytes; `None` past the last one.
#[allow(unsafe_code)]
fn raw_header(headers: &BorrowedHeaders, index: usize) -> Option<HeaderRef<'_>> {
    let native = std::ptr::from_ref(headers).cast::<sys::rd_kafka_headers_t>();
    let mut name: *const c_char = std::ptr::null();
    let mut value: *const c_void = std::ptr::null();
    let mut size = 0usize;
    // SAFETY: a `&BorrowedHeaders` is the address of a live `rd_kafka_headers_t`: rdkafka
    // makes one by casting that pointer and passes it back to librdkafka the same way. On
    // success librdkafka points `name` at the NUL-terminated name and `value` at `size`
    // bytes (or null for a null value), both owned by the header list, which `headers`
    // borrows for the lifetime given to the result.
    unsafe {
        let error = sys::rd_kafka_header_get_all(native, index, &mut name, &mut value, &mut size);
        if error != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return None;
        }
        Some(HeaderRef {
            name: CStr::from_ptr(name).to_bytes(),
            value: (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
        })
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
    /// Copies key, headers and value out of a detached message. A header name that is not
    /// UTF-8 gets U+FFFD in place of its bad bytes; [`MessageRef`] keeps them.
    fn from(message: &OwnedMessage) -> Self {
        to_message(view(message))
    }
}

impl From<&BorrowedMessage<'_>> for Message {
    /// Copies key, headers and value out of a consumed message. A header name that is not
    /// UTF-8 gets U+FFFD in place of its bad bytes; [`MessageRef`] keeps them.
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
                // `Header` names are text: a name that is not UTF-8 is written with U+FFFD
                // here. Read the message through `MessageRef`, which keeps the bytes, to see
                // or refuse such a name.
                name: String::from_utf8_lossy(h.name).into_owned().into(),
                value: h.value.map(<[u8]>::to_vec),
            })
            .collect(),
        value: view.value.map(<[u8]>::to_vec),
    }
}
