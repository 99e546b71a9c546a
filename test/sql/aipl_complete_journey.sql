-- aipl_complete_journey: AIPL on Dunnhumby's Complete Journey (campaign received = awareness, coupon redemption =
-- interest, purchases, repeat purchases = loyalty: the default rules), checked against plain SQL
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_aipl');
SELECT retail_mid.refresh('2017-01-01', '2017-12-31') > 0 AS refreshed;
SELECT retail_mid.aipl_refresh('cj_aipl', '2017-06-01', '2017-09-30') AS customer_days;
RESET client_min_messages;
CREATE TEMP TABLE cj_reference AS
WITH sig AS (SELECT * FROM retail_mid.aipl_signals('cj_aipl', '2017-06-01', '2017-09-30')),
     r AS (SELECT * FROM retail_mid.aipl_rule WHERE brand = '*'),
     days AS (SELECT d::date AS dt FROM generate_series(date '2017-06-01', date '2017-09-30', interval '1 day') d),
     held AS (SELECT days.dt, sig.customer_key, r.stage
                FROM days JOIN r ON true
                JOIN sig ON sig.stage = r.stage AND sig.source = r.source AND sig.dt > days.dt - r.lookback_days AND sig.dt <= days.dt
               GROUP BY days.dt, sig.customer_key, r.stage, r.source, r.min_count, r.min_amount
              HAVING sum(sig.n) >= r.min_count AND sum(sig.amount) >= r.min_amount)
SELECT dt, customer_key, CASE max(CASE stage WHEN 'A' THEN 1 WHEN 'I' THEN 2 WHEN 'P' THEN 3 ELSE 4 END)
                         WHEN 1 THEN 'A' WHEN 2 THEN 'I' WHEN 3 THEN 'P' ELSE 'L' END AS stage
  FROM held GROUP BY dt, customer_key;
SELECT (SELECT count(*) FROM (SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'cj_aipl'
                              EXCEPT SELECT * FROM cj_reference) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM cj_reference
                              EXCEPT SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'cj_aipl') x) AS missing;
-- the signals come from the real sources: campaigns received, coupons redeemed, baskets
SELECT stage, source, count(*) AS customer_days_with_signals FROM retail_mid.aipl_signals('cj_aipl', '2017-06-01', '2017-09-30')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT stage, count(*) AS households FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'cj_aipl' AND dt = '2017-09-30'
 GROUP BY stage ORDER BY stage;
SELECT * FROM retail_mid.aipl_gmv_decomposition('cj_aipl', '2017-09-01', '2017-09-30');
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
