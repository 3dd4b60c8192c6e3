//! Hot paths in fixed amounts, for instruction counts under callgrind:
//! repeatable on a busy machine, where criterion's times are not. Each
//! measured part is one `#[inline(never)]` function, counted alone with
//! `--toggle-collect`:
//!
//! ```text
//! cargo build --profile bench -p distlogd --example instr_count
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     --toggle-collect='instr_count::measured_*' target/release/examples/instr_count
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep measured_
//! ```
//!
//! - `measured_native_3kv` / `measured_native_0kv`: 20 native log calls (a
//!   burst, as the `log_call` bench times them), 1,000 bursts; the ring is
//!   large enough that no call waits or drops, and a receiver counts that
//!   every record arrived.
//! - `measured_filter`: the `filter_vm` bench's three-clause filter over a
//!   512-record batch, 100 passes.
//! - `measured_decode_route`: validating and routing one 512-record batch
//!   with three rules (the `pipeline` bench's `three_rules`), 100 times.
//! - `measured_decode_contains`: the `benches/peers/rsyslog.sh` workload's
//!   worker step: one 512-record batch of 128-byte records as `peers-send`
//!   makes them (one site, a 60-byte plain message with `marker` in it),
//!   validated and routed by `message contains "marker"` to a store, 100
//!   times; the ZeroMQ messages are made outside the measured part (the
//!   I/O thread makes them in the broker).
//! - `measured_rules_1` / `_10` / `_100` / `_1000`: validating and routing
//!   the `measured_decode_route` batch (two call sites interleaved, two
//!   targets) with 1 / 10 / 100 / 1,000 rules of the `pipeline` bench's
//!   mix (`many_rules`), 100 times each; 10 rules on are one `FilterSet`.
//! - `measured_rules_1_one_site` / `_100_one_site`: the same with 1 and
//!   100 rules on the `pipeline` bench's `decode_route` batch (one call
//!   site, three fields: `route_batch`), as that bench measures them.

use distlog_core::record::{level, Field, Record, Value};
use distlog_core::wire::{
    access_batch, encode_batch_to_vec, Batch, BatchRef, Sender, Site, Thread, WireBatch, WireRecord,
};
use distlog_filter::{Filter, RecordView};
use distlogd::config::Config;
use distlogd::ingest::{decode, Decoded};
use distlogd::rules::RuleSet;
use std::hint::black_box;
use std::sync::Arc;

#[path = "../benches/common/many_rules.rs"]
mod many_rules;
use many_rules::many_rules;
#[path = "../benches/common/route_batch.rs"]
mod route_batch;

const BURSTS: u64 = 1_000;
const BURST: u64 = 20;
const PASSES: usize = 100;
const PER_BATCH: u64 = 512;

#[inline(never)]
fn measured_native_3kv(start: u64) {
    for i in start..start + BURST {
        distlog::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i);
    }
}

#[inline(never)]
fn measured_native_0kv(start: u64) {
    for i in start..start + BURST {
        distlog::info!("request {} done", i);
    }
}

#[inline(never)]
fn measured_filter(f: &Filter, batch: BatchRef<'_>) -> usize {
    let sender = batch.sender();
    batch
        .records()
        .filter(|r| f.matches(&RecordView::new(b'P', sender, *r)))
        .count()
}

#[inline(never)]
fn measured_decode_route(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    decode(
        frames.iter().map(|f| zmq::Message::from(&f[..])).collect(),
        rules,
    )
}

/// `measured_decode_route`'s body, for the `measured_rules_*` (a measured
/// function must not call another: the toggle would switch off inside).
#[inline(always)]
fn decode_frames(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    let d = decode(
        frames.iter().map(|f| zmq::Message::from(&f[..])).collect(),
        rules,
    );
    // Not a tail call, which callgrind's toggle would not see.
    black_box(());
    d
}

// One function per rule count, so `--toggle-collect` tells them apart.
#[inline(never)]
fn measured_rules_1(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    // Not folded into one function with the others.
    black_box(1u32);
    decode_frames(frames, rules)
}

#[inline(never)]
fn measured_rules_10(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    // Not folded into one function with the others.
    black_box(10u32);
    decode_frames(frames, rules)
}

#[inline(never)]
fn measured_rules_100(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    // Not folded into one function with the others.
    black_box(100u32);
    decode_frames(frames, rules)
}

#[inline(never)]
fn measured_rules_1000(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    // Not folded into one function with the others.
    black_box(1000u32);
    decode_frames(frames, rules)
}

#[inline(never)]
fn measured_rules_1_one_site(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    // Not folded into one function with the others.
    black_box(11u32);
    decode_frames(frames, rules)
}

#[inline(never)]
fn measured_rules_100_one_site(frames: &[Vec<u8>], rules: &Arc<RuleSet>) -> Decoded {
    // Not folded into one function with the others.
    black_box(1001u32);
    decode_frames(frames, rules)
}

#[inline(never)]
fn measured_decode_contains(frames: Vec<zmq::Message>, rules: &Arc<RuleSet>) -> Decoded {
    let d = decode(frames, rules);
    // Not a tail call, which callgrind's toggle would not see.
    black_box(());
    d
}

