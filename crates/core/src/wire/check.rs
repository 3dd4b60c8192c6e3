//! The archive check of a batch, written for [`WireBatch`]'s layout: it
//! accepts exactly the archives `rkyv::access::<ArchivedWireBatch, _>`
//! accepts, in one pass over the bytes, without bytecheck's generic
//! machinery (a context object behind a trait, a subtree range pushed and
//! popped per object, an error value built per check).
//!
//! What rkyv 0.8 checks for these types (aligned, little-endian, 32-bit
//! relative pointers: the workspace's rkyv features), and so what this
//! checks:
//!
//! - the root object sits at the end of the archive
//!   (`len - size_of::<ArchivedWireBatch>()`), within it and aligned;
//! - every object a relative pointer reaches (a `Vec`'s array, a string's
//!   bytes when they are not inline) lies within the archive, at an
//!   address aligned for its type, and after every object claimed before
//!   it and before the object that points to it: rkyv's subtree ranges,
//!   which are what makes claims disjoint. The walk keeps that range as
//!   two positions, `lo` (the end of the last claim) and `hi` (the start
//!   of the object being checked), and visits the fields in declaration
//!   order, as the derived checks do;
//! - a string is inline (its first byte is not `0b10xx_xxxx`; its length
//!   is the position of the first `0xff`, or 8) or out of line with a
//!   length over 8; its bytes are UTF-8;
//! - nothing else: integers and `u8` arrays accept every bit pattern.
//!
//! Cost: each byte of the archive is read a bounded number of times (once
//! for a record's fixed fields, once more for the UTF-8 of the strings it
//! claims, which are disjoint), so O(bytes), and no allocation. The
//! randomized test below compares it with `rkyv::access` on random and
//! damaged archives, at aligned and misaligned addresses.
//!
//! [`WireBatch`]: super::WireBatch

use super::batch::{ArchivedSite, ArchivedThread, ArchivedWireBatch, ArchivedWireRecord};
use super::frame::ArchivedSender;
use super::values::utf8;
use rkyv::string::ArchivedString;
use rkyv::vec::ArchivedVec;
use std::mem::{align_of, offset_of, size_of};

// The layout this file is written for. Another set of rkyv features
// (`unaligned`, `big_endian`, `pointer_width_64`) changes it and fails
// the build here.
const _: () = {
    assert!(size_of::<ArchivedString>() == 8 && align_of::<ArchivedString>() == 4);
    assert!(size_of::<ArchivedVec<u8>>() == 8 && align_of::<ArchivedVec<u8>>() == 4);
    assert!(align_of::<ArchivedWireRecord>() == 8);
    assert!(align_of::<ArchivedWireBatch>() == 8);
};

/// Sizes and alignments of the arrays' element types.
const RECORD: usize = size_of::<ArchivedWireRecord>();
const SITE: usize = size_of::<ArchivedSite>();
const THREAD: usize = size_of::<ArchivedThread>();
const STRING: usize = size_of::<ArchivedString>();

/// Whether `archive` (the bytes after a body's prefix) is an archive of a
/// [`super::WireBatch`] that `rkyv::access` accepts: [`check_head`], then
/// every record.
pub(crate) fn check_archive(archive: &[u8]) -> Option<&ArchivedWireBatch> {
    let mut head = check_head(archive)?;
    head.check_records()?;
    head.batch()
}

