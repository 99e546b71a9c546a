-- Benchmark: the full DWS build against the same tables written by hand as one INSERT ... SELECT ... GROUP BY
-- per table (same run, same data), the bare GROUP BY of the largest table as the floor, and a one-day
-- incremental refresh against the full rebuild. Variables: lines (target order lines, default 10 million).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT coalesce(nullif(:'lines', ''), '10000000')::bigint AS lines \gset
-- two years; about 2.23 lines per order; one customer per 10 lines; stores and SKUs scale too
SELECT greatest(1, round(:lines / 2.23 / 730))::int AS opd, greatest(1000, :lines / 10)::int AS customers,
       greatest(10, least(400, :lines / 50000))::int AS stores, greatest(500, least(20000, :lines / 500))::int AS skus \gset
\echo generating :lines order lines (:opd orders a day over 730 days, :customers customers, :stores stores, :skus SKUs) ...
SELECT retail_mid.generate_synthetic(seed => 1, customers => :customers, days => 730, orders_per_day => :opd,
       stores => :stores, skus => :skus, start_date => '2023-01-01', with_events => false, brand => 'bench') AS ods_lines;
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.build_dwd_trade('2023-01-01', '2024-12-30') AS dwd_lines;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS dwd_s \gset
VACUUM ANALYZE retail_mid.dwd_trade_order_line_di;

-- (1) retail_mid's DWS build (1d tables from one pass over orders, td tables), into empty tables
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.build_dws_trade('2023-01-01', '2024-12-30') AS dws_rows;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS ours_s \gset

-- (2) the peer: the same six tables, one hand-written INSERT ... SELECT ... GROUP BY each, from the DWD
-- (ordinary tables with the same keys and indexes, so both sides pay the same for writing)
DROP SCHEMA IF EXISTS peer CASCADE; CREATE SCHEMA peer; SET search_path = peer, public;
CREATE TABLE h_c1 (LIKE retail_mid.dws_trade_customer_1d INCLUDING ALL); CREATE TABLE h_s1 (LIKE retail_mid.dws_trade_store_1d INCLUDING ALL);
CREATE TABLE h_k1 (LIKE retail_mid.dws_trade_sku_store_1d INCLUDING ALL); CREATE TABLE h_ct (LIKE retail_mid.dws_trade_customer_td INCLUDING ALL);
CREATE TABLE h_st (LIKE retail_mid.dws_trade_store_td INCLUDING ALL); CREATE TABLE h_kt (LIKE retail_mid.dws_trade_sku_store_td INCLUDING ALL);
-- (the _1d parents are partitioned since issue 13 and carry their keys per partition: the same keys by hand)
ALTER TABLE h_c1 ADD PRIMARY KEY (dt, brand, customer_key); CREATE INDEX ON h_c1 (customer_key);
ALTER TABLE h_s1 ADD PRIMARY KEY (dt, brand, store_id);
ALTER TABLE h_k1 ADD PRIMARY KEY (dt, brand, store_id, sku_id); CREATE INDEX ON h_k1 (brand, store_id, sku_id);
SELECT clock_timestamp() AS t0 \gset
INSERT INTO h_c1 SELECT dt, brand, customer_key, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'),
       count(DISTINCT order_id) FILTER (WHERE line_type = 'return'), count(*), sum(quantity),
       coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0), coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0),
       sum(amount), min(order_time), max(order_time)
  FROM retail_mid.dwd_trade_order_line_di WHERE customer_key IS NOT NULL GROUP BY dt, brand, customer_key;
INSERT INTO h_s1 SELECT dt, brand, coalesce(store_id, '(none)'), count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'),
       count(DISTINCT order_id) FILTER (WHERE line_type = 'sale' AND customer_key IS NULL),
       count(DISTINCT order_id) FILTER (WHERE line_type = 'return'), count(*), sum(quantity),
       coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0), coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0),
       sum(amount), count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale'),
       coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE line_type = 'sale'), '{}')
  FROM retail_mid.dwd_trade_order_line_di GROUP BY dt, brand, coalesce(store_id, '(none)');
