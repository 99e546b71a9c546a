-- metric: registry, naming rules, DWS generation with incremental refresh, exact distinct counts, reconciliation
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- a DWD-shaped fixture: 20 days, 2 brands, 3 stores, sales and returns, repeat customers
CREATE TABLE public.mt_order_line (dt date, brand text, store_id text, customer_key int, order_id text, amount numeric, line_type text);
INSERT INTO public.mt_order_line
SELECT date '2026-01-01' + (i % 20), CASE WHEN i % 3 = 2 THEN 'B' ELSE 'A' END, 'S' || (i % 3), CASE WHEN i % 7 = 0 THEN NULL ELSE i % 11 END,
       'O' || (i / 2), CASE WHEN i % 9 = 0 THEN -(i % 5) ELSE i % 13 END, CASE WHEN i % 9 = 0 THEN 'return' ELSE 'sale' END
  FROM generate_series(1, 400) i WHERE date '2026-01-01' + (i % 20) <= date '2026-01-15';
CREATE TABLE public.mt_stock (dt date, brand text, store_id text, sku text, on_hand numeric);
INSERT INTO public.mt_stock
SELECT d, CASE WHEN s = 2 THEN 'B' ELSE 'A' END, 'S' || s, 'K' || k, (s + 1) * 10 + k + extract(day FROM d)
  FROM generate_series(date '2026-01-01', date '2026-01-20', interval '1 day') d, generate_series(0, 2) s, generate_series(1, 2) k
 WHERE extract(day FROM d)::int % 4 <> 0 OR s <> 0;   -- store S0 misses every 4th day: the window's last day is earlier

INSERT INTO retail_mid.metric_atomic (atomic, dwd_table, time_column, expression, unit, additivity, description) VALUES
 ('amount', 'public.mt_order_line', 'dt', 'sum(t.amount)', 'CNY', 'additive', 'Line amount.'),
 ('lines', 'public.mt_order_line', 'dt', 'count(*)', 'lines', 'additive', 'Order lines.'),
 ('buyers', 'public.mt_order_line', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'non_additive', 'Distinct known customers.'),
 ('orders', 'public.mt_order_line', 'dt', 'count(DISTINCT t.order_id)', 'orders', 'non_additive', 'Distinct orders.'),
 ('on_hand', 'public.mt_stock', 'dt', 'sum(t.on_hand)', 'units', 'semi_additive', 'Stock on hand.');
INSERT INTO retail_mid.metric_qualifier VALUES ('sale', 't.line_type = ''sale''', 'Sales lines.'), ('returned', 't.line_type = ''return''', 'Return lines.');
INSERT INTO retail_mid.metric_granularity VALUES ('mt_store', '{brand,store_id}', 'Store.'), ('mt_brand', '{brand}', 'Brand.');
INSERT INTO retail_mid.metric_derived (metric, atomic, qualifier, period, granularity) VALUES
 ('sale_amount_1d', 'amount', 'sale', '1d', 'mt_store'), ('sale_amount_7d', 'amount', 'sale', '7d', 'mt_store'),
 (NULL, 'amount', 'all', 'td', 'mt_store'), (NULL, 'amount', 'returned', 'cm', 'mt_store'), (NULL, 'lines', 'all', 'cw', 'mt_store'),
 (NULL, 'buyers', 'sale', '7d', 'mt_store'), (NULL, 'orders', 'sale', '7d', 'mt_store'), (NULL, 'on_hand', 'all', '7d', 'mt_store'),
 (NULL, 'amount', 'sale', '7d', 'mt_brand'), (NULL, 'buyers', 'sale', '7d', 'mt_brand'), (NULL, 'on_hand', 'all', '1d', 'mt_brand');
INSERT INTO retail_mid.metric_composite VALUES ('sale_aov_7d', 'mt_store', '{sale_amount_7d} / nullif({sale_orders_7d}, 0)', 'CNY/order', 'Average order value.');
SELECT metric, atomic, qualifier, period, granularity FROM retail_mid.metric_derived WHERE granularity LIKE 'mt\_%' ORDER BY granularity, metric;

