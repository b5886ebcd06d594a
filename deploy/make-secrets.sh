#!/usr/bin/env bash
# Create the secret files docker-compose.prod.yml reads (random values; existing files are kept).
# Usage: deploy/make-secrets.sh [DIRECTORY]   (default: deploy/secrets, or SWITCHBOARD_SECRETS_DIR)
# The directory is 0700 (only root on the host); the files 0644, because compose bind-mounts them
# into containers whose users are not root (gateway 10001, postgres 999, grafana 472).
set -euo pipefail
dir=${1:-${SWITCHBOARD_SECRETS_DIR:-$(dirname "$0")/secrets}}
mkdir -p "$dir"
chmod 700 "$dir"
for name in postgres_password session_secret metrics_token vllm_api_key grafana_admin_password; do
  if [ -s "$dir/$name" ]; then
    echo "make-secrets: $dir/$name exists, kept"
    continue
  fi
  umask 022
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$dir/$name"
  chmod 644 "$dir/$name"
  echo "make-secrets: $dir/$name created"
done
