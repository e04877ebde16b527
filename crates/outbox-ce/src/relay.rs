//! `outbox-ce relay`: the outbox table -> Kafka or standard output (crate `outbox-relay`).

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use lexopt::prelude::*;
use outbox_cloudevents::Profile;
use outbox_relay::config::parse_duration;
use outbox_relay::kafka::KafkaOptions;
use outbox_relay::observe::parse_listen_addr;
use outbox_relay::{
    Database, Destination, EngineOptions, LogFormat, Logger, OnFailure, OutboxConfig, OutputMode,
    Overrides, RelayOptions, Table,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Init,
    Migrate,
    Schema,
    Status,
    Run,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::Init => "init",
            Sub::Migrate => "migrate",
            Sub::Schema => "schema",
            Sub::Status => "status",
            Sub::Run => "run",
        }
    }

    /// The options with a value the command takes, besides `--help` and `--version`.
    fn options(self) -> Vec<&'static str> {
        let mut options = TABLE_FLAGS.to_vec();
        if self == Sub::Run {
            options.extend_from_slice(RUN_FLAGS);
        }
        options
    }

    /// The options without a value the command takes, besides `--help` and `--version`.
    fn switches(self) -> &'static [&'static str] {
        match self {
            Sub::Run => RUN_SWITCHES,
            Sub::Migrate => &["dry-run"],
            Sub::Init | Sub::Schema | Sub::Status => &[],
        }
    }

    fn help(self) -> String {
        match self {
            Sub::Init => INIT_HELP.replace("SHORT_OPTIONS_HERE", SHORT_OPTIONS),
            Sub::Migrate => MIGRATE_HELP.to_owned(),
            Sub::Schema => SCHEMA_HELP.replace("SHORT_OPTIONS_HERE", SHORT_OPTIONS),
            Sub::Status => STATUS_HELP.replace("SHORT_OPTIONS_HERE", SHORT_OPTIONS),
            Sub::Run => RUN_HELP.replace("TABLE_OPTIONS_HERE", TABLE_OPTIONS),
        }
    }
}

/// The options with a value every `relay` command takes.
const TABLE_FLAGS: [&str; 4] = ["db", "table", "column", "message-column"];

/// The options with a value `relay run` takes besides [`TABLE_FLAGS`].
const RUN_FLAGS: &[&str] = &[
    "brokers",
    "topic",
    "to",
    "mode",
    "profile",
    "batch-size",
    "poll-interval",
    "max-retries",
    "backoff-multiplier",
    "dead-letter-topic",
    "on-failure",
    "metrics-listen",
    "shutdown-timeout",
    "once-stall-timeout",
    "lag-degraded-after",
    "delete-published-after",
    "log-format",
    "producer-option",
];

/// The options without a value `relay run` takes.
const RUN_SWITCHES: &[&str] = &["once", "log-events"];

/// The options of every `relay` subcommand, as given.
#[derive(Debug, Default)]
struct Args {
    db: Option<Database>,
    table: Option<String>,
    columns: Vec<String>,
    message_column: Option<String>,
    brokers: Option<String>,
    topic: Option<String>,
    to_stdout: bool,
    mode: Option<OutputMode>,
    profile: Option<Profile>,
    once: bool,
    dry_run: bool,
    overrides: Overrides,
    dead_letter_topic: Option<String>,
    on_failure: OnFailure,
    metrics_listen: Option<String>,
    shutdown_timeout: Option<Duration>,
    once_stall_timeout: Option<Duration>,
    lag_degraded_after: Option<Duration>,
    delete_published_after: Option<Duration>,
    log_format: LogFormat,
    log_events: bool,
    producer_options: Vec<(String, String)>,
}

enum Parsed {
    Help(String),
    Version,
    Run(Sub, Box<Args>),
}

