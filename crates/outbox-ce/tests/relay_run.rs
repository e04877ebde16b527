//! Running the relay: `--once` publishes what is pending and exits; SIGTERM in the middle of a
//! run stops claiming, marks every acknowledged message and exits 0, so nothing is published
//! twice afterwards; `--to stdout` writes exactly what `encode` writes for the same events.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::relay::{
    Db, OUTBOX_COLUMNS, Relay, Target, ce_id, check_delivery, status, wait_for, writer,
};
use common::{EVENTS, events, outbox_ce};
use outbox_cloudevents::{OutboxEvent, Payload};
use serde_json::{Map, Value};

const KEYS: u64 = 100;

fn once_publishes_what_is_pending_and_exits(db: &Db) {
    let target = Target::new("once", 3);
    let url = db.url();
    db.insert(0..2000, KEYS);
    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (2000, 0, 0));
    assert!(s.oldest_pending_age_seconds.is_some_and(|a| a >= 0.0));

    let mut relay = target.spawn(&url, &["--once"]);
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    // It exited: rows written now stay pending.
    db.insert(2000..2010, KEYS);
    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (10, 2000, 0));
    let delivery = check_delivery(&db.rows(), &target.messages());
    assert_eq!((delivery.messages, delivery.distinct), (2000, 2000));
}

#[test]
fn postgres_once_publishes_what_is_pending_and_exits() {
    once_publishes_what_is_pending_and_exits(&Db::postgres());
}

#[test]
fn sqlite_once_publishes_what_is_pending_and_exits() {
    once_publishes_what_is_pending_and_exits(&Db::sqlite());
}

#[test]
fn sigterm_mid_run_marks_what_is_in_flight_and_exits_0() {
    let db = Db::postgres();
    // Slow acknowledgements: there is always something in flight (the mock cluster holds
    // every answer back, which Kafka cannot be made to do).
    let target = Target::mock("sigterm", 3).slow(Duration::from_millis(100));
    let url = db.url();
    db.insert(0..2000, KEYS);
    let mut relay = target.spawn(&url, &[]);
    let stop = AtomicBool::new(false);
    let inserted = std::thread::scope(|scope| {
        let writer = writer(scope, &db, 2000, 20, Duration::from_millis(50), KEYS, &stop);
        wait_for("some rows published", || db.published() >= 300);
        relay.terminate();
        let code = relay.wait();
        stop.store(true, Ordering::SeqCst);
        assert_eq!(code, 0, "{}", relay.stderr());
        writer.join().unwrap()
    });

    // Every message on the topic is marked published: nothing acknowledged was left unmarked.
    let rows = db.rows();
    let on_topic: HashSet<String> = target
        .messages()
        .iter()
        .map(|m| ce_id(m).to_owned())
        .collect();
    let published: HashSet<String> = rows
        .iter()
        .filter(|r| r.published)
        .map(|r| r.event_id.clone())
        .collect();
    assert_eq!(on_topic, published);
    assert!(
        (published.len() as u64) < inserted,
        "SIGTERM came after the end of the work"
    );

    // A second run publishes the rest, and nothing twice.
    let mut relay = target.spawn(&url, &["--once"]);
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    let delivery = check_delivery(&db.rows(), &target.messages());
    assert_eq!(delivery.distinct as u64, inserted);
    assert_eq!(delivery.duplicates, 0);
}

/// The outbox columns of a `to_message()` object, in table order, and the payload: its other
/// members, in their order and spelling, as the library reads them.
fn columns(event: &str) -> (Vec<(&'static str, Option<String>)>, String) {
    let object: Map<String, Value> = serde_json::from_str(event).unwrap();
    let cols = OUTBOX_COLUMNS
        .into_iter()
        .map(|name| {
            let value = object.get(name).and_then(|v| v.as_str().map(str::to_owned));
            (name, value)
        })
        .collect();
    let read = OutboxEvent::<Payload>::from_message_json(event.as_bytes()).unwrap();
    (cols, read.payload().as_json().unwrap().to_owned())
}

fn sql_text(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("'{}'", v.replace('\'', "''")),
        None => "null".to_owned(),
    }
}

fn insert_fixture_events(db: &Db) {
    for event in events() {
        let (cols, payload) = columns(&event);
        let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
        let values: Vec<String> = cols.iter().map(|c| sql_text(&c.1)).collect();
        // Naive times are UTC, as the library reads them.
        let prefix = if matches!(db, Db::Postgres(_)) {
            "set timezone = 'UTC'; "
        } else {
            ""
        };
        db.execute(&format!(
            "{prefix}insert into outbox_events ({}, payload) values ({}, {})",
            names.join(", "),
            values.join(", "),
            sql_text(&Some(payload))
        ));
    }
}

fn to_stdout_writes_what_encode_writes(db: &Db, mode: &str) {
    insert_fixture_events(db);
    let url = db.url();
    let mut relay = Relay::spawn(
        &[
            "relay", "run", "--db", &url, "--to", "stdout", "--mode", mode, "--once",
        ],
        &[],
    );
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    let encoded = outbox_ce(&["encode", "--mode", mode, EVENTS], None);
    assert_eq!(encoded.status, 0, "{}", encoded.stderr);
    assert_eq!(relay.stdout(), encoded.stdout);
    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (0, 5, 0));
}

#[test]
fn postgres_to_stdout_writes_what_encode_writes() {
    to_stdout_writes_what_encode_writes(&Db::postgres(), "binary");
}

#[test]
fn sqlite_to_stdout_writes_what_encode_writes_in_both_modes() {
    to_stdout_writes_what_encode_writes(&Db::sqlite(), "binary");
    let db = Db::sqlite();
    to_stdout_writes_what_encode_writes(&db, "structured");
}
