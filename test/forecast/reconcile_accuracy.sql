-- Runs inside reconcile_accuracy.sh: builds each hierarchy, forecasts every node, reconciles with every method,
-- prints mean MASE and RMSSE per level before (base) and after, and checks that every result adds up.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\pset footer off
SELECT position('oj' IN :'sets') > 0 AS do_oj, position('synthetic' IN :'sets') > 0 AS do_syn \gset
-- one row per node: level, node, the whole series y (consecutive periods), season length, hold-out length
CREATE TEMP TABLE h_series(set_name text, level text, node text, y float8[], m int, h int);
CREATE TEMP TABLE h_edge(set_name text, child text, parent text);

\if :do_oj
CREATE TEMP TABLE oj(store int, brand int, week int, logmove float8, constant int, p1 float8, p2 float8, p3 float8, p4 float8,
  p5 float8, p6 float8, p7 float8, p8 float8, p9 float8, p10 float8, p11 float8, deal int, feat float8, profit float8, units float8);
\set cmd 'gzip -cdf ' :data '/orange_juice_weekly.csv.gz'
COPY oj FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
-- 3.6 % of store-weeks are missing (whole stores on some weeks): filled with the store x brand's previous
-- observed week (the first weeks with the next observed one), so every series has all 121 weeks
CREATE TEMP TABLE oj_full AS
SELECT store, brand, week, coalesce(max(units) OVER (PARTITION BY store, brand, grp), first_units) AS units
  FROM (SELECT s.store, s.brand, w.week, o.units,
               count(o.units) OVER (PARTITION BY s.store, s.brand ORDER BY w.week) AS grp,
               first_value(o.units) OVER (PARTITION BY s.store, s.brand ORDER BY o.units IS NULL, w.week) AS first_units
          FROM (SELECT DISTINCT store, brand FROM oj) s
         CROSS JOIN generate_series((SELECT min(week) FROM oj), (SELECT max(week) FROM oj)) w(week)
          LEFT JOIN oj o ON o.store = s.store AND o.brand = s.brand AND o.week = w.week) x;
INSERT INTO h_series
SELECT 'oj', 'store x brand', 's' || store || '/b' || brand, array_agg(units ORDER BY week), 1, 12 FROM oj_full GROUP BY store, brand;
INSERT INTO h_series
SELECT 'oj', 'brand', 'b' || brand, array_agg(u ORDER BY week), 1, 12 FROM (SELECT brand, week, sum(units) u FROM oj_full GROUP BY 1, 2) x GROUP BY brand;
INSERT INTO h_series
SELECT 'oj', 'total', 'total', array_agg(u ORDER BY week), 1, 12 FROM (SELECT week, sum(units) u FROM oj_full GROUP BY 1) x;
INSERT INTO h_edge SELECT DISTINCT 'oj', 's' || store || '/b' || brand, 'b' || brand FROM oj_full;
INSERT INTO h_edge SELECT DISTINCT 'oj', 'b' || brand, 'total' FROM oj_full;
\endif

\if :do_syn
-- (generated once per database: a rerun on the same cluster reuses the brand)
SELECT NOT EXISTS (SELECT FROM retail_mid.ods_product WHERE brand = 'rec') AS syn_generate \gset
\if :syn_generate
SET client_min_messages = warning;
SELECT retail_mid.generate_synthetic(7, 3000, 364, 400, 8, 40, '2024-01-01', 0, false, 'rec') \gset
SELECT retail_mid.refresh_all() \gset
RESET client_min_messages;
\endif
-- SKU x store daily units; store -> region is the store's regional DC (store -> FDC -> RDC), SKU -> category_l1
CREATE TEMP TABLE syn AS
SELECT k.store_id, k.sku_id, p.category_l1 AS category, r.site_id AS region, g.day::date AS day,
       coalesce(sum(d.sales_quantity), 0)::float8 AS units
  FROM (SELECT DISTINCT store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'rec' AND store_id <> '(none)') k
  CROSS JOIN generate_series(date '2024-01-01', date '2024-01-01' + 363, '1 day') g(day)
  JOIN retail_mid.ods_product p ON p.brand = 'rec' AND p.sku_id = k.sku_id
  JOIN retail_mid.ods_site s ON s.brand = 'rec' AND s.site_id = k.store_id
  JOIN retail_mid.ods_site f ON f.brand = 'rec' AND f.site_id = s.parent_site_id
  JOIN retail_mid.ods_site r ON r.brand = 'rec' AND r.site_id = f.parent_site_id
  LEFT JOIN retail_mid.dws_trade_sku_store_1d d ON d.brand = 'rec' AND d.store_id = k.store_id AND d.sku_id = k.sku_id AND d.dt = g.day
 GROUP BY 1, 2, 3, 4, 5;
