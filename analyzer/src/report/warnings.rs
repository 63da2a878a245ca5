//! The warnings of one run (one line each, also printed on stderr): how its log ended
//! and was replayed, which requests did not count as asked, what could not be measured.

use formats::LogEnd;

use crate::load::runs::RunInfo;
use crate::metrics::options::{LatencyFrom, MetricOptions};
use crate::metrics::run_metrics::RunMetrics;
use crate::report::labels::fmt_qps;

/// Every warning about run `info` with metrics `m`, in a fixed order.
pub(crate) fn run_warnings(info: &RunInfo, m: &RunMetrics, opts: &MetricOptions) -> Vec<String> {
    let mut w = replay_warnings(info);
    w.extend(outcome_warnings(&info.id, m));
    w.extend(measurement_warnings(&info.id, m, opts));
    w
}

/// How the log ended, and the time scale it was replayed at.
fn replay_warnings(info: &RunInfo) -> Vec<String> {
    let id = &info.id;
    let mut w = Vec::new();
    if let LogEnd::Truncated { records, .. } = &info.end {
        w.push(format!(
            "run {id}: interrupted log without trailer, {records} records analysed"
        ));
    }
    // Replayed at time scale K against a simulator K times faster, a run offers the
    // trace's own rate in the profile's time: nothing to say.
    let scale = info.header.options.time_scale / info.dilation;
    if let Some(r) = info.header.options.offered_rate {
        w.push(format!(
            "run {id}: replayed at time scale {} to offer {} req/s (its table column)",
            formats::readable(info.header.options.time_scale),
            fmt_qps(r)
        ));
    } else if (scale - 1.0).abs() > 1e-9 {
        w.push(format!(
            "run {id}: replayed at time scale {}{}: its offered rate (table column) is the trace's rate times {}",
            info.header.options.time_scale,
            if info.dilation != 1.0 {
                format!(" against a simulator {} times faster", info.dilation)
            } else {
                String::new()
            },
            fmt_qps(scale)
        ));
    }
    w
}

/// Requests that failed, stopped early, ran over, or carry inferred counts.
fn outcome_warnings(id: &str, m: &RunMetrics) -> Vec<String> {
    let mut w = Vec::new();
    if m.requests > m.ok {
        let failed: Vec<String> = m
            .outcomes
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        w.push(format!(
            "run {id}: {} of {} requests did not succeed ({})",
            m.requests - m.ok,
            m.requests,
            failed.join(", ")
        ));
    }
    if m.early_stops > 0 {
        w.push(format!(
            "run {id}: {} requests stopped early (output < max_tokens): requested-token throughput {} vs {} with {} counts",
            m.early_stops,
            m.throughput_requested_tok_s
                .map_or("-".into(), |v| format!("{v:.2}")),
            m.throughput_tok_s.map_or("-".into(), |v| format!("{v:.2}")),
            m.output_tokens_source.name()
        ));
    }
    if m.over_length > 0 {
        w.push(format!(
            "run {id}: {} requests produced more tokens than max_tokens",
            m.over_length
        ));
    }
    for (flag, n) in &m.count_flags {
        w.push(format!("run {id}: {n} {}", count_flag_note(flag)));
    }
    w
}

/// What the run's records could not measure under the options.
fn measurement_warnings(id: &str, m: &RunMetrics, opts: &MetricOptions) -> Vec<String> {
    let mut w = Vec::new();
    if opts.latency_from == LatencyFrom::Sent && m.sent_missing > 0 {
        w.push(format!(
            "run {id}: {} of {} ok requests have no sent_ns (a log from before it was \
             recorded): their latencies are measured from dispatch",
            m.sent_missing, m.ok
        ));
    }
    if m.reasoning.without_answer > 0 {
        w.push(format!(
            "run {id}: {} of {} reasoning requests ended before any answer text (the length \
             limit hit while reasoning?): they have no time to first answer token",
            m.reasoning.without_answer, m.reasoning.requests
        ));
    }
    if m.tokens.server_fallbacks > 0 {
        w.push(format!(
            "run {id}: {} requests had no server token count; their client count was used",
            m.tokens.server_fallbacks
        ));
    }
    if !m.streamed {
        w.push(format!(
            "run {id}: not streamed: TTFT, TPOT and ITL are not measured"
        ));
        if opts
            .slo
            .is_some_and(|s| s.ttft_s.is_some() || s.tpot_s.is_some())
        {
            w.push(format!(
                "run {id}: goodput not computed: its SLO checks TTFT/TPOT, which need a stream"
            ));
        }
    }
    if m.ok > 0 && m.duration_s.is_none() {
        w.push(format!(
            "run {id}: no measurable duration: throughput is undefined"
        ));
    }
    w
}

/// What `n` records carrying a `count_flags` flag mean (after "run X: n "), in the
/// words of `formats/README.md`.
fn count_flag_note(flag: &str) -> String {
    match flag {
        "events_lost" => "records counted by contract after lost events (events_lost: fewer \
                          stream events than the tokens ignore_eos guarantees, as LightLLM \
                          drops them under load; counted as max_tokens)"
            .into(),
        "capped_at_max_model_len" => "records with an assumed count capped at max_model_len \
                                      - prompt + 1 (capped_at_max_model_len, vLLM legacy)"
            .into(),
        "prompt_only" => "records answered with the prompt alone (prompt_only: 0 tokens, ok; \
                          the prompt was over the server's limits or the first token was EOS)"
            .into(),
        other => format!("records flagged {other} (count_flags)"),
    }
}
