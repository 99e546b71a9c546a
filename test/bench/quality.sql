-- Benchmark: the shipped order_line rule set (21 rules: NULL checks on 14 columns, a compound key, three
-- ranges, accepted values, one regex, freshness) on a synthetic order line table, evaluated by
-- retail_mid.quality_evaluate against (a) one SQL query per rule and (b) all rules as one statement with
-- FILTER clauses, in the same run on the same data; then once more with every rule judged per brand too
-- (by_brand). Rows: psql variable rows (default 10,000,000).
\set ON_ERROR_STOP on
\if :{?rows}
\else
\set rows 10000000
\endif
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.bench_order_line;
CREATE UNLOGGED TABLE public.bench_order_line (
    dt date, brand text, order_id text, line_no int, order_time timestamptz, customer_key int4, store_id text,
    channel text, sku_id text, quantity numeric, unit_price numeric, discount numeric, amount numeric,
    line_type text, original_order_id text);
-- a few defects in every column, a handful of duplicated keys, some out-of-range values
INSERT INTO public.bench_order_line
SELECT d, b, o, l, t, CASE WHEN i % 10 < 3 THEN NULL ELSE (i * 7919) % 500000 END,
       CASE WHEN i % 100003 = 0 THEN NULL ELSE 'S' || (i % 300) END,
       (ARRAY['store', 'app', 'mini', 'web'])[1 + i % 4],
       CASE WHEN i % 200003 = 0 THEN 'bad sku' ELSE 'SKU-' || (i * 31) % 40000 END,
       q, p, CASE WHEN i % 50000 = 0 THEN -1 ELSE 0 END, q * p,
       CASE WHEN q < 0 THEN 'return' WHEN i % 1000003 = 0 THEN 'exchange' ELSE 'sale' END,
       CASE WHEN q < 0 THEN o END
  FROM (SELECT i, date '2026-01-01' + (i / 100000)::int AS d, (ARRAY['A', 'B', 'C'])[1 + i % 3] AS b,
               'O' || (CASE WHEN i % 1000000 = 7 THEN i - 3 ELSE i END) / 3 AS o, (CASE WHEN i % 1000000 = 7 THEN i - 3 ELSE i END) % 3 AS l,
               timestamptz '2026-01-01 08:00+00' + i * interval '0.8 second' AS t,
               CASE WHEN i % 40 = 0 THEN -1 ELSE 1 + i % 5 END::numeric AS q,
               CASE WHEN i % 300007 = 0 THEN 0 ELSE round((1 + (i % 997) / 10.0)::numeric, 2) END AS p
          FROM generate_series(1::bigint, :rows) i) s;
VACUUM ANALYZE public.bench_order_line;
DELETE FROM retail_mid.quality_rule WHERE table_name = 'public.bench_order_line'::regclass;
SELECT retail_mid.quality_add_default_rules('public.bench_order_line', 'order_line') AS rules;

CREATE TEMP TABLE bench_time (what text, seconds float8, answer text);
DO $$
DECLARE t0 timestamptz; n bigint; q text; ans text := ''; v text;
    per_rule text[] := ARRAY[
      'SELECT count(*) FROM public.bench_order_line WHERE dt IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE brand IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE order_id IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE line_no IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE order_time IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE store_id IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE channel IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE sku_id IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE quantity IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE unit_price IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE discount IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE amount IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE line_type IS NULL',
      'SELECT count(*) FROM public.bench_order_line WHERE customer_key IS NULL',
      'SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM public.bench_order_line WHERE brand IS NOT NULL AND order_id IS NOT NULL AND line_no IS NOT NULL GROUP BY brand, order_id, line_no HAVING count(*) > 1) d',
      'SELECT count(*) FROM public.bench_order_line WHERE unit_price < 0 OR unit_price > 100000',
      'SELECT count(*) FROM public.bench_order_line WHERE discount < 0',
      'SELECT count(*) FROM public.bench_order_line WHERE quantity < -1000 OR quantity > 1000',
      'SELECT count(*) FROM public.bench_order_line WHERE line_type NOT IN (''sale'', ''return'')',
      'SELECT count(*) FROM public.bench_order_line WHERE sku_id !~ ''^[A-Z0-9][A-Z0-9_-]*$''',
      'SELECT max(order_time) FROM public.bench_order_line'];
    one_statement text := $q$
      SELECT concat_ws(',',
        count(*) FILTER (WHERE dt IS NULL), count(*) FILTER (WHERE brand IS NULL), count(*) FILTER (WHERE order_id IS NULL),
        count(*) FILTER (WHERE line_no IS NULL), count(*) FILTER (WHERE order_time IS NULL), count(*) FILTER (WHERE store_id IS NULL),
        count(*) FILTER (WHERE channel IS NULL), count(*) FILTER (WHERE sku_id IS NULL), count(*) FILTER (WHERE quantity IS NULL),
        count(*) FILTER (WHERE unit_price IS NULL), count(*) FILTER (WHERE discount IS NULL), count(*) FILTER (WHERE amount IS NULL),
        count(*) FILTER (WHERE line_type IS NULL), count(*) FILTER (WHERE customer_key IS NULL),
        count(*) FILTER (WHERE brand IS NOT NULL AND order_id IS NOT NULL AND line_no IS NOT NULL)
          - count(DISTINCT (brand, order_id, line_no)) FILTER (WHERE brand IS NOT NULL AND order_id IS NOT NULL AND line_no IS NOT NULL),
        count(*) FILTER (WHERE unit_price < 0 OR unit_price > 100000), count(*) FILTER (WHERE discount < 0),
        count(*) FILTER (WHERE quantity < -1000 OR quantity > 1000), count(*) FILTER (WHERE line_type NOT IN ('sale', 'return')),
        count(*) FILTER (WHERE sku_id !~ '^[A-Z0-9][A-Z0-9_-]*$'), max(order_time))
      FROM public.bench_order_line $q$;
