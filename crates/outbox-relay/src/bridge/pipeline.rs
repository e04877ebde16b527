//! The bridge's delivery engine: one loop that owns ordering, acknowledgements, commits,
//! rebalances and shutdown between the input consumer and the output producer.
//!
//! It runs on a thread of its own with librdkafka's synchronous clients, so that the
//! consumer's rebalance callback, which librdkafka runs inside `poll`, can wait for the
//! acknowledgements of the partitions it gives up and commit them before they move.

use base64::Engine as _;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use outbox_cloudevents::{Header, Message, MessageRef};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::convert::Converter;
use super::metrics::BridgeMetrics;
use super::resume::{Resume, Tick, Verdict};
use super::{BridgeError, BridgeOptions, BridgeSummary};
use crate::kafka_log::{self, KafkaLog};

/// How often acknowledged offsets are committed (at-least-once).
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// How long a transaction collects messages before it commits (`--exactly-once`).
const TRANSACTION_EVERY: Duration = Duration::from_millis(100);
/// The most messages a transaction holds.
const TRANSACTION_MAX: u64 = 10_000;
/// Messages consumed but not yet acknowledged, at most.
const WINDOW: usize = 20_000;
/// How long a rebalance or a shutdown waits for acknowledgements in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The timeout of the transactional calls.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Which topic a produced message went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Output,
    DeadLetter,
}

/// What a delivery report refers to.
#[derive(Debug, Clone, Copy)]
struct Tag {
    partition: i32,
    offset: i64,
    route: Route,
}

/// The producer's context: delivery reports go to a queue the loop drains; librdkafka's log
/// goes to the bridge's.
struct Deliveries {
    reports: Mutex<Vec<(Tag, Result<(), KafkaError>)>>,
    log: Arc<KafkaLog>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Tag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<Tag>) {
        let result = result.as_ref().map(drop).map_err(|(e, _)| e.clone());
        if let Ok(mut reports) = self.reports.lock() {
            reports.push((*tag, result));
        }
    }
}

/// One consumed message whose output is not yet acknowledged.
struct Entry {
    offset: i64,
    acked: bool,
    /// The input message, kept (with a dead-letter topic) to dead-letter it if the output
    /// topic refuses its conversion.
    original: Option<Message>,
}

/// An assigned input partition.
#[derive(Default)]
struct Partition {
    /// Messages in flight, in offset order.
    entries: VecDeque<Entry>,
    /// The next offset to read (the last consumed plus one); `None` before the first.
    next: Option<i64>,
    /// Every message before this offset is acknowledged: what may be committed.
    done: Option<i64>,
    /// The offset last committed.
    committed: Option<i64>,
    /// A message here could not be bridged: nothing is read or committed past it.
    blocked: Option<i64>,
    /// Messages before this offset were bridged and committed: they are dropped.
    floor: Option<i64>,
    /// The check that reading resumed at the committed offset (see [`super::resume`]).
    resume: Option<Resume>,
}

/// Why the loop stops.
enum Stop {
    /// Shutdown signal or idle time: finish what is in flight, commit, succeed.
    Done,
    /// An error: finish what is in flight, commit what may be, fail with it.
    Failed(BridgeError),
}

struct State {
    partitions: HashMap<i32, Partition>,
    stop: Option<Stop>,
    /// The last message or assignment.
    last_activity: Instant,
    /// The group was joined (an assignment came, maybe empty).
    joined: bool,
    /// `--exactly-once`: the open transaction, its start, and what it holds.
    transaction: Option<Instant>,
    transaction_produced: u64,
    transaction_dead_lettered: u64,
    transaction_messages: u64,
    /// `--exactly-once`: input offsets the output topic refused, by partition and offset,
    /// with the error, so that the retry after the abort dead-letters them.
    refused: HashMap<(i32, i64), String>,
    summary: BridgeSummary,
}

/// What the consumer's callbacks and the loop share.
struct Core {
    options: BridgeOptions,
    converter: Converter,
    producer: BaseProducer<Deliveries>,
    metrics: Arc<BridgeMetrics>,
    state: Mutex<State>,
    /// The first offset and the end of each input partition, as the broker last reported
    /// them in its Fetch answers (librdkafka's statistics).
    watermarks: Mutex<HashMap<i32, (i64, i64)>>,
}

/// The consumer's context: rebalances and statistics.
struct Group {
    core: Arc<Core>,
}

