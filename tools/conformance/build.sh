#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager for the conformance test tier from the Go
# module proxy (no Kubernetes source is vendored or committed).
#
# Why: the conformance tier runs kubetrain's HTTP-level API tests against a real kube-apiserver.
# k8s.io/kubernetes cannot be `go install`-ed (replace directives to ./staging), so we generate a
# wrapper module that pins every staging module at its published v0.X.Y (gen_wrapper_gomod.py).
#
# Usage: tools/conformance/build.sh [VERSION]       (default v1.36.3; env KUBETRAIN_K8S_VERSION)
# Output: $ROOT/bin/{kube-apiserver,kube-controller-manager}, where
#         ROOT=${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/k8s-VERSION
#         GOPATH, GOMODCACHE and GOCACHE live under ROOT too, so CI can cache ROOT as one folder.
# A no-op (exit 0, prints the bin dir) when both binaries exist. Prints the bin dir on stdout as
# its last line; progress goes to stderr. Env: KUBETRAIN_BUILD_NICE (default 10),
# GOMAXPROCS (default 2), KUBETRAIN_BUILD_TIMING=1 to wrap the build in /usr/bin/time -v.
set -euo pipefail

VERSION="${1:-${KUBETRAIN_K8S_VERSION:-v1.36.3}}"
case "$VERSION" in
  v1.*) ;;
  *) echo "build.sh: VERSION '$VERSION' must be a Kubernetes tag like v1.36.3" >&2; exit 2 ;;
esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/k8s-$VERSION"
BIN="$ROOT/bin"
WRAPPER="$ROOT/wrapper"
COMMANDS=(kube-apiserver kube-controller-manager)

have_all=1
for cmd in "${COMMANDS[@]}"; do [[ -x "$BIN/$cmd" ]] || have_all=0; done
if [[ $have_all == 1 ]]; then
  echo "build.sh: $VERSION already built in $BIN" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: 'go' not on PATH (need Go >= the go line of k8s.io/kubernetes $VERSION)" >&2; exit 2; }

export GOPATH="$ROOT/gopath" GOMODCACHE="$ROOT/gomodcache" GOCACHE="$ROOT/gocache"
export GOFLAGS="${GOFLAGS:--trimpath} -mod=mod" GOMAXPROCS="${GOMAXPROCS:-2}" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$BIN" "$WRAPPER" "$GOPATH" "$GOMODCACHE" "$GOCACHE"
NICE=(nice -n "${KUBETRAIN_BUILD_NICE:-10}")

cd "$WRAPPER"
if [[ ! -f go.mod ]]; then
  echo "build.sh: fetching go.mod of k8s.io/kubernetes@$VERSION" >&2
  # A throwaway module so `go mod download` has somewhere to run.
  printf 'module kubetrain.local/probe\n\ngo 1.24\n' > go.mod
  gomod="$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || { echo "build.sh: the module proxy did not serve k8s.io/kubernetes@$VERSION" >&2; rm -f go.mod; exit 1; }
  python3 "$HERE/gen_wrapper_gomod.py" --kubernetes-gomod "$gomod" --version "$VERSION" > go.mod.new
  mv go.mod.new go.mod
  rm -f go.sum
fi

echo "build.sh: go mod tidy ($(go version))" >&2
"${NICE[@]}" go mod tidy >&2

pkgs=()
for cmd in "${COMMANDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
echo "build.sh: go build ${pkgs[*]} -> $BIN (GOMAXPROCS=$GOMAXPROCS)" >&2
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$VERSION -X k8s.io/client-go/pkg/version.gitVersion=$VERSION"
build=("${NICE[@]}" go build -p "$GOMAXPROCS" -ldflags "$LDFLAGS" -o "$BIN/" "${pkgs[@]}")
if [[ "${KUBETRAIN_BUILD_TIMING:-0}" == 1 && -x /usr/bin/time ]]; then
  /usr/bin/time -v "${build[@]}" 2> >(tee "$ROOT/build-time.txt" >&2)
else
  "${build[@]}" >&2
fi
for cmd in "${COMMANDS[@]}"; do
  [[ -x "$BIN/$cmd" ]] || { echo "build.sh: $BIN/$cmd missing after go build" >&2; exit 1; }
done
echo "$BIN"
