//! The mapping shared by both Python encodings: one decoded
//! `logging.LogRecord.__dict__` (as a JSON object, whichever encoding it
//! came in) to a [`Sender`] and a [`Record`].

use super::error::{ErrorKind, IngestError};
use distlog_core::record::{kind, Field, Record, Value};
use distlog_core::wire::Sender;
use serde_json::{Map, Value as Json};

/// LogRecord keys that map to record or sender fields (or are derived),
/// so they do not become key/value fields.
const KNOWN: &[&str] = &[
    "name",
    "msg",
    "args",
    "levelname",
    "levelno",
    "pathname",
    "filename",
    "module",
    "exc_info",
    "exc_text",
    "stack_info",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
    "message",
    "asctime",
    "hostname",
    "context",
    "taskName",
];

/// Maps one LogRecord dict. `levelno` and `created` are required (every
/// LogRecord has them); other fields default when absent or `None`, and a
/// present field of the wrong type is rejected as `bad_type`.
pub(super) fn from_dict(m: &Map<String, Json>) -> Result<(Sender, Record), IngestError> {
    let str_of = |k: &'static str| -> Result<String, IngestError> {
        match m.get(k) {
            None | Some(Json::Null) => Ok(String::new()),
            Some(Json::String(s)) => Ok(s.clone()),
            Some(_) => Err(IngestError::new(ErrorKind::BadType(k))),
        }
    };
    let num = |k: &'static str| -> Result<Option<f64>, IngestError> {
        match m.get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(IngestError::new(ErrorKind::BadType(k))),
        }
    };
    let levelno = num("levelno")?.ok_or(IngestError::new(ErrorKind::MissingField("levelno")))?;
    let created = num("created")?.ok_or(IngestError::new(ErrorKind::MissingField("created")))?;
    // Thread idents are 64-bit: read them exactly, not through an f64.
    let thread_id = match m.get("thread") {
        Some(Json::Number(n)) => n
            .as_u64()
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0).max(0.0) as u64),
        None | Some(Json::Null) => 0,
        Some(_) => return Err(IngestError::new(ErrorKind::BadType("thread"))),
    };
    let mut rec = Record {
        time_ns: (created.max(0.0) * 1e9) as u64,
        level: levelno.clamp(0.0, 255.0) as u8,
        kind: kind::LOG,
        line: num("lineno")?.unwrap_or(0.0).clamp(0.0, u32::MAX as f64) as u32,
        thread_id,
        thread_name: str_of("threadName")?,
        target: str_of("name")?,
        module: str_of("module")?,
        file: str_of("pathname")?,
        func: str_of("funcName")?,
        error: str_of("exc_text")?,
        ..Record::default()
    };
    let msg = match m.get("msg") {
        Some(Json::String(s)) => s.clone(),
        None | Some(Json::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    rec.message = match m.get("message") {
        Some(Json::String(s)) => s.clone(),
        _ => msg.clone(),
    };
    if !msg.is_empty() && msg != rec.message {
        push(&mut rec, "msg", Json::String(msg));
    }
    if let Some(Json::String(s)) = m.get("stack_info") {
        push(&mut rec, "stack_info", Json::String(s.clone()));
    }
    match m.get("context") {
        None | Some(Json::Null) => {}
        Some(Json::Object(ctx)) => context(&mut rec, ctx)?,
        Some(_) => return Err(IngestError::new(ErrorKind::BadType("context"))),
    }
    for (k, v) in m {
        if !KNOWN.contains(&k.as_str()) {
            push(&mut rec, k, v.clone());
        }
    }
    let sender = Sender {
        host: str_of("hostname")?,
        pid: num("process")?.unwrap_or(0.0).clamp(0.0, u32::MAX as f64) as u32,
        program: str_of("processName")?,
        start_ns: 0,
        instance: 0,
    };
    Ok((sender, rec))
}

/// `context`: `key` is `"<n>@<path>"`, everything else a bound field.
fn context(rec: &mut Record, ctx: &Map<String, Json>) -> Result<(), IngestError> {
    for (k, v) in ctx {
        if k == "key" {
            let Json::String(key) = v else {
                return Err(IngestError::new(ErrorKind::BadType("context.key")));
            };
            let (n, path) = key
                .split_once('@')
                .ok_or(IngestError::new(ErrorKind::BadType("context.key")))?;
            rec.task_n = n
                .parse()
                .map_err(|_| IngestError::new(ErrorKind::BadType("context.key")))?;
            rec.task = path.to_owned();
        } else {
            push(rec, k, v.clone());
        }
    }
    Ok(())
}

fn push(rec: &mut Record, key: &str, v: Json) {
    let value = match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::I64(i),
            (None, Some(u)) => Value::U64(u),
            _ => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s),
        nested => Value::Str(nested.to_string()),
    };
    rec.fields.push(Field {
        key: key.to_owned(),
        value,
    });
}
