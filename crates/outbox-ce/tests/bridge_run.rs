//! `outbox-ce bridge` on librdkafka's mock cluster: every kind of input to every mode,
//! dead letters, the stop at a bad message without a dead-letter topic, SIGTERM, and
//! `/metrics` and `/health`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bridge_support;
mod common;

use bridge_support::{
    Cluster, Converter, InputFormat, Kind, OutputMode, bridge, check, committed, corpus, produce,
    seq_of, topic,
};
use common::relay::{free_addr, http_get, wait_for};
use testkit::prometheus::parse;
use testkit::read_topic;

#[test]
fn every_input_kind_in_every_mode_with_dead_letters() {
    let cluster = Cluster::mock();
    let brokers = cluster.brokers();
    let from = topic("in");
    cluster.create_topic(&from, 3);
    // Every good message twice over, and a bad one every 10th.
    let inputs = corpus(200, 3, 10);
    produce(&brokers, &from, &inputs);
    for (mode, profile) in [
        ("binary", "canonical"),
        ("structured", "python-outbox-core"),
        ("outbox-json", "canonical"),
    ] {
        let (to, dead, group) = (topic("out"), topic("dead"), topic("group"));
        cluster.create_topic(&to, 3);
        cluster.create_topic(&dead, 1);
        let mut run = bridge(
            &brokers,
            &from,
            &to,
            &group,
            &[
                "--mode",
                mode,
                "--profile",
                profile,
                "--dead-letter-topic",
                &dead,
                "--idle-exit",
                "2s",
            ],
        );
        assert_eq!(run.wait(), 0, "{}", run.stderr());
        let output = read_topic(&brokers, &to).unwrap();
        let dead_letters = read_topic(&brokers, &dead).unwrap();
        let profile = match profile {
            "canonical" => outbox_cloudevents::Profile::Canonical,
            _ => outbox_cloudevents::Profile::python_outbox_core(),
        };
        let converter = Converter::new(InputFormat::Auto, mode.parse().unwrap(), profile);
        let outcome = check(&inputs, &output, &dead_letters, &from, &converter);
        assert!(
            outcome.duplicates().is_empty(),
            "{mode}: no crash, no duplicate"
        );
        assert_eq!(dead_letters.len(), outcome.bad);
        assert!(outcome.bad >= 20);
        for m in &output {
            match mode {
                "binary" => assert!(m.header("ce_id").is_some(), "{m:?}"),
                "structured" => assert_eq!(
                    m.header("content-type"),
                    Some("application/cloudevents+json; charset=UTF-8")
                ),
                _ => assert!(m.headers.iter().all(|(n, _)| !n.starts_with("ce_"))),
            }
        }
        let error = dead_letters[0].header("outbox-error").unwrap();
        assert!(!error.is_empty());
        // Every offset committed, at the end of each partition.
        let offsets = committed(&brokers, &group, &from, 3);
        let ends: Vec<i64> = (0..3)
            .map(|p| inputs.iter().filter(|i| i.partition == p).count() as i64)
            .collect();
        assert_eq!(offsets.values().copied().collect::<Vec<_>>(), ends);
        let log = run.stderr();
        assert!(log.contains("dead-letter topic"), "{log}");
    }
}

#[test]
fn a_bad_message_without_dead_letter_topic_stops_the_bridge_there() {
    let cluster = Cluster::mock();
    let brokers = cluster.brokers();
    let (from, to, group) = (topic("in"), topic("out"), topic("group"));
    cluster.create_topic(&from, 1);
    cluster.create_topic(&to, 1);
    let binary = Converter::new(InputFormat::Auto, OutputMode::Binary, Default::default());
    let mut inputs: Vec<_> = corpus(400, 1, 0)
        .into_iter()
        .filter(|i| binary.convert(&i.message.as_ref()).is_ok())
        .take(300)
        .enumerate()
        .map(|(n, mut i)| {
            i.seq = n as u64;
            for h in &mut i.message.headers {
                if *h.name == *bridge_support::SEQ.as_bytes() {
                    h.value = Some(n.to_string().into_bytes());
                }
            }
            i
        })
        .collect();
    assert_eq!(inputs.len(), 300);
    // Input 123 is bad.
    inputs[123].kind = Kind::Bad;
    inputs[123].message = bridge_support::bad_messages()[0].clone();
    inputs[123]
        .message
        .headers
        .push(outbox_cloudevents::Header::new(bridge_support::SEQ, "123"));
    produce(&brokers, &from, &inputs);
    let mut run = bridge(&brokers, &from, &to, &group, &["--idle-exit", "5s"]);
    assert_eq!(run.wait(), 1, "{}", run.stderr());
    let log = run.stderr();
    assert!(
        log.contains(&format!("{from} partition 0 offset 123:")),
        "the error names the offset: {log}"
    );
    assert_eq!(committed(&brokers, &group, &from, 1)[&0], 123);
    let output = read_topic(&brokers, &to).unwrap();
    let seqs: Vec<u64> = output.iter().map(seq_of).collect();
    assert_eq!(seqs, (0..123).collect::<Vec<_>>());

    // Run again: it stops at the same message, sending nothing twice... beyond the
    // acknowledged-but-uncommitted (none here: everything before it was committed).
    let mut again = bridge(&brokers, &from, &to, &group, &["--idle-exit", "5s"]);
    assert_eq!(again.wait(), 1, "{}", again.stderr());
    assert_eq!(read_topic(&brokers, &to).unwrap().len(), 123);
}

