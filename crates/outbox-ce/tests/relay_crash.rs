//! Nothing is lost and order per key holds when the relay is killed with SIGKILL at random
//! moments of a run and started again: every row reaches the topic at least once, every row
//! ends published, no row is marked published that is not on the topic (checked right after
//! each kill and at the end), and the first delivery of each event of a key comes in `seq`
//! order.
//!
//! The kill moments are drawn at random (the seed is printed; `RELAY_TEST_SEED=N` replays a
//! run): one a random time after start, the others when the count of published rows passes a
//! random point of each quarter of the run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::relay::{Db, Rng, Target, check_delivery, status, wait_for};
use std::time::Duration;

/// A few hundred keys, so that every batch mixes keys and each key has many rows.
const KEYS: u64 = 300;

fn kill_and_restart(db: &Db, rows: u64, label: &str) {
    let target = Target::new(label, 4);
    db.insert(0..rows, KEYS);
    let url = db.url();
    let mut rng = Rng::new(label);

    let mut mid_run = 0;
    // A kill at a random time after start: during connecting, claiming or the first batches.
    {
        let mut relay = target.spawn(&url, &[]);
        std::thread::sleep(Duration::from_millis(rng.below(0..400)));
        relay.kill9();
    }
    // Kills when the published count passes a random point of each of the first three
    // quarters.
    for quarter in 0..3 {
        let point = rng.below(quarter * rows / 4 + 1..(quarter + 1) * rows / 4);
        let mut relay = target.spawn(&url, &[]);
        wait_for(&format!("{point} rows published"), || {
            db.published() >= point || !relay.is_running()
        });
        assert!(relay.is_running(), "the relay exited:\n{}", relay.stderr());
        relay.kill9();
        let published = db.published();
        eprintln!("{label}: killed at {published} of {rows} published (point {point})");
        // Right after the crash: every row marked published is on the topic, in order.
        check_delivery(&db.rows(), &target.messages());
        if published < rows {
            mid_run += 1;
        }
    }
    assert!(
        mid_run > 0,
        "no kill landed in the middle of the run: the test proved nothing"
    );

    let mut relay = target.spawn(&url, &["--once"]);
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());

    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (0, rows as i64, 0));
    assert_eq!(s.oldest_pending_age_seconds, None);
    let table = db.rows();
    assert_eq!(table.len() as u64, rows);
    assert!(table.iter().all(|r| r.published && !r.failed));
    let messages = target.messages();
    let delivery = check_delivery(&table, &messages);
    assert_eq!(delivery.distinct as u64, rows, "every row on the topic");
    eprintln!(
        "{label}: {} messages for {rows} rows, {} republished after the kills",
        delivery.messages, delivery.duplicates
    );
}

#[test]
fn postgres_kill_9_at_random_moments_loses_nothing_and_keeps_order() {
    kill_and_restart(&Db::postgres(), 20_000, "pg-kill");
}

#[test]
fn sqlite_kill_9_at_random_moments_loses_nothing_and_keeps_order() {
    kill_and_restart(&Db::sqlite(), 20_000, "sqlite-kill");
}
