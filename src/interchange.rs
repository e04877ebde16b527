//! The interchange JSON of Kafka messages, used by the fixtures and the `outbox-ce` CLI.
//!
//! One JSON object per message:
//! `{"key": K, "headers": [["content-type", V], ["ce_id", V], ...], "value": V}`, where `K`
//! and each `V` is a JSON string when the bytes are UTF-8, `{"base64": "..."}` when they are
//! not, and `null` when absent (a missing `key` or `value` reads as `null`). A header name is
//! a string, or `{"base64": "..."}` when it is not UTF-8. Header order and duplicates are
//! kept. `"topic"`,
//! `"partition"`, `"offset"` and `"timestamp"` are optional; other members are refused.
//!
//! [`Record`] owns its bytes; [`RecordRef`] borrows every string that holds no escape from the
//! line it was read from, for decoding without copies. serde_json reads and writes the lines.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::error::{Error, ErrorKind, Result};
use crate::escape::{write_str, write_utf8};
use crate::format::Str;
use crate::kafka::{Header, HeaderRef, HeadersRef, Message, MessageRef};

/// A Kafka message with where it was read from, as one line of interchange JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The message.
    pub message: Message,
    /// The topic it was read from or is meant for.
    pub topic: Option<String>,
    /// The partition it was read from.
    pub partition: Option<i32>,
    /// Its offset in the partition.
    pub offset: Option<i64>,
    /// Its timestamp, in milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
}

impl From<Message> for Record {
    fn from(message: Message) -> Self {
        Record {
            message,
            ..Record::default()
        }
    }
}

/// A line of interchange JSON read in place: strings without escapes borrow from the line,
/// the others (and base64) are decoded into owned bytes.
///
/// ```
/// use std::borrow::Cow;
/// use outbox_cloudevents::interchange::RecordRef;
///
/// let line = br#"{"key":"k","headers":[["ce_id","1"]],"value":"{\"a\":1}","partition":3}"#;
/// let record = RecordRef::from_json(line)?;
/// assert!(matches!(record.key, Some(Cow::Borrowed(b"k"))));
/// assert_eq!(record.value.as_deref(), Some(&br#"{"a":1}"#[..]));
/// assert_eq!(record.partition, Some(3));
/// let message = record.message();
/// assert_eq!(message.header("ce_id"), Some(&b"1"[..]));
/// # Ok::<(), outbox_cloudevents::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record key.
    pub key: Option<Cow<'a, [u8]>>,
    /// The record headers, in order.
    pub headers: Vec<RecordHeader<'a>>,
    /// The record value.
    pub value: Option<Cow<'a, [u8]>>,
    /// The topic it was read from or is meant for.
    pub topic: Option<Cow<'a, str>>,
    /// The partition it was read from.
    pub partition: Option<i32>,
    /// Its offset in the partition.
    pub offset: Option<i64>,
    /// Its timestamp, in milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
}

/// A header of a [`RecordRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// The header name.
    pub name: Cow<'a, [u8]>,
    /// The value; `None` is a null header value.
    pub value: Option<Cow<'a, [u8]>>,
}

impl<'a> RecordRef<'a> {
    /// Reads one line of interchange JSON, borrowing from it.
    ///
    /// # Errors
    /// [`ErrorKind::Json`] when the line is not a message object (naming the member at
    /// fault), [`ErrorKind::Invalid`] for bad base64.
    pub fn from_json(line: &'a [u8]) -> Result<Self> {
        read_with_serde(line)
    }

    /// The message, as the decoder takes it. Copies no bytes; allocates one `Vec` of
    /// [`HeaderRef`]s.
    pub fn message(&self) -> MessageRef<'_> {
        MessageRef {
            key: self.key.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|h| HeaderRef {
                    name: &h.name,
                    value: h.value.as_deref(),
                })
                .collect::<HeadersRef<'_>>(),
            value: self.value.as_deref(),
        }
    }
}

