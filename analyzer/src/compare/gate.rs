//! The CI gate: `--fail-if "tpot_p50>+5%"`, `--fail-if "throughput<-3%"`. A rule fails
//! the build when the difference is significant at `alpha` AND its whole interval lies
//! beyond the threshold, so noise never fails a build and a real regression does.

use super::comparison::{Comparison, RunLevel, fmt_p};
use super::requests::Metric;
use super::rows::Verdict;
use crate::stats::Stat;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A metric's statistic (`tpot_p50`).
    Row(Metric, Stat),
    /// Output tokens/s, run level.
    Throughput,
    /// Good requests/s (`--slo`), run level.
    Goodput,
}

/// One `--fail-if` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub text: String,
    pub target: Target,
    /// `>`: fail on an increase beyond `threshold`; `<`: on a decrease below it.
    pub above: bool,
    /// Relative (0.05 for `+5%`).
    pub threshold: f64,
}

/// A rule's outcome, for its one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub failed: bool,
    pub line: String,
}

impl Rule {
    /// Parses `METRIC_STAT>+N%` / `METRIC_STAT<-N%` (metric ttft, tpot, itl, e2e,
    /// output_tokens; stat p50, p90, p95, p99, mean), `throughput<-N%` or `goodput<-N%`.
    pub fn parse(s: &str) -> Result<Rule, String> {
        let bad = |why: &str| {
            format!(
                "--fail-if `{s}`: {why} (expected e.g. tpot_p50>+5%, throughput<-3% or goodput<-3%)"
            )
        };
        let (left, right, above) = match (s.find('>'), s.find('<')) {
            (Some(i), None) => (&s[..i], &s[i + 1..], true),
            (None, Some(i)) => (&s[..i], &s[i + 1..], false),
            _ => return Err(bad("one comparison, > or <")),
        };
        let left = left.trim();
        let target = if left == "throughput" {
            Target::Throughput
        } else if left == "goodput" {
            Target::Goodput
        } else {
            let (m, st) = left.rsplit_once('_').ok_or_else(|| bad("no METRIC_STAT"))?;
            let metric = Metric::parse(m).ok_or_else(|| bad("unknown metric"))?;
            let stat = Stat::parse(st).ok_or_else(|| bad("unknown statistic"))?;
            Target::Row(metric, stat)
        };
        let pct = right
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| bad("the threshold is a percentage"))?;
        let threshold: f64 = pct
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad("the threshold is a number"))?
            / 100.0;
        Ok(Rule {
            text: s.trim().to_string(),
            target,
            above,
            threshold,
        })
    }

    /// Applies the rule to `c`.
    pub fn check(&self, c: &Comparison) -> Outcome {
        let pct = |x: f64| format!("{:+.1}%", 100.0 * x);
        let beyond = |lo: f64, hi: f64| {
            if self.above {
                lo > self.threshold
            } else {
                hi < self.threshold
            }
        };
        let (failed, what) = match self.target {
            Target::Row(metric, stat) => {
                match c.rows.iter().find(|r| r.metric == metric && r.stat == stat) {
                    None => (
                        false,
                        "not measured (no such row; add the statistic with --stat)".to_string(),
                    ),
                    Some(r) => {
                        let significant = r.verdict != Verdict::NoDifference;
                        let failed = significant && beyond(r.interval.lo, r.interval.hi);
                        (
                            failed,
                            format!(
                                "{} ({} .. {}, p {})",
                                pct(r.relative),
                                pct(r.interval.lo),
                                pct(r.interval.hi),
                                fmt_p(r.p_value)
                            ),
                        )
                    }
                }
            }
            Target::Throughput => self.run_level(Some(&c.throughput), c.spec.alpha, &beyond),
            Target::Goodput => self.run_level(c.goodput.as_ref(), c.spec.alpha, &beyond),
        };
        Outcome {
            failed,
            line: format!(
                "--fail-if {}: {} -> {}",
                self.text,
                what,
                if failed { "FAIL" } else { "pass" }
            ),
        }
    }
}

