//! The Kafka message types: owned, borrowed for decoding, and borrowed from the event for
//! encoding.

use std::borrow::Cow;
use std::fmt;

/// A Kafka record header: a name and an optional value. Kafka allows duplicates.
///
/// Names are bytes, as in [`HeaderRef`]: Kafka clients that hand out raw bytes may deliver a
/// name that is not UTF-8, and the decoder reports it rather than losing it. Names this crate
/// writes are ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name.
    pub name: Cow<'static, [u8]>,
    /// The value; `None` is a null header value.
    pub value: Option<Vec<u8>>,
}

impl Header {
    /// A header with a textual name and a value.
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<Vec<u8>>) -> Self {
        let name = match name.into() {
            Cow::Borrowed(name) => Cow::Borrowed(name.as_bytes()),
            Cow::Owned(name) => Cow::Owned(name.into_bytes()),
        };
        Header {
            name,
            value: Some(value.into()),
        }
    }

    /// The name as text, when it is UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }

    /// The header as a borrowed one; free.
    pub fn as_ref(&self) -> HeaderRef<'_> {
        HeaderRef {
            name: &self.name,
            value: self.value.as_deref(),
        }
    }
}

/// A borrowed header, as a Kafka client hands it out. Names are bytes so that a name that is
/// not UTF-8 reaches the decoder and is reported rather than lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The header name.
    pub name: &'a [u8],
    /// The value; `None` is a null header value.
    pub value: Option<&'a [u8]>,
}

impl<'a> HeaderRef<'a> {
    /// The name as text, when it is UTF-8.
    pub fn name_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.name).ok()
    }
}

/// A Kafka message: key, ordered headers (duplicates kept) and value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record headers, in order.
    pub headers: Vec<Header>,
    /// The record value; `None` is a null value (a tombstone on a compacted topic).
    pub value: Option<Vec<u8>>,
}

impl Message {
    /// A borrowed view for decoding. Free: nothing is allocated or copied.
    pub fn as_ref(&self) -> MessageRef<'_> {
        MessageRef {
            key: self.key.as_deref(),
            headers: HeadersRef::from(self.headers.as_slice()),
            value: self.value.as_deref(),
        }
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        first_value(self.headers.iter().map(Header::as_ref), name)
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    /// As [`Message::as_ref`].
    fn from(message: &'a Message) -> Self {
        message.as_ref()
    }
}

fn first_value<'a>(
    mut headers: impl Iterator<Item = HeaderRef<'a>>,
    name: &str,
) -> Option<&'a [u8]> {
    headers
        .find(|h| h.name == name.as_bytes())
        .and_then(|h| h.value)
}

/// A borrowed Kafka message; decoding it copies only what the returned event must own.
///
/// Built for free from a [`Message`] ([`Message::as_ref`]) and from a slice of
/// [`HeaderRef`]s; see [`HeadersRef`] for the header containers it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The record headers, in order.
    pub headers: HeadersRef<'a>,
    /// The record value.
    pub value: Option<&'a [u8]>,
}

impl<'a> MessageRef<'a> {
    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        first_value(self.headers.iter(), name)
    }

    /// Copies the message into an owned one.
    pub fn to_owned_message(&self) -> Message {
        Message {
            key: self.key.map(<[u8]>::to_vec),
            headers: self
                .headers
                .iter()
                .map(|h| Header {
                    name: Cow::Owned(h.name.to_vec()),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect(),
            value: self.value.map(<[u8]>::to_vec),
        }
    }
}

/// The headers of a [`MessageRef`], in order: borrowed from a [`Message`]'s headers or from
/// [`HeaderRef`]s, which a Kafka client conversion may collect into a `Vec` of its own.
///
/// ```
/// use outbox_cloudevents::{HeaderRef, HeadersRef, MessageRef};
/// let headers = [HeaderRef { name: b"ce_id", value: Some(b"1") }];
/// let message = MessageRef { key: None, headers: HeadersRef::from(&headers[..]), value: None };
/// assert_eq!(message.header("ce_id"), Some(&b"1"[..]));
/// ```
#[derive(Clone)]
pub struct HeadersRef<'a>(Repr<'a>);

#[derive(Clone)]
enum Repr<'a> {
    Owned(&'a [Header]),
    Borrowed(Cow<'a, [HeaderRef<'a>]>),
}

