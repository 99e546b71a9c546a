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
\d retail_mid.dws_metric_mt_store_1d
-- distinct counts keep their keys: customer keys (int4) as they are, order ids through the dictionary
SELECT atomic, additivity, distinct_key, distinct_key_type FROM retail_mid.metric_atomic WHERE dwd_table = 'public.mt_order_line'::regclass ORDER BY 1;
SELECT dt, brand, store_id, sale_buyers_1d, retail_mid.rb_to_array(sale_buyers_1d_bitmap) AS buyer_keys,
       (SELECT array_agg(DISTINCT customer_key ORDER BY customer_key) FROM public.mt_order_line l
         WHERE l.dt = d.dt AND l.brand = d.brand AND l.store_id = d.store_id AND l.line_type = 'sale') AS keys_sql, sale_orders_1d
  FROM retail_mid.dws_metric_mt_store_1d d WHERE dt = '2026-01-04' ORDER BY brand, store_id;
-- the 7-day buyers are the cardinality of the OR of the daily bitmaps, not the sum of the daily counts
SELECT s.dt, s.brand, s.store_id, s.sale_buyers_7d,
       (SELECT retail_mid.rb_cardinality(retail_mid.rb_or_agg(d.sale_buyers_1d_bitmap)) FROM retail_mid.dws_metric_mt_store_1d d
         WHERE d.brand = s.brand AND d.store_id = s.store_id AND d.dt BETWEEN s.dt - 6 AND s.dt) AS or_of_bitmaps,
       (SELECT sum(d.sale_buyers_1d) FROM retail_mid.dws_metric_mt_store_1d d
         WHERE d.brand = s.brand AND d.store_id = s.store_id AND d.dt BETWEEN s.dt - 6 AND s.dt) AS sum_of_days
  FROM retail_mid.dws_metric_mt_store s WHERE s.dt = '2026-01-10' ORDER BY 2, 3;
-- the generated tables are secured like the extension's own: brand isolation and role grants
SELECT c.relname, c.relrowsecurity, has_table_privilege('retail_mid_analyst', c.oid, 'SELECT') AS analyst,
       has_table_privilege('retail_mid_bi', c.oid, 'SELECT') AS bi, has_table_privilege('retail_mid_admin', c.oid, 'SELECT') AS admin,
       has_table_privilege('retail_mid_analyst', c.oid, 'INSERT') AS analyst_insert
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relname LIKE 'dws\_metric\_mt\_%' AND c.relkind = 'r' ORDER BY 1;
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
SELECT retail_mid.metric_generate('mt_store', '2026-01-05', '2026-01-06') AS rows_written;
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20');
-- late data for an old day: regenerating that day alone repairs every window it falls in (to date: all later dates)
INSERT INTO public.mt_order_line VALUES ('2026-01-03', 'A', 'S0', 99, 'late', 100, 'sale');
SELECT count(*) AS stale, count(DISTINCT dt) AS stale_dates FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20');
SELECT retail_mid.metric_generate('mt_store', '2026-01-03', '2026-01-03') AS rows_written;
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', '2026-01-20');
SELECT detail->>'dates' AS statistics_dates, detail->>'days_built' AS days_built FROM retail_mid.job_log WHERE job = 'metric_generate' ORDER BY job_id DESC LIMIT 1;
-- a granularity without a brand column mixes brands: readable by admins only
INSERT INTO retail_mid.metric_granularity VALUES ('mt_total', '{}', 'Everything.');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('buyers', 'sale', 'td', 'mt_total'), ('amount', 'all', '30d', 'mt_total');
SELECT retail_mid.metric_generate('mt_total', '2026-01-15', '2026-01-20') AS rows_written;
SELECT dt, sale_buyers_td, (SELECT count(DISTINCT customer_key) FROM public.mt_order_line l WHERE l.line_type = 'sale' AND l.dt <= t.dt) AS buyers_sql,
       amount_30d, (SELECT sum(amount) FROM public.mt_order_line l WHERE l.dt BETWEEN t.dt - 29 AND t.dt) AS amount_sql
  FROM retail_mid.dws_metric_mt_total t ORDER BY dt;
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_total', '2026-01-15', '2026-01-20');
SELECT c.relname, c.relrowsecurity, has_table_privilege('retail_mid_analyst', c.oid, 'SELECT') AS analyst,
       has_table_privilege('retail_mid_bi', c.oid, 'SELECT') AS bi, has_table_privilege('retail_mid_admin', c.oid, 'SELECT') AS admin
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relname LIKE 'dws\_metric\_mt\_total%' AND c.relkind = 'r' ORDER BY 1;

-- the foundation's refresh maintains the generated tables: late ODS data, refresh of that day, reconciled
INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, store_id) VALUES
 ('mt_x', 'x1', 'member_id', 'mtc1', '2031-03-01 10:00', 'S1'), ('mt_x', 'x2', 'member_id', 'mtc2', '2031-03-02 10:00', 'S1'),
 ('mt_x', 'x3', 'member_id', 'mtc1', '2031-03-03 10:00', 'S1'), ('mt_x', 'x4', 'member_id', 'mtc3', '2031-03-03 11:00', 'S2');
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price) VALUES
 ('mt_x', 'x1', 1, 'k1', 1, 10), ('mt_x', 'x2', 1, 'k1', 2, 10), ('mt_x', 'x3', 1, 'k2', 1, 5), ('mt_x', 'x4', 1, 'k2', 3, 5);
