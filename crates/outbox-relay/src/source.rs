//! What the engine needs from an outbox table, whatever the database: claim rows in `seq`
//! order, mark them, count them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use outbox_cloudevents::{ExtensionValue, OutboxEvent, Payload};
use tokio::sync::Notify;

use crate::schema::{Field, MESSAGE_AS, TEXT_FIELDS, Table};

/// One unpublished row, its columns as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's `seq`.
    pub seq: i64,
    /// Its partition key: `partition_key`, else `aggregate_id` (computed by the database);
    /// `None` when both are `NULL`, and then the row fails (see [`Row::event`]).
    pub key: Option<String>,
    /// The bucket of its key (see the crate docs); always 0 for SQLite.
    pub bucket: i32,
    /// Its `attempts`; 0 when the column holds no integer, and then the row fails (see
    /// [`Row::unreadable`]).
    pub attempts: i64,
    /// The event columns, as text, `None` for SQL `NULL` or a column the table lacks.
    pub fields: RowFields,
    /// Why a column of the row could not be read, naming the column (text that is not
    /// UTF-8, an `attempts` that is not an integer); the row then fails with this error (see
    /// [`Row::event`]).
    pub unreadable: Option<String>,
}

/// A value that is not text: why, and its bytes when the database has them (SQLite text or a
/// blob that is not UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotText {
    pub reason: String,
    pub bytes: Option<Vec<u8>>,
}

impl From<String> for NotText {
    fn from(reason: String) -> Self {
        NotText {
            reason,
            bytes: None,
        }
    }
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
    /// The stored bytes of each value that is not text, by its column (their field above is
    /// `None`), kept for the row's dead-letter copy.
    pub not_text: BTreeMap<String, Vec<u8>>,
}

impl RowFields {
    /// The text of `field`: `None` for SQL `NULL`, a column the table lacks, or a field that
    /// is not an event column (`seq` and the state columns).
    pub fn get(&self, field: Field) -> Option<&str> {
        self.slot(field).and_then(Option::as_deref)
    }

    fn slot(&self, field: Field) -> Option<&Option<String>> {
        match field {
            Field::EventId => Some(&self.event_id),
            Field::EventType => Some(&self.event_type),
            Field::AggregateId => Some(&self.aggregate_id),
            Field::OccurredAt => Some(&self.occurred_at),
            Field::Source => Some(&self.source),
            Field::DataVersion => Some(&self.data_version),
            Field::CorrelationId => Some(&self.correlation_id),
            Field::CausationId => Some(&self.causation_id),
            Field::PartitionKey => Some(&self.partition_key),
            Field::Payload => Some(&self.payload),
            Field::Traceparent => Some(&self.traceparent),
            Field::Tracestate => Some(&self.tracestate),
            Field::Seq
            | Field::PublishedAt
            | Field::Attempts
            | Field::LastError
            | Field::FailedAt => None,
        }
    }

    fn slot_mut(&mut self, field: Field) -> Option<&mut Option<String>> {
        match field {
            Field::EventId => Some(&mut self.event_id),
            Field::EventType => Some(&mut self.event_type),
            Field::AggregateId => Some(&mut self.aggregate_id),
            Field::OccurredAt => Some(&mut self.occurred_at),
            Field::Source => Some(&mut self.source),
            Field::DataVersion => Some(&mut self.data_version),
            Field::CorrelationId => Some(&mut self.correlation_id),
            Field::CausationId => Some(&mut self.causation_id),
            Field::PartitionKey => Some(&mut self.partition_key),
            Field::Payload => Some(&mut self.payload),
            Field::Traceparent => Some(&mut self.traceparent),
            Field::Tracestate => Some(&mut self.tracestate),
            Field::Seq
            | Field::PublishedAt
            | Field::Attempts
            | Field::LastError
            | Field::FailedAt => None,
        }
    }

