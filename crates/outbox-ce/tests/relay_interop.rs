//! python-outbox-core writes the outbox rows itself (a concrete `IOutboxRepository` on the
//! relay's table: `scripts/relay/python_outbox_core_writer.py`), `outbox-ce relay` publishes
//! them to a Kafka broker, and the peers read the messages back:
//! - binary mode, canonical profile: the Python (`cloudevents.core`) and JavaScript CloudEvents
//!   SDKs decode each message to the event Python wrote, attribute by attribute and data;
//! - structured mode, python-outbox-core profile: python-outbox-core's own event classes
//!   validate `data` back into the event Python wrote.
//!
//! Order per key holds on the topic, keys are the events' `get_partition_key()`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, NaiveDateTime, Utc};
use common::ROOT;
use common::relay::{Db, OUTBOX_COLUMNS, Target, check_delivery, status};
use serde_json::{Map, Value, json};
use testkit::Message;

fn setup_peers() {
    let output = Command::new(Path::new(ROOT).join("scripts/peers/setup"))
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scripts/peers/setup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a peer script with `input` on stdin; its stdout lines.
fn run_peer(mut command: Command, input: &str) -> Vec<Value> {
    let mut child = command
        .current_dir(ROOT)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn python(script: &str) -> Command {
    let mut c = Command::new(Path::new(ROOT).join("target/peers/venv/bin/python"));
    c.arg(Path::new(ROOT).join(script));
    c
}

fn node(script: &str) -> Command {
    let mut c = Command::new("node");
    c.arg(Path::new(ROOT).join(script)).env(
        "NODE_PATH",
        Path::new(ROOT).join("target/peers/node/node_modules"),
    );
    c
}

/// The interchange JSON line of a consumed message (all of it UTF-8 here).
fn interchange(m: &Message) -> String {
    let text = |b: &Option<Vec<u8>>| {
        b.as_ref()
            .map(|b| Value::String(String::from_utf8(b.clone()).unwrap()))
            .unwrap_or(Value::Null)
    };
    let headers: Vec<Value> = m
        .headers
        .iter()
        .map(|(name, value)| json!([name, text(value)]))
        .collect();
    json!({"key": text(&m.key), "headers": headers, "value": text(&m.value)}).to_string()
}

/// An instant from an RFC 3339 time or a naive one (UTC), as python-outbox-core writes them.
fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .unwrap_or_else(|_| panic!("{text:?} is not a time"))
}

/// What Python wrote: the event's `to_message()` and `get_partition_key()`.
struct Written {
    message: Map<String, Value>,
    partition_key: String,
}

impl Written {
    fn id(&self) -> &str {
        self.message["event_id"].as_str().unwrap()
    }

    fn payload(&self) -> Value {
        Value::Object(
            self.message
                .iter()
                .filter(|(k, _)| !OUTBOX_COLUMNS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Checks a CloudEvent as a peer SDK decoded it (`data` parsed, or `data_json_text`).
    /// `javascript` allows the JavaScript SDK's two known effects, as the interop suite's
    /// defect table records them: `time` rewritten to milliseconds, and integers beyond 2^53
    /// rounded to the nearest double (cloudevents/sdk-javascript#489).
    fn check_cloudevent(&self, peer: &str, ce: &Value, javascript: bool) {
        let m = &self.message;
        let at = |name: &str| ce.get(name).cloned().unwrap_or(Value::Null);
        let id = self.id();
        assert_eq!(at("id"), m["event_id"], "{peer} {id}: id");
        assert_eq!(at("type"), m["event_type"], "{peer} {id}: type");
        assert_eq!(at("source"), m["source"], "{peer} {id}: source");
        assert_eq!(at("aggregateid"), m["aggregate_id"], "{peer} {id}");
        assert_eq!(at("dataversion"), m["data_version"], "{peer} {id}");
        assert_eq!(at("partitionkey"), json!(self.partition_key), "{peer} {id}");
        assert_eq!(at("correlationid"), m["correlation_id"], "{peer} {id}");
        assert_eq!(at("causationid"), m["causation_id"], "{peer} {id}");
        let written = instant(m["occurred_at"].as_str().unwrap());
        let read = instant(at("time").as_str().unwrap());
        if javascript {
            assert_eq!(
                read.timestamp_millis(),
                written.timestamp_millis(),
                "{peer} {id}: time"
            );
        } else {
            assert_eq!(read, written, "{peer} {id}: time");
        }
        let data = match ce.get("data_json_text") {
            Some(text) => serde_json::from_str(text.as_str().unwrap()).unwrap(),
            None => at("data"),
        };
        if javascript {
            assert_eq!(
                as_doubles(&data),
                as_doubles(&self.payload()),
                "{peer} {id}: data"
            );
        } else {
            assert_eq!(data, self.payload(), "{peer} {id}: data");
        }
    }
}

/// `value` with every number as the double JavaScript's `JSON.parse` makes of it: an integer
/// beyond 2^53 becomes the nearest double.
fn as_doubles(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(as_doubles).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), as_doubles(v)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// `relay run --once` from `db` to `target`'s topic.
fn relay(db: &Db, target: &Target, extra: &[&str]) -> Vec<Message> {
    let mut relay = target.spawn(&db.url(), &[&["--once"], extra].concat());
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    target.messages()
}

#[test]
fn rows_python_outbox_core_wrote_reach_the_python_and_javascript_sdks_intact() {
    setup_peers();
    let db = Db::postgres();
    let written: Vec<Written> = run_peer(
        {
            let mut c = python("scripts/relay/python_outbox_core_writer.py");
            c.args([&db.url(), "3"]);
            c
        },
        "",
    )
    .into_iter()
    .map(|row| Written {
        message: row["event"].as_object().unwrap().clone(),
        partition_key: row["partition_key"].as_str().unwrap().to_owned(),
    })
    .collect();
    assert_eq!(written.len(), 15);
    assert_eq!(status(&db.url()).pending, 15);

    // Binary mode, canonical profile: the CloudEvents SDKs.
    let messages = relay(&db, &Target::new("interop-binary", 3), &[]);
    let delivery = check_delivery(&db.rows(), &messages);
    assert_eq!((delivery.messages, delivery.distinct), (15, 15));
    let input: String = messages.iter().map(|m| interchange(m) + "\n").collect();
    let python_core = run_peer(python("scripts/peers/decode_python_core.py"), &input);
    let javascript = run_peer(node("scripts/peers/decode_js.mjs"), &input);
    assert_eq!(python_core.len(), messages.len());
    assert_eq!(javascript.len(), messages.len());
    for (i, m) in messages.iter().enumerate() {
        let id = m.header("ce_id").unwrap();
        let w = written.iter().find(|w| w.id() == id).unwrap();
        assert_eq!(m.key_str(), Some(w.partition_key.as_str()), "{id}: key");
        let ok = |peer: &str, out: &Value| {
            out.get("ok")
                .cloned()
                .unwrap_or_else(|| panic!("{peer} could not read {id}: {out}"))
        };
        w.check_cloudevent("python", &ok("python", &python_core[i]), false);
        w.check_cloudevent("javascript", &ok("javascript", &javascript[i]), true);
    }

    // Structured mode, python-outbox-core profile: python-outbox-core's own classes.
    db.execute("update outbox_events set published_at = null");
    let messages = relay(
        &db,
        &Target::new("interop-pyoc", 3),
        &["--mode", "structured", "--profile", "python-outbox-core"],
    );
    assert_eq!(messages.len(), 15);
    let input: String = messages.iter().map(|m| interchange(m) + "\n").collect();
    let read = run_peer(python("scripts/peers/decode_python_outbox_core.py"), &input);
    for (m, out) in messages.iter().zip(&read) {
        let got = out
            .get("ok")
            .unwrap_or_else(|| panic!("python-outbox-core could not read {m:?}: {out}"));
        let event = got["event"].as_object().unwrap();
        let w = written
            .iter()
            .find(|w| w.message["event_id"] == event["event_id"])
            .unwrap();
        assert_eq!(m.key_str(), Some(w.partition_key.as_str()));
        assert_eq!(got["partition_key"], json!(w.partition_key));
        for (name, value) in &w.message {
            if name == "occurred_at" {
                let a = instant(value.as_str().unwrap());
                let b = instant(event[name].as_str().unwrap());
                assert_eq!(a, b, "{}: occurred_at", w.id());
            } else {
                assert_eq!(event.get(name), Some(value), "{}: {name}", w.id());
            }
        }
        assert_eq!(event.len(), w.message.len(), "{}", w.id());
    }
}

/// `--mode outbox-json` wrote a naive `occurred_at` (`2025-04-01T00:00:00`, as Python's
/// `datetime.utcnow()` gives it) as `2025-04-01T00:00:00+00:00`, and every other offset in
/// UTC, where python-outbox-core's own publisher, reading the same SQLite rows, sends the time
/// as pydantic reads it from the text: naive stays naive, an offset stays as written. The
/// relay now sends the same `to_message()` object as that publisher, run here for real on the
/// same file (`scripts/relay/python_outbox_core_sqlite_publisher.py`).
#[test]
fn sqlite_outbox_json_sends_the_naive_time_python_outbox_core_sends() {
    setup_peers();
    let db = Db::sqlite();
    let times = [
        "2025-04-01T00:00:00",
        "2025-04-01 00:00:00.5",
        "2025-04-01T00:00:00.123456",
        "2025-04-01T00:00:00Z",
        "2025-04-01T02:00:00+02:00",
        "2025-04-01T00:00:00-00:00",
        "2025-03-31T14:15:00.250-09:45",
    ];
    let mut sql = String::new();
    for (i, time) in times.iter().enumerate() {
        let key = if i == 1 { "'tenant-1'" } else { "NULL" };
        sql.push_str(&format!(
            "insert into outbox_events (event_id, event_type, aggregate_id, occurred_at, source, \
             partition_key, payload) values ('3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f{i:02}', \
             'com.example.order.placed', 'order-{i}', '{time}', 'order-service', {key}, \
             '{{\"total\": 12.5, \"n\": {i}}}');"
        ));
    }
    db.execute(&sql);
    let Db::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let python = run_peer(
        {
            let mut c = python("scripts/relay/python_outbox_core_sqlite_publisher.py");
            c.arg(path);
            c
        },
        "",
    );
    assert_eq!(python.len(), times.len());

    let run = common::outbox_ce(
        &[
            "relay",
            "run",
            "--db",
            &db.url(),
            "--to",
            "stdout",
            "--once",
            "--mode",
            "outbox-json",
        ],
        None,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let relay: Vec<Value> = run
        .lines()
        .iter()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            serde_json::from_str(record["value"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(relay.len(), times.len(), "{}", run.stdout);
    for ((time, ours), theirs) in times.iter().zip(&relay).zip(&python) {
        assert_eq!(ours["occurred_at"], theirs["occurred_at"], "{time}");
        assert_eq!(ours, theirs, "{time}");
    }
    assert_eq!(relay[0]["occurred_at"], "2025-04-01T00:00:00");
}
