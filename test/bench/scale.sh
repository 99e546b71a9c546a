#!/usr/bin/env bash
# Scale benchmark (issue 13): the same steps at several sizes of synthetic history, each figure as a ratio against
# the smallest size, so that growth per size is visible (goals: the one-day refresh flat, ≤ 1.2× from the smallest
# to the largest size; every step at most linear in lines; dead tuples after 30 daily refreshes < 5 % of live rows).
# Each size runs test/bench/scale.sql in a fresh database (dropped afterwards). Writes scale.csv and scale.svg (the
# curve) under $RESULTS_DIR (default results/scale, not committed).
# Usage: bash test/bench/scale.sh [lines ...]     or     make bench BENCH=scale [SIZES="1000000 3000000"]
#        (default 1000000 3000000 10000000; EVENTS=true adds the generator's behaviour events; DAILY=n daily
#        refreshes instead of 30)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || read -r -a sizes <<<"${SIZES:-1000000 3000000 10000000}"
if [ -z "${REPORT_ONLY:-}" ] && { [ -z "${PGHOST:-}" ] || [ -z "${RETAIL_MID_DESTDIR:-}" ]; }; then
  make -s >/dev/null && rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
  RETAIL_MID_DESTDIR="$PWD/tmp_install" exec bash test/with_cluster.sh bash "$0" "${sizes[@]}"
fi
out=${RESULTS_DIR:-$PWD/results/scale}
mkdir -p "$out"
csv=$out/scale.csv
# REPORT_ONLY=1: no run, only the ratios and the picture of an existing $out/scale.csv (rows of several runs merged)
if [ -z "${REPORT_ONLY:-}" ]; then
echo "lines_target,dwd_lines,load_s,first_build_s,refresh_1day_s,refresh_1day_max_s,rfm_s,tags_s,audience_s,audience_members,table_mb,index_mb,dead_pct,dead_pct_history,refresh_dwd_s,refresh_dws_s,refresh_metric_s,daily_refreshes,load_average" >"$csv"
for n in "${sizes[@]}"; do
  db=scale_$n
  dropdb --if-exists "$db" >/dev/null; createdb "$db"
  echo "== $n order lines (database $db), started $(date -u +%H:%M:%S)" >&2
  row=$(psql -X -q -d "$db" -v lines="$n" -v events="${EVENTS:-false}" -v daily="${DAILY:-30}" -f test/bench/scale.sql | tail -1)
  echo "$row,$(cut -d' ' -f1 /proc/loadavg)" >>"$csv"
  echo "   $row" >&2
  dropdb "$db"
done
fi
# ratios against the smallest size, and the picture
python3 - "$csv" "$out/scale.svg" <<'PY'
import csv, sys
rows = sorted(csv.DictReader(open(sys.argv[1])), key=lambda r: float(r["dwd_lines"]))
if not rows:
    sys.exit("no rows")
base = rows[0]
steps = [("load_s", "load"), ("first_build_s", "first full build"), ("refresh_1day_s", "one-day refresh"),
         ("rfm_s", "RFM"), ("tags_s", "tag evaluation"), ("audience_s", "audience"), ("table_mb", "table size"),
         ("index_mb", "index size")]
def ratio(r, k):
    try:
        return float(r[k]) / float(base[k]) if float(base[k]) > 0 else float("nan")
    except ValueError:
        return float("nan")
print("\nper size, as a ratio against the smallest (%s lines):" % base["dwd_lines"])
print("%-18s" % "figure" + "".join("%14s" % r["dwd_lines"] for r in rows))
print("%-18s" % "lines" + "".join("%14.2f" % ratio(r, "dwd_lines") for r in rows))
for k, name in steps:
    print("%-18s" % name + "".join("%14.2f" % ratio(r, k) for r in rows))
print("%-18s" % "dead % (all)" + "".join("%14s" % r["dead_pct"] for r in rows))
print("%-18s" % "dead % (DWD/DWS)" + "".join("%14s" % r["dead_pct_history"] for r in rows))
for k in ("refresh_1day_s", "refresh_dwd_s", "refresh_dws_s", "refresh_metric_s"):
    print("%-18s" % (k + " s") + "".join("%14s" % r.get(k, "") for r in rows))
last = rows[-1]
print("\none-day refresh, largest / smallest: %.2fx (goal <= 1.2x; %s vs %s lines)"
      % (ratio(last, "refresh_1day_s"), last["dwd_lines"], base["dwd_lines"]))
# SVG: x = lines ratio, y = each step's time ratio; the dashed diagonal is linear growth
W, H, L, B, T, R = 720, 440, 60, 50, 30, 200
xs = [ratio(r, "dwd_lines") for r in rows]
ymax = max([max(xs)] + [ratio(r, k) for r in rows for k, _ in steps if ratio(r, k) == ratio(r, k)]) * 1.05
xmax = max(xs) * 1.05
px = lambda x: L + (x / xmax) * (W - L - R)
py = lambda y: H - B - (y / ymax) * (H - B - T)
colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<text x="%d" y="18" font-size="14">retail_mid scale benchmark: each figure / its value at %s lines</text>' % (L, base["dwd_lines"]),
       '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, W - R, H - B),
       '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, L, T),
       '<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>' % (px(0), py(0), px(min(xmax, ymax)), py(min(xmax, ymax))),
       '<text x="%d" y="%d" text-anchor="middle">order lines (ratio to the smallest size)</text>' % ((L + W - R) // 2, H - 12),
       '<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">ratio to the smallest size</text>' % ((H - B + T) // 2, (H - B + T) // 2)]
for i in range(0, int(ymax) + 1, max(1, int(ymax) // 8)):
    svg.append('<text x="%d" y="%.1f" text-anchor="end">%d</text>' % (L - 6, py(i) + 4, i))
for r, x in zip(rows, xs):
    svg.append('<text x="%.1f" y="%d" text-anchor="middle">%.1f (%.2fM)</text>' % (px(x), H - B + 16, x, float(r["dwd_lines"]) / 1e6))
for c, (k, name) in zip(colours, steps):
    pts = [(px(x), py(ratio(r, k))) for r, x in zip(rows, xs) if ratio(r, k) == ratio(r, k)]
    svg.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, " ".join("%.1f,%.1f" % p for p in pts)))
    svg += ['<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (p[0], p[1], c) for p in pts]
for j, (c, (k, name)) in enumerate(zip(colours, steps)):
    y = T + 20 + 18 * j
    svg.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>' % (W - R + 12, y, W - R + 32, y, c, W - R + 38, y + 4, name))
svg.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999" stroke-dasharray="4 3"/><text x="%d" y="%d">linear growth</text>' % (W - R + 12, T + 20 + 18 * len(steps), W - R + 32, T + 20 + 18 * len(steps), W - R + 38, T + 24 + 18 * len(steps)))
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
print("wrote %s and %s" % (sys.argv[1], sys.argv[2]))
PY
