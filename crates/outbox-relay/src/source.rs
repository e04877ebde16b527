//! What the engine needs from an outbox table, whatever the database: claim rows in `seq`
//! order, mark them, count them.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use outbox_cloudevents::{ExtensionValue, OutboxEvent, Payload};
use tokio::sync::Notify;

use crate::schema::Table;

/// One unpublished row, its columns as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's `seq`.
    pub seq: i64,
    /// Its partition key: `partition_key`, else `aggregate_id` (computed by the database).
    pub key: String,
    /// The bucket of its key (see the crate docs); always 0 for SQLite.
    pub bucket: i32,
    /// Its `attempts`.
    pub attempts: i64,
    /// The event columns, as text, `None` for SQL `NULL` or a column the table lacks.
    pub fields: RowFields,
}

/// The event columns of a row, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RowFields {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// RFC 3339 text: as stored for a text column, written from the instant for a
    /// timestamp column.
    pub occurred_at: Option<String>,
    pub source: Option<String>,
    pub data_version: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub partition_key: Option<String>,
    pub payload: Option<String>,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
    /// The whole `to_message()` object, for a table with a message column.
    pub message: Option<String>,
}

impl RowFields {
    fn values(&self) -> [&Option<String>; 13] {
        [
            &self.event_id,
            &self.event_type,
            &self.aggregate_id,
            &self.occurred_at,
            &self.source,
            &self.data_version,
            &self.correlation_id,
            &self.causation_id,
            &self.partition_key,
            &self.payload,
            &self.traceparent,
            &self.tracestate,
            &self.message,
        ]
    }

    /// Builds the fields from the 13 text columns a claim selects after seq, key and
    /// attempts.
    pub(crate) fn from_columns(mut columns: impl Iterator<Item = Option<String>>) -> Self {
        let mut next = || columns.next().flatten();
        RowFields {
            event_id: next(),
            event_type: next(),
            aggregate_id: next(),
            occurred_at: next(),
            source: next(),
            data_version: next(),
            correlation_id: next(),
            causation_id: next(),
            partition_key: next(),
            payload: next(),
            traceparent: next(),
            tracestate: next(),
            message: next(),
        }
    }
}

impl Row {
    /// The outbox event the row holds, checked by the library: the same rules and the same
    /// error text as `outbox-ce encode` applies to a `to_message()` line.
    ///
    /// # Errors
    /// The library's [`outbox_cloudevents::Error`] for a row that is not a valid outbox
    /// event: a bad event type, a UUID or time that does not parse, a missing field, a
    /// payload that is not JSON, a trace column with a control character.
    pub fn to_event(&self) -> outbox_cloudevents::Result<OutboxEvent<Payload>> {
        let f = &self.fields;
        let event = match &f.message {
            Some(message) => OutboxEvent::<Payload>::from_message_json(message.as_bytes())?,
            None => {
                // The metadata as a `to_message()` object, so that every field is read by
                // the library's one parser; the payload is taken as it is, any JSON value.
                let mut meta = serde_json::Map::new();
                let fields = [
                    ("event_id", &f.event_id),
                    ("event_type", &f.event_type),
                    ("aggregate_id", &f.aggregate_id),
                    ("occurred_at", &f.occurred_at),
                    ("source", &f.source),
                    ("data_version", &f.data_version),
                    ("correlation_id", &f.correlation_id),
                    ("causation_id", &f.causation_id),
                    ("partition_key", &f.partition_key),
                ];
                for (name, value) in fields {
                    if let Some(value) = value {
                        meta.insert(name.to_owned(), serde_json::Value::String(value.clone()));
                    }
                }
                let json = serde_json::Value::Object(meta).to_string();
                let payload = Payload::from_json(f.payload.clone().unwrap_or_default())?;
                OutboxEvent::<Payload>::from_message_json(json.as_bytes())?.map_payload(|_| payload)
            }
        };
        let mut event = event;
        for (name, value) in [
            ("traceparent", &f.traceparent),
            ("tracestate", &f.tracestate),
        ] {
            if let Some(value) = value {
                event = event.with_extension(name, ExtensionValue::String(Cow::Borrowed(value)))?;
            }
        }
        Ok(event)
    }

