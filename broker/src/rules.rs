//! Rules compiled for routing: which records of a batch go to which
//! processors.
//!
//! A record goes to every processor of every rule whose filter it passes,
//! once per processor, and to the `default` processors when it passes
//! none. Filters run on the archived records, zero-copy. When every filter
//! is `true` (the embedded default) no record is looked at.
//!
//! From [`SET_FROM`] rules on, the filters are evaluated together as one
//! [`FilterSet`] (shared tests once, one index per field, results memoized
//! per set of passing tests); below it each filter runs alone, which is
//! cheaper for a few rules (see PERFORMANCE.md, "Issue 17: many rules").

use crate::config::Checked;
use crate::processor::Selection;
use distlog_core::wire::BatchRef;
use distlog_filter::{Filter, FilterSet, RecordView};

/// Most processors a config may route to (a record's targets are a 64-bit
/// mask).
pub const MAX_PROCESSORS: usize = 64;

/// From this many rules on, they are evaluated as one [`FilterSet`]
/// (measured crossover: `cargo bench --bench filter_vm -- filter_rules`).
pub const SET_FROM: usize = 10;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, for metrics.
    pub name: String,
    /// Its filter.
    pub filter: Filter,
    /// Bit `i` set: processor `i` of [`RuleSet::processors`].
    pub targets: u64,
}

/// The rules of one config generation.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Bumped on every reload.
    pub generation: u64,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Targets of records that match no rule.
    pub default: u64,
    /// Processor names, indexed by target bit.
    pub processors: Vec<String>,
    all_always: bool,
    /// The rules' filters together, from [`SET_FROM`] rules on.
    set: Option<FilterSet>,
    /// Per rule, its targets (the set's masks).
    masks: Vec<u64>,
}

/// Where one batch's records go.
#[derive(Debug, Default)]
pub struct Routed {
    /// `(processor index, records)` for every processor that gets some.
    pub routes: Vec<(usize, Selection)>,
    /// Records matched, per rule.
    pub rule_hits: Vec<u32>,
    /// Records that matched no rule.
    pub unmatched: u32,
}

impl RuleSet {
    /// Compiles the rules of a checked config.
    pub fn new(checked: &Checked, generation: u64) -> Result<RuleSet, String> {
        let c = &checked.config;
        let processors: Vec<String> = c.processors.keys().cloned().collect();
        if processors.len() > MAX_PROCESSORS {
            return Err(format!(
                "{} processors configured; at most {MAX_PROCESSORS}",
                processors.len()
            ));
        }
        let mask = |names: &[String]| {
            names.iter().fold(0u64, |m, n| {
                m | processors
                    .iter()
                    .position(|p| p == n)
                    .map_or(0, |i| 1u64 << i)
            })
        };
        let rules: Vec<Rule> = c
            .rules
            .iter()
            .zip(&checked.filters)
            .enumerate()
            .map(|(i, (r, f))| Rule {
                name: r.name.clone().unwrap_or_else(|| format!("rule{i}")),
                filter: f.clone(),
                targets: mask(&r.processors),
            })
            .collect();
        let all_always = !rules.is_empty() && rules.iter().all(|r| r.filter.is_always());
        let set = if rules.len() >= SET_FROM && !all_always {
            let filters: Vec<Filter> = rules.iter().map(|r| r.filter.clone()).collect();
            let set = FilterSet::from_filters(&filters)
                .map_err(|e| format!("rules as one filter set: {e}"))?;
            Some(set)
        } else {
            None
        };
        Ok(RuleSet {
            generation,
            masks: rules.iter().map(|r| r.targets).collect(),
            default: mask(&c.default),
            all_always,
            rules,
            processors,
            set,
        })
    }

