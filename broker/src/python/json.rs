//! The JSON form of a Python LogRecord.

use super::error::{ErrorKind, IngestError, MAX_BODY};
use super::logrecord::from_dict;
use distlog_core::record::Record;
use distlog_core::wire::Sender;
use serde_json::Value as Json;

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
    from_dict(&m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog_core::record::Value;

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
