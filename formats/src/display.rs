//! Numbers as people read them in one-line error messages.
//!
//! `f64`'s `Display` prints every digit: a spec with `mean = 1e300` would put a
//! 301-character number into its error line. Errors print numbers through
//! [`readable`] instead.

/// `x` in plain notation when that is short (`128`, `0.5`, `2000000`), else in
/// scientific notation with up to 6 significant digits (`1e300`, `1.5e-9`).
pub fn readable(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a == 0.0 || (1e-4..1e15).contains(&a) {
        let plain = format!("{x}");
        if plain.len() <= 12 {
            return plain;
        }
        return format!("{x:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    let sci = format!("{x:.5e}");
    match sci.split_once('e') {
        Some((m, e)) => {
            let m = m.trim_end_matches('0').trim_end_matches('.');
            format!("{m}e{e}")
        }
        None => sci,
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn short_and_readable() {
        assert_eq!(readable(1e300), "1e300");
        assert_eq!(readable(-2.5e-9), "-2.5e-9");
        assert_eq!(readable(128.0), "128");
        assert_eq!(readable(0.5), "0.5");
        assert_eq!(readable(0.0), "0");
        assert_eq!(readable(2_000_000.0), "2000000");
        assert_eq!(readable(1.0 / 3.0), "0.333333");
        assert_eq!(readable(f64::NAN), "NaN");
        assert_eq!(readable(f64::INFINITY), "inf");
        assert!(readable(f64::MAX).len() < 16);
        assert!(readable(f64::MIN_POSITIVE).len() < 16);
    }
}
