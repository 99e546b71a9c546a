-- security_brand: what brand analysts may do beyond reading: save audiences of their brands and reference them
-- (@name, @brand/name), call aipl_signals, read per-brand quality results; and a non-superuser administrator
-- changing masking rules (pii_create_masked_view is the one SECURITY DEFINER function).
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;

-- fixture: two synthetic brands (member ids are issued per brand: gb_a's 40 members and gb_b's 60 are 100 customers with
-- their own keys; the persons behind member i of both brands share phone, e-mail and device, which OneID links), an anonymous device seen by
-- gb_a only (its key is in no brand's customers), a boolean tag over both brands
SELECT retail_mid.generate_synthetic(seed => 5, customers => 40, days => 30, orders_per_day => 6, stores => 2, skus => 20,
                                     start_date => '2031-03-01', brand => 'gb_a') > 0 AS generated_a;
SELECT retail_mid.generate_synthetic(seed => 6, customers => 60, days => 30, orders_per_day => 6, stores => 2, skus => 20,
                                     start_date => '2031-03-01', brand => 'gb_b') > 0 AS generated_b;
INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, event_count)
VALUES ('gb_a', 'device_id', 'gb-dev-1', '2031-03-20 10:00', 'view', 2), ('gb_a', 'device_id', 'gb-dev-1', '2031-03-21 10:00', 'exposure', 1),
       ('gb_b', 'device_id', 'gb-dev-2', '2031-03-20 10:00', 'view', 1);
SELECT retail_mid.refresh('2031-03-01', '2031-03-30') > 0 AS refreshed;
SELECT retail_mid.assign_customer_keys(ARRAY['device_id', 'device_id'], ARRAY['gb-dev-1', 'gb-dev-2']) AS device_keys;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, scope, rule_sql)
VALUES ('gb_buyer', '其他', '其他', 'boolean', 'brand', 'SELECT DISTINCT customer_key, true, brand FROM retail_mid.dws_trade_customer_td WHERE brand IN (''gb_a'', ''gb_b'')');
SELECT retail_mid.evaluate_tags(ARRAY['gb_buyer']) > 0 AS tagged;
RESET client_min_messages;
-- (member keys only: what earlier tests leave in the dictionary does not count)
SELECT cb.brand, count(*) AS customers FROM retail_mid.customer_brand cb JOIN retail_mid.customer_key k USING (customer_key)
 WHERE cb.brand LIKE 'gb\_%' AND k.id_type = 'member_id' GROUP BY cb.brand ORDER BY cb.brand;
SELECT count(*) AS customers_of_both FROM retail_mid.customer_brand a JOIN retail_mid.customer_brand b USING (customer_key)
  JOIN retail_mid.customer_key k USING (customer_key)
 WHERE a.brand = 'gb_a' AND b.brand = 'gb_b' AND k.id_type = 'member_id';

-- roles: alice analyses gb_a; carol both brands (through a group role); bea is BI of gb_a; dave an administrator
-- who is not a superuser
CREATE ROLE gb_alice LOGIN IN ROLE retail_mid_analyst;
CREATE ROLE gb_ab NOLOGIN;
CREATE ROLE gb_carol LOGIN IN ROLE retail_mid_analyst, gb_ab;
CREATE ROLE gb_bea LOGIN IN ROLE retail_mid_bi;
CREATE ROLE gb_dave LOGIN IN ROLE retail_mid_admin;
INSERT INTO retail_mid.brand_entitlement VALUES ('gb_alice', 'gb_a'), ('gb_ab', 'gb_a'), ('gb_ab', 'gb_b'), ('gb_bea', 'gb_a');
-- reference answers computed by the superuser with plain SQL, readable by the test users
CREATE TABLE public.gb_ref AS
SELECT cb.brand, array_agg(DISTINCT t.customer_key ORDER BY t.customer_key) AS buyers
  FROM retail_mid.dws_trade_customer_td t JOIN retail_mid.customer_brand cb ON cb.customer_key = t.customer_key
 WHERE t.brand IN ('gb_a', 'gb_b') AND cb.brand = t.brand GROUP BY cb.brand;  -- gb_buyer is a brand tag: a brand's buyers
