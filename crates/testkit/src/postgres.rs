//! A PostgreSQL 15 server in a data directory of its own, on a loopback port of its own.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Where Debian installs the PostgreSQL 15 server programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The database [`Postgres::start`] creates.
const DATABASE: &str = "outbox";

/// The operating-system user the server runs as: PostgreSQL refuses to run as root.
const USER: &str = "postgres";

/// A running PostgreSQL server, stopped and its data directory removed on drop.
///
/// The server listens on `127.0.0.1` only, trusts every local connection (no password), and
/// has a superuser `postgres` and a database `outbox`.
#[derive(Debug)]
pub struct Postgres {
    dir: TempDir,
    port: u16,
    running: bool,
}

impl Postgres {
    /// Creates a cluster in a fresh temporary directory, starts it on a free loopback port and
    /// creates the database.
    ///
    /// # Errors
    ///
    /// PostgreSQL 15 is not installed (the message says to `apt-get install postgresql`), the
    /// user `postgres` does not exist, or `initdb`, `pg_ctl` or `createdb` failed (their output
    /// is in the message).
    pub fn start() -> io::Result<Self> {
        if !Path::new(BIN).join("initdb").exists() {
            return Err(io::Error::other(format!(
                "PostgreSQL 15 is not installed ({BIN}/initdb is missing): apt-get install postgresql"
            )));
        }
        let dir = tempfile::Builder::new().prefix("testkit-pg-").tempdir()?;
        std::fs::create_dir(dir.path().join("data"))?;
        std::fs::create_dir(dir.path().join("socket"))?;
        let (uid, gid) = postgres_ids()?;
        for path in [
            dir.path().to_path_buf(),
            dir.path().join("data"),
            dir.path().join("socket"),
        ] {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        as_postgres(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let mut last = None;
        // Another process may take the free port between the check and the server's bind.
        for _ in 0..5 {
            let port = free_port()?;
            match pg_ctl_start(dir.path(), port) {
                Ok(()) => {
                    let pg = Self {
                        dir,
                        port,
                        running: true,
                    };
                    pg.psql_in("postgres", &format!("create database {DATABASE}"))?;
                    return Ok(pg);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("pg_ctl start failed")))
    }

    /// `postgres://postgres@127.0.0.1:PORT/outbox`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The loopback port the server listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Whether the server was started and not stopped since.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server with a fast shutdown: open sessions are ended, and the connections of
    /// clients break.
    ///
    /// # Errors
    ///
    /// `pg_ctl stop` failed.
    pub fn stop(&mut self) -> io::Result<()> {
        self.pg_ctl_stop("fast")?;
        self.running = false;
        Ok(())
    }

    /// Starts the stopped server again, on the same port and data directory, and waits until
    /// it accepts connections.
    ///
    /// # Errors
    ///
    /// `pg_ctl start` failed (the server's log is in the message).
    pub fn start_again(&mut self) -> io::Result<()> {
        pg_ctl_start(self.dir.path(), self.port)?;
        self.running = true;
        Ok(())
    }

    /// Stops the server with a fast shutdown and starts it again.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Runs `sql` (one or more statements) in the database with `psql` and returns what it
    /// printed, unaligned, tuples only (`|` between columns, a line a row), without the last
    /// line break.
    ///
    /// # Errors
    ///
    /// `psql` failed or a statement failed (psql's message is in the error).
    pub fn psql(&self, sql: &str) -> io::Result<String> {
        self.psql_in(DATABASE, sql)
    }

    fn psql_in(&self, database: &str, sql: &str) -> io::Result<String> {
        let output = Command::new(Path::new(BIN).join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .output()?;
        let stdout = checked("psql", output)?;
        Ok(stdout.strip_suffix('\n').unwrap_or(&stdout).to_owned())
    }

    fn pg_ctl_stop(&self, mode: &str) -> io::Result<()> {
        let data = self.data_dir();
        as_postgres(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                mode.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "stop".as_ref(),
            ],
        )
        .map(drop)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl_stop("immediate");
        }
    }
}

/// Starts the server of the cluster in `dir` (its `data` and `socket` folders) on `port` and
/// waits until it accepts connections.
fn pg_ctl_start(dir: &Path, port: u16) -> io::Result<()> {
    let data = dir.join("data");
    let log = dir.join("server.log");
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.join("socket").display()
    );
    let started = as_postgres(
        "pg_ctl",
        &[
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-o".as_ref(),
            options.as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            "60".as_ref(),
            "start".as_ref(),
        ],
    );
    started.map(drop).map_err(|err| {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        io::Error::other(format!("{err}\nserver log:\n{log}"))
    })
}

/// Runs a PostgreSQL program from [`BIN`] as the user `postgres` and returns its output.
fn as_postgres(program: &str, args: &[&std::ffi::OsStr]) -> io::Result<String> {
    let output = Command::new("runuser")
        .args(["-u", USER, "--"])
        .arg(Path::new(BIN).join(program))
        .args(args)
        .current_dir("/")
        .output()?;
    checked(program, output)
}

fn checked(program: &str, output: Output) -> io::Result<String> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(io::Error::other(format!(
            "{program} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            stdout
        )))
    }
}

/// The user and group ids of `postgres`.
fn postgres_ids() -> io::Result<(u32, u32)> {
    let id = |flag: &str| -> io::Result<u32> {
        let output = Command::new("id").args([flag, USER]).output()?;
        checked("id", output)?.trim().parse().map_err(|_| {
            io::Error::other(format!(
                "no user `{USER}`: apt-get install postgresql creates it"
            ))
        })
    };
    Ok((id("-u")?, id("-g")?))
}

/// A loopback port nobody listens on now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_survives_a_restart_and_a_stop_breaks_connections() {
        let mut pg = Postgres::start().unwrap();
        assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));
        assert!(pg.url().ends_with("/outbox"));
        pg.psql("create table t (n int, s text); insert into t values (1, 'a'), (2, 'b')")
            .unwrap();
        assert_eq!(
            pg.psql("select n, s from t order by n").unwrap(),
            "1|a\n2|b"
        );

        let port = pg.port();
        pg.stop().unwrap();
        assert!(!pg.is_running());
        let err = pg.psql("select 1").unwrap_err();
        assert!(err.to_string().contains("psql failed"), "{err}");

        pg.start_again().unwrap();
        assert_eq!(pg.port(), port);
        assert_eq!(pg.psql("select sum(n) from t").unwrap(), "3");

        pg.restart().unwrap();
        assert_eq!(pg.psql("select count(*) from t").unwrap(), "2");

        let data = pg.data_dir();
        drop(pg);
        assert!(!data.exists());
    }

    #[test]
    fn servers_do_not_share_ports_or_data() {
        let a = Postgres::start().unwrap();
        let b = Postgres::start().unwrap();
        assert_ne!(a.port(), b.port());
        a.psql("create table only_in_a (n int)").unwrap();
        let err = b.psql("select * from only_in_a").unwrap_err();
        assert!(err.to_string().contains("only_in_a"), "{err}");
    }

    #[test]
    fn a_failed_statement_is_an_error_naming_it() {
        let pg = Postgres::start().unwrap();
        let err = pg.psql("select * from nowhere").unwrap_err();
        assert!(
            err.to_string()
                .contains("relation \"nowhere\" does not exist"),
            "{err}"
        );
    }
}
