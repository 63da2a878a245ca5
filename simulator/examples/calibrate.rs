//! Replay the calibration workloads through a profile's engine model in virtual time and compare
//! with the original benchmark's published A800 13B numbers.
//!
//! `cargo run --release -p llmib-simulator --example calibrate [PROFILE] [SEED]`: on
//! workloads rebuilt from the original's distributions (seed 1 by default); with
//! `-- --traces`, on the committed traces (`traces/`, what `llmib demo` replays).
//! `... --example calibrate -- --tune [PROFILE]` fits the cost coefficients of the three
//! policies together and prints them.
//!
//! Why together: the original's conclusions are comparisons between servers (LightLLM
//! ahead in bursts, behind at low load), so a fit per policy can land every number
//! within tolerance and still rank them wrongly. The objective is the worst
//! |ln(simulated / published)| over every cell, plus a penalty for every published
//! ranking ([`calibration::rankings`]) the simulation does not reproduce with a margin
//! of [`MARGIN`]; coordinate descent over the 15 coefficients with shrinking
//! multiplicative steps. Structural values (capacities, batch limits) are never touched.

use simulator::{EngineParams, Policy, Profile, calibration};

/// Simulated ratios of a published ranking must exceed 1 + MARGIN (replay noise).
const MARGIN: f64 = 0.05;

/// Cells are pushed within this relative deviation (the tolerance minus replay noise).
const TARGET: f64 = 0.30;

fn score(rows: &[calibration::Row]) -> f64 {
    let dev = |r: &calibration::Row| r.ratio().ln().abs();
    let worst = rows.iter().map(dev).fold(0.0, f64::max);
    let over: f64 = rows
        .iter()
        .map(|r| (dev(r) - (1.0 + TARGET).ln()).max(0.0))
        .sum();
    let penalty: f64 = calibration::rankings(rows)
        .iter()
        .map(|k| ((1.0 + MARGIN).ln() - k.simulated_ratio.ln()).max(0.0))
        .sum();
    worst + 4.0 * (over + penalty)
}

fn coefficient(p: &mut EngineParams, k: usize) -> &mut f64 {
    match k {
        0 => &mut p.prefill_base_us,
        1 => &mut p.prefill_per_token_us,
        2 => &mut p.decode_base_us,
        3 => &mut p.decode_per_seq_us,
        _ => &mut p.decode_per_ctx_token_us,
    }
}

fn tune(profile: &Profile, w: &calibration::Workloads) -> Vec<(Policy, EngineParams)> {
    let policies = calibration::POLICIES;
    let start: f64 = std::env::var("PREFILL_BASE_START")
        .ok()
        .map(|v| v.parse().expect("PREFILL_BASE_START"))
        .unwrap_or(0.0);
    let mut params: Vec<EngineParams> = policies
        .iter()
        .map(|&p| {
            let mut e = profile.engine(p).expect("engine").clone();
            e.prefill_base_us = e.prefill_base_us.max(start);
            e
        })
        .collect();
    let mut rows: Vec<Vec<calibration::Row>> = policies
        .iter()
        .zip(&params)
        .map(|(&p, e)| calibration::evaluate_on(e, p, w))
        .collect();
    let mut best = score(&rows.concat());
    let mut step = 2.0f64;
    while step > 1.01 {
        let mut improved = false;
        for (i, &policy) in policies.iter().enumerate() {
            for k in 0..5 {
                for f in [step, 1.0 / step] {
                    let mut q = params[i].clone();
                    let v = coefficient(&mut q, k);
                    *v = if *v == 0.0 { 0.01 * f } else { *v * f };
                    let mut trial = rows.clone();
                    trial[i] = calibration::evaluate_on(&q, policy, w);
                    let s = score(&trial.concat());
                    if s < best {
                        best = s;
                        params[i] = q;
                        rows = trial;
                        improved = true;
                    }
                }
            }
        }
        if !improved {
            step = step.sqrt();
        }
        eprintln!("step {step:.4}: score {best:.4}");
    }
    policies.into_iter().zip(params).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tune_mode = args.iter().any(|a| a == "--tune");
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let name = rest
        .first()
        .map(|s| s.as_str())
        .unwrap_or("a800-llama2-13b");
    // The seeded workloads (the original's distributions), or with --traces the
    // committed traces (what the demo replays).
    let w = if args.iter().any(|a| a == "--traces") {
        calibration::Workloads::committed().expect("committed traces")
    } else {
        let seed = rest.get(1).map_or(1, |s| s.parse().expect("seed"));
        calibration::Workloads::seeded(seed)
    };
    let mut profile = Profile::load(name).expect("profile");
    if tune_mode {
        for (policy, p) in tune(&profile, &w) {
            println!(
                "[policy.{policy}]\nprefill_base_us = {:.1}\nprefill_per_token_us = {:.2}\ndecode_base_us = {:.1}\ndecode_per_seq_us = {:.2}\ndecode_per_ctx_token_us = {:.4}\n",
                p.prefill_base_us,
                p.prefill_per_token_us,
                p.decode_base_us,
                p.decode_per_seq_us,
                p.decode_per_ctx_token_us
            );
            profile.set_engine(policy, p);
        }
    }
    let rows = calibration::evaluate_all(|p| profile.engine(p).expect("engine").clone(), &w);
    println!("| policy | metric | simulated | published | sim/pub |");
    println!("|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for row in &rows {
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
    println!("\nWorst relative deviation: {:.1}%\n", worst * 100.0);
    println!("| metric | published order | published ratio | simulated ratio | holds |");
    println!("|---|---|---|---|---|");
    for k in calibration::rankings(&rows) {
        println!(
            "| {} | {} > {} | {:.2} | {:.2} | {} |",
            k.metric,
            k.higher,
            k.lower,
            k.published_ratio,
            k.simulated_ratio,
            if k.holds() { "yes" } else { "**no**" }
        );
    }
}
