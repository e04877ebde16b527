//! The SQLite source: one file, one relay, no server. Polls; never notified.
//!
//! Times are written as RFC 3339 text in UTC with milliseconds
//! (`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`). Statements run on tokio's blocking pool; a
//! database locked by a writer is waited for five seconds, then retried as a transient error.
//!
//! Every connection is opened with double-quoted string literals off
//! (`SQLITE_DBCONFIG_DQS_DML`, `SQLITE_DBCONFIG_DQS_DDL`), so that a name the table lacks is
//! an error in every statement, never read as a string. Before the first claim the relay
//! checks the table's columns and that its `seq` column is unique, and that it can write to
//! the file (a write transaction that is rolled back); it refuses to start otherwise, having
//! sent nothing. Each claim also checks that the path still names the file that was opened
//! (its device and inode): a file deleted and created again, or renamed over, stops the
//! relay with a fatal error, since its connection would go on reading the old file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::inspect::{self, TableInfo};
use crate::schema::{Dialect, Field, KEY_AS, Names, Table};
use crate::source::{
    ClaimOptions, NotText, Row, RowFields, Source, SourceError, Status, attempts_or_fail,
    bad_attempts,
};

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// An outbox table in a SQLite file.
pub struct SqliteSource {
    path: PathBuf,
    table: Table,
    connection: Option<Arc<Mutex<Connection>>>,
    /// The device and inode of the file the connection has open.
    opened: Option<FileId>,
    sql: Statements,
}

/// A file's device and inode: another file at the same path has another.
type FileId = (u64, u64);

struct Statements {
    claim: String,
    claim_blocked: String,
    mark: String,
    delete: String,
    failure: String,
    retention: String,
    status: String,
    oldest: String,
}

impl SqliteSource {
    /// A source for `table` in the file at `path`; nothing is opened before
    /// [`Source::connect`].
    pub fn new(path: impl AsRef<Path>, table: Table) -> Self {
        let sql = Statements::new(&table);
        SqliteSource {
            path: path.as_ref().to_owned(),
            table,
            connection: None,
            opened: None,
            sql,
        }
    }

