//! Layers point one way: no import circle between the modules of the
//! client library (`src/`). (The broker library has its own, file-level
//! check: `broker/tests/module_layers.rs`; one checker for both is left
//! for the crate split.)
//!
//! The tool is this test. It reads every source file, takes each
//! `crate::a::b` path outside comments (a `use`, a call, a type) and turns
//! it into an edge from the file's module to module `a`. Directory modules
//! (`pipeline/`, `filter/`, `python/`, the broker's `processor/`, `config/`,
//! `store/`) count as one node each: what their files say to each other is
//! their own business; what they say to the rest is not. The crate root
//! (`lib.rs`, the public facade) and `$crate::` paths in macros (which
//! expand in the caller) are not edges. Then it looks for strongly
//! connected components (Tarjan) and fails on any with two or more
//! modules, printing the circle and the lines that make it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name -> modules it refers to, each with one line that does.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            // Binaries sit above the library: they may use anything.
            if p.file_name().is_some_and(|n| n != "bin") {
                sources(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The node a file belongs to: its top-level module (the file name, or
/// the directory under `root`), or `None` for the crate root and binaries.
fn node_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The paths after `crate::` on one line of code.
fn crate_paths(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = &rest[..i];
        let after = &rest[i + "crate::".len()..];
        // `$crate::` is a macro's; `foo_crate::` is another identifier.
        let standalone = !before.ends_with(|c: char| c == '$' || c == '_' || c.is_alphanumeric());
        if standalone {
            let end = after
                .find(|c: char| !(c == '_' || c.is_alphanumeric()))
                .unwrap_or(after.len());
            if end > 0 {
                out.push(&after[..end]);
            } else if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a, b::c}`: every first segment in the group.
                let group = group.split('}').next().unwrap_or("");
                for part in group.split(',') {
                    let first = part.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() {
                        out.push(first);
                    }
                }
            }
        }
        rest = after;
    }
    out
}

fn graph(root: &Path) -> Graph {
    let mut files = Vec::new();
    sources(root, &mut files);
    let nodes: BTreeSet<String> = files.iter().filter_map(|f| node_of(root, f)).collect();
    let mut g = Graph::new();
    for f in &files {
        let Some(from) = node_of(root, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        let edges = g.entry(from.clone()).or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for to in crate_paths(code) {
                if to != from && nodes.contains(to) {
                    edges
                        .entry(to.to_owned())
                        .or_insert_with(|| format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> T<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

fn assert_one_way(dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let g = graph(&root);
    let found = circles(&g);
    let mut msg = String::new();
    for c in &found {
        msg.push_str(&format!("\nimport circle in {dir}: {}\n", c.join(", ")));
        for from in c {
            for (to, line) in &g[from] {
                if c.contains(to) {
                    msg.push_str(&format!("  {from} -> {to}  ({line})\n"));
                }
            }
        }
    }
    assert!(found.is_empty(), "{msg}");
}

#[test]
fn client_library_layers_point_one_way() {
    assert_one_way("src");
}

#[test]
fn the_checker_finds_a_circle() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), String::new());
    }
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
    assert_eq!(
        crate_paths(
            "use crate::{wire::Sender, view, record::level}; x = crate::task::now(); $crate::entry"
        ),
        vec!["wire", "view", "record", "task"]
    );
}
