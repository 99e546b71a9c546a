-- aipl: the daily AIPL stage history against plain SQL, idempotent refresh, flow, trend, GMV decomposition
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 21, customers => 300, days => 120, orders_per_day => 25, stores => 3,
                                     skus => 60, start_date => '2024-01-01', brand => 'aipl_t') > 0 AS generated;
SELECT retail_mid.refresh('2024-01-01', '2024-04-29') > 0 AS refreshed;
RESET client_min_messages;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-02-01', '2024-04-29') > 0 AS staged;

-- the same stages computed the obvious way: every day x rule, the signals in its window, thresholds, highest stage
CREATE TEMP TABLE aipl_reference AS
WITH sig AS (SELECT * FROM retail_mid.aipl_signals('aipl_t', '2024-02-01', '2024-04-29')),
     r AS (SELECT * FROM retail_mid.aipl_rule WHERE brand = '*'),
     days AS (SELECT d::date AS dt FROM generate_series(date '2024-02-01', date '2024-04-29', interval '1 day') d),
     held AS (SELECT days.dt, sig.customer_key, r.stage
                FROM days JOIN r ON true
                JOIN sig ON sig.stage = r.stage AND sig.source = r.source AND sig.dt > days.dt - r.lookback_days AND sig.dt <= days.dt
               GROUP BY days.dt, sig.customer_key, r.stage, r.source, r.min_count, r.min_amount
              HAVING sum(sig.n) >= r.min_count AND sum(sig.amount) >= r.min_amount)
SELECT dt, customer_key, CASE max(CASE stage WHEN 'A' THEN 1 WHEN 'I' THEN 2 WHEN 'P' THEN 3 ELSE 4 END)
                         WHEN 1 THEN 'A' WHEN 2 THEN 'I' WHEN 3 THEN 'P' ELSE 'L' END AS stage
  FROM held GROUP BY dt, customer_key;
SELECT (SELECT count(*) FROM aipl_reference) > 10000 AS many_customer_days,
       (SELECT count(*) FROM (SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t'
                              EXCEPT SELECT * FROM aipl_reference) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM aipl_reference
                              EXCEPT SELECT dt, customer_key, stage::text FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t') x) AS missing;
-- every stage occurs
SELECT stage, count(*) > 0 AS present FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' GROUP BY stage ORDER BY stage;

-- idempotent, and a partial refresh of some days equals the full one
SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) AS before FROM retail_mid.dws_aipl_customer_stage_1d s WHERE brand = 'aipl_t' \gset
SET client_min_messages = warning;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-03-10', '2024-03-20') > 0 AS restaged;
RESET client_min_messages;
SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) = :'before' AS unchanged FROM retail_mid.dws_aipl_customer_stage_1d s WHERE brand = 'aipl_t';

-- flow between two days adds up to the customers staged on either day
SELECT sum(customers) = (SELECT count(DISTINCT customer_key) FROM retail_mid.dws_aipl_customer_stage_1d
                          WHERE brand = 'aipl_t' AND dt IN ('2024-03-01', '2024-04-01')) AS flow_complete
  FROM retail_mid.aipl_flow('aipl_t', '2024-03-01', '2024-04-01');
SELECT count(*) AS trend_days FROM retail_mid.aipl_trend_30d WHERE brand = 'aipl_t';
-- GMV decomposition: the stages' parts add up to the GMV of the staged customers in the period
SELECT sum(gmv) = (SELECT sum(c.net_amount) FROM retail_mid.dws_trade_customer_1d c
                    WHERE c.brand = 'aipl_t' AND c.dt > '2024-03-01' AND c.dt <= '2024-03-31'
                      AND c.customer_key IN (SELECT customer_key FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'aipl_t' AND dt = '2024-03-01')
                      AND c.customer_key IN (SELECT customer_key FROM retail_mid.dws_trade_customer_1d WHERE brand = 'aipl_t' AND dt > '2024-03-01' AND dt <= '2024-03-31' GROUP BY 1 HAVING sum(orders) > 0)) AS parts_add_up,
       bool_and(abs(customers * conversion_rate * coalesce(avg_transaction_value, 0) - gmv) < 0.05 * customers) AS product_form
  FROM retail_mid.aipl_gmv_decomposition('aipl_t', '2024-03-01', '2024-03-31');

-- rules per brand: a brand with rules of its own ignores the defaults
INSERT INTO retail_mid.aipl_rule VALUES ('aipl_t', 'P', 'order', '{}', 7, 1, 100);
SET client_min_messages = warning;
SELECT retail_mid.aipl_refresh('aipl_t', '2024-04-01', '2024-04-29') >= 0 AS restaged;
RESET client_min_messages;
SELECT array_agg(DISTINCT stage ORDER BY stage) AS stages_with_own_rules FROM retail_mid.dws_aipl_customer_stage_1d
 WHERE brand = 'aipl_t' AND dt >= '2024-04-01';
DELETE FROM retail_mid.aipl_rule WHERE brand = 'aipl_t';
-- bad input
SELECT retail_mid.aipl_refresh('aipl_t', '2024-04-01', '2024-03-01');
SELECT retail_mid.aipl_refresh(NULL, '2024-04-01', '2024-05-01');
INSERT INTO retail_mid.aipl_rule VALUES ('x', 'Q', 'event', '{view}', 30, 1, 0);
INSERT INTO retail_mid.aipl_rule VALUES ('x', 'A', 'event', '{view}', 0, 1, 0);
