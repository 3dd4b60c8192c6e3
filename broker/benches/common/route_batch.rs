//! The batch the broker's routing benches share (`benches/pipeline.rs`'s
//! `decode_route/*` and `examples/instr_count.rs`'s `measured_*_one_site`),
//! included by `#[path]`: 512 records of one call site and one format,
//! three fields each (`user_id` differs on every record), mixed levels and
//! targets.

use distlog_core::record::{level, Field, Record, Value};
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};

/// Records per batch.
pub const PER_BATCH: u64 = 512;

/// The batch of records `first..first + PER_BATCH`, encoded.
pub fn batch(first: u64) -> Vec<u8> {
    let b = Batch {
        sender: Sender {
            host: "web-1".into(),
            pid: 7,
            program: "bench".into(),
            start_ns: 1,
            instance: 3,
        },
        first_seq: first,
        dropped: 0,
        records: (first..first + PER_BATCH)
            .map(|s| Record {
                seq: s,
                time_ns: 1_700_000_000_000_000_000 + s,
                level: [level::INFO, level::WARN, level::ERROR, level::DEBUG][(s % 4) as usize],
                kind: b'L',
                target: if s % 3 == 0 { "db::pool" } else { "http" }.into(),
                module: "bench".into(),
                file: "bench.rs".into(),
                line: 42,
                format: "served {} in {} ms".into(),
                args: vec![Value::Str("/home".into()), Value::F64(3.5)],
                fields: vec![
                    Field {
                        key: "user_id".into(),
                        value: Value::U64(s),
                    },
                    Field {
                        key: "ok".into(),
                        value: Value::Bool(true),
                    },
                    Field {
                        key: "route".into(),
                        value: Value::Str("/orders".into()),
                    },
                ],
                ..Record::default()
            })
            .collect(),
    };
    encode_batch_to_vec(&b).to_vec()
}
