-- rfm: RFM aggregates against plain SQL, tie-safe scoring, segment maps, snapshots and views, parallel and
-- partitionwise plans, bad input
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- order lines of 60 customers (0 to 5 orders of 1 to 3 lines; every tenth customer returns something),
-- dates 2024-01-01 .. 2024-07-19, so some lie after the as-of date 2024-06-30
CREATE TEMP TABLE rfm_lines AS
SELECT c AS customer, format('O%s-%s', c, j) AS order_id, date '2024-01-01' + (c * 37 + j * 53) % 200 AS order_date,
       l AS line_no, ((c * 7 + j * 13 + l) % 50 + 0.25)::numeric AS amount
  FROM generate_series(1, 60) c, generate_series(1, c % 6) j, generate_series(1, 1 + (c + j) % 3) l
UNION ALL
SELECT c, format('R%s', c), date '2024-05-01' + c % 30, 1, -5.5 FROM generate_series(10, 60, 10) c;
SELECT count(*) AS lines, count(DISTINCT customer) AS customers, count(*) FILTER (WHERE order_date > '2024-06-30') AS after_as_of FROM rfm_lines;
-- the same data as dws_trade_customer_1d would hold it
CREATE TEMP TABLE rfm_daily AS
SELECT 'B1'::text AS brand, order_date AS dt, customer AS customer_key,
       count(DISTINCT order_id) FILTER (WHERE amount >= 0) AS orders, sum(amount) AS net_amount
  FROM rfm_lines GROUP BY order_date, customer;
-- plain SQL reference of the raw values
CREATE TEMP TABLE rfm_ref AS
SELECT customer,
       ('2024-06-30' - max(order_date) FILTER (WHERE amount >= 0))::int4 AS recency_days,
       count(DISTINCT order_id) FILTER (WHERE amount >= 0 AND order_date > date '2024-06-30' - 90)::int4 AS frequency,
       coalesce(sum(amount) FILTER (WHERE order_date > date '2024-06-30' - 90), 0)::float8 AS monetary,
       min(order_date) FILTER (WHERE amount >= 0) AS first_order_date, max(order_date) FILTER (WHERE amount >= 0) AS last_order_date
  FROM rfm_lines WHERE order_date <= '2024-06-30'
 GROUP BY customer HAVING count(*) FILTER (WHERE amount >= 0) > 0;
SELECT count(*) AS differences_lines FROM (
  (SELECT customer, (v).* FROM (SELECT customer, retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 90) v
                                  FROM rfm_lines GROUP BY customer) t WHERE v IS NOT NULL
   EXCEPT SELECT * FROM rfm_ref)
  UNION ALL
  (SELECT * FROM rfm_ref EXCEPT
   SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 90)).* FROM rfm_lines GROUP BY customer)) d;
-- customers without a sale on or before as_of get NULL (here: customers with only a return, or only later orders)
SELECT count(*) AS null_rows FROM (SELECT customer, retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 90) v FROM rfm_lines GROUP BY customer) t WHERE v IS NULL;
SELECT (SELECT count(DISTINCT customer) FROM rfm_lines) - (SELECT count(*) FROM rfm_ref) AS customers_without_sale_by_as_of;
-- bigint order ids and the daily form give the same answer
SELECT count(*) AS differences_int8 FROM (
  (SELECT customer, (v).* FROM (SELECT customer, retail_mid.rfm_agg(order_date, hashtext(order_id)::int8, amount, '2024-06-30', 90) v
                                  FROM rfm_lines GROUP BY customer) t WHERE v IS NOT NULL
   EXCEPT SELECT * FROM rfm_ref)
  UNION ALL
  (SELECT * FROM rfm_ref EXCEPT
   SELECT customer, (retail_mid.rfm_agg(order_date, hashtext(order_id)::int8, amount, '2024-06-30', 90)).* FROM rfm_lines GROUP BY customer)) d;
SELECT count(*) AS differences_daily FROM (
  (SELECT customer_key, (retail_mid.rfm_agg_daily(dt, orders, net_amount, '2024-06-30', 90)).* FROM rfm_daily GROUP BY customer_key
   HAVING retail_mid.rfm_agg_daily(dt, orders, net_amount, '2024-06-30', 90) IS NOT NULL
   EXCEPT SELECT * FROM rfm_ref)
  UNION ALL
  (SELECT * FROM rfm_ref EXCEPT
   SELECT customer_key, (retail_mid.rfm_agg_daily(dt, orders, net_amount, '2024-06-30', 90)).* FROM rfm_daily GROUP BY customer_key)) d;
SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 90)).* FROM rfm_lines WHERE customer IN (5, 10, 30) GROUP BY customer ORDER BY 1;

-- numeric amounts are read digit by digit: equal to round(amount, 4) for short and long numeric headers
SELECT v, (retail_mid.rfm_agg_daily(date '2024-06-01', 1, v, '2024-06-30', 90)).monetary = round(v, 4)::float8 AS exact
  FROM unnest(ARRAY[0, 0.0001, 0.00005, -0.00005, 0.00004999, 1e-10, 1.5, -7.5, 1234.5678, 123456789.12345,
                    99999999.99995, 10000000000000, -98765432101.23456, 0.12344999999, 20000.00015]::numeric[]) v
 GROUP BY v ORDER BY v;
SELECT count(*) AS float8_vs_numeric_differences FROM (
  SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount::float8, '2024-06-30', 90)).* FROM rfm_lines GROUP BY customer
  EXCEPT SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 90)).* FROM rfm_lines GROUP BY customer) d;
-- quantile scores against rank(): score = 1 + floor(k * #{values worse} / n); ties share a score
CREATE TEMP TABLE rfm_ref_scores AS
SELECT customer, recency_days, frequency, monetary,
       1 + (5 * (rank() OVER (ORDER BY recency_days DESC) - 1)) / count(*) OVER () AS r_score,
       1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) / count(*) OVER () AS f_score,
       1 + (5 * (rank() OVER (ORDER BY monetary) - 1)) / count(*) OVER () AS m_score
  FROM rfm_ref;
SELECT count(*) AS score_differences FROM (
  SELECT customer_key, r_score, f_score, m_score FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90)
  EXCEPT SELECT customer, r_score::int4, f_score::int4, m_score::int4 FROM rfm_ref_scores) d;
-- the order-line grain (dwd_trade_order_line_di shape) scores exactly like the daily grain
CREATE TEMP TABLE rfm_dwd AS SELECT 'B1'::text AS brand, order_date AS dt, customer AS customer_key, order_id, amount FROM rfm_lines;
SELECT count(*) AS lines_vs_daily_differences FROM (
  (SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_dwd', 'B1', '2024-06-30', 90, 'ten_segment', 'lines')
   EXCEPT SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90))
  UNION ALL
  (SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90)
   EXCEPT SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_dwd', 'B1', '2024-06-30', 90, 'ten_segment', 'lines'))) d;
SELECT frequency, count(*) AS customers, min(f_score) AS min_score, max(f_score) AS max_score
  FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90) GROUP BY 1 ORDER BY 1;
SELECT retail_mid.rfm_breaks(v, 4, false) AS asc_breaks, retail_mid.rfm_breaks(v, 4, true) AS desc_breaks
  FROM unnest(ARRAY[1, 1, 1, 2, 3, 3, 5, 8]::float8[]) v;
SELECT v, retail_mid.rfm_quantile_score(v, ARRAY[1, 2, 3]::float8[], false) AS asc_score,
       retail_mid.rfm_quantile_score(v, ARRAY[5, 3, 1]::float8[], true) AS desc_score
  FROM unnest(ARRAY[1, 2, 3, 5, 8]::float8[]) v;
-- ten-segment map against the usual rule table on the R and F scores
SELECT count(*) AS segment_differences FROM (
  SELECT customer_key, segment FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90)
  EXCEPT
  SELECT customer, CASE
      WHEN r_score <= 2 AND f_score <= 2 THEN 'Hibernating' WHEN r_score <= 2 AND f_score <= 4 THEN 'At Risk'
      WHEN r_score <= 2 THEN 'Can''t Lose Them' WHEN r_score = 3 AND f_score <= 2 THEN 'About To Sleep'
      WHEN r_score = 3 AND f_score = 3 THEN 'Need Attention' WHEN r_score IN (3, 4) AND f_score >= 4 THEN 'Loyal Customers'
      WHEN r_score = 4 AND f_score = 1 THEN 'Promising' WHEN r_score = 5 AND f_score = 1 THEN 'New Customers'
      WHEN f_score IN (2, 3) THEN 'Potential Loyalist' ELSE 'Champions' END
    FROM rfm_ref_scores) d;
