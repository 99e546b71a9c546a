#!/usr/bin/env bash
# A bounded sqlsmith run over retail_mid (issue 19), inside test/with_cluster.sh: random queries over the extension's
# schema, as a non-superuser retail_mid_admin member, fixed seed. Counts server crashes (a backend killed by a signal)
# and SQLSTATE XX000 from the server log; fails if either is not zero. Usage: sqlsmith.sh [max-queries] [seed]
set -euo pipefail
max=${1:-5000}; seed=${2:-19}
db=retail_mid_sqlsmith
log="$PGHOST/server.log"
command -v sqlsmith >/dev/null || { echo "sqlsmith: not installed (Debian package sqlsmith); skipped"; exit 0; }
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d $db <<SQL
SET client_min_messages = warning;
CREATE EXTENSION retail_mid CASCADE;
DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'smith_admin') THEN CREATE ROLE smith_admin LOGIN IN ROLE retail_mid_admin; END IF; END\$\$;
ALTER ROLE smith_admin SET statement_timeout = '5s';
ALTER ROLE smith_admin SET search_path = retail_mid, public;
SELECT retail_mid.generate_synthetic(seed => 19, customers => 200, days => 40, orders_per_day => 20, stores => 3, skus => 50, start_date => '2024-01-01') > 0 AS loaded;
ALTER SYSTEM SET log_line_prefix = '%m [%p] %e ';
SELECT pg_reload_conf();
SQL
sleep 1
start=$(wc -c <"$log")
t0=$(date +%s)
set +e
sqlsmith --target="host=$PGHOST port=$PGPORT dbname=$db user=smith_admin" --seed="$seed" --max-queries="$max" \
  --exclude-catalog --verbose >"$PGHOST/sqlsmith.out" 2>"$PGHOST/sqlsmith.err"
rc=$?
set -e
tail -c +$((start + 1)) "$log" >"$PGHOST/sqlsmith.server.log"
keep=${RETAIL_MID_TORTURE_LOG:-$PWD/torture_logs}; mkdir -p "$keep"; cp "$PGHOST/sqlsmith.server.log" "$PGHOST/sqlsmith.err" "$keep/" 2>/dev/null || true
# XX000 raised by PostGIS's own functions on junk geometry text (sqlsmith calls them too: they live in schema
# public) and by core PostgreSQL's typmod output functions called directly with junk typmods (elog in core) are not
# retail_mid's: they are reported apart, by message; every other XX000 and any crash fails the run.
set +e
/usr/bin/python3 - "$PGHOST/sqlsmith.server.log" "$max" "$seed" "$rc" "$(( $(date +%s) - t0 ))" <<'PY'
import collections, re, sys
log, mx, seed, rc, secs = sys.argv[1:]
postgis = re.compile(r'invalid geometry|Invalid hex character|GML|geometry|lwgeom|GEOS|SRID|geography|WKB|WKT|GeoJSON|KML|'
                     r'box2d|box3d|raster|topology|postgis|parse error|Unknown .*type|cannot be represented|invalid \w+ typmod', re.I)
classes, ours, theirs, crashes = collections.Counter(), [], collections.Counter(), 0
for line in open(log, errors='replace'):
    m = re.match(r'\S+ \S+ \S+ \[\d+\] (\w{5}) +(ERROR|FATAL|PANIC): +(.*)', line)
    if 'terminated by signal' in line or 'was terminated by exception' in line:
        crashes += 1
    if not m:
        continue
    code, msg = m.group(1), m.group(3)
    classes[code[:2]] += 1
    if code == 'XX000':
        (theirs.__setitem__(msg, theirs[msg] + 1) if postgis.search(msg) else ours.append(msg))
print('sqlsmith: %s queries (seed %s) as smith_admin in %ss, exit %s; server errors %d; XX000 %d (retail_mid or other %d, '
      'PostGIS or core PostgreSQL on junk input %d); crashes %d' % (mx, seed, secs, rc, sum(classes.values()), len(ours) + sum(theirs.values()),
      len(ours), sum(theirs.values()), crashes))
for c, n in classes.most_common():
    print('  class %s: %d' % (c, n))
for msg, n in theirs.most_common():
    print('  not retail_mid (PostGIS/core) XX000 x%d: %s' % (n, msg))
for msg in ours[:40]:
    print('  XX000: %s' % msg)
sys.exit(1 if ours or crashes or rc != '0' else 0)
PY
st=$?
[ $st -eq 0 ] || tail -20 "$PGHOST/sqlsmith.err"
exit $st
