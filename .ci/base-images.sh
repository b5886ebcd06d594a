#!/usr/bin/env bash
# Base images for `make test-images`, built from Debian packages with mmdebstrap because no image
# registry is reachable here: a stand-in for python:3.11-slim-bookworm (Debian's python3 is 3.11),
# tagged as the name the Dockerfiles expect. Skipped when the tag exists already.
set -euo pipefail
tag=${PYTHON_BASE_TAG:-python:3.11-slim-bookworm}
if podman image exists "$tag"; then
  echo "base-images: $tag exists"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "base-images: mmdebstrap bookworm (minbase + python3, python3-venv, python-is-python3)"
# shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook, not for this shell
mmdebstrap --quiet --variant=minbase \
  --include=python3,python3-venv,python-is-python3,ca-certificates \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/base.tar"
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["python3"]' "$work/base.tar" "$tag" >/dev/null
echo "base-images: $tag built"
