#!/usr/bin/env bash
# Back up Switchboard's PostgreSQL database into one file: pg_dump's custom format (compressed;
# pg_restore can restore all of it or single tables). Written to FILE.partial, then renamed, so a
# file without .partial is always complete.
# Usage: deploy/backup.sh [FILE]   (default: backups/switchboard-UTCDATE-TIME.dump)
#   BACKUP_DATABASE_URL=postgresql://user[:password]@host:port/db  that server, with this host's
#     pg_dump (same major version as the server or newer)
#   otherwise the postgres service of the compose deployment (docker compose exec; settings from
#     COMPOSE_ENV_FILE, default deploy/compose.env)
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-backups/switchboard-$(date -u +%Y%m%d-%H%M%S).dump}
mkdir -p "$(dirname "$file")"
partial="$file.partial"
trap 'rm -f "$partial"' EXIT
if [ -n "${BACKUP_DATABASE_URL:-}" ]; then
  pg_dump --format=custom --no-owner --dbname="$BACKUP_DATABASE_URL" --file="$partial"
else
  # shellcheck disable=SC2086  # COMPOSE may be two words (docker compose)
  ${COMPOSE:-docker compose} -f docker-compose.prod.yml --env-file "${COMPOSE_ENV_FILE:-deploy/compose.env}" \
    exec -T postgres pg_dump --format=custom --no-owner -U switchboard -d switchboard > "$partial"
fi
mv "$partial" "$file"
trap - EXIT
echo "backup: $file ($(du -h "$file" | cut -f1))"
