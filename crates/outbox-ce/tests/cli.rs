//! The `outbox-ce` binary on files and standard input: every subcommand on good input and on
//! mixed good and bad lines, the `encode | decode` round trip on python-outbox-core's own
//! events, and `--help`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use common::{EVENTS, Run, events, outbox_ce};
use outbox_cloudevents::interchange::{Record, RecordRef};
use outbox_cloudevents::{Encoder, Mode, OutboxEvent, Payload, Profile, WireEvent};

const MODES: [(&str, Mode); 2] = [("binary", Mode::Binary), ("structured", Mode::Structured)];
const COMMANDS: [&str; 5] = ["encode", "decode", "convert", "produce", "consume"];

fn event(line: &str) -> OutboxEvent<Payload> {
    OutboxEvent::from_message_json(line.as_bytes()).unwrap()
}

/// What the library makes of one outbox line, for comparison with the binary's output.
fn encoded(line: &str, mode: Mode, profile: &Profile) -> String {
    let message = Encoder::new(mode)
        .profile(profile.clone())
        .encode(&event(line))
        .unwrap();
    String::from_utf8(Record::from(message).to_json()).unwrap()
}

fn outbox_json(line: &str) -> String {
    String::from_utf8(event(line).to_message_json().unwrap()).unwrap()
}

fn cloudevent_json(line: &str, profile: &Profile) -> String {
    String::from_utf8(event(line).to_wire(profile).unwrap().to_json()).unwrap()
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Three good lines between a line that is not JSON, a blank line (skipped, but counted in
/// the line numbers), a line ending in CRLF and a line with a bad field.
fn mixed(good: &[String], bad_field: &str) -> (String, Vec<String>) {
    let input = format!(
        "{}\nnot json\n\n{}\r\n{bad_field}\n{}\n",
        good[0], good[1], good[2]
    );
    (input, good[..3].to_vec())
}

fn assert_mixed(run: &Run, command: &str, expected_out: &[String], line_5: &str) {
    assert_eq!(run.status, 1, "stderr: {}", run.stderr);
    assert_eq!(run.lines(), expected_out, "good lines still go through");
    let stderr = run.stderr_lines();
    assert_eq!(stderr.len(), 3, "{stderr:?}");
    assert!(stderr[0].starts_with("line 2: "), "{stderr:?}");
    assert!(stderr[1].starts_with("line 5: "), "{stderr:?}");
    assert!(stderr[1].contains(line_5), "{stderr:?}");
    assert_eq!(stderr[2], format!("{command}: 5 in, 3 out, 2 failed"));
}

#[test]
fn help_for_the_program_and_every_command() {
    for flag in ["--help", "-h"] {
        let run = outbox_ce(&[flag], None);
        assert_eq!(run.status, 0);
        assert!(run.stdout.starts_with("outbox-ce: "));
        assert!(run.stdout.contains("Usage: outbox-ce <COMMAND>"));
        for command in COMMANDS {
            assert!(run.stdout.contains(&format!("\n  {command} ")), "{command}");
        }
        assert!(run.stderr.is_empty());
    }
    for command in COMMANDS {
        // Help needs none of the required options.
        for args in [vec![command, "--help"], vec![command, "-q", "-h"]] {
            let run = outbox_ce(&args, None);
            assert_eq!(run.status, 0, "{args:?}");
            assert!(run.stdout.starts_with(&format!("outbox-ce {command}: ")));
            assert!(run.stdout.contains(&format!("Usage: outbox-ce {command} ")));
            let example = run.stdout.split("Example:\n").nth(1).unwrap();
            assert!(
                example.contains(&format!("outbox-ce {command} ")),
                "{command}"
            );
        }
    }
}

#[test]
fn the_examples_in_the_help_run() {
    for help in [vec!["--help"], vec!["convert", "--help"]] {
        let text = outbox_ce(&help, None).stdout;
        let example = text.split("Example:\n").nth(1).unwrap().trim();
        let args: Vec<&str> = example.split_whitespace().skip(1).collect();
        let run = outbox_ce(&args, None);
        assert_eq!(run.status, 0, "{example}: {}", run.stderr);
        assert_eq!(run.lines().len(), events().len(), "{example}");
    }
}

#[test]
fn usage_errors_exit_with_2_and_say_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "a command is needed"),
        (&["frobnicate"], "`frobnicate` is not a command"),
        (&["encode"], "--mode is required"),
        (&["encode", "--mode", "avro"], "`avro` is not a mode"),
        (
            &["encode", "--mode", "binary", "--profile", "x"],
            "`x` is not a profile",
        ),
        (&["encode", "--mode", "binary", "--max", "3"], "--max"),
        (
            &["encode", "--mode", "binary", "a", "b"],
            "unexpected argument",
        ),
        (
            &["encode", "--mode", "binary", "-", "b"],
            "unexpected argument",
        ),
        (&["decode", "--to", "message"], "`message` is not one of"),
        (&["convert"], "--to is required"),
        (
            &["produce", "--topic", "t", "--mode", "binary"],
            "--brokers is required",
        ),
        (
            &["consume", "--brokers", "b", "--topic", "t", "--max", "-1"],
            "--max",
        ),
        (
            &[
                "consume",
                "--brokers",
                "b",
                "--topic",
                "t",
                "--timeout",
                "0",
            ],
            "--timeout",
        ),
        (
            &["consume", "--brokers", "b", "--topic", "t", "file"],
            "unexpected argument",
        ),
    ];
    for (args, says) in cases {
        let run = outbox_ce(args, None);
        assert_eq!(run.status, 2, "{args:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("--help"), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn an_unreadable_file_stops_the_run_with_2() {
    let run = outbox_ce(&["encode", "--mode", "binary", "no/such/file.jsonl"], None);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("cannot read `no/such/file.jsonl`"),
        "{}",
        run.stderr
    );
}

