//! vLLM's V1 scheduler (the engine of vLLM 0.8 and later, the only one since 0.11), as a
//! third `impl Core` beside the 2023 policies: every step has one token budget
//! (`--max-num-batched-tokens`) shared by decodes and prefill chunks, so a long prompt
//! is prefilled over several steps while the running requests keep decoding.
//!
//! One step, as `Scheduler.schedule()` does it (vllm/v1/core/sched/scheduler.py):
//! 1. the running requests, oldest first: each takes the tokens it has not computed yet
//!    (1 when decoding; the rest of its prompt, up to the budget left, when prefilling);
//!    a decode that needs a new KV block and finds none preempts the newest running
//!    request (recomputation: its blocks freed, back at the head of the queue);
//! 2. then, unless a request was preempted in this step, the waiting ones in order while
//!    budget, `--max-num-seqs` and free blocks allow: a prefix-cache hit is computed
//!    already (at least the prompt's last token is recomputed), the rest is prefilled in
//!    chunks of at most the budget left.
//!
//! A request emits a token at the end of the step that computed its last uncomputed
//! token: its first after its last prefill chunk, then one per decode step.
//!
//! Simplifications, said here so a calibration can be judged by them: a request's blocks
//! for its whole prompt are allocated when it is admitted (V1 allocates them chunk by
//! chunk: the same unless the KV cache is nearly full); no `--long-prefill-token-threshold`,
//! speculative decoding, priorities, or encoder budget. The step's cost is the profile's
//! model: `prefill_base + prefill_per_token * P` for its `P` prefill tokens plus
//! `decode_base + decode_per_seq * B + decode_per_ctx_token * C` for its `B` decodes.

use crate::engine::scheduler::{Core, Emit, Seq, Step, ceil_div};

/// The positions of `n` tokens computed from position `from` on, summed: `from + (from +
/// 1) + ... + (from + n - 1)`.
fn positions(from: u64, n: u64) -> u64 {
    n * from + n * n.saturating_sub(1) / 2
}

impl Core {
    /// Plans one V1 step (see the module docs). `None` when there is nothing to do.
    pub(super) fn plan_v1(&mut self) -> Option<Step> {
        if self.is_idle() {
            return None;
        }
        let mut step = Step::default();
        let mut budget = self.p.max_prefill_tokens;
        let (decode_batch, decode_ctx) = self.schedule_running(&mut step, &mut budget);
        if step.preempted.is_empty() {
            self.schedule_waiting(&mut step, &mut budget);
        }
        step.decode_batch = decode_batch;
        if step.prefill_tokens == 0 && decode_batch == 0 {
            return None;
        }
        step.duration_ns = self.p.step_ns(
            step.prefill_tokens,
            step.prefill_positions,
            decode_batch,
            decode_ctx,
        );
        self.count_step(&step);
        if let Some(c) = &mut self.cache {
            c.trim(self.total_blocks - self.used_blocks);
        }
        Some(step)
    }

    /// Step 1: the running requests. Returns the decode batch and its context tokens;
    /// prefill chunks are added to `step.prefill_tokens`.
    fn schedule_running(&mut self, step: &mut Step, budget: &mut u64) -> (u64, u64) {
        let (mut batch, mut ctx) = (0, 0);
        let mut i = 0;
        while i < self.running.len() {
            let s = &self.running[i];
            let left = s.context() - s.computed;
            if *budget == 0 || left == 0 {
                self.running[i].scheduled = 0;
                i += 1;
                continue;
            }
            let decoding = s.generated > 0 && left == 1;
            if decoding && !self.v1_decode_block(i, step) {
                break; // `i` itself was preempted: nothing after it runs either
            }
            let n = left.min(*budget);
            let s = &mut self.running[i];
            s.scheduled = n;
            *budget -= n;
            if decoding {
                batch += 1;
                ctx += s.context();
            } else {
                step.prefill_tokens += n;
                step.prefill_positions += positions(s.computed, n);
            }
            i += 1;
        }
        (batch, ctx)
    }

