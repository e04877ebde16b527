//! Interoperability with the other CloudEvents SDKs, checked against the real, pinned peers.
//!
//! Peer -> us: the messages each peer wrote for `fixtures/interop/events.jsonl`
//! (`fixtures/interop/from-<peer>-<mode>.jsonl`, made by `scripts/peers/regen`), the Rust
//! SDK's messages made here, and python-outbox-core's `CloudEventsFormatter` output
//! (`fixtures/python-outbox-core/cloudevents.jsonl`) are decoded and compared with the event
//! each was meant to carry. Us -> peer: this crate's messages for the same events, and for the
//! python-outbox-core events in both profiles, go through each peer's decoder
//! (`scripts/peers/decode_*`) and what the peer read is compared with what was sent.
//!
//! Comparison is attribute by attribute: `time` as an instant, extensions by value (by their
//! string form in binary mode, which carries every attribute as a string), data by meaning with
//! numbers compared exactly. Every difference must be a named peer defect in [`KNOWN`], with
//! the exact effect the table gives it, and every row of [`KNOWN`] must still happen, so a
//! peer that gets fixed fails the suite until the table is updated. The outcome is the matrix
//! in `fixtures/interop/MATRIX.md`, a golden file: `UPDATE_FIXTURES=1 cargo test
//! --all-features --test interop` rewrites it.
//!
//! The peers are installed by `scripts/peers/setup` (a no-op once done); a failed install
//! fails the suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Helpers, in `tests/interop/`.
mod interop {
    pub mod json;
    pub mod peers;
    pub mod rust_sdk;
    pub mod view;
}

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use cloudevents::AttributesReader as _;
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::kafka::STRUCTURED_CONTENT_TYPE;
use outbox_cloudevents::{
    Encoder, ErrorKind, Header, Message, Mode, OutboxEvent, Payload, Profile, WireEvent, decode,
};
use serde_json::value::RawValue;

use interop::json::Json;
use interop::peers::{self, Decoder};
use interop::rust_sdk;
use interop::view::{Diff, Item, Payload as Data, View};

// ---------------------------------------------------------------------------------------------
// Peers and directions

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    PythonCore,
    PythonV1,
    JavaScript,
    Rust,
    PythonOutboxCore,
}

impl Peer {
    const ALL: [Peer; 5] = [
        Peer::PythonCore,
        Peer::PythonV1,
        Peer::JavaScript,
        Peer::Rust,
        Peer::PythonOutboxCore,
    ];

    fn name(self) -> &'static str {
        match self {
            Peer::PythonCore => "python-core",
            Peer::PythonV1 => "python-v1",
            Peer::JavaScript => "javascript",
            Peer::Rust => "rust",
            Peer::PythonOutboxCore => "python-outbox-core",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Peer::PythonCore => "Python `cloudevents` 2.2.0, `cloudevents.core.bindings.kafka`",
            Peer::PythonV1 => "Python `cloudevents` 2.2.0, legacy `cloudevents.v1.kafka`",
            Peer::JavaScript => "JavaScript `cloudevents` 10.0.0, `Kafka` binding",
            Peer::Rust => "Rust `cloudevents-sdk` 0.9, JSON format and message traits",
            Peer::PythonOutboxCore => "`python-outbox-core` 0.1.0, `CloudEventsFormatter`",
        }
    }

    fn modes(self) -> &'static [Mode] {
        match self {
            Peer::PythonOutboxCore => &[Mode::Structured],
            _ => &[Mode::Binary, Mode::Structured],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The peer wrote, this crate read.
    PeerToUs,
    /// This crate wrote, the peer read.
    UsToPeer,
}

use Direction::{PeerToUs, UsToPeer};
use Mode::{Binary, Structured};

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Binary => "binary",
        Structured => "structured",
    }
}

// ---------------------------------------------------------------------------------------------
// Known peer defects

/// A peer defect, named once.
#[derive(Debug)]
struct Defect {
    name: &'static str,
    /// The upstream issue, `owner/repo#number`, when there is one.
    issue: Option<&'static str>,
}

impl Defect {
    fn label(&self) -> String {
        match self.issue {
            Some(issue) => format!("defect: {} ({issue})", self.name),
            None => format!("defect: {}", self.name),
        }
    }
}

/// What a defect does to one attribute, checked against the expected and the observed value.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// The attribute is gone.
    Dropped,
    /// `time` appears on an event without one: the current time, which the peer scripts pin
    /// to [`PINNED_NOW`].
    InventsTime,
    /// An attribute the event did not have appears, set to `null`.
    InventsNull,
    /// A Boolean comes back as Python's `str()` of it, `True` or `False`.
    PythonBool,
    /// `time` cut to milliseconds.
    TimeMillis,
    /// `time` cut to microseconds.
    TimeMicros,
    /// JSON numbers go through an IEEE 754 double: integers beyond 2^53 are rounded.
    NumbersViaF64,
    /// JSON numbers go through serde_json's `Value` without `arbitrary_precision`: integers
    /// beyond 64 bits become doubles.
    NumbersViaSerdeValue,
    /// `data: null` where the event had no data.
    NullData,
    /// Text data comes back as a JSON string: its content type was lost on the way.
    TextAsJsonString,
    /// Text data comes back as the bytes of its JSON-quoted form.
    TextJsonQuoted,
    /// `partitionkey` comes back as the Kafka key's bytes rather than the string.
    KeyAsBytes,
    /// `datacontenttype` comes back as the structured-mode `content-type` header.
    StructuredContentType,
    /// A `time` that is not an RFC 3339 date-time (no UTC offset).
    NotRfc3339,
    /// The event cannot be read at all (`error`); the error text contains this.
    Fails(&'static str),
}

/// The instant the peer scripts stamp where an SDK would stamp the current time.
const PINNED_NOW: &str = "2000-01-01T00:00:00Z";

fn truncated(t: &DateTime<Utc>, unit: u32) -> DateTime<Utc> {
    use chrono::Timelike as _;
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % unit).unwrap_or(*t)
}

