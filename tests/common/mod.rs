//! Generators and helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use outbox_cloudevents::{ExtensionValue, OutboxEvent, Payload, WireEvent};
use proptest::prelude::*;
use uuid::Uuid;

/// A path under `fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// The non-empty lines of a fixture file.
pub fn fixture_lines(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(path)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Compares `actual` with the golden file at `path`, or rewrites the file when
/// `UPDATE_FIXTURES=1` (the one switch that regenerates every golden file).
pub fn golden(path: &str, actual: &str) {
    let file = fixture(path);
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_FIXTURES=1 to create it",
            file.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from what the code produces now; review the change and run with UPDATE_FIXTURES=1\n--- expected\n{expected}\n--- actual\n{actual}",
        file.display()
    );
}

/// A JSON string literal for `s`.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        Just(String::new()),
        Just("Zoë 🚀 東京 \"quoted\" \\ back\nline\ttab \u{1} \u{7f}".to_owned()),
    ]
    .prop_map(|s| quoted(&s))
}

fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{20,40}",
        Just("9007199254740993".to_owned()),
        Just("0.1".to_owned()),
        Just("1e300".to_owned()),
        Just("-2.5E-7".to_owned()),
        Just("1.50".to_owned()),
        Just("0".to_owned()),
        Just("-0".to_owned()),
    ]
}

/// JSON text of any value: unicode, escapes, big integers, odd number spellings, nesting.
pub fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        json_number(),
        json_string(),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            json_object_of(inner),
        ]
    })
}

fn json_object_of(values: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::collection::vec(("[a-z]{1,3}|\\PC{1,6}", values), 0..6).prop_map(|members| {
        let mut seen = std::collections::HashSet::new();
        let body: Vec<String> = members
            .into_iter()
            .filter(|(k, _)| seen.insert(format!("p_{k}")))
            .map(|(k, v)| format!("{}:{v}", quoted(&format!("p_{k}"))))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// A JSON object payload (the `to_message()` layout needs one); sometimes empty, sometimes
/// about 70 KB.
pub fn json_object() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => json_object_of(json_value()),
        1 => Just("{}".to_owned()),
        1 => "[a-z]{1,4}".prop_map(|s| format!(r#"{{"p_big":"{}"}}"#, s.repeat(70_000 / s.len()))),
    ]
}

pub fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Instants from 1970 to 2099 at second, milli, micro and nanosecond precision.
pub fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800, 0u32..1_000_000_000, 0usize..4).prop_map(|(secs, nanos, precision)| {
        let nanos = match precision {
            0 => 0,
            1 => nanos / 1_000_000 * 1_000_000,
            2 => nanos / 1_000 * 1_000,
            _ => nanos,
        };
        DateTime::from_timestamp(secs, nanos).unwrap()
    })
}

pub fn event_type() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}(\\.[a-zA-Z0-9_-]{1,8}){1,3}"
}

pub fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,15}",
        "https://example\\.com/[a-z]{1,8}",
        "/[a-z]{1,8}/[a-z0-9]{1,4}",
        Just("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66".to_owned()),
    ]
}

/// A non-empty CloudEvents String (no control characters).
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{1,16}", "[a-z0-9-]{1,12}"]
}

pub fn extension_value() -> impl Strategy<Value = ExtensionValue<'static>> {
    prop_oneof![
        "\\PC{0,10}".prop_map(|s| ExtensionValue::String(s.into())),
        any::<bool>().prop_map(ExtensionValue::Boolean),
        any::<i32>().prop_map(|i| ExtensionValue::Integer(i.into())),
    ]
}

