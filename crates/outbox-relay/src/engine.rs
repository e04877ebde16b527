//! The delivery engine: the one place that owns ordering, acknowledgement, retries and
//! shutdown between a [`Source`] and a [`Sink`].
//!
//! Rows are claimed in `seq` order into a bounded window in memory, queued per key, and
//! sent so that each key has at most one message in flight; the next row of a key is sent
//! when the previous one was acknowledged, or failed for good and was marked failed. Rows
//! acknowledged are marked published in one statement per pass of the loop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use outbox_cloudevents::Message;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{MAX_DURATION, OutboxConfig};
use crate::events::{RelayEvent, RowIds, StopReason};
use crate::observe::{Logger, Metrics};
use crate::schema::Table;
use crate::sink::{MessageEncoder, Route, Sink, SinkError, SinkErrorKind};
use crate::source::{ClaimOptions, Row, Source, SourceError};

/// What happens to the later rows of a key after one of its rows failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// They go on (python-outbox-core's behaviour).
    #[default]
    Continue,
    /// They wait until the failed row is published or its `failed_at` is cleared.
    Block,
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// python-outbox-core's settings.
    pub config: OutboxConfig,
    /// Publish what is pending, then return.
    pub once: bool,
    /// See [`OnFailure`].
    pub on_failure: OnFailure,
    /// Send failed rows to the sink's dead-letter route before marking them failed.
    pub dead_letter: bool,
    /// How long to wait for acknowledgements in flight after a shutdown request.
    pub shutdown_timeout: Duration,
    /// Delete published rows this long after publishing; zero deletes them instead of
    /// marking them.
    pub delete_published_after: Option<Duration>,
    /// Refresh the backlog gauges of [`Metrics`] every poll interval.
    pub track_backlog: bool,
    /// With `once`: give up when the destination has acknowledged nothing for this long
    /// while messages wait for it (the clock restarts at every acknowledgement, so a long
    /// backlog that keeps moving is never cut off); see [`RelayError::Stalled`]. Default one
    /// minute.
    pub once_stall_timeout: Duration,
    /// `/health` says the lag is `degraded` when the same row has been the first pending
    /// one for longer than this. Default five minutes.
    pub lag_degraded_after: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            config: OutboxConfig::default(),
            once: false,
            on_failure: OnFailure::Continue,
            dead_letter: false,
            shutdown_timeout: Duration::from_secs(25),
            delete_published_after: None,
            track_backlog: false,
            once_stall_timeout: Duration::from_secs(60),
            lag_degraded_after: crate::observe::LAG_DEGRADED_AFTER,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows marked published (or deleted on publishing).
    pub published: u64,
    /// Rows marked failed.
    pub failed: u64,
    /// Rows acknowledged but left unmarked (the database was unreachable at shutdown); they
    /// will be published again.
    pub unmarked: u64,
    /// Messages still unacknowledged when the shutdown timeout passed; their rows will be
    /// published again.
    pub abandoned: u64,
}

/// An error that stopped the relay.
#[derive(Debug, Clone)]
pub enum RelayError {
    /// The database refused something that will not go away (a missing table or column).
    Source(SourceError),
    /// The destination is gone, or refused its configuration.
    Sink(SinkError),
    /// The metrics address cannot be bound.
    Listen(String),
    /// `once`: the destination acknowledged nothing for
    /// [`EngineOptions::once_stall_timeout`] while messages waited for it. The messages in
    /// flight were abandoned; their rows stay pending and nothing unacknowledged was marked.
    Stalled {
        /// The destination, as [`Sink::describe`] names it (the brokers and the topic).
        destination: String,
        /// How long nothing was acknowledged.
        waited: Duration,
        /// Messages abandoned unacknowledged.
        abandoned: u64,
        /// The last error the destination reported, if it reported one.
        last_error: Option<String>,
    },
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::Source(e) => write!(f, "{e}"),
            RelayError::Sink(e) => write!(f, "{e}"),
            RelayError::Listen(e) => write!(f, "{e}"),
            RelayError::Stalled {
                destination,
                waited,
                abandoned,
                last_error,
            } => {
                write!(
                    f,
                    "{destination} acknowledged nothing for {:.1}s with {abandoned} message(s) waiting (--once-stall-timeout); gave up, their rows stay pending",
                    waited.as_secs_f64()
                )?;
                match last_error {
                    Some(e) => write!(f, "; the last error: {e}"),
                    None => write!(f, "; the destination reported no error"),
                }
            }
        }
    }
}

