//! Replays the fuzz corpus (`fuzz/corpus/batch_decode`) through the batch
//! decoder, so a regression on any saved input fails `cargo test` too.

use std::path::Path;

#[test]
fn batch_decode_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batch_decode");
    let mut valid = [0; 3];
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        // Every prefix of every input: truncation must be an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(distlog::wire::OwnedBatch::from_body(&bytes[..cut]).is_err());
        }
        if let Ok(batch) = distlog::wire::OwnedBatch::from_body(&bytes) {
            let b = batch.get();
            valid[b.version() as usize] += 1;
            assert_eq!(b.records().count(), b.len());
            for (i, r) in b.records().enumerate() {
                assert_eq!(r.seq(), b.first_seq() + i as u64);
                assert_eq!(r.rendered_message(), "took 1.5 ms");
            }
        }
    }
    assert!(
        n >= 4 && valid[1] >= 3 && valid[2] >= 1,
        "the seed corpus is present ({n} files, {valid:?} valid by version)"
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

/// The property of the `expansion_bound` fuzz target.
mod cost_property {
    include!("../fuzz/cost_property.rs");
}

#[test]
fn expansion_bound_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/expansion_bound");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        n += 1;
        cost_property::check(&bytes);
    }
    assert!(n >= 6, "the seed corpus is present ({n} files)");
}
