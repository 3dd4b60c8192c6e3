//! The PostgreSQL schema shared by the `postgres` processor (which writes
//! it) and `distlog query/tree --database` (which reads it): migrations,
//! the column list, a record as a COPY row, and a row back as a record.
//! `docs/POSTGRES.md` describes it for people.

use distlog_core::record::{Field, Record, Value, ValueRef};
use distlog_core::view::RecordRef;
use distlog_core::wire::{ArchivedSender, Sender};
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use std::borrow::Cow;
use std::fmt::Write;
use std::time::{Duration, SystemTime};

/// The schema version this build writes and reads.
pub const VERSION: i32 = 3;

/// The version table.
pub const VERSION_TABLE: &str = "distlog_schema";

/// The table of log records (kind `L`).
pub const LOG_TABLE: &str = "distlog_log";
/// The table of performance records (kind `P`).
pub const PERF_TABLE: &str = "distlog_perf";

/// Each writer's last committed transaction (schema version 2): the
/// `postgres` processor writes a token in every transaction, so that after
/// losing the connection while committing it can tell whether the commit
/// happened, and neither lose nor repeat those records.
pub const COMMITS_TABLE: &str = "distlog_commits";

/// Schema version 3: each record once. A unique index per table on the
/// record's identity makes `INSERT ... ON CONFLICT DO NOTHING` skip a
/// record the table already has (a redelivery from the stream, a re-sent
/// batch, a write retried after a lost commit).
///
/// - distlog clients' records (instance not 0): `(instance, seq, host,
///   pid)`, the sender pipeline's random id and its sequence number, which
///   no two records of one sender share.
/// - Python clients' records (instance 0, no sequence numbers): `(host,
///   pid, thread_id, time_ns, md5(message))`. One Python thread cannot log
///   two records within the resolution of `time.time()` (a log call takes
///   microseconds, the clock's resolution is below one), and the message
///   hash keeps two different messages apart even on a coarse clock; two
///   identical messages from one thread in the same clock tick are taken
///   for one.
pub fn identity_indexes(t: &str) -> String {
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {t}_identity_idx ON {t} (instance, seq, host, pid) WHERE instance <> 0;\n\
         CREATE UNIQUE INDEX IF NOT EXISTS {t}_python_identity_idx ON {t} (host, pid, thread_id, time_ns, md5(message)) WHERE instance = 0;\n"
    )
}

/// Migration 2 -> 3 for one table: removes the copies an at-least-once
/// path may already have stored (keeping the first row of each identity),
/// then creates [`identity_indexes`].
fn dedupe_v3(t: &str) -> String {
    format!(
        "DELETE FROM {t} a USING {t} b \
           WHERE a.instance <> 0 AND a.instance = b.instance AND a.seq = b.seq \
             AND a.host = b.host AND a.pid = b.pid AND a.ctid > b.ctid;\n\
         DELETE FROM {t} a USING {t} b \
           WHERE a.instance = 0 AND b.instance = 0 AND a.host = b.host AND a.pid = b.pid \
             AND a.thread_id = b.thread_id AND a.time_ns = b.time_ns \
             AND md5(a.message) = md5(b.message) AND a.ctid > b.ctid;\n{}",
        identity_indexes(t)
    )
}

/// The session's staging table for `table`: rows are copied there, then
/// inserted into `table` skipping the records it already has (binary COPY
/// cannot skip conflicts itself). Temporary, emptied at every commit.
pub fn staging(table: &str) -> String {
    format!("distlog_stage_{table}")
}

/// Creates the staging tables for this session (after [`migrate`]).
pub fn create_staging(client: &mut postgres::Client) -> Result<(), postgres::Error> {
    for t in [LOG_TABLE, PERF_TABLE] {
        client.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {t}) ON COMMIT DELETE ROWS",
            staging(t)
        ))?;
    }
    Ok(())
}

/// In a writer's transaction, after the COPY into [`staging`]: moves the
/// rows into `table`, skipping records already there. Returns how many
/// were new.
pub fn insert_new(tx: &mut postgres::Transaction<'_>, table: &str) -> Result<u64, postgres::Error> {
    let cols = column_list();
    tx.execute(
        &format!(
            "INSERT INTO {table} ({cols}) SELECT {cols} FROM {} ON CONFLICT DO NOTHING",
            staging(table)
        ),
        &[],
    )
}

