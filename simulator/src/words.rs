//! Token counting and token text.
//!
//! Prompts made by the project's generator without a tokenizer are space-separated words
//! of a built-in vocabulary, one word = one token, so the simulator counts a prompt's
//! tokens as its whitespace-separated words (an OpenAI prompt given as token ids counts
//! its ids). Output tokens are plausible words, one per decode step, each with a leading
//! space, chosen deterministically from (request, position).

/// The words output tokens are drawn from (common English words; ids are 1000 + index).
pub const OUTPUT_WORDS: [&str; 64] = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "model", "token",
    "server", "batch", "cache", "light", "water", "river", "stone", "city", "music", "north",
    "green", "paper", "house",
];

/// Id of the end-of-sequence token (Llama's `</s>`).
pub const EOS_ID: u32 = 2;
/// Text of the end-of-sequence token as TGI shows it.
pub const EOS_TEXT: &str = "</s>";

/// Number of tokens of a prompt: whitespace-separated words.
pub fn count_words(text: &str) -> u32 {
    text.split_whitespace().count().min(u32::MAX as usize) as u32
}

/// The `index`-th output token of request `seq`: (id, text with its leading space).
pub fn token(seq: u64, index: u32) -> (u32, &'static str, &'static str) {
    let h = crate::faults::mix(0x5EED, seq, index as u64 + 2);
    let i = (h % OUTPUT_WORDS.len() as u64) as usize;
    (1000 + i as u32, SPACED_WORDS[i], OUTPUT_WORDS[i])
}

/// [`OUTPUT_WORDS`] with their leading space, as tokens are shown.
pub const SPACED_WORDS: [&str; 64] = [
    " the", " of", " and", " to", " in", " is", " that", " for", " it", " as", " was", " with",
    " be", " by", " on", " not", " he", " this", " are", " or", " his", " from", " at", " which",
    " but", " have", " an", " had", " they", " you", " were", " their", " one", " all", " we",
    " can", " her", " has", " there", " been", " if", " more", " when", " will", " would", " who",
    " so", " no", " time", " model", " token", " server", " batch", " cache", " light", " water",
    " river", " stone", " city", " music", " north", " green", " paper", " house",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words() {
        assert_eq!(count_words(""), 0);
        assert_eq!(count_words("  a  b\tc\nd "), 4);
    }

    #[test]
    fn spaced_matches_words() {
        for (a, b) in SPACED_WORDS.iter().zip(OUTPUT_WORDS) {
            assert_eq!(*a, format!(" {b}"));
        }
        assert_eq!(token(1, 2), token(1, 2));
    }
}
