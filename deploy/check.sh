#!/usr/bin/env bash
# Offline checks of the deployment recipes (no cluster needed):
# * the Kubernetes manifests, job.yaml rendered by launch.sh with sample values,
#   validated against the Kubernetes API's JSON schemas (kubernetes-validate, which
#   ships them: `pip install kubernetes-validate`), strict (unknown fields refused);
# * every script: `bash -n` and `shellcheck`.
# Exit status 0 when all pass. Run by tests/deploy_recipes.rs when the tools are there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
k8s_version=${K8S_VERSION:-1.30.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

RUN_ID=check SHARDS=4 TRACE=trace.msgpack BACKEND=openai ENDPOINT=http://gateway:8000 \
    IMAGE=registry.example/llmib:latest START_AT=1800000000000000000 \
    "$here/kubernetes/launch.sh" --render >"$tmp/job.yaml"
if grep -qF "\${" "$tmp/job.yaml"; then
    echo "job.yaml: placeholders left after rendering:" >&2
    grep -nF "\${" "$tmp/job.yaml" >&2
    exit 1
fi
kubernetes-validate --strict --quiet -k "$k8s_version" \
    "$tmp/job.yaml" "$here/kubernetes/pvc.yaml" "$here/kubernetes/data-pod.yaml"
echo "kubernetes manifests: valid (Kubernetes $k8s_version schemas, strict)"

scripts=("$here/check.sh" "$here/kubernetes/launch.sh" "$here/slurm/submit.sh" "$here/slurm/llmib-shards.sbatch")
for s in "${scripts[@]}"; do
    bash -n "$s"
done
shellcheck "${scripts[@]}"
echo "scripts: bash -n and shellcheck clean (${#scripts[@]} scripts)"
