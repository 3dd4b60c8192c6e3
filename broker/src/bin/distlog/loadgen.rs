//! `distlog loadgen`: load through the real client pipeline, to size a
//! node; per-call latency from an HdrHistogram.
//!
//! Each thread logs its share of the records with the native macro
//! (`distlog::info!` with K key/values and two format arguments) and times
//! every call with the cycle counter (x86_64; calibrated against the
//! monotonic clock over the logging itself, so no calibration sleep comes
//! before the first call) or `Instant` elsewhere. Flat out, one reading
//! of the counter ends a call and starts the next (one `rdtsc` a call,
//! not two: ~10 ns each on this VM), so each call's time also counts the
//! loop around it (a counter increment and the loop's own few
//! instructions); paced, a call's start is read after its wait.
//! Per-thread histograms are merged. After the last call the pipeline is
//! flushed and shut down; the summary is one JSON line, printed last. In it, `sent` counts the records
//! logged, `dropped` those the client dropped (by reason in `drops`:
//! `buffer_full`, `no_broker`, `handshake_failed`), `handed_over` those it
//! handed to a connected, authenticated broker (the drop warnings the
//! client logs itself included), `acknowledged` and `resent` those the
//! broker acknowledged and those sent again after a reconnect (`--ack`),
//! and `connection` is the state of the link to the broker at the end.
//! `delivered` is `sent - dropped` (at least 0: `dropped` also counts the
//! client's own drop warnings when those could not be sent), and the rates divide by `secs` (first
//! call .. pipeline shut down): `records_per_sec` counts delivered records
//! only, `attempted_per_sec` every call, dropped ones included, and
//! `log_calls_per_sec` every call over the logging time alone.
//!
//! Flat out (the default), the client's buffers fill and the calls measure
//! back-pressure: drops, or waiting with `--block`. `--rate R` paces the
//! threads to R records/s in all, so the histogram shows what a call costs
//! under a sustained load the pipeline keeps up with (the time spent
//! waiting for the next slot is not counted).

use crate::call_times::{self, CallTimes};
use crate::CliError;
use std::time::{Duration, Instant};

/// Arguments of `distlog loadgen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The broker's ingest endpoint.
    #[arg(long, value_name = "ENDPOINT", default_value = distlog::DEFAULT_ENDPOINT)]
    endpoint: String,
    /// Records to log, in total.
    #[arg(long, value_name = "N")]
    records: u64,
    /// Logging threads (records are split evenly).
    #[arg(long, value_name = "T", default_value_t = 1)]
    threads: usize,
    /// Key/value fields per record (0 to 8).
    #[arg(long, value_name = "K", default_value_t = 2)]
    fields: usize,
    /// Wait for room when a thread's buffer is full instead of dropping
    /// (the client's opt-in blocking mode).
    #[arg(long)]
    block: bool,
    /// Buffer (ring) per logging thread, in bytes (default: the client's,
    /// 128 KiB).
    #[arg(long, value_name = "BYTES")]
    buffer: Option<usize>,
    /// The topic's system letter: T test, S staging, P production.
    #[arg(long, default_value_t = 'T')]
    system: char,
    /// Pace the threads to this many records per second in all (default:
    /// as fast as they can).
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Acknowledged delivery: ENDPOINT is one of the broker's `ack_listen`
    /// endpoints; the client resends what was not acknowledged after a
    /// reconnect.
    #[arg(long)]
    ack: bool,
    /// With --ack, the resend buffer in bytes (default: the client's,
    /// 16 MiB).
    #[arg(long, value_name = "BYTES")]
    resend_buffer: Option<usize>,
    /// How long to wait for everything to be handed to ZeroMQ at the end.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    flush_timeout: f64,
}

/// A timestamp in ticks.
#[inline(always)]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64; it only reads the
        // time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Ticks per nanosecond, measured over 50 ms.
fn calibrate() -> f64 {
    rate_since(ticks(), Instant::now())
}

/// Ticks per nanosecond since `(t0, i0)`, read together; over at least
/// 50 ms (sleeping for the rest when less has passed).
fn rate_since(t0: u64, i0: Instant) -> f64 {
    if let Some(rest) = Duration::from_millis(50).checked_sub(i0.elapsed()) {
        std::thread::sleep(rest);
    }
    let (t1, el) = (ticks(), i0.elapsed());
    (t1.wrapping_sub(t0)) as f64 / el.as_nanos().max(1) as f64
}

/// Paces a thread: sleeps while it is more than 50 µs ahead of `due` (the
/// cycle count at which its next record is due). It never spins, so the
/// pipeline's own threads get the CPU (this machine has 2 cores), and the
/// load comes in short bursts at the requested average rate.
fn wait_until(due: u64, ticks_per_ns: f64) {
    const AHEAD_NS: f64 = 50_000.0;
    let now = ticks();
    if due > now {
        let ns = (due - now) as f64 / ticks_per_ns;
        if ns > AHEAD_NS {
            std::thread::sleep(Duration::from_nanos(ns as u64));
        }
    }
}

