#!/bin/sh
# Render alertmanager.yml from alertmanager.yml.tmpl with values from the environment.
# Usage: ALERT_WEBHOOK_URL=... ALERT_EMAIL_TO=... ./render.sh > alertmanager.yml
set -eu
here=$(dirname "$0")
for name in ALERT_WEBHOOK_URL ALERT_EMAIL_TO ALERT_EMAIL_FROM ALERT_SMTP_HOST; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "render.sh: $name is not set" >&2
    exit 1
  fi
done
escape() { printf '%s' "$1" | sed -e 's/[\/&|]/\\&/g'; }
sed -e "s|\${ALERT_WEBHOOK_URL}|$(escape "$ALERT_WEBHOOK_URL")|g" \
    -e "s|\${ALERT_EMAIL_TO}|$(escape "$ALERT_EMAIL_TO")|g" \
    -e "s|\${ALERT_EMAIL_FROM}|$(escape "$ALERT_EMAIL_FROM")|g" \
    -e "s|\${ALERT_SMTP_HOST}|$(escape "$ALERT_SMTP_HOST")|g" \
    -e "s|\${ALERT_SMTP_USER}|$(escape "${ALERT_SMTP_USER:-}")|g" \
    -e "s|\${ALERT_SMTP_PASSWORD}|$(escape "${ALERT_SMTP_PASSWORD:-}")|g" \
    "$here/alertmanager.yml.tmpl"