impl std::error::Error for RelayError {}

/// How often a PostgreSQL relay rebalances its buckets.
const REBALANCE_EVERY: Duration = Duration::from_secs(1);
/// The longest an acknowledged row waits to be marked while more acknowledgements come: at
/// 1,000 rows a second, a few hundred marks a second of a few rows each.
const MARK_WITHIN: Duration = Duration::from_millis(2);
/// How often the backlog gauges are refreshed (when tracked).
const BACKLOG_EVERY: Duration = Duration::from_secs(1);
/// How often published rows past their age are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(30);
/// The first and the longest wait before reconnecting to the database.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// The first and the longest wait before sending again after a transient error.
const TRANSIENT_FIRST: Duration = Duration::from_millis(100);
const TRANSIENT_MAX: Duration = Duration::from_secs(10);

struct Entry {
    row: Row,
    batch: u64,
    /// The error that sends this row to the dead-letter route, once it is going there.
    dead_letter: Option<String>,
    /// Transient errors in a row, for the backoff.
    transient: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The head may be sent.
    Idle,
    /// The head is in flight.
    InFlight,
    /// The head waits for a retry.
    Waiting,
}

struct KeyQueue {
    entries: VecDeque<Entry>,
    state: State,
    bucket: i32,
    /// The key's bucket was given up: drop the key when its head settles.
    orphan: bool,
}

struct Batch {
    total: u64,
    published: u64,
    failed: u64,
    remaining: u64,
}

/// A partition key, by which rows are queued; `None` for rows without one, which fail.
type Key = Option<String>;

/// Where a message went: the topic, or the dead-letter topic and why.
enum Target {
    Main,
    DeadLetter(String),
}

/// A delivery that completed.
struct Outcome {
    key: Key,
    seq: i64,
    target: Target,
    sent: Instant,
    result: Result<(), SinkError>,
}

/// Moves rows from a source to a sink.
pub struct Engine<S: Source, K: Sink> {
    source: S,
    sink: K,
    encoder: MessageEncoder,
    table: Table,
    options: EngineOptions,
    metrics: Arc<Metrics>,
    logger: Logger,

    keys: HashMap<Key, KeyQueue>,
    seqs: HashSet<i64>,
    ready: VecDeque<Key>,
    retries: BinaryHeap<Reverse<(Instant, Key)>>,
    inflight: JoinSet<Outcome>,
    /// Rows acknowledged and not yet marked: seq, batch, when acknowledged.
    acked: Vec<(i64, u64, Instant)>,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    /// The `seq` the next claim that is not full starts from: one past the last row
    /// claimed, [`i64::MIN`] before any (no `seq` is below it).
    cursor: i64,
    connected: bool,
    more: bool,
    woken: bool,
    full_due: bool,
    summary: Summary,
    /// The last acknowledgement or refusal by the destination, or the first send after it
    /// had nothing outstanding: where the stall clock of `once` starts.
    progress_at: Instant,
    /// The last transient error a delivery reported.
    last_sink_error: Option<String>,
}

impl<S: Source, K: Sink> Engine<S, K> {
    /// An engine between `source` and `sink`; `table` names the columns of dead-letter
    /// messages.
    pub fn new(
        source: S,
        sink: K,
        encoder: MessageEncoder,
        table: Table,
        options: EngineOptions,
        metrics: Arc<Metrics>,
        logger: Logger,
    ) -> Self {
        Engine {
            source,
            sink,
            encoder,
            table,
            options,
            metrics,
            logger,
            keys: HashMap::new(),
            seqs: HashSet::new(),
            ready: VecDeque::new(),
            retries: BinaryHeap::new(),
            inflight: JoinSet::new(),
            acked: Vec::new(),
            batches: HashMap::new(),
            next_batch: 0,
            cursor: i64::MIN,
            connected: false,
            more: false,
            woken: false,
            full_due: true,
            summary: Summary::default(),
            progress_at: Instant::now(),
            last_sink_error: None,
        }
    }

    fn window(&self) -> usize {
        let batch = self.options.config.batch_size as usize;
        (batch * 10).max(1000)
    }

