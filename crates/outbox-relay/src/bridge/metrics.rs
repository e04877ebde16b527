//! The bridge's counters at `/metrics` (Prometheus text format) and its `/health`, served
//! by the relay's server ([`crate::observe::serve`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::observe::{Observed, broker_check, health_report, not_measured};
use crate::sink::Probe;

/// The consumer lag beyond which `/health` says `degraded`.
pub const LAG_DEGRADED_MESSAGES: u64 = 10_000;

/// The bridge's counters, shared between its pipeline and the HTTP endpoint.
#[derive(Debug)]
pub struct BridgeMetrics {
    lag_degraded_messages: u64,
    consumed: AtomicU64,
    produced: AtomicU64,
    dead_lettered: AtomicU64,
    committed: AtomicU64,
    transactions: AtomicU64,
    aborted: AtomicU64,
    assigned: AtomicBool,
    lag: Mutex<BTreeMap<i32, u64>>,
    error: Mutex<Option<String>>,
}

impl Default for BridgeMetrics {
    fn default() -> Self {
        BridgeMetrics::new(LAG_DEGRADED_MESSAGES)
    }
}

impl BridgeMetrics {
    /// Counters whose lag check says `degraded` above `lag_degraded_messages`.
    pub fn new(lag_degraded_messages: u64) -> Self {
        BridgeMetrics {
            lag_degraded_messages,
            consumed: AtomicU64::new(0),
            produced: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            assigned: AtomicBool::new(false),
            lag: Mutex::new(BTreeMap::new()),
            error: Mutex::new(None),
        }
    }

