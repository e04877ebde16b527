//! The relay on a real SQLite file, to standard output (a buffer): every row out in order and
//! marked, each mode and profile as `outbox-ce encode` writes it, trace context, invalid rows,
//! column mapping and the whole-message column.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use outbox_cloudevents::interchange::Record;
use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile};
use outbox_relay::{Destination, OnFailure, OutputMode, Table};

async fn init(lite: &Lite, table: &Table) {
    outbox_relay::init(&lite.database(), table).await.unwrap();
}

async fn status(lite: &Lite, table: &Table) -> (u64, u64, u64) {
    let s = outbox_relay::status(&lite.database(), table).await.unwrap();
    (s.pending, s.published, s.failed)
}

fn ids(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| header(l, "ce_id").unwrap().to_owned())
        .collect()
}

/// For each key, its ids in the order given.
fn per_key(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for (key, id) in pairs {
        match keys.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(id),
            None => keys.push((key, vec![id])),
        }
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn every_row_goes_out_once_in_key_order_and_is_marked() {
    let lite = Lite::new();
    let table = Table::default();
    init(&lite, &table).await;
    let rows: Vec<NewRow> = (1..=300)
        .map(|n| NewRow::new(n, &format!("order-{}", n % 7)))
        .collect();
    insert(&lite.path, &rows);
    assert_eq!(status(&lite, &table).await, (300, 0, 0));

    let mut options = options(lite.database(), table.clone());
    options.engine.config.batch_size = 50;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.published, 300);
    let lines = out.lines();
    let mut got = ids(&lines);
    assert_eq!(got.len(), 300);
    let sent = per_key(lines.iter().map(|l| {
        (
            l["key"].as_str().unwrap().to_owned(),
            header(l, "ce_id").unwrap().to_owned(),
        )
    }));
    let written = per_key(
        rows.iter()
            .map(|r| (r.aggregate_id.clone(), r.event_id.clone())),
    );
    assert_eq!(sent, written, "each key in seq order");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 300, "no row twice");
    assert_eq!(status(&lite, &table).await, (0, 300, 0));

    // Nothing left: a second run publishes nothing.
    let (summary, out) = run_to_buffer(common::options(lite.database(), table.clone())).await;
    assert_eq!(summary.published, 0);
    assert!(out.raw_lines().is_empty());
}

#[tokio::test]
async fn each_mode_and_profile_writes_what_encode_writes() {
    let rows: Vec<NewRow> = (1..=4)
        .map(|n| {
            let mut r = NewRow::new(n, &format!("cart-{}", n % 2));
            if n == 3 {
                r.partition_key = Some("tenant-9".into());
            }
            r
        })
        .collect();
    for (mode, profile) in [
        (OutputMode::Binary, Profile::Canonical),
        (OutputMode::Structured, Profile::Canonical),
        (OutputMode::Binary, Profile::python_outbox_core()),
        (OutputMode::Structured, Profile::python_outbox_core()),
        (OutputMode::OutboxJson, Profile::Canonical),
    ] {
        let lite = Lite::new();
        init(&lite, &Table::default()).await;
        insert(&lite.path, &rows);
        let mut options = options(lite.database(), Table::default());
        options.mode = mode;
        options.profile = profile.clone();
        let (_, out) = run_to_buffer(options).await;
        let mut got = out.raw_lines();
        let mut expected: Vec<String> = rows
            .iter()
            .map(|r| {
                // The event of the row, its payload text as stored (the relay keeps it byte
                // for byte; a to_message() line would be read member by member).
                let payload = Payload::from_json(r.payload.clone()).unwrap();
                let event =
                    OutboxEvent::<Payload>::from_message_json(to_message_line(r).as_bytes())
                        .unwrap()
                        .map_payload(|_| payload);
                let message = match mode {
                    OutputMode::Binary => Encoder::new(Mode::Binary)
                        .profile(profile.clone())
                        .encode(&event)
                        .unwrap(),
                    OutputMode::Structured => Encoder::new(Mode::Structured)
                        .profile(profile.clone())
                        .encode(&event)
                        .unwrap(),
                    OutputMode::OutboxJson => outbox_cloudevents::Message {
                        key: Some(event.partition_key().as_bytes().to_vec()),
                        headers: Vec::new(),
                        value: Some(event.to_message_json().unwrap()),
                    },
                };
                String::from_utf8(Record::from(message).to_json()).unwrap()
            })
            .collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{mode} {profile:?}");
        if mode == OutputMode::OutboxJson {
            let lines = out.lines();
            let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
            assert!(keys.contains(&"tenant-9"));
            assert!(lines.iter().all(|l| l["headers"] == serde_json::json!([])));
        }
    }
}

