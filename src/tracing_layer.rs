//! The `tracing` bridge (cargo feature `tracing`): a
//! `tracing_subscriber::Layer` that turns spans into distlog subtasks and
//! events into records, so a service instrumented with `tracing` gets task
//! trees without code changes.
//!
//! - A new span becomes a subtask of its parent span's task, or of the
//!   thread's current distlog task, or a new root; its name is the task's
//!   message and its fields are bound fields. It logs its start record when
//!   created and its end record when closed: success, or failure when an
//!   ERROR event was recorded inside it (the event's message is the error).
//! - Entering a span makes its task current; exiting restores the previous.
//! - An event becomes a record with its level, target, module, file, line,
//!   `message` field as the message, and its other fields typed.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! let subscriber = tracing_subscriber::registry().with(distlog::tracing_layer::DistlogLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("handle", user = 42);
//!     let _e = span.enter();
//!     tracing::info!(rows = 3, "query done");
//! });
//! ```

use crate::facade::{emit_parts, Body, Kvs, Parts};
use crate::record::{level, Value};
use crate::task::{self, End, Task};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The layer. Add it to a `tracing_subscriber::registry()`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DistlogLayer {
    _private: (),
}

impl DistlogLayer {
    /// A layer that sends spans and events through distlog's pipeline.
    pub fn new() -> DistlogLayer {
        DistlogLayer { _private: () }
    }
}

/// What the layer keeps in a span's extensions.
struct SpanTask {
    task: Task,
    failed: AtomicBool,
    error: parking_lot::Mutex<Option<String>>,
    file: &'static str,
    line: u32,
}

fn level_of(l: &Level) -> u8 {
    match *l {
        Level::TRACE => level::TRACE,
        Level::DEBUG => level::DEBUG,
        Level::INFO => level::INFO,
        Level::WARN => level::WARN,
        _ => level::ERROR,
    }
}

/// Collects a span's fields as owned values.
#[derive(Default)]
struct Owned(Vec<(&'static str, Value)>);

impl Visit for Owned {
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.push((f.name(), Value::I64(v)));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.push((f.name(), Value::U64(v)));
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.push((f.name(), Value::F64(v)));
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.push((f.name(), Value::Bool(v)));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.push((f.name(), Value::Str(v.to_owned())));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.push((f.name(), Value::Str(format!("{v:?}"))));
    }
}

/// Writes an event's `message` field into the record body.
struct MessageOnly<'b, 'c>(&'b mut Body<'c>, bool);

impl Visit for MessageOnly<'_, '_> {
    fn record_str(&mut self, f: &Field, v: &str) {
        if f.name() == "message" && !self.1 {
            self.0.str(v);
            self.1 = true;
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        if f.name() == "message" && !self.1 {
            self.0.formatted(|b| {
                let _ = write!(b, "{v:?}");
            });
            self.1 = true;
        }
    }
}

/// Writes an event's other fields, typed.
struct FieldsOnly<'k, 'a, 'b>(&'k mut Kvs<'a, 'b>);

impl Visit for FieldsOnly<'_, '_, '_> {
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.pair_encoded(f.name(), &v);
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.pair_encoded(f.name(), &v);
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.0.pair_encoded(f.name(), &v);
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.pair_encoded(f.name(), &v);
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        if f.name() != "message" {
            self.0.pair_encoded(f.name(), &v);
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        if f.name() != "message" {
            self.0.pair_encoded(f.name(), &crate::debug(v));
        }
    }
}

impl<S> Layer<S> for DistlogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanTask>().map(|t| t.task.clone()));
        let mut fields = Owned::default();
        attrs.record(&mut fields);
        let refs: Vec<(&str, &dyn crate::Encode)> = fields
            .0
            .iter()
            .map(|(k, v)| (*k, v as &dyn crate::Encode))
            .collect();
        let meta = attrs.metadata();
        let (inner, _) = task::new_frame(meta.name(), &refs, |p| match &parent {
            Some(t) => t.inner.write_child_path(p),
            None => task::write_child_of_current(p),
        });
        let (file, line) = (meta.file().unwrap_or(""), meta.line().unwrap_or(0));
        task::log_started(&inner, file, line);
        let t = Task { inner };
        span.extensions_mut().insert(SpanTask {
            task: t,
            failed: AtomicBool::new(false),
            error: parking_lot::Mutex::new(None),
            file,
            line,
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                task::push(t.task.inner.clone());
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if span.extensions().get::<SpanTask>().is_some() {
                task::pop();
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let lvl = level_of(meta.level());
        if lvl >= level::ERROR {
            if let Some(span) = ctx.event_span(event) {
                if let Some(t) = span.extensions().get::<SpanTask>() {
                    t.failed.store(true, Ordering::Relaxed);
                    let mut msg = Owned::default();
                    event.record(&mut msg);
                    let text = msg
                        .0
                        .iter()
                        .find(|(k, _)| *k == "message")
                        .map(|(_, v)| crate::record::ValueRef::from(v).to_string());
                    t.error.lock().get_or_insert(text.unwrap_or_default());
                }
            }
        }
        let parts = Parts {
            level: lvl,
            kind: b'L',
            target: meta.target(),
            module: meta.module_path().unwrap_or(""),
            file: meta.file().unwrap_or(""),
            line: meta.line().unwrap_or(0),
            error: None,
        };
        emit_parts(
            &parts,
            |body| {
                let mut v = MessageOnly(body, false);
                event.record(&mut v);
                if !v.1 {
                    v.0.str("");
                }
            },
            |kvs| event.record(&mut FieldsOnly(kvs)),
        );
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(t) = span.extensions_mut().remove::<SpanTask>() else {
            return;
        };
        if t.failed.load(Ordering::Relaxed) {
            let err = t.error.lock().take().unwrap_or_default();
            task::log_ended(&t.task.inner, t.file, t.line, End::Failed(&err));
        } else {
            task::log_ended(&t.task.inner, t.file, t.line, End::Succeeded(None));
        }
        task::recycle(t.task.inner, None);
    }
}