/// Advisory lock key serialising migrations between brokers.
const MIGRATION_LOCK: i64 = 0x6469_7374_6c6f_6701;

/// The columns, in COPY order, with their types.
pub const COLUMNS: [(&str, &str); 22] = [
    ("system", "text"),
    ("time", "timestamptz"),
    ("time_ns", "bigint"),
    ("level", "smallint"),
    ("target", "text"),
    ("message", "text"),
    ("fields", "jsonb"),
    ("task", "text"),
    ("task_n", "bigint"),
    ("error", "text"),
    ("host", "text"),
    ("pid", "bigint"),
    ("program", "text"),
    ("instance", "bigint"),
    ("start_ns", "bigint"),
    ("seq", "bigint"),
    ("thread_id", "bigint"),
    ("thread_name", "text"),
    ("module", "text"),
    ("file", "text"),
    ("line", "bigint"),
    ("func", "text"),
];

/// Postgres types of [`COLUMNS`], for the binary COPY writer.
pub fn column_types() -> Vec<Type> {
    COLUMNS
        .iter()
        .map(|(_, t)| match *t {
            "text" => Type::TEXT,
            "timestamptz" => Type::TIMESTAMPTZ,
            "bigint" => Type::INT8,
            "smallint" => Type::INT2,
            "jsonb" => Type::JSONB,
            other => unreachable!("type {other}"),
        })
        .collect()
}

/// `col, col, ...` in COPY order.
pub fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The DDL of schema version 1, for one table.
fn table_v1(t: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(c, ty)| match *c {
            "fields" => format!("    {c} {ty}"),
            _ => format!("    {c} {ty} NOT NULL"),
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {t} (\n{}\n);\n\
         CREATE INDEX IF NOT EXISTS {t}_task_idx ON {t} (task text_pattern_ops) WHERE task <> '';\n\
         CREATE INDEX IF NOT EXISTS {t}_errors_idx ON {t} (host, time) WHERE level >= 40;\n\
         CREATE INDEX IF NOT EXISTS {t}_time_idx ON {t} USING brin (time);\n",
        cols.join(",\n")
    )
}

/// Migrations: index `i` takes the schema from version `i` to `i + 1`.
pub fn migrations() -> Vec<String> {
    vec![
        format!("{}{}", table_v1(LOG_TABLE), table_v1(PERF_TABLE)),
        format!(
            "CREATE TABLE IF NOT EXISTS {COMMITS_TABLE} (\
                 writer text PRIMARY KEY, \
                 token bigint NOT NULL, \
                 at timestamptz NOT NULL DEFAULT now())"
        ),
        format!("{}{}", dedupe_v3(LOG_TABLE), dedupe_v3(PERF_TABLE)),
    ]
}

/// In a writer's transaction: records `token` as its last commit.
pub fn record_commit(
    tx: &mut postgres::Transaction<'_>,
    writer: &str,
    token: i64,
) -> Result<(), postgres::Error> {
    tx.execute(
        &format!(
            "INSERT INTO {COMMITS_TABLE} (writer, token) VALUES ($1, $2) \
             ON CONFLICT (writer) DO UPDATE SET token = EXCLUDED.token, at = now()"
        ),
        &[&writer, &token],
    )?;
    Ok(())
}

/// Whether `writer`'s last committed transaction is the one that wrote
/// `token`.
pub fn committed(
    client: &mut postgres::Client,
    writer: &str,
    token: i64,
) -> Result<bool, postgres::Error> {
    let row = client.query_opt(
        &format!("SELECT token FROM {COMMITS_TABLE} WHERE writer = $1"),
        &[&writer],
    )?;
    Ok(row.is_some_and(|r| r.get::<_, i64>(0) == token))
}

