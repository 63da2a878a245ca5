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
pub mod runs;
pub mod server_metrics;

use std::path::{Path, PathBuf};

use formats::{FormatError, LogEnd, LogHeader, LogReader};
use polars::prelude::*;

use crate::capacity::manifest::is_manifest_name;
use crate::error::{Error, Result};
use crate::merge::ShardSet;

pub use columns::{ev, req};
pub use runs::{RunInfo, Runs};

/// Column vectors of one file, filled record by record.
#[derive(Default)]
struct Cols {
    request_id: Vec<u64>,
    session_id: Vec<Option<u64>>,
    turn: Vec<Option<u32>>,
    warmup: Vec<bool>,
    outcome: Vec<&'static str>,
    http_status: Vec<Option<u32>>,
    error: Vec<Option<String>>,
    scheduled_ns: Vec<u64>,
    dispatched_ns: Vec<Option<u64>>,
    connect_start_ns: Vec<Option<u64>>,
    connect_ns: Vec<Option<u64>>,
    sent_ns: Vec<Option<u64>>,
    first_byte_ns: Vec<Option<u64>>,
    first_token_ns: Vec<Option<u64>>,
    end_ns: Vec<Option<u64>>,
    prompt_tokens: Vec<u32>,
    max_tokens: Vec<u32>,
    output_tokens: Vec<Option<u32>>,
    server_output_tokens: Vec<Option<u32>>,
    server_prompt_tokens: Vec<Option<u32>>,
    server_cached_tokens: Vec<Option<u32>>,
    first_reasoning_ns: Vec<Option<u64>>,
    first_answer_ns: Vec<Option<u64>>,
    reasoning_tokens: Vec<Option<u32>>,
    server_reasoning_tokens: Vec<Option<u32>>,
    token_count_method: Vec<Option<String>>,
    count_flags: Vec<Option<String>>,
    finish_reason: Vec<Option<String>>,
    event_offset: Vec<u64>,
    event_count: Vec<u32>,
    ev_request_id: Vec<u64>,
    ev_seq: Vec<u32>,
    ev_t_ns: Vec<u64>,
    ev_tokens: Vec<u32>,
}

struct Loaded {
    path: PathBuf,
    header: LogHeader,
    end: LogEnd,
    dilation: f64,
    cols: Cols,
    /// The run's name when it is not the file's stem (merged shard logs).
    name: Option<String>,
    /// A warning about the run (shards missing from a sharded run).
    note: Option<String>,
}

/// The factor a run's times are multiplied by to be in its profile's units.
pub fn dilation_of(header: &LogHeader) -> f64 {
    header
        .backend
        .simulated
        .as_ref()
        .and_then(|s| s.speedup)
        .filter(|k| k.is_finite() && *k >= 1.0)
        .unwrap_or(1.0)
}

/// Multiplies every time of `c` by `k` (ns since the run's start, and durations).
fn dilate(c: &mut Cols, k: f64) {
    if k == 1.0 {
        return;
    }
    let f = |t: u64| (t as f64 * k).round() as u64;
    let all = |v: &mut Vec<u64>| v.iter_mut().for_each(|t| *t = f(*t));
    let some = |v: &mut Vec<Option<u64>>| v.iter_mut().flatten().for_each(|t| *t = f(*t));
    all(&mut c.scheduled_ns);
    all(&mut c.ev_t_ns);
    for v in [
        &mut c.dispatched_ns,
        &mut c.connect_start_ns,
        &mut c.connect_ns,
        &mut c.sent_ns,
        &mut c.first_byte_ns,
        &mut c.first_token_ns,
        &mut c.end_ns,
        &mut c.first_reasoning_ns,
        &mut c.first_answer_ns,
    ] {
        some(v);
    }
}

