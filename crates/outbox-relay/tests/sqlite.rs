//! The relay on a real SQLite file, to standard output (a buffer): every row out in order and
//! marked, each mode and profile as `outbox-ce encode` writes it, trace context, invalid rows,
//! column mapping and the whole-message column.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile};
use outbox_relay::{Destination, OnFailure, OutputMode, Table};

async fn init(lite: &Lite, table: &Table) {
    outbox_relay::init(&lite.database(), table).await.unwrap();
}

async fn status(lite: &Lite, table: &Table) -> (u64, u64, u64) {
    let s = outbox_relay::status(&lite.database(), table).await.unwrap();
    (s.pending, s.published, s.failed)
}

fn ids(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| header(l, "ce_id").unwrap().to_owned())
        .collect()
}

/// For each key, its ids in the order given.
fn per_key(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for (key, id) in pairs {
        match keys.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(id),
            None => keys.push((key, vec![id])),
        }
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn every_row_goes_out_once_in_key_order_and_is_marked() {
    let lite = Lite::new();
    let table = Table::default();
    init(&lite, &table).await;
    let rows: Vec<NewRow> = (1..=300)
        .map(|n| NewRow::new(n, &format!("order-{}", n % 7)))
        .collect();
    insert(&lite.path, &rows);
    assert_eq!(status(&lite, &table).await, (300, 0, 0));

    let mut options = options(lite.database(), table.clone());
    options.engine.config.batch_size = 50;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.published, 300);
    let lines = out.lines();
    let mut got = ids(&lines);
    assert_eq!(got.len(), 300);
    let sent = per_key(lines.iter().map(|l| {
        (
            l["key"].as_str().unwrap().to_owned(),
            header(l, "ce_id").unwrap().to_owned(),
        )
    }));
    let written = per_key(
        rows.iter()
            .map(|r| (r.aggregate_id.clone(), r.event_id.clone())),
    );
    assert_eq!(sent, written, "each key in seq order");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 300, "no row twice");
    assert_eq!(status(&lite, &table).await, (0, 300, 0));

    // Nothing left: a second run publishes nothing.
    let (summary, out) = run_to_buffer(common::options(lite.database(), table.clone())).await;
    assert_eq!(summary.published, 0);
    assert!(out.raw_lines().is_empty());
}

#[tokio::test]
async fn each_mode_and_profile_writes_what_encode_writes() {
    let rows: Vec<NewRow> = (1..=4)
        .map(|n| {
            let mut r = NewRow::new(n, &format!("cart-{}", n % 2));
            if n == 3 {
                r.partition_key = Some("tenant-9".into());
            }
            r
        })
        .collect();
    for (mode, profile) in [
        (OutputMode::Binary, Profile::Canonical),
        (OutputMode::Structured, Profile::Canonical),
        (OutputMode::Binary, Profile::python_outbox_core()),
        (OutputMode::Structured, Profile::python_outbox_core()),
        (OutputMode::OutboxJson, Profile::Canonical),
    ] {
        let lite = Lite::new();
        init(&lite, &Table::default()).await;
        insert(&lite.path, &rows);
        let mut options = options(lite.database(), Table::default());
        options.mode = mode;
        options.profile = profile.clone();
        let (_, out) = run_to_buffer(options).await;
        let mut got = out.raw_lines();
        let mut expected: Vec<String> = rows
            .iter()
            .map(|r| {
                // The event of the row, its payload text as stored (the relay keeps it byte
                // for byte; a to_message() line would be read member by member).
                let payload = Payload::from_json(r.payload.clone()).unwrap();
                let event =
                    OutboxEvent::<Payload>::from_message_json(to_message_line(r).as_bytes())
                        .unwrap()
                        .map_payload(|_| payload);
                let message = match mode {
                    OutputMode::Binary => Encoder::new(Mode::Binary)
                        .profile(profile.clone())
                        .encode(&event)
                        .unwrap(),
                    OutputMode::Structured => Encoder::new(Mode::Structured)
                        .profile(profile.clone())
                        .encode(&event)
                        .unwrap(),
                    OutputMode::OutboxJson => outbox_cloudevents::Message {
                        key: Some(event.partition_key().as_bytes().to_vec()),
                        headers: Vec::new(),
                        value: Some(event.to_message_json().unwrap()),
                    },
                };
                String::from_utf8(Record::from(message).to_json()).unwrap()
            })
            .collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{mode} {profile:?}");
        if mode == OutputMode::OutboxJson {
            let lines = out.lines();
            let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
            assert!(keys.contains(&"tenant-9"));
            assert!(lines.iter().all(|l| l["headers"] == serde_json::json!([])));
        }
    }
}

