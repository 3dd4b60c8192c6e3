//! `distlog query`: scan the store with a filter and a time range.

use crate::out::Out;
use crate::print::Lines;
use crate::source::{Selection, Source, Tally};
use crate::{compile_filter, CliError, Format};
use distlog_core::view::RecordRef;
use distlog_core::wire::ArchivedSender;
use parking_lot::Mutex;

/// Arguments of `distlog query`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: crate::source::SourceArgs,
    /// Only records that pass this filter (the filter language of distlogd's
    /// rules), e.g. 'level >= warn and host == "web-1"'.
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Only records at or after T: RFC 3339 (2024-05-01T12:00:00Z), a date
    /// (2024-05-01, midnight UTC), or a duration ago (30s, 10m, 2h, 1d).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only records before T (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Print only the number of matching records (one integer).
    #[arg(long)]
    count: bool,
    /// Stop after N matching records (the first N in stored order).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Scan threads for a store (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// What one piece of the source contributed.
struct Part {
    matched: u64,
    text: Lines,
    tally: Tally,
}

/// How one selected record becomes output text (appended to the piece's
/// [`Lines`], one line with its newline), on a scan worker.
pub type Render = dyn Fn(u8, &ArchivedSender, RecordRef<'_>, &mut Lines) + Sync;

/// At most this many pieces' text buffers are kept for reuse (each can be
/// one segment's output): the next piece writes into memory already
/// mapped instead of growing a new buffer page fault by page fault.
const KEPT_BUFFERS: usize = 8;

/// Scans `source` for what `sel` selects, renders the first `limit`
/// records in stored order with `render` (`None`: count only) and hands
/// the text (UTF-8) to `write` a piece at a time, as soon as each piece is read
/// (the first results come after one piece, not after the whole scan).
/// `write` returning false stops the scan. Returns the number of records
/// rendered (or counted) and what reading found.
///
/// Shared by `distlog query` and the web view's search (`ui/search.rs`).
pub fn scan_rendered(
    source: &Source,
    sel: &Selection<'_>,
    limit: u64,
    render: Option<&Render>,
    mut write: impl FnMut(&[u8]) -> Result<bool, CliError>,
) -> Result<(u64, Tally), CliError> {
    let mut total = 0u64;
    let mut tally = Tally::default();
    if limit == 0 {
        return Ok((0, tally));
    }
    let kept: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    source.scan(
        sel,
        |piece| {
            let buf = kept.lock().pop().unwrap_or_default();
            let (mut matched, mut text) = (0u64, Lines::with_buffer(buf));
            let tally = piece.records(sel, |system, sender, r| {
                matched += 1;
                if let Some(render) = render {
                    render(system, sender, r, &mut text);
                }
                matched < limit
            });
            Part {
                matched,
                text,
                tally,
            }
        },
        |part| {
            tally += part.tally;
            let take = part.matched.min(limit - total);
            let text = part.text.bytes();
            let go_on = if render.is_none() || take == 0 {
                true
            } else if take == part.matched {
                write(text)?
            } else {
                // Cut after `take` lines.
                let end = memchr::memchr_iter(b'\n', text)
                    .nth(take as usize - 1)
                    .map_or(0, |i| i + 1);
                write(&text[..end])?
            };
            let mut kept = kept.lock();
            if kept.len() < KEPT_BUFFERS {
                kept.push(part.text.into_buffer());
            }
            drop(kept);
            total += take;
            Ok(go_on && total < limit)
        },
    )?;
    Ok((total, tally))
}

pub fn run(a: Args) -> Result<(), CliError> {
    let filter = compile_filter(a.filter.as_deref())?;
    let now = crate::time::now_ns();
    let sel = Selection {
        filter: &filter,
        since: crate::time::bound(a.since.as_deref(), now)?.unwrap_or(0),
        until: crate::time::bound(a.until.as_deref(), now)?.unwrap_or(u64::MAX),
    };
    let source = Source::new(&a.src, a.threads)?;
    let limit = a.limit.unwrap_or(u64::MAX);
    let mut out = Out::new();
    let (colour, count_only, format) = (out.colour, a.count, a.format);
    let counted = if count_only && limit == u64::MAX {
        source.count(&sel)?
    } else {
        None
    };
    let mut total = counted.unwrap_or(0);
    let mut tally = Tally::default();
    if counted.is_none() {
        let render =
            move |system: u8, sender: &ArchivedSender, r: RecordRef<'_>, lines: &mut Lines| {
                match format {
                    Format::Text if colour => lines.coloured(system, sender, r),
                    Format::Text => lines.text(system, sender, r),
                    Format::Jsonl => lines.json(system, sender, r),
                }
            };
        let render: Option<&Render> = (!count_only).then_some(&render);
        (total, tally) = scan_rendered(&source, &sel, limit, render, |text| {
            out.write_bytes(text)?;
            Ok(true)
        })?;
    }
    if count_only {
        out.line(&total.to_string())?;
    }
    out.flush()?;
    source.warn_skipped(tally.skipped);
    Ok(())
}
