//! The Kafka binding: the README's round-trip laws 3, 4 and 6 as property tests, what real
//! producers send, and one test per malformed message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::borrow::Cow;

use common::*;
use outbox_cloudevents::{
    Data, Encoder, ErrorKind, ExtensionValue, Header, HeaderRef, Location, Message, Mode,
    OutboxEvent, Payload, Profile, WireEvent, decode, kafka,
};
use proptest::prelude::*;

/// What binary mode can carry of an event: every extension as a string, non-JSON data as
/// bytes (the binding has no way to tell text from bytes, or an integer from a string).
fn as_binary_mode_carries(event: &WireEvent<'_>) -> String {
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&event.to_json()).unwrap();
    for (name, value) in event.extensions() {
        json.insert(
            name.to_owned(),
            value.to_canonical_string().into_owned().into(),
        );
    }
    if let Some(Data::Text(text)) = event.data() {
        use base64::Engine as _;
        json.remove("data");
        json.insert(
            "data_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(text.as_bytes())
                .into(),
        );
    }
    serde_json::to_string(&json).unwrap()
}

/// Binary mode writes every extension as a string; the outbox extensions are strings
/// already, extra ones of other types come back as strings.
fn strings_only(event: &OutboxEvent<Payload>) -> OutboxEvent<Payload> {
    event
        .extensions()
        .iter()
        .fold(event.clone(), |e, (name, value)| {
            let text = ExtensionValue::String(value.to_canonical_string().into_owned().into());
            e.with_extension(name.as_str(), text).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Law 3 for outbox events, with law 6: decode(encode(x)) == x in both modes, the payload
    /// byte for byte.
    #[test]
    fn law3_outbox_events(event in outbox_event_with_content_type()) {
        for mode in [Mode::Binary, Mode::Structured] {
            for profile in [Profile::Canonical, Profile::python_outbox_core()] {
                let encoded = Encoder::new(mode).profile(profile.clone()).encode(&event);
                // Every event the encoder accepts decodes to itself; the one it refuses is a
                // JSON payload under a type that is not JSON, in binary mode (the
                // python-outbox-core profile always sends `application/json`).
                let json_type = event.content_type().is_none_or(|ct| ct.contains("json"));
                if mode == Mode::Binary && profile == Profile::Canonical && !json_type {
                    let error = encoded.unwrap_err();
                    prop_assert_eq!(error.kind(), ErrorKind::Invalid);
                    prop_assert_eq!(error.name(), Some("datacontenttype"));
                    continue;
                }
                let message = encoded.unwrap();
                let back = OutboxEvent::<Payload>::from_message(&message.as_ref(), &profile).unwrap();
                let expected = match mode {
                    Mode::Binary => strings_only(&event),
                    Mode::Structured => event.clone(),
                };
                prop_assert_eq!(&back, &expected);
                prop_assert_eq!(back.payload().as_json(), event.payload().as_json());
                prop_assert_eq!(message.key.as_deref(), Some(event.partition_key().as_bytes()));
            }
        }
    }

    /// Law 6 on its own: the value bytes of a binary message are the payload's bytes.
    #[test]
    fn law6_payload_bytes_are_the_value(event in outbox_event()) {
        let message = Encoder::new(Mode::Binary).encode(&event).unwrap();
        prop_assert_eq!(message.value.as_deref(), event.payload().as_json().map(str::as_bytes));
    }

    /// Law 3 for CloudEvents: exact in structured mode; in binary mode up to what the binding
    /// can carry.
    #[test]
    fn law3_cloudevents(json in cloudevent_json()) {
        let event = wire(&json);
        let encoder = Encoder::new(Mode::Structured);
        let message = encoder.encode_wire(&event).unwrap();
        prop_assert_eq!(&decode(&message.as_ref()).unwrap(), &event);

        let message = Encoder::new(Mode::Binary).allow_tombstones(true).encode_wire(&event).unwrap();
        let back = decode(&message.as_ref()).unwrap();
        prop_assert_eq!(as_binary_mode_carries(&back), as_binary_mode_carries(&event));

        // And through cloudevents::Event.
        let sdk = cloudevents::Event::try_from(event.clone()).unwrap();
        let message = encoder.encode_cloudevent(&sdk).unwrap();
        let back = cloudevents::Event::try_from(decode(&message.as_ref()).unwrap()).unwrap();
        prop_assert_eq!(back, sdk);
    }

    /// Law 4: decoding invents nothing; the key and foreign headers stay on the message.
    #[test]
    fn law4_nothing_invented(json in cloudevent_json(), key in "[a-z]{1,8}") {
        let event = wire(&json);
        // Drop `partitionkey` by going through a message without it.
        let mut message = Encoder::new(Mode::Binary).allow_tombstones(true).encode_wire(&event).unwrap();
        message.headers.retain(|h| *h.name != *b"ce_partitionkey");
        message.headers.push(Header::new("traceparent", "00-abc-def-01"));
        message.headers.push(Header { name: Cow::Borrowed(b"x-null"), value: None });
        message.key = Some(key.into_bytes());
        let back = decode(&message.as_ref()).unwrap();
        prop_assert!(back.extension("partitionkey").is_none());
        prop_assert!(back.extension("traceparent").is_none());
        prop_assert!(back.extension("key").is_none());
        prop_assert_eq!(back.extensions().len() + 1, event.extensions().len());
    }
}

fn message(headers: &[(&str, Option<&str>)], value: Option<&str>) -> Message {
    Message {
        key: None,
        headers: headers
            .iter()
            .map(|(n, v)| Header {
                name: Cow::Owned(n.as_bytes().to_vec()),
                value: v.map(|v| v.as_bytes().to_vec()),
            })
            .collect(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

const BINARY: [(&str, Option<&str>); 6] = [
    ("content-type", Some("application/json")),
    ("ce_specversion", Some("1.0")),
    ("ce_id", Some("evt-1")),
    ("ce_source", Some("user-service")),
    ("ce_type", Some("com.example.thing")),
    ("ce_time", Some("2024-05-01T10:00:00Z")),
];

fn binary_with(change: &str, value: Option<&str>) -> Message {
    let mut headers: Vec<(&str, Option<&str>)> = BINARY
        .iter()
        .copied()
        .filter(|(n, _)| *n != change)
        .collect();
    if value != Some("<absent>") {
        headers.push((change, value));
    }
    message(&headers, Some(r#"{"a":1}"#))
}

fn decoded(message: &Message) -> WireEvent<'static> {
    decode(&message.as_ref()).unwrap().into_owned()
}

fn decode_err(message: &Message) -> outbox_cloudevents::Error {
    decode(&message.as_ref()).unwrap_err()
}

fn structured(value: Option<&str>) -> Message {
    message(
        &[(
            "content-type",
            Some("application/cloudevents+json; charset=UTF-8"),
        )],
        value,
    )
}

#[test]
fn good_binary_message_decodes() {
    let event = decoded(&binary_with("x-other", Some("1")));
    assert_eq!(event.id(), "evt-1");
    assert_eq!(event.datacontenttype(), Some("application/json"));
    assert_eq!(event.data().map(Data::as_bytes), Some(&br#"{"a":1}"#[..]));
    assert_eq!(event.extensions().len(), 0);
}

// ---- What real producers send ----

#[test]
fn time_in_every_form_producers_write() {
    let expected = decode(&binary_with("ce_time", Some("2024-05-01T10:00:00.5Z")).as_ref())
        .unwrap()
        .time()
        .copied();
    for time in [
        "2024-05-01T10:00:00.5+00:00",
        "2024-05-01T10:00:00.500Z",
        "2024-05-01T10:00:00.500000Z",
        "2024-05-01T10:00:00.5000000Z",
        "2024-05-01T10:00:00.500000000000Z",
        "2024-05-01T12:00:00.5+02:00",
        "2024-05-01T05:30:00.5-04:30",
        "2024-05-01t10:00:00.5z",
    ] {
        let event = decoded(&binary_with("ce_time", Some(time)));
        assert_eq!(event.time().copied(), expected, "{time}");
    }
}

#[test]
fn time_is_written_the_same_in_both_modes() {
    let event = decoded(&binary_with(
        "ce_time",
        Some("2024-05-01T12:00:00.120+02:00"),
    ));
    let binary = Encoder::new(Mode::Binary).encode_wire(&event).unwrap();
    let structured = Encoder::new(Mode::Structured).encode_wire(&event).unwrap();
    assert_eq!(
        binary.header("ce_time"),
        Some(&b"2024-05-01T10:00:00.120Z"[..])
    );
    let json = String::from_utf8(structured.value.unwrap()).unwrap();
    assert!(
        json.contains(r#""time":"2024-05-01T10:00:00.120Z""#),
        "{json}"
    );
}

#[test]
fn header_order_does_not_matter() {
    let expected = decoded(&binary_with("ce_subject", Some("s")));
    let mut reversed = binary_with("ce_subject", Some("s"));
    reversed.headers.reverse();
    assert_eq!(decode(&reversed.as_ref()).unwrap(), expected);
}

#[test]
fn javascript_sdk_extras_are_accepted() {
    // JavaScript SDK 10: `ce_datacontenttype` beside `content-type`, null optional headers.
    let mut msg = binary_with("ce_datacontenttype", Some("application/json"));
    msg.headers.push(Header {
        name: Cow::Borrowed(b"ce_subject"),
        value: None,
    });
    msg.headers.push(Header {
        name: Cow::Borrowed(b"ce_dataschema"),
        value: None,
    });
    let event = decode(&msg.as_ref()).unwrap();
    assert_eq!(event.datacontenttype(), Some("application/json"));
    assert_eq!(event.subject(), None);
    assert_eq!(event.dataschema(), None);

    let msg = binary_with("ce_datacontenttype", Some("text/plain"));
    let err = decode_err(&msg);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("ce_datacontenttype"))
    );
}

#[test]
fn content_type_matches_in_any_case_with_parameters() {
    let json = r#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#;
    for ct in [
        "application/cloudevents+json",
        "Application/CloudEvents+JSON; charset=utf-8",
        "application/cloudevents+json;charset=UTF-8",
    ] {
        let msg = message(&[("Content-Type", Some(ct))], Some(json));
        assert_eq!(
            kafka::detect_mode(&msg.as_ref()).unwrap(),
            Mode::Structured,
            "{ct}"
        );
        assert_eq!(decode(&msg.as_ref()).unwrap().id(), "1");
    }
}

#[test]
fn structured_mode_with_ce_headers_reads_the_value() {
    let json = r#"{"specversion":"1.0","id":"from-value","source":"s","type":"t"}"#;
    let msg = message(
        &[
            ("content-type", Some("application/cloudevents+json")),
            ("ce_id", Some("from-header")),
        ],
        Some(json),
    );
    assert_eq!(decode(&msg.as_ref()).unwrap().id(), "from-value");
}

#[test]
fn empty_value_under_json_is_no_data() {
    // The Python SDK writes an empty value for an event without data.
    let mut msg = binary_with("x", None);
    msg.value = Some(Vec::new());
    assert_eq!(decode(&msg.as_ref()).unwrap().data(), None);
}

#[test]
fn structured_message_layout() {
    let event = wire(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","partitionkey":"k","b":true,"a":7,"data":{"z":1,"y":[2]}}"#,
    );
    let msg = Encoder::new(Mode::Structured).encode_wire(&event).unwrap();
    assert_eq!(msg.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(
        msg.headers,
        [Header::new(
            "content-type",
            "application/cloudevents+json; charset=UTF-8"
        )]
    );
    assert_eq!(
        String::from_utf8(msg.value.unwrap()).unwrap(),
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","a":7,"b":true,"partitionkey":"k","data":{"z":1,"y":[2]}}"#
    );
}

#[test]
fn binary_message_layout() {
    let event = wire(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","subject":"sub","time":"2024-05-01T10:00:00Z","partitionkey":"k","b":false,"a":7,"data":{"z":1}}"#,
    );
    let msg = Encoder::new(Mode::Binary).encode_wire(&event).unwrap();
    let headers: Vec<(&str, &str)> = msg
        .headers
        .iter()
        .map(|h| {
            (
                h.name_str().unwrap(),
                std::str::from_utf8(h.value.as_deref().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        headers,
        [
            ("content-type", "application/json"),
            ("ce_specversion", "1.0"),
            ("ce_id", "1"),
            ("ce_source", "s"),
            ("ce_type", "t"),
            ("ce_subject", "sub"),
            ("ce_time", "2024-05-01T10:00:00Z"),
            ("ce_a", "7"),
            ("ce_b", "false"),
            ("ce_partitionkey", "k"),
        ]
    );
    assert_eq!(msg.value.as_deref(), Some(&br#"{"z":1}"#[..]));
}

#[test]
fn key_mapper_changes_the_key_not_the_event() {
    let event = wire(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","partitionkey":"k","data":1}"#,
    );
    let encoder = Encoder::new(Mode::Binary).key_mapper(|e| Some(e.id().as_bytes().to_vec()));
    let msg = encoder.encode_wire(&event).unwrap();
    assert_eq!(msg.key.as_deref(), Some(&b"1"[..]));
    assert_eq!(msg.header("ce_partitionkey"), Some(&b"k"[..]));
}

#[test]
fn tombstones_only_when_asked() {
    let event = wire(r#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#);
    let err = Encoder::new(Mode::Binary).encode_wire(&event).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tombstone);
    let msg = Encoder::new(Mode::Binary)
        .allow_tombstones(true)
        .encode_wire(&event)
        .unwrap();
    assert_eq!(msg.value, None);
    assert_eq!(decode(&msg.as_ref()).unwrap(), event);
    // Structured mode always has a value.
    let msg = Encoder::new(Mode::Structured).encode_wire(&event).unwrap();
    assert!(msg.value.is_some());
}

// ---- Malformed messages: one test each ----

#[test]
fn null_header_value() {
    for header in ["ce_id", "ce_specversion", "ce_source", "ce_type"] {
        let err = decode_err(&binary_with(header, None));
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::NullHeader, Some(header))
        );
    }
}

#[test]
fn duplicate_ce_headers() {
    let mut msg = binary_with("ce_type", Some("com.example.other"));
    msg.headers
        .push(Header::new("ce_type", "com.example.thing"));
    let err = decode_err(&msg);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Duplicate, Some("ce_type"))
    );

    let mut msg = binary_with("ce_traceparent", Some("a"));
    msg.headers.push(Header::new("ce_traceparent", "b"));
    let err = decode_err(&msg);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Duplicate, Some("ce_traceparent"))
    );

    let mut msg = binary_with("x", None);
    msg.headers.push(Header::new("Content-Type", "text/plain"));
    assert_eq!(decode_err(&msg).kind(), ErrorKind::Duplicate);
}

#[test]
fn non_utf8_names_and_values() {
    let mut msg = binary_with("x", None);
    msg.headers[2].value = Some(vec![b'a', 0xff]);
    let err = decode_err(&msg);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::NotUtf8, Some("ce_id"))
    );

    let good = binary_with("x", None);
    let mut view = good.as_ref();
    view.headers = view
        .headers
        .iter()
        .chain([HeaderRef {
            name: b"ce_\xffname",
            value: Some(b"v"),
        }])
        .collect();
    let err = decode(&view).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotUtf8);
    assert!(
        err.to_string().contains("header name is not UTF-8"),
        "{err}"
    );

    let mut msg = binary_with("x", None);
    msg.headers[0].value = Some(vec![0xfe]);
    assert_eq!(decode_err(&msg).kind(), ErrorKind::NotUtf8);
}

#[test]
fn missing_or_unsupported_specversion() {
    let err = decode_err(&binary_with("ce_specversion", Some("<absent>")));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Missing, Some("ce_specversion"))
    );
    let err = decode_err(&binary_with("ce_specversion", Some("0.3")));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::SpecVersion, Some("ce_specversion"))
    );
    let err = decode_err(&structured(Some(
        r#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#,
    )));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::SpecVersion, Some("specversion"))
    );
    let err = decode_err(&structured(Some(r#"{"id":"1","source":"s","type":"t"}"#)));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Missing, Some("specversion"))
    );
}

#[test]
fn missing_required_attributes() {
    for header in ["ce_id", "ce_source", "ce_type"] {
        let err = decode_err(&binary_with(header, Some("<absent>")));
        assert_eq!((err.kind(), err.name()), (ErrorKind::Missing, Some(header)));
    }
    for (attribute, json) in [
        ("id", r#"{"specversion":"1.0","source":"s","type":"t"}"#),
        ("source", r#"{"specversion":"1.0","id":"1","type":"t"}"#),
        (
            "type",
            r#"{"specversion":"1.0","id":"1","source":"s","type":null}"#,
        ),
    ] {
        let err = decode_err(&structured(Some(json)));
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Missing, Some(attribute))
        );
    }
}

#[test]
fn empty_id() {
    let err = decode_err(&binary_with("ce_id", Some("")));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("ce_id"))
    );
    let err = decode_err(&structured(Some(
        r#"{"specversion":"1.0","id":"","source":"s","type":"t"}"#,
    )));
    assert_eq!((err.kind(), err.name()), (ErrorKind::Invalid, Some("id")));
}

