//! `distlog tree`: one request's whole task tree, from every process.
//!
//! Every record under the task id is collected from the store (all
//! segments, in parallel), grouped by task path, and each task is read
//! back: its start record (`task_status=started`; for the Python clients
//! the record numbered 0), its end record (`task_status=succeeded` or
//! `failed`; for Python, a `FAILED ...` record, or a last INFO record that
//! repeats the task's message), its other records in counter order and its
//! subtasks in subtask-number order, interleaved by time. What never
//! arrived shows as a gap: missing record numbers, missing subtask numbers,
//! tasks known only from their children.

use crate::out::Out;
use crate::source::{Selection, Source, Tally};
use crate::{compile_filter, CliError, Format};
use distlog_core::record::ValueRef;
use distlog_core::view::RecordRef;
use distlog_core::wire::ArchivedSender;
use distlog_filter::ast::Lit;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Arguments of `distlog tree`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task: a root UUID, a sub-path (`<uuid>/2/1`) or a key
    /// (`3@<uuid>/2`).
    #[arg(value_name = "TASK_ID")]
    task_id: String,
    #[command(flatten)]
    src: crate::source::SourceArgs,
    /// Output format: an indented tree, or one JSON object per task
    /// (depth first, parents before children) with its records.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Scan threads for a store (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Started,
    Succeeded,
    Failed,
}

/// One record of the tree, owned.
struct Rec {
    task: String,
    n: u32,
    time_ns: u64,
    level: u8,
    message: String,
    status: Option<Status>,
    duration_ns: Option<u64>,
    error: String,
    host: String,
    pid: u32,
    program: String,
    /// From a Python client (its records count from 0 and carry no status).
    python: bool,
    /// Fields other than task_status / duration_ns, rendered `k=v`.
    fields: Vec<(String, String)>,
    /// The record as JSON (for `--format jsonl`).
    json: String,
}

impl Rec {
    fn new(system: u8, sender: &ArchivedSender, r: RecordRef<'_>) -> Rec {
        let mut status = None;
        let mut duration_ns = None;
        let mut fields = Vec::new();
        for (k, v) in r.fields() {
            match (k, v) {
                ("task_status", ValueRef::Str(s)) => {
                    status = match s {
                        "started" => Some(Status::Started),
                        "succeeded" => Some(Status::Succeeded),
                        "failed" => Some(Status::Failed),
                        _ => None,
                    }
                }
                ("duration_ns", ValueRef::U64(d)) => duration_ns = Some(d),
                ("duration_ns", ValueRef::I64(d)) => duration_ns = Some(d.max(0) as u64),
                (k, v) => {
                    let mut s = String::new();
                    match v {
                        ValueRef::Str(x)
                            if x.is_empty() || x.chars().any(|c| c.is_whitespace() || c == '"') =>
                        {
                            let _ = write!(s, "{x:?}");
                        }
                        other => {
                            let _ = write!(s, "{other}");
                        }
                    }
                    fields.push((k.to_owned(), s));
                }
            }
        }
        let message = r.rendered_message().into_owned();
        let mut json = String::new();
        distlog_filter::render::json_record(system, sender, r, &mut json);
        Rec {
            task: r.task().to_owned(),
            n: r.task_n(),
            time_ns: r.time_ns(),
            level: r.level(),
            message,
            status,
            duration_ns,
            error: r.error().to_owned(),
            host: sender.host.as_str().to_owned(),
            pid: sender.pid.to_native(),
            program: sender.program.as_str().to_owned(),
            python: sender.instance.to_native() == 0,
            fields,
            json,
        }
    }
}

/// A task of the tree, read back from its records.
#[derive(Default)]
struct Node {
    path: String,
    /// Records, sorted by counter (then time).
    records: Vec<Rec>,
    /// Subtasks by number.
    children: BTreeMap<u64, String>,
}