#[test]
fn sigterm_finishes_commits_and_exits_0_and_metrics_tell() {
    let cluster = Cluster::mock();
    let brokers = cluster.brokers();
    let (from, to, dead, group) = (topic("in"), topic("out"), topic("dead"), topic("group"));
    cluster.create_topic(&from, 3);
    cluster.create_topic(&to, 3);
    cluster.create_topic(&dead, 1);
    let inputs = corpus(1000, 3, 20);
    produce(&brokers, &from, &inputs);
    let addr = free_addr();
    let mut run = bridge(
        &brokers,
        &from,
        &to,
        &group,
        &["--dead-letter-topic", &dead, "--metrics-listen", &addr],
    );
    // All of it bridged, as /metrics says.
    wait_for("everything bridged", || {
        http_get(&addr, "/metrics")
            .and_then(|(_, body)| parse(&body).ok())
            .and_then(|m| {
                Some(
                    m.value("outbox_bridge_produced_total", &[])?
                        + m.value("outbox_bridge_dead_lettered_total", &[])?,
                )
            })
            == Some(1000.0)
    });
    let (code, body) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    let metrics = parse(&body).unwrap();
    assert_eq!(
        metrics.value("outbox_bridge_consumed_total", &[]),
        Some(1000.0)
    );
    let binary = Converter::new(InputFormat::Auto, OutputMode::Binary, Default::default());
    let bad = inputs
        .iter()
        .filter(|i| binary.convert(&i.message.as_ref()).is_err())
        .count();
    assert!(bad >= 50);
    assert_eq!(
        metrics.value("outbox_bridge_dead_lettered_total", &[]),
        Some(bad as f64)
    );
    wait_for("the lag to be 0", || {
        http_get(&addr, "/metrics")
            .and_then(|(_, body)| parse(&body).ok())
            .and_then(|m| m.value("outbox_bridge_consumer_lag", &[]))
            == Some(0.0)
    });
    let (code, body) = http_get(&addr, "/health").unwrap();
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy", "{body}");
    assert_eq!(
        health["checks"]["consumer_group"]["assigned"], true,
        "{body}"
    );

    run.terminate();
    assert_eq!(run.wait(), 0, "{}", run.stderr());
    let ends: Vec<i64> = (0..3)
        .map(|p| inputs.iter().filter(|i| i.partition == p).count() as i64)
        .collect();
    assert_eq!(
        committed(&brokers, &group, &from, 3)
            .values()
            .copied()
            .collect::<Vec<_>>(),
        ends
    );
    let outcome = check(
        &inputs,
        &read_topic(&brokers, &to).unwrap(),
        &read_topic(&brokers, &dead).unwrap(),
        &from,
        &binary,
    );
    assert!(outcome.duplicates().is_empty());
    assert!(
        run.stderr().contains("stopped: 1000 consumed"),
        "{}",
        run.stderr()
    );
}

/// librdkafka's own log reaches the bridge's: pointed at a port nothing listens on, it logs
/// the connection refused, in text and in JSON, and the same line once only.
#[test]
fn a_bridge_pointed_at_a_closed_port_logs_the_connection_refused() {
    for format in ["text", "json"] {
        let brokers = free_addr();
        let mut run = bridge(
            &brokers,
            "from",
            "to",
            "group",
            &[
                "--log-format",
                format,
                "--consumer-option",
                "reconnect.backoff.ms=10",
                "--consumer-option",
                "reconnect.backoff.max.ms=10",
            ],
        );
        let refused = |log: &str| {
            log.lines()
                .filter(|l| l.contains("Connection refused") && l.contains(&brokers))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        wait_for("the connection refused in the log", || {
            !refused(&run.stderr()).is_empty()
        });
        // librdkafka reconnects every 10 ms: the repeats are left out.
        std::thread::sleep(std::time::Duration::from_secs(2));
        run.terminate();
        assert_eq!(run.wait(), 0, "{}", run.stderr());
        let lines = refused(&run.stderr());
        assert!(lines.len() <= 3, "rate-limited: {lines:#?}");
        let consumer_errors = run
            .stderr()
            .lines()
            .filter(|l| l.contains("outbox.bridge_consumer_error") || l.contains("Kafka consumer:"))
            .count();
        assert!(consumer_errors <= 3, "rate-limited:\n{}", run.stderr());
        match format {
            "text" => assert!(
                lines[0].starts_with("outbox-ce bridge: Kafka "),
                "{lines:#?}"
            ),
            _ => {
                let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
                assert_eq!(v["event"], "outbox.broker_log", "{v}");
                assert_eq!(v["level"], "error", "{v}");
                assert!(v["facility"].is_string(), "{v}");
            }
        }
    }
}
