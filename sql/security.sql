-- security: shipped roles, least-privilege grants, brand isolation, masked personal data, search_path attacks
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'retail\_mid\_%' ORDER BY 1;
-- nothing granted to PUBLIC on the extension's tables and views; no SECURITY DEFINER; every plpgsql function pins search_path
SELECT count(*) AS public_table_grants FROM information_schema.role_table_grants WHERE grantee = 'PUBLIC' AND table_schema = 'retail_mid';
SELECT count(*) AS security_definer FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'retail_mid' AND p.prosecdef;
-- plpgsql routines without a pinned search_path (run_logged is a procedure that commits, which forbids SET)
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = 'retail_mid' AND l.lanname = 'plpgsql' AND NOT coalesce(p.proconfig::text LIKE '%search_path=%', false) ORDER BY 1;
-- no schema on those paths is writable by everybody
SELECT has_schema_privilege('public', 'public', 'CREATE') AS public_schema_writable_by_all;
SELECT count(*) AS brand_tables, count(*) FILTER (WHERE c.relrowsecurity) AS with_rls
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p') AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand');
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
SELECT count(*) >= 0 AS can_read_quality_results FROM retail_mid.quality_result;
SELECT sample FROM retail_mid.quality_result;   -- samples may hold rows of other brands
RESET ROLE;

-- BI user of the group sharing A and B: both brands, masked, no ODS tables
SET ROLE sec_carol;
SELECT brand, customer_id, name, phone, email FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
SELECT brand, amount FROM public.sec_sales_by_brand ORDER BY brand;
SELECT count(*) FROM retail_mid.ods_order;
SELECT count(*) >= 0 AS can_read_quality_scores FROM retail_mid.quality_score;
RESET ROLE;

-- a member of retail_mid_pii_reader sees personal data, still only of its brand
GRANT retail_mid_pii_reader TO sec_bob;
SET ROLE sec_bob;
SELECT brand, customer_id, name, phone, email, birth_date FROM retail_mid.ods_customer_masked WHERE brand LIKE 'sec\_%' ORDER BY brand, customer_id;
SELECT brand, name FROM retail_mid.ods_customer WHERE brand LIKE 'sec\_%' ORDER BY brand;
RESET ROLE;

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
DROP ROLE sec_alice, sec_bob, sec_carol, sec_both;
