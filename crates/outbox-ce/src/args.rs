//! The command line: subcommands, their options and their help.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;
use outbox_cloudevents::{Mode, Profile};

/// A subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Encode,
    Decode,
    Convert,
    Produce,
    Consume,
}

/// What `decode`, `convert` and `consume` write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// python-outbox-core's `to_message()` layout.
    Outbox,
    /// The CloudEvents JSON event format.
    CloudEvent,
    /// The interchange JSON of a Kafka message, with topic, partition, offset and timestamp.
    Message,
}

/// A parsed command line, ready to run.
#[derive(Debug)]
pub struct Options {
    pub command: Command,
    /// The input file; `None` is standard input.
    pub input: Option<PathBuf>,
    pub mode: Mode,
    pub profile: Profile,
    pub to: Target,
    pub brokers: String,
    pub topic: String,
    /// `consume`: stop after this many messages.
    pub max: Option<u64>,
    /// `consume`: stop after this long without a message; `produce`: give up delivering a
    /// message after this long. Both: how long to wait for the broker's metadata.
    pub timeout: Duration,
    /// No count at the end.
    pub quiet: bool,
    /// The longest input line taken, in bytes, line terminator excluded; a longer line is
    /// that line's error.
    pub max_line_bytes: usize,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Options),
    Help(&'static str),
    Version,
}

/// A command line that cannot run; exit status 2.
#[derive(Debug)]
pub struct UsageError {
    message: String,
    command: Option<Command>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let help = match self.command {
            Some(command) => format!("outbox-ce {} --help", command.name()),
            None => "outbox-ce --help".to_owned(),
        };
        write!(f, "{}\nRun `{help}` for usage.", self.message)
    }
}

/// What `--version` prints, for every command.
pub const VERSION: &str = concat!("outbox-ce ", env!("CARGO_PKG_VERSION"), "\n");

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest timeout librdkafka takes: its timeouts are milliseconds in a C `int`.
const MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// 1 MiB: Kafka's default largest message (`message.max.bytes`, 1 MB) is about this size,
/// and the CloudEvents spec asks intermediaries to forward events of 64 KiB or less, so any
/// event meant to travel fits with room to spare, while a stray huge line costs a few MiB
/// of memory, not gigabytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Encode => "encode",
            Command::Decode => "decode",
            Command::Convert => "convert",
            Command::Produce => "produce",
            Command::Consume => "consume",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Command::Encode,
            Command::Decode,
            Command::Convert,
            Command::Produce,
            Command::Consume,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    /// The long options the subcommand takes, besides `--help` and `--quiet`.
    fn options(self) -> &'static [&'static str] {
        match self {
            Command::Encode => &["mode", "profile", "max-line-bytes"],
            Command::Decode => &["to", "profile", "max-line-bytes"],
            Command::Convert => &["to", "profile", "max-line-bytes"],
            Command::Produce => &[
                "brokers",
                "topic",
                "mode",
                "profile",
                "timeout",
                "max-line-bytes",
            ],
            Command::Consume => &["brokers", "topic", "max", "to", "profile", "timeout"],
        }
    }

    /// The `--to` values the subcommand takes; the first is the default.
    fn targets(self) -> &'static [(&'static str, Target)] {
        match self {
            Command::Decode => &[
                ("outbox", Target::Outbox),
                ("cloudevent", Target::CloudEvent),
            ],
            Command::Convert => &[
                ("cloudevent", Target::CloudEvent),
                ("outbox", Target::Outbox),
            ],
            Command::Consume => &[
                ("outbox", Target::Outbox),
                ("cloudevent", Target::CloudEvent),
                ("message", Target::Message),
            ],
            Command::Encode | Command::Produce => &[],
        }
    }

    fn reads_input(self) -> bool {
        self != Command::Consume
    }

    pub fn help(self) -> &'static str {
        match self {
            Command::Encode => ENCODE_HELP,
            Command::Decode => DECODE_HELP,
            Command::Convert => CONVERT_HELP,
            Command::Produce => PRODUCE_HELP,
            Command::Consume => CONSUME_HELP,
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    let mut parser = lexopt::Parser::from_args(args);
    let usage = |command, e: lexopt::Error| UsageError {
        message: e.to_string(),
        command,
    };
    let command = match parser.next().map_err(|e| usage(None, e))? {
        Some(Short('h') | Long("help")) => return Ok(Parsed::Help(PROGRAM_HELP)),
        Some(Short('V') | Long("version")) => return Ok(Parsed::Version),
        Some(Value(name)) => {
            let name = name.to_string_lossy();
            Command::from_name(&name).ok_or_else(|| UsageError {
                message: format!("`{name}` is not a command"),
                command: None,
            })?
        }
        Some(other) => return Err(usage(None, other.unexpected())),
        None => {
            return Err(UsageError {
                message: "a command is needed".to_owned(),
                command: None,
            });
        }
    };
    parse_command(command, &mut parser).map_err(|message| UsageError {
        message,
        command: Some(command),
    })
}

