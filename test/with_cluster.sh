#!/usr/bin/env bash
# Runs a command against a throw-away PostgreSQL 15 cluster in a temporary directory (an equivalent of
# pg_virtualenv that several runs can use at once, as root or as an ordinary user). Exports PGHOST, PGPORT,
# PGUSER, PGDATABASE, and RETAIL_MID_DATA / RETAIL_MID_FIXTURES as paths the server can read.
# WITH_PG_CRON=1 preloads pg_cron (cron.database_name = $WITH_PG_CRON_DB, default postgres).
set -euo pipefail
BIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$BIN/initdb" ] || BIN=/usr/lib/postgresql/15/bin
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/retail_mid_pg.XXXXXX)
chmod 755 "$tmp"
run_as=()
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$tmp"; run_as=(runuser -u postgres --); fi
cleanup() {
  "${run_as[@]}" "$BIN/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${KEEP_CLUSTER:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
port=$(( 20000 + RANDOM % 20000 ))
while (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
"${run_as[@]}" "$BIN/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --locale=C >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log"; exit 1; }
cat >>"$tmp/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 8GB
fsync = off
synchronous_commit = off
full_page_writes = off
max_parallel_workers_per_gather = 2
max_worker_processes = 16
log_min_messages = warning
CONF
if [ -n "${WITH_PG_CRON:-}" ]; then
  # pg_cron (Debian postgresql-15-cron) preloaded, its jobs in the database named by WITH_PG_CRON_DB (default postgres)
  cat >>"$tmp/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_cron'
cron.database_name = '${WITH_PG_CRON_DB:-postgres}'
cron.use_background_workers = on
max_worker_processes = 32
CONF
fi
if [ -n "${RETAIL_MID_DESTDIR:-}" ]; then
  cp -r "$RETAIL_MID_DESTDIR" "$tmp/ext" && chmod -R a+rX "$tmp/ext"
  echo "extension_destdir = '$tmp/ext'" >>"$tmp/data/postgresql.conf"
fi
pg_ctl_opts=()
if [ -n "${RETAIL_MID_VALGRIND:-}" ]; then
  # every backend runs under valgrind memcheck (test/valgrind.sh); one log file per process
  mkdir -p "$RETAIL_MID_VALGRIND"; chmod 777 "$RETAIL_MID_VALGRIND"
  cat >"$tmp/postgres_vg" <<VG
#!/bin/sh
exec valgrind --quiet --error-limit=no --num-callers=30 --track-origins=yes --read-var-info=no \\
  --log-file=$RETAIL_MID_VALGRIND/vg.%p "$BIN/postgres" "\$@"
VG
  chmod 755 "$tmp/postgres_vg"; pg_ctl_opts=(-p "$tmp/postgres_vg" -t 300)
fi
if [ -n "${RETAIL_MID_ASAN:-}" ]; then
  # every server process runs with AddressSanitizer's runtime preloaded (test/asan.sh); RETAIL_MID_ASAN holds the
  # LD_PRELOAD list and RETAIL_MID_ASAN_LOG the directory for the reports (one file per process)
  cat >"$tmp/postgres_asan" <<AS
#!/bin/sh
LD_PRELOAD="$RETAIL_MID_ASAN" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$RETAIL_MID_ASAN_LOG/asan" \
  exec "$BIN/postgres" "\$@"
AS
  chmod 755 "$tmp/postgres_asan"; pg_ctl_opts=(-p "$tmp/postgres_asan" -t 120)
fi
"${run_as[@]}" "$BIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w "${pg_ctl_opts[@]}" start >/dev/null
export PGHOST=$tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
# Fixtures and the shared data are copied next to the cluster when the server could not read them in place.
mkdir -p "$tmp/fixtures" && cp -r "$here/fixtures/." "$tmp/fixtures/" && chmod -R a+rX "$tmp/fixtures"
export RETAIL_MID_FIXTURES=$tmp/fixtures
data=${RETAIL_MID_DATA:-$here/../../shared/data}
if [ -f "$data/online_retail.csv.gz" ]; then
  data=$(cd "$data" && pwd)
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -r "$data/online_retail.csv.gz"; then
    cp -r "$data" "$tmp/data_copy" && chmod -R a+rX "$tmp/data_copy" && data=$tmp/data_copy
  fi
  export RETAIL_MID_DATA=$data
else
  export RETAIL_MID_DATA=""
fi
set +e
"$@"
rc=$?
set -e
if [ $rc -ne 0 ]; then echo "--- tail of the server log ($tmp/server.log)"; tail -n 30 "$tmp/server.log"; fi
exit $rc
