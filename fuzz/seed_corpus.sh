#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the
# project's real files (see README.md). Safe to re-run; libFuzzer adds its own finds to
# the same directories.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$root/fuzz/corpus"
mkdir -p "$corpus"/{trace_reader,log_reader,spec_parser,azure_import,stream_parsers}

# Spec files and Azure CSVs as they are.
cp "$root"/traces/specs/*.toml "$root"/benchmark_configs/specs/*.toml "$corpus/spec_parser/"
cp "$root"/generator/tests/fixtures/*.csv "$corpus/azure_import/"

# Response bodies (captured and synthetic), each behind the 8 control bytes of every
# backend (low nibble: tgi, vllm, lightllm, openai, openai-chat), streamed (0x00) and
# not (0x10); max_tokens 8; see llmib_fuzz::StreamCase.
for body in "$root"/replayer/tests/fixtures/*/*.body; do
    name="$(basename "$(dirname "$body")")-$(basename "$body" .body)"
    for backend in 0 1 2 3 4; do
        for flags in 0 16; do
            out="$corpus/stream_parsers/$name-$backend-$flags"
            { printf "\\x$(printf %02x $((backend | flags)))\\x08\\x00\\x00\\x01\\x02\\x03\\x04"; cat "$body"; } > "$out"
        done
    done
done

# Traces and logs written by the current writers, a slice of a committed trace and
# version-1 files: exported by the formats fuzz test (its seeds).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-infer-bench/target}"
LLMIB_FUZZ_CORPUS="$corpus" cargo test -q --manifest-path "$root/Cargo.toml" \
    -p llmib-formats --test fuzz_readers seeds_read_back_whole
ls "$corpus" | while read -r t; do echo "$t: $(ls "$corpus/$t" | wc -l) files"; done
