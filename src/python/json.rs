//! The JSON form of a Python LogRecord.

use super::{ErrorKind, IngestError, MAX_BODY};
use crate::record::{kind, Field, Record, Value};
use crate::wire::Sender;
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

/// Decodes a JSON Python record. serde_json bounds nesting (128 levels) and
/// the body size is checked first, so hostile input cannot exhaust memory
/// or the stack.
pub fn decode_json(body: &[u8]) -> Result<(Sender, Record), IngestError> {
    if body.len() > MAX_BODY {
        return Err(IngestError::new(ErrorKind::TooLarge(body.len())));
    }
    let v: Json = serde_json::from_slice(body)
        .map_err(|e| IngestError::new(ErrorKind::Syntax(e.to_string())))?;
    let Json::Object(m) = v else {
        return Err(IngestError::new(ErrorKind::NotObject));
    };
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
    let mut rec = Record {
        time_ns: (created.max(0.0) * 1e9) as u64,
        level: levelno.clamp(0.0, 255.0) as u8,
        kind: kind::LOG,
        line: num("lineno")?.unwrap_or(0.0).clamp(0.0, u32::MAX as f64) as u32,
        thread_id: num("thread")?.unwrap_or(0.0).max(0.0) as u64,
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
    for (k, v) in &m {
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

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"name": "shop.cart", "msg": "added %s", "args": ["x"],
        "levelname": "INFO", "levelno": 20, "pathname": "/app/cart.py",
        "filename": "cart.py", "module": "cart", "exc_info": null,
        "exc_text": "Traceback: boom", "stack_info": null, "lineno": 41,
        "funcName": "add", "created": 1700000000.5, "msecs": 500.0,
        "relativeCreated": 12.0, "thread": 140001, "threadName": "MainThread",
        "processName": "MainProcess", "process": 4321, "message": "added x",
        "asctime": null, "hostname": "shop-1", "order_id": 17,
        "context": {"key": "4@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1/2", "user": "bob"}}"#;

    #[test]
    fn maps_every_logrecord_field() {
        let (s, r) = decode_json(RECORD.as_bytes()).unwrap();
        assert_eq!(
            (s.host.as_str(), s.pid, s.program.as_str(), s.instance),
            ("shop-1", 4321, "MainProcess", 0)
        );
        assert_eq!(r.time_ns, 1_700_000_000_500_000_000);
        assert_eq!(r.level, 20);
        assert_eq!(
            (r.target.as_str(), r.module.as_str(), r.func.as_str()),
            ("shop.cart", "cart", "add")
        );
        assert_eq!((r.file.as_str(), r.line), ("/app/cart.py", 41));
        assert_eq!(
            (r.thread_id, r.thread_name.as_str()),
            (140001, "MainThread")
        );
        assert_eq!(r.message, "added x");
        assert_eq!(r.error, "Traceback: boom");
        assert_eq!(
            r.key().unwrap(),
            "4@1b4e28ba-2fa1-11d2-883f-0016d3cca427/1/2"
        );
        let f = |k: &str| {
            r.fields
                .iter()
                .find(|f| f.key == k)
                .map(|f| f.value.clone())
        };
        assert_eq!(f("msg"), Some(Value::Str("added %s".into())));
        assert_eq!(f("user"), Some(Value::Str("bob".into())));
        assert_eq!(f("order_id"), Some(Value::I64(17)));
        assert_eq!(f("args"), None);
    }

    #[test]
    fn rejects_bad_input_with_reasons() {
        let reason = |b: &[u8]| decode_json(b).unwrap_err().reason();
        assert_eq!(reason(b"{"), "json_syntax");
        assert_eq!(reason(b"[1]"), "json_not_object");
        assert_eq!(reason(b"{}"), "missing_field");
        assert_eq!(reason(br#"{"levelno": "x", "created": 1}"#), "bad_type");
        assert_eq!(
            reason(br#"{"levelno": 20, "created": 1, "context": {"key": "x"}}"#),
            "bad_type"
        );
        assert_eq!(reason(&vec![b' '; MAX_BODY + 1]), "too_large");
        let deep = "[".repeat(100_000);
        assert_eq!(reason(deep.as_bytes()), "json_syntax");
        assert_eq!(reason(b"\xff\xfe"), "json_syntax");
    }
}