    /// Runs until the source is drained (`once`), `shutdown` resolves, or an error that will
    /// not go away.
    ///
    /// # Errors
    /// An [`RelayError`] for a fatal database or destination error. Transient ones are
    /// retried: the database is reconnected with backoff, messages are sent again.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<Summary, RelayError> {
        let mut shutdown = pin!(shutdown);
        let wakeup = self.source.wakeup();
        let poll = self.options.config.poll_interval;
        let now = Instant::now();
        let mut next_poll = later(now, poll);
        let mut next_rebalance = now;
        let mut next_retention = now;
        let mut next_backlog = now;
        let mut reconnect_at = now;
        let mut reconnect_wait = RECONNECT_FIRST;
        // The first pending row and when it was first seen so, for the lag check.
        let mut head: (Option<i64>, Instant) = (None, now);
        // Why the age of that row is unknown, once logged.
        let mut age_unknown: Option<String> = None;
        RelayEvent::Started {
            source: &self.source.describe(),
            sink: &self.sink.describe(),
        }
        .emit(&self.logger);
        let stop = loop {
            // A shutdown request is seen here too, not only when the loop waits: with a
            // backlog there is always something to do.
            if ready_now(shutdown.as_mut()).await {
                break StopReason::Signal;
            }
            // Deliveries that completed.
            while let Some(done) = self.inflight.try_join_next() {
                if let Ok(outcome) = done {
                    self.on_delivery(outcome).await?;
                }
            }
            let now = Instant::now();
            // Connection.
            if !self.connected && now >= reconnect_at {
                match self.source.connect().await {
                    Ok(()) => {
                        if reconnect_wait > RECONNECT_FIRST {
                            RelayEvent::DatabaseReconnected.emit(&self.logger);
                        }
                        self.connected = true;
                        self.metrics.database(Ok(()));
                        reconnect_wait = RECONNECT_FIRST;
                        self.full_due = true;
                        next_rebalance = now;
                    }
                    Err(e) => {
                        self.db_error(&e)?;
                        reconnect_at = later(now, reconnect_wait);
                        reconnect_wait = (reconnect_wait * 2).min(RECONNECT_MAX);
                    }
                }
            }
            // Timers.
            if self.stall_deadline().is_some_and(|at| now >= at) {
                break StopReason::Stalled;
            }
            while let Some(Reverse((at, _))) = self.retries.peek() {
                if *at > now {
                    break;
                }
                if let Some(Reverse((_, key))) = self.retries.pop()
                    && let Some(queue) = self.keys.get_mut(&key)
                    && queue.state == State::Waiting
                {
                    queue.state = State::Idle;
                    self.ready.push_back(key);
                }
            }
            if now >= next_poll {
                self.full_due = true;
                next_poll = later(now, poll);
            }
            if self.connected && now >= next_rebalance {
                next_rebalance = later(now, REBALANCE_EVERY);
                match self.source.rebalance().await {
                    Ok((released, taken)) => {
                        if !released.is_empty() {
                            self.release(&released);
                        }
                        if taken {
                            self.full_due = true;
                        }
                    }
                    Err(e) => self.db_error(&e)?,
                }
            }
            if self.connected
                && now >= next_retention
                && let Some(age) = self.options.delete_published_after.filter(|a| !a.is_zero())
            {
                next_retention = later(now, RETENTION_EVERY);
                if let Err(e) = self.source.delete_published(age.min(MAX_DURATION)).await {
                    self.db_error(&e)?;
                }
            }
            if self.connected && self.options.track_backlog && now >= next_backlog {
                next_backlog = later(now, BACKLOG_EVERY);
                match self.source.status().await {
                    Ok(status) => {
                        if head.0 != status.oldest_pending_seq {
                            head = (status.oldest_pending_seq, now);
                        }
                        let stuck = head.0.map_or(0.0, |_| (now - head.1).as_secs_f64());
                        if status.oldest_pending_age_error != age_unknown {
                            age_unknown = status.oldest_pending_age_error.clone();
                            self.log_age_unknown(age_unknown.as_deref());
                        }
                        self.metrics.backlog(
                            status.pending,
                            status.oldest_pending_age_seconds.unwrap_or(0.0),
                            stuck,
                        );
                        self.metrics.failed_rows(status.failed);
                    }
                    Err(e) => self.db_error(&e)?,
                }
            }
            // Marks.
            if self.connected && self.mark_due(now) {
                self.mark().await?;
                if self.seqs.is_empty() {
                    // Drained: the gauges say so at once.
                    next_backlog = now;
                }
            }
            // Claims.
            let space = self.window().saturating_sub(self.seqs.len());
            if self.options.once && self.seqs.is_empty() && !self.more {
                self.full_due = true;
            }
            if self.connected && space > 0 && (self.full_due || self.more || self.woken) {
                let full = self.full_due;
                let limit = space.min(self.options.config.batch_size as usize);
                match self.claim(full, limit).await {
                    Ok(0) if full && self.options.once && self.seqs.is_empty() => {
                        break StopReason::Drained;
                    }
                    Ok(_) => {}
                    Err(e) => self.db_error(&e)?,
                }
            }
            // Sends.
            while let Some(key) = self.ready.pop_front() {
                self.dispatch(key).await?;
            }
            // Wait for something to do.
            let space = self.window().saturating_sub(self.seqs.len());
            let busy = !self.ready.is_empty()
                || (self.connected && self.mark_due(Instant::now()))
                || (self.connected && space > 0 && (self.full_due || self.more || self.woken))
                || (self.options.once && self.seqs.is_empty() && self.connected);
            if busy {
                continue;
            }
            let mut deadline = next_poll;
            if let Some(Reverse((at, _))) = self.retries.peek() {
                deadline = deadline.min(*at);
            }
            if let (true, Some(&(_, _, at))) = (self.connected, self.acked.first()) {
                deadline = deadline.min(later(at, MARK_WITHIN));
            }
            if let Some(at) = self.stall_deadline() {
                deadline = deadline.min(at);
            }
            if self.connected {
                deadline = deadline.min(next_rebalance);
                if self.options.track_backlog {
                    deadline = deadline.min(next_backlog);
                }
            } else {
                deadline = deadline.min(reconnect_at);
            }
            let notified = async {
                match &wakeup {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    if let Ok(outcome) = done {
                        self.on_delivery(outcome).await?;
                    }
                }
                () = notified => self.woken = true,
                () = tokio::time::sleep_until(deadline) => {}
                () = &mut shutdown => break StopReason::Signal,
            }
        };
        self.shut_down(stop).await?;
        if stop == StopReason::Stalled {
            return Err(RelayError::Stalled {
                destination: self.sink.describe(),
                waited: self.options.once_stall_timeout,
                abandoned: self.summary.abandoned,
                last_error: self.sink.last_error().or(self.last_sink_error.take()),
            });
        }
        Ok(self.summary)
    }

    /// `once`: when to give up on a destination that acknowledges nothing, while messages
    /// wait for it (in flight, or waiting to be sent again after a transient error).
    fn stall_deadline(&self) -> Option<Instant> {
        let waiting = !self.inflight.is_empty() || !self.retries.is_empty();
        (self.options.once && waiting)
            .then(|| later(self.progress_at, self.options.once_stall_timeout))
    }

    /// Claims up to `limit` rows: from the cursor, or (`full`) from the start of the table
    /// (every `seq`, zero and negative ones included) leaving out the rows in memory, which
    /// finds rows committed late and rows of buckets just taken.
    async fn claim(&mut self, full: bool, limit: usize) -> Result<usize, SourceError> {
        let from = if full { i64::MIN } else { self.cursor };
        let mut exclude: Vec<i64> = self.seqs.iter().copied().filter(|s| *s >= from).collect();
        exclude.sort_unstable();
        let options = ClaimOptions {
            from,
            limit,
            skip_blocked_keys: self.options.on_failure == OnFailure::Block,
        };
        let rows = self.source.claim(options, &exclude).await?;
        self.metrics.database(Ok(()));
        let n = rows.len();
        if full {
            self.full_due = false;
        }
        self.woken = false;
        self.more = n == limit;
        // One past the last row; a row at `i64::MAX` is left out by `exclude` while in memory.
        let next = rows.last().map(|r| r.seq.saturating_add(1));
        if let Some(next) = next {
            // A full claim that was cut short saw everything up to its last row only.
            self.cursor = if full && n == limit {
                next
            } else {
                self.cursor.max(next)
            };
        }
        if n == 0 {
            return Ok(0);
        }
        if let Some(seq) = repeated_seq(&rows, &self.seqs) {
            return Err(SourceError::fatal(format!(
                "{}: the claim returned seq {seq} for a second row, so the seq column is not \
                 unique and a mark would hit every row that shares it",
                self.source.describe()
            )));
        }
        let batch = self.next_batch;
        self.next_batch += 1;
        let mut added = 0;
        for row in rows {
            self.seqs.insert(row.seq);
            added += 1;
            let key = row.key.clone();
            let queue = self.keys.entry(key.clone()).or_insert_with(|| KeyQueue {
                entries: VecDeque::new(),
                state: State::Idle,
                bucket: row.bucket,
                orphan: false,
            });
            let idle_and_empty = queue.entries.is_empty() && queue.state == State::Idle;
            let entry = Entry {
                row,
                batch,
                dead_letter: None,
                transient: 0,
            };
            // A row committed late may have a lower seq than rows of its key already here:
            // it goes before those not yet sent.
            let position = queue
                .entries
                .iter()
                .enumerate()
                .skip(usize::from(queue.state != State::Idle))
                .find(|(_, e)| e.row.seq > entry.row.seq)
                .map_or(queue.entries.len(), |(i, _)| i);
            queue.entries.insert(position, entry);
            if idle_and_empty {
                self.ready.push_back(key);
            }
        }
        if added > 0 {
            self.batches.insert(
                batch,
                Batch {
                    total: added,
                    published: 0,
                    failed: 0,
                    remaining: added,
                },
            );
        }
        Ok(n)
    }

    /// Sends the head of a key, or fails it at once when it is not a valid event.
    async fn dispatch(&mut self, key: Key) -> Result<(), RelayError> {
        let Some(queue) = self.keys.get_mut(&key) else {
            return Ok(());
        };
        if queue.state != State::Idle {
            return Ok(());
        }
        let Some(entry) = queue.entries.front_mut() else {
            self.keys.remove(&key);
            return Ok(());
        };
        let seq = entry.row.seq;
        let (target, message) = match &entry.dead_letter {
            Some(error) => (
                Target::DeadLetter(error.clone()),
                dead_letter_message(&entry.row, &self.table, error),
            ),
            None => {
                let encoded = self.encoder.encode_row(&entry.row, &self.table);
                match encoded {
                    Ok(message) => (Target::Main, message),
                    Err(error) => {
                        // Not a valid outbox event: no retry can help.
                        if self.options.dead_letter {
                            let message = dead_letter_message(&entry.row, &self.table, &error);
                            entry.dead_letter = Some(error.clone());
                            (Target::DeadLetter(error), message)
                        } else {
                            return self.give_up(&key, &error).await;
                        }
                    }
                }
            }
        };
        queue.state = State::InFlight;
        let route = match target {
            Target::Main => Route::Main,
            Target::DeadLetter(_) => Route::DeadLetter,
        };
        let sent = Instant::now();
        if self.inflight.is_empty() && self.retries.is_empty() {
            // The destination had nothing to answer: the stall clock starts now.
            self.progress_at = sent;
        }
        let delivery = self.sink.send(route, &message);
        self.inflight.spawn(async move {
            let result = delivery.await;
            Outcome {
                key,
                seq,
                target,
                sent,
                result,
            }
        });
        Ok(())
    }

    async fn on_delivery(&mut self, outcome: Outcome) -> Result<(), RelayError> {
        let Outcome {
            key,
            seq,
            target,
            sent,
            result,
        } = outcome;
        let Some(queue) = self.keys.get_mut(&key) else {
            return Ok(());
        };
        let Some(entry) = queue.entries.front_mut() else {
            return Ok(());
        };
        if entry.row.seq != seq {
            return Ok(());
        }
        queue.state = State::Idle;
        match &result {
            // An answer, acknowledgement or refusal: the destination is moving.
            Ok(())
            | Err(SinkError {
                kind: SinkErrorKind::Permanent,
                ..
            }) => {
                self.progress_at = Instant::now();
            }
            Err(e) => self.last_sink_error = Some(e.message.clone()),
        }
        if queue.orphan && !(matches!(target, Target::Main) && result.is_ok()) {
            // Its bucket was given up (or its key is held): no retry, no dead letter here;
            // the row stays pending for its owner.
            if let Some(queue) = self.keys.remove(&key) {
                for e in queue.entries {
                    self.forget(e.row.seq, e.batch);
                }
            }
            return Ok(());
        }
        match (result, target) {
            (Ok(()), Target::Main) => {
                self.metrics.latency(sent.elapsed());
                let entry = queue.entries.pop_front();
                if let Some(entry) = entry {
                    if self.logger.events {
                        RelayEvent::Published {
                            ids: &RowIds::of(&entry.row),
                        }
                        .emit(&self.logger);
                    }
                    self.acked.push((seq, entry.batch, Instant::now()));
                }
                self.after_head(key);
                Ok(())
            }
            (Ok(()), Target::DeadLetter(error)) => {
                // On the dead-letter topic: now the row is failed.
                self.give_up(&key, &error).await
            }
            (Err(e), _) if e.kind == SinkErrorKind::Fatal => Err(RelayError::Sink(e)),
            (Err(e), _) if e.kind == SinkErrorKind::Transient => {
                entry.transient += 1;
                let wait = backoff(TRANSIENT_FIRST, entry.transient, TRANSIENT_MAX);
                self.metrics.retried();
                self.wait(key, wait);
                Ok(())
            }
            (Err(e), Target::DeadLetter(error)) => {
                let error = format!("{error}; the dead-letter topic refused it too: {e}");
                self.give_up(&key, &error).await
            }
            (Err(e), Target::Main) => {
                let attempts = entry.row.attempts.saturating_add(1);
                let max = i64::from(self.options.config.max_retry_count);
                if attempts > max {
                    if self.options.dead_letter {
                        entry.dead_letter = Some(e.message.clone());
                        self.ready.push_back(key);
                        return Ok(());
                    }
                    return self.give_up(&key, &e.message).await;
                }
                entry.row.attempts = attempts;
                let ids = RowIds::of(&entry.row);
                self.log_failure(&ids, &e.message, attempts, false);
                if let Err(db) = self.source.record_failure(seq, &e.message, false).await {
                    self.db_error(&db)?;
                    return Ok(());
                }
                self.metrics.retried();
                let wait = self
                    .options
                    .config
                    .backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
                self.wait(key, wait);
                Ok(())
            }
        }
    }

    fn wait(&mut self, key: Key, wait: Duration) {
        if let Some(queue) = self.keys.get_mut(&key) {
            queue.state = State::Waiting;
            self.retries
                .push(Reverse((later(Instant::now(), wait), key)));
        }
    }

    /// After the head of a key settled: the next row goes, or the key leaves memory.
    fn after_head(&mut self, key: Key) {
        let Some(queue) = self.keys.get_mut(&key) else {
            return;
        };
        if queue.orphan {
            let dropped: Vec<(i64, u64)> = queue
                .entries
                .drain(..)
                .map(|e| (e.row.seq, e.batch))
                .collect();
            self.keys.remove(&key);
            for (seq, batch) in dropped {
                self.forget(seq, batch);
            }
        } else if queue.entries.is_empty() {
            self.keys.remove(&key);
        } else {
            self.ready.push_back(key);
        }
    }

    /// Marks the head of a key failed, then goes on with the key or holds it.
    async fn give_up(&mut self, key: &Key, error: &str) -> Result<(), RelayError> {
        let Some(queue) = self.keys.get_mut(key) else {
            return Ok(());
        };
        let Some(entry) = queue.entries.front() else {
            return Ok(());
        };
        let (seq, batch) = (entry.row.seq, entry.batch);
        let attempts = entry.row.attempts.saturating_add(1);
        let ids = RowIds::of(&entry.row);
        if let Err(e) = self.source.record_failure(seq, error, true).await {
            // The row stays pending; it is claimed again after the reconnection.
            self.db_error(&e)?;
            return Ok(());
        }
        self.metrics.database(Ok(()));
        self.log_failure(&ids, error, attempts, true);
        self.metrics.failed();
        self.summary.failed += 1;
        if let Some(queue) = self.keys.get_mut(key) {
            queue.entries.pop_front();
            queue.state = State::Idle;
            if self.options.on_failure == OnFailure::Block {
                queue.orphan = true;
            }
        }
        self.seqs.remove(&seq);
        if let Some(b) = self.batches.get_mut(&batch) {
            b.failed += 1;
            b.remaining = b.remaining.saturating_sub(1);
        }
        self.finish_batch(batch);
        self.after_head(key.clone());
        Ok(())
    }

    /// Logs, once for each row, that the age of the oldest pending row is unknown (it is
    /// counted as 0); the row itself fails when it is claimed.
    fn log_age_unknown(&self, error: Option<&str>) {
        if let Some(error) = error {
            RelayEvent::BacklogAgeUnknown { error }.emit(&self.logger);
        }
    }

    fn log_failure(&self, ids: &RowIds, error: &str, attempts: i64, marked_failed: bool) {
        RelayEvent::PublishFailed {
            ids,
            error,
            attempts,
            marked_failed,
        }
        .emit(&self.logger);
    }

    /// Whether to mark now: a batch of rows is waiting, nothing else is under way, or the
    /// first acknowledgement waits for [`MARK_WITHIN`].
    fn mark_due(&self, now: Instant) -> bool {
        match self.acked.first() {
            None => false,
            Some(&(_, _, first)) => {
                self.acked.len() >= self.options.config.batch_size as usize
                    || (self.ready.is_empty() && self.inflight.is_empty())
                    || now >= later(first, MARK_WITHIN)
            }
        }
    }

    /// Marks the acknowledged rows published, in one statement.
    async fn mark(&mut self) -> Result<(), RelayError> {
        if let Err(e) = self.sink.flush() {
            return Err(RelayError::Sink(e));
        }
        let seqs: Vec<i64> = self.acked.iter().map(|(s, _, _)| *s).collect();
        let delete = self.options.delete_published_after == Some(Duration::ZERO);
        match self.source.mark_published(&seqs, delete).await {
            Ok(()) => {
                self.metrics.database(Ok(()));
                self.metrics.published(seqs.len() as u64);
                self.summary.published += seqs.len() as u64;
                let acked = std::mem::take(&mut self.acked);
                let mut touched = Vec::new();
                for (seq, batch, _) in acked {
                    self.seqs.remove(&seq);
                    if let Some(b) = self.batches.get_mut(&batch) {
                        b.published += 1;
                        b.remaining = b.remaining.saturating_sub(1);
                    }
                    if !touched.contains(&batch) {
                        touched.push(batch);
                    }
                }
                for batch in touched {
                    self.finish_batch(batch);
                }
                Ok(())
            }
            Err(e) => self.db_error(&e),
        }
    }

    /// A row left memory without being published or failed (given up bucket, lost
    /// connection, shutdown): it stays pending in the table.
    ///
    /// The cursor may be past it, so the next claim starts from the start of the table: a
    /// claim after the cursor would find later rows of its key without it, and send them
    /// first.
    fn forget(&mut self, seq: i64, batch: u64) {
        self.full_due = true;
        self.seqs.remove(&seq);
        if let Some(b) = self.batches.get_mut(&batch) {
            b.remaining = b.remaining.saturating_sub(1);
        }
        self.finish_batch(batch);
    }

    fn finish_batch(&mut self, batch: u64) {
        let Some(b) = self.batches.get(&batch) else {
            return;
        };
        if b.remaining > 0 {
            return;
        }
        let (published, failed, total) = (b.published, b.failed, b.total);
        self.batches.remove(&batch);
        RelayEvent::BatchComplete {
            published,
            failed,
            total,
        }
        .emit(&self.logger);
    }

    /// Drops from memory the rows not in flight, of every key (`buckets` = `None`) or of the
    /// keys in `buckets`; a key whose head is in flight keeps it until it settles.
    fn drop_unsent(&mut self, buckets: Option<&[i32]>) {
        let mut dropped = Vec::new();
        let mut emptied = Vec::new();
        for (key, queue) in &mut self.keys {
            if buckets.is_some_and(|b| !b.contains(&queue.bucket)) {
                continue;
            }
            let keep = usize::from(queue.state == State::InFlight);
            dropped.extend(
                queue
                    .entries
                    .drain(keep.min(queue.entries.len())..)
                    .map(|e| (e.row.seq, e.batch)),
            );
            if keep == 1 {
                queue.orphan = true;
            } else {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.keys.remove(&key);
        }
        for (seq, batch) in dropped {
            self.forget(seq, batch);
        }
        self.ready.retain(|k| self.keys.contains_key(k));
    }

    fn release(&mut self, buckets: &[i32]) {
        self.drop_unsent(Some(buckets));
    }

    /// A database error: fatal ones stop the relay; after a transient one the relay drops
    /// what it has not sent, reconnects and claims again from the start.
    fn db_error(&mut self, e: &SourceError) -> Result<(), RelayError> {
        self.metrics.database(Err(&e.message));
        if !e.transient {
            return Err(RelayError::Source(e.clone()));
        }
        if self.connected {
            RelayEvent::DatabaseUnavailable { error: &e.message }.emit(&self.logger);
        }
        self.connected = false;
        self.drop_unsent(None);
        self.retries.clear();
        self.cursor = i64::MIN;
        self.full_due = true;
        Ok(())
    }

    async fn shut_down(&mut self, reason: StopReason) -> Result<(), RelayError> {
        // Stop claiming; keep only what is in flight.
        self.drop_unsent(None);
        self.retries.clear();
        // A stalled destination gets no more time: what it answered already is taken.
        let patience = match reason {
            StopReason::Stalled => Duration::ZERO,
            StopReason::Signal | StopReason::Drained => self.options.shutdown_timeout,
        };
        let deadline = later(Instant::now(), patience);
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.join_next()).await {
                Ok(Some(Ok(outcome))) => {
                    match (&outcome.result, &outcome.target) {
                        (Ok(()), Target::Main) => self.on_delivery(outcome).await?,
                        _ => {
                            // No retry, no dead letter now: the row stays pending.
                            if let Some(queue) = self.keys.remove(&outcome.key) {
                                for e in queue.entries {
                                    self.forget(e.row.seq, e.batch);
                                }
                            }
                        }
                    }
                    self.drop_unsent(None);
                }
                Ok(Some(Err(_)) | None) => {}
                Err(_) => {
                    self.summary.abandoned = self.inflight.len() as u64;
                    self.inflight.abort_all();
                    break;
                }
            }
        }
        if !self.acked.is_empty() {
            if !self.connected {
                let _ = self.source.connect().await.map(|()| self.connected = true);
            }
            if self.connected {
                self.mark().await?;
            }
            self.summary.unmarked = self.acked.len() as u64;
        }
        RelayEvent::Stopped {
            reason,
            summary: &self.summary,
        }
        .emit(&self.logger);
        Ok(())
    }
}

