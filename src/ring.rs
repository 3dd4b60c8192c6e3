//! A single-producer single-consumer byte ring: one per logging thread.
//!
//! The producer (the thread that logs) reserves a contiguous, 8-byte aligned
//! region, writes an entry into it, and publishes it with one release store
//! of `head`. The consumer (the sender thread) reads entries between `tail`
//! and `head` and gives the space back with one release store of `tail`.
//! Neither side ever waits for the other: a full ring is reported to the
//! producer, which drops (and counts) or retries, as configured.
//!
//! Entries never wrap: when an entry does not fit before the end of the
//! buffer, the producer fills the rest with a padding marker and starts at
//! offset 0. Every entry starts with a little `u32` length that includes
//! itself; [`PAD`] marks padding.
//!
//! Positions are monotonic `usize` counters (wrapping is not a concern: at
//! 1 GB/s a 64-bit counter lasts 584 years); the buffer offset is
//! `position & mask`.
//!
//! A ring outlives its thread: once retired (closed and read to the end)
//! the sender gives it back to the pool ([`crate::ring_pool`]), which
//! [`Ring::reset`]s it and hands it to the next thread that needs one, so
//! growing into another ring allocates nothing.
//!
//! The protocol is model-checked with loom (tests/loom_ring.rs, which
//! compiles this file with `--cfg distlog_loom`): every interleaving of a producer
//! and a consumer over a small ring, wrap-around and a full ring included,
//! delivers each entry once, in order and intact, with every buffer access
//! ordered by the `head`/`tail` handover, and counts the dropped ones; and
//! a full ring continued in a recycled one keeps the entries in order.

use self::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::sync::Arc;

/// The atomics and the lock: std's, or loom's when the loom models compile
/// this file (`cfg(distlog_loom)` in a test build; the library itself
/// always gets std's).
pub(crate) mod sync {
    #[cfg(all(distlog_loom, test))]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    #[cfg(all(distlog_loom, test))]
    pub(crate) use loom::sync::{Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::Ordering;
    #[cfg(not(all(distlog_loom, test)))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    #[cfg(not(all(distlog_loom, test)))]
    pub(crate) use std::sync::{Mutex, MutexGuard};
}

/// Which buffer bytes each side touches, announced for the loom models:
/// one loom cell per 8-byte word, written when the producer owns the word
/// and read when the consumer does, so that loom reports any buffer access
/// that the `head`/`tail` handover does not order as a data race. Outside
/// the models it is empty and its methods compile to nothing.
struct Accesses {
    #[cfg(all(distlog_loom, test))]
    words: Box<[loom::cell::UnsafeCell<()>]>,
}

impl Accesses {
    #[cfg_attr(not(all(distlog_loom, test)), allow(unused_variables))]
    fn new(words: usize) -> Accesses {
        Accesses {
            #[cfg(all(distlog_loom, test))]
            words: (0..words)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
        }
    }

    /// The producer writes (or may write) bytes `[idx, idx + len)`.
    #[inline(always)]
    #[cfg_attr(not(all(distlog_loom, test)), allow(unused_variables))]
    fn write(&self, idx: usize, len: usize) {
        #[cfg(all(distlog_loom, test))]
        for w in &self.words[idx / 8..(idx + len).div_ceil(8)] {
            w.with_mut(|_| ());
        }
    }

