//! `postgres`: records into PostgreSQL by binary COPY (schema in
//! [`crate::pg`] and `docs/POSTGRES.md`).
//!
//! Every transaction also records a token under this processor's writer
//! id ([`pg::COMMITS_TABLE`]). When the connection fails while a
//! transaction may have committed (a database restart during the commit),
//! the processor asks, once reconnected, whether its last token is there:
//! if so those deliveries are in and leave the buffer, if not they are
//! written again. Records are neither lost nor repeated across such a
//! failure.
//!
//! Deliveries are kept (shared, not copied) in a bounded buffer: at most
//! `buffer` records and `buffer_bytes` of batches. A write copies
//! everything buffered in one transaction (a COPY per table), once `batch`
//! records are waiting or the oldest has waited `flush_interval`. When
//! the database is down the buffer fills while the processor reconnects
//! every `retry`; a delivery that does not fit is dropped and counted
//! (`process` returns an error for it, so the broker counts it). When the
//! database is slow, writes take longer, the processor's queue fills, and
//! its overflow policy decides. A batch the database rejects as bad data
//! (SQLSTATE classes 22, 23, 54) is split, and only the deliveries it
//! rejects again are dropped and counted: bad input never blocks the
//! buffer. At shutdown it keeps trying for `shutdown_timeout`, then counts
//! what is left as dropped.
//!
//! Each record is stored once (schema version 3): rows are copied into a
//! temporary staging table and inserted from there with `ON CONFLICT DO
//! NOTHING` on the record's identity ([`pg::identity_indexes`]), so a
//! record that comes again (redelivered by a JetStream stream to this or
//! another broker, re-sent by a client) is skipped and counted in
//! `Stats::repeated`. A delivery that carries an acknowledgement token
//! (from a JetStream input) keeps it until its records are committed; one
//! given up because the buffer is full, or left at shutdown, is refused
//! ([`crate::acks::AckToken::refuse`]) so the stream redelivers it.
//!
//! `Stats::written` counts records taken into the buffer; those later
//! dropped are added to `Stats::dropped` as well.
//!
//! ```yaml
//! db:
//!   type: postgres
//!   url: "host=127.0.0.1 port=5432 user=distlog dbname=logs"
//!   batch: 5000            # records per COPY
//!   buffer: 200000         # records kept while the database is away
//! ```

use super::delivery::Delivery;
use super::seam::{Context, Invalid, Processor, QueueConfig, Settings};
use crate::config::units;
use crate::metrics::ProcessorStats as Stats;
use crate::pg;
use crate::warn::RateLimited;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::{Client, NoTls};
use serde::Deserialize;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `postgres` processor's settings (see `docs/POSTGRES.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style connection string (`host=... user=... dbname=...`) or
    /// URL (`postgresql://user@host:port/db`). No TLS.
    pub url: String,
    /// Records per COPY (default 5000): a batch is written once this many
    /// are buffered, or `flush_interval` after the oldest arrived.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Most records buffered while the database is down or slow (default
    /// 200000, at least `batch`). Past it, deliveries are dropped and
    /// counted.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Most bytes of batches buffered (default 256 MiB).
    #[serde(default = "default_buffer_bytes", with = "units::size")]
    pub buffer_bytes: u64,
    /// Longest a record waits in the buffer before a write is tried
    /// (default 200ms; checked at least once a second).
    #[serde(default = "default_flush_interval", with = "units::duration")]
    pub flush_interval: Duration,
    /// Wait between reconnection attempts (default 1s).
    #[serde(default = "default_retry", with = "units::duration")]
    pub retry: Duration,
    /// Connect timeout (default 5s).
    #[serde(default = "default_connect_timeout", with = "units::duration")]
    pub connect_timeout: Duration,
    /// At shutdown, how long to keep trying to write what is buffered
    /// before counting it as dropped (default 10s).
    #[serde(default = "default_shutdown_timeout", with = "units::duration")]
    pub shutdown_timeout: Duration,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

