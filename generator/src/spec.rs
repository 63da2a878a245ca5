//! Spec files (`SyntheticSpec` in TOML), command-line overrides and validation.
//!
//! The schema is [`formats::SyntheticSpec`]: the spec written into every trace header is
//! the one the trace was generated from, after overrides, so the header alone
//! regenerates the trace.

use std::path::Path;

use formats::{Arrival, LengthDist, SyntheticSpec};

use crate::error::{GenError, Result};
pub use crate::limits::{MAX_PROMPT_TOKENS, MAX_REQUESTS};

/// Capped-exponential rejection must accept at least about one draw in this many.
const MAX_EXPECTED_REJECTIONS: f64 = 1000.0;

/// Reads and parses a spec file (not validated: apply overrides, then [`validate`]).
pub fn load_spec(path: &Path) -> Result<SyntheticSpec> {
    let text = formats::read_input_utf8(path, formats::InputKind::SPEC)?;
    parse_spec(&text, path)
}

/// Parses spec TOML; `path` only labels errors.
pub fn parse_spec(text: &str, path: &Path) -> Result<SyntheticSpec> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        GenError::SpecSyntax {
            path: path.to_path_buf(),
            line,
            message: one_line(e.message()),
        }
    })
}

/// A parser message made fit for one error line: control characters (newlines
/// included) become spaces, and it is cut to 200 characters. The TOML parser quotes the
/// file's own values (an unknown variant, a wrong-typed string), which may be any
/// length: found by fuzzing, a garbage `process` value made a multi-line, unbounded error.
fn one_line(message: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut out: String = message
        .trim()
        .chars()
        .take(MAX_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if message.trim().chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Serialises a spec as TOML (what `--suite` writes next to each trace).
pub fn spec_to_toml(spec: &SyntheticSpec) -> String {
    toml::to_string(spec).expect("a spec always serialises")
}

/// Arrival process named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalKind {
    Burst,
    Constant,
    Poisson,
    Gamma,
}

/// Command-line overrides of spec fields. `None` keeps the spec's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub requests: Option<u64>,
    /// Arrival process; switching to a timed one needs a rate (from `rate` or the spec).
    pub arrival: Option<ArrivalKind>,
    pub rate: Option<f64>,
    pub burstiness: Option<f64>,
    /// Replaces the output distribution's cap (its `value` for `fixed`, `hi` for `uniform`).
    pub output_cap: Option<u32>,
    /// Replaces the output distribution's mean (exponential variants only).
    pub output_mean: Option<f64>,
    pub ignore_eos: Option<bool>,
}

