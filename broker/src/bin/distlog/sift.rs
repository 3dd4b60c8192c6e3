//! Skipping whole batches on what their records share.
//!
//! Every record of a stored batch has the batch's sender (`host`,
//! `process`, `pid`) and topic (`system`). [`Sift::new`] derives from a
//! filter a weaker one over those fields alone: the filter with every
//! other comparison replaced by "maybe" (`true` where it counts for the
//! filter, after pushing each `not` down to the comparisons). When the
//! weaker filter rejects a batch's sender, the filter rejects every record
//! of the batch, and the scan skips it after reading its sender
//! ([`distlog_core::wire::access_sender`]), without checking or reading
//! its records.
//!
//! `host == "web-1" and level >= warn` sifts on `host == "web-1"`;
//! `host == "a" or message contains "x"` cannot sift (a record of any
//! host may contain "x"); `not (host == "a" and level >= warn)` sifts on
//! nothing either, and `not (host == "a" or level >= warn)` on
//! `not (host == "a")`.
//!
//! The weaker filter is compiled by the filter crate itself (printed from
//! the syntax tree and parsed), so it has the language's semantics
//! exactly; it is run on the batch's sender with a placeholder record,
//! which it never reads. A batch skipped this way is not checked past its
//! sender, so damage past it is not counted among the skipped batches.

use distlog_core::record::Record;
use distlog_core::wire::{encode_batch_to_vec, ArchivedSender, Batch, OwnedBatch};
use distlog_filter::ast::{Cmp, Expr, FieldRef};
use distlog_filter::{Filter, RecordView};

/// A filter over batch-level fields that every record a filter accepts
/// passes: a batch whose sender fails it holds no such record.
pub struct Sift {
    filter: Filter,
    /// A batch of one default record, for [`RecordView`]'s record.
    placeholder: OwnedBatch,
}

impl Sift {
    /// The sift of `filter`, or `None` when it would keep every batch.
    pub fn new(filter: &Filter) -> Option<Sift> {
        if filter.is_always() {
            return None;
        }
        let expr = distlog_filter::parse(filter.source()).ok()?;
        let weaker = simplify(over(&expr, true));
        if weaker == Expr::Bool(true) {
            return None;
        }
        let filter = Filter::parse(&weaker.to_string()).ok()?;
        if filter.is_always() {
            return None;
        }
        let body = encode_batch_to_vec(&Batch {
            records: vec![Record::default()],
            ..Batch::default()
        });
        let placeholder = OwnedBatch::from_aligned(body).ok()?;
        Some(Sift {
            filter,
            placeholder,
        })
    }

    /// Whether a batch from `sender` under `system` may hold records the
    /// filter accepts (false: it holds none).
    #[inline]
    pub fn keeps(&self, system: u8, sender: &ArchivedSender) -> bool {
        let Some(record) = self.placeholder.get().record(0) else {
            return true;
        };
        self.filter
            .matches(&RecordView::new(system, sender, record))
    }

    /// The weaker filter's source (for tests and `--explain`-like output).
    #[cfg(test)]
    pub fn source(&self) -> &str {
        self.filter.source()
    }
}

/// Whether a comparison reads only what every record of a batch shares.
fn batch_level(c: &Cmp) -> bool {
    matches!(
        c.field,
        FieldRef::Host | FieldRef::Process | FieldRef::Pid | FieldRef::System
    )
}

/// An expression over batch-level comparisons that is true wherever `e`
/// is (`positive`) or wherever `not e` is (`!positive`).
fn over(e: &Expr, positive: bool) -> Expr {
    match e {
        Expr::Bool(b) => Expr::Bool(*b == positive),
        Expr::Not(x) => over(x, !positive),
        Expr::And(xs) | Expr::Or(xs) => {
            let terms = xs.iter().map(|x| over(x, positive)).collect();
            // not (a and b) is (not a) or (not b), and the other way round.
            if matches!(e, Expr::And(_)) == positive {
                Expr::And(terms)
            } else {
                Expr::Or(terms)
            }
        }
        Expr::Cmp(c) if batch_level(c) => {
            if positive {
                Expr::Cmp(c.clone())
            } else {
                Expr::Not(Box::new(Expr::Cmp(c.clone())))
            }
        }
        Expr::Cmp(_) => Expr::Bool(true),
    }
}