#[test]
fn encode_writes_one_message_per_event_keyed_by_partition_key() {
    let events = events();
    for profile_name in ["canonical", "python-outbox-core"] {
        let profile = match profile_name {
            "canonical" => Profile::Canonical,
            _ => Profile::python_outbox_core(),
        };
        for (mode_name, mode) in MODES {
            let args = [
                "encode",
                "--mode",
                mode_name,
                "--profile",
                profile_name,
                EVENTS,
            ];
            let run = outbox_ce(&args, None);
            assert_eq!(run.status, 0, "{}", run.stderr);
            // Nothing but the count on a standard error that is not a terminal.
            assert_eq!(run.stderr, "encode: 5 in, 5 out, 0 failed\n");
            let expected: Vec<String> = events.iter().map(|l| encoded(l, mode, &profile)).collect();
            assert_eq!(run.lines(), expected, "{mode_name} {profile_name}");
            for (line, event) in run.lines().iter().zip(&events) {
                let record = Record::from_json(line.as_bytes()).unwrap();
                let key = self::event(event).partition_key().as_bytes().to_vec();
                assert_eq!(record.message.key, Some(key));
            }
        }
    }
}

#[test]
fn encode_reports_bad_lines_and_writes_the_good_ones() {
    let events = events();
    let bad = events[3].replace("3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f04", "not-a-uuid");
    let (input, good) = mixed(&events, &bad);
    for (mode_name, mode) in MODES {
        let run = outbox_ce(&["encode", "--mode", mode_name], Some(input.as_bytes()));
        let expected: Vec<String> = good
            .iter()
            .map(|l| encoded(l, mode, &Profile::Canonical))
            .collect();
        assert_mixed(&run, "encode", &expected, "field `event_id`");
    }
}

#[test]
fn decode_writes_outbox_events_and_cloudevents() {
    let events = events();
    for (mode_name, mode) in MODES {
        let messages: Vec<String> = events
            .iter()
            .map(|l| encoded(l, mode, &Profile::Canonical))
            .collect();
        let input = joined(&messages);

        let run = outbox_ce(&["decode"], Some(input.as_bytes()));
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_eq!(run.stderr, "decode: 5 in, 5 out, 0 failed\n");
        let expected: Vec<String> = events.iter().map(|l| outbox_json(l)).collect();
        assert_eq!(run.lines(), expected, "{mode_name}");

        let run = outbox_ce(&["decode", "--to", "cloudevent"], Some(input.as_bytes()));
        assert_eq!(run.status, 0, "{}", run.stderr);
        let expected: Vec<String> = events
            .iter()
            .map(|l| cloudevent_json(l, &Profile::Canonical))
            .collect();
        assert_eq!(run.lines(), expected, "{mode_name}");
    }
}

