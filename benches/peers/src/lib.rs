//! The shared protocol of the peer benches: one bench binary per logger
//! (`benches/peer_*.rs`), all measured the same way, each printing one
//! `PEERS_RESULT {json}` line per case that `run.sh` gathers into a table.
//!
//! # Protocol (Quill's hot-path protocol)
//!
//! A logging thread makes bursts of [`BURST`] (20) calls, times each burst
//! with the cycle counter (`rdtsc`, calibrated against `Instant`), records
//! the burst's per-call average, then sleeps for the pause (default 100 µs,
//! `PEERS_PAUSE_US`; Quill uses ~2 ms) so the logger's background thread
//! can drain. Thousands of bursts per case (`PEERS_BATCHES`, default
//! 10,000 per thread) after a warm-up; percentiles are over the per-burst
//! averages of every thread. Two-thread cases run the same on two threads
//! started together. The pause sleeps rather than spins: on this 2-core
//! machine a spinning pause would starve the loggers' own threads.
//!
//! Before the percentile run, criterion times the same bursts (one thread)
//! with `iter_custom`, so `cargo bench` keeps its usual reports and
//! `cargo test --benches` runs every case once quickly.
//!
//! # Delivery
//!
//! Every peer writes to a sink that discards ([`LineCounter`]): it counts
//! the lines that carry the bench's message and throws the bytes away.
//! After each case the bench flushes the logger where it can and waits until
//! the count stops moving, then reports `delivered` of `logged` for that
//! case. A figure counts only next to its delivery rate.
//!
//! # Same message, same fields
//!
//! Message `"request {i} done"` with `i` the call number; the key/values:
//!
//! - 3: `user_id = i` (u64), `ok = true`, `peer = "10.0.0.7"`;
//! - 8: those, plus `latency_ms = 1.5` (f64), `shard = t` (u64, the thread),
//!   `route = "/orders"`, `delta = -7` (i64), `retries = 3` (u32).
//!
//! Loggers without structured fields get them formatted into the message
//! (`"request {} done user_id={} ok={} peer={}"`), and the report says so.
//!
//! # Also measured
//!
//! - allocations per call, on the logging thread (a counting global
//!   allocator, counting only during a separate untimed pass);
//! - the process's CPU time over the timed run as a share of wall time:
//!   the logging threads sleep most of the time, so a background thread
//!   that spins shows up here as ~100% (one core).
// Unsafe only for the cycle counter, the counting allocator and getrusage,
// each with its invariant in a SAFETY comment.
#![deny(clippy::undocumented_unsafe_blocks)]

use criterion::Criterion;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// Calls per timed burst (Quill's protocol).
pub const BURST: u64 = 20;

/// What every delivered line of the bench contains (the message's start).
pub const MARKER: &[u8] = b"request ";

/// Run settings, from the command line and the environment.
pub struct Settings {
    /// `cargo bench` (criterion passes `--bench`) rather than the quick
    /// test mode of `cargo test --benches`.
    pub full: bool,
    /// Measured bursts per thread per case.
    pub batches: u64,
    /// Unmeasured bursts per thread before them.
    pub warmup: u64,
    /// Sleep between bursts.
    pub pause: Duration,
    /// Append the JSON result lines to this file too (`PEERS_OUT`).
    pub out: Option<PathBuf>,
}

/// An environment variable parsed as a number, if set and valid.
pub fn env_u64(k: &str) -> Option<u64> {
    std::env::var(k).ok().and_then(|v| v.parse().ok())
}

/// The settings of this run.
pub fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let full = std::env::args().any(|a| a == "--bench");
        let batches = env_u64("PEERS_BATCHES").unwrap_or(if full { 10_000 } else { 50 });
        Settings {
            full,
            batches,
            warmup: (batches / 10).max(5),
            pause: Duration::from_micros(env_u64("PEERS_PAUSE_US").unwrap_or(100)),
            out: std::env::var_os("PEERS_OUT").map(PathBuf::from),
        }
    })
}

/// The cycle counter (x86_64), or nanoseconds since first use elsewhere.
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64; it reads the
        // time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Ticks per nanosecond, measured once against `Instant` (over 100 ms).
