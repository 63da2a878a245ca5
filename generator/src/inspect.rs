//! Trace summaries (`llmib trace inspect`).

use std::fmt;
use std::path::Path;

use formats::{TraceHeader, TraceReader, sha256_file};

use crate::error::Result;

/// min / mean / p50 / p99 / max of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Stats {
    pub fn of(mut xs: Vec<u64>) -> Stats {
        if xs.is_empty() {
            return Stats::default();
        }
        xs.sort_unstable();
        let n = xs.len();
        let rank = |q: f64| xs[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Stats {
            count: n as u64,
            min: xs[0],
            mean: xs.iter().map(|&x| x as f64).sum::<f64>() / n as f64,
            p50: rank(0.5),
            p99: rank(0.99),
            max: xs[n - 1],
        }
    }
}

/// Everything `trace inspect` prints.
#[derive(Debug, Clone)]
pub struct TraceSummary {
    pub header: TraceHeader,
    pub sha256: String,
    pub requests: u64,
    pub prompt_tokens: Stats,
    pub output_tokens: Stats,
    pub total_prompt_tokens: u64,
    pub total_output_tokens: u64,
    /// Gaps between consecutive arrivals, ns.
    pub gaps_ns: Stats,
    /// Last arrival, ns.
    pub span_ns: u64,
    pub with_token_ids: u64,
    pub ignore_eos: u64,
    /// Multi-turn sessions, when the trace has any.
    pub sessions: Option<SessionSummary>,
}

/// The sessions of a version 3 trace.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub sessions: u64,
    /// Turns per session.
    pub turns: Stats,
    /// Think times of the turns after the first, ns.
    pub think_ns: Stats,
    /// Requests outside any session.
    pub single: u64,
}

impl TraceSummary {
    /// Reads and fully verifies a trace (checksum, count) while summarising it.
    pub fn from_path(path: &Path) -> Result<TraceSummary> {
        let sha256 = sha256_file(path)?;
        let reader = TraceReader::open(path)?;
        let header = reader.header().clone();
        let (mut p, mut o, mut g) = (Vec::new(), Vec::new(), Vec::new());
        let (mut last, mut ids, mut eos) = (None::<u64>, 0u64, 0u64);
        let (mut turns, mut think, mut single) = (Vec::<u64>::new(), Vec::new(), 0u64);
        for r in reader {
            let r = r?;
            match (r.session_id, r.think_ns) {
                (None, _) => single += 1,
                (Some(s), _) if s as usize == turns.len() => turns.push(1),
                (Some(s), t) => {
                    turns[s as usize] += 1;
                    think.extend(t);
                }
            }
            p.push(u64::from(r.prompt_tokens));
            o.push(u64::from(r.max_tokens));
            if let Some(l) = last {
                g.push(r.arrival_ns - l);
            }
            last = Some(r.arrival_ns);
            ids += u64::from(r.prompt_token_ids.is_some());
            eos += u64::from(r.ignore_eos);
        }
        Ok(TraceSummary {
            header,
            sha256,
            requests: p.len() as u64,
            total_prompt_tokens: p.iter().sum(),
            total_output_tokens: o.iter().sum(),
            prompt_tokens: Stats::of(p),
            output_tokens: Stats::of(o),
            gaps_ns: Stats::of(g),
            span_ns: last.unwrap_or(0),
            with_token_ids: ids,
            ignore_eos: eos,
            sessions: (!turns.is_empty()).then(|| SessionSummary {
                sessions: turns.len() as u64,
                turns: Stats::of(turns),
                think_ns: Stats::of(think),
                single,
            }),
        })
    }
}

fn secs(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

impl fmt::Display for TraceSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        writeln!(f, "name               {}", h.name)?;
        writeln!(f, "format             {} v{}", h.format, h.version)?;
        writeln!(f, "generator          {}", h.generator_version)?;
        writeln!(f, "seed               {}", h.seed)?;
        let tok = match &h.tokenizer.sha256 {
            Some(s) => format!("{} {} (sha256 {s})", h.tokenizer.kind, h.tokenizer.name),
            None => format!("{} {}", h.tokenizer.kind, h.tokenizer.name),
        };
        writeln!(f, "tokenizer          {tok}")?;
        writeln!(f, "sha256             {}", self.sha256)?;
        writeln!(f, "requests           {}", self.requests)?;
        writeln!(
            f,
            "with token ids     {}   ignore_eos {}",
            self.with_token_ids, self.ignore_eos
        )?;
        writeln!(f, "time span          {} s", secs(self.span_ns))?;
        if self.span_ns > 0 {
            writeln!(
                f,
                "mean rate          {:.4} req/s",
                (self.requests.saturating_sub(1)) as f64 / (self.span_ns as f64 / 1e9)
            )?;
        }
        writeln!(
            f,
            "                   {:>10} {:>12} {:>10} {:>10} {:>10} {:>12}",
            "min", "mean", "p50", "p99", "max", "total"
        )?;
        for (label, s, total) in [
            (
                "prompt tokens",
                &self.prompt_tokens,
                Some(self.total_prompt_tokens),
            ),
            (
                "output tokens",
                &self.output_tokens,
                Some(self.total_output_tokens),
            ),
        ] {
            writeln!(
                f,
                "{label:<18} {:>10} {:>12.3} {:>10} {:>10} {:>10} {:>12}",
                s.min,
                s.mean,
                s.p50,
                s.p99,
                s.max,
                total.unwrap_or(0)
            )?;
        }
        let g = &self.gaps_ns;
        writeln!(
            f,
            "{:<18} {:>10} {:>12} {:>10} {:>10} {:>10}",
            "gap (s)",
            secs(g.min),
            format!("{:.6}", g.mean / 1e9),
            secs(g.p50),
            secs(g.p99),
            secs(g.max)
        )?;
        if let Some(s) = &self.sessions {
            s.fmt(f)?;
        }
        let spec = toml::to_string(&h.spec).unwrap_or_default();
        writeln!(f, "spec:")?;
        for line in spec.lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sessions           {}   single-shot requests {}",
            self.sessions, self.single
        )?;
        let t = &self.turns;
        writeln!(
            f,
            "{:<18} {:>10} {:>12.3} {:>10} {:>10} {:>10}",
            "turns/session", t.min, t.mean, t.p50, t.p99, t.max
        )?;
        let k = &self.think_ns;
        writeln!(
            f,
            "{:<18} {:>10} {:>12} {:>10} {:>10} {:>10}",
            "think (s)",
            secs(k.min),
            format!("{:.6}", k.mean / 1e9),
            secs(k.p50),
            secs(k.p99),
            secs(k.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Stats::of((1..=100).collect());
        assert_eq!((s.min, s.p50, s.p99, s.max), (1, 50, 99, 100));
        assert!((s.mean - 50.5).abs() < 1e-12);
        assert_eq!(Stats::of(vec![7]).p99, 7);
        assert_eq!(Stats::of(vec![]).count, 0);
    }
}
