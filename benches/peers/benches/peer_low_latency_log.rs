//! `low_latency_log`, set up as its README shows:
//! `Logger::new(RollingCondition::new().daily(), "/dev/shm", prefix).init()`
//! with its defaults (a bounded channel of 131,072 closures; a full channel
//! blocks the caller; the background thread formats and writes through a
//! 1 MiB `BufWriter`). It writes only to rolling files, so the "sink" is a
//! file on tmpfs (`/dev/shm`, as in its README), read back and counted by a
//! [`LineCounter`] after each case; the README's `.cpu(1)` pinning is left
//! out (this machine has two cores, which the bench threads use).
//!
//! Fields: no structured fields; they are format arguments, captured by a
//! boxed closure and formatted on the background thread. Levels below INFO
//! are compiled out (feature `level-info`).
//!
//! `cargo bench -p distlog-peers --bench peer_low_latency_log`

use distlog_peers::{CountingAlloc, Counts, LineCounter, Peer};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const NOTE: &str = "no structured fields: format arguments";

/// Reads what the logger appended to its file since last time.
struct FileCount {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    counter: LineCounter,
    counts: Arc<Counts>,
}

impl FileCount {
    fn count(&mut self) -> u64 {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        if let Some(f) = &mut self.file {
            let mut buf = vec![0u8; 1 << 20];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = self.counter.write_all(&buf[..n]);
            }
        }
        self.counts.lines.load(Ordering::Relaxed)
    }
}

fn main() {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("distlog-peers-lll-{}", std::process::id()));
    let _guard = low_latency_log::Logger::new(
        low_latency_log::RollingCondition::new().daily(),
        dir.to_string_lossy().into_owned(),
        "peers.log".to_owned(),
    )
    .init()
    .expect("low_latency_log init");
    let (counter, counts) = LineCounter::new();
    let fc = RefCell::new(FileCount {
        path: dir.join("peers.log"),
        file: None,
        counter,
        counts,
    });

    let mut p = Peer::new("low_latency_log")
        .delivered(move || fc.borrow_mut().count())
        .flush(low_latency_log::Logger::flush);
    for t in [1, 2] {
        p.enabled("0kv", t, "", |i, _| {
            low_latency_log::info!("request {} done", i)
        });
        p.enabled("3kv", t, NOTE, |i, _| {
            low_latency_log::info!(
                "request {} done user_id={} ok={} peer={}",
                i,
                i,
                true,
                "10.0.0.7"
            )
        });
        p.enabled("8kv", t, NOTE, |i, t| {
            low_latency_log::info!(
                "request {} done user_id={} ok={} peer={} latency_ms={} shard={} route={} delta={} retries={}",
                i, i, true, "10.0.0.7", 1.5f64, t, "/orders", -7i64, 3u32
            )
        });
    }
    p.disabled(
        "disabled",
        "debug! compiled out (feature level-info)",
        |i| low_latency_log::debug!("not wanted {}", i),
    );
    p.finish();
    let _ = std::fs::remove_dir_all(&dir);
}
