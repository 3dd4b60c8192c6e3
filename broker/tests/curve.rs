//! CURVE on the real broker: a client whose key is allowed (through the
//! distlog library, and a raw socket) is stored; a client with another key
//! and a plaintext client are refused (the refusals counted), and the
//! publish socket serves only allowed, encrypting subscribers.

mod support;

use distlog::curve::{encode_key, KeyPair};
use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use distlogd::store::Reader;
use std::process::Command;
use std::time::Duration;
use support::{free_port, metrics_text, wait_for, Broker, TempDir};

/// How long a condition may take to come true.
const WAIT: Duration = Duration::from_secs(20);

fn batch(instance: u64, msg: &str) -> Vec<u8> {
    encode_batch_to_vec(&Batch {
        sender: Sender {
            instance,
            ..Sender::default()
        },
        records: vec![Record {
            message: msg.into(),
            ..Record::default()
        }],
        ..Batch::default()
    })
    .to_vec()
}

#[test]
fn only_allowed_keys_get_in() {
    assert!(distlog::curve::available(), "libzmq with CURVE is linked");
    let tmp = TempDir::new("curve");
    let dir = tmp.path();
    let server = KeyPair::generate().unwrap();
    let allowed = KeyPair::generate().unwrap();
    let stranger = KeyPair::generate().unwrap();
    support::write_key_file(&dir.join("server.key"), &server);
    support::write_key_file(&dir.join("client.key"), &allowed);
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "listen: [{endpoint}]\ndata_dir: {d}/store\nmetrics: {{listen: \"{metrics}\", interval: 0s}}\ncurve:\n  key_file: {d}/server.key\n  allow: [\"{}\"]\nprocessors:\n  store: {{type: store}}\n  live: {{type: publish, endpoint: \"{publish}\"}}\ndefault: [store, live]\n",
        encode_key(&allowed.public),
        d = dir.display()
    );
    std::fs::write(dir.join("c.yaml"), config).unwrap();
    let broker = Broker::with_config(&dir.join("c.yaml"), &endpoint);
    wait_for("broker up", WAIT, || {
        std::net::TcpStream::connect(&metrics).is_ok()
    });

    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB).unwrap();
    distlog::curve::set_client(&sub, &server.public, &allowed).unwrap();
    sub.set_subscribe(b"").unwrap();
    sub.connect(&publish).unwrap();
    let push = |keys: Option<&KeyPair>| {
        let s = ctx.socket(zmq::PUSH).unwrap();
        s.set_linger(0).unwrap();
        if let Some(k) = keys {
            distlog::curve::set_client(&s, &server.public, k).unwrap();
        }
        s.connect(&endpoint).unwrap();
        s
    };
    let stranger_sock = push(Some(&stranger));
    let plain_sock = push(None);
    for i in 0..5 {
        // DONTWAIT: these never connect, so sends queue then fail; fine.
        let _ = stranger_sock.send_multipart(
            [&b"TLR"[..], &batch(2, &format!("stranger {i}"))],
            zmq::DONTWAIT,
        );
        let _ = plain_sock.send_multipart(
            [&b"TLR"[..], &batch(3, &format!("plain {i}"))],
            zmq::DONTWAIT,
        );
    }
    let ok_sock = push(Some(&allowed));
    let mut sent = 0;
    // The subscriber may join late: send until it sees one.
    wait_for("an encrypted subscriber receives", WAIT, || {
        ok_sock
            .send_multipart([&b"TLR"[..], &batch(1, &format!("allowed {sent}"))], 0)
            .unwrap();
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
        sub.recv_multipart(zmq::DONTWAIT).is_ok()
    });
    // The library, configured with the same keys, is let in too.
    let guard = distlog::builder()
        .endpoint(endpoint.clone())
        .curve(encode_key(&server.public), allowed.clone())
        .system('T')
        .install()
        .unwrap();
    distlog::info!("from the library over CURVE");
    assert!(distlog::flush());
    wait_for("denials counted", WAIT, || {
        metrics_text(&metrics).contains("distlogd_rejected_total{reason=\"curve_denied\"}")
    });
    wait_for("library record taken", WAIT, || {
        metrics_text(&metrics).contains(&format!("distlogd_records_total {}\n", sent + 1))
            || metrics_text(&metrics).contains(&format!("distlogd_records_total {}\n", sent + 2))
    });
    drop(guard);
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");

    let mut msgs = Vec::new();
    for (_, r) in Reader::open_dir(&dir.join("store")).unwrap() {
        for b in r.batches() {
            for rec in b.unwrap().batch.records() {
                msgs.push(rec.rendered_message().into_owned());
            }
        }
    }
    assert!(
        msgs.iter().any(|m| m == "from the library over CURVE"),
        "{msgs:?}"
    );
    assert_eq!(
        msgs.iter().filter(|m| m.starts_with("allowed ")).count(),
        sent,
        "every allowed record stored"
    );
    assert!(
        !msgs
            .iter()
            .any(|m| m.starts_with("stranger") || m.starts_with("plain")),
        "nothing from a refused client: {msgs:?}"
    );
}

