#!/usr/bin/env bash
# Fuzzes the tag-expression parser with libFuzzer + ASan + UBSan (not part of `make test`).
# Usage: test/fuzz/run.sh [runs]   (default 10000000). Needs clang and libclang-rt-dev (Debian: clang-14,
# libclang-rt-14-dev). New interesting inputs go to a scratch copy of the corpus, not into the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-10000000}
CC=${CC:-$(command -v clang-14 || command -v clang)}
work=$(mktemp -d /tmp/retail_mid_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/src" "$here/fuzz_tagexpr.c" "$root/src/tagexpr_parse.c" -o "$work/fuzz_tagexpr"
cp -r "$here/corpus" "$work/corpus"
cd "$work"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ./fuzz_tagexpr -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -dict="$here/tagexpr.dict" corpus 2>&1 | tee fuzz.log | grep -E '^(#[0-9]+ *(INIT|DONE|pulse)|stat::|Done|==|SUMMARY|INFO: Loaded)' || true
grep -q '^Done ' fuzz.log && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' fuzz.log \
  && echo "fuzz: OK, $(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' fuzz.log) runs, no crash, leak or timeout" \
  || { echo "fuzz: FAILED (log: $work/fuzz.log kept)"; trap - EXIT; exit 1; }
