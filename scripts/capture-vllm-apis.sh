#!/usr/bin/env bash
# Captures the raw HTTP exchanges of the 2026 request kinds from a running vLLM (the
# CPU build in ../shared/real-servers/vllm-cpu/, serve.sh PORT): the Responses API and
# the Anthropic Messages API (streamed and not), chat with a forced tool call and with a
# JSON schema, and, with EMBED_PORT, /v1/embeddings of a pooling server. Each exchange is
# NAME.request (the JSON sent), NAME.headers (status line and headers, `date` removed)
# and NAME.body (byte-exact), for the replayer's fixtures (tests/fixtures/vllm-0.32/).
#
#   scripts/capture-vllm-apis.sh PORT OUT_DIR [EMBED_PORT]
#
# The server: forced tool calls need a tool parser, and random weights need the
# constraint to be the schema alone, without free whitespace (else they fill
# max_tokens with spaces inside the JSON):
#   VLLM_ENFORCE_STRICT_TOOL_CALLING=0 serve.sh PORT --enable-auto-tool-choice \
#     --tool-call-parser hermes \
#     --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'
# (strict tool calling, the default, constrains a hermes call with a structural tag that
# allows any whitespace; bounded strings and integers in the schema let a random model
# close the JSON in about 20 tokens.)
set -euo pipefail
PORT=${1:?usage: capture-vllm-apis.sh PORT OUT_DIR [EMBED_PORT]}
OUT=${2:?usage: capture-vllm-apis.sh PORT OUT_DIR [EMBED_PORT]}
EMBED_PORT=${3:-}
mkdir -p "$OUT"

capture() { # name port path json [extra curl args...]
  local name=$1 port=$2 path=$3 json=$4
  shift 4
  printf '%s\n' "$json" > "$OUT/$name.request"
  curl -sN -D "$OUT/$name.headers.raw" -o "$OUT/$name.body" "$@" \
    -H 'content-type: application/json' -d "$json" "http://127.0.0.1:$port$path"
  grep -iv '^date:' "$OUT/$name.headers.raw" > "$OUT/$name.headers"
  rm "$OUT/$name.headers.raw"
  echo "$name: $(head -1 "$OUT/$name.headers" | tr -d '\r'), $(wc -c < "$OUT/$name.body") bytes"
}

PROMPT='The benchmark client says'
WEATHER='{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":14}},"required":["city","days"],"additionalProperties":false}'
ANTHROPIC=(-H 'x-api-key: test-key' -H 'anthropic-version: 2023-06-01')

capture responses_stream "$PORT" /v1/responses \
  "{\"model\":\"tiny-llama\",\"input\":\"$PROMPT\",\"max_output_tokens\":16,\"temperature\":1.0,\"seed\":7,\"stream\":true}"
capture responses "$PORT" /v1/responses \
  "{\"model\":\"tiny-llama\",\"input\":\"$PROMPT\",\"max_output_tokens\":16,\"temperature\":1.0,\"seed\":7}"
capture responses_tool_stream "$PORT" /v1/responses \
  "{\"model\":\"tiny-llama\",\"input\":\"Weather in Paris?\",\"max_output_tokens\":48,\"temperature\":1.0,\"seed\":7,\"stream\":true,\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Forecast\",\"parameters\":$WEATHER}],\"tool_choice\":{\"type\":\"function\",\"name\":\"get_weather\"}}"
capture messages_stream "$PORT" /v1/messages \
  "{\"model\":\"tiny-llama\",\"max_tokens\":16,\"temperature\":1.0,\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}],\"stream\":true}" \
  "${ANTHROPIC[@]}"
capture messages "$PORT" /v1/messages \
  "{\"model\":\"tiny-llama\",\"max_tokens\":16,\"temperature\":1.0,\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}]}" \
  "${ANTHROPIC[@]}"
capture messages_tool_stream "$PORT" /v1/messages \
  "{\"model\":\"tiny-llama\",\"max_tokens\":48,\"temperature\":1.0,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],\"stream\":true,\"tools\":[{\"name\":\"get_weather\",\"description\":\"Forecast\",\"input_schema\":$WEATHER}],\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\"}}" \
  "${ANTHROPIC[@]}"
capture messages_too_long "$PORT" /v1/messages \
  "{\"model\":\"tiny-llama\",\"max_tokens\":4000,\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}],\"stream\":true}" \
  "${ANTHROPIC[@]}"
capture chat_tool_stream "$PORT" /v1/chat/completions \
  "{\"model\":\"tiny-llama\",\"max_tokens\":48,\"temperature\":1.0,\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Forecast\",\"parameters\":$WEATHER}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}"
capture chat_tool "$PORT" /v1/chat/completions \
  "{\"model\":\"tiny-llama\",\"max_tokens\":48,\"temperature\":1.0,\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Forecast\",\"parameters\":$WEATHER}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}"
capture chat_json_schema_stream "$PORT" /v1/chat/completions \
  "{\"model\":\"tiny-llama\",\"max_tokens\":48,\"temperature\":1.0,\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris as JSON\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true},\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"weather\",\"schema\":$WEATHER}}}"
if [ -n "$EMBED_PORT" ]; then
  capture embeddings "$EMBED_PORT" /v1/embeddings \
    "{\"model\":\"tiny-llama\",\"input\":[\"$PROMPT\",\"a second input, longer than the first one\"]}"
fi
