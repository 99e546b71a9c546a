-- security_isolation: an analyst (and a BI user) entitled only to brand iso_a reads, counts and aggregates
-- nothing of brand iso_b through any relation or function of the extension. The relations and functions are
-- enumerated from the catalog, so a new one shows up in this test's output and has to be classified.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;

-- fixture: two brands with customers, identifiers, orders; one person (iso_shared) buys from both: each brand issued
-- its own member id iso_shared (two customers, two keys: member ids are namespaced by brand), and both brands know
-- the person's phone 13800000003, a global identifier, under which the orders ia3 and ib3 are placed (one key)
INSERT INTO retail_mid.ods_customer (brand, customer_id, name, phone, email, birth_date) VALUES
 ('iso_a', 'iso_a1', 'Zhao Yi', '13800000001', 'yi@a.example', '1990-01-01'),
 ('iso_a', 'iso_a2', 'Qian Er', '13800000002', 'er@a.example', '1991-02-02'),
 ('iso_a', 'iso_shared', 'Sun San', '13800000003', 'san@a.example', '1992-03-03'),
 ('iso_b', 'iso_b1', 'Li Si', '13900000001', 'si@b.example', '1980-04-04'),
 ('iso_b', 'iso_b2', 'Zhou Wu', '13900000002', 'wu@b.example', '1981-05-05'),
 ('iso_b', 'iso_shared', 'Sun San', '13800000003', 'san@b.example', '1992-03-03');
INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value) VALUES
 ('iso_a', 'iso_a1', 'phone', '13800000001'), ('iso_b', 'iso_b1', 'phone', '13900000001'), ('iso_b', 'iso_b2', 'open_id', 'wx-iso-b2'),
 ('iso_a', 'iso_shared', 'phone', '13800000003'), ('iso_b', 'iso_shared', 'phone', '13800000003');
INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, store_id) VALUES
 ('iso_a', 'ia1', 'member_id', 'iso_a1', '2032-01-10 10:00', 'A1'), ('iso_a', 'ia2', 'member_id', 'iso_a2', '2032-01-11 10:00', 'A1'),
 ('iso_a', 'ia3', 'phone', '13800000003', '2032-01-12 10:00', 'A2'),
 ('iso_b', 'ib1', 'member_id', 'iso_b1', '2032-01-10 10:00', 'B1'), ('iso_b', 'ib2', 'member_id', 'iso_b2', '2032-01-11 10:00', 'B1'),
 ('iso_b', 'ib3', 'phone', '13800000003', '2032-01-12 11:00', 'B1');
INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price)
SELECT brand, order_id, 1, 'sku1', 1, CASE WHEN brand = 'iso_a' THEN 10 ELSE 1000 END FROM retail_mid.ods_order WHERE brand LIKE 'iso\_%';
SELECT retail_mid.refresh('2032-01-01', '2032-01-31') > 0 AS refreshed;
SELECT brand, count(*) AS customers FROM retail_mid.customer_brand WHERE brand LIKE 'iso\_%' GROUP BY brand ORDER BY brand;
-- tags: two of scope brand (a value per brand and customer), the seed brand tag monetary_td (net amount to date
-- in the brand: iso_shared spent 10 at iso_a and 1000 at iso_b), and two group tags summing orders over both
-- brands, one shared with brands by the administrator and one not; a saved audience, OneID persons (iso_a1
-- and iso_b1 are one person) and a generated metric table
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, scope)
VALUES ('iso_buyer', '其他', '其他', 'boolean', 'SELECT customer_key, true, brand FROM retail_mid.dws_trade_customer_td WHERE brand LIKE ''iso\_%''', 'brand'),
       ('iso_orders', '其他', '其他', 'numeric', 'SELECT customer_key, orders, brand FROM retail_mid.dws_trade_customer_td WHERE brand LIKE ''iso\_%''', 'brand');
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, shared_with_brands)
VALUES ('iso_group_orders', '其他', '其他', 'numeric', 'SELECT customer_key, sum(orders) FROM retail_mid.dws_trade_customer_td WHERE brand LIKE ''iso\_%'' GROUP BY 1', true),
       ('iso_group_hidden', '其他', '其他', 'boolean', 'SELECT customer_key, sum(orders) >= 2 FROM retail_mid.dws_trade_customer_td WHERE brand LIKE ''iso\_%'' GROUP BY 1', false);