-- every combination of scores has exactly one segment in both shipped maps
SELECT d.map_name, count(*) AS combinations, count(*) FILTER (WHERE n = 1) AS covered_once
  FROM retail_mid.rfm_segment_map_def d,
       LATERAL (SELECT r, f, m, (SELECT count(*) FROM retail_mid.rfm_segment_map s WHERE s.map_name = d.map_name
                                   AND r BETWEEN r_min AND r_max AND f BETWEEN f_min AND f_max AND m BETWEEN m_min AND m_max) n
                  FROM generate_series(1, d.k) r, generate_series(1, d.k) f, generate_series(1, d.k) m) c
 GROUP BY 1 ORDER BY 1;
-- eight classes: above/below the population average
SELECT count(*) AS eight_class_differences FROM (
  SELECT customer_key, segment FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90, 'eight_class')
  EXCEPT
  SELECT customer, (CASE WHEN monetary > avg(monetary) OVER () THEN '重要' ELSE '一般' END)
         || (CASE WHEN recency_days < avg(recency_days) OVER () THEN
                  CASE WHEN frequency > avg(frequency) OVER () THEN '价值' ELSE '发展' END
             ELSE CASE WHEN frequency > avg(frequency) OVER () THEN '保持' ELSE '挽留' END END) || '客户'
    FROM rfm_ref) d;
SELECT segment, count(*) FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90, 'eight_class') GROUP BY 1 ORDER BY 1;
-- per-brand fixed thresholds
INSERT INTO retail_mid.rfm_config VALUES ('B1', 'ten_segment', 5, 'threshold', '{30,60,90,120}', '{1,2,3,4}', '{20,40,80,160}');
SELECT count(*) AS threshold_differences FROM (
  SELECT customer_key, r_score, f_score, m_score FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90)
  EXCEPT
  SELECT customer, CASE WHEN recency_days <= 30 THEN 5 WHEN recency_days <= 60 THEN 4 WHEN recency_days <= 90 THEN 3
                        WHEN recency_days <= 120 THEN 2 ELSE 1 END,
         CASE WHEN frequency >= 4 THEN 5 WHEN frequency >= 3 THEN 4 WHEN frequency >= 2 THEN 3 WHEN frequency >= 1 THEN 2 ELSE 1 END,
         CASE WHEN monetary >= 160 THEN 5 WHEN monetary >= 80 THEN 4 WHEN monetary >= 40 THEN 3 WHEN monetary >= 20 THEN 2 ELSE 1 END
    FROM rfm_ref) d;
DELETE FROM retail_mid.rfm_config WHERE brand = 'B1';
-- a user map
INSERT INTO retail_mid.rfm_segment_map_def VALUES ('vip', 3, 'VIP or not');
INSERT INTO retail_mid.rfm_segment_map (map_name, segment, r_min, r_max, f_min, f_max, m_min, m_max) VALUES ('vip', 'VIP', 1, 3, 1, 3, 3, 3);
INSERT INTO retail_mid.rfm_config (brand, map_name, k, method) VALUES ('*', 'vip', 3, 'quantile');
SELECT segment, count(*) FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90, 'vip') GROUP BY 1 ORDER BY 1;

-- snapshots and views
SELECT retail_mid.rfm_refresh_from('pg_temp.rfm_daily', 'B1', '2024-03-31', 90);
SELECT retail_mid.rfm_refresh_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90);
SELECT retail_mid.rfm_refresh_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90) AS rerun_same_rows;
SELECT segment, customers, round(monetary::numeric, 2) AS monetary, round(customer_share::numeric, 4) AS customer_share,
       round(revenue_share::numeric, 4) AS revenue_share
  FROM retail_mid.rfm_segment_summary WHERE brand = 'B1' AND as_of = '2024-06-30' ORDER BY segment;
SELECT sum(customer_share) AS total_customer_share, round(sum(revenue_share)::numeric, 12) AS total_revenue_share
  FROM retail_mid.rfm_segment_summary WHERE brand = 'B1' AND as_of = '2024-06-30';
