//! Processors: where routed records go. Each runs on its own thread behind
//! a bounded queue, so a slow one does not stall the others.
//!
//! Adding a processor is one file: implement [`Processor`], add a variant
//! to [`crate::config::ProcessorConfig`], and a line to [`build`].
//!
//! # When a processor falls behind
//!
//! Its queue (batches and bytes, both bounded) fills. Then its overflow
//! policy decides:
//!
//! - `drop` (the default for `jsonl`, `console`, `publish`, `forward`): the
//!   batch is not queued for that processor, its records are counted in
//!   `distlogd_processor_dropped_records_total`, and every other processor
//!   still gets it.
//! - `block` (the default for `store`): the router waits for room. The
//!   broker stops taking messages, ZeroMQ's receive buffers fill, and then
//!   the clients' own bounded buffers: clients drop and count (their drops
//!   reach the broker in every batch header). Nothing the broker received
//!   is lost, but every processor waits for the slowest blocking one.

mod console;
mod forward;
mod jetstream;
mod jsonl;
mod postgres;
mod publish;
mod store;

use crate::config::{Config, Overflow, ProcessorConfig};
use crate::warn::RateLimited;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use distlog::record::Record;
use distlog::view::RecordRef;
use distlog::wire::{Batch, OwnedBatch, Topic};
use rkyv::rancor;
use std::borrow::Cow;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which records of a batch a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// All of them.
    All,
    /// These indices, ascending.
    Some(Arc<[u32]>),
}

/// Records routed to one processor: a validated batch and which of its
/// records matched.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The topic the batch arrived under (encoding always `R`).
    pub topic: Topic,
    /// The batch, shared by every processor it goes to.
    pub batch: Arc<OwnedBatch>,
    /// Which records.
    pub selection: Selection,
    /// Acknowledged delivery: sends the batch's acknowledgement once every
    /// processor it went to has dropped its delivery ([`crate::acks`]).
    pub ack: Option<Arc<crate::acks::AckToken>>,
    /// The CURVE public key of the client that sent it (none without
    /// CURVE, or from the broker itself).
    pub peer: Option<[u8; 32]>,
}

impl Delivery {
    /// Number of records carried.
    pub fn len(&self) -> usize {
        match &self.selection {
            Selection::All => self.batch.get().len(),
            Selection::Some(ix) => ix.len(),
        }
    }

    /// Whether no record is carried.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records carried, in order.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> {
        let all = self.batch.get();
        let (whole, some) = match &self.selection {
            Selection::All => (Some(all.records()), None),
            Selection::Some(ix) => (
                None,
                Some(ix.iter().filter_map(move |&i| all.record(i as usize))),
            ),
        };
        whole
            .into_iter()
            .flatten()
            .chain(some.into_iter().flatten())
    }

    /// The batch bodies to ship on: the body exactly as it arrived when
    /// every record is carried; otherwise the carried records re-encoded,
    /// one batch per run of consecutive sequence numbers (so each is a
    /// valid batch whose records keep their sequence numbers).
    pub fn bodies(&self) -> Vec<Cow<'_, [u8]>> {
        let Selection::Some(ix) = &self.selection else {
            return vec![Cow::Borrowed(self.batch.body())];
        };
        let b = self.batch.get();
        let Ok(sender) = rkyv::deserialize::<_, rancor::Error>(b.sender()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut run: Vec<Record> = Vec::new();
        let mut last: Option<u32> = None;
        for &i in ix.iter() {
            if last.is_some_and(|l| l + 1 != i) && !run.is_empty() {
                out.push(Cow::Owned(encode_run(&sender, b.dropped(), &mut run)));
            }
            if let Some(r) = b.record(i as usize) {
                run.push(r.to_record());
            }
            last = Some(i);
        }
        if !run.is_empty() {
            out.push(Cow::Owned(encode_run(&sender, b.dropped(), &mut run)));
        }
        out
    }
}

fn encode_run(sender: &distlog::wire::Sender, dropped: u64, run: &mut Vec<Record>) -> Vec<u8> {
    let records = std::mem::take(run);
    let batch = Batch {
        sender: sender.clone(),
        first_seq: records[0].seq,
        dropped,
        records,
    };
    distlog::wire::encode_batch_to_vec(&batch).to_vec()
}

