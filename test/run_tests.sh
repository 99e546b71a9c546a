#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as errors and assertions on,
# installs, then runs the pg_regress suite and the TAP tests against a throw-away cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh libipc-run-perl python3-psycopg2 chromium nodejs
# the dashboard test (test/t/dashboard.t) installs its chart library with npm: Debian's npm unless a Node.js with npm is there
command -v npm >/dev/null || bash test/deps.sh npm
make -s clean >/dev/null
make -s PG_CFLAGS="-DUSE_ASSERT_CHECKING -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare" >/dev/null
# Installed into a private directory the test cluster reads through Debian's extension_destdir setting, so
# test runs neither need root nor disturb the system-wide installation (or each other).
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
export RETAIL_MID_DESTDIR="$PWD/tmp_install"
[ -n "${RETAIL_MID_DATA:-}" ] || [ -d ../shared/data ] || echo "NOTE: ../shared/data is absent: the tests on real data will report SKIPPED."
bash test/with_cluster.sh bash test/suite.sh
