//! `fast_log` (a `log` facade backend), set up as its README recommends
//! for performance: `Config::new().chan_len(Some(100000))` with one
//! appender, here a custom `LogAppender` that writes each formatted record
//! to a [`LineCounter`] (discards, counts lines). fast_log's channel blocks
//! the caller when full (it never drops). Flushed through
//! `log::logger().flush()`, which waits for the appenders.
//!
//! Fields: fast_log formats `record.args()` only and ignores `log` key/
//! values, so the fields are formatted into the message.
//!
//! `cargo bench -p distlog-peers --bench peer_fast_log`

use distlog_peers::{CountingAlloc, LineCounter, Peer};
use fast_log::appender::{FastLogRecord, LogAppender};
use std::io::Write;
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const NOTE: &str = "log facade; fields formatted into the message";

struct Discard(LineCounter);

impl LogAppender for Discard {
    fn do_logs(&mut self, records: &[FastLogRecord]) {
        for r in records {
            let _ = self.0.write_all(r.formated.as_bytes());
        }
    }
}

fn main() {
    let (sink, counts) = LineCounter::new();
    fast_log::init(
        fast_log::Config::new()
            .custom(Discard(sink))
            .level(log::LevelFilter::Info)
            .chan_len(Some(100_000)),
    )
    .expect("fast_log init");

    let mut p = Peer::new("fast_log")
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
    p.disabled("disabled", "log facade, debug! at level Info", |i| {
        log::debug!("not wanted {}", i)
    });
    p.finish();
}
