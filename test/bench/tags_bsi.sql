-- Benchmark: numeric tag range predicates answered from the bit-sliced index (audience_count) against scanning the
-- current tag_value rows of the tag through its (tag_name, numeric_value) index: (a) count(*) of the matching rows,
-- (b) the bitmap of the matching customers built from those rows (what an audience needs to combine predicates).
-- -v customers=N (default 1,000,000); values uniform in [-100, 10000] with two decimals. The rows and the index are
-- stored as evaluate_tags() stores them (bulk-loaded here to save time). Best of three interleaved rounds.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
\if :{?customers}
\else
\set customers ''
\endif
SELECT coalesce(nullif(:'customers', ''), '1000000')::int AS customers \gset
DELETE FROM retail_mid.tag_definition WHERE tag_name = 'bench_bsi';
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, numeric_scale, owner)
VALUES ('bench_bsi', '其他', '其他', 'numeric', 'SELECT NULL::int4, NULL::numeric', 2, 'bench');
INSERT INTO retail_mid.tag_value (tag_name, customer_key, value, numeric_value, valid_from)
SELECT 'bench_bsi', g, v::text, v, now()
  FROM (SELECT g, round((10100 * retail_mid.synth_uniform(41, 1, g) - 100)::numeric, 2) AS v FROM generate_series(1, :customers) g) s;
INSERT INTO retail_mid.tag_bsi (tag_name, scale, min_value, max_value, customers, bsi)
SELECT 'bench_bsi', 2, min(numeric_value), max(numeric_value), count(*), retail_mid.bsi_build_agg(customer_key, (numeric_value * 100)::int8)
  FROM retail_mid.tag_value WHERE tag_name = 'bench_bsi' AND valid_to IS NULL;
VACUUM ANALYZE retail_mid.tag_value, retail_mid.tag_bsi;
SELECT customers, pg_size_pretty(pg_column_size(bsi)::bigint) AS bsi_size,
       length(bsi) / 1024 AS bsi_kib FROM retail_mid.tag_bsi WHERE tag_name = 'bench_bsi';

CREATE TEMP TABLE preds (name text, expr text, sqlpred text);
INSERT INTO preds VALUES
  ('>= 5000 (50%)', 'bench_bsi >= 5000', 'numeric_value >= 5000'),
  ('>= 9900 (1%)', 'bench_bsi >= 9900', 'numeric_value >= 9900'),
  ('BETWEEN 2500 AND 2600 (1%)', 'bench_bsi BETWEEN 2500 AND 2600', 'numeric_value BETWEEN 2500 AND 2600'),
  ('< -50 (0.5%)', 'bench_bsi < -50', 'numeric_value < -50'),
  ('= 1234.56', 'bench_bsi = 1234.56', 'numeric_value = 1234.56');
CREATE TEMP TABLE times (name text, who text, round int, seconds float8, answer bigint);
CREATE FUNCTION pg_temp.t(name text, who text, r int, q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
    EXECUTE q INTO n;
    INSERT INTO times VALUES (name, who, r, extract(epoch FROM clock_timestamp() - t0), n);
END $$;
SELECT pg_temp.t(p.name, 'bsi', r, format('SELECT retail_mid.audience_count(%L)', p.expr)),
       pg_temp.t(p.name, 'rows_count', r, format('SELECT count(*) FROM retail_mid.tag_value WHERE tag_name = ''bench_bsi'' AND valid_to IS NULL AND %s', p.sqlpred)),
       pg_temp.t(p.name, 'rows_bitmap', r, format('SELECT retail_mid.rb_cardinality(retail_mid.rb_build_agg(customer_key)) FROM retail_mid.tag_value WHERE tag_name = ''bench_bsi'' AND valid_to IS NULL AND %s', p.sqlpred))
  FROM preds p, generate_series(1, 3) r;
\echo
\echo === numeric range predicates, :customers customers: bit-sliced index against the tag_value rows (best of 3) ===
SELECT name, min(answer) = max(answer) AS same_answer, max(answer) AS customers,
       round(min(seconds) FILTER (WHERE who = 'bsi')::numeric * 1000, 1) AS bsi_ms,
       round(min(seconds) FILTER (WHERE who = 'rows_count')::numeric * 1000, 1) AS rows_count_ms,
       round(min(seconds) FILTER (WHERE who = 'rows_bitmap')::numeric * 1000, 1) AS rows_bitmap_ms,
       round((min(seconds) FILTER (WHERE who = 'rows_count') / min(seconds) FILTER (WHERE who = 'bsi'))::numeric, 1) AS vs_count,
       round((min(seconds) FILTER (WHERE who = 'rows_bitmap') / min(seconds) FILTER (WHERE who = 'bsi'))::numeric, 1) AS vs_bitmap
  FROM times GROUP BY name ORDER BY name;
DELETE FROM retail_mid.tag_definition WHERE tag_name = 'bench_bsi';
