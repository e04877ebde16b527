//! `outbox-ce`: the library's conversions on JSON Lines files and streams, and against a
//! Kafka broker. Run `outbox-ce --help`.

mod args;
mod bridge;
mod kafka;
mod lines;
mod pipeline;
mod relay;

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use outbox_cloudevents::interchange::{Record, RecordRef};
use outbox_cloudevents::{Encoder, OutboxEvent, Payload, WireEvent};

use crate::args::{Command, Options, Parsed, Target};
use crate::lines::Stream;

/// Faster than the system allocator for the pipeline's worker threads: see Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error that stops the run: exit status 2.
type Fatal = Box<dyn std::error::Error>;

/// The exit status of a run stopped because standard output was closed (as by `head`),
/// the status of a process killed by SIGPIPE.
const CLOSED_OUTPUT: u8 = 141;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "bridge") {
        return bridge::main(std::env::args_os().skip(2));
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "relay") {
        return relay::main(std::env::args_os().skip(2));
    }
    let options = match args::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help(text)) => {
            let _ = io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            let _ = io::stdout().write_all(args::VERSION.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // The message ends with a line of its own (where to find usage): escaped line by
            // line, written at once.
            let text: Vec<String> = e.to_string().lines().map(lines::escaped).collect();
            let _ = io::stderr().write_all(format!("outbox-ce: {}\n", text.join("\n")).as_bytes());
            return ExitCode::from(2);
        }
    };
    let result = match options.command {
        Command::Encode => encode(&options),
        Command::Decode => decode(&options),
        Command::Convert => convert(&options),
        Command::Produce => kafka::produce(&options),
        Command::Consume => kafka::consume(&options),
    };
    match result {
        Ok(status) => status,
        Err(e) if is_closed_output(&*e) => ExitCode::from(CLOSED_OUTPUT),
        Err(e) => {
            let line = format!("outbox-ce {}: {e}", options.command.name());
            let _ = io::stderr().write_all(format!("{}\n", lines::escaped(&line)).as_bytes());
            ExitCode::from(2)
        }
    }
}

fn is_closed_output(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Outbox events -> Kafka messages.
fn encode(options: &Options) -> Result<ExitCode, Fatal> {
    let encoder = Encoder::new(options.mode).profile(options.profile.clone());
    map_lines(
        options,
        Arc::new(move |line| {
            let event = OutboxEvent::<Payload>::from_message_json(line)?;
            Ok(Record::from(encoder.encode(&event)?).to_json())
        }),
    )
}

/// Kafka messages -> outbox events or CloudEvents.
fn decode(options: &Options) -> Result<ExitCode, Fatal> {
    let (to, profile) = (options.to, options.profile.clone());
    map_lines(
        options,
        Arc::new(move |line| {
            let record = RecordRef::from_json(line)?;
            let message = record.message();
            match to {
                Target::CloudEvent => Ok(outbox_cloudevents::decode(&message)?.to_json()),
                Target::Outbox | Target::Message => {
                    OutboxEvent::<Payload>::from_message(&message, &profile)?.to_message_json()
                }
            }
        }),
    )
}

/// Outbox events <-> CloudEvents.
fn convert(options: &Options) -> Result<ExitCode, Fatal> {
    let (to, profile) = (options.to, options.profile.clone());
    map_lines(
        options,
        Arc::new(move |line| match to {
            Target::CloudEvent => {
                let event = OutboxEvent::<Payload>::from_message_json(line)?;
                Ok(event.to_wire(&profile)?.to_json())
            }
            Target::Outbox | Target::Message => {
                let event = WireEvent::from_json(line)?;
                OutboxEvent::<Payload>::from_wire(event, &profile)?.to_message_json()
            }
        }),
    )
}

/// Writes `convert` of every input line, reporting the lines it fails on.
fn map_lines(options: &Options, convert: Arc<pipeline::Convert>) -> Result<ExitCode, Fatal> {
    let input = lines::open_unbuffered(options.input.as_deref())?;
    let mut stream = Stream::new(options.command.name(), options.quiet);
    pipeline::run(input, &mut stream, options.max_line_bytes, convert)?;
    Ok(stream.finish()?)
}

/// What the help tests of every command share.
#[cfg(test)]
pub(crate) mod help_test {
    use std::collections::BTreeSet;

    /// The long options a help text lists: every `--name` in the option column of a line
    /// that starts with two spaces and a `-`.
    pub(crate) fn listed(help: &str) -> BTreeSet<String> {
        help.lines()
            .filter_map(|line| line.strip_prefix("  "))
            .filter(|line| line.starts_with('-'))
            .flat_map(|line| {
                let column = line.split("  ").next().unwrap_or_default();
                column
                    .split(", ")
                    .filter_map(|flag| flag.strip_prefix("--"))
                    .map(|flag| flag.split(' ').next().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Checks that `help` lists exactly `options`, `--help` and `--version`.
    pub(crate) fn assert_lists(command: &str, help: &str, options: &[&str]) {
        let mut expected: BTreeSet<String> = options.iter().map(|o| (*o).to_owned()).collect();
        expected.extend(["help".to_owned(), "version".to_owned()]);
        assert_eq!(listed(help), expected, "{command} --help:\n{help}");
    }
}
