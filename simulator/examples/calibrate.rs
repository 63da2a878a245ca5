//! Replay the seed suite through a profile's engine model in virtual time and compare
//! with the original benchmark's published A800 13B numbers.
//!
//! `cargo run --release -p llmib-simulator --example calibrate [PROFILE] [SEED]`
//! `... --example calibrate -- --tune [PROFILE]` searches the cost coefficients of each
//! policy (coordinate descent on the worst |log(simulated / published)|) and prints them.

use simulator::{EngineParams, Policy, Profile, calibration};

fn score(params: &EngineParams, policy: Policy) -> f64 {
    calibration::evaluate(params, policy, 1)
        .iter()
        .map(|r| r.ratio().ln().abs())
        .fold(0.0, f64::max)
}

fn tune(mut p: EngineParams, policy: Policy) -> EngineParams {
    let mut best = score(&p, policy);
    let mut step = 2.0f64;
    while step > 1.01 {
        let mut improved = false;
        for k in 0..5 {
            for f in [step, 1.0 / step] {
                let mut q = p.clone();
                let v = match k {
                    0 => &mut q.prefill_base_us,
                    1 => &mut q.prefill_per_token_us,
                    2 => &mut q.decode_base_us,
                    3 => &mut q.decode_per_seq_us,
                    _ => &mut q.decode_per_ctx_token_us,
                };
                *v = if *v == 0.0 { 0.01 * f } else { *v * f };
                let s = score(&q, policy);
                if s < best {
                    best = s;
                    p = q;
                    improved = true;
                }
            }
        }
        if !improved {
            step = step.sqrt();
        }
    }
    eprintln!(
        "{policy}: worst deviation {:.1}%",
        (best.exp() - 1.0) * 100.0
    );
    p
}

fn tune_policies(args: &[String]) -> Vec<Policy> {
    let only: Vec<Policy> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--policy="))
        .map(|p| p.parse().expect("policy"))
        .collect();
    if only.is_empty() {
        vec![Policy::Tgi, Policy::Vllm, Policy::Lightllm]
    } else {
        only
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tune_mode = args.iter().any(|a| a == "--tune");
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let name = rest
        .first()
        .map(|s| s.as_str())
        .unwrap_or("a800-llama2-13b");
    let seed: u64 = rest.get(1).map(|s| s.parse().expect("seed")).unwrap_or(1);
    let profile = Profile::load(name).expect("profile");
    if tune_mode {
        for policy in tune_policies(&args) {
            let p = tune(profile.engine(policy).expect("engine").clone(), policy);
            println!(
                "[policy.{policy}]\nprefill_base_us = {:.1}\nprefill_per_token_us = {:.2}\ndecode_base_us = {:.1}\ndecode_per_seq_us = {:.2}\ndecode_per_ctx_token_us = {:.4}\n",
                p.prefill_base_us,
                p.prefill_per_token_us,
                p.decode_base_us,
                p.decode_per_seq_us,
                p.decode_per_ctx_token_us
            );
        }
        return;
    }
    println!("| policy | metric | simulated | published | sim/pub |");
    println!("|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for policy in [Policy::Tgi, Policy::Vllm, Policy::Lightllm] {
        let params = profile.engine(policy).expect("engine profile");
        for row in calibration::evaluate(params, policy, seed) {
            worst = worst.max((row.ratio() - 1.0).abs());
            println!(
                "| {} | {} | {:.4} | {:.4} | {:.2} |",
                row.policy,
                row.metric,
                row.simulated,
                row.published,
                row.ratio()
            );
        }
    }
    println!("\nworst relative deviation: {:.1}%", worst * 100.0);
}
