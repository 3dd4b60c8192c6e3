//! The sender thread: drains every ring, packs batches, sends them.
//!
//! One pass: adopt the rings of threads that started logging; refresh the
//! clock calibration every 100 ms; send batches ZeroMQ refused earlier; drain
//! each ring in turn (so each thread's records stay in order) into records
//! with process-wide sequence numbers; send a batch when it is full or when
//! a pass found nothing more; report drops as a warning record; answer
//! flush requests. When a pass finds nothing it sleeps for `idle_wait` (a
//! producer whose ring is half full wakes it early), so an idle process
//! costs nothing and a record waits at most about `idle_wait` to leave.
//!
//! ZeroMQ is used without ever blocking: sends are `DONTWAIT`, and a batch
//! that does not fit under the high-water mark (broker down or slow) waits
//! in `pending`, bounded by `max_pending` bytes; once that is full the
//! sender stops draining, and the rings' own bound takes over.

use super::zero_copy::{send_pooled, BufPool};
use super::Shared;
use crate::callsite::Callsite;
use crate::clock::{wall_ns, Calibration};
use crate::entry::{self, Reader};
use crate::record::{kind, level, Field, Record, Value};
use crate::ring::Ring;
use crate::wire::{self, Batch, Sender, Topic};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything the sender thread owns.
pub(crate) struct SenderThread {
    shared: Arc<Shared>,
    socket: Option<zmq::Socket>,
    context: Option<zmq::Context>,
    rings: Vec<Arc<Ring>>,
    cal: Calibration,
    last_cal: Instant,
    next_seq: u64,
    /// Open batches, one per record kind; their `records` fill up.
    logs: Batch,
    perfs: Batch,
    open_bytes: usize,
    /// Cleared records, reused so that steady state allocates little.
    spare: Vec<Record>,
    /// Encoded batches waiting for ZeroMQ. Each body is handed to ZeroMQ
    /// as it is (no copy); ZeroMQ frees it once it is on the wire.
    pending: VecDeque<(Topic, Vec<u8>, u64)>,
    /// Bodies ZeroMQ has finished with, for the next batches.
    pool: Arc<BufPool>,
    pending_bytes: usize,
    dropped_reported: u64,
    last_drop_warning: Instant,
}

impl SenderThread {
    pub(crate) fn new(
        shared: Arc<Shared>,
        socket: zmq::Socket,
        context: zmq::Context,
        identity: Sender,
    ) -> SenderThread {
        let cal = Calibration::start(shared.config.allow_tsc);
        let empty = Batch {
            sender: identity,
            ..Batch::default()
        };
        SenderThread {
            shared,
            socket: Some(socket),
            context: Some(context),
            rings: Vec::new(),
            cal,
            last_cal: Instant::now(),
            next_seq: 0,
            logs: empty.clone(),
            perfs: empty,
            open_bytes: 0,
            spare: Vec::new(),
            pending: VecDeque::new(),
            pool: BufPool::new(8),
            pending_bytes: 0,
            dropped_reported: 0,
            last_drop_warning: Instant::now() - Duration::from_secs(10),
        }
    }

    /// Runs until shutdown.
    pub(crate) fn run(mut self) {
        loop {
            let flush_req = self.shared.flush_requested.load(Ordering::Acquire);
            let stopping = self.shared.stopping.load(Ordering::Acquire);
            while let Some(ring) = self.shared.new_rings.pop() {
                self.rings.push(ring);
            }
            if self.last_cal.elapsed() >= Duration::from_millis(100) {
                self.cal.refresh();
                self.last_cal = Instant::now();
            }
            self.send_pending();
            let drained = self.drain();
            self.retire_rings();
            self.report_drops(flush_req > self.flush_done());
            if drained == 0 {
                self.seal(kind::LOG);
                self.seal(kind::PERF);
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
                self.shared.sender_sleeping.store(false, Ordering::Relaxed);
            }
        }
        self.close();
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
            && self.logs.records.is_empty()
            && self.perfs.records.is_empty()
            && self.rings.iter().all(|r| r.pending() == 0)
    }

    /// Drains the rings while there is room for what they hold. Returns the
    /// number of entries taken.
    fn drain(&mut self) -> usize {
        let mut total = 0;
        let max_pending = self.shared.config.max_pending;
        for i in 0..self.rings.len() {
            if self.pending_bytes >= max_pending {
                break;
            }
            let ring = self.rings[i].clone();
            // Take at most one batch worth at a time, then let sealing and
            // sending run, so a busy ring cannot monopolise memory.
            let budget = self.shared.config.batch_bytes;
            total += ring.consume(budget, |e| self.take_entry(&ring, e));
        }
        total
    }

