//! The engine model against analytic values, in virtual time (exact, no sleeping).

use simulator::{EngineParams, Policy, VirtualRequest, simulate};

fn params() -> EngineParams {
    EngineParams {
        kv_capacity_tokens: 1 << 30,
        max_batch_size: 64,
        max_prefill_tokens: 1 << 20,
        block_size: 16,
        watermark: 0.0,
        waiting_served_ratio: 0.0,
        max_waiting_tokens: 0,
        separate_prefill: true,
        prefill_base_us: 0.0,
        prefill_per_token_us: 0.0,
        decode_base_us: 1000.0,
        decode_per_seq_us: 10.0,
        decode_per_ctx_token_us: 0.0,
        prefill_per_ctx_token_us: 0.0,
        prefix_cache: false,
    }
}

fn req(arrival_ns: u64, prompt: u32, out: u32) -> VirtualRequest {
    VirtualRequest {
        arrival_ns,
        prompt_tokens: prompt,
        max_tokens: out,
        target_tokens: out,
    }
}

#[test]
fn saturated_decode_throughput_matches_analytic() {
    // 64 requests fill the batch; every decode step yields 64 tokens in a + 64 b.
    let p = params();
    let n = 64u32;
    let out = 1000u32;
    let reqs: Vec<_> = (0..n).map(|_| req(0, 10, out)).collect();
    for policy in [Policy::Tgi, Policy::Vllm, Policy::Lightllm] {
        let (res, stats) = simulate(&p, policy, &reqs);
        assert!(
            res.iter().all(|r| r.output_tokens == out && !r.rejected),
            "{policy}"
        );
        let end = res.iter().map(|r| r.finished_ns).max().unwrap();
        let tokens = (n * out) as f64;
        let measured = tokens / (end as f64 / 1e9);
        let step_s = (1000.0 + 10.0 * n as f64) / 1e6;
        // The prefill step costs nothing here and yields the first token of each.
        let analytic = tokens / ((out - 1) as f64 * step_s);
        let err = (measured - analytic).abs() / analytic;
        assert!(
            err < 0.05,
            "{policy}: {measured:.0} tok/s vs analytic {analytic:.0}"
        );
        assert_eq!(stats.max_batch, 64);
        assert_eq!(stats.preemptions, 0);
    }
}

#[test]
fn prefill_and_decode_costs_add_up() {
    let mut p = params();
    p.prefill_base_us = 500.0;
    p.prefill_per_token_us = 2.0;
    let (res, _) = simulate(&p, Policy::Tgi, &[req(0, 100, 3)]);
    // prefill: 500 + 200 us -> first token; then 2 decode steps of 1010 us.
    assert_eq!(res[0].first_token_ns, 700_000);
    assert_eq!(res[0].finished_ns, 700_000 + 2 * 1_010_000);
}

#[test]
fn requests_queue_when_kv_capacity_is_full() {
    // Each request reserves 10 + 20 = 30 tokens; capacity 60 holds two.
    let mut p = params();
    p.kv_capacity_tokens = 60;
    let reqs: Vec<_> = (0..4).map(|_| req(0, 10, 20)).collect();
    for policy in [Policy::Tgi, Policy::Lightllm] {
        let (res, stats) = simulate(&p, policy, &reqs);
        assert_eq!(res[0].admitted_ns, 0, "{policy}");
        assert_eq!(res[1].admitted_ns, 0, "{policy}");
        // The third waits for a slot: admitted exactly when one of the first two finishes.
        assert!(res[2].admitted_ns > 0, "{policy}");
        assert_eq!(
            res[2].admitted_ns,
            res[0].finished_ns.min(res[1].finished_ns),
            "{policy}"
        );
        assert!(
            stats.peak_kv_tokens <= 60,
            "{policy}: peak {}",
            stats.peak_kv_tokens
        );
        assert!(
            res.iter()
                .all(|r| r.output_tokens == 20 && r.preemptions == 0)
        );
    }
}

#[test]
fn vllm_preempts_the_newest_and_recomputes() {
    // 4 blocks of 16 tokens; two requests of 16 + 40 tokens need 4 blocks each at the end.
    let mut p = params();
    p.kv_capacity_tokens = 64;
    let reqs = [req(0, 16, 40), req(0, 16, 40)];
    let (res, stats) = simulate(&p, Policy::Vllm, &reqs);
    assert!(stats.preemptions >= 1, "{stats:?}");
    assert_eq!(res[0].preemptions, 0, "the oldest is never the victim");
    assert!(res[1].preemptions >= 1);
    assert!(res.iter().all(|r| r.output_tokens == 40));
    assert!(stats.peak_kv_tokens <= 64);
    // The victim finishes after the first: it restarts once the first has freed its blocks.
    assert!(res[1].finished_ns > res[0].finished_ns);
    // LightLLM, same capacity: no eviction, the second simply waits.
    let (res, stats) = simulate(&p, Policy::Lightllm, &[req(0, 16, 40), req(0, 16, 40)]);
    assert_eq!(stats.preemptions, 0);
    assert!(res[1].admitted_ns >= res[0].finished_ns);
}

#[test]
fn tgi_waiting_served_ratio_delays_admission() {
    // 10 running; one newcomer cannot join while floor(10 * 1.2) = 12 are needed, until
    // max_waiting_tokens decode steps have passed.
    let mut p = params();
    p.waiting_served_ratio = 1.2;
    p.max_waiting_tokens = 5;
    let mut reqs: Vec<_> = (0..10).map(|_| req(0, 10, 100)).collect();
    reqs.push(req(1, 10, 10));
    let (res, _) = simulate(&p, Policy::Tgi, &reqs);
    let step = 1_000_000 + 10 * 10_000;
    // Steps: prefill (0 ns), then decode steps of 1.1 ms; admitted after 5 decode steps.
    assert_eq!(res[10].admitted_ns, 5 * step);
}

#[test]
fn rejects_what_can_never_fit() {
    let mut p = params();
    p.kv_capacity_tokens = 32;
    let (res, _) = simulate(&p, Policy::Tgi, &[req(0, 30, 10), req(0, 5, 5)]);
    assert!(res[0].rejected);
    assert_eq!(res[1].output_tokens, 5);
}
