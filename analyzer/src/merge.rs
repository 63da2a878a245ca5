//! The shard logs of one sharded run (`llmib replay --shard I/N`) taken as one run.
//!
//! A shard log is partial by design: it holds the records of its shard's requests only.
//! Logs are shards of one run when their headers agree on the trace (sha256), the start
//! instant (`start_at.unix_ns`, else `started_unix_ns`), the shard count, the assignment
//! rule and the number of requests split ([`RunKey`]); they must also agree on the
//! replay options but the per-shard ones (warm-up, server metrics) and on the backend
//! kind and model (endpoints may differ: several network paths to one fleet). Their
//! times are re-based onto the earliest shard start (0 when they share `--start-at`, as
//! they should), so throughput is computed on the merged wall-clock span.
//!
//! Completeness: every request id at most once across the shards (a duplicate means
//! the logs are not shards of one run: an error), and, with every shard present, the
//! records are exactly the requests split. A missing shard is a warning when analysing
//! (a lone shard log can be looked at) and an error for `llmib merge` unless
//! `--allow-missing`: either way the missing indices are named.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use formats::{
    ClientCpu, LogEnd, LogHeader, LogReader, LogRecord, LogTrailer, LogWriter, MergedShard,
    ReplayOptions, RunLog,
};

use crate::error::{Error, Result};

/// What the shard logs of one run share.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunKey {
    pub trace_sha256: String,
    pub start_unix_ns: u64,
    pub count: u32,
    pub rule: String,
    pub total_requests: u64,
}

impl RunKey {
    /// The key of a shard log's header; `None` for an unsharded (or merged) log.
    pub fn of(h: &LogHeader) -> Option<RunKey> {
        let s = h.options.shard.as_ref()?;
        Some(RunKey {
            trace_sha256: h.trace.sha256.clone(),
            start_unix_ns: h
                .options
                .start_at
                .as_ref()
                .map_or(h.started_unix_ns, |a| a.unix_ns),
            count: s.count,
            rule: s.rule.clone(),
            total_requests: s.total_requests,
        })
    }
}

/// The shard logs of one run, checked to belong together, in shard order.
#[derive(Debug, Clone)]
pub struct ShardSet {
    pub key: RunKey,
    /// The shard logs given, by shard index.
    pub paths: Vec<PathBuf>,
    pub headers: Vec<LogHeader>,
    /// Added to each shard's times: its start minus the earliest start, ns.
    pub offsets_ns: Vec<u64>,
    /// Shard indices of the run with no log given.
    pub missing: Vec<u32>,
    /// The header of the merged run.
    pub header: LogHeader,
}

/// Splits `(path, header)` pairs into the unsharded ones (returned as they are) and the
/// shard sets (logs grouped by [`RunKey`], each group checked with [`ShardSet::new`]).
pub fn group(logs: Vec<(PathBuf, LogHeader)>) -> Result<(Vec<PathBuf>, Vec<ShardSet>)> {
    let mut single = Vec::new();
    let mut groups: BTreeMap<RunKey, Vec<(PathBuf, LogHeader)>> = BTreeMap::new();
    for (path, header) in logs {
        match RunKey::of(&header) {
            Some(key) => groups.entry(key).or_default().push((path, header)),
            None => single.push(path),
        }
    }
    let sets = groups
        .into_values()
        .map(ShardSet::new)
        .collect::<Result<_>>()?;
    Ok((single, sets))
}

/// The shard logs among `logs` that a merged log among them was made from
/// (`llmib merge` records each shard's index, start instant and host in
/// `options.merged_from`): pairs of (shard log position, merged log position). Counted
/// with its merged log, such a shard would count its requests twice.
pub fn merged_shards(logs: &[(PathBuf, LogHeader)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, (_, h)) in logs.iter().enumerate() {
        let Some(shard) = &h.options.shard else {
            continue;
        };
        let merged = logs.iter().position(|(_, m)| {
            m.trace.sha256 == h.trace.sha256
                && m.options.merged_from.iter().any(|f| {
                    f.index == shard.index
                        && f.started_unix_ns == h.started_unix_ns
                        && f.host == h.host
                })
        });
        if let Some(k) = merged {
            out.push((i, k));
        }
    }
    out
}