#[tokio::test]
async fn trace_columns_become_the_distributed_tracing_attributes() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let mut row = NewRow::new(1, "a");
    row.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    row.tracestate = Some("rojo=00f067aa0ba902b7".into());
    insert(&lite.path, &[row, NewRow::new(2, "a")]);
    let (_, out) = run_to_buffer(options(lite.database(), Table::default())).await;
    let lines = out.lines();
    assert_eq!(
        header(&lines[0], "ce_traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(
        header(&lines[0], "ce_tracestate"),
        Some("rojo=00f067aa0ba902b7")
    );
    assert_eq!(header(&lines[1], "ce_traceparent"), None);

    // Structured mode: top-level extension members.
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let mut row = NewRow::new(1, "a");
    row.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    insert(&lite.path, &[row]);
    let mut options = options(lite.database(), Table::default());
    options.mode = OutputMode::Structured;
    let (_, out) = run_to_buffer(options).await;
    let value: serde_json::Value =
        serde_json::from_str(out.lines()[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        value["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}

fn bad_rows() -> Vec<(NewRow, &'static str)> {
    let mut bad_type = NewRow::new(2, "k");
    bad_type.event_type = "not a type!".into();
    let mut bad_uuid = NewRow::new(3, "k");
    bad_uuid.event_id = "not-a-uuid".into();
    let mut bad_time = NewRow::new(4, "k");
    bad_time.occurred_at = "yesterday at noon".into();
    vec![
        (bad_type, "event_type"),
        (bad_uuid, "event_id"),
        (bad_time, "occurred_at"),
    ]
}

#[tokio::test]
async fn invalid_rows_fail_at_once_and_their_key_goes_on() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let bad = bad_rows();
    let mut rows = vec![NewRow::new(1, "k")];
    rows.extend(bad.iter().map(|(r, _)| r.clone()));
    rows.push(NewRow::new(5, "k"));
    rows.push(NewRow::new(6, "other"));
    insert(&lite.path, &rows);
    let mut options = options(lite.database(), Table::default());
    options.destination = Destination::Stdout(Some("dead".into()));
    options.engine.dead_letter = true;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (3, 3));
    let lines = out.lines();
    let (dead, main): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l["topic"] == "dead");
    let main_ids: Vec<&str> = main.iter().map(|l| header(l, "ce_id").unwrap()).collect();
    assert!(main_ids.contains(&uuid(6).as_str()));
    let k: Vec<&str> = main
        .iter()
        .filter(|l| l["key"] == "k")
        .map(|l| header(l, "ce_id").unwrap())
        .collect();
    assert_eq!(k, [uuid(1), uuid(5)], "the key went on past its bad rows");
    // Each bad row: marked failed at once with the library's error, and dead-lettered.
    let c = lite.connection();
    for (row, field) in &bad {
        let (attempts, error, failed): (i64, String, Option<String>) = c
            .query_row(
                "SELECT attempts, last_error, failed_at FROM outbox_events WHERE event_id = ?1",
                [&row.event_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(attempts, 1);
        assert!(error.contains(field), "{error}");
        assert!(failed.is_some());
        let letter = dead
            .iter()
            .find(|l| {
                let value: serde_json::Value =
                    serde_json::from_str(l["value"].as_str().unwrap()).unwrap();
                value["event_id"] == row.event_id.as_str()
            })
            .expect("dead letter");
        assert_eq!(header(letter, "outbox-error"), Some(error.as_str()));
        assert_eq!(letter["key"], "k");
    }
    assert_eq!(status(&lite, &Table::default()).await, (0, 3, 3));
}

#[tokio::test]
async fn on_failure_block_holds_the_key() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    let (bad, _) = bad_rows().remove(0);
    insert(
        &lite.path,
        &[
            NewRow::new(1, "k"),
            bad.clone(),
            NewRow::new(5, "k"),
            NewRow::new(6, "other"),
        ],
    );
    let mut options = options(lite.database(), Table::default());
    options.engine.on_failure = OnFailure::Block;
    let (summary, out) = run_to_buffer(options.clone()).await;
    assert_eq!((summary.published, summary.failed), (2, 1));
    let got = ids(&out.lines());
    assert!(got.contains(&uuid(1)) && got.contains(&uuid(6)));
    assert!(!got.contains(&uuid(5)), "held behind the failed row");
    assert_eq!(status(&lite, &Table::default()).await, (1, 2, 1));
    // Held again on the next run; once the failed row is cleared (and fixed), the key goes on.
    let (summary, _) = run_to_buffer(options.clone()).await;
    assert_eq!(summary.published, 0);
    lite.connection()
        .execute(
            "UPDATE outbox_events SET failed_at = NULL, event_type = 'com.example.fixed' WHERE event_id = ?1",
            [&bad.event_id],
        )
        .unwrap();
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.published, 2);
    assert_eq!(ids(&out.lines()), [uuid(2), uuid(5)]);
}

#[tokio::test]
async fn an_existing_table_is_mapped_by_column() {
    let lite = Lite::new();
    let mut table = Table::new("legacy_outbox").unwrap();
    table
        .map_all("event_id=id,event_type=kind,occurred_at=created_at,payload=body,traceparent=,tracestate=")
        .unwrap();
    let ddl = table.ddl(outbox_relay::Dialect::Sqlite);
    assert!(ddl.contains("\"kind\" text not null"), "{ddl}");
    assert!(!ddl.contains("traceparent"), "{ddl}");
    init(&lite, &table).await;
    lite.connection()
        .execute(
            "INSERT INTO legacy_outbox (id, kind, aggregate_id, source, created_at, body) \
             VALUES (?1, 'com.example.legacy', 'acct-1', 'ledger', '2024-05-01T10:00:00+02:00', '{\"x\":1}')",
            [uuid(7)],
        )
        .unwrap();
    let (summary, out) = run_to_buffer(options(lite.database(), table.clone())).await;
    assert_eq!(summary.published, 1);
    let line = &out.lines()[0];
    assert_eq!(header(line, "ce_type"), Some("com.example.legacy"));
    assert_eq!(header(line, "ce_time"), Some("2024-05-01T08:00:00Z"));
    assert_eq!(line["value"], r#"{"x":1}"#);
    assert_eq!(status(&lite, &table).await, (0, 1, 0));
}

#[tokio::test]
async fn a_whole_message_column_is_read_as_to_message() {
    let lite = Lite::new();
    let table = Table::new("py_outbox")
        .unwrap()
        .with_message_column("message")
        .unwrap();
    init(&lite, &table).await;
    let rows: Vec<NewRow> = (1..=3)
        .map(|n| {
            let mut r = NewRow::new(n, "inv-1");
            if n == 2 {
                r.partition_key = Some("tenant-2".into());
            }
            r
        })
        .collect();
    let c = lite.connection();
    for r in &rows {
        c.execute(
            "INSERT INTO py_outbox (message) VALUES (?1)",
            [to_message_line(r)],
        )
        .unwrap();
    }
    c.execute("INSERT INTO py_outbox (message) VALUES ('{not json')", [])
        .unwrap();
    let mut options = options(lite.database(), table.clone());
    options.mode = OutputMode::OutboxJson;
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!((summary.published, summary.failed), (3, 1));
    let lines = out.lines();
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"tenant-2") && keys.contains(&"inv-1"));
    for r in &rows {
        let expected = OutboxEvent::<Payload>::from_message_json(to_message_line(r).as_bytes())
            .unwrap()
            .to_message_json()
            .unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l["value"].as_str().unwrap().as_bytes() == expected.as_slice()),
            "{}",
            String::from_utf8_lossy(&expected)
        );
    }
    assert_eq!(status(&lite, &table).await, (0, 3, 1));
}

