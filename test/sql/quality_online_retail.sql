-- quality on real data: the shipped online_retail rule set finds the known defects of UCI Online Retail,
-- and every count is checked against plain SQL on the same table.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
SET client_min_messages = notice;
CREATE TABLE public.qor_online_retail (invoiceno text, stockcode text, description text, quantity int,
    invoicedate timestamp, unitprice numeric, customerid text, country text);
SELECT format('COPY public.qor_online_retail FROM PROGRAM %L WITH (FORMAT csv, HEADER true)',
              'gzip -cdf ' || :'data_dir' || '/online_retail.csv.gz') AS copy_cmd \gset
:copy_cmd;
SELECT count(*) AS lines FROM public.qor_online_retail;
SELECT retail_mid.quality_add_default_rules('public.qor_online_retail', 'online_retail', 'sales') AS rules_added;
SELECT retail_mid.quality_evaluate('public.qor_online_retail', '2011-12-10 00:00:00+00') > 0 AS evaluated;
-- the results, with the plain-SQL reference count next to each and their equality
CREATE TEMP TABLE qor_ref AS
SELECT 'qor_online_retail_customerid_not_null' AS rule_name, count(*) FILTER (WHERE customerid IS NULL)::float8 AS reference FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_description_not_blank', count(*) FILTER (WHERE description IS NULL OR btrim(description) = '') FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_country_not_blank', count(*) FILTER (WHERE country IS NULL OR btrim(country) = '') FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_invoice_not_cancellation', count(*) FILTER (WHERE left(invoiceno, 1) = 'C') FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_invoiceno_format', count(*) FILTER (WHERE invoiceno !~ '^C?[0-9]{6}$') FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_stockcode_format', count(*) FILTER (WHERE stockcode !~ '^[0-9]{5}[A-Za-z]{0,2}$') FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_quantity_positive', count(*) FILTER (WHERE quantity < 1) FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_unitprice_positive', count(*) FILTER (WHERE unitprice = 0) + count(*) FILTER (WHERE unitprice < 0) FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_unitprice_not_negative', count(*) FILTER (WHERE unitprice < 0) FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_cancellation_consistency', count(*) FILTER (WHERE (quantity < 0) <> (invoiceno LIKE 'C%')) FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_duplicate_lines', (SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM public.qor_online_retail) d) FROM public.qor_online_retail)
UNION ALL SELECT 'qor_online_retail_invoicedate_fresh', extract(epoch FROM timestamptz '2011-12-10 00:00:00+00' - max(invoicedate)::timestamptz) / 3600 FROM public.qor_online_retail
UNION ALL SELECT 'qor_online_retail_row_count_stable', count(*) FROM public.qor_online_retail;
SELECT r.rule_name, r.dimension, r.observed, q.reference, r.observed = q.reference AS equal,
       round(r.violation_ratio::numeric, 4) AS ratio, r.outcome, r.score, jsonb_array_length(r.sample) AS sampled
  FROM retail_mid.quality_result r JOIN qor_ref q USING (rule_name)
 ORDER BY r.rule_id;
-- zero prices alone: the difference of the two price rules
SELECT (SELECT observed FROM retail_mid.quality_result WHERE rule_name = 'qor_online_retail_unitprice_positive')
     - (SELECT observed FROM retail_mid.quality_result WHERE rule_name = 'qor_online_retail_unitprice_not_negative') AS zero_prices,
       (SELECT count(*) FROM public.qor_online_retail WHERE unitprice = 0) AS zero_prices_sql;
-- every sampled row really violates its rule
SELECT count(*) AS sampled_cancellations, bool_and(s->>'invoiceno' LIKE 'C%') AS all_cancellations
  FROM retail_mid.quality_result r, jsonb_array_elements(r.sample) s WHERE r.rule_name = 'qor_online_retail_invoice_not_cancellation';
SELECT s->>'rows' AS copies, s->>'invoiceno' AS invoiceno, s->>'stockcode' AS stockcode
  FROM retail_mid.quality_result r, jsonb_array_elements(r.sample) s WHERE r.rule_name = 'qor_online_retail_duplicate_lines';
SELECT grain, subject, score, rules, passed, warned, failed, warming_up FROM retail_mid.quality_score
 WHERE day = (timestamptz '2011-12-10 00:00:00+00')::date AND grain IN ('table', 'dimension') AND subject IN ('public.qor_online_retail', 'completeness', 'uniqueness', 'validity', 'consistency', 'timeliness', 'stability')
 ORDER BY grain, subject;
SELECT job, rows_written, outcome, detail FROM retail_mid.job_log WHERE job = 'quality_evaluate' ORDER BY job_id DESC LIMIT 1;
DELETE FROM retail_mid.quality_rule WHERE table_name = 'public.qor_online_retail'::regclass;
DROP TABLE public.qor_online_retail;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
