//! `distlog query` and `distlog tree` against PostgreSQL (`--database URL`),
//! reading what the broker's `postgres` processor wrote.
//!
//! The filter is translated to SQL where it can be, as a predicate that
//! selects a superset of the matching records: `level`, `pid`, `time`,
//! and `==`, `!=`, `starts_with`, `contains`, `ends_with`, `in` and
//! `under` on the text columns (`host`, `process`, `target`, `task`,
//! `module`, `file`, `func`, `error`, `message`); `and` and `or` of those.
//! Anything else (`not`, `field.*`, `kind`, `system`, `key`, `thread`,
//! `line`, text ordering) becomes `TRUE` in SQL. Every row that comes back
//! is rebuilt as a one-record batch, encoded and checked by the real
//! compiled filter, so the answer is exactly the store's. When the whole
//! filter translated exactly, `--count` is a `count(*)` in the database.

use crate::out::Out;
use crate::{CliError, Format};
use distlog::filter::{Filter, RecordView};
use distlog::view::RecordRef;
use distlog::wire::{encode_batch_to_vec, ArchivedSender, Batch, OwnedBatch};
use distlogd::pg;
use postgres::types::ToSql;
use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};

/// Where records are read from: a store directory or a database.
#[derive(clap::Args, Debug, Clone)]
pub struct Source {
    /// The broker's data directory (where its segments are).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "database",
        conflicts_with = "database"
    )]
    pub data_dir: Option<PathBuf>,
    /// Read from PostgreSQL instead (what a `postgres` processor wrote):
    /// `host=H port=P user=U dbname=D` or `postgresql://U@H:P/D`.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

impl Source {
    /// The data directory (when not reading a database).
    pub fn dir(&self) -> Result<&Path, CliError> {
        self.data_dir
            .as_deref()
            .ok_or_else(|| CliError("give --data-dir or --database".into()))
    }

    /// What to name in messages.
    pub fn describe(&self) -> String {
        match (&self.database, &self.data_dir) {
            (Some(url), _) => format!("database {}", pg::describe(url)),
            (None, Some(d)) => d.display().to_string(),
            (None, None) => String::new(),
        }
    }
}

type Param = Box<dyn ToSql + Sync>;

/// A WHERE clause under construction.
#[derive(Default)]
struct Sql {
    params: Vec<Param>,
}

impl Sql {
    fn push(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }
}

/// A translated part: `None` is no restriction (TRUE); `exact` says the
/// SQL selects exactly what the filter does.
struct Part {
    sql: Option<String>,
    exact: bool,
}