    /// Creates the table and its index in the file at `path` (creating the file), and turns
    /// on write-ahead logging so that writers and the relay do not block each other. A table
    /// that is already there is left as it is, and must have what the relay needs (see
    /// [`SqliteSource::migrate`]).
    ///
    /// # Errors
    /// A [`SourceError`] when the file cannot be opened, a statement fails, or the table is
    /// there without a column the relay needs.
    pub fn init(path: impl AsRef<Path>, table: &Table) -> Result<(), SourceError> {
        let path = path.as_ref();
        let connection = open(path, OpenFlags::default())?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fatal(path, e))?;
        if let Some(info) = inspect_table(&connection, table).map_err(|e| fatal(path, e))? {
            inspect::check(table, Some(&info), Dialect::Sqlite).map_err(|e| {
                fatal(
                    path,
                    format!("{e} (`relay init` leaves an existing table as it is)"),
                )
            })?;
        }
        connection
            .execute_batch(&table.ddl(Dialect::Sqlite))
            .map_err(|e| fatal(path, e))
    }

    /// Adds what an existing table lacks (see [`crate::relay::migrate`]) in one transaction,
    /// or with `dry_run` only says what it would add; returns those statements, none when
    /// the table has everything.
    ///
    /// # Errors
    /// A [`SourceError`] when the file cannot be opened, the table is not there or lacks a
    /// column that cannot be added, or a statement fails (then nothing is changed).
    pub fn migrate(
        path: impl AsRef<Path>,
        table: &Table,
        dry_run: bool,
    ) -> Result<Vec<String>, SourceError> {
        let path = path.as_ref();
        let mut connection = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| classify(path, e))?;
        let info = inspect_table(&transaction, table).map_err(|e| fatal(path, e))?;
        let statements =
            inspect::plan(table, info.as_ref(), Dialect::Sqlite).map_err(|e| fatal(path, e))?;
        if dry_run || statements.is_empty() {
            return Ok(statements);
        }
        for statement in &statements {
            transaction
                .execute_batch(statement)
                .map_err(|e| fatal(path, format!("{statement}: {e}")))?;
        }
        transaction.commit().map_err(|e| classify(path, e))?;
        Ok(statements)
    }

    /// The counts `relay status` prints, on a connection of its own that only reads, after
    /// checking the table's columns.
    ///
    /// # Errors
    /// A [`SourceError`] when the file cannot be opened, the table lacks a column, or a
    /// statement fails.
    pub async fn status_once(path: impl AsRef<Path>, table: &Table) -> Result<Status, SourceError> {
        let mut source = SqliteSource::new(path, table.clone());
        let (path, table) = (source.path.clone(), source.table.clone());
        let connection = tokio::task::spawn_blocking(move || {
            let connection = open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            let info = inspect_table(&connection, &table).map_err(|e| fatal(&path, e))?;
            inspect::check_columns(&table, info.as_ref(), Dialect::Sqlite)
                .map_err(|e| fatal(&path, e))?;
            Ok::<_, SourceError>(connection)
        })
        .await
        .map_err(|e| SourceError::fatal(format!("SQLite task: {e}")))??;
        source.connection = Some(Arc::new(Mutex::new(connection)));
        source.status().await
    }

    /// Fails when the path no longer names the file the connection has open.
    fn check_same_file(&self) -> Result<(), SourceError> {
        let Some(opened) = self.opened else {
            return Ok(());
        };
        let gone = match file_id(&self.path) {
            Ok(now) if now == opened => return Ok(()),
            Ok(_) => "was replaced by another file (deleted and created again, or renamed over)",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
            Err(e) => {
                return Err(SourceError::transient(format!(
                    "SQLite {}: {e}",
                    self.path.display()
                )));
            }
        };
        Err(fatal(
            &self.path,
            format!(
                "the file {gone} while the relay ran; its connection still reads the old file, \
                 so the relay stops: start it again to relay the rows of the file now there"
            ),
        ))
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, SourceError> {
        let connection = self
            .connection
            .clone()
            .ok_or_else(|| SourceError::transient("not connected"))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| SourceError::fatal("the SQLite connection was poisoned"))?;
            f(&mut guard).map_err(|e| classify(&path, e))
        })
        .await
        .map_err(|e| SourceError::fatal(format!("SQLite task: {e}")))?
    }
}

impl Statements {
    fn new(table: &Table) -> Self {
        let Names {
            table: t,
            seq,
            published,
            failed,
            attempts,
            last_error,
            pending,
        } = table.names();
        let claim = format!(
            "SELECT {} FROM {t} AS o WHERE {pending} AND {seq} >= ?1 \
             AND {seq} NOT IN (SELECT value FROM json_each(?2))",
            table.select_list(Dialect::Sqlite)
        );
        let blocked = table.blocked_condition(Dialect::Sqlite);
        // Qualified, so that no name the claim selects a value as can stand for it.
        let order = format!(" ORDER BY o.{seq} LIMIT ?3");
        Statements {
            claim_blocked: format!("{claim}{blocked}{order}"),
            claim: format!("{claim}{order}"),
            mark: format!(
                "UPDATE {t} SET {published} = {NOW} \
                 WHERE {seq} IN (SELECT value FROM json_each(?1)) AND {published} IS NULL"
            ),
            delete: format!("DELETE FROM {t} WHERE {seq} IN (SELECT value FROM json_each(?1))"),
            // `attempts + 1` past the largest integer would turn into a REAL: it stays there.
            failure: format!(
                "UPDATE {t} SET {attempts} = CASE WHEN typeof({attempts}) <> 'integer' THEN 1 \
                 WHEN {attempts} < 9223372036854775807 THEN {attempts} + 1 ELSE {attempts} END, \
                 {last_error} = ?2, \
                 {failed} = CASE WHEN ?3 THEN {NOW} ELSE {failed} END \
                 WHERE {seq} = ?1 AND {published} IS NULL"
            ),
            retention: format!(
                "DELETE FROM {t} WHERE {published} IS NOT NULL \
                 AND {published} < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)"
            ),
            status: format!(
                "SELECT coalesce(sum({pending}), 0) AS pending, \
                 coalesce(sum({published} IS NOT NULL), 0) AS published, \
                 coalesce(sum({failed} IS NOT NULL AND {published} IS NULL), 0) AS failed FROM {t}"
            ),
            oldest: format!(
                "SELECT {} AS occurred_at, {seq} AS seq FROM {t} AS o WHERE {pending} \
                 ORDER BY o.{seq} LIMIT 1",
                table.occurred_expr(Dialect::Sqlite)
            ),
        }
    }
}