    /// The row as a JSON object for a dead-letter topic: `seq` as a number, then each column
    /// the relay read, by its name in the table, as a string or `null` (the payload and the
    /// message column as their text, even when that text is not JSON).
    pub fn to_dead_letter_json(&self, table: &Table) -> Vec<u8> {
        let mut object = serde_json::Map::new();
        object.insert("seq".to_owned(), self.seq.into());
        for (name, value) in table.selected_names().into_iter().zip(self.fields.values()) {
            if let Some(name) = name {
                let value = value
                    .clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String);
                object.insert(name, value);
            }
        }
        serde_json::Value::Object(object).to_string().into_bytes()
    }
}

/// Seconds from an RFC 3339 time (or one without an offset, read as UTC) to now; 0 for text
/// that is not a time.
pub(crate) fn age_of(text: &str) -> f64 {
    let instant = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        });
    match instant {
        Ok(t) => ((chrono::Utc::now() - t).num_microseconds().unwrap_or(0) as f64 / 1e6).max(0.0),
        Err(_) => 0.0,
    }
}

/// Counts of the table's rows, as `relay status` prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Status {
    /// Rows neither published nor failed.
    pub pending: u64,
    /// Rows published.
    pub published: u64,
    /// Rows failed and not published.
    pub failed: u64,
    /// Seconds since the `occurred_at` of the first pending row in `seq` order; `None` (JSON
    /// `null`) when none is pending.
    pub oldest_pending_age_seconds: Option<f64>,
    /// The `seq` of that row (not printed by `relay status`).
    pub oldest_pending_seq: Option<i64>,
}

impl Status {
    /// The one-line JSON object `relay status` prints.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "pending": self.pending,
            "published": self.published,
            "failed": self.failed,
            "oldest_pending_age_seconds": self.oldest_pending_age_seconds,
        })
        .to_string()
    }
}

/// A database error.
#[derive(Debug, Clone)]
pub struct SourceError {
    /// What went wrong.
    pub message: String,
    /// Whether it may go away by itself (a lost connection, a server restarting, a busy
    /// database): the engine reconnects and tries again. Anything else (a missing table or
    /// column) stops the relay.
    pub transient: bool,
}

impl SourceError {
    pub(crate) fn transient(message: impl fmt::Display) -> Self {
        SourceError {
            message: message.to_string(),
            transient: true,
        }
    }