impl Rule {
    /// A run-level rule: fails when Welch's test is significant and its interval lies
    /// beyond the threshold; with one run a side (no interval) it passes and says why.
    fn run_level(
        &self,
        level: Option<&RunLevel>,
        alpha: f64,
        beyond: &dyn Fn(f64, f64) -> bool,
    ) -> (bool, String) {
        let pct = |x: f64| format!("{:+.1}%", 100.0 * x);
        let Some(level) = level else {
            return (false, "not measured (goodput needs --slo)".to_string());
        };
        match &level.welch {
            None => (
                false,
                format!(
                    "{} (one run a side: no interval; give several with --vs)",
                    pct(level.relative)
                ),
            ),
            Some(w) => (
                w.p_value < alpha && beyond(w.lo, w.hi),
                format!(
                    "{} ({} .. {}, p {})",
                    pct(w.diff),
                    pct(w.lo),
                    pct(w.hi),
                    fmt_p(w.p_value)
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_bad_ones_say_why() {
        let r = Rule::parse("tpot_p50>+5%").unwrap();
        assert_eq!(
            (r.target, r.above, r.threshold),
            (Target::Row(Metric::Tpot, Stat::Median), true, 0.05)
        );
        let r = Rule::parse("throughput<-3%").unwrap();
        assert_eq!((r.target, r.above), (Target::Throughput, false));
        assert!((r.threshold + 0.03).abs() < 1e-12);
        assert_eq!(Rule::parse("goodput<-2%").unwrap().target, Target::Goodput);
        let r = Rule::parse("output_tokens_mean<-1.5%").unwrap();
        assert_eq!(r.target, Target::Row(Metric::OutputTokens, Stat::Mean));
        for bad in [
            "tpot_p50>5",
            "tpot_p50=5%",
            "tpot>5%",
            "speed_p50>5%",
            "tpot_p42>5%",
            "tpot_p50>x%",
            "a>1%<2%",
        ] {
            let e = Rule::parse(bad).unwrap_err();
            assert!(
                e.starts_with("--fail-if") && !e.contains('\n'),
                "{bad}: {e}"
            );
        }
    }

    /// A run-level rule fails only when Welch's interval is significant and beyond the
    /// threshold; without an interval (one run a side) or without goodput it passes and
    /// says why.
    #[test]
    fn run_level_rules_need_a_significant_interval_beyond_the_threshold() {
        let rule = Rule::parse("goodput<-3%").unwrap();
        let level = |lo: f64, hi: f64, p: f64| RunLevel {
            a: vec![10.0, 10.2, 9.8],
            b: vec![8.0, 8.1, 7.9],
            relative: (lo + hi) / 2.0,
            welch: Some(super::super::intervals::Welch {
                diff: (lo + hi) / 2.0,
                lo,
                hi,
                df: 4.0,
                p_value: p,
            }),
        };
        let beyond = |_: f64, hi: f64| hi < rule.threshold;
        let (failed, line) = rule.run_level(Some(&level(-0.25, -0.15, 1e-4)), 0.05, &beyond);
        assert!(failed, "{line}");
        // Significant, but the interval reaches above -3%: not beyond the threshold.
        let (failed, _) = rule.run_level(Some(&level(-0.10, -0.01, 0.01)), 0.05, &beyond);
        assert!(!failed);
        // Beyond the threshold but not significant at alpha.
        let (failed, _) = rule.run_level(Some(&level(-0.25, -0.15, 0.2)), 0.05, &beyond);
        assert!(!failed);
        let mut one = level(-0.25, -0.15, 1e-4);
        one.welch = None;
        let (failed, line) = rule.run_level(Some(&one), 0.05, &beyond);
        assert!(!failed && line.contains("one run a side"), "{line}");
        let (failed, line) = rule.run_level(None, 0.05, &beyond);
        assert!(!failed && line.contains("--slo"), "{line}");
    }
}
