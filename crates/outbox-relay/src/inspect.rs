//! An existing table as the database describes it: checked against what the relay's
//! statements name before anything is read or sent ([`check`]), and brought up to the
//! relay's layout by `relay migrate` ([`plan`]).
//!
//! The check is what keeps a statement from naming a column the table lacks: SQLite would
//! otherwise read such a double-quoted name as a string (which the relay also turns off on
//! every connection it opens), and a missing `published_at` would count every row as
//! published. Each database gathers a [`TableInfo`]; what is done with it is decided here,
//! once for both.

use crate::schema::{Dialect, Field, Table, quote};

/// What the database says about a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TableInfo {
    /// Its columns, as the database spells them.
    pub columns: Vec<String>,
    /// The columns that are unique by themselves: the one column of the primary key, or of
    /// a unique index that is neither partial nor on an expression.
    pub unique: Vec<String>,
    /// The columns that can never hold `NULL`: declared `NOT NULL`, or SQLite's one
    /// `INTEGER PRIMARY KEY` column (the rowid, never `NULL` without being declared so).
    pub not_null: Vec<String>,
    /// The names of its indexes.
    pub indexes: Vec<String>,
    /// The names of its triggers (PostgreSQL; none in SQLite).
    pub triggers: Vec<String>,
}

/// Whether two names are the same name: SQLite matches identifiers without regard to ASCII
/// case, PostgreSQL matches quoted identifiers exactly.
fn same(dialect: Dialect, a: &str, b: &str) -> bool {
    match dialect {
        Dialect::Sqlite => a.eq_ignore_ascii_case(b),
        Dialect::Postgres => a == b,
    }
}

fn contains(dialect: Dialect, names: &[String], name: &str) -> bool {
    names.iter().any(|n| same(dialect, n, name))
}

/// The error of a table that is not there.
fn no_table(table: &Table) -> String {
    format!(
        "table `{}` does not exist: create it with `outbox-ce relay init`",
        table.name()
    )
}

/// A column as the relay uses it, for an error: its name, and the field it holds when that
/// has another name.
fn describe(column: &str, field: Option<Field>) -> String {
    match field {
        None => format!("`{column}` (the message column)"),
        Some(f) if f.name() == column => format!("`{column}`"),
        Some(f) => format!("`{column}` (for `{f}`)"),
    }
}

fn list(columns: &[(&str, Option<Field>)]) -> String {
    columns
        .iter()
        .map(|(c, f)| describe(c, *f))
        .collect::<Vec<_>>()
        .join(", ")
}

fn columns_word<T>(columns: &[T]) -> &'static str {
    if columns.len() == 1 {
        "column"
    } else {
        "columns"
    }
}

/// The columns the relay's statements name that the table lacks, in the table's order.
fn missing<'t>(
    table: &'t Table,
    info: &TableInfo,
    dialect: Dialect,
) -> Vec<(&'t str, Option<Field>)> {
    table
        .columns()
        .into_iter()
        .filter(|(column, _)| !contains(dialect, &info.columns, column))
        .collect()
}

/// Whether the column `seq` is read from is unique, so that it names one row.
fn seq_is_unique(table: &Table, info: &TableInfo, dialect: Dialect) -> bool {
    table
        .column(Field::Seq)
        .is_some_and(|seq| contains(dialect, &info.unique, seq))
}

/// Checks that the table (`None`: not there) has every column the relay's statements name
/// and that its `seq` column is unique. The relay marks and fails rows by their `seq`, which
/// is then the row's identity: two rows sharing a value would both be marked published when
/// one was.
///
/// # Errors
/// What is wrong, naming the table and every missing column, or the `seq` column.
pub(crate) fn check(
    table: &Table,
    info: Option<&TableInfo>,
    dialect: Dialect,
) -> Result<(), String> {
    check_columns(table, info, dialect)?;
    check_seq(table, info, dialect)
}

/// Checks that the table (`None`: not there) has every column the relay's statements name.
///
/// # Errors
/// What is wrong, naming the table and every missing column.
pub(crate) fn check_columns(
    table: &Table,
    info: Option<&TableInfo>,
    dialect: Dialect,
) -> Result<(), String> {
    let info = info.ok_or_else(|| no_table(table))?;
    let missing = missing(table, info, dialect);
    if !missing.is_empty() {
        let migrate = if missing.iter().any(|(_, f)| f.is_some_and(Field::addable)) {
            ", or add the relay's own columns with `outbox-ce relay migrate`"
        } else {
            ""
        };
        return Err(format!(
            "table `{}` has no {} {}: map each field to a column the table has with \
             --column FIELD=COLUMN{migrate}",
            table.name(),
            columns_word(&missing),
            list(&missing)
        ));
    }
    Ok(())
}

