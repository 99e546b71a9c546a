#!/usr/bin/env bash
# Quality rule evaluation benchmark (see quality.sql): retail_mid.quality_evaluate against (a) one SQL query per
# rule and (b) all rules in one statement with FILTER clauses, same run, same table.
# Usage: bash test/bench/quality.sh [rows]      or      make bench BENCH=quality [LINES=rows]   (default 10,000,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-${LINES:-10000000}}
[ -n "$rows" ] || rows=10000000
if [ -n "${PGHOST:-}" ] && [ -n "${RETAIL_MID_DESTDIR:-}" ]; then
  # already inside test/with_cluster.sh (make bench)
  exec psql -X -v rows="$rows" -f test/bench/quality.sql
fi
make -s >/dev/null && rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
RETAIL_MID_DESTDIR="$PWD/tmp_install" bash test/with_cluster.sh psql -X -v rows="$rows" -f test/bench/quality.sql
