//! Text tests on a deferred message, without rendering it.
//!
//! A record from the native macros stores its message as a format string
//! plus typed arguments (`"took {} ms"`, `[42]`). Rendering it into a
//! `String` to test `message contains "took 42"` costs more than the test:
//! here the message is read piece by piece instead
//! ([`distlog_core::message::for_each_piece`]: the literal runs of the
//! format, borrowed, and each argument's text, on the stack), and nothing
//! is allocated.
//!
//! - `==` and `starts_with` compare the pieces with the constant in turn
//!   and stop at the first difference.
//! - `contains` and `ends_with` need text that may straddle pieces
//!   (`"took 42"` is the literal `"took "` and the argument `"42"`), so the
//!   pieces are appended to a [`WINDOW`]-byte buffer on the stack, searched
//!   (one `memmem` call for a typical message, which fits). When a piece
//!   does not fit, what the buffer holds is searched and only its last
//!   `needle - 1` bytes are kept: a match that starts there can only end in
//!   what comes next. A piece longer than the buffer is searched where it
//!   is, plus the matches that straddle into it.
//!
//! Needles longer than [`MAX_NEEDLE`] (for which the kept bytes would not
//! leave room) are for the caller to test on the rendered message.
//!
//! # Once per call site
//!
//! Records of one call site share its format, so [`site_test`] splits a
//! format once ([`Plan`], kept in a small per-thread cache keyed by the
//! format's text) into literal runs and argument slots, and into the
//! [`Shape`] that `site_shape.rs` analyses (the same analysis a
//! [`FilterSet`](super::FilterSet) runs on its sites, `set_sites.rs`).
//! Per record it then:
//!
//! - tests the arguments against the needle's alignments on the format
//!   (`message_align.rs`: `contains "record 4242 "` on `"loadgen record
//!   {} of thread {}"` is `4242 == the first argument`, an integer
//!   compared as one, a string in place), which decides every test of a
//!   format with at most [`message_align::SLOTS`] placeholders whose
//!   alignments stay within that module's bounds, when the record has an
//!   argument for each placeholder; otherwise:
//! - decides the test without rendering when the format decides it:
//!   `contains` passes when the needle is inside a literal run, and fails
//!   when it cannot overlap the arguments' text (for integer arguments,
//!   for numbers, or for text arguments lacking a byte of the needle that
//!   neither the literal runs nor a number has, [`site_shape::arg_kinds`]
//!   tells which); `starts_with`, `ends_with` and `==` by the first and
//!   last literal runs (the verdicts per needle are kept in the plan);
//! - otherwise (the verdict depends on the arguments) writes the message
//!   into a [`WINDOW`]-byte stack buffer from the split format (a copy
//!   per literal run, the digits of each integer) and runs one test on
//!   it; a message that does not fit takes the streamed path above.
//!
//! Each function's result equals the same test on the rendered message
//! (`tests.rs`, randomized, checks it, needles across piece boundaries
//! included).

use super::message_align::{self, Alignments, Anchor, IntTest, IntWords};
use super::site_shape::{self, arg_kinds, ArgKinds, Bytes, Fate, Shape};
use distlog_core::message::{for_each_part, for_each_piece, value_piece, FormatPart};
use distlog_core::record::ValueRef;
use distlog_core::view::RecordRef;
use memchr::memmem::Finder;
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::rc::Rc;

/// Bytes of message the stack window holds.
const WINDOW: usize = 256;

/// The longest `contains`/`ends_with` constant tested here: the bytes kept
/// across a search (at most this many) plus the head of a long piece (as
/// many) must fit in the window.
pub(super) const MAX_NEEDLE: usize = WINDOW / 2;

