//! Multi-turn sessions: what spec synthesis ([`crate::synth::sessions`]) and dataset
//! imports with `--sessions` ([`crate::import::dataset_session`]) share.
//!
//! A session is a chat: turn `k` sends the session's recorded history (earlier user
//! messages and recorded assistant answers, never a live reply) and a new user message.
//! Sessions start open loop (the arrival process, or a file's timestamps); inside a
//! session the loop is closed: turn `k + 1` is due `think_ns` after turn `k` *ends*, which
//! only the replayer knows. A trace is still one ordered list, so every turn gets a
//! **nominal** arrival, the earliest it could be due:
//!
//! `arrival(s, 0) = start(s)`, `arrival(s, k) = arrival(s, k - 1) + think(s, k)`
//!
//! (every earlier turn taking no time), and the file is sorted by
//! `(nominal arrival, turn, session)`: at equal nominal times first turns (really due
//! then) come before later turns (due later in any real run), then sessions in start
//! order. Sessions are numbered in plan order with non-decreasing starts, so their first
//! turns appear in number order, as the trace format requires.
//!
//! # Think times
//! [`ThinkTime`] in seconds, drawn on stream 8 ([`Purpose::ThinkTimes`]), one draw per
//! turn after the first in session order (`fixed` draws nothing): `fixed` = `value_s`;
//! `uniform` = `lo_s + (hi_s - lo_s) * u`, `u` uniform in `[0, 1)`; `exponential` =
//! `-mean_s * ln(u)`, `u` in `(0, 1]`; then rounded to integer ns
//! (round-half-away-from-zero).
//!
//! # Prompt and count
//! A turn's `prompt` is [`formats::render_messages`] of its `messages` (`role: content`
//! lines joined by `\n`) and `prompt_tokens` counts that rendering exactly
//! ([`PromptSource::count`]: its ids under a tokenizer, recorded as `prompt_token_ids`;
//! else its whitespace-separated words, role labels included, which is what `llmib sim`
//! counts).

use formats::{ChatMessage, ThinkTime, render_messages};

use crate::dist::secs_to_ns;
use crate::error::{GenError, Result};
use crate::limits::MAX_PROMPT_TOKENS;
use crate::prompt::PromptSource;
use crate::rng::{Purpose, SeedKey, StreamRng};

/// Most turns in one synthetic session.
pub const MAX_TURNS: u32 = 65_536;
/// Largest think-time parameter, seconds (11.6 days: anything above is a typo).
pub const MAX_THINK_S: f64 = 1e6;

/// Rejects a think-time distribution that cannot be drawn, with a one-line reason.
pub fn validate_think(what: &str, t: &ThinkTime) -> Result<()> {
    let check = |name: &str, x: f64, zero_ok: bool| {
        let ok = x.is_finite() && x <= MAX_THINK_S && (x > 0.0 || (zero_ok && x == 0.0));
        if ok {
            Ok(())
        } else {
            let range = if zero_ok { "0 to" } else { "above 0, up to" };
            Err(GenError::InvalidSpec(format!(
                "{what}: {name} must be a number of seconds {range} {MAX_THINK_S}, got {}",
                formats::readable(x)
            )))
        }
    };
    match *t {
        ThinkTime::Fixed { value_s } => check("value_s", value_s, true),
        ThinkTime::Uniform { lo_s, hi_s } => {
            check("lo_s", lo_s, true)?;
            check("hi_s", hi_s, true)?;
            if lo_s > hi_s {
                return Err(GenError::InvalidSpec(format!(
                    "{what}: lo_s {} > hi_s {}",
                    formats::readable(lo_s),
                    formats::readable(hi_s)
                )));
            }
            Ok(())
        }
        ThinkTime::Exponential { mean_s } => check("mean_s", mean_s, false),
    }
}

