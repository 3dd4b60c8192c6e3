//! The segment files: their format constants, the time span each covers,
//! and listing them in order. The writer, the reader and retention share
//! these; nothing here knows them.

/// A segment file's first 8 bytes.
pub(crate) const MAGIC: [u8; 8] = *b"DLSEG\0\0\x01";
pub(crate) const ENTRY_HEADER: usize = 8;
pub(crate) const TOPIC_PAD: usize = 8;

/// How far a record's time may lie before its arrival (client buffering,
/// clock skew between hosts) and still be found by a time-bounded read
/// ([`Segment::may_hold`]): five minutes.
pub const TIME_SLACK_NS: u64 = 300 * 1_000_000_000;

/// A segment file and the span of arrival times it covers.
///
/// A segment is named for when the broker opened it and holds what arrived
/// between then and when the next one was opened. A record's time is its
/// sender's clock when it was logged, normally a little before it arrived,
/// so [`Segment::may_hold`] allows [`TIME_SLACK_NS`] around the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The file.
    pub path: std::path::PathBuf,
    /// When the broker opened it (from the name); 0 when the name has none.
    pub first_ns: u64,
    /// When the next segment was opened: this one ends before. `None` for
    /// the newest one.
    pub next_ns: Option<u64>,
}

impl Segment {
    /// Every segment of `dir`, oldest first, with its span.
    pub fn list(dir: &std::path::Path) -> std::io::Result<Vec<Segment>> {
        let paths = segments(dir)?;
        let firsts: Vec<Option<u64>> = paths.iter().map(|p| first_ns(p)).collect();
        Ok(paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| Segment {
                path,
                first_ns: firsts[i].unwrap_or(0),
                next_ns: firsts.get(i + 1).copied().flatten(),
            })
            .collect())
    }

    /// Whether this is the newest segment, the one the broker may still be
    /// writing (and truncating).
    pub fn is_newest(&self) -> bool {
        self.next_ns.is_none()
    }

    /// Whether the segment may hold records timed in `[since, until)`:
    /// false only when its whole arrival span lies more than
    /// [`TIME_SLACK_NS`] outside the range.
    pub fn may_hold(&self, since: u64, until: u64) -> bool {
        let ends_before = self
            .next_ns
            .is_some_and(|next| next.saturating_add(TIME_SLACK_NS) < since);
        let starts_after = self.first_ns > until.saturating_add(TIME_SLACK_NS);
        !ends_before && !starts_after
    }
}

/// The first ns of a segment's file name (`seg-<first ns>-<n>.dls`).
fn first_ns(path: &std::path::Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("seg-")?;
    rest.split('-').next()?.parse().ok()
}

/// Lists the segment files of `dir`, oldest first.
pub fn segments(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".dls"))
        })
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn seg(first: u64, next: Option<u64>) -> Segment {
        Segment {
            path: PathBuf::from(format!("seg-{first:020}-000000.dls")),
            first_ns: first,
            next_ns: next,
        }
    }

    #[test]
    fn names_and_time_spans() {
        assert_eq!(
            first_ns(Path::new("/d/seg-00000000000000000042-000007.dls")),
            Some(42)
        );
        assert_eq!(first_ns(Path::new("/d/other")), None);
        let s = 1_000 * TIME_SLACK_NS;
        let segs = [seg(0, Some(s)), seg(s, Some(2 * s)), seg(2 * s, None)];
        let firsts = |since, until| {
            segs.iter()
                .filter(|g| g.may_hold(since, until))
                .map(|g| g.first_ns)
                .collect::<Vec<_>>()
        };
        assert_eq!(firsts(0, u64::MAX), [0, s, 2 * s]);
        // Only the newest can hold records after 3s.
        assert_eq!(firsts(3 * s, u64::MAX), [2 * s]);
        // Records near a boundary may sit in the segment before or after it.
        assert_eq!(firsts(s + 1, 2 * s - 1), [0, s, 2 * s]);
        let slack = 2 * TIME_SLACK_NS;
        assert_eq!(firsts(s + slack, 2 * s - slack), [s]);
        assert_eq!(firsts(0, s / 2), [0]);
        assert_eq!(firsts(0, s - 1), [0, s]);
    }
}