INSERT INTO h_k1 SELECT dt, brand, coalesce(store_id, '(none)'), sku_id, count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'),
       sum(quantity), coalesce(sum(quantity) FILTER (WHERE line_type = 'sale'), 0), coalesce(-sum(quantity) FILTER (WHERE line_type = 'return'), 0),
       coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0), coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0),
       sum(amount), count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale'),
       coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE line_type = 'sale'), '{}')
  FROM retail_mid.dwd_trade_order_line_di GROUP BY dt, brand, coalesce(store_id, '(none)'), sku_id;
INSERT INTO h_ct SELECT brand, customer_key, min(dt), max(dt), count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'),
       count(DISTINCT order_id) FILTER (WHERE line_type = 'return'), count(DISTINCT dt), sum(quantity),
       coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0), coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0), sum(amount)
  FROM retail_mid.dwd_trade_order_line_di WHERE customer_key IS NOT NULL GROUP BY brand, customer_key;
INSERT INTO h_st SELECT brand, coalesce(store_id, '(none)'), min(dt), max(dt), count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'),
       sum(amount), count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale'),
       coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE line_type = 'sale'), '{}')
  FROM retail_mid.dwd_trade_order_line_di GROUP BY brand, coalesce(store_id, '(none)');
INSERT INTO h_kt SELECT brand, coalesce(store_id, '(none)'), sku_id, min(dt), max(dt), count(DISTINCT dt),
       count(DISTINCT order_id) FILTER (WHERE line_type = 'sale'), sum(quantity), sum(amount),
       count(DISTINCT customer_key) FILTER (WHERE line_type = 'sale')
  FROM retail_mid.dwd_trade_order_line_di GROUP BY brand, coalesce(store_id, '(none)'), sku_id;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS peer_s \gset

-- (3) the floor: the bare GROUP BY of the largest table, nothing written
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS sku_store_days FROM (SELECT dt, store_id, sku_id, sum(quantity), sum(amount)
  FROM retail_mid.dwd_trade_order_line_di GROUP BY dt, store_id, sku_id) g;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS floor_s \gset

-- same answers
SELECT (SELECT count(*) FROM (SELECT dt, customer_key, orders, net_amount FROM retail_mid.dws_trade_customer_1d EXCEPT SELECT dt, customer_key, orders, net_amount FROM h_c1) x) AS customer_1d_diff,
       (SELECT count(*) FROM (SELECT dt, store_id, sku_id, orders, quantity, buyers FROM retail_mid.dws_trade_sku_store_1d EXCEPT SELECT dt, store_id, sku_id, orders, quantity, buyers FROM h_k1) x) AS sku_store_1d_diff,
       (SELECT count(*) FROM (SELECT store_id, orders, customers FROM retail_mid.dws_trade_store_td EXCEPT SELECT store_id, orders, customers FROM h_st) x) AS store_td_diff;

-- (4) incremental: the full refresh (DWD + DWS for two years) against a one-day refresh of a past day
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.refresh('2023-01-01', '2024-12-30') AS full_rows;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS full_s \gset
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.refresh('2024-06-12', '2024-06-12') AS one_day_rows;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS day_s \gset

\echo
\echo '=== DWS benchmark (' :lines 'order lines) ==='
SELECT round(:dwd_s::numeric, 1) AS dwd_build_s, round(:ours_s::numeric, 1) AS retail_mid_dws_s,
       round(:peer_s::numeric, 1) AS hand_written_s, round(:floor_s::numeric, 1) AS bare_group_by_s,
       round((:ours_s / :peer_s)::numeric, 2) AS ratio_vs_hand_written,
       round((:ours_s / :floor_s)::numeric, 2) AS ratio_vs_floor;
SELECT round(:full_s::numeric, 1) AS full_refresh_s, round(:day_s::numeric, 2) AS one_day_refresh_s,
       round((100 * :day_s / :full_s)::numeric, 2) AS one_day_percent_of_full;