GRANT SELECT ON public.gb_ref TO gb_alice, gb_carol, gb_bea, gb_dave;
SELECT brand, cardinality(buyers) AS buyers FROM public.gb_ref ORDER BY brand;

-- ===================================================================== 1. audiences saved per brand
-- the grants: analysts INSERT the columns save_audience writes, nothing else
SELECT privilege_type, string_agg(column_name, ', ' ORDER BY column_name) AS columns
  FROM information_schema.column_privileges
 WHERE grantee = 'retail_mid_analyst' AND table_schema = 'retail_mid' AND table_name = 'audience_package' AND privilege_type <> 'SELECT'
 GROUP BY privilege_type;
SELECT has_table_privilege('retail_mid_analyst', 'retail_mid.audience_package', 'UPDATE') AS can_update,
       has_table_privilege('retail_mid_analyst', 'retail_mid.audience_package', 'DELETE') AS can_delete,
       has_column_privilege('retail_mid_analyst', 'retail_mid.audience_package', 'created_by', 'INSERT') AS can_set_author;
-- a group-wide audience (the two-argument form: brand '*', admins only)
SELECT retail_mid.save_audience('gb_all', 'gb_buyer') AS version;
SET ROLE gb_alice;
-- alice saves for gb_a: her evaluation sees gb_a's customers only, and the snapshot holds gb_a's buyers
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', 'gb_a') AS version;
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', 'gb_a') AS version;   -- versions count per name and brand
SELECT name, brand, version, customers, created_by, retail_mid.rb_to_array(snapshot) = (SELECT buyers FROM public.gb_ref WHERE brand = 'gb_a') AS is_gb_a_buyers
  FROM retail_mid.audience_package ORDER BY name, brand, version;
SELECT retail_mid.audience_count('@gb_vip') AS vip, retail_mid.audience_count('@gb_a/gb_vip') AS vip_of_a,
       retail_mid.audience_count('@"gb_a"/"gb_vip" AND NOT gb_buyer') AS vip_not_buyer;
-- not entitled to gb_b, not an admin for '*': 42501
\set VERBOSITY sqlstate
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', 'gb_b');
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', '*');
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer');
\set VERBOSITY default
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', 'gb_b');
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', ' ');
-- the group-wide audience and other brands' audiences do not exist for her
SELECT retail_mid.audience_count('@gb_all');
SELECT retail_mid.audience_count('@gb_b/gb_vip');
-- a hand-written INSERT cannot smuggle customers of another brand into a gb_a audience, nor set the author
INSERT INTO retail_mid.audience_package (name, brand, version, expression, canonical_expression, snapshot, customers)
SELECT 'gb_forged', 'gb_a', 1, 'x', 'x', retail_mid.rb_build(buyers), cardinality(buyers) FROM public.gb_ref WHERE brand = 'gb_b';
INSERT INTO retail_mid.audience_package (name, brand, version, expression, canonical_expression, snapshot, customers)
VALUES ('gb_forged', 'gb_a', 1, 'x', 'x', '{}', 5);   -- a count that is not the snapshot's
INSERT INTO retail_mid.audience_package (name, brand, version, expression, canonical_expression, snapshot, customers)
VALUES ('gb_forged', 'gb_b', 1, 'x', 'x', '{}', 0);
INSERT INTO retail_mid.audience_package (name, brand, version, expression, canonical_expression, snapshot, customers, created_by)
VALUES ('gb_forged', 'gb_a', 1, 'x', 'x', '{}', 0, 'someone_else');
UPDATE retail_mid.audience_package SET customers = 0;
DELETE FROM retail_mid.audience_package;
-- the brand-scoped view: her audience, and the group-wide one cut to gb_a's customers
SELECT audience_name, audience_brand, brand, count(*) AS members,
       count(*) FILTER (WHERE customer_key <> ALL (coalesce((SELECT buyers FROM public.gb_ref WHERE brand = 'gb_a'), '{}'))) AS outside_gb_a_buyers
  FROM retail_mid.audience_member_brand WHERE audience_name LIKE 'gb\_%' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT audience_name, brand, count(*) AS members FROM retail_mid.audience_member WHERE audience_name LIKE 'gb\_%' GROUP BY 1, 2;
