//! Replays the fuzz corpus (`fuzz/corpus/batch_decode`) through the batch
//! decoder, so a regression on any saved input fails `cargo test` too.

use std::path::Path;

#[test]
fn batch_decode_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batch_decode");
    let mut valid = 0;
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        // Every prefix of every input: truncation must be an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(distlog::wire::OwnedBatch::from_body(&bytes[..cut]).is_err());
        }
        if let Ok(batch) = distlog::wire::OwnedBatch::from_body(&bytes) {
            valid += 1;
            let b = batch.get();
            for (i, r) in b.records().iter().enumerate() {
                assert_eq!(r.seq.to_native(), b.first_seq.to_native() + i as u64);
                assert_eq!(r.rendered_message(), "took 1.5 ms");
            }
        }
    }
    assert!(
        n >= 3 && valid >= 3,
        "the seed corpus is present ({n} files, {valid} valid)"
    );
}

#[test]
fn batch_decode_corpus_replays_through_version_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batch_decode");
    let mut valid = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(&bytes);
        for cut in 0..aligned.len() {
            assert!(distlog::wire_v2::access_batch(&aligned[..cut]).is_err());
        }
        if let Ok(b) = distlog::wire_v2::access_batch(&aligned) {
            valid += 1;
            assert_eq!(b.records.len(), 3);
            assert_eq!(b.sites[0].format, "took {} ms");
            // A version-2 body is not a version-1 one.
            assert_eq!(
                distlog::wire::OwnedBatch::from_body(&bytes)
                    .unwrap_err()
                    .reason(),
                "bad_version"
            );
        }
    }
    assert_eq!(
        valid, 1,
        "the version-2 seed (v2_three) is present and valid"
    );
}

#[test]
fn filter_parse_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/filter_parse");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        n += 1;
        let f = distlog::filter::Filter::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        distlog::filter::Filter::parse(f.source()).unwrap();
        // Every prefix parses or fails cleanly.
        for cut in (0..src.len()).filter(|&c| src.is_char_boundary(c)) {
            let _ = distlog::filter::Filter::parse(&src[..cut]);
        }
    }
    assert!(n >= 5, "the seed corpus is present");
}
