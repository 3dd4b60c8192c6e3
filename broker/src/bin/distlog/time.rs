//! `--since` / `--until`: RFC 3339 times and relative ones (`10m` ago).

use crate::CliError;

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Parses a time bound: an RFC 3339 time (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.5+02:00`), a bare date (midnight UTC), `now`, or a
/// duration before `now`: a number and a unit, `ms`, `s`, `m`, `h`, `d` or
/// `w` (`30s`, `10m`, `2h`, `1d`, `1.5h`; units may be combined: `1h30m`).
pub fn parse_time(s: &str, now: u64) -> Result<u64, CliError> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return distlog_filter::parse_rfc3339(s)
            .map(|ns| ns.clamp(0, i128::from(u64::MAX)) as u64)
            .map_err(|e| CliError(format!("bad time {s:?}: {e}")));
    }
    let ago = parse_duration(s).ok_or_else(|| {
        CliError(format!(
            "bad time {s:?}: expected an RFC 3339 time such as 2024-05-01T12:00:00Z, a date \
             such as 2024-05-01, `now`, or a duration ago such as 30s, 10m, 2h, 1d"
        ))
    })?;
    Ok(now.saturating_sub(ago))
}

/// `1h30m`, `10m`, `1.5h`, `250ms` to nanoseconds.
fn parse_duration(s: &str) -> Option<u64> {
    let mut rest = s;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1e6,
            "s" | "sec" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    (total.is_finite() && total >= 0.0).then_some(total.min(u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative() {
        let now = 1_700_000_000_000_000_000;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("10m", now).unwrap(), now - 600_000_000_000);
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000_000_000);
        assert_eq!(parse_time("30s", now).unwrap(), now - 30_000_000_000);
        assert_eq!(parse_time("1d", now).unwrap(), now - 86_400_000_000_000);
        assert_eq!(parse_time("1h30m", now).unwrap(), now - 5_400_000_000_000);
        assert_eq!(parse_time("250ms", now).unwrap(), now - 250_000_000);
        assert_eq!(parse_time("1.5h", now).unwrap(), now - 5_400_000_000_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", 0).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(parse_time("1970-01-02", 0).unwrap(), 86_400_000_000_000);
        for bad in [
            "",
            "10",
            "10x",
            "m",
            "yesterday",
            "2023-11-14T22:13:20",
            "1..5h",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
