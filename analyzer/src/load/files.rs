//! Which files a load reads: directories expanded, byte-identical copies dropped, and
//! the shard logs of one sharded run grouped into one unit (a merged log beside its
//! own shards counting each request once).

use std::path::PathBuf;

use formats::{FormatError, LogReader};

use crate::capacity::manifest::is_manifest_name;
use crate::error::{Error, Result};
use crate::merge::ShardSet;

/// True for a file that is simply not a run log (a trace, a JSON report...): skipped
/// when found in a directory, an error when named explicitly.
pub(crate) fn not_a_log(e: &Error) -> bool {
    matches!(
        e,
        Error::Log {
            source: FormatError::NotOurs(_) | FormatError::WrongKind { .. },
            ..
        }
    )
}

/// Expands directories (their regular files, non-recursive, sorted by name).
pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
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
pub(crate) fn drop_duplicates(files: &mut Vec<(PathBuf, bool)>) -> Result<Vec<String>> {
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
pub(crate) type Unit = (PathBuf, bool, Option<ShardSet>);

/// Groups the shard logs among `files` by run ([`crate::merge::group`]); each set takes
/// the place of its first file. Files whose header cannot be read stay as they are (the
/// load reports them). Shard logs given beside the log merged from them are left out,
/// with a warning each: the merged log counts their requests once
/// ([`crate::merge::merged_shards`]).
pub(crate) fn units(mut files: Vec<(PathBuf, bool)>) -> Result<(Vec<Unit>, Vec<String>)> {
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
