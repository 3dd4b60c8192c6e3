//! The batch decoders (version 1, and version 2 in `distlog::wire_v2`)
//! never panic, and whatever they accept reads back consistently: every
//! record's sequence number follows `first_seq`, every string and value can
//! be read, every index is in range.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_v2(data);
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

fn check_v2(data: &[u8]) {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(data.len());
    aligned.extend_from_slice(data);
    let Ok(b) = distlog::wire_v2::access_batch(&aligned) else {
        return;
    };
    let first = b.first_seq.to_native();
    for (i, r) in b.records.iter().enumerate() {
        assert_eq!(r.seq.to_native(), first.wrapping_add(i as u64));
        assert!((r.site.to_native() as usize) < b.sites.len());
        assert!((r.thread.to_native() as usize) < b.threads.len());
    }
}
