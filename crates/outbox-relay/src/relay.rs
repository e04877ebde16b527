//! The relay as one call: a database URL, a table, a destination, options.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use outbox_cloudevents::Profile;

use crate::engine::{Engine, EngineOptions, RelayError, Summary};
use crate::kafka::{KafkaOptions, KafkaSink};
use crate::observe::{self, Endpoints, Logger, Metrics};
use crate::postgres::PostgresSource;
use crate::schema::{Dialect, Table};
use crate::sink::{MessageEncoder, OutputMode, Sink};
use crate::source::{Source, SourceError, Status};
use crate::sqlite::SqliteSource;
use crate::stdout::StdoutSink;

/// Where the outbox table lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `postgres://user:password@host:port/dbname` or `postgresql://...`, as given.
    Postgres(String),
    /// `sqlite:PATH` (also `sqlite://PATH`).
    Sqlite(PathBuf),
}

impl FromStr for Database {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                Err("`sqlite:` needs a file path, such as sqlite:outbox.db".to_owned())
            } else {
                Ok(Database::Sqlite(PathBuf::from(path)))
            }
        } else {
            Err(format!(
                "`{url}` is not a database URL: use postgres://user:password@host:port/dbname or sqlite:PATH"
            ))
        }
    }
}

impl Database {
    /// The SQL dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Database::Postgres(_) => Dialect::Postgres,
            Database::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A Kafka topic.
    Kafka(KafkaOptions),
    /// Standard output, interchange JSON lines; `Some` names the dead-letter topic written in
    /// the `"topic"` member of dead-letter lines.
    Stdout(Option<String>),
}

/// Everything `relay run` takes.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The database.
    pub database: Database,
    /// The table and its column mapping.
    pub table: Table,
    /// The destination.
    pub destination: Destination,
    /// The content mode.
    pub mode: OutputMode,
    /// The profile of the CloudEvents modes.
    pub profile: Profile,
    /// The engine's options.
    pub engine: EngineOptions,
    /// Serve `/metrics` and `/health` here.
    pub metrics_listen: Option<String>,
    /// Log lines.
    pub logger: Logger,
}

/// Creates the table, its indexes and (PostgreSQL) its notify trigger.
///
/// # Errors
/// A [`SourceError`] when the database cannot be reached or a statement fails.
pub async fn init(database: &Database, table: &Table) -> Result<(), SourceError> {
    match database {
        Database::Postgres(url) => PostgresSource::init(url, table).await,
        Database::Sqlite(path) => {
            let (path, table) = (path.clone(), table.clone());
            tokio::task::spawn_blocking(move || SqliteSource::init(path, &table))
                .await
                .map_err(|e| SourceError::fatal(e.to_string()))?
        }
    }
}

/// Brings an existing table up to what the relay needs, in one transaction: adds the
/// columns it lacks that can be added (the bookkeeping columns `published_at`, `attempts`,
/// `last_error`, `failed_at` and the optional event columns, each under its mapped name, see
/// [`crate::Field::addable`]), a unique index on `seq` when that column is not unique, the
/// relay's indexes and, in PostgreSQL, the notify trigger, each only when missing. Returns
/// the statements run, or with `dry_run` the statements it would run (and changes nothing);
/// none when the table already has everything, so a second run does nothing.
///
/// # Errors
/// A [`SourceError`] when the database cannot be reached, the table is not there, it lacks
/// a column that holds the event or its order (`seq`, `event_id`, `event_type`,
/// `aggregate_id`, `occurred_at`, `source`, `payload`, the message column), which no
/// default can stand for, or a statement fails (two rows sharing a `seq`, say); then
/// nothing is changed.
pub async fn migrate(
    database: &Database,
    table: &Table,
    dry_run: bool,
) -> Result<Vec<String>, SourceError> {
    match database {
        Database::Postgres(url) => PostgresSource::migrate(url, table, dry_run).await,
        Database::Sqlite(path) => {
            let (path, table) = (path.clone(), table.clone());
            tokio::task::spawn_blocking(move || SqliteSource::migrate(path, &table, dry_run))
                .await
                .map_err(|e| SourceError::fatal(e.to_string()))?
        }
    }
}

