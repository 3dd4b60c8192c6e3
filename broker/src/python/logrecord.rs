//! The mapping shared by both Python encodings: one decoded
//! `logging.LogRecord.__dict__` to a [`Sender`] and a [`Record`].
//!
//! A decoder fills a [`Dict`] one key at a time ([`Dict::set`]): the keys
//! the mapping reads go to their own slot (a repeated key overwrites it,
//! so the last one wins, as in a Python dict or serde_json's `Map`), the
//! LogRecord keys it drops are dropped, and every other key is kept as a
//! field. [`Dict::into_record`] then maps the slots. The JSON decoder
//! fills the dict while it parses, with strings borrowed from the body
//! where they had no escapes; the pickle reader fills it from the
//! top-level dict of the pickle it parsed, strings borrowed from it.

use super::error::{ErrorKind, IngestError};
use distlog_core::record::{kind, Field, Record, Value};
use distlog_core::wire::Sender;
use serde_json::{Number, Value as Json};
use std::borrow::Cow;

/// One value of a LogRecord dict: scalars as read (strings borrowed from
/// the input where possible), containers as a `serde_json::Value`, and
/// the `context` object as its entries, in input order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val<'a> {
    /// `null` / `None`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, as serde_json holds it.
    Num(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// An array or object (other than the top-level `context`), as the
    /// pickle reader builds it.
    Nested(Json),
    /// An array or object (other than the top-level `context`) as its
    /// compact JSON text, keys sorted, as `serde_json::Value` prints it.
    Text(String),
    /// The `context` object's entries as read; mapped like an object
    /// (sorted by key, the last of a repeated key kept).
    Entries(Vec<(Cow<'a, str>, Val<'a>)>),
}

impl From<Json> for Val<'_> {
    fn from(v: Json) -> Self {
        match v {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(b),
            Json::Number(n) => Val::Num(n),
            Json::String(s) => Val::Str(Cow::Owned(s)),
            nested => Val::Nested(nested),
        }
    }
}

impl Val<'_> {
    /// The value with its strings owned.
    pub(super) fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Num(n) => Val::Num(n),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Nested(j) => Val::Nested(j),
            Val::Text(t) => Val::Text(t),
            Val::Entries(e) => Val::Entries(
                e.into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// The value's JSON text, as `serde_json::Value` prints it (object keys
    /// sorted, the last of a repeated key kept).
    fn into_text(self) -> String {
        match self {
            Val::Null => "null".to_owned(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => Json::Number(n).to_string(),
            Val::Str(s) => Json::String(s.into_owned()).to_string(),
            Val::Nested(j) => j.to_string(),
            Val::Text(t) => t,
            Val::Entries(mut entries) => {
                sort_last_wins(&mut entries);
                let mut out = String::from("{");
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Json::String(k.into_owned()).to_string());
                    out.push(':');
                    out.push_str(&v.into_text());
                }
                out.push('}');
                out
            }
        }
    }
}

/// A LogRecord dict as decoded: the slots the mapping reads (`None` when
/// the key is absent) and the other keys, in input order.
#[derive(Debug, Default)]
pub(super) struct Dict<'a> {
    levelno: Option<Val<'a>>,
    created: Option<Val<'a>>,
    thread: Option<Val<'a>>,
    lineno: Option<Val<'a>>,
    thread_name: Option<Val<'a>>,
    name: Option<Val<'a>>,
    module: Option<Val<'a>>,
    pathname: Option<Val<'a>>,
    func_name: Option<Val<'a>>,
    exc_text: Option<Val<'a>>,
    msg: Option<Val<'a>>,
    message: Option<Val<'a>>,
    stack_info: Option<Val<'a>>,
    context: Option<Val<'a>>,
    hostname: Option<Val<'a>>,
    process: Option<Val<'a>>,
    process_name: Option<Val<'a>>,
    /// Keys that are not LogRecord attributes (`extra`, the client's
    /// `hostname` aside), in input order, repeats included.
    extra: Vec<(Cow<'a, str>, Val<'a>)>,
}

