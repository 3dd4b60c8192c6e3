//! Who may write to (and read from) a CURVE broker, against the real
//! `distlogd`: an unlisted key stays out while the broker shuts down, a key
//! removed by SIGHUP is refused on the connection it already had, a
//! subscriber without an allowed key receives nothing, a permitted client
//! cannot take over another sender's sequence space, and a key file others
//! may read is refused.

mod support;

use distlog::curve::{encode_key, KeyPair};
use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use distlogd::store::Reader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{
    broker_counter, free_port, metric, metrics_text, wait_for, write_key_file, Broker, TempDir,
};

/// How long a condition may take to come true.
const WAIT: Duration = Duration::from_secs(20);

const RECORDS: &str = "distlogd_records_total";
const DENIED: &str = "distlogd_rejected_total{reason=\"curve_denied\"}";
const REMOVED: &str = "distlogd_rejected_total{reason=\"curve_key_removed\"}";

/// A batch of `n` records from (`host`, pid 1, `instance`), sequence
/// numbers from `first`, messages `"{tag} {seq}"`.
fn batch(host: &str, instance: u64, first: u64, n: u64, tag: &str) -> Vec<u8> {
    encode_batch_to_vec(&Batch {
        sender: Sender {
            host: host.into(),
            pid: 1,
            instance,
            ..Sender::default()
        },
        first_seq: first,
        records: (first..first + n)
            .map(|s| Record {
                seq: s,
                message: format!("{tag} {s}"),
                ..Record::default()
            })
            .collect(),
        ..Batch::default()
    })
    .to_vec()
}

/// A CURVE broker's files and addresses: store, ingest, publish, metrics.
struct Setup {
    _tmp: TempDir,
    dir: PathBuf,
    server: KeyPair,
    endpoint: String,
    publish: String,
    metrics: String,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let tmp = TempDir::new(name);
        let dir = tmp.path().to_owned();
        let server = KeyPair::generate().unwrap();
        write_key_file(&dir.join("server.key"), &server);
        Setup {
            _tmp: tmp,
            dir,
            server,
            endpoint: format!("tcp://127.0.0.1:{}", free_port()),
            publish: format!("tcp://127.0.0.1:{}", free_port()),
            metrics: format!("127.0.0.1:{}", free_port()),
        }
    }

    /// Writes the config allowing `allow`; returns its path.
    fn config(&self, allow: &[&KeyPair]) -> PathBuf {
        let keys: Vec<String> = allow
            .iter()
            .map(|k| format!("\"{}\"", encode_key(&k.public)))
            .collect();
        let path = self.dir.join("c.yaml");
        std::fs::write(
            &path,
            format!(
                "listen: [{}]\ndata_dir: {d}/store\nmetrics: {{listen: \"{}\", interval: 0s}}\ncurve:\n  key_file: {d}/server.key\n  allow: [{}]\nprocessors:\n  store: {{type: store}}\n  live: {{type: publish, endpoint: \"{}\"}}\ndefault: [store, live]\n",
                self.endpoint,
                self.metrics,
                keys.join(", "),
                self.publish,
                d = self.dir.display()
            ),
        )
        .unwrap();
        path
    }

    fn start(&self, allow: &[&KeyPair]) -> Broker {
        let broker = Broker::with_config(&self.config(allow), &self.endpoint);
        wait_for("broker up", WAIT, || {
            std::net::TcpStream::connect(&self.metrics).is_ok()
        });
        broker
    }

    /// A socket of `kind` with `keys`, retrying a refused handshake every
    /// 10 ms, connected to `endpoint`.
    fn socket(
        &self,
        ctx: &zmq::Context,
        kind: zmq::SocketType,
        keys: &KeyPair,
        endpoint: &str,
    ) -> zmq::Socket {
        let s = ctx.socket(kind).unwrap();
        s.set_linger(0).unwrap();
        s.set_reconnect_ivl(10).unwrap();
        distlog::curve::set_client(&s, &self.server.public, keys).unwrap();
        if kind == zmq::SUB {
            s.set_subscribe(b"").unwrap();
        }
        s.connect(endpoint).unwrap();
        s
    }

    fn push(&self, ctx: &zmq::Context, keys: &KeyPair) -> zmq::Socket {
        self.socket(ctx, zmq::PUSH, keys, &self.endpoint)
    }

    fn metric(&self, name: &str) -> u64 {
        metric(&metrics_text(&self.metrics), name)
    }
}

