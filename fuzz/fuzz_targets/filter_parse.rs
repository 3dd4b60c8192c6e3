//! The filter parser never panics; what it accepts compiles to a program
//! that evaluates (terminating, without panicking) against a record, and
//! its source re-parses to an equivalent filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = distlog::filter::Filter::parse(src) else {
        return;
    };
    let _ = filter.disassemble();
    let again = distlog::filter::Filter::parse(filter.source()).unwrap();
    let batch = distlog::wire::Batch {
        records: vec![distlog::record::Record {
            level: 30,
            target: "db::pool".into(),
            message: "timeout".into(),
            task: "1b4e28ba-2fa1-11d2-883f-0016d3cca427/1".into(),
            task_n: 3,
            ..Default::default()
        }],
        ..Default::default()
    };
    let v1 = distlog::wire::encode_batch_to_vec(&batch);
    let v2 = distlog::wire_v2::encode_batch_to_vec(&(&batch).into());
    let [a, b] = [v1, v2].map(|bytes| {
        let b = distlog::wire::access_batch(&bytes).unwrap();
        let view = distlog::filter::RecordView::new(b'P', b.sender(), b.record(0).unwrap());
        let verdict = filter.matches(&view);
        assert_eq!(verdict, again.matches(&view));
        verdict
    });
    // Both format versions give the same verdict.
    assert_eq!(a, b);
});
