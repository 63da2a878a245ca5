//! What makes a trailer trustworthy (format version 2), and how a reader tells a file
//! cut short from a damaged one.
//!
//! Version 1 trailers only covered the record bytes, so a damaged header was accepted
//! and a damaged trailer looked like a missing one. Version 2 adds two checksums:
//! `header_crc32` over the header object's bytes, and `trailer_crc32`, the trailer's
//! *last* entry, over the trailer bytes before its key (map marker and all earlier
//! entries). Sealing the trailer this way needs no canonical encoding: any msgpack
//! writer can produce it and any reader check it on the bytes as stored.
//!
//! When the tail of a file is not a complete trailer, the reader knows what the trailer
//! should have been (record count and checksums; for run logs all but `complete` and
//! `ended_ns`). A tail that is a strict prefix of that trailer, as this crate's writers
//! encode it, is a file cut short; anything else is damage.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crc32::crc32;
use crate::error::{FormatError, Result};
use crate::object::{Entry, encode_named, first_key, map_entries, map_marker_len};

/// Key of the trailer's self-checksum; always its last entry.
pub(crate) const TRAILER_CRC_KEY: &str = "trailer_crc32";

/// The integrity fields of a trailer, whichever format it belongs to.
pub(crate) struct TrailerSums {
    pub trailer: bool,
    pub record_count: u64,
    pub crc32: u32,
    pub header_crc32: Option<u32>,
    pub trailer_crc32: Option<u32>,
}

/// A trailer type whose last serialized field is `trailer_crc32`.
pub(crate) trait Sealed: Serialize + DeserializeOwned {
    fn set_trailer_crc32(&mut self, crc: u32);
    /// Its integrity fields, for the reader to check against what it read.
    fn sums(&self) -> TrailerSums;
}

/// Serializes `trailer` into `out` with `trailer_crc32` set to the CRC-32 of the bytes
/// that precede its key.
pub(crate) fn encode_sealed<T: Sealed>(trailer: &mut T, out: &mut Vec<u8>) -> Result<()> {
    trailer.set_trailer_crc32(0);
    encode_named("trailer", trailer, out)?;
    let seal = last_entry_seal(out).map_err(|message| FormatError::Encode {
        what: "trailer",
        message,
    })?;
    let crc = crc32(&out[..seal.start]);
    trailer.set_trailer_crc32(crc);
    encode_named("trailer", trailer, out)?;
    // The prefix does not depend on the value, so the seal stays valid.
    debug_assert_eq!(check_seal(out), Ok(()));
    Ok(())
}

/// The `trailer_crc32` entry of a complete trailer, which must be its last entry.
fn last_entry_seal(raw: &[u8]) -> Result<Entry, String> {
    let mut entries = map_entries(raw).ok_or("not a map with string keys")?;
    let is_seal = |e: &Entry| &raw[e.name.clone()] == TRAILER_CRC_KEY.as_bytes();
    match entries.pop() {
        Some(last) if is_seal(&last) => Ok(last),
        _ if entries.iter().any(is_seal) => Err(format!("{TRAILER_CRC_KEY} is not its last field")),
        _ => Err(format!("no {TRAILER_CRC_KEY} field")),
    }
}

/// Checks a stored trailer's `trailer_crc32` against its own bytes.
pub(crate) fn check_seal(raw: &[u8]) -> Result<(), String> {
    let seal = last_entry_seal(raw)?;
    let stored: u32 = rmp_serde::from_slice(&raw[seal.value])
        .map_err(|_| format!("{TRAILER_CRC_KEY} is not a 32-bit unsigned integer"))?;
    let computed = crc32(&raw[..seal.start]);
    if stored != computed {
        return Err(format!(
            "its checksum is {computed:08x}, {TRAILER_CRC_KEY} says {stored:08x}"
        ));
    }
    Ok(())
}

/// A trailer field whose value the reader cannot know in advance.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hole {
    Bool,
    Uint,
}