    /// The consumer reads bytes `[idx, idx + len)`.
    #[inline(always)]
    #[cfg_attr(not(all(distlog_loom, test)), allow(unused_variables))]
    fn read(&self, idx: usize, len: usize) {
        #[cfg(all(distlog_loom, test))]
        for w in &self.words[idx / 8..(idx + len).div_ceil(8)] {
            w.with(|_| ());
        }
    }
}

/// Marks a padding entry in the length word.
pub(crate) const PAD: u32 = 1 << 31;

/// Backing memory of a ring.
pub(crate) type Storage = Box<[UnsafeCell<u64>]>;

/// Allocates zeroed storage of `bytes` (a power of two, at least 64). It
/// comes zeroed from the allocator (`calloc`; large blocks are fresh
/// pages), so a ring that is never written costs no resident memory.
pub(crate) fn new_storage(bytes: usize) -> Storage {
    debug_assert!(bytes.is_power_of_two() && bytes >= 64);
    let words: Box<[u64]> = vec![0u64; bytes / 8].into_boxed_slice();
    // SAFETY: `UnsafeCell<u64>` has the same layout as `u64`
    // (`repr(transparent)`), so the allocation is a valid
    // `[UnsafeCell<u64>]` of the same length, freed with the same layout.
    unsafe { Box::from_raw(Box::into_raw(words) as *mut [UnsafeCell<u64>]) }
}

/// The shared part of a ring.
pub(crate) struct Ring {
    /// Owns the buffer; read and written through `base`.
    #[allow(dead_code)]
    storage: Storage,
    base: *mut u8,
    mask: usize,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    accesses: Accesses,
    /// Set when the producing thread has exited.
    closed: AtomicBool,
    /// Records the producer dropped because the ring was full.
    pub(crate) dropped: AtomicU64,
    /// OS thread id of the producer.
    pub(crate) thread_id: u64,
    /// Thread name of the producer ("" if unnamed), shared by the rings of
    /// one thread (a ring that continues another copies it, allocating
    /// nothing).
    pub(crate) thread_name: Arc<str>,
    /// The ring this one continues: the same thread's earlier ring, which
    /// filled up (`pipeline::local`). The consumer reads nothing here until
    /// that one is retired (closed and empty), so the thread's entries
    /// stay in order; then it forgets it, so that it can be recycled. Set
    /// before the ring is shared; read and cleared by the consumer alone.
    predecessor: std::sync::Mutex<Option<Arc<Ring>>>,
}

// SAFETY: the buffer is shared between exactly one producer and one
// consumer, which touch disjoint regions: the producer writes only in
// [head, tail + capacity) and the consumer reads only in [tail, head), each
// region handed over by a release store that the other side acquires.
unsafe impl Sync for Ring {}
// SAFETY: as above; the raw pointer points into `storage`, owned by the ring.
unsafe impl Send for Ring {}

impl Ring {
    /// A ring that continues none (the tests' and models' constructor).
    #[cfg(test)]
    pub(crate) fn new(storage: Storage, thread_id: u64, thread_name: &str) -> Ring {
        Ring::after(storage, thread_id, thread_name.into(), None)
    }

    /// A ring whose entries follow those of `predecessor` (the same
    /// producer's full ring), if any: see [`Ring::ready`].
    pub(crate) fn after(
        mut storage: Storage,
        thread_id: u64,
        thread_name: Arc<str>,
        predecessor: Option<Arc<Ring>>,
    ) -> Ring {
        let cap = storage.len() * 8;
        debug_assert!(cap.is_power_of_two());
        let base = storage.as_mut_ptr() as *mut u8;
        Ring {
            storage,
            base,
            mask: cap - 1,
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            accesses: Accesses::new(cap / 8),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            thread_id,
            thread_name,
            predecessor: std::sync::Mutex::new(predecessor),
        }
    }

    /// Makes a retired ring as good as new, for its next producer: empty,
    /// open, no drops, no predecessor, named `blank`. Returns the drops it
    /// counted. `&mut`: no one else holds the ring (the pool's invariant).
    pub(crate) fn reset(&mut self, blank: &Arc<str>) -> u64 {
        debug_assert!(self.is_retired(), "a ring is reset only once retired");
        let dropped = self.dropped.load(Ordering::Relaxed);
        self.head = CachePadded::new(AtomicUsize::new(0));
        self.tail = CachePadded::new(AtomicUsize::new(0));
        self.closed = AtomicBool::new(false);
        self.dropped = AtomicU64::new(0);
        self.thread_id = 0;
        self.thread_name = blank.clone();
        *self
            .predecessor
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = None;
        dropped
    }

    /// Gives a reset ring its producer: thread `thread_id` named
    /// `thread_name`, its entries to follow `predecessor`'s, if any.
    /// Allocates nothing (the name is shared).
    pub(crate) fn assign(
        &mut self,
        thread_id: u64,
        thread_name: &Arc<str>,
        predecessor: Option<&Arc<Ring>>,
    ) {
        self.thread_id = thread_id;
        self.thread_name = thread_name.clone();
        *self
            .predecessor
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = predecessor.cloned();
    }

    /// Consumer: whether this ring's entries may be read now: it continues
    /// no ring, or that ring is retired (and is then forgotten).
    pub(crate) fn ready(&self) -> bool {
        let mut p = self.predecessor.lock().unwrap_or_else(|e| e.into_inner());
        match &*p {
            None => true,
            Some(r) if r.is_retired() => {
                *p = None;
                true
            }
            Some(_) => false,
        }
    }

    /// Capacity in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Marks the producer gone; the consumer retires the ring once empty.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the producer is gone and every entry has been consumed.
    pub(crate) fn is_retired(&self) -> bool {
        self.closed.load(Ordering::Acquire)
            && self.head.load(Ordering::Acquire) == self.tail.load(Ordering::Relaxed)
    }

    /// Bytes published and not yet consumed.
    pub(crate) fn pending(&self) -> usize {
        self.head.load(Ordering::Acquire) - self.tail.load(Ordering::Relaxed)
    }

