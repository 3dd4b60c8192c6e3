//! Taking messages off the PULL sockets, and checking them.
//!
//! The ingest thread only receives: message `i` goes to worker `i % N`.
//! Workers ([`decode`]) validate, decode and filter in parallel; the
//! dispatcher takes their results back in the same round-robin order, so
//! the broker's output order is its input order and no sender's records
//! are ever reordered, whatever the number of workers.

use crate::metrics::Metrics;
use crate::rules::{Routed, RuleSet};
use crossbeam_channel::{Receiver, Sender};
use distlog_core::wire::{self, OwnedBatch, Topic};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Default for the largest message accepted (ZMQ_MAXMSGSIZE); larger ones
/// are dropped by ZeroMQ before they use memory.
pub const MAX_MESSAGE: i64 = 16 * 1024 * 1024;

/// What a worker makes of one message.
pub enum Decoded {
    /// A good batch and where its records go.
    Batch {
        /// Its topic (encoding `R`; Python records were converted).
        topic: Topic,
        /// The validated batch.
        batch: Arc<OwnedBatch>,
        /// Where its records go, under `rules`.
        routed: Routed,
        /// The rules it was routed with.
        rules: Arc<RuleSet>,
        /// The message's body size.
        bytes: usize,
        /// Where its acknowledgement goes, when it came from an
        /// acknowledging endpoint ([`crate::acks`]).
        reply: Option<crate::acks::Reply>,
        /// The client's CURVE public key, when it came over CURVE: each
        /// sender's sequence state is its own per key, so one permitted
        /// client cannot claim another's host, pid and instance.
        peer: Option<[u8; 32]>,
    },
    /// A rejected message, by reason.
    Rejected(&'static str),
}

/// After `stop`, how long the ingest sockets must stay quiet before the
/// receiver returns: messages already on their way (in kernel buffers or
/// ZeroMQ's I/O thread) still arrive and are kept.
const DRAIN_QUIET_MS: i64 = 100;

/// The longest the drain after `stop` may take, so a client that never
/// pauses cannot hold the broker open.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_millis(500);

/// How often the ingest thread looks for acknowledgements to send when it
/// serves acknowledging endpoints and no message comes: the longest an
/// acknowledgement waits to leave.
const ACK_POLL_MS: i64 = 2;

/// The ingest sockets: PULL ones, then `acked` ROUTER ones (acknowledging
/// endpoints, [`crate::acks`]) at the end.
pub struct Sockets {
    /// Every ingest socket.
    pub all: Vec<zmq::Socket>,
    /// How many at the end are ROUTER sockets.
    pub acked: usize,
    /// Acknowledgements to send.
    pub acks: crossbeam_channel::Receiver<crate::acks::Outgoing>,
}

/// Receives until `stop` is set, then drains: keeps taking messages until
/// the sockets have been quiet for [`DRAIN_QUIET_MS`] (at most
/// [`DRAIN_MAX`]), and returns, dropping the senders, which lets the
/// workers finish. Acknowledgements are sent between messages.
pub fn receive(sockets: Sockets, workers: Vec<Sender<Input>>, stop: &AtomicBool) {
    let Sockets {
        all: sockets,
        acked,
        acks,
    } = sockets;
    let first_router = sockets.len() - acked;
    let mut next = 0usize;
    let mut stopping: Option<std::time::Instant> = None;
    loop {
        if stopping.is_none() && stop.load(Ordering::Relaxed) {
            stopping = Some(std::time::Instant::now());
        }
        if stopping.is_some_and(|t| t.elapsed() >= DRAIN_MAX) {
            return;
        }
        let mut items: Vec<zmq::PollItem<'_>> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        let timeout = if stopping.is_some() {
            DRAIN_QUIET_MS
        } else if acked > 0 {
            ACK_POLL_MS
        } else {
            100
        };
        let ready = zmq::poll(&mut items, timeout).unwrap_or(0);
        let readable: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        drop(items);
        crate::acks::send_queued(&acks, &sockets);
        if ready == 0 {
            if stopping.is_some() {
                return;
            }
            continue;
        }
        for (i, readable) in readable.into_iter().enumerate() {
            if !readable {
                continue;
            }
            // A bounded burst per socket, so one busy socket cannot starve
            // the others.
            for _ in 0..256 {
                let Some(mut frames) = recv_frames(&sockets[i]) else {
                    break;
                };
                // A ROUTER socket puts the peer's routing id first.
                let reply = (i >= first_router && !frames.is_empty()).then(|| crate::acks::Reply {
                    socket: i,
                    peer: frames.remove(0).to_vec(),
                });
                if workers[next].send((frames, reply)).is_err() {
                    return;
                }
                next = (next + 1) % workers.len();
            }
        }
    }
}