-- generation: days 1..10 first, then 11..20 incrementally
SELECT retail_mid.metric_generate('mt_store', '2026-01-01', '2026-01-10') AS rows_written;
SELECT retail_mid.metric_generate('mt_store', '2026-01-11', '2026-01-20') AS rows_written;
SELECT retail_mid.metric_generate('mt_brand', '2026-01-01', '2026-01-20') AS rows_written;
SELECT job, rows_written, outcome, detail FROM retail_mid.job_log WHERE job = 'metric_generate' ORDER BY job_id;
\d retail_mid.dws_metric_mt_store
SELECT * FROM retail_mid.dws_metric_mt_store WHERE dt = '2026-01-10' ORDER BY brand, store_id;

-- every value against plain SQL over the fixture
CREATE TEMP TABLE mt_days AS SELECT d::date AS dt FROM generate_series(date '2026-01-01', date '2026-01-20', interval '1 day') d;
CREATE TEMP TABLE mt_ref AS
SELECT w.dt, k.brand, k.store_id,
       (SELECT sum(amount) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND line_type = 'sale' AND l.dt = w.dt) AS sale_amount_1d,
       (SELECT sum(amount) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND line_type = 'sale' AND l.dt BETWEEN w.dt - 6 AND w.dt) AS sale_amount_7d,
       (SELECT sum(amount) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND l.dt <= w.dt) AS amount_td,
       (SELECT sum(amount) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND line_type = 'return' AND l.dt BETWEEN date_trunc('month', w.dt) AND w.dt) AS returned_amount_cm,
       (SELECT count(*) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND l.dt BETWEEN date_trunc('week', w.dt) AND w.dt) AS lines_cw,
       (SELECT count(DISTINCT customer_key) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND line_type = 'sale' AND l.dt BETWEEN w.dt - 6 AND w.dt) AS sale_buyers_7d,
       (SELECT count(DISTINCT order_id) FROM public.mt_order_line l WHERE l.brand = k.brand AND l.store_id = k.store_id AND line_type = 'sale' AND l.dt BETWEEN w.dt - 6 AND w.dt) AS sale_orders_7d,
       (SELECT sum(on_hand) FROM public.mt_stock s WHERE s.brand = k.brand AND s.store_id = k.store_id
           AND s.dt = (SELECT max(dt) FROM public.mt_stock s2 WHERE s2.brand = k.brand AND s2.store_id = k.store_id AND s2.dt BETWEEN w.dt - 6 AND w.dt)) AS on_hand_7d
  FROM mt_days w, (SELECT DISTINCT brand, store_id FROM public.mt_order_line UNION SELECT DISTINCT brand, store_id FROM public.mt_stock) k;
SELECT count(*) AS differing_rows FROM (
    SELECT dt, brand, store_id, sale_amount_1d, sale_amount_7d, amount_td, returned_amount_cm, nullif(lines_cw, 0), nullif(sale_buyers_7d, 0), nullif(sale_orders_7d, 0), on_hand_7d
      FROM mt_ref WHERE coalesce(amount_td, on_hand_7d) IS NOT NULL
    EXCEPT
    SELECT dt, brand, store_id, sale_amount_1d, sale_amount_7d, amount_td, returned_amount_cm, lines_cw, sale_buyers_7d, sale_orders_7d, on_hand_7d
      FROM retail_mid.dws_metric_mt_store) x;
SELECT count(*) AS dws_rows, (SELECT count(*) FROM mt_ref WHERE coalesce(amount_td, on_hand_7d) IS NOT NULL) AS reference_rows
  FROM retail_mid.dws_metric_mt_store;
SELECT count(*) FILTER (WHERE sale_aov_7d IS DISTINCT FROM sale_amount_7d / nullif(sale_orders_7d, 0)) AS composite_wrong FROM retail_mid.dws_metric_mt_store;
-- distinct counts roll up exactly: brand buyers are not the sum of store buyers
SELECT b.dt, b.brand, b.sale_buyers_7d,
       (SELECT count(DISTINCT customer_key) FROM public.mt_order_line l WHERE l.brand = b.brand AND line_type = 'sale' AND l.dt BETWEEN b.dt - 6 AND b.dt) AS buyers_sql,
       (SELECT sum(s.sale_buyers_7d) FROM retail_mid.dws_metric_mt_store s WHERE s.brand = b.brand AND s.dt = b.dt) AS sum_of_store_buyers,
       b.sale_amount_7d, (SELECT sum(s.sale_amount_7d) FROM retail_mid.dws_metric_mt_store s WHERE s.brand = b.brand AND s.dt = b.dt) AS sum_of_store_amount,
       b.on_hand_1d, (SELECT sum(on_hand) FROM public.mt_stock s WHERE s.brand = b.brand AND s.dt = b.dt) AS on_hand_sql
  FROM retail_mid.dws_metric_mt_brand b WHERE b.dt = '2026-01-12' ORDER BY b.brand;

