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
    -- owns the masked and brand-scoped views: not a superuser, not BYPASSRLS, owns no table, has no members, so
    -- the base tables' row-level security applies when its views read them (evaluated for the calling user)
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_view_owner') THEN
        CREATE ROLE retail_mid_view_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
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

-- Which customers belong to which brand: the scope of the group-wide customer tables (customer keys, the values
-- and bitmaps of group tags shared with brands, OneID, audiences), through the customer_scope and
-- shared_group_values policies and the brand-scoped views.
CREATE TABLE retail_mid.customer_brand (
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    PRIMARY KEY (brand, customer_key)
);
CREATE INDEX ON retail_mid.customer_brand (customer_key);
COMMENT ON TABLE retail_mid.customer_brand IS 'Customers of each brand (keys of its ODS customers and identifiers and of its DWD trade), rebuilt by retail_mid.refresh; brand-isolated, it scopes the group-wide customer tables in the brand-scoped views.';
COMMENT ON COLUMN retail_mid.customer_brand.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.customer_brand.customer_key IS 'Customer key (retail_mid.customer_key).';

CREATE FUNCTION retail_mid.refresh_customer_brand()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    CREATE TEMP TABLE rm_customer_brand ON COMMIT DROP AS
    SELECT c.brand, k.customer_key FROM retail_mid.ods_customer c
      JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = c.customer_id
    UNION
    SELECT i.brand, k.customer_key FROM retail_mid.ods_customer_identifier i
      JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.id_value = i.id_value
    UNION
    SELECT DISTINCT d.brand, d.customer_key FROM retail_mid.dwd_trade_order_line_di d WHERE d.customer_key IS NOT NULL;
    DELETE FROM retail_mid.customer_brand cb
     WHERE NOT EXISTS (SELECT 1 FROM rm_customer_brand x WHERE x.brand = cb.brand AND x.customer_key = cb.customer_key);
    INSERT INTO retail_mid.customer_brand SELECT brand, customer_key FROM rm_customer_brand ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n FROM rm_customer_brand;
    DROP TABLE rm_customer_brand;
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_customer_brand() IS 'Rebuilds retail_mid.customer_brand from the ODS customers and identifiers and the DWD trade, and the per-brand tag bitmaps; called by retail_mid.refresh; returns its rows.';

-- Tag bitmaps per brand. The evaluator ORs every row of tag_bitmap / tag_bsi it may read for a tag value (or
-- range), and row-level security on their brand column decides which rows those are. Tags of scope brand get
-- their brand rows from evaluate_tags (each brand's own values). A group tag has only its group-wide row
-- (brand '*', admins), unless an administrator shared it (tag_definition.shared_with_brands): then one row per
-- entitled brand holds the group-wide bitmap AND the brand's customers, built here.

-- Rebuilds the per-brand rows of the shared group tags (of the named tags, or all) from their group-wide rows,
-- for every brand of brand_entitlement, and drops those of group tags no longer shared; brand tags are left
-- alone (evaluate_tags writes them). Returns the rows written.
CREATE FUNCTION retail_mid.refresh_brand_tag_bitmaps(tag_names text[] DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; m bigint; grp text[]; shared text[];
BEGIN
    SELECT coalesce(array_agg(d.tag_name), '{}'), coalesce(array_agg(d.tag_name) FILTER (WHERE d.shared_with_brands), '{}')
      INTO grp, shared
      FROM retail_mid.tag_definition d WHERE d.scope = 'group' AND (tag_names IS NULL OR d.tag_name = ANY (tag_names));
    DELETE FROM retail_mid.tag_bitmap t WHERE t.brand <> '*' AND t.tag_name = ANY (grp);
    DELETE FROM retail_mid.tag_bsi t WHERE t.brand <> '*' AND t.tag_name = ANY (grp);
    IF cardinality(shared) = 0 THEN
        RETURN 0;
    END IF;
    CREATE TEMP TABLE rm_brand_customers ON COMMIT DROP AS
    SELECT cb.brand, retail_mid.rb_build_agg(cb.customer_key) AS customers FROM retail_mid.customer_brand cb
     WHERE cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*') GROUP BY cb.brand;
    INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
    SELECT t.tag_name, t.tag_value, b.brand, retail_mid.rb_and(t.bitmap, b.customers), retail_mid.rb_and_cardinality(t.bitmap, b.customers)
      FROM retail_mid.tag_bitmap t CROSS JOIN rm_brand_customers b
     WHERE t.brand = '*' AND t.tag_name = ANY (shared) AND retail_mid.rb_and_cardinality(t.bitmap, b.customers) > 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- a brand's bit-sliced index is built from its customers' group-wide values at the scale of the group-wide one
    INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
    SELECT t.tag_name, cb.brand, t.scale, min(v.numeric_value), max(v.numeric_value), count(*),
           retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, t.scale))::int8)
      FROM retail_mid.tag_bsi t
      JOIN retail_mid.tag_value v ON v.tag_name = t.tag_name AND v.brand = '*' AND v.valid_to IS NULL AND v.numeric_value IS NOT NULL
      JOIN retail_mid.customer_brand cb ON cb.customer_key = v.customer_key
     WHERE t.brand = '*' AND t.tag_name = ANY (shared)
       AND cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*')
     GROUP BY t.tag_name, cb.brand, t.scale;
    GET DIAGNOSTICS m = ROW_COUNT;
    DROP TABLE rm_brand_customers;
    RETURN n + m;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_brand_tag_bitmaps(text[]) IS 'Rebuilds the per-brand rows of tag_bitmap (each group-wide bitmap AND the brand''s customers) and tag_bsi (the index of the brand''s customers'' values) of the group tags shared with brands, for every entitled brand, and drops those of unshared group tags; tags of scope brand are untouched. Called when tags are evaluated, customers refreshed, entitlements or sharing change.';