#[test]
fn keygen_writes_a_private_key_file_the_library_reads() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("keygen");
    let path = tmp.path().join("k.key");
    let out = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let keys = KeyPair::load(&path).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&encode_key(&keys.public)), "{stderr}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Never overwrites a key.
    let again = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(KeyPair::load(&path).unwrap(), keys);
}

/// The build from this repository compiles libzmq with libsodium (the
/// `[patch.crates-io]` entry), and `--version` says so: a build without
/// CURVE would fail here, not at a user's first CURVE config.
#[test]
fn version_reports_libzmq_with_curve() {
    let out = Command::new(env!("CARGO_BIN_EXE_distlogd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (major, minor, patch) = zmq::version();
    assert!(
        text.contains(&format!("libzmq {major}.{minor}.{patch}")),
        "{text}"
    );
    assert!(text.contains("CURVE: yes"), "{text}");
}

/// `distlog loadgen` of 1,000 records with `env` set, against `endpoint`:
/// its summary and its stderr.
fn loadgen_with(endpoint: &str, env: &[(&str, String)]) -> (serde_json::Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_distlog"));
    cmd.args(["loadgen", "--endpoint", endpoint, "--records", "1000"])
        .args(["--flush-timeout", "1"])
        .env_remove("DISTLOG_CURVE_SERVER_KEY")
        .env_remove("DISTLOG_CURVE_KEY_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let v = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    (v, stderr)
}

/// Checks what loadgen reports for a client whose handshake fails for one
/// of `causes`: every record lost as `handshake_failed`, the cause reported
/// once with the endpoint, nothing handed over.
fn assert_lost_to(causes: &[&str], endpoint: &str, (v, stderr): (serde_json::Value, String)) {
    assert_eq!(v["handed_over"], 0, "{v}");
    assert_eq!(v["dropped"], 1000, "{v}");
    assert_eq!(v["drops"]["handshake_failed"], 1000, "{v}");
    let cause = v["connection"]
        .as_str()
        .and_then(|c| c.strip_prefix("handshake_failed:"))
        .unwrap_or_default();
    assert!(causes.contains(&cause), "{causes:?}: {v}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("({cause})")))
        .collect();
    assert_eq!(errors.len(), 1, "{cause}: reported once: {stderr}");
    assert!(errors[0].contains(endpoint), "{}", errors[0]);
    assert!(
        stderr.contains("1000 records lost (1000 handshake_failed)"),
        "{cause}: {stderr}"
    );
}

/// A client that cannot complete the handshake reports every record lost
/// (`handshake_failed`), once, with the cause and the fix; nothing counts
/// as handed over; and the broker counts the failure by reason.
#[test]
fn failed_handshakes_are_counted_by_reason_on_both_sides() {
    let tmp = TempDir::new("curve-fail");
    let dir = tmp.path();
    let server = KeyPair::generate().unwrap();
    let allowed = KeyPair::generate().unwrap();
    let stranger = KeyPair::generate().unwrap();
    let impostor = KeyPair::generate().unwrap();
    support::write_key_file(&dir.join("server.key"), &server);
    support::write_key_file(&dir.join("stranger.key"), &stranger);
    support::write_key_file(&dir.join("allowed.key"), &allowed);
    let key_file = |name: &str| dir.join(name).display().to_string();
    let broker_up = |name: &str, curve: &str| {
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "listen: [{endpoint}]\ndata_dir: {d}/{name}\nmetrics: {{listen: \"{metrics}\", interval: 0s}}\n{curve}processors:\n  store: {{type: store}}\ndefault: [store]\n",
            d = dir.display()
        );
        std::fs::write(dir.join(format!("{name}.yaml")), config).unwrap();
        let broker = Broker::with_config(&dir.join(format!("{name}.yaml")), &endpoint);
        wait_for("broker up", WAIT, || {
            std::net::TcpStream::connect(&metrics).is_ok()
        });
        (broker, endpoint, metrics)
    };
    // Each side counts a failed attempt under the reason ZeroMQ gives it;
    // when the other side gives up first, a CURVE mismatch looks like a
    // handshake that failed without detail, so each case names the reasons
    // it may show as on either side.
    let rejected = |metrics: &str, reasons: &[&str]| -> u64 {
        let text = metrics_text(metrics);
        reasons
            .iter()
            .map(|r| {
                let key = format!("distlogd_rejected_total{{reason=\"{r}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&key))
                    .map_or(0, |n| n.trim().parse::<u64>().unwrap())
            })
            .sum()
    };
    let curve = format!(
        "curve:\n  key_file: {}\n  allow: [\"{}\"]\n",
        key_file("server.key"),
        encode_key(&allowed.public)
    );
    let (broker, endpoint, metrics) = broker_up("curve", &curve);
    let server_pub = encode_key(&server.public);
    let cases = [
        // No keys at all.
        (
            vec![],
            &["curve_required"][..],
            &["handshake_no_curve", "handshake_aborted"][..],
        ),
        // A key the broker's allow-list does not have.
        (
            vec![
                ("DISTLOG_CURVE_SERVER_KEY", server_pub.clone()),
                ("DISTLOG_CURVE_KEY_FILE", key_file("stranger.key")),
            ],
            &["key_refused"][..],
            &["curve_denied"][..],
        ),
        // The wrong server key.
        (
            vec![
                ("DISTLOG_CURVE_SERVER_KEY", encode_key(&impostor.public)),
                ("DISTLOG_CURVE_KEY_FILE", key_file("allowed.key")),
            ],
            &["no_detail"][..],
            &["handshake_bad_key"][..],
        ),
    ];
    for (env, causes, reasons) in cases {
        let before = rejected(&metrics, reasons);
        assert_lost_to(causes, &endpoint, loadgen_with(&endpoint, &env));
        wait_for(&format!("the broker counts {reasons:?}"), WAIT, || {
            rejected(&metrics, reasons) > before
        });
    }
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");

    // A CURVE client at a broker without CURVE.
    let (plain, endpoint, metrics) = broker_up("plain", "");
    let env = [
        ("DISTLOG_CURVE_SERVER_KEY", server_pub),
        ("DISTLOG_CURVE_KEY_FILE", key_file("allowed.key")),
    ];
    assert_lost_to(
        &["curve_not_offered", "no_detail"],
        &endpoint,
        loadgen_with(&endpoint, &env),
    );
    let reasons = ["handshake_unexpected_curve", "handshake_aborted"];
    wait_for("the broker counts it", WAIT, || {
        rejected(&metrics, &reasons) > 0
    });
    let (status, stderr) = plain.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");
}
