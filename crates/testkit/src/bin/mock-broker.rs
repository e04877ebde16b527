//! librdkafka's mock Kafka cluster (one broker) as a process of its own, for benchmarks that
//! need a broker faster than a real one on this machine.
//!
//! ```text
//! mock-broker [--partitions N] [--topics NAME[:PARTITIONS],...]
//! ```
//!
//! Creates the topics (`--partitions`, default 3, unless a topic names its own count), prints
//! its bootstrap address (`127.0.0.1:PORT`) on one line of standard output, and serves until
//! it is killed. Messages stay in memory.

use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "mock-broker: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut partitions: i32 = 3;
    let mut topics: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--partitions" => {
                let v = value()?;
                partitions = v
                    .parse()
                    .map_err(|_| format!("--partitions: `{v}` is not a number"))?;
            }
            "--topics" => topics.extend(
                value()?
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            ),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: mock-broker [--partitions N] [--topics NAME[:PARTITIONS],...]"
                ));
            }
        }
    }
    let broker = testkit::Broker::start().map_err(|e| format!("starting the mock cluster: {e}"))?;
    for topic in &topics {
        let (name, count) = match topic.split_once(':') {
            Some((name, n)) => (
                name,
                n.parse()
                    .map_err(|_| format!("topic {name}: `{n}` is not a partition count"))?,
            ),
            None => (topic.as_str(), partitions),
        };
        broker
            .create_topic(name, count)
            .map_err(|e| format!("creating topic {name}: {e}"))?;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", broker.bootstrap_servers()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    drop(stdout);
    loop {
        std::thread::park();
    }
}
