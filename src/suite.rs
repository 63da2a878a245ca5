//! Suite files: which traces to replay against which backend, and how.
//!
//! A suite is the unit users share besides traces: `benchmark_configs/*.toml` holds one per
//! backend and benchmark of the original study. Trace paths are relative to the suite
//! file, so a suite works from any current directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A parsed suite file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Suite name: names the `runs/<name>/` and `results/<name>/` directories.
    pub name: String,
    /// One line on what the suite measures.
    #[serde(default)]
    pub description: String,
    /// `tgi`, `vllm`, `lightllm`, `openai` or `openai-chat`.
    pub backend: String,
    /// Base URL of a real server; without one (or with `--simulate`) the suite runs on the
    /// embedded simulator.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Model name sent to OpenAI-compatible servers.
    #[serde(default)]
    pub model: Option<String>,
    /// Traces to replay, in order; relative paths are relative to the suite file.
    pub traces: Vec<PathBuf>,
    #[serde(default)]
    pub replay: SuiteReplay,
    #[serde(default)]
    pub simulator: SuiteSimulator,
}

/// Replay options of a suite (the `llmib replay` flags of the same names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuiteReplay {
    pub stream: bool,
    pub concurrency: Option<u32>,
    /// Keep-alive connections opened before each replay's clock starts (`--connections`);
    /// unset: the replayer's default (the concurrency cap, else the trace's busiest
    /// second, bounded); 0: no warm-up.
    pub connections: Option<u32>,
    pub warmup: u32,
    /// Per-request timeout, seconds.
    pub timeout_s: Option<f64>,
    pub time_scale: f64,
    pub ignore_eos: bool,
    pub min_tokens: bool,
    pub stream_usage: bool,
    pub continuous_usage: bool,
    /// The server's context limit (`--max-model-len`): caps vLLM legacy's assumed counts.
    pub max_model_len: Option<u32>,
}

impl Default for SuiteReplay {
    fn default() -> Self {
        SuiteReplay {
            stream: true,
            concurrency: None,
            connections: None,
            warmup: 0,
            timeout_s: Some(3600.0),
            time_scale: 1.0,
            ignore_eos: true,
            min_tokens: false,
            stream_usage: true,
            continuous_usage: false,
            max_model_len: None,
        }
    }
}

/// How to simulate the backend when the suite runs without a real endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuiteSimulator {
    /// Simulator profile name or TOML file.
    pub profile: String,
    /// Simulator wire dialect; defaults to the backend's (`openai-chat` -> `openai`).
    pub dialect: Option<String>,
}

impl Default for SuiteSimulator {
    fn default() -> Self {
        SuiteSimulator {
            profile: "a800-llama2-13b".to_string(),
            dialect: None,
        }
    }
}

/// Backends a suite may name.
pub const BACKENDS: [&str; 9] = [
    "tgi",
    "vllm",
    "lightllm",
    "openai",
    "openai-chat",
    "sglang",
    "llamacpp",
    "openai-responses",
    "anthropic",
];