impl Overrides {
    pub fn apply(&self, spec: &mut SyntheticSpec) -> Result<()> {
        if let Some(name) = &self.name {
            spec.name = name.clone();
        }
        if let Some(seed) = self.seed {
            spec.seed = seed;
        }
        if let Some(n) = self.requests {
            spec.requests = n;
        }
        if let Some(e) = self.ignore_eos {
            spec.ignore_eos = e;
        }
        let old_rate = spec.arrival.rate();
        let old_b = match spec.arrival {
            Arrival::Gamma { burstiness, .. } => Some(burstiness),
            _ => None,
        };
        let kind = self.arrival.unwrap_or(match spec.arrival {
            Arrival::Burst => ArrivalKind::Burst,
            Arrival::Constant { .. } => ArrivalKind::Constant,
            Arrival::Poisson { .. } => ArrivalKind::Poisson,
            Arrival::Gamma { .. } => ArrivalKind::Gamma,
        });
        let rate = self.rate.or(old_rate);
        let need_rate =
            || GenError::InvalidSpec("this arrival process needs a rate (--rate)".to_string());
        spec.arrival = match kind {
            ArrivalKind::Burst => {
                if self.rate.is_some() || self.burstiness.is_some() {
                    return Err(GenError::InvalidSpec(
                        "--rate/--burstiness do not apply to burst arrivals; add --arrival poisson|constant|gamma".into(),
                    ));
                }
                Arrival::Burst
            }
            ArrivalKind::Constant => Arrival::Constant {
                rate: rate.ok_or_else(need_rate)?,
            },
            ArrivalKind::Poisson => Arrival::Poisson {
                rate: rate.ok_or_else(need_rate)?,
            },
            ArrivalKind::Gamma => Arrival::Gamma {
                rate: rate.ok_or_else(need_rate)?,
                burstiness: self.burstiness.or(old_b).unwrap_or(1.0),
            },
        };
        if self.burstiness.is_some() && kind != ArrivalKind::Gamma {
            return Err(GenError::InvalidSpec(
                "--burstiness applies to gamma arrivals only".into(),
            ));
        }
        if let Some(c) = self.output_cap {
            match &mut spec.output_tokens {
                LengthDist::Fixed { value, .. } => *value = c,
                LengthDist::Uniform { hi, .. } => *hi = c,
                LengthDist::Exponential { cap, .. } | LengthDist::CappedExponential { cap, .. } => {
                    *cap = c
                }
            }
        }
        if let Some(m) = self.output_mean {
            match &mut spec.output_tokens {
                LengthDist::Exponential { mean, .. }
                | LengthDist::CappedExponential { mean, .. } => *mean = m,
                _ => {
                    return Err(GenError::InvalidSpec(
                        "--output-mean applies to exponential output distributions only".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn positive(what: &str, x: f64) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(GenError::InvalidSpec(format!(
            "{what} must be a finite number > 0, got {}",
            formats::readable(x)
        )))
    }
}

/// Smallest value `dist` can produce.
fn min_value(dist: &LengthDist) -> u32 {
    let raw = match *dist {
        LengthDist::Fixed { value, .. } => value,
        LengthDist::Uniform { lo, .. } => lo,
        LengthDist::Exponential { .. } | LengthDist::CappedExponential { .. } => 0,
    };
    raw.max(dist.floor())
}

pub(crate) fn validate_dist(what: &str, dist: &LengthDist) -> Result<()> {
    let bad = |m: String| Err(GenError::InvalidSpec(format!("{what}: {m}")));
    match *dist {
        LengthDist::Fixed { value, floor } => {
            if floor > value {
                return bad(format!("floor {floor} > value {value}"));
            }
        }
        LengthDist::Uniform { lo, hi, floor } => {
            if lo > hi {
                return bad(format!("lo {lo} > hi {hi}"));
            }
            if floor > hi {
                return bad(format!("floor {floor} > hi {hi}"));
            }
        }
        LengthDist::Exponential { mean, cap, floor }
        | LengthDist::CappedExponential { mean, cap, floor } => {
            positive(&format!("{what}.mean"), mean)?;
            if floor > cap {
                return bad(format!("floor {floor} > cap {cap}"));
            }
            if matches!(dist, LengthDist::CappedExponential { .. })
                && mean > MAX_EXPECTED_REJECTIONS * (f64::from(cap) + 0.5)
            {
                return bad(format!(
                    "cap {cap} is so far below the mean {} that rejection sampling would not end; use dist = \"exponential\" (clipped)",
                    formats::readable(mean)
                ));
            }
        }
    }
    Ok(())
}

/// Why a trace name is refused, if it is: the same rule for `generate` (the spec's
/// `name`, `--name`) and `import --name`. A name may become a file name, so it must not
/// be empty or hold path separators (`../../evil`) or control characters (newlines).
pub fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("name is empty".into());
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        let shown: String = name.chars().take(40).collect();
        return Some(format!(
            "name {shown:?} must not contain path separators or control characters"
        ));
    }
    None
}

/// `import --name`: refused as `generate` refuses a name ([`name_problem`]).
pub(crate) fn check_name_flag(name: Option<&str>) -> Result<()> {
    match name.and_then(name_problem) {
        Some(why) => Err(GenError::Invalid(format!("--name: {why}"))),
        None => Ok(()),
    }
}

/// Rejects parameters that cannot be met, with a one-line reason.
pub fn validate(spec: &SyntheticSpec) -> Result<()> {
    if let Some(why) = name_problem(&spec.name) {
        return Err(GenError::InvalidSpec(why));
    }
    if spec.requests == 0 {
        return Err(GenError::InvalidSpec("requests must be at least 1".into()));
    }
    if spec.requests > MAX_REQUESTS {
        return Err(GenError::InvalidSpec(format!(
            "requests {} exceeds the limit of {MAX_REQUESTS}",
            spec.requests
        )));
    }
    validate_dist("prompt_tokens", &spec.prompt_tokens)?;
    validate_dist("output_tokens", &spec.output_tokens)?;
    if min_value(&spec.prompt_tokens) == 0 {
        return Err(GenError::InvalidSpec(
            "prompt_tokens can be 0; a prompt needs at least one token (set floor >= 1)".into(),
        ));
    }
    let pmax = spec
        .prompt_tokens
        .cap()
        .unwrap_or(0)
        .max(spec.prompt_tokens.floor());
    if pmax > MAX_PROMPT_TOKENS {
        return Err(GenError::InvalidSpec(format!(
            "prompt_tokens can reach {pmax}, above the limit of {MAX_PROMPT_TOKENS}"
        )));
    }
    if let Some(p) = &spec.prefix {
        crate::synth::prefix::validate(p, MAX_PROMPT_TOKENS)?;
    }
    if let Some(s) = &spec.sessions {
        validate_sessions(s)?;
        // Each recorded answer is text in the later turns' prompts: one past the prompt
        // limit is never sendable, and 4e9 tokens of it once ran out of memory.
        let omax = spec
            .output_tokens
            .cap()
            .unwrap_or(0)
            .max(spec.output_tokens.floor());
        if omax > MAX_PROMPT_TOKENS {
            return Err(GenError::InvalidSpec(format!(
                "output_tokens can reach {omax}; in sessions each answer becomes part of the later turns' prompts, so at most {MAX_PROMPT_TOKENS}"
            )));
        }
    }
    validate_arrival(&spec.arrival)
}

/// Rejects session parameters that cannot be met: sessions need at least one turn and
/// at most [`crate::session::MAX_TURNS`]; think times as [`crate::session::validate_think`].
fn validate_sessions(s: &formats::SessionSpec) -> Result<()> {
    use crate::session::MAX_TURNS;
    validate_dist("sessions.turns", &s.turns)?;
    if min_value(&s.turns) == 0 {
        return Err(GenError::InvalidSpec(
            "sessions.turns can be 0; a session needs at least one turn (set floor >= 1)".into(),
        ));
    }
    let most = s.turns.cap().unwrap_or(0).max(s.turns.floor());
    if most > MAX_TURNS {
        return Err(GenError::InvalidSpec(format!(
            "sessions.turns can reach {most}, above the limit of {MAX_TURNS}"
        )));
    }
    crate::session::validate_think("sessions.think", &s.think)
}

/// Rejects an arrival process whose rate or burstiness is not a finite number > 0.
pub(crate) fn validate_arrival(arrival: &Arrival) -> Result<()> {
    match *arrival {
        Arrival::Burst => {}
        Arrival::Constant { rate } | Arrival::Poisson { rate } => positive("arrival.rate", rate)?,
        Arrival::Gamma { rate, burstiness } => {
            positive("arrival.rate", rate)?;
            positive("arrival.burstiness", burstiness)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
seed = 1
requests = 10

[prompt_tokens]
dist = "uniform"
lo = 1
hi = 512

[output_tokens]
dist = "capped_exponential"
mean = 128.0
cap = 512

[arrival]
process = "poisson"
rate = 4.0
"#;

    fn spec() -> SyntheticSpec {
        parse_spec(SPEC, Path::new("s.toml")).unwrap()
    }

    fn err(s: &SyntheticSpec) -> String {
        validate(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_and_round_trips() {
        let s = spec();
        assert_eq!(s.output_tokens.floor(), 1);
        assert!(s.ignore_eos);
        validate(&s).unwrap();
        assert_eq!(parse_spec(&spec_to_toml(&s), Path::new("x")).unwrap(), s);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let bad = SPEC.replace("hi = 512", "hi = \"x\"");
        let e = parse_spec(&bad, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        // The line of the offending table (serde buffers tagged enums, so toml reports
        // the table's span rather than the value's).
        assert!(
            e.starts_with("s.toml:6:") || e.starts_with("s.toml:9:"),
            "{e}"
        );
        assert!(e.contains("expected u32"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_spec(
            &SPEC.replace("seed = 1", "seed = 1\nsede = 2"),
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sede"), "{e}");
    }

    #[test]
    fn impossible_parameters_are_rejected() {
        let mut s = spec();
        s.arrival = Arrival::Poisson { rate: 0.0 };
        assert!(err(&s).contains("rate"));
        s.arrival = Arrival::Poisson { rate: f64::NAN };
        assert!(err(&s).contains("NaN"));
        s.arrival = Arrival::Gamma {
            rate: 1.0,
            burstiness: -1.0,
        };
        assert!(err(&s).contains("burstiness"));
        let mut s = spec();
        s.output_tokens = LengthDist::CappedExponential {
            mean: 128.0,
            cap: 32,
            floor: 64,
        };
        assert!(err(&s).contains("floor 64 > cap 32"));
        s.output_tokens = LengthDist::Exponential {
            mean: -1.0,
            cap: 32,
            floor: 1,
        };
        assert!(err(&s).contains("mean"));
        s.output_tokens = LengthDist::CappedExponential {
            mean: 1e9,
            cap: 1,
            floor: 1,
        };
        assert!(err(&s).contains("rejection"));
        let mut s = spec();
        s.prompt_tokens = LengthDist::Uniform {
            lo: 9,
            hi: 3,
            floor: 1,
        };
        assert!(err(&s).contains("lo 9 > hi 3"));
        s.prompt_tokens = LengthDist::Uniform {
            lo: 0,
            hi: 3,
            floor: 0,
        };
        assert!(err(&s).contains("at least one token"));
        let mut s = spec();
        s.requests = 0;
        assert!(err(&s).contains("requests"));
        let mut s = spec();
        s.name = "a/b".into();
        assert!(err(&s).contains("name"));
    }

    #[test]
    fn overrides() {
        let mut s = spec();
        Overrides {
            seed: Some(9),
            requests: Some(3),
            rate: Some(2.0),
            output_cap: Some(32),
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        assert_eq!((s.seed, s.requests), (9, 3));
        assert_eq!(s.arrival, Arrival::Poisson { rate: 2.0 });
        assert_eq!(s.output_tokens.cap(), Some(32));
        let mut s = spec();
        Overrides {
            arrival: Some(ArrivalKind::Gamma),
            burstiness: Some(0.5),
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        assert_eq!(
            s.arrival,
            Arrival::Gamma {
                rate: 4.0,
                burstiness: 0.5
            }
        );
        let mut s = spec();
        Overrides {
            arrival: Some(ArrivalKind::Burst),
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        assert_eq!(s.arrival, Arrival::Burst);
        assert!(
            Overrides {
                arrival: Some(ArrivalKind::Poisson),
                ..Default::default()
            }
            .apply(&mut s)
            .is_err()
        );
        assert!(
            Overrides {
                rate: Some(1.0),
                ..Default::default()
            }
            .apply(&mut s)
            .is_err()
        );
    }
}

#[cfg(test)]
mod example_specs {
    /// The example specs shipped in `benchmark_configs/specs/` and `traces/specs/` load
    /// and validate.
    #[test]
    fn shipped_specs_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut n = 0;
        for dir in ["benchmark_configs/specs", "traces/specs"] {
            let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for p in paths {
                let spec = super::load_spec(&p).unwrap_or_else(|e| panic!("{e}"));
                super::validate(&spec).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 11, "{n} specs found");
    }
}
