//! Wire format version 2 (`docs/PROTOCOL.md`, `docs/WIRE_V2.md`): the
//! types, the encoder and the validating decoder.
//!
//! The client's sender writes it (`src/pipeline/open_batch.rs`); readers
//! take it and version 1 alike through [`crate::wire::access_batch`] and
//! the views in [`crate::view`].
//!
//! What changes from version 1: a batch carries its call sites
//! ([`Site`]: target, module, file, function, line, format, argument count,
//! field keys) and threads ([`Thread`]) once; each record indexes them, and
//! carries its arguments and fields as one byte string in the client's own
//! tagged encoding ([`RecordV2::values`]) instead of one rkyv enum per
//! value. `examples/wire_cost.rs` measures the gain: 112 bytes, 44 ns to
//! encode and 58 ns to validate per record, against 320, 214 and 150.
//!
//! The values encoding, per value: a tag byte, then
//!
//! | tag | value | bytes after the tag |
//! |---|---|---|
//! | 0 | null | none |
//! | 1 | bool | 1 (0 or 1) |
//! | 2 | i64 | 8, little-endian |
//! | 3 | u64 | 8, little-endian |
//! | 4 | f64 | 8, little-endian IEEE 754 bits |
//! | 5 | str | u32 little-endian length, then that many UTF-8 bytes |
//!
//! A record's values are its site's `args` format arguments, then one value
//! per key of the site's `keys`, then any number of bound fields, each a
//! str value (the key) followed by its value.

use crate::limits;
use crate::record::ValueRef;
use crate::wire::{
    archive_of, encode_body, sender_cost, Batch, BodyBuf, ErrorKind, Sender, WireError,
};
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::HashMap;

/// The format version this module writes and reads.
pub const VERSION: u8 = 2;

/// Value tags of the values encoding.
pub mod tag {
    /// No value.
    pub const NULL: u8 = 0;
    /// A bool: one byte, 0 or 1.
    pub const BOOL: u8 = 1;
    /// An i64, 8 bytes.
    pub const I64: u8 = 2;
    /// A u64, 8 bytes.
    pub const U64: u8 = 3;
    /// An f64, 8 bytes.
    pub const F64: u8 = 4;
    /// A string: u32 length, then UTF-8 bytes.
    pub const STR: u8 = 5;
}

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

/// One record.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct RecordV2 {
    /// Wall-clock time, ns since the Unix epoch.
    pub time_ns: u64,
    /// The sender's sequence number.
    pub seq: u64,
    /// Numeric severity on Python's scale.
    pub level: u8,
    /// Log or performance record.
    pub kind: u8,
    /// Index into [`BatchV2::sites`].
    pub site: u32,
    /// Index into [`BatchV2::threads`].
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
    /// Arguments, fields and bound fields (module docs).
    pub values: Vec<u8>,
}

/// A batch of records from one sender.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct BatchV2 {
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
    pub records: Vec<RecordV2>,
}

