//! Import of the Azure LLM inference trace CSV (`TIMESTAMP,ContextTokens,GeneratedTokens`,
//! e.g. `2023-11-16 18:15:46.6805900,374,44`).
//!
//! * Timestamps are parsed exactly to integer nanoseconds (up to 9 fractional digits; no
//!   floats, no time zone: the file's clock is taken as is).
//! * Rows are sorted stably by timestamp (the published files are already in order; a
//!   file that is not still imports, with equal timestamps kept in file order) and
//!   offsets are taken from the earliest row.
//! * The window keeps rows with `start <= offset < start + duration`; kept offsets are
//!   shifted to start at the window start and divided by `time_scale` (rounded to ns).
//! * Lengths: `ContextTokens` clamped to `max_prompt_tokens`, `GeneratedTokens` to
//!   `max_output_tokens`, both raised to at least 1 (a 0-token prompt or output is
//!   invalid on servers).
//! * Prompt text is made like a synthetic trace's (see [`crate::prompt`]) with the seed.
//!
//! A malformed row is an error naming its line.

use std::io::Read;
use std::path::{Path, PathBuf};

use formats::{
    AzureImportSpec, InputFile, InputKind, TraceHeader, TraceRequest, TraceSpec, TraceWriter,
};

use crate::GENERATOR_VERSION;
use crate::dist::{scale_ns, scale_overflow, secs_to_ns};
use crate::error::{GenError, Result};
use crate::import::csv::split_line;
use crate::import::lines::{empty_file, for_each_line};
use crate::limits::MAX_PROMPT_TOKENS;
use crate::prompt::PromptSource;

/// Import options (the CLI flags).
#[derive(Debug, Clone)]
pub struct AzureOptions {
    /// Trace name; defaults to the CSV's file stem.
    pub name: Option<String>,
    pub seed: u64,
    pub start_s: f64,
    pub duration_s: Option<f64>,
    pub time_scale: f64,
    pub max_prompt_tokens: Option<u32>,
    pub max_output_tokens: Option<u32>,
    pub max_requests: Option<u64>,
    pub ignore_eos: bool,
}

impl Default for AzureOptions {
    fn default() -> Self {
        AzureOptions {
            name: None,
            seed: 0,
            start_s: 0.0,
            duration_s: None,
            time_scale: 1.0,
            max_prompt_tokens: None,
            max_output_tokens: None,
            max_requests: None,
            ignore_eos: true,
        }
    }
}

/// One CSV row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AzureRow {
    /// Nanoseconds since 1970-01-01 00:00:00 of the file's clock.
    pub timestamp_ns: u64,
    pub context_tokens: u32,
    pub generated_tokens: u32,
    /// 1-based line in the file.
    pub line: usize,
}

/// What an import wrote.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub path: PathBuf,
    pub rows: usize,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Howard Hinnant's algorithm, proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn digits(s: &str, what: &str) -> std::result::Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} {s:?}"));
    }
    s.parse().map_err(|_| format!("bad {what} {s:?}"))
}