impl From<RecordRef<'_>> for Record {
    fn from(record: RecordRef<'_>) -> Self {
        Record {
            message: Message {
                key: record.key.map(Cow::into_owned),
                headers: record
                    .headers
                    .into_iter()
                    .map(|h| Header {
                        name: Cow::Owned(h.name.into_owned()),
                        value: h.value.map(Cow::into_owned),
                    })
                    .collect(),
                value: record.value.map(Cow::into_owned),
            },
            topic: record.topic.map(Cow::into_owned),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
        }
    }
}

impl Record {
    /// Reads one line of interchange JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Json`] when the line is not a message object (naming the member at
    /// fault), [`ErrorKind::Invalid`] for bad base64.
    pub fn from_json(line: &[u8]) -> Result<Self> {
        RecordRef::from_json(line).map(Record::from)
    }

    /// Writes the record as one line of interchange JSON (no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let m = &self.message;
        let len = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or(0, Vec::len);
        let text = len(&m.key)
            + len(&m.value)
            + self.topic.as_ref().map_or(0, String::len)
            + m.headers
                .iter()
                .map(|h| h.name.len() + len(&h.value) + 8)
                .sum::<usize>();
        // Room for the member names and some escapes: one allocation for most lines.
        let mut out = Vec::with_capacity(text + text / 4 + 64);
        // Written by hand because it pays: 8,300 instructions a realistic binary-mode line
        // with the crate's escaper, where serde_json writing it took 12,100 (callgrind, the
        // CLI's encode). The UTF-8 check of each string is part of its escaping pass.
        out.extend_from_slice(b"{\"key\":");
        write_bytes(&mut out, m.key.as_deref());
        out.extend_from_slice(b",\"headers\":[");
        for (i, header) in m.headers.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"[" } else { b",[" });
            write_bytes(&mut out, Some(&header.name));
            out.push(b',');
            write_bytes(&mut out, header.value.as_deref());
            out.push(b']');
        }
        out.extend_from_slice(b"],\"value\":");
        write_bytes(&mut out, m.value.as_deref());
        if let Some(topic) = &self.topic {
            out.extend_from_slice(b",\"topic\":");
            write_str(&mut out, topic);
        }
        for (name, number) in [
            ("partition", self.partition.map(i64::from)),
            ("offset", self.offset),
            ("timestamp", self.timestamp),
        ] {
            if let Some(number) = number {
                out.extend_from_slice(format!(",\"{name}\":{number}").as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

/// Writes bytes as a JSON string when they are UTF-8, `{"base64":"..."}` when not, `null`
/// when absent.
fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    let Some(bytes) = bytes else {
        out.extend_from_slice(b"null");
        return;
    };
    if !write_utf8(out, bytes) {
        out.extend_from_slice(b"{\"base64\":\"");
        out.extend_from_slice(BASE64.encode(bytes).as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// The bytes of a string, borrowed or owned as the string is.
fn str_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

/// Reads a line with serde_json, which defines the language and words its errors.
fn read_with_serde(line: &[u8]) -> Result<RecordRef<'_>> {
    let error = |e| {
        Error::new(
            ErrorKind::Json,
            "not a Kafka message in interchange JSON ({\"key\", \"headers\", \"value\"})",
        )
        .reading_json(line)
        .caused_by(e)
    };
    // A line that is UTF-8 as a whole is read as a `str`, so serde_json checks no string of
    // it again; other bytes are read as bytes, so that its error points at the broken string.
    let line: Line<'_> = match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str(text).map_err(error)?,
        Err(_) => serde_json::from_slice(line).map_err(error)?,
    };
    let mut headers = Vec::with_capacity(line.headers.0.len());
    for (name, value) in line.headers.0 {
        let name = name.into_bytes(|| "header name".to_owned())?;
        let value = value
            .map(|v| v.into_bytes(|| format!("header `{}`", String::from_utf8_lossy(&name))))
            .transpose()?;
        headers.push(RecordHeader { name, value });
    }
    Ok(RecordRef {
        key: line
            .key
            .map(|k| k.into_bytes(|| "key".into()))
            .transpose()?,
        headers,
        value: line
            .value
            .map(|v| v.into_bytes(|| "value".into()))
            .transpose()?,
        topic: line.topic.map(|Str(topic)| topic),
        partition: line.partition,
        offset: line.offset,
        timestamp: line.timestamp,
    })
}

/// The interchange line, as serde_json reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    key: Option<Bytes<'a>>,
    #[serde(borrow)]
    headers: Headers<'a>,
    #[serde(borrow)]
    value: Option<Bytes<'a>>,
    #[serde(default, borrow)]
    topic: Option<Str<'a>>,
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// The `headers` array: a `Vec` sized for the headers of a binary-mode event at once, not
/// grown from empty as serde's own `Vec` is (about 900 of 19,000 instructions a line).
struct Headers<'a>(Vec<(Bytes<'a>, Option<Bytes<'a>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Headers<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Headers<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Headers<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut headers = Vec::with_capacity(16);
                while let Some(header) = seq.next_element()? {
                    headers.push(header);
                }
                Ok(Headers(headers))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Bytes in the interchange JSON: a string when they are UTF-8, `{"base64": "..."}` when not.
enum Bytes<'a> {
    Text(Cow<'a, str>),
    Base64(String),
}

impl<'a> Bytes<'a> {
    fn into_bytes(self, what: impl FnOnce() -> String) -> Result<Cow<'a, [u8]>> {
        match self {
            Bytes::Text(text) => Ok(str_bytes(text)),
            Bytes::Base64(base64) => BASE64.decode(base64).map(Cow::Owned).map_err(|e| {
                Error::new(ErrorKind::Invalid, format!("{}: not valid base64", what())).caused_by(e)
            }),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Bytes<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Bytes<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a string or {"base64": "..."}"#)
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(Bytes::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Bytes::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
                Ok(Bytes::Text(Cow::Owned(v)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut base64 = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key != "base64" || base64.is_some() {
                        return Err(de::Error::custom(
                            r#"expected exactly one member, "base64""#,
                        ));
                    }
                    base64 = Some(map.next_value::<String>()?);
                }
                base64
                    .map(Bytes::Base64)
                    .ok_or_else(|| de::Error::custom(r#"expected a "base64" member"#))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_duplicates_and_bytes() {
        let record = Record::from(Message {
            key: Some(vec![0xff, 0x00]),
            headers: vec![
                Header::new("x", "1"),
                Header::new("x", "2"),
                Header {
                    name: Cow::Borrowed(b"n"),
                    value: None,
                },
                Header {
                    name: Cow::Borrowed(&[0xff]),
                    value: Some(b"v".to_vec()),
                },
            ],
            value: Some(b"{\"a\":1}".to_vec()),
        });
        let json = record.to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"key":{"base64":"/wA="},"headers":[["x","1"],["x","2"],["n",null],[{"base64":"/w=="},"v"]],"value":"{\"a\":1}"}"#
        );
        assert_eq!(Record::from_json(&json).unwrap(), record);
    }

    #[test]
    fn where_it_was_read_is_written_after_the_message() {
        let record = Record {
            message: Message {
                key: None,
                headers: vec![Header::new("ce_subject", "a \"quoted\"\n\u{1}line é")],
                value: None,
            },
            topic: Some("orders \"eu\"".into()),
            partition: Some(-1),
            offset: Some(i64::MAX),
            timestamp: Some(1_714_550_400_000),
        };
        let json = record.to_json();
        let want = serde_json::json!({
            "key": null,
            "headers": [["ce_subject", "a \"quoted\"\n\u{1}line é"]],
            "value": null,
            "topic": "orders \"eu\"",
            "partition": -1,
            "offset": i64::MAX,
            "timestamp": 1_714_550_400_000_i64,
        });
        // serde_json keeps member order here (`preserve_order`): the same bytes.
        assert_eq!(String::from_utf8(json.clone()).unwrap(), want.to_string());
        assert_eq!(Record::from_json(&json).unwrap(), record);
    }

    #[test]
    fn bad_lines_are_errors() {
        for (line, needle) in [
            (
                r#"{"key":null,"headers":[],"value":{"base64":"!!"}}"#,
                "value: not valid base64",
            ),
            (
                r#"{"key":null,"headers":[["h",{"base64":"%"}]],"value":null}"#,
                "header `h`",
            ),
            (
                r#"{"key":null,"headers":[],"value":null,"extra":1}"#,
                "unknown field",
            ),
            (
                r#"{"key":{"b64":"AA=="},"headers":[],"value":null}"#,
                "base64",
            ),
            (r#"{"key":1,"headers":[],"value":null}"#, "a string or"),
            (r#"{"key":null,"value":null}"#, "missing field `headers`"),
            (
                r#"{"key":null,"headers":[],"key":"k"}"#,
                "duplicate field `key`",
            ),
            (
                r#"{"headers":[],"topic":"t","topic":null}"#,
                "duplicate field `topic`",
            ),
            (r#"{"headers":[["h"]]}"#, "invalid length 1"),
            (r#"{"headers":[["h","v","w"]]}"#, "trailing characters"),
            (r#"{"headers":[],"partition":2147483648}"#, "i32"),
            (r#"{"headers":[],"offset":1.5}"#, "floating point"),
            (r#"{"headers":[],"offset":-0}"#, "floating point"),
            (r#"{"headers":[],"offset":01}"#, "invalid number"),
            (r#"{"headers":[]} x"#, "trailing characters"),
            (r#"{"headers":[],"value":"\ud800"}"#, "hex escape"),
            (r#"{"headers":[],"value":"\udc00"}"#, "surrogate"),
            (r#"{"headers":[],"value":"\x"}"#, "invalid escape"),
            ("{\"headers\":[],\"value\":\"a\tb\"}", "control character"),
            (
                r#"{"headers":[["h",{"base64":"AA==","x":1}]]}"#,
                "exactly one",
            ),
            (r#"{"headers":[["h",{}]]}"#, r#"a "base64" member"#),
            (r#"{"headers":[],}"#, "trailing comma"),
        ] {
            let err = Record::from_json(line.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{line}: {err}");
        }
        let err = Record::from_json(b"{\"headers\":[],\"value\":\"\xff\"}").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Json);
        let err = Record::from_json(br#"{"headers":[],"key":{"base64":"!"}}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(
            err.to_string().starts_with("key: not valid base64"),
            "{err}"
        );
    }

    #[test]
    fn borrowed_record_borrows_plain_strings_and_owns_the_rest() {
        let line = br#"{"key":"k","headers":[["ce_id","1"],["h\u0041","a\"b"],["n",null],["b",{"base64":"/wA="}]],"value":"{\"a\":1}","topic":"orders"}"#;
        let record = RecordRef::from_json(line).unwrap();
        assert!(matches!(record.key, Some(Cow::Borrowed(b"k"))));
        assert!(matches!(record.headers[0].name, Cow::Borrowed(b"ce_id")));
        assert!(matches!(record.headers[0].value, Some(Cow::Borrowed(b"1"))));
        assert!(matches!(&record.headers[1].name, Cow::Owned(n) if n == b"hA"));
        assert_eq!(record.headers[1].value.as_deref(), Some(&b"a\"b"[..]));
        assert_eq!(record.headers[2].value, None);
        assert_eq!(record.headers[3].value.as_deref(), Some(&[0xff, 0][..]));
        assert_eq!(record.value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert!(matches!(record.topic, Some(Cow::Borrowed("orders"))));

        let message = record.message();
        assert_eq!(message.key, Some(&b"k"[..]));
        assert_eq!(message.headers.len(), 4);
        assert_eq!(message.headers.get(1).unwrap().name, b"hA");
        assert_eq!(message.headers.get(2).unwrap().value, None);
        assert_eq!(message.value, Some(&br#"{"a":1}"#[..]));

        let owned = Record::from_json(line).unwrap();
        assert_eq!(Record::from(record.clone()), owned);
        assert_eq!(owned.message.as_ref(), message);
        assert_eq!(RecordRef::from_json(&owned.to_json()).unwrap(), record);
    }

    #[test]
    fn optional_members_read_in_any_order_and_write_in_one() {
        let line = br#" { "timestamp" : -1700000000000 , "offset":0, "partition":-7,
            "topic":null, "value":"v", "headers":[ [ "h" , "x" ] ] , "key":null }
        "#;
        let record = Record::from_json(line).unwrap();
        assert_eq!(record.message.key, None);
        assert_eq!(record.message.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(record.topic, None);
        assert_eq!(record.partition, Some(-7));
        assert_eq!(record.offset, Some(0));
        assert_eq!(record.timestamp, Some(-1_700_000_000_000));
        assert_eq!(
            String::from_utf8(record.to_json()).unwrap(),
            r#"{"key":null,"headers":[["h","x"]],"value":"v","partition":-7,"offset":0,"timestamp":-1700000000000}"#
        );

        let none = Record::from_json(br#"{"headers":[]}"#).unwrap();
        assert_eq!(none, Record::default());
        assert_eq!(
            String::from_utf8(none.to_json()).unwrap(),
            r#"{"key":null,"headers":[],"value":null}"#
        );

        // Integers at the edge of `i64` read.
        let big = Record::from_json(br#"{"headers":[],"offset":-9223372036854775808}"#).unwrap();
        assert_eq!(big.offset, Some(i64::MIN));
        // And so does the array form serde accepts for a struct.
        let seq = Record::from_json(br#"[null,[["h","v"]],"v"]"#).unwrap();
        assert_eq!(seq.message.header("h"), Some(&b"v"[..]));
    }

    #[test]
    fn writing_matches_serde_json() {
        let strings = [
            "",
            "plain",
            "\"q\" \\ / \u{8}\u{c}\n\r\t \u{0}\u{1f}\u{7f}",
            "zoë ✓ 😀",
        ];
        let binary: &[u8] = &[0xff, 0xfe, b'"', 0];
        let json_bytes = |bytes: Option<&[u8]>| match bytes.map(std::str::from_utf8) {
            None => serde_json::Value::Null,
            Some(Ok(text)) => text.into(),
            Some(Err(_)) => serde_json::json!({ "base64": BASE64.encode(bytes.unwrap()) }),
        };
        for (i, text) in strings.iter().enumerate() {
            let mut headers = vec![
                Header::new("ce_id", *text),
                Header::new("b", binary),
                Header {
                    name: Cow::Borrowed(b"n"),
                    value: None,
                },
            ];
            headers.push(Header::new(Cow::Owned((*text).to_owned()), "v"));
            let record = Record {
                message: Message {
                    key: (i % 2 == 0).then(|| binary.to_vec()),
                    headers,
                    value: Some(text.as_bytes().to_vec()),
                },
                topic: (i % 2 == 1).then(|| (*text).to_owned()),
                partition: (i > 1).then_some(i32::MIN),
                offset: (i > 0).then_some(i64::MAX),
                timestamp: (i != 2).then_some(i as i64 - 1),
            };
            let m = &record.message;
            let mut want = serde_json::Map::new();
            want.insert("key".into(), json_bytes(m.key.as_deref()));
            let headers = m.headers.iter().map(|h| {
                serde_json::json!([
                    json_bytes(Some(h.name.as_ref())),
                    json_bytes(h.value.as_deref())
                ])
            });
            want.insert("headers".into(), headers.collect());
            want.insert("value".into(), json_bytes(m.value.as_deref()));
            if let Some(topic) = &record.topic {
                want.insert("topic".into(), topic.as_str().into());
            }
            if let Some(partition) = record.partition {
                want.insert("partition".into(), partition.into());
            }
            if let Some(offset) = record.offset {
                want.insert("offset".into(), offset.into());
            }
            if let Some(timestamp) = record.timestamp {
                want.insert("timestamp".into(), timestamp.into());
            }
            let json = record.to_json();
            assert_eq!(
                String::from_utf8(json.clone()).unwrap(),
                serde_json::to_string(&want).unwrap()
            );
            assert_eq!(Record::from_json(&json).unwrap(), record);
        }
    }
}
