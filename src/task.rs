//! Task trees: goals and subgoals that every record carries, across threads
//! and processes.
//!
//! ```
//! let _guard = distlog::builder()
//!     .shutdown_timeout(std::time::Duration::from_millis(50))
//!     .install()
//!     .unwrap();
//! let request = distlog::task("handle request", &[("user", &42u64)]);
//! {
//!     let lookup = distlog::to("look up user", &[]);
//!     distlog::info!("cache miss"); // key "2@<uuid>/1"
//!     lookup.success("found");
//! }
//! // Hand this to another process; there `distlog::import_task(&id, ...)`
//! // continues the same tree.
//! let id = request.foreign_id();
//! assert!(id.starts_with(request.path()));
//! ```
//!
//! A task's path is its root's UUID followed by `/<n>` per level, n counting
//! the parent's subtasks from 1; every record logged while a task is the
//! thread's current one carries the path, its counter `n` (the key
//! `"<n>@<path>"` of the original Python clients) and the task's bound
//! fields. Entering a task logs its message (INFO, counter 1); leaving it
//! logs success (the task's message, or the one given to
//! [`TaskGuard::success`]) or `FAILED <message>` with the error, at ERROR,
//! also when the guard is dropped by a panic. Both carry `task_status`
//! (`started`, `succeeded`, `failed`) and the end record `duration_ns`.
//!
//! The current task is per thread: [`Task::enter`] makes a task current on
//! another thread.
//!
//! Futures carry a task with [`InTask::in_task`]; W3C trace context with
//! [`crate::traceparent`].
//!
//! Entering and leaving a task allocates nothing in steady state. A task's
//! shared state (its frame: path, message, counters, bound fields) comes
//! from a per-thread pool of at most [`POOL_FRAMES`] frames and goes back to
//! the pool of the thread that ends the task, unless a [`Task`] handle still
//! holds it (then it is freed when the last handle drops). A frame keeps the
//! capacity of its buffers: [`PATH_CAPACITY`] bytes of path,
//! [`MESSAGE_CAPACITY`] of message and [`BOUND_CAPACITY`] of bound fields to
//! start with, grown (an allocation) the first time a longer one comes, and
//! kept at the larger size. The start and end records are written in the
//! native entry encoding: static call sites, typed `task_status` and
//! `duration_ns`, the failure's error formatted straight into the ring.
//! [`Task::bind`] reuses blobs of the frame's earlier uses once no reader can
//! hold them; [`Task::foreign_id`] returns a new `String`.

mod frame_pool;

use self::frame_pool::Exclusive;
use crate::callsite::Callsite;
use crate::entry::{Cursor, Encode};
use crate::pipeline::local;
use crate::record::{kind, level};
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// Frames a thread keeps for reuse.
pub const POOL_FRAMES: usize = 64;
/// Path bytes a new frame holds without growing: a UUID and 10 levels of
/// subtask numbers up to 9999.
pub const PATH_CAPACITY: usize = 96;
/// Message bytes a new frame holds without growing.
pub const MESSAGE_CAPACITY: usize = 64;
/// Bound-field bytes a new frame holds without growing.
pub const BOUND_CAPACITY: usize = 128;
/// Bound-field blobs a frame keeps for [`Task::bind`] to refill.
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
/// [`log_started`] must log its start record next.
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

static STARTED: Callsite = Callsite::new(
    level::INFO,
    kind::LOG,
    "task",
    "",
    file!(),
    line!(),
    "",
    0,
    &["task_status"],
);
static SUCCEEDED: Callsite = Callsite::new(
    level::INFO,
    kind::LOG,
    "task",
    "",
    file!(),
    line!(),
    "",
    0,
    &["task_status", "duration_ns"],
);
static FAILED: Callsite = Callsite::new(
    level::ERROR,
    kind::LOG,
    "task",
    "",
    file!(),
    line!(),
    "",
    0,
    &["task_status", "duration_ns"],
);

/// Logs a task's start record (its message, `task_status = "started"`):
/// right after [`new_frame`], which counted it.
pub(crate) fn log_started(inner: &TaskInner, file: &str, line: u32) {
    local::emit_status(
        inner.start,
        &STARTED,
        file,
        line,
        "",
        &inner.message,
        &(&"started",),
        None,
        &Section {
            first: true,
            ..Section::of(inner)
        },
    );
}

