//! What `llmib sweep` and `llmib search` may do to their output directory (`-o DIR`).
//!
//! A capacity directory is one trace's runs against one target: its logs
//! (`rate-*.msgpack`), its manifest (`sweep.json`, `search.json`) and its analysis.
//! Running the same command again into it resumes it (complete runs are reused, an
//! interrupted one is replayed); anything else would destroy data silently, so:
//!
//! * a directory holding another trace's runs, or runs against another backend or
//!   target (manifest or logs), is refused before anything runs, unless `--force`
//!   ([`check_dir`]);
//! * a log about to be replayed over is replaced only when it is the same run
//!   (resuming) or an incomplete run of the same trace and target; any other file at
//!   its path is refused unless `--force` ([`check_replace`]);
//! * the directory a command created is removed again when it fails before writing
//!   anything into it ([`Created`]): an early error leaves no empty folder behind.
//!
//! Log names ([`RunNames`]) are unique per distinct rate: two rates that print alike at
//! four decimals (10.00001 and 10.00004) get different files.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use analyzer::capacity::manifest::{Manifest, SEARCH_MANIFEST, SWEEP_MANIFEST};
use formats::{LogEnd, LogHeader, SimulatedInfo};

use crate::capacity_settings::{CapacitySettings, CapacityTarget};
use crate::pipeline::PipelineError;

fn refuse(path: &Path, message: String) -> PipelineError {
    PipelineError::File {
        path: path.to_path_buf(),
        message,
    }
}

/// Whether a run recorded with `simulated` and `endpoint` ran against `target`.
fn same_target(target: &CapacityTarget, simulated: Option<&SimulatedInfo>, endpoint: &str) -> bool {
    match (target, simulated) {
        (CapacityTarget::Endpoint(e), None) => endpoint == formats::redact_url(e),
        (CapacityTarget::Simulated { profile, speedup }, Some(s)) => {
            !s.virtual_time && &s.profile == profile && s.speedup.unwrap_or(1.0) == *speedup
        }
        (CapacityTarget::Twin { profile }, Some(s)) => s.virtual_time && &s.profile == profile,
        _ => false,
    }
}

/// Whether a log header is a run of this trace, backend and target.
fn same_owner(h: &LogHeader, settings: &CapacitySettings, sha256: &str) -> bool {
    h.trace.sha256 == sha256
        && h.backend.kind == settings.backend.as_str()
        && same_target(
            &settings.target,
            h.backend.simulated.as_ref(),
            &h.backend.endpoint,
        )
}

/// What a run log or manifest belongs to, for messages.
fn whose(trace: &str, backend: &str, simulated: Option<&SimulatedInfo>, endpoint: &str) -> String {
    let target = match simulated {
        Some(s) if s.virtual_time => format!("the twin (profile {}, virtual time)", s.profile),
        Some(s) => match s.speedup {
            Some(k) => format!("the simulator (profile {}, speed-up {k})", s.profile),
            None => format!("the simulator (profile {})", s.profile),
        },
        None => endpoint.to_string(),
    };
    format!("trace {trace} on {backend} at {target}")
}

const ADVICE: &str = "use another -o DIR, or --force to replace its runs";

/// Refuses, before anything runs, a directory that holds another trace's (or another
/// target's) sweep or search: its manifest, or any run log in it. Nothing is checked
/// with `--force`, or when the directory does not exist yet.
pub fn check_dir(settings: &CapacitySettings, sha256: &str) -> Result<(), PipelineError> {
    let dir = &settings.dir;
    formats::OutputGuard::new(settings.force)
        .input(&settings.trace, "the trace")
        .check_dir(dir)
        .map_err(|e| PipelineError::Config(e.to_string()))?;
    if settings.force || !dir.is_dir() {
        return Ok(());
    }
    for name in [SWEEP_MANIFEST, SEARCH_MANIFEST] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let m = Manifest::read(&path)
            .map_err(|e| refuse(&path, format!("not a readable manifest ({e}); {ADVICE}")))?;
        let ours = m.trace.sha256 == sha256
            && m.backend == settings.backend.as_str()
            && same_target(&settings.target, m.simulated.as_ref(), &m.endpoint);
        if !ours {
            let who = whose(&m.trace.name, &m.backend, m.simulated.as_ref(), &m.endpoint);
            return Err(refuse(
                dir,
                format!("holds the {} of another run ({who}); {ADVICE}", m.kind),
            ));
        }
    }
    for log in logs_in(dir) {
        match formats::LogReader::open(&log) {
            Ok(r) if same_owner(r.header(), settings, sha256) => {}
            Ok(r) => {
                let h = r.header();
                let who = whose(
                    &h.trace.name,
                    &h.backend.kind,
                    h.backend.simulated.as_ref(),
                    &h.backend.endpoint,
                );
                return Err(refuse(&log, format!("is a run of another {who}; {ADVICE}")));
            }
            // Not a log: only a file where a run log would go is in the way.
            Err(e) if is_run_name(&log) => {
                return Err(refuse(&log, format!("is not a run log ({e}); {ADVICE}")));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// The regular `*.msgpack` files of `dir` (never opened otherwise: a FIFO would block).
fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "msgpack"))
        .collect();
    logs.sort();
    logs
}

fn is_run_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("rate-"))
}

