#!/usr/bin/env bash
# Per-series diagnosis of retail_mid's ETS against R's ets() on M1: the model each side chooses, its AICc on
# both sides, where the choice or the fit differs, and the series where our MASE is much worse than R's.
# Usage: bash test/forecast/m1_diag.sh [sample]   (sample as in compare_r.sh; R_CACHE=dir keeps R's fits between runs
#        and is shared with compare_r.sh: either script reuses the other's R forecasts for M1)
set -euo pipefail
cd "$(dirname "$0")/../.."
sample=${1:-0}
data=${RETAIL_MID_DATA:-}
for d in "$data" ../shared/data ../../shared/data /work/shared/data; do
  [ -n "$d" ] && [ -f "$d/m1.csv.gz" ] && { data=$(cd "$d" && pwd); break; }
done
[ -f "$data/m1.csv.gz" ] || { echo "SKIPPED: shared data is absent (set RETAIL_MID_DATA)"; exit 0; }
Rscript -e 'library(forecast)' >/dev/null 2>&1 || { echo "SKIPPED: R's forecast package is not installed"; exit 0; }
[ -f tmp_install/usr/share/postgresql/15/extension/retail_mid.control ] || { make -s >/dev/null && make -s install DESTDIR="$PWD/tmp_install" >/dev/null; }
out=${R_CACHE:-$(mktemp -d /tmp/retail_mid_diag.XXXXXX)}; mkdir -p "$out"; chmod 755 "$out"
if [ -n "${R_CACHE:-}" ] && [ -f "$out/r_m1_fit.csv" ] && [ "$(cat "$out/r_m1_sample" 2>/dev/null)" = "$sample" ]; then
  echo "R fits reused from $out"
else
  nice Rscript test/forecast/m1_diag.R "$data" "$out" "$sample"
fi
export CMP_OUT=$out CMP_DATA=$data
RETAIL_MID_DESTDIR=$PWD/tmp_install bash test/with_cluster.sh bash -c 'psql -X -q -v ON_ERROR_STOP=1 \
  -v out="$CMP_OUT" -v data="$CMP_DATA" -f test/forecast/m1_diag.sql'
[ -n "${R_CACHE:-}" ] || rm -rf "$out"
