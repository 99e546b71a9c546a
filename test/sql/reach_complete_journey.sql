-- reach_complete_journey: on Dunnhumby's Complete Journey, campaigns received and coupons redeemed become
-- boolean tags (one per campaign), spend becomes a numeric tag, and the audience "received campaign X AND NOT
-- redeemed X AND monetary in the top 20%" is counted on bitmaps and checked against plain SQL over the raw files
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_reach');
-- fresh statistics: planned on statistics from before the load, the spend rule's join can take many minutes
ANALYZE retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_campaign_touch, retail_mid.customer_key;
SELECT retail_mid.define_campaign_tags('cj_reach', 'cjr_') AS campaign_tags;
-- spend per household from the ODS lines (a line's amount is sales_value exactly)
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, value_type, rule_sql, description) VALUES
 ('cjr_monetary', '消费者价值', '价值', '消费者价值', 'numeric',
  $$SELECT k.customer_key, s.spend
      FROM (SELECT o.id_type, o.customer_id, sum(l.quantity * l.unit_price - l.discount) AS spend
              FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
             WHERE o.brand = 'cj_reach' GROUP BY o.id_type, o.customer_id) s
      JOIN retail_mid.customer_key k ON k.id_type = s.id_type AND k.id_value = s.customer_id$$, 'Spend of the Complete Journey sample.');
SELECT retail_mid.evaluate_tags((SELECT array_agg(tag_name) FROM retail_mid.tag_definition WHERE tag_name LIKE 'cjr\_%')) > 0 AS evaluated;
RESET client_min_messages;
SELECT count(*) FILTER (WHERE tag_name LIKE 'cjr\_received\_%') AS received_tags,
       count(*) FILTER (WHERE tag_name LIKE 'cjr\_redeemed\_%') AS redeemed_tags
  FROM retail_mid.tag_definition WHERE tag_name LIKE 'cjr\_%';

-- the reference reads the raw files, not the ODS
CREATE TEMP TABLE cjr_camp (campaign_id text, household_id text);
CREATE TEMP TABLE cjr_redeem (household_id text, coupon_upc text, campaign_id text, redemption_date text);
CREATE TEMP TABLE cjr_tx (household_id text, store_id text, basket_id text, product_id text, quantity text, sales_value numeric,
                          retail_disc text, coupon_disc text, coupon_match_disc text, week text, ts text);
SELECT format('COPY cjr_camp FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', 'gzip -cdf ' || :'data_dir' || '/completejourney/campaigns.csv.gz') AS c1,
       format('COPY cjr_redeem FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', 'gzip -cdf ' || :'data_dir' || '/completejourney/coupon_redemptions.csv.gz') AS c2,
       format('COPY cjr_tx FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', 'gzip -cdf ' || :'data_dir' || '/completejourney/transactions_sample.csv.gz') AS c3 \gset
:c1;
:c2;
:c3;
-- campaign X: the one received by the most households (18)
SELECT campaign_id AS x FROM cjr_camp GROUP BY campaign_id ORDER BY count(*) DESC, campaign_id LIMIT 1 \gset
SELECT :'x' AS campaign_x;
-- top 20% by spend: spend >= the 80th percentile (percentile_disc: an actual household's spend) of the households
-- with baskets; every household tied at the threshold is in
CREATE TEMP TABLE cjr_spend AS SELECT household_id, sum(sales_value) AS spend FROM cjr_tx GROUP BY household_id;
SELECT percentile_disc(0.8) WITHIN GROUP (ORDER BY spend) AS threshold FROM cjr_spend \gset
SELECT :threshold AS threshold, retail_mid.tag_percentile('cjr_monetary', 0.8) = :threshold AS tag_percentile_agrees,
       count(*) FILTER (WHERE spend >= :threshold) AS top_20, count(*) AS households,
       count(*) FILTER (WHERE spend = :threshold) AS tied_at_threshold
  FROM cjr_spend;
CREATE TEMP TABLE cjr_reference AS
SELECT DISTINCT btrim(c.household_id) AS household_id FROM cjr_camp c
 WHERE c.campaign_id = :'x'
   AND NOT EXISTS (SELECT 1 FROM cjr_redeem r WHERE r.household_id = c.household_id AND r.campaign_id = :'x')
   AND EXISTS (SELECT 1 FROM cjr_spend s WHERE s.household_id = c.household_id AND s.spend >= :threshold);

SELECT format('cjr_received_%s AND NOT cjr_redeemed_%s AND cjr_monetary >= %s', :'x', :'x',
              retail_mid.tag_percentile('cjr_monetary', 0.8)) AS expr \gset
SELECT :'expr' AS expression;
SELECT retail_mid.audience_count(:'expr') AS audience_count, (SELECT count(*) FROM cjr_reference) AS plain_sql;
-- the same members, not only the same count
SELECT count(*) AS differing FROM (
    (SELECT k FROM retail_mid.rb_iterate(retail_mid.audience(:'expr')) k
     EXCEPT SELECT k.customer_key FROM cjr_reference r JOIN retail_mid.customer_key k ON k.id_type = 'household_id' AND k.id_value = r.household_id)
    UNION ALL
    (SELECT k.customer_key FROM cjr_reference r JOIN retail_mid.customer_key k ON k.id_type = 'household_id' AND k.id_value = r.household_id
     EXCEPT SELECT k FROM retail_mid.rb_iterate(retail_mid.audience(:'expr')) k)) d;
-- each term against the raw files
SELECT retail_mid.audience_count('cjr_received_' || :'x') AS received,
       (SELECT count(DISTINCT household_id) FROM cjr_camp WHERE campaign_id = :'x') AS received_sql,
       retail_mid.audience_count('cjr_redeemed_' || :'x') AS redeemed,
       (SELECT count(DISTINCT household_id) FROM cjr_redeem WHERE campaign_id = :'x') AS redeemed_sql,
       retail_mid.audience_count('cjr_monetary >= ' || :threshold) AS top_20,
       (SELECT count(*) FROM cjr_spend WHERE spend >= :threshold) AS top_20_sql;
-- every campaign's received/redeemed tag against the files
SELECT count(*) AS campaigns_checked,
       count(*) FILTER (WHERE retail_mid.audience_count('cjr_received_' || c.campaign_id) <> c.n) AS received_wrong,
       count(*) FILTER (WHERE retail_mid.audience_count('cjr_redeemed_' || c.campaign_id)
                              <> (SELECT count(DISTINCT household_id) FROM cjr_redeem r WHERE r.campaign_id = c.campaign_id)) AS redeemed_wrong
  FROM (SELECT campaign_id, count(DISTINCT household_id) AS n FROM cjr_camp GROUP BY campaign_id) c;

-- bad input of the helpers
SELECT retail_mid.tag_percentile('cjr_monetary', 'NaN');
SELECT retail_mid.tag_percentile('cjr_monetary', 1.5);
SELECT retail_mid.tag_percentile('cjr_received_' || :'x', 0.5);
SELECT retail_mid.tag_percentile('no_such_tag', 0.5);
SELECT retail_mid.tag_percentile('cjr_monetary', NULL) IS NULL AS null_in_null_out;
SELECT retail_mid.define_campaign_tags('no_such_brand');
SELECT retail_mid.define_campaign_tags('cj_reach', 'bad prefix');

DELETE FROM retail_mid.tag_definition WHERE tag_name LIKE 'cjr\_%';
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