#[test]
fn decode_reports_bad_lines_and_writes_the_good_ones() {
    let events = events();
    let messages: Vec<String> = events
        .iter()
        .map(|l| encoded(l, Mode::Binary, &Profile::Canonical))
        .collect();
    let bad = messages[3].replace("\"2024-05-06T07:08:09Z\"", "\"2024-13-06T07:08:09Z\"");
    assert_ne!(bad, messages[3]);
    let (input, good) = mixed(&messages, &bad);
    let run = outbox_ce(&["decode"], Some(input.as_bytes()));
    let expected: Vec<String> = good.iter().map(|l| outbox_json(&events_of(l))).collect();
    assert_mixed(&run, "decode", &expected, "header `ce_time`");

    let run = outbox_ce(&["decode", "--to", "cloudevent"], Some(input.as_bytes()));
    let expected: Vec<String> = good
        .iter()
        .map(|l| cloudevent_json(&events_of(l), &Profile::Canonical))
        .collect();
    assert_mixed(&run, "decode", &expected, "header `ce_time`");
}

/// The outbox line a binary-mode message of the fixture was encoded from.
fn events_of(message: &str) -> String {
    let events = events();
    events
        .iter()
        .find(|e| encoded(e, Mode::Binary, &Profile::Canonical) == message)
        .unwrap()
        .clone()
}

#[test]
fn decode_reads_what_the_peer_sdks_write_and_reports_what_they_get_wrong() {
    // Every message the Python and JavaScript SDKs wrote for the interop events, fed to the
    // binary: each line is written exactly as the library decodes it, or reported by number.
    for peer in ["python-core", "python-v1", "javascript"] {
        for mode in ["binary", "structured"] {
            let path = format!("{}/fixtures/interop/from-{peer}-{mode}.jsonl", common::ROOT);
            let messages: Vec<String> = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter_map(|l| {
                    let entry: serde_json::Value = serde_json::from_str(l).unwrap();
                    entry.get("message").map(|m| m.to_string())
                })
                .collect();
            let run = outbox_ce(
                &["decode", "--to", "cloudevent"],
                Some(joined(&messages).as_bytes()),
            );
            let mut out = run.lines().into_iter();
            let mut failed = 0;
            for (i, message) in messages.iter().enumerate() {
                let record = Record::from_json(message.as_bytes()).unwrap();
                match outbox_cloudevents::decode(&record.message.as_ref()) {
                    Ok(event) => {
                        let json = String::from_utf8(event.to_json()).unwrap();
                        assert_eq!(out.next(), Some(json.as_str()), "{peer} {mode} {i}");
                    }
                    Err(e) => {
                        failed += 1;
                        let report = format!("line {}: {e}", i + 1);
                        assert!(run.stderr_lines().contains(&report.as_str()), "{report}");
                    }
                }
            }
            assert_eq!(out.next(), None);
            assert_eq!(run.status, i32::from(failed > 0), "{peer} {mode}");
            let count = format!(
                "decode: {} in, {} out, {failed} failed",
                messages.len(),
                messages.len() - failed
            );
            assert_eq!(run.stderr_lines().last(), Some(&count.as_str()));
        }
    }
}

#[test]
fn convert_goes_both_ways() {
    let events = events();
    for (profile_name, profile) in [
        ("canonical", Profile::Canonical),
        ("python-outbox-core", Profile::python_outbox_core()),
    ] {
        let run = outbox_ce(
            &[
                "convert",
                "--to",
                "cloudevent",
                "--profile",
                profile_name,
                EVENTS,
            ],
            None,
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_eq!(run.stderr, "convert: 5 in, 5 out, 0 failed\n");
        let expected: Vec<String> = events
            .iter()
            .map(|l| cloudevent_json(l, &profile))
            .collect();
        assert_eq!(run.lines(), expected);

        let back = outbox_ce(
            &["convert", "--to", "outbox", "--profile", profile_name],
            Some(run.stdout.as_bytes()),
        );
        assert_eq!(back.status, 0, "{}", back.stderr);
        let expected: Vec<String> = events.iter().map(|l| outbox_json(l)).collect();
        assert_eq!(back.lines(), expected, "{profile_name}");
    }
}

#[test]
fn convert_reports_bad_lines_and_writes_the_good_ones() {
    let events = events();
    let bad = events[3].replace("\"payment-service\"", "\"not a uri reference\"");
    let (input, good) = mixed(&events, &bad);
    let run = outbox_ce(&["convert", "--to", "cloudevent"], Some(input.as_bytes()));
    let expected: Vec<String> = good
        .iter()
        .map(|l| cloudevent_json(l, &Profile::Canonical))
        .collect();
    assert_mixed(&run, "convert", &expected, "field `source`");

    let cloudevents: Vec<String> = events
        .iter()
        .map(|l| cloudevent_json(l, &Profile::Canonical))
        .collect();
    let bad = cloudevents[3].replace("\"specversion\":\"1.0\"", "\"specversion\":\"0.3\"");
    let (input, good) = mixed(&cloudevents, &bad);
    let run = outbox_ce(&["convert", "--to", "outbox"], Some(input.as_bytes()));
    let expected: Vec<String> = good
        .iter()
        .map(|ce| {
            let wire = WireEvent::from_json(ce.as_bytes()).unwrap();
            let event = OutboxEvent::<Payload>::from_wire(wire, &Profile::Canonical).unwrap();
            String::from_utf8(event.to_message_json().unwrap()).unwrap()
        })
        .collect();
    assert_mixed(&run, "convert", &expected, "specversion");
}

#[test]
fn stdin_and_a_file_give_the_same_output() {
    let input = std::fs::read(EVENTS).unwrap();
    let from_file = outbox_ce(&["encode", "--mode", "binary", EVENTS], None);
    let from_dash = outbox_ce(&["encode", "--mode", "binary", "-"], Some(&input));
    let from_stdin = outbox_ce(&["encode", "--mode", "binary"], Some(&input));
    assert_eq!(from_file.status, 0);
    assert_eq!(from_file.lines().len(), 5);
    for run in [&from_dash, &from_stdin] {
        assert_eq!(run.status, 0);
        assert_eq!(run.stdout, from_file.stdout);
        assert_eq!(run.stderr, from_file.stderr);
    }
}

/// The instant an `occurred_at` names; python-outbox-core writes naive UTC times without an
/// offset.
fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .unwrap()
}

