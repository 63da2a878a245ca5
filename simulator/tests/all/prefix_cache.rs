//! The engine's prefix cache (vLLM policy), step by step on the core: hits skip prefill,
//! the last prompt token is always computed, LRU eviction under the KV budget, off
//! switch.

use simulator::engine::{Core, EngineRequest, Step};
use simulator::prefix::BlockHasher;
use simulator::{EngineParams, Policy};

fn params(kv_tokens: u64, prefix_cache: bool) -> EngineParams {
    EngineParams {
        kv_capacity_tokens: kv_tokens,
        max_batch_size: 64,
        max_prefill_tokens: 1 << 20,
        block_size: 16,
        watermark: 0.0,
        waiting_served_ratio: 0.0,
        max_waiting_tokens: 0,
        separate_prefill: true,
        prefill_base_us: 0.0,
        prefill_per_token_us: 1.0,
        decode_base_us: 1000.0,
        decode_per_seq_us: 10.0,
        decode_per_ctx_token_us: 0.0,
        prefill_per_ctx_token_us: 0.0,
        prefix_cache,
    }
}

fn words(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix}{i} ")).collect()
}

fn hashes(text: &str) -> Vec<u64> {
    let mut h = BlockHasher::new(16);
    h.words(text);
    h.finish()
}

/// Submit one request (1 output token), run it to completion; its admission step.
fn run_one(core: &mut Core, key: u64, text: &str) -> Step {
    let prompt_tokens = text.split_whitespace().count() as u32;
    let req = EngineRequest {
        key,
        prompt_tokens,
        max_tokens: 1,
        target_tokens: 1,
    };
    core.submit_prefixed(req, hashes(text));
    let step = core.plan().expect("admits");
    let mut out = Vec::new();
    core.finish_step(&mut out);
    assert!(core.is_idle(), "one output token: done after its prefill");
    step
}

#[test]
fn shared_prefix_skips_prefill_up_to_the_last_token() {
    let mut core = Core::new(params(1 << 20, true), Policy::Vllm);
    let a = words("a", 80); // 5 full blocks
    let s1 = run_one(&mut core, 1, &a);
    assert_eq!((s1.prefill_tokens, s1.cached.clone()), (80, vec![(1, 0)]));
    // Same prompt: every block is cached but the last token is recomputed, so the
    // last full block is not a hit.
    let s2 = run_one(&mut core, 2, &a);
    assert_eq!((s2.prefill_tokens, s2.cached.clone()), (16, vec![(2, 64)]));
    // Same first 40 words then different ones: 2 full blocks shared.
    let b = format!("{}{}", words("a", 40), words("b", 40));
    let s3 = run_one(&mut core, 3, &b);
    assert_eq!((s3.prefill_tokens, s3.cached.clone()), (48, vec![(3, 32)]));
    assert_eq!(core.stats.cached_tokens, 96);
}

#[test]
fn eviction_is_lru_under_the_kv_budget_tail_first() {
    // 10 blocks of KV. A's 5 blocks stay cached in free memory after it finishes; C
    // (8 blocks: 128 tokens + 1 decode slot) needs the space: 3 of A's go, tail first.
    let mut core = Core::new(params(160, true), Policy::Vllm);
    let a = words("a", 80);
    run_one(&mut core, 1, &a);
    run_one(&mut core, 2, &words("c", 128));
    let again = run_one(&mut core, 3, &a);
    assert_eq!(again.cached, vec![(3, 32)], "A's first two blocks survived");
}

#[test]
fn off_switch_and_other_policies_never_hit() {
    let a = words("a", 80);
    for (on, policy) in [
        (false, Policy::Vllm),
        (true, Policy::Tgi),
        (true, Policy::Lightllm),
    ] {
        let mut core = Core::new(params(1 << 20, on), policy);
        run_one(&mut core, 1, &a);
        let s = run_one(&mut core, 2, &a);
        assert_eq!((s.prefill_tokens, s.cached.clone()), (80, vec![(2, 0)]));
        assert_eq!(core.prefix_block_size(), None);
    }
}