    fn take_entry(&mut self, ring: &Ring, e: &[u8]) {
        let mut rec = self.spare.pop().unwrap_or_default();
        if decode_entry(e, ring, &self.cal, &mut rec).is_none() {
            debug_assert!(false, "undecodable entry");
            return;
        }
        self.push_record(rec);
    }

    fn push_record(&mut self, rec: Record) {
        let k = rec.kind;
        self.open_bytes += approx_size(&rec);
        let batch = if k == kind::PERF {
            &mut self.perfs
        } else {
            &mut self.logs
        };
        batch.records.push(rec);
        if batch.records.len() >= self.shared.config.batch_records
            || self.open_bytes >= self.shared.config.batch_bytes
        {
            self.seal(k);
        }
    }

    /// Encodes the open batch of `k` and queues it for sending.
    fn seal(&mut self, k: u8) {
        let batch = if k == kind::PERF {
            &mut self.perfs
        } else {
            &mut self.logs
        };
        if batch.records.is_empty() {
            return;
        }
        batch.first_seq = self.next_seq;
        for (i, r) in batch.records.iter_mut().enumerate() {
            r.seq = self.next_seq + i as u64;
        }
        let n = batch.records.len() as u64;
        self.next_seq += n;
        batch.dropped = self.dropped_reported;
        // Room for the whole batch up front: growing would copy it.
        let mut buf = self.pool.take(self.open_bytes + self.open_bytes / 4 + 4096);
        wire::encode_batch(batch, &mut buf);
        for mut r in batch.records.drain(..) {
            clear_record(&mut r);
            self.spare.push(r);
        }
        self.open_bytes = 0;
        let topic = Topic::batch(self.shared.config.system, k);
        self.pending_bytes += buf.len();
        self.pending.push_back((topic, buf, n));
        self.send_pending();
    }

