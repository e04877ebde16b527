//! The JSON crates this library could read with, on this library's own inputs: which one to
//! build the readers on. `cargo bench --bench parsers` (needs the `interchange` feature, which
//! the bench requires), `-- validate` for one family.
//!
//! Families, each on the realistic and the large event of `benches/common`:
//! - `validate`: is the payload one JSON value (what binary mode checks of a JSON value);
//! - `event`: the structured-mode value (W4 bytes) into a struct of borrowed strings and the
//!   data's text;
//! - `outbox_json`: a `to_message()` line into its members, each value's text borrowed;
//! - `interchange`: an interchange line of the binary-mode message into borrowed strings.
//!
//! Candidates: serde_json with borrowed visitors, jiter 0.19 (iterator), sonic-rs 0.5 (serde
//! API, default build flags: its SSE2 code, as CI and users build it), simd-json 0.19 (serde
//! API and tape, AVX2 chosen at run time; it parses in place, so each call copies the input).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
mod common;

use std::borrow::Cow;
use std::fmt;
use std::hint::black_box;
use std::marker::PhantomData;
use std::time::Duration;

use common::{large, realistic};
use criterion::{Criterion, Throughput};
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

struct Inputs {
    payload: Vec<u8>,
    event: Vec<u8>,
    outbox_json: Vec<u8>,
    interchange: Vec<u8>,
}

fn inputs(event: &OutboxEvent<Payload>) -> Inputs {
    let binary = Encoder::new(Mode::Binary).encode(event).unwrap();
    Inputs {
        payload: event.payload().as_json().unwrap().as_bytes().to_vec(),
        event: Encoder::new(Mode::Structured)
            .encode(event)
            .unwrap()
            .value
            .unwrap(),
        outbox_json: event.to_message_json().unwrap(),
        interchange: Record::from(binary).to_json(),
    }
}

/// The structured event with borrowed strings; `D` is how each crate keeps the data's text.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Event<'a, D> {
    specversion: &'a str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    datacontenttype: Option<&'a str>,
    time: Option<&'a str>,
    aggregateid: &'a str,
    causationid: Option<&'a str>,
    correlationid: Option<&'a str>,
    dataversion: &'a str,
    partitionkey: &'a str,
    data: D,
}

/// The interchange line with borrowed strings (owned where escaped).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Line<'a> {
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    headers: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
}

