-- foundation/tenancy.sql: the brands as tenants: which customers belong to a brand, which roles see a brand.
--
-- Every table with a brand column is isolated by brand (governance/security.sql puts row-level security on it);
-- the group-wide customer tables are scoped through customer_brand. Installed after the ODS and DWD it is
-- rebuilt from, before every domain that reads it.

CREATE TABLE retail_mid.brand_entitlement (
    grantee  regrole NOT NULL,
    brand    text NOT NULL CHECK (brand <> ''),
    PRIMARY KEY (grantee, brand)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.brand_entitlement', '');
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

-- Which customers belong to which brand: the scope of the group-wide customer tables (customer keys, the values
-- and bitmaps of group tags shared with brands, OneID, audiences), through the customer_scope and
-- shared_group_values policies and the brand-scoped views.
CREATE TABLE retail_mid.customer_brand (
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    PRIMARY KEY (brand, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_brand', '');
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
      JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                    AND k.id_value = c.customer_id
    UNION
    SELECT i.brand, k.customer_key FROM retail_mid.ods_customer_identifier i
      JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.issuer = retail_mid.customer_key_issuer(i.id_type, i.brand)
                                    AND k.id_value = i.id_value
    UNION
    SELECT DISTINCT d.brand, d.customer_key FROM retail_mid.dwd_trade_order_line_di d WHERE d.customer_key IS NOT NULL;
    DELETE FROM retail_mid.customer_brand cb
     WHERE NOT EXISTS (SELECT 1 FROM rm_customer_brand x WHERE x.brand = cb.brand AND x.customer_key = cb.customer_key);
    INSERT INTO retail_mid.customer_brand SELECT brand, customer_key FROM rm_customer_brand ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n FROM rm_customer_brand;
    DROP TABLE rm_customer_brand;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_customer_brand() IS 'Rebuilds retail_mid.customer_brand from the ODS customers and identifiers and the DWD trade; called by retail_mid.refresh (which then rebuilds the per-brand tag bitmaps); returns its rows.';
