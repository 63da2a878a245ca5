//! Seeded fault injection.
//!
//! Each request draws at most one fault (the rates are disjoint slices of one uniform
//! draw, so they must sum to at most 1, and with N requests the count of each fault is
//! Binomial(N, rate)). The draw uses a generator seeded from (server seed, arrival order):
//! the same seed and the same request order give the same faults, whatever the timing.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use axum::http::StatusCode;

use crate::SimError;
use crate::truth::Outcome;

/// Fault rates (probabilities per request) and durations. Default: no faults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Answer HTTP 429 (the dialect's overloaded error) instead of generating.
    pub http_429: f64,
    /// Answer HTTP 500 (the dialect's internal error).
    pub http_500: f64,
    /// Answer HTTP 503 (as a proxy in front of the server would).
    pub http_503: f64,
    /// Cut the connection mid-response (after a random number of tokens).
    pub disconnect: f64,
    /// Pause the response for `stall_ms` before a random token.
    pub stall: f64,
    pub stall_ms: u64,
    /// Delay the response headers by `slow_first_byte_ms`.
    pub slow_first_byte: f64,
    pub slow_first_byte_ms: u64,
    /// TGI only: the generation fails as when a shard errors (CUDA out of memory...):
    /// HTTP 424 `generation` on `/generate`, a 200 stream ending in the error event
    /// after a uniform number of tokens on `/generate_stream`. Last in the draw, so
    /// adding it leaves the other faults' draws unchanged.
    pub generation_error: f64,
}

/// The fault drawn for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Http429,
    Http500,
    Http503,
    /// Cut after this many tokens were written (0 = right after the headers).
    Disconnect {
        after_tokens: u32,
    },
    /// Sleep `ms` before writing token `before_token` (0-based).
    Stall {
        before_token: u32,
        ms: u64,
    },
    SlowFirstByte {
        ms: u64,
    },
    /// TGI's `InferError::GenerationError` (HTTP 424).
    GenerationError,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Http429 => "http_429",
            Fault::Http500 => "http_500",
            Fault::Http503 => "http_503",
            Fault::Disconnect { .. } => "disconnect",
            Fault::Stall { .. } => "stall",
            Fault::SlowFirstByte { .. } => "slow_first_byte",
            Fault::GenerationError => "generation_error",
        }
    }

    /// The HTTP error an injected error fault answers with, as its truth-log outcome and
    /// status; `None` for the faults that shape a response instead (disconnect, stall,
    /// slow first byte). Each dialect renders the status in its own error body.
    pub fn http_error(&self) -> Option<(Outcome, StatusCode)> {
        match self {
            Fault::Http429 => Some((Outcome::Http429, StatusCode::TOO_MANY_REQUESTS)),
            Fault::Http500 => Some((Outcome::Http500, StatusCode::INTERNAL_SERVER_ERROR)),
            Fault::Http503 => Some((Outcome::Http503, StatusCode::SERVICE_UNAVAILABLE)),
            Fault::GenerationError => Some((Outcome::Http424, StatusCode::FAILED_DEPENDENCY)),
            _ => None,
        }
    }
}

/// Mix a seed, a request number and a purpose into one 64-bit seed (splitmix64).
pub(crate) fn mix(seed: u64, seq: u64, purpose: u64) -> u64 {
    let mut z = seed
        ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Faults {
    pub fn is_none(&self) -> bool {
        self.rates().iter().all(|r| *r == 0.0)
    }

    fn rates(&self) -> [f64; 7] {
        [
            self.http_429,
            self.http_500,
            self.http_503,
            self.disconnect,
            self.stall,
            self.slow_first_byte,
            self.generation_error,
        ]
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let rates = self.rates();
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err(SimError::Config("fault rates must be in [0, 1]".into()));
        }
        if rates.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(SimError::Config(
                "fault rates must sum to at most 1 (one fault per request at most)".into(),
            ));
        }
        Ok(())
    }

    /// The fault for request `seq` whose response will carry `output_tokens` tokens.
    pub fn pick(&self, seed: u64, seq: u64, output_tokens: u32) -> Option<Fault> {
        if self.is_none() {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, seq, 1));
        let u: f64 = rng.random();
        let n = output_tokens.max(1);
        let mut acc = 0.0;
        for (i, rate) in self.rates().into_iter().enumerate() {
            acc += rate;
            if u < acc {
                return Some(match i {
                    0 => Fault::Http429,
                    1 => Fault::Http500,
                    2 => Fault::Http503,
                    3 => Fault::Disconnect {
                        after_tokens: rng.random_range(0..n),
                    },
                    4 => Fault::Stall {
                        before_token: rng.random_range(0..n),
                        ms: self.stall_ms,
                    },
                    5 => Fault::SlowFirstByte {
                        ms: self.slow_first_byte_ms,
                    },
                    _ => Fault::GenerationError,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_rates_and_seed() {
        let f = Faults {
            http_429: 0.1,
            http_500: 0.05,
            disconnect: 0.2,
            stall_ms: 7,
            ..Default::default()
        };
        let n = 20_000u64;
        let picks: Vec<_> = (0..n).map(|i| f.pick(42, i, 10)).collect();
        let count = |name: &str| picks.iter().flatten().filter(|p| p.name() == name).count() as f64;
        // 5 standard deviations of a binomial.
        for (name, rate) in [
            ("http_429", 0.1),
            ("http_500", 0.05),
            ("disconnect", 0.2),
            ("stall", 0.0),
        ] {
            let mean = rate * n as f64;
            let sd = (n as f64 * rate * (1.0 - rate)).sqrt();
            assert!(
                (count(name) - mean).abs() <= 5.0 * sd + 1e-9,
                "{name}: {} vs {mean}",
                count(name)
            );
        }
        let again: Vec<_> = (0..n).map(|i| f.pick(42, i, 10)).collect();
        assert_eq!(picks, again);
        let other: Vec<_> = (0..n).map(|i| f.pick(43, i, 10)).collect();
        assert_ne!(picks, other);
        for p in picks.iter().flatten() {
            if let Fault::Disconnect { after_tokens } = p {
                assert!(*after_tokens < 10);
            }
        }
    }

    #[test]
    fn invalid_rates_rejected() {
        assert!(
            Faults {
                http_429: 0.6,
                http_500: 0.6,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Faults {
                stall: -0.1,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(Faults::default().validate().is_ok());
        assert!(Faults::default().pick(1, 1, 1).is_none());
    }
}
