//! The PostgreSQL source: several relays on one database, each owning a share of the keys,
//! woken by `NOTIFY` as soon as a row commits.
//!
//! Connections are plain TCP (tokio-postgres with `NoTls`): run the relay beside the database
//! or through a TLS-terminating proxy.
//!
//! Keys are hashed into [`BUCKETS`] buckets (`hashtext(key)` modulo the count, computed by the
//! server, so every relay agrees). A relay owns a bucket while its session holds the
//! session-level advisory lock `(namespace, bucket)`, and claims only rows of buckets it owns.
//! Each relay also holds a member lock `(member namespace, backend pid)`, so that a relay can
//! count the live relays in `pg_locks` and aim for a fair share, `ceil(BUCKETS / relays)`:
//! every [`Source::rebalance`] it gives up buckets beyond its share and takes free ones up to
//! it. PostgreSQL releases the locks of a session that ends, so the buckets of a relay that
//! died are free at once and taken at the next rebalance of the others.
//!
//! Before the first claim the relay checks the table's columns and that its `seq` column is
//! unique (from the catalogue), and that its role may write what the relay writes: the mark
//! and failure statements (and, with retention, the delete) run in a transaction that is
//! rolled back, which checks the privileges on each column, touching no row. It refuses to
//! start otherwise, having sent nothing.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, Config, GenericClient, NoTls, Statement};

use crate::inspect::{self, TableInfo};

use crate::schema::{
    BUCKET_AS, Dialect, Field, KEY_AS, MESSAGE_AS, Names, TEXT_FIELDS, Table, quote,
};
use crate::source::{
    ClaimOptions, NotText, Row, RowFields, Source, SourceError, Status, attempts_or_fail,
    bad_attempts,
};

/// The number of buckets keys are hashed into: the most relays that can share one table.
pub const BUCKETS: i32 = 64;

/// An outbox table in a PostgreSQL database.
pub struct PostgresSource {
    config: Config,
    url: String,
    table: Table,
    wakeup: Arc<Notify>,
    session: Option<Session>,
    namespace: i32,
    members: i32,
    deletes: bool,
    sql: Sql,
}

struct Session {
    client: Client,
    claim: Statement,
    claim_blocked: Statement,
    mark: Statement,
    delete: Statement,
    failure: Statement,
    owned: Vec<i32>,
}

struct Sql {
    claim: String,
    claim_blocked: String,
    mark: String,
    delete: String,
    failure: String,
    retention: String,
    status: String,
    oldest: String,
}

impl PostgresSource {
    /// A source for `table` in the database at `url` (`postgres://user:password@host:port/db`
    /// or `postgresql://`); nothing is opened before [`Source::connect`].
    ///
    /// # Errors
    /// A fatal [`SourceError`] for a URL that does not parse.
    pub fn new(url: &str, table: Table) -> Result<Self, SourceError> {
        let config =
            Config::from_str(url).map_err(|e| SourceError::fatal(format!("database URL: {e}")))?;
        let namespace = fnv(table.name()) & 0x3fff_ffff;
        Ok(PostgresSource {
            config,
            url: redact(url),
            sql: Sql::new(&table),
            table,
            wakeup: Arc::new(Notify::new()),
            session: None,
            namespace,
            members: namespace | 0x4000_0000,
            deletes: false,
        })
    }

    /// Whether the relay deletes published rows (retention): then the start-up check also
    /// requires the right to delete from the table.
    #[must_use]
    pub fn deleting_published(mut self, deletes: bool) -> Self {
        self.deletes = deletes;
        self
    }

