//! A batch written in its archived form as records arrive: the client's
//! sender copies each ring entry's strings and values once, into one
//! buffer, instead of into an owned [`super::batch::WireRecord`] that rkyv
//! then copies again.
//!
//! The bytes are exactly those rkyv writes for the
//! [`super::batch::WireBatch`] with the same contents (the tests below
//! compare them on random batches; debug builds compare every sealed
//! batch), so the wire format and its validation
//! ([`super::validate::access_batch`]) are untouched. rkyv lays a batch
//! out depth first: the sender's strings, each site's strings and the
//! sites' array, each thread's name and the threads' array, then every
//! record's out-of-line strings and values (in field order: task, message,
//! error, values), the records' array, and the root. Sites and threads are
//! known only once the batch is full, so a [`DirectBatch`] keeps its
//! records in two buffers while it fills:
//!
//! - `payload`: what rkyv would write for the records before their array,
//!   in the same order (strings of up to [`INLINE`] bytes live inside the
//!   record, as rkyv's do);
//! - `array`: one archived record per record, its pointers holding
//!   positions in `payload`.
//!
//! [`DirectBatch::seal_into`] turns those positions into relative pointers
//! (the array's place is known: the payload starts 8-aligned, right after
//! the threads' array), then rkyv's derive (`#[rkyv(as =
//! ArchivedWireBatch)]`) writes the sender, the sites and the threads, the
//! records' `Serialize` appends `payload` and `array` in one copy each,
//! and the derive writes the root.
//!
//! The archived record is written by field offsets (`offset_of!` on
//! [`ArchivedWireRecord`]); the string and vector representations are
//! rkyv 0.8's (little-endian, 32-bit relative pointers: the layout
//! `check.rs` asserts at compile time).

use super::batch::{ArchivedWireBatch, ArchivedWireRecord, Site, Thread};
use super::frame::{write_body, BodyBuf, Sender};
use rkyv::rancor::{self, Fallible};
use rkyv::ser::{Writer, WriterExt};
use rkyv::vec::{ArchivedVec, VecResolver};
use rkyv::{Archive, Place, Serialize};
use std::mem::{align_of, offset_of, size_of};

/// The size of an archived record.
const RECORD: usize = size_of::<ArchivedWireRecord>();

/// The longest string rkyv stores inside its archived `String` (8 bytes).
pub const INLINE: usize = 8;

/// The longest string an archived `String` holds out of line (2^30 - 1).
const OUT_OF_LINE_MAX: usize = (1 << 30) - 1;

/// Where the fields of an archived record are.
const TIME_NS: usize = offset_of!(ArchivedWireRecord, time_ns);
const SEQ: usize = offset_of!(ArchivedWireRecord, seq);
const LEVEL: usize = offset_of!(ArchivedWireRecord, level);
const KIND: usize = offset_of!(ArchivedWireRecord, kind);
const SITE: usize = offset_of!(ArchivedWireRecord, site);
const THREAD: usize = offset_of!(ArchivedWireRecord, thread);
const TASK_N: usize = offset_of!(ArchivedWireRecord, task_n);
const LINE: usize = offset_of!(ArchivedWireRecord, line);
const TASK: usize = offset_of!(ArchivedWireRecord, task);
const MESSAGE: usize = offset_of!(ArchivedWireRecord, message);
const ERROR: usize = offset_of!(ArchivedWireRecord, error);
const VALUES: usize = offset_of!(ArchivedWireRecord, values);

// What this file relies on beyond the layout `check.rs` asserts: the
// threads' array (the last thing before the records' bytes) ends 8-aligned,
// so the padding before the records' array depends only on `payload`.
const _: () = {
    assert!(align_of::<super::batch::ArchivedThread>() == 8);
    assert!(align_of::<ArchivedWireRecord>() == 8 && RECORD % 8 == 0);
};

/// One record's fields other than its strings and values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordHead {
    /// Wall-clock time, ns since the Unix epoch.
    pub time_ns: u64,
    /// Numeric severity on Python's scale.
    pub level: u8,
    /// Log or performance record.
    pub kind: u8,
    /// Index into the batch's sites.
    pub site: u32,
    /// Index into the batch's threads.
    pub thread: u32,
    /// The record counter within its task, 0 outside a task.
    pub task_n: u32,
    /// Overrides the site's line when non-zero.
    pub line: u32,
}

