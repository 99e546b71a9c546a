-- Benchmark (issue 16): a 50-tag profile of a 10% audience (1M members on the default 10M customers),
-- audience_profile() on the tag bitmaps and bit-sliced indexes against the named peer, plain SQL: one GROUP BY
-- GROUPING SETS scan of a wide table with one column per tag (the numeric tags bucketed by width_bucket at their
-- quintiles, percentile_disc over the base in the same query), counting members and base per tag value.
-- Run: make bench BENCH=insight CUSTOMERS=N   (or psql -X -f test/bench/insight.sql -v customers=N inside
--      test/with_cluster.sh; default 10000000). The data is the one of test/bench/audience.sql.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\if :{?customers}
\else
\set customers ''
\endif
SELECT coalesce(nullif(:'customers', ''), '10000000')::int AS customers \gset
SET work_mem = '256MB';
\timing off
SELECT clock_timestamp() AS setup_started \gset

-- The wide table: 47 enumerated/boolean tags as smallint columns and 3 numeric tags. The tags the query uses are
-- hashes of the key (random membership, the hard case for bitmaps): t01 = city with 8 values, t02 = vip 0/1 with
-- 25% ones, n1 = monetary 0..1000. The 44 other tags are filler, constant over blocks of about a thousand keys
-- (so their bitmaps can be built from ranges in seconds instead of a 440M-row aggregation); they make the tag
-- tables realistic in size but are not read by the query.
DROP TABLE IF EXISTS bench_aud_wide;
SELECT format('CREATE UNLOGGED TABLE bench_aud_wide AS SELECT g::int4 AS customer_key, %s, %s FROM generate_series(1, %s) g',
              (SELECT string_agg(CASE WHEN i = 1 THEN '((hashint4(g) & 1023) % 8)::smallint AS t01'
                                      WHEN i = 2 THEN '((hashint4(g * 2) & 1023) < 256)::int::smallint AS t02'
                                      ELSE format('((g / %s) %% %s)::smallint AS t%s', 1000 + 37 * i, 2 + i % 9, lpad(i::text, 2, '0')) END,
                                 ', ' ORDER BY i) FROM generate_series(1, 47) i),
              (SELECT string_agg(format('round(((hashint4(g * %s) & 1048575) / 1048.575)::numeric, 2) AS n%s', 100 + j, j), ', ' ORDER BY j)
                 FROM generate_series(1, 3) j),
              :customers)
\gexec
VACUUM ANALYZE bench_aud_wide;
SELECT count(*) AS customers, pg_size_pretty(pg_total_relation_size('bench_aud_wide')) AS wide_table_size FROM bench_aud_wide;

-- Tag storage: tag definitions (rules are not run here), one bitmap per (tag, value) built in one pass, and for
-- the numeric tag n1 the current values plus the bit-sliced index that evaluate_tags() would build.
DELETE FROM retail_mid.tag_definition WHERE tag_name LIKE 'bench\_%';
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, owner)
SELECT 'bench_' || c, '其他', '其他', CASE WHEN c LIKE 'n%' THEN 'numeric' WHEN c = 't02' THEN 'boolean' ELSE 'enum' END,
       'SELECT NULL::int4, NULL::text', 'bench'
  FROM (SELECT 't' || lpad(i::text, 2, '0') FROM generate_series(1, 47) i UNION ALL SELECT 'n' || j FROM generate_series(1, 3) j) s(c);
INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, bitmap, customers)
SELECT 'bench_t01', t01::text, retail_mid.rb_build_agg(customer_key), count(*) FROM bench_aud_wide GROUP BY t01;
INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, bitmap, customers)
SELECT 'bench_t02', (t02 = 1)::text, retail_mid.rb_build_agg(customer_key), count(*) FROM bench_aud_wide GROUP BY t02;
-- filler tag i, value v: the blocks b of size B = 1000 + 37 i with b % m = v, i.e. keys [b B, (b + 1) B)
INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, bitmap, customers)
SELECT tag_name, tag_value, b, retail_mid.rb_cardinality(b)
  FROM (SELECT 'bench_t' || lpad(i::text, 2, '0') AS tag_name, (blk % (2 + i % 9))::text AS tag_value,
               retail_mid.rb_or_agg(retail_mid.rb_range(greatest(blk * (1000 + 37 * i), 1),
                                                        least((blk + 1) * (1000 + 37 * i), :customers + 1))) AS b
          FROM generate_series(3, 47) i, LATERAL generate_series(0, :customers / (1000 + 37 * i)) blk
         GROUP BY 1, 2) s
 WHERE NOT retail_mid.rb_is_empty(b);
