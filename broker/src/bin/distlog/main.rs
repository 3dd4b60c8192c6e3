//! `distlog`: make sense of what distlogd received.
//!
//! ```text
//! distlog tail    [--broker ENDPOINT] [--filter EXPR] [--format text|jsonl] [--topic PREFIX]
//! distlog query   --data-dir DIR|--database URL [--filter EXPR] [--since T] [--until T] [--format text|jsonl] [--count] [--limit N]
//! distlog tree    TASK_ID --data-dir DIR|--database URL [--format text|jsonl]
//! distlog stats   --data-dir DIR
//! distlog loadgen --endpoint ENDPOINT --records N [--threads T] [--fields K]
//! distlog ui      --data-dir DIR|--database URL [--listen ADDR:PORT] [--broker ENDPOINT] [--metrics ADDR:PORT]
//! ```
//!
//! Errors are one line on stderr (`distlog: error: ...`) and exit status 1;
//! a closed stdout (`distlog query | head`) ends the command quietly.
//!
//! `--data-dir` must be a directory you trust (written by distlogd only):
//! closed segments are memory-mapped, and a file truncated under the
//! reader by anyone else crashes it (SIGBUS). The newest segment, which the
//! broker may truncate itself, is read, not mapped.
// Unsafe only to map closed segments (scan.rs) and read the cycle counter
// (loadgen.rs), each block with its invariant in a SAFETY comment.
#![deny(clippy::undocumented_unsafe_blocks)]