RESET ROLE;

-- carol sees both brands: the same name in two brands is ambiguous unless the brand is named
SET ROLE gb_carol;
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer', 'gb_b') AS version;
SELECT retail_mid.rb_to_array(snapshot) = (SELECT buyers FROM public.gb_ref WHERE brand = 'gb_b') AS is_gb_b_buyers
  FROM retail_mid.audience_package WHERE name = 'gb_vip' AND brand = 'gb_b';
SELECT retail_mid.audience_count('@gb_vip');
SELECT retail_mid.audience_count('@gb_a/gb_vip') AS vip_a, retail_mid.audience_count('@gb_b/gb_vip') AS vip_b,
       retail_mid.audience_count('@gb_a/gb_vip OR @gb_b/gb_vip') AS vip_either,
       (SELECT count(*) FROM (SELECT unnest(buyers) FROM public.gb_ref UNION SELECT NULL WHERE false) x) AS reference_either;
SELECT audience_brand, brand, count(*) AS members FROM retail_mid.audience_member_brand WHERE audience_name = 'gb_vip' GROUP BY 1, 2 ORDER BY 1, 2;
RESET ROLE;

-- the administrator sees '*' too: "@\"*\"/name" names the group-wide one
SELECT retail_mid.save_audience('gb_vip', 'gb_buyer') AS version;
SELECT retail_mid.audience_count('@gb_vip');
SELECT retail_mid.audience_count('@"*"/gb_vip') AS group_wide,
       (SELECT count(*) FROM (SELECT unnest(buyers) FROM public.gb_ref UNION SELECT NULL WHERE false) x) AS reference;
SELECT retail_mid.audience_parse('@gb_a/gb_vip OR @"*"/"x y" OR @plain') AS canonical;
SELECT retail_mid.audience_parse('@gb_a/');
SELECT retail_mid.audience_parse('@/gb_vip');
SELECT retail_mid.audience_parse('@gb_a/gb_vip/x');

-- withdrawing alice's entitlement hides gb_a's audiences from her at once (row-level security)
DELETE FROM retail_mid.brand_entitlement WHERE grantee = 'gb_alice'::regrole;
SET ROLE gb_alice;
SELECT count(*) AS packages_seen FROM retail_mid.audience_package;
SELECT count(*) AS members_seen FROM retail_mid.audience_member_brand;
SELECT retail_mid.audience_count('@gb_vip');
RESET ROLE;
INSERT INTO retail_mid.brand_entitlement VALUES ('gb_alice', 'gb_a');

-- ===================================================================== 2. aipl_signals for analysts
-- the administrator's answer, and the same signals computed from the ODS tables with plain SQL (the definition
-- before the keyed views)
CREATE TABLE public.gb_sig AS SELECT * FROM retail_mid.aipl_signals('gb_a', '2031-03-10', '2031-03-30');
GRANT SELECT ON public.gb_sig TO gb_alice;
WITH r AS (SELECT * FROM retail_mid.aipl_rule WHERE brand = '*'),
ref AS (
    SELECT k.customer_key, r.stage, r.source, e.event_time::date AS dt, sum(e.event_count) AS n, coalesce(sum(e.amount), 0) AS amount
      FROM r JOIN retail_mid.ods_behavior_event e ON r.source = 'event' AND e.event_type = ANY (r.signal_types)
      JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand) AND k.id_value = e.id_value
     WHERE e.brand = 'gb_a' AND e.event_time >= date '2031-03-10' - r.lookback_days AND e.event_time < date '2031-03-31'
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT k.customer_key, r.stage, r.source, t.touched_at::date, count(*), 0
      FROM r JOIN retail_mid.ods_campaign_touch t ON r.source = 'touch' AND t.touch_type = ANY (r.signal_types)
      JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand) AND k.id_value = t.id_value
     WHERE t.brand = 'gb_a' AND t.touched_at >= date '2031-03-10' - r.lookback_days AND t.touched_at < date '2031-03-31'
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT c.customer_key, r.stage, r.source, c.dt, sum(c.orders), sum(c.net_amount)
      FROM r JOIN retail_mid.dws_trade_customer_1d c ON r.source = 'order'
     WHERE c.brand = 'gb_a' AND c.orders > 0 AND c.dt > date '2031-03-10' - r.lookback_days AND c.dt <= '2031-03-30'
     GROUP BY 1, 2, 3, 4)
