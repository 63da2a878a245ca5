//! A strict, allocation-free JSON scanner for the hot path of stream decoding.
//!
//! Profiling bulk streaming (see the crate README) showed serde_json's typed
//! deserialisation of every event as the largest single cost of the client: about a third
//! of its CPU for OpenAI chat chunks, most of it in building and validating fields the
//! decoder then throws away. The decoders only need a handful of values per event (the
//! new text's length, a finish reason, a usage count). This scanner walks the bytes once,
//! hands the decoder the few values it asks for, and skips the rest without allocating.
//!
//! Exactness comes first: the scanner is a *fast path*, never a second opinion. It accepts
//! only input that serde_json would accept with the same meaning, and answers [`Miss`]
//! for anything it does not fully understand (escaped keys, duplicate known keys, lone
//! surrogates, numbers that are not plain integers where an integer is wanted, nesting
//! deeper than [`MAX_DEPTH`], invalid UTF-8 anywhere, trailing bytes). On a miss the
//! decoder runs its serde path on the same bytes, which decides the outcome and words the
//! error exactly as before. A differential property test (`tests/fast_decode.rs` and the
//! unit tests here) checks fast path against serde path on generated and mutated events.

/// The input is not in the shape the fast path handles: decode it the slow way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Miss;

pub(crate) type Scan<T> = Result<T, Miss>;

