#!/usr/bin/env bash
# Speed of retail_mid.forecast against R's forecast::ets() per series, on the same series in one run:
#  1. Dominick's orange juice: every store x brand weekly series (zero-filled, horizon 12, frequency 52, which
#     both sides treat as non-seasonal: ets() ignores seasonality above 24); ours: all 913 series (aggregate,
#     one core), R: a random sample of OJ_R_SAMPLE.
#  2. A deterministic synthetic daily set of SYN_SERIES series (two years, horizon 28, weekly season); ours:
#     the first n series for each n of SCALE (forecast_array in a parallel scan, 2 workers) and, with FULL=1,
#     all SYN_SERIES series in batches of 1,000; R: a random sample of R_SAMPLE series of the whole set.
# Both sides are timed in elapsed and in CPU seconds (ours: backend + parallel workers, read from /proc; R:
# user + system of its process). Prints seconds per series and the ratios R / retail_mid. Usage:
#   bash test/bench/forecast_speed.sh   (env: SYN_SERIES=30000 SCALE=750,1500,3000 FULL=0 R_SAMPLE=20 OJ_R_SAMPLE=100)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${RETAIL_MID_DATA:-}
for d in "$data" ../shared/data ../../shared/data /work/shared/data; do
  [ -n "$d" ] && [ -f "$d/orange_juice_weekly.csv.gz" ] && { data=$(cd "$d" && pwd); break; }
done
[ -f "$data/orange_juice_weekly.csv.gz" ] || { echo "SKIPPED: shared data is absent (set RETAIL_MID_DATA)"; exit 0; }
Rscript -e 'library(forecast)' >/dev/null 2>&1 || { echo "SKIPPED: R's forecast is not installed (bash test/forecast/compare_r.sh installs it)"; exit 0; }
[ -f tmp_install/usr/share/postgresql/15/extension/retail_mid.control ] || { make -s >/dev/null && make -s install DESTDIR="$PWD/tmp_install" >/dev/null; }
export SYN_SERIES=${SYN_SERIES:-30000} SCALE=${SCALE:-750,1500,3000} FULL=${FULL:-0} R_SAMPLE=${R_SAMPLE:-20} OJ_R_SAMPLE=${OJ_R_SAMPLE:-100}
out=$(mktemp -d /tmp/retail_mid_speed.XXXXXX); chmod 777 "$out"; export BENCH_OUT=$out BENCH_DATA=$data
RETAIL_MID_DESTDIR=$PWD/tmp_install bash test/with_cluster.sh bash -c 'psql -X -q -v ON_ERROR_STOP=1 -v out="$BENCH_OUT" \
  -v data="$BENCH_DATA" -v syn="$SYN_SERIES" -v scale="$SCALE" -v full="$FULL" -v r_sample="$R_SAMPLE" -v oj_r_sample="$OJ_R_SAMPLE" \
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
  grep "^OURS $name" "$out/ours.txt" | while read -r _ label on os oc; do
    awk -v n="$label" -v rn="$rn" -v rs="$rs" -v rc="$rcpu" -v on="$on" -v os="$os" -v oc="$oc" 'BEGIN {
      printf "%s: R ets()+forecast() %.4f s/series elapsed, %.4f s/series CPU (%d series, %.1f s, %.1f s CPU); retail_mid %.4f s/series elapsed, %.4f s/series CPU (%d series, %.1f s, %.1f s CPU); ratio R/retail_mid = %.1fx elapsed, %.1fx CPU\n",
        n, rs/rn, rc/rn, rn, rs, rc, os/on, oc/on, on, os, oc, (rs/rn)/(os/on), (rc/rn)/(oc/on) }'
  done
done
echo "scaling (2 workers): $(grep '^OURS syn_scale' "$out/ours.txt" | awk '{ printf "%s%d series %.1f s (%.4f s/series elapsed, %.4f s/series CPU)", (NR > 1 ? "; " : ""), $3, $4, $4/$3, $5/$3 }')"
rm -rf "$out"
