//! The logging thread's side: its ring, reached through a thread-local.
//!
//! Steady state for one call: a thread-local access, a `RefCell` borrow
//! flag, the reserve (local arithmetic; the shared `tail` is read only when
//! the cached one says the ring may be full), the writes, and one release
//! store. No allocation, lock or system call. The first call on a thread
//! takes a ring from the pool (a lock, maybe an allocation), and a thread
//! that exits closes its ring so the sender recycles it.

use super::PIPELINE;
use crate::context;
use crate::entry::{self, Cursor};
use crate::ring::Producer;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering;

struct Local {
    /// This thread's producer. `ManuallyDrop`, so that the thread-local
    /// has no destructor of its own and its accesses no "still alive?"
    /// check; [`Closer`] drops it when the thread exits.
    producer: Option<ManuallyDrop<Producer>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { producer: None }) };
    /// Registered with the thread's first ring; its destructor closes the
    /// ring when the thread exits.
    static CLOSER: Closer = const { Closer };
}

/// Drops the thread's producer (closing its ring, for the sender to
/// recycle) when the thread exits.
struct Closer;

impl Drop for Closer {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|cell| {
            if let Ok(mut local) = cell.try_borrow_mut() {
                if let Some(p) = local.producer.take() {
                    drop(ManuallyDrop::into_inner(p));
                }
            }
        });
    }
}

/// Reserves `len` bytes in this thread's ring, lets `write` fill them and
/// publishes the entry; drops and counts the record when that cannot be done
/// without blocking (unless the pipeline blocks when full).
#[inline(always)]
pub(crate) fn with_entry(len: usize, write: impl FnOnce(&mut [u8])) {
    let ok = LOCAL
        .try_with(|cell| {
            let Ok(mut local) = cell.try_borrow_mut() else {
                return false; // re-entrant call from inside a log call
            };
            let producer: &mut Producer = match &mut local.producer {
                Some(p) => p,
                slot @ None => match register(slot) {
                    Some(p) => p,
                    None => return false,
                },
            };
            if len > producer.max_len() {
                return false;
            }
            let buf = match producer.reserve(len) {
                Some(buf) => buf,
                None => match wait_for_room(producer, len) {
                    Some(buf) => buf,
                    None => return true, // counted in the ring
                },
            };
            write(buf);
            producer.commit(len);
            nudge(producer);
            true
        })
        .unwrap_or(false);
    if !ok {
        count_unringed_drop();
    }
}

/// [`with_entry`] for an entry whose size is known only once it is
/// written: reserves `guess` bytes (a multiple of 8), and `write` fills
/// them and returns `Ok(used)`, the entry's length (a multiple of 8, at
/// most `guess`), which is published; or `Err(needed)` when the entry did
/// not fit, and then it runs once more in a reservation of `needed` bytes
/// (nothing of the first attempt is published). A record that does not
/// fit the second time either (its `Display` printed more) is dropped and
/// counted, as are records larger than half the ring.
#[inline(always)]
pub(crate) fn with_entry_sized(
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, usize>,
) {
    let ok = LOCAL
        .try_with(|cell| {
            let Ok(mut local) = cell.try_borrow_mut() else {
                return false; // re-entrant call from inside a log call
            };
            let producer: &mut Producer = match &mut local.producer {
                Some(p) => p,
                slot @ None => match register(slot) {
                    Some(p) => p,
                    None => return false,
                },
            };
            let mut len = guess;
            for _attempt in 0..2 {
                if len > producer.max_len() {
                    return false;
                }
                let buf = match producer.reserve(len) {
                    Some(buf) => buf,
                    None => match wait_for_room(producer, len) {
                        Some(buf) => buf,
                        None => return true, // counted in the ring
                    },
                };
                match write(buf) {
                    Ok(used) => {
                        debug_assert!(used <= len && used % 8 == 0 && used >= 8);
                        producer.commit(used);
                        nudge(producer);
                        return true;
                    }
                    Err(needed) => len = needed.max(len + 8),
                }
            }
            false
        })
        .unwrap_or(false);
    if !ok {
        count_unringed_drop();
    }
}

