//! Log calls in fixed amounts, for instruction counts under callgrind:
//! repeatable on a busy machine, where timings are not. Each case is one
//! `#[inline(never)]` function making a burst of 20 calls, run 1,000
//! times and counted alone with `--toggle-collect`; the ring is large
//! enough that no call waits or drops, and a receiver checks that every
//! record arrived. The file uses only the public API, so the same file
//! builds against an older commit for an A/B.
//!
//! ```text
//! cargo build --profile bench --example log_call_instr
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     --toggle-collect='log_call_instr::measured_*' target/release/examples/log_call_instr
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep measured_
//! ```
//!
//! Cases: the native macro and the `log` facade with 3 key/values and one
//! formatted argument (`*_3kv`), with three formatted arguments
//! (`*_3args`), with none (`*_0kv`), and the facade with a plain literal
//! (`facade_literal`). Per call = count / 20,000.
//!
//! `floor_*`: the same `log` calls into `FmtFloor` (`tests/common/log_floor.rs`), a `log::Log` that
//! only formats the record's arguments into a stack buffer and counts the
//! record (no clock, no ring, no send): what any logger behind `log` pays
//! on stable Rust before it does anything with the record. The calls go
//! through the `log` macros' `logger:` form, the same expansion as the
//! global logger's (level check, `Record` built, one dynamic call) but for
//! `log::logger()`'s two loads.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "../tests/common/record_counter.rs"]
mod record_counter;

const BURSTS: u64 = 1_000;
const BURST: u64 = 20;

#[path = "../tests/common/log_floor.rs"]
mod log_floor;

use log_floor::{log_floor as floor, FLOOR_RECORDS};

#[inline(never)]
fn measured_native_3kv(start: u64) {
    for i in start..start + BURST {
        distlog::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i);
    }
}

#[inline(never)]
fn measured_native_3args(start: u64) {
    for i in start..start + BURST {
        distlog::info!("request {} done {} {}", i, true, "10.0.0.7");
    }
}

#[inline(never)]
fn measured_native_0kv(start: u64) {
    for i in start..start + BURST {
        distlog::info!("request {} done", i);
    }
}

#[inline(never)]
fn measured_facade_3kv(start: u64) {
    for i in start..start + BURST {
        log::info!(user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i);
    }
}

#[inline(never)]
fn measured_facade_3args(start: u64) {
    for i in start..start + BURST {
        log::info!("request {} done {} {}", i, true, "10.0.0.7");
    }
}

#[inline(never)]
fn measured_facade_0kv(start: u64) {
    for i in start..start + BURST {
        log::info!("request {} done", i);
    }
}

#[inline(never)]
fn measured_facade_literal(start: u64) {
    for _ in start..start + BURST {
        log::info!("request done");
    }
}

#[inline(never)]
fn measured_floor_3kv(start: u64) {
    for i in start..start + BURST {
        log::info!(logger: floor(), user_id = i, ok = true, peer = "10.0.0.7"; "request {} done", i);
    }
}

#[inline(never)]
fn measured_floor_3args(start: u64) {
    for i in start..start + BURST {
        log::info!(logger: floor(), "request {} done {} {}", i, true, "10.0.0.7");
    }
}

#[inline(never)]
fn measured_floor_0kv(start: u64) {
    for i in start..start + BURST {
        log::info!(logger: floor(), "request {} done", i);
    }
}

#[inline(never)]
fn measured_floor_literal(start: u64) {
    for _ in start..start + BURST {
        log::info!(logger: floor(), "request done");
    }
}

fn main() {
    let (endpoint, received) = record_counter::spawn();
    let _guard = distlog::builder()
        .endpoint(endpoint)
        .level("info")
        .buffer_per_thread(64 << 20)
        .max_memory(128 << 20)
        .install()
        .unwrap();
    // The thread's first call sets up its ring: not measured.
    distlog::info!("warm up");
    let cases: [fn(u64); 7] = [
        measured_native_3kv,
        measured_native_3args,
        measured_native_0kv,
        measured_facade_3kv,
        measured_facade_3args,
        measured_facade_0kv,
        measured_facade_literal,
    ];
    let floors: [fn(u64); 4] = [
        measured_floor_3kv,
        measured_floor_3args,
        measured_floor_0kv,
        measured_floor_literal,
    ];
    for case in floors {
        for b in 0..BURSTS {
            case(b * BURST);
        }
    }
    let floor_want = floors.len() as u64 * BURSTS * BURST;
    assert_eq!(
        FLOOR_RECORDS.load(Ordering::Relaxed),
        floor_want,
        "the floor saw every record"
    );
    for case in cases {
        for b in 0..BURSTS {
            case(b * BURST);
        }
        assert!(distlog::flush_timeout(Duration::from_secs(60)));
    }
    let want = cases.len() as u64 * BURSTS * BURST + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = received.load(Ordering::Relaxed);
    assert_eq!(got, want, "every record delivered");
    assert_eq!(distlog::stats().dropped, 0);
    println!("ok: {got} records delivered, {floor_want} formatted by the floor");
}
