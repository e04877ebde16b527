//! One comparable form for a CloudEvent however it was obtained: decoded by this crate, rendered
//! by a peer script, or held by `cloudevents::Event`. Attribute by attribute, `time` as an
//! instant (RFC 3339 allows many spellings of one instant), data by meaning.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use cloudevents::AttributesReader;
use outbox_cloudevents::{Data, ExtensionValue, WireEvent};

use super::json::Json;

/// An attribute's value, or the data.
#[derive(Debug, Clone)]
pub enum Item {
    Str(String),
    Bool(bool),
    Int(i64),
    Time(DateTime<Utc>),
    /// Any other JSON value a peer put in an attribute (`null`, `{"base64": ...}`).
    Other(Json),
    Data(Payload),
}

/// The data of an event.
#[derive(Debug, Clone)]
pub enum Payload {
    Json(Json),
    Text(String),
    Bytes(Vec<u8>),
}

impl PartialEq for Payload {
    /// Text and bytes are the same data when the bytes are the text's UTF-8: binary mode
    /// cannot tell them apart, and the JSON format writes either.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Payload::Json(a), Payload::Json(b)) => a == b,
            (Payload::Json(_), _) | (_, Payload::Json(_)) => false,
            (a, b) => a.bytes() == b.bytes(),
        }
    }
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Json(_) => &[],
            Payload::Text(text) => text.as_bytes(),
            Payload::Bytes(bytes) => bytes,
        }
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Item::Str(a), Item::Str(b)) => a == b,
            (Item::Bool(a), Item::Bool(b)) => a == b,
            (Item::Int(a), Item::Int(b)) => a == b,
            (Item::Time(a), Item::Time(b)) => a == b,
            (Item::Other(a), Item::Other(b)) => a == b,
            (Item::Data(a), Item::Data(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Str(s) => write!(f, "{s:?}"),
            Item::Bool(b) => write!(f, "{b}"),
            Item::Int(i) => write!(f, "{i}"),
            Item::Time(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            Item::Other(json) => write!(f, "{json}"),
            Item::Data(Payload::Json(json)) => write!(f, "json {json}"),
            Item::Data(Payload::Text(text)) => write!(f, "text {text:?}"),
            Item::Data(Payload::Bytes(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => write!(f, "bytes {text:?}"),
                Err(_) => write!(f, "bytes base64 {}", BASE64.encode(bytes)),
            },
        }
    }
}

/// A CloudEvent as a map from attribute name (and `data`) to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View(pub BTreeMap<String, Item>);

/// One attribute that differs between the expected event and what was seen.
#[derive(Debug, Clone)]
pub struct Diff {
    pub attribute: String,
    pub expected: Option<Item>,
    pub actual: Option<Item>,
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |item: &Option<Item>| item.as_ref().map_or("absent".to_owned(), Item::to_string);
        write!(
            f,
            "`{}`: expected {}, got {}",
            self.attribute,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

pub fn is_json_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media.ends_with("/json") || media.ends_with("+json")
}

fn json_payload(bytes: &[u8]) -> Option<Payload> {
    let text = std::str::from_utf8(bytes).ok()?;
    Json::parse(text).ok().map(Payload::Json)
}

impl View {
    /// What this crate holds.
    pub fn of_wire(event: &WireEvent<'_>) -> View {
        let mut map = BTreeMap::new();
        let mut put = |name: &str, item: Item| {
            map.insert(name.to_owned(), item);
        };
        put("specversion", Item::Str("1.0".into()));
        put("id", Item::Str(event.id().into()));
        put("source", Item::Str(event.source().into()));
        put("type", Item::Str(event.ty().into()));
        let optional = [
            ("datacontenttype", event.datacontenttype()),
            ("dataschema", event.dataschema()),
            ("subject", event.subject()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                put(name, Item::Str(value.into()));
            }
        }
        if let Some(time) = event.time() {
            put("time", Item::Time(*time));
        }
        for (name, value) in event.extensions() {
            put(
                name,
                match value {
                    ExtensionValue::String(s) => Item::Str(s.to_string()),
                    ExtensionValue::Boolean(b) => Item::Bool(*b),
                    ExtensionValue::Integer(i) => Item::Int(*i),
                    other => panic!("an extension value this view does not know: {other:?}"),
                },
            );
        }
        if let Some(data) = event.data() {
            let payload = match data {
                Data::Json(raw) => Payload::Json(Json::parse(raw.get()).expect("data is JSON")),
                Data::Text(text) => Payload::Text(text.to_string()),
                Data::Binary(bytes) => Payload::Bytes(bytes.to_vec()),
                other => panic!("data this view does not know: {other:?}"),
            };
            put("data", Item::Data(payload));
        }
        View(map)
    }

    /// What a peer script printed: the CloudEvents JSON format, attributes as the peer typed
    /// them, plus `data_json_text` (JSON data kept as text by the JavaScript script).
    pub fn of_peer(event: &Json) -> Result<View, String> {
        let Json::Object(members) = event else {
            return Err(format!("peer output is not an object: {event}"));
        };
        let content_type = members.get("datacontenttype").and_then(Json::as_str);
        let mut map = BTreeMap::new();
        for (name, value) in members {
            let (name, item) = match (name.as_str(), value) {
                ("data", Json::String(s)) if !is_json_type(content_type) => {
                    ("data", Item::Data(Payload::Text(s.clone())))
                }
                ("data", json) => ("data", Item::Data(Payload::Json(json.clone()))),
                ("data_base64", Json::String(b64)) => {
                    let bytes = BASE64
                        .decode(b64)
                        .map_err(|e| format!("peer data_base64: {e}"))?;
                    ("data", Item::Data(Payload::Bytes(bytes)))
                }
                ("data_json_text", Json::String(text)) => {
                    ("data", Item::Data(Payload::Json(Json::parse(text)?)))
                }
                ("time", Json::String(t)) => ("time", time_item(t)),
                (name, Json::String(s)) => (name, Item::Str(s.clone())),
                (name, Json::Bool(b)) => (name, Item::Bool(*b)),
                (name, Json::Number(n)) => match n.0.parse::<i64>() {
                    Ok(i) => (name, Item::Int(i)),
                    Err(_) => (name, Item::Other(value.clone())),
                },
                (name, other) => (name, Item::Other(other.clone())),
            };
            if map.insert(name.to_owned(), item).is_some() {
                return Err(format!("peer output has `{name}` twice"));
            }
        }
        Ok(View(map))
    }

    /// What `cloudevents::Event` holds. Bytes under a JSON content type are shown parsed
    /// when they parse, as the SDK's binary-mode reader leaves JSON data as bytes.
    pub fn of_sdk(event: &cloudevents::Event) -> View {
        let mut map = BTreeMap::new();
        let mut put = |name: &str, item: Item| {
            map.insert(name.to_owned(), item);
        };
        put("specversion", Item::Str(event.specversion().to_string()));
        put("id", Item::Str(event.id().into()));
        put("source", Item::Str(event.source().to_string()));
        put("type", Item::Str(event.ty().into()));
        if let Some(ct) = event.datacontenttype() {
            put("datacontenttype", Item::Str(ct.into()));
        }
        if let Some(schema) = event.dataschema() {
            put("dataschema", Item::Str(schema.to_string()));
        }
        if let Some(subject) = event.subject() {
            put("subject", Item::Str(subject.into()));
        }
        if let Some(time) = event.time() {
            put("time", Item::Time(*time));
        }
        for (name, value) in event.iter_extensions() {
            put(
                name,
                match value {
                    cloudevents::event::ExtensionValue::String(s) => Item::Str(s.clone()),
                    cloudevents::event::ExtensionValue::Boolean(b) => Item::Bool(*b),
                    cloudevents::event::ExtensionValue::Integer(i) => Item::Int(*i),
                },
            );
        }
        let json_type = is_json_type(event.datacontenttype());
        if let Some(data) = event.data() {
            let payload = match data {
                cloudevents::Data::Json(value) => {
                    Payload::Json(Json::parse(&value.to_string()).expect("serde_json writes JSON"))
                }
                cloudevents::Data::String(text) => Payload::Text(text.clone()),
                cloudevents::Data::Binary(bytes) => json_type
                    .then(|| json_payload(bytes))
                    .flatten()
                    .unwrap_or_else(|| Payload::Bytes(bytes.clone())),
            };
            put("data", Item::Data(payload));
        }
        View(map)
    }

    /// Binary mode carries every attribute as a string (Kafka protocol binding, 3.2.3), so
    /// Boolean and Integer values compare by their canonical string form there.
    pub fn as_binary(&self) -> View {
        View(
            self.0
                .iter()
                .map(|(name, item)| {
                    let item = match item {
                        Item::Bool(b) => Item::Str(b.to_string()),
                        Item::Int(i) => Item::Str(i.to_string()),
                        other => other.clone(),
                    };
                    (name.clone(), item)
                })
                .collect(),
        )
    }

    /// Every attribute that differs, by name.
    pub fn diff(expected: &View, actual: &View) -> Vec<Diff> {
        let names: std::collections::BTreeSet<&String> =
            expected.0.keys().chain(actual.0.keys()).collect();
        names
            .into_iter()
            .filter_map(|name| {
                let e = expected.0.get(name);
                let a = actual.0.get(name);
                (e != a).then(|| Diff {
                    attribute: name.clone(),
                    expected: e.cloned(),
                    actual: a.cloned(),
                })
            })
            .collect()
    }
}

/// A peer's `time`: an instant when it is RFC 3339, else the text as it is.
fn time_item(text: &str) -> Item {
    DateTime::parse_from_rfc3339(text)
        .map(|t| Item::Time(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| Item::Str(text.to_owned()))
}
