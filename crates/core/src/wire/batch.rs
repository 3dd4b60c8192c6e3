//! What a batch body archives ([`WireBatch`]: call-site and thread tables,
//! records that index them), the owned builder ([`Batch`] of
//! [`Record`]s) for batches made off the client's hot path, and the
//! encoder.
//!
//! The client's sender writes the archive of a [`WireBatch`] straight
//! from its rings (`DirectBatch`, `src/pipeline/open_batch.rs`): the
//! same bytes, without the owned records. Everything else that makes a batch (the
//! broker's metrics and re-encoded partial deliveries, Python records,
//! `distlog` reading PostgreSQL, tests) builds a [`Batch`] and encodes it
//! with [`encode_batch_to_vec`], which converts it first: one format either
//! way.

use super::frame::{write_body, BodyBuf, Sender};
use super::values::put_value;
use crate::record::{Record, ValueRef};
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::HashMap;

/// A call site, once per batch.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, Default)]
#[rkyv(derive(Debug))]
pub struct Site {
    /// Target / logger name.
    pub target: String,
    /// Module path.
    pub module: String,
    /// Source file.
    pub file: String,
    /// Function name, empty when unknown.
    pub func: String,
    /// Source line, 0 when unknown.
    pub line: u32,
    /// The format string with `{}` placeholders; empty when records carry
    /// their message rendered.
    pub format: String,
    /// How many format arguments lead a record's values.
    pub args: u32,
    /// The keys of the fields that follow the arguments.
    pub keys: Vec<String>,
}

/// A logging thread, once per batch.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, Default)]
#[rkyv(derive(Debug))]
pub struct Thread {
    /// OS thread id.
    pub id: u64,
    /// Thread name, empty when unnamed.
    pub name: String,
}

/// One record as the wire carries it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct WireRecord {
    /// Wall-clock time, ns since the Unix epoch.
    pub time_ns: u64,
    /// The sender's sequence number.
    pub seq: u64,
    /// Numeric severity on Python's scale.
    pub level: u8,
    /// Log or performance record.
    pub kind: u8,
    /// Index into [`WireBatch::sites`].
    pub site: u32,
    /// Index into [`WireBatch::threads`].
    pub thread: u32,
    /// The record counter within its task, 0 outside a task.
    pub task_n: u32,
    /// Overrides the site's line when non-zero.
    pub line: u32,
    /// Task path, empty outside a task.
    pub task: String,
    /// The rendered message, when not deferred to the site's format.
    pub message: String,
    /// Error or exception text.
    pub error: String,
    /// Arguments, fields and bound fields, in the values encoding
    /// ([`super::tag`]).
    pub values: Vec<u8>,
}

/// A batch of records from one sender, as the wire carries it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct WireBatch {
    /// Who sent it.
    pub sender: Sender,
    /// Sequence number of the first record; the rest follow contiguously.
    pub first_seq: u64,
    /// The sender's running count of records it dropped.
    pub dropped: u64,
    /// Call sites the records index.
    pub sites: Vec<Site>,
    /// Threads the records index.
    pub threads: Vec<Thread>,
    /// The records, in order.
    pub records: Vec<WireRecord>,
}

/// A batch of owned records from one sender: the builder for batches made
/// off the hot path. [`encode_batch_to_vec`] writes it in the one wire format;
/// reading it back ([`crate::view`]) gives the same records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The sending process.
    pub sender: Sender,
    /// Sequence number of the first record; record `i` has `first_seq + i`.
    pub first_seq: u64,
    /// The sender's running count of records dropped before the wire.
    pub dropped: u64,
    /// The records.
    pub records: Vec<Record>,
}

impl WireBatch {
    /// Appends the encoded body (prefix and archive) to `out`, which should
    /// be empty or end at an 8-byte boundary.
    pub fn encode_into<B: BodyBuf>(&self, out: &mut B) {
        write_body(out, |out| {
            rkyv::api::high::to_bytes_in::<_, rancor::Panic>(self, out)
                .unwrap_or_else(|e| match e {});
        });
    }

    /// Encodes the batch into a fresh buffer.
    pub fn to_body(&self) -> AlignedVec {
        let mut out = AlignedVec::new();
        self.encode_into(&mut out);
        out
    }
}

impl From<&Batch> for WireBatch {
    /// Records with the same call-site metadata (target, module, file,
    /// function, line, format, argument count, field keys) share a site,
    /// records of one thread a thread entry.
    fn from(b: &Batch) -> WireBatch {
        let mut sites: HashMap<Site, u32> = HashMap::new();
        let mut threads: HashMap<Thread, u32> = HashMap::new();
        let mut out = WireBatch {
            sender: b.sender.clone(),
            first_seq: b.first_seq,
            dropped: b.dropped,
            ..WireBatch::default()
        };
        for r in &b.records {
            let site = Site {
                target: r.target.clone(),
                module: r.module.clone(),
                file: r.file.clone(),
                func: r.func.clone(),
                line: r.line,
                format: r.format.clone(),
                args: r.args.len() as u32,
                keys: r.fields.iter().map(|f| f.key.clone()).collect(),
            };
            let site = *sites.entry(site).or_insert_with_key(|s| {
                out.sites.push(s.clone());
                out.sites.len() as u32 - 1
            });
            let thread = Thread {
                id: r.thread_id,
                name: r.thread_name.clone(),
            };
            let thread = *threads.entry(thread).or_insert_with_key(|t| {
                out.threads.push(t.clone());
                out.threads.len() as u32 - 1
            });
            let mut values = Vec::new();
            for v in r.args.iter().chain(r.fields.iter().map(|f| &f.value)) {
                put_value(&mut values, ValueRef::from(v));
            }
            out.records.push(WireRecord {
                time_ns: r.time_ns,
                seq: r.seq,
                level: r.level,
                kind: r.kind,
                site,
                thread,
                task_n: r.task_n,
                line: 0,
                task: r.task.clone(),
                message: r.message.clone(),
                error: r.error.clone(),
                values,
            });
        }
        out
    }
}

/// Encodes the owned `batch` into a fresh buffer.
pub fn encode_batch_to_vec(batch: &Batch) -> AlignedVec {
    WireBatch::from(batch).to_body()
}