/// Folds the constants `over` leaves.
fn simplify(e: Expr) -> Expr {
    match e {
        Expr::And(xs) => {
            let mut terms = Vec::new();
            for x in xs.into_iter().map(simplify) {
                match x {
                    Expr::Bool(true) => {}
                    Expr::Bool(false) => return Expr::Bool(false),
                    x => terms.push(x),
                }
            }
            match terms.len() {
                0 => Expr::Bool(true),
                1 => terms.pop().expect("one term"),
                _ => Expr::And(terms),
            }
        }
        Expr::Or(xs) => {
            let mut terms = Vec::new();
            for x in xs.into_iter().map(simplify) {
                match x {
                    Expr::Bool(false) => {}
                    Expr::Bool(true) => return Expr::Bool(true),
                    x => terms.push(x),
                }
            }
            match terms.len() {
                0 => Expr::Bool(false),
                1 => terms.pop().expect("one term"),
                _ => Expr::Or(terms),
            }
        }
        Expr::Not(x) => match simplify(*x) {
            Expr::Bool(b) => Expr::Bool(!b),
            x => Expr::Not(Box::new(x)),
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog_core::record::{Field, Value};
    use distlog_core::wire::{access_batch, Sender};

    fn sift(src: &str) -> Option<String> {
        Sift::new(&Filter::parse(src).unwrap()).map(|s| s.source().to_owned())
    }

    #[test]
    fn sifts_on_batch_level_comparisons_only_where_they_decide() {
        assert_eq!(
            sift(r#"host == "nosuch""#).as_deref(),
            Some(r#"host == "nosuch""#)
        );
        assert_eq!(
            sift(r#"host == "a" and level >= warn"#).as_deref(),
            Some(r#"host == "a""#)
        );
        assert_eq!(sift(r#"host == "a" or message contains "x""#), None);
        assert_eq!(sift(r#"not (host == "a" and level >= warn)"#), None);
        assert_eq!(
            sift(r#"not (host == "a" or level >= warn)"#).as_deref(),
            Some(r#"not (host == "a")"#)
        );
        assert_eq!(
            sift(r#"system == production and pid in [1, 2] and process not contains "x\"\\""#)
                .as_deref(),
            Some(r#"(system == production and pid in [1, 2] and process not contains "x\"\\")"#)
        );
        assert_eq!(sift("level >= warn"), None);
        assert_eq!(sift("true"), None);
    }

    /// Random filters mixing batch-level and record-level comparisons,
    /// random batches: where the sift drops a batch, the filter accepts
    /// none of its records (and the sift keeps at least the batches whose
    /// records match).
    #[test]
    fn a_sifted_batch_holds_no_matching_record() {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let mut rnd = |n: usize| rng.usize(..n.max(1));
        const ATOMS: [&str; 14] = [
            r#"host == "a""#,
            r#"host starts_with "b""#,
            r#"host in ["a", "c"]"#,
            r#"process == "p""#,
            r#"process not contains "q""#,
            "pid == 7",
            "pid > 3",
            "pid != 7",
            "system == test",
            "system in [staging, production]",
            "level >= warn",
            r#"message contains "m""#,
            "field.k == 1",
            r#"target == "t""#,
        ];
        let mut sifted = 0;
        for _ in 0..3_000 {
            fn expr(rnd: &mut impl FnMut(usize) -> usize, depth: u32) -> String {
                match if depth > 2 { 0 } else { rnd(4) } {
                    0 => ATOMS[rnd(ATOMS.len())].to_owned(),
                    1 => format!("not ({})", expr(rnd, depth + 1)),
                    2 => format!("({} and {})", expr(rnd, depth + 1), expr(rnd, depth + 1)),
                    _ => format!("({} or {})", expr(rnd, depth + 1), expr(rnd, depth + 1)),
                }
            }
            let src = expr(&mut rnd, 0);
            let filter = Filter::parse(&src).unwrap();
            let Some(s) = Sift::new(&filter) else {
                continue;
            };
            let host = ["a", "b", "c", "d"][rnd(4)];
            let batch = Batch {
                sender: Sender {
                    host: host.into(),
                    pid: [2, 3, 7][rnd(3)],
                    program: ["p", "q", "pq"][rnd(3)].into(),
                    ..Sender::default()
                },
                records: (0..4)
                    .map(|i| Record {
                        seq: i,
                        level: [10, 30, 40][rnd(3)],
                        target: ["t", "u"][rnd(2)].into(),
                        message: ["m", "n"][rnd(2)].into(),
                        fields: vec![Field {
                            key: "k".into(),
                            value: Value::I64(rnd(2) as i64),
                        }],
                        ..Record::default()
                    })
                    .collect(),
                ..Batch::default()
            };
            let body = encode_batch_to_vec(&batch);
            let b = access_batch(&body).unwrap();
            let system = [b'T', b'S', b'P'][rnd(3)];
            if !s.keeps(system, b.sender()) {
                sifted += 1;
                for r in b.records() {
                    assert!(
                        !filter.matches(&RecordView::new(system, b.sender(), r)),
                        "{src} sifted by {} on {host}",
                        s.source()
                    );
                }
            }
        }
        assert!(sifted > 300, "{sifted}");
    }
}
