-- Benchmark: full RFM scoring with segments (retail_mid.rfm_scores_from, order-line grain) on 10M order lines of
-- ~1M customers, against (a) a bare GROUP BY customer computing max/count/sum and (b) the usual SQL with
-- count(DISTINCT order_id) and three ntile(5) windows plus the ten-segment CASE, in the same run on the same table;
-- and the same scoring from the to-date DWS table (rfm_scores_td) against (a).
-- Every contender writes its result into a temporary table, so all pay the same output cost.
-- Run: make bench BENCH=rfm [LINES=N]   (or psql -X -f test/bench/rfm.sql inside test/with_cluster.sh; -v workers=2)
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- make bench BENCH=rfm passes -v lines= (empty) when LINES is not set
\if :{?lines}
\else
\set lines ''
\endif
SELECT coalesce(nullif(:'lines', ''), '10000000')::int AS lines \gset
SET work_mem = '256MB';
-- serial by default (the same for every contender); -v workers=2 allows parallel plans for all of them
\if :{?workers}
\else
\set workers 0
\endif
SET max_parallel_workers_per_gather = :workers;
DROP TABLE IF EXISTS bench_rfm_lines;
-- ~3.3 lines per order, orders spread over ~1M customers and two years
CREATE UNLOGGED TABLE bench_rfm_lines AS
SELECT 'B'::text AS brand, date '2022-01-01' + (hashint4(o * 7) & 1023) % 730 AS dt,
       (hashint4(o) & 2147483647) % (:lines / 10) + 1 AS customer_key,
       'O' || o AS order_id, ((hashint4(i) & 65535) / 500.0)::numeric(12, 2) AS amount
  FROM (SELECT i, (i * 3) / 10 AS o FROM generate_series(1, :lines) i) g;
VACUUM ANALYZE bench_rfm_lines;
SELECT count(*) AS lines, count(DISTINCT order_id) AS orders, count(DISTINCT customer_key) AS customers FROM bench_rfm_lines;

-- (c) the to-date DWS table of the same lines (one row per customer; the 1000-day window covers all history, so
-- rfm_scores_td must give exactly the order-line answer)
DELETE FROM retail_mid.dws_trade_customer_td WHERE brand = 'B';
INSERT INTO retail_mid.dws_trade_customer_td (brand, customer_key, first_order_date, last_order_date, orders, return_orders, active_days,
                                              quantity, sales_amount, return_amount, net_amount, first_sale_date, last_sale_date)
SELECT 'B', customer_key, min(dt), max(dt), count(DISTINCT order_id), 0, count(DISTINCT dt), 0, sum(amount), 0, sum(amount), min(dt), max(dt)
  FROM bench_rfm_lines GROUP BY customer_key;
INSERT INTO retail_mid.dws_refresh_state VALUES ('B', '2023-12-31', now()) ON CONFLICT (brand) DO UPDATE SET as_of = excluded.as_of;
VACUUM ANALYZE retail_mid.dws_trade_customer_td;

CREATE TEMP TABLE bench_rfm_times (contender text, run int, seconds float8);
CREATE FUNCTION pg_temp.bench(contender text, run int, q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    DROP TABLE IF EXISTS bench_out;
    t0 := clock_timestamp();
    EXECUTE 'CREATE TEMP TABLE bench_out AS ' || q;
    INSERT INTO bench_rfm_times VALUES (contender, run, extract(epoch FROM clock_timestamp() - t0));
END;
$$;
\set q_ext 'SELECT * FROM retail_mid.rfm_scores_from(''bench_rfm_lines'', ''B'', ''2023-12-31'', 1000, ''ten_segment'', ''lines'')'
\set q_bare 'SELECT customer_key, max(dt) AS last_date, count(*) AS n, sum(amount) AS monetary FROM bench_rfm_lines GROUP BY customer_key'
\set q_ntile 'WITH rfm AS (SELECT customer_key, date ''2023-12-31'' - max(dt) AS recency_days, count(DISTINCT order_id) AS frequency, sum(amount) AS monetary FROM bench_rfm_lines WHERE brand = ''B'' AND dt <= ''2023-12-31'' AND dt > date ''2023-12-31'' - 1000 GROUP BY customer_key), s AS (SELECT rfm.*, ntile(5) OVER (ORDER BY recency_days DESC) AS r_score, ntile(5) OVER (ORDER BY frequency) AS f_score, ntile(5) OVER (ORDER BY monetary) AS m_score FROM rfm) SELECT s.*, CASE WHEN r_score <= 2 AND f_score <= 2 THEN ''Hibernating'' WHEN r_score <= 2 AND f_score <= 4 THEN ''At Risk'' WHEN r_score <= 2 THEN ''Can''''t Lose Them'' WHEN r_score = 3 AND f_score <= 2 THEN ''About To Sleep'' WHEN r_score = 3 AND f_score = 3 THEN ''Need Attention'' WHEN r_score IN (3, 4) AND f_score >= 4 THEN ''Loyal Customers'' WHEN r_score = 4 AND f_score = 1 THEN ''Promising'' WHEN r_score = 5 AND f_score = 1 THEN ''New Customers'' WHEN f_score IN (2, 3) THEN ''Potential Loyalist'' ELSE ''Champions'' END AS segment FROM s'
\set q_td 'SELECT * FROM retail_mid.rfm_scores_td(''B'', ''2023-12-31'')'
-- two rounds, interleaved; the best of each is reported
SELECT pg_temp.bench('retail_mid', r, :'q_ext'), pg_temp.bench('bare_group_by', r, :'q_bare'), pg_temp.bench('ntile_sql', r, :'q_ntile'),
       pg_temp.bench('retail_mid_from_td', r, :'q_td')
  FROM generate_series(1, 2) r;
-- the to-date answer is the order-line answer
CREATE TEMP TABLE bench_td_out AS SELECT * FROM bench_out;
SELECT pg_temp.bench('retail_mid', 3, :'q_ext');
SELECT count(*) AS td_vs_lines_differences FROM ((SELECT * FROM bench_out EXCEPT SELECT * FROM bench_td_out)
                                                 UNION ALL (SELECT * FROM bench_td_out EXCEPT SELECT * FROM bench_out)) d;
SELECT contender, round(min(seconds)::numeric, 2) AS best_seconds, round(max(seconds)::numeric, 2) AS worst_seconds
  FROM bench_rfm_times GROUP BY 1 ORDER BY 2;
WITH b AS (SELECT contender, min(seconds) s FROM bench_rfm_times GROUP BY 1)
SELECT round(((SELECT s FROM b WHERE contender = 'retail_mid') / (SELECT s FROM b WHERE contender = 'bare_group_by'))::numeric, 2)
         AS retail_mid_vs_bare_group_by_goal_le_1_3,
       round(((SELECT s FROM b WHERE contender = 'ntile_sql') / (SELECT s FROM b WHERE contender = 'retail_mid'))::numeric, 2)
         AS ntile_sql_vs_retail_mid_speedup_goal_ge_2,
       round(((SELECT s FROM b WHERE contender = 'retail_mid_from_td') / (SELECT s FROM b WHERE contender = 'bare_group_by'))::numeric, 3)
         AS from_td_vs_bare_group_by_goal_lt_0_1;
DROP TABLE bench_rfm_lines;
DELETE FROM retail_mid.dws_trade_customer_td WHERE brand = 'B';
DELETE FROM retail_mid.dws_refresh_state WHERE brand = 'B';
