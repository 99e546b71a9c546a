-- partition: the DWD and trade _1d tables are partitioned by month (issue 13): refresh creates the partitions it
-- writes, a day rebuilt touches only its month, partitions grant nothing (the parent's grants and row-level
-- security apply), retain drops whole months before a date and leaves the _td totals as they were, and the
-- errors. Dates in 1986 keep this test's months apart from the other tests' data in the shared database.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 13, customers => 300, days => 75, orders_per_day => 30, stores => 3,
                                     skus => 60, start_date => '1986-01-01', brand => 'part_test') > 0 AS generated;
SELECT retail_mid.refresh('1986-01-01', '1986-03-16') > 0 AS refreshed;
RESET client_min_messages;

-- the parents are partitioned by range of dt; refresh created one partition per month it wrote
SELECT p.partrelid::regclass AS parent, p.partstrat, pg_get_partkeydef(p.partrelid) AS key
  FROM pg_partitioned_table p WHERE p.partrelid = ANY (retail_mid.partitioned_history_tables()) ORDER BY 1::text;
SELECT i.inhparent::regclass AS parent, c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e') AS extension_member,
       has_table_privilege('retail_mid_analyst', c.oid, 'SELECT') AS analyst_reads,
       has_table_privilege('retail_mid_bi', c.oid, 'SELECT') AS bi_reads,
       has_table_privilege('retail_mid_admin', c.oid, 'SELECT') AS admin_reads_directly, c.relrowsecurity AS rls,
       (SELECT count(*) FROM pg_description d WHERE d.objoid = c.oid AND d.classoid = 'pg_class'::regclass) > 1 AS commented
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = ANY (retail_mid.partitioned_history_tables()) AND c.relname ~ '_p1986'
 ORDER BY 1::text, 2;
-- every row of the brand is in the partition of its month (against plain SQL on the parent)
SELECT (SELECT count(*) FROM retail_mid.dwd_trade_order_line_di_p198601 WHERE brand = 'part_test')
     = (SELECT count(*) FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'part_test' AND dt < '1986-02-01') AS january_rows_in_january,
       (SELECT count(*) FROM retail_mid.dws_trade_store_1d_p198603 WHERE brand = 'part_test')
     = (SELECT count(*) FROM retail_mid.dws_trade_store_1d WHERE brand = 'part_test' AND dt >= '1986-03-01') AS march_rows_in_march;

-- ensure_partitions: an existing month is fine (0 created), a new one is created once; bad input
SELECT retail_mid.ensure_partitions('retail_mid.dws_trade_store_1d', '1986-01-15', '1986-03-01') AS existing;
SELECT retail_mid.ensure_partitions('retail_mid.dws_trade_store_1d', '1986-04-01', '1986-04-30') AS april;
SELECT retail_mid.ensure_partitions('retail_mid.dws_trade_store_1d', '1986-04-10', '1986-04-10') AS april_again;
DROP TABLE retail_mid.dws_trade_store_1d_p198604;
\set VERBOSITY terse
SELECT retail_mid.ensure_partitions('retail_mid.dws_trade_store_td', '1986-04-01', '1986-04-30');
SELECT retail_mid.ensure_partitions('retail_mid.dws_trade_store_1d', '1986-04-01', 'infinity');
\set VERBOSITY default

-- rebuilding a day touches its month's partition only: the other months' tuples (ctid, xmin) stay as they were
CREATE TEMP TABLE part_before AS
SELECT 'jan' AS m, md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) AS tuples FROM retail_mid.dwd_trade_order_line_di_p198601
UNION ALL SELECT 'mar', md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM retail_mid.dwd_trade_order_line_di_p198603
UNION ALL SELECT 'feb_other_days', md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM retail_mid.dwd_trade_order_line_di_p198602 WHERE dt <> '1986-02-10'
UNION ALL SELECT 'jan_1d', md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM retail_mid.dws_trade_customer_1d_p198601;
CREATE TEMP TABLE part_rows AS SELECT count(*) AS n FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'part_test' AND dt = '1986-02-10';
SET client_min_messages = warning;
SELECT retail_mid.refresh('1986-02-10', '1986-02-10') > 0 AS refreshed_one_day;
RESET client_min_messages;
SELECT b.m, b.tuples = a.tuples AS untouched
  FROM part_before b JOIN (
        SELECT 'jan' AS m, md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) AS tuples FROM retail_mid.dwd_trade_order_line_di_p198601
        UNION ALL SELECT 'mar', md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM retail_mid.dwd_trade_order_line_di_p198603
        UNION ALL SELECT 'feb_other_days', md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM retail_mid.dwd_trade_order_line_di_p198602 WHERE dt <> '1986-02-10'
        UNION ALL SELECT 'jan_1d', md5(string_agg(ctid::text || ':' || xmin::text, ',' ORDER BY ctid)) FROM retail_mid.dws_trade_customer_1d_p198601) a
    ON a.m = b.m ORDER BY 1;