-- evaluate_tags writes the group-wide rows: the brand rows of shared group tags follow
CREATE FUNCTION retail_mid.tag_bitmap_written()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE tags text[];
BEGIN
    SELECT array_agg(DISTINCT n.tag_name) INTO tags FROM new_rows n
     WHERE n.brand = '*' AND n.tag_name IN (SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.scope = 'group');
    IF tags IS NOT NULL THEN
        PERFORM retail_mid.refresh_brand_tag_bitmaps(tags);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_bitmap_written() IS 'Trigger: rebuilds the per-brand rows of the group tags whose group-wide bitmaps were written (rows only when the tag is shared with brands).';
CREATE TRIGGER tag_bitmap_written AFTER INSERT ON retail_mid.tag_bitmap
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.tag_bitmap_written();
CREATE TRIGGER tag_bsi_written AFTER INSERT ON retail_mid.tag_bsi
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.tag_bitmap_written();

-- Sharing a group tag (or withdrawing it) adds (drops) its brand rows at once. A group tag turned into a brand
-- tag loses the brand rows derived from its group-wide values; its values and bitmaps by brand come with its
-- next evaluation (until then only administrators see its old group-wide values).
CREATE FUNCTION retail_mid.tag_sharing_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.scope = 'group' THEN
        PERFORM retail_mid.refresh_brand_tag_bitmaps(ARRAY[NEW.tag_name]);
    ELSIF OLD.scope = 'group' THEN
        DELETE FROM retail_mid.tag_bitmap t WHERE t.tag_name = NEW.tag_name AND t.brand <> '*';
        DELETE FROM retail_mid.tag_bsi t WHERE t.tag_name = NEW.tag_name AND t.brand <> '*';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_sharing_changed() IS 'Trigger: keeps the per-brand tag bitmaps in line with tag_definition.scope and shared_with_brands.';
CREATE TRIGGER tag_sharing_changed AFTER UPDATE OF scope, shared_with_brands ON retail_mid.tag_definition
    FOR EACH ROW WHEN (OLD.scope IS DISTINCT FROM NEW.scope OR OLD.shared_with_brands IS DISTINCT FROM NEW.shared_with_brands)
    EXECUTE FUNCTION retail_mid.tag_sharing_changed();

SELECT retail_mid.secure_brand_table(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p')
   AND c.oid <> 'retail_mid.brand_entitlement'::regclass
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND NOT a.attisdropped);

-- The '*' rows of the per-brand settings tables are the defaults of every brand without its own settings, not
-- data of a brand: whoever reads the table reads them (policies are permissive: either one admits a row).
CREATE POLICY brand_defaults ON retail_mid.rfm_config FOR SELECT USING (brand = '*');
CREATE POLICY brand_defaults ON retail_mid.aipl_rule FOR SELECT USING (brand = '*');

-- Saved audiences (audience_package, brand-isolated above): a brand's audiences are read and saved by the users
-- entitled to the brand, group-wide ones ('*') by admins. An inserted snapshot must hold customers of its brand only
-- (save_audience cuts it down so; the check stops a hand-written INSERT). audience_member_brand, owned by
-- retail_mid_view_owner, also reads the group-wide audiences (the policy's role is the view's owner; the view
-- keeps only members of the caller's brands).
CREATE POLICY brand_members_only ON retail_mid.audience_package AS RESTRICTIVE FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE')
                OR (brand OPERATOR(pg_catalog.<>) '*'
                    AND retail_mid.rb_contained(snapshot, coalesce((SELECT retail_mid.rb_build_agg(cb.customer_key) FROM retail_mid.customer_brand cb
                                                                     WHERE cb.brand OPERATOR(pg_catalog.=) audience_package.brand), '{}'))
                    AND customers OPERATOR(pg_catalog.=) retail_mid.rb_cardinality(snapshot)));
