-- The whole retail_mid pipeline on the embedded synthetic default (data_dir empty) or on the public files.
\pset footer off
\pset null '-'
SET client_min_messages = warning;
CREATE EXTENSION retail_mid CASCADE;
SELECT :'data_dir' <> '' AS real_data \gset
\echo
\echo '=== retail_mid demo ==================================================================='
\if :real_data
\echo 'Loading the public data sets from' :'data_dir'
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_online_retail(:'data_dir' || '/online_retail.csv.gz');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_cdnow(:'data_dir' || '/cdnow_elog.csv');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_orange_juice(:'data_dir');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_boston_tracts(:'data_dir' || '/geo/boston_tracts.csv');
\else
\echo 'No data directory given: generating the embedded synthetic default (seed 42, 5,000 customers, one year)'
SELECT retail_mid.generate_synthetic() AS synthetic_order_lines;
\endif
\echo
\echo '--- 1. Loads (ODS) ---'
SELECT source, brand, rows_read, rows_loaded, rows_rejected FROM retail_mid.ods_load ORDER BY load_id;

\echo '--- 2. Refresh of the public layer (DWD, DWS) ---'
SELECT retail_mid.refresh_all() AS rows_written;
SELECT rule, sum(lines) AS lines FROM retail_mid.dwd_trade_cleaning_1d GROUP BY rule ORDER BY rule;

\echo '--- 3. Trade per brand (DWS) ---'
SELECT s.brand, min(dt) AS first_day, max(dt) AS last_day, sum(orders) AS orders,
       round(sum(net_amount), 2) AS net_amount, round(sum(return_amount), 2) AS returns,
       (SELECT count(*) FROM retail_mid.dws_trade_customer_td c WHERE c.brand = s.brand) AS customers
  FROM retail_mid.dws_trade_store_1d s GROUP BY s.brand ORDER BY s.brand;

\echo '--- 4. Stores over the last 30 days (exact distinct customers from bitmaps) ---'
SELECT brand, store_id, orders, round(net_amount, 2) AS net_amount, customers
  FROM retail_mid.dws_trade_store_nd WHERE period_days = 30 ORDER BY net_amount DESC LIMIT 8;

\echo '--- 5. Top customers over the last 365 days ---'
SELECT brand, customer_key, orders_365d, round(net_amount_365d, 2) AS net_amount_365d, last_order_date
  FROM retail_mid.dws_trade_customer_nd ORDER BY net_amount_365d DESC LIMIT 5;

\if :real_data
\set rfm_brand online_retail
\set aipl_brand complete_journey
\set clv_brand cdnow
\set fc_brand dominicks
\set fc_frequency week
\set zone_brand boston
\else
\set rfm_brand synthetic
\set aipl_brand synthetic
\set clv_brand synthetic
\set fc_brand synthetic
\set fc_frequency day
\set zone_brand synthetic
\endif
SELECT as_of AS rfm_as_of FROM retail_mid.dws_refresh_state WHERE brand = :'rfm_brand' \gset

\echo '--- 6. RFM segments of' :'rfm_brand' 'as of' :'rfm_as_of' '(365 days, ten-segment map) ---'
SELECT retail_mid.rfm_refresh(:'rfm_brand', :'rfm_as_of', 365) AS customers_scored;
SELECT segment, customers, round((customer_share * 100)::numeric, 1) AS customer_pct, round((revenue_share * 100)::numeric, 1) AS revenue_pct
  FROM retail_mid.rfm_segment_summary WHERE brand = :'rfm_brand' AND as_of = :'rfm_as_of' AND map_name = 'ten_segment'
 ORDER BY revenue_share DESC;

\echo '--- 6b. OneID: identifiers resolved into persons ---'
SELECT * FROM retail_mid.resolve_identities();

\echo '--- 6c. AIPL funnel of' :'aipl_brand' '(last 90 days) ---'
SELECT as_of AS aipl_to, as_of - 89 AS aipl_from FROM retail_mid.dws_refresh_state WHERE brand = :'aipl_brand' \gset
SELECT retail_mid.aipl_refresh(:'aipl_brand', :'aipl_from', :'aipl_to') AS customer_days;
SELECT * FROM retail_mid.aipl_trend_30d WHERE brand = :'aipl_brand' ORDER BY dt DESC LIMIT 3;
SELECT * FROM retail_mid.aipl_gmv_decomposition(:'aipl_brand', (:'aipl_to'::date - 30), :'aipl_to');

