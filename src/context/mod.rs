//! The thread's task context, below the pipeline and the task API: task
//! frames (a task's path, message, counters and bound fields), the
//! per-thread pool they are reused from, the per-thread stack of current
//! tasks, and the [`Section`] the hot path copies into every entry.
//!
//! [`crate::pipeline`] reads the current task from here on every log call
//! ([`with_current`]); [`crate::task`], the public API, creates, enters and
//! ends tasks through here and logs their start and end records through the
//! pipeline. Neither of the two reaches into the other.
//!
//! Invariants: a frame on the stack has a non-empty path when it is a real
//! task (the detached handle's is empty and reads as "no task"); `DEPTH` is
//! `STACK`'s length; a frame in `POOL` is held by exactly its two handles
//! ([`frame_pool::Exclusive`]), so it is reset with `&mut` access.

mod frame_pool;

use self::frame_pool::Exclusive;
use crate::entry::{Cursor, Encode};
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;

/// Frames a thread keeps for reuse.
pub const POOL_FRAMES: usize = 64;
/// Path bytes a new frame holds without growing: a UUID and 10 levels of
/// subtask numbers up to 9999.
pub const PATH_CAPACITY: usize = 96;
/// Message bytes a new frame holds without growing.
pub const MESSAGE_CAPACITY: usize = 64;
/// Bound-field bytes a new frame holds without growing.
pub const BOUND_CAPACITY: usize = 128;
/// Bound-field blobs a frame keeps for [`crate::Task::bind`] to refill.
const SPARE_BLOBS: usize = 4;

/// Shared state of one task (a frame, reused through the thread's pool).
pub(crate) struct TaskInner {
    path: String,
    message: String,
    records: AtomicU32,
    children: AtomicU32,
    /// Encoded bound fields: u32 count, then (string key, value) pairs, in
    /// the entry format. Replaced whole by `bind`; a replaced blob stays
    /// allocated while anything can still reach the frame, so a reader's
    /// slice stays valid.
    bound: AtomicPtr<Vec<u8>>,
    blobs: Mutex<Blobs>,
    /// Raw clock reading at the start ([`crate::clock::raw_now`]): the start
    /// record's timestamp, and the origin of the end record's duration.
    start: (u64, bool),
}

/// Bound-field blobs that are not the current one.
// Boxed on purpose: a reader may be between loading the pointer and reading
// the `Vec` header behind it, so the header must not move.
#[allow(clippy::vec_box)]
#[derive(Default)]
struct Blobs {
    /// Replaced by `bind` during this use of the frame: readers may hold
    /// them.
    retired: Vec<Box<Vec<u8>>>,
    /// Retired during an earlier use of the frame, reclaimed when it was
    /// reused with exclusive access: no reader can hold them.
    spare: Vec<Box<Vec<u8>>>,
}

