//! `max_connections` on the real broker: with the cap reached, new
//! connections (raw TCP and ZeroMQ clients) are closed and counted as
//! `too_many_connections` while the admitted clients' records are all
//! stored, in order; a freed slot admits a new client; a reload raises the
//! cap at once.

mod support;

use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use distlogd::store::Reader;
use std::io::Read;
use std::time::Duration;
use support::{free_port, metric, metrics_text, wait_for, Broker, TempDir};

/// How long a condition may take to come true.
const WAIT: Duration = Duration::from_secs(20);
const REFUSED: &str = "distlogd_rejected_total{reason=\"too_many_connections\"}";

fn batch(instance: u64, seq: u64, msg: &str) -> Vec<u8> {
    encode_batch_to_vec(&Batch {
        sender: Sender {
            instance,
            ..Sender::default()
        },
        first_seq: seq,
        records: vec![Record {
            seq,
            message: msg.into(),
            ..Record::default()
        }],
        ..Batch::default()
    })
    .to_vec()
}

/// Sends `n` records as client `instance` ("c{instance} {i}").
fn send(s: &zmq::Socket, instance: u64, n: u64) {
    for i in 0..n {
        s.send_multipart(
            [
                &b"TLR"[..],
                &batch(instance, i, &format!("c{instance} {i}")),
            ],
            0,
        )
        .unwrap();
    }
}

fn config(endpoint: &str, dir: &std::path::Path, metrics: &str, max: usize) -> String {
    format!(
        "listen: [{endpoint}]\ndata_dir: {d}/store\nmetrics: {{listen: \"{metrics}\", interval: 0s}}\nmax_connections: {max}\n",
        d = dir.display()
    )
}

#[test]
fn connections_over_the_cap_are_closed_and_counted() {
    let tmp = TempDir::new("connection-cap");
    let dir = tmp.path();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let cfg = dir.join("c.yaml");
    std::fs::write(&cfg, config(&endpoint, dir, &metrics, 4)).unwrap();
    let broker = Broker::with_config(&cfg, &endpoint);
    wait_for("broker up", WAIT, || {
        std::net::TcpStream::connect(&metrics).is_ok()
    });
    let gauge = || metric(&metrics_text(&metrics), "distlogd_connections");
    let refused = || metric(&metrics_text(&metrics), REFUSED);

    let ctx = zmq::Context::new();
    let push = || {
        let s = ctx.socket(zmq::PUSH).unwrap();
        s.set_linger(0).unwrap();
        s.connect(&endpoint).unwrap();
        s
    };
    // Four clients fill the cap.
    let mut held: Vec<zmq::Socket> = (0..4).map(|_| push()).collect();
    wait_for("4 connections", WAIT, || gauge() == 4);
    const N: u64 = 200;
    for (i, s) in held.iter().enumerate() {
        send(s, i as u64, N);
    }

    // Twenty more raw TCP connections: each is closed by the broker.
    let addr = endpoint.trim_start_matches("tcp://");
    let raw: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    wait_for("20 connections refused", WAIT, || refused() >= 20);
    for mut s in raw {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut sink = Vec::new();
        // EOF (after the broker's greeting, perhaps) or a reset: closed.
        if let Err(e) = s.read_to_end(&mut sink) {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "a connection over the cap was left open: {e}"
            );
        }
    }
    // Another ZeroMQ client cannot get in either: it keeps retrying and
    // is refused each time.
    let before = refused();
    let extra = push();
    wait_for("the extra client refused 3 times", WAIT, || {
        refused() >= before + 3
    });
    assert_eq!(gauge(), 4, "still only the four held");
    drop(extra);

    // A freed slot admits a new client, whose records are stored.
    drop(held.remove(0));
    wait_for("the freed slot seen", WAIT, || gauge() == 3);
    let late = push();
    wait_for("the new client admitted", WAIT, || gauge() == 4);
    send(&late, 10, N);

    // A reload raising the cap applies at once.
    std::fs::write(&cfg, config(&endpoint, dir, &metrics, 5)).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(broker.id() as i32, libc::SIGHUP) };
    wait_for("reloaded", WAIT, || {
        metric(&metrics_text(&metrics), "distlogd_reloads_total") == 1
    });
    let fifth = push();
    wait_for("a fifth client admitted", WAIT, || gauge() == 5);
    send(&fifth, 11, N);

    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = metrics_text(&metrics);
        if metric(&text, "distlogd_records_total") == 6 * N {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every record taken: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = metrics_text(&metrics);
    assert!(
        text.contains("# TYPE distlogd_connections gauge\n"),
        "{text}"
    );
    let (status, stderr) = broker.stop();
    assert!(status.success(), "broker exit {status:?}: {stderr}");
    assert!(stderr.contains("max_connections is 4"), "{stderr}");
    // The 21+ connections closed for the cap are not counted as aborted
    // handshakes too. (One may be: the extra client's last attempt, if it
    // arrived after the client was dropped and a slot was free.)
    assert!(
        metric(
            &text,
            "distlogd_rejected_total{reason=\"handshake_aborted\"}"
        ) <= 1,
        "{text}"
    );

    let mut by_client: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for (_, r) in Reader::open_dir(&dir.join("store")).unwrap() {
        for b in r.batches() {
            for rec in b.unwrap().batch.records() {
                let m = rec.rendered_message().into_owned();
                let (c, i) = m.split_once(' ').unwrap();
                by_client
                    .entry(c.to_owned())
                    .or_default()
                    .push(i.parse().unwrap());
            }
        }
    }
    let all: Vec<u64> = (0..N).collect();
    for c in ["c0", "c1", "c2", "c3", "c10", "c11"] {
        assert_eq!(
            by_client.get(c),
            Some(&all),
            "client {c}: every record, in order"
        );
    }
    assert_eq!(by_client.len(), 6, "{:?}", by_client.keys());
}