/// One event read two ways: by the scanner ([`FastPath::fast`]) when it has the shape
/// servers send most, else by serde_json ([`FastPath::reference`]), the reference, which
/// then decides (with its exact error text). The order of the two is written once, in
/// [`FastPath::facts`]; each decoder gives its two readings.
pub(crate) trait FastPath<'a>: Sized {
    /// What the reference reading fails with.
    type Error;
    /// The scanner's reading, or a [`Miss`] for anything outside the common shape.
    fn fast(data: &'a [u8]) -> Scan<Self>;
    /// serde_json's reading.
    fn reference(data: &'a [u8]) -> Result<Self, Self::Error>;
    /// The fast path, else the reference.
    fn facts(data: &'a [u8]) -> Result<Self, Self::Error> {
        Self::fast(data).or_else(|Miss| Self::reference(data))
    }
}

/// Deeper nesting is left to serde_json (whose own limit is 128).
pub(crate) const MAX_DEPTH: u32 = 64;

/// Bytes that end a plain run inside a string: the quote, the backslash, and the
/// control characters JSON forbids unescaped.
const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The index of the first [`STRING_STOP`] byte of `b`, eight bytes at a time.
///
/// Strings are most of an event's bytes (ids, model names, the text), and short: a
/// word-at-a-time test beats both a byte loop and a vectorised search here. For each
/// word, the classic "has a zero byte" test is applied to `w ^ '"'`, `w ^ '\\'` and (for
/// bytes below 0x20) to `w - 0x20`; the lowest flagged byte is always a true match (a
/// false flag can only come from a borrow out of a lower, true one).
fn plain_run(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let quote = w ^ (LO * u64::from(b'"'));
        let slash = w ^ (LO * u64::from(b'\\'));
        let stop = ((quote.wrapping_sub(LO) & !quote)
            | (slash.wrapping_sub(LO) & !slash)
            | (w.wrapping_sub(LO * 0x20) & !w))
            & HI;
        if stop != 0 {
            return Some(i + (stop.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| STRING_STOP[c as usize])
        .map(|p| i + p)
}

/// A JSON string as found in the input: its raw bytes between the quotes and the length
/// of its decoded UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Str<'a> {
    pub raw: &'a [u8],
    pub decoded_len: usize,
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The text when it has no escapes (then it is the raw bytes, already checked UTF-8).
    pub fn plain(&self) -> Scan<&'a str> {
        if self.escaped {
            return Err(Miss);
        }
        std::str::from_utf8(self.raw).map_err(|_| Miss)
    }
}

/// A cursor over one JSON document.
pub(crate) struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Scanner<'a> {
    /// A scanner over `b`, which must be valid UTF-8 as a whole (serde_json checks the
    /// strings it keeps; checking everything once is stricter, hence safe, and cheap).
    pub fn new(b: &'a [u8]) -> Scan<Self> {
        std::str::from_utf8(b).map_err(|_| Miss)?;
        Ok(Scanner { b, i: 0, depth: 0 })
    }

    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// The next non-whitespace byte, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Scan<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Miss)
        }
    }

    /// The end of the document: only whitespace may follow.
    pub fn end(&mut self) -> Scan<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Miss),
        }
    }

    /// Consumes `null` if it is next.
    pub fn null(&mut self) -> Scan<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Miss)
        }
    }

    /// Iterates the members of an object: `f(scanner, key)` must consume the value.
    /// Keys with escapes are a miss (they would need decoding to be compared).
    pub fn object(&mut self, mut f: impl FnMut(&mut Self, &'a [u8]) -> Scan<()>) -> Scan<()> {
        self.expect(b'{')?;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            if key.escaped {
                return Err(Miss);
            }
            self.expect(b':')?;
            f(self, key.raw)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Miss),
            }
        }
    }

    /// Iterates the elements of an array: `f(scanner)` must consume each one.
    pub fn array(&mut self, mut f: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.expect(b'[')?;
        self.enter()?;
        if self.peek() == Some(b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            f(self)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Miss),
            }
        }
    }

    fn enter(&mut self) -> Scan<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(Miss)
        } else {
            Ok(())
        }
    }

    /// A string (the next value must be one).
    pub fn string(&mut self) -> Scan<Str<'a>> {
        self.expect(b'"')?;
        let start = self.i;
        let mut decoded_len = 0;
        let mut escaped = false;
        loop {
            let run = plain_run(&self.b[self.i..]).ok_or(Miss)?;
            decoded_len += run;
            self.i += run;
            match self.b[self.i] {
                b'"' => {
                    let raw = &self.b[start..self.i];
                    self.i += 1;
                    return Ok(Str {
                        raw,
                        decoded_len,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    decoded_len += self.escape()?;
                }
                _ => return Err(Miss),
            }
        }
    }

    /// `body` as the inside of a JSON string (quotes excluded): valid UTF-8, no unescaped
    /// quote or control character, valid escapes (surrogates are a miss, as in
    /// [`Scanner::string`]).
    pub fn string_body(body: &'a [u8]) -> Scan<Str<'a>> {
        let mut s = Scanner::new(body)?;
        let mut decoded_len = 0;
        let mut escaped = false;
        while s.i < body.len() {
            let Some(run) = plain_run(&body[s.i..]) else {
                decoded_len += body.len() - s.i;
                break;
            };
            decoded_len += run;
            s.i += run;
            if body[s.i] != b'\\' {
                return Err(Miss);
            }
            escaped = true;
            decoded_len += s.escape()?;
        }
        Ok(Str {
            raw: body,
            decoded_len,
            escaped,
        })
    }

    /// One escape sequence at `self.i` (the backslash); returns its decoded UTF-8 length.
    /// Surrogates (even valid pairs) are a miss: rare, and serde_json knows them best.
    fn escape(&mut self) -> Scan<usize> {
        let e = *self.b.get(self.i + 1).ok_or(Miss)?;
        self.i += 2;
        match e {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(1),
            b'u' => {
                let hex = self.b.get(self.i..self.i + 4).ok_or(Miss)?;
                let mut cp = 0u32;
                for &h in hex {
                    cp = cp * 16 + (h as char).to_digit(16).ok_or(Miss)?;
                }
                self.i += 4;
                match cp {
                    0..=0x7f => Ok(1),
                    0x80..=0x7ff => Ok(2),
                    0xd800..=0xdfff => Err(Miss),
                    _ => Ok(3),
                }
            }
            _ => Err(Miss),
        }
    }

    /// A string or `null`.
    pub fn opt_string(&mut self) -> Scan<Option<Str<'a>>> {
        if self.null()? {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A non-negative integer that fits in u64, or `null` (serde_json's `Option<u64>`
    /// accepts exactly these, plus forms this scanner leaves to it: a miss).
    pub fn opt_u64(&mut self) -> Scan<Option<u64>> {
        if self.null()? {
            return Ok(None);
        }
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or(Miss)?;
            self.i += 1;
        }
        let n = self.i - start;
        let next = self.b.get(self.i).copied();
        if n == 0 || (n > 1 && self.b[start] == b'0') || matches!(next, Some(b'.' | b'e' | b'E')) {
            return Err(Miss);
        }
        Ok(Some(v))
    }

    /// Skips any one value, checking its syntax as strictly as serde_json does.
    pub fn skip(&mut self) -> Scan<()> {
        match self.peek().ok_or(Miss)? {
            b'{' => self.object(|s, _| s.skip()),
            b'[' => self.array(|s| s.skip()),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Miss),
        }
    }

    /// A number in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Scan<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => {
                self.i += 1;
                if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                    return Err(Miss);
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Miss),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(Miss);
            }
            self.digits();
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(Miss);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }
}

