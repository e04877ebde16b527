//! A row that is not a valid outbox event is marked failed at once with the library's error,
//! goes to the dead-letter topic when one is named, and the later rows of its key go on; with
//! `--on-failure block` they are held instead, and other keys go on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::relay::{Db, Relay, Row, Target, ce_id, event_id, status};

/// One bad row in a key's run of good rows: the SQL that inserts it, and the words its
/// `last_error` must contain.
struct Bad {
    insert: String,
    error: &'static str,
}

fn insert_row(db: &Db, id: &str, event_type: &str, key: &str, time: &str) -> String {
    let sql = format!(
        "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         values ('{id}', '{event_type}', '{key}', 'order-service', '{time}', '{{\"n\": 1}}')"
    );
    db.execute(&sql);
    id.to_owned()
}

const TIME: &str = "2024-05-06T07:08:09.123456Z";

/// Key `held` gets: good, BAD, good, BAD, good. Key `other` gets three good rows after them.
/// Returns the event ids of `held` in order and of `other`.
fn write_rows(db: &Db, bad: &[Bad; 2]) -> (Vec<String>, Vec<String>) {
    let mut held = Vec::new();
    held.push(insert_row(db, &event_id(1), "com.example.ok", "held", TIME));
    db.execute(&bad[0].insert);
    held.push(insert_row(db, &event_id(3), "com.example.ok", "held", TIME));
    db.execute(&bad[1].insert);
    held.push(insert_row(db, &event_id(5), "com.example.ok", "held", TIME));
    let other = (10..13)
        .map(|i| insert_row(db, &event_id(i), "com.example.ok", "other", TIME))
        .collect();
    (held, other)
}

fn run_once(db: &Db, target: &Target, extra: &[&str]) -> Relay {
    let mut relay = target.spawn(&db.url(), &[&["--once"], extra].concat());
    relay.wait();
    relay
}

fn failed(rows: &[Row]) -> Vec<&Row> {
    rows.iter().filter(|r| r.failed).collect()
}

/// The event ids on the topic under `key`, in offset order.
fn ids_on(target: &Target, key: &str) -> Vec<String> {
    target
        .messages()
        .iter()
        .filter(|m| m.key_str() == Some(key))
        .map(|m| ce_id(m).to_owned())
        .collect()
}

fn continue_past_bad_rows(db: &Db, bad: [Bad; 2]) {
    let target = Target::new("bad", 1);
    let dead = target.create_topic("dead", 1);
    let (held, other) = write_rows(db, &bad);

    let relay = run_once(db, &target, &["--dead-letter-topic", &dead]);
    assert!(relay.stderr().contains("failed"), "{}", relay.stderr());

    let rows = db.rows();
    let failed = failed(&rows);
    assert_eq!(failed.len(), 2, "{rows:?}");
    for (row, bad) in failed.iter().zip(&bad) {
        assert!(!row.published);
        assert!(
            row.attempts <= 1,
            "an invalid row is failed at once: {row:?}"
        );
        let error = row.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains(bad.error),
            "last_error {error:?} lacks {:?}",
            bad.error
        );
    }
    // Later rows of the key went on, in order; the other key too.
    assert_eq!(ids_on(&target, "held"), held);
    assert_eq!(ids_on(&target, "other"), other);
    assert_eq!(target.messages().len(), 6);
    let s = status(&db.url());
    assert_eq!((s.pending, s.published, s.failed), (0, 6, 2));

    // The dead-letter topic has the two failed rows, each naming its error.
    let dead_letters = target.read(&dead);
    assert_eq!(dead_letters.len(), 2, "{dead_letters:?}");
    for (m, bad) in dead_letters.iter().zip(&bad) {
        let text = format!("{m:?}");
        assert!(
            String::from_utf8_lossy(&m.value.clone().unwrap_or_default()).contains(bad.error)
                || m.headers.iter().any(|(_, v)| {
                    String::from_utf8_lossy(v.as_deref().unwrap_or_default()).contains(bad.error)
                }),
            "dead letter without its error {:?}: {text}",
            bad.error
        );
    }
}