mod call_times;
mod keygen;
mod loadgen;
mod out;
mod pg;
mod print;
mod query;
mod scan;
mod sift;
mod source;
mod sql;
mod stats;
mod tail;
mod time;
mod tree;
mod ui;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Make sense of distributed logs: follow them live, query the store,
/// rebuild the tree of one request across every service it touched.
#[derive(Parser, Debug)]
#[command(
    name = "distlog",
    version,
    about = "Make sense of distributed logs: follow them live (tail), query the store (query, stats), rebuild one request's task tree across every service (tree), and generate load (loadgen)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format of records.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One human-readable line per record (coloured on a terminal).
    Text,
    /// One JSON object per line, with the Python clients' field names
    /// (`name`, `levelname`, `message`, `created`, `hostname`, `process`,
    /// `thread`, `context.key`, ...).
    Jsonl,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Follow live records from a broker's publish socket, like `tail -f`.
    ///
    /// Connects a SUB socket to the broker's publish endpoint and prints
    /// every record that passes the filter, as it arrives, indented by task
    /// depth so that trees show while they happen. Lines are coloured when
    /// stdout is a terminal. Stops on Ctrl-C or when stdout closes.
    ///
    /// Example:
    ///   distlog tail --filter 'level >= warn or task under "1b4e28ba-2fa1-11d2-883f-0016d3cca427"'
    #[command(verbatim_doc_comment)]
    Tail(tail::Args),
    /// Make a CURVE key pair (for a broker, a client or a subscriber).
    ///
    /// Prints `public = ...` and `secret = ...` (Z85), or writes them to a
    /// new file with mode 0600. Give the public key to the other side: a
    /// broker lists allowed client keys under `curve.allow`; clients need
    /// the broker's public key.
    ///
    /// Example:
    ///   distlog keygen --out /etc/distlog/broker.key
    #[command(verbatim_doc_comment)]
    Keygen(keygen::Args),
    /// Scan the store with a filter and a time range, in stored order.
    ///
    /// Reads the segments of a data directory zero-copy (every batch is
    /// validated), skipping segments whose time span lies outside
    /// --since/--until without reading them, on all cores.
    ///
    /// Examples:
    ///   distlog query --data-dir /var/lib/distlog --since 10m --filter 'level >= error'
    ///   distlog query --data-dir DIR --count --filter 'host == "web-1"'
    ///   distlog query --data-dir DIR --format jsonl --since 2024-05-01T00:00:00Z --until 2024-05-02
    #[command(verbatim_doc_comment)]
    Query(query::Args),
    /// Rebuild the whole task tree under a task id, from every process.
    ///
    /// TASK_ID is a root task's UUID, any sub-path (`<uuid>/2/1`), or a key
    /// (`3@<uuid>/2`). Every task shows its message, status (succeeded,
    /// FAILED, running), duration, host/pid and program, its records in
    /// order and its subtasks in order. Missing records and missing tasks
    /// (records that never arrived) are shown as gaps.
    ///
    /// Example:
    ///   distlog tree 1b4e28ba-2fa1-11d2-883f-0016d3cca427 --data-dir /var/lib/distlog
    #[command(verbatim_doc_comment)]
    Tree(tree::Args),
    /// Summarise a store: records, bytes, time range, counts per level and
    /// per host.
    Stats(stats::Args),
    /// Generate load through the real client pipeline, to size a node.
    ///
    /// Logs N records (split over T threads) with the native macro and K
    /// key/value fields each, times every log call with an HdrHistogram,
    /// flushes, and prints one JSON line last: sent, dropped, delivered,
    /// secs, records_per_sec, p50_ns, p99_ns, p999_ns, max_ns.
    /// Flat out by default (the calls then measure back-pressure);
    /// --rate R paces the threads to R records/s in all, to read a call's
    /// latency under a sustained load the pipeline keeps up with.
    ///
    /// Examples:
    ///   distlog loadgen --endpoint tcp://127.0.0.1:5010 --records 1000000 --threads 2 --fields 4
    ///   distlog loadgen --records 5000000 --threads 2 --fields 3 --rate 500000
    #[command(verbatim_doc_comment)]
    Loadgen(loadgen::Args),
    /// Serve a web view: search, request trees as waterfalls, live tail
    /// and the broker's metrics at a glance.
    ///
    /// Search takes the filter language and a time range and streams its
    /// results; a record's task opens its tree (one row per task on a
    /// shared time axis, coloured by status, gaps shown); live tail reads
    /// the broker's publish socket (--broker) and can pause; the glance
    /// reads the broker's metrics endpoint (--metrics). Records are shown
    /// as text only. Serves on loopback unless told otherwise.
    ///
    /// Example:
    ///   distlog ui --data-dir /var/lib/distlog --broker tcp://127.0.0.1:5011 --metrics 127.0.0.1:9110
    #[command(verbatim_doc_comment)]
    Ui(ui::Args),
}

/// What a subcommand can fail with: one line for stderr.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// Compiles `--filter` (or matches everything), with the error's position
/// on one line.
pub fn compile_filter(src: Option<&str>) -> Result<distlog_filter::Filter, CliError> {
    match src {
        None => Ok(distlog_filter::Filter::always()),
        Some(s) => distlog_filter::Filter::parse(s).map_err(|e| CliError(filter_error(&e))),
    }
}

/// A filter's parse error on one line, with its position.
pub fn filter_error(e: &distlog_filter::FilterError) -> String {
    format!(
        "bad filter at line {}, column {}: {}",
        e.line(),
        e.column(),
        e.message()
    )
}

/// Checks that a data directory exists and is a directory.
pub fn check_dir(dir: &std::path::Path) -> Result<(), CliError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CliError(format!("{} is not a directory", dir.display()))),
        Err(e) => Err(CliError(format!(
            "cannot read data dir {}: {e}",
            dir.display()
        ))),
    }
}

/// The `--data-dir` argument shared by store commands.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// The broker's data directory (where its segments are).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tail(a) => tail::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Query(a) => query::run(a),
        Command::Tree(a) => tree::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Loadgen(a) => loadgen::run(a),
        Command::Ui(a) => ui::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.0 == out::BROKEN_PIPE => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distlog: error: {}", e.0);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// Clap's own checks of the command line (unique argument and group
    /// names, ...), which otherwise only fail when a command runs.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