#[test]
fn bad_time() {
    for time in [
        "2024-13-01T00:00:00Z",
        "1714557600000",
        "Wed, 01 May 2024 10:00:00 GMT",
        "",
    ] {
        let err = decode_err(&binary_with("ce_time", Some(time)));
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Invalid, Some("ce_time")),
            "{time}"
        );
        assert_eq!(
            err.to_string(),
            format!("header `ce_time`: `{time}` is not an RFC 3339 timestamp")
        );
    }
    let err = decode_err(&structured(Some(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":12}"#,
    )));
    assert_eq!((err.kind(), err.name()), (ErrorKind::Invalid, Some("time")));
}

#[test]
fn illegal_extension_names() {
    for header in ["ce_traceId", "ce_trace_id", "ce_data", "ce_", "ce_trace-id"] {
        let err = decode_err(&binary_with(header, Some("x")));
        assert_eq!(err.kind(), ErrorKind::ExtensionName, "{header}");
        assert_eq!(err.name(), Some(header));
    }
    let err = decode_err(&structured(Some(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","traceId":"x"}"#,
    )));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::ExtensionName, Some("traceId"))
    );
}

#[test]
fn null_or_non_json_structured_value() {
    let err = decode_err(&structured(None));
    assert_eq!(err.kind(), ErrorKind::Missing);
    assert_eq!(err.location(), Some(&Location::Value));
    for value in [
        "",
        "not json",
        "[1,2]",
        "\"s\"",
        r#"{"specversion":"1.0""#,
        "{} {}",
    ] {
        let err = decode_err(&structured(Some(value)));
        assert_eq!(err.kind(), ErrorKind::Json, "{value}");
        assert_eq!(err.location(), Some(&Location::Value), "{value}");
    }
}

