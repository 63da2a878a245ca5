//! Spec synthesis of multi-turn sessions (`[sessions]` in a spec: `turns`, `think`).
//!
//! # The plan (drawn up front, session by session)
//! Sessions are drawn in order 0, 1, 2...: each draws its turn count from `turns` on
//! stream 7, until the turns add up to `requests`; the last session is cut short at the
//! count. Then, in session-major order (session 0's turns, then session 1's...): one
//! user-message length per turn from `prompt_tokens` (stream 1), one `max_tokens` from
//! `output_tokens` (stream 2), one think time per turn after the first (stream 8). The
//! arrival process (stream 3) gives each session's start, one per session; with
//! `prefix`, each session's group (stream 6, one per session; `round_robin`: session
//! `s` uses group `s mod groups`). So changing the rate or the think times moves no
//! length, and a session's lengths depend only on its place in the plan.
//!
//! # File order and content
//! Turns are ordered as [`crate::session::schedule`] says; request ids follow file order.
//! Turn `k` of a session, request `id`, sends:
//! * with `prefix`, first a `system` message holding the session group's prefix text
//!   (exactly `prefix.tokens` tokens, the same text as a single-shot prefix);
//! * the session's earlier turns: each one's user message, then an `assistant` message
//!   holding that turn's recorded answer: exactly its `max_tokens` tokens of filler
//!   words ([`PromptBuilder::answer`], stream `2^33 + id` of that turn);
//! * a new `user` message of exactly the drawn length, made as a single-shot prompt of
//!   request `id` ([`PromptBuilder::build`]: its first words spell `id`, so sessions
//!   differ from their first user message on).
//!
//! `prompt` is the rendering of those messages and `prompt_tokens` its exact count
//! ([`crate::session::render_counted`]); a rendering above 2^20 tokens is an error.

use formats::{ChatMessage, SyntheticSpec, TraceRequest};

use crate::dist::{arrivals, sample_length};
use crate::error::Result;
use crate::prompt::{PromptBuilder, PromptSource};
use crate::rng::{Purpose, SeedKey};
use crate::session::{Slot, ThinkSampler, render_counted, schedule};
use crate::synth::prefix::{GroupChooser, Prefixes};

/// The requests of a spec with `sessions`, in file order (see the module docs).
pub struct SessionRequests<'a> {
    spec: &'a SyntheticSpec,
    prompts: PromptBuilder<'a>,
    slots: std::vec::IntoIter<Slot>,
    /// `(user message tokens, max_tokens)` per turn, in plan order.
    lengths: Vec<(u32, u32)>,
    /// Turns of each session.
    turns: Vec<u32>,
    /// Each session's prefix group, with `prefix`.
    groups: Vec<u32>,
    prefixes: Option<Prefixes<'a>>,
    /// The recorded history of each session whose turns are under way.
    histories: Vec<Option<Vec<ChatMessage>>>,
    next: u64,
}

impl<'a> SessionRequests<'a> {
    /// Plans the sessions of a validated `spec` (which has `sessions`).
    pub fn new(spec: &'a SyntheticSpec, source: &'a PromptSource) -> Result<Self> {
        let plan = spec.sessions.as_ref().expect("a spec with sessions");
        let key = SeedKey::new(spec.seed);
        let mut turn_rng = key.stream(Purpose::SessionTurns);
        let (mut turns, mut total) = (Vec::new(), 0u64);
        while total < spec.requests {
            let t = u64::from(sample_length(&plan.turns, &mut turn_rng));
            let t = t.min(spec.requests - total);
            turns.push(t as u32);
            total += t;
        }
        let (mut plen, mut olen) = (
            key.stream(Purpose::PromptLengths),
            key.stream(Purpose::OutputLengths),
        );
        let lengths = (0..total)
            .map(|_| {
                let p = sample_length(&spec.prompt_tokens, &mut plen);
                (p, sample_length(&spec.output_tokens, &mut olen))
            })
            .collect();
        let sessions = turns.len() as u64;
        let starts = arrivals(&spec.arrival, sessions, &mut key.stream(Purpose::Arrivals))?;
        let mut think = ThinkSampler::new(&plan.think, &key);
        let slots = schedule(&starts, &turns, |_, _| think.draw_ns())?;
        let (groups, prefixes) = match &spec.prefix {
            None => (Vec::new(), None),
            Some(p) => {
                let mut chooser = GroupChooser::new(p, &key);
                let groups = (0..sessions).map(|s| chooser.group(s)).collect();
                (groups, Some(Prefixes::new(source, spec.seed, p.tokens)))
            }
        };
        Ok(SessionRequests {
            spec,
            prompts: source.builder(spec.seed, spec.requests),
            slots: slots.into_iter(),
            lengths,
            histories: vec![None; turns.len()],
            turns,
            groups,
            prefixes,
            next: 0,
        })
    }

