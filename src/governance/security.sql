-- governance/security.sql: the shipped roles and the means to secure data: brand isolation, masking, grants.
--
-- Brand isolation is row-level security driven by the entitlement table of foundation/tenancy.sql; personal
-- data is masked by rules held as data; the grant rules give each shipped role least privilege. Installed first
-- in governance (quality and the metric registry use it); governance/lockdown.sql applies it to everything
-- installed before it.

-- Roles are cluster-wide, so they are created only when missing (a second database or a reinstall reuses them).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_admin') THEN CREATE ROLE retail_mid_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_analyst') THEN CREATE ROLE retail_mid_analyst NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_bi') THEN CREATE ROLE retail_mid_bi NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_pii_reader') THEN CREATE ROLE retail_mid_pii_reader NOLOGIN; END IF;
    -- owns the masked and brand-scoped views: not a superuser, not BYPASSRLS, owns no table, has no members, so
    -- the base tables' row-level security applies when its views read them (evaluated for the calling user)
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_view_owner') THEN
        CREATE ROLE retail_mid_view_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END;
$$;

-- The sections in which registry SQL runs as its author (src/common/registry.sql) are for the jobs, which run as
-- a superuser or an administrator; the author of the SQL run inside must be able to close its section.
REVOKE EXECUTE ON FUNCTION retail_mid.registry_enter(regrole), retail_mid.registry_leave(int8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.registry_enter(regrole), retail_mid.registry_leave(int8) TO retail_mid_admin;
-- run_logged executes the text it is given: for the jobs' scheduler, not for everybody
REVOKE EXECUTE ON PROCEDURE retail_mid.run_logged(text, text) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE retail_mid.run_logged(text, text) TO retail_mid_admin;

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

-- ----------------------------------------------------------------- personal data masking
CREATE TABLE retail_mid.pii_mask_rule (
    table_name  regclass NOT NULL,
    column_name text NOT NULL,
    method      text NOT NULL CHECK (method IN ('redact', 'partial', 'email', 'hash', 'year')),
    PRIMARY KEY (table_name, column_name)
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.pii_mask_rule', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.pii_mask_rule FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.pii_mask_rule IS 'Personal data columns and how they are masked for roles that are not members of retail_mid_pii_reader. Changing a rule recreates the table''s _masked view and withdraws direct reads of the table from analysts and BI.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.table_name IS 'Table holding the column.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.column_name IS 'Personal data column.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.method IS 'redact (NULL), partial (first 3 and last 2 characters), email (first character and the domain), hash (md5 text, stable for joins), year (dates to 1 January of their year).';

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

-- Shipped rules: every ODS column holding a name, phone, e-mail, birth date or an identifier value (phones,
-- e-mails, device and social open ids). DWD and DWS carry only customer keys.
INSERT INTO retail_mid.pii_mask_rule
SELECT t::regclass, c, m FROM (VALUES
    ('retail_mid.ods_customer', 'name', 'partial'), ('retail_mid.ods_customer', 'phone', 'partial'),
    ('retail_mid.ods_customer', 'email', 'email'), ('retail_mid.ods_customer', 'birth_date', 'year'),
    ('retail_mid.ods_customer_identifier', 'id_value', 'hash'), ('retail_mid.customer_key', 'id_value', 'hash'),
    ('retail_mid.ods_behavior_event', 'id_value', 'hash'), ('retail_mid.ods_campaign_touch', 'id_value', 'hash')) v(t, c, m)
 WHERE to_regclass(t) IS NOT NULL;

-- Creates or replaces <table>_masked: every column, personal ones masked by their rule, over a security
-- barrier. It is owned by retail_mid_view_owner, so it reads the personal columns its callers may not read,
-- while the row-level security of the base table still applies (for the calling user: the policies test
-- CURRENT_USER, which a view does not change). A table without a brand column but with a customer_key is
-- scoped to the customers of the caller's brands (retail_mid.customer_brand, itself brand-isolated). Analysts
-- and BI read it; only pii_reader members and admins read the table itself.
-- The one SECURITY DEFINER function of the extension: handing a view to retail_mid_view_owner needs a superuser
-- (the extension's owner), and admins change masking rules. It takes only a table that is a member of the extension
-- (pg_depend deptype 'e') in schema retail_mid, checks the calling session's rights (SELECT on the table or membership
-- of retail_mid_admin) before it creates or grants anything, builds every name from the catalog and the rules
-- (quoted), pins search_path, and is executable by retail_mid_admin only (issue 19: it used to take any table with a
-- policy named brand_isolation, which let an admin read another owner's table).
CREATE FUNCTION retail_mid.pii_create_masked_view(tbl regclass)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
    vname text;
    has_brand boolean;
    has_customer boolean;
    scope text := '';
    old_view regclass;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'pii_create_masked_view needs a table' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- only the extension's own tables: a member of the extension (created by its script), in its schema
    IF NOT EXISTS (SELECT 1 FROM pg_class c
                     JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.objsubid = 0 AND d.deptype = 'e'
                     JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'retail_mid'
                    WHERE c.oid = tbl AND c.relkind IN ('r', 'p') AND c.relnamespace = 'retail_mid'::regnamespace) THEN
        RAISE EXCEPTION '% is not a table of the retail_mid extension', tbl USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'This SECURITY DEFINER function makes masked views only for tables that belong to the extension (schema retail_mid).',
            HINT = 'Mask a table of your own with a view you create yourself.';
    END IF;
    -- the caller's rights (the session's user: inside a SECURITY DEFINER function current_user is the definer)
    IF NOT (pg_has_role(session_user, 'retail_mid_admin', 'MEMBER') OR has_table_privilege(session_user, tbl, 'SELECT')) THEN
        RAISE EXCEPTION 'permission denied to make a masked view of %', tbl USING ERRCODE = 'insufficient_privilege',
            DETAIL = format('Role %s is neither a member of retail_mid_admin nor allowed to read the table.', session_user);
    END IF;
    vname := format('%I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl),
                    (SELECT c.relname FROM pg_class c WHERE c.oid = tbl) || '_masked');
    old_view := to_regclass(vname);
    IF old_view IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = old_view AND c.relkind = 'v'
                                                AND c.relowner = 'retail_mid_view_owner'::regrole) THEN
        RAISE EXCEPTION '% exists and is not a masked view', vname USING ERRCODE = 'duplicate_table';
    END IF;
    IF old_view IS NULL AND NOT EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule r WHERE r.table_name = tbl) THEN
        RAISE EXCEPTION '% has no masking rule', tbl USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Add its rules to retail_mid.pii_mask_rule (which creates the view).';
    END IF;
    SELECT string_agg(CASE WHEN r.method IS NULL THEN format('t.%I', a.attname)
                           WHEN r.method = 'hash' THEN format('retail_mid.pii_mask(t.%I::text, %L) AS %I', a.attname, r.method, a.attname)
                           ELSE format('retail_mid.pii_mask(t.%I::text, %L)::%s AS %I', a.attname, r.method, format_type(a.atttypid, a.atttypmod), a.attname) END,
                      ', ' ORDER BY a.attnum),
           bool_or(a.attname = 'brand'), bool_or(a.attname = 'customer_key')
      INTO cols, has_brand, has_customer
      FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
    IF cols IS NULL THEN
        RAISE EXCEPTION '% has no columns', tbl USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT has_brand AND has_customer THEN
        scope := ' WHERE EXISTS (SELECT 1 FROM retail_mid.customer_brand cb WHERE cb.customer_key = t.customer_key)';
    END IF;
    -- dropped and created (not replaced): a hash rule changes the column's type to text
    IF old_view IS NOT NULL THEN
        EXECUTE format('DROP VIEW %s', vname);
    END IF;
    EXECUTE format('CREATE VIEW %s WITH (security_barrier = true) AS SELECT %s FROM %s AS t%s', vname, cols, tbl, scope);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_view_owner', tbl);
    IF scope <> '' THEN
        GRANT SELECT ON retail_mid.customer_brand TO retail_mid_view_owner;
    END IF;
    EXECUTE format('ALTER VIEW %s OWNER TO retail_mid_view_owner', vname);
    EXECUTE format('COMMENT ON VIEW %s IS %L', vname, format('%s with personal data masked by retail_mid.pii_mask_rule for non-members of retail_mid_pii_reader; %s',
                   tbl, CASE WHEN has_brand THEN 'brand-isolated by the table''s row-level security.'
                             WHEN has_customer THEN 'scoped to the customers of the caller''s brands.'
                             ELSE 'not brand-scoped (no brand or customer_key column): admins and pii_reader only.' END));
    -- the base table's column comments carry over, marked where the column is masked (BI tools show them)
    FOR cols IN SELECT format('COMMENT ON COLUMN %s.%I IS %L', vname, a.attname,
                              coalesce(col_description(tbl, a.attnum), a.attname) ||
                              CASE WHEN r.method IS NOT NULL THEN format(' Masked (%s) for non-members of retail_mid_pii_reader.', r.method) ELSE '' END)
                  FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
                 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE cols;
    END LOOP;
    -- the table itself: personal data, so only pii_reader members (and admins) read it directly
    EXECUTE format('REVOKE SELECT ON %s FROM retail_mid_analyst, retail_mid_bi', tbl);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_pii_reader, retail_mid_admin', tbl);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_admin, retail_mid_pii_reader', vname);
    IF has_brand OR has_customer THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst, retail_mid_bi', vname);
    END IF;
    RETURN vname;
