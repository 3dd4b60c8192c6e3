//! Whatever the broker accepts costs its readers at most the stated
//! multiple of its size: a batch's expanded size (every string each record
//! refers to) is at most `distlog_core::limits::EXPANSION` times the body, the
//! text rendered from it a stated multiple of that, and a pickle decodes
//! to at most its output budget. The property is in `fuzz/cost_property.rs`
//! (shared with the corpus replay test); the corpus holds the crafted
//! attacks of issue 14.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../cost_property.rs");

fuzz_target!(|data: &[u8]| check(data));
