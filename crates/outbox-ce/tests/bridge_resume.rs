//! A bridge that takes over partitions whose committed offsets lie inside record batches:
//! it bridges every message from each committed offset on, once, and none before it.
//!
//! Partition 0 below resumes inside its first batch, partition 1 inside its only one (the
//! partition's last). Apache Kafka answers a Fetch from inside a batch with that batch and
//! librdkafka drops the records before the asked offset; the bridge also checks that the
//! first message it reads is at the committed offset (`resume.rs`, for brokers that answer
//! from the next batch instead). On Kafka (`OUTBOX_CE_BROKERS`, as `.ci/run` starts it) and
//! on librdkafka's mock cluster this shows that the bridge neither sends again what came
//! before the committed offsets nor holds anything back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bridge_support;
mod common;

use std::collections::BTreeMap;

use bridge_support::{
    Cluster, Converter, Input, InputFormat, OutputMode, bridge, committed, corpus, read_all,
    record, seq_of, topic,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

/// Produces `inputs` to their partitions as one record batch per partition: the producer
/// holds them (`linger.ms`) until the flush sends them.
fn produce_in_one_batch(brokers: &str, topic: &str, inputs: &[Input]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "60000")
        .set("batch.num.messages", "10000")
        .set("batch.size", "10000000")
        .create()
        .unwrap();
    for input in inputs {
        producer
            .send(record(topic, input))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    // Bounded as every wait here: a broker that never acknowledges fails the test.
    producer.flush(common::relay::PATIENCE).unwrap();
}

/// Commits `offsets` for `group`, as a bridge that stopped there would have.
fn commit(brokers: &str, group: &str, topic: &str, offsets: &BTreeMap<i32, i64>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (p, o) in offsets {
        list.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).unwrap();
}

fn resumes_inside_record_batches(cluster: &Cluster) {
    let brokers = cluster.brokers();
    let (from, to, dead, group) = (topic("in"), topic("out"), topic("dead"), topic("group"));
    cluster.create_topic(&from, 2);
    cluster.create_topic(&to, 3);
    cluster.create_topic(&dead, 1);
    // Partition 0: a batch of 100 messages, then one of 50; partition 1: one of 100. Some
    // cannot be written in binary mode (events without data): dead letters.
    let mut inputs = corpus(250, 1, 0);
    for (i, input) in inputs.iter_mut().enumerate() {
        input.partition = i32::from(i >= 150);
    }
    let offset_of = |input: &Input| {
        let seq = usize::try_from(input.seq).unwrap();
        i64::try_from(if seq >= 150 { seq - 150 } else { seq }).unwrap()
    };
    let (first, rest) = inputs.split_at(100);
    let (second, third) = rest.split_at(50);
    produce_in_one_batch(&brokers, &from, &[first, third].concat());
    produce_in_one_batch(&brokers, &from, second);
    // A bridge of the group stopped at offset 50 of partition 0 and 60 of partition 1.
    let resumed = BTreeMap::from([(0, 50), (1, 60)]);
    commit(&brokers, &group, &from, &resumed);
    let mut run = bridge(
        &brokers,
        &from,
        &to,
        &group,
        &["--dead-letter-topic", &dead, "--idle-exit", "4s"],
    );
    assert_eq!(run.wait(), 0, "{}", run.stderr());
    let log = run.stderr();
    let output = read_all(&brokers, &to, 3);
    let dead_letters = read_all(&brokers, &dead, 1);
    assert!(!output.is_empty() && !dead_letters.is_empty());
    let converter = Converter::new(InputFormat::Auto, OutputMode::Binary, Default::default());
    // Input -> (the topic it is on, how many times it is there).
    let mut counts: BTreeMap<u64, (&str, u32)> = BTreeMap::new();
    for (m, topic) in output
        .iter()
        .map(|m| (m, "output"))
        .chain(dead_letters.iter().map(|m| (m, "dead-letter")))
    {
        let entry = counts.entry(seq_of(m)).or_insert((topic, 0));
        assert_eq!(entry.0, topic, "input {} on both topics", seq_of(m));
        entry.1 += 1;
    }
    // Input -> the topic it belongs on.
    let expected: BTreeMap<u64, &str> = inputs
        .iter()
        .filter(|i| offset_of(i) >= resumed[&i.partition])
        .map(|i| {
            let good = converter.convert(&i.message.as_ref()).is_ok();
            (i.seq, if good { "output" } else { "dead-letter" })
        })
        .collect();
    let missing: Vec<(u64, &str)> = expected
        .iter()
        .filter(|(s, topic)| counts.get(*s).is_none_or(|(t, _)| t != *topic))
        .map(|(s, t)| (*s, *t))
        .collect();
    assert!(
        missing.is_empty(),
        "inputs not on the topic they belong on: {missing:?}\n{log}"
    );
    let unexpected: Vec<(u64, u32)> = counts
        .iter()
        .filter(|(s, (_, n))| *n > 1 || !expected.contains_key(s))
        .map(|(s, (_, n))| (*s, *n))
        .collect();
    assert!(
        unexpected.is_empty(),
        "inputs sent before their committed offset or twice: {unexpected:?}\n{log}"
    );
    assert_eq!(
        committed(&brokers, &group, &from, 2),
        BTreeMap::from([(0, 150), (1, 100)]),
        "{log}"
    );
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("reading again"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn resumes_inside_record_batches_on_the_mock_cluster() {
    resumes_inside_record_batches(&Cluster::mock());
}

#[test]
fn resumes_inside_record_batches_on_the_ci_broker() {
    match Cluster::external() {
        Some(cluster) => resumes_inside_record_batches(&cluster),
        None => eprintln!("OUTBOX_CE_BROKERS is not set"),
    }
}
