//! Task ids on W3C Trace Context headers, so a tree can ride on HTTP calls
//! that already carry `traceparent`.
//!
//! The root task's UUID is the 128-bit trace id. The path below the root
//! rides in `tracestate` as `distlog=<n>.<n>...` (W3C list members may not
//! contain `/`); the 64-bit parent id is derived from the full path. A
//! `traceparent` from another tracing system (no `distlog` member) is
//! continued as the subtask named by its parent id under the trace's root,
//! so the request still forms one tree.
//!
//! ```
//! let (traceparent, tracestate) = distlog::traceparent::encode("0af76519-16cd-43dd-8448-eb211c80319c/2/1");
//! assert_eq!(traceparent.len(), 55);
//! assert_eq!(tracestate, "distlog=2.1");
//! let path = distlog::traceparent::decode(&traceparent, Some(&tracestate)).unwrap();
//! assert_eq!(path, "0af76519-16cd-43dd-8448-eb211c80319c/2/1");
//! ```

use crate::entry::Encode;
use crate::task::{import_task, Task, TaskGuard};
use std::fmt;

/// A `traceparent` header that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceparentError {
    header: String,
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a W3C traceparent: {:?}; expected 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, ids not all zero",
            self.header
        )
    }
}

impl std::error::Error for TraceparentError {}

/// `(traceparent, tracestate)` for a task path.
pub fn encode(path: &str) -> (String, String) {
    let (root, rest) = path.split_once('/').unwrap_or((path, ""));
    let hex: String = root.chars().filter(|c| *c != '-').collect();
    let trace_id = if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex.to_ascii_lowercase()
    } else {
        format!(
            "{:016x}{:016x}",
            fnv1a(root.as_bytes(), 1),
            fnv1a(root.as_bytes(), 2)
        )
    };
    let parent_id = fnv1a(path.as_bytes(), 3) | 1; // never all zero
    let traceparent = format!("00-{trace_id}-{parent_id:016x}-01");
    let tracestate = if rest.is_empty() {
        String::new()
    } else {
        format!("distlog={}", rest.replace('/', "."))
    };
    (traceparent, tracestate)
}

/// The task path a `traceparent` (and optional `tracestate`) names.
pub fn decode(traceparent: &str, tracestate: Option<&str>) -> Result<String, TraceparentError> {
    let err = || TraceparentError {
        header: traceparent.to_owned(),
    };
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace_id, parent_id, flags] = parts[..] else {
        return Err(err());
    };
    let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex(version, 2)
        || version == "ff"
        || !is_hex(trace_id, 32)
        || !is_hex(parent_id, 16)
        || !is_hex(flags, 2)
        || trace_id.bytes().all(|b| b == b'0')
        || parent_id.bytes().all(|b| b == b'0')
    {
        return Err(err());
    }
    let t = trace_id.to_ascii_lowercase();
    let root = format!(
        "{}-{}-{}-{}-{}",
        &t[0..8],
        &t[8..12],
        &t[12..16],
        &t[16..20],
        &t[20..32]
    );
    let suffix = tracestate.and_then(|state| {
        state
            .split(',')
            .filter_map(|m| m.trim().split_once('='))
            .find(|(k, _)| *k == "distlog")
            .map(|(_, v)| v.trim().replace('.', "/"))
            .filter(|v| !v.is_empty() && v.split('/').all(|n| n.parse::<u32>().is_ok()))
    });
    Ok(match suffix {
        Some(s) => format!("{root}/{s}"),
        None => format!("{root}/{}", parent_id.to_ascii_lowercase()),
    })
}

impl Task {
    /// `(traceparent, tracestate)` headers for a subtask in another service
    /// (reserves a subtask number, like [`Task::foreign_id`]).
    pub fn foreign_traceparent(&self) -> (String, String) {
        encode(&self.foreign_id())
    }
}

/// Continues a tree from `traceparent` / `tracestate` headers.
#[track_caller]
pub fn import(
    traceparent: &str,
    tracestate: Option<&str>,
    msg: &str,
    fields: &[(&str, &dyn Encode)],
) -> Result<TaskGuard, TraceparentError> {
    let path = decode(traceparent, tracestate)?;
    Ok(import_task(&path, msg, fields))
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_paths() {
        for path in [
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427/3/12/1",
        ] {
            let (tp, ts) = encode(path);
            assert_eq!(
                decode(&tp, Some(&ts)).unwrap().split('/').next(),
                path.split('/').next()
            );
            if path.contains('/') {
                assert_eq!(decode(&tp, Some(&format!("other=x,{ts}"))).unwrap(), path);
            }
        }
    }

    #[test]
    fn foreign_traceparent_continues_under_its_root() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            decode(tp, None).unwrap(),
            "4bf92f35-77b3-4da6-a3ce-929d0e0e4736/00f067aa0ba902b7"
        );
        assert_eq!(
            decode(tp, Some("distlog=2.1")).unwrap(),
            "4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2/1"
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            let e = decode(bad, None).unwrap_err();
            assert!(e.to_string().contains("traceparent"));
        }
    }
}
