//! One run over time: requests in flight (dispatched, not yet ended) and output tokens
//! per second, both against seconds since the run's start. Every request of the log
//! counts, warmup included: it is what the server saw.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;
use crate::figures::style::{DrawResult, HEIGHT, WIDTH, color, text, tick};
use crate::load::columns::{ev, req};
use crate::load::runs::{RunInfo, Runs};
use crate::load::server_metrics;

/// Bins of the tokens/s curve (and of the in-flight maximum on long runs).
pub(crate) const BINS: usize = 100;

pub(crate) struct Series {
    pub run: String,
    /// Backend row label (marks simulated runs).
    pub label: String,
    /// Exact step curve, or per-bin maxima when the run has many requests.
    pub inflight: Vec<(f64, f64)>,
    pub inflight_binned: bool,
    pub tok_s: Vec<(f64, f64)>,
    pub bin_s: f64,
    pub end_s: f64,
    /// The server's own metrics, when the run scraped them (a third panel).
    pub server: Option<ServerSeries>,
}

/// Curves of the server's metrics against the same time axis (sample midpoints, s).
#[derive(Default)]
pub(crate) struct ServerSeries {
    pub running: Vec<(f64, f64)>,
    pub waiting: Vec<(f64, f64)>,
    /// KV-cache usage, percent.
    pub kv_pct: Vec<(f64, f64)>,
}

impl ServerSeries {
    fn new(samples: &[formats::MetricSample], end_s: f64) -> Option<ServerSeries> {
        let mut s = ServerSeries::default();
        for m in samples.iter().filter(|m| m.error.is_none()) {
            let t = m.mid_ns() as f64 / 1e9;
            if t > end_s {
                continue;
            }
            s.running.extend(m.running.map(|v| (t, v)));
            s.waiting.extend(m.waiting.map(|v| (t, v)));
            s.kv_pct.extend(m.kv_usage.map(|v| (t, v * 100.0)));
        }
        (!s.running.is_empty() || !s.waiting.is_empty() || !s.kv_pct.is_empty()).then_some(s)
    }

    fn ymax(&self) -> f64 {
        self.running
            .iter()
            .chain(&self.waiting)
            .map(|p| p.1)
            .fold(1.0f64, f64::max)
            * 1.1
    }
}

pub(crate) fn series(runs: &Runs, info: &RunInfo, label: String) -> Result<Series> {
    let rq = runs.requests.slice(
        info.requests.start as i64,
        info.requests.end - info.requests.start,
    );
    let evs = runs.events.slice(
        info.events.start as i64,
        info.events.end - info.events.start,
    );
    let disp: Vec<Option<u64>> = rq.column(req::DISPATCHED_NS)?.u64()?.iter().collect();
    let end: Vec<Option<u64>> = rq.column(req::END_NS)?.u64()?.iter().collect();
    let t_ns: Vec<u64> = evs
        .column(ev::T_NS)?
        .u64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let tokens: Vec<u32> = evs
        .column(ev::TOKENS)?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let last = end
        .iter()
        .flatten()
        .chain(t_ns.iter())
        .chain(disp.iter().flatten())
        .copied()
        .max()
        .unwrap_or(0);
    let end_s = (last as f64 / 1e9).max(1e-3);
    let bin_s = end_s / BINS as f64;
    let (inflight, binned) = inflight(&disp, &end, last, bin_s);
    let tok_s = tokens_per_s(&t_ns, &tokens, bin_s);
    Ok(Series {
        run: info.id.clone(),
        label,
        inflight,
        inflight_binned: binned,
        tok_s,
        bin_s,
        end_s,
        server: server_metrics::samples(info)
            .ok()
            .flatten()
            .and_then(|m| ServerSeries::new(&m, end_s)),
    })
}

/// Requests in flight over time: the exact step curve of dispatches (+1) and ends
/// (-1; a request without an end ends at `last`), or per-bin maxima when the run has
/// many requests (`true`).
fn inflight(
    disp: &[Option<u64>],
    end: &[Option<u64>],
    last: u64,
    bin_s: f64,
) -> (Vec<(f64, f64)>, bool) {
    let mut changes: Vec<(u64, i64)> = Vec::new();
    for (d, e) in disp.iter().zip(end) {
        if let Some(d) = d {
            changes.push((*d, 1));
            changes.push((e.unwrap_or(last), -1));
        }
    }
    changes.sort_unstable();
    let binned = changes.len() > 4000;
    let mut inflight = vec![(0.0, 0.0)];
    let mut level = 0i64;
    let mut maxima = vec![0i64; BINS];
    for (t, delta) in &changes {
        let ts = *t as f64 / 1e9;
        level += delta;
        let b = ((ts / bin_s) as usize).min(BINS - 1);
        maxima[b] = maxima[b].max(level);
        if !binned {
            let prev = inflight.last().map(|p| p.1).unwrap_or(0.0);
            inflight.push((ts, prev));
            inflight.push((ts, level as f64));
        }
    }
    if binned {
        inflight = maxima
            .iter()
            .enumerate()
            .flat_map(|(b, m)| {
                let x0 = b as f64 * bin_s;
                [(x0, *m as f64), (x0 + bin_s, *m as f64)]
            })
            .collect();
    }
    (inflight, binned)
}

