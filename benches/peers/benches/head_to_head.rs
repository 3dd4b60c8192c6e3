//! distlog's native macro, distlog's `log` facade, quicklog and tracing in
//! one process, their bursts interleaved; the floor of any logger behind
//! `log` (`log_floor`: the same `log` calls into a `log::Log` that only
//! formats the arguments into a stack buffer and counts); and the floor
//! of the timing (an empty call).
//!
//! The per-logger binaries run one after another, minutes apart, and on this
//! shared VM the same binary's p50 moves by ±15 ns between runs: too much to
//! tell two ~40 ns loggers apart. Here they share a process and a thread,
//! and each round runs a block of bursts of each, in an order that rotates
//! every round, so drift in the machine hits all alike. The ratio that
//! matters is reported per round (median, min and max over the rounds) as
//! well as from the pooled bursts; the reference (ratio 1) is the native
//! macro.
//!
//! They can share a process because only distlog installs the `log`
//! logger here (quicklog and tracing do not read `log`); each is set up as
//! in its own bench (`peer_distlog`, `peer_quicklog`, `peer_tracing`).
//! ticklog is left out: its drain thread spins on a core, which would slow
//! the others' threads.
//!
//! Cases: `0kv`, `3kv`, `8kv` (one formatted argument and 0, 3 or 8
//! key/values), `3args` (three formatted arguments, no key/values) and
//! `literal` (a message without arguments).
//!
//! Delivery is asserted, not only reported: every logger's sink counts
//! what it received (distlog's native and facade records arrive at one
//! sink, counted together), and the bench fails if any sink got fewer
//! records than were logged.
//!
//! `log_floor` is what stable Rust makes every logger behind `log` pay:
//! the `log` macro's level check, its `Record`, one dynamic call, and
//! `core::fmt` for the arguments (`fmt::Arguments` offers nothing else).
//! Only distlog installs the process's `log` logger, so the floor is called
//! through the macros' `logger:` form: the same expansion, but for
//! `log::logger()`'s two loads. Each row also gives its ratio to this floor
//! (`ratio_to_log_floor_*`, logger / floor: 1 would be a facade that costs
//! nothing beyond `log` and `core::fmt`). The same logger is in
//! `examples/log_call_instr.rs`, for instruction counts.
//!
//! Same protocol as the other peer benches (bursts of 20, rdtsc, pause),
//! one thread. Full run: 20 rounds of 500 bursts per logger per case
//! (`PEERS_H2H_ROUNDS`, `PEERS_H2H_BURSTS`); `cargo test --benches` runs 2
//! rounds of 10.
//!
//! distlog runs in its default mode (drop when full, a full ring continuing
//! in a spare one: `Builder::grow_when_full`); `PEERS_H2H_GROW=0` turns the
//! growth off (the default before issue 17 part 1), to compare;
//! `PEERS_H2H_MAX_MEMORY_KIB` sets `max_memory` (default the builder's,
//! 4 MiB: growth may hold half of it).
//!
//! Then **delivery at 1 M calls/s**: the native macro and the facade
//! (`3args`) alternate in phases of `PEERS_H2H_RATE_SECONDS` (default 1;
//! 0.01 s in test mode), `PEERS_H2H_RATE_PHASES` of each (default 3; 1),
//! at `PEERS_H2H_RATE` calls per second (default 1,000,000) in bursts of
//! 20 (a burst starts every 20 µs, spinning between them, not sleeping).
//! After each phase the pipeline is flushed and the phase's delivered share
//! printed (`head_to_head_rate` lines); the bench fails unless every phase
//! delivered every record.
//!
//! `cargo bench -p distlog-peers --bench head_to_head`

use distlog_peers::{env_u64, pct, r2, report, settings, timed_bursts, LineCounter};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
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

#[path = "../../../tests/common/log_floor.rs"]
mod log_floor;

use log_floor::{log_floor, FLOOR_RECORDS};

const LOGGERS: [&str; 6] = [
    "distlog",
    "facade",
    "quicklog",
    "tracing",
    "log_floor",
    "floor",
];
/// Index of `log_floor` in [`LOGGERS`].
const LOG_FLOOR: usize = 4;
const CASES: [&str; 5] = ["0kv", "3kv", "8kv", "3args", "literal"];

/// One call of `logger` for `case`, with call number `i`.
#[inline(always)]
fn call(logger: usize, case: &str, i: u64) {
    match logger {
        0 => native(case, i),
        1 => facade(case, i),
        2 => quicklog_call(case, i),
        3 => tracing_call(case, i),
        4 => log_floor_call(case, i),
        _ => {
            std::hint::black_box(i);
        }
    }
}

#[inline(always)]
fn native(case: &str, i: u64) {
    match case {
        "0kv" => distlog::info!("request {} done", i),
        "3kv" => distlog::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i),
        "3args" => distlog::info!("request {} done {} {}", i, true, "10.0.0.7"),
        "literal" => distlog::info!("request done"),
        _ => distlog::info!(user_id = i, ok = true, peer = "10.0.0.7", latency_ms = 1.5f64,
            shard = 0u64, route = "/orders", delta = -7i64, retries = 3u32;
            "request {} done", i),
    }
}

