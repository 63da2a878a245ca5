//! Goodput: the `ok` requests that met every per-request SLO (`--slo`), as a share of
//! the measured requests and as a rate.

use serde::Serialize;

use crate::metrics::time::per_s;
use crate::slo::Slo;

/// Goodput: `ok` requests that met every SLO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goodput {
    pub slo: Slo,
    pub good: u64,
    /// `good` / measured requests (all outcomes).
    pub fraction: Option<f64>,
    /// `good` / run duration.
    pub request_s: Option<f64>,
}

/// `ok` requests that met the SLO, counted as they come.
#[derive(Debug, Default)]
pub(crate) struct GoodCount {
    good: u64,
}

impl GoodCount {
    /// An `ok` request with these latencies (from `--from`; TTFT and TPOT when
    /// measured): a missing TTFT fails a TTFT limit, a missing TPOT (fewer than two
    /// tokens) passes a TPOT one.
    pub(crate) fn observe(&mut self, slo: &Slo, e2e: f64, ttft: Option<f64>, tpot: Option<f64>) {
        let pass = slo.e2e_s.is_none_or(|l| e2e <= l)
            && slo.ttft_s.is_none_or(|l| ttft.is_some_and(|t| t <= l))
            && slo.tpot_s.is_none_or(|l| tpot.is_none_or(|t| t <= l));
        if pass {
            self.good += 1;
        }
    }

    /// The run's goodput over `requests` measured requests and `duration_s`; `None`
    /// without an SLO, or when it checks TTFT or TPOT and the run did not stream.
    pub(crate) fn finish(
        self,
        slo: Option<Slo>,
        streamed: bool,
        requests: u64,
        duration_s: Option<f64>,
    ) -> Option<Goodput> {
        let good = self.good;
        slo.and_then(|slo| {
            // TTFT and TPOT cannot be checked without a stream.
            if !streamed && (slo.ttft_s.is_some() || slo.tpot_s.is_some()) {
                return None;
            }
            Some(Goodput {
                slo,
                good,
                fraction: (requests > 0).then(|| good as f64 / requests as f64),
                request_s: per_s(good as f64, duration_s),
            })
        })
    }
}
