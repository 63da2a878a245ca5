//! Seeded random streams, one per purpose, and the few samplers the generator needs.
//!
//! # Streams
//! Every stream is a ChaCha20 keystream. The 256-bit key is
//! `SHA-256("llmib-generator/rng/v1" || seed as 8 little-endian bytes)` and the purpose
//! selects the ChaCha stream (nonce) via [`ChaCha20Rng::set_stream`]:
//!
//! | stream id | purpose |
//! | --- | --- |
//! | 1 | prompt lengths (one draw sequence over requests 0..N) |
//! | 2 | output lengths |
//! | 3 | arrival gaps |
//! | 4 | prompt layout (the per-position word permutations that encode request ids) |
//! | 2^32 + i | the words of request `i`'s prompt |
//! | 2^33 + i | the words of the recorded answer of request `i` (synthetic sessions) |
//! | 5 | block layout (the per-position word permutations that encode block hash ids) |
//! | 6 | prefix groups (one draw per request of a spec with `prefix`, `share` uniform or zipf; per session with `sessions`) |
//! | 7 | session turn counts (one draw per session of a spec with `sessions`) |
//! | 8 | think times (one draw per session turn after the first, sessions only) |
//! | 16 | dataset sampling (the partial shuffle choosing `--requests` items of a dataset import) |
//! | 2^63 + h | the words of the prefix-reuse block with hash id `h < 2^63` (Mooncake import) |
//!
//! Streams never share output, so changing the output-length distribution cannot move
//! a prompt length or an arrival time, and a prompt's words depend only on
//! `(seed, request id, prompt length)`.
//!
//! # Why our own samplers
//! The generator promises the same bytes on every machine, for as long as
//! `GENERATOR_VERSION` does not change. So nothing here depends on sampling algorithms
//! that a `rand`/`rand_distr` upgrade may change, or on the platform's libm:
//! * integers in a range: Lemire's multiply-and-reject on raw 64-bit words (exact,
//!   unbiased);
//! * uniform reals: the top 53 bits of a word, scaled by 2^-53 (exact);
//! * exponential: inverse CDF, `-mean * ln(u)` with `u` in (0, 1];
//! * normal: Marsaglia's polar method; gamma: Marsaglia & Tsang (2000), with
//!   `G(a) = G(a + 1) * u^(1/a)` for shapes below 1.
//!
//! `ln` and `exp` come from the `libm` crate (a pure-Rust port of musl's), and every
//! other operation is an IEEE-754 basic operation (`+ - * /`, `sqrt`, `round`), which is
//! exactly specified; Rust never fuses multiply-adds on its own. The results are
//! therefore bit-identical across platforms, unlike `f64::ln`, which calls the system
//! libm (glibc, musl and macOS differ in the last bit on some inputs).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"llmib-generator/rng/v1";

/// What a stream is for; see the module docs for the stream ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PromptLengths,
    OutputLengths,
    Arrivals,
    PromptLayout,
    /// The words of one request's prompt.
    PromptContent(u64),
    /// The id-spelling permutations of prefix-reuse blocks (see [`crate::import::block`]).
    BlockLayout,
    /// The words of one prefix-reuse block, by its hash id (< 2^63).
    BlockContent(u64),
    /// The shared-prefix group of each request (see [`crate::synth::prefix`]).
    PrefixGroups,
    /// The partial shuffle that samples a dataset import's items (see [`crate::import::dataset`]).
    DatasetSample,
    /// Turns per synthetic session (see [`crate::session`]).
    SessionTurns,
    /// Think times between the turns of a session (see [`crate::session`]).
    ThinkTimes,
    /// The words of the recorded answer of one request (synthetic sessions).
    AnswerContent(u64),
}

impl Purpose {
    pub fn stream_id(self) -> u64 {
        match self {
            Purpose::PromptLengths => 1,
            Purpose::OutputLengths => 2,
            Purpose::Arrivals => 3,
            Purpose::PromptLayout => 4,
            Purpose::PromptContent(id) => (1u64 << 32).wrapping_add(id),
            Purpose::BlockLayout => 5,
            Purpose::PrefixGroups => 6,
            Purpose::DatasetSample => 16,
            Purpose::SessionTurns => 7,
            Purpose::ThinkTimes => 8,
            Purpose::AnswerContent(id) => (1u64 << 33).wrapping_add(id),
            Purpose::BlockContent(hash_id) => (1u64 << 63) | hash_id,
        }
    }
}

/// The ChaCha20 key derived from a spec seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedKey([u8; 32]);

impl SeedKey {
    pub fn new(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(seed.to_le_bytes());
        SeedKey(h.finalize().into())
    }

    pub fn stream(&self, purpose: Purpose) -> StreamRng {
        let mut rng = ChaCha20Rng::from_seed(self.0);
        rng.set_stream(purpose.stream_id());
        StreamRng(rng)
    }
}

/// One random stream with portable samplers.
#[derive(Debug, Clone)]
pub struct StreamRng(ChaCha20Rng);

