//! One input message -> one output message: the bridge's conversion, without Kafka.

use std::fmt;
use std::str::FromStr;

use outbox_cloudevents::{
    Decoder, Encoder, ErrorKind, Header, Message, MessageRef, Mode, OutboxEvent, Payload, Profile,
    WireEvent,
};

use crate::sink::{MessageEncoder, OutputMode};

/// What the bridge reads from its input topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// A CloudEvent in either content mode when the message is one (a `content-type:
    /// application/cloudevents...` header or `ce_` headers), else python-outbox-core's
    /// publisher message (the value is the `to_message()` object).
    #[default]
    Auto,
    /// CloudEvents only, in either content mode.
    CloudEvents,
    /// python-outbox-core's publisher messages only.
    OutboxJson,
}

impl FromStr for InputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(InputFormat::Auto),
            "cloudevents" => Ok(InputFormat::CloudEvents),
            "outbox-json" => Ok(InputFormat::OutboxJson),
            _ => Err(format!(
                "`{s}` is not an input format: use auto, cloudevents or outbox-json"
            )),
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputFormat::Auto => "auto",
            InputFormat::CloudEvents => "cloudevents",
            InputFormat::OutboxJson => "outbox-json",
        })
    }
}

/// Converts input messages to output messages.
///
/// - A python-outbox-core message (value = the `to_message()` object) is read as an outbox
///   event and written in the output mode and profile.
/// - A CloudEvent that is an outbox event in one of the two profiles (canonical first, then
///   python-outbox-core) is written in the output mode; when its profile is the output
///   profile only the content mode changes (every attribute as it came), else it is mapped
///   to the output profile. A CloudEvent that is not an outbox event in either profile keeps
///   its attributes and changes only its content mode; it cannot become an `outbox-json`
///   message.
/// - The key is the input's key; when the input has none, the event's partition key.
/// - Headers that are not CloudEvents attributes (anything but `content-type` and `ce_*`)
///   follow the output's own headers, in their order.
#[derive(Debug, Clone)]
pub struct Converter {
    input: InputFormat,
    mode: OutputMode,
    profile: Profile,
    /// Reads CloudEvents in either mode, with every leniency: the SDKs' messages as they
    /// come.
    decoder: Decoder,
    events: MessageEncoder,
    wire: Encoder,
}

impl Converter {
    /// A converter reading `input` and writing `mode` in `profile`.
    pub fn new(input: InputFormat, mode: OutputMode, profile: Profile) -> Self {
        let wire_mode = match mode {
            OutputMode::Structured => Mode::Structured,
            OutputMode::Binary | OutputMode::OutboxJson => Mode::Binary,
        };
        Converter {
            input,
            mode,
            decoder: Decoder::new(),
            events: MessageEncoder::new(mode, profile.clone()),
            wire: Encoder::new(wire_mode).profile(profile.clone()),
            profile,
        }
    }

    /// The output message for `message`.
    ///
    /// # Errors
    /// The library's error naming what is wrong: a malformed CloudEvent, a value that is not
    /// a `to_message()` object, an event the output mode cannot carry.
    pub fn convert(&self, message: &MessageRef<'_>) -> Result<Message, ConvertError> {
        let cloudevent = match self.input {
            InputFormat::CloudEvents => true,
            InputFormat::OutboxJson => false,
            InputFormat::Auto => match self.decoder.detect_mode(message) {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::NotACloudEvent => false,
                Err(e) => return Err(e.into()),
            },
        };
        let mut out = if cloudevent {
            self.convert_cloudevent(message)?
        } else {
            let value = message.value.ok_or_else(|| {
                ConvertError::new(
                    "message value: none, where a python-outbox-core message carries its to_message() object",
                )
            })?;
            let event = OutboxEvent::<Payload>::from_message_json(value).map_err(|e| {
                let what = if self.input == InputFormat::Auto {
                    "neither a CloudEvent nor a python-outbox-core message: "
                } else {
                    ""
                };
                ConvertError::new(format!("{what}{e}"))
            })?;
            // Only `outbox-json` output writes the time as the input stored it.
            let stored = (self.mode == OutputMode::OutboxJson)
                .then(|| crate::sink::occurred_at_member(value))
                .flatten();
            self.events.encode_stored(&event, stored.as_deref())?
        };
        if let Some(key) = message.key {
            out.key = Some(key.to_vec());
        }
        for header in message.headers.iter() {
            if !is_attribute_header(header.name) {
                if header.name_str().is_none() {
                    // Kafka clients send header names as strings: this one could not travel.
                    return Err(ConvertError::new(format!(
                        "header name {:?} is not UTF-8, so it cannot travel with the message",
                        String::from_utf8_lossy(header.name)
                    )));
                }
                out.headers.push(Header {
                    name: header.name.to_vec().into(),
                    value: header.value.map(<[u8]>::to_vec),
                });
            }
        }
        Ok(out)
    }

