//! The outbox table: its columns, how an existing table's columns map onto them, and the DDL
//! of each dialect.

use std::collections::BTreeMap;
use std::fmt;

/// A database dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (15 and later).
    Postgres,
    /// SQLite (3.35 and later, as bundled).
    Sqlite,
}

/// A column the relay reads or writes, by its default name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Field {
    /// `seq`: insertion order, the order within a key.
    Seq,
    /// `event_id`.
    EventId,
    /// `event_type`.
    EventType,
    /// `aggregate_id`.
    AggregateId,
    /// `occurred_at`.
    OccurredAt,
    /// `source`.
    Source,
    /// `data_version`.
    DataVersion,
    /// `correlation_id`.
    CorrelationId,
    /// `causation_id`.
    CausationId,
    /// `partition_key`.
    PartitionKey,
    /// `payload`.
    Payload,
    /// `traceparent`.
    Traceparent,
    /// `tracestate`.
    Tracestate,
    /// `published_at`.
    PublishedAt,
    /// `attempts`.
    Attempts,
    /// `last_error`.
    LastError,
    /// `failed_at`.
    FailedAt,
}

/// Every field, in the default table's column order.
pub const FIELDS: [Field; 17] = [
    Field::Seq,
    Field::EventId,
    Field::EventType,
    Field::AggregateId,
    Field::OccurredAt,
    Field::Source,
    Field::DataVersion,
    Field::CorrelationId,
    Field::CausationId,
    Field::PartitionKey,
    Field::Payload,
    Field::Traceparent,
    Field::Tracestate,
    Field::PublishedAt,
    Field::Attempts,
    Field::LastError,
    Field::FailedAt,
];

/// The fields the event is read from; with a message column they are read from its JSON.
const EVENT_FIELDS: [Field; 8] = [
    Field::EventId,
    Field::EventType,
    Field::AggregateId,
    Field::OccurredAt,
    Field::Source,
    Field::DataVersion,
    Field::CorrelationId,
    Field::CausationId,
];

/// The fields a claim reads as text, each selected as [`Field::selected_as`].
pub(crate) const TEXT_FIELDS: [Field; 12] = [
    Field::EventId,
    Field::EventType,
    Field::AggregateId,
    Field::OccurredAt,
    Field::Source,
    Field::DataVersion,
    Field::CorrelationId,
    Field::CausationId,
    Field::PartitionKey,
    Field::Payload,
    Field::Traceparent,
    Field::Tracestate,
];

/// The quoted names of a [`Table`] that every dialect's statements use.
pub(crate) struct Names {
    /// The table.
    pub table: String,
    /// `seq`.
    pub seq: String,
    /// `published_at`.
    pub published: String,
    /// `failed_at`.
    pub failed: String,
    /// `attempts`.
    pub attempts: String,
    /// `last_error`.
    pub last_error: String,
    /// The condition of a pending row: neither published nor failed.
    pub pending: String,
}

/// The name a claim selects a row's partition key as.
pub(crate) const KEY_AS: &str = "relay_key";
/// The name a claim selects the message column as.
pub(crate) const MESSAGE_AS: &str = "relay_message";
/// The name a PostgreSQL claim selects a row's bucket as.
pub(crate) const BUCKET_AS: &str = "relay_bucket";

