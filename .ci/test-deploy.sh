#!/usr/bin/env bash
# `make test-deploy`: the deploy script for real. A local registry (Debian's docker-registry, on
# loopback) stands in for GHCR and podman for the dev host: push tag N, deploy, smoke passes;
# push a broken N+1, deploy, smoke fails, the script rolls back to N and the system answers.
# Uses the images `make test-images` built (it builds them first when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
socket=${PODMAN_SOCKET:-/run/podman/podman.sock}
port=${REGISTRY_PORT:-5055}
log_dir=test-artifacts/deploy
mkdir -p "$log_dir"
started=$SECONDS

bash .ci/system-deps.sh docker-registry openssl
bash .ci/container-engine.sh "$socket"
if ! podman image exists ghcr.io/local/switchboard-gateway:test ||
   ! podman image exists ghcr.io/local/switchboard-model-cpu:test; then
  echo "test-deploy: building the images first (make test-images' build steps)"
  TEST_IMAGES_BUILD_ONLY=1 bash .ci/test-images.sh
fi

# The registry speaks TLS with a throwaway certificate; podman trusts it through certs.d, which
# it reads on every connection (nothing to restart, nothing insecure to allow).
storage=$(mktemp -d)
certs=/etc/containers/certs.d/127.0.0.1:$port
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$storage/key.pem" -out "$storage/cert.pem" \
  2>/dev/null
mkdir -p "$certs"
cp "$storage/cert.pem" "$certs/ca.crt"
cat > "$storage/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $storage/data
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $storage/cert.pem
    key: $storage/key.pem
YAML
docker-registry serve "$storage/config.yml" > "$log_dir/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null || true; rm -rf "$storage" "$certs"' EXIT
ready() { curl -fsS --cacert "$storage/cert.pem" "https://127.0.0.1:$port/v2/" >/dev/null 2>&1; }
for _ in $(seq 1 60); do ready && break; sleep 0.5; done
ready

lock=()
command -v flock >/dev/null && lock=(flock /tmp/vllm.lock)  # the stack runs a vLLM server
status=0
# shellcheck disable=SC2086  # PYTEST_ARGS: extra arguments, split on purpose
env TEST_DEPLOY=1 TEST_EXPECT_SUITES=tests/deploy DOCKER_HOST="unix://$socket" REGISTRY="127.0.0.1:$port" \
  "${lock[@]}" .venv/bin/pytest tests/deploy -p no:cacheprovider ${PYTEST_ARGS:-} || status=$?
echo "test-deploy: $((SECONDS - started))s, $([ $status -eq 0 ] && echo ok || echo FAILED)"
exit $status
