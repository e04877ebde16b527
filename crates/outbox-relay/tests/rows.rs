//! Rows the relay cannot read whole fail, naming the column, instead of going out altered or
//! with an empty key: text that is not UTF-8 (SQLite), a row whose key columns are all `NULL`
//! in a mapped table, an `attempts` that is no integer, a `NULL` message column (SQLite and
//! PostgreSQL). Hostile values elsewhere: every `seq` is claimed (zero, negative, the extremes),
//! `attempts` saturates, the backlog age reads times as the publisher does and never stops on
//! one it cannot read, the partition key column of a message table is the key published, and
//! dead letters keep bytes that are not UTF-8.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use outbox_relay::{Destination, Table};

/// `(attempts, last_error, failed_at is set)` of the row with `event_id`.
fn failure(lite: &Lite, table: &str, event_id: &str) -> (i64, Option<String>, bool) {
    lite.connection()
        .query_row(
            &format!(
                "SELECT attempts, last_error, failed_at IS NOT NULL FROM {table} \
                 WHERE event_id = ?1"
            ),
            [event_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn text_that_is_not_utf8_fails_its_row_naming_the_column() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    insert(&lite.path, &[NewRow::new(1, "k")]);
    // Then a row whose payload is text with a byte that is not UTF-8.
    lite.connection()
        .execute(
            "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, \
             occurred_at, payload) VALUES (?1, 'com.example.order.placed', 'k', 'svc', \
             '2024-05-01T10:00:00Z', CAST(X'7b2261223a22ff227d' AS TEXT))",
            [uuid(2)],
        )
        .unwrap();
    insert(&lite.path, &[NewRow::new(3, "k")]);
    let (summary, out) = run_to_buffer(options(lite.database(), Table::default())).await;
    assert_eq!((summary.published, summary.failed), (2, 1));
    let ids: Vec<String> = out
        .lines()
        .iter()
        .map(|l| header(l, "ce_id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, [uuid(1), uuid(3)], "the key went on");
    let (attempts, error, failed) = failure(&lite, "outbox_events", &uuid(2));
    let error = error.unwrap();
    assert!(error.contains("column `payload`"), "{error}");
    assert!(error.contains("UTF-8"), "{error}");
    assert_eq!((attempts, failed), (1, true));
}

#[tokio::test]
async fn a_row_without_a_key_fails_naming_the_key_columns() {
    let lite = Lite::new();
    // A table of its own whose aggregate id (here `account`) may be NULL.
    let mut table = Table::new("legacy").unwrap();
    table
        .map_all("aggregate_id=account,partition_key=tenant")
        .unwrap();
    let ddl = table
        .ddl(outbox_relay::Dialect::Sqlite)
        .replace("\"account\" text not null", "\"account\" text");
    lite.connection().execute_batch(&ddl).unwrap();
    let c = lite.connection();
    for (n, account, tenant) in [(1, Some("a"), None), (2, None, None), (3, None, Some("t"))] {
        c.execute(
            "INSERT INTO legacy (event_id, event_type, account, tenant, source, occurred_at, \
             payload) VALUES (?1, 'com.example.x', ?2, ?3, 'svc', '2024-05-01T10:00:00Z', '{}')",
            testkit::rusqlite::params![uuid(n), account, tenant],
        )
        .unwrap();
    }
    let mut options = options(lite.database(), table.clone());
    options.destination = Destination::Stdout(Some("dead".into()));
    options.engine.dead_letter = true;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (1, 2));
    let lines = out.lines();
    let main: Vec<_> = lines.iter().filter(|l| l["topic"] != "dead").collect();
    assert_eq!(main.len(), 1);
    assert_eq!(main[0]["key"], "a");
    // No key: failed naming both columns, and dead-lettered without a key (not an empty one).
    let (_, error, failed) = failure(&lite, "legacy", &uuid(2));
    let error = error.unwrap();
    assert!(
        error.contains("column `tenant`") && error.contains("column `account`"),
        "{error}"
    );
    assert!(failed);
    let letter = lines
        .iter()
        .find(|l| l["topic"] == "dead" && l["value"].as_str().unwrap().contains(&uuid(2)))
        .expect("dead letter");
    assert!(letter["key"].is_null(), "{letter}");
    // A key but no aggregate id: the library's error, keyed by the tenant.
    let (_, error, failed) = failure(&lite, "legacy", &uuid(3));
    assert!(error.unwrap().contains("aggregate_id"));
    assert!(failed);
}

#[tokio::test]
async fn postgres_rows_without_a_key_fail_naming_the_key_columns() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    let mut table = Table::new("legacy").unwrap();
    table.map_all("aggregate_id=account").unwrap();
    let ddl = table
        .ddl(outbox_relay::Dialect::Postgres)
        .replace("\"account\" text not null", "\"account\" text");
    pg.psql(&ddl).unwrap();
    pg.psql(&format!(
        "INSERT INTO legacy (event_id, event_type, account, source, occurred_at, payload) VALUES \
         ('{}', 'com.example.x', 'a', 'svc', now(), '{{}}'), \
         ('{}', 'com.example.x', NULL, 'svc', now(), '{{}}')",
        uuid(1),
        uuid(2)
    ))
    .unwrap();
    let (summary, out) = run_to_buffer(options(db, table)).await;
    assert_eq!((summary.published, summary.failed), (1, 1));
    assert_eq!(out.lines()[0]["key"], "a");
    let error = pg
        .psql(&format!(
            "SELECT last_error FROM legacy WHERE event_id = '{}' AND failed_at IS NOT NULL",
            uuid(2)
        ))
        .unwrap();
    assert!(
        error.contains("column `partition_key`") && error.contains("column `account`"),
        "{error}"
    );
}

/// Inserts event `n` of key `k` into `table` of a SQLite file, with `extra` columns
/// (`("seq", "0")`, say) given as SQL.
fn insert_with(lite: &Lite, table: &str, n: u32, extra: &[(&str, &str)]) {
    let (mut columns, mut values) = (String::new(), String::new());
    for (column, value) in extra {
        columns.push_str(&format!(", {column}"));
        values.push_str(&format!(", {value}"));
    }
    lite.connection()
        .execute(
            &format!(
                "INSERT INTO {table} (event_id, event_type, aggregate_id, source, occurred_at, \
                 payload{columns}) VALUES (?1, 'com.example.order.placed', 'k', 'svc', \
                 '2024-05-01T10:00:00Z', '{{}}'{values})"
            ),
            [uuid(n)],
        )
        .unwrap();
}

fn ids(out: &SharedBuf) -> Vec<String> {
    out.lines()
        .iter()
        .filter(|l| l["topic"].is_null())
        .map(|l| header(l, "ce_id").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sqlite_rows_with_seq_zero_or_negative_are_claimed() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    let seqs = [i64::MIN, -7, 0, 1, i64::MAX];
    for (n, seq) in (1..).zip(seqs) {
        insert_with(&lite, "outbox_events", n, &[("seq", &seq.to_string())]);
    }
    let (summary, out) = run_to_buffer(options(lite.database(), Table::default())).await;
    assert_eq!(summary.published, 5);
    assert_eq!(
        ids(&out),
        (1..=5).map(uuid).collect::<Vec<_>>(),
        "seq order"
    );
    let status = outbox_relay::status(&lite.database(), &Table::default())
        .await
        .unwrap();
    assert_eq!((status.pending, status.published), (0, 5));
}

#[tokio::test]
async fn postgres_rows_with_seq_zero_or_negative_are_claimed() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    let seqs = [i64::MIN, -7, 0, 1, i64::MAX];
    for (n, seq) in (1..).zip(seqs) {
        pg.psql(&format!(
            "INSERT INTO outbox_events (seq, event_id, event_type, aggregate_id, source, \
             occurred_at, payload) VALUES ({seq}, '{}', 'com.example.x', 'k', 'svc', now(), '{{}}')",
            uuid(n)
        ))
        .unwrap();
    }
    let (summary, out) = run_to_buffer(options(db.clone(), Table::default())).await;
    assert_eq!(summary.published, 5);
    assert_eq!(
        ids(&out),
        (1..=5).map(uuid).collect::<Vec<_>>(),
        "seq order"
    );
    let status = outbox_relay::status(&db, &Table::default()).await.unwrap();
    assert_eq!((status.pending, status.published), (0, 5));
}

#[tokio::test]
async fn sqlite_a_bad_attempts_value_fails_only_its_row() {
    let lite = Lite::new();
    let ddl = Table::default().ddl(outbox_relay::Dialect::Sqlite).replace(
        "\"attempts\" integer not null default 0",
        "\"attempts\" integer default 0",
    );
    lite.connection().execute_batch(&ddl).unwrap();
    let bad = [
        ("'abc'", "the TEXT `abc`"),
        ("NULL", "NULL"),
        ("2.5", "the REAL 2.5"),
    ];
    insert_with(&lite, "outbox_events", 1, &[]);
    for (n, (value, _)) in (2..).zip(bad) {
        insert_with(&lite, "outbox_events", n, &[("attempts", value)]);
    }
    insert_with(&lite, "outbox_events", 5, &[]);
    let mut options = options(lite.database(), Table::default());
    options.destination = Destination::Stdout(Some("dead".into()));
    options.engine.dead_letter = true;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (2, 3));
    assert_eq!(ids(&out), [uuid(1), uuid(5)], "the others went on");
    let letters: Vec<_> = out
        .lines()
        .into_iter()
        .filter(|l| l["topic"] == "dead")
        .collect();
    for (n, (_, held)) in (2..).zip(bad) {
        let (attempts, error, failed) = failure(&lite, "outbox_events", &uuid(n));
        let error = error.unwrap();
        assert!(
            error.contains("column `attempts`") && error.contains(held),
            "{error}"
        );
        assert_eq!((attempts, failed), (1, true), "counted again from 1");
        let seq = n.to_string();
        let letter = letters
            .iter()
            .find(|l| header(l, "outbox-seq") == Some(seq.as_str()))
            .expect("dead letter");
        assert_eq!(header(letter, "outbox-error"), Some(error.as_str()));
    }
}

#[tokio::test]
async fn postgres_a_bad_attempts_value_fails_only_its_row() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    let ddl = Table::default()
        .ddl(outbox_relay::Dialect::Postgres)
        .replace(
            "\"attempts\" integer not null default 0",
            "\"attempts\" integer default 0",
        );
    pg.psql(&ddl).unwrap();
    for (n, attempts) in [(1, "0"), (2, "NULL"), (3, "0")] {
        pg.psql(&format!(
            "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, \
             occurred_at, payload, attempts) VALUES ('{}', 'com.example.x', 'k', 'svc', now(), \
             '{{}}', {attempts})",
            uuid(n)
        ))
        .unwrap();
    }
    let (summary, out) = run_to_buffer(options(db, Table::default())).await;
    assert_eq!((summary.published, summary.failed), (2, 1));
    assert_eq!(ids(&out), [uuid(1), uuid(3)], "the others went on");
    let row = pg
        .psql(&format!(
            "SELECT attempts, last_error FROM outbox_events WHERE event_id = '{}' \
             AND failed_at IS NOT NULL",
            uuid(2)
        ))
        .unwrap();
    assert!(
        row.contains("column `attempts` holds NULL") && row.starts_with('1'),
        "{row}"
    );
}