impl From<&Batch> for BatchV2 {
    /// Converts an owned version-1 batch: records with the same call-site
    /// metadata (target, module, file, function, line, format, argument
    /// count, field keys) share a site, records of one thread a thread
    /// entry. Reading the result gives back the same records
    /// ([`crate::view::BatchRef::to_batch`]).
    fn from(b: &Batch) -> BatchV2 {
        let mut sites: HashMap<Site, u32> = HashMap::new();
        let mut threads: HashMap<Thread, u32> = HashMap::new();
        let mut out = BatchV2 {
            sender: b.sender.clone(),
            first_seq: b.first_seq,
            dropped: b.dropped,
            ..BatchV2::default()
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
            out.records.push(RecordV2 {
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

/// Appends the encoded body of `batch` (prefix and archive) to `out`,
/// which should be empty or end at an 8-byte boundary.
pub fn encode_batch<B: BodyBuf>(batch: &BatchV2, out: &mut B) {
    encode_body(VERSION, out, |out| {
        rkyv::api::high::to_bytes_in::<_, rancor::Panic>(batch, out).unwrap_or_else(|e| match e {});
    });
}

/// Encodes `batch` into a fresh buffer.
pub fn encode_batch_to_vec(batch: &BatchV2) -> AlignedVec {
    let mut out = AlignedVec::new();
    encode_batch(batch, &mut out);
    out
}

/// Checks the prefix, validates the archive, every record's indexes and
/// values, and the cost bounds of [`crate::limits`] (expanded size, name
/// lengths, fields per record, task depth), and returns a zero-copy view.
/// `body` must start at an 8-byte aligned address.
///
/// One pass over the records, no allocation. A record's own strings
/// (task, message, error, values) are bytes of the body that no other
/// record claims (bytecheck rejects overlapping claims), so together they
/// are at most the body's size and are not summed; what is summed per
/// record is what it shares: its site's strings (those of the first
/// [`SITE_CACHE`] sites summed once into an array on the stack), and the
/// sender's names and the longest thread name, an upper bound on its
/// thread's.
pub fn access_batch(body: &[u8]) -> Result<&ArchivedBatchV2, WireError> {
    let batch = rkyv::access::<ArchivedBatchV2, rancor::Failure>(archive_of(body, VERSION)?)
        .map_err(|_| WireError::new(ErrorKind::Invalid))?;
    let mut thread_name = 0;
    for t in batch.threads.iter() {
        thread_name = thread_name.max(t.name.len());
    }
    if thread_name > limits::MAX_NAME {
        return Err(WireError::new(ErrorKind::NameTooLong));
    }
    let per_record = sender_cost(&batch.sender)? + thread_name as u64;
    let mut cached = [0u64; SITE_CACHE];
    for (c, s) in cached.iter_mut().zip(batch.sites.iter()) {
        *c = site_cost(s);
    }
    // The records' own bytes are within the body: the shared ones get
    // the rest of the budget.
    let budget = limits::budget(body.len()) - body.len() as u64;
    let mut shared = 0u64;
    let first = batch.first_seq.to_native();
    for (i, r) in batch.records.iter().enumerate() {
        if r.seq.to_native() != first.wrapping_add(i as u64) {
            return Err(WireError::new(ErrorKind::SequenceMismatch));
        }
        let ix = r.site.to_native() as usize;
        let Some(site) = batch.sites.get(ix) else {
            return Err(WireError::new(ErrorKind::BadSite));
        };
        if r.thread.to_native() as usize >= batch.threads.len() {
            return Err(WireError::new(ErrorKind::BadThread));
        }
        let fixed = site.args.to_native() as usize + site.keys.len();
        let Some(n) = values_count(&r.values, fixed) else {
            return Err(WireError::new(ErrorKind::BadValues));
        };
        // Arguments and site keys, then the bound (key, value) pairs.
        if fixed + (n - fixed) / 2 > limits::MAX_FIELDS {
            return Err(WireError::new(ErrorKind::TooManyFields));
        }
        if !limits::task_ok(&r.task) {
            return Err(WireError::new(ErrorKind::TaskTooDeep));
        }
        shared += per_record
            + match cached.get(ix) {
                Some(&c) => c,
                None => site_cost(site),
            };
    }
    // Checked once: the loop itself is linear in the body (each record is
    // in it, and a site's strings are summed per record only past the
    // cache, where its keys are also values the record carries).
    if shared > budget {
        return Err(WireError::new(ErrorKind::TooExpanded));
    }
    Ok(batch)
}

/// How many sites' string sizes [`access_batch`] keeps on the stack.
const SITE_CACHE: usize = 64;

/// The bytes of a site's strings: what each record referring to it adds
/// to the batch's expanded size.
#[inline]
fn site_cost(s: &ArchivedSite) -> u64 {
    let keys: usize = s.keys.iter().map(|k| k.len()).sum();
    (s.target.len() + s.module.len() + s.file.len() + s.func.len() + s.format.len() + keys) as u64
}

/// How many values `b` holds, when it is `fixed` well-formed values
/// followed by (str key, value) pairs; `None` when it is not.
fn values_count(mut b: &[u8], fixed: usize) -> Option<usize> {
    let mut n = 0usize;
    while !b.is_empty() {
        let (v, rest) = read_value(b)?;
        // Past the fixed values they come in pairs, each led by a str key.
        if n >= fixed && (n - fixed) % 2 == 0 && !matches!(v, ValueRef::Str(_)) {
            return None;
        }
        b = rest;
        n += 1;
    }
    (n >= fixed && (n - fixed) % 2 == 0).then_some(n)
}

/// Splits the first value off `b`: the value and the rest, or `None` when
/// it is malformed. Readers of a validated batch
/// ([`crate::view::RecordRef`]) use it too, so what validation accepts is
/// exactly what they can read.
#[inline]
pub(crate) fn read_value(b: &[u8]) -> Option<(ValueRef<'_>, &[u8])> {
    let (&t, rest) = b.split_first()?;
    let fixed = |rest: &[u8]| -> Option<(u64, usize)> {
        Some((u64::from_le_bytes(rest.get(..8)?.try_into().ok()?), 8))
    };
    let (v, used) = match t {
        tag::NULL => (ValueRef::Null, 0),
        tag::BOOL => match rest.first()? {
            0 => (ValueRef::Bool(false), 1),
            1 => (ValueRef::Bool(true), 1),
            _ => return None,
        },
        tag::I64 => fixed(rest).map(|(u, n)| (ValueRef::I64(u as i64), n))?,
        tag::U64 => fixed(rest).map(|(u, n)| (ValueRef::U64(u), n))?,
        tag::F64 => fixed(rest).map(|(u, n)| (ValueRef::F64(f64::from_bits(u)), n))?,
        tag::STR => {
            let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let s = rest.get(4..4usize.checked_add(n)?)?;
            (ValueRef::Str(std::str::from_utf8(s).ok()?), 4 + n)
        }
        _ => return None,
    };
    Some((v, &rest[used..]))
}

/// Appends one value in the values encoding.
pub fn put_value(out: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push(tag::NULL),
        ValueRef::Bool(b) => out.extend_from_slice(&[tag::BOOL, u8::from(b)]),
        ValueRef::I64(i) => {
            out.push(tag::I64);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::U64(u) => {
            out.push(tag::U64);
            out.extend_from_slice(&u.to_le_bytes());
        }
        ValueRef::F64(f) => {
            out.push(tag::F64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        ValueRef::Str(s) => {
            out.push(tag::STR);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.push(tag::U64);
        v.extend_from_slice(&s.to_le_bytes());
        v.push(tag::STR);
        v.extend_from_slice(&5u32.to_le_bytes());
        v.extend_from_slice(b"value");
        v.push(tag::BOOL);
        v.push(1);
        v
    }

    fn sample(n: u64) -> BatchV2 {
        BatchV2 {
            sender: Sender {
                host: "web-1".into(),
                pid: 7,
                program: "p".into(),
                start_ns: 1,
                instance: 9,
            },
            first_seq: 100,
            dropped: 0,
            sites: vec![Site {
                target: "http".into(),
                module: "app::http".into(),
                file: "src/http.rs".into(),
                line: 12,
                format: "served {}".into(),
                args: 1,
                keys: vec!["route".into(), "ok".into()],
                ..Site::default()
            }],
            threads: vec![Thread {
                id: 42,
                name: "worker-1".into(),
            }],
            records: (0..n)
                .map(|i| RecordV2 {
                    time_ns: 1_700_000_000_000_000_000 + i,
                    seq: 100 + i,
                    level: 20,
                    kind: b'L',
                    values: values(i),
                    ..RecordV2::default()
                })
                .collect(),
        }
    }

    fn encode(b: &BatchV2) -> AlignedVec {
        let mut out = AlignedVec::new();
        encode_batch(b, &mut out);
        out
    }

    #[test]
    fn round_trips_and_checks_indexes_and_values() {
        let body = encode(&sample(3));
        let b = access_batch(&body).unwrap();
        assert_eq!(b.records.len(), 3);
        assert_eq!(
            b.sites[b.records[2].site.to_native() as usize].target,
            "http"
        );
        assert_eq!(&b.records[1].values[..], &values(1)[..]);
    }

    #[test]
    fn bound_fields_come_in_key_value_pairs() {
        let mut b = sample(1);
        let mut v = values(0);
        v.push(tag::STR);
        v.extend_from_slice(&4u32.to_le_bytes());
        v.extend_from_slice(b"user");
        v.push(tag::I64);
        v.extend_from_slice(&(-3i64).to_le_bytes());
        b.records[0].values = v.clone();
        assert!(access_batch(&encode(&b)).is_ok());
        // A key without its value.
        v.push(tag::STR);
        v.extend_from_slice(&1u32.to_le_bytes());
        v.push(b'k');
        b.records[0].values = v;
        assert_eq!(
            access_batch(&encode(&b)).unwrap_err().reason(),
            "bad_values"
        );
    }

    #[test]
    fn rejects_bad_indexes_and_values_by_reason() {
        type Spoil = fn(&mut BatchV2);
        let cases: [(&str, Spoil); 7] = [
            ("bad_site", |b| b.records[1].site = 1),
            ("bad_thread", |b| b.records[0].thread = 3),
            ("bad_values", |b| b.records[0].values.push(9)),
            ("bad_values", |b| b.records[0].values.truncate(5)),
            ("bad_values", |b| {
                // A string whose length runs past the end.
                b.records[0].values = vec![tag::STR, 0xff, 0xff, 0xff, 0x7f, b'a'];
            }),
            ("bad_values", |b| {
                // Invalid UTF-8 in the second (str) value.
                let v = &mut b.records[0].values;
                v[14] = 0xff;
            }),
            ("bad_values", |b| b.records[0].values.truncate(9)),
        ];
        for (want, spoil) in cases {
            let mut b = sample(2);
            spoil(&mut b);
            let err = access_batch(&encode(&b)).unwrap_err();
            assert_eq!(err.reason(), want, "{err}");
        }
    }

    #[test]
    fn rejects_version_one_and_non_contiguous_records() {
        let mut body = encode(&sample(2));
        body[3] = 1;
        assert_eq!(access_batch(&body).unwrap_err().reason(), "bad_version");
        let mut b = sample(2);
        b.records[1].seq = 7;
        assert_eq!(
            access_batch(&encode(&b)).unwrap_err().reason(),
            "sequence_mismatch"
        );
    }

    #[test]
    fn rejects_batches_over_the_cost_bounds_by_reason() {
        // Many records pointing at one long site target: small on the
        // wire, large for every reader that renders the records.
        let mut b = sample(2000);
        b.sites[0].target = "t".repeat(64 * 1024);
        let body = encode(&b);
        let err = access_batch(&body).unwrap_err();
        assert_eq!(err.reason(), "too_expanded", "{err}");
        // The same site with few records is fine.
        let mut b = sample(4);
        b.sites[0].target = "t".repeat(64 * 1024);
        assert!(access_batch(&encode(&b)).is_ok());

        type Spoil = fn(&mut BatchV2);
        let cases: [(&str, Spoil); 6] = [
            ("name_too_long", |b| b.sender.host = "h".repeat(256)),
            ("name_too_long", |b| b.sender.program = "p".repeat(256)),
            ("name_too_long", |b| b.threads[0].name = "n".repeat(256)),
            ("too_many_fields", |b| {
                b.sites[0].keys = (0..limits::MAX_FIELDS).map(|i| i.to_string()).collect();
                for r in &mut b.records {
                    r.values = vec![tag::NULL; limits::MAX_FIELDS + 1];
                }
            }),
            ("task_too_deep", |b| {
                b.records[1].task = format!("root{}", "/1".repeat(limits::MAX_TASK_DEPTH + 1))
            }),
            ("task_too_deep", |b| {
                b.records[0].task = "x".repeat(limits::MAX_TASK_LEN + 1)
            }),
        ];
        for (want, spoil) in cases {
            let mut b = sample(2);
            spoil(&mut b);
            let err = access_batch(&encode(&b)).unwrap_err();
            assert_eq!(err.reason(), want, "{err}");
        }
        // At the caps, accepted.
        let mut b = sample(2);
        b.sender.host = "h".repeat(limits::MAX_NAME);
        b.records[0].task = format!("root{}", "/1".repeat(limits::MAX_TASK_DEPTH));
        assert!(access_batch(&encode(&b)).is_ok());
    }

    #[test]
    fn a_value_walk_never_reads_out_of_bounds() {
        // Every prefix of a well-formed string either parses or is rejected.
        let v = values(5);
        for cut in 0..=v.len() {
            let _ = values_count(&v[..cut], 3);
            let _ = values_count(&v[..cut], 0);
        }
        assert_eq!(values_count(&v, 3), Some(3));
        assert_eq!(values_count(&v, 4), None);
        assert_eq!(values_count(&v[..v.len() - 1], 3), None);
    }
}
