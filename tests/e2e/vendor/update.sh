#!/usr/bin/env bash
# Vendor axe-core (the accessibility checker the browser tests run in each page; tests only, never
# served by the app) at a pinned version from the npm registry. The file is committed; run this
# after changing VERSION, then update SHA256SUMS (sha256sum axe.min.js > SHA256SUMS) and review.
set -euo pipefail
VERSION=4.14.1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "axe-core@$VERSION" >/dev/null
tar -xzf "axe-core-$VERSION.tgz" && cp package/axe.min.js "$here/axe.min.js"
cd "$here" && sha256sum -c SHA256SUMS
