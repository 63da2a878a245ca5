//! What the soak runs: the trace spec and the exact `llmib sim` / `llmib replay`
//! arguments, derived from the command line in one place.
//!
//! Why this shape: small prompts (8-64 tokens) and outputs (8-24 tokens) from the
//! `null` profile keep the run about request handling (connections, records, faults),
//! not token throughput. The fault budget is split over every kind the simulator offers:
//! a fifth each to 429, 500, 503 and mid-stream disconnects, a tenth each to stalls and
//! slow first bytes (these hold a connection for a second, so they are rarer).

use std::path::Path;
use std::time::Duration;

use simulator::Faults;

/// Pause of a stall fault and delay of a slow-first-byte fault.
pub const FAULT_PAUSE_MS: u64 = 1000;

pub struct Plan {
    pub requests: u64,
    pub rate: f64,
    /// `constant` or `poisson`.
    pub arrival: String,
    /// Simulator dialect = replay backend: tgi, vllm, lightllm or openai.
    pub dialect: String,
    /// Share of requests with an injected fault.
    pub fault_rate: f64,
    pub seed: u64,
}

impl Plan {
    pub fn faults(&self) -> Faults {
        let f = self.fault_rate;
        Faults {
            http_429: f / 5.0,
            http_500: f / 5.0,
            http_503: f / 5.0,
            disconnect: f / 5.0,
            stall: f / 10.0,
            stall_ms: FAULT_PAUSE_MS,
            slow_first_byte: f / 10.0,
            slow_first_byte_ms: FAULT_PAUSE_MS,
            // TGI's alone; the soak serves every dialect alike.
            generation_error: 0.0,
        }
    }

    /// The trace's nominal length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.requests as f64 / self.rate)
    }

    /// The generator spec (TOML, see generator/README.md).
    pub fn spec(&self) -> String {
        format!(
            "name = \"soak\"\nseed = {}\nrequests = {}\nignore_eos = true\n\n\
             [prompt_tokens]\ndist = \"uniform\"\nlo = 8\nhi = 64\n\n\
             [output_tokens]\ndist = \"uniform\"\nlo = 8\nhi = 24\n\n\
             [arrival]\nprocess = \"{}\"\nrate = {}\n",
            self.seed, self.requests, self.arrival, self.rate
        )
    }

    pub fn sim_args(&self, truth: &Path) -> Vec<String> {
        let f = self.faults();
        let mut args: Vec<String> = vec![
            "--dialect".into(),
            self.dialect.clone(),
            "--profile".into(),
            "null".into(),
            "--truth-log".into(),
            truth.display().to_string(),
            "--seed".into(),
            self.seed.to_string(),
        ];
        for (flag, value) in [
            ("--fault-429", f.http_429),
            ("--fault-500", f.http_500),
            ("--fault-503", f.http_503),
            ("--fault-disconnect", f.disconnect),
            ("--fault-stall", f.stall),
            ("--fault-slow-first-byte", f.slow_first_byte),
        ] {
            args.extend([flag.to_string(), value.to_string()]);
        }
        args.extend([
            "--stall-ms".into(),
            f.stall_ms.to_string(),
            "--slow-first-byte-ms".into(),
            f.slow_first_byte_ms.to_string(),
        ]);
        args
    }

    pub fn replay_args(&self, trace: &Path, url: &str, log: &Path) -> Vec<String> {
        vec![
            trace.display().to_string(),
            "--backend".into(),
            self.dialect.clone(),
            "--endpoint".into(),
            url.into(),
            "-o".into(),
            log.display().to_string(),
            "-q".into(),
        ]
    }
}
