//! Conversion speed against the alternatives a user has. Each group measures this crate and
//! its baselines on the same event in the same run, so the ratios hold on a noisy machine.
//!
//! `cargo bench --bench codec` runs every group and ends with the table of ratios that
//! BENCHMARKS.md reports; `cargo bench --bench codec -- w3` runs the groups matching `w3`.
//!
//! | group | this crate | baselines |
//! |---|---|---|
//! | W1 outbox -> binary message | `Encoder::encode` (binary) | `EventBuilderV10` + the SDK's `BinarySerializer` |
//! | W2 outbox -> structured message | `Encoder::encode` (structured) | `EventBuilderV10` + `serde_json::to_vec(&Event)`; `serde_json::to_vec` of a plain struct |
//! | W1 (large) | `Encoder::encode_borrowed` (the value borrows the payload) | the same SDK path |
//! | W3 binary message -> outbox | `OutboxEvent::from_message` | the SDK's `BinaryDeserializer` into an `Event`, then `OutboxEvent::try_from`; serde_json reading a plain borrowed struct from the header values and the value as one JSON object; serde_json's `RawValue` validation of the value |
//! | W4 structured message -> outbox | `OutboxEvent::from_message` | `serde_json::from_slice::<Event>`, then `OutboxEvent::try_from`; serde_json reading a plain borrowed struct from the value |

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use common::{
    large, plain_binary_bytes, plain_decode_binary, plain_decode_structured, plain_structured,
    realistic, sdk_decode_binary, sdk_decode_structured, sdk_encode_binary, sdk_encode_structured,
    validate_value,
};
use criterion::{Criterion, Throughput};
use outbox_cloudevents::{Encoder, Message, Mode, OutboxEvent, Payload, Profile};

const OURS: &str = "outbox-cloudevents";
const SDK: &str = "cloudevents-sdk";
const PLAIN: &str = "serde_json-plain-struct";
const BORROWED: &str = "outbox-cloudevents-encode_borrowed";
const VALIDATE: &str = "serde_json-RawValue-validation";

