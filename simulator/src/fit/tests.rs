//! The fit against loads the engine model itself produced: it must find costs that
//! reproduce them, on the loads it saw and on one it did not.

use super::*;
use crate::engine::virtual_time::VirtualRequest;

/// A V1 server (32 sequences, 2048-token budget, 128-token blocks) with known costs.
fn truth() -> EngineParams {
    EngineParams {
        kv_capacity_tokens: 2048 * 128,
        max_batch_size: 32,
        max_prefill_tokens: 2048,
        block_size: 128,
        watermark: 0.0,
        waiting_served_ratio: 1.2,
        max_waiting_tokens: 20,
        separate_prefill: false,
        prefill_base_us: 2000.0,
        prefill_per_token_us: 40.0,
        decode_base_us: 15000.0,
        decode_per_seq_us: 600.0,
        decode_per_ctx_token_us: 0.5,
        prefill_per_ctx_token_us: 8.0,
        prefix_cache: false,
    }
}

/// `n` requests at `rate` req/s, exponential gaps, prompts 1..1500, outputs 8..71, from a
/// fixed linear congruential sequence (no dependency on a RNG crate's stream).
fn poisson(n: usize, rate: f64, seed: u64) -> Vec<VirtualRequest> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut t = 0.0;
    (0..n)
        .map(|_| {
            t += -(1.0 - next()).ln() / rate;
            let out = 8 + (next() * 64.0) as u32;
            VirtualRequest {
                arrival_ns: (t * 1e9) as u64,
                prompt_tokens: 1 + (next() * 1500.0) as u32,
                max_tokens: out,
                target_tokens: out,
            }
        })
        .collect()
}

fn measured(name: &str, requests: Vec<VirtualRequest>) -> Load {
    let mut load = Load {
        name: name.into(),
        requests,
        measured: Vec::new(),
        cached_tokens: Vec::new(),
        hashes: Vec::new(),
        measured_itl_ns: Vec::new(),
    };
    load.measured = predict(&truth(), Policy::VllmV1, &load)
        .into_iter()
        .map(Some)
        .collect();
    load
}

fn options() -> FitOptions {
    let mut base = truth();
    // The costs the fit starts from are its own; these must not matter.
    base.prefill_base_us = 1.0;
    base.decode_base_us = 1.0;
    FitOptions {
        policy: Policy::VllmV1,
        base,
        max_evals: 2000,
    }
}

fn worst(errors: &LoadErrors) -> f64 {
    errors
        .metrics
        .iter()
        .flat_map(|m| m.relative()[..2].to_vec())
        .map(f64::abs)
        .fold(0.0, f64::max)
}

#[test]
fn the_fit_reproduces_the_loads_it_saw_and_one_it_did_not() {
    let loads = [
        measured("light", poisson(120, 2.0, 1)),
        measured("busy", poisson(160, 8.0, 2)),
    ];
    let fit = calibrate(&loads, &options());
    for e in &fit.errors {
        assert!(worst(e) < 0.05, "{}: {:?}", e.name, e.metrics);
    }
    let held_out = measured("held out", poisson(140, 5.0, 3));
    let errors = report::compare(&held_out, &predict(&fit.params, Policy::VllmV1, &held_out));
    assert!(worst(&errors) < 0.10, "{:?}", errors.metrics);
    // Capacity facts are kept as given.
    assert_eq!(
        (fit.params.max_batch_size, fit.params.max_prefill_tokens),
        (32, 2048)
    );
}

#[test]
fn the_same_fit_twice_gives_the_same_bits() {
    let loads = [
        measured("a", poisson(60, 3.0, 4)),
        measured("b", poisson(60, 9.0, 5)),
    ];
    let mut opts = options();
    opts.max_evals = 150;
    assert_eq!(calibrate(&loads, &opts), calibrate(&loads, &opts));
}

#[test]
fn a_line_through_points_and_a_flat_one() {
    let (a, b) = line([(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)].into_iter());
    assert!((a - 1.0).abs() < 1e-12 && (b - 2.0).abs() < 1e-12);
    assert_eq!(line([(2.0, 4.0), (2.0, 6.0)].into_iter()), (5.0, 0.0));
}
