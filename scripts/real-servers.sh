#!/usr/bin/env bash
# Runs the real-server check (tests/real_servers.rs) against a real vLLM 0.32 (CPU build)
# and llama.cpp's llama-server, as ../shared/real-servers/ sets them up (or the directory
# named by LLMIB_REAL_SERVERS). Starts each server on a free port unless its URL is
# already given (LLMIB_VLLM_URL, LLMIB_LLAMACPP_URL), runs the ignored tests one at a
# time with their output, and stops what it started.
#
#   scripts/real-servers.sh                 # every check (about 15 minutes on 2 cores)
#   scripts/real-servers.sh vllm_           # only the tests whose names contain vllm_
#
# Once per machine: the vLLM setup downloads about 12 GB into ~/.cache/llmib-checks, and
# the llama-server build takes 5-15 minutes; both are skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
# Reuse the builds of .ci/run (a cold test build of the workspace takes ~20 minutes here).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-infer-bench/target}"
filter="${1:-}"
servers="${LLMIB_REAL_SERVERS:-../shared/real-servers}"
[ -d "$servers/vllm-cpu" ] && [ -d "$servers/llama-cpp" ] || {
  echo "error: no real-server recipes in $servers (set LLMIB_REAL_SERVERS)" >&2; exit 2; }
servers="$(cd "$servers" && pwd)"
cache="${LLMIB_CHECKS_CACHE:-$HOME/.cache/llmib-checks}"
azure="${LLMIB_AZURE_CSV:-$(cd "$servers/.." && pwd)/data/azure-llm-2023/AzureLLMInferenceTrace_conv.csv}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
started=()
cleanup() { for pid in "${started[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

if [ -z "${LLMIB_VLLM_URL:-}" ]; then
  bash "$servers/vllm-cpu/setup.sh" >/dev/null
  port=$(free_port)
  # The cache-reset route (POST /reset_prefix_cache, for --reset-prefix-cache) is only
  # registered in vLLM's development mode. No tool parser: with `--enable-auto-tool-choice
  # --tool-call-parser hermes` the chat streams merged tokens into fewer chunks (76 of
  # 100 records one chunk per token, 2026-12-08), so tool-call checks need a server of
  # their own (flags in scripts/capture-vllm-apis.sh).
  VLLM_SERVER_DEV_MODE=1 "$servers/vllm-cpu/serve.sh" "$port" >&2
  started+=("$(cat "$cache/vllm-serve-$port.pid")")
  export LLMIB_VLLM_URL="http://127.0.0.1:$port"
fi
export LLMIB_VLLM_TOKENIZER="${LLMIB_VLLM_TOKENIZER:-$cache/vllm-cpu-model/tokenizer.json}"

if [ -z "${LLMIB_LLAMACPP_URL:-}" ]; then
  bash "$servers/llama-cpp/build.sh" >/dev/null
  port=$(free_port)
  setsid "$servers/llama-cpp/serve.sh" "$port" >"$cache/llama-serve-$port.log" 2>&1 &
  started+=("$!")
  for _ in $(seq 1 240); do
    curl -sf -m 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -sf -m 2 "http://127.0.0.1:$port/health" >/dev/null || {
    echo "error: llama-server did not start (log: $cache/llama-serve-$port.log)" >&2; exit 1; }
  export LLMIB_LLAMACPP_URL="http://127.0.0.1:$port"
fi
export LLMIB_AZURE_CSV="$azure"

echo "vLLM: $LLMIB_VLLM_URL   llama-server: $LLMIB_LLAMACPP_URL" >&2
cargo test --test real_servers -- --ignored --nocapture --test-threads 1 $filter