/// What the tail of a file (an incomplete or invalid last object) looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// A strict prefix of the expected trailer: the file was cut inside it.
    CutTrailer,
    /// A map whose first key is `trailer` but which is not the expected trailer.
    DamagedTrailer,
    /// A strict prefix of a record (a map whose first key is, or begins like, `id`).
    CutRecord,
    /// Neither.
    Other,
}

/// Classifies an incomplete last object. `expected` is the trailer this crate's writer
/// would have written (its `trailer_crc32`, if any, is ignored and recomputed);
/// `holes` names the fields whose values the reader does not know.
pub(crate) fn classify_tail(partial: &[u8], expected: &[u8], holes: &[(&str, Hole)]) -> Tail {
    if is_cut_trailer(partial, expected, holes) {
        Tail::CutTrailer
    } else if first_key(partial) == Some(b"trailer") {
        Tail::DamagedTrailer
    } else if starts_like_record(partial) {
        Tail::CutRecord
    } else {
        Tail::Other
    }
}

/// True when `partial` is a map marker followed by a prefix of the key `id` (records
/// of both formats start with it), or is cut before that.
fn starts_like_record(partial: &[u8]) -> bool {
    let Some(&marker) = partial.first() else {
        return false;
    };
    let Some(len) = map_marker_len(marker) else {
        return false;
    };
    let rest = partial.get(len..).unwrap_or(&[]);
    let key = b"\xa2id";
    let n = rest.len().min(key.len());
    rest[..n] == key[..n]
}

/// One comparison step of [`is_cut_trailer`].
enum Step {
    Matched,
    /// The partial bytes ran out with everything so far matching.
    Ended,
    Mismatch,
}

struct Matcher<'a> {
    partial: &'a [u8],
    pos: usize,
}

impl Matcher<'_> {
    fn exact(&mut self, want: &[u8]) -> Step {
        let have = &self.partial[self.pos..];
        let n = have.len().min(want.len());
        if have[..n] != want[..n] {
            return Step::Mismatch;
        }
        self.pos += n;
        if n < want.len() {
            Step::Ended
        } else {
            Step::Matched
        }
    }

    /// Any value of the hole's type, in any msgpack width.
    fn hole(&mut self, hole: Hole) -> Step {
        let Some(&marker) = self.partial.get(self.pos) else {
            return Step::Ended;
        };
        let payload = match (hole, marker) {
            (Hole::Bool, 0xc2 | 0xc3) | (Hole::Uint, 0x00..=0x7f) => 0,
            (Hole::Uint, 0xcc) => 1,
            (Hole::Uint, 0xcd) => 2,
            (Hole::Uint, 0xce) => 4,
            (Hole::Uint, 0xcf) => 8,
            _ => return Step::Mismatch,
        };
        let end = self.pos + 1 + payload;
        self.pos = end.min(self.partial.len());
        if end > self.partial.len() {
            Step::Ended
        } else {
            Step::Matched
        }
    }
}

