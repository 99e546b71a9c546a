-- dashboard: the dash_* views (one per dashboard tile) against plain SQL over the tables they summarise, on a small
-- synthetic brand; and a BI member of another brand sees none of their rows.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 11, customers => 200, days => 60, orders_per_day => 20, stores => 2, skus => 15,
                                     start_date => '2025-03-01', brand => 'dash_a') > 0 AS generated;
SELECT retail_mid.refresh('2025-03-01', '2025-04-29') > 0 AS refreshed;
SELECT retail_mid.aipl_refresh('dash_a', '2025-04-10', '2025-04-29') > 0 AS staged;
SELECT retail_mid.rfm_refresh('dash_a', '2025-04-29', 365) > 0 AS rfm;
SELECT retail_mid.evaluate_tags(ARRAY['lifecycle', 'repeat_buyer', 'returner', 'monetary_td']) > 0 AS tagged;
SELECT retail_mid.save_audience('dash_repeat', 'repeat_buyer', 'dash_a') AS version;
SELECT retail_mid.replenish_refresh_forecasts('dash_a', '2025-04-19', 60, 14) AS series;
RESET client_min_messages;
-- the views are security_invoker (dash_site_candidate: owned by the view owner) and readable by BI
SELECT c.relname, coalesce('security_invoker=true' = ANY (c.reloptions), false) AS invoker, pg_get_userbyid(c.relowner) = 'retail_mid_view_owner' AS view_owner,
       has_table_privilege('retail_mid_bi', c.oid, 'SELECT') AS bi, has_table_privilege('retail_mid_analyst', c.oid, 'SELECT') AS analyst
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relname LIKE 'dash\_%' ORDER BY 1;

-- AIPL trend = counts of dws_aipl_customer_stage_1d; = aipl_trend_30d over its days
SELECT count(*) AS mismatches FROM (
  SELECT dt, stage::text, count(*) AS customers FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'dash_a' GROUP BY 1, 2
  EXCEPT SELECT dt, stage, customers FROM retail_mid.dash_aipl_trend WHERE brand = 'dash_a') x;
SELECT count(*) AS mismatches FROM retail_mid.aipl_trend_30d t
  JOIN (SELECT dt, sum(customers) FILTER (WHERE stage = 'L') AS l, sum(customers) FILTER (WHERE stage = 'A') AS a
          FROM retail_mid.dash_aipl_trend WHERE brand = 'dash_a' GROUP BY dt) d ON d.dt = t.dt
 WHERE t.brand = 'dash_a' AND (coalesce(d.l, 0) <> t.loyalty OR coalesce(d.a, 0) <> t.awareness);
-- AIPL flow of each day = aipl_flow(previous day, day), without the (-, -) pair
SELECT count(*) AS days, sum(CASE WHEN ok THEN 1 ELSE 0 END) AS days_equal FROM (
  SELECT d.dt, NOT EXISTS (
           (SELECT f.from_stage, f.to_stage, f.customers FROM retail_mid.aipl_flow('dash_a', d.dt - 1, d.dt) f
             WHERE NOT (f.from_stage = '-' AND f.to_stage = '-')
            EXCEPT SELECT v.from_stage, v.to_stage, v.customers FROM retail_mid.dash_aipl_flow v WHERE v.brand = 'dash_a' AND v.dt = d.dt)
           UNION ALL
           (SELECT v.from_stage, v.to_stage, v.customers FROM retail_mid.dash_aipl_flow v WHERE v.brand = 'dash_a' AND v.dt = d.dt
            EXCEPT SELECT f.from_stage, f.to_stage, f.customers FROM retail_mid.aipl_flow('dash_a', d.dt - 1, d.dt) f)) AS ok
    FROM generate_series(date '2025-04-11', date '2025-04-29', interval '1 day') g(t), LATERAL (SELECT g.t::date AS dt) d) x;
-- GMV: the function over the last 30 staged days (here all 20), the shares add up to 1
SELECT v.stage, v.gmv = f.gmv AS gmv_equal, v.customers = f.customers AS customers_equal, v.from_date, v.to_date
  FROM retail_mid.dash_aipl_gmv v JOIN retail_mid.aipl_gmv_decomposition('dash_a', '2025-04-10', '2025-04-29') f USING (stage)
 WHERE v.brand = 'dash_a' ORDER BY array_position(ARRAY['A', 'I', 'P', 'L'], v.stage);
SELECT round(sum(gmv_share), 4) AS share_sum FROM retail_mid.dash_aipl_gmv WHERE brand = 'dash_a';
-- RFM: the latest snapshot's segments count every customer of the snapshot
SELECT as_of, sum(customers) = (SELECT count(*) FROM retail_mid.rfm_snapshot WHERE brand = 'dash_a' AND as_of = '2025-04-29') AS all_counted,
       round(sum(customer_share)::numeric, 6) AS shares
  FROM retail_mid.dash_rfm_distribution WHERE brand = 'dash_a' GROUP BY as_of;
