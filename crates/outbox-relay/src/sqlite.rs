//! The SQLite source: one file, one relay, no server. Polls; never notified.
//!
//! Times are written as RFC 3339 text in UTC with milliseconds
//! (`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`). Statements run on tokio's blocking pool; a
//! database locked by a writer is waited for five seconds, then retried as a transient error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};

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
    sql: Statements,
}

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
            sql,
        }
    }

    /// Creates the table and its index in the file at `path` (creating the file), and turns
    /// on write-ahead logging so that writers and the relay do not block each other.
    ///
    /// # Errors
    /// A [`SourceError`] when the file cannot be opened or a statement fails.
    pub fn init(path: impl AsRef<Path>, table: &Table) -> Result<(), SourceError> {
        let connection = Connection::open(path.as_ref()).map_err(|e| fatal(path.as_ref(), e))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fatal(path.as_ref(), e))?;
        connection
            .execute_batch(&table.ddl(Dialect::Sqlite))
            .map_err(|e| fatal(path.as_ref(), e))
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
        let path = self.path.clone();
        let connection = tokio::task::spawn_blocking(move || {
            // No CREATE: a relay pointed at a file that does not exist says so.
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let connection =
                Connection::open_with_flags(&path, flags).map_err(|e| fatal(&path, e))?;
            connection
                .busy_timeout(Duration::from_secs(5))
                .map_err(|e| fatal(&path, e))?;
            Ok::<_, SourceError>(connection)
        })
        .await
        .map_err(|e| SourceError::fatal(format!("SQLite task: {e}")))??;
        self.connection = Some(Arc::new(Mutex::new(connection)));
        Ok(())
    }

    async fn claim(
        &mut self,
        options: ClaimOptions,
        exclude: &[i64],
    ) -> Result<Vec<Row>, SourceError> {
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
