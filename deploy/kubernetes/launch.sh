#!/usr/bin/env bash
# Starts a sharded llmib replay as a Kubernetes Indexed Job (job.yaml): computes the
# shared start instant once, fills in the template and applies it.
#
#   RUN_ID=r1 SHARDS=4 TRACE=trace.msgpack BACKEND=openai \
#   ENDPOINT=http://gateway:8000 IMAGE=registry/llmib:TAG \
#     deploy/kubernetes/launch.sh [--render]
#
# TRACE is a file name on the shared volume (under /data). LEAD_S (default 120) is how
# far ahead of now the run starts: long enough for every pod to be scheduled, pull the
# image and read the trace (a pod that is not ready by then fails, naming the instant).
# START_AT (ns since the Unix epoch) overrides it. --render prints the manifest
# instead of applying it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RUN_ID:?set RUN_ID (a name for the run: lowercase letters, digits, -)}"
: "${SHARDS:?set SHARDS (the number of shards, one pod each)}"
: "${TRACE:?set TRACE (the trace file name on the shared volume)}"
: "${BACKEND:?set BACKEND (e.g. openai, vllm, tgi)}"
: "${ENDPOINT:?set ENDPOINT (the server base URL as the pods reach it)}"
: "${IMAGE:?set IMAGE (a container image with llmib on its PATH as the entrypoint)}"
LEAD_S=${LEAD_S:-120}

if ! [[ $RUN_ID =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then
    echo "error: RUN_ID=$RUN_ID: use lowercase letters, digits and - (a Kubernetes name)" >&2
    exit 2
fi
if ! [[ $SHARDS =~ ^[1-9][0-9]*$ ]]; then
    echo "error: SHARDS=$SHARDS: expected a positive integer" >&2
    exit 2
fi
if [[ -z ${START_AT:-} ]]; then
    START_AT=$(($(date +%s%N) + LEAD_S * 1000000000))
fi

manifest=$(<"$here/job.yaml")
for name in RUN_ID SHARDS TRACE BACKEND ENDPOINT IMAGE START_AT; do
    manifest=${manifest//"\${$name}"/${!name}}
done

if [[ ${1:-} == --render ]]; then
    printf '%s\n' "$manifest"
else
    printf '%s\n' "$manifest" | kubectl apply -f -
    echo "run $RUN_ID: $SHARDS shards start at $START_AT ($(date -u -d "@$((START_AT / 1000000000))" +%FT%TZ))" >&2
    echo "wait: kubectl wait --for=condition=complete --timeout=24h job/llmib-$RUN_ID" >&2
fi