const TWO_POW_M53: f64 = 1.0 / (1u64 << 53) as f64;

impl StreamRng {
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform integer in `0..n` (Lemire's method). `n` must be > 0.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform integer in `[lo, hi]`, both inclusive.
    #[inline]
    pub fn range_inclusive(&mut self, lo: u32, hi: u32) -> u32 {
        debug_assert!(lo <= hi);
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    /// Uniform real in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * TWO_POW_M53
    }

    /// Uniform real in `(0, 1]`: safe to take the logarithm of.
    #[inline]
    pub fn unit_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * TWO_POW_M53
    }

    /// Exponential with the given mean (inverse CDF).
    #[inline]
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * libm::log(self.unit_open0())
    }

    /// Standard normal (Marsaglia's polar method; the second variate is discarded so the
    /// sampler holds no state beyond the stream).
    pub fn standard_normal(&mut self) -> f64 {
        loop {
            let x = 2.0 * self.unit() - 1.0;
            let y = 2.0 * self.unit() - 1.0;
            let s = x * x + y * y;
            if s < 1.0 && s > 0.0 {
                return x * (-2.0 * libm::log(s) / s).sqrt();
            }
        }
    }

    /// Gamma with `shape` > 0 and `scale` > 0 (mean `shape * scale`).
    pub fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        if shape < 1.0 {
            let g = self.gamma_ge1(shape + 1.0);
            let boost = libm::exp(libm::log(self.unit_open0()) / shape);
            return g * boost * scale;
        }
        self.gamma_ge1(shape) * scale
    }

    /// Marsaglia & Tsang for shape >= 1, unit scale.
    fn gamma_ge1(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.standard_normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.unit_open0();
            let x2 = x * x;
            if u < 1.0 - 0.0331 * x2 * x2 {
                return d * v;
            }
            if libm::log(u) < 0.5 * x2 + d * (1.0 - v + libm::log(v)) {
                return d * v;
            }
        }
    }

    /// Fisher–Yates shuffle of `0..n`.
    pub fn permutation(&mut self, n: u32) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n).collect();
        for i in (1..p.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_distinct_and_reproducible() {
        let key = SeedKey::new(7);
        let a: Vec<u64> = (0..8)
            .map(|_| key.stream(Purpose::Arrivals).next_u64())
            .collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same stream, same output"
        );
        let mut s1 = key.stream(Purpose::PromptLengths);
        let mut s2 = key.stream(Purpose::OutputLengths);
        let mut s3 = SeedKey::new(8).stream(Purpose::PromptLengths);
        let x1: Vec<u64> = (0..4).map(|_| s1.next_u64()).collect();
        let x2: Vec<u64> = (0..4).map(|_| s2.next_u64()).collect();
        let x3: Vec<u64> = (0..4).map(|_| s3.next_u64()).collect();
        assert_ne!(x1, x2);
        assert_ne!(x1, x3);
    }

    /// Pins the key derivation, ChaCha20 and the samplers bit for bit: if this changes,
    /// every trace changes and GENERATOR_VERSION must be bumped. (Values computed on
    /// x86_64 Linux; the same bits are expected on every platform.)
    #[test]
    fn stream_output_is_pinned() {
        let mut s = SeedKey::new(0).stream(Purpose::PromptLengths);
        assert_eq!(s.next_u64(), 0xd7a2d2fe60af8228);
        assert_eq!(s.exponential(128.0).to_bits(), 0x403236dbe73c8bad);
        assert_eq!(s.gamma(0.25, 2.0).to_bits(), 0x3f84d62fd25de752);
        assert_eq!(s.standard_normal().to_bits(), 0xbfed8369d5e8666c);
    }

    #[test]
    fn below_is_unbiased_and_in_range() {
        let mut s = SeedKey::new(1).stream(Purpose::Arrivals);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[s.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_400..10_600).contains(&c), "{counts:?}");
        }
        for _ in 0..1000 {
            assert!(s.range_inclusive(5, 9) >= 5);
            assert_eq!(s.range_inclusive(u32::MAX, u32::MAX), u32::MAX);
        }
    }

    #[test]
    fn libm_matches_std_closely() {
        for x in [1e-300, 1e-9, 0.1, 0.5, 0.999, 1.0] {
            let a: f64 = libm::log(x);
            assert!((a - x.ln()).abs() <= 1e-15 * a.abs().max(1.0));
        }
    }

    #[test]
    fn gamma_moments() {
        let mut s = SeedKey::new(3).stream(Purpose::Arrivals);
        for (shape, scale) in [(0.25, 4.0), (1.0, 1.0), (4.0, 0.5)] {
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| s.gamma(shape, scale)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            let (m, v) = (shape * scale, shape * scale * scale);
            assert!(
                (mean - m).abs() < 5.0 * (v / n as f64).sqrt(),
                "{shape}: mean {mean} vs {m}"
            );
            assert!((var - v).abs() / v < 0.05, "{shape}: var {var} vs {v}");
        }
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = SeedKey::new(5)
            .stream(Purpose::PromptLayout)
            .permutation(1000);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