-- every SKU x store series with a sale is a leaf (many are intermittent: that is what store x SKU data look like)
INSERT INTO h_series SELECT 'synthetic', 'sku x store', sku_id || '@' || store_id, array_agg(units ORDER BY day), 7, 14 FROM syn GROUP BY sku_id, store_id;
INSERT INTO h_series SELECT 'synthetic', 'sku', sku_id, array_agg(u ORDER BY day), 7, 14 FROM (SELECT sku_id, day, sum(units) u FROM syn GROUP BY 1, 2) x GROUP BY sku_id;
INSERT INTO h_series SELECT 'synthetic', 'category', category, array_agg(u ORDER BY day), 7, 14 FROM (SELECT category, day, sum(units) u FROM syn GROUP BY 1, 2) x GROUP BY category;
INSERT INTO h_series SELECT 'synthetic', 'store', store_id, array_agg(u ORDER BY day), 7, 14 FROM (SELECT store_id, day, sum(units) u FROM syn GROUP BY 1, 2) x GROUP BY store_id;
INSERT INTO h_series SELECT 'synthetic', 'region', region, array_agg(u ORDER BY day), 7, 14 FROM (SELECT region, day, sum(units) u FROM syn GROUP BY 1, 2) x GROUP BY region;
INSERT INTO h_series SELECT 'synthetic', 'total', 'total', array_agg(u ORDER BY day), 7, 14 FROM (SELECT day, sum(units) u FROM syn GROUP BY 1) x;
INSERT INTO h_edge SELECT DISTINCT 'synthetic', sku_id || '@' || store_id, sku_id FROM syn
  UNION ALL SELECT DISTINCT 'synthetic', sku_id || '@' || store_id, store_id FROM syn
  UNION ALL SELECT DISTINCT 'synthetic', sku_id, category FROM syn
  UNION ALL SELECT DISTINCT 'synthetic', category, 'total' FROM syn
  UNION ALL SELECT DISTINCT 'synthetic', store_id, region FROM syn
  UNION ALL SELECT DISTINCT 'synthetic', region, 'total' FROM syn;
\endif

SELECT set_name, level, count(*) AS series, min(cardinality(y)) AS periods, min(m) AS season_length, min(h) AS holdout
  FROM h_series GROUP BY 1, 2 ORDER BY 1, 2;

-- base forecasts of every node on its training part, and one-step errors of the last :origins training periods
SELECT clock_timestamp() AS t0 \gset
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
CREATE TEMP TABLE h_train AS
SELECT set_name, level, node, y[1:cardinality(y) - h] AS ins, y[cardinality(y) - h + 1:] AS act, m, h FROM h_series;
ANALYZE h_train;
CREATE TEMP TABLE h_base AS
SELECT set_name, node, retail_mid.forecast_array(ins, h, m, :'opts') AS f FROM h_train;
CREATE TEMP TABLE h_res AS
SELECT t.set_name, t.node, b.origin AS period, b.actual - b.mean AS r
  FROM h_train t, LATERAL retail_mid.forecast_backtest(t.ins, 1, :origins, t.m, :'opts') b;
SELECT format('base forecasts and %s-origin one-step residuals of %s series: %s s', :origins, count(*),
              round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 1)) AS timing FROM h_train;
CREATE TEMP TABLE h_fc AS
SELECT set_name, node, s.i AS step, (f->'mean'->>(s.i - 1))::float8 AS f
  FROM h_base, generate_series(1, jsonb_array_length(f->'mean')) s(i);

-- every method; top_down only where the hierarchy is a tree
CREATE TEMP TABLE h_rec(set_name text, method text, node text, step int4, base float8, reconciled float8, lambda float8);
SELECT format('INSERT INTO h_rec SELECT %L, %L, r.* FROM retail_mid.forecast_reconcile(%L, %L, %L, %L) r', s.set_name, m.method,
              format('SELECT child, parent FROM h_edge WHERE set_name = %L', s.set_name),
              format('SELECT node, step, f FROM h_fc WHERE set_name = %L', s.set_name), m.method,
              format('SELECT node, period, r FROM h_res WHERE set_name = %L', s.set_name))
  FROM (SELECT DISTINCT set_name FROM h_series) s,
       unnest(ARRAY['bottom_up', 'top_down', 'ols', 'wls_struct', 'wls_var', 'mint_shrink']) m(method)
 WHERE m.method <> 'top_down' OR NOT EXISTS (SELECT FROM h_edge e WHERE e.set_name = s.set_name GROUP BY child HAVING count(*) > 1) \gexec
