//! The broker unreachable: `--once` gives up after `--once-stall-timeout` without an
//! acknowledgement (exit 1, naming the brokers and their last error, nothing marked), a slow
//! backlog that keeps moving is not cut off, and librdkafka's own log lines (connection
//! refused, all brokers down) reach the relay's log in both formats, rate-limited.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::relay::{Db, Relay, Target, free_addr, status};
use serde_json::Value;

/// `relay run --once` to `brokers` (nothing listens there) with a short stall timeout and
/// librdkafka reconnecting every 10 ms, so that its errors repeat many times a second.
fn run_to_closed_port(db: &Db, brokers: &str, extra: &[&str]) -> Relay {
    let url = db.url();
    let args = [
        &[
            "relay",
            "run",
            "--db",
            &url,
            "--brokers",
            brokers,
            "--topic",
            "orders",
            "--once",
            "--once-stall-timeout",
            "4s",
            "--producer-option",
            "reconnect.backoff.ms=10",
            "--producer-option",
            "reconnect.backoff.max.ms=10",
        ][..],
        extra,
    ]
    .concat();
    Relay::spawn(&args, &[])
}

#[test]
fn once_with_the_broker_down_gives_up_after_the_stall_timeout() {
    let db = Db::sqlite();
    db.insert(0..5, 2);
    let brokers = free_addr();
    let mut relay = run_to_closed_port(&db, &brokers, &[]);
    assert_eq!(relay.wait(), 1, "{}", relay.stderr());
    let stderr = relay.stderr();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("outbox-ce relay run: ")
            && last.contains(&format!("Kafka {brokers} topic orders"))
            && last.contains("acknowledged nothing for 4.0s")
            && last.contains("--once-stall-timeout")
            && last.contains("Connection refused"),
        "the error names the brokers, the timeout and the last broker error: {stderr}"
    );
    assert!(
        stderr.contains("gave up, the destination acknowledged nothing: 0 published, 0 failed, 0 unmarked, 2 abandoned"),
        "{stderr}"
    );
    let s = status(&db.url());
    assert_eq!((s.pending, s.published, s.failed), (5, 0, 0));
}

#[test]
fn a_closed_broker_port_is_logged_in_text_rate_limited() {
    let db = Db::sqlite();
    db.insert(0..1, 1);
    let brokers = free_addr();
    let mut relay = run_to_closed_port(&db, &brokers, &[]);
    assert_eq!(relay.wait(), 1, "{}", relay.stderr());
    let stderr = relay.stderr();
    let refused: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.starts_with("outbox-ce relay: Kafka FAIL: ") && l.contains("Connection refused")
        })
        .collect();
    assert_eq!(refused.len(), 1, "one connection-refused line: {stderr}");
    assert!(refused[0].contains(&brokers), "{stderr}");
    // librdkafka reports the brokers down at every reconnection, a hundred times a second
    // here: once in the relay's log.
    let down = stderr
        .lines()
        .filter(|l| l == &"outbox-ce relay: Kafka ERROR: 1/1 brokers are down")
        .count();
    assert_eq!(down, 1, "{stderr}");
}

#[test]
fn a_closed_broker_port_is_logged_in_json() {
    let db = Db::sqlite();
    db.insert(0..1, 1);
    let brokers = free_addr();
    let mut relay = run_to_closed_port(&db, &brokers, &["--log-format", "json"]);
    assert_eq!(relay.wait(), 1, "{}", relay.stderr());
    let stderr = relay.stderr();
    let mut lines: Vec<&str> = stderr.lines().collect();
    // The last line is the command's error, in text like every usage or run error.
    assert!(lines.pop().unwrap().starts_with("outbox-ce relay run: "));
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let refused: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["event"] == "outbox.broker_log"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Connection refused"))
        })
        .collect();
    assert!(!refused.is_empty(), "{stderr}");
    assert!(
        refused.iter().any(|e| e["level"] == "error"
            && e["facility"] == "FAIL"
            && e["suppressed"] == 0
            && e["timestamp"].is_string()),
        "{stderr}"
    );
    let stopped = events
        .iter()
        .find(|e| e["event"] == "outbox.relay_stopped")
        .unwrap();
    assert_eq!(stopped["reason"], "stalled", "{stopped}");
    assert_eq!(stopped["abandoned"], 1, "{stopped}");
}

/// Every acknowledgement restarts the stall clock: a backlog whose acknowledgements come
/// steadily, each within the timeout, is published whole even though it takes many times
/// the timeout.
#[test]
fn a_slow_but_moving_backlog_is_not_cut_by_the_stall_timeout() {
    let db = Db::sqlite();
    // Three keys, one message of each in flight at a time (so the destination always has
    // something outstanding), each acknowledged 150 ms after it is sent, 30 a key: some
    // 4.5 s in all, with a stall timeout of 2 s.
    db.insert(0..90, 3);
    // The mock cluster: a broker that holds every answer back 150 ms, which Kafka cannot be
    // made to do.
    let target = Target::mock("slow-once", 1).slow(Duration::from_millis(150));
    let mut relay = target.spawn(&db.url(), &["--once", "--once-stall-timeout", "2s"]);
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    let s = status(&db.url());
    assert_eq!((s.pending, s.published, s.failed), (0, 90, 0));
}