/// Runs `outbox-ce relay ARGS...` (the arguments after `relay`).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let (sub, args) = match parse(args) {
        Ok(Parsed::Help(text)) => {
            let _ = io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            let _ = io::stdout().write_all(crate::args::VERSION.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(sub, args)) => (sub, args),
        Err((sub, message)) => {
            let help = match sub {
                Some(sub) => format!("outbox-ce relay {} --help", sub.name()),
                None => "outbox-ce relay --help".to_owned(),
            };
            let _ = writeln!(
                io::stderr(),
                "outbox-ce relay: {message}\nRun `{help}` for usage."
            );
            return ExitCode::from(2);
        }
    };
    match prepare(sub, *args) {
        Ok(job) => job.run(),
        Err(message) => {
            let _ = writeln!(io::stderr(), "outbox-ce relay {}: {message}", sub.name());
            ExitCode::from(2)
        }
    }
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, (Option<Sub>, String)> {
    let mut parser = lexopt::Parser::from_args(args);
    let sub = match parser.next().map_err(|e| (None, e.to_string()))? {
        Some(Short('h') | Long("help")) | None => return Ok(Parsed::Help(RELAY_HELP.to_owned())),
        Some(Short('V') | Long("version")) => return Ok(Parsed::Version),
        Some(Value(name)) => match name.to_string_lossy().as_ref() {
            "init" => Sub::Init,
            "migrate" => Sub::Migrate,
            "schema" => Sub::Schema,
            "status" => Sub::Status,
            "run" => Sub::Run,
            other => {
                return Err((
                    None,
                    format!(
                        "`{other}` is not a relay command: use init, migrate, schema, status or run"
                    ),
                ));
            }
        },
        Some(other) => return Err((None, other.unexpected().to_string())),
    };
    let fail = |m: String| (Some(sub), m);
    let mut args = Args::default();
    while let Some(arg) = parser.next().map_err(|e| fail(e.to_string()))? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help(sub.help())),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Long(name) if sub.switches().contains(&name) => {
                switch(&mut args, name).map_err(|e| fail(format!("--{name}: {e}")))?;
            }
            Long(name) if sub.options().contains(&name) => {
                let name = name.to_owned();
                let value = parser
                    .value()
                    .map_err(|e| fail(e.to_string()))?
                    .into_string()
                    .map_err(|_| fail(format!("--{name}: the value is not UTF-8")))?;
                set(&mut args, &name, &value).map_err(|e| fail(format!("--{name}: {e}")))?;
            }
            other => return Err(fail(other.unexpected().to_string())),
        }
    }
    if args.db.is_none() {
        return Err(fail("--db is required".to_owned()));
    }
    if sub == Sub::Run {
        match (args.to_stdout, &args.brokers, &args.topic) {
            (true, None, None) => {}
            (false, Some(_), Some(_)) => {}
            (true, _, _) => {
                return Err(fail(
                    "--to stdout and --brokers/--topic exclude each other".to_owned(),
                ));
            }
            (false, _, _) => {
                return Err(fail(
                    "name a destination: --brokers HOST:PORT --topic T, or --to stdout".to_owned(),
                ));
            }
        }
    }
    Ok(Parsed::Run(sub, Box::new(args)))
}

fn number<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("`{value}` is not {what}"))
}

/// Sets the option without a value `name`.
fn switch(args: &mut Args, name: &str) -> Result<(), String> {
    match name {
        "once" => args.once = true,
        "log-events" => args.log_events = true,
        "dry-run" => args.dry_run = true,
        _ => return Err("not an option of this command".to_owned()),
    }
    Ok(())
}

fn set(args: &mut Args, name: &str, value: &str) -> Result<(), String> {
    let non_empty = || {
        if value.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(value.to_owned())
        }
    };
    match name {
        "db" => args.db = Some(value.parse()?),
        "table" => args.table = Some(non_empty()?),
        "column" => args.columns.push(value.to_owned()),
        "message-column" => args.message_column = Some(non_empty()?),
        "brokers" => args.brokers = Some(non_empty()?),
        "topic" => args.topic = Some(non_empty()?),
        "to" => {
            if value != "stdout" {
                return Err(format!("`{value}` is not a destination: use stdout"));
            }
            args.to_stdout = true;
        }
        "mode" => args.mode = Some(value.parse()?),
        "profile" => {
            args.profile = Some(match value {
                "canonical" => Profile::Canonical,
                "python-outbox-core" => Profile::python_outbox_core(),
                _ => {
                    return Err(format!(
                        "`{value}` is not a profile: use canonical or python-outbox-core"
                    ));
                }
            });
        }
        "batch-size" => args.overrides.batch_size = Some(number(value, "a whole number")?),
        "max-retries" => args.overrides.max_retry_count = Some(number(value, "a whole number")?),
        "backoff-multiplier" => {
            args.overrides.retry_backoff_multiplier = Some(number(value, "a number")?);
        }
        "poll-interval" => args.overrides.poll_interval = Some(parse_duration(value)?),
        "shutdown-timeout" => args.shutdown_timeout = Some(parse_duration(value)?),
        "once-stall-timeout" => args.once_stall_timeout = Some(parse_duration(value)?),
        "lag-degraded-after" => args.lag_degraded_after = Some(parse_duration(value)?),
        "delete-published-after" => args.delete_published_after = Some(parse_duration(value)?),
        "dead-letter-topic" => args.dead_letter_topic = Some(non_empty()?),
        "on-failure" => {
            args.on_failure = match value {
                "continue" => OnFailure::Continue,
                "block" => OnFailure::Block,
                _ => return Err(format!("`{value}` is not a policy: use continue or block")),
            };
        }
        "metrics-listen" => args.metrics_listen = Some(parse_listen_addr(value)?),
        "log-format" => {
            args.log_format = match value {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(format!("`{value}` is not a log format: use text or json")),
            };
        }
        "producer-option" => {
            let (key, val) = value
                .split_once('=')
                .ok_or_else(|| format!("`{value}`: write KEY=VALUE, such as linger.ms=1"))?;
            args.producer_options
                .push((key.trim().to_owned(), val.trim().to_owned()));
        }
        _ => return Err("not an option of this command".to_owned()),
    }
    Ok(())
}

