//! librdkafka's mock Kafka cluster, and a reader of whole topics.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Offset, TopicPartitionList};

/// How long [`read_topic`] waits for the messages below the high watermarks it read at its
/// start before it gives up with an error.
const READ_PATIENCE: Duration = Duration::from_secs(60);

/// How long each answer of a [`Broker::down`] broker is held back.
pub const STOPPED_FOR: Duration = Duration::from_secs(10);

/// A Kafka broker in this process: librdkafka's mock cluster with one broker, reachable by
/// any Kafka client (another process included) at [`bootstrap_servers`](Self::bootstrap_servers)
/// while the value lives.
///
/// It keeps messages in memory across [`down`](Self::down) and [`up`](Self::up), so a test can
/// stop the broker in the middle of a run and count every message afterwards.
pub struct Broker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Broker {
    /// Starts a mock cluster with one broker on a loopback port.
    ///
    /// # Errors
    ///
    /// librdkafka could not create the cluster.
    pub fn start() -> KafkaResult<Self> {
        Ok(Self {
            cluster: MockCluster::new(1)?,
        })
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers` or `--brokers`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates `topic` with `partitions` partitions.
    ///
    /// # Errors
    ///
    /// The mock cluster refused (for example, an invalid topic name).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> KafkaResult<()> {
        self.cluster.create_topic(topic, partitions, 1)
    }

    /// Stops the broker answering, as a broker process that is stopped (`SIGSTOP`) or hung:
    /// connections stay open and every response is held back [`STOPPED_FOR`] until
    /// [`up`](Self::up). Messages already written are kept.
    ///
    /// librdkafka's own `broker_down` closes the port and binds it again at once, and aborts
    /// the whole process when that bind fails, which it did in loaded test runs; a held-back
    /// answer gives the clients the same outage without that risk.
    ///
    /// # Errors
    ///
    /// librdkafka refused the operation.
    pub fn down(&self) -> KafkaResult<()> {
        self.cluster.broker_round_trip_time(-1, STOPPED_FOR)
    }

    /// Makes the broker answer at once again after [`down`](Self::down); answers held back
    /// before come when their time is up.
    ///
    /// # Errors
    ///
    /// librdkafka refused the operation.
    pub fn up(&self) -> KafkaResult<()> {
        self.cluster.broker_round_trip_time(-1, Duration::ZERO)
    }

    /// Stops the broker answering for `duration`, then brings it back.
    ///
    /// # Errors
    ///
    /// As [`down`](Self::down) and [`up`](Self::up).
    pub fn outage(&self, duration: Duration) -> KafkaResult<()> {
        self.down()?;
        thread::sleep(duration);
        self.up()
    }

    /// The underlying mock cluster, for request errors, leader changes and round-trip delays.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}

/// One message read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The partition it is in.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The headers, in order, each with its value if any.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The value, if any.
    pub value: Option<Vec<u8>>,
}

impl Message {
    /// The key as UTF-8 text, if there is a key and it is text.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The value as UTF-8 text, if there is a value and it is text.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of the first header named `name`, as UTF-8 text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Reads every message of `topic` on the brokers at `bootstrap_servers`: each partition from
/// its beginning up to the high watermark it has when the call starts, in offset order within
/// a partition, partition after partition. A topic that does not exist yet reads as empty.
///
/// # Errors
///
/// The broker cannot be reached, or the messages below the high watermarks did not all arrive
/// within a minute.
pub fn read_topic(bootstrap_servers: &str, topic: &str) -> KafkaResult<Vec<Message>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "testkit-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .create()?;
    let timeout = Duration::from_secs(30);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    if meta.error().is_some() || meta.partitions().is_empty() {
        return Ok(Vec::new());
    }
    let mut wanted = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in meta.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if high > low {
            wanted.insert(partition.id(), high);
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(low))?;
        }
    }
    let mut read: BTreeMap<i32, Vec<Message>> = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + READ_PATIENCE;
    while !wanted.is_empty() {
        if Instant::now() > deadline {
            return Err(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = result?;
        let Some(&high) = wanted.get(&m.partition()) else {
            continue;
        };
        if m.offset() >= high {
            continue;
        }
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let message = Message {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            headers,
            value: m.payload().map(<[u8]>::to_vec),
        };
        read.entry(m.partition()).or_default().push(message);
        if m.offset() + 1 >= high {
            wanted.remove(&m.partition());
        }
    }
    Ok(read.into_values().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

    fn producer(broker: &Broker) -> BaseProducer {
        ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("message.timeout.ms", "60000")
            .create()
            .unwrap()
    }

    fn send(producer: &BaseProducer, topic: &str, key: &str, value: &str, partition: i32) {
        let headers = OwnedHeaders::new().insert(Header {
            key: "ce_id",
            value: Some(value),
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .key(key)
                    .payload(value)
                    .partition(partition)
                    .headers(headers),
            )
            .unwrap();
    }

    #[test]
    fn reads_every_message_with_key_headers_and_position() {
        let broker = Broker::start().unwrap();
        broker.create_topic("t", 3).unwrap();
        let producer = producer(&broker);
        for i in 0..30 {
            send(
                &producer,
                "t",
                &format!("k{}", i % 3),
                &i.to_string(),
                i % 3,
            );
        }
        producer.flush(Duration::from_secs(30)).unwrap();

        let messages = read_topic(&broker.bootstrap_servers(), "t").unwrap();
        assert_eq!(messages.len(), 30);
        for m in &messages {
            let value: i32 = m.value_str().unwrap().parse().unwrap();
            assert_eq!(m.partition, value % 3);
            assert_eq!(m.offset, i64::from(value / 3));
            assert_eq!(m.key_str(), Some(format!("k{}", value % 3).as_str()));
            assert_eq!(m.header("ce_id"), m.value_str());
        }
        assert!(
            read_topic(&broker.bootstrap_servers(), "absent")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn messages_sent_during_an_outage_arrive_after_it() {
        let broker = Broker::start().unwrap();
        broker.create_topic("t", 1).unwrap();
        let producer = producer(&broker);
        send(&producer, "t", "k", "before", 0);
        producer.flush(Duration::from_secs(30)).unwrap();

        broker.down().unwrap();
        send(&producer, "t", "k", "during", 0);
        // Nothing can be acknowledged while the broker is down.
        assert!(producer.flush(Duration::from_secs(2)).is_err());
        broker.up().unwrap();
        producer.flush(Duration::from_secs(60)).unwrap();

        let values: Vec<_> = read_topic(&broker.bootstrap_servers(), "t")
            .unwrap()
            .iter()
            .map(|m| m.value_str().unwrap().to_owned())
            .collect();
        assert_eq!(values, ["before", "during"]);
    }
}
