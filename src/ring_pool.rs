//! Whole rings, recycled: the bounded set of rings a pipeline owns, and
//! the way a full ring continues in another without allocating.
//!
//! The invariants, which every function below keeps:
//!
//! 1. **Bounded.** At most `max_rings` rings exist (`allocated` counts
//!    them, reserved before a ring is built), each of `ring_bytes` bytes:
//!    ring memory is at most `max_rings * ring_bytes`, which the pipeline
//!    sets to `max_memory` (one ring when `max_memory` is smaller than a
//!    ring), plus a few hundred bytes of header per ring and the two lists
//!    below (8 bytes per ring each). Rings are never freed before the
//!    pipeline is.
//! 2. **Spares are unique.** A ring in `spare` is held by nothing else (one
//!    `Arc`), retired and [`Ring::reset`]: whoever pops it may
//!    [`Ring::assign`] it through `Arc::get_mut`.
//! 3. **The lists never grow.** `spare` and `fresh` are created with room
//!    for `max_rings` and a ring is in at most one of them, so a push never
//!    reallocates: moving a ring between them is a lock and a copy.
//! 4. **Only two places allocate:** [`RingPool::take_first`], once per
//!    thread (its name, and a ring when no spare is left), and
//!    [`RingPool::top_up`], which the sender thread calls. [`RingPool::take_after`], the one called from a
//!    logging call (when its ring is full), takes a spare or nothing.
//! 5. **Growth has half.** `take_after` hands out a spare only while the
//!    rings in use (allocated and not spare) are fewer than
//!    `max_rings / 2`: the other half stays for threads that start logging.
//!
//! A ring's life: built (by `top_up` or `take_first`), assigned to a thread,
//! published in `fresh` for the sender to adopt, written and read, closed
//! (its thread exited, or it filled up and the thread moved on), read to
//! the end, then [`RingPool::recycle`]d by the sender, which resets it into
//! `spare`. The pool's lock orders the sender's last reads of a ring before
//! the next producer's first writes (tests/loom_ring.rs models it).

use crate::ring::sync::{AtomicUsize, Mutex, MutexGuard, Ordering};
use crate::ring::{new_storage, Ring};
use std::sync::Arc;

/// The rings of one pipeline: see the module docs for the invariants.
pub(crate) struct RingPool {
    ring_bytes: usize,
    max_rings: usize,
    /// Rings built and not freed: in use, waiting for the sender, or spare.
    allocated: AtomicUsize,
    /// Retired, reset rings nobody holds, ready for any thread.
    spare: Mutex<Vec<Arc<Ring>>>,
    /// Rings given to a thread that the sender has not adopted yet.
    fresh: Mutex<Vec<Arc<Ring>>>,
    /// The name a reset ring carries (so a reset never frees a thread's
    /// name on a logging thread, and an assignment never allocates).
    blank: Arc<str>,
}

