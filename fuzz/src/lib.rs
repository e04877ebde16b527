//! Shared parts of the fuzz targets: a Kafka message read from fuzz input, and the
//! round-trip checks the targets assert.
//!
//! # The message form of fuzz input
//!
//! Lines separated by `\n`, then a blank line, then the value:
//!
//! ```text
//! @order-1001
//! content-type:application/json
//! ce_specversion:1.0
//! ce_id:7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b03
//! ce_subject
//!
//! {"zeta": 1}
//! ```
//!
//! A line starting with `@` is the key (the first one counts). Any other line is a header:
//! the name up to the first `:`, the value after it; a line without `:` is a header with a null
//! value. Everything after the first blank line is the value; input without a blank line has
//! a null value. Bytes are taken as they are, UTF-8 or not, so the decoder sees non-UTF-8
//! names and values too.

use std::borrow::Cow;

use outbox_cloudevents::{
    Data, Encoder, ErrorKind, HeaderRef, MessageRef, Mode, WireEvent, decode,
};

/// A header name (rewritten names are owned) and its value.
type Field<'a> = (Cow<'a, [u8]>, Option<&'a [u8]>);

/// A message parsed from fuzz input; header names may be rewritten, so they are owned here.
#[derive(Debug, Default)]
pub struct Input<'a> {
    key: Option<&'a [u8]>,
    headers: Vec<Field<'a>>,
    value: Option<&'a [u8]>,
}

impl<'a> Input<'a> {
    /// Reads the message form described in the crate docs.
    ///
    /// With `prefix`, every header name gets it in front, except a name starting with `=`,
    /// which is taken as written without the `=`: so `id:x` is `ce_id: x` for the binary
    /// decoder, and `=content-type:text/plain` stays `content-type`.
    pub fn parse(input: &'a [u8], prefix: Option<&[u8]>) -> Self {
        let (head, value) = match find(input, b"\n\n") {
            Some(at) => (&input[..at], Some(&input[at + 2..])),
            None => (input, None),
        };
        let mut parsed = Input {
            value,
            ..Input::default()
        };
        for line in head.split(|b| *b == b'\n') {
            if let Some(key) = line.strip_prefix(b"@") {
                parsed.key.get_or_insert(key);
                continue;
            }
            let (name, value) = match line.iter().position(|b| *b == b':') {
                Some(at) => (&line[..at], Some(&line[at + 1..])),
                None => (line, None),
            };
            let name = match prefix {
                None => Cow::Borrowed(name),
                Some(prefix) => match name.strip_prefix(b"=") {
                    Some(raw) => Cow::Borrowed(raw),
                    None => Cow::Owned([prefix, name].concat()),
                },
            };
            parsed.headers.push((name, value));
        }
        parsed
    }

    /// A structured-mode message: the whole input is the value, under the JSON format's
    /// `content-type`.
    pub fn structured(input: &'a [u8]) -> Self {
        Input {
            key: None,
            headers: vec![(
                Cow::Borrowed(&b"content-type"[..]),
                Some(&b"application/cloudevents+json; charset=UTF-8"[..]),
            )],
            value: Some(input),
        }
    }

    /// The message as the decoder takes it.
    pub fn message(&self) -> MessageRef<'_> {
        MessageRef {
            key: self.key,
            headers: self
                .headers
                .iter()
                .map(|(name, value)| HeaderRef {
                    name: name.as_ref(),
                    value: *value,
                })
                .collect(),
            value: self.value,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Structured mode keeps every event exactly: decode(encode(event)) == event, and encoding
/// the decoded event again gives the same bytes.
pub fn check_structured_round_trip(event: &WireEvent<'_>) {
    let encoder = Encoder::new(Mode::Structured);
    let message = encoder
        .encode_wire(event)
        .expect("structured mode encodes every event");
    let back = decode(&message.as_ref()).unwrap_or_else(|e| {
        panic!("structured message of a decoded event does not decode: {e}\n{message:?}")
    });
    assert_eq!(&back, event, "structured round trip changed the event");
    let again = encoder.encode_wire(&back).expect("encodes");
    assert_eq!(again, message, "structured encoding is not deterministic");
}

/// Binary mode carries every attribute as a string and the data as bytes. Its message must
/// decode; the result carries the same attributes, extension values as their canonical
/// strings, and the same data bytes; and after one trip the event is a fixed point.
///
/// Two kinds of event have no faithful binary-mode message, and the encoder must refuse them:
/// bytes (`data_base64`) under a JSON content type, or under none, which means JSON (a
/// receiver would read the value as JSON); and a `datacontenttype` that starts with
/// `application/cloudevents` (as `content-type` it marks structured mode).
pub fn check_binary_round_trip(event: &WireEvent<'_>) {
    let encoder = Encoder::new(Mode::Binary).allow_tombstones(true);
    let unrepresentable = (matches!(event.data(), Some(Data::Binary(_)))
        && is_json_content_type(event.datacontenttype()))
        || event
            .datacontenttype()
            .is_some_and(is_cloudevents_media_type);
    let message = match encoder.encode_wire(event) {
        Ok(_) if unrepresentable => {
            panic!("binary mode accepted bytes under a JSON content type: {event:?}")
        }
        Ok(message) => message,
        Err(e) if unrepresentable => {
            assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
            return;
        }
        Err(e) => panic!("binary mode with tombstones allowed refused {event:?}: {e}"),
    };
    let back = decode(&message.as_ref()).unwrap_or_else(|e| {
        panic!("binary message of a decoded event does not decode: {e}\n{event:?}\n{message:?}")
    });
    assert_same_on_the_wire(event, &back);
    let again = encoder.encode_wire(&back).expect("encodes");
    assert_eq!(
        decode(&again.as_ref()).expect("decodes"),
        back,
        "binary round trip is not a fixed point"
    );
    assert_eq!(again, message, "binary message changed after a round trip");
}

/// A media type starting with `application/cloudevents`, any case (Kafka binding, 3.1).
fn is_cloudevents_media_type(content_type: &str) -> bool {
    content_type
        .trim_start()
        .get(..23)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("application/cloudevents"))
}

/// Absent, `*/json` or `*/*+json`, parameters aside (JSON event format, section 3.1).
fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let Some((_, subtype)) = media.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    subtype == "json" || (subtype.len() > 5 && subtype.ends_with("+json"))
}

/// The attributes compare exactly, extensions by canonical string, data by bytes.
fn assert_same_on_the_wire(sent: &WireEvent<'_>, got: &WireEvent<'_>) {
    assert_eq!(sent.id(), got.id());
    assert_eq!(sent.source(), got.source());
    assert_eq!(sent.ty(), got.ty());
    assert_eq!(sent.datacontenttype(), got.datacontenttype());
    assert_eq!(sent.dataschema(), got.dataschema());
    assert_eq!(sent.subject(), got.subject());
    assert_eq!(sent.time(), got.time());
    let strings = |e: &WireEvent<'_>| -> Vec<(String, String)> {
        e.extensions()
            .map(|(k, v)| (k.to_owned(), v.to_canonical_string().into_owned()))
            .collect()
    };
    assert_eq!(strings(sent), strings(got), "extensions differ");
    assert_eq!(
        sent.data().map(|d| d.as_bytes()),
        got.data().map(|d| d.as_bytes()),
        "data bytes differ"
    );
}
