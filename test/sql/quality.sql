-- quality: profile aggregates, rule templates, evaluation, history, scores, bad input, parallel plans
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET extra_float_digits = 0;

-- ---------------------------------------------------------------- the aggregates, against plain SQL
CREATE TABLE public.qa_t (id int, name text, price float8, ts timestamptz);
INSERT INTO public.qa_t VALUES (1, 'a', 1, '2026-01-01 00:00+00'), (2, NULL, -1, '2026-01-02 00:00+00'),
    (2, ' ', 5, NULL), (4, 'abc', NULL, '2026-01-03 00:00+00'), (5, 'x', 'NaN', '2026-01-03 00:00+00'), (5, 'x', 'NaN', '2026-01-03 00:00+00');
SELECT retail_mid.quality_profile(ctid, id IS NULL, name IS NULL, price < 0, price) FROM public.qa_t;
SELECT count(*) AS rows, count(*) FILTER (WHERE name IS NULL) AS name_null, count(*) FILTER (WHERE price < 0) AS negative,
       count(*) FILTER (WHERE price IS NULL) AS price_null, count(*) FILTER (WHERE price = 'NaN') AS nonfinite,
       avg(price) FILTER (WHERE price <> 'NaN') AS mean, stddev(price) FILTER (WHERE price <> 'NaN') AS sd
  FROM public.qa_t;
SELECT retail_mid.quality_profile(ctid, id IS NULL, price) FROM public.qa_t WHERE false;
SELECT retail_mid.quality_profile(NULL::tid, id > 1) FROM public.qa_t;
SELECT retail_mid.quality_duplicates(true, id)->'duplicates' AS dup_id, retail_mid.quality_duplicates(false, q)->'duplicates' AS dup_rows,
       retail_mid.quality_duplicates(false, id, name, price, ts)->'duplicates' AS dup_cols,
       retail_mid.quality_duplicates(true, id, name)->'duplicates' AS dup_id_name,
       (SELECT count(id) - count(DISTINCT id) FROM public.qa_t) AS dup_id_sql,
       (SELECT count(*) - count(DISTINCT q2) FROM public.qa_t q2) AS dup_rows_sql,
       (SELECT count(*) - count(DISTINCT (id, name)) FROM public.qa_t WHERE id IS NOT NULL AND name IS NOT NULL) AS dup_id_name_sql
  FROM public.qa_t q;
SELECT retail_mid.quality_duplicates(true, id, name) FROM public.qa_t WHERE name IS NOT NULL;
SELECT retail_mid.quality_key_hash(5, 'x'::text) = retail_mid.quality_key_hash(5, 'x'::text) AS same_key_same_hash,
       retail_mid.quality_key_hash(5, 'x'::text) <> retail_mid.quality_key_hash(5, 'y'::text) AS other_key_other_hash,
       retail_mid.quality_key_hash(5, NULL::text) = retail_mid.quality_key_hash(5, NULL::text) AS null_parts_equal,
       retail_mid.quality_key_hash(5, 'x'::text) = ANY (SELECT jsonb_array_elements_text(retail_mid.quality_duplicates(true, id, name)->'hashes')::bigint
                                                          FROM public.qa_t) AS duplicated_hash_found;
SELECT retail_mid.quality_duplicates(true, x) FROM generate_series(1, 0) x;
-- bad input
SELECT retail_mid.quality_profile(ctid, name) FROM public.qa_t;
SELECT retail_mid.quality_duplicates(true, point(1, 2));
SELECT retail_mid.quality_profile_state_rows('\x01'::bytea);
SELECT retail_mid.quality_profile_state_rows('\x020000000000000005000000000000000000'::bytea);
SELECT retail_mid.quality_profile_state_rows('\x01000000000000000500000000000000'::bytea) AS rows_of_valid_state;
SELECT retail_mid.quality_profile_state_rows('\x0100000001000000050000000000000000'::bytea);
SELECT retail_mid.quality_duplicates_state_keys('\x0100000000000000020000000000000001'::bytea);
SELECT retail_mid.quality_duplicates_state_keys('\x0100000000000000010000000000000001000000000000ff'::bytea) AS keys_of_valid_state;

