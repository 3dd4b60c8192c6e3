//! `distlog query`: scan the store with a filter and a time range.

use crate::out::Out;
use crate::scan;
use crate::{compile_filter, CliError, Format};

/// Arguments of `distlog query`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: crate::pg::Source,
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
    /// Scan threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// What one segment contributed.
struct Part {
    matched: u64,
    text: String,
    invalid: u64,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let filter = compile_filter(a.filter.as_deref())?;
    let now = crate::time::now_ns();
    let since = a
        .since
        .as_deref()
        .map(|t| crate::time::parse_time(t, now))
        .transpose()?
        .unwrap_or(0);
    let until = a
        .until
        .as_deref()
        .map(|t| crate::time::parse_time(t, now))
        .transpose()?
        .unwrap_or(u64::MAX);
    let limit = a.limit.unwrap_or(u64::MAX);
    if let Some(url) = &a.src.database {
        let f = a.filter.as_deref();
        return crate::pg::query(url, &filter, f, since, until, a.format, a.count, limit);
    }
    let segments = scan::select(scan::list(a.src.dir()?)?, since, until);
    let threads = scan::threads(a.threads, segments.len());
    let mut out = Out::new();
    let colour = out.colour;
    let (count_only, format) = (a.count, a.format);
    let mut total = 0u64;
    let mut invalid = 0u64;
    if limit > 0 {
        scan::scan(
            &segments,
            threads,
            |reader| {
                let (mut matched, mut text) = (0u64, String::new());
                let invalid = scan::records(reader, since, until, &filter, |system, sender, r| {
                    matched += 1;
                    if !count_only {
                        match format {
                            Format::Text => {
                                distlog::render::text_line(system, sender, r, colour, &mut text)
                            }
                            Format::Jsonl => {
                                distlog::render::json_record(system, sender, r, &mut text)
                            }
                        }
                        text.push('\n');
                    }
                    matched < limit
                });
                Part {
                    matched,
                    text,
                    invalid,
                }
            },
            |part| {
                invalid += part.invalid;
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
    if invalid > 0 {
        eprintln!("distlog: warning: {invalid} stored batches failed validation and were skipped");
    }
    Ok(())
}
