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

/// An outbox event in python-outbox-core's `to_message()` layout with `occurred_at` set to
/// `at`.
fn outbox_json(at: &str) -> String {
    format!(
        r#"{{"event_id":"3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01","event_type":"com.gridflow.invite.created","aggregate_id":"a","occurred_at":"{at}","source":"s","data_version":"1.0","correlation_id":null,"causation_id":null}}"#
    )
}

/// Fuzz target `outbox_json` (seeds kept in `fuzz/seeds/outbox_json`): an offset moved the
/// instant out of the years RFC 3339 can write in UTC, and the event was written as
/// `ce_time -0001-12-31T00:01:00Z`, which no reader takes. Every reader now refuses it.
#[test]
fn time_whose_utc_form_leaves_years_0000_to_9999() {
    for at in ["0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-00:01"] {
        let error =
            outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message_json(
                outbox_json(at).as_bytes(),
            )
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid, "{at}");
        assert_eq!(error.name(), Some("occurred_at"), "{at}");
        assert!(
            error.to_string().contains("outside the years 0000–9999"),
            "{error}"
        );

        let json =
            format!(r#"{{"specversion":"1.0","id":"a","source":"s","type":"t","time":"{at}"}}"#);
        let error = WireEvent::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(error.name(), Some("time"), "{at}");

        let mut message = binary(b"application/json", b"{}");
        message.headers.push(Header::new("ce_time", at));
        let error = decode(&message.as_ref()).unwrap_err();
        assert_eq!(
            error.location(),
            Some(&Location::Header("ce_time".into())),
            "{at}"
        );
    }
    // The edges themselves are fine.
    for at in [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "0000-01-01T23:59:00+23:59",
    ] {
        outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message_json(
            outbox_json(at).as_bytes(),
        )
        .unwrap();
    }
}

/// A structured-mode extension that is a number but not a 64-bit integer was reported as
/// "not an object" when serde_json's `arbitrary_precision` was on (it hands such numbers
/// over as a map). The message names the number, with the feature on or off.
#[test]
fn structured_extension_that_is_a_number_but_not_an_integer() {
    let numbers: &[&str] = if cfg!(feature = "arbitrary-precision") {
        &["1.0", "-0", "1e999", "18446744073709551616"]
    } else {
        &["1.0", "18446744073709551616"]
    };
    for number in numbers {
        let json =
            format!(r#"{{"specversion":"1.0","id":"a","source":"s","type":"t","ext":{number}}}"#);
        let error = WireEvent::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid, "{number}");
        assert_eq!(error.name(), Some("ext"), "{number}");
        let text = error.to_string();
        assert!(!text.contains("object"), "{number}: {text}");
        if cfg!(feature = "arbitrary-precision") {
            // serde_json spells the exponent `e+999`.
            let spelled = number.replace("e9", "e+9");
            assert!(text.contains(&format!("the number `{spelled}`")), "{text}");
        }
    }
    // An object is still called one.
    let json = r#"{"specversion":"1.0","id":"a","source":"s","type":"t","ext":{"a":1}}"#;
    let error = WireEvent::from_json(json.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("not an object"), "{error}");
}

/// An outbox event whose `cloudevent` member sets `datacontenttype: text/plain` encoded in
/// binary mode, and the message then read back as bytes, which the `to_message()` layout
/// cannot hold: the event did not decode. The encoder refuses it and says why; structured
/// mode carries it.
#[test]
fn binary_mode_refuses_a_json_payload_under_a_type_that_is_not_json() {
    let json = outbox_json("2024-05-06T07:08:09+00:00").replace(
        r#""causation_id":null}"#,
        r#""causation_id":null,"email":"a@example.com","cloudevent":{"datacontenttype":"text/plain"}}"#,
    );
    let event = outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message_json(
        json.as_bytes(),
    )
    .unwrap();
    let error = outbox_cloudevents::Encoder::new(outbox_cloudevents::Mode::Binary)
        .encode(&event)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert_eq!(error.name(), Some("datacontenttype"));
    assert!(
        error
            .to_string()
            .contains("`text/plain` is not a JSON content type"),
        "{error}"
    );

    let message = outbox_cloudevents::Encoder::new(outbox_cloudevents::Mode::Structured)
        .encode(&event)
        .unwrap();
    let back = outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message(
        &message.as_ref(),
        &outbox_cloudevents::Profile::Canonical,
    )
    .unwrap();
    assert_eq!(back, event);
    assert_eq!(back.to_message_json().unwrap(), json.as_bytes());
}

