-- dws: the public layer reconciles with the DWD and with plain SQL, refresh is idempotent, takes late data,
-- is transactional, and distinct customers roll up exactly.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET client_min_messages = warning;
SELECT retail_mid.generate_synthetic(seed => 7, customers => 400, days => 120, orders_per_day => 40, stores => 5,
                                     skus => 150, start_date => '2024-01-01', brand => 'dws_test');
SELECT retail_mid.refresh('2024-01-01', '2024-04-29') > 0 AS refreshed;

-- Fingerprint of every DWS table, to compare states.
CREATE FUNCTION pg_temp.dws_fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (
        SELECT 'c1' || md5(string_agg(x::text, ',' ORDER BY x::text)) t FROM retail_mid.dws_trade_customer_1d x WHERE brand = 'dws_test'
        UNION ALL SELECT 'k1' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_sku_store_1d x WHERE brand = 'dws_test'
        UNION ALL SELECT 's1' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_store_1d x WHERE brand = 'dws_test'
        UNION ALL SELECT 'ct' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_customer_td x WHERE brand = 'dws_test'
        UNION ALL SELECT 'kt' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_sku_store_td x WHERE brand = 'dws_test'
        UNION ALL SELECT 'st' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_store_td x WHERE brand = 'dws_test') f $$;

-- The whole DWS recomputed from the DWD in plain SQL (count(DISTINCT) and all), compared row by row.
CREATE FUNCTION pg_temp.dws_mismatches() RETURNS TABLE (tbl text, n bigint) LANGUAGE sql AS $$
    WITH d AS (SELECT * FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'dws_test'),
    c1 AS (SELECT dt, brand, customer_key, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS orders,
                  count(DISTINCT order_id) FILTER (WHERE line_type = 'return') AS return_orders, count(*) AS lines,
                  sum(quantity) AS quantity, coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales,
                  coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS returns, sum(amount) AS net,
                  min(order_time) AS t0, max(order_time) AS t1
             FROM d WHERE customer_key IS NOT NULL GROUP BY 1, 2, 3),
    s1 AS (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS orders,
                  count(DISTINCT order_id) FILTER (WHERE line_type = 'sale' AND customer_key IS NULL) AS anon,
                  count(DISTINCT order_id) FILTER (WHERE line_type = 'return') AS return_orders, count(*) AS lines,
                  sum(quantity) AS quantity, sum(amount) AS net,
                  count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale') AS customers
             FROM d GROUP BY 1, 2, 3),
    k1 AS (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, sku_id,
                  count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS orders, sum(quantity) AS quantity, sum(amount) AS net,
                  count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale') AS buyers
             FROM d GROUP BY 1, 2, 3, 4),
    ct AS (SELECT brand, customer_key, min(dt) AS f, max(dt) AS l, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS orders,
                  count(DISTINCT dt) AS days, sum(amount) AS net
             FROM d WHERE customer_key IS NOT NULL GROUP BY 1, 2),
    st AS (SELECT brand, coalesce(store_id, '(none)') AS store_id, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS orders,
                  sum(amount) AS net, count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale') AS customers
             FROM d GROUP BY 1, 2),
    kt AS (SELECT brand, coalesce(store_id, '(none)') AS store_id, sku_id, count(DISTINCT dt) AS days,
                  sum(quantity) AS quantity, sum(amount) AS net, count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale') AS buyers
             FROM d GROUP BY 1, 2, 3)
    SELECT 'customer_1d', count(*) FROM (
        (SELECT * FROM c1 EXCEPT SELECT dt, brand, customer_key, orders, return_orders, lines, quantity, sales_amount, return_amount, net_amount, first_order_time, last_order_time FROM retail_mid.dws_trade_customer_1d WHERE brand = 'dws_test')
        UNION ALL (SELECT dt, brand, customer_key, orders, return_orders, lines, quantity, sales_amount, return_amount, net_amount, first_order_time, last_order_time FROM retail_mid.dws_trade_customer_1d WHERE brand = 'dws_test' EXCEPT SELECT * FROM c1)) x
    UNION ALL SELECT 'store_1d', count(*) FROM (
        (SELECT * FROM s1 EXCEPT SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, net_amount, customers FROM retail_mid.dws_trade_store_1d WHERE brand = 'dws_test')
        UNION ALL (SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, net_amount, customers FROM retail_mid.dws_trade_store_1d WHERE brand = 'dws_test' EXCEPT SELECT * FROM s1)) x
    UNION ALL SELECT 'sku_store_1d', count(*) FROM (
        (SELECT * FROM k1 EXCEPT SELECT dt, brand, store_id, sku_id, orders, quantity, net_amount, buyers FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'dws_test')
        UNION ALL (SELECT dt, brand, store_id, sku_id, orders, quantity, net_amount, buyers FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'dws_test' EXCEPT SELECT * FROM k1)) x
    UNION ALL SELECT 'customer_td', count(*) FROM (
        (SELECT * FROM ct EXCEPT SELECT brand, customer_key, first_order_date, last_order_date, orders, active_days, net_amount FROM retail_mid.dws_trade_customer_td WHERE brand = 'dws_test')
        UNION ALL (SELECT brand, customer_key, first_order_date, last_order_date, orders, active_days, net_amount FROM retail_mid.dws_trade_customer_td WHERE brand = 'dws_test' EXCEPT SELECT * FROM ct)) x
    UNION ALL SELECT 'store_td', count(*) FROM (
        (SELECT * FROM st EXCEPT SELECT brand, store_id, orders, net_amount, customers FROM retail_mid.dws_trade_store_td WHERE brand = 'dws_test')
        UNION ALL (SELECT brand, store_id, orders, net_amount, customers FROM retail_mid.dws_trade_store_td WHERE brand = 'dws_test' EXCEPT SELECT * FROM st)) x
    UNION ALL SELECT 'sku_store_td', count(*) FROM (
        (SELECT * FROM kt EXCEPT SELECT brand, store_id, sku_id, selling_days, quantity, net_amount, buyers FROM retail_mid.dws_trade_sku_store_td WHERE brand = 'dws_test')
        UNION ALL (SELECT brand, store_id, sku_id, selling_days, quantity, net_amount, buyers FROM retail_mid.dws_trade_sku_store_td WHERE brand = 'dws_test' EXCEPT SELECT * FROM kt)) x
