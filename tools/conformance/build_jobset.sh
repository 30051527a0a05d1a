#!/usr/bin/env bash
# Build JobSet's controller manager (sigs.k8s.io/jobset, main package at the module root) from the
# Go module proxy, for the conformance tier's JobSet tests (issue 17: the same JobSet tests on the
# embedded cluster and next to the real JobSet controller on a real control plane).
#
# Why a wrapper module: `go install sigs.k8s.io/jobset@v0.12.0` fails before building
# ("loading deprecation for sigs.k8s.io/jobset: .../@v/list: 403 Forbidden": the proxy does not
# serve the module's version list), but it serves the exact-version zips. So a throwaway module
# `go get`s the exact version, which resolves every dependency by its exact version, and
# `go build`s the package. Nothing of JobSet is vendored or committed: only this script. Its
# manifests (CRDs, webhook configurations) come from the same module zip, left in GOMODCACHE.
#
# Usage: tools/conformance/build_jobset.sh [VERSION]   (default v0.12.0; env KUBETRAIN_JOBSET_VERSION)
# Output: $ROOT/bin/jobset and $ROOT/module (a link to the module's source: config/components/...),
#         ROOT=${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/jobset-VERSION; GOPATH,
#         GOMODCACHE and GOCACHE live under ROOT (the build cache is removed after the build).
#         A no-op (exit 0) when both exist. Prints ROOT on stdout as its last line; progress goes
#         to stderr. Env: KUBETRAIN_BUILD_NICE (default 10), GOMAXPROCS (default 2). About
#         2 minutes on 2 cores; leaves ~0.36 GB.
set -euo pipefail

VERSION="${1:-${KUBETRAIN_JOBSET_VERSION:-v0.12.0}}"
case "$VERSION" in
  v0.*) ;;
  *) echo "build_jobset.sh: VERSION '$VERSION' must be a JobSet tag like v0.12.0" >&2; exit 2 ;;
esac

ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/jobset-$VERSION"
BIN="$ROOT/bin"
EXE="$BIN/jobset"
if [[ -x "$EXE" && -d "$ROOT/module/config/components/crd" ]]; then
  echo "build_jobset.sh: $VERSION already built: $EXE" >&2
  echo "$ROOT"
  exit 0
fi

command -v go >/dev/null || { echo "build_jobset.sh: 'go' not on PATH" >&2; exit 2; }
export GOPATH="$ROOT/gopath" GOMODCACHE="$ROOT/gomodcache" GOCACHE="$ROOT/gocache"
export GOFLAGS="${GOFLAGS:--trimpath} -mod=mod" GOMAXPROCS="${GOMAXPROCS:-2}" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
WRAPPER="$ROOT/wrapper"
mkdir -p "$BIN" "$GOPATH" "$GOMODCACHE" "$GOCACHE" "$WRAPPER"
NICE=(nice -n "${KUBETRAIN_BUILD_NICE:-10}")

cd "$WRAPPER"
printf 'module kubetrain.local/jobsetbuild\n\ngo 1.25\n' > go.mod
rm -f go.sum
echo "build_jobset.sh: go get sigs.k8s.io/jobset@$VERSION ($(go version))" >&2
"${NICE[@]}" go get "sigs.k8s.io/jobset@$VERSION" >&2
echo "build_jobset.sh: go build sigs.k8s.io/jobset -> $EXE (GOMAXPROCS=$GOMAXPROCS)" >&2
"${NICE[@]}" go build -p "$GOMAXPROCS" -ldflags "-s -w" -o "$EXE" sigs.k8s.io/jobset >&2
[[ -x "$EXE" ]] || { echo "build_jobset.sh: $EXE missing after go build" >&2; exit 1; }
src="$GOMODCACHE/sigs.k8s.io/jobset@$VERSION"
[[ -d "$src/config/components/crd" ]] || { echo "build_jobset.sh: $src/config/components/crd missing from the module zip" >&2; exit 1; }
ln -sfn "$src" "$ROOT/module"
rm -rf "$GOCACHE"
echo "$ROOT"
