//! Tests for the one-pass JSON decoder: the LogRecord mapping, its errors,
//! and agreement with the decoder it replaced ([`reference`]: parse into a
//! `serde_json::Value`, then map the object) on generated records shaped
//! by the original Python client and on hostile input.

use super::*;
use crate::python::to_batch;
use distlog_core::record::Value;
use distlog_core::wire::{encode_batch_to_vec, Batch};

/// The decoder before the one-pass one, kept only here to compare against:
/// `serde_json::from_slice` into a `Value`, then the LogRecord mapping of
/// that object, as written before (2026-12-07, e1d1d0c).
pub(crate) mod reference {
    use crate::python::error::{ErrorKind, IngestError, MAX_BODY};
    use distlog_core::record::{kind, Field, Record, Value};
    use distlog_core::wire::Sender;
    use serde_json::{Map, Value as Json};

    pub(super) const KNOWN: &[&str] = &[
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

    pub fn from_dict(m: &Map<String, Json>) -> Result<(Sender, Record), IngestError> {
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
        let levelno =
            num("levelno")?.ok_or(IngestError::new(ErrorKind::MissingField("levelno")))?;
        let created =
            num("created")?.ok_or(IngestError::new(ErrorKind::MissingField("created")))?;
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
}

/// Decodes `body` both ways and fails unless they agree: the same error
/// (kind, reason and message), or the same sender and record (compared as
/// printed, so that NaN equals NaN) and the same encoded batch.
fn assert_agrees(body: &[u8]) -> Result<(), IngestError> {
    let new = decode_json(body);
    let old = reference::decode_json(body);
    let shown = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    match (new, old) {
        (Err(n), Err(o)) => {
            assert_eq!(n, o, "different errors for {}", shown());
            assert_eq!(n.to_string(), o.to_string(), "{}", shown());
            Err(n)
        }
        (Ok((ns, nr)), Ok((os, or))) => {
            assert_eq!(format!("{ns:?}"), format!("{os:?}"), "{}", shown());
            assert_eq!(format!("{nr:?}"), format!("{or:?}"), "{}", shown());
            let old_bytes = encode_batch_to_vec(&Batch {
                sender: os,
                records: vec![or],
                ..Batch::default()
            });
            assert_eq!(&to_batch(ns, nr)[..], &old_bytes[..], "{}", shown());
            Ok(())
        }
        (n, o) => panic!(
            "one accepts, one rejects: new {:?}, old {:?} for {}",
            n.map(|_| ()),
            o.map(|_| ()),
            shown()
        ),
    }
}

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
    assert_agrees(RECORD.as_bytes()).unwrap();
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

#[test]
fn extra_fields_sorted_and_last_duplicate_wins() {
    let body = br#"{"levelno": 20, "created": 1, "zeta": 1, "alpha": "a", "levelno": 30,
        "mid": [2, {"b": 1, "a": 2}], "alpha": "b",
        "context": {"key": "1@x", "z": 1, "key": "2@y/1", "b": null}}"#;
    let (_, r) = assert_agrees(body)
        .map(|()| decode_json(body).unwrap())
        .unwrap();
    assert_eq!(r.level, 30);
    assert_eq!((r.task_n, r.task.as_str()), (2, "y/1"));
    let keys: Vec<&str> = r.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["b", "z", "alpha", "mid", "zeta"]);
    assert_eq!(r.fields[2].value, Value::Str("b".into()));
    assert_eq!(r.fields[3].value, Value::Str(r#"[2,{"a":2,"b":1}]"#.into()));
}

#[test]
fn the_first_bad_field_in_mapping_order_is_reported() {
    // Input order does not matter: `levelno` is checked before `name`.
    let body = br#"{"name": 5, "levelno": "x", "created": 1}"#;
    let e = assert_agrees(body).unwrap_err();
    assert!(e.to_string().contains("\"levelno\""), "{e}");
    // A bad value overwritten by a good one is no error.
    assert_agrees(br#"{"levelno": "x", "created": 1, "levelno": 10}"#).unwrap();
    // A syntax error after a bad field is a syntax error.
    let e = assert_agrees(br#"{"levelno": "x", "created": 1,"#).unwrap_err();
    assert_eq!(e.reason(), "json_syntax");
}

#[test]
fn serde_json_raw_value_marker_is_read_as_before() {
    let token = RAW_VALUE_TOKEN;
    for body in [
        format!(r#"{{"{token}": "{{\"levelno\": 20, \"created\": 1, \"q\": 1}}"}}"#),
        format!(r#"{{"{token}": "5"}}"#),
        format!(r#"{{"{token}": 5}}"#),
        format!(r#"{{"{token}": "{{"}}"#),
        format!(r#"{{"{token}": "1", "b": 2}}"#),
        format!(r#"{{"{token}": "{{", "b": 2}}"#),
        format!(
            r#"{{"{token}": "{{\"{token}\": \"{{\\\"levelno\\\": 1, \\\"created\\\": 2}}\"}}"}}"#
        ),
        format!(
            r#"{{"levelno": 20, "created": 1, "x": {{"{token}": "{{\"{token}\": \"[{{}}, 1]\"}}"}}}}"#
        ),
        format!(r#"{{"levelno": 20, "created": 1, "{token}": "[1]"}}"#),
        format!(
            r#"{{"levelno": 20, "created": 1, "context": {{"{token}": "{{\"key\": \"3@t\"}}"}}}}"#
        ),
        format!(r#"{{"levelno": 20, "created": 1, "context": {{"{token}": "7"}}}}"#),
        format!(r#"{{"levelno": 20, "created": 1, "x": {{"{token}": "[1, 2]"}}}}"#),
        format!(r#"{{"levelno": 20, "created": 1, "msg": {{"{token}": "\"m\""}}}}"#),
    ] {
        let _ = assert_agrees(body.as_bytes());
    }
}

/// A seeded generator of LogRecord dicts as the original client sends them
/// (DESIGN.md's list of attributes, `context` null or a task key with
/// bound values), then bent: keys dropped, repeated, reordered, values of
/// the wrong type, escapes, nested values, huge and odd numbers.
struct Gen {
    rng: fastrand::Rng,
}

/// The LogRecord attributes (the reference decoder's list).
const ATTRS: &[&str] = reference::KNOWN;

impl Gen {
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "shop.cart",
            "added %s",
            "",
            "a",
            "café ✓",
            "\\n",
            "\\\"",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\t\\\\",
            "key",
            "3@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1",
            "@",
            "/",
            "Traceback (most recent call last):\\n  File \\\"x.py\\\"",
            "MainThread",
        ];
        let n = self.rng.usize(0..3);
        let s: String = (0..n)
            .map(|_| PIECES[self.rng.usize(..PIECES.len())])
            .collect();
        format!("\"{s}\"")
    }

    fn number(&mut self) -> String {
        match self.rng.u8(0..12) {
            0 => self.rng.u64(..).to_string(),
            1 => self.rng.i64(..).to_string(),
            2 => format!("{}", self.rng.f64() * 1e10),
            3 => "18446744073709551616".into(),
            4 => "-9223372036854775809".into(),
            5 => "123456789012345678901234567890e-5".into(),
            6 => "1e308".into(),
            7 => "-0".into(),
            8 => "-0.0".into(),
            9 => "4.9e-324".into(),
            10 => "1700000000.25".into(),
            _ => self.rng.u32(..300).to_string(),
        }
    }

    fn value(&mut self, depth: u32) -> String {
        match self.rng.u8(0..10) {
            0 => "null".into(),
            1 => ["true", "false"][self.rng.usize(..2)].into(),
            2 | 3 => self.number(),
            4..=6 => self.string(),
            7 if depth < 3 => {
                let n = self.rng.usize(0..3);
                let items: Vec<String> = (0..n).map(|_| self.value(depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            8 if depth < 3 => self.object(depth + 1),
            _ => self.number(),
        }
    }

    fn key(&mut self) -> String {
        match self.rng.u8(0..6) {
            0..=2 => format!("\"{}\"", ATTRS[self.rng.usize(..ATTRS.len())]),
            3 => format!(
                "\"{}\"",
                ["user", "order", "sku", "zz", "a", "key"][self.rng.usize(..6)]
            ),
            4 => "\"le\\u0076elno\"".into(),
            _ => self.string(),
        }
    }

    fn object(&mut self, depth: u32) -> String {
        let n = self.rng.usize(0..4);
        let items: Vec<String> = (0..n)
            .map(|_| format!("{}: {}", self.key(), self.value(depth + 1)))
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    fn context(&mut self) -> String {
        match self.rng.u8(0..8) {
            0 => "null".into(),
            1 => self.value(1),
            _ => {
                let mut items = Vec::new();
                if self.rng.u8(0..6) != 0 {
                    let n = ["0", "3", "-1", "x", "4294967296", ""][self.rng.usize(..6)];
                    let path =
                        ["1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1", "t", ""][self.rng.usize(..3)];
                    let key = match self.rng.u8(0..8) {
                        0 => self.value(2),
                        1 => format!("\"{n}{path}\""),
                        _ => format!("\"{n}@{path}\""),
                    };
                    items.push(format!("\"key\": {key}"));
                }
                for _ in 0..self.rng.usize(0..4) {
                    items.push(format!("{}: {}", self.key(), self.value(2)));
                }
                self.rng.shuffle(&mut items);
                format!("{{{}}}", items.join(", "))
            }
        }
    }

    /// One record: every attribute (right type most of the time), some
    /// `extra` keys, then entries dropped, repeated and shuffled.
    fn record(&mut self) -> String {
        let mut items: Vec<String> = Vec::new();
        for &a in ATTRS {
            let right = self.rng.u8(0..10) != 0;
            let v = match a {
                "levelno" | "lineno" | "created" | "msecs" | "relativeCreated" | "thread"
                | "process"
                    if right =>
                {
                    self.number()
                }
                "context" if right => self.context(),
                "args" | "exc_info" | "stack_info" | "exc_text" if self.rng.bool() => "null".into(),
                _ if right => self.string(),
                _ => self.value(1),
            };
            if self.rng.u8(0..12) != 0 {
                items.push(format!("\"{a}\": {v}"));
            }
        }
        for _ in 0..self.rng.usize(0..4) {
            items.push(format!("{}: {}", self.key(), self.value(1)));
        }
        for _ in 0..self.rng.usize(0..3) {
            if !items.is_empty() {
                let i = self.rng.usize(..items.len());
                let k = items[i].split(':').next().unwrap().to_owned();
                let v = self.value(1);
                items.push(format!("{k}: {v}"));
            }
        }
        if self.rng.u8(0..3) == 0 {
            self.rng.shuffle(&mut items);
        }
        format!("{{{}}}", items.join(", "))
    }
}

#[test]
fn agrees_with_the_value_decoder_on_generated_records() {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(0x5eed_17d0),
    };
    let (mut ok, mut errs) = (0, 0);
    for _ in 0..20_000 {
        let body = g.record();
        match assert_agrees(body.as_bytes()) {
            Ok(()) => ok += 1,
            Err(_) => errs += 1,
        }
    }
    // Both kinds must have been exercised.
    assert!(ok > 1_000 && errs > 1_000, "{ok} accepted, {errs} rejected");
}

#[test]
fn agrees_with_the_value_decoder_on_mangled_bytes() {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(0xbad_b17e5),
    };
    for _ in 0..3_000 {
        let mut body = g.record().into_bytes();
        // Every prefix of some records (truncation), random byte edits of
        // the rest, including bytes that are not UTF-8.
        if g.rng.u8(0..20) == 0 {
            for end in 0..body.len() {
                let _ = assert_agrees(&body[..end]);
            }
            continue;
        }
        for _ in 0..g.rng.usize(1..4) {
            let i = g.rng.usize(..body.len());
            const EDITS: &[u8] = b"{}[]\",:\\ 0-+.eEu\xff\xc3\xa9\x00\x7f";
            match g.rng.u8(0..3) {
                0 => body[i] = EDITS[g.rng.usize(..EDITS.len())],
                1 => body.insert(i, EDITS[g.rng.usize(..EDITS.len())]),
                _ => {
                    body.remove(i);
                }
            }
            if body.is_empty() {
                break;
            }
        }
        let _ = assert_agrees(&body);
    }
}

#[test]
fn agrees_with_the_value_decoder_on_hostile_input() {
    let rec = |extra: &str| format!(r#"{{"levelno": 20, "created": 1, {extra}}}"#);
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b" ".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"[1, {\"a\": 2}]".to_vec(),
        b"\"str\"".to_vec(),
        b"12".to_vec(),
        b"{} x".to_vec(),
        b"{}{}".to_vec(),
        b"{\"levelno\": 20, \"created\": 1}\n".to_vec(),
        rec(r#""n": 1e400"#).into_bytes(),
        rec(r#""n": -1e400"#).into_bytes(),
        rec(&format!(r#""n": 1{}"#, "0".repeat(400))).into_bytes(),
        rec(&format!(r#""n": 0.{}1"#, "0".repeat(400))).into_bytes(),
        rec(r#""n": 01"#).into_bytes(),
        rec(r#""n": 1."#).into_bytes(),
        rec(r#""n": NaN"#).into_bytes(),
        rec(r#""thread": 18446744073709551616"#).into_bytes(),
        rec(r#""thread": -5"#).into_bytes(),
        rec(r#""levelno": 1e300"#).into_bytes(),
        rec(r#""process": -1e300, "lineno": 1e20"#).into_bytes(),
        rec(r#""s": "\ud800""#).into_bytes(),
        rec(r#""s": "\udc00x""#).into_bytes(),
        rec(r#""s": "\ud800\u0041""#).into_bytes(),
        rec(r#""s": "\u12""#).into_bytes(),
        rec(r#""s": "\x41""#).into_bytes(),
        rec("\"s\": \"a\tb\"").into_bytes(),
        rec("\"s\": \"\u{0}\"").into_bytes(),
        rec(r#""\ud800": 1"#).into_bytes(),
        rec(r#""context": {"key": "\ud83d\ude00@x"}"#).into_bytes(),
        rec(r#""context": {"key": "1@x", "key": 5}"#).into_bytes(),
        rec(r#""context": {"key": 5, "key": "1@x"}"#).into_bytes(),
        rec(r#""context": [], "context": null"#).into_bytes(),
        rec(r#""context": {}"#).into_bytes(),
        rec(r#""context": "1@x""#).into_bytes(),
        rec(r#""msg": {"b": [1, 2.5, null], "a": true}, "message": 3"#).into_bytes(),
        rec(r#""msg": 1.0, "message": "1.0""#).into_bytes(),
        rec(r#""msg": "", "message": null"#).into_bytes(),
        rec(r#""stack_info": 5, "stack_info": "st""#).into_bytes(),
        rec(r#""hostname": 5"#).into_bytes(),
        rec(r#""processName": [], "hostname": "h""#).into_bytes(),
    ];
    // Invalid UTF-8 inside strings, keys and ignored values.
    for raw in [
        &b"\xff"[..],
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
    ] {
        for wrap in [
            "\"s\": \"{}\"",
            "\"{}\": 1",
            "\"args\": \"{}\"",
            "\"context\": {\"k\": \"{}\"}",
        ] {
            let (a, b) = wrap.split_once("{}").unwrap();
            let mut body = b"{\"levelno\": 20, \"created\": 1, ".to_vec();
            body.extend_from_slice(a.as_bytes());
            body.extend_from_slice(raw);
            body.extend_from_slice(b.as_bytes());
            body.push(b'}');
            cases.push(body);
        }
    }
    // Nesting around serde_json's 128-level limit, in every position the
    // decoder reads differently (extra field, ignored attribute, msg,
    // context entry, context itself, top level).
    for depth in [1, 2, 125, 126, 127, 128, 129, 5_000] {
        let open = "[".repeat(depth);
        let close = "]".repeat(depth);
        let objs = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        cases.push(rec(&format!(r#""x": {open}{close}"#)).into_bytes());
        cases.push(rec(&format!(r#""x": {objs}"#)).into_bytes());
        cases.push(rec(&format!(r#""args": {open}{close}"#)).into_bytes());
        cases.push(rec(&format!(r#""msg": {objs}"#)).into_bytes());
        cases.push(rec(&format!(r#""context": {{"b": {open}{close}}}"#)).into_bytes());
        cases.push(rec(&format!(r#""context": {objs}"#)).into_bytes());
        cases.push(format!("{open}{close}").into_bytes());
        cases.push(objs.into_bytes());
        cases.push(open.into_bytes());
    }
    // Many keys, many duplicates (last wins), many unknown keys.
    let many: Vec<String> = (0..5_000)
        .map(|i| format!("\"k{}\": {i}", i % 1_700))
        .collect();
    cases.push(rec(&many.join(", ")).into_bytes());
    let dups: Vec<String> = (0..5_000).map(|i| format!("\"levelno\": {i}")).collect();
    cases.push(rec(&dups.join(", ")).into_bytes());
    let ctx: Vec<String> = (0..3_000)
        .map(|i| format!("\"key\": \"{i}@t\", \"v{}\": {i}", i % 7))
        .collect();
    cases.push(rec(&format!(r#""context": {{{}}}"#, ctx.join(", "))).into_bytes());
    cases.push(vec![b' '; MAX_BODY + 1]);
    for body in cases {
        let _ = assert_agrees(&body);
    }
}

#[test]
fn to_batch_matches_encode_batch() {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(0x7_0ba7c4),
    };
    let mut checked = 0;
    for _ in 0..5_000 {
        let Ok((s, r)) = decode_json(g.record().as_bytes()) else {
            continue;
        };
        let expected = encode_batch_to_vec(&Batch {
            sender: s.clone(),
            records: vec![r.clone()],
            ..Batch::default()
        });
        let bytes = to_batch(s, r);
        assert_eq!(&bytes[..], &expected[..]);
        // Sized up front: never grown past its first allocation.
        assert!(
            bytes.capacity() < bytes.len() + 1024,
            "{}",
            bytes.capacity()
        );
        checked += 1;
    }
    assert!(checked > 400, "{checked}");
}

#[test]
fn held_entries_are_within_the_stated_size() {
    // The module docs' bound: a key/value pair held at most 64 bytes, an
    // array element one 32-byte `serde_json::Value`.
    assert!(std::mem::size_of::<(Cow<'_, str>, Val<'_>)>() <= 64);
    assert!(std::mem::size_of::<serde_json::Value>() <= 32);
}

/// The deepest a body within [`MAX_BODY`] can nest: arrays to just under
/// serde_json's 128-level limit, inside a raw-value string (which serde_json
/// parses again with a fresh limit), inside arrays, again and again until
/// the body is full. Decoded on a thread with the 2 MiB stack every broker
/// worker gets (std's default), it must return, not overflow the stack
/// (before the bound on raw levels, it aborted the process); and as deep
/// as the bound allows, it is accepted.
#[test]
fn nested_raw_values_fit_a_worker_stack() {
    const DEPTH: usize = 120;
    let nest = |inner: &str| format!("{}{inner}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let mut text = nest("1");
    let mut levels = 0;
    loop {
        let quoted = serde_json::to_string(&text).unwrap();
        let next = nest(&format!(r#"{{"{RAW_VALUE_TOKEN}": {quoted}}}"#));
        let body = format!(r#"{{"levelno": 20, "created": 1, "x": {next}}}"#);
        if body.len() > MAX_BODY {
            break;
        }
        text = next;
        levels += 1;
    }
    assert!(levels >= 5, "only {levels} raw-value levels fit");
    let body = format!(r#"{{"levelno": 20, "created": 1, "x": {text}}}"#);
    let outcome = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || decode_json(body.as_bytes()).map(|_| ()))
        .unwrap()
        .join()
        .expect("decoding panicked");
    let e = outcome.expect_err("raw values nested past the bound");
    assert!(e.to_string().contains("raw values nested more than"), "{e}");
    // As deep as allowed: each level as deep as serde_json allows.
    let mut text = nest("1");
    for _ in 0..MAX_RAW_DEPTH {
        let quoted = serde_json::to_string(&text).unwrap();
        text = nest(&format!(r#"{{"{RAW_VALUE_TOKEN}": {quoted}}}"#));
    }
    let body = format!(r#"{{"levelno": 20, "created": 1, "x": {text}}}"#);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || decode_json(body.as_bytes()).map(|_| ()))
        .unwrap()
        .join()
        .expect("decoding panicked")
        .expect("raw values as deep as allowed");
}