SELECT from_segment, to_segment, customers FROM retail_mid.rfm_segment_migration
 WHERE brand = 'B1' AND from_as_of = '2024-03-31' AND to_as_of = '2024-06-30' ORDER BY 1, 2;
SELECT sum(customers) = (SELECT count(DISTINCT customer_key) FROM retail_mid.rfm_snapshot WHERE brand = 'B1') AS migration_covers_everyone
  FROM retail_mid.rfm_segment_migration WHERE brand = 'B1' AND from_as_of = '2024-03-31' AND to_as_of = '2024-06-30';
SELECT job, rows_written, outcome FROM retail_mid.job_log WHERE job = 'rfm_refresh' ORDER BY job_id;
DELETE FROM retail_mid.rfm_snapshot WHERE brand = 'B1';

-- parallel plans: 20,000 customers, compared with the serial answers
CREATE TABLE rfm_big AS
SELECT c AS customer, format('O%s-%s', c, j) AS order_id, date '2023-01-01' + (hashint4(c * 31 + j) & 1023) % 700 AS order_date,
       ((hashint4(c * 7 + j * 3 + l) & 65535) / 100.0 - 20)::numeric(12, 2) AS amount
  FROM generate_series(1, 20000) c, generate_series(1, 1 + c % 7) j, generate_series(1, 1 + (c + j) % 2) l;
ALTER TABLE rfm_big SET (parallel_workers = 2);
ANALYZE rfm_big;
CREATE TABLE rfm_big_daily AS
SELECT 'B2'::text AS brand, order_date AS dt, customer AS customer_key,
       count(DISTINCT order_id) FILTER (WHERE amount >= 0) AS orders, sum(amount) AS net_amount
  FROM rfm_big GROUP BY 2, 3;
ALTER TABLE rfm_big_daily SET (parallel_workers = 2);
ANALYZE rfm_big_daily;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE rfm_big_serial AS SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_big GROUP BY customer;
CREATE TEMP TABLE rfm_big_scores AS SELECT * FROM retail_mid.rfm_scores_from('rfm_big_daily', 'B2', '2024-06-30', 180);
CREATE TEMP TABLE rfm_big_breaks AS SELECT retail_mid.rfm_breaks(amount, 5, false) AS b FROM rfm_big;
CREATE TEMP TABLE rfm_big_collect AS SELECT retail_mid.rfm_collect(customer, order_date, order_id, amount, '2024-06-30', 180) AS s FROM rfm_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_big GROUP BY customer;
SELECT count(*) AS parallel_differences FROM (
  (SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_big GROUP BY customer
   EXCEPT SELECT * FROM rfm_big_serial)
  UNION ALL
  (SELECT * FROM rfm_big_serial
   EXCEPT SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_big GROUP BY customer)) d;
RESET enable_hashagg;
EXPLAIN (COSTS OFF) SELECT retail_mid.rfm_breaks(amount, 5, false) FROM rfm_big;
SELECT (SELECT retail_mid.rfm_breaks(amount, 5, false) FROM rfm_big) = b AS parallel_breaks_equal FROM rfm_big_breaks;
SELECT count(*) AS parallel_score_differences FROM (
  (SELECT * FROM retail_mid.rfm_scores_from('rfm_big_daily', 'B2', '2024-06-30', 180) EXCEPT SELECT * FROM rfm_big_scores)
  UNION ALL
  (SELECT * FROM rfm_big_scores EXCEPT SELECT * FROM retail_mid.rfm_scores_from('rfm_big_daily', 'B2', '2024-06-30', 180))) d;
SELECT count(*) AS customers, count(DISTINCT segment) AS segments FROM rfm_big_scores;
-- the whole-population collection: a parallel plan (partial states serialised and combined) gives the serial bytes,
-- and its customers carry exactly rfm_agg's values (customers without a sale on or before as_of are left out)
EXPLAIN (COSTS OFF) SELECT retail_mid.rfm_collect(customer, order_date, order_id, amount, '2024-06-30', 180) FROM rfm_big;
SELECT (SELECT retail_mid.rfm_collect(customer, order_date, order_id, amount, '2024-06-30', 180) FROM rfm_big) = s AS parallel_collect_equal
  FROM rfm_big_collect;
