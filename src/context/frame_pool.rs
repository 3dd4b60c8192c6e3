//! When a task's frame may be refilled: the one decision the frame pool
//! makes, and the one place it takes `&mut` to shared memory.
//!
//! A frame is handed out as exactly two `Arc` handles (one for the task's
//! guard, one for the thread's task stack), so entering and leaving a task
//! touch no reference count. Any other holder (a [`crate::Task`] clone, a
//! future carrying the task, another thread that entered it) is a third
//! handle. [`Exclusive::reclaim`] takes a frame back only when the handles
//! in hand are all there are, and orders everything the other holders did
//! with the frame before its reuse; [`Exclusive::get_mut`] then refills it
//! in place.
//!
//! Model-checked with loom (tests/loom_task_pool.rs, which compiles this
//! file with `--cfg distlog_loom` over an `Arc` with std's orderings): a frame is
//! never written while another thread can still read it.

#[cfg(all(distlog_loom, test))]
use crate::model_arc::Arc;
#[cfg(all(distlog_loom, test))]
use loom::sync::atomic::fence;
use std::sync::atomic::Ordering;
#[cfg(not(all(distlog_loom, test)))]
use std::sync::{atomic::fence, Arc};

/// A frame that nothing but the two handles inside can reach.
///
/// Invariant: the `Arc`s are the only references to the value: both point
/// to it, its strong count is 2, and the crate never makes a `Weak`. Only
/// [`Exclusive::new`] and [`Exclusive::reclaim`] build one.
pub(crate) struct Exclusive<T> {
    a: Arc<T>,
    b: Arc<T>,
}

impl<T> Exclusive<T> {
    /// A new frame.
    pub(crate) fn new(value: T) -> Exclusive<T> {
        let a = Arc::new(value);
        let b = a.clone();
        Exclusive { a, b }
    }

    /// Takes a frame back from `a` and `b` (two handles to it; `b` may be
    /// another frame's, or none) if nothing else holds it; `None` (and the
    /// handles dropped) when something does: the frame is freed when the
    /// last holder lets go.
    pub(crate) fn reclaim(a: Arc<T>, b: Option<Arc<T>>) -> Option<Exclusive<T>> {
        let (a, b) = match b {
            Some(b) if Arc::ptr_eq(&a, &b) => {
                if Arc::strong_count(&a) != 2 {
                    return None;
                }
                (a, b)
            }
            other => {
                drop(other);
                if Arc::strong_count(&a) != 1 {
                    return None;
                }
                let b = a.clone();
                (a, b)
            }
        };
        // The count is read with a relaxed load. Holders that are gone
        // dropped their handles with a release decrement; this fence
        // acquires them, so all they did to the frame happens before its
        // reuse. The count cannot rise again: only a holder can clone, and
        // the two holders are here.
        fence(Ordering::Acquire);
        Some(Exclusive { a, b })
    }

    /// The frame, to refill.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        // SAFETY: by the type's invariant `a` and `b` are the only
        // references to the value, and `&mut self` borrows both, so nothing
        // else can read or write it while the returned borrow lives; what
        // earlier holders did is ordered before by `reclaim`'s fence (a new
        // value has had no other holder). `Arc::as_ptr` derives the pointer
        // without going through a shared reference.
        unsafe { &mut *(Arc::as_ptr(&self.a) as *mut T) }
    }

    /// The two handles: the guard's and the task stack's.
    pub(crate) fn into_handles(self) -> (Arc<T>, Arc<T>) {
        (self.a, self.b)
    }
}