#[tokio::test]
async fn sqlite_attempts_at_i64_max_saturates() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    // A row that fails (its event type is no event type) with a count at the largest value.
    lite.connection()
        .execute(
            "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, \
             occurred_at, payload, attempts) VALUES (?1, 'not a type', 'k', 'svc', \
             '2024-05-01T10:00:00Z', '{}', 9223372036854775807)",
            [uuid(1)],
        )
        .unwrap();
    let (summary, _) = run_to_buffer(options(lite.database(), Table::default())).await;
    assert_eq!(summary.failed, 1);
    let (kind, attempts): (String, i64) = lite
        .connection()
        .query_row(
            "SELECT typeof(attempts), attempts FROM outbox_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), attempts), ("integer", i64::MAX));
}

#[tokio::test]
async fn postgres_attempts_at_the_column_maximum_saturates() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    // `attempts` is an `integer`: 2147483647 is its largest value.
    pg.psql(&format!(
        "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, occurred_at, \
         payload, attempts) VALUES ('{}', 'not a type', 'k', 'svc', now(), '{{}}', 2147483647)",
        uuid(1)
    ))
    .unwrap();
    let (summary, _) = run_to_buffer(options(db, Table::default())).await;
    assert_eq!(summary.failed, 1);
    let row = pg
        .psql("SELECT attempts FROM outbox_events WHERE failed_at IS NOT NULL")
        .unwrap();
    assert_eq!(row.trim(), "2147483647");
}

