//! Admission: which waiting requests join the running batch at a step, by each
//! server's own rule (TGI 1.0.2's token budget, vLLM's KV blocks and watermark,
//! LightLLM's peak-usage estimate), as a second `impl Core` beside the state machine's.

use crate::engine::scheduler::{Core, Seq, Step, ceil_div};

impl Core {
    pub(super) fn admit_one(&mut self, step: &mut Step) {
        let s = self.waiting.pop_front().expect("caller checked");
        step.prefill_tokens += s.prefill_len() - s.hit;
        step.admitted.push(s.req.key);
        self.stats.cached_tokens += s.hit;
        if self.admitted_ever.insert(s.req.key) {
            step.first_admit.push(s.req.key);
            step.cached.push((s.req.key, s.hit as u32));
        }
        self.running.push(s);
    }

    /// TGI 1.0.2 `batching_task` + `Queue::next_batch`.
    pub(super) fn admit_tgi(&mut self, step: &mut Step) {
        let running = self.running.len();
        let min_size = if running == 0 || self.steps_since_admit >= self.p.max_waiting_tokens {
            0
        } else {
            (running as f64 * self.p.waiting_served_ratio).floor() as usize
        };
        // Count how many FCFS entries fit the budgets before admitting any.
        let budget = self.p.kv_capacity_tokens.saturating_sub(self.reserved);
        let (mut prefill, mut total, mut n) = (0u64, 0u64, 0usize);
        for s in &self.waiting {
            if running + n >= self.p.max_batch_size as usize {
                break;
            }
            let pl = s.prefill_len();
            let r = s.reservation();
            if prefill + pl > self.p.max_prefill_tokens || total + r > budget {
                break;
            }
            prefill += pl;
            total += r;
            n += 1;
        }
        if n == 0 || n < min_size {
            return;
        }
        for _ in 0..n {
            let r = self.waiting.front().map(Seq::reservation).unwrap_or(0);
            self.reserved += r;
            self.admit_one(step);
        }
    }

    /// vLLM 0.1.x `Scheduler._schedule`: FCFS admission while blocks (above the
    /// watermark), the batched-token limit and max_num_seqs allow.
    pub(super) fn admit_vllm(&mut self, step: &mut Step) {
        let watermark = (self.p.watermark * self.total_blocks as f64) as u64;
        let bs = self.p.block_size as u64;
        while let Some(s) = self.waiting.front() {
            if self.running.len() >= self.p.max_batch_size as usize {
                break;
            }
            let (hit_blocks, pinned_hits) = match &self.cache {
                Some(c) => c.hits(&s.hashes),
                None => (0, 0),
            };
            // At least the prompt's last token is computed (vLLM).
            let hit_blocks =
                hit_blocks.min(((s.req.prompt_tokens.max(1) - 1) / self.p.block_size) as usize);
            let hit = hit_blocks as u64 * bs;
            let pl = s.prefill_len() - hit;
            if step.prefill_tokens + pl > self.p.max_prefill_tokens {
                break;
            }
            // Blocks already pinned by a running request are shared, not allocated.
            let need = ceil_div(s.prefill_len(), bs) - pinned_hits as u64;
            if self.total_blocks - self.used_blocks < need + watermark {
                break;
            }
            let s = self.waiting.front_mut().expect("checked");
            s.hit = hit;
            s.blocks = ceil_div(s.prefill_len(), bs) - s.hashes.len() as u64;
            self.used_blocks += s.blocks;
            if let Some(c) = &mut self.cache {
                self.used_blocks += c.pin(&s.hashes);
                s.pinned = true;
            }
            self.admit_one(step);
        }
    }

    /// vLLM decode: every running sequence whose next token starts a new block needs a
    /// free block; when there is none, preempt the newest running sequence (recompute:
    /// free its blocks, put it back at the head of the waiting queue).
    pub(super) fn vllm_reserve_decode_slots(&mut self, step: &mut Step) {
        let bs = self.p.block_size as u64;
        let mut i = 0;
        while i < self.fresh_from {
            let needs = {
                let s = &self.running[i];
                // A decode step computes the KV of the last generated token, at position
                // context() - 1: it needs a new block when that position starts one.
                ceil_div(s.context(), bs) > s.blocks + s.hashes.len() as u64
            };
            if !needs {
                i += 1;
                continue;
            }
            if self.used_blocks < self.total_blocks {
                self.used_blocks += 1;
                self.running[i].blocks += 1;
                i += 1;
                continue;
            }
            // Out of blocks: evict the newest (last) running sequence, possibly `i` itself.
            let victim_index = self.fresh_from - 1;
            let mut victim = self.running.remove(victim_index);
            self.fresh_from -= 1;
            self.used_blocks -= victim.blocks;
            victim.blocks = 0;
            if let (true, Some(c)) = (victim.pinned, &mut self.cache) {
                self.used_blocks -= c.unpin(&victim.hashes);
            }
            victim.pinned = false;
            victim.preemptions += 1;
            self.stats.preemptions += 1;
            step.preempted.push(victim.req.key);
            self.waiting.push_front(victim);
            // retry the same `i` (unless it was the victim, then the loop ends).
        }
    }

    /// LightLLM ReqQueue: admit while the peak of future KV use of the running batch plus
    /// the candidates, each growing to its max_new_tokens, fits the capacity. New batches
    /// are formed when nothing runs or every `max_waiting_tokens` decode steps.
    pub(super) fn admit_lightllm(&mut self, step: &mut Step) {
        if !self.running.is_empty() && self.steps_since_admit < self.p.max_waiting_tokens {
            return;
        }
        // (current length, remaining output) of every running request.
        let mut lens: Vec<(u64, u64)> = self
            .running
            .iter()
            .map(|s| (s.context(), (s.req.max_tokens - s.generated) as u64))
            .collect();
        let mut prefill = 0u64;
        while let Some(s) = self.waiting.front() {
            if self.running.len() >= self.p.max_batch_size as usize {
                break;
            }
            let pl = s.prefill_len();
            if prefill + pl > self.p.max_prefill_tokens {
                break;
            }
            lens.push((pl + 1, (s.req.max_tokens - s.generated - 1) as u64));
            if lightllm_peak(&mut lens) > self.p.kv_capacity_tokens {
                break;
            }
            prefill += pl;
            self.admit_one(step);
        }
    }
}

/// Peak KV tokens of a batch whose members grow by one token per step until done:
/// sort by remaining output descending; the peak is `max_i(cum_len[i] + left[i] * (i+1))`
/// (LightLLM's `_can_add_new_req`).
fn lightllm_peak(lens: &mut [(u64, u64)]) -> u64 {
    lens.sort_by_key(|l| std::cmp::Reverse(l.1));
    let mut cum = 0;
    let mut peak = 0;
    for (i, &(len, left)) in lens.iter().enumerate() {
        cum += len;
        peak = peak.max(cum + left * (i as u64 + 1));
    }
    peak
}
