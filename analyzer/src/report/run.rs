//! One run's report: identity, placement in the tables, metrics and warnings.

use formats::{LogEnd, PrefixCacheReset, ServerIdentity, SimulatedInfo, TraceSpec};
use serde::Serialize;

use crate::load::runs::RunInfo;
use crate::metrics::rates::Rates;
use crate::metrics::run_metrics::{RunMetrics, Samples};
use crate::report::labels::{backend_display, simulated_label};

/// Where a run sits in the original benchmark's tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum Placement {
    /// Burst trace with an output cap: throughput table column `max {cap} tokens`.
    Throughput { cap: u32 },
    /// Trace with an arrival rate: latency table column `QPS={qps}`.
    Latency { qps: f64 },
    /// Not enough in the header to place it (no spec, or a burst without a cap).
    None,
}

/// One run: identity, placement and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: String,
    pub log: String,
    /// `tgi`, `vllm`, `lightllm`, `openai`, `openai-chat`.
    pub backend: String,
    /// Display name used in tables (`TGI`, `vLLM`...).
    pub backend_name: String,
    pub model: Option<String>,
    /// Set when the numbers come from llm-infer-bench's simulator, not a real server.
    pub simulated: Option<SimulatedInfo>,
    pub trace_name: String,
    pub trace_sha256: String,
    pub placement: Placement,
    /// The log ended with a verified trailer and the run was not stopped early.
    pub complete: bool,
    /// `trailer` or `truncated` (interrupted run, no trailer).
    pub log_end: &'static str,
    pub started_unix_ns: u64,
    /// Replay speed-up (`--time-scale`): arrival offsets were divided by it.
    pub time_scale: f64,
    /// The simulator's speed-up `K` the run's times were multiplied by when loaded
    /// ([`RunInfo::dilation`]; 1 when none).
    pub dilation: f64,
    pub warnings: Vec<String>,
    /// What the server said about itself before the run (log header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_identity: Option<ServerIdentity>,
    /// The prefix-cache reset before the run, when one was asked for (log header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_cache_reset: Option<PrefixCacheReset>,
    #[serde(flatten)]
    pub metrics: RunMetrics,
    #[serde(skip)]
    pub samples: Samples,
    /// Offered and achieved request rates (profile time when dilated), for the capacity curves.
    #[serde(skip)]
    pub rates: Rates,
}

impl RunReport {
    /// The report of run `info`: its identity and placement from the log header, its
    /// metrics, samples, rates and warnings as computed.
    pub(crate) fn new(
        info: &RunInfo,
        (metrics, samples): (RunMetrics, Samples),
        rates: Rates,
        warnings: Vec<String>,
    ) -> RunReport {
        let h = &info.header;
        RunReport {
            run: info.id.clone(),
            log: info.path.display().to_string(),
            backend: h.backend.kind.clone(),
            backend_name: backend_display(&h.backend.kind),
            model: h.backend.model.clone(),
            simulated: h.backend.simulated.clone(),
            trace_name: h.trace.name.clone(),
            trace_sha256: h.trace.sha256.clone(),
            placement: placement(info),
            complete: info.complete(),
            log_end: match info.end {
                LogEnd::Trailer(_) => "trailer",
                LogEnd::Truncated { .. } => "truncated",
            },
            started_unix_ns: h.started_unix_ns,
            time_scale: h.options.time_scale,
            dilation: info.dilation,
            warnings,
            server_identity: h.server_identity.clone(),
            prefix_cache_reset: h.prefix_cache_reset.clone(),
            metrics,
            samples,
            rates,
        }
    }

    /// Row label of the run's backend in tables.
    pub fn row_label(&self) -> String {
        simulated_label(
            &self.backend_name,
            self.simulated.as_ref(),
            &[self.dilation],
        )
    }
}

/// A synthetic burst trace goes to the throughput table (column: its output cap), a
/// synthetic trace with an arrival rate to the latency table (column: the rate). An
/// imported production trace (Azure) has neither shape: per-run table only. A run of a
/// sweep or search (any trace) goes to the latency table under the rate it was asked
/// to offer (`options.offered_rate`): the spec's rate times the time scale is not it,
/// as the scale was chosen from the rate of the requests replayed, not the spec's.
fn placement(info: &RunInfo) -> Placement {
    let asked = info
        .header
        .options
        .offered_rate
        .filter(|r| r.is_finite() && *r > 0.0);
    if let Some(qps) = asked {
        return Placement::Latency { qps };
    }
    match &info.header.trace.spec {
        Some(spec @ TraceSpec::Synthetic(s)) => match (s.arrival.rate(), spec.output_cap()) {
            // The replayer's --time-scale divides arrival offsets: the offered rate
            // is the trace's rate times the scale, in the profile's time divided by
            // the simulator's speed-up.
            (Some(q), _) => Placement::Latency {
                qps: q * info.header.options.time_scale / info.dilation,
            },
            (None, Some(cap)) => Placement::Throughput { cap },
            (None, None) => Placement::None,
        },
        _ => Placement::None,
    }
}
