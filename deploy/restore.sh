#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh: every table of the dump is dropped and recreated, in
# one transaction (a failed restore changes nothing).
# Usage: deploy/restore.sh FILE
#   BACKUP_DATABASE_URL=postgresql://...  into that server, with this host's pg_restore
#   otherwise into the compose deployment's postgres service; the gateway is stopped meanwhile
#   and started again afterwards (sign-ins in Redis survive; people whose account the backup
#   does not hold are signed out)
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:?usage: deploy/restore.sh FILE}
[ -s "$file" ] || { echo "restore: $file is missing or empty" >&2; exit 1; }
options=(--clean --if-exists --no-owner --single-transaction --exit-on-error)
if [ -n "${BACKUP_DATABASE_URL:-}" ]; then
  pg_restore "${options[@]}" --dbname="$BACKUP_DATABASE_URL" "$file"
else
  compose() {
    # shellcheck disable=SC2086  # COMPOSE may be two words (docker compose)
    ${COMPOSE:-docker compose} -f docker-compose.prod.yml \
      --env-file "${COMPOSE_ENV_FILE:-deploy/compose.env}" "$@"
  }
  compose stop gateway
  compose exec -T postgres pg_restore "${options[@]}" -U switchboard -d switchboard < "$file"
  compose start gateway
fi
echo "restore: $file restored"
