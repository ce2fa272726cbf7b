#!/usr/bin/env bash
# Build (once) the real kube-apiserver and etcd that the live tests run against, and print
# the two binaries' paths as shell assignments:
#
#   KUBEZT_APISERVER=/…/kube-apiserver-v1.36.3
#   KUBEZT_ETCD=/…/etcd-v3.6.8
#
# Sources: the k8s.io/kubernetes Go module at the release pinned in
# scripts/testenv/apiserver/go.mod (its staging modules replaced by the matching v0.x tags)
# and go.etcd.io/etcd/server/v3 at the release pinned in scripts/testenv/etcd/go.mod, both
# checked by their go.sum. Binaries are cached in ${KUBEZT_CACHE_DIR:-$HOME/.cache/kubezt}/bin
# under a name carrying the release and a hash of the pin files, so a later run (or a fresh
# clone on the same machine) reuses them in well under a second; with the Go module and build
# caches warm a rebuild takes about a minute. The first build on two cores takes the time
# README states.
#
# Usage: bash scripts/testenv.sh [--check]
#   --check   only report whether cached binaries exist (exit 1 if not); never build.
# Environment: KUBEZT_APISERVER / KUBEZT_ETCD, when set to executables, are used as they are.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${KUBEZT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubezt}/bin"
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

pin_version() { # module path, go.mod → version
  awk -v m="$1" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$2"
}
pin_hash() { # dir → short hash of its go.mod and go.sum
  cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-12
}

build() { # name, module dir, package, version, ldflags
  local name="$1" dir="$2" pkg="$3" version="$4" ldflags="$5"
  local out="$cache/$name-$version-$(pin_hash "$dir")"
  if [ ! -x "$out" ]; then
    if [ "$check_only" = 1 ]; then
      echo "missing: $out" >&2
      return 1
    fi
    command -v go >/dev/null || { echo "scripts/testenv.sh: Go is not installed" >&2; exit 3; }
    mkdir -p "$cache"
    echo "building $name $version (cached afterwards in $cache) ..." >&2
    local start=$SECONDS
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly nice -n 10 \
      go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp.$$" "$pkg")
    mv -f "$out.tmp.$$" "$out"
    echo "built $name in $((SECONDS - start))s" >&2
  fi
  printf '%s\n' "$out"
}

k8s_version="$(pin_version k8s.io/kubernetes "$here/testenv/apiserver/go.mod")"
etcd_version="$(pin_version go.etcd.io/etcd/server/v3 "$here/testenv/etcd/go.mod")"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ver_pkg=k8s.io/component-base/version
k8s_ldflags="-X $ver_pkg.gitVersion=$k8s_version -X $ver_pkg.gitMajor=1 -X $ver_pkg.gitMinor=$minor"
k8s_ldflags="$k8s_ldflags -X $ver_pkg.gitTreeState=clean"

if [ -n "${KUBEZT_ETCD:-}" ] && [ -x "$KUBEZT_ETCD" ]; then
  etcd="$KUBEZT_ETCD"
else
  etcd="$(build etcd "$here/testenv/etcd" go.etcd.io/etcd/server/v3 "$etcd_version" "")"
fi
if [ -n "${KUBEZT_APISERVER:-}" ] && [ -x "$KUBEZT_APISERVER" ]; then
  apiserver="$KUBEZT_APISERVER"
else
  apiserver="$(build kube-apiserver "$here/testenv/apiserver" \
    k8s.io/kubernetes/cmd/kube-apiserver "$k8s_version" "$k8s_ldflags")"
fi
printf 'KUBEZT_APISERVER=%s\nKUBEZT_ETCD=%s\n' "$apiserver" "$etcd"