/// Extensions beyond the outbox ones, named `x…` so they never clash.
pub fn extra_extensions() -> impl Strategy<Value = Vec<(String, ExtensionValue<'static>)>> {
    prop::collection::btree_map("x[a-z0-9]{0,8}", extension_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

/// An outbox event with every optional part present or absent.
pub fn outbox_event() -> impl Strategy<Value = OutboxEvent<Payload>> {
    let ids = (
        uuid(),
        proptest::option::of(uuid()),
        proptest::option::of(uuid()),
    );
    let metadata = (
        event_type(),
        text(),
        instant(),
        source(),
        "[0-9]\\.[0-9](\\.[0-9])?",
    );
    let extras = (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of("https://schemas\\.example\\.com/[a-z]{1,8}\\.json"),
        extra_extensions(),
    );
    (ids, metadata, json_object(), extras).prop_map(
        |((id, correlation, causation), (ty, aggregate, at, source, version), payload, extras)| {
            let (partition_key, subject, _, dataschema, extensions) = extras;
            let mut event = OutboxEvent::new(
                id,
                ty,
                aggregate,
                at,
                source,
                Payload::from_json(payload).unwrap(),
            )
            .unwrap()
            .with_data_version(version)
            .unwrap();
            if let Some(id) = correlation {
                event = event.with_correlation_id(id);
            }
            if let Some(id) = causation {
                event = event.with_causation_id(id);
            }
            if let Some(key) = partition_key {
                event = event.with_partition_key(key).unwrap();
            }
            if let Some(subject) = subject {
                event = event.with_subject(subject).unwrap();
            }
            if let Some(schema) = dataschema {
                event = event.with_dataschema(schema).unwrap();
            }
            for (name, value) in extensions {
                event = event.with_extension(&name, value).unwrap();
            }
            event
        },
    )
}

/// An outbox event as [`outbox_event`] makes, with a `datacontenttype` of its own or none:
/// a JSON one, or one that is not JSON (which binary mode cannot carry a JSON payload under).
pub fn outbox_event_with_content_type() -> impl Strategy<Value = OutboxEvent<Payload>> {
    let content_type = proptest::option::of(prop_oneof![
        Just("application/json"),
        Just("application/vnd.gridflow+json; charset=utf-8"),
        Just("text/plain"),
        Just("application/octet-stream"),
    ]);
    (outbox_event(), content_type)
        .prop_map(|(event, ct)| event.with_content_type(ct.map(str::to_owned)).unwrap())
}

/// The data of a CloudEvent in the JSON format: a JSON value, a text, bytes, or none.
fn data_member() -> impl Strategy<Value = (Option<String>, String)> {
    prop_oneof![
        (
            prop_oneof![
                Just(None),
                Just(Some("application/json".to_owned())),
                Just(Some(
                    "application/vnd.gridflow+json; charset=utf-8".to_owned()
                )),
            ],
            json_value()
        )
            .prop_map(|(ct, v)| (ct, format!(r#","data":{v}"#))),
        "\\PC{0,20}".prop_map(|s| (
            Some("text/plain".to_owned()),
            format!(r#","data":{}"#, quoted(&s))
        )),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(b);
            (
                Some("application/octet-stream".to_owned()),
                format!(r#","data_base64":"{b64}""#),
            )
        }),
        Just((Some("application/json".to_owned()), String::new())),
    ]
}

fn extension_json(value: &ExtensionValue<'_>) -> String {
    match value {
        ExtensionValue::String(s) => quoted(s),
        ExtensionValue::Boolean(b) => b.to_string(),
        ExtensionValue::Integer(i) => i.to_string(),
        other => panic!("no JSON form for {other:?}"),
    }
}

/// A CloudEvent in the JSON format that carries the outbox attributes, and more: `subject`,
/// `dataschema`, unknown extensions of every type, any kind of data.
pub fn cloudevent_json() -> impl Strategy<Value = String> {
    let outbox = (
        uuid(),
        event_type(),
        source(),
        instant(),
        text(),
        "[0-9]\\.[0-9]",
        proptest::option::of(uuid()),
        proptest::option::of(uuid()),
        proptest::option::of(text()),
    );
    let more = (
        proptest::option::of(text()),
        proptest::option::of("https://schemas\\.example\\.com/[a-z]{1,8}"),
        extra_extensions(),
        data_member(),
    );
    (outbox, more).prop_map(
        |((id, ty, source, at, aggregate, version, corr, caus, key), (subject, schema, exts, (ct, data)))| {
            let time = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            let mut json = format!(
                r#"{{"specversion":"1.0","id":"{id}","source":{},"type":{},"time":"{time}","aggregateid":{},"dataversion":"{version}","partitionkey":{}"#,
                quoted(&source),
                quoted(&ty),
                quoted(&aggregate),
                quoted(key.as_deref().unwrap_or(&aggregate)),
            );
            let optional = [
                ("datacontenttype", ct),
                ("subject", subject),
                ("dataschema", schema),
                ("correlationid", corr.map(|u| u.to_string())),
                ("causationid", caus.map(|u| u.to_string())),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    json.push_str(&format!(r#","{name}":{}"#, quoted(&value)));
                }
            }
            for (name, value) in exts {
                json.push_str(&format!(r#","{name}":{}"#, extension_json(&value)));
            }
            json.push_str(&data);
            json.push('}');
            json
        },
    )
}

/// Parses a CloudEvent in the JSON format and detaches it.
pub fn wire(json: &str) -> WireEvent<'static> {
    WireEvent::from_json(json.as_bytes()).unwrap().into_owned()
}

/// `json` as serde_json's `Value` writes it: key order kept, numbers as serde_json spells
/// them (exact with the `arbitrary_precision` feature).
pub fn normalized_json(json: &str) -> String {
    serde_json::to_string(&serde_json::from_str::<serde_json::Value>(json).unwrap()).unwrap()
}