/// Parses `--think-time`: `fixed:SECONDS`, `uniform:LO:HI` or `exponential:MEAN`.
pub fn parse_think_time(text: &str) -> Result<ThinkTime> {
    let bad = |m: &str| {
        GenError::InvalidSpec(format!(
            "--think-time {text:?}: {m}; expected fixed:SECONDS, uniform:LO:HI or exponential:MEAN"
        ))
    };
    let mut parts = text.split(':');
    let kind = parts.next().unwrap_or_default();
    let nums = parts
        .map(|p| p.trim().parse::<f64>().map_err(|_| bad("not a number")))
        .collect::<Result<Vec<f64>>>()?;
    let t = match (kind, nums.as_slice()) {
        ("fixed", &[value_s]) => ThinkTime::Fixed { value_s },
        ("uniform", &[lo_s, hi_s]) => ThinkTime::Uniform { lo_s, hi_s },
        ("exponential", &[mean_s]) => ThinkTime::Exponential { mean_s },
        ("fixed" | "uniform" | "exponential", _) => return Err(bad("wrong number of values")),
        _ => return Err(bad("unknown distribution")),
    };
    validate_think("--think-time", &t)?;
    Ok(t)
}

/// Draws think times, in ns, on the think-time stream.
pub struct ThinkSampler {
    dist: ThinkTime,
    rng: StreamRng,
}

impl ThinkSampler {
    /// `dist` must be valid ([`validate_think`]).
    pub fn new(dist: &ThinkTime, key: &SeedKey) -> Self {
        ThinkSampler {
            dist: dist.clone(),
            rng: key.stream(Purpose::ThinkTimes),
        }
    }

    /// The next think time, ns.
    pub fn draw_ns(&mut self) -> Result<u64> {
        let secs = match self.dist {
            ThinkTime::Fixed { value_s } => value_s,
            ThinkTime::Uniform { lo_s, hi_s } => lo_s + (hi_s - lo_s) * self.rng.unit(),
            ThinkTime::Exponential { mean_s } => self.rng.exponential(mean_s),
        };
        secs_to_ns(secs).ok_or_else(|| GenError::Invalid(format!("think time {secs} s overflows")))
    }
}

/// One turn in the file order of a session trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Nominal arrival: session start plus the think times of the turns so far.
    pub arrival_ns: u64,
    /// Think time before this turn (0 for first turns, which carry none).
    pub think_ns: u64,
    /// Session number (plan order = order of first turns).
    pub session: u64,
    pub turn: u32,
    /// Position of the turn in session-major plan order (session 0's turns, then 1's...).
    pub index: usize,
}

/// The file order of sessions with `starts` (non-decreasing) and `turns` turns each;
/// `think(session, turn)` gives the think time of each turn after the first, called in
/// session-major order. Errors if a nominal arrival overflows 64-bit ns.
pub fn schedule(
    starts: &[u64],
    turns: &[u32],
    mut think: impl FnMut(u64, u32) -> Result<u64>,
) -> Result<Vec<Slot>> {
    debug_assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    let total: usize = turns.iter().map(|&t| t as usize).sum();
    let mut slots = Vec::with_capacity(total);
    for (s, (&start, &n)) in starts.iter().zip(turns).enumerate() {
        let mut at = start;
        for turn in 0..n {
            let think_ns = if turn == 0 { 0 } else { think(s as u64, turn)? };
            at = at.checked_add(think_ns).ok_or_else(|| {
                GenError::Invalid(format!(
                    "session {s} turn {turn}: start plus think times overflow 584 years"
                ))
            })?;
            slots.push(Slot {
                arrival_ns: at,
                think_ns,
                session: s as u64,
                turn,
                index: slots.len(),
            });
        }
    }
    slots.sort_unstable_by_key(|x| (x.arrival_ns, x.turn, x.session));
    Ok(slots)
}

