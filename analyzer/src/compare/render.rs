//! A comparison as the terminal table (Markdown), as JSON and as CSV. Units: latencies
//! in seconds, tokens in tokens, relative differences and intervals as fractions in JSON
//! and CSV (percent in the table).

use serde_json::{Value, json};

use super::comparison::{Comparison, RunLevel, fmt_p, stat_name};
use super::rows::Row;

fn pct(x: f64) -> String {
    format!("{:+.2}%", 100.0 * x)
}

fn value(x: f64, unit: &str) -> String {
    if unit == "s" {
        format!("{x:.4} s")
    } else {
        format!("{x:.1}")
    }
}

/// The header line: how the sides were compared.
pub fn headline(c: &Comparison) -> String {
    let level = 100.0 * (1.0 - c.spec.alpha);
    if c.paired {
        format!(
            "B against A, paired by request: {} pairs (left out: {} of A's requests and {} of B's, not ok in a run or not on the other side); {level:.0}% intervals: percentile bootstrap over pairs in blocks of {} (arrival order), {} resamples; p-values: Wilcoxon signed-rank",
            c.n[0], c.left_out[0], c.left_out[1], c.block, c.spec.resamples
        )
    } else {
        format!(
            "B against A, unpaired (distributions): {} and {} requests (left out: {} and {}, not ok in a run); {level:.0}% intervals: percentile bootstrap of each side in blocks of {} (arrival order), {} resamples; p-values: Mann-Whitney U",
            c.n[0], c.n[1], c.left_out[0], c.left_out[1], c.block, c.spec.resamples
        )
    }
}

/// The terminal table.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    for l in &c.context.client_behind {
        out.push_str(&format!("WARNING: {l}\n"));
    }
    if !c.context.client_behind.is_empty() {
        out.push('\n');
    }
    out.push_str(&headline(c));
    out.push_str("\n\n| metric | stat | A | B | B/A - 1 | interval | p | verdict | detectable |\n");
    out.push_str("|:--|:--|--:|--:|--:|:--|--:|:--|--:|\n");
    for r in &c.rows {
        out.push_str(&row_line(r));
    }
    out.push('\n');
    out.push_str(&run_level_line("output tokens/s", &c.throughput));
    if let Some(g) = &c.goodput {
        out.push_str(&run_level_line("good requests/s (--slo)", g));
    }
    out.push('\n');
    for l in &c.context.lines {
        out.push_str(&format!("- {l}\n"));
    }
    for w in &c.context.warnings {
        out.push_str(&format!("- warning: {w}\n"));
    }
    out
}

/// One run-level number: each run's value, the relative difference, Welch's interval.
fn run_level_line(what: &str, t: &RunLevel) -> String {
    let list = |v: &[f64]| {
        let values = v
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        match spread(v) {
            Some((m, sd)) => format!(
                "{values} (mean {m:.1}, sd {sd:.1}, cv {:.1}%)",
                100.0 * sd / m
            ),
            None => values,
        }
    };
    let mut out = format!(
        "{what} (run level): A {} | B {} | {}",
        list(&t.a),
        list(&t.b),
        pct(t.relative)
    );
    match &t.welch {
        Some(w) => out.push_str(&format!(
            " ({} .. {}, Welch t, p {})\n",
            pct(w.lo),
            pct(w.hi),
            fmt_p(w.p_value)
        )),
        None => out.push_str(
            " (one run on a side: no interval; several runs a side with --vs give one)\n",
        ),
    }
    out
}

/// Mean and sample standard deviation of two or more values.
fn spread(v: &[f64]) -> Option<(f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    Some((m, var.sqrt()))
}

fn run_level_json(unit: &str, t: &RunLevel) -> Value {
    let (ma, sa) = spread(&t.a).map_or((None, None), |(m, s)| (Some(m), Some(s)));
    let (mb, sb) = spread(&t.b).map_or((None, None), |(m, s)| (Some(m), Some(s)));
    json!({
        "unit": unit,
        "a": t.a,
        "b": t.b,
        "mean": [ma, mb],
        "sd": [sa, sb],
        "relative": t.relative,
        "welch": t.welch.map(|w| json!({
            "relative": w.diff, "interval": [w.lo, w.hi], "df": w.df, "p_value": w.p_value
        })),
    })
}

fn row_line(r: &Row) -> String {
    let unit = r.metric.unit();
    format!(
        "| {} | {} | {} | {} | {} | {} .. {} | {} | {} | {:.2}% |\n",
        r.metric.name(),
        stat_name(r.stat),
        value(r.a, unit),
        value(r.b, unit),
        pct(r.relative),
        pct(r.interval.lo),
        pct(r.interval.hi),
        fmt_p(r.p_value),
        r.verdict.word(r.metric),
        100.0 * r.detectable
    )
}

/// Everything as JSON.
pub fn json(c: &Comparison) -> Value {
    let rows: Vec<Value> = c
        .rows
        .iter()
        .map(|r| {
            json!({
                "metric": r.metric.name(),
                "stat": stat_name(r.stat),
                "unit": r.metric.unit(),
                "a": r.a,
                "b": r.b,
                "relative": r.relative,
                "interval": [r.interval.lo, r.interval.hi],
                "p_value": r.p_value,
                "test": r.test,
                "test_method": r.method.as_str(),
                "verdict": r.verdict.word(r.metric),
                "detectable": r.detectable,
                "n": r.n,
            })
        })
        .collect();
    json!({
        "format": "llmib-compare",
        "version": 1,
        "paired": c.paired,
        "n": c.n,
        "left_out": c.left_out,
        "alpha": c.spec.alpha,
        "resamples": c.spec.resamples,
        "seed": c.spec.seed,
        "bootstrap": "percentile",
        "block": c.block,
        "rows": rows,
        "throughput": run_level_json("output tokens/s", &c.throughput),
        "goodput": c.goodput.as_ref().map(|g| {
            let mut v = run_level_json("good requests/s", g);
            v["slo"] = json!(c.spec.slo);
            v
        }),
        "context": c.context.lines,
        "warnings": c.context.warnings,
        "client_behind": c.context.client_behind,
    })
}

/// The rows as CSV (one line per metric and statistic).
pub fn csv(c: &Comparison) -> String {
    let mut out = String::from(
        "metric,stat,unit,a,b,relative,interval_lo,interval_hi,p_value,test,verdict,detectable,n_a,n_b\n",
    );
    for r in &c.rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.metric.name(),
            stat_name(r.stat),
            r.metric.unit(),
            r.a,
            r.b,
            r.relative,
            r.interval.lo,
            r.interval.hi,
            r.p_value,
            r.test,
            r.verdict.word(r.metric),
            r.detectable,
            r.n[0],
            r.n[1]
        ));
    }
    out
}