impl Part {
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
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Punct(&'static str),
}

/// The filter's tokens, or `None` for anything unexpected (the real filter
/// has already compiled, so that does not happen; `None` only makes the
/// translation give up).
fn lex(src: &str) -> Option<Vec<Tok>> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let mut s = String::new();
                let mut chars = src[i + 1..].char_indices();
                loop {
                    let (j, ch) = chars.next()?;
                    match ch {
                        '"' => {
                            i += 1 + j + 1;
                            break;
                        }
                        '\\' => {
                            let (_, e) = chars.next()?;
                            match e {
                                '\\' => s.push('\\'),
                                '"' => s.push('"'),
                                'n' => s.push('\n'),
                                'r' => s.push('\r'),
                                't' => s.push('\t'),
                                '0' => s.push('\0'),
                                'u' => {
                                    if chars.next()?.1 != '{' {
                                        return None;
                                    }
                                    let mut hex = String::new();
                                    loop {
                                        let (_, h) = chars.next()?;
                                        if h == '}' {
                                            break;
                                        }
                                        hex.push(h);
                                    }
                                    s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                                }
                                _ => return None,
                            }
                        }
                        ch => s.push(ch),
                    }
                }
                out.push(Tok::Str(s));
            }
            b'0'..=b'9' | b'-' => {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                out.push(Tok::Num(src[start..i].to_owned()));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Word(src[start..i].to_owned()));
            }
            _ => {
                const PUNCT: [&str; 14] = [
                    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "(", ")", "[", "]", ",", ".",
                ];
                let p = PUNCT.iter().find(|p| src[i..].starts_with(**p));
                match p {
                    Some(p) => {
                        out.push(Tok::Punct(p));
                        i += p.len();
                    }
                    None if c == b'!' => {
                        out.push(Tok::Punct("!"));
                        i += 1;
                    }
                    None => return None,
                }
            }
        }
    }
    Some(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    sql: &'a mut Sql,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == p)
    }

    fn or_expr(&mut self) -> Option<Part> {
        let before = self.sql.params.len();
        let mut parts = vec![self.and_expr()?];
        while self.is_word("or") || self.is_punct("||") {
            self.next();
            parts.push(self.and_expr()?);
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        let exact = parts.iter().all(|p| p.exact);
        let sqls: Option<Vec<String>> = parts.into_iter().map(|p| p.sql).collect();
        Some(match sqls {
            Some(s) => Part {
                sql: Some(format!("({})", s.join(" OR "))),
                exact,
            },
            None => {
                // Parameters of the parts left out must go too.
                self.sql.params.truncate(before);
                Part::any()
            }
        })
    }

    fn and_expr(&mut self) -> Option<Part> {
        let mut parts = vec![self.unary()?];
        while self.is_word("and") || self.is_punct("&&") {
            self.next();
            parts.push(self.unary()?);
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        let exact = parts.iter().all(|p| p.exact);
        let sqls: Vec<String> = parts.into_iter().filter_map(|p| p.sql).collect();
        Some(Part {
            sql: (!sqls.is_empty()).then(|| format!("({})", sqls.join(" AND "))),
            exact,
        })
    }

    fn unary(&mut self) -> Option<Part> {
        self.depth += 1;
        if self.depth > 100 {
            return None;
        }
        let r = if self.is_word("not") || self.is_punct("!") {
            self.next();
            let before = self.sql.params.len();
            self.unary()?;
            self.sql.params.truncate(before);
            Some(Part::any())
        } else {
            self.primary()
        };
        self.depth -= 1;
        r
    }

    fn primary(&mut self) -> Option<Part> {
        if self.is_punct("(") {
            self.next();
            let p = self.or_expr()?;
            (self.next()? == Tok::Punct(")")).then_some(p)
        } else if self.is_word("true") {
            self.next();
            Some(Part {
                sql: None,
                exact: true,
            })
        } else if self.is_word("false") {
            self.next();
            Some(Part::exact("FALSE".into()))
        } else {
            self.comparison()
        }
    }

    fn value(&mut self) -> Option<Tok> {
        self.next()
    }

    fn list(&mut self) -> Option<Vec<Tok>> {
        if self.next()? != Tok::Punct("[") {
            return None;
        }
        let mut v = Vec::new();
        loop {
            if self.is_punct("]") {
                self.next();
                return Some(v);
            }
            v.push(self.value()?);
            if self.is_punct(",") {
                self.next();
            }
        }
    }

    fn comparison(&mut self) -> Option<Part> {
        let Tok::Word(field) = self.next()? else {
            return None;
        };
        if field == "field" {
            // field.<name>{.<name>}
            while self.is_punct(".") {
                self.next();
                self.next()?;
            }
        }
        let negated = if self.is_word("not") {
            self.next();
            true
        } else {
            false
        };
        let op = match self.next()? {
            Tok::Punct(p) => p.to_owned(),
            Tok::Word(w) => w,
            _ => return None,
        };
        let operand = if op == "in" {
            Operand::List(self.list()?)
        } else {
            Operand::One(self.value()?)
        };
        if negated {
            return Some(Part::any());
        }
        Some(atom(self.sql, &field, &op, operand).unwrap_or_else(Part::any))
    }
}

enum Operand {
    One(Tok),
    List(Vec<Tok>),
}

fn sql_op(op: &str) -> Option<&'static str> {
    Some(match op {
        "==" => "=",
        "!=" => "<>",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        ">=" => ">=",
        _ => return None,
    })
}

fn int_of(t: &Tok) -> Option<i64> {
    match t {
        Tok::Num(n) => n.parse().ok(),
        _ => None,
    }
}

