//! The manifest of a capacity directory (`sweep.json` of `llmib sweep`, `search.json`
//! of `llmib search`): what was run, in which order, with which settings, and the
//! answer. Every key is documented in `analyzer/README.md` (*Capacity*).
//!
//! Why the analyzer owns it: `llmib analyze DIR` reads it back for the SLO lines of
//! the curve figures and skips it when scanning the directory for run logs; the logs
//! alone carry everything else (offered rates come from their records).

use std::path::{Path, PathBuf};

use formats::SimulatedInfo;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::slo::SloTargets;

/// File name of a sweep's manifest.
pub const SWEEP_MANIFEST: &str = "sweep.json";
/// File name of a search's manifest.
pub const SEARCH_MANIFEST: &str = "search.json";
/// `format` of a manifest.
pub const FORMAT: &str = "llmib-capacity";

/// True for a manifest's file name (skipped silently when scanning for run logs).
pub fn is_manifest_name(name: &str) -> bool {
    name == SWEEP_MANIFEST || name == SEARCH_MANIFEST
}

/// The trace a capacity run replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTrace {
    /// As given on the command line.
    pub path: String,
    pub name: String,
    pub sha256: String,
    pub requests: u64,
    /// Last arrival minus first, seconds.
    pub span_s: f64,
    /// requests / span_s: the trace's own rate.
    pub rate: f64,
}

/// One replay of the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRun {
    /// Offered rate asked, requests/s (profile time).
    pub rate: f64,
    /// The replayer's time scale (arrival offsets divided by it; speed-up included).
    pub time_scale: f64,
    /// Requests replayed: the first N of the trace.
    pub requests: u64,
    /// Run log, relative to the manifest's directory.
    pub log: String,
    /// Why the run was made: `rates` (listed), `probe` / `fill` (auto sweep), `bracket`
    /// / `bisect` / `repeat` / `grid` (search).
    pub phase: String,
    /// 1 for the first run at a rate, 2... for repeats.
    pub repeat: u32,
    /// The log ended with a verified trailer and the run was not stopped early.
    pub complete: bool,
    /// Auto sweep: the reason the run counts as saturated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated: Option<String>,
    /// Search: whether the run met every SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meets_slo: Option<bool>,
    /// Search: worst statistic / limit ratio over the targets (> 1 fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_ratio: Option<f64>,
}

/// A capacity directory's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Currently 1.
    pub version: u32,
    /// `sweep` or `search`.
    pub kind: String,
    pub trace: ManifestTrace,
    pub backend: String,
    /// Base URL of the server, or of the in-process simulator (`simulated` set).
    pub endpoint: String,
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<SimulatedInfo>,
    /// Simulator speed-up K (1 otherwise): rates and SLOs here are in profile time;
    /// each run's time scale is `rate x K / trace rate`.
    pub speedup: f64,
    /// The command's settings (flags), recorded to re-run it.
    pub settings: serde_json::Value,
    /// Search targets (or SLO lines of a sweep's figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloTargets>,
    /// Search: the least share of requests meeting the per-request SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
    /// Every run, in the order made.
    pub runs: Vec<ManifestRun>,
    /// The answer: the sweep's knee or the search's rate, bracket and noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The server's prefix cache between runs; absent in manifests written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<ManifestPrefixCache>,
}

/// Whether the runs of a capacity directory started from the same cache state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPrefixCache {
    /// `each_run`: a reset was asked for before every run (the default);
    /// `off`: never (`--no-reset-prefix-cache`).
    pub reset: String,
    /// How the resets went: `ok` when every one did, else the first other outcome of
    /// a run log's `prefix_cache_reset` (`refused`, `unsupported`, `failed`). Absent
    /// when off, or before the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The reset request of the first run that made one (e.g. `POST /reset_prefix_cache`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Later runs may have started with the cache the earlier ones warmed (the reset
    /// was off or did not happen): their cache states differ.
    pub warm_between_runs: bool,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = formats::read_input_utf8(path, formats::InputKind::MANIFEST)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        if m.format != FORMAT {
            return Err(Error::Invalid(format!(
                "{}: not a capacity manifest (format `{}`)",
                path.display(),
                m.format
            )));
        }
        Ok(m)
    }

    /// Writes the manifest atomically (a crash never leaves half of one).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
        text.push('\n');
        formats::write_atomic(path, text.as_bytes()).map_err(|e| Error::Log {
            path: path.to_path_buf(),
            source: e,
        })
    }

    /// The manifest of the first directory among `paths` that has one.
    pub fn find<P: AsRef<Path>>(paths: &[P]) -> Result<Option<(PathBuf, Manifest)>> {
        for dir in paths.iter().map(|p| p.as_ref()).filter(|p| p.is_dir()) {
            for name in [SWEEP_MANIFEST, SEARCH_MANIFEST] {
                let path = dir.join(name);
                if path.is_file() {
                    let m = Manifest::read(&path)?;
                    return Ok(Some((path, m)));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_manifest_is_refused_at_its_limit() {
        // /dev/zero never ends: the read stops at the kind's limit with one line.
        let e = Manifest::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/dev/zero") && e.contains("capacity manifest"),
            "{e}"
        );
    }

    #[test]
    fn round_trips_and_is_found_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            version: 1,
            kind: "search".into(),
            trace: ManifestTrace {
                path: "t.msgpack".into(),
                name: "t".into(),
                sha256: "ab".into(),
                requests: 10,
                span_s: 9.0,
                rate: 10.0 / 9.0,
            },
            backend: "vllm".into(),
            endpoint: "http://127.0.0.1:1".into(),
            model: None,
            simulated: None,
            speedup: 1.0,
            settings: serde_json::json!({"pause_s": 0.0}),
            slo: Some(SloTargets::parse("ttft_p99=0.5").unwrap()),
            goodput: None,
            runs: vec![],
            result: None,
            prefix_cache: None,
        };
        m.write(&dir.path().join(SEARCH_MANIFEST)).unwrap();
        let (path, back) = Manifest::find(&[dir.path()]).unwrap().unwrap();
        assert_eq!(path, dir.path().join(SEARCH_MANIFEST));
        assert_eq!(back, m);
        std::fs::write(dir.path().join(SEARCH_MANIFEST), "{\"format\":\"x\"}").unwrap();
        assert!(Manifest::find(&[dir.path()]).is_err());
    }
}
