//! Prompt text that preserves prefix reuse: prompts made of blocks named by hash ids
//! (Mooncake traces), where the same hash id always becomes the same text.
//!
//! A production trace with `hash_ids` says which prompts shared which prefix blocks; a
//! server's prefix cache (vLLM automatic prefix caching, SGLang RadixAttention) must see
//! that reuse in the replayed text, or the replay measures a different workload.
//!
//! # A block's text
//! A block of `len` tokens with hash id `h` is `len` words of the prompt vocabulary (see
//! [`crate::prompt`]) joined by single spaces, a function of `(seed, h, len)` only:
//! * the first `k` words spell `h` in base `P` (the vocabulary size), least significant
//!   digit first, each digit through its own seeded permutation of the vocabulary
//!   (stream 5); `k` is the number of digits of `2^63 - 1`, so two different hash ids
//!   give different text whenever the block has at least `k` words (6 with the built-in
//!   vocabulary) and, for ids below `P`, already from the first word;
//! * the other words are uniform draws from the block's own stream (`2^63 + h`).
//!
//! # A prompt
//! The prompt is its blocks' texts joined by single spaces, so identical leading hash ids
//! give byte-identical prompt prefixes, and the `i`-th block starts at token `i * B`.
//!
//! # Exact counts under a real tokenizer
//! Each block is encoded alone the first time it is met and must give `len` ids; if not
//! (a merge across words in an exotic tokenizer) its free words are redrawn from its own
//! stream, up to [`MAX_ATTEMPTS`] times, and the attempt that worked is remembered, so
//! the block's text stays a function of `(seed, h, len)`. The whole prompt is then
//! encoded once; its ids are recorded and must number exactly `input_length`, otherwise
//! the import fails: a trace never carries a wrong count.

use std::collections::HashMap;

use crate::error::{GenError, Result};
use crate::prompt::{MAX_ATTEMPTS, Prompt, PromptSource};
use crate::rng::{Purpose, SeedKey};

/// Hash ids must be below this (their stream id is `2^63 + h`).
pub const HASH_ID_LIMIT: u64 = 1 << 63;

/// Builds the prompts of one prefix-reuse trace.
pub struct BlockBuilder<'a> {
    source: &'a PromptSource,
    key: SeedKey,
    /// One permutation of the vocabulary per hash-id digit.
    perms: Vec<Vec<u32>>,
    /// The working attempt of every block already verified by the tokenizer.
    attempts: HashMap<(u64, u32), u32>,
    picks: Vec<u32>,
    /// Scratch text of a block being verified.
    block: String,
}

impl<'a> BlockBuilder<'a> {
    pub fn new(source: &'a PromptSource, seed: u64) -> Self {
        let key = SeedKey::new(seed);
        let p = source.words().len() as u64;
        let (mut digits, mut reach) = (1usize, p);
        while reach < HASH_ID_LIMIT {
            reach = reach.saturating_mul(p);
            digits += 1;
        }
        let mut layout = key.stream(Purpose::BlockLayout);
        let perms = (0..digits).map(|_| layout.permutation(p as u32)).collect();
        BlockBuilder {
            source,
            key,
            perms,
            attempts: HashMap::new(),
            picks: Vec::new(),
            block: String::new(),
        }
    }

    /// Number of leading words of a block that spell its hash id.
    pub fn id_words(&self) -> usize {
        self.perms.len()
    }

    /// The text of block `h` with `len` (>= 1) tokens, appended to `out`.
    pub fn block_text(&mut self, h: u64, len: u32, out: &mut String) -> Result<()> {
        let attempt = self.verified_attempt(h, len)?;
        self.draw(h, len, attempt);
        self.push_words(out);
        Ok(())
    }

    /// The prompt of `tokens` tokens made of the blocks `hash_ids` of `block_tokens`
    /// each (the last one holds the rest). The caller checks that the counts agree.
    pub fn build(&mut self, hash_ids: &[u64], tokens: u32, block_tokens: u32) -> Result<Prompt> {
        let mut text = String::new();
        let mut left = tokens;
        for &h in hash_ids {
            let len = left.min(block_tokens);
            if !text.is_empty() {
                text.push(' ');
            }
            self.block_text(h, len, &mut text)?;
            left -= len;
        }
        let Some(tok) = self.source.tokenizer() else {
            return Ok(Prompt {
                text,
                token_ids: None,
                tokens,
            });
        };
        let enc = tok
            .encode_fast(text.as_str(), false)
            .map_err(|e| GenError::Exactness(format!("cannot encode prompt: {e}")))?;
        if enc.len() != tokens as usize {
            return Err(GenError::Exactness(format!(
                "the tokenizer {} counts {} tokens in a prompt of {tokens} block words; it cannot be used for exact prefix-reuse prompts",
                self.source.info().name,
                enc.len()
            )));
        }
        Ok(Prompt {
            text,
            token_ids: Some(enc.get_ids().to_vec()),
            tokens,
        })
    }

