//! FACADE entries: a `log` record of a cached [`Site`] written straight
//! into the thread's ring (layout in [`crate::entry`]).
//!
//! The entry's size is known only once the message is formatted, so the
//! call reserves the largest size its site has needed so far (the site's
//! `size_hint`), writes, and commits what it used. A record that does not
//! fit learns its size on the way (the [`Slot`] counts what it could not
//! write), raises the hint (up to [`MAX_SIZE_HINT`]), and is written once
//! more into a reservation of that size ([`local::with_entry_sized`]).
//! Reserving the hint rather than the exact size means a nearly full ring
//! turns a record away (drops or waits, as configured) up to a hint's
//! worth of bytes earlier than an exact reservation would.

use super::sites::Site;
use super::typed::{Typed, ValueSink};
use crate::context;
use crate::entry::{self, Cursor, Encode};
use crate::pipeline::local;
use std::fmt;
use std::sync::atomic::Ordering;

/// Encodes `record`, of `site`, as a FACADE entry.
///
/// One frame for the whole record outside a task (the common case): the
/// task check is one thread-local read, and only a record inside a task
/// goes through [`context::with_current`]'s closure ([`emit_in_task`]).
#[inline(never)]
pub(super) fn emit(site: &'static Site, record: &log::Record<'_>) {
    let ts = crate::clock::raw_now();
    if context::maybe_in_task() {
        emit_in_task(site, record, ts);
    } else {
        write::<false>(site, record, ts, None);
    }
}

/// [`emit`] when the thread may be inside a task.
#[cold]
#[inline(never)]
fn emit_in_task(site: &'static Site, record: &log::Record<'_>, ts: (u64, bool)) {
    context::with_current(move |section| write::<true>(site, record, ts, section));
}

/// Writes the entry, with the task `section` if any. `IN_TASK` only keeps
/// the two callers' instances apart, so that the one outside a task has
/// the ring's thread-local access inlined (shared, it is a call).
#[inline(always)]
fn write<const IN_TASK: bool>(
    site: &'static Site,
    record: &log::Record<'_>,
    (ts, is_tsc): (u64, bool),
    section: Option<&context::Section<'_>>,
) {
    let task_len = section.map_or(0, |s| s.len());
    let args = record.args();
    let literal = args.as_str();
    let mut flags = if is_tsc { entry::FLAG_TSC } else { 0 };
    if section.is_some() {
        flags |= entry::FLAG_TASK;
    }
    if literal.is_some() {
        flags |= entry::FLAG_LITERAL;
    }
    let guess = entry::align8(site.size_hint.load(Ordering::Relaxed) as usize + task_len);
    local::with_entry_sized(guess, |buf| {
        let mut w = Slot {
            buf,
            pos: entry::HEADER,
        };
        // The fixed part in one move: the site, the field count (patched
        // below), and a literal's length and address; a formatted message
        // then overwrites the last 12 bytes with its length and text.
        if w.buf.len() < FIXED_END {
            return Err(FIXED_END); // not with a site's size hint (>= 128)
        }
        let count_at = w.pos + 8;
        let (msg_len, msg_at) = literal.map_or((0, 0), |s| (s.len() as u32, s.as_ptr() as u64));
        w.put_fixed(site as *const Site as u64, msg_len, msg_at);
        if literal.is_none() {
            w.pos = count_at + 4;
            w.formatted(|w| {
                let _ = fmt::write(w, *args);
            });
        }
        // Most records have no key/values: `count` (a value back in a
        // register) says so cheaper than a visit of nothing (a `Result`
        // through memory, the visitor set up); the fixed part's zero
        // count then stands.
        let kvs = record.key_values();
        if kvs.count() != 0 {
            let mut fields = Fields { w: &mut w, n: 0 };
            let _ = kvs.visit(&mut fields);
            let n = fields.n;
            w.patch_u32(count_at, n);
        }
        let body = w.pos;
        let len = entry::align8(body + task_len);
        if len > w.buf.len() {
            grow_hint(site, body);
            return Err(len);
        }
        if let Some(section) = section {
            section.write(&mut Cursor::new(w.buf, body));
        }
        entry::put_header(
            &mut Cursor::new(w.buf, 0),
            len,
            entry::FACADE,
            site.level,
            b'L',
            flags,
            ts,
        );
        Ok(len)
    });
}

