//! TTFT by turn index of multi-turn sessions: p50 (solid, dots) and p99 (dashed) per
//! turn row (`8+` pools the tail), one colour per run, from `--from`. Written only when
//! some run has sessions with a measured TTFT.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::figures::style::{DrawResult, color, draw_legend, text, tick, titled_chart};
use crate::metrics::sessions::TAIL_TURN;
use crate::report::Report;
use crate::report::run::RunReport;

/// One run's curves: (legend, points (turn row, p50 seconds), points (turn row, p99)).
pub(crate) struct Curve {
    pub label: String,
    pub p50: Vec<(f64, f64)>,
    pub p99: Vec<(f64, f64)>,
}

/// The runs of one figure (every run, or one model's when several were analysed).
pub(crate) struct Group<'a> {
    pub model: Option<String>,
    pub from: &'static str,
    pub runs: Vec<&'a RunReport>,
}

/// One group of every run, or one per model when `per_model`; runs without a TTFT by
/// turn are left out, and so are groups left empty.
pub(crate) fn groups(report: &Report, per_model: bool) -> Vec<Group<'_>> {
    let from = report.options.metrics.latency_from.name();
    let mut out: Vec<Group> = Vec::new();
    for r in report.runs.iter().filter(|r| has_ttft(r)) {
        let model = if per_model { r.model.clone() } else { None };
        match out.iter_mut().find(|g| g.model == model) {
            Some(g) => g.runs.push(r),
            None => out.push(Group {
                model,
                from,
                runs: vec![r],
            }),
        }
    }
    out
}

fn has_ttft(r: &RunReport) -> bool {
    r.metrics
        .ttft_by_turn
        .iter()
        .flatten()
        .any(|t| t.ttft_s.count > 0)
}

/// A curve per run; the legend is the backend, with the run id when two runs of the
/// group share a backend.
pub(crate) fn curves(group: &Group) -> Vec<Curve> {
    group
        .runs
        .iter()
        .map(|r| {
            let same = group
                .runs
                .iter()
                .filter(|o| o.row_label() == r.row_label())
                .count();
            let label = match same {
                1 => r.row_label(),
                _ => format!("{} {}", r.row_label(), r.run),
            };
            let rows = r.metrics.ttft_by_turn.iter().flatten();
            let pts = |f: fn(&crate::stats::Stats) -> Option<f64>| {
                rows.clone()
                    .filter_map(|t| f(&t.ttft_s).map(|v| (t.turn as f64, v)))
                    .collect()
            };
            Curve {
                label,
                p50: pts(|s| s.p50),
                p99: pts(|s| s.p99),
            }
        })
        .collect()
}

/// Turn axis label: the index, `8+` at the tail, nothing between integers.
fn turn_tick(v: &f64) -> String {
    if v.fract() != 0.0 || *v < 0.0 {
        return String::new();
    }
    match *v as u32 {
        TAIL_TURN => format!("{TAIL_TURN}+"),
        t => t.to_string(),
    }
}

pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    group: &Group,
    curves: &[Curve],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let all = || curves.iter().flat_map(|c| c.p50.iter().chain(&c.p99));
    let xmax = all().map(|p| p.0).fold(0.0f64, f64::max);
    let ymax = all().map(|p| p.1).fold(0.0f64, f64::max);
    // Headroom for the legend (two lines per run) in the upper left corner.
    let legend = (0.05 + 0.1 * curves.len() as f64).min(0.7);
    let ymax = if ymax > 0.0 {
        ymax / (1.0 - legend)
    } else {
        1.0
    };
    let mut title = "TTFT by turn".to_string();
    if let Some(m) = &group.model {
        title.push_str(&format!(" ({m})"));
    }
    let mut chart =
        titled_chart(root, title, 64).build_cartesian_2d(-0.5f64..xmax + 0.5, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(xmax as usize + 2)
        .x_label_formatter(&turn_tick)
        .y_label_formatter(&tick)
        .x_desc("turn index in the session")
        .y_desc(format!("time to first token, from {} (s)", group.from))
        .axis_desc_style(text(15))
        .label_style(text(13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        let col = color(i);
        chart
            .draw_series(LineSeries::new(c.p50.iter().copied(), col.stroke_width(2)))?
            .label(format!("{} p50", c.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
        chart.draw_series(c.p50.iter().map(|p| Circle::new(*p, 3, col.filled())))?;
        chart
            .draw_series(DashedLineSeries::new(
                c.p99.iter().copied(),
                6,
                4,
                col.stroke_width(2),
            ))?
            .label(format!("{} p99", c.label))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (7, 0)], col.stroke_width(2))
                    + PathElement::new(vec![(11, 0), (18, 0)], col.stroke_width(2))
            });
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 13)?;
    Ok(())
}