impl ClientContext for Group {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.core.options.from_topic) else {
            return;
        };
        let watermarks: HashMap<i32, (i64, i64)> = topic
            .partitions
            .values()
            .filter(|p| p.partition >= 0)
            .map(|p| {
                let high = if self.core.options.exactly_once {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                (p.partition, (p.lo_offset, high))
            })
            .collect();
        if let Ok(mut current) = self.core.watermarks.lock() {
            *current = watermarks;
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.core
            .producer
            .context()
            .log
            .log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.core
            .metrics
            .client_error(Some(format!("{error}: {reason}")));
        self.core.producer.context().log.error(&error, reason);
    }
}

impl ConsumerContext for Group {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions: Vec<i32> = list
                    .elements_for_topic(&self.core.options.from_topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                self.core.revoke(consumer, &partitions);
            }
            Rebalance::Assign(list) => {
                let partitions: Vec<i32> = list
                    .elements_for_topic(&self.core.options.from_topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                // Where each partition resumes: its committed offset, checked against the
                // first message (see `resume`).
                let committed =
                    consumer.committed_offsets((*list).clone(), Duration::from_secs(10));
                let resumes: HashMap<i32, i64> = match &committed {
                    Ok(committed) => committed
                        .elements_for_topic(&self.core.options.from_topic)
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some((e.partition(), o)),
                            _ => None,
                        })
                        .collect(),
                    Err(e) => {
                        self.core.log(
                            "warning",
                            "outbox.bridge_commit_failed",
                            &format!("reading the committed offsets of the assigned partitions: {e}; where reading resumes is not checked"),
                            serde_json::json!({"error": e.to_string()}),
                        );
                        HashMap::new()
                    }
                };
                let mut state = self.core.lock();
                let now = Instant::now();
                for p in &partitions {
                    // A partition assigned starts afresh, whatever was read of it before.
                    state.partitions.insert(
                        *p,
                        Partition {
                            floor: resumes.get(p).copied(),
                            resume: resumes.get(p).map(|from| Resume::new(*from, now)),
                            ..Partition::default()
                        },
                    );
                }
                state.last_activity = Instant::now();
                state.joined = true;
                self.core.update_lag(&state);
                drop(state);
                self.core.log(
                    "info",
                    "outbox.bridge_assigned",
                    &format!(
                        "assigned partitions {partitions:?} of {}",
                        self.core.options.from_topic
                    ),
                    serde_json::json!({"partitions": partitions}),
                );
            }
            Rebalance::Error(e) => {
                self.core.log(
                    "error",
                    "outbox.bridge_rebalance_failed",
                    &format!("rebalance: {e}"),
                    serde_json::json!({"error": e.to_string()}),
                );
            }
        }
    }
}

