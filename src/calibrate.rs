//! `llmib calibrate`: an engine profile fitted to run logs of one real server (a twin the
//! simulator serves and `predict`, `sweep` and `search` can run on), and, with
//! `--holdout`, how well it predicts logs it was not fitted to.
//!
//! This module gathers what the fit needs from the logs: that they are of one server
//! (the identity each log recorded: kind, version, models, KV-cache settings), the
//! server's capacity facts (block size and KV blocks from vLLM's `cache_config_info`, the
//! context limit from `/v1/models`; the scheduler's `--max-num-seqs` and
//! `--max-num-batched-tokens`, which no endpoint reports, from flags), and each log's
//! requests and times (`simulator::fit::observe`). The fit itself is
//! `simulator::fit::calibrate`.

use std::path::PathBuf;

use formats::{RunLog, ServerIdentity};
use simulator::Policy;
use simulator::fit::profile_toml::{LogSource, Provenance};
use simulator::fit::{Fit, FitOptions, Load, LoadErrors};
use simulator::profile::EngineParams;

/// What to fit, as the command line gives it.
#[derive(Debug, Clone)]
pub struct CalibrateSpec {
    pub logs: Vec<PathBuf>,
    pub holdout: Vec<PathBuf>,
    pub policy: Policy,
    pub facts: FactFlags,
    pub max_evals: u32,
    /// The profile's name (default: the model's, with `-twin`).
    pub name: Option<String>,
}

/// The server's limits as flags; each overrides what the logs report.
#[derive(Debug, Clone, Default)]
pub struct FactFlags {
    pub max_num_seqs: Option<u32>,
    pub max_num_batched_tokens: Option<u64>,
    pub block_size: Option<u32>,
    pub num_gpu_blocks: Option<u64>,
    pub max_model_len: Option<u32>,
}

/// One held-out log's finished requests, seconds: `[measured, predicted]` per metric.
#[derive(Debug, Clone)]
pub struct HoldoutSamples {
    pub name: String,
    pub ttft: [Vec<f64>; 2],
    pub e2e: [Vec<f64>; 2],
}

impl HoldoutSamples {
    fn of(load: &Load, predicted: &[simulator::fit::Times]) -> HoldoutSamples {
        let mut s = HoldoutSamples {
            name: load.name.clone(),
            ttft: Default::default(),
            e2e: Default::default(),
        };
        for (m, p) in load.measured.iter().zip(predicted) {
            if let Some(m) = m {
                s.ttft[0].push(m.ttft_ns / 1e9);
                s.ttft[1].push(p.ttft_ns / 1e9);
                s.e2e[0].push(m.e2e_ns / 1e9);
                s.e2e[1].push(p.e2e_ns / 1e9);
            }
        }
        s
    }
}

/// vLLM's `--max-num-seqs` default.
pub const DEFAULT_MAX_NUM_SEQS: u32 = 256;
/// vLLM V1's `--max-num-batched-tokens` default for an online server.
pub const DEFAULT_MAX_NUM_BATCHED_TOKENS: u64 = 2048;

