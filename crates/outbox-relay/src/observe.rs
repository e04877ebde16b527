//! Observability: counters in the Prometheus text format at `/metrics`, python-outbox-core's
//! health check at `/health`, and one log line per batch on standard error.
//!
//! The counters are those of any pipeline (a relay or a bridge): messages published,
//! failed and retried, the backlog (pending rows, or consumer lag) and the age of its oldest
//! item, and the publish latency (from handing a message to the destination to its
//! acknowledgement). Each metric name starts with the pipeline's prefix, `outbox_relay_`
//! for the relay.
//!
//! `/health` answers python-outbox-core's `OutboxHealthCheck.check_health()` shape:
//! `{"status": "healthy"|"degraded"|"unhealthy", "timestamp": ..., "checks": {"database":
//! {"status": ...}, "broker": {"status": ...}, "outbox_lag": {"status": ..., "pending_count":
//! N, "oldest_event_age_seconds": S}, "failed_events": {"status": ..., "failed_count": N}}}`.
//! - `database`: `unhealthy` (with `error`) when the relay's last statement failed, until
//!   one succeeds again (the relay keeps running and reconnects).
//! - `broker`: `unhealthy` (with `error`) when a metadata request for the topic fails
//!   within two seconds; `not_applicable` (with `reason`) when the destination has no
//!   broker (standard output).
//! - `outbox_lag`: `degraded` when the same row has been the first pending one for longer
//!   than the threshold (`threshold_seconds`, [`EngineOptions::lag_degraded_after`](crate::EngineOptions::lag_degraded_after);
//!   its `occurred_at`, a domain time, may be old for reasons of its own, so the age
//!   reported is not what is judged); `unknown` (with `reason`, and the figures last
//!   measured) while the database is unreachable, since nothing can be measured then.
//! - `failed_events`: `degraded` while the table holds failed rows (`failed_at` set, not
//!   published): they wait for an operator.
//!
//! The whole is the worst check: `unhealthy`, then `degraded` (an `unknown` check counts as
//! degraded), then `healthy`; `not_applicable` counts for nothing. `unhealthy` answers HTTP
//! 503, anything else 200.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::sink::Probe;

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// How long one item may stay the oldest pending before the lag check says `degraded`, by
/// default ([`EngineOptions::lag_degraded_after`](crate::EngineOptions::lag_degraded_after)).
pub const LAG_DEGRADED_AFTER: Duration = Duration::from_secs(300);

/// [`LAG_DEGRADED_AFTER`] in seconds.
pub const LAG_DEGRADED_SECONDS: f64 = 300.0;

/// The counters of a pipeline, shared between it and the HTTP endpoint.
#[derive(Debug)]
pub struct Metrics {
    prefix: String,
    published: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    pending: AtomicU64,
    oldest_micros: AtomicU64,
    stuck_micros: AtomicU64,
    failed_rows: AtomicU64,
    lag_degraded_after: Duration,
    latency: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    database_ok: AtomicBool,
    database_error: Mutex<String>,
}

impl Metrics {
    /// Counters named `<prefix>_published_total` and so on.
    pub fn new(prefix: &str) -> Self {
        Metrics {
            prefix: prefix.to_owned(),
            published: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            oldest_micros: AtomicU64::new(0),
            stuck_micros: AtomicU64::new(0),
            failed_rows: AtomicU64::new(0),
            lag_degraded_after: LAG_DEGRADED_AFTER,
            latency: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_micros: AtomicU64::new(0),
            database_ok: AtomicBool::new(true),
            database_error: Mutex::new(String::new()),
        }
    }

    /// The same counters, whose lag check says `degraded` when the first pending row has
    /// been the same one for longer than `after`.
    #[must_use]
    pub fn with_lag_degraded_after(mut self, after: Duration) -> Self {
        self.lag_degraded_after = after;
        self
    }

