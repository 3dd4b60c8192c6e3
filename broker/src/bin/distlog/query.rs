//! `distlog query`: scan the store with a filter and a time range.

use crate::out::Out;
use crate::source::{Selection, Source, Tally};
use crate::{compile_filter, CliError, Format};

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
    text: String,
    tally: Tally,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let filter = compile_filter(a.filter.as_deref())?;
    let now = crate::time::now_ns();
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(|t| crate::time::parse_time(t, now))
            .transpose()
    };
    let sel = Selection {
        filter: &filter,
        since: time(&a.since)?.unwrap_or(0),
        until: time(&a.until)?.unwrap_or(u64::MAX),
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
    if counted.is_none() && limit > 0 {
        source.scan(
            &sel,
            |piece| {
                let (mut matched, mut text) = (0u64, String::new());
                let tally = piece.records(&sel, |system, sender, r| {
                    matched += 1;
                    if !count_only {
                        match format {
                            Format::Text => distlog_filter::render::text_line(
                                system, sender, r, colour, &mut text,
                            ),
                            Format::Jsonl => {
                                distlog_filter::render::json_record(system, sender, r, &mut text)
                            }
                        }
                        text.push('\n');
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
                if !count_only {
                    if take == part.matched {
                        out.write(&part.text)?;
                    } else {
                        // Cut after `take` lines.
                        let end = part
                            .text
                            .match_indices('\n')
                            .nth(take as usize - 1)
                            .map_or(0, |(i, _)| i + 1);
                        out.write(&part.text[..end])?;
                    }
                }
                total += take;
                Ok(total < limit)
            },
        )?;
    }
    if count_only {
        out.line(&total.to_string())?;
    }
    out.flush()?;
    source.warn_skipped(tally.skipped);
    Ok(())
}
