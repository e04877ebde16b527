//! The `Decoder`: mode detection and the required mode, the profile, each leniency on and
//! off; and the borrowed message views it reads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;

use cloudevents::AttributesReader as _;
use outbox_cloudevents::{
    Data, Decoder, Encoder, ErrorKind, Header, HeaderRef, HeadersRef, Leniency, Location, Message,
    MessageRef, Mode, OutboxEvent, Payload, Profile, decode,
};

fn event() -> OutboxEvent<Payload> {
    OutboxEvent::new(
        "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11".parse().unwrap(),
        "com.gridflow.invite.created",
        "invite-123",
        "2024-05-01T10:00:00.123456Z".parse().unwrap(),
        "user-service",
        Payload::from_json(r#"{"email":"zoe@example.com","n":1.50}"#).unwrap(),
    )
    .unwrap()
    .with_correlation_id("5b7e4a10-8f3c-4c1d-a5b2-7e9f0c1d2e3f".parse().unwrap())
}

/// A binary-mode message from headers given as text.
fn binary(headers: &[(&str, Option<&str>)], value: Option<&[u8]>) -> Message {
    let mut all = vec![
        Header::new("ce_specversion", "1.0"),
        Header::new("ce_id", "evt-1"),
        Header::new("ce_source", "user-service"),
        Header::new("ce_type", "com.example.thing"),
    ];
    all.extend(headers.iter().map(|(name, value)| Header {
        name: Cow::Owned(name.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
    }));
    Message {
        key: None,
        headers: all,
        value: value.map(<[u8]>::to_vec),
    }
}

#[test]
fn decodes_both_modes_to_every_target() {
    let event = event();
    for mode in [Mode::Binary, Mode::Structured] {
        let message = Encoder::new(mode).encode(&event).unwrap();
        let decoder = Decoder::new();
        assert_eq!(decoder.detect_mode(&message.as_ref()).unwrap(), mode);
        let back: OutboxEvent<Payload> = decoder.decode(&message.as_ref()).unwrap();
        assert_eq!(back, event, "{mode}");
        let wire = decoder.decode_wire(&message.as_ref()).unwrap();
        assert_eq!(wire, decode(&message.as_ref()).unwrap(), "{mode}");
        assert_eq!(wire.id(), "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11");
        let sdk = decoder.decode_cloudevent(&message.as_ref()).unwrap();
        assert_eq!(sdk.id(), wire.id());
        assert_eq!(sdk, cloudevents::Event::try_from(&event).unwrap(), "{mode}");
        // The short form agrees.
        assert_eq!(
            OutboxEvent::<Payload>::from_message(&message.as_ref(), &Profile::Canonical).unwrap(),
            back
        );
    }
}

#[test]
fn a_required_mode_refuses_the_other() {
    let binary = Encoder::new(Mode::Binary).encode(&event()).unwrap();
    let structured = Encoder::new(Mode::Structured).encode(&event()).unwrap();
    let only_binary = Decoder::new().require_mode(Mode::Binary);
    assert!(only_binary.decode_wire(&binary.as_ref()).is_ok());
    let err = only_binary.decode_wire(&structured.as_ref()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedMode);
    assert_eq!(err.location(), Some(&Location::Message));
    assert!(
        err.to_string()
            .contains("a structured-mode message; this decoder takes binary mode only"),
        "{err}"
    );
    let only_structured = Decoder::new().require_mode(Mode::Structured);
    assert!(only_structured.decode_wire(&structured.as_ref()).is_ok());
    let err = only_structured.detect_mode(&binary.as_ref()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedMode);
}

#[test]
fn the_profile_reads_python_outbox_core_events() {
    let event = event();
    let python = Profile::python_outbox_core();
    for mode in [Mode::Binary, Mode::Structured] {
        let message = Encoder::new(mode)
            .profile(python.clone())
            .encode(&event)
            .unwrap();
        let back: OutboxEvent<Payload> = Decoder::new()
            .profile(python.clone())
            .decode(&message.as_ref())
            .unwrap();
        assert_eq!(back, event, "{mode}");
        // Read in the canonical profile, the same message is not an outbox event: the
        // python-outbox-core formatter writes no `aggregateid`.
        let err = Decoder::new()
            .decode::<Payload>(&message.as_ref())
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Missing, Some("aggregateid"))
        );
    }
}