/// Where the fixed part of a FACADE entry ends: the header, the site, the
/// field count, a literal message's length and address.
const FIXED_END: usize = entry::HEADER + 24;

/// The largest size hint a site keeps: a site that once logged a large
/// record would otherwise reserve that much for every later one, and in a
/// nearly full ring find no room for records that would fit. Records
/// larger than this are formatted twice (once to learn their size).
const MAX_SIZE_HINT: usize = 1024;

/// Raises `site`'s size hint to `body` bytes (without a task section), up
/// to [`MAX_SIZE_HINT`].
#[cold]
#[inline(never)]
fn grow_hint(site: &Site, body: usize) {
    site.size_hint
        .fetch_max(body.min(MAX_SIZE_HINT) as u32, Ordering::Relaxed);
}

/// A reserved ring slot being filled. Invariant: bytes are written only
/// inside `buf`; `pos` counts every byte asked for, written or not, so a
/// record that overflows the slot ends with `pos` = the size it needs.
struct Slot<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Slot<'_> {
    /// A cursor over the next `n` bytes when they fit (the position moves
    /// by `n` either way).
    #[inline(always)]
    fn next(&mut self, n: usize) -> Option<Cursor<'_>> {
        let at = self.pos;
        self.pos += n;
        self.buf.get_mut(at..at + n).map(|b| Cursor::new(b, 0))
    }

    #[inline(always)]
    fn put_str(&mut self, s: &str) {
        if let Some(mut c) = self.next(entry::str_len(s)) {
            c.put_str(s);
        }
    }

    /// The site's address, a zero `u32`, then `len` and `at`: 24 bytes,
    /// one bounds check (which the caller's check of [`FIXED_END`] makes
    /// redundant).
    #[inline(always)]
    fn put_fixed(&mut self, site: u64, len: u32, at: u64) {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&site.to_ne_bytes());
        b[12..16].copy_from_slice(&len.to_ne_bytes());
        b[16..].copy_from_slice(&at.to_ne_bytes());
        if let Some(mut c) = self.next(24) {
            c.put_array(b);
        }
    }

    /// Overwrites the `u32` at `at` (written before, so inside the slot
    /// unless the slot has overflowed).
    #[inline(always)]
    fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(b) = self.buf.get_mut(at..at + 4) {
            b.copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// A length-prefixed string written by `f` in place.
    #[inline(always)]
    fn formatted(&mut self, f: impl FnOnce(&mut Self)) {
        let at = self.pos;
        self.pos += 4;
        f(self);
        let len = (self.pos - at - 4) as u32;
        self.patch_u32(at, len);
    }
}

impl fmt::Write for Slot<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // The formatter's pieces, several per message: one check and a
        // short copy each (callgrind: 767 -> 752 instructions per call of
        // three formatted arguments, against a `Cursor` per piece).
        let at = self.pos;
        self.pos = at + s.len();
        if self.pos <= self.buf.len() {
            // SAFETY: `at + s.len() <= buf.len()` (checked above), so the
            // bytes are inside the slot; `s` cannot overlap the slot, which
            // is borrowed mutably.
            unsafe { entry::copy_short(self.buf.as_mut_ptr().add(at), s.as_bytes()) };
        }
        Ok(())
    }
}

impl ValueSink for Slot<'_> {
    #[inline(always)]
    fn encoded<E: Encode>(&mut self, value: &E) {
        if let Some(mut c) = self.next(value.encoded_len()) {
            value.encode(&mut c);
        }
    }

    fn displayed(&mut self, value: &dyn fmt::Display) {
        if let Some(mut c) = self.next(1) {
            c.put_u8(entry::TAG_STR);
        }
        self.formatted(|w| {
            let _ = fmt::write(w, format_args!("{value}"));
        });
    }
}

/// The record's key/values, each a key string and a typed value.
struct Fields<'s, 'a> {
    w: &'s mut Slot<'a>,
    n: u32,
}

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_, '_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.w.put_str(key.as_str());
        let _ = value.visit(Typed(&mut *self.w));
        self.n += 1;
        Ok(())
    }
}
