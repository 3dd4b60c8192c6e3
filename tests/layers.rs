//! Layers point one way, at both levels, in every crate of the workspace.
//! This test is the tool (docs/ARCHITECTURE.md names it):
//!
//! - **Crates**: `cargo tree` of the client (`distlog`, normal
//!   dependencies: what an application that depends on it compiles and
//!   links) holds `distlog-core` and none of the filter language, the
//!   renderers, the Python ingest (`distlog-filter`, `distlogd`) or
//!   `serde_json`; `distlog-core` depends on no other crate of ours and
//!   `distlog-filter` on `distlog-core` alone.
//! - **Files**: no import circle between the files of a crate's library.
//!   It reads every file (not `lib.rs`, the crate's facade; not `main.rs`,
//!   `src/bin` or test modules), takes each path it names that starts with
//!   `crate::`, `self::`, `super::` or the name of one of its child modules
//!   (including `use crate::{a, b::c}` groups), resolves it to the file of
//!   the longest module prefix, and looks for a cycle in that graph. So a
//!   parent that uses (or re-exports) a child's items and a child that
//!   uses the parent's are a circle; declaring a child (`mod x;`) is not
//!   an import. Comments are skipped; `$crate::` paths in macros (which
//!   expand in the caller) are not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of a source file relative to `src`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn files(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if rel != "bin" {
                files(&p, src, out);
            }
        } else if rel.ends_with(".rs") && rel != "main.rs" && rel != "lib.rs" {
            out.insert(rel, std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// The paths `text` names that start with `crate::`, `super::` or a
/// child module of `file_module` (`is_module` tells which modules exist),
/// each made absolute (module path and item names).
fn paths(
    file_module: &[String],
    text: &str,
    is_module: &dyn Fn(&[String]) -> bool,
) -> Vec<Vec<String>> {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let word_at = |j: usize| -> &str {
        let rest = &code[j..];
        &rest[..rest.find(|c: char| !ident(c)).unwrap_or(rest.len())]
    };
    // Inline modules (`mod x { ... }`) and the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let c = code[i..].chars().next().unwrap();
        let starts_word = ident(c) && !code[..i].ends_with(ident) && !code[..i].ends_with("::");
        if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|&(_, d)| d == depth) {
                inline.pop();
            }
        } else if starts_word && word_at(i) == "mod" {
            let name = word_at(i + 4).to_owned();
            if code[i + 4 + name.len()..].trim_start().starts_with('{') {
                inline.push((name, depth));
            }
        } else if starts_word && code[i + word_at(i).len()..].starts_with("::") {
            let word = word_at(i);
            let mut base: Vec<String> = file_module.to_vec();
            base.extend(inline.iter().map(|(n, _)| n.clone()));
            let mut j = i;
            if word == "crate" {
                base.clear();
                j += "crate::".len();
            } else if word == "self" {
                j += "self::".len();
            } else if word == "super" {
                while code[j..].starts_with("super::") {
                    base.pop();
                    j += "super::".len();
                }
            } else if !is_module(&[base.as_slice(), &[word.to_owned()]].concat()) {
                i += word.len();
                continue;
            }
            // `a::b::c` or `a::{b, c::d}`.
            let mut segs = base;
            loop {
                let name = word_at(j);
                if name.is_empty() {
                    break;
                }
                segs.push(name.to_owned());
                j += name.len();
                if !code[j..].starts_with("::") {
                    break;
                }
                j += 2;
            }
            if code[j..].starts_with('{') {
                let end = code[j..].find('}').map_or(code.len(), |e| j + e);
                for item in code[j + 1..end].split(',') {
                    let mut p = segs.clone();
                    let item = item.split_whitespace().next().unwrap_or("");
                    p.extend(
                        item.split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                    out.push(p);
                }
            }
            out.push(segs);
            i = j.max(i + 1);
            continue;
        }
        i += c.len_utf8();
    }
    out
}

