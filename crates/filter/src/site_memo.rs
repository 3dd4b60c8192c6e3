//! Deferred-message plans kept per (batch, call site), for scans that
//! walk whole batches (`distlog query`).
//!
//! [`Filter::matches`](super::Filter::matches) sees one record at a time:
//! for a text test on a deferred message it looks the record's format up
//! in the thread's plan cache (`message_match.rs`: the format's text
//! compared with the cached ones'), then the needle's verdict and the
//! test's alignments in the plan, on every record. A scan that hands the
//! filter a batch's records in turn knows more: each record names its
//! call site by index into the batch's site table, and every record of a
//! site shares its format. [`BatchScan`] keeps, for the batch in hand, one
//! [`SitePlan`] per (site index, message test), made on the site's first
//! record; the site's other records run the test on their arguments
//! alone (`contains "record 4242 "` on `"loadgen record {} of thread {}"`:
//! the first argument compared with 4242 as a number).
//!
//! The result is [`Filter::matches`](super::Filter::matches)'s on every
//! record: a plan is the same lookups, made once ([`SitePlan::run`] is
//! what `site_test` runs per record), and a record is only looked up in
//! the batch whose site table holds its site ([`RecordRef::site_in`]);
//! any other record, a site index past [`SITES`] or a test past the
//! program's first [`TESTS`] message tests takes the per-record path.
//!
//! # Bounds
//!
//! At most [`SITES`] x [`TESTS`] plans are kept, only the current
//! batch's (they are dropped when the next batch starts: the plans they
//! share stay in the thread's cache), so a batch of many sites costs no
//! more memory than that many plans (formats of at most 4 KiB,
//! `message_match.rs`). The slot table grows once, to at most that many
//! entries; per record nothing is allocated.

use super::message_align::IntWords;
use super::message_match::SitePlan;
use super::program::{Instr, NumField, Program, StrField, StrTest, Test, ACCEPT, REJECT};
use super::vm::Deferred;
use super::RecordView;
use distlog_core::view::RecordRef;
use distlog_core::wire::{ArchivedSender, ArchivedWireBatch};

/// Site indexes below this get plans kept.
pub(super) const SITES: usize = 64;
/// Distinct message tests of a program that get plans kept.
pub(super) const TESTS: usize = 8;

/// A filter's scan of whole batches: [`Filter::matches`](super::Filter::matches)
/// with the per-site work of deferred messages done once per batch and
/// call site (module docs). Made by [`Filter::batch_scan`](super::Filter::batch_scan);
/// one per thread (it is not `Send`).
///
/// ```
/// use distlog_core::record::{Record, Value};
/// use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
/// use distlog_filter::{Filter, RecordView};
///
/// let record = |seq, n| Record {
///     seq,
///     format: "took {} ms".into(),
///     args: vec![Value::U64(n)],
///     ..Record::default()
/// };
/// let body = encode_batch_to_vec(&Batch {
///     records: vec![record(0, 5), record(1, 42)],
///     ..Batch::default()
/// });
/// let batch = access_batch(&body).unwrap();
/// let filter = Filter::parse(r#"message contains "took 42 ""#)?;
/// let mut scan = filter.batch_scan();
/// let mut in_batch = scan.batch(batch);
/// let hits: Vec<bool> = batch
///     .records()
///     .map(|r| in_batch.matches(&RecordView::new(b'P', batch.sender(), r)))
///     .collect();
/// assert_eq!(hits, [false, true]);
/// # Ok::<(), distlog_filter::FilterError>(())
/// ```
pub struct BatchScan<'f> {
    program: &'f Program,
    memo: Memo,
    single: Option<Single>,
    range: Option<OneRange>,
}

/// [`BatchScan`] on one batch: [`InBatch::matches`] for its records.
pub struct InBatch<'s, 'b> {
    program: &'s Program,
    sites: Sites<'s, 'b>,
    single: Option<Single>,
    range: Option<OneRange>,
}

