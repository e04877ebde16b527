//! What the borrowed paths cost, counted by a counting global allocator: a `MessageRef` from
//! a `Message` allocates nothing, and encoding an event with a 64 KiB payload in binary mode
//! does not copy the payload. One test, so that no other test allocates while it counts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::alloc::System;
use std::borrow::Cow;
use std::hint::black_box;

use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KIB_64: usize = 64 * 1024;

fn large_event() -> OutboxEvent<Payload> {
    let mut json = String::with_capacity(KIB_64 + 64);
    json.push_str(r#"{"blob":""#);
    while json.len() < KIB_64 {
        json.push_str("0123456789abcdef");
    }
    json.push_str(r#""}"#);
    OutboxEvent::new(
        "0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11".parse().unwrap(),
        "com.gridflow.blob.stored",
        "blob-1",
        "2024-05-01T10:00:00Z".parse().unwrap(),
        "blob-service",
        Payload::from_json(json).unwrap(),
    )
    .unwrap()
}

#[test]
fn borrowed_paths_do_not_copy() {
    let event = large_event();
    let payload = event.payload().as_json().unwrap();
    assert!(payload.len() > KIB_64);
    let encoder = Encoder::new(Mode::Binary);
    let owned = encoder.encode(&event).unwrap();

    // A view of a message: no allocation at all.
    let region = Region::new(GLOBAL);
    let view = black_box(owned.as_ref());
    let header = black_box(view.header("ce_id"));
    let stats = region.change();
    assert_eq!(header, Some(&b"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11"[..]));
    assert_eq!((stats.allocations, stats.bytes_allocated), (0, 0));

    // Encoding with a borrowed value: the value is the payload, where it lies.
    let region = Region::new(GLOBAL);
    let message = encoder.encode_borrowed(&event).unwrap();
    let stats = region.change();
    let value = message.value.as_deref().unwrap();
    assert!(matches!(message.value, Some(Cow::Borrowed(_))));
    assert_eq!(value.as_ptr(), payload.as_ptr());
    assert_eq!(value.len(), payload.len());
    assert!(
        stats.bytes_allocated < 4096,
        "{} bytes allocated to encode a {}-byte payload",
        stats.bytes_allocated,
        payload.len()
    );
    // And it is the message the owned path writes.
    assert_eq!(message.clone().into_owned(), owned);

    // Decoding it back borrows the value too.
    let region = Region::new(GLOBAL);
    let back = OutboxEvent::<Payload>::from_message(&message.as_ref(), &Profile::Canonical)
        .map(|e| e.payload().as_json().map(str::len));
    let decoded = region.change();
    assert_eq!(back.unwrap(), Some(payload.len()));
    // The decoded event owns one copy of the payload, and no more.
    assert!(
        decoded.bytes_allocated < payload.len() + 4096,
        "{} bytes allocated to decode",
        decoded.bytes_allocated
    );
}
