//! `outbox-ce bridge`: a topic -> another topic in a consumer group, in the chosen content
//! mode and profile.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::process::ExitCode;

use lexopt::prelude::*;
use outbox_cloudevents::Profile;
use outbox_relay::bridge::{BridgeOptions, InputFormat};
use outbox_relay::config::parse_duration;
use outbox_relay::observe::parse_listen_addr;
use outbox_relay::{LogFormat, OutputMode};

enum Parsed {
    Help,
    Version,
    Run(Box<BridgeOptions>),
}

/// Runs `outbox-ce bridge ARGS`: exit 0 when stopped by a signal or `--idle-exit`, 1 when
/// the bridge stopped at an error, 2 for a usage error.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let options = match parse(args) {
        Ok(Parsed::Help) => {
            let _ = io::stdout().write_all(HELP.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            let _ = io::stdout().write_all(crate::args::VERSION.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(options)) => options,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "outbox-ce bridge: {e}\nRun `outbox-ce bridge --help` for usage."
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(io::stderr(), "outbox-ce bridge: {e}");
            return ExitCode::from(1);
        }
    };
    // The signal handlers are installed as the runtime starts, before the bridge connects.
    let run = async { outbox_relay::bridge::run(*options, crate::relay::shutdown_signal()).await };
    match runtime.block_on(run) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "outbox-ce bridge: {e}");
            ExitCode::from(1)
        }
    }
}

/// The options with a value the bridge takes (besides these: `--exactly-once`,
/// `--log-events`, `--help`, `--version`).
const OPTIONS: &[&str] = &[
    "brokers",
    "from-topic",
    "to-topic",
    "group",
    "from",
    "mode",
    "profile",
    "dead-letter-topic",
    "idle-exit",
    "metrics-listen",
    "lag-degraded-messages",
    "log-format",
    "consumer-option",
    "producer-option",
];

