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
//! Each function's result equals the same test on the rendered message
//! (`tests.rs`, randomized, checks it, needles across piece boundaries
//! included).

use distlog_core::message::for_each_piece;
use distlog_core::record::ValueRef;
use memchr::memmem::Finder;
use std::ops::ControlFlow;

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
    let mut at = 0;
    let flow = for_each_piece(format, args, |p| {
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
            }
            n.push(b'!');
            needles.push(n);
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
                    2 => ValueRef::I64([i64::MIN, -42, 0, 4242][rng.below(4)]),
                    3 => ValueRef::U64([0, 4242, u64::MAX, rng.next()][rng.below(4)]),
                    4 => ValueRef::F64([1.5, -0.0, 1e300, f64::NAN, 1e-7][rng.below(5)]),
                    _ => ValueRef::Str(strs[rng.below(strs.len())]),
                })
                .collect();
            check(&format, &args, &mut rng);
        }
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
    }
}
