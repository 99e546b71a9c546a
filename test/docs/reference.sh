#!/usr/bin/env bash
# Regenerates docs/reference.md from the catalog of a freshly built and installed retail_mid (private install
# directory, throw-away cluster), and prints on stderr the objects that have no COMMENT.
# Usage: bash test/docs/reference.sh        (then python3 test/docs/check_links.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
# name <TAB> area <TAB> file of every object the SQL sources create, so the reference groups objects by area
map=$(mktemp /tmp/retail_mid_srcmap.XXXXXX); trap 'rm -f "$map"' EXIT
for f in src/*/*.sql; do
  area=$(basename "$(dirname "$f")")
  { grep -oiE '^\s*CREATE\s+(OR\s+REPLACE\s+)?(UNLOGGED\s+)?(FUNCTION|PROCEDURE|AGGREGATE|TABLE|VIEW|MATERIALIZED\s+VIEW|TYPE|DOMAIN)\s+(IF\s+NOT\s+EXISTS\s+)?retail_mid\."?[A-Za-z0-9_]+' "$f" || true; } \
    | sed -E 's/.*retail_mid\."?//' | awk -v a="$area" -v f="$f" '{ printf "%s\t%s\t%s\n", $0, a, f }'
done | awk -F'\t' '!seen[$1]++' >"$map"
chmod a+r "$map"
make -s >/dev/null
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
RETAIL_MID_DESTDIR="$PWD/tmp_install" bash test/with_cluster.sh \
  psql -X -q -A -t -v srcmap="$map" -f test/docs/reference.sql >docs/reference.md.new
mv docs/reference.md.new docs/reference.md
echo "docs/reference.md: $(wc -l <docs/reference.md) lines" >&2
