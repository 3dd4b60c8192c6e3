//! Retention: deleting the oldest segments by age and by total size.

use super::segment::segments;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Delete segments last written longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while all of them together are larger.
    pub max_bytes: Option<u64>,
}

/// Applies `keep` to the segments of `dir`, never deleting `current` (the
/// segment being written). Returns the number of segments deleted.
pub fn apply(dir: &Path, keep: Retention, current: &Path) -> io::Result<usize> {
    if keep.max_age.is_none() && keep.max_bytes.is_none() {
        return Ok(0);
    }
    let now = SystemTime::now();
    let mut segs = Vec::new();
    for p in segments(dir)? {
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        segs.push((p, m.len(), m.modified().unwrap_or(now)));
    }
    let mut total: u64 = segs.iter().map(|s| s.1).sum();
    let mut deleted = 0;
    for (path, len, modified) in &segs {
        if path == current {
            continue;
        }
        let too_old = keep
            .max_age
            .is_some_and(|a| now.duration_since(*modified).unwrap_or_default() > a);
        let too_big = keep.max_bytes.is_some_and(|m| total > m);
        if !too_old && !too_big {
            // Oldest first: once one is kept by both rules, the newer are too.
            break;
        }
        std::fs::remove_file(path)?;
        total -= len;
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_dir, Writer};

    #[test]
    fn deletes_oldest_by_size_but_never_the_current() {
        let dir = test_dir("ret");
        let mut w = Writer::open(&dir, 4096).unwrap();
        let body = distlog_core::wire::encode_batch_to_vec(&distlog_core::wire::Batch::default());
        for _ in 0..200 {
            w.append(*b"TLR", &body).unwrap();
        }
        let before = segments(&dir).unwrap();
        assert!(before.len() > 3, "{} segments", before.len());
        let n = apply(
            &dir,
            Retention {
                max_age: None,
                max_bytes: Some(8192),
            },
            w.current(),
        )
        .unwrap();
        let after = segments(&dir).unwrap();
        assert_eq!(after.len(), before.len() - n);
        assert!(after.contains(&w.current().to_path_buf()));
        let total: u64 = after
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= 8192, "{total}");
        // The newest survive, in order.
        assert_eq!(after[..], before[before.len() - after.len()..]);
        // Everything younger than an hour is kept by age.
        let keep_age = Retention {
            max_age: Some(Duration::from_secs(3600)),
            max_bytes: None,
        };
        assert_eq!(apply(&dir, keep_age, w.current()).unwrap(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
