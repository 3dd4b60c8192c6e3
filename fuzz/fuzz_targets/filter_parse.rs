//! The filter parser never panics; what it accepts compiles to a program
//! that evaluates (terminating, without panicking) against a record, and
//! its source re-parses to an equivalent filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = distlog_filter::Filter::parse(src) else {
        return;
    };
    let _ = filter.disassemble();
    let again = distlog_filter::Filter::parse(filter.source()).unwrap();
    let batch = distlog_core::wire::Batch {
        records: vec![distlog_core::record::Record {
            level: 30,
            target: "db::pool".into(),
            message: "timeout".into(),
            task: "1b4e28ba-2fa1-11d2-883f-0016d3cca427/1".into(),
            task_n: 3,
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = distlog_core::wire::encode_batch_to_vec(&batch);
    let b = distlog_core::wire::access_batch(&body).unwrap();
    let view = distlog_filter::RecordView::new(b'P', b.sender(), b.record(0).unwrap());
    assert_eq!(filter.matches(&view), again.matches(&view));
});
