#!/usr/bin/env bash
# Regenerates docs/bi_contract.md (the column reference of every relation analysts and BI can read) from the
# catalog of a freshly built and installed retail_mid (private install directory, throw-away cluster).
# Usage: bash test/docs/bi_contract.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s >/dev/null
rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
RETAIL_MID_DESTDIR="$PWD/tmp_install" bash test/with_cluster.sh \
  psql -X -q -A -t -f test/docs/bi_contract.sql >docs/bi_contract.md.new
mv docs/bi_contract.md.new docs/bi_contract.md
echo "docs/bi_contract.md: $(wc -l <docs/bi_contract.md) lines" >&2
