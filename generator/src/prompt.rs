//! Prompt text: words drawn from a vocabulary where one word is one token.
//!
//! # Built-in vocabulary (`builtin-words`)
//! `src/vocab/words.txt`: 4096 common English words (2..12 lowercase ASCII letters, plus
//! "a"), taken in decreasing frequency (wordfreq's English list) among the words that
//! are a single token when preceded by a space in GPT-2, Llama 2, Llama 3 and Qwen 3
//! (`tools/build_vocab.py` rebuilds the list exactly). A prompt of `n` tokens is `n`
//! words joined by single spaces: those tokenizers count `n` tokens (the first word,
//! with no space before it, can cost GPT-2-style tokenizers one more), and the simulator,
//! which counts whitespace-separated words, counts exactly `n`.
//!
//! # A real tokenizer (`huggingface`)
//! With a `tokenizer.json`, the vocabulary is vetted from the tokenizer itself: every
//! non-added token id, in id order, that decodes to an ASCII-letter word `w` such that
//! `encode(w)` is one token and `encode("w w")` is two (so it is one token at the start
//! of a prompt and after a space). Each prompt is then encoded (no special tokens) and
//! must give exactly `n` ids, which are recorded as `prompt_token_ids`. A mismatch (a
//! merge across words in an exotic tokenizer) redraws the prompt's free words, up to
//! [`MAX_ATTEMPTS`] times, then generation fails: a trace never carries a wrong count.
//!
//! # Prompts differ from their first token on
//! The first `k = ceil(log_P(N))` words (P = vocabulary size, N = request count) spell
//! the request id in base P, least significant digit first, each digit through its own
//! seeded permutation of the vocabulary. So any P consecutive requests start with P
//! different words and no two prompts of at least `k` words are equal: no server-side
//! prefix cache can make one request cheaper because of another. The other words are
//! uniform draws from the request's own stream (see [`crate::rng`]), so a prompt depends
//! only on the seed, its id and its length.

use std::collections::BTreeSet;
use std::path::Path;

use formats::TokenizerInfo;
use tokenizers::Tokenizer;

use crate::error::{GenError, Result};
use crate::rng::{Purpose, SeedKey, StreamRng};

/// The built-in vocabulary, one word per line.
pub const BUILTIN_WORDS: &str = include_str!("vocab/words.txt");
/// `TokenizerInfo::name` of the built-in vocabulary (changes with the list).
pub const BUILTIN_NAME: &str = "llmib-words-4096-v1";
/// Redraws of a prompt's free words before a tokenizer mismatch is an error.
pub const MAX_ATTEMPTS: u32 = 16;

/// Where prompt words come from and how prompts are counted.
pub struct PromptSource {
    words: Vec<String>,
    tokenizer: Option<Box<Tokenizer>>,
    info: TokenizerInfo,
}

impl std::fmt::Debug for PromptSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptSource")
            .field("words", &self.words.len())
            .field("info", &self.info)
            .finish()
    }
}

impl PromptSource {
    /// The built-in word vocabulary.
    pub fn builtin() -> Self {
        PromptSource {
            words: BUILTIN_WORDS.lines().map(str::to_string).collect(),
            tokenizer: None,
            info: TokenizerInfo {
                kind: "builtin-words".into(),
                name: BUILTIN_NAME.into(),
                sha256: None,
            },
        }
    }