CREATE POLICY groupwide_in_brand_view ON retail_mid.audience_package FOR SELECT TO retail_mid_view_owner USING (brand OPERATOR(pg_catalog.=) '*');

-- a user sees its own entitlements only (brand_visible cannot guard this table: it reads it)
ALTER TABLE retail_mid.brand_entitlement ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_entitlements ON retail_mid.brand_entitlement
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') OR pg_catalog.pg_has_role(CURRENT_USER, grantee::oid, 'USAGE'));

-- A new or withdrawn entitlement adds or drops the brand's rows of the tag bitmaps.
CREATE FUNCTION retail_mid.brand_entitlement_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.brand_entitlement_changed() IS 'Trigger: keeps the per-brand tag bitmaps in line with the entitled brands.';
CREATE TRIGGER brand_entitlement_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retail_mid.brand_entitlement
    FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.brand_entitlement_changed();

-- Tag values: brand rows are under brand_isolation (above, like every table with a brand column). The group-wide
-- rows (brand '*') pass brand_isolation for admins only (retail_mid.brand_visible('*')); the policy below adds,
-- for reading, the group-wide values of the tags an administrator shared with brands, for the customers of the
-- reader's brands (customer_brand, itself brand-isolated). Both are STABLE and uncorrelated: the subqueries are
-- hashed once per query.
CREATE POLICY shared_group_values ON retail_mid.tag_value FOR SELECT
    USING (brand OPERATOR(pg_catalog.=) '*'
           AND tag_name OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.shared_with_brands))
           AND customer_key IN (SELECT cb.customer_key FROM retail_mid.customer_brand cb));
-- Group-wide customer tables under row-level security scoped by customer: a row is visible to admins, and to
-- others when its customer belongs to one of their brands (retail_mid.customer_brand, itself brand-isolated).
ALTER TABLE retail_mid.customer_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_scope ON retail_mid.customer_key
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE')
           OR EXISTS (SELECT 1 FROM retail_mid.customer_brand cb WHERE cb.customer_key OPERATOR(pg_catalog.=) customer_key.customer_key));
-- the cached universe of all customers is group-wide: admins only (others compute theirs from the two above)
ALTER TABLE retail_mid.customer_universe ENABLE ROW LEVEL SECURITY;
CREATE POLICY admins_only ON retail_mid.customer_universe
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE'));

-- The extension's views run with the caller's rights, so the policies above apply through them too. (The masked
-- and brand-scoped views created below are the exception: they are owned by retail_mid_view_owner instead.)
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
-- (the extension's owner), and admins change masking rules. It takes only a table of the extension's schema or one
-- under brand isolation, builds every name from the catalog and the rules (quoted), pins search_path, and is
-- executable by retail_mid_admin only.
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
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = tbl AND c.relkind IN ('r', 'p')
                      AND (c.relnamespace = 'retail_mid'::regnamespace
                           OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'brand_isolation'))) THEN
        RAISE EXCEPTION '% is not a table of retail_mid or under brand isolation', tbl USING ERRCODE = 'wrong_object_type',
            HINT = 'Masked views are made for the extension''s tables and for tables secured by retail_mid.secure_brand_table.';
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
COMMENT ON FUNCTION retail_mid.pii_create_masked_view(regclass) IS 'Creates or replaces <table>_masked (owned by retail_mid_view_owner): personal data columns masked per pii_mask_rule, rows under the table''s row-level security or scoped to the caller''s brands'' customers; withdraws direct reads of the table from analysts and BI. SECURITY DEFINER (it hands the view to retail_mid_view_owner), for tables of the extension''s schema or under brand isolation that have rules or a masked view; executable by retail_mid_admin.';
REVOKE EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) TO retail_mid_admin;

SELECT retail_mid.pii_create_masked_view(t) FROM (SELECT DISTINCT table_name AS t FROM retail_mid.pii_mask_rule) x;

-- Masking rules are data: adding, changing or removing one recreates the masked view of its table.
CREATE FUNCTION retail_mid.pii_mask_rule_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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

