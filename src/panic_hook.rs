//! Panics are records: a hook, chained to the one already installed, logs
//! the panic (message, location, thread) at ERROR and flushes before the
//! process goes on to unwind or abort.

use crate::facade::{emit_parts, Parts};
use crate::record::level;
use std::time::Duration;

/// How long the hook waits for the record to leave before it lets the panic
/// continue.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let (file, line) = info.location().map_or(("", 0), |l| (l.file(), l.line()));
        let thread = std::thread::current();
        let error = format!(
            "panicked at {file}:{line}: {msg} (thread {})",
            thread.name().unwrap_or("<unnamed>")
        );
        let parts = Parts {
            level: level::CRITICAL,
            kind: b'L',
            target: "panic",
            module: "",
            file,
            line,
            error: Some(&error),
        };
        emit_parts(&parts, |b| b.str(&format!("panic: {msg}")), |_| {});
        crate::pipeline::PIPELINE
            .get()
            .map(|p| p.flush(FLUSH_TIMEOUT));
        previous(info);
    }));
}
