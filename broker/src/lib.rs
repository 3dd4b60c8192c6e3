//! `distlogd`, the distlog broker, as a library: ingest and the embedded
//! store. The binary (`src/main.rs`) wires them to the command line.
//!
//! This is the first slice of the broker: it accepts distlog's batch frames
//! on PULL sockets, validates them, tracks sequence gaps and client drops
//! per sender, and stores every good batch unchanged in the segment store.
//! The Python clients' JSON frames (`xLJ`) are converted to one-record
//! batches and stored the same way. Rules, filters, the other processors,
//! the Python pickle frames (counted as `unsupported_encoding` for now),
//! metrics and config files come next.
#![warn(missing_docs)]

pub mod ingest;
pub mod store;
