//! distlog: logging for distributed applications.
//!
//! Applications log through the `log` facade or distlog's own macros; a
//! background thread ships the records over ZeroMQ to `distlogd`, the
//! broker, which filters, stores and routes them.
//!
//! ```
//! use std::time::Duration;
//!
//! // Once, in main. Without a broker running, records wait (bounded) and
//! // are dropped and counted when the buffers fill; nothing blocks. What
//! // never reached a broker by shutdown is counted as dropped, by reason,
//! // and reported on stderr.
//! let guard = distlog::builder()
//!     .endpoint("tcp://127.0.0.1:5010")
//!     .system('T')
//!     .level("info,my_app::db=debug")
//!     .shutdown_timeout(Duration::from_millis(100))
//!     .install()
//!     .expect("distlog installs");
//!
//! // Hot loops: the native macros store typed arguments, no formatting.
//! for i in 0..3u32 {
//!     distlog::info!(attempt = i, ok = true; "processed batch {}", i);
//! }
//! // Everything that already logs through `log` is captured too.
//! log::warn!(target: "my_app::db", "slow query");
//!
//! distlog::flush(); // before std::process::exit; the guard covers the rest
//! drop(guard);
//! ```
//!
//! # How it is built
//!
//! The hot path reads top to bottom: a macro's static
//! [`Callsite`] (level check: one load, one branch) → the thread's ring
//! (`pipeline::local`, `ring`: reserve, write typed values, one release
//! store) → the sender thread (`pipeline::sender`: entries become the
//! records of a [`distlog_core::wire::WireBatch`], which writes each call site and
//! thread once, rkyv-encoded, sent with `DONTWAIT`). In steady state a log call allocates nothing (tested)
//! and takes no lock; its one possible system call wakes the sleeping
//! sender when the thread's ring passes half full (and `block_when_full`
//! sleeps while it waits for room).
//!
//! Records are never lost silently: when a ring is full the record is
//! dropped (or the call waits, with [`Builder::block_when_full`]), and the
//! count travels in every batch header and as a warning record.
//!
//! Before `std::process::exit`, call [`flush`]: an exit hook also flushes,
//! but a program that exits from another thread while logging may lose
//! the last records.
#![warn(missing_docs)]
// The package denies unsafe code (Cargo.toml); the library opts in for the
// ring, the task frame pool, zero-copy sends and the FFI. Every block and
// impl states its invariant in a SAFETY comment, and the ring's and the
// frame pool's protocols are model-checked (tests/loom_*.rs).
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod builder;
pub mod callsite;
mod clock;
mod context;
pub mod curve;
pub mod directives;
pub mod entry;
mod facade;
pub mod macros;
pub mod metric;
mod panic_hook;
mod pipeline;
mod process;
mod ring;
mod ring_pool;
pub mod task;
pub mod traceparent;
#[cfg(feature = "tracing")]
pub mod tracing_layer;

/// The record model (levels, kinds, values), from `distlog-core`: what the
/// macros and [`Encode`] write.
pub use distlog_core::record;

pub use builder::{Builder, Drops, Guard, InitError, Stats, DEFAULT_ENDPOINT};
pub use callsite::Callsite;
pub use entry::{debug, display, Encode, EncodeList};
pub use pipeline::link::{Connection, HandshakeFailure};
pub use process::this_process;
pub use task::{current as current_task, import_task, task, to, Entered, Task, TaskGuard};

use std::time::Duration;

/// Starts configuring the pipeline; finish with [`Builder::install`].
pub fn builder() -> Builder {
    Builder::default()
}

/// Hands everything logged so far (by any thread) to a connected broker,
/// waiting up to 5 seconds. Returns false on timeout (no broker connected,
/// or it is slower than the application) or when no pipeline is installed;
/// what is not handed over keeps waiting, and is counted as dropped if it
/// is still waiting at [`shutdown`].
pub fn flush() -> bool {
    flush_timeout(Duration::from_secs(5))
}

/// [`flush`] with a timeout.
pub fn flush_timeout(timeout: Duration) -> bool {
    pipeline::PIPELINE.get().is_some_and(|p| p.flush(timeout))
}

/// Delivers what is queued (within the shutdown timeout, one wait in all)
/// and stops the sender; records logged afterwards are dropped. Dropping
/// the [`Guard`] does this. Returns true when everything queued was handed
/// to a broker; otherwise the rest is counted in [`Stats::drops`] and one
/// line on stderr says how many records were lost and why.
pub fn shutdown() -> bool {
    pipeline::PIPELINE.get().is_some_and(|p| p.shutdown())
}

/// The pipeline's counters.
pub fn stats() -> Stats {
    builder::stats()
}

#[doc(hidden)]
pub mod __private {
    pub use crate::pipeline::local::emit_native;
}
