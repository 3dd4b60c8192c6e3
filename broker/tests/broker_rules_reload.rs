//! The real broker with a config: records from two senders (and a Python
//! record) are routed by rules to the right processors (store, jsonl,
//! publish), the Prometheus endpoint counts them, a bad config on SIGHUP
//! is rejected while the broker keeps serving, a good one changes the
//! routing, and SIGTERM stores everything.

mod support;

use distlog_core::record::{level, Record};
use distlog_core::wire::{encode_batch_to_vec, Batch, OwnedBatch, Sender};
use distlogd::store::Reader;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{free_port, metrics_text, wait_for, Broker, TempDir};

/// How long a condition may take to come true.
const WAIT: Duration = Duration::from_secs(20);

/// A batch from sender `instance`: records `first..first+n`, the level and
/// target cycling so rules pick some of them.
fn batch(instance: u64, first: u64, n: u64) -> Vec<u8> {
    let b = Batch {
        sender: Sender {
            host: format!("host-{instance}"),
            pid: 100 + instance as u32,
            program: "rules-test".into(),
            start_ns: 1,
            instance,
        },
        first_seq: first,
        dropped: 0,
        records: (first..first + n)
            .map(|s| Record {
                seq: s,
                time_ns: 1_700_000_000_000_000_000 + s,
                level: [level::INFO, level::ERROR, level::DEBUG, level::WARN][(s % 4) as usize],
                kind: b'L',
                target: if s % 3 == 0 { "db::pool" } else { "app" }.into(),
                message: format!("s{instance} r{s}"),
                ..Record::default()
            })
            .collect(),
    };
    encode_batch_to_vec(&b).to_vec()
}

fn is_error(s: u64) -> bool {
    s % 4 == 1
}
fn is_db(s: u64) -> bool {
    s % 3 == 0
}

const CONFIG: &str = r#"
listen: [ENDPOINT]
data_dir: DIR/store
metrics: { listen: "METRICS", interval: 0s }
processors:
  store: { type: store }
  errors: { type: jsonl, path: DIR/errors.jsonl }
  live: { type: publish, endpoint: PUBLISH }
rules:
  - name: errors
    filter: level >= error
    processors: [errors, store]
  - name: db
    filter: target starts_with "db::"
    processors: [live]
default: [store]
"#;

/// Stored messages, in order, per sender instance.
fn stored(dir: &Path) -> Vec<(u64, String)> {
    let mut v = Vec::new();
    for (_, r) in Reader::open_dir(dir).unwrap() {
        for b in r.batches() {
            let b = b.unwrap();
            for rec in b.batch.records() {
                v.push((
                    b.batch.sender().instance.to_native(),
                    rec.message().to_owned(),
                ));
            }
        }
    }
    v
}

