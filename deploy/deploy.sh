#!/usr/bin/env bash
# Deploy tag TAG of our images with docker-compose.prod.yml, smoke-test it through the proxy, and
# roll back to the tag that ran before when the smoke test fails.
#
#   deploy/deploy.sh TAG
#
# Environment:
#   ENV_FILE       the compose environment (default deploy/compose.env; see compose.env.example)
#   STATE_DIR      where the deployed tag is remembered (default deploy/state)
#   SMOKE_URL      the proxy's address as people use it (default: SWITCHBOARD_PUBLIC_URL)
#   SMOKE_API_KEY  an API key for the one real completion (or SMOKE_API_KEY_FILE); unset: a key
#                  is minted in the gateway container for the user deploy-smoke, and revoked
#   SMOKE_TIMEOUT  seconds the new version may take to answer (default 600)
#   CRASH_POLLS    a gateway found down (exited, restarting, no container) this many times while
#                  waiting fails the smoke test at once (default 5, 3 s apart)
#   SMOKE_CA       a CA bundle for the proxy's certificate; SMOKE_CA_FROM_PROXY=1 takes the root
#                  of Caddy's local CA from the proxy container (internal hosts, tests)
#   COMPOSE        the compose command (default "docker compose")
#   DEPLOY_SERVICES  only these services (and what they depend on); default: all of them
# Exit status: 0 deployed; 1 the new tag failed its smoke test and the previous one runs again;
# 2 that rollback failed too (people must look).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:?usage: deploy/deploy.sh TAG}
env_file=${ENV_FILE:-deploy/compose.env}
state_dir=${STATE_DIR:-deploy/state}
read -r -a compose <<< "${COMPOSE:-docker compose}"
compose+=(-f docker-compose.prod.yml --env-file "$env_file")
timeout=${SMOKE_TIMEOUT:-600}
key=${SMOKE_API_KEY:-}
if [ -z "$key" ] && [ -n "${SMOKE_API_KEY_FILE:-}" ]; then
  key=$(tr -d '[:space:]' < "$SMOKE_API_KEY_FILE")
fi
url=${SMOKE_URL:-$(sed -n 's/^SWITCHBOARD_PUBLIC_URL=//p' "$env_file" | tail -n 1)}
[ -n "$url" ] || { echo "deploy: set SMOKE_URL or SWITCHBOARD_PUBLIC_URL in $env_file" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$state_dir"
previous=$(cat "$state_dir/current-tag" 2>/dev/null || true)

say() { echo "deploy: $*"; }

# our images (the others are pinned and change only with this repository)
ours=(gateway migrate)
profiles=${COMPOSE_PROFILES:-$(sed -n 's/^COMPOSE_PROFILES=//p' "$env_file" | tail -n 1)}
case ",$profiles," in *,cpu,*) ours+=(model-cpu) ;; esac

up() {  # up TAG: pull our images at TAG and (re)start what changed
  SWITCHBOARD_TAG=$1 "${compose[@]}" pull --quiet "${ours[@]}"
  local -a only
  read -r -a only <<< "${DEPLOY_SERVICES:-}"
  SWITCHBOARD_TAG=$1 "${compose[@]}" up -d --remove-orphans "${only[@]}"
}

tls() {  # the curl options that make the proxy's certificate trusted
  if [ -n "${SMOKE_CA:-}" ]; then
    echo "--cacert $SMOKE_CA"
  elif [ "${SMOKE_CA_FROM_PROXY:-}" = 1 ] &&
      "${compose[@]}" exec -T proxy cat /data/caddy/pki/authorities/local/root.crt \
        > "$work/proxy-ca.crt" 2>/dev/null; then
    echo "--cacert $work/proxy-ca.crt"
  fi
}

smoke_key() {  # the given key, or one minted for this smoke test (its id in $work/key-id)
  if [ -n "$key" ]; then
    echo "$key"
    return
  fi
  "${compose[@]}" exec -T gateway switchboard keys create --user deploy-smoke \
    --name "smoke test" 2> "$work/minted" | tail -n 1
  sed -n 's/^key \([0-9]*\) .*/\1/p' "$work/minted" > "$work/key-id"
}

forget_key() {
  if [ -s "$work/key-id" ]; then
    "${compose[@]}" exec -T gateway switchboard keys revoke "$(cat "$work/key-id")" >/dev/null || true
    rm -f "$work/key-id"
  fi
}