fn occurred_at(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["occurred_at"].as_str().unwrap().to_owned()
}

#[test]
fn encode_then_decode_gives_back_the_fixture_events() {
    let events = events();
    let input = joined(&events);
    for profile in ["canonical", "python-outbox-core"] {
        for (mode, _) in MODES {
            let encoded = outbox_ce(
                &["encode", "--mode", mode, "--profile", profile],
                Some(input.as_bytes()),
            );
            assert_eq!(encoded.status, 0, "{}", encoded.stderr);
            let decoded = outbox_ce(
                &["decode", "--profile", profile],
                Some(encoded.stdout.as_bytes()),
            );
            assert_eq!(decoded.status, 0, "{}", decoded.stderr);
            assert_eq!(decoded.lines().len(), events.len());
            for (back, original) in decoded.lines().into_iter().zip(&events) {
                // Byte for byte the same, payload included, except that `occurred_at` is
                // written as the same instant in UTC with an offset.
                let (was, is) = (occurred_at(original), occurred_at(back));
                assert_eq!(instant(&was), instant(&is), "{mode} {profile}");
                assert!(is.ends_with("+00:00"));
                let original = original.replace(
                    &format!("\"occurred_at\":\"{was}\""),
                    &format!("\"occurred_at\":\"{is}\""),
                );
                assert_eq!(back, original, "{mode} {profile}");
            }
            // And a second round trip changes nothing at all.
            let again = outbox_ce(
                &["encode", "--mode", mode, "--profile", profile],
                Some(decoded.stdout.as_bytes()),
            );
            let again = outbox_ce(
                &["decode", "--profile", profile],
                Some(again.stdout.as_bytes()),
            );
            assert_eq!(again.stdout, decoded.stdout, "{mode} {profile}");
        }
    }
}

#[test]
fn output_comes_out_as_the_input_goes_in() {
    // One line in and the stream still open: its message must come out without waiting for
    // more input. The channel only guards against a hang; it measures nothing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args(["encode", "--mode", "binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let events = events();
    writeln!(stdin, "{}", events[0]).unwrap();
    stdin.flush().unwrap();
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        let _ = stdout.read_line(&mut line);
        let _ = send.send(line);
    });
    let line = receive.recv_timeout(Duration::from_secs(120));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the first message did not come out while the input stayed open");
    assert_eq!(
        line.trim_end(),
        encoded(&events[0], Mode::Binary, &Profile::Canonical)
    );
}

