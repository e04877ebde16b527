//! End to end through a Kafka broker: `outbox-ce produce`, then `outbox-ce consume`, in both
//! content modes; every event comes back identical, keys included.
//!
//! With `OUTBOX_CE_BROKERS=HOST:PORT` (Apache Kafka, as `.ci/run` starts it with
//! `scripts/kafka.sh start`) each test creates a fresh topic there; without it each test starts librdkafka's
//! mock cluster in this process, so `cargo test` alone covers the path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{EVENTS, Run, create_topic, events, outbox_ce};
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{OutboxEvent, Payload};
use rdkafka::ClientConfig;
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
    // Bounded as every wait here: a broker that never acknowledges fails the test.
    producer.flush(common::relay::PATIENCE).unwrap();
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

/// A topic on librdkafka's mock cluster, always (the fault tests need its controls).
fn mock_topic(
    label: &str,
    partitions: i32,
) -> (MockCluster<'static, DefaultProducerContext>, String) {
    let mock = MockCluster::new(1).unwrap();
    let name = format!("outbox-ce-{label}-{}", std::process::id());
    mock.create_topic(&name, partitions, 1).unwrap();
    (mock, name)
}

/// Produces one record to partition 0 of `topic` by writing a Kafka Produce request (v3,
/// record batch v2) on a socket of its own: every client library, librdkafka included,
/// takes header names as `&str`, so a name that is not UTF-8 can only be sent this way.
fn produce_raw(brokers: &str, topic: &str, headers: &[(&[u8], &[u8])], value: &[u8]) {
    use std::io::{Read as _, Write as _};

    fn varint(out: &mut Vec<u8>, n: i64) {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    assert_eq!(crc32c(b"123456789"), 0xe306_9283, "CRC-32C check value");

    let mut record = vec![0u8]; // attributes
    varint(&mut record, 0); // timestamp delta
    varint(&mut record, 0); // offset delta
    varint(&mut record, -1); // null key
    varint(&mut record, value.len() as i64);
    record.extend_from_slice(value);
    varint(&mut record, headers.len() as i64);
    for (name, value) in headers {
        varint(&mut record, name.len() as i64);
        record.extend_from_slice(name);
        varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
    }
    let mut records = Vec::new();
    varint(&mut records, record.len() as i64);
    records.extend_from_slice(&record);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut checked = Vec::new(); // from `attributes` to the end: what the CRC covers
    checked.extend_from_slice(&0i16.to_be_bytes()); // attributes
    checked.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    checked.extend_from_slice(&now.to_be_bytes()); // first timestamp
    checked.extend_from_slice(&now.to_be_bytes()); // max timestamp
    checked.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    checked.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    checked.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    checked.extend_from_slice(&1i32.to_be_bytes()); // record count
    checked.extend_from_slice(&records);
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&((4 + 1 + 4 + checked.len()) as i32).to_be_bytes()); // length
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc32c(&checked).to_be_bytes());
    batch.extend_from_slice(&checked);

    let mut request = Vec::new();
    request.extend_from_slice(&0i16.to_be_bytes()); // api key: Produce
    request.extend_from_slice(&3i16.to_be_bytes()); // api version
    request.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    request.extend_from_slice(&4i16.to_be_bytes());
    request.extend_from_slice(b"test"); // client id
    request.extend_from_slice(&(-1i16).to_be_bytes()); // no transactional id
    request.extend_from_slice(&(-1i16).to_be_bytes()); // acks: all
    request.extend_from_slice(&10_000i32.to_be_bytes()); // timeout
    request.extend_from_slice(&1i32.to_be_bytes()); // one topic
    request.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    request.extend_from_slice(topic.as_bytes());
    request.extend_from_slice(&1i32.to_be_bytes()); // one partition
    request.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    request.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    request.extend_from_slice(&batch);

    let address = brokers.split(',').next().unwrap();
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    socket
        .write_all(&(request.len() as i32).to_be_bytes())
        .unwrap();
    socket.write_all(&request).unwrap();
    let mut size = [0u8; 4];
    socket.read_exact(&mut size).unwrap();
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    socket.read_exact(&mut response).unwrap();
    // correlation id, topic count, topic name, partition count, partition, error code
    let at = 4 + 4 + 2 + topic.len() + 4 + 4;
    assert_eq!(&response[..4], &7i32.to_be_bytes());
    assert_eq!(&response[at..at + 2], &[0, 0], "produce error code");
}

fn consume_args<'a>(brokers: &'a str, topic: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["consume", "--brokers", brokers, "--topic", topic];
    args.extend_from_slice(extra);
    args
}