/// Streams the message through the window: `search` is called on each
/// stretch of text that may hold a match (it returns whether it found
/// one, which ends the walk), and between stretches only the last `keep`
/// bytes are kept. Returns whether `search` found it, and the kept tail
/// (the end of the message) when it did not.
fn stream<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>>,
    keep: usize,
    mut search: impl FnMut(&[u8]) -> bool,
    end: impl FnOnce(&[u8]) -> bool,
) -> bool {
    debug_assert!(keep <= MAX_NEEDLE);
    let mut buf = [0u8; WINDOW];
    let mut len = 0;
    let flow = for_each_piece(format, args, |p| {
        let p = p.as_bytes();
        if let Some(room) = buf.get_mut(len..len + p.len()) {
            room.copy_from_slice(p);
            len += p.len();
            return ControlFlow::Continue(());
        }
        // Full: search what is there, keep its tail.
        if search(&buf[..len]) {
            return ControlFlow::Break(());
        }
        let kept = keep.min(len);
        buf.copy_within(len - kept..len, 0);
        len = kept;
        if let Some(room) = buf.get_mut(len..len + p.len()) {
            room.copy_from_slice(p);
            len += p.len();
            return ControlFlow::Continue(());
        }
        // `p` is longer than WINDOW - keep >= keep: the matches that
        // straddle into it (kept tail + its head), then `p` itself.
        buf[len..len + keep].copy_from_slice(&p[..keep]);
        if search(&buf[..len + keep]) || search(p) {
            return ControlFlow::Break(());
        }
        buf[..keep].copy_from_slice(&p[p.len() - keep..]);
        len = keep;
        ControlFlow::Continue(())
    });
    flow.is_break() || end(&buf[..len])
}

/// Whether the message contains `finder`'s needle (at most
/// [`MAX_NEEDLE`] bytes).
pub(super) fn contains<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>>,
    finder: &Finder<'_>,
) -> bool {
    let n = finder.needle().len();
    if n == 0 {
        return true;
    }
    let hit = |s: &[u8]| finder.find(s).is_some();
    stream(format, args, n - 1, hit, hit)
}

/// Whether the message ends with `suffix` (at most [`MAX_NEEDLE`] bytes).
pub(super) fn ends_with<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>>,
    suffix: &[u8],
) -> bool {
    stream(
        format,
        args,
        suffix.len(),
        |_| false,
        |tail| tail.ends_with(suffix),
    )
}

/// Whether the message starts with `prefix` (`exact`: is `prefix`).
fn prefix<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>>,
    prefix: &[u8],
    exact: bool,
) -> bool {
    prefix_of(|f| for_each_piece(format, args, f), prefix, exact)
}

/// [`prefix`] on the pieces `pieces` hands its callback.
#[inline]
fn prefix_of(
    pieces: impl FnOnce(&mut dyn FnMut(&str) -> ControlFlow<bool>) -> ControlFlow<bool>,
    prefix: &[u8],
    exact: bool,
) -> bool {
    let mut at = 0;
    let flow = pieces(&mut |p| {
        let p = p.as_bytes();
        let rest = &prefix[at..];
        if p.len() > rest.len() {
            // The message goes on past the prefix.
            return ControlFlow::Break(!exact && p.starts_with(rest));
        }
        if !rest.starts_with(p) {
            return ControlFlow::Break(false);
        }
        at += p.len();
        if !exact && at == prefix.len() {
            return ControlFlow::Break(true);
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(hit) => hit,
        ControlFlow::Continue(()) => at == prefix.len(),
    }
}

/// Whether the message starts with `p`.
pub(super) fn starts_with<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>>,
    p: &[u8],
) -> bool {
    prefix(format, args, p, false)
}

/// Whether the message is `s`.
pub(super) fn eq<'a>(format: &str, args: impl Iterator<Item = ValueRef<'a>>, s: &[u8]) -> bool {
    prefix(format, args, s, true)
}

