//! `quicklog`, set up as its README shows: `init!()`, a flusher chosen with
//! `with_flush!` (here one that writes each line to a [`LineCounter`] that
//! discards and counts), and `flush!()` called by the application: its
//! model has no background thread ("flushing is deferred until `flush!()`
//! is called"), so the bench drains the queue in each pause between bursts,
//! on the logging thread, untimed.
//!
//! Fields: quicklog's `key = value` arguments are formatted lazily as
//! `key=value` into `{}` placeholders of the message.
//!
//! Two threads: not possible. quicklog's queue is a single-producer
//! `heapless::spsc::Queue` behind a `static mut`; logging from a second
//! thread is a data race (its roadmap lists "multi-threaded variants" as
//! not done). Levels below INFO are compiled out (`max_level_info`).
//!
//! `cargo bench -p distlog-peers --bench peer_quicklog`

use distlog_peers::{CountingAlloc, LineCounter, Peer};
use std::io::Write;
use std::sync::atomic::Ordering;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Discard(LineCounter);

impl quicklog_flush::Flush for Discard {
    fn flush_one(&mut self, line: String) {
        let _ = self.0.write_all(line.as_bytes());
    }
}

fn drain() {
    while quicklog::try_flush!().is_ok() {}
}

const WHY_NOT_2T: &str =
    "single-producer queue behind a static mut: logging from two threads is a data race";

fn main() {
    let (sink, counts) = LineCounter::new();
    quicklog::init!();
    quicklog::with_flush!(Discard(sink));

    let mut p = Peer::new("quicklog")
        .delivered(move || counts.lines.load(Ordering::Relaxed))
        .flush(drain)
        .between(drain);
    p.enabled("0kv", 1, "flush!() in the pauses", |i, _| {
        quicklog::info!("request {} done", i)
    });
    p.enabled("3kv", 1, "key = value args, formatted lazily", |i, _| {
        quicklog::info!(
            "request {} done {} {} {}",
            i,
            user_id = i,
            ok = true,
            peer = "10.0.0.7"
        )
    });
    p.enabled("8kv", 1, "key = value args, formatted lazily", |i, t| {
        quicklog::info!(
            "request {} done {} {} {} {} {} {} {} {}",
            i,
            user_id = i,
            ok = true,
            peer = "10.0.0.7",
            latency_ms = 1.5f64,
            shard = t,
            route = "/orders",
            delta = -7i64,
            retries = 3u32
        )
    });
    for case in ["0kv", "3kv", "8kv"] {
        p.unsupported(case, 2, WHY_NOT_2T);
    }
    p.disabled("disabled", "debug! compiled out (max_level_info)", |i| {
        quicklog::debug!("not wanted {}", i)
    });
    p.finish();
}
