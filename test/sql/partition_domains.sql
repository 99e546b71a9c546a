-- partition_domains: the behaviour, marketing, inventory and member DWD/DWS and the AIPL stage bitmaps are partitioned
-- by month like the trade history (issue 13): their builders create the months they write, each partition carries
-- the table's keys, retain drops their whole months too, and after retain the kept days rebuilt (a new day, then all
-- kept days) are the rows computed with the full history (dws_member_1d against plain SQL over all sale days, through
-- the dws_trade_customer_retained baseline); errors leave nothing half done. Dates in 1984 keep this test's months
-- apart from the other tests' data in the shared database.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 31, customers => 250, days => 101, orders_per_day => 25, stores => 3,
                                     skus => 50, start_date => '1984-01-01', brand => 'pdom_test') > 0 AS generated;
SELECT retail_mid.refresh('1984-01-01', '1984-04-10') > 0 AS refreshed;
SELECT retail_mid.aipl_refresh('pdom_test', '1984-01-01', '1984-04-10') > 0 AS aipl_refreshed;
RESET client_min_messages;

CREATE TEMP TABLE pdom_tables AS
SELECT t FROM unnest(ARRAY['retail_mid.dwd_behavior_event_di', 'retail_mid.dwd_marketing_touch_di', 'retail_mid.dws_behavior_customer_1d',
                           'retail_mid.dws_marketing_campaign_1d', 'retail_mid.dws_inventory_site_sku_1d', 'retail_mid.dws_member_1d',
                           'retail_mid.dws_aipl_stage_bitmap_1d']::regclass[]) t;
-- every one is a partitioned history table (retain's list), by range of dt, with no index of its own
SELECT p.t, p.t = ANY (retail_mid.partitioned_history_tables()) AS retained_by_retain, pg_get_partkeydef(p.t) AS key,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = p.t) AS parent_indexes
  FROM pdom_tables p ORDER BY 1::text;
-- the 1984 partitions: one per month written, not extension members, no grants, row-level security, and the keys
SELECT i.inhparent::regclass AS parent, c.relname,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e') AS extension_member,
       has_table_privilege('retail_mid_analyst', c.oid, 'SELECT') AS analyst_reads, c.relrowsecurity AS rls
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN (SELECT t FROM pdom_tables) AND c.relname ~ '_p1984'
 ORDER BY 1::text, 2;
SELECT c.relname, regexp_replace(pg_get_indexdef(x.indexrelid), ' [a-z0-9_]+ ON retail_mid\.[a-z0-9_]+', ' <name> ON <partition>') AS index
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_index x ON x.indrelid = c.oid
 WHERE i.inhparent IN (SELECT t FROM pdom_tables) AND c.relname ~ '_p198402$'
 ORDER BY 1, 2;
