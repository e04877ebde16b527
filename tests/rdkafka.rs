//! A real Kafka round trip through Apache Kafka (`OUTBOX_CE_BROKERS`) or librdkafka's mock cluster (in process, real TCP): outbox
//! events and CloudEvents encoded in both content modes, produced with a `FutureProducer`,
//! consumed with a `BaseConsumer`, decoded, and compared with what was sent: key, every
//! header in order, value bytes, and the event.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(feature = "rdkafka")]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use cloudevents::{EventBuilder, EventBuilderV10};
use std::borrow::Cow;

use outbox_cloudevents::{
    Encoder, ExtensionValue, Header, Message, MessageRef, Mode, OutboxEvent, Payload, Profile,
    decode,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "outbox-events";
/// Upper bound on each wait for the cluster; a healthy run needs a fraction of it.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct InviteCreated {
    email: String,
    roles: Vec<String>,
}

/// What a message was made from, to compare the decoded event with.
#[derive(Debug)]
enum Sent {
    Outbox(OutboxEvent<Payload>),
    Typed(OutboxEvent<InviteCreated>),
    Cloud(cloudevents::Event),
}

struct Case {
    label: String,
    message: Message,
    sent: Sent,
}

fn outbox_events() -> Vec<OutboxEvent<Payload>> {
    let at = |s: &str| s.parse().unwrap();
    let id = |s: &str| s.parse().unwrap();
    vec![
        OutboxEvent::new(
            id("7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b01"),
            "com.gridflow.invite.created",
            "invite-42",
            at("2024-05-06T07:08:09.123456Z"),
            "user-service",
            Payload::from_json(r#"{"email":"ana@example.com","roles":["admin","viewer"]}"#)
                .unwrap(),
        )
        .unwrap()
        .with_correlation_id(id("5f0c6e2a-1b3d-4c5e-9f7a-8b9c0d1e2f30"))
        .with_causation_id(id("5f0c6e2a-1b3d-4c5e-9f7a-8b9c0d1e2f31"))
        .with_partition_key("org-7")
        .unwrap(),
        // Key order, number spelling and big integers must survive byte for byte.
        OutboxEvent::new(
            id("7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b02"),
            "com.gridflow.order.placed",
            "order-1001",
            at("2024-05-06T07:08:09Z"),
            "order-service",
            Payload::from_json(
                r#"{"zeta": 1, "big": 18446744073709551617, "tenth": 0.10, "alpha": "Zoë 🚀 東京"}"#,
            )
            .unwrap(),
        )
        .unwrap()
        .with_data_version("2.1.0")
        .unwrap()
        .with_subject("orders/1001")
        .unwrap()
        .with_dataschema("https://schemas.gridflow.example/order-placed/2.1.0")
        .unwrap()
        .with_extension("tenant", ExtensionValue::String("tenant-東京".into()))
        .unwrap(),
        // Bytes under a non-JSON content type.
        OutboxEvent::new(
            id("7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b03"),
            "com.gridflow.avatar.uploaded",
            "user-9",
            at("2024-05-06T07:08:09.5Z"),
            "media-service",
            Payload::Binary(vec![0x89, b'P', b'N', b'G', 0x00, 0xff, 0xfe]),
        )
        .unwrap()
        .with_content_type(Some("application/octet-stream".into()))
        .unwrap(),
    ]
}

fn typed_event() -> OutboxEvent<InviteCreated> {
    OutboxEvent::new(
        "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b04".parse().unwrap(),
        "com.gridflow.invite.created",
        "invite-43",
        "2024-05-06T07:08:10.000000001Z".parse().unwrap(),
        "user-service",
        InviteCreated {
            email: "zoë@example.com".into(),
            roles: vec!["admin".into()],
        },
    )
    .unwrap()
}

/// An event without data: a tombstone in binary mode, sent on purpose.
fn cache_invalidated() -> OutboxEvent<Payload> {
    OutboxEvent::new(
        "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b05".parse().unwrap(),
        "com.gridflow.cache.invalidated",
        "users",
        "2024-05-06T07:08:11Z".parse().unwrap(),
        "cache-service",
        Payload::Absent,
    )
    .unwrap()
}

/// String extensions only: binary mode carries every attribute as a string, so these come
/// back equal in both modes.
fn cloud_events() -> Vec<cloudevents::Event> {
    let json = EventBuilderV10::new()
        .id("c0ffee00-0000-4000-8000-000000000001")
        .source("https://billing.gridflow.example/invoices")
        .ty("com.gridflow.invoice.issued")
        .subject("invoice-77")
        .time(
            "2024-05-06T07:08:09.250Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap(),
        )
        .extension("partitionkey", "customer-3")
        .extension("region", "eu-west-1")
        .data(
            "application/json",
            serde_json::json!({"invoice": "invoice-77", "lines": [{"sku": "A-1", "qty": 2}]}),
        )
        .build()
        .unwrap();
    let binary = EventBuilderV10::new()
        .id("c0ffee00-0000-4000-8000-000000000002")
        .source("urn:gridflow:scanner")
        .ty("com.gridflow.document.scanned")
        .data("application/pdf", vec![b'%', b'P', b'D', b'F', 0x00, 0x9f])
        .build()
        .unwrap();
    vec![json, binary]
}

/// Headers a tracing layer or a bridge adds: before and after the binding's own, one with a
/// null value and one with an empty value.
fn with_foreign_headers(mut message: Message) -> Message {
    message
        .headers
        .insert(0, Header::new("x-request-id", "req-\u{e9}-0001"));
    message.headers.push(Header::new(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ));
    message.headers.push(Header {
        name: Cow::Borrowed(b"x-null"),
        value: None,
    });
    message.headers.push(Header::new("x-empty", ""));
    message
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for mode in [Mode::Binary, Mode::Structured] {
        let encoder = Encoder::new(mode);
        for (i, event) in outbox_events().into_iter().enumerate() {
            let message = encoder.encode(&event).unwrap();
            cases.push(Case {
                label: format!("outbox {i} {mode}"),
                message,
                sent: Sent::Outbox(event),
            });
        }
        let event = outbox_events().remove(0);
        cases.push(Case {
            label: format!("outbox with foreign headers {mode}"),
            message: with_foreign_headers(encoder.encode(&event).unwrap()),
            sent: Sent::Outbox(event),
        });
        let event = typed_event();
        cases.push(Case {
            label: format!("typed outbox without a key {mode}"),
            message: encoder.clone().key_mapper(|_| None).encode(&event).unwrap(),
            sent: Sent::Typed(event),
        });
        let event = cache_invalidated();
        cases.push(Case {
            label: format!("outbox without data {mode}"),
            message: encoder
                .clone()
                .allow_tombstones(true)
                .encode(&event)
                .unwrap(),
            sent: Sent::Outbox(event),
        });
        for (i, event) in cloud_events().into_iter().enumerate() {
            let message = encoder.encode_cloudevent(&event).unwrap();
            cases.push(Case {
                label: format!("cloudevent {i} {mode}"),
                message,
                sent: Sent::Cloud(event),
            });
        }
    }
    cases
}

/// Polls `future` on this thread until it is ready or `WAIT` has passed.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no delivery report within {WAIT:?}");
        std::thread::park_timeout(left);
    }
}

