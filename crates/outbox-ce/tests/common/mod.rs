//! Running the built `outbox-ce` binary.
#![allow(dead_code)]

pub mod relay;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::thread;

/// The workspace root, where `fixtures/` lives.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The python-outbox-core events, one JSON object a line.
pub const EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/python-outbox-core/events.jsonl"
);

/// What a run of `outbox-ce` left.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output, by line.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Standard error, by line.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// Runs `outbox-ce` in the workspace root with `args`, feeding it `stdin` when given.
pub fn outbox_ce(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args(args)
        .current_dir(ROOT)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Written from a thread so that a large input cannot dead-lock against the output.
        thread::spawn(move || pipe.write_all(&input));
    }
    let output = child.wait_with_output().unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The lines of [`EVENTS`].
pub fn events() -> Vec<String> {
    std::fs::read_to_string(EVENTS)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Creates `topic` with `partitions` partitions on the broker at `brokers`, through the admin
/// API. A topic of that name that already exists counts as created: test topics have names
/// of their own (process id and time), so it can only be this call's own: a request that
/// librdkafka sent again after a timeout.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30)));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for result in runtime
        .block_on(admin.create_topics([&new], &options))
        .unwrap()
    {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err(e) => panic!("creating {topic}: {e:?}"),
        }
    }
}
