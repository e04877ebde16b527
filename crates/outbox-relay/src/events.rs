//! The relay's log events. Each is one typed value; its text line and its JSON object are
//! two views of the same fields, written side by side, so a count or an id cannot be in one
//! format and missing from the other (a unit test holds every event to that).

use serde_json::{Value, json};

use crate::engine::Summary;
use crate::observe::Logger;
use crate::source::Row;

/// Every id a log line about a row can carry. The ids come from the event when the row is a
/// valid one, else from the row's columns (or its `to_message()` object) as they are, so a
/// row that fails because it is not a valid event can still be found by its ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RowIds {
    pub seq: i64,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub partition_key: Option<String>,
}

impl RowIds {
    /// The ids of `row`.
    pub fn of(row: &Row) -> Self {
        let mut ids = RowIds {
            seq: row.seq,
            partition_key: row.key.clone(),
            ..RowIds::default()
        };
        if let Ok(event) = row.to_event() {
            ids.event_id = Some(event.event_id().to_string());
            ids.event_type = Some(event.event_type().as_str().to_owned());
            ids.aggregate_id = Some(event.aggregate_id().to_owned());
            return ids;
        }
        let f = &row.fields;
        let message: Option<serde_json::Map<String, Value>> = f
            .message
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok());
        let member = |name: &str, column: &Option<String>| {
            column.clone().or_else(|| {
                message
                    .as_ref()
                    .and_then(|m| m.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        };
        ids.event_id = member("event_id", &f.event_id);
        ids.event_type = member("event_type", &f.event_type);
        ids.aggregate_id = member("aggregate_id", &f.aggregate_id);
        ids
    }

    /// `seq 5, event 0000…, type com.example.placed, aggregate order-1, key order-1`: the
    /// ids known, in the text format.
    fn text(&self) -> String {
        let mut text = format!("seq {}", self.seq);
        for (label, value) in [
            ("event", &self.event_id),
            ("type", &self.event_type),
            ("aggregate", &self.aggregate_id),
            ("key", &self.partition_key),
        ] {
            if let Some(value) = value {
                text.push_str(&format!(", {label} {value}"));
            }
        }
        text
    }

    fn fields(&self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("seq".into(), self.seq.into());
        fields.insert("event_id".into(), self.event_id.clone().into());
        fields.insert("event_type".into(), self.event_type.clone().into());
        fields.insert("aggregate_id".into(), self.aggregate_id.clone().into());
        fields.insert("partition_key".into(), self.partition_key.clone().into());
        fields
    }
}

/// Why the relay stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A shutdown request (SIGTERM, SIGINT, or the embedder's future).
    Signal,
    /// `--once` and nothing is left to publish.
    Drained,
    /// `--once` and the destination acknowledged nothing for the stall timeout.
    Stalled,
}

/// Something the relay logs.
#[derive(Debug, Clone)]
pub(crate) enum RelayEvent<'a> {
    Started {
        source: &'a str,
        sink: &'a str,
    },
    DatabaseReconnected,
    DatabaseUnavailable {
        error: &'a str,
    },
    Published {
        ids: &'a RowIds,
    },
    PublishFailed {
        ids: &'a RowIds,
        error: &'a str,
        attempts: i64,
        marked_failed: bool,
    },
    /// The age of the oldest pending row cannot be read; it is counted as 0.
    BacklogAgeUnknown {
        error: &'a str,
    },
    BatchComplete {
        published: u64,
        failed: u64,
        total: u64,
    },
    Stopped {
        reason: StopReason,
        summary: &'a Summary,
    },
}