#[test]
fn null_headers_read_as_unset_unless_strict() {
    let message = binary(
        &[
            ("content-type", None),
            ("ce_subject", None),
            ("ce_traceid", None),
        ],
        Some(b"{}"),
    );
    let event = Decoder::new().decode_wire(&message.as_ref()).unwrap();
    assert_eq!(event.subject(), None);
    assert_eq!(event.extensions().len(), 0);
    assert_eq!(event.datacontenttype(), None);

    let strict = Decoder::new().leniency(Leniency::NullHeaders, false);
    assert!(!strict.is_lenient(Leniency::NullHeaders));
    assert!(strict.is_lenient(Leniency::EmptyValue));
    let err = strict.decode_wire(&message.as_ref()).unwrap_err();
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::NullHeader, Some("content-type"))
    );
    for header in ["ce_subject", "ce_traceid"] {
        let message = binary(&[(header, None)], Some(b"{}"));
        let err = strict.decode_wire(&message.as_ref()).unwrap_err();
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::NullHeader, Some(header))
        );
    }
    // A required attribute's null header is an error either way.
    let mut message = binary(&[], Some(b"{}"));
    message.headers[1].value = None;
    for decoder in [Decoder::new(), strict] {
        let err = decoder.decode_wire(&message.as_ref()).unwrap_err();
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::NullHeader, Some("ce_id"))
        );
    }
}

#[test]
fn ce_datacontenttype_is_accepted_when_it_agrees_unless_strict() {
    let agreeing = binary(
        &[
            ("content-type", Some("application/json")),
            ("ce_datacontenttype", Some("application/json")),
        ],
        Some(b"{}"),
    );
    let event = Decoder::new().decode_wire(&agreeing.as_ref()).unwrap();
    assert_eq!(event.datacontenttype(), Some("application/json"));
    let strict = Decoder::new().leniency(Leniency::DatacontenttypeHeader, false);
    let err = strict.decode_wire(&agreeing.as_ref()).unwrap_err();
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("ce_datacontenttype"))
    );
    let disagreeing = binary(
        &[
            ("content-type", Some("application/json")),
            ("ce_datacontenttype", Some("text/plain")),
        ],
        Some(b"{}"),
    );
    let err = Decoder::new()
        .decode_wire(&disagreeing.as_ref())
        .unwrap_err();
    assert!(err.to_string().contains("disagrees"), "{err}");
}

#[test]
fn a_value_without_content_type_is_json_or_bytes_unless_strict() {
    let untyped = binary(&[], Some(b"\xff\x00 not json"));
    let event = Decoder::new().decode_wire(&untyped.as_ref()).unwrap();
    assert_eq!(
        event.data(),
        Some(&Data::Binary(Cow::Borrowed(&b"\xff\x00 not json"[..])))
    );
    let strict = Decoder::new().leniency(Leniency::UntypedValue, false);
    let err = strict.decode_wire(&untyped.as_ref()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Json);
    assert_eq!(err.location(), Some(&Location::Value));
    assert!(err.to_string().contains("without `content-type`"), "{err}");
    // JSON reads as JSON either way.
    let json = binary(&[], Some(br#"{"a":1}"#));
    assert!(matches!(
        strict.decode_wire(&json.as_ref()).unwrap().data(),
        Some(Data::Json(_))
    ));
}

#[test]
fn an_empty_json_value_is_no_data_unless_strict() {
    let empty = binary(&[("content-type", Some("application/json"))], Some(b""));
    let event = Decoder::new().decode_wire(&empty.as_ref()).unwrap();
    assert_eq!(event.data(), None);
    let strict = Decoder::new().leniency(Leniency::EmptyValue, false);
    let err = strict.decode_wire(&empty.as_ref()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Json);
    assert_eq!(err.location(), Some(&Location::Value));
}

#[test]
fn a_time_without_offset_reads_as_utc_unless_strict() {
    let naive = binary(&[("ce_time", Some("2024-05-01T10:00:00.5"))], Some(b"{}"));
    let event = Decoder::new().decode_wire(&naive.as_ref()).unwrap();
    assert_eq!(
        event.time(),
        Some(&"2024-05-01T10:00:00.5Z".parse().unwrap())
    );
    let strict = Decoder::new().leniency(Leniency::TimeWithoutOffset, false);
    let err = strict.decode_wire(&naive.as_ref()).unwrap_err();
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("ce_time"))
    );
    assert!(err.to_string().contains("has no offset"), "{err}");

    // Structured mode too.
    let json =
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"2024-05-01T10:00:00"}"#;
    let structured = Message {
        key: None,
        headers: vec![Header::new(
            "content-type",
            "application/cloudevents+json; charset=UTF-8",
        )],
        value: Some(json.as_bytes().to_vec()),
    };
    assert!(Decoder::new().decode_wire(&structured.as_ref()).is_ok());
    let err = strict.decode_wire(&structured.as_ref()).unwrap_err();
    assert_eq!((err.kind(), err.name()), (ErrorKind::Invalid, Some("time")));
}