/// One comparison in SQL, or `None` (no restriction).
fn atom(sql: &mut Sql, field: &str, op: &str, operand: Operand) -> Option<Part> {
    let text_col = match field {
        "host" => Some("host"),
        "process" => Some("program"),
        "target" => Some("target"),
        "task" => Some("task"),
        "module" => Some("module"),
        "file" => Some("file"),
        "func" => Some("func"),
        "error" => Some("error"),
        "message" => Some("message"),
        _ => None,
    };
    if let Some(col) = text_col {
        let text = |t: &Tok| match t {
            Tok::Str(s) if !s.contains('\0') => Some(s.clone()),
            _ => None,
        };
        return match operand {
            Operand::List(items) => {
                let items: Option<Vec<String>> = items.iter().map(text).collect();
                let items = items?;
                if items.is_empty() {
                    return Some(Part::exact("FALSE".into()));
                }
                let ps: Vec<String> = items.into_iter().map(|s| sql.push(Box::new(s))).collect();
                Some(Part::exact(format!("{col} IN ({})", ps.join(", "))))
            }
            Operand::One(t) => {
                let s = text(&t)?;
                Some(Part::exact(match op {
                    "==" | "!=" => format!("{col} {} {}", sql_op(op)?, sql.push(Box::new(s))),
                    "starts_with" => {
                        format!(
                            "{col} LIKE {}",
                            sql.push(Box::new(pg::like_escape(&s) + "%"))
                        )
                    }
                    "ends_with" => {
                        format!(
                            "{col} LIKE {}",
                            sql.push(Box::new(format!("%{}", pg::like_escape(&s))))
                        )
                    }
                    "contains" => format!("strpos({col}, {}) > 0", sql.push(Box::new(s))),
                    "under" => {
                        let sep = match field {
                            "task" | "file" => "/",
                            "target" | "module" => "::",
                            _ => return None,
                        };
                        let like = format!("{}{}%", pg::like_escape(&s), pg::like_escape(sep));
                        let a = sql.push(Box::new(s));
                        let b = sql.push(Box::new(like));
                        format!("({col} = {a} OR {col} LIKE {b})")
                    }
                    _ => return None,
                }))
            }
        };
    }
    match (field, operand) {
        ("level", Operand::One(t)) => {
            let n = level_of(&t)?;
            Some(Part::exact(format!("level {} {n}", sql_op(op)?)))
        }
        ("level", Operand::List(items)) => {
            let ns: Option<Vec<String>> = items
                .iter()
                .map(|t| level_of(t).map(|n| n.to_string()))
                .collect();
            let ns = ns?;
            Some(Part::exact(if ns.is_empty() {
                "FALSE".into()
            } else {
                format!("level IN ({})", ns.join(", "))
            }))
        }
        ("pid", Operand::One(t)) => {
            let n = int_of(&t)?;
            Some(Part::exact(format!("pid {} {n}", sql_op(op)?)))
        }
        ("pid", Operand::List(items)) => {
            let ns: Option<Vec<String>> = items
                .iter()
                .map(|t| int_of(t).map(|n| n.to_string()))
                .collect();
            let ns = ns?;
            Some(Part::exact(if ns.is_empty() {
                "FALSE".into()
            } else {
                format!("pid IN ({})", ns.join(", "))
            }))
        }
        ("time", Operand::One(t)) => {
            let ns: i128 = match &t {
                Tok::Str(s) => distlog::filter::parse_rfc3339(s).ok()?,
                Tok::Num(n) => n.parse().ok()?,
                _ => return None,
            };
            let ns = u64::try_from(ns).ok()?;
            Some(Part::exact(time_bound(sql, op, ns)?))
        }
        _ => None,
    }
}

/// `level` operand: a name (bare or quoted) or a number.
fn level_of(t: &Tok) -> Option<i64> {
    match t {
        Tok::Word(w) | Tok::Str(w) => distlog::record::level::parse(w).map(i64::from),
        Tok::Num(n) => n.parse().ok(),
        _ => None,
    }
}

/// `time_ns <op> ns`, with a condition on the indexed `time` column
/// (microseconds, truncated) that selects a superset.
fn time_bound(sql: &mut Sql, op: &str, ns: u64) -> Option<String> {
    let floor = pg::timestamp(ns / 1_000 * 1_000);
    let exact = format!("time_ns {} {}", sql_op(op)?, ns as i64);
    let coarse = match op {
        ">" | ">=" => format!("time >= {}", sql.push(Box::new(floor))),
        "<" | "<=" => format!("time <= {}", sql.push(Box::new(floor))),
        "==" => format!("time = {}", sql.push(Box::new(floor))),
        _ => return Some(exact),
    };
    Some(format!("({coarse} AND {exact})"))
}

