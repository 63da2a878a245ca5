//! Figures, each written as PNG (plotters' bitmap backend) and SVG (an SVG backend of
//! our own that turns every text into glyph outline paths, see [`svg`]), 700 x 450 px,
//! with the embedded font ([`font`]):
//!
//! * `throughput*.{png,svg}`: throughput table as grouped bars (one group per output
//!   cap, one bar per backend);
//! * `latency-cdf-<column>`: request-latency CDF per QPS column, one curve per backend;
//! * `ttft-cdf-<column>`, `itl-cdf-<column>`: the same for TTFT and ITL (per event gap);
//! * `ttft-by-turn`: multi-turn sessions' TTFT p50 and p99 by turn index, one colour
//!   per run (only when some run has sessions);
//! * `capacity` (`capacity-<trace>[-<model>]` when several traces): throughput-latency curves of a trace run at several offered
//!   rates (TTFT, TPOT, E2E p50/p99 and achieved rate vs offered, knee and SLO lines);
//! * `timeline-<run>`: one run over time: requests in flight (top) and output tokens/s
//!   (bottom, 1/100th-of-run bins).

mod cdf;
mod curves;
mod font;
mod forest;
pub(crate) mod style;
pub mod svg;
mod throughput;
mod timeline;
mod turns;

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::load::runs::Runs;
use crate::report::Report;
use crate::report::table::{Table, ThroughputCell};

pub use font::{FAMILY, FONT_BYTES};
pub use forest::ForestRow;
pub use style::{HEIGHT, WIDTH};

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

/// An RGB buffer of `width` x `height` as PNG bytes.
fn encode_png(
    pixels: &[u8],
    width: u32,
    height: u32,
) -> std::result::Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes).write_image(
        pixels,
        width,
        height,
        image::ColorType::Rgb8,
    )?;
    Ok(bytes)
}