impl Field {
    /// The default column name, which is also the field's name in `--column`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Seq => "seq",
            Field::EventId => "event_id",
            Field::EventType => "event_type",
            Field::AggregateId => "aggregate_id",
            Field::OccurredAt => "occurred_at",
            Field::Source => "source",
            Field::DataVersion => "data_version",
            Field::CorrelationId => "correlation_id",
            Field::CausationId => "causation_id",
            Field::PartitionKey => "partition_key",
            Field::Payload => "payload",
            Field::Traceparent => "traceparent",
            Field::Tracestate => "tracestate",
            Field::PublishedAt => "published_at",
            Field::Attempts => "attempts",
            Field::LastError => "last_error",
            Field::FailedAt => "failed_at",
        }
    }

    /// The name a claim selects the field's value as: `relay_` and the field's name, which
    /// no other value of the claim is selected as.
    pub(crate) fn selected_as(self) -> &'static str {
        match self {
            Field::Seq => "relay_seq",
            Field::EventId => "relay_event_id",
            Field::EventType => "relay_event_type",
            Field::AggregateId => "relay_aggregate_id",
            Field::OccurredAt => "relay_occurred_at",
            Field::Source => "relay_source",
            Field::DataVersion => "relay_data_version",
            Field::CorrelationId => "relay_correlation_id",
            Field::CausationId => "relay_causation_id",
            Field::PartitionKey => "relay_partition_key",
            Field::Payload => "relay_payload",
            Field::Traceparent => "relay_traceparent",
            Field::Tracestate => "relay_tracestate",
            Field::PublishedAt => "relay_published_at",
            Field::Attempts => "relay_attempts",
            Field::LastError => "relay_last_error",
            Field::FailedAt => "relay_failed_at",
        }
    }

    /// Whether a table may lack the column (`--column traceparent=`).
    pub fn optional(self) -> bool {
        matches!(
            self,
            Field::DataVersion
                | Field::CorrelationId
                | Field::CausationId
                | Field::PartitionKey
                | Field::Traceparent
                | Field::Tracestate
        )
    }

    /// Whether `relay migrate` may add the column to an existing table: it holds the relay's
    /// own bookkeeping or an optional value, so every row already there has an honest value
    /// for it (`NULL`, `0`, `'1.0'`). The others hold the event itself, or its order, which
    /// no default can stand for.
    pub fn addable(self) -> bool {
        self.optional()
            || matches!(
                self,
                Field::PublishedAt | Field::Attempts | Field::LastError | Field::FailedAt
            )
    }

    fn ddl(self, dialect: Dialect) -> &'static str {
        use Dialect::{Postgres as P, Sqlite as S};
        match (self, dialect) {
            (Field::Seq, P) => "bigserial primary key",
            (Field::Seq, S) => "integer primary key autoincrement",
            (Field::EventId, P) => "uuid not null unique",
            (Field::EventId, S) => "text not null unique",
            (Field::EventType | Field::AggregateId | Field::Source, _) => "text not null",
            (Field::OccurredAt, P) => "timestamptz not null",
            (Field::OccurredAt, S) => "text not null",
            (Field::DataVersion, _) => "text not null default '1.0'",
            (Field::CorrelationId | Field::CausationId, P) => "uuid",
            (Field::Payload, P) => "json not null",
            (Field::Payload, S) => "text not null",
            (Field::PublishedAt | Field::FailedAt, P) => "timestamptz",
            (Field::Attempts, _) => "integer not null default 0",
            _ => "text",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A table name or column mapping that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

/// The outbox table: its name and where each field lives.
///
/// By default every field is the column of its name. [`Table::map`] points a field at another
/// column (or at none, for an optional field); [`Table::with_message_column`] reads the whole
/// event from one JSON column holding python-outbox-core's `to_message()` object, in which
/// case only `seq`, the message column, the four state columns and the optional
/// `partition_key`, `traceparent` and `tracestate` columns named by [`Table::map`] are used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    name: String,
    /// Where each field lives; a field absent from the map has no column.
    columns: BTreeMap<Field, String>,
    message: Option<String>,
}

/// The default table name.
pub const DEFAULT_TABLE: &str = "outbox_events";

impl Default for Table {
    fn default() -> Self {
        Table {
            name: DEFAULT_TABLE.to_owned(),
            columns: FIELDS.iter().map(|f| (*f, f.name().to_owned())).collect(),
            message: None,
        }
    }
}

