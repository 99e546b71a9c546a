SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- forecast_reconcile at real size: Dominick's orange juice, store x brand (913) -> brand (11) -> total, 925 nodes.
-- Cheap base forecasts so the test stays fast: each node's median of its last 8 training weeks (not additive, so
-- the base forecasts are incoherent); residuals: the one-step errors of that rule over the last 20 training
-- weeks. The full accuracy study with the automatic models is test/forecast/reconcile_accuracy.sh.
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET extra_float_digits = 0;
CREATE TEMP TABLE oj(store int, brand int, week int, logmove float8, constant int, p1 float8, p2 float8, p3 float8, p4 float8,
  p5 float8, p6 float8, p7 float8, p8 float8, p9 float8, p10 float8, p11 float8, deal int, feat float8, profit float8, units float8);
\set cmd 'gzip -cdf ' :data_dir '/orange_juice_weekly.csv.gz'
COPY oj FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
-- missing store-weeks: the previous observed week (the first weeks: the next one)
CREATE TEMP TABLE oj_full AS
SELECT store, brand, week, coalesce(max(units) OVER (PARTITION BY store, brand, grp), first_units) AS units
  FROM (SELECT s.store, s.brand, w.week, o.units,
               count(o.units) OVER (PARTITION BY s.store, s.brand ORDER BY w.week) AS grp,
               first_value(o.units) OVER (PARTITION BY s.store, s.brand ORDER BY o.units IS NULL, w.week) AS first_units
          FROM (SELECT DISTINCT store, brand FROM oj) s CROSS JOIN generate_series(40, 160) w(week)
          LEFT JOIN oj o ON o.store = s.store AND o.brand = s.brand AND o.week = w.week) x;
CREATE TEMP TABLE node_week AS
SELECT 's' || store || '/b' || brand AS node, 'store x brand' AS level, week, units FROM oj_full
UNION ALL SELECT 'b' || brand, 'brand', week, sum(units) FROM oj_full GROUP BY brand, week
UNION ALL SELECT 'total', 'total', week, sum(units) FROM oj_full GROUP BY week;
CREATE TEMP TABLE edge AS
SELECT DISTINCT 's' || store || '/b' || brand AS child, 'b' || brand AS parent FROM oj_full
UNION ALL SELECT DISTINCT 'b' || brand, 'total' FROM oj_full;
-- training weeks 40..148, hold-out 149..160 (12 weeks)
CREATE TEMP TABLE node_y AS SELECT node, array_agg(units ORDER BY week) AS y FROM node_week GROUP BY node;  -- y[1] = week 40
CREATE FUNCTION pg_temp.median(a float8[]) RETURNS float8 LANGUAGE sql IMMUTABLE AS
  'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM unnest(a) v';
CREATE TEMP TABLE base AS
SELECT node, s.step, pg_temp.median(y[102:109]) AS f FROM node_y, generate_series(1, 12) s(step);
CREATE TEMP TABLE res AS
SELECT node, t + 39 AS period, y[t] - pg_temp.median(y[t - 8:t - 1]) AS r FROM node_y, generate_series(90, 109) t;
SELECT (SELECT count(DISTINCT node) FROM base) AS nodes, (SELECT count(*) FROM edge) AS edges,
       (SELECT round(f::numeric) FROM base WHERE node = 'total' AND step = 1) AS total_base,
       (SELECT round(sum(f)::numeric) FROM base WHERE node LIKE 'b%' AND step = 1) AS brands_sum;
CREATE TEMP TABLE rec AS
SELECT m.method, r.* FROM unnest(ARRAY['bottom_up', 'top_down', 'ols', 'wls_struct', 'wls_var', 'mint_shrink']) m(method),
       LATERAL retail_mid.forecast_reconcile('SELECT child, parent FROM edge', 'SELECT node, step, f FROM base', m.method,
                                              'SELECT node, period, r FROM res') r;
-- every method: 925 x 12 rows, every aggregate the sum of its children to 1e-12 relative
SELECT r.method, count(*) AS rows, max(abs(r.reconciled - c.s) / greatest(abs(c.s), 1)) < 1e-12 AS coherent,
       round(max(r.lambda)::numeric, 4) AS lambda
  FROM rec r LEFT JOIN (SELECT x.method, e.parent, x.step, sum(x.reconciled) s FROM rec x JOIN edge e ON e.child = x.node GROUP BY 1, 2, 3) c
    ON c.method = r.method AND c.parent = r.node AND c.step = r.step
 GROUP BY r.method ORDER BY r.method;
-- mean MASE per level on the hold-out (lag-1 in-sample scale): base forecasts and each method
CREATE TEMP TABLE ev AS
SELECT r.method, n.level, r.node,
       min(y.y[1:109]) AS ins, min(y.y[110:121]) AS act,
       array_agg(r.base ORDER BY r.step) AS base, array_agg(r.reconciled ORDER BY r.step) AS rec
  FROM rec r JOIN (SELECT DISTINCT node, level FROM node_week) n USING (node) JOIN node_y y USING (node) GROUP BY 1, 2, 3;
SELECT level, round(avg(retail_mid.mase(act, base, ins)) FILTER (WHERE method = 'ols')::numeric, 4) AS base,
       round(avg(retail_mid.mase(act, rec, ins)) FILTER (WHERE method = 'bottom_up')::numeric, 4) AS bottom_up,
       round(avg(retail_mid.mase(act, rec, ins)) FILTER (WHERE method = 'top_down')::numeric, 4) AS top_down,
       round(avg(retail_mid.mase(act, rec, ins)) FILTER (WHERE method = 'ols')::numeric, 4) AS ols,
       round(avg(retail_mid.mase(act, rec, ins)) FILTER (WHERE method = 'wls_struct')::numeric, 4) AS wls_struct,
       round(avg(retail_mid.mase(act, rec, ins)) FILTER (WHERE method = 'wls_var')::numeric, 4) AS wls_var,
       round(avg(retail_mid.mase(act, rec, ins)) FILTER (WHERE method = 'mint_shrink')::numeric, 4) AS mint_shrink
  FROM ev GROUP BY level ORDER BY count(*);
-- the sample covariance of 8 residual periods for 925 nodes is singular: MinT without shrinkage says so
SELECT count(*) FROM retail_mid.forecast_reconcile('SELECT child, parent FROM edge', 'SELECT node, step, f FROM base',
  'mint_sample', 'SELECT node, period, r FROM res WHERE period > 140');
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