SELECT (SELECT count(*) FROM public.gb_sig) AS admin_rows,
       (SELECT count(*) FROM (SELECT * FROM public.gb_sig EXCEPT ALL SELECT * FROM ref) x) AS not_in_reference,
       (SELECT count(*) FROM (SELECT * FROM ref EXCEPT ALL SELECT * FROM public.gb_sig) x) AS missing;
SELECT source, count(*) AS rows, sum(n) AS signals FROM public.gb_sig GROUP BY source ORDER BY source;
SET ROLE gb_alice;
-- alice reads no identifier, yet gets exactly the administrator's signals of gb_a (the device too), and none of gb_b
SELECT count(*) FROM retail_mid.ods_behavior_event;
SELECT count(*) AS alice_rows,
       (SELECT count(*) FROM (SELECT * FROM retail_mid.aipl_signals('gb_a', '2031-03-10', '2031-03-30') EXCEPT ALL SELECT * FROM public.gb_sig) x) AS not_in_admin,
       (SELECT count(*) FROM (SELECT * FROM public.gb_sig EXCEPT ALL SELECT * FROM retail_mid.aipl_signals('gb_a', '2031-03-10', '2031-03-30')) x) AS missing,
       (SELECT count(*) FROM retail_mid.aipl_signals('gb_b', '2031-03-10', '2031-03-30')) AS rows_of_gb_b
  FROM retail_mid.aipl_signals('gb_a', '2031-03-10', '2031-03-30');
SELECT count(*) AS device_signals FROM retail_mid.aipl_signals('gb_a', '2031-03-10', '2031-03-30') s
 WHERE s.customer_key = (SELECT customer_key FROM retail_mid.behavior_event_keyed WHERE event_type = 'view' AND channel IS NULL AND event_count = 2);
SELECT brand, count(*) AS events FROM retail_mid.behavior_event_keyed WHERE brand LIKE 'gb\_%' GROUP BY brand;
SELECT brand, count(*) AS touches FROM retail_mid.campaign_touch_keyed WHERE brand LIKE 'gb\_%' GROUP BY brand;
SELECT column_name FROM information_schema.columns WHERE table_schema = 'retail_mid' AND table_name = 'behavior_event_keyed' AND column_name LIKE 'id%';
RESET ROLE;

-- ===================================================================== 4. masking rules changed by a non-superuser administrator
-- pii_create_masked_view is the one SECURITY DEFINER function: pinned search_path, executable by admins only
SELECT p.oid::regprocedure AS function, pg_get_userbyid(p.proowner) = current_user AS owned_by_extension_owner, p.proconfig,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_may_execute,
       has_function_privilege('retail_mid_admin', p.oid, 'EXECUTE') AS admin, has_function_privilege('retail_mid_analyst', p.oid, 'EXECUTE') AS analyst,
       has_function_privilege('retail_mid_bi', p.oid, 'EXECUTE') AS bi
  FROM pg_proc p WHERE p.pronamespace = 'retail_mid'::regnamespace AND p.prosecdef ORDER BY p.oid::regprocedure::text;
CREATE TABLE public.gb_lines (brand text, order_id text, line_no int, sku text, qty int, price numeric, phone text, ts timestamptz);
INSERT INTO public.gb_lines
SELECT CASE WHEN i % 3 = 0 THEN 'gb_b' ELSE 'gb_a' END, 'o' || (i / 2), i % 2, CASE WHEN i % 7 = 0 THEN NULL ELSE 'S' || i END,
       CASE WHEN i % 11 = 0 THEN -1 ELSE 1 + i % 5 END, 10 + i % 13, '1380000' || lpad(i::text, 4, '0'),
       timestamptz '2031-03-30 00:00+00' - make_interval(hours => i + CASE WHEN i % 3 = 0 THEN 20 ELSE 0 END)
  FROM generate_series(1, 300) i;
