//! The relay on a real PostgreSQL 15 server: end to end, `NOTIFY` wakes a waiting relay at
//! once, and relays share the key buckets and take over those of a relay that is gone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use outbox_relay::postgres::{BUCKETS, PostgresSource};
use outbox_relay::{Source, Table};

#[tokio::test]
async fn rows_go_out_in_key_order_marked_with_their_json_kept() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    let sql: String = (1..=60)
        .map(|n| insert_sql(n, &format!("k{}", n % 4)))
        .collect();
    pg.psql(&sql).unwrap();
    let status = outbox_relay::status(&db, &Table::default()).await.unwrap();
    assert_eq!((status.pending, status.published), (60, 0));
    assert!(status.oldest_pending_age_seconds.unwrap() > 0.0);

    let (summary, out) = run_to_buffer(options(db.clone(), Table::default())).await;
    assert_eq!(summary.published, 60);
    let lines = out.lines();
    for k in 0..4 {
        let key = format!("k{k}");
        let got: Vec<&str> = lines
            .iter()
            .filter(|l| l["key"] == key.as_str())
            .map(|l| header(l, "ce_id").unwrap())
            .collect();
        let want: Vec<String> = (1..=60).filter(|n| n % 4 == k).map(uuid).collect();
        assert_eq!(got, want, "{key}");
    }
    // `json` keeps the text as written; the time is the instant, in RFC 3339.
    let first = lines
        .iter()
        .find(|l| header(l, "ce_id") == Some(&uuid(1)))
        .unwrap();
    assert_eq!(first["value"], r#"{"n": 1,  "big": 12345678901234567890}"#);
    assert_eq!(
        header(first, "ce_time"),
        Some("2024-05-01T10:00:00.123456Z")
    );
    let status = outbox_relay::status(&db, &Table::default()).await.unwrap();
    assert_eq!(
        (status.pending, status.published, status.failed),
        (0, 60, 0)
    );
    assert_eq!(status.oldest_pending_age_seconds, None);
}

