//! Inputs that once broke the library, each kept as a test named after the case. The fuzz
//! targets in `fuzz/` found them (see `scripts/fuzz`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use outbox_cloudevents::kafka::{Mode, detect_mode};
use outbox_cloudevents::{Data, ErrorKind, Header, Location, Message, WireEvent, decode};

/// A binary-mode message with the required attributes, `content_type` and `value`.
fn binary(content_type: &[u8], value: &[u8]) -> Message {
    Message {
        key: None,
        headers: vec![
            Header::new("content-type", content_type),
            Header::new("ce_specversion", "1.0"),
            Header::new("ce_id", "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b01"),
            Header::new("ce_source", "user-service"),
            Header::new("ce_type", "com.gridflow.invite.created"),
        ],
        value: Some(value.to_vec()),
    }
}

/// Fuzz target `decode_kafka`: the structured-mode check compared the first 23 bytes of the
/// `content-type` with `application/cloudevents` by slicing a `str`; byte 23 fell inside `東`
/// and the slice panicked.
#[test]
fn content_type_with_a_multibyte_character_across_the_cloudevents_prefix() {
    let content_type = "application\",\"soenant-東京";
    assert!(!content_type.is_char_boundary(23));

    let message = binary(content_type.as_bytes(), b"{\"ok\":true}1");
    assert_eq!(detect_mode(&message.as_ref()).unwrap(), Mode::Binary);
    let event = decode(&message.as_ref()).unwrap();
    assert_eq!(event.datacontenttype(), Some(content_type));
    // Not a JSON type, so the value is bytes, as sent.
    assert_eq!(
        event.data(),
        Some(&Data::Binary(b"{\"ok\":true}1".as_slice().into()))
    );

    // Without `ce_` headers it is simply not a CloudEvent.
    let alone = Message {
        headers: vec![Header::new("content-type", content_type)],
        ..message
    };
    let error = decode(&alone.as_ref()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotACloudEvent);
}

/// Fuzz target `decode_binary`: the same slice, reached by a JSON media type followed by
/// control characters and `京`, whose bytes span index 23.
#[test]
fn json_content_type_followed_by_control_characters_and_a_multibyte_character() {
    let content_type = "application/json\0\0\0\0\x0c京";
    assert!(!content_type.is_char_boundary(23));

    let message = binary(content_type.as_bytes(), b"{\"ok\":true}");
    assert_eq!(detect_mode(&message.as_ref()).unwrap(), Mode::Binary);
    // The control characters make it an invalid `datacontenttype`: an error, not a panic.
    let error = decode(&message.as_ref()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert_eq!(
        error.location(),
        Some(&Location::Header("ce_datacontenttype".into()))
    );
}

/// Found beside the `decode_binary` case, by reading the same pattern in the JSON
/// content-type check: its `+json` suffix test sliced the subtype 5 bytes from the end, which
/// for `x東json` falls inside `東`.
#[test]
fn content_type_with_a_multibyte_character_before_the_json_suffix() {
    for content_type in ["application/x東json", "text/x東json; charset=utf-8"] {
        let message = binary(content_type.as_bytes(), b"\x00\x01 not JSON");
        let event = decode(&message.as_ref()).unwrap();
        // `x東json` is neither `json` nor `…+json`: the value is bytes, not parsed as JSON.
        assert_eq!(event.datacontenttype(), Some(content_type));
        assert_eq!(
            event.data(),
            Some(&Data::Binary(b"\x00\x01 not JSON".as_slice().into()))
        );

        let json = format!(
            r#"{{"specversion":"1.0","id":"x","source":"s","type":"t","datacontenttype":"{content_type}","data":"text"}}"#
        );
        let event = WireEvent::from_json(json.as_bytes()).unwrap();
        assert_eq!(event.data(), Some(&Data::Text("text".into())));
    }
}

/// Found by `decode_kafka`: a structured event whose `datacontenttype` is a CloudEvents media
/// type. In binary mode it would become `content-type` and mark the message as structured
/// mode, so the encoder refuses it rather than write a message that reads back differently.
#[test]
fn binary_mode_refuses_a_cloudevents_datacontenttype() {
    for ct in [
        "application/cloudevents charset=utf-8",
        "application/cloudevents+json",
        "Application/CloudEvents+avro",
    ] {
        let json = format!(
            r#"{{"specversion":"1.0","id":"a","source":"/s","type":"t","datacontenttype":"{ct}","data":[1, "2"]}}"#
        );
        let event = outbox_cloudevents::WireEvent::from_json(json.as_bytes()).unwrap();
        let err = outbox_cloudevents::Encoder::new(outbox_cloudevents::Mode::Binary)
            .encode_wire(&event)
            .unwrap_err();
        assert_eq!(err.kind(), outbox_cloudevents::ErrorKind::Invalid, "{ct}");
        assert_eq!(err.name(), Some("datacontenttype"), "{ct}");
        let message = outbox_cloudevents::Encoder::new(outbox_cloudevents::Mode::Structured)
            .encode_wire(&event)
            .unwrap();
        assert_eq!(
            outbox_cloudevents::decode(&message.as_ref()).unwrap(),
            event
        );
    }
}
