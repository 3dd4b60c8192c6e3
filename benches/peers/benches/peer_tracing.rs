//! `tracing` + `tracing-subscriber`'s fmt layer writing through
//! `tracing-appender`'s `non_blocking` writer, as tracing-appender's docs
//! set it up for production (`let (nb, _guard) = non_blocking(writer);
//! fmt().with_writer(nb).init()`), with its defaults: lossy, 128,000 lines
//! buffered. The writer is a [`LineCounter`] (discards, counts lines);
//! lines tracing-appender dropped are also read from its `error_counter`.
//!
//! `cargo bench -p distlog-peers --bench peer_tracing`

use distlog_peers::{CountingAlloc, LineCounter, Peer};
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let (sink, counts) = LineCounter::new();
    let (nb, _guard) = tracing_appender::non_blocking(sink);
    let dropped = nb.error_counter();
    tracing_subscriber::fmt()
        .with_writer(nb)
        .with_max_level(tracing::Level::INFO)
        .init();

    let mut p = Peer::new("tracing").delivered(move || counts.lines.load(Ordering::Relaxed));
    for t in [1, 2] {
        p.enabled("0kv", t, "", |i, _| tracing::info!("request {} done", i));
        p.enabled("3kv", t, "", |i, _| {
            tracing::info!(
                user_id = i,
                ok = true,
                peer = "10.0.0.7",
                "request {} done",
                i
            )
        });
        p.enabled("8kv", t, "", |i, t| {
            tracing::info!(
                user_id = i,
                ok = true,
                peer = "10.0.0.7",
                latency_ms = 1.5f64,
                shard = t,
                route = "/orders",
                delta = -7i64,
                retries = 3u32,
                "request {} done",
                i
            )
        });
    }
    p.disabled("disabled", "debug! at max level INFO", |i| {
        tracing::debug!(user_id = i, "not wanted {}", i)
    });
    println!(
        "PEERS_NOTE tracing: non_blocking error_counter (lines dropped) = {}",
        dropped.dropped_lines()
    );
    p.finish();
}
