//! Automatic prefix caching (vLLM-style): prompts are split into blocks of `block_size`
//! tokens and a full block's identity is a hash of every token up to and including it,
//! so two prompts share a cached block exactly when they share the whole prefix it ends.
//!
//! The simulator never tokenizes: a prompt's "tokens" are its token ids when the request
//! sends ids, else its whitespace-separated words (the unit it already counts prompts
//! in). Chat messages hash their role at each message boundary (it changes identity, not
//! length), so the same words under another role are another prefix.
//!
//! [`PrefixCache`] is the index the engine consults. Entries are reference counted: a
//! block held by a running request is pinned (it is in used KV memory and cannot be
//! evicted); an unpinned block lives in free KV memory until an allocation needs the
//! space, then the least recently used unpinned block goes first. The engine (vLLM
//! policy) counts pinned blocks once in its used blocks however many requests share
//! them, and calls [`PrefixCache::trim`] with its free block count after every change.

use std::collections::{BTreeMap, HashMap};

/// Chained block hashes of a token sequence: one per full block.
#[derive(Debug, Clone)]
pub struct BlockHasher {
    block_size: u32,
    state: u64,
    in_block: u32,
    hashes: Vec<u64>,
}

impl BlockHasher {
    pub fn new(block_size: u32) -> BlockHasher {
        BlockHasher {
            block_size: block_size.max(1),
            state: 0x9E37_79B9_7F4A_7C15,
            in_block: 0,
            hashes: Vec::new(),
        }
    }

    fn absorb(&mut self, v: u64) {
        self.state = crate::faults::mix(self.state, v, 0x9F1C);
    }

    /// One token (an id, or a word's hash).
    pub fn token(&mut self, v: u64) {
        self.absorb(v);
        self.in_block += 1;
        if self.in_block == self.block_size {
            self.hashes.push(self.state);
            self.in_block = 0;
        }
    }

    /// The words of a text, as tokens.
    pub fn words(&mut self, text: &str) {
        for w in text.split_whitespace() {
            self.token(fnv1a(w.as_bytes()));
        }
    }

    /// A boundary that changes identity without adding a token (a chat message's role).
    pub fn marker(&mut self, text: &str) {
        self.absorb(fnv1a(text.as_bytes()) ^ 0x524F_4C45);
    }

    /// The hashes of the full blocks seen.
    pub fn finish(self) -> Vec<u64> {
        self.hashes
    }
}

/// Hash a request's prompt as the dialects carry it: a string (words), a list of token
/// ids, a one-element list of either, or chat `messages` (role markers, then the words of
/// each text content). Shapes the dialect has already validated; anything else adds
/// nothing.
pub fn hash_prompt(h: &mut BlockHasher, prompt: &serde_json::Value) {
    use serde_json::Value;
    match prompt {
        Value::String(s) => h.words(s),
        Value::Array(a) if a.len() == 1 && !a[0].is_u64() => hash_prompt(h, &a[0]),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_u64)
            .for_each(|id| h.token(id)),
        _ => {}
    }
}

