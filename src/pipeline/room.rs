//! Where logging threads blocked on a full ring (`block_when_full`) sleep
//! until the sender has read from the rings, instead of polling with
//! 50 µs sleeps: the sender wakes them once per pass in which waiters are
//! registered, and pays one fence and one load a pass when none are.
//!
//! The protocol (a waiter registers, then checks for room; the sender
//! releases room, then checks for waiters; a `SeqCst` fence between each
//! side's two steps) is model-checked with loom (tests/loom_room.rs, which
//! compiles this file with `--cfg distlog_loom`): in every interleaving a
//! waiter either sees the room or is woken, so no wake-up is lost.

use self::sync::{fence, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};
use std::sync::PoisonError;
use std::time::Duration;

/// The atomics, lock and condition variable: std's, or loom's when the
/// loom model compiles this file.
mod sync {
    #[cfg(all(distlog_loom, test))]
    pub(crate) use loom::sync::atomic::{fence, AtomicUsize};
    #[cfg(all(distlog_loom, test))]
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::Ordering;
    #[cfg(not(all(distlog_loom, test)))]
    pub(crate) use std::sync::atomic::{fence, AtomicUsize};
    #[cfg(not(all(distlog_loom, test)))]
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
}

/// Waiters for room in the rings, and their wake-up.
#[derive(Default)]
pub(crate) struct RoomWait {
    /// Threads inside [`RoomWait::wait`].
    waiters: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl RoomWait {
    /// A logging thread whose ring is full: returns once `has_room` says
    /// yes, or after a wake-up from [`RoomWait::room_made`], or after
    /// `max` (a bound, in case the room came from elsewhere). Returns what
    /// `has_room` said last.
    #[cold]
    pub(crate) fn wait(&self, mut has_room: impl FnMut() -> bool, max: Duration) -> bool {
        let guard = self.locked();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `room_made`: either the sender sees this
        // waiter, or `has_room` sees the space it released.
        fence(Ordering::SeqCst);
        let room = has_room() || {
            let slept = self.cv.wait_timeout(guard, max);
            drop(slept.unwrap_or_else(PoisonError::into_inner));
            has_room()
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        room
    }

    /// The sender, after releasing ring space: wakes the threads waiting
    /// for it, if any.
    #[inline]
    pub(crate) fn room_made(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self) {
        // Under the lock: a waiter between its check and its sleep holds
        // it, so the notification cannot fall between the two.
        let _guard = self.locked();
        self.cv.notify_all();
    }

    /// The lock (nothing it guards can be left half-changed by a panic).
    fn locked(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(all(test, not(distlog_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_waiter_with_room_returns_at_once() {
        let room = RoomWait::default();
        let start = Instant::now();
        assert!(room.wait(|| true, Duration::from_secs(600)));
        assert!(start.elapsed() < Duration::from_secs(300));
    }

    #[test]
    fn room_made_wakes_a_waiter_long_before_its_bound() {
        // The waiter's bound is 10 minutes; it is woken as soon as the
        // "sender" has made room, so the test ends in milliseconds unless
        // a wake-up is lost.
        let room = Arc::new(RoomWait::default());
        let free = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (room, free) = (room.clone(), free.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let got = room.wait(|| free.load(Ordering::Acquire), Duration::from_secs(600));
                (got, start.elapsed())
            })
        };
        // Until the waiter is registered, making room may find nobody to
        // wake; it then sees the room itself.
        while room.waiters.load(Ordering::SeqCst) == 0 && !waiter.is_finished() {
            std::thread::yield_now();
        }
        free.store(true, Ordering::Release);
        room.room_made();
        let (got, took) = waiter.join().unwrap();
        assert!(got, "the waiter saw the room");
        assert!(took < Duration::from_secs(300), "woken, not timed out");
    }

    #[test]
    fn without_room_a_waiter_returns_after_its_bound() {
        let room = RoomWait::default();
        assert!(!room.wait(|| false, Duration::from_millis(1)));
        assert_eq!(room.waiters.load(Ordering::SeqCst), 0);
    }
}
