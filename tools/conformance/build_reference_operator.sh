#!/usr/bin/env bash
# Build the reference Go operator (Kubeflow Training Operator v1, cmd/training-operator.v1) from the
# Go module proxy, as the baseline system of `kubetrain bench burst --systems reference`.
#
# Why: kubetrain reimplements Training Operator v1; the bench compares it with the real thing
# against the same API server. No Kubeflow source is vendored or committed: only this script.
# github.com/kubeflow/training-operator v1.9.x has no replace directives, so a plain
# `go install module/cmd@version` works (no wrapper module needed, unlike k8s.io/kubernetes).
# Fallback: if the proxy does not serve the training-operator tag, github.com/kubeflow/trainer@VERSION
# is tried (as of 2026-11 the proxy answers 403 "not available" for every kubeflow/trainer v1.9.x).
#
# Usage: tools/conformance/build_reference_operator.sh [VERSION]
#        (default v1.9.3; env KUBETRAIN_REFERENCE_VERSION; v1.9.1 is NOT usable: it has no sum.golang.org entry)
# Output: $ROOT/bin/training-operator.v1, ROOT=${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/
#         training-operator-VERSION; GOPATH, GOMODCACHE and GOCACHE live under ROOT.
# A no-op (exit 0) when the binary exists. Prints the binary's path on stdout as its last line;
# progress goes to stderr. Env: KUBETRAIN_BUILD_NICE (default 10), GOMAXPROCS (default 2).
set -euo pipefail

VERSION="${1:-${KUBETRAIN_REFERENCE_VERSION:-v1.9.3}}"
case "$VERSION" in
  v1.9.*) ;;
  *) echo "build_reference_operator.sh: VERSION '$VERSION' must be a v1.9.x training-operator tag" >&2; exit 2 ;;
esac

ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/training-operator-$VERSION"
BIN="$ROOT/bin"
EXE="$BIN/training-operator.v1"
if [[ -x "$EXE" ]]; then
  echo "build_reference_operator.sh: $VERSION already built: $EXE" >&2
  echo "$EXE"
  exit 0
fi

command -v go >/dev/null || { echo "build_reference_operator.sh: 'go' not on PATH (need Go >= 1.23)" >&2; exit 2; }
export GOPATH="$ROOT/gopath" GOMODCACHE="$ROOT/gomodcache" GOCACHE="$ROOT/gocache" GOBIN="$BIN"
export GOFLAGS="${GOFLAGS:--trimpath}" GOMAXPROCS="${GOMAXPROCS:-2}" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$BIN" "$GOPATH" "$GOMODCACHE" "$GOCACHE"
NICE=(nice -n "${KUBETRAIN_BUILD_NICE:-10}")

built=""
for module in github.com/kubeflow/training-operator github.com/kubeflow/trainer; do
  target="$module/cmd/training-operator.v1@$VERSION"
  echo "build_reference_operator.sh: go install $target -> $BIN ($(go version), GOMAXPROCS=$GOMAXPROCS)" >&2
  if "${NICE[@]}" go install -p "$GOMAXPROCS" -ldflags "-s -w" "$target" >&2; then
    built="$target"
    break
  fi
  echo "build_reference_operator.sh: 'go install $target' failed (above); trying the next module path" >&2
done
[[ -n "$built" && -x "$EXE" ]] || { echo "build_reference_operator.sh: no module path served $VERSION; see errors above" >&2; exit 1; }
echo "$EXE"