    /// Reads the text values of a claimed row by the names the claim selects them as
    /// ([`Field::selected_as`], [`MESSAGE_AS`]); `read` gives a value's text, `None` for
    /// SQL `NULL`, or why it is not text (with its bytes, which are kept in
    /// [`RowFields::not_text`]). Returns the fields and the first such error, naming the
    /// column of `table` it came from.
    pub(crate) fn read(
        table: &Table,
        mut read: impl FnMut(&'static str) -> Result<Option<String>, NotText>,
    ) -> (Self, Option<String>) {
        let mut fields = RowFields::default();
        let mut error = None;
        let columns = TEXT_FIELDS
            .into_iter()
            .map(|f| (Some(f), f.selected_as(), table.column(f)))
            .chain([(None, MESSAGE_AS, table.message_column())]);
        for (field, name, column) in columns {
            let value = match read(name) {
                Ok(value) => value,
                Err(NotText { reason, bytes }) => {
                    let column = column.unwrap_or(name);
                    if error.is_none() {
                        error = Some(format!(
                            "column `{column}` cannot be read as text: {reason}"
                        ));
                    }
                    if let Some(bytes) = bytes {
                        fields.not_text.insert(column.to_owned(), bytes);
                    }
                    None
                }
            };
            match field {
                Some(field) => {
                    if let Some(slot) = fields.slot_mut(field) {
                        *slot = value;
                    }
                }
                None => fields.message = value,
            }
        }
        (fields, error)
    }
}

impl Row {
    /// The outbox event the row holds, as the relay sends it: [`Row::to_event`], after
    /// checking that the row was read whole, and that the event's partition key is the key
    /// the row was ordered by ([`Row::key`]): the key that orders is the key published.
    ///
    /// # Errors
    /// The text the row fails with: [`Row::unreadable`]; a `NULL` payload or message,
    /// naming its column; the library's error from [`Row::to_event`]; for a row without a
    /// partition key, an error naming the columns the key is read from (for a table of
    /// `to_message()` objects, after the library had its say on the message); or an event
    /// whose partition key is not the row's key.
    pub fn event(&self, table: &Table) -> Result<OutboxEvent<Payload>, String> {
        if let Some(e) = &self.unreadable {
            return Err(e.clone());
        }
        let keyless = || format!("the row has no partition key: {} NULL", table.key_source());
        if let Some(column) = table.message_column()
            && self.fields.message.is_none()
        {
            return Err(format!("column `{column}` is NULL"));
        }
        if table.message_column().is_none() {
            if self.fields.payload.is_none() {
                let column = table
                    .column(Field::Payload)
                    .unwrap_or(Field::Payload.name());
                return Err(format!("column `{column}` is NULL"));
            }
            if self.key.is_none() {
                return Err(keyless());
            }
        }
        let event = self.to_event().map_err(|e| e.to_string())?;
        match self.key.as_deref() {
            None => Err(keyless()),
            Some(key) if key != event.partition_key() => Err(format!(
                "the row is ordered by the partition key `{key}` ({}) but its event's is `{}`",
                table.key_source(),
                event.partition_key()
            )),
            Some(_) => Ok(event),
        }
    }

    /// The text the row stores its `occurred_at` as: the column's text, or the member of the
    /// message column's object.
    pub fn stored_occurred_at(&self) -> Option<Cow<'_, str>> {
        match &self.fields.message {
            Some(message) => crate::sink::occurred_at_member(message.as_bytes()).map(Cow::Owned),
            None => self.fields.occurred_at.as_deref().map(Cow::Borrowed),
        }
    }

