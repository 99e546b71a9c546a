-- online_retail: the real UCI Online Retail file through the ODS, the DWD rules and the DWS, reconciled exactly
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_read, rows_loaded, rows_rejected FROM retail_mid.load_online_retail(:'data_dir' || '/online_retail.csv.gz', 'or_test');
SELECT retail_mid.refresh('2010-12-01', '2011-12-09') > 0 AS refreshed;
-- customers with an identifier
SELECT count(DISTINCT customer_id) AS customers_in_file FROM retail_mid.ods_order WHERE brand = 'or_test' AND customer_id IS NOT NULL;
SELECT count(*) AS customer_keys FROM retail_mid.customer_key k
 WHERE EXISTS (SELECT 1 FROM retail_mid.ods_customer c WHERE c.brand = 'or_test' AND c.customer_id = k.id_value AND k.id_type = 'customer_id' AND k.issuer = c.brand);
SELECT count(*) AS customers_with_trade FROM retail_mid.dws_trade_customer_td WHERE brand = 'or_test';
-- each cleaning rule's effect, and the same counted in plain SQL over the ODS (rules apply in order)
SELECT rule, lines, amount FROM retail_mid.dwd_trade_cleaning_report WHERE brand = 'or_test' ORDER BY rule;
WITH l AS (SELECT l.*, o.customer_id,
                  row_number() OVER (PARTITION BY l.order_id, l.sku_id, l.quantity, l.unit_price, l.discount ORDER BY l.line_no) AS rn
             FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l USING (brand, order_id) WHERE o.brand = 'or_test'),
     r AS (SELECT rule, sum(lines) AS lines FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'or_test' GROUP BY rule)
SELECT (SELECT count(*) FROM l) AS source_lines,
       (SELECT count(*) FROM l WHERE customer_id IS NULL) AS lines_without_customer_id,
       (SELECT count(*) FROM l WHERE order_id LIKE 'C%') AS cancellation_lines,
       (SELECT count(*) FROM l WHERE rn > 1) = (SELECT lines FROM r WHERE rule = 'duplicate_line') AS duplicates_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price = 0) = (SELECT lines FROM r WHERE rule = 'zero_price') AS zero_price_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price < 0) = (SELECT lines FROM r WHERE rule = 'negative_price') AS negative_price_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price > 0 AND quantity < 0) = (SELECT lines FROM r WHERE rule = 'return_line') AS returns_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price > 0 AND quantity <> 0 AND customer_id IS NULL) = (SELECT lines FROM r WHERE rule = 'anonymous_line') AS anonymous_ok,
       (SELECT count(*) FROM l WHERE rn = 1 AND unit_price > 0 AND quantity <> 0) = (SELECT count(*) FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'or_test') AS kept_ok;
-- every DWS total reconciles exactly with the DWD, per day and overall
WITH d AS (SELECT dt, sum(amount) AS net, sum(quantity) AS qty, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale') AS orders,
                  count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale') AS customers,
                  sum(amount) FILTER (WHERE customer_key IS NOT NULL) AS customer_net
             FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'or_test' GROUP BY dt),
     s AS (SELECT dt, sum(net_amount) AS net, sum(quantity) AS qty, sum(orders) AS orders, sum(customers) AS customers
             FROM retail_mid.dws_trade_store_1d WHERE brand = 'or_test' GROUP BY dt),
     k AS (SELECT dt, sum(net_amount) AS net, sum(quantity) AS qty FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'or_test' GROUP BY dt),
     c AS (SELECT dt, sum(net_amount) AS net FROM retail_mid.dws_trade_customer_1d WHERE brand = 'or_test' GROUP BY dt)
SELECT count(*) AS days,
       count(*) FILTER (WHERE d.net <> s.net OR d.qty <> s.qty OR d.orders <> s.orders OR d.customers <> s.customers) AS store_days_off,
       count(*) FILTER (WHERE d.net <> k.net OR d.qty <> k.qty) AS sku_days_off,
       count(*) FILTER (WHERE d.customer_net <> c.net) AS customer_days_off
  FROM d JOIN s USING (dt) JOIN k USING (dt) JOIN c USING (dt);
SELECT (SELECT round(sum(amount), 2) FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'or_test') AS dwd_net,
       (SELECT round(sum(net_amount), 2) FROM retail_mid.dws_trade_store_td WHERE brand = 'or_test') AS store_td_net,
       (SELECT round(sum(net_amount), 2) FROM retail_mid.dws_trade_sku_store_td WHERE brand = 'or_test') AS sku_store_td_net,
       (SELECT customers FROM retail_mid.dws_trade_store_td WHERE brand = 'or_test') AS store_td_customers,
       (SELECT count(DISTINCT customer_key) FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'or_test' AND line_type = 'sale') AS dwd_customers;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
