//! Reasoning models, as the OpenAI dialect serves them (`llmib sim --reasoning-tokens N`).
//!
//! Why: a reasoning model behind a reasoning parser (vLLM `--reasoning-parser`, SGLang,
//! llama.cpp) streams its chain of thought in a delta field of its own before the answer
//! in `delta.content`, so the first token a client sees is not the answer's. Clients and
//! analyses that time the first *answer* token need a server that does this on demand.
//!
//! With [`Reasoning`] set, the first `tokens` output tokens of every chat completion are
//! reasoning, the rest answer: a request whose output is shorter (its `max_tokens`, or
//! an early EOS, which always ends the answer) reasons for all its tokens but the EOS,
//! and never answers, as a real model cut by its length limit. A request may turn it off
//! as Qwen3 and DeepSeek-V3.1 requests do on vLLM and SGLang:
//! `"chat_template_kwargs": {"enable_thinking": false}` (or `"thinking": false`).
//! Completions (`/v1/completions`) never reason: servers apply reasoning parsers to chat
//! only. Usage objects then carry `completion_tokens_details.reasoning_tokens`, as
//! OpenAI's API reports it (vLLM reports none).

/// Which delta (and message) fields carry the reasoning text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReasoningField {
    /// `reasoning`: vLLM since it renamed the field (0.11 on), and today.
    #[default]
    Reasoning,
    /// `reasoning_content`: SGLang, llama.cpp, vLLM before 0.11.
    ReasoningContent,
    /// Both, with the same text: vLLM while it kept the old name in sync for old
    /// clients.
    Both,
}

impl ReasoningField {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReasoningField::Reasoning => "reasoning",
            ReasoningField::ReasoningContent => "reasoning_content",
            ReasoningField::Both => "both",
        }
    }

    /// The JSON keys the text goes under.
    pub(crate) fn keys(&self) -> &'static [&'static str] {
        match self {
            ReasoningField::Reasoning => &["reasoning"],
            ReasoningField::ReasoningContent => &["reasoning_content"],
            ReasoningField::Both => &["reasoning", "reasoning_content"],
        }
    }
}

impl std::str::FromStr for ReasoningField {
    type Err = crate::SimError;
    fn from_str(s: &str) -> Result<Self, crate::SimError> {
        match s {
            "reasoning" => Ok(ReasoningField::Reasoning),
            "reasoning_content" => Ok(ReasoningField::ReasoningContent),
            "both" => Ok(ReasoningField::Both),
            other => Err(crate::SimError::Config(format!(
                "unknown reasoning field `{other}` (expected reasoning, reasoning_content or both)"
            ))),
        }
    }
}

/// Reasoning-model behaviour of the OpenAI dialect's chat completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reasoning {
    /// Leading output tokens of each chat completion that are reasoning.
    pub tokens: u32,
    pub field: ReasoningField,
}

impl Reasoning {
    /// Reasoning tokens of a request producing `target` tokens (the last one an EOS
    /// when `eos`), when it thinks at all.
    pub(crate) fn planned(&self, target: u32, eos: bool) -> u32 {
        self.tokens.min(target.saturating_sub(u32::from(eos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_plans_stop_before_eos() {
        for f in [
            ReasoningField::Reasoning,
            ReasoningField::ReasoningContent,
            ReasoningField::Both,
        ] {
            assert_eq!(f.as_str().parse::<ReasoningField>().unwrap(), f);
        }
        assert!("content".parse::<ReasoningField>().is_err());
        let r = Reasoning {
            tokens: 5,
            field: ReasoningField::Both,
        };
        assert_eq!(r.planned(8, false), 5);
        assert_eq!(r.planned(3, false), 3);
        assert_eq!(r.planned(3, true), 2);
        assert_eq!(r.planned(0, true), 0);
    }
}
