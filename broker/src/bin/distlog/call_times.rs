//! Per-call durations for `distlog loadgen`, recorded in cycle-counter ticks
//! at the cost of one counter increment, and turned into a nanosecond
//! HdrHistogram once the thread is done.
//!
//! Recording every call into an HdrHistogram in nanoseconds cost the
//! logging thread a float division and `record_n` (about 80 instructions,
//! more than a third of the log call it timed; PERFORMANCE.md, "End to
//! end"). Almost every call takes a few hundred ticks, so a duration below
//! [`SHORT`] ticks only counts in a plain array; longer ones go to a
//! histogram in ticks at once. Nothing here needs the tick rate until
//! [`CallTimes::into_histogram`], so loadgen can measure the rate over the
//! run itself instead of sleeping for it before the first call. Short
//! durations convert exactly as a per-call recording in nanoseconds would;
//! long ones (blocked or preempted calls) carry the tick histogram's
//! quantization into the nanosecond one: within 0.2% of it.

use hdrhistogram::Histogram;

/// Durations below this many ticks are counted in an array (32 KiB).
const SHORT: usize = 1 << 12;

/// The durations of one thread's calls.
pub struct CallTimes {
    /// `short[t]`: calls that took `t` ticks.
    short: Box<[u64; SHORT]>,
    /// Calls of `SHORT` ticks or more, in ticks.
    long: Histogram<u64>,
}

impl CallTimes {
    /// Empty.
    pub fn new() -> CallTimes {
        CallTimes {
            short: Box::new([0; SHORT]),
            // 1 tick .. 2^42 ticks (over 20 minutes at 3 GHz), 3 digits.
            long: Histogram::<u64>::new_with_bounds(1, 1 << 42, 3).expect("histogram bounds"),
        }
    }

    /// Counts a call that took `ticks`.
    #[inline(always)]
    pub fn record(&mut self, ticks: u64) {
        if ticks < SHORT as u64 {
            self.short[ticks as usize] += 1;
        } else {
            self.record_long(ticks);
        }
    }

    #[cold]
    #[inline(never)]
    fn record_long(&mut self, ticks: u64) {
        self.long.saturating_record(ticks);
    }

    /// Every call's duration in nanoseconds, at `ticks_per_ns`.
    pub fn into_histogram(self, ticks_per_ns: f64) -> Histogram<u64> {
        let to_ns = |ticks: u64| (ticks as f64 / ticks_per_ns) as u64;
        let mut h = histogram();
        for v in self.long.iter_recorded() {
            h.saturating_record_n(
                to_ns(self.long.median_equivalent(v.value_iterated_to())),
                v.count_at_value(),
            );
        }
        for (ticks, &n) in self.short.iter().enumerate() {
            if n > 0 {
                h.saturating_record_n(to_ns(ticks as u64), n);
            }
        }
        h
    }
}

impl Default for CallTimes {
    fn default() -> Self {
        CallTimes::new()
    }
}

/// An empty nanosecond histogram with loadgen's bounds (1 ns .. 60 s, 3
/// significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short durations give exactly the histogram a per-call recording
    /// in nanoseconds gives; long ones (and so every quantile) are within
    /// the two histograms' quantization of it.
    #[test]
    fn the_histogram_is_the_one_per_call_recording_makes() {
        for ticks_per_ns in [0.37, 1.0, 2.994, 3.5] {
            let mut times = CallTimes::new();
            let mut short_only = CallTimes::new();
            let mut direct = histogram();
            let mut direct_short = histogram();
            // Short and long durations, the boundary, and the extremes.
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let mut values = vec![0, 1, SHORT as u64 - 1, SHORT as u64, 1 << 41];
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                values.push(match x % 4 {
                    0 => x % 600,
                    1 => x % (2 * SHORT as u64),
                    2 => x % 10_000_000,
                    _ => x % (1 << 40),
                });
            }
            for &t in &values {
                times.record(t);
                let ns = (t as f64 / ticks_per_ns) as u64;
                direct.saturating_record(ns);
                if t < SHORT as u64 {
                    short_only.record(t);
                    direct_short.saturating_record(ns);
                }
            }
            assert_eq!(short_only.into_histogram(ticks_per_ns), direct_short);
            let h = times.into_histogram(ticks_per_ns);
            assert_eq!(h.len(), direct.len());
            for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
                let (got, want) = (h.value_at_quantile(q), direct.value_at_quantile(q));
                let off = got.abs_diff(want) as f64;
                assert!(
                    off <= 1.0 + want as f64 * 0.002,
                    "q {q} at {ticks_per_ns} ticks/ns: {got} against {want}"
                );
            }
        }
    }
}