pub fn ticks_per_ns() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        let (t0, i0) = (ticks(), Instant::now());
        std::thread::sleep(Duration::from_millis(100));
        let (t1, el) = (ticks(), i0.elapsed());
        t1.wrapping_sub(t0) as f64 / el.as_nanos().max(1) as f64
    })
}

/// Makes `calls` calls of `f` in timed bursts of up to [`BURST`], numbered
/// from `first`; `on_burst(ticks, n)` gets each burst's time; `between` runs
/// in each pause (untimed), then the thread sleeps for `pause`.
#[inline(always)]
fn run_calls<F: FnMut(u64)>(
    calls: u64,
    first: u64,
    pause: Duration,
    f: &mut F,
    between: &dyn Fn(),
    mut on_burst: impl FnMut(u64, u64),
) {
    let mut done = 0;
    while done < calls {
        let n = BURST.min(calls - done);
        let base = first + done;
        let t0 = ticks();
        for k in 0..n {
            f(base + k);
        }
        let t1 = ticks();
        on_burst(t1.wrapping_sub(t0), n);
        done += n;
        between();
        std::thread::sleep(pause);
    }
}

/// Per-call averages, in nanoseconds, of `bursts` timed bursts of [`BURST`]
/// calls of `f` (numbered from `first`), with `between` and the pause after
/// each: the protocol above, for benches that drive several loggers in one
/// process (`head_to_head`).
pub fn timed_bursts<F: FnMut(u64)>(
    bursts: u64,
    first: u64,
    f: &mut F,
    between: &dyn Fn(),
) -> Vec<f64> {
    let tpn = ticks_per_ns();
    let mut avgs = Vec::with_capacity(bursts as usize);
    run_calls(
        bursts * BURST,
        first,
        settings().pause,
        f,
        between,
        |dt, n| avgs.push(dt as f64 / tpn / n as f64),
    );
    avgs
}

/// Counts heap allocations made on threads that asked to be counted.
pub struct CountingAlloc;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged; only
// counts on the side.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(p, l, n)
    }
}

/// Allocations per call of `f` on this thread over `calls` calls (in
/// bursts with pauses, as measured; counts only if the bench binary
/// installed [`CountingAlloc`] as its global allocator).
fn allocs_per_call<F: FnMut(u64)>(calls: u64, first: u64, f: &mut F, between: &dyn Fn()) -> f64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    // What runs in the pauses (quicklog's drain) is not the call: uncounted.
    let between = || {
        COUNTING.with(|c| c.set(false));
        between();
        COUNTING.with(|c| c.set(true));
    };
    COUNTING.with(|c| c.set(true));
    run_calls(calls, first, settings().pause, f, &between, |_, _| {});
    COUNTING.with(|c| c.set(false));
    (ALLOCS.load(Ordering::Relaxed) - before) as f64 / calls.max(1) as f64
}

/// Process CPU time (user + system), from getrusage.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A `Write` that discards what it gets and counts the lines that carry
/// [`MARKER`] (lines may arrive in pieces; the counter joins them).
pub struct LineCounter {
    counts: Arc<Counts>,
    carry: Vec<u8>,
}

/// What a [`LineCounter`] saw.
#[derive(Default)]
pub struct Counts {
    /// Complete lines containing [`MARKER`].
    pub lines: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
}

impl LineCounter {
    /// A counter and the handle to read its counts.
    pub fn new() -> (Self, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        (
            LineCounter {
                counts: counts.clone(),
                carry: Vec::with_capacity(1024),
            },
            counts,
        )
    }
}

impl Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.counts
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        let mut rest = buf;
        let mut n = 0;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let line = &rest[..nl];
            let hit = if self.carry.is_empty() {
                memchr::memmem::find(line, MARKER).is_some()
            } else {
                self.carry.extend_from_slice(line);
                let h = memchr::memmem::find(&self.carry, MARKER).is_some();
                self.carry.clear();
                h
            };
            n += u64::from(hit);
            rest = &rest[nl + 1..];
        }
        self.carry.extend_from_slice(rest);
        if n > 0 {
            self.counts.lines.fetch_add(n, Ordering::Relaxed);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Prints one `PEERS_RESULT {json}` line and appends the JSON to
/// `PEERS_OUT` when set.
pub fn report(v: serde_json::Value) {
    println!("PEERS_RESULT {v}");
    if let Some(p) = &settings().out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .expect("PEERS_OUT");
        writeln!(f, "{v}").expect("PEERS_OUT write");
    }
}

