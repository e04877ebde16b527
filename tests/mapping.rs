//! The outbox <-> CloudEvent mapping: the README's round-trip laws 1, 2, 5 and 6 as property
//! tests, typed payloads, and the errors of bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cloudevents::{AttributesReader, Event};
use common::*;
use outbox_cloudevents::{
    Data, Encoder, ErrorKind, ExtensionValue, Mode, OutboxEvent, Payload, Profile, WireEvent,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Everything but the payload, and the payload as serde_json's `Value` writes it.
fn same_through_value(a: &OutboxEvent<Payload>, b: &OutboxEvent<Payload>) {
    let json = |e: &OutboxEvent<Payload>| e.payload().as_json().map(normalized_json);
    assert_eq!(json(a), json(b));
    let strip = |e: &OutboxEvent<Payload>| e.clone().map_payload(|_| ());
    assert_eq!(strip(a), strip(b));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Law 1: outbox -> CloudEvent -> outbox is the identity, payload included.
    #[test]
    fn law1_outbox_cloudevent_outbox(event in outbox_event()) {
        // Through the wire form the payload text is kept byte for byte.
        let wire = event.to_wire(&Profile::Canonical).unwrap();
        let back = OutboxEvent::<Payload>::from_wire(wire, &Profile::Canonical).unwrap();
        prop_assert_eq!(&back, &event);

        // Through cloudevents::Event it is an equal JSON value, key order kept.
        let sdk = Event::try_from(&event).unwrap();
        let back = OutboxEvent::<Payload>::try_from(&sdk).unwrap();
        same_through_value(&back, &event);
    }

    /// Law 1 in the python-outbox-core profile.
    #[test]
    fn law1_python_profile(event in outbox_event()) {
        let profile = Profile::python_outbox_core();
        let wire = event.to_wire(&profile).unwrap();
        let back = OutboxEvent::<Payload>::from_wire(wire, &profile).unwrap();
        prop_assert_eq!(&back, &event);
    }

    /// Law 2: CloudEvent -> outbox -> CloudEvent is the identity for events carrying the
    /// outbox attributes, `subject`, `dataschema` and unknown extensions included.
    #[test]
    fn law2_cloudevent_outbox_cloudevent(json in cloudevent_json()) {
        let original = wire(&json);
        let outbox = OutboxEvent::<Payload>::from_wire(original.clone(), &Profile::Canonical).unwrap();
        let again = outbox.to_wire(&Profile::Canonical).unwrap();
        prop_assert_eq!(&again, &original);
        prop_assert_eq!(again.to_json(), original.to_json());

        // The same through cloudevents::Event.
        let sdk = Event::try_from(original.clone()).unwrap();
        let outbox = OutboxEvent::<Payload>::try_from(&sdk).unwrap();
        let sdk_again = Event::try_from(&outbox).unwrap();
        prop_assert_eq!(&sdk_again, &sdk);
    }

    /// Law 5: the same event gives the same bytes, whatever order the SDK's hash map keeps
    /// the extensions in.
    #[test]
    fn law5_deterministic(event in outbox_event()) {
        let sdk = Event::try_from(&event).unwrap();
        let mut rebuilt = sdk.clone();
        let names: Vec<String> = sdk.iter_extensions().map(|(k, _)| k.to_owned()).collect();
        for name in names.iter().rev() {
            let value = rebuilt.remove_extension(name).unwrap();
            rebuilt.set_extension(name, value);
        }
        for mode in [Mode::Binary, Mode::Structured] {
            let encoder = Encoder::new(mode);
            let once = encoder.encode(&event).unwrap();
            prop_assert_eq!(&once, &encoder.encode(&event).unwrap());
            prop_assert_eq!(
                encoder.encode_cloudevent(&sdk).unwrap(),
                encoder.encode_cloudevent(&rebuilt).unwrap()
            );
        }
        let wire = WireEvent::try_from(&sdk).unwrap();
        let names: Vec<&str> = wire.extensions().map(|(k, _)| k).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        prop_assert_eq!(names, sorted);
    }

    /// Law 6 through cloudevents::Event: the payload is an equal JSON value with key order
    /// kept (exact to the digit with serde_json's `arbitrary_precision`).
    #[test]
    fn law6_payload_through_sdk(payload in json_object()) {
        let event = OutboxEvent::new(
            uuid::Uuid::nil(), "com.example.thing.happened", "a-1",
            "2024-05-01T10:00:00Z".parse().unwrap(), "svc",
            Payload::from_json(payload.clone()).unwrap(),
        ).unwrap();
        let sdk = Event::try_from(&event).unwrap();
        let Some(cloudevents::Data::Json(value)) = sdk.data() else { panic!("no JSON data") };
        prop_assert_eq!(serde_json::to_string(value).unwrap(), normalized_json(&payload));
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct InviteCreated {
    email: String,
    roles: Vec<String>,
    seats: u64,
}

fn invite() -> OutboxEvent<InviteCreated> {
    OutboxEvent::new(
        "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11".parse().unwrap(),
        "com.gridflow.invite.created",
        "invite-123",
        "2024-05-01T10:00:00.123456789Z".parse().unwrap(),
        "user-service",
        InviteCreated {
            email: "zoë@example.com".into(),
            roles: vec!["admin".into()],
            seats: u64::MAX,
        },
    )
    .unwrap()
    .with_correlation_id(uuid::Uuid::from_u128(7))
}

#[test]
fn typed_payload_round_trips_and_matches_raw() {
    let event = invite();
    let sdk = Event::try_from(&event).unwrap();
    assert_eq!(sdk.ty(), "com.gridflow.invite.created");
    assert_eq!(
        sdk.extension("aggregateid"),
        Some(&cloudevents::event::ExtensionValue::String(
            "invite-123".into()
        ))
    );
    assert_eq!(sdk.time().unwrap().timestamp_subsec_nanos(), 123_456_789);
    assert_eq!(OutboxEvent::<InviteCreated>::try_from(&sdk).unwrap(), event);

    let raw = OutboxEvent::<Payload>::try_from(&sdk).unwrap();
    assert_eq!(
        raw.payload().as_json(),
        Some(r#"{"email":"zoë@example.com","roles":["admin"],"seats":18446744073709551615}"#)
    );
    let json = raw.to_message_json().unwrap();
    assert_eq!(
        OutboxEvent::<InviteCreated>::from_message_json(&json).unwrap(),
        event
    );
}

#[test]
fn canonical_mapping_writes_the_table() {
    let event = invite().with_causation_id(uuid::Uuid::from_u128(8));
    let wire = event.to_wire(&Profile::Canonical).unwrap();
    assert_eq!(wire.id(), "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11");
    assert_eq!(wire.source(), "user-service");
    assert_eq!(wire.datacontenttype(), Some("application/json"));
    let extensions: Vec<(&str, String)> = wire
        .extensions()
        .map(|(k, v)| (k, v.to_canonical_string().into_owned()))
        .collect();
    assert_eq!(
        extensions,
        [
            ("aggregateid", "invite-123".to_owned()),
            (
                "causationid",
                "00000000-0000-0000-0000-000000000008".to_owned()
            ),
            (
                "correlationid",
                "00000000-0000-0000-0000-000000000007".to_owned()
            ),
            ("dataversion", "1.0".to_owned()),
            ("partitionkey", "invite-123".to_owned()),
        ]
    );
    let json = String::from_utf8(wire.to_json()).unwrap();
    assert!(
        json.contains(r#""time":"2024-05-01T10:00:00.123456789Z""#),
        "{json}"
    );
}

#[test]
fn partition_key_override_is_carried() {
    let event = invite().with_partition_key("tenant-7").unwrap();
    let wire = event.to_wire(&Profile::Canonical).unwrap();
    assert_eq!(
        wire.extension("partitionkey")
            .and_then(ExtensionValue::as_str),
        Some("tenant-7")
    );
    let back = OutboxEvent::<InviteCreated>::from_wire(wire, &Profile::Canonical).unwrap();
    assert_eq!(back.partition_key(), "tenant-7");
    // A key equal to the aggregate id is the default, not an override.
    assert_eq!(invite().with_partition_key("invite-123").unwrap(), invite());
}

#[test]
fn absent_dataversion_and_partitionkey_take_their_defaults() {
    let json = r#"{"specversion":"1.0","id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","source":"s","type":"com.a.b","time":"2024-05-01T10:00:00Z","aggregateid":"agg","data":{}}"#;
    let event = OutboxEvent::<Payload>::from_wire(wire(json), &Profile::Canonical).unwrap();
    assert_eq!(event.data_version(), "1.0");
    assert_eq!(event.partition_key(), "agg");
    assert_eq!(event.content_type(), None);
}

#[test]
fn other_content_types_are_carried_as_bytes_or_text() {
    for (member, expected) in [
        (
            r#""datacontenttype":"text/plain","data":"hé""#,
            Payload::Text("hé".into()),
        ),
        (
            r#""datacontenttype":"application/octet-stream","data_base64":"/wA=""#,
            Payload::Binary(vec![0xff, 0]),
        ),
    ] {
        let json = format!(
            r#"{{"specversion":"1.0","id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","source":"s","type":"com.a.b","time":"2024-05-01T10:00:00Z","aggregateid":"agg",{member}}}"#
        );
        let original = wire(&json);
        let event =
            OutboxEvent::<Payload>::from_wire(original.clone(), &Profile::Canonical).unwrap();
        assert_eq!(event.payload(), &expected);
        let again = event.to_wire(&Profile::Canonical).unwrap();
        assert_eq!(again.data(), original.data());
        // The to_message() layout has no place for such a payload: an error, not a loss.
        assert_eq!(
            event.to_message_json().unwrap_err().kind(),
            ErrorKind::Payload
        );
    }
}

// ---- Bad input: one test each ----

const GOOD_MESSAGE: &str = r#"{"event_id":"3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01","event_type":"com.gridflow.invite.created","aggregate_id":"invite-42","occurred_at":"2024-05-06T07:08:09.123456+00:00","source":"user-service","data_version":"1.0","correlation_id":null,"causation_id":null,"email":"ana@example.com"}"#;

fn message_with(field: &str, value: &str) -> String {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(GOOD_MESSAGE).unwrap();
    match value {
        "<absent>" => {
            object.remove(field);
        }
        _ => {
            object.insert(field.to_owned(), serde_json::from_str(value).unwrap());
        }
    }
    serde_json::to_string(&object).unwrap()
}

fn bad_message(field: &str, value: &str) -> outbox_cloudevents::Error {
    OutboxEvent::<Payload>::from_message_json(message_with(field, value).as_bytes()).unwrap_err()
}

#[test]
fn good_message_reads() {
    let event = OutboxEvent::<Payload>::from_message_json(GOOD_MESSAGE.as_bytes()).unwrap();
    assert_eq!(event.to_message_json().unwrap(), GOOD_MESSAGE.as_bytes());
}

#[test]
fn bad_uuids() {
    for (field, value) in [
        ("event_id", r#""not-a-uuid""#),
        ("event_id", r#""3f2c1a9e8b7d4c6e9a5f1b2c3d4e5f01""#),
        ("correlation_id", r#""123""#),
        ("causation_id", r#""3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f0g""#),
    ] {
        let err = bad_message(field, value);
        assert_eq!(err.kind(), ErrorKind::Invalid, "{field}={value}");
        assert_eq!(err.name(), Some(field));
        assert!(
            err.to_string().contains("is not a hyphenated UUID"),
            "{err}"
        );
    }
    let json = r#"{"specversion":"1.0","id":"evt-1","source":"s","type":"com.a.b","time":"2024-05-01T10:00:00Z","aggregateid":"agg","data":{}}"#;
    let err = OutboxEvent::<Payload>::from_wire(wire(json), &Profile::Canonical).unwrap_err();
    assert_eq!((err.kind(), err.name()), (ErrorKind::Invalid, Some("id")));
}

#[test]
fn empty_aggregate_id() {
    let err = bad_message("aggregate_id", r#""""#);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("aggregate_id"))
    );
    let err = OutboxEvent::new(
        uuid::Uuid::nil(),
        "com.a.b",
        "",
        chrono::Utc::now(),
        "s",
        (),
    )
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("aggregate_id"))
    );
    assert_eq!(err.to_string(), "field `aggregate_id`: must not be empty");
}

#[test]
fn event_type_not_reverse_dns() {
    for ty in [
        "InviteCreated",
        "invite created",
        "com..invite",
        "com.invite.",
    ] {
        let err = bad_message("event_type", &quoted(ty));
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Invalid, Some("event_type")),
            "{ty}"
        );
        assert!(
            err.to_string().contains("is not a reverse-DNS event type"),
            "{err}"
        );
    }
}

#[test]
fn unparsable_time() {
    for time in [
        r#""yesterday""#,
        r#""2024-13-01T00:00:00Z""#,
        "1714557600000",
    ] {
        let err = bad_message("occurred_at", time);
        assert_eq!(err.name(), Some("occurred_at"), "{time}");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{time}");
    }
}

#[test]
fn missing_required_attribute() {
    for field in [
        "event_id",
        "event_type",
        "aggregate_id",
        "occurred_at",
        "source",
    ] {
        let err = bad_message(field, "<absent>");
        assert_eq!((err.kind(), err.name()), (ErrorKind::Missing, Some(field)));
    }
    for (attribute, json) in [
        (
            "aggregateid",
            r#"{"specversion":"1.0","id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","source":"s","type":"com.a.b","time":"2024-05-01T10:00:00Z","data":{}}"#,
        ),
        (
            "time",
            r#"{"specversion":"1.0","id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","source":"s","type":"com.a.b","aggregateid":"a","data":{}}"#,
        ),
    ] {
        let err = OutboxEvent::<Payload>::from_wire(wire(json), &Profile::Canonical).unwrap_err();
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Missing, Some(attribute))
        );
    }
}

#[test]
fn illegal_extension_name() {
    for name in ["Trace", "trace_id", "trace-id", "data", "aggregateid"] {
        let err = invite()
            .with_extension(name, ExtensionValue::Boolean(true))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExtensionName, "{name}");
        assert_eq!(err.name(), Some(name));
    }
}

#[test]
fn payload_that_does_not_match_its_type() {
    let err = OutboxEvent::<InviteCreated>::from_message_json(GOOD_MESSAGE.as_bytes()).unwrap_err();
    assert_eq!((err.kind(), err.name()), (ErrorKind::Payload, Some("data")));
    assert!(err.to_string().contains("missing field `roles`"), "{err}");
    let err = OutboxEvent::<InviteCreated>::from_wire(
        wire(r#"{"specversion":"1.0","id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","source":"s","type":"com.a.b","time":"2024-05-01T10:00:00Z","aggregateid":"a"}"#),
        &Profile::Canonical,
    )
    .unwrap_err();
    assert_eq!((err.kind(), err.name()), (ErrorKind::Missing, Some("data")));
}

#[test]
fn source_not_a_uri_reference() {
    let err = bad_message("source", r#""user service""#);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("source"))
    );
}

#[test]
fn payload_member_clashing_with_metadata_is_refused() {
    let event = OutboxEvent::new(
        uuid::Uuid::nil(),
        "com.a.b",
        "a",
        chrono::Utc::now(),
        "s",
        Payload::from_json(r#"{"source":"x"}"#).unwrap(),
    )
    .unwrap();
    let err = event.to_message_json().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Payload);
    assert!(err.to_string().contains("`source`"), "{err}");
}

#[test]
fn sdk_event_breaking_the_rules_is_an_error() {
    let mut event = Event::try_from(&invite()).unwrap();
    event.set_extension("Bad_Name", "x");
    let err = OutboxEvent::<Payload>::try_from(&event).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExtensionName);
    assert_eq!(err.name(), Some("Bad_Name"));
}

#[test]
fn data_kinds_survive_the_sdk() {
    for json in [
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"hi"}"#,
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AAE="}"#,
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":null}"#,
        r#"{"specversion":"1.0","id":"1","source":"s","type":"t","subject":"x","dataschema":"https://e.com/s","flag":false,"n":-5}"#,
    ] {
        let original = wire(json);
        let sdk = Event::try_from(original.clone()).unwrap();
        let back = WireEvent::try_from(&sdk).unwrap();
        assert_eq!(back.to_json(), original.to_json(), "{json}");
        assert!(matches!(
            back.data(),
            None | Some(Data::Json(_) | Data::Text(_) | Data::Binary(_))
        ));
    }
}

#[test]
fn partition_key_with_a_control_character_is_refused() {
    // Refused where it is set, so an event once built always maps.
    let err = invite().with_partition_key("tenant\n7").unwrap_err();
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("partitionkey"))
    );
    let err = bad_message("partition_key", r#""a\u0001b""#);
    assert_eq!(
        (err.kind(), err.name()),
        (ErrorKind::Invalid, Some("partition_key"))
    );
}

