-- lookalike_complete_journey: an honest evaluation of audience_lookalike on Dunnhumby's Complete Journey. The
-- redeemers of the campaign with the most redemptions (18) are split by a hash of the household: about 30% are
-- hidden, the rest is the seed. The features are what was known when the campaign started (2017-10-30): the
-- campaigns received that started by then, demographics, and spend and baskets before that day; no redemption tag.
-- Reported: recall of the hidden redeemers among the top k non-seed households, and the lift over a random pick of
-- k of them (expected recall k / candidates). Only what the method guarantees is asserted (k rows, no seed member,
-- ranks 1..k); the recall and lift are measured figures, printed for the record.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_look');
ANALYZE retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_campaign_touch, retail_mid.customer_key, retail_mid.ods_customer;
SELECT retail_mid.refresh_customer_brand() > 0 AS customers_by_brand;
SELECT retail_mid.define_campaign_tags('cj_look', 'cjl_') AS campaign_tags;
-- the raw files for the campaign dates and the split
CREATE TEMP TABLE cjl_desc (campaign_id text, campaign_type text, start_date date, end_date date);
CREATE TEMP TABLE cjl_redeem (household_id text, coupon_upc text, campaign_id text, redemption_date text);
SELECT format('COPY cjl_desc FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', 'gzip -cdf ' || :'data_dir' || '/completejourney/campaign_descriptions.csv.gz') AS c1,
       format('COPY cjl_redeem FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', 'gzip -cdf ' || :'data_dir' || '/completejourney/coupon_redemptions.csv.gz') AS c2 \gset
:c1;
:c2;
SELECT campaign_id AS x FROM cjl_redeem GROUP BY campaign_id ORDER BY count(DISTINCT household_id) DESC, campaign_id LIMIT 1 \gset
SELECT start_date AS x_start FROM cjl_desc WHERE campaign_id = :'x' \gset
-- hidden: the redeemers whose household hashes into 3 of 10 buckets (a fixed, data-independent rule)
CREATE TABLE public.cjl_hidden AS
SELECT k.customer_key FROM (SELECT DISTINCT btrim(household_id) AS h FROM cjl_redeem WHERE campaign_id = :'x') r
  JOIN retail_mid.customer_key k ON k.id_type = 'household_id' AND k.id_value = r.h
 WHERE abs(hashtext('cjl/' || r.h)) % 10 < 3;
GRANT SELECT ON public.cjl_hidden TO PUBLIC;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, scope, numeric_scale, rule_sql, description) VALUES
 ('cjl_holdout', '其他', '其他', 'boolean', 'brand', 2, $$SELECT customer_key, true, 'cj_look' AS brand FROM public.cjl_hidden$$, 'Hidden redeemers (evaluation only).'),
 ('cjl_spend_before', '其他', '其他', 'numeric', 'brand', 2,
  format($$SELECT k.customer_key, sum(l.quantity * l.unit_price - l.discount), o.brand
      FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.id_value = o.customer_id
     WHERE o.brand = 'cj_look' AND o.order_time < %L GROUP BY k.customer_key, o.brand$$, :'x_start'), 'Spend before the campaign.'),
 ('cjl_baskets_before', '其他', '其他', 'numeric', 'brand', 0,
  format($$SELECT k.customer_key, count(*), o.brand FROM retail_mid.ods_order o
      JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.id_value = o.customer_id
     WHERE o.brand = 'cj_look' AND o.order_time < %L GROUP BY k.customer_key, o.brand$$, :'x_start'), 'Baskets before the campaign.');
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, value_type, scope, rule_sql, description)
SELECT 'cjl_' || a, '客户信息', '基础信息', '基础信息', 'enum', 'brand',
       format($$SELECT k.customer_key, c.attributes ->> %L, c.brand FROM retail_mid.ods_customer c
                  JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = c.customer_id
                 WHERE c.brand = 'cj_look' AND c.attributes ->> %L IS NOT NULL$$, a, a), 'Demographics: ' || a
  FROM unnest(ARRAY['age', 'income', 'home_ownership', 'marital_status', 'household_size', 'kids_count']) a;
