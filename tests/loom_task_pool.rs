//! Loom models of task frame reuse (src/context/frame_pool.rs): a frame goes
//! back to the pool, and is refilled, only when no other thread can still
//! read it.
//!
//! The frame here is a loom cell: the other holder reads it, the pool
//! refills it. If `Exclusive::reclaim` let a frame through while another
//! thread still held a handle, or without ordering that thread's reads
//! before the refill, loom reports the refill as a data race.
//!
//! `Arc` is modelled as std implements it (a relaxed increment to clone, a
//! release decrement to drop, a relaxed load for `strong_count`), so the
//! model leans on nothing stronger than the real one; loom's own `Arc`
//! synchronises in `strong_count` and would hide a missing fence.
//!
//! Run with `RUSTFLAGS="--cfg distlog_loom" cargo test --release --test
//! loom_task_pool` (scripts/test does, in its own target directory).
#![cfg(distlog_loom)]
// The included module and the model `Arc` use unsafe code (the package
// denies it elsewhere); every block states its invariant.
#![allow(unsafe_code)]

#[path = "../src/context/frame_pool.rs"]
mod frame_pool;

use frame_pool::Exclusive;
use loom::cell::UnsafeCell;
use model_arc::Arc;

/// std's `Arc`, as far as frame reuse depends on it, over loom atomics:
/// memory and its release are loom's `Arc`; the count that `reclaim` reads
/// is a separate atomic updated with std's orderings.
mod model_arc {
    use loom::sync::atomic::{fence, AtomicUsize, Ordering};

    struct Counted<T> {
        strong: AtomicUsize,
        value: T,
    }

    pub struct Arc<T> {
        inner: loom::sync::Arc<Counted<T>>,
    }

    impl<T> Arc<T> {
        pub fn new(value: T) -> Arc<T> {
            Arc {
                inner: loom::sync::Arc::new(Counted {
                    strong: AtomicUsize::new(1),
                    value,
                }),
            }
        }

        /// std: `strong.load(Relaxed)`.
        pub fn strong_count(this: &Arc<T>) -> usize {
            this.inner.strong.load(Ordering::Relaxed)
        }

        pub fn ptr_eq(a: &Arc<T>, b: &Arc<T>) -> bool {
            loom::sync::Arc::ptr_eq(&a.inner, &b.inner)
        }

        pub fn as_ptr(this: &Arc<T>) -> *const T {
            let counted = loom::sync::Arc::as_ptr(&this.inner);
            // SAFETY: `counted` points to a live `Counted` (we hold a
            // handle); `addr_of!` takes the field's address without
            // making a reference.
            unsafe { std::ptr::addr_of!((*counted).value) }
        }
    }

    impl<T> Clone for Arc<T> {
        /// std: `strong.fetch_add(1, Relaxed)`.
        fn clone(&self) -> Arc<T> {
            self.inner.strong.fetch_add(1, Ordering::Relaxed);
            Arc {
                inner: self.inner.clone(),
            }
        }
    }

    impl<T> Drop for Arc<T> {
        /// std: `strong.fetch_sub(1, Release)`, and an acquire fence by
        /// the last one before freeing.
        fn drop(&mut self) {
            if self.inner.strong.fetch_sub(1, Ordering::Release) == 1 {
                fence(Ordering::Acquire);
            }
        }
    }

    impl<T> std::ops::Deref for Arc<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner.value
        }
    }
}

/// A frame: one word the holders read and the pool refills.
struct Frame(UnsafeCell<u64>);

impl Frame {
    fn read(&self) -> u64 {
        self.0.with(|p| {
            // SAFETY: loom checks this read against every write.
            unsafe { *p }
        })
    }

    /// Refills the frame: a race, which loom reports, with any read not
    /// ordered before it.
    fn refill(&mut self, value: u64) {
        self.0.with_mut(|p| {
            // SAFETY: loom checks this write against every access.
            unsafe { *p = value }
        })
    }
}

/// Runs `f` under loom, every interleaving (no preemption bound): the
/// models are small enough to explore exhaustively in well under a second.
fn model(f: impl Fn() + Sync + Send + 'static) {
    loom::model::Builder::new().check(f);
}

/// A task ends on its thread (guard and stack handles in hand, as
/// `TaskGuard::end` has them) while a clone on another thread (a `Task`
/// that entered it there) still reads it and then lets go. The frame is
/// refilled only once that thread is done with it.
#[test]
fn frame_is_not_refilled_while_another_thread_holds_it() {
    model(|| {
        let (guard, stack) = Exclusive::new(Frame(UnsafeCell::new(1))).into_handles();
        let elsewhere = guard.clone();
        let t = loom::thread::spawn(move || {
            assert_eq!(elsewhere.read(), 1, "a frame changed under its reader");
            drop(elsewhere);
        });
        if let Some(mut frame) = Exclusive::reclaim(guard, Some(stack)) {
            // Refilling: a race with the reader if it could still read.
            frame.get_mut().refill(2);
            let (a, b) = frame.into_handles();
            assert_eq!(a.read(), 2);
            drop(b);
        }
        t.join().unwrap();
    });
}

/// The guard's handle alone (the stack's handle was another frame's, or
/// gone): reclaimed only when it is the last, after the other thread's
/// reads, and then handed out as a pair again.
#[test]
fn last_handle_reclaims_only_after_the_other_thread_lets_go() {
    model(|| {
        let (guard, stack) = Exclusive::new(Frame(UnsafeCell::new(1))).into_handles();
        let t = loom::thread::spawn(move || {
            assert_eq!(stack.read(), 1, "a frame changed under its reader");
            drop(stack);
        });
        if let Some(mut frame) = Exclusive::reclaim(guard, None) {
            frame.get_mut().refill(2);
            let (a, b) = frame.into_handles();
            assert!(Arc::ptr_eq(&a, &b));
            assert_eq!(Arc::strong_count(&a), 2);
        }
        t.join().unwrap();
    });
}

/// A handle that moves on to a third thread before it is dropped: the
/// frame is reused only after the last of them, wherever it ran.
#[test]
fn handle_passed_along_still_blocks_reuse() {
    model(|| {
        let (guard, stack) = Exclusive::new(Frame(UnsafeCell::new(1))).into_handles();
        let first = guard.clone();
        let t = loom::thread::spawn(move || {
            let second = first.clone();
            drop(first);
            let u = loom::thread::spawn(move || {
                assert_eq!(second.read(), 1, "a frame changed under its reader");
            });
            u.join().unwrap();
        });
        if let Some(mut frame) = Exclusive::reclaim(guard, Some(stack)) {
            frame.get_mut().refill(2);
        }
        t.join().unwrap();
    });
}
