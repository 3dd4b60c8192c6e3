//! What one message may cost a reader: the bounds every batch is checked
//! against once, when it is validated ([`crate::wire::access_batch`]), so
//! that no stage after it (filter, dispatch, processors, the `distlog`
//! readers) can be made to spend more than a stated multiple of the bytes
//! that came in.
//!
//! A batch carries its call-site and thread strings once and its
//! records index them, so a reader that renders every record touches those
//! strings once per record: a small message can stand for a great deal of
//! text. The **expanded size** of a batch counts what readers may touch:
//! for every record, the bytes of every string it refers to (the sender's
//! host and program, its site's target, module, file, function, format and
//! keys, its thread's name) plus its own (task, message, error, values).
//! A batch whose expanded size exceeds [`EXPANSION`] times its body's size
//! is rejected as `too_expanded` (the fuzz target `expansion_bound` checks
//! the bound from the readers' side).
//!
//! Alongside it, caps that keep per-record work and per-sender state small
//! whatever the budget: host, program and thread names of at most
//! [`MAX_NAME`] bytes (`name_too_long`), at most [`MAX_FIELDS`] arguments
//! and fields per record (`too_many_fields`), task paths of at most
//! [`MAX_TASK_DEPTH`] levels and [`MAX_TASK_LEN`] bytes (`task_too_deep`).
//! `docs/PROTOCOL.md` states the same bounds next to the format.

/// A batch's expanded size may be at most this many times its body's size.
pub const EXPANSION: u64 = 16;

/// The longest host, program and thread name, in bytes (DNS names are at
/// most 253).
pub const MAX_NAME: usize = 255;

/// The most format arguments plus fields (site keys and bound pairs) of
/// one record.
pub const MAX_FIELDS: usize = 1024;

/// The deepest task path: at most this many `/`-separated subtask levels
/// below the root.
pub const MAX_TASK_DEPTH: usize = 64;

/// The longest task path, in bytes.
pub const MAX_TASK_LEN: usize = 4096;

/// The most expanded bytes a body of `len` bytes may stand for.
#[inline]
pub fn budget(len: usize) -> u64 {
    EXPANSION * len as u64
}

/// Whether a task path is within [`MAX_TASK_LEN`] and [`MAX_TASK_DEPTH`].
#[inline]
pub fn task_ok(task: &str) -> bool {
    task.len() <= MAX_TASK_LEN
        && (task.len() <= MAX_TASK_DEPTH
            || memchr::memchr_iter(b'/', task.as_bytes()).count() <= MAX_TASK_DEPTH)
}

/// `s` cut to at most [`MAX_NAME`] bytes, at a character boundary: what
/// the client sends for names it does not control (thread names).
pub fn clip_name(s: &str) -> &str {
    if s.len() <= MAX_NAME {
        return s;
    }
    let mut end = MAX_NAME;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_paths_are_capped_by_depth_and_length() {
        assert!(task_ok(""));
        assert!(task_ok("1b4e28ba-2fa1-11d2-883f-0016d3cca427/2/1"));
        let deep = format!("root{}", "/1".repeat(MAX_TASK_DEPTH));
        assert!(task_ok(&deep));
        assert!(!task_ok(&format!("{deep}/1")));
        assert!(!task_ok(&"x".repeat(MAX_TASK_LEN + 1)));
    }

    #[test]
    fn names_are_clipped_at_a_character_boundary() {
        assert_eq!(clip_name("worker-1"), "worker-1");
        let long = "é".repeat(200);
        let clipped = clip_name(&long);
        assert!(clipped.len() <= MAX_NAME && clipped.len() >= MAX_NAME - 1);
        assert!(long.starts_with(clipped));
    }
}
