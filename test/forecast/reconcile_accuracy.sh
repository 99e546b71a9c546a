#!/usr/bin/env bash
# Accuracy of forecast_reconcile per hierarchy level before and after each method, on a hold-out:
#   oj         Dominick's orange juice, store x brand -> brand -> total (weekly, last 12 weeks held out)
#   synthetic  generate_synthetic(): SKU x store -> SKU -> category -> total, and store -> region -> total
#              (a grouped structure; daily, last 14 days held out)
# Base forecasts: forecast_array with OPTS (default '{}' = the automatic choice); MinT residuals: one-step
# errors of forecast_backtest over the last ORIGINS (default 12) training periods, same options.
# Usage: bash test/forecast/reconcile_accuracy.sh [oj,synthetic]   (OPTS='{"model": "ets"}' ORIGINS=12)
set -euo pipefail
cd "$(dirname "$0")/../.."
sets=${1:-oj,synthetic}
data=${RETAIL_MID_DATA:-}
for d in "$data" ../shared/data ../../shared/data /work/shared/data; do
  [ -n "$d" ] && [ -f "$d/orange_juice_weekly.csv.gz" ] && { data=$(cd "$d" && pwd); break; }
done
if [ ! -f "$data/orange_juice_weekly.csv.gz" ]; then
  echo "SKIPPED: shared data is absent (set RETAIL_MID_DATA); only the synthetic hierarchy runs"
  sets=${sets//oj/}
fi
[ -f tmp_install/usr/share/postgresql/15/extension/retail_mid.control ] || { make -s >/dev/null && make -s install DESTDIR="$PWD/tmp_install" >/dev/null; }
export REC_SETS=$sets REC_DATA=$data REC_OPTS=${OPTS:-'{}'} REC_ORIGINS=${ORIGINS:-12}
RETAIL_MID_DESTDIR=$PWD/tmp_install bash test/with_cluster.sh bash -c 'psql -X -q -v ON_ERROR_STOP=1 \
  -v sets="$REC_SETS" -v data="$REC_DATA" -v opts="$REC_OPTS" -v origins="$REC_ORIGINS" -f test/forecast/reconcile_accuracy.sql'