    /// Consumer: calls `f` on each published entry (at most `max_bytes` of
    /// them, rounded up to whole entries), then releases their space.
    /// Returns the number of entries consumed.
    pub(crate) fn consume(&self, max_bytes: usize, mut f: impl FnMut(&[u8])) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let start = self.tail.load(Ordering::Relaxed);
        let mut tail = start;
        let mut n = 0;
        while tail != head && tail - start < max_bytes {
            let idx = tail & self.mask;
            let to_end = self.capacity() - idx;
            self.accesses.read(idx, 4);
            // SAFETY: [tail, head) was published by the producer's release
            // store of `head`, acquired above; idx + 4 <= capacity because
            // entries are 8-aligned and at least 8 bytes long.
            let word = unsafe { (self.base.add(idx) as *const u32).read() };
            if word & PAD != 0 {
                tail += to_end;
                continue;
            }
            let len = word as usize;
            if len < 8 || len > to_end || len % 8 != 0 || len > head - tail {
                // Cannot happen with our producer; never read past it.
                debug_assert!(false, "corrupt ring entry length {len}");
                tail = head;
                break;
            }
            // SAFETY: the entry lies in [tail, tail + len) within the
            // published region and within the buffer (checked above).
            let entry = unsafe { std::slice::from_raw_parts(self.base.add(idx), len) };
            self.accesses.read(idx, len);
            f(entry);
            self.accesses.read(idx, len);
            n += 1;
            tail += len;
        }
        self.tail.store(tail, Ordering::Release);
        n
    }
}

/// The producer's handle: its own copy of `head` and a cached `tail`, so the
/// common case touches no shared cache line but the release store.
///
/// The common reserve is one comparison against `limit`, a position the
/// producer may write up to without looking further: the lower of the
/// cached tail plus the capacity (room) and the end of the buffer's
/// current lap (no wrap). `limit` is recomputed whenever `head` jumps past
/// padding or the cached tail moves, and between recomputations it can
/// only be too low (the consumer frees more, never less), so a stale
/// `limit` costs a trip through the slow path, never an overwrite.
pub(crate) struct Producer {
    ring: Arc<Ring>,
    /// The ring's buffer and mask, copied here so that a reserve reads
    /// nothing but this struct (no load through the `Arc`).
    base: *mut u8,
    mask: usize,
    head: usize,
    cached_tail: usize,
    /// `min(cached_tail + capacity, end of head's lap)`: an entry ending at
    /// or before it is free and contiguous.
    limit: usize,
    /// `cached_tail + capacity / 2`: `head` past it means the ring may be
    /// half full.
    half_at: usize,
    /// `capacity / 2`.
    max_len: usize,
}

// SAFETY: `base` points into the storage of `ring`, which the producer keeps
// alive; moving the producer moves the one right to write there with it.
unsafe impl Send for Producer {}

impl Producer {
    pub(crate) fn new(ring: Arc<Ring>) -> Producer {
        let mut p = Producer {
            base: ring.base,
            mask: ring.mask,
            ring,
            head: 0,
            cached_tail: 0,
            limit: 0,
            half_at: 0,
            max_len: 0,
        };
        p.max_len = p.capacity() / 2;
        p.set_limits();
        p
    }

    /// The ring's capacity in bytes.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The largest entry [`Producer::reserve`] takes: half the capacity.
    #[inline(always)]
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Reserves `len` contiguous bytes (`len` a multiple of 8, at most half
    /// the capacity). `None` when the ring is full. The region must be
    /// published with [`Producer::commit`]; until then the consumer cannot
    /// see it, and a later reserve reuses it.
    #[inline(always)]
    pub(crate) fn reserve(&mut self, len: usize) -> Option<&mut [u8]> {
        debug_assert!(len % 8 == 0 && len >= 8 && len <= self.capacity() / 2);
        if self.head + len > self.limit {
            return self.reserve_slow(len);
        }
        let idx = self.head & self.mask;
        self.ring.accesses.write(idx, len);
        // SAFETY: [head, head + len) is free (head + len <= cached_tail +
        // capacity, and the consumer reads only below `head`, which this
        // producer alone moves) and does not wrap (head + len <= the end
        // of head's lap), so [idx, idx + len) is inside the buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.add(idx), len) })
    }

    /// [`Producer::reserve`] when `limit` says no: the ring may be full (the
    /// consumer's position is read again), or the entry must wrap (the
    /// rest of the lap is padded).
    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self, len: usize) -> Option<&mut [u8]> {
        if !self.fits(len) {
            self.refresh_tail();
            if !self.fits(len) {
                return None;
            }
        }
        let idx = self.head & self.mask;
        let to_end = self.capacity() - idx;
        let idx = if len <= to_end {
            idx
        } else {
            self.ring.accesses.write(idx, 4);
            // SAFETY: [head, head + to_end) is free (checked above) and owned
            // by the producer until published; idx is 8-aligned.
            unsafe { (self.base.add(idx) as *mut u32).write(PAD | to_end as u32) };
            self.head += to_end;
            self.set_limits();
            0
        };
        self.ring.accesses.write(idx, len);
        // SAFETY: [idx, idx + len) is inside the buffer and free: the
        // consumer reads only below `head`, which this producer alone moves.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.add(idx), len) })
    }