    /// Sets how many rows of the table are failed (and not published).
    pub fn failed_rows(&self, n: u64) {
        self.failed_rows.store(n, Ordering::Relaxed);
    }

    /// Counts messages published (acknowledged and recorded).
    pub fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a message given up on.
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a retry (after a transient or permanent error).
    pub fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the backlog: its size, the age of its oldest item, and how long that same item
    /// has been seen at the head of the backlog (what the lag check judges: a domain time
    /// can be old for reasons of its own).
    pub fn backlog(&self, pending: u64, oldest_seconds: f64, stuck_seconds: f64) {
        self.pending.store(pending, Ordering::Relaxed);
        self.oldest_micros
            .store((oldest_seconds * 1e6) as u64, Ordering::Relaxed);
        self.stuck_micros
            .store((stuck_seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Records one publish latency.
    pub fn latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records whether the last database statement succeeded.
    pub fn database(&self, result: Result<(), &str>) {
        self.database_ok.store(result.is_ok(), Ordering::Relaxed);
        if let (Err(e), Ok(mut last)) = (result, self.database_error.lock()) {
            e.clone_into(&mut last);
        }
    }

    /// Messages published so far.
    pub fn published_count(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Messages failed so far.
    pub fn failed_count(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let p = &self.prefix;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {p}_{name} {help}\n# TYPE {p}_{name} {kind}\n{p}_{name} {value}"
            );
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "published_total",
            "counter",
            "Messages acknowledged by the destination and marked published.",
            load(&self.published).to_string(),
        );
        metric(
            "failed_total",
            "counter",
            "Rows marked failed.",
            load(&self.failed).to_string(),
        );
        metric(
            "retried_total",
            "counter",
            "Messages sent again after an error.",
            load(&self.retried).to_string(),
        );
        metric(
            "pending",
            "gauge",
            "Rows neither published nor failed.",
            load(&self.pending).to_string(),
        );
        metric(
            "oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest pending row (by occurred_at of the first in seq order).",
            format!("{}", load(&self.oldest_micros) as f64 / 1e6),
        );
        metric(
            "up",
            "gauge",
            "1 while the last database statement succeeded.",
            u8::from(self.database_ok.load(Ordering::Relaxed)).to_string(),
        );
        let name = format!("{p}_publish_latency_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} Seconds from handing a message to the destination to its acknowledgement.\n# TYPE {name} histogram"
        );
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", load(count));
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            load(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }

    /// python-outbox-core's health check as JSON, and whether it is `unhealthy` (see the
    /// module docs); `broker` is `None` for a destination without one.
    pub async fn health(&self, broker: Option<&Probe>) -> (String, bool) {
        let database_ok = self.database_ok.load(Ordering::Relaxed);
        let database = if database_ok {
            serde_json::json!({"status": "healthy"})
        } else {
            let error = self
                .database_error
                .lock()
                .map_or_else(|poisoned| poisoned.into_inner().clone(), |e| e.clone());
            serde_json::json!({"status": "unhealthy", "error": error})
        };
        let broker = broker_check(broker).await;
        let oldest = self.oldest_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let stuck = self.stuck_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let threshold = self.lag_degraded_after.as_secs_f64();
        let mut lag = serde_json::json!({
            "status": if stuck > threshold { "degraded" } else { "healthy" },
            "pending_count": self.pending.load(Ordering::Relaxed),
            "oldest_event_age_seconds": oldest,
            "threshold_seconds": threshold,
        });
        if !database_ok {
            not_measured(
                &mut lag,
                "not measured: the database is unreachable; the figures are the last measured",
            );
        }
        let failed = self.failed_rows.load(Ordering::Relaxed);
        let failed = serde_json::json!({
            "status": if failed > 0 { "degraded" } else { "healthy" },
            "failed_count": failed,
        });
        health_report([
            ("database", database),
            ("broker", broker),
            ("outbox_lag", lag),
            ("failed_events", failed),
        ])
    }
}

/// Marks a check whose figures could not be measured `unknown`, saying why.
pub(crate) fn not_measured(check: &mut serde_json::Value, reason: &str) {
    if let Some(check) = check.as_object_mut() {
        check.insert("status".into(), "unknown".into());
        check.insert("reason".into(), reason.into());
    }
}

/// The broker check: a metadata request, or `not_applicable` without a broker.
pub(crate) async fn broker_check(broker: Option<&Probe>) -> serde_json::Value {
    match broker {
        None => serde_json::json!({
            "status": "not_applicable",
            "reason": "the destination has no broker (standard output)",
        }),
        Some(probe) => match probe().await {
            Ok(()) => serde_json::json!({"status": "healthy"}),
            Err(e) => serde_json::json!({"status": "unhealthy", "error": e}),
        },
    }
}

/// The `/health` body for named checks, each an object with a `status`, and whether it is
/// unhealthy: the worst status wins, as in python-outbox-core's `OutboxHealthCheck`.
pub(crate) fn health_report<const N: usize>(
    checks: [(&str, serde_json::Value); N],
) -> (String, bool) {
    let is = |status: &str| {
        checks
            .iter()
            .any(|(_, check)| check.get("status").is_some_and(|s| s == status))
    };
    let status = if is("unhealthy") {
        "unhealthy"
    } else if is("degraded") || is("unknown") {
        "degraded"
    } else {
        "healthy"
    };
    let checks: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(name, check)| (name.to_owned(), check))
        .collect();
    let body = serde_json::json!({
        "status": status,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "checks": checks,
    });
    (body.to_string(), status == "unhealthy")
}

/// Which endpoints [`serve`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// `/metrics`.
    pub metrics: bool,
    /// `/health`.
    pub health: bool,
}

/// Checks the text of a listen address (`--metrics-listen`): `IP:PORT`, `[IPv6]:PORT` or
/// `HOST:PORT`, the port a number from 0 to 65535 and the host a DNS name. What it does not
/// check is whether the address can be bound (in use, not a local address, a name that does
/// not resolve): [`bind`] says so when the pipeline starts.
///
/// # Errors
/// A message naming the text and what is wrong with it.
pub fn parse_listen_addr(text: &str) -> Result<String, String> {
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    let hint = "write HOST:PORT, such as 127.0.0.1:9464 or [::1]:9464";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("`{text}` is not an address: {hint}"));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "`{text}`: `{port}` is not a port (0 to 65535): {hint}"
        ));
    }
    let name = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(name) {
        return Err(format!(
            "`{text}`: `{host}` is not a host name or an IP address: {hint}"
        ));
    }
    Ok(text.to_owned())
}

