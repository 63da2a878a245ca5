//! Speed profiles: what a simulated server can hold and how long its steps take.
//!
//! A profile is a TOML file (schema in `simulator/README.md`). Three ship inside the crate
//! (`include_str!`, so an installed binary needs no data files): `a800-llama2-13b`
//! (calibrated against the original benchmark's A800 tables), `tiny` (fast; tests and
//! demos) and `null` (no compute model at all: tokens as fast as the client reads them,
//! or at a fixed interval; for benchmarking clients).
//!
//! The `[engine]` table holds the cost model and limits shared by every scheduling policy;
//! `[policy.tgi]`, `[policy.vllm]`, `[policy.lightllm]` override any of its keys for one
//! policy, because the three servers of 2023 had different kernels and memory managers on
//! the same GPU and their measured speeds differ.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SimError;

const TINY: &str = include_str!("../profiles/tiny.toml");
const NULL: &str = include_str!("../profiles/null.toml");
const A800_13B: &str = include_str!("../profiles/a800-llama2-13b.toml");

/// Names of the profiles shipped with the crate.
pub const BUILTIN_PROFILES: [&str; 3] = ["tiny", "null", "a800-llama2-13b"];

/// Scheduling (admission) policy of the engine model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// TGI 1.0.2 router: reserve prompt + max_new_tokens per request, admit FCFS while the
    /// token budget allows, and only add to a running batch when enough requests can join
    /// (waiting-served ratio) or after `max_waiting_tokens` decode steps.
    Tgi,
    /// vLLM 0.1.x: paged KV blocks allocated as tokens grow; when a decode step needs a
    /// block and none is free, the newest running request is preempted and recomputed.
    Vllm,
    /// LightLLM (Aug 2023): admit only if the estimated peak of final tokens of the batch
    /// fits the KV capacity, so nothing is ever evicted.
    Lightllm,
    /// vLLM's V1 scheduler (0.8 and later; `engine/v1.rs`): one token budget per step
    /// (`max_prefill_tokens` = `--max-num-batched-tokens`) shared by the decodes and
    /// chunks of prefills, `max_batch_size` = `--max-num-seqs`, paged blocks with prefix
    /// caching, preemption by recomputation; every step mixes prefill and decode.
    #[serde(rename = "vllm-v1")]
    VllmV1,
}

impl Policy {
    /// Every policy, the 2023 ones first.
    pub const ALL: [Policy; 4] = [Policy::Tgi, Policy::Vllm, Policy::Lightllm, Policy::VllmV1];

    /// The policy manages paged KV blocks (and can cache prefixes): vLLM's two.
    pub fn pages_kv(self) -> bool {
        matches!(self, Policy::Vllm | Policy::VllmV1)
    }
}

impl std::str::FromStr for Policy {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s {
            "tgi" => Ok(Policy::Tgi),
            "vllm" => Ok(Policy::Vllm),
            "lightllm" => Ok(Policy::Lightllm),
            "vllm-v1" => Ok(Policy::VllmV1),
            other => Err(SimError::Config(format!(
                "unknown policy `{other}` (expected tgi, vllm, lightllm or vllm-v1)"
            ))),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Tgi => "tgi",
            Policy::Vllm => "vllm",
            Policy::Lightllm => "lightllm",
            Policy::VllmV1 => "vllm-v1",
        })
    }
}