impl<'a> HeadersRef<'a> {
    /// The number of headers.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Owned(headers) => headers.len(),
            Repr::Borrowed(headers) => headers.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The header at `index`.
    pub fn get(&self, index: usize) -> Option<HeaderRef<'a>> {
        match &self.0 {
            Repr::Owned(headers) => headers.get(index).map(Header::as_ref),
            Repr::Borrowed(headers) => headers.get(index).copied(),
        }
    }

    /// The headers in order.
    pub fn iter(&self) -> HeadersIter<'_, 'a> {
        HeadersIter(match &self.0 {
            Repr::Owned(headers) => IterRepr::Owned(headers.iter()),
            Repr::Borrowed(headers) => IterRepr::Borrowed(headers.iter()),
        })
    }
}

impl Default for HeadersRef<'_> {
    fn default() -> Self {
        HeadersRef(Repr::Borrowed(Cow::Borrowed(&[])))
    }
}

impl fmt::Debug for HeadersRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for HeadersRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for HeadersRef<'_> {}

impl<'a> From<&'a [Header]> for HeadersRef<'a> {
    /// Borrows owned headers; free.
    fn from(headers: &'a [Header]) -> Self {
        HeadersRef(Repr::Owned(headers))
    }
}

impl<'a> From<&'a [HeaderRef<'a>]> for HeadersRef<'a> {
    /// Borrows the slice; free.
    fn from(headers: &'a [HeaderRef<'a>]) -> Self {
        HeadersRef(Repr::Borrowed(Cow::Borrowed(headers)))
    }
}

impl<'a> From<Vec<HeaderRef<'a>>> for HeadersRef<'a> {
    /// Takes the vector; the headers' bytes stay borrowed.
    fn from(headers: Vec<HeaderRef<'a>>) -> Self {
        HeadersRef(Repr::Borrowed(Cow::Owned(headers)))
    }
}

impl<'a> FromIterator<HeaderRef<'a>> for HeadersRef<'a> {
    fn from_iter<I: IntoIterator<Item = HeaderRef<'a>>>(iter: I) -> Self {
        HeadersRef::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'h, 'a> IntoIterator for &'h HeadersRef<'a> {
    type Item = HeaderRef<'a>;
    type IntoIter = HeadersIter<'h, 'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The iterator of [`HeadersRef::iter`].
#[derive(Debug, Clone)]
pub struct HeadersIter<'h, 'a>(IterRepr<'h, 'a>);

#[derive(Debug, Clone)]
enum IterRepr<'h, 'a> {
    Owned(std::slice::Iter<'a, Header>),
    Borrowed(std::slice::Iter<'h, HeaderRef<'a>>),
}

impl<'a> Iterator for HeadersIter<'_, 'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        match &mut self.0 {
            IterRepr::Owned(iter) => iter.next().map(Header::as_ref),
            IterRepr::Borrowed(iter) => iter.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Owned(iter) => iter.size_hint(),
            IterRepr::Borrowed(iter) => iter.size_hint(),
        }
    }
}

impl ExactSizeIterator for HeadersIter<'_, '_> {}

/// A Kafka message encoded from an event whose value may borrow from the event: in binary
/// mode, a JSON, text or bytes payload is the value without a copy. For producers that only
/// borrow the bytes they send, such as rdkafka's `FutureRecord`; see
/// [`Encoder::encode_borrowed`](crate::Encoder::encode_borrowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage<'a> {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record headers, in order.
    pub headers: Vec<Header>,
    /// The record value, borrowed from the event where it could be.
    pub value: Option<Cow<'a, [u8]>>,
}

impl EncodedMessage<'_> {
    /// A borrowed view for decoding; free.
    pub fn as_ref(&self) -> MessageRef<'_> {
        MessageRef {
            key: self.key.as_deref(),
            headers: HeadersRef::from(self.headers.as_slice()),
            value: self.value.as_deref(),
        }
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        first_value(self.headers.iter().map(Header::as_ref), name)
    }

    /// An owned message; copies the value only when it was borrowed.
    pub fn into_owned(self) -> Message {
        Message {
            key: self.key,
            headers: self.headers,
            value: self.value.map(Cow::into_owned),
        }
    }
}

impl From<EncodedMessage<'_>> for Message {
    fn from(message: EncodedMessage<'_>) -> Self {
        message.into_owned()
    }
}
