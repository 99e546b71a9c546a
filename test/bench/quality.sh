#!/usr/bin/env bash
# Quality rule evaluation benchmark (see quality.sql). Usage: bash test/bench/quality.sh [rows]   (default 10000000)
# Builds and installs into ./tmp_install, runs on a throw-away cluster with 2 parallel workers per gather.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s >/dev/null && rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
RETAIL_MID_DESTDIR="$PWD/tmp_install" bash test/with_cluster.sh psql -X -v rows="${1:-10000000}" -f test/bench/quality.sql
