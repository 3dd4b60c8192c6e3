//! `store`: the embedded segment store (see [`crate::store`]).
//!
//! ```yaml
//! store: { type: store, segment_size: 64MiB, retain_age: 7d }
//! ```
//!
//! With `direct_io` (the default) the store gathers batches into a 1 MiB
//! buffer and writes it with `O_DIRECT`, past the page cache (module
//! `store::direct`); a batch waits there at most `direct_io_wait` (2 ms).
//! A batch counts as written (`distlogd_processor_written_records_total`)
//! and is acknowledged only once it is in the file, never before. The
//! trade-off: a crash of the broker loses what waits in the buffer, at
//! most `direct_io_wait` of records, none of them acknowledged (buffered,
//! a crash of the broker loses nothing the store took; a crash of the
//! machine loses what was not synced either way). `direct_io: false`
//! writes each batch through the page cache as it comes. Where the file
//! system refuses `O_DIRECT`, the store writes through the page cache.

use super::delivery::Delivery;
use crate::acks::AckToken;
use crate::metrics::ProcessorStats;
use super::seam::{Context, Invalid, Overflow, Processor, QueueConfig, Settings};
use crate::config::units;
use crate::store::{apply_retention, Options, Retention, SyncPolicy, Writer};
use serde::Deserialize;
use std::io;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `store` processor's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the segments; default: the top-level `data_dir`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Rotate when a segment reaches this size (default 64 MiB, at least
    /// 4 KiB).
    #[serde(default = "default_segment_size", with = "units::size")]
    pub segment_size: u64,
    /// Rotate when a segment is this old (default 1h).
    #[serde(default = "default_segment_age", with = "units::duration")]
    pub segment_age: Duration,
    /// Delete segments older than this (default: keep).
    #[serde(default, with = "units::duration::option")]
    pub retain_age: Option<Duration>,
    /// Delete the oldest segments while the store is larger (default: keep).
    #[serde(default, with = "units::size::option")]
    pub retain_size: Option<u64>,
    /// When to fsync (default `interval`).
    #[serde(default = "default_fsync")]
    pub fsync: Fsync,
    /// The longest a write waits for `fsync` under `interval` (default 1s).
    #[serde(default = "default_fsync_interval", with = "units::duration")]
    pub fsync_interval: Duration,
    /// Write with `O_DIRECT` from a gather buffer (default true; falls
    /// back to the page cache where the file system refuses it).
    #[serde(default = "default_direct_io")]
    pub direct_io: bool,
    /// The longest a batch waits in the gather buffer before it is written
    /// (default 2ms, at most 1s).
    #[serde(default = "default_direct_io_wait", with = "units::duration")]
    pub direct_io_wait: Duration,
    /// The queue (overflow default `block`: nothing the broker took is
    /// lost).
    #[serde(default)]
    pub queue: QueueConfig,
}

/// When the store forces its data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every batch: a machine crash loses nothing stored. Slow.
    Always,
    /// At most `fsync_interval` after a write, on rotation and at shutdown
    /// (the default).
    Interval,
    /// Only on rotation and at shutdown; the OS writes back the rest.
    Never,
}

fn default_segment_size() -> u64 {
    64 << 20
}
fn default_segment_age() -> Duration {
    Duration::from_secs(3600)
}
fn default_fsync() -> Fsync {
    Fsync::Interval
}
fn default_fsync_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_direct_io() -> bool {
    true
}
fn default_direct_io_wait() -> Duration {
    crate::store::DIRECT_WAIT
}

impl StoreConfig {
    /// The directory the segments go to: `dir`, or else `data_dir`.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.to_owned())
    }
}

impl Settings for StoreConfig {
    fn default_overflow(&self) -> Overflow {
        Overflow::Block
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.segment_size < 4096 {
            return Err(Invalid::new("segment_size", "segment_size at least 4KiB"));
        }
        if self.direct_io_wait > Duration::from_secs(1) {
            return Err(Invalid::new(
                "direct_io_wait",
                "direct_io_wait at most 1s (records wait this long before readers see them)",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Store::open(self, ctx)?))
    }
}

/// Appends every delivered batch, exactly as it arrived when whole.
pub struct Store {
    writer: Writer,
    retention: Retention,
    stats: Arc<ProcessorStats>,
    /// Deliveries appended but not yet wholly in the file, oldest first.
    pending: VecDeque<Pending>,
}

/// A delivery waiting for its entries to be written.
struct Pending {
    /// The writer's stream position after its last entry.
    end: u64,
    /// Its records.
    records: u64,
    /// Its acknowledgement, sent when this is dropped.
    ack: Option<Arc<AckToken>>,
}

impl Store {
    /// Opens the store's directory (recovering a torn tail) and starts a
    /// new segment.
    pub fn open(c: &StoreConfig, ctx: &Context<'_>) -> io::Result<Store> {
        let dir = c.dir_in(ctx.shared.data_dir);
        let sync = match c.fsync {
            Fsync::Always => SyncPolicy::Always,
            Fsync::Interval => SyncPolicy::Interval(c.fsync_interval),
            Fsync::Never => SyncPolicy::Never,
        };
        let writer = Writer::open_with(
            &dir,
            Options {
                max_segment: c.segment_size,
                max_age: c.segment_age,
                sync,
                direct: c.direct_io.then_some(c.direct_io_wait),
            },
        )?;
        Ok(Store {
            writer,
            retention: Retention {
                max_age: c.retain_age,
                max_bytes: c.retain_size,
            },
            stats: ctx.stats.clone(),
            pending: VecDeque::new(),
        })
    }

