#!/usr/bin/env bash
# Packages the command line for krew: OUT_DIR/readygate-cli-vX.Y.Z.tar.gz holding dist/ (npm run
# build), package.json and the production node_modules (staged as the image's runtime is, by
# scripts/stage-runtime.sh), then prints plugins/krew/readygate.yaml with the version, the
# download URI and the archive's sha256 filled in.
# Usage: bash scripts/package-cli.sh OUT_DIR [URI]
#   URI: where the archive will be downloaded from (default: a file:// URL of OUT_DIR's archive,
#   for `kubectl krew install --manifest=… --archive=…` from this machine).
set -euo pipefail
out=${1:?usage: package-cli.sh OUT_DIR [URI]}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=v$(node -p 'require(process.argv[1]).version' "$root/package.json")
archive="$out/readygate-cli-$version.tar.gz"
uri=${2:-file://$archive}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bash "$root/scripts/stage-runtime.sh" "$stage/readygate" >/dev/null
# The CLI needs neither the CRDs nor the lock file: the archive is what an installed CLI runs.
rm -rf "$stage/readygate/crds" "$stage/readygate/package-lock.json"
find "$stage/readygate/dist" -name '*.map' -delete
cp "$root/README.md" "$stage/readygate/"
chmod 755 "$stage/readygate/dist/main.js"
# Reproducible: fixed owner, order and times, so the same tree gives the same sha256.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
  -C "$stage/readygate" -cf - . | gzip -n >"$archive"
sha=$(sha256sum "$archive" | cut -d' ' -f1)
echo "archive: $archive ($(du -h "$archive" | cut -f1), sha256 $sha)" >&2
sed -e "s|@VERSION@|$version|" -e "s|@URI@|$uri|" -e "s|@SHA256@|$sha|" "$root/plugins/krew/readygate.yaml"