    /// Routes the records of `batch`, which arrived under `system`.
    pub fn route(&self, system: u8, batch: BatchRef<'_>) -> Routed {
        let n = batch.len() as u32;
        let mut out = Routed {
            rule_hits: vec![0; self.rules.len()],
            ..Routed::default()
        };
        if n == 0 {
            return out;
        }
        if self.rules.is_empty() || self.all_always {
            let targets = if self.rules.is_empty() {
                out.unmatched = n;
                self.default
            } else {
                out.rule_hits.iter_mut().for_each(|h| *h = n);
                self.rules.iter().fold(0, |m, r| m | r.targets)
            };
            out.routes = bits(targets).map(|p| (p, Selection::All)).collect();
            return out;
        }
        match &self.set {
            Some(set) => {
                // The set's tables taken once for the batch; a record's
                // targets and its rules' hits worked out once per distinct
                // list of rules.
                let mut router = set.router(batch, &self.masks);
                self.pick(system, batch, &mut out, |view, _| router.route(view));
                router.add_hits(&mut out.rule_hits);
            }
            None => self.pick(system, batch, &mut out, |view, rule_hits| {
                let (mut targets, mut matched) = (0, false);
                for (r, hits) in self.rules.iter().zip(rule_hits.iter_mut()) {
                    if r.filter.matches(view) {
                        targets |= r.targets;
                        *hits += 1;
                        matched = true;
                    }
                }
                matched.then_some(targets)
            }),
        }
        out
    }

