#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as errors and assertions on,
# installs, then runs the pg_regress suite and the TAP tests against a throw-away cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh libipc-run-perl
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
make -s clean >/dev/null
make -s PG_CFLAGS="-DUSE_ASSERT_CHECKING -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare" >/dev/null
$SUDO make -s install >/dev/null
[ -n "${RETAIL_MID_DATA:-}" ] || [ -d ../shared/data ] || echo "NOTE: ../shared/data is absent: the tests on real data will report SKIPPED."
bash test/with_cluster.sh bash test/suite.sh