gateway_down() {  # whether the gateway is down now: crashed (podman says "stopped"), or no
  local states          # container at all (`up` created none)
  states=$("${compose[@]}" ps --all --format '{{.State}}' gateway 2>/dev/null || true)
  [ -z "$states" ] || grep -Eq '^(exited|stopped|restarting|dead)$' <<< "$states"
}

services() {  # each service's state, indented (what people look at when a smoke test fails)
  "${compose[@]}" ps --all --format '{{.Service}}: {{.Status}}' 2>&1 | sed 's/^/  /'
}

smoke() {  # readiness through the proxy, then one real completion; within $timeout seconds
  local started=$SECONDS deadline=$((SECONDS + timeout)) model secret crashes=0 polls=0
  local -a curl_tls
  until read -r -a curl_tls <<< "$(tls)" &&
      curl -fsS "${curl_tls[@]}" -o /dev/null "$url/readyz" 2> "$work/readyz"; do
    if [ $SECONDS -ge $deadline ]; then
      say "smoke: $url/readyz did not answer 200 within ${timeout}s; the services:"
      services
      return 1
    fi
    # a release whose gateway keeps crashing is given up at once, not after the whole window
    # (one exit may be a blip: CRASH_POLLS polls, 3 s apart, that find it down)
    if gateway_down && [ $((crashes += 1)) -ge "${CRASH_POLLS:-5}" ]; then
      say "smoke: the gateway keeps exiting (or has no container); the services:"
      services
      say "smoke: the gateway's last lines:"
      "${compose[@]}" logs --no-log-prefix --tail 5 gateway 2>&1 | sed 's/^/  /'
      return 1
    fi
    if [ $((polls += 1)) -eq 20 ]; then  # about once a minute: what it is waiting for
      polls=0
      say "smoke: waiting for $url/readyz ($((SECONDS - started))s): $(tail -n 1 "$work/readyz")"
    fi
    sleep 3
  done
  model=$(sed -n 's/^SWITCHBOARD_DEFAULT_MODEL=//p' "$env_file" | tail -n 1)
  local body
  body=$(printf '{"model":"%s","max_tokens":8,"messages":[{"role":"user","content":"Say OK."}]}' \
    "${model:-smollm2-135m-instruct}")
  secret=$(smoke_key) || { say "smoke: no API key (is the gateway running?)"; return 1; }
  # each worker learns the model is up from its own health probe: retry within the deadline
  until curl -fsS "${curl_tls[@]}" --max-time 300 -H "Authorization: Bearer $secret" \
      -H "Content-Type: application/json" -d "$body" "$url/v1/chat/completions" \
      | grep -q '"choices"'; do
    if [ $SECONDS -ge $deadline ]; then
      forget_key
      say "smoke: no completion through $url within ${timeout}s"
      return 1
    fi
    sleep 3
  done
  forget_key
  say "smoke: ready, and a real completion came back"
}

say "deploying $tag (running now: ${previous:-nothing})"
if up "$tag" && smoke; then
  echo "$tag" > "$state_dir/current-tag"
  [ -n "$previous" ] && [ "$previous" != "$tag" ] && echo "$previous" > "$state_dir/previous-tag"
  say "$tag is live"
  exit 0
fi

if [ -z "$previous" ] || [ "$previous" = "$tag" ]; then
  say "$tag failed and there is no earlier tag to go back to"
  exit 2
fi
stop_gateway() {  # a gateway that keeps crashing is started again by its restart policy, and
  # could be running again between compose's stop and its removal when `up` recreated it
  # ("cannot remove container ... as it is running": the rollback failed). Stopped by hand, it
  # stays stopped.
  "${compose[@]}" stop gateway > /dev/null 2>&1 || true
}

rollback_up() {  # up the previous tag, with the failed gateway stopped first; once more if not
  stop_gateway
  up "$previous" && return 0
  say "rollback: up failed; stopping the gateway again and retrying"
  sleep 3
  stop_gateway
  up "$previous"
}

say "$tag failed: rolling back to $previous"
if rollback_up && smoke; then
  say "rolled back: $previous is live again"
  exit 1
fi
say "the rollback to $previous failed too"
exit 2
