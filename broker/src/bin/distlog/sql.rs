//! A filter as a SQL predicate over the tables the broker's `postgres`
//! processor writes: a visitor over the filter's own syntax tree
//! ([`distlog_filter::ast`]), so there is one parser for the language.
//!
//! The predicate selects a **superset** of the matching records: every
//! row that comes back is rebuilt and checked by the real compiled filter
//! (see `pg.rs`), so the answer is exactly the store's whatever is
//! translated. What is translated:
//!
//! - `level`, `pid`, `line`, `time` with `==`, `!=`, `<`, `<=`, `>`, `>=`
//!   and `in` (integers formatted into the SQL; `time` also bounds the
//!   indexed `time` column);
//! - the text fields (`host`, `process`, `target`, `task`, `module`,
//!   `file`, `func`, `error`, `message`) with `==`, `!=`, `in`,
//!   `contains`, `starts_with`, `ends_with` and `under` (strings are
//!   always bound parameters, never spliced into the SQL);
//! - `true`, `false`, `and`, `or`, and `not` / `not in` / `not contains`
//!   of an exact part (the columns are `NOT NULL`, so SQL's `NOT` is the
//!   filter's).
//!
//! Everything else (`thread`, `key`, `kind`, `system`, `field.*`, text
//! ordering, strings with NUL) is left to the compiled filter: its part
//! of the predicate is `TRUE`, and the translation is marked inexact.
//! When the whole filter is exact, `--count` is a `count(*)` in the
//! database. The `match`es below have no wildcard arm, so a construct
//! added to the grammar does not compile until it is placed here.

use distlog_filter::ast::{Cmp, CmpOp, Expr, FieldRef, Lit, Rhs};
use distlog_filter::Filter;
use distlogd::pg;
use postgres::types::ToSql;

/// A bound parameter.
pub type Param = Box<dyn ToSql + Sync>;

/// A WHERE clause with its parameters (`$1`, `$2`, ... in order).
pub struct Where {
    /// The predicate (`TRUE` when nothing is restricted).
    pub sql: String,
    /// The values of its parameters.
    pub params: Vec<Param>,
    /// Whether it selects exactly the records the filter matches in the
    /// time range (not only a superset).
    pub exact: bool,
}

impl Where {
    /// The clause for records timed in `[since, until)` that pass `filter`.
    pub fn new(filter: &Filter, since: u64, until: u64) -> Where {
        let mut t = Translator::default();
        let mut conds = Vec::new();
        let mut exact = true;
        let bounds = [
            (since > 0, CmpOp::Ge, since),
            (until < u64::MAX, CmpOp::Lt, until),
        ];
        for (_, op, ns) in bounds.into_iter().filter(|b| b.0) {
            match i64::try_from(ns) {
                Ok(ns) => conds.push(t.time(op, ns).unwrap_or_default()),
                Err(_) => exact = false,
            }
        }
        // The filter compiled from this source, so it parses.
        let part = match distlog_filter::parse(filter.source()) {
            Ok(expr) => t.expr(&expr),
            Err(_) => Part::any(),
        };
        exact &= part.exact;
        conds.extend(part.sql);
        Where {
            sql: if conds.is_empty() {
                "TRUE".into()
            } else {
                conds.join(" AND ")
            },
            params: t.params,
            exact,
        }
    }

    /// The parameters, as the client takes them.
    pub fn args(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| &**p as _).collect()
    }
}

/// A translated part: `sql: None` is no restriction (TRUE); `exact` says
/// the SQL selects exactly what the filter does.
struct Part {
    sql: Option<String>,
    exact: bool,
}

impl Part {
    /// Left to the compiled filter.
    fn any() -> Part {
        Part {
            sql: None,
            exact: false,
        }
    }

    fn exact(sql: String) -> Part {
        Part {
            sql: Some(sql),
            exact: true,
        }
    }

    /// `NOT` of this part: exact only when this one is.
    fn negate(self) -> Part {
        match (self.exact, self.sql) {
            (true, Some(s)) => Part::exact(format!("NOT ({s})")),
            (true, None) => Part::exact("FALSE".into()),
            (false, _) => Part::any(),
        }
    }
}

#[derive(Default)]
struct Translator {
    params: Vec<Param>,
}

