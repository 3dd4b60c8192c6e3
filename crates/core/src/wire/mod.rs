//! The wire protocol: topics, distlog's batch format, its encoder and its
//! validating decoder. One format; `docs/PROTOCOL.md` specifies it
//! precisely enough for another implementation, this is the summary.
//!
//! Every ZeroMQ message (PUSH to PULL, and PUB to SUB from the broker) has two
//! frames: `[topic, body]`. The topic is three ASCII bytes:
//!
//! 1. system: `T` test, `S` staging, `P` production;
//! 2. kind: `L` log record, `P` performance record;
//! 3. encoding: `J` JSON and `P` Python pickle (one record per message, as the
//!    original Python clients send), or `R`: a distlog batch (this module).
//!
//! A batch body is an 8-byte prefix followed by an rkyv 0.8 archive
//! (little-endian, aligned, 32-bit relative pointers) of a [`WireBatch`]:
//!
//! ```text
//! offset 0  4 bytes  magic and version: b"DLB" followed by the version (2)
//! offset 4  4 bytes  u32 little-endian: length of the archive that follows
//! offset 8  ...      rkyv archive of WireBatch, root object at the end
//! ```
//!
//! A batch writes each call site ([`Site`]) and thread ([`Thread`]) once;
//! its records index them and carry their format arguments and fields as
//! one tagged byte string ([`tag`], [`put_value`]). Records have
//! contiguous sequence numbers from `first_seq`, so a receiver that tracks
//! `(sender.instance, next seq)` sees every gap; `dropped` is the sender's
//! running count of records it dropped before they reached the wire.
//!
//! A receiver checks the prefix, then validates the archive before reading
//! anything ([`access_batch`], [`OwnedBatch`]): bytes that came from a
//! socket or a file are never trusted.
//!
//! The layers, each using only those above it:
//!
//! - `frame`: topic, prefix, [`Sender`], [`WireError`], acknowledgements;
//! - `values`: the tagged encoding of a record's values ([`tag`],
//!   [`put_value`]);
//! - `batch`: [`WireBatch`] and its tables, the owned builder [`Batch`],
//!   the encoder ([`encode_batch_to_vec`]);
//! - `direct`: [`DirectBatch`], the client's sender's encoder: the same
//!   bytes as the `batch` encoder, written from borrowed strings with one
//!   copy;
//! - `check`: the archive check, written for this layout (what
//!   `rkyv::access` checks, in one pass);
//! - `validate`: [`access_batch`], every check and cost bound;
//! - `owned`: [`OwnedBatch`], a validated batch that owns its bytes.
//!
//! [`crate::view`] sits above: it joins records with their sites and
//! threads ([`crate::view::RecordRef`]).
//!
//! ```
//! use distlog_core::record::Record;
//! use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
//!
//! let batch = Batch {
//!     records: vec![Record { message: "hello".into(), ..Record::default() }],
//!     ..Batch::default()
//! };
//! let body = encode_batch_to_vec(&batch);
//! let view = access_batch(&body).unwrap();
//! assert_eq!(view.record(0).unwrap().message(), "hello");
//! assert_eq!(view.to_batch(), batch);
//! ```

mod batch;
mod check;
mod direct;
mod frame;
mod owned;
mod validate;
mod values;

pub use batch::{
    encode_batch_to_vec, ArchivedSite, ArchivedThread, ArchivedWireBatch, ArchivedWireRecord,
    Batch, Site, Thread, WireBatch, WireRecord,
};
pub use direct::{DirectBatch, RecordHead};
pub use frame::{
    decode_ack, encode_ack, recv_monitor_event, ArchivedSender, BodyBuf, Sender, Topic, WireError,
    ACK_LEN, ENCODING_BATCH, ENCODING_JSON, ENCODING_PICKLE, PREFIX_LEN, VERSION,
};
pub use owned::OwnedBatch;
pub use validate::{access_batch, access_sender, BatchRef};
pub use values::{put_value, read_value, tag};
