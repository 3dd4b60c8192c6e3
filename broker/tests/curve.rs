//! CURVE on the real broker: a client whose key is allowed (through the
//! distlog library, and a raw socket) is stored; a client with another key
//! and a plaintext client are refused (the refusals counted), and the
//! publish socket serves only allowed, encrypting subscribers.

mod support;

use distlog::curve::{encode_key, KeyPair};
use distlog::record::Record;
use distlog::wire::{encode_batch_to_vec, Batch, Sender};
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
