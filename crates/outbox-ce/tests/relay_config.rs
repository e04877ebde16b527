//! Configuration: flags, then python-outbox-core's `OUTBOX_*` variables, then its defaults.
//! A value out of python-outbox-core's range (or malformed) is refused with exit 2 and a
//! message naming the flag or variable, before anything is touched: no connection reaches
//! the database or the broker, no SQLite file is created. Values in range take effect: the
//! retry count decides how often a message the broker refuses for good is tried.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;

use common::relay::{Db, Relay, Target, status};

/// Loopback ports a test holds, so that any connection the relay makes is seen.
struct Trap {
    db: TcpListener,
    broker: TcpListener,
}

impl Trap {
    fn new() -> Self {
        let listen = || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            l
        };
        Self {
            db: listen(),
            broker: listen(),
        }
    }

    fn db_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/outbox",
            self.db.local_addr().unwrap().port()
        )
    }

    fn brokers(&self) -> String {
        self.broker.local_addr().unwrap().to_string()
    }

    fn assert_untouched(&self, case: &str) {
        for (what, l) in [("database", &self.db), ("broker", &self.broker)] {
            match l.accept() {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Ok(_) => panic!("{case}: the relay connected to the {what}"),
                Err(e) => panic!("{case}: {e}"),
            }
        }
    }
}

const REFUSED_VARIABLES: &[(&str, &str)] = &[
    ("OUTBOX_BATCH_SIZE", "0"),
    ("OUTBOX_BATCH_SIZE", "1001"),
    ("OUTBOX_BATCH_SIZE", "ten"),
    ("OUTBOX_POLL_INTERVAL_SECONDS", "0"),
    ("OUTBOX_POLL_INTERVAL_SECONDS", "3601"),
    ("OUTBOX_MAX_RETRY_COUNT", "-1"),
    ("OUTBOX_MAX_RETRY_COUNT", "101"),
    ("OUTBOX_RETRY_BACKOFF_MULTIPLIER", "0.99"),
    ("OUTBOX_RETRY_BACKOFF_MULTIPLIER", "10.01"),
    ("OUTBOX_ENABLE_METRICS", "maybe"),
    ("OUTBOX_ENABLE_HEALTH_CHECK", "sometimes"),
];

const REFUSED_FLAGS: &[(&str, &str)] = &[
    ("--batch-size", "0"),
    ("--batch-size", "1001"),
    ("--poll-interval", "500ms"),
    ("--poll-interval", "3601s"),
    ("--max-retries", "101"),
    ("--backoff-multiplier", "0.5"),
    ("--backoff-multiplier", "10.5"),
];

fn refused(args: &[&str], env: &[(&str, &str)], names: &str, case: &str) {
    let mut relay = Relay::spawn(args, env);
    let code = relay.wait();
    let stderr = relay.stderr();
    assert_eq!(code, 2, "{case}: exit {code}, {stderr}");
    assert!(
        stderr.contains(names),
        "{case}: {stderr:?} does not name {names}"
    );
    assert!(relay.stdout().is_empty(), "{case}");
}

#[test]
fn out_of_range_values_exit_2_before_any_connection() {
    for &(var, value) in REFUSED_VARIABLES {
        let trap = Trap::new();
        let (db, brokers) = (trap.db_url(), trap.brokers());
        let case = format!("{var}={value}");
        refused(
            &[
                "relay",
                "run",
                "--db",
                &db,
                "--brokers",
                &brokers,
                "--topic",
                "t",
            ],
            &[(var, value)],
            var,
            &case,
        );
        trap.assert_untouched(&case);
    }
    for &(flag, value) in REFUSED_FLAGS {
        let trap = Trap::new();
        let (db, brokers) = (trap.db_url(), trap.brokers());
        let case = format!("{flag} {value}");
        refused(
            &[
                "relay",
                "run",
                "--db",
                &db,
                "--brokers",
                &brokers,
                "--topic",
                "t",
                flag,
                value,
            ],
            &[],
            flag,
            &case,
        );
        trap.assert_untouched(&case);
    }
}

#[test]
fn out_of_range_values_leave_no_sqlite_file() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let db = format!("sqlite:{}", path.display());
    for &(var, value) in REFUSED_VARIABLES {
        let case = format!("{var}={value}");
        refused(
            &["relay", "run", "--db", &db, "--to", "stdout", "--once"],
            &[(var, value)],
            var,
            &case,
        );
        assert!(!path.exists(), "{case}: the SQLite file was created");
    }
}

#[test]
fn an_out_of_range_value_leaves_an_existing_table_untouched() {
    let db = Db::postgres();
    db.insert(0..10, 3);
    let before = db.rows();
    refused(
        &[
            "relay",
            "run",
            "--db",
            &db.url(),
            "--to",
            "stdout",
            "--once",
        ],
        &[("OUTBOX_BATCH_SIZE", "5000")],
        "OUTBOX_BATCH_SIZE",
        "OUTBOX_BATCH_SIZE=5000",
    );
    let after = db.rows();
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    assert_eq!(status(&db.url()).pending, 10);
}