/// The WHERE clause for a filter and a time range, and whether it selects
/// exactly the matching records.
fn where_clause(sql: &mut Sql, filter: Option<&str>, since: u64, until: u64) -> (String, bool) {
    let mut conds = Vec::new();
    let mut exact = true;
    if since > 0 {
        conds.push(time_bound(sql, ">=", since).unwrap_or_default());
    }
    if until < u64::MAX {
        conds.push(time_bound(sql, "<", until).unwrap_or_default());
    }
    if let Some(src) = filter {
        let before = sql.params.len();
        let part = lex(src).and_then(|toks| {
            let mut p = Parser {
                toks,
                at: 0,
                sql,
                depth: 0,
            };
            let part = p.or_expr()?;
            (p.at == p.toks.len()).then_some(part)
        });
        match part {
            Some(p) => {
                exact &= p.exact;
                conds.extend(p.sql);
            }
            None => {
                sql.params.truncate(before);
                exact = false;
            }
        }
    }
    if conds.is_empty() {
        ("TRUE".into(), exact)
    } else {
        (conds.join(" AND "), exact)
    }
}

fn connect(url: &str) -> Result<Client, CliError> {
    let mut cfg: postgres::Config = url
        .parse()
        .map_err(|e| CliError(format!("bad --database: {e}")))?;
    cfg.connect_timeout(std::time::Duration::from_secs(10));
    cfg.application_name("distlog");
    cfg.connect(NoTls).map_err(|e| {
        CliError(format!(
            "cannot connect to database {}: {}",
            pg::describe(url),
            db_err(&e)
        ))
    })
}

fn db_err(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_owned(),
        None => e.to_string(),
    }
}

