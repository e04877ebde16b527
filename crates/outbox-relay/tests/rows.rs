//! Rows the relay cannot read whole fail, naming the column, instead of going out altered or
//! with an empty key: text that is not UTF-8 (SQLite), a row whose key columns are all `NULL`
//! in a mapped table (SQLite and PostgreSQL).

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