SELECT retail_mid.evaluate_tags(ARRAY['iso_buyer', 'iso_orders', 'iso_group_orders', 'iso_group_hidden', 'monetary_td']) > 0 AS tags_written;
SELECT retail_mid.save_audience('iso_all', 'iso_buyer') AS version;
INSERT INTO retail_mid.oneid_person_map (customer_key, person_key)
SELECT k.customer_key, (SELECT customer_key FROM retail_mid.customer_key WHERE id_type = 'member_id' AND id_value = 'iso_a1')
  FROM retail_mid.customer_key k WHERE k.id_type = 'member_id' AND k.id_value IN ('iso_a1', 'iso_b1')
UNION ALL
SELECT k.customer_key, k.customer_key FROM retail_mid.customer_key k
 WHERE k.id_type = 'member_id' AND k.id_value IN ('iso_a2', 'iso_b2') OR k.id_type = 'phone' AND k.id_value = '13800000003';
INSERT INTO retail_mid.metric_atomic (atomic, dwd_table, time_column, expression, unit, additivity) VALUES
 ('iso_amount', 'retail_mid.dwd_trade_order_line_di', 'dt', 'sum(t.amount)', 'CNY', 'additive'),
 ('iso_buyers', 'retail_mid.dwd_trade_order_line_di', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'non_additive');
INSERT INTO retail_mid.metric_granularity VALUES ('iso_store', '{brand,store_id}', 'Store.'), ('iso_group', '{}', 'All brands together.');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES
 ('iso_amount', 'all', '30d', 'iso_store'), ('iso_buyers', 'all', 'td', 'iso_store'), ('iso_buyers', 'all', 'td', 'iso_group');
SELECT retail_mid.metric_generate('iso_store', '2032-01-01', '2032-01-31') > 0 AS generated;
SELECT retail_mid.metric_generate('iso_group', '2032-01-01', '2032-01-31') > 0 AS generated;
-- quality results of a rule judged per brand (and for the whole table, brand '*')
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, by_brand)
VALUES ('iso_store_known', 'retail_mid.ods_order', 'store_id', 'not_null', true);
SELECT retail_mid.quality_evaluate('retail_mid.ods_order', '2032-01-31 12:00+00') > 0 AS quality_evaluated;
RESET client_min_messages;
-- what the superuser sees: both brands; a brand tag's group-wide answer is the union over brands (a customer
-- counts when the predicate holds in some brand), checked against plain SQL
SELECT retail_mid.audience_count('iso_buyer') AS audience_all_brands, retail_mid.audience_count('iso_orders >= 2') AS two_orders,
       retail_mid.audience_count('iso_orders BETWEEN 1 AND 1.5') AS one_order, retail_mid.audience_count('iso_group_orders >= 2') AS two_orders_group;
SELECT count(DISTINCT customer_key) AS all_brands_sql, count(DISTINCT customer_key) FILTER (WHERE orders >= 2) AS two_orders_sql,
       count(DISTINCT customer_key) FILTER (WHERE orders BETWEEN 1 AND 1.5) AS one_order_sql,
       (SELECT count(*) FROM (SELECT 1 FROM retail_mid.dws_trade_customer_td WHERE brand LIKE 'iso\_%' GROUP BY customer_key HAVING sum(orders) >= 2) x) AS two_orders_group_sql
  FROM retail_mid.dws_trade_customer_td WHERE brand LIKE 'iso\_%';