/// A processor: takes deliveries on its own thread.
pub trait Processor: Send {
    /// Handles one delivery. An error is counted (its records as dropped
    /// for this processor) and reported; the processor keeps running.
    fn process(&mut self, delivery: &Delivery) -> io::Result<()>;

    /// Periodic upkeep, about once a second: time-based rotation, fsync,
    /// retention.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Makes everything processed so far durable or delivered; called
    /// before the processor is dropped (shutdown, reload).
    fn flush(&mut self) -> io::Result<()>;
}

/// What a processor is given when it is built.
pub struct Context<'a> {
    /// The processor's name in the config.
    pub name: &'a str,
    /// The whole config (for `data_dir`).
    pub config: &'a Config,
    /// The broker's ZeroMQ context.
    pub zmq: &'a zmq::Context,
    /// Set when the processor is being closed: a processor waiting on
    /// something outside (a peer broker) gives up soon after.
    pub closing: Arc<AtomicBool>,
    /// The processor's counters: one that buffers records past `process`
    /// (postgres, jetstream) counts those it later drops here.
    pub stats: Arc<Stats>,
}

/// Builds a processor from its config.
pub fn build(cfg: &ProcessorConfig, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
    let with_name = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("processor {:?} ({}): {e}", ctx.name, cfg.kind()),
        )
    };
    Ok(match cfg {
        ProcessorConfig::Store(c) => Box::new(store::Store::open(c, ctx).map_err(with_name)?),
        ProcessorConfig::Jsonl(c) => Box::new(jsonl::Jsonl::open(c).map_err(with_name)?),
        ProcessorConfig::Console(c) => Box::new(console::Console::new(c)),
        ProcessorConfig::Publish(c) => Box::new(publish::Publish::bind(c, ctx).map_err(with_name)?),
        ProcessorConfig::Forward(c) => {
            Box::new(forward::Forward::connect(c, ctx).map_err(with_name)?)
        }
        ProcessorConfig::Postgres(c) => Box::new(postgres::Postgres::start(c, ctx)),
        ProcessorConfig::Jetstream(c) => {
            Box::new(jetstream::Jetstream::start(c, ctx).map_err(with_name)?)
        }
    })
}

/// A processor's counters; they survive reloads that keep its name.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records handed to the processor successfully.
    pub written: AtomicU64,
    /// Batches handed to the processor successfully.
    pub batches: AtomicU64,
    /// Records not processed: queue overflow or processor errors.
    pub dropped: AtomicU64,
    /// Processor errors (each may drop a batch).
    pub errors: AtomicU64,
    /// Batches waiting in the queue now.
    pub queued: AtomicU64,
}

/// A running processor: its queue and thread.
pub struct Handle {
    name: String,
    config: ProcessorConfig,
    tx: Option<Sender<Delivery>>,
    bytes: Arc<AtomicU64>,
    max_bytes: u64,
    overflow: Overflow,
    stats: Arc<Stats>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

static ERRORS: RateLimited = RateLimited::new(Duration::from_secs(10));

impl Handle {
    /// Builds the processor and starts its thread.
    pub fn start(
        name: &str,
        cfg: &ProcessorConfig,
        config: &Config,
        zmq: &zmq::Context,
        stats: Arc<Stats>,
    ) -> io::Result<Handle> {
        let closing = Arc::new(AtomicBool::new(false));
        let ctx = Context {
            name,
            config,
            zmq,
            closing: closing.clone(),
            stats: stats.clone(),
        };
        let processor = build(cfg, &ctx)?;
        let q = cfg.queue();
        let (tx, rx) = bounded(q.batches);
        let bytes = Arc::new(AtomicU64::new(0));
        let thread = {
            let (name, stats, bytes) = (name.to_owned(), stats.clone(), bytes.clone());
            std::thread::Builder::new()
                .name(format!("proc-{name}"))
                .spawn(move || run(&name, processor, &rx, &stats, &bytes))?
        };
        Ok(Handle {
            name: name.to_owned(),
            config: cfg.clone(),
            tx: Some(tx),
            bytes,
            max_bytes: q.bytes,
            overflow: cfg.overflow(),
            stats,
            closing,
            thread: Some(thread),
        })
    }