/// Parses `YYYY-MM-DD HH:MM:SS[.fraction]` (or with `T`) to ns since the epoch.
pub fn parse_timestamp(s: &str) -> std::result::Result<u64, String> {
    let bad = || {
        format!(
            "bad timestamp {} (want YYYY-MM-DD HH:MM:SS.fffffff)",
            clip(s)
        )
    };
    let (date, time) = s.split_once([' ', 'T']).ok_or_else(bad)?;
    let mut d = date.split('-');
    let (y, mo, da) = match (d.next(), d.next(), d.next(), d.next()) {
        (Some(y), Some(m), Some(d), None) if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (digits(y, "year")?, digits(m, "month")?, digits(d, "day")?)
        }
        _ => return Err(bad()),
    };
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) => (a, f),
        None => (time, ""),
    };
    let mut t = hms.split(':');
    let (h, mi, se) = match (t.next(), t.next(), t.next(), t.next()) {
        (Some(h), Some(m), Some(s), None) if h.len() == 2 && m.len() == 2 && s.len() == 2 => (
            digits(h, "hour")?,
            digits(m, "minute")?,
            digits(s, "second")?,
        ),
        _ => return Err(bad()),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || da < 1
        || da > mdays[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || se > 60
    {
        return Err(format!("timestamp {s:?} is out of range"));
    }
    if frac.len() > 9 || (!frac.is_empty() && !frac.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let mut ns_frac: i64 = 0;
    for i in 0..9 {
        ns_frac = ns_frac * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se;
    if secs < 0 {
        return Err(format!("timestamp {s:?} is before 1970"));
    }
    // Nanoseconds since 1970 fit in 64 bits until 2554-07-21.
    (secs as u64)
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(ns_frac as u64))
        .ok_or_else(|| format!("timestamp {s:?} is after 2554 (beyond 64-bit nanoseconds)"))
}

/// Reads and parses every row of an Azure CSV (header checked); also returns the
/// sha256 of the bytes read.
pub fn read_azure_csv(path: &Path) -> Result<(Vec<AzureRow>, String)> {
    let mut input = InputFile::open(path, InputKind::CSV_TRACE)?;
    let rows = azure_rows(&mut input)?;
    Ok((rows, input.finish()?))
}

/// Parses every row of an Azure CSV read from `input` (header checked), sorted by
/// timestamp; `path` only labels errors.
pub fn parse_azure_csv(input: impl Read, path: &Path) -> Result<Vec<AzureRow>> {
    azure_rows(&mut InputFile::from_reader(
        input,
        path,
        InputKind::CSV_TRACE,
    )?)
}

const AZURE_HEADER: [&str; 3] = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"];

fn azure_rows<R: Read>(input: &mut InputFile<R>) -> Result<Vec<AzureRow>> {
    let mut rows = Vec::new();
    let mut saw_header = false;
    let any = for_each_line(input, |n, line| {
        let cols = split_line(line)?;
        if !saw_header {
            if cols != AZURE_HEADER {
                return Err(format!(
                    "expected the header {}, found {}",
                    AZURE_HEADER.join(","),
                    clip(line)
                ));
            }
            saw_header = true;
            return Ok(());
        }
        if cols.len() != 3 {
            return Err(format!("expected 3 fields, found {}", cols.len()));
        }
        rows.push(AzureRow {
            timestamp_ns: parse_timestamp(&cols[0])?,
            context_tokens: count(&cols[1], "ContextTokens")?,
            generated_tokens: count(&cols[2], "GeneratedTokens")?,
            line: n,
        });
        Ok(())
    })?;
    if !any {
        return Err(empty_file(
            input,
            &format!("the header {}", AZURE_HEADER.join(",")),
        ));
    }
    rows.sort_by_key(|r| r.timestamp_ns); // stable
    Ok(rows)
}

/// A token count of a CSV field, `what` naming its column.
pub(crate) fn count(s: &str, what: &str) -> std::result::Result<u32, String> {
    s.parse::<u32>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => {
            format!("{what} {} exceeds the maximum of {}", clip(s), u32::MAX)
        }
        _ => format!("{what} {} is not a non-negative integer", clip(s)),
    })
}

pub(crate) fn check_options(o: &AzureOptions) -> Result<()> {
    crate::spec::check_name_flag(o.name.as_deref())?;
    let bad = |m: String| Err(GenError::InvalidSpec(m));
    if !(o.start_s.is_finite() && o.start_s >= 0.0) {
        return bad(format!(
            "--start-s must be a finite number >= 0, got {}",
            o.start_s
        ));
    }
    if let Some(d) = o.duration_s
        && !(d.is_finite() && d > 0.0)
    {
        return bad(format!("--duration-s must be a finite number > 0, got {d}"));
    }
    if !(o.time_scale.is_finite() && o.time_scale > 0.0) {
        return bad(format!(
            "--time-scale must be a finite number > 0, got {}",
            o.time_scale
        ));
    }
    if o.max_prompt_tokens == Some(0) || o.max_output_tokens == Some(0) || o.max_requests == Some(0)
    {
        return bad(
            "--max-prompt-tokens, --max-output-tokens and --max-requests must be at least 1".into(),
        );
    }
    Ok(())
}

/// A CSV cell quoted for an error message, cut to 40 characters: a garbage row must not
/// turn the one-line error into a page.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// Imports an Azure CSV into the trace file `out`.
pub fn import_azure(
    csv: &Path,
    opts: &AzureOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<ImportReport> {
    check_options(opts)?;
    let (rows, sha256) = read_azure_csv(csv)?;
    let kept = select_rows(&rows, opts, csv, "ContextTokens")?;
    let spec = AzureImportSpec {
        name: trace_name(opts, csv, "azure"),
        seed: opts.seed,
        source_file: file_name(csv),
        source_sha256: sha256,
        start_s: opts.start_s,
        duration_s: opts.duration_s,
        time_scale: opts.time_scale,
        max_prompt_tokens: opts.max_prompt_tokens,
        max_output_tokens: opts.max_output_tokens,
        max_requests: opts.max_requests,
        ignore_eos: opts.ignore_eos,
    };
    write_requests(&kept, rows.len(), TraceSpec::Azure(spec), opts, source, out)
}

/// The trace name: `--name`, else the input's file stem, else `fallback`.
pub(crate) fn trace_name(opts: &AzureOptions, input: &Path, fallback: &str) -> String {
    opts.name.clone().unwrap_or_else(|| {
        input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| fallback.into())
    })
}

