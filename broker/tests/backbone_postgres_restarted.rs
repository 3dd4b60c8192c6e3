//! The shared PostgreSQL is restarted mid-stream: the central brokers keep
//! the records in their buffers and hold their acknowledgements, and
//! PostgreSQL ends with every record logged exactly once.
//!
//! Guarantee: a central acknowledges a message only after PostgreSQL has
//! committed its records; while the database is away the messages stay
//! unacknowledged in the stream (at most `max_ack_pending` per consumer,
//! then the stream stops delivering), and what the stream redelivers after
//! `ack_wait` meanwhile is skipped by record identity once written.

#[path = "support/backbone.rs"]
mod backbone;
mod servers;
mod support;

use backbone::{python_client, rows_now, Loadgen, Rows, Topology};
use std::time::Duration;

#[test]
fn postgres_restarted_mid_stream_loses_and_doubles_nothing() {
    let mut t = Topology::start("pg-restarted", 3, 2, "10s");
    const N: u64 = 60_000;
    let loadgens = t.loadgens(N, 15_000);
    let python = python_client(&t.edges[0].endpoint, 100);
    t.wait("rows flowing", Duration::from_secs(60), |t| {
        rows_now(&t.pg) > 10_000
    });
    let redelivered_before = redelivered(&t);
    t.pg.stop();
    // Away until the stream has redelivered what the centrals hold
    // unacknowledged (ack_wait 10s): the duplicates this test is about.
    let mut redelivered_away = 0;
    t.wait(
        "the stream redelivers while PostgreSQL is away",
        Duration::from_secs(60),
        |t| {
            redelivered_away = redelivered(t);
            redelivered_away > redelivered_before
        },
    );
    t.pg.start_again();
    let logged: u64 = loadgens
        .into_iter()
        .map(|l| Loadgen::logged(&l.finish()))
        .sum::<u64>()
        + python;
    t.wait_all_written(logged);
    let repeated: u64 = t.centrals.iter().map(|c| c.repeated()).sum();
    t.stop();
    let rows = Rows::of(&t.pg);
    eprintln!(
        "backbone PostgreSQL restarted: logged {logged} ({python} Python), rows {rows:?}, \
         messages pending redelivery while away {redelivered_away}, repeated records skipped {repeated}"
    );
    rows.assert_exactly_once(logged, python, "");
}

/// Messages the stream has redelivered to the centrals and not yet seen
/// acknowledged (0 while the consumer cannot be read).
fn redelivered(t: &Topology) -> u64 {
    t.nats
        .consumer_info()
        .map_or(0, |c| c.num_redelivered as u64)
}
