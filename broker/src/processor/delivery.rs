//! What the router hands a processor: a validated batch, shared by every
//! processor it goes to, and which of its records matched.

use distlog_core::record::Record;
use distlog_core::view::RecordRef;
use distlog_core::wire::{Batch, OwnedBatch, Topic};
use rkyv::rancor;
use std::borrow::Cow;
use std::sync::Arc;

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

fn encode_run(sender: &distlog_core::wire::Sender, dropped: u64, run: &mut Vec<Record>) -> Vec<u8> {
    let records = std::mem::take(run);
    let batch = Batch {
        sender: sender.clone(),
        first_seq: records[0].seq,
        dropped,
        records,
    };
    distlog_core::wire::encode_batch_to_vec(&batch).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog_core::wire::Sender as WireSender;

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
        Arc::new(OwnedBatch::from_body(&distlog_core::wire::encode_batch_to_vec(&b)).unwrap())
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
