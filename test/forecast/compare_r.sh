#!/usr/bin/env bash
# Accuracy of retail_mid.forecast against R's forecast 8.20 on the same series and horizons, side by side:
#   M1 (official horizons): mean MASE (seasonal-naive scale) and RMSSE (M5, lag 1) of our automatic choice vs ets();
#   car parts (series of >= 24 months, last 12 months held out): mean RMSSE and MASE (lag-1 scale) vs ets(),
#   croston() and naive().
# Installs r-cran-forecast with apt when it is missing and it can; otherwise prints SKIPPED and exits 0.
# Usage: bash test/forecast/compare_r.sh [m1|carparts|all] [sample]   (sample = number of random series, R and us alike, 0 or none = all;
#        CMP_OPTIONS='{...}' passes forecast options to our side, R_CACHE=dir keeps R's forecasts between runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
which_set=${1:-all}; sample=${2:-0}
data=${RETAIL_MID_DATA:-}
for d in "$data" ../shared/data ../../shared/data /work/shared/data; do
  [ -n "$d" ] && [ -f "$d/m1.csv.gz" ] && { data=$(cd "$d" && pwd); break; }
done
[ -f "$data/m1.csv.gz" ] || { echo "SKIPPED: shared data is absent (set RETAIL_MID_DATA)"; exit 0; }
if ! Rscript -e 'library(forecast)' >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-cran-forecast >/dev/null 2>&1 \
         && Rscript -e 'library(forecast)' >/dev/null 2>&1; }; then
    echo "SKIPPED: R's forecast package is not installed and could not be installed (apt-get install r-cran-forecast)"; exit 0
  fi
fi
[ -f tmp_install/usr/share/postgresql/15/extension/retail_mid.control ] || { make -s >/dev/null && make -s install DESTDIR="$PWD/tmp_install" >/dev/null; }
# R_CACHE=dir keeps R's forecasts there and reuses them on the next run with the same set and sample
out=${R_CACHE:-$(mktemp -d /tmp/retail_mid_cmp.XXXXXX)}; mkdir -p "$out"; chmod 755 "$out"
sets=(m1 carparts); [ "$which_set" = all ] || sets=("$which_set")
for s in "${sets[@]}"; do
  if [ -n "${R_CACHE:-}" ] && [ -f "$out/r_${s}_time.csv" ] && [ "$(cat "$out/r_${s}_sample" 2>/dev/null)" = "$sample" ]; then
    echo "R forecasts for $s reused from $out"; continue
  fi
  nice Rscript test/forecast/compare_r.R "$s" "$data" "$out" "$sample"; echo "$sample" > "$out/r_${s}_sample"
done
export CMP_OUT=$out CMP_DATA=$data CMP_SAMPLE=$sample CMP_SETS="${sets[*]}" CMP_OPTIONS=${CMP_OPTIONS:-'{}'}
RETAIL_MID_DESTDIR=$PWD/tmp_install bash test/with_cluster.sh bash -c 'psql -X -q -v ON_ERROR_STOP=1 \
  -v out="$CMP_OUT" -v data="$CMP_DATA" -v sample="$CMP_SAMPLE" -v sets="$CMP_SETS" -v opts="$CMP_OPTIONS" -f test/forecast/compare_r.sql'
[ -n "${R_CACHE:-}" ] || rm -rf "$out"