impl<'a> Dict<'a> {
    /// Takes one key of the dict. A repeated key replaces the earlier value
    /// (for the slots here; for other keys when mapped).
    pub(super) fn set(&mut self, key: Cow<'a, str>, v: Val<'a>) {
        let slot = match &*key {
            "levelno" => &mut self.levelno,
            "created" => &mut self.created,
            "thread" => &mut self.thread,
            "lineno" => &mut self.lineno,
            "threadName" => &mut self.thread_name,
            "name" => &mut self.name,
            "module" => &mut self.module,
            "pathname" => &mut self.pathname,
            "funcName" => &mut self.func_name,
            "exc_text" => &mut self.exc_text,
            "msg" => &mut self.msg,
            "message" => &mut self.message,
            "stack_info" => &mut self.stack_info,
            "context" => &mut self.context,
            "hostname" => &mut self.hostname,
            "process" => &mut self.process,
            "processName" => &mut self.process_name,
            // Attributes every LogRecord has that the record derives or
            // does not keep.
            "args" | "levelname" | "filename" | "exc_info" | "msecs" | "relativeCreated"
            | "asctime" | "taskName" => return,
            _ => {
                self.extra.push((key, v));
                return;
            }
        };
        *slot = Some(v);
    }

    /// The dict with its strings owned.
    pub(super) fn into_owned(self) -> Dict<'static> {
        let own = |v: Option<Val<'_>>| v.map(Val::into_owned);
        Dict {
            levelno: own(self.levelno),
            created: own(self.created),
            thread: own(self.thread),
            lineno: own(self.lineno),
            thread_name: own(self.thread_name),
            name: own(self.name),
            module: own(self.module),
            pathname: own(self.pathname),
            func_name: own(self.func_name),
            exc_text: own(self.exc_text),
            msg: own(self.msg),
            message: own(self.message),
            stack_info: own(self.stack_info),
            context: own(self.context),
            hostname: own(self.hostname),
            process: own(self.process),
            process_name: own(self.process_name),
            extra: self
                .extra
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
        }
    }

    /// Maps the dict. `levelno` and `created` are required (every
    /// LogRecord has them); other fields default when absent or `None`,
    /// and a present field of the wrong type is rejected as `bad_type`.
    /// Fields are checked in a fixed order, so the first bad one in that
    /// order is the one reported, whatever the input's key order.
    pub(super) fn into_record(self) -> Result<(Sender, Record), IngestError> {
        let Dict {
            levelno,
            created,
            thread,
            lineno,
            thread_name,
            name,
            module,
            pathname,
            func_name,
            exc_text,
            msg,
            message,
            stack_info,
            context,
            hostname,
            process,
            process_name,
            mut extra,
        } = self;
        let levelno = num(levelno, "levelno")?.ok_or(missing("levelno"))?;
        let created = num(created, "created")?.ok_or(missing("created"))?;
        // Thread idents are 64-bit: read them exactly, not through an f64.
        let thread_id = match thread {
            Some(Val::Num(n)) => n
                .as_u64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0).max(0.0) as u64),
            None | Some(Val::Null) => 0,
            Some(_) => return Err(bad("thread")),
        };
        let line = num(lineno, "lineno")?
            .unwrap_or(0.0)
            .clamp(0.0, u32::MAX as f64) as u32;
        let mut rec = Record {
            time_ns: (created.max(0.0) * 1e9) as u64,
            level: levelno.clamp(0.0, 255.0) as u8,
            kind: kind::LOG,
            line,
            thread_id,
            thread_name: str_of(thread_name, "threadName")?,
            target: str_of(name, "name")?,
            module: str_of(module, "module")?,
            file: str_of(pathname, "pathname")?,
            func: str_of(func_name, "funcName")?,
            error: str_of(exc_text, "exc_text")?,
            ..Record::default()
        };
        let msg = match msg {
            Some(Val::Str(s)) => s.into_owned(),
            None | Some(Val::Null) => String::new(),
            Some(other) => other.into_text(),
        };
        rec.message = match message {
            Some(Val::Str(s)) => s.into_owned(),
            _ => msg.clone(),
        };
        if !msg.is_empty() && msg != rec.message {
            push(&mut rec, "msg".into(), Val::Str(Cow::Owned(msg)));
        }
        if let Some(Val::Str(s)) = stack_info {
            push(&mut rec, "stack_info".into(), Val::Str(s));
        }
        match context {
            None | Some(Val::Null) => {}
            Some(Val::Entries(entries)) => self::context(&mut rec, entries)?,
            Some(Val::Nested(Json::Object(m))) => self::context(
                &mut rec,
                m.into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Val::from(v)))
                    .collect(),
            )?,
            Some(_) => return Err(bad("context")),
        }
        sort_last_wins(&mut extra);
        for (k, v) in extra {
            push(&mut rec, k, v);
        }
        let sender = Sender {
            host: str_of(hostname, "hostname")?,
            pid: num(process, "process")?
                .unwrap_or(0.0)
                .clamp(0.0, u32::MAX as f64) as u32,
            program: str_of(process_name, "processName")?,
            start_ns: 0,
            instance: 0,
        };
        Ok((sender, rec))
    }
}