INSERT INTO public.gb_lines SELECT * FROM public.gb_lines WHERE ctid IN (SELECT ctid FROM public.gb_lines ORDER BY order_id, line_no LIMIT 300) AND line_no = 0 AND order_id LIKE '%5';
INSERT INTO public.gb_lines SELECT CASE WHEN brand = 'gb_a' THEN 'gb_b' ELSE 'gb_a' END, order_id, line_no, sku, qty, price, phone, ts
  FROM public.gb_lines WHERE order_id IN ('o40', 'o41', 'o42');   -- the same keys in the other brand
SELECT retail_mid.secure_brand_table('public.gb_lines');
CREATE TABLE public.gb_plain (x text);
GRANT SELECT ON public.gb_lines TO retail_mid_analyst, retail_mid_bi;
GRANT ALL ON public.gb_lines TO retail_mid_admin;
CREATE FUNCTION public.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql AS $$SELECT 'SELECT 1'::text$$;
CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE sql AS $$SELECT NULL::regclass$$;
SET ROLE gb_dave;
SELECT rolsuper FROM pg_roles WHERE rolname = current_user;
-- planted objects on a search path that puts the caller's schemas first do not reach the definer function
SET search_path = pg_temp, public, pg_catalog;
CREATE FUNCTION pg_temp.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql AS $$SELECT 'SELECT 1'::text$$;
CREATE FUNCTION pg_temp.to_regclass(text) RETURNS regclass LANGUAGE sql AS $$SELECT NULL::regclass$$;
CREATE TEMP TABLE pg_attribute (attrelid oid, attname name, attnum int, attisdropped boolean, atttypid oid, atttypmod int);
INSERT INTO retail_mid.pii_mask_rule VALUES ('retail_mid.ods_order', 'customer_id', 'hash');
RESET search_path;
DROP FUNCTION pg_temp.format(text, text[]), pg_temp.to_regclass(text);
DROP TABLE pg_temp.pg_attribute;
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, c.reloptions,
       substring(pg_get_viewdef(c.oid) FROM 'retail_mid\.pii_mask\([^)]*\) AS customer_id') AS customer_id_column
  FROM pg_class c WHERE c.oid = 'retail_mid.ods_order_masked'::regclass;
SELECT has_table_privilege('retail_mid_analyst', 'retail_mid.ods_order', 'SELECT') AS analyst_reads_table,
       has_table_privilege('retail_mid_analyst', 'retail_mid.ods_order_masked', 'SELECT') AS analyst_reads_masked;
-- a table that is not the extension's is refused even under brand isolation (issue 19: security_pii_attack)
INSERT INTO retail_mid.pii_mask_rule VALUES ('public.gb_lines', 'phone', 'partial');
-- refused: not a table of the extension or under brand isolation; no rules; NULL
SELECT retail_mid.pii_create_masked_view('public.gb_plain');
SELECT retail_mid.pii_create_masked_view('retail_mid.ods_site');
SELECT retail_mid.pii_create_masked_view(NULL);
RESET ROLE;
CREATE TABLE public.gb_other (brand text, x text);
CREATE TABLE public.gb_other_masked (y int);
SELECT retail_mid.secure_brand_table('public.gb_other');
GRANT ALL ON public.gb_other TO retail_mid_admin;
SET ROLE gb_dave;
INSERT INTO retail_mid.pii_mask_rule VALUES ('public.gb_other', 'x', 'redact');
RESET ROLE;
-- analysts may not call it
SET ROLE gb_alice;
SELECT retail_mid.pii_create_masked_view('retail_mid.ods_order');
SELECT brand, order_id, customer_id ~ '^[0-9a-f]{32}$' AS hashed FROM retail_mid.ods_order_masked WHERE brand LIKE 'gb\_%' ORDER BY order_id LIMIT 2;
SELECT count(*) FROM retail_mid.ods_order;
RESET ROLE;

