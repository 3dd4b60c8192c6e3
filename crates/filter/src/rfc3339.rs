//! RFC 3339 timestamps to nanoseconds since the Unix epoch (compile time
//! only).
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, with `t`, `z`
//! or a space also allowed as in RFC 3339 section 5.6, and a bare date
//! `YYYY-MM-DD` meaning midnight UTC. A time without an offset is rejected:
//! guessing local time or UTC is a classic source of wrong answers. Leap
//! seconds (`:60`) count as the following second; fraction digits past the
//! ninth are ignored.

/// Parses `s`; the error says what was expected.
pub(super) fn parse(s: &str) -> Result<i128, &'static str> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    const DATE: &str = "expected a date as YYYY-MM-DD";
    let year = num(0, 4).ok_or(DATE)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(DATE);
    }
    let month = num(5, 2).ok_or(DATE)?;
    let day = num(8, 2).ok_or(DATE)?;
    if !(1..=12).contains(&month) {
        return Err("month out of range: expected 01 to 12");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range for its month");
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Ok(i128::from(days) * 86_400 * 1_000_000_000);
    }
    const TIME: &str = "expected `T` and a time as HH:MM:SS after the date";
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(TIME);
    }
    let hour = num(11, 2).ok_or(TIME)?;
    let minute = num(14, 2).ok_or(TIME)?;
    let second = num(17, 2).ok_or(TIME)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(TIME);
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time out of range: expected 00:00:00 to 23:59:60");
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err("expected digits after the decimal point");
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    const OFFSET: &str = "expected `Z` or an offset such as +02:00 after the time";
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 => {
            let h = num(i + 1, 2).ok_or(OFFSET)?;
            let m = num(i + 4, 2).ok_or(OFFSET)?;
            if b[i + 3] != b':' || h > 23 || m > 59 {
                return Err(OFFSET);
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return Err(OFFSET),
    };
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Ok(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn known_instants() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse("1970-01-01"), Ok(0));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000_000_000));
        assert_eq!(
            parse("2023-11-15T00:13:20.5+02:00"),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse("2023-11-14 17:13:20.000000001-05:00"),
            Ok(1_700_000_000_000_000_001)
        );
        assert_eq!(parse("2000-02-29T00:00:00z"), Ok(951_782_400_000_000_000));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Ok(-1_000_000_000));
        // Digits past nanoseconds are ignored.
        assert_eq!(parse("1970-01-01T00:00:00.1234567899Z"), Ok(123_456_789));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2023",
            "2023-13-01",
            "2023-02-29",
            "2023-01-01T",
            "2023-01-01T10:00:00",
            "2023-01-01T24:00:00Z",
            "2023-01-01T10:00:00.Z",
            "2023-01-01T10:00:00+0200",
            "2023-01-01T10:00:00Zjunk",
            "２０２３-01-01",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
