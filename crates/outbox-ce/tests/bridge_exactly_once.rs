//! Exactly once on Apache Kafka: two bridges with `--exactly-once` in one consumer group,
//! each under its own `--transactional-id`, over 10,000 messages on 3 partitions (python-outbox-core
//! publisher messages, the Python and JavaScript SDKs' messages in both modes, malformed
//! ones). Mid-run, one bridge is killed with -9 and started again under the dead one's id; or
//! the broker is killed with -9 and started again. Afterwards a read-committed consumer sees
//! every good message on the output exactly once, in order per input partition, every bad one
//! on the dead-letter topic exactly once, and the group's committed offsets are at the end of
//! every partition. Each test runs a Kafka node of its own (one kills it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bridge_support;
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bridge_support::{
    Cluster, Converter, InputFormat, OutputMode, bridge, check, committed, corpus, metric, produce,
    read_all, topic,
};
use common::relay::{Relay, free_addr, wait_for};

const TOTAL: u64 = 10_000;

/// What is killed mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The first bridge, started again under its transactional id.
    Bridge,
    /// The broker, started again on its data.
    Broker,
}

fn exactly_once(fault: Fault) {
    let kafka = testkit::Kafka::start().unwrap();
    let brokers = kafka.bootstrap_servers();
    let cluster = Cluster::External(brokers.clone());
    let (from, to, dead, group) = (topic("in"), topic("out"), topic("dead"), topic("group"));
    cluster.create_topic(&from, 3);
    cluster.create_topic(&to, 3);
    cluster.create_topic(&dead, 1);
    let inputs = corpus(TOTAL, 3, 25);
    let (first, second) = inputs.split_at(inputs.len() / 2);
    let addr = free_addr();
    // A transaction timeout of 10 minutes: a transaction the killed bridge left open is not
    // aborted by the broker's timer within the test, only by the restart under its id; were
    // it not, the read-committed reader below would stop at it and miss what follows, and the
    // member taking the partition over would wait for it and never go idle.
    let args = [
        "--exactly-once",
        "--dead-letter-topic",
        dead.as_str(),
        "--idle-exit",
        "20s",
        "--producer-option",
        "transaction.timeout.ms=600000",
        "--log-format",
        "json",
    ];
    let start = |id: &str, extra: &[&str]| {
        let args = [&args[..], &["--transactional-id", id], extra].concat();
        bridge(&brokers, &from, &to, &group, &args)
    };
    let mut a = start("bridge-a", &["--metrics-listen", addr.as_str()]);
    wait_for("the first bridge to hold partitions", || {
        holds_partitions(&a.stderr())
    });
    let mut b = start("bridge-b", &[]);
    wait_for("both bridges to hold partitions", || {
        holds_partitions(&a.stderr()) && holds_partitions(&b.stderr())
    });
    produce(&brokers, &from, first);
    // Mid-run: the first bridge has committed some transactions and is still at work.
    wait_for("the first bridge to bridge messages", || {
        metric(&addr, "outbox_bridge_produced_total").is_some_and(|n| n >= 300.0)
    });
    let mut restarted = None;
    match fault {
        Fault::Bridge => {
            // The second half first, so that the kill comes while it is being bridged, in
            // the middle of a transaction.
            produce(&brokers, &from, second);
            a.kill9();
            restarted = Some(start("bridge-a", &[]));
        }
        Fault::Broker => {
            kafka.kill().unwrap();
            std::thread::sleep(Duration::from_secs(2));
            kafka.start_again().unwrap();
            produce(&brokers, &from, second);
        }
    }
    let mut running: Vec<&mut Relay> = vec![&mut b];
    match restarted.as_mut() {
        Some(a2) => running.push(a2),
        None => running.push(&mut a),
    }
    let mut logs = Vec::new();
    for bridge in running {
        let status = bridge.wait();
        assert_eq!(
            status,
            0,
            "{}\n--- broker ---\n{}",
            tail(&bridge.stderr()),
            tail_lines(&kafka.log(), 40)
        );
        logs.push(bridge.stderr());
    }
    let ends: BTreeMap<i32, i64> = (0..3)
        .map(|p| (p, inputs.iter().filter(|i| i.partition == p).count() as i64))
        .collect();
    assert_eq!(
        committed(&brokers, &group, &from, 3),
        ends,
        "the group's offsets at the end of every partition\n{}",
        logs.iter()
            .map(|l| tail(l))
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let output = read_all(&brokers, &to, 3);
    let dead_letters = read_all(&brokers, &dead, 1);
    let converter = Converter::new(InputFormat::Auto, OutputMode::Binary, Default::default());
    let outcome = check(&inputs, &output, &dead_letters, &from, &converter);
    assert!(outcome.bad >= 400, "{} bad inputs", outcome.bad);
    assert_eq!(outcome.duplicates(), Vec::<u64>::new(), "nothing twice");
    // Every message counted: each good one on the output once, each bad one dead-lettered once.
    assert_eq!(output.len() + dead_letters.len(), inputs.len());
    assert_eq!(dead_letters.len(), outcome.bad);
    // What the topic holds besides: the output of aborted transactions, which a
    // read-uncommitted reader sees.
    let uncommitted = count_uncommitted(&brokers, &to, 3);
    assert!(uncommitted >= output.len());
    eprintln!(
        "exactly once, {fault:?} killed: {} outputs, {} dead letters, {} aborted outputs on the topic",
        output.len(),
        dead_letters.len(),
        uncommitted - output.len()
    );
}

/// How many records `topic` holds for a read-uncommitted reader (aborted ones too), read
/// from the beginning until nothing new came for 3 seconds.
fn count_uncommitted(brokers: &str, topic: &str, partitions: i32) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bridge-test-uncommitted-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let (mut count, mut last) = (0, std::time::Instant::now());
    while last.elapsed() < Duration::from_secs(3) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.unwrap();
            count += 1;
            last = std::time::Instant::now();
        }
    }
    count
}

/// Whether a bridge's log (JSON lines) says it was assigned at least one partition.
fn holds_partitions(log: &str) -> bool {
    log.lines().any(|l| {
        l.contains("outbox.bridge_assigned")
            && l.split("\"partitions\":[")
                .nth(1)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// The log lines that are not about one dead letter.
fn tail(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains("dead-letter topic:") && !l.contains("outbox.publish_failed"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A bridge killed with -9 mid-run and started again under its transactional id: the
/// restart fences it and aborts its open transaction at once.
#[test]
fn exactly_once_on_kafka_a_bridge_killed_and_restarted_under_its_id() {
    exactly_once(Fault::Bridge);
}

/// The broker killed with -9 mid-run and started again: the bridges wait, retry, and
/// commit every message once.
#[test]
fn exactly_once_on_kafka_the_broker_killed_and_restarted() {
    exactly_once(Fault::Broker);
}
