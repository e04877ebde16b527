//! The relay rides out a database restart in the middle of a run: it reconnects and finishes,
//! no row fails, every row is published, order per key holds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::relay::{Db, Target, check_delivery, status, wait_for};

const KEYS: u64 = 200;

#[test]
fn database_restart_mid_run_the_relay_reconnects_and_finishes() {
    let mut db = Db::postgres();
    // Slow acknowledgements keep messages in flight when the database goes away: the mock
    // cluster holds every answer back, which Kafka cannot be made to do.
    let target = Target::mock("db-restart", 4).slow(Duration::from_millis(50));
    let url = db.url();
    db.insert(0..3000, KEYS);
    let mut relay = target.spawn(&url, &["--poll-interval", "1s"]);
    wait_for("some rows published", || db.published() >= 500);
    db.pg_mut().stop().unwrap();
    // The relay sees its connection break while the server is down.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        relay.is_running(),
        "the relay exited when the database went away:\n{}",
        relay.stderr()
    );
    db.pg_mut().start_again().unwrap();
    db.insert(3000..4000, KEYS);

    wait_for("every row published after the restart", || {
        db.published() == 4000
    });
    assert!(relay.is_running(), "{}", relay.stderr());
    relay.terminate();
    assert_eq!(relay.wait(), 0, "{}", relay.stderr());

    let s = status(&url);
    assert_eq!((s.pending, s.published, s.failed), (0, 4000, 0));
    let delivery = check_delivery(&db.rows(), &target.messages());
    assert_eq!(delivery.distinct, 4000);
}
