//! Messages that are small on the wire but expensive to read, against the
//! real broker routing every record to store, jsonl, console and publish:
//! each attack is rejected and counted by reason (`docs/PROTOCOL.md`,
//! "Cost bounds"), every good record sent between the attacks is stored,
//! written to the jsonl file and the console and published, and the
//! broker's peak resident set (VmHWM) stays under [`RSS_BOUND_MIB`].
//!
//! `DISTLOGD_UNDER_TEST=/path/to/distlogd` runs the same attacks against
//! another build (how PERFORMANCE.md's "before" column was measured).

mod support;

use distlog_core::record::Record;
use distlog_core::wire::{
    encode_batch_to_vec, tag, Batch, Sender, Site, Thread, WireBatch, WireRecord,
};
use distlogd::store::Reader;
use std::process::Command;
use std::time::Duration;
use support::{free_port, metric, metrics_text, status_kib, wait_for, Broker, TempDir};

/// The most the broker's peak resident set may reach in any of these
/// tests, attacks included (an idle broker with these four processors
/// peaks at about 20 MiB here).
const RSS_BOUND_MIB: u64 = 128;

struct Run {
    tmp: TempDir,
    broker: Broker,
    metrics: String,
    push: zmq::Socket,
    _ctx: zmq::Context,
    /// Good records sent so far (sequence numbers 0..seq).
    seq: u64,
}