    /// Makes room for the KV of running request `i`'s next token: a new block when that
    /// token starts one, preempting the newest running requests while none is free.
    /// False when `i` itself had to go.
    fn v1_decode_block(&mut self, i: usize, step: &mut Step) -> bool {
        let bs = self.p.block_size as u64;
        loop {
            let s = &self.running[i];
            if ceil_div(s.context(), bs) <= s.blocks + s.hashes.len() as u64 {
                return true;
            }
            if self.used_blocks < self.total_blocks {
                self.used_blocks += 1;
                self.running[i].blocks += 1;
                return true;
            }
            let victim = self.running.len() - 1;
            self.preempt_v1(victim, step);
            if victim == i {
                return false;
            }
        }
    }

    /// Recompute preemption: frees `running[index]`'s blocks and puts it back at the
    /// head of the waiting queue, nothing computed.
    fn preempt_v1(&mut self, index: usize, step: &mut Step) {
        let mut s = self.running.remove(index);
        self.used_blocks -= s.blocks;
        s.blocks = 0;
        if let (true, Some(c)) = (s.pinned, &mut self.cache) {
            self.used_blocks -= c.unpin(&s.hashes);
        }
        s.pinned = false;
        s.computed = 0;
        s.scheduled = 0;
        s.preemptions += 1;
        self.stats.preemptions += 1;
        step.preempted.push(s.req.key);
        self.waiting.push_front(s);
        self.fresh_from = self.running.len();
    }

    /// Step 2: admits waiting requests, in order, with their first prefill chunk.
    fn schedule_waiting(&mut self, step: &mut Step, budget: &mut u64) {
        let bs = self.p.block_size as u64;
        while let Some(s) = self.waiting.front() {
            if *budget == 0 || self.running.len() >= self.p.max_batch_size as usize {
                break;
            }
            let (hit_blocks, pinned_hits) = match (s.known_hit, &self.cache) {
                (Some(h), _) => ((h / bs) as usize, 0),
                (None, Some(c)) => c.hits(&s.hashes),
                (None, None) => (0, 0),
            };
            // At least the prompt's last token is computed again.
            let last_full = ((s.req.prompt_tokens.max(1) - 1) / self.p.block_size) as usize;
            let hit = hit_blocks.min(last_full) as u64 * bs;
            let need = ceil_div(s.prefill_len(), bs) - pinned_hits as u64;
            if self.total_blocks - self.used_blocks < need {
                break;
            }
            let mut s = self.waiting.pop_front().expect("checked");
            s.hit = hit;
            s.computed = hit;
            s.blocks = ceil_div(s.prefill_len(), bs) - s.hashes.len() as u64;
            self.used_blocks += s.blocks;
            if let Some(c) = &mut self.cache {
                self.used_blocks += c.pin(&s.hashes);
                s.pinned = true;
            }
            let n = (s.prefill_len() - hit).min(*budget);
            s.scheduled = n;
            *budget -= n;
            step.prefill_tokens += n;
            step.prefill_positions += positions(hit, n);
            step.admitted.push(s.req.key);
            self.stats.cached_tokens += hit;
            if self.admitted_ever.insert(s.req.key) {
                step.first_admit.push(s.req.key);
                step.cached.push((s.req.key, hit as u32));
            }
            self.running.push(s);
        }
        self.fresh_from = self.running.len();
    }

