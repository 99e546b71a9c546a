-- newproduct_complete_journey: new-product tracking on Dunnhumby's Complete Journey (2017). The data has no launch
-- dates, so products first sold from April on, by at least 8 households, stand in for launches; the benchmark of each
-- is the product of the same product type (category_l3) with the most households that sold in January. Tracking
-- figures are checked against plain SQL over the DWD, and the launch-volume estimate is scored against the naive one.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_np');
SELECT retail_mid.refresh('2017-01-01', '2017-12-31') > 0 AS refreshed;
RESET client_min_messages;
-- the planner needs the statistics of the rows just loaded (autovacuum may not have analysed them yet)
ANALYZE retail_mid.dwd_trade_order_line_di, retail_mid.dim_product;
CREATE TEMP TABLE cj_first AS
SELECT l.sku_id, p.category_l3, min(l.dt) AS first_day, count(DISTINCT l.customer_key) AS households
  FROM retail_mid.dwd_trade_order_line_di l JOIN retail_mid.dim_product p ON p.brand = l.brand AND p.sku_id = l.sku_id AND p.is_current
 WHERE l.brand = 'cj_np' AND l.line_type = 'sale' GROUP BY 1, 2;
CREATE TEMP TABLE cj_launch AS
SELECT n.sku_id, n.first_day,
       (SELECT b.sku_id FROM cj_first b WHERE b.category_l3 = n.category_l3 AND b.first_day < '2017-02-01' AND b.sku_id <> n.sku_id
         ORDER BY b.households DESC, b.sku_id LIMIT 1) AS benchmark
  FROM cj_first n WHERE n.first_day >= '2017-04-01' AND n.households >= 8;
DELETE FROM cj_launch WHERE benchmark IS NULL;
INSERT INTO retail_mid.newproduct (brand, sku_id, np_type, benchmark_sku, launch_date)
SELECT 'cj_np', sku_id, 'follower', benchmark, first_day FROM cj_launch;
-- a benchmark's curve starts at its dim_product launch date: its first sale seen by refresh
SELECT count(*) = count(*) FILTER (WHERE benchmark_launch_date < '2017-02-01') AS benchmarks_dated FROM retail_mid.newproduct_launch WHERE brand = 'cj_np';
SELECT count(*) >= 5 AS enough_launches FROM cj_launch;
SET client_min_messages = warning;
SELECT retail_mid.newproduct_refresh('cj_np', 26) > 0 AS tracked;
RESET client_min_messages;
-- trial buyers and units of every tracked week equal plain SQL over the DWD
WITH ref AS (
    SELECT w.sku_id, w.week,
           (SELECT count(*) FROM (SELECT l.customer_key FROM retail_mid.dwd_trade_order_line_di l
                                   WHERE l.brand = 'cj_np' AND l.sku_id = w.sku_id AND l.line_type = 'sale' AND l.customer_key IS NOT NULL
                                     AND l.dt >= w.launch_date GROUP BY l.customer_key
                                  HAVING min(l.dt) < w.launch_date + 7 * w.week + 7) x) AS trial_cum,
           (SELECT coalesce(sum(l.quantity), 0) FROM retail_mid.dwd_trade_order_line_di l
             WHERE l.brand = 'cj_np' AND l.sku_id = w.sku_id AND l.store_id IS NOT NULL
               AND l.dt >= w.launch_date AND l.dt < w.launch_date + 7 * w.week + 7) AS units_cum
      FROM retail_mid.newproduct_week w WHERE w.brand = 'cj_np')
SELECT count(*) > 0 AS weeks_compared, bool_and(w.trial_buyers_cum = r.trial_cum) AS trial_ok, bool_and(w.units_cum = r.units_cum) AS units_ok
  FROM retail_mid.newproduct_week w JOIN ref r USING (sku_id, week);
SELECT count(*) AS quadrants_rated FROM retail_mid.newproduct_competitiveness WHERE brand = 'cj_np' AND quadrant <> 'unrated' \gset
SELECT :quadrants_rated > 0 AS some_rated;
-- the estimate on launches with 26 weeks of data: the scores are printed, not compared (sparse sample data)
CREATE TEMP TABLE cj_bt AS SELECT * FROM retail_mid.newproduct_backtest('cj_np', 4, 26);
SELECT count(*) FILTER (WHERE estimate IS NOT NULL AND naive IS NOT NULL) = count(*) AS all_scored FROM cj_bt;
SELECT count(*) > 50 AS many_scored, round(avg(estimate_rel_error)::numeric, 2) AS mean_rel_error_benchmark,
       round(avg(naive_rel_error)::numeric, 2) AS mean_rel_error_naive,
       round(avg(estimate_mase)::numeric, 2) AS mean_mase_benchmark, round(avg(naive_mase)::numeric, 2) AS mean_mase_naive
  FROM cj_bt;
-- leave the database as a fresh one: the households' keys of brand cj_np would match later tests' joins by
-- identifier value (reach_complete_journey)
SET client_min_messages = warning;
DROP EXTENSION retail_mid CASCADE;
RESET client_min_messages;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
