//! Times [`DirectBatch::push`] and [`DirectBatch::seal_into`] on records
//! shaped like `distlog loadgen --fields 3`'s (a deferred message, no task
//! or error, two format arguments and three fields: 43 bytes of values),
//! 764 to a batch (the batches loadgen's sender seals), to A/B the direct
//! encoder in time, which callgrind's instruction counts do not show
//! (store-forwarding stalls, page faults).
//!
//! ```sh
//! cargo build --release -p distlog-core --example direct_push
//! target/release/examples/direct_push [rounds]   # default 2000 batches
//! ```
//!
//! Prints the fastest and the median round, in ns per record, for pushing
//! and for sealing; `measured_*` functions are the callgrind toggles.

use distlog_core::wire::{tag, DirectBatch, RecordHead, Sender};
use std::hint::black_box;
use std::time::Instant;

/// Records per batch.
const PER_BATCH: usize = 764;

/// Values as the client's producer writes loadgen's: u64 argument, u64
/// argument, u64 field, string field, bool field.
fn values() -> Vec<u8> {
    let mut v = Vec::new();
    for x in [123_456u64, 1] {
        v.push(tag::U64);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.push(tag::U64);
    v.extend_from_slice(&123_456u64.to_le_bytes());
    v.push(tag::STR);
    v.extend_from_slice(&5u32.to_le_bytes());
    v.extend_from_slice(b"value");
    v.push(tag::BOOL);
    v.push(1);
    v
}

#[inline(never)]
fn measured_push(batch: &mut DirectBatch, values: &[u8], t0: u64) {
    for i in 0..PER_BATCH {
        let head = RecordHead {
            time_ns: t0 + i as u64,
            level: 20,
            kind: 0,
            site: 0,
            thread: (i & 1) as u32,
            ..RecordHead::default()
        };
        let own = batch.push(&head, "", "", "", |out| {
            out.extend_from_slice(black_box(values));
            Some(())
        });
        black_box(own);
    }
}

#[inline(never)]
fn measured_seal(batch: &mut DirectBatch, seq: u64, out: &mut Vec<u8>) {
    out.clear();
    batch.seal_into(seq, 0, out, 256 * 1024);
    black_box(&out[..]);
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let values = values();
    let mut batch = DirectBatch::new(Sender {
        host: "bench-host".into(),
        pid: 1,
        program: "direct_push".into(),
        start_ns: 1,
        instance: 7,
    });
    let mut out = Vec::with_capacity(256 * 1024);
    let (mut push, mut seal) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        batch.sites.push(distlog_core::wire::Site {
            target: "loadgen".into(),
            format: "loadgen record {} of thread {}".into(),
            args: 2,
            keys: vec!["k0".into(), "k1".into(), "k2".into()],
            ..Default::default()
        });
        for t in 0..2 {
            batch.threads.push(distlog_core::wire::Thread {
                id: t,
                name: format!("worker-{t}"),
            });
        }
        let a = Instant::now();
        measured_push(&mut batch, &values, r as u64 * 1000);
        let b = Instant::now();
        measured_seal(&mut batch, (r * PER_BATCH) as u64, &mut out);
        let c = Instant::now();
        push.push((b - a).as_nanos() as f64 / PER_BATCH as f64);
        seal.push((c - b).as_nanos() as f64 / PER_BATCH as f64);
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "push ns/record min {:.2} median {:.2}; seal ns/record min {:.2} median {:.2}; body {} bytes",
        min(&push),
        median(&mut push),
        min(&seal),
        median(&mut seal),
        out.len()
    );
}
