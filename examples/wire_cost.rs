//! What a record costs on the wire, and which parts cost it: bytes per
//! record, rkyv encode time and bytecheck validation time, for a batch of
//! 400 records shaped like `distlog loadgen --fields 3` (a call site with
//! target, module, file, format and thread name; two format arguments;
//! three key/values), then the same with the call-site strings left empty
//! (what a per-batch call-site table would save), without the arguments
//! and fields (what the typed values cost), without both, and a model of
//! wire format v2 (call-site and thread tables, values as one tagged byte
//! string with a hand-written check).
//!
//! `cargo run --release --example wire_cost` (numbers in PERFORMANCE.md,
//! "What a record costs on the wire").

use distlog::record::{level, Field, Record, Value};
use distlog::wire::{access_batch, encode_batch_to_vec, Batch, Sender};
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

/// The v2 idea, modelled: call-site and thread strings in per-batch
/// tables, a record's arguments and fields as one tagged byte string (the
/// ring entry's encoding: a tag byte, then 8 bytes, or a u32 length and
/// the bytes), checked by [`check_values`].
mod compact {
    use rkyv::{Archive, Serialize};

    #[derive(Archive, Serialize)]
    pub struct Site {
        pub target: String,
        pub module: String,
        pub file: String,
        pub format: String,
        pub keys: Vec<String>,
        pub line: u32,
    }

    #[derive(Archive, Serialize)]
    pub struct Record {
        pub time_ns: u64,
        pub seq: u64,
        pub level: u8,
        pub kind: u8,
        pub site: u32,
        pub thread: u32,
        pub task_n: u32,
        pub task: String,
        pub message: String,
        pub error: String,
        pub values: Vec<u8>,
    }

    #[derive(Archive, Serialize)]
    pub struct Batch {
        pub host: String,
        pub program: String,
        pub pid: u32,
        pub first_seq: u64,
        pub sites: Vec<Site>,
        pub threads: Vec<(u64, String)>,
        pub records: Vec<Record>,
    }

    /// Walks a values string: every tag known, every length in bounds,
    /// strings UTF-8.
    pub fn check_values(mut b: &[u8]) -> bool {
        while let Some((&tag, rest)) = b.split_first() {
            b = match tag {
                1..=4 if rest.len() >= 8 => &rest[8..],
                5 if rest.len() >= 4 => {
                    let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                    let Some(s) = rest.get(4..4 + n) else {
                        return false;
                    };
                    if std::str::from_utf8(s).is_err() {
                        return false;
                    }
                    &rest[4 + n..]
                }
                _ => return false,
            };
        }
        true
    }

    pub fn batch(n: u64) -> Batch {
        Batch {
            host: "web-1".into(),
            program: "distlog-loadgen".into(),
            pid: 7,
            first_seq: 0,
            sites: vec![Site {
                target: "loadgen".into(),
                module: "distlog::loadgen".into(),
                file: "broker/src/bin/distlog/loadgen.rs".into(),
                format: "loadgen record {} of thread {}".into(),
                keys: vec!["k0".into(), "k1".into(), "k2".into()],
                line: 97,
            }],
            threads: vec![(12345, "loadgen-1".into())],
            records: (0..n)
                .map(|s| {
                    let mut values = Vec::with_capacity(48);
                    for v in [s, 1, s] {
                        values.push(2);
                        values.extend_from_slice(&v.to_le_bytes());
                    }
                    values.push(5);
                    values.extend_from_slice(&5u32.to_le_bytes());
                    values.extend_from_slice(b"value");
                    values.push(3);
                    values.extend_from_slice(&1u64.to_le_bytes());
                    Record {
                        time_ns: 1_700_000_000_000_000_000 + s,
                        seq: s,
                        level: 20,
                        kind: b'L',
                        site: 1,
                        thread: 1,
                        task_n: 0,
                        task: String::new(),
                        message: String::new(),
                        error: String::new(),
                        values,
                    }
                })
                .collect(),
        }
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
    let b = compact::batch(400);
    let n = b.records.len() as f64;
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&b).expect("encodes");
    let enc = median_ns(n, || {
        black_box(rkyv::to_bytes::<rkyv::rancor::Error>(black_box(&b)).expect("encodes"));
    });
    let val = median_ns(n, || {
        let a = rkyv::access::<compact::ArchivedBatch, rkyv::rancor::Error>(black_box(&bytes))
            .expect("valid");
        assert!(a.records.iter().all(|r| compact::check_values(&r.values)));
    });
    println!(
        "| table (v2 model) | one tagged byte string | {:.0} | {enc:.0} | {val:.0} |",
        bytes.len() as f64 / n
    );
}
