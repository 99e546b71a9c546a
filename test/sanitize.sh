#!/usr/bin/env bash
# The regression suite against a build of retail_mid with AddressSanitizer and UndefinedBehaviorSanitizer.
# PostgreSQL itself is not instrumented, so the ASan runtime is preloaded into the server; it sees the extension's
# out-of-bounds accesses on malloc'd memory (every huge allocation: bitmaps, forecast and RFM buffers) and UBSan
# every undefined operation in the extension's code. Leak detection is off: PostgreSQL frees memory by context,
# not by free(), so leaks across calls are the memory contexts' business (see README, Memory).
# Usage: bash test/sanitize.sh [test names...]   (all tests by default). Prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh libipc-run-perl
asan=$(gcc -print-file-name=libasan.so)
[ -f "$asan" ] || { echo "libasan not found (gcc's sanitizer runtimes are part of build-essential's gcc)"; exit 1; }
make -s clean >/dev/null
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DUSE_ASSERT_CHECKING"
make -s PG_CFLAGS="$flags -Wno-unused-parameter -Wno-sign-compare" PG_LDFLAGS="-fsanitize=address,undefined" >/dev/null
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
make -s clean >/dev/null   # so that the next ordinary build does not reuse instrumented objects
export RETAIL_MID_DESTDIR="$PWD/tmp_install"
export LD_PRELOAD="$asan"
# abort on the first error so that pg_regress reports the crash and the log holds the report
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0:log_path=/tmp/retail_mid_asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=/tmp/retail_mid_ubsan"
rm -f /tmp/retail_mid_asan.* /tmp/retail_mid_ubsan.*
if [ $# -gt 0 ]; then
  bash test/with_cluster.sh make -s installcheck REGRESS="$*" || true
else
  bash test/with_cluster.sh bash test/suite.sh || true
fi
unset LD_PRELOAD
reports=$(ls /tmp/retail_mid_asan.* /tmp/retail_mid_ubsan.* 2>/dev/null || true)
if [ -n "$reports" ]; then
  echo "--- sanitizer reports"; for f in $reports; do echo "== $f"; head -n 40 "$f"; done
  exit 1
fi
echo "sanitizers: no report"
