-- metric_rollup: the registry's distinct-count roll-up (daily key bitmaps OR-ed over each window) against the
-- peer it replaced, recomputing count(DISTINCT) from the detail rows of every window, same data, same run.
-- psql -v lines=N (default 200000): N order lines over 180 days, 40 stores, 300k customers.
\set ON_ERROR_STOP on
\if :{?lines}
\else
\set lines ''
\endif
SELECT coalesce(nullif(:'lines', ''), '200000') AS lines \gset
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
DROP TABLE IF EXISTS public.bench_mr_line;
CREATE TABLE public.bench_mr_line AS
SELECT date '2026-01-01' + (i % 180) AS dt, 'B' AS brand, 'S' || (hashint4(i) & 39) AS store_id,
       (hashint4(i * 7) & 2147483647) % 300000 AS customer_key, (i % 97)::numeric AS amount
  FROM generate_series(1, :lines) i;
ANALYZE public.bench_mr_line;
DELETE FROM retail_mid.metric_derived WHERE granularity = 'bench_mr';
DELETE FROM retail_mid.metric_granularity WHERE granularity = 'bench_mr';
DELETE FROM retail_mid.metric_atomic WHERE atomic LIKE 'bench\_mr\_%';
DROP TABLE IF EXISTS retail_mid.dws_metric_bench_mr, retail_mid.dws_metric_bench_mr_1d;
INSERT INTO retail_mid.metric_atomic (atomic, dwd_table, time_column, expression, unit, additivity) VALUES
 ('bench_mr_buyers', 'public.bench_mr_line', 'dt', 'count(DISTINCT t.customer_key)', 'customers', 'non_additive');
INSERT INTO retail_mid.metric_granularity VALUES ('bench_mr', '{brand,store_id}', 'Benchmark.');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES
 ('bench_mr_buyers', 'all', '7d', 'bench_mr'), ('bench_mr_buyers', 'all', '30d', 'bench_mr'), ('bench_mr_buyers', 'all', 'cm', 'bench_mr');
RESET client_min_messages;
\timing on
-- retail_mid: daily bitmaps, then every window from them
SET client_min_messages = warning;
SELECT retail_mid.metric_generate('bench_mr', '2026-01-01', '2026-06-29') AS rollup_rows;
RESET client_min_messages;
-- peer: the same three metrics as count(DISTINCT) over the detail rows of every window (the registry's
-- previous method, and what a hand-written summary query does)
CREATE TEMP TABLE bench_mr_peer AS
SELECT w.dt::date AS dt, l.store_id,
       count(DISTINCT l.customer_key) FILTER (WHERE l.dt > w.dt::date - 7) AS b7,
       count(DISTINCT l.customer_key) FILTER (WHERE l.dt > w.dt::date - 30) AS b30,
       count(DISTINCT l.customer_key) FILTER (WHERE l.dt >= date_trunc('month', w.dt)) AS bcm
  FROM generate_series(date '2026-01-01', date '2026-06-29', interval '1 day') w(dt)
  JOIN public.bench_mr_line l ON l.dt BETWEEN least(w.dt::date - 29, date_trunc('month', w.dt)::date) AND w.dt::date
 GROUP BY 1, 2;
\timing off
SELECT count(*) AS differences FROM (
    SELECT dt, store_id, b7, b30, bcm FROM bench_mr_peer
    EXCEPT SELECT dt, store_id, bench_mr_buyers_7d, bench_mr_buyers_30d, bench_mr_buyers_cm FROM retail_mid.dws_metric_bench_mr) x;
DELETE FROM retail_mid.metric_derived WHERE granularity = 'bench_mr';
DELETE FROM retail_mid.metric_granularity WHERE granularity = 'bench_mr';
DELETE FROM retail_mid.metric_atomic WHERE atomic LIKE 'bench\_mr\_%';
DROP TABLE retail_mid.dws_metric_bench_mr, retail_mid.dws_metric_bench_mr_1d, public.bench_mr_line;