#[tokio::test]
async fn sqlite_an_occurred_at_that_is_not_utf8_does_not_stop_the_backlog_check() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    insert_with(&lite, "outbox_events", 1, &[]);
    lite.connection()
        .execute(
            "UPDATE outbox_events SET occurred_at = CAST(X'32303234ff' AS TEXT)",
            [],
        )
        .unwrap();
    insert_with(&lite, "outbox_events", 2, &[]);
    insert_with(&lite, "outbox_events", 3, &[]);
    // `relay status` reads the file and says why the age is unknown.
    let status = outbox_relay::status(&lite.database(), &Table::default())
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
    assert_eq!(json["pending"], 3);
    assert!(json["oldest_pending_age_seconds"].is_null(), "{json}");
    let error = json["oldest_pending_age_error"].as_str().unwrap();
    assert!(
        error.contains("seq 1")
            && error.contains("column `occurred_at`")
            && error.contains("UTF-8"),
        "{error}"
    );
    // The relay with the backlog tracked (as with --metrics-listen) fails that row and goes on.
    let mut options = options(lite.database(), Table::default());
    options.engine.track_backlog = true;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (2, 1));
    assert_eq!(ids(&out), [uuid(2), uuid(3)]);
    let (_, error, failed) = failure(&lite, "outbox_events", &uuid(1));
    assert!(error.unwrap().contains("column `occurred_at`") && failed);
}

