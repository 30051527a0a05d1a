#!/usr/bin/env bash
# Build Kueue's controller manager (sigs.k8s.io/kueue/cmd/kueue) from the Go module proxy for the
# conformance tier's Kueue test (tests/conformance/test_kueue.py).
#
# Why: issue 16 asks that kubetrain be tried next to the real Kueue, not a stand-in: Kueue's webhook
# suspends kubeflow.org jobs on creation and its controller unsuspends them when a ClusterQueue
# admits their Workload. Nothing of Kueue is vendored or committed: only this script. The module has
# no replace directives, so a plain `go install module/cmd@version` works. Its manifests (CRDs,
# webhook configurations) come from the same module zip, left in GOMODCACHE by the install.
#
# Usage: tools/conformance/build_kueue.sh [VERSION]   (default v0.17.0, the version the proxy lists;
#        env KUBETRAIN_KUEUE_VERSION)
# Output: $ROOT/bin/kueue and $ROOT/module (a link to the module's source: config/components/...),
#         ROOT=${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/kueue-VERSION; GOPATH,
#         GOMODCACHE and GOCACHE live under ROOT. A no-op (exit 0) when both exist. Prints ROOT on
#         stdout as its last line; progress goes to stderr. Env: KUBETRAIN_BUILD_NICE (default 10),
#         GOMAXPROCS (default 2). About 3 minutes on 2 cores; leaves ~0.5 GB (binary and module cache).
set -euo pipefail

VERSION="${1:-${KUBETRAIN_KUEUE_VERSION:-v0.17.0}}"
case "$VERSION" in
  v0.*) ;;
  *) echo "build_kueue.sh: VERSION '$VERSION' must be a Kueue tag like v0.17.0" >&2; exit 2 ;;
esac

ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/kueue-$VERSION"
BIN="$ROOT/bin"
EXE="$BIN/kueue"
if [[ -x "$EXE" && -d "$ROOT/module/config/components/crd" ]]; then
  echo "build_kueue.sh: $VERSION already built: $EXE" >&2
  echo "$ROOT"
  exit 0
fi

command -v go >/dev/null || { echo "build_kueue.sh: 'go' not on PATH (need Go >= the go line of sigs.k8s.io/kueue $VERSION)" >&2; exit 2; }
export GOPATH="$ROOT/gopath" GOMODCACHE="$ROOT/gomodcache" GOCACHE="$ROOT/gocache" GOBIN="$BIN"
export GOFLAGS="${GOFLAGS:--trimpath} -mod=mod" GOMAXPROCS="${GOMAXPROCS:-2}" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$BIN" "$GOPATH" "$GOMODCACHE" "$GOCACHE"
NICE=(nice -n "${KUBETRAIN_BUILD_NICE:-10}")

target="sigs.k8s.io/kueue/cmd/kueue@$VERSION"
echo "build_kueue.sh: go install $target -> $BIN ($(go version), GOMAXPROCS=$GOMAXPROCS)" >&2
"${NICE[@]}" go install -p "$GOMAXPROCS" -ldflags "-s -w" "$target" >&2
[[ -x "$EXE" ]] || { echo "build_kueue.sh: $EXE missing after go install" >&2; exit 1; }
src="$GOMODCACHE/sigs.k8s.io/kueue@$VERSION"
[[ -d "$src/config/components/crd" ]] || { echo "build_kueue.sh: $src/config/components/crd missing from the module zip" >&2; exit 1; }
ln -sfn "$src" "$ROOT/module"
# The build cache is ~2 GB and only a rebuild would read it: keep the binary and the sources.
rm -rf "$GOCACHE"
echo "$ROOT"
