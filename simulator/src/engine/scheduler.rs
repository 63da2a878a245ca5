//! The engine model: iteration-level (continuous) batching under a KV-cache capacity.
//!
//! [`Core`] is a pure state machine with no clock: [`Core::plan`] chooses what the next
//! step does (which waiting requests are admitted and prefilled, which running ones are
//! preempted, which decode) and how long it takes; [`Core::finish_step`] applies it (every
//! member gains one token). Two drivers run the same core:
//! - [`crate::realtime`], an OS thread that owns the core, takes requests over a channel,
//!   sleeps each step's duration and sends each token to its request's channel when the
//!   step ends (the HTTP handler writes it to the client);
//! - [`simulate`], a discrete-event loop in virtual time (no sleeping): a 1000-request
//!   trace runs in milliseconds, exactly and deterministically. It is used to calibrate
//!   profiles and to test the model against analytic values.
//!
//! Why a single owner and channels: the scheduler is inherently sequential (one GPU
//! runs one batch at a time), so a lock-free single owner is both the simplest and the
//! fastest design; HTTP handlers never block it (unbounded token channels), and a handler
//! whose client went away is noticed when its channel is closed and its request freed.

use std::collections::VecDeque;

use std::time::Instant;

use tokio::sync::mpsc;

use crate::prefix::PrefixCache;
use crate::profile::{EngineParams, Policy};

/// A request as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineRequest {
    /// Caller's key (unique among live requests).
    pub key: u64,
    pub prompt_tokens: u32,
    /// The request's output limit: what admission policies reserve for.
    pub max_tokens: u32,
    /// How many tokens it will really produce (<= max_tokens; smaller on an early EOS).
    pub target_tokens: u32,
}

#[derive(Debug)]
struct Seq {
    req: EngineRequest,
    generated: u32,
    /// Tokens whose KV must be (re)computed at the next prefill: the prompt, plus the
    /// generated tokens after a recompute preemption.
    /// (vLLM policy: blocks it holds alone; its full prompt blocks are pinned in the
    /// prefix cache when it has one, and counted there.)
    blocks: u64,
    preemptions: u32,
    /// Hashes of its full prompt blocks (empty without a prefix cache).
    hashes: Vec<u64>,
    /// `hashes` are pinned in the prefix cache (it is running).
    pinned: bool,
    /// Prompt tokens found in the prefix cache at its latest admission.
    hit: u64,
}

impl Seq {
    fn context(&self) -> u64 {
        self.req.prompt_tokens as u64 + self.generated as u64
    }
    /// Tokens to prefill when (re)admitted.
    fn prefill_len(&self) -> u64 {
        self.context()
    }
    fn reservation(&self) -> u64 {
        self.req.prompt_tokens as u64 + self.req.max_tokens as u64
    }
}

/// What one step does.
#[derive(Debug, Default, Clone)]
pub struct Step {
    pub duration_ns: u64,
    /// Keys admitted (prefilled) in this step; the first time for those in `first_admit`.
    pub admitted: Vec<u64>,
    pub first_admit: Vec<u64>,
    /// Keys preempted (evicted, to be recomputed) before this step.
    pub preempted: Vec<u64>,
    /// Prompt tokens prefilled (cache hits excluded).
    pub prefill_tokens: u64,
    pub decode_batch: u64,
    /// (key, prompt tokens found in the prefix cache) of the keys in `first_admit`.
    pub cached: Vec<(u64, u32)>,
}

/// A token produced at the end of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emit {
    pub key: u64,
    /// 0-based index of the token in the request's output.
    pub index: u32,
    /// The request is finished with this token.
    pub last: bool,
}