/// The fit, its profile text, and the held-out logs' errors.
#[derive(Debug, Clone)]
pub struct Calibrated {
    pub fit: Fit,
    pub profile: String,
    pub holdout: Vec<LoadErrors>,
    /// Per held-out log, the requests it finished: measured and predicted samples.
    pub holdout_samples: Vec<HoldoutSamples>,
    /// Held-out logs that repeat one run (same trace, time scale, request count and
    /// duration), by index into `holdout`: where the server's own spread is measured.
    pub repeats: Vec<Vec<usize>>,
    /// Which facts came from flags' defaults (to be said).
    pub defaults_used: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{path}: {message}")]
    Log { path: PathBuf, message: String },
    #[error(transparent)]
    Observe(#[from] simulator::fit::ObserveError),
    #[error("the logs are of different servers: {a} says `{a_says}`, {b} says `{b_says}`")]
    DifferentServers {
        a: String,
        a_says: String,
        b: String,
        b_says: String,
    },
    #[error("{0}")]
    Facts(String),
}

/// A log read, with what names it.
struct Read {
    path: PathBuf,
    name: String,
    log: RunLog,
}

/// Fits `spec.logs`, then predicts `spec.holdout`.
pub fn calibrate(spec: &CalibrateSpec) -> Result<Calibrated, CalibrateError> {
    let fitted = read_all(&spec.logs)?;
    let held = read_all(&spec.holdout)?;
    let all: Vec<&Read> = fitted.iter().chain(&held).collect();
    same_server(&all)?;
    let (base, defaults_used) = facts(&fitted, &spec.facts)?;
    let loads = loads_of(&fitted)?;
    let options = FitOptions {
        policy: spec.policy,
        base,
        max_evals: spec.max_evals,
    };
    let fit = simulator::fit::calibrate(&loads, &options);
    let mut holdout = Vec::new();
    let mut holdout_samples = Vec::new();
    for l in loads_of(&held)? {
        let predicted = simulator::fit::predict(&fit.params, spec.policy, &l);
        let mut errors = simulator::fit::report::compare(&l, &predicted);
        let itl = simulator::fit::predict_itl(&fit.params, spec.policy, &l);
        errors
            .metrics
            .push(simulator::fit::report::itl_error(&l, itl));
        holdout.push(errors);
        holdout_samples.push(HoldoutSamples::of(&l, &predicted));
    }
    let repeats = repeat_groups(&held);
    let provenance = provenance(spec, &fitted, &fit)?;
    let profile = simulator::fit::profile_toml::profile_toml(&fit, spec.policy, &provenance);
    Ok(Calibrated {
        fit,
        profile,
        holdout,
        holdout_samples,
        repeats,
        defaults_used,
    })
}

/// Groups of two or more logs of one run repeated: the same trace at the same time
/// scale, request count and duration (indices into `reads`, in order).
fn repeat_groups(reads: &[Read]) -> Vec<Vec<usize>> {
    let key = |r: &Read| {
        let (h, o) = (&r.log.header, &r.log.header.options);
        format!(
            "{} {:e} {:?} {:?}",
            h.trace.sha256, o.time_scale, o.max_requests, o.duration_ms
        )
    };
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, r) in reads.iter().enumerate() {
        let k = key(r);
        match groups.iter_mut().find(|g| g.0 == k) {
            Some(g) => g.1.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    groups
        .into_iter()
        .map(|g| g.1)
        .filter(|g| g.len() > 1)
        .collect()
}

/// One metric's statistic over the repeats of one run: the measured values' mean and
/// spread, the predictions' mean, and whether the prediction is within the bound.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatCheck {
    pub metric: &'static str,
    /// 0: p50, 1: p90, 2: p99.
    pub at: usize,
    pub measured_mean: f64,
    /// (max − min) / min of the measured values.
    pub spread: f64,
    pub predicted_mean: f64,
    /// predicted_mean / measured_mean − 1.
    pub error: f64,
    /// max(`base`, 1.5 × spread): `base` 15% at p50, 25% at p90 and p99.
    pub bound: f64,
}

impl RepeatCheck {
    pub fn within(&self) -> bool {
        self.error.abs() <= self.bound
    }
}

/// The bound of a prediction's error at percentile index `at` when the server's own
/// spread is smaller: 15% at p50, 25% above (issue 23's must-hold).
pub fn base_bound(at: usize) -> f64 {
    if at == 0 { 0.15 } else { 0.25 }
}

/// Per metric and statistic, the repeats' check (see [`RepeatCheck`]).
pub fn repeat_checks(errors: &[&LoadErrors]) -> Vec<RepeatCheck> {
    let mut out = Vec::new();
    let Some(first) = errors.first() else {
        return out;
    };
    for (mi, m) in first.metrics.iter().enumerate() {
        for at in 0..3 {
            let measured: Vec<f64> = errors.iter().map(|e| e.metrics[mi].measured[at]).collect();
            let predicted: Vec<f64> = errors.iter().map(|e| e.metrics[mi].predicted[at]).collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let lo = measured.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = measured.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let spread = (hi - lo) / lo;
            let (measured_mean, predicted_mean) = (mean(&measured), mean(&predicted));
            out.push(RepeatCheck {
                metric: m.metric,
                at,
                measured_mean,
                spread,
                predicted_mean,
                error: predicted_mean / measured_mean - 1.0,
                bound: base_bound(at).max(1.5 * spread),
            });
        }
    }
    out
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Read>, CalibrateError> {
    paths
        .iter()
        .map(|p| {
            let log = formats::read_log(p).map_err(|e| CalibrateError::Log {
                path: p.clone(),
                message: e.to_string(),
            })?;
            // The path as given: repeats of one rate in several sweep directories have
            // the same file name.
            Ok(Read {
                path: p.clone(),
                name: p.display().to_string(),
                log,
            })
        })
        .collect()
}

fn loads_of(reads: &[Read]) -> Result<Vec<Load>, CalibrateError> {
    reads
        .iter()
        .map(|r| Ok(simulator::fit::load_of(&r.name, &r.log)?))
        .collect()
}

/// One line naming a server by what it said about itself ("" when it said nothing).
pub fn describe(id: Option<&ServerIdentity>) -> String {
    id.map(ServerIdentity::describe).unwrap_or_default()
}

/// Refuses logs whose servers described themselves differently (logs that recorded no
/// identity are not compared).
fn same_server(reads: &[&Read]) -> Result<(), CalibrateError> {
    let said: Vec<(&str, String)> = reads
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                describe(r.log.header.server_identity.as_ref()),
            )
        })
        .filter(|(_, d)| !d.is_empty())
        .collect();
    if let Some((b, b_says)) = said.iter().find(|(_, d)| *d != said[0].1) {
        return Err(CalibrateError::DifferentServers {
            a: said[0].0.to_string(),
            a_says: said[0].1.clone(),
            b: b.to_string(),
            b_says: b_says.clone(),
        });
    }
    Ok(())
}

