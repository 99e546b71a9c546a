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
xx=$(grep -c ' XX000 ' "$PGHOST/sqlsmith.server.log" || true)
crash=$(grep -cE 'terminated by signal|was terminated by exception' "$PGHOST/sqlsmith.server.log" || true)
errors=$(grep -cE ' [0-9A-Z]{5} +ERROR: ' "$PGHOST/sqlsmith.server.log" || true)
echo "sqlsmith: $max queries (seed $seed) as smith_admin in $(( $(date +%s) - t0 ))s, exit $rc; server errors $errors, XX000 $xx, crashes $crash"
grep -oE ' [0-9A-Z]{5} +ERROR: ' "$PGHOST/sqlsmith.server.log" | awk '{print substr($1,1,2)}' | sort | uniq -c | sort -rn | awk '{printf "  class %s: %s\n", $2, $1}'
if [ "$xx" -gt 0 ] || [ "$crash" -gt 0 ] || [ $rc -ne 0 ]; then
  grep -A2 -E ' XX000 |terminated by signal' "$PGHOST/sqlsmith.server.log" | head -40
  tail -20 "$PGHOST/sqlsmith.err"
  exit 1
fi