/// A program that is one message test (`message == "..."`, or its
/// negation): the test, the first of [`Memo::tests`], and the verdicts
/// when it holds and when it does not. [`InBatch::matches`] runs it
/// without the VM.
#[derive(Clone, Copy)]
struct Single {
    test: StrTest,
    hit: bool,
    miss: bool,
}

impl Single {
    fn of(program: &Program) -> Option<Single> {
        let (ins, hit, miss) = one_test(program)?;
        let Test::Str {
            field: StrField::Message,
            test,
        } = ins.test
        else {
            return None;
        };
        Some(Single { test, hit, miss })
    }
}

/// A program that is one range test on the level (`level == warn`,
/// `level >= error`, or its negation): the range and its verdicts.
/// [`InBatch::matches`] runs it in line, without the VM (only the level:
/// any field in line cost the other paths' loop registers).
#[derive(Clone, Copy)]
struct OneRange {
    lo: u64,
    hi: u64,
    hit: bool,
    miss: bool,
}

impl OneRange {
    fn of(program: &Program) -> Option<OneRange> {
        let (ins, hit, miss) = one_test(program)?;
        let Test::Range {
            field: NumField::Level,
            lo,
            hi,
        } = ins.test
        else {
            return None;
        };
        Some(OneRange { lo, hi, hit, miss })
    }
}

/// The instruction of a program that is exactly one, and its verdicts
/// when its test holds and when it does not (both targets final).
fn one_test(program: &Program) -> Option<(&Instr, bool, bool)> {
    let [ins] = program.code.as_slice() else {
        return None;
    };
    let verdict = |to: u32| match to {
        ACCEPT => Some(true),
        REJECT => Some(false),
        _ => None,
    };
    Some((ins, verdict(ins.jt)?, verdict(ins.jf)?))
}

/// The plans of the batch in hand.
struct Memo {
    /// The program's first distinct message tests, each a column.
    tests: Vec<StrTest>,
    /// Row `site`, column `test`: `site * tests.len() + test`.
    slots: Vec<Option<SitePlan>>,
    /// The slots filled in this batch.
    filled: Vec<u32>,
    /// A [`Single`] program's verdicts per site (its slots: one test),
    /// learnt on the site's first record ([`Sites::learn`]): the plan's
    /// quick verdicts without its lookups. Fixed for every record when
    /// the site has no arguments or its format decides the test; else a
    /// tag and a word per argument (`==` on integers); else
    /// [`IntWords::NONE`] (the plan's path).
    quick: Vec<IntWords>,
    /// Whether the program is a [`Single`] (`quick` is learnt).
    single: bool,
}

/// What the VM asks about deferred messages during [`InBatch::matches`].
struct Sites<'s, 'b> {
    memo: &'s mut Memo,
    batch: &'b ArchivedWireBatch,
}

impl<'f> BatchScan<'f> {
    pub(super) fn new(program: &'f Program) -> BatchScan<'f> {
        let mut tests = Vec::new();
        for ins in &program.code {
            if let Test::Str {
                field: StrField::Message,
                test,
            } = ins.test
            {
                if !tests.contains(&test) && tests.len() < TESTS {
                    tests.push(test);
                }
            }
        }
        BatchScan {
            program,
            single: Single::of(program),
            range: OneRange::of(program),
            memo: Memo {
                tests,
                slots: Vec::new(),
                filled: Vec::new(),
                quick: Vec::new(),
                single: Single::of(program).is_some(),
            },
        }
    }

    /// Starts on `batch`: the previous batch's plans are dropped.
    pub fn batch<'s, 'b>(&'s mut self, batch: &'b ArchivedWireBatch) -> InBatch<'s, 'b> {
        let memo = &mut self.memo;
        for k in memo.filled.drain(..) {
            memo.slots[k as usize] = None;
            memo.quick[k as usize] = IntWords::NONE;
        }
        InBatch {
            program: self.program,
            sites: Sites { memo, batch },
            single: self.single,
            range: self.range,
        }
    }
}

impl InBatch<'_, '_> {
    /// Whether the record passes the filter: exactly
    /// [`Filter::matches`](super::Filter::matches). Allocates nothing in
    /// steady state. Forced in line: it is a scan loop's body (a few
    /// compares before the calls of the message and VM paths).
    #[inline(always)]
    pub fn matches(&mut self, view: &RecordView<'_>) -> bool {
        if let Some(one) = self.single {
            // What the VM would do, without its loop and dispatch.
            if !view.record.format().is_empty() {
                return if self.sites.single(self.program, one.test, view.record) {
                    one.hit
                } else {
                    one.miss
                };
            }
        }
        if let Some(one) = self.range {
            // The VM's test, without its loop and dispatch.
            let level = u64::from(view.record.level());
            return if level.wrapping_sub(one.lo) <= one.hi.wrapping_sub(one.lo) {
                one.hit
            } else {
                one.miss
            };
        }
        run(self.program, view, &mut self.sites)
    }

