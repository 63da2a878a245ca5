//! The canonical suite of the original benchmark (`llmib generate --suite seed`).
//!
//! * `throughput-cap{32,128,512,1536}`: 1000 requests, prompts of exactly 512 tokens,
//!   outputs capped-exponential with mean 128 and the cap, all sent at once (burst),
//!   `ignore_eos`.
//! * `latency-qps{1,2,4,8}`: 1000 requests, prompts uniform in 1..=512, outputs
//!   capped-exponential mean 128 cap 512, Poisson arrivals at the QPS.
//!
//! Each trace has its own seed, so no two traces share prompts: a server's prefix cache
//! that survives from one run to the next cannot speed up the second.

use std::path::{Path, PathBuf};

use formats::{Arrival, LengthDist, SyntheticSpec, sha256_file, write_atomic};

use crate::error::{GenError, Result};
use crate::prompt::PromptSource;
use crate::spec::spec_to_toml;
use crate::synth::trace::generate_trace;

pub const THROUGHPUT_CAPS: [u32; 4] = [32, 128, 512, 1536];
pub const LATENCY_QPS: [u32; 4] = [1, 2, 4, 8];

/// Names of the suites `--suite` accepts.
pub const SUITES: &[&str] = &["seed"];

/// The specs of a named suite.
pub fn suite(name: &str) -> Result<Vec<SyntheticSpec>> {
    match name {
        "seed" => Ok(seed_suite()),
        _ => Err(GenError::Invalid(format!(
            "unknown suite {name:?} (known: {})",
            SUITES.join(", ")
        ))),
    }
}

/// The original benchmark's eight workloads.
pub fn seed_suite() -> Vec<SyntheticSpec> {
    let mut specs = Vec::new();
    for (i, cap) in THROUGHPUT_CAPS.into_iter().enumerate() {
        specs.push(SyntheticSpec {
            name: format!("throughput-cap{cap}"),
            seed: 1001 + i as u64,
            requests: 1000,
            prompt_tokens: LengthDist::Fixed {
                value: 512,
                floor: 1,
            },
            output_tokens: LengthDist::CappedExponential {
                mean: 128.0,
                cap,
                floor: 1,
            },
            arrival: Arrival::Burst,
            ignore_eos: true,
            prefix: None,
            sessions: None,
        });
    }
    for (i, qps) in LATENCY_QPS.into_iter().enumerate() {
        specs.push(SyntheticSpec {
            name: format!("latency-qps{qps}"),
            seed: 2001 + i as u64,
            requests: 1000,
            prompt_tokens: LengthDist::Uniform {
                lo: 1,
                hi: 512,
                floor: 1,
            },
            output_tokens: LengthDist::CappedExponential {
                mean: 128.0,
                cap: 512,
                floor: 1,
            },
            arrival: Arrival::Poisson {
                rate: f64::from(qps),
            },
            ignore_eos: true,
            prefix: None,
            sessions: None,
        });
    }
    specs
}

/// Every file [`write_suite`] writes into `dir`, so a caller can check them all first.
pub fn suite_outputs(dir: &Path, specs: &[SyntheticSpec]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = specs
        .iter()
        .flat_map(|s| {
            [
                dir.join(format!("{}.msgpack", s.name)),
                dir.join("specs").join(format!("{}.toml", s.name)),
            ]
        })
        .collect();
    out.push(dir.join("MANIFEST"));
    out
}

/// Writes each spec as `DIR/<name>.msgpack` and `DIR/specs/<name>.toml`, then
/// `DIR/MANIFEST` (`sha256sum` format, paths relative to DIR, sorted), and returns the
/// written trace paths.
pub fn write_suite(
    dir: &Path,
    specs: &[SyntheticSpec],
    source: &PromptSource,
) -> Result<Vec<PathBuf>> {
    let spec_dir = dir.join("specs");
    std::fs::create_dir_all(&spec_dir).map_err(|e| GenError::io(&spec_dir, e))?;
    let mut entries = Vec::new();
    let mut traces = Vec::new();
    for spec in specs {
        let trace = format!("{}.msgpack", spec.name);
        let toml = format!("specs/{}.toml", spec.name);
        write_atomic(&dir.join(&toml), spec_to_toml(spec).as_bytes())?;
        generate_trace(spec, source, &dir.join(&trace))?;
        for rel in [trace.clone(), toml] {
            entries.push((rel.clone(), sha256_file(dir.join(&rel))?));
        }
        traces.push(dir.join(trace));
    }
    entries.sort();
    let manifest: String = entries
        .iter()
        .map(|(rel, h)| format!("{h}  {rel}\n"))
        .collect();
    write_atomic(&dir.join("MANIFEST"), manifest.as_bytes())?;
    Ok(traces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_suite_matches_the_original_benchmark() {
        let specs = seed_suite();
        assert_eq!(specs.len(), 8);
        for s in &specs {
            crate::spec::validate(s).unwrap();
            assert_eq!(s.requests, 1000);
        }
        let caps: Vec<_> = specs[..4]
            .iter()
            .map(|s| s.output_tokens.cap().unwrap())
            .collect();
        assert_eq!(caps, THROUGHPUT_CAPS);
        let seeds: std::collections::BTreeSet<_> = specs.iter().map(|s| s.seed).collect();
        assert_eq!(seeds.len(), 8, "every trace has its own seed");
        assert!(suite("nope").is_err());
    }
}