-- ---------------------------------------------------------------- rules of every template
CREATE TABLE public.qa_store (store_id text PRIMARY KEY);
INSERT INTO public.qa_store VALUES ('S1'), ('S2');
CREATE TABLE public.qa_orders (order_id int, line_no int, store_id text, sku text, quantity int, unit_price numeric,
    discount numeric, amount numeric, status text, order_time timestamptz);
INSERT INTO public.qa_orders
SELECT i / 3, i % 3, CASE WHEN i % 10 = 0 THEN 'S9' ELSE 'S' || (1 + i % 2) END,
       CASE WHEN i % 17 = 0 THEN 'bad sku' ELSE 'SKU-' || i END, 1 + i % 4, 10, CASE WHEN i % 25 = 0 THEN NULL ELSE 1 END,
       (1 + i % 4) * 10 - 1 + CASE WHEN i % 50 = 0 THEN 5 ELSE 0 END,
       CASE WHEN i % 20 = 0 THEN 'lost' WHEN i % 2 = 0 THEN 'paid' ELSE 'shipped' END,
       timestamptz '2026-03-01 00:00+00' + i * interval '1 minute'
  FROM generate_series(1, 300) i;
INSERT INTO public.qa_orders SELECT * FROM public.qa_orders WHERE order_id = 7;   -- three duplicated lines
CREATE TABLE public.qa_totals (total numeric);
INSERT INTO public.qa_totals SELECT sum(amount) FROM public.qa_orders;
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters, warn_threshold, fail_threshold, threshold_on, weight, data_domain) VALUES
 ('qa_discount_not_null', 'public.qa_orders', 'discount', 'not_null', '{}', 0.01, 0.05, NULL, 1, 'trade'),
 ('qa_sku_not_blank', 'public.qa_orders', 'sku', 'not_blank', '{}', NULL, NULL, NULL, 1, 'trade'),
 ('qa_line_key', 'public.qa_orders', NULL, 'unique_key', '{"columns": ["order_id", "line_no"]}', NULL, NULL, NULL, 3, 'trade'),
 ('qa_order_id_unique', 'public.qa_orders', 'order_id', 'unique_key', '{}', NULL, 500, 'count', 1, 'trade'),
 ('qa_duplicate_lines', 'public.qa_orders', NULL, 'duplicate_rows', '{}', NULL, NULL, NULL, 1, 'trade'),
 ('qa_sku_format', 'public.qa_orders', 'sku', 'regex', '{"pattern": "^SKU-[0-9]+$"}', 0.1, 0.2, NULL, 1, 'trade'),
 ('qa_quantity_range', 'public.qa_orders', 'quantity', 'range', '{"min": 1, "max": 3}', NULL, NULL, NULL, 1, 'trade'),
 ('qa_price_positive', 'public.qa_orders', 'unit_price', 'range', '{"min": 0, "min_exclusive": true}', NULL, NULL, NULL, 1, 'trade'),
 ('qa_sku_length', 'public.qa_orders', 'sku', 'length', '{"min": 5, "max": 7}', NULL, NULL, 'count', 1, 'trade'),
 ('qa_status_accepted', 'public.qa_orders', 'status', 'accepted_values', '{"values": ["paid", "shipped"]}', NULL, NULL, NULL, 1, 'trade'),
 ('qa_store_known', 'public.qa_orders', 'store_id', 'reference', '{"table": "public.qa_store", "column": "store_id"}', NULL, NULL, NULL, 1, 'trade'),
 ('qa_amount_consistent', 'public.qa_orders', NULL, 'expression', '{"expression": "amount = quantity * unit_price - discount"}', NULL, NULL, NULL, 2, 'trade'),
 ('qa_totals_agree', 'public.qa_orders', NULL, 'tables_agree', '{"expression": "sum(amount)", "other_table": "public.qa_totals", "other_expression": "sum(total)"}', NULL, NULL, NULL, 1, 'finance'),
 ('qa_fresh', 'public.qa_orders', 'order_time', 'freshness', '{}', NULL, NULL, NULL, 1, 'trade');
