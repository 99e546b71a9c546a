-- tags/brand_scope.sql: tags by brand: the per-brand bitmaps of shared group tags and brand-scoped views.
--
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
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
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

-- A new or withdrawn entitlement adds or drops the brand's rows of the tag bitmaps.
CREATE FUNCTION retail_mid.brand_entitlement_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.brand_entitlement_changed() IS 'Trigger: keeps the per-brand tag bitmaps in line with the entitled brands.';
CREATE TRIGGER brand_entitlement_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retail_mid.brand_entitlement
    FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.brand_entitlement_changed();

-- Tag values and audience members are group-wide (a customer may buy from several brands). Analysts and BI
-- read them only through these views: one row per brand of the customer, rows of the caller's brands only
-- (retail_mid.customer_brand is brand-isolated; the views, owned by retail_mid_view_owner (governance/lockdown.sql),
-- read the group-wide tables the callers may not read).
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
