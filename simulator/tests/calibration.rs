//! The shipped a800-llama2-13b profile stays within 30% of every published number of the
//! original benchmark (seed suite replayed in virtual time).

use simulator::{Policy, Profile, calibration};

#[test]
fn a800_profile_matches_published_numbers_within_30_percent() {
    let profile = Profile::builtin("a800-llama2-13b").unwrap();
    let mut failures = Vec::new();
    for policy in [Policy::Tgi, Policy::Vllm, Policy::Lightllm] {
        for row in calibration::evaluate(profile.engine(policy).unwrap(), policy, 1) {
            if (row.ratio() - 1.0).abs() > 0.30 {
                failures.push(format!(
                    "{policy} {}: {:.4} vs {:.4}",
                    row.metric, row.simulated, row.published
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn calibration_orders_servers_as_published() {
    // In the original, vLLM beats TGI clearly at short outputs (cap 32: 6841 vs 4938).
    let profile = Profile::builtin("a800-llama2-13b").unwrap();
    let tp = |p: Policy, cap| {
        calibration::throughput(
            profile.engine(p).unwrap(),
            p,
            &calibration::throughput_workload(cap, 1),
        )
    };
    assert!(tp(Policy::Vllm, 32) > tp(Policy::Tgi, 32));
}
