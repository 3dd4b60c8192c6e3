//! The dispatcher: takes the workers' results back in receive order,
//! tracks each sender's sequence numbers, hands records to processors,
//! applies config reloads, and routes the broker's own metrics.
//!
//! Batches from acknowledging endpoints ([`crate::acks`]) that the broker
//! already has (every sequence number taken before, none of them in an
//! open gap) are acknowledged again and not delivered: a client resends
//! what was not acknowledged after a reconnect, and this keeps it
//! exactly-once. When the broker serves acknowledgements, it rebuilds its
//! per-sender sequence state at start from the tail of its stores (the
//! last [`SEED_BYTES`] of each), so a batch stored just before a crash and
//! resent after the restart is recognised too.

use crate::config::{Checked, Config};
use crate::ingest::Decoded;
use crate::metrics::Metrics;
use crate::processor::{Delivery, Handle, Selection};
use crate::rules::RuleSet;
use crate::warn::RateLimited;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use distlog_core::wire::{encode_batch_to_vec, OwnedBatch, Sender, Topic};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most senders tracked for sequence gaps; past this the ones not heard
/// from for longest are forgotten (hostile input cannot grow the table).
/// Validation caps a host name at [`distlog_core::limits::MAX_NAME`] bytes, so
/// the table holds at most about `MAX_SENDERS * (MAX_NAME + 100)` bytes
/// (~35 MiB).
pub const MAX_SENDERS: usize = 100_000;

/// How much of the end of each store the dispatcher replays at start to
/// rebuild its sequence state when it serves acknowledgements: more than
/// any client's resend buffer (16 MiB by default).
pub const SEED_BYTES: u64 = 256 << 20;

/// What [`SenderState::take`] makes of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Taken {
    /// Records skipped over: a new gap.
    missing: u64,
    /// Records that filled an open gap.
    late: u64,
    /// Every record of the batch was already taken before.
    duplicate: bool,
}

/// Requests to the dispatcher from the main thread.
pub enum Control {
    /// Apply a new, already checked config; the result is sent back.
    Reload(Box<Checked>, crossbeam_channel::Sender<Result<(), String>>),
}

/// A sender's identity: the client's CURVE key (when it has one), host,
/// pid and instance.
type SenderKey = (Option<[u8; 32]>, String, u32, u64);

#[derive(Debug)]
struct SenderState {
    next_seq: u64,
    dropped: u64,
    seen: Instant,
    /// Gaps counted and not yet filled, `[start, end)`, oldest first; at
    /// most [`MAX_OPEN_GAPS`] (older ones are forgotten, staying counted).
    open: Vec<(u64, u64)>,
}

/// Most unfilled gaps remembered per sender.
const MAX_OPEN_GAPS: usize = 8;

impl SenderState {
    fn new() -> SenderState {
        SenderState {
            next_seq: 0,
            dropped: 0,
            seen: Instant::now(),
            open: Vec::new(),
        }
    }

    /// Takes `[first, end)` out of the open gaps; returns how many of its
    /// records were in one (arrived late rather than twice).
    fn fill(&mut self, first: u64, end: u64) -> u64 {
        let mut filled = 0;
        let mut kept = Vec::with_capacity(self.open.len() + 1);
        for &(s, e) in &self.open {
            let (lo, hi) = (s.max(first), e.min(end));
            if lo >= hi {
                kept.push((s, e));
                continue;
            }
            filled += hi - lo;
            if s < lo {
                kept.push((s, lo));
            }
            if hi < e {
                kept.push((hi, e));
            }
        }
        kept.truncate(MAX_OPEN_GAPS);
        self.open = kept;
        filled
    }

    /// Takes the batch `[first, first + n)`: opens a gap before it, fills
    /// gaps with it, or finds it already taken.
    fn take(&mut self, first: u64, n: u64) -> Taken {
        let mut t = Taken {
            missing: 0,
            late: 0,
            duplicate: false,
        };
        if first > self.next_seq {
            t.missing = first - self.next_seq;
            if self.open.len() == MAX_OPEN_GAPS {
                self.open.remove(0);
            }
            self.open.push((self.next_seq, first));
        }
        let end = first.saturating_add(n);
        if first < self.next_seq && !self.open.is_empty() {
            t.late = self.fill(first, end.min(self.next_seq));
        }
        t.duplicate = n > 0 && end <= self.next_seq && t.late == 0;
        self.next_seq = self.next_seq.max(end);
        t
    }
}

