#!/usr/bin/env bash
# make bench BENCH=shards [CUSTOMERS=5000 DAYS=180 ORDERS_PER_DAY=400]: the set-up of test/t/shards.t (three clusters,
# a coordinator and three shards, two synthetic brands) at a larger size, then, per workload, the rows and bytes that
# travel from each shard to the coordinator, each shard's time, and the coordinator's own time (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARDS_BENCH=1 SHARDS_BENCH_SCRIPT="$PWD/test/bench/shards_report.pl" perl test/t/shards.t
