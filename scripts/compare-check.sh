#!/usr/bin/env bash
# Issue 24's must-holds for `llmib compare`, measured against `llmib sim` (real time,
# real HTTP, one machine): the A/A false-alarm rate, the A/B detection rate of a decode
# step 5% and 2% slower, the coverage of the true difference (the engine model's, from
# the same runs in virtual time), paired against unpaired interval widths, the gate.
#
#   scripts/compare-check.sh [OUT_DIR]      (about 12 minutes on 2 cores; machine quiet)
#
# Environment: LLMIB (default target/release/llmib), PAIRS_AA (40), PAIRS_AB (20),
# REQUESTS (500). Prints one summary table; every run log and comparison is kept in
# OUT_DIR (default a temporary directory) for re-analysis.
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LLMIB:-$PWD/target/release/llmib}
PAIRS_AA=${PAIRS_AA:-40}
PAIRS_AB=${PAIRS_AB:-20}
N=${REQUESTS:-500}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
cd "$OUT"

# A V1 engine whose step costs are those of a ~20 ms decode step divided by 10, so a
# 500-request run at 100 req/s takes about 5 s; DECODE_SCALE slows the decode step.
profile() { # name decode_scale
  awk -v s="$2" -v n="$1" 'BEGIN {
    printf "name = \"%s\"\ndescription = \"compare-check\"\nmodel = \"cmp\"\n", n
    printf "max_input_length = 1024\nmax_total_tokens = 2048\nscheduler = \"vllm-v1\"\n[engine]\n"
    printf "kv_capacity_tokens = 262144\nmax_batch_size = 64\nmax_prefill_tokens = 2048\n"
    printf "block_size = 16\nseparate_prefill = false\n"
    printf "prefill_base_us = 300.0\nprefill_per_token_us = 2.0\n"
    printf "decode_base_us = %.4f\ndecode_per_seq_us = %.4f\ndecode_per_ctx_token_us = %.6f\n", 2000*s, 50*s, 0.01*s
  }' > "$1.toml"
}
profile base 1.0
profile slow5 1.05
profile slow2 1.02
profile slow10 1.10

cat > spec.toml <<EOF
name = "compare-check"
seed = 24
requests = $N
ignore_eos = true
prompt_tokens = { dist = "uniform", lo = 32, hi = 512 }
output_tokens = { dist = "uniform", lo = 16, hi = 128 }
arrival = { process = "poisson", rate = 100.0 }
EOF
[ -f trace.msgpack ] || "$L" generate spec.toml -o trace.msgpack >/dev/null

start_sim() { # profile: starts its simulator, sets URL[profile] and PID[profile]
  "$L" sim --dialect vllm --profile "$1.toml" --port 0 > "sim-$1.url" 2> "sim-$1.err" &
  PID[$1]=$!
  for _ in $(seq 100); do [ -s "sim-$1.url" ] && break; sleep 0.1; done
  URL[$1]=$(head -1 "sim-$1.url")
}
replay() { # url out
  [ -f "$2" ] || "$L" replay trace.msgpack --backend vllm --endpoint "$1" -o "$2" -q >/dev/null
}

declare -A URL PID
for p in base slow5 slow2 slow10; do
  start_sim $p
done
trap 'kill ${PID[base]} ${PID[slow5]} ${PID[slow2]} ${PID[slow10]} 2>/dev/null || true' EXIT

# The true differences: the same trace through each engine model in virtual time.
for p in base slow5 slow2; do
  [ -d "virtual-$p" ] || "$L" sweep trace.msgpack --backend vllm --profile "$p.toml" --rates 100 -q -o "virtual-$p" >/dev/null
done
truth() { # profile
  "$L" compare "virtual-base" "virtual-$1" --json "truth-$1.json" >/dev/null
  python3 -c "import json,sys; j=json.load(open('truth-$1.json')); print([r['relative'] for r in j['rows'] if r['metric']=='tpot' and r['stat']=='p50'][0])"
}
T5=$(truth slow5)
T2=$(truth slow2)

