//! Rate-limited warnings: a flood of bad input must not become a flood of
//! log lines. Counts are kept by the metrics; these lines only point at them.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Prints at most one warning per interval; the others are counted and
/// mentioned in the next one printed.
pub struct RateLimited {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimited {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Prints `msg()` to stderr unless a warning was printed less than the
    /// interval ago. The text is escaped as the text renderers escape
    /// records ([`distlog_filter::render::escaped`]): a warning may quote what a
    /// client sent (its host name), which must not reach a terminal raw.
    pub fn warn(&self, msg: impl FnOnce() -> String) {
        let mut s = self.state.lock();
        let now = Instant::now();
        if s.0.is_some_and(|t| now.duration_since(t) < self.every) {
            s.1 += 1;
            return;
        }
        let suppressed = std::mem::take(&mut s.1);
        s.0 = Some(now);
        drop(s);
        let msg = msg();
        let msg = distlog_filter::render::escaped(&msg);
        if suppressed > 0 {
            eprintln!("distlogd: warning: {msg} ({suppressed} similar warnings suppressed)");
        } else {
            eprintln!("distlogd: warning: {msg}");
        }
    }
}
