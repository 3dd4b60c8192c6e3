//! The batch decoder never panics, and whatever it accepts reads back
//! consistently: every record's sequence number follows `first_seq`, and
//! every string and value can be read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = distlog::wire::OwnedBatch::from_body(data) else {
        return;
    };
    let b = batch.get();
    let first = b.first_seq.to_native();
    for (i, r) in b.records().iter().enumerate() {
        assert_eq!(r.seq.to_native(), first.wrapping_add(i as u64));
        let _ = r.rendered_message();
        let _ = r.key();
    }
    // Accepted input round-trips through the owned form unchanged.
    let owned: distlog::wire::Batch = rkyv::deserialize::<_, rkyv::rancor::Error>(b).unwrap();
    let again = distlog::wire::encode_batch_to_vec(&owned);
    let reread = distlog::wire::access_batch(&again).unwrap();
    assert_eq!(reread.len(), b.len());
});