fn load_one(path: &Path) -> Result<Loaded> {
    let wrap = |source: FormatError| Error::Log {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = LogReader::open(path).map_err(wrap)?;
    let header = reader.header().clone();
    let hint = header.trace.request_count.min(1 << 24) as usize;
    let mut c = Cols::default();
    c.request_id.reserve(hint);
    for record in reader.by_ref() {
        push_record(&mut c, record.map_err(wrap)?);
    }
    let end = reader
        .end()
        .cloned()
        .expect("reader exhausted without error has an end");
    if c.request_id.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the log holds no request records (nothing to analyse)",
            path.display()
        )));
    }
    let dilation = dilation_of(&header);
    dilate(&mut c, dilation);
    Ok(Loaded {
        path: path.to_path_buf(),
        header,
        end,
        dilation,
        cols: c,
        name: None,
        note: None,
    })
}

/// The shard logs of one sharded run loaded as one run (see [`crate::merge`]): times
/// re-based onto the earliest shard start, ids checked disjoint.
fn load_shards(set: &ShardSet) -> Result<Loaded> {
    let mut c = Cols::default();
    c.request_id
        .reserve(set.key.total_requests.min(1 << 24) as usize);
    let end = set.for_each_record(|r| {
        push_record(&mut c, r);
        Ok(())
    })?;
    if c.request_id.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the shard logs hold no request records (nothing to analyse)",
            set.paths[0].display()
        )));
    }
    let dilation = dilation_of(&set.header);
    dilate(&mut c, dilation);
    let note = set.missing_note().map(|m| {
        format!("{m}: analysing the shards given as a partial run (its throughput is theirs alone)")
    });
    Ok(Loaded {
        path: set.paths[0].clone(),
        header: set.header.clone(),
        end,
        dilation,
        cols: c,
        name: Some(set.name()),
        note,
    })
}

/// Appends one record's columns and events.
fn push_record(c: &mut Cols, r: formats::LogRecord) {
    let offset = c.ev_t_ns.len() as u64;
    let n = r.events.len();
    c.request_id.push(r.id);
    c.session_id.push(r.session_id);
    c.turn.push(r.turn);
    c.warmup.push(r.warmup);
    c.outcome.push(r.outcome.as_str());
    c.http_status.push(r.http_status.map(u32::from));
    c.error.push(r.error);
    c.scheduled_ns.push(r.scheduled_ns);
    c.dispatched_ns.push(r.dispatched_ns);
    c.connect_start_ns.push(r.connect_start_ns);
    c.connect_ns.push(r.connect_ns);
    c.sent_ns.push(r.sent_ns);
    c.first_byte_ns.push(r.first_byte_ns);
    // First event carrying at least one token (a role-only or usage-only chunk
    // is not a token).
    let first_token = r
        .events
        .t_ns
        .iter()
        .zip(&r.events.tokens)
        .find(|(_, k)| **k > 0)
        .map(|(t, _)| *t);
    c.first_token_ns.push(first_token);
    c.end_ns.push(r.end_ns);
    c.prompt_tokens.push(r.prompt_tokens);
    c.max_tokens.push(r.max_tokens);
    // The client count: the recorded one, else the sum of the event counts.
    let client = r.output_tokens.or_else(|| {
        (!r.events.is_empty()).then(|| r.events.total_tokens().min(u32::MAX as u64) as u32)
    });
    c.output_tokens.push(client);
    c.server_output_tokens.push(r.server_output_tokens);
    c.server_prompt_tokens.push(r.server_prompt_tokens);
    c.server_cached_tokens.push(r.server_cached_tokens);
    c.first_reasoning_ns.push(r.first_reasoning_ns);
    c.first_answer_ns.push(r.first_answer_ns);
    c.reasoning_tokens.push(r.reasoning_tokens);
    c.server_reasoning_tokens.push(r.server_reasoning_tokens);
    c.token_count_method.push(r.token_count_method);
    c.count_flags
        .push((!r.count_flags.is_empty()).then(|| r.count_flags.join(",")));
    c.finish_reason.push(r.finish_reason);
    c.event_offset.push(offset);
    c.event_count.push(n as u32);
    c.ev_request_id.extend(std::iter::repeat_n(r.id, n));
    c.ev_seq.extend(0..n as u32);
    c.ev_t_ns.extend_from_slice(&r.events.t_ns);
    c.ev_tokens.extend_from_slice(&r.events.tokens);
}