END;
$$;
COMMENT ON FUNCTION retail_mid.pii_create_masked_view(regclass) IS 'Creates or replaces <table>_masked (owned by retail_mid_view_owner): personal data columns masked per pii_mask_rule, rows under the table''s row-level security or scoped to the caller''s brands'' customers; withdraws direct reads of the table from analysts and BI. SECURITY DEFINER (it hands the view to retail_mid_view_owner), only for the extension''s own tables (members of the extension in schema retail_mid) that have rules or a masked view, and only for a session whose user is a member of retail_mid_admin or may read the table; executable by retail_mid_admin.';
REVOKE EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) TO retail_mid_admin;

-- Masking rules are data: adding, changing or removing one recreates the masked view of its table.
CREATE FUNCTION retail_mid.pii_mask_rule_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM retail_mid.pii_create_masked_view(NEW.table_name);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR OLD.table_name <> NEW.table_name) THEN
        PERFORM retail_mid.pii_create_masked_view(OLD.table_name);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.pii_mask_rule_changed() IS 'Trigger: recreates the masked view of a table whose masking rules changed.';
CREATE TRIGGER pii_mask_rule_changed AFTER INSERT OR UPDATE OR DELETE ON retail_mid.pii_mask_rule
    FOR EACH ROW EXECUTE FUNCTION retail_mid.pii_mask_rule_changed();

