-- security: shipped roles, least-privilege grants, brand isolation, masked personal data, search_path attacks
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'retail\_mid\_%' ORDER BY 1;
-- nothing granted to PUBLIC on the extension's tables and views; one vetted SECURITY DEFINER function (it hands masked
-- views to retail_mid_view_owner) with a pinned search_path, not executable by PUBLIC; every plpgsql function pins search_path
SELECT count(*) AS public_table_grants FROM information_schema.role_table_grants WHERE grantee = 'PUBLIC' AND table_schema = 'retail_mid';
SELECT p.oid::regprocedure AS security_definer, p.proconfig,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0) AS public_may_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'retail_mid' AND p.prosecdef ORDER BY p.oid::regprocedure::text;
-- plpgsql routines without a pinned search_path (run_logged is a procedure that commits, which forbids SET;
-- forecast_reconcile runs the caller's own queries, as the caller, with the caller's search_path, and qualifies all else)
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = 'retail_mid' AND l.lanname = 'plpgsql' AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false) ORDER BY 1;
-- no schema on those paths is writable by everybody
SELECT has_schema_privilege('public', 'public', 'CREATE') AS public_schema_writable_by_all;
SELECT count(*) AS brand_tables, count(*) FILTER (WHERE c.relrowsecurity) AS with_rls
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand');
SELECT table_name::text, column_name, method FROM retail_mid.pii_mask_rule ORDER BY 1, 2;

-- fixture: two brands in ODS, a user table under brand isolation, users entitled to A, B, or both through a group
INSERT INTO retail_mid.ods_customer (brand, customer_id, name, phone, email, birth_date) VALUES
 ('sec_a', 'c1', 'Zhang Wei', '13812345678', 'wei@example.cn', '1990-05-17'),
 ('sec_a', 'c2', 'Li Na', '13900001111', 'na@example.cn', '1985-11-02'),
 ('sec_b', 'c1', 'Wang Fang', '13722223333', 'fang@example.cn', '2001-01-30');
INSERT INTO retail_mid.ods_order (brand, order_id, customer_id, order_time) VALUES
 ('sec_a', 'o1', 'c1', '2026-01-01 10:00'), ('sec_a', 'o2', 'c2', '2026-01-02 10:00'), ('sec_b', 'o3', 'c1', '2026-01-03 10:00');
CREATE TABLE public.sec_sales (brand text, amount numeric);
INSERT INTO public.sec_sales VALUES ('sec_a', 10), ('sec_a', 20), ('sec_b', 1000);
SELECT retail_mid.secure_brand_table('public.sec_sales');
CREATE VIEW public.sec_sales_by_brand WITH (security_invoker = true) AS SELECT brand, sum(amount) AS amount FROM public.sec_sales GROUP BY brand;
CREATE ROLE sec_alice LOGIN IN ROLE retail_mid_analyst;
CREATE ROLE sec_bob LOGIN IN ROLE retail_mid_analyst;
CREATE ROLE sec_both NOLOGIN;
CREATE ROLE sec_carol LOGIN IN ROLE retail_mid_bi, sec_both;
GRANT SELECT ON public.sec_sales, public.sec_sales_by_brand TO retail_mid_analyst, retail_mid_bi;
INSERT INTO retail_mid.brand_entitlement VALUES ('sec_alice', 'sec_a'), ('sec_bob', 'sec_b'), ('sec_both', 'sec_a'), ('sec_both', 'sec_b');

-- analyst of brand A: reads, counts and aggregates nothing of brand B
SET ROLE sec_alice;
SELECT brand, count(*) FROM retail_mid.ods_order WHERE brand LIKE 'sec\_%' GROUP BY brand ORDER BY brand;
SELECT count(*) AS orders_of_b FROM retail_mid.ods_order WHERE brand = 'sec_b';
SELECT brand, amount FROM public.sec_sales_by_brand ORDER BY brand;
SELECT sum(amount) AS total FROM public.sec_sales;
SELECT brand, customer_id, name, phone, email, birth_date FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
SELECT count(*) FROM retail_mid.ods_customer;
INSERT INTO retail_mid.ods_order (brand, order_id, order_time) VALUES ('sec_b', 'x', now());
INSERT INTO retail_mid.brand_entitlement VALUES ('sec_alice', 'sec_b');
SELECT count(*) FROM retail_mid.quality_result;   -- whole-table results ('*') count rows of every brand: admins only
RESET ROLE;

-- BI user of the group sharing A and B: both brands, masked, no ODS tables
SET ROLE sec_carol;
SELECT brand, customer_id, name, phone, email FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
SELECT brand, amount FROM public.sec_sales_by_brand ORDER BY brand;
SELECT count(*) FROM retail_mid.ods_order;
SELECT count(*) FROM retail_mid.quality_score;
RESET ROLE;

-- a member of retail_mid_pii_reader sees personal data, still only of its brand
GRANT retail_mid_pii_reader TO sec_bob;
SET ROLE sec_bob;
SELECT brand, customer_id, name, phone, email, birth_date FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
SELECT brand, name FROM retail_mid.ods_customer WHERE brand LIKE 'sec\_%' ORDER BY brand;
RESET ROLE;

-- an administrator sees every brand unmasked
CREATE ROLE sec_dave LOGIN IN ROLE retail_mid_admin;
SET ROLE sec_dave;
SELECT brand, customer_id, name, phone, email, birth_date FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
RESET ROLE;

