#!/bin/sh
# Render alertmanager.yml from alertmanager.yml.tmpl with values from the environment
# (Alertmanager itself does not expand variables). POSIX sh + awk; no envsubst needed.
#
#   ./render.sh                 writes alertmanager.yml next to the template
#   ./render.sh OUTPUT          writes OUTPUT ("-" for standard output)
#   TEMPLATE=path ./render.sh   renders another template
#
# In the template, ${NAME} must be set and non-empty, ${NAME:-default} falls back to default.
# Values are escaped for YAML double-quoted strings (the template quotes every placeholder).
# Comment lines are copied unchanged.
# Nothing is written when a required variable is missing. The output is mode 600 (it may hold the
# SMTP password); the Alertmanager image runs as nobody (65534): chown the file to it, or set
# RENDER_MODE=644 where the host's other users may read it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
template=${TEMPLATE:-$here/alertmanager.yml.tmpl}
output=${1:-$here/alertmanager.yml}

if [ ! -r "$template" ]; then
  echo "render.sh: cannot read template $template" >&2
  exit 1
fi

render() {
  awk '
    function escape(value,    result, i, c) {  # for a YAML double-quoted string
      result = ""
      for (i = 1; i <= length(value); i++) {
        c = substr(value, i, 1)
        if (c == "\\" || c == "\"") result = result "\\"
        result = result c
      }
      return result
    }
    /^[ \t]*#/ { print; next }  # comments are copied as they are
    {
      line = $0
      out = ""
      while (match(line, /\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}/)) {
        token = substr(line, RSTART + 2, RLENGTH - 3)
        out = out substr(line, 1, RSTART - 1)
        line = substr(line, RSTART + RLENGTH)
        split_at = index(token, ":-")
        if (split_at > 0) {
          name = substr(token, 1, split_at - 1)
          value = (name in ENVIRON && ENVIRON[name] != "") ? ENVIRON[name] : substr(token, split_at + 2)
        } else {
          name = token
          if (!(name in ENVIRON) || ENVIRON[name] == "") {
            if (!(name in reported)) {
              printf "render.sh: %s is not set\n", name > "/dev/stderr"
              reported[name] = 1
              missing++
            }
            value = ""
          } else {
            value = ENVIRON[name]
          }
        }
        if (value ~ /\n/) {
          printf "render.sh: %s contains a newline\n", name > "/dev/stderr"
          missing++
        }
        out = out escape(value)
      }
      print out line
    }
    END { if (missing) exit 1 }
  ' "$template"
}

if [ "$output" = "-" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  render > "$tmp"
  cat "$tmp"
else
  tmp=$(mktemp "$output.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  render > "$tmp"
  chmod "${RENDER_MODE:-600}" "$tmp"  # it may hold the SMTP password
  mv "$tmp" "$output"
  trap - EXIT
fi