#[test]
fn a_closed_output_stops_the_run_quietly() {
    let input = joined(&events()).repeat(2000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args(["encode", "--mode", "binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    // The run may stop before it has read everything: a write error here is expected.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(141));
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_pretty_printed_payload_stays_on_one_line() {
    // Another producer's binary-mode value with line breaks between JSON tokens.
    let message = r#"{"key":null,"headers":[["content-type","application/json"],["ce_specversion","1.0"],["ce_id","3f2c1a9e-8b7d-4c6e-9a5f-1b2c3d4e5f01"],["ce_source","s"],["ce_type","com.a.b"],["ce_time","2024-05-01T00:00:00Z"],["ce_aggregateid","a"]],"value":"{\n  \"a\": \"x\\ny\",\r\n  \"b\": [\n 2\n ]\n}"}"#;
    for to in ["outbox", "cloudevent"] {
        let run = outbox_ce(
            &["decode", "-q", "--to", to],
            Some(format!("{message}\n").as_bytes()),
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
        let lines = run.lines();
        assert_eq!(lines.len(), 1, "{to}: {lines:?}");
        let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let data = if to == "outbox" {
            &value
        } else {
            &value["data"]
        };
        assert_eq!(data["a"], "x\ny", "{to}");
        assert_eq!(data["b"], serde_json::json!([2]), "{to}");
    }
}

/// A 200 MB line took 823 MB of memory and a 1 GB one aborted the run. A line longer than
/// `--max-line-bytes` (default 1 MiB) is now that line's error, skipped as it streams by,
/// and the run goes on.
#[test]
fn a_line_longer_than_the_limit_is_that_lines_error() {
    let events = events();
    let input = format!(
        "{}\n{}\n{}\r\n{}\n",
        events[0],
        "x".repeat(1001),
        "y".repeat(1000),
        events[1]
    );
    let run = outbox_ce(
        &["encode", "--mode", "binary", "--max-line-bytes", "1000"],
        Some(input.as_bytes()),
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let stderr = run.stderr_lines();
    assert_eq!(
        stderr[0],
        "line 2: longer than 1000 bytes (--max-line-bytes); skipped"
    );
    // 1000 bytes (and a CRLF) is within the limit: read, and refused as JSON.
    assert!(stderr[1].starts_with("line 3: `yyy"), "{stderr:?}");
    assert_eq!(stderr[2], "encode: 4 in, 2 out, 2 failed");
    assert_eq!(run.lines().len(), 2);

    // The default, 1 MiB, for every command that reads lines.
    let input = format!("{}\n{}\n", "x".repeat((1 << 20) + 1), events[0]);
    for args in [
        &["encode", "--mode", "structured"][..],
        &["decode"],
        &["convert", "--to", "cloudevent"],
    ] {
        let run = outbox_ce(args, Some(input.as_bytes()));
        assert_eq!(
            run.stderr_lines()[0],
            "line 1: longer than 1048576 bytes (--max-line-bytes); skipped",
            "{args:?}"
        );
    }
    let run = outbox_ce(
        &["encode", "--mode", "binary", "--max-line-bytes", "0"],
        None,
    );
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("--max-line-bytes: `0` is not a number of bytes above 0")
    );
}

/// Each report took about nine `write` calls, so two processes sharing standard error made
/// lines such as `line 259: line 1: field …`. Each report is now one write of one line, and
/// nothing in the input can add a line of its own to it.
#[test]
fn reports_from_processes_sharing_standard_error_stay_whole() {
    let bad = "{\"event_id\":\"42\"}\n".repeat(20_000);
    let (mut reader, writer) = std::io::pipe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
                .args(["encode", "--mode", "binary"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(writer.try_clone().unwrap())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let bad = bad.clone();
            thread::spawn(move || stdin.write_all(bad.as_bytes()));
            child
        })
        .collect();
    drop(writer);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut reader, &mut stderr).unwrap();
    for mut child in children {
        assert_eq!(child.wait().unwrap().code(), Some(1));
    }
    let mut reports = 0;
    for line in stderr.lines() {
        if line == "encode: 20000 in, 0 out, 20000 failed" {
            continue;
        }
        let rest = line
            .strip_prefix("line ")
            .unwrap_or_else(|| panic!("{line:?}"));
        let (number, problem) = rest.split_once(": ").unwrap();
        assert!(number.parse::<u32>().is_ok(), "{line:?}");
        assert_eq!(
            problem, "field `event_id`: `42` is not a hyphenated UUID",
            "{line:?}"
        );
        reports += 1;
    }
    assert_eq!(reports, 40_000);

    // A header name made to look like a report of its own, with a terminal escape.
    let message =
        r#"{"key":null,"headers":[["ce_a\nline 99: injected\u001b[31m","x"]],"value":"x"}"#;
    let run = outbox_ce(&["decode"], Some(format!("{message}\n").as_bytes()));
    let stderr = run.stderr_lines();
    assert_eq!(stderr.len(), 2, "{stderr:?}");
    assert!(stderr[0].starts_with(r"line 1: header `ce_a\nline 99: injected\u{1b}[31m`"));
    assert!(!run.stderr.contains('\u{1b}'));
    // A byte-order mark is named, not left to `expected value at line 1 column 1`.
    let line = format!("\u{feff}{}\n", events()[0]);
    let run = outbox_ce(&["encode", "--mode", "binary"], Some(line.as_bytes()));
    assert!(run.stderr.contains("byte-order mark"), "{}", run.stderr);
}

/// Runs `outbox-ce ARGS REDIRECTION` through the shell, for what `Command` cannot set up: a
/// standard stream closed before the program starts.
fn with_shell(args: &str, redirection: &str) -> Run {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("\"$0\" {args} {redirection}"))
        .arg(env!("CARGO_BIN_EXE_outbox-ce"))
        .current_dir(common::ROOT)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `encode … >&-` exited 0 with `5 in, 5 out`, and a closed standard input read as an empty
/// file. Both are errors now (exit 2); `/dev/null` is still a place to write to and read
/// from, and a reader closing the pipe still stops the run with 141.
#[test]
fn a_closed_standard_output_or_input_is_an_error() {
    let file = "fixtures/python-outbox-core/events.jsonl";
    let run = with_shell(&format!("encode --mode binary {file}"), ">&-");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "outbox-ce encode: standard output is closed, so the output would go nowhere\n"
    );
    let run = with_shell("encode --mode binary", "<&-");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("outbox-ce encode: standard input is closed"),
        "{}",
        run.stderr
    );

    let run = with_shell(&format!("encode --mode binary {file}"), ">/dev/null");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "encode: 5 in, 5 out, 0 failed\n");
    let run = with_shell("encode --mode binary", "</dev/null");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "encode: 0 in, 0 out, 0 failed\n");
}

