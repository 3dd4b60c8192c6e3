//! Writes a store of plain (not deferred) records: the shape of `distlog
//! loadgen --threads 2 --fields 3` (target `loadgen`, fields `k0` = the
//! record's number, `k1 = "value"`, `k2 = true`), but with the message as
//! text, `loadgen record <i> of thread <t>`, as a Python client sends it,
//! instead of a format string plus arguments. `benches/query_vs_grep.sh`
//! times `distlog query` on both kinds.
//!
//! ```text
//! cargo run --release -p distlogd --example plain_store -- DIR [RECORDS]
//! ```
//!
//! Records go straight into the segment files (`distlogd::store::Writer`),
//! in batches of 512 records of one thread, the two threads alternating;
//! RECORDS (default 3,000,000) is split evenly between them.

use distlog_core::record::{level, Field, Record, Value};
use distlog_core::wire::{encode_batch_to_vec, Batch, Sender};
use distlogd::store::Writer;
use std::path::PathBuf;

const PER_BATCH: u64 = 512;
const THREADS: u64 = 2;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: plain_store DIR [RECORDS]");
        std::process::exit(2);
    };
    let records: u64 = match args.next().map(|n| n.parse()) {
        None => 3_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("plain_store: RECORDS must be a number: {e}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&dir)?;
    let mut w = Writer::open(&dir, 64 << 20)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let per_thread = records / THREADS;
    // Each record 100 ns after the one before, ending now.
    let t0 = now.saturating_sub(records * 100);
    let mut next = [0u64; THREADS as usize];
    let mut written = 0u64;
    while written < per_thread * THREADS {
        for t in 0..THREADS {
            let first = next[t as usize];
            let end = (first + PER_BATCH).min(per_thread);
            if first >= end {
                continue;
            }
            let batch = Batch {
                sender: Sender {
                    host: "bench-host".into(),
                    pid: 4242,
                    program: "plain_store".into(),
                    start_ns: t0,
                    instance: 1,
                },
                first_seq: first,
                dropped: 0,
                records: (first..end)
                    .map(|i| Record {
                        time_ns: t0 + (i * THREADS + t) * 100,
                        seq: i,
                        level: level::INFO,
                        kind: b'L',
                        line: 131,
                        thread_id: 1000 + t,
                        thread_name: format!("loadgen-{t}"),
                        target: "loadgen".into(),
                        module: "plain_store".into(),
                        file: "broker/examples/plain_store.rs".into(),
                        message: format!("loadgen record {i} of thread {t}"),
                        fields: vec![
                            Field {
                                key: "k0".into(),
                                value: Value::U64(i),
                            },
                            Field {
                                key: "k1".into(),
                                value: Value::Str("value".into()),
                            },
                            Field {
                                key: "k2".into(),
                                value: Value::Bool(true),
                            },
                        ],
                        ..Record::default()
                    })
                    .collect(),
            };
            w.append(*b"PLR", &encode_batch_to_vec(&batch))?;
            written += end - first;
            next[t as usize] = end;
        }
    }
    w.sync()?;
    println!("{written} plain records in {}", dir.display());
    Ok(())
}