/// Binds `addr` for [`serve`].
///
/// # Errors
/// When the address cannot be bound.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// What [`serve`] reports: a pipeline's counters and its health. The relay's [`Metrics`]
/// and the bridge's [`BridgeMetrics`](crate::bridge::BridgeMetrics) are the two.
pub trait Observed: Send + Sync + 'static {
    /// The Prometheus text exposition (format 0.0.4), for `GET /metrics`.
    fn render_metrics(&self) -> String;

    /// python-outbox-core's health check as JSON, and whether it is `unhealthy` (HTTP 503),
    /// for `GET /health`; `broker` is the pipeline's broker check, `None` without a broker.
    fn health(&self, broker: Option<&Probe>) -> impl Future<Output = (String, bool)> + Send;
}

impl Observed for Metrics {
    fn render_metrics(&self) -> String {
        self.to_prometheus()
    }

    fn health(&self, broker: Option<&Probe>) -> impl Future<Output = (String, bool)> + Send {
        Metrics::health(self, broker)
    }
}

/// Answers `GET /metrics` and `GET /health` on `listener` until the task is dropped: a
/// minimal HTTP/1.1 responder, one request per connection.
pub async fn serve<O: Observed>(
    listener: TcpListener,
    metrics: std::sync::Arc<O>,
    broker: Option<Probe>,
    endpoints: Endpoints,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = std::sync::Arc::clone(&metrics);
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            // Read the request head (bounded), then answer by its path.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
                    Ok(Ok(n)) if n > 0 => request.extend_from_slice(buffer.get(..n).unwrap_or(&[])),
                    _ => break,
                }
            }
            let line = request.split(|b| *b == b'\n').next().unwrap_or(&[]);
            let line = String::from_utf8_lossy(line);
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let path = path.split('?').next().unwrap_or("");
            let (status, content_type, body) = match (method, path) {
                ("GET", "/metrics") if endpoints.metrics => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render_metrics(),
                ),
                ("GET", "/health") if endpoints.health => {
                    let (body, unhealthy) = metrics.health(broker.as_ref()).await;
                    let status = if unhealthy {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    };
                    (status, "application/json", body)
                }
                ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "use GET\n".to_owned(),
                ),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The address a listener is bound to, for logs.
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `outbox-ce relay: <message>`.
    #[default]
    Text,
    /// One JSON object a line, with python-outbox-core's event names in `event`
    /// (`outbox.event_published`, `outbox.publish_failed`, `outbox.batch_complete`) and
    /// structlog's `level` and `timestamp`.
    Json,
}