/// A row whose message is larger than the producer's `message.max.bytes` (1 MB): a
/// permanent error for that message, so the row is tried `1 + max_retry_count` times and
/// then marked failed. Returns `attempts`.
fn attempts_for_an_oversized_row(env: &[(&str, &str)], flags: &[&str]) -> i64 {
    let db = Db::postgres();
    let target = Target::new("too-large", 1);
    db.execute(
        "insert into outbox_events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         values ('00000000-0000-4000-8000-000000000001', 'com.example.big', 'big', 'svc', now(), \
                 json_build_object('blob', repeat('x', 2000000)))",
    );
    db.insert(2..12, 3);
    let url = db.url();
    let args = target.run_args(&url, &[&["--once"], flags].concat());
    let mut relay = Relay::spawn(&args, env);
    let code = relay.wait();
    let rows = db.rows();
    let big = &rows[0];
    assert!(big.failed && !big.published, "{big:?}\n{}", relay.stderr());
    let error = big.last_error.as_deref().unwrap_or_default();
    assert!(error.to_lowercase().contains("large"), "{error}");
    assert!(rows[1..].iter().all(|r| r.published), "other rows went on");
    assert!(code == 0 || code == 1, "exit {code}");
    big.attempts
}

#[test]
fn the_retry_count_comes_from_outbox_max_retry_count_and_the_flag_beats_it() {
    let fast = ("OUTBOX_RETRY_BACKOFF_MULTIPLIER", "1.0");
    assert_eq!(
        attempts_for_an_oversized_row(&[("OUTBOX_MAX_RETRY_COUNT", "0"), fast], &[]),
        1
    );
    assert_eq!(
        attempts_for_an_oversized_row(&[("OUTBOX_MAX_RETRY_COUNT", "2"), fast], &[]),
        3
    );
    assert_eq!(
        attempts_for_an_oversized_row(
            &[("OUTBOX_MAX_RETRY_COUNT", "2"), fast],
            &["--max-retries", "1"]
        ),
        2
    );
}

/// A duration too long to compute a deadline from was a panic on SIGTERM (exit 101): every
/// duration flag is bounded where it is parsed.
#[test]
fn shutdown_timeout_4000000000000000h_is_a_usage_error() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("never.db").display());
    for flag in [
        "--shutdown-timeout",
        "--poll-interval",
        "--delete-published-after",
        "--once-stall-timeout",
        "--lag-degraded-after",
    ] {
        let run = common::outbox_ce(
            &[
                "relay",
                "run",
                "--db",
                &db,
                "--to",
                "stdout",
                flag,
                "4000000000000000h",
            ],
            None,
        );
        assert_eq!(run.status, 2, "{flag}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{flag}: `4000000000000000h` is longer than"))
                && run.stderr.contains("87600h"),
            "{flag}: {}",
            run.stderr
        );
    }
    let run = common::outbox_ce(
        &[
            "bridge",
            "--brokers",
            "127.0.0.1:1",
            "--from-topic",
            "a",
            "--to-topic",
            "b",
            "--group",
            "g",
            "--idle-exit",
            "4000000000000000h",
        ],
        None,
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--idle-exit: `4000000000000000h` is longer than"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("never.db").exists());
}

/// A malformed `--metrics-listen` is a usage error (exit 2) for the relay and the bridge; a
/// well-formed address that cannot be bound (in use) stays a runtime error (exit 1).
#[test]
fn metrics_listen_not_an_address_is_a_usage_error() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("never.db").display());
    for (addr, says) in [
        ("not-an-address", "`not-an-address` is not an address"),
        (
            "127.0.0.1:99999",
            "`127.0.0.1:99999`: `99999` is not a port",
        ),
    ] {
        let relay = common::outbox_ce(
            &[
                "relay",
                "run",
                "--db",
                &db,
                "--to",
                "stdout",
                "--metrics-listen",
                addr,
            ],
            None,
        );
        assert_eq!(relay.status, 2, "{}", relay.stderr);
        assert!(
            relay.stderr.contains(&format!("--metrics-listen: {says}")),
            "{}",
            relay.stderr
        );
        let bridge = common::outbox_ce(
            &[
                "bridge",
                "--brokers",
                "127.0.0.1:1",
                "--from-topic",
                "a",
                "--to-topic",
                "b",
                "--group",
                "g",
                "--metrics-listen",
                addr,
            ],
            None,
        );
        assert_eq!(bridge.status, 2, "{}", bridge.stderr);
        assert!(
            bridge.stderr.contains(&format!("--metrics-listen: {says}")),
            "{}",
            bridge.stderr
        );
    }
    assert!(!dir.path().join("never.db").exists());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = common::outbox_ce(
        &[
            "relay",
            "run",
            "--db",
            &db,
            "--to",
            "stdout",
            "--once",
            "--metrics-listen",
            &addr,
        ],
        None,
    );
    assert_eq!(run.status, 1, "an address in use: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!("--metrics-listen {addr}")),
        "{}",
        run.stderr
    );
}