SELECT rule_name, template, threshold_on, warn_threshold, fail_threshold, version FROM retail_mid.quality_rule ORDER BY rule_id;
SELECT retail_mid.quality_evaluate('public.qa_orders', '2026-03-02 12:00+00') > 0 AS evaluated;
-- the reference counts in plain SQL, next to the stored results
CREATE TEMP TABLE qa_ref AS
SELECT 'qa_discount_not_null' AS rule_name, count(*) FILTER (WHERE discount IS NULL)::float8 AS reference FROM public.qa_orders
UNION ALL SELECT 'qa_sku_not_blank', count(*) FILTER (WHERE sku IS NULL OR btrim(sku) = '') FROM public.qa_orders
UNION ALL SELECT 'qa_line_key', (SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM public.qa_orders GROUP BY order_id, line_no) g)
UNION ALL SELECT 'qa_order_id_unique', count(order_id) - count(DISTINCT order_id) FROM public.qa_orders
UNION ALL SELECT 'qa_duplicate_lines', count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM public.qa_orders) d) FROM public.qa_orders
UNION ALL SELECT 'qa_sku_format', count(*) FILTER (WHERE sku !~ '^SKU-[0-9]+$') FROM public.qa_orders
UNION ALL SELECT 'qa_quantity_range', count(*) FILTER (WHERE quantity NOT BETWEEN 1 AND 3) FROM public.qa_orders
UNION ALL SELECT 'qa_price_positive', count(*) FILTER (WHERE unit_price <= 0) FROM public.qa_orders
UNION ALL SELECT 'qa_sku_length', count(*) FILTER (WHERE length(sku) NOT BETWEEN 5 AND 7) FROM public.qa_orders
UNION ALL SELECT 'qa_status_accepted', count(*) FILTER (WHERE status NOT IN ('paid', 'shipped')) FROM public.qa_orders
UNION ALL SELECT 'qa_store_known', count(*) FILTER (WHERE store_id NOT IN (SELECT store_id FROM public.qa_store)) FROM public.qa_orders
UNION ALL SELECT 'qa_amount_consistent', count(*) FILTER (WHERE amount <> quantity * unit_price - discount) FROM public.qa_orders
UNION ALL SELECT 'qa_totals_agree', (SELECT sum(amount) FROM public.qa_orders) - (SELECT sum(total) FROM public.qa_totals)
UNION ALL SELECT 'qa_fresh', extract(epoch FROM timestamptz '2026-03-02 12:00+00' - max(order_time)) / 3600 FROM public.qa_orders;
SELECT r.rule_name, r.dimension, r.rows_checked, r.observed, q.reference, r.observed = q.reference AS equal,
       round(r.compared_value::numeric, 4) AS compared, r.outcome, r.score
  FROM retail_mid.quality_result r JOIN qa_ref q USING (rule_name) ORDER BY r.rule_id;
-- samples: the first violating rows in physical order, each really violating its rule
SELECT rule_name, sample FROM retail_mid.quality_result
 WHERE rule_name IN ('qa_sku_format', 'qa_line_key', 'qa_status_accepted', 'qa_store_known') ORDER BY rule_id;
SELECT rule_name, detail FROM retail_mid.quality_result WHERE rule_name IN ('qa_totals_agree', 'qa_fresh', 'qa_line_key') ORDER BY rule_id;
SELECT grain, subject, score, rules, passed, warned, failed FROM retail_mid.quality_score WHERE grain <> 'rule' ORDER BY grain, subject;
-- weighted table score by hand: pass 100, warn 50, fail 0
SELECT round((sum(weight * score) / sum(weight))::numeric, 2) AS table_score FROM retail_mid.quality_result WHERE table_name = 'public.qa_orders';
SELECT job, rows_written, outcome, detail FROM retail_mid.job_log WHERE job = 'quality_evaluate' ORDER BY job_id DESC LIMIT 1;

-- ---------------------------------------------------------------- versions, history, "worse since yesterday"
UPDATE retail_mid.quality_rule SET parameters = '{"min": 1, "max": 4}' WHERE rule_name = 'qa_quantity_range';
UPDATE retail_mid.quality_rule SET description = 'only a comment' WHERE rule_name = 'qa_sku_format';
SELECT r.rule_name, r.version, v.version AS recorded, v.definition->'parameters' AS parameters
  FROM retail_mid.quality_rule r JOIN retail_mid.quality_rule_version v USING (rule_id)
 WHERE r.rule_name IN ('qa_quantity_range', 'qa_sku_format') ORDER BY 1, 3;
