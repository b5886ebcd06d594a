#!/usr/bin/env bash
# Vendor htmx, its SSE extension and Swagger UI (for /docs) at pinned versions from the npm
# registry (no CDN at run time). The files are committed; run this to re-fetch them and verify the
# checksums below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
swagger="$here/swagger-ui-5.36.0"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent htmx.org@2.0.11 htmx-ext-sse@2.2.4 swagger-ui-dist@5.36.0 >/dev/null
tar -xzf htmx.org-2.0.11.tgz && cp package/dist/htmx.min.js "$here/htmx-2.0.11.min.js" && rm -rf package
tar -xzf htmx-ext-sse-2.2.4.tgz && cp package/dist/sse.min.js "$here/htmx-ext-sse-2.2.4.min.js" && rm -rf package
mkdir -p "$swagger"
tar -xzf swagger-ui-dist-5.36.0.tgz && cp package/swagger-ui-bundle.js package/swagger-ui.css \
  package/swagger-ui-bundle.js.LICENSE.txt package/LICENSE package/NOTICE "$swagger/"
cd "$here" && sha256sum -c SHA256SUMS