/// A text test on a message, as [`site_test`] runs it.
#[derive(Clone, Copy)]
pub(super) enum SiteTest<'p> {
    /// `contains` (needle at most [`MAX_NEEDLE`] bytes).
    Contains(&'p Finder<'p>),
    /// `starts_with`.
    StartsWith(&'p [u8]),
    /// `ends_with` (at most [`MAX_NEEDLE`] bytes).
    EndsWith(&'p [u8]),
    /// `==`.
    Eq(&'p [u8]),
}

/// One part of a split format: a literal run (a byte range of the plan's
/// `literals`: adjacent runs of the format, split by `{{` or `}}`, are
/// one) or a placeholder (a byte range of the format).
#[derive(Debug, Clone, Copy)]
enum Part {
    Literal(u32, u32),
    /// Shows the next argument, or the range itself when none is left.
    Slot(u32, u32),
}

/// A format split once ([`for_each_part`]), for all the records of its
/// call sites, with what has been decided about needles from the format
/// alone.
#[derive(Debug)]
struct Plan {
    format: String,
    /// The literal runs' text, one after the other.
    literals: String,
    parts: Vec<Part>,
    /// How many of `parts` are slots.
    slots: usize,
    /// The format as `site_shape` analyses it.
    shape: Shape,
    /// What the format decides about a few `contains` needles.
    inside: RefCell<Vec<(Box<[u8]>, Needle)>>,
    /// The literal runs around the placeholders (`L0 .. Lk`, empty ones
    /// included), ranges of `literals`.
    runs: Vec<(u32, u32)>,
    /// A few tests' alignments on the format.
    aligned: RefCell<Vec<AlignedTest>>,
}

/// A test (needle and anchor) and its alignments on a plan's format
/// (`None`: past their bounds), shared with the [`SitePlan`]s that use
/// them.
type AlignedTest = (Anchor, Box<[u8]>, Option<Rc<Alignments>>);

/// Plans kept per thread (formats whose records interleave in a batch:
/// a few call sites). A plan that falls out is refilled for the next
/// format, so steady state allocates nothing.
const PLANS: usize = 16;
/// The longest format that gets a plan (longer ones are streamed): keeps
/// a thread's plans within `PLANS * 2 * PLAN_FORMAT` bytes of text, and
/// offsets within `u32`.
const PLAN_FORMAT: usize = 4096;
/// Needles whose verdict a plan keeps.
const NEEDLES: usize = 8;

/// What is known about a `contains` needle from a plan's format alone.
#[derive(Debug, Clone, Copy)]
struct Needle {
    /// Its fate when every argument is an integer (`Pass`: a literal run
    /// holds it, whatever the arguments).
    ints: Fate,
    /// Its fate when every argument is a number.
    nums: Fate,
    /// Its bytes that no literal run and no number has: a record whose
    /// text arguments lack one of them cannot match.
    escapes: Bytes,
}

thread_local! {
    static CACHE: RefCell<Vec<Rc<Plan>>> = const { RefCell::new(Vec::new()) };
}

impl Plan {
    /// Splits `format` into this plan, reusing its buffers (at most
    /// [`PLAN_FORMAT`] bytes, checked by the caller).
    fn fill(&mut self, format: &str) {
        let base = format.as_ptr() as usize;
        let (parts, literals) = (&mut self.parts, &mut self.literals);
        parts.clear();
        literals.clear();
        self.slots = 0;
        self.inside.get_mut().clear();
        self.aligned.get_mut().clear();
        self.runs.clear();
        self.format.clear();
        self.format.push_str(format);
        self.shape.fill(format);
        let _ = for_each_part::<()>(format, |p| {
            match p {
                FormatPart::Literal(s) => {
                    let a = literals.len() as u32;
                    literals.push_str(s);
                    let b = literals.len() as u32;
                    match parts.last_mut() {
                        Some(Part::Literal(_, end)) => *end = b,
                        _ if a == b => {}
                        _ => parts.push(Part::Literal(a, b)),
                    }
                }
                FormatPart::Placeholder(s) => {
                    let a = (s.as_ptr() as usize - base) as u32;
                    parts.push(Part::Slot(a, a + s.len() as u32));
                    self.slots += 1;
                }
            }
            ControlFlow::Continue(())
        });
        // Adjacent literal runs are one part: one run between slots.
        let mut run = (0, 0);
        for &p in parts.iter() {
            match p {
                Part::Literal(a, b) => run = (a, b),
                Part::Slot(..) => self.runs.push(std::mem::take(&mut run)),
            }
        }
        self.runs.push(run);
    }

    /// The alignments of `needle` pinned by `anchor` on this format
    /// (`message_align.rs`), listed once per test; `None` past their
    /// bounds, or when the plan keeps [`NEEDLES`] tests' already: the
    /// caller tests otherwise.
    fn aligned(&self, needle: &[u8], anchor: Anchor) -> Option<Rc<Alignments>> {
        if self.slots > message_align::SLOTS {
            return None;
        }
        let mut cache = self.aligned.try_borrow_mut().ok()?;
        if let Some((.., v)) = (cache.iter()).find(|(a, n, _)| *a == anchor && **n == *needle) {
            return v.clone();
        }
        if cache.len() == NEEDLES {
            // The format's first tests keep their alignments; the rest
            // take the other path (no listing per site when more tests
            // than this take turns).
            return None;
        }
        let v = Alignments::of(&self.run_bytes(), needle, anchor).map(Rc::new);
        cache.push((anchor, needle.into(), v.clone()));
        v
    }

    /// `needle` pinned by `anchor` tested by its alignments on this
    /// format ([`Plan::aligned`]) on these `args`; `None` when they do
    /// not decide (past their bounds, or an argument missing).
    #[inline]
    fn aligned_test<'a>(
        &self,
        needle: &[u8],
        anchor: Anchor,
        args: impl Iterator<Item = ValueRef<'a>> + Clone,
    ) -> Option<bool> {
        if self.slots > message_align::SLOTS {
            return None;
        }
        {
            let cache = self.aligned.try_borrow().ok()?;
            if let Some((.., v)) = (cache.iter()).find(|(a, n, _)| *a == anchor && **n == *needle) {
                return v.as_ref()?.test(args);
            }
        }
        self.aligned(needle, anchor)?.test(args)
    }

    /// The literal runs around the placeholders, as [`Alignments::of`]
    /// takes them.
    fn run_bytes(&self) -> Vec<&[u8]> {
        (self.runs.iter())
            .map(|&(a, b)| self.literal(a, b).as_bytes())
            .collect()
    }

    fn literal(&self, a: u32, b: u32) -> &str {
        &self.literals[a as usize..b as usize]
    }

    fn placeholder(&self, a: u32, b: u32) -> &str {
        &self.format[a as usize..b as usize]
    }

    /// The message's pieces, as [`for_each_piece`] hands them out.
    #[inline]
    fn pieces<'a, B>(
        &self,
        mut args: impl Iterator<Item = ValueRef<'a>>,
        mut f: impl FnMut(&str) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        for &p in &self.parts {
            match p {
                Part::Literal(a, b) => f(self.literal(a, b))?,
                Part::Slot(a, b) => match args.next() {
                    Some(v) => value_piece(v, &mut f)?,
                    None => f(self.placeholder(a, b))?,
                },
            }
        }
        ControlFlow::Continue(())
    }

    /// What the format decides about `needle`, once per needle.
    fn needle(&self, needle: &[u8]) -> Needle {
        self.with_needle(needle, |n| *n)
    }

    /// `f` on what the format decides about `needle` (kept per needle).
    #[inline]
    fn with_needle<R>(&self, needle: &[u8], f: impl FnOnce(&Needle) -> R) -> R {
        let Ok(mut inside) = self.inside.try_borrow_mut() else {
            return f(&self.needle_now(needle));
        };
        if let Some((_, v)) = inside.iter().find(|(n, _)| **n == *needle) {
            return f(v);
        }
        let v = self.needle_now(needle);
        if inside.len() == NEEDLES {
            inside.remove(0);
        }
        inside.push((needle.into(), v));
        f(&v)
    }

    fn needle_now(&self, needle: &[u8]) -> Needle {
        let nums = site_shape::nums();
        let mut steps = 0;
        Needle {
            ints: self.shape.contains(needle, &site_shape::ints(), &mut steps),
            nums: self.shape.contains(needle, &nums, &mut steps),
            escapes: self.shape.escapes(needle, &nums),
        }
    }

    /// What the format decides about `contains` with the verdict `n` for
    /// a record with these `args`.
    #[inline]
    fn contains<'a>(&self, n: &Needle, args: impl Iterator<Item = ValueRef<'a>> + Clone) -> Fate {
        if n.ints != Fate::Fail {
            // `Pass` holds for any arguments; `Depends` for integers
            // depends for any wider alphabet too.
            return n.ints;
        }
        // Integers only (the usual site) without collecting text bytes.
        let mut n_ints = 0;
        let mut all_ints = true;
        for v in args.clone() {
            if !matches!(v, ValueRef::U64(_) | ValueRef::I64(_)) {
                all_ints = false;
                break;
            }
            n_ints += 1;
        }
        if all_ints && n_ints >= self.slots {
            return Fate::Fail;
        }
        match arg_kinds(args, self.slots) {
            ArgKinds::Ints => Fate::Fail,
            ArgKinds::Nums => n.nums,
            ArgKinds::Text(t) if !site_shape::covers(&t, &n.escapes) => Fate::Fail,
            ArgKinds::Text(_) | ArgKinds::Missing => Fate::Depends,
        }
    }
}

