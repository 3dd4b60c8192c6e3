//! The cost of one log call, measured as the C++ anchors (NanoLog, Quill)
//! publish theirs: bursts of 20 calls timed together, a pause between
//! bursts so the sender drains, per-call time = burst time / 20.
//!
//! Every record is delivered: the pipeline blocks instead of dropping, and
//! an in-process receiver counts what arrives; the bench fails if the
//! counts differ.
//!
//! `cargo bench --bench log_call`; quick check: `cargo test --benches`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[path = "../tests/common/record_counter.rs"]
mod record_counter;

const BURST: u64 = 20;
fn pause() -> Duration {
    static P: OnceLock<Duration> = OnceLock::new();
    *P.get_or_init(|| {
        let us = std::env::var("DISTLOG_BENCH_PAUSE_US")
            .ok()
            .and_then(|s| s.parse().ok());
        Duration::from_micros(us.unwrap_or(10))
    })
}

struct Setup {
    received: Arc<AtomicU64>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let (endpoint, received) = record_counter::spawn();
        std::mem::forget(
            distlog::builder()
                .endpoint(endpoint)
                .level("info")
                .block_when_full(true)
                .log_facade(true)
                .install()
                .unwrap(),
        );
        Setup { received }
    })
}

/// Runs `iters` calls of `f` in timed bursts; returns the time inside bursts.
fn bursts(iters: u64, mut f: impl FnMut(u64)) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BURST.min(iters - done);
        let start = Instant::now();
        for i in 0..n {
            f(done + i);
        }
        total += start.elapsed();
        done += n;
        let paused = Instant::now();
        while paused.elapsed() < pause() {
            std::hint::spin_loop();
        }
    }
    total
}

fn log_call(c: &mut Criterion) {
    let s = setup();
    let mut logged = 0u64;
    let mut g = c.benchmark_group("log_call");
    g.bench_function("native_3kv", |b| {
        b.iter_custom(|iters| {
            logged += iters;
            bursts(
                iters,
                |i| distlog::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i),
            )
        })
    });
    g.bench_function("native_0kv", |b| {
        b.iter_custom(|iters| {
            logged += iters;
            bursts(iters, |i| distlog::info!("request {} done", i))
        })
    });
    g.bench_function("facade_3kv", |b| {
        b.iter_custom(|iters| {
            logged += iters;
            bursts(
                iters,
                |i| log::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i),
            )
        })
    });
    g.bench_function("native_3args", |b| {
        b.iter_custom(|iters| {
            logged += iters;
            bursts(iters, |i| {
                distlog::info!("request {} done {} {}", i, true, "10.0.0.7")
            })
        })
    });
    g.bench_function("facade_3args", |b| {
        b.iter_custom(|iters| {
            logged += iters;
            bursts(iters, |i| {
                log::info!("request {} done {} {}", i, true, "10.0.0.7")
            })
        })
    });
    g.bench_function("facade_literal", |b| {
        b.iter_custom(|iters| {
            logged += iters;
            bursts(iters, |_| log::info!("request done"))
        })
    });
    // Entering and leaving a subtask logs two records (start and end);
    // compare with two plain log calls.
    let root = distlog::task("bench root", &[]);
    g.bench_function("task_enter_leave", |b| {
        b.iter_custom(|iters| {
            logged += 2 * iters;
            bursts(iters, |_| {
                let t = distlog::to("step", &[]);
                drop(t);
            })
        })
    });
    g.bench_function("two_native_0kv_in_task", |b| {
        b.iter_custom(|iters| {
            logged += 2 * iters;
            bursts(iters, |i| {
                distlog::info!("request {} done", i);
                distlog::info!("request {} done", i);
            })
        })
    });
    // The same comparison, paired: bursts of each alternate, so both see the
    // same machine load, and the medians of per-burst times drop bursts in
    // which the thread was preempted (2 shared cores).
    if std::env::args().any(|a| a.contains("task")) || std::env::args().count() <= 2 {
        logged += paired_task_vs_native();
    }
    drop(root);
    logged += 2; // the root's start and end records
    g.bench_function("native_disabled", |b| {
        b.iter(|| distlog::debug!(user_id = 1u64; "not wanted {}", 2u64))
    });
    g.bench_function("facade_disabled", |b| {
        b.iter(|| log::debug!(user_id = 1u64; "not wanted {}", 2u64))
    });
    g.finish();

    assert!(distlog::flush_timeout(Duration::from_secs(30)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.received.load(Ordering::Relaxed) < logged && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = distlog::stats();
    println!(
        "delivered {} of {} records, dropped {}",
        s.received.load(Ordering::Relaxed),
        logged,
        stats.dropped
    );
    assert_eq!(stats.dropped, 0);
    assert_eq!(
        s.received.load(Ordering::Relaxed),
        logged,
        "every record delivered"
    );
}

/// Alternates timed bursts of task enter+leave and of two native calls in
/// the task; prints per-call medians and their ratio. Returns the records
/// logged.
fn paired_task_vs_native() -> u64 {
    const ROUNDS: usize = 20_000;
    let mut a = Vec::with_capacity(ROUNDS);
    let mut b = Vec::with_capacity(ROUNDS);
    let burst = |f: &mut dyn FnMut(u64)| {
        let start = Instant::now();
        for i in 0..BURST {
            f(i);
        }
        let t = start.elapsed().as_nanos() as f64 / BURST as f64;
        let paused = Instant::now();
        while paused.elapsed() < pause() {
            std::hint::spin_loop();
        }
        t
    };
    for _ in 0..ROUNDS {
        a.push(burst(&mut |_| drop(distlog::to("step", &[]))));
        b.push(burst(&mut |i| {
            distlog::info!("request {} done", i);
            distlog::info!("request {} done", i);
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "paired medians over {ROUNDS} bursts of {BURST}: task_enter_leave {ma:.1} ns, \
         two_native_0kv_in_task {mb:.1} ns, ratio {:.2}",
        ma / mb
    );
    4 * BURST * ROUNDS as u64
}

criterion_group!(benches, log_call);
criterion_main!(benches);
