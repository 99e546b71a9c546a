-- rfm_dws: rfm_scores over the real DWS layer (loader -> ODS -> DWD -> dws_trade_customer_1d) against the DWD
-- order lines and plain SQL; then snapshots and views. The data: an Online-Retail-shaped file written by the test.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- 2,000 invoices of 300 customers over 2013 (1 to 4 lines each), every 25th invoice a cancellation
SELECT format('/tmp/retail_mid_rfm_dws_%s.csv', pg_backend_pid()) AS csv_path \gset
SELECT format($c$COPY (
  SELECT CASE WHEN i %% 25 = 0 THEN 'C' ELSE '' END || (600000 + i) AS "InvoiceNo", 'SKU' || l AS "StockCode", 'ITEM ' || l AS "Description",
         CASE WHEN i %% 25 = 0 THEN -1 ELSE 1 + (i + l) %% 5 END AS "Quantity",
         to_char(timestamp '2013-01-01 09:00' + ((hashint4(i) & 1023) %% 365) * interval '1 day' + l * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS') AS "InvoiceDate",
         (1 + (hashint4(i * 7 + l) & 255) / 20.0)::numeric(10, 2) AS "UnitPrice", 20000 + (hashint4(i * 3) & 2147483647) %% 300 AS "CustomerID",
         'United Kingdom' AS "Country"
    FROM generate_series(1, 2000) i, generate_series(1, 1 + i %% 4) l
) TO %L WITH (FORMAT csv, HEADER true)$c$, :'csv_path') AS copy_out \gset
:copy_out;
-- 2013: a year no other test loads, so the refresh touches only this data (its NOTICE counts are left out)
SET client_min_messages = warning;
SELECT rows_loaded, rows_rejected FROM retail_mid.load_online_retail(:'csv_path', 'rfm_fixture');
SELECT retail_mid.refresh('2013-01-01', '2013-12-31') > 0 AS refreshed;
RESET client_min_messages;
SELECT count(*) AS customer_days, count(DISTINCT customer_key) AS customers FROM retail_mid.dws_trade_customer_1d WHERE brand = 'rfm_fixture';
-- the daily table and the order lines give the same scores
SELECT count(*) AS dws_vs_dwd_differences FROM (
  (SELECT * FROM retail_mid.rfm_scores('rfm_fixture', '2013-10-31', 90)
   EXCEPT SELECT * FROM retail_mid.rfm_scores_from('retail_mid.dwd_trade_order_line_di', 'rfm_fixture', '2013-10-31', 90, 'ten_segment', 'lines'))
  UNION ALL
  (SELECT * FROM retail_mid.rfm_scores_from('retail_mid.dwd_trade_order_line_di', 'rfm_fixture', '2013-10-31', 90, 'ten_segment', 'lines')
   EXCEPT SELECT * FROM retail_mid.rfm_scores('rfm_fixture', '2013-10-31', 90))) d;
-- and plain SQL over the DWD lines agrees (raw values and quantile scores)
CREATE TEMP TABLE rfm_dws_ref AS
SELECT customer_key,
       ('2013-10-31' - max(dt) FILTER (WHERE amount >= 0))::int4 AS recency_days,
       count(DISTINCT order_id) FILTER (WHERE amount >= 0 AND dt > date '2013-10-31' - 90)::int4 AS frequency,
       coalesce(sum(amount) FILTER (WHERE dt > date '2013-10-31' - 90), 0)::float8 AS monetary
  FROM retail_mid.dwd_trade_order_line_di
 WHERE brand = 'rfm_fixture' AND dt <= '2013-10-31' AND customer_key IS NOT NULL
 GROUP BY customer_key HAVING count(*) FILTER (WHERE amount >= 0) > 0;
SELECT count(*) AS reference_differences FROM (
  SELECT customer_key, recency_days, frequency, monetary, r_score, f_score, m_score FROM retail_mid.rfm_scores('rfm_fixture', '2013-10-31', 90)
  EXCEPT
  SELECT customer_key, recency_days, frequency, monetary,
         (1 + (5 * (rank() OVER (ORDER BY recency_days DESC) - 1)) / count(*) OVER ())::int4,
         (1 + (5 * (rank() OVER (ORDER BY frequency) - 1)) / count(*) OVER ())::int4,
         (1 + (5 * (rank() OVER (ORDER BY monetary) - 1)) / count(*) OVER ())::int4
    FROM rfm_dws_ref) d;
SELECT (SELECT count(*) FROM retail_mid.rfm_scores('rfm_fixture', '2013-10-31', 90)) = (SELECT count(*) FROM rfm_dws_ref) AS same_customers;
-- the to-date table (one row per customer) gives the whole-history answer of the daily table
SELECT as_of AS td_as_of FROM retail_mid.dws_refresh_state WHERE brand = 'rfm_fixture';
SELECT count(*) AS td_vs_daily_differences, (SELECT count(*) FROM retail_mid.rfm_scores_td('rfm_fixture')) AS td_customers FROM (
  (SELECT * FROM retail_mid.rfm_scores_td('rfm_fixture')
   EXCEPT SELECT * FROM retail_mid.rfm_scores('rfm_fixture', (SELECT as_of FROM retail_mid.dws_refresh_state WHERE brand = 'rfm_fixture'), 36500))
  UNION ALL
  (SELECT * FROM retail_mid.rfm_scores('rfm_fixture', (SELECT as_of FROM retail_mid.dws_refresh_state WHERE brand = 'rfm_fixture'), 36500)
   EXCEPT SELECT * FROM retail_mid.rfm_scores_td('rfm_fixture'))) d;
SELECT count(*) AS td_later_as_of_differences FROM (
  SELECT * FROM retail_mid.rfm_scores_td('rfm_fixture', '2014-01-31', 'eight_class')
  EXCEPT SELECT * FROM retail_mid.rfm_scores('rfm_fixture', '2014-01-31', 36500, 'eight_class')) d;
SELECT count(*) FROM retail_mid.rfm_scores_td('rfm_fixture', '2013-06-30');
SELECT count(*) AS td_unknown_brand FROM retail_mid.rfm_scores_td('nobody');
-- snapshots from the DWS and the views
SELECT retail_mid.rfm_refresh('rfm_fixture', '2013-06-30', 90, 'eight_class') > 0 AS june,
       retail_mid.rfm_refresh('rfm_fixture', '2013-10-31', 90, 'eight_class') > 0 AS october;
SELECT sum(customers) = (SELECT count(*) FROM retail_mid.rfm_scores('rfm_fixture', '2013-10-31', 90, 'eight_class')) AS summary_complete,
       round(sum(revenue_share)::numeric, 9) AS revenue_share_total
  FROM retail_mid.rfm_segment_summary WHERE brand = 'rfm_fixture' AND as_of = '2013-10-31';
SELECT count(*) > 0 AS has_migrations FROM retail_mid.rfm_segment_migration
 WHERE brand = 'rfm_fixture' AND from_as_of = '2013-06-30' AND to_as_of = '2013-10-31';
-- leave the shared tables as they were
DELETE FROM retail_mid.rfm_snapshot WHERE brand = 'rfm_fixture';
DO $$
DECLARE t regclass; pending bool := true; pass int := 0;
BEGIN
    WHILE pending AND pass < 10 LOOP   -- foreign keys: delete referencing rows first, whatever the table order
        pending := false; pass := pass + 1;
        FOR t IN SELECT a.attrelid::regclass FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname = 'brand'
                    AND NOT a.attisdropped AND NOT c.relispartition
        LOOP
            BEGIN
                EXECUTE format('DELETE FROM %s WHERE brand = %L', t, 'rfm_fixture');
            EXCEPTION WHEN foreign_key_violation THEN
                pending := true;
            END;
        END LOOP;
    END LOOP;
    IF pending THEN
        RAISE EXCEPTION 'could not remove the rfm_fixture rows';
    END IF;
END;
$$;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', 'cat > /dev/null; rm -f ' || :'csv_path') AS rm_cmd \gset
:rm_cmd;
SELECT count(*) AS fixture_rows_left FROM retail_mid.dws_trade_customer_1d WHERE brand = 'rfm_fixture';
