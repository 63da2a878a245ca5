//! Throughput-latency curves (`capacity`): offered rate on the x axis (from 0), four
//! panels: TTFT, TPOT and E2E (p50 solid with dots, p99 dashed) and achieved vs
//! offered rate (the diagonal is a server that keeps up). One colour per backend; the
//! knee is a thin vertical line of the backend's colour in every panel; SLO targets on
//! TTFT, TPOT or E2E are red horizontal lines in their panel.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::capacity::{Curve, Point, curves};
use crate::figures::style::{DrawResult, color, draw_legend, text, tick};
use crate::report::Report;
use crate::slo::{SloMetric, SloTargets};

/// The curves of one trace (and model), drawn in one figure.
pub(crate) struct Group {
    pub title: String,
    pub curves: Vec<Curve>,
    pub slo: Option<SloTargets>,
}

/// One figure per trace and model that has a curve.
pub(crate) fn groups(report: &Report) -> Vec<Group> {
    let mut out: Vec<(String, Option<String>, Group)> = Vec::new();
    for c in curves(report) {
        let key = (c.trace_sha256.clone(), c.model.clone());
        match out.iter_mut().find(|(s, m, _)| (s, m) == (&key.0, &key.1)) {
            Some((_, _, g)) => g.curves.push(c),
            None => {
                let mut title = format!("Capacity: {}", c.trace_name);
                if let Some(m) = &c.model {
                    title.push_str(&format!(" ({m})"));
                }
                out.push((
                    key.0,
                    key.1,
                    Group {
                        title,
                        curves: vec![c],
                        slo: report.capacity_slo.clone(),
                    },
                ))
            }
        }
    }
    out.into_iter().map(|(_, _, g)| g).collect()
}

/// What a panel shows.
#[derive(Clone, Copy)]
enum Panel {
    Latency(SloMetric),
    Achieved,
}

impl Panel {
    fn title(self) -> &'static str {
        match self {
            Panel::Latency(SloMetric::Ttft) => "TTFT (s)",
            Panel::Latency(SloMetric::Tpot) => "TPOT (s/token)",
            Panel::Latency(SloMetric::E2e) => "E2E latency (s)",
            Panel::Latency(SloMetric::Itl) => "ITL (s)",
            Panel::Achieved => "achieved rate (req/s)",
        }
    }

    /// (p50 or achieved, p99) of a point.
    fn values(self, p: &Point) -> (Option<f64>, Option<f64>) {
        match self {
            Panel::Latency(m) => (p.stats(m).p50, p.stats(m).p99),
            Panel::Achieved => (p.achieved_rate, None),
        }
    }
}

fn series(c: &Curve, panel: Panel, p99: bool) -> Vec<(f64, f64)> {
    c.points
        .iter()
        .filter_map(|p| {
            let (a, b) = panel.values(p);
            Some((p.offered_rate, if p99 { b? } else { a? }))
        })
        .collect()
}

pub(crate) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, group: &Group) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(&group.title, text(18))?;
    let panels = root.split_evenly((2, 2));
    let kinds = [
        Panel::Latency(SloMetric::Ttft),
        Panel::Latency(SloMetric::Tpot),
        Panel::Latency(SloMetric::E2e),
        Panel::Achieved,
    ];
    for (area, kind) in panels.iter().zip(kinds) {
        draw_panel(area, group, kind)?;
    }
    Ok(())
}

/// A panel's axes: x from 0 to past the highest offered rate, y from 0 to past the
/// highest value, SLO limit (and, for the achieved rate, the diagonal) drawn.
struct Bounds {
    xhi: f64,
    ymax: f64,
    /// The SLO limits of the panel's metric, seconds.
    limits: Vec<f64>,
}

impl Bounds {
    fn of(group: &Group, kind: Panel) -> Bounds {
        let xmax = group
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.offered_rate))
            .fold(0.0f64, f64::max);
        let limits: Vec<f64> = match kind {
            Panel::Latency(m) => group
                .slo
                .iter()
                .flat_map(|s| s.0.iter())
                .filter(|t| t.metric == m)
                .map(|t| t.limit_s)
                .collect(),
            Panel::Achieved => vec![],
        };
        let ymax = group
            .curves
            .iter()
            .flat_map(|c| {
                series(c, kind, false)
                    .into_iter()
                    .chain(series(c, kind, true))
            })
            .map(|p| p.1)
            .chain(limits.iter().copied())
            .chain(matches!(kind, Panel::Achieved).then_some(xmax))
            .fold(0.0f64, f64::max);
        Bounds {
            xhi: if xmax > 0.0 { xmax * 1.05 } else { 1.0 },
            ymax: if ymax > 0.0 { ymax * 1.1 } else { 1.0 },
            limits,
        }
    }
}

/// A panel's chart: axes from 0, offered rate on x.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    group: &Group,
    kind: Panel,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let b = Bounds::of(group, kind);
    let (xlo, xhi, ymax) = (0.0, b.xhi, b.ymax);
    let mut chart = ChartBuilder::on(area)
        .caption(kind.title(), text(13))
        .margin(6)
        .margin_right(14)
        .x_label_area_size(30)
        .y_label_area_size(48)
        .build_cartesian_2d(xlo..xhi, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc("offered rate (req/s)")
        .axis_desc_style(text(11))
        .label_style(text(10))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()?;
    if let Panel::Achieved = kind {
        chart.draw_series(LineSeries::new(
            [(xlo, xlo), (xhi, xhi)],
            RGBColor(170, 170, 170).stroke_width(1),
        ))?;
    }
    for &l in &b.limits {
        chart.draw_series(DashedLineSeries::new(
            [(xlo, l), (xhi, l)],
            4,
            3,
            RED.stroke_width(1),
        ))?;
    }
    draw_curves(&mut chart, group, kind, ymax)?;
    if let Panel::Achieved = kind {
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 10)?;
    }
    Ok(())
}

/// Every curve of the panel: its knee line, p50 (solid, dots; labelled in the
/// achieved-rate panel's legend) and p99 (dashed).
fn draw_curves<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    group: &Group,
    kind: Panel,
    ymax: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for (i, c) in group.curves.iter().enumerate() {
        let col = color(i);
        if let Some(k) = &c.knee {
            chart.draw_series(LineSeries::new(
                [(k.offered_rate, 0.0), (k.offered_rate, ymax)],
                col.mix(0.6).stroke_width(1),
            ))?;
        }
        let p50 = series(c, kind, false);
        let s = chart.draw_series(LineSeries::new(p50.iter().copied(), col.stroke_width(2)))?;
        if let Panel::Achieved = kind {
            let label = match c.knee.as_ref() {
                Some(k) => format!("{} (knee {})", c.label, tick(&k.offered_rate)),
                None => c.label.clone(),
            };
            s.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], col.stroke_width(2))
            });
        }
        chart.draw_series(p50.iter().map(|p| Circle::new(*p, 2, col.filled())))?;
        chart.draw_series(DashedLineSeries::new(
            series(c, kind, true),
            5,
            3,
            col.stroke_width(1),
        ))?;
    }
    Ok(())
}
