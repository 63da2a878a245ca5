//! `llmib export`: the loaded tables written for pandas, DuckDB and other tools.
//!
//! Three files per export, `runs`, `requests` and `events` (`.parquet` or `.csv`):
//! * `runs`: one row per log: `run` (index), `run_id`, `log`, backend, model,
//!   simulated profile, trace name and sha256, output cap, arrival rate, log end.
//! * `requests`: one row per request with the raw times (ns since run start), token
//!   counts, session and turn (null without a session) and outcome of
//!   [`crate::load::columns::req`] (with the reasoning fields
//!   `first_reasoning_ns`, `first_answer_ns`, `reasoning_tokens`,
//!   `server_reasoning_tokens`, and `count_flags`: the record's flags joined by `,`),
//!   plus derived seconds `lateness_s`, `ttft_s`, `ttfat_s`
//!   (time to first answer token), `e2e_s` (from dispatch) and the `early_stop` flag.
//! * `events`: one row per streamed event: `run`, `request_id`, `seq`, `t_ns`, `tokens`.
//!
//! Runs replayed with `--server-metrics` add two files (only then; see
//! [`crate::load::server_metrics`]): `server_metrics` (one row per scrape: running, waiting,
//! KV-cache usage) and `server_series` (every kept series of every scrape, long format).
//!
//! Every row carries `run`; join on (`run`, `request_id`). Warmup requests are kept and
//! flagged (`warmup`), so filters are the reader's choice.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::load::columns::req;
use crate::load::runs::{RunInfo, Runs};
use crate::load::server_metrics;

/// File format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "parquet" => ExportFormat::Parquet,
            "csv" => ExportFormat::Csv,
            _ => return None,
        })
    }
    fn ext(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Csv => "csv",
        }
    }
}

/// The runs table (one row per log).
pub fn runs_table(runs: &Runs) -> Result<DataFrame> {
    let n = runs.runs.len();
    let h = |f: &dyn Fn(&RunInfo) -> Option<String>| -> Vec<Option<String>> {
        runs.runs.iter().map(f).collect()
    };
    let df = DataFrame::new(
        n,
        vec![
            Column::new(
                "run".into(),
                runs.runs.iter().map(|r| r.index).collect::<Vec<u32>>(),
            ),
            Column::new("run_id".into(), h(&|r| Some(r.id.clone()))),
            Column::new("log".into(), h(&|r| Some(r.path.display().to_string()))),
            Column::new(
                "backend".into(),
                h(&|r| Some(r.header.backend.kind.clone())),
            ),
            Column::new(
                "endpoint".into(),
                h(&|r| Some(r.header.backend.endpoint.clone())),
            ),
            Column::new("model".into(), h(&|r| r.header.backend.model.clone())),
            Column::new(
                "simulated_profile".into(),
                h(&|r| {
                    r.header
                        .backend
                        .simulated
                        .as_ref()
                        .map(|s| s.profile.clone())
                }),
            ),
            Column::new(
                "trace_name".into(),
                h(&|r| Some(r.header.trace.name.clone())),
            ),
            Column::new(
                "trace_sha256".into(),
                h(&|r| Some(r.header.trace.sha256.clone())),
            ),
            Column::new(
                "output_cap".into(),
                runs.runs
                    .iter()
                    .map(|r| r.header.trace.spec.as_ref().and_then(|s| s.output_cap()))
                    .collect::<Vec<Option<u32>>>(),
            ),
            Column::new(
                "rate_per_s".into(),
                runs.runs
                    .iter()
                    .map(|r| r.header.trace.spec.as_ref().and_then(|s| s.rate_per_s()))
                    .collect::<Vec<Option<f64>>>(),
            ),
            Column::new(
                "streamed".into(),
                runs.runs
                    .iter()
                    .map(|r| r.header.options.stream)
                    .collect::<Vec<bool>>(),
            ),
            Column::new(
                "started_unix_ns".into(),
                runs.runs
                    .iter()
                    .map(|r| r.header.started_unix_ns)
                    .collect::<Vec<u64>>(),
            ),
            Column::new(
                "complete".into(),
                runs.runs
                    .iter()
                    .map(|r| r.complete())
                    .collect::<Vec<bool>>(),
            ),
        ],
    )?;
    Ok(df)
}

