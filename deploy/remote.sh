#!/usr/bin/env bash
# CI's deploy step (`make deploy-remote`): ship the deployment files to DEV_HOST over SSH and run
# deploy/deploy.sh TAG there. The host has Docker with compose, and holds its secrets in
# ~/switchboard/deploy/secrets (deploy/make-secrets.sh) and an API key for the smoke test in
# ~/switchboard/deploy/secrets/smoke_api_key.
# Environment: DEV_HOST, DEV_SSH_USER, DEV_SSH_KEY, DEV_SSH_KNOWN_HOSTS, DEV_ENV_FILE, TAG,
# REGISTRY (e.g. ghcr.io/OWNER).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DEV_HOST:?}" "${DEV_SSH_USER:?}" "${DEV_SSH_KEY:?}" "${DEV_SSH_KNOWN_HOSTS:?}"
: "${DEV_ENV_FILE:?}" "${TAG:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077
printf '%s\n' "$DEV_SSH_KEY" > "$work/key"
printf '%s\n' "$DEV_SSH_KNOWN_HOSTS" > "$work/known_hosts"
printf '%s\n' "$DEV_ENV_FILE" > "$work/compose.env"
ssh=(ssh -i "$work/key" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
     "$DEV_SSH_USER@$DEV_HOST")
tar -czf "$work/bundle.tgz" docker-compose.prod.yml deploy infra grafana model-server/gpu docs \
  --exclude deploy/secrets --exclude deploy/state --exclude deploy/compose.env
"${ssh[@]}" 'mkdir -p switchboard && tar -xzf - -C switchboard' < "$work/bundle.tgz"
"${ssh[@]}" 'cat > switchboard/deploy/compose.env' < "$work/compose.env"
# shellcheck disable=SC2029  # TAG is meant to expand here, on the runner
"${ssh[@]}" "cd switchboard && SMOKE_API_KEY_FILE=deploy/secrets/smoke_api_key deploy/deploy.sh '$TAG'"
