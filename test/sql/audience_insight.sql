-- audience_insight: audience_profile, audience_compare, audience_overlap, the stored profiles (audience_insight)
-- and audience_lookalike, each compared with plain SQL over the fixture's values (never over the bitmaps), with
-- and without a brand, as an administrator and as an analyst of one brand, and their bad inputs.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SET search_path = retail_mid, public;

-- fixture: brand ins_a has customers 1..400, ins_b 201..500 (201..400 in both, with values that differ between
-- the brands); brand tags of each type, a group tag and a numeric group tag shared with brands, an unshared one
INSERT INTO customer_brand
SELECT 'ins_a', g FROM generate_series(1, 400) g UNION ALL SELECT 'ins_b', g FROM generate_series(201, 500) g;
CREATE TABLE public.ins_vals AS
SELECT cb.brand, cb.customer_key,
       CASE WHEN h % 9 = 0 THEN NULL ELSE (ARRAY['gold', 'silver', 'bronze'])[1 + h % 3] END AS tier,
       CASE WHEN h % 7 = 0 THEN NULL ELSE h % 4 = 0 END AS flag,
       CASE WHEN h % 11 = 0 THEN NULL WHEN h % 5 = 0 THEN 7.5 ELSE (h % 60)::numeric / 2 END AS amount
  FROM customer_brand cb, LATERAL (SELECT abs(hashint4(cb.customer_key * 17 + ascii(right(cb.brand, 1)))) AS h) x
 WHERE cb.brand IN ('ins_a', 'ins_b');
CREATE TABLE public.ins_group AS
SELECT g AS customer_key, (ARRAY['north', 'south', 'east', 'west'])[1 + abs(hashint4(g * 3)) % 4] AS region,
       CASE WHEN g % 13 = 0 THEN NULL ELSE abs(hashint4(g * 5)) % 1000 END AS score
  FROM generate_series(1, 520) g;          -- 501..520: group-wide values of customers of no brand
INSERT INTO tag_definition (tag_name, level1, level2, value_type, scope, shared_with_brands, numeric_scale, rule_sql) VALUES
  ('ins_tier', '其他', '其他', 'enum', 'brand', false, 2, 'SELECT customer_key, tier, brand FROM public.ins_vals WHERE tier IS NOT NULL'),
  ('ins_flag', '其他', '其他', 'boolean', 'brand', false, 2, 'SELECT customer_key, flag, brand FROM public.ins_vals WHERE flag IS NOT NULL'),
  ('ins_amount', '其他', '其他', 'numeric', 'brand', false, 1, 'SELECT customer_key, amount, brand FROM public.ins_vals WHERE amount IS NOT NULL'),
  ('ins_region', '其他', '其他', 'enum', 'group', true, 2, 'SELECT customer_key, region FROM public.ins_group'),
  ('ins_score', '其他', '其他', 'numeric', 'group', true, 0, 'SELECT customer_key, score FROM public.ins_group WHERE score IS NOT NULL'),
  ('ins_secret', '其他', '其他', 'enum', 'group', false, 2, 'SELECT customer_key, region FROM public.ins_group');
SELECT evaluate_tags(ARRAY['ins_tier', 'ins_flag', 'ins_amount', 'ins_region', 'ins_score', 'ins_secret']) > 0 AS tagged;
RESET client_min_messages;
\set tags '''{ins_tier,ins_flag,ins_amount,ins_region,ins_score}'''