$$;

SELECT * FROM pg_temp.dws_mismatches();
-- the synthetic generator produced every kind of line the rules handle
SELECT rule, sum(lines) > 0 AS present FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'dws_test' GROUP BY rule ORDER BY rule;
-- and the cleaning counts agree with plain SQL over the ODS
WITH l AS (SELECT o.order_time::date AS dt, l.*, o.customer_id,
                  row_number() OVER (PARTITION BY l.order_id, l.sku_id, l.quantity, l.unit_price, l.discount ORDER BY l.line_no) AS rn
             FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l USING (brand, order_id) WHERE o.brand = 'dws_test')
SELECT (SELECT count(*) FROM l WHERE rn > 1) = (SELECT sum(lines) FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'dws_test' AND rule = 'duplicate_line') AS duplicates_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price = 0) = (SELECT sum(lines) FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'dws_test' AND rule = 'zero_price') AS zero_price_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price < 0) = (SELECT sum(lines) FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'dws_test' AND rule = 'negative_price') AS negative_price_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price > 0 AND quantity < 0) = (SELECT sum(lines) FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'dws_test' AND rule = 'return_line') AS returns_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price > 0 AND quantity <> 0 AND customer_id IS NULL) = (SELECT sum(lines) FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'dws_test' AND rule = 'anonymous_line') AS anonymous_ok;

-- exact distinct customers over 30 days from bitmaps, against count(DISTINCT) on the DWD; the sum of daily counts is larger
SELECT n.store_id, n.customers = (SELECT count(DISTINCT customer_key) FROM retail_mid.dwd_trade_order_line_di d
                                   WHERE d.brand = 'dws_test' AND d.store_id = n.store_id AND d.line_type = 'sale'
                                     AND d.dt > n.as_of - 30 AND d.dt <= n.as_of) AS exact,
       n.customers < (SELECT sum(customers) FROM retail_mid.dws_trade_store_1d s WHERE s.brand = 'dws_test' AND s.store_id = n.store_id
                        AND s.dt > n.as_of - 30 AND s.dt <= n.as_of) AS daily_sum_overcounts
  FROM retail_mid.dws_trade_store_nd n WHERE n.brand = 'dws_test' AND n.period_days = 30 ORDER BY 1;
