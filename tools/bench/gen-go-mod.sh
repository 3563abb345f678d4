#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the benchmark's Go module (kubelet-prober, floor, blackbox-driver)
# for a given Kubernetes version. kubelet-prober imports k8s.io/kubernetes/pkg/probe/..., and
# k8s.io/kubernetes points its staging modules at ./staging, so, as in tools/kube/gen-go-mod.sh,
# every staging module gets a replace read from the module's own go.mod.
# blackbox/ is a module of its own (its Prometheus libraries must not be unified with the kubelet's).
set -euo pipefail
version=${1:?usage: gen-go-mod.sh v1.Y.Z}
minor=$(echo "$version" | cut -d. -f2)
cd "$(dirname "$0")"
rm -f go.mod go.sum
go mod init readygate.dev/tools/bench >/dev/null 2>&1
go mod edit -go 1.26.8
gomod=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
go mod edit -require "k8s.io/kubernetes@${version}"
grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | while read -r mod; do
  go mod edit -replace "${mod}=${mod}@v0.${minor}.${version##*.}"
done
go mod tidy