/// True for a file that is simply not a run log (a trace, a JSON report...): skipped
/// when found in a directory, an error when named explicitly.
fn not_a_log(e: &Error) -> bool {
    matches!(
        e,
        Error::Log {
            source: FormatError::NotOurs(_) | FormatError::WrongKind { .. },
            ..
        }
    )
}

/// Expands directories (their regular files, non-recursive, sorted by name).
fn expand(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|f| f.is_file())
                // A run log's server-metrics sidecar is read with its log, not as one.
                .filter(|f| !formats::is_sidecar_path(f))
                // A capacity manifest lives next to its logs; it is not a run log.
                .filter(|f| {
                    !f.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_manifest_name)
                })
                .collect();
            files.sort();
            out.extend(files.into_iter().map(|f| (f, true)));
        } else {
            out.push((p.clone(), false));
        }
    }
    Ok(out)
}

/// Drops files whose bytes equal an earlier file's (the same log named twice, through a
/// directory and by name, or a copy): counted twice it would double a run's weight in
/// every table. Only files of equal size are hashed. Returns a warning per file dropped.
fn drop_duplicates(files: &mut Vec<(PathBuf, bool)>) -> Result<Vec<String>> {
    let mut by_size: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for (i, (p, _)) in files.iter().enumerate() {
        let len = std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len();
        by_size.entry(len).or_default().push(i);
    }
    let mut drop = std::collections::BTreeSet::new();
    let mut warnings = Vec::new();
    for group in by_size.values().filter(|g| g.len() > 1) {
        let mut seen: Vec<(String, usize)> = Vec::new();
        for &i in group {
            let p = &files[i].0;
            let hash = formats::sha256_file(p).map_err(|e| Error::Log {
                path: p.clone(),
                source: e,
            })?;
            match seen.iter().find(|(h, _)| *h == hash) {
                Some((_, first)) => {
                    warnings.push(format!(
                        "{} is the same log as {} (sha256 {}): counted once",
                        p.display(),
                        files[*first].0.display(),
                        &hash[..12]
                    ));
                    drop.insert(i);
                }
                None => seen.push((hash, i)),
            }
        }
    }
    let mut i = 0;
    files.retain(|_| {
        i += 1;
        !drop.contains(&(i - 1))
    });
    Ok(warnings)
}

/// What is loaded as one run: a file (and whether it was found in a directory), or the
/// shard logs of one sharded run (named by its first).
type Unit = (PathBuf, bool, Option<ShardSet>);

/// Groups the shard logs among `files` by run ([`crate::merge::group`]); each set takes
/// the place of its first file. Files whose header cannot be read stay as they are (the
/// load reports them). Shard logs given beside the log merged from them are left out,
/// with a warning each: the merged log counts their requests once
/// ([`crate::merge::merged_shards`]).
fn units(mut files: Vec<(PathBuf, bool)>) -> Result<(Vec<Unit>, Vec<String>)> {
    let mut headers: Vec<(PathBuf, formats::LogHeader)> = files
        .iter()
        .filter_map(|(p, _)| Some((p.clone(), LogReader::open(p).ok()?.header().clone())))
        .collect();
    let mut warnings = Vec::new();
    let covered = crate::merge::merged_shards(&headers);
    if !covered.is_empty() {
        let mut drop = std::collections::HashSet::new();
        for (i, k) in covered {
            let (shard, merged) = (&headers[i].0, &headers[k].0);
            warnings.push(format!(
                "{} is a shard of the merged log {}: its requests are counted once, in {}",
                shard.display(),
                merged.display(),
                merged.display()
            ));
            drop.insert(shard.clone());
        }
        files.retain(|(p, _)| !drop.contains(p));
        headers.retain(|(p, _)| !drop.contains(p));
    }
    let (_, sets) = crate::merge::group(headers)?;
    let set_of: std::collections::HashMap<PathBuf, usize> = sets
        .iter()
        .enumerate()
        .flat_map(|(k, s)| s.paths.iter().map(move |p| (p.clone(), k)))
        .collect();
    let mut sets: Vec<Option<ShardSet>> = sets.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(files.len());
    for (path, in_dir) in files {
        match set_of.get(&path) {
            // The set's first file brings it; its other files are in it.
            Some(&k) => out.extend(sets[k].take().map(|set| (path, false, Some(set)))),
            None => out.push((path, in_dir, None)),
        }
    }
    Ok((out, warnings))
}

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

