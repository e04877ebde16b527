//! The bridge's tests: a corpus of real peer SDK output, python-outbox-core publisher
//! messages and malformed messages on an input topic, bridge processes, and checks of what
//! reached the output and dead-letter topics.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use outbox_cloudevents::interchange::Record;
pub use outbox_relay::OutputMode;
pub use outbox_relay::bridge::{Converter, InputFormat};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use testkit::Message;

use crate::common::ROOT;
use crate::common::relay::Relay;

/// The header every input message carries: its number in the corpus. Headers that are not
/// CloudEvents attributes travel through the bridge, so it names the input of each output.
pub const SEQ: &str = "bridge-test-seq";

/// What an input message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A python-outbox-core publisher message (value = the `to_message()` object).
    Publisher,
    /// A CloudEvent from a peer SDK, in binary or structured mode.
    Peer,
    /// Not bridgeable.
    Bad,
}

/// One input message.
#[derive(Debug, Clone)]
pub struct Input {
    pub seq: u64,
    pub kind: Kind,
    /// The CloudEvents `id` (or `event_id`) it carries, if good.
    pub id: Option<String>,
    pub partition: i32,
    pub message: outbox_cloudevents::Message,
}

/// The real messages: python-outbox-core's `to_message()` objects (keyed by their aggregate
/// id, as its publisher does, and once without a key) and the peer SDKs' messages in both
/// modes, as the interop fixtures hold them.
pub fn good_messages() -> Vec<(Kind, Option<String>, outbox_cloudevents::Message)> {
    let mut out = Vec::new();
    let events =
        std::fs::read_to_string(format!("{ROOT}/fixtures/python-outbox-core/events.jsonl"))
            .unwrap();
    for (i, line) in events.lines().enumerate() {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = json["event_id"].as_str().map(str::to_owned);
        let key = (i != 0).then(|| json["aggregate_id"].as_str().unwrap().as_bytes().to_vec());
        out.push((
            Kind::Publisher,
            id,
            outbox_cloudevents::Message {
                key,
                headers: Vec::new(),
                value: Some(line.as_bytes().to_vec()),
            },
        ));
    }
    for peer in ["python-core", "python-v1", "javascript"] {
        for mode in ["binary", "structured"] {
            let path = format!("{ROOT}/fixtures/interop/from-{peer}-{mode}.jsonl");
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let json: serde_json::Value = serde_json::from_str(line).unwrap();
                if json["message"].is_null() {
                    // The peer could not write this event at all.
                    continue;
                }
                let record = Record::from_json(json["message"].to_string().as_bytes()).unwrap();
                let message = record.message;
                // A peer's defect can make a message no strict reader takes (MATRIX.md):
                // such a message is a bad one, for the dead-letter topic.
                match outbox_cloudevents::decode(&message.as_ref()) {
                    Ok(event) => out.push((Kind::Peer, Some(event.id().to_owned()), message)),
                    Err(_) => out.push((Kind::Bad, None, message)),
                }
            }
        }
    }
    out
}

/// Messages no mode reads: each names a different fault.
pub fn bad_messages() -> Vec<outbox_cloudevents::Message> {
    let plain = |headers: Vec<(&str, &str)>, value: &str| outbox_cloudevents::Message {
        key: Some(b"bad".to_vec()),
        headers: headers
            .into_iter()
            .map(|(n, v)| outbox_cloudevents::Header::new(n.to_owned(), v.as_bytes()))
            .collect(),
        value: Some(value.as_bytes().to_vec()),
    };
    vec![
        // Neither a CloudEvent nor JSON.
        plain(vec![], "not json at all"),
        // Binary mode without ce_id.
        plain(
            vec![
                ("ce_specversion", "1.0"),
                ("ce_source", "s"),
                ("ce_type", "t"),
            ],
            "{}",
        ),
        // Structured mode with a value that is not JSON.
        plain(
            vec![("content-type", "application/cloudevents+json")],
            "{\"id\": ",
        ),
        // A to_message() object without event_id.
        plain(
            vec![],
            r#"{"event_type":"a.b","aggregate_id":"x","occurred_at":"2024-05-06T07:08:09Z","source":"s","data_version":"1.0"}"#,
        ),
    ]
}

/// `count` messages: the good ones in turn, every `bad_every`-th a bad one (`0`: none), on
/// `partitions` partitions in turn, each with a [`SEQ`] header.
pub fn corpus(count: u64, partitions: i32, bad_every: u64) -> Vec<Input> {
    let good = good_messages();
    let bad = bad_messages();
    let (mut g, mut b) = (0, 0);
    (0..count)
        .map(|seq| {
            let partition = i32::try_from(seq % u64::try_from(partitions).unwrap()).unwrap();
            let (kind, id, mut message) = if bad_every > 0 && seq % bad_every == bad_every - 1 {
                b += 1;
                (Kind::Bad, None, bad[b % bad.len()].clone())
            } else {
                g += 1;
                good[g % good.len()].clone()
            };
            message
                .headers
                .push(outbox_cloudevents::Header::new(SEQ, seq.to_string()));
            Input {
                seq,
                kind,
                id,
                partition,
                message,
            }
        })
        .collect()
}