#[tokio::test]
async fn a_notification_wakes_a_waiting_relay() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    let mut options = options(db.clone(), Table::default());
    options.engine.once = false;
    options.engine.config.poll_interval = Duration::from_secs(3600);
    let buf = SharedBuf::default();
    let sink = outbox_relay::stdout::StdoutSink::to_writer(buf.clone(), None);
    let source = PostgresSource::new(&pg.url(), Table::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(outbox_relay::relay::run_with(
        source,
        sink,
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    // Let the relay start, claim nothing and wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(buf.raw_lines().is_empty());
    let url = pg.url();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        let pg_sql = insert_sql(1, "a");
        std::process::Command::new("psql")
            .args([url.as_str(), "-q", "-c", &pg_sql])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    while buf.raw_lines().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not woken by NOTIFY (the poll interval is an hour)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    let summary = relay.await.unwrap().unwrap();
    assert_eq!(summary.published, 1);
    let status = outbox_relay::status(&db, &Table::default()).await.unwrap();
    assert_eq!((status.pending, status.published), (0, 1));
}

#[tokio::test]
async fn relays_share_the_buckets_and_take_over_those_of_a_relay_gone() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    let mut a = PostgresSource::new(&pg.url(), Table::default()).unwrap();
    let mut b = PostgresSource::new(&pg.url(), Table::default()).unwrap();
    a.connect().await.unwrap();
    a.rebalance().await.unwrap();
    assert_eq!(
        a.owned_buckets().len(),
        BUCKETS as usize,
        "alone, it owns all"
    );
    b.connect().await.unwrap();
    for _ in 0..3 {
        b.rebalance().await.unwrap();
        a.rebalance().await.unwrap();
    }
    b.rebalance().await.unwrap();
    let (owned_a, owned_b) = (a.owned_buckets(), b.owned_buckets());
    assert_eq!(owned_a.len(), 32);
    assert_eq!(owned_b.len(), 32);
    assert!(owned_a.iter().all(|x| !owned_b.contains(x)), "disjoint");

    // `a` is gone: its session ends, its locks with it; `b` takes every bucket.
    drop(a);
    let started = Instant::now();
    loop {
        b.rebalance().await.unwrap();
        if b.owned_buckets().len() == BUCKETS as usize {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(pg: &testkit::Postgres, sql: &str) -> i64 {
    pg.psql(sql).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn postgres_missing_mapped_column_is_refused() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    pg.psql(&insert_sql(1, "a")).unwrap();
    let mut table = Table::default();
    table
        .map_all("source=origin_misspelt,published_at=sent_at")
        .unwrap();
    let (error, out) = refused(options(db.clone(), table.clone())).await;
    assert!(
        error.contains("table `outbox_events` has no columns `origin_misspelt` (for `source`), `sent_at` (for `published_at`)"),
        "{error}"
    );
    assert!(out.raw_lines().is_empty(), "nothing sent");
    let error = outbox_relay::status(&db, &table)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("`sent_at`"), "{error}");
    let error = outbox_relay::status(&db, &Table::new("nope").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("table `nope` does not exist"), "{error}");
    assert_eq!(
        count(
            &pg,
            "select count(*) from outbox_events where published_at is null"
        ),
        1
    );
}

#[tokio::test]
async fn postgres_seq_that_is_not_unique_is_refused() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    let sql: String = (1..=2).map(|n| insert_sql(n, "a")).collect();
    pg.psql(&format!(
        "alter table outbox_events add column pos bigint not null default 7; {sql} update outbox_events set pos = 7;"
    ))
    .unwrap();
    let mut table = Table::default();
    table.map_all("seq=pos").unwrap();
    let (error, out) = refused(options(db.clone(), table.clone())).await;
    assert!(error.contains("`pos` (for `seq`) is not unique"), "{error}");
    assert!(out.raw_lines().is_empty());
    // migrate adds the unique index, which fails (changing nothing) while values repeat.
    let error = outbox_relay::migrate(&db, &table, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("could not create unique index"), "{error}");
    // A partial unique index is not enough; migrate's index is.
    pg.psql(
        "update outbox_events set pos = seq * 10; \
         create unique index by_pos_partial on outbox_events (pos) where pos > 10;",
    )
    .unwrap();
    let (error, _) = refused(options(db.clone(), table.clone())).await;
    assert!(error.contains("is not unique"), "{error}");
    let added = outbox_relay::migrate(&db, &table, false).await.unwrap();
    assert_eq!(
        added,
        [
            "CREATE UNIQUE INDEX IF NOT EXISTS \"outbox_events_seq_unique\" ON \"outbox_events\" (\"pos\")"
        ]
    );
    let (summary, out) = run_to_buffer(options(db, table)).await;
    assert_eq!(summary.published, 2);
    assert_eq!(out.raw_lines().len(), 2);
}

#[tokio::test]
async fn postgres_seq_that_may_be_null_is_refused_and_migrate_sets_it_not_null() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    let sql: String = (1..=2).map(|n| insert_sql(n, "a")).collect();
    pg.psql(&format!(
        "alter table outbox_events add column pos bigint unique; {sql} update outbox_events set pos = seq;"
    ))
    .unwrap();
    let mut table = Table::default();
    table.map_all("seq=pos").unwrap();
    let (error, out) = refused(options(db.clone(), table.clone())).await;
    assert!(error.contains("`pos` (for `seq`) may hold NULL"), "{error}");
    assert!(out.raw_lines().is_empty());
    let added = outbox_relay::migrate(&db, &table, false).await.unwrap();
    assert_eq!(
        added,
        ["ALTER TABLE \"outbox_events\" ALTER COLUMN \"pos\" SET NOT NULL"]
    );
    let (summary, out) = run_to_buffer(options(db, table)).await;
    assert_eq!(summary.published, 2);
    assert_eq!(out.raw_lines().len(), 2);
}

#[tokio::test]
async fn postgres_migrate_brings_a_python_outbox_core_table_up_once() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    pg.psql(
        "create table events (id bigserial primary key, event_id uuid not null unique, \
         event_type text not null, aggregate_id text not null, source text not null, \
         occurred_at timestamptz not null, data_version text not null default '1.0', \
         correlation_id uuid, causation_id uuid, payload json not null, published_at timestamptz); \
         insert into events (event_id, event_type, aggregate_id, source, occurred_at, payload) values \
         ('00000000-0000-4000-8000-000000000001', 'com.example.a', 'o-1', 'orders', '2024-05-01T10:00:00Z', '{\"n\": 1}'), \
         ('00000000-0000-4000-8000-000000000002', 'com.example.a', 'o-1', 'orders', '2024-05-01T10:00:01Z', '{\"n\": 2}');",
    )
    .unwrap();
    let mut table = Table::new("events").unwrap();
    table.map_all("seq=id").unwrap();
    let error = outbox_relay::init(&db, &table)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("relay migrate") && error.contains("`failed_at`"),
        "{error}"
    );
    let catalogue = "select (select count(*) from pg_attribute where attrelid = 'events'::regclass and attnum > 0) \
         + 100 * (select count(*) from pg_indexes where tablename = 'events') \
         + 10000 * (select count(*) from pg_trigger where tgrelid = 'events'::regclass)";
    let before = count(&pg, catalogue);

    let planned = outbox_relay::migrate(&db, &table, true).await.unwrap();
    assert_eq!(count(&pg, catalogue), before, "--dry-run changes nothing");
    assert!(
        planned
            .iter()
            .any(|s| s
                == "ALTER TABLE \"events\" ADD COLUMN \"attempts\" integer not null default 0"),
        "{planned:#?}"
    );
    assert!(
        planned
            .iter()
            .any(|s| s.starts_with("CREATE OR REPLACE TRIGGER \"events_notify\""))
    );
    assert_eq!(
        outbox_relay::migrate(&db, &table, false).await.unwrap(),
        planned
    );
    assert_eq!(
        count(
            &pg,
            "select count(*) from pg_trigger where tgname = 'events_notify'"
        ),
        1
    );
    let again = outbox_relay::migrate(&db, &table, false).await.unwrap();
    assert!(again.is_empty(), "a second run does nothing: {again:?}");

    let (summary, out) = run_to_buffer(options(db.clone(), table.clone())).await;
    assert_eq!(summary.published, 2);
    let ids: Vec<String> = out
        .lines()
        .iter()
        .map(|l| header(l, "ce_id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, [uuid(1), uuid(2)]);
    let status = outbox_relay::status(&db, &table).await.unwrap();
    assert_eq!((status.pending, status.published), (0, 2));
}

#[tokio::test]
async fn postgres_role_that_cannot_update_the_table_is_refused() {
    let pg = testkit::Postgres::start().unwrap();
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    pg.psql(&format!(
        "{} create role reader login; grant select on outbox_events to reader; \
         create role marker login; grant select, update on outbox_events to marker;",
        insert_sql(1, "a")
    ))
    .unwrap();
    let as_role = |role: &str| -> outbox_relay::Database {
        pg.url()
            .replace("postgres://postgres@", &format!("postgres://{role}@"))
            .parse()
            .unwrap()
    };
    let (error, out) = refused(options(as_role("reader"), Table::default())).await;
    assert!(
        error.contains("permission denied for table outbox_events")
            && error.contains("cannot write to table `outbox_events`"),
        "{error}"
    );
    assert!(out.raw_lines().is_empty(), "nothing sent");
    // Reading is all `relay status` needs.
    let status = outbox_relay::status(&as_role("reader"), &Table::default())
        .await
        .unwrap();
    assert_eq!(status.pending, 1);
    // Deleting published rows needs DELETE as well.
    let mut deleting = options(as_role("marker"), Table::default());
    deleting.engine.delete_published_after = Some(Duration::ZERO);
    let (error, out) = refused(deleting).await;
    assert!(error.contains("permission denied"), "{error}");
    assert!(out.raw_lines().is_empty());
    let (summary, _) = run_to_buffer(options(as_role("marker"), Table::default())).await;
    assert_eq!(summary.published, 1);
}