impl Table {
    /// The default layout under another name: `table` or `schema.table`, each part a letter
    /// or `_` followed by letters, digits or `_` (names are quoted, so case is kept).
    ///
    /// # Errors
    /// A [`SchemaError`] for any other name.
    pub fn new(name: &str) -> Result<Self, SchemaError> {
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
            return Err(SchemaError(format!(
                "table `{name}`: use `table` or `schema.table`, letters, digits and `_`"
            )));
        }
        Ok(Table {
            name: name.to_owned(),
            ..Table::default()
        })
    }

    /// Reads `field` from `column`, or from no column when `column` is empty (optional
    /// fields only).
    ///
    /// # Errors
    /// A [`SchemaError`] for a column name that is not an identifier, or an empty one for a
    /// required field.
    pub fn map(&mut self, field: Field, column: &str) -> Result<(), SchemaError> {
        if column.is_empty() {
            if !field.optional() {
                return Err(SchemaError(format!(
                    "column `{field}` is required; it cannot be left out"
                )));
            }
            self.columns.remove(&field);
            return Ok(());
        }
        if !is_identifier(column) {
            return Err(SchemaError(format!(
                "column `{column}` for `{field}`: use letters, digits and `_`"
            )));
        }
        self.columns.insert(field, column.to_owned());
        Ok(())
    }

    /// Applies a mapping written `field=column[,field=column...]`, as the `--column` flag
    /// takes it.
    ///
    /// # Errors
    /// A [`SchemaError`] for an unknown field or a bad column name.
    pub fn map_all(&mut self, spec: &str) -> Result<(), SchemaError> {
        for pair in spec.split(',').filter(|p| !p.is_empty()) {
            let (field, column) = pair.split_once('=').ok_or_else(|| {
                SchemaError(format!("`{pair}`: write FIELD=COLUMN, such as event_id=id"))
            })?;
            let field = FIELDS
                .iter()
                .find(|f| f.name() == field.trim())
                .ok_or_else(|| {
                    let names: Vec<&str> = FIELDS.iter().map(|f| f.name()).collect();
                    SchemaError(format!(
                        "`{field}` is not a field: use one of {}",
                        names.join(", ")
                    ))
                })?;
            self.map(*field, column.trim())?;
        }
        Ok(())
    }

    /// Reads each event from `column`, a JSON column holding python-outbox-core's
    /// `to_message()` object. The `traceparent` and `tracestate` columns are then read only
    /// when [`Table::map`] names them.
    ///
    /// # Errors
    /// A [`SchemaError`] for a column name that is not an identifier.
    pub fn with_message_column(mut self, column: &str) -> Result<Self, SchemaError> {
        if !is_identifier(column) {
            return Err(SchemaError(format!(
                "message column `{column}`: use letters, digits and `_`"
            )));
        }
        self.message = Some(column.to_owned());
        for field in EVENT_FIELDS
            .into_iter()
            .chain([Field::Payload, Field::PartitionKey])
        {
            self.columns.remove(&field);
        }
        for field in [Field::Traceparent, Field::Tracestate] {
            if self.columns.get(&field).map(String::as_str) == Some(field.name()) {
                self.columns.remove(&field);
            }
        }
        Ok(self)
    }

    /// The table name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message column, when events are read from one.
    pub fn message_column(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The column `field` is read from, if any.
    pub fn column(&self, field: Field) -> Option<&str> {
        self.columns.get(&field).map(String::as_str)
    }

    /// The table name, quoted.
    pub(crate) fn quoted(&self) -> String {
        self.name
            .split('.')
            .map(quote)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The schema part of the name (`app` of `app.outbox`), if any.
    pub(crate) fn schema_part(&self) -> Option<&str> {
        self.name.rsplit_once('.').map(|(schema, _)| schema)
    }

    /// The bare table name (without schema), for naming indexes, triggers and channels.
    pub(crate) fn base_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }

    /// Every column the relay's statements name, in the default table's order: each mapped
    /// field's column with its field, then the message column (`None`).
    pub fn columns(&self) -> Vec<(&str, Option<Field>)> {
        let mut columns: Vec<(&str, Option<Field>)> = FIELDS
            .iter()
            .filter_map(|f| self.column(*f).map(|c| (c, Some(*f))))
            .collect();
        if let Some(message) = &self.message {
            columns.push((message, None));
        }
        columns
    }

    /// The column the relay adds for `field` with `relay migrate`, or creates with `relay
    /// init`: `"name" type`.
    pub(crate) fn column_ddl(&self, field: Field, dialect: Dialect) -> Option<String> {
        self.column(field)
            .map(|column| format!("{} {}", quote(column), field.ddl(dialect)))
    }

    /// The quoted names the relay's statements are written with.
    pub(crate) fn names(&self) -> Names {
        let published = self.col(Field::PublishedAt);
        let failed = self.col(Field::FailedAt);
        Names {
            table: self.quoted(),
            seq: self.col(Field::Seq),
            pending: format!("{published} IS NULL AND {failed} IS NULL"),
            published,
            failed,
            attempts: self.col(Field::Attempts),
            last_error: self.col(Field::LastError),
        }
    }

    /// The quoted column of a field, or `NULL`.
    pub(crate) fn col(&self, field: Field) -> String {
        self.column(field).map_or_else(|| "NULL".to_owned(), quote)
    }

    /// The partition key of a row as an SQL expression, for grouping rows by key (buckets,
    /// the failed rows of a key): `partition_key`, else `aggregate_id` (read from the message
    /// JSON when there is a message column), else `''`, so that a row without a key still
    /// falls in a bucket and is claimed (and then fails, see [`Table::claimed_key_expr`]).
    pub(crate) fn key_expr(&self, dialect: Dialect) -> String {
        self.key_expr_at(dialect, "")
    }

    /// [`Table::key_expr`] with each column qualified by `alias` (none when empty).
    pub(crate) fn key_expr_at(&self, dialect: Dialect, alias: &str) -> String {
        let mut parts = self.key_parts(dialect, alias);
        parts.push("''".to_owned());
        format!("coalesce({})", parts.join(", "))
    }

    /// The claim's condition, for the claimed row aliased `o`, that leaves out a row while an
    /// earlier row of its key failed and is not published (`--on-failure block`).
    pub(crate) fn blocked_condition(&self, dialect: Dialect) -> String {
        let (seq, published, failed) = (
            self.col(Field::Seq),
            self.col(Field::PublishedAt),
            self.col(Field::FailedAt),
        );
        format!(
            " AND NOT EXISTS (SELECT 1 FROM {} AS f WHERE f.{failed} IS NOT NULL \
             AND f.{published} IS NULL AND {} = {} AND f.{seq} < o.{seq})",
            self.quoted(),
            self.key_expr_at(dialect, "f"),
            self.key_expr_at(dialect, "o"),
        )
    }

    /// The partition key a claim reads: as [`Table::key_expr`] without the `''`, so that a
    /// row whose key columns are all `NULL` reads as having no key.
    pub(crate) fn claimed_key_expr(&self, dialect: Dialect) -> String {
        let parts = self.key_parts(dialect, "");
        match parts.as_slice() {
            [] => "NULL".to_owned(),
            [one] => one.clone(),
            _ => format!("coalesce({})", parts.join(", ")),
        }
    }

    /// The columns (or message members) the partition key is read from, in order.
    fn key_parts(&self, dialect: Dialect, alias: &str) -> Vec<String> {
        let q = |c: &str| {
            if alias.is_empty() {
                quote(c)
            } else {
                format!("{alias}.{}", quote(c))
            }
        };
        let explicit = self.column(Field::PartitionKey).map(q);
        let from = match (&self.message, dialect) {
            (None, _) => self.column(Field::AggregateId).map(q).into_iter().collect(),
            (Some(m), Dialect::Postgres) => vec![
                format!("({}::json ->> 'partition_key')", q(m)),
                format!("({}::json ->> 'aggregate_id')", q(m)),
            ],
            (Some(m), Dialect::Sqlite) => vec![
                format!(
                    "(CASE WHEN json_valid({0}) THEN json_extract({0}, '$.partition_key') END)",
                    q(m)
                ),
                format!(
                    "(CASE WHEN json_valid({0}) THEN json_extract({0}, '$.aggregate_id') END)",
                    q(m)
                ),
            ],
        };
        explicit.into_iter().chain::<Vec<String>>(from).collect()
    }

    /// Where a row's partition key comes from, for the error of a row without one.
    pub(crate) fn key_source(&self) -> String {
        let mut names: Vec<String> = Vec::new();
        if let Some(c) = self.column(Field::PartitionKey) {
            names.push(format!("column `{c}`"));
        }
        match &self.message {
            Some(m) => names.push(format!(
                "the `partition_key` and `aggregate_id` members of message column `{m}`"
            )),
            None => {
                if let Some(c) = self.column(Field::AggregateId) {
                    names.push(format!("column `{c}`"));
                }
            }
        }
        names.join(" and ")
    }

    /// The `occurred_at` of a row as an SQL expression (its column, or the message's member
    /// as text).
    pub(crate) fn occurred_expr(&self, dialect: Dialect) -> String {
        match (&self.message, dialect) {
            (None, Dialect::Postgres) => {
                format!("(to_json({})#>>'{{}}')", self.col(Field::OccurredAt))
            }
            (None, Dialect::Sqlite) => self.col(Field::OccurredAt),
            (Some(m), Dialect::Postgres) => format!("({}::json ->> 'occurred_at')", quote(m)),
            (Some(m), Dialect::Sqlite) => format!(
                "(CASE WHEN json_valid({0}) THEN json_extract({0}, '$.occurred_at') END)",
                quote(m)
            ),
        }
    }

    /// The values a claim selects, each under a name of its own (see [`Field::selected_as`],
    /// [`KEY_AS`], [`MESSAGE_AS`]) and read by that name, so that the order of the list does
    /// not matter: seq as `int8`, attempts as the column holds it in SQLite and as text in
    /// PostgreSQL (so that a value of any type reads, and one that is no count fails only its
    /// row), the partition key, then the event fields, payload, trace columns and message,
    /// each as text (`NULL` where the table has none).
    pub(crate) fn select_list(&self, dialect: Dialect) -> String {
        let text = |field: Field| match (self.column(field), dialect) {
            (None, Dialect::Postgres) => "NULL::text".to_owned(),
            (None, Dialect::Sqlite) => "NULL".to_owned(),
            // A timestamp column as RFC 3339 text (ISO 8601 with `T`), any other as text.
            (Some(c), Dialect::Postgres) if field == Field::OccurredAt => {
                format!("(to_json({})#>>'{{}}')", quote(c))
            }
            (Some(c), Dialect::Postgres) => format!("{}::text", quote(c)),
            (Some(c), _) => quote(c),
        };
        let message = match (&self.message, dialect) {
            (None, Dialect::Postgres) => "NULL::text".to_owned(),
            (None, Dialect::Sqlite) => "NULL".to_owned(),
            (Some(m), Dialect::Postgres) => format!("{}::text", quote(m)),
            (Some(m), Dialect::Sqlite) => quote(m),
        };
        let int8 = |column: String| match dialect {
            Dialect::Postgres => format!("{column}::int8"),
            Dialect::Sqlite => column,
        };
        let key = match dialect {
            Dialect::Postgres => format!("({})::text", self.claimed_key_expr(dialect)),
            Dialect::Sqlite => self.claimed_key_expr(dialect),
        };
        let mut list = vec![
            (int8(self.col(Field::Seq)), Field::Seq.selected_as()),
            (key, KEY_AS),
            (
                match dialect {
                    Dialect::Postgres => format!("{}::text", self.col(Field::Attempts)),
                    Dialect::Sqlite => self.col(Field::Attempts),
                },
                Field::Attempts.selected_as(),
            ),
            (message, MESSAGE_AS),
        ];
        list.extend(TEXT_FIELDS.into_iter().map(|f| (text(f), f.selected_as())));
        list.into_iter()
            .map(|(value, name)| format!("{value} AS {}", quote(name)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The DDL that creates the table, its index of unpublished rows and, for PostgreSQL,
    /// the trigger that notifies relays of new rows. Every statement is idempotent.
    pub fn ddl(&self, dialect: Dialect) -> String {
        let mut ddl = self.create_table(dialect);
        for (_, statement) in self.indexes(dialect) {
            ddl += &statement;
            ddl += ";\n";
        }
        if dialect == Dialect::Postgres {
            for statement in self.notify_trigger() {
                ddl += &statement;
                ddl += ";\n";
            }
        }
        ddl
    }

    fn create_table(&self, dialect: Dialect) -> String {
        let mut columns = Vec::new();
        for field in FIELDS {
            let Some(column) = self.column_ddl(field, dialect) else {
                continue;
            };
            columns.push(format!("    {column}"));
            if field == Field::Seq
                && let Some(message) = &self.message
            {
                let ty = match dialect {
                    Dialect::Postgres => "json not null",
                    Dialect::Sqlite => "text not null",
                };
                columns.push(format!("    {} {ty}", quote(message)));
            }
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n",
            self.quoted(),
            columns.join(",\n")
        )
    }

    /// The relay's indexes: each name, and its `CREATE INDEX IF NOT EXISTS` statement
    /// (without the final `;`).
    pub(crate) fn indexes(&self, dialect: Dialect) -> Vec<(String, String)> {
        let table = self.quoted();
        let base = self.base_name();
        let seq = self.col(Field::Seq);
        let published = self.col(Field::PublishedAt);
        let failed = self.col(Field::FailedAt);
        let unpublished = format!("{base}_unpublished");
        let failed_name = format!("{base}_failed");
        // The claim walks unpublished rows in seq order.
        let by_seq = format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} ({seq}) WHERE {published} IS NULL AND {failed} IS NULL",
            quote(&unpublished)
        );
        // `--on-failure block` looks up the failed rows of a key.
        let by_key = format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (({}), {seq}) WHERE {failed} IS NOT NULL AND {published} IS NULL",
            quote(&failed_name),
            self.key_expr(dialect),
        );
        vec![(unpublished, by_seq), (failed_name, by_key)]
    }

    /// The name of the PostgreSQL trigger that notifies relays of new rows.
    pub(crate) fn trigger_name(&self) -> String {
        format!("{}_notify", self.base_name())
    }

    /// The PostgreSQL function and trigger that notify relays of new rows (without the final
    /// `;`).
    pub(crate) fn notify_trigger(&self) -> Vec<String> {
        let function = self.notify_function();
        vec![
            format!(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n\
                 BEGIN\n    PERFORM pg_notify({}, '');\n    RETURN NULL;\nEND\n$$",
                literal(&self.channel()),
            ),
            format!(
                "CREATE OR REPLACE TRIGGER {} AFTER INSERT ON {}\n    FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
                quote(&self.trigger_name()),
                self.quoted(),
            ),
        ]
    }

    /// The notification channel of the table: its name as given.
    pub(crate) fn channel(&self) -> String {
        self.name.clone()
    }

    fn notify_function(&self) -> String {
        let mut parts: Vec<&str> = self.name.split('.').collect();
        let function = format!("{}_notify", self.base_name());
        parts.pop();
        parts
            .into_iter()
            .map(quote)
            .chain([quote(&function)])
            .collect::<Vec<_>>()
            .join(".")
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// Quotes an identifier (already checked to hold no quote).
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes a string literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ddl_has_every_column_of_the_contract() {
        let pg = Table::default().ddl(Dialect::Postgres);
        for line in [
            "\"seq\" bigserial primary key",
            "\"event_id\" uuid not null unique",
            "\"occurred_at\" timestamptz not null",
            "\"data_version\" text not null default '1.0'",
            "\"correlation_id\" uuid",
            "\"payload\" json not null",
            "\"attempts\" integer not null default 0",
            "\"failed_at\" timestamptz",
            "pg_notify('outbox_events', '')",
            "CREATE OR REPLACE TRIGGER \"outbox_events_notify\"",
        ] {
            assert!(pg.contains(line), "{line} in {pg}");
        }
        let lite = Table::default().ddl(Dialect::Sqlite);
        assert!(lite.contains("\"seq\" integer primary key autoincrement"));
        assert!(lite.contains("\"event_id\" text not null unique"));
        assert!(!lite.contains("TRIGGER"));
    }

    #[test]
    fn names_are_checked() {
        assert!(Table::new("app.outbox").is_ok());
        assert_eq!(
            Table::new("app.outbox").unwrap().quoted(),
            "\"app\".\"outbox\""
        );
        for bad in ["", "a.b.c", "x;drop", "1abc", "a b", "\"q\""] {
            assert!(Table::new(bad).is_err(), "{bad}");
        }
        let mut table = Table::default();
        assert!(table.map_all("event_id=id,occurred_at=created_at").is_ok());
        assert_eq!(table.column(Field::EventId), Some("id"));
        assert_eq!(table.column(Field::OccurredAt), Some("created_at"));
        assert!(table.map_all("traceparent=").is_ok());
        assert_eq!(table.column(Field::Traceparent), None);
        assert!(table.map_all("event_type=").is_err());
        assert!(table.map_all("nope=x").is_err());
        assert!(table.map_all("event_id").is_err());
        assert!(table.map_all("event_id=a-b").is_err());
    }

    #[test]
    fn message_column_layout() {
        let table = Table::default().with_message_column("message").unwrap();
        let ddl = table.ddl(Dialect::Postgres);
        assert!(ddl.contains("\"message\" json not null"), "{ddl}");
        assert!(!ddl.contains("\"event_type\""), "{ddl}");
        assert!(ddl.contains("\"published_at\""), "{ddl}");
        assert!(
            table
                .key_expr(Dialect::Postgres)
                .contains("'partition_key'")
        );
    }
}