/// The dispatcher's state.
pub struct Dispatcher {
    config: Config,
    zmq: zmq::Context,
    metrics: Arc<Metrics>,
    rules: Arc<RwLock<Arc<RuleSet>>>,
    handles: BTreeMap<String, Handle>,
    /// Keyed by the client's CURVE key too (when it has one): a client
    /// that claims another's host, pid and instance gets its own state.
    senders: HashMap<SenderKey, SenderState>,
    me: Sender,
    perf_seq: u64,
    last_perf: Instant,
    /// Batches from inputs other than the ZeroMQ sockets (JetStream).
    side: Option<Receiver<crate::jetstream_input::Handoff>>,
    /// Where acknowledgements go (to the ingest thread).
    acks: crossbeam_channel::Sender<crate::acks::Outgoing>,
}

static REJECTS: RateLimited = RateLimited::new(Duration::from_secs(10));
static GAPS: RateLimited = RateLimited::new(Duration::from_secs(10));

impl Dispatcher {
    /// Starts every processor of `checked`; the rules are published in
    /// `rules` for the workers.
    pub fn start(
        checked: &Checked,
        zmq: zmq::Context,
        metrics: Arc<Metrics>,
        acks: crossbeam_channel::Sender<crate::acks::Outgoing>,
    ) -> Result<Dispatcher, String> {
        let rules = Arc::new(RwLock::new(Arc::new(RuleSet::new(checked, 1)?)));
        let mut d = Dispatcher {
            config: checked.config.clone(),
            zmq,
            metrics,
            rules,
            handles: BTreeMap::new(),
            senders: HashMap::new(),
            me: distlog::this_process("distlogd"),
            perf_seq: 0,
            last_perf: Instant::now(),
            side: None,
            acks,
        };
        for (name, cfg) in &checked.config.processors {
            let h = Handle::start(name, cfg, &d.config, &d.zmq, d.metrics.processor(name))
                .map_err(|e| e.to_string())?;
            d.handles.insert(name.clone(), h);
        }
        if !checked.config.ack_listen.is_empty() {
            d.seed_from_stores();
        }
        Ok(d)
    }

    /// Rebuilds the per-sender sequence state by replaying the last
    /// [`SEED_BYTES`] of every store, in the order they were written.
    fn seed_from_stores(&mut self) {
        let dirs: Vec<_> = self
            .config
            .processors
            .values()
            .filter_map(|p| match p {
                crate::config::ProcessorConfig::Store(c) => Some(self.config.store_dir(c)),
                _ => None,
            })
            .collect();
        for dir in dirs {
            let Ok(segments) = crate::store::segments(&dir) else {
                continue;
            };
            let mut bytes = 0;
            let from = segments
                .iter()
                .rposition(|p| {
                    bytes += std::fs::metadata(p).map_or(0, |m| m.len());
                    bytes > SEED_BYTES
                })
                .unwrap_or(0);
            for path in &segments[from..] {
                let Ok(reader) = crate::store::Reader::open(path) else {
                    continue;
                };
                for b in reader.batches().flatten() {
                    let b = b.batch;
                    let s = b.sender();
                    // The store keeps no CURVE key: seeded states are
                    // keyed by none, and the first key to send as that
                    // sender takes its state over (see `track`).
                    let key = (
                        None,
                        s.host.as_str().to_owned(),
                        s.pid.to_native(),
                        s.instance.to_native(),
                    );
                    if key.3 == 0 {
                        continue;
                    }
                    let state = self.senders.entry(key).or_insert_with(SenderState::new);
                    state.take(b.first_seq(), b.len() as u64);
                    state.dropped = state.dropped.max(b.dropped());
                }
            }
        }
        self.metrics
            .senders
            .store(self.senders.len() as u64, Ordering::Relaxed);
    }

