//! Processors: where routed records go. Each runs on its own thread behind
//! a bounded queue ([`Handle`]), so a slow one does not stall the others.
//!
//! # Adding a processor
//!
//! One new file and one line:
//!
//! 1. `processor/<kind>.rs`, named for its `type:` in the config file,
//!    holds its settings type (`#[derive(Deserialize)]`, with its defaults
//!    and a `queue: QueueConfig` field), implements [`Settings`] for it
//!    (its overflow default, its check, how to build it), and
//!    the processor itself, which implements [`Processor`]. It imports
//!    the seam (`super::seam`, `super::delivery`), never this file.
//! 2. One line in the `processors!` table below: `Kind(kind::KindConfig),`.
//!    It declares the module, adds the `type: kind` variant to
//!    [`ProcessorConfig`], and routes [`ProcessorConfig::settings`] to it.
//!
//! Nothing else changes: the config file parses it, the broker's check
//! calls its [`Settings::check`] (and points at the key it names), and the
//! dispatcher builds and runs it like any other. Document its section in
//! `broker/distlogd.example.yaml`.
//!
//! # When a processor falls behind
//!
//! Its queue (batches and bytes, both bounded) fills. Then its overflow
//! policy decides:
//!
//! - `drop` (the default for `jsonl`, `console`, `publish`, `forward`,
//!   `postgres`, `jetstream` and `exec`): the batch is not queued for that
//!   processor, its records are counted in
//!   `distlogd_processor_dropped_records_total`, and every other processor
//!   still gets it. (`postgres` and `jetstream` also keep a bounded buffer
//!   of their own behind the queue; see their docs.)
//! - `block` (the default for `store`): the router waits for room. The
//!   broker stops taking messages, ZeroMQ's receive buffers fill, and then
//!   the clients' own bounded buffers: clients drop and count (their drops
//!   reach the broker in every batch header). Nothing the broker received
//!   is lost, but every processor waits for the slowest blocking one.
//!
//! A processor's default is its [`Settings::default_overflow`];
//! `queue: { overflow: block }` or `drop` overrides it.
//!
//! # Layers
//!
//! This file (the kinds' table, [`build`], [`Handle`]) uses the kinds;
//! the kinds use the seam ([`Processor`], [`Settings`], [`Context`]:
//! `seam.rs`) and [`Delivery`] (`delivery.rs`); nothing here imports this
//! file.

mod delivery;
mod seam;

pub use delivery::{Delivery, Selection};
pub use seam::{Context, Invalid, Overflow, Processor, QueueConfig, Settings, Shared};

use crate::metrics::ProcessorStats as Stats;
use crate::warn::RateLimited;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Deserialize;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The processor kinds: one line each, `Variant(module::Settings)`. The
/// module is named as the kind's `type:`, and the variant is that name
/// capitalized (serde matches `type:` against it lowercased; a test checks
/// the two agree).
macro_rules! processors {
    ($($variant:ident($module:ident::$settings:ident),)*) => {
        $(pub mod $module;)*

        /// The kinds, as written after `type:`.
        pub const KINDS: &[&str] = &[$(stringify!($module)),*];

        /// A processor's settings: the section's `type:` picks the
        /// variant, named as the module that implements that kind.
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        pub enum ProcessorConfig {
            $(
                #[doc = concat!("`type: ", stringify!($module), "`: see [`", stringify!($module), "`].")]
                $variant($module::$settings),
            )*
        }

        impl ProcessorConfig {
            /// The kind's name, as written after `type:`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(ProcessorConfig::$variant(_) => stringify!($module),)*
                }
            }

            /// The kind's settings.
            pub fn settings(&self) -> &dyn Settings {
                match self {
                    $(ProcessorConfig::$variant(c) => c,)*
                }
            }

            /// The queue settings (every kind's `queue` field).
            pub fn queue(&self) -> QueueConfig {
                match self {
                    $(ProcessorConfig::$variant(c) => c.queue,)*
                }
            }
        }
    };
}

processors! {
    Store(store::StoreConfig),
    Jsonl(jsonl::JsonlConfig),
    Console(console::ConsoleConfig),
    Publish(publish::PublishConfig),
    Forward(forward::ForwardConfig),
    Postgres(postgres::PostgresConfig),
    Jetstream(jetstream::JetstreamConfig),
    Exec(exec::ExecConfig),
}

impl ProcessorConfig {
    /// The overflow policy, with the kind's default applied.
    pub fn overflow(&self) -> Overflow {
        (self.queue().overflow).unwrap_or_else(|| self.settings().default_overflow())
    }

    /// The queue's bounds, then the kind's own check.
    pub fn check(&self) -> Result<(), Invalid> {
        self.queue().check()?;
        self.settings().check()
    }
}

/// Builds a processor from its config.
pub fn build(cfg: &ProcessorConfig, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
    cfg.settings().build(ctx).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("processor {:?} ({}): {e}", ctx.name, cfg.kind()),
        )
    })
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

/// The processor thread: take, process, write what is due, tick, and
/// flush at the end.
fn run(
    name: &str,
    mut p: Box<dyn Processor>,
    rx: &Receiver<Delivery>,
    stats: &Stats,
    bytes: &AtomicU64,
) {
    const TICK: Duration = Duration::from_secs(1);
    let mut next_tick = Instant::now() + TICK;
    let counts_written = p.counts_written();
    let report = |what: &str, e: &io::Error| {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        ERRORS.warn(|| format!("processor {name:?}: {what}: {e}"));
    };
    loop {
        let wake = p.deadline().map_or(next_tick, |d| d.min(next_tick));
        match rx.recv_deadline(wake) {
            Ok(d) => {
                bytes.fetch_sub(d.batch.body().len() as u64, Ordering::AcqRel);
                stats.queued.fetch_sub(1, Ordering::Relaxed);
                let n = d.len() as u64;
                match p.process(&d) {
                    Ok(()) => {
                        if !counts_written {
                            stats.written.fetch_add(n, Ordering::Relaxed);
                        }
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
        let now = Instant::now();
        if p.deadline().is_some_and(|d| now >= d) {
            if let Err(e) = p.on_deadline() {
                report("write failed", &e);
            }
        }
        if now >= next_tick {
            next_tick = now + TICK;
            if let Err(e) = p.tick() {
                report("upkeep failed", &e);
            }
        }
    }
    if let Err(e) = p.flush() {
        report("flush failed", &e);
    }
}