fn default_batch() -> usize {
    5000
}
fn default_buffer() -> usize {
    200_000
}
fn default_buffer_bytes() -> u64 {
    256 << 20
}
fn default_flush_interval() -> Duration {
    Duration::from_millis(200)
}
fn default_retry() -> Duration {
    Duration::from_secs(1)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Settings for PostgresConfig {
    fn check(&self) -> Result<(), Invalid> {
        if self.batch == 0 || self.buffer < self.batch {
            let key = if self.batch == 0 { "batch" } else { "buffer" };
            return Err(Invalid::new(
                key,
                "batch above 0 and buffer at least batch",
            ));
        }
        self.url
            .parse::<postgres::Config>()
            .map(drop)
            .map_err(|e| Invalid::new("url", format!("bad url: {e}")))
    }

    fn build(&self, ctx: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Postgres::start(self, ctx)))
    }
}

static WARN: RateLimited = RateLimited::new(Duration::from_secs(10));

/// The processor.
pub struct Postgres {
    cfg: PostgresConfig,
    name: String,
    pg: postgres::Config,
    client: Option<Client>,
    next_attempt: Instant,
    buffer: VecDeque<Delivery>,
    records: usize,
    bytes: u64,
    oldest: Option<Instant>,
    stats: Arc<Stats>,
    scratch: String,
    /// This processor's id in [`pg::COMMITS_TABLE`].
    writer: String,
    /// Token of the next transaction.
    next_token: i64,
    /// A transaction whose outcome is unknown (the connection failed
    /// before its commit was confirmed): its token and how many deliveries
    /// at the front of the buffer it wrote.
    in_doubt: Option<(i64, usize)>,
}

/// How a write failed.
enum Failure {
    /// The connection is gone or unusable: keep everything, reconnect.
    Connection(String),
    /// The database refused the data itself.
    Data(String),
}

impl Postgres {
    /// Takes the settings; connects (and creates or migrates the schema)
    /// on the first write, and again after every failure, so a broker
    /// starts while its database is down.
    pub fn start(c: &PostgresConfig, ctx: &Context<'_>) -> Postgres {
        let mut pg: postgres::Config = c.url.parse().unwrap_or_default();
        pg.connect_timeout(c.connect_timeout);
        pg.keepalives(true);
        if pg.get_application_name().is_none() {
            pg.application_name("distlogd");
        }
        let mut p = Postgres {
            cfg: c.clone(),
            name: ctx.name.to_owned(),
            pg,
            client: None,
            next_attempt: Instant::now(),
            buffer: VecDeque::new(),
            records: 0,
            bytes: 0,
            oldest: None,
            stats: ctx.stats.clone(),
            scratch: String::new(),
            writer: writer_id(ctx.name),
            next_token: 1,
            in_doubt: None,
        };
        // Connect now when the database is there, so that schema errors
        // show at start; a database that is away is retried later.
        let _ = p.connected();
        p
    }

    fn warn(&self, what: &str) {
        WARN.warn(|| {
            format!(
                "processor {:?} (postgres {}): {what}; {} records buffered",
                self.name,
                pg::describe(&self.cfg.url),
                self.records
            )
        });
    }