/// `/dev/null` opened for reading and writing, as `1<>/dev/null`.
fn dev_null_read_write() -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap()
}

/// `encode … 1<>/dev/null` exited 2, "standard output is closed": a stream on `/dev/null`
/// open for reading and writing was taken for one the Rust runtime had reopened, which is
/// how Python's `subprocess.DEVNULL` and systemd's `StandardOutput=null` hand it over. Only
/// a stream closed when the program starts is closed now; the same for standard input, and
/// for the relay's `--to stdout`.
#[test]
fn standard_streams_on_dev_null_open_read_write_are_not_closed() {
    let file = "fixtures/python-outbox-core/events.jsonl";
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args(["encode", "--mode", "binary", file])
        .current_dir(common::ROOT)
        .stdin(dev_null_read_write())
        .stdout(dev_null_read_write())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "encode: 5 in, 5 out, 0 failed\n");
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args(["decode"])
        .stdin(dev_null_read_write())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "decode: 0 in, 0 out, 0 failed\n");

    // Python's own subprocess.DEVNULL, for every stream.
    let script = "import subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, \
        stderr=subprocess.PIPE)\n\
        sys.stdout.write(f'{r.returncode} {r.stderr.decode()}')";
    let output = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_outbox-ce")])
        .args(["encode", "--mode", "structured", file])
        .current_dir(common::ROOT)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "0 encode: 5 in, 5 out, 0 failed\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The relay writes to it and marks its rows; with standard output closed it touches none.
    let db = common::relay::Db::sqlite();
    db.insert(0..3, 2);
    let run = with_shell(
        &format!("relay run --db {} --to stdout --once", db.url()),
        ">&-",
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "outbox-ce relay run: standard output is closed, so the output would go nowhere\n"
    );
    assert_eq!(db.published(), 0);
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-ce"))
        .args([
            "relay",
            "run",
            "--db",
            &db.url(),
            "--to",
            "stdout",
            "--once",
        ])
        .stdout(dev_null_read_write())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(db.published(), 3);
}

/// `--timeout 4294967.296` gave up after 0.09 s: librdkafka's milliseconds wrapped past 32
/// bits. A timeout beyond what librdkafka takes is a usage error.
#[test]
fn a_timeout_librdkafka_cannot_take_is_a_usage_error() {
    for command in ["produce", "consume"] {
        for value in ["4294967.296", "2147483.648", "1e12"] {
            let run = outbox_ce(
                &[
                    command,
                    "--brokers",
                    "127.0.0.1:1",
                    "--topic",
                    "t",
                    "--timeout",
                    value,
                ],
                None,
            );
            assert_eq!(run.status, 2, "{command} {value}");
            assert!(
                run.stderr.starts_with(&format!(
                    "outbox-ce: --timeout: `{value}` is more than 2147483.647 seconds"
                )),
                "{}",
                run.stderr
            );
        }
        // The longest one is taken (and then --help answers).
        let run = outbox_ce(&[command, "--timeout", "2147483.647", "--help"], None);
        assert_eq!(run.status, 0, "{}", run.stderr);
    }
}

