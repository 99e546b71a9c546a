#!/usr/bin/env bash
# Speed of retail_mid.forecast against R's forecast::ets() per series, on the same series in one run:
#  1. Dominick's orange juice: every store x brand weekly series (zero-filled, horizon 12, frequency 52, which
#     both sides treat as non-seasonal: ets() ignores seasonality above 24); ours: all series, R: a random sample.
#  2. Synthetic daily demand, two years, horizon 28, weekly season: SYN_SERIES series are generated; ours forecasts
#     a random sample of OUR_SAMPLE of them, R a sample of R_SAMPLE (the 2-core machine cannot fit all 30,000 with
#     the full ETS search in a bounded run; per-series times are compared and the full-set time extrapolated).
# Prints seconds per series for both and the ratio R / retail_mid. Usage:
#   bash test/bench/forecast_speed.sh            (env: SYN_SERIES=30000 OUR_SAMPLE=300 R_SAMPLE=20 OJ_R_SAMPLE=100)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${RETAIL_MID_DATA:-}
for d in "$data" ../shared/data ../../shared/data /work/shared/data; do
  [ -n "$d" ] && [ -f "$d/orange_juice_weekly.csv.gz" ] && { data=$(cd "$d" && pwd); break; }
done
[ -f "$data/orange_juice_weekly.csv.gz" ] || { echo "SKIPPED: shared data is absent (set RETAIL_MID_DATA)"; exit 0; }
Rscript -e 'library(forecast)' >/dev/null 2>&1 || { echo "SKIPPED: R's forecast is not installed (bash test/forecast/compare_r.sh installs it)"; exit 0; }
[ -f tmp_install/usr/share/postgresql/15/extension/retail_mid.control ] || { make -s >/dev/null && make -s install DESTDIR="$PWD/tmp_install" >/dev/null; }
export SYN_SERIES=${SYN_SERIES:-30000} OUR_SAMPLE=${OUR_SAMPLE:-300} R_SAMPLE=${R_SAMPLE:-20} OJ_R_SAMPLE=${OJ_R_SAMPLE:-100}
out=$(mktemp -d /tmp/retail_mid_speed.XXXXXX); chmod 777 "$out"; export BENCH_OUT=$out BENCH_DATA=$data
RETAIL_MID_DESTDIR=$PWD/tmp_install bash test/with_cluster.sh bash -c 'psql -X -q -v ON_ERROR_STOP=1 -v out="$BENCH_OUT" \
  -v data="$BENCH_DATA" -v syn="$SYN_SERIES" -v our_sample="$OUR_SAMPLE" -v r_sample="$R_SAMPLE" -v oj_r_sample="$OJ_R_SAMPLE" \
  -f test/bench/forecast_speed.sql' | tee "$out/ours.txt"
cat > "$out/r.R" <<'R'
suppressMessages(library(forecast))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1]); h <- as.integer(a[2]); f <- as.integer(a[3])
g <- split(d$value, d$series)
t0 <- proc.time()
for (y in g) invisible(forecast(ets(ts(y, frequency = f)), h = h))
t1 <- proc.time() - t0
cat(sprintf("R %d %.3f %.3f\n", length(g), t1[["elapsed"]], t1[["user.self"]] + t1[["sys.self"]]))
R
for set in oj:12:52 syn:28:7; do
  IFS=: read -r name h f <<<"$set"
  r=$(Rscript "$out/r.R" "$out/r_$name.csv" "$h" "$f" 2>/dev/null | grep '^R ')
  read -r _ rn rs rcpu <<<"$r"
  read -r _ _ on os <<<"$(grep "^OURS $name " "$out/ours.txt")"
  awk -v n="$name" -v rn="$rn" -v rs="$rs" -v rc="$rcpu" -v on="$on" -v os="$os" 'BEGIN {
    printf "%s: R ets()+forecast() %.4f s/series elapsed (%d series, %.1f s elapsed, %.1f s CPU); retail_mid %.4f s/series elapsed (%d series, %.1f s); ratio R/retail_mid = %.1fx\n",
      n, rs/rn, rn, rs, rc, os/on, on, os, (rs/rn)/(os/on) }'
done
rm -rf "$out"
