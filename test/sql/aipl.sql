-- aipl: the daily AIPL stage bitmaps against plain SQL (row by row from the public layer), order days, rules ORed per
-- stage, object filters, idempotent refresh, flow, trend, GMV decomposition, the aggregate in parallel, bad input
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 21, customers => 300, days => 120, orders_per_day => 25, stores => 3,
                                     skus => 60, start_date => '2024-01-01', brand => 'aipl_t') > 0 AS generated;
SELECT retail_mid.refresh('2024-01-01', '2024-04-29') > 0 AS refreshed;
RESET client_min_messages;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-02-01', '2024-04-29') > 0 AS staged;

-- the reference: every rule's signals read from the DWD/DWS with plain SQL, then every day x rule, the signals in
-- its window, thresholds, rules ORed, highest stage; compared with the per-customer view of the bitmaps
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
CREATE TEMP TABLE aipl_reference AS SELECT * FROM pg_temp.aipl_reference('aipl_t', '2024-02-01', '2024-04-29');
SELECT (SELECT count(*) FROM aipl_reference) > 10000 AS many_customer_days,
       (SELECT count(*) FROM (SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t'
                              EXCEPT SELECT * FROM aipl_reference) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM aipl_reference
                              EXCEPT SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t') x) AS missing;
-- every stage occurs; one bitmap per day and stage, its cardinality in members
SELECT stage, count(*) > 0 AS present FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' GROUP BY stage ORDER BY stage;
SELECT count(*) AS bitmaps, count(DISTINCT dt) AS days, bool_and(members = retail_mid.rb_cardinality(customers)) AS members_ok
  FROM retail_mid.dws_aipl_stage_bitmap_1d WHERE brand = 'aipl_t';
-- a customer is in one stage a day: the day's bitmaps are disjoint
SELECT count(*) AS overlapping FROM retail_mid.dws_aipl_stage_bitmap_1d x JOIN retail_mid.dws_aipl_stage_bitmap_1d y
    ON x.brand = y.brand AND x.dt = y.dt AND x.stage < y.stage
 WHERE x.brand = 'aipl_t' AND retail_mid.rb_intersect(x.customers, y.customers);
-- aipl_stage_of agrees with the view
SELECT count(*) AS stage_of_mismatches FROM (SELECT * FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-03-15') v
 WHERE retail_mid.aipl_stage_of('aipl_t', v.dt, v.customer_key) <> v.stage::text;
SELECT retail_mid.aipl_stage_of('aipl_t', '2024-03-15', 2147483647) AS unknown_customer;
-- a job_log row with the customer-days
SELECT job, outcome, rows_written = (SELECT sum(members) FROM retail_mid.dws_aipl_stage_bitmap_1d WHERE brand = 'aipl_t') AS rows_ok
  FROM retail_mid.job_log WHERE job = 'aipl_refresh' ORDER BY job_id DESC LIMIT 1;

-- idempotent, and a partial refresh of some days equals the full one
SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) AS before FROM retail_mid.dws_aipl_customer_stage_1d s WHERE brand = 'aipl_t' \gset
SET client_min_messages = warning;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-03-10', '2024-03-20') > 0 AS restaged;
RESET client_min_messages;
SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) = :'before' AS unchanged FROM retail_mid.dws_aipl_customer_stage_1d s WHERE brand = 'aipl_t';

