//! Import of a BurstGPT trace CSV (`Timestamp,Model,Request tokens,Response tokens,Total
//! tokens,Log Type`, e.g. `5,ChatGPT,472,18,490,Conversation log`; the files of BurstGPT
//! release v1.1).
//!
//! * `Timestamp` is seconds from the trace start, an integer or a decimal with up to 9
//!   fractional digits, parsed exactly to nanoseconds (no floats).
//! * Fields may be quoted (`"ChatGPT"`, `"a, b"`; see [`crate::import::csv`]).
//! * Columns after the six named ones are ignored (BurstGPT announces more); `Total
//!   tokens` is checked to be a count but not used.
//! * `--model` and `--log-type` keep only rows whose `Model` / `Log Type` equal them.
//! * Failed requests (`Response tokens` = 0; BurstGPT's files without `without_fails`
//!   in their name contain them) are skipped and counted.
//! * Then, as for Azure ([`crate::import::azure`]): rows sorted stably by timestamp, offsets from
//!   the earliest kept row, the window, the time scale, the clamps, and prompt text made
//!   as a synthetic trace's with the seed.

use std::io::Read;
use std::path::Path;

use formats::{BurstGptImportSpec, InputFile, InputKind, TraceSpec};

use crate::error::{GenError, Result};
use crate::import::azure::{
    AzureOptions, AzureRow, ImportReport, check_options, clip, count, digits, file_name,
    select_rows, trace_name, write_requests,
};
use crate::import::csv::split_line;
use crate::import::lines::{empty_file, for_each_line};
use crate::prompt::PromptSource;

/// The header BurstGPT's files start with.
pub const HEADER: [&str; 6] = [
    "Timestamp",
    "Model",
    "Request tokens",
    "Response tokens",
    "Total tokens",
    "Log Type",
];

/// Import options: the Azure import's (window, time scale, clamps, seed) and filters.
#[derive(Debug, Clone, Default)]
pub struct BurstGptOptions {
    pub base: AzureOptions,
    /// Keep only rows with this `Model` (e.g. `ChatGPT`, `GPT-4`).
    pub model: Option<String>,
    /// Keep only rows with this `Log Type` (e.g. `Conversation log`, `API log`).
    pub log_type: Option<String>,
}

/// What an import wrote and what it skipped.
#[derive(Debug, Clone)]
pub struct BurstGptReport {
    pub import: ImportReport,
    /// Rows left out by `--model` / `--log-type`.
    pub filtered: usize,
    /// Failed requests (`Response tokens` = 0) among the rows the filters kept.
    pub failed: usize,
}

/// The rows the filters kept, successful ones only, sorted stably by timestamp.
#[derive(Debug, Clone)]
pub struct BurstGptRows {
    pub rows: Vec<AzureRow>,
    pub total: usize,
    pub filtered: usize,
    pub failed: usize,
}

/// Parses `Timestamp` (seconds, optional fraction of up to 9 digits) to nanoseconds.
pub fn parse_seconds(s: &str) -> std::result::Result<u64, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs = digits(int, "Timestamp")?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "bad Timestamp {} (want seconds, at most 9 decimals)",
            clip(s)
        ));
    }
    let mut ns: u64 = 0;
    for i in 0..9 {
        ns = ns * 10 + frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
    }
    (secs as u64)
        .checked_mul(1_000_000_000)
        .and_then(|x| x.checked_add(ns))
        .ok_or_else(|| format!("Timestamp {} exceeds 64-bit nanoseconds", clip(s)))
}

/// Reads a BurstGPT CSV, applying the filters; also returns the sha256 of the bytes read.
pub fn read_burstgpt(path: &Path, opts: &BurstGptOptions) -> Result<(BurstGptRows, String)> {
    let mut input = InputFile::open(path, InputKind::CSV_TRACE)?;
    let rows = burstgpt_rows(&mut input, opts)?;
    Ok((rows, input.finish()?))
}

/// Parses a BurstGPT CSV read from `input`; `path` only labels errors.
pub fn parse_burstgpt(
    input: impl Read,
    path: &Path,
    opts: &BurstGptOptions,
) -> Result<BurstGptRows> {
    burstgpt_rows(
        &mut InputFile::from_reader(input, path, InputKind::CSV_TRACE)?,
        opts,
    )
}

