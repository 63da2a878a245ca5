//! What every figure shares: its size, the palette, the text style, tick labels and
//! the drawing functions' result type. A leaf: the figure modules use it, it uses
//! none of them.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::figures::font::FAMILY;

/// What a figure's drawing function returns (plotters' errors, boxed).
pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Figure size in pixels: readable at 700 px wide, as the README shows them.
pub const WIDTH: u32 = 700;
pub const HEIGHT: u32 = 450;

/// Colors of successive series (colour-blind-friendly Okabe-Ito palette).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Tick label: the shortest of up to 4 decimals (`5000`, `0.025`, `2.5`).
pub(crate) fn tick(v: &f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// A single-chart figure's builder: `title` above it, the usual margins and axis label
/// areas (`y_label_area` px for the y axis's labels).
pub(crate) fn titled_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: String,
    y_label_area: u32,
) -> ChartBuilder<'a, 'static, DB> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, text(20))
        .margin(12)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(y_label_area);
    b
}

/// Draws the chart's legend at `pos`: `size` px text on a white box with a black border.
pub(crate) fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    size: u32,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(text(size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