/// Writes log lines on standard error.
#[derive(Debug, Clone, Default)]
pub struct Logger {
    /// The format.
    pub format: LogFormat,
    /// Also log `outbox.event_published` for every row (off by default: one line a batch).
    pub events: bool,
    /// Log nothing (embedders with their own logging).
    pub quiet: bool,
}

impl Logger {
    /// Logs `event` (a python-outbox-core event name such as `outbox.batch_complete`) with
    /// `fields`; `text` is the line in text format.
    pub fn log(&self, level: &str, event: &str, text: &str, fields: serde_json::Value) {
        self.log_as("relay", level, event, text, fields);
    }

    /// [`log`](Self::log) for another `outbox-ce` command: text lines read
    /// `outbox-ce <command>: <text>`.
    pub fn log_as(
        &self,
        command: &str,
        level: &str,
        event: &str,
        text: &str,
        fields: serde_json::Value,
    ) {
        if self.quiet {
            return;
        }
        let line = match self.format {
            LogFormat::Text => format!("outbox-ce {command}: {text}"),
            LogFormat::Json => {
                let mut object = serde_json::Map::new();
                object.insert("event".into(), event.into());
                object.insert("level".into(), level.into());
                object.insert(
                    "timestamp".into(),
                    chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                        .into(),
                );
                if let serde_json::Value::Object(fields) = fields {
                    object.extend(fields);
                }
                serde_json::Value::Object(object).to_string()
            }
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn prometheus_text_has_every_series() {
        let metrics = Metrics::new("outbox_relay");
        metrics.published(3);
        metrics.failed();
        metrics.latency(Duration::from_millis(3));
        metrics.backlog(7, 1.5, 0.0);
        let text = metrics.to_prometheus();
        for line in [
            "outbox_relay_published_total 3",
            "outbox_relay_failed_total 1",
            "outbox_relay_retried_total 0",
            "outbox_relay_pending 7",
            "outbox_relay_oldest_pending_age_seconds 1.5",
            "outbox_relay_publish_latency_seconds_bucket{le=\"0.002\"} 0",
            "outbox_relay_publish_latency_seconds_bucket{le=\"0.005\"} 1",
            "outbox_relay_publish_latency_seconds_bucket{le=\"+Inf\"} 1",
            "outbox_relay_publish_latency_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn metrics_listen_not_an_address_is_refused() {
        for good in [
            "127.0.0.1:9464",
            "[::1]:0",
            "localhost:9464",
            "metrics.internal:80",
        ] {
            assert_eq!(parse_listen_addr(good).as_deref(), Ok(good));
        }
        for (bad, says) in [
            ("not-an-address", "not an address"),
            ("127.0.0.1:99999", "`99999` is not a port"),
            ("127.0.0.1:", "is not a port"),
            (":9464", "is not a host name"),
            ("::1:9464", "is not a host name"),
            ("bad host:80", "is not a host name"),
        ] {
            let e = parse_listen_addr(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains(says), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn health_is_the_worst_check() {
        let metrics = Metrics::new("outbox_relay");
        let up: Probe = Arc::new(|| Box::pin(async { Ok(()) }));
        let down: Probe = Arc::new(|| Box::pin(async { Err("all brokers down".to_owned()) }));
        let (body, unhealthy) = metrics.health(Some(&up)).await;
        assert!(!unhealthy);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "healthy");
        assert_eq!(json["checks"]["outbox_lag"]["pending_count"], 0);
        let (body, unhealthy) = metrics.health(Some(&down)).await;
        assert!(unhealthy);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["checks"]["broker"]["error"], "all brokers down");
        metrics.backlog(1, LAG_DEGRADED_SECONDS + 1.0, 1.0);
        let (body, _) = metrics.health(Some(&up)).await;
        assert!(
            body.contains("\"status\":\"healthy\""),
            "an old domain time alone: {body}"
        );
        metrics.backlog(1, 1.0, LAG_DEGRADED_SECONDS + 1.0);
        let (body, unhealthy) = metrics.health(Some(&up)).await;
        assert!(!unhealthy);
        assert!(body.contains("\"status\":\"degraded\""), "{body}");
        metrics.database(Err("connection refused"));
        let (_, unhealthy) = metrics.health(Some(&up)).await;
        assert!(unhealthy);
    }

    fn checks(body: &str) -> serde_json::Value {
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        json
    }

    #[tokio::test]
    async fn health_broker_of_stdout_is_not_applicable() {
        let metrics = Metrics::new("outbox_relay");
        let (body, unhealthy) = metrics.health(None).await;
        let json = checks(&body);
        assert!(!unhealthy);
        assert_eq!(
            json["checks"]["broker"]["status"], "not_applicable",
            "{json}"
        );
        assert_eq!(json["status"], "healthy", "{json}");
    }

    #[tokio::test]
    async fn health_lag_is_unknown_while_the_database_is_down() {
        let metrics = Metrics::new("outbox_relay");
        metrics.backlog(3, 1.0, 1.0);
        metrics.database(Err("connection refused"));
        let (body, unhealthy) = metrics.health(None).await;
        let json = checks(&body);
        assert!(unhealthy);
        assert_eq!(json["checks"]["outbox_lag"]["status"], "unknown", "{json}");
        assert_eq!(json["checks"]["outbox_lag"]["pending_count"], 3, "{json}");
        metrics.database(Ok(()));
        let (body, _) = metrics.health(None).await;
        assert_eq!(checks(&body)["checks"]["outbox_lag"]["status"], "healthy");
    }

    #[tokio::test]
    async fn health_failed_rows_degrade() {
        let metrics = Metrics::new("outbox_relay");
        metrics.failed_rows(2);
        let (body, unhealthy) = metrics.health(None).await;
        let json = checks(&body);
        assert!(!unhealthy);
        assert_eq!(json["status"], "degraded", "{json}");
        assert_eq!(json["checks"]["failed_events"]["failed_count"], 2, "{json}");
    }

    #[tokio::test]
    async fn health_lag_threshold_is_a_setting() {
        let metrics = Metrics::new("outbox_relay").with_lag_degraded_after(Duration::from_secs(10));
        metrics.backlog(1, 0.0, 11.0);
        let (body, _) = metrics.health(None).await;
        let json = checks(&body);
        assert_eq!(json["checks"]["outbox_lag"]["status"], "degraded", "{json}");
        assert_eq!(
            json["checks"]["outbox_lag"]["threshold_seconds"], 10.0,
            "{json}"
        );
    }
}
