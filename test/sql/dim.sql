-- dim: the DIM layer: the NRF 4-5-4 and ISO calendars, editable holidays, SCD type 2 history of categories and
-- regions, the DWD and DWS labelled as of the order date, reconciled with plain SQL (synthetic and Complete Journey).
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;

-- NRF 4-5-4: known fiscal years (NRF calendars: FY2023 = 2023-01-29 .. 2024-02-03, 53 weeks; FY2017 and FY2012 53 weeks)
SELECT fiscal_year, min(date_key) AS first_day, max(date_key) AS last_day, count(*) / 7 AS weeks, max(fiscal_weeks_in_year) AS weeks_declared,
       to_char(min(date_key), 'Dy') AS starts_on, to_char(max(date_key), 'Dy') AS ends_on
  FROM retail_mid.dim_calendar WHERE fiscal_year IN (2012, 2016, 2017, 2022, 2023, 2024) GROUP BY fiscal_year ORDER BY 1;
-- every fiscal year of the table: whole weeks from Sunday to Saturday, 52 or 53, contiguous
SELECT count(*) AS fiscal_years, count(*) FILTER (WHERE weeks = 53) AS long_years,
       bool_and(days = 7 * weeks AND weeks IN (52, 53) AND extract(dow FROM first_day) = 0) AS whole_weeks
  FROM (SELECT fiscal_year, count(*) AS days, max(fiscal_week) AS weeks, min(date_key) AS first_day
          FROM retail_mid.dim_calendar WHERE fiscal_year BETWEEN 1980 AND 2069 GROUP BY fiscal_year) y;
-- the 4-5-4 pattern: weeks per fiscal month in a 52- and a 53-week year
SELECT fiscal_year, string_agg((n / 7)::text, '-' ORDER BY fiscal_month) AS weeks_per_month
  FROM (SELECT fiscal_year, fiscal_month, count(*) AS n FROM retail_mid.dim_calendar WHERE fiscal_year IN (2022, 2023)
         GROUP BY 1, 2) m GROUP BY 1 ORDER BY 1;
SELECT retail_mid.nrf_fiscal_year_end(2023) AS fy2023_end, retail_mid.nrf_fiscal_year_end(2024) AS fy2024_end;
-- ISO weeks computed by the Thursday rule equal PostgreSQL's extract(isoyear / week / isodow), on every day
SELECT count(*) AS days,
       count(*) FILTER (WHERE iso_year <> extract(isoyear FROM date_key) OR iso_week <> extract(week FROM date_key)
                           OR iso_day_of_week <> extract(isodow FROM date_key) OR quarter <> extract(quarter FROM date_key)
                           OR week_start <> date_trunc('week', date_key)::date) AS mismatches
  FROM retail_mid.dim_calendar;
SELECT date_key, iso_year, iso_week, fiscal_year, fiscal_quarter, fiscal_month, fiscal_week, is_holiday, holidays
  FROM retail_mid.dim_date WHERE date_key IN ('2021-01-03', '2024-02-03', '2024-02-04', '2024-10-01', '2024-12-25') ORDER BY 1;
-- holidays are data: a user row appears in dim_date
INSERT INTO retail_mid.dim_holiday (country, holiday_date, name) VALUES ('CN', '2024-02-10', 'Spring Festival');
SELECT is_holiday, holidays FROM retail_mid.dim_date WHERE date_key = '2024-02-10';
SELECT retail_mid.dim_calendar_fill('2024-01-01', '2024-01-31') AS already_there;
SELECT retail_mid.dim_calendar_fill('2024-02-01', '2024-01-31');
SELECT retail_mid.dim_calendar_fill(NULL, '2024-01-31');

-- SCD type 2: a category change and a region change keep the old versions
SET client_min_messages = warning;
SELECT retail_mid.generate_synthetic(seed => 3, customers => 300, days => 90, orders_per_day => 40, stores => 6,
                                     skus => 60, start_date => '2024-01-01', brand => 'dim_test');
RESET client_min_messages;
SELECT retail_mid.dim_refresh('2024-01-01') > 0 AS first_refresh;
SELECT retail_mid.dim_refresh('2024-01-01') AS rerun_writes_nothing;
UPDATE retail_mid.ods_product SET category_l1 = 'Snacks', category_l2 = 'Snacks 1' WHERE brand = 'dim_test' AND sku_id = 'P000001';
UPDATE retail_mid.ods_site SET attributes = '{"region": "East"}' WHERE brand = 'dim_test' AND site_id = 'S0001';
SELECT retail_mid.dim_refresh('2024-02-15') AS rows_written;
SELECT retail_mid.dim_refresh('2024-02-15') AS rerun_writes_nothing;
SELECT sku_id, valid_from, valid_to, is_current, category_l1, category_l2, category_l3
  FROM retail_mid.dim_product WHERE brand = 'dim_test' AND sku_id = 'P000001' ORDER BY valid_from;