/// What the library makes of one decode input line: the outbox line, or the error.
fn decoded(line: &str) -> Result<String, String> {
    let record = RecordRef::from_json(line.as_bytes()).map_err(|e| e.to_string())?;
    let event = OutboxEvent::<Payload>::from_message(&record.message(), &Profile::Canonical)
        .map_err(|e| e.to_string())?;
    let json = event.to_message_json().map_err(|e| e.to_string())?;
    Ok(String::from_utf8(json).unwrap())
}

/// What the library makes of one encode input line: the message, or the error.
fn encoded_or_error(line: &str) -> Result<String, String> {
    let event =
        OutboxEvent::<Payload>::from_message_json(line.as_bytes()).map_err(|e| e.to_string())?;
    let message = Encoder::new(Mode::Binary)
        .encode(&event)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8(Record::from(message).to_json()).unwrap())
}

/// The longest line taken in [`large_input`], and one line longer than that.
const LIMIT: usize = 70_000;

/// 40,000 lines (about 15 MB, some hundreds of reads and batches), every one different: good
/// lines, some ending in CRLF; a line that is not JSON every 997 lines and a bad one of
/// `bad(i)` every 1,499; a blank line every 1,000; a good line of 60,000 bytes and one of
/// 200,000, longer than [`LIMIT`], both spanning several reads.
fn large_input(good: impl Fn(usize) -> String, bad: impl Fn(usize) -> String) -> Vec<String> {
    (1..=40_000)
        .map(|number| match number {
            _ if number % 1000 == 500 => " ".to_owned(),
            _ if number % 997 == 0 => format!("not json {number}"),
            _ if number % 1499 == 0 => bad(number),
            12_345 => format!("{{\"x\":\"{}\"}}", "x".repeat(200_000)),
            _ if number % 7 == 0 => format!("{}\r", good(number)),
            _ => good(number),
        })
        .collect()
}

/// Runs `args` on `lines` through standard input, from a file, and on one core, and checks
/// that the output is `each` of every line in input order, the errors are reported with
/// their line numbers in order, and the count adds up.
fn assert_in_order(
    command: &str,
    args: &[&str],
    lines: &[String],
    each: impl Fn(&str) -> Result<String, String>,
) {
    let mut expected_out = Vec::new();
    let mut expected_err = Vec::new();
    let mut taken = 0;
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        taken += 1;
        if line.len() > LIMIT {
            expected_err.push(format!(
                "line {number}: longer than {LIMIT} bytes (--max-line-bytes); skipped"
            ));
            continue;
        }
        match each(line) {
            Ok(out) => expected_out.push(out),
            Err(e) => expected_err.push(format!("line {number}: {e}")),
        }
    }
    assert!(expected_err.len() > 60, "{}", expected_err.len());
    expected_err.push(format!(
        "{command}: {taken} in, {} out, {} failed",
        expected_out.len(),
        expected_err.len()
    ));
    let input = joined(lines);
    let file = format!("{}/{command}-in-order.jsonl", env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(&file, &input).unwrap();
    let limit = LIMIT.to_string();
    let mut with_limit = args.to_vec();
    with_limit.extend(["--max-line-bytes", &limit]);
    let from_file = [&with_limit[..], &[&file]].concat();
    let one_core = [
        &["-c", "0", env!("CARGO_BIN_EXE_outbox-ce")][..],
        &from_file,
    ]
    .concat();
    let runs = [
        (
            "standard input",
            outbox_ce(&with_limit, Some(input.as_bytes())),
        ),
        ("a file", outbox_ce(&from_file, None)),
        ("one core", run_program("taskset", &one_core)),
    ];
    for (how, run) in runs {
        assert_eq!(
            run.status,
            1,
            "{how}: {}",
            run.stderr.lines().last().unwrap_or("")
        );
        let out = run.lines();
        assert_eq!(out.len(), expected_out.len(), "{how}");
        for (at, (out, expected)) in out.iter().zip(&expected_out).enumerate() {
            assert_eq!(out, expected, "{how}: output line {}", at + 1);
        }
        assert_eq!(run.stderr_lines(), expected_err, "{how}");
    }
}