-- every row of the brand is in the partition of its month (against plain SQL on the parent)
CREATE FUNCTION pg_temp.n(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE v bigint;
BEGIN
    EXECUTE q INTO v;
    RETURN v;
END;
$$;
SELECT p.t, bool_and(pg_temp.n(format('SELECT count(*) FROM retail_mid.%I WHERE brand = ''pdom_test''', c.relname))
                   = pg_temp.n(format('SELECT count(*) FROM %s WHERE brand = ''pdom_test'' AND dt >= %L AND dt < %L', p.t,
                                      to_date(right(c.relname, 6), 'YYYYMM'), (to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month')::date))) AS rows_in_their_month,
       sum(pg_temp.n(format('SELECT count(*) FROM retail_mid.%I WHERE brand = ''pdom_test''', c.relname))) > 0 AS has_rows
  FROM pdom_tables p JOIN pg_inherits i ON i.inhparent = p.t JOIN pg_class c ON c.oid = i.inhrelid
 WHERE c.relname ~ '_p1984' GROUP BY 1 ORDER BY 1::text;

-- the reference: every table's rows per day, computed with the full history, and the rows of January and February
CREATE FUNCTION pg_temp.digests(t regclass) RETURNS TABLE (dt date, digest text) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT x.dt, md5(string_agg(x::text, ''|'' ORDER BY x::text)) FROM %s x WHERE x.brand = ''pdom_test'' GROUP BY x.dt', t);
END;
$$;
CREATE TEMP TABLE pdom_full AS SELECT p.t, d.dt, d.digest FROM pdom_tables p, pg_temp.digests(p.t) d;
CREATE TEMP TABLE pdom_early AS
SELECT p.t, pg_temp.n(format('SELECT count(*) FROM %s WHERE dt < ''1984-03-01''', p.t)) AS n FROM pdom_tables p;
CREATE TEMP VIEW pdom_compare AS
SELECT p.t, count(*) FILTER (WHERE f.dt >= '1984-03-01' AND (n.digest IS NULL OR n.digest <> f.digest)) AS kept_days_differing,
       count(*) FILTER (WHERE f.dt >= '1984-03-01') > 0 AS has_kept_days,
       (SELECT count(*) FROM pg_temp.digests(p.t) x WHERE x.dt < '1984-03-01') AS days_before_kept
  FROM pdom_tables p JOIN pdom_full f ON f.t = p.t LEFT JOIN pg_temp.digests(p.t) n ON n.dt = f.dt
 GROUP BY p.t;
-- members active (a sale day in the 90 days ending the day) and lapsed (sale days before, none in them), in plain SQL
-- over every sale day of the full history
CREATE TEMP TABLE pdom_sale_days AS SELECT customer_key, dt FROM retail_mid.dws_trade_customer_1d WHERE brand = 'pdom_test' AND orders > 0;
CREATE TEMP VIEW pdom_member_diff AS
WITH m AS (SELECT k.customer_key, coalesce(nullif(btrim(c.home_store_id), ''), '(none)') AS store_id,
                  coalesce(nullif(btrim(c.register_channel), ''), '(none)') AS channel
             FROM retail_mid.ods_customer c
             JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                        AND k.id_value = retail_mid.identifier_value(c.customer_id)
            WHERE c.brand = 'pdom_test'),
ref AS (SELECT g.dt::date AS dt, m.store_id, m.channel,
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pdom_sale_days s WHERE s.customer_key = m.customer_key AND s.dt BETWEEN g.dt::date - 89 AND g.dt::date)) AS active,
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pdom_sale_days s WHERE s.customer_key = m.customer_key AND s.dt < g.dt::date - 89)
                                  AND NOT EXISTS (SELECT 1 FROM pdom_sale_days s WHERE s.customer_key = m.customer_key AND s.dt BETWEEN g.dt::date - 89 AND g.dt::date)) AS lapsed
          FROM m, generate_series('1984-03-01'::date, '1984-04-10'::date, interval '1 day') g(dt)
         GROUP BY 1, 2, 3)
SELECT count(*) FILTER (WHERE coalesce(r.active, 0) <> coalesce(d.active_members, 0) OR coalesce(r.lapsed, 0) <> coalesce(d.lapsed_members, 0)) AS member_rows_differing,
       sum(r.active) > 0 AS has_active, sum(r.lapsed) > 0 AS has_lapsed
  FROM ref r
  FULL JOIN (SELECT * FROM retail_mid.dws_member_1d WHERE brand = 'pdom_test' AND dt >= '1984-03-01') d
    ON d.dt = r.dt AND d.store_id = r.store_id AND d.channel = r.channel;
SELECT * FROM pdom_member_diff;

CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
-- errors first, each leaving everything in place: a retention date inside the refresh window (55000); a table with
-- the name of a partition to create (42P07), met by refresh and by aipl_refresh: no May partition of any table
SET client_min_messages = warning;
SELECT pg_temp.try(format('SELECT * FROM retail_mid.retain(%L)', (SELECT max(as_of) FROM retail_mid.dws_refresh_state) - 29)) ~ '^55000: retention date .* is inside the refresh window$' AS retain_in_window;
CREATE TABLE retail_mid.dws_member_1d_p198405 (x int);
CREATE TABLE retail_mid.dws_aipl_stage_bitmap_1d_p198405 (x int);
SELECT pg_temp.try($$SELECT retail_mid.refresh('1984-04-10', '1984-05-01')$$) AS refresh_meets_it;
SELECT pg_temp.try($$SELECT retail_mid.aipl_refresh('pdom_test', '1984-04-10', '1984-05-01')$$) AS aipl_meets_it;
RESET client_min_messages;
SELECT count(*) AS may_partitions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relname ~ '_p198405$';
DROP TABLE retail_mid.dws_member_1d_p198405, retail_mid.dws_aipl_stage_bitmap_1d_p198405;
SELECT t, kept_days_differing, has_kept_days, days_before_kept > 0 AS has_days_before FROM pdom_compare ORDER BY 1::text;

-- retain before 10 March 1984: January and February go from every table, with as many rows as plain SQL counted
SET client_min_messages = warning;
SELECT r.table_name, count(*) AS partitions, sum(r.rows_dropped) = e.n AS rows_dropped_match_plain_sql
  FROM retail_mid.retain('1984-03-10') r JOIN pdom_early e ON e.t::text = r.table_name
 WHERE r.partition_name ~ '_p1984' GROUP BY r.table_name, e.n ORDER BY 1;
RESET client_min_messages;
SELECT kept_from FROM retail_mid.history_retention;
-- a new day refreshed after retain (as run_daily would), then every kept day: the rows computed with the full history
SET client_min_messages = warning;
SELECT retail_mid.refresh('1984-04-10', '1984-04-10') > 0 AS refreshed_new_day;
RESET client_min_messages;
SELECT t, kept_days_differing, has_kept_days, days_before_kept FROM pdom_compare ORDER BY 1::text;
SELECT * FROM pdom_member_diff;
SET client_min_messages = warning;
SELECT retail_mid.refresh('1984-03-01', '1984-04-10') > 0 AS refreshed_kept_days;
RESET client_min_messages;
SELECT t, kept_days_differing, has_kept_days, days_before_kept FROM pdom_compare ORDER BY 1::text;
SELECT * FROM pdom_member_diff;
-- days dropped by retain cannot be rebuilt by the domain refresh or AIPL either (55000), and nothing is recreated
\set VERBOSITY terse
SELECT retail_mid.refresh_domains('1984-02-20', '1984-03-05');
SELECT retail_mid.aipl_refresh('pdom_test', '1984-02-01', '1984-03-31');
\set VERBOSITY default
SELECT count(*) AS february_partitions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN (SELECT t FROM pdom_tables) AND c.relname ~ '_p19840[12]$';

-- the database is shared with the other tests: forget the retention horizon (the baselines of pdom_test stay)
DELETE FROM retail_mid.history_retention;
