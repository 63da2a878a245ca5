//! Shared-prefix synthesis (`prefix = { groups, tokens, share, zipf_s }` in a spec).
//!
//! Prefix caches (vLLM automatic prefix caching, SGLang RadixAttention) make a request
//! cheaper when its prompt starts with tokens the server has already seen: a system
//! prompt, few-shot examples, a shared document. A spec with `prefix` makes that reuse
//! part of the trace, exactly and reproducibly.
//!
//! # The prefixes
//! Group `g` (`0..groups`) has the prefix text of the prefix-reuse block with hash id
//! `g` and `tokens` tokens ([`crate::import::block`]): a function of `(seed, g, tokens)` only,
//! whose first word already differs between groups (for `g` below the vocabulary size),
//! so two groups share no token. Under a tokenizer the prefix encodes alone to exactly
//! `tokens` ids, and every prompt's recorded ids start with those ids (checked for each
//! prompt), so servers see a shared *token* prefix, not only shared bytes.
//!
//! # A request's prompt
//! The prompt-length draw `n` (stream 1, unchanged) is raised to at least `tokens + 1`,
//! so every request has a suffix of its own; the prompt is the group's prefix, a space,
//! and `n - tokens` words made as a unique prompt of that length for the request
//! ([`crate::prompt`]: its first words spell the request id). Removing `prefix` from a
//! spec whose prompt lengths are all above `tokens` keeps every length, output length
//! and arrival: the same workload with unique prompts, the control for a cache test.
//!
//! # Which group
//! `round_robin`: request `i` uses group `i mod groups` (no draw). `uniform`: one draw
//! per request from stream 6, `below(groups)`. `zipf`: one draw per request from stream
//! 6, `u` uniform in `[0, 1)`; group `g` is the first with `u * W < W_g`, where
//! `W_g = sum_{j <= g} (j + 1)^-s` (summed in group order, `x^-s` as
//! `exp(-s * ln x)` with the portable `libm`) and `W = W_{groups-1}`: probability
//! proportional to `(g + 1)^-s`, group 0 the most shared.

use std::collections::HashMap;

use formats::{PrefixShare, PrefixSpec};

use crate::error::{GenError, Result};
use crate::import::block::BlockBuilder;
use crate::prompt::{Prompt, PromptSource};
use crate::rng::{Purpose, SeedKey, StreamRng};

/// Most prefix groups in a spec.
pub const MAX_GROUPS: u32 = 65_536;
/// Most prefix tokens in all groups together (`groups * tokens`): the prefixes in use
/// are kept in memory while a trace is generated.
pub const MAX_TOTAL_TOKENS: u64 = 1 << 24;

/// Rejects prefix parameters that cannot be met, with a one-line reason.
pub fn validate(p: &PrefixSpec, max_prompt_tokens: u32) -> Result<()> {
    let bad = |m: String| Err(GenError::InvalidSpec(format!("prefix: {m}")));
    if p.groups == 0 || p.groups > MAX_GROUPS {
        return bad(format!("groups {} is not in 1..={MAX_GROUPS}", p.groups));
    }
    if p.tokens == 0 || p.tokens >= max_prompt_tokens {
        return bad(format!(
            "tokens {} is not in 1..{max_prompt_tokens} (prompts need a token after the prefix)",
            p.tokens
        ));
    }
    let total = u64::from(p.groups) * u64::from(p.tokens);
    if total > MAX_TOTAL_TOKENS {
        return bad(format!(
            "groups * tokens = {total} exceeds the limit of {MAX_TOTAL_TOKENS}"
        ));
    }
    match (p.share, p.zipf_s) {
        (PrefixShare::Zipf, Some(s)) if s.is_finite() && s > 0.0 => Ok(()),
        (PrefixShare::Zipf, Some(s)) => bad(format!(
            "zipf_s must be a finite number > 0, got {}",
            formats::readable(s)
        )),
        (PrefixShare::Zipf, None) => bad("share = \"zipf\" needs zipf_s".into()),
        (_, Some(_)) => bad("zipf_s applies to share = \"zipf\" only".into()),
        (_, None) => Ok(()),
    }
}

/// Cumulative Zipf weights `W_g = sum_{j <= g} (j + 1)^-s`, in group order.
pub fn zipf_cumulative(groups: u32, s: f64) -> Vec<f64> {
    let mut total = 0.0;
    (1..=groups)
        .map(|k| {
            total += libm::exp(-s * libm::log(f64::from(k)));
            total
        })
        .collect()
}

/// Chooses each request's prefix group, in request order.
pub struct GroupChooser {
    groups: u32,
    rng: StreamRng,
    /// Cumulative weights (zipf only).
    cumulative: Vec<f64>,
    share: PrefixShare,
}

impl GroupChooser {
    pub fn new(spec: &PrefixSpec, key: &SeedKey) -> Self {
        let cumulative = match (spec.share, spec.zipf_s) {
            (PrefixShare::Zipf, Some(s)) => zipf_cumulative(spec.groups, s),
            _ => Vec::new(),
        };
        GroupChooser {
            groups: spec.groups,
            rng: key.stream(Purpose::PrefixGroups),
            cumulative,
            share: spec.share,
        }
    }