    /// Whether batches go to the file with `O_DIRECT`.
    pub fn is_direct(&self) -> bool {
        self.writer.is_direct()
    }

    /// Counts as written, and acknowledges, the deliveries now wholly in
    /// the file; counts as dropped those a failed write lost.
    fn settle(&mut self) {
        let on_file = self.writer.on_file();
        while self.pending.front().is_some_and(|p| p.end <= on_file) {
            if let Some(p) = self.pending.pop_front() {
                self.stats.written.fetch_add(p.records, Ordering::Relaxed);
            }
        }
        let kept = self.writer.appended();
        while self.pending.back().is_some_and(|p| p.end > kept) {
            if let Some(p) = self.pending.pop_back() {
                self.stats.dropped.fetch_add(p.records, Ordering::Relaxed);
                // Taken, then lost to a failed write: a redelivery may
                // store it (a JetStream message is not acknowledged).
                if let Some(a) = &p.ack {
                    a.refuse();
                }
            }
        }
    }
}

impl Processor for Store {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        let mut end = None;
        let mut wrote = Ok(());
        for body in d.bodies() {
            match self.writer.append(d.topic.bytes(), &body) {
                Ok(e) => end = Some(e),
                Err(e) => {
                    wrote = Err(e);
                    break;
                }
            }
        }
        // The delivery's records count as dropped on an error (by the
        // caller); the others waiting are settled either way.
        if let (Ok(()), Some(end)) = (&wrote, end) {
            self.pending.push_back(Pending {
                end,
                records: d.len() as u64,
                ack: d.ack.clone(),
            });
        }
        self.settle();
        wrote
    }

    fn tick(&mut self) -> io::Result<()> {
        let r = self.writer.tick();
        self.settle();
        r?;
        apply_retention(self.writer.dir(), self.retention, self.writer.current())?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.writer.sync();
        self.settle();
        r
    }

    fn deadline(&self) -> Option<Instant> {
        self.writer.deadline()
    }

    fn on_deadline(&mut self) -> io::Result<()> {
        let r = self.writer.tick();
        self.settle();
        r
    }

