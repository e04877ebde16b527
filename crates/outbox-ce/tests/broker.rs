//! End to end through a Kafka broker: `outbox-ce produce`, then `outbox-ce consume`, in both
//! content modes; every event comes back identical, keys included.
//!
//! With `OUTBOX_CE_BROKERS=HOST:PORT` (a real broker, such as the Tansu broker `.ci/run`
//! starts) each test creates a fresh topic there; without it each test starts librdkafka's
//! mock cluster in this process, so `cargo test` alone covers the path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{EVENTS, Run, events, outbox_ce};
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{OutboxEvent, Payload};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer as _};

/// An upper bound on how long `consume` waits for a message, so that a lost message fails
/// the test instead of hanging it; a passing run never waits for it.
const PATIENCE: &str = "120";

/// A topic of its own on the broker of the run.
struct Topic {
    brokers: String,
    name: String,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

fn topic(label: &str, partitions: i32) -> Topic {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("outbox-ce-{label}-{}-{nanos}", std::process::id());
    match std::env::var("OUTBOX_CE_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => {
            create_topic(&brokers, &name, partitions);
            Topic {
                brokers,
                name,
                _mock: None,
            }
        }
        _ => {
            let mock = MockCluster::new(1).unwrap();
            mock.create_topic(&name, partitions, 1).unwrap();
            Topic {
                brokers: mock.bootstrap_servers(),
                name,
                _mock: Some(mock),
            }
        }
    }
}

fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = runtime
        .block_on(admin.create_topics([&new], &options))
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

fn consume(topic: &Topic, max: usize, to: &str) -> Run {
    let max = max.to_string();
    outbox_ce(
        &[
            "consume",
            "--brokers",
            &topic.brokers,
            "--topic",
            &topic.name,
            "--max",
            &max,
            "--to",
            to,
            "--timeout",
            PATIENCE,
        ],
        None,
    )
}

fn produce(topic: &Topic, mode: &str, input: &str) -> Run {
    outbox_ce(
        &[
            "produce",
            "--brokers",
            &topic.brokers,
            "--topic",
            &topic.name,
            "--mode",
            mode,
        ],
        Some(input.as_bytes()),
    )
}

/// Lines in a fixed order: partitions interleave on the way back.
fn sorted<T: Ord>(mut lines: Vec<T>) -> Vec<T> {
    lines.sort();
    lines
}

fn round_trip(mode: &str) {
    let topic = topic(mode, 3);
    let events = events();
    let input = std::fs::read_to_string(EVENTS).unwrap();

    let run = produce(&topic, mode, &input);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "produce: 5 in, 5 out, 0 failed\n");
    assert!(run.stdout.is_empty());

    // The messages on the topic are exactly what `encode` writes: key, headers and value.
    let encoded = outbox_ce(&["encode", "--mode", mode, EVENTS], None);
    let run = consume(&topic, events.len(), "message");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "consume: 5 in, 5 out, 0 failed\n");
    let mut messages = Vec::new();
    for line in run.lines() {
        let record = Record::from_json(line.as_bytes()).unwrap();
        assert_eq!(record.topic.as_deref(), Some(topic.name.as_str()));
        assert!(record.partition.is_some_and(|p| (0..3).contains(&p)));
        assert!(record.offset.is_some_and(|o| o >= 0));
        messages.push(String::from_utf8(Record::from(record.message).to_json()).unwrap());
    }
    assert_eq!(sorted(messages), sorted(encoded.lines()));

    // Decoded, every event is the one that went in, partition key and Kafka key included.
    let run = consume(&topic, events.len(), "outbox");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let decoded = outbox_ce(&["decode"], Some(encoded.stdout.as_bytes()));
    assert_eq!(sorted(run.lines()), sorted(decoded.lines()));
    let back: Vec<OutboxEvent<Payload>> = sorted(run.lines())
        .iter()
        .map(|l| OutboxEvent::from_message_json(l.as_bytes()).unwrap())
        .collect();
    let mut sent: Vec<OutboxEvent<Payload>> = events
        .iter()
        .map(|l| OutboxEvent::from_message_json(l.as_bytes()).unwrap())
        .collect();
    sent.sort_by_key(|e| String::from_utf8(e.to_message_json().unwrap()).unwrap());
    assert_eq!(back, sent);

    let run = consume(&topic, events.len(), "cloudevent");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let converted = outbox_ce(&["convert", "--to", "cloudevent", EVENTS], None);
    assert_eq!(sorted(run.lines()), sorted(converted.lines()));
}

#[test]
fn produce_then_consume_in_binary_mode() {
    round_trip("binary");
}

#[test]
fn produce_then_consume_in_structured_mode() {
    round_trip("structured");
}

#[test]
fn produce_reports_bad_lines_and_sends_the_good_ones() {
    let topic = topic("produce-mixed", 1);
    let events = events();
    let input = format!(
        "{}\n{{\"event_id\":\"nope\"}}\n\n{}\nnot json\n",
        events[0], events[1]
    );
    let run = produce(&topic, "binary", &input);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(stderr.len(), 3, "{stderr:?}");
    assert!(
        stderr[0].starts_with("line 2: field `event_id`"),
        "{stderr:?}"
    );
    assert!(stderr[1].starts_with("line 5: "), "{stderr:?}");
    assert_eq!(stderr[2], "produce: 4 in, 2 out, 2 failed");

    let run = consume(&topic, 2, "outbox");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let decoded = outbox_ce(
        &["convert", "--to", "cloudevent"],
        Some(run.stdout.as_bytes()),
    );
    let expected = outbox_ce(
        &["convert", "--to", "cloudevent"],
        Some(format!("{}\n{}\n", events[0], events[1]).as_bytes()),
    );
    assert_eq!(decoded.stdout, expected.stdout);
}

#[test]
fn consume_reports_messages_that_do_not_decode() {
    let topic = topic("consume-mixed", 1);
    let events = events();
    assert_eq!(produce(&topic, "structured", &events[0]).status, 0);
    // Offset 1: a message no CloudEvents producer wrote.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &topic.brokers)
        .create()
        .unwrap();
    producer
        .send(BaseRecord::to(&topic.name).key("k").payload("not an event"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(produce(&topic, "binary", &events[1]).status, 0);

    let run = consume(&topic, 3, "outbox");
    assert_eq!(run.status, 1, "{}", run.stderr);
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(stderr.len(), 2, "{stderr:?}");
    assert!(
        stderr[0].starts_with("partition 0 offset 1: "),
        "{stderr:?}"
    );
    assert_eq!(stderr[1], "consume: 3 in, 2 out, 1 failed");
    let encoded = outbox_ce(
        &["encode", "--mode", "binary"],
        Some(format!("{}\n{}\n", events[0], events[1]).as_bytes()),
    );
    let expected = outbox_ce(&["decode"], Some(encoded.stdout.as_bytes()));
    assert_eq!(run.stdout, expected.stdout);
}