-- portrait: shares recomputed from the tag values and the members
WITH m AS (SELECT customer_key FROM retail_mid.audience_member_brand WHERE brand = 'dash_a' AND audience_name = 'dash_repeat'),
     t AS (SELECT customer_key, value FROM retail_mid.tag_value_brand WHERE brand = 'dash_a' AND tag_name = 'returner'),
     ref AS (SELECT t.value, round(count(*) FILTER (WHERE t.customer_key IN (SELECT customer_key FROM m))::numeric
                                   / (SELECT count(*) FROM t WHERE customer_key IN (SELECT customer_key FROM m)), 6) AS audience_share,
                    round(count(*)::numeric / (SELECT count(*) FROM t), 6) AS base_share
               FROM t GROUP BY t.value)
SELECT r.value, r.audience_share = p.audience_share AS audience_equal, r.base_share = p.base_share AS base_equal
  FROM ref r LEFT JOIN retail_mid.dash_audience_portrait p ON p.brand = 'dash_a' AND p.audience_name = 'dash_repeat'
   AND p.tag_name = 'returner' AND p.value = r.value ORDER BY r.value;
SELECT count(*) FILTER (WHERE tag_name = 'monetary_td') AS numeric_tag_rows, count(DISTINCT tag_name) AS tags
  FROM retail_mid.dash_audience_portrait WHERE brand = 'dash_a';
-- campaigns: touches per campaign and channel
SELECT count(*) AS mismatches FROM (
  SELECT campaign_id, channel, count(*) FILTER (WHERE touch_type = 'sent') AS sent, count(*) FILTER (WHERE touch_type = 'redeemed') AS redeemed
    FROM retail_mid.campaign_touch_keyed WHERE brand = 'dash_a' GROUP BY 1, 2
  EXCEPT SELECT campaign_id, channel, sent, redeemed FROM retail_mid.dash_campaign_performance WHERE brand = 'dash_a') x;
-- stock: the latest snapshot of each site
SELECT count(*) AS rows, sum(on_hand) = (SELECT sum(i.on_hand) FROM retail_mid.ods_inventory_snapshot i WHERE i.brand = 'dash_a'
          AND i.snapshot_date = (SELECT max(j.snapshot_date) FROM retail_mid.ods_inventory_snapshot j WHERE j.brand = 'dash_a' AND j.site_id = i.site_id)) AS on_hand_equal,
       count(*) FILTER (WHERE available <> on_hand - reserved) AS bad_available
  FROM retail_mid.dash_stock_position WHERE brand = 'dash_a';
-- replenishment = the suggested orders
SELECT count(*) = (SELECT count(*) FROM retail_mid.suggested_orders('dash_a')) AS rows_equal FROM retail_mid.dash_replenishment WHERE brand = 'dash_a';
-- forecast against actuals: 14 steps, each with the units sold that day (0 without sales), summed per day
SELECT count(*) AS mismatches FROM (
  SELECT f.dt, round(sum(f.actual)::numeric, 3) AS actual FROM retail_mid.dash_forecast_actual f WHERE f.brand = 'dash_a' GROUP BY f.dt
  EXCEPT
  (SELECT d.dt, coalesce((SELECT sum(s.sales_quantity) FROM retail_mid.dws_trade_sku_store_1d s JOIN retail_mid.replenish_forecast r
                          ON r.brand = s.brand AND r.site_id = s.store_id AND r.sku_id = s.sku_id
                         WHERE s.brand = 'dash_a' AND s.dt = d.dt), 0)
    FROM generate_series(date '2025-04-20', date '2025-04-29', interval '1 day') g(t), LATERAL (SELECT g.t::date AS dt) d
  UNION ALL SELECT d.dt, NULL FROM generate_series(date '2025-04-30', date '2025-05-03', interval '1 day') g(t), LATERAL (SELECT g.t::date AS dt) d)) x;
SELECT min(step), max(step), count(DISTINCT dt) AS days FROM retail_mid.dash_forecast_actual WHERE brand = 'dash_a';

-- a BI member of another brand sees no row of dash_a
CREATE ROLE dash_bi LOGIN IN ROLE retail_mid_bi;
INSERT INTO retail_mid.brand_entitlement VALUES ('dash_bi', 'dash_other');
SET ROLE dash_bi;
SELECT (SELECT count(*) FROM retail_mid.dash_aipl_trend) + (SELECT count(*) FROM retail_mid.dash_aipl_flow)
     + (SELECT count(*) FROM retail_mid.dash_aipl_gmv) + (SELECT count(*) FROM retail_mid.dash_rfm_distribution)
     + (SELECT count(*) FROM retail_mid.dash_audience_portrait) + (SELECT count(*) FROM retail_mid.dash_campaign_performance)
     + (SELECT count(*) FROM retail_mid.dash_reach_plan) + (SELECT count(*) FROM retail_mid.dash_stock_position)
     + (SELECT count(*) FROM retail_mid.dash_replenishment) + (SELECT count(*) FROM retail_mid.dash_forecast_actual)
     + (SELECT count(*) FROM retail_mid.dash_site_store) + (SELECT count(*) FILTER (WHERE brand = 'dash_a') FROM retail_mid.dash_quality_scorecard) AS rows_seen;
RESET ROLE;
SET client_min_messages = warning;
DELETE FROM retail_mid.brand_entitlement WHERE grantee::text = 'dash_bi';
DROP ROLE dash_bi;
RESET client_min_messages;
