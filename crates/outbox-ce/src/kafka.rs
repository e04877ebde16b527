//! `produce` and `consume`: the conversions against a Kafka broker, through rdkafka.

use std::collections::VecDeque;
use std::fmt;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{Encoder, Message, MessageRef, OutboxEvent, Payload};
use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{DeliveryFuture, FutureProducer, Producer, PurgeConfig};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::runtime::Runtime;

use crate::Fatal;
use crate::args::{Options, Target};
use crate::lines::{self, Line, Stream};

/// Messages sent and not yet acknowledged; bounds memory however long the input.
const MAX_IN_FLIGHT: usize = 10_000;

/// Outbox events -> a Kafka topic, keyed by partition key.
///
/// A message that times out means the broker took nothing for `--timeout`: reading stops,
/// what is still queued is purged and reported, and the run fails (exit status 2) instead
/// of waiting out the timeout for every message in flight.
pub fn produce(options: &Options) -> Result<ExitCode, Fatal> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("message.timeout.ms", millis(options.timeout))
        .create()?;
    partitions(producer.client(), &options.topic, options.timeout)?;
    let encoder = Encoder::new(options.mode).profile(options.profile.clone());
    // Delivery reports arrive on rdkafka's own thread; this runtime only waits for them.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut in_flight: VecDeque<(Line, DeliveryFuture)> = VecDeque::new();
    let mut input = lines::open(options.input.as_deref())?;
    let mut stream = Stream::new("produce", options.quiet);
    let mut gone = false;
    let last = stream.each_line(
        &mut input,
        options.max_line_bytes,
        |stream, number, line| {
            let message = match OutboxEvent::<Payload>::from_message_json(line)
                .and_then(|event| encoder.encode(&event))
            {
                Ok(message) => message,
                Err(e) => {
                    stream.fail(number, e);
                    return Ok(ControlFlow::Continue(()));
                }
            };
            let mut record = match message.to_record(&options.topic) {
                Ok(record) => record,
                Err(e) => {
                    stream.fail(number, e);
                    return Ok(ControlFlow::Continue(()));
                }
            };
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        in_flight.push_back((number, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        match in_flight.pop_front() {
                            Some(oldest) => gone |= settle(&runtime, stream, oldest),
                            None => producer.poll(Duration::from_millis(100)),
                        }
                        if gone {
                            stream
                                .fail(number, "not delivered: the run stopped before it was sent");
                            break;
                        }
                    }
                    Err((e, _)) => {
                        stream.fail(number, e);
                        break;
                    }
                }
            }
            if in_flight.len() >= MAX_IN_FLIGHT
                && let Some(oldest) = in_flight.pop_front()
            {
                gone |= settle(&runtime, stream, oldest);
            }
            Ok(if gone {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        },
    )?;
    if gone {
        // Every message still queued or on its way is reported now, not one timeout later.
        producer.purge(PurgeConfig::default().queue().inflight());
    }
    for delivery in in_flight {
        settle(&runtime, &mut stream, delivery);
    }
    let status = stream.finish()?;
    if gone {
        return Err(format!(
            "the broker took no message for {} s (--timeout), so the run stopped after line {}: \
             the lines after it were not read, and every line read and not delivered is \
             reported above",
            options.timeout.as_secs_f64(),
            last.0
        )
        .into());
    }
    Ok(status)
}

/// Waits for one message's delivery report and counts it; `true` when the message timed
/// out, which means the broker took nothing for the whole timeout.
fn settle(
    runtime: &Runtime,
    stream: &mut Stream,
    (number, delivery): (Line, DeliveryFuture),
) -> bool {
    let error = match runtime.block_on(delivery) {
        Ok(Ok(_)) => {
            stream.count_out();
            return false;
        }
        Ok(Err((e, _))) => e,
        Err(_) => {
            stream.fail(
                number,
                "the producer stopped before the broker answered; the message may still have been delivered",
            );
            return false;
        }
    };
    match error.rdkafka_error_code() {
        // librdkafka times out a message that was sent and not acknowledged as well as one
        // never sent: the broker may have written it.
        Some(RDKafkaErrorCode::MessageTimedOut) => {
            stream.fail(
                number,
                format_args!("not acknowledged within --timeout, and it may still have been delivered: the broker may have written it before the time ran out ({error})"),
            );
            true
        }
        Some(RDKafkaErrorCode::PurgeInflight) => {
            stream.fail(
                number,
                format_args!("not acknowledged when the run stopped, and it may still have been delivered: it had been sent ({error})"),
            );
            false
        }
        Some(RDKafkaErrorCode::PurgeQueue) => {
            stream.fail(number, "not delivered: the run stopped before it was sent");
            false
        }
        _ => {
            stream.fail(number, error);
            false
        }
    }
}