    /// Applies the V1 step planned last: every scheduled request computes its tokens;
    /// those with nothing left to compute emit their next token; finished ones leave.
    pub(super) fn finish_v1(&mut self, out: &mut Vec<Emit>) {
        let mut emitted = 0;
        for s in &mut self.running {
            if s.scheduled == 0 {
                continue;
            }
            s.computed += std::mem::take(&mut s.scheduled);
            if s.computed < s.context() {
                continue; // a prefill chunk: no token yet
            }
            let index = s.generated;
            s.generated += 1;
            emitted += 1;
            out.push(Emit {
                key: s.req.key,
                index,
                last: s.generated >= s.req.target_tokens,
            });
        }
        self.stats.tokens += emitted;
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].generated >= self.running[i].req.target_tokens {
                let s: Seq = self.running.remove(i);
                self.release(&s);
                self.admitted_ever.remove(&s.req.key);
            } else {
                i += 1;
            }
        }
        self.fresh_from = self.running.len();
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::virtual_time::{VirtualRequest, simulate};
    use crate::profile::{EngineParams, Policy};

    /// A V1 engine: 2048-token budget, 128-token blocks, 32 sequences, simple costs
    /// (prefill 1 ms + 10 µs/token, decode 5 ms + 100 µs/seq).
    fn v1(kv_blocks: u64) -> EngineParams {
        EngineParams {
            kv_capacity_tokens: kv_blocks * 128,
            max_batch_size: 32,
            max_prefill_tokens: 2048,
            block_size: 128,
            watermark: 0.0,
            waiting_served_ratio: 1.2,
            max_waiting_tokens: 20,
            separate_prefill: false,
            prefill_base_us: 1000.0,
            prefill_per_token_us: 10.0,
            decode_base_us: 5000.0,
            decode_per_seq_us: 100.0,
            decode_per_ctx_token_us: 0.0,
            prefill_per_ctx_token_us: 0.0,
            prefix_cache: false,
        }
    }

    fn req(arrival_ms: u64, prompt: u32, out: u32) -> VirtualRequest {
        VirtualRequest {
            arrival_ns: arrival_ms * 1_000_000,
            prompt_tokens: prompt,
            max_tokens: out,
            target_tokens: out,
        }
    }

    #[test]
    fn a_prompt_longer_than_the_budget_is_prefilled_in_chunks() {
        // 5000 tokens = 2048 + 2048 + 904: three prefill steps, then the first token.
        let (r, stats) = simulate(&v1(1000), Policy::VllmV1, &[req(0, 5000, 3)]);
        let chunks = [2048.0, 2048.0, 904.0].map(|t| 1000.0 + 10.0 * t);
        let ttft_us: f64 = chunks.iter().sum();
        assert_eq!(r[0].first_token_ns, (ttft_us * 1000.0) as u64);
        assert_eq!(r[0].output_tokens, 3);
        assert_eq!((stats.prefill_steps, stats.decode_steps), (3, 2));
        assert_eq!(stats.prefill_tokens, 5000);
    }

    /// The attention term: each chunk pays for the positions of its tokens, the tokens
    /// before each in the prompt (2048 x 2047 / 2, then 2048 x 2048 + 2048 x 2047 / 2,
    /// then 904 x 4096 + 904 x 903 / 2), per 1,000, at 2 µs.
    #[test]
    fn a_chunk_pays_for_the_context_it_attends() {
        let mut p = v1(1000);
        p.prefill_per_ctx_token_us = 2.0;
        let (r, _) = simulate(&p, Policy::VllmV1, &[req(0, 5000, 3)]);
        let positions: [f64; 3] = [
            2048.0 * 2047.0 / 2.0,
            2048.0 * 2048.0 + 2048.0 * 2047.0 / 2.0,
            904.0 * 4096.0 + 904.0 * 903.0 / 2.0,
        ];
        let chunks = [2048.0, 2048.0, 904.0];
        let ttft_ns: u64 = (0..3)
            .map(|i| {
                ((1000.0 + 10.0 * chunks[i] + 2.0 * positions[i] / 1000.0) * 1000.0).round() as u64
            })
            .sum();
        assert_eq!(r[0].first_token_ns, ttft_ns);
    }

    /// A hit a real server reported: the request prefills only what was not cached (at
    /// least its last block is computed again, as vLLM), whatever the model's cache
    /// holds; the 2048-token budget then takes the 744-token rest in one step.
    #[test]
    fn a_known_hit_is_not_prefilled_again() {
        use crate::engine::virtual_time::{VirtualOptions, simulate_with};
        let mut p = v1(1000);
        p.prefix_cache = true;
        let reqs = [req(0, 1000, 2)];
        let opts = |hits| VirtualOptions {
            known_hits: Some(hits),
            ..Default::default()
        };
        let (hit, _) = simulate_with(&p, Policy::VllmV1, &reqs, &opts(&[256]));
        let (none, _) = simulate_with(&p, Policy::VllmV1, &reqs, &opts(&[0]));
        assert_eq!(hit[0].cached_tokens, 256);
        assert_eq!(
            none[0].first_token_ns,
            (1000.0 + 10.0 * 1000.0) as u64 * 1000
        );
        assert_eq!(hit[0].first_token_ns, (1000.0 + 10.0 * 744.0) as u64 * 1000);
    }

    #[test]
    fn decodes_go_on_while_another_prompt_is_chunked() {
        // A decodes alone, then B's 6000-token prompt arrives: every step after carries
        // A's decode and one chunk of B (mixed steps), so A's tokens keep coming.
        let (r, _) = simulate(
            &v1(1000),
            Policy::VllmV1,
            &[req(0, 10, 20), req(30, 6000, 2)],
        );
        let a = &r[0];
        // A's 20 tokens: its prefill step, then 19 decodes. B arrives during the 7th
        // step and joins at the next boundary: 3 of A's decodes carry one chunk of B
        // each (2047 + 2047 + 1906 tokens: the budget A's decode leaves), then one
        // carries B's second token too (a batch of 2).
        let alone_us = 1000.0 + 10.0 * 10.0 + 19.0 * 5100.0;
        let mixed_extra_us = 3.0 * 1000.0 + 10.0 * 6000.0 + 100.0;
        let expect_ns = ((alone_us + mixed_extra_us) * 1000.0) as u64;
        assert_eq!(a.finished_ns, expect_ns);
        assert_eq!(r[1].output_tokens, 2);
    }

    #[test]
    fn at_most_max_num_seqs_run_and_the_rest_wait() {
        let burst: Vec<VirtualRequest> = (0..40).map(|_| req(0, 100, 10)).collect();
        let (r, stats) = simulate(&v1(1000), Policy::VllmV1, &burst);
        assert_eq!(stats.max_batch, 32);
        assert!(r.iter().all(|x| x.output_tokens == 10 && !x.rejected));
        // The last 8 start once the first 32 finish.
        let first_done = r[..32].iter().map(|x| x.finished_ns).min().unwrap();
        assert!(r[32..].iter().all(|x| x.admitted_ns >= first_done));
    }

    #[test]
    fn a_full_kv_cache_preempts_the_newest_request_to_recompute_it() {
        // 6 blocks of 128: two requests of 300 + 300 tokens outgrow it.
        let (r, stats) = simulate(
            &v1(6),
            Policy::VllmV1,
            &[req(0, 300, 300), req(0, 300, 300)],
        );
        assert!(stats.preemptions >= 1);
        assert_eq!(
            r[1].preemptions as u64, stats.preemptions,
            "the newer one goes"
        );
        assert!(r.iter().all(|x| x.output_tokens == 300));
    }

    #[test]
    fn the_schedule_is_deterministic() {
        let trace: Vec<VirtualRequest> = (0..500u64)
            .map(|i| req(i * 7, 1 + (i * 37 % 3000) as u32, 1 + (i * 53 % 300) as u32))
            .collect();
        let a = simulate(&v1(300), Policy::VllmV1, &trace);
        let b = simulate(&v1(300), Policy::VllmV1, &trace);
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert!(a.0.iter().all(|x| x.output_tokens > 0));
    }
}