/// Percentile `q` (0..=1) of sorted values.
pub fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Two decimals, as a JSON number.
pub fn r2(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!((x * 100.0).round() / 100.0)
    } else {
        serde_json::Value::Null
    }
}

/// One logger's bench: its cases, how to count what it delivered, how to
/// flush it, and what runs in each pause.
pub struct Peer {
    name: &'static str,
    criterion: Criterion,
    delivered: Option<Box<dyn Fn() -> u64>>,
    flush: Box<dyn Fn()>,
    between: Box<dyn Fn() + Sync>,
    next_i: u64,
}

impl Peer {
    /// A bench for the logger `name` (criterion configured from the
    /// command line).
    pub fn new(name: &'static str) -> Self {
        let s = settings();
        let _ = ticks_per_ns();
        eprintln!(
            "peers: {name}: {} bursts of {BURST} per thread per case, pause {:?}, {} mode, {:.3} ticks/ns",
            s.batches,
            s.pause,
            if s.full { "bench" } else { "quick test" },
            ticks_per_ns()
        );
        Peer {
            name,
            criterion: Criterion::default().configure_from_args(),
            delivered: None,
            flush: Box::new(|| {}),
            between: Box::new(|| {}),
            next_i: 0,
        }
    }

    /// How many of the bench's records the sink has seen so far.
    pub fn delivered(mut self, f: impl Fn() -> u64 + 'static) -> Self {
        self.delivered = Some(Box::new(f));
        self
    }

    /// Flushes the logger (best effort; called before counting).
    pub fn flush(mut self, f: impl Fn() + 'static) -> Self {
        self.flush = Box::new(f);
        self
    }

    /// Runs in every pause between bursts, on the logging thread (for a
    /// logger whose documented model is "the application flushes").
    pub fn between(mut self, f: impl Fn() + Sync + 'static) -> Self {
        self.between = Box::new(f);
        self
    }

