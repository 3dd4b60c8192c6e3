//! Acknowledged delivery: batches handed to the broker stay in a bounded
//! resend buffer until the broker acknowledges them, and go again after a
//! reconnect.
//!
//! With [`Builder::acknowledged`](crate::Builder::acknowledged) the client
//! talks to the broker's acknowledging endpoint (`ack_listen`) with a
//! DEALER socket: batches go out as the usual `[topic, body]` messages, and
//! the broker answers each one, once its processors have taken it (the
//! store: written), with an acknowledgement on the same connection
//! (`docs/PROTOCOL.md`, "Acknowledged delivery"):
//!
//! ```text
//! ACK = "A" instance:u64le first_seq:u64le count:u32le     (21 bytes)
//! ```
//!
//! The sender keeps every batch it handed over, in order, until its
//! acknowledgement arrives. The resend buffer's size bounds everything not
//! yet acknowledged, handed over or still waiting for a connection: while
//! it is full the sender takes nothing more from the rings, which fill (the
//! usual drop, or wait with `block_when_full`). After the connection was lost and comes back, every
//! unacknowledged batch is sent again, oldest first; the broker discards
//! what it already has by (sender, instance, sequence). What is still
//! unacknowledged at shutdown is counted as dropped (`unacknowledged`).

use distlog_core::wire::Topic;
#[cfg(test)]
use distlog_core::wire::{decode_ack, encode_ack};
use std::collections::VecDeque;

/// One encoded batch and what it carries.
pub(crate) struct Queued {
    pub topic: Topic,
    pub body: Vec<u8>,
    /// The sequence number of its first record.
    pub first_seq: u64,
    /// Its records.
    pub n: u64,
    /// Already handed over once (and counted as sent then).
    pub resend: bool,
}

/// Batches handed over and not yet acknowledged, oldest first.
pub(crate) struct ResendBuffer {
    entries: VecDeque<Queued>,
    bytes: usize,
    max_bytes: usize,
}

impl ResendBuffer {
    pub(crate) fn new(max_bytes: usize) -> ResendBuffer {
        ResendBuffer {
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Whether a batch of `len` bytes may be handed over now (an empty
    /// buffer takes any one batch, so a small limit cannot stall).
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.entries.is_empty() || self.bytes + len <= self.max_bytes
    }

    pub(crate) fn push(&mut self, q: Queued) {
        self.bytes += q.body.len();
        self.entries.push_back(q);
    }

    /// Takes the batch starting at `first_seq` out; its record count.
    pub(crate) fn ack(&mut self, first_seq: u64) -> Option<u64> {
        // Acknowledgements come in order, nearly always for the oldest.
        let i = self.entries.iter().position(|q| q.first_seq == first_seq)?;
        let q = self.entries.remove(i)?;
        self.bytes -= q.body.len();
        Some(q.n)
    }

    /// Every unacknowledged batch, oldest first, marked for resending.
    pub(crate) fn take_all(&mut self) -> impl DoubleEndedIterator<Item = Queued> + '_ {
        self.bytes = 0;
        self.entries.drain(..).map(|mut q| {
            q.resend = true;
            q
        })
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records held.
    pub(crate) fn records(&self) -> u64 {
        self.entries.iter().map(|q| q.n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(first_seq: u64, len: usize) -> Queued {
        Queued {
            topic: Topic::batch(b'T', crate::record::kind::LOG),
            body: vec![0; len],
            first_seq,
            n: 10,
            resend: false,
        }
    }

    #[test]
    fn acks_round_trip_and_bad_ones_are_refused() {
        let a = encode_ack(7, 1 << 40, 2048);
        assert_eq!(decode_ack(&a), Some((7, 1 << 40, 2048)));
        assert_eq!(decode_ack(&a[..20]), None);
        let mut b = a;
        b[0] = b'B';
        assert_eq!(decode_ack(&b), None);
    }

    #[test]
    fn the_buffer_is_bounded_and_resends_in_order() {
        let mut r = ResendBuffer::new(100);
        assert!(r.has_room(1000), "an empty buffer takes one batch");
        r.push(q(0, 60));
        assert!(!r.has_room(60));
        r.push(q(10, 30));
        r.push(q(20, 10));
        assert_eq!(r.ack(10), Some(10));
        assert_eq!(r.ack(10), None, "acknowledged once");
        assert_eq!(r.records(), 20);
        let again: Vec<_> = r.take_all().collect();
        assert_eq!(
            again.iter().map(|q| q.first_seq).collect::<Vec<_>>(),
            [0, 20]
        );
        assert!(again.iter().all(|q| q.resend));
        assert!(r.is_empty() && r.has_room(100));
    }
}
