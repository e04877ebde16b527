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
use std::time::Duration;
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
    // The two failed rows wait for an operator: degraded, not unhealthy.
    assert_eq!(health["status"], "degraded", "{health}");
    for check in ["database", "broker", "outbox_lag"] {
        assert_eq!(health["checks"][check]["status"], "healthy", "{health}");
    }
    assert_eq!(
        health["checks"]["failed_events"]["status"], "degraded",
        "{health}"
    );
    assert_eq!(
        health["checks"]["failed_events"]["failed_count"], 2,
        "{health}"
    );
    assert_eq!(health["checks"]["outbox_lag"]["pending_count"], 0);
    assert_eq!(health["checks"]["outbox_lag"]["threshold_seconds"], 300.0);
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

fn health(addr: &str) -> Option<(u16, Value)> {
    http_get(addr, "/health").map(|(code, body)| (code, serde_json::from_str(&body).unwrap()))
}

/// The database stopped under a running relay: `/health` answers 503 (the database check
/// unhealthy, the lag not measured) while the relay keeps running and reconnects; once the
/// server is back, 200 again and the rows inserted meanwhile are published.
#[test]
fn health_is_unhealthy_while_the_database_is_down_and_healthy_after() {
    let mut db = Db::postgres();
    let target = Target::new("health-db", 1);
    db.insert(0..10, 2);
    let url = db.url();
    let addr = free_addr();
    let mut relay = target.spawn(
        &url,
        &[
            "--metrics-listen",
            &addr,
            "--poll-interval",
            "1s",
            "--lag-degraded-after",
            "1h",
        ],
    );
    wait_for("every row published", || db.published() == 10);
    wait_for("/health healthy", || {
        health(&addr).is_some_and(|(code, h)| code == 200 && h["status"] == "healthy")
    });
    db.pg_mut().stop().unwrap();
    let mut down = Value::Null;
    wait_for("/health to say 503", || {
        health(&addr).is_some_and(|(code, h)| {
            down = h;
            code == 503
        })
    });
    assert_eq!(down["status"], "unhealthy", "{down}");
    assert_eq!(down["checks"]["database"]["status"], "unhealthy", "{down}");
    assert!(down["checks"]["database"]["error"].is_string(), "{down}");
    assert_eq!(down["checks"]["outbox_lag"]["status"], "unknown", "{down}");
    assert_eq!(
        down["checks"]["outbox_lag"]["threshold_seconds"], 3600.0,
        "{down}"
    );
    assert_eq!(down["checks"]["broker"]["status"], "healthy", "{down}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(relay.is_running(), "{}", relay.stderr());

    db.pg_mut().start_again().unwrap();
    db.insert(10..20, 2);
    wait_for("the rows inserted after the restart published", || {
        db.published() == 20
    });
    wait_for("/health back to 200", || {
        health(&addr).is_some_and(|(code, h)| code == 200 && h["status"] == "healthy")
    });
    relay.terminate();
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
}

/// With standard output as the destination there is no broker to check.
#[test]
fn health_broker_check_of_stdout_is_not_applicable() {
    let db = Db::sqlite();
    let url = db.url();
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
        &[],
    );
    let mut answer = None;
    wait_for("/health", || {
        answer = health(&addr);
        answer.is_some()
    });
    let (code, h) = answer.unwrap();
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["checks"]["broker"]["status"], "not_applicable", "{h}");
    assert_eq!(h["status"], "healthy", "{h}");
    relay.terminate();
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
}

/// A row that is not a valid event fails: its `publish_failed` line names its seq, event id,
/// type, aggregate and key in both formats, and the stop line has every count in both.
#[test]
fn publish_failed_names_the_ids_of_an_invalid_row_and_the_stop_line_every_count() {
    let db = Db::sqlite();
    let url = db.url();
    db.execute(
        "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         values ('00000000-0000-4000-8000-00000000abcd', 'not an event type', 'order-9', 'svc', \
                 '2024-05-06T07:08:09Z', '{}')",
    );
    for format in ["text", "json"] {
        let mut relay = Relay::spawn(
            &[
                "relay",
                "run",
                "--db",
                &url,
                "--to",
                "stdout",
                "--once",
                "--log-format",
                format,
            ],
            &[],
        );
        assert_eq!(relay.wait(), 0, "{}", relay.stderr());
        let log = relay.stderr();
        let failed = log
            .lines()
            .find(|l| l.contains("publish_failed") || l.contains(" failed (attempt"))
            .unwrap_or_else(|| panic!("no publish_failed line: {log}"));
        let stopped = log.lines().last().unwrap();
        if format == "json" {
            let v: Value = serde_json::from_str(failed).unwrap();
            assert_eq!(v["event_id"], "00000000-0000-4000-8000-00000000abcd", "{v}");
            assert_eq!(v["event_type"], "not an event type", "{v}");
            assert_eq!(v["aggregate_id"], "order-9", "{v}");
            assert_eq!(v["partition_key"], "order-9", "{v}");
            assert!(v["seq"].is_i64(), "{v}");
            let v: Value = serde_json::from_str(stopped).unwrap();
            assert_eq!(v["event"], "outbox.relay_stopped", "{v}");
            for count in ["published", "failed", "unmarked", "abandoned"] {
                assert!(v[count].is_u64(), "{count} in {v}");
            }
        } else {
            for id in [
                "seq 1",
                "event 00000000-0000-4000-8000-00000000abcd",
                "aggregate order-9",
            ] {
                assert!(failed.contains(id), "{id} in {failed}");
            }
            assert_eq!(
                stopped,
                "outbox-ce relay: nothing left to publish: 0 published, 1 failed, 0 unmarked, 0 abandoned"
            );
        }
        // The row was marked failed by the first run: mark it pending again for the next.
        db.execute("update outbox_events set failed_at = null, attempts = 0");
    }
}
