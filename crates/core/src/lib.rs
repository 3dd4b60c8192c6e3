//! distlog-core: what every side of distlog shares — the record model, the
//! wire format and its validating, zero-copy reader.
//!
//! The client (`distlog`) encodes batches with [`wire`]; the broker
//! (`distlogd`), the `distlog` tool and any other consumer read them back
//! through [`view`] after [`wire::access_batch`] has checked them against
//! the cost bounds in [`limits`]. Nothing here logs, filters or renders:
//! an application that only logs compiles this crate and the client.
//!
//! ```
//! use distlog_core::record::{level, Record};
//! use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
//!
//! let batch = Batch {
//!     records: vec![Record {
//!         level: level::WARN,
//!         target: "shop::cart".into(),
//!         message: "cart is empty".into(),
//!         ..Record::default()
//!     }],
//!     ..Batch::default()
//! };
//! let bytes = encode_batch_to_vec(&batch);
//! // Bytes from a socket or a file: validated before anything is read.
//! let view = access_batch(&bytes).expect("a valid batch");
//! let record = view.records().next().unwrap();
//! assert_eq!(record.level(), level::WARN);
//! assert_eq!(record.target(), "shop::cart");
//! ```
//!
//! Layers, each using only those above it: [`record`] (the model), [`limits`]
//! (cost bounds), [`wire`] (frame, values, batch, validate, owned), [`view`]
//! (records joined with their call sites and threads), [`message`] (a
//! record's text, deferred formats rendered).
#![warn(missing_docs)]
// One block (wire/owned.rs: reading an archive validated on construction);
// it states its invariant in a SAFETY comment.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod limits;
pub mod message;
pub mod record;
pub mod view;
pub mod wire;