#[test]
fn metadata_member_given_twice_is_refused_by_name() {
    let body = GOOD_MESSAGE.strip_suffix('}').unwrap();
    for (extra, name) in [
        (r#","source":"other""#, "source"),
        (
            r#","event\u005fid":"3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f02""#,
            "event_id",
        ),
        (
            r#","partition_key":"a","partition_key":"b""#,
            "partition_key",
        ),
    ] {
        let line = format!("{body}{extra}}}");
        let err = OutboxEvent::<Payload>::from_message_json(line.as_bytes()).unwrap_err();
        assert_eq!(
            (err.kind(), err.name()),
            (ErrorKind::Duplicate, Some(name)),
            "{line}"
        );
    }
    // A broken line after the duplicate is a JSON error: the whole line is read first.
    let line = format!(r#"{body},"source":"other","x":}}"#);
    let err = OutboxEvent::<Payload>::from_message_json(line.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Json, "{err}");
}

#[test]
fn payload_members_keep_their_names_escaped_and_their_order() {
    let body = GOOD_MESSAGE.strip_suffix('}').unwrap();
    let line = format!(r#"{body},"q\"uote":1,"tab\t":[true,{{"k":null}}],"é\u00e9":"v"}}"#);
    let event = OutboxEvent::<Payload>::from_message_json(line.as_bytes()).unwrap();
    assert_eq!(
        event.payload().as_data().unwrap().as_bytes(),
        r#"{"email":"ana@example.com","q\"uote":1,"tab\t":[true,{"k":null}],"éé":"v"}"#.as_bytes()
    );
}