/// Logs `n` records on this thread, timing each call in ticks; with
/// `pace` (the interval in ticks, and ticks per nanosecond), one call per
/// interval.
fn worker(thread: usize, n: u64, fields: usize, pace: Option<(f64, f64)>) -> CallTimes {
    let mut times = CallTimes::new();
    let t = thread as u64;
    let t0 = ticks();
    let mut a = t0;
    macro_rules! run {
        ($i:ident; $($kv:tt)*) => {
            for $i in 0..n {
                if let Some((step, ticks_per_ns)) = pace {
                    wait_until(t0 + ($i as f64 * step) as u64, ticks_per_ns);
                    a = ticks();
                }
                distlog::info!(target: "loadgen", $($kv)* "loadgen record {} of thread {}", $i, t);
                let b = ticks();
                times.record(b.wrapping_sub(a));
                a = b;
            }
        };
    }
    match fields {
        0 => run!(i;),
        1 => run!(i; k0 = i;),
        2 => run!(i; k0 = i, k1 = "value";),
        3 => run!(i; k0 = i, k1 = "value", k2 = true;),
        4 => run!(i; k0 = i, k1 = "value", k2 = true, k3 = 1.5f64;),
        5 => run!(i; k0 = i, k1 = "value", k2 = true, k3 = 1.5f64, k4 = t;),
        6 => run!(i; k0 = i, k1 = "value", k2 = true, k3 = 1.5f64, k4 = t, k5 = "another value";),
        7 => run!(i; k0 = i, k1 = "value", k2 = true, k3 = 1.5f64, k4 = t, k5 = "another value",
                  k6 = -7i64;),
        _ => run!(i; k0 = i, k1 = "value", k2 = true, k3 = 1.5f64, k4 = t, k5 = "another value",
                  k6 = -7i64, k7 = 'x';),
    }
    times
}

pub fn run(a: Args) -> Result<(), CliError> {
    if a.fields > 8 {
        return Err(CliError(format!(
            "--fields {}: at most 8 key/value fields",
            a.fields
        )));
    }
    if a.threads == 0 {
        return Err(CliError("--threads must be at least 1".into()));
    }
    if a.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(CliError(
            "--rate must be a positive number of records per second".into(),
        ));
    }
    let interval_ns = a.rate.map(|r| 1e9 * a.threads as f64 / r);
    if !matches!(a.system, 'T' | 'S' | 'P') {
        return Err(CliError(format!(
            "--system {}: expected T, S or P",
            a.system
        )));
    }
    let mut builder = distlog::builder()
        .endpoint(a.endpoint.clone())
        .system(a.system)
        .level("info")
        .program("distlog-loadgen")
        .block_when_full(a.block)
        .log_facade(false)
        .shutdown_timeout(Duration::from_secs_f64(a.flush_timeout))
        .acknowledged(a.ack);
    if let Some(b) = a.resend_buffer {
        builder = builder.resend_buffer(b);
    }
    if let Some(b) = a.buffer {
        builder = builder
            .buffer_per_thread(b)
            .max_memory((b.next_power_of_two() * (a.threads + 1)).max(4 << 20));
    }
    let guard = builder
        .install()
        .map_err(|e| CliError(format!("cannot start the client pipeline: {e}")))?;
    // Paced threads need the tick rate before their first call; flat out,
    // it is measured over the logging (at least 50 ms).
    let paced_at = interval_ns.map(|ns| {
        let ticks_per_ns = calibrate();
        (ns * ticks_per_ns, ticks_per_ns)
    });
    let per = a.records / a.threads as u64;
    let extra = a.records % a.threads as u64;
    let (start, start_ticks) = (Instant::now(), ticks());
    let times: Vec<CallTimes> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                let n = per + u64::from((t as u64) < extra);
                let fields = a.fields;
                s.spawn(move || worker(t, n, fields, paced_at))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("loadgen thread"))
            .collect()
    });
    let log_secs = start.elapsed().as_secs_f64();
    // Shutting down delivers what is queued within the flush timeout (one
    // wait in all); what never reached a broker is then counted as dropped.
    let flushed = distlog::shutdown();
    let secs = start.elapsed().as_secs_f64();
    let ticks_per_ns = match paced_at {
        Some((_, rate)) => rate,
        None => rate_since(start_ticks, start),
    };
    let mut all = call_times::histogram();
    for t in times {
        all.add(t.into_histogram(ticks_per_ns))
            .map_err(|e| CliError(format!("merging histograms: {e}")))?;
    }
    drop(guard);
    let stats = distlog::stats();
    let delivered = a.records.saturating_sub(stats.dropped);
    let summary = serde_json::json!({
        "sent": a.records,
        "delivered": delivered,
        "dropped": stats.dropped,
        "drops": {
            "buffer_full": stats.drops.buffer_full,
            "no_broker": stats.drops.no_broker,
            "handshake_failed": stats.drops.handshake_failed,
            "unacknowledged": stats.drops.unacknowledged,
        },
        "acknowledged": stats.acknowledged,
        "resent": stats.resent,
        "handed_over": stats.sent,
        "connection": connection_name(stats.connection),
        "batches": stats.batches,
        "bytes": stats.bytes,
        "flushed": flushed,
        "threads": a.threads,
        "fields": a.fields,
        "rate": a.rate,
        "secs": secs,
        "log_secs": log_secs,
        "records_per_sec": delivered as f64 / secs.max(1e-9),
        "attempted_per_sec": a.records as f64 / secs.max(1e-9),
        "log_calls_per_sec": a.records as f64 / log_secs.max(1e-9),
        "p50_ns": all.value_at_quantile(0.50),
        "p99_ns": all.value_at_quantile(0.99),
        "p999_ns": all.value_at_quantile(0.999),
        "max_ns": all.max(),
        "mean_ns": all.mean(),
    });
    println!("{summary}");
    if !flushed {
        eprintln!(
            "distlog: warning: not everything reached a broker within {}s (broker down or slow?)",
            a.flush_timeout
        );
    }
    Ok(())
}

/// The connection state as a word for the summary.
fn connection_name(c: distlog::Connection) -> String {
    match c {
        distlog::Connection::Connecting => "connecting".into(),
        distlog::Connection::Connected => "connected".into(),
        distlog::Connection::Disconnected => "disconnected".into(),
        distlog::Connection::HandshakeFailed(f) => format!("handshake_failed:{}", f.name()),
        _ => format!("{c:?}"),
    }
}
