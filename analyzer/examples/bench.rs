//! Times the analysis of run logs to all tables (load, metrics, Markdown, CSV, JSON),
//! stage by stage. Build with `--release`; see `big_log.rs` for a large input.
//! `BENCH_FIGURES=DIR` also writes and times the figures.

use std::time::Instant;

use analyzer::{AnalyzeOptions, Format};

fn main() -> analyzer::Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let t0 = Instant::now();
    let runs = analyzer::load_runs(&paths)?;
    let t1 = Instant::now();
    let report = analyzer::report(&runs, &AnalyzeOptions::default())?;
    let t2 = Instant::now();
    let md = analyzer::render(&report, Format::Markdown);
    let csv = analyzer::tables::csv::throughput(&report)
        + &analyzer::tables::csv::latency(&report)
        + &analyzer::tables::csv::runs(&report);
    let json = analyzer::render(&report, Format::Json);
    let t3 = Instant::now();
    println!("{md}");
    eprintln!(
        "{} requests, {} events: load {:.2} s, metrics and tables {:.2} s, render {:.3} s ({} bytes), total {:.2} s",
        runs.requests.height(),
        runs.events.height(),
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        md.len() + csv.len() + json.len(),
        (t3 - t0).as_secs_f64()
    );
    // BENCH_FIGURES=DIR also times every figure (not part of the tables budget).
    if let Some(dir) = std::env::var_os("BENCH_FIGURES") {
        let t4 = Instant::now();
        let files = analyzer::write_figures(&report, &runs, dir.as_ref(), None)?;
        eprintln!(
            "figures: {} files in {:.2} s",
            files.len(),
            t4.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