    /// The connection, (re)connecting when the retry time has come.
    fn connected(&mut self) -> Option<&mut Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            if Instant::now() < self.next_attempt {
                return None;
            }
            self.next_attempt = Instant::now() + self.cfg.retry;
            match self.pg.connect(NoTls) {
                Ok(mut c) => match pg::migrate(&mut c) {
                    Ok(v) if v == pg::VERSION => match pg::create_staging(&mut c) {
                        Ok(()) => self.client = Some(c),
                        Err(e) => {
                            self.warn(&format!("cannot create the staging tables: {}", detail(&e)));
                            return None;
                        }
                    },
                    Ok(v) => {
                        self.warn(&format!(
                            "the database's schema is version {v}, newer than this distlogd's {}; not writing",
                            pg::VERSION
                        ));
                        return None;
                    }
                    Err(e) => {
                        self.warn(&format!("cannot create the schema: {}", detail(&e)));
                        return None;
                    }
                },
                Err(e) => {
                    self.warn(&format!("cannot connect: {}", detail(&e)));
                    return None;
                }
            }
        }
        self.client.as_mut()
    }

    /// Copies `deliveries` in one transaction, which records `token` as
    /// `writer`'s last commit: into the session's staging tables, then
    /// into the tables skipping the records they already have. Returns
    /// how many records were already there (skipped).
    fn copy(
        client: &mut Client,
        deliveries: &[&Delivery],
        scratch: &mut String,
        (writer, token): (&str, i64),
    ) -> Result<u64, postgres::Error> {
        let types = pg::column_types();
        let cols = pg::column_list();
        let mut tx = client.transaction()?;
        let mut repeated = 0;
        for (t, table) in [pg::LOG_TABLE, pg::PERF_TABLE].iter().enumerate() {
            let any = deliveries
                .iter()
                .any(|d| d.records().any(|r| pg::table_of(r) == t));
            if !any {
                continue;
            }
            let stage = pg::staging(table);
            let sink = tx.copy_in(&format!("COPY {stage} ({cols}) FROM STDIN BINARY"))?;
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for d in deliveries {
                let b = d.batch.get();
                for r in d.records().filter(|r| pg::table_of(*r) == t) {
                    pg::write_row(&mut w, d.topic.system, b.sender(), r, scratch)?;
                }
            }
            let staged = w.finish()?;
            repeated += staged.saturating_sub(pg::insert_new(&mut tx, table)?);
        }
        pg::record_commit(&mut tx, writer, token)?;
        tx.commit()?;
        Ok(repeated)
    }

    /// The token for the next transaction.
    fn token(&mut self) -> i64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    /// After reconnecting: settles a transaction left in doubt. Its
    /// deliveries leave the buffer if it committed. Returns false when the
    /// database could not be asked (connection lost again).
    fn settle_in_doubt(&mut self) -> bool {
        let Some((token, n)) = self.in_doubt else {
            return true;
        };
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        match pg::committed(client, &self.writer, token) {
            Ok(true) => {
                self.warn(&format!(
                    "the write that failed had committed ({n} deliveries); not writing them again"
                ));
                for _ in 0..n {
                    self.pop();
                }
                if self.buffer.is_empty() {
                    self.oldest = None;
                }
            }
            Ok(false) => {}
            Err(e) => {
                self.client = None;
                self.warn(&format!(
                    "cannot check the last commit, will retry: {}",
                    detail(&e)
                ));
                return false;
            }
        }
        self.in_doubt = None;
        true
    }

    /// Tries to write everything buffered. Returns whether the buffer is
    /// empty afterwards.
    fn write(&mut self) -> bool {
        if self.buffer.is_empty() {
            return true;
        }
        if self.connected().is_none() || !self.settle_in_doubt() {
            return false;
        }
        if self.buffer.is_empty() {
            return true;
        }
        let token = self.token();
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        let all: Vec<&Delivery> = self.buffer.iter().collect();
        let n = all.len();
        let result = Self::copy(client, &all, &mut self.scratch, (&self.writer, token));
        match result.map_err(classify) {
            Ok(repeated) => {
                self.stats.repeated.fetch_add(repeated, Ordering::Relaxed);
                self.clear();
                true
            }
            Err(Failure::Connection(e)) => {
                self.client = None;
                self.in_doubt = Some((token, n));
                self.warn(&format!("write failed, will retry: {e}"));
                false
            }
            Err(Failure::Data(e)) => {
                self.warn(&format!(
                    "the database rejected a batch ({e}); retrying delivery by delivery"
                ));
                self.write_one_by_one()
            }
        }
    }

    /// After a data error: each delivery in its own transaction; the ones
    /// rejected again are dropped and counted.
    fn write_one_by_one(&mut self) -> bool {
        while !self.buffer.is_empty() {
            let token = self.token();
            let Some(d) = self.buffer.front() else {
                break;
            };
            let Some(client) = self.client.as_mut().filter(|c| !c.is_closed()) else {
                self.client = None;
                return false;
            };
            let result = Self::copy(client, &[d], &mut self.scratch, (&self.writer, token));
            match result.map_err(classify) {
                Ok(repeated) => {
                    self.stats.repeated.fetch_add(repeated, Ordering::Relaxed);
                }
                Err(Failure::Connection(_)) => {
                    self.client = None;
                    self.in_doubt = Some((token, 1));
                    return false;
                }
                Err(Failure::Data(e)) => {
                    let n = d.len() as u64;
                    self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.warn(&format!("dropped {n} records the database rejected: {e}"));
                }
            }
            self.pop();
        }
        self.oldest = None;
        true
    }

    fn pop(&mut self) {
        if let Some(d) = self.buffer.pop_front() {
            self.records -= d.len();
            self.bytes -= d.batch.body().len() as u64;
        }
    }

    fn clear(&mut self) {
        self.buffer.clear();
        self.records = 0;
        self.bytes = 0;
        self.oldest = None;
    }

    fn fits(&self, d: &Delivery) -> bool {
        self.buffer.is_empty()
            || (self.records + d.len() <= self.cfg.buffer
                && self.bytes + d.batch.body().len() as u64 <= self.cfg.buffer_bytes)
    }

    fn due(&self) -> bool {
        self.records >= self.cfg.batch
            || self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.cfg.flush_interval)
    }
}