impl Translator {
    /// Binds `value`; returns its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Translates `e`. A part that comes back without SQL takes its
    /// parameters with it, so the numbering stays dense.
    fn expr(&mut self, e: &Expr) -> Part {
        let mark = self.params.len();
        let part = match e {
            Expr::Bool(true) => Part {
                sql: None,
                exact: true,
            },
            Expr::Bool(false) => Part::exact("FALSE".into()),
            Expr::Not(x) => self.expr(x).negate(),
            Expr::And(xs) => {
                let parts: Vec<Part> = xs.iter().map(|x| self.expr(x)).collect();
                let exact = parts.iter().all(|p| p.exact);
                let sqls: Vec<String> = parts.into_iter().filter_map(|p| p.sql).collect();
                Part {
                    sql: (!sqls.is_empty()).then(|| format!("({})", sqls.join(" AND "))),
                    exact,
                }
            }
            Expr::Or(xs) => {
                let parts: Vec<Part> = xs.iter().map(|x| self.expr(x)).collect();
                let exact = parts.iter().all(|p| p.exact);
                // One unrestricted term makes the whole `or` unrestricted.
                let sqls: Option<Vec<String>> = parts.into_iter().map(|p| p.sql).collect();
                Part {
                    sql: sqls.map(|s| format!("({})", s.join(" OR "))),
                    exact,
                }
            }
            Expr::Cmp(c) => {
                let part = self.cmp(c).unwrap_or_else(Part::any);
                if c.negated {
                    part.negate()
                } else {
                    part
                }
            }
        };
        if part.sql.is_none() {
            self.params.truncate(mark);
        }
        part
    }

    /// One comparison (without its `not`), or `None`: left to the filter.
    fn cmp(&mut self, c: &Cmp) -> Option<Part> {
        use FieldRef as F;
        let text = |col: &'static str, sep: Option<&'static str>| Some((col, sep));
        let column = match &c.field {
            F::Level => return self.number("level", c, level),
            F::Pid => return self.number("pid", c, int),
            F::Line => return self.number("line", c, int),
            F::Time => {
                if let (Rhs::One(lit, _), true) = (&c.rhs, c.op != CmpOp::In) {
                    return Some(Part::exact(self.time(c.op, time(lit)?)?));
                }
                return self.number("time_ns", c, time);
            }
            F::Host => text("host", None),
            F::Process => text("program", None),
            F::Message => text("message", None),
            F::Func => text("func", None),
            F::Error => text("error", None),
            F::Target => text("target", Some("::")),
            F::Module => text("module", Some("::")),
            F::Task => text("task", Some("/")),
            F::File => text("file", Some("/")),
            F::Thread | F::Key | F::Kind | F::System | F::Custom(_) => None,
        };
        let (col, sep) = column?;
        self.text(col, sep, c)
    }

    /// A numeric column against integers (`value` reads a literal).
    fn number(&mut self, col: &str, c: &Cmp, value: fn(&Lit) -> Option<i64>) -> Option<Part> {
        match &c.rhs {
            Rhs::One(lit, _) => {
                let n = value(lit)?;
                Some(Part::exact(format!("{col} {} {n}", sql_op(c.op)?)))
            }
            Rhs::List(items) => {
                let ns: Option<Vec<String>> = items
                    .iter()
                    .map(|(lit, _)| value(lit).map(|n| n.to_string()))
                    .collect();
                Some(in_list(col, ns?))
            }
        }
    }

    /// A text column against strings; `sep` is the field's `under`
    /// separator.
    fn text(&mut self, col: &str, sep: Option<&str>, c: &Cmp) -> Option<Part> {
        // PostgreSQL text holds no NUL (the processor stores U+FFFD).
        let string = |lit: &Lit| match lit {
            Lit::Str(s) if !s.contains('\0') => Some(s.clone()),
            _ => None,
        };
        let s = match &c.rhs {
            Rhs::List(items) => {
                let items: Option<Vec<String>> = items.iter().map(|(l, _)| string(l)).collect();
                let ps = items?.into_iter().map(|s| self.bind(s)).collect();
                return Some(in_list(col, ps));
            }
            Rhs::One(lit, _) => string(lit)?,
        };
        Some(Part::exact(match c.op {
            CmpOp::Eq | CmpOp::Ne => format!("{col} {} {}", sql_op(c.op)?, self.bind(s)),
            CmpOp::StartsWith => format!("{col} LIKE {}", self.bind(pg::like_escape(&s) + "%")),
            CmpOp::EndsWith => format!(
                "{col} LIKE {}",
                self.bind(format!("%{}", pg::like_escape(&s)))
            ),
            CmpOp::Contains => format!("strpos({col}, {}) > 0", self.bind(s)),
            CmpOp::Under => {
                let like = format!("{}{}%", pg::like_escape(&s), pg::like_escape(sep?));
                let (a, b) = (self.bind(s), self.bind(like));
                format!("({col} = {a} OR {col} LIKE {b})")
            }
            // Byte-wise ordering is not the database's collation.
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge | CmpOp::In => return None,
        }))
    }