-- reconciliation: none, then a tampered DWS value and a missing row are found
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20');
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_brand', '2026-01-01', '2026-01-20');
UPDATE retail_mid.dws_metric_mt_store SET sale_buyers_7d = sale_buyers_7d + 1 WHERE dt = '2026-01-05' AND store_id = 'S1';
DELETE FROM retail_mid.dws_metric_mt_store WHERE dt = '2026-01-06' AND store_id = 'S2';
SELECT * FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20') ORDER BY dt, metric;
-- late data for an old day: the incremental refresh of that window repairs it
INSERT INTO public.mt_order_line VALUES ('2026-01-03', 'A', 'S0', 99, 'late', 100, 'sale');
SELECT count(*) AS stale FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20');
SELECT retail_mid.metric_generate('mt_store', '2026-01-01', '2026-01-20') AS rows_written;
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20');

-- naming rules and bad definitions
INSERT INTO retail_mid.metric_derived (metric, atomic, qualifier, period, granularity) VALUES ('sales_7d', 'amount', 'sale', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_atomic VALUES ('online_amount', 'public.mt_order_line', 'dt', 'sum(t.amount) FILTER (WHERE t.store_id = ''S0'')', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_qualifier VALUES ('sale_online', 't.line_type = ''sale'' AND t.store_id = ''S0''', NULL);
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('online_amount', 'sale', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'sale_online', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'sale', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_atomic VALUES ('customers', 'public.mt_order_line', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('bad', 'public.mt_order_line', 'dt', 'sum(t.amont)', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('bad', 'public.mt_order_line', 'day', 'sum(t.amount)', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('Bad', 'public.mt_order_line', 'dt', 'sum(t.amount)', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('bad', 'public.mt_order_line', 'dt', 'sum(t.amount)', 'CNY', 'sometimes', NULL);
INSERT INTO retail_mid.metric_qualifier VALUES ('red', 't.colour = ''red''', NULL);
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'red', '7d', 'mt_store');
INSERT INTO retail_mid.metric_qualifier VALUES ('blank', ' ', NULL);
INSERT INTO retail_mid.metric_granularity VALUES ('mt_sku', '{sku}', NULL);
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'sale', '30d', 'mt_sku');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'sale', '2w', 'mt_store');
INSERT INTO retail_mid.metric_composite VALUES ('sale_aov_30d', 'mt_store', '{sale_amount_30d} / nullif({sale_orders_30d}, 0)', 'CNY/order', NULL);
INSERT INTO retail_mid.metric_composite VALUES ('sale_aov_x', 'mt_store', '{sale_amount_7d} /// 2', 'CNY/order', NULL);
INSERT INTO retail_mid.metric_composite VALUES ('sale_amount_1d', 'mt_store', '{sale_amount_7d} / 7', 'CNY', NULL);
SELECT retail_mid.metric_generate('mt_store', '2026-01-20', '2026-01-01');
SELECT retail_mid.metric_generate('mt_store', NULL, '2026-01-01');
SELECT retail_mid.metric_generate('nowhere', '2026-01-01', '2026-01-02');
SELECT retail_mid.metric_generate('mt_sku', '2026-01-01', '2026-01-02');
SELECT * FROM retail_mid.metric_reconcile('mt_sku', '2026-01-01', '2026-01-02');

-- clean up
DELETE FROM retail_mid.metric_composite WHERE granularity LIKE 'mt\_%';
DELETE FROM retail_mid.metric_derived WHERE granularity LIKE 'mt\_%';
DELETE FROM retail_mid.metric_granularity WHERE granularity LIKE 'mt\_%';
DELETE FROM retail_mid.metric_qualifier WHERE qualifier IN ('sale', 'returned', 'sale_online', 'red');
DELETE FROM retail_mid.metric_atomic WHERE dwd_table IN ('public.mt_order_line'::regclass, 'public.mt_stock'::regclass);
DROP TABLE retail_mid.dws_metric_mt_store, retail_mid.dws_metric_mt_brand, public.mt_order_line, public.mt_stock;
