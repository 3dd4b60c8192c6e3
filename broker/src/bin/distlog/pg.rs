//! `--database URL`: reading back what the broker's `postgres` processor
//! wrote, for `distlog query` and `distlog tree` (through `source.rs`).
//!
//! The filter and time range become a WHERE clause (`sql.rs`) that
//! selects a superset of the matching records; every row that comes back
//! is rebuilt as a one-record batch, encoded and checked by the real
//! compiled filter, so the answer is exactly the store's. Rows come back in
//! time order.

use crate::sql::Where;
use crate::CliError;
use distlog_core::wire::{encode_batch_to_vec, Batch, OwnedBatch};
use distlogd::pg;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Row};

/// Rows handed to a worker at a time.
const CHUNK: usize = 4096;

/// Rows read back, as one-record batches: a piece of a database source.
#[derive(Default)]
pub struct Rows {
    /// Each row's system byte and batch, in time order.
    pub batches: Vec<(u8, OwnedBatch)>,
    /// Rows that could not be read back (skipped).
    pub unreadable: u64,
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

fn query_err(e: postgres::Error) -> CliError {
    CliError(format!("query failed: {}", db_err(&e)))
}

/// Every row of both tables that `w` selects, in time order, in chunks:
/// `work` turns a chunk into a result, `sink` takes it and says whether to
/// go on.
pub fn scan<T>(
    url: &str,
    w: &Where,
    mut work: impl FnMut(&Rows) -> T,
    mut sink: impl FnMut(T) -> Result<bool, CliError>,
) -> Result<(), CliError> {
    let mut client = connect(url)?;
    let (cols, where_) = (pg::select_list(), &w.sql);
    let sql = format!(
        "SELECT {cols}, 'L' AS distlog_kind FROM {} WHERE {where_} \
         UNION ALL SELECT {cols}, 'P' FROM {} WHERE {where_} \
         ORDER BY time_ns, host, pid, instance, seq",
        pg::LOG_TABLE,
        pg::PERF_TABLE
    );
    let mut rows = client.query_raw(&sql, w.args()).map_err(query_err)?;
    let mut chunk = Rows::default();
    loop {
        let row = rows.next().map_err(query_err)?;
        let end = row.is_none();
        if let Some(row) = row {
            match row_batch(&row) {
                Some(b) => chunk.batches.push(b),
                None => chunk.unreadable += 1,
            }
        }
        let full = chunk.batches.len() as u64 + chunk.unreadable >= CHUNK as u64;
        let any = !chunk.batches.is_empty() || chunk.unreadable > 0;
        if (full || end) && any {
            if !sink(work(&chunk))? {
                return Ok(());
            }
            chunk.batches.clear();
            chunk.unreadable = 0;
        }
        if end {
            return Ok(());
        }
    }
}

/// A row of [`scan`]'s query rebuilt as a one-record batch, with its
/// system byte; `None` when it cannot be read back.
fn row_batch(row: &Row) -> Option<(u8, OwnedBatch)> {
    let kind: &str = row.try_get(row.len() - 1).unwrap_or("L");
    let kind = kind.bytes().next().unwrap_or(b'L');
    let (system, sender, record) = pg::from_row(row, kind).ok()?;
    let body = encode_batch_to_vec(&Batch {
        sender,
        first_seq: record.seq,
        dropped: 0,
        records: vec![record],
    });
    let b = OwnedBatch::from_aligned(body).ok()?;
    Some((system, b))
}

/// How many rows of both tables `w` selects, counted by the database.
pub fn count(url: &str, w: &Where) -> Result<u64, CliError> {
    let mut client = connect(url)?;
    let where_ = &w.sql;
    let q = format!(
        "SELECT ((SELECT count(*) FROM {} WHERE {where_}) + \
         (SELECT count(*) FROM {} WHERE {where_}))::bigint",
        pg::LOG_TABLE,
        pg::PERF_TABLE
    );
    let row = client.query_one(&q, &w.args()).map_err(query_err)?;
    let n: i64 = row.try_get(0).map_err(query_err)?;
    Ok(n.max(0) as u64)
}