/// Creates or migrates the schema (in one transaction, under an advisory
/// lock so that brokers starting together do not race). Refuses a
/// database whose schema is newer than this build.
pub fn migrate(client: &mut postgres::Client) -> Result<i32, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (\
             version integer PRIMARY KEY, \
             applied timestamptz NOT NULL DEFAULT now())"
    ))?;
    let row = tx.query_one(
        &format!("SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}"),
        &[],
    )?;
    let current: i32 = row.get(0);
    if current > VERSION {
        // Leave the newer schema alone: a COPY with our columns could fail
        // or misplace values.
        tx.rollback()?;
        return Ok(current);
    }
    for (i, sql) in migrations().iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            &format!("INSERT INTO {VERSION_TABLE} (version) VALUES ($1)"),
            &[&(i as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(VERSION)
}

/// A `jsonb` parameter from JSON text (binary format: version 1, text).
#[derive(Debug)]
pub struct Jsonb<'a>(pub &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// PostgreSQL text cannot hold NUL: it becomes U+FFFD.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The table a record goes to.
pub fn table_of(r: RecordRef<'_>) -> usize {
    usize::from(r.kind() == distlog_core::record::kind::PERF)
}

/// Appends the record's fields as a JSON object (first value of each name
/// wins, as in the filter language); returns false when it has none.
pub fn fields_json(r: RecordRef<'_>, out: &mut String) -> bool {
    if r.fields().next().is_none() {
        return false;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in distlog_filter::render::unique_fields(r) {
        if !first {
            out.push(',');
        }
        first = false;
        distlog_filter::render::json_str(&clean(k), out);
        out.push(':');
        match v {
            ValueRef::Str(s) => distlog_filter::render::json_str(&clean(s), out),
            v => distlog_filter::render::json_value(v, out),
        }
    }
    out.push('}');
    true
}

/// The record's message, rendered when deferred.
pub fn message(r: RecordRef<'_>) -> String {
    clean(&r.rendered_message()).into_owned()
}

/// Nanoseconds since the epoch as a timestamp (microseconds are kept by
/// PostgreSQL, truncated).
pub fn timestamp(ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Writes one record as a COPY row.
pub fn write_row(
    w: &mut postgres::binary_copy::BinaryCopyInWriter<'_>,
    system: u8,
    s: &ArchivedSender,
    r: RecordRef<'_>,
    scratch: &mut String,
) -> Result<(), postgres::Error> {
    scratch.clear();
    let has_fields = fields_json(r, scratch);
    let fields = has_fields.then_some(Jsonb(scratch.as_str()));
    let sys = char::from(system).to_string();
    let time_ns = r.time_ns();
    let message = message(r);
    let (target, task, error) = (clean(r.target()), clean(r.task()), clean(r.error()));
    let (host, program) = (clean(s.host.as_str()), clean(s.program.as_str()));
    let (thread_name, module, file, func) = (
        clean(r.thread_name()),
        clean(r.module()),
        clean(r.file()),
        clean(r.func()),
    );
    w.write(&[
        &sys,
        &timestamp(time_ns),
        &(time_ns as i64),
        &i16::from(r.level()),
        &&*target,
        &message,
        &fields,
        &&*task,
        &i64::from(r.task_n()),
        &&*error,
        &&*host,
        &i64::from(s.pid.to_native()),
        &&*program,
        &(s.instance.to_native() as i64),
        &(s.start_ns.to_native() as i64),
        &(r.seq() as i64),
        &(r.thread_id() as i64),
        &&*thread_name,
        &&*module,
        &&*file,
        &i64::from(r.line()),
        &&*func,
    ])
}

/// `SELECT` list reading a row back (same order as [`COLUMNS`] minus
/// `time`, which `time_ns` carries exactly).
pub fn select_list() -> String {
    COLUMNS
        .iter()
        .filter(|(c, _)| *c != "time")
        .map(|(c, _)| if *c == "fields" { "fields::text" } else { c })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row of [`select_list`] back as a system byte, sender and record
/// (`kind` from the table it came from). Rows are untrusted: a value of an
/// unexpected type is an error, never a panic.
pub fn from_row(row: &postgres::Row, kind: u8) -> Result<(u8, Sender, Record), String> {
    fn get<'a, T: postgres::types::FromSql<'a>>(
        row: &'a postgres::Row,
        i: usize,
    ) -> Result<T, String> {
        row.try_get(i).map_err(|e| format!("column {}: {e}", i + 1))
    }
    let system: &str = get(row, 0)?;
    let fields: Option<&str> = get(row, 5)?;
    let fields = match fields {
        Some(f) => parse_fields(f)?,
        None => Vec::new(),
    };
    let u = |v: i64| v as u64;
    let sender = Sender {
        host: get::<&str>(row, 9)?.to_owned(),
        pid: u32::try_from(get::<i64>(row, 10)?).unwrap_or(0),
        program: get::<&str>(row, 11)?.to_owned(),
        instance: u(get(row, 12)?),
        start_ns: u(get(row, 13)?),
    };
    let record = Record {
        time_ns: u(get(row, 1)?),
        level: u8::try_from(get::<i16>(row, 2)?).unwrap_or(0),
        target: get::<&str>(row, 3)?.to_owned(),
        message: get::<&str>(row, 4)?.to_owned(),
        fields,
        task: get::<&str>(row, 6)?.to_owned(),
        task_n: u32::try_from(get::<i64>(row, 7)?).unwrap_or(0),
        error: get::<&str>(row, 8)?.to_owned(),
        seq: u(get(row, 14)?),
        thread_id: u(get(row, 15)?),
        thread_name: get::<&str>(row, 16)?.to_owned(),
        module: get::<&str>(row, 17)?.to_owned(),
        file: get::<&str>(row, 18)?.to_owned(),
        line: u32::try_from(get::<i64>(row, 19)?).unwrap_or(0),
        func: get::<&str>(row, 20)?.to_owned(),
        kind,
        ..Record::default()
    };
    Ok((system.bytes().next().unwrap_or(b'P'), sender, record))
}

/// The `fields` object back as typed fields (integers as `U64` when not
/// negative, else `I64`; other numbers `F64`; arrays and objects, which
/// distlog never writes, as their JSON text).
pub fn parse_fields(json: &str) -> Result<Vec<Field>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("fields: {e}"))?;
    let serde_json::Value::Object(map) = v else {
        return Err("fields: not an object".into());
    };
    Ok(map
        .into_iter()
        .map(|(key, v)| {
            let value = match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => Value::U64(u),
                    (None, Some(i), _) => Value::I64(i),
                    (None, None, Some(f)) => Value::F64(f),
                    _ => Value::Null,
                },
                serde_json::Value::String(s) => Value::Str(s),
                other => Value::Str(other.to_string()),
            };
            Field { key, value }
        })
        .collect())
}

