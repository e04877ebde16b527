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