/// The checks of [`check_archive`] up to the records: the root's place,
/// the sender, the sites and the threads, and the records' array claimed.
/// [`Head::check_records`] checks the records, in order (the order of
/// rkyv's walk, which the claims depend on).
pub(crate) fn check_head(archive: &[u8]) -> Option<Head<'_>> {
    let (mut w, root) = check_sender(archive)?;
    let hi = root;

    let (sites, n) = w.array(
        root + offset_of!(ArchivedWireBatch, sites),
        hi,
        SITE,
        align_of::<ArchivedSite>(),
    )?;
    for i in 0..n {
        let s = sites + i * SITE;
        w.string(s + offset_of!(ArchivedSite, target), sites)?;
        w.string(s + offset_of!(ArchivedSite, module), sites)?;
        w.string(s + offset_of!(ArchivedSite, file), sites)?;
        w.string(s + offset_of!(ArchivedSite, func), sites)?;
        w.string(s + offset_of!(ArchivedSite, format), sites)?;
        let (keys, k) = w.array(
            s + offset_of!(ArchivedSite, keys),
            sites,
            STRING,
            align_of::<ArchivedString>(),
        )?;
        for j in 0..k {
            w.string(keys + j * STRING, keys)?;
        }
        w.lo = keys + k * STRING;
    }
    w.lo = sites + n * SITE;

    let (threads, n) = w.array(
        root + offset_of!(ArchivedWireBatch, threads),
        hi,
        THREAD,
        align_of::<ArchivedThread>(),
    )?;
    for i in 0..n {
        w.string(
            threads + i * THREAD + offset_of!(ArchivedThread, name),
            threads,
        )?;
    }
    w.lo = threads + n * THREAD;

    let (records, n) = w.array(
        root + offset_of!(ArchivedWireBatch, records),
        hi,
        RECORD,
        align_of::<ArchivedWireRecord>(),
    )?;
    let all = archive.get(records..records + n * RECORD)?;
    Some(Head {
        w,
        root,
        records,
        all,
        len: n,
        next: 0,
    })
}

/// A batch archive checked up to its records ([`check_head`]).
pub(crate) struct Head<'a> {
    w: Walk<'a>,
    root: usize,
    /// Where the records' array starts, and its bytes.
    records: usize,
    all: &'a [u8],
    /// How many records there are, and how many are checked.
    len: usize,
    next: usize,
}

impl<'a> Head<'a> {
    /// How many records are left to check.
    #[inline]
    pub(crate) fn left(&self) -> usize {
        self.len - self.next
    }

    /// Checks every record left, in order; `None` when one fails (and
    /// the archive with it).
    ///
    /// Each record is read as one array (no bounds check per field); its
    /// three strings are first tried together as the usual case, all
    /// three inline and empty (one compare), then one by one as inline
    /// ASCII; its values' claim is [`Walk::claim`] with alignment 1
    /// written out, so that the end of the last claim stays in a register.
    #[inline(always)]
    pub(crate) fn check_records(&mut self) -> Option<()> {
        const TASK: usize = offset_of!(ArchivedWireRecord, task);
        const MESSAGE: usize = offset_of!(ArchivedWireRecord, message);
        const ERROR: usize = offset_of!(ArchivedWireRecord, error);
        const VALUES: usize = offset_of!(ArchivedWireRecord, values);
        let all = self.all.get(self.next * RECORD..)?;
        let hi = self.records;
        let mut r = hi + self.next * RECORD;
        let mut lo = self.w.lo;
        for rec in all.chunks_exact(RECORD) {
            let rec: &[u8; RECORD] = rec.try_into().ok()?;
            let word = |at: usize| u64::from_le_bytes(rec[at..at + 8].try_into().expect("8 bytes"));
            let (task, message, error) = (word(TASK), word(MESSAGE), word(ERROR));
            // An empty inline string is eight 0xff bytes.
            if task & message & error != u64::MAX {
                // In field order (a string out of line claims its bytes,
                // and claims must come in rkyv's order); an inline ASCII
                // string claims nothing, so skipping its full check keeps
                // the order. Usually only the message is out of line.
                self.w.lo = lo;
                if !inline_ascii(task) {
                    self.w.string(r + TASK, hi)?;
                }
                if !inline_ascii(message) {
                    self.w.string(r + MESSAGE, hi)?;
                }
                if !inline_ascii(error) {
                    self.w.string(r + ERROR, hi)?;
                }
                lo = self.w.lo;
            }
            // The values' claim: after the last, within the records'
            // space (`r` is within the archive, so below `isize::MAX`, and
            // the sum of it and an `i32` cannot overflow an `i64`).
            let v = word(VALUES);
            let start = (r + VALUES) as i64 + i64::from(v as u32 as i32);
            if start < lo as i64 {
                return None;
            }
            let end = (start as usize).checked_add((v >> 32) as usize)?;
            if end > hi {
                return None;
            }
            lo = end;
            r += RECORD;
        }
        self.w.lo = lo;
        self.next = self.len;
        Some(())
    }