/// The engine's capacity facts: flags first, then what the first log's server said,
/// then vLLM's defaults for the two that no endpoint reports (named in the result).
fn facts(reads: &[Read], f: &FactFlags) -> Result<(EngineParams, Vec<String>), CalibrateError> {
    let first = reads
        .first()
        .ok_or_else(|| CalibrateError::Facts("no run log to fit".into()))?;
    let id = first.log.header.server_identity.as_ref();
    let cache = |k: &str| {
        id.and_then(|i| i.cache_config.get(k))
            .map(|v| v.trim().to_string())
    };
    let num = |k: &str| cache(k).and_then(|v| v.parse::<u64>().ok());
    let missing = |flag: &str, what: &str| {
        CalibrateError::Facts(format!(
            "{what}: the logs' server did not report it; give {flag}"
        ))
    };
    let block_size = f
        .block_size
        .or(num("block_size").map(|v| v as u32))
        .ok_or_else(|| missing("--block-size", "the KV block size"))?;
    let blocks = f
        .num_gpu_blocks
        .or(num("num_gpu_blocks"))
        .ok_or_else(|| missing("--num-gpu-blocks", "the KV cache's blocks"))?;
    let mut defaults_used = Vec::new();
    let max_num_seqs = f.max_num_seqs.unwrap_or_else(|| {
        defaults_used.push(format!("--max-num-seqs {DEFAULT_MAX_NUM_SEQS}"));
        DEFAULT_MAX_NUM_SEQS
    });
    let budget = f.max_num_batched_tokens.unwrap_or_else(|| {
        defaults_used.push(format!(
            "--max-num-batched-tokens {DEFAULT_MAX_NUM_BATCHED_TOKENS}"
        ));
        DEFAULT_MAX_NUM_BATCHED_TOKENS
    });
    if block_size == 0 || blocks == 0 || max_num_seqs == 0 || budget == 0 {
        return Err(CalibrateError::Facts(
            "block size, KV blocks, --max-num-seqs and --max-num-batched-tokens must be > 0".into(),
        ));
    }
    let prefix = cache("enable_prefix_caching").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let params = EngineParams {
        kv_capacity_tokens: blocks * block_size as u64,
        max_batch_size: max_num_seqs,
        max_prefill_tokens: budget,
        block_size,
        watermark: 0.0,
        waiting_served_ratio: 1.2,
        max_waiting_tokens: 20,
        separate_prefill: false,
        prefill_base_us: 1000.0,
        prefill_per_token_us: 1.0,
        decode_base_us: 1000.0,
        decode_per_seq_us: 10.0,
        decode_per_ctx_token_us: 0.001,
        prefill_per_ctx_token_us: 0.001,
        prefix_cache: prefix,
    };
    Ok((params, defaults_used))
}

