//! Replays the fuzz corpus (`fuzz/corpus/python_ingest`) through the Python
//! record decoders, so a regression on any saved input fails `cargo test`
//! too. The first byte of each input picks the decoder (`J` JSON, `P`
//! pickle, anything else both), as in the fuzz target.

use distlogd::python::{decode, pickle, to_batch};
use std::path::Path;

#[test]
fn python_ingest_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/python_ingest");
    let (mut n, mut valid, mut forbidden) = (0, 0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        n += 1;
        let Some((&which, body)) = bytes.split_first() else {
            continue;
        };
        let encodings: &[u8] = match which {
            b'J' => b"J",
            b'P' => b"P",
            _ => b"JP",
        };
        for &enc in encodings {
            // Every prefix of a whole record is an error, never a panic.
            for cut in 0..body.len() {
                assert!(
                    decode(enc, &body[..cut]).is_err(),
                    "{name}: prefix {cut} accepted"
                );
            }
            match decode(enc, body) {
                Ok((sender, record)) => {
                    valid += 1;
                    assert!(!record.message.is_empty(), "{name}");
                    assert_eq!(sender.instance, 0, "{name}");
                    if name.contains("task") || name.contains("rich") {
                        assert!(record.key().is_some(), "{name}: task key");
                    }
                    if enc == b'P' {
                        assert!(pickle::to_json(body).unwrap().is_object());
                    }
                    let batch = to_batch(sender, record);
                    assert!(distlog_core::wire::OwnedBatch::from_body(&batch).is_ok());
                }
                Err(e) if name.ends_with("_forbidden") => {
                    assert_eq!(e.reason(), "pickle_forbidden", "{name}: {e}");
                    forbidden += 1;
                }
                Err(e) => {
                    assert!(name.starts_with("both_"), "{name} rejected: {e}");
                }
            }
        }
    }
    assert!(
        n >= 10 && valid >= 8 && forbidden >= 2,
        "the seed corpus is present ({n} files, {valid} valid, {forbidden} forbidden)"
    );
}
