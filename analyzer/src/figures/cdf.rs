//! Empirical CDFs (request latency, TTFT, ITL) of the runs of one latency-table column,
//! one curve per backend. Without latency runs, one figure shows every run.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::figures::style::{DrawResult, color, draw_legend, text, tick, titled_chart};
use crate::report::Report;
use crate::report::run::RunReport;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Metric {
    Request,
    Ttft,
    Itl,
}

impl Metric {
    fn axis(self, from: &str) -> String {
        match self {
            Metric::Request => format!("request latency, from {from} (s)"),
            Metric::Ttft => format!("time to first token, from {from} (s)"),
            Metric::Itl => "inter-token latency, per event gap (s)".to_string(),
        }
    }
    fn y_label(self) -> &'static str {
        match self {
            Metric::Itl => "fraction of inter-token gaps",
            _ => "fraction of requests",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Metric::Request => "Request latency CDF",
            Metric::Ttft => "TTFT CDF",
            Metric::Itl => "ITL CDF",
        }
    }
}

/// The runs of one figure: a latency column (`QPS=2`) or every run.
pub(crate) struct Group<'a> {
    pub label: String,
    pub model: Option<String>,
    pub from: &'static str,
    /// (legend label, run)
    pub members: Vec<(String, Vec<&'a RunReport>)>,
}

pub(crate) fn groups(report: &Report) -> Vec<Group<'_>> {
    let from = report.options.metrics.latency_from.name();
    let find = |id: &str| report.runs.iter().find(|r| r.run == id);
    let mut out = Vec::new();
    for t in &report.latency_tables {
        for (c, col) in t.columns.iter().enumerate() {
            let members = t
                .rows
                .iter()
                .filter_map(|row| {
                    let cell = row.cells[c].as_ref()?;
                    let runs: Vec<&RunReport> =
                        cell.runs.iter().filter_map(|id| find(id)).collect();
                    Some((row.label.clone(), runs))
                })
                .collect();
            out.push(Group {
                label: col.label.clone(),
                model: t.model.clone(),
                from,
                members,
            });
        }
    }
    if out.is_empty() {
        out.push(Group {
            label: "all runs".into(),
            model: None,
            from,
            members: report
                .runs
                .iter()
                .map(|r| (format!("{} {}", r.row_label(), r.run), vec![r]))
                .collect(),
        });
    }
    out
}

/// At most this many points per curve: enough for a smooth line at 700 px.
const POINTS: usize = 600;

/// One run's samples of `metric`, seconds.
fn samples(r: &RunReport, metric: Metric) -> &[f64] {
    let s = &r.samples;
    match metric {
        Metric::Request => &s.e2e_s,
        Metric::Ttft => &s.ttft_s,
        Metric::Itl => &s.itl_s,
    }
}

/// True when [`curves`] would draw at least one curve (cheap: no sorting).
pub(crate) fn has_data(group: &Group, metric: Metric) -> bool {
    group
        .members
        .iter()
        .flat_map(|(_, runs)| runs)
        .any(|r| !samples(r, metric).is_empty())
}

/// (legend, points (x seconds, cumulative fraction)) per member with data.
pub(crate) fn curves(group: &Group, metric: Metric) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    for (label, runs) in &group.members {
        let mut v: Vec<f64> = Vec::new();
        for r in runs {
            v.extend_from_slice(samples(r, metric));
        }
        if v.is_empty() {
            continue;
        }
        out.push((label.clone(), step_points(v)));
    }
    out
}

/// The empirical CDF of `v` (non-empty) as points to draw: a step function that, at
/// each sample value x[k], rises from k/n to (k+1)/n. Long samples keep every
/// `step`-th rise.
pub(crate) fn step_points(mut v: Vec<f64>) -> Vec<(f64, f64)> {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    let step = n.div_ceil(POINTS).max(1);
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(2 * POINTS + 2);
    let mut below = 0.0;
    for k in (0..n).step_by(step).chain(std::iter::once(n - 1)) {
        let up = (k + 1) as f64 / n as f64;
        if up > below {
            pts.push((v[k], below));
            pts.push((v[k], up));
            below = up;
        }
    }
    pts
}

pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    group: &Group,
    metric: Metric,
    curves: &[(String, Vec<(f64, f64)>)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut title = format!("{}, {}", metric.title(), group.label);
    if let Some(m) = &group.model {
        title.push_str(&format!(" ({m})"));
    }
    let axes = (metric.axis(group.from), metric.y_label().to_string());
    draw_titled(root, title, axes, curves)
}

/// One CDF figure: `title`, axes (x, y) descriptions, one curve per labelled series.
pub(crate) fn draw_titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: String,
    (x_desc, y_desc): (String, String),
    curves: &[(String, Vec<(f64, f64)>)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let xmax = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(0.0f64, f64::max);
    let xmin = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let xmax = if xmax > xmin { xmax * 1.05 } else { xmin + 1.0 };
    let mut chart = titled_chart(root, title, 64).build_cartesian_2d(xmin..xmax, 0f64..1.0)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(text(15))
        .label_style(text(13))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, (label, pts)) in curves.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 13)?;
    Ok(())
}
