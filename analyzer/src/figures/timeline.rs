//! One run over time: requests in flight (dispatched, not yet ended) and output tokens
//! per second, both against seconds since the run's start. Every request of the log
//! counts, warmup included: it is what the server saw.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::throughput::DrawResult;
use super::{color, text, tick};
use crate::error::Result;
use crate::load::{RunInfo, Runs, ev, req};

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
    let mut changes: Vec<(u64, i64)> = Vec::new();
    for (d, e) in disp.iter().zip(&end) {
        if let Some(d) = d {
            changes.push((*d, 1));
            changes.push((e.unwrap_or(last), -1));
        }
    }
    changes.sort_unstable();
    let bin_s = end_s / BINS as f64;
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
    let mut per_bin = vec![0u64; BINS];
    for (t, k) in t_ns.iter().zip(&tokens) {
        let b = ((*t as f64 / 1e9 / bin_s) as usize).min(BINS - 1);
        per_bin[b] += *k as u64;
    }
    let tok_s = per_bin
        .iter()
        .enumerate()
        .map(|(b, n)| ((b as f64 + 0.5) * bin_s, *n as f64 / bin_s))
        .collect();
    Ok(Series {
        run: info.id.clone(),
        label,
        inflight,
        inflight_binned: binned,
        tok_s,
        bin_s,
        end_s,
    })
}

pub(crate) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Series) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("Timeline of run {} ({})", s.run, s.label),
        text(18),
    )?;
    let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 / 2);
    let ymax = s.inflight.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
    let mut a = ChartBuilder::on(&top)
        .margin(10)
        .margin_right(28)
        .x_label_area_size(20)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..s.end_s, 0f64..ymax)?;
    a.configure_mesh()
        .y_desc(if s.inflight_binned {
            "in flight (max per bin)"
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
        .x_desc("time since run start (s)")
        .y_desc(format!("output tokens/s ({:.2} s bins)", s.bin_s))
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
    Ok(())
}
