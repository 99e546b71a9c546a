#!/usr/bin/env bash
# The whole regression suite (pg_regress and the TAP tests) with retail_mid.so built with AddressSanitizer and
# UndefinedBehaviorSanitizer, and ASan's runtime preloaded into every server process: out-of-bounds reads and
# writes, use after free and double frees on malloc'd memory (CRoaring's containers, NLopt's work arrays), on the
# stack and in globals of our C code. Memory inside PostgreSQL's memory contexts is one malloc'd block to ASan, so
# overruns of a palloc'd chunk into its neighbour are not seen (that needs a PostgreSQL built with USE_VALGRIND).
# Leak detection is off: the postmaster keeps its memory until exit by design. Debian's postgres deadlocks in
# bindtextdomain() with libasan preloaded; test/asan_shim.c replaces it (messages stay in English).
# Usage: bash test/asan.sh [test names...]   (the whole suite by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh libipc-run-perl
libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "libasan not found (gcc's libasan8)"; exit 1; }
libasan=$(readlink -f "$libasan")
log=$(mktemp -d /tmp/retail_mid_asan.XXXXXX); chmod 777 "$log"
gcc -shared -fPIC -O2 -o "$log/asan_shim.so" test/asan_shim.c && chmod 755 "$log/asan_shim.so"
make -s clean >/dev/null
flags="-fsanitize=address -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DUSE_ASSERT_CHECKING"
make -s PG_CFLAGS="$flags -Wno-unused-parameter -Wno-sign-compare" PG_LDFLAGS="-fsanitize=address -fsanitize=undefined" >/dev/null
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
# after the run, so that the next ordinary build does not reuse instrumented objects (the suite's layout check
# reads the generated install script, which make clean removes)
trap 'make -s clean >/dev/null' EXIT
export RETAIL_MID_DESTDIR="$PWD/tmp_install" RETAIL_MID_ASAN="$libasan $log/asan_shim.so" RETAIL_MID_ASAN_LOG="$log"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$log/ubsan"
rc=0
if [ $# -gt 0 ]; then
  bash test/with_cluster.sh make -s installcheck REGRESS="$*" || rc=$?
else
  bash test/with_cluster.sh bash test/suite.sh || rc=$?
fi
if ls "$log"/asan.* "$log"/ubsan.* >/dev/null 2>&1; then
  echo "--- sanitizer reports ($log)"; for f in "$log"/asan.* "$log"/ubsan.*; do [ -f "$f" ] && { echo "== $f"; head -n 60 "$f"; }; done
  exit 1
fi
echo "ASan+UBSan: no report (suite exit status $rc)"
exit $rc