-- ----------------------------------------------------------------- brand-scoped views of group-wide customer data
-- OneID persons, tag values and audience members are group-wide (a customer may buy from several brands).
-- Analysts and BI read them only through these views: one row per brand of the customer, rows of the caller's
-- brands only (retail_mid.customer_brand is brand-isolated; the views, owned by retail_mid_view_owner, read
-- the group-wide tables the callers may not read).
CREATE VIEW retail_mid.oneid_person_brand WITH (security_barrier = true) AS
SELECT cb.brand::text AS brand, m.customer_key::int4 AS customer_key, m.person_key::int4 AS person_key
  FROM retail_mid.oneid_person_map m JOIN retail_mid.customer_brand cb ON cb.customer_key = m.customer_key;
COMMENT ON VIEW retail_mid.oneid_person_brand IS 'OneID persons of the customers of the caller''s brands: the brand-scoped way to read retail_mid.oneid_person_map.';
COMMENT ON COLUMN retail_mid.oneid_person_brand.brand IS 'Brand the customer key belongs to.';
COMMENT ON COLUMN retail_mid.oneid_person_brand.customer_key IS 'Customer key (one identifier).';
COMMENT ON COLUMN retail_mid.oneid_person_brand.person_key IS 'Person the identifier resolves to.';

CREATE VIEW retail_mid.tag_value_brand WITH (security_barrier = true) AS
SELECT v.brand::text AS brand, v.tag_name::text AS tag_name, v.customer_key::int4 AS customer_key, v.value::text AS value,
       v.numeric_value::numeric AS numeric_value, v.valid_from::timestamptz AS valid_from, 'brand'::text AS scope
  FROM retail_mid.tag_value v
 WHERE v.valid_to IS NULL AND v.brand <> '*'
UNION ALL
SELECT cb.brand::text, v.tag_name::text, v.customer_key::int4, v.value::text, v.numeric_value::numeric, v.valid_from::timestamptz,
       'group'::text
  FROM retail_mid.tag_value v JOIN retail_mid.customer_brand cb ON cb.customer_key = v.customer_key
 WHERE v.valid_to IS NULL AND v.brand = '*';
COMMENT ON VIEW retail_mid.tag_value_brand IS 'Current tag values the caller may read, by brand: the values of brand tags in the caller''s brands, and the group-wide values of group tags (shared with brands, or any for admins) once per brand of the customer. The brand-scoped way to read retail_mid.tag_value.';
COMMENT ON COLUMN retail_mid.tag_value_brand.brand IS 'Brand whose data gave the value (scope brand), or a brand the customer belongs to (scope group).';
COMMENT ON COLUMN retail_mid.tag_value_brand.tag_name IS 'Tag.';
COMMENT ON COLUMN retail_mid.tag_value_brand.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.tag_value_brand.value IS 'Current value as text.';
COMMENT ON COLUMN retail_mid.tag_value_brand.numeric_value IS 'Current value of a numeric tag.';
COMMENT ON COLUMN retail_mid.tag_value_brand.valid_from IS 'Since when the value holds.';
COMMENT ON COLUMN retail_mid.tag_value_brand.scope IS 'brand: the value was computed from this brand''s data only; group: a group-wide value (all brands'' data).';

CREATE VIEW retail_mid.audience_member_brand WITH (security_barrier = true) AS
SELECT p.name::text AS audience_name, p.version::int AS version, cb.brand::text AS brand, m.customer_key::int4 AS customer_key,
       p.brand::text AS audience_brand
  FROM (SELECT DISTINCT ON (name, brand) name, brand, version, snapshot FROM retail_mid.audience_package ORDER BY name, brand, version DESC) p
 CROSS JOIN LATERAL retail_mid.rb_iterate(p.snapshot) AS m(customer_key)
  JOIN retail_mid.customer_brand cb ON cb.customer_key = m.customer_key AND (p.brand = '*' OR cb.brand = p.brand);
COMMENT ON VIEW retail_mid.audience_member_brand IS 'Members of the latest version of every saved audience (group-wide, or of the caller''s brands) that are customers of the caller''s brands: the brand-scoped way to read saved audiences.';
COMMENT ON COLUMN retail_mid.audience_member_brand.audience_brand IS 'Brand the audience was saved for (''*'': group-wide; its members appear under each of their brands the caller sees).';
COMMENT ON COLUMN retail_mid.audience_member_brand.audience_name IS 'Saved audience.';
COMMENT ON COLUMN retail_mid.audience_member_brand.version IS 'Its latest version.';
COMMENT ON COLUMN retail_mid.audience_member_brand.brand IS 'Brand the member belongs to.';
COMMENT ON COLUMN retail_mid.audience_member_brand.customer_key IS 'Member.';