/// A command checked and ready: nothing has been touched yet.
enum Job {
    Init(Database, Table),
    Migrate(Database, Table, bool),
    Schema(Database, Table),
    Status(Database, Table),
    Run(Box<RelayOptions>),
}

fn prepare(sub: Sub, args: Args) -> Result<Job, String> {
    let Some(db) = args.db else {
        return Err("--db is required".to_owned());
    };
    let mut table = match &args.table {
        Some(name) => Table::new(name).map_err(|e| format!("--table: {e}"))?,
        None => Table::default(),
    };
    if let Some(column) = &args.message_column {
        table = table
            .with_message_column(column)
            .map_err(|e| format!("--message-column: {e}"))?;
    }
    for spec in &args.columns {
        table.map_all(spec).map_err(|e| format!("--column: {e}"))?;
    }
    match sub {
        Sub::Init => return Ok(Job::Init(db, table)),
        Sub::Migrate => return Ok(Job::Migrate(db, table, args.dry_run)),
        Sub::Schema => return Ok(Job::Schema(db, table)),
        Sub::Status => return Ok(Job::Status(db, table)),
        Sub::Run => {}
    }
    let config = OutboxConfig::from_env(&args.overrides).map_err(|e| e.to_string())?;
    let destination = match (args.brokers, args.topic) {
        (Some(brokers), Some(topic)) => Destination::Kafka(KafkaOptions {
            brokers,
            topic,
            dead_letter_topic: args.dead_letter_topic.clone(),
            properties: args.producer_options,
        }),
        _ => Destination::Stdout(args.dead_letter_topic.clone()),
    };
    let defaults = EngineOptions::default();
    let engine = EngineOptions {
        config,
        once: args.once,
        on_failure: args.on_failure,
        dead_letter: args.dead_letter_topic.is_some(),
        shutdown_timeout: args.shutdown_timeout.unwrap_or(defaults.shutdown_timeout),
        delete_published_after: args.delete_published_after,
        track_backlog: false,
        once_stall_timeout: args
            .once_stall_timeout
            .unwrap_or(defaults.once_stall_timeout),
        lag_degraded_after: args
            .lag_degraded_after
            .unwrap_or(defaults.lag_degraded_after),
    };
    Ok(Job::Run(Box::new(RelayOptions {
        database: db,
        table,
        destination,
        mode: args.mode.unwrap_or(OutputMode::Binary),
        profile: args.profile.unwrap_or(Profile::Canonical),
        engine,
        metrics_listen: args.metrics_listen,
        logger: Logger {
            format: args.log_format,
            events: args.log_events,
            quiet: false,
        },
    })))
}

impl Job {
    /// Whether the command's output is standard output.
    fn writes_to_stdout(&self) -> bool {
        match self {
            Job::Migrate(..) | Job::Schema(..) | Job::Status(..) => true,
            Job::Init(..) => false,
            Job::Run(options) => matches!(options.destination, Destination::Stdout(_)),
        }
    }