type GroupConsumer = BaseConsumer<Group>;

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere, which already ends the run; the state is
        // still the last one written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log(&self, level: &str, event: &str, text: &str, fields: serde_json::Value) {
        // The relay's formats, `outbox-ce bridge:` in text.
        self.options
            .logger
            .log_as("bridge", level, event, text, fields);
    }

    /// Produces `message` to `topic` (the output topic or, for [`Route::DeadLetter`], the
    /// dead-letter topic), waiting while librdkafka's queue is full.
    fn produce(
        &self,
        route: Route,
        topic: &str,
        message: &Message,
        partition: i32,
        offset: i64,
    ) -> Result<(), KafkaError> {
        let tag = Box::new(Tag {
            partition,
            offset,
            route,
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<Tag>> =
            BaseRecord::with_opaque_to(topic, tag).headers(message.to_owned_headers().map_err(
                // Every header name was checked to be UTF-8 by the converter or the dead letter.
                |_| KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord),
            )?);
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &message.value {
            record = record.payload(value.as_slice());
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Applies the delivery reports received so far.
    fn settle(&self, state: &mut State) {
        let reports = match self.producer.context().reports.lock() {
            Ok(mut reports) => std::mem::take(&mut *reports),
            Err(_) => return,
        };
        for (tag, result) in reports {
            self.settle_one(state, tag, result);
        }
    }

    fn settle_one(&self, state: &mut State, tag: Tag, result: Result<(), KafkaError>) {
        let exactly_once = self.options.exactly_once;
        if exactly_once {
            match result {
                Ok(()) if tag.route == Route::Output => state.transaction_produced += 1,
                Ok(()) => state.transaction_dead_lettered += 1,
                Err(e) if tag.route == Route::DeadLetter => {
                    let error = refusal(tag.route, &e);
                    self.fail(state, tag.partition, tag.offset, error);
                }
                Err(e) => {
                    // The transaction cannot commit; the retry after the abort sets this
                    // message aside.
                    state
                        .refused
                        .insert((tag.partition, tag.offset), refusal(tag.route, &e));
                }
            }
            return;
        }
        let Some(partition) = state.partitions.get_mut(&tag.partition) else {
            return;
        };
        let Some(index) = partition
            .entries
            .binary_search_by_key(&tag.offset, |e| e.offset)
            .ok()
        else {
            return;
        };
        let Some(entry) = partition.entries.get_mut(index) else {
            return;
        };
        match result {
            Ok(()) => {
                entry.acked = true;
                match tag.route {
                    Route::Output => {
                        state.summary.produced += 1;
                        self.metrics.produced(1);
                    }
                    Route::DeadLetter => {
                        state.summary.dead_lettered += 1;
                        self.metrics.dead_lettered(1);
                    }
                }
            }
            Err(e) => {
                let error = refusal(tag.route, &e);
                let original = entry.original.take();
                match (
                    tag.route,
                    original,
                    self.options.dead_letter_topic.as_deref(),
                ) {
                    (Route::Output, Some(original), Some(topic)) => {
                        let message =
                            self.dead_letter(&original, &error, tag.partition, tag.offset);
                        if let Err(e) = self.produce(
                            Route::DeadLetter,
                            topic,
                            &message,
                            tag.partition,
                            tag.offset,
                        ) {
                            self.fail(
                                state,
                                tag.partition,
                                tag.offset,
                                refusal(Route::DeadLetter, &e),
                            );
                        } else {
                            self.log_dead_letter(tag.partition, tag.offset, &error);
                        }
                    }
                    _ => self.fail(state, tag.partition, tag.offset, error),
                }
            }
        }
        if let Some(partition) = state.partitions.get_mut(&tag.partition) {
            while partition.entries.front().is_some_and(|e| e.acked) {
                if let Some(entry) = partition.entries.pop_front() {
                    partition.done = Some(entry.offset + 1);
                }
            }
        }
    }

    /// Stops the run at a message that cannot be bridged: nothing past it is committed.
    fn fail(&self, state: &mut State, partition: i32, offset: i64, error: String) {
        if let Some(p) = state.partitions.get_mut(&partition) {
            p.blocked = Some(p.blocked.map_or(offset, |b| b.min(offset)));
        }
        if !matches!(state.stop, Some(Stop::Failed(_))) {
            state.stop = Some(Stop::Failed(BridgeError::Message {
                topic: self.options.from_topic.clone(),
                partition,
                offset,
                error,
            }));
        }
    }

    /// The dead-letter message for `original`: its key, headers and value, plus headers
    /// naming the error and where the message was read.
    ///
    /// Kafka clients send header names as strings, so a name that is not UTF-8 travels as
    /// `outbox-header-name-base64-<the name in base64>`, its value kept.
    fn dead_letter(&self, original: &Message, error: &str, partition: i32, offset: i64) -> Message {
        let mut message = original.clone();
        for header in &mut message.headers {
            if header.name_str().is_none() {
                let name = format!(
                    "outbox-header-name-base64-{}",
                    base64::engine::general_purpose::STANDARD.encode(&header.name)
                );
                header.name = name.into_bytes().into();
            }
        }
        message.headers.extend([
            Header::new("outbox-error", error.as_bytes()),
            Header::new("outbox-source-topic", self.options.from_topic.as_bytes()),
            Header::new("outbox-source-partition", partition.to_string()),
            Header::new("outbox-source-offset", offset.to_string()),
        ]);
        message
    }

    fn log_dead_letter(&self, partition: i32, offset: i64, error: &str) {
        self.log(
            "error",
            "outbox.publish_failed",
            &format!(
                "{} partition {partition} offset {offset} -> dead-letter topic: {error}",
                self.options.from_topic
            ),
            serde_json::json!({
                "topic": self.options.from_topic,
                "partition": partition,
                "offset": offset,
                "error": error,
                "dead_letter_topic": self.options.dead_letter_topic,
            }),
        );
    }

    /// Whether a consumed message is to be handled: not while the check of where its
    /// partition's reading resumed is under way, nor before the committed offset. Reads the
    /// partition again from further back when the check calls for it.
    fn admit(
        &self,
        consumer: &GroupConsumer,
        state: &mut State,
        partition: i32,
        offset: i64,
    ) -> bool {
        let Some(p) = state.partitions.get_mut(&partition) else {
            // Not assigned (a message of a partition already revoked): its new owner reads it.
            return false;
        };
        if p.next.is_some_and(|next| offset < next) {
            // Read already since the assignment: a step back of the resume check reads
            // again what came after it.
            return false;
        }
        let verdict = match &mut p.resume {
            Some(resume) => {
                let from = resume.from();
                let (low, _) = self.watermarks(partition);
                let (verdict, over) = resume.message(offset, low, Instant::now());
                if over {
                    p.resume = None;
                }
                if verdict == Verdict::Handle && offset < from {
                    // The client reset its position: what it reads now is all to bridge.
                    p.floor = None;
                }
                if let Verdict::Seek(to) = verdict {
                    self.log(
                        "info",
                        "outbox.bridge_resume_checked",
                        &format!(
                            "{} partition {partition}: resumed at offset {from}, the broker answered from offset {offset}: reading again from offset {to}",
                            self.options.from_topic
                        ),
                        serde_json::json!({"partition": partition, "resumed_at": from, "answered_from": offset, "reading_from": to}),
                    );
                }
                verdict
            }
            None => Verdict::Handle,
        };
        match verdict {
            Verdict::Handle => p.floor.is_none_or(|f| offset >= f),
            Verdict::Drop => false,
            Verdict::Seek(to) => {
                self.seek(consumer, state, partition, to);
                false
            }
        }
    }

    /// Reads `partition` again from `offset`, for the check of where it resumed.
    fn seek(&self, consumer: &GroupConsumer, state: &mut State, partition: i32, offset: i64) {
        if let Err(e) = consumer.seek(
            &self.options.from_topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(10),
        ) {
            if let Some(resume) = state
                .partitions
                .get_mut(&partition)
                .and_then(|p| p.resume.as_mut())
            {
                resume.seek_failed();
            }
            self.log(
                "warning",
                "outbox.bridge_consumer_error",
                &format!(
                    "{} partition {partition}: reading again from offset {offset}: {e} (tried again)",
                    self.options.from_topic
                ),
                serde_json::json!({"partition": partition, "offset": offset, "error": e.to_string()}),
            );
        }
    }

    /// The checks of where reading resumed, for partitions that stay silent.
    fn check_silent(&self, consumer: &GroupConsumer, state: &mut State) {
        let now = Instant::now();
        let mut seeks = Vec::new();
        let ids: Vec<i32> = state
            .partitions
            .iter()
            .filter(|(_, p)| p.resume.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let (low, high) = self.watermarks(id);
            let Some(p) = state.partitions.get_mut(&id) else {
                continue;
            };
            let Some(resume) = &mut p.resume else {
                continue;
            };
            match resume.silence(Some(high).filter(|h| *h >= 0), low, now) {
                Tick::Wait => {}
                Tick::Over => p.resume = None,
                Tick::Seek(to) => {
                    self.log(
                        "info",
                        "outbox.bridge_resume_checked",
                        &format!(
                            "{} partition {id}: resumed at offset {}, nothing came though the partition ends at {high}: reading again from offset {to}",
                            self.options.from_topic,
                            resume.from()
                        ),
                        serde_json::json!({"partition": id, "resumed_at": resume.from(), "high_watermark": high, "reading_from": to}),
                    );
                    seeks.push((id, to));
                }
            }
        }
        for (id, to) in seeks {
            self.seek(consumer, state, id, to);
        }
    }

    /// Whether a partition may hold messages not read yet while the check of where its
    /// reading resumed is under way.
    fn resume_pending(&self, state: &State) -> bool {
        state.partitions.iter().any(|(id, p)| {
            p.resume.as_ref().is_some_and(|r| {
                let (_, high) = self.watermarks(*id);
                r.pending(Some(high).filter(|h| *h >= 0))
            })
        })
    }

    /// The first offset (0 when not known) and the end (-1 when not known) of an input
    /// partition, as the broker last reported them.
    fn watermarks(&self, partition: i32) -> (i64, i64) {
        let (low, high) = self
            .watermarks
            .lock()
            .ok()
            .and_then(|w| w.get(&partition).copied())
            .unwrap_or((0, -1));
        (low.max(0), high)
    }

    /// Handles one consumed message.
    fn handle(&self, state: &mut State, message: &BorrowedMessage<'_>) {
        let (partition, offset) = (message.partition(), message.offset());
        state.last_activity = Instant::now();
        // `admit` let only messages of assigned partitions through.
        let Some(p) = state.partitions.get_mut(&partition) else {
            return;
        };
        if p.blocked.is_some_and(|b| offset >= b) {
            return;
        }
        p.next = Some(offset + 1);
        if p.done.is_none() {
            p.done = Some(offset);
        }
        state.summary.consumed += 1;
        self.metrics.consumed(1);
        // Header names are read as bytes (the library reads them through librdkafka, not
        // rdkafka's `&str` accessor), so a name that is not UTF-8 is the converter's error.
        let view = MessageRef::from(message);
        let dead_letter_topic = self.options.dead_letter_topic.as_deref();
        let original = || view.to_owned_message();
        let refused = if self.options.exactly_once {
            state.refused.remove(&(partition, offset))
        } else {
            None
        };
        let converted = match refused {
            Some(error) => Err(error),
            None => self.converter.convert(&view).map_err(|e| e.to_string()),
        };
        let (route, topic, out, kept) = match (converted, dead_letter_topic) {
            (Ok(out), _) => {
                let kept =
                    (dead_letter_topic.is_some() && !self.options.exactly_once).then(original);
                (Route::Output, self.options.to_topic.as_str(), out, kept)
            }
            (Err(error), Some(topic)) => {
                self.log_dead_letter(partition, offset, &error);
                (
                    Route::DeadLetter,
                    topic,
                    self.dead_letter(&original(), &error, partition, offset),
                    None,
                )
            }
            (Err(error), None) => {
                self.fail(state, partition, offset, error);
                return;
            }
        };
        if self.options.exactly_once {
            state.transaction_messages += 1;
        } else if let Some(p) = state.partitions.get_mut(&partition) {
            p.entries.push_back(Entry {
                offset,
                acked: false,
                original: kept,
            });
        }
        if let Err(e) = self.produce(route, topic, &out, partition, offset) {
            // Refused before it was queued (too large for the producer, unknown topic).
            if self.options.exactly_once {
                state
                    .refused
                    .insert((partition, offset), refusal(route, &e));
                state
                    .stop
                    .get_or_insert(Stop::Failed(BridgeError::Kafka(format!(
                        "producing {} partition {partition} offset {offset}: {e}",
                        self.options.from_topic
                    ))));
            } else {
                self.settle_one(
                    state,
                    Tag {
                        partition,
                        offset,
                        route,
                    },
                    Err(e),
                );
            }
        }
    }

    /// Commits what is acknowledged (at-least-once) in `partitions` (all when `None`).
    fn commit(
        &self,
        consumer: &GroupConsumer,
        state: &mut State,
        partitions: Option<&[i32]>,
        mode: CommitMode,
    ) {
        let mut list = TopicPartitionList::new();
        let mut updates = Vec::new();
        for (id, p) in &state.partitions {
            if partitions.is_some_and(|ps| !ps.contains(id)) {
                continue;
            }
            // A synchronous commit (on a revoke, at the end) sends every position again: an
            // asynchronous one before it may have failed after it was counted as sent.
            if let Some(done) = p.done
                && (matches!(mode, CommitMode::Sync) || p.committed.is_none_or(|c| done > c))
                && list
                    .add_partition_offset(&self.options.from_topic, *id, Offset::Offset(done))
                    .is_ok()
            {
                updates.push((*id, done));
            }
        }
        if updates.is_empty() {
            return;
        }
        match consumer.commit(&list, mode) {
            Ok(()) => {
                self.metrics.committed();
                for (id, done) in updates {
                    if let Some(p) = state.partitions.get_mut(&id) {
                        p.committed = Some(done);
                    }
                }
            }
            Err(e) => self.log(
                "warning",
                "outbox.bridge_commit_failed",
                &format!("commit: {e}"),
                serde_json::json!({"error": e.to_string()}),
            ),
        }
    }

    /// Waits for the acknowledgements in flight (at most `timeout`).
    fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.producer.poll(Duration::from_millis(10));
            {
                let mut state = self.lock();
                self.settle(&mut state);
                if state.partitions.values().all(|p| p.entries.is_empty())
                    && self.producer.in_flight_count() == 0
                {
                    return;
                }
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Before partitions move to another member: their acknowledged messages are committed
    /// (or the open transaction is), so that the next owner starts after them.
    fn revoke(&self, consumer: &GroupConsumer, partitions: &[i32]) {
        if self.options.exactly_once {
            let mut state = self.lock();
            if state.transaction.is_some() {
                self.end_transaction(consumer, &mut state);
            }
        } else {
            self.drain(DRAIN_TIMEOUT);
            let mut state = self.lock();
            self.commit(consumer, &mut state, Some(partitions), CommitMode::Sync);
        }
        let mut state = self.lock();
        for p in partitions {
            state.partitions.remove(p);
        }
        state.refused.retain(|(p, _), _| !partitions.contains(p));
        // A rebalance is under way: not idle until the next assignment.
        state.joined = false;
        self.update_lag(&state);
        drop(state);
        self.log(
            "info",
            "outbox.bridge_revoked",
            &format!(
                "revoked partitions {partitions:?} of {}",
                self.options.from_topic
            ),
            serde_json::json!({"partitions": partitions}),
        );
    }

    /// Commits the open transaction with the consumed offsets; aborts it and rewinds when
    /// it cannot commit.
    fn end_transaction(&self, consumer: &GroupConsumer, state: &mut State) {
        let Some(_started) = state.transaction.take() else {
            return;
        };
        let mut list = TopicPartitionList::new();
        let mut positions = Vec::new();
        for (id, p) in &state.partitions {
            let next = match (p.next, p.blocked) {
                (Some(next), Some(blocked)) => Some(next.min(blocked)),
                (next, blocked) => next.or(blocked),
            };
            if let Some(next) = next
                && p.committed.is_none_or(|c| next > c)
                && list
                    .add_partition_offset(&self.options.from_topic, *id, Offset::Offset(next))
                    .is_ok()
            {
                positions.push((*id, next));
            }
        }
        let result = consumer
            .group_metadata()
            .ok_or(KafkaError::MessageConsumption(RDKafkaErrorCode::State))
            .and_then(|group| {
                if positions.is_empty() {
                    Ok(())
                } else {
                    self.producer
                        .send_offsets_to_transaction(&list, &group, TRANSACTION_TIMEOUT)
                }
            })
            .and_then(|()| self.producer.commit_transaction(TRANSACTION_TIMEOUT));
        match result {
            Ok(()) => {
                self.metrics.transaction(true);
                self.metrics.committed();
                self.metrics.produced(state.transaction_produced);
                self.metrics.dead_lettered(state.transaction_dead_lettered);
                state.summary.produced += state.transaction_produced;
                state.summary.dead_lettered += state.transaction_dead_lettered;
                for (id, next) in &positions {
                    if let Some(p) = state.partitions.get_mut(id) {
                        p.committed = Some(*next);
                    }
                }
                if self.options.logger.events {
                    self.log(
                        "info",
                        "outbox.bridge_transaction_committed",
                        &format!("transaction committed: {} messages, offsets {positions:?}", state.transaction_messages),
                        serde_json::json!({
                            "messages": state.transaction_messages,
                            "offsets": positions.iter().map(|(p, o)| serde_json::json!([p, o])).collect::<Vec<_>>(),
                        }),
                    );
                }
                // The same offsets as a plain commit, once the transaction is committed and
                // before the next begins: redundant where the broker stores transactional
                // offset commits, and what keeps the group's offsets where it does not.
                if !positions.is_empty() && consumer.commit(&list, CommitMode::Sync).is_err() {
                    self.log(
                        "warning",
                        "outbox.bridge_commit_failed",
                        "the plain commit after the transaction failed",
                        serde_json::json!({}),
                    );
                }
            }
            Err(e) => {
                let abortable = matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort());
                let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
                self.metrics.transaction(false);
                self.log(
                    "error",
                    "outbox.bridge_transaction_aborted",
                    &format!("transaction not committed: {e}"),
                    serde_json::json!({"error": e.to_string()}),
                );
                if fatal
                    || !abortable
                    || self
                        .producer
                        .abort_transaction(TRANSACTION_TIMEOUT)
                        .is_err()
                {
                    state
                        .stop
                        .get_or_insert(Stop::Failed(BridgeError::Kafka(format!(
                            "the transaction could not commit or abort: {e}"
                        ))));
                }
                // The refusals reported by the flush, then read again from the last
                // committed offsets.
                self.producer.poll(Duration::ZERO);
                self.settle(state);
                let mut lost = Vec::new();
                for (id, p) in state.partitions.iter_mut() {
                    if let Some(committed) = p.committed.or(p.done) {
                        p.next = None;
                        p.blocked = None;
                        p.floor = Some(committed);
                        p.resume = Some(Resume::new(committed, Instant::now()));
                        if let Err(e) = consumer.seek(
                            &self.options.from_topic,
                            *id,
                            Offset::Offset(committed),
                            Duration::from_secs(10),
                        ) {
                            lost.push(format!("partition {id} to offset {committed}: {e}"));
                        }
                    }
                }
                if !lost.is_empty() {
                    // Going on would skip what the aborted transaction held.
                    state.stop = Some(Stop::Failed(BridgeError::Kafka(format!(
                        "after an aborted transaction, could not rewind {}",
                        lost.join(", ")
                    ))));
                }
            }
        }
        state.transaction_produced = 0;
        state.transaction_dead_lettered = 0;
        state.transaction_messages = 0;
    }

    fn update_lag(&self, state: &State) {
        let lag: BTreeMap<i32, u64> = state
            .partitions
            .iter()
            .map(|(id, p)| {
                let (_, high) = self.watermarks(*id);
                let position = p.committed.or(p.next).unwrap_or(0);
                (*id, u64::try_from(high - position).unwrap_or(0))
            })
            .collect();
        self.metrics.lag(lag);
    }
}

fn refusal(route: Route, e: &KafkaError) -> String {
    match route {
        Route::Output => format!("the output topic refused the converted message: {e}"),
        Route::DeadLetter => format!("the dead-letter topic refused the message: {e}"),
    }
}

pub(super) fn client_config(options: &BridgeOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set_log_level(kafka_log::LOG_LEVEL);
    config
}

/// Runs the bridge until `stop` is set, the input stays idle for `idle_exit`, or an error.
pub(crate) fn run(
    options: BridgeOptions,
    metrics: Arc<BridgeMetrics>,
    stop: Arc<AtomicBool>,
    log: Arc<KafkaLog>,
) -> Result<BridgeSummary, BridgeError> {
    let mut producer_config = client_config(&options);
    producer_config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // Java's partitioner, and one partition for every message without a key, so that
        // where a message lands never depends on chance.
        .set("partitioner", "murmur2")
        .set("client.id", "outbox-ce-bridge");
    if options.exactly_once {
        let id = format!(
            "outbox-ce-bridge-{}-{}-{}-{}",
            options.group,
            options.from_topic,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        producer_config
            .set("transactional.id", id)
            .set("transaction.timeout.ms", "60000")
            .set("message.timeout.ms", "60000");
    } else {
        // Transient errors are retried without end; what fails is a refusal of the message.
        producer_config.set("message.timeout.ms", "0");
    }
    for (key, value) in &options.producer_properties {
        producer_config.set(key, value);
    }
    let producer: BaseProducer<Deliveries> = producer_config
        .create_with_context(Deliveries {
            reports: Mutex::new(Vec::new()),
            log,
        })
        .map_err(|e| BridgeError::Kafka(format!("Kafka producer: {e}")))?;
    if options.exactly_once {
        producer
            .init_transactions(TRANSACTION_TIMEOUT)
            .map_err(|e| BridgeError::Kafka(format!("Kafka transactions: {e}")))?;
    }
    let core = Arc::new(Core {
        converter: Converter::new(options.input, options.mode, options.profile.clone()),
        producer,
        metrics: Arc::clone(&metrics),
        state: Mutex::new(State {
            partitions: HashMap::new(),
            stop: None,
            last_activity: Instant::now(),
            joined: false,
            transaction: None,
            transaction_produced: 0,
            transaction_dead_lettered: 0,
            transaction_messages: 0,
            refused: HashMap::new(),
            summary: BridgeSummary::default(),
        }),
        watermarks: Mutex::new(HashMap::new()),
        options,
    });
    let options = &core.options;
    let mut consumer_config = client_config(options);
    consumer_config
        .set("group.id", &options.group)
        .set("client.id", "outbox-ce-bridge")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", "1000");
    for (key, value) in &options.consumer_properties {
        consumer_config.set(key, value);
    }
    let consumer: GroupConsumer = consumer_config
        .create_with_context(Group {
            core: Arc::clone(&core),
        })
        .map_err(|e| BridgeError::Kafka(format!("Kafka consumer: {e}")))?;
    consumer
        .subscribe(&[&options.from_topic])
        .map_err(|e| BridgeError::Kafka(format!("subscribing to {}: {e}", options.from_topic)))?;
    core.log(
        "info",
        "outbox.bridge_started",
        &format!(
            "bridging {} -> {} in group {} ({}, {}{})",
            options.from_topic,
            options.to_topic,
            options.group,
            options.mode,
            if options.exactly_once {
                "exactly once"
            } else {
                "at least once"
            },
            options
                .dead_letter_topic
                .as_deref()
                .map(|d| format!(", dead letters to {d}"))
                .unwrap_or_default()
        ),
        serde_json::json!({
            "from_topic": options.from_topic,
            "to_topic": options.to_topic,
            "group": options.group,
            "mode": options.mode.to_string(),
            "exactly_once": options.exactly_once,
        }),
    );
    let mut last_commit = Instant::now();
    let mut last_lag = Instant::now();
    let exactly_once = options.exactly_once;
    loop {
        // Read one message unless the window is full or the run is stopping.
        let (stopping, in_flight) = {
            let state = core.lock();
            let in_flight: usize = state.partitions.values().map(|p| p.entries.len()).sum();
            (state.stop.is_some(), in_flight)
        };
        if stop.load(Ordering::Relaxed) || stopping {
            break;
        }
        let polled = if in_flight < WINDOW {
            consumer.poll(Duration::from_millis(if exactly_once { 10 } else { 5 }))
        } else {
            core.producer.poll(Duration::from_millis(10));
            None
        };
        let mut state = core.lock();
        match polled {
            Some(Ok(message)) => {
                if !core.admit(&consumer, &mut state, message.partition(), message.offset()) {
                    state.last_activity = Instant::now();
                } else if exactly_once
                    && state.transaction.is_none()
                    && let Err(e) = core.producer.begin_transaction()
                {
                    // A transaction is begun for a message to handle, not for one dropped.
                    state
                        .stop
                        .get_or_insert(Stop::Failed(BridgeError::Kafka(format!(
                            "beginning a transaction: {e}"
                        ))));
                    continue;
                } else {
                    if exactly_once && state.transaction.is_none() {
                        state.transaction = Some(Instant::now());
                    }
                    core.handle(&mut state, &message);
                }
            }
            Some(Err(e)) => {
                metrics.client_error(Some(e.to_string()));
                drop(state);
                // Rate-limited with librdkafka's log: `poll` returns the same error at
                // every call while the brokers are down.
                let error = e.to_string();
                if let Some(suppressed) = core.producer.context().log.admit(&error) {
                    core.log(
                        "warning",
                        "outbox.bridge_consumer_error",
                        &format!("Kafka consumer: {error} ({suppressed} repeats left out)"),
                        serde_json::json!({"error": error, "suppressed": suppressed}),
                    );
                }
                continue;
            }
            None => {}
        }
        core.producer.poll(Duration::ZERO);
        core.settle(&mut state);
        let now = Instant::now();
        if exactly_once {
            if let Some(started) = state.transaction
                && (now - started >= TRANSACTION_EVERY
                    || state.transaction_messages >= TRANSACTION_MAX)
            {
                core.end_transaction(&consumer, &mut state);
            }
        } else if now - last_commit >= COMMIT_EVERY {
            last_commit = now;
            core.commit(&consumer, &mut state, None, CommitMode::Async);
        }
        if now - last_lag >= Duration::from_secs(1) {
            last_lag = now;
            core.update_lag(&state);
        }
        if in_flight < WINDOW {
            core.check_silent(&consumer, &mut state);
        }
        if let Some(idle) = options.idle_exit {
            let quiet = state.partitions.values().all(|p| p.entries.is_empty())
                && state.transaction.is_none()
                && !core.resume_pending(&state);
            if quiet && state.joined && now - state.last_activity >= idle {
                state.stop.get_or_insert(Stop::Done);
            }
        }
    }
    // Finish what is in flight, commit, leave the group.
    if exactly_once {
        let mut state = core.lock();
        if state.transaction.is_some() {
            core.end_transaction(&consumer, &mut state);
        }
    } else {
        core.drain(DRAIN_TIMEOUT);
        let mut state = core.lock();
        core.commit(&consumer, &mut state, None, CommitMode::Sync);
    }
    drop(consumer);
    let mut state = core.lock();
    core.settle(&mut state);
    let summary = state.summary;
    let unacknowledged: usize = state.partitions.values().map(|p| p.entries.len()).sum();
    core.log(
        "info",
        "outbox.batch_complete",
        &format!(
            "stopped: {} consumed, {} produced, {} dead-lettered, {unacknowledged} unacknowledged{}",
            summary.consumed,
            summary.produced,
            summary.dead_lettered,
            if unacknowledged > 0 {
                " (read again by the next run)"
            } else {
                ""
            }
        ),
        serde_json::json!({
            "consumed": summary.consumed,
            "produced": summary.produced,
            "dead_lettered": summary.dead_lettered,
            "unacknowledged": unacknowledged,
        }),
    );
    match state.stop.take() {
        Some(Stop::Failed(e)) => Err(e),
        _ => Ok(summary),
    }
}
