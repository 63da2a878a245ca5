//! Framing: reading whole MessagePack objects from a byte stream without decoding them.
//!
//! Both formats are a plain concatenation of MessagePack objects (header, records,
//! trailer). To verify the trailer checksum over the exact record bytes, to tell a
//! trailer from a record before decoding it, and to tell a cleanly ended file from one
//! cut in the middle of an object, readers first copy one complete object's raw bytes
//! using only the type markers, then decode that slice with rmp-serde.

use std::io::{self, BufRead, ErrorKind};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{FormatError, Result, tidy_message};

/// Serializes `value` as a MessagePack map with field names.
pub(crate) fn encode_named<T: Serialize>(
    what: &'static str,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    value
        .serialize(&mut rmp_serde::Serializer::new(&mut *out).with_struct_map())
        .map_err(|e| FormatError::Encode {
            what,
            message: e.to_string(),
        })
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    index: u64,
    bytes: &[u8],
) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| FormatError::Malformed {
        what,
        index,
        message: tidy_message(&e.to_string()),
    })
}

/// Result of trying to read one object.
#[derive(Debug, PartialEq, Eq)]
pub enum ObjectRead {
    /// A complete object is in the buffer.
    Complete,
    /// The stream ended exactly at an object boundary.
    End,
    /// The stream ended inside an object; the partial bytes are in the buffer.
    Partial,
}

/// Hard limit on declared container and string sizes, so a corrupted length prefix cannot
/// make a reader allocate gigabytes before noticing.
const MAX_DECLARED_LEN: u64 = 1 << 31;

/// What follows a marker byte: `(length_bytes, fixed_payload_bytes, child_objects)`.
/// `length_bytes` > 0 means a big-endian length follows, counting payload bytes (str,
/// bin, ext) or children (array: n, map: 2n). `None` for the never-used marker 0xc1.
fn layout(marker: u8) -> Option<(usize, u64, u64)> {
    Some(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
        0x80..=0x8f => (0, 0, 2 * (marker & 0x0f) as u64),
        0x90..=0x9f => (0, 0, (marker & 0x0f) as u64),
        0xa0..=0xbf => (0, (marker & 0x1f) as u64, 0),
        0xc4 | 0xd9 => (1, 0, 0),
        0xc5 | 0xda => (2, 0, 0),
        0xc6 | 0xdb => (4, 0, 0),
        0xc7 => (1, 1, 0), // ext 8/16/32: length, then the type byte
        0xc8 => (2, 1, 0),
        0xc9 => (4, 1, 0),
        0xca | 0xce | 0xd2 => (0, 4, 0),
        0xcb | 0xcf | 0xd3 => (0, 8, 0),
        0xcc | 0xd0 => (0, 1, 0),
        0xcd | 0xd1 => (0, 2, 0),
        0xd4 => (0, 2, 0), // fixext 1/2/4/8/16: type byte + data
        0xd5 => (0, 3, 0),
        0xd6 => (0, 5, 0),
        0xd7 => (0, 9, 0),
        0xd8 => (0, 17, 0),
        0xdc | 0xde => (2, 0, 0),
        0xdd | 0xdf => (4, 0, 0),
        0xc1 => return None,
    })
}

/// Appends the next complete MessagePack object of `r` to `buf` (cleared first).
pub fn read_object<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<ObjectRead> {
    buf.clear();
    // Number of objects still to read to finish the top-level one.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = match read_u8(r)? {
            Some(m) => m,
            None if buf.is_empty() => return Ok(ObjectRead::End),
            None => return Ok(ObjectRead::Partial),
        };
        buf.push(marker);
        let Some((payload_len_bytes, fixed_payload, children)) = layout(marker) else {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "invalid MessagePack marker 0xc1",
            ));
        };
        let mut extra = fixed_payload;
        let mut kids = children;
        if payload_len_bytes > 0 {
            let start = buf.len();
            if !read_into(r, buf, payload_len_bytes)? {
                return Ok(ObjectRead::Partial);
            }
            let mut len: u64 = 0;
            for &b in &buf[start..] {
                len = (len << 8) | b as u64;
            }
            if len > MAX_DECLARED_LEN {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("declared length {len} is implausible"),
                ));
            }
            match marker {
                0xdc | 0xdd => kids = len,
                0xde | 0xdf => kids = 2 * len,
                _ => extra += len,
            }
        }
        if extra > 0 && !read_into(r, buf, extra as usize)? {
            return Ok(ObjectRead::Partial);
        }
        pending += kids;
    }
    Ok(ObjectRead::Complete)
}

fn read_u8<R: BufRead>(r: &mut R) -> io::Result<Option<u8>> {
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(None);
        }
        let b = avail[0];
        r.consume(1);
        return Ok(Some(b));
    }
}

/// Appends exactly `n` bytes; false when the stream ends first.
fn read_into<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, mut n: usize) -> io::Result<bool> {
    while n > 0 {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(false);
        }
        let take = avail.len().min(n);
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        n -= take;
    }
    Ok(true)
}

/// True when `obj` is a map holding the top-level key `trailer`.
///
/// Records of both formats start with the key `id`, so the common case is decided
/// from the first key alone.
pub fn is_trailer(obj: &[u8]) -> bool {
    let mut pos = 0usize;
    let Some(entries) = map_len(obj, &mut pos) else {
        return false;
    };
    for _ in 0..entries {
        match str_at(obj, &mut pos) {
            Some(b"trailer") => return true,
            Some(b"id") => return false,
            Some(_) => {}
            None => return false,
        }
        if skip(obj, &mut pos).is_none() {
            return false;
        }
    }
    false
}