/// Whether the column `seq` is read from can never be `NULL`: a row whose `seq` is `NULL`
/// would never be claimed (no `seq >= N` holds for it), and pend for ever unseen.
fn seq_is_not_null(table: &Table, info: &TableInfo, dialect: Dialect) -> bool {
    table
        .column(Field::Seq)
        .is_some_and(|seq| contains(dialect, &info.not_null, seq))
}

/// Checks that the `seq` column of the table (`None`: not there) is unique and never `NULL`.
fn check_seq(table: &Table, info: Option<&TableInfo>, dialect: Dialect) -> Result<(), String> {
    let info = info.ok_or_else(|| no_table(table))?;
    if !seq_is_not_null(table, info, dialect) {
        let fix = match dialect {
            Dialect::Postgres => "; `outbox-ce relay migrate` sets it NOT NULL",
            Dialect::Sqlite => "",
        };
        return Err(format!(
            "table `{}`: column {} may hold NULL, and a row whose seq is NULL is never \
             claimed; map seq to a NOT NULL column with --column seq=COLUMN{fix}",
            table.name(),
            describe(
                table.column(Field::Seq).unwrap_or_default(),
                Some(Field::Seq)
            ),
        ));
    }
    if !seq_is_unique(table, info, dialect) {
        return Err(format!(
            "table `{}`: column {} is not unique (neither the primary key nor the one column \
             of a unique index), and the relay marks each row by its seq, so rows sharing a \
             value would be marked published together; map seq to a unique column with \
             --column seq=COLUMN, or add a unique index with `outbox-ce relay migrate`",
            table.name(),
            describe(
                table.column(Field::Seq).unwrap_or_default(),
                Some(Field::Seq)
            ),
        ));
    }
    Ok(())
}