/// Counts a record dropped before it reached a ring (re-entrant call, no
/// ring left, thread exiting).
#[cold]
pub(crate) fn count_unringed_drop() {
    if let Some(shared) = PIPELINE.get() {
        shared
            .counters
            .dropped_unringed
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cold]
#[inline(never)]
fn register(slot: &mut Option<ManuallyDrop<Producer>>) -> Option<&mut Producer> {
    // The closer first: a thread whose closer has already run (a log call
    // from another thread-local's destructor) gets no ring, rather than
    // one that nobody would close.
    CLOSER.try_with(|_| ()).ok()?;
    let ring = PIPELINE.get()?.take_ring()?;
    Some(slot.insert(ManuallyDrop::new(Producer::new(ring))))
}

/// Wakes a sleeping sender once the ring is half full, so bursts do not wait
/// for its idle timer.
#[inline(always)]
fn nudge(producer: &mut Producer) {
    // The cached bound costs no shared read; only when it passes half the
    // ring is the consumer's position read again, and the sender woken if
    // the ring really is half full.
    if producer.maybe_half_full() {
        wake_if_half_full(producer);
    }
}

#[cold]
#[inline(never)]
fn wake_if_half_full(producer: &mut Producer) {
    producer.refresh_tail();
    if producer.maybe_half_full() {
        if let Some(shared) = PIPELINE.get() {
            shared.wake_sender();
        }
    }
}

/// The ring is full: wait for the sender to make room if the pipeline
/// blocks when full (returning the reserved space); else, if the pipeline
/// grows when full, continue in a second ring while the memory bound
/// allows ([`Shared::take_ring_after`]: the full one is closed, and the
/// sender reads the new one once it has read the full one, so the thread's
/// records stay in order); else drop the record and count it in the ring
/// (`None`).
///
/// [`Shared::take_ring_after`]: super::Shared::take_ring_after
#[cold]
#[inline(never)]
fn wait_for_room(producer: &mut Producer, len: usize) -> Option<&mut [u8]> {
    let shared = PIPELINE.get()?;
    if !shared.config.block_when_full {
        if shared.config.grow_when_full {
            if let Some(ring) = shared.take_ring_after(producer.ring()) {
                // Dropping the old producer closes the full ring.
                *producer = Producer::new(ring);
                shared.wake_sender();
                return producer.reserve(len);
            }
        }
    } else {
        let backoff = crossbeam_utils::Backoff::new();
        while !shared.stopping.load(Ordering::Acquire) {
            shared.wake_sender();
            if producer.has_room(len) {
                return producer.reserve(len);
            }
            if backoff.is_completed() {
                // Until the sender has read from the rings (it wakes us);
                // the bound only covers a wake-up that cannot come (the
                // pipeline stopping).
                shared.room.wait(
                    || producer.has_room(len),
                    std::time::Duration::from_millis(1),
                );
            } else {
                backoff.snooze();
            }
        }
    }
    producer.count_dropped();
    shared.wake_sender();
    None
}

/// Emits a native-macro record. Used by the macros through `__private`.
#[inline(always)]
pub fn emit_native<A: entry::EncodeList, F: entry::EncodeList>(
    callsite: &'static crate::Callsite,
    args: &A,
    fields: &F,
) {
    let (ts, is_tsc) = crate::clock::raw_now();
    context::with_current(|section| {
        let task_len = section.map_or(0, |s| s.len());
        let (len, mut flags) = native_size(args, fields, task_len, is_tsc);
        if section.is_some() {
            flags |= entry::FLAG_TASK;
        }
        with_entry(len, |buf: &mut [u8]| {
            let mut w = Cursor::new(buf, 0);
            put_native(&mut w, len, flags, ts, callsite, args, fields);
            if let Some(section) = section {
                section.write(&mut w);
            }
        });
    })
}

/// A native entry's length, with a task section of `task_len` bytes, and
/// its flags but the task's: the written end before the task section
/// ([`entry::end_flags`]: a constant for arguments and fields of fixed
/// sizes; read only when there is no task section) and the clock's.
#[inline(always)]
fn native_size<A: entry::EncodeList, F: entry::EncodeList>(
    args: &A,
    fields: &F,
    task_len: usize,
    is_tsc: bool,
) -> (usize, u8) {
    let body = entry::HEADER + 8 + args.encoded_len() + fields.encoded_len();
    let tsc = if is_tsc { entry::FLAG_TSC } else { 0 };
    (entry::align8(body + task_len), entry::end_flags(body) | tsc)
}

/// Writes a native entry of `len` bytes up to its task section: the
/// header with `flags` (from [`native_size`], which records where its
/// fields end), the call site, `args` and `fields`.
#[inline(always)]
fn put_native<A: entry::EncodeList, F: entry::EncodeList>(
    w: &mut Cursor<'_>,
    len: usize,
    flags: u8,
    ts: u64,
    callsite: &'static crate::Callsite,
    args: &A,
    fields: &F,
) {
    put_native_head(w, len, flags, ts, callsite);
    args.encode(w);
    fields.encode(w);
}

/// A native entry's header and call-site pointer: what every native entry
/// (a log call's, a task status record's) starts with.
#[inline(always)]
fn put_native_head(
    w: &mut Cursor<'_>,
    len: usize,
    flags: u8,
    ts: u64,
    callsite: &'static crate::Callsite,
) {
    entry::put_header(
        w,
        len,
        entry::NATIVE,
        callsite.level,
        callsite.kind,
        flags,
        ts,
    );
    w.put_u64(callsite as *const crate::Callsite as u64);
}

/// Emits a task status record (start or end) in the native encoding, with
/// timestamp `(ts, is_tsc)` from [`crate::clock::raw_now`]: static metadata and typed `fields` from `callsite` (whose format is empty), the
/// caller's `file` and `line`, the message `prefix` + `message`, an optional
/// error formatted straight into the ring, and `section`, the task the
/// record belongs to. Allocates nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_status<F: entry::EncodeList>(
    (ts, is_tsc): (u64, bool),
    callsite: &'static crate::Callsite,
    file: &str,
    line: u32,
    prefix: &str,
    message: &str,
    fields: &F,
    error: Option<&dyn std::fmt::Display>,
    section: &context::Section<'_>,
) {
    let error_len = error.map(entry::display_len);
    let body = entry::HEADER
        + 8
        + 4
        + entry::str_len(file)
        + 4
        + prefix.len()
        + message.len()
        + fields.encoded_len()
        + error_len.map_or(0, |n| 4 + n);
    let len = entry::align8(body + section.len());
    let mut flags = entry::FLAG_SITE | entry::FLAG_TASK | entry::end_flags(body);
    if is_tsc {
        flags |= entry::FLAG_TSC;
    }
    if error.is_some() {
        flags |= entry::FLAG_ERROR;
    }
    with_entry(len, |buf| {
        let mut w = Cursor::new(buf, 0);
        put_native_head(&mut w, len, flags, ts, callsite);
        w.put_u32(line);
        w.put_str(file);
        w.put_u32((prefix.len() + message.len()) as u32);
        w.put_bytes(prefix.as_bytes());
        w.put_bytes(message.as_bytes());
        fields.encode(&mut w);
        if let (Some(error), Some(n)) = (error, error_len) {
            w.put_display(error, n);
        }
        section.write(&mut w);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Encode, EncodeList, Reader};
    use crate::pipeline::open_batch::native_values;
    use crate::record::Value;
    use crate::ring::{new_storage, Producer, Ring};
    use std::sync::Arc;

    /// Any number of values of any kind, as a native call's arguments.
    struct List(Vec<Value>);

    impl EncodeList for List {
        const LEN: usize = 0;
        fn encoded_len(&self) -> usize {
            self.0.iter().map(Encode::encoded_len).sum()
        }
        fn encode(&self, w: &mut Cursor<'_>) {
            for v in &self.0 {
                v.encode(w);
            }
        }
    }

    static SITE: crate::Callsite = crate::Callsite::new(20, b'L', "t", "m", "f.rs", 1, "", 0, &[]);

    /// A value of any kind, drawn by `rng`.
    fn random_value(rng: &mut fastrand::Rng) -> Value {
        match rng.u8(..6) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            2 => Value::I64(rng.i64(..)),
            3 => Value::U64(rng.u64(..)),
            4 => Value::F64(f64::from_bits(rng.u64(..))),
            _ => Value::Str("é-x".repeat(rng.usize(..12))),
        }
    }

    /// The sender takes a native entry's values as the rest of the entry
    /// up to the end its flags record; those are exactly the bytes the
    /// value-by-value walk finds, for every value kind and count, every
    /// padding (0-7 bytes, over stale bytes of earlier entries), entries
    /// of the largest size a ring takes, and entries written at the ring's
    /// start after its end was padded.
    #[test]
    fn recorded_values_end_is_the_walked_one() {
        let ring = Arc::new(Ring::new(new_storage(1024), 1, ""));
        let mut p = Producer::new(ring.clone());
        let max = p.max_len();
        let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
        let (mut checked, mut largest, mut at_start) = (0, 0, 0);
        let mut start: Option<usize> = None;
        for i in 0..20_000u64 {
            let values = if i % 50 == 0 {
                // The largest entries: one string filling the entry to
                // `max` less 0-7 bytes of padding.
                let s = "s".repeat(max - (entry::HEADER + 8 + 5) - (i / 50 % 8) as usize);
                vec![Value::Str(s)]
            } else {
                (0..rng.usize(..8))
                    .map(|_| random_value(&mut rng))
                    .collect()
            };
            let list = List(values);
            let written = entry::HEADER + 8 + EncodeList::encoded_len(&list);
            let (len, flags) = native_size(&(), &list, 0, false);
            assert!(len <= max);
            let buf = match p.reserve(len) {
                Some(buf) => buf,
                None => {
                    ring.consume(usize::MAX, |_| ());
                    p.refresh_tail();
                    p.reserve(len).expect("room in an empty ring")
                }
            };
            let mut w = Cursor::new(buf, 0);
            put_native(&mut w, len, flags, 7, &SITE, &(), &list);
            assert_eq!(w.pos(), written);
            p.commit(len);
            let n = list.0.len();
            ring.consume(usize::MAX, |e| {
                let at = e.as_ptr() as usize;
                let base = *start.get_or_insert(at);
                at_start += usize::from(at == base);
                largest += usize::from(e.len() == max);
                let mut r = Reader::new(e, entry::HEADER + 8);
                let walked = r.clone().value_span(n).expect("walkable values");
                let span = native_values(&mut r, e[7], n).expect("recorded end");
                assert_eq!(span, walked, "entry {i}");
                assert_eq!(span.len(), written - entry::HEADER - 8);
                assert_eq!(r.remaining(), len - written);
                checked += 1;
            });
        }
        assert_eq!(checked, 20_000);
        assert!(largest >= 50, "{largest} entries of the largest size");
        assert!(at_start >= 100, "{at_start} entries at the ring's start");
    }
}