SELECT count(*) AS customer_nd_mismatches FROM retail_mid.dws_trade_customer_nd n
  JOIN (SELECT customer_key, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS o, sum(amount) AS a
          FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'dws_test' AND dt > date '2024-04-29' - 90 GROUP BY 1) p USING (customer_key)
 WHERE n.brand = 'dws_test' AND (n.orders_90d <> p.o OR n.net_amount_90d <> p.a);

-- idempotent: refreshing days again changes nothing
SELECT pg_temp.dws_fingerprint() AS before \gset
SELECT retail_mid.refresh('2024-02-10', '2024-02-20') > 0 AS refreshed;
SELECT pg_temp.dws_fingerprint() = :'before' AS unchanged_after_rerun;

-- late data: an order for a past day arrives, another one is withdrawn; refreshing those days takes both in
INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id)
VALUES ('dws_test', 'LATE1', 'member_id', 'M00000003', '2024-01-15 10:00', 'store', 'S0002');
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price)
VALUES ('dws_test', 'LATE1', 1, 'P000001', 2, 10), ('dws_test', 'LATE1', 2, 'P000002', 1, 5.5);
DELETE FROM retail_mid.ods_order_line WHERE brand = 'dws_test' AND order_id = (SELECT min(order_id) FROM retail_mid.ods_order WHERE brand = 'dws_test' AND order_time::date = '2024-03-03' AND customer_id IS NOT NULL AND status = 'paid');
SELECT pg_temp.dws_fingerprint() = :'before' AS unchanged_before_refresh;
SELECT retail_mid.refresh('2024-01-15', '2024-01-15') > 0 AS refreshed, retail_mid.refresh('2024-03-03', '2024-03-03') > 0 AS refreshed_too;
SELECT * FROM pg_temp.dws_mismatches();
SELECT (SELECT net_amount FROM retail_mid.dws_trade_customer_1d c JOIN retail_mid.customer_key k USING (customer_key)
         WHERE c.brand = 'dws_test' AND c.dt = '2024-01-15' AND k.id_value = 'M00000003') >= 25.5 AS late_order_counted;

-- transactional: a refresh that fails half-way leaves the previous state
SELECT pg_temp.dws_fingerprint() AS before \gset
INSERT INTO retail_mid.ods_order (brand, order_id, order_time, store_id) VALUES ('dws_test', 'HUGE', '2024-02-01 12:00', 'S0001');
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price)
VALUES ('dws_test', 'HUGE', 1, 'P000001', 99999999999, 9999999999);
\set VERBOSITY terse
SELECT retail_mid.refresh('2024-01-20', '2024-02-05');
\set VERBOSITY default
SELECT pg_temp.dws_fingerprint() = :'before' AS unchanged_after_failure;
DELETE FROM retail_mid.ods_order_line WHERE order_id = 'HUGE';

-- bad arguments
SELECT retail_mid.refresh(NULL, '2024-01-01');
SELECT retail_mid.refresh('2024-02-01', '2024-01-01');
SELECT retail_mid.refresh('-infinity', '2024-01-01');
-- a refresh of days without data is a no-op that still logs its job
SELECT retail_mid.refresh('1990-01-01', '1990-01-02') AS rows_written;
SELECT job, outcome, rows_written FROM retail_mid.job_log WHERE job = 'refresh' ORDER BY job_id DESC LIMIT 1;
-- BI views carry comments on every column
SELECT c.relname, count(*) FILTER (WHERE col_description(c.oid, a.attnum) IS NULL) AS uncommented
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE n.nspname = 'retail_mid' AND c.relname LIKE 'dws\_%' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition GROUP BY c.relname ORDER BY 1;
