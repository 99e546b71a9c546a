-- bi_contract: every relation granted to retail_mid_bi or retail_mid_analyst (read from the catalog, so new
-- relations enter by themselves) can be read by a login member of each role, shows no row of a brand the member
-- is not entitled to, and the DIM layer is among them.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
DROP ROLE IF EXISTS bic_analyst;
DROP ROLE IF EXISTS bic_bi;
SELECT retail_mid.generate_synthetic(seed => 5, customers => 200, days => 30, orders_per_day => 20, stores => 4,
                                     skus => 40, start_date => '2024-03-01', brand => 'bic_a');
SELECT retail_mid.generate_synthetic(seed => 6, customers => 200, days => 30, orders_per_day => 20, stores => 4,
                                     skus => 40, start_date => '2024-03-01', brand => 'bic_b');
SELECT retail_mid.refresh('2024-03-01', '2024-03-30') > 0 AS refreshed;
RESET client_min_messages;
CREATE ROLE bic_analyst LOGIN IN ROLE retail_mid_analyst;
CREATE ROLE bic_bi LOGIN IN ROLE retail_mid_bi;
INSERT INTO retail_mid.brand_entitlement VALUES ('bic_analyst', 'bic_a'), ('bic_bi', 'bic_a');

-- The contract: relations of the extension's schema each role can read (whole table or some columns).
CREATE TEMP TABLE contract AS
SELECT r.role, c.oid::regclass AS rel, c.relkind,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND has_column_privilege(r.role, c.oid, a.attnum, 'SELECT')) AS cols,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND NOT a.attisdropped
                  AND has_column_privilege(r.role, c.oid, a.attnum, 'SELECT')) AS has_brand
  FROM pg_class c, (VALUES ('retail_mid_bi'), ('retail_mid_analyst')) r(role)
 WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND has_any_column_privilege(r.role, c.oid, 'SELECT');
GRANT SELECT ON contract TO PUBLIC;
SELECT role, count(*) > 40 AS many_relations, count(*) FILTER (WHERE rel::text LIKE 'retail_mid.dim\_%') AS dim_relations,
       bool_or(rel = 'retail_mid.reach_touch'::regclass) AS reach_touch, bool_or(rel = 'retail_mid.fulfilment_atp'::regclass) AS fulfilment_atp,
       bool_or(rel = 'retail_mid.site_candidate_ranking'::regclass) AS site_candidates,
       bool_or(rel = 'retail_mid.ods_product'::regclass) AS ods_product, bool_or(rel = 'retail_mid.ods_customer'::regclass) AS raw_customers
  FROM contract GROUP BY role ORDER BY role;

-- Reads every relation as each role: errors and rows of another brand are collected, then listed.
CREATE FUNCTION pg_temp.read_contract(login text, grp text) RETURNS TABLE (rel text, problem text) LANGUAGE plpgsql AS $$
DECLARE r record; n bigint; out_rel text[] := '{}'; out_problem text[] := '{}';
BEGIN
    EXECUTE format('SET ROLE %I', login);
    FOR r IN SELECT * FROM contract c WHERE c.role = grp ORDER BY c.rel::text LOOP
        BEGIN
            EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s LIMIT 1000) x', r.cols, r.rel) INTO n;
            IF r.has_brand THEN
                EXECUTE format('SELECT count(*) FROM %s WHERE brand NOT IN (''bic_a'', ''*'') AND brand LIKE ''bic%%''', r.rel) INTO n;
                IF n > 0 THEN
                    out_rel := out_rel || r.rel::text; out_problem := out_problem || format('%s rows of another brand', n);
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            out_rel := out_rel || r.rel::text; out_problem := out_problem || format('%s: %s', SQLSTATE, SQLERRM);
        END;
    END LOOP;
    RESET ROLE;
    RETURN QUERY SELECT * FROM unnest(out_rel, out_problem);
END $$;
SELECT 'bi' AS role, * FROM pg_temp.read_contract('bic_bi', 'retail_mid_bi')
UNION ALL
SELECT 'analyst', * FROM pg_temp.read_contract('bic_analyst', 'retail_mid_analyst') ORDER BY 1, 2;

-- and the members see their brand through the DIM layer and the labelled DWS
SET ROLE bic_bi;
SELECT (SELECT count(*) FROM retail_mid.dim_product WHERE is_current) AS products, (SELECT count(*) FROM retail_mid.dim_store WHERE is_current) AS stores,
       (SELECT count(*) FROM retail_mid.dim_customer) AS customers, (SELECT count(DISTINCT brand) FROM retail_mid.dim_site) AS brands,
       (SELECT count(*) FROM retail_mid.dim_customer d JOIN retail_mid.ods_customer_masked c ON md5(c.customer_id) = d.customer_id_hash) AS customers_joined,
       (SELECT count(DISTINCT category_l1) FROM retail_mid.dws_trade_sku_store_1d) AS categories,
       (SELECT count(*) > 0 FROM retail_mid.dim_date WHERE fiscal_year = 2024) AS calendar;
RESET ROLE;

SET client_min_messages = warning;
DELETE FROM retail_mid.brand_entitlement WHERE grantee::text IN ('bic_analyst', 'bic_bi');
DROP ROLE bic_analyst;
DROP ROLE bic_bi;
RESET client_min_messages;
