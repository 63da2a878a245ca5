//! One engine step: [`Core::plan`] admits (by the policy's rule, see
//! [`crate::engine::admission`]), picks the decoding requests and prices the step with
//! the profile's cost model; [`Core::finish_step`] gives every member its token and
//! releases the finished ones. A second `impl Core` beside the state machine's own.

use crate::engine::scheduler::{Core, Emit, Step};
use crate::profile::Policy;

impl Core {
    /// Decide the next step. `None` when there is nothing to do.
    pub fn plan(&mut self) -> Option<Step> {
        if self.is_idle() {
            return None;
        }
        let mut step = Step::default();
        match self.policy {
            Policy::Tgi => self.admit_tgi(&mut step),
            Policy::Vllm => self.admit_vllm(&mut step),
            Policy::Lightllm => self.admit_lightllm(&mut step),
            Policy::VllmV1 => return self.plan_v1(),
        }
        let admitted = !step.admitted.is_empty();
        if admitted {
            self.steps_since_admit = 0;
        }
        let decode = !admitted || !self.p.separate_prefill;
        if decode && self.policy == Policy::Vllm {
            self.vllm_reserve_decode_slots(&mut step);
        }
        let (decode_batch, decode_ctx) = if decode { self.decode_load() } else { (0, 0) };
        if decode_batch > 0 && !admitted {
            self.steps_since_admit = self.steps_since_admit.saturating_add(1);
        }
        step.decode_batch = decode_batch;
        step.duration_ns = self.p.step_ns(
            step.prefill_tokens,
            step.prefill_positions,
            decode_batch,
            decode_ctx,
        );
        if step.prefill_tokens == 0 && decode_batch == 0 {
            // Waiting requests that cannot be admitted with nothing running: cannot
            // happen for requests that `fits`; do nothing rather than spin.
            return None;
        }
        self.count_step(&step);
        if let Some(c) = &mut self.cache {
            c.trim(self.total_blocks - self.used_blocks);
        }
        self.pending_decode = decode;
        Some(step)
    }

    /// Requests decoding in this step (the running batch, not the freshly prefilled)
    /// and their total context, tokens.
    fn decode_load(&self) -> (u64, u64) {
        let batch = &self.running[..self.fresh_from];
        (batch.len() as u64, batch.iter().map(|s| s.context()).sum())
    }

    /// Adds a planned step to [`Core::stats`](crate::engine::scheduler::CoreStats).
    pub(super) fn count_step(&mut self, step: &Step) {
        self.stats.steps += 1;
        if step.prefill_tokens > 0 {
            self.stats.prefill_steps += 1;
        }
        if step.decode_batch > 0 {
            self.stats.decode_steps += 1;
        }
        self.stats.max_batch = self.stats.max_batch.max(self.running.len() as u64);
        let kv = self.kv_tokens();
        self.stats.peak_kv_tokens = self.stats.peak_kv_tokens.max(kv);
        self.stats.prefill_tokens += step.prefill_tokens;
    }

    /// Apply the step planned last: prefilled requests get their first (next) token,
    /// decoding ones one more. Finished requests leave and free their memory.
    pub fn finish_step(&mut self, out: &mut Vec<Emit>) {
        if self.policy == Policy::VllmV1 {
            return self.finish_v1(out);
        }
        let decode = self.pending_decode;
        let start = if decode { 0 } else { self.fresh_from };
        for s in &mut self.running[start..] {
            let index = s.generated;
            s.generated += 1;
            out.push(Emit {
                key: s.req.key,
                index,
                last: s.generated >= s.req.target_tokens,
            });
        }
        self.stats.tokens += (self.running.len() - start) as u64;
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].generated >= self.running[i].req.target_tokens {
                let s = self.running.remove(i);
                self.release(&s);
                self.admitted_ever.remove(&s.req.key);
            } else {
                i += 1;
            }
        }
        self.fresh_from = self.running.len();
    }
}