/// Checks the decoded event against what the message was made from.
fn check_event(case: &Case, view: &MessageRef<'_>, how: &str) {
    let label = format!("{} ({how})", case.label);
    match &case.sent {
        Sent::Outbox(event) => {
            let back = OutboxEvent::<Payload>::from_message(view, &Profile::Canonical)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(&back, event, "{label}");
        }
        Sent::Typed(event) => {
            let back = OutboxEvent::<InviteCreated>::from_message(view, &Profile::Canonical)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(&back, event, "{label}");
        }
        Sent::Cloud(event) => {
            let wire = decode(view).unwrap_or_else(|e| panic!("{label}: {e}"));
            let back =
                cloudevents::Event::try_from(wire).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(&back, event, "{label}");
        }
    }
}

/// Headers that are not the binding's own stay on the message, where they were, and never
/// become attributes: decoding gives the same event as without them.
fn check_foreign_headers(consumed: &Message, label: &str) {
    const FOREIGN: [&str; 4] = ["x-request-id", "traceparent", "x-null", "x-empty"];
    let names: Vec<&str> = consumed
        .headers
        .iter()
        .map(|h| h.name_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&FOREIGN[0]), "{label}");
    assert_eq!(&names[names.len() - 3..], &FOREIGN[1..], "{label}");
    let null = consumed
        .headers
        .iter()
        .find(|h| *h.name == *b"x-null")
        .unwrap();
    assert_eq!(null.value, None, "{label}: a null header value stays null");
    assert_eq!(consumed.header("x-empty"), Some(&b""[..]), "{label}");

    let event = decode(&consumed.as_ref()).unwrap();
    // `traceparent` is a valid extension name (the Distributed Tracing extension), but it
    // was not sent as `ce_traceparent`.
    assert!(event.extension("traceparent").is_none(), "{label}");
    let mut bare = consumed.clone();
    bare.headers
        .retain(|h| !FOREIGN.contains(&h.name_str().unwrap()));
    assert_eq!(bare.headers.len(), consumed.headers.len() - FOREIGN.len());
    assert_eq!(decode(&bare.as_ref()).unwrap(), event, "{label}");
}