#[tokio::test]
async fn published_rows_can_be_deleted_at_once() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    insert(&lite.path, &[NewRow::new(1, "a"), NewRow::new(2, "b")]);
    let mut options = options(lite.database(), Table::default());
    options.engine.delete_published_after = Some(std::time::Duration::ZERO);
    let (summary, out) = run_to_buffer(options).await;
    assert_eq!(summary.published, 2);
    assert_eq!(out.raw_lines().len(), 2);
    let left: i64 = lite
        .connection()
        .query_row("SELECT count(*) FROM outbox_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

fn published_count(lite: &Lite, table: &str) -> i64 {
    lite.connection()
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE published_at IS NOT NULL"),
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn sqlite_missing_mapped_column_is_refused() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    insert(&lite.path, &[NewRow::new(1, "a")]);
    let mut table = Table::default();
    table.map_all("source=origin_misspelt").unwrap();
    let (error, out) = refused(options(lite.database(), table.clone())).await;
    assert!(
        error.contains("table `outbox_events`")
            && error.contains("`origin_misspelt` (for `source`)"),
        "{error}"
    );
    assert!(out.raw_lines().is_empty(), "nothing sent");
    assert_eq!(published_count(&lite, "outbox_events"), 0, "nothing marked");
    let error = outbox_relay::status(&lite.database(), &table)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("`origin_misspelt`"), "{error}");
}

