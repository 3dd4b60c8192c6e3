//! The Python record decoders never panic, and whatever they accept becomes
//! a one-record batch that validates and reads back (or is refused for a
//! cost bound, by reason). The first input byte
//! picks the decoder: `J` JSON, `P` pickle, anything else both (on the
//! rest of the input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let encodings: &[u8] = match which {
        b'J' => b"J",
        b'P' => b"P",
        _ => b"JP",
    };
    for &enc in encodings {
        let Ok((sender, record)) = distlogd::python::decode(enc, body) else {
            continue;
        };
        let _ = record.key();
        if enc == b'P' {
            // Accepted pickles are plain data all the way down.
            assert!(distlogd::python::pickle::to_json(body).unwrap().is_object());
        }
        let message = record.message.clone();
        let batch = distlogd::python::to_batch(sender, record);
        let owned = match distlog_core::wire::OwnedBatch::from_body(&batch) {
            Ok(o) => o,
            // The cost bounds of `distlog_core::limits` apply to Python records
            // too (checked when their batch is validated).
            Err(e) => {
                assert!(
                    matches!(e.reason(), "name_too_long" | "too_many_fields" | "task_too_deep"),
                    "{e}"
                );
                continue;
            }
        };
        let b = owned.get();
        assert_eq!(b.len(), 1);
        assert_eq!(b.record(0).unwrap().rendered_message(), message);
    }
});