\echo '--- 7. Customer lifetime value (BG/NBD + Gamma-Gamma) on' :'clv_brand' '---'
SELECT CASE WHEN :'clv_brand' = 'cdnow' THEN date '1997-09-30' ELSE max(as_of) - 90 END AS cal_end,
       CASE WHEN :'clv_brand' = 'cdnow' THEN date '1998-06-30' ELSE max(as_of) END AS obs_end
  FROM retail_mid.dws_refresh_state WHERE brand = :'clv_brand' \gset
CREATE TEMP TABLE demo_cbs AS
SELECT customer_key, (retail_mid.clv_summary(dt, net_amount::float8, :'cal_end', :'obs_end', 7)).*
  FROM retail_mid.dws_trade_customer_1d WHERE brand = :'clv_brand' AND net_amount > 0 GROUP BY customer_key;
CREATE TEMP TABLE demo_fit AS
SELECT (SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM demo_cbs) AS bg,
       (SELECT retail_mid.gammagamma_fit(x, mean_spend) FROM demo_cbs) AS gg;
SELECT round((bg).r::numeric, 3) AS r, round((bg).alpha::numeric, 3) AS alpha, round((bg).a::numeric, 3) AS a,
       round((bg).b::numeric, 3) AS b, round((gg).p::numeric, 2) AS p, round((gg).q::numeric, 2) AS q,
       round((gg).gamma::numeric, 2) AS gamma FROM demo_fit;
SELECT customer_key, x AS repeat_purchases, round(retail_mid.bgnbd_p_alive(bg, x, t_x, t_cal)::numeric, 3) AS p_alive,
       round(retail_mid.bgnbd_expected_purchases(bg, 39, x, t_x, t_cal)::numeric, 2) AS next_39_weeks,
       round(retail_mid.clv(bg, gg, x, t_x, t_cal, mean_spend, 52, 0.002)::numeric, 2) AS clv_52_weeks
  FROM demo_cbs, demo_fit ORDER BY clv_52_weeks DESC NULLS LAST LIMIT 5;

\if :real_data
\echo '--- 7b. RFM, AIPL and CLV side by side on Online Retail and Complete Journey ---'
-- whole-history RFM segments (from the to-date DWS table) of both brands
SELECT brand, segment, count(*) AS customers, round(sum(monetary)::numeric, 0) AS monetary
  FROM (SELECT 'online_retail' AS brand, * FROM retail_mid.rfm_scores_td('online_retail')
        UNION ALL SELECT 'complete_journey', * FROM retail_mid.rfm_scores_td('complete_journey')) r
 GROUP BY 1, 2 ORDER BY 1, 3 DESC;
-- AIPL stages on the last day of each brand (Online Retail has purchases only: P and L)
SELECT as_of AS or_to FROM retail_mid.dws_refresh_state WHERE brand = 'online_retail' \gset
SELECT retail_mid.aipl_refresh('online_retail', (:'or_to'::date - 89), :'or_to') AS online_retail_customer_days;
SELECT s.brand, s.stage, count(*) AS customers
  FROM retail_mid.dws_aipl_customer_stage_1d s
  JOIN retail_mid.dws_refresh_state r ON r.brand = s.brand AND s.dt = r.as_of
 WHERE s.brand IN ('online_retail', 'complete_journey') GROUP BY 1, 2 ORDER BY 1, 2;
-- BG/NBD + Gamma-Gamma per brand: calibration to 90 days before the last day, weekly periods
CREATE TEMP TABLE demo_cbs2 AS
SELECT d.brand, d.customer_key, (retail_mid.clv_summary(d.dt, d.net_amount::float8, r.as_of - 90, r.as_of, 7)).*
  FROM retail_mid.dws_trade_customer_1d d JOIN retail_mid.dws_refresh_state r USING (brand)
 WHERE d.brand IN ('online_retail', 'complete_journey') AND d.net_amount > 0 GROUP BY d.brand, d.customer_key;
