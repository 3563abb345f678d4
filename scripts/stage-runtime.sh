#!/usr/bin/env bash
# Reproduces the Docker image's runtime stage (/app) outside Docker, in STAGE_DIR:
#   dist/ (tsc output), package.json, package-lock.json, crds/, node_modules/ (production only).
# Usage: bash scripts/stage-runtime.sh STAGE_DIR
# Then: node STAGE_DIR/dist/main.js run ...   (the image runs exactly that, from /app)
# Compiles straight into STAGE_DIR/dist, so a stale dist/ in the work tree cannot leak in.
set -euo pipefail
stage=${1:?usage: stage-runtime.sh STAGE_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$stage"
stage=$(cd "$stage" && pwd)
case "$stage" in "$root" | "$root"/src | "$root"/src/*) echo "refusing to stage into $stage" >&2; exit 2 ;; esac
rm -rf "$stage/dist" "$stage/node_modules" "$stage/crds"

cd "$root"
npm run --silent build -- --outDir "$stage/dist" >&2
cp package.json package-lock.json "$stage/"
cp -R crds "$stage/crds"

cd "$stage"
# As the image's deps stage: production dependencies only, no install scripts (none needs one).
npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2
echo "$stage"
