//! The sender thread: drains every ring, packs batches, sends them.
//!
//! One pass: adopt the rings of threads that started logging; refresh the
//! clock calibration every 100 ms; send batches ZeroMQ refused earlier; drain
//! each ring in turn (so each thread's records stay in order) into records
//! with process-wide sequence numbers; send a batch when it is full or when
//! a pass found nothing more; report drops as a warning record; answer
//! flush requests. When a pass finds nothing it sleeps for `idle_wait` (a
//! producer whose ring is half full wakes it early), so an idle process
//! costs nothing. A batch under [`SEAL_LATER_BELOW`] of `batch_records`
//! waits for one such sleep before it is sealed on a pass that found
//! nothing (under load the producers refill it meanwhile: fewer, fuller
//! batches), so a record waits at most about twice `idle_wait` to leave;
//! a flush or shutdown seals at once.
//!
//! ZeroMQ is used without ever blocking: sends are `DONTWAIT`, and a batch
//! that does not fit under the high-water mark (broker down or slow) waits
//! in `pending`, bounded by `max_pending` bytes; once that is full the
//! sender stops draining, and the rings' own bound takes over. Batches
//! ZeroMQ has taken count against that bound too beyond [`MAX_LENT`]
//! bytes, so its queue (a message count) does not grow into tens of MiB
//! of fresh, faulting memory when the broker is slower than the client.
//!
//! The socket has `ZMQ_IMMEDIATE` set, so ZeroMQ takes a batch only when a
//! broker has completed the handshake ([`super::link`]): `sent` counts
//! batches handed to a connected, authenticated broker, never ones parked
//! in ZeroMQ for a peer that may not come. At shutdown, what never got
//! that far is counted as dropped, by reason (`no_broker`,
//! `handshake_failed`), and one line on stderr says so.

