#!/usr/bin/env bash
# Vendor htmx and its SSE extension at pinned versions from the npm registry (no CDN at run time).
# The files are committed; `make vendor` re-fetches them and verifies the checksums below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent htmx.org@2.0.11 htmx-ext-sse@2.2.4 >/dev/null
tar -xzf htmx.org-2.0.11.tgz && cp package/dist/htmx.min.js "$here/htmx-2.0.11.min.js" && rm -rf package
tar -xzf htmx-ext-sse-2.2.4.tgz && cp package/dist/sse.min.js "$here/htmx-ext-sse-2.2.4.min.js"
cd "$here" && sha256sum -c SHA256SUMS
