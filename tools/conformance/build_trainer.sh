#!/usr/bin/env bash
# Build the reference Kubeflow Trainer v2 controller manager
# (github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager) from the Go module proxy, so that
# tools/conformance/compare_trainer.py and tests/conformance/test_trainer_reference.py can compare
# the JobSets it builds for a TrainJob with the ones kubetrain builds.
#
# Why a wrapper module: the proxy serves only v2.0.0 of github.com/kubeflow/trainer/v2, and
# `go install module/cmd@version` needs the `@v/list` of some modules that the proxy answers 403
# for (as with JobSet, see build_jobset.sh). A throwaway module `go get`s the exact version, which
# resolves every dependency by its exact version, and `go build`s the command. Nothing of Trainer
# is vendored or committed: only this script. Its manifests (CRDs, runtimes, webhook
# configurations) come from the same module zip, left in GOMODCACHE.
#
# NOTE: kubetrain implements Trainer v2.3.0's API; v2.0.0 is older (see compare_trainer.py for the
# differences that follow from that).
#
# It also compiles Trainer's own end-to-end suite (the module's test/e2e, Ginkgo) into
# $ROOT/bin/trainer-e2e.test, which tests/e2e/test_trainer_upstream_e2e.py runs against
# kubetrain's TrainJob controller.
#
# Usage: tools/conformance/build_trainer.sh [VERSION]   (default v2.0.0; env KUBETRAIN_TRAINER_VERSION)
# Output: $ROOT/bin/trainer-controller-manager, $ROOT/bin/trainer-e2e.test and $ROOT/module (a link
#         to the module's source: manifests/base/...),
#         ROOT=${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/trainer-VERSION;
#         GOPATH, GOMODCACHE and GOCACHE live under ROOT (the build cache is removed after the build).
#         A no-op (exit 0) when all three exist. Prints ROOT on stdout as its last line; progress goes to
#         stderr. Env: KUBETRAIN_BUILD_NICE (default 10), GOMAXPROCS (default 2). 3 min 31 s with
#         GOMAXPROCS=1 and nice 15 on a shared 2-core machine (2026-12; cold caches, module
#         downloads included); leaves ~0.45 GB (43 MB binary, the rest the module cache).
#         Every dependency of v2.0.0 is served by exact version (sigs.k8s.io/jobset v0.8.2 and
#         sigs.k8s.io/scheduler-plugins v0.30.6 included), so no replace or GOFLAGS workaround.
set -euo pipefail

VERSION="${1:-${KUBETRAIN_TRAINER_VERSION:-v2.0.0}}"
case "$VERSION" in
  v2.*) ;;
  *) echo "build_trainer.sh: VERSION '$VERSION' must be a Trainer v2 tag like v2.0.0" >&2; exit 2 ;;
esac

ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/trainer-$VERSION"
BIN="$ROOT/bin"
EXE="$BIN/trainer-controller-manager"
E2E="$BIN/trainer-e2e.test"
MODULE=github.com/kubeflow/trainer/v2
PKG="$MODULE/cmd/trainer-controller-manager"
if [[ -x "$EXE" && -x "$E2E" && -d "$ROOT/module/manifests/base/crds" ]]; then
  echo "build_trainer.sh: $VERSION already built: $EXE" >&2
  echo "$ROOT"
  exit 0
fi

command -v go >/dev/null || { echo "build_trainer.sh: 'go' not on PATH (need Go >= 1.24)" >&2; exit 2; }
export GOPATH="$ROOT/gopath" GOMODCACHE="$ROOT/gomodcache" GOCACHE="$ROOT/gocache"
export GOFLAGS="${GOFLAGS:--trimpath} -mod=mod" GOMAXPROCS="${GOMAXPROCS:-2}" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
WRAPPER="$ROOT/wrapper"
mkdir -p "$BIN" "$GOPATH" "$GOMODCACHE" "$GOCACHE" "$WRAPPER"
NICE=(nice -n "${KUBETRAIN_BUILD_NICE:-10}")

cd "$WRAPPER"
printf 'module kubetrain.local/trainerbuild\n\ngo 1.24\n' > go.mod
rm -f go.sum
echo "build_trainer.sh: go get $PKG@$VERSION ($(go version))" >&2
"${NICE[@]}" go get "$PKG@$VERSION" >&2
if [[ ! -x "$EXE" ]]; then
  echo "build_trainer.sh: go build $PKG -> $EXE (GOMAXPROCS=$GOMAXPROCS)" >&2
  "${NICE[@]}" go build -p "$GOMAXPROCS" -ldflags "-s -w" -o "$EXE" "$PKG" >&2
  [[ -x "$EXE" ]] || { echo "build_trainer.sh: $EXE missing after go build" >&2; exit 1; }
fi
if [[ ! -x "$E2E" ]]; then
  # Ginkgo and Gomega at the versions Trainer's go.mod names (the module graph resolves them).
  echo "build_trainer.sh: go test -c $MODULE/test/e2e -> $E2E" >&2
  "${NICE[@]}" go test -c -p "$GOMAXPROCS" -ldflags "-s -w" -o "$E2E" "$MODULE/test/e2e" >&2
  [[ -x "$E2E" ]] || { echo "build_trainer.sh: $E2E missing after go test -c" >&2; exit 1; }
fi
src="$GOMODCACHE/$MODULE@$VERSION"
[[ -d "$src/manifests/base/crds" ]] || { echo "build_trainer.sh: $src/manifests/base/crds missing from the module zip" >&2; exit 1; }
ln -sfn "$src" "$ROOT/module"
rm -rf "$GOCACHE"
echo "$ROOT"
