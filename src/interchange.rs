//! The interchange JSON of Kafka messages, used by the fixtures and the `outbox-ce` CLI.
//!
//! One JSON object per message:
//! `{"key": K, "headers": [["content-type", V], ["ce_id", V], ...], "value": V}`, where `K`
//! and each `V` is a JSON string when the bytes are UTF-8, `{"base64": "..."}` when they are
//! not, and `null` when absent (a missing `key` or `value` reads as `null`). Header order and
//! duplicates are kept. `"topic"`,
//! `"partition"`, `"offset"` and `"timestamp"` are optional; other members are refused.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::kafka::{Header, Message};

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

/// Bytes in the interchange JSON: a string when they are UTF-8, `{"base64": "..."}` when not.
enum Bytes<'a> {
    Text(Cow<'a, str>),
    Base64(String),
}

impl<'a> Bytes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Bytes::Text(Cow::Borrowed(text)),
            Err(_) => Bytes::Base64(BASE64.encode(bytes)),
        }
    }

    fn into_vec(self, what: impl FnOnce() -> String) -> Result<Vec<u8>> {
        match self {
            Bytes::Text(text) => Ok(text.into_owned().into_bytes()),
            Bytes::Base64(base64) => BASE64.decode(base64).map_err(|e| {
                Error::new(ErrorKind::Invalid, format!("{}: not valid base64", what())).caused_by(e)
            }),
        }
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Bytes::Text(text) => s.serialize_str(text),
            Bytes::Base64(base64) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("base64", base64)?;
                map.end()
            }
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

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    key: Option<Bytes<'a>>,
    #[serde(borrow)]
    headers: Vec<(Cow<'a, str>, Option<Bytes<'a>>)>,
    #[serde(borrow)]
    value: Option<Bytes<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
}

impl Record {
    /// Reads one line of interchange JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Json`] when the line is not a message object (naming the member at
    /// fault), [`ErrorKind::Invalid`] for bad base64.
    pub fn from_json(line: &[u8]) -> Result<Self> {
        let line: Line<'_> = serde_json::from_slice(line).map_err(|e| {
            Error::new(
                ErrorKind::Json,
                "not a Kafka message in interchange JSON ({\"key\", \"headers\", \"value\"})",
            )
            .caused_by(e)
        })?;
        let headers = line
            .headers
            .into_iter()
            .map(|(name, value)| {
                let value = value
                    .map(|v| v.into_vec(|| format!("header `{name}`")))
                    .transpose()?;
                Ok(Header {
                    name: Cow::Owned(name.into_owned()),
                    value,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Record {
            message: Message {
                key: line.key.map(|k| k.into_vec(|| "key".into())).transpose()?,
                headers,
                value: line
                    .value
                    .map(|v| v.into_vec(|| "value".into()))
                    .transpose()?,
            },
            topic: line.topic,
            partition: line.partition,
            offset: line.offset,
            timestamp: line.timestamp,
        })
    }

    /// Writes the record as one line of interchange JSON (no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let m = &self.message;
        let line = Line {
            key: m.key.as_deref().map(Bytes::new),
            headers: m
                .headers
                .iter()
                .map(|h| {
                    (
                        Cow::Borrowed(h.name.as_ref()),
                        h.value.as_deref().map(Bytes::new),
                    )
                })
                .collect(),
            value: m.value.as_deref().map(Bytes::new),
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
        };
        // Strings and integers only: serialization cannot fail.
        serde_json::to_vec(&line).unwrap_or_default()
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
                    name: "n".into(),
                    value: None,
                },
            ],
            value: Some(b"{\"a\":1}".to_vec()),
        });
        let json = record.to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"key":{"base64":"/wA="},"headers":[["x","1"],["x","2"],["n",null]],"value":"{\"a\":1}"}"#
        );
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
        ] {
            let err = Record::from_json(line.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{line}: {err}");
        }
    }
}
