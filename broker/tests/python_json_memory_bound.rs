//! The JSON Python record decoder keeps the memory bound its module docs
//! state (`broker/src/python/json.rs`): the peak of live heap bytes while
//! decoding a body of `n` bytes, the record it returns included, stays
//! under [`BOUND_PER_BYTE`] times `n` (plus a small constant), for the
//! shapes that make the most values per byte.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Peak live bytes per input byte the decoder may reach, the record it
/// returns included (the bound the module docs state).
const BOUND_PER_BYTE: usize = 40;

struct Counting;

thread_local! {
    /// Live bytes allocated by this thread, and the peak since reset.
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|c| {
        let (live, peak) = c.get();
        let live = live + delta;
        c.set((live, peak.max(live)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counting
// only reads the layout's size into a thread-local cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size() as isize);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(-(l.size() as isize));
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as a move: the new block is live before the old one goes.
        note(new as isize);
        note(-(l.size() as isize));
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The peak live bytes above the starting level while `f` runs.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(|c| {
        let (live, _) = c.get();
        c.set((live, live));
        live
    });
    let out = f();
    let peak = LIVE.with(|c| c.get().1);
    (out, (peak - start) as usize)
}

/// A record body of about `size` bytes whose remaining room is filled by
/// `item(i)`, comma-separated, inside `wrap`'s `{}`.
fn body(size: usize, wrap: &str, item: impl Fn(usize) -> String) -> Vec<u8> {
    let (open, close) = wrap.split_once("{}").unwrap();
    let mut s = format!(r#"{{"levelno": 20, "created": 1, {open}"#);
    let mut i = 0;
    while s.len() + close.len() + 40 < size {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&item(i));
        i += 1;
    }
    s.push_str(close);
    s.push('}');
    s.into_bytes()
}

#[test]
fn json_memory_stays_bounded() {
    let n = distlogd::python::MAX_BODY;
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        ("repeated key", body(n, "{}", |_| r#""":0"#.into())),
        (
            "distinct unknown keys",
            body(n, "{}", |i| format!(r#""{i:x}":0"#)),
        ),
        (
            "repeated known key",
            body(n, "{}", |_| r#""lineno":0"#.into()),
        ),
        ("flat array", body(n, r#""a": [{}]"#, |_| "0".into())),
        (
            "array of empty objects",
            body(n, r#""a": [{}]"#, |_| "{}".into()),
        ),
        ("array of arrays", body(n, r#""a": [{}]"#, |_| "[]".into())),
        (
            "context entries",
            body(n, r#""context": {{}}"#, |i| format!(r#""{i:x}":0"#)),
        ),
        (
            "escaped strings",
            body(n, "{}", |i| format!(r#""{i:x}":"\n""#)),
        ),
        (
            "nested objects",
            body(n, r#""a": [{}]"#, |_| r#"{"":{"":0}}"#.into()),
        ),
        // serde_json's raw-value marker: its string is parsed afresh.
        (
            "raw value of nested objects",
            body(
                n,
                r#""a": {"$serde_json::private::RawValue": "[{}]"}"#,
                |_| r#"{\"\":{\"\":0}}"#.into(),
            ),
        ),
        (
            "raw value of distinct keys",
            body(
                n,
                r#""context": {"$serde_json::private::RawValue": "{{}}"}"#,
                |i| format!(r#"\"{i:x}\":0"#),
            ),
        ),
    ];
    for (what, b) in shapes {
        let (r, peak) = peak_of(|| distlogd::python::decode_json(&b));
        let stored = r.map(|(_, rec)| rec.fields.len());
        assert!(stored.is_ok(), "{what}: {stored:?}");
        let per_byte = peak as f64 / b.len() as f64;
        println!(
            "{what}: {} bytes, peak {peak} bytes ({per_byte:.1}x), {stored:?}",
            b.len()
        );
        assert!(
            peak <= BOUND_PER_BYTE * b.len() + 4096,
            "{what}: {peak} bytes live for a {}-byte body ({per_byte:.1}x)",
            b.len()
        );
    }
}
