//! Running `outbox-ce relay` as a process of its own against a real PostgreSQL server or SQLite
//! file and a Kafka broker, and counting what reached the topic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testkit::tempfile::TempDir;
use testkit::{Broker, Message, Postgres, read_topic};

use super::{ROOT, Run, outbox_ce};

/// The upper bound of every wait for a condition: a relay that never gets there fails the
/// test instead of hanging it; a passing run never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// A relay process, killed on drop if still running. Its standard output and error go to
/// files, so that a long run cannot fill a pipe and stall.
pub struct Relay {
    child: Child,
    dir: TempDir,
    status: Option<i32>,
}

impl Relay {
    /// Starts `outbox-ce ARGS` with `env` added to the environment.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = testkit::tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_outbox-ce"));
        command
            .args(args)
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        Self {
            child: command.spawn().unwrap(),
            dir,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reaps the process.
    pub fn kill9(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let status = self.child.wait().unwrap();
            self.status = Some(status.code().unwrap_or(-1));
        }
    }

    /// Sends SIGTERM (with `kill -TERM`).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {} failed", self.pid());
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().unwrap() {
            Some(status) => {
                self.status = Some(status.code().unwrap_or(-1));
                false
            }
            None => true,
        }
    }

    /// Waits for the process to exit (at most [`PATIENCE`]) and returns its exit code (-1 for
    /// a signal).
    pub fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        while self.is_running() {
            if Instant::now() > deadline {
                self.kill9();
                panic!("the relay did not exit; its log:\n{}", self.stderr());
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.status.unwrap_or(-1)
    }

    /// What it wrote on standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// What it wrote on standard output so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after [`PATIENCE`].
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `relay status`: the counts of the outbox table.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub pending: i64,
    pub published: i64,
    pub failed: i64,
    pub oldest_pending_age_seconds: Option<f64>,
}

/// Runs `relay status --db DB` and reads its JSON object.
pub fn status(db: &str) -> Status {
    let run = outbox_ce(&["relay", "status", "--db", db], None);
    assert_eq!(run.status, 0, "relay status: {}", run.stderr);
    let lines = run.lines();
    assert_eq!(
        lines.len(),
        1,
        "relay status prints one line: {}",
        run.stdout
    );
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    let count = |name: &str| {
        v.get(name)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("relay status: no count `{name}` in {v}"))
    };
    let age = v
        .get("oldest_pending_age_seconds")
        .unwrap_or_else(|| panic!("relay status: no `oldest_pending_age_seconds` in {v}"));
    Status {
        pending: count("pending"),
        published: count("published"),
        failed: count("failed"),
        oldest_pending_age_seconds: if age.is_null() {
            None
        } else {
            Some(age.as_f64().unwrap())
        },
    }
}

/// `relay init --db DB`, which must succeed.
pub fn init(db: &str) -> Run {
    let run = outbox_ce(&["relay", "init", "--db", db], None);
    assert_eq!(run.status, 0, "relay init: {}", run.stderr);
    run
}