/// Cost model and limits of the engine (one policy's resolved view).
///
/// Step time: `prefill_base_us + prefill_per_token_us * P + prefill_per_ctx_token_us * A /
/// 1000` when the step prefills `P` prompt tokens whose positions (tokens before each, cached
/// or computed) sum to `A`, plus `decode_base_us + decode_per_seq_us * B +
/// decode_per_ctx_token_us * C` when it decodes a batch of `B` requests holding `C` context
/// tokens in total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineParams {
    /// KV-cache capacity in tokens (TGI max-batch-total-tokens, LightLLM max_total_token_num,
    /// vLLM blocks * block_size).
    pub kv_capacity_tokens: u64,
    /// Most requests in one running batch (vLLM max_num_seqs, LightLLM running_max_req_size).
    pub max_batch_size: u32,
    /// Most prompt tokens prefilled in one step (TGI max-batch-prefill-tokens, vLLM
    /// max-num-batched-tokens, LightLLM batch_max_tokens).
    pub max_prefill_tokens: u64,
    /// vLLM KV block size in tokens.
    #[serde(default = "default_block_size")]
    pub block_size: u32,
    /// vLLM: fraction of blocks kept free when admitting (watermark).
    #[serde(default = "default_watermark")]
    pub watermark: f64,
    /// TGI: a running batch admits new requests only when at least
    /// `floor(batch * waiting_served_ratio)` can join ...
    #[serde(default = "default_wsr")]
    pub waiting_served_ratio: f64,
    /// ... or after this many decode steps without admission (TGI, LightLLM).
    #[serde(default = "default_max_waiting_tokens")]
    pub max_waiting_tokens: u32,
    /// A step either prefills or decodes (true: the 2023 servers) or does both at once.
    #[serde(default = "default_true")]
    pub separate_prefill: bool,
    pub prefill_base_us: f64,
    pub prefill_per_token_us: f64,
    pub decode_base_us: f64,
    pub decode_per_seq_us: f64,
    #[serde(default)]
    pub decode_per_ctx_token_us: f64,
    /// Per prefilled token, per 1,000 tokens before it in its prompt (cached or computed):
    /// a prompt chunk's attention over the prompt so far, which grows with the prompt
    /// and makes a suffix after a cached prefix dearer than the same tokens alone. V1
    /// policy only (the 2023 policies' steps leave it out); 0 by default and in the
    /// shipped 2023 profiles. Fitted by `llmib calibrate` (measured on a real vLLM: see
    /// `simulator/README.md`, *A twin of a real server*).
    #[serde(default)]
    pub prefill_per_ctx_token_us: f64,
    /// Automatic prefix caching (vLLM policy only; see `engine/prefix.rs`): full prompt blocks
    /// already in KV memory are reused and not prefilled again. Off by default: the 2023
    /// servers the calibrated profiles model had none.
    #[serde(default)]
    pub prefix_cache: bool,
}

fn default_block_size() -> u32 {
    16
}
fn default_watermark() -> f64 {
    0.01
}
fn default_wsr() -> f64 {
    1.2
}
fn default_max_waiting_tokens() -> u32 {
    20
}
fn default_true() -> bool {
    true
}

impl EngineParams {
    /// Duration of a step in ns.
    pub fn step_ns(
        &self,
        prefill_tokens: u64,
        prefill_positions: u64,
        decode_batch: u64,
        decode_ctx: u64,
    ) -> u64 {
        let mut us = 0.0;
        if prefill_tokens > 0 {
            us += self.prefill_base_us
                + self.prefill_per_token_us * prefill_tokens as f64
                + self.prefill_per_ctx_token_us * prefill_positions as f64 / 1000.0;
        }
        if decode_batch > 0 {
            us += self.decode_base_us
                + self.decode_per_seq_us * decode_batch as f64
                + self.decode_per_ctx_token_us * decode_ctx as f64;
        }
        (us * 1000.0).round().max(0.0) as u64
    }

    fn validate(&self, what: &str) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Profile(format!("{what}: {m}")));
        if self.kv_capacity_tokens == 0 {
            return bad("kv_capacity_tokens must be > 0");
        }
        if self.max_batch_size == 0 {
            return bad("max_batch_size must be > 0");
        }
        if self.max_prefill_tokens == 0 {
            return bad("max_prefill_tokens must be > 0");
        }
        if self.block_size == 0 {
            return bad("block_size must be > 0");
        }
        if !(0.0..1.0).contains(&self.watermark) {
            return bad("watermark must be in [0, 1)");
        }
        if self.waiting_served_ratio.is_nan() || self.waiting_served_ratio < 0.0 {
            return bad("waiting_served_ratio must be >= 0");
        }
        for (k, v) in [
            ("prefill_base_us", self.prefill_base_us),
            ("prefill_per_token_us", self.prefill_per_token_us),
            ("decode_base_us", self.decode_base_us),
            ("decode_per_seq_us", self.decode_per_seq_us),
            ("decode_per_ctx_token_us", self.decode_per_ctx_token_us),
            ("prefill_per_ctx_token_us", self.prefill_per_ctx_token_us),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(&format!("{k} must be a finite number >= 0"));
            }
        }
        Ok(())
    }
}

