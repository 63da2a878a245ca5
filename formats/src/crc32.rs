//! CRC-32 (IEEE 802.3, the one `zlib.crc32` and `binascii.crc32` compute), by the
//! `crc32fast` crate.
//!
//! The trailer of every file carries the CRC-32 of the concatenated bytes of its record
//! objects, so any tool can check a file without this crate: in Python,
//! `zlib.crc32(b"".join(raw_records))`. `crc32fast` (already in the workspace's tree
//! through flate2) computes it with the CPU's carry-less multiply where there is one,
//! well above disk speed, which matters because the analyzer verifies
//! multi-hundred-megabyte logs. This module only keeps the crate's small API: a `Copy`
//! running value and a one-shot function.

/// Incremental CRC-32 state: the CRC-32 of the bytes seen so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc32 {
    value: u32,
}

impl Crc32 {
    pub fn new() -> Self {
        Crc32 { value: 0 }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let mut hasher = crc32fast::Hasher::new_with_initial(self.value);
        hasher.update(bytes);
        self.value = hasher.finalize();
    }

    pub fn value(&self) -> u32 {
        self.value
    }
}

/// CRC-32 of one byte slice.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let mut c = Crc32::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.value(), crc32(&data), "split at {split}");
        }
    }
}
