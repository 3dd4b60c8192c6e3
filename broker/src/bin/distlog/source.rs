//! Where `query`, `tree` and `stats` read records from: a store directory
//! or a PostgreSQL database, through one interface.
//!
//! A [`Source`] hands its records out in [`Piece`]s (a store segment, or a
//! chunk of database rows): a command's `work` turns each piece into a
//! result on a worker, and its `sink` takes the results in stored order and
//! says whether to go on. Segments are read on all cores (`scan.rs`); rows
//! come in time order from one connection.

use crate::pg::{self, Rows};
use crate::sift::Sift;
use crate::sql::Where;
use crate::CliError;
use distlog_core::view::RecordRef;
use distlog_core::wire::{ArchivedSender, Topic};
use distlog_filter::{Filter, InBatch, RecordView};
use distlogd::store::{Reader, Segment};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// `--data-dir DIR` or `--database URL`.
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
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

/// Where records are read from.
pub enum Source {
    /// A store directory, and how many threads scan it (`None`: all cores).
    Store(PathBuf, Option<usize>),
    /// A PostgreSQL connection string.
    Database(String),
}

/// Which records to read: timed in `[since, until)` and passing `filter`.
pub struct Selection<'a> {
    /// The filter.
    pub filter: &'a Filter,
    /// Earliest record time, ns (0: no bound).
    pub since: u64,
    /// Records before this time, ns (`u64::MAX`: no bound).
    pub until: u64,
}

impl Selection<'_> {
    /// Whether `r`, a record of the batch `filter` scans, is selected.
    #[inline]
    fn wants(
        &self,
        filter: &mut InBatch<'_, '_>,
        system: u8,
        sender: &ArchivedSender,
        r: RecordRef<'_>,
    ) -> bool {
        self.in_time(r)
            && (self.filter.is_always() || filter.matches(&RecordView::new(system, sender, r)))
    }

    /// [`Selection::wants`] for a filter that
    /// [`learns_sites`](InBatch::learns_sites): its own loop
    /// ([`Piece::records`]), so the other filters' loop stays as small.
    #[inline]
    fn wants_learnt(
        &self,
        filter: &mut InBatch<'_, '_>,
        system: u8,
        sender: &ArchivedSender,
        r: RecordRef<'_>,
    ) -> bool {
        self.in_time(r) && filter.matches_record(system, sender, r)
    }

    /// Whether `r`'s time is inside `since..until`.
    #[inline]
    fn in_time(&self, r: RecordRef<'_>) -> bool {
        let t = r.time_ns();
        t >= self.since && (t < self.until || self.until == u64::MAX)
    }
}

/// What reading one piece found besides its records.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Batches read (a row is one); batches the filter rules out on
    /// their sender alone (`sift.rs`) are not read, nor counted.
    pub batches: u64,
    /// Stored batches that failed validation (of those read past their
    /// sender), or rows that could not be read back: skipped.
    pub skipped: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.batches += o.batches;
        self.skipped += o.skipped;
    }
}