/// What a task's records say about it.
struct Summary<'a> {
    start: Option<&'a Rec>,
    end: Option<&'a Rec>,
    /// `succeeded`, `failed`, `running`, or `missing` (no record arrived).
    status: &'static str,
    duration_ns: Option<u64>,
    /// Runs of missing record numbers, inclusive.
    gaps: Vec<(u32, u32)>,
    /// Missing subtask numbers.
    missing_children: Vec<u64>,
    /// Earliest time in the task or below it (for ordering).
    first_ns: u64,
}

fn summarise<'a>(node: &'a Node, first_ns: u64) -> Summary<'a> {
    let recs = &node.records;
    let python = recs.iter().all(|r| r.python) && !recs.is_empty();
    let has_status = recs.iter().any(|r| r.status.is_some());
    let start = if has_status || !python {
        recs.iter().find(|r| r.status == Some(Status::Started))
    } else {
        recs.iter().find(|r| r.n == 0)
    };
    let end = if has_status || !python {
        recs.iter()
            .rev()
            .find(|r| matches!(r.status, Some(Status::Succeeded | Status::Failed)))
    } else {
        recs.iter()
            .find(|r| r.message.starts_with("FAILED "))
            .or_else(|| {
                let last = recs.last()?;
                let start = start?;
                (last.n > start.n && last.level == 20 && last.message == start.message)
                    .then_some(last)
            })
    };
    let failed = end.is_some_and(|e| {
        e.status == Some(Status::Failed) || (e.status.is_none() && e.message.starts_with("FAILED "))
    });
    let status = match (recs.is_empty(), end) {
        (true, _) => "missing",
        (false, None) => "running",
        (false, Some(_)) if failed => "failed",
        (false, Some(_)) => "succeeded",
    };
    let duration_ns = end.and_then(|e| {
        e.duration_ns
            .or_else(|| start.map(|s| e.time_ns.saturating_sub(s.time_ns)))
    });
    let mut gaps = Vec::new();
    if !recs.is_empty() {
        let base: u32 = if python { 0 } else { 1 };
        let mut expect = base;
        for r in recs {
            if r.n > expect {
                gaps.push((expect, r.n - 1));
            }
            expect = expect.max(r.n.saturating_add(1));
        }
    }
    let max_child = node.children.keys().next_back().copied().unwrap_or(0);
    let missing_children = (1..=max_child)
        .filter(|k| !node.children.contains_key(k))
        .collect();
    Summary {
        start,
        end,
        status,
        duration_ns,
        gaps,
        missing_children,
        first_ns,
    }
}

/// Normalises a task id: a key's `n@` and trailing slashes go.
fn normalise(id: &str) -> String {
    let id = id.trim();
    let id = id.split_once('@').map_or(id, |(_, p)| p);
    id.trim_end_matches('/').to_owned()
}

/// The filter source selecting `id`'s subtree.
fn filter_source(id: &str) -> String {
    format!("task under {}", Lit::Str(id.to_owned()))
}

/// Reads every record under `task_id` (a root, a sub-path or a key) from
/// `source` and builds its tree. Shared by `distlog tree` and the web
/// view's waterfall (`ui/tree_json.rs`, which serves [`Tree::jsonl`]).
pub fn load(source: &Source, task_id: &str) -> Result<Tree, CliError> {
    let root = normalise(task_id);
    if root.is_empty() {
        return Err(CliError("empty task id".into()));
    }
    let filter = compile_filter(Some(&filter_source(&root)))?;
    let sel = Selection {
        filter: &filter,
        since: 0,
        until: u64::MAX,
    };
    let mut recs: Vec<Rec> = Vec::new();
    let mut tally = Tally::default();
    source.scan(
        &sel,
        |piece| {
            let mut v = Vec::new();
            let t = piece.records(&sel, |system, sender, r| {
                v.push(Rec::new(system, sender, r));
                true
            });
            (v, t)
        },
        |(v, t)| {
            recs.extend(v);
            tally += t;
            Ok(true)
        },
    )?;
    source.warn_skipped(tally.skipped);
    if recs.is_empty() {
        return Err(CliError(format!(
            "no records of task {root} in {}",
            source.describe()
        )));
    }
    Ok(Tree::build(&root, recs))
}