#[inline(always)]
fn facade(case: &str, i: u64) {
    match case {
        "0kv" => log::info!("request {} done", i),
        "3kv" => log::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i),
        "3args" => log::info!("request {} done {} {}", i, true, "10.0.0.7"),
        "literal" => log::info!("request done"),
        _ => log::info!(user_id = i, ok = true, peer = "10.0.0.7", latency_ms = 1.5f64,
            shard = 0u64, route = "/orders", delta = -7i64, retries = 3u32;
            "request {} done", i),
    }
}

#[inline(always)]
fn log_floor_call(case: &str, i: u64) {
    match case {
        "0kv" => log::info!(logger: log_floor(), "request {} done", i),
        "3kv" => log::info!(logger: log_floor(), user_id = i, ok = true, peer = "10.0.0.7";
            "request {} done", i),
        "3args" => log::info!(logger: log_floor(), "request {} done {} {}", i, true, "10.0.0.7"),
        "literal" => log::info!(logger: log_floor(), "request done"),
        _ => log::info!(logger: log_floor(), user_id = i, ok = true, peer = "10.0.0.7",
            latency_ms = 1.5f64, shard = 0u64, route = "/orders", delta = -7i64, retries = 3u32;
            "request {} done", i),
    }
}

#[inline(always)]
fn quicklog_call(case: &str, i: u64) {
    match case {
        "0kv" => quicklog::info!("request {} done", i),
        "3kv" => quicklog::info!(
            "request {} done {} {} {}",
            i,
            user_id = i,
            ok = true,
            peer = "10.0.0.7"
        ),
        "3args" => quicklog::info!("request {} done {} {}", i, true, "10.0.0.7"),
        "literal" => quicklog::info!("request done"),
        _ => quicklog::info!(
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
    }
}

#[inline(always)]
fn tracing_call(case: &str, i: u64) {
    match case {
        "0kv" => tracing::info!("request {} done", i),
        "3kv" => tracing::info!(
            user_id = i,
            ok = true,
            peer = "10.0.0.7",
            "request {} done",
            i
        ),
        "3args" => tracing::info!("request {} done {} {}", i, true, "10.0.0.7"),
        "literal" => tracing::info!("request done"),
        _ => tracing::info!(
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

/// A sink's running count of what it received.
type Received = Box<dyn Fn() -> u64>;

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
    let n = LOGGERS.len();

    let (endpoint, distlog_received) = record_counter::spawn();
    let grow = env_u64("PEERS_H2H_GROW").unwrap_or(1) == 1;
    let mut builder = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .grow_when_full(grow)
        .log_facade(true);
    if let Some(kib) = env_u64("PEERS_H2H_MAX_MEMORY_KIB") {
        builder = builder.max_memory(kib as usize * 1024);
    }
    let _distlog = builder.install().unwrap();
    let (q_sink, q_counts) = LineCounter::new();
    quicklog::init!();
    quicklog::with_flush!(Discard(q_sink));
    let (t_sink, t_counts) = LineCounter::new();
    let (nb, tracing_guard) = tracing_appender::non_blocking(t_sink);
    tracing_subscriber::fmt()
        .with_writer(nb)
        .with_max_level(tracing::Level::INFO)
        .init();

    let logged: [AtomicU64; 6] = Default::default();
    let mut next_i = 0u64;

    for case in CASES {
        let mut all: [Vec<f64>; 6] = Default::default();
        let mut round_ratios: [Vec<f64>; 6] = Default::default();
        let mut floor_ratios: [Vec<f64>; 6] = Default::default();
        // One unrecorded round first (warm-up), then the measured ones.
        for round in 0..=rounds {
            let mut p50 = [0.0; 6];
            for k in 0..n {
                let logger = (k + round as usize) % n;
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
                for l in 0..n {
                    round_ratios[l].push(p50[l] / p50[0]);
                    floor_ratios[l].push(p50[l] / p50[LOG_FLOOR]);
                }
            }
        }
        let mut p50_all = [0.0; 6];
        for l in 0..n {
            all[l].sort_by(|a, b| a.total_cmp(b));
            round_ratios[l].sort_by(|a, b| a.total_cmp(b));
            floor_ratios[l].sort_by(|a, b| a.total_cmp(b));
            p50_all[l] = pct(&all[l], 0.5);
        }
        for l in 0..n {
            let v = &all[l];
            let rr = &round_ratios[l];
            let fr = &floor_ratios[l];
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
                "ratio_to_log_floor_pooled": r2(p50_all[l] / p50_all[LOG_FLOOR]),
                "ratio_to_log_floor_round_median": r2(pct(fr, 0.5)),
                "ratio_to_log_floor_round_min": r2(fr.first().copied().unwrap_or(f64::NAN)),
                "ratio_to_log_floor_round_max": r2(fr.last().copied().unwrap_or(f64::NAN)),
            }));
        }
    }

    let rate_short = delivery_at_rate(s, next_i, &distlog_received, &logged);

    distlog::flush_timeout(Duration::from_secs(30));
    drain_quicklog();
    drop(tracing_guard); // flushes tracing-appender's worker
    let load = |l: usize| logged[l].load(Ordering::Relaxed);
    // (sink, records logged to it, what it received): the native macro's
    // and the facade's records share distlog's sink.
    let sinks: [(&str, u64, Received); 4] = [
        (
            "distlog (native + facade)",
            load(0) + load(1),
            Box::new(move || distlog_received.load(Ordering::Relaxed)),
        ),
        (
            "quicklog",
            load(2),
            Box::new(move || q_counts.lines.load(Ordering::Relaxed)),
        ),
        (
            "tracing",
            load(3),
            Box::new(move || t_counts.lines.load(Ordering::Relaxed)),
        ),
        (
            "log_floor",
            load(LOG_FLOOR),
            Box::new(|| FLOOR_RECORDS.load(Ordering::Relaxed)),
        ),
    ];
    let mut short = rate_short;
    for (name, want, received) in &sinks {
        let got = settle(&**received, *want);
        println!("PEERS_NOTE head_to_head {name}: delivered {got} of {want}");
        report(serde_json::json!({
            "bench": "head_to_head_delivery",
            "logger": name,
            "logged": want,
            "delivered": got,
        }));
        if got < *want {
            short.push(format!("{name}: {got} of {want}"));
        }
    }
    assert!(
        short.is_empty(),
        "sinks received fewer records than were logged: {}",
        short.join("; ")
    );
}