-- the rebuilt day has as many rows as before, all written after the other days of its month
SELECT (SELECT n FROM part_rows) = count(*) AS same_rows,
       count(*) > 0 AS rebuilt_day_has_rows,
       bool_and(xmin::text::bigint > (SELECT max(xmin::text::bigint) FROM retail_mid.dwd_trade_order_line_di_p198602 WHERE dt <> '1986-02-10')) AS rebuilt_after_the_others
  FROM retail_mid.dwd_trade_order_line_di_p198602 WHERE dt = '1986-02-10';

-- retain: the _td totals, the _nd readers and the rows before it
CREATE TEMP TABLE td_before AS
SELECT 'customer' AS t, md5(string_agg(x::text, ',' ORDER BY x::text)) AS h FROM retail_mid.dws_trade_customer_td x WHERE brand = 'part_test'
UNION ALL SELECT 'sku_store', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_sku_store_td x WHERE brand = 'part_test'
UNION ALL SELECT 'store', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_store_td x WHERE brand = 'part_test';
CREATE TEMP TABLE jan_rows AS
SELECT t::text AS parent, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s WHERE dt < ''1986-02-01''', t), false, true, '')))[1]::text::bigint AS n
  FROM unnest(retail_mid.partitioned_history_tables()) t;  -- the trade and (since issue 13's second part) the domain tables
-- the full history in plain SQL, kept before anything is dropped: the reference the _td rows must still match
-- after retain and a refresh of new days (issue 13: the *_retained baselines)
CREATE TEMP TABLE full_lines AS SELECT * FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'part_test';
-- errors first: each leaves everything in place
\set VERBOSITY terse
SELECT * FROM retail_mid.retain(NULL);
SELECT * FROM retail_mid.retain('-infinity');
\set VERBOSITY default
DO $$
DECLARE v_latest date := (SELECT max(as_of) FROM retail_mid.dws_refresh_state);
BEGIN
    PERFORM * FROM retail_mid.retain(v_latest - 29);
    RAISE EXCEPTION 'retain inside the refresh window did not fail';
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RAISE NOTICE 'retain inside the refresh window: SQLSTATE 55000 (%)', SQLERRM LIKE 'retention date % is inside the refresh window';
END $$;
SELECT count(*) AS january_partitions_still_there FROM pg_class WHERE relname ~ '_p198601$';

-- retain before 14 February 1986: January goes (wholly older), February stays (it ends after the date)
SELECT r.table_name, r.partition_name, r.from_date, r.to_date, r.rows_dropped = j.n AS rows_dropped_match_plain_sql
  FROM retail_mid.retain('1986-02-14') r JOIN jan_rows j ON j.parent = r.table_name
 WHERE r.partition_name ~ '_p1986' ORDER BY 1, 2;
SELECT count(*) AS january_partitions_left FROM pg_class WHERE relname ~ '_p198601$';
SELECT count(*) AS february_partitions_left FROM pg_class WHERE relname ~ '_p198602$';
SELECT count(*) AS january_cleaning_rows FROM retail_mid.dwd_trade_cleaning_1d WHERE brand = 'part_test' AND dt < '1986-02-01';
SELECT job, outcome, rows_written = (SELECT sum(n) FROM jan_rows) AS rows_logged,
       (detail ->> 'dropped_through')::date >= '1986-01-31' AS dropped_through
  FROM retail_mid.job_log WHERE job = 'retain' ORDER BY job_id DESC LIMIT 1;
-- the _td tables are cumulative: unchanged by retain (the dropped totals moved into the *_retained baselines)
SELECT b.t, b.h = a.h AS td_unchanged
  FROM td_before b JOIN (
        SELECT 'customer' AS t, md5(string_agg(x::text, ',' ORDER BY x::text)) AS h FROM retail_mid.dws_trade_customer_td x WHERE brand = 'part_test'
        UNION ALL SELECT 'sku_store', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_sku_store_td x WHERE brand = 'part_test'
        UNION ALL SELECT 'store', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM retail_mid.dws_trade_store_td x WHERE brand = 'part_test') a
    ON a.t = b.t ORDER BY 1;
-- the _nd readers over the kept days still work (the 30 days to 16 March against plain SQL on the _1d table)
SELECT (SELECT sum(net_amount) FROM retail_mid.dws_trade_store_nd_at('1986-03-16', 'part_test') WHERE period_days = 30)
     = (SELECT sum(net_amount) FROM retail_mid.dws_trade_store_1d WHERE brand = 'part_test' AND dt BETWEEN '1986-02-15' AND '1986-03-16') AS nd_30_matches;
-- retaining again drops nothing more
SELECT count(*) AS dropped_again FROM retail_mid.retain('1986-02-14') r WHERE r.partition_name ~ '_p1986';

-- the baselines hold January's totals (plain SQL over the January lines kept above)
SELECT (SELECT count(*) FROM retail_mid.dws_trade_customer_retained WHERE brand = 'part_test')
     = (SELECT count(DISTINCT customer_key) FROM full_lines WHERE dt < '1986-02-01' AND customer_key IS NOT NULL) AS customer_baselines,
       (SELECT sum(net_amount) FROM retail_mid.dws_trade_customer_retained WHERE brand = 'part_test')
     = (SELECT sum(amount) FROM full_lines WHERE dt < '1986-02-01' AND customer_key IS NOT NULL) AS customer_baseline_net,
       (SELECT kept_from FROM retail_mid.history_retention) AS kept_from;

-- new days after retain: January's orders bought again on 17 March (same customers, stores, SKUs, new order ids);
-- refresh the new day, then all kept days (which touches every key with January history)
INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, original_order_id, country)
SELECT brand, order_id || '_again', id_type, customer_id, timestamp '1986-03-17' + (order_time - order_time::date), channel, store_id, status, NULL, country
  FROM retail_mid.ods_order WHERE brand = 'part_test' AND order_time < '1986-02-01' AND original_order_id IS NULL;
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount)
SELECT l.brand, l.order_id || '_again', l.line_no, l.sku_id, l.quantity, l.unit_price, l.discount
  FROM retail_mid.ods_order_line l JOIN retail_mid.ods_order o ON o.brand = l.brand AND o.order_id = l.order_id
 WHERE l.brand = 'part_test' AND o.order_time < '1986-02-01' AND o.original_order_id IS NULL AND l.original_order_id IS NULL;
SET client_min_messages = warning;
SELECT retail_mid.refresh('1986-03-17', '1986-03-17') > 0 AS refreshed_new_day;
RESET client_min_messages;
INSERT INTO full_lines SELECT * FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'part_test' AND dt = '1986-03-17';
-- the _td tables against plain SQL over the full history (January included), per key
CREATE TEMP VIEW td_reference_diff AS
WITH o AS (SELECT dt, order_id, customer_key, coalesce(store_id, '(none)') AS store_id, bool_or(line_type = 'sale') AS has_sale,
                  bool_or(line_type = 'return') AS has_return
             FROM full_lines GROUP BY 1, 2, 3, 4),
cust AS (SELECT customer_key, min(dt) AS f, max(dt) AS l, sum(quantity) AS q, sum(amount) FILTER (WHERE line_type = 'sale') AS s,
                coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS r, sum(amount) AS n, count(DISTINCT dt) AS days
           FROM full_lines WHERE customer_key IS NOT NULL GROUP BY 1),
cust_o AS (SELECT customer_key, count(*) FILTER (WHERE has_sale) AS orders, count(*) FILTER (WHERE has_return) AS return_orders,
                  min(dt) FILTER (WHERE has_sale) AS fs, max(dt) FILTER (WHERE has_sale) AS ls
             FROM o WHERE customer_key IS NOT NULL GROUP BY 1),
store AS (SELECT store_id, min(dt) AS f, max(dt) AS l, count(*) FILTER (WHERE has_sale) AS orders,
                 count(DISTINCT customer_key) FILTER (WHERE has_sale) AS customers FROM o GROUP BY 1),
store_n AS (SELECT coalesce(store_id, '(none)') AS store_id, sum(amount) AS n FROM full_lines GROUP BY 1),
sku_o AS (SELECT dt, order_id, customer_key, coalesce(store_id, '(none)') AS store_id, sku_id,
                 coalesce(sum(quantity) FILTER (WHERE line_type = 'sale'), 0) AS sq, sum(quantity) AS q, sum(amount) AS n
            FROM full_lines GROUP BY 1, 2, 3, 4, 5),
sku AS (SELECT store_id, sku_id, min(dt) AS f, max(dt) AS l, count(DISTINCT dt) AS days, count(*) FILTER (WHERE sq > 0) AS orders,
               sum(q) AS q, sum(n) AS n, count(DISTINCT customer_key) FILTER (WHERE sq > 0) AS buyers FROM sku_o GROUP BY 1, 2)
SELECT 'customer' AS t, count(*) FILTER (WHERE t.customer_key IS NULL OR c.customer_key IS NULL
           OR (t.first_order_date, t.last_order_date, t.orders, t.return_orders, t.active_days, t.quantity, t.sales_amount, t.return_amount,
               t.net_amount, t.first_sale_date, t.last_sale_date)
              IS DISTINCT FROM (c.f, c.l, co.orders, co.return_orders, c.days::int, c.q, coalesce(c.s, 0), c.r, c.n, co.fs, co.ls)) AS keys_differing,
       count(*) AS keys
  FROM (SELECT * FROM retail_mid.dws_trade_customer_td WHERE brand = 'part_test') t
  FULL JOIN cust c ON c.customer_key = t.customer_key LEFT JOIN cust_o co ON co.customer_key = c.customer_key
UNION ALL
SELECT 'store', count(*) FILTER (WHERE t.store_id IS NULL OR s.store_id IS NULL
           OR (t.first_sale_date, t.last_sale_date, t.orders, t.net_amount, t.customers) IS DISTINCT FROM (s.f, s.l, s.orders, sn.n, s.customers::int)),
       count(*)
  FROM (SELECT * FROM retail_mid.dws_trade_store_td WHERE brand = 'part_test') t
  FULL JOIN store s ON s.store_id = t.store_id LEFT JOIN store_n sn ON sn.store_id = s.store_id
UNION ALL
SELECT 'sku_store', count(*) FILTER (WHERE t.sku_id IS NULL OR k.sku_id IS NULL
           OR (t.first_sale_date, t.last_sale_date, t.selling_days, t.orders, t.quantity, t.net_amount, t.buyers)
              IS DISTINCT FROM (k.f, k.l, k.days::int, k.orders, k.q, k.n, k.buyers::int)),
       count(*)
  FROM (SELECT * FROM retail_mid.dws_trade_sku_store_td WHERE brand = 'part_test') t
  FULL JOIN sku k ON k.store_id = t.store_id AND k.sku_id = t.sku_id;
SELECT t, keys_differing, keys > 0 AS has_keys FROM td_reference_diff ORDER BY 1;
-- customers with January history who bought again on 17 March: their _td rows count both
SELECT count(*) > 0 AS rebuyers, bool_and(t.first_order_date < '1986-02-01' AND t.last_order_date = '1986-03-17') AS span_both
  FROM retail_mid.dws_trade_customer_td t JOIN retail_mid.dws_trade_customer_retained r USING (brand, customer_key)
 WHERE t.brand = 'part_test' AND t.customer_key IN (SELECT customer_key FROM full_lines WHERE dt = '1986-03-17');
SET client_min_messages = warning;
SELECT retail_mid.refresh('1986-02-01', '1986-03-17') > 0 AS refreshed_all_kept_days;
RESET client_min_messages;
SELECT t, keys_differing, keys > 0 AS has_keys FROM td_reference_diff ORDER BY 1;

-- refreshing a dropped day would count it twice: 55000, nothing written
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
SET client_min_messages = warning;
SELECT pg_temp.try($$SELECT retail_mid.refresh('1986-01-20', '1986-02-05')$$) AS refresh_dropped_day;
RESET client_min_messages;
SELECT count(*) AS january_partitions_after_refused_refresh FROM pg_class WHERE relname ~ '_p198601$';

-- a table that has the name of a partition to create but is not that partition: 42P07 before anything is
-- changed, and a refresh meeting it writes nothing (no April partition either)
CREATE TABLE retail_mid.dws_trade_store_1d_p198605 (x int);
SET client_min_messages = warning;
SELECT pg_temp.try($$SELECT retail_mid.ensure_partitions('retail_mid.dws_trade_store_1d', '1986-05-01', '1986-05-31')$$) AS name_taken;
SELECT pg_temp.try($$SELECT retail_mid.refresh('1986-03-17', '1986-05-02')$$) AS refresh_meets_it;
RESET client_min_messages;
SELECT count(*) AS april_partitions FROM pg_class WHERE relname ~ '_p198604$';
DROP TABLE retail_mid.dws_trade_store_1d_p198605;

-- the database is shared with the other tests: forget the retention horizon (the baselines of part_test stay)
DELETE FROM retail_mid.history_retention;
