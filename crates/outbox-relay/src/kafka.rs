//! The Kafka sink: librdkafka's idempotent producer with `acks=all`.
//!
//! `message.timeout.ms` is 0 (infinite) and `retries` librdkafka's default (unbounded), so a
//! transient error (broker unreachable, request timeout, leader change) never fails a
//! message: librdkafka retries it in order, and the idempotent producer keeps each
//! partition's order and writes no duplicate. What reaches the engine as an error is a
//! refusal of the message itself (too large, invalid or unknown topic, not authorised,
//! invalid record), which counts as an attempt at the row, or a fatal producer error, which
//! stops the relay (its supervisor starts it again; rows in flight are sent again).
//!
//! Latency: `linger.ms` is 0 (librdkafka's default waits 5 ms for more messages before
//! sending a batch) and `socket.nagle.disable` is true, so a row that commits alone goes out
//! at once. Batches still form under load: messages queue while earlier requests are in
//! flight (`--producer-option linger.ms=5` restores librdkafka's default).

use std::sync::Arc;
use std::time::Duration;

use outbox_cloudevents::Message;
use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};

use crate::kafka_log::{self, KafkaLog};
use crate::observe::Logger;
use crate::sink::{Probe, Route, Sink, SinkError};

/// Where and how to produce.
#[derive(Debug, Clone, Default)]
pub struct KafkaOptions {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT...]`.
    pub brokers: String,
    /// The topic rows are published to.
    pub topic: String,
    /// The topic failed rows go to, if any.
    pub dead_letter_topic: Option<String>,
    /// More librdkafka producer properties (`linger.ms`, `security.protocol`, ...), applied
    /// after the relay's own; the relay's guarantees assume `enable.idempotence`, `acks` and
    /// `message.timeout.ms` are left alone.
    pub properties: Vec<(String, String)>,
}

/// The producer's context: librdkafka's log and errors go to the relay's log
/// ([`KafkaLog`]), and the last error is kept for [`Sink::last_error`].
#[derive(Clone)]
pub struct BrokerState {
    log: Arc<KafkaLog>,
}

impl ClientContext for BrokerState {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

/// Produces to a Kafka topic.
pub struct KafkaSink {
    producer: FutureProducer<BrokerState>,
    state: BrokerState,
    options: KafkaOptions,
}

impl KafkaSink {
    /// A producer for `options`, whose librdkafka log lines go to standard error in the
    /// relay's text format ([`KafkaSink::with_logger`] chooses).
    ///
    /// # Errors
    /// A fatal [`SinkError`] when librdkafka refuses the configuration.
    pub fn new(options: KafkaOptions) -> Result<Self, SinkError> {
        KafkaSink::with_logger(options, Logger::default())
    }

    /// A producer for `options` whose librdkafka log lines and errors go to `logger`,
    /// rate-limited (see [`crate::kafka_log`]).
    ///
    /// # Errors
    /// A fatal [`SinkError`] when librdkafka refuses the configuration.
    pub fn with_logger(options: KafkaOptions, logger: Logger) -> Result<Self, SinkError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &options.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "0")
            .set("socket.nagle.disable", "true")
            .set("client.id", "outbox-relay");
        for (key, value) in &options.properties {
            config.set(key, value);
        }
        config.set_log_level(kafka_log::LOG_LEVEL);
        let state = BrokerState {
            log: Arc::new(KafkaLog::new(logger, "relay")),
        };
        let producer = config
            .create_with_context(state.clone())
            .map_err(|e| SinkError::fatal(format!("Kafka producer: {e}")))?;
        Ok(KafkaSink {
            producer,
            state,
            options,
        })
    }

    /// The producer, for embedders that want its statistics or metadata.
    pub fn producer(&self) -> &FutureProducer<BrokerState> {
        &self.producer
    }
}

/// Sorts librdkafka's errors into the engine's classes.
fn classify(e: &KafkaError) -> SinkError {
    use RDKafkaErrorCode as C;
    let message = format!("Kafka: {e}");
    match e.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidTopic
            | C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::UnknownPartition
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::PolicyViolation
            | C::UnsupportedForMessageFormat
            | C::InvalidRequiredAcks,
        ) => SinkError::permanent(message),
        Some(C::Fatal) => SinkError::fatal(message),
        _ => SinkError::transient(message),
    }
}

impl Sink for KafkaSink {
    type Delivery = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), SinkError>> + Send + 'static>,
    >;

    fn send(&mut self, route: Route, message: &Message) -> Self::Delivery {
        let topic = match route {
            Route::Main => self.options.topic.as_str(),
            Route::DeadLetter => match &self.options.dead_letter_topic {
                Some(t) => t.as_str(),
                None => {
                    return Box::pin(std::future::ready(Err(SinkError::permanent(
                        "no dead-letter topic",
                    ))));
                }
            },
        };
        let record = match message.to_record(topic) {
            Ok(record) => record,
            Err(e) => return Box::pin(std::future::ready(Err(SinkError::permanent(e)))),
        };
        match self.producer.send_result(record) {
            Ok(delivery) => {
                let state = self.state.clone();
                Box::pin(async move {
                    match delivery.await {
                        Ok(Ok(_)) => {
                            state.log.clear_error();
                            Ok(())
                        }
                        Ok(Err((e, _))) => Err(classify(&e)),
                        Err(_) => Err(SinkError::transient("Kafka: the producer was closed")),
                    }
                })
            }
            Err((e, _)) => Box::pin(std::future::ready(Err(classify(&e)))),
        }
    }

    fn probe(&self) -> Option<Probe> {
        let producer = self.producer.clone();
        let state = self.state.clone();
        let topic = self.options.topic.clone();
        Some(Arc::new(move || {
            let (producer, state, topic) = (producer.clone(), state.clone(), topic.clone());
            Box::pin(async move {
                let metadata = tokio::task::spawn_blocking(move || {
                    producer
                        .client()
                        .fetch_metadata(Some(&topic), Duration::from_secs(2))
                        .map(drop)
                })
                .await
                .map_err(|e| e.to_string())?;
                match metadata {
                    Ok(()) => {
                        state.log.clear_error();
                        Ok(())
                    }
                    Err(e) => Err(format!("Kafka: {e}")),
                }
            })
        }))
    }

    fn last_error(&self) -> Option<String> {
        self.state.log.last_error()
    }

    fn describe(&self) -> String {
        format!(
            "Kafka {} topic {}",
            self.options.brokers, self.options.topic
        )
    }
}
