-- The whole retail_mid pipeline on the embedded synthetic default (data_dir empty) or on the public files.
\pset footer off
\pset null '-'
SET client_min_messages = warning;
CREATE EXTENSION retail_mid CASCADE;
SELECT :'data_dir' <> '' AS real_data \gset
\echo
\echo '=== retail_mid demo ==================================================================='
\if :real_data
\echo 'Loading the public data sets from' :'data_dir'
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_online_retail(:'data_dir' || '/online_retail.csv.gz');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_complete_journey(:'data_dir' || '/completejourney');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_cdnow(:'data_dir' || '/cdnow_elog.csv');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_orange_juice(:'data_dir');
SELECT load_id, rows_read, rows_loaded, rows_rejected FROM retail_mid.load_boston_tracts(:'data_dir' || '/geo/boston_tracts.csv');
\else
\echo 'No data directory given: generating the embedded synthetic default (seed 42, 5,000 customers, one year)'
SELECT retail_mid.generate_synthetic() AS synthetic_order_lines;
\endif
\echo
\echo '--- 1. Loads (ODS) ---'
SELECT source, brand, rows_read, rows_loaded, rows_rejected FROM retail_mid.ods_load ORDER BY load_id;

\echo '--- 2. Refresh of the public layer (DWD, DWS) ---'
SELECT retail_mid.refresh_all() AS rows_written;
SELECT rule, sum(lines) AS lines FROM retail_mid.dwd_trade_cleaning_1d GROUP BY rule ORDER BY rule;

\echo '--- 3. Trade per brand (DWS) ---'
SELECT s.brand, min(dt) AS first_day, max(dt) AS last_day, sum(orders) AS orders,
       round(sum(net_amount), 2) AS net_amount, round(sum(return_amount), 2) AS returns,
       (SELECT count(*) FROM retail_mid.dws_trade_customer_td c WHERE c.brand = s.brand) AS customers
  FROM retail_mid.dws_trade_store_1d s GROUP BY s.brand ORDER BY s.brand;

\echo '--- 4. Stores over the last 30 days (exact distinct customers from bitmaps) ---'
SELECT brand, store_id, orders, round(net_amount, 2) AS net_amount, customers
  FROM retail_mid.dws_trade_store_nd WHERE period_days = 30 ORDER BY net_amount DESC LIMIT 8;

\echo '--- 5. Top customers over the last 365 days ---'
SELECT brand, customer_key, orders_365d, round(net_amount_365d, 2) AS net_amount_365d, last_order_date
  FROM retail_mid.dws_trade_customer_nd ORDER BY net_amount_365d DESC LIMIT 5;

\echo '--- Job log ---'
SELECT job, outcome, rows_written, round(extract(epoch FROM duration)::numeric, 1) AS seconds
  FROM retail_mid.job_log ORDER BY job_id;
