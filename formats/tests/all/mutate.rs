//! Mutation of real files for the property-based fuzz tests of every reader and parser
//! (`formats/tests/all/fuzz_readers.rs`, `generator/tests/all/fuzz_inputs.rs`,
//! `replayer/tests/all/fuzz_parsers.rs`; the other crates include this file by path).
//!
//! Random bytes almost never get past a parser's first check; mutated real files do: a
//! flipped bit in a length prefix, a field cut in half, a record spliced from another
//! file, a file truncated at any position. [`mutated`] picks one seed file and applies a
//! few such edits. Positions are [`Index`]es, so they scale to whatever length the buffer
//! has at that point, and proptest shrinks a failure to the fewest, smallest edits.
//!
//! Runs are reproducible: [`config`] fixes the RNG seed unless `PROPTEST_RNG_SEED` is set,
//! and `PROPTEST_CASES` overrides the case count for longer runs (see `fuzz/README.md`).

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// Seed of the RNG when `PROPTEST_RNG_SEED` is not set.
const FIXED_SEED: u64 = 0x6c6c_6d69_625f_667a;

/// Proptest configuration: `cases` cases (unless `PROPTEST_CASES` says otherwise) from a
/// fixed seed (unless `PROPTEST_RNG_SEED` says otherwise). A failing case's seed is
/// saved next to the test file (`tests/all/NAME.proptest-regressions`, committed) and
/// replayed first on every later run.
pub fn config(cases: u32) -> Config {
    let mut c = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    if c.rng_seed == RngSeed::Random {
        c.rng_seed = RngSeed::Fixed(FIXED_SEED);
    }
    c
}

/// Bytes that matter to the parsers under test: MessagePack markers (nil, false, true,
/// length prefixes of str/bin/array/map, the never-used 0xc1), text framing (NUL, line
/// ends, `:`), JSON and TOML punctuation, and digits.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xcc, 0xcf,
    0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, b'\n', b'\r', b':', b'"', b'{', b'}',
    b'[', b']', b',', b'=', b'.', b'-', b'0', b'9', b' ', b'#',
];

/// One edit of a buffer.
#[derive(Debug, Clone)]
pub enum Edit {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Copies `len` bytes of seed `Index` (from position `Index`) over this position.
    Splice(Index, Index, Index, usize),
    /// Repeats a range (duplicated records, repeated fields).
    Duplicate(Index, usize),
    Truncate(Index),
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), proptest::sample::select(INTERESTING)]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        3 => (any::<Index>(), byte()).prop_map(|(i, b)| Edit::SetByte(i, b)),
        2 => (any::<Index>(), proptest::collection::vec(byte(), 1..12))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        2 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>(), 1usize..256)
            .prop_map(|(i, s, f, n)| Edit::Splice(i, s, f, n)),
        1 => (any::<Index>(), 1usize..128).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// Position `i` in a buffer of `len` bytes (`0..=len`).
fn at(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

/// Applies `edit` to `buf`; `seeds` feed splices.
pub fn apply(buf: &mut Vec<u8>, edit: &Edit, seeds: &[Vec<u8>]) {
    let len = buf.len();
    match edit {
        Edit::FlipBit(i, bit) if len > 0 => buf[i.index(len)] ^= 1 << bit,
        Edit::SetByte(i, b) if len > 0 => buf[i.index(len)] = *b,
        Edit::Insert(i, bytes) => {
            let p = at(i, len);
            buf.splice(p..p, bytes.iter().copied());
        }
        Edit::Delete(i, n) => {
            let p = at(i, len);
            buf.drain(p..(p + n).min(len));
        }
        Edit::Splice(i, s, from, n) => {
            let src = &seeds[s.index(seeds.len())];
            let f = at(from, src.len());
            let piece = &src[f..(f + n).min(src.len())];
            let p = at(i, len);
            let end = (p + piece.len()).min(len);
            buf.splice(p..end, piece.iter().copied());
        }
        Edit::Duplicate(i, n) => {
            let p = at(i, len);
            let piece = buf[p..(p + n).min(len)].to_vec();
            buf.splice(p..p, piece);
        }
        Edit::Truncate(i) => buf.truncate(at(i, len)),
        Edit::FlipBit(..) | Edit::SetByte(..) => {}
    }
}

/// Bytes under test; shown escaped (not as a list of numbers) when a case fails.
#[derive(Clone, PartialEq, Eq)]
pub struct Input(pub Vec<u8>);

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// A mutated copy of one of `seeds` (1 to `max_edits` edits), or a seed truncated at a
/// random position, or a seed as it is.
pub fn mutated(seeds: Vec<Vec<u8>>, max_edits: usize) -> impl Strategy<Value = Input> {
    assert!(!seeds.is_empty());
    let n = seeds.len();
    let edits = proptest::collection::vec(edit(), 1..=max_edits);
    prop_oneof![
        6 => (0..n, edits),
        2 => (0..n, any::<Index>().prop_map(|i| vec![Edit::Truncate(i)])),
        1 => (0..n, Just(Vec::new())),
    ]
    .prop_map(move |(s, edits)| {
        let mut buf = seeds[s].clone();
        for e in &edits {
            apply(&mut buf, e, &seeds);
        }
        Input(buf)
    })
}

/// Cut points splitting a buffer into chunks (as a network would deliver it); now and
/// then a repeated cut, i.e. an empty chunk.
pub fn cuts() -> impl Strategy<Value = Vec<Index>> {
    let cuts = proptest::collection::vec(any::<Index>(), 0..8);
    (cuts, any::<bool>()).prop_map(|(mut v, empty)| {
        if let (true, Some(&first)) = (empty, v.first()) {
            v.push(first);
        }
        v
    })
}

/// `buf` split at `cuts` (sorted, duplicates give empty chunks).
pub fn split<'a>(buf: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(buf.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for p in at {
        out.push(&buf[prev..p]);
        prev = p;
    }
    out.push(&buf[prev..]);
    out
}

/// Asserts `msg` is fit to show a user: one line, at most `max` bytes, not empty.
pub fn assert_one_line(msg: &str, max: usize) {
    assert!(!msg.trim().is_empty(), "empty error message");
    assert!(
        !msg.contains(['\n', '\r']),
        "error message on several lines: {msg:?}"
    );
    let mut head = msg.len().min(200);
    while !msg.is_char_boundary(head) {
        head -= 1;
    }
    assert!(
        msg.len() <= max,
        "error message of {} bytes (limit {max}): {:?}...",
        msg.len(),
        &msg[..head]
    );
}
