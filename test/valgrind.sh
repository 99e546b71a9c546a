#!/usr/bin/env bash
# Regression tests with every backend under valgrind memcheck: invalid reads and writes, use of uninitialised
# values and bad frees in retail_mid's C code (PostgreSQL's memory contexts hide palloc-level leaks from
# valgrind, so leaks across calls are checked by the contexts themselves, not here). Slow (20-50x): by default
# the tests that exercise the C code most; pass test names to choose. Reports only errors with a frame in
# retail_mid.so (Debian's postgres is not built for valgrind, so its own start-up noise is ignored).
# Usage: bash test/valgrind.sh [test names...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh valgrind libipc-run-perl
tests=${*:-"bitmap audience_bsi forecast forecast_metrics replenish rfm clv quality oneid site site_batch promo"}
make -s >/dev/null
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
log=$(mktemp -d /tmp/retail_mid_vg.XXXXXX); chmod 777 "$log"
rc=0
RETAIL_MID_DESTDIR="$PWD/tmp_install" RETAIL_MID_VALGRIND="$log" bash test/with_cluster.sh make -s installcheck REGRESS="$tests" || rc=$?
# an error block is the lines from "==pid== <message>" to the blank "==pid== " line; keep those naming retail_mid.so
awk 'FNR == 1 { blk = "" } /^==[0-9]+== *$/ { if (blk ~ /retail_mid\.so/) { print blk; n++ } blk = ""; next } { blk = blk $0 "\n" }
     END { if (blk ~ /retail_mid\.so/) { print blk; n++ } exit n > 0 }' "$log"/vg.* > "$log/report" || true
if [ -s "$log/report" ]; then
  echo "--- valgrind errors in retail_mid.so ($log)"; head -n 200 "$log/report"; exit 1
fi
echo "valgrind: no error in retail_mid.so over: $tests (suite exit status $rc)"
exit $rc