#[tokio::test]
async fn sqlite_table_without_published_at_is_refused_not_read_as_all_published() {
    let lite = Lite::new();
    lite.connection()
        .execute_batch(
            "CREATE TABLE outbox_events (seq integer primary key, event_id text, event_type text, \
             aggregate_id text, source text, occurred_at text, data_version text, \
             correlation_id text, causation_id text, partition_key text, payload text, \
             traceparent text, tracestate text, attempts integer not null default 0, \
             last_error text);",
        )
        .unwrap();
    insert(&lite.path, &[NewRow::new(1, "a")]);
    let (error, out) = refused(options(lite.database(), Table::default())).await;
    assert!(
        error.contains("has no columns `published_at`, `failed_at`")
            && error.contains("relay migrate"),
        "{error}"
    );
    assert!(out.raw_lines().is_empty());
    let error = outbox_relay::status(&lite.database(), &Table::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("`published_at`"), "{error}");
}

#[tokio::test]
async fn sqlite_seq_that_is_not_unique_is_refused() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    lite.connection()
        .execute_batch("ALTER TABLE outbox_events ADD COLUMN pos integer not null default 7")
        .unwrap();
    insert(&lite.path, &[NewRow::new(1, "a"), NewRow::new(2, "b")]);
    lite.connection()
        .execute_batch("UPDATE outbox_events SET pos = 7")
        .unwrap();
    let mut table = Table::default();
    table.map_all("seq=pos").unwrap();
    let (error, out) = refused(options(lite.database(), table.clone())).await;
    assert!(error.contains("`pos` (for `seq`) is not unique"), "{error}");
    assert!(out.raw_lines().is_empty());
    assert_eq!(published_count(&lite, "outbox_events"), 0);
    // migrate would add the unique index, and refuses while two rows share a value,
    // changing nothing.
    let error = outbox_relay::migrate(&lite.database(), &table, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("UNIQUE"), "{error}");
    // A unique index of its own on the column (not a partial one) makes it the identity.
    lite.connection()
        .execute_batch("UPDATE outbox_events SET pos = seq * 10; CREATE UNIQUE INDEX by_pos_partial ON outbox_events (pos) WHERE pos > 10")
        .unwrap();
    let (error, _) = refused(options(lite.database(), table.clone())).await;
    assert!(
        error.contains("is not unique"),
        "a partial index is not enough: {error}"
    );
    lite.connection()
        .execute_batch("CREATE UNIQUE INDEX by_pos ON outbox_events (pos)")
        .unwrap();
    let (summary, out) = run_to_buffer(options(lite.database(), table)).await;
    assert_eq!(summary.published, 2);
    assert_eq!(ids(&out.lines()), [uuid(1), uuid(2)]);
}