impl ShardSet {
    /// Checks that `logs` (of one [`RunKey`]) are distinct shards of one run and builds
    /// the merged header.
    pub fn new(mut logs: Vec<(PathBuf, LogHeader)>) -> Result<ShardSet> {
        let key = RunKey::of(&logs[0].1).expect("grouped logs are shards");
        check_shard_fields(&logs)?;
        logs.sort_by_key(|(_, h)| shard_index(h));
        for pair in logs.windows(2) {
            if shard_index(&pair[0].1) == shard_index(&pair[1].1) {
                return Err(Error::Invalid(format!(
                    "{} and {} are both shard {} of the same run: give each shard's log once",
                    pair[0].0.display(),
                    pair[1].0.display(),
                    shard_index(&pair[0].1)
                )));
            }
        }
        check_agree(&logs)?;
        let present: HashSet<u32> = logs.iter().map(|(_, h)| shard_index(h)).collect();
        let missing = (0..key.count).filter(|i| !present.contains(i)).collect();
        let base = logs
            .iter()
            .map(|(_, h)| h.started_unix_ns)
            .min()
            .unwrap_or(0);
        let offsets_ns = logs.iter().map(|(_, h)| h.started_unix_ns - base).collect();
        let (paths, headers): (Vec<_>, Vec<_>) = logs.into_iter().unzip();
        let header = merged_header(&headers, base);
        Ok(ShardSet {
            key,
            paths,
            headers,
            offsets_ns,
            missing,
            header,
        })
    }

    /// A short name for the merged run: the shard files' common stem prefix.
    pub fn name(&self) -> String {
        let stems: Vec<String> = self
            .paths
            .iter()
            .map(|p| {
                p.file_stem()
                    .map_or(String::new(), |s| s.to_string_lossy().into())
            })
            .collect();
        let first = &stems[0];
        let mut len = first.len();
        for s in &stems[1..] {
            len = len.min(
                first
                    .bytes()
                    .zip(s.bytes())
                    .take_while(|(a, b)| a == b)
                    .count(),
            );
        }
        // Bytes agree up to `len`, but names may differ inside a multi-byte character
        // (`é` and `è` share their first byte): cut at the character boundary below.
        while !first.is_char_boundary(len) {
            len -= 1;
        }
        let mut prefix = first[..len].to_string();
        if self.paths.len() == 1 {
            prefix = format!("{first}-merged");
        }
        let trimmed = prefix.trim_end_matches(|c: char| "-_.".contains(c) || c.is_ascii_digit());
        let trimmed = trimmed
            .trim_end_matches("shard")
            .trim_end_matches(['-', '_', '.']);
        if trimmed.is_empty() {
            "merged".to_string()
        } else {
            trimmed.to_string()
        }
    }

    /// One line naming the missing shards, when any.
    pub fn missing_note(&self) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let given: Vec<String> = self
            .headers
            .iter()
            .map(|h| shard_index(h).to_string())
            .collect();
        let missing: Vec<String> = self.missing.iter().map(u32::to_string).collect();
        Some(format!(
            "shard{} {} of {} missing (given: {})",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            self.key.count,
            given.join(", ")
        ))
    }

    /// Streams every shard's records, re-based, to `sink` (shard by shard, each in its
    /// log's order), checking that no id appears twice. Returns the merged end: a
    /// trailer when every shard log has one (`complete` when every shard's run was and
    /// the records are exactly the requests split), else a truncated end.
    pub fn for_each_record(&self, mut sink: impl FnMut(LogRecord) -> Result<()>) -> Result<LogEnd> {
        let mut seen: HashSet<u64> =
            HashSet::with_capacity(self.key.total_requests.min(1 << 24) as usize);
        let (mut all_trailers, mut all_complete, mut partial) = (true, true, false);
        // The clients' CPU: summed (time and cores), bound when any shard's client was;
        // unknown unless every shard said.
        let mut cpu = Some(ClientCpu {
            cpu_ms: 0,
            cores: 0,
            bound: false,
        });
        let mut ended_ns = 0u64;
        for (k, path) in self.paths.iter().enumerate() {
            let wrap = |source| Error::Log {
                path: path.clone(),
                source,
            };
            let mut reader = LogReader::open(path).map_err(wrap)?;
            let off = self.offsets_ns[k];
            for r in reader.by_ref() {
                let mut r = r.map_err(wrap)?;
                if !seen.insert(r.id) {
                    return Err(duplicate(self, r.id, path));
                }
                rebase(&mut r, off);
                sink(r)?;
            }
            match reader.end().expect("reader exhausted") {
                LogEnd::Trailer(t) => {
                    all_complete &= t.complete;
                    cpu = cpu.zip(client_cpu(t)).map(|(a, b)| ClientCpu {
                        cpu_ms: a.cpu_ms.saturating_add(b.cpu_ms),
                        cores: a.cores.saturating_add(b.cores),
                        bound: a.bound || b.bound,
                    });
                    ended_ns = ended_ns.max(t.ended_ns + off);
                }
                LogEnd::Truncated { partial_tail, .. } => {
                    all_trailers = false;
                    partial |= *partial_tail;
                }
            }
        }
        let records = seen.len() as u64;
        if !all_trailers {
            return Ok(LogEnd::Truncated {
                records,
                partial_tail: partial,
            });
        }
        let complete =
            all_complete && self.missing.is_empty() && records == self.key.total_requests;
        Ok(LogEnd::Trailer(LogTrailer {
            trailer: true,
            complete,
            record_count: records,
            ended_ns,
            crc32: 0,
            header_crc32: None,
            client_cpu_ms: cpu.map(|c| c.cpu_ms),
            client_cores: cpu.map(|c| c.cores),
            client_cpu_bound: cpu.map(|c| c.bound),
            trailer_crc32: None,
        }))
    }
}

