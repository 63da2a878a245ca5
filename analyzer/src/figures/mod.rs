//! Figures, each written as PNG (plotters' bitmap backend) and SVG (an SVG backend of
//! our own that turns every text into glyph outline paths, see [`svg`]), 700 x 450 px,
//! with the embedded font ([`font`]):
//!
//! * `throughput*.{png,svg}`: throughput table as grouped bars (one group per output
//!   cap, one bar per backend);
//! * `latency-cdf-<column>`: request-latency CDF per QPS column, one curve per backend;
//! * `ttft-cdf-<column>`, `itl-cdf-<column>`: the same for TTFT and ITL (per event gap);
//! * `timeline-<run>`: one run over time: requests in flight (top) and output tokens/s
//!   (bottom, 1/100th-of-run bins).

mod cdf;
mod font;
pub mod svg;
mod throughput;
mod timeline;

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::load::Runs;
use crate::report::Report;

pub use font::{FAMILY, FONT_BYTES};

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

/// A file-name-safe version of a label (`QPS=2` -> `qps-2`).
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

pub(crate) fn fig_err(name: &str, e: impl std::fmt::Display) -> Error {
    Error::Figure {
        name: name.to_string(),
        message: e.to_string(),
    }
}

/// Draws one figure twice, PNG then SVG, with a generic drawing function.
macro_rules! both {
    ($dir:expr, $name:expr, $out:expr, $draw:path, $($arg:expr),*) => {{
        let png = $dir.join(format!("{}.png", $name));
        {
            let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
            $draw(&root, $($arg),*).map_err(|e| fig_err(&$name, e))?;
            root.present().map_err(|e| fig_err(&$name, e))?;
        }
        let svg_path = $dir.join(format!("{}.svg", $name));
        {
            let mut text = String::new();
            {
                let root = svg::PathSvg::new(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
                $draw(&root, $($arg),*).map_err(|e| fig_err(&$name, e))?;
                root.present().map_err(|e| fig_err(&$name, e))?;
            }
            formats::write_atomic(&svg_path, text.as_bytes())
                .map_err(|e| fig_err(&$name, e))?;
        }
        $out.push(png);
        $out.push(svg_path);
    }};
}

/// Which run the timeline figure shows: the given run id, else the run of the highest
/// QPS column of the first latency table (first row), else the first run.
pub fn timeline_run<'a>(report: &'a Report, wanted: Option<&str>) -> Result<&'a str> {
    if let Some(w) = wanted {
        return report
            .runs
            .iter()
            .find(|r| r.run == w)
            .map(|r| r.run.as_str())
            .ok_or_else(|| Error::Invalid(format!("no run named `{w}` for the timeline")));
    }
    if let Some(t) = report.latency_tables.first() {
        for c in (0..t.columns.len()).rev() {
            for row in &t.rows {
                if let Some(cell) = &row.cells[c]
                    && let Some(r) = report.runs.iter().find(|r| r.run == cell.runs[0])
                {
                    return Ok(r.run.as_str());
                }
            }
        }
    }
    Ok(report.runs[0].run.as_str())
}

/// Writes every figure into `dir` (created if needed); returns the files written.
/// `timeline`: the run id of the timeline figure (see [`timeline_run`]).
pub fn write_figures(
    report: &Report,
    runs: &Runs,
    dir: &Path,
    timeline: Option<&str>,
) -> Result<Vec<PathBuf>> {
    font::register();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    let multi_model = report.throughput_tables.len() > 1 || report.latency_tables.len() > 1;
    for t in &report.throughput_tables {
        if t.rows.is_empty() || t.columns.is_empty() {
            continue;
        }
        let name = match (&t.model, multi_model) {
            (Some(m), true) => format!("throughput-{}", slug(m)),
            _ => "throughput".to_string(),
        };
        both!(dir, name, out, throughput::draw, t);
    }
    for (kind, what) in [
        (cdf::Metric::Request, "latency-cdf"),
        (cdf::Metric::Ttft, "ttft-cdf"),
        (cdf::Metric::Itl, "itl-cdf"),
    ] {
        for group in cdf::groups(report) {
            let curves = cdf::curves(&group, kind);
            if curves.is_empty() {
                continue;
            }
            let mut name = format!("{what}-{}", slug(&group.label));
            if let (Some(m), true) = (&group.model, multi_model) {
                name = format!("{name}-{}", slug(m));
            }
            both!(dir, name, out, cdf::draw, &group, kind, &curves);
        }
    }
    let id = timeline_run(report, timeline)?;
    let info = runs
        .find(id)
        .ok_or_else(|| Error::Invalid(format!("run `{id}` not loaded")))?;
    let label = report
        .runs
        .iter()
        .find(|r| r.run == id)
        .map(|r| r.row_label())
        .unwrap_or_default();
    let series = timeline::series(runs, info, label)?;
    let name = format!("timeline-{}", slug(id));
    both!(dir, name, out, timeline::draw, &series);
    Ok(out)
}