    /// The whole batch, once every record is checked (`None` before).
    #[inline]
    pub(crate) fn batch(&self) -> Option<&'a ArchivedWireBatch> {
        if self.left() > 0 {
            return None;
        }
        let at = self.root;
        // SAFETY: every step of rkyv's walk of the archive passed: the
        // root's place, the sender, sites, threads and every record, with
        // the claims in rkyv's order (module docs; the agreement test).
        Some(unsafe { &slice_at::<ArchivedWireBatch>(self.w.b, at, 1)[0] })
    }
}

/// `n` values of `T` at `at` in `b`.
///
/// # Safety
///
/// `b[at..at + n * size_of::<T>()]` is in bounds, aligned for `T`, and
/// holds valid values of `T` (every object they point to included).
#[inline(always)]
unsafe fn slice_at<T>(b: &[u8], at: usize, n: usize) -> &[T] {
    debug_assert!(at + n * size_of::<T>() <= b.len());
    debug_assert_eq!((b.as_ptr() as usize + at) % align_of::<T>(), 0);
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(b.as_ptr().add(at).cast::<T>(), n) }
}

/// Whether the string representation `w` is inline with ASCII bytes
/// before its first `0xff` (or 8 ASCII bytes): valid, the usual case, in
/// a few instructions. False says nothing: check it in full.
#[inline(always)]
fn inline_ascii(w: u64) -> bool {
    let high = w & 0x8080_8080_8080_8080;
    if high == 0 {
        return true;
    }
    // The first byte with its high bit set must be 0xff: it ends the
    // string (a first byte of 0xff is inline and empty).
    let first = high.trailing_zeros() - 7;
    (w >> first) as u8 == 0xff
}

/// The first steps of [`check_archive`]: the root's place and the
/// sender's strings, the first objects the root claims. Their walk and the
/// root's position when they pass: whatever the rest holds, the sender is
/// then a valid `ArchivedSender` (see [`sender_of`]).
#[inline]
fn check_sender(archive: &[u8]) -> Option<(Walk<'_>, usize)> {
    let mut w = Walk {
        b: archive,
        addr: archive.as_ptr() as usize,
        lo: 0,
    };
    let root = archive.len().checked_sub(size_of::<ArchivedWireBatch>())?;
    if (w.addr + root) % align_of::<ArchivedWireBatch>() != 0 {
        return None;
    }
    let sender = root + offset_of!(ArchivedWireBatch, sender);
    w.string(sender + offset_of!(ArchivedSender, host), root)?;
    w.string(sender + offset_of!(ArchivedSender, program), root)?;
    Some((w, root))
}

/// The sender of a batch archive, checked alone (the root's place and the
/// sender's two strings), or `None`: what a reader that may skip the batch
/// on its sender needs before checking the rest. An archive that fails
/// here fails [`check_archive`] too (these are its first steps).
pub(crate) fn sender_of(archive: &[u8]) -> Option<&ArchivedSender> {
    let (_, root) = check_sender(archive)?;
    let at = root + offset_of!(ArchivedWireBatch, sender);
    // SAFETY: the sender is in the archive and aligned (a field at a fixed
    // offset of the root, whose place `check_sender` checked), and its
    // only fields with invalid bit patterns, the two strings, passed the
    // checks `rkyv::access` makes of them. Integers are valid for every
    // bit pattern.
    Some(unsafe { &slice_at::<ArchivedSender>(archive, at, 1)[0] })
}

/// The walk's state: the archive, its address (alignment is of
/// addresses, as in rkyv) and the end of the last claimed object.
struct Walk<'a> {
    b: &'a [u8],
    addr: usize,
    lo: usize,
}