    fn run(self) -> ExitCode {
        let name = match &self {
            Job::Init(..) => "init",
            Job::Migrate(..) => "migrate",
            Job::Schema(..) => "schema",
            Job::Status(..) => "status",
            Job::Run(_) => "run",
        };
        if self.writes_to_stdout() && crate::lines::closed_at_start(1) {
            // Checked before the database is opened: nothing is read or marked.
            let _ = writeln!(
                io::stderr(),
                "outbox-ce relay {name}: standard output is closed, so the output would go nowhere"
            );
            return ExitCode::from(1);
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(io::stderr(), "outbox-ce relay {name}: {e}");
                return ExitCode::from(1);
            }
        };
        let result: Result<(), String> = runtime.block_on(async move {
            match self {
                Job::Schema(db, table) => {
                    let mut out = io::stdout().lock();
                    out.write_all(table.ddl(db.dialect()).as_bytes())
                        .map_err(|e| e.to_string())
                }
                Job::Init(db, table) => outbox_relay::init(&db, &table)
                    .await
                    .map_err(|e| e.to_string()),
                Job::Migrate(db, table, dry_run) => migrate(&db, &table, dry_run).await,
                Job::Status(db, table) => {
                    let status = outbox_relay::status(&db, &table)
                        .await
                        .map_err(|e| e.to_string())?;
                    writeln!(io::stdout(), "{}", status.to_json()).map_err(|e| e.to_string())
                }
                Job::Run(options) => outbox_relay::run(*options, shutdown_signal())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
            }
        });
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(io::stderr(), "outbox-ce relay {name}: {e}");
                ExitCode::from(1)
            }
        }
    }
}

/// `relay migrate`: the statements on standard output, each ended by `;` (so that the
/// output of `--dry-run` is a script), and what was done on standard error.
async fn migrate(db: &Database, table: &Table, dry_run: bool) -> Result<(), String> {
    let statements = outbox_relay::migrate(db, table, dry_run)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = io::stdout().lock();
    for statement in &statements {
        writeln!(out, "{statement};").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    let done = match (statements.len(), dry_run) {
        (0, _) => format!(
            "table `{}` has everything the relay needs: nothing to do",
            table.name()
        ),
        (n, true) => format!(
            "table `{}`: {n} statements to run (--dry-run: nothing changed)",
            table.name()
        ),
        (n, false) => format!(
            "table `{}`: {n} statements run, in one transaction",
            table.name()
        ),
    };
    let _ = writeln!(io::stderr(), "outbox-ce relay migrate: {done}");
    Ok(())
}

/// A future that resolves on SIGTERM or SIGINT, with the handlers installed at once (before
/// the future is first polled), so that a signal arriving early stops the relay (or the
/// bridge) cleanly. Call it in the runtime.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            let (Ok(mut term), Ok(mut int)) = handlers else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

const RELAY_HELP: &str = "\
outbox-ce relay: the outbox table -> Kafka or standard output

Usage: outbox-ce relay <COMMAND> --db URL [OPTIONS]

Commands:
  init    create the outbox table, its indexes and (PostgreSQL) its notify trigger
  migrate add to an existing table what the relay needs and it lacks
  schema  print that DDL
  status  print one JSON object: pending, published, failed, oldest_pending_age_seconds
  run     publish the rows: every row once at least, in order per key

URL is postgres://user:password@host:port/dbname (or postgresql://, plain TCP without
TLS) or sqlite:PATH.

Set-up on SQLite, in three commands:
  outbox-ce relay init --db sqlite:outbox.db
  (your service inserts rows into outbox_events)
  outbox-ce relay run --db sqlite:outbox.db --to stdout --once

Options:
  -h, --help     this help
  -V, --version  the version

Run `outbox-ce relay <COMMAND> --help` for a command's options.
";

const TABLE_OPTIONS: &str = "\
Table:
  --db URL                postgres://user:password@host:port/dbname or sqlite:PATH
  --table NAME            the table, `name` or `schema.name` (default outbox_events)
  --column FIELD=COLUMN   read FIELD from COLUMN of an existing table; repeat it or
                          separate pairs with commas; FIELD= says the table has no such
                          column (data_version, correlation_id, causation_id,
                          partition_key, traceparent, tracestate only)
  --message-column NAME   read each event from one JSON column holding
                          python-outbox-core's to_message() object; with
                          --column partition_key=COL, COL (when not NULL) is the key
                          rows are ordered by and the key published (message key and
                          ce_partitionkey), else the message's partition_key, else
                          its aggregate_id";

/// The options of `init`, `schema` and `status`.
const SHORT_OPTIONS: &str = "\
Options:
  --db URL                postgres://user:password@host:port/dbname or sqlite:PATH
  --table NAME            the table, `name` or `schema.name` (default outbox_events)
  --column FIELD=COLUMN   name the columns differently (see `relay run --help`)
  --message-column NAME   one JSON column holding the to_message() object
  -h, --help              this help
  -V, --version           the version";

