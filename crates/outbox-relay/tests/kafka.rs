//! The Kafka sink, on the shared Apache Kafka node (`OUTBOX_CE_BROKERS`) or else on
//! librdkafka's mock cluster: keys, headers, every row acknowledged and
//! marked; a message the broker refuses for good fails its row after the retries, the key
//! goes on, and the failed row reaches the dead-letter topic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use outbox_relay::kafka::KafkaOptions;
use outbox_relay::{Destination, OutputMode, Table};

async fn status(lite: &Lite) -> (u64, u64, u64) {
    let s = outbox_relay::status(&lite.database(), &Table::default())
        .await
        .unwrap();
    (s.pending, s.published, s.failed)
}

#[tokio::test]
async fn every_row_is_acknowledged_keyed_and_marked() {
    let broker = Broker::start();
    let orders = broker.create_topic("orders", 3).await;
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    let rows: Vec<NewRow> = (1..=200)
        .map(|n| {
            let mut r = NewRow::new(n, &format!("order-{}", n % 9));
            if n % 50 == 0 {
                r.partition_key = Some("tenant-x".into());
            }
            r
        })
        .collect();
    insert(&lite.path, &rows);
    let mut options = options(lite.database(), Table::default());
    options.destination = Destination::Kafka(KafkaOptions {
        brokers: broker.bootstrap_servers(),
        topic: orders.clone(),
        ..KafkaOptions::default()
    });
    let summary = outbox_relay::run(options, std::future::pending())
        .await
        .unwrap();
    assert_eq!(summary.published, 200);
    assert_eq!(status(&lite).await, (0, 200, 0));

    let messages = testkit::read_topic(&broker.bootstrap_servers(), &orders).unwrap();
    assert_eq!(messages.len(), 200);
    for row in &rows {
        let m = messages
            .iter()
            .find(|m| m.header("ce_id") == Some(row.event_id.as_str()))
            .expect("every row on the topic");
        let key = row.partition_key.as_deref().unwrap_or(&row.aggregate_id);
        assert_eq!(m.key_str(), Some(key));
        assert_eq!(m.header("ce_partitionkey"), Some(key));
        assert_eq!(m.header("ce_aggregateid"), Some(row.aggregate_id.as_str()));
        assert_eq!(m.header("content-type"), Some("application/json"));
        assert_eq!(m.value_str(), Some(row.payload.as_str()));
    }
    // One key, one partition, in seq order.
    for k in 0..9 {
        let key = format!("order-{k}");
        let on_topic: Vec<&str> = messages
            .iter()
            .filter(|m| m.key_str() == Some(key.as_str()))
            .map(|m| m.header("ce_id").unwrap())
            .collect();
        let written: Vec<&str> = rows
            .iter()
            .filter(|r| r.partition_key.is_none() && r.aggregate_id == key)
            .map(|r| r.event_id.as_str())
            .collect();
        assert_eq!(on_topic, written, "{key}");
        let partitions: std::collections::BTreeSet<i32> = messages
            .iter()
            .filter(|m| m.key_str() == Some(key.as_str()))
            .map(|m| m.partition)
            .collect();
        assert_eq!(partitions.len(), 1);
    }
}

#[tokio::test]
async fn outbox_json_mode_sends_to_message_without_headers() {
    let broker = Broker::start();
    let legacy = broker.create_topic("legacy", 1).await;
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    insert(&lite.path, &[NewRow::new(1, "a")]);
    let mut options = options(lite.database(), Table::default());
    options.mode = OutputMode::OutboxJson;
    options.destination = Destination::Kafka(KafkaOptions {
        brokers: broker.bootstrap_servers(),
        topic: legacy.clone(),
        ..KafkaOptions::default()
    });
    outbox_relay::run(options, std::future::pending())
        .await
        .unwrap();
    let messages = testkit::read_topic(&broker.bootstrap_servers(), &legacy).unwrap();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].headers.is_empty());
    assert_eq!(messages[0].key_str(), Some("a"));
    let value: serde_json::Value = serde_json::from_str(messages[0].value_str().unwrap()).unwrap();
    assert_eq!(value["event_id"], uuid(1));
    assert_eq!(value["n"], 1);
}

#[tokio::test]
async fn a_message_refused_for_good_fails_its_row_after_the_retries() {
    let broker = Broker::start();
    let small = broker.create_topic("small", 1).await;
    let dead = broker.create_topic("dead", 1).await;
    let lite = Lite::new();
    outbox_relay::init(&lite.database(), &Table::default())
        .await
        .unwrap();
    let mut big = NewRow::new(2, "k");
    big.payload = format!(r#"{{"blob":"{}"}}"#, "x".repeat(5000));
    insert(
        &lite.path,
        &[NewRow::new(1, "k"), big.clone(), NewRow::new(3, "k")],
    );
    let mut options = options(lite.database(), Table::default());
    options.engine.config.max_retry_count = 1;
    options.engine.config.retry_backoff_multiplier = 1.0;
    options.engine.dead_letter = true;
    options.destination = Destination::Kafka(KafkaOptions {
        brokers: broker.bootstrap_servers(),
        topic: small.clone(),
        dead_letter_topic: Some(dead.clone()),
        // Messages above 2,000 bytes are refused (locally, as a broker would).
        properties: vec![("message.max.bytes".into(), "2000".into())],
    });
    let summary = outbox_relay::run(options, std::future::pending())
        .await
        .unwrap();
    assert_eq!((summary.published, summary.failed), (2, 1));
    let (attempts, error): (i64, String) = lite
        .connection()
        .query_row(
            "SELECT attempts, last_error FROM outbox_events WHERE event_id = ?1",
            [&big.event_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(attempts, 2, "the first attempt and one retry");
    assert!(error.contains("too large"), "{error}");
    let messages = testkit::read_topic(&broker.bootstrap_servers(), &small).unwrap();
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| m.header("ce_id").unwrap())
        .collect();
    assert_eq!(
        ids,
        [uuid(1), uuid(3)],
        "the key went on after the failed row"
    );
    assert_eq!(status(&lite).await, (0, 2, 1));
}