/// A value as text: `None` for `NULL`, numbers written out, text and blobs that are UTF-8;
/// `Err` says why any other value is not text, with its bytes.
fn text(value: ValueRef<'_>) -> Result<Option<String>, NotText> {
    let utf8 = |bytes: &[u8], what: &str| {
        std::str::from_utf8(bytes)
            .map(|t| Some(t.to_owned()))
            .map_err(|e| NotText {
                reason: format!("{what} that is not UTF-8 ({e})"),
                bytes: Some(bytes.to_vec()),
            })
    };
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => Ok(Some(i.to_string())),
        ValueRef::Real(f) => Ok(Some(f.to_string())),
        ValueRef::Text(t) => utf8(t, "text"),
        ValueRef::Blob(b) => utf8(b, "a blob"),
    }
}

/// A row's `attempts`: an integer, or what the column holds instead (see [`bad_attempts`]).
fn attempts(table: &Table, value: ValueRef<'_>) -> Result<i64, String> {
    let held = match value {
        ValueRef::Integer(n) => return Ok(n),
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Real(f) => format!("the REAL {f}"),
        ValueRef::Text(t) => format!("the TEXT `{}`", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("a BLOB of {} bytes", b.len()),
    };
    Err(bad_attempts(table, &held))
}

fn json_list(seqs: &[i64]) -> String {
    let items: Vec<String> = seqs.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(","))
}

/// Opens the file with double-quoted string literals off, so that a double-quoted name that
/// names no column is an error, not a string; a busy database is waited for five seconds.
fn open(path: &Path, flags: OpenFlags) -> Result<Connection, SourceError> {
    let connection = Connection::open_with_flags(path, flags).map_err(|e| fatal(path, e))?;
    for config in [
        DbConfig::SQLITE_DBCONFIG_DQS_DML,
        DbConfig::SQLITE_DBCONFIG_DQS_DDL,
    ] {
        connection
            .set_db_config(config, false)
            .map_err(|e| fatal(path, e))?;
    }
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(|e| fatal(path, e))?;
    Ok(connection)
}

