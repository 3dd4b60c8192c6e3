//! `slog` with `slog-async`, as slog's docs set it up for production: a
//! `slog-term` `FullFormat` drain (here over a [`LineCounter`] that
//! discards and counts lines) behind `slog_async::Async` with its defaults
//! (channel of 128 records, `OverflowStrategy::DropAndReport`: a full
//! channel drops the record and later logs how many it dropped).
//!
//! Level: slog's default `release_max_level_info` compiles `debug!` out of
//! release builds; the enabled cases log at INFO.
//!
//! `cargo bench -p distlog-peers --bench peer_slog`

use distlog_peers::{CountingAlloc, LineCounter, Peer};
use slog::{o, Drain};
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let (sink, counts) = LineCounter::new();
    let decorator = slog_term::PlainDecorator::new(sink);
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let drain = slog_async::Async::new(drain).build().fuse();
    let log = slog::Logger::root(drain, o!("service" => "bench"));
    let log = &log;

    let mut p = Peer::new("slog").delivered(move || counts.lines.load(Ordering::Relaxed));
    for t in [1, 2] {
        p.enabled("0kv", t, "", |i, _| slog::info!(log, "request {} done", i));
        p.enabled("3kv", t, "", |i, _| {
            slog::info!(log, "request {} done", i; "user_id" => i, "ok" => true, "peer" => "10.0.0.7")
        });
        p.enabled("8kv", t, "", |i, t| {
            slog::info!(log, "request {} done", i;
                "user_id" => i, "ok" => true, "peer" => "10.0.0.7", "latency_ms" => 1.5f64,
                "shard" => t, "route" => "/orders", "delta" => -7i64, "retries" => 3u32)
        });
    }
    p.disabled(
        "disabled",
        "debug! compiled out (release_max_level_info)",
        |i| slog::debug!(log, "not wanted {}", i; "user_id" => i),
    );
    p.finish();
}