    fn convert_cloudevent(&self, message: &MessageRef<'_>) -> outbox_cloudevents::Result<Message> {
        let wire = self.decoder.decode_wire(message)?;
        let canonical = OutboxEvent::<Payload>::from_wire(wire.clone(), &Profile::Canonical);
        let (event, python) = match canonical {
            Ok(event) => (Ok(event), false),
            Err(canonical_error) => {
                match OutboxEvent::<Payload>::from_wire(
                    wire.clone(),
                    &Profile::python_outbox_core(),
                ) {
                    Ok(event) => (Ok(event), true),
                    Err(_) => (Err(canonical_error), false),
                }
            }
        };
        let same_profile = python == matches!(self.profile, Profile::PythonOutboxCore { .. });
        match (self.mode, event) {
            (OutputMode::OutboxJson, event) => self.events.encode(&event?),
            (_, Ok(event)) if !same_profile => self.events.encode(&event),
            (_, Ok(event)) => self.keyed(&wire, event.partition_key()),
            (_, Err(_)) => self.wire.encode_wire(&wire),
        }
    }

    /// `wire` in the output mode as it is, keyed by `key`.
    fn keyed(&self, wire: &WireEvent<'_>, key: &str) -> outbox_cloudevents::Result<Message> {
        let mut message = self.wire.encode_wire(wire)?;
        message.key = Some(key.as_bytes().to_vec());
        Ok(message)
    }
}

/// Why a message cannot be bridged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(String);

