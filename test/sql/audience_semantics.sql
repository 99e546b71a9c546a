-- audience_semantics: what NOT, <>, NOT IN and NOT BETWEEN mean, defined once (docs/tags.md "Semantics") and the
-- same with and without a brand: a predicate holds when one of the customer's values visible in the context
-- satisfies it (no value never satisfies it), so "flag <> true" is "flag = false"; NOT is the complement of a set
-- within the context's customers: a brand's customers in a brand context, every known customer otherwise.
-- Every answer is compared with plain SQL over tag_value and customer_brand.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SET search_path = retail_mid, public;

-- fixture: 400 customers of brand sem_a, 300 of sem_b (keys 201..400 are customers of both, with values that
-- differ between the brands), brand-scoped tags of each kind; some customers have no value.
INSERT INTO customer_brand
SELECT 'sem_a', g FROM generate_series(1, 400) g UNION ALL SELECT 'sem_b', g FROM generate_series(201, 500) g;
CREATE TABLE public.sem_vals AS
SELECT cb.brand, cb.customer_key,
       CASE WHEN h % 9 = 0 THEN NULL ELSE (ARRAY['gold', 'silver', 'bronze'])[1 + h % 3] END AS tier,
       CASE WHEN h % 7 = 0 THEN NULL ELSE h % 4 = 0 END AS flag,
       CASE WHEN h % 11 = 0 THEN NULL ELSE (h % 50)::numeric / 2 END AS amount
  FROM customer_brand cb, LATERAL (SELECT abs(hashint4(cb.customer_key * 31 + length(cb.brand) * 7 + ascii(right(cb.brand, 1)))) AS h) x
 WHERE cb.brand IN ('sem_a', 'sem_b');
INSERT INTO tag_definition (tag_name, level1, level2, value_type, scope, rule_sql) VALUES
  ('sem_tier', '其他', '其他', 'enum', 'brand', 'SELECT customer_key, tier, brand FROM public.sem_vals WHERE tier IS NOT NULL'),
  ('sem_flag', '其他', '其他', 'boolean', 'brand', 'SELECT customer_key, flag, brand FROM public.sem_vals WHERE flag IS NOT NULL'),
  ('sem_amount', '其他', '其他', 'numeric', 'brand', 'SELECT customer_key, amount, brand FROM public.sem_vals WHERE amount IS NOT NULL');
SELECT evaluate_tags(ARRAY['sem_tier', 'sem_flag', 'sem_amount']) > 0 AS tagged;
RESET client_min_messages;
-- the fixture really has customers whose values differ between the two brands (else the test could not fail)
SELECT count(*) FILTER (WHERE a.tier <> b.tier) > 0 AS tiers_differ, count(*) FILTER (WHERE a.flag <> b.flag) > 0 AS flags_differ,
       count(*) FILTER (WHERE a.amount <> b.amount) > 0 AS amounts_differ
  FROM public.sem_vals a JOIN public.sem_vals b USING (customer_key) WHERE a.brand = 'sem_a' AND b.brand = 'sem_b';

-- the reference: one row per (brand, customer) with its values; a brand context reads that brand's rows only
CREATE FUNCTION pg_temp.sem_ref(pred text, ctx text) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE r int[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(DISTINCT customer_key ORDER BY customer_key), ''{}'') FROM public.sem_vals '
                 'WHERE ($1 IS NULL OR brand = $1) AND (%s)', pred) INTO r USING ctx;
  RETURN r;
END $$;
-- NOT's reference: the context's customers not in the set
CREATE FUNCTION pg_temp.sem_not_ref(pred text, ctx text) RETURNS int[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(DISTINCT customer_key ORDER BY customer_key), '{}') FROM customer_brand
   WHERE brand = ctx AND customer_key <> ALL (pg_temp.sem_ref(pred, ctx))
