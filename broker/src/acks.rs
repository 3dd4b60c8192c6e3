//! Acknowledged delivery, the broker's side (`docs/PROTOCOL.md`,
//! "Acknowledged delivery").
//!
//! Clients that want acknowledgements connect a DEALER socket to one of the
//! `ack_listen` endpoints (ROUTER sockets) and send the usual `[topic,
//! body]` batches; the ingest thread reads them with the peer's routing id
//! ([`Reply`]). The dispatcher gives every batch of such a peer an
//! [`AckToken`] that travels inside each processor's delivery; when the
//! last processor is done with it (written, for the store; queued or
//! dropped and counted per its overflow policy, for the others) the token
//! is dropped and the acknowledgement goes to the ingest thread, which
//! alone touches the sockets and sends it back on the same connection.
//!
//! The same token acknowledges JetStream messages ([`AckToken::call`]):
//! its hook runs when the last processor is done, so a central broker
//! acknowledges a message to the stream only after, for example, the
//! `postgres` processor has committed its records. A processor that gives
//! a delivery up in a way a redelivery can cure (its buffer full, its
//! database gone at shutdown) calls [`AckToken::refuse`]: the hook is then
//! told so, and the JetStream input asks the stream to redeliver the
//! message instead of acknowledging it.
//!
//! A batch the broker already has (same sender and instance, sequence
//! numbers already taken and not in a gap) is not delivered again, only
//! acknowledged: that is how a client's resends after a reconnect stay
//! exactly-once (see [`crate::dispatch`]).

use crossbeam_channel::{Receiver, Sender};
use distlog_core::wire::encode_ack;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where an acknowledgement goes: the ingest socket and the peer's routing
/// id on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Index of the socket in the ingest thread's list.
    pub socket: usize,
    /// The peer's ZeroMQ routing id.
    pub peer: Vec<u8>,
}

/// An acknowledgement ready to send.
pub type Outgoing = (Reply, [u8; distlog_core::wire::ACK_LEN]);

/// What runs when the last holder drops a token made by
/// [`AckToken::call`]: told whether every holder took the batch (false:
/// one of them refused it).
pub type Hook = Box<dyn FnOnce(bool) + Send>;

/// Sends its acknowledgement when the last holder drops it.
pub struct AckToken {
    reply: Option<Reply>,
    ack: [u8; distlog_core::wire::ACK_LEN],
    out: Option<Sender<Outgoing>>,
    /// Run once, at drop (a mutex only because holders on several threads
    /// share the token; it is taken once).
    call: parking_lot::Mutex<Option<Hook>>,
    refused: AtomicBool,
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken")
            .field("reply", &self.reply)
            .field("hook", &self.call.lock().is_some())
            .field("refused", &self.refused.load(Ordering::Relaxed))
            .finish()
    }
}

impl AckToken {
    /// A token for the batch of `instance` starting at `first_seq`.
    pub fn new(
        reply: Reply,
        instance: u64,
        first_seq: u64,
        count: u32,
        out: Sender<Outgoing>,
    ) -> AckToken {
        AckToken {
            reply: Some(reply),
            ack: encode_ack(instance, first_seq, count),
            out: Some(out),
            call: parking_lot::Mutex::new(None),
            refused: AtomicBool::new(false),
        }
    }

    /// A token that runs `hook` when the last holder drops it (a JetStream
    /// message's acknowledgement), with false when a holder refused it.
    pub fn call(hook: Hook) -> AckToken {
        AckToken {
            reply: None,
            ack: [0; distlog_core::wire::ACK_LEN],
            out: None,
            call: parking_lot::Mutex::new(Some(hook)),
            refused: AtomicBool::new(false),
        }
    }

    /// A holder gives the batch up in a way a redelivery can cure: the
    /// hook is told (ZeroMQ acknowledgements are sent all the same, as
    /// for every drop the processor counts).
    pub fn refuse(&self) {
        self.refused.store(true, Ordering::Release);
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if let (Some(reply), Some(out)) = (self.reply.take(), self.out.as_ref()) {
            // The ingest thread is gone only when the broker stops; the
            // client then resends what was not acknowledged.
            let _ = out.send((reply, self.ack));
        }
        if let Some(hook) = self.call.get_mut().take() {
            hook(!self.refused.load(Ordering::Acquire));
        }
    }
}

/// Sends every acknowledgement queued in `rx` on its socket (never waits:
/// a peer that went away loses its acknowledgements, and resends).
pub fn send_queued(rx: &Receiver<Outgoing>, sockets: &[zmq::Socket]) {
    while let Ok((reply, ack)) = rx.try_recv() {
        if let Some(s) = sockets.get(reply.socket) {
            let _ = s.send(&reply.peer[..], zmq::SNDMORE | zmq::DONTWAIT);
            let _ = s.send(&ack[..], zmq::DONTWAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AckToken;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_hook_runs_once_when_the_last_holder_drops_and_hears_a_refusal() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let t = Arc::new(AckToken::call(Box::new(move |ok| {
            s.lock().unwrap().push(ok)
        })));
        let held = t.clone();
        drop(t);
        assert!(seen.lock().unwrap().is_empty());
        drop(held);
        assert_eq!(*seen.lock().unwrap(), [true]);

        let s = seen.clone();
        let t = Arc::new(AckToken::call(Box::new(move |ok| {
            s.lock().unwrap().push(ok)
        })));
        t.refuse();
        drop(t);
        assert_eq!(*seen.lock().unwrap(), [true, false]);
    }
}
