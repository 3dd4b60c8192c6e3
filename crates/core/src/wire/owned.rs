//! A validated batch that owns its bytes, for receivers that keep a batch
//! past the call that received it (the broker's queues, the store).

use super::batch::ArchivedWireBatch;
use super::frame::{WireError, PREFIX_LEN};
use super::validate::{access_batch, BatchRef};
use rkyv::util::AlignedVec;
use std::fmt;

/// A validated batch that owns its (aligned) bytes.
pub struct OwnedBatch {
    bytes: Bytes,
}

/// Where an [`OwnedBatch`]'s bytes live.
enum Bytes {
    /// Our own aligned copy.
    Aligned(AlignedVec),
    /// ZeroMQ's buffer, read in place: 8-aligned, on the heap (not inside
    /// the `zmq_msg_t`), so it neither moves nor changes while we hold it.
    Zmq(zmq::Message),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Aligned(v) => v,
            Bytes::Zmq(m) => m,
        }
    }
}

impl OwnedBatch {
    /// Copies `body` into an aligned buffer and validates it.
    pub fn from_body(body: &[u8]) -> Result<OwnedBatch, WireError> {
        let mut bytes = AlignedVec::with_capacity(body.len());
        bytes.extend_from_slice(body);
        Self::from_aligned(bytes)
    }

    /// Validates an already aligned body.
    pub fn from_aligned(bytes: AlignedVec) -> Result<OwnedBatch, WireError> {
        access_batch(&bytes)?;
        Ok(OwnedBatch {
            bytes: Bytes::Aligned(bytes),
        })
    }

    /// Validates a body received from ZeroMQ, in place when ZeroMQ's buffer
    /// allows it (large messages usually do: 8-aligned heap memory), else
    /// through an aligned copy. Saves the broker a copy of every batch.
    pub fn from_message(msg: zmq::Message) -> Result<OwnedBatch, WireError> {
        let data = msg.as_ptr() as usize;
        let own = &msg as *const zmq::Message as usize;
        // Small messages live inside the `zmq_msg_t` and move with it.
        let inline = data >= own && data < own + std::mem::size_of::<zmq::Message>();
        if inline || msg.len() <= 64 || data % 8 != 0 {
            return Self::from_body(&msg);
        }
        access_batch(&msg)?;
        Ok(OwnedBatch {
            bytes: Bytes::Zmq(msg),
        })
    }

    /// The validated batch, read in place.
    pub fn get(&self) -> BatchRef<'_> {
        // SAFETY: `bytes` passed `access_batch` (prefix checks, bytecheck
        // validation, every site, thread and value check) in the
        // constructor and is never mutated afterwards; a ZeroMQ buffer is
        // kept only when it lives outside the message struct, so it is at
        // the same address it was validated at.
        unsafe { rkyv::access_unchecked::<ArchivedWireBatch>(&self.bytes[PREFIX_LEN..]) }
    }

    /// The encoded body, exactly as received.
    pub fn body(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for OwnedBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedBatch")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::wire::{encode_batch_to_vec, Batch};

    fn sample(n: u64) -> AlignedVec {
        encode_batch_to_vec(&Batch {
            first_seq: 100,
            records: (0..n)
                .map(|i| Record {
                    seq: 100 + i,
                    message: format!("record {i}"),
                    ..Record::default()
                })
                .collect(),
            ..Batch::default()
        })
    }

    #[test]
    fn owned_batch_copies_unaligned_input() {
        let bytes = sample(1);
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        let owned = OwnedBatch::from_body(&shifted[1..]).unwrap();
        assert_eq!(owned.get().len(), 1);
    }

    #[test]
    fn owned_batch_from_zmq_messages_in_place_or_copied() {
        let bytes = sample(3);
        // A Vec's heap buffer, handed to ZeroMQ without a copy: aligned, so
        // it is read in place.
        let msg = zmq::Message::from(bytes.to_vec());
        let owned = OwnedBatch::from_message(msg).unwrap();
        assert!(matches!(owned.bytes, Bytes::Zmq(_)));
        let moved = std::sync::Arc::new(owned);
        assert_eq!(moved.get().len(), 3);
        assert_eq!(moved.body(), &bytes[..]);
        // A message small enough to live inside the zmq_msg_t is copied
        // (and this one is too short to be a batch).
        let small = zmq::Message::from(&bytes[..20]);
        assert!(OwnedBatch::from_message(small).is_err());
        // Bad bytes are rejected either way.
        let mut bad = bytes.to_vec();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&[0xff; 4]);
        assert!(OwnedBatch::from_message(zmq::Message::from(bad)).is_err());
    }
}