impl Effect {
    fn holds(self, expected: Option<&Item>, actual: Option<&Item>) -> bool {
        use Item::{Bool, Data as D, Other, Str, Time};
        match (self, expected, actual) {
            (Effect::Dropped, Some(_), None) => true,
            (Effect::InventsTime, None, Some(Time(t))) => {
                *t == PINNED_NOW.parse::<DateTime<Utc>>().expect("pinned time")
            }
            (Effect::InventsNull, None, Some(Other(Json::Null))) => true,
            (Effect::PythonBool, Some(Bool(b)), Some(Str(s))) => *s == python_bool(*b),
            (Effect::PythonBool, Some(Str(e)), Some(Str(s))) => match e.as_str() {
                "true" => s == "True",
                "false" => s == "False",
                _ => false,
            },
            (Effect::TimeMillis, Some(Time(e)), Some(Time(a))) => {
                a != e && *a == truncated(e, 1_000_000)
            }
            (Effect::TimeMicros, Some(Time(e)), Some(Time(a))) => {
                a != e && *a == truncated(e, 1_000)
            }
            (Effect::NumbersViaF64, Some(D(Data::Json(e))), Some(D(Data::Json(a)))) => {
                a != e && *a == e.through_f64()
            }
            (Effect::NumbersViaSerdeValue, Some(D(Data::Json(e))), Some(D(Data::Json(a)))) => {
                a != e && *a == e.through_serde_value()
            }
            (Effect::NullData, None, Some(D(Data::Json(Json::Null)))) => true,
            (
                Effect::TextAsJsonString,
                Some(D(Data::Text(e))),
                Some(D(Data::Json(Json::String(a)))),
            ) => a == e,
            (Effect::TextJsonQuoted, Some(D(Data::Text(e))), Some(D(Data::Bytes(a)))) => {
                std::str::from_utf8(a)
                    .ok()
                    .and_then(|a| Json::parse(a).ok())
                    == Some(Json::String(e.clone()))
            }
            (Effect::KeyAsBytes, Some(Str(e)), Some(Other(a))) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(e);
                a.get("base64").and_then(Json::as_str) == Some(b64.as_str())
            }
            (Effect::StructuredContentType, _, Some(Str(a))) => a == STRUCTURED_CONTENT_TYPE,
            (Effect::NotRfc3339, None, Some(Str(a))) => DateTime::parse_from_rfc3339(a).is_err(),
            (Effect::Fails(text), None, Some(Str(error))) => error.contains(text),
            _ => false,
        }
    }
}

fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// When a row applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Always,
    /// Only when serde_json is built without `arbitrary_precision` (this crate's
    /// `arbitrary-precision` feature turns it on).
    WithoutArbitraryPrecision,
}

impl Build {
    fn applies(self) -> bool {
        match self {
            Build::Always => true,
            Build::WithoutArbitraryPrecision => !cfg!(feature = "arbitrary-precision"),
        }
    }
}

/// One known peer defect at one attribute of some events on one path.
struct Known {
    peer: Peer,
    mode: Mode,
    direction: Direction,
    /// Event labels (see [`Case`]); one `*` in a label matches any text.
    events: &'static [&'static str],
    /// The attribute, `data`, or `error` for an event that could not be read at all.
    attribute: &'static str,
    defect: &'static Defect,
    effect: Effect,
    build: Build,
}

impl Known {
    fn covers(&self, o: &Observation) -> bool {
        self.peer == o.peer
            && self.mode == o.mode
            && self.direction == o.direction
            && self.events.iter().any(|e| match e.split_once('*') {
                Some((head, tail)) => {
                    o.case.len() >= head.len() + tail.len()
                        && o.case.starts_with(head)
                        && o.case.ends_with(tail)
                }
                None => o.case == *e,
            })
    }

    fn label(&self) -> String {
        match self.build {
            Build::Always => self.defect.label(),
            Build::WithoutArbitraryPrecision => format!(
                "without feature `arbitrary-precision`: {}",
                self.defect.label()
            ),
        }
    }
}

// The events of fixtures/interop/events.jsonl, by id.
const INVITE: &str = "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b01"; // all outbox extensions, 6 digits
const RENAMED: &str = "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b02"; // unicode everywhere
const ORDER: &str = "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b03"; // big numbers
const OCTETS: &str = "binary-octets";
const TEXT: &str = "text-payload";
const NO_TIME: &str = "no-time";
const DEACTIVATED: &str = "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b07"; // no datacontenttype, 1 µs
const INVOICE: &str = "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b08"; // dataschema, +json type
const NO_DATA: &str = "no-data";
const TYPED: &str = "typed-extensions"; // Integer and Boolean extensions, nanoseconds
const ARRAY: &str = "json-array-data";
const STRING: &str = "json-string-data";
const ALL_EVENTS: &[&str] = &[
    INVITE,
    RENAMED,
    ORDER,
    OCTETS,
    TEXT,
    NO_TIME,
    DEACTIVATED,
    INVOICE,
    NO_DATA,
    TYPED,
    ARRAY,
    STRING,
];
// The python-outbox-core events: the order (naive time, 65-bit integer), and the invite
// (6 fraction digits); in one profile or both.
const OUTBOX_ORDER: &str = "outbox/*/3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f02";
const OUTBOX_CANONICAL: &str = "outbox/canonical/*";
const OUTBOX_PYTHON: &str = "outbox/python-outbox-core/*";