const INIT_HELP: &str = "\
outbox-ce relay init: create the outbox table, its indexes and its notify trigger

Usage: outbox-ce relay init --db URL [--table NAME] [--column F=C] [--message-column NAME]

Every statement is idempotent (IF NOT EXISTS, OR REPLACE): running it again changes
nothing. SQLite: creates the file if needed and turns on write-ahead logging. A table that
is already there is left as it is; when it lacks what the relay needs, init says so and
`outbox-ce relay migrate` adds it.

SHORT_OPTIONS_HERE

Example:
  outbox-ce relay init --db postgres://app:secret@127.0.0.1:5432/app
";

const MIGRATE_HELP: &str = "\
outbox-ce relay migrate: add to an existing table what the relay needs

Usage: outbox-ce relay migrate --db URL [--table NAME] [--column F=C] [--message-column NAME]
                               [--dry-run]

Adds, in one transaction, only what the table lacks: the columns published_at, attempts,
last_error, failed_at (the relay's bookkeeping) and data_version, correlation_id,
causation_id, partition_key, traceparent, tracestate (optional event columns, which rows
already there get as NULL, or '1.0' for data_version), each under the name --column gives
it; a unique index on seq when that column is not unique (it fails, changing nothing, if
two rows share a value); the relay's two indexes; in PostgreSQL the notify trigger. Prints
each statement on standard output. A second run finds nothing to do and says so.

A column that holds the event or its order (seq, event_id, event_type, aggregate_id,
occurred_at, source, payload, the message column) cannot be made up: migrate refuses,
naming it; map the field to the column that holds it with --column. To leave an optional
column out instead of adding it, map it to nothing (--column traceparent=) here and in
`relay run`.

Options:
  --db URL                postgres://user:password@host:port/dbname or sqlite:PATH
  --table NAME            the table, `name` or `schema.name` (default outbox_events)
  --column FIELD=COLUMN   the table's own column names (see `relay run --help`)
  --message-column NAME   one JSON column holding the to_message() object
  --dry-run               print the statements, change nothing
  -h, --help              this help
  -V, --version           the version

Exit status: 0 when done (or nothing to do), 1 when the table cannot be migrated (nothing
is changed), 2 for a usage error.

Example:
  outbox-ce relay migrate --db sqlite:app.db --table events --column seq=id --dry-run
";

const SCHEMA_HELP: &str = "\
outbox-ce relay schema: print the DDL `relay init` runs

Usage: outbox-ce relay schema --db URL [--table NAME] [--column F=C] [--message-column NAME]

Nothing is opened: the URL only chooses the dialect.

SHORT_OPTIONS_HERE

Example:
  outbox-ce relay schema --db postgres://localhost/app > outbox.sql
";

const STATUS_HELP: &str = "\
outbox-ce relay status: count the table's rows

Usage: outbox-ce relay status --db URL [--table NAME] [--column F=C] [--message-column NAME]

Prints one JSON object: {\"pending\": N, \"published\": N, \"failed\": N,
\"oldest_pending_age_seconds\": S}. pending = neither published nor failed; failed =
failed_at set and not published; the age is that of the occurred_at of the first pending
row in seq order (null when none is pending).

SHORT_OPTIONS_HERE

Example:
  outbox-ce relay status --db sqlite:outbox.db
";

const RUN_HELP: &str = "\
outbox-ce relay run: publish the outbox table's rows

Usage: outbox-ce relay run --db URL [--table NAME] (--brokers HOST:PORT --topic T | --to stdout)
                           [--mode binary|structured|outbox-json] [--profile canonical|python-outbox-core]
                           [--once] [--batch-size N] [--poll-interval DURATION] [--max-retries N]
                           [--backoff-multiplier F] [--dead-letter-topic T] [--on-failure continue|block]
                           [--metrics-listen ADDR] [--shutdown-timeout DURATION] [OPTIONS]

Publishes each row once at least, in seq order per partition key (partition_key, else
aggregate_id), and marks it published only after the broker acknowledged it (Kafka:
idempotent producer, acks=all). Several relays may run on one PostgreSQL database: they
share the keys and take over those of a relay that stops. On SIGTERM or SIGINT: stops
claiming, waits for the acknowledgements in flight (at most --shutdown-timeout), marks
them, exits 0.

Destination:
  --brokers LIST          Kafka bootstrap servers, HOST:PORT[,HOST:PORT...]
  --topic T               the topic
  --to stdout             write interchange JSON lines, as `outbox-ce encode` does
  --mode MODE             binary (default): CloudEvents attributes in ce_ headers;
                          structured: the CloudEvent as JSON in the value;
                          outbox-json: what python-outbox-core's publisher sends, the
                          to_message() object as the value, no headers, occurred_at
                          as its isoformat() of the stored time (naive stays naive)
  --profile PROFILE       canonical (default) or python-outbox-core
  --producer-option K=V   a librdkafka producer property (repeatable), such as
                          linger.ms=1 or security.protocol=ssl

TABLE_OPTIONS_HERE

Running (flags beat OUTBOX_* variables, which beat the defaults):
  --once                  publish what is pending, then exit 0
  --once-stall-timeout D  with --once: give up (exit 1, naming the brokers and their last
                          error; unacknowledged rows stay pending) when the destination
                          acknowledged nothing for D while messages wait for it; every
                          acknowledgement restarts the clock (default 1m)
  --batch-size N          rows a claim (1-1000, default 100; OUTBOX_BATCH_SIZE)
  --poll-interval D       wait between polls without a notification (1s-3600s,
                          default 5s; OUTBOX_POLL_INTERVAL_SECONDS)
  --max-retries N         retries of a message the broker refuses before the row is
                          marked failed (0-100, default 3; OUTBOX_MAX_RETRY_COUNT)
  --backoff-multiplier F  factor between retry waits, the first being 1s (1.0-10.0,
                          default 2.0; OUTBOX_RETRY_BACKOFF_MULTIPLIER)
  --dead-letter-topic T   send failed rows there first (key = partition key, value = the
                          row as JSON, headers outbox-error, outbox-seq, outbox-table)
  --on-failure POLICY     continue (default): later rows of a failed row's key go on;
                          block: they wait until the failed row is dealt with
  --shutdown-timeout D    wait at most this for acknowledgements on shutdown (default 25s)
  --delete-published-after D
                          delete rows published longer ago than D; 0 deletes each row
                          instead of marking it published
  --metrics-listen ADDR   serve /metrics (Prometheus) and /health (JSON, 503 when
                          unhealthy) on ADDR, such as 127.0.0.1:9464
                          (OUTBOX_ENABLE_METRICS, OUTBOX_ENABLE_HEALTH_CHECK turn them off);
                          a malformed ADDR is a usage error (exit 2), one that cannot be
                          bound (in use) stops the relay at start (exit 1)
  --lag-degraded-after D  /health says the lag is degraded when the same row has been the
                          first pending one for longer than D (default 5m)
  --log-format FORMAT     text (default) or json (python-outbox-core's event names)
  --log-events            also log each published row (outbox.event_published)
  -h, --help              this help
  -V, --version           the version

DURATION: a number with ms, s, m or h (500ms, 5s, 2m), or plain seconds; at most
87600h (ten years).

Before anything is read or sent, the relay checks the table: every column named above
(after --column and --message-column) must exist, the seq column must be unique and NOT
NULL (the primary key or a unique index of its own: rows are marked by seq), and the database must
let the relay write (a rolled-back write). Otherwise it exits 1 naming the table and the
columns, or the cause; `outbox-ce relay migrate` adds what can be added.

Exit status: 0 when done (--once) or stopped by a signal; 1 when the relay could not go
on (a missing table or column, a seq that is not unique or may be NULL, a database it
cannot write to, an SQLite file replaced under it, standard output closed, --once with a
destination that stalled); 2 for a usage error or a setting out of range, before anything
is touched.

Examples:
  outbox-ce relay run --db sqlite:outbox.db --to stdout --once
  outbox-ce relay run --db postgres://app:secret@127.0.0.1:5432/app \\
      --brokers 127.0.0.1:9092 --topic events --mode binary --metrics-listen 127.0.0.1:9464
";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option the parser takes is in the command's help, and nothing else.
    #[test]
    fn each_commands_help_lists_the_options_it_takes() {
        for sub in [Sub::Init, Sub::Migrate, Sub::Schema, Sub::Status, Sub::Run] {
            let mut options = sub.options();
            options.extend_from_slice(sub.switches());
            crate::help_test::assert_lists(sub.name(), &sub.help(), &options);
        }
        crate::help_test::assert_lists("relay", RELAY_HELP, &[]);
    }
}