#[tokio::test]
async fn sqlite_seq_that_may_be_null_is_refused() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    // Unique, but NULL is not a value a unique index counts: the third row's seq is NULL,
    // and no claim (`seq >= N`) would ever find it.
    lite.connection()
        .execute_batch(
            "ALTER TABLE outbox_events ADD COLUMN pos integer; \
             CREATE UNIQUE INDEX by_pos ON outbox_events (pos)",
        )
        .unwrap();
    insert(
        &lite.path,
        &[
            NewRow::new(1, "a"),
            NewRow::new(2, "b"),
            NewRow::new(3, "c"),
        ],
    );
    lite.connection()
        .execute_batch("UPDATE outbox_events SET pos = seq WHERE seq < 3")
        .unwrap();
    let mut table = Table::default();
    table.map_all("seq=pos").unwrap();
    let (error, out) = refused(options(lite.database(), table.clone())).await;
    assert!(error.contains("`pos` (for `seq`) may hold NULL"), "{error}");
    assert!(out.raw_lines().is_empty());
    assert_eq!(published_count(&lite, "outbox_events"), 0);
    let error = outbox_relay::migrate(&lite.database(), &table, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot make an existing column NOT NULL"),
        "{error}"
    );
    // The table's own `seq integer primary key` is the rowid: never NULL, taken as it is.
    let (summary, _) = run_to_buffer(options(lite.database(), Table::default())).await;
    assert_eq!(summary.published, 3);
}

/// A table as a service that used python-outbox-core's publisher keeps it: the event's
/// columns, an `id` for the order, `published_at`, none of the relay's other columns.
const PY_TABLE: &str = "CREATE TABLE events (id integer primary key, event_id text not null unique, \
     event_type text not null, aggregate_id text not null, source text not null, \
     occurred_at text not null, data_version text not null default '1.0', \
     correlation_id text, causation_id text, payload text not null, published_at text);";

fn py_insert(lite: &Lite, n: u32) {
    lite.connection()
        .execute(
            "INSERT INTO events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
             VALUES (?1, 'com.example.order.placed', 'o-1', 'orders', '2024-05-01T10:00:00Z', '{\"n\":1}')",
            [uuid(n)],
        )
        .unwrap();
}