impl ShardSet {
    /// The merged run in memory: the merged header, every shard's records re-based, and
    /// the merged end (as [`ShardSet::for_each_record`]).
    pub fn read(&self) -> Result<RunLog> {
        let mut records = Vec::with_capacity(self.key.total_requests.min(1 << 20) as usize);
        let end = self.for_each_record(|r| {
            records.push(r);
            Ok(())
        })?;
        Ok(RunLog {
            header: self.header.clone(),
            records,
            end,
        })
    }
}

/// The client's CPU a trailer recorded, when it did.
fn client_cpu(t: &LogTrailer) -> Option<ClientCpu> {
    Some(ClientCpu {
        cpu_ms: t.client_cpu_ms?,
        cores: t.client_cores?,
        bound: t.client_cpu_bound?,
    })
}

fn shard_index(h: &LogHeader) -> u32 {
    h.options.shard.as_ref().map_or(0, |s| s.index)
}

/// The error of an id met twice (which log held it first is searched for only then).
fn duplicate(set: &ShardSet, id: u64, second: &Path) -> Error {
    let first = set
        .paths
        .iter()
        .take_while(|p| p.as_path() != second)
        .find(|p| LogReader::open(p).is_ok_and(|r| r.flatten().any(|rec| rec.id == id)));
    Error::Invalid(match first {
        Some(first) => format!(
            "request {id} is in both {} and {}: these are not disjoint shards of one run",
            first.display(),
            second.display()
        ),
        None => format!("request {id} has two records in {}", second.display()),
    })
}

/// Refuses a header whose shard fields cannot be: a count of 0 or above
/// [`formats::MAX_SHARDS`] (a header once claimed 4,294,967,295 shards and the list of
/// missing ones ran out of memory), or an index not below the count.
fn check_shard_fields(logs: &[(PathBuf, LogHeader)]) -> Result<()> {
    for (path, h) in logs {
        let Some(s) = h.options.shard.as_ref() else {
            continue;
        };
        if s.count == 0 || s.count > formats::MAX_SHARDS || s.index >= s.count {
            return Err(Error::Invalid(format!(
                "{}: the header says shard {} of {}; a shard log needs 0 <= index < count <= {}",
                path.display(),
                s.index,
                s.count,
                formats::MAX_SHARDS
            )));
        }
    }
    Ok(())
}

/// Options with the per-shard fields cleared: what the shards of one run must share.
fn shared_options(o: &ReplayOptions) -> ReplayOptions {
    let mut o = o.clone();
    o.shard = None;
    o.start_at = None;
    o.warm_connections = None;
    o.server_metrics = None;
    o
}

fn check_agree(logs: &[(PathBuf, LogHeader)]) -> Result<()> {
    let (p0, h0) = &logs[0];
    for (p, h) in &logs[1..] {
        let what = if shared_options(&h.options) != shared_options(&h0.options) {
            Some("replay options")
        } else if h.backend.kind != h0.backend.kind
            || h.backend.model != h0.backend.model
            || h.backend.simulated != h0.backend.simulated
        {
            Some("backend, model or simulator")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::Invalid(format!(
                "{} and {} are shards of one run but disagree on their {what}",
                p0.display(),
                p.display()
            )));
        }
    }
    Ok(())
}

