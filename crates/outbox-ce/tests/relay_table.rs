//! The relay checks the table before it reads or sends anything: a missing column, a
//! database it cannot write to, exit 1 with nothing touched; `relay migrate` adds what an
//! existing table lacks, and `relay init` points to it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use common::relay::{event_id, init, insert_sqlite, status};
use common::{Run, outbox_ce};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `outbox-ce ARGS` as a user that cannot write what the permissions do not let it write:
/// `nobody` when the tests run as root (whom no file mode stops), else the user itself.
fn outbox_ce_unprivileged(args: &[&str], dir: &Path) -> Run {
    let binary = env!("CARGO_BIN_EXE_outbox-ce");
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", binary]);
        c
    } else {
        Command::new(binary)
    };
    let output = command.args(args).current_dir(dir).output().unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A database in journal mode DELETE with one pending row, in a directory others may enter.
fn delete_journal_db() -> (testkit::tempfile::TempDir, std::path::PathBuf, String) {
    let dir = testkit::tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let path = dir.path().join("outbox.db");
    let url = format!("sqlite:{}", path.display());
    init(&url);
    insert_sqlite(&path, 0..1, 1);
    testkit::rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "journal_mode", "DELETE")
        .unwrap();
    (dir, path, url)
}

#[test]
fn sqlite_read_only_database_is_refused_before_anything_is_sent() {
    // The file not writable; then the file writable but its directory not (it belongs to
    // another user), so that the rollback journal a write needs cannot be created.
    for file_mode in [0o644, 0o666] {
        let (dir, path, url) = delete_journal_db();
        chmod(&path, file_mode);
        let run = outbox_ce_unprivileged(
            &["relay", "run", "--db", &url, "--to", "stdout", "--once"],
            dir.path(),
        );
        assert_eq!(run.status, 1, "{file_mode:o}: {}", run.stderr);
        assert_eq!(run.stdout, "", "nothing sent");
        assert!(
            run.stderr.contains("readonly database")
                && run.stderr.contains(
                    "cannot write to the database, so it would publish rows it cannot mark"
                ),
            "{}",
            run.stderr
        );
        // Reading is all `relay status` needs.
        let run = outbox_ce_unprivileged(&["relay", "status", "--db", &url], dir.path());
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert!(run.stdout.contains("\"pending\":1"), "{}", run.stdout);
        let now = status(&url);
        assert_eq!((now.pending, now.published), (1, 0), "nothing marked");
        assert!(!path.with_extension("db-journal").exists());
    }
}

#[test]
fn relay_run_and_status_exit_1_on_a_missing_column() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let url = format!("sqlite:{}", path.display());
    init(&url);
    insert_sqlite(&path, 0..2, 1);
    for sub in [&["run", "--to", "stdout", "--once"][..], &["status"][..]] {
        let args = [
            &[
                "relay",
                sub[0],
                "--db",
                &url,
                "--column",
                "source=origin_misspelt",
            ][..],
            &sub[1..],
        ]
        .concat();
        let run = outbox_ce(&args, None);
        assert_eq!(run.status, 1, "{sub:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
        assert!(
            run.stderr
                .contains("table `outbox_events` has no column `origin_misspelt` (for `source`)"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(status(&url).pending, 2, "nothing touched");
}

#[test]
fn relay_migrate_prints_its_sql_runs_once_and_init_points_to_it() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let url = format!("sqlite:{}", path.display());
    let c = testkit::rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE events (id integer primary key, event_id text not null unique, \
         event_type text not null, aggregate_id text not null, source text not null, \
         occurred_at text not null, payload text not null, published_at text);",
    )
    .unwrap();
    c.execute(
        "INSERT INTO events (event_id, event_type, aggregate_id, source, occurred_at, payload) \
         VALUES (?1, 'com.example.a', 'k', 'svc', '2024-05-01T10:00:00Z', '{}')",
        [event_id(1)],
    )
    .unwrap();
    let table = ["--db", &url, "--table", "events", "--column", "seq=id"];
    let sql_of = || -> String {
        c.query_row(
            "SELECT group_concat(sql, ';') FROM sqlite_master",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = sql_of();

    let run = outbox_ce(&[&["relay", "init"][..], &table].concat(), None);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("outbox-ce relay migrate"),
        "{}",
        run.stderr
    );
    assert_eq!(sql_of(), before);

    let dry = outbox_ce(
        &[&["relay", "migrate"][..], &table, &["--dry-run"]].concat(),
        None,
    );
    assert_eq!(dry.status, 0, "{}", dry.stderr);
    assert!(
        dry.lines().contains(
            &"ALTER TABLE \"events\" ADD COLUMN \"attempts\" integer not null default 0;"
        ),
        "{}",
        dry.stdout
    );
    assert!(dry.stderr.contains("nothing changed"), "{}", dry.stderr);
    assert_eq!(sql_of(), before, "--dry-run changes nothing");

    let run = outbox_ce(&[&["relay", "migrate"][..], &table].concat(), None);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, dry.stdout, "it runs what --dry-run printed");
    let again = outbox_ce(&[&["relay", "migrate"][..], &table].concat(), None);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert_eq!(again.stdout, "");
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);

    let published = outbox_ce(
        &[&["relay", "run"][..], &table, &["--to", "stdout", "--once"]].concat(),
        None,
    );
    assert_eq!(published.status, 0, "{}", published.stderr);
    assert_eq!(published.lines().len(), 1);
    assert!(published.stdout.contains(&event_id(1)));

    let help = outbox_ce(&["relay", "migrate", "--help"], None);
    assert_eq!(help.status, 0);
    assert!(help.stdout.contains("--dry-run"));
}
