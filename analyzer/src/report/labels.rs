//! How the tables name things: backends, simulated rows, rates, corner labels.

use formats::SimulatedInfo;

use crate::metrics::options::LatencyFrom;
use crate::stats::Stat;

/// `vLLM (simulated, PROFILE, x K)`: a backend's label, with its simulator profile and
/// the speed-ups its runs were dilated back from (`x 10` or `x 10-40`; none when 1).
pub fn simulated_label(backend_name: &str, sim: Option<&SimulatedInfo>, ks: &[f64]) -> String {
    let Some(s) = sim else {
        return backend_name.to_string();
    };
    let lo = ks.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ks.iter().copied().fold(1.0, f64::max);
    let k = if hi <= 1.0 {
        String::new()
    } else if lo == hi {
        format!(", x {}", fmt_qps(hi))
    } else {
        format!(", x {}-{}", fmt_qps(lo), fmt_qps(hi))
    };
    let virtual_time = if s.virtual_time { ", virtual time" } else { "" };
    format!("{backend_name} (simulated, {}{k}{virtual_time})", s.profile)
}

/// Display name of a backend kind, as in the original tables.
pub fn backend_display(kind: &str) -> String {
    match kind {
        "tgi" => "TGI".into(),
        "vllm" => "vLLM".into(),
        "lightllm" => "LightLLM".into(),
        "openai" => "OpenAI".into(),
        "openai-chat" => "OpenAI (chat)".into(),
        "openai-responses" => "OpenAI (Responses)".into(),
        "anthropic" => "Anthropic (Messages)".into(),
        "sglang" => "SGLang".into(),
        "llamacpp" | "llama.cpp" => "llama.cpp".into(),
        other => other.to_string(),
    }
}

/// Order of the original's rows (other backends after them).
pub(crate) fn backend_rank(kind: &str) -> usize {
    ["tgi", "vllm", "lightllm", "openai", "openai-chat"]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// Formats a rate as the original's column label number (`2`, `0.5`).
pub fn fmt_qps(q: f64) -> String {
    if q.fract() == 0.0 && q.abs() < 1e15 {
        format!("{}", q as i64)
    } else {
        let s = format!("{q:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Corner label of the throughput table (verbatim from the original).
pub const THROUGHPUT_CORNER: &str = "Throughput (token/s) vs. variance in length";

/// Corner label of the latency table for a statistic and origin.
pub fn latency_corner(stat: Stat, from: LatencyFrom) -> String {
    let from = match from {
        LatencyFrom::Dispatch => "",
        LatencyFrom::Sent => ", from send time",
        LatencyFrom::Scheduled => ", from scheduled time",
    };
    format!(
        "generation request latency vs. QPS: {} per-token (request), s{from}",
        stat.name()
    )
}