static TIME_NOW: Defect = Defect {
    name: "makes up `time` (the current time) for an event without one",
    issue: None,
};
static PY_CORE_BOOL: Defect = Defect {
    name: "binary mode writes Boolean extensions as `True`/`False`",
    issue: None,
};
static PY_MICROS: Defect = Defect {
    name: "`time` cut to microseconds (Python `datetime`)",
    issue: None,
};
static PY_CORE_STR_DATA: Defect = Defect {
    name: "binary mode writes JSON data that is not an object with `str()`, not as JSON",
    issue: None,
};
static V1_NO_PARTITIONKEY: Defect = Defect {
    name: "binary mode drops `partitionkey` (sends the key only)",
    issue: None,
};
static V1_NO_CONTENT_TYPE: Defect = Defect {
    name: "binary mode raises on an event without `datacontenttype`",
    issue: Some("sdk-python #304"),
};
static V1_TYPED_EXTENSIONS: Defect = Defect {
    name: "binary mode raises on Integer and Boolean extensions",
    issue: Some("sdk-python #304"),
};
static V1_BYTES: Defect = Defect {
    name: "binary mode cannot write bytes data",
    issue: None,
};
static V1_QUOTED_TEXT: Defect = Defect {
    name: "binary mode JSON-quotes text data",
    issue: None,
};
static V1_STRUCTURED: Defect = Defect {
    name: "structured mode sent under the data's `content-type`, `datacontenttype` removed",
    issue: Some("sdk-python #295"),
};
static V1_NULL_DATA: Defect = Defect {
    name: "structured mode writes `data: null` for an event without data",
    issue: None,
};
static V1_KEY: Defect = Defect {
    name: "reads the Kafka key as `partitionkey` (bytes) over the `ce_partitionkey` header",
    issue: None,
};
static V1_TOMBSTONE: Defect = Defect {
    name: "cannot read a binary-mode event without data (no value)",
    issue: None,
};
static V1_CONTENT_TYPE: Defect = Defect {
    name: "`content-type` overrides `datacontenttype`, also the structured-mode media type",
    issue: None,
};
static JS_BIG_INT: Defect = Defect {
    name: "integers beyond 2^53 rounded (`JSON.parse`)",
    issue: Some("sdk-javascript #489"),
};
static JS_MILLIS: Defect = Defect {
    name: "`time` cut to milliseconds",
    issue: None,
};
static JS_UNSERIALIZED: Defect = Defect {
    name: "binary mode leaves data unserialized: a JSON string goes out unquoted",
    issue: None,
};
static JS_NULL_PARTITIONKEY: Defect = Defect {
    name: "adds `partitionkey: null` to an event read without a key",
    issue: None,
};
static JS_TOMBSTONE: Defect = Defect {
    name: "cannot read a binary-mode event without data (no value)",
    issue: None,
};
static JS_NO_TIME: Defect = Defect {
    name: "cannot read a structured-mode event without `time`",
    issue: None,
};
static RUST_BIG_INT: Defect = Defect {
    name: "JSON data held as serde_json `Value`: integers beyond 64 bits become doubles",
    issue: None,
};
static OUTBOX_NAIVE_TIME: Defect = Defect {
    name: "`time` without a UTC offset for a naive `occurred_at` (not RFC 3339)",
    issue: None,
};

const fn known(
    peer: Peer,
    mode: Mode,
    direction: Direction,
    events: &'static [&'static str],
    attribute: &'static str,
    defect: &'static Defect,
    effect: Effect,
) -> Known {
    Known {
        peer,
        mode,
        direction,
        events,
        attribute,
        defect,
        effect,
        build: Build::Always,
    }
}

use Effect::*;
use Peer::{JavaScript, PythonCore, PythonOutboxCore, PythonV1, Rust};

