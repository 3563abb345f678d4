#!/usr/bin/env bash
# Regenerates go.mod/go.sum of this tools module for a given Kubernetes version.
# k8s.io/kubernetes points its staging modules at ./staging, so `go install k8s.io/kubernetes/...@vX`
# fails; we read the replace list from the module's own go.mod instead of typing it by hand.
set -euo pipefail
version=${1:?usage: gen-go-mod.sh v1.Y.Z}
minor=$(echo "$version" | cut -d. -f2)
cd "$(dirname "$0")"
rm -f go.mod go.sum
go mod init readygate.dev/tools/kube >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
go mod edit -require "k8s.io/kubernetes@${version}"
grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk '{print $1}' | while read -r mod; do
  go mod edit -replace "${mod}=${mod}@v0.${minor}.${version##*.}"
done
# Also pin the remaining requirements to what k8s.io/kubernetes itself was built with.
go get -tool k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
go mod tidy