/// `input` as a record for `topic`, to its partition.
pub fn record<'a>(topic: &'a str, input: &'a Input) -> BaseRecord<'a, [u8], [u8]> {
    let m = &input.message;
    let mut record = BaseRecord::to(topic)
        .partition(input.partition)
        .headers(m.to_owned_headers().unwrap());
    if let Some(k) = &m.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &m.value {
        record = record.payload(v.as_slice());
    }
    record
}

/// Produces `inputs` to `topic`, each to its partition, and waits for the acknowledgements.
pub fn produce(brokers: &str, topic: &str, inputs: &[Input]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for input in inputs {
        let mut record = record(topic, input);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    // Bounded as every wait here: a broker that never acknowledges fails the test.
    producer.flush(crate::common::relay::PATIENCE).unwrap();
}

/// The broker a bridge test runs on: the shared Apache Kafka node (`OUTBOX_CE_BROKERS`) or
/// librdkafka's mock cluster in this process.
pub enum Cluster {
    Mock(testkit::Broker),
    External(String),
}

impl Cluster {
    /// The broker `.ci/run` started (`OUTBOX_CE_BROKERS`), if any.
    pub fn external() -> Option<Cluster> {
        std::env::var("OUTBOX_CE_BROKERS")
            .ok()
            .filter(|b| !b.is_empty())
            .map(Cluster::External)
    }

    pub fn mock() -> Cluster {
        Cluster::Mock(testkit::Broker::start().unwrap())
    }

    pub fn brokers(&self) -> String {
        match self {
            Cluster::Mock(b) => b.bootstrap_servers(),
            Cluster::External(b) => b.clone(),
        }
    }

    pub fn is_mock(&self) -> bool {
        matches!(self, Cluster::Mock(_))
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Cluster::Mock(b) => b.create_topic(topic, partitions).unwrap(),
            Cluster::External(brokers) => crate::common::create_topic(brokers, topic, partitions),
        }
    }
}

/// A topic name no other test uses.
pub fn topic(label: &str) -> String {
    crate::common::relay::topic_name(&format!("bridge-{label}"))
}

/// Starts `outbox-ce bridge` with the normative flags and `extra`.
pub fn bridge(brokers: &str, from: &str, to: &str, group: &str, extra: &[&str]) -> Relay {
    let mut args = vec![
        "bridge",
        "--brokers",
        brokers,
        "--from-topic",
        from,
        "--to-topic",
        to,
        "--group",
        group,
        "--consumer-option",
        "session.timeout.ms=6000",
    ];
    args.extend_from_slice(extra);
    Relay::spawn(&args, &[])
}

/// The input number of a message the bridge wrote.
pub fn seq_of(m: &Message) -> u64 {
    m.header(SEQ)
        .unwrap_or_else(|| panic!("no {SEQ} header on {m:?}"))
        .parse()
        .unwrap()
}

/// The committed offsets of `group` on `topic`'s `partitions` partitions.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// What a run left on the output and dead-letter topics, checked against the inputs.
pub struct Outcome {
    /// How many inputs were bad for this mode.
    pub bad: usize,
    /// How many times each good input reached the output.
    pub output_counts: HashMap<u64, u32>,
    /// How many times each bad input reached the dead-letter topic.
    pub dead_counts: HashMap<u64, u32>,
}

impl Outcome {
    pub fn duplicates(&self) -> Vec<u64> {
        let mut d: Vec<u64> = self
            .output_counts
            .iter()
            .chain(&self.dead_counts)
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect();
        d.sort_unstable();
        d
    }
}