$$;
CREATE FUNCTION pg_temp.sem_eval(expr text, ctx text) RETURNS int[] LANGUAGE sql AS $$
  SELECT coalesce(rb_to_array(CASE WHEN ctx IS NULL THEN audience(expr) ELSE audience(expr, ctx) END), '{}')
$$;

-- predicates, each in the admin context (NULL: every brand's values) and in each brand
SELECT e.expr, c.ctx, cardinality(pg_temp.sem_eval(e.expr, c.ctx)) AS customers,
       pg_temp.sem_eval(e.expr, c.ctx) = pg_temp.sem_ref(e.pred, c.ctx) AS equals_plain_sql
  FROM (VALUES ('sem_tier = gold', 'tier = ''gold'''),
               ('sem_tier <> gold', 'tier <> ''gold'''),
               ('sem_tier IN (gold, silver)', 'tier IN (''gold'', ''silver'')'),
               ('sem_tier NOT IN (gold, silver)', 'tier NOT IN (''gold'', ''silver'')'),
               ('sem_flag', 'flag'),
               ('sem_flag = false', 'NOT flag'),
               ('sem_flag <> true', 'flag <> true'),
               ('sem_amount <> 10', 'amount <> 10'),
               ('sem_amount NOT BETWEEN 5 AND 15', 'amount NOT BETWEEN 5 AND 15'),
               ('sem_amount NOT BETWEEN 15 AND 5', 'amount NOT BETWEEN 15 AND 5'),
               ('sem_amount NOT IN (3, 10, 10, 0.5)', 'amount NOT IN (3, 10, 0.5)'),
               ('sem_amount NOT IN (7.25)', 'amount <> 7.25')) e(expr, pred),
       (VALUES (NULL), ('sem_a'), ('sem_b')) c(ctx)
 ORDER BY c.ctx NULLS FIRST, e.expr;

-- "<> v" and "= the other values" agree in every context (the issue's returner <> true against returner = false)
SELECT c.ctx, pg_temp.sem_eval('sem_flag <> true', c.ctx) = pg_temp.sem_eval('sem_flag = false', c.ctx) AS ne_true_is_eq_false,
       pg_temp.sem_eval('sem_tier <> gold', c.ctx) = pg_temp.sem_eval('sem_tier IN (silver, bronze)', c.ctx) AS ne_is_in_others
  FROM (VALUES (NULL), ('sem_a'), ('sem_b')) c(ctx) ORDER BY c.ctx NULLS FIRST;

-- NOT in a brand context: the complement within that brand's customers, never a customer of another brand only
SELECT e.expr, c.ctx, cardinality(pg_temp.sem_eval(e.expr, c.ctx)) AS customers,
       pg_temp.sem_eval(e.expr, c.ctx) = pg_temp.sem_not_ref(e.pred, c.ctx) AS equals_plain_sql,
       NOT pg_temp.sem_eval(e.expr, c.ctx) && ARRAY(SELECT customer_key FROM customer_brand WHERE brand <> c.ctx
                                                     EXCEPT SELECT customer_key FROM customer_brand WHERE brand = c.ctx) AS stays_in_brand
  FROM (VALUES ('NOT sem_flag', 'flag'),
               ('NOT sem_tier = gold', 'tier = ''gold'''),
               ('NOT (sem_amount >= 10 OR sem_tier = bronze)', 'amount >= 10 OR tier = ''bronze''')) e(expr, pred),
       (VALUES ('sem_a'), ('sem_b')) c(ctx)
 ORDER BY c.ctx, e.expr;
-- ... and without a brand, NOT is relative to every known customer (customer_universe())
SELECT rb_cardinality(audience('NOT sem_flag')) = rb_cardinality(rb_andnot(customer_universe(), audience('sem_flag'))) AS admin_not_is_universe_minus;

DROP TABLE public.sem_vals;
DELETE FROM tag_definition WHERE tag_name LIKE 'sem\_%';
DELETE FROM customer_brand WHERE brand IN ('sem_a', 'sem_b');
