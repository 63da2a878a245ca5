//! Per-run metrics, computed from the requests and events tables under the definitions
//! of `analyzer/README.md`.
//!
//! Why plain loops over column slices rather than polars expressions: every definition
//! here (which requests count, which token count, which origin for a latency) is a
//! line of code a reviewer can check against the README, and one pass over the run's
//! rows computes all of them; a 13M-event run is analysed in well under a second.
//!
//! How: one accumulator per concept, each fed every request of the run in turn
//! (`observe`) and read at the end: [`counts`] (outcomes, flags, prefix cache),
//! [`dispatch`] (lateness, connections, the run's duration), [`tokens`], [`latency`]
//! (TTFT, E2E, TPOT, ITL), [`reasoning`], [`goodput`], and the multi-turn [`sessions`].
//! What they add up to is [`RunMetrics`] ([`run_metrics`]).
//!
//! Units: latencies in seconds, throughputs in tokens or requests per second.

pub(crate) mod columns;
pub(crate) mod counts;
pub(crate) mod dispatch;
pub mod goodput;
pub(crate) mod latency;
pub mod options;
pub(crate) mod origins;
pub mod prefix_cache;
pub mod rates;
pub mod reasoning;
pub mod run_metrics;
pub mod sessions;
pub(crate) mod time;
pub mod tokens;
pub mod tool_calls;

use crate::error::Result;
use crate::load::runs::{RunInfo, Runs};
use crate::stats::summarize;
use columns::{EvCols, ReqCols};
use counts::Counts;
use dispatch::Dispatches;
use goodput::GoodCount;
use latency::Latencies;
use options::MetricOptions;
use origins::Origins;
use reasoning::Reasoning;
use time::per_s;
use tokens::Tokens;
use tool_calls::ToolCalls;

pub use crate::slo::Slo;
pub use goodput::Goodput;
pub use options::{LatencyFrom, TokenSource};
pub use prefix_cache::PrefixCache;
pub use reasoning::ReasoningTotals;
pub use run_metrics::{RunMetrics, Samples};
pub use tokens::TokenTotals;
pub use tool_calls::ToolCallTotals;

/// Computes the metrics of every run.
pub fn compute_all(runs: &Runs, opts: &MetricOptions) -> Result<Vec<(RunMetrics, Samples)>> {
    let rc = ReqCols::new(&runs.requests)?;
    let ec = EvCols::new(&runs.events)?;
    Ok(runs
        .runs
        .iter()
        .map(|r| compute(r, &rc, &ec, opts))
        .collect())
}

/// Computes one run's metrics (see `analyzer/README.md` for every definition).
pub(crate) fn compute(
    run: &RunInfo,
    rc: &ReqCols,
    ec: &EvCols,
    opts: &MetricOptions,
) -> (RunMetrics, Samples) {
    let mut acc = RunAcc::new(run, opts);
    for i in run.requests.clone() {
        acc.observe(rc, ec, i);
    }
    acc.finish(rc)
}

/// Every accumulator of one run.
struct RunAcc<'r> {
    run: &'r RunInfo,
    opts: &'r MetricOptions,
    streamed: bool,
    counts: Counts,
    dispatches: Dispatches,
    tokens: Tokens,
    latencies: Latencies,
    reasoning: Reasoning,
    tools: ToolCalls,
    good: GoodCount,
}

impl<'r> RunAcc<'r> {
    fn new(run: &'r RunInfo, opts: &'r MetricOptions) -> Self {
        let streamed = run.header.options.stream;
        RunAcc {
            run,
            opts,
            streamed,
            counts: Counts::default(),
            dispatches: Dispatches::default(),
            tokens: Tokens::default(),
            latencies: Latencies::new(streamed, opts.latency_from, run.events.len()),
            reasoning: Reasoning::default(),
            tools: ToolCalls::default(),
            good: GoodCount::default(),
        }
    }

    /// Request `i` of the run: counted when measured; its tokens and latencies when
    /// `ok`, its latencies when it was also dispatched and ended.
    fn observe(&mut self, rc: &ReqCols, ec: &EvCols, i: usize) {
        if rc.warmup[i] && !self.opts.include_warmup {
            self.counts.warmup_excluded += 1;
            return;
        }
        self.counts.observe(rc, i);
        self.dispatches.observe(rc, i);
        if rc.outcome[i] != "ok" {
            return;
        }
        let used = self.tokens.observe(rc, i, self.opts.output_tokens);
        let (Some(d), Some(e)) = (rc.dispatched[i], rc.end[i]) else {
            self.reasoning.observe(rc, i, None, self.streamed);
            self.tools.observe(rc, i, None);
            return;
        };
        let o = Origins::of_request(rc, i).expect("dispatched");
        self.reasoning.observe(rc, i, Some(o), self.streamed);
        self.tools.observe(rc, i, Some(o));
        let here = self.latencies.observe(rc, i, (d, e), o, used);
        if self.streamed {
            let start = self.run.events.start + rc.ev_offset[i] as usize;
            let end = start + rc.ev_count[i] as usize;
            self.latencies
                .observe_events(&ec.t_ns[start..end], &ec.tokens[start..end]);
        }
        if let Some(slo) = &self.opts.slo {
            self.good.observe(slo, here.e2e, here.ttft, here.tpot);
        }
    }

