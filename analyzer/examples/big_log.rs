//! Writes a large synthetic run log for the analyzer benchmark: by default 100,000
//! requests with about 13 million token events (output lengths uniform in 1..=259, one
//! token per event), arriving at 20 requests/s.
//!
//! ```text
//! cargo run --release -p llmib-analyzer --example big_log -- /tmp/big.msgpack [requests]
//! cargo run --release -p llmib-analyzer --example bench -- /tmp/big.msgpack
//! ```
//!
//! Deterministic (a fixed-seed xorshift generator): the same arguments give the same
//! bytes.

use std::collections::BTreeMap;

use formats::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "big.msgpack".into());
    let n: u64 = args
        .next()
        .map(|s| s.parse().expect("requests"))
        .unwrap_or(100_000);
    let rate = 20.0;
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "big".into(),
        seed: 7,
        requests: n,
        prompt_tokens: LengthDist::Uniform {
            lo: 1,
            hi: 512,
            floor: 1,
        },
        output_tokens: LengthDist::Uniform {
            lo: 1,
            hi: 259,
            floor: 1,
        },
        arrival: Arrival::Poisson { rate },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let header = LogHeader::new(
        TraceRef {
            name: "big".into(),
            sha256: "0".repeat(64),
            request_count: n,
            spec: Some(spec),
        },
        BackendInfo {
            kind: "vllm".into(),
            endpoint: "http://127.0.0.1:0".into(),
            model: Some("synthetic".into()),
            simulated: Some(SimulatedInfo {
                dialect: "vllm".into(),
                profile: "benchmark".into(),
                speedup: None,
                virtual_time: false,
            }),
        },
        0,
        "bench",
        "bench",
        ReplayOptions::default(),
    );
    let mut w = LogWriter::create(&path, &header)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let gap = (1e9 / rate) as u64;
    let mut events_total = 0u64;
    let mut last_end = 0;
    for id in 0..n {
        let scheduled = id * gap;
        let dispatched = scheduled + rng.below(2_000_000);
        let out = 1 + rng.below(259) as u32;
        let mut t = dispatched + 50_000_000 + rng.below(150_000_000);
        let mut events = Events::default();
        for _ in 0..out {
            events.push(t, 1);
            t += 15_000_000 + rng.below(10_000_000);
        }
        let end = events.t_ns.last().copied().unwrap_or(dispatched) + 1_000_000;
        last_end = last_end.max(end);
        events_total += out as u64;
        w.write(&LogRecord {
            id,
            scheduled_ns: scheduled,
            dispatched_ns: Some(dispatched),
            connect_start_ns: None,
            connect_ns: None,
            sent_ns: None,
            resends: 0,
            first_byte_ns: Some(dispatched + 1_000_000),
            events,
            end_ns: Some(end),
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            prompt_tokens: 1 + rng.below(512) as u32,
            max_tokens: out,
            output_tokens: Some(out),
            server_output_tokens: Some(out),
            server_prompt_tokens: None,
            server_cached_tokens: None,
            first_reasoning_ns: None,
            first_answer_ns: None,
            reasoning_tokens: None,
            server_reasoning_tokens: None,
            tool_calls: None,
            tool_calls_valid: None,
            first_tool_ns: None,
            tool_tokens: None,
            token_count_method: Some("per_event".into()),
            count_flags: Vec::new(),
            finish_reason: Some("length".into()),
            warmup: false,
            server_timing: BTreeMap::new(),
            session_id: None,
            turn: None,
        })?;
    }
    w.finish(true, last_end)?;
    eprintln!("wrote {path}: {n} requests, {events_total} token events");
    Ok(())
}
