//! `publish` with `format: json`: a consumer in another language needs only
//! a ZeroMQ SUB socket and a JSON parser. `tests/python/subscribe_json.py`
//! (plain pyzmq and `json`, no distlog code) subscribes to the real broker;
//! records from a Rust client (this process, through the distlog library)
//! and from the original Python client (`tests/python/send_records.py`)
//! reach it as one JSON object each, under topics ending in `J`, with the
//! Python LogRecord field names, checked field by field.
//!
//! Needs python3 with pyzmq and the PyPI client: `scripts/test` sets
//! `PYTHON` to a virtualenv that has both.

mod support;

use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{free_port, wait_for, Broker, TempDir};

const WAIT: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
listen: [ENDPOINT]
data_dir: DIR/store
processors:
  live-json: { type: publish, endpoint: PUBLISH, format: json }
rules:
  - name: all
    filter: "true"
    processors: [live-json]
"#;

use support::{python, repo_root};

/// The subscriber script and a channel of the messages it printed.
struct Subscriber {
    child: Child,
    rx: mpsc::Receiver<Json>,
}

impl Subscriber {
    fn start(endpoint: &str) -> Subscriber {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/python/subscribe_json.py"))
            .arg(endpoint)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3 (scripts/test sets PYTHON to a venv with pyzmq)");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Json = serde_json::from_str(&line).expect("the script prints JSON");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Subscriber { child, rx }
    }

    /// The next `n` messages that are not probes, in arrival order.
    fn take(&self, n: usize) -> Vec<Json> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("only {} of {n} JSON records arrived", got.len()));
            if m["record"]["message"] != "probe" {
                got.push(m);
            }
        }
        got
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn probe(push: &zmq::Socket) {
    use distlog_core::record::Record;
    use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
    let b = Batch {
        sender: Sender {
            host: "probe".into(),
            instance: 99,
            ..Sender::default()
        },
        first_seq: 0,
        dropped: 0,
        records: vec![Record {
            kind: b'L',
            message: "probe".into(),
            ..Record::default()
        }],
    };
    push.send_multipart([&b"SLR"[..], &encode_batch_to_vec(&b)], 0)
        .unwrap();
}

fn rust_client_logs(endpoint: &str) -> String {
    let guard = distlog::builder()
        .endpoint(endpoint)
        .program("json-consumer-test")
        .system('T')
        .level("debug")
        .install()
        .expect("distlog");
    distlog::info!(user_id = 42u64, ratio = 0.5f64, ok = true; "order {} shipped to {}", 17u64, "alice");
    let request = distlog::task("checkout", &[("user", &"bob")]);
    let path = request.path().to_owned();
    distlog::warn!(target: "shop::cart", "caf\u{e9} \u{2713} \"quoted\"\nsecond line");
    request.success("paid");
    distlog::error!("plain error");
    distlog::flush();
    drop(guard);
    path
}

