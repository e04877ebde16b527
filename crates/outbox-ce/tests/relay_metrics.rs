//! `--metrics-listen`: `/metrics` is valid Prometheus text (read by a strict parser of the
//! format) whose counters match the table, `/health` is python-outbox-core's health check,
//! `--log-format json` logs python-outbox-core's event names, and `OUTBOX_ENABLE_METRICS` /
//! `OUTBOX_ENABLE_HEALTH_CHECK` turn the endpoints off.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::relay::{Db, Relay, Target, free_addr, http_get, http_get_typed, status, wait_for};
use serde_json::Value;
use testkit::prometheus::{Exposition, parse};

fn scrape(addr: &str) -> Exposition {
    let (code, content_type, body) = http_get_typed(addr, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "Content-Type {content_type:?}"
    );
    parse(&body).unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}\n{body}"))
}

#[test]
fn metrics_health_and_json_logs_report_what_happened() {
    let db = Db::postgres();
    let target = Target::new("metrics", 2);
    db.insert(0..500, 50);
    db.execute(
        "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         values ('00000000-0000-4000-8000-00000000ffff', 'not an event type', 'bad', 'svc', now(), '{}'), \
                ('00000000-0000-4000-8000-00000000fffe', 'com.example.ok', 'bad', 'not a uri', now(), '{}')",
    );
    let url = db.url();
    let addr = free_addr();
    let mut relay = target.spawn(&url, &["--metrics-listen", &addr, "--log-format", "json"]);
    wait_for("every row published or failed", || {
        db.count("published_at is null and failed_at is null") == 0
    });
    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (0, 500, 2));

    let mut metrics = Exposition::default();
    wait_for("/metrics to count every row", || {
        metrics = scrape(&addr);
        metrics.value("outbox_relay_published_total", &[]) == Some(500.0)
            && metrics.value("outbox_relay_pending", &[]) == Some(0.0)
    });
    let kind = |name: &str| metrics.family(name).kind.clone();
    assert_eq!(kind("outbox_relay_published_total"), "counter");
    assert_eq!(kind("outbox_relay_failed_total"), "counter");
    assert_eq!(kind("outbox_relay_retried_total"), "counter");
    assert_eq!(kind("outbox_relay_pending"), "gauge");
    assert_eq!(kind("outbox_relay_oldest_pending_age_seconds"), "gauge");
    assert_eq!(kind("outbox_relay_publish_latency_seconds"), "histogram");
    assert_eq!(metrics.value("outbox_relay_failed_total", &[]), Some(2.0));
    assert_eq!(metrics.value("outbox_relay_retried_total", &[]), Some(0.0));
    assert_eq!(
        metrics.value("outbox_relay_oldest_pending_age_seconds", &[]),
        Some(0.0)
    );
    let latencies = metrics
        .value("outbox_relay_publish_latency_seconds_count", &[])
        .unwrap();
    assert!(latencies >= 500.0, "{latencies} latencies for 500 messages");
    assert!(
        metrics
            .value("outbox_relay_publish_latency_seconds_sum", &[])
            .is_some_and(|s| s > 0.0)
    );

    let (code, body) = http_get(&addr, "/health").unwrap();
    assert_eq!(code, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    for check in ["database", "broker", "outbox_lag"] {
        assert_eq!(health["checks"][check]["status"], "healthy", "{health}");
    }
    assert_eq!(health["checks"]["outbox_lag"]["pending_count"], 0);
    assert_eq!(http_get(&addr, "/nowhere").unwrap().0, 404);

    relay.terminate();
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    // One JSON object a line, with python-outbox-core's event names.
    let mut events = Vec::new();
    for line in relay.stderr().lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        events.push(v["event"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        events.iter().any(|e| e == "outbox.batch_complete"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "outbox.publish_failed")
            .count(),
        2,
        "{events:?}"
    );
}

#[test]
fn outbox_enable_variables_turn_the_endpoints_off() {
    let db = Db::sqlite();
    let url = db.url();
    for (var, off, on) in [
        ("OUTBOX_ENABLE_METRICS", "/metrics", "/health"),
        ("OUTBOX_ENABLE_HEALTH_CHECK", "/health", "/metrics"),
    ] {
        let addr = free_addr();
        let mut relay = Relay::spawn(
            &[
                "relay",
                "run",
                "--db",
                &url,
                "--to",
                "stdout",
                "--metrics-listen",
                &addr,
            ],
            &[(var, "false")],
        );
        wait_for("the endpoint to listen", || {
            http_get(&addr, on).is_some_and(|(code, _)| code == 200)
        });
        assert_eq!(http_get(&addr, off).unwrap().0, 404, "{var}=false");
        relay.terminate();
        assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    }
}
