//! distlog, quicklog and tracing in one process, their bursts interleaved.
//!
//! The per-logger binaries run one after another, minutes apart, and on this
//! shared VM the same binary's p50 moves by ±15 ns between runs: too much to
//! tell two ~40 ns loggers apart. Here the three share a process and a
//! thread, and each round runs a block of bursts of each, in an order that
//! rotates every round, so drift in the machine hits all three alike. The
//! ratio that matters is reported per round (median, min and max over the
//! rounds) as well as from the pooled bursts.
//!
//! The three can share a process because none of them installs the `log`
//! logger here (distlog is set up without its facade); each is set up as in
//! its own bench (`peer_distlog`, `peer_quicklog`, `peer_tracing`), and each
//! case's records are counted at its sink. ticklog is left out: its drain
//! thread spins on a core, which would slow the other two's threads.
//!
//! Same protocol as the other peer benches (bursts of 20, rdtsc, pause),
//! one thread. Full run: 20 rounds of 500 bursts per logger per case
//! (`PEERS_H2H_ROUNDS`, `PEERS_H2H_BURSTS`); `cargo test --benches` runs 2
//! rounds of 10.
//!
//! `cargo bench -p distlog-peers --bench head_to_head`

use distlog_peers::{env_u64, pct, r2, report, settings, timed_bursts, LineCounter};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../../tests/common/record_counter.rs"]
mod record_counter;

struct Discard(LineCounter);

impl quicklog_flush::Flush for Discard {
    fn flush_one(&mut self, line: String) {
        let _ = self.0.write_all(line.as_bytes());
    }
}

fn drain_quicklog() {
    while quicklog::try_flush!().is_ok() {}
}

const LOGGERS: [&str; 3] = ["distlog", "quicklog", "tracing"];

/// One call of `logger` for `case`, with call number `i`.
#[inline(always)]
fn call(logger: usize, case: &str, i: u64) {
    match (logger, case) {
        (0, "0kv") => distlog::info!("request {} done", i),
        (0, "3kv") => {
            distlog::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i)
        }
        (0, _) => distlog::info!(user_id = i, ok = true, peer = "10.0.0.7", latency_ms = 1.5f64,
            shard = 0u64, route = "/orders", delta = -7i64, retries = 3u32;
            "request {} done", i),
        (1, "0kv") => quicklog::info!("request {} done", i),
        (1, "3kv") => quicklog::info!(
            "request {} done {} {} {}",
            i,
            user_id = i,
            ok = true,
            peer = "10.0.0.7"
        ),
        (1, _) => quicklog::info!(
            "request {} done {} {} {} {} {} {} {} {}",
            i,
            user_id = i,
            ok = true,
            peer = "10.0.0.7",
            latency_ms = 1.5f64,
            shard = 0u64,
            route = "/orders",
            delta = -7i64,
            retries = 3u32
        ),
        (_, "0kv") => tracing::info!("request {} done", i),
        (_, "3kv") => tracing::info!(
            user_id = i,
            ok = true,
            peer = "10.0.0.7",
            "request {} done",
            i
        ),
        (_, _) => tracing::info!(
            user_id = i,
            ok = true,
            peer = "10.0.0.7",
            latency_ms = 1.5f64,
            shard = 0u64,
            route = "/orders",
            delta = -7i64,
            retries = 3u32,
            "request {} done",
            i
        ),
    }
}

/// Waits until `count` reaches `want` or stops moving for a second.
fn settle(count: &dyn Fn() -> u64, want: u64) -> u64 {
    let (mut last, mut since) = (count(), Instant::now());
    while last < want && since.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

fn main() {
    let s = settings();
    let rounds = env_u64("PEERS_H2H_ROUNDS").unwrap_or(if s.full { 20 } else { 2 });
    let bursts = env_u64("PEERS_H2H_BURSTS").unwrap_or(if s.full { 500 } else { 10 });

    let (endpoint, distlog_received) = record_counter::spawn();
    let _distlog = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();
    let (q_sink, q_counts) = LineCounter::new();
    quicklog::init!();
    quicklog::with_flush!(Discard(q_sink));
    let (t_sink, t_counts) = LineCounter::new();
    let (nb, tracing_guard) = tracing_appender::non_blocking(t_sink);
    tracing_subscriber::fmt()
        .with_writer(nb)
        .with_max_level(tracing::Level::INFO)
        .init();

    let received: [Box<dyn Fn() -> u64>; 3] = [
        Box::new(move || distlog_received.load(Ordering::Relaxed)),
        Box::new({
            let c = Arc::clone(&q_counts);
            move || c.lines.load(Ordering::Relaxed)
        }),
        Box::new({
            let c = Arc::clone(&t_counts);
            move || c.lines.load(Ordering::Relaxed)
        }),
    ];
    let logged: [AtomicU64; 3] = Default::default();
    let mut next_i = 0u64;

    for case in ["0kv", "3kv", "8kv"] {
        let mut all: [Vec<f64>; 3] = Default::default();
        let mut round_ratios: [Vec<f64>; 3] = Default::default();
        // One unrecorded round first (warm-up), then the measured ones.
        for round in 0..=rounds {
            let mut p50 = [0.0; 3];
            for k in 0..3 {
                let logger = (k + round as usize) % 3;
                let mut f = |i: u64| call(logger, case, i);
                let mut avgs = timed_bursts(bursts, next_i, &mut f, &drain_quicklog);
                next_i += bursts * distlog_peers::BURST;
                logged[logger].fetch_add(bursts * distlog_peers::BURST, Ordering::Relaxed);
                avgs.sort_by(|a, b| a.total_cmp(b));
                p50[logger] = pct(&avgs, 0.5);
                if round > 0 {
                    all[logger].extend_from_slice(&avgs);
                }
            }
            if round > 0 {
                for l in 0..3 {
                    round_ratios[l].push(p50[l] / p50[0]);
                }
            }
        }
        let mut p50_all = [0.0; 3];
        for l in 0..3 {
            all[l].sort_by(|a, b| a.total_cmp(b));
            round_ratios[l].sort_by(|a, b| a.total_cmp(b));
            p50_all[l] = pct(&all[l], 0.5);
        }
        for l in 0..3 {
            let v = &all[l];
            let rr = &round_ratios[l];
            report(serde_json::json!({
                "bench": "head_to_head",
                "logger": LOGGERS[l],
                "case": case,
                "threads": 1,
                "rounds": rounds,
                "bursts": v.len(),
                "p50_ns": r2(pct(v, 0.5)),
                "p99_ns": r2(pct(v, 0.99)),
                "p999_ns": r2(pct(v, 0.999)),
                "ratio_pooled": r2(p50_all[l] / p50_all[0]),
                "ratio_round_median": r2(pct(rr, 0.5)),
                "ratio_round_min": r2(rr.first().copied().unwrap_or(f64::NAN)),
                "ratio_round_max": r2(rr.last().copied().unwrap_or(f64::NAN)),
            }));
        }
    }

    distlog::flush_timeout(Duration::from_secs(30));
    drain_quicklog();
    drop(tracing_guard); // flushes tracing-appender's worker
    for l in 0..3 {
        let want = logged[l].load(Ordering::Relaxed);
        let got = settle(&*received[l], want);
        println!(
            "PEERS_NOTE head_to_head {}: delivered {got} of {want}",
            LOGGERS[l]
        );
        report(serde_json::json!({
            "bench": "head_to_head_delivery",
            "logger": LOGGERS[l],
            "logged": want,
            "delivered": got,
        }));
    }
}