-- ===================================================================== 3. per-brand quality results
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters, warn_threshold, fail_threshold, by_brand) VALUES
 ('gb_sku_not_null', 'public.gb_lines', 'sku', 'not_null', '{}', 0.1, 0.2, true),
 ('gb_qty_range', 'public.gb_lines', 'qty', 'range', '{"min": 1}', 0.05, 0.1, true),
 ('gb_key_unique', 'public.gb_lines', NULL, 'unique_key', '{"columns": ["order_id", "line_no"]}', NULL, NULL, true),
 ('gb_no_duplicates', 'public.gb_lines', NULL, 'duplicate_rows', '{}', NULL, NULL, true),
 ('gb_fresh', 'public.gb_lines', 'ts', 'freshness', '{}', NULL, NULL, true),
 ('gb_rows_stable', 'public.gb_lines', NULL, 'stability', '{"metric": "row_count"}', NULL, NULL, true);
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES
 ('gb_phone_format', 'public.gb_lines', 'phone', 'regex', '{"pattern": "^1[0-9]{10}$"}');
-- refused: per-brand on a table without brand, and on tables_agree
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, by_brand) VALUES ('gb_bad', 'public.gb_plain', 'x', 'not_null', true);
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters, by_brand)
VALUES ('gb_bad', 'public.gb_lines', 'tables_agree', '{"expression": "count(*)", "other_table": "public.gb_lines", "other_expression": "count(*)"}', true);
SELECT retail_mid.quality_evaluate('public.gb_lines', '2031-03-30 12:00+00') > 0 AS evaluated;
-- every result against plain SQL: the whole table, then GROUP BY brand
CREATE TEMP TABLE gb_quality_ref AS
WITH t AS (SELECT '*' AS grp, l.* FROM public.gb_lines l UNION ALL SELECT l.brand, l.* FROM public.gb_lines l),
keys AS (SELECT grp, order_id, line_no, count(*) AS c FROM t GROUP BY 1, 2, 3),
dups AS (SELECT grp, count(*) AS c FROM t GROUP BY grp, brand, order_id, line_no, sku, qty, price, phone, ts)
SELECT grp AS brand, 'gb_sku_not_null' AS rule_name, count(*) FILTER (WHERE sku IS NULL)::float8 AS observed, count(*) AS n FROM t GROUP BY grp
UNION ALL SELECT grp, 'gb_qty_range', count(*) FILTER (WHERE qty < 1), count(*) FROM t GROUP BY grp
UNION ALL SELECT grp, 'gb_key_unique', (SELECT sum(c - 1) FROM keys k WHERE k.grp = t.grp), count(*) FROM t GROUP BY grp
UNION ALL SELECT grp, 'gb_no_duplicates', (SELECT sum(c - 1) FROM dups d WHERE d.grp = t.grp), count(*) FROM t GROUP BY grp
UNION ALL SELECT grp, 'gb_fresh', extract(epoch FROM timestamptz '2031-03-30 12:00+00' - max(ts)) / 3600.0, count(*) FROM t GROUP BY grp
UNION ALL SELECT grp, 'gb_rows_stable', count(*), count(*) FROM t GROUP BY grp
UNION ALL SELECT grp, 'gb_phone_format', count(*) FILTER (WHERE phone !~ '^1[0-9]{10}$'), count(*) FROM t WHERE grp = '*' GROUP BY grp;
SELECT q.rule_name, q.brand, q.rows_checked, q.observed, q.outcome, q.observed = r.observed AND q.rows_checked = r.n AS matches_plain_sql
  FROM retail_mid.quality_result q FULL JOIN gb_quality_ref r ON r.brand = q.brand AND r.rule_name = q.rule_name
 WHERE q.table_name = 'public.gb_lines' OR q.table_name IS NULL ORDER BY 1, 2;
