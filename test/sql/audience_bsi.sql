-- audience_bsi: bit-sliced indexes of numeric tags, exact against plain SQL (negatives, boundaries, equal values,
-- empty), bad input, parallel and partitionwise builds, and numeric tags through evaluate_tags and expressions
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET search_path = retail_mid, public;

-- 6,000 keys with values in [-1000, 1000], a lump of equal values, and NULLs (no value)
CREATE TABLE bsi_t AS
SELECT g AS k, CASE WHEN g % 19 = 0 THEN NULL WHEN g % 10 = 3 THEN 77
                    ELSE (floor(2001 * retail_mid.synth_uniform(31, 1, g)) - 1000)::int8 END AS v
  FROM generate_series(0, 5999) g;
CREATE TABLE bsi_idx AS SELECT bsi_build_agg(k, v) AS b FROM bsi_t;
SELECT bsi_cardinality(b) AS customers, (SELECT count(v) FROM bsi_t) AS non_null_values FROM bsi_idx;
-- every [lo, hi] over a grid of bounds (incl. open ones, min/max and one beyond, lo = hi, lo > hi) equals SQL
CREATE TEMP TABLE bsi_bounds AS
SELECT x FROM (VALUES (NULL::int8), (-1001), (-1000), (-999), (-1), (0), (1), (76), (77), (78), (500), (999), (1000), (1001)) v(x)
UNION ALL SELECT (floor(2001 * retail_mid.synth_uniform(32, 1, g)) - 1000)::int8 FROM generate_series(1, 16) g;
SELECT count(*) AS ranges,
       count(*) FILTER (WHERE bsi_range(i.b, lo.x, hi.x)
                        IS DISTINCT FROM (SELECT coalesce(rb_build_agg(k), '{}') FROM bsi_t
                                           WHERE v IS NOT NULL AND (lo.x IS NULL OR v >= lo.x) AND (hi.x IS NULL OR v <= hi.x))) AS wrong
  FROM bsi_idx i, bsi_bounds lo, bsi_bounds hi;

-- the extremes of int8 in one index: 64 slices, offsets beyond the int8 range
CREATE TABLE bsi_ext AS SELECT * FROM (VALUES (1, -9223372036854775808), (2, 9223372036854775807), (3, 0), (4, -1), (5, 1),
                                              (6, 9223372036854775806), (7, -9223372036854775807)) v(k, v);
SELECT lo, hi, rb_to_array(bsi_range((SELECT bsi_build_agg(k, v) FROM bsi_ext), lo, hi)) AS keys,
       (SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM bsi_ext WHERE (lo IS NULL OR v >= lo) AND (hi IS NULL OR v <= hi)) AS plain_sql
  FROM (VALUES (NULL::int8, NULL::int8), (-9223372036854775808, -9223372036854775808), (9223372036854775807, NULL),
               (-1, 1), (0, 0), (NULL, -1), (9223372036854775806, 9223372036854775807), (2, -2)) b(lo, hi);
-- one value (no slices), equal values, no rows
SELECT rb_to_array(bsi_range(b, 5, 5)) AS eq5, rb_to_array(bsi_range(b, 6, NULL)) AS ge6, rb_to_array(bsi_range(b, NULL, 4)) AS le4
  FROM (SELECT bsi_build_agg(k, 5) AS b FROM generate_series(1, 4) k) s;
SELECT bsi_build_agg(k, v) IS NULL AS empty_is_null FROM bsi_t WHERE false;
SELECT bsi_build_agg(k, NULL) IS NULL AS nulls_only_is_null FROM generate_series(1, 3) k;
SELECT bsi_range(NULL, 1, 2) IS NULL AS null_in_null_out;

-- bad input
SELECT bsi_build_agg(k, 1) FROM (VALUES (1), (2), (1)) v(k);
SELECT bsi_build_agg(-1, 1);
SELECT bsi_range('\x'::bytea, 1, 2);
SELECT bsi_range('\x42534931'::bytea, 1, 2);
SELECT bsi_range(overlay(b placing '\x00'::bytea from 1), 1, 2) FROM bsi_idx;
SELECT bsi_range(substring(b from 1 for length(b) - 1), 1, 2) FROM bsi_idx;
SELECT bsi_range(b || '\x00'::bytea, 1, 2) FROM bsi_idx;
SELECT bsi_range(overlay(b placing '\x05000000'::bytea from 21), 1, 2) FROM bsi_idx;   -- slice count
SELECT bsi_range(overlay(b placing '\x0000000000000080'::bytea from 13), 1, 2) FROM bsi_idx;   -- max < min
SELECT bsi_range(overlay(b placing '\xffffff7f'::bytea from 25), 1, 2) FROM bsi_idx;   -- bitmap length
SELECT bsi_cardinality(overlay(b placing '\x3a'::bytea from 29)) FROM bsi_idx;   -- bitmap bytes