/// The frames of one message, as ZeroMQ delivered them (not copied).
pub type Frames = Vec<zmq::Message>;

/// A message for a worker, and where its acknowledgement goes (if it came
/// from an acknowledging endpoint).
pub type Input = (Frames, Option<crate::acks::Reply>);

/// The most frames of a message kept (a ROUTER's routing id and three);
/// a message with more is still read to its end (and rejected for its
/// frame count), but the rest are not kept.
const MAX_FRAMES: usize = 4;

/// Receives one whole message without waiting, or `None` if there is none.
fn recv_frames(socket: &zmq::Socket) -> Option<Frames> {
    let mut frames = Vec::with_capacity(2);
    let mut msg = socket.recv_msg(zmq::DONTWAIT).ok()?;
    loop {
        let more = msg.get_more();
        if frames.len() < MAX_FRAMES {
            frames.push(msg);
        }
        if !more {
            return Some(frames);
        }
        // The rest of a message arrives with its first frame.
        msg = match socket.recv_msg(zmq::DONTWAIT) {
            Ok(m) => m,
            Err(_) => return Some(frames),
        };
    }
}

/// A worker: decodes and routes messages until its input closes. With
/// CURVE (`allow` is set), each message's client key is checked against
/// the allow-list in force, so a key removed by a reload is refused
/// (`curve_key_removed`) even on a connection opened before.
pub fn work(
    input: Receiver<Input>,
    output: Sender<Decoded>,
    rules: &RwLock<Arc<RuleSet>>,
    metrics: &Metrics,
    allow: Option<crate::zap::Allow>,
) {
    for (mut frames, reply) in input {
        metrics.messages.fetch_add(1, Ordering::Relaxed);
        let peer = match &allow {
            None => None,
            Some(allow) => {
                let peer = frames.first_mut().and_then(crate::zap::peer_key);
                let permitted = match (&peer, &*allow.read()) {
                    (Some(_), None) => true,
                    (Some(k), Some(set)) => set.contains(k),
                    (None, _) => false,
                };
                if !permitted {
                    if output.send(Decoded::Rejected("curve_key_removed")).is_err() {
                        return;
                    }
                    continue;
                }
                peer
            }
        };
        let mut d = decode(frames, &rules.read().clone());
        if let Decoded::Batch {
            reply: r, peer: p, ..
        } = &mut d
        {
            *r = reply;
            *p = peer;
        }
        if output.send(d).is_err() {
            return;
        }
    }
}

/// Checks one message and routes its records. A batch body is validated
/// and kept in ZeroMQ's own buffer when it is aligned (see
/// [`OwnedBatch::from_message`]).
pub fn decode(frames: Frames, rules: &Arc<RuleSet>) -> Decoded {
    let Ok::<[zmq::Message; 2], _>([topic, body]) = frames.try_into() else {
        return Decoded::Rejected("bad_frame_count");
    };
    let topic = match Topic::parse(&topic) {
        Ok(t) => t,
        Err(e) => return Decoded::Rejected(e.reason()),
    };
    let bytes = body.len();
    let batch = if topic.encoding == wire::ENCODING_BATCH {
        match OwnedBatch::from_message(body) {
            Ok(b) => b,
            Err(e) => return Decoded::Rejected(e.reason()),
        }
    } else {
        // A Python client's record (JSON or pickle): one-record batch.
        let (sender, record) = match crate::python::decode(topic.encoding, &body) {
            Ok(r) => r,
            Err(e) => return Decoded::Rejected(e.reason()),
        };
        match OwnedBatch::from_aligned(crate::python::to_batch(sender, record)) {
            Ok(b) => b,
            Err(e) => return Decoded::Rejected(e.reason()),
        }
    };
    let topic = Topic::batch(topic.system, topic.kind);
    let routed = rules.route(topic.system, batch.get());
    Decoded::Batch {
        topic,
        batch: Arc::new(batch),
        routed,
        rules: rules.clone(),
        bytes,
        reply: None,
        peer: None,
    }
}
