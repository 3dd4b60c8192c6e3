//! What a record costs on the wire, and which parts cost it: bytes per
//! record, rkyv encode time and bytecheck validation time, for a batch of
//! 400 records shaped like `distlog loadgen --fields 3` (a call site with
//! target, module, file, format and thread name; two format arguments;
//! three key/values), then the same with the call-site strings left empty
//! (what a per-batch call-site table would save), without the arguments
//! and fields (what the typed values cost), without both, and in wire
//! format version 2 (`distlog::wire_v2`: call-site and thread tables,
//! values as one tagged byte string with a hand-written check).
//!
//! `cargo run --release --example wire_cost` (numbers in PERFORMANCE.md,
//! "What a record costs on the wire").

use distlog::record::{level, Field, Record, Value};
use distlog::wire::{access_batch, encode_batch_to_vec, Batch, Sender};
use distlog::wire_v2;
use rkyv::util::AlignedVec;
use std::hint::black_box;
use std::time::Instant;

fn batch(strip: bool, nokv: bool) -> Batch {
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
                let site = |v: &str| if strip { String::new() } else { v.to_owned() };
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
    println!("| call-site strings | arguments and fields | bytes/record | encode ns/record | validate ns/record |");
    println!("|---|---|---|---|---|");
    for (strip, nokv) in [(false, false), (true, false), (false, true), (true, true)] {
        let b = batch(strip, nokv);
        let n = b.records.len() as f64;
        let bytes = encode_batch_to_vec(&b);
        let enc = median_ns(n, || {
            black_box(encode_batch_to_vec(black_box(&b)));
        });
        let val = median_ns(n, || {
            black_box(access_batch(black_box(&bytes)).expect("valid batch"));
        });
        println!(
            "| {} | {} | {:.0} | {enc:.0} | {val:.0} |",
            if strip { "empty" } else { "inline" },
            if nokv { "none" } else { "2 + 3" },
            bytes.len() as f64 / n
        );
    }
    // The same records in wire format version 2: the call site and thread
    // in the batch's tables, arguments and fields as one tagged byte string.
    let b = wire_v2::BatchV2::from(&batch(false, false));
    let n = b.records.len() as f64;
    let bytes = wire_v2::encode_batch_to_vec(&b);
    let enc = median_ns(n, || {
        let mut out = AlignedVec::new();
        wire_v2::encode_batch(black_box(&b), &mut out);
        black_box(out);
    });
    let val = median_ns(n, || {
        black_box(wire_v2::access_batch(black_box(&bytes)).expect("valid batch"));
    });
    println!(
        "| version 2: tables | one tagged byte string, checked | {:.0} | {enc:.0} | {val:.0} |",
        bytes.len() as f64 / n
    );
}