/// The `null` compute model: no engine, tokens at a fixed interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullParams {
    /// Interval between two tokens of one request in microseconds; 0 = as fast as the
    /// client reads.
    #[serde(default)]
    pub inter_token_us: u64,
    /// Time to the first token in microseconds, from when the response starts; absent:
    /// `inter_token_us` (the first token comes one interval after the start).
    #[serde(default)]
    pub first_token_us: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    max_input_length: u32,
    max_total_tokens: u32,
    #[serde(default)]
    eos_probability: f64,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    null: Option<NullParams>,
    #[serde(default)]
    engine: Option<toml::Table>,
    #[serde(default)]
    policy: std::collections::BTreeMap<String, toml::Table>,
    /// The policy the profile was fitted for (`llmib calibrate` writes it).
    #[serde(default)]
    scheduler: Option<Policy>,
    /// Where a fitted profile comes from (`llmib calibrate`'s provenance); read as text,
    /// not used by the engine.
    #[serde(default)]
    calibration: Option<toml::Table>,
}

/// A resolved speed profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    name: String,
    /// Free text.
    pub description: String,
    /// Longest prompt accepted, in tokens (TGI --max-input-length).
    pub max_input_length: u32,
    /// Longest prompt + output per request, in tokens (TGI --max-total-tokens, vLLM
    /// max_model_len, LightLLM max_req_total_len).
    pub max_total_tokens: u32,
    /// Chance that a generated token is end-of-sequence when EOS is not ignored.
    pub eos_probability: f64,
    /// Model name reported by the OpenAI dialect.
    pub model: String,
    /// `Some` for a null profile (no engine).
    pub null: Option<NullParams>,
    tgi: Option<EngineParams>,
    vllm: Option<EngineParams>,
    lightllm: Option<EngineParams>,
    vllm_v1: Option<EngineParams>,
    /// The policy the profile was fitted for (`scheduler = "vllm-v1"`): the simulator's
    /// default when `--policy` is not given.
    pub scheduler: Option<Policy>,
    /// A fitted profile's provenance (`[calibration]`, see `fit/profile_toml.rs`), as
    /// written; `predict` reads the fit's errors from it.
    pub calibration: Option<toml::Table>,
    /// Time dilation: the profile runs this many times faster than its units say
    /// (every engine cost and null-profile interval divided by it; 1 = as calibrated).
    /// See [`Profile::sped_up`].
    pub speedup: f64,
}

/// Largest speed-up [`Profile::sped_up`] accepts: at 1,000 the slowest shipped
/// profile's decode step (25 ms) is 25 µs, already below what the engine thread and a
/// client on the same machine resolve; beyond it, a replay's times multiplied back by
/// `K` (as the analyzer does) are the client's own microseconds magnified, not the
/// profile's (at `1e9` a TTFT of 1.16 ms came out as 1.16e6 s).
pub const MAX_SPEEDUP: f64 = 1000.0;

impl Profile {
    /// One of the profiles shipped with the crate (see [`BUILTIN_PROFILES`]).
    pub fn builtin(name: &str) -> Option<Profile> {
        let text = match name {
            "tiny" => TINY,
            "null" => NULL,
            "a800-llama2-13b" => A800_13B,
            _ => return None,
        };
        Some(Profile::parse(text, name).expect("built-in profiles are valid (tested)"))
    }

