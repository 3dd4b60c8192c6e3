//! Taking messages off the PULL sockets: every one is checked, good batches
//! are stored, bad ones are counted by reason and never stop the loop.

use crate::store::Writer;
use distlog::wire::{self, Topic};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest message the broker accepts (ZMQ_MAXMSGSIZE): larger ones are
/// dropped by ZeroMQ before they use memory.
pub const MAX_MESSAGE: i64 = 64 * 1024 * 1024;

/// Counters of one broker run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Messages taken off the sockets.
    pub messages: u64,
    /// Batches stored.
    pub batches: u64,
    /// Records stored.
    pub records: u64,
    /// Bytes stored (batch bodies).
    pub bytes: u64,
    /// Rejected messages by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Records missing between batches of the same sender (sequence gaps).
    pub gap_records: u64,
    /// Sum over senders of the latest client-reported drop count.
    pub client_dropped: u64,
}

#[derive(Debug, Default)]
struct SenderState {
    next_seq: u64,
    dropped: u64,
}

/// Receives until `stop` is set, then drains what ZeroMQ already holds.
pub fn run(
    sockets: &[zmq::Socket],
    store: &mut Writer,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Counters> {
    let mut c = Counters::default();
    let mut senders: HashMap<(String, u32, u64), SenderState> = HashMap::new();
    let mut last_warning = Instant::now() - Duration::from_secs(60);
    let mut stopping = false;
    loop {
        if !stopping && stop.load(Ordering::Relaxed) {
            stopping = true;
        }
        let mut items: Vec<zmq::PollItem<'_>> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        let ready = zmq::poll(&mut items, if stopping { 0 } else { 100 }).unwrap_or(0);
        if ready == 0 {
            if stopping {
                break; // nothing left that was received
            }
            continue;
        }
        for (i, item) in items.iter().enumerate() {
            if !item.is_readable() {
                continue;
            }
            while let Ok(frames) = sockets[i].recv_multipart(zmq::DONTWAIT) {
                c.messages += 1;
                if let Err(reason) = take(&frames, store, &mut c, &mut senders)? {
                    *c.rejected.entry(reason).or_default() += 1;
                    if last_warning.elapsed() >= Duration::from_secs(10) {
                        last_warning = Instant::now();
                        eprintln!(
                            "distlogd: warning: rejected a message ({reason}); {} rejected so far",
                            c.rejected.values().sum::<u64>()
                        );
                    }
                }
            }
        }
    }
    store.sync()?;
    c.client_dropped = senders.values().map(|s| s.dropped).sum();
    Ok(c)
}

/// Checks and stores one message. `Ok(Err(reason))` is a rejected message;
/// `Err` is a store failure.
fn take(
    frames: &[Vec<u8>],
    store: &mut Writer,
    c: &mut Counters,
    senders: &mut HashMap<(String, u32, u64), SenderState>,
) -> std::io::Result<Result<(), &'static str>> {
    let [topic, body] = frames else {
        return Ok(Err("bad_frame_count"));
    };
    let topic = match Topic::parse(topic) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e.reason())),
    };
    if topic.encoding == wire::ENCODING_JSON || topic.encoding == wire::ENCODING_PICKLE {
        // A Python client's record: stored as a one-record batch.
        let (sender, record) = match distlog::python::decode(topic.encoding, body) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.reason())),
        };
        let body = distlog::python::to_batch(sender, record);
        store.append(Topic::batch(topic.system, topic.kind).bytes(), &body)?;
        c.batches += 1;
        c.records += 1;
        c.bytes += body.len() as u64;
        return Ok(Ok(()));
    }
    let batch = match wire::OwnedBatch::from_body(body) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e.reason())),
    };
    let b = batch.get();
    let n = b.len() as u64;
    let sender = &b.sender;
    let instance = sender.instance.to_native();
    if instance != 0 {
        let key = (
            sender.host.as_str().to_owned(),
            sender.pid.to_native(),
            instance,
        );
        let state = senders.entry(key).or_default();
        let first = b.first_seq.to_native();
        if first > state.next_seq {
            c.gap_records += first - state.next_seq;
        }
        state.next_seq = state.next_seq.max(first + n);
        state.dropped = state.dropped.max(b.dropped.to_native());
    }
    store.append(topic.bytes(), batch.body())?;
    c.batches += 1;
    c.records += n;
    c.bytes += body.len() as u64;
    Ok(Ok(()))
}