/// Every member of an object, in order, with its value as `V` (the raw text where the crate
/// can keep it).
struct Members<'a, V>(#[allow(dead_code)] Vec<(Cow<'a, str>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Members<'de, V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<'de, V>(PhantomData<(&'de (), V)>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<'de, V> {
            type Value = Members<'de, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(16);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    out.push((key, map.next_value::<V>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Vis(PhantomData))
    }
}

// jiter: an iterator, no serde. Strings that need no unescaping are borrowed, as `Cow`.

fn jiter_validate(bytes: &[u8]) -> bool {
    // `next_skip` does not check UTF-8 (its documentation says so): the whole text is checked.
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut j = jiter::Jiter::new(bytes);
    j.next_skip().is_ok() && j.finish().is_ok()
}

fn jiter_members(bytes: &[u8]) -> Vec<(String, &[u8])> {
    let mut j = jiter::Jiter::new(bytes);
    let mut out = Vec::with_capacity(16);
    let mut key = j.next_object().unwrap().map(str::to_owned);
    while let Some(k) = key {
        let peek = j.peek().unwrap();
        let start = j.current_index();
        j.known_skip(peek).unwrap();
        out.push((k, &bytes[start..j.current_index()]));
        key = j.next_key().unwrap().map(str::to_owned);
    }
    j.finish().unwrap();
    out
}

/// Key, headers and value of an interchange line, owned.
type Owned = (
    Option<String>,
    Vec<(String, Option<String>)>,
    Option<String>,
);

fn jiter_interchange(bytes: &[u8]) -> Owned {
    let mut j = jiter::Jiter::new(bytes);
    let (mut key, mut headers, mut value) = (None, Vec::with_capacity(16), None);
    let mut member = j.next_object().unwrap().map(str::to_owned);
    while let Some(m) = member {
        match m.as_str() {
            "key" => key = Some(j.next_str().unwrap().to_owned()),
            "value" => value = Some(j.next_str().unwrap().to_owned()),
            "headers" => {
                let mut more = j.next_array().unwrap().is_some();
                while more {
                    j.known_array().unwrap();
                    let name = j.next_str().unwrap().to_owned();
                    j.array_step().unwrap();
                    let v = j.next_str().unwrap().to_owned();
                    assert!(j.array_step().unwrap().is_none());
                    headers.push((name, Some(v)));
                    more = j.array_step().unwrap().is_some();
                }
            }
            other => panic!("{other}"),
        }
        member = j.next_key().unwrap().map(str::to_owned);
    }
    j.finish().unwrap();
    (key, headers, value)
}

fn simd_validate(bytes: &[u8], buffers: &mut simd_json::Buffers) -> bool {
    let mut copy = bytes.to_vec();
    simd_json::to_tape_with_buffers(&mut copy, buffers).is_ok()
}

fn bench(c: &mut Criterion) {
    for (size, event) in [("realistic", realistic()), ("large", large())] {
        let input = inputs(&event);
        let mut buffers = simd_json::Buffers::new(input.payload.len());

        // Every candidate takes the valid input and refuses a broken one.
        let broken = {
            let mut b = input.payload.clone();
            let at = b.len() / 2;
            b[at] = b'{';
            b
        };
        for bytes in [&input.payload, &broken] {
            let ok = serde_json::from_slice::<&RawValue>(bytes).is_ok();
            assert_eq!(serde_json::from_slice::<IgnoredAny>(bytes).is_ok(), ok);
            assert_eq!(jiter_validate(bytes), ok);
            assert_eq!(sonic_rs::from_slice::<IgnoredAny>(bytes).is_ok(), ok);
            assert_eq!(simd_validate(bytes, &mut buffers), ok);
        }

        let mut g = c.benchmark_group(format!("validate/{size}"));
        g.throughput(Throughput::Bytes(input.payload.len() as u64));
        let p = &input.payload;
        g.bench_function("serde_json-RawValue", |b| {
            b.iter(|| {
                serde_json::from_slice::<&RawValue>(black_box(p))
                    .unwrap()
                    .get()
                    .len()
            })
        });
        g.bench_function("serde_json-IgnoredAny", |b| {
            b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(p)).unwrap())
        });
        g.bench_function("jiter-skip+utf8", |b| {
            b.iter(|| jiter_validate(black_box(p)))
        });
        g.bench_function("sonic-rs-IgnoredAny", |b| {
            b.iter(|| sonic_rs::from_slice::<IgnoredAny>(black_box(p)).unwrap())
        });
        g.bench_function("sonic-rs-LazyValue", |b| {
            b.iter(|| {
                sonic_rs::from_slice::<sonic_rs::LazyValue<'_>>(black_box(p))
                    .unwrap()
                    .as_raw_str()
                    .len()
            })
        });
        g.bench_function("simd-json-tape(copy)", |b| {
            b.iter(|| simd_validate(black_box(p), &mut buffers))
        });
        g.bench_function("std-utf8-only", |b| {
            b.iter(|| std::str::from_utf8(black_box(p)).unwrap().len())
        });
        g.finish();

        let mut g = c.benchmark_group(format!("event/{size}"));
        let e = &input.event;
        g.bench_function("serde_json", |b| {
            b.iter(|| {
                serde_json::from_slice::<Event<'_, &RawValue>>(black_box(e))
                    .unwrap()
                    .data
                    .get()
                    .len()
            })
        });
        g.bench_function("sonic-rs", |b| {
            b.iter(|| {
                sonic_rs::from_slice::<Event<'_, sonic_rs::LazyValue<'_>>>(black_box(e))
                    .unwrap()
                    .data
                    .as_raw_str()
                    .len()
            })
        });
        g.bench_function("simd-json(data skipped, copy)", |b| {
            b.iter(|| {
                let mut copy = black_box(e).clone();
                simd_json::serde::from_slice_with_buffers::<Event<'_, IgnoredAny>>(
                    &mut copy,
                    &mut buffers,
                )
                .unwrap()
                .id
                .len()
            })
        });
        g.bench_function("jiter", |b| b.iter(|| jiter_members(black_box(e)).len()));
        g.finish();

        let mut g = c.benchmark_group(format!("outbox_json/{size}"));
        let o = &input.outbox_json;
        g.bench_function("serde_json", |b| {
            b.iter(|| {
                serde_json::from_slice::<Members<'_, &RawValue>>(black_box(o))
                    .unwrap()
                    .0
                    .len()
            })
        });
        g.bench_function("sonic-rs", |b| {
            b.iter(|| {
                sonic_rs::from_slice::<Members<'_, sonic_rs::LazyValue<'_>>>(black_box(o))
                    .unwrap()
                    .0
                    .len()
            })
        });
        g.bench_function("jiter", |b| b.iter(|| jiter_members(black_box(o)).len()));
        g.finish();

        let mut g = c.benchmark_group(format!("interchange/{size}"));
        let l = &input.interchange;
        g.bench_function("serde_json", |b| {
            b.iter(|| {
                serde_json::from_slice::<Line<'_>>(black_box(l))
                    .unwrap()
                    .headers
                    .len()
            })
        });
        g.bench_function("sonic-rs", |b| {
            b.iter(|| {
                sonic_rs::from_slice::<Line<'_>>(black_box(l))
                    .unwrap()
                    .headers
                    .len()
            })
        });
        g.bench_function("simd-json(copy)", |b| {
            b.iter(|| {
                let mut copy = black_box(l).clone();
                simd_json::serde::from_slice_with_buffers::<Line<'_>>(&mut copy, &mut buffers)
                    .unwrap()
                    .headers
                    .len()
            })
        });
        g.bench_function("jiter", |b| {
            b.iter(|| jiter_interchange(black_box(l)).1.len())
        });
        g.finish();
    }
}

/// `parsers profile CANDIDATE SIZE N`: validates the payload of the `SIZE` event N times with
/// one candidate and nothing else, for `valgrind --tool=callgrind` (instructions, which the
/// load of a shared machine does not move). Candidates: `serde_json`, `jiter`, `sonic-rs`,
/// `simd-json`, `utf8` (the UTF-8 check alone).
fn profile(candidate: &str, size: &str, n: usize) {
    let event = if size == "large" {
        large()
    } else {
        realistic()
    };
    let payload = inputs(&event).payload;
    let mut buffers = simd_json::Buffers::new(payload.len());
    for _ in 0..n {
        let p = black_box(&payload);
        let ok = match candidate {
            "serde_json" => serde_json::from_slice::<&RawValue>(p).is_ok(),
            "jiter" => jiter_validate(p),
            "sonic-rs" => sonic_rs::from_slice::<IgnoredAny>(p).is_ok(),
            "simd-json" => simd_validate(p, &mut buffers),
            "utf8" => std::str::from_utf8(p).is_ok(),
            other => panic!("no candidate {other}"),
        };
        assert!(ok);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, command, candidate, size, n, ..] = args.as_slice()
        && command == "profile"
    {
        profile(candidate, size, n.parse().expect("a count"));
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
