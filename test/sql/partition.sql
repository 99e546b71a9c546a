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
SELECT 'retail_mid.' || t AS parent, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM retail_mid.%I WHERE dt < ''1986-02-01''', t), false, true, '')))[1]::text::bigint AS n
  FROM unnest(ARRAY['dwd_trade_order_line_di', 'dws_trade_customer_1d', 'dws_trade_sku_store_1d', 'dws_trade_store_1d']) t;
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
-- the _td tables are cumulative: unchanged by retain
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
