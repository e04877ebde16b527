//! Helpers shared by the relay's tests: SQLite tables with rows, a relay run to a buffer.
#![allow(dead_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use outbox_cloudevents::Profile;
use outbox_relay::stdout::StdoutSink;
use outbox_relay::{
    Database, Destination, EngineOptions, Logger, OnFailure, OutputMode, RelayOptions, Summary,
    Table,
};
use testkit::rusqlite::{Connection, params};

/// A writer whose bytes stay readable after the sink that wrote them is gone.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn raw_lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A fresh SQLite file in a temporary directory.
pub struct Lite {
    pub dir: testkit::tempfile::TempDir,
    pub path: PathBuf,
}

impl Lite {
    pub fn new() -> Self {
        let dir = testkit::tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        Lite { dir, path }
    }

    pub fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    pub fn database(&self) -> Database {
        self.url().parse().unwrap()
    }

    pub fn connection(&self) -> Connection {
        Connection::open(&self.path).unwrap()
    }
}

/// One row of the default table.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub event_id: String,
    pub event_type: String,
    pub aggregate_id: String,
    pub occurred_at: String,
    pub partition_key: Option<String>,
    pub payload: String,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// SQL that inserts event `n` of key `key` into the default table: a time with microseconds
/// and a payload with a number beyond 2^64, both to come out as written.
pub fn insert_sql(n: u32, key: &str) -> String {
    format!(
        "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         VALUES ('{}', 'com.example.order.placed', '{key}', 'order-service', \
         '2024-05-01T10:00:00.123456Z', '{{\"n\": {n},  \"big\": 12345678901234567890}}');",
        uuid(n)
    )
}

pub fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

impl NewRow {
    pub fn new(n: u32, aggregate: &str) -> Self {
        NewRow {
            event_id: uuid(n),
            event_type: "com.example.order.placed".into(),
            aggregate_id: aggregate.into(),
            occurred_at: format!("2024-05-01T10:00:{:02}.123456Z", n % 60),
            partition_key: None,
            payload: format!(r#"{{"n": {n}, "note": "zoë", "big": 12345678901234567890}}"#),
            traceparent: None,
            tracestate: None,
        }
    }
}

pub fn insert(path: &Path, rows: &[NewRow]) {
    let c = Connection::open(path).unwrap();
    for r in rows {
        c.execute(
            "INSERT INTO outbox_events (event_id, event_type, aggregate_id, source, occurred_at, \
             partition_key, payload, traceparent, tracestate) \
             VALUES (?1, ?2, ?3, 'order-service', ?4, ?5, ?6, ?7, ?8)",
            params![
                r.event_id,
                r.event_type,
                r.aggregate_id,
                r.occurred_at,
                r.partition_key,
                r.payload,
                r.traceparent,
                r.tracestate
            ],
        )
        .unwrap();
    }
}

/// The `to_message()` line of a row, as `outbox-ce encode` reads it.
pub fn to_message_line(r: &NewRow) -> String {
    let mut object = serde_json::Map::new();
    object.insert("event_id".into(), r.event_id.clone().into());
    object.insert("event_type".into(), r.event_type.clone().into());
    object.insert("aggregate_id".into(), r.aggregate_id.clone().into());
    object.insert("occurred_at".into(), r.occurred_at.clone().into());
    object.insert("source".into(), "order-service".into());
    if let Some(pk) = &r.partition_key {
        object.insert("partition_key".into(), pk.clone().into());
    }
    let meta = serde_json::Value::Object(object).to_string();
    // The payload's members after the metadata, as written (big number and all).
    let payload = r.payload.trim();
    let inner = &payload[1..payload.len() - 1];
    format!("{},{inner}}}", &meta[..meta.len() - 1])
}

pub fn options(db: Database, table: Table) -> RelayOptions {
    RelayOptions {
        database: db,
        table,
        destination: Destination::Stdout(None),
        mode: OutputMode::Binary,
        profile: Profile::Canonical,
        engine: EngineOptions {
            once: true,
            on_failure: OnFailure::Continue,
            ..EngineOptions::default()
        },
        metrics_listen: None,
        logger: Logger {
            quiet: true,
            ..Logger::default()
        },
    }
}

/// Runs the relay once on `options`' database into a buffer.
pub async fn run_to_buffer(options: RelayOptions) -> (Summary, SharedBuf) {
    let buf = SharedBuf::default();
    let dead_letter = match &options.destination {
        Destination::Stdout(d) => d.clone(),
        Destination::Kafka(_) => None,
    };
    let sink = StdoutSink::to_writer(buf.clone(), dead_letter);
    let summary = match &options.database {
        Database::Sqlite(path) => {
            let source = outbox_relay::sqlite::SqliteSource::new(path, options.table.clone());
            outbox_relay::relay::run_with(source, sink, options, std::future::pending())
                .await
                .unwrap()
        }
        Database::Postgres(url) => {
            let source =
                outbox_relay::postgres::PostgresSource::new(url, options.table.clone()).unwrap();
            outbox_relay::relay::run_with(source, sink, options, std::future::pending())
                .await
                .unwrap()
        }
    };
    (summary, buf)
}

/// The `ce_id` (binary mode) of an interchange line.
pub fn header<'a>(line: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    line["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str())
}

/// Runs the relay once on `options`' database into a buffer, where it must be refused before
/// anything is sent: the error, and the buffer.
pub async fn refused(options: RelayOptions) -> (String, SharedBuf) {
    let buf = SharedBuf::default();
    let sink = StdoutSink::to_writer(buf.clone(), None);
    let error = match &options.database {
        Database::Sqlite(path) => {
            let source = outbox_relay::sqlite::SqliteSource::new(path, options.table.clone());
            outbox_relay::relay::run_with(source, sink, options, std::future::pending()).await
        }
        Database::Postgres(url) => {
            let source = outbox_relay::postgres::PostgresSource::new(url, options.table.clone())
                .unwrap()
                .deleting_published(options.engine.delete_published_after.is_some());
            outbox_relay::relay::run_with(source, sink, options, std::future::pending()).await
        }
    }
    .expect_err("the relay must refuse the table");
    (error.to_string(), buf)
}

/// The broker a test publishes to: the shared Apache Kafka node (`OUTBOX_CE_BROKERS`) when
/// there is one, else librdkafka's mock cluster of the test's own.
pub struct Broker {
    /// The mock cluster of the test's own; `None` on Kafka.
    mock: Option<testkit::Broker>,
    brokers: String,
}

impl Broker {
    pub fn start() -> Self {
        match std::env::var("OUTBOX_CE_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => Self {
                mock: None,
                brokers,
            },
            _ => {
                let mock = testkit::Broker::start().unwrap();
                Self {
                    brokers: mock.bootstrap_servers(),
                    mock: Some(mock),
                }
            }
        }
    }

    pub fn bootstrap_servers(&self) -> String {
        self.brokers.clone()
    }

    /// Creates a topic named after `label` with a name of its own (the shared broker outlives
    /// the test), and returns the name.
    pub async fn create_topic(&self, label: &str, partitions: i32) -> String {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let topic = format!("{label}-{}-{nanos}", std::process::id());
        if let Some(mock) = &self.mock {
            mock.create_topic(&topic, partitions).unwrap();
            return topic;
        }
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .unwrap();
        let options =
            AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30)));
        let new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
        for result in admin.create_topics([&new], &options).await.unwrap() {
            result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e:?}"));
        }
        topic
    }
}