pub fn run(a: Args) -> Result<(), CliError> {
    let source = Source::new(&a.src, a.threads)?;
    let tree = load(&source, &a.task_id)?;
    let mut out = Out::new();
    let mut text = String::new();
    match a.format {
        Format::Text => tree.text(out.colour, &mut text),
        Format::Jsonl => tree.jsonl(&mut text),
    }
    out.write(&text)?;
    out.flush()
}

/// One request's task tree, read back from its records.
pub struct Tree {
    root: String,
    nodes: HashMap<String, Node>,
    /// Earliest record time at or below each task.
    first_ns: HashMap<String, u64>,
}

/// The subtask number of `path` (its last component), for ordering.
fn child_number(path: &str) -> u64 {
    path.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl Tree {
    fn build(root: &str, recs: Vec<Rec>) -> Tree {
        let mut nodes: HashMap<String, Node> = HashMap::new();
        nodes.entry(root.to_owned()).or_default().path = root.to_owned();
        for r in recs {
            // Make sure every ancestor down from the root exists and links
            // to its child (a missing middle still renders).
            let mut path = r.task.clone();
            while path.len() > root.len() {
                let Some((parent, _)) = path.rsplit_once('/') else {
                    break;
                };
                let parent = parent.to_owned();
                let p = nodes.entry(parent.clone()).or_default();
                p.path.clone_from(&parent);
                let known = p
                    .children
                    .insert(child_number(&path), path.clone())
                    .is_some();
                nodes
                    .entry(path.clone())
                    .or_default()
                    .path
                    .clone_from(&path);
                if known {
                    break; // the ancestors above are linked already
                }
                path = parent;
            }
            let node = nodes.entry(r.task.clone()).or_default();
            node.path.clone_from(&r.task);
            node.records.push(r);
        }
        for node in nodes.values_mut() {
            node.records.sort_by_key(|r| (r.n, r.time_ns));
        }
        let mut tree = Tree {
            root: root.to_owned(),
            nodes,
            first_ns: HashMap::new(),
        };
        tree.compute_first(root);
        tree
    }

    /// Fills `first_ns` bottom-up, with an explicit stack: no recursion,
    /// whatever the depth (validation caps task depth, but a tree is read
    /// from stores and databases too).
    fn compute_first(&mut self, root: &str) {
        // (path, children pushed already)
        let mut stack: Vec<(String, bool)> = vec![(root.to_owned(), false)];
        while let Some((path, expanded)) = stack.pop() {
            let Some(node) = self.nodes.get(&path) else {
                continue;
            };
            if !expanded {
                stack.push((path, true));
                stack.extend(node.children.values().map(|c| (c.clone(), false)));
                continue;
            }
            let own = node.records.iter().map(|r| r.time_ns).min();
            let first = node
                .children
                .values()
                .filter_map(|c| self.first_ns.get(c).copied())
                .chain(own)
                .min()
                .unwrap_or(u64::MAX);
            self.first_ns.insert(path, first);
        }
    }

    fn summary(&self, path: &str) -> Option<Summary<'_>> {
        let node = self.nodes.get(path)?;
        Some(summarise(
            node,
            self.first_ns.get(path).copied().unwrap_or(u64::MAX),
        ))
    }

    /// The label of a task: the root's full id, children relative to it.
    fn label<'p>(&self, path: &'p str) -> &'p str {
        if path == self.root {
            path
        } else {
            path.strip_prefix(self.root.as_str()).unwrap_or(path)
        }
    }

    /// The items of a task, in display order: its records (but the start
    /// record, which heads it) and subtasks, merged by time, with gaps.
    fn items<'a>(&'a self, node: &'a Node, s: &Summary<'a>) -> Vec<Item<'a>> {
        let mut recs: Vec<Item<'a>> = Vec::new();
        let mut gaps = s.gaps.iter().peekable();
        for r in &node.records {
            while let Some(&&(from, to)) = gaps.peek() {
                if from < r.n {
                    recs.push(Item::Gap(from, to, r.time_ns));
                    gaps.next();
                } else {
                    break;
                }
            }
            if s.start.is_some_and(|st| std::ptr::eq(st, r)) {
                continue;
            }
            recs.push(Item::Record(r));
        }
        let mut kids: Vec<Item<'a>> = Vec::new();
        let mut missing = s.missing_children.iter().peekable();
        for (k, path) in &node.children {
            let t = self.first_ns.get(path).copied().unwrap_or(u64::MAX);
            while let Some(&&m) = missing.peek() {
                if m < *k {
                    kids.push(Item::MissingChild(m, t));
                    missing.next();
                } else {
                    break;
                }
            }
            kids.push(Item::Child(path, t));
        }
        // Merge, keeping each list's own order.
        let mut out = Vec::with_capacity(recs.len() + kids.len());
        let (mut i, mut j) = (0, 0);
        while i < recs.len() || j < kids.len() {
            let take_rec = j == kids.len() || (i < recs.len() && recs[i].time() <= kids[j].time());
            if take_rec {
                out.push(recs[i]);
                i += 1;
            } else {
                out.push(kids[j]);
                j += 1;
            }
        }
        // The end record closes the task: keep it last.
        if let Some(end) = s.end {
            if let Some(pos) = out
                .iter()
                .position(|it| matches!(it, Item::Record(r) if std::ptr::eq(*r, end)))
            {
                let it = out.remove(pos);
                out.push(it);
            }
        }
        out
    }

    fn text(&self, colour: bool, out: &mut String) {
        let mut counts = Counts::default();
        // Depth first with an explicit stack (no recursion per level): a
        // task's header, then its items in order, a subtask's items before
        // the next item of its parent.
        let mut stack = vec![Work::Node(&self.root, String::new(), String::new())];
        while let Some(w) = stack.pop() {
            match w {
                Work::Node(path, lead, child_lead) => self.text_node(
                    path,
                    &lead,
                    child_lead,
                    colour,
                    out,
                    &mut counts,
                    &mut stack,
                ),
                Work::Item(it) => self.text_item(&it, colour, out, &mut counts, &mut stack),
            }
        }
        let _ = write!(
            out,
            "{} tasks: {} succeeded, {} failed, {} running",
            counts.tasks, counts.succeeded, counts.failed, counts.running
        );
        if counts.missing_tasks > 0 {
            let _ = write!(out, ", {} missing", counts.missing_tasks);
        }
        if counts.missing_records > 0 {
            let _ = write!(out, "; {} records missing", counts.missing_records);
        }
        out.push('\n');
        if !counts.failures.is_empty() {
            let (on, off) = paint(colour, RED);
            let _ = writeln!(out, "{on}FAILED{off}: {}", counts.failures.join(", "));
        }
    }

    /// Writes a task's header line and pushes its items (in reverse, so
    /// they pop in order).
    #[allow(clippy::too_many_arguments)]
    fn text_node<'a>(
        &'a self,
        path: &'a str,
        lead: &str,
        child_lead: String,
        colour: bool,
        out: &mut String,
        counts: &mut Counts,
        stack: &mut Vec<Work<'a>>,
    ) {
        let Some(node) = self.nodes.get(path) else {
            return;
        };
        let Some(s) = self.summary(path) else {
            return;
        };
        counts.tasks += 1;
        counts.missing_records += s
            .gaps
            .iter()
            .map(|(a, b)| u64::from(b - a) + 1)
            .sum::<u64>();
        let (status_colour, mark) = match s.status {
            "succeeded" => {
                counts.succeeded += 1;
                (GREEN, "succeeded")
            }
            "failed" => {
                counts.failed += 1;
                counts.failures.push(self.label(path).to_owned());
                (RED, "FAILED")
            }
            "missing" => {
                counts.missing_tasks += 1;
                (YELLOW, "no records")
            }
            _ => {
                counts.running += 1;
                (YELLOW, "running")
            }
        };
        out.push_str(lead);
        let (b, nb) = paint(colour, BOLD);
        let _ = write!(out, "{b}{}{nb}  ", self.label(path));
        match s.start {
            Some(st) => {
                push_line(&st.message, out);
                for (k, v) in &st.fields {
                    let _ = write!(out, " {k}={v}");
                }
            }
            None if node.records.is_empty() => out.push_str("(no record of this task arrived)"),
            None => out.push_str("(start record missing)"),
        }
        let (on, off) = paint(colour, status_colour);
        let _ = write!(out, "  {on}[{mark}");
        if let Some(d) = s.duration_ns {
            let _ = write!(out, " {}", duration(d));
        }
        let _ = write!(out, "]{off}");
        if let Some(r) = s.start.or(node.records.first()) {
            let (d, nd) = paint(colour, DIM);
            let _ = write!(out, "  {d}{}/{} {}", r.host, r.pid, r.program);
            if path == self.root {
                let mut t = String::new();
                distlog_filter::render::rfc3339(r.time_ns, &mut t);
                let _ = write!(out, " {t}");
            }
            let _ = write!(out, "{nd}");
        }
        out.push('\n');
        let items = self.items(node, &s);
        let start_fields: &'a [(String, String)] = s.start.map_or(&[], |st| &st.fields);
        let n = items.len();
        for (i, item) in items.into_iter().enumerate().rev() {
            stack.push(Work::Item(Placed {
                item,
                path,
                child_lead: child_lead.clone(),
                last: i + 1 == n,
                start_fields,
            }));
        }
    }

    /// Writes one item of a task, or pushes a subtask to be written next.
    fn text_item<'a>(
        &'a self,
        p: &Placed<'a>,
        colour: bool,
        out: &mut String,
        counts: &mut Counts,
        stack: &mut Vec<Work<'a>>,
    ) {
        let (branch, cont) = if p.last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let child_lead = &p.child_lead;
        match p.item {
            Item::Record(r) => {
                let _ = write!(out, "{child_lead}{branch}");
                record_line(r, p.start_fields, colour, out);
            }
            Item::Gap(from, to, _) => {
                let (on, off) = paint(colour, YELLOW);
                let what = if from == to {
                    format!("record {from} missing")
                } else {
                    format!("records {from}..{to} missing")
                };
                let _ = writeln!(out, "{child_lead}{branch}{on}┄ {what}{off}");
            }
            Item::MissingChild(k, _) => {
                let (on, off) = paint(colour, YELLOW);
                let _ = writeln!(
                    out,
                    "{child_lead}{branch}{on}┄ subtask {}/{k}: no record arrived{off}",
                    p.path.strip_prefix(self.root.as_str()).unwrap_or(p.path)
                );
                counts.missing_tasks += 1;
            }
            Item::Child(c, _) => stack.push(Work::Node(
                c,
                format!("{child_lead}{branch}"),
                format!("{child_lead}{cont}"),
            )),
        }
    }

    /// One JSON line per task, depth first (an explicit stack, no
    /// recursion per level), parents before children.
    pub fn jsonl(&self, out: &mut String) {
        let mut stack = vec![self.root.as_str()];
        while let Some(path) = stack.pop() {
            self.jsonl_node(path, out, &mut stack);
        }
    }

    fn jsonl_node<'a>(&'a self, path: &'a str, out: &mut String, stack: &mut Vec<&'a str>) {
        let Some(node) = self.nodes.get(path) else {
            return;
        };
        let Some(s) = self.summary(path) else {
            return;
        };
        let depth = distlog_filter::render::task_depth(path)
            - distlog_filter::render::task_depth(&self.root);
        let parent = (path != self.root).then(|| path.rsplit_once('/').map_or("", |p| p.0));
        let who = s.start.or(node.records.first());
        let v = serde_json::json!({
            "task": path,
            "label": self.label(path),
            "parent": parent,
            "depth": depth,
            "message": s.start.map(|r| r.message.as_str()),
            "status": s.status,
            "duration_ns": s.duration_ns,
            "start_ns": s.start.map(|r| r.time_ns),
            "end_ns": s.end.map(|r| r.time_ns),
            "first_ns": (s.first_ns != u64::MAX).then_some(s.first_ns),
            "hostname": who.map(|r| r.host.as_str()),
            "process": who.map(|r| r.pid),
            "processName": who.map(|r| r.program.as_str()),
            "error": s.end.map(|r| r.error.as_str()).filter(|e| !e.is_empty()),
            "start_missing": s.start.is_none(),
            "missing_records": s.gaps.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>(),
            "missing_subtasks": s.missing_children,
            "subtasks": node.children.values().collect::<Vec<_>>(),
        });
        // Records are already JSON: splice them in rather than re-parse.
        let mut line = v.to_string();
        line.pop();
        line.push_str(",\"records\":[");
        for (i, r) in node.records.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&r.json);
        }
        line.push_str("]}\n");
        out.push_str(&line);
        let items = self.items(node, &s);
        for item in items.into_iter().rev() {
            if let Item::Child(c, _) = item {
                stack.push(c);
            }
        }
    }
}