/// The input's file name, no directory.
pub(crate) fn file_name(input: &Path) -> String {
    input
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The rows (sorted by timestamp) in the window, as `(arrival_ns, prompt, output)`
/// with the clamps applied; `prompt_field` names the prompt column in errors.
pub(crate) fn select_rows(
    rows: &[AzureRow],
    opts: &AzureOptions,
    input: &Path,
    prompt_field: &str,
) -> Result<Vec<(u64, u32, u32)>> {
    let start_ns = secs_to_ns(opts.start_s)
        .ok_or_else(|| GenError::InvalidSpec("--start-s too large".into()))?;
    let end_ns = match opts.duration_s {
        Some(d) => Some(
            secs_to_ns(d)
                .and_then(|d| start_ns.checked_add(d))
                .ok_or_else(|| GenError::InvalidSpec("--duration-s too large".into()))?,
        ),
        None => None,
    };
    let t0 = rows.first().map_or(0, |r| r.timestamp_ns);
    let mut kept: Vec<(u64, u32, u32)> = Vec::new();
    for r in rows {
        let off = r.timestamp_ns - t0;
        if off < start_ns || end_ns.is_some_and(|e| off >= e) {
            continue;
        }
        if opts.max_requests.is_some_and(|m| kept.len() as u64 >= m) {
            break;
        }
        let arrival = scale_ns(off - start_ns, opts.time_scale)
            .ok_or_else(|| scale_overflow(input, r.line, opts.time_scale))?;
        let prompt = r
            .context_tokens
            .min(opts.max_prompt_tokens.unwrap_or(u32::MAX))
            .max(1);
        if prompt > MAX_PROMPT_TOKENS {
            return Err(GenError::BadRow {
                path: input.to_path_buf(),
                line: r.line,
                message: format!(
                    "{prompt_field} {prompt} exceeds {MAX_PROMPT_TOKENS}; set --max-prompt-tokens"
                ),
            });
        }
        let output = r
            .generated_tokens
            .min(opts.max_output_tokens.unwrap_or(u32::MAX))
            .max(1);
        kept.push((arrival, prompt, output));
    }
    if kept.is_empty() {
        return Err(GenError::Invalid(format!(
            "{}: no rows in the selected window ({} rows in the file)",
            input.display(),
            rows.len()
        )));
    }
    Ok(kept)
}

/// Writes the selected requests, with prompt text made as a synthetic trace's.
pub(crate) fn write_requests(
    kept: &[(u64, u32, u32)],
    rows: usize,
    spec: TraceSpec,
    opts: &AzureOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<ImportReport> {
    let n = kept.len() as u64;
    let header = TraceHeader::new(spec, source.info().clone(), n, GENERATOR_VERSION);
    let mut writer = TraceWriter::create(out, &header)?;
    let mut prompts = source.builder(opts.seed, n);
    let (mut pt, mut ot) = (0u64, 0u64);
    for (id, &(arrival_ns, prompt_tokens, max_tokens)) in kept.iter().enumerate() {
        let p = prompts.build(id as u64, prompt_tokens)?;
        pt += u64::from(prompt_tokens);
        ot += u64::from(max_tokens);
        writer.write(&TraceRequest {
            id: id as u64,
            arrival_ns,
            prompt: p.text,
            prompt_token_ids: p.token_ids,
            prompt_tokens,
            max_tokens,
            ignore_eos: opts.ignore_eos,
            ..Default::default()
        })?;
    }
    let path = writer.finish()?;
    Ok(ImportReport {
        path,
        rows,
        requests: n,
        prompt_tokens: pt,
        output_tokens: ot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_exactly() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00").unwrap(), 0);
        assert_eq!(
            parse_timestamp("1970-01-01 00:00:01.5").unwrap(),
            1_500_000_000
        );
        let a = parse_timestamp("2023-11-16 18:15:46.6805900").unwrap();
        let b = parse_timestamp("2023-11-16 18:15:50.9951690").unwrap();
        assert_eq!(b - a, 4_314_579_000);
        // 2023-11-16 is day 19677 since the epoch.
        assert_eq!(
            a / 1_000_000_000,
            19_677 * 86_400 + 18 * 3600 + 15 * 60 + 46
        );
        assert_eq!(a % 1_000_000_000, 680_590_000);
        assert_eq!(
            parse_timestamp("2024-02-29T23:59:59.123456789").unwrap() % 1_000_000_000,
            123_456_789
        );
        assert_eq!(
            parse_timestamp("2554-07-21 23:34:33.709551615").unwrap(),
            u64::MAX
        );
        for bad in [
            "2023-11-16",
            "2023-13-01 00:00:00",
            "2023-02-30 00:00:00",
            "2023-11-16 18:15:46.1234567891",
            "2023-11-16 18:1:46",
            "x",
            // Beyond u64 nanoseconds (overflowed: a panic in debug builds).
            "9999-12-31 23:59:59.999999999",
            "2554-07-21 23:34:33.709551616",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }
}
