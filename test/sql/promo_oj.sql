SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- Promotion attribution on Dominick's orange juice: own-price elasticities, deal and feature uplifts per brand
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_loaded FROM retail_mid.load_orange_juice(:'data_dir', 'oj_promo_test');
RESET client_min_messages;
ANALYZE retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_promotion;
CREATE TEMP TABLE oj_el AS SELECT * FROM retail_mid.promo_elasticities('oj_promo_test');
SELECT e.sku_id, p.sku_name, e.observations, e.stores, round(e.price_elasticity::numeric, 2) AS price_elasticity,
       round(e.price_elasticity_se::numeric, 3) AS se, round(e.deal_uplift::numeric, 3) AS deal_uplift,
       round(e.feature_uplift::numeric, 3) AS feature_uplift
  FROM oj_el e JOIN retail_mid.ods_product p ON p.brand = 'oj_promo_test' AND p.sku_id = e.sku_id
 ORDER BY e.sku_id;
-- the elasticity is the slope of the within-store regression: check one brand against plain SQL (regr_slope
-- of demeaned logs is the same model when deal and feature are left out, so fit that variant both ways)
WITH p AS (SELECT store_id, ln(units) lu, ln(price) lp FROM retail_mid.promo_panel('oj_promo_test') WHERE sku_id = 'oj1'),
     d AS (SELECT lu - avg(lu) OVER (PARTITION BY store_id) lu, lp - avg(lp) OVER (PARTITION BY store_id) lp FROM p)
SELECT abs((retail_mid.ols(lu, ARRAY[lp])->'coef'->>0)::float8 - regr_slope(lu, lp)) < 1e-9 AS within_slope_ok FROM d;
-- attribution: base + deal + feature parts add up to the units of every promoted week
SELECT count(*) > 0 AS has_promoted_weeks,
       max(abs(base_units + deal_units + feature_units - units)) < 1e-6 AS parts_add_up,
       bool_and(base_units > 0) AS base_positive
  FROM retail_mid.promo_attribution('oj_promo_test');
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