/// An id no other processor writing to the database shares: process,
/// processor name, start time and 64 random bits (from the standard
/// library's per-process hash keys).
fn writer_id(name: &str) -> String {
    use std::hash::BuildHasher;
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let random = std::collections::hash_map::RandomState::new().hash_one(since_epoch);
    format!("{}/{name}/{since_epoch}/{random:016x}", std::process::id())
}

/// The error with the server's detail when there is one.
fn detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Bad data (retrying the same rows cannot help) or a connection problem.
fn classify(e: postgres::Error) -> Failure {
    match e.code().map(|c| c.code()) {
        Some(code)
            if code.starts_with("22") || code.starts_with("23") || code.starts_with("54") =>
        {
            Failure::Data(detail(&e))
        }
        _ => Failure::Connection(detail(&e)),
    }
}

impl Processor for Postgres {
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        if d.is_empty() {
            return Ok(());
        }
        if !self.fits(d) {
            // Full: one write attempt (the database may be back).
            self.write();
            if !self.fits(d) {
                // From the stream: let it be redelivered rather than lost.
                if let Some(a) = &d.ack {
                    a.refuse();
                }
                return Err(io::Error::other(format!(
                    "buffer full ({} records) while the database is unavailable",
                    self.records
                )));
            }
        }
        self.records += d.len();
        self.bytes += d.batch.body().len() as u64;
        self.buffer.push_back(d.clone());
        self.oldest.get_or_insert_with(Instant::now);
        if self.due() {
            self.write();
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.due() || self.client.is_none() {
            self.write();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.cfg.shutdown_timeout;
        loop {
            if self.write() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(
                self.cfg
                    .retry
                    .min(Duration::from_millis(200))
                    .max(Duration::from_millis(10)),
            );
            self.next_attempt = self.next_attempt.min(Instant::now());
        }
        let lost = self.records as u64;
        self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
        for a in self.buffer.iter().filter_map(|d| d.ack.as_ref()) {
            a.refuse();
        }
        self.clear();
        Err(io::Error::other(format!(
            "the database did not take the last {lost} records before shutdown; counted as dropped"
        )))
    }
}