    /// The per-request samples under `--from` (ITL and TPOT are added by
    /// [`RunAcc::finish`], once their statistics have reordered them).
    fn samples(&self, duration_s: Option<f64>) -> Samples {
        let (l, tokens) = (&self.latencies, &self.tokens.totals);
        let from = self.opts.latency_from;
        Samples {
            e2e_s: l.e2e.chosen(from),
            per_token_s: l.per_token.chosen(from),
            ttft_s: l.ttft.chosen(from),
            itl_s: Vec::new(),
            tpot_s: Vec::new(),
            duration_s,
            tokens_used: tokens.prompt + tokens.output_used,
            tokens_requested: tokens.prompt + tokens.output_requested,
        }
    }

    /// The run's metrics and samples (the sessions computed from `rc` here).
    fn finish(self, rc: &ReqCols) -> (RunMetrics, Samples) {
        let duration_s = self.dispatches.duration_s();
        let mut samples = self.samples(duration_s);
        let (opts, streamed) = (self.opts, self.streamed);
        let (sessions, ttft_by_turn) = sessions::compute(self.run, rc, opts, streamed);
        let (c, t, mut l, mut r) = (self.counts, self.tokens, self.latencies, self.reasoning);
        let mut tools = self.tools;
        let (mut lateness, new_connections) =
            (self.dispatches.lateness, self.dispatches.new_connections);
        let tokens = t.totals;
        let metrics = RunMetrics {
            requests: c.requests,
            ok: c.ok,
            warmup_excluded: c.warmup_excluded,
            outcomes: c.outcomes,
            early_stops: t.early_stops,
            over_length: t.over_length,
            count_flags: c.count_flags,
            prefix_cache: c.prefix_cache,
            duration_s,
            throughput_tok_s: per_s((tokens.prompt + tokens.output_used) as f64, duration_s),
            throughput_requested_tok_s: per_s(
                (tokens.prompt + tokens.output_requested) as f64,
                duration_s,
            ),
            output_tok_s: per_s(tokens.output_used as f64, duration_s),
            request_s: per_s(c.ok as f64, duration_s),
            output_tokens_source: opts.output_tokens,
            streamed,
            ttft_s: summarize(&mut l.ttft.dispatch),
            ttft_from_scheduled_s: summarize(&mut l.ttft.scheduled),
            ttft_from_sent_s: summarize(&mut l.ttft.sent),
            ttfat_s: summarize(&mut r.ttfat.dispatch),
            ttfat_from_scheduled_s: summarize(&mut r.ttfat.scheduled),
            ttfat_from_sent_s: summarize(&mut r.ttfat.sent),
            reasoning: r.totals,
            tool_calls: tools.totals,
            first_tool_s: summarize(&mut tools.first_tool),
            tpot_s: summarize(&mut l.tpot),
            itl_per_token_s: summarize(&mut l.itl_per_token),
            e2e_s: summarize(&mut l.e2e.dispatch),
            e2e_from_scheduled_s: summarize(&mut l.e2e.scheduled),
            e2e_from_sent_s: summarize(&mut l.e2e.sent),
            per_token_latency_s: summarize(&mut l.per_token.dispatch),
            per_token_latency_from_scheduled_s: summarize(&mut l.per_token.scheduled),
            per_token_latency_from_sent_s: summarize(&mut l.per_token.sent),
            lateness_s: summarize(&mut lateness),
            send_delay_s: summarize(&mut l.send_delay),
            new_connections,
            sent_missing: l.sent_missing,
            itl_s: summarize(&mut l.itl),
            goodput: self.good.finish(opts.slo, streamed, c.requests, duration_s),
            tokens,
            sessions,
            ttft_by_turn,
        };
        // The samples the statistics reordered (pooled and plotted, order unused).
        samples.itl_s = l.itl;
        samples.tpot_s = l.tpot;
        (metrics, samples)
    }
}