    /// The history a session's first turn starts from: its prefix as a system message.
    fn opening(&mut self, session: usize) -> Result<Vec<ChatMessage>> {
        match &mut self.prefixes {
            None => Ok(Vec::new()),
            Some(p) => {
                let prefix = p.get(self.groups[session])?;
                Ok(vec![ChatMessage::new("system", prefix.text.clone())])
            }
        }
    }

    fn request(&mut self, id: u64, slot: Slot) -> Result<TraceRequest> {
        let s = slot.session as usize;
        let (user_tokens, max_tokens) = self.lengths[slot.index];
        if self.histories[s].is_none() {
            let opening = self.opening(s)?;
            self.histories[s] = Some(opening);
        }
        let user = self.prompts.build(id, user_tokens)?;
        let history = self.histories[s].as_mut().expect("set above");
        history.push(ChatMessage::new("user", user.text));
        let last = slot.turn + 1 == self.turns[s];
        let messages = if last {
            self.histories[s].take().expect("set above")
        } else {
            history.clone()
        };
        let origin = format!("session {s} turn {} (request {id})", slot.turn);
        let (prompt, prompt_tokens, ids) =
            render_counted(self.prompts.source(), &messages, &origin)?;
        if !last {
            let answer = self.prompts.answer(id, max_tokens)?;
            let history = self.histories[s]
                .as_mut()
                .expect("kept until the last turn");
            history.push(ChatMessage::new("assistant", answer.text));
        }
        Ok(TraceRequest {
            id,
            arrival_ns: slot.arrival_ns,
            prompt,
            prompt_token_ids: ids,
            prompt_tokens,
            max_tokens,
            ignore_eos: self.spec.ignore_eos,
            session_id: Some(slot.session),
            turn: Some(slot.turn),
            think_ns: (slot.turn > 0).then_some(slot.think_ns),
            messages: Some(messages),
        })
    }
}

