-- security: shipped roles with least-privilege grants, brand isolation by row-level security driven by an
-- entitlement table, and personal data masked by rules held as data. Runs last: it secures what the other
-- domains created.

-- Roles are cluster-wide, so they are created only when missing (a second database or a reinstall reuses them).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_admin') THEN CREATE ROLE retail_mid_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_analyst') THEN CREATE ROLE retail_mid_analyst NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_bi') THEN CREATE ROLE retail_mid_bi NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_pii_reader') THEN CREATE ROLE retail_mid_pii_reader NOLOGIN; END IF;
END;
$$;

CREATE TABLE retail_mid.brand_entitlement (
    grantee  regrole NOT NULL,
    brand    text NOT NULL CHECK (brand <> ''),
    PRIMARY KEY (grantee, brand)
);
COMMENT ON TABLE retail_mid.brand_entitlement IS 'Which role sees which brand. A session sees the brands of every role it is a member of; grant one entitlement role to several users to share a group of brands deliberately. Members of retail_mid_admin see every brand.';
COMMENT ON COLUMN retail_mid.brand_entitlement.grantee IS 'Role (a user or a group role) entitled to the brand.';
COMMENT ON COLUMN retail_mid.brand_entitlement.brand IS 'Brand code as in the brand columns.';

CREATE FUNCTION retail_mid.brand_visible(brand text)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE')
        OR EXISTS (SELECT 1 FROM retail_mid.brand_entitlement e
                    WHERE e.brand = brand_visible.brand AND pg_catalog.pg_has_role(CURRENT_USER, e.grantee::oid, 'USAGE'));
END;
COMMENT ON FUNCTION retail_mid.brand_visible(text) IS 'Whether the current user may see rows of a brand (retail_mid_admin, or an entitlement of one of its roles). Used by the brand_isolation policies.';

-- Puts a table with a brand column under brand isolation. Also usable on user tables.
CREATE FUNCTION retail_mid.secure_brand_table(tbl regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% has no brand column', tbl USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'brand_isolation') THEN
        EXECUTE format('CREATE POLICY brand_isolation ON %s USING (retail_mid.brand_visible(brand)) WITH CHECK (retail_mid.brand_visible(brand))', tbl);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.secure_brand_table(regclass) IS 'Enables row-level security on a table with a brand column, with the brand_isolation policy (rows of brands the user is entitled to).';

SELECT retail_mid.secure_brand_table(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p')
   AND c.oid <> 'retail_mid.brand_entitlement'::regclass
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND NOT a.attisdropped);

-- a user sees its own entitlements only (brand_visible cannot guard this table: it reads it)
ALTER TABLE retail_mid.brand_entitlement ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_entitlements ON retail_mid.brand_entitlement
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') OR pg_catalog.pg_has_role(CURRENT_USER, grantee::oid, 'USAGE'));

-- Views run with the caller's rights, so the policies above apply through them too.
DO $$
DECLARE v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'retail_mid' AND c.relkind = 'v' LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END;
$$;

-- ----------------------------------------------------------------- personal data masking
CREATE TABLE retail_mid.pii_mask_rule (
    table_name  regclass NOT NULL,
    column_name text NOT NULL,
    method      text NOT NULL CHECK (method IN ('redact', 'partial', 'email', 'hash', 'year')),
    PRIMARY KEY (table_name, column_name)
);
COMMENT ON TABLE retail_mid.pii_mask_rule IS 'Personal data columns and how they are masked for roles that are not members of retail_mid_pii_reader.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.table_name IS 'Table holding the column.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.column_name IS 'Personal data column.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.method IS 'redact (NULL), partial (first 3 and last 2 characters), email (first character and the domain), hash (md5, stable for joins), year (dates to 1 January of their year).';

CREATE FUNCTION retail_mid.pii_mask(value text, method text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE WHEN value IS NULL OR pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_pii_reader', 'USAGE') THEN value
                WHEN method = 'redact' THEN NULL
                WHEN method = 'partial' THEN CASE WHEN pg_catalog.length(value) <= 5 THEN '***'
                                                  ELSE pg_catalog.left(value, 3) OPERATOR(pg_catalog.||) '****' OPERATOR(pg_catalog.||) pg_catalog.right(value, 2) END
                WHEN method = 'email' THEN pg_catalog.left(value, 1) OPERATOR(pg_catalog.||) '***' OPERATOR(pg_catalog.||) pg_catalog.substring(value, '@.*$')
                WHEN method = 'hash' THEN pg_catalog.md5(value)
                WHEN method = 'year' THEN pg_catalog.date_trunc('year', value::date)::date::text
                ELSE NULL END;
END;
COMMENT ON FUNCTION retail_mid.pii_mask(text, text) IS 'A personal data value as the current user may see it: unchanged for members of retail_mid_pii_reader, else masked by the method.';

INSERT INTO retail_mid.pii_mask_rule
SELECT t::regclass, c, m FROM (VALUES
    ('retail_mid.ods_customer', 'name', 'partial'), ('retail_mid.ods_customer', 'phone', 'partial'),
    ('retail_mid.ods_customer', 'email', 'email'), ('retail_mid.ods_customer', 'birth_date', 'year'),
    ('retail_mid.ods_customer_identifier', 'id_value', 'hash'), ('retail_mid.customer_key', 'id_value', 'hash')) v(t, c, m)
 WHERE to_regclass(t) IS NOT NULL;

-- Creates or replaces <table>_masked: every column, personal ones masked by their rule, brand-isolated, over a
-- security barrier. The view runs with its owner's rights (so it can read the columns the caller may not),
-- and filters brands by the caller (CURRENT_USER inside a view is the caller).
CREATE FUNCTION retail_mid.pii_create_masked_view(tbl regclass)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
    vname text;
    has_brand boolean;
BEGIN
    SELECT string_agg(CASE WHEN r.method IS NULL THEN format('t.%I', a.attname)
                           ELSE format('retail_mid.pii_mask(t.%I::text, %L)::%s AS %I', a.attname, r.method, format_type(a.atttypid, a.atttypmod), a.attname) END,
                      ', ' ORDER BY a.attnum),
           bool_or(a.attname = 'brand')
      INTO cols, has_brand
      FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
    IF cols IS NULL THEN
        RAISE EXCEPTION '% has no columns', tbl USING ERRCODE = 'undefined_table';
    END IF;
    vname := format('%I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl),
                    (SELECT c.relname FROM pg_class c WHERE c.oid = tbl) || '_masked');
    EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_barrier = true) AS SELECT %s FROM %s AS t%s',
                   vname, cols, tbl, CASE WHEN has_brand THEN ' WHERE retail_mid.brand_visible(t.brand)' ELSE '' END);
    EXECUTE format('COMMENT ON VIEW %s IS %L', vname, format('%s with personal data masked by retail_mid.pii_mask_rule for non-members of retail_mid_pii_reader, and brand isolation.', tbl));
    -- the base table's column comments carry over, marked where the column is masked (BI tools show them)
    FOR cols IN SELECT format('COMMENT ON COLUMN %s.%I IS %L', vname, a.attname,
                              coalesce(col_description(tbl, a.attnum), a.attname) ||
                              CASE WHEN r.method IS NOT NULL THEN format(' Masked (%s) for non-members of retail_mid_pii_reader.', r.method) ELSE '' END)
                  FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
                 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE cols;
    END LOOP;
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst, retail_mid_bi, retail_mid_admin', vname);
    RETURN vname;
