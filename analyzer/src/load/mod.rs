//! Reading run logs into two polars tables: `requests` (one row per request) and
//! `events` (one row per streamed event).
//!
//! Why column vectors: a 100k-request log carries about 13M token events. Appending rows
//! to a DataFrame one by one would be far too slow, so each log is streamed once with
//! [`formats::LogReader`] and its fields are pushed straight into plain `Vec`s, which
//! become polars columns without copying. Records are never kept in memory as a whole.
//! Logs are decoded in parallel (one thread per file, bounded by the core count).
//!
//! **Time dilation**: a run against the simulator sped up `K` times
//! (`backend.simulated.speedup`, `llmib sim --speedup K`) measured every time `K` times
//! shorter than its profile says. Its times are multiplied by `K` here, once, as the
//! log is read ([`RunInfo::dilation`]): every metric, table, figure, export, session
//! and capacity result then speaks the profile's units (latencies x K, rates / K) with
//! no code of its own for it.
//!
//! Rows of one run are contiguous in both tables; [`RunInfo::requests`] and
//! [`RunInfo::events`] give their ranges, and the requests table's `event_offset` /
//! `event_count` columns point each request at its events (`event_offset` counts from
//! the run's first event row).

pub mod columns;
mod decode;
mod files;
pub mod runs;
pub mod server_metrics;

use std::path::{Path, PathBuf};

use formats::LogEnd;
use polars::prelude::*;

use crate::error::{Error, Result};
use decode::{Loaded, frames, load_one, load_shards};
use files::{drop_duplicates, expand, not_a_log, units};

pub use columns::{ev, req};
pub use decode::dilation_of;
pub use runs::{RunInfo, Runs};

/// Loads run logs (files, or directories holding them) into one [`Runs`].
///
/// Files in a directory that are not run logs (traces, reports) are skipped with a
/// warning; a named file that is not a log, an empty log or a corrupt log is an error.
/// A log without a trailer (interrupted run) is loaded with a warning.
pub fn load_runs<P: AsRef<Path>>(paths: &[P]) -> Result<Runs> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    if paths.is_empty() {
        return Err(Error::Invalid("no run logs given".into()));
    }
    let mut files = expand(&paths)?;
    let mut warnings = drop_duplicates(&mut files)?;
    let (files, merged) = units(files)?;
    warnings.extend(merged);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len().max(1));
    let results: Vec<(PathBuf, bool, Result<Loaded>)> = {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<Loaded>>>> =
            files.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= files.len() {
                            break;
                        }
                        let r = match &files[i].2 {
                            Some(set) => load_shards(set),
                            None => load_one(&files[i].0),
                        };
                        *slots[i].lock().unwrap() = Some(r);
                    }
                });
            }
        });
        files
            .iter()
            .zip(slots)
            .map(|((p, in_dir, _), slot)| {
                (
                    p.clone(),
                    *in_dir,
                    slot.into_inner().unwrap().expect("every slot filled"),
                )
            })
            .collect()
    };

    let mut loaded = Vec::new();
    for (path, in_dir, r) in results {
        match r {
            Ok(l) => loaded.push(l),
            Err(e) if in_dir && not_a_log(&e) => {
                warnings.push(format!("skipped {} (not a run log)", path.display()));
            }
            Err(e) => return Err(e),
        }
    }
    if loaded.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::NothingToAnalyse(format!(
            "no run logs found in {}",
            list.join(", ")
        )));
    }
    let mut runs = assemble(loaded, warnings)?;
    runs.warnings.extend(server_metrics::warnings(&runs));
    Ok(runs)
}

fn unique_id(path: &Path, taken: &mut Vec<String>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let mut id = stem.clone();
    let mut k = 2;
    while taken.contains(&id) {
        id = format!("{stem}-{k}");
        k += 1;
    }
    taken.push(id.clone());
    id
}

fn assemble(loaded: Vec<Loaded>, mut warnings: Vec<String>) -> Result<Runs> {
    let mut runs = Vec::with_capacity(loaded.len());
    let mut taken = Vec::new();
    let mut req_frames: Vec<DataFrame> = Vec::new();
    let mut ev_frames: Vec<DataFrame> = Vec::new();
    let (mut req_at, mut ev_at) = (0usize, 0usize);
    for (i, l) in loaded.into_iter().enumerate() {
        let id = match &l.name {
            Some(name) => unique_id(Path::new(name), &mut taken),
            None => unique_id(&l.path, &mut taken),
        };
        if let Some(note) = &l.note {
            warnings.push(format!("run {id}: {note}"));
        }
        let n_req = l.cols.request_id.len();
        let n_ev = l.cols.ev_t_ns.len();
        match &l.end {
            LogEnd::Truncated {
                records,
                partial_tail,
            } => warnings.push(format!(
                "run {id}: log has no trailer (interrupted run): analysing its {records} complete records{}",
                if *partial_tail {
                    "; a half-written last record was dropped"
                } else {
                    ""
                }
            )),
            LogEnd::Trailer(t) if !t.complete => warnings.push(format!(
                "run {id}: the run was stopped before the end of its trace (interrupted or --duration)"
            )),
            LogEnd::Trailer(_) => {}
        }
        let (req_df, ev_df) = frames(i as u32, l.cols)?;
        req_frames.push(req_df);
        ev_frames.push(ev_df);
        runs.push(RunInfo {
            index: i as u32,
            id,
            path: l.path,
            header: l.header,
            end: l.end,
            dilation: l.dilation,
            requests: req_at..req_at + n_req,
            events: ev_at..ev_at + n_ev,
        });
        req_at += n_req;
        ev_at += n_ev;
    }
    let requests = concat(req_frames)?;
    let events = concat(ev_frames)?;
    Ok(Runs {
        runs,
        requests,
        events,
        warnings,
    })
}

fn concat(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let mut it = frames.into_iter();
    let mut df = it.next().expect("at least one run");
    for f in it {
        df.vstack_mut_owned(f)?;
    }
    // One contiguous chunk per column, so metrics can read plain slices.
    df.rechunk_mut_par();
    Ok(df)
}