/// A batch as `peers-send` makes it for `rsyslog.sh`: 512 records whose
/// archived form takes 128 bytes each, a 60-byte message with `marker`.
fn peers_batch() -> Vec<u8> {
    let b = WireBatch {
        sender: Sender {
            host: "bench-0".into(),
            pid: 1000,
            program: "peers-send".into(),
            start_ns: 1,
            instance: 0x5eed_0001,
        },
        first_seq: 0,
        dropped: 0,
        sites: vec![Site {
            target: "peers".into(),
            module: "peers_send".into(),
            file: "peers_send.rs".into(),
            ..Site::default()
        }],
        threads: vec![Thread {
            id: 0,
            name: "send".into(),
        }],
        records: (0..PER_BATCH)
            .map(|i| {
                let mut m = format!("conn 0 record {i:012} marker ");
                while m.len() < 60 {
                    m.push('x');
                }
                WireRecord {
                    time_ns: 1_700_000_000_000_000_000 + i,
                    seq: i,
                    level: 20,
                    kind: b'L',
                    message: m,
                    ..WireRecord::default()
                }
            })
            .collect(),
    };
    b.to_body().to_vec()
}

const CONTAINS: &str = r#"
processors:
  store: { type: store }
rules:
  - name: marker
    filter: message contains "marker"
    processors: [store]
default: []
"#;

fn batch() -> Vec<u8> {
    let records = (0..PER_BATCH)
        .map(|s| Record {
            seq: s,
            time_ns: 1_700_000_000_000_000_000 + s,
            level: [level::INFO, level::WARN, level::ERROR, level::DEBUG][(s % 4) as usize],
            kind: b'L',
            target: if s % 3 == 0 { "db::pool" } else { "http" }.into(),
            module: "bench".into(),
            file: "bench.rs".into(),
            line: 42,
            format: if s % 5 == 0 {
                "timeout after {} ms"
            } else {
                "served {} in {} ms"
            }
            .into(),
            args: vec![Value::Str("/home".into()), Value::F64(3.5)],
            fields: vec![
                Field {
                    key: "user_id".into(),
                    value: Value::U64(s),
                },
                Field {
                    key: "route".into(),
                    value: Value::Str("/orders".into()),
                },
            ],
            ..Record::default()
        })
        .collect();
    let b = Batch {
        sender: Sender {
            host: "web-1".into(),
            pid: 7,
            program: "bench".into(),
            start_ns: 1,
            instance: 3,
        },
        first_seq: 0,
        dropped: 0,
        records,
    };
    encode_batch_to_vec(&b).to_vec()
}

const RULES: &str = r#"
processors:
  store: { type: store }
  errors: { type: console }
  db: { type: console }
rules:
  - filter: level >= error
    processors: [errors, store]
  - filter: target starts_with "db::" and level >= warn
    processors: [db]
  - filter: level >= info and target == "http" and field.user_id > 100
    processors: [store]
"#;

fn main() {
    // Log calls, into a receiver that counts them.
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut n = 0u64;
        while n < 2 * BURSTS * BURST + 1 {
            let frames = pull.recv_multipart(0).unwrap();
            n += access_batch(&frames[1]).unwrap().records().count() as u64;
        }
        n
    });
    let guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .buffer_per_thread(64 << 20)
        .install()
        .unwrap();
    // The thread's first call sets up its ring: not measured.
    distlog::info!("warm up");
    for b in 0..BURSTS {
        measured_native_3kv(b * BURST);
    }
    for b in 0..BURSTS {
        measured_native_0kv(b * BURST);
    }
    distlog::flush();
    drop(guard);
    assert_eq!(receiver.join().unwrap(), 2 * BURSTS * BURST + 1);

    // The filter VM.
    let bytes = batch();
    let archived = access_batch(&bytes).unwrap();
    let filter: Filter =
        r#"level >= warn and target starts_with "db::" and message contains "timeout""#
            .parse()
            .unwrap();
    let mut hits = 0;
    for _ in 0..PASSES {
        hits += measured_filter(black_box(&filter), archived);
    }
    assert!(hits > 0);

    // Validate and route.
    let frames = [b"PLR".to_vec(), bytes.clone()];
    let rules = Arc::new(RuleSet::new(&Config::parse(RULES).unwrap(), 1).unwrap());
    for _ in 0..PASSES {
        match measured_decode_route(black_box(&frames), &rules) {
            Decoded::Batch { routed, .. } => assert!(!routed.routes.is_empty()),
            Decoded::Rejected(r) => panic!("rejected: {r}"),
        }
    }

    // 1 to 1,000 rules.
    type Measured = fn(&[Vec<u8>], &Arc<RuleSet>) -> Decoded;
    let one_site = [b"PLR".to_vec(), route_batch::batch(0)];
    let cases: [(usize, Measured, &[Vec<u8>]); 6] = [
        (1, measured_rules_1, &frames),
        (10, measured_rules_10, &frames),
        (100, measured_rules_100, &frames),
        (1000, measured_rules_1000, &frames),
        (1, measured_rules_1_one_site, &one_site),
        (100, measured_rules_100_one_site, &one_site),
    ];
    for (n, measured, frames) in cases {
        let rules = Arc::new(RuleSet::new(&Config::parse(&many_rules(n)).unwrap(), 1).unwrap());
        for _ in 0..PASSES {
            match measured(black_box(frames), &rules) {
                Decoded::Batch { routed, .. } => assert!(!routed.routes.is_empty()),
                Decoded::Rejected(r) => panic!("rejected: {r}"),
            }
        }
    }

    // The rsyslog workload's worker step.
    let body = peers_batch();
    let rules = Arc::new(RuleSet::new(&Config::parse(CONTAINS).unwrap(), 1).unwrap());
    for _ in 0..PASSES {
        let frames = vec![
            zmq::Message::from(&b"TLR"[..]),
            zmq::Message::from(&body[..]),
        ];
        match measured_decode_contains(black_box(frames), &rules) {
            Decoded::Batch { routed, .. } => assert_eq!(routed.rule_hits, [PER_BATCH as u32]),
            Decoded::Rejected(r) => panic!("rejected: {r}"),
        }
    }
    println!("ok: {} log calls, {hits} filter hits", 2 * BURSTS * BURST);
}