SELECT v.brand, count(*) AS values, count(*) FILTER (WHERE v.numeric_value = d.net_amount) AS equal_to_brand_net_amount
  FROM retail_mid.tag_value v JOIN retail_mid.dws_trade_customer_td d ON d.brand = v.brand AND d.customer_key = v.customer_key
 WHERE v.tag_name = 'monetary_td' AND v.valid_to IS NULL AND v.brand LIKE 'iso\_%' GROUP BY 1 ORDER BY 1;
SELECT retail_mid.audience_count('monetary_td >= 500 AND iso_buyer') AS spent_500_some_brand,
       (SELECT count(DISTINCT customer_key) FROM retail_mid.dws_trade_customer_td WHERE brand LIKE 'iso\_%' AND net_amount >= 500) AS sql;
SELECT brand, sum(iso_amount_30d) AS amount, max(iso_buyers_td) AS max_store_buyers FROM retail_mid.dws_metric_iso_store WHERE dt = '2032-01-31' AND brand LIKE 'iso\_%' GROUP BY brand ORDER BY brand;
-- a brand tag's bitmaps: each brand's own and their union ('*'); a shared group tag: no entitlement yet, so its
-- group row only
SELECT tag_name, brand, tag_value, customers FROM retail_mid.tag_bitmap WHERE tag_name IN ('iso_buyer', 'iso_group_hidden') ORDER BY 1, 2;
SELECT tag_name, brand, customers, min_value, max_value FROM retail_mid.tag_bsi WHERE tag_name IN ('iso_orders', 'iso_group_orders') ORDER BY 1, 2;

-- users: an analyst and a BI user entitled to iso_a only; the keys of iso_a's customers as the reference
CREATE ROLE iso_analyst LOGIN IN ROLE retail_mid_analyst;
CREATE ROLE iso_bi LOGIN IN ROLE retail_mid_bi;
INSERT INTO retail_mid.brand_entitlement VALUES ('iso_analyst', 'iso_a'), ('iso_bi', 'iso_a');
CREATE TABLE public.iso_a_keys AS SELECT customer_key FROM retail_mid.customer_brand WHERE brand = 'iso_a';
GRANT SELECT ON public.iso_a_keys TO iso_analyst, iso_bi;
-- the entitlements added the brand rows of the shared group tag (iso_a's customers, iso_shared included), not
-- of the unshared one; the brand tag's rows do not depend on entitlements
SELECT tag_name, brand, customers FROM retail_mid.tag_bsi WHERE tag_name IN ('iso_orders', 'iso_group_orders') ORDER BY 1, 2;
SELECT tag_name, brand, tag_value, customers FROM retail_mid.tag_bitmap WHERE tag_name IN ('iso_buyer', 'iso_group_hidden') ORDER BY 1, 2;

-- Every relation of the schema (the extension's and the ones it generated), classified for the current user:
-- not readable; brand-isolated (no row of another brand, and how many of iso_a; group-wide '*' rows only where a
-- policy shares them: the settings defaults, and the values of shared group tags for iso_a's customers);
-- customer-scoped (no customer outside iso_a's); reference data (definitions without rows of any brand);
-- anything else is a leak.
CREATE FUNCTION public.iso_probe() RETURNS TABLE (relation text, member text, outcome text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record; other bigint; own bigint; shared boolean; group_shared boolean; star bigint;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel, c.relname::text AS relname,
                    CASE WHEN EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                                         AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'retail_mid')) THEN 'extension' ELSE 'generated' END AS member,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND NOT a.attisdropped) AS has_brand,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_key' AND NOT a.attisdropped) AS has_customer
               FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND NOT c.relispartition  -- issue 13: monthly partitions grant nothing (test partition)
              ORDER BY c.relname LOOP
        relation := r.relname; member := r.member;
        IF NOT has_table_privilege(r.rel, 'SELECT') AND NOT has_any_column_privilege(r.rel, 'SELECT') THEN
            outcome := 'not readable';
        ELSE
            BEGIN
                IF r.has_brand THEN
                    -- '*' rows are shared defaults only where a brand_defaults policy says so (settings tables)
                    shared := EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.rel AND p.polname = 'brand_defaults');
                    -- group-wide values of shared group tags: only of iso_a's customers, only of shared tags
                    group_shared := EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.rel AND p.polname = 'shared_group_values');
                    EXECUTE format('SELECT count(*) FILTER (WHERE brand IS DISTINCT FROM ''iso_a'' AND NOT ($1 AND brand = ''*'') AND NOT (brand = ''*'' AND %s)), '
                                   'count(*) FILTER (WHERE brand = ''iso_a''), count(*) FILTER (WHERE brand = ''*'') FROM %s',
                                   CASE WHEN group_shared THEN 'customer_key IN (SELECT customer_key FROM public.iso_a_keys) AND tag_name IN (SELECT tag_name FROM retail_mid.tag_definition WHERE shared_with_brands)'
                                        ELSE 'false' END, r.rel)
                       INTO other, own, star USING shared;
                    outcome := CASE WHEN other = 0 THEN format('brand-isolated, %s rows of iso_a', own) || CASE WHEN shared THEN ' (and the shared ''*'' defaults)' ELSE '' END
                                                        || CASE WHEN group_shared THEN format(' (and %s group-wide values of shared tags for iso_a customers)', star) ELSE '' END
                                    ELSE format('LEAK: %s rows of other brands', other) END;
                ELSIF r.has_customer THEN
                    EXECUTE format('SELECT count(*) FILTER (WHERE customer_key NOT IN (SELECT customer_key FROM public.iso_a_keys)), count(*) FROM %s', r.rel) INTO other, own;
                    outcome := CASE WHEN other = 0 THEN format('customer-scoped, %s rows of iso_a customers', own) ELSE format('LEAK: %s rows of other customers', other) END;
                ELSIF r.rel = ANY (retail_mid.security_reference_relations()) THEN
                    outcome := 'reference data';
                ELSIF (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = r.rel) THEN
                    EXECUTE format('SELECT count(*) FROM %s', r.rel) INTO own;
                    outcome := CASE WHEN own = 0 THEN 'row-level security: no row visible' ELSE format('LEAK: %s rows visible', own) END;
                ELSE
                    outcome := 'LEAK: readable without brand scope';
                END IF;
            EXCEPTION WHEN OTHERS THEN
                outcome := 'error ' || SQLSTATE || ': ' || replace(SQLERRM, current_database(), '<database>');  -- the same under upgrade.t
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
GRANT EXECUTE ON FUNCTION public.iso_probe() TO iso_analyst, iso_bi;