/// The scheduler state (see the module docs).
#[derive(Debug)]
pub struct Core {
    p: EngineParams,
    policy: Policy,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    /// Index in `running` from which requests were prefilled in the current step (they
    /// do not decode in it when steps are separate).
    fresh_from: usize,
    total_blocks: u64,
    used_blocks: u64,
    /// TGI: tokens reserved by the running batch.
    reserved: u64,
    /// Decode steps since the last admission (TGI, LightLLM).
    steps_since_admit: u32,
    admitted_ever: std::collections::HashSet<u64>,
    /// Whether the step planned last decodes the running batch.
    pending_decode: bool,
    /// vLLM policy with `prefix_cache`: the automatic prefix cache.
    cache: Option<PrefixCache>,
    pub stats: CoreStats,
}

/// Counters over the core's life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CoreStats {
    pub steps: u64,
    pub prefill_steps: u64,
    pub decode_steps: u64,
    pub tokens: u64,
    pub preemptions: u64,
    pub max_batch: u64,
    /// Peak KV usage in tokens (vLLM: blocks * block size).
    pub peak_kv_tokens: u64,
    /// Prompt tokens found in the prefix cache over every admission.
    pub cached_tokens: u64,
    /// Prompt (and recomputed) tokens prefilled over every step, cache hits excluded.
    pub prefill_tokens: u64,
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

impl Core {
    pub fn new(params: EngineParams, policy: Policy) -> Core {
        let total_blocks = params.kv_capacity_tokens / params.block_size as u64;
        let cache = (params.prefix_cache && policy == Policy::Vllm).then(PrefixCache::default);
        Core {
            p: params,
            policy,
            waiting: VecDeque::new(),
            running: Vec::new(),
            fresh_from: 0,
            total_blocks,
            used_blocks: 0,
            reserved: 0,
            steps_since_admit: 0,
            admitted_ever: Default::default(),
            pending_decode: false,
            cache,
            stats: CoreStats::default(),
        }
    }

    pub fn params(&self) -> &EngineParams {
        &self.p
    }

    /// The block size prompts are hashed at when this core has a prefix cache.
    pub fn prefix_block_size(&self) -> Option<u32> {
        self.cache.as_ref().map(|_| self.p.block_size)
    }

    /// Queue a request. Requests that can never fit (prompt + output over the KV
    /// capacity) must be rejected by the caller; the core would hold them forever.
    pub fn submit(&mut self, req: EngineRequest) {
        self.submit_prefixed(req, Vec::new());
    }

    /// [`Core::submit`] with the hashes of the prompt's full blocks
    /// ([`crate::prefix::BlockHasher`] at this engine's block size), for the prefix
    /// cache; ignored without one.
    pub fn submit_prefixed(&mut self, req: EngineRequest, mut hashes: Vec<u64>) {
        debug_assert!(req.target_tokens >= 1 && req.target_tokens <= req.max_tokens);
        if self.cache.is_none() {
            hashes = Vec::new();
        }
        hashes.truncate((req.prompt_tokens / self.p.block_size) as usize);
        self.waiting.push_back(Seq {
            req,
            generated: 0,
            blocks: 0,
            preemptions: 0,
            hashes,
            pinned: false,
            hit: 0,
        });
    }

    /// Largest prompt + max_tokens that can ever be scheduled.
    pub fn fits(&self, prompt_tokens: u32, max_tokens: u32) -> bool {
        let total = prompt_tokens as u64 + max_tokens as u64;
        match self.policy {
            Policy::Vllm => {
                let bs = self.p.block_size as u64;
                let watermark = (self.p.watermark * self.total_blocks as f64) as u64;
                ceil_div(total, bs) <= self.total_blocks
                    && ceil_div(prompt_tokens as u64, bs) + watermark <= self.total_blocks
                    && (prompt_tokens as u64) <= self.p.max_prefill_tokens
            }
            _ => {
                total <= self.p.kv_capacity_tokens
                    && (prompt_tokens as u64) <= self.p.max_prefill_tokens
            }
        }
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }
    pub fn running_len(&self) -> usize {
        self.running.len()
    }
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Drops the prefix cache (vLLM `POST /reset_prefix_cache`, SGLang `POST
    /// /flush_cache`). `Some(false)` when refused: a running request holds cached
    /// blocks, or, with `require_idle` (SGLang), any request is running or waiting.
    /// `None`: this core has no prefix cache (nothing to drop).
    pub fn reset_prefix_cache(&mut self, require_idle: bool) -> Option<bool> {
        let busy = require_idle && !self.is_idle();
        let cache = self.cache.as_mut()?;
        Some(!busy && cache.clear())
    }