/// Marks a known key as seen; a second occurrence is a miss (serde's derived
/// deserialisers reject duplicate fields).
pub(crate) fn first_time(seen: &mut u32, bit: u32) -> Scan<()> {
    if *seen & bit != 0 {
        return Err(Miss);
    }
    *seen |= bit;
    Ok(())
}

#[cfg(test)]
pub(crate) mod strategies;

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_all(s: &str) -> Scan<()> {
        let mut sc = Scanner::new(s.as_bytes())?;
        sc.skip()?;
        sc.end()
    }

    #[test]
    fn accepts_what_serde_accepts() {
        for ok in [
            r#"{"a":[1,-2.5e3,0,0.1,true,false,null,"x\"\\\/\b\f\n\r\tq\u00e9"],"b":{}}"#,
            " [ ] ",
            r#""\u20ac""#,
            "-0",
            "1E+2",
        ] {
            assert!(skip_all(ok).is_ok(), "{ok}");
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn misses_what_serde_rejects_or_what_it_leaves_to_serde() {
        for bad in [
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "\"a\u{1}\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "{} x",
            "{\"\\u0061\":1}",
            "",
        ] {
            assert_eq!(skip_all(bad), Err(Miss), "{bad:?}");
        }
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(skip_all(&deep), Err(Miss));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(skip_all(&ok).is_ok());
        assert_eq!(Scanner::new(b"\"\xff\"").err(), Some(Miss));
    }

    proptest::proptest! {
        #[test]
        fn plain_run_finds_the_first_stop_byte(
            b in proptest::collection::vec(proptest::sample::select(
                b"ab \"\\\x00\x1f\x20\x21\x7f\x80\xc3\xff\x22\x5c\x5b\x5d".to_vec()), 0..40),
            plain in proptest::collection::vec(b'a'..=b'z', 0..20),
        ) {
            let mut v = plain;
            v.extend(b);
            let naive = v.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            proptest::prop_assert_eq!(plain_run(&v), naive);
        }
    }

    #[test]
    fn decoded_length_counts_escapes_as_utf8() {
        let mut sc = Scanner::new(r#""a\n\u00e9\u20ac\u0041""#.as_bytes()).unwrap();
        let s = sc.string().unwrap();
        assert_eq!(s.decoded_len, "a\n\u{e9}\u{20ac}A".len());
        assert!(s.escaped);
        assert_eq!(s.plain(), Err(Miss));
        let mut sc = Scanner::new("\"h\u{e9}llo\"".as_bytes()).unwrap();
        let s = sc.string().unwrap();
        assert_eq!((s.decoded_len, s.plain()), (6, Ok("h\u{e9}llo")));
    }

    #[test]
    fn integers_are_plain_or_a_miss() {
        let int = |s: &str| Scanner::new(s.as_bytes()).unwrap().opt_u64();
        assert_eq!(int("123"), Ok(Some(123)));
        assert_eq!(int("0"), Ok(Some(0)));
        assert_eq!(int("null"), Ok(None));
        assert_eq!(int("18446744073709551615"), Ok(Some(u64::MAX)));
        for miss in ["18446744073709551616", "-1", "1.0", "1e3", "007", "x"] {
            assert_eq!(int(miss), Err(Miss), "{miss}");
        }
    }
}