SELECT brand, customers, round((bg).r::numeric, 3) AS r, round((bg).alpha::numeric, 3) AS alpha,
       round((bg).a::numeric, 3) AS a, round((bg).b::numeric, 3) AS b, round((gg).p::numeric, 2) AS p,
       round((gg).q::numeric, 2) AS q, round((gg).gamma::numeric, 2) AS gamma
  FROM (SELECT brand, count(*) AS customers, retail_mid.bgnbd_fit(x, t_x, t_cal) AS bg,
               retail_mid.gammagamma_fit(x, mean_spend) AS gg FROM demo_cbs2 GROUP BY brand) f
 ORDER BY brand;
\endif

\echo '--- 8. Demand forecasts for' :'fc_brand' '(every SKU x store of the 20 best sellers, 4 periods ahead) ---'
CREATE TEMP TABLE demo_forecast AS
SELECT store_id, sku_id, retail_mid.forecast(dt, sales_quantity::float8, 4, jsonb_build_object('frequency', :'fc_frequency')) AS f
  FROM retail_mid.dws_trade_sku_store_1d
 WHERE brand = :'fc_brand'
   AND sku_id IN (SELECT sku_id FROM retail_mid.dws_trade_sku_store_td WHERE brand = :'fc_brand'
                   GROUP BY sku_id ORDER BY sum(quantity) DESC LIMIT 20)
 GROUP BY store_id, sku_id;
SELECT f->>'model' AS model, f->>'demand_class' AS demand_class, count(*) AS series
  FROM demo_forecast GROUP BY 1, 2 ORDER BY 3 DESC;
SELECT d.store_id, d.sku_id, r.step, r.date, round(r.mean::numeric, 1) AS mean, round(r.lo80::numeric, 1) AS lo80,
       round(r.hi80::numeric, 1) AS hi80
  FROM (SELECT * FROM demo_forecast ORDER BY store_id, sku_id LIMIT 1) d, retail_mid.forecast_rows(d.f) r;

\echo '--- 9. Site selection (Huff model) on the' :'zone_brand' 'demand zones ---'
SELECT * FROM retail_mid.site_import_ods(:'zone_brand');
-- competitors: a store near every fifth zone centre (every fortieth is the brand's own); candidates: every seventh
INSERT INTO retail_mid.site_store (store_id, brand, store_code, name, own, geom, attractiveness)
SELECT 100000 + zone_id, :'zone_brand', 'Z' || zone_id, 'Store near ' || name, zone_id % 40 = 0,
       ST_PointOnSurface(geom), 500 + 100 * (zone_id % 7)
  FROM retail_mid.site_demand_zone WHERE zone_id % 5 = 0;
INSERT INTO retail_mid.site_candidate (candidate_id, name, geom, attractiveness)
SELECT zone_id, 'Candidate in ' || name, ST_PointOnSurface(geom), 1000
  FROM retail_mid.site_demand_zone WHERE zone_id % 7 = 3;
SELECT retail_mid.site_score_candidates(1.0, 2.0, 10000) AS candidates_scored;
SELECT rank, name, round(expected_sales::numeric) AS expected_sales, round(cannibalisation::numeric) AS cannibalisation,
       round(net_gain::numeric) AS net_gain, round((market_share * 100)::numeric, 1) AS share_pct, competitors
  FROM retail_mid.site_candidate_ranking ORDER BY rank LIMIT 5;

\echo '--- 10. Data quality of the DWD (default order-line rules) ---'
SELECT retail_mid.quality_add_default_rules('retail_mid.dwd_trade_order_line_di') AS rules_added;
SELECT retail_mid.quality_evaluate('retail_mid.dwd_trade_order_line_di') AS results;
SELECT grain, subject, score FROM retail_mid.quality_score WHERE grain IN ('table', 'dimension') ORDER BY grain, subject;

\echo '--- Job log ---'
SELECT job, outcome, rows_written, round(extract(epoch FROM duration)::numeric, 1) AS seconds
  FROM retail_mid.job_log ORDER BY job_id;
