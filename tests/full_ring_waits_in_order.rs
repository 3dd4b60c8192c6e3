//! A pipeline that blocks when full, with the smallest ring (4 KiB): one
//! thread logs far more than the ring holds, with entries of varying size
//! so they wrap around the ring's end at every offset. The caller waits for
//! room instead of dropping, and every record arrives once, in order, with
//! its fields intact.
mod common;

use common::{app_records, end_marker, field_u64, Receiver};
use distlog_core::record::Value;
use std::time::Duration;

const N: u64 = 50_000;

#[test]
fn records_wait_for_room_and_arrive_in_order() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .buffer_per_thread(4096)
        .block_when_full(true)
        .install()
        .unwrap();
    let pad = "x".repeat(64);
    for i in 0..N {
        let tail = &pad[..(i % 61) as usize];
        distlog::info!(seq = i, tail = tail; "record {}", i);
    }
    end_marker();

    let batches = receiver.collect_until_end(Duration::from_secs(120));
    let records: Vec<_> = app_records(&batches).collect();
    assert_eq!(records.len() as u64, N, "every record arrives once");
    for (i, r) in records.iter().enumerate() {
        let i = i as u64;
        assert_eq!(field_u64(r, "seq"), Some(i), "in order: {r:?}");
        let tail = r.fields.iter().find(|f| f.key == "tail").map(|f| &f.value);
        let want = &pad[..(i % 61) as usize];
        assert!(
            matches!(tail, Some(Value::Str(s)) if s == want),
            "field intact: {r:?}"
        );
        assert_eq!(r.format, "record {}");
        assert_eq!(r.args, [Value::U64(i)], "argument intact: {r:?}");
    }
    assert_eq!(distlog::stats().dropped, 0, "nothing dropped");
}