    /// Also takes already decoded batches from `rx` (JetStream inputs),
    /// each with the token that acknowledges it once every processor is
    /// done with it.
    pub fn set_side_input(&mut self, rx: Receiver<crate::jetstream_input::Handoff>) {
        self.side = Some(rx);
    }

    /// The rules the workers route with.
    pub fn rules(&self) -> Arc<RwLock<Arc<RuleSet>>> {
        self.rules.clone()
    }

    /// Runs until every worker's output is closed and drained, then closes
    /// every processor (each takes what is queued and flushes).
    pub fn run(mut self, inputs: Vec<Receiver<Decoded>>, control: Receiver<Control>) {
        let mut k = 0;
        loop {
            while let Ok(c) = control.try_recv() {
                match c {
                    Control::Reload(checked, reply) => {
                        let _ = reply.send(self.reload(&checked));
                    }
                }
            }
            self.maybe_route_metrics();
            if let Some(side) = self.side.clone() {
                let mut sel = crossbeam_channel::Select::new();
                let zmq_input = sel.recv(&inputs[k]);
                sel.recv(&side);
                let Ok(op) = sel.select_timeout(Duration::from_millis(100)) else {
                    continue;
                };
                if op.index() == zmq_input {
                    let Ok(d) = op.recv(&inputs[k]) else { break };
                    self.take(d);
                    k = (k + 1) % inputs.len();
                } else if let Ok((d, token)) = op.recv(&side) {
                    self.take_with(d, Some(Arc::new(token)));
                } else {
                    self.side = None;
                }
                continue;
            }
            match inputs[k].recv_timeout(Duration::from_millis(100)) {
                Ok(d) => {
                    self.take(d);
                    k = (k + 1) % inputs.len();
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Results come round-robin: once the next one in order can
                // never come, none after it can.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(side) = self.side.take() {
            while let Ok((d, token)) = side.try_recv() {
                self.take_with(d, Some(Arc::new(token)));
            }
        }
        for (_, h) in std::mem::take(&mut self.handles) {
            h.close();
        }
    }

    fn take(&mut self, d: Decoded) {
        self.take_with(d, None);
    }

    /// Like `take`, for a batch from a side input, whose `token` travels
    /// with its deliveries (dropped, so acknowledged, when the last
    /// processor is done with it; at once when nothing takes it).
    fn take_with(&mut self, d: Decoded, token: Option<Arc<crate::acks::AckToken>>) {
        let metrics = self.metrics.clone();
        let m = &*metrics;
        let (topic, batch, routed, rules, bytes, reply, peer) = match d {
            Decoded::Rejected(reason) => {
                m.reject(reason);
                REJECTS.warn(|| {
                    let total: u64 = m.rejected.lock().values().sum();
                    format!("rejected a message ({reason}); {total} rejected so far")
                });
                return;
            }
            Decoded::Batch {
                topic,
                batch,
                routed,
                rules,
                bytes,
                reply,
                peer,
            } => (topic, batch, routed, rules, bytes, reply, peer),
        };
        let b = batch.get();
        let n = b.len() as u64;
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.records.fetch_add(n, Ordering::Relaxed);
        m.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        m.unmatched
            .fetch_add(routed.unmatched as u64, Ordering::Relaxed);
        let instance = b.sender().instance.to_native();
        let duplicate = self.track(
            peer,
            b.sender().host.as_str(),
            b.sender().pid.to_native(),
            instance,
            b.first_seq(),
            n,
            b.dropped(),
        );
        // Acknowledged when the last processor drops its delivery (or now,
        // for a batch the broker already has).
        let ack = reply.map(|r| {
            Arc::new(crate::acks::AckToken::new(
                r,
                instance,
                b.first_seq(),
                n as u32,
                self.acks.clone(),
            ))
        });
        if duplicate && ack.is_some() {
            m.reject("duplicate");
            return;
        }
        let ack = ack.or(token);
        if routed.rule_hits.iter().any(|&h| h > 0) {
            let mut rm = m.rule_matches.lock();
            for (r, &h) in rules.rules.iter().zip(&routed.rule_hits) {
                if h > 0 {
                    *rm.entry(r.name.clone()).or_default() += h as u64;
                }
            }
        }
        self.deliver(topic, &batch, peer, routed.routes, &rules, ack);
    }

    fn deliver(
        &self,
        topic: Topic,
        batch: &Arc<OwnedBatch>,
        peer: Option<[u8; 32]>,
        routes: Vec<(usize, Selection)>,
        rules: &RuleSet,
        ack: Option<Arc<crate::acks::AckToken>>,
    ) {
        for (p, selection) in routes {
            let name = &rules.processors[p];
            let d = Delivery {
                topic,
                batch: batch.clone(),
                selection,
                ack: ack.clone(),
                peer,
            };
            match self.handles.get(name) {
                Some(h) => {
                    h.send(d);
                }
                // Routed under rules a reload has just replaced, to a
                // processor that is gone.
                None => {
                    self.metrics
                        .processor(name)
                        .dropped
                        .fetch_add(d.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }

    /// Sequence gaps and client drops, per sender (CURVE key, host, pid,
    /// instance). True when every record of the batch was taken before.
    #[allow(clippy::too_many_arguments)]
    fn track(
        &mut self,
        peer: Option<[u8; 32]>,
        host: &str,
        pid: u32,
        instance: u64,
        first: u64,
        n: u64,
        dropped: u64,
    ) -> bool {
        if instance == 0 {
            return false; // Python records: no sequence numbers.
        }
        let m = &*self.metrics;
        if self.senders.len() >= MAX_SENDERS {
            // Forget the half heard from least recently.
            let mut seen: Vec<Instant> = self.senders.values().map(|s| s.seen).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            self.senders.retain(|_, s| s.seen > cut);
        }
        let key = (peer, host.to_owned(), pid, instance);
        if peer.is_some() && !self.senders.contains_key(&key) {
            // A state seeded from the store (which keeps no key) is taken
            // over by the first key that sends as that sender.
            if let Some(seeded) = self.senders.remove(&(None, key.1.clone(), pid, instance)) {
                self.senders.insert(key.clone(), seeded);
            }
        }
        let state = self.senders.entry(key).or_insert_with(SenderState::new);
        state.seen = Instant::now();
        let before = state.next_seq;
        let t = state.take(first, n);
        if t.missing > 0 {
            let missing = t.missing;
            m.gap_records.fetch_add(missing, Ordering::Relaxed);
            GAPS.warn(|| {
                format!(
                    "{missing} records from {host} pid {pid} missing (sequence {before} to {}): lost in transit or before a broker restart, unless they still arrive late",
                    first - 1
                )
            });
        }
        m.late_records.fetch_add(t.late, Ordering::Relaxed);
        if dropped > state.dropped {
            m.client_dropped
                .fetch_add(dropped - state.dropped, Ordering::Relaxed);
            state.dropped = dropped;
        }
        m.senders
            .store(self.senders.len() as u64, Ordering::Relaxed);
        t.duplicate
    }

    /// Every `metrics.interval`, the counters as kind-`P` records through
    /// the broker's own rules.
    fn maybe_route_metrics(&mut self) {
        let every = self.config.metrics.interval;
        if every.is_zero() || self.last_perf.elapsed() < every {
            return;
        }
        self.last_perf = Instant::now();
        let b = self.metrics.perf_batch(&self.me, self.perf_seq);
        self.perf_seq += b.records.len() as u64;
        let Ok(batch) = OwnedBatch::from_aligned(encode_batch_to_vec(&b)) else {
            return;
        };
        let topic = Topic::batch(
            self.config.metrics.system as u8,
            distlog_core::record::kind::PERF,
        );
        let rules = self.rules.read().clone();
        let routed = rules.route(topic.system, batch.get());
        self.deliver(topic, &Arc::new(batch), None, routed.routes, &rules, None);
    }

    /// Applies a new config: processors whose settings did not change keep
    /// running (and their queues); changed and removed ones are drained and
    /// closed before new ones start (a store's directory is never written
    /// by two writers). If a new processor fails to start, the old config
    /// is restored and the error returned.
    fn reload(&mut self, checked: &Checked) -> Result<(), String> {
        let m = &self.metrics;
        let generation = self.rules.read().generation + 1;
        let rules = match RuleSet::new(checked, generation) {
            Ok(r) => r,
            Err(e) => {
                m.reloads_failed.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let new = &checked.config;
        let mut closed = Vec::new();
        let names: Vec<String> = self.handles.keys().cloned().collect();
        for name in names {
            if new.processors.get(&name) != self.handles.get(&name).map(|h| h.config()) {
                let h = self.handles.remove(&name).expect("listed above");
                closed.push((name, h.config().clone()));
                h.close();
            }
        }
        let mut started = Vec::new();
        for (name, cfg) in &new.processors {
            if self.handles.contains_key(name) {
                continue;
            }
            match Handle::start(name, cfg, new, &self.zmq, m.processor(name)) {
                Ok(h) => {
                    self.handles.insert(name.clone(), h);
                    started.push(name.clone());
                }
                Err(e) => {
                    // Roll back: stop what started, restart what was closed.
                    for n in started {
                        if let Some(h) = self.handles.remove(&n) {
                            h.close();
                        }
                    }
                    for (n, cfg) in closed {
                        match Handle::start(&n, &cfg, &self.config, &self.zmq, m.processor(&n)) {
                            Ok(h) => {
                                self.handles.insert(n, h);
                            }
                            Err(e2) => eprintln!(
                                "distlogd: error: processor {n:?} could not be restarted after a failed reload: {e2}"
                            ),
                        }
                    }
                    m.reloads_failed.fetch_add(1, Ordering::Relaxed);
                    return Err(e.to_string());
                }
            }
        }
        if new.listen != self.config.listen
            || new.workers != self.config.workers
            || new.max_message != self.config.max_message
            || new.ingest_hwm != self.config.ingest_hwm
            || new.ingest_rcvbuf != self.config.ingest_rcvbuf
            || new.metrics.listen != self.config.metrics.listen
        {
            eprintln!(
                "distlogd: note: changes to listen, workers, max_message, ingest_hwm, ingest_rcvbuf and metrics.listen take effect at restart"
            );
        }
        self.config = new.clone();
        *self.rules.write() = Arc::new(rules);
        m.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(open: &[(u64, u64)]) -> SenderState {
        SenderState {
            next_seq: 100,
            dropped: 0,
            seen: Instant::now(),
            open: open.to_vec(),
        }
    }

    #[test]
    fn resent_batches_are_duplicates_unless_they_fill_a_gap() {
        let mut s = SenderState::new();
        assert!(!s.take(0, 10).duplicate);
        // A batch lost in transit, then the next one: a gap.
        let t = s.take(20, 10);
        assert_eq!((t.missing, t.duplicate), (10, false));
        // The resends after a reconnect: the lost one fills the gap, the
        // others are already here.
        assert!(s.take(0, 10).duplicate);
        let t = s.take(10, 10);
        assert_eq!((t.late, t.duplicate), (10, false));
        assert!(s.take(10, 10).duplicate);
        assert!(s.take(20, 10).duplicate);
        assert!(!s.take(30, 10).duplicate);
    }

    #[test]
    fn late_batches_fill_open_gaps_and_duplicates_do_not() {
        let mut s = state(&[(10, 20), (40, 50)]);
        // A duplicate of records before any gap fills nothing.
        assert_eq!(s.fill(0, 10), 0);
        // Part of the first gap, from its middle: the gap splits.
        assert_eq!(s.fill(12, 15), 3);
        assert_eq!(s.open, vec![(10, 12), (15, 20), (40, 50)]);
        // One batch spanning the rest of the first gap and half the second.
        assert_eq!(s.fill(10, 45), 2 + 5 + 5);
        assert_eq!(s.open, vec![(45, 50)]);
        // The same records again: already filled.
        assert_eq!(s.fill(10, 45), 0);
        assert_eq!(s.fill(45, 50), 5);
        assert!(s.open.is_empty());
    }
}