#[tokio::test]
async fn sqlite_backlog_age_reads_current_timestamp_format() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    insert_with(&lite, "outbox_events", 1, &[]);
    lite.connection()
        .execute(
            "UPDATE outbox_events SET occurred_at = '2024-05-01 10:00:00'",
            [],
        )
        .unwrap();
    let status = outbox_relay::status(&lite.database(), &Table::default())
        .await
        .unwrap();
    // More than a year old, as the publisher reads the time.
    let age = status.oldest_pending_age_seconds.unwrap();
    assert!(age > 365.0 * 24.0 * 3600.0, "{age}");
    let (summary, out) = run_to_buffer(options(lite.database(), Table::default())).await;
    assert_eq!(summary.published, 1);
    assert_eq!(
        header(&out.lines()[0], "ce_time"),
        Some("2024-05-01T10:00:00Z")
    );
}

/// A table of `to_message()` objects in `body`, with a `tenant` column as the partition key.
fn message_table() -> Table {
    let mut table = Table::new("messages")
        .unwrap()
        .with_message_column("body")
        .unwrap();
    table.map_all("partition_key=tenant").unwrap();
    table
}

fn message(n: u32, partition_key: Option<&str>) -> String {
    let mut object = serde_json::json!({
        "event_id": uuid(n), "event_type": "com.example.x", "aggregate_id": "agg",
        "occurred_at": "2024-05-01T10:00:00Z", "source": "svc", "n": n,
    });
    if let Some(key) = partition_key {
        object["partition_key"] = key.into();
    }
    object.to_string()
}

/// `(key, ce_partitionkey)` of each line written, in order.
fn keys(out: &SharedBuf) -> Vec<(String, Option<String>)> {
    out.lines()
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap().to_owned(),
                header(l, "ce_partitionkey").map(str::to_owned),
            )
        })
        .collect()
}

