#!/usr/bin/env bash
# Probabilistic accuracy of every model family the forecast aggregate offers: interval coverage at 80 % and 95 %
# and the scaled pinball loss at the 10/50/90 % quantiles, on M1 (all 1,001 series, official horizons) and car
# parts (series of at least 24 months, last 12 held out; CP_SAMPLE series, default 800, taken in md5 order).
# The families are read from the aggregate itself (the hint of its "unknown model" error), so a model added to
# the `model` option is scored without editing this script; FAMILIES=ets,theta restricts the list.
# Usage: bash test/forecast/prob_accuracy.sh [m1,carparts]
set -euo pipefail
cd "$(dirname "$0")/../.."
sets=${1:-m1,carparts}
data=${RETAIL_MID_DATA:-}
for d in "$data" ../shared/data ../../shared/data /work/shared/data; do
  [ -n "$d" ] && [ -f "$d/m1.csv.gz" ] && { data=$(cd "$d" && pwd); break; }
done
[ -f "$data/m1.csv.gz" ] || { echo "SKIPPED: shared data is absent (set RETAIL_MID_DATA)"; exit 0; }
[ -f tmp_install/usr/share/postgresql/15/extension/retail_mid.control ] || { make -s >/dev/null && make -s install DESTDIR="$PWD/tmp_install" >/dev/null; }
export PA_SETS=$sets PA_DATA=$data PA_FAMILIES=${FAMILIES:-} PA_CP_SAMPLE=${CP_SAMPLE:-800}
RETAIL_MID_DESTDIR=$PWD/tmp_install bash test/with_cluster.sh bash -c 'psql -X -q -v ON_ERROR_STOP=1 \
  -v sets="$PA_SETS" -v data="$PA_DATA" -v families="$PA_FAMILIES" -v cp_sample="$PA_CP_SAMPLE" -f test/forecast/prob_accuracy.sql'
