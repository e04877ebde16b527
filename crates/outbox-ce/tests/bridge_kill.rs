//! Two bridges in one consumer group over 10,000 messages on 3 partitions (python-outbox-core
//! publisher messages, the Python and JavaScript SDKs' messages in both modes, malformed
//! ones), one killed with -9 mid-run and restarted: every good message on the output at least
//! once (exactly once with `--exactly-once`, as far as the broker shows), in order per input
//! partition, every bad one on the dead-letter topic, the group's offsets committed to the
//! end. On librdkafka's mock cluster, and on the broker `.ci/run` starts
//! (`OUTBOX_CE_BROKERS`, Apache Kafka) when there is one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bridge_support;
mod common;

use std::collections::{BTreeMap, HashMap};

use bridge_support::{
    Cluster, Converter, Input, InputFormat, OutputMode, bridge, check, committed, corpus, metric,
    produce, read_all, seq_of, topic,
};
use common::relay::{Relay, free_addr, wait_for};

const TOTAL: u64 = 10_000;

struct Run {
    inputs: Vec<Input>,
    output: Vec<testkit::Message>,
    dead: Vec<testkit::Message>,
    from: String,
    logs: Vec<String>,
    /// The log of the bridge that was killed.
    killed_log: String,
}

/// Two bridges, half the corpus, kill -9 one once it has bridged some messages, the other
/// half, the killed one started again; all run until idle.
fn kill_run(cluster: &Cluster, extra: &[&str]) -> Run {
    let brokers = cluster.brokers();
    let (from, to, dead, group) = (topic("in"), topic("out"), topic("dead"), topic("group"));
    cluster.create_topic(&from, 3);
    cluster.create_topic(&to, 3);
    cluster.create_topic(&dead, 1);
    let inputs = corpus(TOTAL, 3, 25);
    let (first, second) = inputs.split_at(inputs.len() / 2);
    let addr = free_addr();
    // Idle exit well past the session timeout (6 s) and a rebalance: the survivors must still
    // be there when the killed member's partitions move to them.
    let mut args = vec!["--dead-letter-topic", dead.as_str(), "--idle-exit", "20s"];
    args.extend_from_slice(extra);
    // On the mock cluster each bridge joins as a static member whose `group.instance.id`
    // sorts before those of the bridges already in the group, once they hold partitions.
    // librdkafka's mock group coordinator (classic protocol, librdkafka 2.12.1 and its master
    // branch) ends a rebalance's sync phase as soon as the leader's SyncGroup carries an
    // assignment for every member, and answers a follower's SyncGroup that comes after it
    // with INVALID_REQUEST (its state `Up` takes no SyncGroup, where a Kafka broker hands out
    // the stored assignment). The follower then rejoins, which starts the next rebalance
    // (`session.timeout.ms` - 1 s later), where the same race runs again. It sends the
    // JoinGroup responses in join order, the leader (the first member to join) first, so on
    // a loaded machine the leader, which has its metadata cached and assigns at once, wins
    // round after round: its log reads "assigned [0, 1]", "revoked", every five seconds, the
    // follower's nothing (`debug=cgrp`: "SyncGroup response: Broker: Invalid request"), and
    // no bridge goes idle, since each assignment is activity. The mock elects the member
    // with the lowest `group.instance.id` instead, so a bridge that joins last with the
    // lowest id is the leader and gets its JoinGroup response after the others, which then
    // sync while it assigns. A broker (`OUTBOX_CE_BROKERS`) runs the plain dynamic group.
    let mock = cluster.is_mock();
    let start = |args: &[&str], instance: &str| {
        let member = format!("group.instance.id={group}-{instance}");
        let member = [args, &["--consumer-option", member.as_str()][..]].concat();
        bridge(
            &brokers,
            &from,
            &to,
            &group,
            if mock { &member } else { args },
        )
    };
    let mut a = start(
        &[&args[..], &["--metrics-listen", addr.as_str()]].concat(),
        "2",
    );
    wait_for("the first bridge to hold partitions", || {
        holds_partitions(&a.stderr())
    });
    let mut b = start(&args, "1");
    // Both in the group with partitions of their own, then the first half.
    wait_for("both bridges to hold partitions", || {
        holds_partitions(&a.stderr()) && holds_partitions(&b.stderr())
    });
    produce(&brokers, &from, first);
    // Kill it mid-run: once it holds partitions and has bridged some of them (as its own
    // /metrics says).
    wait_for("the first bridge to bridge messages", || {
        holds_partitions(&a.stderr())
            && metric(&addr, "outbox_bridge_produced_total").is_some_and(|n| n >= 300.0)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.kill9();
    let killed_log = a.stderr();
    produce(&brokers, &from, second);
    let mut a2 = start(&args, "0");
    let mut logs = Vec::new();
    for bridge in [&mut b, &mut a2] {
        let status = bridge.wait();
        assert_eq!(status, 0, "{}", tail(&bridge.stderr()));
        logs.push(bridge.stderr());
    }
    // Offsets committed to the end of every partition: a bridge that stopped part way through
    // a record batch (killed, or giving the partition up in a rebalance) leaves its committed
    // offset inside it, and the next owner resumes there without skipping the rest of the
    // batch or going idle before the end.
    let ends: BTreeMap<i32, i64> = (0..3)
        .map(|p| (p, inputs.iter().filter(|i| i.partition == p).count() as i64))
        .collect();
    assert_eq!(
        committed(&brokers, &group, &from, 3),
        ends,
        "{}",
        logs.iter()
            .map(|l| tail(l))
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let _: &mut Relay = &mut a;
    Run {
        output: read_all(&brokers, &to, 3),
        dead: read_all(&brokers, &dead, 1),
        inputs,
        from,
        logs,
        killed_log,
    }
}

/// Whether a bridge's log says it was assigned at least one partition.
fn holds_partitions(log: &str) -> bool {
    let after = |l: &str, marker: &str| {
        l.split(marker)
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    log.lines().any(|l| {
        after(l, "assigned partitions [")
            || (l.contains("outbox.bridge_assigned") && after(l, "\"partitions\":["))
    })
}

/// The log lines that are not about one dead letter.
fn tail(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains("dead-letter topic:") && !l.contains("outbox.publish_failed"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn binary() -> Converter {
    Converter::new(InputFormat::Auto, OutputMode::Binary, Default::default())
}

fn at_least_once(cluster: &Cluster) {
    let run = kill_run(cluster, &[]);
    let outcome = check(&run.inputs, &run.output, &run.dead, &run.from, &binary());
    assert!(outcome.bad >= 400);
    // What was sent twice is what the killed bridge had sent since its last commit.
    eprintln!(
        "at least once: {} outputs, {} dead letters, {} sent twice",
        run.output.len(),
        run.dead.len(),
        outcome.duplicates().len()
    );
    assert!(
        run.killed_log.contains("assigned partitions"),
        "{}",
        run.killed_log
    );
}

#[test]
fn two_bridges_one_killed_at_least_once_on_the_mock_cluster() {
    at_least_once(&Cluster::mock());
}

#[test]
fn two_bridges_one_killed_at_least_once_on_the_ci_broker() {
    match Cluster::external() {
        Some(cluster) => at_least_once(&cluster),
        None => eprintln!("OUTBOX_CE_BROKERS is not set: the mock cluster test stands alone"),
    }
}

/// The input positions each committed transaction of a log covered: `partition -> the
/// highest offset committed`.
fn committed_positions(log: &str) -> HashMap<i64, i64> {
    let mut positions = HashMap::new();
    for line in log.lines() {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if json["event"] != "outbox.bridge_transaction_committed" {
            continue;
        }
        for pair in json["offsets"].as_array().unwrap() {
            let (p, o) = (pair[0].as_i64().unwrap(), pair[1].as_i64().unwrap());
            let entry = positions.entry(p).or_insert(o);
            *entry = (*entry).max(o);
        }
    }
    positions
}

/// librdkafka's mock cluster takes transactions but neither stores the offsets of
/// `TxnOffsetCommit` nor aborts anything (its Fetch answers no aborted transaction and a
/// last stable offset equal to the high watermark): what a killed bridge produced in its
/// open transaction stays readable. So this test shows what the mock can: every message
/// that a committed transaction covered is on the output exactly once, and the only messages
/// there twice are those after the killed bridge's last committed transaction, which a broker
/// with working transactions aborts and hides from read-committed consumers.
#[test]
fn two_bridges_one_killed_exactly_once_on_the_mock_cluster() {
    let run = kill_run(
        &Cluster::mock(),
        &["--exactly-once", "--log-format", "json", "--log-events"],
    );
    let outcome = check(&run.inputs, &run.output, &run.dead, &run.from, &binary());
    let killed = committed_positions(&run.killed_log);
    assert!(
        !killed.is_empty(),
        "the killed bridge committed transactions:\n{}",
        tail(&run.killed_log)
    );
    // The survivors committed transactions after the kill. Not necessarily both: the
    // partitions the restarted bridge is given may be bridged to their end already.
    assert!(
        run.logs
            .iter()
            .any(|log| !committed_positions(log).is_empty()),
        "{}",
        run.logs.join("\n---\n")
    );
    let by_seq: HashMap<u64, &Input> = run.inputs.iter().map(|i| (i.seq, i)).collect();
    let offset_of = |input: &Input| {
        run.inputs
            .iter()
            .filter(|i| i.partition == input.partition && i.seq < input.seq)
            .count() as i64
    };
    let duplicates = outcome.duplicates();
    for seq in &duplicates {
        let input = by_seq[seq];
        let committed_by_killed = killed
            .get(&i64::from(input.partition))
            .copied()
            .unwrap_or(0);
        assert!(
            offset_of(input) >= committed_by_killed,
            "input {seq} (partition {} offset {}) is on the output twice though a committed transaction covered it",
            input.partition,
            offset_of(input)
        );
    }
    assert!(duplicates.len() <= 10_000);
    eprintln!(
        "exactly once on the mock cluster: {} outputs, {} dead letters, {} twice (all from the killed bridge's open transaction)",
        run.output.len(),
        run.dead.len(),
        duplicates.len()
    );
    let _ = seq_of;
}

/// On the broker `.ci/run` starts: with working transactions, a run with `--exactly-once`
/// leaves every message exactly once for a read-committed reader; Tansu 0.6.0 refuses
/// `EndTxn` (UNSUPPORTED_FEATURE), and then the bridge stops with exit 1 naming the
/// transaction, having committed no offset.
#[test]
fn exactly_once_on_the_ci_broker() {
    let Some(cluster) = Cluster::external() else {
        eprintln!("OUTBOX_CE_BROKERS is not set");
        return;
    };
    let brokers = cluster.brokers();
    let (from, to, dead, group) = (topic("in"), topic("out"), topic("dead"), topic("group"));
    cluster.create_topic(&from, 3);
    cluster.create_topic(&to, 3);
    cluster.create_topic(&dead, 1);
    let inputs = corpus(300, 3, 25);
    produce(&brokers, &from, &inputs);
    let mut run = bridge(
        &brokers,
        &from,
        &to,
        &group,
        &[
            "--exactly-once",
            "--dead-letter-topic",
            &dead,
            "--idle-exit",
            "5s",
        ],
    );
    match run.wait() {
        0 => {
            let outcome = check(
                &inputs,
                &read_all(&brokers, &to, 3),
                &read_all(&brokers, &dead, 1),
                &from,
                &binary(),
            );
            assert!(outcome.duplicates().is_empty());
        }
        status => {
            assert_eq!(status, 1, "{}", tail(&run.stderr()));
            let log = run.stderr();
            assert!(
                log.contains("the transaction could not commit or abort") && log.contains("EndTxn"),
                "{}",
                tail(&log)
            );
            assert!(
                committed(&brokers, &group, &from, 3)
                    .values()
                    .all(|o| *o < 0),
                "no offset committed"
            );
            eprintln!("this broker has no transactions: {}", tail(&log));
        }
    }
}