/// What is left to write of the text tree.
enum Work<'a> {
    /// A task: its path, the lead of its header line, the lead of its
    /// items' lines.
    Node(&'a str, String, String),
    /// One item of a task, placed.
    Item(Placed<'a>),
}

/// An item with what its line needs from its task.
struct Placed<'a> {
    item: Item<'a>,
    /// The task it belongs to.
    path: &'a str,
    child_lead: String,
    /// The task's last item (drawn with └──).
    last: bool,
    start_fields: &'a [(String, String)],
}

#[derive(Clone, Copy)]
enum Item<'a> {
    Record(&'a Rec),
    /// Missing record numbers `from..=to`, and a time to sort by.
    Gap(u32, u32, u64),
    /// A missing subtask number.
    MissingChild(u64, u64),
    Child(&'a str, u64),
}

impl Item<'_> {
    fn time(&self) -> u64 {
        match *self {
            Item::Record(r) => r.time_ns,
            Item::Gap(_, _, t) | Item::MissingChild(_, t) | Item::Child(_, t) => t,
        }
    }
}

#[derive(Default)]
struct Counts {
    tasks: u64,
    succeeded: u64,
    failed: u64,
    running: u64,
    missing_tasks: u64,
    missing_records: u64,
    failures: Vec<String>,
}

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";