UPDATE public.qa_orders SET discount = NULL WHERE order_id BETWEEN 20 AND 30;   -- more missing discounts
DELETE FROM public.qa_orders WHERE sku = 'bad sku';                             -- fewer bad skus
SET client_min_messages = warning;
SELECT retail_mid.quality_evaluate('public.qa_orders', '2026-03-03 12:00+00') > 0 AS evaluated;
SET client_min_messages = notice;
SELECT rule_name, day, rule_version, observed, outcome FROM retail_mid.quality_result_daily
 WHERE rule_name IN ('qa_quantity_range', 'qa_discount_not_null', 'qa_sku_format') ORDER BY rule_name, day;
SELECT rule_name, outcome_before, outcome_now, score_before, score_now, round(compared_before::numeric, 4) AS before,
       round(compared_now::numeric, 4) AS now, change
  FROM retail_mid.quality_worse_since_yesterday ORDER BY rule_name;
SELECT day, score FROM retail_mid.quality_score WHERE grain = 'table' AND subject = 'public.qa_orders' ORDER BY day;

-- ---------------------------------------------------------------- stability: z-score with weekday seasonality and warm-up
CREATE TABLE public.qa_daily (v float8);
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES
 ('qa_daily_rows', 'public.qa_daily', NULL, 'stability', '{"metric": "row_count"}'),
 ('qa_daily_rows_upper', 'public.qa_daily', NULL, 'stability', '{"metric": "row_count", "sides": "upper"}'),
 ('qa_daily_mean', 'public.qa_daily', 'v', 'stability', '{"metric": "mean", "seasonality": "none", "warmup": 3}');
SET client_min_messages = warning;
-- five Mondays with 100, 104, 98, 102, 101 rows; a Tuesday with 10 rows in between must not count
DO $$
DECLARE n int; k int := 0;
BEGIN
    FOREACH n IN ARRAY ARRAY[100, 104, 98, 102, 101] LOOP
        TRUNCATE public.qa_daily;
        INSERT INTO public.qa_daily SELECT k + (i % 5) FROM generate_series(1, n) i;
        PERFORM retail_mid.quality_evaluate('public.qa_daily', timestamptz '2026-01-05 12:00+00' + k * interval '7 days');
        IF k = 2 THEN
            TRUNCATE public.qa_daily;
            INSERT INTO public.qa_daily SELECT 50 FROM generate_series(1, 10);
            PERFORM retail_mid.quality_evaluate('public.qa_daily', timestamptz '2026-01-20 12:00+00');
        END IF;
        k := k + 1;
    END LOOP;
END;
$$;
-- a sixth Monday with half the rows
TRUNCATE public.qa_daily;
INSERT INTO public.qa_daily SELECT 5 + (i % 5) FROM generate_series(1, 50) i;
SELECT retail_mid.quality_evaluate('public.qa_daily', '2026-02-09 12:00+00') > 0 AS evaluated;
SET client_min_messages = notice;
SELECT rule_name, as_of::date AS day, observed, round(statistic::numeric, 4) AS z, outcome, detail->'history' AS history
  FROM retail_mid.quality_result WHERE table_name = 'public.qa_daily' ORDER BY rule_id, as_of;
-- reference z-scores: the Monday history (100, 104, 98, 102) against 101, then with 101 against 50
SELECT round(((101 - avg(x)) / stddev_samp(x))::numeric, 4) AS z_101 FROM unnest(ARRAY[100, 104, 98, 102]) x;
SELECT round(((50 - avg(x)) / stddev_samp(x))::numeric, 4) AS z_50 FROM unnest(ARRAY[100, 104, 98, 102, 101]) x;

-- ---------------------------------------------------------------- more rules than one call can take (98 per call)
CREATE TABLE public.qa_wide (a int);
INSERT INTO public.qa_wide SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE i END FROM generate_series(1, 1000) i;
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters)
SELECT 'qa_wide_' || i, 'public.qa_wide', 'a', CASE WHEN i % 2 = 0 THEN 'not_null' ELSE 'range' END,
       CASE WHEN i % 2 = 0 THEN '{}'::jsonb ELSE jsonb_build_object('max', i) END
  FROM generate_series(1, 150) i;