/// One entry of a map, as byte offsets into the object holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the key's marker: the bytes before it are the map marker and the
    /// earlier entries.
    pub start: usize,
    /// The key's text.
    pub name: std::ops::Range<usize>,
    /// The value's encoded bytes.
    pub value: std::ops::Range<usize>,
}

/// The entries of `obj` when it is exactly one complete map with str keys, in stored
/// order; `None` otherwise.
pub fn map_entries(obj: &[u8]) -> Option<Vec<Entry>> {
    let mut pos = 0usize;
    let entries = map_len(obj, &mut pos)?;
    let mut out = Vec::with_capacity(entries.min(64) as usize);
    for _ in 0..entries {
        let start = pos;
        let name = str_at(obj, &mut pos)?;
        let name_end = pos;
        let name = name_end - name.len()..name_end;
        skip(obj, &mut pos)?;
        out.push(Entry {
            start,
            name,
            value: name_end..pos,
        });
    }
    (pos == obj.len()).then_some(out)
}

/// The first key of a map that may be cut short: `None` unless the map marker and the
/// whole first key are there.
pub fn first_key(obj: &[u8]) -> Option<&[u8]> {
    let mut pos = 0usize;
    map_len(obj, &mut pos)?;
    str_at(obj, &mut pos)
}

/// Length of a map marker starting with `marker` (fixmap, map 16, map 32), with its
/// length bytes; `None` for any other marker.
pub fn map_marker_len(marker: u8) -> Option<usize> {
    match marker {
        0x80..=0x8f => Some(1),
        0xde => Some(3),
        0xdf => Some(5),
        _ => None,
    }
}

fn take<'a>(obj: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = obj.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

fn be(obj: &[u8], pos: &mut usize, n: usize) -> Option<u64> {
    Some(
        take(obj, pos, n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64),
    )
}

fn map_len(obj: &[u8], pos: &mut usize) -> Option<u64> {
    let m = *take(obj, pos, 1)?.first()?;
    match m {
        0x80..=0x8f => Some((m & 0x0f) as u64),
        0xde => be(obj, pos, 2),
        0xdf => be(obj, pos, 4),
        _ => None,
    }
}

fn str_at<'a>(obj: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let m = *take(obj, pos, 1)?.first()?;
    let len = match m {
        0xa0..=0xbf => (m & 0x1f) as u64,
        0xd9 => be(obj, pos, 1)?,
        0xda => be(obj, pos, 2)?,
        0xdb => be(obj, pos, 4)?,
        _ => return None,
    };
    take(obj, pos, len as usize)
}

/// Skips one object inside a complete buffer.
fn skip(obj: &[u8], pos: &mut usize) -> Option<()> {
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let m = *take(obj, pos, 1)?.first()?;
        let (len_bytes, fixed, kids) = layout(m)?;
        let mut extra = fixed;
        let mut children = kids;
        if len_bytes > 0 {
            let len = be(obj, pos, len_bytes)?;
            match m {
                0xdc | 0xdd => children = len,
                0xde | 0xdf => children = 2 * len,
                _ => extra += len,
            }
        }
        take(obj, pos, extra as usize)?;
        pending += children;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Sample {
        id: u64,
        big: u64,
        neg: i64,
        f: f64,
        s: String,
        bin: serde_bytes_like::Bytes,
        v: Vec<u32>,
        m: BTreeMap<String, Option<bool>>,
    }

    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    fn sample() -> Vec<u8> {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), Some(true));
        m.insert("b".repeat(40), None);
        rmp_serde::to_vec_named(&Sample {
            id: 7,
            big: u64::MAX,
            neg: -70000,
            f: 1.5,
            s: "x".repeat(300),
            bin: serde_bytes_like::Bytes(vec![1; 70000]),
            v: (0..100_000).collect(),
            m,
        })
        .unwrap()
    }

    #[test]
    fn reads_objects_back_to_back() {
        let one = sample();
        let mut stream = one.clone();
        stream.extend_from_slice(&one);
        let mut r = io::BufReader::with_capacity(64, &stream[..]);
        let mut buf = Vec::new();
        assert_eq!(read_object(&mut r, &mut buf).unwrap(), ObjectRead::Complete);
        assert_eq!(buf, one);
        assert_eq!(read_object(&mut r, &mut buf).unwrap(), ObjectRead::Complete);
        assert_eq!(buf, one);
        assert_eq!(read_object(&mut r, &mut buf).unwrap(), ObjectRead::End);
    }

    #[test]
    fn every_cut_is_partial() {
        let one = sample();
        for cut in [1, 2, 10, 400, 70_500, one.len() - 1] {
            let mut r = io::BufReader::new(&one[..cut]);
            let mut buf = Vec::new();
            assert_eq!(
                read_object(&mut r, &mut buf).unwrap(),
                ObjectRead::Partial,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn trailer_detection() {
        #[derive(Serialize)]
        struct T {
            trailer: bool,
            n: u32,
        }
        #[derive(Serialize)]
        struct U {
            x: Vec<u8>,
            trailer: bool,
        }
        assert!(is_trailer(
            &rmp_serde::to_vec_named(&T {
                trailer: true,
                n: 3
            })
            .unwrap()
        ));
        assert!(is_trailer(
            &rmp_serde::to_vec_named(&U {
                x: vec![1, 2],
                trailer: true
            })
            .unwrap()
        ));
        assert!(!is_trailer(&sample()));
        assert!(!is_trailer(&rmp_serde::to_vec(&5u8).unwrap()));
    }
}
