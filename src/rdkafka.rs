//! Conversions between [`Message`] and rdkafka's records and consumed messages.
//!
//! ```no_run
//! # use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile, MessageRef};
//! # use rdkafka::{Message as _, consumer::{BaseConsumer, Consumer}, producer::FutureProducer};
//! # async fn run(producer: FutureProducer, consumer: BaseConsumer, event: OutboxEvent<Payload>) -> Result<(), Box<dyn std::error::Error>> {
//! // The value borrows the event's payload: nothing is copied on the way to librdkafka.
//! let message = Encoder::new(Mode::Binary).encode_borrowed(&event)?;
//! producer
//!     .send(message.to_record("events")?, std::time::Duration::from_secs(5))
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
//! message with such a name is this crate's error value, as every malformed message is. For
//! the same reason a header name that is not UTF-8 cannot be produced: [`Message::to_record`]
//! refuses it.
//!
//! Costs: [`MessageRef::from`] a consumed message copies no bytes, and allocates one `Vec`
//! of [`HeaderRef`]s (each header is read through a call into librdkafka, so the headers are
//! read once, into that `Vec`, not on every pass of the decoder).
//! [`Message::to_record`] and [`EncodedMessage::to_record`] borrow key and value and copy the
//! headers into rdkafka's `OwnedHeaders`, as rdkafka requires.

use std::ffi::{CStr, c_char, c_void};

use rdkafka::bindings as sys;
use rdkafka::message::{
    BorrowedHeaders, BorrowedMessage, Header as RdHeader, Headers, OwnedHeaders, OwnedMessage,
};
use rdkafka::producer::FutureRecord;

use crate::error::{Error, ErrorKind, Result};
use crate::kafka::{EncodedMessage, Header, HeaderRef, HeadersRef, Message, MessageRef};

/// The headers as rdkafka's owned headers, in order, null values kept.
fn owned_headers(headers: &[Header]) -> Result<OwnedHeaders> {
    headers.iter().try_fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |owned, h| {
            let key = std::str::from_utf8(&h.name).map_err(|e| {
                Error::new(
                    ErrorKind::NotUtf8,
                    "header name is not UTF-8, which rdkafka cannot send",
                )
                .header(&h.name)
                .caused_by(e)
            })?;
            Ok(owned.insert(RdHeader {
                key,
                value: h.value.as_ref(),
            }))
        },
    )
}

fn record<'a>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    headers: &[Header],
    value: Option<&'a [u8]>,
) -> Result<FutureRecord<'a, [u8], [u8]>> {
    let mut record = FutureRecord::to(topic).headers(owned_headers(headers)?);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    Ok(record)
}

impl Message {
    /// The headers as rdkafka's owned headers, in order, null values kept.
    ///
    /// # Errors
    /// [`ErrorKind::NotUtf8`] for a header name that is not UTF-8.
    pub fn to_owned_headers(&self) -> Result<OwnedHeaders> {
        owned_headers(&self.headers)
    }

    /// A record for rdkafka's `FutureProducer`, borrowing key and value.
    ///
    /// # Errors
    /// [`ErrorKind::NotUtf8`] for a header name that is not UTF-8.
    pub fn to_record<'a>(&'a self, topic: &'a str) -> Result<FutureRecord<'a, [u8], [u8]>> {
        record(
            topic,
            self.key.as_deref(),
            &self.headers,
            self.value.as_deref(),
        )
    }
}

impl EncodedMessage<'_> {
    /// A record for rdkafka's `FutureProducer`, borrowing key and value (and so the event's
    /// payload, in binary mode).
    ///
    /// # Errors
    /// [`ErrorKind::NotUtf8`] for a header name that is not UTF-8.
    pub fn to_record<'a>(&'a self, topic: &'a str) -> Result<FutureRecord<'a, [u8], [u8]>> {
        record(
            topic,
            self.key.as_deref(),
            &self.headers,
            self.value.as_deref(),
        )
    }
}

fn view<'a, M: rdkafka::Message>(message: &'a M) -> MessageRef<'a>
where
    M::Headers: AsBorrowed,
{
    let headers = match message.headers() {
        Some(headers) => {
            let headers = headers.as_borrowed_headers();
            (0..headers.count())
                .map_while(|index| raw_header(headers, index))
                .collect()
        }
        None => HeadersRef::default(),
    };
    MessageRef {
        key: message.key(),
        headers,
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
    /// Borrows key, headers and value from a consumed message; no bytes are copied.
    fn from(message: &'a BorrowedMessage<'_>) -> Self {
        view(message)
    }
}

impl<'a> From<&'a OwnedMessage> for MessageRef<'a> {
    /// Borrows key, headers and value from a detached message; no bytes are copied.
    fn from(message: &'a OwnedMessage) -> Self {
        view(message)
    }
}

impl From<&OwnedMessage> for Message {
    /// Copies key, headers and value out of a detached message, header names as bytes.
    fn from(message: &OwnedMessage) -> Self {
        view(message).to_owned_message()
    }
}

impl From<&BorrowedMessage<'_>> for Message {
    /// Copies key, headers and value out of a consumed message, header names as bytes.
    fn from(message: &BorrowedMessage<'_>) -> Self {
        view(message).to_owned_message()
    }
}