/// The delivery phases at a steady rate (module docs): returns the phases
/// that lost records, described. What they log is added to `logged`, so
/// the final check of distlog's sink counts it too.
fn delivery_at_rate(
    s: &distlog_peers::Settings,
    first: u64,
    received: &AtomicU64,
    logged: &[AtomicU64; 6],
) -> Vec<String> {
    let rate = env_u64("PEERS_H2H_RATE").unwrap_or(1_000_000).max(1);
    // Test mode: 10 ms, which the spare rings hold whatever the sender does.
    let millis =
        env_u64("PEERS_H2H_RATE_SECONDS").map_or(if s.full { 1000 } else { 10 }, |v| v * 1000);
    let phases = env_u64("PEERS_H2H_RATE_PHASES").unwrap_or(if s.full { 3 } else { 1 });
    let burst = distlog_peers::BURST;
    let calls = rate * millis / 1000 / burst * burst;
    let burst_period = Duration::from_nanos(1_000_000_000 * burst / rate);
    let settle_all = |want: u64| {
        distlog::flush_timeout(Duration::from_secs(30));
        settle(&|| received.load(Ordering::Relaxed), want)
    };
    let so_far = logged[0].load(Ordering::Relaxed) + logged[1].load(Ordering::Relaxed);
    let mut base = settle_all(so_far);
    let mut next = first;
    let mut short = Vec::new();
    for phase in 0..phases {
        for (name, logger) in [("distlog", 0usize), ("facade", 1)] {
            let stats_before = distlog::stats();
            let start = Instant::now();
            let mut late = 0u64;
            for b in 0..calls / burst {
                let due = start + burst_period * b as u32;
                let mut now = Instant::now();
                if now > due + burst_period {
                    late += 1;
                }
                while now < due {
                    std::hint::spin_loop();
                    now = Instant::now();
                }
                for k in 0..burst {
                    call(logger, "3args", next + k);
                }
                next += burst;
            }
            let took = start.elapsed();
            logged[logger].fetch_add(calls, Ordering::Relaxed);
            let got = settle_all(base + calls) - base;
            base += got;
            let after = distlog::stats();
            let pct_delivered = 100.0 * got as f64 / calls as f64;
            println!(
                "PEERS_NOTE head_to_head rate phase {phase} {name}: delivered {got} of {calls} \
                 ({pct_delivered:.2}%) at {:.0} calls/s, rings grown {}, late bursts {late}",
                calls as f64 / took.as_secs_f64(),
                after.rings_grown - stats_before.rings_grown,
            );
            report(serde_json::json!({
                "bench": "head_to_head_rate",
                "logger": name,
                "phase": phase,
                "grow_when_full": env_u64("PEERS_H2H_GROW").unwrap_or(1) == 1,
                "rate": rate,
                "achieved_rate": r2(calls as f64 / took.as_secs_f64()),
                "logged": calls,
                "delivered": got,
                "delivered_pct": r2(pct_delivered),
                "dropped": after.dropped - stats_before.dropped,
                "rings_grown": after.rings_grown - stats_before.rings_grown,
                "late_bursts": late,
                "load_avg_1m": load_average(),
            }));
            if got < calls {
                short.push(format!("rate phase {phase} {name}: {got} of {calls}"));
            }
        }
    }
    short
}

/// The 1-minute load average (Linux), for the record beside timed figures.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
