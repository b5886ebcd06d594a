#!/usr/bin/env bash
# `make test-images`: build the gateway, CPU model-server and router images from the real
# Dockerfiles with podman, then run tests/images (which starts docker-compose.prod.yml on them) and print how long
# each step took. PostgreSQL, Redis, Caddy and Prometheus run as containers built from Debian
# packages on a local base image (tests/images/standins), tagged as the images the compose file
# names. TEST_IMAGES_BUILD_ONLY=1: build, test nothing (`make test-scale`, `make test-deploy`).
set -euo pipefail
cd "$(dirname "$0")/.."
socket=${PODMAN_SOCKET:-/run/podman/podman.sock}
owner=local tag=${IMAGE_TAG:-test}
log_dir=${IMAGES_LOG_DIR:-test-artifacts/images}
mkdir -p "$log_dir"
steps=()

step() {  # step NAME COMMAND...: run, log to $log_dir/NAME.log, remember the time it took
  local name=$1 started=$SECONDS status=0
  shift
  echo "test-images: $name"
  "$@" >"$log_dir/$name.log" 2>&1 || status=$?
  steps+=("$(printf '%-24s %4ds %s' "$name" $((SECONDS - started)) \
    "$([ $status -eq 0 ] && echo ok || echo "FAILED (see $log_dir/$name.log)")")")
  if [ $status -ne 0 ]; then
    tail -n 40 "$log_dir/$name.log" >&2
    return $status
  fi
}

# shellcheck disable=SC2329  # called by the EXIT trap
summary() {
  echo "test-images: steps"
  printf '  %s\n' "${steps[@]}"
  [ -f "$log_dir/sizes.txt" ] && sed 's/^/  /' "$log_dir/sizes.txt"
  return 0
}
trap summary EXIT

# What pip uses on this machine (a CA bundle for a TLS-intercepting proxy, a local wheel folder
# and local indexes) is handed to the builds as build args and read-only mounts; without them
# the Dockerfiles' defaults (PyPI, PyTorch's CPU index) apply.
build=(--format docker --network host)
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then
  build+=(-v "$ca:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt
          --build-arg SSL_CERT_FILE=/run/build-ca.crt)
fi
pip_config() { python3 -m pip config get "global.$1" 2>/dev/null || true; }
find_links=${PIP_FIND_LINKS:-$(pip_config find-links)}
model=()
if [ -n "$find_links" ] && [ -d "$find_links" ]; then
  model+=(-v "$find_links:$find_links:ro" --build-arg "PIP_FIND_LINKS=$find_links")
fi
local_indexes=()
for url in ${PIP_EXTRA_INDEX_URL:-$(pip_config extra-index-url)}; do
  dir=${url#file://}
  dir=${dir%/simple}
  if [ "$url" != "$dir" ] && [ -d "$dir" ]; then
    model+=(-v "$dir:$dir:ro")
    local_indexes+=("$url")
  fi
done
if [ ${#local_indexes[@]} -gt 0 ]; then
  model+=(--build-arg "PIP_EXTRA_INDEX_URL=${local_indexes[*]}")
fi

images_built() {
  local image
  {
    echo "image sizes (podman, uncompressed):"
    for image in ghcr.io/$owner/switchboard-{gateway,model-cpu,router}:$tag \
                 python:3.11-slim-bookworm; do
      printf '  %-48s %s\n' "$image" "$(podman image inspect --format '{{.Size}}' "$image" \
        | awk '{printf "%.0f MB", $1 / 1000000}')"
    done
  } >"$log_dir/sizes.txt"
}

# shellcheck disable=SC2329  # called through step
standins() {
  local name
  for name in library/postgres:15.20-bookworm library/redis:7.0.15-bookworm \
              library/caddy:2.6.2 prom/prometheus:v2.53.4; do
    local file=${name#*/}
    podman build "${build[@]}" -f "tests/images/standins/${file%%:*}.Dockerfile" \
      -t "docker.io/$name" tests/images/standins
  done
}

# Build-only runs (`make test-deploy`, `make test-scale`) reuse the images a run of this script
# built from the same tree (the commit and every uncommitted change): a cached rebuild still
# takes a minute and a half here.
stamp=test-artifacts/images/built-from-tree-$tag
tree() { { git rev-parse HEAD && git status --porcelain && git diff HEAD; } | sha256sum; }
images_exist() {
  local image
  for image in ghcr.io/$owner/switchboard-{gateway,model-cpu,router}:$tag; do
    podman image exists "$image" || return 1
  done
}

step engine bash .ci/container-engine.sh "$socket"
if [ -n "${TEST_IMAGES_BUILD_ONLY:-}" ] && [ -f "$stamp" ] && now=$(tree) &&
   [ "$now" = "$(cat "$stamp")" ] && images_exist; then
  echo "test-images: the images of this tree are built (ghcr.io/$owner/*:$tag): reused"
  exit 0
fi
rm -f "$stamp"
step base-image bash .ci/base-images.sh
step standin-images standins
step gateway-image podman build "${build[@]}" -f infra/docker/gateway.Dockerfile \
  -t "ghcr.io/$owner/switchboard-gateway:$tag" .
step model-cpu-image podman build "${build[@]}" "${model[@]}" -f model-server/cpu/Dockerfile \
  -t "ghcr.io/$owner/switchboard-model-cpu:$tag" .
step router-image podman build "${build[@]}" -f infra/docker/router.Dockerfile \
  -t "ghcr.io/$owner/switchboard-router:$tag" .
images_built
mkdir -p "$(dirname "$stamp")"
if git rev-parse --git-dir >/dev/null 2>&1; then tree > "$stamp"; fi
[ -n "${TEST_IMAGES_BUILD_ONLY:-}" ] && exit 0  # `make test-deploy` needs only the images
# The stack runs a vLLM server: never two at once on this machine (flock where there is one).
lock=()
command -v flock >/dev/null && lock=(flock /tmp/vllm.lock)
echo "test-images: pytest tests/images (compose up on podman; output below)"
started=$SECONDS
status=0
# shellcheck disable=SC2086  # PYTEST_ARGS: extra arguments, split on purpose
env TEST_IMAGES=1 TEST_EXPECT_SUITES=tests/images DOCKER_HOST="unix://$socket" IMAGE_OWNER=$owner IMAGE_TAG=$tag \
  "${lock[@]}" .venv/bin/pytest tests/images -p no:cacheprovider ${PYTEST_ARGS:-} || status=$?
steps+=("$(printf '%-24s %4ds %s' pytest $((SECONDS - started)) \
  "$([ $status -eq 0 ] && echo ok || echo FAILED)")")
exit $status