    /// Creates the table, its indexes and the trigger that notifies relays, in one
    /// transaction. A table that is already there is left as it is, and must have what the
    /// relay needs (see [`PostgresSource::migrate`]).
    ///
    /// # Errors
    /// A [`SourceError`] when the database cannot be reached, a statement fails, or the table
    /// is there without a column the relay needs.
    pub async fn init(url: &str, table: &Table) -> Result<(), SourceError> {
        let mut client = connect_plain(url).await?;
        let transaction = client.transaction().await.map_err(classify)?;
        if let Some(info) = inspect_table(&transaction, table).await? {
            inspect::check(table, Some(&info), Dialect::Postgres).map_err(|e| {
                SourceError::fatal(format!(
                    "PostgreSQL: {e} (`relay init` leaves an existing table as it is)"
                ))
            })?;
        }
        transaction
            .batch_execute(&table.ddl(Dialect::Postgres))
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)
    }

    /// Adds what an existing table lacks (see [`crate::relay::migrate`]) in one transaction,
    /// or with `dry_run` only says what it would add; returns those statements, none when
    /// the table has everything.
    ///
    /// # Errors
    /// A [`SourceError`] when the database cannot be reached, the table is not there or
    /// lacks a column that cannot be added, or a statement fails (then nothing is changed).
    pub async fn migrate(
        url: &str,
        table: &Table,
        dry_run: bool,
    ) -> Result<Vec<String>, SourceError> {
        let mut client = connect_plain(url).await?;
        let transaction = client.transaction().await.map_err(classify)?;
        let info = inspect_table(&transaction, table).await?;
        let statements = inspect::plan(table, info.as_ref(), Dialect::Postgres)
            .map_err(|e| SourceError::fatal(format!("PostgreSQL: {e}")))?;
        if dry_run || statements.is_empty() {
            return Ok(statements);
        }
        for statement in &statements {
            transaction.batch_execute(statement).await.map_err(|e| {
                let e = classify(e);
                SourceError {
                    message: format!("{statement}: {}", e.message),
                    ..e
                }
            })?;
        }
        transaction.commit().await.map_err(classify)?;
        Ok(statements)
    }

    /// The counts `relay status` prints, on a connection of its own.
    ///
    /// # Errors
    /// A [`SourceError`] when the database cannot be reached, the table lacks a column, or
    /// a statement fails.
    pub async fn status_once(url: &str, table: &Table) -> Result<Status, SourceError> {
        let mut source = PostgresSource::new(url, table.clone())?;
        source.session = Some(Session::open(&source.config, &source.sql, None, &source).await?);
        source.status().await
    }

    fn session(&mut self) -> Result<&mut Session, SourceError> {
        self.session
            .as_mut()
            .ok_or_else(|| SourceError::transient("not connected"))
    }

    /// The buckets this relay owns now.
    pub fn owned_buckets(&self) -> Vec<i32> {
        self.session
            .as_ref()
            .map(|s| s.owned.clone())
            .unwrap_or_default()
    }
}