SET ROLE iso_analyst;
SELECT * FROM public.iso_probe();
RESET ROLE;
SET ROLE iso_bi;
SELECT relation, outcome FROM public.iso_probe() WHERE outcome <> 'not readable';
RESET ROLE;

-- Functions. None runs with other rights than its caller's (no SET role or row_security), so whatever a function reads
-- is read under the caller's grants and row-level security; except the one vetted SECURITY DEFINER function, which
-- only (re)creates masked views, is executable by admins only (see security_brand) and is not STABLE (not probed below).
SELECT string_agg(p.oid::regprocedure::text, ', ') FILTER (WHERE p.prosecdef) AS security_definer,
       count(*) FILTER (WHERE array_to_string(p.proconfig, ',') ~* '(^|,)(role|session_authorization|row_security)=') AS sets_role_or_rls
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'retail_mid');
-- Views not running as their caller are owned by retail_mid_view_owner: no superuser, no BYPASSRLS, no members,
-- owner of no table, so the base tables' row-level security applies inside them.
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
 WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind = 'v'
   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false) ORDER BY 1;
SELECT rolsuper, rolbypassrls, rolcanlogin, (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid) AS members,
       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')) AS tables_owned
  FROM pg_roles r WHERE rolname = 'retail_mid_view_owner';
