//! `distlog tail` against a publisher: it prints the records published
//! after it subscribed, filtered, validating every batch (garbage and other
//! encodings are skipped), indented by task depth in text form; and an
//! unreachable broker is a one-line error.
//!
//! The publisher is a socket the test binds itself, speaking the broker's
//! publish format: `[topic (3 bytes), batch body]`.

mod support;

use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::*;

fn batch(first_seq: u64, recs: &[(u8, &str, &str)]) -> Vec<u8> {
    let b = Batch {
        sender: Sender {
            host: "web-1".into(),
            pid: 77,
            program: "shop".into(),
            start_ns: 1,
            instance: 9,
        },
        first_seq,
        dropped: 0,
        records: recs
            .iter()
            .enumerate()
            .map(|(i, (level, msg, task))| Record {
                seq: first_seq + i as u64,
                time_ns: 1_700_000_000_000_000_000,
                level: *level,
                kind: b'L',
                target: "shop::cart".into(),
                message: (*msg).into(),
                task: (*task).into(),
                task_n: u32::from(!task.is_empty()),
                ..Record::default()
            })
            .collect(),
    };
    encode_batch_to_vec(&b).to_vec()
}

/// Starts `distlog tail` and a thread that forwards its stdout lines.
fn tail(endpoint: &str, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["tail", "--broker", endpoint])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn stop(mut child: Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "tail exit {status:?}");
}

#[test]
fn tail_prints_records_published_after_it_subscribed_filtered() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let ctx = zmq::Context::new();
    let publisher = ctx.socket(zmq::XPUB).unwrap();
    publisher.bind(&endpoint).unwrap();
    publisher.set_rcvtimeo(10_000).unwrap();

    // Published before anyone listens: nobody sees it.
    publisher
        .send_multipart([&b"PLR"[..], &batch(0, &[(40, "too early", "")])], 0)
        .unwrap();

    let (jsonl_tail, jsonl) = tail(
        &endpoint,
        &["--filter", "level >= warn", "--format", "jsonl"],
    );
    let (text_tail, text) = tail(&endpoint, &["--topic", "PL"]);
    // Both subscriptions arrive (XPUB hands them to us as messages).
    for _ in 0..2 {
        let sub = publisher.recv_bytes(0).expect("a subscription");
        assert_eq!(sub[0], 1, "subscribe message");
    }
    let root = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let child = format!("{root}/2/1");
    publisher
        .send_multipart(
            [
                &b"PLR"[..],
                &batch(
                    1,
                    &[(20, "quiet info", root), (30, "disk almost full", &child)],
                ),
            ],
            0,
        )
        .unwrap();
    // Garbage and other encodings are skipped, not fatal.
    publisher
        .send_multipart([&b"PLR"[..], &b"DLB\x01junk"[..]], 0)
        .unwrap();
    publisher.send(&b"one frame"[..], 0).unwrap();
    publisher
        .send_multipart([&b"PLJ"[..], &b"{\"levelno\": 50}"[..]], 0)
        .unwrap();
    // Another system: the text tail subscribed to `PL` only.
    publisher
        .send_multipart([&b"TLR"[..], &batch(3, &[(50, "test system", "")])], 0)
        .unwrap();
    publisher
        .send_multipart(
            [
                &b"PLR"[..],
                &batch(4, &[(40, "payment failed \"card\"", "")]),
            ],
            0,
        )
        .unwrap();

    let wait = Duration::from_secs(10);
    let got: Vec<serde_json::Value> = (0..3)
        .map(|_| serde_json::from_str(&jsonl.recv_timeout(wait).expect("a line")).unwrap())
        .collect();
    let messages: Vec<&str> = got.iter().map(|v| v["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        ["disk almost full", "test system", "payment failed \"card\""]
    );
    assert_eq!(got[0]["context"]["key"], format!("1@{child}"));
    assert_eq!(got[0]["hostname"], "web-1");
    assert_eq!(got[1]["system"], "T");

    let lines: Vec<String> = (0..3)
        .map(|_| text.recv_timeout(wait).expect("a line"))
        .collect();
    assert!(lines[0].starts_with("20"), "{lines:?}");
    assert!(
        lines[0].contains(&format!(
            "INFO     web-1/77 1@{root} shop::cart: quiet info"
        )),
        "{lines:?}"
    );
    // Indented by task depth (two levels below the root).
    assert!(lines[1].starts_with("    20"), "{lines:?}");
    assert!(lines[1].contains("WARNING  web-1/77 1@"), "{lines:?}");
    assert!(
        lines[2].contains("ERROR    web-1/77 shop::cart: payment failed \"card\""),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\x1b')),
        "no colour into a pipe"
    );

    stop(jsonl_tail);
    stop(text_tail);
    assert!(
        jsonl.try_recv().is_err() && text.try_recv().is_err(),
        "nothing else printed"
    );
}

#[test]
fn unreachable_broker_is_a_one_line_error() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let out = distlog(["tail", "--broker", &endpoint, "--connect-timeout", "0.5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("broker unreachable"), "{err}");

    let out = distlog(["tail", "--broker", &endpoint, "--filter", "level >> 3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1, column"));
}