/// Every record matching `where`, in time order, rebuilt and checked by
/// `filter`, to `f` until it returns false. Returns the rows that could not
/// be read back (skipped).
fn each(
    client: &mut Client,
    where_: &str,
    params: &[Param],
    filter: &Filter,
    mut f: impl FnMut(u8, &ArchivedSender, RecordRef<'_>) -> bool,
) -> Result<u64, CliError> {
    let cols = pg::select_list();
    let sql = format!(
        "SELECT {cols}, 'L' AS distlog_kind FROM {} WHERE {where_} \
         UNION ALL SELECT {cols}, 'P' FROM {} WHERE {where_} \
         ORDER BY time_ns, host, pid, instance, seq",
        pg::LOG_TABLE,
        pg::PERF_TABLE
    );
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
    let mut rows = client
        .query_raw(&sql, params)
        .map_err(|e| CliError(format!("query failed: {}", db_err(&e))))?;
    use postgres::fallible_iterator::FallibleIterator;
    let always = filter.is_always();
    let mut bad = 0u64;
    while let Some(row) = rows
        .next()
        .map_err(|e| CliError(format!("query failed: {}", db_err(&e))))?
    {
        let kind: &str = row.try_get(row.len() - 1).unwrap_or("L");
        let kind = kind.bytes().next().unwrap_or(b'L');
        let Ok((system, sender, record)) = pg::from_row(&row, kind) else {
            bad += 1;
            continue;
        };
        let body = encode_batch_to_vec(&Batch {
            sender,
            first_seq: record.seq,
            dropped: 0,
            records: vec![record],
        });
        let Ok(b) = OwnedBatch::from_aligned(body) else {
            bad += 1;
            continue;
        };
        let Some(r) = b.get().record(0) else {
            bad += 1;
            continue;
        };
        let s = b.get().sender();
        if !always && !filter.matches(&RecordView::new(system, s, r)) {
            continue;
        }
        if !f(system, s, r) {
            break;
        }
    }
    Ok(bad)
}

/// `distlog query --database URL ...`.
#[allow(clippy::too_many_arguments)]
pub fn query(
    url: &str,
    filter: &Filter,
    source: Option<&str>,
    since: u64,
    until: u64,
    format: Format,
    count_only: bool,
    limit: u64,
) -> Result<(), CliError> {
    let mut client = connect(url)?;
    let mut sql = Sql::default();
    let (where_, exact) = where_clause(&mut sql, source, since, until);
    let mut out = Out::new();
    let colour = out.colour;
    let mut total = 0u64;
    let mut bad = 0u64;
    if count_only && exact && limit == u64::MAX {
        let q = format!(
            "SELECT ((SELECT count(*) FROM {} WHERE {where_}) + (SELECT count(*) FROM {} WHERE {where_}))::bigint",
            pg::LOG_TABLE,
            pg::PERF_TABLE
        );
        let params: Vec<&(dyn ToSql + Sync)> = sql.params.iter().map(|p| &**p as _).collect();
        let row = client
            .query_one(&q, &params)
            .map_err(|e| CliError(format!("query failed: {}", db_err(&e))))?;
        let n: i64 = row
            .try_get(0)
            .map_err(|e| CliError(format!("query failed: {e}")))?;
        total = n.max(0) as u64;
    } else if limit > 0 {
        let mut text = String::new();
        let mut err = None;
        bad = each(
            &mut client,
            &where_,
            &sql.params,
            filter,
            |system, sender, r| {
                total += 1;
                if !count_only {
                    match format {
                        Format::Text => {
                            distlog::render::text_line(system, sender, r, colour, &mut text)
                        }
                        Format::Jsonl => distlog::render::json_record(system, sender, r, &mut text),
                    }
                    text.push('\n');
                    if text.len() > 1 << 16 {
                        if let Err(e) = out.write(&text) {
                            err = Some(e);
                            return false;
                        }
                        text.clear();
                    }
                }
                total < limit
            },
        )?;
        if let Some(e) = err {
            return Err(e);
        }
        out.write(&text)?;
    }
    if count_only {
        out.line(&total.to_string())?;
    }
    out.flush()?;
    if bad > 0 {
        eprintln!("distlog: warning: {bad} rows could not be read back and were skipped");
    }
    Ok(())
}

/// Every record of task `root` and below, to `f`; returns the rows that
/// could not be read back.
pub fn subtree(
    url: &str,
    root: &str,
    filter: &Filter,
    f: impl FnMut(u8, &ArchivedSender, RecordRef<'_>) -> bool,
) -> Result<u64, CliError> {
    let mut client = connect(url)?;
    let mut sql = Sql::default();
    let a = sql.push(Box::new(pg::clean(root).into_owned()));
    let b = sql.push(Box::new(format!("{}/%", pg::like_escape(&pg::clean(root)))));
    let where_ = format!("(task = {a} OR task LIKE {b})");
    each(&mut client, &where_, &sql.params, filter, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(src: &str) -> (String, bool, usize) {
        let mut sql = Sql::default();
        let (w, exact) = where_clause(&mut sql, Some(src), 0, u64::MAX);
        (w, exact, sql.params.len())
    }

    #[test]
    fn filters_translate_to_superset_predicates() {
        assert_eq!(tr("level >= warn"), ("level >= 30".into(), true, 0));
        let (w, exact, n) = tr(r#"task under "abc/1" and host in ["a", "b"]"#);
        assert_eq!(w, "((task = $1 OR task LIKE $2) AND host IN ($3, $4))");
        assert!(exact);
        assert_eq!(n, 4);
        // `not` and field.* are left to the client.
        let (w, exact, _) = tr(r#"level >= error and not (pid == 7)"#);
        assert_eq!(w, "(level >= 40)");
        assert!(!exact);
        let (w, exact, n) = tr(r#"message contains "x" or field.user_id == 42"#);
        assert_eq!((w.as_str(), exact, n), ("TRUE", false, 0));
        let (w, _, n) = tr(r#"not (host == "a") and host == "b""#);
        assert_eq!((w.as_str(), n), ("(host = $1)", 1));
        let (w, _, _) = tr(r#"time >= "2024-05-01T00:00:00Z" and kind == log"#);
        assert!(
            w.starts_with("((time >= $1 AND time_ns >= 1714521600000000000)"),
            "{w}"
        );
        assert_eq!(tr("true"), ("TRUE".into(), true, 0));
        assert_eq!(tr("false or level == 5").0, "(FALSE OR level = 5)");
        assert_eq!(tr("not level == 5 and level < 3").0, "(level < 3)");
        // Odd input never panics.
        for src in ["(", "\"", "level >=", "x in [", "\"\\u{zz}\"", "((((", "-"] {
            let _ = tr(src);
        }
    }
}