    /// Whether the program is one message test, whose verdicts
    /// [`InBatch::matches_record`] reads from the record's site.
    pub fn learns_sites(&self) -> bool {
        self.single.is_some()
    }

    /// [`InBatch::matches`] on `RecordView::new(system, sender, r)`, for a
    /// scan loop of a program that [`learns_sites`](Self::learns_sites):
    /// the site's learnt verdict in line (`message ==` on integers: a tag
    /// and a word per argument), the view made only past it. In the loop
    /// of any other program it cost 14 instructions a record (registers).
    #[inline(always)]
    pub fn matches_record(
        &mut self,
        system: u8,
        sender: &ArchivedSender,
        r: RecordRef<'_>,
    ) -> bool {
        if let Some(one) = self.single {
            if let Some(hit) = self.sites.quick(r) {
                return if hit { one.hit } else { one.miss };
            }
        }
        self.matches(&RecordView::new(system, sender, r))
    }
}

/// The VM with this batch's plans, out of line: inlined into a caller's
/// scan loop, the compiler read the sender's strings ahead on every
/// record for the tests that might want them (`level == warn`: 76 -> 202
/// instructions a record). It takes the view made: made in here, the VM
/// loop cost `target ==` 113 instructions a record more.
#[inline(never)]
fn run(program: &Program, view: &RecordView<'_>, sites: &mut Sites<'_, '_>) -> bool {
    program.run_with(view, sites)
}

#[cfg(test)]
impl InBatch<'_, '_> {
    /// How many plans this batch has kept so far.
    pub(crate) fn plans_made(&self) -> usize {
        self.sites.memo.filled.len()
    }

    /// The sites learnt so far: fixed verdicts, integer words, the plan's
    /// path.
    fn learnt(&self) -> [usize; 3] {
        let memo = &self.sites.memo;
        let mut n = [0; 3];
        for &k in &memo.filled {
            n[match memo.quick[k as usize].slots() {
                Some(0) => 0,
                Some(_) => 1,
                None => 2,
            }] += 1;
        }
        n
    }
}

impl Deferred for Sites<'_, '_> {
    /// Out of line, as the per-record path's: the VM's loop stays small.
    /// The plan's quick verdict here; the rest in [`Sites::slow`].
    #[inline(never)]
    fn message_test(
        &mut self,
        p: &Program,
        test: StrTest,
        r: RecordRef<'_>,
        rendered: &mut bool,
    ) -> bool {
        let t = self.memo.tests.iter().position(|k| *k == test);
        self.test_in(p, test, t, r, rendered)
    }
}

impl Sites<'_, '_> {
    /// [`Deferred::message_test`] of a [`Single`] program's test, the
    /// first of [`Memo::tests`], on a deferred message: out of line, as
    /// `message_test`.
    /// [`Deferred::message_test`] of a [`Single`] program's test, the
    /// first of [`Memo::tests`], on a deferred message: the site's learnt
    /// verdict ([`Sites::quick`]), else its plan. Out of line, as
    /// `message_test`.
    #[inline(never)]
    fn single(&mut self, p: &Program, test: StrTest, r: RecordRef<'_>) -> bool {
        debug_assert_eq!(self.memo.tests[..], [test]);
        if let Some(hit) = self.quick(r) {
            return hit;
        }
        self.test_in(p, test, Some(0), r, &mut false)
    }

