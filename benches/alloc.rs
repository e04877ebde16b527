//! Allocations per conversion, counted by a counting global allocator: this crate against the
//! same baselines as the `codec` benchmark. Counts, not times, so the numbers are exact and the
//! same on every machine.
//!
//! `cargo bench --bench alloc` prints the table and fails when decoding a borrowed message
//! allocates more than the returned event owns.
//!
//! `cargo bench --bench alloc -- profile WORKLOAD N` runs one workload N times and nothing
//! else, for a profiler (`valgrind --tool=callgrind`, `perf record`); `-- list` names them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::alloc::System;
use std::hint::black_box;
use std::process::ExitCode;

use common::{
    large, plain_binary_bytes, plain_decode_binary, plain_decode_structured, plain_structured,
    realistic, sdk_decode_binary, sdk_decode_structured, sdk_encode_binary, sdk_encode_structured,
    validate_value,
};
use outbox_cloudevents::{Encoder, Message, Mode, OutboxEvent, Payload, Profile, decode};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The inputs of every workload, built once.
struct Inputs {
    event: OutboxEvent<Payload>,
    binary: Message,
    structured: Message,
    /// The binary message's header values and value as one JSON object (W3 plain baseline).
    plain_binary: Vec<u8>,
}

impl Inputs {
    fn new(event: OutboxEvent<Payload>) -> Self {
        let binary = Encoder::new(Mode::Binary).encode(&event).expect("encodes");
        let structured = Encoder::new(Mode::Structured)
            .encode(&event)
            .expect("encodes");
        Inputs {
            plain_binary: plain_binary_bytes(&binary),
            event,
            binary,
            structured,
        }
    }
}

type Run = fn(&Inputs, &Encoders);

struct Encoders {
    binary: Encoder,
    structured: Encoder,
}

/// The workloads: (name, what it does, the run).
const WORKLOADS: [(&str, &str, Run); 15] = [
    ("w1-ours", "outbox -> binary message", |i, e| {
        black_box(e.binary.encode(&i.event).expect("encodes"));
    }),
    ("w1-sdk", "EventBuilderV10 + BinarySerializer", |i, _| {
        black_box(sdk_encode_binary(&i.event));
    }),
    ("w2-ours", "outbox -> structured message", |i, e| {
        black_box(e.structured.encode(&i.event).expect("encodes"));
    }),
    (
        "w2-sdk",
        "EventBuilderV10 + serde_json::to_vec(&Event)",
        |i, _| {
            black_box(sdk_encode_structured(&i.event));
        },
    ),
    ("w2-plain", "serde_json::to_vec(&plain struct)", |i, _| {
        black_box(plain_structured(&i.event));
    }),
    ("w3-ours", "binary message -> outbox", |i, _| {
        black_box(
            OutboxEvent::<Payload>::from_message(&i.binary.as_ref(), &Profile::Canonical)
                .expect("decodes"),
        );
    }),
    ("w3-sdk", "BinaryDeserializer -> Event -> outbox", |i, _| {
        black_box(sdk_decode_binary(&i.binary));
    }),
    (
        "w3-plain",
        "serde_json -> plain struct (header values and value)",
        |i, _| {
            black_box(plain_decode_binary(&i.plain_binary));
        },
    ),
    (
        "w3-validate",
        "serde_json RawValue validation of the value",
        |i, _| {
            black_box(validate_value(&i.binary));
        },
    ),
    ("w4-ours", "structured message -> outbox", |i, _| {
        black_box(
            OutboxEvent::<Payload>::from_message(&i.structured.as_ref(), &Profile::Canonical)
                .expect("decodes"),
        );
    }),
    (
        "w4-sdk",
        "serde_json::from_slice::<Event> -> outbox",
        |i, _| {
            black_box(sdk_decode_structured(&i.structured));
        },
    ),
    (
        "w4-plain",
        "serde_json -> plain struct (the value)",
        |i, _| {
            black_box(plain_decode_structured(&i.structured));
        },
    ),
    (
        "decode-binary",
        "Message::as_ref + decode -> WireEvent (binary)",
        |i, _| {
            black_box(decode(&i.binary.as_ref()).expect("decodes"));
        },
    ),
    (
        "decode-structured",
        "Message::as_ref + decode -> WireEvent (structured)",
        |i, _| {
            black_box(decode(&i.structured.as_ref()).expect("decodes"));
        },
    ),
    (
        "w3-from-wire",
        "WireEvent -> outbox (mapping only)",
        |i, _| {
            let event = decode(&i.binary.as_ref()).expect("decodes");
            black_box(OutboxEvent::<Payload>::from_wire(event, &Profile::Canonical).expect("maps"));
        },
    ),
];

