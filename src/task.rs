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
//! Not finished yet (see the task-tree issue): entering a task allocates
//! (its path and handle), and the `tracing` layer is still to come.

use crate::entry::{Cursor, Encode};
use crate::facade::{emit_parts, Parts};
use crate::record::level;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Shared state of one task.
pub(crate) struct TaskInner {
    path: String,
    message: String,
    records: AtomicU32,
    children: AtomicU32,
    /// Encoded bound fields: u32 count, then (string key, value) pairs, in
    /// the entry format. Replaced whole by `bind`; replaced blobs are kept
    /// until the task is dropped, so a reader's slice stays valid.
    bound: AtomicPtr<Vec<u8>>,
    // Boxed on purpose: a reader may be between loading the pointer and
    // reading the `Vec` header behind it, so the header must not move.
    #[allow(clippy::vec_box)]
    retired: Mutex<Vec<Box<Vec<u8>>>>,
    start: Instant,
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

impl TaskInner {
    pub(crate) fn new(
        path: String,
        message: &str,
        fields: &[(&str, &dyn Encode)],
    ) -> Arc<TaskInner> {
        let mut blob = Vec::new();
        blob.extend_from_slice(&(fields.len() as u32).to_ne_bytes());
        for (k, v) in fields {
            append_pair(&mut blob, k, *v);
        }
        Arc::new(TaskInner {
            path,
            message: message.to_owned(),
            records: AtomicU32::new(0),
            children: AtomicU32::new(0),
            bound: AtomicPtr::new(Box::into_raw(Box::new(blob))),
            retired: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }

    fn bound(&self) -> &[u8] {
        // SAFETY: the pointer comes from `Box::into_raw` and is never freed
        // while `self` lives (replaced blobs go to `retired`).
        unsafe { &*self.bound.load(Ordering::Acquire) }
    }

    pub(crate) fn child_path(&self) -> String {
        let n = self.children.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}/{n}", self.path)
    }
}

fn append_pair(blob: &mut Vec<u8>, key: &str, value: &dyn Encode) {
    blob.extend_from_slice(&(key.len() as u32).to_ne_bytes());
    blob.extend_from_slice(key.as_bytes());
    let at = blob.len();
    blob.resize(at + value.encoded_len(), 0);
    value.encode(&mut Cursor::new(&mut blob[at..], 0));
}

thread_local! {
    static STACK: RefCell<Vec<Arc<TaskInner>>> = const { RefCell::new(Vec::new()) };
}

/// The current task as the hot path writes it into an entry.
pub(crate) struct Section<'a> {
    inner: &'a TaskInner,
    bound: &'a [u8],
}

impl Section<'_> {
    /// Bytes the section takes in an entry.
    pub(crate) fn len(&self) -> usize {
        4 + 4 + self.inner.path.len() + self.bound.len()
    }