async fn connect_plain(url: &str) -> Result<Client, SourceError> {
    let config =
        Config::from_str(url).map_err(|e| SourceError::fatal(format!("database URL: {e}")))?;
    let (client, connection) = config.connect(NoTls).await.map_err(classify)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl Session {
    async fn open(
        config: &Config,
        sql: &Sql,
        wakeup: Option<Arc<Notify>>,
        source: &PostgresSource,
    ) -> Result<Session, SourceError> {
        let (client, mut connection) = config.connect(NoTls).await.map_err(classify)?;
        let listening = wakeup.is_some();
        tokio::spawn(async move {
            // Drives the connection and turns each notification into a wake-up; ends when
            // the connection does, which the next statement then reports.
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        if let Some(w) = &wakeup {
                            w.notify_one();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        // Marks commit asynchronously: a mark lost in a server crash only republishes rows
        // that were acknowledged (consumers deduplicate on the event id), and it does not wait
        // for a WAL flush that would hold up the next claim on this one connection. Failures
        // stay synchronous ([`Source::record_failure`]).
        client
            .batch_execute("SET TIME ZONE 'UTC'; SET synchronous_commit = off")
            .await
            .map_err(classify)?;
        if listening {
            client
                .batch_execute(&format!(
                    "LISTEN {}; SELECT pg_advisory_lock({}, pg_backend_pid());",
                    quote(&source.table.channel()),
                    source.members
                ))
                .await
                .map_err(classify)?;
        }
        // The columns first, so that a missing one is named as such, not by a failed prepare.
        let info = inspect_table(&client, &source.table).await?;
        let checked = if listening {
            inspect::check(&source.table, info.as_ref(), Dialect::Postgres)
        } else {
            inspect::check_columns(&source.table, info.as_ref(), Dialect::Postgres)
        };
        checked.map_err(|e| SourceError::fatal(format!("PostgreSQL: {e}")))?;
        let claim = client.prepare(&sql.claim).await.map_err(classify)?;
        let claim_blocked = client.prepare(&sql.claim_blocked).await.map_err(classify)?;
        check_claim(&claim)?;
        check_claim(&claim_blocked)?;
        let mark = client.prepare(&sql.mark).await.map_err(classify)?;
        let delete = client.prepare(&sql.delete).await.map_err(classify)?;
        let failure = client.prepare(&sql.failure).await.map_err(classify)?;
        Ok(Session {
            client,
            claim,
            claim_blocked,
            mark,
            delete,
            failure,
            owned: Vec::new(),
        })
    }

    /// Runs the statements the relay writes with in a transaction that is rolled back,
    /// touching no row: PostgreSQL checks the role's privileges on each table and column
    /// they name (and refuses a read-only transaction) all the same.
    async fn probe_writes(&mut self, table: &Table, deletes: bool) -> Result<(), SourceError> {
        let none: &[i64] = &[];
        let transaction = self.client.transaction().await.map_err(classify)?;
        let mut result = transaction.execute(&self.mark, &[&none]).await;
        if result.is_ok() {
            result = transaction
                .execute(&self.failure, &[&None::<i64>, &"", &false])
                .await;
        }
        if result.is_ok() && deletes {
            result = transaction.execute(&self.delete, &[&none]).await;
        }
        match result.map_err(classify) {
            Ok(_) => transaction.rollback().await.map_err(classify),
            Err(e) if e.transient => Err(e),
            Err(e) => Err(SourceError::fatal(format!(
                "{e}: the relay cannot write to table `{}`, so it would publish rows it \
                 cannot mark published",
                table.name()
            ))),
        }
    }
}

/// What the catalogue says about `table` (found as the relay's statements find it, through
/// the search path): `None` when there is no such table.
async fn inspect_table(
    client: &impl GenericClient,
    table: &Table,
) -> Result<Option<TableInfo>, SourceError> {
    const SQL: &str = "SELECT \
        (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a \
          WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns, \
        (SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a \
          ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
          WHERE i.indrelid = r.oid AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1 \
          AND i.indpred IS NULL AND i.indexprs IS NULL) AS uniq, \
        (SELECT array_agg(a.attname::text) FROM pg_attribute a \
          WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped \
          AND a.attnotnull) AS not_null, \
        (SELECT array_agg(c.relname::text) FROM pg_index i JOIN pg_class c \
          ON c.oid = i.indexrelid WHERE i.indrelid = r.oid) AS indexes, \
        (SELECT array_agg(t.tgname::text) FROM pg_trigger t \
          WHERE t.tgrelid = r.oid AND NOT t.tgisinternal) AS triggers \
        FROM (SELECT to_regclass($1::text) AS oid) AS r WHERE r.oid IS NOT NULL";
    let row = client
        .query_opt(SQL, &[&table.quoted()])
        .await
        .map_err(classify)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let names = |name: &str| get::<Option<Vec<String>>>(&row, name).map(Option::unwrap_or_default);
    Ok(Some(TableInfo {
        columns: names("columns")?,
        unique: names("uniq")?,
        not_null: names("not_null")?,
        indexes: names("indexes")?,
        triggers: names("triggers")?,
    }))
}

impl Sql {
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
        let key = table.key_expr(Dialect::Postgres);
        let bucket = format!("(((hashtext({key}) % {BUCKETS}) + {BUCKETS}) % {BUCKETS})");
        let claim = format!(
            "SELECT {}, {bucket}::int4 AS {} FROM {t} AS o WHERE {pending} AND {seq} >= $1 \
             AND {bucket} = ANY($2::int4[]) AND NOT ({seq} = ANY($3::int8[]))",
            table.select_list(Dialect::Postgres),
            quote(BUCKET_AS),
        );
        let blocked = table.blocked_condition(Dialect::Postgres);
        // Qualified, so that no name the claim selects a value as can stand for it.
        let order = format!(" ORDER BY o.{seq} LIMIT $4");
        Sql {
            claim_blocked: format!("{claim}{blocked}{order}"),
            claim: format!("{claim}{order}"),
            mark: format!(
                "UPDATE {t} SET {published} = now() \
                 WHERE {seq} = ANY($1::int8[]) AND {published} IS NULL"
            ),
            delete: format!("DELETE FROM {t} WHERE {seq} = ANY($1::int8[])"),
            // `attempts + 1` past the largest value of the column's type would fail the
            // statement: it stays there. Any other value than an integer starts again at 1.
            failure: format!(
                "UPDATE {t} SET {attempts} = CASE WHEN {attempts}::text !~ '^-?[0-9]{{1,19}}$' \
                 OR {attempts} IS NULL THEN 1 \
                 ELSE least({attempts}::text::numeric + 1, CASE pg_typeof({attempts}) \
                 WHEN 'smallint'::regtype THEN 32767 WHEN 'integer'::regtype THEN 2147483647 \
                 ELSE 9223372036854775807 END) END, \
                 {last_error} = $2, \
                 {failed} = CASE WHEN $3 THEN now() ELSE {failed} END \
                 WHERE {seq} = $1 AND {published} IS NULL"
            ),
            retention: format!(
                "DELETE FROM {t} WHERE {published} IS NOT NULL \
                 AND {published} < now() - make_interval(secs => $1)"
            ),
            status: format!(
                "SELECT count(*) FILTER (WHERE {pending}) AS pending, \
                 count(*) FILTER (WHERE {published} IS NOT NULL) AS published, \
                 count(*) FILTER (WHERE {failed} IS NOT NULL AND {published} IS NULL) AS failed \
                 FROM {t}"
            ),
            oldest: format!(
                "SELECT {} AS occurred_at, {seq}::int8 AS seq FROM {t} AS o WHERE {pending} \
                 ORDER BY o.{seq} LIMIT 1",
                table.occurred_expr(Dialect::Postgres)
            ),
        }
    }
}

/// Whether an error may go away by itself: a lost connection, a server starting or shutting
/// down, too many connections, a serialisation failure or deadlock.
fn classify(e: tokio_postgres::Error) -> SourceError {
    let transient = match e.code() {
        None => true,
        Some(code) => {
            let class = &code.code()[..2.min(code.code().len())];
            matches!(class, "08" | "53" | "57" | "40")
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
        }
    };
    let message = format!("PostgreSQL: {}", error_text(&e));
    if transient {
        SourceError::transient(message)
    } else {
        SourceError::fatal(message)
    }
}

fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// FNV-1a, a hash that is the same on every machine and release.
fn fnv(text: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Checks that a claim selects every value a row is read from, by its name and of the type
/// it is read as, so that reading a row can fail only on its own values.
fn check_claim(statement: &Statement) -> Result<(), SourceError> {
    use tokio_postgres::types::Type;
    let int8 = [Field::Seq.selected_as()];
    let text = TEXT_FIELDS.iter().map(|f| f.selected_as()).chain([
        KEY_AS,
        MESSAGE_AS,
        Field::Attempts.selected_as(),
    ]);
    let expected = int8
        .into_iter()
        .map(|n| (n, Type::INT8))
        .chain([(BUCKET_AS, Type::INT4)])
        .chain(text.map(|n| (n, Type::TEXT)));
    for (name, ty) in expected {
        let found = statement.columns().iter().find(|c| c.name() == name);
        match found {
            Some(c) if *c.type_() == ty => {}
            Some(c) => {
                return Err(SourceError::fatal(format!(
                    "PostgreSQL: the claim selects `{name}` as {}, not {ty}",
                    c.type_()
                )));
            }
            None => {
                return Err(SourceError::fatal(format!(
                    "PostgreSQL: the claim does not select `{name}`"
                )));
            }
        }
    }
    Ok(())
}

/// A value of a row that the statement selects as `name`, or a source error naming it.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    name: &str,
) -> Result<T, SourceError> {
    row.try_get(name)
        .map_err(|e| SourceError::fatal(format!("PostgreSQL: `{name}`: {}", error_text(&e))))
}

/// A row's `attempts`, selected as text so that any value the column holds reads: an
/// integer, or what it holds instead (see [`bad_attempts`]).
fn attempts(table: &Table, row: &tokio_postgres::Row) -> Result<i64, String> {
    let text: Option<String> = row.try_get(Field::Attempts.selected_as()).map_err(|e| {
        bad_attempts(
            table,
            &format!("a value that is not text ({})", error_text(&e)),
        )
    })?;
    match text {
        None => Err(bad_attempts(table, "NULL")),
        Some(t) => t
            .parse()
            .map_err(|_| bad_attempts(table, &format!("`{t}`"))),
    }
}

/// A count the database returned, which is never negative.
fn count(row: &tokio_postgres::Row, name: &str) -> Result<u64, SourceError> {
    let n: i64 = get(row, name)?;
    u64::try_from(n).map_err(|_| SourceError::fatal(format!("PostgreSQL: `{name}` is {n}")))
}

impl Source for PostgresSource {
    async fn connect(&mut self) -> Result<(), SourceError> {
        self.session = None;
        let mut session = Session::open(
            &self.config,
            &self.sql,
            Some(Arc::clone(&self.wakeup)),
            self,
        )
        .await?;
        session.probe_writes(&self.table, self.deletes).await?;
        self.session = Some(session);
        // Rows may have come in while no one was listening.
        self.wakeup.notify_one();
        Ok(())
    }

    async fn claim(
        &mut self,
        options: ClaimOptions,
        exclude: &[i64],
    ) -> Result<Vec<Row>, SourceError> {
        let session = self.session()?;
        if session.owned.is_empty() {
            return Ok(Vec::new());
        }
        let statement = if options.skip_blocked_keys {
            &session.claim_blocked
        } else {
            &session.claim
        };
        let limit = i64::try_from(options.limit).unwrap_or(i64::MAX);
        let rows = session
            .client
            .query(
                statement,
                &[&options.from, &session.owned, &exclude, &limit],
            )
            .await
            .map_err(classify)?;
        let table = &self.table;
        rows.iter()
            .map(|r| {
                let (fields, unreadable) = RowFields::read(table, |name| {
                    r.try_get::<_, Option<String>>(name)
                        .map_err(|e| NotText::from(error_text(&e)))
                });
                let key = r.try_get::<_, Option<String>>(KEY_AS);
                let (key, mut unreadable) = match key {
                    Ok(key) => (key, unreadable),
                    Err(e) => (
                        None,
                        unreadable.or_else(|| {
                            Some(format!(
                                "the partition key ({}) cannot be read as text: {}",
                                table.key_source(),
                                error_text(&e)
                            ))
                        }),
                    ),
                };
                let attempts = attempts(table, r);
                Ok(Row {
                    seq: get(r, Field::Seq.selected_as())?,
                    key,
                    attempts: attempts_or_fail(attempts, &mut unreadable),
                    bucket: get(r, BUCKET_AS)?,
                    fields,
                    unreadable,
                })
            })
            .collect()
    }

    async fn mark_published(&mut self, seqs: &[i64], delete: bool) -> Result<(), SourceError> {
        let session = self.session()?;
        let statement = if delete {
            &session.delete
        } else {
            &session.mark
        };
        session
            .client
            .execute(statement, &[&seqs])
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn record_failure(
        &mut self,
        seq: i64,
        error: &str,
        give_up: bool,
    ) -> Result<(), SourceError> {
        let session = self.session()?;
        // Durable before the next row of its key is sent: a failure lost in a server crash
        // would make the row pending again behind a later row already on the topic.
        let transaction = session.client.transaction().await.map_err(classify)?;
        transaction
            .batch_execute("SET LOCAL synchronous_commit = on")
            .await
            .map_err(classify)?;
        transaction
            .execute(&session.failure, &[&seq, &error, &give_up])
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)
    }

    async fn delete_published(&mut self, age: Duration) -> Result<u64, SourceError> {
        let sql = self.sql.retention.clone();
        let session = self.session()?;
        session
            .client
            .execute(&sql, &[&age.as_secs_f64()])
            .await
            .map_err(classify)
    }

    async fn status(&mut self) -> Result<Status, SourceError> {
        let (status, oldest) = (self.sql.status.clone(), self.sql.oldest.clone());
        let session = self.session()?;
        let counts = session
            .client
            .query_one(&status, &[])
            .await
            .map_err(classify)?;
        let occurred = match session
            .client
            .query_opt(&oldest, &[])
            .await
            .map_err(classify)?
        {
            Some(r) => Some((
                get::<i64>(&r, "seq")?,
                r.try_get::<_, Option<String>>("occurred_at")
                    .map_err(|e| error_text(&e)),
            )),
            None => None,
        };
        let counts = (
            count(&counts, "pending")?,
            count(&counts, "published")?,
            count(&counts, "failed")?,
        );
        Ok(Status::new(&self.table, counts, occurred))
    }

    async fn rebalance(&mut self) -> Result<(Vec<i32>, bool), SourceError> {
        let (namespace, members) = (self.namespace, self.members);
        let session = self.session()?;
        let row = session
            .client
            .query_one(
                "SELECT count(*) AS live FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND objsubid = 2 AND classid = $1::int8::oid \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&i64::from(members)],
            )
            .await
            .map_err(classify)?;
        let live: i64 = get(&row, "live")?;
        let live = i32::try_from(live.max(1)).unwrap_or(BUCKETS);
        let share = usize::try_from((BUCKETS + live - 1) / live).unwrap_or(1);
        let mut released = Vec::new();
        if session.owned.len() > share {
            released = session.owned.split_off(share);
            session
                .client
                .execute(
                    "SELECT pg_advisory_unlock($1, b) FROM unnest($2::int4[]) AS b",
                    &[&namespace, &released],
                )
                .await
                .map_err(classify)?;
        }
        let mut taken = false;
        if session.owned.len() < share {
            // Start at a point of our own so that relays do not all race for bucket 0.
            let start = usize::try_from(std::process::id()).unwrap_or(0);
            let candidates: Vec<i32> = (0..BUCKETS)
                .map(|i| (i + i32::try_from(start % 64).unwrap_or(0)) % BUCKETS)
                .filter(|b| !session.owned.contains(b))
                .collect();
            let wanted = i64::try_from(share - session.owned.len()).unwrap_or(0);
            let rows = session
                .client
                .query(
                    "SELECT b FROM unnest($2::int4[]) AS b \
                     WHERE pg_try_advisory_lock($1, b) LIMIT $3",
                    &[&namespace, &candidates, &wanted],
                )
                .await
                .map_err(classify)?;
            for row in rows {
                session.owned.push(get(&row, "b")?);
                taken = true;
            }
            session.owned.sort_unstable();
        }
        Ok((released, taken))
    }

    fn wakeup(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.wakeup))
    }

    fn describe(&self) -> String {
        format!("PostgreSQL {} table {}", self.url, self.table.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
    }

    #[test]
    fn namespaces_are_stable() {
        assert_eq!(fnv("outbox_events"), fnv("outbox_events"));
        assert_ne!(fnv("outbox_events"), fnv("other"));
    }
}