/// A header named `"ce_a\nline 99: injected\u001b[31m"` printed a fake `line 99:` report
/// and a terminal escape into the error, and a 1 MB name made a 1 MB message. Names and
/// values are now escaped and cut.
#[test]
fn error_messages_escape_and_cut_names_and_values() {
    let mut message = binary(b"application/json", b"{}");
    message
        .headers
        .push(Header::new("ce_a\nline 99: injected\u{1b}[31m", "x"));
    let text = decode(&message.as_ref()).unwrap_err().to_string();
    assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
    assert!(
        text.contains(r"ce_a\nline 99: injected\u{1b}[31m"),
        "{text}"
    );

    let long_name = format!("ce_{}", "X".repeat(1 << 20));
    let long_value = "\u{202e}\r".repeat(1 << 20);
    for header in [
        Header::new(long_name.clone(), "x"),
        Header::new("ce_time", long_value),
    ] {
        let mut message = binary(b"application/json", b"{}");
        message.headers.push(header);
        let error = decode(&message.as_ref()).unwrap_err();
        let text = error.to_string();
        assert!(text.len() < 1000, "{} bytes", text.len());
        assert!(text.contains("…`"), "{text}");
        assert!(!text.contains(['\r', '\u{202e}']), "{text}");
    }
    // The name itself is kept whole for callers.
    let mut message = binary(b"application/json", b"{}");
    message.headers.push(Header::new(long_name, "x"));
    let error = decode(&message.as_ref()).unwrap_err();
    assert_eq!(error.name().map(str::len), Some(3 + (1 << 20)));

    let text = WireEvent::from_json(b"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"type\":\"t\",\"time\":\"\\u2028\\u001b[2J\"}")
        .unwrap_err()
        .to_string();
    assert!(text.contains(r"`\u{2028}\u{1b}[2J`"), "{text}");
}