SELECT set_name, method, round(max(lambda)::numeric, 4) AS shrinkage FROM h_rec WHERE method = 'mint_shrink' GROUP BY 1, 2;

\echo === coherence: largest |aggregate - sum of its children| over every node and step (divided by the grouping count for grouped nodes)
WITH c AS (
  SELECT x.set_name, x.method, e.parent AS node, x.step,
         sum(x.reconciled) / count(DISTINCT lv.level) AS s, sum(x.base) / count(DISTINCT lv.level) AS sb
    FROM h_edge e JOIN h_rec x ON x.set_name = e.set_name AND x.node = e.child
    JOIN h_series lv ON lv.set_name = e.set_name AND lv.node = e.child
   GROUP BY 1, 2, 3, 4)
SELECT r.set_name, r.method, max(abs(r.reconciled - c.s)) AS max_incoherence, max(abs(r.reconciled - c.s) / greatest(abs(c.s), 1)) AS max_rel_incoherence,
       max(abs(r.base - c.sb)) AS base_incoherence
  FROM h_rec r JOIN c USING (set_name, method, node, step)
 GROUP BY 1, 2 ORDER BY 1, 2;

\echo === accuracy per level on the hold-out: mean MASE (in-sample naive scale, lag = season length) and mean RMSSE (M5), base and each method
CREATE TEMP TABLE h_eval AS
SELECT t.set_name, t.level, t.node, r.method, t.ins, t.act, t.m,
       array_agg(r.base ORDER BY r.step) AS base, array_agg(r.reconciled ORDER BY r.step) AS rec
  FROM h_train t JOIN h_rec r USING (set_name, node) GROUP BY 1, 2, 3, 4, 5, 6, 7;
CREATE TEMP TABLE h_score AS
SELECT set_name, level, method, count(*) AS series,
       avg(retail_mid.mase(act, base, ins, m)) AS mase_base, avg(retail_mid.mase(act, rec, ins, m)) AS mase,
       avg(retail_mid.rmsse(act, base, ins, m)) AS rmsse_base, avg(retail_mid.rmsse(act, rec, ins, m)) AS rmsse
  FROM h_eval GROUP BY 1, 2, 3;
SELECT set_name, level, max(series) AS series, round(max(mase_base)::numeric, 4) AS base,
       round(max(mase) FILTER (WHERE method = 'bottom_up')::numeric, 4) AS bottom_up,
       round(max(mase) FILTER (WHERE method = 'top_down')::numeric, 4) AS top_down,
       round(max(mase) FILTER (WHERE method = 'ols')::numeric, 4) AS ols,
       round(max(mase) FILTER (WHERE method = 'wls_struct')::numeric, 4) AS wls_struct,
       round(max(mase) FILTER (WHERE method = 'wls_var')::numeric, 4) AS wls_var,
       round(max(mase) FILTER (WHERE method = 'mint_shrink')::numeric, 4) AS mint_shrink
  FROM h_score GROUP BY 1, 2 ORDER BY 1, max(series), 2;
SELECT set_name, level, max(series) AS series, round(max(rmsse_base)::numeric, 4) AS base,
       round(max(rmsse) FILTER (WHERE method = 'bottom_up')::numeric, 4) AS bottom_up,
       round(max(rmsse) FILTER (WHERE method = 'top_down')::numeric, 4) AS top_down,
       round(max(rmsse) FILTER (WHERE method = 'ols')::numeric, 4) AS ols,
       round(max(rmsse) FILTER (WHERE method = 'wls_struct')::numeric, 4) AS wls_struct,
       round(max(rmsse) FILTER (WHERE method = 'wls_var')::numeric, 4) AS wls_var,
       round(max(rmsse) FILTER (WHERE method = 'mint_shrink')::numeric, 4) AS mint_shrink
  FROM h_score GROUP BY 1, 2 ORDER BY 1, max(series), 2;
\echo === levels where mint_shrink is worse than the base forecasts (MASE or RMSSE)
SELECT set_name, level, round(mase_base::numeric, 4) AS mase_base, round(mase::numeric, 4) AS mase_mint,
       round(rmsse_base::numeric, 4) AS rmsse_base, round(rmsse::numeric, 4) AS rmsse_mint
  FROM h_score WHERE method = 'mint_shrink' AND (mase > mase_base OR rmsse > rmsse_base) ORDER BY 1, 2;