/// The plan of `format`, from the thread's cache or made now (`None`
/// when the cache is in use or gone, or the format too long: the caller
/// streams instead).
fn plan_of(format: &str) -> Option<Rc<Plan>> {
    if format.len() > PLAN_FORMAT {
        return None;
    }
    CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            if let Some(i) = cache.iter().position(|p| *p.format == *format) {
                if i != 0 {
                    // Most recently used first: the next record of the
                    // batch is most likely of the same site.
                    cache[..=i].rotate_right(1);
                }
                return Some(cache[0].clone());
            }
            // The least recently used plan, refilled when nothing else
            // holds it; a new one while the cache is not full.
            let mut plan = match cache.len() {
                PLANS => cache.pop().filter(|p| Rc::strong_count(p) == 1),
                _ => None,
            }
            .unwrap_or_else(|| {
                Rc::new(Plan {
                    format: String::new(),
                    literals: String::new(),
                    parts: Vec::new(),
                    slots: 0,
                    shape: Shape::default(),
                    inside: RefCell::new(Vec::new()),
                    runs: Vec::new(),
                    aligned: RefCell::new(Vec::new()),
                })
            });
            Rc::get_mut(&mut plan)?.fill(format);
            cache.insert(0, plan.clone());
            Some(plan)
        })
        .ok()
        .flatten()
}