CREATE TEMP TABLE rfm_big_collected AS
SELECT customer_key, recency_days, frequency, monetary, first_order_date, last_order_date
  FROM retail_mid.rfm_score_summary((SELECT s FROM rfm_big_collect), 5, 'quantile', NULL, NULL, NULL, array_fill(NULL::text, ARRAY[125]));
SELECT count(*) AS collect_vs_agg_differences FROM (
  (SELECT * FROM rfm_big_collected EXCEPT SELECT * FROM rfm_big_serial)
  UNION ALL (SELECT * FROM rfm_big_serial WHERE recency_days IS NOT NULL EXCEPT SELECT * FROM rfm_big_collected)) d;
SELECT (SELECT count(*) FROM rfm_big_collected) AS collected_customers,
       count(*) FILTER (WHERE recency_days IS NULL) AS customers_without_sale_before_as_of FROM rfm_big_serial;
-- the daily form over the big table agrees with the order lines
SELECT count(*) AS daily_vs_lines_differences FROM (
  SELECT customer_key, (retail_mid.rfm_agg_daily(dt, orders, net_amount, '2024-06-30', 180)).* FROM rfm_big_daily GROUP BY customer_key
  EXCEPT SELECT * FROM rfm_big_serial) d;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- partitionwise aggregation
CREATE TABLE rfm_part (customer int, order_id text, order_date date, amount numeric) PARTITION BY HASH (customer);
CREATE TABLE rfm_part_0 PARTITION OF rfm_part FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE rfm_part_1 PARTITION OF rfm_part FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO rfm_part SELECT customer, order_id, order_date, amount FROM rfm_big;
ANALYZE rfm_part;
SET enable_partitionwise_aggregate = on; SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_part GROUP BY customer;
SELECT count(*) AS partitionwise_differences FROM (
  SELECT customer, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_part GROUP BY customer
  EXCEPT SELECT * FROM rfm_big_serial) d;
EXPLAIN (COSTS OFF) SELECT customer % 10, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_part GROUP BY 1;
SELECT count(*) AS partial_partitionwise_differences FROM (
  SELECT customer % 10, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM rfm_part GROUP BY 1
  EXCEPT
  SELECT g, (retail_mid.rfm_agg(order_date, order_id, amount, '2024-06-30', 180)).* FROM (SELECT customer % 10 AS g, * FROM rfm_big) t GROUP BY 1) d;
SELECT (SELECT retail_mid.rfm_breaks(amount, 5, false) FROM rfm_part) = b AS partitionwise_breaks_equal FROM rfm_big_breaks;
EXPLAIN (COSTS OFF) SELECT retail_mid.rfm_collect(customer, order_date, order_id, amount, '2024-06-30', 180) FROM rfm_part;
SELECT (SELECT retail_mid.rfm_collect(customer, order_date, order_id, amount, '2024-06-30', 180) FROM rfm_part) = s AS partitionwise_collect_equal
  FROM rfm_big_collect;
RESET enable_partitionwise_aggregate; RESET max_parallel_workers_per_gather;
DROP TABLE rfm_big, rfm_big_daily, rfm_part;