/// ANSI on/off codes, or nothing without colour.
fn paint(colour: bool, code: &'static str) -> (&'static str, &'static str) {
    if colour {
        (code, "\x1b[0m")
    } else {
        ("", "")
    }
}

/// Appends `s` with newlines and other control characters escaped.
fn push_line(s: &str, out: &mut String) {
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
}

/// `n  HH:MM:SS.ffffff  LEVEL  message  k=v  error="..."`, fields the task's
/// start record already showed left out.
fn record_line(r: &Rec, start_fields: &[(String, String)], colour: bool, out: &mut String) {
    let mut t = String::new();
    distlog_filter::render::rfc3339(r.time_ns, &mut t);
    let time = t.get(11..26).unwrap_or(&t);
    let level = distlog_core::record::level::name(r.level);
    let level_colour = match r.level {
        40.. => RED,
        30..=39 => YELLOW,
        20..=29 => GREEN,
        _ => DIM,
    };
    let (d, nd) = paint(colour, DIM);
    let (l, nl) = paint(colour, level_colour);
    let _ = write!(out, "{d}{} {time}{nd} {l}{level:<8}{nl} ", r.n);
    let failed = r.status == Some(Status::Failed) || r.message.starts_with("FAILED ");
    let (f, nf) = paint(colour && failed, RED);
    out.push_str(f);
    push_line(&r.message, out);
    out.push_str(nf);
    for (k, v) in &r.fields {
        if start_fields.iter().any(|(sk, sv)| sk == k && sv == v) {
            continue;
        }
        let _ = write!(out, " {k}={v}");
    }
    if !r.error.is_empty() {
        let (e, ne) = paint(colour, RED);
        let _ = write!(out, " {e}error=");
        push_line(&format!("{:?}", r.error), out);
        out.push_str(ne);
    }
    out.push('\n');
}

