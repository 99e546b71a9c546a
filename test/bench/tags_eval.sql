-- Benchmark: evaluate_tags with 50 tags of one source, evaluated in one scan (tags defined by source + expression)
-- against the same 50 tags evaluated one query per tag (each tag a rule_sql SELECT of its column), on the same
-- synthetic customers (-v customers=N, default 50,000). The source is a customer summary view over a detail table
-- (8 rows a customer), as tag sources usually are (DWS-style aggregates); a query selecting one column computes
-- only that column's aggregate (the planner drops the unused ones). Both write the same values; then both are
-- re-evaluated on unchanged data (nothing written: scan + compare).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
\if :{?customers}
\else
\set customers ''
\endif
SELECT coalesce(nullif(:'customers', ''), '50000')::int AS customers \gset
CREATE TABLE bench_te_detail AS
SELECT c AS customer_key, (hashint4(c * 8 + j) & 1023) AS k, round(((hashint4(c * 16 + j) & 65535) / 100.0)::numeric, 2) AS amount
  FROM generate_series(1, :customers) c, generate_series(1, 8) j;
ANALYZE bench_te_detail;
-- 40 enumerated (3..12 values), 5 boolean and 5 numeric columns
SELECT format('CREATE VIEW bench_te_src AS SELECT customer_key, %s FROM bench_te_detail GROUP BY customer_key',
              string_agg(CASE WHEN i <= 40 THEN format('sum(k * %s) %% %s AS c%s', i, 3 + i % 10, i)
                              WHEN i <= 45 THEN format('bool_or(k %% %s = 0) AS c%s', i, i)
                              ELSE format('round(sum(amount * %s) / 7, 2) AS c%s', i, i) END, ', ' ORDER BY i))
  FROM generate_series(1, 50) i
\gexec
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, source, expression, owner)
SELECT 'bench_g' || i, '其他', '其他', CASE WHEN i <= 40 THEN 'enum' WHEN i <= 45 THEN 'boolean' ELSE 'numeric' END,
       'public.bench_te_src', 'c' || i, 'bench'
  FROM generate_series(1, 50) i;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, owner)
SELECT 'bench_p' || i, '其他', '其他', CASE WHEN i <= 40 THEN 'enum' WHEN i <= 45 THEN 'boolean' ELSE 'numeric' END,
       format('SELECT customer_key, c%s FROM public.bench_te_src', i), 'bench'
  FROM generate_series(1, 50) i;
CREATE TABLE timing (who text, phase text, seconds float8, scans int);

SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.evaluate_tags(ARRAY(SELECT 'bench_g' || i FROM generate_series(1, 50) i)) AS grouped_rows \gset
INSERT INTO timing SELECT 'one scan per source', 'first evaluation', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
                          (SELECT (detail ->> 'source_scans')::int FROM retail_mid.job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1);
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.evaluate_tags(ARRAY(SELECT 'bench_p' || i FROM generate_series(1, 50) i)) AS per_tag_rows \gset
INSERT INTO timing SELECT 'one query per tag', 'first evaluation', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
                          (SELECT (detail ->> 'source_scans')::int FROM retail_mid.job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1);
VACUUM ANALYZE retail_mid.tag_value;
\set round 1
\ir tags_eval_round.sql
\set round 2
\ir tags_eval_round.sql

-- both paths stored the same values
SELECT :grouped_rows AS grouped_rows, :per_tag_rows AS per_tag_rows,
       (SELECT count(*) FROM (SELECT substr(tag_name, 8), customer_key, value FROM retail_mid.tag_value WHERE tag_name LIKE 'bench\_g%' AND valid_to IS NULL
                              EXCEPT SELECT substr(tag_name, 8), customer_key, value FROM retail_mid.tag_value WHERE tag_name LIKE 'bench\_p%' AND valid_to IS NULL) x) AS differences;
\echo
\echo === evaluate_tags, 50 tags of one source table, :customers customers ===
SELECT phase, round(min(seconds) FILTER (WHERE who = 'one scan per source')::numeric, 2) AS one_scan_s,
       max(scans) FILTER (WHERE who = 'one scan per source') AS scans,
       round(min(seconds) FILTER (WHERE who = 'one query per tag')::numeric, 2) AS per_tag_s,
       max(scans) FILTER (WHERE who = 'one query per tag') AS per_tag_scans,
       round((min(seconds) FILTER (WHERE who = 'one query per tag') / min(seconds) FILTER (WHERE who = 'one scan per source'))::numeric, 2) AS speedup
  FROM timing GROUP BY phase ORDER BY phase;
DELETE FROM retail_mid.tag_definition WHERE tag_name LIKE 'bench\_g%' OR tag_name LIKE 'bench\_p%';
DROP VIEW bench_te_src;
DROP TABLE bench_te_detail, timing;