    /// The processor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The config it was built from.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Queues a delivery, applying the overflow policy when the queue is
    /// full. Returns whether it was queued.
    pub fn send(&self, d: Delivery) -> bool {
        let Some(tx) = &self.tx else { return false };
        let n = d.len() as u64;
        let size = d.batch.body().len() as u64;
        let over_bytes = |queued: u64| queued > 0 && queued + size > self.max_bytes;
        match self.overflow {
            Overflow::Drop => {
                if over_bytes(self.bytes.load(Ordering::Acquire)) {
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return false;
                }
                match tx.try_send(d) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                        return false;
                    }
                }
            }
            Overflow::Block => {
                while over_bytes(self.bytes.load(Ordering::Acquire)) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                if tx.send(d).is_err() {
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return false;
                }
            }
        }
        self.bytes.fetch_add(size, Ordering::AcqRel);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Closes the queue and waits until the processor has taken everything
    /// queued and flushed.
    pub fn close(mut self) {
        self.close_inner();
    }

    fn close_inner(&mut self) {
        self.closing.store(true, Ordering::Release);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.close_inner();
    }
}

/// The processor thread: take, process, tick, and flush at the end.
fn run(
    name: &str,
    mut p: Box<dyn Processor>,
    rx: &Receiver<Delivery>,
    stats: &Stats,
    bytes: &AtomicU64,
) {
    const TICK: Duration = Duration::from_secs(1);
    let mut last_tick = Instant::now();
    let report = |what: &str, e: &io::Error| {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        ERRORS.warn(|| format!("processor {name:?}: {what}: {e}"));
    };
    loop {
        match rx.recv_timeout(TICK) {
            Ok(d) => {
                bytes.fetch_sub(d.batch.body().len() as u64, Ordering::AcqRel);
                stats.queued.fetch_sub(1, Ordering::Relaxed);
                let n = d.len() as u64;
                match p.process(&d) {
                    Ok(()) => {
                        stats.written.fetch_add(n, Ordering::Relaxed);
                        stats.batches.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.dropped.fetch_add(n, Ordering::Relaxed);
                        report("records dropped", &e);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if let Err(e) = p.tick() {
                report("upkeep failed", &e);
            }
        }
    }
    if let Err(e) = p.flush() {
        report("flush failed", &e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog::wire::Sender as WireSender;

    fn batch(n: u64) -> Arc<OwnedBatch> {
        let b = Batch {
            sender: WireSender {
                host: "h".into(),
                pid: 1,
                instance: 5,
                ..WireSender::default()
            },
            first_seq: 10,
            dropped: 2,
            records: (0..n)
                .map(|i| Record {
                    seq: 10 + i,
                    message: format!("m{i}"),
                    ..Record::default()
                })
                .collect(),
        };
        Arc::new(OwnedBatch::from_body(&distlog::wire::encode_batch_to_vec(&b)).unwrap())
    }

    #[test]
    fn whole_batches_ship_unchanged_partial_ones_in_contiguous_runs() {
        let b = batch(6);
        let all = Delivery {
            topic: Topic::batch(b'T', b'L'),
            batch: b.clone(),
            selection: Selection::All,
            ack: None,
            peer: None,
        };
        assert_eq!(all.len(), 6);
        let bodies = all.bodies();
        assert_eq!(bodies.len(), 1);
        assert!(matches!(bodies[0], Cow::Borrowed(_)));
        assert_eq!(&*bodies[0], b.body());

        let some = Delivery {
            selection: Selection::Some(vec![0, 1, 3, 5].into()),
            ..all
        };
        let msgs: Vec<_> = some.records().map(|r| r.message()).collect();
        assert_eq!(msgs, ["m0", "m1", "m3", "m5"]);
        let runs: Vec<Vec<u64>> = some
            .bodies()
            .iter()
            .map(|body| {
                let ob = OwnedBatch::from_body(body).expect("each run is a valid batch");
                assert_eq!(ob.get().dropped(), 2);
                assert_eq!(ob.get().sender().instance.to_native(), 5);
                ob.get().records().map(|r| r.seq()).collect()
            })
            .collect();
        assert_eq!(runs, vec![vec![10, 11], vec![13], vec![15]]);
    }
}