/// The column is the key when it is not NULL; then the message's own key, then its aggregate
/// id: the message key and `ce_partitionkey` alike.
const EXPECTED_KEYS: [(&str, Option<&str>); 3] =
    [("t1", Some("t1")), ("m2", Some("m2")), ("agg", Some("agg"))];

#[tokio::test]
async fn sqlite_message_column_with_a_partition_key_column_publishes_that_key() {
    let lite = Lite::new();
    let table = message_table();
    outbox_relay::init(&lite.database(), &table).await.unwrap();
    let c = lite.connection();
    for (n, tenant, own) in [
        (1, Some("t1"), Some("m1")),
        (2, None, Some("m2")),
        (3, None, None),
    ] {
        c.execute(
            "INSERT INTO messages (body, tenant) VALUES (?1, ?2)",
            testkit::rusqlite::params![message(n, own), tenant],
        )
        .unwrap();
    }
    let (summary, out) = run_to_buffer(options(lite.database(), table)).await;
    assert_eq!(summary.published, 3);
    let want: Vec<_> = EXPECTED_KEYS
        .iter()
        .map(|(k, p)| ((*k).to_owned(), p.map(str::to_owned)))
        .collect();
    assert_eq!(keys(&out), want);
}

#[tokio::test]
async fn postgres_message_column_with_a_partition_key_column_publishes_that_key() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    let table = message_table();
    outbox_relay::init(&db, &table).await.unwrap();
    for (n, tenant, own) in [
        (1, "'t1'", Some("m1")),
        (2, "NULL", Some("m2")),
        (3, "NULL", None),
    ] {
        pg.psql(&format!(
            "INSERT INTO messages (body, tenant) VALUES ('{}', {tenant})",
            message(n, own)
        ))
        .unwrap();
    }
    let (summary, out) = run_to_buffer(options(db, table)).await;
    assert_eq!(summary.published, 3);
    let want: Vec<_> = EXPECTED_KEYS
        .iter()
        .map(|(k, p)| ((*k).to_owned(), p.map(str::to_owned)))
        .collect();
    assert_eq!(keys(&out), want);
}

#[tokio::test]
async fn sqlite_a_null_message_column_fails_naming_the_column() {
    let lite = Lite::new();
    let table = Table::new("messages")
        .unwrap()
        .with_message_column("body")
        .unwrap();
    let ddl = table
        .ddl(outbox_relay::Dialect::Sqlite)
        .replace("\"body\" text not null", "\"body\" text");
    lite.connection().execute_batch(&ddl).unwrap();
    lite.connection()
        .execute("INSERT INTO messages (body) VALUES (NULL)", [])
        .unwrap();
    let (summary, _) = run_to_buffer(options(lite.database(), table)).await;
    assert_eq!(summary.failed, 1);
    let error: String = lite
        .connection()
        .query_row("SELECT last_error FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(error, "column `body` is NULL");
}

#[tokio::test]
async fn sqlite_dead_letter_keeps_bytes_that_are_not_utf8() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    // A payload of `{"a":"` 0xff `"}`: text with a byte that is not UTF-8.
    insert_with(&lite, "outbox_events", 1, &[]);
    lite.connection()
        .execute(
            "UPDATE outbox_events SET payload = CAST(X'7b2261223a22ff227d' AS TEXT)",
            [],
        )
        .unwrap();
    let mut options = options(lite.database(), Table::default());
    options.destination = Destination::Stdout(Some("dead".into()));
    options.engine.dead_letter = true;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.failed, 1);
    let lines = out.lines();
    let value: serde_json::Value =
        serde_json::from_str(lines[0]["value"].as_str().unwrap()).unwrap();
    // base64 of 7b 22 61 22 3a 22 ff 22 7d.
    assert_eq!(
        value["payload"],
        serde_json::json!({"base64": "eyJhIjoi/yJ9"})
    );
    assert_eq!(value["event_id"], uuid(1));
}