END;
$$;
COMMENT ON FUNCTION retail_mid.pii_create_masked_view(regclass) IS 'Creates or replaces <table>_masked: personal data columns masked per pii_mask_rule, brand-isolated; the way analysts and BI read tables with personal data.';

SELECT retail_mid.pii_create_masked_view(t) FROM (SELECT DISTINCT table_name AS t FROM retail_mid.pii_mask_rule) x;

-- ----------------------------------------------------------------- grants (least privilege)
-- Nothing is granted to PUBLIC beyond PostgreSQL's defaults. Tables holding personal data are readable by
-- analysts and BI only through their _masked views (and by retail_mid_pii_reader members directly).
GRANT USAGE ON SCHEMA retail_mid TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
GRANT ALL ON ALL TABLES IN SCHEMA retail_mid TO retail_mid_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA retail_mid TO retail_mid_admin;
GRANT retail_mid_pii_reader TO retail_mid_admin;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS t, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p', 'v', 'm')
                AND c.oid NOT IN (SELECT table_name FROM retail_mid.pii_mask_rule) LOOP
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst', r.t);
        -- BI reads the summary and dashboard layer: views and the DWS tables
        IF r.relkind IN ('v', 'm') OR r.t::text LIKE 'retail_mid.dws\_%' THEN
            EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', r.t);
        END IF;
    END LOOP;
    -- failing row samples may hold rows of any brand: analysts and BI read the results without them
    REVOKE SELECT ON retail_mid.quality_result FROM retail_mid_analyst;
    EXECUTE (SELECT format('GRANT SELECT (%s) ON retail_mid.quality_result TO retail_mid_analyst, retail_mid_bi',
                           string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum))
               FROM pg_attribute a WHERE a.attrelid = 'retail_mid.quality_result'::regclass AND a.attnum > 0
                AND NOT a.attisdropped AND a.attname NOT IN ('sample', 'detail'));
    GRANT SELECT ON retail_mid.quality_rule, retail_mid.quality_template TO retail_mid_bi;
    -- brand_visible reads the entitlements (each user sees only its own rows)
    GRANT SELECT ON retail_mid.brand_entitlement TO retail_mid_bi;
    FOR r IN SELECT DISTINCT table_name AS t FROM retail_mid.pii_mask_rule LOOP
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_pii_reader', r.t);
    END LOOP;
END;
$$;