    /// A built-in profile by name, or else a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, SimError> {
        if let Some(p) = Profile::builtin(name_or_path) {
            return Ok(p);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(SimError::Profile(format!(
                "no built-in profile `{name_or_path}` (built-in: {}) and no such file",
                BUILTIN_PROFILES.join(", ")
            )));
        }
        let text = formats::read_input_utf8(path, formats::InputKind::SPEC)
            .map_err(|e| SimError::Profile(format!("cannot read profile {e}")))?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Parse profile TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, SimError> {
        let file: ProfileFile = toml::from_str(text)
            .map_err(|e| SimError::Profile(format!("{origin}: {}", e.to_string().trim())))?;
        let err = |m: String| Err(SimError::Profile(format!("{origin}: {m}")));
        if file.max_input_length == 0 {
            return err("max_input_length must be > 0".into());
        }
        if file.max_input_length >= file.max_total_tokens {
            return err("max_input_length must be < max_total_tokens".into());
        }
        if !(0.0..1.0).contains(&file.eos_probability) {
            return err("eos_probability must be in [0, 1)".into());
        }
        for k in file.policy.keys() {
            if !matches!(k.as_str(), "tgi" | "vllm" | "lightllm" | "vllm-v1") {
                return err(format!(
                    "unknown [policy.{k}] (expected tgi, vllm, lightllm, vllm-v1)"
                ));
            }
        }
        let (mut tgi, mut vllm, mut lightllm, mut vllm_v1) = (None, None, None, None);
        match (&file.null, &file.engine) {
            (Some(_), Some(_)) => return err("a profile has either [null] or [engine]".into()),
            (None, None) => return err("a profile needs an [engine] (or [null]) table".into()),
            (Some(_), None) => {}
            (None, Some(base)) => {
                for (policy, slot) in [
                    ("tgi", &mut tgi),
                    ("vllm", &mut vllm),
                    ("lightllm", &mut lightllm),
                    ("vllm-v1", &mut vllm_v1),
                ] {
                    let mut table = base.clone();
                    if let Some(over) = file.policy.get(policy) {
                        for (k, v) in over {
                            table.insert(k.clone(), v.clone());
                        }
                    }
                    let params: EngineParams =
                        toml::Value::Table(table)
                            .try_into()
                            .map_err(|e: toml::de::Error| {
                                SimError::Profile(format!(
                                    "{origin}: engine for policy {policy}: {}",
                                    e.to_string().trim()
                                ))
                            })?;
                    params.validate(&format!("{origin}: policy {policy}"))?;
                    // Every request the profile accepts must be schedulable, including a
                    // preempted one recomputing its whole context in one prefill (V1
                    // prefills in chunks: its budget may be smaller).
                    let total = file.max_total_tokens as u64;
                    let chunked = policy == "vllm-v1";
                    let unschedulable = params.kv_capacity_tokens < total
                        || (!chunked && params.max_prefill_tokens < total);
                    // A fitted profile names its policy: the others are simply not
                    // offered when its limits do not suit them.
                    let fitted_for_other = file.scheduler.is_some_and(|s| s.to_string() != policy);
                    if unschedulable && fitted_for_other {
                        continue;
                    }
                    if unschedulable {
                        return err(format!(
                            "policy {policy}: kv_capacity_tokens and max_prefill_tokens must be >= max_total_tokens ({total})"
                        ));
                    }
                    *slot = Some(params);
                }
            }
        }
        Ok(Profile {
            name: file.name,
            description: file.description,
            max_input_length: file.max_input_length,
            max_total_tokens: file.max_total_tokens,
            eos_probability: file.eos_probability,
            model: file.model.unwrap_or_else(|| "llmib-sim".to_string()),
            null: file.null,
            tgi,
            vllm,
            lightllm,
            vllm_v1,
            scheduler: file.scheduler,
            calibration: file.calibration,
            speedup: 1.0,
        })
    }

