//! Sizes (`64MiB`, `10GB`, `4096`) and durations (`500ms`, `10s`, `5m`,
//! `2h`, `7d`) as the config file writes them.

use std::time::Duration;

/// Parses a byte size: a number with an optional unit `B`, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, `T`/`TB`/`TiB` (all powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a size (write e.g. 64MiB, 10GiB, 4096)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use B, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a duration: a number with a unit `ms`, `s`, `m`, `h` or `d`
/// (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (write e.g. 500ms, 10s, 5m, 2h, 7d)"))?;
    let secs = |m: u64| {
        n.checked_mul(m)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("duration {s:?} is too long"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        other => Err(format!(
            "unknown duration unit {other:?} in {s:?} (use ms, s, m, h, d)"
        )),
    }
}

/// Serde helpers: a field written as a size string or a plain integer.
pub mod size {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }

    /// Deserializes a size.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => super::parse_size(&s).map_err(serde::de::Error::custom),
        }
    }

    /// Deserializes an optional size.
    pub mod option {
        use serde::{Deserialize, Deserializer};

        /// Deserializes an optional size.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            match Option::<super::Raw>::deserialize(d)? {
                None => Ok(None),
                Some(super::Raw::N(n)) => Ok(Some(n)),
                Some(super::Raw::S(s)) => super::super::parse_size(&s)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

/// Serde helpers: a field written as a duration string or seconds.
pub mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }

    /// Deserializes a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Duration::from_secs(n)),
            Raw::S(s) => super::parse_duration(&s).map_err(serde::de::Error::custom),
        }
    }

    /// Deserializes an optional duration.
    pub mod option {
        use serde::{Deserialize, Deserializer};
        use std::time::Duration;

        /// Deserializes an optional duration.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            match Option::<super::Raw>::deserialize(d)? {
                None => Ok(None),
                Some(super::Raw::N(n)) => Ok(Some(Duration::from_secs(n))),
                Some(super::Raw::S(s)) => super::super::parse_duration(&s)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("10 GB").unwrap(), 10 << 30);
        assert_eq!(parse_size("1_000k").unwrap(), 1000 << 10);
        assert!(parse_size("12 parsecs").unwrap_err().contains("unit"));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999T")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