-- Every STABLE function of the extension (those that read tables), called as the analyst with brand iso_b
-- where it takes a brand and neutral values otherwise: no row, or no permission.
CREATE FUNCTION public.iso_call_probe() RETURNS TABLE (fn text, outcome text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record; args text; n bigint;
BEGIN
    FOR r IN SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname, p.proretset, p.proargtypes, p.proargnames, p.pronargs, p.pronargdefaults, p.prorettype
               FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
              WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'retail_mid') AND p.provolatile = 's' AND p.prokind = 'f'
                AND p.proname NOT IN ('quality_rule_plan')   -- takes a quality_rule row: a pure function of it
              ORDER BY 2 LOOP
        fn := r.sig;
        SELECT coalesce(string_agg(CASE WHEN r.proargnames[i + 1] = 'brand' THEN '''iso_b'''
                                        WHEN r.proargnames[i + 1] = 'expression' THEN '''iso_buyer'''
                                        WHEN r.proargnames[i + 1] = 'tag' THEN '''iso_buyer'''
                                        WHEN r.proargnames[i + 1] = 'map_name' THEN '(SELECT min(map_name) FROM retail_mid.rfm_segment_map_def)'
                                        WHEN r.proargtypes[i] = 'date'::regtype THEN '''2032-01-31''::date'
                                        WHEN r.proargtypes[i] = 'regclass'::regtype THEN '''retail_mid.dws_trade_customer_1d''::regclass'
                                        WHEN r.proargtypes[i] = 'boolean'::regtype THEN 'true'
                                        WHEN r.proargtypes[i] IN ('integer'::regtype, 'bigint'::regtype) THEN '30'
                                        WHEN r.proargtypes[i] IN ('numeric'::regtype, 'double precision'::regtype) THEN '1'
                                        ELSE 'NULL' END || '::' || format_type(r.proargtypes[i], NULL), ', ' ORDER BY i), '')
          INTO args FROM generate_series(0, r.pronargs - r.pronargdefaults - 1) i;   -- arguments with defaults left out
        BEGIN
            IF r.proretset THEN
                EXECUTE format('SELECT count(*) FROM %s(%s)', r.oid::regproc, args) INTO n;
                outcome := n || ' rows';
            ELSE
                EXECUTE format('SELECT count(*) FROM (SELECT %s(%s) AS v) s WHERE s.v IS NOT NULL', r.oid::regproc, args) INTO n;
                outcome := CASE WHEN n = 0 THEN 'NULL' ELSE 'a value' END;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            outcome := 'error ' || SQLSTATE || ': ' || replace(SQLERRM, current_database(), '<database>');  -- the same under upgrade.t
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;
GRANT EXECUTE ON FUNCTION public.iso_call_probe() TO iso_analyst;
SET ROLE iso_analyst;
SELECT * FROM public.iso_call_probe();
-- the values behind "a value": of iso_a only, or not brand data
SELECT retail_mid.brand_visible('iso_b') AS sees_b, retail_mid.brand_visible('iso_a') AS sees_a;
SELECT retail_mid.metric_window_start('7d', '2032-01-31') AS window_start;
RESET ROLE;

