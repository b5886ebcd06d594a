#!/usr/bin/env bash
# Install missing Debian packages: with apt-get when root, otherwise say what to install.
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts some services on install; the tests start their own instances.
  for service in postgresql redis-server prometheus prometheus-alertmanager prometheus-node-exporter caddy; do
    service "$service" stop >/dev/null 2>&1 || true
  done
else
  echo "system-deps: please install these packages (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