BEGIN
    PERFORM count(*) FROM public.bench_order_line;   -- warm the cache
    t0 := clock_timestamp();
    PERFORM count(*) FROM public.bench_order_line;
    INSERT INTO bench_time VALUES ('bare count(*)', extract(epoch FROM clock_timestamp() - t0), NULL);

    t0 := clock_timestamp();
    n := retail_mid.quality_evaluate('public.bench_order_line', '2026-05-01 00:00+00');
    INSERT INTO bench_time VALUES ('retail_mid.quality_evaluate', extract(epoch FROM clock_timestamp() - t0),
        (SELECT string_agg(observed::text, ',' ORDER BY rule_id) FROM retail_mid.quality_result WHERE run_id = n));

    t0 := clock_timestamp();
    FOREACH q IN ARRAY per_rule LOOP
        EXECUTE q INTO v;
        ans := ans || v || ',';
    END LOOP;
    INSERT INTO bench_time VALUES ('(a) one query per rule', extract(epoch FROM clock_timestamp() - t0), rtrim(ans, ','));

    t0 := clock_timestamp();
    EXECUTE one_statement INTO v;
    INSERT INTO bench_time VALUES ('(b) one statement with FILTER', extract(epoch FROM clock_timestamp() - t0), v);

    -- the same rules judged per brand too (by_brand): the one scan grouped by brand (3 brands + the whole table)
    UPDATE retail_mid.quality_rule SET by_brand = true WHERE table_name = 'public.bench_order_line'::regclass;
    t0 := clock_timestamp();
    n := retail_mid.quality_evaluate('public.bench_order_line', '2026-05-01 00:00+00');
    INSERT INTO bench_time VALUES ('retail_mid.quality_evaluate, per brand too', extract(epoch FROM clock_timestamp() - t0),
        (SELECT string_agg(observed::text, ',' ORDER BY rule_id) FROM retail_mid.quality_result WHERE run_id = n AND brand = '*'));
    UPDATE retail_mid.quality_rule SET by_brand = false WHERE table_name = 'public.bench_order_line'::regclass;
END;
$$;
SELECT what, round(seconds::numeric, 2) AS seconds FROM bench_time;
SELECT rule_name, observed, outcome, evaluated_at - lag(evaluated_at) OVER (ORDER BY result_id) AS took
  FROM retail_mid.quality_result WHERE table_name = 'public.bench_order_line' AND brand = '*' ORDER BY result_id;
SELECT round(((SELECT seconds FROM bench_time WHERE what LIKE '(a)%') / (SELECT seconds FROM bench_time WHERE what = 'retail_mid.quality_evaluate'))::numeric, 2) AS speedup_vs_per_rule_queries,
       round(((SELECT seconds FROM bench_time WHERE what LIKE '(b)%') / (SELECT seconds FROM bench_time WHERE what = 'retail_mid.quality_evaluate'))::numeric, 2) AS speedup_vs_one_filter_statement,
       :rows AS rows;
-- with the per-brand breakdown (whole table and every brand in the same scan) against the same peers, which
-- compute the whole table only
SELECT round(((SELECT seconds FROM bench_time WHERE what LIKE '(a)%') / (SELECT seconds FROM bench_time WHERE what LIKE '%per brand%'))::numeric, 2) AS per_brand_speedup_vs_per_rule_queries,
       round(((SELECT seconds FROM bench_time WHERE what LIKE '(b)%') / (SELECT seconds FROM bench_time WHERE what LIKE '%per brand%'))::numeric, 2) AS per_brand_speedup_vs_one_filter_statement,
       (SELECT count(*) FROM retail_mid.quality_result WHERE table_name = 'public.bench_order_line' AND brand <> '*') AS per_brand_results;
-- the three answers agree (the freshness rule: retail_mid stores hours since the newest row, the peers its time)
SELECT what, answer FROM bench_time WHERE answer IS NOT NULL;