/// Output tokens per second in each bin (plotted at the bin's middle).
fn tokens_per_s(t_ns: &[u64], tokens: &[u32], bin_s: f64) -> Vec<(f64, f64)> {
    let mut per_bin = vec![0u64; BINS];
    for (t, k) in t_ns.iter().zip(tokens) {
        let b = ((*t as f64 / 1e9 / bin_s) as usize).min(BINS - 1);
        per_bin[b] += *k as u64;
    }
    per_bin
        .iter()
        .enumerate()
        .map(|(b, n)| ((b as f64 + 0.5) * bin_s, *n as f64 / bin_s))
        .collect()
}

/// Pixel size of the figure: the usual one, taller by half with the server panel so
/// that each of the three panels keeps the height of its axis title.
pub(crate) fn size(s: &Series) -> (u32, u32) {
    let (w, h) = (WIDTH, HEIGHT);
    match s.server {
        Some(_) => (w, h * 3 / 2),
        None => (w, h),
    }
}

/// Height of the legend strip above the server panel, pixels.
const LEGEND_STRIP: u32 = 22;

pub(crate) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Series) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("Timeline of run {} ({})", s.run, s.label),
        text(18),
    )?;
    let height = root.dim_in_pixel().1;
    // Three panels: the server's gets the legend strip on top of its share.
    let (top, bottom) = match &s.server {
        Some(_) => root.split_vertically((height - LEGEND_STRIP) / 3),
        None => root.split_vertically(height / 2),
    };
    let (bottom, server) = match &s.server {
        Some(_) => {
            let (b, c) = bottom.split_vertically((height - LEGEND_STRIP) / 3);
            (b, Some(c))
        }
        None => (bottom, None),
    };
    let ymax = s.inflight.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
    let mut a = ChartBuilder::on(&top)
        .margin(10)
        .margin_right(28)
        .x_label_area_size(20)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..s.end_s, 0f64..ymax)?;
    a.configure_mesh()
        .y_desc(if s.inflight_binned {
            "in flight (bin max)"
        } else {
            "requests in flight"
        })
        .axis_desc_style(text(14))
        .label_style(text(12))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    a.draw_series(LineSeries::new(
        s.inflight.iter().copied(),
        color(0).stroke_width(2),
    ))?;
    let tmax = s.tok_s.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
    let mut b = ChartBuilder::on(&bottom)
        .margin(10)
        .margin_right(28)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..s.end_s, 0f64..tmax)?;
    b.configure_mesh()
        .x_desc(match s.server {
            // The server panel below carries the axis name.
            Some(_) => "",
            None => "time since run start (s)",
        })
        .y_desc(format!("output tok/s, {} s bins", tick(&s.bin_s)))
        .axis_desc_style(text(14))
        .label_style(text(12))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    b.draw_series(LineSeries::new(
        s.tok_s.iter().copied(),
        color(1).stroke_width(2),
    ))?;
    if let (Some(area), Some(m)) = (server, &s.server) {
        draw_server(&area, s.end_s, m)?;
    }
    Ok(())
}

/// The third panel: the server's running and waiting requests (left axis) and its
/// KV-cache usage (right axis, %), on the run's time axis.
fn draw_server<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    end_s: f64,
    m: &ServerSeries,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    // The legend goes in a strip above the panel, never over its first seconds.
    let (strip, area) = area.split_vertically(LEGEND_STRIP);
    let mut entries: Vec<(&str, RGBColor, u32)> = Vec::new();
    if !m.running.is_empty() {
        entries.push(("running", color(0), 2));
    }
    if !m.waiting.is_empty() {
        entries.push(("waiting", color(3), 2));
    }
    if !m.kv_pct.is_empty() {
        entries.push(("KV cache % (right axis)", color(2), 1));
    }
    legend_strip(&strip, &entries)?;
    let mut c = ChartBuilder::on(&area)
        .margin(10)
        .margin_right(28)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0f64..end_s, 0f64..m.ymax())?
        .set_secondary_coord(0f64..end_s, 0f64..100f64);
    c.configure_mesh()
        .x_desc("time since run start (s)")
        .y_desc("server: requests")
        .axis_desc_style(text(14))
        .label_style(text(12))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    c.configure_secondary_axes()
        .y_desc("KV cache used (%)")
        .axis_desc_style(text(14))
        .label_style(text(12))
        .y_label_formatter(&tick)
        .draw()?;
    let lines = [
        (&m.running, color(0), "running"),
        (&m.waiting, color(3), "waiting"),
    ];
    for (points, col, _) in lines {
        if !points.is_empty() {
            c.draw_series(LineSeries::new(points.iter().copied(), col.stroke_width(2)))?;
        }
    }
    if !m.kv_pct.is_empty() {
        c.draw_secondary_series(LineSeries::new(
            m.kv_pct.iter().copied(),
            color(2).stroke_width(1),
        ))?;
    }
    Ok(())
}

/// A one-row legend (a line sample, then the name, per entry) from the left edge of
/// the plotting area.
fn legend_strip<DB: DrawingBackend>(
    strip: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor, u32)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = text(12);
    let y = LEGEND_STRIP as i32 / 2;
    // The panels' margin (10) plus their y label area (64).
    let mut x = 74i32;
    for (name, col, width) in entries {
        strip.draw(&PathElement::new(
            [(x, y), (x + 18, y)],
            col.stroke_width(*width),
        ))?;
        let (w, h) = strip.estimate_text_size(name, &style)?;
        strip.draw(&Text::new(*name, (x + 24, y - h as i32 / 2), style.clone()))?;
        x += 24 + w as i32 + 18;
    }
    Ok(())
}