-- The reference. Holdings (customer, tag, value or bucket) as plain SQL reads them from the fixture: brand tags
-- with the rows of the visible brands (in a brand context that brand's rows), group tags for every customer
-- (administrators) or the customers of the visible brands (analysts). A numeric bucket's boundaries are the
-- ceil(j N / 5)-th smallest of the base customers' values (a customer counted once, by its smallest visible value),
-- j = 1..4, without repeats; a customer holds a bucket when one of its visible values lies in it.
CREATE TEMP TABLE ins_h (customer_key int, tag text, value text, bucket int, lo numeric, hi numeric);
CREATE TEMP TABLE ins_v (customer_key int, tag text, value text, num numeric, scale int);
GRANT ALL ON pg_temp.ins_h, pg_temp.ins_v, public.ins_vals, public.ins_group TO PUBLIC;
CREATE FUNCTION pg_temp.ins_hold(ctx text, visible text[], base int[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t record; b numeric[]; n bigint;
BEGIN
  TRUNCATE pg_temp.ins_h, pg_temp.ins_v;
  INSERT INTO pg_temp.ins_v
  SELECT customer_key, 'ins_tier', tier, NULL::numeric, NULL::int FROM public.ins_vals
   WHERE tier IS NOT NULL AND brand = ANY (visible) AND (ctx IS NULL OR brand = ctx)
  UNION ALL SELECT customer_key, 'ins_flag', flag::text, NULL, NULL FROM public.ins_vals
   WHERE flag IS NOT NULL AND brand = ANY (visible) AND (ctx IS NULL OR brand = ctx)
  UNION ALL SELECT customer_key, 'ins_amount', NULL, amount, 1 FROM public.ins_vals
   WHERE amount IS NOT NULL AND brand = ANY (visible) AND (ctx IS NULL OR brand = ctx)
  UNION ALL SELECT customer_key, 'ins_region', region, NULL, NULL FROM public.ins_group g
   WHERE '*' = ANY (visible) OR EXISTS (SELECT 1 FROM customer_brand cb WHERE cb.customer_key = g.customer_key AND cb.brand = ANY (visible))
  UNION ALL SELECT customer_key, 'ins_score', NULL, score, 0 FROM public.ins_group g
   WHERE score IS NOT NULL AND ('*' = ANY (visible) OR EXISTS (SELECT 1 FROM customer_brand cb WHERE cb.customer_key = g.customer_key AND cb.brand = ANY (visible)));
  INSERT INTO pg_temp.ins_h SELECT DISTINCT customer_key, tag, value, NULL::int, NULL::numeric, NULL::numeric FROM pg_temp.ins_v WHERE num IS NULL;
  FOR t IN SELECT DISTINCT tag, scale FROM pg_temp.ins_v WHERE num IS NOT NULL LOOP
    SELECT count(*) INTO n FROM (SELECT customer_key FROM pg_temp.ins_v WHERE tag = t.tag AND customer_key = ANY (base) GROUP BY 1) x;
    SELECT coalesce(array_agg(DISTINCT v ORDER BY v), '{}') INTO b
      FROM (SELECT (SELECT m FROM (SELECT customer_key, min(num) AS m FROM pg_temp.ins_v WHERE tag = t.tag AND customer_key = ANY (base) GROUP BY 1) y
                     ORDER BY m OFFSET ceil(j * n / 5.0) - 1 LIMIT 1) AS v
              FROM generate_series(1, 4) j WHERE n > 0) z;
    INSERT INTO pg_temp.ins_h
    SELECT DISTINCT v.customer_key, t.tag,
           CASE WHEN k.lo IS NULL AND k.hi IS NULL THEN 'all values' WHEN k.lo IS NULL THEN '< ' || round(k.hi, t.scale)
                WHEN k.hi IS NULL THEN '>= ' || round(k.lo, t.scale) ELSE '[' || round(k.lo, t.scale) || ', ' || round(k.hi, t.scale) || ')' END,
           k.i, round(k.lo, t.scale), round(k.hi, t.scale)
      FROM (SELECT i, CASE WHEN i > 1 THEN b[i - 1] END AS lo, CASE WHEN i <= cardinality(b) THEN b[i] END AS hi
              FROM generate_series(1, cardinality(b) + 1) i) k
      JOIN pg_temp.ins_v v ON v.tag = t.tag AND (k.lo IS NULL OR v.num >= k.lo) AND (k.hi IS NULL OR v.num < k.hi);
  END LOOP;
END $$;
CREATE FUNCTION pg_temp.ins_ref(mem int[], bas int[], ctx text, visible text[])
RETURNS TABLE (tag text, value text, bucket int, lo numeric, hi numeric, members bigint, share float8,
               base_members bigint, base_share float8, tgi float8) LANGUAGE plpgsql AS $$
DECLARE nm bigint := cardinality(mem); nb bigint := cardinality(bas);
BEGIN
  PERFORM pg_temp.ins_hold(ctx, visible, bas);
  RETURN QUERY
  SELECT h.tag, h.value, h.bucket, h.lo, h.hi, m, m::float8 / nullif(nm, 0), bm, bm::float8 / nullif(nb, 0),
         (m::float8 / nullif(nm, 0)) / nullif(bm::float8 / nullif(nb, 0), 0) * 100
    FROM (SELECT h.tag, h.value, h.bucket, h.lo, h.hi, count(*) FILTER (WHERE h.customer_key = ANY (mem)) AS m,
                 count(*) FILTER (WHERE h.customer_key = ANY (bas)) AS bm
            FROM pg_temp.ins_h h GROUP BY 1, 2, 3, 4, 5) h
   WHERE m > 0 OR bm > 0;
END $$;
CREATE FUNCTION pg_temp.ins_arr(b rbitmap) RETURNS int[] LANGUAGE sql AS $$ SELECT coalesce(rb_to_array(b), '{}') $$;
CREATE FUNCTION pg_temp.ins_base(ctx text) RETURNS int[] LANGUAGE sql AS $$
  SELECT CASE WHEN ctx IS NULL THEN pg_temp.ins_arr(customer_universe())
              ELSE (SELECT coalesce(array_agg(customer_key ORDER BY customer_key), '{}') FROM customer_brand WHERE brand = ctx) END $$;
-- rows of the profile missing from the reference plus rows of the reference missing from the profile
CREATE FUNCTION pg_temp.ins_diff(expr text, ctx text, visible text[], tags text[]) RETURNS bigint LANGUAGE sql AS $$
  WITH p AS (SELECT * FROM audience_profile(expr, ctx, tags)),
       r AS (SELECT * FROM pg_temp.ins_ref(pg_temp.ins_arr(CASE WHEN ctx IS NULL THEN audience(expr) ELSE audience(expr, ctx) END),
                                           pg_temp.ins_base(ctx), ctx, visible))
  SELECT (SELECT count(*) FROM (SELECT * FROM p EXCEPT SELECT * FROM r) x) + (SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT * FROM p) y)
$$;

-- the profile of one audience in brand ins_a, for reading (the shares and TGI are checked below in every context)
SELECT tag, value, bucket, lo, hi, members, round(share::numeric, 4) AS share, base_members,
       round(base_share::numeric, 4) AS base_share, round(tgi::numeric, 1) AS tgi
  FROM audience_profile('ins_flag AND ins_tier <> bronze', 'ins_a', :tags) ORDER BY tag, bucket, value;

-- equal to plain SQL: several audiences, administrator, without a brand and in each brand
SELECT e.expr, coalesce(c.ctx, '(none)') AS ctx, (SELECT count(*) FROM audience_profile(e.expr, c.ctx, :tags)) AS rows,
       pg_temp.ins_diff(e.expr, c.ctx, '{*,ins_a,ins_b}', :tags) AS rows_differing_from_plain_sql
  FROM (VALUES ('ins_flag AND ins_tier <> bronze'), ('ins_amount >= 10 OR ins_region = north'),
               ('NOT ins_flag'), ('ins_score < 300'), ('ins_tier = nothing')) e(expr),
       (VALUES (NULL), ('ins_a'), ('ins_b')) c(ctx)
 ORDER BY c.ctx NULLS FIRST, e.expr;
-- the fixture has what makes the test meaningful: ties in amount (7.5 is 20% of the values), several brand
-- indexes seen at once without a brand, a base with customers of no brand
SELECT count(*) FILTER (WHERE amount = 7.5)::float8 / count(amount) > 0.15 AS amount_has_a_lump,
       (SELECT count(*) FROM tag_bsi WHERE tag_name = 'ins_amount') AS amount_indexes,
       (SELECT count(*) FROM audience_profile('ins_flag', NULL, '{ins_amount}')) AS amount_buckets
  FROM public.ins_vals;
-- numeric buckets: the default five, or as asked
SELECT bucket, value, members, base_members FROM audience_profile('ins_flag', 'ins_b', '{ins_score}', 3) ORDER BY bucket;

-- TGI of a against b: the reference with b as the base
SELECT (SELECT count(*) FROM (SELECT * FROM audience_compare('ins_flag', 'ins_tier = gold', 'ins_a', :tags)
                              EXCEPT SELECT * FROM pg_temp.ins_ref(pg_temp.ins_arr(audience('ins_flag', 'ins_a')),
                                                                   pg_temp.ins_arr(audience('ins_tier = gold', 'ins_a')), 'ins_a', '{*,ins_a,ins_b}')) x)
     + (SELECT count(*) FROM (SELECT * FROM pg_temp.ins_ref(pg_temp.ins_arr(audience('ins_flag', 'ins_a')),
                                                            pg_temp.ins_arr(audience('ins_tier = gold', 'ins_a')), 'ins_a', '{*,ins_a,ins_b}')
                              EXCEPT SELECT * FROM audience_compare('ins_flag', 'ins_tier = gold', 'ins_a', :tags)) y) AS compare_rows_differing;
SELECT tag, value, members_a, members_b, round(tgi::numeric, 1) AS tgi
  FROM audience_compare('ins_flag', 'ins_tier = gold', 'ins_a', '{ins_region}') ORDER BY value;

-- saved audiences: a profile is stored with each version (against the brand's customers, every tag the saver
-- reads), and audience_insight shows the latest version's
SELECT save_audience('ins_vip', 'ins_tier = gold AND ins_flag', 'ins_a') AS v1,
       save_audience('ins_vip', 'ins_tier IN (gold, silver)', 'ins_a') AS v2,
       save_audience('ins_north', 'ins_region = north', 'ins_a') AS n1,
       save_audience('ins_low', 'ins_amount < 10', 'ins_b') AS l1;
SELECT audience_name, version, count(*) AS rows, count(DISTINCT tag) AS tags
  FROM audience_insight WHERE audience_name LIKE 'ins\_%' GROUP BY 1, 2 ORDER BY 1;
SELECT p.name, p.version, (SELECT count(*) FROM audience_profile_snapshot s WHERE s.name = p.name AND s.version = p.version) AS stored_rows
  FROM audience_package p WHERE p.name = 'ins_vip' ORDER BY 2;
-- the stored profile of the latest version equals plain SQL over its snapshot (tags the reference knows)
SELECT (SELECT count(*) FROM (SELECT tag, value, bucket, lo, hi, members, share, base_members, base_share, tgi FROM audience_insight
                               WHERE audience_name = 'ins_vip' AND tag IN ('ins_tier', 'ins_flag', 'ins_amount', 'ins_region', 'ins_score')
                              EXCEPT SELECT * FROM pg_temp.ins_ref(pg_temp.ins_arr(audience('@ins_vip')), pg_temp.ins_base('ins_a'),
                                                                   'ins_a', '{*,ins_a,ins_b}')) x)
     + (SELECT count(*) FROM (SELECT * FROM pg_temp.ins_ref(pg_temp.ins_arr(audience('@ins_vip')), pg_temp.ins_base('ins_a'), 'ins_a', '{*,ins_a,ins_b}')
                              EXCEPT SELECT tag, value, bucket, lo, hi, members, share, base_members, base_share, tgi FROM audience_insight
                               WHERE audience_name = 'ins_vip' AND tag IN ('ins_tier', 'ins_flag', 'ins_amount', 'ins_region', 'ins_score')) y)
       AS stored_rows_differing;

-- overlap of saved audiences against plain SQL on their members
SELECT o.audience_a, o.audience_b, o.members_a, o.members_b, o.both_members, o.either_members, round(o.jaccard::numeric, 4) AS jaccard,
       o.both_members = (SELECT count(*) FROM audience_member x JOIN audience_member y USING (customer_key)
                          WHERE x.audience_name = o.audience_a AND y.audience_name = o.audience_b) AS both_equals_sql,
       o.either_members = (SELECT count(DISTINCT customer_key) FROM audience_member WHERE audience_name IN (o.audience_a, o.audience_b)) AS either_equals_sql
  FROM audience_overlap('{ins_vip,ins_north,ins_low}') o;

-- lookalike: scores equal the plain-SQL sum of smoothed log-odds weights over the reference's holdings
CREATE FUNCTION pg_temp.ins_look_ref(seed int[], base int[], ctx text, visible text[])
RETURNS TABLE (customer_key int, score float8) LANGUAGE plpgsql AS $$
DECLARE ns bigint := cardinality(seed); cand int[] := ARRAY(SELECT unnest(base) EXCEPT SELECT unnest(seed)); nc bigint;
BEGIN
  nc := cardinality(cand);
  PERFORM pg_temp.ins_hold(ctx, visible, base);
  RETURN QUERY
  WITH w AS (SELECT h.tag, h.value, ln((count(*) FILTER (WHERE h.customer_key = ANY (seed)) + 0.5)
                                        / (ns - count(*) FILTER (WHERE h.customer_key = ANY (seed)) + 0.5))
                                   - ln((count(*) FILTER (WHERE h.customer_key = ANY (cand)) + 0.5)
                                        / (nc - count(*) FILTER (WHERE h.customer_key = ANY (cand)) + 0.5)) AS w
               FROM pg_temp.ins_h h GROUP BY 1, 2)
  SELECT c.k, coalesce(sum(w.w), 0)::float8
    FROM unnest(cand) c(k) LEFT JOIN pg_temp.ins_h h ON h.customer_key = c.k LEFT JOIN w ON w.tag = h.tag AND w.value = h.value
   GROUP BY c.k;
END $$;
CREATE TEMP TABLE ins_look AS SELECT * FROM audience_lookalike('ins_tier = gold AND ins_flag', 50, 'ins_a', :tags);
CREATE TEMP TABLE ins_look_ref AS
SELECT * FROM pg_temp.ins_look_ref(pg_temp.ins_arr(audience('ins_tier = gold AND ins_flag', 'ins_a')), pg_temp.ins_base('ins_a'),
                                   'ins_a', '{*,ins_a,ins_b}');
SELECT count(*) AS returned, count(DISTINCT l.rank) = 50 AS ranks_1_to_50,
       max(abs(l.score - r.score)) < 1e-9 AS scores_equal_sql,
       bool_and(NOT l.customer_key = ANY (pg_temp.ins_arr(audience('ins_tier = gold AND ins_flag', 'ins_a')))) AS no_seed_member,
       bool_and(l.customer_key BETWEEN 1 AND 400) AS all_of_brand
  FROM ins_look l JOIN ins_look_ref r USING (customer_key);
-- the 50 returned are the 50 best of the reference (ties by key)
SELECT count(*) AS same_top_50 FROM ins_look l
  JOIN (SELECT customer_key, row_number() OVER (ORDER BY score DESC, customer_key) AS rank FROM ins_look_ref) r USING (customer_key, rank);

-- as an analyst of brand ins_a: profile and lookalike read ins_a's rows only, the base is what the analyst sees
CREATE ROLE ins_alice LOGIN IN ROLE retail_mid_analyst;
INSERT INTO brand_entitlement VALUES ('ins_alice', 'ins_a');
SET ROLE ins_alice;
SELECT e.expr, coalesce(c.ctx, '(none)') AS ctx, (SELECT count(*) FROM audience_profile(e.expr, c.ctx, :tags)) AS rows,
       pg_temp.ins_diff(e.expr, c.ctx, '{ins_a}', :tags) AS rows_differing_from_plain_sql
  FROM (VALUES ('ins_flag AND ins_tier <> bronze'), ('ins_amount >= 10 OR ins_region = north')) e(expr),
       (VALUES (NULL), ('ins_a')) c(ctx)
 ORDER BY c.ctx NULLS FIRST, e.expr;
SELECT audience_name, count(*) AS rows FROM audience_insight WHERE audience_name LIKE 'ins\_%' GROUP BY 1 ORDER BY 1;
SELECT save_audience('ins_alice_list', 'ins_flag', 'ins_a') AS analyst_saves;
SELECT count(*) > 0 AS analyst_profile_stored, bool_and(tag <> 'ins_secret') AS no_unshared_tag
  FROM audience_insight WHERE audience_name = 'ins_alice_list';
SELECT count(*) AS lookalike_rows FROM audience_lookalike('ins_flag', 10, 'ins_a', :tags);
\set VERBOSITY sqlstate
SELECT * FROM audience_profile('ins_flag', 'ins_b');
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_secret}');
SELECT * FROM audience_overlap('{ins_vip,ins_low}');
\set VERBOSITY default
RESET ROLE;

-- bad inputs
\set VERBOSITY sqlstate
SELECT * FROM audience_profile(NULL, 'ins_a');
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{}');
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_flag,NULL}');
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_flag,ins_nothing}');
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_flag,ins_flag}');
SELECT * FROM audience_profile('ins_flag', '', '{ins_flag}');
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_amount}', 1);
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_amount}', 21);
SELECT * FROM audience_profile('ins_flag', 'ins_a', '{ins_amount}', NULL);
SELECT * FROM audience_profile('ins_flag AND', 'ins_a', '{ins_amount}');
SELECT * FROM audience_profile('ins_nothing = 1', 'ins_a');
SELECT * FROM audience_compare(NULL, 'ins_flag');
SELECT * FROM audience_compare('ins_flag', 'ins_flag', 'ins_a', '{}');
SELECT * FROM audience_overlap(NULL);
SELECT * FROM audience_overlap('{}');
SELECT * FROM audience_overlap('{ins_vip}');
SELECT * FROM audience_overlap('{ins_vip,NULL}');
SELECT * FROM audience_overlap('{ins_vip,ins_vip}');
SELECT * FROM audience_overlap('{ins_vip,ins_nothing}');
SELECT * FROM audience_lookalike(NULL, 10, 'ins_a');
SELECT * FROM audience_lookalike('ins_flag', 0, 'ins_a');
SELECT * FROM audience_lookalike('ins_flag', NULL, 'ins_a');
SELECT * FROM audience_lookalike('ins_tier = nothing', 10, 'ins_a');
SELECT * FROM audience_lookalike('ins_flag', 10, 'ins_a', '{}');
SELECT * FROM audience_profile_counts(NULL, '{}', '{ins_flag}', NULL, 5);
SELECT * FROM audience_lookalike_scores('{1}', '{1,2}', '{ins_flag}', NULL, -1, 5);
\set VERBOSITY default
-- an empty audience: shares are NULL, the base still counts
SELECT tag, value, members, share, base_members FROM audience_profile('ins_tier = nothing', 'ins_a', '{ins_tier}') ORDER BY value;

DELETE FROM audience_package WHERE name LIKE 'ins\_%';
DELETE FROM brand_entitlement WHERE grantee = 'ins_alice'::regrole;
DROP ROLE ins_alice;
DROP TABLE public.ins_vals, public.ins_group;
DELETE FROM tag_definition WHERE tag_name LIKE 'ins\_%';
DELETE FROM customer_brand WHERE brand IN ('ins_a', 'ins_b');
SELECT count(*) AS stored_profiles_left FROM audience_profile_snapshot WHERE name LIKE 'ins\_%';
