#!/usr/bin/env bash
# CI jobs run in a debian:bookworm container, the kind of machine the suite is made for: give it
# what `make` needs to install everything else (git, make, Python with venv, uv from PyPI).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates curl git make sudo python3 python3-venv python3-pip python3-dev build-essential \
  >/dev/null
python3 -m venv /opt/ci-tools
/opt/ci-tools/bin/pip install --quiet "uv==0.9.*"
if [ -n "${GITHUB_PATH:-}" ]; then
  echo /opt/ci-tools/bin >> "$GITHUB_PATH"
fi
git config --global --add safe.directory "$PWD"