/// The event id of row number `i`: a valid version-4 UUID that names its row.
pub fn event_id(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

/// The key of row number `i` when rows are spread over `keys` keys.
pub fn key_of(i: u64, keys: u64) -> String {
    format!("order-{}", i % keys)
}

/// Inserts rows `range` into the PostgreSQL outbox table in one statement, in order, spread
/// over `keys` aggregates (each its own partition key).
pub fn insert_pg(pg: &Postgres, range: std::ops::Range<u64>, keys: u64) {
    if range.is_empty() {
        return;
    }
    let sql = format!(
        "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         select ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, \
                'com.example.order.placed', 'order-' || (i % {keys}), 'order-service', \
                timestamptz '2024-05-06T07:08:09.123456Z' + i * interval '1 millisecond', \
                json_build_object('order', i, 'total', 12.5, 'note', 'Zoë 🚀') \
         from generate_series({}, {}) as i order by i",
        range.start,
        range.end - 1
    );
    pg.psql(&sql).unwrap();
}

/// Inserts rows `range` into the SQLite outbox table at `path`, in order, as
/// [`insert_pg`] does.
pub fn insert_sqlite(path: &Path, range: std::ops::Range<u64>, keys: u64) {
    let mut conn = testkit::rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
                 values (?1, 'com.example.order.placed', ?2, 'order-service', ?3, ?4)",
            )
            .unwrap();
        for i in range {
            let time = format!("2024-05-06T07:08:{:02}.{:06}Z", (i / 1000) % 60, i % 1000);
            let payload = format!(r#"{{"order":{i},"total":12.5,"note":"Zoë 🚀"}}"#);
            insert
                .execute((event_id(i), key_of(i, keys), time, payload))
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// A row of the outbox table, as the checks need it.
#[derive(Debug, Clone)]
pub struct Row {
    pub seq: i64,
    pub event_id: String,
    pub key: String,
    pub published: bool,
    pub failed: bool,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Every row of the PostgreSQL outbox table, in `seq` order.
pub fn rows_pg(pg: &Postgres) -> Vec<Row> {
    let json = pg
        .psql(
            "select coalesce(json_agg(json_build_object(\
                'seq', seq, 'event_id', event_id::text, \
                'key', coalesce(partition_key, aggregate_id), \
                'published', published_at is not null, 'failed', failed_at is not null, \
                'attempts', attempts, 'last_error', last_error) order by seq), '[]') \
             from outbox_events",
        )
        .unwrap();
    let rows: Vec<Value> = serde_json::from_str(&json).unwrap();
    rows.iter()
        .map(|r| Row {
            seq: r["seq"].as_i64().unwrap(),
            event_id: r["event_id"].as_str().unwrap().to_owned(),
            key: r["key"].as_str().unwrap().to_owned(),
            published: r["published"].as_bool().unwrap(),
            failed: r["failed"].as_bool().unwrap(),
            attempts: r["attempts"].as_i64().unwrap(),
            last_error: r["last_error"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Every row of the SQLite outbox table at `path`, in `seq` order.
pub fn rows_sqlite(path: &Path) -> Vec<Row> {
    let conn = testkit::rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut select = conn
        .prepare(
            "select seq, event_id, coalesce(partition_key, aggregate_id), published_at is not null, \
                    failed_at is not null, attempts, last_error \
             from outbox_events order by seq",
        )
        .unwrap();
    select
        .query_map([], |r| {
            Ok(Row {
                seq: r.get(0)?,
                event_id: r.get(1)?,
                key: r.get(2)?,
                published: r.get(3)?,
                failed: r.get(4)?,
                attempts: r.get(5)?,
                last_error: r.get(6)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// What the topic holds compared with the table.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Messages on the topic.
    pub messages: usize,
    /// Distinct event ids on the topic.
    pub distinct: usize,
    /// Messages beyond the first of their event id.
    pub duplicates: usize,
}

/// The `ce_id` of a binary-mode message.
pub fn ce_id(m: &Message) -> &str {
    m.header("ce_id")
        .unwrap_or_else(|| panic!("message without a ce_id header: {m:?}"))
}

/// Checks the messages of a topic against the rows of the table:
/// - every message is the message of a row, keyed with the row's partition key;
/// - every row marked published is on the topic (a row is marked only after the broker
///   acknowledged it);
/// - no failed row is on the topic;
/// - for each key, the first delivery of each event comes in `seq` order, and all the
///   messages of a key are in one partition.
pub fn check_delivery(rows: &[Row], messages: &[Message]) -> Delivery {
    let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.event_id.as_str(), r)).collect();
    let mut seen = HashSet::new();
    let mut per_key: BTreeMap<&str, Vec<(i32, i64, i64)>> = BTreeMap::new();
    for m in messages {
        let id = ce_id(m);
        let row = by_id
            .get(id)
            .unwrap_or_else(|| panic!("message {id} on the topic is no row of the table"));
        assert_eq!(m.key_str(), Some(row.key.as_str()), "key of {id}");
        assert!(!row.failed, "failed row {id} is on the topic");
        if seen.insert(id) {
            per_key
                .entry(row.key.as_str())
                .or_default()
                .push((m.partition, m.offset, row.seq));
        }
    }
    for row in rows {
        if row.published {
            assert!(
                seen.contains(row.event_id.as_str()),
                "row {} (seq {}) is marked published but is not on the topic",
                row.event_id,
                row.seq
            );
        }
    }
    for (key, mut firsts) in per_key {
        let partitions: HashSet<i32> = firsts.iter().map(|f| f.0).collect();
        assert_eq!(
            partitions.len(),
            1,
            "key {key} is in partitions {partitions:?}"
        );
        firsts.sort();
        for pair in firsts.windows(2) {
            assert!(
                pair[0].2 < pair[1].2,
                "key {key}: seq {} reached the topic (offset {}) after seq {} (offset {})",
                pair[1].2,
                pair[1].1,
                pair[0].2,
                pair[0].1
            );
        }
    }
    Delivery {
        messages: messages.len(),
        distinct: seen.len(),
        duplicates: messages.len() - seen.len(),
    }
}

/// The outbox table's metadata columns, python-outbox-core's `to_message()` members of the
/// same names.
pub const OUTBOX_COLUMNS: [&str; 9] = [
    "event_id",
    "event_type",
    "aggregate_id",
    "occurred_at",
    "source",
    "data_version",
    "correlation_id",
    "causation_id",
    "partition_key",
];

/// A broker with a topic of its own: where a relay under test publishes.
pub struct Target {
    /// librdkafka's mock cluster, when the relay publishes to one; `None` on the shared
    /// Apache Kafka node.
    mock: Option<Broker>,
    /// The bootstrap servers.
    pub brokers: String,
    /// The topic the relay publishes to.
    pub topic: String,
}

impl Target {
    /// A topic named after `label`, of `partitions` partitions, on the shared Apache Kafka
    /// node (`OUTBOX_CE_BROKERS`) when there is one, else on a mock cluster of its own.
    pub fn new(label: &str, partitions: i32) -> Self {
        match std::env::var("OUTBOX_CE_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => Self::on(None, brokers, label, partitions),
            _ => Self::mock(label, partitions),
        }
    }

    /// A topic on a mock cluster of its own, whatever `OUTBOX_CE_BROKERS` says: for a test
    /// that injects a fault through [`Target::mock_cluster`] or [`Target::slow`].
    pub fn mock(label: &str, partitions: i32) -> Self {
        let broker = Broker::start().unwrap();
        let brokers = broker.bootstrap_servers();
        Self::on(Some(broker), brokers, label, partitions)
    }

    fn on(mock: Option<Broker>, brokers: String, label: &str, partitions: i32) -> Self {
        let target = Self {
            mock,
            brokers,
            topic: String::new(),
        };
        let topic = target.create_topic(label, partitions);
        Self { topic, ..target }
    }

    /// The mock cluster of a [`Target::mock`], to take it down or slow it.
    pub fn mock_cluster(&self) -> &Broker {
        self.mock
            .as_ref()
            .expect("a fault injected into a target not made by Target::mock")
    }

    /// Answers every request `rtt` late, so that messages stay in flight: a broker that is
    /// slow to answer, which only the mock cluster can be made to be.
    pub fn slow(self, rtt: Duration) -> Self {
        self.mock_cluster()
            .cluster()
            .broker_round_trip_time(-1, rtt)
            .unwrap();
        self
    }

    /// Another topic on the same broker, named after `label`.
    pub fn create_topic(&self, label: &str, partitions: i32) -> String {
        let topic = topic_name(label);
        match &self.mock {
            Some(broker) => broker.create_topic(&topic, partitions).unwrap(),
            None => super::create_topic(&self.brokers, &topic, partitions),
        }
        topic
    }

    /// `relay run --db DB --brokers … --topic …` followed by `extra`.
    pub fn run_args<'a>(&'a self, db: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let base = [
            "relay",
            "run",
            "--db",
            db,
            "--brokers",
            &self.brokers,
            "--topic",
            &self.topic,
        ];
        [&base[..], extra].concat()
    }

    /// Starts that relay.
    pub fn spawn(&self, db: &str, extra: &[&str]) -> Relay {
        Relay::spawn(&self.run_args(db, extra), &[])
    }

    /// Every message on `topic`, in offset order per partition.
    pub fn read(&self, topic: &str) -> Vec<Message> {
        read_topic(&self.brokers, topic).unwrap()
    }

    /// Every message on the relay's topic.
    pub fn messages(&self) -> Vec<Message> {
        self.read(&self.topic)
    }
}

/// A topic name of its own.
pub fn topic_name(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("relay-{label}-{}-{nanos}", std::process::id())
}

/// A loopback address nobody listens on now, for `--metrics-listen`.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET path` over HTTP/1.1 with `Connection: close`: the status code and the body, or `None`
/// when nothing answers at `addr`.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http_get_typed(addr, path).map(|(code, _, body)| (code, body))
}

/// As [`http_get`], with the `Content-Type` header's value (empty when absent).
pub fn http_get_typed(addr: &str, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let status_line = head.lines().next().unwrap();
    let code = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((code, header("content-type").unwrap_or_default(), body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// A small deterministic generator (xorshift64*), seeded from the clock and printed, so that a
/// failing run can be replayed with `RELAY_TEST_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new(label: &str) -> Self {
        let seed = std::env::var("RELAY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{label}: RELAY_TEST_SEED={seed}");
        Self(seed)
    }

    /// A number in `range`.
    pub fn below(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        range.start + r % (range.end - range.start)
    }
}

/// A path in `dir` for an SQLite database, and its `--db` URL.
pub fn sqlite_db(dir: &TempDir) -> (PathBuf, String) {
    let path = dir.path().join("outbox.db");
    let url = format!("sqlite:{}", path.display());
    (path, url)
}

/// An outbox database of the test's own: a PostgreSQL server or an SQLite file.
pub enum Db {
    Postgres(Postgres),
    Sqlite { dir: TempDir, path: PathBuf },
}

impl Db {
    /// A PostgreSQL server with the outbox table created by `relay init`.
    pub fn postgres() -> Self {
        let db = Self::Postgres(Postgres::start().unwrap());
        init(&db.url());
        db
    }

    /// An SQLite file with the outbox table created by `relay init`.
    pub fn sqlite() -> Self {
        let dir = testkit::tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let db = Self::Sqlite { dir, path };
        init(&db.url());
        db
    }

    /// The `--db` URL.
    pub fn url(&self) -> String {
        match self {
            Self::Postgres(pg) => pg.url(),
            Self::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
        }
    }

    /// The server, for a PostgreSQL database.
    pub fn pg(&self) -> &Postgres {
        match self {
            Self::Postgres(pg) => pg,
            Self::Sqlite { .. } => panic!("not a PostgreSQL database"),
        }
    }

    /// Inserts rows `range` spread over `keys` keys, in order.
    pub fn insert(&self, range: std::ops::Range<u64>, keys: u64) {
        match self {
            Self::Postgres(pg) => insert_pg(pg, range, keys),
            Self::Sqlite { path, .. } => insert_sqlite(path, range, keys),
        }
    }

    /// Runs one SQL statement (no result).
    pub fn execute(&self, sql: &str) {
        match self {
            Self::Postgres(pg) => drop(pg.psql(sql).unwrap()),
            Self::Sqlite { path, .. } => {
                let conn = testkit::rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(Duration::from_secs(30)).unwrap();
                conn.execute_batch(sql).unwrap();
            }
        }
    }

    /// Every row, in `seq` order.
    pub fn rows(&self) -> Vec<Row> {
        match self {
            Self::Postgres(pg) => rows_pg(pg),
            Self::Sqlite { path, .. } => rows_sqlite(path),
        }
    }

    /// How many rows are marked published, read straight from the table.
    pub fn published(&self) -> u64 {
        self.count("published_at is not null")
    }

    /// How many rows match `condition`.
    pub fn count(&self, condition: &str) -> u64 {
        let sql = format!("select count(*) from outbox_events where {condition}");
        match self {
            Self::Postgres(pg) => pg.psql(&sql).unwrap().parse().unwrap(),
            Self::Sqlite { path, .. } => {
                let conn = testkit::rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(Duration::from_secs(30)).unwrap();
                conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
            }
        }
    }
}

impl Db {
    /// The server, for a PostgreSQL database, to stop and start it.
    pub fn pg_mut(&mut self) -> &mut Postgres {
        match self {
            Self::Postgres(pg) => pg,
            Self::Sqlite { .. } => panic!("not a PostgreSQL database"),
        }
    }
}

/// Inserts `batch` rows every `every` on a thread of `scope` from row `first` on, until `stop`
/// is set; the thread returns the end of the range it inserted.
pub fn writer<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    db: &'scope Db,
    first: u64,
    batch: u64,
    every: Duration,
    keys: u64,
    stop: &'scope std::sync::atomic::AtomicBool,
) -> thread::ScopedJoinHandle<'scope, u64> {
    scope.spawn(move || {
        let mut next = first;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            db.insert(next..next + batch, keys);
            next += batch;
            thread::sleep(every);
        }
        next
    })
}