/// A Kafka topic -> outbox events, CloudEvents or Kafka messages.
pub fn consume(options: &Options) -> Result<ExitCode, Fatal> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        // Offsets are never committed: the group only has to be one nobody else uses.
        .set("group.id", fresh_group_id())
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    // Where the run means to get to: --max messages, or else the end of every partition as
    // it is now.
    let mut ends = Vec::new();
    for partition in partitions(consumer.client(), &options.topic, options.timeout)? {
        assignment.add_partition_offset(&options.topic, partition, Offset::Beginning)?;
        if options.max.is_none() {
            let (low, high) = consumer
                .fetch_watermarks(&options.topic, partition, options.timeout)
                .map_err(|e| {
                    format!(
                        "cannot get the end of partition {partition} of topic `{}`: {e}",
                        options.topic
                    )
                })?;
            ends.push(End {
                partition,
                next: low,
                end: high,
            });
        }
    }
    // Assigning every partition reads the whole topic without a group join.
    consumer.assign(&assignment)?;

    let mut stream = Stream::new("consume", options.quiet);
    let mut last_message = Instant::now();
    let mut last_error = None;
    let mut stalled = false;
    loop {
        let done = match options.max {
            Some(max) => stream.taken() >= max,
            None => ends.iter().all(|e| e.next >= e.end),
        };
        if done {
            break;
        }
        let mut polled = consumer.poll(Duration::ZERO);
        if polled.is_none() {
            stream.flush()?;
            let idle = last_message.elapsed();
            if idle >= options.timeout {
                // librdkafka's positions step over what is no message (transaction markers,
                // compacted offsets): an end reached that way is reached.
                if let Ok(positions) = consumer.position() {
                    for end in &mut ends {
                        let position = positions.find_partition(&options.topic, end.partition);
                        if let Some(Offset::Offset(next)) = position.map(|p| p.offset()) {
                            end.next = end.next.max(next);
                        }
                    }
                }
                stalled = options.max.is_some() || ends.iter().any(|e| e.next < e.end);
                break;
            }
            polled = consumer.poll(options.timeout - idle);
        }
        match polled {
            None => {}
            Some(Err(e)) => {
                stream.warn(&e);
                last_error = Some(e);
            }
            Some(Ok(message)) => {
                last_message = Instant::now();
                stream.take();
                if let Some(end) = ends.iter_mut().find(|e| e.partition == message.partition()) {
                    end.next = end.next.max(message.offset().saturating_add(1));
                }
                match render(&message, options) {
                    Ok(json) => stream.write(&json)?,
                    Err(e) => stream.fail(Place(&message), e),
                }
                stream.progress();
            }
        }
    }
    let taken = stream.taken();
    let status = stream.finish()?;
    if !stalled {
        return Ok(status);
    }
    let broker = last_error.map_or(String::new(), |e| format!("; the last broker error: {e}"));
    let secs = options.timeout.as_secs_f64();
    Err(match options.max {
        Some(max) => format!(
            "read {taken} of the {max} messages asked for (--max): none came for {secs} s{broker}"
        ),
        None => {
            let behind: Vec<String> = ends
                .iter()
                .filter(|e| e.next < e.end)
                .map(|e| format!("partition {} at offset {} of {}", e.partition, e.next, e.end))
                .collect();
            format!(
                "stopped before the end of the topic as it was at the start, as no message came for {secs} s: {}{broker}",
                behind.join(", ")
            )
        }
    }
    .into())
}

/// How far a partition has been read, and where it ended when the run started.
struct End {
    partition: i32,
    /// The offset after the last message read.
    next: i64,
    /// The high watermark at the start.
    end: i64,
}

/// Why one consumed message cannot be written; the run goes on.
type Problem = Box<dyn std::error::Error>;

/// One consumed message as `--to` asks.
fn render(message: &BorrowedMessage<'_>, options: &Options) -> Result<Vec<u8>, Problem> {
    let view = MessageRef::from(message);
    match options.to {
        Target::Outbox => {
            Ok(OutboxEvent::<Payload>::from_message(&view, &options.profile)?.to_message_json()?)
        }
        Target::CloudEvent => Ok(outbox_cloudevents::decode(&view)?.to_json()),
        Target::Message => {
            // The interchange JSON writes header names as text: one that is not UTF-8 cannot
            // be written as it is, and is not written changed.
            if let Some(bad) = view
                .headers
                .iter()
                .find(|h| std::str::from_utf8(h.name).is_err())
            {
                let name: String = bad
                    .name
                    .iter()
                    .take(80)
                    .flat_map(|b| b.escape_ascii())
                    .map(char::from)
                    .collect();
                return Err(format!("header `{name}`: header name is not UTF-8").into());
            }
            Ok(message_record(message))
        }
    }
}

/// The interchange JSON of a consumed message, with where it was.
fn message_record(message: &BorrowedMessage<'_>) -> Vec<u8> {
    Record {
        message: Message::from(message),
        topic: Some(message.topic().to_owned()),
        partition: Some(message.partition()),
        offset: Some(message.offset()),
        timestamp: message.timestamp().to_millis(),
    }
    .to_json()
}

/// Where a consumed message is, for error messages.
struct Place<'a>(&'a BorrowedMessage<'a>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition {} offset {}",
            self.0.partition(),
            self.0.offset()
        )
    }
}

/// The partitions of `topic`; an error when the broker cannot be reached in time or does
/// not have the topic.
fn partitions<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, Fatal> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("cannot get the metadata of topic `{topic}`: {e}"))?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        Some(t) if t.error().is_some() => {
            let code = t.error().map(RDKafkaErrorCode::from);
            Err(format!(
                "topic `{topic}`: {}",
                code.map(|c| c.to_string()).unwrap_or_default()
            )
            .into())
        }
        _ => Err(format!("topic `{topic}` does not exist").into()),
    }
}

fn fresh_group_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("outbox-ce-{}-{nanos}", std::process::id())
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}