-- the filler bitmaps must describe the same customers as the wide table's columns
SELECT bool_and(customers = (SELECT count(*) FROM bench_aud_wide w WHERE w.t03::text = tb.tag_value)) AS filler_t03_consistent
  FROM retail_mid.tag_bitmap tb WHERE tag_name = 'bench_t03';
INSERT INTO retail_mid.tag_bsi (tag_name, scale, min_value, max_value, customers, bsi)
SELECT 'bench_n1', 2, min(n1), max(n1), count(*), retail_mid.bsi_build_agg(customer_key, (n1 * 100)::int8) FROM bench_aud_wide;
INSERT INTO retail_mid.tag_bsi (tag_name, scale, min_value, max_value, customers, bsi)
SELECT 'bench_n2', 2, min(n2), max(n2), count(*), retail_mid.bsi_build_agg(customer_key, (n2 * 100)::int8) FROM bench_aud_wide;
INSERT INTO retail_mid.tag_bsi (tag_name, scale, min_value, max_value, customers, bsi)
SELECT 'bench_n3', 2, min(n3), max(n3), count(*), retail_mid.bsi_build_agg(customer_key, (n3 * 100)::int8) FROM bench_aud_wide;
DELETE FROM retail_mid.customer_universe;
INSERT INTO retail_mid.customer_universe (max_key, bitmap) SELECT 0, retail_mid.rb_range(1, :customers + 1);
VACUUM ANALYZE retail_mid.tag_bitmap, retail_mid.tag_bsi;
SELECT count(DISTINCT tag_name) AS tags_with_bitmaps, count(*) AS bitmaps_and_indexes,
       pg_size_pretty(sum(size)) AS bytes
  FROM (SELECT tag_name, pg_column_size(bitmap)::bigint AS size FROM retail_mid.tag_bitmap WHERE tag_name LIKE 'bench\_%'
        UNION ALL SELECT tag_name, pg_column_size(bsi) FROM retail_mid.tag_bsi WHERE tag_name LIKE 'bench\_%') s;

SELECT round(extract(epoch FROM clock_timestamp() - :'setup_started'::timestamptz)::numeric, 1) AS setup_seconds;

-- the audience: vip AND monetary >= 600 (hash-random, about 25% x 40% = 10% of the customers)
\set expr 'bench_t02 AND bench_n1 >= 600'
SELECT array_agg(tag_name ORDER BY tag_name) AS tags FROM retail_mid.tag_definition WHERE tag_name LIKE 'bench\_%' \gset
SELECT retail_mid.audience_count(:'expr') AS audience_members, cardinality(:'tags'::text[]) AS tags_profiled;
-- the peer: one scan, 50 grouping sets; the numeric tags in buckets at the base's quintiles (percentile_disc)
SELECT format($q$WITH q AS (SELECT %s FROM bench_aud_wide)
SELECT t, v, count(*) FILTER (WHERE t02 = 1 AND n1 >= 600) AS members, count(*) AS base_members
  FROM (SELECT %s FROM bench_aud_wide w, q) x
 CROSS JOIN LATERAL (VALUES %s) u(t, v)
 GROUP BY t, v$q$,
  (SELECT string_agg(format('percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY n%s) AS b%s', j, j), ', ') FROM generate_series(1, 3) j),
  'w.n1, ' || (SELECT string_agg(format('w.t%s', lpad(i::text, 2, '0')), ', ') FROM generate_series(1, 47) i) || ', '
    || (SELECT string_agg(format('width_bucket(w.n%s, q.b%s) + 1 AS k%s', j, j, j), ', ') FROM generate_series(1, 3) j),
  (SELECT string_agg(format(CASE WHEN i = 2 THEN '(%L, (t%s = 1)::text)' ELSE '(%L, t%s::text)' END,
                            'bench_t' || lpad(i::text, 2, '0'), lpad(i::text, 2, '0')), ', ') FROM generate_series(1, 47) i)
    || ', ' || (SELECT string_agg(format('(%L, k%s::text)', 'bench_n' || j, j), ', ') FROM generate_series(1, 3) j)) AS peer \gset