SELECT retail_mid.quality_evaluate('public.qa_wide', '2026-03-02 12:00+00') > 0 AS evaluated;
SELECT count(*) AS results,
       count(*) FILTER (WHERE template = 'not_null' AND observed = (SELECT count(*) FROM public.qa_wide WHERE a IS NULL)) AS not_null_right,
       count(*) FILTER (WHERE template = 'range' AND observed = (SELECT count(*) FROM public.qa_wide w WHERE w.a > substr(r.rule_name, 9)::int)) AS range_right
  FROM retail_mid.quality_result r WHERE table_name = 'public.qa_wide';

-- ---------------------------------------------------------------- bad rules and arguments
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template) VALUES ('qa_bad', 'public.qa_orders', 'sometimes');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'sku', 'regex', '{"patern": "x"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'sku', 'regex', '{"pattern": "(["}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template) VALUES ('qa_bad', 'public.qa_orders', 'nope', 'not_null');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template) VALUES ('qa_bad', 'public.qa_orders', 'not_null');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'quantity', 'range', '{}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'quantity', 'range', '{"min": "NaN"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'quantity', 'range', '{"min": "ten"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'sku', 'length', '{"min": 5, "max": 2}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'status', 'accepted_values', '[]');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'status', 'accepted_values', '{"values": []}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'store_id', 'reference', '{"table": "qa_store", "column": "store_id"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'expression', '{"expression": "amount = quantty"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'expression', '{"expression": "amount + 1"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'order_id', 'unique_key', '{"columns": ["line_no"]}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'stability', '{"metric": "median"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES ('qa_bad', 'public.qa_orders', 'stability', '{"warmup": 9}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, warn_threshold, fail_threshold) VALUES ('qa_bad', 'public.qa_orders', 'sku', 'not_null', 0.5, 0.1);
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, fail_threshold) VALUES ('qa_bad', 'public.qa_orders', 'sku', 'not_null', 'NaN');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, threshold_on) VALUES ('qa_bad', 'public.qa_orders', 'order_time', 'freshness', 'ratio');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, weight) VALUES ('qa_bad', 'public.qa_orders', 'sku', 'not_null', 0);
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template) VALUES ('Bad Name', 'public.qa_orders', 'sku', 'not_null');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template) VALUES ('qa_sku_not_blank', 'public.qa_orders', 'sku', 'not_null');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template) VALUES ('qa_bad', 'retail_mid.quality_result_result_id_seq', 'duplicate_rows');
SELECT retail_mid.quality_evaluate('public.qa_orders', NULL);
SELECT retail_mid.quality_evaluate('public.qa_orders', 'infinity');
SELECT retail_mid.quality_add_default_rules('public.qa_orders', 'nonsense');

-- ---------------------------------------------------------------- parallel and partitionwise plans give the serial answer
CREATE TABLE public.qa_big (id bigint, k int, v float8, s text);
INSERT INTO public.qa_big SELECT i, i % 1000, (i % 997) / 7.0, CASE WHEN i % 13 = 0 THEN NULL ELSE 'x' || (i % 101) END
  FROM generate_series(1, 200000) i;
INSERT INTO public.qa_big SELECT * FROM public.qa_big WHERE id % 5000 = 0;
ALTER TABLE public.qa_big SET (parallel_workers = 2);
ANALYZE public.qa_big;
CREATE TEMP TABLE qa_serial AS
SELECT retail_mid.quality_profile(ctid, s IS NULL, v > 100, s !~ '^x[0-9]$', v) AS p, retail_mid.quality_duplicates(true, id) AS d,
       retail_mid.quality_duplicates(false, k, s) AS d2 FROM public.qa_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT retail_mid.quality_profile(ctid, s IS NULL, v > 100, s !~ '^x[0-9]$', v), retail_mid.quality_duplicates(true, id) FROM public.qa_big;
CREATE TEMP TABLE qa_parallel AS
SELECT retail_mid.quality_profile(ctid, s IS NULL, v > 100, s !~ '^x[0-9]$', v) AS p, retail_mid.quality_duplicates(true, id) AS d,
       retail_mid.quality_duplicates(false, k, s) AS d2 FROM public.qa_big;
