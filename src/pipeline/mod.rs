//! The pipeline: per-thread rings, drained by one background sender.
//!
//! Read top to bottom, the hot path is: a macro call site ([`crate::callsite`])
//! checks its cached interest, [`local`] reserves space in the calling
//! thread's ring ([`crate::ring`]) and writes an entry ([`crate::entry`]),
//! and [`sender`] turns entries into batches ([`distlog_core::wire`]) and sends them
//! over a ZeroMQ PUSH socket.
//!
//! Memory is bounded: each thread that logs takes one ring of
//! `buffer_per_thread` bytes from a pool of at most `max_memory` bytes, and
//! gives it back when it exits; the sender keeps at most `max_pending`
//! bytes of encoded batches that ZeroMQ would not take yet (broker down or
//! slow). When those are full the sender stops draining the rings, so the
//! rings fill, and then a log call waits for space (`block_when_full`),
//! or with `grow_when_full` (the default) continues in a spare ring of the
//! pool while the rings in use stay within half of `max_memory` (the
//! sender reads it after the full one, which it then recycles), or else
//! (past that half, or without growth) drops its record and counts it.
//! Growth allocates nothing in the logging call: the sender keeps the
//! spares ([`RingPool`], whose docs state the bound: at most
//! `max_memory / buffer_per_thread` rings, at least one).

pub(crate) mod acks;
pub(crate) mod link;
pub(crate) mod local;
mod open_batch;
mod room;
pub(crate) mod sender;
pub(crate) mod zero_copy;

use crate::directives::Directives;
use crate::ring::Ring;
use crate::ring_pool::RingPool;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Settings of a pipeline, filled in by [`Builder`](crate::Builder).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub system: u8,
    pub directives: Directives,
    pub buffer_per_thread: usize,
    pub max_memory: usize,
    pub max_pending: usize,
    pub block_when_full: bool,
    /// A full ring continues in another (`Builder::grow_when_full`).
    pub grow_when_full: bool,
    pub batch_records: usize,
    pub batch_bytes: usize,
    pub idle_wait: Duration,
    pub shutdown_timeout: Duration,
    pub allow_tsc: bool,
    /// Acknowledged delivery (a DEALER socket to the broker's `ack_listen`).
    pub acknowledged: bool,
    /// The most bytes of batches kept for resending until acknowledged.
    pub resend_buffer: usize,
}

/// Counters of a pipeline, as [`Stats`](crate::Stats) reports them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Drops by threads that had no ring (pool exhausted, or re-entrant or
    /// late calls); ring drops are counted in each ring.
    pub dropped_unringed: AtomicU64,
    /// Drops for want of room (`buffer_full`), as the sender last counted
    /// them.
    pub dropped_seen: AtomicU64,
    /// Drops from retired rings, folded in when the ring is recycled.
    pub dropped_retired: AtomicU64,
    /// Records that never reached a broker because none was connected when
    /// the pipeline stopped (`no_broker`).
    pub dropped_no_broker: AtomicU64,
    /// Records that never reached a broker because the handshake with it
    /// failed (`handshake_failed`).
    pub dropped_handshake: AtomicU64,
    /// Acknowledged delivery: records still unacknowledged at shutdown
    /// (`unacknowledged`).
    pub dropped_unacked: AtomicU64,
    /// Acknowledged delivery: records the broker acknowledged.
    pub records_acked: AtomicU64,
    /// `grow_when_full`: times a full ring continued in another.
    pub rings_grown: AtomicU64,
    /// Acknowledged delivery: records sent again after a reconnect.
    pub records_resent: AtomicU64,
    /// The connection to the broker, as the sender last saw it.
    pub connection: link::SharedState,
}

/// State shared by the logging threads and the sender.
pub(crate) struct Shared {
    pub config: Config,
    /// Every ring of the pipeline: spare, in use, or waiting for the
    /// sender to adopt it.
    pub rings: RingPool,
    pub counters: Counters,
    pub sender: OnceLock<Thread>,
    pub sender_sleeping: AtomicBool,
    /// Logging threads blocked on a full ring (`block_when_full`) sleep
    /// here until the sender has read from the rings.
    pub room: room::RoomWait,
    pub stopping: AtomicBool,
    pub flush_requested: AtomicU64,
    pub flush_done: Mutex<FlushState>,
    pub flush_cv: Condvar,
    /// Set by [`Shared::shutdown`]: when the sender gives up delivering.
    pub stop_by: OnceLock<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct FlushState {
    pub done: u64,
    pub stopped: bool,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        let max_rings = (config.max_memory / config.buffer_per_thread).max(1);
        let shared = Shared {
            rings: RingPool::new(config.buffer_per_thread, max_rings),
            config,
            counters: Counters::default(),
            sender: OnceLock::new(),
            sender_sleeping: AtomicBool::new(false),
            room: room::RoomWait::default(),
            stopping: AtomicBool::new(false),
            flush_requested: AtomicU64::new(0),
            flush_done: Mutex::new(FlushState::default()),
            flush_cv: Condvar::new(),
            stop_by: OnceLock::new(),
        };
        shared.keep_spares();
        shared
    }