/// A lock on one of the lists; a panic while holding it cannot leave a
/// list half changed (push and pop are whole), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RingPool {
    /// An empty pool of at most `max_rings` (at least 1) rings of
    /// `ring_bytes` bytes (a power of two, at least 64).
    pub(crate) fn new(ring_bytes: usize, max_rings: usize) -> RingPool {
        let max_rings = max_rings.max(1);
        RingPool {
            ring_bytes,
            max_rings,
            allocated: AtomicUsize::new(0),
            spare: Mutex::new(Vec::with_capacity(max_rings)),
            fresh: Mutex::new(Vec::with_capacity(max_rings)),
            blank: Arc::from(""),
        }
    }

    /// The most rings [`RingPool::take_after`] lets be in use.
    pub(crate) fn growth_limit(&self) -> usize {
        self.max_rings / 2
    }

    /// A thread's first ring: a spare, or a new one while the bound allows
    /// (`None` past it). May allocate: once per thread, off the steady
    /// state.
    pub(crate) fn take_first(&self, thread_id: u64, thread_name: &str) -> Option<Arc<Ring>> {
        let name: Arc<str> = Arc::from(thread_name);
        let mut ring = match lock(&self.spare).pop() {
            Some(ring) => ring,
            None => self.build()?,
        };
        Arc::get_mut(&mut ring)?.assign(thread_id, &name, None);
        Some(self.publish(ring))
    }

    /// A ring to continue `full` (the calling thread's ring, which is
    /// full): a spare, named as `full` and read after it, while the rings
    /// in use stay below [`RingPool::growth_limit`]; else `None`.
    /// Allocates nothing: called from a logging call.
    pub(crate) fn take_after(&self, full: &Arc<Ring>) -> Option<Arc<Ring>> {
        let mut spare = lock(&self.spare);
        // Spares were counted when built: no underflow (saturating all
        // the same, as `allocated` is read outside the lock that builds).
        let in_use = self
            .allocated
            .load(Ordering::Relaxed)
            .saturating_sub(spare.len());
        if in_use >= self.growth_limit() {
            return None;
        }
        let mut ring = spare.pop()?;
        drop(spare);
        match Arc::get_mut(&mut ring) {
            Some(r) => r.assign(full.thread_id, &full.thread_name, Some(full)),
            None => {
                // Invariant 2 says this cannot happen; keep the ring.
                debug_assert!(false, "a spare ring was shared");
                lock(&self.spare).push(ring);
                return None;
            }
        }
        Some(self.publish(ring))
    }

    /// Hands `ring` to the sender (through `fresh`) and returns it.
    fn publish(&self, ring: Arc<Ring>) -> Arc<Ring> {
        lock(&self.fresh).push(ring.clone());
        ring
    }

    /// A new ring, if the bound allows one more (reserved first, so
    /// concurrent builders never pass it).
    fn build(&self) -> Option<Arc<Ring>> {
        if self.allocated.fetch_add(1, Ordering::Relaxed) >= self.max_rings {
            self.allocated.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Arc::new(Ring::after(
            new_storage(self.ring_bytes),
            0,
            self.blank.clone(),
            None,
        )))
    }

    /// Sender: moves the rings handed out since the last call into `into`.
    pub(crate) fn adopt(&self, into: &mut Vec<Arc<Ring>>) {
        let mut fresh = lock(&self.fresh);
        if !fresh.is_empty() {
            into.append(&mut fresh);
        }
    }

    /// Sender: takes back `ring`, retired, if nothing else holds it
    /// (`Ok` with the drops it counted; `Err` gives it back otherwise).
    pub(crate) fn recycle(&self, mut ring: Arc<Ring>) -> Result<u64, Arc<Ring>> {
        if !ring.is_retired() {
            return Err(ring);
        }
        let Some(r) = Arc::get_mut(&mut ring) else {
            return Err(ring);
        };
        let dropped = r.reset(&self.blank);
        lock(&self.spare).push(ring);
        Ok(dropped)
    }

    /// Sender: builds spares until `want` wait in the pool or the bound is
    /// reached. Off every logging call.
    pub(crate) fn top_up(&self, want: usize) {
        while lock(&self.spare).len() < want {
            let Some(ring) = self.build() else { return };
            lock(&self.spare).push(ring);
        }
    }

    /// Spare rings now (a snapshot).
    #[cfg(test)]
    pub(crate) fn spares(&self) -> usize {
        lock(&self.spare).len()
    }
}

#[cfg(all(test, not(distlog_loom)))]
mod tests {
    use super::*;

    /// The bound holds whoever builds; growth stops at half; recycled
    /// rings come back as spares, reset.
    #[test]
    fn bounded_and_recycled() {
        let pool = RingPool::new(64, 4);
        pool.top_up(3);
        assert_eq!(pool.spares(), 3);
        let a = pool.take_first(7, "t").unwrap();
        assert_eq!((a.thread_id, &*a.thread_name), (7, "t"));
        let b = pool.take_after(&a).unwrap();
        assert_eq!((b.thread_id, &*b.thread_name), (7, "t"));
        // Two in use: growth's half of four is taken.
        assert!(pool.take_after(&b).is_none());
        let c = pool.take_first(8, "u").unwrap();
        let d = pool.take_first(9, "v").unwrap();
        assert!(pool.take_first(10, "w").is_none(), "four rings at most");
        let mut adopted = Vec::new();
        pool.adopt(&mut adopted);
        assert_eq!(adopted.len(), 4);
        drop(adopted);
        drop((b, c, d));
        // Not retired: not taken back.
        let Err(a) = pool.recycle(a) else {
            panic!("an open ring was taken back")
        };
        a.close();
        assert!(matches!(pool.recycle(a), Ok(0)));
        assert_eq!(pool.spares(), 1);
        pool.top_up(4);
        assert_eq!(pool.spares(), 1, "the bound holds for the sender too");
    }
}