/// Every difference seen between what was sent and what was read, each with its cause.
#[rustfmt::skip]
static KNOWN: &[Known] = &[
    // Python cloudevents.core writes
    known(PythonCore, Binary, PeerToUs, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(PythonCore, Binary, PeerToUs, &[TYPED], "replayed", &PY_CORE_BOOL, PythonBool),
    known(PythonCore, Binary, PeerToUs, &[TYPED], "sampled", &PY_CORE_BOOL, PythonBool),
    known(PythonCore, Binary, PeerToUs, &[TYPED], "time", &PY_MICROS, TimeMicros),
    known(PythonCore, Binary, PeerToUs, &[ARRAY, STRING], "error", &PY_CORE_STR_DATA, Fails("not JSON")),
    known(PythonCore, Structured, PeerToUs, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(PythonCore, Structured, PeerToUs, &[TYPED], "time", &PY_MICROS, TimeMicros),
    // Python cloudevents.core reads
    known(PythonCore, Binary, UsToPeer, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(PythonCore, Binary, UsToPeer, &[TYPED], "time", &PY_MICROS, TimeMicros),
    known(PythonCore, Structured, UsToPeer, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(PythonCore, Structured, UsToPeer, &[TYPED], "time", &PY_MICROS, TimeMicros),
    // Python cloudevents.v1 writes
    known(PythonV1, Binary, PeerToUs, &[INVITE, RENAMED, ORDER, INVOICE], "partitionkey", &V1_NO_PARTITIONKEY, Dropped),
    known(PythonV1, Binary, PeerToUs, &[DEACTIVATED, NO_DATA], "error", &V1_NO_CONTENT_TYPE, Fails("KeyError: 'datacontenttype'")),
    known(PythonV1, Binary, PeerToUs, &[TYPED], "error", &V1_TYPED_EXTENSIONS, Fails("AttributeError")),
    known(PythonV1, Binary, PeerToUs, &[OCTETS], "error", &V1_BYTES, Fails("DataMarshallerError")),
    known(PythonV1, Binary, PeerToUs, &[TEXT], "data", &V1_QUOTED_TEXT, TextJsonQuoted),
    known(PythonV1, Binary, PeerToUs, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(PythonV1, Structured, PeerToUs, ALL_EVENTS, "error", &V1_STRUCTURED, Fails("NotACloudEvent")),
    known(PythonV1, Structured, PeerToUs, &[INVITE, RENAMED, ORDER, OCTETS, TEXT, NO_TIME, INVOICE, TYPED, ARRAY, STRING], "datacontenttype", &V1_STRUCTURED, Dropped),
    known(PythonV1, Structured, PeerToUs, &[TEXT], "data", &V1_STRUCTURED, TextAsJsonString),
    known(PythonV1, Structured, PeerToUs, &[NO_DATA], "data", &V1_NULL_DATA, NullData),
    known(PythonV1, Structured, PeerToUs, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    // Python cloudevents.v1 reads
    known(PythonV1, Binary, UsToPeer, &[INVITE, RENAMED, ORDER, DEACTIVATED, INVOICE, OUTBOX_CANONICAL], "partitionkey", &V1_KEY, KeyAsBytes),
    known(PythonV1, Binary, UsToPeer, &[NO_DATA], "error", &V1_TOMBSTONE, Fails("DataUnmarshallerError")),
    known(PythonV1, Binary, UsToPeer, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(PythonV1, Structured, UsToPeer, &["*"], "datacontenttype", &V1_CONTENT_TYPE, StructuredContentType),
    known(PythonV1, Structured, UsToPeer, &[TEXT], "data", &V1_CONTENT_TYPE, TextAsJsonString),
    known(PythonV1, Structured, UsToPeer, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    // JavaScript writes
    known(JavaScript, Binary, PeerToUs, &[ORDER], "data", &JS_BIG_INT, NumbersViaF64),
    known(JavaScript, Binary, PeerToUs, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(JavaScript, Binary, PeerToUs, &[STRING], "error", &JS_UNSERIALIZED, Fails("not JSON")),
    known(JavaScript, Structured, PeerToUs, &[ORDER], "data", &JS_BIG_INT, NumbersViaF64),
    known(JavaScript, Structured, PeerToUs, &[INVITE, DEACTIVATED, TYPED], "time", &JS_MILLIS, TimeMillis),
    known(JavaScript, Structured, PeerToUs, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    // JavaScript reads
    known(JavaScript, Binary, UsToPeer, &[ORDER, OUTBOX_ORDER], "data", &JS_BIG_INT, NumbersViaF64),
    known(JavaScript, Binary, UsToPeer, &[INVITE, DEACTIVATED, TYPED, "outbox/*/3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01", OUTBOX_ORDER], "time", &JS_MILLIS, TimeMillis),
    known(JavaScript, Binary, UsToPeer, &[OCTETS, TEXT, NO_TIME, TYPED, ARRAY, STRING, OUTBOX_PYTHON], "partitionkey", &JS_NULL_PARTITIONKEY, InventsNull),
    known(JavaScript, Binary, UsToPeer, &[NO_TIME], "time", &TIME_NOW, InventsTime),
    known(JavaScript, Binary, UsToPeer, &[NO_DATA], "error", &JS_TOMBSTONE, Fails("Value is null or undefined")),
    known(JavaScript, Structured, UsToPeer, &[ORDER, OUTBOX_ORDER], "data", &JS_BIG_INT, NumbersViaF64),
    known(JavaScript, Structured, UsToPeer, &[INVITE, DEACTIVATED, TYPED, "outbox/*/3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01", OUTBOX_ORDER], "time", &JS_MILLIS, TimeMillis),
    known(JavaScript, Structured, UsToPeer, &[OCTETS, TEXT, NO_DATA, TYPED, ARRAY, STRING, OUTBOX_PYTHON], "partitionkey", &JS_NULL_PARTITIONKEY, InventsNull),
    known(JavaScript, Structured, UsToPeer, &[NO_TIME], "error", &JS_NO_TIME, Fails("RangeError")),
    // cloudevents-sdk, without serde_json's arbitrary_precision
    Known {
        build: Build::WithoutArbitraryPrecision,
        ..known(Rust, Binary, PeerToUs, &[ORDER], "data", &RUST_BIG_INT, NumbersViaSerdeValue)
    },
    Known {
        build: Build::WithoutArbitraryPrecision,
        ..known(Rust, Structured, PeerToUs, &[ORDER], "data", &RUST_BIG_INT, NumbersViaSerdeValue)
    },
    Known {
        build: Build::WithoutArbitraryPrecision,
        ..known(Rust, Structured, UsToPeer, &[ORDER, OUTBOX_ORDER], "data", &RUST_BIG_INT, NumbersViaSerdeValue)
    },
    // python-outbox-core writes
    known(PythonOutboxCore, Structured, PeerToUs, &["3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f02", "3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f04"], "time (RFC 3339)", &OUTBOX_NAIVE_TIME, NotRfc3339),
];

// ---------------------------------------------------------------------------------------------
// Observations

/// What happened to one event on one path.
#[derive(Debug)]
struct Observation {
    peer: Peer,
    mode: Mode,
    direction: Direction,
    case: String,
    /// The attributes that differ from what was meant; `error` when the event could not be
    /// read at all (then the others, if any, come from a second reading, see [`read_message`]).
    diffs: Vec<Diff>,
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            PeerToUs => "peer -> us",
            UsToPeer => "us -> peer",
        };
        write!(
            f,
            "{} {} {dir}, `{}`",
            self.peer.name(),
            mode_name(self.mode),
            self.case
        )
    }
}

fn failed(text: String) -> Diff {
    Diff {
        attribute: "error".to_owned(),
        expected: None,
        actual: Some(Item::Str(text)),
    }
}

fn compared(mode: Mode, expected: &View, actual: &View) -> Vec<Diff> {
    match mode {
        Binary => View::diff(&expected.as_binary(), &actual.as_binary()),
        Structured => View::diff(expected, actual),
    }
}

// ---------------------------------------------------------------------------------------------
// The events

fn read_lines(path: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read(peers::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect()
}

/// One event sent through the peers, with its label: its `id` for the interop events,
/// `outbox/<profile>/<event_id>` for the python-outbox-core events, its `event_id` for the
/// python-outbox-core rows.
struct Case {
    label: String,
    event: WireEvent<'static>,
}

/// `fixtures/interop/events.jsonl`.
fn interop_events() -> Vec<Case> {
    read_lines("fixtures/interop/events.jsonl")
        .iter()
        .map(|line| {
            let event = WireEvent::from_json(line)
                .unwrap_or_else(|e| panic!("events.jsonl: {e}"))
                .into_owned();
            Case {
                label: event.id().to_owned(),
                event,
            }
        })
        .collect()
}

/// A row of `fixtures/python-outbox-core/cloudevents.jsonl`.
struct FormatterRow {
    event: OutboxEvent<Payload>,
    formatter_source: String,
    /// `CloudEventsFormatter(formatter_source).format(event)`, as written.
    cloudevent: String,
}

fn formatter_rows() -> Vec<FormatterRow> {
    #[derive(serde::Deserialize)]
    struct Row<'a> {
        #[serde(borrow)]
        event: &'a RawValue,
        partition_key: String,
        formatter_source: String,
        #[serde(borrow)]
        cloudevent: &'a RawValue,
    }
    read_lines("fixtures/python-outbox-core/cloudevents.jsonl")
        .iter()
        .map(|line| {
            let row: Row<'_> = serde_json::from_slice(line).expect("cloudevents.jsonl row");
            let event = OutboxEvent::<Payload>::from_message_json(row.event.get().as_bytes())
                .expect("to_message() JSON")
                .with_partition_key(row.partition_key)
                .expect("a partition key");
            FormatterRow {
                event,
                formatter_source: row.formatter_source,
                cloudevent: row.cloudevent.get().to_owned(),
            }
        })
        .collect()
}

/// The python-outbox-core events (`fixtures/python-outbox-core/events.jsonl`) in both
/// profiles.
fn outbox_events() -> Vec<Case> {
    let mut cases = Vec::new();
    for line in read_lines("fixtures/python-outbox-core/events.jsonl") {
        let event = OutboxEvent::<Payload>::from_message_json(&line).expect("to_message() JSON");
        for (name, profile) in [
            ("canonical", Profile::Canonical),
            ("python-outbox-core", Profile::python_outbox_core()),
        ] {
            let wire = event.to_wire(&profile).expect("outbox event").into_owned();
            cases.push(Case {
                label: format!("outbox/{name}/{}", event.event_id()),
                event: wire,
            });
        }
    }
    cases
}

/// This crate's message; an event without data is sent as the binding says, without a value.
fn encode(event: &WireEvent<'_>, mode: Mode) -> Message {
    Encoder::new(mode)
        .allow_tombstones(true)
        .encode_wire(event)
        .unwrap_or_else(|e| panic!("encoding `{}` in {mode}: {e}", event.id()))
}

// ---------------------------------------------------------------------------------------------
// Peer -> us

/// The committed messages of the Python and JavaScript peers.
fn fixtures_to_us(peer: Peer, out: &mut Vec<Observation>) {
    let expected: BTreeMap<String, View> = interop_events()
        .iter()
        .map(|c| (c.label.clone(), View::of_wire(&c.event)))
        .collect();
    for &mode in peer.modes() {
        let path = format!(
            "fixtures/interop/from-{}-{}.jsonl",
            peer.name(),
            mode_name(mode)
        );
        let lines = read_lines(&path);
        assert_eq!(lines.len(), expected.len(), "{path}: one line per event");
        for line in lines {
            #[derive(serde::Deserialize)]
            struct Row<'a> {
                name: String,
                #[serde(borrow)]
                message: Option<&'a RawValue>,
                error: Option<String>,
            }
            let row: Row<'_> = serde_json::from_slice(&line).expect("fixture row");
            let want = expected
                .get(&row.name)
                .unwrap_or_else(|| panic!("{path}: `{}` is not in events.jsonl", row.name));
            let diffs = match (row.message, row.error) {
                (Some(message), None) => {
                    let record = Record::from_json(message.get().as_bytes())
                        .unwrap_or_else(|e| panic!("{path}: `{}`: {e}", row.name));
                    read_message(mode, &record.message, want)
                }
                (None, Some(error)) => vec![failed(format!("the peer raised {error}"))],
                _ => panic!("{path}: `{}` needs one of `message` and `error`", row.name),
            };
            out.push(Observation {
                peer,
                mode,
                direction: PeerToUs,
                case: row.name,
                diffs,
            });
        }
    }
}

/// Decodes a peer's message. When it is no CloudEvent message at all but its value holds an
/// event in the JSON format (a structured-mode message under the wrong `content-type`), the
/// value is also read as such, so the rest of the event is still compared.
fn read_message(mode: Mode, message: &Message, want: &View) -> Vec<Diff> {
    match decode(&message.as_ref()) {
        Ok(event) => compared(mode, want, &View::of_wire(&event)),
        Err(e) => {
            let mut diffs = vec![failed(format!("{:?}: {e}", e.kind()))];
            if e.kind() == ErrorKind::NotACloudEvent
                && let Some(Ok(event)) = message.value.as_deref().map(WireEvent::from_json)
            {
                diffs.extend(compared(mode, want, &View::of_wire(&event)));
            }
            diffs
        }
    }
}

/// The Rust SDK writes each event: read by its JSON format, then written by its binary-mode
/// walk (`BinaryDeserializer for Event`) or its JSON format.
fn rust_sdk_to_us(out: &mut Vec<Observation>) {
    let lines = read_lines("fixtures/interop/events.jsonl");
    for (line, case) in lines.iter().zip(interop_events()) {
        let want = View::of_wire(&case.event);
        for mode in [Binary, Structured] {
            let diffs = match serde_json::from_slice::<cloudevents::Event>(line) {
                Err(e) => vec![failed(format!("its JSON format refused the event: {e}"))],
                Ok(event) => {
                    let message = match mode {
                        Binary => rust_sdk::Outgoing::binary(event),
                        Structured => rust_sdk::Outgoing::structured(event),
                    };
                    match message {
                        Ok(message) => read_message(mode, &message, &want),
                        Err(e) => vec![failed(format!("the peer raised {e}"))],
                    }
                }
            };
            out.push(Observation {
                peer: Rust,
                mode,
                direction: PeerToUs,
                case: case.label.clone(),
                diffs,
            });
        }
    }
}

/// python-outbox-core's `CloudEventsFormatter` output as a structured-mode message, read in the
/// python-outbox-core profile, must give the event it formatted. Its `time` must also be an
/// RFC 3339 date-time (the CloudEvents type of `time`), which the lenient reader here does not
/// need.
fn formatter_to_us(out: &mut Vec<Observation>) {
    for row in formatter_rows() {
        let message = Message {
            key: None,
            headers: vec![Header::new("content-type", STRUCTURED_CONTENT_TYPE)],
            value: Some(row.cloudevent.clone().into_bytes()),
        };
        let diffs = match OutboxEvent::<Payload>::from_message(
            &message.as_ref(),
            &Profile::python_outbox_core(),
        ) {
            Err(e) => vec![failed(format!("{:?}: {e}", e.kind()))],
            Ok(event) => {
                let mut diffs = View::diff(&outbox_view(&row.event), &outbox_view(&event));
                diffs.extend(rfc3339_time(&row.cloudevent));
                diffs
            }
        };
        out.push(Observation {
            peer: PythonOutboxCore,
            mode: Structured,
            direction: PeerToUs,
            case: row.event.event_id().to_string(),
            diffs,
        });
    }
}

/// An outbox event compared through its canonical CloudEvent, which carries every field.
fn outbox_view(event: &OutboxEvent<Payload>) -> View {
    View::of_wire(&event.to_wire(&Profile::Canonical).expect("outbox event"))
}

/// A `time (RFC 3339)` difference when the event's `time` is not an RFC 3339 date-time.
fn rfc3339_time(cloudevent: &str) -> Option<Diff> {
    let json = Json::parse(cloudevent).expect("formatter output is JSON");
    let time = json.get("time")?.as_str()?;
    DateTime::parse_from_rfc3339(time).is_err().then(|| Diff {
        attribute: "time (RFC 3339)".to_owned(),
        expected: None,
        actual: Some(Item::Str(time.to_owned())),
    })
}

// ---------------------------------------------------------------------------------------------
// Us -> peer

/// Every event this crate sends to the CloudEvents peers, with its message in `mode`.
fn our_messages(mode: Mode) -> Vec<(Case, Message)> {
    interop_events()
        .into_iter()
        .chain(outbox_events())
        .map(|case| {
            let message = encode(&case.event, mode);
            (case, message)
        })
        .collect()
}

fn interchange(message: &Message) -> Vec<u8> {
    Record::from(message.clone()).to_json()
}

/// Runs the three script peers at once on both modes' messages and reads what they print.
fn us_to_script_peers(out: &mut Vec<Observation>) {
    let sent: Vec<(Mode, Case, Message)> = [Binary, Structured]
        .into_iter()
        .flat_map(|mode| {
            our_messages(mode)
                .into_iter()
                .map(move |(case, message)| (mode, case, message))
        })
        .collect();
    let lines: Vec<Vec<u8>> = sent.iter().map(|(_, _, m)| interchange(m)).collect();
    let running: Vec<_> = [
        (PythonCore, Decoder::PythonCore),
        (PythonV1, Decoder::PythonV1),
        (JavaScript, Decoder::JavaScript),
    ]
    .into_iter()
    .map(|(peer, decoder)| (peer, peers::start(decoder, peer.name(), &lines)))
    .collect();
    for (peer, run) in running {
        for ((mode, case, _), line) in sent.iter().zip(run.wait()) {
            out.push(Observation {
                peer,
                mode: *mode,
                direction: UsToPeer,
                case: case.label.clone(),
                diffs: peer_read(*mode, &View::of_wire(&case.event), &line),
            });
        }
    }
}

/// Compares one line a peer decoder printed with the event sent.
fn peer_read(mode: Mode, want: &View, line: &str) -> Vec<Diff> {
    let row = Json::parse(line).unwrap_or_else(|e| panic!("peer output {line}: {e}"));
    if let Some(error) = row.get("error") {
        return vec![failed(format!(
            "the peer raised {}",
            error.as_str().unwrap_or_default()
        ))];
    }
    let event = row
        .get("ok")
        .unwrap_or_else(|| panic!("peer output {line}: neither `ok` nor `error`"));
    match View::of_peer(event) {
        Ok(seen) => compared(mode, want, &seen),
        Err(e) => vec![failed(format!("unreadable peer output: {e}"))],
    }
}

/// The Rust SDK reads this crate's messages through its own message traits.
fn us_to_rust_sdk(out: &mut Vec<Observation>) {
    for mode in [Binary, Structured] {
        for (case, message) in our_messages(mode) {
            let diffs = match rust_sdk::to_event(&message) {
                Ok(event) => compared(mode, &View::of_wire(&case.event), &View::of_sdk(&event)),
                Err(e) => vec![failed(format!("the peer raised {e}"))],
            };
            out.push(Observation {
                peer: Rust,
                mode,
                direction: UsToPeer,
                case: case.label,
                diffs,
            });
        }
    }
}

/// A python-outbox-core consumer reads this crate's python-outbox-core-profile messages with
/// the package's own event classes: the event must be the one sent, and the package's
/// formatter, given that event, must write exactly what this crate wrote.
fn us_to_outbox_core(out: &mut Vec<Observation>) {
    let rows = formatter_rows();
    let sent: Vec<Message> = rows
        .iter()
        .map(|row| {
            let profile = Profile::PythonOutboxCore {
                source: Some(row.formatter_source.clone()),
            };
            Encoder::new(Structured)
                .profile(profile)
                .encode(&row.event)
                .expect("python-outbox-core profile")
        })
        .collect();
    let lines: Vec<Vec<u8>> = sent.iter().map(interchange).collect();
    let printed = peers::start(Decoder::PythonOutboxCore, PythonOutboxCore.name(), &lines).wait();
    for ((row, message), line) in rows.iter().zip(&sent).zip(printed) {
        out.push(Observation {
            peer: PythonOutboxCore,
            mode: Structured,
            direction: UsToPeer,
            case: row.event.event_id().to_string(),
            diffs: outbox_core_read(row, message, &line),
        });
    }
}

fn outbox_core_read(row: &FormatterRow, message: &Message, line: &str) -> Vec<Diff> {
    #[derive(serde::Deserialize)]
    struct Printed<'a> {
        #[serde(borrow)]
        ok: Option<Read<'a>>,
        error: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Read<'a> {
        #[serde(borrow)]
        event: &'a RawValue,
        partition_key: String,
        #[serde(borrow)]
        cloudevent: &'a RawValue,
    }
    let printed: Printed<'_> = serde_json::from_str(line).expect("decoder output");
    let read = match (printed.ok, printed.error) {
        (Some(read), _) => read,
        (None, error) => {
            return vec![failed(format!(
                "the peer raised {}",
                error.unwrap_or_default()
            ))];
        }
    };
    let event = match OutboxEvent::<Payload>::from_message_json(read.event.get().as_bytes()) {
        Ok(event) => match event.with_partition_key(read.partition_key) {
            Ok(event) => event,
            Err(e) => return vec![failed(format!("its partition key does not read here: {e}"))],
        },
        Err(e) => return vec![failed(format!("its to_message() does not read here: {e}"))],
    };
    let mut diffs = View::diff(&outbox_view(&row.event), &outbox_view(&event));
    let value = message.value.as_deref().unwrap_or_default();
    let ours = Json::parse(std::str::from_utf8(value).expect("UTF-8")).expect("JSON value");
    let theirs = Json::parse(read.cloudevent.get()).expect("formatter output");
    let as_view = |json: &Json| View::of_peer(json).expect("a CloudEvent object");
    diffs.extend(
        View::diff(&as_view(&ours), &as_view(&theirs))
            .into_iter()
            .map(|d| Diff {
                attribute: format!("formatter: {}", d.attribute),
                ..d
            }),
    );
    diffs
}

// ---------------------------------------------------------------------------------------------
// Everything, once per test run

fn observations() -> &'static [Observation] {
    static ALL: OnceLock<Vec<Observation>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = Vec::new();
        for peer in [PythonCore, PythonV1, JavaScript] {
            fixtures_to_us(peer, &mut out);
        }
        rust_sdk_to_us(&mut out);
        formatter_to_us(&mut out);
        us_to_script_peers(&mut out);
        us_to_rust_sdk(&mut out);
        us_to_outbox_core(&mut out);
        out
    })
}

fn active() -> impl Iterator<Item = &'static Known> {
    KNOWN.iter().filter(|k| k.build.applies())
}

/// The row that explains `diff` in `o`, if any.
fn explanation(o: &Observation, diff: &Diff) -> Option<&'static Known> {
    active().find(|k| k.covers(o) && k.attribute == diff.attribute)
}

/// Checks the observations of `peers` in `direction` against [`KNOWN`]: each difference must
/// be a known defect with exactly its effect, and each known defect must still happen at every
/// event it names.
fn check(peers: &[Peer], direction: Direction) {
    let observed: Vec<&Observation> = observations()
        .iter()
        .filter(|o| peers.contains(&o.peer) && o.direction == direction)
        .collect();
    assert!(!observed.is_empty(), "nothing observed for {peers:?}");
    let mut problems = Vec::new();
    for o in &observed {
        for diff in &o.diffs {
            match explanation(o, diff) {
                None => problems.push(format!("{o}: unexplained difference {diff}")),
                Some(k) if !k.effect.holds(diff.expected.as_ref(), diff.actual.as_ref()) => {
                    problems.push(format!(
                        "{o}: {diff}, which is not what {:?} does ({})",
                        k.effect, k.defect.name
                    ));
                }
                Some(_) => {}
            }
        }
    }
    for k in active().filter(|k| peers.contains(&k.peer) && k.direction == direction) {
        let covered: Vec<&&Observation> = observed.iter().filter(|o| k.covers(o)).collect();
        if covered.is_empty() {
            problems.push(format!(
                "{} {}: the row for `{}` ({}) names no event that was sent",
                k.peer.name(),
                mode_name(k.mode),
                k.attribute,
                k.defect.name
            ));
        }
        for o in covered {
            if !o.diffs.iter().any(|d| d.attribute == k.attribute) {
                problems.push(format!(
                    "{o}: known defect no longer happens at `{}`: {} (fixed upstream? update KNOWN)",
                    k.attribute, k.defect.name
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} interop problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn we_read_what_the_script_peers_write() {
    check(&[PythonCore, PythonV1, JavaScript], PeerToUs);
}

#[test]
fn the_script_peers_read_what_we_write() {
    check(&[PythonCore, PythonV1, JavaScript], UsToPeer);
}

#[test]
fn rust_sdk_both_ways() {
    check(&[Rust], PeerToUs);
    check(&[Rust], UsToPeer);
}

#[test]
fn python_outbox_core_both_ways() {
    check(&[PythonOutboxCore], PeerToUs);
    check(&[PythonOutboxCore], UsToPeer);
}

/// Every path covers every event it was given: nothing is dropped between sending and
/// comparing.
#[test]
fn every_event_is_observed_on_every_path() {
    let interop = interop_events().len();
    let outbox = outbox_events().len();
    let formatter = formatter_rows().len();
    for peer in Peer::ALL {
        for &mode in peer.modes() {
            for direction in [PeerToUs, UsToPeer] {
                let count = observations()
                    .iter()
                    .filter(|o| o.peer == peer && o.mode == mode && o.direction == direction)
                    .count();
                let want = match (peer, direction) {
                    (PythonOutboxCore, _) => formatter,
                    (_, PeerToUs) => interop,
                    (_, UsToPeer) => interop + outbox,
                };
                assert_eq!(
                    count,
                    want,
                    "{} {} {direction:?}",
                    peer.name(),
                    mode_name(mode)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix

fn matrix() -> String {
    let cell = |peer: Peer, mode: Mode, direction: Direction| {
        let mut labels: Vec<String> = Vec::new();
        let mut add = |label: String| {
            if !labels.contains(&label) {
                labels.push(label);
            }
        };
        for o in observations()
            .iter()
            .filter(|o| o.peer == peer && o.mode == mode && o.direction == direction)
        {
            for diff in &o.diffs {
                match explanation(o, diff) {
                    Some(k) => add(k.label()),
                    None => add(format!("unexplained: `{}`", diff.attribute)),
                }
            }
        }
        // A row for another build is part of the story in every build.
        for k in KNOWN.iter().filter(|k| {
            !k.build.applies() && k.peer == peer && k.mode == mode && k.direction == direction
        }) {
            add(k.label());
        }
        if labels.is_empty() {
            "pass".to_owned()
        } else {
            labels.join("<br>")
        }
    };
    let mut out = String::new();
    out.push_str(
        "<!-- Generated by tests/interop.rs from the pinned peers; do not edit. \
         Regenerate: UPDATE_FIXTURES=1 cargo test --all-features --test interop -->\n\n",
    );
    out.push_str("| peer | mode | peer → us | us → peer |\n|---|---|---|---|\n");
    for peer in Peer::ALL {
        for &mode in peer.modes() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                peer.name(),
                mode_name(mode),
                cell(peer, mode, PeerToUs),
                cell(peer, mode, UsToPeer)
            );
        }
    }
    out.push_str("\nThe peers, pinned in `scripts/peers/`:\n\n");
    for peer in Peer::ALL {
        let _ = writeln!(out, "- {}: {}", peer.name(), peer.description());
    }
    out.push_str(
        "\nPeer → us: the peer writes each event of `fixtures/interop/events.jsonl` (for \
         python-outbox-core: its formatter's output in `fixtures/python-outbox-core/`) and this \
         crate reads it. Us → peer: this crate writes the same events, and the python-outbox-core \
         events in both profiles, and the peer reads them. `pass`: every attribute, extension \
         and the data came back equal (`time` as an instant; in binary mode, extensions by their \
         string form).\n",
    );
    out
}

#[test]
fn matrix_is_current() {
    let path = peers::root().join("fixtures/interop/MATRIX.md");
    let generated = matrix();
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write MATRIX.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "fixtures/interop/MATRIX.md is out of date; regenerate it with \
         `UPDATE_FIXTURES=1 cargo test --all-features --test interop`.\nGenerated:\n{generated}"
    );
}

// ---------------------------------------------------------------------------------------------
// This crate's own conversions of cloudevents-sdk events

/// Each interop event, read by cloudevents-sdk's JSON format, converts to this crate's event
/// with every attribute and the data unchanged, survives both Kafka modes, and converts back to
/// an equal `cloudevents::Event` (structured mode) or one equal but for the binding's
/// string-typed attributes and untyped data (binary mode).
#[test]
fn cloudevents_sdk_events_round_trip_through_both_modes() {
    for line in read_lines("fixtures/interop/events.jsonl") {
        let sdk: cloudevents::Event = serde_json::from_slice(&line).expect("SDK JSON format");
        let wire = WireEvent::try_from(&sdk).unwrap_or_else(|e| panic!("{}: {e}", sdk.id()));
        let diffs = View::diff(&View::of_sdk(&sdk), &View::of_wire(&wire));
        assert!(diffs.is_empty(), "{}: {diffs:?}", sdk.id());
        for mode in [Binary, Structured] {
            let message = encode(&wire, mode);
            let back = decode(&message.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", sdk.id()));
            let back = cloudevents::Event::try_from(back).expect("to cloudevents::Event");
            match mode {
                Structured => assert_eq!(back, sdk, "{mode}"),
                Binary => {
                    let diffs = compared(mode, &View::of_sdk(&sdk), &View::of_sdk(&back));
                    assert!(diffs.is_empty(), "{} {mode}: {diffs:?}", sdk.id());
                }
            }
        }
    }
}

/// The effects tell the defects apart: each holds for what it names and not for its
/// neighbours, so a peer that changes how it breaks an attribute is caught.
#[test]
fn effects_tell_defects_apart() {
    let t = |s: &str| Item::Time(s.parse().unwrap());
    let nanos = t("2024-05-06T07:08:09.123456789Z");
    assert!(TimeMicros.holds(Some(&nanos), Some(&t("2024-05-06T07:08:09.123456Z"))));
    assert!(!TimeMillis.holds(Some(&nanos), Some(&t("2024-05-06T07:08:09.123456Z"))));
    assert!(TimeMillis.holds(Some(&nanos), Some(&t("2024-05-06T07:08:09.123Z"))));
    assert!(!TimeMillis.holds(Some(&nanos), Some(&nanos)));
    assert!(InventsTime.holds(None, Some(&t(PINNED_NOW))));
    assert!(!InventsTime.holds(None, Some(&nanos)));
    let json = |s: &str| Item::Data(Data::Json(Json::parse(s).unwrap()));
    let big = json(r#"{"n":18446744073709551617,"m":9007199254740993}"#);
    let js = json(r#"{"n":18446744073709552000,"m":9007199254740992}"#);
    let serde = json(r#"{"n":1.8446744073709552e19,"m":9007199254740993}"#);
    assert!(NumbersViaF64.holds(Some(&big), Some(&js)));
    assert!(!NumbersViaF64.holds(Some(&big), Some(&serde)));
    assert!(NumbersViaSerdeValue.holds(Some(&big), Some(&serde)));
    assert!(!NumbersViaSerdeValue.holds(Some(&big), Some(&js)));
    assert!(!NumbersViaF64.holds(Some(&big), Some(&big)));
    let s = |v: &str| Item::Str(v.to_owned());
    assert!(PythonBool.holds(Some(&Item::Bool(true)), Some(&s("True"))));
    assert!(PythonBool.holds(Some(&s("false")), Some(&s("False"))));
    assert!(!PythonBool.holds(Some(&s("false")), Some(&s("True"))));
    let key = Item::Other(Json::parse(r#"{"base64":"b3JnLTc="}"#).unwrap());
    assert!(KeyAsBytes.holds(Some(&s("org-7")), Some(&key)));
    assert!(!KeyAsBytes.holds(Some(&s("org-8")), Some(&key)));
    let text = Item::Data(Data::Text("Zoë".to_owned()));
    assert!(TextJsonQuoted.holds(
        Some(&text),
        Some(&Item::Data(Data::Bytes(br#""Zo\u00eb""#.to_vec())))
    ));
    assert!(!TextJsonQuoted.holds(Some(&text), Some(&Item::Data(Data::Bytes("Zoë".into())))));
    assert!(TextAsJsonString.holds(Some(&text), Some(&json(r#""Zoë""#))));
    assert!(Fails("KeyError").holds(None, Some(&s("the peer raised KeyError: 'x'"))));
    assert!(!Fails("KeyError").holds(None, Some(&s("the peer raised TypeError"))));
    assert!(NotRfc3339.holds(None, Some(&s("2024-05-06T07:08:09"))));
    assert!(!NotRfc3339.holds(None, Some(&s("2024-05-06T07:08:09+00:00"))));
    assert!(Dropped.holds(Some(&s("x")), None));
    assert!(!Dropped.holds(None, Some(&s("x"))));
}
