//! Real servers for tests: a PostgreSQL 15 server of the test's own ([`Postgres`]), an Apache
//! Kafka node of the test's own ([`Kafka`], started by `scripts/kafka.sh`), and librdkafka's
//! mock Kafka cluster ([`Broker`]) that a test can take down and bring back, with
//! a reader that returns every message of a topic ([`read_topic`]), and a strict reader of the
//! Prometheus text format ([`prometheus::parse`]).
//!
//! ```no_run
//! let mut pg = testkit::Postgres::start().unwrap();
//! pg.psql("create table t (n int); insert into t values (1)").unwrap();
//! pg.restart().unwrap();
//! assert_eq!(pg.psql("select n from t").unwrap(), "1");
//!
//! let broker = testkit::Broker::start().unwrap();
//! broker.create_topic("events", 3).unwrap();
//! let messages = testkit::read_topic(&broker.bootstrap_servers(), "events").unwrap();
//! assert!(messages.is_empty());
//! ```

// A test harness: a broken assumption about the servers it runs should fail the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod broker;
mod kafka;
mod postgres;
pub mod prometheus;

pub use broker::{Broker, Message, STOPPED_FOR, read_topic};
pub use kafka::Kafka;
pub use postgres::Postgres;

/// The SQLite driver (bundled SQLite), for tests that write an SQLite outbox table.
pub use rusqlite;
/// Temporary files and directories.
pub use tempfile;