/// The counts `relay status` prints, after checking that the table has every column the
/// relay's statements name; nothing is written.
///
/// # Errors
/// A [`SourceError`] when the database cannot be reached, the table lacks a column, or a
/// statement fails.
pub async fn status(database: &Database, table: &Table) -> Result<Status, SourceError> {
    match database {
        Database::Postgres(url) => PostgresSource::status_once(url, table).await,
        Database::Sqlite(path) => SqliteSource::status_once(path, table).await,
    }
}

/// Runs the relay until the table is drained (`once`) or `shutdown` resolves.
///
/// # Errors
/// A [`RelayError`] for a fatal database or destination error, or a metrics address that
/// cannot be bound.
pub async fn run(
    options: RelayOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, RelayError> {
    match &options.database {
        Database::Postgres(url) => {
            let source = PostgresSource::new(url, options.table.clone())
                .map_err(RelayError::Source)?
                .deleting_published(options.engine.delete_published_after.is_some());
            run_with_source(source, options, shutdown).await
        }
        Database::Sqlite(path) => {
            let source = SqliteSource::new(path, options.table.clone());
            run_with_source(source, options, shutdown).await
        }
    }
}

async fn run_with_source<S: Source>(
    source: S,
    options: RelayOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, RelayError> {
    match &options.destination {
        Destination::Kafka(kafka) => {
            let sink = KafkaSink::with_logger(kafka.clone(), options.logger.clone())
                .map_err(RelayError::Sink)?;
            run_with(source, sink, options, shutdown).await
        }
        Destination::Stdout(dead_letter) => {
            let sink = StdoutSink::new(dead_letter.clone());
            run_with(source, sink, options, shutdown).await
        }
    }
}

/// Runs the relay between any source and sink, serving `/metrics` and `/health` when asked.
///
/// # Errors
/// As [`run`].
pub async fn run_with<S: Source, K: Sink>(
    source: S,
    sink: K,
    options: RelayOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, RelayError> {
    let metrics = Arc::new(
        Metrics::new("outbox_relay").with_lag_degraded_after(options.engine.lag_degraded_after),
    );
    let config = &options.engine.config;
    let endpoints = Endpoints {
        metrics: config.enable_metrics,
        health: config.enable_health_check,
    };
    let server = match &options.metrics_listen {
        Some(addr) => {
            let listener = observe::bind(addr)
                .await
                .map_err(|e| RelayError::Listen(format!("--metrics-listen {addr}: {e}")))?;
            Some(tokio::spawn(observe::serve(
                listener,
                Arc::clone(&metrics),
                sink.probe(),
                endpoints,
            )))
        }
        None => None,
    };
    let mut engine_options = options.engine.clone();
    engine_options.track_backlog |= server.is_some();
    let engine = Engine::new(
        source,
        sink,
        MessageEncoder::new(options.mode, options.profile.clone()),
        options.table.clone(),
        engine_options,
        metrics,
        options.logger.clone(),
    );
    let result = engine.run(shutdown).await;
    if let Some(server) = server {
        server.abort();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            "sqlite:out.db".parse(),
            Ok(Database::Sqlite(PathBuf::from("out.db")))
        );
        assert_eq!(
            "sqlite:///tmp/out.db".parse(),
            Ok(Database::Sqlite(PathBuf::from("/tmp/out.db")))
        );
        assert!(matches!(
            "postgresql://u:p@127.0.0.1:5432/db".parse(),
            Ok(Database::Postgres(_))
        ));
        assert!("mysql://x".parse::<Database>().is_err());
        assert!("sqlite:".parse::<Database>().is_err());
    }
}
