//! Drop-when-full mode with `grow_when_full`, the smallest ring (4 KiB) and
//! room for more rings within `max_memory`: one thread logs far more than its
//! ring holds, faster than the sender drains it, so the ring fills and the
//! thread continues in a second ring (and a third...). Every record either
//! arrives or is counted dropped, and those that arrive do so once, in the
//! order they were logged, intact: the sender reads a continuing ring only
//! after the full one it follows.
mod common;

use common::{app_records, end_marker, field_u64, Receiver};
use distlog_core::record::Value;
use std::time::Duration;

const N: u64 = 50_000;

#[test]
fn full_ring_continues_in_a_second_ring_in_order() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .buffer_per_thread(4096)
        .max_memory(64 * 4096)
        .grow_when_full(true)
        .install()
        .unwrap();
    let pad = "x".repeat(64);
    for i in 0..N {
        let tail = &pad[..(i % 61) as usize];
        distlog::info!(seq = i, tail = tail; "record {}", i);
        log::info!(seq = i; "facade {}", i);
    }
    end_marker();

    let batches = receiver.collect_until_end(Duration::from_secs(120));
    let records: Vec<_> = app_records(&batches).collect();
    let mut last: [Option<u64>; 2] = [None, None];
    for r in &records {
        let seq = field_u64(r, "seq").expect("seq");
        let message = r.rendered_message();
        let which = usize::from(message.starts_with("facade "));
        assert!(
            last[which].map_or(true, |l| seq > l),
            "in order, once: {seq} after {:?}",
            last[which]
        );
        last[which] = Some(seq);
        if which == 0 {
            let tail = r.fields.iter().find(|f| f.key == "tail").map(|f| &f.value);
            let want = &pad[..(seq % 61) as usize];
            assert!(
                matches!(tail, Some(Value::Str(s)) if s == want),
                "field intact: {r:?}"
            );
            assert_eq!(r.format, "record {}");
            assert_eq!(r.args, [Value::U64(seq)], "argument intact: {r:?}");
        } else {
            assert_eq!(message, format!("facade {seq}"), "message intact");
        }
    }
    let stats = distlog::stats();
    assert!(
        stats.rings_grown > 0,
        "the ring filled and continued: {stats:?}"
    );
    let dropped = stats.dropped;
    assert_eq!(
        records.len() as u64 + dropped,
        2 * N,
        "every record arrives or is counted dropped"
    );
}