impl Run {
    fn start(name: &str) -> Run {
        let tmp = TempDir::new(name);
        let d = tmp.path().display().to_string();
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let publish = format!("tcp://127.0.0.1:{}", free_port());
        let config = tmp.path().join("c.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: [{endpoint}]\nmax_message: 16MiB\nmetrics: {{listen: \"{metrics}\", interval: 0s}}\n\
                 processors:\n  store: {{type: store, dir: {d}/store}}\n  lines: {{type: jsonl, path: {d}/all.jsonl}}\n  \
                 screen: {{type: console, stream: stdout, colour: never}}\n  live: {{type: publish, endpoint: \"{publish}\"}}\n\
                 default: [store, lines, screen, live]\n"
            ),
        )
        .unwrap();
        let bin = std::env::var("DISTLOGD_UNDER_TEST")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_distlogd").to_owned());
        let mut c = Command::new(bin);
        c.arg("--config")
            .arg(&config)
            .stdout(std::fs::File::create(tmp.path().join("console.txt")).unwrap());
        let broker = Broker::spawn(c, &endpoint);
        wait_for("the metrics endpoint", Duration::from_secs(10), || {
            std::net::TcpStream::connect(&metrics).is_ok()
        });
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(100_000).unwrap();
        push.connect(&endpoint).unwrap();
        Run {
            tmp,
            broker,
            metrics,
            push,
            _ctx: ctx,
            seq: 0,
        }
    }

    fn send(&self, topic: &[u8], body: &[u8]) {
        self.push.send_multipart([topic, body], 0).unwrap();
    }

    /// Ten good records from the sender "good", as the client sends them.
    fn good(&mut self) {
        let first = self.seq;
        let batch = Batch {
            sender: Sender {
                host: "good".into(),
                program: "app".into(),
                instance: 7,
                ..Sender::default()
            },
            first_seq: first,
            dropped: 0,
            records: (first..first + 10)
                .map(|s| Record {
                    seq: s,
                    level: 20,
                    target: "app::good".into(),
                    message: format!("good {s}"),
                    ..Record::default()
                })
                .collect(),
        };
        self.send(b"TLR", &encode_batch_to_vec(&batch));
        self.seq += 10;
    }

    /// Waits until every reason is counted as often as said and every
    /// processor has written `extra` records beyond the good ones; checks
    /// the peak RSS, stops the broker, and checks every good record was
    /// stored in order. Returns the broker's stderr and console output.
    fn finish(self, name: &str, reasons: &[(&str, u64)], extra: u64) -> (String, String) {
        let want = self.seq + extra;
        let text = || metrics_text(&self.metrics);
        let done = |t: &str| {
            reasons.iter().all(|(r, n)| {
                metric(t, &format!("distlogd_rejected_total{{reason=\"{r}\"}}")) >= *n
            }) && ["store", "lines", "screen", "live"].iter().all(|p| {
                metric(
                    t,
                    &format!("distlogd_processor_written_records_total{{processor=\"{p}\"}}"),
                ) >= want
            })
        };
        // Polled with a deadline rather than `wait_for`, so that the peak
        // RSS is reported even when a broker never gets there.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut ok = false;
        while std::time::Instant::now() < deadline {
            match std::panic::catch_unwind(text) {
                Ok(t) if done(&t) => {
                    ok = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => break, // the broker is gone
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let hwm = std::fs::read_to_string(format!("/proc/{}/status", self.broker.id()))
            .map(|_| status_kib(self.broker.id(), "VmHWM") / 1024);
        eprintln!("{name}: distlogd VmHWM {hwm:?} MiB, done: {ok}");
        assert!(
            ok,
            "{name}: timed out waiting for the attacks counted and the good records written"
        );
        let hwm = hwm.unwrap();
        let t = text();
        for (r, n) in reasons {
            assert_eq!(
                metric(&t, &format!("distlogd_rejected_total{{reason=\"{r}\"}}")),
                *n,
                "{r}: {t}"
            );
        }
        let (status, stderr) = self.broker.stop();
        assert!(status.success(), "{stderr}");
        assert!(
            hwm < RSS_BOUND_MIB,
            "{name}: peak RSS {hwm} MiB >= {RSS_BOUND_MIB} MiB"
        );
        let dir = self.tmp.path();
        let mut stored = Vec::new();
        for (_, r) in Reader::open_dir(&dir.join("store")).unwrap() {
            for b in r.batches() {
                let b = b.unwrap();
                if b.batch.sender().host.as_str() == "good" {
                    stored.extend(b.batch.records().map(|r| r.seq()));
                }
            }
        }
        assert_eq!(
            stored,
            (0..self.seq).collect::<Vec<_>>(),
            "every good record, in order"
        );
        let jsonl = std::fs::read_to_string(dir.join("all.jsonl")).unwrap();
        assert_eq!(jsonl.lines().count() as u64, want);
        let console = std::fs::read_to_string(dir.join("console.txt")).unwrap();
        assert_eq!(console.lines().count() as u64, want);
        (stderr, console)
    }
}

/// A batch of `n` records that all refer to one site whose
/// target is `target_len` bytes: small on the wire, `n * target_len`
/// bytes for every reader that renders its records.
fn shared_site_batch(n: u64, target_len: usize) -> Vec<u8> {
    let b = WireBatch {
        sender: Sender {
            host: "attacker".into(),
            instance: 99,
            ..Sender::default()
        },
        sites: vec![Site {
            target: "t".repeat(target_len),
            ..Site::default()
        }],
        threads: vec![Thread::default()],
        records: (0..n)
            .map(|seq| WireRecord {
                seq,
                ..WireRecord::default()
            })
            .collect(),
        ..WireBatch::default()
    };
    b.to_body().to_vec()
}

#[test]
fn records_sharing_a_huge_site_string_are_rejected() {
    let mut run = Run::start("cost-shared");
    // 2.6 MB on the wire, 20 GiB once every record's target is rendered.
    let attack = shared_site_batch(20_000, 1 << 20);
    for _ in 0..3 {
        run.good();
        run.send(b"TLR", &attack);
    }
    run.good();
    run.finish("shared strings", &[("too_expanded", 3)], 0);
}

/// A protocol-3 pickle of a LogRecord dict whose `bomb` field is a list of
/// `outer` references to a list of 200 references to a list of 200 empty
/// strings: about 1 KB that decodes to `outer * 40_000` values.
fn memo_bomb(outer: usize) -> Vec<u8> {
    fn s(p: &mut Vec<u8>, v: &str) {
        p.push(b'X');
        p.extend_from_slice(&(v.len() as u32).to_le_bytes());
        p.extend_from_slice(v.as_bytes());
    }
    let mut p = b"\x80\x03}(".to_vec();
    s(&mut p, "levelno");
    p.extend_from_slice(b"K\x14");
    s(&mut p, "created");
    p.push(b'G');
    p.extend_from_slice(&1.0f64.to_be_bytes());
    s(&mut p, "hostname");
    s(&mut p, "pickler");
    s(&mut p, "bomb");
    // L0 = ["", "", ...] (200), memo 1.
    p.extend_from_slice(b"](");
    s(&mut p, "");
    p.extend_from_slice(b"q\x00");
    for _ in 1..200 {
        p.extend_from_slice(b"h\x00");
    }
    p.extend_from_slice(b"eq\x01");
    // L1 = [L0] * 200, memo 2.
    p.extend_from_slice(b"](");
    for _ in 0..200 {
        p.extend_from_slice(b"h\x01");
    }
    p.extend_from_slice(b"eq\x02");
    // L2 = [L1] * outer.
    p.extend_from_slice(b"](");
    for _ in 0..outer {
        p.extend_from_slice(b"h\x02");
    }
    p.extend_from_slice(b"eu.");
    p
}

#[test]
fn pickle_memo_bombs_are_rejected() {
    let mut run = Run::start("cost-pickle");
    // About 1 KB each, 3.2 M values (a 9.6 MB field) each once decoded.
    let bomb = memo_bomb(80);
    assert!(bomb.len() < 1200, "{}", bomb.len());
    for _ in 0..20 {
        run.good();
        run.send(b"TLP", &bomb);
    }
    run.good();
    run.finish("pickle memo bomb", &[("pickle_limit", 20)], 0);
}

#[test]
fn senders_with_huge_names_are_rejected_and_keep_no_state() {
    let mut run = Run::start("cost-sender");
    // Empty batches, each from a fresh instance with a 1 MiB host name:
    // the per-sender table would keep every name.
    for i in 0..64u64 {
        let b = WireBatch {
            sender: Sender {
                host: format!("{i}{}", "h".repeat(1 << 20)),
                instance: 1000 + i,
                ..Sender::default()
            },
            ..WireBatch::default()
        };
        if i % 8 == 0 {
            run.good();
        }
        run.send(b"TLR", &b.to_body());
    }
    run.good();
    run.finish("sender names", &[("name_too_long", 64)], 0);
}

/// A Python JSON record with `keys` distinct extra keys.
fn many_keys_json(keys: usize) -> Vec<u8> {
    let mut s = String::from(r#"{"levelno": 20, "created": 1.0, "hostname": "py""#);
    for i in 0..keys {
        s.push_str(&format!(",\"{i:x}\":0"));
    }
    s.push('}');
    s.into_bytes()
}

#[test]
fn records_with_too_many_fields_are_rejected() {
    let mut run = Run::start("cost-fields");
    // 80,000 keys: quadratic duplicate checks took minutes per record.
    let json = many_keys_json(80_000);
    assert!(json.len() < 1 << 20);
    // The same through a call site with 80,000 keys.
    let values = vec![tag::NULL; 80_000];
    let site_keys = WireBatch {
        sender: Sender {
            host: "attacker".into(),
            instance: 98,
            ..Sender::default()
        },
        sites: vec![Site {
            keys: (0..80_000).map(|i| format!("k{i}")).collect(),
            ..Site::default()
        }],
        threads: vec![Thread::default()],
        records: vec![WireRecord {
            values,
            ..WireRecord::default()
        }],
        ..WireBatch::default()
    };
    let site_keys = site_keys.to_body().to_vec();
    for _ in 0..5 {
        run.good();
        run.send(b"TLJ", &json);
        run.good();
        run.send(b"TLR", &site_keys);
    }
    run.good();
    run.finish("many fields", &[("too_many_fields", 10)], 0);
}

#[test]
fn task_paths_too_deep_are_rejected() {
    let mut run = Run::start("cost-depth");
    // A million levels: `distlog tree` recursed once per level.
    let path = format!(
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427{}",
        "/1".repeat(1_000_000)
    );
    let batch = Batch {
        sender: Sender {
            host: "attacker".into(),
            instance: 97,
            ..Sender::default()
        },
        records: vec![Record {
            task: path.clone(),
            task_n: 1,
            ..Record::default()
        }],
        ..Batch::default()
    };
    let body = encode_batch_to_vec(&batch).to_vec();
    // The Python clients' context key, 100,000 levels deep (under 1 MiB).
    let key = format!(
        r#"{{"levelno": 20, "created": 1.0, "context": {{"key": "1@root{}"}}}}"#,
        "/1".repeat(100_000)
    );
    for body in [(&b"TLR"[..], &body[..]), (b"TLJ", key.as_bytes())] {
        run.good();
        run.send(body.0, body.1);
    }
    run.good();
    run.finish("task depth", &[("task_too_deep", 2)], 0);
}

#[test]
fn hostile_text_reaches_no_terminal_raw() {
    let mut run = Run::start("cost-escape");
    // C0 (ESC), C1 (CSI, NEL) and bidi overrides and isolates in the host
    // (which the broker's own sequence-gap warning quotes), the target and
    // the message.
    let nasty = "a\u{1b}[31mb\u{9b}2Jc\u{85}d\u{202e}e\u{2066}f\u{200f}g";
    let batch = Batch {
        sender: Sender {
            host: nasty.into(),
            instance: 96,
            ..Sender::default()
        },
        // Starts past 0: a gap, which the broker warns about by host.
        first_seq: 5,
        records: vec![Record {
            seq: 5,
            level: 40,
            target: nasty.into(),
            message: nasty.into(),
            ..Record::default()
        }],
        ..Batch::default()
    };
    run.good();
    run.send(b"TLR", &encode_batch_to_vec(&batch));
    run.good();
    let (stderr, console) = run.finish("escaping", &[], 1);
    for raw in [
        '\u{1b}', '\u{9b}', '\u{85}', '\u{202e}', '\u{2066}', '\u{200f}',
    ] {
        assert!(
            !console.contains(raw),
            "{raw:?} raw on the console: {console:?}"
        );
        assert!(
            !stderr.contains(raw),
            "{raw:?} raw in the warnings: {stderr:?}"
        );
    }
    assert!(
        console.contains(r"a\u{1b}[31mb\u{9b}2Jc\u{85}d\u{202e}e\u{2066}f\u{200f}g"),
        "{console}"
    );
    assert!(
        stderr.contains(r"missing") && stderr.contains(r"a\u{1b}[31mb"),
        "{stderr}"
    );
}
