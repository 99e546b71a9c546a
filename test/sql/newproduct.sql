SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
-- issue 17: new-product 4A. A synthetic brand with two benchmark products and eight launches of known scale, trial
-- share and repeat share; the tracking must recover them and equal plain SQL over the DWD/DWS, the stages follow the
-- thresholds, the launch-volume estimate from the benchmark must beat the naive one on the held-back weeks, and the
-- potential customers of a store must be near it and look like the buyers. Then the bad inputs.
SET extra_float_digits = 0;
SELECT retail_mid.generate_synthetic(seed => 11, customers => 2000, days => 364, orders_per_day => 10, stores => 4, skus => 30,
       start_date => '2024-01-01', dirty_rate => 0, with_events => false, brand => 'np_syn') > 0 AS generated;
CREATE TEMP TABLE np_truth AS SELECT * FROM retail_mid.generate_synthetic_launches('np_syn', launches => 8, seed => 11);
SELECT retail_mid.refresh('2024-01-01', '2024-12-29') > 0 AS refreshed;
RESET client_min_messages;
SELECT sku_id, role, benchmark_sku, np_type, round(scale::numeric, 2) AS scale, round(trial_share::numeric, 2) AS trial_share,
       round(repeat_share::numeric, 2) AS repeat_share, exposed, trial_buyers, repeat_buyers FROM np_truth ORDER BY sku_id;
-- the launch dates came through the ODS attributes into dim_product
SELECT count(*) AS launches, count(*) FILTER (WHERE l.launch_date = t.launch_date AND l.launch_source = 'dim_product') AS dates_ok,
       count(*) FILTER (WHERE l.benchmark_launch_date = b.launch_date) AS benchmark_dates_ok
  FROM retail_mid.newproduct_launch l JOIN np_truth t USING (sku_id) JOIN np_truth b ON b.sku_id = l.benchmark_sku;

-- stages by months since launch, thresholds as data
SELECT d, retail_mid.newproduct_stage('2024-01-01', d) AS stage
  FROM unnest(ARRAY['2024-01-01', '2024-03-31', '2024-04-01', '2024-09-30', '2024-10-01', '2026-01-01']::date[]) d;
INSERT INTO retail_mid.newproduct_stage_threshold VALUES ('np_syn', 'trial', 0, ''), ('np_syn', 'rollout', 1, ''), ('np_syn', 'core', 6, '');
SELECT retail_mid.newproduct_stage('2024-01-01', '2024-03-01', 'np_syn') AS own_stage, retail_mid.newproduct_stage('2024-01-01', '2024-03-01', 'other') AS default_stage;
DELETE FROM retail_mid.newproduct_stage_threshold WHERE brand = 'np_syn';

