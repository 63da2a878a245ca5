//! The embedded font: DejaVu Sans (license in `analyzer/assets/DejaVuSans-LICENSE.txt`),
//! compiled into the binary so figures look the same on every machine and nothing
//! depends on system fonts. Registered with plotters' `ab_glyph` font backend under
//! the family names used by the figures and plotters' defaults.

use std::sync::Once;

use plotters::style::FontStyle;

/// DejaVu Sans, from Debian's `fonts-dejavu-core`.
pub static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Family name every figure uses.
pub const FAMILY: &str = "DejaVu Sans";

/// Registers the embedded font (idempotent).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for name in [FAMILY, "sans-serif", "serif", "monospace"] {
            for style in [FontStyle::Normal, FontStyle::Bold] {
                if plotters::style::register_font(name, style, FONT_BYTES).is_err() {
                    panic!("embedded font DejaVuSans.ttf is invalid");
                }
            }
        }
    });
}
