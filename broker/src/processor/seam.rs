//! The seam between the broker and its processors: what a processor kind
//! implements ([`Processor`] for the work, [`Settings`] for its section of
//! the config file) and what it is given ([`Context`]).

use super::delivery::Delivery;
use crate::config::curve::CurveConfig;
use crate::config::units;
use crate::metrics::ProcessorStats;
use serde::Deserialize;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A processor: takes deliveries on its own thread.
pub trait Processor: Send {
    /// Handles one delivery. An error is counted (its records as dropped
    /// for this processor) and reported; the processor keeps running.
    fn process(&mut self, delivery: &Delivery) -> io::Result<()>;

    /// Periodic upkeep, about once a second: time-based rotation, fsync,
    /// retention.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Makes everything processed so far durable or delivered; called
    /// before the processor is dropped (shutdown, reload).
    fn flush(&mut self) -> io::Result<()>;

    /// When [`Processor::on_deadline`] must run next, if the processor holds
    /// records it must write by then (the store's gathered direct writes).
    /// Asked after every delivery and wake-up; keep it cheap.
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }

    /// Called once [`Processor::deadline`] has passed: writes what waited.
    fn on_deadline(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the processor counts its written records itself (in
    /// [`Context::stats`]), when they are written, which may be after
    /// `process` returned (and their acknowledgement tokens with them).
    /// When false, a delivery's records count as written when `process`
    /// returns `Ok`.
    fn counts_written(&self) -> bool {
        false
    }
}

/// A processor kind's settings: what the config file says about one
/// processor, and how to build it. The type also has a
/// `queue: QueueConfig` field (`#[serde(default)]`), which
/// [`ProcessorConfig::queue`](super::ProcessorConfig::queue) reads.
pub trait Settings: std::fmt::Debug {
    /// What it does when its queue is full, unless `queue.overflow` says.
    fn default_overflow(&self) -> Overflow {
        Overflow::Drop
    }

    /// The endpoint it binds, if any: the broker refuses a config that
    /// binds one endpoint twice.
    fn endpoint(&self) -> Option<&str> {
        None
    }

    /// Checks beyond what the types say, when the config is loaded (and
    /// reloaded): the first setting that is wrong.
    fn check(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// Builds the processor.
    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>>;
}

/// A setting a processor's check refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key, as a dotted path inside the processor's section
    /// (`url`, `queue.bytes`): the config error points at it.
    pub key: &'static str,
    /// What is wrong and what to write instead, without the processor's
    /// name (the config error adds it).
    pub message: String,
}

impl Invalid {
    /// A refused setting.
    pub fn new(key: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            key,
            message: message.into(),
        }
    }
}

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
    /// ([`Settings::default_overflow`]: `block` for `store`, `drop`
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

impl QueueConfig {
    /// Both bounds above 0.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        let key = match (self.batches, self.bytes) {
            (0, _) => "queue.batches",
            (_, 0) => "queue.bytes",
            _ => return Ok(()),
        };
        Err(Invalid::new(key, "queue batches and bytes must be above 0"))
    }
}

/// The broker-wide settings a processor may read beside its own.
#[derive(Debug, Clone, Copy)]
pub struct Shared<'a> {
    /// The top-level `data_dir` (the default directory of `store`).
    pub data_dir: &'a Path,
    /// The top-level `curve:` (a `publish` socket is a CURVE server under
    /// it).
    pub curve: Option<&'a CurveConfig>,
}

/// What a processor is given when it is built.
pub struct Context<'a> {
    /// The processor's name in the config.
    pub name: &'a str,
    /// The broker-wide settings.
    pub shared: Shared<'a>,
    /// The broker's ZeroMQ context.
    pub zmq: &'a zmq::Context,
    /// Set when the processor is being closed: a processor waiting on
    /// something outside (a peer broker) gives up soon after.
    pub closing: Arc<AtomicBool>,
    /// The processor's counters: one that buffers records past `process`
    /// (postgres, jetstream) counts those it later drops here.
    pub stats: Arc<ProcessorStats>,
}