/// Escapes `%`, `_` and `\` for a `LIKE` pattern (default escape `\`).
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A one-line description of a connection string without its password.
pub fn describe(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => {
            let mut s = String::new();
            for h in c.get_hosts() {
                match h {
                    postgres::config::Host::Tcp(h) => s.push_str(h),
                    postgres::config::Host::Unix(p) => s.push_str(&p.to_string_lossy()),
                }
            }
            if let Some(p) = c.get_ports().first() {
                let _ = write!(s, ":{p}");
            }
            if let Some(d) = c.get_dbname() {
                let _ = write!(s, "/{d}");
            }
            s
        }
        Err(_) => "(bad connection string)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog_core::wire::{encode_batch_to_vec, Batch, OwnedBatch};

    #[test]
    fn fields_first_wins_nul_cleaned_and_typed_back() {
        let b = Batch {
            sender: Sender::default(),
            first_seq: 0,
            dropped: 0,
            records: vec![Record {
                fields: vec![
                    Field {
                        key: "a".into(),
                        value: Value::I64(-3),
                    },
                    Field {
                        key: "b\0".into(),
                        value: Value::Str("x\0y".into()),
                    },
                    Field {
                        key: "a".into(),
                        value: Value::U64(9),
                    },
                    Field {
                        key: "f".into(),
                        value: Value::F64(1.5),
                    },
                ],
                ..Record::default()
            }],
        };
        let ob = OwnedBatch::from_body(&encode_batch_to_vec(&b)).unwrap();
        let mut s = String::new();
        assert!(fields_json(ob.get().record(0).unwrap(), &mut s));
        assert!(!s.contains("\\u0000"), "{s}");
        let back = parse_fields(&s).unwrap();
        assert_eq!(back.len(), 3);
        assert!(back
            .iter()
            .any(|f| f.key == "a" && f.value == Value::I64(-3)));
        assert!(back
            .iter()
            .any(|f| f.key == "f" && f.value == Value::F64(1.5)));
        assert!(parse_fields("[1]").is_err());
        assert!(parse_fields("{").is_err());
        assert_eq!(like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}