/// A batch being filled, kept in its archived form (module docs). Its
/// sequence numbers and drop count are given when it is sealed.
///
/// rkyv serializes it as the [`super::batch::WireBatch`] it holds
/// ([`ArchivedWireBatch`]): the derive's code writes the sender, sites,
/// threads and root, `Records` the records.
#[derive(Debug, Default, Archive, Serialize)]
#[rkyv(as = ArchivedWireBatch)]
pub struct DirectBatch {
    /// Who sends it.
    pub sender: Sender,
    /// Set when sealed.
    first_seq: u64,
    /// Set when sealed.
    dropped: u64,
    /// Call sites the records index.
    pub sites: Vec<Site>,
    /// Threads the records index.
    pub threads: Vec<Thread>,
    /// The records.
    records: Records,
}

/// The records of a [`DirectBatch`], archived as rkyv archives a
/// `Vec<WireRecord>`.
#[derive(Debug, Default)]
struct Records {
    /// The records' strings and values, as rkyv writes them before the
    /// records' array.
    payload: Vec<u8>,
    /// The archived records, relative pointers holding `payload`
    /// positions until the batch is sealed.
    array: Vec<u8>,
}

impl DirectBatch {
    /// An empty batch of `sender`.
    pub fn new(sender: Sender) -> DirectBatch {
        DirectBatch {
            sender,
            ..DirectBatch::default()
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.array.len() / RECORD
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.array.is_empty()
    }

    /// Appends a record: `head`, its strings, and its values, which
    /// `values` appends in the values encoding ([`super::values::put_value`]). When
    /// `values` returns `None`, nothing is appended and `None` is returned;
    /// otherwise the record's own bytes (strings and values).
    ///
    /// # Panics
    ///
    /// When a string is longer than an archived string holds (2^30 - 1
    /// bytes), as rkyv's encoder does; the client's records are far
    /// shorter.
    #[inline(always)]
    pub fn push(
        &mut self,
        head: &RecordHead,
        task: &str,
        message: &str,
        error: &str,
        values: impl FnOnce(&mut Vec<u8>) -> Option<()>,
    ) -> Option<usize> {
        let Records { payload, array } = &mut self.records;
        let start = payload.len();
        // Zeroed: rkyv zeroes an archived value's padding.
        let mut rec = [0u8; RECORD];
        rec[TIME_NS..TIME_NS + 8].copy_from_slice(&head.time_ns.to_le_bytes());
        rec[LEVEL] = head.level;
        rec[KIND] = head.kind;
        for (at, v) in [
            (SITE, head.site),
            (THREAD, head.thread),
            (TASK_N, head.task_n),
            (LINE, head.line),
        ] {
            rec[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        put_string(&mut rec, TASK, task, payload);
        put_string(&mut rec, MESSAGE, message, payload);
        put_string(&mut rec, ERROR, error, payload);
        let at = payload.len();
        if values(payload).is_none() {
            payload.truncate(start);
            return None;
        }
        let len = payload.len() - at;
        rec[VALUES..VALUES + 4].copy_from_slice(&(at as u32).to_le_bytes());
        rec[VALUES + 4..VALUES + 8].copy_from_slice(&(len as u32).to_le_bytes());
        array.extend_from_slice(&rec);
        Some(task.len() + message.len() + error.len() + len)
    }

    /// Appends the encoded body (prefix and archive) of the batch, its
    /// records numbered from `first_seq`, to `out`, which should be empty
    /// or end at an 8-byte boundary: the same bytes as
    /// [`super::batch::WireBatch::encode_into`] of the same batch. Then empties
    /// the batch as [`DirectBatch::clear`] does.
    pub fn seal_into<B: BodyBuf>(
        &mut self,
        first_seq: u64,
        dropped: u64,
        out: &mut B,
        keep: usize,
    ) {
        // The records' array follows `payload` at the next multiple of 8
        // (the payload starts at one: the threads' array ends there), so a
        // pointer's distance from its field is known now.
        let Records { payload, array } = &mut self.records;
        let start = payload.len().next_multiple_of(8);
        for (i, rec) in array.chunks_exact_mut(RECORD).enumerate() {
            let here = start + i * RECORD;
            rec[SEQ..SEQ + 8].copy_from_slice(&(first_seq + i as u64).to_le_bytes());
            // A string's pointer follows its length word; a vector's
            // leads. Both are relative to the field's start.
            for (field, at) in [
                (TASK, TASK + 4),
                (MESSAGE, MESSAGE + 4),
                (ERROR, ERROR + 4),
                (VALUES, VALUES),
            ] {
                if field != VALUES && !out_of_line(rec[field]) {
                    continue;
                }
                let pos = u32::from_le_bytes(rec[at..at + 4].try_into().expect("4 bytes"));
                let rel = i64::from(pos) - (here + field) as i64;
                rec[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
            }
        }
        (self.first_seq, self.dropped) = (first_seq, dropped);
        let body = out.len();
        write_body(out, |out| {
            rkyv::api::high::to_bytes_in::<_, rancor::Panic>(&*self, out)
                .unwrap_or_else(|e| match e {});
        });
        if cfg!(debug_assertions) {
            same_as_rkyv(&out[body..]);
        }
        self.clear(keep);
    }

    /// Empties the batch, keeping its buffers (but not buffers grown past
    /// `keep` bytes by a batch of unusually large records).
    pub fn clear(&mut self, keep: usize) {
        self.sites.clear();
        self.threads.clear();
        for b in [&mut self.records.payload, &mut self.records.array] {
            b.clear();
            if b.capacity() > keep {
                *b = Vec::new();
            }
        }
    }
}

/// Checks (in debug builds: every test that runs the client's pipeline)
/// that `body` is what rkyv writes for the batch it holds: read back as a
/// [`super::batch::WireBatch`] and encoded by rkyv, the same bytes.
fn same_as_rkyv(body: &[u8]) {
    let mut archive = rkyv::util::AlignedVec::<16>::new();
    archive.extend_from_slice(&body[super::frame::PREFIX_LEN..]);
    let batch = rkyv::from_bytes::<super::batch::WireBatch, rancor::Error>(&archive)
        .expect("the direct encoder writes a valid archive");
    let mut again = Vec::new();
    batch.encode_into(&mut again);
    assert!(
        again == body,
        "the direct encoder's bytes differ from rkyv's for the same batch"
    );
}

/// Writes string `s` into the archived string at `field` of `rec`: inline
/// when it is short, else its length and its position in `payload`, where
/// its bytes are appended.
#[inline(always)]
fn put_string(rec: &mut [u8; RECORD], field: usize, s: &str, payload: &mut Vec<u8>) {
    let b = s.as_bytes();
    if b.len() <= INLINE {
        // rkyv's inline form: the bytes, then 0xff up to 8.
        rec[field..field + INLINE].fill(0xff);
        if !b.is_empty() {
            rec[field..field + b.len()].copy_from_slice(b);
        }
        return;
    }
    assert!(
        b.len() <= OUT_OF_LINE_MAX,
        "string too long for the archived representation"
    );
    // rkyv's out-of-line length word: bits 0b10 at 6-7 mark it, the
    // length's low 6 bits below them, the rest above.
    let l = b.len() as u32;
    let word = (l & 0x3f) | 0x80 | ((l & !0x3f) << 2);
    rec[field..field + 4].copy_from_slice(&word.to_le_bytes());
    rec[field + 4..field + 8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    payload.extend_from_slice(b);
}

/// Whether an archived string whose first byte is `first` is out of line
/// (rkyv's marker: a UTF-8 continuation byte cannot start a string).
fn out_of_line(first: u8) -> bool {
    first & 0xc0 == 0x80
}

impl Archive for Records {
    type Archived = ArchivedVec<ArchivedWireRecord>;
    type Resolver = VecResolver;

    fn resolve(&self, resolver: VecResolver, out: Place<Self::Archived>) {
        ArchivedVec::<ArchivedWireRecord>::resolve_from_len(
            self.array.len() / RECORD,
            resolver,
            out,
        );
    }
}

impl<S: Fallible + Writer + ?Sized> Serialize<S> for Records {
    fn serialize(&self, s: &mut S) -> Result<VecResolver, S::Error> {
        // `seal_into` computed the pointers for a payload starting at a
        // multiple of 8 (see the assertions at the top).
        assert_eq!(s.pos() % 8, 0, "records' bytes start 8-aligned");
        s.write(&self.payload)?;
        let at = s.align_for::<ArchivedWireRecord>()?;
        s.write(&self.array)?;
        Ok(VecResolver::from_pos(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ValueRef;
    use crate::wire::batch::{WireBatch, WireRecord};
    use crate::wire::values::put_value;
    use rkyv::util::AlignedVec;

    /// A random string: empty, short (inline), at the inline bound, or
    /// long, ASCII or not.
    fn string(rng: &mut fastrand::Rng) -> String {
        let len = match rng.u8(..6) {
            0 => 0,
            1 => rng.usize(1..8),
            2 => 8,
            3 => 9,
            _ => rng.usize(10..200),
        };
        let pick = ['a', 'Z', '0', ' ', 'é', 'ß', '語', '🦀', '\u{7f}'];
        let mut s = String::new();
        while s.len() < len {
            s.push(if rng.bool() {
                'x'
            } else {
                pick[rng.usize(..pick.len())]
            });
        }
        s
    }

    /// Appends a random value of any kind.
    fn put_random_value(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
        let s;
        let v = match rng.u8(..6) {
            0 => ValueRef::Null,
            1 => ValueRef::Bool(rng.bool()),
            2 => ValueRef::I64(rng.i64(..)),
            3 => ValueRef::U64(rng.u64(..)),
            4 => ValueRef::F64(f64::from_bits(rng.u64(..))),
            _ => {
                s = string(rng);
                ValueRef::Str(&s)
            }
        };
        put_value(out, v);
    }

    fn site(rng: &mut fastrand::Rng) -> Site {
        Site {
            target: string(rng),
            module: string(rng),
            file: string(rng),
            func: string(rng),
            line: rng.u32(..),
            format: string(rng),
            args: rng.u32(..4),
            keys: (0..rng.usize(..4)).map(|_| string(rng)).collect(),
        }
    }

    /// A random batch as a `WireBatch` and the same records pushed into a
    /// `DirectBatch`: format arguments and fields, (key, value) pairs as
    /// the `log` facade's and a task's bound fields arrive, task paths,
    /// errors, messages; many sites and threads, or none.
    fn pair(rng: &mut fastrand::Rng) -> (WireBatch, DirectBatch) {
        let sender = Sender {
            host: string(rng),
            pid: rng.u32(..),
            program: string(rng),
            start_ns: rng.u64(..),
            instance: rng.u64(..),
        };
        let sites: Vec<Site> = (0..rng.usize(..40)).map(|_| site(rng)).collect();
        let threads: Vec<Thread> = (0..rng.usize(..20))
            .map(|_| Thread {
                id: rng.u64(..),
                name: string(rng),
            })
            .collect();
        let mut want = WireBatch {
            sender: sender.clone(),
            first_seq: rng.u64(..1 << 60),
            dropped: rng.u64(..),
            sites: sites.clone(),
            threads: threads.clone(),
            records: Vec::new(),
        };
        let mut got = DirectBatch::new(sender);
        got.sites = sites;
        got.threads = threads;
        for i in 0..rng.usize(..300) {
            let head = RecordHead {
                time_ns: rng.u64(..),
                level: rng.u8(..),
                kind: rng.u8(..),
                site: rng.u32(..),
                thread: rng.u32(..),
                task_n: rng.u32(..),
                line: rng.u32(..),
            };
            let (task, message, error) = (string(rng), string(rng), string(rng));
            let mut values = Vec::new();
            for _ in 0..rng.usize(..6) {
                if rng.bool() {
                    // A (key, value) pair.
                    put_value(&mut values, ValueRef::Str(&string(rng)));
                }
                put_random_value(rng, &mut values);
            }
            want.records.push(WireRecord {
                time_ns: head.time_ns,
                seq: want.first_seq + i as u64,
                level: head.level,
                kind: head.kind,
                site: head.site,
                thread: head.thread,
                task_n: head.task_n,
                line: head.line,
                task: task.clone(),
                message: message.clone(),
                error: error.clone(),
                values: values.clone(),
            });
            let own = got.push(&head, &task, &message, &error, |out| {
                out.extend_from_slice(&values);
                Some(())
            });
            assert_eq!(
                own,
                Some(task.len() + message.len() + error.len() + values.len())
            );
        }
        (want, got)
    }

    #[test]
    fn direct_encoding_is_byte_identical_to_rkyv() {
        let mut reused = DirectBatch::default();
        for seed in 0..120 {
            let (want, mut got) = pair(&mut fastrand::Rng::with_seed(seed));
            let mut a = Vec::new();
            want.encode_into(&mut a);
            let mut b = Vec::new();
            got.seal_into(want.first_seq, want.dropped, &mut b, usize::MAX);
            same_bytes(
                &a,
                &b,
                &format!("seed {seed}, {} records", want.records.len()),
            );
            assert!(got.is_empty() && got.sites.is_empty() && got.threads.is_empty());
            // Behind an earlier body, and by a batch that sealed others
            // before, as the sender reuses both.
            let (_, fresh) = pair(&mut fastrand::Rng::with_seed(seed));
            refill(&mut reused, fresh);
            let mut c = AlignedVec::<16>::new();
            c.extend_from_slice(&[0; 24]);
            reused.seal_into(want.first_seq, want.dropped, &mut c, 1 << 20);
            same_bytes(&a, &c[24..], &format!("seed {seed}, after 24 bytes"));
            // What rkyv's own check accepts (the broker's `access_batch`
            // adds index and value checks these random records fail).
            let mut aligned = AlignedVec::<16>::new();
            aligned.extend_from_slice(&b[crate::wire::frame::PREFIX_LEN..]);
            rkyv::access::<ArchivedWireBatch, rancor::Error>(&aligned).expect("valid archive");
        }
    }

    /// Asserts `a == b`, saying where they first differ.
    fn same_bytes(a: &[u8], b: &[u8], what: &str) {
        if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
            let near = |x: &[u8]| x[i.saturating_sub(8)..(i + 8).min(x.len())].to_vec();
            panic!(
                "{what}: byte {i} of {} / {}: {:?} / {:?}",
                a.len(),
                b.len(),
                near(a),
                near(b)
            );
        }
        assert_eq!(a.len(), b.len(), "{what}: lengths");
    }

    /// Moves `from`'s contents into the emptied `to` (keeping `to`'s
    /// buffers: the payload and records are copied, not swapped).
    fn refill(to: &mut DirectBatch, from: DirectBatch) {
        to.sender = from.sender;
        to.sites = from.sites;
        to.threads = from.threads;
        to.records.payload.extend_from_slice(&from.records.payload);
        to.records.array.extend_from_slice(&from.records.array);
    }

    #[test]
    fn a_failed_record_leaves_nothing_behind() {
        let (want, mut got) = pair(&mut fastrand::Rng::with_seed(7));
        let long = "a message longer than eight bytes";
        let head = RecordHead::default();
        let pushed = got.push(&head, long, long, long, |out| {
            out.extend_from_slice(b"partial");
            None
        });
        assert_eq!(pushed, None);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        want.encode_into(&mut a);
        got.seal_into(want.first_seq, want.dropped, &mut b, usize::MAX);
        same_bytes(&a, &b, "after a failed record");
    }

    #[test]
    fn an_empty_batch_encodes_as_rkyv_does() {
        let want = WireBatch::default();
        let mut got = DirectBatch::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        want.encode_into(&mut a);
        got.seal_into(0, 0, &mut b, 0);
        assert_eq!(a, b);
        assert_eq!((got.is_empty(), got.len()), (true, 0));
    }
}