#[test]
fn data_and_data_base64_together() {
    let err = decode_err(&structured(Some(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{},"data_base64":"AA=="}"#,
    )));
    assert_eq!(err.kind(), ErrorKind::ConflictingData);
}

#[test]
fn not_a_cloudevent_at_all() {
    for msg in [
        message(&[], Some(r#"{"a":1}"#)),
        message(
            &[("content-type", Some("application/json"))],
            Some(r#"{"id":"1"}"#),
        ),
        message(&[("traceparent", Some("x"))], None),
        Message::default(),
    ] {
        let err = decode_err(&msg);
        assert_eq!(err.kind(), ErrorKind::NotACloudEvent);
    }
}

#[test]
fn unsupported_structured_format() {
    for ct in [
        "application/cloudevents+avro",
        "application/cloudevents+protobuf",
        "application/cloudevents",
    ] {
        let msg = message(&[("content-type", Some(ct))], Some("x"));
        let err = decode_err(&msg);
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::UnsupportedFormat, Some("content-type")),
            "{ct}"
        );
    }
}

#[test]
fn binary_value_that_is_not_json_under_a_json_type() {
    let mut msg = binary_with("x", None);
    msg.value = Some(b"{not json".to_vec());
    let err = decode_err(&msg);
    assert_eq!(
        (err.kind(), err.location()),
        (ErrorKind::Json, Some(&Location::Value))
    );
}

#[test]
fn bad_extension_values_in_structured_mode() {
    for (value, kind) in [
        ("1.5", ErrorKind::Invalid),
        ("{}", ErrorKind::Invalid),
        ("[]", ErrorKind::Invalid),
        ("4294967296", ErrorKind::Invalid),
        ("\"a\\u0000b\"", ErrorKind::Invalid),
    ] {
        let json =
            format!(r#"{{"specversion":"1.0","id":"1","source":"s","type":"t","ext":{value}}}"#);
        let err = decode_err(&structured(Some(&json)));
        assert_eq!((err.kind(), err.name()), (kind, Some("ext")), "{value}");
    }
}

#[test]
fn control_characters_in_attributes() {
    let err = decode_err(&binary_with("ce_subject", Some("a\nb")));
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("ce_subject"))
    );
}