/// The options without a value the bridge takes, besides `--help` and `--version`.
#[cfg(test)]
const SWITCHES: &[&str] = &["exactly-once", "log-events"];

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut options = BridgeOptions::default();
    let (mut brokers, mut from, mut to, mut group) = (None, None, None, None);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Long("exactly-once") => options.exactly_once = true,
            Long("log-events") => options.logger.events = true,
            Long(name) if OPTIONS.contains(&name) => {
                let name = name.to_owned();
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .into_string()
                    .map_err(|_| format!("--{name}: the value is not UTF-8"))?;
                let non_empty = || {
                    if value.is_empty() {
                        Err(format!("--{name}: must not be empty"))
                    } else {
                        Ok(value.clone())
                    }
                };
                let flag = |e: String| format!("--{name}: {e}");
                match name.as_str() {
                    "brokers" => brokers = Some(non_empty()?),
                    "from-topic" => from = Some(non_empty()?),
                    "to-topic" => to = Some(non_empty()?),
                    "group" => group = Some(non_empty()?),
                    "from" => options.input = value.parse::<InputFormat>().map_err(flag)?,
                    "mode" => options.mode = value.parse::<OutputMode>().map_err(flag)?,
                    "profile" => {
                        options.profile = match value.as_str() {
                            "canonical" => Profile::Canonical,
                            "python-outbox-core" => Profile::python_outbox_core(),
                            _ => {
                                return Err(flag(format!(
                                    "`{value}` is not a profile: use canonical or python-outbox-core"
                                )));
                            }
                        }
                    }
                    "dead-letter-topic" => options.dead_letter_topic = Some(non_empty()?),
                    "lag-degraded-messages" => {
                        options.lag_degraded_messages = value.parse::<u64>().map_err(|_| {
                            flag(format!("`{value}` is not a whole number of messages"))
                        })?;
                    }
                    "idle-exit" => options.idle_exit = Some(parse_duration(&value).map_err(flag)?),
                    "metrics-listen" => {
                        options.metrics_listen = Some(parse_listen_addr(&value).map_err(flag)?);
                    }
                    "log-format" => {
                        options.logger.format = match value.as_str() {
                            "text" => LogFormat::Text,
                            "json" => LogFormat::Json,
                            _ => return Err(flag(format!("`{value}` is not text or json"))),
                        }
                    }
                    "consumer-option" | "producer-option" => {
                        let (key, v) = value
                            .split_once('=')
                            .filter(|(k, _)| !k.is_empty())
                            .ok_or_else(|| flag(format!("`{value}` is not KEY=VALUE")))?;
                        let list = if name == "consumer-option" {
                            &mut options.consumer_properties
                        } else {
                            &mut options.producer_properties
                        };
                        list.push((key.to_owned(), v.to_owned()));
                    }
                    _ => return Err(format!("unknown option --{name}")),
                }
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let missing: Vec<&str> = [
        ("--brokers", brokers.is_none()),
        ("--from-topic", from.is_none()),
        ("--to-topic", to.is_none()),
        ("--group", group.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(format!("{} required", missing.join(", ")));
    }
    options.brokers = brokers.unwrap_or_default();
    options.from_topic = from.unwrap_or_default();
    options.to_topic = to.unwrap_or_default();
    options.group = group.unwrap_or_default();
    if options.to_topic == options.from_topic {
        return Err("--to-topic must differ from --from-topic".to_owned());
    }
    if options.dead_letter_topic.as_deref() == Some(options.to_topic.as_str())
        || options.dead_letter_topic.as_deref() == Some(options.from_topic.as_str())
    {
        return Err("--dead-letter-topic must differ from --from-topic and --to-topic".to_owned());
    }
    Ok(Parsed::Run(Box::new(options)))
}

const HELP: &str = "\
outbox-ce bridge: a Kafka topic -> another topic, in a consumer group

Usage: outbox-ce bridge --brokers HOST:PORT --from-topic A --to-topic B --group G [OPTIONS]

Reads every message of A in consumer group G (instances in one group share the partitions)
and produces it to B in the chosen content mode and profile, in the order of its input
partition. The key is kept (the event's partition key when the input has none); headers
that are not CloudEvents attributes travel with the message.

Options:
  --brokers HOST:PORT       bootstrap servers (comma-separated)
  --from-topic A            the topic read
  --to-topic B              the topic written
  --group G                 the consumer group
  --from FORMAT             auto (the default): CloudEvents in either mode, else
                            python-outbox-core publisher messages (value = the to_message()
                            object); cloudevents or outbox-json force one
  --mode MODE               binary (the default), structured, or outbox-json (what
                            python-outbox-core's publisher sends; a publisher message's
                            occurred_at goes out as it came)
  --profile PROFILE         canonical (the default) or python-outbox-core
  --dead-letter-topic D     messages that cannot be bridged go here with their key, headers
                            and value plus outbox-error, outbox-source-topic,
                            outbox-source-partition and outbox-source-offset headers;
                            without it the bridge stops at the first (exit 1), naming its
                            offset, and commits nothing past it
  --exactly-once            Kafka transactions: output, dead letters and consumed offsets
                            commit together; read B with isolation.level=read_committed
  --idle-exit DURATION      exit 0 after DURATION (such as 5s, 500ms, 2m) without a message,
                            counted while the group has given this instance its partitions
                            (at most 87600h)
  --metrics-listen ADDR     serve /metrics (Prometheus) and /health (JSON) at ADDR; a
                            malformed ADDR is a usage error (exit 2), one that cannot be
                            bound (in use) stops the bridge at start (exit 1)
  --lag-degraded-messages N /health says the consumer lag is degraded above N messages
                            (default 10000)
  --log-format FORMAT       text (the default) or json (python-outbox-core's event names)
  --log-events              also log each transaction committed (--exactly-once)
  --consumer-option K=V     a librdkafka consumer property (repeatable)
  --producer-option K=V     a librdkafka producer property (repeatable)
  -h, --help                this help
  -V, --version             the version

Without --exactly-once, offsets are committed only for messages whose output (or dead
letter) the broker acknowledged: at least once; after a crash, what was acknowledged after
the last commit (every 200 ms) is sent again. SIGTERM or SIGINT: finish what is in flight,
commit, exit 0.

Exit status: 0 when stopped by a signal or --idle-exit; 1 when a message could not be
bridged without a dead-letter topic, or Kafka failed for good; 2 for a usage error.

Example:
  outbox-ce bridge --brokers 127.0.0.1:9092 --from-topic outbox --to-topic events \\
      --group outbox-bridge --mode structured --dead-letter-topic outbox-dead \\
      --metrics-listen 127.0.0.1:9465
";

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<BridgeOptions, String> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Run(options) => Ok(*options),
            Parsed::Help | Parsed::Version => Err("help".to_owned()),
        }
    }

    /// Every option the parser takes is in the help, and nothing else.
    #[test]
    fn the_help_lists_the_options_it_takes() {
        let options: Vec<&str> = OPTIONS.iter().chain(SWITCHES).copied().collect();
        crate::help_test::assert_lists("bridge", HELP, &options);
    }

    #[test]
    fn the_normative_line() {
        let options = run(&[
            "--brokers",
            "127.0.0.1:9092",
            "--from-topic",
            "a",
            "--to-topic",
            "b",
            "--group",
            "g",
            "--from",
            "outbox-json",
            "--mode",
            "structured",
            "--profile",
            "python-outbox-core",
            "--dead-letter-topic",
            "d",
            "--exactly-once",
            "--idle-exit",
            "5s",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(options.input, InputFormat::OutboxJson);
        assert_eq!(options.mode, OutputMode::Structured);
        assert_eq!(options.profile, Profile::python_outbox_core());
        assert_eq!(options.dead_letter_topic.as_deref(), Some("d"));
        assert!(options.exactly_once);
        assert_eq!(options.idle_exit, Some(std::time::Duration::from_secs(5)));
    }

    #[test]
    fn usage_errors() {
        let e = run(&["--brokers", "x:1", "--from-topic", "a"]).unwrap_err();
        assert_eq!(e, "--to-topic, --group required");
        let base = [
            "--brokers",
            "x:1",
            "--from-topic",
            "a",
            "--to-topic",
            "b",
            "--group",
            "g",
        ];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            run(&args)
        };
        assert!(with(&["--mode", "xml"]).unwrap_err().contains("not a mode"));
        assert!(with(&["--from", "avro"]).unwrap_err().contains("auto"));
        assert!(
            with(&["--idle-exit", "soon"])
                .unwrap_err()
                .contains("duration")
        );
        assert!(with(&["--dead-letter-topic", "b"]).is_err());
        for (flag, value, says) in [
            ("--metrics-listen", "not-an-address", "not an address"),
            ("--metrics-listen", "127.0.0.1:99999", "not a port"),
            ("--idle-exit", "4000000000000000h", "longer than"),
            ("--lag-degraded-messages", "many", "whole number"),
        ] {
            let e = with(&[flag, value]).unwrap_err();
            assert!(
                e.starts_with(flag) && e.contains(says),
                "{flag} {value}: {e}"
            );
        }
        assert!(with(&["--nope"]).is_err());
        assert!(with(&[]).is_ok());
    }
}