-- ----------------------------------------------------------------- grants (least privilege)
-- Reference data readable by analysts and BI although it has no brand column: definitions and settings only,
-- no rows of any brand. Every other relation without a brand column (group-wide customer data, job logs,
-- tables of domains without brands) is for admins only.
CREATE FUNCTION retail_mid.security_reference_relations()
RETURNS regclass[] LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.array_agg(c.oid::regclass ORDER BY c.relname)
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'retail_mid'::regnamespace
       AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['metric_atomic', 'metric_qualifier', 'metric_period', 'metric_granularity',
                            'metric_derived', 'metric_composite', 'metric_coverage', 'pii_mask_rule', 'quality_template',
                            'quality_rule', 'quality_rule_version', 'rfm_segment_map', 'rfm_segment_map_def',
                            'tag_taxonomy', 'tag_definition', 'dim_calendar', 'dim_holiday', 'dim_date',
                            'site_candidate_ranking', 'dash_site_candidate']::name[]);
END;
COMMENT ON FUNCTION retail_mid.security_reference_relations() IS 'The relations without a brand column that analysts and BI may read: definitions and settings, the calendar, the group''s site candidate ranking (and its dashboard view); no rows of any brand.';

-- Grants a relation of the extension (or one it generated) to the shipped roles by the rules above: admins
-- everything; analysts a relation with a brand column (under row-level security, or a security_invoker view
-- over such tables) or a reference relation; BI the same for views, DWS and DIM tables (and the calendar). Relations under a masking
-- rule are left to pii_create_masked_view.
CREATE FUNCTION retail_mid.security_grant(rel regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    has_brand boolean;
    kind "char";
    reference boolean;
BEGIN
    SELECT c.relkind, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped)
      INTO kind, has_brand FROM pg_class c WHERE c.oid = rel;
    IF kind IN ('r', 'p') THEN
        EXECUTE format('GRANT ALL ON %s TO retail_mid_admin', rel);
    ELSE
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_admin', rel);
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule r WHERE r.table_name = rel) THEN
        RETURN;
    END IF;
    reference := rel = ANY (retail_mid.security_reference_relations());
    IF has_brand OR reference THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst', rel);
    ELSE
        EXECUTE format('REVOKE ALL ON %s FROM retail_mid_analyst, retail_mid_bi', rel);
    END IF;
    IF has_brand AND (kind IN ('v', 'm') OR rel::text LIKE 'retail\_mid.dws\_%')
       OR (has_brand OR reference) AND rel::text LIKE 'retail\_mid.dim\_%' THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', rel);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.security_grant(regclass) IS 'Grants a relation to retail_mid_admin, retail_mid_analyst and retail_mid_bi by the least-privilege rules (brand column or reference data for analysts; brand-bearing views, DWS and DIM tables and the calendar for BI).';

-- Secures a table generated after installation (the metric registry's dws_metric_* tables): brand isolation
-- when it has a brand column, and the role grants. A table without a brand column mixes brands: admins only.
CREATE FUNCTION retail_mid.secure_generated_table(tbl regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped) THEN
        PERFORM retail_mid.secure_brand_table(tbl);
    END IF;
    PERFORM retail_mid.security_grant(tbl);
END;
$$;
COMMENT ON FUNCTION retail_mid.secure_generated_table(regclass) IS 'Brand isolation (when the table has a brand column) and least-privilege grants for a table created after installation; called by metric_generate.';
