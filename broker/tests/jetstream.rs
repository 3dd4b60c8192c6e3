//! Through a real nats-server with JetStream (a throwaway one in a temp
//! dir): an edge broker's `jetstream` processor publishes to a durable
//! stream, a central broker's JetStream input consumes it into its store.
//! Counts equal end to end, sender sequence tracking holds at the centre,
//! and a nats-server restart mid-stream loses nothing.

mod servers;
mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{
    broker_counter, distlog_ok, free_port, processor_counts, stored, wait_for, Broker, TempDir,
};

fn write(dir: &Path, name: &str, yaml: String) -> String {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p.to_string_lossy().into_owned()
}

/// Messages in the `DISTLOG` stream.
fn stream_messages(url: &str) -> u64 {
    stream_messages_opt(url).expect("the DISTLOG stream")
}

/// Messages in the `DISTLOG` stream, None when it does not exist (yet).
fn stream_messages_opt(url: &str) -> Option<u64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = async_nats::connect(url).await?;
        let js = async_nats::jetstream::new(c);
        let mut s = js.get_stream("DISTLOG").await?;
        Ok::<_, async_nats::Error>(s.info().await?.state.messages)
    })
    .ok()
}

/// Publishes raw messages to the stream, waiting for each acknowledgement.
fn publish_raw(url: &str, msgs: &[(&str, &[u8])]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = async_nats::connect(url).await?;
        let js = async_nats::jetstream::new(c);
        for (subject, body) in msgs {
            js.publish(subject.to_string(), body.to_vec().into())
                .await?
                .await?;
        }
        Ok::<_, async_nats::Error>(())
    })
    .unwrap()
}

/// Edge: everything to the stream. Central: the stream into its store.
fn configs(dir: &Path, url: &str) -> (String, String) {
    let edge = write(
        dir,
        "edge.yaml",
        format!(
            "metrics: {{interval: 0s}}\n\
             processors:\n  \
               js: {{type: jetstream, url: {url:?}, stream: DISTLOG, ack_timeout: 2s}}\n\
             default: [js]\n"
        ),
    );
    let central = write(
        dir,
        "central.yaml",
        format!(
            "metrics: {{interval: 0s}}\n\
             processors:\n  \
               store: {{type: store}}\n\
             default: [store]\n\
             jetstream_inputs:\n  \
               - {{url: {url:?}, stream: DISTLOG, consumer: central, ack_wait: 5s}}\n"
        ),
    );
    (edge, central)
}

