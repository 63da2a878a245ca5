//! A fitted profile as TOML text (the schema of `simulator/README.md`, plus `scheduler`
//! and a `[calibration]` provenance table), written by hand so that the same fit always
//! gives the same bytes: keys in a fixed order, floats in Rust's shortest round-trip
//! form.

use std::fmt::Write;

use crate::fit::Fit;
use crate::profile::Policy;

/// What the profile says besides the engine: its name, the served model and its
/// context limit, and where the fit came from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub name: String,
    pub description: String,
    pub model: String,
    /// The server's context limit (`max_model_len`), tokens.
    pub max_model_len: u32,
    /// The server's identity as the logs recorded it (one line).
    pub server: String,
    /// One entry per log fitted: file name, the log's and its trace's sha256.
    pub logs: Vec<LogSource>,
    pub tool_version: String,
}

/// One log the fit read.
#[derive(Debug, Clone, Default)]
pub struct LogSource {
    pub file: String,
    pub sha256: String,
    pub trace_sha256: String,
}

/// The profile's TOML text.
pub fn profile_toml(fit: &Fit, policy: Policy, p: &Provenance) -> String {
    let e = &fit.params;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Fitted by `llmib calibrate` (llm-infer-bench {}) to {} run log(s) of one server.",
        p.tool_version,
        p.logs.len()
    );
    let _ = writeln!(t, "name = {}", quoted(&p.name));
    let _ = writeln!(t, "description = {}", quoted(&p.description));
    let _ = writeln!(t, "model = {}", quoted(&p.model));
    let _ = writeln!(
        t,
        "max_input_length = {}",
        p.max_model_len.saturating_sub(1)
    );
    let _ = writeln!(t, "max_total_tokens = {}", p.max_model_len);
    let _ = writeln!(t, "eos_probability = 0.0");
    let _ = writeln!(t, "scheduler = {}", quoted(&policy.to_string()));
    let _ = writeln!(t, "\n[engine]");
    let _ = writeln!(t, "kv_capacity_tokens = {}", e.kv_capacity_tokens);
    let _ = writeln!(t, "max_batch_size = {}", e.max_batch_size);
    let _ = writeln!(t, "max_prefill_tokens = {}", e.max_prefill_tokens);
    let _ = writeln!(t, "block_size = {}", e.block_size);
    let _ = writeln!(t, "watermark = {:?}", e.watermark);
    let _ = writeln!(t, "separate_prefill = {}", e.separate_prefill);
    let _ = writeln!(t, "prefix_cache = {}", e.prefix_cache);
    for (k, v) in [
        ("prefill_base_us", e.prefill_base_us),
        ("prefill_per_token_us", e.prefill_per_token_us),
        ("decode_base_us", e.decode_base_us),
        ("decode_per_seq_us", e.decode_per_seq_us),
        ("decode_per_ctx_token_us", e.decode_per_ctx_token_us),
        ("prefill_per_ctx_token_us", e.prefill_per_ctx_token_us),
    ] {
        let _ = writeln!(t, "{k} = {v:?}");
    }
    provenance(&mut t, fit, p);
    t
}

/// The `[calibration]` table: the fit, the server, and per log its sources and errors.
fn provenance(t: &mut String, fit: &Fit, p: &Provenance) {
    let _ = writeln!(t, "\n[calibration]");
    let _ = writeln!(t, "server = {}", quoted(&p.server));
    let _ = writeln!(t, "loss = {:?}", fit.loss);
    let _ = writeln!(t, "evaluations = {}", fit.evaluations);
    for (src, err) in p.logs.iter().zip(&fit.errors) {
        let _ = writeln!(t, "\n[[calibration.logs]]");
        let _ = writeln!(t, "file = {}", quoted(&src.file));
        let _ = writeln!(t, "sha256 = {}", quoted(&src.sha256));
        let _ = writeln!(t, "trace_sha256 = {}", quoted(&src.trace_sha256));
        let _ = writeln!(t, "requests = {}", err.requests);
        let _ = writeln!(
            t,
            "throughput_error = {:?} # output tokens/s, predicted / measured - 1",
            round6(err.throughput_error())
        );
        for m in &err.metrics {
            let r = m.relative();
            let _ = writeln!(
                t,
                "{}_error = [{:?}, {:?}, {:?}] # predicted / measured - 1 at p50, p90, p99",
                m.metric,
                round6(r[0]),
                round6(r[1]),
                round6(r[2])
            );
        }
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{LoadErrors, MetricError};
    use crate::profile::Profile;

    #[test]
    fn a_fitted_profile_reads_back_as_the_same_engine_and_policy() {
        let params = Profile::builtin("tiny")
            .unwrap()
            .engine(Policy::Vllm)
            .unwrap()
            .clone();
        let fit = Fit {
            params: params.clone(),
            loss: 0.0123,
            evaluations: 42,
            errors: vec![LoadErrors {
                name: "a".into(),
                requests: 3,
                metrics: vec![MetricError {
                    metric: "ttft",
                    measured: [1.0, 2.0, 3.0],
                    predicted: [1.1, 2.0, 2.7],
                }],
                throughput: [100.0, 90.0],
            }],
        };
        let prov = Provenance {
            name: "twin \"a\"".into(),
            description: "line\nbreak".into(),
            model: "m".into(),
            max_model_len: 2048,
            server: "vllm 0.32.0".into(),
            logs: vec![LogSource {
                file: "run.msgpack".into(),
                sha256: "ab".into(),
                trace_sha256: "cd".into(),
            }],
            tool_version: "0.1.0".into(),
        };
        let text = profile_toml(&fit, Policy::VllmV1, &prov);
        let back = Profile::parse(&text, "fitted").unwrap();
        assert_eq!(back.engine(Policy::VllmV1), Some(&params));
        assert_eq!(back.scheduler, Some(Policy::VllmV1));
        assert_eq!(back.name(), "twin \"a\"");
        assert!(text.contains("ttft_error = [0.1, 0.0, -0.1]"), "{text}");
    }
}
