-- public_layer: no consumer reads the raw ODS (issue 15). Every view that reads an ods_* table (directly, or through
-- another such view: pg_rewrite / pg_depend), every function whose body names one of those relations (prosrc of
-- plpgsql/sql functions, the parsed body of BEGIN ATOMIC ones) and every shipped tag, metric or quality rule whose
-- SQL names one is a reader of the ODS; each must be on the list below, with the reason it may read the ODS. A new
-- consumer that reads ods_* (or the keyed / masked ODS views) instead of the DIM / DWD / DWS fails this test.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;

CREATE TEMP TABLE allowed_reader (kind text, reader text, why text, PRIMARY KEY (kind, reader));
INSERT INTO allowed_reader VALUES
    -- loaders: they write the ODS (and read it back to de-duplicate, report or assign keys)
    ('function', 'finish_load', 'loader'), ('function', 'load_report', 'loader'),
    ('function', 'load_boston_tracts', 'loader'), ('function', 'load_cdnow', 'loader'),
    ('function', 'load_complete_journey', 'loader'), ('function', 'load_media_feedback', 'loader'),
    ('function', 'load_media_spend', 'loader'), ('function', 'load_online_retail', 'loader'),
    ('function', 'load_orange_juice', 'loader'),
    ('function', 'shard_load', 'loader'), ('function', 'shard_load_import_row', 'loader'),
    ('view', 'shard_load_import', 'loader'), ('function', 'shard_tables', 'loader'),
    ('function', 'shard_add', 'loader'), ('function', 'shard_assign_keys', 'builder'),
    ('function', 'load_store_category_space', 'loader'), ('function', 'newproduct_problem', 'loader (checks the SKUs named exist)'),
    -- ships each SKU x store series to the shard that owns it: routing, like shard_load
    ('function', 'shard_forecast_refresh', 'loader'),
    -- the public layer's builders: DIM, DWD, DWS, the brand scope and the identity graph, and the orchestration
    ('function', 'dim_refresh', 'builder'), ('view', 'dim_campaign', 'builder'), ('view', 'dim_store_category_space', 'builder'),
    ('function', 'build_dwd_trade', 'builder'), ('function', 'build_dwd_domains', 'builder'),
    ('function', 'build_dws_domains', 'builder'), ('function', 'domain_ods_digest', 'freshness check'),
    ('function', 'refresh_all', 'orchestration'), ('function', 'run_daily', 'orchestration'),
    ('function', 'refresh_customer_brand', 'builder'),
    ('function', 'resolve_identities', 'builder'), ('view', 'oneid_edges', 'builder'),
    -- the synthetic generator writes the ODS
    ('function', 'generate_synthetic', 'synthetic generator'), ('function', 'generate_synthetic_media', 'synthetic generator'),
    ('function', 'generate_synthetic_assortment', 'synthetic generator'), ('function', 'generate_synthetic_launches', 'synthetic generator'),
    -- governance: the ODS as analysts may see it (masked, or keyed instead of identified)
    ('view', 'ods_behavior_event_masked', 'governed ODS view'), ('view', 'ods_campaign_touch_masked', 'governed ODS view'),
    ('view', 'ods_customer_masked', 'governed ODS view'), ('view', 'ods_customer_identifier_masked', 'governed ODS view'),
    ('view', 'behavior_event_keyed', 'governed ODS view'), ('view', 'campaign_touch_keyed', 'governed ODS view'),
    -- aipl_signals: the pre-1.1 AIPL signals over the keyed views, kept for analysts (aipl_refresh reads the DWD)
    ('function', 'aipl_signals', 'governed ODS view'),
    -- importers of the site domain: copy ODS sites, demand zones and stock into the site tools' own tables
    ('function', 'site_import_ods', 'site importer'), ('function', 'fulfilment_import_ods', 'site importer'),
    -- not moved yet (issue 15 open item): promo_panel reads order lines and promotions, mmm_fit media spend and
    -- promotions; the ODS of promotions and media spend has no DWD; store_category_productivity_core reads the unit
    -- costs in ods_product.attributes, which dim_product does not carry
    ('function', 'promo_panel', 'not moved yet'), ('function', 'store_category_productivity_core', 'not moved yet'),
    ('function', 'mmm_fit', 'not moved yet');

CREATE TEMP VIEW ods_reader AS
WITH RECURSIVE ods AS (
    SELECT c.oid, c.relname::text AS relname FROM pg_class c
     WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname LIKE 'ods\_%'),