/// The merged run's header (see `formats/README.md`, `merged_from`); `merged_from`
/// itself is filled in by [`merge_logs`].
fn merged_header(headers: &[LogHeader], base: u64) -> LogHeader {
    let mut h = headers[0].clone();
    h.started_unix_ns = base;
    h.options.shard = None;
    h.host = distinct(headers.iter().map(|x| x.host.as_str()));
    h.backend.endpoint = distinct(headers.iter().map(|x| x.backend.endpoint.as_str()));
    let warm: Vec<_> = headers
        .iter()
        .filter_map(|x| x.options.warm_connections.as_ref())
        .collect();
    if let Some(first) = warm.first() {
        let mut w = (*first).clone();
        w.requested = warm.iter().map(|w| w.requested).sum();
        w.opened = warm.iter().map(|w| w.opened).sum();
        w.bounded = warm.iter().any(|w| w.bounded);
        w.elapsed_ns = warm.iter().map(|w| w.elapsed_ns).max().unwrap_or(0);
        h.options.warm_connections = Some(w);
    }
    h
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out.join(",")
}

/// Adds `off` to every time of `r` (all are ns since its log's start).
pub fn rebase(r: &mut LogRecord, off: u64) {
    if off == 0 {
        return;
    }
    r.scheduled_ns += off;
    for t in [
        &mut r.dispatched_ns,
        &mut r.connect_start_ns,
        &mut r.connect_ns,
        &mut r.sent_ns,
        &mut r.first_byte_ns,
        &mut r.end_ns,
        &mut r.first_reasoning_ns,
        &mut r.first_answer_ns,
        &mut r.first_tool_ns,
    ] {
        if let Some(t) = t.as_mut() {
            *t += off;
        }
    }
    for t in &mut r.events.t_ns {
        *t += off;
    }
}

/// What [`merge_logs`] wrote.
#[derive(Debug, Clone)]
pub struct MergeSummary {
    pub records: u64,
    pub complete: bool,
    pub shards: u32,
    /// The missing shards, named (`--allow-missing`).
    pub missing: Option<String>,
}

/// Merges the shard logs `paths` of one run into one ordinary log at `output`
/// (replacing it only with `overwrite`). Missing shards are an error unless
/// `allow_missing`; logs that are not shards, or of several runs, are errors.
pub fn merge_logs(
    paths: &[PathBuf],
    output: &Path,
    overwrite: bool,
    allow_missing: bool,
) -> Result<MergeSummary> {
    let mut logs = Vec::with_capacity(paths.len());
    for p in paths {
        let r = LogReader::open(p).map_err(|source| Error::Log {
            path: p.clone(),
            source,
        })?;
        if r.header().options.shard.is_none() {
            return Err(Error::Invalid(format!(
                "{}: not a shard log (its header has no options.shard)",
                p.display()
            )));
        }
        logs.push((p.clone(), r.header().clone()));
    }
    let (_, mut sets) = group(logs)?;
    if sets.len() != 1 {
        return Err(Error::Invalid(format!(
            "the logs are shards of {} different runs (trace, start instant or shard count differ): merge each run's on its own",
            sets.len()
        )));
    }
    let set = sets.pop().expect("one set");
    if let (Some(note), false) = (set.missing_note(), allow_missing) {
        return Err(Error::Invalid(format!(
            "{note}: give every shard's log, or --allow-missing"
        )));
    }
    write_merged(&set, output, overwrite)
}