/// Whether the file at `log` may be replayed over by a run of this trace and target
/// (it is not the same complete run: the caller reuses those). Nothing there, `--force`,
/// or an incomplete run of the same trace and target (an interrupted sweep being
/// resumed): yes. Anything else: refused, naming what is there.
pub fn check_replace(
    log: &Path,
    settings: &CapacitySettings,
    sha256: &str,
) -> Result<(), PipelineError> {
    formats::OutputGuard::new(true)
        .input(&settings.trace, "the trace")
        .check_replace(log)
        .map_err(|e| PipelineError::Config(e.to_string()))?;
    if settings.force || !log.exists() {
        return Ok(());
    }
    let run = formats::read_log(log)
        .map_err(|e| refuse(log, format!("is not a run log ({e}); {ADVICE}")))?;
    let complete = matches!(&run.end, LogEnd::Trailer(t) if t.complete);
    if same_owner(&run.header, settings, sha256) && !complete {
        return Ok(());
    }
    let h = &run.header;
    Err(refuse(
        log,
        format!(
            "holds another complete run ({} requests at time scale {}); {ADVICE}",
            h.options.max_requests.unwrap_or(h.trace.request_count),
            formats::readable(h.options.time_scale)
        ),
    ))
}

/// Log file stems of one command's runs, unique per distinct rate.
///
/// A rate's name is `rate-RRRRRRR.RRRR` (fixed width, four decimals: names sort by
/// rate), as before; when another rate of the same command already has that name (they
/// differ beyond the fourth decimal), the rate is written with as many decimals as it
/// takes to read it back exactly (at least five, so it never equals a four-decimal
/// name). The same rate always gets the same name, so identical rates are one run.
#[derive(Debug, Default)]
pub struct RunNames {
    /// Four-decimal names given so far, with their rate.
    short: Mutex<Vec<(String, f64)>>,
}

impl RunNames {
    /// The stem of the run at `rate`, repeat `repeat` (1 for the first).
    pub fn name(&self, rate: f64, repeat: u32) -> String {
        let short = format!("{rate:012.4}");
        let mut given = self.short.lock().unwrap_or_else(|e| e.into_inner());
        let base = match given.iter().find(|(n, _)| *n == short) {
            Some((_, r)) if *r != rate => precise(rate),
            Some(_) => short,
            None => {
                given.push((short.clone(), rate));
                short
            }
        };
        if repeat > 1 {
            format!("rate-{base}-{repeat}")
        } else {
            format!("rate-{base}")
        }
    }
}

/// `rate` fixed width with the fewest decimals (five or more) that read back exactly.
fn precise(rate: f64) -> String {
    for d in 5..=17 {
        let s = format!("{rate:0w$.d$}", w = 8 + d);
        if s.parse::<f64>() == Ok(rate) {
            return s;
        }
    }
    format!("{rate:e}")
}

/// The directory `-o DIR` and the part of it a command created: removed again when the
/// command fails before writing anything into it.
#[derive(Debug)]
pub struct Created {
    dir: PathBuf,
    /// The outermost missing ancestor of `dir` (or `dir` itself), before the command.
    top: Option<PathBuf>,
}

impl Created {
    /// Notes which part of `dir` does not exist yet (call before creating it).
    pub fn note(dir: &Path) -> Created {
        let mut top = None;
        let mut p = Some(dir);
        while let Some(d) = p {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            top = Some(d.to_path_buf());
            p = d.parent();
        }
        Created {
            dir: dir.to_path_buf(),
            top,
        }
    }

    /// Removes the directories created since [`Created::note`] that are still empty,
    /// innermost first (a directory holding anything is kept, and so are its parents).
    pub fn remove_if_empty(&self) {
        let Some(top) = &self.top else {
            return;
        };
        let mut p = Some(self.dir.as_path());
        while let Some(d) = p {
            if std::fs::remove_dir(d).is_err() || d == top {
                return;
            }
            p = d.parent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_rate_and_stable() {
        let n = RunNames::default();
        assert_eq!(n.name(10.00001, 1), "rate-0000010.0000");
        assert_eq!(n.name(10.00004, 1), "rate-0000010.00004");
        assert_eq!(n.name(10.0, 1), "rate-0000010.00000");
        assert_eq!(n.name(10.00001, 2), "rate-0000010.0000-2");
        assert_eq!(n.name(10.00004, 1), "rate-0000010.00004");
        assert_eq!(n.name(2.5, 1), "rate-0000002.5000");
        let third = 1.0 / 3.0;
        let s = n.name(third, 1);
        let m = n.name(third + 1e-12, 1);
        assert_ne!(s, m);
        let back: f64 = m.trim_start_matches("rate-").parse().unwrap();
        assert_eq!(back, third + 1e-12);
    }

    #[test]
    fn created_directories_are_removed_only_when_empty() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b/c");
        let c = Created::note(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        c.remove_if_empty();
        assert!(!d.path().join("a").exists());
        let c = Created::note(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("log"), b"x").unwrap();
        c.remove_if_empty();
        assert!(dir.join("log").exists());
        // An existing directory is never removed.
        std::fs::remove_file(dir.join("log")).unwrap();
        let c = Created::note(&dir);
        c.remove_if_empty();
        assert!(dir.exists());
    }
}