impl RelayEvent<'_> {
    /// Its python-outbox-core-style name and its level.
    fn name_and_level(&self) -> (&'static str, &'static str) {
        match self {
            RelayEvent::Started { .. } => ("outbox.relay_started", "info"),
            RelayEvent::DatabaseReconnected => ("outbox.database_reconnected", "info"),
            RelayEvent::DatabaseUnavailable { .. } => ("outbox.database_unavailable", "warning"),
            RelayEvent::Published { .. } => ("outbox.event_published", "info"),
            RelayEvent::PublishFailed { .. } => ("outbox.publish_failed", "error"),
            RelayEvent::BacklogAgeUnknown { .. } => ("outbox.backlog_age_unknown", "warning"),
            RelayEvent::BatchComplete { .. } => ("outbox.batch_complete", "info"),
            RelayEvent::Stopped {
                reason: StopReason::Stalled,
                ..
            } => ("outbox.relay_stopped", "error"),
            RelayEvent::Stopped { .. } => ("outbox.relay_stopped", "info"),
        }
    }

    /// The text line and the JSON fields.
    fn views(&self) -> (String, serde_json::Map<String, Value>) {
        let (text, fields) = match self {
            RelayEvent::Started { source, sink } => (
                format!("relaying {source} to {sink}"),
                json!({"source": source, "sink": sink}),
            ),
            RelayEvent::DatabaseReconnected => ("database connection back".to_owned(), json!({})),
            RelayEvent::DatabaseUnavailable { error } => (
                format!("database unavailable, reconnecting: {error}"),
                json!({"error": error}),
            ),
            RelayEvent::BacklogAgeUnknown { error } => (
                format!("the age of the oldest pending row is unknown (counted as 0): {error}"),
                json!({"error": error}),
            ),
            RelayEvent::Published { ids } => (
                format!("published {}", ids.text()),
                Value::Object(ids.fields()),
            ),
            RelayEvent::PublishFailed {
                ids,
                error,
                attempts,
                marked_failed,
            } => {
                let outcome = if *marked_failed {
                    "marked failed"
                } else {
                    "will retry"
                };
                let mut fields = ids.fields();
                fields.insert("error".into(), (*error).into());
                fields.insert("attempts".into(), (*attempts).into());
                fields.insert("marked_failed".into(), (*marked_failed).into());
                (
                    format!(
                        "row {} failed (attempt {attempts}, {outcome}): {error}",
                        ids.text()
                    ),
                    Value::Object(fields),
                )
            }
            RelayEvent::BatchComplete {
                published,
                failed,
                total,
            } => (
                format!("batch of {total}: {published} published, {failed} failed"),
                json!({
                    "published": published,
                    "failed": failed,
                    "total": total,
                    "success_rate": if *total > 0 { *published as f64 / *total as f64 } else { 0.0 },
                }),
            ),
            RelayEvent::Stopped { reason, summary } => {
                let reason_text = match reason {
                    StopReason::Signal => "stopped",
                    StopReason::Drained => "nothing left to publish",
                    StopReason::Stalled => "gave up, the destination acknowledged nothing",
                };
                let reason_name = match reason {
                    StopReason::Signal => "signal",
                    StopReason::Drained => "drained",
                    StopReason::Stalled => "stalled",
                };
                (
                    format!(
                        "{reason_text}: {} published, {} failed, {} unmarked, {} abandoned",
                        summary.published, summary.failed, summary.unmarked, summary.abandoned
                    ),
                    json!({
                        "reason": reason_name,
                        "published": summary.published,
                        "failed": summary.failed,
                        "unmarked": summary.unmarked,
                        "abandoned": summary.abandoned,
                    }),
                )
            }
        };
        let Value::Object(fields) = fields else {
            return (text, serde_json::Map::new());
        };
        (text, fields)
    }

    /// Writes it with `logger`.
    pub fn emit(&self, logger: &Logger) {
        if logger.quiet {
            return;
        }
        let (name, level) = self.name_and_level();
        let (text, fields) = self.views();
        logger.log(level, name, &text, Value::Object(fields));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id, count and message of the JSON object is in the text line too (booleans and
    /// ratios are said in words or derived from the counts).
    fn assert_same_facts(event: &RelayEvent<'_>) {
        let (text, fields) = event.views();
        for (name, value) in &fields {
            let shown = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                _ => continue,
            };
            if name == "reason" {
                continue;
            }
            assert!(
                text.contains(&shown),
                "{name} = {shown} is missing from the text line: {text}"
            );
        }
    }

    #[test]
    fn text_and_json_carry_the_same_ids_and_counts() {
        let ids = RowIds {
            seq: 42,
            event_id: Some("00000000-0000-4000-8000-000000000042".into()),
            event_type: Some("not an event type".into()),
            aggregate_id: Some("order-7".into()),
            partition_key: Some("tenant-3".into()),
        };
        let summary = Summary {
            published: 11,
            failed: 12,
            unmarked: 13,
            abandoned: 14,
        };
        let events = [
            RelayEvent::Started {
                source: "SQLite a.db table outbox_events",
                sink: "standard output",
            },
            RelayEvent::DatabaseReconnected,
            RelayEvent::DatabaseUnavailable {
                error: "connection refused",
            },
            RelayEvent::Published { ids: &ids },
            RelayEvent::PublishFailed {
                ids: &ids,
                error: "event type is not valid",
                attempts: 3,
                marked_failed: true,
            },
            RelayEvent::BatchComplete {
                published: 5,
                failed: 6,
                total: 11,
            },
            RelayEvent::Stopped {
                reason: StopReason::Signal,
                summary: &summary,
            },
            RelayEvent::Stopped {
                reason: StopReason::Stalled,
                summary: &summary,
            },
        ];
        for event in &events {
            assert_same_facts(event);
        }
    }

    #[test]
    fn publish_failed_of_an_invalid_row_names_its_ids() {
        let row = Row {
            seq: 9,
            key: Some("order-1".into()),
            bucket: 0,
            attempts: 0,
            fields: crate::source::RowFields {
                event_id: Some("00000000-0000-4000-8000-000000000009".into()),
                event_type: Some("not an event type".into()),
                aggregate_id: Some("order-1".into()),
                ..Default::default()
            },
            unreadable: None,
        };
        let ids = RowIds::of(&row);
        assert_eq!(
            ids.event_id.as_deref(),
            Some("00000000-0000-4000-8000-000000000009")
        );
        assert_eq!(ids.event_type.as_deref(), Some("not an event type"));
        assert_eq!(ids.aggregate_id.as_deref(), Some("order-1"));
        let message = Row {
            fields: crate::source::RowFields {
                message: Some(
                    r#"{"event_id": "e-1", "event_type": "t", "aggregate_id": "a"}"#.into(),
                ),
                ..Default::default()
            },
            ..row
        };
        let ids = RowIds::of(&message);
        assert_eq!(
            (
                ids.event_id.as_deref(),
                ids.event_type.as_deref(),
                ids.aggregate_id.as_deref()
            ),
            (Some("e-1"), Some("t"), Some("a"))
        );
    }
}
