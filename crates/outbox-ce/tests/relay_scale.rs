//! Three relays on one PostgreSQL database share the work without breaking order per key; when
//! one is killed with SIGKILL in the middle of the run, the other two take its keys over and
//! every row ends published.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::relay::{Db, Relay, Target, check_delivery, status, wait_for, writer};

const KEYS: u64 = 300;

#[test]
fn three_relays_one_killed_keep_order_per_key_and_take_its_keys_over() {
    let db = Db::postgres();
    // The mock cluster holds every answer back 20 ms (which Kafka cannot be made to do), so
    // that the killed relay dies with messages in flight.
    let target = Target::mock("three", 6).slow(Duration::from_millis(20));
    let url = db.url();
    db.insert(0..3000, KEYS);
    let mut relays: Vec<Relay> = (0..3).map(|_| target.spawn(&url, &[])).collect();

    let stop = AtomicBool::new(false);
    let inserted = std::thread::scope(|scope| {
        let writer = writer(scope, &db, 3000, 30, Duration::from_millis(50), KEYS, &stop);
        wait_for("a third of the first rows published", || {
            db.published() >= 1000
        });
        for relay in &mut relays {
            assert!(relay.is_running(), "{}", relay.stderr());
        }
        relays[0].kill9();
        // The survivors go on with every key while rows keep coming.
        let after_kill = db.published();
        wait_for("3000 more rows published after the kill", || {
            db.published() >= after_kill + 3000
        });
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap()
    });
    wait_for("every row published", || db.published() == inserted);
    for relay in &mut relays[1..] {
        assert!(relay.is_running(), "{}", relay.stderr());
        relay.terminate();
    }
    for relay in &mut relays[1..] {
        assert_eq!(relay.wait(), 0, "{}", relay.stderr());
    }

    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (0, inserted as i64, 0));
    let rows = db.rows();
    let delivery = check_delivery(&rows, &target.messages());
    assert_eq!(delivery.distinct as u64, inserted);
    eprintln!(
        "three relays: {} messages for {inserted} rows, {} republished after the kill",
        delivery.messages, delivery.duplicates
    );
}
