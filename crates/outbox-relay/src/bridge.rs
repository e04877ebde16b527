//! The bridge: a Kafka topic -> another topic, in a consumer group, each message read as a
//! CloudEvent (either content mode) or a python-outbox-core publisher message and written
//! in the chosen content mode and profile.
//!
//! ```no_run
//! use outbox_relay::bridge::{BridgeOptions, InputFormat};
//! use outbox_relay::OutputMode;
//! # async fn example() -> Result<(), outbox_relay::bridge::BridgeError> {
//! let options = BridgeOptions {
//!     brokers: "127.0.0.1:9092".into(),
//!     from_topic: "outbox".into(),
//!     to_topic: "events".into(),
//!     group: "outbox-bridge".into(),
//!     input: InputFormat::Auto,
//!     mode: OutputMode::Structured,
//!     dead_letter_topic: Some("outbox-dead".into()),
//!     ..BridgeOptions::default()
//! };
//! let summary = outbox_relay::bridge::run(options, std::future::pending()).await?;
//! println!("{} produced", summary.produced);
//! # Ok(()) }
//! ```
//!
//! # The engine
//! The same design as the relay's: a source (the consumer), one engine that alone owns
//! ordering, acknowledgements, commits and shutdown, and a sink (the producer). The relay's
//! [`Engine`](crate::Engine) is built around rows of a table (claims, marks, buckets, retries
//! per row), so the bridge has an engine of its own in that shape, on librdkafka's
//! synchronous clients in a thread of its own: the consumer's rebalance callback runs inside
//! the engine's `poll`, where it can wait for the acknowledgements of the partitions being
//! revoked and commit them before another member takes them over.
//!
//! # Guarantees, and how
//! 1. **Conversion.** See [`Converter`]: the key is kept (the partition key when the input
//!    had none); headers that are not CloudEvents attributes travel with the message.
//! 2. **Order.** Messages are produced in the order of their input partition through the
//!    idempotent producer (`acks=all`), which keeps the order of each output partition across
//!    retries; the output partition is chosen by the key with the Java client's partitioner
//!    (murmur2; every message without a key goes to one partition), so two messages of one
//!    input partition that land on one output partition keep their order, and every message
//!    of a key lands on one output partition.
//! 3. **At least once** (the default). An offset is committed only when every message
//!    before it in its partition is acknowledged by the broker (output or dead-letter
//!    topic); commits go every 200 ms. librdkafka retries transient errors without end
//!    (`message.timeout.ms=0`). On a rebalance, the partitions revoked wait for their
//!    acknowledgements (up to 30 s) and are committed before they move: nothing
//!    acknowledged is sent again by the next owner, and nothing unacknowledged is skipped.
//!    A crash (kill -9) sends again at most what was acknowledged after the last commit.
//!    Reading each assigned partition must resume at its committed offset; on a broker that
//!    answers a Fetch from inside a record batch with the next batch (a Kafka-protocol broker
//!    other than Apache Kafka may), the bridge reads it again from further back first (see
//!    `resume.rs`); on Apache Kafka the check ends at the first message, or one step back
//!    past a transaction marker.
//! 4. **Exactly once** (`exactly_once`). A transactional producer; each transaction holds
//!    up to 100 ms (at most 10,000 messages) of input, its output and dead-letter messages
//!    and the consumed offsets (`send_offsets_to_transaction` with the consumer's group
//!    metadata, so a member fenced by a rebalance cannot commit); the consumer reads with
//!    `isolation.level=read_committed`, and so must the consumers of the output. A
//!    rebalance commits the open transaction before the partitions move; a transaction that
//!    cannot commit is aborted and its input read again from the committed offsets. After
//!    each transaction commits, the same offsets are also committed plainly before the next
//!    begins: redundant on a broker that stores transactional offset commits, harmless
//!    since nothing else moves them in between. The transactional id is new for each run;
//!    the transaction a killed bridge left open is aborted by the broker after
//!    `transaction.timeout.ms` (60 s), until when read-committed consumers of its
//!    partitions wait.
//! 5. **Bad messages.** A message that cannot be read, or that the output topic refuses, goes
//!    to the dead-letter topic with its key, headers and value plus `outbox-error`,
//!    `outbox-source-topic`, `outbox-source-partition` and `outbox-source-offset`. Without
//!    one the bridge stops with [`BridgeError::Message`] naming the offset, after committing
//!    what came before it in its partition and nothing past it.
//! 6. **Running.** Until the shutdown future resolves (finish what is in flight, commit,
//!    leave the group) or, with `idle_exit`, until no message came for that long.
//! 7. **Observability.** `/metrics` and `/health` (see [`metrics`]) and log lines in the
//!    relay's formats.

mod convert;
pub mod metrics;
mod pipeline;
mod resume;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use outbox_cloudevents::Profile;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer as _};

pub use convert::{ConvertError, Converter, InputFormat};
pub use metrics::BridgeMetrics;

use crate::kafka_log::KafkaLog;
use crate::observe::Logger;
use crate::sink::{OutputMode, Probe};