/// A header name that is not UTF-8 made rdkafka panic inside its `&str` accessor (exit 101):
/// the messages after it were never read, and a rerun died at the same offset. It is now
/// a bad message like any other, reported with its partition and offset, for every `--to`.
#[test]
fn consume_reports_a_header_name_that_is_not_utf8_and_goes_on() {
    let (mock, name) = mock_topic("header-name", 1);
    let brokers = mock.bootstrap_servers();
    let topic = Topic {
        brokers: brokers.clone(),
        name: name.clone(),
        _mock: None,
    };
    let events = events();
    assert_eq!(produce(&topic, "binary", &events[0]).status, 0);
    produce_raw(
        &brokers,
        &name,
        &[
            (b"content-type", b"application/json"),
            (b"ce_specversion", b"1.0"),
            (b"ce_id", b"a"),
            (b"ce_source", b"s"),
            (b"ce_type", b"t"),
            (b"ce_\xff\xfeinjected", b"x"),
        ],
        b"{}",
    );
    assert_eq!(produce(&topic, "binary", &events[1]).status, 0);

    for to in ["outbox", "cloudevent", "message"] {
        let run = outbox_ce(
            &consume_args(&brokers, &name, &["--to", to, "--timeout", "5"]),
            None,
        );
        assert_eq!(run.status, 1, "--to {to}: {}", run.stderr);
        let stderr = run.stderr_lines();
        assert_eq!(stderr.len(), 2, "--to {to}: {stderr:?}");
        assert!(
            stderr[0].starts_with("partition 0 offset 1: header `ce_"),
            "--to {to}: {stderr:?}"
        );
        assert!(stderr[0].contains("not UTF-8"), "--to {to}: {stderr:?}");
        assert_eq!(stderr[1], "consume: 3 in, 2 out, 1 failed", "--to {to}");
        assert_eq!(
            run.lines().len(),
            2,
            "--to {to}: the messages after it are read"
        );
    }
}

/// The broker died mid-run and `consume` exited 0 with the messages it had: a run that
/// cannot read as far as it set out to (here `--max` messages) now says so, exit status 2.
#[test]
fn consume_exits_2_when_the_broker_goes_away_before_max_messages() {
    use std::io::BufRead as _;
    let (mock, name) = mock_topic("broker-dies", 1);
    let brokers = mock.bootstrap_servers();
    let topic = Topic {
        brokers: brokers.clone(),
        name: name.clone(),
        _mock: None,
    };
    let input = std::fs::read_to_string(EVENTS).unwrap();
    assert_eq!(produce(&topic, "binary", &input).status, 0);

    let args = consume_args(
        &brokers,
        &name,
        &["--max", "10", "--timeout", "3", "--to", "message"],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The five messages there are read; then the broker goes away.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..5 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("{\"key\""), "{line}");
    }
    // The whole cluster goes: its port refuses connections from now on. (Taking the broker
    // down instead makes librdkafka re-bind its port at once, which aborts the process when
    // another socket took the port in between.)
    drop(mock);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("consume: 5 in, 5 out, 0 failed\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "outbox-ce consume: read 5 of the 10 messages asked for (--max): none came for 3 s"
        ),
        "{stderr}"
    );
}

/// Without `--max` the run means to read to the end of every partition as it was at the
/// start; when the broker fails every fetch it cannot, and it says how far it got.
#[test]
fn consume_exits_2_when_it_cannot_read_to_the_end_of_the_topic() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (mock, name) = mock_topic("fetch-fails", 1);
    let brokers = mock.bootstrap_servers();
    let topic = Topic {
        brokers: brokers.clone(),
        name: name.clone(),
        _mock: None,
    };
    let input = std::fs::read_to_string(EVENTS).unwrap();
    assert_eq!(produce(&topic, "binary", &input).status, 0);

    // Without faults the run stops at the end, without waiting out the timeout.
    let run = outbox_ce(&consume_args(&brokers, &name, &["--timeout", "120"]), None);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.lines().len(), 5);

    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR; 500],
    );
    let run = outbox_ce(&consume_args(&brokers, &name, &["--timeout", "2"]), None);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "outbox-ce consume: stopped before the end of the topic as it was at the start, as no message came for 2 s: partition 0 at offset 0 of 5"
        ),
        "{}",
        run.stderr
    );
    mock.clear_request_errors(RDKafkaApiKey::Fetch);
}

/// With the broker failing, `produce` waited out the message timeout for every 10,000 in
/// flight (1,000,000 lines: about 17 minutes). Now the first timeout stops the reading, the
/// rest in flight is reported at once, and the run exits 2; a line that timed out says it
/// may still have been delivered.
#[test]
fn produce_stops_at_the_first_timeout_and_reports_what_was_not_delivered() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let (mock, name) = mock_topic("produce-fails", 1);
    let brokers = mock.bootstrap_servers();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 1000],
    );
    let event = events().remove(0);
    let lines = 15_000;
    let input = format!("{event}\n").repeat(lines);
    let run = outbox_ce(
        &[
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            &name,
            "--mode",
            "binary",
            "--timeout",
            "2",
        ],
        Some(input.as_bytes()),
    );
    assert_eq!(
        run.status,
        2,
        "{}",
        &run.stderr[run.stderr.len().saturating_sub(2000)..]
    );
    let stderr = run.stderr_lines();
    let fatal = stderr.last().unwrap();
    assert!(fatal.starts_with("outbox-ce produce: the broker took no message for 2 s (--timeout), so the run stopped after line "), "{fatal}");
    let count = stderr[stderr.len() - 2];
    let read: usize = count
        .strip_prefix("produce: ")
        .and_then(|c| c.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    // Reading stopped: at most the in-flight bound and the line that found it full.
    assert!(read < lines, "{count}");
    assert_eq!(count, format!("produce: {read} in, 0 out, {read} failed"));
    // Every line read is reported, each once, with what may have happened to it.
    let reports = &stderr[..stderr.len() - 2];
    assert_eq!(reports.len(), read);
    assert!(
        reports[0].starts_with(
            "line 1: not acknowledged within --timeout, and it may still have been delivered"
        ),
        "{}",
        reports[0]
    );
    for report in reports {
        assert!(
            report.contains("may still have been delivered")
                || report.contains("not delivered: the run stopped before it was sent"),
            "{report}"
        );
    }
}