SET client_min_messages = warning;  -- the counts of refresh notices depend on the other tests' data
SELECT retail_mid.refresh('2031-03-01', '2031-03-05') > 0 AS refreshed;
RESET client_min_messages;
INSERT INTO retail_mid.metric_atomic (atomic, dwd_table, time_column, expression, unit, additivity) VALUES
 ('mtx_amount', 'retail_mid.dwd_trade_order_line_di', 'dt', 'sum(t.amount)', 'CNY', 'additive'),
 ('mtx_buyers', 'retail_mid.dwd_trade_order_line_di', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'non_additive');
INSERT INTO retail_mid.metric_granularity VALUES ('mt_dwd', '{brand}', 'Brand, over the foundation''s DWD.');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('mtx_amount', 'all', '7d', 'mt_dwd'), ('mtx_buyers', 'all', '7d', 'mt_dwd');
SELECT retail_mid.metric_generate('mt_dwd', '2031-03-01', '2031-03-05') AS rows_written;
SELECT dt, mtx_amount_7d, mtx_buyers_7d FROM retail_mid.dws_metric_mt_dwd WHERE brand = 'mt_x' ORDER BY dt;
INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, store_id) VALUES ('mt_x', 'x5', 'member_id', 'mtc4', '2031-03-02 12:00', 'S2');
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price) VALUES ('mt_x', 'x5', 1, 'k1', 1, 100);
SET client_min_messages = warning;  -- the counts of refresh notices depend on the other tests' data
SELECT retail_mid.refresh('2031-03-02', '2031-03-02') > 0 AS refreshed;
RESET client_min_messages;
SELECT dt, mtx_amount_7d, mtx_buyers_7d FROM retail_mid.dws_metric_mt_dwd WHERE brand = 'mt_x' ORDER BY dt;
SELECT count(*) AS differences FROM retail_mid.metric_reconcile('mt_dwd', '2031-03-01', '2031-03-05');
SELECT (detail->>'metric_rows')::int AS metric_rows FROM retail_mid.job_log WHERE job = 'refresh' ORDER BY job_id DESC LIMIT 1;
-- idempotent: refreshing the same day again changes nothing
CREATE TEMP TABLE mt_before AS SELECT * FROM retail_mid.dws_metric_mt_dwd;
SET client_min_messages = warning;  -- the counts of refresh notices depend on the other tests' data
SELECT retail_mid.refresh('2031-03-02', '2031-03-02') > 0 AS refreshed;
RESET client_min_messages;
SELECT count(*) AS changed FROM ((SELECT * FROM retail_mid.dws_metric_mt_dwd EXCEPT ALL SELECT * FROM mt_before)
                                 UNION ALL (SELECT * FROM mt_before EXCEPT ALL SELECT * FROM retail_mid.dws_metric_mt_dwd)) x;
-- transactional: a refresh failing in the metric step (after DWD and DWS were rebuilt) leaves everything as it was
UPDATE retail_mid.ods_order_line SET unit_price = 1000 WHERE brand = 'mt_x' AND order_id = 'x5';
CREATE FUNCTION public.mt_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'mt: injected failure'; END $$;
CREATE TRIGGER mt_fail BEFORE INSERT ON retail_mid.dws_metric_mt_dwd FOR EACH ROW EXECUTE FUNCTION public.mt_fail();
\set VERBOSITY terse
SET client_min_messages = warning;  -- the counts of refresh notices depend on the other tests' data
SELECT retail_mid.refresh('2031-03-02', '2031-03-02');
RESET client_min_messages;
\set VERBOSITY default
DROP TRIGGER mt_fail ON retail_mid.dws_metric_mt_dwd;
DROP FUNCTION public.mt_fail();
SELECT sum(amount) AS dwd_amount_unchanged FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'mt_x';
SELECT count(*) AS changed FROM ((SELECT * FROM retail_mid.dws_metric_mt_dwd EXCEPT ALL SELECT * FROM mt_before)
                                 UNION ALL (SELECT * FROM mt_before EXCEPT ALL SELECT * FROM retail_mid.dws_metric_mt_dwd)) x;

