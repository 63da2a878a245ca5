#!/usr/bin/env bash
# Issue 24's must-holds for `llmib compare`, measured against `llmib sim` (real time,
# real HTTP, one machine): the A/A false-alarm rate, the A/B detection rate of a decode
# step 5% and 2% slower, the coverage of the true difference (the engine model's, from
# the same runs in virtual time), paired against unpaired interval widths, the gate.
#
#   scripts/compare-check.sh [OUT_DIR]      (about 12 minutes on 2 cores; machine quiet)
#
# Environment: LLMIB (default target/release/llmib), PAIRS_AA (40), PAIRS_AB (20, at most
# PAIRS_AA),
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

# The true differences: the same trace through each engine model in virtual time, at the
# trace's own rate (time scale 1, as the real-time runs replay it: `--rates 100` would
# rescale the arrivals by 3.5% and move the truth).
RATE=$("$L" trace inspect trace.msgpack | awk '/^requests/ {n=$2} /^time span/ {s=$3} END {printf "%.12f", n / s}')
for p in base slow5 slow2; do
  [ -d "virtual-$p" ] || "$L" sweep trace.msgpack --backend vllm --profile "$p.toml" --rates "$RATE" -q -o "virtual-$p" >/dev/null
done
truth() { # profile
  "$L" compare "virtual-base" "virtual-$1" --json "truth-$1.json" >/dev/null
  python3 -c "import json,sys; j=json.load(open('truth-$1.json')); print([r['relative'] for r in j['rows'] if r['metric']=='tpot' and r['stat']=='p50'][0])"
}
T5=$(truth slow5)
T2=$(truth slow2)

# Runs are interleaved (A, A again, B 5% slower, B 2% slower, then the next i), so a
# drift of the machine over the minutes of the check falls on both sides of every pair.
# Each pair is compared twice: with the default block bootstrap and with --block 1 (the
# ordinary bootstrap over requests), for the record.
compare_pair() { # a b name [args]
  local a=$1 b=$2 name=$3
  shift 3
  "$L" compare "$a" "$b" --json "$name.json" "$@" > "$name.txt"
  "$L" compare "$a" "$b" --block 1 --json "$name-block1.json" "$@" > /dev/null
}
for i in $(seq "$PAIRS_AA"); do
  replay "${URL[base]}" "a$i.msgpack"
  replay "${URL[base]}" "aa$i.msgpack"
  code=0
  compare_pair "a$i.msgpack" "aa$i.msgpack" "aa$i" --fail-if "tpot_p50>+5%" || code=$?
  [ "$code" = 0 ] || echo "aa$i: exit $code (an A/A pair should pass the gate)" >> gate.log
  if [ "$i" -le "$PAIRS_AB" ]; then
    replay "${URL[slow5]}" "b5_$i.msgpack"
    replay "${URL[slow2]}" "b2_$i.msgpack"
    compare_pair "a$i.msgpack" "b5_$i.msgpack" "ab5_$i"
    "$L" compare "a$i.msgpack" "b5_$i.msgpack" --unpaired --json "ab5u_$i.json" > /dev/null
    compare_pair "a$i.msgpack" "b2_$i.msgpack" "ab2_$i"
  fi
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
def rows(f):
    return json.load(open(f))["rows"]
def row(f, metric="tpot", stat="p50"):
    return [r for r in rows(f) if r["metric"] == metric and r["stat"] == stat][0]
def called(r):
    return r["verdict"] != "no detectable difference"
def covers(r, t):
    return r["interval"][0] <= t <= r["interval"][1]
w = lambda r: r["interval"][1] - r["interval"][0]
print(f"true TPOT p50 difference (virtual time): slow5 {t5:+.4f}, slow2 {t2:+.4f}")
for label, suffix in (("block bootstrap (default)", ""), ("--block 1", "-block1")):
    blocks = sorted({json.load(open(f"aa{i}{suffix}.json"))["block"] for i in range(1, aa + 1)})
    print(f"\n{label}: block length {blocks}")
    fa = sum(called(row(f"aa{i}{suffix}.json")) for i in range(1, aa + 1))
    print(f"A/A: TPOT p50 called different in {fa} of {aa} pairs ({100*fa/aa:.1f}%)")
    latency = [(r["metric"], r["stat"]) for r in rows(f"aa1{suffix}.json") if r["metric"] != "output_tokens"]
    per = []
    for m, st in latency:
        k = sum(called(row(f"aa{i}{suffix}.json", m, st)) for i in range(1, aa + 1))
        per.append(f"{m} {st} {k}")
    tot = sum(int(x.rsplit(" ", 1)[1]) for x in per)
    print(f"A/A, every latency row: {tot} of {aa * len(latency)} ({100*tot/(aa*len(latency)):.1f}%): " + ", ".join(per))
    for name, t in (("5%", t5), ("2%", t2)):
        tag = "ab5" if name == "5%" else "ab2"
        rs = [row(f"{tag}_{i}{suffix}.json") for i in range(1, ab + 1)]
        det = sum(r["verdict"] == "slower" for r in rs)
        cov = sum(covers(r, t) for r in rs)
        rel = [r["relative"] for r in rs]
        mean = sum(rel) / len(rel)
        sd = (sum((x - mean) ** 2 for x in rel) / (len(rel) - 1)) ** 0.5
        se = sum(w(r) for r in rs) / len(rs) / 3.92
        print(f"A/B {name} slower decode: TPOT p50 called slower in {det} of {ab} ({100*det/ab:.0f}%); interval covers the truth in {cov} of {ab}; mean difference {mean:+.4f}, spread across pairs (sd) {sd:.4f}, interval half-width / 1.96 {se:.4f}")
    ratios = sorted(w(row(f"ab5_{i}{suffix}.json")) / w(row(f"ab5u_{i}.json")) for i in range(1, ab + 1))
    print(f"paired / unpaired interval width (TPOT p50, 5% pairs; unpaired with the default blocks): median {ratios[len(ratios)//2]:.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}")
PY
echo "gate:"; cat gate.log 2>/dev/null || echo "(no A/A pair failed tpot_p50>+5%)"
echo "runs and comparisons in $OUT"
