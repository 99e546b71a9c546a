#!/usr/bin/env bash
# The regression suite against a build of retail_mid with UndefinedBehaviorSanitizer (signed overflow, shifts,
# misaligned access, out-of-bounds indexing of fixed-size arrays, invalid enum/bool values, NULL passed where
# not allowed, float-to-int overflow) and assertions on. UBSan's runtime is linked into retail_mid.so itself, so
# Debian's uninstrumented postgres needs nothing preloaded. AddressSanitizer is not used: its runtime has to be
# preloaded into the server, and Debian's postgres 15 binary hangs at start-up with it (even `postgres -V`).
# Usage: bash test/sanitize.sh [test names...]   (the whole suite by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh libipc-run-perl
make -s clean >/dev/null
flags="-fsanitize=undefined -fsanitize=float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -DUSE_ASSERT_CHECKING"
make -s PG_CFLAGS="$flags -Wno-unused-parameter -Wno-sign-compare" PG_LDFLAGS="-fsanitize=undefined" >/dev/null
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
# after the run, so that the next ordinary build does not reuse instrumented objects (the suite's layout check
# reads the generated install script, which make clean removes)
trap 'make -s clean >/dev/null' EXIT
export RETAIL_MID_DESTDIR="$PWD/tmp_install"
# the first finding aborts the backend: pg_regress reports the crash and the report lands in the log files
log=$(mktemp -d /tmp/retail_mid_ubsan.XXXXXX); chmod 777 "$log"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$log/ubsan"
rc=0
if [ $# -gt 0 ]; then
  bash test/with_cluster.sh make -s installcheck REGRESS="$*" || rc=$?
else
  bash test/with_cluster.sh bash test/suite.sh || rc=$?
fi
if ls "$log"/ubsan.* >/dev/null 2>&1; then
  echo "--- UBSan reports"; for f in "$log"/ubsan.*; do echo "== $f"; head -n 40 "$f"; done
  exit 1
fi
echo "UBSan: no report (suite exit status $rc)"
exit $rc
