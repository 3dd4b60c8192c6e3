//! Per-target level filters in the `RUST_LOG` syntax of env_logger.
//!
//! `info,db=debug,hyper::client=off`: a bare level sets the default; a
//! `target=level` pair sets the level for targets starting with `target`
//! (the longest matching prefix wins); a bare target enables everything for
//! it. Levels: `off`, `error`, `warn`, `info`, `debug`, `trace`, or a number
//! on Python's scale.

use crate::record::level;
use std::fmt;

/// A level threshold: records at or above it pass. `OFF` passes nothing.
pub type Threshold = u8;

/// The threshold that passes nothing.
pub const OFF: Threshold = u8::MAX;

/// Parsed directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    default: Threshold,
    /// (target prefix, threshold), longest prefix first.
    targets: Vec<(String, Threshold)>,
}

/// A directive string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectivesError {
    directive: String,
}

impl fmt::Display for DirectivesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad log directive {:?}: expected LEVEL, TARGET or TARGET=LEVEL \
             with LEVEL one of off, error, warn, info, debug, trace",
            self.directive
        )
    }
}

impl std::error::Error for DirectivesError {}

fn parse_threshold(s: &str) -> Option<Threshold> {
    if s.eq_ignore_ascii_case("off") {
        Some(OFF)
    } else {
        level::parse(s)
    }
}

impl Directives {
    /// Everything at `threshold` and above, for every target.
    pub fn new(threshold: Threshold) -> Directives {
        Directives {
            default: threshold,
            targets: Vec::new(),
        }
    }

    /// Parses `RUST_LOG`-style directives.
    pub fn parse(spec: &str) -> Result<Directives, DirectivesError> {
        let mut d = Directives::new(level::ERROR);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let err = || DirectivesError {
                directive: part.to_owned(),
            };
            match part.split_once('=') {
                Some((target, lvl)) => {
                    let t = parse_threshold(lvl).ok_or_else(err)?;
                    if target.trim().is_empty() {
                        return Err(err());
                    }
                    d.targets.push((target.trim().to_owned(), t));
                }
                None => match parse_threshold(part) {
                    Some(t) => d.default = t,
                    None => d.targets.push((part.to_owned(), 0)),
                },
            }
        }
        d.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        Ok(d)
    }

    /// The threshold for `target`.
    pub fn threshold(&self, target: &str) -> Threshold {
        self.targets
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map(|&(_, t)| t)
            .unwrap_or(self.default)
    }

    /// Whether a record at `lvl` for `target` passes.
    pub fn enabled(&self, target: &str, lvl: u8) -> bool {
        lvl >= self.threshold(target)
    }

    /// The lowest threshold of any directive: nothing below it can pass.
    pub fn min_threshold(&self) -> Threshold {
        self.targets
            .iter()
            .map(|&(_, t)| t)
            .fold(self.default, Threshold::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let d = Directives::parse("warn,db=debug,db::pool=off,web").unwrap();
        assert!(d.enabled("app", level::WARN));
        assert!(!d.enabled("app", level::INFO));
        assert!(d.enabled("db::query", level::DEBUG));
        assert!(!d.enabled("db::pool", level::ERROR));
        assert!(d.enabled("web::x", level::TRACE));
        assert_eq!(d.min_threshold(), 0);
    }

    #[test]
    fn rejects_bad_levels() {
        let e = Directives::parse("info,db=loud").unwrap_err();
        assert!(e.to_string().contains("db=loud"));
        assert!(Directives::parse("=info").is_err());
    }
}