impl ConvertError {
    fn new(message: impl Into<String>) -> Self {
        ConvertError(message.into())
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvertError {}

impl From<outbox_cloudevents::Error> for ConvertError {
    fn from(e: outbox_cloudevents::Error) -> Self {
        ConvertError(e.to_string())
    }
}

/// `content-type` (any case) and `ce_*` headers: what the output writes anew.
fn is_attribute_header(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-type") || name.starts_with(b"ce_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use outbox_cloudevents::{HeaderRef, decode};

    const TO_MESSAGE: &str = r#"{"event_id":"3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01","event_type":"com.gridflow.invite.created","aggregate_id":"invite-42","occurred_at":"2024-05-06T07:08:09.123456+00:00","source":"user-service","data_version":"1.0","correlation_id":null,"causation_id":null,"email":"ana@example.com"}"#;

    fn publisher_message(key: Option<&'static [u8]>) -> MessageRef<'static> {
        MessageRef {
            key,
            headers: vec![HeaderRef {
                name: b"traceparent",
                value: Some(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            }]
            .into(),
            value: Some(TO_MESSAGE.as_bytes()),
        }
    }

    #[test]
    fn publisher_message_to_each_mode_and_back() {
        let input = publisher_message(Some(b"tenant-1"));
        let binary = Converter::new(InputFormat::Auto, OutputMode::Binary, Profile::Canonical)
            .convert(&input)
            .unwrap();
        assert_eq!(binary.key.as_deref(), Some(&b"tenant-1"[..]));
        assert_eq!(
            binary.header("ce_id"),
            Some(&b"3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01"[..])
        );
        // The trace header travels, after the output's own.
        assert_eq!(
            binary.headers.last().and_then(|h| h.name_str()),
            Some("traceparent")
        );
        // Binary -> structured keeps every attribute.
        let structured = Converter::new(
            InputFormat::Auto,
            OutputMode::Structured,
            Profile::Canonical,
        )
        .convert(&binary.as_ref())
        .unwrap();
        assert_eq!(
            decode(&structured.as_ref()).unwrap(),
            decode(&binary.as_ref()).unwrap()
        );
        // And back to the publisher's message, byte for byte.
        let back = Converter::new(
            InputFormat::Auto,
            OutputMode::OutboxJson,
            Profile::Canonical,
        )
        .convert(&structured.as_ref())
        .unwrap();
        assert_eq!(back.value.as_deref(), Some(TO_MESSAGE.as_bytes()));
        assert_eq!(back.key.as_deref(), Some(&b"tenant-1"[..]));
        assert_eq!(back.headers.len(), 1, "{:?}", back.headers);
    }

    /// A publisher message with a naive `occurred_at` came out of an `outbox-json` bridge with
    /// `+00:00` added; the time is now sent as the input had it, as python-outbox-core's
    /// publisher would send it again. The CloudEvents modes still write it in UTC.
    #[test]
    fn outbox_json_to_outbox_json_keeps_a_naive_time() {
        for (time, cloudevent) in [
            ("2024-05-06T07:08:09", "2024-05-06T07:08:09Z"),
            ("2024-05-06T09:08:09.5+02:00", "2024-05-06T07:08:09.500Z"),
        ] {
            let text = TO_MESSAGE.replace("2024-05-06T07:08:09.123456+00:00", time);
            let input = MessageRef {
                key: None,
                headers: Vec::new().into(),
                value: Some(text.as_bytes()),
            };
            let out = Converter::new(
                InputFormat::Auto,
                OutputMode::OutboxJson,
                Profile::Canonical,
            )
            .convert(&input)
            .unwrap();
            let python = time.replace(".5+", ".500000+");
            assert_eq!(
                out.value.as_deref(),
                Some(text.replace(time, &python).as_bytes())
            );
            let binary = Converter::new(InputFormat::Auto, OutputMode::Binary, Profile::Canonical)
                .convert(&input)
                .unwrap();
            assert_eq!(binary.header("ce_time"), Some(cloudevent.as_bytes()));
        }
    }

    #[test]
    fn without_a_key_the_partition_key() {
        let out = Converter::new(InputFormat::Auto, OutputMode::Binary, Profile::Canonical)
            .convert(&publisher_message(None))
            .unwrap();
        assert_eq!(out.key.as_deref(), Some(&b"invite-42"[..]));
    }

    #[test]
    fn profile_changes_through_the_outbox_event() {
        let input = publisher_message(None);
        let python = Converter::new(
            InputFormat::Auto,
            OutputMode::Structured,
            Profile::python_outbox_core(),
        )
        .convert(&input)
        .unwrap();
        let canonical = Converter::new(InputFormat::Auto, OutputMode::Binary, Profile::Canonical)
            .convert(&python.as_ref())
            .unwrap();
        assert_eq!(canonical.header("ce_aggregateid"), Some(&b"invite-42"[..]));
        let event =
            OutboxEvent::<Payload>::from_message(&canonical.as_ref(), &Profile::Canonical).unwrap();
        assert_eq!(event.to_message_json().unwrap(), TO_MESSAGE.as_bytes());
    }

    #[test]
    fn forced_formats_and_bad_messages_are_errors() {
        let input = publisher_message(None);
        let e = Converter::new(
            InputFormat::CloudEvents,
            OutputMode::Binary,
            Profile::Canonical,
        )
        .convert(&input)
        .unwrap_err();
        assert!(e.to_string().contains("not a CloudEvent"), "{e}");
        let garbage = MessageRef {
            key: None,
            headers: vec![].into(),
            value: Some(b"{not json"),
        };
        assert!(
            Converter::new(InputFormat::Auto, OutputMode::Binary, Profile::Canonical)
                .convert(&garbage)
                .is_err()
        );
        let empty = MessageRef::default();
        let e = Converter::new(
            InputFormat::OutboxJson,
            OutputMode::Binary,
            Profile::Canonical,
        )
        .convert(&empty)
        .unwrap_err();
        assert!(e.to_string().contains("message value: none"), "{e}");
    }
}