-- tracking: 26 weeks of every launch, stored for the dashboards
SET client_min_messages = warning;
SELECT retail_mid.newproduct_refresh('np_syn', 26) AS rows_stored;
RESET client_min_messages;
SELECT count(DISTINCT sku_id) AS products, min(week) AS first_week, max(week) AS last_week FROM retail_mid.newproduct_week;
-- recovery at the end of the horizon: trial and repeat shares and the scale factor (trial buyers against the
-- benchmark's at the same age); tolerance 0.01 (the planted counts are rounded to whole customers)
SELECT w.sku_id, w.trial_buyers_cum = t.trial_buyers AS trial_count_ok, w.exposed_cum = t.exposed AS exposed_ok,
       w.repeat_buyers_cum = t.repeat_buyers AS repeat_count_ok,
       abs(w.trial_rate - t.trial_share) < 0.01 AS trial_share_ok, abs(w.repeat_rate - t.repeat_share) < 0.01 AS repeat_share_ok,
       abs(w.trial_buyers_cum::float8 / w.bm_trial_buyers_cum - t.scale) < 0.01 AS scale_ok
  FROM retail_mid.newproduct_week w JOIN np_truth t USING (sku_id) WHERE w.week = 25 ORDER BY w.sku_id;
-- the curve follows the benchmark's: weekly trial buyers against the scaled benchmark's (correlation over 26 weeks)
SELECT w.sku_id, corr(w.trial_buyers, t.scale * b.trial_buyers) > 0.8 AS follows_benchmark
  FROM retail_mid.newproduct_week w JOIN np_truth t USING (sku_id)
  JOIN LATERAL retail_mid.newproduct_sku_weeks('np_syn', t.benchmark_sku, (SELECT launch_date FROM np_truth WHERE sku_id = t.benchmark_sku), 26) b
    ON b.week = w.week
 GROUP BY w.sku_id ORDER BY w.sku_id;
-- every figure equals plain SQL over the DWD / DWS / DIM
CREATE TEMP TABLE np_ref AS
WITH l AS (SELECT sku_id, launch_date FROM np_truth),
     wk AS (SELECT l.sku_id, l.launch_date, w FROM l, generate_series(0, 25) w),
     sale AS (SELECT d.sku_id, d.customer_key, d.dt FROM retail_mid.dwd_trade_order_line_di d JOIN l USING (sku_id)
               WHERE d.brand = 'np_syn' AND d.line_type = 'sale' AND d.customer_key IS NOT NULL AND d.dt >= l.launch_date AND d.dt < l.launch_date + 182),
     firsts AS (SELECT sku_id, customer_key, min(dt) AS d1 FROM sale GROUP BY 1, 2),
     seconds AS (SELECT s.sku_id, s.customer_key, min(s.dt) AS d2 FROM sale s JOIN firsts f USING (sku_id, customer_key) WHERE s.dt > f.d1 GROUP BY 1, 2)
SELECT wk.sku_id, wk.w AS week,
       (SELECT count(DISTINCT e.customer_key) FROM retail_mid.dwd_behavior_event_di e WHERE e.brand = 'np_syn' AND e.object_value = wk.sku_id
           AND e.event_type = 'exposure' AND e.dt >= wk.launch_date AND e.dt < wk.launch_date + 7 * wk.w + 7) AS exposed_cum,
       (SELECT count(DISTINCT e.customer_key) FROM retail_mid.dwd_behavior_event_di e WHERE e.brand = 'np_syn' AND e.object_value = wk.sku_id
           AND e.event_type = 'view' AND e.dt >= wk.launch_date + 7 * wk.w AND e.dt < wk.launch_date + 7 * wk.w + 7) AS visitors,
       (SELECT count(*) FROM firsts f WHERE f.sku_id = wk.sku_id AND f.d1 < wk.launch_date + 7 * wk.w + 7) AS trial_cum,
       (SELECT count(*) FROM seconds f WHERE f.sku_id = wk.sku_id AND f.d2 >= wk.launch_date + 7 * wk.w AND f.d2 < wk.launch_date + 7 * wk.w + 7) AS repeat_week,
       (SELECT coalesce(sum(d.quantity), 0) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = 'np_syn' AND d.sku_id = wk.sku_id
           AND d.dt >= wk.launch_date + 7 * wk.w AND d.dt < wk.launch_date + 7 * wk.w + 7) AS units,
       (SELECT count(DISTINCT d.store_id) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = 'np_syn' AND d.sku_id = wk.sku_id
           AND d.dt >= wk.launch_date AND d.dt < wk.launch_date + 7 * wk.w + 7) AS stores_cum,
       (SELECT count(*) FROM retail_mid.dws_inventory_site_sku_1d i WHERE i.brand = 'np_syn' AND i.sku_id = wk.sku_id AND i.stock_out
           AND i.site_kind = 'store' AND i.dt >= wk.launch_date + 7 * wk.w AND i.dt < wk.launch_date + 7 * wk.w + 7) AS stockouts
  FROM wk;
SELECT count(*) AS weeks_compared,
       count(*) FILTER (WHERE w.exposed_cum = r.exposed_cum AND w.visitors = r.visitors AND w.trial_buyers_cum = r.trial_cum
                          AND w.repeat_buyers = r.repeat_week AND w.units = r.units AND w.stores_selling_cum = r.stores_cum
                          AND w.stockout_store_days = r.stockouts) AS equal,
       sum(r.stockouts) > 0 AS has_stockouts, bool_and(w.stores_open = 4) AS four_stores
  FROM retail_mid.newproduct_week w JOIN np_ref r USING (sku_id, week) WHERE w.sku_id LIKE 'NP0%';
-- the benchmark columns are the benchmark's own tracking at the same age
SELECT bool_and(w.bm_units_cum = r.units_cum) AS benchmark_curve_ok
  FROM retail_mid.newproduct_week w JOIN np_truth t USING (sku_id)
  JOIN LATERAL retail_mid.newproduct_sku_weeks('np_syn', t.benchmark_sku, (SELECT launch_date FROM np_truth WHERE sku_id = t.benchmark_sku), 26) r
    ON r.week = w.week;
-- the function equals the stored rows
SELECT count(*) AS differing FROM (SELECT * FROM retail_mid.newproduct_tracking('np_syn', 'NP03')
                                   EXCEPT SELECT brand, sku_id, np_type, benchmark_sku, launch_date, week, week_start, stage, exposed, exposed_cum,
                                                 visitors, visitors_cum, trial_buyers, trial_buyers_cum, trial_rate, repeat_buyers, repeat_buyers_cum,
                                                 repeat_rate, units, units_cum, net_sales, stores_selling, stores_selling_cum, stores_open, distribution,
                                                 stockout_store_days, bm_trial_buyers_cum, bm_trial_rate, bm_repeat_rate, bm_units_cum, bm_distribution,
                                                 volume_index, trial_rate_target, repeat_rate_target, distribution_target, volume_index_target
                                            FROM retail_mid.newproduct_week) x;
SELECT week, stage FROM retail_mid.newproduct_week WHERE sku_id = 'NP01' AND week IN (0, 12, 13, 25) ORDER BY week;

-- competitiveness matrix and dashboard
SELECT c.sku_id, c.at_week, round(c.volume_index::numeric, 2) AS volume_index, round(c.repeat_rate::numeric, 2) AS repeat_rate, c.quadrant,
       c.quadrant = CASE WHEN c.volume_index >= c.growth_threshold THEN CASE WHEN c.repeat_rate >= c.repeat_threshold THEN 'star' ELSE 'trial_driven' END
                         ELSE CASE WHEN c.repeat_rate >= c.repeat_threshold THEN 'loyal_niche' ELSE 'laggard' END END AS quadrant_ok
  FROM retail_mid.newproduct_competitiveness c ORDER BY c.sku_id;
SELECT sku_id, weeks_tracked, stage, trial_buyers_cum, repeat_buyers_cum, quadrant IS NOT NULL AS has_quadrant FROM retail_mid.dash_newproduct ORDER BY sku_id;

-- launch-volume estimate: each launch held back after 4 weeks, weeks 4..25 estimated from the benchmark and naively
SELECT week, benchmark_units, round(scale::numeric, 3) AS scale, round(estimate::numeric, 1) AS estimate, actual,
       estimate_low <= estimate AND estimate <= estimate_high AS interval_ok
  FROM retail_mid.newproduct_estimate('np_syn', 'NP01', 4, 26) WHERE week IN (4, 10, 25) ORDER BY week;
-- the scale is the ratio of the early units (plain SQL)
SELECT abs((SELECT max(scale) FROM retail_mid.newproduct_estimate('np_syn', 'NP02', 4, 26))
           - (SELECT sum(units) FROM retail_mid.newproduct_week WHERE sku_id = 'NP02' AND week < 4)::float8
             / (SELECT sum(units) FROM retail_mid.newproduct_sku_weeks('np_syn', 'NPB2', (SELECT launch_date FROM np_truth WHERE sku_id = 'NPB2'), 4))) < 1e-9 AS scale_is_ratio;
CREATE TEMP TABLE np_bt AS SELECT * FROM retail_mid.newproduct_backtest('np_syn', 4, 26);
SELECT sku_id, benchmark_sku, actual, round(estimate::numeric) AS estimate, round(naive::numeric) AS naive,
       round(estimate_rel_error::numeric, 2) AS est_rel_err, round(naive_rel_error::numeric, 2) AS naive_rel_err,
       round(estimate_mase::numeric, 2) AS est_mase, round(naive_mase::numeric, 2) AS naive_mase, in_interval
  FROM np_bt ORDER BY sku_id;
SELECT count(*) AS launches, round(avg(estimate_rel_error)::numeric, 3) AS mean_rel_error_benchmark,
       round(avg(naive_rel_error)::numeric, 3) AS mean_rel_error_naive,
       round(avg(estimate_mase)::numeric, 2) AS mean_mase_benchmark, round(avg(naive_mase)::numeric, 2) AS mean_mase_naive,
       avg(estimate_rel_error) < avg(naive_rel_error) / 2 AS benchmark_beats_naive,
       count(*) FILTER (WHERE in_interval) AS actual_in_interval
  FROM np_bt;

-- potential customers of a store: near it (plain SQL with PostGIS on the stores' points), not buyers, ranked
SET client_min_messages = warning;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, source, expression, numeric_scale, description, scope)
VALUES ('np_gender', '其他', '其他', 'enum', 'retail_mid.dim_customer', 'gender', 2, 'Gender (test).', 'brand');
SELECT retail_mid.evaluate_tags(ARRAY['np_gender', 'monetary_td']) > 0 AS tagged;
RESET client_min_messages;
CREATE TEMP TABLE np_pot AS SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NP01', 200, 8, ARRAY['np_gender']);
WITH near AS (SELECT c.customer_key FROM retail_mid.dim_customer c
                JOIN retail_mid.dim_store h ON h.brand = c.brand AND h.store_id = c.home_store_id AND h.is_current
                JOIN retail_mid.dim_store s ON s.brand = c.brand AND s.store_id = 'S0001' AND s.is_current
               WHERE c.brand = 'np_syn' AND ST_Distance(h.geom::geography, s.geom::geography) <= 8000),
     buyers AS (SELECT DISTINCT customer_key FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'np_syn' AND sku_id = 'NP01')
SELECT count(*) AS potential, bool_and(p.customer_key IN (SELECT customer_key FROM near)) AS all_near,
       bool_and(p.customer_key NOT IN (SELECT customer_key FROM buyers)) AS none_bought,
       bool_and(p.distance_km <= 8) AS distance_ok,
       count(*) FILTER (WHERE c.gender = 'F') > 0.9 * count(*) AS women_first,
       (SELECT count(*) FROM near WHERE customer_key NOT IN (SELECT customer_key FROM buyers)) >= count(*) AS base_large_enough
  FROM np_pot p JOIN retail_mid.dim_customer c ON c.brand = 'np_syn' AND c.customer_key = p.customer_key;
-- the scores are audience_lookalike's over the same seed and base
SELECT count(*) AS compared, max(abs(p.score - l.score)) < 1e-9 AS same_scores
  FROM np_pot p JOIN retail_mid.audience_lookalike_scores(
         (SELECT retail_mid.rb_build_agg(customer_key) FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'np_syn' AND sku_id = 'NP01'),
         retail_mid.rb_or((SELECT retail_mid.rb_build_agg(customer_key) FROM retail_mid.newproduct_near_customers('np_syn', 'S0001', 8)),
                          (SELECT retail_mid.rb_build_agg(customer_key) FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'np_syn' AND sku_id = 'NP01')),
         ARRAY['np_gender'], 'np_syn', 200, 5) l USING (customer_key);
SELECT count(*) AS home_store_only, bool_and(home_store_id = 'S0001') AS at_s0001 FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NP01', 10, 0);

-- the loader: all or nothing, with reasons
SELECT format('/tmp/retail_mid_np_%s.csv', pg_backend_pid()) AS csv_path \gset
SELECT format($c$COPY (SELECT * FROM (VALUES ('P000001', 'improved', 'P000002', '2024-03-01'), ('P000003', 'follower', '', ''),
                                            ('NOSUCH', 'improved', 'P000002', ''), ('P000004', 'nosuchtype', 'P000002', ''),
                                            ('P000005', 'improved', 'NOSUCH', ''), ('P000006', 'improved', 'P000006', ''),
                                            ('P000007', 'improved', 'P000002', '2999-01-01'), ('P000008', 'improved', 'P000002', '2024-02-30'),
                                            ('P000001', 'follower', 'P000009', '')) v(sku_id, np_type, benchmark_sku, launch_date))
               TO %L WITH (FORMAT csv, HEADER true)$c$, :'csv_path') AS copy_out \gset
:copy_out;
SET client_min_messages = warning;
\set VERBOSITY sqlstate
SELECT rows_read, rows_loaded FROM retail_mid.load_newproducts(:'csv_path', 'np_syn');
\set VERBOSITY default
SELECT count(*) AS nothing_loaded FROM retail_mid.newproduct WHERE brand = 'np_syn' AND sku_id LIKE 'P%';
SELECT rows_read, rows_loaded, rows_rejected, jsonb_pretty(rejects) AS rejects FROM retail_mid.load_newproducts(:'csv_path', 'np_syn', 10);
RESET client_min_messages;
SELECT sku_id, np_type, benchmark_sku, launch_date FROM retail_mid.newproduct WHERE brand = 'np_syn' AND sku_id LIKE 'P%' ORDER BY 1;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', 'cat > /dev/null; rm -f ' || :'csv_path') AS rm_cmd \gset
:rm_cmd;

-- bad inputs
\set VERBOSITY sqlstate
INSERT INTO retail_mid.newproduct (brand, sku_id, np_type, benchmark_sku) VALUES ('np_syn', 'NOSUCH', 'improved', 'P000002');
INSERT INTO retail_mid.newproduct (brand, sku_id, np_type, benchmark_sku) VALUES ('np_syn', 'P000010', 'improved', NULL);
INSERT INTO retail_mid.newproduct (brand, sku_id, np_type, benchmark_sku, launch_date) VALUES ('np_syn', 'P000010', 'improved', 'P000002', current_date + 30);
INSERT INTO retail_mid.newproduct_type (brand, np_type, trial_rate_target) VALUES ('np_syn', 'bad', 1.5);
\set VERBOSITY default
SELECT * FROM retail_mid.newproduct_tracking('np_syn', 'NOSUCH');
SELECT * FROM retail_mid.newproduct_tracking('np_syn', 'P000011');
SELECT * FROM retail_mid.newproduct_tracking('np_syn', 'NP01', 0);
SELECT * FROM retail_mid.newproduct_tracking(NULL);
SELECT * FROM retail_mid.newproduct_tracking('no_such_brand');
-- a product launched after the data: tracked by nobody, refused when asked for
UPDATE retail_mid.newproduct SET launch_date = '2025-06-01' WHERE brand = 'np_syn' AND sku_id = 'NP08';
SELECT * FROM retail_mid.newproduct_tracking('np_syn', 'NP08');
SELECT count(DISTINCT sku_id) AS tracked FROM retail_mid.newproduct_tracking('np_syn', NULL, 4);
-- no benchmark: tracked without one, no estimate
INSERT INTO retail_mid.newproduct_type (brand, np_type, needs_benchmark) VALUES ('np_syn', 'seasonal', false);
UPDATE retail_mid.newproduct SET np_type = 'seasonal', benchmark_sku = NULL, launch_date = NULL WHERE brand = 'np_syn' AND sku_id = 'NP07';
SELECT count(*) AS weeks, bool_and(bm_units_cum IS NULL) AS no_benchmark FROM retail_mid.newproduct_tracking('np_syn', 'NP07');
SELECT * FROM retail_mid.newproduct_estimate('np_syn', 'NP07');
SELECT * FROM retail_mid.newproduct_estimate('np_syn', 'NP01', 4, 60);
SELECT * FROM retail_mid.newproduct_estimate('np_syn', 'NP01', 0, 26);
SELECT * FROM retail_mid.newproduct_estimate('np_syn', 'NOSUCH');
SELECT * FROM retail_mid.newproduct_backtest('np_syn', 1);
SELECT retail_mid.newproduct_stage('2024-05-01', '2024-04-01');
SELECT retail_mid.newproduct_stage('infinity', '2024-04-01');
SELECT retail_mid.newproduct_stage(NULL, '2024-04-01');
SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'NOSUCH', 'NP01');
SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NOSUCH');
INSERT INTO retail_mid.dim_product (brand, sku_id, valid_from, category_l1, category_l2, category_l3, category_l4, product_brand, price_band, status)
VALUES ('np_syn', 'NPX', '2024-01-01', 'Food', 'Food 1', 'Food 1.1', 'Food 1.1.1', 'x', 'unknown', 'active');   -- never sold, no benchmark
SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NPX');
SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NP01', 0);
SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NP01', 10, 'NaN');
SELECT * FROM retail_mid.newproduct_potential_customers('np_syn', 'S0001', 'NP01', 10, 5, ARRAY['no_such_tag']);
SELECT * FROM retail_mid.generate_synthetic_launches('no_such_brand');
SELECT * FROM retail_mid.generate_synthetic_launches('np_syn', 0);
SELECT * FROM retail_mid.generate_synthetic_launches('np_syn', 2, 1, 60);
SELECT job, rows_written > 0 AS wrote FROM retail_mid.job_log WHERE job IN ('generate_synthetic_launches', 'newproduct_refresh', 'load_newproducts') ORDER BY job_id;
