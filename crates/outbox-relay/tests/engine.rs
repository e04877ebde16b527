//! The engine's guarantees at their edges: order per key after the database connection is
//! lost while a message is in flight (PostgreSQL, librdkafka's mock cluster), and a shutdown
//! request honoured at once while a backlog is being drained (SQLite).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use outbox_relay::kafka::KafkaOptions;
use outbox_relay::{Destination, Table};
use testkit::rusqlite::params;

async fn psql(pg: &Arc<testkit::Postgres>, sql: &str) -> String {
    let (pg, sql) = (Arc::clone(pg), sql.to_owned());
    tokio::task::spawn_blocking(move || pg.psql(&sql).unwrap())
        .await
        .unwrap()
}

/// Waits until `sql` prints `want`, for at most `limit`.
async fn wait_for(pg: &Arc<testkit::Postgres>, sql: &str, want: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if psql(pg, sql).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A relay loses its database connection while the first row of a key is in flight (the
/// broker is down); it reconnects and claims the key's later rows again. Once the broker is
/// back and that row is acknowledged, a row inserted afterwards must not overtake the rows
/// of its key claimed before it.
#[tokio::test]
async fn a_reconnection_keeps_the_order_of_a_key_whose_row_was_in_flight() {
    let pg = Arc::new(testkit::Postgres::start().unwrap());
    let db: outbox_relay::Database = pg.url().parse().unwrap();
    outbox_relay::init(&db, &Table::default()).await.unwrap();
    // The mock cluster, which holds every answer back (`testkit::Broker::down`) while the
    // first row is in flight and the database connection is cut.
    let broker = testkit::Broker::start().unwrap();
    broker.create_topic("orders", 1).unwrap();
    psql(
        &pg,
        &(1..=3).map(|n| insert_sql(n, "k")).collect::<String>(),
    )
    .await;
    broker.down().unwrap();

    let mut options = options(db.clone(), Table::default());
    options.engine.once = false;
    // No poll during the test: only NOTIFY (and the claims after a reconnection) find rows.
    options.engine.config.poll_interval = Duration::from_secs(3600);
    options.destination = Destination::Kafka(KafkaOptions {
        brokers: broker.bootstrap_servers(),
        topic: "orders".into(),
        ..KafkaOptions::default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(outbox_relay::run(options, async move {
        let _ = stopped.await;
    }));
    // Row 1 is in flight (the broker is down), rows 2 and 3 wait behind it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The relay's connection ends; it reconnects and claims rows 2 and 3 again.
    psql(
        &pg,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend'",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.up().unwrap();
    let published = "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM outbox_events \
                     WHERE published_at IS NOT NULL";
    let first_published =
        "SELECT count(*) FROM outbox_events WHERE seq = 1 AND published_at IS NOT NULL";
    assert!(
        wait_for(&pg, first_published, "1", Duration::from_secs(20)).await,
        "row 1 published after the broker came back"
    );
    // A row of the same key comes in: it is published after rows 2 and 3, not before.
    psql(&pg, &insert_sql(4, "k")).await;
    let all = wait_for(&pg, published, "1,2,3,4", Duration::from_secs(10)).await;
    stop.send(()).unwrap();
    relay.await.unwrap().unwrap();

    let servers = broker.bootstrap_servers();
    let messages = tokio::task::spawn_blocking(move || testkit::read_topic(&servers, "orders"))
        .await
        .unwrap()
        .unwrap();
    let on_topic: Vec<String> = messages
        .iter()
        .map(|m| m.header("ce_id").unwrap().to_owned())
        .collect();
    // Each row's first delivery follows the first delivery of every earlier row of its key.
    let mut first: Vec<String> = Vec::new();
    for id in &on_topic {
        if !first.contains(id) {
            first.push(id.clone());
        }
    }
    let want: Vec<String> = (1..=first.len() as u32).map(uuid).collect();
    assert_eq!(first, want, "first deliveries out of order: {on_topic:?}");
    assert!(all, "every row published; on the topic: {on_topic:?}");
}

/// A shutdown request is honoured while a backlog is drained: the relay stops claiming, marks
/// what was acknowledged and returns, leaving the rest pending for the next run.
#[tokio::test]
async fn a_shutdown_request_stops_the_relay_in_the_middle_of_a_backlog() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    let total = 20_000u32;
    {
        let mut c = lite.connection();
        let tx = c.transaction().unwrap();
        for n in 1..=total {
            let r = NewRow::new(n, &format!("k{}", n % 500));
            tx.execute(
                "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, \
                 occurred_at, payload) VALUES (?1, ?2, ?3, 'order-service', ?4, ?5)",
                params![
                    r.event_id,
                    r.event_type,
                    r.aggregate_id,
                    r.occurred_at,
                    r.payload
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut options = options(lite.database(), Table::default());
    options.engine.once = false;
    let buf = SharedBuf::default();
    let sink = outbox_relay::stdout::StdoutSink::to_writer(buf.clone(), None);
    let source = outbox_relay::sqlite::SqliteSource::new(&lite.path, Table::default());
    // The signal has already come when the relay starts.
    let summary = outbox_relay::relay::run_with(source, sink, options, std::future::ready(()))
        .await
        .unwrap();
    let status = outbox_relay::status(&lite.database(), &Table::default())
        .await
        .unwrap();
    assert!(
        summary.published < u64::from(total),
        "stopped before the backlog was drained: {summary:?}"
    );
    assert_eq!(status.published, summary.published);
    assert_eq!(status.pending, u64::from(total) - summary.published);
    assert_eq!(buf.raw_lines().len() as u64, summary.published);
}

/// Durations too long to add to an instant (an embedder's options are not parsed from
/// flags): the relay runs, stops on request and returns, with no overflow anywhere a
/// deadline is computed (poll, shutdown, retention, stall).
#[tokio::test]
async fn engine_options_with_duration_max_do_not_panic() {
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    {
        let c = lite.connection();
        let r = NewRow::new(1, "k");
        c.execute(
            "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, \
             occurred_at, payload) VALUES (?1, ?2, ?3, 'order-service', ?4, ?5)",
            params![
                r.event_id,
                r.event_type,
                r.aggregate_id,
                r.occurred_at,
                r.payload
            ],
        )
        .unwrap();
    }
    for once in [true, false] {
        let mut options = options(lite.database(), Table::default());
        options.engine.once = once;
        options.engine.config.poll_interval = Duration::MAX;
        options.engine.shutdown_timeout = Duration::MAX;
        options.engine.delete_published_after = Some(Duration::MAX);
        options.engine.once_stall_timeout = Duration::MAX;
        options.engine.lag_degraded_after = Duration::MAX;
        let sink = outbox_relay::stdout::StdoutSink::to_writer(SharedBuf::default(), None);
        let source = outbox_relay::sqlite::SqliteSource::new(&lite.path, Table::default());
        let stop = tokio::time::sleep(Duration::from_millis(300));
        let summary = outbox_relay::relay::run_with(source, sink, options, stop)
            .await
            .unwrap();
        assert_eq!(summary.published, u64::from(once), "{summary:?}");
    }
}
