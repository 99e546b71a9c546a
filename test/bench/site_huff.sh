#!/usr/bin/env bash
# Benchmark: batch scoring of 1,000 candidate sites against 40,000 demand points (world cities) and 2,000
# existing stores (half own, half competitors) with retail_mid.site_score_candidates, versus the same Huff
# model (same outputs: expected sales, demand in reach, market share, trade area, catchment population and
# income within 1/3/5 km, competitors, nearest competitor, cannibalisation of every own store) written as one
# plain SQL statement with PostGIS (ST_DWithin / ST_Distance on geography, KNN <->), in the same run, on the
# same data. Checks that both give the same answers, then prints the ratio.
#   bash test/bench/site_huff.sh              (builds, installs into ./tmp_install, throw-away cluster)
#   CUTOFF=50000 bash test/bench/site_huff.sh
# Without ../shared/data (or RETAIL_MID_DATA) the demand points are synthetic (seeded).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PGHOST:-}" ]; then
  make -s PG_CFLAGS="-O2" >/dev/null
  rm -rf tmp_install && make -s install DESTDIR="$PWD/tmp_install" >/dev/null
  RETAIL_MID_DESTDIR="$PWD/tmp_install" exec bash test/with_cluster.sh bash "$0" "$@"
fi
CUTOFF=${CUTOFF:-50000}
DATA=${RETAIL_MID_DATA:-}
psql -X -q -v ON_ERROR_STOP=1 -v cutoff="$CUTOFF" -v data_dir="$DATA" -f - <<'SQL'
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
-- JIT is off for both sides: PostGIS's cost estimates make PG spend seconds compiling either query
SET jit = off;
CREATE TEMP TABLE cities (name text, country text, pop int, lat float8, lon float8, capital int);
SELECT :'data_dir' <> '' AS have_data \gset
\if :have_data
\set cmd 'gzip -cdf ' :'data_dir' '/geo/world_cities.csv.gz'
COPY cities FROM PROGRAM :'cmd' CSV HEADER;
\else
SELECT setseed(0.42) AS seed \gset
-- 43,645 towns around 60 metropolitan centres, denser near the centre, like the world cities file
INSERT INTO cities SELECT 'synthetic ' || i, 'X', (1000 + random() * 100000)::int,
       c.lat + r * cos(t), c.lon + r * sin(t) / cos(radians(c.lat)), 0
  FROM generate_series(1, 43645) i,
       LATERAL (SELECT -45 + ((i % 60) * 37 % 100) * 0.9 AS lat, -175 + ((i % 60) * 53 % 100) * 3.5 AS lon,
                       1.5 * random() * random() AS r, 2 * pi() * random() AS t) c;
\endif
-- a deterministic shuffle: zones are the first 40,000, stores the first 2,000 (jittered a little, so that few
-- sit exactly on a zone), candidates the next 1,000
CREATE TEMP TABLE c_ord AS SELECT row_number() OVER (ORDER BY md5(name || country || lat || lon)) AS rn, * FROM cities;
INSERT INTO retail_mid.site_demand_zone (zone_id, name, geom, population, income)
SELECT rn, name, ST_SetSRID(ST_MakePoint(lon, lat), 4326), pop, 20000 + (rn * 7919) % 40000 FROM c_ord WHERE rn <= 40000;
INSERT INTO retail_mid.site_store (store_id, name, own, geom, attractiveness)
SELECT rn, name, rn % 2 = 0,
       ST_SetSRID(ST_MakePoint(lon + ((rn * 7919) % 41 - 20) * 0.001, lat + ((rn * 104729) % 41 - 20) * 0.001), 4326),
       10 + (rn * 31) % 90
  FROM c_ord WHERE rn <= 2000;
INSERT INTO retail_mid.site_candidate (candidate_id, name, geom, attractiveness)
SELECT rn, name, ST_SetSRID(ST_MakePoint(lon + ((rn * 13) % 41 - 20) * 0.001, lat + ((rn * 17) % 41 - 20) * 0.001), 4326),
       10 + (rn * 37) % 90
  FROM c_ord WHERE rn > 40000 AND rn <= 41000;
ANALYZE retail_mid.site_demand_zone; ANALYZE retail_mid.site_store; ANALYZE retail_mid.site_candidate;
SELECT format('data: %s zones, %s stores (%s own), %s candidates, cut-off %s m, alpha 1, beta 2, threshold 0.3',
              (SELECT count(*) FROM retail_mid.site_demand_zone), (SELECT count(*) FROM retail_mid.site_store),
              (SELECT count(*) FROM retail_mid.site_store WHERE own), (SELECT count(*) FROM retail_mid.site_candidate),
              :cutoff) AS setup \gset