    /// Waits until the sink has seen `base + logged` records or its count
    /// has not moved for a while; returns how many of them it saw.
    fn settle(&self, base: u64, logged: u64) -> Option<u64> {
        let count = self.delivered.as_ref()?;
        (self.flush)();
        let quiet = if settings().full {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(150)
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut since) = (count(), Instant::now());
        while last - base < logged && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            let now = count();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                break;
            }
        }
        Some(last - base)
    }

    /// An enabled-level case: `f(i, thread)` makes one log call.
    /// `note` says how the fields were passed when not as key/values.
    pub fn enabled<F>(&mut self, case: &str, threads: usize, note: &str, f: F)
    where
        F: Fn(u64, u64) + Sync,
    {
        let s = settings();
        let base = self.delivered.as_ref().map_or(0, |c| c());
        let mut logged = 0u64;
        let tpn = ticks_per_ns();
        let between: &(dyn Fn() + Sync) = &*self.between;
        // criterion: the same bursts on one thread.
        if threads == 1 {
            let next_i = &mut self.next_i;
            self.criterion
                .bench_function(&format!("{}/{case}", self.name), |b| {
                    b.iter_custom(|iters| {
                        let mut t = 0u64;
                        let mut g = |i| f(i, 0);
                        run_calls(iters, *next_i, s.pause, &mut g, between, |dt, _| t += dt);
                        *next_i += iters;
                        logged += iters;
                        Duration::from_nanos((t as f64 / tpn) as u64)
                    })
                });
        }
        // The percentile run, on `threads` threads started together.
        let per_thread = (s.warmup + s.batches) * BURST;
        let first = self.next_i;
        let barrier = Barrier::new(threads);
        let work = |t: usize| {
            let mut g = |i| f(i, t as u64);
            let start = first + t as u64 * per_thread;
            run_calls(s.warmup * BURST, start, s.pause, &mut g, between, |_, _| {});
            barrier.wait();
            timed_bursts(s.batches, start + s.warmup * BURST, &mut g, between)
        };
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        let mut avgs: Vec<f64> = if threads == 1 {
            work(0)
        } else {
            std::thread::scope(|sc| {
                let hs: Vec<_> = (0..threads).map(|t| sc.spawn(move || work(t))).collect();
                hs.into_iter()
                    .flat_map(|h| h.join().expect("bench thread"))
                    .collect()
            })
        };
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        self.next_i += per_thread * threads as u64;
        logged += per_thread * threads as u64;
        // Allocations per call, untimed, on this thread.
        let alloc_calls = if s.full { 100 * BURST } else { 5 * BURST };
        let mut g = |i| f(i, 0);
        let allocs = allocs_per_call(alloc_calls, self.next_i, &mut g, between);
        self.next_i += alloc_calls;
        logged += alloc_calls;

        let delivered = self.settle(base, logged);
        avgs.sort_by(|a, b| a.total_cmp(b));
        let mean = avgs.iter().sum::<f64>() / avgs.len().max(1) as f64;
        self.report(serde_json::json!({
            "logger": self.name,
            "case": case,
            "threads": threads,
            "p50_ns": r2(pct(&avgs, 0.5)),
            "p90_ns": r2(pct(&avgs, 0.9)),
            "p99_ns": r2(pct(&avgs, 0.99)),
            "p999_ns": r2(pct(&avgs, 0.999)),
            "max_ns": r2(avgs.last().copied().unwrap_or(f64::NAN)),
            "mean_ns": r2(mean),
            "bursts": avgs.len(),
            "logged": logged,
            "delivered": delivered,
            "allocs_per_call": r2(allocs),
            "cpu_pct": r2(100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)),
            "pause_us": s.pause.as_micros() as u64,
            "note": note,
        }));
    }

    /// A disabled-level case: `f(i)` makes one call below the level.
    /// Timed as 1000 calls per rdtsc pair (a burst of 20 would measure the
    /// counter itself), median over the repetitions.
    pub fn disabled(&mut self, case: &str, note: &str, f: impl Fn(u64)) {
        let s = settings();
        let base = self.delivered.as_ref().map_or(0, |c| c());
        self.criterion
            .bench_function(&format!("{}/{case}", self.name), |b| {
                b.iter(|| f(std::hint::black_box(1)))
            });
        let reps = if s.full { 5000 } else { 50 };
        let mut per: Vec<f64> = Vec::with_capacity(reps);
        for r in 0..reps as u64 {
            let t0 = ticks();
            for k in 0..1000 {
                f(std::hint::black_box(r * 1000 + k));
            }
            per.push(ticks().wrapping_sub(t0) as f64 / ticks_per_ns() / 1000.0);
        }
        per.sort_by(|a, b| a.total_cmp(b));
        let delivered = self.settle(base, 0);
        self.report(serde_json::json!({
            "logger": self.name,
            "case": case,
            "threads": 1,
            "p50_ns": r2(pct(&per, 0.5)),
            "p99_ns": r2(pct(&per, 0.99)),
            "p999_ns": r2(pct(&per, 0.999)),
            "logged": 0,
            "delivered": delivered,
            "note": note,
        }));
    }

    /// A case this logger cannot run, and why (it goes in the table).
    pub fn unsupported(&mut self, case: &str, threads: usize, why: &str) {
        self.report(serde_json::json!({
            "logger": self.name,
            "case": case,
            "threads": threads,
            "unsupported": why,
        }));
    }

    fn report(&self, v: serde_json::Value) {
        report(v);
    }

    /// Criterion's summary.
    pub fn finish(self) {
        self.criterion.final_summary();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counter_joins_pieces_and_counts_marked_lines() {
        let (mut w, c) = LineCounter::new();
        w.write_all(b"x request 1 done\nother line\nreq").unwrap();
        w.write_all(b"uest 2 done").unwrap();
        w.write_all(b"\n").unwrap();
        w.write_all(b"request 3 done\n").unwrap();
        assert_eq!(c.lines.load(Ordering::Relaxed), 3);
        assert_eq!(c.bytes.load(Ordering::Relaxed), 58);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), 501.0);
        assert_eq!(pct(&v, 0.999), 999.0);
        assert!(pct(&[], 0.5).is_nan());
    }
}