#[test]
fn rules_route_records_reload_keeps_serving_sigterm_stores_all() {
    let tmp = TempDir::new("rules");
    let dir = tmp.path();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = CONFIG
        .replace("ENDPOINT", &endpoint)
        .replace("PUBLISH", &publish)
        .replace("METRICS", &metrics)
        .replace("DIR", &dir.display().to_string());
    let config_path = dir.join("distlogd.yaml");
    std::fs::write(&config_path, &config).unwrap();

    let check = Command::new(env!("CARGO_BIN_EXE_distlogd"))
        .arg("--check-config")
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let broker = Broker::with_config(&config_path, &endpoint);

    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB).unwrap();
    sub.set_subscribe(b"").unwrap();
    sub.connect(&publish).unwrap();
    let push = [
        ctx.socket(zmq::PUSH).unwrap(),
        ctx.socket(zmq::PUSH).unwrap(),
    ];
    for p in &push {
        p.connect(&endpoint).unwrap();
    }
    // The subscriber is connected once the metrics endpoint answers and a
    // probe batch comes through.
    wait_for("metrics endpoint", WAIT, || {
        std::net::TcpStream::connect(&metrics).is_ok()
    });
    // Probes: record 0 of sender 9 is an INFO db record, so it is only
    // published (never stored, never in the errors file).
    let mut probes = 0;
    wait_for("subscription", WAIT, || {
        push[0]
            .send_multipart([&b"TLR"[..], &batch(9, 0, 1)], 0)
            .unwrap();
        probes += 1;
        std::thread::sleep(Duration::from_millis(20));
        sub.recv_multipart(zmq::DONTWAIT).is_ok()
    });
    while sub.recv_multipart(zmq::DONTWAIT).is_ok() {}

    // Two senders, interleaved, 40 batches of 25 each, plus garbage.
    let (batches, per) = (40u64, 25u64);
    for i in 0..batches {
        for (k, p) in push.iter().enumerate() {
            p.send_multipart([&b"TLR"[..], &batch(k as u64 + 1, i * per, per)], 0)
                .unwrap();
        }
        if i % 10 == 0 {
            push[0]
                .send_multipart([&b"TLR"[..], &b"garbage"[..]], 0)
                .unwrap();
        }
    }
    let py = br#"{"name": "py.app", "levelno": 40, "created": 1700000000.0,
        "message": "python error", "hostname": "py-1", "process": 5}"#;
    push[1].send_multipart([&b"PLJ"[..], &py[..]], 0).unwrap();

    // Live: exactly the db records, in order per sender.
    let total = batches * per;
    let want_db = (0..total).filter(|&s| is_db(s)).count() * 2;
    let mut got_db = vec![Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(20);
    while got_db[0].len() + got_db[1].len() < want_db {
        assert!(
            Instant::now() < deadline,
            "published: {}",
            got_db[0].len() + got_db[1].len()
        );
        let Ok(frames) = sub.recv_multipart(zmq::DONTWAIT) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        assert_eq!(frames[0], b"TLR");
        let b = OwnedBatch::from_body(&frames[1]).unwrap();
        let inst = b.get().sender().instance.to_native();
        if inst == 9 {
            continue; // a late probe
        }
        for r in b.get().records() {
            assert_eq!(r.target(), "db::pool");
            got_db[inst as usize - 1].push(r.seq());
        }
    }
    for g in &got_db {
        let want: Vec<u64> = (0..total).filter(|&s| is_db(s)).collect();
        assert_eq!(g, &want);
    }

    // Metrics.
    wait_for("metrics count", WAIT, || {
        metrics_text(&metrics).contains(&format!(
            "distlogd_records_total {}\n",
            2 * total + probes + 1
        ))
    });
    let m = metrics_text(&metrics);
    assert!(
        m.starts_with("HTTP/1.0 200") || m.starts_with("HTTP/1.1 200"),
        "{m}"
    );
    let errors = (0..total).filter(|&s| is_error(s)).count() as u64 * 2 + 1;
    assert!(
        m.contains(&format!(
            "distlogd_rule_matches_total{{rule=\"errors\"}} {errors}\n"
        )),
        "{m}"
    );
    assert!(
        m.contains("distlogd_rejected_total{reason=\"bad_length\"} 4\n")
            || m.contains("distlogd_rejected_total{reason=\"truncated\"} 4\n"),
        "{m}"
    );

    // A bad config on SIGHUP: rejected, old rules keep working.
    std::fs::write(
        &config_path,
        config.replace("level >= error", "level >= nonsense"),
    )
    .unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(broker.id() as i32, libc::SIGHUP) };
    wait_for("failed reload counted", WAIT, || {
        metrics_text(&metrics).contains("distlogd_reloads_failed_total 1\n")
    });
    push[0]
        .send_multipart([&b"TLR"[..], &batch(1, total, 4)], 0)
        .unwrap();
    // A good one: errors no longer go to the store.
    std::fs::write(
        &config_path,
        config.replace("processors: [errors, store]", "processors: [errors]"),
    )
    .unwrap();
    wait_for("first post-reload batch taken", WAIT, || {
        metrics_text(&metrics).contains(&format!(
            "distlogd_records_total {}\n",
            2 * total + probes + 1 + 4
        ))
    });
    // SAFETY: as above.
    unsafe { libc::kill(broker.id() as i32, libc::SIGHUP) };
    wait_for("reload applied", WAIT, || {
        metrics_text(&metrics).contains("distlogd_reloads_total 1\n")
    });
    push[0]
        .send_multipart([&b"TLR"[..], &batch(1, total + 4, 4)], 0)
        .unwrap();
    wait_for("last batch taken", WAIT, || {
        metrics_text(&metrics).contains(&format!(
            "distlogd_records_total {}\n",
            2 * total + probes + 1 + 8
        ))
    });
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");
    assert!(stderr.contains("reload rejected"), "{stderr}");
    assert!(
        stderr.contains("nonsense"),
        "the error names the problem: {stderr}"
    );

    // Store: every non-db-only record: errors, and everything that matched
    // no rule; after the good reload, errors are no longer stored.
    let got = stored(&dir.join("store"));
    for inst in [1u64, 2] {
        let mine: Vec<&str> = got
            .iter()
            .filter(|(i, _)| *i == inst)
            .map(|(_, m)| m.as_str())
            .collect();
        let mut want: Vec<String> = (0..total)
            .filter(|&s| is_error(s) || !is_db(s))
            .map(|s| format!("s{inst} r{s}"))
            .collect();
        if inst == 1 {
            want.extend(
                (total..total + 4)
                    .filter(|&s| is_error(s) || !is_db(s))
                    .map(|s| format!("s1 r{s}")),
            );
            want.extend(
                (total + 4..total + 8)
                    .filter(|&s| !is_error(s) && !is_db(s))
                    .map(|s| format!("s1 r{s}")),
            );
        }
        assert_eq!(mine, want, "sender {inst}");
    }
    assert!(got.iter().any(|(i, m)| *i == 0 && m == "python error"));

    // jsonl: exactly the errors, Python's included, with the seed's names.
    let lines = std::fs::read_to_string(dir.join("errors.jsonl")).unwrap();
    let msgs: Vec<String> = lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["levelname"], "ERROR", "{l}");
            v["message"].as_str().unwrap().to_owned()
        })
        .collect();
    let want_errors = errors as usize + 2; // + one in each post-reload batch
    assert_eq!(msgs.len(), want_errors, "{msgs:?}");
    assert!(msgs.contains(&"python error".to_owned()));
}