    /// The outbox event the row holds, checked by the library: the same rules and the same
    /// error text as `outbox-ce encode` applies to a `to_message()` line. With a message
    /// column, a `partition_key` column that is not `NULL` overrides the message's key.
    ///
    /// # Errors
    /// The library's [`outbox_cloudevents::Error`] for a row that is not a valid outbox
    /// event: a bad event type, a UUID or time that does not parse, a missing field, a
    /// payload that is not JSON, a trace column with a control character.
    pub fn to_event(&self) -> outbox_cloudevents::Result<OutboxEvent<Payload>> {
        let f = &self.fields;
        let event = match &f.message {
            Some(message) => {
                let event = OutboxEvent::<Payload>::from_message_json(message.as_bytes())?;
                match &f.partition_key {
                    Some(key) => event.with_partition_key(key.as_str())?,
                    None => event,
                }
            }
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
                // A NULL payload (which `Row::event` names) is empty text here, which the
                // library refuses as not JSON.
                let payload = Payload::from_json(f.payload.as_deref().unwrap_or(""))?;
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
    /// the relay read, by its name in the table, as a string, `null` for SQL `NULL`, or
    /// `{"base64": "..."}` holding the stored bytes of a value that is not UTF-8 text (the
    /// payload and the message column as their text, even when that text is not JSON).
    pub fn to_dead_letter_json(&self, table: &Table) -> Vec<u8> {
        let mut object = serde_json::Map::new();
        object.insert("seq".to_owned(), self.seq.into());
        let value =
            |column: &str, text: Option<&str>| match (text, self.fields.not_text.get(column)) {
                (Some(text), _) => serde_json::Value::String(text.to_owned()),
                (None, Some(bytes)) => serde_json::json!({
                    "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
                }),
                (None, None) => serde_json::Value::Null,
            };
        for field in TEXT_FIELDS {
            if let Some(column) = table.column(field) {
                object.insert(column.to_owned(), value(column, self.fields.get(field)));
            }
        }
        if let Some(column) = table.message_column() {
            object.insert(
                column.to_owned(),
                value(column, self.fields.message.as_deref()),
            );
        }
        serde_json::Value::Object(object).to_string().into_bytes()
    }
}

/// A row's `attempts` from what the database holds: the count, or why it is none (`held`
/// describes the value, such as `NULL` or ``the TEXT `abc` ``), naming the column. Any value
/// but an integer fails its row ([`attempts_or_fail`]).
pub(crate) fn bad_attempts(table: &Table, held: &str) -> String {
    let column = table
        .column(Field::Attempts)
        .unwrap_or(Field::Attempts.name());
    format!("column `{column}` holds {held}, not an integer count of attempts")
}

/// The count of `attempts`, or 0 when it is none; the row then fails with that error unless
/// it already fails for another reason.
pub(crate) fn attempts_or_fail(
    attempts: Result<i64, String>,
    unreadable: &mut Option<String>,
) -> i64 {
    attempts.unwrap_or_else(|e| {
        unreadable.get_or_insert(e);
        0
    })
}

/// Where the backlog's age is read from, for the error of an age that cannot be known.
fn occurred_source(table: &Table) -> String {
    match table.message_column() {
        Some(m) => format!("the `occurred_at` member of message column `{m}`"),
        None => format!(
            "column `{}`",
            table
                .column(Field::OccurredAt)
                .unwrap_or(Field::OccurredAt.name())
        ),
    }
}

/// Seconds from the `occurred_at` of row `seq` (its text, or why it is not text) to now, read
/// by the publisher's own parser ([`outbox_cloudevents::parse_occurred_at`]), so that the age
/// is known exactly for the times the row is published with; or why it is not known, naming
/// the row and the column. A time in the future is 0 seconds old.
pub(crate) fn age_of(
    table: &Table,
    seq: i64,
    occurred: Result<Option<String>, String>,
) -> Result<f64, String> {
    let at = |what: String| format!("seq {seq}: {} {what}", occurred_source(table));
    let text = occurred
        .map_err(|e| at(format!("cannot be read as text: {e}")))?
        .ok_or_else(|| at("is NULL".to_owned()))?;
    let instant = outbox_cloudevents::parse_occurred_at(&text)
        .map_err(|e| at(format!("is not a time: {e}")))?;
    let micros = (chrono::Utc::now() - instant)
        .num_microseconds()
        .unwrap_or(i64::MAX);
    Ok((micros as f64 / 1e6).max(0.0))
}

/// Counts of the table's rows, as `relay status` prints them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// Rows neither published nor failed.
    pub pending: u64,
    /// Rows published.
    pub published: u64,
    /// Rows failed and not published.
    pub failed: u64,
    /// Seconds since the `occurred_at` of the first pending row in `seq` order; `None` (JSON
    /// `null`) when none is pending, or when that row's time cannot be read (see
    /// [`Status::oldest_pending_age_error`]).
    pub oldest_pending_age_seconds: Option<f64>,
    /// The `seq` of that row (not printed by `relay status`).
    pub oldest_pending_seq: Option<i64>,
    /// Why the age of that row is unknown, naming its `seq` and column: its `occurred_at` is
    /// `NULL`, not text, or not a time the publisher reads (the row itself fails when it is
    /// claimed).
    pub oldest_pending_age_error: Option<String>,
}

impl Status {
    /// Counts of the table's rows, with the age of the first pending one, `seq`, from its
    /// `occurred_at` (see [`Status::oldest_pending_age_error`]); `oldest` is `None` when none
    /// is pending.
    pub(crate) fn new(
        table: &Table,
        (pending, published, failed): (u64, u64, u64),
        oldest: Option<(i64, Result<Option<String>, String>)>,
    ) -> Self {
        let mut status = Status {
            pending,
            published,
            failed,
            ..Status::default()
        };
        if let Some((seq, occurred)) = oldest {
            status.oldest_pending_seq = Some(seq);
            match age_of(table, seq, occurred) {
                Ok(age) => status.oldest_pending_age_seconds = Some(age),
                Err(e) => status.oldest_pending_age_error = Some(e),
            }
        }
        status
    }