/// The statements that bring an existing table (`None`: not there) up to what the relay
/// needs, in the order they must run: the missing columns that can be added (see
/// [`Field::addable`]), a unique index on `seq` when it is not unique, the relay's indexes
/// and, in PostgreSQL, the notify trigger, each only when missing. Empty when the table
/// has everything.
///
/// # Errors
/// A table that is not there, or that lacks a column no default can stand for, naming each.
pub(crate) fn plan(
    table: &Table,
    info: Option<&TableInfo>,
    dialect: Dialect,
) -> Result<Vec<String>, String> {
    let info = info.ok_or_else(|| no_table(table))?;
    let missing = missing(table, info, dialect);
    let (addable, fixed): (Vec<_>, Vec<_>) = missing
        .into_iter()
        .partition(|(_, f)| f.is_some_and(Field::addable));
    if !fixed.is_empty() {
        return Err(format!(
            "table `{}` has no {} {}, which `relay migrate` cannot add: they hold the \
             event or its order, which no default can stand for; map each field to the column \
             that holds it with --column FIELD=COLUMN",
            table.name(),
            columns_word(&fixed),
            list(&fixed)
        ));
    }
    let name = table.quoted();
    let mut statements: Vec<String> = addable
        .iter()
        .filter_map(|(_, f)| *f)
        .filter_map(|f| table.column_ddl(f, dialect))
        .map(|column| format!("ALTER TABLE {name} ADD COLUMN {column}"))
        .collect();
    if !seq_is_not_null(table, info, dialect) {
        match dialect {
            // Fails, and with it the whole migration, when a row's seq is NULL already.
            Dialect::Postgres => statements.push(format!(
                "ALTER TABLE {name} ALTER COLUMN {} SET NOT NULL",
                table.col(Field::Seq)
            )),
            Dialect::Sqlite => {
                return Err(format!(
                    "table `{}`: column {} may hold NULL, and SQLite cannot make an existing \
                     column NOT NULL; map seq to a NOT NULL column with --column seq=COLUMN",
                    table.name(),
                    describe(
                        table.column(Field::Seq).unwrap_or_default(),
                        Some(Field::Seq)
                    ),
                ));
            }
        }
    }
    if !seq_is_unique(table, info, dialect) {
        // Fails, and with it the whole migration, when two rows already share a value.
        statements.push(format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {name} ({})",
            quote(&format!("{}_seq_unique", table.base_name())),
            table.col(Field::Seq)
        ));
    }
    for (index, statement) in table.indexes(dialect) {
        if !contains(dialect, &info.indexes, &index) {
            statements.push(statement);
        }
    }
    if dialect == Dialect::Postgres && !contains(dialect, &info.triggers, &table.trigger_name()) {
        statements.extend(table.notify_trigger());
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(table: &Table) -> TableInfo {
        TableInfo {
            columns: table
                .columns()
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .collect(),
            unique: vec![table.column(Field::Seq).unwrap().to_owned()],
            not_null: vec![table.column(Field::Seq).unwrap().to_owned()],
            indexes: table
                .indexes(Dialect::Postgres)
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
            triggers: vec![table.trigger_name()],
        }
    }

    #[test]
    fn a_complete_table_passes_and_needs_nothing() {
        let table = Table::default();
        let info = complete(&table);
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            assert_eq!(check(&table, Some(&info), dialect), Ok(()));
            assert_eq!(plan(&table, Some(&info), dialect), Ok(Vec::new()));
        }
    }

    #[test]
    fn every_missing_column_is_named_with_its_field() {
        let mut table = Table::new("events").unwrap();
        table.map_all("source=origin_misspelt").unwrap();
        let mut info = complete(&Table::default());
        info.columns
            .retain(|c| c != "published_at" && c != "failed_at");
        let error = check(&table, Some(&info), Dialect::Sqlite).unwrap_err();
        for needle in [
            "table `events`",
            "`origin_misspelt` (for `source`)",
            "`published_at`",
            "`failed_at`",
            "relay migrate",
        ] {
            assert!(error.contains(needle), "{needle} in {error}");
        }
        assert!(
            check(&table, None, Dialect::Postgres)
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn sqlite_names_match_without_case_postgres_names_exactly() {
        let table = Table::default();
        let mut info = complete(&table);
        info.columns = info.columns.iter().map(|c| c.to_uppercase()).collect();
        info.unique = vec!["SEQ".to_owned()];
        info.not_null = vec!["Seq".to_owned()];
        assert_eq!(check(&table, Some(&info), Dialect::Sqlite), Ok(()));
        assert!(check(&table, Some(&info), Dialect::Postgres).is_err());
    }

    #[test]
    fn a_seq_that_is_not_unique_is_refused_and_migrate_adds_the_index() {
        let mut table = Table::default();
        table.map_all("seq=pos").unwrap();
        let mut info = complete(&table);
        info.unique.clear();
        let error = check(&table, Some(&info), Dialect::Postgres).unwrap_err();
        assert!(error.contains("`pos` (for `seq`) is not unique"), "{error}");
        let statements = plan(&table, Some(&info), Dialect::Postgres).unwrap();
        assert_eq!(
            statements,
            [
                "CREATE UNIQUE INDEX IF NOT EXISTS \"outbox_events_seq_unique\" ON \"outbox_events\" (\"pos\")"
            ]
        );
    }

    #[test]
    fn a_seq_that_may_be_null_is_refused_and_migrate_sets_it_not_null_in_postgres() {
        let mut table = Table::default();
        table.map_all("seq=pos").unwrap();
        let mut info = complete(&table);
        info.not_null.clear();
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let error = check(&table, Some(&info), dialect).unwrap_err();
            assert!(error.contains("`pos` (for `seq`) may hold NULL"), "{error}");
        }
        assert_eq!(
            plan(&table, Some(&info), Dialect::Postgres).unwrap(),
            ["ALTER TABLE \"outbox_events\" ALTER COLUMN \"pos\" SET NOT NULL"]
        );
        let error = plan(&table, Some(&info), Dialect::Sqlite).unwrap_err();
        assert!(
            error.contains("cannot make an existing column NOT NULL"),
            "{error}"
        );
    }

    #[test]
    fn migrate_adds_what_is_missing_and_refuses_what_it_cannot_invent() {
        let table = Table::default();
        let info = TableInfo {
            columns: [
                "seq",
                "event_id",
                "event_type",
                "aggregate_id",
                "occurred_at",
                "source",
                "payload",
                "published_at",
            ]
            .map(str::to_owned)
            .to_vec(),
            unique: vec!["seq".to_owned()],
            not_null: vec!["seq".to_owned()],
            ..TableInfo::default()
        };
        let statements = plan(&table, Some(&info), Dialect::Postgres).unwrap();
        let added: Vec<&str> = statements
            .iter()
            .filter_map(|s| s.strip_prefix("ALTER TABLE \"outbox_events\" ADD COLUMN "))
            .collect();
        assert_eq!(
            added,
            [
                "\"data_version\" text not null default '1.0'",
                "\"correlation_id\" uuid",
                "\"causation_id\" uuid",
                "\"partition_key\" text",
                "\"traceparent\" text",
                "\"tracestate\" text",
                "\"attempts\" integer not null default 0",
                "\"last_error\" text",
                "\"failed_at\" timestamptz",
            ]
        );
        assert_eq!(statements.len(), added.len() + 2 + 2, "{statements:#?}");
        assert!(
            statements
                .iter()
                .any(|s| s.contains("\"outbox_events_unpublished\""))
        );
        assert!(
            statements
                .iter()
                .any(|s| s.starts_with("CREATE OR REPLACE TRIGGER"))
        );
        let sqlite = plan(&table, Some(&info), Dialect::Sqlite).unwrap();
        assert!(!sqlite.iter().any(|s| s.contains("TRIGGER")));

        let mut lacking = info.clone();
        lacking
            .columns
            .retain(|c| c != "event_id" && c != "payload");
        let error = plan(&table, Some(&lacking), Dialect::Sqlite).unwrap_err();
        assert!(
            error.contains("`event_id`, `payload`, which `relay migrate` cannot add"),
            "{error}"
        );
    }
}