/// Everything `outbox-ce bridge` takes.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// The topic read.
    pub from_topic: String,
    /// The topic written.
    pub to_topic: String,
    /// The consumer group.
    pub group: String,
    /// What the input holds.
    pub input: InputFormat,
    /// The output's content mode.
    pub mode: OutputMode,
    /// The output's profile.
    pub profile: Profile,
    /// Where messages that cannot be bridged go; `None` stops the bridge at the first.
    pub dead_letter_topic: Option<String>,
    /// Kafka transactions (see the module docs).
    pub exactly_once: bool,
    /// Stop after this long without a message.
    pub idle_exit: Option<Duration>,
    /// Serve `/metrics` and `/health` here.
    pub metrics_listen: Option<String>,
    /// `/health` says the consumer lag is `degraded` above this many messages (default
    /// [`metrics::LAG_DEGRADED_MESSAGES`]).
    pub lag_degraded_messages: u64,
    /// Log lines.
    pub logger: Logger,
    /// More librdkafka consumer properties, applied after the bridge's own.
    pub consumer_properties: Vec<(String, String)>,
    /// More librdkafka producer properties, applied after the bridge's own.
    pub producer_properties: Vec<(String, String)>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            brokers: String::new(),
            from_topic: String::new(),
            to_topic: String::new(),
            group: String::new(),
            input: InputFormat::Auto,
            mode: OutputMode::Binary,
            profile: Profile::Canonical,
            dead_letter_topic: None,
            exactly_once: false,
            idle_exit: None,
            metrics_listen: None,
            lag_degraded_messages: metrics::LAG_DEGRADED_MESSAGES,
            logger: Logger::default(),
            consumer_properties: Vec::new(),
            producer_properties: Vec::new(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeSummary {
    /// Messages read (a message read again after a rebalance or an abort counts again).
    pub consumed: u64,
    /// Messages acknowledged on the output topic (committed, with transactions).
    pub produced: u64,
    /// Messages acknowledged on the dead-letter topic.
    pub dead_lettered: u64,
}

/// Why the bridge stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeError {
    /// A message could not be bridged and there is no dead-letter topic (or it refused the
    /// message too); nothing past it was committed.
    Message {
        /// Its topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// What is wrong with it.
        error: String,
    },
    /// Kafka refused the configuration, or a transaction could neither commit nor abort.
    Kafka(String),
    /// The metrics address cannot be bound.
    Listen(String),
}

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BridgeError::Message {
                topic,
                partition,
                offset,
                error,
            } => write!(
                f,
                "{topic} partition {partition} offset {offset}: {error}; stopped there, nothing past it committed (name a --dead-letter-topic to set such messages aside)"
            ),
            BridgeError::Kafka(e) | BridgeError::Listen(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for BridgeError {}

/// Runs the bridge until `shutdown` resolves, the input stays idle for `idle_exit`, or an
/// error.
///
/// # Errors
/// [`BridgeError::Message`] for a message that cannot be bridged without a dead-letter
/// topic, [`BridgeError::Kafka`] when the clients cannot be created or a transaction
/// fails for good, [`BridgeError::Listen`] when the metrics address cannot be bound.
pub async fn run(
    options: BridgeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<BridgeSummary, BridgeError> {
    let metrics = Arc::new(BridgeMetrics::new(options.lag_degraded_messages));
    // One log for the bridge's clients, so that one failure each of them sees is written
    // once.
    let log = Arc::new(KafkaLog::new(options.logger.clone(), "bridge"));
    let server = match &options.metrics_listen {
        Some(addr) => {
            let listener = crate::observe::bind(addr)
                .await
                .map_err(|e| BridgeError::Listen(format!("--metrics-listen {addr}: {e}")))?;
            Some(tokio::spawn(crate::observe::serve(
                listener,
                Arc::clone(&metrics),
                Some(probe(&options, Arc::clone(&log))?),
                crate::observe::Endpoints {
                    metrics: true,
                    health: true,
                },
            )))
        }
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut pipeline = {
        let (metrics, stop) = (Arc::clone(&metrics), Arc::clone(&stop));
        tokio::task::spawn_blocking(move || pipeline::run(options, metrics, stop, log))
    };
    let joined = tokio::select! {
        joined = &mut pipeline => joined,
        () = shutdown => {
            stop.store(true, Ordering::Relaxed);
            pipeline.await
        }
    };
    if let Some(server) = server {
        server.abort();
    }
    joined.map_err(|e| BridgeError::Kafka(format!("the bridge's thread failed: {e}")))?
}

/// The health check's client: librdkafka's log goes to the bridge's.
struct HealthClient {
    log: Arc<KafkaLog>,
}

impl ClientContext for HealthClient {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl rdkafka::producer::ProducerContext for HealthClient {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, (): ()) {}
}

/// A metadata request for the output topic, for `/health`.
fn probe(options: &BridgeOptions, log: Arc<KafkaLog>) -> Result<Probe, BridgeError> {
    let producer: BaseProducer<HealthClient> = pipeline::client_config(options)
        .set("client.id", "outbox-ce-bridge-health")
        .create_with_context(HealthClient { log })
        .map_err(|e| BridgeError::Kafka(format!("Kafka client: {e}")))?;
    let producer = Arc::new(producer);
    let topic = options.to_topic.clone();
    Ok(Arc::new(move || {
        let (producer, topic) = (Arc::clone(&producer), topic.clone());
        Box::pin(async move {
            let result = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(Some(&topic), Duration::from_secs(2))
                    .map(drop)
            })
            .await
            .map_err(|e| e.to_string())?;
            result.map_err(|e| format!("Kafka: {e}"))
        })
    }))
}
