//! Throughput per output cap, grouped by backend: the throughput table as bars.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figures::style::{DrawResult, color, draw_legend, text, tick, titled_chart};
use crate::report::table::{Table, ThroughputCell};

pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &Table<ThroughputCell>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let ncols = t.columns.len();
    let nrows = t.rows.len().max(1);
    let ymax = t
        .rows
        .iter()
        .flat_map(|r| r.cells.iter().flatten().map(|c| c.tok_s))
        .fold(0.0f64, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.25 } else { 1.0 };
    let title = match &t.model {
        Some(m) => format!("Throughput by output cap ({m})"),
        None => "Throughput by output cap".to_string(),
    };
    let mut chart =
        titled_chart(root, title, 70).build_cartesian_2d(0f64..ncols as f64, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_desc("throughput (tokens/s)")
        .x_desc("output length cap (tokens)")
        .axis_desc_style(text(15))
        .label_style(text(13))
        .y_label_formatter(&tick)
        .draw()?;
    let width = 0.8 / nrows as f64;
    for (j, row) in t.rows.iter().enumerate() {
        let c = color(j);
        let bars = row.cells.iter().enumerate().filter_map(move |(i, cell)| {
            cell.as_ref().map(|cell| {
                let x0 = i as f64 + 0.1 + j as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.92, cell.tok_s)], c.filled())
            })
        });
        chart
            .draw_series(bars)?
            .label(row.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], c.filled()));
    }
    // Column labels under the axis, centred on each group.
    for (i, col) in t.columns.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            col.label.clone(),
            (x, y + 8),
            text(13).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
    Ok(())
}
