//! An edge broker is restarted (SIGTERM, started again on the same
//! endpoints) mid-stream: PostgreSQL ends with every record logged exactly
//! once.
//!
//! Guarantee: at SIGTERM the edge publishes everything it took (and waits
//! for the stream's acknowledgements) before it exits; its acknowledged
//! clients (`loadgen --ack`) keep what the edge had not acknowledged and
//! send it again to the restarted edge. What was both published and
//! re-sent is dropped by the stream's duplicate window (same
//! `Nats-Msg-Id`) or, past it, skipped by PostgreSQL. Plain ZeroMQ clients
//! (the Python ones) have no acknowledgement: what they send while the
//! edge restarts can be lost, so here they send to the other edge and to
//! this one once it is back.

#[path = "support/backbone.rs"]
mod backbone;
mod servers;
mod support;

use backbone::{python_client, rows_now, Loadgen, Rows, Topology};
use std::time::Duration;

#[test]
fn an_edge_restarted_mid_stream_loses_and_doubles_nothing() {
    let mut t = Topology::start("edge-restarted", 3, 2, "10s");
    const N: u64 = 60_000;
    let loadgens = t.loadgens(N, 15_000);
    let mut python = python_client(&t.edges[1].endpoint, 100);
    t.wait("rows flowing", Duration::from_secs(60), |t| {
        rows_now(&t.pg) > 10_000
    });
    let err = t.edges[0].stop();
    t.edges[0].restart();
    python += python_client(&t.edges[0].endpoint, 100);
    let summaries: Vec<serde_json::Value> = loadgens.into_iter().map(|l| l.finish()).collect();
    let logged: u64 = summaries.iter().map(Loadgen::logged).sum::<u64>() + python;
    t.wait_all_written(logged);
    let repeated: u64 = t.centrals.iter().map(|c| c.repeated()).sum();
    t.stop();
    let rows = Rows::of(&t.pg);
    eprintln!(
        "backbone edge restarted: logged {logged} ({python} Python), rows {rows:?}, \
         loadgen resent {:?}, repeated records skipped {repeated}",
        summaries
            .iter()
            .map(|s| s["resent"].clone())
            .collect::<Vec<_>>()
    );
    rows.assert_exactly_once(logged, python, &format!(": {err}"));
}