fn diff_s(a: &[Option<u64>], b: &[Option<u64>]) -> Vec<Option<f64>> {
    a.iter()
        .zip(b)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => Some((*a as i128 - *b as i128) as f64 / 1e9),
            _ => None,
        })
        .collect()
}

/// The requests table with run ids and derived columns.
pub fn requests_table(runs: &Runs) -> Result<DataFrame> {
    let df = &runs.requests;
    let get = |n: &str| -> Result<Vec<Option<u64>>> { Ok(df.column(n)?.u64()?.iter().collect()) };
    let sched = get(req::SCHEDULED_NS)?;
    let disp = get(req::DISPATCHED_NS)?;
    let sent = get(req::SENT_NS)?;
    let first = get(req::FIRST_TOKEN_NS)?;
    let first_answer = get(req::FIRST_ANSWER_NS)?;
    let end = get(req::END_NS)?;
    let max: Vec<Option<u32>> = df.column(req::MAX_TOKENS)?.u32()?.iter().collect();
    let out: Vec<Option<u32>> = df.column(req::OUTPUT_TOKENS)?.u32()?.iter().collect();
    let outcome: Vec<Option<&str>> = df.column(req::OUTCOME)?.str()?.iter().collect();
    let early: Vec<bool> = (0..df.height())
        .map(|i| {
            outcome[i] == Some("ok")
                && matches!((out[i], max[i]), (Some(o), Some(m)) if m > 0 && o < m)
        })
        .collect();
    let run_col = df.column(req::RUN)?.u32()?;
    let ids: Vec<String> = runs.runs.iter().map(|r| r.id.clone()).collect();
    let run_id: Vec<&str> = run_col
        .iter()
        .map(|r| ids[r.unwrap_or(0) as usize].as_str())
        .collect();
    let n = df.height();
    let mut extra = vec![
        Column::new("run_id".into(), run_id),
        Column::new("lateness_s".into(), diff_s(&disp, &sched)),
        Column::new("ttft_s".into(), diff_s(&first, &disp)),
        Column::new("e2e_s".into(), diff_s(&end, &disp)),
        Column::new("e2e_from_scheduled_s".into(), diff_s(&end, &sched)),
        Column::new("ttft_from_sent_s".into(), diff_s(&first, &sent)),
        Column::new("send_delay_s".into(), diff_s(&sent, &disp)),
        Column::new("ttfat_s".into(), diff_s(&first_answer, &disp)),
        Column::new("early_stop".into(), early),
    ];
    let mut cols: Vec<Column> = df.columns().to_vec();
    cols.insert(1, extra.remove(0));
    cols.extend(extra);
    Ok(DataFrame::new(n, cols)?)
}

/// Writes one table atomically: a failure leaves neither a partial file nor a temporary.
fn write(df: &mut DataFrame, path: &Path, format: ExportFormat) -> Result<()> {
    let log_err = |source| Error::Log {
        path: path.to_path_buf(),
        source,
    };
    let mut file = formats::AtomicFile::create(path).map_err(log_err)?;
    match format {
        ExportFormat::Parquet => {
            ParquetWriter::new(&mut file).finish(df)?;
        }
        ExportFormat::Csv => {
            CsvWriter::new(&mut file).include_header(true).finish(df)?;
        }
    }
    file.commit().map_err(log_err)?;
    Ok(())
}

/// The files [`export`] writes into `dir`.
pub fn export_files(dir: &Path, format: ExportFormat) -> Vec<PathBuf> {
    ["runs", "requests", "events"]
        .iter()
        .map(|name| dir.join(format!("{name}.{}", format.ext())))
        .collect()
}

/// Writes `runs`, `requests` and `events` tables into `dir` (created if needed);
/// returns the written paths.
pub fn export(runs: &Runs, dir: &Path, format: ExportFormat) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let mut tables = [
        ("runs", runs_table(runs)?),
        ("requests", requests_table(runs)?),
        ("events", runs.events.clone()),
    ];
    for ((_, df), path) in tables.iter_mut().zip(export_files(dir, format)) {
        write(df, &path, format)?;
        written.push(path);
    }
    let server = [
        ("server_metrics", server_metrics::samples_table(runs)?),
        ("server_series", server_metrics::series_table(runs)?),
    ];
    for (name, df) in server {
        if let Some(mut df) = df {
            let path = dir.join(format!("{name}.{}", format.ext()));
            write(&mut df, &path, format)?;
            written.push(path);
        }
    }
    Ok(written)
}