    /// The same profile run `k` times faster (`llmib sim --speedup K`): every engine cost
    /// (prefill and decode step times) and the null profile's intervals divided by `k`;
    /// capacities, batch limits and policies unchanged, so the schedule of a trace whose
    /// arrivals are also `k` times faster is the same, on a clock `k` times faster. A
    /// replay at time scale `k` against it measures the profile's behaviour in `1/k` of
    /// the time; its latencies are the profile's divided by `k` (the run log records `k`
    /// through the simulator header). Speed-ups compose (`sped_up(2).sped_up(3)` = 6),
    /// up to [`MAX_SPEEDUP`] in all.
    pub fn sped_up(mut self, k: f64) -> Result<Profile, SimError> {
        if !(k.is_finite() && k >= 1.0) {
            return Err(SimError::Profile(format!(
                "speed-up must be a finite number >= 1, not {k}"
            )));
        }
        if self.speedup * k > MAX_SPEEDUP {
            return Err(SimError::Profile(format!(
                "speed-up {k} is above the limit of {MAX_SPEEDUP}: steps would be shorter than \
                 the machine resolves, and times multiplied back by it would be the client's \
                 own delays, not the profile's"
            )));
        }
        for params in [
            &mut self.tgi,
            &mut self.vllm,
            &mut self.lightllm,
            &mut self.vllm_v1,
        ]
        .into_iter()
        .flatten()
        {
            params.prefill_base_us /= k;
            params.prefill_per_token_us /= k;
            params.decode_base_us /= k;
            params.decode_per_seq_us /= k;
            params.decode_per_ctx_token_us /= k;
            params.prefill_per_ctx_token_us /= k;
        }
        if let Some(null) = &mut self.null {
            null.inter_token_us = divide_us(null.inter_token_us, k);
            null.first_token_us = null.first_token_us.map(|us| divide_us(us, k));
        }
        self.speedup *= k;
        Ok(self)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a no-compute profile.
    pub fn is_null(&self) -> bool {
        self.null.is_some()
    }

    /// The engine parameters for one policy (None for a null profile).
    pub fn engine(&self, policy: Policy) -> Option<&EngineParams> {
        match policy {
            Policy::Tgi => self.tgi.as_ref(),
            Policy::Vllm => self.vllm.as_ref(),
            Policy::Lightllm => self.lightllm.as_ref(),
            Policy::VllmV1 => self.vllm_v1.as_ref(),
        }
    }

    /// Replace one policy's engine parameters (tuning, tests).
    pub fn set_engine(&mut self, policy: Policy, params: EngineParams) {
        let slot = match policy {
            Policy::Tgi => &mut self.tgi,
            Policy::Vllm => &mut self.vllm,
            Policy::Lightllm => &mut self.lightllm,
            Policy::VllmV1 => &mut self.vllm_v1,
        };
        *slot = Some(params);
        self.null = None;
    }
}

/// `us / k`, rounded to whole microseconds.
fn divide_us(us: u64, k: f64) -> u64 {
    (us as f64 / k).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::virtual_time::{VirtualRequest, simulate};

    #[test]
    fn a_sped_up_profile_runs_the_same_schedule_k_times_faster() {
        // A Poisson-like trace that queues and preempts on the calibrated profile; the
        // same trace k times denser against the profile k times faster must give the
        // same schedule (admissions, batches, preemptions, token counts) with every time
        // divided by k, up to the rounding of step times to whole ns.
        let base = Profile::builtin("a800-llama2-13b").unwrap();
        let k = 8.0;
        let fast = base.clone().sped_up(k).unwrap();
        assert_eq!(fast.speedup, 8.0);
        let trace: Vec<VirtualRequest> = (0..300u64)
            .map(|i| VirtualRequest {
                arrival_ns: i * 97_000_000 + (i * i % 13) * 5_000_000,
                prompt_tokens: 1 + (i * 37 % 512) as u32,
                max_tokens: 1 + (i * 53 % 512) as u32,
                target_tokens: 1 + (i * 53 % 512) as u32,
            })
            .collect();
        let dense: Vec<VirtualRequest> = trace
            .iter()
            .map(|r| VirtualRequest {
                arrival_ns: (r.arrival_ns as f64 / k) as u64,
                ..*r
            })
            .collect();
        for policy in [Policy::Tgi, Policy::Vllm, Policy::Lightllm] {
            let (slow, slow_stats) = simulate(base.engine(policy).unwrap(), policy, &trace);
            let (quick, quick_stats) = simulate(fast.engine(policy).unwrap(), policy, &dense);
            assert_eq!(slow_stats.max_batch, quick_stats.max_batch, "{policy:?}");
            let mut worst = 0.0f64;
            for (a, b) in slow.iter().zip(&quick) {
                assert_eq!(
                    (a.output_tokens, a.preemptions, a.rejected),
                    (b.output_tokens, b.preemptions, b.rejected),
                    "{policy:?}"
                );
                let e2e = |r: &crate::engine::virtual_time::VirtualResult| r.finished_ns as f64;
                worst = worst.max((e2e(a) / k - e2e(b)).abs() / (e2e(a) / k));
            }
            assert!(
                worst < 1e-3,
                "{policy:?}: worst relative difference {worst}"
            );
        }
    }

    #[test]
    fn speed_ups_compose_and_must_be_at_least_one() {
        let p = Profile::builtin("a800-llama2-13b").unwrap();
        let e = p.engine(Policy::Vllm).unwrap().decode_base_us;
        let six = p.clone().sped_up(2.0).unwrap().sped_up(3.0).unwrap();
        assert_eq!(six.speedup, 6.0);
        assert!((six.engine(Policy::Vllm).unwrap().decode_base_us - e / 6.0).abs() < 1e-9);
        p.clone().sped_up(MAX_SPEEDUP).unwrap();
        assert!(six.clone().sped_up(MAX_SPEEDUP / 2.0).is_err());
        for bad in [
            0.5,
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1e9,
            MAX_SPEEDUP + 1.0,
        ] {
            assert!(p.clone().sped_up(bad).is_err(), "{bad}");
        }
        let null = Profile::builtin("null").unwrap();
        let before = null.null.clone().unwrap();
        let after = null.sped_up(4.0).unwrap().null.unwrap();
        assert_eq!(
            after.inter_token_us,
            (before.inter_token_us as f64 / 4.0).round() as u64
        );
    }

    #[test]
    fn builtins_parse() {
        for name in BUILTIN_PROFILES {
            let p = Profile::builtin(name).unwrap();
            assert_eq!(p.name(), name);
        }
        assert!(Profile::builtin("null").unwrap().is_null());
        let a = Profile::builtin("a800-llama2-13b").unwrap();
        assert_eq!(a.max_input_length, 1024);
        assert_eq!(a.max_total_tokens, 2048);
        assert!(a.engine(Policy::Tgi).is_some());
    }

    #[test]
    fn overrides_apply_per_policy() {
        let p = Profile::parse(
            r#"name = "x"
max_input_length = 10
max_total_tokens = 20
[engine]
kv_capacity_tokens = 100
max_batch_size = 4
max_prefill_tokens = 50
prefill_base_us = 0
prefill_per_token_us = 1
decode_base_us = 10
decode_per_seq_us = 1
[policy.vllm]
kv_capacity_tokens = 64
"#,
            "t",
        )
        .unwrap();
        assert_eq!(p.engine(Policy::Vllm).unwrap().kv_capacity_tokens, 64);
        assert_eq!(p.engine(Policy::Tgi).unwrap().kv_capacity_tokens, 100);
    }

    #[test]
    fn bad_profiles_are_rejected() {
        let base = "name = \"x\"\nmax_input_length = 10\nmax_total_tokens = 20\n";
        assert!(Profile::parse(base, "t").is_err(), "no engine");
        let typo = format!(
            "{base}[engine]\nkv_capacity_tokens = 1\nmax_batch_size = 1\nmax_prefill_tokens = 1\nprefill_base_us = 0\nprefill_per_token_us = 0\ndecode_base_us = 0\ndecode_per_seq_us = 0\ndecode_per_seq = 3\n"
        );
        let e = Profile::parse(&typo, "t").unwrap_err().to_string();
        assert!(e.contains("decode_per_seq"), "{e}");
        assert!(Profile::load("no-such-profile").is_err());
    }
}