#[test]
fn strict_turns_every_leniency_off_and_what_the_spec_allows_still_decodes() {
    let strict = Decoder::new().strict();
    for leniency in Leniency::ALL {
        assert!(Decoder::new().is_lenient(leniency), "{leniency:?}");
        assert!(!strict.is_lenient(leniency), "{leniency:?}");
    }
    for mode in [Mode::Binary, Mode::Structured] {
        let message = Encoder::new(mode).encode(&event()).unwrap();
        assert_eq!(
            strict.decode::<Payload>(&message.as_ref()).unwrap(),
            event()
        );
    }
}

#[test]
fn a_message_that_is_no_cloudevent_is_an_error() {
    let message = Message {
        key: Some(b"k".to_vec()),
        headers: vec![Header::new("traceparent", "00-abc-def-01")],
        value: Some(b"{}".to_vec()),
    };
    let err = Decoder::new().decode_wire(&message.as_ref()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotACloudEvent);
    assert_eq!(err.location(), Some(&Location::Message));
}

#[test]
fn borrowed_views_read_headers_by_name() {
    let message = binary(
        &[
            ("x-dup", Some("first")),
            ("x-dup", Some("second")),
            ("x-null", None),
        ],
        Some(b"{}"),
    );
    let view = message.as_ref();
    assert_eq!(view, MessageRef::from(&message));
    assert_eq!(view.header("ce_id"), Some(&b"evt-1"[..]));
    assert_eq!(message.header("ce_id"), Some(&b"evt-1"[..]));
    // The first of duplicates, as `Message::header`; a null value reads as `None`.
    assert_eq!(view.header("x-dup"), Some(&b"first"[..]));
    assert_eq!(view.header("x-null"), None);
    assert_eq!(view.header("absent"), None);
    assert_eq!(view.headers.len(), message.headers.len());
    assert_eq!(
        view.headers.get(4),
        Some(HeaderRef {
            name: b"x-dup",
            value: Some(b"first")
        })
    );
    assert_eq!(view.headers.get(99), None);
    assert_eq!(view.to_owned_message(), message);

    // The same message over a slice of `HeaderRef`s is equal, and decodes alike.
    let refs: Vec<HeaderRef<'_>> = message.headers.iter().map(Header::as_ref).collect();
    let over_refs = MessageRef {
        key: None,
        headers: HeadersRef::from(&refs[..]),
        value: message.value.as_deref(),
    };
    assert_eq!(over_refs, view);
    assert_eq!(over_refs.header("x-dup"), Some(&b"first"[..]));
    assert_eq!(decode(&over_refs).unwrap(), decode(&view).unwrap());
}

#[test]
fn a_header_name_that_is_not_utf8_is_an_error_not_a_panic() {
    let mut message = binary(&[], Some(b"{}"));
    message.headers.push(Header {
        name: Cow::Borrowed(b"ce_\xffname"),
        value: Some(b"v".to_vec()),
    });
    assert_eq!(message.headers[4].name_str(), None);
    let err = Decoder::new().decode_wire(&message.as_ref()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotUtf8);
    assert_eq!(err.name(), Some("ce_\u{fffd}name"));
    // A foreign header may have any name: it is not the decoder's business.
    message.headers[4].name = Cow::Borrowed(b"x-\xff");
    assert!(Decoder::new().decode_wire(&message.as_ref()).is_ok());
}
