//! `distlogd`, the distlog broker, as a library; the binary
//! (`src/main.rs`) wires it to the command line, and the `distlog` tool
//! (`src/bin/distlog`) reads what it stores.
//!
//! - [`config`]: the YAML config, checked with line and column errors.
//! - [`ingest`]: PULL sockets; workers validate, decode (distlog batches,
//!   the Python clients' JSON and pickle) and route.
//! - [`rules`]: compiled filters deciding which processors get which
//!   records.
//! - [`dispatch`]: in-order delivery, sequence-gap tracking, reloads, the
//!   broker's own metrics as records.
//! - [`processor`]: store, jsonl, console, publish, forward, each on its own
//!   thread behind a bounded queue.
//! - [`store`]: the segment store format, writer, reader, retention.
//! - [`metrics`]: counters, Prometheus text endpoint.
//! - [`monitor`]: the ingest sockets' connections (capped by
//!   [`connections`]) and failed handshakes ([`handshakes`]).
//!
//! ```no_run
//! let checked = distlogd::config::Config::parse("listen: [tcp://127.0.0.1:5010]")?;
//! let broker = distlogd::Broker::start(&checked)?;
//! // ... on SIGTERM:
//! let counters = broker.stop();
//! println!("{} records", counters.records);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// Unsafe only for socket system calls (src/connections.rs), each block with
// its invariant in a SAFETY comment.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod acks;
mod broker;
pub mod config;
pub mod connections;
pub mod dispatch;
pub mod handshakes;
pub mod ingest;
pub mod jetstream_input;
pub mod metrics;
pub mod metrics_http;
pub mod monitor;
pub mod pg;
pub mod processor;
pub mod rules;
pub mod store;
mod warn;
pub mod zap;

pub use broker::Broker;
