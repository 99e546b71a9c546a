-- bitmap: the rbitmap type, its operators and aggregates, checked against plain SQL on arrays
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET search_path = retail_mid, public;

-- text I/O
SELECT '{}'::rbitmap AS empty, '{3,1,2,2}'::rbitmap AS dedup_sorted, ' { 5 , +6 } '::rbitmap AS spaces,
       '{0,2147483647}'::rbitmap AS extremes;
SELECT rb_cardinality('{}'), rb_is_empty('{}'), rb_min('{}') IS NULL AS min_null, rb_max('{}') IS NULL AS max_null,
       rb_to_array('{}'), (SELECT count(*) FROM rb_iterate('{}')) AS rows;
-- malformed text
SELECT '{1,'::rbitmap;
SELECT '1,2'::rbitmap;
SELECT '{a}'::rbitmap;
SELECT '{1}x'::rbitmap;
SELECT '{1 2}'::rbitmap;
SELECT '{,}'::rbitmap;
SELECT ''::rbitmap;
SELECT '{-1}'::rbitmap;
SELECT '{2147483648}'::rbitmap;
SELECT '{99999999999999999999}'::rbitmap;

-- construction and expansion, against the arrays they come from
SELECT rb_build(ARRAY[5, 1, NULL, 5, 100000, 70000]) AS built, rb_to_array(rb_build(ARRAY[5, 1, NULL, 5, 100000, 70000]));
SELECT rb_build('{}'::int4[]) AS empty, rb_build(ARRAY[NULL]::int4[]) AS only_null, rb_build('{{1,2},{3,4}}'::int4[]) AS two_dim;
SELECT rb_build(ARRAY[1, -5]);
SELECT rb_range(-1, 5);
SELECT rb_range(5, 5) AS empty, rb_range(5, 3) AS reversed, rb_range(3, 7) AS r;
SELECT array(SELECT rb_iterate(rb_build(ARRAY[9, 3, 65536, 65535, 131072]))) AS iterated;

-- scalar functions and operators against array-based reference answers
CREATE TEMP TABLE bm_pairs AS
SELECT i, a, b, rb_build(a) AS ra, rb_build(b) AS rb
  FROM (SELECT i,
               array(SELECT DISTINCT (hashint4(i * 1000 + g) & 1048575) FROM generate_series(1, 50 + i * 37) g) AS a,
               array(SELECT DISTINCT (hashint4(-i * 1000 - g) & 1048575) % (1 + i * 2000) FROM generate_series(1, 30 + i * 53) g) AS b
          FROM generate_series(0, 40) i) s;
INSERT INTO bm_pairs VALUES (41, '{}', '{1,2}', '{}', '{1,2}'), (42, '{1,2}', '{}', '{1,2}', '{}'),
    (43, '{7}', '{7}', '{7}', '{7}');