    /// Counts messages read from the input topic.
    pub fn consumed(&self, n: u64) {
        self.consumed.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts messages acknowledged on the output topic.
    pub fn produced(&self, n: u64) {
        self.produced.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts messages acknowledged on the dead-letter topic.
    pub fn dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts offset commits that succeeded.
    pub fn committed(&self) {
        self.committed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a committed (`true`) or aborted transaction.
    pub fn transaction(&self, committed: bool) {
        let counter = if committed {
            &self.transactions
        } else {
            &self.aborted
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the lag of each assigned partition (high watermark minus the next offset to
    /// read); an empty map means no partition is assigned.
    pub fn lag(&self, lag: BTreeMap<i32, u64>) {
        self.assigned.store(!lag.is_empty(), Ordering::Relaxed);
        if let Ok(mut current) = self.lag.lock() {
            *current = lag;
        }
    }

    /// Records the last client error (`None`: the client works).
    pub fn client_error(&self, error: Option<String>) {
        if let Ok(mut current) = self.error.lock() {
            *current = error;
        }
    }

    /// Messages consumed so far.
    pub fn consumed_count(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// Messages produced so far.
    pub fn produced_count(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    /// Messages dead-lettered so far.
    pub fn dead_lettered_count(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    fn total_lag(&self) -> u64 {
        self.lag.lock().map(|l| l.values().sum()).unwrap_or(0)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP outbox_bridge_{name} {help}\n# TYPE outbox_bridge_{name} {kind}\noutbox_bridge_{name} {value}"
            );
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "consumed_total",
            "counter",
            "Messages read from the input topic.",
            load(&self.consumed),
        );
        metric(
            "produced_total",
            "counter",
            "Messages acknowledged on the output topic.",
            load(&self.produced),
        );
        metric(
            "dead_lettered_total",
            "counter",
            "Messages acknowledged on the dead-letter topic.",
            load(&self.dead_lettered),
        );
        metric(
            "commits_total",
            "counter",
            "Offset commits (or committed transactions) that succeeded.",
            load(&self.committed),
        );
        metric(
            "transactions_total",
            "counter",
            "Transactions committed (--exactly-once).",
            load(&self.transactions),
        );
        metric(
            "transactions_aborted_total",
            "counter",
            "Transactions aborted (--exactly-once); their messages are bridged again.",
            load(&self.aborted),
        );
        metric(
            "consumer_lag",
            "gauge",
            "Messages on the assigned input partitions not yet read (high watermark minus position).",
            self.total_lag(),
        );
        let name = "outbox_bridge_partition_consumer_lag";
        let _ = writeln!(
            out,
            "# HELP {name} Consumer lag of each assigned input partition.\n# TYPE {name} gauge"
        );
        if let Ok(lag) = self.lag.lock() {
            for (partition, lag) in lag.iter() {
                let _ = writeln!(out, "{name}{{partition=\"{partition}\"}} {lag}");
            }
        }
        out
    }

    /// python-outbox-core's health statuses as JSON, and whether it is `unhealthy`: the
    /// broker check (a metadata request), the consumer group (partitions assigned), the lag
    /// (`unknown` while the broker check fails: the figures are the last reported).
    pub async fn health(&self, broker: Option<&Probe>) -> (String, bool) {
        let broker = broker_check(broker).await;
        let broker_ok = broker.get("status").is_some_and(|s| s != "unhealthy");
        let error = self.error.lock().ok().and_then(|e| e.clone());
        let assigned = self.assigned.load(Ordering::Relaxed);
        // A member without partitions is healthy (more members than partitions); a client
        // error is reported as degraded, since librdkafka retries by itself.
        let consumer = match error {
            Some(e) => serde_json::json!({"status": "degraded", "assigned": assigned, "error": e}),
            None => serde_json::json!({"status": "healthy", "assigned": assigned}),
        };
        let lag = self.total_lag();
        let threshold = self.lag_degraded_messages;
        let mut lag = serde_json::json!({
            "status": if lag > threshold { "degraded" } else { "healthy" },
            "consumer_lag": lag,
            "threshold_messages": threshold,
        });
        if !broker_ok {
            not_measured(
                &mut lag,
                "not measured: the broker is unreachable; the figure is the last reported",
            );
        }
        health_report([
            ("broker", broker),
            ("consumer_group", consumer),
            ("consumer_lag", lag),
        ])
    }
}

impl Observed for BridgeMetrics {
    fn render_metrics(&self) -> String {
        self.to_prometheus()
    }

    fn health(&self, broker: Option<&Probe>) -> impl Future<Output = (String, bool)> + Send {
        BridgeMetrics::health(self, broker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn prometheus_text_has_every_series() {
        let metrics = BridgeMetrics::default();
        metrics.consumed(5);
        metrics.produced(4);
        metrics.dead_lettered(1);
        metrics.lag(BTreeMap::from([(0, 3), (2, 4)]));
        let text = metrics.to_prometheus();
        for line in [
            "outbox_bridge_consumed_total 5",
            "outbox_bridge_produced_total 4",
            "outbox_bridge_dead_lettered_total 1",
            "outbox_bridge_consumer_lag 7",
            "outbox_bridge_partition_consumer_lag{partition=\"2\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[tokio::test]
    async fn health_is_the_worst_check() {
        let metrics = BridgeMetrics::default();
        let up: Probe = Arc::new(|| Box::pin(async { Ok(()) }));
        let down: Probe = Arc::new(|| Box::pin(async { Err("all brokers down".to_owned()) }));
        let (body, unhealthy) = metrics.health(Some(&up)).await;
        assert!(!unhealthy, "{body}");
        assert!(body.contains("\"status\":\"healthy\""), "{body}");
        let (body, unhealthy) = metrics.health(Some(&down)).await;
        assert!(unhealthy);
        assert!(body.contains("all brokers down"), "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json["checks"]["consumer_lag"]["status"], "unknown",
            "the lag is not measured: {body}"
        );
        let custom = BridgeMetrics::new(5);
        custom.lag(BTreeMap::from([(0, 6)]));
        let (body, _) = custom.health(Some(&up)).await;
        assert!(body.contains("\"status\":\"degraded\""), "{body}");
        metrics.lag(BTreeMap::from([(0, LAG_DEGRADED_MESSAGES + 1)]));
        let (body, unhealthy) = metrics.health(Some(&up)).await;
        assert!(!unhealthy);
        assert!(body.contains("\"status\":\"degraded\""), "{body}");
    }
}