#[test]
fn edge_to_stream_to_central_store_counts_equal() {
    let nats = servers::Nats::start("counts");
    let tmp = TempDir::new("js-counts");
    let dir = tmp.path();
    let (edge_cfg, central_cfg) = configs(dir, &nats.url());
    let central_store = dir.join("central");
    let central = Broker::start(
        &format!("tcp://127.0.0.1:{}", free_port()),
        &central_store,
        &["--config", &central_cfg],
    );
    let edge_ep = format!("tcp://127.0.0.1:{}", free_port());
    let edge = Broker::start(&edge_ep, &dir.join("edge"), &["--config", &edge_cfg]);

    let mut lg = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["loadgen", "--endpoint", &edge_ep, "--records", "100000"])
        .args(["--threads", "2", "--flush-timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    lg.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(lg.wait().unwrap().success(), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let mut total = v["handed_over"]
        .as_u64()
        .unwrap_or_else(|| v["sent"].as_u64().unwrap() - v["dropped"].as_u64().unwrap());
    // And a hand-made sender, with a task tree.
    let (a, b) = (
        servers::sender("web-1", 11, 101),
        servers::sender("pay-1", 22, 202),
    );
    let ctx = zmq::Context::new();
    let push = servers::push(&ctx, &edge_ep);
    let root = "0f8fad5b-d9cb-469f-a165-70867728950e";
    for (body, n) in servers::tree_batches(root, &a, &b) {
        servers::send(&push, &body);
        total += n;
    }
    drop(push);
    // Hostile messages on the stream: counted as rejected at the centre,
    // acknowledged, and the good ones around them still arrive.
    wait_for("the stream", Duration::from_secs(30), || {
        stream_messages_opt(&nats.url()).is_some()
    });
    publish_raw(
        &nats.url(),
        &[
            ("distlog.T.L.evil", b"not a batch"),
            ("distlog.TT.L.evil", b"bad topic"),
            ("distlog.T.L.evil", b""),
        ],
    );

    wait_for(
        "the central store to have every record",
        Duration::from_secs(60),
        || stored(&central_store, &[]) == total,
    );
    let (s, edge_err) = edge.stop();
    assert!(s.success(), "{edge_err}");
    assert_eq!(processor_counts(&edge_err, "js"), (total, 0), "{edge_err}");
    let (s, central_err) = central.stop();
    assert!(s.success(), "{central_err}");
    assert_eq!(
        broker_counter(&central_err, "records"),
        total,
        "{central_err}"
    );
    assert_eq!(
        broker_counter(&central_err, "gap_records"),
        0,
        "{central_err}"
    );
    assert_eq!(support::count(&central_store, &[]), total);
    let rejected = central_err
        .lines()
        .rev()
        .find(|l| l.contains("distlogd: stopped"))
        .and_then(|l| l.split("rejected=").nth(1))
        .unwrap_or_default();
    let n_rejected: u64 = rejected
        .split(" processors=")
        .next()
        .unwrap_or_default()
        .split(", ")
        .filter_map(|kv| {
            kv.rsplit(": ")
                .next()?
                .trim_end_matches('}')
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(n_rejected, 3, "{central_err}");
    let tree = distlog_ok(["tree", root, "--data-dir", central_store.to_str().unwrap()]);
    assert!(tree.contains("3 tasks: 2 succeeded, 1 failed"), "{tree}");
}

#[test]
fn nats_server_restart_mid_stream_loses_nothing() {
    let mut nats = servers::Nats::start("restart");
    let tmp = TempDir::new("js-restart");
    let dir = tmp.path();
    let (edge_cfg, central_cfg) = configs(dir, &nats.url());
    let central_store = dir.join("central");
    let central = Broker::start(
        &format!("tcp://127.0.0.1:{}", free_port()),
        &central_store,
        &["--config", &central_cfg],
    );
    let edge_ep = format!("tcp://127.0.0.1:{}", free_port());
    let edge = Broker::start(&edge_ep, &dir.join("edge"), &["--config", &edge_cfg]);

    const BATCHES: u64 = 80;
    const PER: u64 = 1000;
    let sender = std::thread::spawn({
        let ep = edge_ep.clone();
        move || {
            let ctx = zmq::Context::new();
            let push = servers::push(&ctx, &ep);
            let s = servers::sender("edge-3", 3, 303);
            for i in 0..BATCHES {
                servers::send(&push, &servers::plain_batch(&s, i * PER, PER));
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
        }
    });
    wait_for(
        "records at the centre before the restart",
        Duration::from_secs(30),
        || stored(&central_store, &[]) > 0,
    );
    nats.stop();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    nats.start_again();
    sender.join().unwrap();
    let total = BATCHES * PER;
    wait_for(
        "every record at the centre",
        Duration::from_secs(90),
        || stored(&central_store, &[]) >= total,
    );
    let (s, edge_err) = edge.stop();
    assert!(s.success(), "{edge_err}");
    let (written, dropped) = processor_counts(&edge_err, "js");
    assert_eq!((written, dropped), (total, 0), "{edge_err}");
    let (s, central_err) = central.stop();
    assert!(s.success(), "{central_err}");
    // The stream holds each batch once: re-sent publishes were recognised
    // by their message ids.
    assert_eq!(stream_messages(&nats.url()), BATCHES, "{edge_err}");

    // Every sequence number arrived; redeliveries after the restart may
    // repeat some (at least once), never lose any.
    let jsonl = distlog_ok([
        "query",
        "--data-dir",
        central_store.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    let seqs: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["seq"].as_u64().unwrap()
        })
        .collect();
    let set: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(set.len() as u64, total, "{central_err}");
    assert_eq!(set.iter().next_back().copied(), Some(total - 1));
    eprintln!(
        "stored {} records for {} sequence numbers ({} repeated)",
        seqs.len(),
        total,
        seqs.len() as u64 - total
    );
    // Redeliveries may arrive behind later batches: a gap counted then
    // filled late is not a loss.
    assert_eq!(
        broker_counter(&central_err, "gap_records"),
        broker_counter(&central_err, "late_records"),
        "{central_err}"
    );
}
