//! Runs the peer SDKs' decoder scripts under `scripts/peers/` (pinned installs under
//! `target/peers`, made by `scripts/peers/setup`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs the pinned peer SDKs once per test run; a no-op when they are up to date.
/// Panics (failing the test) when the installation fails: the suite never skips a peer.
pub fn setup() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let output = Command::new(root().join("scripts/peers/setup"))
            .current_dir(root())
            .output()
            .map_err(|e| format!("cannot run scripts/peers/setup: {e}"))?;
        check("scripts/peers/setup", &output).map(drop)
    });
    if let Err(e) = result {
        panic!("the peer SDKs could not be installed, so interop cannot be checked:\n{e}");
    }
}

fn check(what: &str, output: &Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{what} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A peer decoder script.
#[derive(Debug, Clone, Copy)]
pub enum Decoder {
    PythonCore,
    PythonV1,
    JavaScript,
    PythonOutboxCore,
}

impl Decoder {
    fn command(self) -> Command {
        let peers = root().join("scripts/peers");
        let python = || {
            let mut c = Command::new(root().join("target/peers/venv/bin/python"));
            c.env("PYTHONDONTWRITEBYTECODE", "1");
            c
        };
        match self {
            Decoder::PythonCore => {
                let mut c = python();
                c.arg(peers.join("decode_python_core.py"));
                c
            }
            Decoder::PythonV1 => {
                let mut c = python();
                c.arg(peers.join("decode_python_v1.py"));
                c
            }
            Decoder::PythonOutboxCore => {
                let mut c = python();
                c.arg(peers.join("decode_python_outbox_core.py"));
                c
            }
            Decoder::JavaScript => {
                let mut c = Command::new("node");
                c.arg(peers.join("decode_js.mjs"))
                    .env("NODE_PATH", root().join("target/peers/node/node_modules"));
                c
            }
        }
    }
}

/// Starts a decoder on `lines` (one interchange message each); `wait` gives its output lines,
/// one per input line.
pub struct Running {
    what: String,
    child: std::process::Child,
    expected: usize,
}

pub fn start(decoder: Decoder, name: &str, lines: &[Vec<u8>]) -> Running {
    setup();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join(format!("{name}-{}.jsonl", std::process::id()));
    let mut file = std::fs::File::create(&input).expect("temp file");
    for line in lines {
        file.write_all(line)
            .and_then(|()| file.write_all(b"\n"))
            .expect("temp file");
    }
    drop(file);
    let stdin = std::fs::File::open(&input).expect("temp file");
    let child = decoder
        .command()
        .current_dir(root())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {decoder:?} decoder: {e}"));
    let _ = std::fs::remove_file(&input);
    Running {
        what: format!("{decoder:?} decoder"),
        child,
        expected: lines.len(),
    }
}

impl Running {
    pub fn wait(self) -> Vec<String> {
        let output = self.child.wait_with_output().expect("decoder output");
        let stdout = check(&self.what, &output).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        assert_eq!(
            lines.len(),
            self.expected,
            "{} printed {} lines for {} messages:\n{stdout}\n{}",
            self.what,
            lines.len(),
            self.expected,
            String::from_utf8_lossy(&output.stderr)
        );
        lines
    }
}