    /// A [`Single`] program's verdict on `r` from its site's learnt
    /// [`IntWords`] (`None`: not learnt, or the plan's path).
    #[inline(always)]
    fn quick(&self, r: RecordRef<'_>) -> Option<bool> {
        let words = self.memo.quick.get(r.site_in(self.batch)?)?;
        words.test(r.raw_values())
    }

    /// What the records of a site get from its `plan`, made on `r`, its
    /// first record (`hit`: the verdict on it).
    #[cold]
    #[inline(never)]
    fn learn(plan: &SitePlan, r: RecordRef<'_>, hit: bool) -> IntWords {
        let args = r.arg_count();
        if args == 0 {
            // The format alone: one message for every record.
            return IntWords::fixed(hit);
        }
        if let Some(hit) = plan.site_verdict(args) {
            return IntWords::fixed(hit);
        }
        // The site's records all have `args` arguments: `IntTest::test`'s
        // count check, made once.
        (plan.int_words())
            .filter(|w| w.slots().is_some_and(|n| n <= args as usize))
            .unwrap_or(IntWords::NONE)
    }

    /// `test`, the `t`th of [`Memo::tests`] (`None`: past them), on `r`:
    /// the plan's quick verdict, else [`Sites::slow`].
    #[inline(always)]
    fn test_in(
        &mut self,
        p: &Program,
        test: StrTest,
        t: Option<usize>,
        r: RecordRef<'_>,
        rendered: &mut bool,
    ) -> bool {
        let k = self.slot(t, r);
        if let Some(Some(plan)) = k.map(|k| &self.memo.slots[k]) {
            if let Some(hit) = plan.quick(r) {
                return hit;
            }
        }
        self.slow(p, test, r, rendered, k)
    }

    /// The slot of the `t`th test on `r`'s site, when it has one.
    #[inline(always)]
    fn slot(&mut self, t: Option<usize>, r: RecordRef<'_>) -> Option<usize> {
        let site = r.site_in(self.batch).filter(|&i| i < SITES)?;
        let memo = &mut *self.memo;
        let t = t?;
        let k = site * memo.tests.len() + t;
        if k >= memo.slots.len() {
            grow(memo, k);
        }
        Some(k)
    }

    /// `test` on `r` past the plan's quick verdict: the plan of slot `k`
    /// (made on the site's first record), run; the per-record path
    /// without a slot.
    #[inline(never)]
    fn slow(
        &mut self,
        p: &Program,
        test: StrTest,
        r: RecordRef<'_>,
        rendered: &mut bool,
        k: Option<usize>,
    ) -> bool {
        match (p.site_test_of(test), k) {
            (Some(site), Some(k)) => {
                let memo = &mut *self.memo;
                let slot = &mut memo.slots[k];
                let (plan, new) = match slot {
                    Some(plan) => (&*plan, false),
                    None => (fill(slot, &mut memo.filled, k, r.format(), site), true),
                };
                let hit = plan.run(r.format(), r.args(), site);
                if new && memo.single {
                    // One test: the slot is the site. Cleared with the
                    // batch, as the plan.
                    memo.quick[k] = Sites::learn(plan, r, hit);
                }
                hit
            }
            _ => p.deferred_message_test(test, r, rendered),
        }
    }
}

/// Grows the slot table to hold slot `k` (at most [`SITES`] x [`TESTS`]).
#[cold]
#[inline(never)]
fn grow(memo: &mut Memo, k: usize) {
    memo.slots.resize_with(k + 1, || None);
    memo.quick.resize(k + 1, IntWords::NONE);
}

/// Makes the plan of slot `k` (its site's first record in the batch).
#[cold]
#[inline(never)]
fn fill<'s>(
    slot: &'s mut Option<SitePlan>,
    filled: &mut Vec<u32>,
    k: usize,
    format: &str,
    test: super::message_match::SiteTest<'_>,
) -> &'s SitePlan {
    filled.push(k as u32);
    slot.insert(SitePlan::of(format, test, true))
}