    /// Recomputes `limit` and `half_at` from `head` and `cached_tail`.
    #[inline(always)]
    fn set_limits(&mut self) {
        self.limit = (self.cached_tail + self.capacity()).min((self.head | self.mask) + 1);
        self.half_at = self.cached_tail + self.capacity() / 2;
    }

    /// Whether [`Producer::reserve`] of `len` bytes would succeed now
    /// (re-reads the consumer's position).
    pub(crate) fn has_room(&mut self, len: usize) -> bool {
        self.refresh_tail();
        self.fits(len)
    }

    /// Whether `len` bytes fit as of the cached consumer position: `len`,
    /// plus the padding to the buffer's end when the entry would not fit
    /// before it.
    #[inline(always)]
    fn fits(&self, len: usize) -> bool {
        let to_end = self.capacity() - (self.head & self.mask);
        let need = if len <= to_end { len } else { to_end + len };
        self.head + need - self.cached_tail <= self.capacity()
    }

    /// Whether more than half the ring was in use as of the last time the
    /// producer read the consumer's position (an upper bound, computed
    /// without touching shared memory).
    #[inline(always)]
    pub(crate) fn maybe_half_full(&self) -> bool {
        self.head > self.half_at
    }

    /// Re-reads the consumer's position (a shared cache line).
    #[inline]
    pub(crate) fn refresh_tail(&mut self) {
        self.cached_tail = self.ring.tail.load(Ordering::Acquire);
        self.set_limits();
    }

    /// Publishes the `len` bytes reserved last (an entry whose first `u32`
    /// must be `len`).
    #[inline(always)]
    pub(crate) fn commit(&mut self, len: usize) {
        self.ring.accesses.write(self.head & self.mask, len);
        self.head += len;
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// The ring this producer writes.
    pub(crate) fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    /// Counts a record dropped because the ring was full. The sender reads
    /// the count once the ring is retired: [`Ring::close`]'s release store
    /// orders this increment before it.
    #[cold]
    pub(crate) fn count_dropped(&self) {
        self.ring.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.ring.close();
    }
}

#[cfg(all(test, not(distlog_loom)))]
mod tests {
    use super::*;

    fn entry(buf: &mut [u8], value: u64) {
        let len = buf.len() as u32;
        buf[..4].copy_from_slice(&len.to_le_bytes());
        buf[8..16].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn wraps_with_padding_and_reports_full() {
        let ring = Arc::new(Ring::new(new_storage(64), 1, ""));
        let mut p = Producer::new(ring.clone());
        // 24 + 24 fit; a third 24 needs 16 to the end plus 24: full.
        for v in 0..2 {
            entry(p.reserve(24).unwrap(), v);
            p.commit(24);
        }
        assert!(p.reserve(24).is_none());
        let mut seen = vec![];
        ring.consume(usize::MAX, |e| seen.push(e[8]));
        assert_eq!(seen, [0, 1]);
        // Now it wraps: padding at 48..64, entry at 0.
        entry(p.reserve(24).unwrap(), 2);
        p.commit(24);
        ring.consume(usize::MAX, |e| seen.push(e[8]));
        assert_eq!(seen, [0, 1, 2]);
        drop(p);
        assert!(ring.is_retired());
    }

    /// Two threads, a small ring, many entries: every entry arrives once,
    /// in order, untorn.
    #[test]
    fn stress_no_loss_no_tearing() {
        const N: u64 = 200_000;
        let ring = Arc::new(Ring::new(new_storage(1024), 1, ""));
        let mut p = Producer::new(ring.clone());
        let producer = std::thread::spawn(move || {
            for v in 0..N {
                let len = 16 + 8 * (v as usize % 5);
                loop {
                    if let Some(buf) = p.reserve(len) {
                        entry(buf, v);
                        for b in &mut buf[16..] {
                            *b = v as u8;
                        }
                        p.commit(len);
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
        });
        let mut next = 0u64;
        while next < N {
            ring.consume(usize::MAX, |e| {
                let v = u64::from_le_bytes(e[8..16].try_into().unwrap());
                assert_eq!(v, next, "out of order or lost");
                assert_eq!(e.len(), 16 + 8 * (v as usize % 5));
                assert!(e[16..].iter().all(|&b| b == v as u8), "torn entry");
                next += 1;
            });
        }
        producer.join().unwrap();
        assert!(ring.is_retired());
    }
}