/// `850µs`, `12.3ms`, `1.50s`, `2m03s`.
fn duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.0}µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        1_000_000_000..=59_999_999_999 => format!("{:.2}s", ns as f64 / 1e9),
        _ => format!("{}m{:02}s", ns / 60_000_000_000, ns / 1_000_000_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(task: &str, n: u32, t: u64, msg: &str, status: Option<Status>) -> Rec {
        Rec {
            task: task.into(),
            n,
            time_ns: t,
            level: if status == Some(Status::Failed) {
                40
            } else {
                20
            },
            message: msg.into(),
            status,
            duration_ns: status.filter(|s| *s != Status::Started).map(|_| 5_000_000),
            error: if status == Some(Status::Failed) {
                "boom".into()
            } else {
                String::new()
            },
            host: "h".into(),
            pid: 1,
            program: "p".into(),
            python: false,
            fields: vec![],
            json: "{}".into(),
        }
    }

    #[test]
    fn nesting_order_status_and_gaps() {
        use Status::*;
        let recs = vec![
            // Out of arrival order on purpose.
            rec("r/2", 2, 50, "FAILED child two", Some(Failed)),
            rec("r", 1, 10, "root", Some(Started)),
            rec("r/1", 1, 20, "child one", Some(Started)),
            rec("r/2", 1, 40, "child two", Some(Started)),
            rec("r/1", 4, 30, "done one", Some(Succeeded)),
            // r/4/1 without r/4 and without r/3: missing middles.
            rec("r/4/1", 1, 60, "grandchild", Some(Started)),
            rec("r", 3, 70, "FAILED root", Some(Failed)),
        ];
        let tree = Tree::build("r", recs);
        let mut text = String::new();
        tree.text(false, &mut text);
        let expected = "\
r  root  [FAILED 5.0ms]  h/1 p 1970-01-01T00:00:00.000000Z
├── /1  child one  [succeeded 5.0ms]  h/1 p
│   ├── ┄ records 2..3 missing
│   └── 4 00:00:00.000000 INFO     done one
├── /2  child two  [FAILED 5.0ms]  h/1 p
│   └── 2 00:00:00.000000 ERROR    FAILED child two error=\"boom\"
├── ┄ subtask /3: no record arrived
├── /4  (no record of this task arrived)  [no records]
│   └── /4/1  grandchild  [running]  h/1 p
├── ┄ record 2 missing
└── 3 00:00:00.000000 ERROR    FAILED root error=\"boom\"
5 tasks: 1 succeeded, 2 failed, 1 running, 2 missing; 3 records missing
FAILED: r, /2
";
        assert_eq!(text, expected, "\n{text}");
        let mut jsonl = String::new();
        tree.jsonl(&mut jsonl);
        let lines: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let tasks: Vec<&str> = lines.iter().map(|v| v["task"].as_str().unwrap()).collect();
        assert_eq!(tasks, ["r", "r/1", "r/2", "r/4", "r/4/1"]);
        assert_eq!(lines[2]["status"], "failed");
        assert_eq!(lines[1]["missing_records"], serde_json::json!([[2, 3]]));
        assert_eq!(lines[0]["missing_subtasks"], serde_json::json!([3]));
        assert_eq!(lines[3]["status"], "missing");
    }

    #[test]
    fn python_tasks_count_from_zero_without_status() {
        let mut a = rec("p", 0, 1, "job", None);
        a.python = true;
        let mut b = rec("p", 1, 2, "working", None);
        b.python = true;
        let mut c = rec("p", 2, 3, "job", None);
        c.python = true;
        let tree = Tree::build("p", vec![c, a, b]);
        let s = tree.summary("p").unwrap();
        assert_eq!(s.status, "succeeded");
        assert!(s.gaps.is_empty());
        assert_eq!(s.duration_ns, Some(2));
    }

    #[test]
    fn ids_and_filters() {
        assert_eq!(normalise(" 3@abc/1/ "), "abc/1");
        assert_eq!(filter_source("a\"b"), "task under \"a\\\"b\"");
        assert!(distlog_filter::Filter::parse(&filter_source("x\\y\n\u{1}")).is_ok());
        assert_eq!(duration(850_000), "850µs");
        assert_eq!(duration(12_345_678), "12.3ms");
        assert_eq!(duration(125_000_000_000), "2m05s");
    }
}
