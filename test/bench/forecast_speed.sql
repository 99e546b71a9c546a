-- Runs inside forecast_speed.sh. Prints lines "OURS <set> <series> <seconds>" and writes R's samples as CSV.
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SELECT setseed(0.42);
-- orange juice: store x brand weekly series, zero-filled between the first and the last week
CREATE TEMP TABLE oj_raw(store int, brand int, week int, logmove float8, constant int, p1 float8, p2 float8, p3 float8,
  p4 float8, p5 float8, p6 float8, p7 float8, p8 float8, p9 float8, p10 float8, p11 float8, deal int, feat float8,
  profit float8, units float8);
\set cmd 'gzip -cdf ' :data '/orange_juice_weekly.csv.gz'
COPY oj_raw FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
CREATE TABLE oj AS
SELECT s.store * 100 + s.brand AS series, w - s.w0 + 1 AS t, coalesce(r.units, 0) AS value
  FROM (SELECT store, brand, min(week) w0, max(week) w1 FROM oj_raw GROUP BY 1, 2) s
  CROSS JOIN LATERAL generate_series(s.w0, s.w1) w
  LEFT JOIN oj_raw r ON r.store = s.store AND r.brand = s.brand AND r.week = w;
ALTER TABLE oj SET (parallel_workers = 2);
ANALYZE oj;
\set f :out '/r_oj.csv'
COPY (SELECT series, t, value FROM oj WHERE series IN (SELECT series FROM (SELECT DISTINCT series FROM oj) s ORDER BY random() LIMIT :oj_r_sample) ORDER BY series, t)
  TO :'f' (FORMAT csv, HEADER);
SELECT clock_timestamp() AS t0 \gset
CREATE TEMP TABLE oj_fc AS SELECT series, retail_mid.forecast_series(t, value, 12, 52) r FROM oj GROUP BY series;
SELECT format('OURS oj %s %s', count(*), extract(epoch FROM clock_timestamp() - :'t0')) FROM oj_fc \gset
\echo :format
SELECT r->>'model' AS model, count(*) FROM oj_fc GROUP BY 1 ORDER BY 2 DESC LIMIT 5;

-- synthetic daily demand: level, weekly pattern, slow trend, noise; two years
SELECT clock_timestamp() AS t0 \gset
CREATE TABLE syn AS
SELECT s AS series, d AS t,
       greatest(0, round(lvl * (1 + 0.25 * (d % 7 IN (5, 6))::int - 0.1 * (d % 7 = 0)::int) * (1 + tr * d / 730.0)
                          + sqrt(lvl) * (random() + random() + random() - 1.5) * 2))::float8 AS value
  FROM (SELECT s, 5 + (hashint4(s) & 1023) / 20.0 AS lvl, ((hashint4(s * 7) & 255) - 128) / 512.0 AS tr
          FROM generate_series(1, :syn) s) p,
       generate_series(1, 730) d;
ALTER TABLE syn SET (parallel_workers = 2);
SELECT format('generated %s synthetic daily series (%s rows) in %s s', :syn, :syn * 730,
              round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 1)) \gset
\echo :format
CREATE TABLE syn_pick AS SELECT series FROM generate_series(1, :syn) series ORDER BY random() LIMIT :our_sample;
CREATE TABLE syn_s AS SELECT syn.* FROM syn JOIN syn_pick USING (series);
ALTER TABLE syn_s SET (parallel_workers = 2);
ANALYZE syn_s;
\set f :out '/r_syn.csv'
COPY (SELECT series, t, value FROM syn_s WHERE series IN (SELECT series FROM syn_pick ORDER BY random() LIMIT :r_sample) ORDER BY series, t)
  TO :'f' (FORMAT csv, HEADER);
-- one row per series, then forecast_array in a parallel scan: the fits run in the workers (an aggregate's final
-- function would run in the leader only); the array building is included in the time
SELECT clock_timestamp() AS t0 \gset
CREATE TABLE syn_arr AS SELECT series, array_agg(value ORDER BY t) AS y FROM syn_s GROUP BY series;
ALTER TABLE syn_arr SET (parallel_workers = 2);
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT series, retail_mid.forecast_array(y, 28, 7) r FROM syn_arr;
CREATE TABLE syn_fc AS SELECT series, retail_mid.forecast_array(y, 28, 7) r FROM syn_arr;
SELECT format('OURS syn %s %s', count(*), extract(epoch FROM clock_timestamp() - :'t0')) FROM syn_fc \gset
\echo :format
SELECT r->>'model' AS model, count(*) FROM syn_fc GROUP BY 1 ORDER BY 2 DESC LIMIT 5;
