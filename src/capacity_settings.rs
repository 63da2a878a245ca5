//! The flags of `llmib sweep` and `llmib search` that shape every replay, and where the
//! replays go: read by the capacity session (`capacity.rs`) and by the checks of its
//! output directory (`capacity_dir.rs`), so it lives apart from both.

use std::path::PathBuf;
use std::time::Duration;

use replayer::BackendKind;

/// Where the replays go.
#[derive(Debug, Clone)]
pub enum CapacityTarget {
    /// A real server.
    Endpoint(String),
    /// The embedded simulator, started in-process on a free loopback port.
    Simulated {
        profile: String,
        /// `K` of `--speedup K` (>= 1).
        speedup: f64,
    },
    /// No server: the profile's engine model runs every replay in virtual time and
    /// writes its run log (`--profile` without `--endpoint`; `simulator::virtual_run`).
    Twin { profile: String },
}

/// The flags of a capacity command that shape every replay.
#[derive(Debug, Clone)]
pub struct CapacitySettings {
    pub trace: PathBuf,
    pub backend: BackendKind,
    pub target: CapacityTarget,
    /// Directory of the run logs and the manifest.
    pub dir: PathBuf,
    pub model: Option<String>,
    pub concurrency: Option<u32>,
    /// Per-request timeout, profile seconds.
    pub timeout: Option<Duration>,
    /// Replay at most the first N requests of the trace.
    pub max_requests: Option<u64>,
    /// Stop dispatching after this long (profile time).
    pub duration: Option<Duration>,
    /// Cool-down between runs (wall time).
    pub pause: Duration,
    /// Replay even runs whose logs are complete.
    pub force: bool,
    /// Progress (ours and the replayer's bars) on stderr, when it is a terminal.
    pub progress: bool,
    pub api_key: Option<String>,
    pub tls: replayer::TlsOptions,
    pub pool_idle_timeout: Option<Duration>,
    /// Drop the server's prefix cache before every run (the default;
    /// `--no-reset-prefix-cache` turns it off): every rate starts from the same, empty
    /// cache instead of the one the earlier rates warmed with the same prompts.
    pub reset_prefix_cache: bool,
}

impl CapacitySettings {
    /// `K`: 1 for a real server.
    pub fn speedup(&self) -> f64 {
        match self.target {
            CapacityTarget::Simulated { speedup, .. } => speedup,
            CapacityTarget::Endpoint(_) | CapacityTarget::Twin { .. } => 1.0,
        }
    }

    /// The settings recorded in a manifest.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "concurrency": self.concurrency,
            "timeout_s": self.timeout.map(|d| d.as_secs_f64()),
            "max_requests": self.max_requests,
            "duration_s": self.duration.map(|d| d.as_secs_f64()),
            "pause_s": self.pause.as_secs_f64(),
            "reset_prefix_cache": self.reset_prefix_cache,
        })
    }
}
