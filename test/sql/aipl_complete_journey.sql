-- aipl_complete_journey: AIPL on Dunnhumby's Complete Journey (campaign received = awareness, coupon redemption =
-- interest, purchases, purchases on two days = loyalty: the default rules), on bitmaps, checked against plain SQL
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
-- the reference: the rules' signals read from the DWD with plain SQL, windows, thresholds, rules ORed, highest stage
CREATE FUNCTION pg_temp.aipl_reference(b text, d0 date, d1 date)
RETURNS TABLE (dt date, customer_key int4, stage text) LANGUAGE sql AS $$
WITH r AS (SELECT * FROM retail_mid.aipl_rule WHERE brand = b
           UNION ALL SELECT * FROM retail_mid.aipl_rule WHERE brand = '*' AND NOT EXISTS (SELECT 1 FROM retail_mid.aipl_rule WHERE brand = b)),
prod AS (SELECT * FROM retail_mid.dim_product WHERE brand = b AND is_current),
lb AS (SELECT max(lookback_days) AS days FROM r),
sig AS (
    SELECT r.stage, r.rule_name, e.customer_key, e.dt, e.event_count::numeric AS n, coalesce(e.amount, 0) AS amount
      FROM r JOIN retail_mid.dwd_behavior_event_di e ON e.brand = b AND r.source = 'event' AND e.event_type = ANY (r.signal_types)
                                                      AND e.dt > d0 - (SELECT days FROM lb) AND e.dt <= d1
      LEFT JOIN prod p ON e.object_attribute = 'sku_id' AND p.sku_id = e.object_value
     WHERE r.object_filter = 'any' OR (r.object_filter = 'own_brand' AND p.product_brand = coalesce(r.object_value, b))
        OR (r.object_filter = 'category' AND r.object_value IN (p.category_l1, p.category_l2, p.category_l3, p.category_l4))
    UNION ALL
    SELECT r.stage, r.rule_name, t.customer_key, t.dt, 1, 0
      FROM r JOIN retail_mid.dwd_marketing_touch_di t ON t.brand = b AND r.source = 'touch' AND t.touch_type = ANY (r.signal_types)
                                                      AND t.dt > d0 - (SELECT days FROM lb) AND t.dt <= d1
    UNION ALL  -- order days: one signal per day with a sale, whatever the number of baskets
    SELECT r.stage, r.rule_name, c.customer_key, c.dt, 1, c.net_amount
      FROM r JOIN retail_mid.dws_trade_customer_1d c ON c.brand = b AND r.source = 'order' AND r.object_filter = 'any' AND c.orders > 0
                                                      AND c.dt > d0 - (SELECT days FROM lb) AND c.dt <= d1
    UNION ALL  -- with an object filter: days with a sale line of a matching SKU, their amount
    SELECT r.stage, r.rule_name, l.customer_key, l.dt, 1, sum(l.amount)
      FROM r JOIN retail_mid.dwd_trade_order_line_di l ON l.brand = b AND r.source = 'order' AND r.object_filter <> 'any'
                                                         AND l.customer_key IS NOT NULL AND l.line_type = 'sale'
                                                         AND l.dt > d0 - (SELECT days FROM lb) AND l.dt <= d1
      JOIN prod p ON p.sku_id = l.sku_id
     WHERE (r.object_filter = 'own_brand' AND p.product_brand = coalesce(r.object_value, b))
        OR (r.object_filter = 'category' AND r.object_value IN (p.category_l1, p.category_l2, p.category_l3, p.category_l4))
     GROUP BY 1, 2, 3, 4),
days AS (SELECT d::date AS dt FROM generate_series(d0, d1, interval '1 day') d),
held AS (SELECT DISTINCT days.dt, sig.customer_key, r.stage
           FROM days JOIN r ON true
           JOIN sig ON sig.stage = r.stage AND sig.rule_name = r.rule_name AND sig.dt > days.dt - r.lookback_days AND sig.dt <= days.dt
          GROUP BY days.dt, sig.customer_key, r.stage, r.rule_name, r.min_count, r.min_amount
         HAVING sum(sig.n) >= r.min_count AND sum(sig.amount) >= r.min_amount)
SELECT dt, customer_key, CASE max(CASE stage WHEN 'A' THEN 1 WHEN 'I' THEN 2 WHEN 'P' THEN 3 ELSE 4 END)
                         WHEN 1 THEN 'A' WHEN 2 THEN 'I' WHEN 3 THEN 'P' ELSE 'L' END
  FROM held GROUP BY dt, customer_key
$$;
CREATE TEMP TABLE cj_reference AS SELECT * FROM pg_temp.aipl_reference('cj_aipl', '2017-06-01', '2017-09-30');
SELECT (SELECT count(*) FROM (SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'cj_aipl'
                              EXCEPT SELECT * FROM cj_reference) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM cj_reference
                              EXCEPT SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'cj_aipl') x) AS missing;
-- the signals come from the real sources: campaigns received, coupons redeemed, baskets
SELECT stage, rule_name, count(*) AS customer_days_with_signals FROM retail_mid.aipl_rule_signals('cj_aipl', '2017-06-01', '2017-09-30')
 GROUP BY 1, 2 ORDER BY 1, 2;
-- order days, not orders: households whose only shopping day in the 180 days had two or more baskets are not Loyal
WITH one_day AS (
    SELECT c.customer_key, c.dt FROM retail_mid.dws_trade_customer_1d c
     WHERE c.brand = 'cj_aipl' AND c.orders >= 2 AND c.dt BETWEEN '2017-06-01' AND '2017-09-30'
       AND NOT EXISTS (SELECT 1 FROM retail_mid.dws_trade_customer_1d o WHERE o.brand = 'cj_aipl' AND o.customer_key = c.customer_key
                          AND o.orders > 0 AND o.dt <> c.dt AND o.dt > c.dt - 180 AND o.dt <= c.dt))
SELECT count(*) AS multi_basket_single_days, count(*) FILTER (WHERE retail_mid.aipl_stage_of('cj_aipl', dt, customer_key) = 'L') AS loyal
  FROM one_day;
-- stored as bitmaps: rows and bytes
SELECT count(*) AS bitmaps, sum(members) AS customer_days FROM retail_mid.dws_aipl_stage_bitmap_1d WHERE brand = 'cj_aipl';
SELECT stage, count(*) AS households FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'cj_aipl' AND dt = '2017-09-30'
 GROUP BY stage ORDER BY stage;
SELECT * FROM retail_mid.aipl_gmv_decomposition('cj_aipl', '2017-09-01', '2017-09-30');
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