fn schema_sql(lite: &Lite) -> Vec<String> {
    let c = lite.connection();
    let mut statement = c
        .prepare("SELECT coalesce(sql, name) FROM sqlite_master ORDER BY name")
        .unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn sqlite_migrate_brings_a_python_outbox_core_table_up_once() {
    let lite = Lite::new();
    lite.connection().execute_batch(PY_TABLE).unwrap();
    py_insert(&lite, 1);
    py_insert(&lite, 2);
    let mut table = Table::new("events").unwrap();
    table.map_all("seq=id").unwrap();
    // init leaves the table as it is and points to migrate.
    let error = outbox_relay::init(&lite.database(), &table)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("relay migrate") && error.contains("`attempts`"),
        "{error}"
    );

    let before = schema_sql(&lite);
    let planned = outbox_relay::migrate(&lite.database(), &table, true)
        .await
        .unwrap();
    assert_eq!(schema_sql(&lite), before, "--dry-run changes nothing");
    let added: Vec<&str> = planned
        .iter()
        .filter_map(|s| s.strip_prefix("ALTER TABLE \"events\" ADD COLUMN \""))
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(
        added,
        [
            "partition_key",
            "traceparent",
            "tracestate",
            "attempts",
            "last_error",
            "failed_at"
        ]
    );
    assert_eq!(
        planned.len(),
        added.len() + 2,
        "and the two indexes: {planned:#?}"
    );

    let run = outbox_relay::migrate(&lite.database(), &table, false)
        .await
        .unwrap();
    assert_eq!(run, planned);
    assert_ne!(schema_sql(&lite), before);
    let again = outbox_relay::migrate(&lite.database(), &table, false)
        .await
        .unwrap();
    assert!(again.is_empty(), "a second run does nothing: {again:?}");

    let (summary, out) = run_to_buffer(options(lite.database(), table.clone())).await;
    assert_eq!(summary.published, 2);
    assert_eq!(ids(&out.lines()), [uuid(1), uuid(2)]);
    assert_eq!(status(&lite, &table).await, (0, 2, 0));
}

#[tokio::test]
async fn sqlite_migrate_refuses_a_data_column_it_cannot_invent() {
    let lite = Lite::new();
    lite.connection()
        .execute_batch(&PY_TABLE.replace("event_id text not null unique, ", ""))
        .unwrap();
    let mut table = Table::new("events").unwrap();
    table.map_all("seq=id").unwrap();
    let before = schema_sql(&lite);
    let error = outbox_relay::migrate(&lite.database(), &table, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("table `events` has no column `event_id`, which `relay migrate` cannot add"),
        "{error}"
    );
    assert_eq!(schema_sql(&lite), before, "nothing changed");
    let error = outbox_relay::migrate(&lite.database(), &Table::new("nope").unwrap(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("table `nope` does not exist"), "{error}");
}

#[tokio::test]
async fn sqlite_file_replaced_under_a_running_relay_stops_it() {
    let lite = Lite::new();
    init(&lite, &Table::default()).await;
    insert(&lite.path, &[NewRow::new(1, "a")]);
    let mut options = options(lite.database(), Table::default());
    options.engine.once = false;
    options.engine.config.poll_interval = std::time::Duration::from_secs(1);
    let buf = SharedBuf::default();
    let sink = outbox_relay::stdout::StdoutSink::to_writer(buf.clone(), None);
    let source = outbox_relay::sqlite::SqliteSource::new(&lite.path, Table::default());
    let relay = tokio::spawn(outbox_relay::relay::run_with(
        source,
        sink,
        options,
        std::future::pending(),
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while buf.raw_lines().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first row was not published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Deleted and created again, as a reset of the service's database does it.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", lite.path.display()));
    }
    init(&lite, &Table::default()).await;
    insert(&lite.path, &[NewRow::new(1, "b"), NewRow::new(2, "b")]);
    let error = tokio::time::timeout(std::time::Duration::from_secs(60), relay)
        .await
        .expect("the relay stops")
        .unwrap()
        .expect_err("a fatal error")
        .to_string();
    // Seen deleted or seen replaced, as the claim falls between the two.
    assert!(
        (error.contains("was replaced by another file") || error.contains("was deleted"))
            && error.contains("while the relay ran")
            && error.contains(&lite.path.display().to_string()),
        "{error}"
    );
    assert_eq!(buf.raw_lines().len(), 1, "nothing of the new file sent");
    assert_eq!(
        published_count(&lite, "outbox_events"),
        0,
        "nothing of the new file marked"
    );
    // Started again, the relay reads the new file.
    let (summary, _) = run_to_buffer(common::options(lite.database(), Table::default())).await;
    assert_eq!(summary.published, 2);
}