    /// Hands queued batches to ZeroMQ until it refuses one.
    fn send_pending(&mut self) {
        let Some(socket) = &mut self.socket else {
            return;
        };
        while let Some((topic, _, _)) = self.pending.front() {
            match socket.send(&topic.bytes()[..], zmq::SNDMORE | zmq::DONTWAIT) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => return,
                Err(_) => return, // socket unusable; keep the data, retry later
            }
            let Some((_, body, n)) = self.pending.pop_front() else {
                return;
            };
            let len = body.len();
            self.pending_bytes -= len;
            // The first frame was accepted, so ZeroMQ takes the rest of the
            // message regardless of the high-water mark. The body moves into
            // ZeroMQ without a copy.
            let sent = send_pooled(socket, body, &self.pool, zmq::DONTWAIT).is_ok();
            let c = &self.shared.counters;
            if sent {
                c.records_sent.fetch_add(n, Ordering::Relaxed);
                c.batches_sent.fetch_add(1, Ordering::Relaxed);
                c.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
            } else {
                c.dropped_unringed.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Recycles the rings of exited threads once they are empty.
    fn retire_rings(&mut self) {
        let mut i = 0;
        while i < self.rings.len() {
            if self.rings[i].is_retired() && Arc::strong_count(&self.rings[i]) == 1 {
                let ring = self.rings.swap_remove(i);
                if let Ok(ring) = Arc::try_unwrap(ring) {
                    self.shared
                        .counters
                        .dropped_retired
                        .fetch_add(ring.dropped.load(Ordering::Relaxed), Ordering::Relaxed);
                    self.shared.pool.lock().push(ring.into_storage());
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
        let total = self.shared.dropped_total(&self.rings);
        self.shared
            .counters
            .dropped_seen
            .store(total, Ordering::Relaxed);
        if total == self.dropped_reported {
            return;
        }
        if !urgent && self.last_drop_warning.elapsed() < Duration::from_secs(1) {
            return;
        }
        let new = total - self.dropped_reported;
        self.dropped_reported = total;
        self.last_drop_warning = Instant::now();
        let mut rec = self.spare.pop().unwrap_or_default();
        rec.time_ns = wall_ns();
        rec.level = level::WARN;
        rec.kind = kind::LOG;
        rec.target.push_str("distlog");
        rec.module.push_str(module_path!());
        rec.args.clear();
        rec.fields.clear();
        rec.message = format!(
            "distlog dropped {new} records ({total} in all): its buffers were full \
             (broker down or slower than the application)"
        );
        rec.fields.push(Field {
            key: "dropped".into(),
            value: Value::U64(new),
        });
        rec.fields.push(Field {
            key: "dropped_total".into(),
            value: Value::U64(total),
        });
        self.push_record(rec);
    }

    /// Last delivery attempt, then the socket closes with a linger bounded by
    /// the shutdown timeout so what ZeroMQ holds still reaches the broker.
    fn close(mut self) {
        self.seal(kind::LOG);
        self.seal(kind::PERF);
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        while !self.pending.is_empty() && Instant::now() < deadline {
            self.send_pending();
            if !self.pending.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let lost: u64 = self.pending.iter().map(|p| p.2).sum();
        self.shared
            .counters
            .dropped_unringed
            .fetch_add(lost, Ordering::Relaxed);
        let total = self.shared.dropped_total(&self.rings);
        self.shared
            .counters
            .dropped_seen
            .store(total, Ordering::Relaxed);
        if let Some(socket) = self.socket.take() {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = socket.set_linger(left.as_millis() as i32);
            drop(socket);
        }
        // Terminating the context waits for the linger above.
        drop(self.context.take());
        let mut state = self.shared.flush_done.lock();
        state.stopped = true;
        self.shared.flush_cv.notify_all();
    }
}

/// A rough encoded size, to cut batches by bytes.
fn approx_size(r: &Record) -> usize {
    let strings = r.thread_name.len()
        + r.target.len()
        + r.module.len()
        + r.file.len()
        + r.message.len()
        + r.format.len()
        + r.task.len()
        + r.error.len();
    let values: usize = r
        .args
        .iter()
        .map(value_size)
        .chain(
            r.fields
                .iter()
                .map(|f| 16 + f.key.len() + value_size(&f.value)),
        )
        .sum();
    160 + strings + values
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::Str(s) => 16 + s.len(),
        _ => 16,
    }
}

fn clear_record(r: &mut Record) {
    let Record {
        time_ns,
        seq,
        level,
        kind,
        line,
        task_n,
        thread_id,
        thread_name,
        target,
        module,
        file,
        func,
        message,
        format,
        args,
        fields,
        task,
        error,
    } = r;
    *time_ns = 0;
    *seq = 0;
    *level = 0;
    *kind = 0;
    *line = 0;
    *task_n = 0;
    *thread_id = 0;
    for s in [
        thread_name,
        target,
        module,
        file,
        func,
        message,
        format,
        task,
        error,
    ] {
        s.clear();
    }
    // `args` and `fields` keep their slots: decoding overwrites them in
    // place (reusing their strings) and truncates to what it wrote.
    let _ = (args, fields);
}

/// Turns a ring entry into a record. `None` only for a malformed entry,
/// which our own producer never writes.
fn decode_entry(e: &[u8], ring: &Ring, cal: &Calibration, rec: &mut Record) -> Option<()> {
    let mut r = Reader::new(e, 4);
    let entry_kind = r.u8()?;
    rec.level = r.u8()?;
    rec.kind = r.u8()?;
    let flags = r.u8()?;
    let ts = r.u64()?;
    let used;
    rec.time_ns = cal.to_wall_ns(ts, flags & entry::FLAG_TSC != 0);
    rec.thread_id = ring.thread_id;
    rec.thread_name.push_str(&ring.thread_name);
    match entry_kind {
        entry::NATIVE => {
            let ptr = r.u64()? as usize as *const Callsite;
            // SAFETY: NATIVE entries are written only by `emit_native`, which
            // stores the address of a `&'static Callsite`; statics live for
            // the whole program.
            let cs: &'static Callsite = unsafe { &*ptr };
            rec.target.push_str(cs.target);
            rec.module.push_str(cs.module);
            if flags & entry::FLAG_SITE != 0 {
                rec.line = r.u32()?;
                rec.file.push_str(r.str()?);
                rec.message.push_str(r.str()?);
            } else {
                rec.file.push_str(cs.file);
                rec.line = cs.line;
            }
            rec.format.push_str(cs.format);
            for i in 0..cs.args as usize {
                r.arg_into(&mut rec.args, i)?;
            }
            rec.args.truncate(cs.args as usize);
            for (i, name) in cs.fields.iter().enumerate() {
                r.field_into(&mut rec.fields, i, name)?;
            }
            used = cs.fields.len();
            if flags & entry::FLAG_ERROR != 0 {
                rec.error.push_str(r.str()?);
            }
        }
        entry::DYNAMIC => {
            rec.line = r.u32()?;
            let n = r.u32()?;
            rec.target.push_str(r.str()?);
            rec.module.push_str(r.str()?);
            rec.file.push_str(r.str()?);
            rec.message.push_str(r.str()?);
            rec.args.clear();
            for i in 0..n as usize {
                let key = r.str()?;
                r.field_into(&mut rec.fields, i, key)?;
            }
            used = n as usize;
            if flags & entry::FLAG_ERROR != 0 {
                rec.error.push_str(r.str()?);
            }
        }
        _ => return None,
    }
    let used = if flags & entry::FLAG_TASK != 0 {
        r.task(rec, used)?
    } else {
        used
    };
    rec.fields.truncate(used);
    Some(())
}