    /// Remove a request wherever it is (its client went away), freeing its resources.
    pub fn cancel(&mut self, key: u64) {
        if let Some(i) = self.waiting.iter().position(|s| s.req.key == key) {
            self.waiting.remove(i);
        } else if let Some(i) = self.running.iter().position(|s| s.req.key == key) {
            let s = self.running.remove(i);
            self.release(&s);
            if i < self.fresh_from {
                self.fresh_from -= 1;
            }
        }
        self.admitted_ever.remove(&key);
    }

    fn release(&mut self, s: &Seq) {
        self.used_blocks -= s.blocks;
        self.reserved -= s.reservation().min(self.reserved);
        if let (true, Some(c)) = (s.pinned, &mut self.cache) {
            self.used_blocks -= c.unpin(&s.hashes);
        }
    }

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
        }
        let admitted = !step.admitted.is_empty();
        if admitted {
            self.steps_since_admit = 0;
        }
        let decode = !admitted || !self.p.separate_prefill;
        if decode && self.policy == Policy::Vllm {
            self.vllm_reserve_decode_slots(&mut step);
        }
        let mut decode_batch = 0;
        let mut decode_ctx = 0;
        if decode {
            for s in &self.running[..self.fresh_from] {
                decode_batch += 1;
                decode_ctx += s.context();
            }
            if decode_batch > 0 && !admitted {
                self.steps_since_admit = self.steps_since_admit.saturating_add(1);
            }
        }
        step.decode_batch = decode_batch;
        step.duration_ns = self
            .p
            .step_ns(step.prefill_tokens, decode_batch, decode_ctx);
        if step.prefill_tokens == 0 && decode_batch == 0 {
            // Waiting requests that cannot be admitted with nothing running: cannot
            // happen for requests that `fits`; do nothing rather than spin.
            return None;
        }
        self.stats.steps += 1;
        if step.prefill_tokens > 0 {
            self.stats.prefill_steps += 1;
        }
        if decode_batch > 0 {
            self.stats.decode_steps += 1;
        }
        self.stats.max_batch = self.stats.max_batch.max(self.running.len() as u64);
        let kv = self.kv_tokens();
        self.stats.peak_kv_tokens = self.stats.peak_kv_tokens.max(kv);
        self.stats.prefill_tokens += step.prefill_tokens;
        if let Some(c) = &mut self.cache {
            c.trim(self.total_blocks - self.used_blocks);
        }
        self.pending_decode = decode;
        Some(step)
    }

    /// KV-cache tokens in use (vLLM: blocks held, prefix-cache pins included, times the
    /// block size; TGI: tokens reserved; LightLLM: the running contexts plus one).
    fn kv_tokens(&self) -> u64 {
        match self.policy {
            Policy::Vllm => self.used_blocks * self.p.block_size as u64,
            Policy::Tgi => self.reserved,
            Policy::Lightllm => self.running.iter().map(|s| s.context() + 1).sum(),
        }
    }

    /// Fraction of the KV cache in use, 0 to 1 (what `vllm:kv_cache_usage_perc` says).
    pub fn kv_usage(&self) -> f64 {
        let capacity = match self.policy {
            Policy::Vllm => self.total_blocks * self.p.block_size as u64,
            _ => self.p.kv_capacity_tokens,
        };
        if capacity == 0 {
            return 0.0;
        }
        (self.kv_tokens() as f64 / capacity as f64).min(1.0)
    }

    /// Apply the step planned last: prefilled requests get their first (next) token,
    /// decoding ones one more. Finished requests leave and free their memory.
    pub fn finish_step(&mut self, out: &mut Vec<Emit>) {
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

    fn admit_one(&mut self, step: &mut Step) {
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
    fn admit_tgi(&mut self, step: &mut Step) {
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
    fn admit_vllm(&mut self, step: &mut Step) {
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
    fn vllm_reserve_decode_slots(&mut self, step: &mut Step) {
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
    fn admit_lightllm(&mut self, step: &mut Step) {
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

/// Messages from the engine to one request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// First admission (start of its first prefill step), ns on the server clock;
    /// `cached`: its prompt tokens found in the prefix cache then.
    Admitted { at_ns: u64, cached: u32 },
    /// Evicted, to be recomputed.
    Preempted,
    /// A token at the end of a step.
    Token { index: u32, last: bool, at_ns: u64 },
}

/// A request sent to the real-time engine ([`crate::realtime`]).
pub struct Submission {
    pub req: EngineRequest,
    /// Its prompt's block hashes, for the prefix cache (may be empty).
    pub hashes: Vec<u64>,
    pub events: mpsc::UnboundedSender<EngineEvent>,
}

/// The server's clock: ns since start, monotonic.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    /// Wall-clock time of `start`, ns since the Unix epoch (ties truth-log times to a run
    /// log's `started_unix_ns` on the same machine).
    pub started_unix_ns: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start = Instant::now();
        let started_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Clock {
            start,
            started_unix_ns,
        }
    }
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }
    pub fn ns_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A request for [`simulate`].
#[derive(Debug, Clone, Copy)]
pub struct VirtualRequest {
    pub arrival_ns: u64,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// Output tokens really produced (= max_tokens with ignore_eos).
    pub target_tokens: u32,
}

/// The fate of one request in [`simulate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualResult {
    pub admitted_ns: u64,
    pub first_token_ns: u64,
    pub finished_ns: u64,
    pub output_tokens: u32,
    pub preemptions: u32,
    /// Never scheduled because it cannot fit the engine at all.
    pub rejected: bool,
}

/// Run the engine model in virtual time (no sleeping): same core, same step costs as the
/// real-time task, arrivals admitted at the first step boundary at or after their time.
pub fn simulate(
    params: &EngineParams,
    policy: Policy,
    requests: &[VirtualRequest],
) -> (Vec<VirtualResult>, CoreStats) {
    let mut core = Core::new(params.clone(), policy);
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (requests[i].arrival_ns, i));
    let mut results = vec![VirtualResult::default(); requests.len()];
    let mut next = 0;
    let mut t = 0u64;
    let mut emits = Vec::new();
    loop {
        while next < order.len() && requests[order[next]].arrival_ns <= t {
            let i = order[next];
            let r = requests[i];
            next += 1;
            if !core.fits(r.prompt_tokens, r.max_tokens) || r.target_tokens == 0 {
                results[i].rejected = true;
                continue;
            }
            core.submit(EngineRequest {
                key: i as u64,
                prompt_tokens: r.prompt_tokens,
                max_tokens: r.max_tokens,
                target_tokens: r.target_tokens.min(r.max_tokens),
            });
        }
        let Some(step) = core.plan() else {
            if next >= order.len() {
                break;
            }
            t = t.max(requests[order[next]].arrival_ns);
            continue;
        };
        for &k in &step.first_admit {
            results[k as usize].admitted_ns = t;
        }
        for &k in &step.preempted {
            results[k as usize].preemptions += 1;
        }
        t += step.duration_ns;
        emits.clear();
        core.finish_step(&mut emits);
        for e in &emits {
            let r = &mut results[e.key as usize];
            if e.index == 0 {
                r.first_token_ns = t;
            }
            r.output_tokens = e.index + 1;
            if e.last {
                r.finished_ns = t;
            }
        }
    }
    (results, core.stats)
}
