//! The floor of a logger behind `log`, for the benches that compare the
//! facade with it (`examples/log_call_instr.rs`,
//! `benches/peers/benches/head_to_head.rs`): [`FmtFloor`] formats a
//! record's arguments with `core::fmt` and counts the record, nothing more.
//! Reach it with the `log` macros' `logger:` form and [`log_floor`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The floor of a logger behind `log`: formats the arguments into a
/// 128-byte stack buffer (a piece that does not fit is left out), visits the key/values without keeping
/// them, and counts the record.
pub struct FmtFloor;

/// Records [`FmtFloor`] received (one logging thread: load and store).
pub static FLOOR_RECORDS: AtomicU64 = AtomicU64::new(0);

/// A fixed buffer that `core::fmt` writes into, keeping the pieces that fit.
struct StackBuf {
    bytes: [u8; 128],
    len: usize,
}

impl fmt::Write for StackBuf {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // The formatter's pieces are short: two overlapping word copies
        // each rather than a `memcpy` call, as distlog's facade does.
        let (src, at) = (s.as_bytes(), self.len);
        let n = src.len();
        let Some(dst) = self.bytes.get_mut(at..at + n) else {
            return Ok(());
        };
        self.len = at + n;
        if n > 16 {
            dst.copy_from_slice(src);
        } else if n >= 8 {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        } else if n >= 4 {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        } else if n > 0 {
            // Bytes 0, n / 2 and n - 1 cover 1 to 3 bytes (a loop here
            // would become a `memcpy` call).
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        Ok(())
    }
}

/// Visits key/values and keeps nothing.
struct CountKvs(u32);

impl<'kvs> log::kv::VisitSource<'kvs> for CountKvs {
    fn visit_pair(
        &mut self,
        _: log::kv::Key<'kvs>,
        _: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0 += 1;
        Ok(())
    }
}

impl log::Log for FmtFloor {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut buf = StackBuf {
            bytes: [0; 128],
            len: 0,
        };
        let _ = fmt::write(&mut buf, *record.args());
        let mut kvs = CountKvs(0);
        let _ = record.key_values().visit(&mut kvs);
        std::hint::black_box((&buf, kvs.0));
        FLOOR_RECORDS.store(FLOOR_RECORDS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn flush(&self) {}
}

/// The floor as the `log` macros reach a logger: through `&dyn Log`.
#[inline(always)]
pub fn log_floor() -> &'static dyn log::Log {
    std::hint::black_box(&FmtFloor as &dyn log::Log)
}
