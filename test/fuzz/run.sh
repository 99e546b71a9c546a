#!/usr/bin/env bash
# Fuzzes with libFuzzer + ASan + UBSan (not part of `make test`).
# Usage: test/fuzz/run.sh [runs] [target]   runs defaults to 10000000; target is tagexpr (the tag-expression
# parser, default) or rbitmap (the rbitmap binary-input validator plus CRoaring's deserialiser).
# Needs clang and libclang-rt-dev (Debian: clang-14, libclang-rt-14-dev) and libroaring-dev.
# New interesting inputs go to a scratch copy of the corpus, not into the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=${1:-10000000}
target=${2:-tagexpr}
CC=${CC:-$(command -v clang-14 || command -v clang)}
work=$(mktemp -d /tmp/retail_mid_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
case "$target" in
  tagexpr)
    "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -I"$root/src" "$here/fuzz_tagexpr.c" "$root/src/tags/tagexpr_parse.c" -o "$work/fuzz"
    cp -r "$here/corpus" "$work/corpus"
    extra=(-max_len=4096 "-dict=$here/tagexpr.dict") ;;
  rbitmap)
    "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -I"$root/src" "$here/fuzz_rbitmap.c" "$root/src/bitmap/rbitmap_format.c" -lroaring -o "$work/fuzz"
    cp -r "$here/corpus_rbitmap" "$work/corpus"
    extra=(-max_len=65536) ;;
  *) echo "unknown target $target (tagexpr or rbitmap)"; exit 2 ;;
esac
cd "$work"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ./fuzz -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" corpus 2>&1 \
  | tee fuzz.log | grep -E '^(#[0-9]+ *(INIT|DONE|pulse)|stat::|Done|==|SUMMARY|INFO: Loaded)' || true
if grep -q '^Done ' fuzz.log && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' fuzz.log; then
  echo "fuzz $target: OK, $(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' fuzz.log) runs, no crash, leak or timeout"
else
  trap - EXIT
  echo "fuzz $target: FAILED (log kept: $work/fuzz.log)"
  exit 1
fi