-- naming rules and bad definitions
INSERT INTO retail_mid.metric_derived (metric, atomic, qualifier, period, granularity) VALUES ('sales_7d', 'amount', 'sale', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_atomic VALUES ('online_amount', 'public.mt_order_line', 'dt', 'sum(t.amount) FILTER (WHERE t.store_id = ''S0'')', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_qualifier VALUES ('sale_online', 't.line_type = ''sale'' AND t.store_id = ''S0''', NULL);
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('online_amount', 'sale', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'sale_online', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('amount', 'sale', '7d', 'mt_brand');
INSERT INTO retail_mid.metric_atomic VALUES ('customers', 'public.mt_order_line', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'additive', NULL);
-- summing what is not additive is refused: distinct counts declared (semi-)additive, ratios, averages, maxima
INSERT INTO retail_mid.metric_atomic VALUES ('customers', 'public.mt_order_line', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'semi_additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('aov', 'public.mt_order_line', 'dt', 'sum(t.amount) / nullif(count(DISTINCT t.order_id), 0)', 'CNY', 'non_additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('aov', 'public.mt_order_line', 'dt', 'sum(t.amount) / nullif(count(*), 0)', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('avg_amount', 'public.mt_order_line', 'dt', 'avg(t.amount)', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('top_amount', 'public.mt_order_line', 'dt', 'max(t.amount)', 'CNY', 'semi_additive', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('cents', 'public.mt_order_line', 'dt', 'sum(t.amount / 100)', 'CNY', 'additive', NULL);  -- a sum of a quotient is a sum
DELETE FROM retail_mid.metric_atomic WHERE atomic = 'cents';
INSERT INTO retail_mid.metric_granularity VALUES ('mt_store_1d', '{brand,store_id}', NULL);
INSERT INTO retail_mid.metric_atomic VALUES ('a_long_atomic_metric_name_xxxxx', 'public.mt_order_line', 'dt', 'sum(t.amount)', 'CNY', 'additive', NULL);
INSERT INTO retail_mid.metric_qualifier VALUES ('a_long_qualifier_name_yyyyyyyyy', 'true', NULL);
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('a_long_atomic_metric_name_xxxxx', 'a_long_qualifier_name_yyyyyyyyy', '7d', 'mt_store');
DELETE FROM retail_mid.metric_atomic WHERE atomic = 'a_long_atomic_metric_name_xxxxx';
DELETE FROM retail_mid.metric_qualifier WHERE qualifier = 'a_long_qualifier_name_yyyyyyyyy';
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
-- issue 19: ranges are checked as retail_mid.refresh checks them (NULL 22004; reversed, infinite or longer than
-- 100 years = 36600 days 22023) instead of running until cancelled; the timeout turns a regression into a failure
SET statement_timeout = '60s';
CREATE FUNCTION pg_temp.outcome(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE 'SELECT (' || call || ')::text' INTO r;
    RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SET client_min_messages = warning;
SELECT call, pg_temp.outcome(call) FROM (VALUES
    ($$retail_mid.metric_generate('mt_store', '2026-01-01', 'infinity')$$),
    ($$retail_mid.metric_generate('mt_store', '-infinity', '2026-01-01')$$),
    ($$retail_mid.metric_generate('mt_store', '4713-01-01 BC', '2000-01-01')$$),
    ($$retail_mid.metric_generate('mt_store', NULL, '2026-01-01')$$),
    ($$retail_mid.metric_refresh('2026-01-01', 'infinity')$$),
    ($$retail_mid.metric_refresh('4713-01-01 BC', '2026-01-01')$$),
    ($$retail_mid.metric_refresh('2026-01-01', NULL)$$),
    ($$retail_mid.metric_refresh('2026-01-02', '2026-01-01')$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', '-infinity', 'infinity'))$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', '2026-01-01', 'infinity'))$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', '4713-01-01 BC', '2026-01-01'))$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', NULL, '2026-01-01'))$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', '2026-01-20', '2026-01-01'))$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', date '2026-01-20' - 36601, '2026-01-20'))$$),
    ($$(SELECT count(*) FROM retail_mid.metric_reconcile('mt_store', date '2026-01-20' - 36600, '2026-01-20'))$$)
) v(call);
RESET client_min_messages;
RESET statement_timeout;

-- clean up
DELETE FROM retail_mid.metric_composite WHERE granularity LIKE 'mt\_%';
DELETE FROM retail_mid.metric_derived WHERE granularity LIKE 'mt\_%';
DELETE FROM retail_mid.metric_granularity WHERE granularity LIKE 'mt\_%';
DELETE FROM retail_mid.metric_qualifier WHERE qualifier IN ('sale', 'returned', 'sale_online', 'red');
DELETE FROM retail_mid.metric_atomic WHERE dwd_table IN ('public.mt_order_line'::regclass, 'public.mt_stock'::regclass) OR atomic LIKE 'mtx\_%';
DROP TABLE retail_mid.dws_metric_mt_store, retail_mid.dws_metric_mt_brand, retail_mid.dws_metric_mt_total, retail_mid.dws_metric_mt_dwd,
           retail_mid.dws_metric_mt_store_1d, retail_mid.dws_metric_mt_brand_1d, retail_mid.dws_metric_mt_total_1d, retail_mid.dws_metric_mt_dwd_1d,
           public.mt_order_line, public.mt_stock;
DELETE FROM retail_mid.ods_order_line WHERE brand = 'mt_x';
DELETE FROM retail_mid.ods_order WHERE brand = 'mt_x';
SET client_min_messages = warning;  -- the counts of refresh notices depend on the other tests' data
SELECT retail_mid.refresh('2031-03-01', '2031-03-05') AS rows_after_cleanup;
RESET client_min_messages;