/// Draws one figure twice, PNG then SVG, with a generic drawing function.
macro_rules! both {
    ($dir:expr, $name:expr, $out:expr, $draw:path, $($arg:expr),*) => {
        both!(@sized (WIDTH, HEIGHT), $dir, $name, $out, $draw, $($arg),*)
    };
    (@sized $size:expr, $dir:expr, $name:expr, $out:expr, $draw:path, $($arg:expr),*) => {{
        let (width, height): (u32, u32) = $size;
        let png = $dir.join(format!("{}.png", $name));
        {
            let mut pixels = vec![0u8; (width * height * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, (width, height))
                    .into_drawing_area();
                $draw(&root, $($arg),*).map_err(|e| fig_err(&$name, e))?;
                root.present().map_err(|e| fig_err(&$name, e))?;
            }
            let png_bytes = encode_png(&pixels, width, height).map_err(|e| fig_err(&$name, e))?;
            formats::write_atomic(&png, &png_bytes).map_err(|e| fig_err(&$name, e))?;
        }
        let svg_path = $dir.join(format!("{}.svg", $name));
        {
            let mut text = String::new();
            {
                let root = svg::PathSvg::new(&mut text, (width, height)).into_drawing_area();
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

/// A figure of empirical CDFs, one curve per labelled series of samples (seconds), as
/// `DIR/NAME.png` and `DIR/NAME.svg`: for figures outside a report (`llmib calibrate
/// --holdout`: predicted against measured). Series without samples are left out.
pub fn write_cdf(
    dir: &Path,
    name: &str,
    title: &str,
    x_desc: &str,
    series: &[(String, Vec<f64>)],
) -> Result<Vec<PathBuf>> {
    font::register();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(label, v)| (label.clone(), cdf::step_points(v.clone())))
        .collect();
    let axes = (x_desc.to_string(), "fraction of requests".to_string());
    let mut out = Vec::new();
    both!(
        dir,
        name,
        out,
        cdf::draw_titled,
        title.to_string(),
        axes.clone(),
        &curves
    );
    Ok(out)
}

/// A forest plot of relative differences with their intervals (`llmib compare`):
/// `DIR/NAME.png` and `.svg`, one row per entry, the first at the top.
pub fn write_forest(
    dir: &Path,
    name: &str,
    title: &str,
    rows: &[ForestRow],
) -> Result<Vec<PathBuf>> {
    font::register();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let height = (120 + 34 * rows.len() as u32).max(HEIGHT / 2);
    let mut out = Vec::new();
    both!(@sized (WIDTH, height), dir, name, out, forest::draw, title.to_string(), rows);
    Ok(out)
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

/// One planned figure: its file stem and what it draws.
enum Planned<'a> {
    Throughput(&'a Table<ThroughputCell>),
    Cdf(cdf::Group<'a>, cdf::Metric),
    Turns(turns::Group<'a>),
    Capacity(curves::Group),
    Timeline { run: &'a str, label: String },
}

/// Decides every figure (names and contents) without drawing: the checks that can fail
/// (an unknown `--timeline` run) fail here, before any file is written.
fn plan<'a>(report: &'a Report, timeline: Option<&str>) -> Result<Vec<(String, Planned<'a>)>> {
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
        out.push((name, Planned::Throughput(t)));
    }
    for (kind, what) in [
        (cdf::Metric::Request, "latency-cdf"),
        (cdf::Metric::Ttft, "ttft-cdf"),
        (cdf::Metric::Itl, "itl-cdf"),
    ] {
        for group in cdf::groups(report) {
            // Curves (a sort of every sample) are computed when drawn, not here:
            // planning runs before writing and again inside `write_figures`.
            if !cdf::has_data(&group, kind) {
                continue;
            }
            let mut name = format!("{what}-{}", slug(&group.label));
            if let (Some(m), true) = (&group.model, multi_model) {
                name = format!("{name}-{}", slug(m));
            }
            out.push((name, Planned::Cdf(group, kind)));
        }
    }
    for group in turns::groups(report, multi_model) {
        let name = match &group.model {
            Some(m) => format!("ttft-by-turn-{}", slug(m)),
            None => "ttft-by-turn".to_string(),
        };
        out.push((name, Planned::Turns(group)));
    }
    let capacity = curves::groups(report);
    let several = capacity.len() > 1;
    for group in capacity {
        let c = &group.curves[0];
        let mut name = "capacity".to_string();
        if several {
            name = format!("{name}-{}", slug(&c.trace_name));
            if let Some(m) = &c.model {
                name = format!("{name}-{}", slug(m));
            }
        }
        out.push((name, Planned::Capacity(group)));
    }
    let run = timeline_run(report, timeline)?;
    let label = report
        .runs
        .iter()
        .find(|r| r.run == run)
        .map(|r| r.row_label())
        .unwrap_or_default();
    out.push((
        format!("timeline-{}", slug(run)),
        Planned::Timeline { run, label },
    ));
    Ok(out)
}

/// The files [`write_figures`] would write into `dir`, computed without writing
/// anything (so a caller can check them all first); fails like `write_figures` on an
/// unknown `timeline` run.
pub fn figure_files(report: &Report, dir: &Path, timeline: Option<&str>) -> Result<Vec<PathBuf>> {
    Ok(plan(report, timeline)?
        .into_iter()
        .flat_map(|(name, _)| {
            [
                dir.join(format!("{name}.png")),
                dir.join(format!("{name}.svg")),
            ]
        })
        .collect())
}

/// Writes every figure into `dir` (created if needed); returns the files written.
/// `timeline`: the run id of the timeline figure (see [`timeline_run`]).
pub fn write_figures(
    report: &Report,
    runs: &Runs,
    dir: &Path,
    timeline: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let planned = plan(report, timeline)?;
    font::register();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for (name, figure) in planned {
        match figure {
            Planned::Throughput(t) => both!(dir, name, out, throughput::draw, t),
            Planned::Cdf(group, kind) => {
                let curves = cdf::curves(&group, kind);
                both!(dir, name, out, cdf::draw, &group, kind, &curves)
            }
            Planned::Turns(group) => {
                let curves = turns::curves(&group);
                both!(dir, name, out, turns::draw, &group, &curves)
            }
            Planned::Capacity(group) => both!(dir, name, out, curves::draw, &group),
            Planned::Timeline { run, label } => {
                let info = runs
                    .find(run)
                    .ok_or_else(|| Error::Invalid(format!("run `{run}` not loaded")))?;
                let series = timeline::series(runs, info, label)?;
                both!(@sized timeline::size(&series), dir, name, out, timeline::draw, &series)
            }
        }
    }
    Ok(out)
}