/// Allocations (and reallocations) of one call, after a first call has warmed up any lazy
/// state.
fn count(run: Run, inputs: &Inputs, encoders: &Encoders) -> (usize, usize) {
    run(inputs, encoders);
    let region = Region::new(GLOBAL);
    run(inputs, encoders);
    let change = region.change();
    (change.allocations, change.reallocations)
}

/// Allocations while decoding a borrowed message (the `MessageRef` built beforehand), the
/// allocations the returned event owns (its extension list), and the one transient buffer
/// allowed: serde_json's stack of open brackets while it checks JSON data that nests arrays
/// or objects.
fn borrowed_decode(message: &Message) -> (usize, usize, usize) {
    let view = message.as_ref();
    let region = Region::new(GLOBAL);
    let event = decode(&view).expect("decodes");
    let change = region.change();
    let allocations = change.allocations + change.reallocations;
    let owned = usize::from(event.extensions().len() > 0);
    let nested = event.data().is_some_and(|data| nests(data.as_bytes()));
    drop(event);
    (allocations, owned, usize::from(nested))
}

/// Whether JSON text has an array or object inside another.
fn nests(json: &[u8]) -> bool {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    let inner = |v: &serde_json::Value| v.is_array() || v.is_object();
    match &value {
        serde_json::Value::Array(items) => items.iter().any(inner),
        serde_json::Value::Object(members) => members.values().any(inner),
        _ => false,
    }
}

/// Allocations of a decode straight into an outbox event, and what the event owns: one
/// buffer for each string field it holds and one for the payload.
fn outbox_decode(message: &Message) -> (usize, usize) {
    let view = message.as_ref();
    let region = Region::new(GLOBAL);
    let event = OutboxEvent::<Payload>::from_message(&view, &Profile::Canonical).expect("decodes");
    let change = region.change();
    let allocations = change.allocations + change.reallocations;
    let strings = [
        Some(event.event_type().as_str()),
        Some(event.aggregate_id()),
        Some(event.source()),
        Some(event.data_version()),
        (event.partition_key() != event.aggregate_id()).then(|| event.partition_key()),
        event.content_type(),
        event.subject(),
        event.dataschema(),
    ];
    let owned = strings.iter().flatten().count()
        + usize::from(!matches!(event.payload(), Payload::Absent))
        + event.extensions().len() * 2;
    drop(event);
    (allocations, owned)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let encoders = Encoders {
        binary: Encoder::new(Mode::Binary),
        structured: Encoder::new(Mode::Structured),
    };
    let sizes = [
        ("realistic", Inputs::new(realistic())),
        ("large", Inputs::new(large())),
    ];
    match args.first().map(String::as_str) {
        Some("list") => {
            for (name, what, _) in WORKLOADS {
                println!("{name:18} {what}");
            }
            return ExitCode::SUCCESS;
        }
        Some("profile") => {
            let (Some(name), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok()))
            else {
                eprintln!("usage: alloc profile WORKLOAD[@large] N");
                return ExitCode::FAILURE;
            };
            let (name, inputs) = match name.strip_suffix("@large") {
                Some(name) => (name, &sizes[1].1),
                None => (name.as_str(), &sizes[0].1),
            };
            let Some((_, _, run)) = WORKLOADS.iter().find(|(w, _, _)| *w == name) else {
                eprintln!("no workload {name}; `alloc list` names them");
                return ExitCode::FAILURE;
            };
            for _ in 0..n {
                run(inputs, &encoders);
            }
            return ExitCode::SUCCESS;
        }
        // `cargo test --benches` and `cargo bench` with a filter land here.
        _ => {}
    }

    println!(
        "| workload | what | realistic: allocations (reallocations) | large: allocations (reallocations) |"
    );
    println!("|---|---|---|---|");
    for (name, what, run) in WORKLOADS {
        let [(a, ar), (b, br)] = [&sizes[0].1, &sizes[1].1].map(|i| count(run, i, &encoders));
        println!("| {name} | {what} | {a} ({ar}) | {b} ({br}) |");
    }

    let mut ok = true;
    println!();
    for (size, inputs) in &sizes {
        for (mode, message) in [
            ("binary", &inputs.binary),
            ("structured", &inputs.structured),
        ] {
            let (allocations, owned, transient) = borrowed_decode(message);
            let fits = allocations <= owned + transient;
            ok &= fits;
            println!(
                "decode {mode:10} {size:9} MessageRef -> WireEvent: {allocations} allocation(s); the event owns {owned}{}: {}",
                if transient > 0 {
                    ", plus serde_json's bracket stack for nested data"
                } else {
                    ""
                },
                if fits { "ok" } else { "TOO MANY" }
            );
            let (allocations, owned) = outbox_decode(message);
            println!(
                "decode {mode:10} {size:9} MessageRef -> OutboxEvent<Payload>: {allocations} allocation(s), the event owns {owned}"
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("decoding a borrowed message allocated more than the returned event owns");
        ExitCode::FAILURE
    }
}
