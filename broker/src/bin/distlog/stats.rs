//! `distlog stats`: what a store holds.

use crate::out::Out;
use crate::source::{self, Selection, Source};
use crate::{CliError, DataDir};
use distlog_filter::Filter;
use std::collections::BTreeMap;

/// Arguments of `distlog stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    dir: DataDir,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Scan threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Default)]
struct Totals {
    records: u64,
    batches: u64,
    invalid: u64,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    levels: BTreeMap<u8, u64>,
    hosts: BTreeMap<String, u64>,
    perf: u64,
}

impl Totals {
    fn merge(&mut self, o: Totals) {
        self.records += o.records;
        self.batches += o.batches;
        self.invalid += o.invalid;
        self.perf += o.perf;
        self.first_ns = [self.first_ns, o.first_ns].into_iter().flatten().min();
        self.last_ns = [self.last_ns, o.last_ns].into_iter().flatten().max();
        for (k, v) in o.levels {
            *self.levels.entry(k).or_default() += v;
        }
        for (k, v) in o.hosts {
            *self.hosts.entry(k).or_default() += v;
        }
    }
}

pub fn run(a: Args) -> Result<(), CliError> {
    let segments = source::segments(&a.dir.data_dir)?;
    let bytes: u64 = segments
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    let source = Source::Store(a.dir.data_dir.clone(), a.threads);
    let always = Filter::always();
    let sel = Selection {
        filter: &always,
        since: 0,
        until: u64::MAX,
    };
    let mut all = Totals::default();
    source.scan(
        &sel,
        |piece| {
            let mut t = Totals::default();
            let tally = piece.records(&sel, |_, sender, r| {
                t.records += 1;
                let time = r.time_ns();
                t.first_ns = Some(t.first_ns.map_or(time, |f| f.min(time)));
                t.last_ns = Some(t.last_ns.map_or(time, |l| l.max(time)));
                *t.levels.entry(r.level()).or_default() += 1;
                if r.kind() == distlog_core::record::kind::PERF {
                    t.perf += 1;
                }
                let host = sender.host.as_str();
                match t.hosts.get_mut(host) {
                    Some(n) => *n += 1,
                    None => {
                        t.hosts.insert(host.to_owned(), 1);
                    }
                }
                true
            });
            (t.batches, t.invalid) = (tally.batches, tally.skipped);
            t
        },
        |t| {
            all.merge(t);
            Ok(true)
        },
    )?;
    let time = |ns: Option<u64>| {
        ns.map(|ns| {
            let mut s = String::new();
            distlog_filter::render::rfc3339(ns, &mut s);
            s
        })
    };
    let mut out = Out::new();
    if a.json {
        let levels: serde_json::Map<String, serde_json::Value> = all
            .levels
            .iter()
            .map(|(l, n)| (level_label(*l), (*n).into()))
            .collect();
        let v = serde_json::json!({
            "segments": segments.len(),
            "bytes": bytes,
            "batches": all.batches,
            "invalid_batches": all.invalid,
            "records": all.records,
            "perf_records": all.perf,
            "first": time(all.first_ns),
            "last": time(all.last_ns),
            "levels": levels,
            "hosts": all.hosts,
        });
        out.line(&v.to_string())?;
    } else {
        out.line(&format!("segments  {}", segments.len()))?;
        out.line(&format!("bytes     {bytes}"))?;
        out.line(&format!("batches   {}", all.batches))?;
        out.line(&format!("records   {} ({} perf)", all.records, all.perf))?;
        if all.invalid > 0 {
            out.line(&format!("invalid   {} batches (skipped)", all.invalid))?;
        }
        out.line(&format!(
            "first     {}",
            time(all.first_ns).unwrap_or_else(|| "-".into())
        ))?;
        out.line(&format!(
            "last      {}",
            time(all.last_ns).unwrap_or_else(|| "-".into())
        ))?;
        out.line("levels")?;
        for (l, n) in &all.levels {
            out.line(&format!("  {:<10} {n}", level_label(*l)))?;
        }
        out.line("hosts")?;
        let mut hosts: Vec<_> = all.hosts.iter().collect();
        hosts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (h, n) in hosts {
            let h = if h.is_empty() { "(none)" } else { h.as_str() };
            out.line(&format!("  {h:<20} {n}"))?;
        }
    }
    out.flush()
}

/// `INFO`, or `INFO(25)` for a level between the standard ones.
fn level_label(l: u8) -> String {
    let name = distlog_core::record::level::name(l);
    if matches!(l, 5 | 10 | 20 | 30 | 40 | 50) {
        name.to_owned()
    } else {
        format!("{name}({l})")
    }
}