/// Checks the output and dead-letter topics against `inputs`: every good input on the
/// output at least once with its id, key and headers; every bad one on the dead-letter
/// topic with its key, value, headers and the error headers; nothing else; on each output
/// partition, the first appearances there of the messages of one input partition in input order.
///
/// Which inputs are bad depends on the output mode (binary mode cannot carry an event
/// without data, `outbox-json` a CloudEvent that is not an outbox event): `converter` says,
/// after the input kinds; it must agree with them for the malformed messages.
pub fn check(
    inputs: &[Input],
    output: &[Message],
    dead: &[Message],
    from_topic: &str,
    converter: &Converter,
) -> Outcome {
    let inputs: Vec<Input> = inputs
        .iter()
        .map(|i| {
            let mut i = i.clone();
            let converts = converter.convert(&i.message.as_ref()).is_ok();
            if i.kind == Kind::Bad {
                assert!(!converts, "malformed input {} converts", i.seq);
            } else if !converts {
                i.kind = Kind::Bad;
            }
            i
        })
        .collect();
    let inputs = &inputs[..];
    let by_seq: HashMap<u64, &Input> = inputs.iter().map(|i| (i.seq, i)).collect();
    let mut output_counts: HashMap<u64, u32> = HashMap::new();
    // (output partition, input partition) -> last input offset seen for the first time.
    let mut order: HashMap<(i32, i32), u64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for m in output {
        let seq = seq_of(m);
        let input = by_seq[&seq];
        assert_ne!(input.kind, Kind::Bad, "bad input {seq} reached the output");
        *output_counts.entry(seq).or_default() += 1;
        if seen.insert((m.partition, seq)) {
            let last = order.entry((m.partition, input.partition)).or_default();
            assert!(
                seq >= *last,
                "output partition {}: input {seq} (partition {}) after input {last}",
                m.partition,
                input.partition
            );
            *last = seq;
        }
        // The event is the input's, under the input's key (or its partition key).
        let message = outbox_cloudevents::MessageRef {
            key: m.key.as_deref(),
            headers: m
                .headers
                .iter()
                .map(|(n, v)| outbox_cloudevents::HeaderRef {
                    name: n.as_bytes(),
                    value: v.as_deref(),
                })
                .collect(),
            value: m.value.as_deref(),
        };
        let id = outbox_cloudevents::decode(&message)
            .map(|e| e.id().to_owned())
            .or_else(|_| {
                let json: serde_json::Value =
                    serde_json::from_slice(m.value.as_deref().unwrap_or_default())
                        .map_err(|e| e.to_string())?;
                Ok::<_, String>(json["event_id"].as_str().unwrap_or_default().to_owned())
            })
            .unwrap();
        assert_eq!(Some(id.as_str()), input.id.as_deref(), "input {seq}");
        if let Some(key) = &input.message.key {
            assert_eq!(m.key.as_ref(), Some(key), "input {seq} keeps its key");
        } else if input.kind == Kind::Publisher {
            // An outbox event always has a partition key (its aggregate id at least).
            assert!(m.key.is_some(), "input {seq} gets its partition key");
        }
    }
    let mut dead_counts: HashMap<u64, u32> = HashMap::new();
    for m in dead {
        let seq = seq_of(m);
        let input = by_seq[&seq];
        assert_eq!(
            input.kind,
            Kind::Bad,
            "good input {seq} was dead-lettered: {m:?}"
        );
        *dead_counts.entry(seq).or_default() += 1;
        assert_eq!(m.key, input.message.key);
        assert_eq!(m.value, input.message.value);
        let n = input.message.headers.len();
        let original: Vec<(String, Option<Vec<u8>>)> = input
            .message
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(&h.name).into_owned(),
                    h.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            &m.headers[..n],
            &original[..],
            "input {seq}: its headers first"
        );
        assert!(!m.header("outbox-error").unwrap_or_default().is_empty());
        assert_eq!(m.header("outbox-source-topic"), Some(from_topic));
        assert_eq!(
            m.header("outbox-source-partition"),
            Some(input.partition.to_string().as_str())
        );
        assert!(
            m.header("outbox-source-offset")
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
    }
    for input in inputs {
        match input.kind {
            Kind::Bad => assert!(
                dead_counts.contains_key(&input.seq),
                "bad input {} is not on the dead-letter topic",
                input.seq
            ),
            _ => assert!(
                output_counts.contains_key(&input.seq),
                "input {} ({:?}) is not on the output",
                input.seq,
                input.kind
            ),
        }
    }
    Outcome {
        bad: inputs.iter().filter(|i| i.kind == Kind::Bad).count(),
        output_counts,
        dead_counts,
    }
}

/// The number of messages on `topic` (sum of high watermarks).
pub fn high_watermarks(brokers: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map(|(_, h)| h)
                .unwrap_or(0)
        })
        .sum()
}

/// Every message of `topic`'s partitions, read from the beginning until nothing new came for
/// 3 seconds, with `isolation.level=read_committed`: what a consumer of the bridge's output sees,
/// whatever the high watermarks say. In offset order within a partition, partition
/// after partition.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<Message> {
    use rdkafka::message::{Headers as _, Message as _};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bridge-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut read: BTreeMap<i32, Vec<Message>> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut last = std::time::Instant::now();
    while last.elapsed() < Duration::from_secs(3) && std::time::Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = result.unwrap();
        last = std::time::Instant::now();
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        read.entry(m.partition()).or_default().push(Message {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            headers,
            value: m.payload().map(<[u8]>::to_vec),
        });
    }
    read.into_values().flatten().collect()
}

/// The value of a counter on a bridge's `/metrics`, if it answers.
pub fn metric(addr: &str, name: &str) -> Option<f64> {
    let (_, body) = crate::common::relay::http_get(addr, "/metrics")?;
    testkit::prometheus::parse(&body).ok()?.value(name, &[])
}
