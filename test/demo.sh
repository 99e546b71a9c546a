#!/usr/bin/env bash
# The main job: installs what is missing, builds and installs retail_mid, starts a throw-away cluster, loads data
# (the embedded synthetic default, or the public files in the directory given), runs the whole pipeline and
# prints a readable report.   Usage: bash test/demo.sh [path/to/shared/data]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
if [ -n "$data" ]; then
  [ -d "$data" ] || { echo "retail_mid demo: no such directory: $data" >&2; exit 2; }
  data=$(cd "$data" && pwd)
fi
bash test/deps.sh
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
make -s >/dev/null
$SUDO make -s install >/dev/null
echo "retail_mid built and installed into $(pg_config --pkglibdir)"
RETAIL_MID_DATA="$data" RETAIL_MID_DEMO_DATA="$data" bash test/with_cluster.sh \
  sh -c 'psql -X -q -v ON_ERROR_STOP=1 -v data_dir="$RETAIL_MID_DEMO_DATA" -f test/demo/pipeline.sql'
