#!/usr/bin/env bash
# Writes the dashboard: one self-contained HTML page (charts for every tile, a map of the site candidates) from the
# dash_* views of the database psql connects to (PGHOST, PGPORT, PGDATABASE ...). The chart library, Apache ECharts,
# is installed from npm into build/dashboard/npm (not committed) and inlined, so the page opens offline.
# Usage: bash test/dashboard/build.sh [output.html] [brand]      (default build/dashboard/retail_mid_dashboard.html)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build/dashboard/retail_mid_dashboard.html}
brand=${2:-}
npmdir=$root/build/dashboard/npm
lib=$npmdir/node_modules/echarts/dist/echarts.min.js
if [ ! -f "$lib" ]; then
  command -v npm >/dev/null || { echo "dashboard: npm is missing (apt-get install npm)" >&2; exit 2; }
  mkdir -p "$npmdir"
  npm install --prefix "$npmdir" --no-audit --no-fund --loglevel=error echarts@5 >&2
fi
mkdir -p "$(dirname "$out")"
args=(-X -q -A -t -v ON_ERROR_STOP=1)
[ -n "$brand" ] && args+=(-v brand="$brand")
json=$(mktemp); trap 'rm -f "$json"' EXIT
psql "${args[@]}" -f "$root/test/dashboard/data.json.sql" >"$json"
python3 - "$root/test/dashboard/page.html" "$lib" "$json" "$out" <<'PY'
import sys, json
page, lib, data, out = sys.argv[1:]
d = json.load(open(data))                      # validates the JSON
payload = json.dumps(d).replace('</', '<\\/')
html = open(page, encoding='utf-8').read()
html = html.replace('/*ECHARTS*/', open(lib, encoding='utf-8').read().replace('</script', '<\\/script'))
html = html.replace('/*DATA*/null', payload)
open(out, 'w', encoding='utf-8').write(html)
PY
echo "dashboard: $out ($(wc -c <"$out") bytes)" >&2
