//! `distlogd`, the distlog broker, as a library; the binary
//! (`src/main.rs`) wires it to the command line, and the `distlog` tool
//! (`src/bin/distlog`) reads what it stores.
//!
//! # Modules
//!
//! - [`config`]: the YAML config, checked, with line and column errors
//!   placed by the YAML parser ([`config::spans`]); sizes and durations
//!   ([`config::units`]), the broker's CURVE keys ([`config::curve`]),
//!   JetStream inputs' settings ([`config::jetstream_input`]).
//! - [`ingest`]: PULL and ROUTER sockets; workers validate, decode
//!   (distlog batches, the Python clients' JSON and pickle) and route.
//! - [`python`]: the original Python clients' records (JSON and pickle)
//!   decoded into distlog records, bounded like batches.
//! - [`jetstream_input`]: NATS JetStream durable consumers read like
//!   another ingest socket.
//! - [`rules`]: compiled filters deciding which processors get which
//!   records.
//! - [`dispatch`]: in-order delivery, sequence-gap tracking, reloads, the
//!   broker's own metrics as records; [`acks`]: acknowledged delivery.
//! - [`processor`]: store, jsonl, console, publish, forward, postgres,
//!   jetstream, each on its own thread behind a bounded queue; each kind's
//!   file holds its settings, their defaults and check.
//! - [`store`]: the segment store format, writer, reader, retention.
//! - [`pg`]: the PostgreSQL schema the `postgres` processor writes and
//!   `distlog query --database` reads.
//! - [`metrics`]: counters (the processors' too), and [`metrics_http`],
//!   the Prometheus text endpoint.
//! - [`monitor`]: the ingest sockets' connections (capped by
//!   [`connections`]) and failed handshakes ([`handshakes`]).
//! - [`zap`]: the ZAP handler that admits CURVE clients by key.
//!
//! # Layers
//!
//! Imports point one way, down this list: a file uses only files further
//! down (and its own child modules). There is no import circle.
//!
//! 1. [`Broker`] (`broker.rs`): starts and stops everything.
//! 2. [`dispatch`], then [`jetstream_input`] (which hands it batches).
//! 3. [`ingest`], [`monitor`], [`metrics_http`].
//! 4. [`zap`], [`connections`], [`handshakes`].
//! 5. [`rules`].
//! 6. `config/mod.rs` and [`config::jetstream_input`]: the whole file, its
//!    parsing and checks; they name each processor kind's settings
//!    through [`processor::ProcessorConfig`].
//! 7. [`processor`]: the kinds, their settings, queues and threads.
//! 8. Leaves, which import nothing of the broker but each other's
//!    leaves: [`metrics`], [`acks`], [`store`], [`pg`], [`python`], `warn.rs`, and the
//!    parts of the config every section shares ([`config::units`],
//!    [`config::curve`], [`config::spans`]).
//!
//! So a processor never sees the whole [`config::Config`]: it gets its own
//! settings and the few broker-wide ones it needs ([`processor::Shared`]).
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
// Unsafe only for socket system calls (src/connections.rs) and the
// allocator's settings (src/allocator.rs), each block with its invariant in
// a SAFETY comment.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod acks;
pub mod allocator;
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
pub mod python;
pub mod rules;
pub mod store;
mod warn;
pub mod zap;

pub use broker::Broker;
