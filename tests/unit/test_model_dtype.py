"""The embedded model server computes in bf16 only where the CPU does so natively."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SERVE = Path(__file__).resolve().parents[2] / "model-server" / "cpu" / "serve.sh"
AVX2_EPYC = "flags\t\t: fpu sse2 avx avx2 fma bmi2\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def served_with(tmp_path: Path, cpuinfo: str, **env: str) -> tuple[str, str]:
    """The arguments serve.sh hands vLLM (a stand-in python prints them) and what it says."""
    model = tmp_path / "model"
    model.mkdir()
    (model / ".complete").touch()
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@"\n')
    python.chmod(0o755)
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    done = subprocess.run(
        ["bash", str(SERVE), str(model), "18999"],
        env={
            **os.environ,
            "MODEL_VENV": str(tmp_path / "venv"),
            "CPUINFO": str(tmp_path / "cpuinfo"),
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout, done.stderr


@pytest.mark.parametrize(
    ("cpuinfo", "dtype"), [(AVX2_EPYC, "float32"), (SAPPHIRE_RAPIDS, "bfloat16")]
)
def test_the_dtype_follows_the_cpu(tmp_path: Path, cpuinfo: str, dtype: str) -> None:
    arguments, said = served_with(tmp_path, cpuinfo)
    assert f"--dtype {dtype} " in arguments
    assert f"--dtype {dtype}" in said  # the choice is printed


def test_model_dtype_overrides_the_choice(tmp_path: Path) -> None:
    arguments, said = served_with(tmp_path, SAPPHIRE_RAPIDS, MODEL_DTYPE="float32")
    assert "--dtype float32 " in arguments
    assert "MODEL_DTYPE" in said
