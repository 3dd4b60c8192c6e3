//! Processors: where routed records go. Each runs on its own thread behind
//! a bounded queue ([`queue`]), so a slow one does not stall the others.
//!
//! # Adding a processor
//!
//! One new file and one line:
//!
//! 1. `processor/<kind>.rs`, named for its `type:` in the config file,
//!    holds its settings type (`#[derive(Deserialize)]`, with its defaults
//!    and a `queue: QueueConfig` field), implements [`Settings`] for it
//!    (the queue, its overflow default, its check, how to build it), and
//!    the processor itself, which implements [`Processor`].
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
//!   `postgres` and `jetstream`): the batch is not queued for that
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

mod delivery;
pub mod queue;

pub use delivery::{Delivery, Selection};
pub use queue::{Handle, Overflow, QueueConfig};

use crate::config::curve::CurveConfig;
use crate::metrics::ProcessorStats;
use serde::Deserialize;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The processor kinds: one line each, `Variant(module::Settings)`, the
/// module named as the kind's `type:`.
macro_rules! processors {
    ($($variant:ident($module:ident::$settings:ident),)*) => {
        $(pub mod $module;)*

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
}

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
}

/// A processor kind's settings: what the config file says about one
/// processor, and how to build it.
pub trait Settings: std::fmt::Debug {
    /// Its queue settings.
    fn queue(&self) -> &QueueConfig;

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

impl ProcessorConfig {
    /// The queue settings.
    pub fn queue(&self) -> QueueConfig {
        *self.settings().queue()
    }

    /// The overflow policy, with the kind's default applied.
    pub fn overflow(&self) -> Overflow {
        let s = self.settings();
        s.queue().overflow.unwrap_or_else(|| s.default_overflow())
    }

    /// The queue's bounds, then the kind's own check.
    pub fn check(&self) -> Result<(), Invalid> {
        self.settings().queue().check()?;
        self.settings().check()
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

/// Builds a processor from its config.
pub fn build(cfg: &ProcessorConfig, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
    cfg.settings().build(ctx).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("processor {:?} ({}): {e}", ctx.name, cfg.kind()),
        )
    })
}
