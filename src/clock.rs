//! Timestamps: a cycle counter on the hot path, wall-clock time on the wire.
//!
//! A vDSO `clock_gettime` costs about 23 ns on the machines we measure on and
//! `rdtsc` about 10, so where the CPU has an invariant TSC (`constant_tsc`
//! and `nonstop_tsc`) the log call stores the raw counter and the sender
//! turns it into nanoseconds since the Unix epoch with a [`Calibration`]: a
//! reference pair (TSC, wall clock) refreshed by the sender every 100 ms, and
//! a tick rate measured over the whole life of the pipeline. Between
//! refreshes the error is the drift of the TSC against the system clock over
//! at most 100 ms (a few ppm: well under a microsecond); NTP steps are picked
//! up at the next refresh. Elsewhere the log call reads the system clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static USE_TSC: AtomicBool = AtomicBool::new(false);
/// The latest measured tick rate (`f64` bits, ns per tick), for durations
/// taken on the hot path ([`elapsed_ns`]).
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// Wall-clock nanoseconds since the Unix epoch (0 before 1970).
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Reads the raw timestamp of the hot path and says what it is: `(value,
/// true)` for TSC ticks, `(value, false)` for wall-clock nanoseconds.
#[inline(always)]
pub fn raw_now() -> (u64, bool) {
    if USE_TSC.load(Ordering::Relaxed) {
        (tsc(), true)
    } else {
        (wall_ns(), false)
    }
}

#[inline(always)]
fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions; it is only reached when
        // `USE_TSC` was set after checking the CPU flags on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// Nanoseconds between two [`raw_now`] readings (task durations: the start
/// and end records' own timestamps, so no extra clock read). If the clock
/// source changed in between (a pipeline installed), the end is read again
/// from the system clock, or the duration is 0 when that cannot help.
pub(crate) fn elapsed_ns(start: (u64, bool), end: (u64, bool)) -> u64 {
    match (start.1, end.1) {
        (false, false) => end.0.saturating_sub(start.0),
        (true, true) => {
            let rate = f64::from_bits(NS_PER_TICK.load(Ordering::Relaxed));
            (end.0.saturating_sub(start.0) as f64 * rate) as u64
        }
        (false, true) => wall_ns().saturating_sub(start.0),
        (true, false) => 0,
    }
}

/// Whether this CPU's TSC can serve as a clock: x86_64 with an invariant TSC
/// as reported by the kernel.
fn tsc_is_invariant() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(info) => info
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|flags| {
                let has = |f: &str| flags.split_whitespace().any(|x| x == f);
                has("constant_tsc") && has("nonstop_tsc")
            })
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Converts hot-path TSC readings into wall-clock time. Owned by the sender.
#[derive(Debug, Clone)]
pub struct Calibration {
    origin_tsc: u64,
    origin_ns: u64,
    ref_tsc: u64,
    ref_ns: u64,
    ns_per_tick: f64,
}

impl Calibration {
    /// Decides the clock source for the process (once) and takes the first
    /// reference pair. Set `allow_tsc` to false to force the system clock.
    pub fn start(allow_tsc: bool) -> Calibration {
        let use_tsc = allow_tsc && tsc_is_invariant();
        let (t, ns) = pair();
        let mut cal = Calibration {
            origin_tsc: t,
            origin_ns: ns,
            ref_tsc: t,
            ref_ns: ns,
            ns_per_tick: 1.0,
        };
        if use_tsc {
            // A first rate over 2 ms; refined by every refresh afterwards.
            std::thread::sleep(std::time::Duration::from_millis(2));
            cal.refresh();
        }
        USE_TSC.store(use_tsc, Ordering::Relaxed);
        cal
    }

    /// Takes a new reference pair and refines the tick rate.
    pub fn refresh(&mut self) {
        let (t, ns) = pair();
        let dt = t.wrapping_sub(self.origin_tsc);
        let dns = ns.saturating_sub(self.origin_ns);
        if dt > 0 && dns > 0 {
            self.ns_per_tick = dns as f64 / dt as f64;
            NS_PER_TICK.store(self.ns_per_tick.to_bits(), Ordering::Relaxed);
        }
        self.ref_tsc = t;
        self.ref_ns = ns;
    }

    /// Wall-clock nanoseconds for a raw hot-path reading.
    #[inline]
    pub fn to_wall_ns(&self, raw: u64, is_tsc: bool) -> u64 {
        if !is_tsc {
            return raw;
        }
        let delta = raw.wrapping_sub(self.ref_tsc) as i64 as f64 * self.ns_per_tick;
        (self.ref_ns as f64 + delta) as u64
    }
}

/// A (TSC, wall ns) pair, the TSC averaged around the clock read.
fn pair() -> (u64, u64) {
    let a = tsc();
    let ns = wall_ns();
    let b = tsc();
    (a + (b.wrapping_sub(a)) / 2, ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_conversion_tracks_the_system_clock() {
        let mut cal = Calibration::start(true);
        std::thread::sleep(std::time::Duration::from_millis(20));
        cal.refresh();
        let (raw, is_tsc) = raw_now();
        let wall = wall_ns();
        let converted = cal.to_wall_ns(raw, is_tsc);
        let diff = converted.abs_diff(wall);
        // Generous: a preempted test thread on a loaded 2-core machine.
        assert!(diff < 2_000_000, "converted time off by {diff} ns");
    }
}
