-- loaders_public: CDNOW, Dominick's orange juice and the Boston tracts land in the ODS with their totals intact
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_read, rows_loaded, rows_rejected FROM retail_mid.load_cdnow(:'data_dir' || '/cdnow_elog.csv', 'lp_cdnow');
SELECT rows_read, rows_loaded, rows_rejected FROM retail_mid.load_orange_juice(:'data_dir', 'lp_oj');
SELECT rows_read, rows_loaded, rows_rejected FROM retail_mid.load_boston_tracts(:'data_dir' || '/geo/boston_tracts.csv', 'lp_boston');
SELECT retail_mid.refresh('1997-01-01', '1998-06-30') > 0 AS refreshed;
RESET client_min_messages;
-- the raw files, read independently
CREATE TEMP TABLE raw_cdnow (masterid int, sampleid int, date text, cds int, sales numeric);
SELECT format('COPY raw_cdnow FROM %L WITH (FORMAT csv, HEADER true)', :'data_dir' || '/cdnow_elog.csv') AS copy_cdnow \gset
:copy_cdnow;
SELECT (SELECT count(DISTINCT masterid) FROM raw_cdnow) AS customers_in_file,
       (SELECT count(DISTINCT customer_id) FROM retail_mid.ods_order WHERE brand = 'lp_cdnow') AS customers_loaded,
       (SELECT sum(sales) FROM raw_cdnow) AS sales_in_file,
       (SELECT sum(quantity * unit_price - discount) FROM retail_mid.ods_order_line WHERE brand = 'lp_cdnow') AS sales_loaded,
       (SELECT sum(sales) FROM raw_cdnow WHERE sales > 0) = (SELECT sum(net_amount) FROM retail_mid.dws_trade_customer_td WHERE brand = 'lp_cdnow') AS dws_matches_file;
SELECT count(*) AS oj_store_weeks, count(DISTINCT store_id) AS stores, sum(quantity) AS units
  FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l USING (brand, order_id) WHERE o.brand = 'lp_oj';
SELECT count(*) AS oj_promotion_weeks, count(*) FILTER (WHERE display) AS deal_weeks, count(*) FILTER (WHERE feature) AS feature_weeks
  FROM retail_mid.ods_promotion WHERE brand = 'lp_oj';
SELECT count(*) AS tracts, sum(population) AS population, count(*) FILTER (WHERE income IS NULL) AS tracts_without_income,
       count(*) FILTER (WHERE GeometryType(geom) IN ($$POLYGON$$, $$MULTIPOLYGON$$)) AS polygons
  FROM retail_mid.ods_demand_zone WHERE brand = 'lp_boston';
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
