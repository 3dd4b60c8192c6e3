//! What a record costs on the wire: bytes per record, rkyv encode time and
//! validation time (bytecheck plus the hand-written checks of
//! `distlog_core::wire::access_batch`), for a batch of 400 records shaped like
//! `distlog loadgen --fields 3` (one call site with target, module, file,
//! format and thread name; two format arguments; three key/values), and
//! the same records without arguments and fields. Each row encodes twice:
//! the wire batch as the client's sender fills it (`WireBatch`, call-site
//! and thread tables, values as one tagged byte string), and the owned
//! `Batch` of `Record`s the broker and tools build (converted first).
//!
//! `cargo run --release --example wire_cost` (numbers in PERFORMANCE.md,
//! "What a record costs on the wire").

use distlog_core::record::{level, Field, Record, Value};
use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, Sender, WireBatch};
use rkyv::util::AlignedVec;
use std::hint::black_box;
use std::time::Instant;

fn batch(nokv: bool) -> Batch {
    let n = 400u64;
    Batch {
        sender: Sender {
            host: "web-1".into(),
            pid: 7,
            program: "distlog-loadgen".into(),
            start_ns: 1,
            instance: 3,
        },
        first_seq: 0,
        dropped: 0,
        records: (0..n)
            .map(|s| {
                let site = |v: &str| v.to_owned();
                Record {
                    seq: s,
                    time_ns: 1_700_000_000_000_000_000 + s,
                    level: level::INFO,
                    kind: b'L',
                    line: 97,
                    thread_id: 12345,
                    thread_name: site("loadgen-1"),
                    target: site("loadgen"),
                    module: site("distlog::loadgen"),
                    file: site("broker/src/bin/distlog/loadgen.rs"),
                    format: site("loadgen record {} of thread {}"),
                    args: if nokv {
                        vec![]
                    } else {
                        vec![Value::U64(s), Value::U64(1)]
                    },
                    fields: if nokv {
                        vec![]
                    } else {
                        vec![
                            Field {
                                key: "k0".into(),
                                value: Value::U64(s),
                            },
                            Field {
                                key: "k1".into(),
                                value: Value::Str("value".into()),
                            },
                            Field {
                                key: "k2".into(),
                                value: Value::Bool(true),
                            },
                        ]
                    },
                    ..Record::default()
                }
            })
            .collect(),
    }
}

/// Median over 9 rounds of `reps` calls of `f`, in ns per record.
fn median_ns(records: f64, mut f: impl FnMut()) -> f64 {
    let reps = 300;
    let mut rounds: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_nanos() as f64 / reps as f64 / records
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn main() {
    println!("| arguments and fields | bytes/record | encode ns/record (wire batch) | encode ns/record (owned batch) | validate ns/record |");
    println!("|---|---|---|---|---|");
    for nokv in [false, true] {
        let owned = batch(nokv);
        let wire = WireBatch::from(&owned);
        let n = owned.records.len() as f64;
        let bytes = wire.to_body();
        assert_eq!(bytes[..], encode_batch_to_vec(&owned)[..]);
        let mut out = AlignedVec::new();
        let enc = median_ns(n, || {
            out.clear();
            black_box(&wire).encode_into(&mut out);
            black_box(&out);
        });
        let enc_owned = median_ns(n, || {
            black_box(encode_batch_to_vec(black_box(&owned)));
        });
        let val = median_ns(n, || {
            black_box(access_batch(black_box(&bytes)).expect("valid batch"));
        });
        println!(
            "| {} | {:.0} | {enc:.0} | {enc_owned:.0} | {val:.0} |",
            if nokv { "none" } else { "2 + 3" },
            bytes.len() as f64 / n
        );
    }
}