GRANT USAGE ON SCHEMA retail_mid TO retail_mid_view_owner;
GRANT SELECT ON retail_mid.oneid_person_map, retail_mid.tag_value, retail_mid.tag_definition, retail_mid.audience_package, retail_mid.customer_brand TO retail_mid_view_owner;
-- events and touches by customer key (src/aipl.sql), for aipl_signals: the ODS rows of the caller's brands (their
-- row-level security) with the key of every identifier they name, also of identifiers not in customer_brand (an
-- anonymous device seen by brand A only), so the views read the whole dictionary. Every view owned by
-- retail_mid_view_owner that reads customer_key scopes its rows itself (customer_key_masked by customer_brand).
GRANT SELECT ON retail_mid.ods_behavior_event, retail_mid.ods_campaign_touch, retail_mid.customer_key TO retail_mid_view_owner;
CREATE POLICY keyed_views ON retail_mid.customer_key FOR SELECT TO retail_mid_view_owner USING (true);
ALTER VIEW retail_mid.behavior_event_keyed SET (security_invoker = false);
ALTER VIEW retail_mid.campaign_touch_keyed SET (security_invoker = false);
ALTER VIEW retail_mid.behavior_event_keyed OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.campaign_touch_keyed OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.oneid_person_brand OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.tag_value_brand OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.audience_member_brand OWNER TO retail_mid_view_owner;

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
                            'tag_taxonomy', 'tag_definition']::name[]);
END;
COMMENT ON FUNCTION retail_mid.security_reference_relations() IS 'The relations without a brand column that analysts and BI may read: definitions and settings, no rows of any brand.';

-- Grants a relation of the extension (or one it generated) to the shipped roles by the rules above: admins
-- everything; analysts a relation with a brand column (under row-level security, or a security_invoker view
-- over such tables) or a reference relation; BI the same for views and DWS tables. Relations under a masking
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
    IF has_brand AND (kind IN ('v', 'm') OR rel::text LIKE 'retail\_mid.dws\_%') THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', rel);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.security_grant(regclass) IS 'Grants a relation to retail_mid_admin, retail_mid_analyst and retail_mid_bi by the least-privilege rules (brand column or reference data for analysts; brand-bearing views and DWS tables for BI).';

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

GRANT USAGE ON SCHEMA retail_mid TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
GRANT ALL ON ALL SEQUENCES IN SCHEMA retail_mid TO retail_mid_admin;
GRANT retail_mid_pii_reader TO retail_mid_admin;
SELECT retail_mid.security_grant(c.oid)
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
   AND c.relowner <> 'retail_mid_view_owner'::regrole;
-- BI reads a view together with the brand-isolated tables it reads (security_invoker views need both)
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT d.refobjid::regclass AS base
               FROM pg_class v JOIN pg_rewrite w ON w.ev_class = v.oid
               JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
               JOIN pg_class b ON b.oid = d.refobjid AND b.relkind IN ('r', 'p')
              WHERE v.relnamespace = 'retail_mid'::regnamespace AND v.relkind = 'v' AND d.refobjid <> v.oid
                AND has_table_privilege('retail_mid_bi', v.oid, 'SELECT') AND v.relowner <> 'retail_mid_view_owner'::regrole
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = b.oid AND a.attname = 'brand' AND NOT a.attisdropped)
                AND NOT EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule m WHERE m.table_name = b.oid) LOOP
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', r.base);
    END LOOP;
END;
$$;
-- analysts and BI: the masked views were granted by pii_create_masked_view; the brand-scoped views here
GRANT SELECT ON retail_mid.oneid_person_brand, retail_mid.tag_value_brand, retail_mid.audience_member_brand,
                retail_mid.behavior_event_keyed, retail_mid.campaign_touch_keyed
    TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
-- analysts evaluate audiences: the tag bitmaps (brand rows, by the brand rule above), the current tag values
-- and the universe under their customer-scoped policies, and the keys (not the identifiers) of the dictionary
GRANT SELECT ON retail_mid.tag_value, retail_mid.customer_universe TO retail_mid_analyst;
-- analysts save audiences of their brands (save_audience; under the policies on audience_package above): INSERT of
-- the columns save_audience writes, so created_at and created_by keep their defaults
GRANT INSERT (name, brand, version, expression, canonical_expression, snapshot, customers) ON retail_mid.audience_package TO retail_mid_analyst;
GRANT SELECT (customer_key) ON retail_mid.customer_key TO retail_mid_analyst;
-- brand_visible reads the entitlements (each user sees only its own rows); the definitions BI dashboards label with
GRANT SELECT ON retail_mid.brand_entitlement, retail_mid.quality_rule, retail_mid.quality_template TO retail_mid_bi;