    /// The group of request `id`; call once per request, in id order.
    pub fn group(&mut self, id: u64) -> u32 {
        match self.share {
            PrefixShare::RoundRobin => (id % u64::from(self.groups)) as u32,
            PrefixShare::Uniform => self.rng.below(u64::from(self.groups)) as u32,
            PrefixShare::Zipf => {
                let total = *self.cumulative.last().expect("groups >= 1");
                let x = self.rng.unit() * total;
                let g = self.cumulative.partition_point(|&w| w <= x);
                g.min(self.cumulative.len() - 1) as u32
            }
        }
    }
}

/// The prefix texts (and ids under a tokenizer) of one trace, made when first used.
pub struct Prefixes<'a> {
    blocks: BlockBuilder<'a>,
    source: &'a PromptSource,
    tokens: u32,
    made: HashMap<u32, Prompt>,
}

impl<'a> Prefixes<'a> {
    pub fn new(source: &'a PromptSource, seed: u64, tokens: u32) -> Self {
        Prefixes {
            blocks: BlockBuilder::new(source, seed),
            source,
            tokens,
            made: HashMap::new(),
        }
    }

    /// The prefix of group `g`.
    pub fn get(&mut self, g: u32) -> Result<&Prompt> {
        if !self.made.contains_key(&g) {
            let prompt = self.make(g)?;
            self.made.insert(g, prompt);
        }
        Ok(&self.made[&g])
    }

    fn make(&mut self, g: u32) -> Result<Prompt> {
        let mut text = String::new();
        self.blocks
            .block_text(u64::from(g), self.tokens, &mut text)
            .map_err(|e| GenError::Exactness(format!("prefix group {g}: {e}")))?;
        let token_ids = match self.source.tokenizer() {
            None => None,
            Some(tok) => {
                let enc = tok.encode_fast(text.as_str(), false).map_err(|e| {
                    GenError::Exactness(format!("prefix group {g}: cannot encode: {e}"))
                })?;
                Some(enc.get_ids().to_vec())
            }
        };
        Ok(Prompt {
            text,
            token_ids,
            tokens: self.tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(share: PrefixShare, zipf_s: Option<f64>) -> PrefixSpec {
        PrefixSpec {
            groups: 8,
            tokens: 16,
            share,
            zipf_s,
        }
    }

    #[test]
    fn validation() {
        let ok = |p: &PrefixSpec| validate(p, 1 << 20);
        ok(&spec(PrefixShare::Zipf, Some(1.1))).unwrap();
        ok(&spec(PrefixShare::Uniform, None)).unwrap();
        let e = |p: PrefixSpec| ok(&p).unwrap_err().to_string();
        assert!(e(spec(PrefixShare::Zipf, None)).contains("needs zipf_s"));
        assert!(e(spec(PrefixShare::Zipf, Some(f64::NAN))).contains("NaN"));
        assert!(
            e(spec(PrefixShare::Uniform, Some(1.0))).contains("applies to share = \"zipf\" only")
        );
        let mut p = spec(PrefixShare::Uniform, None);
        p.groups = 0;
        assert!(e(p.clone()).contains("groups 0"));
        p.groups = 1;
        p.tokens = 1 << 20;
        assert!(e(p.clone()).contains("tokens"));
        p.groups = 4096;
        p.tokens = 8192;
        assert!(e(p).contains("exceeds"));
    }

    #[test]
    fn round_robin_and_uniform_groups() {
        let key = SeedKey::new(1);
        let mut rr = GroupChooser::new(&spec(PrefixShare::RoundRobin, None), &key);
        let g: Vec<u32> = (0..10).map(|i| rr.group(i)).collect();
        assert_eq!(g, [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]);
        let mut u = GroupChooser::new(&spec(PrefixShare::Uniform, None), &key);
        let mut counts = [0u32; 8];
        for i in 0..16_000 {
            counts[u.group(i) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (1_700..2_300).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn zipf_groups_follow_their_weights() {
        let p = spec(PrefixShare::Zipf, Some(1.1));
        let mut z = GroupChooser::new(&p, &SeedKey::new(2));
        let n = 40_000u32;
        let mut counts = [0u32; 8];
        for i in 0..n {
            counts[z.group(u64::from(i)) as usize] += 1;
        }
        let w = zipf_cumulative(8, 1.1);
        let total = w[7];
        for g in 0..8 {
            let prob = (w[g] - if g == 0 { 0.0 } else { w[g - 1] }) / total;
            let want = prob * f64::from(n);
            let sd = (want * (1.0 - prob)).sqrt();
            let got = f64::from(counts[g]);
            assert!(
                (got - want).abs() < 5.0 * sd,
                "group {g}: {got} vs {want:.0}"
            );
        }
        assert!(counts.windows(2).all(|c| c[0] > c[1]), "{counts:?}");
    }

    #[test]
    fn prefixes_are_blocks_and_differ_by_group() {
        let source = PromptSource::builtin();
        let mut pre = Prefixes::new(&source, 5, 16);
        let a = pre.get(0).unwrap().clone();
        assert_eq!(a.text.split(' ').count(), 16);
        assert_eq!(a.token_ids, None);
        let b = pre.get(1).unwrap().clone();
        assert_ne!(a.text.split(' ').next(), b.text.split(' ').next());
        let mut blocks = BlockBuilder::new(&source, 5);
        let mut want = String::new();
        blocks.block_text(1, 16, &mut want).unwrap();
        assert_eq!(b.text, want);
    }
}
