//! The scheduler state machine: [`Core`] holds the waiting and running requests and the
//! KV cache; [`Core::plan`] chooses what the next step does (which waiting requests are
//! admitted and prefilled, which running ones are preempted, which decode) and how long
//! it takes; [`Core::finish_step`] applies it (every member gains one token). It has no
//! clock: the drivers ([`crate::engine::realtime`], [`crate::engine::virtual_time`])
//! give it time. Who is admitted is each policy's own rule, in
//! [`crate::engine::admission`].

use std::collections::VecDeque;

use crate::engine::prefix::PrefixCache;
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
pub(super) struct Seq {
    pub(super) req: EngineRequest,
    pub(super) generated: u32,
    /// Tokens whose KV must be (re)computed at the next prefill: the prompt, plus the
    /// generated tokens after a recompute preemption.
    /// (vLLM policy: blocks it holds alone; its full prompt blocks are pinned in the
    /// prefix cache when it has one, and counted there.)
    pub(super) blocks: u64,
    pub(super) preemptions: u32,
    /// Hashes of its full prompt blocks (empty without a prefix cache).
    pub(super) hashes: Vec<u64>,
    /// `hashes` are pinned in the prefix cache (it is running).
    pub(super) pinned: bool,
    /// Prompt tokens found in the prefix cache at its latest admission.
    pub(super) hit: u64,
    /// V1 policy: the prompt tokens a real server reported cached for this request
    /// ([`Core::submit_known_hit`]): its hit at every admission, whatever the cache holds.
    pub(super) known_hit: Option<u64>,
    /// V1 policy: tokens of its context whose KV is computed (a prefill chunk at a time,
    /// then one per decode step), and the tokens scheduled in the step planned last.
    pub(super) computed: u64,
    pub(super) scheduled: u64,
}

impl Seq {
    pub(super) fn context(&self) -> u64 {
        self.req.prompt_tokens as u64 + self.generated as u64
    }
    /// Tokens to prefill when (re)admitted.
    pub(super) fn prefill_len(&self) -> u64 {
        self.context()
    }
    pub(super) fn reservation(&self) -> u64 {
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
    /// The positions of those tokens in their prompts, summed (tokens before each, cached
    /// or computed): what the step's prefill attends over (V1 policy; 0 for the others).
    pub prefill_positions: u64,
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
    pub(super) p: EngineParams,
    pub(super) policy: Policy,
    pub(super) waiting: VecDeque<Seq>,
    pub(super) running: Vec<Seq>,
    /// Index in `running` from which requests were prefilled in the current step (they
    /// do not decode in it when steps are separate).
    pub(super) fresh_from: usize,
    pub(super) total_blocks: u64,
    pub(super) used_blocks: u64,
    /// TGI: tokens reserved by the running batch.
    pub(super) reserved: u64,
    /// Decode steps since the last admission (TGI, LightLLM).
    pub(super) steps_since_admit: u32,
    pub(super) admitted_ever: std::collections::HashSet<u64>,
    /// Whether the step planned last decodes the running batch.
    pub(super) pending_decode: bool,
    /// vLLM policy with `prefix_cache`: the automatic prefix cache.
    pub(super) cache: Option<PrefixCache>,
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

pub(super) fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

impl Core {
    pub fn new(params: EngineParams, policy: Policy) -> Core {
        let total_blocks = params.kv_capacity_tokens / params.block_size as u64;
        let cache = (params.prefix_cache && policy.pages_kv()).then(PrefixCache::default);
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
    /// ([`crate::engine::prefix::BlockHasher`] at this engine's block size), for the prefix
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
            known_hit: None,
            computed: 0,
            scheduled: 0,
        });
    }

    /// [`Core::submit`] for a request whose prefix-cache hit is known: the prompt tokens
    /// the real server reported cached (`usage.prompt_tokens_details.cached_tokens`), so
    /// a model of a measured run prefills what the server prefilled. V1 policy only (the
    /// others ignore it); the blocks are counted as the request's own.
    pub fn submit_known_hit(&mut self, req: EngineRequest, cached_tokens: u32) {
        self.submit_prefixed(req, Vec::new());
        if let Some(s) = self.waiting.back_mut() {
            s.known_hit = Some(cached_tokens as u64);
        }
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
            // Chunked prefill: a prompt of any length fits if its blocks do.
            Policy::VllmV1 => ceil_div(total, self.p.block_size as u64) <= self.total_blocks,
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

    pub(super) fn release(&mut self, s: &Seq) {
        self.used_blocks -= s.blocks;
        self.reserved -= s.reservation().min(self.reserved);
        if let (true, Some(c)) = (s.pinned, &mut self.cache) {
            self.used_blocks -= c.unpin(&s.hashes);
        }
    }

    /// KV-cache tokens in use (vLLM: blocks held, prefix-cache pins included, times the
    /// block size; TGI: tokens reserved; LightLLM: the running contexts plus one).
    pub(super) fn kv_tokens(&self) -> u64 {
        match self.policy {
            Policy::Vllm | Policy::VllmV1 => self.used_blocks * self.p.block_size as u64,
            Policy::Tgi => self.reserved,
            Policy::Lightllm => self.running.iter().map(|s| s.context() + 1).sum(),
        }
    }

    /// Fraction of the KV cache in use, 0 to 1 (what `vllm:kv_cache_usage_perc` says).
    pub fn kv_usage(&self) -> f64 {
        let capacity = match self.policy {
            Policy::Vllm | Policy::VllmV1 => self.total_blocks * self.p.block_size as u64,
            _ => self.p.kv_capacity_tokens,
        };
        if capacity == 0 {
            return 0.0;
        }
        (self.kv_tokens() as f64 / capacity as f64).min(1.0)
    }
}