/// The profile's name, model, context limit and sources.
fn provenance(
    spec: &CalibrateSpec,
    reads: &[Read],
    fit: &Fit,
) -> Result<Provenance, CalibrateError> {
    let first = &reads[0].log.header;
    let id = first.server_identity.as_ref();
    let model_entry = id.and_then(|i| i.models.first());
    let model = model_entry
        .map(|m| m.id.clone())
        .or_else(|| first.backend.model.clone())
        .unwrap_or_else(|| "llmib-twin".into());
    let max_model_len = spec
        .facts
        .max_model_len
        .or(model_entry.and_then(|m| m.max_model_len).map(|v| v as u32))
        .or(first.options.max_model_len)
        .ok_or_else(|| {
            CalibrateError::Facts(
                "the context limit: the logs' server did not report it; give --max-model-len"
                    .into(),
            )
        })?;
    let mut logs = Vec::new();
    for r in reads {
        let sha256 = formats::sha256_file(&r.path).map_err(|e| CalibrateError::Log {
            path: r.path.clone(),
            message: e.to_string(),
        })?;
        logs.push(LogSource {
            file: r.name.clone(),
            sha256,
            trace_sha256: r.log.header.trace.sha256.clone(),
        });
    }
    let server = describe(id);
    // The description names the server briefly; `[calibration] server` has it all.
    let software: Vec<&str> = id
        .map(|i| [i.kind.as_deref(), i.version.as_deref()])
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let software = if software.is_empty() {
        "a server".to_string()
    } else {
        software.join(" ")
    };
    Ok(Provenance {
        name: spec.name.clone().unwrap_or_else(|| format!("{model}-twin")),
        description: format!(
            "twin of {software} serving {model}, fitted to {} run logs (loss {:.4})",
            reads.len(),
            fit.loss
        ),
        model,
        max_model_len,
        server,
        logs,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::fit::MetricError;

    fn errors(name: &str, measured_p50: f64, predicted_p50: f64) -> LoadErrors {
        LoadErrors {
            name: name.into(),
            requests: 10,
            metrics: vec![MetricError {
                metric: "e2e",
                measured: [measured_p50, 2.0, 3.0],
                predicted: [predicted_p50, 2.0, 3.0],
            }],
            throughput: [1.0, 1.0],
        }
    }

    /// Three repeats measured 1.0, 1.2 and 1.1 s (mean 1.1, spread 20%), predicted 1.3 s
    /// each: +18.2%, beyond 15% but within 1.5 x 20% = 30%. With repeats that agree,
    /// the same error is beyond the 15% bound.
    #[test]
    fn a_prediction_is_judged_against_the_mean_and_the_spread_of_the_repeats() {
        let runs = [
            errors("a", 1.0, 1.3),
            errors("b", 1.2, 1.3),
            errors("c", 1.1, 1.3),
        ];
        let checks = repeat_checks(&runs.iter().collect::<Vec<_>>());
        let p50 = &checks[0];
        assert_eq!((p50.metric, p50.at), ("e2e", 0));
        assert!((p50.measured_mean - 1.1).abs() < 1e-12);
        assert!((p50.spread - 0.2).abs() < 1e-12);
        assert!((p50.error - (1.3 / 1.1 - 1.0)).abs() < 1e-12);
        assert!((p50.bound - 0.3).abs() < 1e-12 && p50.within());
        // p90: no spread, no error; the bound is 25%.
        assert_eq!(
            (checks[1].spread, checks[1].error, checks[1].bound),
            (0.0, 0.0, 0.25)
        );
        let agree = [errors("a", 1.1, 1.3), errors("b", 1.1, 1.3)];
        let checks = repeat_checks(&agree.iter().collect::<Vec<_>>());
        assert!((checks[0].bound - 0.15).abs() < 1e-12 && !checks[0].within());
    }
}
