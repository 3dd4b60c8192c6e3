//! Replays the config fuzz corpus (`fuzz/corpus/config_load`) through the
//! loader, and every prefix of each input: never a panic, errors point
//! inside the text, accepted configs re-check the same.

#[test]
fn config_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config_load");
    let (mut ok, mut n) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text =
            String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()).into_owned();
        n += 1;
        for cut in (0..=text.len()).filter(|&c| text.is_char_boundary(c)) {
            let src = &text[..cut];
            match distlogd::config::Config::parse(src) {
                Ok(c) => {
                    assert_eq!(c.filters.len(), c.config.rules.len());
                    let again = c.config.clone().recheck().unwrap();
                    assert_eq!(again.config, c.config);
                    if cut == text.len() {
                        ok += 1;
                    }
                }
                Err(e) => {
                    if let Some((line, _)) = e.at {
                        let breaks = distlogd::config::yaml_line_breaks(src);
                        assert!(line >= 1 && line <= breaks + 2, "{e} for {src:?}");
                        // or just past the end
                    }
                }
            }
        }
    }
    assert!(
        n >= 5 && ok >= 3,
        "the seed corpus is present ({n} files, {ok} valid)"
    );
}