impl Drop for TaskInner {
    fn drop(&mut self) {
        let p = *self.bound.get_mut();
        if !p.is_null() {
            // SAFETY: `bound` always holds a pointer from `Box::into_raw`,
            // owned by this task; nothing can read it once we are dropped.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

thread_local! {
    static STACK: RefCell<Vec<Arc<TaskInner>>> = const { RefCell::new(Vec::new()) };
    /// `STACK`'s length, kept beside it so that a log call outside any
    /// task reads one plain thread-local (no destructor, so no registration
    /// check) instead of borrowing the stack.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Free frames, each as two handles (count 2): one for the guard, one
    /// for the stack, so entering and leaving touch no reference count.
    static POOL: RefCell<Vec<Exclusive<TaskInner>>> = const { RefCell::new(Vec::new()) };
}

impl TaskInner {
    fn fresh() -> TaskInner {
        TaskInner {
            path: String::with_capacity(PATH_CAPACITY),
            message: String::with_capacity(MESSAGE_CAPACITY),
            records: AtomicU32::new(0),
            children: AtomicU32::new(0),
            bound: AtomicPtr::new(Box::into_raw(Box::new(Vec::with_capacity(BOUND_CAPACITY)))),
            blobs: Mutex::new(Blobs::default()),
            start: (0, false),
        }
    }

    /// Fills a frame nobody else can reach for a new task.
    fn reset(
        &mut self,
        message: &str,
        fields: &[(&str, &dyn Encode)],
        path: impl FnOnce(&mut String),
    ) {
        self.path.clear();
        path(&mut self.path);
        self.message.clear();
        self.message.push_str(message);
        // The start record, logged next by `log_started`, is record 1.
        *self.records.get_mut() = 1;
        *self.children.get_mut() = 0;
        let blobs = self.blobs.get_mut();
        // `&mut self`: no reader can hold a retired blob any more.
        while let Some(b) = blobs.retired.pop() {
            if blobs.spare.len() < SPARE_BLOBS {
                blobs.spare.push(b);
            }
        }
        // SAFETY: `bound` holds a pointer from `Box::into_raw`, owned by
        // this frame, and `&mut self` means no reader holds it.
        let blob = unsafe { &mut **self.bound.get_mut() };
        blob.clear();
        blob.extend_from_slice(&(fields.len() as u32).to_ne_bytes());
        for (k, v) in fields {
            append_pair(blob, k, *v);
        }
        self.start = crate::clock::raw_now();
    }

    fn bound(&self) -> &[u8] {
        // SAFETY: the pointer comes from `Box::into_raw` and is never freed
        // or reused while `self` can be reached through a shared reference
        // (replaced blobs go to `retired`).
        unsafe { &*self.bound.load(Ordering::Acquire) }
    }

    /// The task's path (`<root uuid>/<n>/...`; empty for "no task").
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The task's message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Raw clock reading at the start ([`crate::clock::raw_now`]).
    pub(crate) fn start(&self) -> (u64, bool) {
        self.start
    }

    /// Binds a field: every record of the task from now on carries it.
    /// Allocates only when the frame has no spare blob left from its earlier
    /// uses (or the fields outgrow it).
    pub(crate) fn bind(&self, key: &str, value: &dyn Encode) {
        // Under the lock no other `bind` can replace the blob we copy.
        let mut blobs = self.blobs.lock();
        let old = self.bound();
        let count = u32::from_ne_bytes(old[..4].try_into().unwrap_or([0; 4]));
        let mut blob = blobs.spare.pop().unwrap_or_default();
        blob.clear();
        blob.extend_from_slice(&(count + 1).to_ne_bytes());
        blob.extend_from_slice(&old[4..]);
        append_pair(&mut blob, key, value);
        let prev = self.bound.swap(Box::into_raw(blob), Ordering::AcqRel);
        // SAFETY: `prev` came from `Box::into_raw`; it is kept alive (not
        // freed or refilled) while the frame can be reached, because readers
        // may hold it; `reset` reclaims it with exclusive access.
        blobs.retired.push(unsafe { Box::from_raw(prev) });
    }

    /// Appends the path of a new subtask: this task's path, `/`, the next
    /// subtask number.
    pub(crate) fn write_child_path(&self, out: &mut String) {
        let n = self.children.fetch_add(1, Ordering::Relaxed) + 1;
        out.push_str(&self.path);
        out.push('/');
        push_decimal(out, n);
    }
}

/// A frame for a new task, from the thread's pool when it has one, as two
/// handles (the only two): one for the guard, one for the thread's stack.
/// [`crate::task::log_started`] must log its start record next.
pub(crate) fn new_frame(
    message: &str,
    fields: &[(&str, &dyn Encode)],
    path: impl FnOnce(&mut String),
) -> (Arc<TaskInner>, Arc<TaskInner>) {
    let pooled = POOL
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .ok()
        .flatten();
    let mut frame = pooled.unwrap_or_else(|| Exclusive::new(TaskInner::fresh()));
    frame.get_mut().reset(message, fields, path);
    frame.into_handles()
}

/// Gives a frame back to the thread's pool if nothing but `a` and `b` (two
/// handles to it; `b` may be another frame's, or none) holds it.
pub(crate) fn recycle(a: Arc<TaskInner>, b: Option<Arc<TaskInner>>) {
    let Some(frame) = Exclusive::reclaim(a, b) else {
        return; // a handle elsewhere: freed when the last one drops
    };
    let _ = POOL.try_with(move |p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() < POOL_FRAMES {
                p.push(frame);
            }
        }
    });
}

fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

fn append_pair(blob: &mut Vec<u8>, key: &str, value: &dyn Encode) {
    blob.extend_from_slice(&(key.len() as u32).to_ne_bytes());
    blob.extend_from_slice(key.as_bytes());
    let at = blob.len();
    blob.resize(at + value.encoded_len(), 0);
    value.encode(&mut Cursor::new(&mut blob[at..], 0));
}

/// The current task as the hot path writes it into an entry.
pub(crate) struct Section<'a> {
    inner: &'a TaskInner,
    bound: &'a [u8],
    /// Whether this is the start record, counted by `reset` already.
    first: bool,
}

