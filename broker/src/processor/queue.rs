//! A processor's queue and thread: the bounded queue between the router
//! and the processor, its overflow policy, and the thread that takes
//! deliveries off it (see the [module docs](super) for what overflow does).

use super::{build, Context, Delivery, Processor, ProcessorConfig, Shared};
use crate::config::units;
use crate::metrics::ProcessorStats as Stats;
use crate::warn::RateLimited;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Deserialize;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A processor's queue settings (`queue:` in its section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Most batches waiting (default 1024).
    #[serde(default = "default_batches")]
    pub batches: usize,
    /// Most bytes waiting (default 64 MiB).
    #[serde(default = "default_bytes", with = "units::size")]
    pub bytes: u64,
    /// When full: `block` or `drop`. Default: the processor's
    /// ([`super::Settings::default_overflow`]: `block` for `store`, `drop`
    /// for the others).
    #[serde(default)]
    pub overflow: Option<Overflow>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            batches: default_batches(),
            bytes: default_bytes(),
            overflow: None,
        }
    }
}

fn default_batches() -> usize {
    1024
}
fn default_bytes() -> u64 {
    64 << 20
}

/// What a processor does when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Wait for room: the broker slows down, ZeroMQ's buffers fill, and
    /// clients drop (and count) when theirs are full. Nothing the broker
    /// took is lost.
    Block,
    /// Drop the batch for this processor and count it; the others carry on.
    Drop,
}

/// A running processor: its queue and thread.
pub struct Handle {
    name: String,
    config: ProcessorConfig,
    tx: Option<Sender<Delivery>>,
    bytes: Arc<AtomicU64>,
    max_bytes: u64,
    overflow: Overflow,
    stats: Arc<Stats>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

static ERRORS: RateLimited = RateLimited::new(Duration::from_secs(10));

impl Handle {
    /// Builds the processor and starts its thread.
    pub fn start<'a>(
        name: &str,
        cfg: &ProcessorConfig,
        shared: impl Into<Shared<'a>>,
        zmq: &zmq::Context,
        stats: Arc<Stats>,
    ) -> io::Result<Handle> {
        let closing = Arc::new(AtomicBool::new(false));
        let ctx = Context {
            name,
            shared: shared.into(),
            zmq,
            closing: closing.clone(),
            stats: stats.clone(),
        };
        let processor = build(cfg, &ctx)?;
        let q = cfg.queue();
        let (tx, rx) = bounded(q.batches);
        let bytes = Arc::new(AtomicU64::new(0));
        let thread = {
            let (name, stats, bytes) = (name.to_owned(), stats.clone(), bytes.clone());
            std::thread::Builder::new()
                .name(format!("proc-{name}"))
                .spawn(move || run(&name, processor, &rx, &stats, &bytes))?
        };
        Ok(Handle {
            name: name.to_owned(),
            config: cfg.clone(),
            tx: Some(tx),
            bytes,
            max_bytes: q.bytes,
            overflow: cfg.overflow(),
            stats,
            closing,
            thread: Some(thread),
        })
    }

    /// The processor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The config it was built from.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Queues a delivery, applying the overflow policy when the queue is
    /// full. Returns whether it was queued.
    pub fn send(&self, d: Delivery) -> bool {
        let Some(tx) = &self.tx else { return false };
        let n = d.len() as u64;
        let size = d.batch.body().len() as u64;
        let over_bytes = |queued: u64| queued > 0 && queued + size > self.max_bytes;
        match self.overflow {
            Overflow::Drop => {
                if over_bytes(self.bytes.load(Ordering::Acquire)) {
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return false;
                }
                match tx.try_send(d) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                        return false;
                    }
                }
            }
            Overflow::Block => {
                while over_bytes(self.bytes.load(Ordering::Acquire)) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                if tx.send(d).is_err() {
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return false;
                }
            }
        }
        self.bytes.fetch_add(size, Ordering::AcqRel);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Closes the queue and waits until the processor has taken everything
    /// queued and flushed.
    pub fn close(mut self) {
        self.close_inner();
    }

    fn close_inner(&mut self) {
        self.closing.store(true, Ordering::Release);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.close_inner();
    }
}

/// The processor thread: take, process, tick, and flush at the end.
fn run(
    name: &str,
    mut p: Box<dyn Processor>,
    rx: &Receiver<Delivery>,
    stats: &Stats,
    bytes: &AtomicU64,
) {
    const TICK: Duration = Duration::from_secs(1);
    let mut last_tick = Instant::now();
    let report = |what: &str, e: &io::Error| {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        ERRORS.warn(|| format!("processor {name:?}: {what}: {e}"));
    };
    loop {
        match rx.recv_timeout(TICK) {
            Ok(d) => {
                bytes.fetch_sub(d.batch.body().len() as u64, Ordering::AcqRel);
                stats.queued.fetch_sub(1, Ordering::Relaxed);
                let n = d.len() as u64;
                match p.process(&d) {
                    Ok(()) => {
                        stats.written.fetch_add(n, Ordering::Relaxed);
                        stats.batches.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.dropped.fetch_add(n, Ordering::Relaxed);
                        report("records dropped", &e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if let Err(e) = p.tick() {
                report("upkeep failed", &e);
            }
        }
    }
    if let Err(e) = p.flush() {
        report("flush failed", &e);
    }
}

impl QueueConfig {
    /// Both bounds above 0.
    pub(super) fn check(&self) -> Result<(), super::Invalid> {
        let key = match (self.batches, self.bytes) {
            (0, _) => "queue.batches",
            (_, 0) => "queue.bytes",
            _ => return Ok(()),
        };
        Err(super::Invalid::new(
            key,
            "queue batches and bytes must be above 0",
        ))
    }
}