fn parse_command(command: Command, parser: &mut lexopt::Parser) -> Result<Parsed, String> {
    let mut options = Options {
        command,
        input: None,
        mode: Mode::Binary,
        profile: Profile::Canonical,
        to: command.targets().first().map_or(Target::Outbox, |t| t.1),
        brokers: String::new(),
        topic: String::new(),
        max: None,
        timeout: DEFAULT_TIMEOUT,
        quiet: false,
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
    };
    let mut given = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help(command.help())),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Short('q') | Long("quiet") => options.quiet = true,
            Long(name) => {
                let Some(&name) = command.options().iter().find(|o| **o == name) else {
                    return Err(Long(name).unexpected().to_string());
                };
                let value = parser.value().map_err(|e| e.to_string())?;
                let value = value
                    .into_string()
                    .map_err(|_| format!("--{name}: the value is not UTF-8"))?;
                set(&mut options, name, &value).map_err(|e| format!("--{name}: {e}"))?;
                given.push(name);
            }
            Value(path) if command.reads_input() && !given.contains(&"FILE") => {
                options.input = (path != "-").then(|| PathBuf::from(path));
                given.push("FILE");
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let required: &[&str] = match command {
        Command::Encode => &["mode"],
        Command::Convert => &["to"],
        Command::Produce => &["brokers", "topic", "mode"],
        Command::Consume => &["brokers", "topic"],
        Command::Decode => &[],
    };
    if let Some(missing) = required.iter().find(|r| !given.contains(r)) {
        return Err(format!("--{missing} is required"));
    }
    Ok(Parsed::Run(options))
}