SELECT site_id, valid_from, valid_to, is_current, region, site_type FROM retail_mid.dim_site
 WHERE brand = 'dim_test' AND site_id IN ('S0001', 'S0002') ORDER BY site_id, valid_from;
-- the state at a past date
SELECT (SELECT category_l1 FROM retail_mid.dim_product_at('2024-02-14') WHERE brand = 'dim_test' AND sku_id = 'P000001') AS on_feb_14,
       (SELECT category_l1 FROM retail_mid.dim_product_at('2024-02-15') WHERE brand = 'dim_test' AND sku_id = 'P000001') AS on_feb_15,
       (SELECT region FROM retail_mid.dim_site_at('2023-06-01') WHERE brand = 'dim_test' AND site_id = 'S0001') AS region_2023;
-- one version per key and day, no gaps: the versions of every key tile [1900-01-01, 9999-12-31)
SELECT count(*) AS keys_with_gaps FROM (
    SELECT brand, sku_id, valid_from, lag(valid_to) OVER (PARTITION BY brand, sku_id ORDER BY valid_from) AS prev_to, valid_to, is_current
      FROM retail_mid.dim_product) v
 WHERE (prev_to IS NULL AND valid_from <> '1900-01-01') OR prev_to <> valid_from OR (is_current <> (valid_to = '9999-12-31'));
-- a second change on the same day replaces the day's version
UPDATE retail_mid.ods_product SET category_l2 = 'Snacks 2' WHERE brand = 'dim_test' AND sku_id = 'P000001';
SELECT retail_mid.dim_refresh('2024-02-15') > 0 AS replaced;
SELECT count(*) AS versions, max(category_l2) FILTER (WHERE is_current) AS current_l2
  FROM retail_mid.dim_product WHERE brand = 'dim_test' AND sku_id = 'P000001';
SELECT retail_mid.dim_refresh(NULL);
SELECT retail_mid.dim_refresh('infinity');

-- the DWD and DWS are labelled as of the order date
SET client_min_messages = warning;
SELECT retail_mid.refresh('2024-01-01', '2024-03-30') > 0 AS refreshed;
RESET client_min_messages;
SELECT category_l1, dt < '2024-02-15' AS before_change, count(*) AS lines
  FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'dim_test' AND sku_id = 'P000001' GROUP BY 1, 2 ORDER BY 2 DESC, 1;
SELECT store_region, dt < '2024-02-15' AS before_change, count(DISTINCT dt) > 0 AS has_days
  FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'dim_test' AND store_id = 'S0001' GROUP BY 1, 2 ORDER BY 2 DESC, 1;
-- reconciliation with plain SQL: every DWD line's labels from the ODS product / site and the versions' dates
WITH ref AS (
    SELECT d.order_id, d.line_no,
           CASE WHEN d.sku_id <> 'P000001' THEN p.category_l1 WHEN d.dt >= '2024-02-15' THEN 'Snacks' ELSE 'Beverage' END AS c1,
           CASE WHEN d.sku_id <> 'P000001' THEN p.category_l2 WHEN d.dt >= '2024-02-15' THEN 'Snacks 2' ELSE 'Beverage 2' END AS c2,
           CASE WHEN d.store_id = 'S0001' AND d.dt >= '2024-02-15' THEN 'East'
                ELSE (SELECT r.site_name FROM retail_mid.ods_site f JOIN retail_mid.ods_site r ON r.brand = f.brand AND r.site_id = f.parent_site_id
                       WHERE f.brand = s.brand AND f.site_id = s.parent_site_id) END AS region
      FROM retail_mid.dwd_trade_order_line_di d
      JOIN retail_mid.ods_product p ON p.brand = d.brand AND p.sku_id = d.sku_id
      LEFT JOIN retail_mid.ods_site s ON s.brand = d.brand AND s.site_id = d.store_id
     WHERE d.brand = 'dim_test')
SELECT count(*) AS lines,
       count(*) FILTER (WHERE (d.category_l1, d.category_l2, d.store_region) IS DISTINCT FROM (ref.c1, ref.c2, ref.region)) AS mismatches,
       count(DISTINCT d.store_region) AS regions, count(DISTINCT d.category_l1) AS categories
  FROM retail_mid.dwd_trade_order_line_di d JOIN ref USING (order_id, line_no) WHERE d.brand = 'dim_test';