/// Runs `test` on the message of `format` and `args` (a record's
/// deferred message), once-per-site decisions first (module docs); the
/// same result as the test on the rendered message.
pub(super) fn site_test<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>> + Clone,
    test: SiteTest<'_>,
) -> bool {
    // `SitePlan::of(format, test, false).run(format, args, test)`, with
    // the plan's kept verdict and alignments used where they are kept
    // rather than copied out: per record that costs less (the filter VM
    // bench's 3-clause filter: 231.8 -> 218.3 instructions a record).
    let Some(plan) = plan_of(format) else {
        return streamed(format, args, test);
    };
    let (needle, anchor) = test.needle();
    if let SiteTest::Contains(_) = test {
        match plan.with_needle(needle, |n| plan.contains(n, args.clone())) {
            Fate::Pass => return true,
            Fate::Fail => return false,
            Fate::Depends => {}
        }
    }
    if let Some(hit) = plan.aligned_test(needle, anchor, args.clone()) {
        return hit;
    }
    plan.rest(format, args, test)
}

/// What one test looks up once per call site: the format's [`Plan`],
/// the needle's verdict on it and the test's alignments. A caller that
/// knows which records share a site (a batch's site table, `site_memo.rs`)
/// keeps one per (site, test) and runs it on each record
/// ([`SitePlan::run`]); [`site_test`] makes one per record.
pub(super) struct SitePlan {
    /// `None`: the format is too long for a plan (or the thread's cache
    /// is gone): the message is streamed.
    plan: Option<Rc<Plan>>,
    /// For `contains`: what the format decides about the needle.
    needle: Needle,
    /// The test's alignments on the format (`Some(None)`: past their
    /// bounds); `None` until asked.
    aligned: Option<Option<Rc<Alignments>>>,
    /// The verdict on records whose arguments are all integers, read
    /// from their encoding ([`SitePlan::run_record`]; made when eager).
    ints: Option<IntTest>,
}

impl SitePlan {
    /// The lookups of `test` on `format`; `eager`: the alignments too,
    /// else only when a record needs them (a `contains` whose verdict
    /// decides records of integers needs them only for the others).
    pub(super) fn of(format: &str, test: SiteTest<'_>, eager: bool) -> SitePlan {
        let mut site = SitePlan {
            plan: plan_of(format),
            needle: Needle {
                ints: Fate::Depends,
                nums: Fate::Depends,
                escapes: [0; 4],
            },
            aligned: None,
            ints: None,
        };
        let Some(plan) = &site.plan else {
            return site;
        };
        let (needle, anchor) = test.needle();
        if let SiteTest::Contains(_) = test {
            site.needle = plan.needle(needle);
            if site.needle.ints == Fate::Pass || !eager && site.needle.ints == Fate::Fail {
                // Every record passes: no alignments needed; or most
                // fail on the verdict.
                return site;
            }
        }
        let aligned = plan.aligned(needle, anchor);
        if eager {
            // What `run` decides on integers: for `contains`, the
            // verdict when it fails them, else the alignments.
            site.ints = match (test, site.needle.ints) {
                (SiteTest::Contains(_), Fate::Fail) => IntTest::fixed(plan.slots, false),
                _ => aligned.as_ref().and_then(|a| a.int_test()),
            };
        }
        site.aligned = Some(aligned);
        site
    }

    /// [`SitePlan::run`]'s verdict on the record `r` when the plan
    /// decides it without decoding the arguments: a `contains` whose
    /// needle is in the literal text, or a record whose arguments are all
    /// integers (by their encoding); `None`: ask [`SitePlan::run`].
    #[inline(always)]
    pub(super) fn quick(&self, r: RecordRef<'_>) -> Option<bool> {
        if self.needle.ints == Fate::Pass {
            return Some(true);
        }
        self.ints.as_ref()?.test(r.raw_values(), r.arg_count())
    }

