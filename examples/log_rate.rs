//! Delivery at a steady rate: one thread logs at `RATE` calls per second
//! (default 1,000,000: one call every microsecond, paced by the clock) in
//! the default drop-when-full mode, and an in-process receiver counts what
//! arrived. The native macro and the `log` facade alternate in phases of
//! `SECONDS` (default 1) in one process, `PHASES` each (default 3), so both
//! see the same machine; after each phase the pipeline is flushed and the
//! phase's delivered share printed.
//!
//! ```text
//! cargo run --release --example log_rate
//! RATE=1000000 SECONDS=1 PHASES=3 BUFFER_KIB=128 cargo run --release --example log_rate
//! ```
//!
//! `BUFFER_KIB` sets the per-thread ring (default: the builder's, 128 KiB);
//! `IDLE_US` the sender's idle wait (default: the builder's, 1 ms), to tell
//! a late wake-up from a ring too small for the sender's absences;
//! `GROW=0` turns off the default growth (a full ring continuing in a
//! spare one within half of `max_memory`, `Builder::grow_when_full`);
//! `BLOCK=1` makes a full ring wait for the sender instead of dropping
//! (`Builder::block_when_full`): nothing is lost, and the line's `rate`
//! says what rate the thread then achieved.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "../tests/common/record_counter.rs"]
mod record_counter;

fn env(k: &str, default: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[inline(never)]
fn native(i: u64) {
    distlog::info!("request {} done {} {}", i, true, "10.0.0.7");
}

#[inline(never)]
fn facade(i: u64) {
    log::info!("request {} done {} {}", i, true, "10.0.0.7");
}

/// Logs `calls` records, one every `period`; returns the calls made late
/// (the clock had passed their slot by more than one period).
fn paced(f: fn(u64), first: u64, calls: u64, period: Duration) -> u64 {
    let start = Instant::now();
    let mut late = 0;
    for k in 0..calls {
        let due = start + period * k as u32;
        let mut now = Instant::now();
        if now > due + period {
            late += 1;
        }
        while now < due {
            std::hint::spin_loop();
            now = Instant::now();
        }
        f(first + k);
    }
    late
}

fn main() {
    let rate = env("RATE", 1_000_000);
    let seconds = env("SECONDS", 1);
    let phases = env("PHASES", 3);
    let (endpoint, received) = record_counter::spawn();
    let mut builder = distlog::builder().endpoint(endpoint).level("info");
    if let Some(kib) = std::env::var("BUFFER_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        builder = builder.buffer_per_thread(kib * 1024);
    }
    if let Some(us) = std::env::var("IDLE_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        builder = builder.idle_wait(Duration::from_micros(us));
    }
    let block = env("BLOCK", 0) == 1;
    builder = builder.block_when_full(block);
    builder = builder.grow_when_full(env("GROW", 1) == 1);
    let _guard = builder.install().unwrap();
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let calls = rate * seconds;
    let settle = |want: u64| {
        assert!(distlog::flush_timeout(Duration::from_secs(30)));
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut last, mut since) = (received.load(Ordering::Relaxed), Instant::now());
        while last < want && since.elapsed() < Duration::from_millis(500) {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
            let now = received.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        last
    };
    distlog::info!("warm up");
    log::info!("warm up");
    let mut before = settle(2);
    let mut logged = 2;
    let mut next = 0;
    for phase in 0..phases {
        for (name, f) in [("native", native as fn(u64)), ("facade", facade)] {
            let dropped_before = distlog::stats().dropped;
            let began = Instant::now();
            let late = paced(f, next, calls, period);
            let took = began.elapsed();
            next += calls;
            logged += calls;
            let after = settle(logged);
            let got = after - before;
            before = after;
            let dropped = distlog::stats().dropped - dropped_before;
            println!(
                "phase {phase} {name}: {rate} calls/s for {seconds} s{}, delivered {got} of {calls} \
                 ({:.2}%), dropped {dropped}, late calls {late}, rate {:.0} calls/s",
                if block { " (block when full)" } else { "" },
                100.0 * got as f64 / calls as f64,
                calls as f64 / took.as_secs_f64()
            );
            logged -= calls - got; // what never arrives is not waited for
        }
    }
}
