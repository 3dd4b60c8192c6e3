//! Fan-in: three real brokers on loopback, two edges forwarding to one
//! central. Clients of both edges (loadgen, and one request whose tree
//! spans both: the root task logged through edge A, an imported subtask
//! through edge B) arrive at the central store complete, with each
//! sender's identity and sequence numbers intact (the central broker
//! counts no gap), and `distlog tree` renders the spanning tree from the
//! central store.

mod servers;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{
    broker_counter, count, distlog_ok, free_port, processor_counts, stored, wait_for, Broker,
    TempDir,
};

fn edge_config(dir: &Path, name: &str, central: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "metrics: {{interval: 0s}}\n\
             processors:\n  \
               local: {{type: store}}\n  \
               up: {{type: forward, endpoint: {central:?}}}\n\
             default: [local, up]\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn loadgen(endpoint: &str, records: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["loadgen", "--endpoint", endpoint])
        .args(["--records", &records.to_string(), "--threads", "2"])
        .args(["--flush-timeout", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// What loadgen says reached its broker.
fn delivered(mut c: Child) -> u64 {
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(c.wait().unwrap().success(), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    v["handed_over"]
        .as_u64()
        .unwrap_or_else(|| v["sent"].as_u64().unwrap() - v["dropped"].as_u64().unwrap())
}

#[test]
fn two_edges_forward_everything_to_the_central_broker_with_senders_intact() {
    let tmp = TempDir::new("fan-in");
    let dir = tmp.path();
    let central_ep = format!("tcp://127.0.0.1:{}", free_port());
    let central_store = dir.join("central");
    let central_cfg = dir.join("central.yaml");
    std::fs::write(
        &central_cfg,
        "metrics: {interval: 0s}\nprocessors:\n  store: {type: store}\ndefault: [store]\n",
    )
    .unwrap();
    let central = Broker::start(
        &central_ep,
        &central_store,
        &["--config", central_cfg.to_str().unwrap()],
    );
    let (ep_a, ep_b) = (
        format!("tcp://127.0.0.1:{}", free_port()),
        format!("tcp://127.0.0.1:{}", free_port()),
    );
    let edge_a = Broker::start(
        &ep_a,
        &dir.join("edge-a"),
        &["--config", &edge_config(dir, "a", &central_ep)],
    );
    let edge_b = Broker::start(
        &ep_b,
        &dir.join("edge-b"),
        &["--config", &edge_config(dir, "b", &central_ep)],
    );

    // Clients of both edges at once.
    let (la, lb) = (loadgen(&ep_a, 100_000), loadgen(&ep_b, 100_000));
    // One request over both edges: the root task and /1 through edge A, the
    // subtask /2 (a service that imported the root's id) through edge B.
    let root = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
    let (web, pay) = (
        servers::sender("web-1", 11, 101),
        servers::sender("pay-1", 22, 202),
    );
    let [(body_a, na), (body_b, nb)] = servers::tree_batches(root, &web, &pay);
    let ctx = zmq::Context::new();
    let (pa, pb) = (servers::push(&ctx, &ep_a), servers::push(&ctx, &ep_b));
    // Sent in two parts each, so sequence tracking sees consecutive batches.
    servers::send(&pa, &body_a);
    servers::send(&pb, &body_b);
    let more_a = servers::plain_batch(&web, na, 50);
    let more_b = servers::plain_batch(&pay, nb, 50);
    servers::send(&pa, &more_a);
    servers::send(&pb, &more_b);
    drop((pa, pb));
    let total = delivered(la) + delivered(lb) + na + nb + 100;

    wait_for(
        "the central store to have every record",
        Duration::from_secs(60),
        || stored(&central_store, &[]) == total,
    );
    let (sa, ea) = edge_a.stop();
    let (sb, eb) = edge_b.stop();
    assert!(sa.success() && sb.success(), "{ea}\n{eb}");
    let (status, stderr) = central.stop();
    assert!(status.success(), "{stderr}");

    // Complete at the centre, nothing lost on either hop.
    assert_eq!(broker_counter(&stderr, "records"), total, "{stderr}");
    assert_eq!(broker_counter(&stderr, "gap_records"), 0, "{stderr}");
    for e in [&ea, &eb] {
        assert_eq!(processor_counts(e, "up").1, 0, "forward dropped: {e}");
    }
    let edges = count(&dir.join("edge-a"), &[]) + count(&dir.join("edge-b"), &[]);
    assert_eq!(edges, total);

    // Sender identity and sequence numbers preserved: per sender (host,
    // pid), the central store holds exactly 0..n, each once.
    let jsonl = distlog_ok([
        "query",
        "--data-dir",
        central_store.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    let mut seqs: BTreeMap<(String, u64), Vec<u64>> = BTreeMap::new();
    for l in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let key = (
            v["hostname"].as_str().unwrap().to_owned(),
            v["process"].as_u64().unwrap(),
        );
        seqs.entry(key)
            .or_default()
            .push(v["seq"].as_u64().unwrap());
    }
    // Two loadgen processes plus the two hand-made senders.
    assert_eq!(seqs.len(), 4, "{:?}", seqs.keys().collect::<Vec<_>>());
    for (who, s) in &seqs {
        let set: BTreeSet<u64> = s.iter().copied().collect();
        assert_eq!(set.len(), s.len(), "{who:?}: duplicates");
        assert_eq!(
            set.iter().copied().collect::<Vec<_>>(),
            (0..s.len() as u64).collect::<Vec<_>>(),
            "{who:?}: not contiguous from 0"
        );
    }
    assert_eq!(seqs[&("web-1".to_owned(), 11)].len() as u64, na + 50);
    assert_eq!(seqs[&("pay-1".to_owned(), 22)].len() as u64, nb + 50);

    // The spanning tree renders from the central store alone.
    let tree = distlog_ok(["tree", root, "--data-dir", central_store.to_str().unwrap()]);
    let lines: Vec<&str> = tree.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{root}  GET /orders/17  [succeeded")),
        "{tree}"
    );
    assert!(lines[0].contains("web-1/11"), "{tree}");
    let c1 = lines
        .iter()
        .position(|l| l.contains("/1  load order"))
        .expect(&tree);
    let c2 = lines
        .iter()
        .position(|l| l.contains("/2  charge card"))
        .expect(&tree);
    assert!(c1 < c2, "{tree}");
    assert!(
        lines[c2].contains("[FAILED") && lines[c2].contains("pay-1/22"),
        "{tree}"
    );
    assert!(tree.contains("3 tasks: 2 succeeded, 1 failed"), "{tree}");
}