use super::acks::{Queued, ResendBuffer};
use super::link::{Connection, Link};
use super::open_batch::{OpenBatch, Origin};
use super::zero_copy::{send_pooled, BufPool};
use super::Shared;
use crate::clock::{wall_ns, Calibration};
use crate::record::{kind, level, ValueRef};
use crate::ring::Ring;
use distlog_core::wire::{decode_ack, Sender, Topic};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of batches lent to ZeroMQ (queued for the broker or being
/// written) past which the sender stops draining the rings, as it does
/// when `max_pending` is full: ZeroMQ's high-water mark counts messages
/// (1000 by default, ~75 MiB of batches), and every batch it holds beyond
/// the pool's is fresh memory whose pages fault in.
const MAX_LENT: usize = 8 * 1024 * 1024;

/// The fraction (in quarters) of `batch_records` below which a batch is
/// sealed only after the sender has slept once with it open.
const SEAL_LATER_BELOW: usize = 3;

/// Everything the sender thread owns.
pub(crate) struct SenderThread {
    shared: Arc<Shared>,
    socket: Option<zmq::Socket>,
    link: Link,
    context: Option<zmq::Context>,
    rings: Vec<Arc<Ring>>,
    cal: Calibration,
    last_cal: Instant,
    next_seq: u64,
    /// Open batches, one per record kind.
    logs: OpenBatch,
    perfs: OpenBatch,
    /// Encoded batches waiting for ZeroMQ. Each body is handed to ZeroMQ
    /// as it is (no copy); ZeroMQ frees it once it is on the wire. With
    /// acknowledged delivery ZeroMQ gets a copy, and the body waits in
    /// `resend` for its acknowledgement.
    pending: VecDeque<Queued>,
    /// Acknowledged delivery: batches handed over, not yet acknowledged.
    resend: Option<ResendBuffer>,
    /// This process's sender instance (acknowledgements name it).
    instance: u64,
    /// Bodies ZeroMQ has finished with, for the next batches.
    pool: Arc<BufPool>,
    pending_bytes: usize,
    dropped_reported: u64,
    last_drop_warning: Instant,
    /// The sender has slept since the open log batch got its first record.
    slept_since_seal: bool,
}

impl SenderThread {
    pub(crate) fn new(
        shared: Arc<Shared>,
        socket: zmq::Socket,
        link: Link,
        context: zmq::Context,
        identity: Sender,
    ) -> SenderThread {
        let cal = Calibration::start(shared.config.allow_tsc);
        let resend = shared
            .config
            .acknowledged
            .then(|| ResendBuffer::new(shared.config.resend_buffer));
        let instance = identity.instance;
        let batch_bytes = shared.config.batch_bytes;
        SenderThread {
            shared,
            socket: Some(socket),
            link,
            context: Some(context),
            rings: Vec::new(),
            cal,
            last_cal: Instant::now(),
            next_seq: 0,
            logs: OpenBatch::new(identity.clone(), batch_bytes),
            perfs: OpenBatch::new(identity, batch_bytes),
            pending: VecDeque::new(),
            resend,
            instance,
            pool: BufPool::new(8),
            pending_bytes: 0,
            dropped_reported: 0,
            last_drop_warning: Instant::now() - Duration::from_secs(10),
            slept_since_seal: false,
        }
    }

    /// Runs until shutdown.
    pub(crate) fn run(mut self) {
        loop {
            let flush_req = self.shared.flush_requested.load(Ordering::Acquire);
            let stopping = self.shared.stopping.load(Ordering::Acquire);
            self.shared.rings.adopt(&mut self.rings);
            if self.last_cal.elapsed() >= Duration::from_millis(100) {
                self.cal.refresh();
                self.last_cal = Instant::now();
            }
            self.keep_up();
            let drained = self.drain();
            self.shared.room.room_made();
            self.retire_rings();
            self.shared.keep_spares();
            self.report_drops(flush_req > self.flush_done());
            if drained == 0 {
                if self.seal_due(flush_req > self.flush_done() || stopping) {
                    self.seal(kind::LOG);
                    self.seal(kind::PERF);
                }
                self.send_pending();
            }
            let idle = drained == 0 && self.nothing_buffered();
            if idle && flush_req > self.flush_done() {
                self.finish_flush(flush_req);
            }
            if stopping {
                break;
            }
            if drained == 0 {
                self.shared.sender_sleeping.store(true, Ordering::SeqCst);
                if self.shared.flush_requested.load(Ordering::SeqCst) == flush_req
                    && !self.shared.stopping.load(Ordering::SeqCst)
                {
                    std::thread::park_timeout(self.shared.config.idle_wait);
                }
                self.slept_since_seal = !self.logs.is_empty();
                self.shared.sender_sleeping.store(false, Ordering::Relaxed);
            }
        }
        self.close();
    }

    /// On a pass that found nothing: whether to seal the open batches now
    /// (`urgent`: a flush or shutdown waits), or leave a small log batch
    /// open through one more sleep.
    fn seal_due(&self, urgent: bool) -> bool {
        let small = self.logs.len() * 4 < self.shared.config.batch_records * SEAL_LATER_BELOW;
        urgent || !small || self.slept_since_seal || !self.perfs.is_empty()
    }

    fn flush_done(&self) -> u64 {
        self.shared.flush_done.lock().done
    }

    fn finish_flush(&self, ticket: u64) {
        let mut state = self.shared.flush_done.lock();
        state.done = state.done.max(ticket);
        self.shared.flush_cv.notify_all();
    }

    fn nothing_buffered(&self) -> bool {
        self.pending.is_empty()
            && self.resend.as_ref().map_or(true, ResendBuffer::is_empty)
            && self.logs.is_empty()
            && self.perfs.is_empty()
            && self.rings.iter().all(|r| r.pending() == 0)
    }

    /// Drains the rings while there is room for what they hold. Returns the
    /// number of entries taken.
    fn drain(&mut self) -> usize {
        let mut total = 0;
        // With acknowledged delivery the resend buffer bounds everything not
        // yet acknowledged, handed over or not. `held`: the bytes counted
        // against the limit beside `pending`.
        let (limit, held) = match &self.resend {
            Some(r) => (self.shared.config.resend_buffer, r.bytes()),
            // Without, the bodies ZeroMQ holds count too, beyond
            // `MAX_LENT`: its queue bounds messages, not bytes.
            None => (self.shared.config.max_pending + MAX_LENT, self.pool.lent()),
        };
        for i in 0..self.rings.len() {
            if self.pending_bytes + held >= limit {
                break;
            }
            let ring = self.rings[i].clone();
            // A ring that continues a full one waits until that one is
            // retired: a thread's records stay in order.
            if !ring.ready() {
                continue;
            }
            // Take at most one batch worth at a time, then let sealing and
            // sending run, so a busy ring cannot monopolise memory.
            let budget = self.shared.config.batch_bytes;
            total += ring.consume(budget, |e| self.take_entry(&ring, e));
        }
        total
    }

    fn take_entry(&mut self, ring: &Ring, e: &[u8]) {
        // The record kind is the entry's byte 6 (see `crate::entry`).
        let k = e.get(6).copied().unwrap_or(kind::LOG);
        let origin = Origin {
            ring,
            cal: &self.cal,
        };
        let batch = if k == kind::PERF {
            &mut self.perfs
        } else {
            &mut self.logs
        };
        let ok = batch.push_entry(e, &origin).is_some();
        debug_assert!(ok, "undecodable entry");
        self.seal_if_full(k);
    }

    /// The open batch of record kind `k`.
    fn open(&mut self, k: u8) -> &mut OpenBatch {
        if k == kind::PERF {
            &mut self.perfs
        } else {
            &mut self.logs
        }
    }

    fn seal_if_full(&mut self, k: u8) {
        let (max_records, max_bytes) = (
            self.shared.config.batch_records,
            self.shared.config.batch_bytes,
        );
        let b = self.open(k);
        if b.len() >= max_records || b.bytes() >= max_bytes || b.expanded_full() {
            self.seal(k);
        }
    }

    /// Encodes the open batch of `k` and queues it for sending.
    fn seal(&mut self, k: u8) {
        let (first_seq, dropped) = (self.next_seq, self.dropped_reported);
        let pool = self.pool.clone();
        let batch = self.open(k);
        if batch.is_empty() {
            return;
        }
        // Room for the whole batch up front: growing would copy it.
        let mut buf = pool.take(batch.bytes() + batch.bytes() / 4 + 4096);
        let n = batch.seal_into(first_seq, dropped, &mut buf);
        if k == kind::LOG {
            self.slept_since_seal = false;
        }
        self.next_seq += n;
        let topic = Topic::batch(self.shared.config.system, k);
        self.pending_bytes += buf.len();
        self.pending.push_back(Queued {
            topic,
            body: buf,
            first_seq,
            n,
            resend: false,
        });
        self.send_pending();
    }

    /// Follows the connection: takes the monitor's events and the
    /// broker's acknowledgements, queues unacknowledged batches again after
    /// a reconnect, and sends what is pending.
    fn keep_up(&mut self) {
        self.link.poll(&self.shared.counters.connection);
        if self.resend.is_some() {
            self.take_acks();
            if self.link.take_reconnected() {
                self.resend_all();
            }
        }
        self.send_pending();
    }

    /// Takes every acknowledgement the broker has sent (never waits).
    fn take_acks(&mut self) {
        let (Some(socket), Some(resend)) = (&self.socket, &mut self.resend) else {
            return;
        };
        let mut acked = 0;
        while let Ok(frame) = socket.recv_bytes(zmq::DONTWAIT) {
            if let Some((instance, first_seq, _)) = decode_ack(&frame) {
                if instance == self.instance {
                    acked += resend.ack(first_seq).unwrap_or(0);
                }
            }
        }
        self.shared
            .counters
            .records_acked
            .fetch_add(acked, Ordering::Relaxed);
    }

    /// After a reconnect: every unacknowledged batch goes again, oldest
    /// first, before anything newer.
    fn resend_all(&mut self) {
        let Some(resend) = &mut self.resend else {
            return;
        };
        for q in resend.take_all().rev() {
            self.pending_bytes += q.body.len();
            self.pending.push_front(q);
        }
    }

    /// Hands queued batches to ZeroMQ until it refuses one (or, with
    /// acknowledged delivery, until the resend buffer is full).
    fn send_pending(&mut self) {
        let Some(socket) = &mut self.socket else {
            return;
        };
        while let Some(q) = self.pending.front() {
            if let Some(r) = &self.resend {
                if !r.has_room(q.body.len()) {
                    return;
                }
            }
            match socket.send(&q.topic.bytes()[..], zmq::SNDMORE | zmq::DONTWAIT) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => return,
                Err(_) => return, // socket unusable; keep the data, retry later
            }
            let Some(q) = self.pending.pop_front() else {
                return;
            };
            let (len, n, again) = (q.body.len(), q.n, q.resend);
            self.pending_bytes -= len;
            // The first frame was accepted, so ZeroMQ takes the rest of the
            // message regardless of the high-water mark.
            let sent = match &mut self.resend {
                // A copy: the body stays here until it is acknowledged.
                Some(r) => {
                    let ok = socket.send(&q.body[..], zmq::DONTWAIT).is_ok();
                    r.push(q);
                    ok
                }
                // The body moves into ZeroMQ without a copy.
                None => send_pooled(socket, q.body, &self.pool, zmq::DONTWAIT).is_ok(),
            };
            let c = &self.shared.counters;
            if again {
                c.records_resent.fetch_add(n, Ordering::Relaxed);
            } else if sent {
                c.records_sent.fetch_add(n, Ordering::Relaxed);
                c.batches_sent.fetch_add(1, Ordering::Relaxed);
                c.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
            } else if self.resend.is_none() {
                c.dropped_unringed.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Gives the rings of exited threads, and full rings a thread has
    /// moved on from, back to the pool once they are read to the end and
    /// nothing else holds them (a ring that continues one holds it until
    /// [`Ring::ready`] forgets it).
    fn retire_rings(&mut self) {
        let mut i = 0;
        while i < self.rings.len() {
            if self.rings[i].is_retired() && Arc::strong_count(&self.rings[i]) == 1 {
                let ring = self.rings.swap_remove(i);
                match self.shared.rings.recycle(ring) {
                    Ok(dropped) => {
                        self.shared
                            .counters
                            .dropped_retired
                            .fetch_add(dropped, Ordering::Relaxed);
                    }
                    // Held after all: kept, and looked at again next pass.
                    Err(ring) => {
                        self.rings.push(ring);
                        break;
                    }
                }
            } else {
                i += 1;
            }
        }
    }

    /// Drops never go unreported: the running total rides in every batch
    /// header, and a warning record says how many were lost (at most once a
    /// second, and before a flush completes).
    fn report_drops(&mut self, urgent: bool) {
        let full = self.shared.dropped_buffer_full(&self.rings);
        self.shared
            .counters
            .dropped_seen
            .store(full, Ordering::Relaxed);
        let total = self.shared.dropped_total(&self.rings);
        if total == self.dropped_reported {
            return;
        }
        if !urgent && self.last_drop_warning.elapsed() < Duration::from_secs(1) {
            return;
        }
        let new = total - self.dropped_reported;
        self.dropped_reported = total;
        self.last_drop_warning = Instant::now();
        let message = format!(
            "distlog dropped {new} records ({total} in all): its buffers were full \
             (broker down or slower than the application)"
        );
        self.logs.push_own(
            wall_ns(),
            level::WARN,
            kind::LOG,
            "distlog",
            module_path!(),
            &message,
            &[
                ("dropped", ValueRef::U64(new)),
                ("dropped_total", ValueRef::U64(total)),
            ],
        );
        self.seal_if_full(kind::LOG);
    }

    /// Last delivery attempt (until the shutdown deadline), then the socket
    /// closes with a linger up to that deadline so what ZeroMQ holds still
    /// reaches the broker. Whatever never reached one is counted as dropped
    /// by reason, and one line on stderr says how many records were lost.
    fn close(mut self) {
        self.drain_all();
        self.seal(kind::LOG);
        self.seal(kind::PERF);
        let deadline = *self
            .shared
            .stop_by
            .get_or_init(|| Instant::now() + self.shared.config.shutdown_timeout);
        loop {
            self.keep_up();
            if self.nothing_buffered() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let lost: u64 = self.pending.iter().map(|q| q.n).sum();
        let c = &self.shared.counters;
        let unacked = self.resend.as_ref().map_or(0, ResendBuffer::records);
        c.dropped_unacked.fetch_add(unacked, Ordering::Relaxed);
        match self.link.state() {
            Connection::HandshakeFailed(_) => {
                c.dropped_handshake.fetch_add(lost, Ordering::Relaxed)
            }
            _ => c.dropped_no_broker.fetch_add(lost, Ordering::Relaxed),
        };
        let full = self.shared.dropped_buffer_full(&self.rings);
        c.dropped_seen.store(full, Ordering::Relaxed);
        self.report_loss();
        if let Some(socket) = self.socket.take() {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = socket.set_linger(left.as_millis() as i32);
            drop(socket);
        }
        // Terminating the context waits for the linger above.
        drop(self.link);
        drop(self.context.take());
        let mut state = self.shared.flush_done.lock();
        state.stopped = true;
        self.shared.flush_cv.notify_all();
    }

    /// Takes everything the rings still hold into batches, whatever
    /// `max_pending` says: at close, what is not taken is lost uncounted,
    /// and the rings bound it anyway.
    fn drain_all(&mut self) {
        let budget = self.shared.config.batch_bytes;
        // Rounds until nothing moves: a ring that continues a full one is
        // read once that one is retired, a round later.
        loop {
            let mut moved = 0;
            for ring in self.rings.clone() {
                if ring.ready() {
                    while ring.consume(budget, |e| self.take_entry(&ring, e)) > 0 {
                        moved += 1;
                    }
                }
            }
            if moved == 0 {
                break;
            }
        }
    }

    /// One line on stderr with the records lost over the pipeline's life,
    /// by reason, and what to do (the application cannot log it).
    fn report_loss(&self) {
        let c = &self.shared.counters;
        let reasons = [
            ("no_broker", c.dropped_no_broker.load(Ordering::Relaxed)),
            (
                "handshake_failed",
                c.dropped_handshake.load(Ordering::Relaxed),
            ),
            ("buffer_full", c.dropped_seen.load(Ordering::Relaxed)),
            ("unacknowledged", c.dropped_unacked.load(Ordering::Relaxed)),
        ];
        let total: u64 = reasons.iter().map(|r| r.1).sum();
        if total == 0 {
            return;
        }
        let parts: Vec<String> = reasons
            .iter()
            .filter(|r| r.1 > 0)
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        let endpoint = self.link.endpoint();
        let why = match self.link.state() {
            Connection::HandshakeFailed(f) => format!(
                "the handshake with the broker at {endpoint} failed ({}; see the error above)",
                f.name()
            ),
            Connection::Connecting if reasons[0].1 > 0 => format!(
                "no broker accepted a connection at {endpoint}: start distlogd there or set \
                 DISTLOG_ENDPOINT"
            ),
            Connection::Disconnected if reasons[0].1 > 0 => {
                format!("the broker at {endpoint} went away and did not come back in time")
            }
            _ if reasons[3].1 > 0 => format!(
                "the broker at {endpoint} did not acknowledge them before the shutdown timeout"
            ),
            _ => "the client's buffers were full: raise max_memory or max_pending, or use \
                  block_when_full"
                .to_owned(),
        };
        eprintln!(
            "distlog: {total} records lost ({}): {why}",
            parts.join(", ")
        );
    }
}
