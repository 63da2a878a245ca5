//! A forest plot (`llmib compare -o DIR`): one row per metric and statistic, its point
//! the relative difference B / A − 1, its whiskers the interval, a vertical line at 0: a
//! row whose whiskers cross the line found no difference.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{DrawResult, color, text, tick, titled_chart};

/// One row: label, relative difference, interval (lo, hi).
pub type ForestRow = (String, f64, f64, f64);

/// Draws the rows, the first at the top.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: String,
    rows: &[ForestRow],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    let lo = rows
        .iter()
        .map(|r| finite(r.2).min(finite(r.1)))
        .fold(0.0, f64::min);
    let hi = rows
        .iter()
        .map(|r| finite(r.3).max(finite(r.1)))
        .fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.08).max(0.005);
    let n = rows.len().max(1);
    let y_of = |i: usize| (n - 1 - i) as f64;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let label_of = move |y: &f64| {
        let i = n as i64 - 1 - y.round() as i64;
        if (y - y.round()).abs() < 1e-6 && i >= 0 && (i as usize) < labels.len() {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    };
    let mut chart = titled_chart(root, title, 130)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .x_desc("B / A - 1 (point: the difference; bar: its interval)")
        .axis_desc_style(text(15))
        .label_style(text(13))
        .x_label_formatter(&|v| format!("{}%", tick(&(100.0 * v))))
        .y_labels(2 * n + 1)
        .y_label_formatter(&label_of)
        .disable_y_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    chart.draw_series(LineSeries::new(
        vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
        BLACK.stroke_width(1),
    ))?;
    for (i, (_, v, l, h)) in rows.iter().enumerate() {
        let y = y_of(i);
        let c = if *l <= 0.0 && 0.0 <= *h {
            RGBColor(140, 140, 140)
        } else {
            color(0)
        };
        chart.draw_series(LineSeries::new(vec![(*l, y), (*h, y)], c.stroke_width(3)))?;
        chart.draw_series(std::iter::once(Circle::new((*v, y), 5, c.filled())))?;
    }
    Ok(())
}