/// A chat rendered and counted: `(prompt, prompt_tokens, prompt_token_ids)`. Errors if
/// it exceeds [`MAX_PROMPT_TOKENS`] (`origin` names it).
pub fn render_counted(
    source: &PromptSource,
    messages: &[ChatMessage],
    origin: &str,
) -> Result<(String, u32, Option<Vec<u32>>)> {
    let prompt = render_messages(messages);
    let (tokens, ids) = source.count(&prompt, origin)?;
    if tokens > MAX_PROMPT_TOKENS {
        return Err(GenError::Invalid(format!(
            "{origin}: the rendered chat has {tokens} tokens, above the limit of {MAX_PROMPT_TOKENS}; use fewer or shorter turns"
        )));
    }
    Ok((prompt, tokens, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_time_flags() {
        assert_eq!(
            parse_think_time("fixed:2.5").unwrap(),
            ThinkTime::Fixed { value_s: 2.5 }
        );
        assert_eq!(
            parse_think_time("uniform:1:3").unwrap(),
            ThinkTime::Uniform {
                lo_s: 1.0,
                hi_s: 3.0
            }
        );
        assert_eq!(
            parse_think_time("exponential:5").unwrap(),
            ThinkTime::Exponential { mean_s: 5.0 }
        );
        for (bad, want) in [
            ("fixed", "wrong number of values"),
            ("fixed:-1", "value_s must be"),
            ("fixed:nan", "NaN"),
            ("exponential:0", "mean_s must be"),
            ("uniform:3:1", "lo_s 3 > hi_s 1"),
            ("uniform:1", "wrong number"),
            ("poisson:1", "unknown distribution"),
            ("fixed:x", "not a number"),
            ("fixed:1e7", "value_s must be"),
        ] {
            let e = parse_think_time(bad).unwrap_err().to_string();
            assert!(e.contains(want) && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn think_draws_follow_their_distribution() {
        let key = SeedKey::new(4);
        let mut f = ThinkSampler::new(&ThinkTime::Fixed { value_s: 1.5 }, &key);
        assert_eq!(f.draw_ns().unwrap(), 1_500_000_000);
        let mut u = ThinkSampler::new(
            &ThinkTime::Uniform {
                lo_s: 1.0,
                hi_s: 2.0,
            },
            &key,
        );
        let d: Vec<u64> = (0..2000).map(|_| u.draw_ns().unwrap()).collect();
        assert!(
            d.iter()
                .all(|&x| (1_000_000_000..=2_000_000_000).contains(&x))
        );
        let mean = d.iter().sum::<u64>() as f64 / 2000.0 / 1e9;
        assert!((mean - 1.5).abs() < 0.03, "{mean}");
        let mut e = ThinkSampler::new(&ThinkTime::Exponential { mean_s: 2.0 }, &key);
        let mean = (0..4000).map(|_| e.draw_ns().unwrap()).sum::<u64>() as f64 / 4000.0 / 1e9;
        assert!((mean - 2.0).abs() < 0.15, "{mean}");
    }

    #[test]
    fn schedule_orders_by_nominal_time_then_turn_then_session() {
        // Session 0 starts at 0 with gaps of 5; session 1 at 5 with gaps of 1.
        let gaps = [5u64, 1];
        let slots = schedule(&[0, 5], &[3, 3], |s, _| Ok(gaps[s as usize])).unwrap();
        let got: Vec<(u64, u64, u32)> = slots
            .iter()
            .map(|x| (x.arrival_ns, x.session, x.turn))
            .collect();
        assert_eq!(
            got,
            [
                (0, 0, 0),
                (5, 1, 0),
                (5, 0, 1),
                (6, 1, 1),
                (7, 1, 2),
                (10, 0, 2)
            ]
        );
        assert_eq!(slots[2].think_ns, 5);
        assert_eq!(slots[0].think_ns, 0);
        assert_eq!(slots[5].index, 2);
        assert!(schedule(&[u64::MAX - 1], &[2], |_, _| Ok(5)).is_err());
    }
}