fn set(options: &mut Options, name: &str, value: &str) -> Result<(), String> {
    match name {
        "mode" => options.mode = value.parse().map_err(|e| format!("{e}"))?,
        "profile" => {
            options.profile = match value {
                "canonical" => Profile::Canonical,
                "python-outbox-core" => Profile::python_outbox_core(),
                _ => {
                    return Err(format!(
                        "`{value}` is not a profile: use `canonical` or `python-outbox-core`"
                    ));
                }
            }
        }
        "to" => {
            let targets = options.command.targets();
            options.to = match targets.iter().find(|(n, _)| *n == value) {
                Some((_, target)) => *target,
                None => {
                    let names: Vec<_> = targets.iter().map(|(n, _)| format!("`{n}`")).collect();
                    return Err(format!("`{value}` is not one of {}", names.join(", ")));
                }
            }
        }
        "brokers" | "topic" if value.is_empty() => return Err("must not be empty".to_owned()),
        "brokers" => options.brokers = value.to_owned(),
        "topic" => options.topic = value.to_owned(),
        "max" => {
            options.max = Some(
                value
                    .parse()
                    .map_err(|_| format!("`{value}` is not a count"))?,
            );
        }
        "timeout" => {
            let timeout = value
                .parse::<f64>()
                .ok()
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("`{value}` is not a number of seconds above 0"))?;
            if timeout > MAX_TIMEOUT {
                return Err(format!(
                    "`{value}` is more than {} seconds, the longest timeout librdkafka takes",
                    MAX_TIMEOUT.as_secs_f64()
                ));
            }
            options.timeout = timeout;
        }
        "max-line-bytes" => {
            options.max_line_bytes = value
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{value}` is not a number of bytes above 0"))?;
        }
        _ => return Err("not an option of this command".to_owned()),
    }
    Ok(())
}

pub const PROGRAM_HELP: &str = "\
outbox-ce: transactional-outbox events as CloudEvents and Kafka messages

Usage: outbox-ce <COMMAND> [OPTIONS] [FILE]

Commands:
  encode   outbox events -> Kafka messages (interchange JSON)
  decode   Kafka messages (either content mode) -> outbox events or CloudEvents
  convert  outbox events <-> CloudEvents (JSON event format)
  produce  outbox events -> a Kafka topic
  consume  a Kafka topic -> outbox events, CloudEvents or Kafka messages
  relay    the outbox table -> Kafka or standard output (`outbox-ce relay --help`)
  bridge   a Kafka topic -> another topic, in a consumer group (`outbox-ce bridge --help`)

Every command reads JSON Lines from FILE, or from standard input when FILE is `-` or
absent, and writes JSON Lines to standard output as it goes. Blank lines are skipped.
Each line that fails is reported on standard error as `line N: <problem>` and the other
lines still go through. The run ends with a count on standard error, such as
`encode: 5 in, 5 out, 0 failed`, and shows progress there when it is a terminal.

Formats:
  outbox event   python-outbox-core's to_message() layout: one flat object with
                 event_id, event_type, aggregate_id, occurred_at, source, data_version,
                 correlation_id, causation_id and the payload's own members
  Kafka message  {\"key\": K, \"headers\": [[\"content-type\", V], [\"ce_id\", V], ...],
                  \"value\": V}, each K and V a string, {\"base64\": \"...\"} or null
  CloudEvent     the CloudEvents JSON event format

A line longer than --max-line-bytes (default 1048576, 1 MiB) is that line's error; it
is skipped without being held in memory.

Exit status: 0 when every line went through, 1 when a line failed, 2 for a usage error
or when the run could not go on or could not finish: an unreadable file, a standard
input or output closed as the program starts (`/dev/null` is open, not closed), a
broker that cannot be reached or stops answering, a `consume` that could not read as
far as it set out to.

Options:
  -h, --help     this help; `outbox-ce <COMMAND> --help` for a command's options
  -V, --version  the version

Example:
  outbox-ce encode --mode binary fixtures/python-outbox-core/events.jsonl
";

const ENCODE_HELP: &str = "\
outbox-ce encode: outbox events -> Kafka messages (interchange JSON)

Usage: outbox-ce encode --mode binary|structured [--profile PROFILE] [FILE]

Reads outbox events in python-outbox-core's to_message() layout, one per line, and
writes one Kafka message per line. The key is the event's partition key.

Options:
  --mode MODE        binary: the attributes in ce_ headers, the payload as the value;
                     structured: the whole CloudEvent in the JSON event format as the value
  --profile PROFILE  canonical (the default) or python-outbox-core (what that package's
                     CloudEventsFormatter writes)
  --max-line-bytes N
                     refuse lines longer than N bytes (default 1048576, 1 MiB)
  -q, --quiet        no count at the end
  -h, --help         this help
  -V, --version      the version

FILE is JSON Lines; `-` or none reads standard input.

Example:
  outbox-ce encode --mode binary fixtures/python-outbox-core/events.jsonl > messages.jsonl
";

const DECODE_HELP: &str = "\
outbox-ce decode: Kafka messages (interchange JSON) -> outbox events or CloudEvents

Usage: outbox-ce decode [--to outbox|cloudevent] [--profile PROFILE] [FILE]

Reads Kafka messages, one per line, in either content mode (told apart by the
content-type header and the ce_ headers), and writes one event per line. The key and
headers that are not CloudEvents attributes are not part of the event.

Options:
  --to TARGET        outbox (the default): python-outbox-core's to_message() layout;
                     cloudevent: the CloudEvents JSON event format
  --profile PROFILE  how CloudEvents map to outbox events: canonical (the default) or
                     python-outbox-core
  --max-line-bytes N
                     refuse lines longer than N bytes (default 1048576, 1 MiB)
  -q, --quiet        no count at the end
  -h, --help         this help
  -V, --version      the version

FILE is JSON Lines; `-` or none reads standard input.

Example:
  outbox-ce encode --mode structured events.jsonl | outbox-ce decode --to cloudevent
";

const CONVERT_HELP: &str = "\
outbox-ce convert: outbox events <-> CloudEvents (JSON event format)

Usage: outbox-ce convert --to cloudevent|outbox [--profile PROFILE] [FILE]

With --to cloudevent, reads outbox events in python-outbox-core's to_message() layout
and writes CloudEvents in the JSON event format; with --to outbox, the other way round.

Options:
  --to TARGET        cloudevent or outbox: what to write
  --profile PROFILE  canonical (the default) or python-outbox-core
  --max-line-bytes N
                     refuse lines longer than N bytes (default 1048576, 1 MiB)
  -q, --quiet        no count at the end
  -h, --help         this help
  -V, --version      the version

FILE is JSON Lines; `-` or none reads standard input.

Example:
  outbox-ce convert --to cloudevent fixtures/python-outbox-core/events.jsonl
";

const PRODUCE_HELP: &str = "\
outbox-ce produce: outbox events -> a Kafka topic

Usage: outbox-ce produce --brokers HOST:PORT --topic TOPIC --mode MODE [OPTIONS] [FILE]

Reads outbox events in python-outbox-core's to_message() layout, one per line, encodes
each as `encode` does and sends it to TOPIC with the event's partition key as the
message key. Writes nothing to standard output; a line whose message the broker did not
take is reported as `line N: <problem>`, and the count at the end tells how many were
delivered (out).

Options:
  --brokers LIST     bootstrap servers, HOST:PORT[,HOST:PORT...]
  --topic TOPIC      the topic; it must exist
  --mode MODE        binary or structured (see `outbox-ce encode --help`)
  --profile PROFILE  canonical (the default) or python-outbox-core
  --timeout SECS     give up on a message not delivered after SECS seconds (default 10);
                     when one times out the broker is taken as gone: reading stops,
                     the messages not yet delivered are reported and the exit status
                     is 2. A message reported after a timeout may still have been
                     delivered, and its error says so.
  --max-line-bytes N
                     refuse lines longer than N bytes (default 1048576, 1 MiB)
  -q, --quiet        no count at the end
  -h, --help         this help
  -V, --version      the version

FILE is JSON Lines; `-` or none reads standard input.

Example:
  outbox-ce produce --brokers 127.0.0.1:9092 --topic events --mode binary events.jsonl
";

const CONSUME_HELP: &str = "\
outbox-ce consume: a Kafka topic -> outbox events, CloudEvents or Kafka messages

Usage: outbox-ce consume --brokers HOST:PORT --topic TOPIC [OPTIONS]

Reads every partition of TOPIC from the beginning (no consumer group offsets are
committed) and writes one line per message. Stops after --max messages or, without
--max, at the end of every partition as it was when the run started. When no message
comes for --timeout seconds before that, the run stops with exit status 2, naming how
far it got. A message that does not decode is reported as
`partition P offset O: <problem>`.

Options:
  --brokers LIST     bootstrap servers, HOST:PORT[,HOST:PORT...]
  --topic TOPIC      the topic
  --max N            stop after N messages
  --timeout SECS     give up after SECS seconds without a message (default 10)
  --to TARGET        outbox (the default), cloudevent, or message: the Kafka message
                     itself as interchange JSON with topic, partition, offset and
                     timestamp (milliseconds since the Unix epoch)
  --profile PROFILE  canonical (the default) or python-outbox-core, for --to outbox
  -q, --quiet        no count at the end
  -h, --help         this help
  -V, --version      the version

Example:
  outbox-ce consume --brokers 127.0.0.1:9092 --topic events --max 5 --to cloudevent
";

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option the parser takes is in the command's help, and nothing else.
    #[test]
    fn each_commands_help_lists_the_options_it_takes() {
        for command in [
            Command::Encode,
            Command::Decode,
            Command::Convert,
            Command::Produce,
            Command::Consume,
        ] {
            let mut options = command.options().to_vec();
            options.push("quiet");
            crate::help_test::assert_lists(command.name(), command.help(), &options);
        }
        crate::help_test::assert_lists("outbox-ce", PROGRAM_HELP, &[]);
    }
}