/// True when `partial` is a strict prefix of a trailer that has the bytes of
/// `expected` except in the `holes` and in `trailer_crc32`, which is computed from the
/// partial bytes before its key.
pub(crate) fn is_cut_trailer(partial: &[u8], expected: &[u8], holes: &[(&str, Hole)]) -> bool {
    let Some(entries) = map_entries(expected) else {
        return false;
    };
    let mut m = Matcher { partial, pos: 0 };
    let head = entries.first().map_or(expected.len(), |e| e.start);
    match m.exact(&expected[..head]) {
        Step::Matched => {}
        Step::Ended => return true,
        Step::Mismatch => return false,
    }
    for e in &entries {
        let start_in_partial = m.pos;
        let step = match m.exact(&expected[e.start..e.value.start]) {
            Step::Matched => {
                let name = &expected[e.name.clone()];
                if name == TRAILER_CRC_KEY.as_bytes() {
                    let crc = crc32(&partial[..start_in_partial]);
                    m.exact(&rmp_serde::to_vec(&crc).expect("u32 encodes"))
                } else if let Some((_, hole)) = holes.iter().find(|(h, _)| h.as_bytes() == name) {
                    m.hole(*hole)
                } else {
                    m.exact(&expected[e.value.clone()])
                }
            }
            other => other,
        };
        match step {
            Step::Matched => {}
            Step::Ended => return true,
            Step::Mismatch => return false,
        }
    }
    // Everything matched: `partial` is a whole trailer (or longer), not a cut one.
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize)]
    struct T {
        trailer: bool,
        complete: bool,
        ended_ns: u64,
        crc32: u32,
        trailer_crc32: u32,
    }

    impl Sealed for T {
        fn set_trailer_crc32(&mut self, crc: u32) {
            self.trailer_crc32 = crc;
        }

        fn sums(&self) -> TrailerSums {
            TrailerSums {
                trailer: self.trailer,
                record_count: 0,
                crc32: self.crc32,
                header_crc32: None,
                trailer_crc32: Some(self.trailer_crc32),
            }
        }
    }

    fn sealed(complete: bool, ended_ns: u64) -> Vec<u8> {
        let mut t = T {
            trailer: true,
            complete,
            ended_ns,
            crc32: 0xdead_beef,
            trailer_crc32: 0,
        };
        let mut out = Vec::new();
        encode_sealed(&mut t, &mut out).unwrap();
        out
    }

    const HOLES: &[(&str, Hole)] = &[("complete", Hole::Bool), ("ended_ns", Hole::Uint)];

    #[test]
    fn seal_is_the_crc_of_the_bytes_before_its_key() {
        let raw = sealed(true, 5);
        let cut = raw
            .windows(14)
            .rposition(|w| w == b"\xadtrailer_crc32")
            .unwrap();
        let stored: u32 = rmp_serde::from_slice(&raw[cut + 14..]).unwrap();
        assert_eq!(stored, crc32(&raw[..cut]));
        assert_eq!(check_seal(&raw), Ok(()));
        let mut bad = raw.clone();
        bad[3] ^= 1;
        assert!(check_seal(&bad).unwrap_err().contains("checksum"));
    }

    #[test]
    fn every_strict_prefix_of_any_hole_value_is_a_cut_trailer() {
        let expected = sealed(false, 0);
        for (complete, ended) in [(true, 1u64 << 40), (false, 200), (true, 0)] {
            let actual = sealed(complete, ended);
            for cut in 0..actual.len() {
                assert!(
                    is_cut_trailer(&actual[..cut], &expected, HOLES),
                    "cut {cut} of {complete} {ended}"
                );
            }
            assert!(!is_cut_trailer(&actual, &expected, HOLES), "whole trailer");
        }
    }

    #[test]
    fn known_fields_and_seal_must_match() {
        let expected = sealed(true, 7);
        let mut other = T {
            trailer: true,
            complete: true,
            ended_ns: 7,
            crc32: 0xdead_beee,
            trailer_crc32: 0,
        };
        let mut raw = Vec::new();
        encode_sealed(&mut other, &mut raw).unwrap();
        // Cut just before the last byte: the crc32 value differs.
        assert!(!is_cut_trailer(&raw[..raw.len() - 1], &expected, HOLES));
        // A wrong seal value is caught too.
        let mut raw = sealed(true, 7);
        let n = raw.len();
        raw[n - 2] ^= 0x10;
        assert!(!is_cut_trailer(&raw[..n - 1], &expected, HOLES));
    }

    #[test]
    fn tails_are_classified() {
        let expected = sealed(true, 7);
        assert_eq!(
            classify_tail(&expected[..9], &expected, HOLES),
            Tail::CutTrailer
        );
        let mut damaged = expected.clone();
        damaged[10] ^= 0x40;
        assert_eq!(
            classify_tail(&damaged[..20], &expected, HOLES),
            Tail::DamagedTrailer
        );
        assert_eq!(
            classify_tail(b"\xde\x00", &expected, HOLES),
            Tail::CutRecord
        );
        assert_eq!(
            classify_tail(b"\xde\x00\x13\xa2i", &expected, HOLES),
            Tail::CutRecord
        );
        assert_eq!(
            classify_tail(b"\xde\x00\x13\xa2x", &expected, HOLES),
            Tail::Other
        );
        assert_eq!(classify_tail(b"\xc7\x10", &expected, HOLES), Tail::Other);
    }
}
