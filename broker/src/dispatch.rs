//! The dispatcher: takes the workers' results back in receive order,
//! tracks each sender's sequence numbers, hands records to processors,
//! applies config reloads, and routes the broker's own metrics.

use crate::config::{Checked, Config};
use crate::ingest::Decoded;
use crate::metrics::Metrics;
use crate::processor::{Delivery, Handle, Selection};
use crate::rules::RuleSet;
use crate::warn::RateLimited;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use distlog::wire::{OwnedBatch, Sender, Topic};
use distlog::wire_v2::encode_batch_to_vec;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most senders tracked for sequence gaps; past this the ones not heard
/// from for longest are forgotten (hostile input cannot grow the table).
pub const MAX_SENDERS: usize = 100_000;

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
    ) -> Result<Dispatcher, String> {
        let rules = Arc::new(RwLock::new(Arc::new(RuleSet::new(checked, 1)?)));
        let mut d = Dispatcher {
            config: checked.config.clone(),
            zmq,
            metrics,
            rules,
            handles: BTreeMap::new(),
            senders: HashMap::new(),
            me: Sender::this_process("distlogd"),
            perf_seq: 0,
            last_perf: Instant::now(),
            side: None,
        };
        for (name, cfg) in &checked.config.processors {
            let h = Handle::start(name, cfg, &d.config, &d.zmq, d.metrics.processor(name))
                .map_err(|e| e.to_string())?;
            d.handles.insert(name.clone(), h);
        }
        Ok(d)
    }

    /// Also takes already decoded batches from `rx` (JetStream inputs),
    /// calling each one's callback once it is handed to the processors.
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
                } else if let Ok((d, handed)) = op.recv(&side) {
                    self.take(d);
                    handed();
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
            while let Ok((d, handed)) = side.try_recv() {
                self.take(d);
                handed();
            }
        }
        for (_, h) in std::mem::take(&mut self.handles) {
            h.close();
        }
    }

    fn take(&mut self, d: Decoded) {
        let metrics = self.metrics.clone();
        let m = &*metrics;
        let (topic, batch, routed, rules, bytes, peer) = match d {
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
                peer,
            } => (topic, batch, routed, rules, bytes, peer),
        };
        let b = batch.get();
        let n = b.len() as u64;
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.records.fetch_add(n, Ordering::Relaxed);
        m.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        m.unmatched
            .fetch_add(routed.unmatched as u64, Ordering::Relaxed);
        self.track(
            peer,
            b.sender().host.as_str(),
            b.sender().pid.to_native(),
            b.sender().instance.to_native(),
            b.first_seq(),
            n,
            b.dropped(),
        );
        if routed.rule_hits.iter().any(|&h| h > 0) {
            let mut rm = m.rule_matches.lock();
            for (r, &h) in rules.rules.iter().zip(&routed.rule_hits) {
                if h > 0 {
                    *rm.entry(r.name.clone()).or_default() += h as u64;
                }
            }
        }
        self.deliver(topic, &batch, peer, routed.routes, &rules);
    }

    fn deliver(
        &self,
        topic: Topic,
        batch: &Arc<OwnedBatch>,
        peer: Option<[u8; 32]>,
        routes: Vec<(usize, Selection)>,
        rules: &RuleSet,
    ) {
        for (p, selection) in routes {
            let name = &rules.processors[p];
            let d = Delivery {
                topic,
                batch: batch.clone(),
                selection,
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
    /// instance).
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
    ) {
        if instance == 0 {
            return; // Python records: no sequence numbers.
        }
        let m = &*self.metrics;
        if self.senders.len() >= MAX_SENDERS {
            // Forget the half heard from least recently.
            let mut seen: Vec<Instant> = self.senders.values().map(|s| s.seen).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            self.senders.retain(|_, s| s.seen > cut);
        }
        let now = Instant::now();
        let state = self
            .senders
            .entry((peer, host.to_owned(), pid, instance))
            .or_insert(SenderState {
                next_seq: 0,
                dropped: 0,
                seen: now,
                open: Vec::new(),
            });
        state.seen = now;
        if first > state.next_seq {
            let missing = first - state.next_seq;
            m.gap_records.fetch_add(missing, Ordering::Relaxed);
            GAPS.warn(|| {
                format!(
                    "{missing} records from {host} pid {pid} missing (sequence {} to {}): lost in transit or before a broker restart, unless they still arrive late",
                    state.next_seq,
                    first - 1
                )
            });
            if state.open.len() == MAX_OPEN_GAPS {
                state.open.remove(0);
            }
            state.open.push((state.next_seq, first));
        }
        let end = first.saturating_add(n);
        if first < state.next_seq && !state.open.is_empty() {
            let late = state.fill(first, end.min(state.next_seq));
            m.late_records.fetch_add(late, Ordering::Relaxed);
        }
        state.next_seq = state.next_seq.max(end);
        if dropped > state.dropped {
            m.client_dropped
                .fetch_add(dropped - state.dropped, Ordering::Relaxed);
            state.dropped = dropped;
        }
        m.senders
            .store(self.senders.len() as u64, Ordering::Relaxed);
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
        let Ok(batch) = OwnedBatch::from_aligned(encode_batch_to_vec(&(&b).into())) else {
            return;
        };
        let topic = Topic::batch(
            self.config.metrics.system as u8,
            distlog::record::kind::PERF,
        );
        let rules = self.rules.read().clone();
        let routed = rules.route(topic.system, batch.get());
        self.deliver(topic, &Arc::new(batch), None, routed.routes, &rules);
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
            || new.metrics.listen != self.config.metrics.listen
        {
            eprintln!(
                "distlogd: note: changes to listen, workers, max_message and metrics.listen take effect at restart"
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
