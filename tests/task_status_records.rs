//! Task start and end records, now written in the native encoding, look as
//! they did: the caller's file and line, target `task`, the message stored
//! (not deferred), typed `task_status` and `duration_ns` (measured from the
//! records' own timestamps), a failure's error formatted from `Display`.
mod common;

use common::{app_records, field_u64, Receiver};
use distlog_core::record::{level, Record, Value};
use std::time::Duration;

struct Code(u32);

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error code {} (é)", self.0)
    }
}

#[test]
fn status_records_carry_location_message_duration_and_error() {
    let receiver = Receiver::tcp();
    let _guard = distlog::builder()
        .endpoint(receiver.endpoint.clone())
        .level("info")
        .block_when_full(true)
        .install()
        .unwrap();

    let line = line!() + 1;
    let slow = distlog::to("slow step", &[("user", &7u64)]);
    std::thread::sleep(Duration::from_millis(20));
    slow.success(String::from("slow done"));
    let failing = distlog::task("failing", &[]);
    failing.fail(Code(42));
    assert!(distlog::flush());

    let batches =
        receiver.collect_until(Duration::from_secs(2), Duration::from_secs(30), |_| false);
    let recs: Vec<&Record> = app_records(&batches).collect();
    assert_eq!(recs.len(), 4);
    for r in &recs[..2] {
        assert_eq!(r.file, file!());
        assert_eq!(r.line, line);
        assert_eq!(r.target, "task");
        assert!(r.format.is_empty() && r.args.is_empty());
        assert_eq!(r.fields.last().map(|f| &f.key[..]), Some("user"));
    }
    assert_eq!(recs[0].message, "slow step");
    assert_eq!(recs[0].fields[0].value, Value::Str("started".into()));
    assert_eq!(recs[1].message, "slow done");
    assert_eq!(recs[1].level, level::INFO);
    let d = field_u64(recs[1], "duration_ns").unwrap();
    assert!(
        (20_000_000..5_000_000_000).contains(&d),
        "duration {d} ns for a 20 ms sleep"
    );
    let wall = recs[1].time_ns - recs[0].time_ns;
    assert!(
        d.abs_diff(wall) < 1_000_000,
        "duration {d} vs timestamps {wall}"
    );
    assert_eq!(recs[3].message, "FAILED failing");
    assert_eq!(recs[3].level, level::ERROR);
    assert_eq!(recs[3].error, "error code 42 (é)");
    assert_eq!(recs[3].key().unwrap(), format!("2@{}", recs[2].task));
}