    /// A Hugging Face `tokenizer.json`. `name` defaults to the file's name.
    pub fn from_tokenizer_file(path: &Path, name: Option<&str>) -> Result<Self> {
        // Read once and bounded (a `/dev/zero` once hung here); hashed as read.
        let mut input = formats::InputFile::open(path, formats::InputKind::TOKENIZER)?;
        let bytes = input.read_rest()?;
        let sha256 = input.finish()?;
        let tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| GenError::Tokenizer {
            path: path.to_path_buf(),
            message: one_line(&e.to_string()),
        })?;
        let name = match name {
            Some(n) => n.to_string(),
            None => default_name(path),
        };
        Self::from_tokenizer(tokenizer, name, Some(sha256), path)
    }

    /// A tokenizer already loaded; `path` only labels errors.
    pub fn from_tokenizer(
        tokenizer: Tokenizer,
        name: String,
        sha256: Option<String>,
        path: &Path,
    ) -> Result<Self> {
        let words = vet_words(&tokenizer, path)?;
        if words.len() < 16 {
            return Err(GenError::Tokenizer {
                path: path.to_path_buf(),
                message: format!(
                    "only {} vocabulary entries are stand-alone single-token words; need at least 16",
                    words.len()
                ),
            });
        }
        Ok(PromptSource {
            words,
            tokenizer: Some(Box::new(tokenizer)),
            info: TokenizerInfo {
                kind: "huggingface".into(),
                name,
                sha256,
            },
        })
    }

    pub fn info(&self) -> &TokenizerInfo {
        &self.info
    }

    /// The words prompts are made of.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The real tokenizer, when prompts are counted by one.
    pub(crate) fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_deref()
    }

    /// Counts any text (a dataset prompt, a rendered chat): its exact ids under a
    /// tokenizer (encoded without special tokens, so the text re-encodes to exactly
    /// them), else its whitespace-separated words (what `llmib sim` counts). `origin`
    /// names the text in errors.
    pub fn count(&self, text: &str, origin: &str) -> Result<(u32, Option<Vec<u32>>)> {
        let too_long = || GenError::Invalid(format!("{origin}: text exceeds {} tokens", u32::MAX));
        match self.tokenizer() {
            Some(tok) => {
                let enc = tok
                    .encode_fast(text, false)
                    .map_err(|e| GenError::Invalid(format!("{origin}: cannot encode: {e}")))?;
                let ids = enc.get_ids().to_vec();
                Ok((u32::try_from(ids.len()).map_err(|_| too_long())?, Some(ids)))
            }
            None => {
                let n = text.split_whitespace().count();
                Ok((u32::try_from(n).map_err(|_| too_long())?, None))
            }
        }
    }

    /// Prepares prompt building for one trace: `requests` prompts under `seed`.
    pub fn builder(&self, seed: u64, requests: u64) -> PromptBuilder<'_> {
        let key = SeedKey::new(seed);
        let p = self.words.len() as u64;
        let mut digits = 1usize;
        let mut reach = p;
        while reach < requests {
            reach = reach.saturating_mul(p);
            digits += 1;
        }
        let mut layout = key.stream(Purpose::PromptLayout);
        let perms = (0..digits).map(|_| layout.permutation(p as u32)).collect();
        PromptBuilder {
            source: self,
            key,
            perms,
            text: String::new(),
            picks: Vec::new(),
        }
    }
}

fn default_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // `.../Llama-3-8B/tokenizer.json` is better named by its directory.
    match path.parent().and_then(|d| d.file_name()) {
        Some(dir) if file == "tokenizer.json" => format!("{}/{file}", dir.to_string_lossy()),
        _ => file,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Vocabulary entries usable as one-token words, in id order.
fn vet_words(tok: &Tokenizer, path: &Path) -> Result<Vec<String>> {
    let added: BTreeSet<u32> = tok.get_added_tokens_decoder().keys().copied().collect();
    let size = tok.get_vocab_size(true) as u32;
    let err = |e: tokenizers::Error| GenError::Tokenizer {
        path: path.to_path_buf(),
        message: one_line(&e.to_string()),
    };
    let mut seen = BTreeSet::new();
    let mut words = Vec::new();
    for id in 0..size {
        if added.contains(&id) || tok.id_to_token(id).is_none() {
            continue;
        }
        let text = tok.decode(&[id], false).map_err(err)?;
        let w = text.trim();
        if w.is_empty() || w.len() > 24 || !w.bytes().all(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        if !seen.insert(w.to_string()) {
            continue;
        }
        if tok.encode_fast(w, false).map_err(err)?.len() != 1 {
            continue;
        }
        if tok
            .encode_fast(format!("{w} {w}"), false)
            .map_err(err)?
            .len()
            != 2
        {
            continue;
        }
        words.push(w.to_string());
    }
    Ok(words)
}

/// A built prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// Token ids when a real tokenizer was used (`len() == tokens`).
    pub token_ids: Option<Vec<u32>>,
    pub tokens: u32,
}

/// Builds the prompts of one trace.
pub struct PromptBuilder<'a> {
    source: &'a PromptSource,
    key: SeedKey,
    /// One permutation of the vocabulary per id digit.
    perms: Vec<Vec<u32>>,
    text: String,
    picks: Vec<u32>,
}