/// Whether `future` has completed, polled once without waiting.
/// A seq that a claim returned twice, or that names a row already held: the claim leaves
/// out the rows held, so either means two rows share the seq.
fn repeated_seq(rows: &[Row], held: &HashSet<i64>) -> Option<i64> {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter()
        .map(|r| r.seq)
        .find(|seq| held.contains(seq) || !seen.insert(*seq))
}

async fn ready_now(mut future: Pin<&mut impl Future<Output = ()>>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx).is_ready())).await
}

/// `wait` after `at`, never past [`MAX_DURATION`] after it: every deadline of the engine is
/// computed here, so that no setting, however long, can overflow an instant.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait.min(MAX_DURATION)).unwrap_or(at)
}

fn backoff(first: Duration, n: u32, max: Duration) -> Duration {
    first
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(max)
}

/// The dead-letter message of a row: key = the row's partition key (none when it has none),
/// value = the row as JSON
/// ([`Row::to_dead_letter_json`]), headers `outbox-error` (why it failed), `outbox-seq` and
/// `outbox-table`.
fn dead_letter_message(row: &Row, table: &Table, error: &str) -> Message {
    Message {
        key: row.key.as_ref().map(|k| k.as_bytes().to_vec()),
        headers: vec![
            outbox_cloudevents::Header::new("outbox-error", error.to_owned()),
            outbox_cloudevents::Header::new("outbox-seq", row.seq.to_string()),
            outbox_cloudevents::Header::new("outbox-table", table.name().to_owned()),
        ],
        value: Some(row.to_dead_letter_json(table)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::RowFields;

    fn row(seq: i64) -> Row {
        Row {
            seq,
            key: Some("k".to_owned()),
            bucket: 0,
            attempts: 0,
            fields: RowFields::default(),
            unreadable: None,
        }
    }

    #[test]
    fn a_claim_that_returns_a_seq_twice_is_caught() {
        let held: HashSet<i64> = [3].into_iter().collect();
        assert_eq!(repeated_seq(&[row(1), row(2), row(4)], &held), None);
        assert_eq!(repeated_seq(&[row(1), row(2), row(2)], &held), Some(2));
        assert_eq!(repeated_seq(&[row(1), row(3)], &held), Some(3));
    }
}