-- audiences: an analyst evaluates tag expressions on the bitmaps of its brands only (the group-wide rows and
-- the other brands' rows are hidden by row-level security), so iso_shared counts once and iso_b's customers not
-- at all; NOT is relative to the analyst's customers; saved audiences are read through a brand-scoped view
SET ROLE iso_analyst;
SELECT retail_mid.audience_count('iso_buyer') AS buyers, retail_mid.audience_count('NOT iso_buyer') AS not_buyers;
SELECT retail_mid.rb_to_array(retail_mid.audience('iso_buyer')) = (SELECT array_agg(customer_key ORDER BY customer_key) FROM public.iso_a_keys) AS audience_is_iso_a;
-- numeric brand tags: iso_shared's value is its orders at iso_a only (1), not at both brands
SELECT retail_mid.audience_count('iso_orders >= 2') AS two_orders, retail_mid.audience_count('iso_orders BETWEEN 1 AND 1.5') AS one_order,
       retail_mid.audience_count('iso_orders > 0 AND NOT iso_orders >= 2') AS one_order_too;
SELECT brand, tag_value, customers FROM retail_mid.tag_bitmap WHERE tag_name = 'iso_buyer';
SELECT count(*) AS tag_values, count(*) FILTER (WHERE customer_key NOT IN (SELECT customer_key FROM public.iso_a_keys)) AS outside_a
  FROM retail_mid.tag_value WHERE tag_name = 'iso_buyer';
RESET ROLE;
-- monetary_td (scope brand) as the analyst: exactly iso_a's net amount to date, against plain SQL over
-- dws_trade_customer_td WHERE brand = 'iso_a' computed by the superuser (iso_shared: 10 at iso_a, not 1010)
CREATE TABLE public.iso_a_monetary AS SELECT customer_key, net_amount FROM retail_mid.dws_trade_customer_td WHERE brand = 'iso_a';
GRANT SELECT ON public.iso_a_monetary TO iso_analyst;
SELECT count(*) AS iso_a_rows, sum(net_amount) AS iso_a_net_amount, count(*) FILTER (WHERE net_amount >= 500) AS iso_a_500 FROM public.iso_a_monetary;
SET ROLE iso_analyst;
SELECT (SELECT count(*) FROM retail_mid.tag_value WHERE tag_name = 'monetary_td' AND valid_to IS NULL) AS values_seen,
       (SELECT count(*) FROM (SELECT customer_key, numeric_value FROM retail_mid.tag_value WHERE tag_name = 'monetary_td' AND valid_to IS NULL
                              EXCEPT SELECT customer_key, round(net_amount, 2) FROM public.iso_a_monetary) x) AS not_iso_a,
       (SELECT count(*) FROM (SELECT customer_key, round(net_amount, 2) FROM public.iso_a_monetary
                              EXCEPT SELECT customer_key, numeric_value FROM retail_mid.tag_value WHERE tag_name = 'monetary_td' AND valid_to IS NULL) x) AS missing;
SELECT e, retail_mid.audience_count(e) AS audience_count, (SELECT count(*) FROM public.iso_a_monetary WHERE net_amount >= t) AS plain_sql
  FROM (VALUES ('monetary_td >= 500', 500), ('monetary_td >= 5', 5), ('monetary_td >= 10.01', 10.01)) v(e, t);
SELECT retail_mid.audience_count('monetary_td >= 500', 'iso_a') AS in_brand_a, sum(numeric_value) AS tag_value_brand_sum,
       retail_mid.tag_percentile('monetary_td', 1) AS max_seen, retail_mid.tag_percentile('monetary_td', 1, 'iso_a') AS max_of_a
  FROM retail_mid.tag_value_brand WHERE tag_name = 'monetary_td';
SELECT min(brand) AS brand, min(scope) AS scope, count(*) AS rows FROM retail_mid.tag_value_brand WHERE tag_name = 'monetary_td';
SELECT retail_mid.audience_count('monetary_td >= 500', 'iso_b');
-- a group tag not shared with brands: no value, no bitmap, no percentile, and a clear error instead of an empty audience
SELECT (SELECT count(*) FROM retail_mid.tag_value WHERE tag_name = 'iso_group_hidden') AS values_seen,
       (SELECT count(*) FROM retail_mid.tag_value_brand WHERE tag_name = 'iso_group_hidden') AS brand_view_rows,
       (SELECT count(*) FROM retail_mid.tag_bitmap WHERE tag_name = 'iso_group_hidden') AS bitmaps_seen;
SELECT retail_mid.audience_count('iso_group_hidden');
SELECT retail_mid.audience_count('iso_buyer AND NOT iso_group_hidden', 'iso_a');
-- a shared group tag: its group-wide values for iso_a's customers (iso_shared: 2 orders over both brands, by
-- the administrator's decision to share a group-wide tag), nobody else's
SELECT brand, count(*) AS values_seen, sum(numeric_value) AS orders, count(*) FILTER (WHERE customer_key NOT IN (SELECT customer_key FROM public.iso_a_keys)) AS outside_a
  FROM retail_mid.tag_value WHERE tag_name = 'iso_group_orders' AND valid_to IS NULL GROUP BY brand;
SELECT brand, scope, count(*) AS rows, sum(numeric_value) AS orders FROM retail_mid.tag_value_brand WHERE tag_name = 'iso_group_orders' GROUP BY 1, 2;
SELECT retail_mid.audience_count('iso_group_orders >= 2') AS two_orders_group, retail_mid.audience_count('iso_group_orders >= 1') AS any_orders_group,
       retail_mid.tag_percentile('iso_group_orders', 1) AS max_seen;
RESET ROLE;
-- withdrawing the sharing hides it at once (values and bitmaps)
UPDATE retail_mid.tag_definition SET shared_with_brands = false WHERE tag_name = 'iso_group_orders';
SELECT brand, count(*) AS bsi_rows FROM retail_mid.tag_bsi WHERE tag_name = 'iso_group_orders' GROUP BY 1 ORDER BY 1;
SET ROLE iso_analyst;
SELECT (SELECT count(*) FROM retail_mid.tag_value WHERE tag_name = 'iso_group_orders') AS values_seen,
       (SELECT count(*) FROM retail_mid.tag_bsi WHERE tag_name = 'iso_group_orders') AS bsi_seen;
SELECT retail_mid.tag_percentile('iso_group_orders', 1);
RESET ROLE;
UPDATE retail_mid.tag_definition SET shared_with_brands = true WHERE tag_name = 'iso_group_orders';
-- an administrator (not a superuser) gets the group-wide answers: the union over brands for brand tags
CREATE ROLE iso_admin IN ROLE retail_mid_admin;
SET ROLE iso_admin;
SELECT retail_mid.audience_count('monetary_td >= 500 AND iso_buyer') AS spent_500_some_brand,
       retail_mid.audience_count('monetary_td >= 500 AND iso_buyer', 'iso_a') AS in_iso_a, retail_mid.audience_count('monetary_td >= 500 AND iso_buyer', 'iso_b') AS in_iso_b,
       retail_mid.audience_count('iso_group_hidden') AS group_hidden;
RESET ROLE;
DROP ROLE iso_admin;
SET ROLE iso_analyst;
SELECT retail_mid.rb_cardinality(retail_mid.customer_universe()) AS universe;
SELECT retail_mid.audience_count('@iso_all');
SELECT retail_mid.save_audience('iso_mine', 'iso_buyer');   -- group-wide: admins only
SELECT retail_mid.save_audience('iso_mine', 'iso_buyer', 'iso_b');   -- not entitled
SELECT retail_mid.save_audience('iso_mine', 'iso_buyer', 'iso_a') AS version;
SELECT retail_mid.rb_to_array(snapshot) = (SELECT array_agg(customer_key ORDER BY customer_key) FROM public.iso_a_keys) AS is_iso_a_buyers,
       retail_mid.audience_count('@iso_mine') AS members FROM retail_mid.audience_package WHERE name = 'iso_mine';
SELECT audience_name, audience_brand, brand, count(*) AS members, count(*) FILTER (WHERE customer_key NOT IN (SELECT customer_key FROM public.iso_a_keys)) AS outside_a
  FROM retail_mid.audience_member_brand WHERE audience_name LIKE 'iso\_%' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- quality: iso_a's result of the per-brand rule only
SELECT brand, rule_name, rows_checked, observed FROM retail_mid.quality_result WHERE rule_name = 'iso_store_known';
SELECT brand, scope, count(*) AS tagged FROM retail_mid.tag_value_brand WHERE tag_name = 'iso_buyer' GROUP BY brand, scope;
SELECT brand, count(*) AS keys, count(DISTINCT person_key) AS persons FROM retail_mid.oneid_person_brand
 WHERE customer_key IN (SELECT customer_key FROM public.iso_a_keys) GROUP BY brand;
SELECT count(*) AS persons_outside_a FROM retail_mid.oneid_person_brand WHERE customer_key NOT IN (SELECT customer_key FROM public.iso_a_keys);
-- metric views and DWS: only iso_a, and sums over everything visible are iso_a's
SELECT brand, sum(iso_amount_30d) AS amount, max(iso_buyers_td) AS max_store_buyers FROM retail_mid.dws_metric_iso_store WHERE dt = '2032-01-31' GROUP BY brand;
SELECT sum(net_amount) AS all_visible_net_amount FROM retail_mid.dws_trade_store_td WHERE brand LIKE 'iso\_%';
SELECT * FROM retail_mid.dws_metric_iso_group;
SELECT count(*) FROM retail_mid.dws_trade_customer_nd_at('2032-01-31', 'iso_b');
-- personal data: masked for the analyst, and only iso_a's
SELECT brand, customer_id, name, phone, email, birth_date FROM retail_mid.ods_customer_masked WHERE brand LIKE 'iso\_%' ORDER BY 1, 2;
SELECT count(*) AS identifier_rows, count(*) FILTER (WHERE id_value ~ '^[0-9a-f]{32}$') AS hashed FROM retail_mid.customer_key_masked;
RESET ROLE;

-- clean up
DROP FUNCTION public.iso_probe(), public.iso_call_probe();
DROP TABLE public.iso_a_keys, public.iso_a_monetary;
DELETE FROM retail_mid.brand_entitlement WHERE brand LIKE 'iso\_%';
-- the shared group tag's brand rows go with the entitlements; the brand tags' rows stay (they are the brand's data)
SELECT tag_name, count(*) AS brand_rows_left FROM retail_mid.tag_bsi WHERE brand LIKE 'iso\_%' AND tag_name LIKE 'iso\_%' GROUP BY 1 ORDER BY 1;
DROP ROLE iso_analyst, iso_bi;
DELETE FROM retail_mid.metric_derived WHERE granularity LIKE 'iso\_%';
DELETE FROM retail_mid.metric_granularity WHERE granularity LIKE 'iso\_%';
DELETE FROM retail_mid.metric_atomic WHERE atomic LIKE 'iso\_%';
DROP TABLE retail_mid.dws_metric_iso_store, retail_mid.dws_metric_iso_store_1d, retail_mid.dws_metric_iso_group, retail_mid.dws_metric_iso_group_1d;
DELETE FROM retail_mid.oneid_person_map WHERE customer_key IN (SELECT customer_key FROM retail_mid.customer_brand WHERE brand LIKE 'iso\_%');
DELETE FROM retail_mid.audience_package WHERE name IN ('iso_all', 'iso_mine');
DELETE FROM retail_mid.quality_result WHERE rule_name = 'iso_store_known';
DELETE FROM retail_mid.quality_rule WHERE rule_name = 'iso_store_known';
DELETE FROM retail_mid.tag_definition WHERE tag_name IN ('iso_buyer', 'iso_orders', 'iso_group_orders', 'iso_group_hidden');
DELETE FROM retail_mid.ods_order_line WHERE brand LIKE 'iso\_%';
DELETE FROM retail_mid.ods_order WHERE brand LIKE 'iso\_%';
DELETE FROM retail_mid.ods_customer_identifier WHERE brand LIKE 'iso\_%';
DELETE FROM retail_mid.ods_customer WHERE brand LIKE 'iso\_%';
SET client_min_messages = warning;
-- (what refresh returns here counts the metric rows of other tests' definitions: not printed)
SELECT retail_mid.refresh('2032-01-01', '2032-01-31') >= 0 AS refreshed_after_cleanup;
SELECT count(*) AS iso_lines_left FROM retail_mid.dwd_trade_order_line_di WHERE brand LIKE 'iso\_%';
SELECT retail_mid.refresh_customer_universe() >= 0 AS universe_rebuilt;
RESET client_min_messages;
SELECT count(*) AS iso_customers_left FROM retail_mid.customer_brand WHERE brand LIKE 'iso\_%';
