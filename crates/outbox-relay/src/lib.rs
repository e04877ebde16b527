//! The outbox relay: rows of an outbox table (PostgreSQL or SQLite) published to Kafka (or
//! written to standard output) as CloudEvents or python-outbox-core messages, nothing lost,
//! in order per key, on one machine or several.
//!
//! A Rust service embeds it with [`relay::run`] (or [`Engine`] for sources and sinks of its
//! own); the `outbox-ce relay` command line is a thin layer over the same calls.
//!
//! ```no_run
//! use outbox_relay::{Destination, EngineOptions, Logger, OutputMode, RelayOptions, Table};
//! # async fn example() -> Result<(), outbox_relay::RelayError> {
//! let options = RelayOptions {
//!     database: "sqlite:outbox.db".parse().unwrap(),
//!     table: Table::default(),
//!     destination: Destination::Stdout(None),
//!     mode: OutputMode::Binary,
//!     profile: outbox_cloudevents::Profile::Canonical,
//!     engine: EngineOptions { once: true, ..EngineOptions::default() },
//!     metrics_listen: None,
//!     logger: Logger::default(),
//! };
//! let summary = outbox_relay::run(options, std::future::pending()).await?;
//! println!("{} published", summary.published);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! A pipeline is a [`Source`], a [`Sink`] and the one [`Engine`] between them, which alone
//! owns ordering, acknowledgement, retries and shutdown. Each real backend is a file of its
//! own: [`postgres`] and [`sqlite`] (sources), [`kafka`] and [`stdout`] (sinks). [`schema`]
//! holds the table's columns, their mapping onto an existing table and the DDL; [`config`]
//! python-outbox-core's settings; [`observe`] the `/metrics` and `/health` endpoint and the log
//! lines, [`kafka_log`] librdkafka's own log in those lines (rate-limited), with counters generic enough for the bridge (topic -> topic), which will be a second
//! source feeding the same engine design.
//!
//! # The table
//! `relay init` creates `outbox_events` (or `--table`) with the columns of the contract
//! (`seq`, `event_id`, `event_type`, `aggregate_id`, `source`, `occurred_at`, `data_version`,
//! `correlation_id`, `causation_id`, `partition_key`, `payload`, `traceparent`, `tracestate`,
//! `published_at`, `attempts`, `last_error`, `failed_at`), an index of the unpublished rows by
//! `seq`, an index of failed rows by key, and in PostgreSQL a statement-level trigger that
//! `NOTIFY`s the channel named after the table. `relay schema` prints the same DDL.
//!
//! - An existing table is mapped with `--column FIELD=COLUMN[,...]` ([`Table::map_all`]);
//!   `FIELD=` (empty) says the table has no such column (optional fields only).
//! - `--message-column NAME` reads each event from one JSON column holding python-outbox-core's
//!   `to_message()` object ([`Table::with_message_column`]); the partition key is its
//!   `partition_key` member, else its `aggregate_id`. With `--column partition_key=COL` as
//!   well, that column comes first: when it is not `NULL`, its value is the key the rows are
//!   ordered (and, with `--on-failure block`, held) by, and the key published: the message
//!   key, `ce_partitionkey`, and the `partition_key` member in `outbox-json` mode. The key
//!   that orders is always the key published: a row whose event would carry another key
//!   (a message with two `partition_key` members, say) fails.
//! - PostgreSQL `payload` as `json` keeps the text as the service wrote it, byte for byte on
//!   the wire; `jsonb` is accepted but PostgreSQL stores it parsed, so key order, white space
//!   and duplicate keys are lost before the relay reads it.
//! - A row is read into an outbox event by the library's own `to_message()` reader
//!   ([`Row::to_event`]), so a bad row fails with the library's error text. Each value is
//!   selected under a name of its own and read by that name. A value that cannot be read as
//!   text (SQLite text or a blob that is not UTF-8), a `NULL` payload or message column, or
//!   a row whose key columns are all `NULL` fails the row with an error naming the column
//!   ([`Row::event`]), such as ``column `body` is NULL``; nothing is sent altered or with an
//!   empty key.
//! - Every `seq` is claimed, zero and negative ones included: a claim from the start of the
//!   table has no lower bound, and `--once` ends only after such a claim finds nothing.
//! - `attempts` counts failed attempts (a refusal by the broker, an invalid row); a
//!   published row keeps the count it had. It stops at the largest value its column holds
//!   (SQLite: 9223372036854775807; PostgreSQL: that of the column's type, 2147483647 for
//!   `integer`) instead of overflowing. A row whose `attempts` is no integer (SQLite `TEXT`,
//!   `REAL`, `BLOB` or `NULL`; PostgreSQL `NULL` or a value that does not read as one) fails
//!   like an invalid row, with ``column `attempts` holds the TEXT `abc`, not an integer
//!   count of attempts`` in `last_error`, and is dead-lettered when a topic is named; the
//!   other rows go on, and its count starts again at 1.
//! - The age of the backlog (`relay status`, the `oldest_pending_age_seconds` metric and the
//!   lag of `/health`) reads `occurred_at` with the publisher's own parser
//!   ([`outbox_cloudevents::parse_occurred_at`]), so every time a row is published with, such
//!   as SQLite's `CURRENT_TIMESTAMP` form `2024-05-01 10:00:00`, has its true age. A time it
//!   cannot read (`NULL`, not UTF-8, not a time) never stops the relay or `relay status`: the
//!   age is unknown, `relay status` says why in `oldest_pending_age_error` (naming the `seq`
//!   and the column), the relay logs `outbox.backlog_age_unknown` once for that row and counts
//!   its age as 0, and the row itself fails when it is claimed.
//! - Before anything is read or sent, each source checks the table as the database describes
//!   it: every column its statements name (after the mapping) exists, the `seq` column is
//!   unique (the primary key, or the one column of a unique index that is neither partial nor
//!   on an expression) and `NOT NULL` (a NULL `seq` is never claimed), and the relay may write to it (a write rolled back); otherwise it
//!   stops with a fatal error naming the table and each missing column, or the cause.
//!   [`status`] checks the columns only. SQLite connections also have double-quoted string
//!   literals off, so that no statement can read a missing column's name as a string.
//! - [`migrate`] (`relay migrate`) adds what an existing table lacks: the columns that can
//!   be added ([`Field::addable`]), a unique index on `seq`, `NOT NULL` on `seq` (PostgreSQL
//!   only: SQLite cannot alter a column), the indexes, the trigger, in one
//!   transaction, each only when missing; [`init`] leaves an existing table as it is and
//!   refuses one that lacks what the relay needs.
//!
//! # Guarantees, and how
//! 1. **Nothing is lost.** A row is marked published only after the destination acknowledged
//!    its message (Kafka: `acks=all` on the idempotent producer; standard output: written and
//!    flushed). Marks go in one `UPDATE ... WHERE seq = ANY(...)` per pass; `seq` is the
//!    row's identity because the start-up check refuses a `seq` column that is not unique,
//!    and a claim returning one `seq` twice stops the relay. A crash between
//!    the acknowledgement and the mark republishes those rows; consumers deduplicate on the
//!    CloudEvents `id`, the event id. In PostgreSQL marks commit asynchronously
//!    (`synchronous_commit = off` on the relay's session): a crash of the database server
//!    itself may lose the marks of its last few hundred milliseconds, which republishes rows
//!    already acknowledged, the same as a relay crash before marking; the WAL keeps them in
//!    order, so what survives is a state the table was in. Failures (`failed_at`) commit
//!    synchronously, before the next row of the key is sent.
//! 2. **Order per key.** The partition key is `coalesce(partition_key, aggregate_id)`. The
//!    engine claims rows in `seq` order into a bounded window (ten batches, at least 1,000
//!    rows), queues them per key, and keeps **at most one message of a key in flight**: the
//!    next row of a key is sent only after the previous one was acknowledged, or marked
//!    failed. Many keys are in flight at once. Pipelining one key is not safe even with the
//!    idempotent producer: a message refused for good (too large) while later messages of
//!    its partition were already sent would put the later rows on the topic first. A relay
//!    that loses its database connection or gives up a bucket drops the rows it has not sent
//!    (and its next claim starts from the start of the table, so that no later row of their
//!    key is sent before them); the next owner starts from the first unpublished row of each
//!    key, and sends it only
//!    after the earlier one was acknowledged, so the first delivery of each row follows the
//!    first delivery of the row before it. Rows are ordered as committed: a row committed
//!    after a later `seq` of its key was published is sent when found (a full claim from the
//!    start of the table runs every poll interval), which writers avoid by locking the
//!    aggregate they write for.
//! 3. **Errors.** A row that is not a valid outbox event is marked failed at once, with the
//!    library's error in `last_error`. librdkafka retries transient errors itself without end
//!    (`message.timeout.ms=0`), so they never fail a row; a message the broker refuses for good
//!    (too large, invalid or unknown topic, not authorised) is retried after 1 s, then ×
//!    `retry_backoff_multiplier` each time, and after `max_retry_count` retries its row is marked
//!    failed (`attempts`, `last_error`, `failed_at`). With `--dead-letter-topic`, a failed row
//!    is first sent there: key = its partition key, value = the row as a JSON object (`seq`,
//!    then each column read, by its name in the table, as text, `null` for SQL `NULL`, or
//!    `{"base64": "..."}` holding the stored bytes (standard alphabet, padded) of a value
//!    that is not UTF-8 text; the payload as its text even when that is not JSON), headers
//!    `outbox-error`, `outbox-seq`, `outbox-table`;
//!    it is marked failed once that message is acknowledged. The later rows of its key then go
//!    on, or with `--on-failure block` wait until the failed row is published or its
//!    `failed_at` is cleared.
//! 4. **Several relays, one PostgreSQL database.** Keys hash into 64 buckets
//!    (`hashtext(key)`, computed by the server); a relay claims only rows of buckets whose
//!    session-level advisory lock it holds, and rebalances every second to a fair share of the
//!    live relays (counted by their member locks in `pg_locks`). A dead relay's connection
//!    ends, PostgreSQL releases its locks, and the others take its buckets within about a
//!    second. One SQLite file takes one relay.
//! 5. **Latency.** PostgreSQL: the relay `LISTEN`s on the table's channel and claims as soon
//!    as a statement inserting rows commits; the poll interval is the fallback. SQLite polls.
//!    The producer sends at once (`linger.ms=0`, Nagle off), acknowledged rows are marked
//!    within 2 ms, and a mark does not wait for a WAL flush, so it does not hold up the next
//!    claim on the relay's one connection.
//! 6. **Throughput.** Batches of `batch_size` rows, every key pipelined, marks one statement
//!    a pass. Memory is bounded by the window whatever the backlog.
//! 7. **Running.** `once` claims until nothing is left and returns. Otherwise, on the
//!    shutdown signal (seen at every turn of the loop, also while a backlog drains) the engine
//!    stops claiming, drops rows not yet sent, waits for the
//!    acknowledgements in flight up to the shutdown timeout (default 25 s), marks them and
//!    returns; messages still unacknowledged then are left unmarked and are published again
//!    by the next run. A lost database connection is retried with backoff (100 ms doubling to
//!    5 s), messages in flight still complete and are marked after reconnecting.
//! 8. **Retention.** `--delete-published-after DURATION` deletes rows published longer ago
//!    than that, every 30 s; `0` deletes each row instead of marking it (then `relay status`
//!    counts no published rows).
//! 9. **Observability.** See [`observe`].
//! 10. **Configuration.** See [`config`]: flags, then `OUTBOX_*`, then the defaults, each in
//!     python-outbox-core's range. `--poll-interval` is held to the same range (1 s to 1 h).
//!
//! # The command line
//! `outbox-ce relay init|migrate|schema|status|run` take the flags their `--help` lists (and
//! the README's relay section), among them:
//! - `--column FIELD=COLUMN[,...]` and `--message-column NAME` (every subcommand): the
//!   column mapping above;
//! - `migrate [--dry-run]`: [`migrate`], the statements printed on standard output;
//! - `run --delete-published-after DURATION`: retention (guarantee 8);
//! - `run --log-format text|json` and `run --log-events`: log lines (guarantee 9);
//! - `run --producer-option KEY=VALUE` (repeatable): a librdkafka producer property;
//! - `run --dead-letter-topic T` with `--to stdout`: dead-letter lines carry `"topic": T`.
//!
//! `relay status` prints `{"pending":N,"published":N,"failed":N,"oldest_pending_age_seconds":S}`
//! with `null` for the age when nothing is pending; when the first pending row's
//! `occurred_at` cannot be read, the age is `null` too and `"oldest_pending_age_error"` says
//! why. Exit status: 0 done or stopped by a
//! signal, 1 when the relay cannot go on (missing table or column, `seq` not unique, a
//! database it cannot write to, an SQLite file replaced under it, standard output closed), 2 for a
//! usage error or a setting out of range, before anything is touched.

pub mod bridge;
pub mod config;
mod engine;
mod events;
mod inspect;
pub mod kafka;
pub mod kafka_log;
pub mod observe;
pub mod postgres;
pub mod relay;
pub mod schema;
pub mod sink;
pub mod source;
pub mod sqlite;
pub mod stdout;

pub use config::{ConfigError, OutboxConfig, Overrides};
pub use engine::{Engine, EngineOptions, OnFailure, RelayError, Summary};
pub use observe::{LogFormat, Logger, Metrics};
pub use relay::{Database, Destination, RelayOptions, init, migrate, run, status};
pub use schema::{Dialect, Field, Table};
pub use sink::{MessageEncoder, OutputMode, Route, Sink, SinkError, SinkErrorKind};
pub use source::{Row, Source, SourceError, Status};