/// The import circles between the files of the library under `dir`, each
/// written `a.rs -> b.rs -> a.rs` from its least file; and the graph.
fn circles(dir: &str) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut texts = BTreeMap::new();
    files(&src, &src, &mut texts);
    let by_module: BTreeMap<Vec<String>, String> =
        texts.keys().map(|f| (module_of(f), f.clone())).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in &texts {
        let me = module_of(file);
        let to = edges.entry(file.clone()).or_default();
        for p in paths(&me, text, &|m| by_module.contains_key(m)) {
            let target = (0..=p.len()).rev().find_map(|n| by_module.get(&p[..n]));
            if let Some(t) = target.filter(|t| *t != file) {
                to.insert(t.clone());
            }
        }
    }
    // For each file, the shortest way back to it (breadth first): every
    // file on a circle shows one, each written from its least file.
    let circle_through = |start: &String| -> Option<Vec<String>> {
        let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(f) = queue.pop_front() {
            for t in &edges[f] {
                if t == start {
                    let mut path = vec![f.clone()];
                    while let Some(&p) = came_from.get(path.last().unwrap()) {
                        path.push(p.clone());
                    }
                    path.reverse();
                    return Some(path);
                }
                if !came_from.contains_key(t) {
                    came_from.insert(t, f);
                    queue.push_back(t);
                }
            }
        }
        None
    };
    let circles: BTreeSet<String> = edges
        .keys()
        .filter_map(circle_through)
        .map(|mut c| {
            let least = (0..c.len()).min_by_key(|&i| &c[i]).unwrap_or(0);
            c.rotate_left(least);
            c.push(c[0].clone());
            c.join(" -> ")
        })
        .collect();
    (circles, edges)
}

fn assert_one_way(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let (circles, edges) = circles(dir);
    assert!(
        circles.is_empty(),
        "import circles in {dir}:\n{}",
        circles.into_iter().collect::<Vec<_>>().join("\n")
    );
    edges
}

#[test]
fn client_files_point_one_way() {
    let edges = assert_one_way("src");
    // The scan sees `crate::` paths and a parent's use of its child.
    assert!(
        edges["pipeline/local.rs"].contains("context/mod.rs"),
        "{edges:?}"
    );
    assert!(
        edges["pipeline/sender.rs"].contains("pipeline/mod.rs"),
        "{edges:?}"
    );
    // `self::child::Item` is a parent's use of its child.
    assert!(
        edges["context/mod.rs"].contains("context/frame_pool.rs"),
        "{edges:?}"
    );
}

#[test]
fn core_files_point_one_way() {
    assert_one_way("crates/core/src");
}

#[test]
fn filter_files_point_one_way() {
    assert_one_way("crates/filter/src");
}

#[test]
fn broker_files_point_one_way() {
    let edges = assert_one_way("broker/src");
    assert!(
        edges["processor/mod.rs"].contains("metrics.rs"),
        "{edges:?}"
    );
    assert!(
        edges["processor/store.rs"].contains("processor/seam.rs"),
        "{edges:?}"
    );
    assert!(edges["metrics.rs"].is_empty(), "{edges:?}");
}

/// The workspace crates (and serde_json) in `cargo tree -e normal` of `package`.
fn normal_deps(package: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| (n.starts_with("distlog") || *n == "serde_json") && *n != package)
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_application_that_only_logs_compiles_the_core_and_the_client() {
    assert_eq!(
        normal_deps("distlog"),
        BTreeSet::from(["distlog-core".to_owned()])
    );
    assert_eq!(normal_deps("distlog-core"), BTreeSet::new());
    assert_eq!(
        normal_deps("distlog-filter"),
        BTreeSet::from(["distlog-core".to_owned(), "serde_json".to_owned()])
    );
}

#[test]
fn the_checker_finds_a_circle() {
    let dir = std::env::temp_dir().join(format!("distlog-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("m")).unwrap();
    let write = |f: &str, text: &str| std::fs::write(dir.join(f), text).unwrap();
    write("a.rs", "use crate::b::X;\n");
    write(
        "b.rs",
        "// crate::a::Y in a comment is no edge\npub struct X;\n",
    );
    write("c.rs", "use crate::m::Z;\n");
    write("m/mod.rs", "mod z;\npub use self::z::Z;\n");
    write("m/z.rs", "pub struct Z;\nfn f() { super::super::c::g() }\n");
    let (found, edges) = circles(dir.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(edges["b.rs"].is_empty(), "{edges:?}");
    assert!(edges["a.rs"].contains("b.rs"), "{edges:?}");
    assert_eq!(
        found,
        BTreeSet::from(["c.rs -> m/mod.rs -> m/z.rs -> c.rs".to_owned()]),
        "{edges:?}"
    );
}
