//! `ftlog` (a `log` facade backend), set up as its README's production
//! example: `ftlog::builder().max_log_level(Info).root(writer)` with the
//! default bounded channel (100,000 messages, `block_when_full = false`:
//! a full channel discards). The root writer is a [`LineCounter`]
//! (discards, counts lines); flushed through `log::logger().flush()`.
//!
//! Fields: ftlog's formatter writes the message only and ignores `log` key/
//! values, so the fields are formatted into the message (`"request {} done
//! user_id={} ok={} peer={}"`), the same text a structured logger writes.
//!
//! `cargo bench -p distlog-peers --bench peer_ftlog`

use distlog_peers::{CountingAlloc, LineCounter, Peer};
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const NOTE: &str = "log facade; fields formatted into the message";

fn main() {
    let (sink, counts) = LineCounter::new();
    let _guard = ftlog::builder()
        .max_log_level(ftlog::LevelFilter::Info)
        .root(sink)
        .try_init()
        .expect("ftlog init");

    let mut p = Peer::new("ftlog")
        .delivered(move || counts.lines.load(Ordering::Relaxed))
        .flush(|| log::logger().flush());
    for t in [1, 2] {
        p.enabled("0kv", t, "log facade", |i, _| {
            log::info!("request {} done", i)
        });
        p.enabled("3kv", t, NOTE, |i, _| {
            log::info!(
                "request {} done user_id={} ok={} peer={}",
                i,
                i,
                true,
                "10.0.0.7"
            )
        });
        p.enabled("8kv", t, NOTE, |i, t| {
            log::info!(
                "request {} done user_id={} ok={} peer={} latency_ms={} shard={} route={} delta={} retries={}",
                i, i, true, "10.0.0.7", 1.5f64, t, "/orders", -7i64, 3u32
            )
        });
    }
    p.disabled("disabled", "log facade, debug! at max level Info", |i| {
        log::debug!("not wanted {}", i)
    });
    p.finish();
}