impl<'a> Section<'a> {
    /// The section of a given task.
    pub(crate) fn of(inner: &'a TaskInner) -> Section<'a> {
        Section {
            inner,
            bound: inner.bound(),
            first: false,
        }
    }

    /// The section of a task's start record, which [`new_frame`] counted.
    pub(crate) fn first(inner: &'a TaskInner) -> Section<'a> {
        Section {
            first: true,
            ..Section::of(inner)
        }
    }

    /// Bytes the section takes in an entry.
    pub(crate) fn len(&self) -> usize {
        4 + 4 + self.inner.path.len() + self.bound.len()
    }

    /// Writes the section, taking the record's counter `n`. Inlined so
    /// that the caller's cursor stays in registers.
    #[inline(always)]
    pub(crate) fn write(&self, w: &mut Cursor<'_>) {
        let n = if self.first {
            1
        } else {
            self.inner.records.fetch_add(1, Ordering::Relaxed) + 1
        };
        w.put_u32(n);
        w.put_str(&self.inner.path);
        w.put_bytes(self.bound);
    }
}

/// Whether the thread may be inside a task (a task frame is pushed): when
/// `false`, [`with_current`] would pass `None`. One thread-local read, for
/// hot paths that handle the common case (no task) without a closure.
#[inline(always)]
pub(crate) fn maybe_in_task() -> bool {
    DEPTH.try_with(Cell::get).unwrap_or(0) != 0
}

/// Runs `f` with the thread's current task (if any).
#[inline(always)]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Section<'_>>) -> R) -> R {
    // `f` runs exactly once: inside `try_with`, or after it when the
    // thread-local is gone (thread teardown).
    if DEPTH.try_with(Cell::get).unwrap_or(0) == 0 {
        return f(None);
    }
    let mut f = Some(f);
    let r = STACK.try_with(|stack| {
        let stack = stack.try_borrow().ok();
        let section = stack
            .as_ref()
            .and_then(|s| s.last())
            .filter(|t| !t.path.is_empty())
            .map(|inner| Section::of(inner));
        (f.take().unwrap())(section.as_ref())
    });
    r.unwrap_or_else(|_| (f.take().unwrap())(None))
}

pub(crate) fn push(inner: Arc<TaskInner>) {
    let _ = STACK.try_with(|s| {
        let mut s = s.borrow_mut();
        s.push(inner);
        set_depth(s.len());
    });
}

pub(crate) fn pop() {
    drop(pop_owned());
}

/// Pops the thread's current task, returning the stack's handle.
pub(crate) fn pop_owned() -> Option<Arc<TaskInner>> {
    STACK
        .try_with(|s| {
            let mut s = s.borrow_mut();
            let top = s.pop();
            set_depth(s.len());
            top
        })
        .ok()
        .flatten()
}

fn set_depth(n: usize) {
    let _ = DEPTH.try_with(|d| d.set(n));
}

/// Writes the path of a new subtask of the thread's current task, or of a
/// new root when there is none.
pub(crate) fn write_child_of_current(out: &mut String) {
    let done = STACK
        .try_with(
            |s| match s.try_borrow().ok().as_ref().and_then(|s| s.last()) {
                Some(parent) => {
                    parent.write_child_path(out);
                    true
                }
                None => false,
            },
        )
        .unwrap_or(false);
    if !done {
        write_uuid(out);
    }
}

/// The thread's current task frame (a new handle to it).
pub(crate) fn current() -> Option<Arc<TaskInner>> {
    STACK
        .try_with(|s| s.borrow().last().cloned())
        .ok()
        .flatten()
}

/// Appends a random version-4 UUID, hyphenated.
pub(crate) fn write_uuid(out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hi = crate::process::random_u64();
    let lo = crate::process::random_u64();
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[(x >> 4) as usize] as char);
        out.push(HEX[(x & 0x0f) as usize] as char);
    }
}

/// A random version-4 UUID, hyphenated.
#[cfg(test)]
fn new_uuid() -> String {
    let mut s = String::new();
    write_uuid(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = new_uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, new_uuid());
    }
}