-- forced parallel and partitionwise builds give the same bytes as the serial one (the final sorts by key)
CREATE TABLE bsi_big AS SELECT k + 6000 * rep AS k, v FROM bsi_t, generate_series(0, 19) rep;
ALTER TABLE bsi_big SET (parallel_workers = 2);
ANALYZE bsi_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT bsi_build_agg(k, v) FROM bsi_big;
CREATE TEMP TABLE bsi_par AS SELECT bsi_build_agg(k, v) AS b FROM bsi_big;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT b FROM bsi_par) = (SELECT bsi_build_agg(k, v) FROM bsi_big) AS parallel_same;
RESET max_parallel_workers_per_gather;
CREATE TABLE bsi_part (grp int, k int, v int8) PARTITION BY LIST (grp);
CREATE TABLE bsi_part_0 PARTITION OF bsi_part FOR VALUES IN (0);
CREATE TABLE bsi_part_1 PARTITION OF bsi_part FOR VALUES IN (1);
INSERT INTO bsi_part SELECT k % 2, k, v FROM bsi_t;
SET enable_partitionwise_aggregate = on;
EXPLAIN (COSTS OFF) SELECT grp, bsi_build_agg(k, v) FROM bsi_part GROUP BY grp;
SELECT count(*) AS partitionwise_differences FROM (
    SELECT grp, bsi_build_agg(k, v) FROM bsi_part GROUP BY grp
    EXCEPT SELECT k % 2, bsi_build_agg(k, v) FROM bsi_t GROUP BY k % 2) x;
RESET enable_partitionwise_aggregate;
-- as a window aggregate the final function runs repeatedly on one state
SELECT k, rb_to_array(bsi_range(bsi_build_agg(k, v) OVER (ORDER BY k), 0, NULL)) AS non_negative_so_far
  FROM (VALUES (1, 5::int8), (2, -3), (3, 0)) t(k, v) ORDER BY k;

-- numeric tags: stored rounded to numeric_scale decimals, predicates exact against plain SQL on the rounded values
CREATE TEMP TABLE bsi_cust AS
SELECT g AS customer_key,
       CASE WHEN g % 13 = 0 THEN NULL WHEN g % 9 = 0 THEN 12.5
            ELSE round((2000 * retail_mid.synth_uniform(33, 1, g) - 1000)::numeric, 3) END AS balance
  FROM generate_series(1, 4000) g;
INSERT INTO tag_definition (tag_name, level1, level2, value_type, rule_sql, numeric_scale, owner) VALUES
  ('bsi_balance', '其他', '其他', 'numeric', 'SELECT customer_key, balance FROM pg_temp.bsi_cust', 2, 'test'),
  ('bsi_empty', '其他', '其他', 'numeric', 'SELECT customer_key, balance FROM pg_temp.bsi_cust WHERE false', 0, 'test');
SET client_min_messages = warning;
SELECT evaluate_tags(ARRAY['bsi_balance', 'bsi_empty']) > 0 AS evaluated;
RESET client_min_messages;
SELECT tag_name, scale, customers, min_value, max_value FROM tag_bsi WHERE tag_name LIKE 'bsi\_%' ORDER BY 1;
SELECT count(*) FILTER (WHERE v.numeric_value <> round(c.balance, 2)) AS not_rounded, count(*) AS stored
  FROM tag_value v JOIN bsi_cust c USING (customer_key) WHERE v.tag_name = 'bsi_balance' AND v.valid_to IS NULL;
