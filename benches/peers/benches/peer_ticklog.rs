//! `ticklog`, set up as its README shows: `ticklog::configure!` with a
//! sink (here `WriterSink` over a [`LineCounter`] that discards and counts
//! lines), `max_level: Info`, default backpressure (`Drop`: a full
//! per-thread ring discards the record). ticklog has no flush call short of
//! dropping its guard, so delivery is counted once the sink stops moving.
//!
//! Fields: ticklog has no structured fields; they are format arguments
//! (encoded typed, formatted by its drain thread).
//!
//! `cargo bench -p distlog-peers --bench peer_ticklog`

use distlog_peers::{CountingAlloc, LineCounter, Peer};
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const NOTE: &str = "no structured fields: format arguments";

fn main() {
    let (sink, counts) = LineCounter::new();
    let _guard = ticklog::configure! {
        sink: ticklog::WriterSink::new(sink),
        max_level: ticklog::Level::Info,
    }
    .expect("ticklog configure");

    let mut p = Peer::new("ticklog").delivered(move || counts.lines.load(Ordering::Relaxed));
    for t in [1, 2] {
        p.enabled("0kv", t, "", |i, _| ticklog::info!("request {} done", i));
        p.enabled("3kv", t, NOTE, |i, _| {
            ticklog::info!(
                "request {} done user_id={} ok={} peer={}",
                i,
                i,
                true,
                "10.0.0.7"
            )
        });
        p.enabled("8kv", t, NOTE, |i, t| {
            ticklog::info!(
                "request {} done user_id={} ok={} peer={} latency_ms={} shard={} route={} delta={} retries={}",
                i, i, true, "10.0.0.7", 1.5f64, t, "/orders", -7i64, 3u32
            )
        });
    }
    p.disabled("disabled", "debug! at max_level Info (compile-time)", |i| {
        ticklog::debug!("not wanted {}", i)
    });
    p.finish();
}
