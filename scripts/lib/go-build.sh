# Shared by scripts/build-binaries.sh and scripts/build-bench-peers.sh (sourced, not run):
# building Go tools modules into a cache outside the clone. Needs $root and $cache set.

# go.mod and go.sum are committed: build exactly what they pin.
export CGO_ENABLED=0 GOFLAGS=-mod=readonly

# version_of <tools-dir> <module>: the version the committed tools go.mod requires.
version_of() { sed -nE "s#^(require)?[[:space:]]*$2 (v[^ ]+).*#\2#p" "$root/tools/$1/go.mod" | head -n1; }

# build <cache-subdir> <tools-dir> <ldflags> <pkg...>: builds into a temp dir, then renames it into
# place so an interrupted build never leaves a half-filled cache entry behind.
build() {
  local dest="$cache/bin/$1" dir="$root/tools/$2" ldflags="$3"; shift 3
  if [ -f "$dest/.complete" ]; then echo "cached: $dest" >&2; return; fi
  mkdir -p "$cache/bin"
  local tmp; tmp=$(mktemp -d "$cache/bin/.build.XXXXXX")
  echo "building $(basename "$dest") ..." >&2
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "$@")
  echo "built $(basename "$dest") in $((SECONDS - start)) s" >&2
  # etcd's main package is its server module's root, which go names "server".
  if [ -x "$tmp/server" ]; then mv "$tmp/server" "$tmp/etcd"; fi
  chmod 755 "$tmp"
  touch "$tmp/.complete"
  rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$tmp" "$dest"
}