    /// Routes every record of `batch` to the targets `rules` gives it
    /// (`None`: it matched no rule, the default's), counting rule hits in
    /// the slice `rules` is handed. One copy per caller: the loop is
    /// compiled with its rules' evaluation in place.
    #[inline(always)]
    fn pick(
        &self,
        system: u8,
        batch: BatchRef<'_>,
        out: &mut Routed,
        mut rules: impl FnMut(&RecordView<'_>, &mut [u32]) -> Option<u64>,
    ) {
        let n = batch.len() as u32;
        let mut picked: Vec<Vec<u32>> = vec![Vec::new(); self.processors.len()];
        // While every record goes where the first one goes (the usual
        // case: one rule, or records alike), nothing is kept per record;
        // the per-processor index lists start at the first that differs.
        let (mut first, mut alike) = (0u64, true);
        let sender = batch.sender();
        for (i, rec) in batch.records().enumerate() {
            let view = RecordView::new(system, sender, rec);
            let targets = match rules(&view, &mut out.rule_hits) {
                Some(t) => t,
                None => {
                    out.unmatched += 1;
                    self.default
                }
            };
            if alike {
                if i == 0 {
                    first = targets;
                    continue;
                }
                if targets == first {
                    continue;
                }
                alike = false;
                for p in bits(first) {
                    picked[p].reserve(n as usize);
                    picked[p].extend(0..i as u32);
                }
            }
            for p in bits(targets) {
                let ix = &mut picked[p];
                if ix.capacity() == 0 {
                    // Room for the rest of the batch at once, not a
                    // doubling per power of two.
                    ix.reserve(n as usize - i);
                }
                ix.push(i as u32);
            }
        }
        if alike {
            out.routes = bits(first).map(|p| (p, Selection::All)).collect();
            return;
        }
        out.routes = picked
            .into_iter()
            .enumerate()
            .filter(|(_, ix)| !ix.is_empty())
            .map(|(p, ix)| {
                let sel = if ix.len() as u32 == n {
                    Selection::All
                } else {
                    Selection::Some(ix.into())
                };
                (p, sel)
            })
            .collect();
    }
}

fn bits(mut m: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if m == 0 {
            return None;
        }
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        Some(i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use distlog_core::record::Record;
    use distlog_core::wire::{encode_batch_to_vec, Batch, OwnedBatch};

    /// The records `routed` sends to the processor named `name`.
    fn route_of(rs: &RuleSet, routed: &Routed, name: &str) -> Option<Selection> {
        let i = rs.processors.iter().position(|p| p == name).unwrap();
        routed
            .routes
            .iter()
            .find(|(p, _)| *p == i)
            .map(|(_, s)| s.clone())
    }

    fn batch(levels: &[u8]) -> OwnedBatch {
        let b = Batch {
            records: levels
                .iter()
                .enumerate()
                .map(|(i, &level)| Record {
                    seq: i as u64,
                    level,
                    ..Record::default()
                })
                .collect(),
            ..Batch::default()
        };
        OwnedBatch::from_body(&encode_batch_to_vec(&b)).unwrap()
    }

    const SRC: &str = "processors:
  store: {type: store}
  errors: {type: console}
  warns: {type: console}
  rest: {type: console}
rules:
  - name: errors
    filter: level >= error
    processors: [errors, store]
  - name: warns
    filter: level >= warn
    processors: [warns, store]
default: [rest]
";

    #[test]
    fn records_go_to_each_matching_rules_processors_once_and_the_rest_to_default() {
        let rs = RuleSet::new(&Config::parse(SRC).unwrap(), 1).unwrap();
        let b = batch(&[20, 40, 30, 10, 50]);
        let routed = rs.route(b'T', b.get());
        let by_name = |name: &str| route_of(&rs, &routed, name);
        let some = |v: &[u32]| Some(Selection::Some(v.into()));
        assert_eq!(by_name("errors"), some(&[1, 4]));
        assert_eq!(by_name("warns"), some(&[1, 2, 4]));
        assert_eq!(by_name("store"), some(&[1, 2, 4]), "once, not twice");
        assert_eq!(by_name("rest"), some(&[0, 3]));
        assert_eq!(routed.rule_hits, vec![2, 3]);
        assert_eq!(routed.unmatched, 2);

        let all_errors = batch(&[40, 50]);
        let routed = rs.route(b'T', all_errors.get());
        assert!(routed.routes.iter().all(|(_, s)| *s == Selection::All));
        assert_eq!(routed.routes.len(), 3);
    }

    #[test]
    fn records_that_differ_after_a_run_of_alike_ones_keep_their_routes() {
        // The first three alike (errors + warns + store), then one to the
        // default, then alike again: the per-processor lists are made at
        // the fourth record and must hold the three before it.
        let rs = RuleSet::new(&Config::parse(SRC).unwrap(), 1).unwrap();
        let b = batch(&[40, 50, 40, 10, 40, 30]);
        let routed = rs.route(b'T', b.get());
        let by_name = |name: &str| route_of(&rs, &routed, name);
        let some = |v: &[u32]| Some(Selection::Some(v.into()));
        assert_eq!(by_name("errors"), some(&[0, 1, 2, 4]));
        assert_eq!(by_name("warns"), some(&[0, 1, 2, 4, 5]));
        assert_eq!(by_name("store"), some(&[0, 1, 2, 4, 5]));
        assert_eq!(by_name("rest"), some(&[3]));
        assert_eq!(routed.rule_hits, vec![4, 5]);
        assert_eq!(routed.unmatched, 1);

        // Every record to nothing (a default of no processors): no route.
        let none = RuleSet::new(
            &Config::parse("processors:\n  s: {type: console}\nrules:\n  - filter: level >= error\n    processors: [s]\ndefault: []\n").unwrap(),
            1,
        )
        .unwrap();
        let routed = none.route(b'T', batch(&[10, 20]).get());
        assert!(routed.routes.is_empty());
        assert_eq!(routed.unmatched, 2);
    }

    #[test]
    fn many_rules_route_as_one_set_exactly_as_alone() {
        // SET_FROM + 4 rules: the set path; each rule's hits must be what
        // that rule's filter alone gives, counted here by hand.
        let n = SET_FROM + 4;
        let mut src =
            String::from("processors:\n  store: {type: store}\n  rest: {type: console}\nrules:\n");
        for i in 0..n {
            src.push_str(&format!(
                "  - filter: level >= {}\n    processors: [store]\n",
                10 * (i % 6)
            ));
        }
        src.push_str("default: [rest]\n");
        let rs = RuleSet::new(&Config::parse(&src).unwrap(), 1).unwrap();
        assert!(rs.set.is_some());
        let b = batch(&[0, 10, 20, 30, 40, 50, 5]);
        let routed = rs.route(b'T', b.get());
        let want: Vec<u32> = (0..n)
            .map(|i| {
                [0u8, 10, 20, 30, 40, 50, 5]
                    .iter()
                    .filter(|&&l| l >= 10 * (i % 6) as u8)
                    .count() as u32
            })
            .collect();
        assert_eq!(routed.rule_hits, want);
        assert_eq!(routed.unmatched, 0, "`level >= 0` matches every record");
        assert_eq!(
            routed.routes,
            vec![(
                rs.processors.iter().position(|p| p == "store").unwrap(),
                Selection::All
            )]
        );
    }

    #[test]
    fn embedded_default_routes_whole_batches_without_looking() {
        let rs = RuleSet::new(&Config::parse("").unwrap(), 1).unwrap();
        let b = batch(&[20, 40]);
        let routed = rs.route(b'P', b.get());
        assert_eq!(routed.routes, vec![(0, Selection::All)]);
        assert_eq!(routed.unmatched, 2);
    }
}
