//! Interop with the original Python client: the real PyPI `distlog`
//! 0.1.dev0 (`tests/python/send_records.py`, using its `ZmqHandler`,
//! formatters and task API unchanged) sends records in JSON and in pickle to
//! the real `distlogd`; after SIGTERM every record is in the store with its
//! logger name, level, message, exception text, task key and bound context
//! intact, and the task keys have the shape the Python client gives them.
//!
//! Needs the PyPI client: `scripts/test` provisions it (a virtualenv under
//! target/) and sets `PYTHON` to its interpreter.

mod support;

use distlog_core::record::{Record, Value};
use distlog_core::wire::Sender;
use distlogd::store::Reader;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{free_port, stored, wait_for, Broker, TempDir};

/// Plain records per encoding.
const N: usize = 50;
/// Records of one run of the script's scenario besides the plain ones: a
/// multi-line warning and ten in the task tree.
const TREE: usize = 11;

use support::{python, repo_root};

/// Fails with the fix when the Python client is not installed.
fn require_python_client() {
    let hint = "run the tests with scripts/test (it installs the pinned client and sets PYTHON)";
    let out = Command::new(python())
        .args(["-c", "import distlog, zmq, six; distlog.ZmqHandler"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); install python3, then {hint}",
                python()
            )
        });
    assert!(
        out.status.success(),
        "python3 cannot import the original distlog client or pyzmq: {}\nrun: {hint}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Every Python record in the store (sender instance 0), as owned values.
fn stored_python_records(dir: &Path) -> Vec<(Sender, Record)> {
    let mut out = Vec::new();
    for (path, reader) in Reader::open_dir(dir).unwrap() {
        assert_eq!(reader.torn(), 0, "{path:?} has a torn tail");
        for b in reader.batches() {
            let b = b.unwrap();
            if b.batch.sender().instance.to_native() != 0 {
                continue;
            }
            assert_eq!(&b.topic.bytes(), b"PLR", "Python records keep system P");
            let sender: Sender =
                rkyv::deserialize::<_, rkyv::rancor::Error>(b.batch.sender()).unwrap();
            for r in b.batch.records() {
                let rec: Record = r.to_record();
                out.push((sender.clone(), rec));
            }
        }
    }
    out
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn field<'a>(r: &'a Record, k: &str) -> Option<&'a Value> {
    r.fields.iter().find(|f| f.key == k).map(|f| &f.value)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn original_python_client_records_arrive_intact_in_json_and_pickle() {
    require_python_client();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let tmp = TempDir::new("python-clients");
    let dir = tmp.path();
    let broker = Broker::start(&endpoint, dir, &[]);
    let t0 = now_ns();

    let script = repo_root().join("tests/python/send_records.py");
    let out = Command::new(python())
        .arg(&script)
        .args([&endpoint, &N.to_string()])
        .output()
        .unwrap();
    let t1 = now_ns();
    assert!(
        out.status.success(),
        "send_records.py failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Json = serde_json::from_slice(&out.stdout).unwrap();
    let sent = manifest["records"].as_array().unwrap();
    assert_eq!(
        sent.len(),
        2 * (N + TREE),
        "what the script reports sending"
    );

    // The script exits once ZeroMQ has written everything; once the broker
    // has stored as many, stop it: it stores what it holds, exits 0.
    wait_for("every record stored", Duration::from_secs(30), || {
        stored(dir, &[]) >= sent.len() as u64
    });
    let (status, stderr) = broker.stop();
    assert!(status.success(), "distlogd exit {status:?}: {stderr}");

    let stored = stored_python_records(dir);
    assert_eq!(
        stored.len(),
        sent.len(),
        "every record arrived once: {stderr}"
    );

    // The same multiset of (logger, level, message, key, exception text)
    // as the client sent; messages name their encoding, so this covers
    // JSON and pickle alike.
    type Row = (String, u8, String, String, String);
    let str_of = |v: &Json| v.as_str().unwrap_or_default().to_owned();
    let mut want: Vec<Row> = sent
        .iter()
        .map(|s| {
            (
                str_of(&s["name"]),
                s["levelno"].as_u64().unwrap() as u8,
                str_of(&s["message"]),
                str_of(&s["key"]),
                str_of(&s["exc_text"]),
            )
        })
        .collect();
    let mut got: Vec<Row> = stored
        .iter()
        .map(|(_, r)| {
            (
                r.target.clone(),
                r.level,
                r.message.clone(),
                r.key().unwrap_or_default(),
                r.error.clone(),
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // Sender, thread, time and bound context, record by record.
    let by_message: BTreeMap<&str, &(Sender, Record)> = stored
        .iter()
        .map(|sr| (sr.1.message.as_str(), sr))
        .collect();
    assert_eq!(by_message.len(), stored.len(), "messages are unique");
    for s in sent {
        let (sender, r) = by_message[s["message"].as_str().unwrap()];
        assert_eq!(sender.host, manifest["host"].as_str().unwrap());
        assert_eq!(u64::from(sender.pid), manifest["pid"].as_u64().unwrap());
        assert_eq!(sender.program, "MainProcess");
        assert_eq!(r.thread_id, s["thread"].as_u64().unwrap());
        assert_eq!(r.thread_name, "MainThread");
        // Task messages are logged by the client's own context module.
        let from = if r.target == "root" {
            "distlog/logger/context.py"
        } else {
            "send_records.py"
        };
        assert!(r.file.ends_with(from), "{}", r.file);
        assert!(r.line > 0 && !r.func.is_empty());
        // `created` is a float of seconds: allow its rounding.
        assert!(
            r.time_ns + 1_000_000 >= t0 && r.time_ns <= t1 + 1_000_000,
            "time {} outside the run {t0}..{t1}",
            r.time_ns
        );
        for (k, v) in s["context"].as_object().unwrap() {
            let want = match v {
                Json::String(x) => Value::Str(x.clone()),
                Json::Number(n) if n.is_i64() => Value::I64(n.as_i64().unwrap()),
                Json::Number(n) => Value::F64(n.as_f64().unwrap()),
                other => panic!("unexpected context value {other}"),
            };
            assert_eq!(field(r, k), Some(&want), "context {k} of {:?}", r.message);
        }
    }

    // Task keys as the Python client makes them: "<n>@<root uuid>/<k>...",
    // one root per run, the same tree in both encodings.
    let mut roots = BTreeSet::new();
    for enc in ["json", "pickle"] {
        let root = &by_message[format!("order for {enc}").as_str()].1;
        assert_eq!((root.target.as_str(), root.level), ("root", 20));
        let uuid = root.task.clone();
        assert!(is_uuid(&uuid), "root task id {uuid}");
        roots.insert(uuid.clone());
        let key = |m: &str| by_message[m].1.key().unwrap();
        let k = |rest: &str| rest.replace('U', &uuid);
        assert_eq!(key(&format!("order for {enc}")), k("0@U"));
        assert_eq!(key(&format!("in task ({enc})")), k("1@U"));
        assert_eq!(key(&format!("caught {enc}")), k("2@U"));
        let tree: BTreeSet<String> = stored
            .iter()
            .filter(|(_, r)| r.task.starts_with(&uuid))
            .map(|(_, r)| r.key().unwrap())
            .collect();
        let expected: BTreeSet<String> = [
            "0@U", "1@U", "2@U", "0@U/1", "1@U/1", "2@U/1", "0@U/1/1", "1@U/1/1", "0@U/2", "1@U/2",
        ]
        .iter()
        .map(|s| k(s))
        .collect();
        assert_eq!(tree, expected, "{enc} task tree");
        // Bound values reach the records of their own task.
        let in_task = &by_message[format!("in task ({enc})").as_str()].1;
        assert_eq!(field(in_task, "user"), Some(&Value::Str("alice".into())));
        assert_eq!(field(in_task, "order"), Some(&Value::I64(17)));
        // A failed subtask logs FAILED with the exception; so does
        // logger.exception.
        let failed = &by_message[format!("FAILED will fail ({enc})").as_str()].1;
        assert_eq!(failed.key().unwrap(), k("1@U/2"));
        let sub = &by_message[format!("in subtask ({enc})").as_str()].1;
        assert_eq!((sub.key().unwrap(), sub.level), (k("1@U/1"), 10));
        assert_eq!(field(sub, "amount"), Some(&Value::F64(12.5)));
        assert_eq!(
            by_message[format!("charged 12 ({enc})").as_str()].1.key(),
            Some(k("2@U/1"))
        );
        assert_eq!(
            by_message[format!("deep ({enc})").as_str()].1.key(),
            Some(k("1@U/1/1"))
        );
        assert_eq!((failed.level, failed.task_n), (40, 1));
        assert!(failed
            .error
            .starts_with("Traceback (most recent call last):"));
        assert!(
            failed.error.ends_with("ValueError: bad card"),
            "{}",
            failed.error
        );
        let caught = &by_message[format!("caught {enc}").as_str()].1;
        assert!(
            caught.error.ends_with("KeyError: 'missing'"),
            "{}",
            caught.error
        );
        assert_eq!(field(caught, "msg"), Some(&Value::Str("caught %s".into())));
        // Non-ASCII text survives; the client escapes newlines as "\n".
        let multi = format!("caf\u{e9} \u{2713} multi\\nline {enc}");
        assert_eq!(by_message[multi.as_str()].1.level, 30);
        // Records outside a task have no key.
        let plain = &by_message[format!("record 0 of {enc}").as_str()].1;
        assert_eq!(
            (plain.key(), plain.target.as_str()),
            (None, "interop.plain")
        );
    }
    assert_eq!(roots.len(), 2, "one root task per encoding");
}
