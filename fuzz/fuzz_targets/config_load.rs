//! The config loader never panics on any text; what it accepts has every
//! rule's filter compiled and re-checks to the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    match distlogd::config::Config::parse(&src) {
        Ok(checked) => {
            assert_eq!(checked.filters.len(), checked.config.rules.len());
            let again = checked
                .config
                .clone()
                .recheck()
                .expect("an accepted config re-checks");
            assert_eq!(again.config, checked.config);
        }
        Err(e) => {
            // Errors render, and their position is inside the text.
            let _ = e.to_string();
            if let Some((line, _col)) = e.at {
                let breaks = distlogd::config::yaml_line_breaks(&src);
                assert!(line >= 1 && line <= breaks + 2, "{e}"); // or just past the end
            }
        }
    }
});
