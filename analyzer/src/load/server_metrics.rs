//! The server's own metrics of a run (`llmib replay --server-metrics`): the sidecar next
//! to its log, read when the log's header says it was scraped.
//!
//! Why read here and not in [`crate::load`]: the samples are a few hundred small rows
//! per run that only the timeline figure and the exports use; loading them beside the
//! request tables would widen every [`RunInfo`] for the runs that have none.
//! Sample times are on the run's clock and are multiplied by the run's dilation (a
//! sped-up simulator), like every other time of the run ([`crate::load`]).

use formats::{MetricSample, read_server_metrics, sidecar_path};

use crate::error::Result;
use crate::load::runs::{RunInfo, Runs};

/// The run's samples, times in the run's (dilated) ns; `Ok(None)` when the run was not
/// scraped. `Err`: a one-line reason the sidecar cannot be used.
pub fn samples(info: &RunInfo) -> std::result::Result<Option<Vec<MetricSample>>, String> {
    if info.header.options.server_metrics.is_none() {
        return Ok(None);
    }
    let path = sidecar_path(&info.path);
    let log = read_server_metrics(&path).map_err(|e| {
        format!(
            "run {}: server metrics {} unreadable: {e}",
            info.id,
            path.display()
        )
    })?;
    if log.header.started_unix_ns != info.header.started_unix_ns {
        return Err(format!(
            "run {}: {} belongs to another run (started_unix_ns differs): ignored",
            info.id,
            path.display()
        ));
    }
    // The factor the loader applies to the run's times (a sped-up simulator's).
    let k = info.dilation;
    let dilate = |t: u64| (t as f64 * k).round() as u64;
    let samples = log
        .samples
        .into_iter()
        .map(|mut s| {
            s.start_ns = dilate(s.start_ns);
            s.end_ns = dilate(s.end_ns);
            s
        })
        .collect();
    Ok(Some(samples))
}

/// One warning per run whose log says it was scraped but whose sidecar cannot be used.
pub fn warnings(runs: &Runs) -> Vec<String> {
    runs.runs
        .iter()
        .filter_map(|info| samples(info).err())
        .collect()
}

/// Every run's usable samples, in run order (runs without any left out).
pub fn all(runs: &Runs) -> Vec<(&RunInfo, Vec<MetricSample>)> {
    runs.runs
        .iter()
        .filter_map(|info| Some((info, samples(info).ok()??)))
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// The `server_metrics` export: one row per sample of every scraped run: `run`,
/// `run_id`, `start_ns`, `end_ns` (run clock), `t_s` (midpoint, s), `running`,
/// `waiting`, `kv_usage` (0 to 1; null when the server does not export it), `error`
/// (a failed scrape). `None` when no run has samples.
pub fn samples_table(runs: &Runs) -> Result<Option<polars::prelude::DataFrame>> {
    use polars::prelude::*;
    let all = all(runs);
    if all.is_empty() {
        return Ok(None);
    }
    let rows = || all.iter().flat_map(|(i, s)| s.iter().map(move |m| (*i, m)));
    let n = rows().count();
    let cols = vec![
        Column::new(
            "run".into(),
            rows().map(|(i, _)| i.index).collect::<Vec<u32>>(),
        ),
        Column::new(
            "run_id".into(),
            rows().map(|(i, _)| i.id.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "start_ns".into(),
            rows().map(|(_, m)| m.start_ns).collect::<Vec<u64>>(),
        ),
        Column::new(
            "end_ns".into(),
            rows().map(|(_, m)| m.end_ns).collect::<Vec<u64>>(),
        ),
        Column::new(
            "t_s".into(),
            rows()
                .map(|(_, m)| m.mid_ns() as f64 / 1e9)
                .collect::<Vec<f64>>(),
        ),
        Column::new(
            "running".into(),
            rows().map(|(_, m)| m.running).collect::<Vec<_>>(),
        ),
        Column::new(
            "waiting".into(),
            rows().map(|(_, m)| m.waiting).collect::<Vec<_>>(),
        ),
        Column::new(
            "kv_usage".into(),
            rows().map(|(_, m)| m.kv_usage).collect::<Vec<_>>(),
        ),
        Column::new(
            "error".into(),
            rows()
                .map(|(_, m)| m.error.clone())
                .collect::<Vec<Option<String>>>(),
        ),
    ];
    Ok(Some(DataFrame::new(n, cols)?))
}

/// The `server_series` export: every kept series of every sample, long format: `run`,
/// `run_id`, `start_ns`, `series` (`name{labels}`), `value`. `None` when no run has
/// samples.
pub fn series_table(runs: &Runs) -> Result<Option<polars::prelude::DataFrame>> {
    use polars::prelude::*;
    let all = all(runs);
    if all.is_empty() {
        return Ok(None);
    }
    let (mut run, mut run_id, mut start, mut name, mut value) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (info, samples) in &all {
        for m in samples {
            for (k, v) in &m.series {
                run.push(info.index);
                run_id.push(info.id.as_str());
                start.push(m.start_ns);
                name.push(k.as_str());
                value.push(*v);
            }
        }
    }
    let n = run.len();
    let cols = vec![
        Column::new("run".into(), run),
        Column::new("run_id".into(), run_id),
        Column::new("start_ns".into(), start),
        Column::new("series".into(), name),
        Column::new("value".into(), value),
    ];
    Ok(Some(DataFrame::new(n, cols)?))
}