fn block_holds_the_key(db: &Db, bad: [Bad; 2]) {
    let target = Target::new("block", 1);
    let (held, other) = write_rows(db, &bad);

    let relay = run_once(db, &target, &["--on-failure", "block"]);
    let rows = db.rows();
    assert_eq!(failed(&rows).len(), 1, "{rows:?}\n{}", relay.stderr());
    let error = failed(&rows)[0].last_error.as_deref().unwrap_or_default();
    assert!(error.contains(bad[0].error), "{error}");
    // The first row went; the rest of the key waits behind the failed row; the other key went.
    assert_eq!(ids_on(&target, "held"), held[..1]);
    assert_eq!(ids_on(&target, "other"), other);
    assert_eq!(target.messages().len(), 4);
    let s = status(&db.url());
    assert_eq!((s.pending, s.published, s.failed), (3, 4, 1));
    assert!(s.oldest_pending_age_seconds.is_some());
}

fn postgres_bad_rows() -> [Bad; 2] {
    [
        Bad {
            insert: format!(
                "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
                 values ('{}', 'order placed', 'held', 'order-service', '{TIME}', '{{}}')",
                event_id(2)
            ),
            error: "reverse-DNS",
        },
        Bad {
            insert: format!(
                "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
                 values ('{}', 'com.example.ok', 'held', 'not a uri reference', '{TIME}', '{{}}')",
                event_id(4)
            ),
            error: "URI-reference",
        },
    ]
}

fn sqlite_bad_rows() -> [Bad; 2] {
    [
        Bad {
            insert: format!(
                "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
                 values ('not-a-uuid', 'com.example.ok', 'held', 'order-service', '{TIME}', '{{}}')"
            ),
            error: "UUID",
        },
        Bad {
            insert: "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
                 values ('00000000-0000-4000-8000-000000000004', 'com.example.ok', 'held', 'order-service', \
                         'yesterday', '{}')"
                .to_owned(),
            error: "RFC 3339",
        },
    ]
}

#[test]
fn postgres_invalid_rows_fail_at_once_and_the_key_goes_on() {
    let db = Db::postgres();
    let bad = postgres_bad_rows();
    continue_past_bad_rows(&db, bad);
}

#[test]
fn postgres_invalid_row_blocks_its_key_with_on_failure_block() {
    let db = Db::postgres();
    let bad = postgres_bad_rows();
    block_holds_the_key(&db, bad);
}

#[test]
fn sqlite_invalid_rows_fail_at_once_and_the_key_goes_on() {
    let db = Db::sqlite();
    continue_past_bad_rows(&db, sqlite_bad_rows());
}

#[test]
fn sqlite_invalid_row_blocks_its_key_with_on_failure_block() {
    let db = Db::sqlite();
    block_holds_the_key(&db, sqlite_bad_rows());
}

/// `relay run --once --to stdout` with the extra flags; the finished run.
fn run_to_stdout(db: &Db, extra: &[&str]) -> common::Run {
    let url = db.url();
    let args = [
        &[
            "relay",
            "run",
            "--db",
            url.as_str(),
            "--to",
            "stdout",
            "--once",
        ],
        extra,
    ]
    .concat();
    common::outbox_ce(&args, None)
}

#[test]
fn sqlite_an_occurred_at_that_is_not_utf8_stops_neither_status_nor_a_relay_with_metrics() {
    let db = Db::sqlite();
    db.execute(&format!(
        "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         values ('{}', 'com.example.ok', 'k', 'order-service', CAST(X'32303234ff' AS TEXT), '{{}}')",
        event_id(1)
    ));
    insert_row(&db, &event_id(2), "com.example.ok", "k", TIME);
    let run = common::outbox_ce(&["relay", "status", "--db", &db.url()], None);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(json["pending"], 2);
    assert!(json["oldest_pending_age_seconds"].is_null(), "{json}");
    let error = json["oldest_pending_age_error"].as_str().unwrap();
    assert!(
        error.contains("seq 1") && error.contains("column `occurred_at`"),
        "{error}"
    );

    let addr = common::relay::free_addr();
    let run = run_to_stdout(&db, &["--metrics-listen", &addr]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.lines().len(), 1, "the good row is published");
    assert!(run.stdout.contains(&event_id(2)));
    let warnings = run
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("age of the oldest pending row is unknown"))
        .count();
    assert_eq!(warnings, 1, "logged once: {}", run.stderr);
    let s = status(&db.url());
    assert_eq!((s.pending, s.published, s.failed), (0, 1, 1));
}

#[test]
fn relay_run_help_says_a_partition_key_column_is_published_with_a_message_column() {
    let run = common::outbox_ce(&["relay", "run", "--help"], None);
    assert_eq!(run.status, 0);
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("with --column partition_key=COL, COL (when not NULL) is the key rows are ordered by and the key published"),
        "{help}"
    );
}