    /// The first attempt whose text encodes alone to `len` ids (always 1 without a
    /// tokenizer).
    fn verified_attempt(&mut self, h: u64, len: u32) -> Result<u32> {
        let Some(tok) = self.source.tokenizer() else {
            return Ok(1);
        };
        if let Some(&a) = self.attempts.get(&(h, len)) {
            return Ok(a);
        }
        for attempt in 1..=MAX_ATTEMPTS {
            self.draw(h, len, attempt);
            let mut text = std::mem::take(&mut self.block);
            text.clear();
            self.push_words(&mut text);
            let n = tok.encode_fast(text.as_str(), false);
            self.block = text;
            let n = n
                .map_err(|e| GenError::Exactness(format!("hash id {h}: cannot encode: {e}")))?
                .len();
            if n == len as usize {
                self.attempts.insert((h, len), attempt);
                return Ok(attempt);
            }
            if len as usize <= self.id_words() {
                break;
            }
        }
        Err(GenError::Exactness(format!(
            "hash id {h}: the tokenizer {} never counts {len} tokens in a block of {len} vocabulary words; it cannot be used for exact prompts",
            self.source.info().name
        )))
    }

    /// Fills `picks` with the words of block `h`, `len` long, at `attempt` (1-based).
    fn draw(&mut self, h: u64, len: u32, attempt: u32) {
        let p = self.source.words().len() as u64;
        let n = len as usize;
        self.picks.clear();
        let mut rest = h;
        for perm in self.perms.iter().take(n) {
            self.picks.push(perm[(rest % p) as usize]);
            rest /= p;
        }
        let fixed = self.picks.len();
        let mut rng = self.key.stream(Purpose::BlockContent(h));
        for _ in 0..attempt {
            self.picks.truncate(fixed);
            while self.picks.len() < n {
                self.picks.push(rng.below(p) as u32);
            }
        }
    }

    fn push_words(&self, out: &mut String) {
        let words = self.source.words();
        for (i, &w) in self.picks.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&words[w as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &mut BlockBuilder<'_>, h: u64, len: u32) -> String {
        let mut s = String::new();
        b.block_text(h, len, &mut s).unwrap();
        s
    }

    #[test]
    fn blocks_depend_on_seed_hash_and_length_only() {
        let source = PromptSource::builtin();
        let mut a = BlockBuilder::new(&source, 7);
        let mut b = BlockBuilder::new(&source, 7);
        assert_eq!(a.id_words(), 6);
        let x = text(&mut a, 3, 512);
        assert_eq!(x.split(' ').count(), 512);
        // Order of use does not matter.
        let _ = text(&mut b, 9, 512);
        assert_eq!(text(&mut b, 3, 512), x);
        assert_ne!(text(&mut a, 4, 512), x);
        assert_ne!(text(&mut BlockBuilder::new(&source, 8), 3, 512), x);
        // Ids below the vocabulary size differ from the first word; large ids too.
        let first = |s: String| s.split(' ').next().unwrap().to_string();
        let firsts: std::collections::BTreeSet<String> =
            (0..4096).map(|h| first(text(&mut a, h, 1))).collect();
        assert_eq!(firsts.len(), 4096);
        assert_ne!(
            text(&mut a, HASH_ID_LIMIT - 1, 6),
            text(&mut a, HASH_ID_LIMIT - 2, 6)
        );
    }

    #[test]
    fn prompts_are_blocks_joined_by_spaces() {
        let source = PromptSource::builtin();
        let mut b = BlockBuilder::new(&source, 1);
        let p = b.build(&[0, 1, 2], 10, 4).unwrap();
        let want = [text(&mut b, 0, 4), text(&mut b, 1, 4), text(&mut b, 2, 2)].join(" ");
        assert_eq!(p.text, want);
        assert_eq!(p.text.split(' ').count(), 10);
        assert_eq!(p.token_ids, None);
    }
}