    /// Writes the section, taking the record's counter `n`.
    pub(crate) fn write(&self, w: &mut Cursor<'_>) {
        let n = self.inner.records.fetch_add(1, Ordering::Relaxed) + 1;
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
    let mut f = Some(f);
    let r = STACK.try_with(|stack| {
        let stack = stack.try_borrow().ok();
        let section = stack
            .as_ref()
            .and_then(|s| s.last())
            .filter(|t| !t.path.is_empty())
            .map(|inner| Section {
                inner,
                bound: inner.bound(),
            });
        (f.take().unwrap())(section.as_ref())
    });
    r.unwrap_or_else(|_| (f.take().unwrap())(None))
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
    pub fn bind(&self, key: &str, value: impl Encode) {
        let old = self.inner.bound();
        let count = u32::from_ne_bytes(old[..4].try_into().unwrap_or([0; 4]));
        let mut blob = Vec::with_capacity(old.len() + 32);
        blob.extend_from_slice(&(count + 1).to_ne_bytes());
        blob.extend_from_slice(&old[4..]);
        append_pair(&mut blob, key, &value);
        let new = Box::into_raw(Box::new(blob));
        let prev = self.inner.bound.swap(new, Ordering::AcqRel);
        // SAFETY: `prev` came from `Box::into_raw`; it is kept alive (not
        // freed) until the task drops, because readers may hold it.
        self.inner
            .retired
            .lock()
            .push(unsafe { Box::from_raw(prev) });
    }

    /// An id for a subtask in another process: pass it there and call
    /// [`import_task`] with it. Each call reserves a new subtask number.
    pub fn foreign_id(&self) -> String {
        self.inner.child_path()
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
    let _ = STACK.try_with(|s| s.borrow_mut().push(inner));
}

pub(crate) fn pop() {
    let _ = STACK.try_with(|s| s.borrow_mut().pop());
}

/// A running task: logs its start when created and its end when dropped.
#[must_use = "the task ends when the guard drops"]
pub struct TaskGuard {
    task: Task,
    success: Option<String>,
    failure: Option<String>,
    file: &'static str,
    line: u32,
}

impl std::fmt::Debug for TaskGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGuard")
            .field("task", &self.task)
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
    fn start(path: String, msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
        let inner = TaskInner::new(path, msg, fields);
        push(inner.clone());
        let loc = std::panic::Location::caller();
        let guard = TaskGuard {
            task: Task { inner },
            success: None,
            failure: None,
            file: loc.file(),
            line: loc.line(),
        };
        guard.log_status(level::INFO, msg, "started", None, None);
        guard
    }

    fn log_status(
        &self,
        lvl: u8,
        msg: &str,
        status: &str,
        duration_ns: Option<u64>,
        error: Option<&str>,
    ) {
        log_status(self.file, self.line, lvl, msg, status, duration_ns, error);
    }
}

/// Logs a task status record (start or end) for the current task.
pub(crate) fn log_status(
    file: &str,
    line: u32,
    lvl: u8,
    msg: &str,
    status: &str,
    duration_ns: Option<u64>,
    error: Option<&str>,
) {
    {
        let parts = Parts {
            level: lvl,
            kind: b'L',
            target: "task",
            module: "",
            file,
            line,
            error,
        };
        emit_parts(
            &parts,
            |b| b.str(msg),
            |kvs| {
                kvs.pair("task_status", &log::kv::Value::from(status));
                if let Some(d) = duration_ns {
                    kvs.pair("duration_ns", &log::kv::Value::from(d));
                }
            },
        );
    }
}

impl TaskGuard {
    /// The message of the success record (default: the task's message).
    pub fn success(mut self, msg: impl Into<String>) {
        self.success = Some(msg.into());
    }

    /// Ends the task as failed, with `err` as the error text.
    pub fn fail(mut self, err: impl std::fmt::Display) {
        self.failure = Some(err.to_string());
    }

    /// Ends the task as the result says: success, or failure with the
    /// error's text. Returns the result.
    pub fn finish<T, E: std::fmt::Display>(mut self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result {
            self.failure = Some(e.to_string());
        }
        result
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let duration = self.task.inner.start.elapsed().as_nanos() as u64;
        let failure = self
            .failure
            .take()
            .or_else(|| std::thread::panicking().then(|| "panicked".to_owned()));
        let message = &self.task.inner.message;
        match failure {
            Some(err) => self.log_status(
                level::ERROR,
                &format!("FAILED {message}"),
                "failed",
                Some(duration),
                Some(&err),
            ),
            None => {
                let msg = self.success.take().unwrap_or_else(|| message.clone());
                self.log_status(level::INFO, &msg, "succeeded", Some(duration), None);
            }
        }
        pop();
    }
}

/// Starts a root task with a new random id (a version-4 UUID).
#[track_caller]
pub fn task(msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    TaskGuard::start(new_uuid(), msg, fields)
}

/// Starts a subtask of the thread's current task (a root task if there is
/// none).
#[track_caller]
pub fn to(msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    let path = STACK
        .try_with(|s| s.borrow().last().map(|t| t.child_path()))
        .ok()
        .flatten()
        .unwrap_or_else(new_uuid);
    TaskGuard::start(path, msg, fields)
}

/// Continues, in this process, a tree started in another: `id` is what
/// [`Task::foreign_id`] returned there.
#[track_caller]
pub fn import_task(id: &str, msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    TaskGuard::start(id.trim().to_owned(), msg, fields)
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

/// A random version-4 UUID, hyphenated.
pub(crate) fn new_uuid() -> String {
    let hi = crate::builder::random_u64();
    let lo = crate::builder::random_u64();
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
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
        Task {
            inner: TaskInner::new(String::new(), "", &[]),
        }
    }
}