/// Every stored message, in store order.
fn stored(store: &Path) -> Vec<String> {
    let mut msgs = Vec::new();
    for (_, r) in Reader::open_dir(store).unwrap() {
        for b in r.batches() {
            for rec in b.unwrap().batch.records() {
                msgs.push(rec.rendered_message().into_owned());
            }
        }
    }
    msgs
}

fn send(s: &zmq::Socket, body: &[u8]) {
    s.send_multipart([&b"TLR"[..], body], 0).unwrap();
}

/// The ZAP handler used to stop with the other threads while the ingest
/// socket still drained (up to 500 ms), and libzmq lets any key in when no
/// handler answers unless the domain is enforced. Now the handler stops
/// last and every CURVE socket enforces the domain. (This run did not
/// catch the old code: in it, connections attempted after the handler
/// stopped were not completed before the socket closed; the property is
/// pinned here end to end all the same.)
#[test]
fn unlisted_key_gets_nothing_stored_while_the_broker_shuts_down() {
    let s = Setup::new("curve-shutdown");
    let allowed = KeyPair::generate().unwrap();
    let stranger = KeyPair::generate().unwrap();
    let broker = s.start(&[&allowed]);
    let ctx = zmq::Context::new();
    let ok = s.push(&ctx, &allowed);
    let bad = s.push(&ctx, &stranger);
    // Both send without pause until the broker is gone: the allowed one
    // keeps the shutdown drain open as long as it may last, the stranger
    // retries its handshake every 10 ms all along.
    let done = Arc::new(AtomicBool::new(false));
    let sending = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seq = 0;
            while !done.load(Ordering::Relaxed) {
                let body = batch("ok", 1, seq, 1, "allowed");
                if ok
                    .send_multipart([&b"TLR"[..], &body], zmq::DONTWAIT)
                    .is_ok()
                {
                    seq += 1;
                }
                let body = batch("bad", 2, seq, 1, "stranger");
                let _ = bad.send_multipart([&b"TLR"[..], &body], zmq::DONTWAIT);
                std::thread::sleep(Duration::from_millis(2));
            }
            seq
        })
    };
    wait_for(
        "allowed records stored and the stranger refused",
        WAIT,
        || s.metric(RECORDS) >= 20 && s.metric(DENIED) >= 1,
    );
    let (status, stderr) = broker.stop();
    done.store(true, Ordering::Relaxed);
    let sent = sending.join().unwrap();
    assert!(status.success(), "{stderr}");
    let msgs = stored(&s.dir.join("store"));
    let allowed_stored = msgs.iter().filter(|m| m.starts_with("allowed ")).count();
    assert!(
        allowed_stored >= 20 && allowed_stored as u64 <= sent,
        "{allowed_stored} of {sent}"
    );
    assert!(
        !msgs.iter().any(|m| m.starts_with("stranger")),
        "a stranger's record was stored: {:?}",
        msgs.iter().find(|m| m.starts_with("stranger"))
    );
    assert_eq!(broker_counter(&stderr, "gap_records"), 0, "{stderr}");
}

/// SIGHUP reloads the allow-list: a new connection with a removed key is
/// refused (`curve_denied`), and so is every message on the connection the
/// key opened before the reload (`curve_key_removed`), while the key that
/// stays is still stored.
#[test]
fn key_removed_by_sighup_is_refused_on_its_open_connection() {
    let s = Setup::new("curve-reload");
    let (a, b) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let broker = s.start(&[&a, &b]);
    let ctx = zmq::Context::new();
    let (sa, sb) = (s.push(&ctx, &a), s.push(&ctx, &b));
    send(&sa, &batch("a", 1, 0, 1, "a"));
    send(&sb, &batch("b", 2, 0, 1, "b"));
    wait_for("both stored", WAIT, || s.metric(RECORDS) == 2);

    s.config(&[&a]);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(broker.id() as i32, libc::SIGHUP) };
    wait_for("reload applied", WAIT, || {
        s.metric("distlogd_reloads_total") == 1
    });
    for i in 1..6 {
        send(&sb, &batch("b", 2, i, 1, "b"));
        send(&sa, &batch("a", 1, i, 1, "a"));
    }
    let again = s.push(&ctx, &b);
    send(&again, &batch("b", 3, 0, 1, "b-new"));
    wait_for("a stored, b refused on both connections", WAIT, || {
        s.metric(RECORDS) == 7 && s.metric(REMOVED) == 5 && s.metric(DENIED) >= 1
    });
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    let msgs = stored(&s.dir.join("store"));
    let want: Vec<String> = std::iter::once("b 0".to_owned())
        .chain((0..6).map(|i| format!("a {i}")))
        .collect();
    let mut got = msgs.clone();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        got, want_sorted,
        "only a's records and b's from before the reload"
    );
}

