//! Where logging threads blocked on a full ring (`block_when_full`) sleep
//! until the sender has read from the rings, instead of polling with
//! 50 µs sleeps: the sender wakes them once per pass in which waiters are
//! registered, and pays one fence and one load a pass when none are.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::Duration;

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
        let mut guard = self.lock.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `room_made`: either the sender sees this
        // waiter, or `has_room` sees the space it released.
        fence(Ordering::SeqCst);
        let room = has_room() || {
            self.cv.wait_for(&mut guard, max);
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
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }
}

#[cfg(test)]
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
