//! Fixtures made by the real python-outbox-core 0.1.0 (`scripts/peers/python_outbox_core_fixtures.py`):
//! its `to_message()` JSON reads, and its `CloudEventsFormatter` output is what the
//! python-outbox-core profile writes and reads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use chrono::{DateTime, Utc};
use common::*;
use outbox_cloudevents::{OutboxEvent, Payload, Profile};
use serde_json::Value;

struct Case {
    message: String,
    partition_key: String,
    formatter_source: String,
    cloudevent: Value,
}

fn cases() -> Vec<Case> {
    fixture_lines("python-outbox-core/cloudevents.jsonl")
        .iter()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Case {
                message: v["event"].to_string(),
                partition_key: v["partition_key"].as_str().unwrap().to_owned(),
                formatter_source: v["formatter_source"].as_str().unwrap().to_owned(),
                cloudevent: v["cloudevent"].clone(),
            }
        })
        .collect()
}

/// Python writes a naive datetime without an offset and keeps non-UTC offsets; this crate
/// keeps the instant in UTC and always writes an offset. Same instant, UTC spelling.
fn utc_isoformat(python: &str) -> String {
    let instant =
        if python.len() > 19 && (python.ends_with("+00:00") || python[19..].contains(['+', '-'])) {
            DateTime::parse_from_rfc3339(python)
                .unwrap()
                .with_timezone(&Utc)
        } else {
            python.parse::<chrono::NaiveDateTime>().unwrap().and_utc()
        };
    instant
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
        .replace(".000000+", "+")
}

#[test]
fn to_message_json_reads_and_writes_back() {
    let lines = fixture_lines("python-outbox-core/events.jsonl");
    assert_eq!(lines.len(), 5);
    for line in lines {
        let event = OutboxEvent::<Payload>::from_message_json(line.as_bytes()).unwrap();
        let written = String::from_utf8(event.to_message_json().unwrap()).unwrap();
        let python: Value = serde_json::from_str(&line).unwrap();
        let occurred_at = python["occurred_at"].as_str().unwrap();
        let expected = line.replace(occurred_at, &utc_isoformat(occurred_at));
        assert_eq!(written, expected);
    }
}

#[test]
fn partition_key_override_is_read() {
    for case in cases() {
        let event = OutboxEvent::<Payload>::from_message_json(case.message.as_bytes()).unwrap();
        assert_eq!(event.partition_key(), case.partition_key);
    }
}

#[test]
fn profile_writes_what_cloudevents_formatter_writes() {
    for case in cases() {
        let event = OutboxEvent::<Payload>::from_message_json(case.message.as_bytes()).unwrap();
        let profile = Profile::PythonOutboxCore {
            source: Some(case.formatter_source.clone()),
        };
        let ours: Value =
            serde_json::from_slice(&event.to_wire(&profile).unwrap().to_json()).unwrap();
        let mut expected = case.cloudevent.clone();
        let time = expected["time"].as_str().unwrap().to_owned();
        expected["time"] = utc_isoformat(&time).into();
        let occurred_at = expected["data"]["occurred_at"].as_str().unwrap().to_owned();
        expected["data"]["occurred_at"] = utc_isoformat(&occurred_at).into();
        assert_eq!(ours, expected, "{}", case.message);
    }
}

#[test]
fn profile_reads_cloudevents_formatter_output() {
    for case in cases() {
        let expected = OutboxEvent::<Payload>::from_message_json(case.message.as_bytes()).unwrap();
        let json = case.cloudevent.to_string();
        let event =
            OutboxEvent::<Payload>::from_wire(wire(&json), &Profile::python_outbox_core()).unwrap();
        assert_eq!(event, expected);
    }
}

#[test]
fn formatter_output_maps_to_the_canonical_profile() {
    for case in cases() {
        let event = OutboxEvent::<Payload>::from_message_json(case.message.as_bytes()).unwrap();
        let canonical = event.to_wire(&Profile::Canonical).unwrap();
        assert_eq!(
            canonical.extension("partitionkey").and_then(|v| v.as_str()),
            Some(case.partition_key.as_str())
        );
        let python_event = &case.cloudevent;
        assert_eq!(canonical.id(), python_event["id"]);
        assert_eq!(canonical.ty(), python_event["type"]);
    }
}
