//! Per-call durations for `distlog loadgen`, recorded in cycle-counter ticks
//! at the cost of one counter increment, and turned into a nanosecond
//! HdrHistogram once the thread is done.
//!
//! Recording every call into an HdrHistogram in nanoseconds cost the
//! logging thread a float division and `record_n` (about 80 instructions,
//! more than a third of the log call it timed; PERFORMANCE.md, "End to
//! end"). Almost every call takes a few hundred ticks, so a duration below
//! [`SHORT`] ticks only counts in a plain array; longer ones go to the
//! histogram at once. [`CallTimes::into_histogram`] converts each tick
//! count with the same formula the per-call code used, so the histogram is
//! the one it made.

use hdrhistogram::Histogram;

/// Durations below this many ticks are counted in an array (32 KiB).
const SHORT: usize = 1 << 12;

/// The durations of one thread's calls.
pub struct CallTimes {
    /// `short[t]`: calls that took `t` ticks.
    short: Box<[u64; SHORT]>,
    /// Calls of `SHORT` ticks or more, in nanoseconds.
    long: Histogram<u64>,
    ticks_per_ns: f64,
}

impl CallTimes {
    /// Empty; ticks convert to nanoseconds at `ticks_per_ns`.
    pub fn new(ticks_per_ns: f64) -> CallTimes {
        CallTimes {
            short: Box::new([0; SHORT]),
            long: histogram(),
            ticks_per_ns,
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
        self.long.saturating_record(self.to_ns(ticks));
    }

    fn to_ns(&self, ticks: u64) -> u64 {
        (ticks as f64 / self.ticks_per_ns) as u64
    }

    /// Every call's duration in nanoseconds.
    pub fn into_histogram(self) -> Histogram<u64> {
        let mut h = self.long.clone();
        for (ticks, &n) in self.short.iter().enumerate() {
            if n > 0 {
                h.saturating_record_n(self.to_ns(ticks as u64), n);
            }
        }
        h
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

    #[test]
    fn the_histogram_is_the_one_per_call_recording_makes() {
        for ticks_per_ns in [0.37, 1.0, 2.994, 3.5] {
            let mut times = CallTimes::new(ticks_per_ns);
            let mut direct = histogram();
            // Short and long durations, the boundary, and the extremes.
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let mut values = vec![0, 1, SHORT as u64 - 1, SHORT as u64, u64::MAX];
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                values.push(match x % 4 {
                    0 => x % 600,
                    1 => x % (2 * SHORT as u64),
                    2 => x % 10_000_000,
                    _ => x,
                });
            }
            for &t in &values {
                times.record(t);
                direct.saturating_record((t as f64 / ticks_per_ns) as u64);
            }
            let h = times.into_histogram();
            assert_eq!(h.len(), direct.len());
            assert_eq!(h, direct, "at {ticks_per_ns} ticks/ns");
        }
    }
}
