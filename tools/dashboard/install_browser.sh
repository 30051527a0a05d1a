#!/usr/bin/env bash
# Install the browser the dashboard's browser tests drive (tests/dashboard/browser): Debian's
# chromium and chromium-driver, with apt-get, when /usr/bin/chromium is missing. Idempotent and
# quiet; says what it did. Playwright (a dev extra) drives this Chromium through
# executable_path and never downloads a browser of its own.
#
#   tools/dashboard/install_browser.sh
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [[ -x "$CHROMIUM" ]]; then
  echo "install_browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) already at $CHROMIUM"
  exit 0
fi

if [[ "$(id -u)" == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install_browser: $CHROMIUM is missing and installing it needs root (or passwordless sudo):" >&2
  echo "  apt-get install chromium chromium-driver" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install_browser: $CHROMIUM is missing and this is no Debian/Ubuntu system (no apt-get);" >&2
  echo "  install Chromium so that $CHROMIUM runs it" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -qq \
  && "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install_browser: apt-get failed (above)" >&2
  exit 1
fi
echo "install_browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM (apt-get: chromium chromium-driver)"
