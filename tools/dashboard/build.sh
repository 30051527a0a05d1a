#!/usr/bin/env bash
# Build the dashboard's page: dashboard/ui (sources) -> dashboard/static (the committed bundle).
#
#   tools/dashboard/build.sh
#
# Needs Node.js >= 18 and npm. Runs `npm ci` in dashboard/ui (esbuild and uPlot, pinned by
# package-lock.json), bundles src/main.js into app.js and app.css (minified, no source maps,
# no external references), copies index.html, and writes BUILD.json with the sha256 of the
# sources, which tests/dashboard/test_bundle.py recomputes to catch a stale bundle. Users and
# CI need no Node.js: the bundle is committed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ui="$root/dashboard/ui"
out="$root/dashboard/static"
tmp="$root/dashboard/.static.tmp"

cd "$ui"
npm ci --no-audit --no-fund --loglevel=error
esbuild="$ui/node_modules/.bin/esbuild"

rm -rf "$tmp"
mkdir -p "$tmp"
# One entry: main.js imports app.css and uPlot's CSS, so esbuild writes app.css beside app.js.
# uPlot's MIT notice: named in a banner, its license text in THIRD_PARTY_LICENSES.txt.
uplot="$(node -p "require('./node_modules/uplot/package.json').version")"
banner="/* kubetrain dashboard; includes uPlot $uplot (c) Leon Sorokin, MIT License: THIRD_PARTY_LICENSES.txt */"
"$esbuild" src/main.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --charset=utf8 --log-level=warning --outfile="$tmp/app.js" \
  --banner:js="$banner" --banner:css="$banner"
{
  echo "The dashboard's page (app.js, app.css) includes uPlot $uplot, https://github.com/leeoniya/uPlot:"
  echo
  cat node_modules/uplot/LICENSE
} > "$tmp/THIRD_PARTY_LICENSES.txt"
# index.html: the shell; indentation and comments dropped.
sed -e 's/^[[:space:]]*//' -e '/^$/d' src/index.html > "$tmp/index.html"

# BUILD.json. The sources' hash: sha256 over "<sha256 of file>  <path>\n" for package.json,
# package-lock.json and every file under src/, paths relative to dashboard/ui, sorted bytewise
# (tests/dashboard/test_bundle.py computes the same in Python).
node --input-type=module - "$ui" "$tmp/BUILD.json" "$("$esbuild" --version)" <<'JS'
import {createHash} from 'node:crypto';
import {readFileSync, readdirSync, writeFileSync, statSync} from 'node:fs';
import {join} from 'node:path';
const [ui, target, esbuildVersion] = process.argv.slice(2);
const walk = (dir) => readdirSync(join(ui, dir)).flatMap((name) => {
  const rel = `${dir}/${name}`;
  return statSync(join(ui, rel)).isDirectory() ? walk(rel) : [rel];
});
const paths = ['package.json', 'package-lock.json', ...walk('src')]
  .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
const files = {};
let listing = '';
for (const path of paths) {
  files[path] = createHash('sha256').update(readFileSync(join(ui, path))).digest('hex');
  listing += `${files[path]}  ${path}\n`;
}
// The bundle's own files too: a hand edit of the bundle is caught like a stale one.
const outDir = join(target, '..');
const outputs = {};
for (const name of readdirSync(outDir).filter((n) => n !== 'BUILD.json').sort()) {
  outputs[name] = createHash('sha256').update(readFileSync(join(outDir, name))).digest('hex');
}
const build = {
  sources_sha256: createHash('sha256').update(listing).digest('hex'),
  command: 'tools/dashboard/build.sh',
  esbuild: esbuildVersion,
  files,
  outputs,
};
writeFileSync(target, JSON.stringify(build, null, 2) + '\n');
JS

rm -rf "$out"
mv "$tmp" "$out"
cd "$out"
echo "dashboard/static built:"
for f in index.html app.js app.css BUILD.json THIRD_PARTY_LICENSES.txt; do
  printf '  %-25s %7d bytes  (%d gzipped)\n' "$f" "$(wc -c < "$f")" "$(gzip -9c < "$f" | wc -c)"
done
