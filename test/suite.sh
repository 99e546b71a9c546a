#!/usr/bin/env bash
# Runs inside test/with_cluster.sh: the layout check of the install script, pg_regress over test/sql/*.sql, then the TAP
# tests in test/t, then one summary line. A test that could not run (the shared data absent) counts as skipped, not
# passed: a regression test says so with a line 'SKIPPED: …' in its output, a TAP test with 'ok N # skip'.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
# layout: no source file of the install script uses an object a later one creates (one test)
if python3 test/layout/install_order.py; then passed=$((passed + 1)); echo "ok - layout/install_order"
else failed=$((failed + 1)); echo "not ok - layout/install_order"; fi
make -s installcheck >regress.log 2>&1
rc=$?
cat regress.log
p=$(grep -cE '\.\.\. ok' regress.log || true)
f=$(grep -cE '\.\.\. (FAILED|failed)' regress.log || true)
[ $rc -eq 0 ] || [ "$f" -gt 0 ] || f=1
s=0
for out in results/*.out; do
  [ -f "$out" ] || continue
  t=$(basename "$out" .out)
  if grep -q '^SKIPPED:' "$out" && grep -qE "^test $t +\.\.\. ok" regress.log; then
    echo "skipped: $t ($(grep -m1 '^SKIPPED:' "$out"))"; s=$((s + 1))
  fi
done
passed=$((passed + p - s)); failed=$((failed + f)); skipped=$((skipped + s))
if [ -f regression.diffs ] && [ "$f" -gt 0 ]; then echo "--- regression.diffs"; head -n 400 regression.diffs; fi
if ls test/t/*.t >/dev/null 2>&1; then
  prove -v test/t/ 2>&1 | tee prove.log
  tp=$(grep -cE '^ok ' prove.log || true); tf=$(grep -cE '^not ok ' prove.log || true)
  ts=$(grep -ciE '^ok [0-9]+ *(- .*)?# skip' prove.log || true)
  passed=$((passed + tp - ts)); failed=$((failed + tf)); skipped=$((skipped + ts))
  grep -q '^Result: PASS' prove.log || [ "$tf" -gt 0 ] || failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