    /// The one-line JSON object `relay status` prints; `oldest_pending_age_error` is there
    /// only when the age is unknown.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::json!({
            "pending": self.pending,
            "published": self.published,
            "failed": self.failed,
            "oldest_pending_age_seconds": self.oldest_pending_age_seconds,
        });
        if let (Some(e), Some(object)) = (&self.oldest_pending_age_error, json.as_object_mut()) {
            object.insert("oldest_pending_age_error".to_owned(), e.clone().into());
        }
        json.to_string()
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
    /// Only rows with a `seq` of at least this: [`i64::MIN`] claims from the start of the
    /// table, zero and negative `seq`s included.
    pub from: i64,
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

    /// Unpublished, unfailed rows of keys this relay owns, in `seq` order, from
    /// `options.from`, leaving out `exclude`.
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

    /// Records a failed attempt at a row: `attempts + 1` (held at the largest value the
    /// column takes; 1 when it held no integer) and `last_error`; with `give_up`, also
    /// `failed_at` (python-outbox-core's `mark_failed`).
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
            key: Some("a".into()),
            bucket: 0,
            attempts: 0,
            fields,
            unreadable: None,
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

    const MESSAGE: &str = r#"{"event_id":"0d6f8a52-5a1f-4bb3-9d0e-3c8f6f5f2a11","event_type":"com.example.x","aggregate_id":"a","occurred_at":"2024-05-01T10:00:00","source":"svc","data_version":"1.0","correlation_id":null,"causation_id":null,"n":1}"#;

    #[test]
    fn a_message_column_is_read_whole() {
        let fields = RowFields {
            message: Some(MESSAGE.into()),
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

    #[test]
    fn fields_are_read_by_the_names_they_are_selected_as() {
        let table = Table::default();
        let mut asked = Vec::new();
        let (fields, error) = RowFields::read(&table, |name| {
            asked.push(name);
            Ok(Some(format!("value of {name}")))
        });
        assert_eq!(error, None);
        for field in TEXT_FIELDS {
            assert_eq!(
                fields.get(field),
                Some(format!("value of relay_{}", field.name()).as_str()),
                "{field}"
            );
        }
        assert_eq!(fields.message.as_deref(), Some("value of relay_message"));
        assert_eq!(asked.len(), TEXT_FIELDS.len() + 1);
        let mut unique = asked.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            asked.len(),
            "every value has a name of its own"
        );
        // The claim selects each of them under that name.
        for dialect in [
            crate::schema::Dialect::Postgres,
            crate::schema::Dialect::Sqlite,
        ] {
            let list = table.select_list(dialect);
            for name in &asked {
                assert!(
                    list.contains(&format!(" AS \"{name}\"")),
                    "{name} in {list}"
                );
            }
        }
    }

    #[test]
    fn a_value_that_is_not_text_fails_the_row_naming_its_column() {
        let mut table = Table::default();
        table.map_all("payload=body").unwrap();
        let (fields, error) = RowFields::read(&table, |name| {
            if name == "relay_payload" {
                Err("text that is not UTF-8".to_owned().into())
            } else {
                Ok(Some("x".to_owned()))
            }
        });
        assert_eq!(fields.payload, None);
        assert_eq!(fields.event_id.as_deref(), Some("x"));
        let error = error.unwrap();
        assert!(error.contains("column `body`"), "{error}");
        assert!(error.contains("not UTF-8"), "{error}");
        let row = Row {
            unreadable: Some(error.clone()),
            ..row(good())
        };
        assert_eq!(row.event(&table).unwrap_err(), error);
    }

    #[test]
    fn a_row_whose_event_has_another_key_than_its_own_fails() {
        let table = Table::default();
        let row = Row {
            key: Some("b".into()),
            ..row(good())
        };
        let error = row.event(&table).unwrap_err();
        assert!(
            error.contains("`b`") && error.contains("its event's is `a`"),
            "{error}"
        );
    }

    #[test]
    fn an_age_that_cannot_be_known_names_the_row_and_the_column() {
        let table = Table::default();
        let status = Status::new(&table, (1, 0, 0), Some((7, Ok(Some("yesterday".into())))));
        assert_eq!(status.oldest_pending_seq, Some(7));
        assert_eq!(status.oldest_pending_age_seconds, None);
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        let error = json["oldest_pending_age_error"].as_str().unwrap();
        assert!(
            error.starts_with("seq 7: column `occurred_at` is not a time")
                && error.contains("yesterday"),
            "{error}"
        );
        let null = Status::new(&table, (1, 0, 0), Some((7, Ok(None))));
        assert_eq!(
            null.oldest_pending_age_error.as_deref(),
            Some("seq 7: column `occurred_at` is NULL")
        );
        let fine = Status::new(
            &table,
            (1, 0, 0),
            Some((7, Ok(Some("2024-05-01 10:00:00".into())))),
        );
        assert!(fine.oldest_pending_age_seconds.unwrap() > 0.0);
        assert!(!fine.to_json().contains("oldest_pending_age_error"));
    }

    #[test]
    fn a_row_without_a_key_or_payload_fails_naming_the_columns() {
        let table = Table::default();
        let keyless = Row {
            key: None,
            ..row(good())
        };
        let error = keyless.event(&table).unwrap_err();
        assert!(
            error.contains("`partition_key`") && error.contains("`aggregate_id`"),
            "{error}"
        );
        let message = Table::default().with_message_column("body").unwrap();
        let error = keyless.event(&message).unwrap_err();
        assert_eq!(error, "column `body` is NULL");
        let keyless_message = Row {
            key: None,
            fields: RowFields {
                message: Some(MESSAGE.into()),
                ..RowFields::default()
            },
            ..row(good())
        };
        let error = keyless_message.event(&message).unwrap_err();
        assert!(error.contains("message column `body`"), "{error}");
        let no_payload = row(RowFields {
            payload: None,
            ..good()
        });
        assert_eq!(
            no_payload.event(&table).unwrap_err(),
            "column `payload` is NULL"
        );
        assert!(no_payload.to_event().is_err());
        assert!(row(good()).event(&table).is_ok());
    }
}
