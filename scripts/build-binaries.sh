#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl), the real
# node's kubelet, kube-scheduler and kube-proxy, helm and
# promtool (checks the chart's alerting rules) from Go modules through the module proxy, and caches
# them outside the clone, keyed by version.
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
promtool_version=$(version_of promtool github.com/prometheus/prometheus)
[ -n "$kube_version" ] && [ -n "$etcd_version" ] && [ -n "$helm_version" ] && [ -n "$promtool_version" ] || { echo "cannot read tool versions" >&2; exit 1; }
kube_minor=$(echo "$kube_version" | cut -d. -f2)

mkdir -p "$cache/bin"

cv=k8s.io/component-base/version
kube_ldflags() {
  echo "-s -w -X $cv.gitVersion=$kube_version -X $cv.gitMajor=1 -X $cv.gitMinor=$kube_minor -X $cv.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$kube_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$kube_minor"
}
build "kubernetes-$kube_version" kube "$(kube_ldflags)" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
# The node's binaries apart, so that a cache filled before they were added is not rebuilt.
build "kubernetes-node-$kube_version" kube "$(kube_ldflags)" \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
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
# Prometheus tags its Go module v0.3MM.P for release 3.MM.P; promtool --version reports the latter.
prom_release=$(echo "$promtool_version" | sed -E 's/^v0\.3([0-9]{2})\.([0-9]+).*/3.\1.\2/; s/^3\.0?/3./')
pv=github.com/prometheus/common/version
# remove_all_sd leaves out Prometheus' service discovery plugins (the cloud SDKs): rule checks do
# not use them, and without them a cold build takes about 4.5 min on 2 cores instead of 15 or more.
build "promtool-$promtool_version-nosd" promtool \
  "-s -w -X $pv.Version=$prom_release -X $pv.Branch=HEAD -X $pv.BuildUser=readygate" \
  -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool

# One stable directory of symlinks for the harness, keyed by all four versions.
link="$cache/bin/current-$kube_version-$etcd_version-$helm_build-promtool-$promtool_version-nosd"
mkdir -p "$link"
ln -sf "$cache/bin/kubernetes-$kube_version/"{kube-apiserver,kube-controller-manager,kubectl} "$link/"
ln -sf "$cache/bin/kubernetes-node-$kube_version/"{kubelet,kube-scheduler,kube-proxy} "$link/"
ln -sf "$cache/bin/etcd-$etcd_version/etcd" "$link/etcd"
ln -sf "$cache/bin/$helm_build/helm" "$link/helm"
ln -sf "$cache/bin/promtool-$promtool_version-nosd/promtool" "$link/promtool"
echo "$link"