-- flow between two days = the plain join of the two days' stages
SELECT count(*) AS flow_mismatches FROM (
  (SELECT * FROM retail_mid.aipl_flow('aipl_t', '2024-03-01', '2024-04-01')
   EXCEPT
   SELECT coalesce(a.stage::text, '-'), coalesce(z.stage::text, '-'), count(*)
     FROM (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-03-01') a
     FULL JOIN (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-04-01') z USING (customer_key)
    GROUP BY 1, 2)
  UNION ALL
  (SELECT coalesce(a.stage::text, '-'), coalesce(z.stage::text, '-'), count(*)
     FROM (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-03-01') a
     FULL JOIN (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-04-01') z USING (customer_key)
    GROUP BY 1, 2
   EXCEPT SELECT * FROM retail_mid.aipl_flow('aipl_t', '2024-03-01', '2024-04-01'))) x;
SELECT sum(customers) = (SELECT count(DISTINCT customer_key) FROM retail_mid.dws_aipl_customer_stage_1d
                          WHERE brand = 'aipl_t' AND dt IN ('2024-03-01', '2024-04-01')) AS flow_complete
  FROM retail_mid.aipl_flow('aipl_t', '2024-03-01', '2024-04-01');
-- trend = counts of the rows
SELECT count(*) AS trend_days,
       bool_and(t.awareness + t.interest + t.purchase + t.loyalty
                = (SELECT count(*) FROM retail_mid.dws_aipl_customer_stage_1d s WHERE s.brand = 'aipl_t' AND s.dt = t.dt)) AS trend_ok
  FROM retail_mid.aipl_trend_30d t WHERE brand = 'aipl_t';
-- GMV decomposition: the stages' parts add up to the GMV of the staged customers in the period
SELECT sum(gmv) = (SELECT sum(c.net_amount) FROM retail_mid.dws_trade_customer_1d c
                    WHERE c.brand = 'aipl_t' AND c.dt > '2024-03-01' AND c.dt <= '2024-03-31'
                      AND c.customer_key IN (SELECT customer_key FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-03-01')
                      AND c.customer_key IN (SELECT customer_key FROM retail_mid.dws_trade_customer_1d WHERE brand = 'aipl_t' AND dt > '2024-03-01' AND dt <= '2024-03-31' GROUP BY 1 HAVING sum(orders) > 0)) AS parts_add_up,
       bool_and(abs(customers * conversion_rate * coalesce(avg_transaction_value, 0) - gmv) < 0.05 * customers) AS product_form
  FROM retail_mid.aipl_gmv_decomposition('aipl_t', '2024-03-01', '2024-03-31');

-- order days: two baskets on one day are one order day. With only the order rules, a customer whose one order day in
-- the 180 days had two or more baskets is in P, not L.
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, min_count, rule_name) VALUES
    ('aipl_t', 'P', 'order', '{}', 90, 1, 'bought'), ('aipl_t', 'L', 'order', '{}', 180, 2, 'bought_twice');
SET client_min_messages = warning;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-02-01', '2024-04-29') > 0 AS restaged;
RESET client_min_messages;
WITH one_day AS (
    SELECT c.customer_key, c.dt FROM retail_mid.dws_trade_customer_1d c
     WHERE c.brand = 'aipl_t' AND c.orders >= 2 AND c.dt >= '2024-02-01'
       AND NOT EXISTS (SELECT 1 FROM retail_mid.dws_trade_customer_1d o WHERE o.brand = 'aipl_t' AND o.customer_key = c.customer_key
                          AND o.orders > 0 AND o.dt <> c.dt AND o.dt > c.dt - 180 AND o.dt <= c.dt))
SELECT count(*) > 0 AS multi_basket_single_days, string_agg(DISTINCT retail_mid.aipl_stage_of('aipl_t', dt, customer_key), ',') AS stages
  FROM one_day;
-- the same with the bare aggregate: two baskets on day 1 (one row, n = 1), a second order day later
SELECT retail_mid.rb_to_array(d[1]) AS day1, retail_mid.rb_to_array(d[5]) AS day5
  FROM (SELECT retail_mid.aipl_window_agg(k, dt, n, amt, '2024-01-01', '2024-01-05', 180, 2, 0) AS d
          FROM (VALUES (7, date '2024-01-01', 1::int8, 30.0::float8), (8, '2024-01-01', 1, 5), (8, '2024-01-05', 1, 5)) v(k, dt, n, amt)) x;

-- several rules per stage, ORed, with object filters: the seed's "registered OR browsed more than twice",
-- "positive review OR bought twice in a year", purchase of the brand's own goods or of a category
DELETE FROM retail_mid.aipl_rule WHERE brand = 'aipl_t';
SELECT category_l1 AS cat FROM retail_mid.dim_product WHERE brand = 'aipl_t' AND is_current GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 \gset
SELECT product_brand AS pb FROM retail_mid.dim_product WHERE brand = 'aipl_t' AND is_current GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 \gset
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, min_count, min_amount, rule_name, object_filter, object_value, description) VALUES
    ('aipl_t', 'A', 'touch', '{sent,exposed}', 30, 1, 0, 'campaign', 'any', NULL, 'Reached by a campaign.'),
    ('aipl_t', 'I', 'event', '{register}', 30, 1, 0, 'registered', 'any', NULL, 'Registered.'),  -- none in the synthetic data
    ('aipl_t', 'I', 'event', '{view}', 30, 3, 0, 'browsed_3', 'any', NULL, 'Browsed more than twice.'),
    ('aipl_t', 'P', 'order', '{}', 60, 1, 0, 'own_goods', 'own_brand', :'pb', 'Bought the house brand.'),
    ('aipl_t', 'P', 'order', '{}', 60, 1, 50, 'category', 'category', :'cat', 'Spent 50 in the top category.'),
    ('aipl_t', 'L', 'event', '{review}', 365, 1, 0, 'review', 'any', NULL, 'Reviewed.'),
    ('aipl_t', 'L', 'order', '{}', 365, 2, 0, 'bought_twice', 'any', NULL, 'Bought on two days in a year.');
SET client_min_messages = warning;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-02-01', '2024-04-29') > 0 AS restaged;
RESET client_min_messages;
CREATE TEMP TABLE aipl_reference_or AS SELECT * FROM pg_temp.aipl_reference('aipl_t', '2024-02-01', '2024-04-29');
SELECT (SELECT count(*) FROM (SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t'
                              EXCEPT SELECT * FROM aipl_reference_or) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM aipl_reference_or
                              EXCEPT SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t') x) AS missing;
-- each rule of an ORed stage contributes customers of its own
SELECT stage, rule_name, count(DISTINCT customer_key) > 0 AS has_signals FROM retail_mid.aipl_rule_signals('aipl_t', '2024-02-01', '2024-04-29')
 GROUP BY 1, 2 ORDER BY 1, 2;
DELETE FROM retail_mid.aipl_rule WHERE brand = 'aipl_t';

-- the aggregate in parallel workers: identical to the serial answer
CREATE TABLE aipl_par AS SELECT s.*, g AS copy FROM retail_mid.aipl_rule_signals('aipl_t', '2024-02-01', '2024-04-29') s, generate_series(1, 3) g;
ALTER TABLE aipl_par SET (parallel_workers = 2);
ANALYZE aipl_par;
CREATE TEMP TABLE aipl_serial AS
SELECT stage, copy, retail_mid.aipl_window_agg(customer_key, dt, n, amount::float8, '2024-02-01', '2024-04-29', 30, 2, 0)::text AS days
  FROM aipl_par GROUP BY 1, 2;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off; SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT stage, copy, retail_mid.aipl_window_agg(customer_key, dt, n, amount::float8, '2024-02-01', '2024-04-29', 30, 2, 0)
  FROM aipl_par GROUP BY 1, 2;
SELECT count(*) AS parallel_differences FROM (
  (SELECT stage, copy, retail_mid.aipl_window_agg(customer_key, dt, n, amount::float8, '2024-02-01', '2024-04-29', 30, 2, 0)::text
     FROM aipl_par GROUP BY 1, 2 EXCEPT SELECT * FROM aipl_serial)
  UNION ALL
  (SELECT * FROM aipl_serial EXCEPT SELECT stage, copy, retail_mid.aipl_window_agg(customer_key, dt, n, amount::float8, '2024-02-01', '2024-04-29', 30, 2, 0)::text
     FROM aipl_par GROUP BY 1, 2)) d;
RESET enable_hashagg; RESET parallel_leader_participation;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
DROP TABLE aipl_par;

-- bad input
SELECT retail_mid.aipl_refresh('aipl_t', '2024-04-01', '2024-03-01');
SELECT retail_mid.aipl_refresh(NULL, '2024-04-01', '2024-05-01');
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, rule_name) VALUES ('x', 'Q', 'event', '{view}', 30, 'r');
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, rule_name) VALUES ('x', 'A', 'event', '{view}', 0, 'r');
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, rule_name, object_filter) VALUES ('x', 'P', 'order', '{}', 30, 'r', 'category');
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, rule_name, object_filter) VALUES ('x', 'A', 'touch', '{sent}', 30, 'r', 'own_brand');
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, rule_name, object_filter) VALUES ('x', 'A', 'event', '{view}', 30, 'r', 'goods');
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-05', '2024-01-01', 30, 1, 0) FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-01', '2024-01-05', 0, 1, 0) FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-01', '2024-01-05', 30, 0, 0) FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-01', '2024-01-05', 30, 1, 'NaN') FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 'Infinity', '2024-01-01', '2024-01-05', 30, 1, 0) FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', -1, 0, '2024-01-01', '2024-01-05', 30, 1, 0) FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-01', '2024-01-05', 30, 1, 0) FROM (VALUES (-1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, NULL, '2024-01-05', 30, 1, 0) FROM (VALUES (1)) v(k);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-01', '2024-01-05', l, 1, 0) FROM (VALUES (1, 30), (2, 31)) v(k, l);
SELECT retail_mid.aipl_window_agg(k, '2024-01-01', 1, 0, '2024-01-01', '2024-01-02', 30, 1, 0) IS NULL AS no_rows FROM (VALUES (1)) v(k) WHERE false;
