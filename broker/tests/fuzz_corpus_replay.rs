//! Replays the fuzz corpus (`fuzz/corpus/batch_decode`) through the batch
//! decoder, so a regression on any saved input fails `cargo test` too.

use std::path::Path;

#[test]
fn batch_decode_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/batch_decode");
    let (mut valid, mut retired) = (0, 0);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        n += 1;
        // Every prefix of every input: truncation must be an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(distlog_core::wire::OwnedBatch::from_body(&bytes[..cut]).is_err());
        }
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("retired_v1") {
            // A body of the retired format version 1: rejected by reason.
            let err = distlog_core::wire::OwnedBatch::from_body(&bytes).unwrap_err();
            assert_eq!(err.reason(), "bad_version", "{name}");
            retired += 1;
            continue;
        }
        if let Ok(batch) = distlog_core::wire::OwnedBatch::from_body(&bytes) {
            let b = batch.get();
            valid += 1;
            assert_eq!(b.records().count(), b.len());
            for (i, r) in b.records().enumerate() {
                assert_eq!(r.seq(), b.first_seq() + i as u64);
                assert_eq!(r.rendered_message(), "took 1.5 ms");
            }
        }
    }
    assert!(
        n >= 4 && valid >= 3 && retired >= 1,
        "the seed corpus is present ({n} files, {valid} valid, {retired} of version 1)"
    );
}

#[test]
fn filter_parse_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/filter_parse");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        n += 1;
        let f = distlog_filter::Filter::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        distlog_filter::Filter::parse(f.source()).unwrap();
        // Every prefix parses or fails cleanly.
        for cut in (0..src.len()).filter(|&c| src.is_char_boundary(c)) {
            let _ = distlog_filter::Filter::parse(&src[..cut]);
        }
    }
    assert!(n >= 5, "the seed corpus is present");
}

/// The property of the `expansion_bound` fuzz target.
mod cost_property {
    include!("../../fuzz/cost_property.rs");
}

#[test]
fn expansion_bound_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/expansion_bound");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        cost_property::check(&bytes);
    }
    assert!(n >= 6, "the seed corpus is present ({n} files)");
}