view_dep AS (
    SELECT DISTINCT w.ev_class AS view_oid, d.refobjid AS base
      FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
     WHERE w.ev_class <> d.refobjid),
-- relations that carry raw ODS rows: the ODS tables, and the views over them (a view on the list stays tainted for
-- its readers, except dim_campaign and dim_store_category_space, which are the DIM layer)
tainted (oid, relname, kind) AS (
    SELECT oid, relname, 'table' FROM ods
    UNION
    SELECT v.oid, v.relname::text, 'view' FROM tainted t JOIN view_dep d ON d.base = t.oid JOIN pg_class v ON v.oid = d.view_oid
     WHERE v.relnamespace = 'retail_mid'::regnamespace AND t.relname NOT IN ('dim_campaign', 'dim_store_category_space'))
SELECT 'view'::text AS kind, v.relname::text AS reader, string_agg(DISTINCT t.relname, ', ' ORDER BY t.relname) AS reads
  FROM view_dep d JOIN tainted t ON t.oid = d.base JOIN pg_class v ON v.oid = d.view_oid
 WHERE v.relnamespace = 'retail_mid'::regnamespace AND t.relname NOT IN ('dim_campaign', 'dim_store_category_space')
 GROUP BY v.relname
UNION ALL
SELECT 'function', p.proname::text, string_agg(DISTINCT t.relname, ', ' ORDER BY t.relname)
  FROM pg_proc p JOIN (SELECT DISTINCT relname FROM tainted WHERE relname NOT IN ('dim_campaign', 'dim_store_category_space')) t
    ON coalesce(pg_get_function_sqlbody(p.oid), p.prosrc) ~ ('\m' || t.relname || '\M')
 WHERE p.pronamespace = 'retail_mid'::regnamespace AND p.prolang IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
 GROUP BY p.proname
UNION ALL
SELECT 'tag rule', d.tag_name, 'rule_sql' FROM retail_mid.tag_definition d WHERE coalesce(d.rule_sql, '') ~ '\mods_'
UNION ALL
SELECT 'metric', m.atomic, 'expression' FROM retail_mid.metric_atomic m WHERE m.expression::text ~ '\mods_';

-- readers of the ODS that are not on the list: none
SELECT r.kind, r.reader, r.reads FROM ods_reader r
 WHERE NOT EXISTS (SELECT 1 FROM allowed_reader a WHERE a.kind = r.kind AND a.reader = r.reader) ORDER BY 1, 2;
-- entries of the list that read no ODS relation any more (keep the list exact): none
SELECT a.kind, a.reader FROM allowed_reader a
 WHERE NOT EXISTS (SELECT 1 FROM ods_reader r WHERE r.kind = a.kind AND r.reader = a.reader) ORDER BY 1, 2;
-- the consumers of issue 15 read the public layer: none of them is a reader
SELECT count(*) AS consumer_readers FROM ods_reader r
 WHERE r.reader ~ '^(replenish|suggested_|aipl_refresh|aipl_rule_signals|define_.*tags|evaluate_tags|reach_|dash_|tag_|audience_)';
-- how many readers per reason
SELECT a.why, count(*) AS readers FROM allowed_reader a GROUP BY 1 ORDER BY 1;

-- the test sees a consumer that reads the ODS: a function naming ods_site and a view over a keyed ODS view
CREATE FUNCTION retail_mid.pl_test_consumer(b text) RETURNS bigint LANGUAGE sql STABLE
RETURN (SELECT count(*) FROM retail_mid.ods_site s WHERE s.brand = b);
CREATE VIEW retail_mid.pl_test_tile AS SELECT brand, count(*) AS touches FROM retail_mid.campaign_touch_keyed GROUP BY brand;
CREATE VIEW retail_mid.pl_test_dim_reader AS SELECT brand, count(*) AS campaigns FROM retail_mid.dim_campaign GROUP BY brand;
SELECT r.kind, r.reader, r.reads FROM ods_reader r
 WHERE NOT EXISTS (SELECT 1 FROM allowed_reader a WHERE a.kind = r.kind AND a.reader = r.reader) ORDER BY 1, 2;
DROP VIEW retail_mid.pl_test_tile, retail_mid.pl_test_dim_reader;
DROP FUNCTION retail_mid.pl_test_consumer(text);

-- the shipped quality rules may read the ODS (they check it): the tables they check
SELECT count(*) FILTER (WHERE table_name::text LIKE 'retail_mid.ods\_%') AS ods_quality_rules, count(*) AS quality_rules FROM retail_mid.quality_rule;
