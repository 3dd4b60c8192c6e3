//! One node of the 3-node NATS cluster (the stream's leader) is killed
//! (SIGKILL) mid-stream and started again: PostgreSQL ends with every
//! record logged exactly once.
//!
//! Guarantee: the stream is replicated on 3 nodes and a publish counts
//! only once a quorum (2) stored it, so losing one node loses nothing
//! acknowledged; the edges re-send what was in flight to it (the stream's
//! duplicate window drops the copies by `Nats-Msg-Id`), the centrals
//! reconnect to another node and get what they had not acknowledged
//! again (skipped in PostgreSQL by record identity).

#[path = "support/backbone.rs"]
mod backbone;
mod servers;
mod support;

use backbone::{python_client, rows_now, Loadgen, Rows, Topology};
use std::time::Duration;

#[test]
fn a_nats_node_killed_mid_stream_and_restarted_loses_and_doubles_nothing() {
    let mut t = Topology::start("nats-killed", 3, 2, "10s");
    const N: u64 = 60_000;
    let loadgens = t.loadgens(N, 15_000);
    let python = python_client(&t.edges[1].endpoint, 100);
    t.wait("rows flowing", Duration::from_secs(60), |t| {
        rows_now(&t.pg) > 10_000
    });
    let leader = t.nats.stream_leader();
    let i = t.nats.index(&leader);
    t.nats.kill(i);
    // The stream goes on without it: more rows arrive.
    let at_kill = rows_now(&t.pg);
    t.wait("rows while a node is down", Duration::from_secs(60), |t| {
        rows_now(&t.pg) > at_kill + 10_000
    });
    t.nats.restart(i);
    let logged: u64 = loadgens
        .into_iter()
        .map(|l| Loadgen::logged(&l.finish()))
        .sum::<u64>()
        + python;
    t.wait_all_written(logged);
    let redelivered = t.nats.consumer_info().unwrap().num_redelivered;
    let repeated: u64 = t.centrals.iter().map(|c| c.repeated()).sum();
    t.stop();
    let rows = Rows::of(&t.pg);
    eprintln!(
        "backbone NATS node killed ({leader}, the stream leader): logged {logged} ({python} Python), \
         rows {rows:?}, redelivered messages {redelivered}, repeated records skipped {repeated}"
    );
    rows.assert_exactly_once(logged, python, "");
}
