#!/usr/bin/env bash
# Builds the benchmark's peers from Go modules through the module proxy and caches them outside
# the clone, like scripts/build-binaries.sh does for the test control plane:
#   kubelet-prober, floor, blackbox-driver  tools/bench (k8s.io/kubernetes/pkg/probe/...)
#   blackbox_exporter                       tools/bench/blackbox (github.com/prometheus/blackbox_exporter)
# Upstream binaries are keyed by version; ours by the Kubernetes version and a hash of their
# sources, so an edit to tools/bench rebuilds them and nothing else. A warm cache costs nothing.
#   usage: scripts/build-bench-peers.sh     -> prints the bin directory on the last line
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${READYGATE_CACHE:-$HOME/.cache/readygate}

# version_of <tools-dir> <module>: the version the committed tools go.mod requires.
version_of() { sed -nE "s#^(require)?[[:space:]]*$2 (v[^ ]+).*#\2#p" "$root/tools/$1/go.mod" | head -n1; }
kube_version=$(version_of bench k8s.io/kubernetes)
blackbox_version=$(version_of bench/blackbox github.com/prometheus/blackbox_exporter)
[ -n "$kube_version" ] && [ -n "$blackbox_version" ] || { echo "cannot read peer versions" >&2; exit 1; }
sources_hash=$(cd "$root/tools/bench" && find . -path ./blackbox -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)

# go.mod and go.sum are committed: build exactly what they pin.
export CGO_ENABLED=0 GOFLAGS=-mod=readonly

# build <cache-subdir> <tools-dir> <ldflags> <pkg...>: builds into a temp dir, then renames it into
# place so an interrupted build never leaves a half-filled cache entry behind.
build() {
  local dest="$cache/bin/$1" dir="$root/tools/$2" ldflags="$3"; shift 3
  if [ -f "$dest/.complete" ]; then echo "cached: $dest" >&2; return; fi
  local tmp; tmp=$(mktemp -d "$cache/bin/.build.XXXXXX")
  echo "building $(basename "$dest") ..." >&2
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "$@")
  echo "built $(basename "$dest") in $((SECONDS - start)) s" >&2
  chmod 755 "$tmp"
  touch "$tmp/.complete"
  rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$tmp" "$dest"
}
mkdir -p "$cache/bin"

build "bench-peers-$kube_version-$sources_hash" bench "-s -w" ./kubelet-prober ./floor ./blackbox-driver
pv=github.com/prometheus/common/version
build "blackbox_exporter-$blackbox_version" bench/blackbox \
  "-s -w -X $pv.Version=${blackbox_version#v} -X $pv.Branch=HEAD -X $pv.BuildUser=readygate" \
  github.com/prometheus/blackbox_exporter

# One stable directory of symlinks for the harness, keyed by everything above.
link="$cache/bin/bench-current-$kube_version-$sources_hash-$blackbox_version"
mkdir -p "$link"
ln -sf "$cache/bin/bench-peers-$kube_version-$sources_hash/"{kubelet-prober,floor,blackbox-driver} "$link/"
ln -sf "$cache/bin/blackbox_exporter-$blackbox_version/blackbox_exporter" "$link/blackbox_exporter"
printf '{"kubernetes":"%s","blackbox_exporter":"%s","go":"%s"}\n' "$kube_version" "$blackbox_version" "$(go env GOVERSION)" >"$link/versions.json"
echo "$link"
