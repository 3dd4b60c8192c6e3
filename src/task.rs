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

use crate::callsite::Callsite;
pub(crate) use crate::context::{new_frame, pop, push, recycle, write_child_of_current};
use crate::context::{pop_owned, write_uuid, Section, TaskInner};
pub use crate::context::{BOUND_CAPACITY, MESSAGE_CAPACITY, PATH_CAPACITY, POOL_FRAMES};
use crate::entry::Encode;
use crate::pipeline::local;
use crate::record::{kind, level};
use std::mem::ManuallyDrop;
use std::sync::{Arc, OnceLock};

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
        inner.start(),
        &STARTED,
        file,
        line,
        "",
        inner.message(),
        &(&"started",),
        None,
        &Section::first(inner),
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
    let duration = crate::clock::elapsed_ns(inner.start(), now);
    let section = Section::of(inner);
    match end {
        End::Succeeded(msg) => local::emit_status(
            now,
            &SUCCEEDED,
            file,
            line,
            "",
            msg.unwrap_or(inner.message()),
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
            inner.message(),
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
            .field("path", &self.inner.path())
            .finish()
    }
}

impl Task {
    /// The task's path (`<root uuid>/<n>/...`).
    pub fn path(&self) -> &str {
        self.inner.path()
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
        self.inner.bind(key, &value);
    }

    /// An id for a subtask in another process: pass it there and call
    /// [`import_task`] with it. Each call reserves a new subtask number.
    pub fn foreign_id(&self) -> String {
        let mut id = String::with_capacity(self.inner.path().len() + 11);
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

/// Continues, in this process, a tree started in another: `id` is what
/// [`Task::foreign_id`] returned there.
#[track_caller]
pub fn import_task(id: &str, msg: &str, fields: &[(&str, &dyn Encode)]) -> TaskGuard {
    TaskGuard::start(msg, fields, |p| p.push_str(id.trim()))
}

/// The thread's current task, to carry into another thread.
pub fn current() -> Option<Task> {
    crate::context::current().map(|inner| Task { inner })
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
