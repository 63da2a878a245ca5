//! Multi-turn sessions: TTFT / E2E / cached share by turn index (the tail pooled as
//! `8+`), session totals, their Markdown, CSV and JSON forms and the figure, on the
//! hand-built log of `common/sessions_log.rs` (every expected number is worked out
//! there). A log without sessions gets none of it.

use crate::common;
use crate::common::sessions_log;

use analyzer::{AnalyzeOptions, Format, LatencyFrom, Report, TurnRow};
use common::*;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

fn analyse(records: &[formats::LogRecord], opts: &AnalyzeOptions) -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header("openai", "chat", "c1", 1.0);
    let p = write_log(&dir.path().join("chat.msgpack"), &h, records);
    let runs = analyzer::load_runs(&[p]).unwrap();
    let rep = analyzer::report(&runs, opts).unwrap();
    (dir, rep)
}

fn rows(rep: &Report) -> &[TurnRow] {
    rep.runs[0].metrics.ttft_by_turn.as_deref().unwrap()
}

#[test]
fn turns_are_grouped_and_the_tail_pooled() {
    let (_d, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let rows = rows(&rep);
    let turns: Vec<(u32, bool)> = rows.iter().map(|r| (r.turn, r.tail)).collect();
    let mut want: Vec<(u32, bool)> = (0..8).map(|t| (t, false)).collect();
    want.push((8, true));
    assert_eq!(turns, want);
    assert_eq!(rows[8].label(), "8+");
    let counts: Vec<(u64, u64, u64)> = rows
        .iter()
        .map(|r| (r.requests, r.ok, r.ttft_s.count))
        .collect();
    assert_eq!(&counts[..4], &[(3, 3, 3), (3, 2, 2), (2, 2, 2), (1, 1, 1)]);
    assert_eq!(counts[8], (2, 2, 2));
}

#[test]
fn ttft_and_e2e_by_turn_are_the_hand_computed_statistics() {
    let (_d, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let rows = rows(&rep);
    // Turn 0: TTFT {0.1, 0.3, 0.1}; type-7 p90 = 0.1 + 0.8 (0.3 - 0.1).
    let t0 = &rows[0].ttft_s;
    assert!(close(t0.mean, 0.5 / 3.0) && close(t0.p50, 0.1), "{t0:?}");
    assert!(close(t0.p90, 0.26) && close(t0.p99, 0.296), "{t0:?}");
    let e0 = &rows[0].e2e_s;
    assert!(close(e0.p50, 0.5) && close(e0.mean, 1.7 / 3.0), "{e0:?}");
    // Turn 1: {0.4, 0.2}, the failed turn not sampled.
    let t1 = &rows[1].ttft_s;
    assert!(close(t1.mean, 0.3) && close(t1.p90, 0.38), "{t1:?}");
    // Turn k of session 2 alone for 3..=7: TTFT 0.1 (k + 1).
    for (k, row) in rows.iter().enumerate().take(8).skip(3) {
        assert!(close(row.ttft_s.p50, 0.1 * (k + 1) as f64), "turn {k}");
    }
    // 8+: turns 8 and 9 of session 2, {0.9, 1.0}.
    let tail = &rows[8].ttft_s;
    assert!(close(tail.mean, 0.95) && close(tail.p99, 0.999), "{tail:?}");
    assert!(close(rows[8].e2e_s.p50, 1.35));
}

#[test]
fn cached_share_by_turn_over_the_turns_that_reported_it() {
    let (_d, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let rows = rows(&rep);
    assert_eq!(rows[0].cached_share, Some(0.0));
    assert!(close(rows[1].cached_share, 200.0 / 300.0));
    assert_eq!(rows[2].cached_share, None);
}

#[test]
fn by_turn_latencies_follow_the_origin() {
    let mut opts = AnalyzeOptions::default();
    opts.metrics.latency_from = LatencyFrom::Scheduled;
    let (_d, rep) = analyse(&sessions_log::records(), &opts);
    // Session 1's turn 0 was dispatched 0.1 s late: {0.1, 0.4, 0.1} from scheduled.
    let t0 = &rows(&rep)[0].ttft_s;
    assert!(close(t0.mean, 0.2) && close(t0.max, 0.4), "{t0:?}");
}

#[test]
fn session_totals() {
    let (_d, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let s = rep.runs[0].metrics.sessions.as_ref().unwrap();
    assert_eq!((s.count, s.complete, s.requests), (3, 2, 15));
    assert!(close(s.turns_per_session.mean, 5.0));
    assert_eq!(s.turns_per_session.max, 10);
    // Complete sessions 0 (0 to 3.7 s) and 2 (10 to 29.4 s).
    let d = &s.duration_s;
    assert_eq!(d.count, 2);
    assert!(close(d.min, 3.7) && close(d.max, 19.4), "{d:?}");
    assert!(
        close(d.p50, 11.55) && close(d.p90, 3.7 + 0.9 * 15.7),
        "{d:?}"
    );
}

#[test]
fn warmup_turns_count_only_when_included() {
    let mut opts = AnalyzeOptions::default();
    opts.metrics.include_warmup = true;
    let (_d, rep) = analyse(&sessions_log::records(), &opts);
    let s = rep.runs[0].metrics.sessions.as_ref().unwrap();
    assert_eq!((s.count, s.complete, s.requests), (4, 3, 16));
    assert_eq!(rows(&rep)[0].requests, 4);
    assert!(close(rows(&rep)[0].ttft_s.max, 5.0));
}

#[test]
fn unstreamed_sessions_have_e2e_but_no_ttft() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = latency_header("openai", "chat", "c1", 1.0);
    h.options.stream = false;
    let p = write_log(
        &dir.path().join("chat.msgpack"),
        &h,
        &sessions_log::records(),
    );
    let runs = analyzer::load_runs(&[p]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let rows = rows(&rep);
    assert_eq!(rows[0].ttft_s.count, 0);
    assert_eq!(rows[0].e2e_s.count, 3);
    // No TTFT anywhere: no figure.
    let figs = analyzer::figure_files(&rep, dir.path(), None).unwrap();
    assert!(
        !figs
            .iter()
            .any(|f| f.to_string_lossy().contains("ttft-by-turn"))
    );
}

#[test]
fn markdown_json_and_csv_show_the_sessions() {
    let (_d, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(md.contains("## Sessions"), "{md}");
    assert!(
        md.contains("| chat | OpenAI | 3 | 2 | 15 | 5.00 | 10 | 11.550 | 11.550 |"),
        "{md}"
    );
    assert!(md.contains("## TTFT by turn"), "{md}");
    assert!(
        md.contains("| chat | OpenAI | 1 | 3 | 2 | 0.3000 | 0.3000 | 0.3800 | 0.3980 |"),
        "{md}"
    );
    let tail = md.lines().find(|l| l.starts_with("| chat | OpenAI | 8+ |"));
    assert!(tail.is_some_and(|l| l.ends_with("| - |")), "{md}");
    assert!(md.contains("turn `8+` pools every turn from 8 on"), "{md}");
    // Warnings stay last.
    assert!(md.find("## TTFT by turn") < md.find("## Warnings"));

    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    let run = &json["runs"][0];
    assert_eq!(run["sessions"]["count"], 3);
    assert_eq!(run["sessions"]["turns_per_session"]["max"], 10);
    let by_turn = run["ttft_by_turn"].as_array().unwrap();
    assert_eq!(by_turn.len(), 9);
    assert_eq!(by_turn[8]["turn"], 8);
    assert_eq!(by_turn[8]["tail"], true);
    assert!(by_turn[2]["cached_share"].is_null());

    let out = tempfile::tempdir().unwrap();
    let files = analyzer::write_outputs(&rep, out.path(), &[Format::Csv]).unwrap();
    assert!(files.iter().any(|f| f.ends_with("ttft_by_turn.csv")));
    let csv = std::fs::read_to_string(out.path().join("ttft_by_turn.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 10, "{csv}");
    assert!(lines[0].starts_with("run,backend,from,turn,requests,ok,ttft_s_count,"));
    assert!(
        lines[9].starts_with("chat,OpenAI,dispatch,8+,2,2,2,"),
        "{csv}"
    );
    let runs_csv = std::fs::read_to_string(out.path().join("runs.csv")).unwrap();
    let head = runs_csv.lines().next().unwrap();
    assert!(head.contains("sessions_complete") && !head.contains("ttft_by_turn"));
}

#[test]
fn the_figure_is_drawn_when_a_run_has_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let p = sessions_log::write(dir.path(), "chat.msgpack");
    let plain = dir.path().join("plain.msgpack");
    write_log(
        &plain,
        &latency_header("vllm", "lat", "l1", 1.0),
        &latency_records(1.0, 0.5),
    );
    let runs = analyzer::load_runs(&[p, plain]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let figs = dir.path().join("figs");
    let written = analyzer::write_figures(&rep, &runs, &figs, None).unwrap();
    let png = figs.join("ttft-by-turn.png");
    assert!(written.contains(&png) && written.contains(&figs.join("ttft-by-turn.svg")));
    let svg = std::fs::read_to_string(figs.join("ttft-by-turn.svg")).unwrap();
    assert!(
        svg.contains("data-text=\"OpenAI p50\""),
        "legend names the run"
    );
    assert!(svg.contains("data-text=\"8+\""), "the tail row is labelled");
    assert!(
        !svg.contains("data-text=\"vLLM p50\""),
        "a run without sessions has no curve"
    );
}

#[test]
fn a_log_without_sessions_gets_no_session_output() {
    let (dir, rep) = analyse(&latency_records(1.0, 0.5), &AnalyzeOptions::default());
    assert!(rep.runs[0].metrics.sessions.is_none());
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(!md.contains("Sessions") && !md.contains("by turn"), "{md}");
    let json = analyzer::render(&rep, Format::Json);
    assert!(!json.contains("\"sessions\"") && !json.contains("ttft_by_turn"));
    let files = analyzer::output_files(&rep, dir.path(), &[Format::Csv]);
    assert!(!files.iter().any(|f| f.ends_with("ttft_by_turn.csv")));
    let figs = analyzer::figure_files(&rep, dir.path(), None).unwrap();
    assert!(!figs.iter().any(|f| f.to_string_lossy().contains("by-turn")));
}

#[test]
fn the_readme_block_holds_both_tables_and_is_empty_without_sessions() {
    let (dir, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let readme = dir.path().join("README.md");
    let marked = "# x\n<!-- llmib:sessions-table:begin -->\n<!-- llmib:sessions-table:end -->\n";
    std::fs::write(&readme, marked).unwrap();
    let done = analyzer::update_readme(&readme, &rep, &[]).unwrap();
    assert_eq!(done, ["sessions-table"]);
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(text.contains("| chat | OpenAI | 3 | 2 | 15 |"), "{text}");
    assert!(text.contains("| chat | OpenAI | 8+ |"), "{text}");
    assert!(
        !text.contains("## "),
        "no headings inside the block: {text}"
    );
    // Without a turn >= 8, no word of the tail.
    let short: Vec<_> = sessions_log::records()
        .into_iter()
        .filter(|r| r.turn.is_none_or(|t| t < 8))
        .collect();
    let (_d, rep) = analyse(&short, &AnalyzeOptions::default());
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(
        md.contains("- latencies of `ok` requests\n") && !md.contains("8+"),
        "{md}"
    );
    let (_d, plain) = analyse(&latency_records(1.0, 0.5), &AnalyzeOptions::default());
    analyzer::update_readme(&readme, &plain, &[]).unwrap();
    let text = std::fs::read_to_string(&readme).unwrap();
    assert_eq!(
        text,
        "# x\n<!-- llmib:sessions-table:begin -->\n\n<!-- llmib:sessions-table:end -->\n"
    );
}

#[test]
fn every_session_json_key_is_documented() {
    let (_d, rep) = analyse(&sessions_log::records(), &AnalyzeOptions::default());
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Sessions").unwrap()..readme.find("## Tables").unwrap()];
    let run = &json["runs"][0];
    let objects = [&run["sessions"], &run["ttft_by_turn"][0]];
    for key in objects.iter().flat_map(|o| o.as_object().unwrap().keys()) {
        assert!(
            section.contains(&format!("`{key}`")),
            "`{key}` undocumented"
        );
    }
}