    pub(crate) fn fatal(message: impl fmt::Display) -> Self {
        SourceError {
            message: message.to_string(),
            transient: false,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

/// How the engine asks for rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimOptions {
    /// Only rows with a greater `seq`.
    pub after: i64,
    /// At most this many rows.
    pub limit: usize,
    /// Leave out the rows of keys that have an earlier failed row (`--on-failure block`).
    pub skip_blocked_keys: bool,
}

/// An outbox table in some database: where the engine takes rows from and records what
/// became of them.
///
/// Every method may fail with a [`SourceError`]; after a transient one the engine calls
/// [`Source::connect`] again (with backoff) before anything else.
pub trait Source: Send {
    /// (Re)connects. Ownership of keys (see [`Source::rebalance`]) starts empty.
    fn connect(&mut self) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Unpublished, unfailed rows of keys this relay owns, in `seq` order, after
    /// `options.after`, leaving out `exclude`.
    fn claim(
        &mut self,
        options: ClaimOptions,
        exclude: &[i64],
    ) -> impl Future<Output = Result<Vec<Row>, SourceError>> + Send;

    /// Marks rows published (the destination acknowledged them), in one statement; with
    /// `delete`, deletes them instead.
    fn mark_published(
        &mut self,
        seqs: &[i64],
        delete: bool,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Records a failed attempt at a row: `attempts + 1` and `last_error`; with `give_up`,
    /// also `failed_at` (python-outbox-core's `mark_failed`).
    fn record_failure(
        &mut self,
        seq: i64,
        error: &str,
        give_up: bool,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Deletes published rows published more than `age` ago; returns how many.
    fn delete_published(
        &mut self,
        age: Duration,
    ) -> impl Future<Output = Result<u64, SourceError>> + Send;

    /// Counts rows.
    fn status(&mut self) -> impl Future<Output = Result<Status, SourceError>> + Send;

    /// Takes or gives up keys so that live relays share them; returns the buckets given up
    /// (whose rows the engine must stop sending) and whether any were taken. A source with one
    /// relay owns every key and returns nothing.
    fn rebalance(&mut self) -> impl Future<Output = Result<(Vec<i32>, bool), SourceError>> + Send {
        async { Ok((Vec::new(), false)) }
    }

    /// Woken when rows are inserted (PostgreSQL `NOTIFY`); `None` when the source polls.
    fn wakeup(&self) -> Option<Arc<Notify>> {
        None
    }

    /// A short description for logs, such as `PostgreSQL 127.0.0.1:5432/app`.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: RowFields) -> Row {
        Row {
            seq: 1,
            key: "a".into(),
            bucket: 0,
            attempts: 0,
            fields,
        }
    }

    fn good() -> RowFields {
        RowFields {
            event_id: Some("0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11".into()),
            event_type: Some("com.example.thing.created".into()),
            aggregate_id: Some("a".into()),
            occurred_at: Some("2024-05-01T10:00:00.123456Z".into()),
            source: Some("svc".into()),
            payload: Some(r#"{"b":1,"a":2}"#.into()),
            ..RowFields::default()
        }
    }

    #[test]
    fn a_good_row_is_an_event_with_its_payload_kept() {
        let event = row(good()).to_event().unwrap();
        assert_eq!(event.payload().as_json(), Some(r#"{"b":1,"a":2}"#));
        assert_eq!(event.partition_key(), "a");
        assert_eq!(event.data_version(), "1.0");
    }

    #[test]
    fn trace_columns_become_extensions() {
        let fields = RowFields {
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            tracestate: Some("congo=t61rcWkgMzE".into()),
            ..good()
        };
        let event = row(fields).to_event().unwrap();
        let names: Vec<&str> = event.extensions().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["traceparent", "tracestate"]);
    }

    #[test]
    fn bad_rows_give_the_library_s_error() {
        let cases = [
            (
                RowFields {
                    event_type: Some("not a type".into()),
                    ..good()
                },
                "event_type",
            ),
            (
                RowFields {
                    event_id: Some("xyz".into()),
                    ..good()
                },
                "event_id",
            ),
            (
                RowFields {
                    occurred_at: Some("yesterday".into()),
                    ..good()
                },
                "occurred_at",
            ),
            (
                RowFields {
                    payload: Some("{".into()),
                    ..good()
                },
                "JSON",
            ),
            (
                RowFields {
                    source: None,
                    ..good()
                },
                "source",
            ),
        ];
        for (fields, needle) in cases {
            let e = row(fields).to_event().unwrap_err().to_string();
            assert!(e.contains(needle), "{needle} in {e}");
        }
    }

    #[test]
    fn a_message_column_is_read_whole() {
        let fields = RowFields {
            message: Some(
                r#"{"event_id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","event_type":"com.example.x","aggregate_id":"a","occurred_at":"2024-05-01T10:00:00","source":"svc","data_version":"1.0","correlation_id":null,"causation_id":null,"n":1}"#
                    .into(),
            ),
            ..RowFields::default()
        };
        let event = row(fields).to_event().unwrap();
        assert_eq!(event.payload().as_json(), Some(r#"{"n":1}"#));
    }

    #[test]
    fn dead_letter_json_names_the_columns() {
        let json = row(RowFields {
            payload: Some("{".into()),
            ..good()
        })
        .to_dead_letter_json(&Table::default());
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["seq"], 1);
        assert_eq!(value["payload"], "{");
        assert_eq!(value["event_type"], "com.example.thing.created");
        assert!(value["correlation_id"].is_null());
    }
}
