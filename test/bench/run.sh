#!/usr/bin/env bash
# Runs one benchmark (test/bench/NAME.sql or NAME.sh) on a throw-away cluster with the installed build.
# Usage: make bench BENCH=dws [LINES=10000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${1:-dws}
bash test/deps.sh
make -s clean >/dev/null; make -s >/dev/null   # a clean build: the test suite leaves objects built with assertions
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
export RETAIL_MID_DESTDIR="$PWD/tmp_install"
if [ -f "test/bench/$name.sh" ]; then
  exec bash test/with_cluster.sh bash "test/bench/$name.sh"
fi
exec bash test/with_cluster.sh psql -X -v lines="${LINES:-}" -v cte_edges="${CTE_EDGES:-}" -f "test/bench/$name.sql"
