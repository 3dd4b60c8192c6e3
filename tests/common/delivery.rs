//! 4 threads x 100k records: intact, each thread in order, none lost,
//! contiguous sequence numbers.

use super::{field_u64, Receiver};
use std::time::Duration;

const THREADS: u64 = 4;
const PER_THREAD: u64 = 100_000;

pub fn run(receiver: Receiver, target: &str) {
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .system('T')
        .level("trace")
        .block_when_full(true)
        .install()
        .unwrap();
    let total = THREADS * PER_THREAD;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    for i in 0..PER_THREAD {
                        distlog::info!(thread_no = t, i = i, tag = "x"; "record {} of {}", i, t);
                    }
                })
                .unwrap()
        })
        .collect();
    let mut count = 0u64;
    let batches = receiver.collect_until(Duration::from_secs(10), Duration::from_secs(120), |b| {
        count += b.last().unwrap().records.len() as u64;
        count >= total
    });
    for h in handles {
        h.join().unwrap();
    }
    assert!(distlog::flush());

    let mut next = vec![0u64; THREADS as usize];
    let mut seq = batches[0].first_seq;
    for b in &batches {
        assert_eq!(b.topic.bytes(), *b"TLR");
        assert_eq!(b.first_seq, seq, "sequence gap between batches");
        assert_eq!(b.dropped, 0);
        assert_eq!(b.sender.pid, std::process::id());
        // The one call site and each thread once per batch.
        assert_eq!(b.sites, 1, "one call site, written once per batch");
        assert!((1..=THREADS as usize).contains(&b.threads));
        seq += b.records.len() as u64;
        for r in &b.records {
            let t = field_u64(r, "thread_no").unwrap();
            let i = field_u64(r, "i").unwrap();
            assert_eq!(i, next[t as usize], "thread {t}: out of order or lost");
            next[t as usize] += 1;
            assert_eq!(r.format, "record {} of {}");
            assert_eq!(r.rendered_message(), format!("record {i} of {t}"));
            assert_eq!(r.thread_name, format!("worker-{t}"));
            assert_eq!(r.level, distlog_core::record::level::INFO);
            assert_eq!(r.target, target);
            assert!(r.file.ends_with(".rs") && r.line > 0);
            assert!(r.time_ns > 1_600_000_000_000_000_000);
        }
    }
    assert_eq!(next, vec![PER_THREAD; THREADS as usize]);
    let stats = distlog::stats();
    assert_eq!(stats.sent, total);
    assert_eq!(stats.dropped, 0);
}