fn events() -> [(&'static str, OutboxEvent<Payload>); 2] {
    [("realistic", realistic()), ("large", large())]
}

fn w1_outbox_to_binary(c: &mut Criterion) {
    let encoder = Encoder::new(Mode::Binary);
    for (size, event) in events() {
        let ours = encoder.encode(&event).expect("encodes");
        let sdk = sdk_encode_binary(&event);
        // Both write the same message, but for the SDK's `time` (`+00:00`, not `Z`).
        assert_eq!(ours.key, sdk.key);
        assert_eq!(ours.value, sdk.value);
        assert_eq!(ours.headers.len(), sdk.headers.len());
        let mut group = c.benchmark_group(format!("w1_outbox_to_binary/{size}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function(OURS, |b| {
            b.iter(|| encoder.encode(black_box(&event)).expect("encodes"))
        });
        group.bench_function(BORROWED, |b| {
            b.iter(|| encoder.encode_borrowed(black_box(&event)).expect("encodes"))
        });
        group.bench_function(SDK, |b| b.iter(|| sdk_encode_binary(black_box(&event))));
        group.finish();
    }
}

fn w2_outbox_to_structured(c: &mut Criterion) {
    let encoder = Encoder::new(Mode::Structured);
    for (size, event) in events() {
        let ours = encoder.encode(&event).expect("encodes");
        let ours_json: serde_json::Value =
            serde_json::from_slice(ours.value.as_deref().expect("a value")).expect("JSON");
        let sdk: serde_json::Value =
            serde_json::from_slice(&sdk_encode_structured(&event)).expect("JSON");
        let plain: serde_json::Value =
            serde_json::from_slice(&plain_structured(&event)).expect("JSON");
        // The same members and data; `time` is spelled differently by each writer.
        for other in [&sdk, &plain] {
            assert_eq!(ours_json["data"], other["data"]);
            assert_eq!(ours_json["id"], other["id"]);
            assert_eq!(ours_json["partitionkey"], other["partitionkey"]);
            assert_eq!(
                ours_json.as_object().map(|o| o.len()),
                other.as_object().map(|o| o.len())
            );
        }
        let mut group = c.benchmark_group(format!("w2_outbox_to_structured/{size}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function(OURS, |b| {
            b.iter(|| encoder.encode(black_box(&event)).expect("encodes"))
        });
        group.bench_function(SDK, |b| b.iter(|| sdk_encode_structured(black_box(&event))));
        group.bench_function(PLAIN, |b| b.iter(|| plain_structured(black_box(&event))));
        group.finish();
    }
}

fn w3_binary_to_outbox(c: &mut Criterion) {
    decode_workload(c, "w3_binary_to_outbox", Mode::Binary, sdk_decode_binary);
}

fn w4_structured_to_outbox(c: &mut Criterion) {
    decode_workload(
        c,
        "w4_structured_to_outbox",
        Mode::Structured,
        sdk_decode_structured,
    );
}

/// A decode group: this crate's `from_message` against `sdk`, on messages this crate wrote.
fn decode_workload(
    c: &mut Criterion,
    name: &str,
    mode: Mode,
    sdk: fn(&Message) -> OutboxEvent<Payload>,
) {
    let encoder = Encoder::new(mode);
    for (size, event) in events() {
        let message = encoder.encode(&event).expect("encodes");
        let ours = OutboxEvent::<Payload>::from_message(&message.as_ref(), &Profile::Canonical)
            .expect("decodes");
        assert_eq!(ours, event);
        // The SDK's binary reader keeps the value as bytes, so the payload may come back as
        // bytes there; everything else is the same event.
        assert_eq!(
            sdk(&message).map_payload(|_| ()),
            event.clone().map_payload(|_| ())
        );
        let mut group = c.benchmark_group(format!("{name}/{size}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function(OURS, |b| {
            b.iter(|| {
                OutboxEvent::<Payload>::from_message(
                    &black_box(&message).as_ref(),
                    &Profile::Canonical,
                )
                .expect("decodes")
            })
        });
        group.bench_function(SDK, |b| b.iter(|| sdk(black_box(&message))));
        match mode {
            Mode::Binary => {
                let plain = plain_binary_bytes(&message);
                assert_eq!(
                    plain_decode_binary(&plain).value.get(),
                    common::payload_json(&event)
                );
                group.bench_function(PLAIN, |b| b.iter(|| plain_decode_binary(black_box(&plain))));
                group.bench_function(VALIDATE, |b| b.iter(|| validate_value(black_box(&message))));
            }
            _ => {
                assert_eq!(
                    plain_decode_structured(&message).data.get(),
                    common::payload_json(&event)
                );
                group.bench_function(PLAIN, |b| {
                    b.iter(|| plain_decode_structured(black_box(&message)))
                });
            }
        }
        group.finish();
    }
}

/// Short enough for `cargo bench --bench codec` to finish in a few minutes on two cores;
/// `--warm-up-time`, `--measurement-time` and `--sample-size` override it.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}

/// The rows of the table: (group, size, this crate's function, baseline, target). A target is
/// "at least this many times faster", or "at most this many times slower" when it is below 1;
/// `None` reports the ratio without a target.
const ROWS: [(&str, &str, &str, &str, Option<f64>); 16] = [
    ("w1_outbox_to_binary", "realistic", OURS, SDK, Some(3.0)),
    ("w1_outbox_to_binary", "large", OURS, SDK, None),
    ("w1_outbox_to_binary", "large", BORROWED, SDK, Some(3.0)),
    ("w2_outbox_to_structured", "realistic", OURS, SDK, Some(2.0)),
    ("w2_outbox_to_structured", "large", OURS, SDK, Some(2.0)),
    (
        "w2_outbox_to_structured",
        "realistic",
        OURS,
        PLAIN,
        Some(1.0 / 1.3),
    ),
    (
        "w2_outbox_to_structured",
        "large",
        OURS,
        PLAIN,
        Some(1.0 / 1.3),
    ),
    ("w3_binary_to_outbox", "realistic", OURS, SDK, Some(3.0)),
    ("w3_binary_to_outbox", "large", OURS, SDK, None),
    (
        "w3_binary_to_outbox",
        "realistic",
        OURS,
        PLAIN,
        Some(1.0 / 1.3),
    ),
    ("w3_binary_to_outbox", "large", OURS, PLAIN, Some(1.0 / 1.3)),
    ("w3_binary_to_outbox", "large", OURS, VALIDATE, Some(6.0)),
    ("w4_structured_to_outbox", "realistic", OURS, SDK, Some(5.0)),
    ("w4_structured_to_outbox", "large", OURS, SDK, None),
    (
        "w4_structured_to_outbox",
        "realistic",
        OURS,
        PLAIN,
        Some(1.0 / 1.3),
    ),
    (
        "w4_structured_to_outbox",
        "large",
        OURS,
        PLAIN,
        Some(1.0 / 1.3),
    ),
];

fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// The median time of one function in this run, in nanoseconds; `None` when it did not run
/// (filtered out, or `--test` mode).
fn median(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    // Criterion's directory names: `/` becomes `_`.
    let path = criterion_dir()
        .join(group.replace('/', "_"))
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn format_time(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A conversion measured by [`paired`]: each call does the work once.
type Work = Box<dyn FnMut()>;

/// The same work as the criterion groups, as (group, function) -> closure, for the
/// interleaved measurement.
fn work(group: &str, function: &str) -> Work {
    let (workload, size) = group.split_once('/').expect("group/size");
    let event = if size == "large" {
        large()
    } else {
        realistic()
    };
    let binary = Encoder::new(Mode::Binary);
    let structured = Encoder::new(Mode::Structured);
    let decode = |message: Message| -> Work {
        Box::new(move || {
            black_box(
                OutboxEvent::<Payload>::from_message(
                    &black_box(&message).as_ref(),
                    &Profile::Canonical,
                )
                .expect("decodes"),
            );
        })
    };
    match (workload, function) {
        ("w1_outbox_to_binary", OURS) => Box::new(move || {
            black_box(binary.encode(black_box(&event)).expect("encodes"));
        }),
        ("w1_outbox_to_binary", BORROWED) => Box::new(move || {
            black_box(binary.encode_borrowed(black_box(&event)).expect("encodes"));
        }),
        ("w1_outbox_to_binary", _) => Box::new(move || {
            black_box(sdk_encode_binary(black_box(&event)));
        }),
        ("w2_outbox_to_structured", OURS) => Box::new(move || {
            black_box(structured.encode(black_box(&event)).expect("encodes"));
        }),
        ("w2_outbox_to_structured", PLAIN) => Box::new(move || {
            black_box(plain_structured(black_box(&event)));
        }),
        ("w2_outbox_to_structured", _) => Box::new(move || {
            black_box(sdk_encode_structured(black_box(&event)));
        }),
        ("w3_binary_to_outbox", OURS) => decode(binary.encode(&event).expect("encodes")),
        ("w3_binary_to_outbox", PLAIN) => {
            let bytes = plain_binary_bytes(&binary.encode(&event).expect("encodes"));
            Box::new(move || {
                black_box(plain_decode_binary(black_box(&bytes)));
            })
        }
        ("w3_binary_to_outbox", VALIDATE) => {
            let message = binary.encode(&event).expect("encodes");
            Box::new(move || {
                black_box(validate_value(black_box(&message)));
            })
        }
        ("w3_binary_to_outbox", _) => {
            let message = binary.encode(&event).expect("encodes");
            Box::new(move || {
                black_box(sdk_decode_binary(black_box(&message)));
            })
        }
        ("w4_structured_to_outbox", OURS) => decode(structured.encode(&event).expect("encodes")),
        ("w4_structured_to_outbox", PLAIN) => {
            let message = structured.encode(&event).expect("encodes");
            Box::new(move || {
                black_box(plain_decode_structured(black_box(&message)));
            })
        }
        _ => {
            let message = structured.encode(&event).expect("encodes");
            Box::new(move || {
                black_box(sdk_decode_structured(black_box(&message)));
            })
        }
    }
}

/// Times two conversions in alternating batches of about 0.2 ms each for `budget`, so that
/// both see the same load on a shared machine, and returns the median time of one call of
/// each, in nanoseconds. Criterion measures one function after the other, so a load that
/// comes and goes between them moves its ratio; this one it does not.
fn paired(mut ours: Work, mut base: Work, budget: Duration) -> (f64, f64) {
    let batch_of = |work: &mut Work| {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_micros(200) {
            work();
            n += 1;
        }
        n
    };
    let (n_ours, n_base) = (batch_of(&mut ours), batch_of(&mut base));
    let time = |work: &mut Work, n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            work();
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    };
    let (mut t_ours, mut t_base) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < budget || round < 10 {
        // Alternate which side goes first, so neither always runs on a warmer cache.
        if round % 2 == 0 {
            t_ours.push(time(&mut ours, n_ours));
            t_base.push(time(&mut base, n_base));
        } else {
            t_base.push(time(&mut base, n_base));
            t_ours.push(time(&mut ours, n_ours));
        }
        round += 1;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(t_ours), median(t_base))
}

/// Prints the ratios of this run as a Markdown table: criterion's medians, one function
/// after the other, and the interleaved measurement of [`paired`], which decides whether a
/// target is met. Only groups criterion ran in this run are reported (none with `--test`).
fn report(since: SystemTime) {
    let mut rows = Vec::new();
    for (group, size, function, baseline, target) in ROWS {
        let group = format!("{group}/{size}");
        let (Some(ours), Some(base)) = (
            median(&group, function, since),
            median(&group, baseline, since),
        ) else {
            continue;
        };
        let (p_ours, p_base) = paired(
            work(&group, function),
            work(&group, baseline),
            Duration::from_secs(2),
        );
        let ratio = p_base / p_ours;
        let (target_text, met) = match target {
            None => ("none".to_owned(), "".to_owned()),
            Some(t) => (
                if t >= 1.0 {
                    format!(">= {t}x")
                } else {
                    format!(">= {t:.2}x (within {:.1}x)", 1.0 / t)
                },
                if ratio >= t { "yes" } else { "**no**" }.to_owned(),
            ),
        };
        let who = if function == OURS {
            String::new()
        } else {
            format!(" ({function})")
        };
        rows.push(format!(
            "| {group}{who} | {baseline} | {} / {} = {:.2}x | {} / {} = **{ratio:.2}x** | {target_text} | {met} |",
            format_time(ours),
            format_time(base),
            base / ours,
            format_time(p_ours),
            format_time(p_base),
        ));
    }
    if rows.is_empty() {
        return;
    }
    println!(
        "\n| workload | baseline | criterion: this crate / baseline = ratio | interleaved: this crate / baseline = ratio | target | met |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = config();
    w1_outbox_to_binary(&mut c);
    w2_outbox_to_structured(&mut c);
    w3_binary_to_outbox(&mut c);
    w4_structured_to_outbox(&mut c);
    c.final_summary();
    report(since);
}