/// [`hash_prompt`] for chat messages.
pub fn hash_messages(h: &mut BlockHasher, messages: &[serde_json::Value]) {
    for m in messages {
        h.marker(m.get("role").and_then(|r| r.as_str()).unwrap_or(""));
        match m.get("content") {
            Some(serde_json::Value::String(s)) => h.words(s),
            Some(serde_json::Value::Array(parts)) => {
                for p in parts {
                    if let Some(t) = p.get("text").and_then(|t| t.as_str()) {
                        h.words(t);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Prompt bytes per prompt token over a trace's requests (their text as sent, over the
/// token counts the trace holds): the scale [`trace_prompt_hashes`] cuts blocks at.
pub fn bytes_per_token(requests: &[formats::TraceRequest]) -> f64 {
    let (mut bytes, mut tokens) = (0u64, 0u64);
    for r in requests.iter().filter(|r| r.prompt_token_ids.is_none()) {
        bytes += r.prompt.len() as u64;
        tokens += r.prompt_tokens as u64;
    }
    if tokens == 0 {
        1.0
    } else {
        (bytes as f64 / tokens as f64).max(1e-3)
    }
}

/// The hashes of a trace request's full prompt blocks of `block_size` tokens, for the
/// engine model in virtual time (`simulate_with`), which has the trace but no tokenizer.
/// Token ids (`prompt_token_ids`) are hashed as they are. A text prompt (chat messages are in it, rendered) is cut at `k x block_size x bytes_per_token` bytes, the
/// trace's own average ([`bytes_per_token`]): two prompts that share their first `P`
/// bytes share every block cut before `P`, so a prefix shared by text is shared by
/// blocks, give or take the one block its end falls in. At most `prompt_tokens /
/// block_size` blocks, as the engine holds.
pub fn trace_prompt_hashes(
    r: &formats::TraceRequest,
    block_size: u32,
    bytes_per_token: f64,
) -> Vec<u64> {
    let bs = block_size.max(1);
    let blocks = (r.prompt_tokens / bs) as usize;
    if let Some(ids) = &r.prompt_token_ids {
        let mut h = BlockHasher::new(bs);
        ids.iter().for_each(|&id| h.token(id as u64));
        let mut v = h.finish();
        v.truncate(blocks);
        return v;
    }
    let bytes = r.prompt.as_bytes();
    let mut out = Vec::with_capacity(blocks);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut from = 0usize;
    for k in 1..=blocks {
        let to = (k as f64 * bs as f64 * bytes_per_token).round() as usize;
        if to > bytes.len() {
            break;
        }
        state = crate::faults::mix(state, fnv1a(&bytes[from..to]), 0x9F1C);
        out.push(state);
        from = to;
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    refs: u32,
    /// Last use, the key in `lru` while unpinned.
    tick: u64,
}

/// The cache index (see the module docs).
#[derive(Debug, Default)]
pub struct PrefixCache {
    entries: HashMap<u64, Entry>,
    /// Unpinned entries by last use.
    lru: BTreeMap<u64, u64>,
    tick: u64,
}

impl PrefixCache {
    /// How many leading blocks of `hashes` are cached, and how many of those are pinned
    /// (no side effect).
    pub fn hits(&self, hashes: &[u64]) -> (usize, usize) {
        let (mut n, mut pinned) = (0, 0);
        for h in hashes {
            let Some(e) = self.entries.get(h) else { break };
            n += 1;
            pinned += usize::from(e.refs > 0);
        }
        (n, pinned)
    }

    /// Pin every block of `hashes`, inserting the missing ones; returns how many blocks
    /// became pinned that were not pinned before (the new used blocks).
    pub fn pin(&mut self, hashes: &[u64]) -> u64 {
        let mut newly = 0;
        for &h in hashes {
            self.tick += 1;
            let e = self.entries.entry(h).or_insert(Entry { refs: 0, tick: 0 });
            if e.refs == 0 {
                newly += 1;
                self.lru.remove(&e.tick);
            }
            e.refs += 1;
            e.tick = self.tick;
        }
        newly
    }

    /// Unpin every block of `hashes`; returns how many became unpinned (freed blocks
    /// that stay cached in free memory). Last block first, as vLLM frees them: a
    /// prefix's tail is evicted before its head, which every longer prefix needs.
    pub fn unpin(&mut self, hashes: &[u64]) -> u64 {
        let mut freed = 0;
        for &h in hashes.iter().rev() {
            let Some(e) = self.entries.get_mut(&h) else {
                continue;
            };
            e.refs -= 1;
            if e.refs == 0 {
                freed += 1;
                self.tick += 1;
                e.tick = self.tick;
                self.lru.insert(self.tick, h);
            }
        }
        freed
    }

    /// Evict least recently used unpinned blocks until at most `free_blocks` remain.
    pub fn trim(&mut self, free_blocks: u64) {
        while self.lru.len() as u64 > free_blocks {
            let Some((_, h)) = self.lru.pop_first() else {
                break;
            };
            self.entries.remove(&h);
        }
    }

    /// Drops every cached block; refused (false, nothing dropped) while any block is
    /// pinned by a running request, as vLLM refuses while blocks are in use.
    pub fn clear(&mut self) -> bool {
        if self.entries.len() != self.lru.len() {
            return false;
        }
        self.entries.clear();
        self.lru.clear();
        true
    }

    /// Cached blocks (pinned or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(text: &str, bs: u32) -> Vec<u64> {
        let mut h = BlockHasher::new(bs);
        h.words(text);
        h.finish()
    }

    fn trace_req(prompt: &str, tokens: u32) -> formats::TraceRequest {
        formats::TraceRequest {
            prompt: prompt.to_string(),
            prompt_tokens: tokens,
            max_tokens: 8,
            ..Default::default()
        }
    }

    /// Two prompts that share a prefix share exactly the blocks cut inside it; the
    /// number of blocks follows the token count, not the bytes.
    #[test]
    fn trace_prompts_share_the_blocks_of_their_shared_text() {
        let shared = "s ".repeat(40); // 80 bytes
        let a = trace_req(&format!("{shared}{}", "a ".repeat(40)), 40);
        let b = trace_req(&format!("{shared}{}", "b ".repeat(40)), 40);
        let bpt = bytes_per_token(&[a.clone(), b.clone()]);
        assert!((bpt - 4.0).abs() < 1e-9, "{bpt}");
        let (ha, hb) = (
            trace_prompt_hashes(&a, 4, bpt),
            trace_prompt_hashes(&b, 4, bpt),
        );
        assert_eq!(ha.len(), 10);
        // Blocks of 16 bytes: the first 5 end within the 80 shared bytes.
        assert_eq!(ha[..5], hb[..5]);
        assert!(ha[5..].iter().zip(&hb[5..]).all(|(x, y)| x != y));
        // Token ids are hashed as ids.
        let mut ids = a.clone();
        ids.prompt_token_ids = Some((0..40).collect());
        let hi = trace_prompt_hashes(&ids, 4, bpt);
        assert_eq!(hi.len(), 10);
        let mut h = BlockHasher::new(4);
        (0..40u64).for_each(|i| h.token(i));
        assert_eq!(hi, h.finish());
    }

    #[test]
    fn block_hash_is_the_whole_prefix() {
        let a = hashes("a b c d e f g", 2);
        let b = hashes("a b c d x f g", 2);
        let c = hashes("z b c d e f g", 2);
        assert_eq!(a.len(), 3);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        assert!(a.iter().zip(&c).all(|(x, y)| x != y));
    }

    /// A multi-turn chat: turn k+1's `messages` are turn k's plus the recorded answer
    /// and the next question, so every full block of turn k is a block of turn k+1
    /// (the replayer's sessions rely on it; `replayer/tests/sessions_cache.rs` checks
    /// it end to end). Roles are markers, not tokens: the same words under another
    /// role are another prefix, and the block count is the content words'.
    #[test]
    fn a_chat_turn_is_a_prefix_of_the_next() {
        let chat = |turns: usize, answer_role: &str| {
            let mut m = vec![serde_json::json!({"role": "system", "content": "be brief"})];
            for k in 0..turns {
                if k > 0 {
                    m.push(serde_json::json!({"role": answer_role, "content": format!("answer {k} a b c")}));
                }
                m.push(serde_json::json!({"role": "user", "content": format!("question {k} x y")}));
            }
            let mut h = BlockHasher::new(4);
            hash_messages(&mut h, &m);
            h.finish()
        };
        for k in 1..6 {
            let (this, next) = (chat(k, "assistant"), chat(k + 1, "assistant"));
            assert_eq!(next[..this.len()], this[..], "turn {k}");
            assert!(next.len() > this.len());
        }
        // 2 + 4 + 5 + 4 words: 3 full blocks of 4.
        assert_eq!(chat(2, "assistant").len(), 3);
        let (a, b) = (chat(3, "assistant"), chat(3, "user"));
        assert_eq!(a[0], b[0], "the first block ends before the answer");
        assert_ne!(a[2..], b[2..]);
    }

    #[test]
    fn lru_evicts_only_unpinned_oldest() {
        let mut c = PrefixCache::default();
        assert_eq!(c.pin(&[1, 2, 3]), 3);
        assert_eq!(c.pin(&[1, 2]), 0);
        assert_eq!(c.hits(&[1, 2, 3, 4]), (3, 3));
        c.trim(0);
        assert_eq!(c.len(), 3, "pinned blocks are never evicted");
        assert_eq!(c.unpin(&[1, 2, 3]), 1);
        assert_eq!(c.unpin(&[1, 2]), 2);
        c.trim(2);
        // 3 was unpinned first: evicted first.
        assert_eq!(c.hits(&[1, 2, 3]), (2, 0));
        c.pin(&[1, 2]);
        c.unpin(&[1, 2]);
        c.trim(1);
        // The tail goes before the head.
        assert_eq!(c.hits(&[1, 2]), (1, 0));
        c.trim(0);
        assert!(c.is_empty());
    }

    #[test]
    fn clear_drops_every_block_unless_one_is_pinned() {
        let mut c = PrefixCache::default();
        c.pin(&[1, 2]);
        assert!(!c.clear(), "pinned blocks are in use");
        assert_eq!(c.len(), 2);
        c.unpin(&[1, 2]);
        assert!(c.clear());
        assert!(c.is_empty());
        assert_eq!(c.hits(&[1, 2]), (0, 0));
        assert_eq!(c.pin(&[1]), 1, "a cleared block is a new one");
    }
}