    fn counts_written(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_dir;
    use crate::processor::{Handle, ProcessorConfig, Selection, Shared};
    use crate::store::Reader;
    use distlog_core::record::Record;
    use distlog_core::wire::{encode_batch_to_vec, Batch, OwnedBatch, Topic};
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;


    fn config(dir: &Path, direct_io: bool, wait: Duration) -> StoreConfig {
        StoreConfig {
            dir: Some(dir.to_owned()),
            segment_size: default_segment_size(),
            segment_age: default_segment_age(),
            retain_age: None,
            retain_size: None,
            fsync: Fsync::Interval,
            fsync_interval: default_fsync_interval(),
            direct_io,
            direct_io_wait: wait,
            queue: Default::default(),
        }
    }

    /// A delivery of one record.
    fn delivery(seq: u64, ack: Option<Arc<AckToken>>) -> Delivery {
        delivery_of(seq, format!("m{seq}"), ack)
    }

    /// A delivery of one record with this message.
    fn delivery_of(seq: u64, message: String, ack: Option<Arc<AckToken>>) -> Delivery {
        let b = Batch {
            first_seq: seq,
            records: vec![Record {
                seq,
                message,
                ..Record::default()
            }],
            ..Batch::default()
        };
        let body = encode_batch_to_vec(&b);
        Delivery {
            topic: Topic::batch(b'T', b'L'),
            batch: Arc::new(OwnedBatch::from_body(&body).unwrap()),
            selection: Selection::All,
            ack,
            peer: None,
        }
    }

    /// Batches a reader of `dir` sees.
    fn stored(dir: &Path) -> usize {
        Reader::open_dir(dir)
            .unwrap()
            .iter()
            .map(|(_, r)| r.batches().count())
            .sum()
    }

    /// The context a store processor opens with, outside a processor thread.
    fn context<'a>(
        dir: &'a Path,
        zmq: &'a zmq::Context,
        stats: &Arc<ProcessorStats>,
    ) -> Context<'a> {
        Context {
            name: "store",
            shared: Shared {
                data_dir: dir,
                curve: None,
            },
            zmq,
            closing: Arc::new(AtomicBool::new(false)),
            stats: stats.clone(),
        }
    }

    /// A batch is acknowledged, and counted written, only once readers
    /// can read it from the file: gathered, when its bound has passed and
    /// the store wrote it; buffered, as it is taken.
    #[test]
    fn acknowledged_and_counted_written_only_once_in_the_file() {
        for direct_io in [true, false] {
            let dir = test_dir(&format!("store-acks-{direct_io}"));
            let stats = Arc::new(ProcessorStats::default());
            let zmq = zmq::Context::new();
            let ctx = context(&dir, &zmq, &stats);
            let wait = Duration::from_millis(20);
            let mut s = Store::open(&config(&dir, direct_io, wait), &ctx).unwrap();
            assert_eq!(s.is_direct(), direct_io);
            // The hook records what a reader sees when the ack goes out.
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (log, d) = (seen.clone(), dir.clone());
            let ack = AckToken::call(Box::new(move |ok| log.lock().unwrap().push((ok, stored(&d)))));
            s.process(&delivery(1, Some(Arc::new(ack)))).unwrap();
            let written = || stats.written.load(Ordering::Relaxed);
            if direct_io {
                assert!(seen.lock().unwrap().is_empty(), "acknowledged before written");
                assert_eq!((written(), stored(&dir)), (0, 0));
                let deadline = s.deadline().expect("the batch waits for its bound");
                assert!(deadline <= Instant::now() + wait);
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    std::thread::sleep(left);
                }
                s.on_deadline().unwrap();
                assert_eq!(s.deadline(), None);
            }
            assert_eq!(*seen.lock().unwrap(), [(true, 1)]);
            assert_eq!((written(), stored(&dir)), (1, 1));
            s.flush().unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// Batches taken and then lost to a failed direct write are counted
    /// as dropped, never as written, and their acknowledgement hooks hear
    /// a refusal (so a JetStream message is redelivered).
    #[test]
    fn batches_lost_to_a_failed_write_are_dropped_and_refused() {
        use crate::store::direct::{Fault, FAULT};
        let dir = test_dir("store-fail");
        let stats = Arc::new(ProcessorStats::default());
        let zmq = zmq::Context::new();
        let ctx = context(&dir, &zmq, &stats);
        let mut s = Store::open(&config(&dir, true, Duration::from_secs(1)), &ctx).unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        for seq in 0..3 {
            let h = heard.clone();
            let ack = AckToken::call(Box::new(move |ok| h.lock().unwrap().push(ok)));
            let d = delivery_of(seq, "x".repeat(2000), Some(Arc::new(ack)));
            s.process(&d).unwrap();
        }
        FAULT.with(|f| f.set(Some(Fault::FailWrite)));
        assert!(s.flush().is_err());
        FAULT.with(|f| f.set(None));
        assert_eq!(*heard.lock().unwrap(), [false, false, false]);
        assert_eq!(stats.written.load(Ordering::Relaxed), 0);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(stored(&dir), 0);
        // The store goes on.
        s.process(&delivery(9, None)).unwrap();
        s.flush().unwrap();
        assert_eq!(stats.written.load(Ordering::Relaxed), 1);
        assert_eq!(stored(&dir), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Through the processor's thread: a batch with nothing after it is
    /// readable (and counted) within the gather bound, written by the
    /// deadline, not by the once-a-second tick.
    #[test]
    fn readers_see_a_lone_batch_within_the_bound() {
        let dir = test_dir("store-bound");
        let stats = Arc::new(ProcessorStats::default());
        let zmq = zmq::Context::new();
        let cfg = ProcessorConfig::Store(config(&dir, true, Duration::from_millis(2)));
        let shared = Shared {
            data_dir: &dir,
            curve: None,
        };
        let h = Handle::start("store", &cfg, shared, &zmq, stats.clone()).unwrap();
        let wait_for = |what: &str, done: &dyn Fn() -> bool| {
            let t0 = Instant::now();
            while !done() {
                assert!(t0.elapsed() < Duration::from_secs(30), "{what}");
                std::thread::sleep(Duration::from_micros(200));
            }
            t0.elapsed()
        };
        for seq in 1..=3 {
            assert!(h.send(delivery(seq, None)));
            let took = wait_for("the batch readable", &|| stored(&dir) == seq as usize);
            assert!(
                took < Duration::from_millis(900),
                "readable after {took:?}: the 1 s tick wrote it, not the 2 ms bound"
            );
            wait_for("the batch counted", &|| {
                stats.written.load(Ordering::Relaxed) == seq
            });
        }
        h.close();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