    /// A ring for a thread that starts logging: a spare, or new while the
    /// memory bound allows. Called once per thread, off the steady state.
    pub(crate) fn take_ring(&self) -> Option<Arc<Ring>> {
        let thread = std::thread::current();
        self.rings
            .take_first(os_thread_id(), thread.name().unwrap_or(""))
    }

    /// A second ring for a thread whose ring `full` is full, its entries
    /// to be read after `full`'s ([`Ring::ready`]): a spare ring, while the
    /// rings in use stay within half of `max_memory` (the other half stays
    /// for threads that start logging). `None` past that, or when no spare
    /// is left: the record is dropped, as without growth. Allocates
    /// nothing ([`RingPool::take_after`]); reached only when a ring fills.
    pub(crate) fn take_ring_after(&self, full: &Arc<Ring>) -> Option<Arc<Ring>> {
        let ring = self.rings.take_after(full)?;
        self.counters.rings_grown.fetch_add(1, Ordering::Relaxed);
        Some(ring)
    }

    /// Sender: keeps spare rings ready for growth (`grow_when_full`): as
    /// many as growth may use, within the memory bound. Allocates, on the
    /// sender thread (and once at install).
    pub(crate) fn keep_spares(&self) {
        if self.config.grow_when_full && !self.config.block_when_full {
            self.rings.top_up(self.rings.growth_limit());
        }
    }

    /// Wakes the sender if it is asleep.
    pub(crate) fn wake_sender(&self) {
        if self.sender_sleeping.load(Ordering::Relaxed) {
            if let Some(t) = self.sender.get() {
                t.unpark();
            }
        }
    }

    /// Asks the sender to drain everything logged so far and hand it to
    /// ZeroMQ; waits up to `timeout`. True when done in time.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let ticket = self.flush_requested.fetch_add(1, Ordering::AcqRel) + 1;
        if let Some(t) = self.sender.get() {
            t.unpark();
        }
        let deadline = Instant::now() + timeout;
        let mut state = self.flush_done.lock();
        while state.done < ticket && !state.stopped {
            if self.flush_cv.wait_until(&mut state, deadline).timed_out() {
                return state.done >= ticket;
            }
        }
        state.done >= ticket
    }

    /// Stops the sender after it has delivered what it can within the
    /// shutdown timeout (one timeout in all: the flush and the sender's
    /// last attempts share it). Idempotent; true when everything was
    /// handed to a broker.
    pub(crate) fn shutdown(&self) -> bool {
        let timeout = self.config.shutdown_timeout;
        let stop_by = *self.stop_by.get_or_init(|| Instant::now() + timeout);
        let delivered = self.flush(stop_by.saturating_duration_since(Instant::now()));
        self.stopping.store(true, Ordering::Release);
        if let Some(t) = self.sender.get() {
            t.unpark();
        }
        // The sender stops by `stop_by`; closing the socket may take a
        // little longer.
        let deadline = stop_by.max(Instant::now()) + Duration::from_secs(1);
        let mut state = self.flush_done.lock();
        while !state.stopped {
            if self.flush_cv.wait_until(&mut state, deadline).timed_out() {
                return false;
            }
        }
        delivered
    }

    /// Records dropped so far, for every reason.
    pub(crate) fn dropped_total(&self, live_rings: &[Arc<Ring>]) -> u64 {
        self.dropped_buffer_full(live_rings)
            + self.counters.dropped_no_broker.load(Ordering::Relaxed)
            + self.counters.dropped_handshake.load(Ordering::Relaxed)
            + self.counters.dropped_unacked.load(Ordering::Relaxed)
    }

    /// Records dropped so far because there was no room for them.
    pub(crate) fn dropped_buffer_full(&self, live_rings: &[Arc<Ring>]) -> u64 {
        self.counters.dropped_unringed.load(Ordering::Relaxed)
            + self.counters.dropped_retired.load(Ordering::Relaxed)
            + live_rings
                .iter()
                .map(|r| r.dropped.load(Ordering::Relaxed))
                .sum::<u64>()
    }
}

/// The kernel's id of the calling thread (Python: `thread`).
fn os_thread_id() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        unsafe { libc::gettid() as u64 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::thread::current().id().hash(&mut h);
        h.finish()
    }
}

/// The process-wide pipeline, once installed.
pub(crate) static PIPELINE: OnceLock<Arc<Shared>> = OnceLock::new();