RESET parallel_leader_participation;
-- the measures may differ in the last bits (another summation order): compare them rounded
CREATE FUNCTION pg_temp.qa_round(p jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
RETURN jsonb_set(p, '{columns,3}', (p->'columns'->3) || jsonb_build_object('mean', round((p->'columns'->3->>'mean')::numeric, 9),
       'stddev', round((p->'columns'->3->>'stddev')::numeric, 9), 'sum', round((p->'columns'->3->>'sum')::numeric, 6)));
SELECT count(*) AS differing_rows FROM (
    SELECT pg_temp.qa_round(p), d, d2 FROM qa_serial EXCEPT SELECT pg_temp.qa_round(p), d, d2 FROM qa_parallel) x;
SELECT p->'rows' AS rows, p->'columns'->0->'violations' AS s_null, p->'columns'->1->'violations' AS v_gt_100,
       p->'columns'->0->'sample' AS sample, d->'duplicates' AS d, d2->'duplicates' AS d2, d2->'keys' AS d2_keys,
       (SELECT count(*) FILTER (WHERE s IS NULL) FROM public.qa_big) AS s_null_sql,
       (SELECT count(id) - count(DISTINCT id) FROM public.qa_big) AS d_sql,
       (SELECT count(*) - count(DISTINCT (k, s)) FROM public.qa_big WHERE s IS NOT NULL) + (SELECT count(*) - count(DISTINCT k) FROM public.qa_big WHERE s IS NULL) AS d2_sql
  FROM qa_parallel;
-- evaluation itself under a parallel plan gives the serial results
INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters) VALUES
 ('qa_big_s', 'public.qa_big', 's', 'not_null', '{}'), ('qa_big_id', 'public.qa_big', 'id', 'unique_key', '{}'),
 ('qa_big_v', 'public.qa_big', 'v', 'range', '{"max": 100}'),
 ('qa_big_ks', 'public.qa_big', NULL, 'unique_key', '{"columns": ["k", "s"]}');   -- > 1000 duplicated keys: unfiltered confirmation
SELECT retail_mid.quality_evaluate('public.qa_big', '2026-03-02 12:00+00') > 0 AS evaluated;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT retail_mid.quality_evaluate('public.qa_big', '2026-03-02 13:00+00') > 0 AS evaluated;
SELECT count(DISTINCT (observed, outcome, sample)) = 1 AS same_results, min(observed) AS observed, rule_name
  FROM retail_mid.quality_result WHERE table_name = 'public.qa_big' GROUP BY rule_name ORDER BY rule_name;
SELECT count(*) - count(DISTINCT (k, s)) AS ks_duplicates_sql FROM public.qa_big WHERE s IS NOT NULL;
RESET max_parallel_workers_per_gather;
-- partitionwise aggregation: one partial aggregate per partition, combined
CREATE TABLE public.qa_part (id bigint, k int, s text) PARTITION BY RANGE (k);
CREATE TABLE public.qa_part_1 PARTITION OF public.qa_part FOR VALUES FROM (0) TO (500);
CREATE TABLE public.qa_part_2 PARTITION OF public.qa_part FOR VALUES FROM (500) TO (1000);
INSERT INTO public.qa_part SELECT id, k, s FROM public.qa_big;
SET enable_partitionwise_aggregate = on;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT retail_mid.quality_profile(NULL::tid, s IS NULL), retail_mid.quality_duplicates(true, id) FROM public.qa_part;
SELECT (SELECT retail_mid.quality_profile(NULL::tid, s IS NULL, k > 900) FROM public.qa_part)
     = (SELECT retail_mid.quality_profile(NULL::tid, s IS NULL, k > 900) FROM public.qa_big) AS same_profile,
       (SELECT retail_mid.quality_duplicates(true, id) FROM public.qa_part) = (SELECT retail_mid.quality_duplicates(true, id) FROM public.qa_big) AS same_duplicates,
       (SELECT retail_mid.quality_duplicates(true, id)->'duplicates' FROM public.qa_part) AS dup_part,
       (SELECT count(id) - count(DISTINCT id) FROM public.qa_part) AS dup_sql;
RESET enable_partitionwise_aggregate;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;

-- ---------------------------------------------------------------- clean up
DELETE FROM retail_mid.quality_rule WHERE rule_name LIKE 'qa\_%';
DROP TABLE public.qa_t, public.qa_orders, public.qa_store, public.qa_totals, public.qa_daily, public.qa_wide, public.qa_big, public.qa_part;