-- every row is checked against the same computation done on int4 arrays; zero mismatches expected
SELECT count(*) AS rows,
       count(*) FILTER (WHERE rb_to_array(ra & rb) IS DISTINCT FROM
                        array(SELECT x FROM unnest(a) x INTERSECT SELECT y FROM unnest(b) y ORDER BY 1)) AS and_bad,
       count(*) FILTER (WHERE rb_to_array(ra | rb) IS DISTINCT FROM
                        array(SELECT x FROM unnest(a) x UNION SELECT y FROM unnest(b) y ORDER BY 1)) AS or_bad,
       count(*) FILTER (WHERE rb_to_array(ra - rb) IS DISTINCT FROM
                        array(SELECT x FROM unnest(a) x EXCEPT SELECT y FROM unnest(b) y ORDER BY 1)) AS andnot_bad,
       count(*) FILTER (WHERE rb_to_array(ra # rb) IS DISTINCT FROM
                        array(SELECT z FROM ((SELECT x FROM unnest(a) x EXCEPT SELECT y FROM unnest(b) y)
                                       UNION (SELECT y FROM unnest(b) y EXCEPT SELECT x FROM unnest(a) x)) u(z) ORDER BY 1)) AS xor_bad,
       count(*) FILTER (WHERE rb_and_cardinality(ra, rb) <> (SELECT count(*) FROM (SELECT x FROM unnest(a) x INTERSECT SELECT y FROM unnest(b) y) q)
                           OR rb_or_cardinality(ra, rb) <> (SELECT count(*) FROM (SELECT x FROM unnest(a) x UNION SELECT y FROM unnest(b) y) q)
                           OR rb_andnot_cardinality(ra, rb) <> (SELECT count(*) FROM (SELECT x FROM unnest(a) x EXCEPT SELECT y FROM unnest(b) y) q)
                           OR rb_xor_cardinality(ra, rb) <> rb_cardinality(ra # rb)) AS card_bad,
       count(*) FILTER (WHERE (ra && rb) IS DISTINCT FROM (a && b)) AS overlap_bad,
       count(*) FILTER (WHERE (ra @> rb) IS DISTINCT FROM (a @> b) OR (ra <@ rb) IS DISTINCT FROM (a <@ b)) AS contain_bad,
       count(*) FILTER (WHERE (ra = rb) IS DISTINCT FROM (a @> b AND a <@ b) OR (ra <> rb) = (ra = rb)) AS eq_bad,
       count(*) FILTER (WHERE rb_cardinality(ra) <> cardinality(a) OR rb_min(ra) IS DISTINCT FROM (SELECT min(x) FROM unnest(a) x)
                           OR rb_max(ra) IS DISTINCT FROM (SELECT max(x) FROM unnest(a) x)) AS card_min_max_bad,
       count(*) FILTER (WHERE (ra @> coalesce(a[1], 0)) IS DISTINCT FROM (coalesce(a[1], 0) = ANY (a))
                           OR (coalesce(b[1], 0) <@ ra) IS DISTINCT FROM (coalesce(b[1], 0) = ANY (a))) AS key_bad
  FROM bm_pairs;
SELECT '{1,5}'::rbitmap @> 5 AS has5, '{1,5}'::rbitmap @> -5 AS has_neg, -1 <@ '{1}'::rbitmap AS neg_in,
       rb_add('{1}', 2) AS added, rb_remove('{1,2}', 2) AS removed, rb_remove('{1}', -3) AS remove_neg;
SELECT rb_add('{1}', -2);

-- huge bitmaps: every non-negative int4 in 32768 run containers
SELECT rb_cardinality(rb_range(0, 2147483647)) AS all_but_max, rb_max(rb_range(0, 2147483647)),
       rb_cardinality(rb_add(rb_range(0, 2147483647), 2147483647)) AS all_keys,
       octet_length(rb_to_bytea(rb_range(0, 2147483647))) AS bytes,
       rb_cardinality(rb_range(0, 2147483647) - rb_range(1000, 2147483647)) AS andnot,
       rb_range(0, 2147483647) @> 2147483646 AS contains_last;
SELECT rb_to_array(rb_range(0, 2147483647));
SELECT rb_range(0, 2147483647)::text;
SELECT count(*), sum(k) FROM rb_iterate(rb_range(100000, 1100000)) k;
-- in the select list rb_iterate streams (a FROM-clause function scan would materialise all 2^31 rows)
SELECT rb_iterate(rb_range(0, 2147483647)) AS k LIMIT 3;

-- bytea exchange and hardened binary input
SELECT rb_to_bytea('{}') AS empty_bytes, rb_to_bytea('{1,2,3}') AS small_bytes;
SELECT count(*) FILTER (WHERE rb_from_bytea(rb_to_bytea(ra)) <> ra OR rb_from_bytea(rb_to_bytea(rb)) <> rb) AS roundtrip_bad
  FROM bm_pairs;
SELECT rb_from_bytea(rb_to_bytea(rb_range(0, 100000) | '{200000,300001}')) = (rb_range(0, 100000) | '{200000,300001}') AS run_roundtrip;
SELECT rb_from_bytea('\x');
SELECT rb_from_bytea('\x3a30');
SELECT rb_from_bytea('\xdeadbeef00000000');
SELECT rb_from_bytea(rb_to_bytea('{1,2}') || '\x00'::bytea);
SELECT rb_from_bytea(substring(rb_to_bytea('{1,2,3}') FROM 1 FOR 14));
-- cookie, size 1, key 0x8000 (values >= 2^31, i.e. negative int4), card 1, offset 16, value 0
SELECT rb_from_bytea('\x3a300000010000000080000010000000' || '\x0000'::bytea);
-- array container with values out of order (5, 3)
SELECT rb_from_bytea('\x3a3000000100000000000100100000000500' || '\x0300'::bytea);
-- two containers with descending keys
SELECT rb_from_bytea('\x3a300000020000000200000001000000'::bytea || '\x18000000' || '\x1a000000' || '\x0100' || '\x0100'::bytea);
-- container count far beyond the data
SELECT rb_from_bytea('\x3a300000ffff0000');
-- offset pointing elsewhere
SELECT rb_from_bytea('\x3a300000010000000000000011000000' || '\x0000'::bytea);
-- run container (cookie 12347, 1 container): overlapping runs [0..10] and [5..6]
SELECT rb_from_bytea('\x3b300000'::bytea || '\x01' || '\x0000' || '\x0c00' || '\x0200' || '\x00000a00' || '\x05000100'::bytea);
-- run container whose cardinality disagrees with its runs (header says 5, run [0..10] has 11)
SELECT rb_from_bytea('\x3b300000'::bytea || '\x01' || '\x0000' || '\x0400' || '\x0100' || '\x00000a00'::bytea);
-- the same, well-formed (card 11)
SELECT rb_from_bytea('\x3b300000'::bytea || '\x01' || '\x0000' || '\x0a00' || '\x0100' || '\x00000a00'::bytea) AS valid_run;
-- run past the end of the container
SELECT rb_from_bytea('\x3b300000'::bytea || '\x01' || '\x0000' || '\x0100' || '\x0100' || '\xffff0100'::bytea);
-- bitset container whose header cardinality is off by one (5000 even numbers, header says 5001)
SELECT rb_cardinality(rb_from_bytea(rb_to_bytea(rb_build(array(SELECT g * 2 FROM generate_series(0, 4999) g)))))  AS bitset_ok;
SELECT rb_from_bytea(overlay(rb_to_bytea(rb_build(array(SELECT g * 2 FROM generate_series(0, 4999) g))) PLACING '\x8913'::bytea FROM 11));
-- mutation test: flip one byte of valid serializations (array, bitset and run containers) at every position;
-- each mutant must be rejected with 22P03 or read back to exactly the same bytes, never crash
CREATE TEMP TABLE bm_mutants(outcome text, n int);
DO $$
DECLARE
    src bytea; m bytea; r bytea; acc int := 0; rej int := 0; other int := 0;
BEGIN
    FOR src IN SELECT rb_to_bytea(x) FROM (VALUES ('{1,2,3,65536,70000}'::retail_mid.rbitmap),
                  (retail_mid.rb_build(array(SELECT g * 3 FROM generate_series(0, 4999) g))),
                  (retail_mid.rb_range(10, 300) | retail_mid.rb_range(65536, 65600) | '{1000000}'),
                  (retail_mid.rb_range(0, 70000) | '{200000,300000,400000,500000}')) v(x)
    LOOP
        FOR pos IN 0 .. length(src) - 1 LOOP
            FOREACH m IN ARRAY ARRAY[set_byte(src, pos, (get_byte(src, pos) + 1) % 256),
                                     set_byte(src, pos, (get_byte(src, pos) # 128)),
                                     substring(src FROM 1 FOR pos)]
            LOOP
                CONTINUE WHEN m = src;
                BEGIN
                    r := retail_mid.rb_to_bytea(retail_mid.rb_from_bytea(m));
                    IF r = m THEN acc := acc + 1; ELSE other := other + 1; END IF;
                EXCEPTION WHEN invalid_binary_representation THEN rej := rej + 1;
                END;
            END LOOP;
        END LOOP;
    END LOOP;
    INSERT INTO bm_mutants VALUES ('accepted, reads back identically', acc), ('rejected 22P03', rej), ('anything else', other);
END $$;
-- "accepted" mutants change a value inside a container to another valid value: there must be some, and no other outcome
SELECT outcome, n > 0 AS some FROM bm_mutants ORDER BY outcome;
SELECT n FROM bm_mutants WHERE outcome = 'anything else';

-- binary COPY goes through rbitmap_recv: a round trip, then a file whose field holds garbage bytes
CREATE TEMP TABLE bm_copy(b rbitmap);
INSERT INTO bm_copy SELECT ra FROM bm_pairs;
COPY bm_copy TO PROGRAM 'cat > rb_copy_test.bin' WITH (FORMAT binary);
CREATE TEMP TABLE bm_copy2(b rbitmap);
COPY bm_copy2 FROM PROGRAM 'cat rb_copy_test.bin' WITH (FORMAT binary);
SELECT count(*) AS copied, (SELECT count(*) FROM (SELECT b::text FROM bm_copy EXCEPT ALL SELECT b::text FROM bm_copy2) d) AS differ FROM bm_copy2;
COPY bm_copy2 FROM PROGRAM $$printf 'PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000\000\001\000\000\000\010\072\060\000\000\001\000\000\000\377\377'$$ WITH (FORMAT binary);
COPY bm_copy2 FROM PROGRAM $$printf 'PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000\000\001\000\000\000\003abc\377\377'$$ WITH (FORMAT binary);
COPY bm_copy2 FROM PROGRAM 'rm -f rb_copy_test.bin';

-- aggregates: NULLs ignored, empty input gives NULL (bitmap) or 0 (cardinality)
CREATE TEMP TABLE bm_keys AS
SELECT g AS id, CASE WHEN g % 11 = 0 THEN NULL ELSE (hashint4(g) & 262143) END AS k, g % 7 AS grp
  FROM generate_series(1, 20000) g;
SELECT rb_cardinality(rb_build_agg(k)) = count(DISTINCT k) AS build_matches_distinct,
       rb_to_array(rb_build_agg(k)) = array(SELECT DISTINCT k FROM bm_keys WHERE k IS NOT NULL ORDER BY 1) AS same_keys
  FROM bm_keys;
SELECT rb_build_agg(k) IS NULL AS no_rows, rb_or_agg(NULL::rbitmap) IS NULL AS or_null, rb_and_agg(b) IS NULL AS and_none,
       rb_or_cardinality_agg(b) AS or_card_none, rb_and_cardinality_agg(b) AS and_card_none
  FROM (SELECT NULL::int4 AS k, NULL::rbitmap AS b WHERE false) s;
SELECT rb_build_agg(k) FROM (VALUES (NULL::int4), (NULL)) v(k);
SELECT rb_build_agg(k) FROM (VALUES (3), (-1)) v(k);
CREATE TEMP TABLE bm_group_maps AS SELECT grp, rb_build_agg(k) AS b FROM bm_keys GROUP BY grp;
SELECT rb_cardinality(rb_or_agg(b)) = (SELECT count(DISTINCT k) FROM bm_keys) AS or_matches,
       rb_or_cardinality_agg(b) = (SELECT count(DISTINCT k) FROM bm_keys) AS or_card_matches,
       rb_to_array(rb_and_agg(b)) = array(SELECT k FROM bm_keys WHERE k IS NOT NULL GROUP BY k
                                          HAVING count(DISTINCT grp) = 7 ORDER BY 1) AS and_matches,
       rb_and_cardinality_agg(b) = (SELECT count(*) FROM (SELECT k FROM bm_keys WHERE k IS NOT NULL GROUP BY k
                                                          HAVING count(DISTINCT grp) = 7) q) AS and_card_matches,
       rb_to_array(rb_xor_agg(b)) = array(SELECT k FROM (SELECT k, grp FROM bm_keys WHERE k IS NOT NULL GROUP BY k, grp) q
                                          GROUP BY k HAVING count(*) % 2 = 1 ORDER BY 1) AS xor_matches
  FROM (SELECT b FROM bm_group_maps UNION ALL SELECT NULL) s;
SELECT rb_and_agg(b) FROM (VALUES ('{1,2,3}'::rbitmap), (NULL), ('{2,3,4}'), ('{3,2}')) v(b);
SELECT rb_and_agg(b) FROM (VALUES ('{1,2,3}'::rbitmap), ('{}'), ('{2}')) v(b);

-- window use: the final function runs once per row on a state that keeps growing (or restarts for ROWS frames)
SELECT count(*) AS rows,
       count(*) FILTER (WHERE running_card <> (SELECT count(DISTINCT k) FROM bm_keys i WHERE i.id <= o.id)) AS running_bad,
       count(*) FILTER (WHERE moving IS DISTINCT FROM
                        (SELECT rb_build(array_agg(k)) FROM bm_keys i WHERE i.id BETWEEN o.id - 2 AND o.id AND k IS NOT NULL)) AS moving_bad
  FROM (SELECT id, rb_cardinality(rb_build_agg(k) OVER (ORDER BY id)) AS running_card,
               rb_build_agg(k) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS moving
          FROM bm_keys WHERE id <= 600) o;
SELECT grp, rb_cardinality(rb_or_agg(b) OVER (ORDER BY grp)) AS running_union,
       (SELECT count(DISTINCT k) FROM bm_keys i WHERE i.grp <= m.grp) AS reference
  FROM bm_group_maps m ORDER BY grp;

-- forced parallel aggregation, compared with the serial answer
CREATE TABLE bm_par_keys AS
SELECT g AS id, (hashint4(g) & 2097151) AS k, g % 5 AS grp FROM generate_series(1, 300000) g;
ALTER TABLE bm_par_keys SET (parallel_workers = 2);
ANALYZE bm_par_keys;
CREATE TEMP TABLE bm_serial AS
SELECT grp, rb_build_agg(k) AS b, count(DISTINCT k) AS distinct_keys FROM bm_par_keys GROUP BY grp;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT grp, rb_build_agg(k) FROM bm_par_keys GROUP BY grp;
SELECT grp, rb_build_agg(k)::text AS b FROM bm_par_keys GROUP BY grp
EXCEPT SELECT grp, b::text FROM bm_serial;
SELECT count(*) AS groups_bad FROM bm_serial s WHERE rb_cardinality(b) <> distinct_keys;
EXPLAIN (COSTS OFF) SELECT rb_or_agg(b), rb_and_agg(b), rb_or_cardinality_agg(b)
  FROM (SELECT rb_build(ARRAY[k, k + 1, 7]) AS b FROM bm_par_keys) s;
SELECT rb_or_agg(b) = (SELECT rb_add(rb_or_agg(b), 7) FROM bm_serial) AS parallel_or_equal,
       rb_and_agg(b) AS parallel_and,
       rb_or_cardinality_agg(b) = (SELECT count(DISTINCT x) FROM (SELECT k FROM bm_par_keys UNION ALL SELECT 7) u(x)) AS card_equal
  FROM (SELECT rb_build(ARRAY[k, 7]) AS b FROM bm_par_keys) s;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;

-- partitionwise aggregation (full and partial), compared with the serial answer
CREATE TABLE bm_part (id int, k int4, grp int) PARTITION BY LIST (grp);
CREATE TABLE bm_part_0 PARTITION OF bm_part FOR VALUES IN (0, 1);
CREATE TABLE bm_part_1 PARTITION OF bm_part FOR VALUES IN (2, 3);
CREATE TABLE bm_part_2 PARTITION OF bm_part FOR VALUES IN (4);
INSERT INTO bm_part SELECT id, k, grp FROM bm_par_keys WHERE id <= 100000;
ANALYZE bm_part;
SET enable_partitionwise_aggregate = on;
EXPLAIN (COSTS OFF) SELECT grp, rb_build_agg(k) FROM bm_part GROUP BY grp;
SELECT grp, rb_build_agg(k)::text FROM bm_part GROUP BY grp
EXCEPT SELECT grp, rb_build_agg(k)::text FROM bm_par_keys WHERE id <= 100000 GROUP BY grp;
-- without the partition key in GROUP BY: partial aggregates per partition, merged by the combine function
EXPLAIN (COSTS OFF) SELECT rb_build_agg(k), rb_and_agg(rb_build(ARRAY[k, 1])) FROM bm_part;
SELECT rb_build_agg(k) = (SELECT rb_build_agg(k) FROM bm_par_keys WHERE id <= 100000) AS partial_equal,
       rb_cardinality(rb_build_agg(k)) = count(DISTINCT k) AS card_equal,
       rb_and_agg(rb_build(ARRAY[k, 1])) AS partial_and
  FROM bm_part;
RESET enable_partitionwise_aggregate;

DROP TABLE bm_par_keys, bm_part;