/// Builds the two frames of one run. `event_offset` is run-local: the row of the
/// request's first event counted from the run's first event row.
fn frames(run: u32, c: Cols) -> Result<(DataFrame, DataFrame)> {
    let n = c.request_id.len();
    let m = c.ev_t_ns.len();
    let requests = DataFrame::new(
        n,
        vec![
            Column::new(req::RUN.into(), vec![run; n]),
            Column::new(req::REQUEST_ID.into(), c.request_id),
            Column::new(req::SESSION_ID.into(), c.session_id),
            Column::new(req::TURN.into(), c.turn),
            Column::new(req::WARMUP.into(), c.warmup),
            Column::new(req::OUTCOME.into(), c.outcome),
            Column::new(req::HTTP_STATUS.into(), c.http_status),
            Column::new(req::ERROR.into(), c.error),
            Column::new(req::SCHEDULED_NS.into(), c.scheduled_ns),
            Column::new(req::DISPATCHED_NS.into(), c.dispatched_ns),
            Column::new(req::CONNECT_START_NS.into(), c.connect_start_ns),
            Column::new(req::CONNECT_NS.into(), c.connect_ns),
            Column::new(req::SENT_NS.into(), c.sent_ns),
            Column::new(req::FIRST_BYTE_NS.into(), c.first_byte_ns),
            Column::new(req::FIRST_TOKEN_NS.into(), c.first_token_ns),
            Column::new(req::END_NS.into(), c.end_ns),
            Column::new(req::PROMPT_TOKENS.into(), c.prompt_tokens),
            Column::new(req::MAX_TOKENS.into(), c.max_tokens),
            Column::new(req::OUTPUT_TOKENS.into(), c.output_tokens),
            Column::new(req::SERVER_OUTPUT_TOKENS.into(), c.server_output_tokens),
            Column::new(req::SERVER_PROMPT_TOKENS.into(), c.server_prompt_tokens),
            Column::new(req::SERVER_CACHED_TOKENS.into(), c.server_cached_tokens),
            Column::new(req::FIRST_REASONING_NS.into(), c.first_reasoning_ns),
            Column::new(req::FIRST_ANSWER_NS.into(), c.first_answer_ns),
            Column::new(req::REASONING_TOKENS.into(), c.reasoning_tokens),
            Column::new(
                req::SERVER_REASONING_TOKENS.into(),
                c.server_reasoning_tokens,
            ),
            Column::new(req::TOKEN_COUNT_METHOD.into(), c.token_count_method),
            Column::new(req::COUNT_FLAGS.into(), c.count_flags),
            Column::new(req::FINISH_REASON.into(), c.finish_reason),
            Column::new(req::EVENT_OFFSET.into(), c.event_offset),
            Column::new(req::EVENT_COUNT.into(), c.event_count),
        ],
    )?;
    let events = DataFrame::new(
        m,
        vec![
            Column::new(ev::RUN.into(), vec![run; m]),
            Column::new(ev::REQUEST_ID.into(), c.ev_request_id),
            Column::new(ev::SEQ.into(), c.ev_seq),
            Column::new(ev::T_NS.into(), c.ev_t_ns),
            Column::new(ev::TOKENS.into(), c.ev_tokens),
        ],
    )?;
    Ok((requests, events))
}