impl PromptBuilder<'_> {
    /// The source the prompts come from.
    pub fn source(&self) -> &PromptSource {
        self.source
    }

    /// Number of leading words that encode the request id.
    pub fn id_words(&self) -> usize {
        self.perms.len()
    }

    /// The prompt of request `id` with `tokens` tokens (>= 1).
    pub fn build(&mut self, id: u64, tokens: u32) -> Result<Prompt> {
        self.build_inner(None, id, tokens)
    }

    /// The prompt of request `id` with `tokens` tokens (> `prefix.tokens`) that starts
    /// with the shared `prefix`: its text, a space, then `tokens - prefix.tokens` words
    /// of the request's own, made as [`Self::build`] makes a prompt of that length.
    /// Under a tokenizer the whole prompt must encode to `tokens` ids that start with
    /// the prefix's ids (else the own words are redrawn, as for `build`).
    pub fn build_after(&mut self, prefix: &Prompt, id: u64, tokens: u32) -> Result<Prompt> {
        debug_assert!(tokens > prefix.tokens);
        self.build_inner(Some(prefix), id, tokens)
    }

    /// The recorded answer of request `id` in a synthetic session: `tokens` (>= 1) words
    /// drawn uniformly from the answer stream of `id` ([`Purpose::AnswerContent`]), no
    /// id-spelling words (the history it goes into already starts uniquely). Under a
    /// tokenizer it encodes alone to exactly `tokens` ids (else redrawn, as prompts are).
    pub fn answer(&mut self, id: u64, tokens: u32) -> Result<Prompt> {
        let mut rng = self.key.stream(Purpose::AnswerContent(id));
        self.picks.clear();
        self.fill_checked(None, &mut rng, 0, tokens, || {
            format!("answer of request {id}")
        })
    }

    fn build_inner(&mut self, prefix: Option<&Prompt>, id: u64, tokens: u32) -> Result<Prompt> {
        let p = self.source.words.len() as u64;
        let n = (tokens - prefix.map_or(0, |x| x.tokens)) as usize;
        let mut rng = self.key.stream(Purpose::PromptContent(id));
        self.picks.clear();
        let mut rest = id;
        for perm in self.perms.iter().take(n) {
            self.picks.push(perm[(rest % p) as usize]);
            rest /= p;
        }
        let fixed = self.picks.len();
        self.fill_checked(prefix, &mut rng, fixed, tokens, || format!("request {id}"))
    }

    /// Completes `picks` (whose first `fixed` words are kept) with draws from `rng` up to
    /// `tokens` tokens after `prefix`, and checks the count under the tokenizer,
    /// redrawing the free words up to [`MAX_ATTEMPTS`] times; `what` names the text in
    /// errors.
    fn fill_checked(
        &mut self,
        prefix: Option<&Prompt>,
        rng: &mut StreamRng,
        fixed: usize,
        tokens: u32,
        what: impl Fn() -> String,
    ) -> Result<Prompt> {
        let p = self.source.words.len() as u64;
        let n = (tokens - prefix.map_or(0, |x| x.tokens)) as usize;
        for attempt in 1..=MAX_ATTEMPTS {
            self.picks.truncate(fixed);
            while self.picks.len() < n {
                self.picks.push(rng.below(p) as u32);
            }
            self.assemble(prefix);
            let Some(tok) = &self.source.tokenizer else {
                return Ok(Prompt {
                    text: self.text.clone(),
                    token_ids: None,
                    tokens,
                });
            };
            let enc = tok.encode_fast(self.text.as_str(), false).map_err(|e| {
                GenError::Exactness(format!("{}: cannot encode prompt: {e}", what()))
            })?;
            let ids = enc.get_ids();
            let keeps_prefix = prefix
                .and_then(|x| x.token_ids.as_deref())
                .is_none_or(|pre| ids.starts_with(pre));
            if ids.len() == tokens as usize && keeps_prefix {
                return Ok(Prompt {
                    text: self.text.clone(),
                    token_ids: Some(ids.to_vec()),
                    tokens,
                });
            }
            if attempt == MAX_ATTEMPTS || fixed == n {
                return Err(GenError::Exactness(format!(
                    "{}: the tokenizer {} counts {} tokens{} in a prompt of {tokens} vocabulary words (after {attempt} attempts); it cannot be used for exact prompts",
                    what(),
                    self.source.info.name,
                    ids.len(),
                    if keeps_prefix {
                        ""
                    } else {
                        ", not starting with the shared prefix's,"
                    }
                )));
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// `text` = the prefix's text and a space (if any), then the picked words.
    fn assemble(&mut self, prefix: Option<&Prompt>) {
        let words = &self.source.words;
        self.text.clear();
        if let Some(x) = prefix {
            self.text.push_str(&x.text);
            self.text.push(' ');
        }
        for (i, &w) in self.picks.iter().enumerate() {
            if i > 0 {
                self.text.push(' ');
            }
            self.text.push_str(&words[w as usize]);
        }
    }
}

/// Checks that `text` re-encodes to exactly `ids` with `source`'s tokenizer (a no-op
/// check of the word count for the built-in vocabulary).
pub fn verify_prompt(
    source: &PromptSource,
    text: &str,
    ids: Option<&[u32]>,
    tokens: u32,
) -> Result<()> {
    match (&source.tokenizer, ids) {
        (Some(tok), Some(ids)) => {
            let enc = tok
                .encode_fast(text, false)
                .map_err(|e| GenError::Exactness(format!("cannot encode prompt: {e}")))?;
            if enc.get_ids() != ids || ids.len() != tokens as usize {
                return Err(GenError::Exactness(format!(
                    "prompt re-encodes to {} ids, expected {tokens}",
                    enc.get_ids().len()
                )));
            }
            Ok(())
        }
        (None, None) => {
            let n = text.split(' ').count();
            if n != tokens as usize || text.split_whitespace().count() != n {
                return Err(GenError::Exactness(format!(
                    "prompt has {n} words, expected {tokens}"
                )));
            }
            Ok(())
        }
        _ => Err(GenError::Exactness(
            "token ids present without a tokenizer, or missing".into(),
        )),
    }
}