    /// [`SitePlan::run`]'s verdict on every record of a call site with
    /// `args` format arguments, when the format alone decides it (a
    /// `contains` needle in the literal text, or alignments that always
    /// or never hold).
    pub(super) fn site_verdict(&self, args: u32) -> Option<bool> {
        self.plan.as_ref()?;
        if self.needle.ints == Fate::Pass {
            return Some(true);
        }
        self.aligned.as_ref()?.as_ref()?.site_verdict(args)
    }

    /// The plan's test on records of integers as [`IntWords`], when it is
    /// one ([`IntTest::words`]).
    pub(super) fn int_words(&self) -> Option<IntWords> {
        self.ints.as_ref()?.words()
    }

    /// Runs `test` (the one this plan was made for) on the message of
    /// `format` (the one it was made for) and `args`.
    #[inline]
    pub(super) fn run<'a>(
        &self,
        format: &str,
        args: impl Iterator<Item = ValueRef<'a>> + Clone,
        test: SiteTest<'_>,
    ) -> bool {
        let Some(plan) = &self.plan else {
            return streamed(format, args, test);
        };
        // `contains`: the format's verdict first; it decides most sites (a
        // needle in the literal text, or one no argument of these kinds
        // can hold) without reading the arguments' text.
        if let SiteTest::Contains(_) = test {
            match plan.contains(&self.needle, args.clone()) {
                Fate::Pass => return true,
                Fate::Fail => return false,
                Fate::Depends => {}
            }
        }
        let asked;
        let aligned = match &self.aligned {
            Some(a) => a.as_deref(),
            None => {
                let (needle, anchor) = test.needle();
                asked = plan.aligned(needle, anchor);
                asked.as_deref()
            }
        };
        if let Some(hit) = aligned.and_then(|a| a.test(args.clone())) {
            return hit;
        }
        plan.rest(format, args, test)
    }
}

impl SiteTest<'_> {
    /// The constant and where it is pinned.
    fn needle(&self) -> (&[u8], Anchor) {
        match *self {
            SiteTest::Contains(finder) => (finder.needle(), Anchor::None),
            SiteTest::StartsWith(p) => (p, Anchor::Start),
            SiteTest::EndsWith(p) => (p, Anchor::End),
            SiteTest::Eq(p) => (p, Anchor::Both),
        }
    }
}

impl Plan {
    /// `test` on a record that neither the needle's verdict nor the
    /// alignments decided: the shape's edges, then the pieces.
    #[inline(never)]
    fn rest<'a>(
        &self,
        format: &str,
        args: impl Iterator<Item = ValueRef<'a>> + Clone,
        test: SiteTest<'_>,
    ) -> bool {
        let fate = match test {
            // Asked before.
            SiteTest::Contains(_) => Fate::Depends,
            // `prefix_of` on the plan's pieces below compares the first
            // literal run first: the shape's verdict at the same cost.
            SiteTest::StartsWith(_) => Fate::Depends,
            // A format ending in a placeholder leaves `ends_with` to the
            // arguments and `==` to the first run, which `prefix_of` below
            // compares first: no check per record that cannot decide.
            SiteTest::EndsWith(p) if self.shape.ends_literal() => self.shape.ends_with(p),
            SiteTest::Eq(p) if self.shape.ends_literal() => self.shape.eq(p),
            SiteTest::EndsWith(_) | SiteTest::Eq(_) => Fate::Depends,
        };
        match fate {
            Fate::Pass => return true,
            Fate::Fail => return false,
            Fate::Depends => {}
        }
        match test {
            // Piece by piece, stopping at the first difference.
            SiteTest::StartsWith(p) => return prefix_of(|f| self.pieces(args, f), p, false),
            SiteTest::Eq(p) => return prefix_of(|f| self.pieces(args, f), p, true),
            SiteTest::Contains(_) | SiteTest::EndsWith(_) => {}
        }
        let mut buf = [0u8; WINDOW];
        let mut len = 0;
        let fits = self
            .pieces(args.clone(), |p| {
                let Some(room) = buf.get_mut(len..len + p.len()) else {
                    return ControlFlow::Break(());
                };
                room.copy_from_slice(p.as_bytes());
                len += p.len();
                ControlFlow::Continue(())
            })
            .is_continue();
        if !fits {
            return streamed(format, args, test);
        }
        let m = &buf[..len];
        match test {
            SiteTest::Contains(finder) => finder.find(m).is_some(),
            SiteTest::StartsWith(p) => m.starts_with(p),
            SiteTest::EndsWith(p) => m.ends_with(p),
            SiteTest::Eq(p) => m == p,
        }
    }
}