CREATE TEMP TABLE bsi_universe AS SELECT rb_to_array(customer_universe()) AS u;
CREATE FUNCTION pg_temp.bsi_check(e text, p text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE ref retail_mid.rbitmap;
BEGIN
    EXECUTE format('SELECT coalesce(retail_mid.rb_build_agg(u), ''{}'') FROM (SELECT unnest(u) AS u FROM pg_temp.bsi_universe) x
                     LEFT JOIN (SELECT customer_key, round(balance, 2) AS balance FROM pg_temp.bsi_cust) c ON c.customer_key = x.u
                    WHERE %s', p) INTO ref;
    RETURN retail_mid.audience(e) = ref;
END $$;
-- thresholds: stored values, values between two representable ones, equal-value lump, extremes, outside
SELECT count(*) AS comparisons,
       count(*) FILTER (WHERE NOT pg_temp.bsi_check(format('bsi_balance %s %s', op, t), format('balance %s %s', op, t))) AS wrong
  FROM (SELECT DISTINCT t FROM (
          SELECT round(balance, 2) AS t FROM bsi_cust WHERE customer_key % 97 = 1 AND balance IS NOT NULL
          UNION ALL SELECT round(balance, 2) + d FROM bsi_cust, (VALUES (-0.005), (0.005), (-0.001), (0.0001)) dd(d)
                     WHERE customer_key % 211 = 2 AND balance IS NOT NULL
          UNION ALL VALUES (12.5), (12.495), (12.505), (-1000), (1000), (-1000.01), (1000.01), (0), (-0.004), (-1e30), (1e30),
                           ((SELECT min(round(balance, 2)) FROM bsi_cust)), ((SELECT max(round(balance, 2)) FROM bsi_cust))) s(t)) ts,
       unnest(ARRAY['<', '<=', '>', '>=', '=', '<>']) op;
SELECT e, pg_temp.bsi_check(e, p) AS matches_sql FROM (VALUES
  ('bsi_balance BETWEEN -10.004 AND 12.5', 'balance BETWEEN -10.004 AND 12.5'),
  ('bsi_balance NOT BETWEEN -10 AND 12.5', 'balance NOT BETWEEN -10 AND 12.5'),
  ('bsi_balance BETWEEN 5 AND -5', 'false'),
  ('bsi_balance IN (12.5, 0, 12.501)', 'balance IN (12.5, 0)'),
  ('NOT bsi_balance >= 0', 'NOT coalesce(balance >= 0, false)'),
  ('bsi_balance = 12.5 AND NOT bsi_balance <> 12.5', 'balance = 12.5'),
  ('bsi_empty >= 0 OR bsi_empty < 0', 'false')) v(e, p);
-- the SQL entry point: open bounds, infinities, NaN
SELECT rb_cardinality(tag_numeric_range('bsi_balance', NULL, true, NULL, true)) AS all_values,
       rb_cardinality(tag_numeric_range('bsi_balance', 'Infinity', true, NULL, true)) AS above_infinity,
       rb_cardinality(tag_numeric_range('bsi_balance', '-Infinity', false, 'Infinity', false)) AS between_infinities,
       rb_cardinality(tag_numeric_range('bsi_balance', 12.5, true, 12.5, true)) = (SELECT count(*) FROM bsi_cust WHERE balance = 12.5) AS equal_lump,
       tag_numeric_range(NULL, 1, true, 2, true) IS NULL AS null_tag;
SELECT tag_numeric_range('bsi_balance', 'NaN', true, NULL, true);
SELECT tag_numeric_range('nosuch', 1, true, NULL, true);
SELECT audience_count('bsi_balance >= 1e400');
-- the stored form of a numeric value: rounded to the scale, NaN/Infinity/out of range name the tag
SELECT tag_numeric_value(12.345, 2, 't') AS rounded, tag_numeric_value(-0.004, 2, 't') AS tiny_negative,
       tag_numeric_value(92233720368547758.07, 2, 't') AS largest, tag_numeric_value(NULL, 2, 't') IS NULL AS null_is_no_value;
SELECT tag_numeric_value('NaN', 2, 't');
SELECT tag_numeric_value('-Infinity', 2, 't');
SELECT tag_numeric_value(92233720368547758.08, 2, 't');
SELECT tag_numeric_value(1, 13, 't');
-- a value too large for its scale fails the tag, which keeps its stored values
UPDATE tag_definition SET numeric_scale = 12 WHERE tag_name = 'bsi_empty';
UPDATE tag_definition SET rule_sql = 'SELECT 1, 1e7' WHERE tag_name = 'bsi_empty';
SELECT evaluate_tags(ARRAY['bsi_empty']) AS rows_written;
SELECT detail -> 'failed' -> 0 ->> 'sqlstate' AS sqlstate FROM job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1;
\set VERBOSITY terse
UPDATE tag_definition SET numeric_scale = 13 WHERE tag_name = 'bsi_empty';
\set VERBOSITY default
DELETE FROM tag_definition WHERE tag_name LIKE 'bsi\_%';
DROP TABLE bsi_t, bsi_idx, bsi_ext, bsi_big, bsi_part;