/// How a task ended.
pub(crate) enum End<'a> {
    /// Success, with this message (default: the task's).
    Succeeded(Option<&'a str>),
    /// Failure, with this error text.
    Failed(&'a dyn std::fmt::Display),
}

/// Logs a task's end record: success (INFO, the message given or the
/// task's) or failure (ERROR, `FAILED <message>` and the error), with
/// `task_status` and `duration_ns`.
pub(crate) fn log_ended(inner: &TaskInner, file: &str, line: u32, end: End<'_>) {
    let now = crate::clock::raw_now();
    let duration = crate::clock::elapsed_ns(inner.start, now);
    let section = Section::of(inner);
    match end {
        End::Succeeded(msg) => local::emit_status(
            now,
            &SUCCEEDED,
            file,
            line,
            "",
            msg.unwrap_or(&inner.message),
            &(&"succeeded", &duration),
            None,
            &section,
        ),
        End::Failed(err) => local::emit_status(
            now,
            &FAILED,
            file,
            line,
            "FAILED ",
            &inner.message,
            &(&"failed", &duration),
            Some(err),
            &section,
        ),
    }
}

/// A handle to a task: clone it to make the task current on another thread
/// with [`Task::enter`].
#[derive(Clone)]
pub struct Task {
    pub(crate) inner: Arc<TaskInner>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Task {
    /// The task's path (`<root uuid>/<n>/...`).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// Makes this task current on this thread until the returned guard
    /// drops, without logging start or end records (the task is still
    /// owned by its [`TaskGuard`]).
    pub fn enter(&self) -> Entered {
        push(self.inner.clone());
        Entered { _private: () }
    }

    /// Binds a field: every record of the task from now on carries it.
    /// Allocates only when the frame has no spare blob left from its earlier
    /// uses (or the fields outgrow it).
    pub fn bind(&self, key: &str, value: impl Encode) {
        // Under the lock no other `bind` can replace the blob we copy.
        let mut blobs = self.inner.blobs.lock();
        let old = self.inner.bound();
        let count = u32::from_ne_bytes(old[..4].try_into().unwrap_or([0; 4]));
        let mut blob = blobs.spare.pop().unwrap_or_default();
        blob.clear();
        blob.extend_from_slice(&(count + 1).to_ne_bytes());
        blob.extend_from_slice(&old[4..]);
        append_pair(&mut blob, key, &value);
        let prev = self.inner.bound.swap(Box::into_raw(blob), Ordering::AcqRel);
        // SAFETY: `prev` came from `Box::into_raw`; it is kept alive (not
        // freed or refilled) while the frame can be reached, because readers
        // may hold it; `reset` reclaims it with exclusive access.
        blobs.retired.push(unsafe { Box::from_raw(prev) });
    }

    /// An id for a subtask in another process: pass it there and call
    /// [`import_task`] with it. Each call reserves a new subtask number.
    pub fn foreign_id(&self) -> String {
        let mut id = String::with_capacity(self.inner.path.len() + 11);
        self.inner.write_child_path(&mut id);
        id
    }
}

/// Keeps a task current on a thread (from [`Task::enter`]).
#[must_use = "the task is current only while the guard lives"]
#[derive(Debug)]
pub struct Entered {
    _private: (),
}

impl Drop for Entered {
    fn drop(&mut self) {
        pop();
    }
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
fn pop_owned() -> Option<Arc<TaskInner>> {
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

/// A running task: logs its start when created and its end when dropped.
#[must_use = "the task ends when the guard drops"]
pub struct TaskGuard {
    /// Taken exactly once, by `end`.
    task: ManuallyDrop<Task>,
    file: &'static str,
    line: u32,
}

impl std::fmt::Debug for TaskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGuard")
            .field("task", &*self.task)
            .finish()
    }
}

impl std::ops::Deref for TaskGuard {
    type Target = Task;
    fn deref(&self) -> &Task {
        &self.task
    }
}

impl TaskGuard {
    #[track_caller]
    fn start(msg: &str, fields: &[(&str, &dyn Encode)], path: impl FnOnce(&mut String)) -> Self {
        let loc = std::panic::Location::caller();
        let (inner, on_stack) = new_frame(msg, fields, path);
        push(on_stack);
        log_started(&inner, loc.file(), loc.line());
        TaskGuard {
            task: ManuallyDrop::new(Task { inner }),
            file: loc.file(),
            line: loc.line(),
        }
    }

    /// Logs the end record, leaves the task and recycles its frame. Called
    /// once: from `drop`, or from a method that took the guard into a
    /// `ManuallyDrop` so that `drop` does not run.
    fn end(&mut self, end: End<'_>) {
        // SAFETY: `end` runs at most once per guard (see above) and `task`
        // is not used after this.
        let task = unsafe { ManuallyDrop::take(&mut self.task) };
        let end = match end {
            End::Succeeded(_) if std::thread::panicking() => End::Failed(&"panicked"),
            end => end,
        };
        log_ended(&task.inner, self.file, self.line, end);
        let popped = pop_owned();
        recycle(task.inner, popped);
    }

    /// Ends the task with a success record carrying `msg` (default: the
    /// task's message).
    pub fn success(self, msg: impl AsRef<str>) {
        ManuallyDrop::new(self).end(End::Succeeded(Some(msg.as_ref())));
    }

    /// Ends the task as failed, with `err` as the error text.
    pub fn fail(self, err: impl std::fmt::Display) {
        ManuallyDrop::new(self).end(End::Failed(&err));
    }

    /// Ends the task as the result says: success, or failure with the
    /// error's text. Returns the result.
    pub fn finish<T, E: std::fmt::Display>(self, result: Result<T, E>) -> Result<T, E> {
        let mut this = ManuallyDrop::new(self);
        match &result {
            Ok(_) => this.end(End::Succeeded(None)),
            Err(e) => this.end(End::Failed(e)),
        }
        result
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.end(End::Succeeded(None));
    }
}

/// Starts a root task with a new random id (a version-4 UUID).
#[track_caller]
pub fn task(msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    TaskGuard::start(msg, fields, write_uuid)
}

/// Starts a subtask of the thread's current task (a root task if there is
/// none).
#[track_caller]
pub fn to(msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    TaskGuard::start(msg, fields, write_child_of_current)
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

/// Continues, in this process, a tree started in another: `id` is what
/// [`Task::foreign_id`] returned there.
#[track_caller]
pub fn import_task(id: &str, msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    TaskGuard::start(msg, fields, |p| p.push_str(id.trim()))
}

/// The thread's current task, to carry into another thread.
pub fn current() -> Option<Task> {
    STACK
        .try_with(|s| {
            s.borrow().last().map(|inner| Task {
                inner: inner.clone(),
            })
        })
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

/// A future that runs with a task current on whatever thread polls it: see
/// [`InTask::in_task`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WithTask<F> {
    inner: F,
    task: Task,
}

impl<F: std::future::Future> std::future::Future for WithTask<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of
        // `WithTask`, and `WithTask` has no `Drop` or `Unpin` impl that
        // could move it; `task` is not pinned and only read.
        let this = unsafe { self.get_unchecked_mut() };
        let _entered = this.task.enter();
        // SAFETY: see above; `this.inner` stays where the pin put it.
        unsafe { std::pin::Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}

/// Carries a task into a future, like `tracing::Instrument`: the task is
/// current during every poll, on whichever thread the executor runs it, so
/// it survives `.await` points and thread hops.
///
/// ```
/// use distlog::task::InTask;
/// async fn handler() {
///     distlog::info!("inside the request's task");
/// }
/// let request = distlog::task("request", &[]);
/// let fut = handler().in_task(&request);
/// # drop(fut);
/// ```
pub trait InTask: Sized {
    /// Wraps `self` so that `task` is current while it runs.
    fn in_task(self, task: &Task) -> WithTask<Self>;

    /// Wraps `self` with the calling thread's current task, if any.
    fn in_current_task(self) -> WithTask<Self> {
        match current() {
            Some(task) => self.in_task(&task),
            None => self.in_task(&Task::detached()),
        }
    }
}

impl<F: std::future::Future> InTask for F {
    fn in_task(self, task: &Task) -> WithTask<Self> {
        WithTask {
            inner: self,
            task: task.clone(),
        }
    }
}

impl Task {
    /// A handle for "no task": records logged under it carry no task.
    fn detached() -> Task {
        static DETACHED: OnceLock<Task> = OnceLock::new();
        DETACHED
            .get_or_init(|| Task {
                inner: new_frame("", &[], |_| {}).0,
            })
            .clone()
    }
}