/// Runs `program ARGS` in the workspace root with nothing on standard input.
fn run_program(program: &str, args: &[&str]) -> Run {
    let output = Command::new(program)
        .args(args)
        .current_dir(common::ROOT)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The lines are converted in batches on every core and written in input order: a large
/// input with bad lines all through it comes out in order, each error under its own line
/// number, on any number of cores.
#[test]
fn a_large_input_comes_out_in_input_order_with_its_errors() {
    let events = events();
    // Every event different: its aggregate id numbered, and one with a 60,000-byte value.
    let good = |number: usize| {
        let event = &events[number % events.len()];
        let event = event.replacen(
            "\"aggregate_id\":\"",
            &format!("\"aggregate_id\":\"n{number}-"),
            1,
        );
        if number == 23_456 {
            event.replacen(
                "\"source\":",
                &format!("\"big\":\"{}\",\"source\":", "b".repeat(60_000)),
                1,
            )
        } else {
            event
        }
    };
    let bad_event = |number: usize| format!("{{\"event_id\":\"{number}\"}}");
    let lines = large_input(good, bad_event);
    assert_in_order(
        "encode",
        &["encode", "--mode", "binary"],
        &lines,
        encoded_or_error,
    );

    // The messages of those events, with bad ones of their own.
    let messages: Vec<String> = lines
        .iter()
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            encoded_or_error(line).unwrap_or_else(|_| line.to_owned())
        })
        .collect();
    let bad_time = |number: usize| {
        encoded_or_error(&good(number)).unwrap().replacen(
            "\"ce_time\",\"2024-",
            "\"ce_time\",\"2024-13-",
            1,
        )
    };
    let lines = large_input(|number| messages[number - 1].clone(), bad_time);
    assert!(lines.iter().any(|l| l.contains("2024-13-")));
    assert_in_order("decode", &["decode"], &lines, decoded);
}

/// The commands a help text lists under `Commands:`.
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Every command's `--help`, found from the program's own help: `[]` is the program,
/// `["relay", "run"]` a command of `relay`.
fn every_help() -> Vec<(Vec<String>, String)> {
    let mut helps = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = outbox_ce(&args, None);
        assert_eq!(run.status, 0, "{args:?}: {}", run.stderr);
        for command in commands_in(&run.stdout) {
            let mut next = path.clone();
            next.push(command);
            todo.push(next);
        }
        helps.push((path, run.stdout));
    }
    helps
}

/// The column where the descriptions of a help's options start, checking that they all
/// start there: each option line (two spaces, a `-`) has its description after a gap of
/// two spaces or more (or on the next lines), and each line that goes on with a description
/// starts in that column.
fn description_column(command: &str, help: &str) -> usize {
    let mut column = None;
    let mut in_option = false;
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        // An option and its description, not indented.
        assert!(
            !(line.starts_with('-') && line.contains("  ")),
            "{command}: an option out of its column: `{line}`"
        );
        if indent == 2 && line.trim_start().starts_with('-') {
            in_option = true;
            let flags = line.trim_start();
            let Some(gap) = flags.find("  ") else {
                continue;
            };
            let start = 2 + gap + flags[gap..].len() - flags[gap..].trim_start().len();
            assert_eq!(*column.get_or_insert(start), start, "{command}: `{line}`");
        } else if in_option && indent > 2 {
            let start = indent;
            assert_eq!(*column.get_or_insert(start), start, "{command}: `{line}`");
        } else {
            in_option = false;
        }
    }
    column.unwrap_or_else(|| panic!("{command}: no options listed:\n{help}"))
}

/// `relay run --help` printed `--db` at the start of its line, `relay schema --help` listed
/// no options, and `--version` worked on the program only. Every command's help, found from
/// the program's own, lists its options in one column, `--help` and `--version` among them,
/// and every command takes `--version`, printing what the program prints.
#[test]
fn every_commands_help_lists_its_options_aligned_and_takes_version() {
    let version = outbox_ce(&["--version"], None);
    assert_eq!(version.status, 0);
    assert!(
        version.stdout.starts_with("outbox-ce "),
        "{}",
        version.stdout
    );
    let helps = every_help();
    let names: Vec<String> = helps.iter().map(|(path, _)| path.join(" ")).collect();
    for expected in [
        "encode",
        "consume",
        "relay",
        "relay run",
        "relay schema",
        "bridge",
    ] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    for (path, help) in &helps {
        let command = format!("outbox-ce {}", path.join(" "));
        description_column(&command, help);
        for flag in ["--help", "--version"] {
            assert!(
                help.lines()
                    .any(|l| l.starts_with("  ") && l.contains(flag)),
                "{command}: {flag} not listed:\n{help}"
            );
        }
        for version_flag in ["--version", "-V"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(version_flag);
            let run = outbox_ce(&args, None);
            assert_eq!(run.status, 0, "{command} {version_flag}: {}", run.stderr);
            assert_eq!(run.stdout, version.stdout, "{command} {version_flag}");
        }
    }
}
