//! Task context carried by records (the full task API arrives with task
//! trees). This module owns the thread's current task as the hot path sees
//! it: the size of its section in an entry, and how to write it.

use crate::entry::Cursor;

/// Bytes the current task adds to an entry (0 outside a task).
#[inline(always)]
pub(crate) fn current_section_len() -> usize {
    0
}

/// Writes the current task's section (see [`crate::entry`]).
#[inline(always)]
pub(crate) fn write_current_section(_w: &mut Cursor<'_>) {}
