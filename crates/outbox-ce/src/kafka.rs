//! `produce` and `consume`: the conversions against a Kafka broker, through rdkafka.

use std::collections::VecDeque;
use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{Encoder, Message, MessageRef, OutboxEvent, Payload};
use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{DeliveryFuture, FutureProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::runtime::Runtime;

use crate::Fatal;
use crate::args::{Options, Target};
use crate::lines::{self, Line, Stream};

/// Messages sent and not yet acknowledged; bounds memory however long the input.
const MAX_IN_FLIGHT: usize = 10_000;

/// Outbox events -> a Kafka topic, keyed by partition key.
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
    stream.each_line(&mut input, |stream, number, line| {
        let message = match OutboxEvent::<Payload>::from_message_json(line)
            .and_then(|event| encoder.encode(&event))
        {
            Ok(message) => message,
            Err(e) => {
                stream.fail(number, e);
                return Ok(());
            }
        };
        let mut record = match message.to_record(&options.topic) {
            Ok(record) => record,
            Err(e) => {
                stream.fail(number, e);
                return Ok(());
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
                        Some(oldest) => settle(&runtime, stream, oldest),
                        None => producer.poll(Duration::from_millis(100)),
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
            settle(&runtime, stream, oldest);
        }
        Ok(())
    })?;
    for delivery in in_flight {
        settle(&runtime, &mut stream, delivery);
    }
    Ok(stream.finish()?)
}

/// Waits for one message's delivery report and counts it.
fn settle(runtime: &Runtime, stream: &mut Stream, (number, delivery): (Line, DeliveryFuture)) {
    match runtime.block_on(delivery) {
        Ok(Ok(_)) => stream.count_out(),
        Ok(Err((e, _))) => stream.fail(number, e),
        Err(_) => stream.fail(number, "the producer stopped before the broker answered"),
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
    for partition in partitions(consumer.client(), &options.topic, options.timeout)? {
        assignment.add_partition_offset(&options.topic, partition, Offset::Beginning)?;
    }
    // Assigning every partition reads the whole topic without a group join.
    consumer.assign(&assignment)?;

    let mut stream = Stream::new("consume", options.quiet);
    let mut last_message = Instant::now();
    while options.max.is_none_or(|max| stream.taken() < max) {
        let mut polled = consumer.poll(Duration::ZERO);
        if polled.is_none() {
            stream.flush()?;
            let idle = last_message.elapsed();
            if idle >= options.timeout {
                break;
            }
            polled = consumer.poll(options.timeout - idle);
        }
        match polled {
            None => {}
            Some(Err(e)) => stream.warn(e),
            Some(Ok(message)) => {
                last_message = Instant::now();
                stream.take();
                match render(&message, options) {
                    Ok(json) => stream.write(&json)?,
                    Err(e) => stream.fail(Place(&message), e),
                }
                stream.progress();
            }
        }
    }
    Ok(stream.finish()?)
}

/// One consumed message as `--to` asks.
fn render(message: &BorrowedMessage<'_>, options: &Options) -> outbox_cloudevents::Result<Vec<u8>> {
    let view = MessageRef::from(message);
    match options.to {
        Target::Outbox => {
            OutboxEvent::<Payload>::from_message(&view, &options.profile)?.to_message_json()
        }
        Target::CloudEvent => Ok(outbox_cloudevents::decode(&view)?.to_json()),
        Target::Message => Ok(Record {
            message: Message::from(message),
            topic: Some(message.topic().to_owned()),
            partition: Some(message.partition()),
            offset: Some(message.offset()),
            timestamp: message.timestamp().to_millis(),
        }
        .to_json()),
    }
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
