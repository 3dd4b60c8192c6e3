//! Throughput through the backbone (a measurement, not a check: ignored
//! by default; PERFORMANCE.md "### Backbone" has its figures):
//!
//! ```sh
//! PYTHON=target/python-venv/bin/python \
//!   cargo test --release -p distlogd --test backbone_throughput -- --ignored --nocapture
//! ```
//!
//! Two edges, each fed by a `distlog loadgen` (2 threads, flat out,
//! `--block`: nothing dropped), publish to the 3-node cluster's stream;
//! records/s is records logged / time from the loadgens' start until the
//! last record is a row in PostgreSQL (or, stream only, until both edges
//! have had every publish acknowledged: they are stopped, which waits for
//! that). The configurations alternate, 2 rounds (`DISTLOG_BACKBONE_ROUNDS`), in one run;
//! the table gives each one's median.

#[path = "support/backbone.rs"]
mod backbone;
mod servers;
mod support;

use backbone::{rows_now, Loadgen, Topology};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Rounds (each configuration once per round); `DISTLOG_BACKBONE_ROUNDS`
/// overrides.
fn rounds() -> usize {
    std::env::var("DISTLOG_BACKBONE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2)
}
/// Records per loadgen (one per edge).
const N: u64 = 200_000;

/// A flat-out loadgen (no `--rate`, no `--ack`, `--block`).
fn loadgen(endpoint: &str) -> Loadgen {
    let child = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["loadgen", "--endpoint", endpoint, "--block"])
        .args([
            "--records",
            &N.to_string(),
            "--threads",
            "2",
            "--system",
            "P",
        ])
        .args(["--flush-timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Loadgen::from_child(child)
}

/// CPU seconds (user + system) a process has used, 0 when it is gone.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (in parentheses): utime is the 12th, stime
    // the 13th, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    if f.len() < 13 {
        return 0.0;
    }
    (f[11] + f[12]) / 100.0
}

/// The PostgreSQL server on `port` and its backends.
fn postgres_pids(port: u16) -> Vec<u32> {
    let mut all = Vec::new();
    let mut master = None;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid: u32 = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        if cmd.contains("postgres") && cmd.contains(&format!("-p {port} ")) {
            master = Some(pid);
        }
        all.push((pid, ppid));
    }
    let Some(m) = master else { return Vec::new() };
    std::iter::once(m)
        .chain(all.iter().filter(|(_, pp)| *pp == m).map(|(p, _)| *p))
        .collect()
}

/// CPU seconds of each part: edges, NATS, centrals, PostgreSQL.
fn cpu(t: &Topology) -> [f64; 4] {
    let sum = |pids: Vec<u32>| pids.into_iter().map(cpu_secs).sum::<f64>();
    let edges: Vec<u32> = t
        .edges
        .iter()
        .filter_map(|e| e.broker.as_ref().map(|b| b.id()))
        .collect();
    let centrals: Vec<u32> = t
        .centrals
        .iter()
        .filter_map(|c| c.broker.as_ref().map(|b| b.id()))
        .collect();
    [
        sum(edges),
        sum(t.nats.pids()),
        sum(centrals),
        sum(postgres_pids(t.pg.port)),
    ]
}