/// A line starting with a byte-order mark, and a string with an unpaired surrogate escape,
/// were reported in serde_json's words only (`expected value at line 1 column 1`,
/// `unexpected end of hex escape`). The messages now name the cause.
#[test]
fn byte_order_mark_and_unpaired_surrogate_are_named() {
    let event = outbox_json("2024-05-06T07:08:09Z");
    let with_bom = format!("\u{feff}{event}");
    let error = outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message_json(
        with_bom.as_bytes(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("byte-order mark"), "{error}");
    // The mark itself shows escaped, not as an invisible character.
    assert!(error.to_string().contains(r"`\u{feff}{"), "{error}");
    let cloudevent =
        "\u{feff}{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"type\":\"t\"}";
    let error = WireEvent::from_json(cloudevent.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("byte-order mark"), "{error}");

    for (escape, json) in [
        (
            r"\ud800",
            event.replace(r#""aggregate_id":"a""#, r#""aggregate_id":"\ud800""#),
        ),
        (
            r"\udc00",
            event.replace(r#""aggregate_id":"a""#, r#""aggregate_id":"x\udc00""#),
        ),
        (
            r"\ud83d",
            event.replace(r#""aggregate_id":"a""#, r#""aggregate_id":"\ud83d\u0041""#),
        ),
    ] {
        let error =
            outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message_json(
                json.as_bytes(),
            )
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(&format!("`{escape}` is an unpaired surrogate")),
            "{text}"
        );
    }
    let cloudevent = r#"{"specversion":"1.0","id":"\\\ud800","source":"s","type":"t"}"#;
    let error = WireEvent::from_json(cloudevent.as_bytes()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(r"`\ud800` is an unpaired surrogate"),
        "{error}"
    );
    // A pair is a character, not an error.
    let paired = event.replace(r#""aggregate_id":"a""#, r#""aggregate_id":"\ud83d\ude80""#);
    outbox_cloudevents::OutboxEvent::<outbox_cloudevents::Payload>::from_message_json(
        paired.as_bytes(),
    )
    .unwrap();
}

/// A payload nested 100,000 levels deep is carried on every path that reads JSON, without a
/// stack overflow: binary and structured mode, python-outbox-core's layout, the interchange
/// line (with the `interchange` feature) and `Payload::from_json`.
#[test]
fn payload_nested_one_hundred_thousand_levels() {
    use outbox_cloudevents::{Encoder, OutboxEvent, Payload, Profile};

    const DEPTH: usize = 100_000;
    let nested = format!("{{\"a\":{}1{}}}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let payload = Payload::from_json(nested.clone()).unwrap();
    let event = OutboxEvent::new(
        "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b01".parse().unwrap(),
        "com.gridflow.invite.created",
        "invite-1",
        "2024-05-01T10:00:00Z".parse().unwrap(),
        "user-service",
        payload,
    )
    .unwrap();
    for mode in [Mode::Binary, Mode::Structured] {
        let message = Encoder::new(mode).encode(&event).unwrap();
        let back =
            OutboxEvent::<Payload>::from_message(&message.as_ref(), &Profile::Canonical).unwrap();
        assert_eq!(back.payload().as_json(), Some(nested.as_str()), "{mode}");
        #[cfg(feature = "interchange")]
        {
            use outbox_cloudevents::interchange::Record;
            let record = Record::from(message);
            assert_eq!(
                Record::from_json(&record.to_json()).unwrap(),
                record,
                "{mode}"
            );
        }
    }
    let line = event.to_message_json().unwrap();
    let back = OutboxEvent::<Payload>::from_message_json(&line).unwrap();
    assert_eq!(back, event);
}

/// RFC 3339's own example of a leap second, `1990-12-31T15:59:60-08:00`, was published as
/// `23:59:59Z` (the leap second lost moving it to UTC) while `1990-12-31T23:59:60Z` was kept:
/// one instant, two results. Every reader now gives `23:59:60Z` for it, whatever the offset
/// it is written in, and every writer gives it back as second 60.
#[test]
fn a_leap_second_is_one_instant_in_every_offset() {
    use outbox_cloudevents::{Encoder, OutboxEvent, Payload, Profile};
    let forms = [
        "1990-12-31T23:59:60Z",
        "1990-12-31T15:59:60-08:00",
        "1991-01-01T00:29:60+00:30",
        "1990-12-31T23:59:60",
        "1990-12-31 23:59:60+00:00",
    ];
    let events: Vec<_> = forms
        .iter()
        .map(|at| OutboxEvent::<Payload>::from_message_json(outbox_json(at).as_bytes()).unwrap())
        .collect();
    for (at, event) in forms.iter().zip(&events) {
        assert_eq!(event, &events[0], "{at}");
        let wire = event.to_wire(&Profile::Canonical).unwrap();
        assert_eq!(time_json(&wire), "1990-12-31T23:59:60Z", "{at}");
        let json = String::from_utf8(event.to_message_json().unwrap()).unwrap();
        assert!(
            json.contains(r#""occurred_at":"1990-12-31T23:59:60+00:00""#),
            "{at}: {json}"
        );
    }
    // The same from a CloudEvent's `time`, in the JSON format and in a `ce_time` header.
    for at in &forms[..3] {
        let json =
            format!(r#"{{"specversion":"1.0","id":"a","source":"s","type":"t","time":"{at}"}}"#);
        let event = WireEvent::from_json(json.as_bytes()).unwrap();
        assert_eq!(time_json(&event), "1990-12-31T23:59:60Z", "{at}");
        let mut message = binary(b"application/json", b"{}");
        message.headers.push(Header::new("ce_time", *at));
        let event = decode(&message.as_ref()).unwrap();
        assert_eq!(time_json(&event), "1990-12-31T23:59:60Z", "{at}");
    }
    // The round-trip laws hold for it: through `cloudevents::Event`, and on Kafka in both
    // modes and both profiles.
    for profile in [Profile::Canonical, Profile::python_outbox_core()] {
        let cloudevent = events[1].to_cloudevent(&profile).unwrap();
        let back = OutboxEvent::<Payload>::from_cloudevent(&cloudevent, &profile).unwrap();
        assert_eq!(back, events[0], "{profile:?}");
    }
    for mode in [Mode::Binary, Mode::Structured] {
        for profile in [Profile::Canonical, Profile::python_outbox_core()] {
            let message = Encoder::new(mode)
                .profile(profile.clone())
                .encode(&events[1])
                .unwrap();
            let time = match mode {
                Mode::Binary => message
                    .headers
                    .iter()
                    .find(|h| h.name == b"ce_time".as_slice())
                    .and_then(|h| h.value.clone())
                    .unwrap(),
                Mode::Structured => message.value.clone().unwrap(),
            };
            let leap: &[u8] = match profile {
                Profile::Canonical => b"1990-12-31T23:59:60Z",
                _ => b"1990-12-31T23:59:60+00:00",
            };
            assert!(
                time.windows(leap.len()).any(|w| w == leap),
                "{mode:?} {profile:?}: {}",
                String::from_utf8_lossy(&time)
            );
            let back = OutboxEvent::<Payload>::from_message(&message.as_ref(), &profile).unwrap();
            assert_eq!(back, events[0], "{mode:?} {profile:?}");
        }
    }
}

/// The `time` member of the event's JSON event format.
fn time_json(event: &WireEvent<'_>) -> String {
    let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
    json["time"].as_str().unwrap().to_owned()
}

/// Second 60 was taken at any minute (`2024-05-01T10:30:60Z` read as 10:30:59 and a
/// second). A leap second only ever comes at 23:59:60 UTC: second 60 at any other minute of
/// UTC, after the offset, is refused by every reader, naming the field or attribute.
#[test]
fn second_60_other_than_at_23_59_utc_is_refused() {
    use outbox_cloudevents::{OutboxEvent, Payload};
    for at in [
        "2024-05-01T10:30:60Z",
        "1990-12-31T23:59:60-08:00",
        "1990-12-31T15:58:60-08:00",
        "1990-12-31T23:58:60",
    ] {
        let error =
            OutboxEvent::<Payload>::from_message_json(outbox_json(at).as_bytes()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid, "{at}");
        assert_eq!(error.name(), Some("occurred_at"), "{at}");
        assert!(error.to_string().contains(at), "{error}");
        assert!(
            error
                .to_string()
                .contains("a leap second is only ever 23:59:60 UTC"),
            "{error}"
        );
        // A CloudEvent's `time` needs an offset.
        if at.len() > 19 {
            let json = format!(
                r#"{{"specversion":"1.0","id":"a","source":"s","type":"t","time":"{at}"}}"#
            );
            let error = WireEvent::from_json(json.as_bytes()).unwrap_err();
            assert_eq!(error.name(), Some("time"), "{at}");
            assert!(error.to_string().contains("leap second"), "{error}");

            let mut message = binary(b"application/json", b"{}");
            message.headers.push(Header::new("ce_time", at));
            let error = decode(&message.as_ref()).unwrap_err();
            assert_eq!(
                error.location(),
                Some(&Location::Header("ce_time".into())),
                "{at}"
            );
            assert!(error.to_string().contains("leap second"), "{error}");
        }
    }
}
