//! The relay rides out a broker outage in the middle of a run: no row fails, every row is
//! published afterwards, order per key holds; `/health` reports the outage as `unhealthy` with
//! HTTP 503 and recovers. The broker is stopped as a stopped or hung broker process is:
//! connections open, no answer for ten seconds (`testkit::Broker::down`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::relay::{Db, Target, check_delivery, free_addr, http_get, status, wait_for, writer};
use serde_json::Value;

const KEYS: u64 = 200;

#[test]
fn broker_down_for_10_seconds_fails_no_row_and_health_turns_unhealthy() {
    let db = Db::postgres();
    // The mock cluster, which holds every answer back for 10 s (`testkit::Broker::down`).
    let target = Target::mock("outage", 4);
    let url = db.url();
    let metrics = free_addr();
    db.insert(0..1000, KEYS);
    let mut relay = target.spawn(&url, &["--metrics-listen", &metrics]);
    wait_for("the first rows published", || db.published() >= 1000);
    wait_for("a healthy /health", || {
        http_get(&metrics, "/health").is_some_and(|(code, _)| code == 200)
    });

    let stop = AtomicBool::new(false);
    let inserted = std::thread::scope(|scope| {
        // Rows keep coming while the broker is away.
        let writer = writer(
            scope,
            &db,
            1000,
            50,
            Duration::from_millis(100),
            KEYS,
            &stop,
        );
        target.mock_cluster().down().unwrap();
        let mut unhealthy = None;
        wait_for("/health to report the broker down", || {
            match http_get(&metrics, "/health") {
                Some((503, body)) => {
                    unhealthy = Some(body);
                    true
                }
                _ => false,
            }
        });
        std::thread::sleep(Duration::from_secs(10));
        assert_eq!(db.count("failed_at is not null"), 0, "a row failed");
        assert!(relay.is_running(), "the relay exited:\n{}", relay.stderr());
        target.mock_cluster().up().unwrap();
        stop.store(true, Ordering::SeqCst);
        let inserted = writer.join().unwrap();

        let body: Value = serde_json::from_str(&unhealthy.unwrap()).unwrap();
        assert_eq!(body["status"], "unhealthy", "{body}");
        inserted
    });
    assert!(inserted > 1000);

    wait_for("every row published after the outage", || {
        db.published() == inserted
    });
    wait_for("a healthy /health again", || {
        http_get(&metrics, "/health").is_some_and(|(code, _)| code == 200)
    });
    let (_, body) = http_get(&metrics, "/health").unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
    relay.terminate();
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());

    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (0, inserted as i64, 0));
    let rows = db.rows();
    let delivery = check_delivery(&rows, &target.messages());
    assert_eq!(delivery.distinct as u64, inserted);
}
