# The two base images scripts/build-image.sh passes to the Dockerfile, made on this machine from
# Debian's mirror and the npm registry (no container registry is needed). Sourced, not run; the
# content of this file is part of the bases' cache key, so any change here rebuilds them.
#   BUILD_IMAGE   stands in for node:24-bookworm-slim: Debian bookworm minbase, Node, npm.
#   RUNTIME_IMAGE stands in for gcr.io/distroless/nodejs24-debian12:nonroot: /nodejs/bin/node, the
#                 libraries Node links (glibc, libstdc++, libgcc-s), tzdata, netbase, the CA bundle,
#                 nonroot (65532) in /etc/passwd; no shell, no package manager.

DEBIAN_SUITE=bookworm
DEBIAN_MIRRORS=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# Harvested from the Debian root into the runtime image, as distroless's nodejs image has them.
RUNTIME_PACKAGES=(base-files netbase tzdata libc6 libgcc-s1 libstdc++6)
# npm for the build stage (the `node` npm package ships Node only); the version this lockfile was made with.
NPM_VERSION=11.19.1

# debian_root OUT.tar: a Debian minbase root with the CA bundle and tzdata, as a tarball.
debian_root() {
  mmdebstrap --variant=minbase --format=tar --include=ca-certificates,tzdata,netbase \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --aptopt='Acquire::Retries "3"' --quiet \
    "$DEBIAN_SUITE" "$1" "${DEBIAN_MIRRORS[@]}"
}

# build_rootfs DEBIAN_DIR NODE_TGZ NPM_TGZ: adds Node and npm under /usr/local, as the official node image has them.
build_rootfs() {
  local dir=$1
  tar -xzf "$2" -C "$dir/usr/local/bin" --strip-components=2 package/bin/node
  mkdir -p "$dir/usr/local/lib/node_modules/npm"
  tar -xzf "$3" -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
}

# runtime_rootfs DEBIAN_DIR OUT_DIR NODE_TGZ: the distroless layout, files copied from the Debian root.
runtime_rootfs() {
  local src=$1 out=$2 pkg
  mkdir -p "$out"
  # Merged /usr: keep the top-level symlinks (lib -> usr/lib, ...) so packaged paths resolve.
  for link in bin sbin lib lib64; do
    [ -L "$src/$link" ] && cp -a "$src/$link" "$out/" && mkdir -p "$out/$(readlink "$src/$link")"
  done
  mkdir -p "$out"/{etc,root,tmp,home/nonroot,var/lib/dpkg/status.d,nodejs/bin}
  for pkg in "${RUNTIME_PACKAGES[@]}"; do
    # Regular files and symlinks the package ships (directories are made as their parents).
    while IFS= read -r path; do
      [ -e "$src$path" ] || [ -L "$src$path" ] || continue
      [ -d "$src$path" ] && [ ! -L "$src$path" ] && continue
      case $path in /usr/share/lintian/* | /usr/share/gdb/* | /etc/update-motd.d/*) continue ;; esac
      printf '.%s\n' "$path"
    done <"$(ls "$src"/var/lib/dpkg/info/"$pkg".list "$src"/var/lib/dpkg/info/"$pkg":*.list 2>/dev/null | head -1)"
    # The package's dpkg status stanza, where scanners look for it in distroless images.
    awk -v p="$pkg" '/^Package: /{keep = ($2 == p)} keep' RS= ORS='\n\n' "$src/var/lib/dpkg/status" \
      >"$out/var/lib/dpkg/status.d/$pkg"
  done | tar -C "$src" --no-recursion -cf - -T - | tar -C "$out" --keep-directory-symlink -xf -
  # Maintainer-script products the runtime needs: the CA bundle and the default time zone.
  mkdir -p "$out/etc/ssl/certs"
  cp -L "$src/etc/ssl/certs/ca-certificates.crt" "$out/etc/ssl/certs/"
  cp -a "$src/etc/localtime" "$src/etc/timezone" "$out/etc/" 2>/dev/null || true
  cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$out/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' \
    >"$out/etc/nsswitch.conf"
  chmod 700 "$out/root" "$out/home/nonroot"
  chown 65532:65532 "$out/home/nonroot"
  chmod 1777 "$out/tmp"
  tar -xzf "$3" -C "$out/nodejs" --strip-components=1 package/bin/node package/LICENSE
}