fn burstgpt_rows<R: Read>(
    input: &mut InputFile<R>,
    opts: &BurstGptOptions,
) -> Result<BurstGptRows> {
    let mut out = BurstGptRows {
        rows: Vec::new(),
        total: 0,
        filtered: 0,
        failed: 0,
    };
    let mut saw_header = false;
    let any = for_each_line(input, |n, line| {
        let cols = split_line(line)?;
        if !saw_header {
            if cols.len() < HEADER.len() || cols[..HEADER.len()] != HEADER {
                return Err(format!(
                    "expected the header {}, found {}",
                    HEADER.join(","),
                    clip(line)
                ));
            }
            saw_header = true;
            return Ok(());
        }
        if cols.len() < HEADER.len() {
            return Err(format!(
                "expected {} fields, found {}",
                HEADER.len(),
                cols.len()
            ));
        }
        out.total += 1;
        let timestamp_ns = parse_seconds(&cols[0])?;
        let request = count(&cols[2], "Request tokens")?;
        let response = count(&cols[3], "Response tokens")?;
        count(&cols[4], "Total tokens")?;
        if opts.model.as_deref().is_some_and(|m| m != cols[1])
            || opts.log_type.as_deref().is_some_and(|t| t != cols[5])
        {
            out.filtered += 1;
        } else if response == 0 {
            out.failed += 1;
        } else {
            out.rows.push(AzureRow {
                timestamp_ns,
                context_tokens: request,
                generated_tokens: response,
                line: n,
            });
        }
        Ok(())
    })?;
    if !any {
        return Err(empty_file(
            input,
            &format!("the header {}", HEADER.join(",")),
        ));
    }
    out.rows.sort_by_key(|r| r.timestamp_ns); // stable
    Ok(out)
}

/// Imports a BurstGPT CSV into the trace file `out`.
pub fn import_burstgpt(
    csv: &Path,
    opts: &BurstGptOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<BurstGptReport> {
    let base = &opts.base;
    check_options(base)?;
    let (parsed, sha256) = read_burstgpt(csv, opts)?;
    if parsed.rows.is_empty() {
        return Err(GenError::Invalid(format!(
            "{}: no successful rows pass the filters ({} rows, {} filtered out, {} failed)",
            csv.display(),
            parsed.total,
            parsed.filtered,
            parsed.failed
        )));
    }
    let kept = select_rows(&parsed.rows, base, csv, "Request tokens")?;
    let spec = BurstGptImportSpec {
        name: trace_name(base, csv, "burstgpt"),
        seed: base.seed,
        source_file: file_name(csv),
        source_sha256: sha256,
        model: opts.model.clone(),
        log_type: opts.log_type.clone(),
        start_s: base.start_s,
        duration_s: base.duration_s,
        time_scale: base.time_scale,
        max_prompt_tokens: base.max_prompt_tokens,
        max_output_tokens: base.max_output_tokens,
        max_requests: base.max_requests,
        ignore_eos: base.ignore_eos,
    };
    let spec = TraceSpec::BurstGpt(spec);
    let import = write_requests(&kept, parsed.total, spec, base, source, out)?;
    Ok(BurstGptReport {
        import,
        filtered: parsed.filtered,
        failed: parsed.failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, opts: &BurstGptOptions) -> std::result::Result<BurstGptRows, String> {
        parse_burstgpt(text.as_bytes(), Path::new("b.csv"), opts).map_err(|e| e.to_string())
    }

    const H: &str = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";

    #[test]
    fn seconds_parse_exactly() {
        assert_eq!(parse_seconds("5").unwrap(), 5_000_000_000);
        assert_eq!(parse_seconds("0.000000001").unwrap(), 1);
        assert_eq!(parse_seconds("10.25").unwrap(), 10_250_000_000);
        for bad in ["", "-1", "1e3", "1.2.3", "0.1234567891", "18446744074", "x"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_failures_and_order() {
        let text = format!(
            "{H}5,ChatGPT,472,18,490,Conversation log\n3,GPT-4,10,0,10,API log\n\
             1.5,GPT-4,417,276,693,Conversation log,extra\n1.5,ChatGPT,1,2,3,API log\n"
        );
        let all = parse(&text, &BurstGptOptions::default()).unwrap();
        assert_eq!((all.total, all.filtered, all.failed), (4, 0, 1));
        let lines: Vec<usize> = all.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 5, 2]);
        let opts = BurstGptOptions {
            model: Some("GPT-4".into()),
            log_type: Some("Conversation log".into()),
            ..BurstGptOptions::default()
        };
        let some = parse(&text, &opts).unwrap();
        assert_eq!((some.filtered, some.failed, some.rows.len()), (3, 0, 1));
    }

    #[test]
    fn bad_rows_name_line_and_field() {
        let o = BurstGptOptions::default();
        for (text, want) in [
            (String::new(), "b.csv:1: empty file"),
            ("a,b,c\n".into(), "b.csv:1: expected the header"),
            (
                format!("{H}5,ChatGPT,472\n"),
                "b.csv:2: expected 6 fields, found 3",
            ),
            (
                format!("{H}5,ChatGPT,x,1,1,API log\n"),
                "b.csv:2: Request tokens \"x\" is not",
            ),
            (
                format!("{H}5,ChatGPT,1,99999999999,1,API log\n"),
                "b.csv:2: Response tokens \"99999999999\" exceeds",
            ),
            (
                format!("{H}-5,ChatGPT,1,1,1,API log\n"),
                "b.csv:2: bad Timestamp",
            ),
        ] {
            let e = parse(&text, &o).unwrap_err();
            assert!(e.contains(want), "{e} / {want}");
        }
    }
}
