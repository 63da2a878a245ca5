#!/usr/bin/env bash
# Submits a sharded llmib replay as a Slurm job array (llmib-shards.sbatch) and a
# merge job that runs once every shard has ended.
#
#   SHARDS=4 TRACE=/shared/trace.msgpack BACKEND=openai ENDPOINT=http://gateway:8000 \
#   RUN_DIR=/shared/runs/r1 deploy/slurm/submit.sh [extra sbatch options...]
#
# LEAD_S (default 120): how far ahead of now the shards start (queueing, reading the
# trace); START_AT (ns since the Unix epoch) overrides it. The merged log is
# RUN_DIR/run.msgpack.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SHARDS:?set SHARDS (the number of shards, one array task each)}"
: "${TRACE:?set TRACE}"
: "${BACKEND:?set BACKEND}"
: "${ENDPOINT:?set ENDPOINT}"
: "${RUN_DIR:?set RUN_DIR}"
LEAD_S=${LEAD_S:-120}
LLMIB=${LLMIB:-llmib}
if ! [[ $SHARDS =~ ^[1-9][0-9]*$ ]]; then
    echo "error: SHARDS=$SHARDS: expected a positive integer" >&2
    exit 2
fi
START_AT=${START_AT:-$(($(date +%s%N) + LEAD_S * 1000000000))}
export START_AT TRACE BACKEND ENDPOINT RUN_DIR LLMIB

array=$(sbatch --parsable --export=ALL --array="0-$((SHARDS - 1))" "$@" "$here/llmib-shards.sbatch")
merge=$(sbatch --parsable --export=ALL --dependency="afterany:$array" \
    --job-name=llmib-merge --output="$RUN_DIR/merge-%j.out" \
    --wrap="\"$LLMIB\" merge \"$RUN_DIR\"/shard-*.msgpack --output \"$RUN_DIR/run.msgpack\"")
echo "shards: job $array ($SHARDS tasks, start at $START_AT); merge: job $merge -> $RUN_DIR/run.msgpack"