-- the grouping-sets form: one aggregation pass with a grouping set per tag (the faster peer; the one timed)
SELECT format($q$WITH q AS (SELECT %s FROM bench_aud_wide)
SELECT coalesce(%s) AS t, coalesce(%s) AS v, count(*) FILTER (WHERE t02 = 1 AND n1 >= 600) AS members, count(*) AS base_members
  FROM (SELECT w.*, %s FROM bench_aud_wide w, q) x
 GROUP BY GROUPING SETS (%s)$q$,
  (SELECT string_agg(format('percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY n%s) AS b%s', j, j), ', ') FROM generate_series(1, 3) j),
  (SELECT string_agg(format('CASE WHEN GROUPING(%s) = 0 THEN %L END', c, n), ', ' ORDER BY o) FROM (
     SELECT i AS o, 't' || lpad(i::text, 2, '0') AS c, 'bench_t' || lpad(i::text, 2, '0') AS n FROM generate_series(1, 47) i
     UNION ALL SELECT 47 + j, 'k' || j, 'bench_n' || j FROM generate_series(1, 3) j) g),
  (SELECT string_agg(format('CASE WHEN GROUPING(%s) = 0 THEN %s END', c, e), ', ' ORDER BY o) FROM (
     SELECT i AS o, 't' || lpad(i::text, 2, '0') AS c,
            CASE WHEN i = 2 THEN '(t02 = 1)::text' ELSE 't' || lpad(i::text, 2, '0') || '::text' END AS e FROM generate_series(1, 47) i
     UNION ALL SELECT 47 + j, 'k' || j, 'k' || j || '::text' FROM generate_series(1, 3) j) g),
  (SELECT string_agg(format('width_bucket(w.n%s, q.b%s) + 1 AS k%s', j, j, j), ', ') FROM generate_series(1, 3) j),
  (SELECT string_agg(format('(t%s)', lpad(i::text, 2, '0')), ', ') FROM generate_series(1, 47) i) || ', (k1), (k2), (k3)') AS peer_gs \gset

-- the peers must give the same counts as the profile before anything is timed (numeric rows compared by bucket
-- number); the unpivot form only at up to 1M customers (it takes minutes beyond)
CREATE TEMP TABLE bench_ins_ours AS
SELECT tag AS t, coalesce(bucket::text, value) AS v, members, base_members FROM retail_mid.audience_profile(:'expr', NULL, :'tags');
CREATE TEMP TABLE bench_ins_peer AS :peer_gs;
SELECT (SELECT count(*) FROM bench_ins_ours) AS rows_profile, (SELECT count(*) FROM bench_ins_peer) AS rows_grouping_sets,
       (SELECT count(*) FROM (SELECT * FROM bench_ins_ours EXCEPT SELECT * FROM bench_ins_peer) a)
     + (SELECT count(*) FROM (SELECT * FROM bench_ins_peer EXCEPT SELECT * FROM bench_ins_ours) b) AS rows_differing;
SELECT :customers <= 1000000 AS small \gset
\if :small
CREATE TEMP TABLE bench_ins_peer2 AS :peer;
SELECT (SELECT count(*) FROM (SELECT * FROM bench_ins_ours EXCEPT SELECT * FROM bench_ins_peer2) a)
     + (SELECT count(*) FROM (SELECT * FROM bench_ins_peer2 EXCEPT SELECT * FROM bench_ins_ours) b) AS unpivot_rows_differing;
\endif

CREATE TEMP TABLE bench_ins_times (contender text, run int, seconds float8);
CREATE FUNCTION pg_temp.bench(contender text, run int, q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; n bigint;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q INTO n;
    INSERT INTO bench_ins_times VALUES (contender, run, extract(epoch FROM clock_timestamp() - t0));
END;
$$;
-- three rounds, interleaved; the peers may use parallel workers (2)
SELECT pg_temp.bench('retail_mid.audience_profile', r, format('SELECT count(*) FROM retail_mid.audience_profile(%L, NULL, %L)', :'expr', :'tags')),
       pg_temp.bench('sql_grouping_sets', r, format('SELECT count(*) FROM (%s) x', :'peer_gs'))
  FROM generate_series(1, 3) r;
\if :small
SELECT pg_temp.bench('sql_unpivot_group_by', r, format('SELECT count(*) FROM (%s) x', :'peer')) FROM generate_series(1, 3) r;
\endif
SELECT contender, round(min(seconds)::numeric, 3) AS best_seconds, round(max(seconds)::numeric, 3) AS worst_seconds
  FROM bench_ins_times GROUP BY 1 ORDER BY 2;
WITH b AS (SELECT contender, min(seconds) s FROM bench_ins_times GROUP BY 1)
SELECT round(((SELECT s FROM b WHERE contender = 'sql_grouping_sets') / (SELECT s FROM b WHERE contender = 'retail_mid.audience_profile'))::numeric, 1)
         AS grouping_sets_vs_profile,
       round(((SELECT s FROM b WHERE contender = 'sql_unpivot_group_by') / (SELECT s FROM b WHERE contender = 'retail_mid.audience_profile'))::numeric, 1)
         AS unpivot_group_by_vs_profile;

DELETE FROM retail_mid.tag_definition WHERE tag_name LIKE 'bench\_%';
DELETE FROM retail_mid.customer_universe;
DROP TABLE bench_aud_wide;