/// A publish subscriber whose key is not allowed is refused (counted) and
/// receives nothing, while an allowed one receives every record.
#[test]
fn subscriber_without_an_allowed_key_receives_nothing() {
    let s = Setup::new("curve-publish");
    let (client, reader, stranger) = (
        KeyPair::generate().unwrap(),
        KeyPair::generate().unwrap(),
        KeyPair::generate().unwrap(),
    );
    let broker = s.start(&[&client, &reader]);
    let ctx = zmq::Context::new();
    let good_sub = s.socket(&ctx, zmq::SUB, &reader, &s.publish);
    let bad_sub = s.socket(&ctx, zmq::SUB, &stranger, &s.publish);
    let push = s.push(&ctx, &client);
    let mut seq = 0;
    // Until the allowed subscriber is in and the stranger has been refused.
    let mut joined = false;
    wait_for("allowed subscriber in, stranger refused", WAIT, || {
        send(&push, &batch("c", 1, seq, 1, "warmup"));
        seq += 1;
        std::thread::sleep(Duration::from_millis(10));
        while good_sub.recv_multipart(zmq::DONTWAIT).is_ok() {
            joined = true;
        }
        joined && s.metric(DENIED) >= 1
    });
    // The allowed subscriber receives every one of these; the stranger,
    // retrying all along, none.
    send(&push, &batch("c", 1, seq, 20, "after"));
    let mut received = 0;
    wait_for("allowed subscriber receives the batch", WAIT, || {
        while let Ok(m) = good_sub.recv_multipart(zmq::DONTWAIT) {
            let b = distlog_core::wire::access_batch(&m[1]).unwrap();
            if b.records().any(|r| r.message().starts_with("after")) {
                received += b.len();
            }
        }
        received == 20
    });
    assert!(
        bad_sub.recv_multipart(zmq::DONTWAIT).is_err(),
        "the stranger received a record"
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
}

/// Two permitted clients claim the same host, pid and instance: each gets
/// its own sequence state (keyed by its CURVE key), so the impostor's jump
/// to sequence 1,000,000 is a gap in its own state only, and the victim's
/// next records are judged against the victim's own numbers. Before, the
/// state was shared: the jump moved the victim's expected sequence to
/// 1,000,001, and the victim's next ten records were counted as late
/// arrivals into a gap of 999,990.
#[test]
fn permitted_client_cannot_take_over_another_senders_sequence() {
    let s = Setup::new("curve-impostor");
    let (victim, impostor) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let broker = s.start(&[&victim, &impostor]);
    let ctx = zmq::Context::new();
    let (sv, si) = (s.push(&ctx, &victim), s.push(&ctx, &impostor));
    send(&sv, &batch("victim", 42, 0, 10, "victim"));
    wait_for("victim's first records", WAIT, || s.metric(RECORDS) == 10);
    send(&si, &batch("victim", 42, 1_000_000, 1, "impostor"));
    wait_for("impostor's record", WAIT, || s.metric(RECORDS) == 11);
    send(&sv, &batch("victim", 42, 10, 10, "victim"));
    wait_for("victim's next records", WAIT, || s.metric(RECORDS) == 21);
    assert_eq!(
        s.metric("distlogd_senders"),
        2,
        "one sequence state per key"
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        broker_counter(&stderr, "gap_records"),
        1_000_000,
        "{stderr}"
    );
    assert_eq!(broker_counter(&stderr, "late_records"), 0, "{stderr}");
    let victim_msgs: Vec<String> = stored(&s.dir.join("store"))
        .into_iter()
        .filter(|m| m.starts_with("victim"))
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("victim {i}")).collect();
    assert_eq!(victim_msgs, want);
}

/// A secret key file its group or others may read is refused with the
/// command that fixes it, by the broker's config check and by its start.
#[test]
fn key_file_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new("curve-keymode");
    let client = KeyPair::generate().unwrap();
    let config = s.config(&[&client]);
    let key = s.dir.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    for flag in ["--check-config", "--config"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_distlogd"))
            .arg(flag)
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {stderr}");
        assert!(
            stderr.contains("mode 0640")
                && stderr.contains(&format!("chmod 600 {}", key.display())),
            "{flag}: {stderr}"
        );
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distlogd"))
        .arg("--check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
