//! Golden files: outbox JSON in, CloudEvent JSON and Kafka messages out, for both profiles and
//! both modes. `UPDATE_FIXTURES=1 cargo test --all-features` rewrites them; review the diff.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile, WireEvent, decode};

const INPUTS: [&str; 2] = [
    "python-outbox-core/events.jsonl",
    "golden/outbox-extras.jsonl",
];

fn outbox_events() -> Vec<OutboxEvent<Payload>> {
    INPUTS
        .iter()
        .flat_map(|path| fixture_lines(path))
        .map(|line| OutboxEvent::from_message_json(line.as_bytes()).unwrap())
        .collect()
}

fn lines(items: impl IntoIterator<Item = Vec<u8>>) -> String {
    items
        .into_iter()
        .map(|bytes| String::from_utf8(bytes).unwrap() + "\n")
        .collect()
}

fn profiles() -> [(&'static str, Profile); 2] {
    [
        ("canonical", Profile::Canonical),
        ("python-outbox-core", Profile::python_outbox_core()),
    ]
}

#[test]
fn outbox_to_cloudevent_json() {
    let events = outbox_events();
    for (name, profile) in profiles() {
        let out = lines(
            events
                .iter()
                .map(|e| e.to_wire(&profile).unwrap().to_json()),
        );
        golden(&format!("golden/{name}.cloudevents.jsonl"), &out);
        // And back: every line reads into the event it came from.
        for (line, event) in out.lines().zip(&events) {
            let back = OutboxEvent::<Payload>::from_wire(wire(line), &profile).unwrap();
            assert_eq!(&back, event);
        }
    }
}

#[test]
fn outbox_to_kafka_messages() {
    let events = outbox_events();
    for (name, profile) in profiles() {
        for mode in [Mode::Binary, Mode::Structured] {
            let encoder = Encoder::new(mode).profile(profile.clone());
            let messages: Vec<_> = events.iter().map(|e| encoder.encode(e).unwrap()).collect();
            let out = lines(messages.iter().map(|m| Record::from(m.clone()).to_json()));
            golden(&format!("golden/{name}.{mode}.messages.jsonl"), &out);
            for (line, event) in out.lines().zip(&events) {
                let record = Record::from_json(line.as_bytes()).unwrap();
                let back = OutboxEvent::<Payload>::from_message(&record.message.as_ref(), &profile)
                    .unwrap();
                assert_eq!(back.event_id(), event.event_id());
                assert_eq!(back.payload(), event.payload());
            }
        }
    }
}

#[test]
fn outbox_json_round_trip() {
    let events = outbox_events();
    let out = lines(events.iter().map(|e| e.to_message_json().unwrap()));
    golden("golden/outbox.jsonl", &out);
    for (line, event) in out.lines().zip(&events) {
        assert_eq!(
            &OutboxEvent::<Payload>::from_message_json(line.as_bytes()).unwrap(),
            event
        );
    }
}

#[test]
fn cloudevents_to_kafka_messages() {
    let events: Vec<WireEvent<'static>> = fixture_lines("interop/events.jsonl")
        .iter()
        .map(|line| wire(line))
        .collect();
    for mode in [Mode::Binary, Mode::Structured] {
        let encoder = Encoder::new(mode).allow_tombstones(true);
        let messages: Vec<_> = events
            .iter()
            .map(|e| encoder.encode_wire(e).unwrap())
            .collect();
        let out = lines(messages.iter().map(|m| Record::from(m.clone()).to_json()));
        golden(&format!("golden/interop.{mode}.messages.jsonl"), &out);
        for (message, event) in messages.iter().zip(&events) {
            let back = decode(&message.as_ref()).unwrap();
            assert_eq!(back.id(), event.id());
            assert_eq!(
                back.data().map(|d| d.as_bytes()),
                event.data().map(|d| d.as_bytes())
            );
        }
    }
}

#[test]
fn readme_shows_the_golden_messages() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for mode in ["binary", "structured"] {
        let first = &fixture_lines(&format!("golden/canonical.{mode}.messages.jsonl"))[0];
        assert!(
            readme.contains(first.as_str()),
            "README.md's {mode}-mode example is not the first line of fixtures/golden/canonical.{mode}.messages.jsonl"
        );
    }
    // The quick start's output: the CLI's `encode --mode binary` of the python-outbox-core events.
    for line in fixture_lines("golden/canonical.binary.messages.jsonl")
        .iter()
        .take(5)
    {
        assert!(
            readme.contains(line.as_str()),
            "README.md's quick-start output lacks {line}"
        );
    }
    let matrix = std::fs::read_to_string(fixture("interop/MATRIX.md")).unwrap();
    let table = matrix.split_once('\n').unwrap().1.trim();
    let shown = readme
        .split_once("<!-- interop-matrix -->")
        .and_then(|(_, rest)| rest.split_once("<!-- /interop-matrix -->"))
        .map(|(inside, _)| inside.trim())
        .unwrap();
    assert_eq!(
        shown, table,
        "README.md's interop matrix differs from fixtures/interop/MATRIX.md"
    );
}