-- a brand's sample leaves out masked columns (phone has no rule: user tables take none since issue 19); the whole table's (admins only) keeps it
SELECT brand, jsonb_array_length(sample) AS sampled, sample->0 ? 'phone' AS has_phone, sample->0 ? 'sku' AS has_sku
  FROM retail_mid.quality_result WHERE rule_name = 'gb_sku_not_null' ORDER BY brand;
SELECT brand, sample FROM retail_mid.quality_result WHERE rule_name = 'gb_key_unique' ORDER BY brand;
-- the dashboards carry the brand
SELECT brand, grain, subject, score, rules, passed, warned, failed, warming_up FROM retail_mid.quality_score
 WHERE grain IN ('table', 'overall') AND (subject = 'public.gb_lines' OR grain = 'overall') AND day = '2031-03-30' ORDER BY brand, grain;
-- the next day gb_b has more NULL skus, gb_a not; the data is a day older for everyone
UPDATE public.gb_lines SET sku = NULL WHERE brand = 'gb_b' AND qty = 2;
SELECT retail_mid.quality_evaluate('public.gb_lines', '2031-03-31 12:00+00') > 0 AS evaluated_next_day;
SELECT brand, rule_name, outcome_before, outcome_now, compared_before, compared_now, change FROM retail_mid.quality_worse_since_yesterday
 WHERE table_name = 'public.gb_lines' ORDER BY brand, rule_name;
-- alice (gb_a) and bea (BI of gb_a) read gb_a's results only; the whole table's rows are for admins
SET ROLE gb_alice;
SELECT brand, count(*) AS results FROM retail_mid.quality_result GROUP BY brand;
SELECT brand, rule_name, observed, outcome FROM retail_mid.quality_result_latest WHERE table_name = 'public.gb_lines' ORDER BY rule_name;
SELECT brand, grain, score FROM retail_mid.quality_score WHERE grain = 'overall' ORDER BY day;
RESET ROLE;
SET ROLE gb_bea;
SELECT brand, count(*) AS results FROM retail_mid.quality_result_daily GROUP BY brand;
SELECT brand, rule_name FROM retail_mid.quality_worse_since_yesterday;
RESET ROLE;
SET ROLE gb_carol;
SELECT brand, count(*) AS results FROM retail_mid.quality_result_latest GROUP BY brand ORDER BY brand;
RESET ROLE;

-- clean up
DROP FUNCTION public.format(text, text[]), public.to_regclass(text);
DELETE FROM retail_mid.quality_result WHERE table_name = 'public.gb_lines';
DELETE FROM retail_mid.quality_rule WHERE table_name = 'public.gb_lines'::regclass;
SET ROLE gb_dave;
DELETE FROM retail_mid.pii_mask_rule WHERE table_name = 'retail_mid.ods_order'::regclass;
RESET ROLE;
DROP VIEW retail_mid.ods_order_masked;
SELECT retail_mid.security_grant('retail_mid.ods_order');
DROP TABLE public.gb_lines, public.gb_plain, public.gb_other, public.gb_other_masked, public.gb_sig, public.gb_ref;
DELETE FROM retail_mid.audience_package WHERE name LIKE 'gb\_%';
DELETE FROM retail_mid.brand_entitlement WHERE brand LIKE 'gb\_%';
DROP ROLE gb_alice, gb_carol, gb_bea, gb_dave, gb_ab;
DELETE FROM retail_mid.tag_definition WHERE tag_name = 'gb_buyer';
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ods_order_line', 'ods_order', 'ods_behavior_event', 'ods_campaign_touch', 'ods_campaign', 'ods_promotion',
                             'ods_inventory_snapshot', 'ods_inbound_shipment', 'ods_customer_identifier', 'ods_customer', 'ods_product',
                             'ods_site', 'ods_demand_zone'] LOOP
        EXECUTE format('DELETE FROM retail_mid.%I WHERE brand IN (''gb_a'', ''gb_b'')', t);
    END LOOP;
END;
$$;
SET client_min_messages = warning;
SELECT retail_mid.refresh('2031-03-01', '2031-03-30') >= 0 AS refreshed;
RESET client_min_messages;
SELECT count(*) AS gb_customers_left FROM retail_mid.customer_brand WHERE brand LIKE 'gb\_%';
