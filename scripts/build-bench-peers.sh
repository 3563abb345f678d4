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
# shellcheck source=lib/go-build.sh
. "$root/scripts/lib/go-build.sh"

kube_version=$(version_of bench k8s.io/kubernetes)
blackbox_version=$(version_of bench/blackbox github.com/prometheus/blackbox_exporter)
[ -n "$kube_version" ] && [ -n "$blackbox_version" ] || { echo "cannot read peer versions" >&2; exit 1; }
sources_hash=$(cd "$root/tools/bench" && find . -path ./blackbox -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)

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
