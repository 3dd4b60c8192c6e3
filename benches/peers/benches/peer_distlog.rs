//! distlog under the peers' protocol (see the crate docs): the native macro
//! and the `log` facade with 0, 3 and 8 key/values, one and two threads,
//! and both below the level.
//!
//! Delivery: every record goes through the real pipeline over ZeroMQ tcp
//! loopback to an in-process PULL receiver that decodes each batch and
//! counts its records (as `benches/log_call.rs`). The pipeline is set to
//! block when a thread's buffer is full (`block_when_full(true)`), so the
//! figures are of a logger that loses nothing; `dropped` is reported too.
//!
//! `cargo bench -p distlog-peers --bench peer_distlog`;
//! quick check: `cargo test -p distlog-peers --benches`.

use distlog_peers::{CountingAlloc, Peer};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[path = "../../../tests/common/record_counter.rs"]
mod record_counter;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let (endpoint, received) = record_counter::spawn();
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .log_facade(true)
        .install()
        .unwrap();

    let mut p = Peer::new("distlog")
        .delivered(move || received.load(Ordering::Relaxed))
        .flush(|| {
            distlog::flush_timeout(Duration::from_secs(30));
        });
    for t in [1, 2] {
        p.enabled("0kv", t, "native macro", |i, _| {
            distlog::info!("request {} done", i)
        });
        p.enabled(
            "3kv",
            t,
            "native macro",
            |i, _| distlog::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i),
        );
        p.enabled("8kv", t, "native macro", |i, t| {
            distlog::info!(user_id = i, ok = true, peer = "10.0.0.7", latency_ms = 1.5f64,
                shard = t, route = "/orders", delta = -7i64, retries = 3u32;
                "request {} done", i)
        });
        p.enabled("facade_0kv", t, "log facade", |i, _| {
            log::info!("request {} done", i)
        });
        p.enabled(
            "facade_3kv",
            t,
            "log facade, log kv",
            |i, _| log::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i),
        );
        p.enabled("facade_8kv", t, "log facade, log kv", |i, t| {
            log::info!(user_id = i, ok = true, peer = "10.0.0.7", latency_ms = 1.5f64,
                shard = t, route = "/orders", delta = -7i64, retries = 3u32;
                "request {} done", i)
        });
    }
    p.disabled(
        "disabled",
        "native macro, debug! at level info",
        |i| distlog::debug!(user_id = i; "not wanted {}", i),
    );
    p.disabled(
        "facade_disabled",
        "log facade, debug! at level info",
        |i| log::debug!(user_id = i; "not wanted {}", i),
    );
    let stats = distlog::stats();
    println!(
        "PEERS_NOTE distlog: pipeline dropped {} records, sent {}",
        stats.dropped, stats.sent
    );
    p.finish();
}