/// Errors of reading a suite file.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// Not readable, or over the spec-file size limit (`path: reason`).
    #[error("cannot read suite {0}")]
    Read(formats::FormatError),
    #[error("invalid suite {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Suite {
    /// Reads and validates a suite file; trace paths come back resolved against the file's
    /// directory.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let text =
            formats::read_input_utf8(path, formats::InputKind::SPEC).map_err(SuiteError::Read)?;
        let invalid = |message: String| SuiteError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut suite: Suite =
            toml::from_str(&text).map_err(|e| invalid(e.message().replace('\n', " ")))?;
        suite.validate().map_err(invalid)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for t in &mut suite.traces {
            if t.is_relative() {
                *t = base.join(&*t);
            }
        }
        Ok(suite)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "name {:?} must be non-empty and use only letters, digits, '-', '_', '.'",
                self.name
            ));
        }
        if !BACKENDS.contains(&self.backend.as_str()) {
            return Err(format!(
                "backend {:?} is not one of {}",
                self.backend,
                BACKENDS.join(", ")
            ));
        }
        if self.traces.is_empty() {
            return Err("`traces` is empty".into());
        }
        let r = &self.replay;
        if !(r.time_scale.is_finite() && r.time_scale > 0.0) {
            return Err(format!(
                "replay.time_scale must be > 0, got {}",
                r.time_scale
            ));
        }
        if let Some(t) = r.timeout_s
            && !(t.is_finite() && t > 0.0)
        {
            return Err(format!("replay.timeout_s must be > 0, got {t}"));
        }
        if r.concurrency == Some(0) {
            return Err("replay.concurrency must be >= 1".into());
        }
        Ok(())
    }

    /// The simulator dialect for this suite's backend.
    pub fn sim_dialect(&self) -> &str {
        match self.simulator.dialect.as_deref() {
            Some(d) => d,
            // vLLM's OpenAI server (the simulator's `openai`) serves chat, the Responses
            // and the Messages APIs too.
            None if matches!(
                self.backend.as_str(),
                "openai-chat" | "openai-responses" | "anthropic"
            ) =>
            {
                "openai"
            }
            None => &self.backend,
        }
    }

    /// File stem of a trace path (the run log's name).
    pub fn trace_stem(trace: &Path) -> String {
        trace
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "trace".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("s.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Every backend a suite may name is a replayer backend, and simulates with a
    /// simulator dialect of its own.
    #[test]
    fn every_backend_replays_and_simulates() {
        assert_eq!(BACKENDS.len(), replayer::BackendKind::ALL.len());
        for b in BACKENDS {
            let kind: replayer::BackendKind = b.parse().unwrap();
            assert_eq!(kind.as_str(), b);
            let text = format!("name = \"x\"\nbackend = \"{b}\"\ntraces = [\"a\"]");
            let dir = tempfile::tempdir().unwrap();
            let s = Suite::load(&write(dir.path(), &text)).unwrap();
            s.sim_dialect().parse::<simulator::Dialect>().unwrap();
        }
    }

    #[test]
    fn parses_and_resolves_relative_traces() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"
name = "tgi_latency"
backend = "tgi"
endpoint = "http://127.0.0.1:18080"
traces = ["../traces/latency-qps1.msgpack", "/abs/x.msgpack"]
[replay]
time_scale = 2.0
connections = 0
max_model_len = 4096
"#,
        );
        let s = Suite::load(&p).unwrap();
        assert_eq!(
            s.traces[0],
            dir.path().join("../traces/latency-qps1.msgpack")
        );
        assert_eq!(s.traces[1], PathBuf::from("/abs/x.msgpack"));
        assert_eq!(s.replay.time_scale, 2.0);
        assert_eq!(s.replay.connections, Some(0));
        assert_eq!(s.replay.max_model_len, Some(4096));
        assert!(s.replay.stream);
        assert_eq!(s.simulator.profile, "a800-llama2-13b");
        assert_eq!(s.sim_dialect(), "tgi");
    }

    #[test]
    fn shipped_suites_are_valid_and_name_committed_traces() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benchmark_configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Suite::load(&path).unwrap();
                assert_eq!(
                    format!("{}.toml", s.name),
                    path.file_name().unwrap().to_str().unwrap()
                );
                assert!(s.endpoint.is_some(), "{} has no default endpoint", s.name);
                for t in &s.traces {
                    assert!(t.exists(), "{} names missing trace {}", s.name, t.display());
                }
                n += 1;
            }
        }
        assert!(n >= 8, "expected the 8 shipped suites, found {n}");
    }

    #[test]
    fn rejects_bad_suites_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            (
                "name = \"x\"\nbackend = \"nope\"\ntraces = [\"a\"]",
                "backend",
            ),
            ("name = \"x\"\nbackend = \"tgi\"\ntraces = []", "traces"),
            (
                "name = \"a b\"\nbackend = \"tgi\"\ntraces = [\"a\"]",
                "name",
            ),
            (
                "name = \"x\"\nbackend = \"tgi\"\ntraces = [\"a\"]\n[replay]\ntime_scale = 0.0",
                "time_scale",
            ),
            (
                "name = \"x\"\nbackend = \"tgi\"\ntraces = [\"a\"]\ncolour = 1",
                "colour",
            ),
            ("name = ", "invalid"),
        ] {
            let err = Suite::load(&write(dir.path(), text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(
            Suite::load(&dir.path().join("missing.toml"))
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }
}
