-- governance/lockdown.sql: applies governance/security.sql to every relation installed before it.
--
-- Brand isolation on every table with a brand column, the other row-level security policies, the masked views,
-- the views owned by retail_mid_view_owner, and the grants of the shipped roles. Installed after every file that
-- creates relations (only pipeline.sql, which creates functions, follows); tables generated later are secured by
-- retail_mid.secure_generated_table.

SELECT retail_mid.secure_brand_table(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p')
   AND c.oid <> 'retail_mid.brand_entitlement'::regclass
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND NOT a.attisdropped);

-- The '*' rows of the per-brand settings tables are the defaults of every brand without its own settings, not
-- data of a brand: whoever reads the table reads them (policies are permissive: either one admits a row).
CREATE POLICY brand_defaults ON retail_mid.rfm_config FOR SELECT USING (brand = '*');
CREATE POLICY brand_defaults ON retail_mid.aipl_rule FOR SELECT USING (brand = '*');
CREATE POLICY brand_defaults ON retail_mid.newproduct_type FOR SELECT USING (brand = '*');
CREATE POLICY brand_defaults ON retail_mid.newproduct_stage_threshold FOR SELECT USING (brand = '*');

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

-- The extension's views run with the caller's rights, so the policies above apply through them too. The brand-scoped
-- views (of consumer/oneid.sql and tags/brand_scope.sql) and the masked views created below are the exception:
-- they are owned by retail_mid_view_owner instead.
ALTER VIEW retail_mid.oneid_person_brand OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.tag_value_brand OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.audience_member_brand OWNER TO retail_mid_view_owner;
DO $$
DECLARE v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'retail_mid' AND c.relkind = 'v' AND c.relowner <> 'retail_mid_view_owner'::regrole LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END;
$$;

SELECT retail_mid.pii_create_masked_view(t) FROM (SELECT DISTINCT table_name AS t FROM retail_mid.pii_mask_rule) x;

GRANT USAGE ON SCHEMA retail_mid TO retail_mid_view_owner;
GRANT SELECT ON retail_mid.oneid_person_map, retail_mid.tag_value, retail_mid.tag_definition, retail_mid.audience_package, retail_mid.customer_brand TO retail_mid_view_owner;
-- events and touches by customer key (consumer/aipl.sql), for aipl_signals: the ODS rows of the caller's brands (their
-- row-level security) with the key of every identifier they name, also of identifiers not in customer_brand (an
-- anonymous device seen by brand A only), so the views read the whole dictionary. Every view owned by
-- retail_mid_view_owner that reads customer_key scopes its rows itself (customer_key_masked by customer_brand).
GRANT SELECT ON retail_mid.ods_behavior_event, retail_mid.ods_campaign_touch, retail_mid.customer_key TO retail_mid_view_owner;
CREATE POLICY keyed_views ON retail_mid.customer_key FOR SELECT TO retail_mid_view_owner USING (true);
ALTER VIEW retail_mid.behavior_event_keyed SET (security_invoker = false);
ALTER VIEW retail_mid.campaign_touch_keyed SET (security_invoker = false);
ALTER VIEW retail_mid.behavior_event_keyed OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.campaign_touch_keyed OWNER TO retail_mid_view_owner;
-- issue 15 (BI contract): views analysts and BI read over tables they may not read themselves, owned by
-- retail_mid_view_owner and scoped by the row-level security of their base tables (evaluated for the caller):
-- reach_touch (the keyed touches of dwd_marketing_touch_di), fulfilment_atp (stock of the locations of the caller's brands). The
-- site candidates are the group's planning output and hold no rows of any brand. (Their grants to the view owner
-- are given at the end, after the roles', as an update from 1.0.0 orders them.)
ALTER VIEW retail_mid.reach_touch SET (security_invoker = false);
ALTER VIEW retail_mid.fulfilment_atp SET (security_invoker = false);
ALTER VIEW retail_mid.site_candidate_ranking SET (security_invoker = false);
ALTER VIEW retail_mid.reach_touch OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.fulfilment_atp OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.site_candidate_ranking OWNER TO retail_mid_view_owner;

GRANT USAGE ON SCHEMA retail_mid TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
GRANT ALL ON ALL SEQUENCES IN SCHEMA retail_mid TO retail_mid_admin;
GRANT retail_mid_pii_reader TO retail_mid_admin;
GRANT EXECUTE ON FUNCTION retail_mid.ensure_partitions(regclass, date, date) TO retail_mid_admin;  -- issue 13: refresh creates partitions
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
                retail_mid.behavior_event_keyed, retail_mid.campaign_touch_keyed,
                retail_mid.reach_touch, retail_mid.fulfilment_atp, retail_mid.site_candidate_ranking  -- issue 15
    TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
-- analysts evaluate audiences: the tag bitmaps (brand rows, by the brand rule above), the current tag values
-- and the universe under their customer-scoped policies, and the keys (not the identifiers) of the dictionary
GRANT SELECT ON retail_mid.tag_value, retail_mid.customer_universe TO retail_mid_analyst;
-- analysts save audiences of their brands (save_audience; under the policies on audience_package above): INSERT of
-- the columns save_audience writes, so created_at and created_by keep their defaults
GRANT INSERT (name, brand, version, expression, canonical_expression, snapshot, customers) ON retail_mid.audience_package TO retail_mid_analyst;
GRANT SELECT (customer_key) ON retail_mid.customer_key TO retail_mid_analyst;
-- issue 16: saving an audience stores its profile (the trigger runs as the saver)
GRANT INSERT ON retail_mid.audience_profile_snapshot TO retail_mid_analyst;
-- brand_visible reads the entitlements (each user sees only its own rows); the definitions BI dashboards label with
GRANT SELECT ON retail_mid.brand_entitlement, retail_mid.quality_rule, retail_mid.quality_template TO retail_mid_bi;
-- issue 15 (BI contract): BI keeps reading the reach tables it read through reach_touch in 1.0.0; the view owner
-- reads the base tables of the views it now owns
GRANT SELECT ON retail_mid.reach_outbox, retail_mid.reach_plan TO retail_mid_bi;
GRANT SELECT ON retail_mid.reach_outbox, retail_mid.reach_plan, retail_mid.fulfilment_stock, retail_mid.fulfilment_location,
                retail_mid.site_candidate, retail_mid.site_candidate_score TO retail_mid_view_owner;
-- issue 15 (consumers on the public layer): reach_touch reads the touch DWD
GRANT SELECT ON retail_mid.dwd_marketing_touch_di TO retail_mid_view_owner;
-- BI reads dash_replenishment, whose suggested orders check the freshness of the inventory DWS
GRANT SELECT ON retail_mid.domain_refresh_state TO retail_mid_bi;
-- issue 17: the new-product views read the type targets through retail_mid.newproduct_type_of
GRANT SELECT ON retail_mid.newproduct_type TO retail_mid_bi;