-- bad input
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', NULL::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', 'NaN'::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 0) FROM (VALUES ('2024-06-01'::date, 'o1', 1::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, NULL, 90) FROM (VALUES ('2024-06-01'::date, 'o1', 1::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, 'infinity', 90) FROM (VALUES ('2024-06-01'::date, 'o1', 1::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('infinity'::date, 'o1', 1::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) AS only_returns FROM (VALUES ('2024-06-01'::date, 'o1', -3::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) AS future_only FROM (VALUES ('2024-07-01'::date, 'o1', 3::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) AS null_ids_skipped FROM (VALUES (NULL::date, 'o1', 3::float8), ('2024-06-01', NULL, 3), ('2024-06-01', 'o2', 3)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) AS no_rows FROM (VALUES ('2024-06-01'::date, 'o1', 3::float8)) v(d, o, a) WHERE false;
SELECT retail_mid.rfm_agg_daily(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, -1::int8, 1::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, asof, 90) FROM (VALUES ('2024-06-01'::date, 'o1', 1::float8, '2024-06-30'::date), ('2024-06-02', 'o2', 1, '2024-07-30')) v(d, o, a, asof);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', 1e300::float8)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', 'NaN'::numeric)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', '-Infinity'::numeric)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', 1e20::numeric)) v(d, o, a);
SELECT retail_mid.rfm_agg(d, o, a, '2024-06-30', 90) FROM (VALUES ('2024-06-01'::date, 'o1', NULL::numeric)) v(d, o, a);
SELECT retail_mid.rfm_breaks(v, 1, false) FROM (VALUES (1::float8)) t(v);
SELECT retail_mid.rfm_breaks(v, 5, false) IS NULL AS empty_breaks FROM (VALUES (1::float8)) t(v) WHERE false;
SELECT retail_mid.rfm_quantile_score('NaN', ARRAY[1]::float8[], false);
SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90, 'nope');
SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', -5);
SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', NULL, 90);
SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90, 'ten_segment', 'weekly');
SELECT count(*) AS before_data FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2020-01-01', 90);
SELECT count(*) AS unknown_brand FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'nobody', '2024-06-30', 90);
SELECT * FROM retail_mid.rfm_score_summary('\x0001'::bytea, 5, 'quantile', NULL, NULL, NULL, array_fill(NULL::text, ARRAY[125]));
SELECT * FROM retail_mid.rfm_score_summary((SELECT retail_mid.rfm_collect(c, d, o, a, '2024-06-30', 90) FROM (VALUES (1, '2024-06-01'::date, 'o1', 1::float8)) v(c, d, o, a)),
                                           5, 'median', NULL, NULL, NULL, array_fill(NULL::text, ARRAY[125]));
SELECT * FROM retail_mid.rfm_score_summary(NULL, 5, 'quantile', NULL, NULL, NULL, array_fill(NULL::text, ARRAY[8]));
SELECT * FROM retail_mid.rfm_score_summary((SELECT retail_mid.rfm_collect(c, d, o, a, '2024-06-30', 90) FROM (VALUES (1, '2024-06-01'::date, 'o1', 1::float8)) v(c, d, o, a)),
                                           2, 'threshold', '{1}', '{1,2}', '{1}', array_fill(NULL::text, ARRAY[8]));
SELECT count(*) AS null_summary_no_rows FROM retail_mid.rfm_score_summary(NULL, 2, 'average', NULL, NULL, NULL, array_fill(NULL::text, ARRAY[8]));
SELECT retail_mid.rfm_collect(c, d, o, a, '2024-06-30', 90) IS NULL AS collect_no_rows FROM (VALUES (1, '2024-06-01'::date, 'o1', 1::float8)) v(c, d, o, a) WHERE false;
SELECT retail_mid.rfm_collect(c, d, o, a, '2024-06-30', -1) FROM (VALUES (1, '2024-06-01'::date, 'o1', 1::float8)) v(c, d, o, a);
SELECT retail_mid.rfm_collect(c, d, o, a, '2024-06-30', 90) FROM (VALUES (1, '2024-06-01'::date, 'o1', NULL::numeric)) v(c, d, o, a);
SELECT retail_mid.rfm_collect_daily(c, d, o, a, '2024-06-30', 90) FROM (VALUES (1, '2024-06-01'::date, -2::int8, 1::numeric)) v(c, d, o, a);
SELECT retail_mid.rfm_collect_td(c, f, l, o, a, '2024-06-30') FROM (VALUES (1, '2024-06-01'::date, '2024-07-02'::date, 2::int8, 1::numeric)) v(c, f, l, o, a);
SELECT retail_mid.rfm_collect_td(c, f, l, o, a, '2024-06-30') FROM (VALUES (1, '2024-06-03'::date, '2024-06-02'::date, 2::int8, 1::numeric)) v(c, f, l, o, a);
UPDATE retail_mid.rfm_config SET k = 3 WHERE brand = '*' AND map_name = 'ten_segment';
SELECT * FROM retail_mid.rfm_scores_from('pg_temp.rfm_daily', 'B1', '2024-06-30', 90);
UPDATE retail_mid.rfm_config SET k = 5 WHERE brand = '*' AND map_name = 'ten_segment';
INSERT INTO retail_mid.rfm_config VALUES ('B9', 'ten_segment', 5, 'threshold', '{1,2}', '{1,2,3,4}', '{1,2,3,4}');
DELETE FROM retail_mid.rfm_segment_map_def WHERE map_name = 'vip';
SELECT count(*) AS vip_config_left FROM retail_mid.rfm_config WHERE map_name = 'vip';
