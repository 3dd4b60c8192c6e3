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
//! A batch the broker already has (same sender and instance, sequence
//! numbers already taken and not in a gap) is not delivered again, only
//! acknowledged: that is how a client's resends after a reconnect stay
//! exactly-once (see [`crate::dispatch`]).

use crossbeam_channel::{Receiver, Sender};
use distlog_core::wire::encode_ack;

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

/// Sends its acknowledgement when the last holder drops it.
#[derive(Debug)]
pub struct AckToken {
    reply: Option<Reply>,
    ack: [u8; distlog_core::wire::ACK_LEN],
    out: Sender<Outgoing>,
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
            out,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            // The ingest thread is gone only when the broker stops; the
            // client then resends what was not acknowledged.
            let _ = self.out.send((reply, self.ack));
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