/// One configuration: records/s edge to rows (or edge to stream when
/// `centrals` is 0).
fn run(replicas: usize, centrals: usize) -> f64 {
    let mut t = Topology::start(
        &format!("tp-r{replicas}-c{centrals}"),
        replicas,
        centrals,
        "30s",
    );
    let cpu0 = cpu(&t);
    let start = Instant::now();
    let lgs: Vec<Loadgen> = t.edges.iter().map(|e| loadgen(&e.endpoint)).collect();
    let logged: u64 = lgs.into_iter().map(|l| Loadgen::logged(&l.finish())).sum();
    let secs = if centrals == 0 {
        for e in &mut t.edges {
            let err = e.stop();
            assert_eq!(support::processor_counts(&err, "js").1, 0, "{err}");
        }
        start.elapsed().as_secs_f64()
    } else {
        let nodes: Vec<String> = t
            .centrals
            .iter()
            .map(|c| {
                let pid = c.broker.as_ref().map_or(0, |b| b.id());
                t.nats.connected(pid).join("+")
            })
            .collect();
        let leader = t
            .nats
            .consumer_info()
            .and_then(|i| i.cluster?.leader)
            .unwrap_or_default();
        eprintln!("  consumer leader {leader}; centrals connected to {nodes:?}");
        // Messages each central has taken, about once a second.
        let mut timeline: Vec<Vec<u64>> = Vec::new();
        let mut tick = Instant::now();
        t.wait("every record a row", Duration::from_secs(600), |t| {
            if tick.elapsed() >= Duration::from_secs(1) {
                tick = Instant::now();
                timeline.push(t.centrals.iter().map(|c| c.messages()).collect());
            }
            rows_now(&t.pg) >= logged as i64
        });
        if centrals > 1 {
            let line: Vec<String> = timeline
                .iter()
                .map(|v| {
                    v.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("+")
                })
                .collect();
            eprintln!("  messages per central, each second: {}", line.join(" "));
        }
        let s = start.elapsed().as_secs_f64();
        let cpu1 = cpu(&t);
        let used: Vec<String> = ["edges", "nats", "centrals", "postgres"]
            .iter()
            .zip(cpu1.iter().zip(cpu0))
            .map(|(n, (b, a))| format!("{n} {:.0}%", (b - a) / s * 100.0))
            .collect();
        eprintln!("  CPU over {s:.1} s (100% = one core): {}", used.join(", "));
        let repeated: u64 = t.centrals.iter().map(|c| c.repeated()).sum();
        let taken: Vec<u64> = t.centrals.iter().map(|c| c.messages()).collect();
        let all: u64 = taken.iter().sum();
        let shares: Vec<String> = taken
            .iter()
            .map(|&x| format!("{x} ({:.0}%)", x as f64 * 100.0 / all.max(1) as f64))
            .collect();
        eprintln!(
            "  messages taken per central: {}; records skipped as repeated {repeated}",
            shares.join(" + ")
        );
        for (i, c) in t.centrals.iter_mut().enumerate() {
            if let Some(b) = c.broker.take() {
                let (_, err) = b.kill();
                for l in err
                    .lines()
                    .filter(|l| l.contains("jetstream input"))
                    .take(5)
                {
                    eprintln!("  central {i}: {l}");
                }
            }
        }
        t.kill_all();
        s
    };
    logged as f64 / secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore = "a measurement (minutes): run by hand with --ignored --nocapture"]
fn backbone_throughput_table() {
    // (replicas, centrals); 0 centrals: edge to stream only.
    // DISTLOG_BACKBONE_CONFIGS="3:1,3:2" picks some of them.
    let configs: Vec<(usize, usize)> = match std::env::var("DISTLOG_BACKBONE_CONFIGS") {
        Ok(v) => v
            .split(',')
            .filter_map(|c| {
                let (r, n) = c.trim().split_once(':')?;
                Some((r.parse().ok()?, n.parse().ok()?))
            })
            .collect(),
        Err(_) => vec![(1, 0), (3, 0), (3, 1), (3, 2), (1, 2)],
    };
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds() {
        for (i, &(r, c)) in configs.iter().enumerate() {
            let rps = run(r, c);
            eprintln!("round {round}: replicas {r}, centrals {c}: {rps:.0} records/s");
            results[i].push(rps);
        }
    }
    eprintln!(
        "| path | stream replicas | central brokers | records/s (median of {}) | runs |",
        rounds()
    );
    eprintln!("|---|---|---|---|---|");
    for (i, &(r, c)) in configs.iter().enumerate() {
        let path = if c == 0 {
            "edges -> stream"
        } else {
            "edges -> stream -> rows"
        };
        let runs: Vec<String> = results[i].iter().map(|x| format!("{x:.0}")).collect();
        eprintln!(
            "| {path} | {r} | {c} | {:.0} | {} |",
            median(results[i].clone()),
            runs.join(", ")
        );
    }
}
