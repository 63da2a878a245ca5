//! Service-level objectives, the two kinds: a per-request [`Slo`] (`ttft=0.5`) and a
//! run's statistic held under a limit ([`SloTargets`], `ttft_p99=0.5`).
//!
//! Why two types: [`Slo`] judges each request (goodput: did this request's TTFT stay
//! under 0.5 s?); a capacity search judges a run by a statistic over its requests (is
//! the run's TTFT p99 under 0.5 s?). The per-request form used for `--goodput` is
//! derived from the targets ([`SloTargets::per_request`]). Both live here, below the
//! metrics (which count goodput) and the capacity curves (which check the targets), so
//! neither has to reach into the other.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::stats::{Stat, Stats};

/// Service-level objectives for goodput, in seconds; `None` = not checked.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Slo {
    pub ttft_s: Option<f64>,
    pub tpot_s: Option<f64>,
    pub e2e_s: Option<f64>,
}

impl Slo {
    /// Parses `ttft=0.5,tpot=0.05,e2e=10` (seconds; any subset).
    pub fn parse(s: &str) -> std::result::Result<Slo, String> {
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("bad SLO `{part}`: expected name=seconds"))?;
            let v: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("bad SLO `{part}`: seconds must be a positive number"))?;
            match k.trim() {
                "ttft" => slo.ttft_s = Some(v),
                "tpot" => slo.tpot_s = Some(v),
                "e2e" => slo.e2e_s = Some(v),
                other => {
                    return Err(format!(
                        "unknown SLO `{other}` (expected ttft, tpot or e2e)"
                    ));
                }
            }
        }
        if slo.is_empty() {
            return Err("empty SLO: expected e.g. ttft=0.5,tpot=0.05,e2e=10".into());
        }
        Ok(slo)
    }

    pub fn is_empty(&self) -> bool {
        self.ttft_s.is_none() && self.tpot_s.is_none() && self.e2e_s.is_none()
    }
}

/// The latency an SLO target bounds (seconds, from the analysis' `--from` origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloMetric {
    Ttft,
    Tpot,
    E2e,
    Itl,
}

impl SloMetric {
    pub fn name(self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::E2e => "e2e",
            SloMetric::Itl => "itl",
        }
    }

    fn parse(s: &str) -> Option<SloMetric> {
        Some(match s {
            "ttft" => SloMetric::Ttft,
            "tpot" => SloMetric::Tpot,
            "e2e" => SloMetric::E2e,
            "itl" => SloMetric::Itl,
            _ => return None,
        })
    }
}

/// One target: `metric`'s `stat` at most `limit_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloTarget {
    pub metric: SloMetric,
    pub stat: Stat,
    pub limit_s: f64,
}

/// The statistic's name in a target key: `p50`, `p90`, `p95`, `p99`, `mean`.
fn stat_key(s: Stat) -> &'static str {
    match s {
        Stat::Median => "p50",
        other => other.name(),
    }
}

impl SloTarget {
    /// `ttft_p99`.
    pub fn key(&self) -> String {
        format!("{}_{}", self.metric.name(), stat_key(self.stat))
    }

    /// The target's statistic of `stats`.
    pub fn value(&self, stats: &Stats) -> Option<f64> {
        self.stat.of(stats)
    }
}

/// Every target of a search or a figure, in the order given. Written in manifests and
/// JSON as the `--slo` text (`"ttft_p99=0.5,tpot_p99=0.05"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SloTargets(pub Vec<SloTarget>);

impl SloTargets {
    /// Parses `ttft_p99=0.5,tpot_p99=0.05` (metric ttft|tpot|e2e|itl, statistic
    /// p50|p90|p95|p99|mean, seconds > 0). A bare metric (`ttft=0.5`) means its p99.
    pub fn parse(text: &str) -> Result<SloTargets, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, v) = part
                .split_once('=')
                .ok_or_else(|| format!("bad SLO `{part}`: expected e.g. ttft_p99=0.5"))?;
            let (m, s) = key.trim().split_once('_').unwrap_or((key.trim(), "p99"));
            let metric = SloMetric::parse(m).ok_or_else(|| {
                format!("bad SLO `{part}`: unknown metric `{m}` (ttft, tpot, e2e or itl)")
            })?;
            let stat = Stat::parse(s).filter(|_| s != "median").ok_or_else(|| {
                format!("bad SLO `{part}`: unknown statistic `{s}` (p50, p90, p95, p99, mean)")
            })?;
            let limit_s = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("bad SLO `{part}`: seconds must be a positive number"))?;
            out.push(SloTarget {
                metric,
                stat,
                limit_s,
            });
        }
        if out.is_empty() {
            return Err("empty SLO: expected e.g. ttft_p99=0.5,tpot_p99=0.05".into());
        }
        Ok(SloTargets(out))
    }

    /// The per-request SLO for goodput: each metric's tightest limit (ITL has no
    /// per-request form and is left out).
    pub fn per_request(&self) -> Slo {
        let tightest = |m: SloMetric| {
            self.0
                .iter()
                .filter(|t| t.metric == m)
                .map(|t| t.limit_s)
                .reduce(f64::min)
        };
        Slo {
            ttft_s: tightest(SloMetric::Ttft),
            tpot_s: tightest(SloMetric::Tpot),
            e2e_s: tightest(SloMetric::E2e),
        }
    }

    /// The same targets with every limit multiplied by `k`.
    pub fn scaled(&self, k: f64) -> SloTargets {
        SloTargets(
            self.0
                .iter()
                .map(|t| SloTarget {
                    limit_s: t.limit_s * k,
                    ..*t
                })
                .collect(),
        )
    }
}

impl fmt::Display for SloTargets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|t| format!("{}={}", t.key(), t.limit_s))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl From<SloTargets> for String {
    fn from(s: SloTargets) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for SloTargets {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SloTargets::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_targets() {
        let t = SloTargets::parse("ttft_p99=0.5, tpot_p50=0.05,e2e=10,itl_mean=0.2").unwrap();
        assert_eq!(t.0.len(), 4);
        assert_eq!(t.0[0].key(), "ttft_p99");
        assert_eq!(t.0[1].stat, Stat::Median);
        assert_eq!(t.0[2].key(), "e2e_p99");
        assert_eq!(
            t.to_string(),
            "ttft_p99=0.5,tpot_p50=0.05,e2e_p99=10,itl_mean=0.2"
        );
        assert_eq!(SloTargets::parse(&t.to_string()).unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<SloTargets>(&json).unwrap(), t);
    }

    #[test]
    fn rejects_bad_targets() {
        for bad in [
            "",
            "ttft",
            "ttfx_p99=1",
            "ttft_p42=1",
            "ttft_median=1",
            "ttft_p99=0",
            "ttft_p99=-1",
            "tpot_p99=abc",
        ] {
            assert!(SloTargets::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn per_request_takes_the_tightest_limit() {
        let t = SloTargets::parse("ttft_p50=0.2,ttft_p99=0.5,itl_p99=0.1").unwrap();
        let s = t.per_request();
        assert_eq!(s.ttft_s, Some(0.2));
        assert_eq!(s.tpot_s, None);
        assert_eq!(s.e2e_s, None);
        assert_eq!(t.scaled(0.5).0[1].limit_s, 0.25);
    }
}