SELECT retail_mid.evaluate_tags((SELECT array_agg(tag_name) FROM retail_mid.tag_definition WHERE tag_name LIKE 'cjl\_%')) > 0 AS evaluated;
RESET client_min_messages;
-- the features: no redemption tag, no holdout; campaigns received only if they started by the campaign's start
SELECT array_agg(tag_name ORDER BY tag_name) AS features FROM retail_mid.tag_definition
 WHERE tag_name IN ('cjl_spend_before', 'cjl_baskets_before')
    OR tag_name IN (SELECT 'cjl_' || a FROM unnest(ARRAY['age', 'income', 'home_ownership', 'marital_status', 'household_size', 'kids_count']) a)
    OR tag_name IN (SELECT 'cjl_received_' || campaign_id FROM cjl_desc WHERE start_date <= :'x_start') \gset
SELECT cardinality(:'features'::text[]) AS feature_tags;
SELECT format('cjl_redeemed_%s AND NOT cjl_holdout', :'x') AS seed \gset
SELECT :'seed' AS seed_expression;

-- k = 500 of the brand's households outside the seed
CREATE TEMP TABLE cjl_top AS SELECT * FROM retail_mid.audience_lookalike(:'seed', 500, 'cj_look', :'features');
SELECT retail_mid.audience_count(:'seed', 'cj_look') AS seed,
       (SELECT count(*) FROM public.cjl_hidden) AS hidden,
       (SELECT count(*) FROM retail_mid.customer_brand WHERE brand = 'cj_look') - retail_mid.audience_count(:'seed', 'cj_look') AS candidates;
-- what the method guarantees
SELECT count(*) AS returned, count(DISTINCT rank) = count(*) AND min(rank) = 1 AND max(rank) = count(*) AS ranks_1_to_k,
       bool_and(NOT retail_mid.rb_contains(retail_mid.audience(:'seed', 'cj_look'), customer_key)) AS no_seed_member,
       bool_and(next_score IS NULL OR score >= next_score) AS ordered_by_score
  FROM (SELECT *, lead(score) OVER (ORDER BY rank) AS next_score FROM cjl_top) t;
-- the measured figures, at k = 100, 250 and 500; also without the campaign's own targeting (received_X), which every
-- redeemer has: then the method must find them from demographics, spend and the other campaigns alone
CREATE TEMP TABLE cjl_top_untargeted AS
SELECT * FROM retail_mid.audience_lookalike(:'seed', 500, 'cj_look', array_remove(:'features'::text[], 'cjl_received_' || :'x'));
SELECT v.features, k, hits, round(hits::numeric / hidden, 4) AS recall_at_k,
       round(k::numeric / candidates, 4) AS random_recall_at_k,
       round((hits::numeric / hidden) / (k::numeric / candidates), 2) AS lift
  FROM (VALUES ('all', 'cjl_top'), ('without received_' || :'x', 'cjl_top_untargeted')) v(features, tbl),
       LATERAL (SELECT k.k, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I t JOIN public.cjl_hidden h USING (customer_key) WHERE t.rank <= %s',
                                                                        v.tbl, k.k), false, true, '')))[1]::text::bigint AS hits,
                       (SELECT count(*) FROM public.cjl_hidden) AS hidden,
                       (SELECT count(*) FROM retail_mid.customer_brand WHERE brand = 'cj_look') - retail_mid.audience_count(:'seed', 'cj_look') AS candidates
                  FROM (VALUES (100), (250), (500)) k(k)) x
 ORDER BY 1, k;
-- the strongest features of the seed, for reading (TGI of the seed against the brand's customers)
SELECT tag, value, members, base_members, round(tgi::numeric, 1) AS tgi
  FROM retail_mid.audience_profile(:'seed', 'cj_look', :'features')
 WHERE members >= 20 ORDER BY tgi DESC, tag, value LIMIT 8;

DELETE FROM retail_mid.tag_definition WHERE tag_name LIKE 'cjl\_%';
DROP TABLE public.cjl_hidden;
-- leave the database as a fresh one: the households' keys of brand cj_look would match later tests' joins by
-- identifier value
SET client_min_messages = warning;
DROP EXTENSION retail_mid CASCADE;
RESET client_min_messages;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