/// The streamed form of `test` (this module's functions above).
fn streamed<'a>(
    format: &str,
    args: impl Iterator<Item = ValueRef<'a>>,
    test: SiteTest<'_>,
) -> bool {
    match test {
        SiteTest::Contains(finder) => contains(format, args, finder),
        SiteTest::StartsWith(p) => starts_with(format, args, p),
        SiteTest::EndsWith(p) => ends_with(format, args, p),
        SiteTest::Eq(p) => eq(format, args, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Rng;
    use distlog_core::message::render_format;

    /// Every test, streamed and on the rendered message, must agree; the
    /// needles are cut from the rendered message itself (so they straddle
    /// pieces), near misses of it, and bytes it lacks.
    fn check(format: &str, args: &[ValueRef<'_>], rng: &mut Rng) {
        let mut m = String::new();
        render_format(format, args.iter().copied(), &mut m);
        let m = m.as_bytes();
        let mut needles: Vec<Vec<u8>> = vec![Vec::new(), m.to_vec(), b"zz".to_vec()];
        // Cuts of the format's own text (braces, escapes, placeholders).
        for _ in 0..2 {
            let f = format.as_bytes();
            let a = rng.below(f.len() + 1);
            let b = a + rng.below(f.len() - a + 1);
            needles.push(f[a..b].to_vec());
        }
        for _ in 0..6 {
            let a = rng.below(m.len() + 1);
            let b = a + rng.below(m.len() - a + 1);
            let mut n = m[a..b].to_vec();
            needles.push(n.clone());
            if !n.is_empty() {
                // A near miss: one byte changed.
                let i = rng.below(n.len());
                n[i] = n[i].wrapping_add(1);
                needles.push(n.clone());
                n[i] = n[i].wrapping_sub(1);
                // Another: a `0` put in (an integer's text never has a
                // leading zero); and one byte dropped (a digit fewer).
                let mut z = n.clone();
                z.insert(rng.below(n.len() + 1), b'0');
                needles.push(z);
                let mut z = n.clone();
                z.remove(i);
                needles.push(z);
            }
            n.push(b'!');
            needles.push(n);
        }
        // The alignments on their own, for every needle (a plan keeps
        // those of its first few tests only).
        let plan = plan_of(format).expect("a short format");
        let runs = plan.run_bytes();
        for n in &needles {
            let wants = [
                (Anchor::None, memchr::memmem::find(m, n).is_some()),
                (Anchor::Start, m.starts_with(n)),
                (Anchor::End, m.ends_with(n)),
                (Anchor::Both, m == &n[..]),
            ];
            for (anchor, want) in wants {
                let got =
                    Alignments::of(&runs, n, anchor).and_then(|a| a.test(args.iter().copied()));
                if let Some(got) = got {
                    let show = String::from_utf8_lossy(n);
                    assert_eq!(
                        got, want,
                        "aligned: {format:?} {args:?} {anchor:?} {show:?}"
                    );
                }
            }
        }
        for n in needles {
            let it = || args.iter().copied();
            let finder = Finder::new(&n);
            let show = String::from_utf8_lossy(&n);
            if n.len() <= MAX_NEEDLE {
                let want = memchr::memmem::find(m, &n).is_some();
                assert_eq!(
                    contains(format, it(), &finder),
                    want,
                    "{format:?} {args:?} contains {show:?}"
                );
                assert_eq!(
                    ends_with(format, it(), &n),
                    m.ends_with(&n),
                    "{format:?} ends_with {show:?}"
                );
            }
            assert_eq!(
                starts_with(format, it(), &n),
                m.starts_with(&n),
                "{format:?} starts_with {show:?}"
            );
            assert_eq!(eq(format, it(), &n), m == &n[..], "{format:?} == {show:?}");
            // Once per site: the same, twice (the second from the cache).
            for _ in 0..2 {
                if n.len() <= MAX_NEEDLE {
                    let want = memchr::memmem::find(m, &n).is_some();
                    let got = site_test(format, it(), SiteTest::Contains(&finder));
                    assert_eq!(got, want, "site: {format:?} {args:?} contains {show:?}");
                    let got = site_test(format, it(), SiteTest::EndsWith(&n));
                    assert_eq!(got, m.ends_with(&n), "site: {format:?} ends_with {show:?}");
                }
                let got = site_test(format, it(), SiteTest::StartsWith(&n));
                assert_eq!(
                    got,
                    m.starts_with(&n),
                    "site: {format:?} starts_with {show:?}"
                );
                let got = site_test(format, it(), SiteTest::Eq(&n));
                assert_eq!(got, m == &n[..], "site: {format:?} == {show:?}");
            }
        }
    }

    #[test]
    fn streamed_tests_equal_tests_on_the_rendered_message() {
        const ATOMS: &[&str] = &[
            "{", "}", "{}", "{{", "}}", "{:?}", "a", "b", "ab", " ", "é", "🦀", "record ", " of ",
        ];
        let long: String = "xy".repeat(WINDOW);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..20_000 {
            let format: String = (0..rng.below(10))
                .map(|_| ATOMS[rng.below(ATOMS.len())])
                .collect();
            // Now and then a literal or argument longer than the window.
            let format = if round % 50 == 0 {
                format + &long[..rng.below(long.len())] + "{}"
            } else {
                format
            };
            let strs = [
                "",
                "a",
                "ab",
                "{}",
                "ü",
                &long[..WINDOW - 3],
                &long[..WINDOW + 5],
                &long,
            ];
            let args: Vec<ValueRef<'_>> = (0..rng.below(5))
                .map(|_| match rng.below(7) {
                    0 => ValueRef::Null,
                    1 => ValueRef::Bool(rng.below(2) == 1),
                    2 if rng.below(2) == 0 => ValueRef::I64(rng.signed()),
                    2 => ValueRef::I64([i64::MIN, -42, 0, 4242][rng.below(4)]),
                    3 if rng.below(2) == 0 => ValueRef::U64(rng.number(19)),
                    3 => ValueRef::U64([0, 4242, u64::MAX, rng.next()][rng.below(4)]),
                    4 => ValueRef::F64([1.5, -0.0, 1e300, f64::NAN, 1e-7][rng.below(5)]),
                    _ => ValueRef::Str(strs[rng.below(strs.len())]),
                })
                .collect();
            check(&format, &args, &mut rng);
        }
        // The alignments decided needles that go on past an integer's
        // and a string's text (into the literal text or the next
        // argument), not only needles inside one.
        let [ints, strs] = crate::message_align::tally::get();
        eprintln!("held past the argument: {ints} integers, {strs} strings");
        assert!(ints > 1_000 && strs > 1_000, "{ints} / {strs}");
        let [failed, held] = crate::message_align::tally::get_digits();
        assert!(failed > 10_000 && held > 10_000, "{failed} / {held}");
    }

    #[test]
    fn the_benchmark_shape() {
        let f = "loadgen record {} of thread {}";
        let args = [ValueRef::U64(4242), ValueRef::U64(1)];
        let yes = |n: &str| contains(f, args.iter().copied(), &Finder::new(n));
        assert!(yes("record 4242 "));
        assert!(yes("4242 of thread 1"));
        assert!(!yes("record 424 "));
        assert!(!yes("record 4242 of thread 12"));
        assert!(starts_with(f, args.iter().copied(), b"loadgen record 42"));
        assert!(ends_with(f, args.iter().copied(), b"42 of thread 1"));
        assert!(eq(
            f,
            args.iter().copied(),
            b"loadgen record 4242 of thread 1"
        ));
        assert!(!eq(
            f,
            args.iter().copied(),
            b"loadgen record 4242 of thread "
        ));
        // The same by the alignments, with the argument a string, and an
        // integer that only starts like the needle.
        for (a0, hit) in [
            (ValueRef::U64(4242), true),
            (ValueRef::Str("4242"), true),
            (ValueRef::I64(42421), false),
        ] {
            let args = [a0, ValueRef::U64(1)];
            let it = || args.iter().copied();
            let finder = Finder::new("record 4242 ");
            let site = |t| site_test(f, it(), t);
            assert_eq!(site(SiteTest::Contains(&finder)), hit);
            assert_eq!(site(SiteTest::StartsWith(b"loadgen record 4242 ")), hit);
            assert_eq!(site(SiteTest::EndsWith(b"4242 of thread 1")), hit);
            assert_eq!(site(SiteTest::Eq(b"loadgen record 4242 of thread 1")), hit);
        }
    }
}