\echo :setup

CREATE TEMP TABLE timings (side text, round int, ms float8);
CREATE TEMP TABLE peer_score (candidate_id bigint, expected_sales float8, demand_in_reach float8, market_share float8,
    zones_in_reach int, trade_area geometry, trade_area_zones int, population_1km float8, population_3km float8,
    population_5km float8, income_1km float8, income_3km float8, income_5km float8, competitors int,
    nearest_competitor_m float8, cannibalisation float8, net_gain float8);
CREATE TEMP TABLE peer_cannibalisation (candidate_id bigint, store_id bigint, sales_before float8, sales_after float8,
    cannibalisation float8);

-- two rounds, alternating the sides so that background load hits both alike; the best round of each counts
\o /dev/null
\set r 1
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.site_score_candidates(1, 2, :cutoff, threshold => 0.3);
INSERT INTO timings SELECT 'retail_mid', :r, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000;
\i test/bench/site_huff_peer.sql
\set r 2
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.site_score_candidates(1, 2, :cutoff, threshold => 0.3);
INSERT INTO timings SELECT 'retail_mid', :r, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000;
\i test/bench/site_huff_peer.sql
\o

-- same answers
SELECT count(*) AS candidates,
       count(*) FILTER (WHERE abs(s.expected_sales - p.expected_sales) <= 1e-9 * greatest(p.expected_sales, 1)
                          AND abs(s.demand_in_reach - p.demand_in_reach) <= 1e-9 * greatest(p.demand_in_reach, 1)
                          AND abs(s.market_share - p.market_share) <= 1e-9
                          AND s.zones_in_reach = p.zones_in_reach AND s.trade_area_zones = p.trade_area_zones
                          AND ST_GeometryType(s.trade_area) = ST_GeometryType(p.trade_area)
                          AND abs(ST_Area(s.trade_area) - ST_Area(p.trade_area)) <= 1e-9 * greatest(ST_Area(p.trade_area), 1e-9)
                          AND s.population_1km = p.population_1km AND s.population_3km = p.population_3km
                          AND s.population_5km = p.population_5km
                          AND s.income_5km IS NOT DISTINCT FROM p.income_5km
                          AND s.competitors = p.competitors
                          AND abs(s.nearest_competitor_m - p.nearest_competitor_m) <= 1e-9 * p.nearest_competitor_m
                          AND abs(s.cannibalisation - p.cannibalisation) <= 1e-9 * greatest(p.expected_sales, 1)) AS same_answer,
       round(sum(s.expected_sales)::numeric) AS total_expected_sales,
       round(sum(s.cannibalisation)::numeric) AS total_cannibalisation
  FROM retail_mid.site_candidate_score s FULL JOIN peer_score p USING (candidate_id) \gset
SELECT count(*) AS store_rows,
       count(*) FILTER (WHERE abs(k.cannibalisation - p.cannibalisation) <= 1e-9 * greatest(k.sales_before, 1)
                          AND abs(k.sales_after - p.sales_after) <= 1e-9 * greatest(k.sales_before, 1)) AS same_store_rows
  FROM retail_mid.site_candidate_cannibalisation k FULL JOIN peer_cannibalisation p USING (candidate_id, store_id) \gset
\echo 'candidates scored:' :candidates ', identical (1e-9) to the plain-SQL peer:' :same_answer
\echo 'own-store cannibalisation rows:' :store_rows ', identical:' :same_store_rows
\echo 'total expected sales' :total_expected_sales ', total cannibalisation' :total_cannibalisation
SELECT string_agg(format('%s round %s: %s ms', side, round, round(ms::numeric)), E'\n' ORDER BY round, side) AS rounds FROM timings \gset
\echo :rounds
SELECT round(min(ms) FILTER (WHERE side = 'retail_mid')::numeric) AS c_ms,
       round(min(ms) FILTER (WHERE side = 'plain SQL')::numeric) AS sql_ms,
       round((min(ms) FILTER (WHERE side = 'plain SQL') / min(ms) FILTER (WHERE side = 'retail_mid'))::numeric, 2) AS ratio
  FROM timings \gset
\echo 'site_huff: retail_mid.site_score_candidates' :c_ms 'ms, plain SQL + PostGIS' :sql_ms 'ms (best of 2 rounds each)'
\echo 'RATIO plain SQL / retail_mid =' :ratio
SELECT (:candidates = :same_answer AND :store_rows = :same_store_rows) AS ok \gset
\if :ok
\else
\echo 'ERROR: the two sides disagree'
SELECT 1/0;
\endif
SQL