/// Part of a source's records, read on a worker.
pub enum Piece<'a> {
    /// One store segment.
    Segment(&'a Reader),
    /// A chunk of database rows.
    Rows(&'a Rows),
}

impl Piece<'_> {
    /// Calls `f` for every record of the piece that `sel` selects, in
    /// order, until `f` returns false.
    pub fn records(
        &self,
        sel: &Selection<'_>,
        mut f: impl FnMut(u8, &ArchivedSender, RecordRef<'_>) -> bool,
    ) -> Tally {
        let mut tally = Tally::default();
        // Deferred messages' per-site work once per batch and call site.
        let mut scan = sel.filter.batch_scan();
        match self {
            Piece::Segment(reader) => {
                // Batches whose sender or topic the filter rules out are
                // skipped unread (`sift.rs`).
                let sift = Sift::new(sel.filter);
                let keep = |topic: Topic, sender: &ArchivedSender| match &sift {
                    Some(s) => s.keeps(topic.system, sender),
                    None => true,
                };
                reader.each_batch_where(keep, |b| {
                    let Ok(b) = b else {
                        tally.skipped += 1;
                        return ControlFlow::Continue(());
                    };
                    tally.batches += 1;
                    let (system, sender) = (b.topic.system, b.batch.sender());
                    let mut filter = scan.batch(b.batch);
                    if filter.learns_sites() {
                        for r in b.batch.records() {
                            if sel.wants_learnt(&mut filter, system, sender, r)
                                && !f(system, sender, r)
                            {
                                return ControlFlow::Break(());
                            }
                        }
                        return ControlFlow::Continue(());
                    }
                    for r in b.batch.records() {
                        if sel.wants(&mut filter, system, sender, r) && !f(system, sender, r) {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                });
            }
            Piece::Rows(rows) => {
                tally.skipped = rows.unreadable;
                for (system, b) in &rows.batches {
                    tally.batches += 1;
                    let (b, system) = (b.get(), *system);
                    let sender = b.sender();
                    let mut filter = scan.batch(b);
                    for r in b.records() {
                        if sel.wants(&mut filter, system, sender, r) && !f(system, sender, r) {
                            return tally;
                        }
                    }
                }
            }
        }
        tally
    }
}

impl Source {
    /// The source the arguments name; `threads` scan a store.
    pub fn new(args: &SourceArgs, threads: Option<usize>) -> Result<Source, CliError> {
        match (&args.database, &args.data_dir) {
            (Some(url), _) => Ok(Source::Database(url.clone())),
            (None, Some(dir)) => Ok(Source::Store(dir.clone(), threads)),
            (None, None) => Err(CliError("give --data-dir or --database".into())),
        }
    }

    /// What to name in messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Store(dir, _) => dir.display().to_string(),
            Source::Database(url) => format!("database {}", distlogd::pg::describe(url)),
        }
    }

    /// Runs `work` on every piece that may hold selected records and hands
    /// the results to `sink` in stored order, until it returns false.
    pub fn scan<T: Send>(
        &self,
        sel: &Selection<'_>,
        work: impl Fn(&Piece<'_>) -> T + Sync,
        sink: impl FnMut(T) -> Result<bool, CliError>,
    ) -> Result<(), CliError> {
        match self {
            Source::Store(dir, threads) => {
                let segments: Vec<Segment> = segments(dir)?
                    .into_iter()
                    .filter(|s| s.may_hold(sel.since, sel.until))
                    .collect();
                let threads = crate::scan::threads(*threads, segments.len());
                crate::scan::scan(&segments, threads, |r| work(&Piece::Segment(r)), sink)
            }
            Source::Database(url) => {
                let w = Where::new(sel.filter, sel.since, sel.until);
                pg::scan(url, &w, |rows| work(&Piece::Rows(rows)), sink)
            }
        }
    }

    /// The number of selected records when the source can count them
    /// without reading them (a database, when the whole selection
    /// translates to SQL exactly).
    pub fn count(&self, sel: &Selection<'_>) -> Result<Option<u64>, CliError> {
        match self {
            Source::Store(..) => Ok(None),
            Source::Database(url) => {
                let w = Where::new(sel.filter, sel.since, sel.until);
                w.exact.then(|| pg::count(url, &w)).transpose()
            }
        }
    }

    /// Warns on stderr about skipped batches or rows, if any.
    pub fn warn_skipped(&self, n: u64) {
        if n == 0 {
            return;
        }
        match self {
            Source::Store(..) => {
                eprintln!("distlog: warning: {n} stored batches failed validation and were skipped")
            }
            Source::Database(_) => {
                eprintln!("distlog: warning: {n} rows could not be read back and were skipped")
            }
        }
    }
}

/// The segments of a data directory, oldest first.
pub fn segments(dir: &std::path::Path) -> Result<Vec<Segment>, CliError> {
    crate::check_dir(dir)?;
    Segment::list(dir).map_err(|e| CliError(format!("cannot list {}: {e}", dir.display())))
}