fn bad(k: &'static str) -> IngestError {
    IngestError::new(ErrorKind::BadType(k))
}

fn missing(k: &'static str) -> IngestError {
    IngestError::new(ErrorKind::MissingField(k))
}

/// A string slot: empty when absent or `None`.
fn str_of(v: Option<Val<'_>>, k: &'static str) -> Result<String, IngestError> {
    match v {
        None | Some(Val::Null) => Ok(String::new()),
        Some(Val::Str(s)) => Ok(s.into_owned()),
        Some(_) => Err(bad(k)),
    }
}

/// A number slot: `None` when absent or `None`.
fn num(v: Option<Val<'_>>, k: &'static str) -> Result<Option<f64>, IngestError> {
    match v {
        None | Some(Val::Null) => Ok(None),
        Some(Val::Num(n)) => Ok(n.as_f64()),
        Some(_) => Err(bad(k)),
    }
}

/// Orders entries as serde_json's (sorted) `Map` iterates them, keeping
/// the last value of a repeated key: a stable sort, then each run of
/// equal keys folded into its first slot with the run's last value.
/// O(n log n) for n entries, no allocation beyond the sort's buffer.
pub(super) fn sort_last_wins<V>(entries: &mut Vec<(Cow<'_, str>, V)>) {
    if entries.len() < 2 {
        return;
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(&mut later.1, &mut kept.1);
        }
        same
    });
}

/// `context`: `key` is `"<n>@<path>"`, everything else a bound field.
fn context(rec: &mut Record, mut ctx: Vec<(Cow<'_, str>, Val<'_>)>) -> Result<(), IngestError> {
    sort_last_wins(&mut ctx);
    for (k, v) in ctx {
        if k == "key" {
            let Val::Str(key) = v else {
                return Err(bad("context.key"));
            };
            let (n, path) = key.split_once('@').ok_or(bad("context.key"))?;
            rec.task_n = n.parse().map_err(|_| bad("context.key"))?;
            rec.task = path.to_owned();
        } else {
            push(rec, k, v);
        }
    }
    Ok(())
}

fn push(rec: &mut Record, key: Cow<'_, str>, v: Val<'_>) {
    let value = match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(b),
        Val::Num(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::I64(i),
            (None, Some(u)) => Value::U64(u),
            _ => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Val::Str(s) => Value::Str(s.into_owned()),
        nested => Value::Str(nested.into_text()),
    };
    rec.fields.push(Field {
        key: key.into_owned(),
        value,
    });
}
