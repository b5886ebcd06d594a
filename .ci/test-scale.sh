#!/usr/bin/env bash
# `make test-scale`: the scale-out topology on podman. Builds the images as `make test-images`
# does (the same script, build steps only: cached layers when test-images ran just before),
# then runs tests/scale, which boots docker-compose.prod.yml + docker-compose.scale.yml (2
# gateways, vllm-router, 2 CPU vLLM replicas, Redis, PostgreSQL, Prometheus), measures spread,
# prefix affinity, failover, shared limits and usage rows, and writes test-artifacts/scale/
# report.{json,md}. Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
socket=${PODMAN_SOCKET:-/run/podman/podman.sock}
owner=local tag=${IMAGE_TAG:-test}
out=test-artifacts/scale
mkdir -p "$out"
started=$SECONDS

echo "test-scale: images (the build steps of .ci/test-images.sh; logs in $out/build)"
IMAGES_LOG_DIR=$out/build TEST_IMAGES_BUILD_ONLY=1 IMAGE_TAG=$tag bash .ci/test-images.sh
built=$((SECONDS - started))

# Two vLLM servers: never beside another one on this machine (flock where there is one).
lock=()
command -v flock >/dev/null && lock=(flock /tmp/vllm.lock)
echo "test-scale: pytest tests/scale (compose up on podman; output below)"
status=0
# shellcheck disable=SC2086  # PYTEST_ARGS: extra arguments, split on purpose
env TEST_SCALE=1 TEST_EXPECT_SUITES=tests/scale DOCKER_HOST="unix://$socket" IMAGE_OWNER=$owner IMAGE_TAG=$tag \
  "${lock[@]}" .venv/bin/pytest tests/scale -p no:cacheprovider -v ${PYTEST_ARGS:-} \
  2>&1 | tee "$out/pytest.log" || status=$?
total=$((SECONDS - started))
printf 'test-scale: images %ds, tests %ds, total %ds: %s\n' "$built" $((total - built)) "$total" \
  "$([ $status -eq 0 ] && echo ok || echo FAILED)" | tee "$out/timing.txt"
[ -f "$out/report.md" ] && cat "$out/report.md"
# last, where a log cut in the middle still shows it: which tests failed, and why
if [ $status -ne 0 ]; then
  echo "test-scale: failed (whole output in $out/pytest.log):"
  grep -E '^(FAILED|ERROR) |^E  |^tests/.*(Error|Exception)$' "$out/pytest.log" | head -60 | cut -c1-400 || true
fi
exit $status