impl Walk<'_> {
    /// The 8 bytes at `at`: a string's or a `Vec`'s representation, inside
    /// an object already claimed (so in bounds).
    #[inline(always)]
    fn word(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.b.get(at..at + 8)?.try_into().ok()?))
    }

    /// Claims `size` bytes at the relative pointer at `at` plus its offset
    /// (`off`): rkyv's `check_subtree_ptr`, in positions. Returns the
    /// claim's start; the caller moves `lo` past it once the claim's own
    /// objects are checked.
    #[inline(always)]
    fn claim(&self, at: usize, off: i32, size: usize, align: usize, hi: usize) -> Option<usize> {
        let start = (at as i64).checked_add(i64::from(off))?;
        if start < self.lo as i64 {
            return None;
        }
        let start = start as usize;
        if start.checked_add(size)? > hi || (self.addr + start) & (align - 1) != 0 {
            return None;
        }
        Some(start)
    }

    /// Checks the `ArchivedString` at `at`, whose out-of-line bytes must
    /// lie below `hi`.
    #[inline(always)]
    fn string(&mut self, at: usize, hi: usize) -> Option<()> {
        let w = self.word(at)?;
        if w as u8 & 0xc0 != 0x80 {
            // Inline: up to the first 0xff byte, or all 8.
            let ff = {
                let x = !w;
                x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080
            };
            let len = if ff == 0 {
                8
            } else {
                ff.trailing_zeros() as usize / 8
            };
            let keep = if len == 8 {
                u64::MAX
            } else {
                (1u64 << (len * 8)) - 1
            };
            if w & keep & 0x8080_8080_8080_8080 == 0 {
                return Some(());
            }
            return utf8(&self.b[at..at + len]).then_some(());
        }
        let l = w as u32;
        let len = ((l & 0x3f) | ((l & !0xff) >> 2)) as usize;
        if len <= 8 {
            return None;
        }
        let start = self.claim(at, (w >> 32) as u32 as i32, len, 1, hi)?;
        let end = start + len;
        utf8(&self.b[start..end]).then_some(())?;
        self.lo = end;
        Some(())
    }

    /// Claims the array of the `ArchivedVec` at `at` (elements of `size`
    /// bytes, aligned to `align`) below `hi`: its start and length.
    #[inline(always)]
    fn array(&self, at: usize, hi: usize, size: usize, align: usize) -> Option<(usize, usize)> {
        let w = self.word(at)?;
        let n = (w >> 32) as usize;
        let start = self.claim(at, w as u32 as i32, n.checked_mul(size)?, align, hi)?;
        Some((start, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Sender, Site, Thread, WireBatch, WireRecord};
    use rkyv::rancor;
    use rkyv::util::AlignedVec;

    struct Rnd(u64);

    impl Rnd {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    /// Strings around the inline/out-of-line boundary, non-ASCII ones,
    /// and long ones.
    fn text(r: &mut Rnd) -> String {
        const PIECES: [&str; 8] = ["", "a", "héllo", "🦀", "12345678", "123456789", "ÿ", "k0"];
        let mut s = String::new();
        for _ in 0..r.below(4) {
            s.push_str(PIECES[r.below(PIECES.len())]);
        }
        if r.below(10) == 0 {
            s.push_str(&"x".repeat(r.below(300)));
        }
        s
    }

    fn batch(r: &mut Rnd) -> WireBatch {
        let sites = r.below(4);
        let threads = r.below(3);
        WireBatch {
            sender: Sender {
                host: text(r),
                pid: r.below(100) as u32,
                program: text(r),
                start_ns: 1,
                instance: r.below(1000) as u64,
            },
            first_seq: r.below(10) as u64,
            dropped: 0,
            sites: (0..sites)
                .map(|_| Site {
                    target: text(r),
                    module: text(r),
                    file: text(r),
                    func: text(r),
                    line: 3,
                    format: text(r),
                    args: r.below(3) as u32,
                    keys: (0..r.below(4)).map(|_| text(r)).collect(),
                })
                .collect(),
            threads: (0..threads)
                .map(|_| Thread {
                    id: 5,
                    name: text(r),
                })
                .collect(),
            records: (0..r.below(6))
                .map(|i| WireRecord {
                    time_ns: 7,
                    seq: i as u64,
                    level: 20,
                    kind: b'L',
                    site: r.below(sites + 1) as u32,
                    thread: r.below(threads + 1) as u32,
                    task: text(r),
                    message: text(r),
                    error: text(r),
                    values: (0..r.below(20)).map(|_| r.below(256) as u8).collect(),
                    ..WireRecord::default()
                })
                .collect(),
        }
    }

    /// Damage of the kinds that reach every check: flipped bits, the
    /// bytes of a length or tag, relative pointers moved by a few bytes
    /// (overlaps, order, alignment), cuts and growth at either end.
    fn damage(r: &mut Rnd, a: &mut Vec<u8>) {
        if a.is_empty() {
            a.push(r.below(256) as u8);
            return;
        }
        let n = a.len();
        match r.below(8) {
            0 => a[r.below(n)] ^= 1 << r.below(8),
            1 => a[r.below(n)] = [0x80, 0xff, 0xc0, 0x00, 0x7f, 0xbf][r.below(6)],
            2 | 3 => {
                // A 4-aligned word (a relative pointer or a length) moved.
                let i = r.below(n / 4) * 4;
                if i + 4 <= n {
                    let v = i32::from_le_bytes(a[i..i + 4].try_into().unwrap());
                    let d = [-16, -9, -8, -4, -1, 1, 4, 8, 9, 16, 64][r.below(11)];
                    a[i..i + 4].copy_from_slice(&v.wrapping_add(d).to_le_bytes());
                }
            }
            4 => {
                let i = r.below(n / 4) * 4;
                if i + 4 <= n {
                    let v = [0u32, 1, 0x80, 0xbf, 0x7fff_ffff, 0x8000_0000, u32::MAX][r.below(7)];
                    a[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            5 => a.truncate(n - 1 - r.below(n.min(16))),
            6 => {
                for _ in 0..1 + r.below(8) {
                    a.insert(0, r.below(256) as u8);
                }
            }
            _ => a.drain(..1 + r.below(n.min(8))).for_each(drop),
        }
    }

    fn rkyv_accepts(a: &[u8]) -> bool {
        rkyv::access::<ArchivedWireBatch, rancor::Failure>(a).is_ok()
    }

    /// The agreement test: on thousands of random archives, each damaged
    /// again and again, at every alignment mod 8, `check_archive` and
    /// `rkyv::access` both accept or both refuse.
    #[test]
    fn agrees_with_rkyv_access_on_random_and_damaged_archives() {
        let mut r = Rnd(0x853c_49e6_748f_ea9b);
        let (mut accepted, mut refused) = (0u32, 0u32);
        let mut buf = AlignedVec::<16>::new();
        for _ in 0..10_000 {
            let b = batch(&mut r);
            let mut a = rkyv::to_bytes::<rancor::Panic>(&b).unwrap().to_vec();
            for round in 0..20 {
                if round > 0 {
                    damage(&mut r, &mut a);
                }
                let shift = if r.below(4) == 0 { r.below(8) } else { 0 };
                buf.clear();
                buf.extend_from_slice(&[0u8; 8][..shift]);
                buf.extend_from_slice(&a);
                let bytes = &buf[shift..];
                let want = rkyv_accepts(bytes);
                assert_eq!(
                    check_archive(bytes).is_some(),
                    want,
                    "{bytes:?} at +{shift}"
                );
                // The sender alone: refused only where the whole is, and
                // the same sender where the whole is accepted.
                match sender_of(bytes) {
                    None => assert!(!want, "{bytes:?} at +{shift}"),
                    Some(s) if want => {
                        let root = rkyv::access::<ArchivedWireBatch, rancor::Failure>(bytes);
                        assert!(std::ptr::eq(s, &root.unwrap().sender));
                    }
                    Some(s) => {
                        let _ = (s.host.as_str().len(), s.program.as_str().len());
                    }
                }
                if want {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // Both sides of the boundary were exercised.
        assert!(
            accepted > 10_000 && refused > 100_000,
            "{accepted} {refused}"
        );
    }

    /// `access_batch` as it was before the archive check was fused into
    /// its record pass: `rkyv::access`, then the record checks.
    fn access_batch_before(body: &[u8]) -> Result<&ArchivedWireBatch, &'static str> {
        use crate::limits;
        use crate::wire::values::values_count;
        let archive = super::super::frame::archive_of(body).map_err(|e| e.reason())?;
        let batch =
            rkyv::access::<ArchivedWireBatch, rancor::Failure>(archive).map_err(|_| "invalid")?;
        let thread_name = batch
            .threads
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(0);
        let (host, program) = (batch.sender.host.len(), batch.sender.program.len());
        if thread_name > limits::MAX_NAME || host > limits::MAX_NAME || program > limits::MAX_NAME {
            return Err("name_too_long");
        }
        let site_cost = |s: &ArchivedSite| {
            let keys: usize = s.keys.iter().map(|k| k.len()).sum();
            (s.target.len() + s.module.len() + s.file.len() + s.func.len() + s.format.len() + keys)
                as u64
        };
        let per_record = (host + program + thread_name) as u64;
        let budget = limits::budget(body.len()) - body.len() as u64;
        let mut shared = 0u64;
        for (i, r) in batch.records.iter().enumerate() {
            if r.seq.to_native() != batch.first_seq.to_native().wrapping_add(i as u64) {
                return Err("sequence_mismatch");
            }
            let Some(site) = batch.sites.get(r.site.to_native() as usize) else {
                return Err("bad_site");
            };
            if r.thread.to_native() as usize >= batch.threads.len() {
                return Err("bad_thread");
            }
            let fixed = site.args.to_native() as usize + site.keys.len();
            let Some(n) = values_count(&r.values, fixed) else {
                return Err("bad_values");
            };
            if fixed + (n - fixed) / 2 > limits::MAX_FIELDS {
                return Err("too_many_fields");
            }
            if !limits::task_ok(&r.task) {
                return Err("task_too_deep");
            }
            shared += per_record + site_cost(site);
        }
        if shared > budget {
            return Err("too_expanded");
        }
        Ok(batch)
    }

    /// The fused pass of `access_batch` (archive check and record checks
    /// at once) gives the same result, reason included, as the two passes
    /// one after the other, on batches that fail every check, damaged
    /// again and again.
    #[test]
    fn access_batch_agrees_with_rkyv_then_record_checks() {
        use crate::record::ValueRef;
        use crate::wire::{access_batch, put_value};
        let mut r = Rnd(0x9e37_79b9_7f4a_7c15);
        let mut seen = std::collections::BTreeMap::<&str, u32>::new();
        for _ in 0..5_000 {
            let mut b = batch(&mut r);
            // Mostly records that pass the record checks, then spoil some.
            for (i, rec) in b.records.iter_mut().enumerate() {
                rec.seq = b.first_seq + i as u64;
                rec.site = r.below(b.sites.len().max(1)) as u32;
                rec.thread = r.below(b.threads.len().max(1)) as u32;
                rec.values.clear();
                let fixed = b
                    .sites
                    .get(rec.site as usize)
                    .map_or(0, |s| s.args as usize + s.keys.len());
                for _ in 0..fixed {
                    put_value(
                        &mut rec.values,
                        [
                            ValueRef::U64(7),
                            ValueRef::Str("value"),
                            ValueRef::Bool(true),
                            ValueRef::Null,
                        ][r.below(4)],
                    );
                }
                if r.below(4) == 0 {
                    rec.task = format!("r{}", "/1".repeat(r.below(3) * 60));
                }
            }
            if r.below(10) == 0 {
                b.sender.host = "h".repeat(300);
            }
            let mut body = b.to_body().to_vec();
            for round in 0..10 {
                if round > 0 {
                    let mut a = body.split_off(8);
                    damage(&mut r, &mut a);
                    let len = a.len() as u32;
                    body.extend_from_slice(&a);
                    if r.below(8) > 0 {
                        body[4..8].copy_from_slice(&len.to_le_bytes());
                    }
                }
                let mut buf = AlignedVec::<16>::new();
                buf.extend_from_slice(&body);
                let want = access_batch_before(&buf);
                let got = access_batch(&buf).map_err(|e| e.reason());
                match (&want, &got) {
                    (Ok(w), Ok(g)) => assert!(std::ptr::eq(*w, *g)),
                    _ => assert_eq!(want.map(|_| ()), got.map(|_| ()), "{body:?}"),
                }
                *seen.entry(want.err().unwrap_or("ok")).or_default() += 1;
            }
        }
        // Each outcome was reached.
        for reason in [
            "ok",
            "invalid",
            "bad_site",
            "bad_thread",
            "bad_values",
            "sequence_mismatch",
            "name_too_long",
            "task_too_deep",
        ] {
            assert!(
                seen.get(reason).copied().unwrap_or(0) > 20,
                "{reason}: {seen:?}"
            );
        }
    }

    /// A batch as a busy client sends it (two call sites, runs of
    /// records of one shape, so validation's shapes hit), with every byte
    /// after the prefix set to each of a few values in turn: `access_batch`
    /// gives what the two passes give, reason included, at every offset.
    #[test]
    fn every_byte_damaged_agrees_with_the_two_pass_reference() {
        use crate::record::ValueRef;
        use crate::wire::{access_batch, put_value};
        let site = |args: u32, keys: &[&str]| Site {
            target: "app".into(),
            format: "record {} of {}".into(),
            args,
            keys: keys.iter().map(|&k| k.into()).collect(),
            ..Site::default()
        };
        let mut b = WireBatch {
            sender: Sender {
                host: "web-1".into(),
                program: "p".into(),
                ..Sender::default()
            },
            first_seq: 10,
            sites: vec![site(2, &["k0"]), site(1, &[])],
            threads: vec![Thread {
                id: 1,
                name: "main".into(),
            }],
            ..WireBatch::default()
        };
        for i in 0..24u64 {
            let s = usize::from(i % 5 == 4);
            let mut values = Vec::new();
            put_value(&mut values, ValueRef::U64(i * 977));
            if s == 0 {
                put_value(&mut values, ValueRef::Str("thread"));
                put_value(&mut values, ValueRef::Bool(i % 2 == 0));
            } else {
                put_value(&mut values, ValueRef::Str("key"));
                put_value(&mut values, ValueRef::I64(-(i as i64)));
            }
            b.records.push(WireRecord {
                seq: 10 + i,
                site: s as u32,
                message: if i == 7 {
                    "x".repeat(20)
                } else {
                    String::new()
                },
                task: if i == 9 { "t/1".into() } else { String::new() },
                values,
                ..WireRecord::default()
            });
        }
        let body = b.to_body().to_vec();
        let mut buf = AlignedVec::<16>::new();
        let mut seen = std::collections::BTreeMap::<&str, u32>::new();
        for at in 8..body.len() {
            for x in [body[at] ^ 1, body[at] ^ 0x80, 0, 0xff, 5] {
                let mut d = body.clone();
                d[at] = x;
                buf.clear();
                buf.extend_from_slice(&d);
                let want = access_batch_before(&buf);
                let got = access_batch(&buf).map_err(|e| e.reason());
                match (&want, &got) {
                    (Ok(w), Ok(g)) => assert!(std::ptr::eq(*w, *g)),
                    _ => assert_eq!(want.map(|_| ()), got.map(|_| ()), "byte {at} = {x}"),
                }
                *seen.entry(want.err().unwrap_or("ok")).or_default() += 1;
            }
        }
        for reason in ["ok", "invalid", "bad_values", "sequence_mismatch"] {
            assert!(
                seen.get(reason).copied().unwrap_or(0) > 5,
                "{reason}: {seen:?}"
            );
        }
    }

    /// Every string length around the inline boundary and every byte
    /// after it, intact.
    #[test]
    fn accepts_what_rkyv_writes() {
        for len in 0..40 {
            for s in ["a".repeat(len), "é".repeat(len / 2), "\u{7f}".repeat(len)] {
                let b = WireBatch {
                    sender: Sender {
                        host: s.clone(),
                        ..Sender::default()
                    },
                    records: vec![WireRecord {
                        message: s.clone(),
                        values: s.clone().into_bytes(),
                        ..WireRecord::default()
                    }],
                    ..WireBatch::default()
                };
                let a = rkyv::to_bytes::<rancor::Panic>(&b).unwrap();
                assert!(check_archive(&a).is_some(), "{s:?}");
                assert!(rkyv_accepts(&a));
            }
        }
        assert!(check_archive(&[]).is_none());
        assert!(check_archive(&AlignedVec::<16>::new()).is_none());
    }
}