    /// `time_ns <op> ns`, with a condition on the indexed `time` column
    /// (microseconds, truncated) that selects a superset.
    fn time(&mut self, op: CmpOp, ns: i64) -> Option<String> {
        let exact = format!("time_ns {} {ns}", sql_op(op)?);
        let Ok(unsigned) = u64::try_from(ns) else {
            return Some(exact);
        };
        let floor = pg::timestamp(unsigned / 1_000 * 1_000);
        let coarse = match op {
            CmpOp::Gt | CmpOp::Ge => format!("time >= {}", self.bind(floor)),
            CmpOp::Lt | CmpOp::Le => format!("time <= {}", self.bind(floor)),
            CmpOp::Eq => format!("time = {}", self.bind(floor)),
            _ => return Some(exact),
        };
        Some(format!("({coarse} AND {exact})"))
    }
}

/// `col IN (a, b)`, or `FALSE` for an empty list.
fn in_list(col: &str, items: Vec<String>) -> Part {
    Part::exact(if items.is_empty() {
        "FALSE".into()
    } else {
        format!("{col} IN ({})", items.join(", "))
    })
}

fn sql_op(op: CmpOp) -> Option<&'static str> {
    Some(match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith | CmpOp::In | CmpOp::Under => {
            return None
        }
    })
}

/// An integer literal that fits the `bigint` columns.
fn int(lit: &Lit) -> Option<i64> {
    match lit {
        Lit::Int(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

/// A `level` literal: a name (bare or quoted) or a number, as the filter
/// compiler reads it.
fn level(lit: &Lit) -> Option<i64> {
    match lit {
        Lit::Name(s) | Lit::Str(s) => distlog_core::record::level::parse(s).map(i64::from),
        other => int(other),
    }
}

/// A `time` literal: RFC 3339 or integer ns, as the filter compiler reads
/// it.
fn time(lit: &Lit) -> Option<i64> {
    match lit {
        Lit::Str(s) => i64::try_from(distlog_filter::parse_rfc3339(s).ok()?).ok(),
        other => int(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(src: &str) -> (String, bool, usize) {
        let w = Where::new(&Filter::parse(src).unwrap(), 0, u64::MAX);
        (w.sql, w.exact, w.params.len())
    }

    #[test]
    fn filters_translate_to_superset_predicates() {
        assert_eq!(tr("level >= warn"), ("level >= 30".into(), true, 0));
        let (w, exact, n) = tr(r#"task under "abc/1" and host in ["a", "b"]"#);
        assert_eq!(w, "((task = $1 OR task LIKE $2) AND host IN ($3, $4))");
        assert!(exact);
        assert_eq!(n, 4);
        // `not` of an exact part is exact; field.* is left to the client.
        let (w, exact, _) = tr(r#"level >= error and not (pid == 7)"#);
        assert_eq!(
            (w.as_str(), exact),
            ("(level >= 40 AND NOT (pid = 7))", true)
        );
        let (w, exact, n) = tr(r#"message contains "x" or field.user_id == 42"#);
        assert_eq!((w.as_str(), exact, n), ("TRUE", false, 0));
        let (w, exact, n) = tr(r#"not (field.a == 1 or host == "a") and host == "b""#);
        assert_eq!((w.as_str(), exact, n), ("(host = $1)", false, 1));
        let (w, exact, _) = tr(r#"time >= "2024-05-01T00:00:00Z" and kind == log"#);
        assert!(
            w.starts_with("((time >= $1 AND time_ns >= 1714521600000000000)"),
            "{w}"
        );
        assert!(!exact);
        assert_eq!(tr("true"), ("TRUE".into(), true, 0));
        assert_eq!(tr("false or level == 5").0, "(FALSE OR level = 5)");
        assert_eq!(
            tr("not level == 5 and level < 3").0,
            "(NOT (level = 5) AND level < 3)"
        );
        assert_eq!(
            tr(r#"host not in ["a"] and file not contains "%""#),
            (
                "(NOT (host IN ($1)) AND NOT (strpos(file, $2) > 0))".into(),
                true,
                2
            )
        );
        // A constant beyond the column's range is left to the client, not
        // wrapped around.
        assert_eq!(tr("time < 18446744073709551615"), ("TRUE".into(), false, 0));
        assert_eq!(tr(r#"host < "b""#), ("TRUE".into(), false, 0));
        assert_eq!(tr("level in []"), ("FALSE".into(), true, 0));
    }

    #[test]
    fn time_range_bounds_are_parameters() {
        let w = Where::new(&Filter::always(), 5_000, 9_000);
        assert_eq!(
            w.sql,
            "(time >= $1 AND time_ns >= 5000) AND (time <= $2 AND time_ns < 9000)"
        );
        assert!(w.exact);
        assert_eq!(w.args().len(), 2);
    }
}