-- DWS by category and region equals the DWD summed in plain SQL
SELECT (SELECT count(*) FROM (
          SELECT category_l1, category_l2, store_region, sum(amount) AS net FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'dim_test' GROUP BY 1, 2, 3
          EXCEPT
          SELECT category_l1, category_l2, store_region, sum(net_amount) FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'dim_test' GROUP BY 1, 2, 3) x) AS sku_store_mismatches,
       (SELECT count(*) FROM (
          SELECT dt, store_region, sum(amount) AS net FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'dim_test' GROUP BY 1, 2
          EXCEPT
          SELECT dt, store_region, sum(net_amount) FROM retail_mid.dws_trade_store_1d WHERE brand = 'dim_test' GROUP BY 1, 2) x) AS store_mismatches;
-- the metric registry rolls up by category: a granularity on the DWD's category column
INSERT INTO retail_mid.metric_granularity (granularity, dimensions, description) VALUES ('dim_category', '{brand,category_l1}', 'Brand x category level 1.');
SELECT count(*) AS customers, count(*) FILTER (WHERE customer_key IS NULL) AS unkeyed,
       count(DISTINCT member_level) AS levels, count(*) FILTER (WHERE home_store_id IS NOT NULL) AS with_home_store
  FROM retail_mid.dim_customer WHERE brand = 'dim_test';
-- each customer carries the key of its identifier in its brand's namespace (customer_key_of, the public mapping)
SELECT count(*) AS wrong_keys
  FROM retail_mid.dim_customer d JOIN retail_mid.ods_customer c ON c.brand = d.brand AND md5(c.customer_id) = d.customer_id_hash
 WHERE d.brand = 'dim_test' AND d.customer_key IS DISTINCT FROM retail_mid.customer_key_of(c.id_type, c.customer_id, c.brand);
SELECT count(*) AS stores, count(*) FILTER (WHERE geom IS NOT NULL) AS located FROM retail_mid.dim_store WHERE brand = 'dim_test' AND is_current;
SELECT price_band, count(*) FROM retail_mid.dim_product WHERE brand = 'dim_test' AND is_current GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE launch_date IS NOT NULL) AS launched, count(*) AS products
  FROM retail_mid.dim_product WHERE brand = 'dim_test' AND is_current;

-- Complete Journey: departments and commodities are categories l1 and l2
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = warning;
SELECT rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney', 'cj_dim');
SELECT retail_mid.refresh('2017-01-01', '2017-12-31') > 0 AS refreshed;
RESET client_min_messages;
CREATE TEMP TABLE raw_products (product_id text, manufacturer_id text, department text, brand text, product_category text,
                                product_type text, package_size text);
SELECT retail_mid.stage_csv(:'data_dir' || '/completejourney/products.csv.gz', 'pg_temp.raw_products', '*') > 0 AS staged;
WITH ref AS (
    SELECT coalesce(nullif(btrim(r.department), ''), 'unknown') AS c1, coalesce(nullif(btrim(r.product_category), ''), 'unknown') AS c2,
           sum(d.amount) AS net, count(*) AS lines
      FROM retail_mid.dwd_trade_order_line_di d LEFT JOIN raw_products r ON btrim(r.product_id) = d.sku_id
     WHERE d.brand = 'cj_dim' GROUP BY 1, 2),
got AS (SELECT category_l1 AS c1, category_l2 AS c2, sum(amount) AS net, count(*) AS lines
          FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'cj_dim' GROUP BY 1, 2),
dws AS (SELECT category_l1 AS c1, category_l2 AS c2, sum(net_amount) AS net
          FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'cj_dim' GROUP BY 1, 2)
SELECT (SELECT count(*) FROM ref) AS categories, (SELECT count(DISTINCT c1) FROM ref) AS departments,
       (SELECT count(*) FROM ref FULL JOIN got USING (c1, c2) WHERE ref.net IS DISTINCT FROM got.net OR ref.lines IS DISTINCT FROM got.lines) AS dwd_mismatches,
       (SELECT count(*) FROM ref FULL JOIN dws USING (c1, c2) WHERE ref.net IS DISTINCT FROM dws.net) AS dws_mismatches;
SELECT category_l1, round(sum(amount)) AS net FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'cj_dim'
 GROUP BY 1 ORDER BY sum(amount) DESC LIMIT 5;
\else
\echo SKIPPED: RETAIL_MID_DATA is not set, the Complete Journey reconciliation did not run
\endif
