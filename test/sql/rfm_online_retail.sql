-- rfm_online_retail: RFM on the UCI Online Retail invoices (cancellations are negative lines) against plain SQL
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
CREATE TEMP TABLE or_raw (invoice text, stock text, descr text, qty int, ts timestamp, price numeric, customer int, country text);
SELECT format('COPY or_raw FROM PROGRAM %L WITH (FORMAT csv, HEADER true)',
              'gzip -cdf ' || :'data_dir' || '/online_retail.csv.gz') AS copy_cmd \gset
:copy_cmd;
-- order lines in the dwd_trade_order_line_di shape; amount = quantity * unit price (negative for cancellations)
CREATE TEMP TABLE or_lines AS
SELECT 'OR'::text AS brand, ts::date AS dt, customer AS customer_key, invoice AS order_id, qty * price AS amount
  FROM or_raw WHERE customer IS NOT NULL;
CREATE TEMP TABLE or_daily AS
SELECT brand, dt, customer_key, count(DISTINCT order_id) FILTER (WHERE amount >= 0) AS orders, sum(amount) AS net_amount
  FROM or_lines GROUP BY 1, 2, 3;
SELECT count(*) AS lines, count(DISTINCT customer_key) AS customers, count(*) FILTER (WHERE amount < 0) AS negative_lines,
       min(dt), max(dt) FROM or_lines;
-- reference: as of the last day, 365-day window
CREATE TEMP TABLE or_ref AS
SELECT customer_key,
       ('2011-12-09' - max(dt) FILTER (WHERE amount >= 0))::int4 AS recency_days,
       count(DISTINCT order_id) FILTER (WHERE amount >= 0 AND dt > date '2011-12-09' - 365)::int4 AS frequency,
       coalesce(sum(amount) FILTER (WHERE dt > date '2011-12-09' - 365), 0)::float8 AS monetary,
       min(dt) FILTER (WHERE amount >= 0) AS first_order_date, max(dt) FILTER (WHERE amount >= 0) AS last_order_date
  FROM or_lines WHERE dt <= '2011-12-09'
 GROUP BY customer_key HAVING count(*) FILTER (WHERE amount >= 0) > 0;
CREATE TEMP TABLE or_scores AS SELECT * FROM retail_mid.rfm_scores_from('pg_temp.or_lines', 'OR', '2011-12-09', 365, 'ten_segment', 'lines');
SELECT count(*) AS raw_differences FROM (
  (SELECT customer_key, recency_days, frequency, monetary, first_order_date, last_order_date FROM or_scores EXCEPT SELECT * FROM or_ref)
  UNION ALL
  (SELECT * FROM or_ref EXCEPT SELECT customer_key, recency_days, frequency, monetary, first_order_date, last_order_date FROM or_scores)) d;
SELECT count(*) AS daily_vs_lines_differences FROM (
  (SELECT * FROM retail_mid.rfm_scores_from('pg_temp.or_daily', 'OR', '2011-12-09', 365) EXCEPT SELECT * FROM or_scores)
  UNION ALL
  (SELECT * FROM or_scores EXCEPT SELECT * FROM retail_mid.rfm_scores_from('pg_temp.or_daily', 'OR', '2011-12-09', 365))) d;
-- quantile scores and the ten segments against rank() and the rule table
SELECT count(*) AS score_and_segment_differences FROM (
  SELECT customer_key, r_score, f_score, m_score, segment FROM or_scores
  EXCEPT
  SELECT customer_key, r, f, m, CASE
      WHEN r <= 2 AND f <= 2 THEN 'Hibernating' WHEN r <= 2 AND f <= 4 THEN 'At Risk'
      WHEN r <= 2 THEN 'Can''t Lose Them' WHEN r = 3 AND f <= 2 THEN 'About To Sleep'
      WHEN r = 3 AND f = 3 THEN 'Need Attention' WHEN r IN (3, 4) AND f >= 4 THEN 'Loyal Customers'
      WHEN r = 4 AND f = 1 THEN 'Promising' WHEN r = 5 AND f = 1 THEN 'New Customers'
      WHEN f IN (2, 3) THEN 'Potential Loyalist' ELSE 'Champions' END
    FROM (SELECT customer_key,
                 (1 + (5 * (rank() OVER (ORDER BY recency_days DESC) - 1)) / count(*) OVER ())::int4 AS r,
                 (1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) / count(*) OVER ())::int4 AS f,
                 (1 + (5 * (rank() OVER (ORDER BY monetary) - 1)) / count(*) OVER ())::int4 AS m
            FROM or_ref) t) d;
SELECT segment, count(*) AS customers, round(sum(monetary)::numeric, 2) AS monetary FROM or_scores GROUP BY 1 ORDER BY 2 DESC, 1;
-- why ties matter: ntile(5) gives customers with the same frequency different F scores
SELECT count(*) AS frequencies_split_by_ntile
  FROM (SELECT frequency FROM (SELECT frequency, ntile(5) OVER (ORDER BY frequency) AS f FROM or_ref) t
         GROUP BY frequency HAVING count(DISTINCT f) > 1) s;
SELECT count(*) AS frequencies_split_by_retail_mid
  FROM (SELECT frequency FROM or_scores GROUP BY frequency HAVING count(DISTINCT f_score) > 1) s;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
