//! What identifies this process: its host and program names, and random
//! ids (a sender's instance, task ids). A leaf: the builder and tasks use
//! it, it uses only the wire's `Sender`, limits and the clock.

use distlog_core::wire::Sender;

/// This program's file name (or `argv[0]`).
pub(crate) fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| std::env::args().next())
        .unwrap_or_default()
}

/// The machine's host name (empty when the system will not say).
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes
    // at most that many and we stop at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// This process as a batch's sender: its host name and pid, `program`,
/// started now, with a fresh random instance id. Names are cut to
/// [`distlog_core::limits::MAX_NAME`] bytes, as receivers require. (Here,
/// not in the wire format: that knows nothing of the process it runs in.)
pub fn this_process(program: &str) -> Sender {
    Sender {
        host: distlog_core::limits::clip_name(&host_name()).to_owned(),
        pid: std::process::id(),
        program: distlog_core::limits::clip_name(program).to_owned(),
        start_ns: crate::clock::wall_ns(),
        instance: random_u64() | 1,
    }
}

/// 64 random bits from the standard library's per-process random hash keys.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::clock::wall_ns());
    h.finish()
}
