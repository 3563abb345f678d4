#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) and helm
# from Go modules through the module proxy, and caches them outside the clone, keyed by version.
# Release download sites are unreachable here; the Go module proxy is. A warm cache costs nothing.
#   usage: scripts/build-binaries.sh            -> prints the bin directory on the last line
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${READYGATE_CACHE:-$HOME/.cache/readygate}
# shellcheck source=lib/go-build.sh
. "$root/scripts/lib/go-build.sh"

kube_version=$(version_of kube k8s.io/kubernetes)
etcd_version=$(version_of etcd go.etcd.io/etcd/server/v3)
helm_version=$(version_of helm helm.sh/helm/v3)
[ -n "$kube_version" ] && [ -n "$etcd_version" ] && [ -n "$helm_version" ] || { echo "cannot read tool versions" >&2; exit 1; }
kube_minor=$(echo "$kube_version" | cut -d. -f2)

mkdir -p "$cache/bin"

cv=k8s.io/component-base/version
build "kubernetes-$kube_version" kube \
  "-s -w -X $cv.gitVersion=$kube_version -X $cv.gitMajor=1 -X $cv.gitMinor=$kube_minor -X $cv.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$kube_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$kube_minor" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
build "etcd-$etcd_version" etcd "-s -w" go.etcd.io/etcd/server/v3
# As helm's release Makefile does: the Kubernetes version `helm template` and `helm lint` assume
# offline comes from the client-go helm is built with (unset, it would be 1.20 and the chart's
# kubeVersion constraint would refuse to render).
helm_k8s_minor=$(version_of helm k8s.io/client-go | cut -d. -f2)
[ -n "$helm_k8s_minor" ] || { echo "cannot read helm's client-go version" >&2; exit 1; }
helm_build="helm-$helm_version-k8s-1.$helm_k8s_minor"
hflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in chartutil lint/rules; do
  hflags="$hflags -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$helm_k8s_minor"
done
build "$helm_build" helm "$hflags" helm.sh/helm/v3/cmd/helm

# One stable directory of symlinks for the harness, keyed by all three versions.
link="$cache/bin/current-$kube_version-$etcd_version-$helm_build"
mkdir -p "$link"
ln -sf "$cache/bin/kubernetes-$kube_version/"{kube-apiserver,kube-controller-manager,kubectl} "$link/"
ln -sf "$cache/bin/etcd-$etcd_version/etcd" "$link/etcd"
ln -sf "$cache/bin/$helm_build/helm" "$link/helm"
echo "$link"