impl Iterator for SessionRequests<'_> {
    type Item = Result<TraceRequest>;

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.slots.next()?;
        let id = self.next;
        self.next += 1;
        Some(self.request(id, slot))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::trace::{Requests, generate_trace};
    use formats::{Arrival, LengthDist, PrefixShare, PrefixSpec, SessionSpec, ThinkTime};

    pub(crate) fn spec() -> SyntheticSpec {
        SyntheticSpec {
            name: "s".into(),
            seed: 7,
            requests: 200,
            prompt_tokens: LengthDist::Uniform {
                lo: 1,
                hi: 40,
                floor: 1,
            },
            output_tokens: LengthDist::Uniform {
                lo: 1,
                hi: 30,
                floor: 1,
            },
            arrival: Arrival::Poisson { rate: 2.0 },
            ignore_eos: true,
            prefix: None,
            sessions: Some(SessionSpec {
                turns: LengthDist::Uniform {
                    lo: 1,
                    hi: 8,
                    floor: 1,
                },
                think: ThinkTime::Exponential { mean_s: 3.0 },
            }),
        }
    }

    fn all(spec: &SyntheticSpec) -> Vec<TraceRequest> {
        let src = PromptSource::builtin();
        Requests::new(spec, &src)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap()
    }

    fn words(s: &str) -> u32 {
        s.split_whitespace().count() as u32
    }

    /// Every rule of the module docs, checked on `reqs` of `spec`.
    fn check_sessions(spec: &SyntheticSpec, reqs: &[TraceRequest]) {
        assert_eq!(reqs.len() as u64, spec.requests);
        let source = PromptSource::builtin();
        let mut prompts = source.builder(spec.seed, spec.requests);
        let mut last: Vec<&TraceRequest> = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            assert_eq!(r.id, i as u64);
            let (s, t) = (r.session_id.unwrap() as usize, r.turn.unwrap());
            let m = r.messages.as_ref().unwrap();
            assert_eq!(r.prompt, formats::render_messages(m));
            assert_eq!(r.prompt_tokens, words(&r.prompt));
            let user = m.last().unwrap();
            assert_eq!(user.role, "user");
            // The user message is request `id`'s single-shot prompt of its length.
            let want = prompts.build(r.id, words(&user.content)).unwrap().text;
            assert_eq!(user.content, want, "request {}", r.id);
            if t == 0 {
                assert_eq!(s, last.len(), "sessions numbered in order of first turn");
                assert_eq!(r.think_ns, None);
                let opening = usize::from(spec.prefix.is_some());
                assert_eq!(m.len(), 1 + opening);
                last.push(r);
                continue;
            }
            let prev = last[s];
            assert_eq!(prev.turn.unwrap() + 1, t);
            let pm = prev.messages.as_ref().unwrap();
            // History = previous turn's messages + its recorded answer + a new user message.
            assert_eq!(&m[..pm.len()], &pm[..]);
            assert_eq!(m.len(), pm.len() + 2);
            assert_eq!(m[pm.len()].role, "assistant");
            assert_eq!(words(&m[pm.len()].content), prev.max_tokens);
            let think = r.think_ns.unwrap();
            assert_eq!(r.arrival_ns, prev.arrival_ns + think);
            last[s] = r;
        }
        for w in reqs.windows(2) {
            let key = |r: &TraceRequest| (r.arrival_ns, r.turn.unwrap(), r.session_id.unwrap());
            assert!(key(&w[0]) < key(&w[1]), "file order");
        }
    }

    #[test]
    fn sessions_follow_the_rules() {
        let s = spec();
        let reqs = all(&s);
        check_sessions(&s, &reqs);
        let sessions = reqs.iter().filter(|r| r.turn == Some(0)).count();
        assert!(sessions > 30 && sessions < 80, "{sessions}");
        assert!(reqs.iter().any(|r| r.turn == Some(7)));
        // The user message lengths are the drawn ones: the first turns' prompts are
        // `user:` + the message.
        for r in reqs.iter().filter(|r| r.turn == Some(0)) {
            assert!((2..=41).contains(&r.prompt_tokens));
        }
    }

    #[test]
    fn last_session_is_cut_at_the_count_and_lengths_do_not_move() {
        let mut s = spec();
        s.sessions.as_mut().unwrap().turns = LengthDist::Fixed { value: 4, floor: 1 };
        s.requests = 10;
        let reqs = all(&s);
        check_sessions(&s, &reqs);
        let per: Vec<usize> = (0..3)
            .map(|k| reqs.iter().filter(|r| r.session_id == Some(k)).count())
            .collect();
        assert_eq!(per, [4, 4, 2]);
        // Another rate or think time: same sessions, same lengths per (session, turn).
        let key = |r: &TraceRequest| {
            let user = words(&r.messages.as_ref().unwrap().last().unwrap().content);
            (r.session_id, r.turn, user, r.max_tokens)
        };
        let mut base: Vec<_> = reqs.iter().map(key).collect();
        s.arrival = Arrival::Constant { rate: 100.0 };
        s.sessions.as_mut().unwrap().think = ThinkTime::Fixed { value_s: 0.0 };
        let other = all(&s);
        check_sessions(&s, &other);
        let mut other: Vec<_> = other.iter().map(key).collect();
        base.sort();
        other.sort();
        assert_eq!(base, other);
    }

    #[test]
    fn ties_put_first_turns_first() {
        let mut s = spec();
        s.arrival = Arrival::Burst;
        s.sessions.as_mut().unwrap().think = ThinkTime::Fixed { value_s: 0.0 };
        s.requests = 40;
        let reqs = all(&s);
        check_sessions(&s, &reqs);
        let turns: Vec<u32> = reqs.iter().map(|r| r.turn.unwrap()).collect();
        assert!(turns.windows(2).all(|w| w[0] <= w[1]), "{turns:?}");
        assert!(reqs.iter().all(|r| r.arrival_ns == 0));
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let src = PromptSource::builtin();
        let p = |n: &str| dir.path().join(n);
        generate_trace(&spec(), &src, &p("a")).unwrap();
        generate_trace(&spec(), &src, &p("b")).unwrap();
        let mut other = spec();
        other.seed = 8;
        generate_trace(&other, &src, &p("c")).unwrap();
        let read = |n: &str| std::fs::read(p(n)).unwrap();
        assert_eq!(read("a"), read("b"));
        assert_ne!(read("a"), read("c"));
        let (h, reqs) = formats::read_trace(p("a")).unwrap();
        assert_eq!(h.version, formats::TRACE_VERSION_SESSIONS);
        assert_eq!(h.spec, formats::TraceSpec::Synthetic(spec()));
        check_sessions(&spec(), &reqs);
    }

    #[test]
    fn prefix_is_each_sessions_system_message() {
        let mut s = spec();
        s.prefix = Some(PrefixSpec {
            groups: 3,
            tokens: 12,
            share: PrefixShare::RoundRobin,
            zipf_s: None,
        });
        let reqs = all(&s);
        check_sessions(&s, &reqs);
        let src = PromptSource::builtin();
        let mut prefixes = Prefixes::new(&src, s.seed, 12);
        for r in &reqs {
            let m = r.messages.as_ref().unwrap();
            let g = (r.session_id.unwrap() % 3) as u32;
            assert_eq!(m[0].role, "system");
            assert_eq!(m[0].content, prefixes.get(g).unwrap().text);
            assert_eq!(words(&m[0].content), 12);
        }
    }

    #[test]
    fn bad_session_specs_are_refused() {
        let mut s = spec();
        s.sessions.as_mut().unwrap().turns = LengthDist::Uniform {
            lo: 0,
            hi: 3,
            floor: 0,
        };
        let e = crate::spec::validate(&s).unwrap_err().to_string();
        assert!(e.contains("at least one turn"), "{e}");
        s.sessions.as_mut().unwrap().turns = LengthDist::Fixed {
            value: 100_000,
            floor: 1,
        };
        let e = crate::spec::validate(&s).unwrap_err().to_string();
        assert!(e.contains("limit of 65536"), "{e}");
        let mut s = spec();
        s.sessions.as_mut().unwrap().think = ThinkTime::Uniform {
            lo_s: 2.0,
            hi_s: 1.0,
        };
        let e = crate::spec::validate(&s).unwrap_err().to_string();
        assert!(e.contains("sessions.think: lo_s 2 > hi_s 1"), "{e}");
    }

    #[test]
    fn overlong_history_is_an_error() {
        let mut s = spec();
        s.prompt_tokens = LengthDist::Fixed {
            value: 400_000,
            floor: 1,
        };
        s.sessions.as_mut().unwrap().turns = LengthDist::Fixed { value: 4, floor: 1 };
        s.requests = 4;
        let src = PromptSource::builtin();
        let e = Requests::new(&s, &src)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("session 0 turn 2") && e.contains("above the limit"),
            "{e}"
        );
    }
}