fn write_merged(set: &ShardSet, output: &Path, overwrite: bool) -> Result<MergeSummary> {
    let mut header = set.header.clone();
    for (p, h) in set.paths.iter().zip(&set.headers) {
        let wrap = |source| Error::Log {
            path: p.clone(),
            source,
        };
        // A first pass, record by record (the header comes before the records).
        let mut reader = LogReader::open(p).map_err(wrap)?;
        let mut records = 0u64;
        for r in reader.by_ref() {
            r.map_err(wrap)?;
            records += 1;
        }
        let complete = matches!(reader.end(), Some(LogEnd::Trailer(t)) if t.complete);
        header.options.merged_from.push(MergedShard {
            index: shard_index(h),
            file: p
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into()),
            sha256: formats::sha256_file(p).map_err(wrap)?,
            host: h.host.clone(),
            started_unix_ns: h.started_unix_ns,
            records,
            complete,
        });
    }
    let out_err = |source| Error::Log {
        path: output.to_path_buf(),
        source,
    };
    let mut w = if overwrite {
        LogWriter::create(output, &header)
    } else {
        LogWriter::create_new(output, &header)
    }
    .map_err(out_err)?;
    let mut last_ns = 0u64;
    let end = set.for_each_record(|r| {
        last_ns = last_ns.max(r.end_ns.unwrap_or(r.scheduled_ns));
        w.write(&r).map_err(out_err)
    })?;
    // A shard log without a trailer has no end time: its last record's stands in.
    let (complete, ended_ns, client) = match &end {
        LogEnd::Trailer(t) => (t.complete, t.ended_ns, client_cpu(t)),
        LogEnd::Truncated { .. } => (false, last_ns, None),
    };
    let t = w
        .finish_with_client(complete, ended_ns, client)
        .map_err(out_err)?;
    Ok(MergeSummary {
        records: t.record_count,
        complete,
        shards: set.key.count,
        missing: set.missing_note(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::{BackendInfo, ReplayOptions, ShardInfo, TraceRef};

    fn header(index: u32, count: u32, started: u64) -> LogHeader {
        let options = ReplayOptions {
            shard: Some(ShardInfo {
                index,
                count,
                rule: "arrival-least-loaded-v1".into(),
                requests: 10,
                total_requests: 10 * count as u64,
            }),
            ..ReplayOptions::default()
        };
        let trace = TraceRef {
            name: "t".into(),
            sha256: "ab".into(),
            request_count: 10 * count as u64,
            spec: None,
        };
        let backend = BackendInfo {
            kind: "openai".into(),
            endpoint: format!("http://client{index}:8000"),
            model: None,
            simulated: None,
        };
        LogHeader::new(
            trace,
            backend,
            started,
            "test",
            format!("h{index}"),
            options,
        )
    }

    fn logs(hs: Vec<LogHeader>) -> Vec<(PathBuf, LogHeader)> {
        let n = hs.len();
        (0..n)
            .map(|i| PathBuf::from(format!("runs/r1-shard-{i}.msgpack")))
            .zip(hs)
            .collect()
    }

    #[test]
    fn shards_group_by_run_and_name_the_missing_ones() {
        let mut hs = vec![header(2, 4, 100), header(0, 4, 100), header(1, 4, 100)];
        hs.push(header(0, 2, 100)); // another run: another shard count
        let (single, sets) = group(logs(hs)).unwrap();
        assert!(single.is_empty());
        assert_eq!(sets.len(), 2);
        let four = sets.iter().find(|s| s.key.count == 4).unwrap();
        let order: Vec<u32> = four.headers.iter().map(shard_index).collect();
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(four.missing, vec![3]);
        assert_eq!(
            four.missing_note().unwrap(),
            "shard 3 of 4 missing (given: 0, 1, 2)"
        );
        assert_eq!(four.header.host, "h0,h1,h2");
        assert!(four.header.options.shard.is_none());
        assert_eq!(four.name(), "r1");
    }

    #[test]
    fn names_differing_inside_a_multibyte_character_do_not_panic() {
        let hs = vec![header(0, 2, 100), header(1, 2, 100)];
        let paths = ["runs/run-é.shard.msgpack", "runs/run-è.shard.msgpack"];
        let logs: Vec<(PathBuf, LogHeader)> = paths.iter().map(PathBuf::from).zip(hs).collect();
        let set = ShardSet::new(logs).unwrap();
        assert_eq!(set.name(), "run");
    }

    #[test]
    fn shards_that_disagree_are_refused() {
        let mut b = header(1, 2, 100);
        b.options.time_scale = 2.0;
        let e = ShardSet::new(logs(vec![header(0, 2, 100), b])).unwrap_err();
        assert!(
            e.to_string().contains("disagree on their replay options"),
            "{e}"
        );
        let e = ShardSet::new(logs(vec![header(1, 2, 100), header(1, 2, 100)])).unwrap_err();
        assert!(e.to_string().contains("are both shard 1"), "{e}");
    }

    #[test]
    fn times_are_rebased_onto_the_earliest_start() {
        let set = ShardSet::new(logs(vec![header(0, 2, 1_000), header(1, 2, 1_250)])).unwrap();
        assert_eq!(set.offsets_ns, vec![0, 250]);
        assert_eq!(set.header.started_unix_ns, 1_000);
        let mut r = LogRecord::not_sent(1, 10, 1, 1, false);
        r.end_ns = Some(20);
        r.events.push(15, 1);
        rebase(&mut r, 250);
        assert_eq!(
            (r.scheduled_ns, r.end_ns, r.events.t_ns[0]),
            (260, Some(270), 265)
        );
        assert_eq!(r.dispatched_ns, None);
    }
}