#[tokio::test]
async fn trace_columns_become_the_distributed_tracing_attributes() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let mut row = NewRow::new(1, "a");
    row.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    row.tracestate = Some("rojo=00f067aa0ba902b7".into());
    insert(&lite.path, &[row, NewRow::new(2, "a")]);
    let (_, out) = run_to_buffer(options(lite.database(), Table::default())).await;
    let lines = out.lines();
    assert_eq!(
        header(&lines[0], "ce_traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(
        header(&lines[0], "ce_tracestate"),
        Some("rojo=00f067aa0ba902b7")
    );
    assert_eq!(header(&lines[1], "ce_traceparent"), None);

    // Structured mode: top-level extension members.
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let mut row = NewRow::new(1, "a");
    row.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    insert(&lite.path, &[row]);
    let mut options = options(lite.database(), Table::default());
    options.mode = OutputMode::Structured;
    let (_, out) = run_to_buffer(options).await;
    let value: serde_json::Value =
        serde_json::from_str(out.lines()[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        value["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}

fn bad_rows() -> Vec<(NewRow, &'static str)> {
    let mut bad_type = NewRow::new(2, "k");
    bad_type.event_type = "not a type!".into();
    let mut bad_uuid = NewRow::new(3, "k");
    bad_uuid.event_id = "not-a-uuid".into();
    let mut bad_time = NewRow::new(4, "k");
    bad_time.occurred_at = "yesterday at noon".into();
    vec![
        (bad_type, "event_type"),
        (bad_uuid, "event_id"),
        (bad_time, "occurred_at"),
    ]
}

#[tokio::test]
async fn invalid_rows_fail_at_once_and_their_key_goes_on() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let bad = bad_rows();
    let mut rows = vec![NewRow::new(1, "k")];
    rows.extend(bad.iter().map(|(r, _)| r.clone()));
    rows.push(NewRow::new(5, "k"));
    rows.push(NewRow::new(6, "other"));
    insert(&lite.path, &rows);
    let mut options = options(lite.database(), Table::default());
    options.destination = Destination::Stdout(Some("dead".into()));
    options.engine.dead_letter = true;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (3, 3));
    let lines = out.lines();
    let (dead, main): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l["topic"] == "dead");
    let main_ids: Vec<&str> = main.iter().map(|l| header(l, "ce_id").unwrap()).collect();
    assert!(main_ids.contains(&uuid(6).as_str()));
    let k: Vec<&str> = main
        .iter()
        .filter(|l| l["key"] == "k")
        .map(|l| header(l, "ce_id").unwrap())
        .collect();
    assert_eq!(k, [uuid(1), uuid(5)], "the key went on past its bad rows");
    // Each bad row: marked failed at once with the library's error, and dead-lettered.
    let c = lite.connection();
    for (row, field) in &bad {
        let (attempts, error, failed): (i64, String, Option<String>) = c
            .query_row(
                "SELECT attempts, last_error, failed_at FROM outbox_events WHERE event_id = ?1",
                [&row.event_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(attempts, 1);
        assert!(error.contains(field), "{error}");
        assert!(failed.is_some());
        let letter = dead
            .iter()
            .find(|l| {
                let value: serde_json::Value =
                    serde_json::from_str(l["value"].as_str().unwrap()).unwrap();
                value["event_id"] == row.event_id.as_str()
            })
            .expect("dead letter");
        assert_eq!(header(letter, "outbox-error"), Some(error.as_str()));
        assert_eq!(letter["key"], "k");
    }
    assert_eq!(status(&lite, &Table::default()).await, (0, 3, 3));
}

#[tokio::test]
async fn on_failure_block_holds_the_key() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let (bad, _) = bad_rows().remove(0);
    insert(
        &lite.path,
        &[
            NewRow::new(1, "k"),
            bad.clone(),
            NewRow::new(5, "k"),
            NewRow::new(6, "other"),
        ],
    );
    let mut options = options(lite.database(), Table::default());
    options.engine.on_failure = OnFailure::Block;
    let (summary, out) = run_to_buffer(options.clone()).await;
    assert_eq!((summary.published, summary.failed), (2, 1));
    let got = ids(&out.lines());
    assert!(got.contains(&uuid(1)) && got.contains(&uuid(6)));
    assert!(!got.contains(&uuid(5)), "held behind the failed row");
    assert_eq!(status(&lite, &Table::default()).await, (1, 2, 1));
    // Held again on the next run; once the failed row is cleared (and fixed), the key goes on.
    let (summary, _) = run_to_buffer(options.clone()).await;
    assert_eq!(summary.published, 0);
    lite.connection()
        .execute(
            "UPDATE outbox_events SET failed_at = NULL, event_type = 'com.example.fixed' WHERE event_id = ?1",
            [&bad.event_id],
        )
        .unwrap();
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.published, 2);
    assert_eq!(ids(&out.lines()), [uuid(2), uuid(5)]);
}

#[tokio::test]
async fn an_existing_table_is_mapped_by_column() {
    let lite = Lite::new();
    let mut table = Table::new("legacy_outbox").unwrap();
    table
        .map_all("event_id=id,event_type=kind,occurred_at=created_at,payload=body,traceparent=,tracestate=")
        .unwrap();
    let ddl = table.ddl(outbox_relay::Dialect::Sqlite);
    assert!(ddl.contains("\"kind\" text not null"), "{ddl}");
    assert!(!ddl.contains("traceparent"), "{ddl}");
    init(&lite, &table).await;
    lite.connection()
        .execute(
            "INSERT INTO legacy_outbox (id, kind, aggregate_id, source, created_at, body) \
             VALUES (?1, 'com.example.legacy', 'acct-1', 'ledger', '2024-05-01T10:00:00+02:00', '{\"x\":1}')",
            [uuid(7)],
        )
        .unwrap();
    let (summary, out) = run_to_buffer(options(lite.database(), table.clone())).await;
    assert_eq!(summary.published, 1);
    let line = &out.lines()[0];
    assert_eq!(header(line, "ce_type"), Some("com.example.legacy"));
    assert_eq!(header(line, "ce_time"), Some("2024-05-01T08:00:00Z"));
    assert_eq!(line["value"], r#"{"x":1}"#);
    assert_eq!(status(&lite, &table).await, (0, 1, 0));
}

#[tokio::test]
async fn a_whole_message_column_is_read_as_to_message() {
    let lite = Lite::new();
    let table = Table::new("py_outbox")
        .unwrap()
        .with_message_column("message")
        .unwrap();
    init(&lite, &table).await;
    let rows: Vec<NewRow> = (1..=3)
        .map(|n| {
            let mut r = NewRow::new(n, "inv-1");
            if n == 2 {
                r.partition_key = Some("tenant-2".into());
            }
            r
        })
        .collect();
    let c = lite.connection();
    for r in &rows {
        c.execute(
            "INSERT INTO py_outbox (message) VALUES (?1)",
            [to_message_line(r)],
        )
        .unwrap();
    }
    c.execute("INSERT INTO py_outbox (message) VALUES ('{not json')", [])
        .unwrap();
    let mut options = options(lite.database(), table.clone());
    options.mode = OutputMode::OutboxJson;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (3, 1));
    let lines = out.lines();
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"tenant-2") && keys.contains(&"inv-1"));
    for r in &rows {
        let expected = OutboxEvent::<Payload>::from_message_json(to_message_line(r).as_bytes())
            .unwrap()
            .to_message_json()
            .unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l["value"].as_str().unwrap().as_bytes() == expected.as_slice()),
            "{}",
            String::from_utf8_lossy(&expected)
        );
    }
    assert_eq!(status(&lite, &table).await, (0, 3, 1));
}

#[tokio::test]
async fn published_rows_can_be_deleted_at_once() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    insert(&lite.path, &[NewRow::new(1, "a"), NewRow::new(2, "b")]);
    let mut options = options(lite.database(), Table::default());
    options.engine.delete_published_after = Some(std::time::Duration::ZERO);
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.published, 2);
    assert_eq!(out.raw_lines().len(), 2);
    let left: i64 = lite
        .connection()
        .query_row("SELECT count(*) FROM outbox_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}