#[test]
fn broker_round_trip_in_both_modes() {
    // Apache Kafka when `OUTBOX_CE_BROKERS` names it (a fresh topic, created on first write
    // with one partition), else librdkafka's mock cluster in this process.
    let (_cluster, brokers, topic) = match std::env::var("OUTBOX_CE_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let topic = format!("{TOPIC}-{}-{nanos}", std::process::id());
            (None, brokers, topic)
        }
        _ => {
            let cluster = MockCluster::new(1).expect("mock cluster");
            cluster.create_topic(TOPIC, 1, 1).expect("topic");
            let brokers = cluster.bootstrap_servers();
            (Some(cluster), brokers, TOPIC.to_owned())
        }
    };

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let cases = cases();
    // One partition: Kafka keeps the order, and each delivery report names the offset.
    let mut by_offset = Vec::with_capacity(cases.len());
    for (index, case) in cases.iter().enumerate() {
        let future = producer
            .send_result(case.message.to_record(&topic).unwrap())
            .map_err(|(e, _)| e)
            .expect("enqueue");
        let delivery = block_on(future)
            .expect("delivery report")
            .unwrap_or_else(|(e, _)| panic!("{}: not delivered: {e}", case.label));
        assert_eq!(delivery.partition, 0);
        by_offset.push((delivery.offset, index));
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "outbox-cloudevents-rdkafka-test")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).expect("assign");

    let deadline = Instant::now() + WAIT;
    let mut seen = 0;
    while seen < cases.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "consumed {seen} of {} messages within {WAIT:?}",
            cases.len()
        );
        let Some(consumed) = consumer.poll(left.min(Duration::from_millis(500))) else {
            continue;
        };
        let consumed = consumed.expect("consume");
        let index = by_offset
            .iter()
            .find(|(offset, _)| *offset == consumed.offset())
            .map(|(_, index)| *index)
            .unwrap_or_else(|| panic!("a message at offset {} was never sent", consumed.offset()));
        assert_eq!(index, seen, "messages out of order");
        let case = &cases[index];
        seen += 1;

        // Borrowed view, owned copy, and a view of the detached message: all equal to what
        // was produced, key, every header in order, null values and value bytes included.
        let borrowed = MessageRef::from(&consumed);
        let owned = Message::from(&consumed);
        let detached = consumed.detach();
        assert_eq!(owned, case.message, "{}", case.label);
        assert_eq!(borrowed, case.message.as_ref(), "{}", case.label);
        assert_eq!(MessageRef::from(&detached), borrowed, "{}", case.label);
        assert_eq!(Message::from(&detached), owned, "{}", case.label);

        check_event(case, &borrowed, "borrowed");
        check_event(case, &owned.as_ref(), "owned");
        check_event(case, &MessageRef::from(&detached), "detached");
        assert_eq!(
            decode(&borrowed).unwrap(),
            decode(&case.message.as_ref()).unwrap(),
            "{}",
            case.label
        );
        if case.label.contains("foreign") {
            check_foreign_headers(&owned, &case.label);
        }
    }
}

#[test]
fn records_keep_nulls_and_order() {
    // The conversion alone, without a cluster: what `to_record` hands to librdkafka.
    let message = with_foreign_headers(
        Encoder::new(Mode::Binary)
            .encode(&outbox_events().remove(0))
            .unwrap(),
    );
    let record = message.to_record(TOPIC).unwrap();
    assert_eq!(record.key, message.key.as_deref());
    assert_eq!(record.payload, message.value.as_deref());
    let headers = record.headers.expect("headers");
    use rdkafka::message::Headers as _;
    let got: Vec<(&str, Option<&[u8]>)> = headers.iter().map(|h| (h.key, h.value)).collect();
    let want: Vec<(&str, Option<&[u8]>)> = message
        .headers
        .iter()
        .map(|h| (h.name_str().unwrap(), h.value.as_deref()))
        .collect();
    assert_eq!(got, want);
}