#[test]
fn duplicate_members_in_structured_mode() {
    let err = decode_err(&structured(Some(
        r#"{"specversion":"1.0","id":"1","id":"2","source":"s","type":"t"}"#,
    )));
    assert_eq!((err.kind(), err.name()), (ErrorKind::Duplicate, Some("id")));
    let err = decode_err(&structured(Some(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","x":"a","x":"b"}"#,
    )));
    assert_eq!((err.kind(), err.name()), (ErrorKind::Duplicate, Some("x")));
}

#[test]
fn extension_values_keep_their_type_in_structured_mode() {
    let event = wire(
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","flag":false,"n":-3,"s":"x"}"#,
    );
    let back = decoded(&Encoder::new(Mode::Structured).encode_wire(&event).unwrap());
    assert_eq!(
        back.extension("flag"),
        Some(&ExtensionValue::Boolean(false))
    );
    assert_eq!(back.extension("n"), Some(&ExtensionValue::Integer(-3)));
    let back = decoded(
        &Encoder::new(Mode::Binary)
            .allow_tombstones(true)
            .encode_wire(&event)
            .unwrap(),
    );
    assert_eq!(
        back.extension("flag"),
        Some(&ExtensionValue::String("false".into()))
    );
}

#[test]
fn bytes_under_a_json_content_type_are_refused_in_binary_mode() {
    for json in [
        r#"{"specversion":"1.0","id":"a","source":"s","type":"t","datacontenttype":"application/json","data_base64":"AAE="}"#,
        r#"{"specversion":"1.0","id":"a","source":"s","type":"t","data_base64":""}"#,
    ] {
        let event = wire(json);
        let err = Encoder::new(Mode::Binary).encode_wire(&event).unwrap_err();
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Invalid, Some("data")),
            "{json}"
        );
        // Structured mode carries them exactly.
        let message = Encoder::new(Mode::Structured).encode_wire(&event).unwrap();
        assert_eq!(decoded(&message), event);
    }
}