for i in $(seq "$PAIRS_AA"); do
  replay "${URL[base]}" "a$i.msgpack"
  replay "${URL[base]}" "aa$i.msgpack"
  code=0
  "$L" compare "a$i.msgpack" "aa$i.msgpack" --json "aa$i.json" --fail-if "tpot_p50>+5%" > "aa$i.txt" || code=$?
  [ "$code" = 0 ] || echo "aa$i: exit $code (an A/A pair should pass the gate)" >> gate.log
done
for i in $(seq "$PAIRS_AB"); do
  replay "${URL[slow5]}" "b5_$i.msgpack"
  replay "${URL[slow2]}" "b2_$i.msgpack"
  "$L" compare "a$i.msgpack" "b5_$i.msgpack" --json "ab5_$i.json" > "ab5_$i.txt"
  "$L" compare "a$i.msgpack" "b5_$i.msgpack" --unpaired --json "ab5u_$i.json" > /dev/null
  "$L" compare "a$i.msgpack" "b2_$i.msgpack" --json "ab2_$i.json" > "ab2_$i.txt"
done
# The gate: a decode step 10% slower must fail `tpot_p50>+5%` (5 pairs); the A/A pairs
# above must never fail it (gate.log lists every pair whose comparison exited non-zero).
for i in $(seq 5); do
  replay "${URL[slow10]}" "b10_$i.msgpack"
  code=0
  "$L" compare "a$i.msgpack" "b10_$i.msgpack" --fail-if "tpot_p50>+5%" > "ab10_$i.txt" || code=$?
  case $code in
    1) echo "ab10_$i: exit 1, failed the gate (as a 10% regression should)" >> gate.log ;;
    *) echo "ab10_$i: exit $code (a 10% regression should exit 1)" >> gate.log ;;
  esac
done
python3 - "$PAIRS_AA" "$PAIRS_AB" "$T5" "$T2" <<'PY'
import json, sys
aa, ab, t5, t2 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def row(f, metric="tpot", stat="p50"):
    j = json.load(open(f))
    return [r for r in j["rows"] if r["metric"] == metric and r["stat"] == stat][0]
def called(f):
    return row(f)["verdict"] != "no detectable difference"
def any_called(f):
    j = json.load(open(f))
    return sum(r["verdict"] != "no detectable difference" for r in j["rows"] if r["metric"] != "output_tokens")
fa = sum(called(f"aa{i}.json") for i in range(1, aa + 1))
fa_rows = sum(any_called(f"aa{i}.json") for i in range(1, aa + 1))
n_rows = sum(len([r for r in json.load(open(f"aa{i}.json"))["rows"] if r["metric"] != "output_tokens"]) for i in range(1, aa + 1))
det5 = sum(row(f"ab5_{i}.json")["verdict"] == "slower" for i in range(1, ab + 1))
det2 = sum(row(f"ab2_{i}.json")["verdict"] == "slower" for i in range(1, ab + 1))
def covers(f, t):
    lo, hi = row(f)["interval"]
    return lo <= t <= hi
cov5 = sum(covers(f"ab5_{i}.json", t5) for i in range(1, ab + 1))
cov2 = sum(covers(f"ab2_{i}.json", t2) for i in range(1, ab + 1))
w = lambda r: r["interval"][1] - r["interval"][0]
ratios = sorted(w(row(f"ab5_{i}.json")) / w(row(f"ab5u_{i}.json")) for i in range(1, ab + 1))
print(f"true TPOT p50 difference (virtual time): slow5 {t5:+.4f}, slow2 {t2:+.4f}")
print(f"A/A: TPOT p50 called different in {fa} of {aa} pairs ({100*fa/aa:.1f}%); any latency row: {fa_rows} of {n_rows} rows ({100*fa_rows/n_rows:.1f}%)")
print(f"A/B 5% slower decode: TPOT p50 called slower in {det5} of {ab} ({100*det5/ab:.0f}%); interval covers the truth in {cov5} of {ab}")
print(f"A/B 2% slower decode: TPOT p50 called slower in {det2} of {ab} ({100*det2/ab:.0f}%); interval covers the truth in {cov2} of {ab}")
print(f"paired / unpaired interval width (TPOT p50, 5% pairs): median {ratios[len(ratios)//2]:.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}")
PY
echo "gate:"; cat gate.log 2>/dev/null || echo "(no A/A pair failed tpot_p50>+5%)"
echo "runs and comparisons in $OUT"
