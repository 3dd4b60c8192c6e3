//! Byte-string helpers shared by the VM, the rule set and the per-site
//! message analysis (a leaf module: it imports nothing of the crate).

/// Byte equality without a `memcmp` call for short strings (the usual
/// constants): two overlapping word compares.
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1..=3 => {
            a[0] == b[0] && a[a.len() / 2] == b[a.len() / 2] && a[a.len() - 1] == b[b.len() - 1]
        }
        4..=7 => {
            a.first_chunk::<4>() == b.first_chunk::<4>()
                && a.last_chunk::<4>() == b.last_chunk::<4>()
        }
        8..=16 => {
            a.first_chunk::<8>() == b.first_chunk::<8>()
                && a.last_chunk::<8>() == b.last_chunk::<8>()
        }
        _ => a == b,
    }
}

/// `s.starts_with(p)`, without a `memcmp` call for short constants.
#[inline(always)]
pub(crate) fn starts_with(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && bytes_eq(&s[..p.len()], p)
}

/// `s.ends_with(p)`, without a `memcmp` call for short constants.
#[inline(always)]
pub(crate) fn ends_with(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && bytes_eq(&s[s.len() - p.len()..], p)
}