-- the masked views apply the base table's row-level security for the caller (they are owned by
-- retail_mid_view_owner, which neither owns the table nor bypasses RLS): a restrictive policy added to the
-- table shows through the view at once, for every role but the superuser
CREATE POLICY sec_hide_c2 ON retail_mid.ods_customer AS RESTRICTIVE USING (customer_id <> 'c2');
SET ROLE sec_alice;
SELECT brand, customer_id, name FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
RESET ROLE;
SET ROLE sec_dave;
SELECT brand, customer_id, name FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
RESET ROLE;
DROP POLICY sec_hide_c2 ON retail_mid.ods_customer;

-- masking rules are data: a rule on a DWD column creates its masked view at once and withdraws direct reads of
-- the table from analysts and BI; each role sees what it may
DO $$ BEGIN PERFORM retail_mid.ensure_partitions('retail_mid.dwd_trade_order_line_di', '2026-01-01', '2026-01-01'); END $$;
INSERT INTO retail_mid.dwd_trade_order_line_di (dt, brand, order_id, line_no, order_time, customer_key, channel, sku_id, quantity, unit_price, discount, amount, line_type)
VALUES ('2026-01-01', 'sec_a', 'o1', 1, '2026-01-01 10:00', 42, 'store', 'k', 1, 10, 0, 10, 'sale'),
       ('2026-01-01', 'sec_b', 'o3', 1, '2026-01-01 10:00', 43, 'store', 'k', 1, 10, 0, 10, 'sale');
INSERT INTO retail_mid.pii_mask_rule VALUES ('retail_mid.dwd_trade_order_line_di', 'customer_key', 'hash');
SELECT has_table_privilege('retail_mid_analyst', 'retail_mid.dwd_trade_order_line_di', 'SELECT') AS analyst_reads_table,
       has_table_privilege('retail_mid_analyst', 'retail_mid.dwd_trade_order_line_di_masked', 'SELECT') AS analyst_reads_masked,
       has_table_privilege('retail_mid_pii_reader', 'retail_mid.dwd_trade_order_line_di', 'SELECT') AS pii_reader_reads_table;
SET ROLE sec_alice;
SELECT brand, order_id, customer_key, amount FROM retail_mid.dwd_trade_order_line_di_masked WHERE brand LIKE 'sec\_%' ORDER BY brand;
SELECT count(*) FROM retail_mid.dwd_trade_order_line_di;
RESET ROLE;
SET ROLE sec_carol;
SELECT brand, order_id, customer_key, amount FROM retail_mid.dwd_trade_order_line_di_masked WHERE brand LIKE 'sec\_%' ORDER BY brand;
RESET ROLE;
SET ROLE sec_bob;   -- pii_reader of brand B
SELECT brand, order_id, customer_key, amount FROM retail_mid.dwd_trade_order_line_di_masked WHERE brand LIKE 'sec\_%' ORDER BY brand;
RESET ROLE;
SET ROLE sec_dave;
SELECT brand, order_id, customer_key, amount FROM retail_mid.dwd_trade_order_line_di_masked WHERE brand LIKE 'sec\_%' ORDER BY brand;
RESET ROLE;
DELETE FROM retail_mid.pii_mask_rule WHERE table_name = 'retail_mid.dwd_trade_order_line_di'::regclass;
DROP VIEW retail_mid.dwd_trade_order_line_di_masked;
SELECT retail_mid.security_grant('retail_mid.dwd_trade_order_line_di');
SELECT has_table_privilege('retail_mid_analyst', 'retail_mid.dwd_trade_order_line_di', 'SELECT') AS analyst_reads_table_again;
DELETE FROM retail_mid.dwd_trade_order_line_di WHERE brand LIKE 'sec\_%';

-- search_path attacks: objects planted in public (first on the path) that shadow PostgreSQL's functions and
-- operators do not change what the extension computes
CREATE FUNCTION public.pg_has_role(name, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE sql AS 'SELECT ''''::text';
CREATE FUNCTION public.textne_evil(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.textne_evil);
CREATE FUNCTION pg_temp.pg_has_role(name, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
SET search_path = public, pg_catalog, retail_mid;
SET ROLE sec_alice;
SET search_path = public, pg_catalog, retail_mid;
SELECT brand, amount FROM public.sec_sales_by_brand ORDER BY brand;
SELECT retail_mid.brand_visible('sec_b') AS sees_b;
SELECT brand, name FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand;
RESET ROLE;
CREATE TABLE public.sec_q (s text);
INSERT INTO public.sec_q VALUES ('x'), (' '), (NULL);
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template) VALUES ('sec_q_blank', 'public.sec_q', 's', 'not_blank');
SELECT retail_mid.quality_evaluate('public.sec_q', '2026-01-01 12:00+00') > 0 AS evaluated;
SELECT rule_name, observed FROM retail_mid.quality_result WHERE rule_name = 'sec_q_blank';
RESET search_path;

-- clean up
DELETE FROM retail_mid.quality_rule WHERE rule_name = 'sec_q_blank';
DELETE FROM retail_mid.brand_entitlement WHERE brand LIKE 'sec\_%';
DELETE FROM retail_mid.ods_order WHERE brand LIKE 'sec\_%';
DELETE FROM retail_mid.ods_customer WHERE brand LIKE 'sec\_%';
DROP OPERATOR public.<> (text, text);
DROP FUNCTION public.textne_evil(text, text), public.btrim(text), public.pg_has_role(name, text, text), public.pg_has_role(name, oid, text);
DROP VIEW public.sec_sales_by_brand;
DROP TABLE public.sec_sales, public.sec_q;
REVOKE retail_mid_pii_reader FROM sec_bob;
DROP ROLE sec_alice, sec_bob, sec_carol, sec_both, sec_dave;