#[cfg(test)]
mod tests {
    use super::{OneRange, Single};
    use crate::tests::Rng;
    use crate::{Filter, RecordView};

    /// Which programs [`InBatch::matches`](super::InBatch::matches) runs
    /// without the VM, and with which verdicts.
    #[test]
    fn only_one_message_test_programs_skip_the_vm() {
        let single = |src: &str| {
            let f = Filter::parse(src).unwrap();
            Single::of(&f.inner.program).map(|s| (s.hit, s.miss))
        };
        assert_eq!(single(r#"message == "a 1""#), Some((true, false)));
        assert_eq!(
            single(r#"not message starts_with "a""#),
            Some((false, true))
        );
        assert_eq!(single(r#"message contains "a" and level >= warn"#), None);
        assert_eq!(single(r#"host == "a""#), None);
        assert_eq!(single("level == warn"), None);
    }

    /// Which programs [`InBatch::matches`](super::InBatch::matches) runs
    /// as one range test in line, with which verdicts.
    #[test]
    fn only_one_range_test_programs_skip_the_vm() {
        let range = |src: &str| {
            let f = Filter::parse(src).unwrap();
            OneRange::of(&f.inner.program).map(|s| (s.hit, s.miss))
        };
        assert_eq!(range("level == warn"), Some((true, false)));
        assert_eq!(range("level >= error"), Some((true, false)));
        assert_eq!(range("not level == warn"), Some((false, true)));
        assert_eq!(range("pid == 7"), None);
        assert_eq!(range("level == warn and pid == 7"), None);
        assert_eq!(range(r#"message == "a""#), None);
        assert_eq!(range(r#"host == "a""#), None);
    }

    /// One-range programs (and some that are not) give on a batch's
    /// records what [`Filter::matches`] gives, at every level, line and
    /// pid around their bounds.
    #[test]
    fn one_range_batch_scans_equal_matches() {
        use distlog_core::record::{Record, Value};
        use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch, Sender};
        let records: Vec<Record> = (0..60u64)
            .map(|i| Record {
                seq: i,
                level: (i % 6 * 10) as u8 + u8::from(i % 7 == 0),
                kind: if i % 5 == 0 { b'P' } else { b'L' },
                line: (i % 9) as u32,
                time_ns: 1_000 + i,
                format: if i % 2 == 0 {
                    "n {}".into()
                } else {
                    String::new()
                },
                message: if i % 2 == 0 {
                    String::new()
                } else {
                    "text".into()
                },
                args: if i % 2 == 0 {
                    vec![Value::U64(i)]
                } else {
                    vec![]
                },
                ..Record::default()
            })
            .collect();
        let body = encode_batch_to_vec(&Batch {
            sender: Sender {
                pid: 7,
                ..Sender::default()
            },
            first_seq: 0,
            dropped: 0,
            records,
        });
        let b = access_batch(&body).unwrap();
        let sources = [
            "level == warn",
            "level != warn",
            "level >= error",
            "level < info",
            "not level <= debug",
            "line == 3",
            "line > 4",
            "pid == 7",
            "pid == 8",
            "time < 1030",
            "level == warn or line == 3",
            r#"message == "n 4""#,
        ];
        let mut verdicts = [0usize; 2];
        for src in sources {
            let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let mut scan = f.batch_scan();
            let mut in_batch = scan.batch(b);
            for r in b.records() {
                let v = RecordView::new(b'P', b.sender(), r);
                let want = f.matches(&v);
                assert_eq!(in_batch.matches(&v), want, "{src} on {}", r.seq());
                verdicts[usize::from(want)] += 1;
            }
        }
        assert!(verdicts[0] > 100 && verdicts[1] > 100, "{verdicts:?}");
    }

    /// A one-`==` (or `ends_with`) program's verdict per site (fixed,
    /// integer words, or the plan) is the rendered message's on every
    /// record: random formats of few placeholders, integers at the edges
    /// of `U64` and `I64`, some strings, floats and missing arguments;
    /// needles whole messages and near misses (a digit changed, a sign
    /// added) and their suffixes. Every kind of site is learnt.
    #[test]
    fn one_eq_scans_equal_the_rendered_message() {
        use distlog_core::message::render_format;
        use distlog_core::record::{Record, Value, ValueRef};
        use distlog_core::wire::{access_batch, encode_batch_to_vec, Batch};
        const ATOMS: &[&str] = &["{}", "{}", "{}", "{:?}", "{{", "r ", " of ", "4", "-", "x"];
        const INTS: &[i64] = &[0, 1, 4, 42, -42, -1, i64::MAX, i64::MIN, 4242];
        let mut rng = Rng(0x00e9_5eed_c0de_0017);
        let (mut learnt, mut verdicts) = ([0usize; 3], [0usize; 2]);
        for _ in 0..150 {
            let formats: Vec<(String, usize)> = (0..4)
                .map(|_| {
                    let f: String = (0..rng.below(6)).map(|_| rng.pick(ATOMS)).collect();
                    (f, rng.below(4))
                })
                .collect();
            let records: Vec<Record> = (0..40u64)
                .map(|seq| {
                    let (format, n) = formats[rng.below(formats.len())].clone();
                    let args = (0..n)
                        .map(|_| match rng.below(12) {
                            0 => Value::Str(rng.pick(&["42", "", "-1", "x"]).into()),
                            1 => Value::F64(rng.pick(&[4.0, -0.0, 42.5])),
                            2 => Value::U64(rng.pick(&[u64::MAX, 1 << 63, 42])),
                            3..=6 => Value::I64(rng.pick(INTS)),
                            _ => Value::U64(rng.pick(INTS).unsigned_abs()),
                        })
                        .collect();
                    Record {
                        seq,
                        format: format.clone(),
                        args,
                        ..Record::default()
                    }
                })
                .collect();
            let rendered: Vec<String> = records
                .iter()
                .map(|r| {
                    let mut m = String::new();
                    render_format(&r.format, r.args.iter().map(ValueRef::from), &mut m);
                    m
                })
                .collect();
            let body = encode_batch_to_vec(&Batch {
                records: records.clone(),
                ..Batch::default()
            });
            let b = access_batch(&body).unwrap();
            for _ in 0..6 {
                let mut needle = rendered[rng.below(rendered.len())].clone();
                match rng.below(4) {
                    0 => needle = needle.replacen('4', "5", 1),
                    1 => needle = needle.replacen("42", "-42", 1),
                    _ => {}
                }
                // A suffix: `ends_with` on the integers' last digits.
                let tail = needle[rng.below(needle.len() + 1)..].to_string();
                let (lit, end) = (
                    crate::ast::Lit::Str(needle.clone()),
                    crate::ast::Lit::Str(tail.clone()),
                );
                for src in [
                    format!("message == {lit}"),
                    format!("not message == {lit}"),
                    format!("message ends_with {end}"),
                ] {
                    let f = Filter::parse(&src).unwrap();
                    let mut scan = f.batch_scan();
                    let mut in_batch = scan.batch(b);
                    for (r, m) in b.records().zip(&rendered) {
                        let v = RecordView::new(b'P', b.sender(), r);
                        let truth = match src.contains("ends_with") {
                            true => m.ends_with(&tail),
                            false => (*m == needle) != src.starts_with("not "),
                        };
                        assert_eq!(in_batch.matches(&v), truth, "{src} on {m:?}");
                        let by_record = in_batch.matches_record(b'P', b.sender(), r);
                        assert_eq!(by_record, truth, "{src} on {m:?}");
                        assert_eq!(f.matches(&v), truth, "{src} on {m:?}");
                        verdicts[usize::from(truth)] += 1;
                    }
                    for (n, k) in learnt.iter_mut().zip(in_batch.learnt()) {
                        *n += k;
                    }
                }
            }
        }
        assert!(learnt.iter().all(|&n| n > 50), "{learnt:?}");
        assert!(verdicts.iter().all(|&n| n > 1000), "{verdicts:?}");
    }
}
