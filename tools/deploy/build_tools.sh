#!/usr/bin/env bash
# Build the tools the install's tests run for real (helm, kustomize, promtool, prometheus) from the Go module
# proxy, once: cached in ${KUBETRAIN_CACHE:-~/.cache/kubetrain}/tools, like the conformance builds.
# They check deploy/ only; the product never depends on Go.
#
# Usage: tools/deploy/build_tools.sh        prints the bin dir as its last line (progress: stderr)
# A no-op when every tool of the pinned version is there. Env: KUBETRAIN_BUILD_NICE (10),
# GOMAXPROCS (2). Versions: the newest the module proxy serves that build with this machine's Go
# (kustomize v5.8.3 asks for go >= 1.27.0; v5.8.1 builds with go 1.26).
set -euo pipefail

TOOLS=(
  "helm helm.sh/helm/v4/cmd/helm v4.3.2"
  "kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.8.1"
  "promtool github.com/prometheus/prometheus/cmd/promtool v0.316.0"
  "prometheus github.com/prometheus/prometheus/cmd/prometheus v0.316.0"
)

ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/tools"
BIN="$ROOT/bin"
mkdir -p "$BIN"
command -v go >/dev/null || { echo "build_tools.sh: 'go' not on PATH" >&2; exit 2; }
export GOPATH="$ROOT/gopath" GOMODCACHE="$ROOT/gomodcache" GOCACHE="$ROOT/gocache" GOBIN="$BIN"
export GOFLAGS="${GOFLAGS:--trimpath}" GOMAXPROCS="${GOMAXPROCS:-2}" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
NICE=(nice -n "${KUBETRAIN_BUILD_NICE:-10}")

for entry in "${TOOLS[@]}"; do
  read -r name pkg version <<<"$entry"
  stamp="$BIN/.$name-$version"
  if [[ -x "$BIN/$name" && -f "$stamp" ]]; then
    echo "build_tools.sh: $name $version already built" >&2
    continue
  fi
  start=$SECONDS
  echo "build_tools.sh: go install $pkg@$version" >&2
  "${NICE[@]}" go install "$pkg@$version" >&2
  rm -f "$BIN"/."$name"-*
  touch "$stamp"
  echo "build_tools.sh: $name $version built in $((SECONDS - start)) s" >&2
done
echo "$BIN"