#[test]
fn pyzmq_subscriber_reads_rust_and_python_records_as_json() {
    let tmp = TempDir::new("publish-json");
    let dir = tmp.path();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    let config = CONFIG
        .replace("ENDPOINT", &endpoint)
        .replace("PUBLISH", &publish)
        .replace("DIR", &dir.display().to_string());
    let config_path = dir.join("distlogd.yaml");
    std::fs::write(&config_path, config).unwrap();
    let broker = Broker::with_config(&config_path, &endpoint);
    let sub = Subscriber::start(&publish);

    // PUB/SUB: records published before the subscription are not seen;
    // probe until one comes through.
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&endpoint).unwrap();
    wait_for("the subscriber to see a probe", WAIT, || {
        probe(&push);
        match sub.rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => {
                assert_eq!(m["topic"], "SLJ", "the topic says JSON");
                true
            }
            Err(_) => false,
        }
    });

    // The Rust client: every record, in order, field by field.
    let task_path = rust_client_logs(&endpoint);
    let rust = sub.take(5);
    for m in &rust {
        assert_eq!(m["topic"], "TLJ");
    }
    let r: Vec<&Json> = rust.iter().map(|m| &m["record"]).collect();
    let messages: Vec<&str> = r.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        [
            "order 17 shipped to alice",
            "checkout",
            "caf\u{e9} \u{2713} \"quoted\"\nsecond line",
            "paid",
            "plain error"
        ]
    );
    let host = nix_hostname();
    for rec in &r {
        assert_eq!(rec["hostname"], host.as_str());
        assert_eq!(rec["process"], std::process::id());
        assert_eq!(rec["processName"], "json-consumer-test");
        assert_eq!(rec["system"], "T");
        assert_eq!(rec["kind"], "L");
        let t = rec["created"].as_f64().unwrap();
        let ns = rec["time_ns"].as_u64().unwrap();
        assert!(
            (t - ns as f64 / 1e9).abs() < 1e-3,
            "created {t} vs time_ns {ns}"
        );
    }
    let seqs: Vec<u64> = r.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");

    let first = r[0];
    assert_eq!(first["name"], "publish_json_any_language");
    assert_eq!(first["module"], "publish_json_any_language");
    assert_eq!(first["msg"], "order {} shipped to {}");
    assert_eq!(first["args"], serde_json::json!([17, "alice"]));
    assert_eq!(
        (&first["levelname"], &first["levelno"]),
        (&"INFO".into(), &20.into())
    );
    assert_eq!(first["filename"], "publish_json_any_language.rs");
    assert!(first["pathname"]
        .as_str()
        .unwrap()
        .ends_with("publish_json_any_language.rs"));
    assert!(first["lineno"].as_u64().unwrap() > 0);
    assert_eq!(first["exc_text"], Json::Null);
    assert_eq!(first["context"], Json::Null, "outside a task");
    assert_eq!(first["task"], Json::Null);
    assert_eq!(
        first["fields"],
        serde_json::json!({"user_id": 42, "ratio": 0.5, "ok": true})
    );

    let in_task = r[2];
    assert_eq!(in_task["name"], "shop::cart");
    assert_eq!(
        (&in_task["levelname"], &in_task["levelno"]),
        (&"WARNING".into(), &30.into())
    );
    assert_eq!(in_task["task"], task_path.as_str());
    let key = in_task["context"]["key"].as_str().unwrap();
    assert!(key.ends_with(&format!("@{task_path}")), "{key}");
    assert_eq!(in_task["context"]["user"], "bob", "bound task fields");
    assert_eq!(r[4]["levelname"], "ERROR");

    // The original Python client: what it reports sending, record by
    // record (each message is unique), under topic PLJ.
    let out = Command::new(python())
        .arg(repo_root().join("tests/python/send_records.py"))
        .args([&endpoint, "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send_records.py failed (does PYTHON have the PyPI client?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Json = serde_json::from_slice(&out.stdout).unwrap();
    let sent = manifest["records"].as_array().unwrap();
    let py = sub.take(sent.len());
    let by_message: std::collections::BTreeMap<&str, &Json> = py
        .iter()
        .map(|m| {
            assert_eq!(m["topic"], "PLJ");
            (m["record"]["message"].as_str().unwrap(), &m["record"])
        })
        .collect();
    assert_eq!(by_message.len(), sent.len(), "each record once");
    for s in sent {
        let rec = by_message[s["message"].as_str().unwrap()];
        assert_eq!(rec["name"], s["name"]);
        assert_eq!(rec["levelno"], s["levelno"]);
        assert_eq!(rec["thread"], s["thread"]);
        assert_eq!(rec["exc_text"], s["exc_text"]);
        assert_eq!(rec["hostname"], manifest["host"]);
        assert_eq!(rec["process"], manifest["pid"]);
        assert_eq!(rec["processName"], "MainProcess");
        match s["key"].as_str() {
            None => assert_eq!(rec["context"], Json::Null, "{rec}"),
            Some(k) => {
                assert_eq!(rec["context"]["key"], k);
                for (ck, cv) in s["context"].as_object().unwrap() {
                    assert_eq!(&rec["context"][ck], cv, "context {ck} of {rec}");
                }
            }
        }
    }

    drop(sub);
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
}

/// The host name as the Rust client reports it.
fn nix_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