fn file_id(path: &Path) -> std::io::Result<FileId> {
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Ok((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        drop(metadata);
        Ok((0, 0))
    }
}

/// What the file says about `table`: `None` when it has no such table.
fn inspect_table(c: &Connection, table: &Table) -> rusqlite::Result<Option<TableInfo>> {
    let schema = table.schema_part().unwrap_or("main");
    let name = table.base_name();
    let mut info = TableInfo::default();
    let mut key = Vec::new();
    let mut columns = c.prepare(
        "SELECT name, pk, hidden, \"notnull\", upper(type) = 'INTEGER' \
         FROM pragma_table_xinfo(?1, ?2)",
    )?;
    let mut rows = columns.query(params![name, schema])?;
    while let Some(row) = rows.next()? {
        let (column, pk, hidden): (String, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (not_null, integer): (bool, bool) = (row.get(3)?, row.get(4)?);
        // `hidden` 1: a virtual table's hidden column, which no statement names.
        if hidden != 1 {
            info.columns.push(column.clone());
        }
        if not_null {
            info.not_null.push(column.clone());
        }
        if pk > 0 {
            key.push((column, integer));
        }
    }
    if info.columns.is_empty() {
        return Ok(None);
    }
    if let [(one, integer)] = key.as_slice() {
        info.unique.push(one.clone());
        // The one `INTEGER PRIMARY KEY` column is the rowid (or, without a rowid, a key
        // column, which SQLite keeps from NULL too): never NULL.
        if *integer {
            info.not_null.push(one.clone());
        }
    }
    let mut indexes =
        c.prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1, ?2)")?;
    let list: Vec<(String, bool, bool)> = indexes
        .query_map(params![name, schema], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut key_columns = c.prepare("SELECT name FROM pragma_index_info(?1, ?2)")?;
    for (index, unique, partial) in list {
        if unique && !partial {
            // `name` is NULL for an expression.
            let keys: Vec<Option<String>> = key_columns
                .query_map(params![index, schema], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if let [Some(one)] = keys.as_slice() {
                info.unique.push(one.clone());
            }
        }
        info.indexes.push(index);
    }
    Ok(Some(info))
}

/// A write that changes nothing, rolled back: it needs the same rights and locks as a mark
/// (the file writable, and in journal mode DELETE a journal that can be created), so a
/// database the relay could read but not mark fails here, before anything is sent.
fn probe_writes(c: &mut Connection) -> rusqlite::Result<()> {
    let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = transaction.pragma_query_value(None, "user_version", |r| r.get(0))?;
    transaction.pragma_update(None, "user_version", version)?;
    transaction.rollback()
}

fn fatal(path: &Path, e: impl std::fmt::Display) -> SourceError {
    SourceError::fatal(format!("SQLite {}: {e}", path.display()))
}

fn classify(path: &Path, e: rusqlite::Error) -> SourceError {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        SourceError::transient(format!("SQLite {}: {e}", path.display()))
    } else {
        fatal(path, e)
    }
}

impl Source for SqliteSource {
    async fn connect(&mut self) -> Result<(), SourceError> {
        let (path, table) = (self.path.clone(), self.table.clone());
        let (connection, opened) = tokio::task::spawn_blocking(move || {
            // No CREATE: a relay pointed at a file that does not exist says so.
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let mut connection = open(&path, flags)?;
            let opened = file_id(&path).map_err(|e| fatal(&path, e))?;
            let info = inspect_table(&connection, &table).map_err(|e| fatal(&path, e))?;
            inspect::check(&table, info.as_ref(), Dialect::Sqlite).map_err(|e| fatal(&path, e))?;
            probe_writes(&mut connection).map_err(|e| match classify(&path, e) {
                busy if busy.transient => busy,
                e => SourceError::fatal(format!(
                    "{e}: the relay cannot write to the database, so it would publish rows it \
                     cannot mark published"
                )),
            })?;
            Ok::<_, SourceError>((connection, opened))
        })
        .await
        .map_err(|e| SourceError::fatal(format!("SQLite task: {e}")))??;
        self.connection = Some(Arc::new(Mutex::new(connection)));
        self.opened = Some(opened);
        Ok(())
    }

    async fn claim(
        &mut self,
        options: ClaimOptions,
        exclude: &[i64],
    ) -> Result<Vec<Row>, SourceError> {
        self.check_same_file()?;
        let sql = if options.skip_blocked_keys {
            self.sql.claim_blocked.clone()
        } else {
            self.sql.claim.clone()
        };
        let exclude = json_list(exclude);
        let limit = i64::try_from(options.limit).unwrap_or(i64::MAX);
        let table = self.table.clone();
        self.with(move |c| {
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map(params![options.from, exclude, limit], |r| {
                // A value missing from the claim is an error of the query; a value that is
                // not text fails its row.
                let mut missing = None;
                let (fields, unreadable) = RowFields::read(&table, |name| match r.get_ref(name) {
                    Ok(value) => text(value),
                    Err(e) => {
                        missing.get_or_insert(e);
                        Ok(None)
                    }
                });
                if let Some(e) = missing {
                    return Err(e);
                }
                let (key, mut unreadable) = match text(r.get_ref(KEY_AS)?) {
                    Ok(key) => (key, unreadable),
                    Err(e) => (
                        None,
                        unreadable.or_else(|| {
                            Some(format!(
                                "the partition key ({}) cannot be read as text: {}",
                                table.key_source(),
                                e.reason
                            ))
                        }),
                    ),
                };
                let attempts = attempts(&table, r.get_ref(Field::Attempts.selected_as())?);
                Ok(Row {
                    seq: r.get(Field::Seq.selected_as())?,
                    key,
                    bucket: 0,
                    attempts: attempts_or_fail(attempts, &mut unreadable),
                    fields,
                    unreadable,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn mark_published(&mut self, seqs: &[i64], delete: bool) -> Result<(), SourceError> {
        let sql = if delete {
            self.sql.delete.clone()
        } else {
            self.sql.mark.clone()
        };
        let list = json_list(seqs);
        self.with(move |c| c.prepare_cached(&sql)?.execute([list]).map(drop))
            .await
    }

    async fn record_failure(
        &mut self,
        seq: i64,
        error: &str,
        give_up: bool,
    ) -> Result<(), SourceError> {
        let sql = self.sql.failure.clone();
        let error = error.to_owned();
        self.with(move |c| {
            c.prepare_cached(&sql)?
                .execute(params![seq, error, give_up])
                .map(drop)
        })
        .await
    }

    async fn delete_published(&mut self, age: Duration) -> Result<u64, SourceError> {
        let sql = self.sql.retention.clone();
        let modifier = format!("-{:.3} seconds", age.as_secs_f64());
        self.with(move |c| {
            c.prepare_cached(&sql)?
                .execute([modifier])
                .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn status(&mut self) -> Result<Status, SourceError> {
        let (status, oldest) = (self.sql.status.clone(), self.sql.oldest.clone());
        let (counts, occurred) = self
            .with(move |c| {
                let counts = c.query_row(&status, [], |r| {
                    Ok((
                        r.get::<_, i64>("pending")?,
                        r.get::<_, i64>("published")?,
                        r.get::<_, i64>("failed")?,
                    ))
                })?;
                // A time that is not text makes the age unknown, never the status an error.
                let occurred = c
                    .query_row(&oldest, [], |r| {
                        let t = text(r.get_ref("occurred_at")?).map_err(|e| e.reason);
                        Ok(Some((r.get::<_, i64>("seq")?, t)))
                    })
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })?;
                Ok((counts, occurred))
            })
            .await?;
        let count = |name: &str, n: i64| {
            u64::try_from(n)
                .map_err(|_| SourceError::fatal(format!("SQLite: the count `{name}` is {n}")))
        };
        let counts = (
            count("pending", counts.0)?,
            count("published", counts.1)?,
            count("failed", counts.2)?,
        );
        Ok(Status::new(&self.table, counts, occurred))
    }

    fn describe(&self) -> String {
        format!("SQLite {} table {}", self.path.display(), self.table.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The relay's own statements, on a table lacking the column a field is mapped to,
    /// without the start-up check: an error naming the column, never its name as a value.
    #[test]
    fn a_double_quoted_name_that_names_no_column_is_an_error_not_a_string() {
        let dir = testkit::tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        SqliteSource::init(&path, &Table::default()).unwrap();
        let mut table = Table::default();
        table.map_all("source=origin_misspelt").unwrap();
        let c = open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        for config in [
            DbConfig::SQLITE_DBCONFIG_DQS_DML,
            DbConfig::SQLITE_DBCONFIG_DQS_DDL,
        ] {
            assert!(!c.db_config(config).unwrap(), "{config:?} is off");
        }
        let sql = Statements::new(&table);
        let error = c.prepare(&sql.claim).expect_err("the claim is refused");
        let error = error.to_string();
        assert!(
            error.contains("no such column") && error.contains("origin_misspelt"),
            "{error}"
        );
        let mut missing = Table::default();
        missing.map_all("published_at=sent_at").unwrap();
        let sql = Statements::new(&missing);
        for statement in [&sql.mark, &sql.status, &sql.failure] {
            let error = c.prepare(statement).expect_err("refused");
            assert!(error.to_string().contains("sent_at"), "{error}");
        }
        // DDL too: an index on a name that is no column is refused, not built on a string.
        let error = c
            .execute_batch("CREATE INDEX i ON outbox_events (\"nope\")")
            .unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
    }
}
