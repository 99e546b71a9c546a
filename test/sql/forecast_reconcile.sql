SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- forecast_reconcile: every method against an independent computation in R (base solve() on the S-matrix form
-- S (S'W^-1 S)^-1 S'W^-1 y^, W from the code of hts::shrink.estim), coherence, grouped structures, bad inputs.
-- Hierarchy: T -> A, B; A -> AA, AB; B -> BA, BB, BC. Residuals: leaves pseudo-random, aggregates = sum of their
-- leaves + noise/2 (so they are correlated and the shrinkage intensity is strictly inside (0, 1)).
SET extra_float_digits = 0;
CREATE TEMP TABLE rec_edge(child text, parent text);
INSERT INTO rec_edge VALUES ('AA', 'A'), ('AB', 'A'), ('BA', 'B'), ('BB', 'B'), ('BC', 'B'), ('A', 'T'), ('B', 'T');
CREATE TEMP TABLE rec_fc(node text, step int4, f float8);
INSERT INTO rec_fc VALUES ('A', 1, 41), ('AA', 1, 20), ('AB', 1, 23), ('B', 1, 65), ('BA', 1, 30), ('BB', 1, 18),
  ('BC', 1, 14), ('T', 1, 101), ('A', 2, 44), ('AA', 2, 21), ('AB', 2, 25), ('B', 2, 63), ('BA', 2, 28),
  ('BB', 2, 19), ('BC', 2, 13), ('T', 2, 110);
CREATE TEMP TABLE rec_res(node text, period int8, r float8);
INSERT INTO rec_res VALUES
  ('A', 1, -3.1250),
  ('AA', 1, -0.2500),
  ('AB', 1, -3.5000),
  ('B', 1, 2.7500),
  ('BA', 1, 2.7500),
  ('BB', 1, -0.2500),
  ('BC', 1, 2.2500),
  ('T', 1, 3.0000),
  ('A', 2, -2.6250),
  ('AA', 2, -3.5000),
  ('AB', 2, -0.2500),
  ('B', 2, -4.7500),
  ('BA', 2, -2.5000),
  ('BB', 2, 1.0000),
  ('BC', 2, -0.7500),
  ('T', 2, -7.6250),
  ('A', 3, 4.2500),
  ('AA', 3, 1.7500),
  ('AB', 3, 3.2500),
  ('B', 3, -9.1250),
  ('BA', 3, -2.5000),
  ('BB', 3, -0.7500),
  ('BC', 3, -4.2500),
  ('T', 3, -1.3750),
  ('A', 4, 1.3750),
  ('AA', 4, 4.7500),
  ('AB', 4, -3.7500),
  ('B', 4, 11.1250),
  ('BA', 4, 2.7500),
  ('BB', 4, 5.2500),
  ('BC', 4, 2.5000),
  ('T', 4, 11.0000),
  ('A', 5, -5.8750),
  ('AA', 5, -5.2500),
  ('AB', 5, 0.2500),
  ('B', 5, -3.1250),
  ('BA', 5, 2.5000),
  ('BB', 5, -2.5000),
  ('BC', 5, -2.0000),
  ('T', 5, -8.1250),
  ('A', 6, 9.3750),
  ('AA', 6, 4.0000),
  ('AB', 6, 4.5000),
  ('B', 6, -3.5000),
  ('BA', 6, -3.2500),
  ('BB', 6, -2.5000),
  ('BC', 6, 3.7500),
  ('T', 6, 5.7500),
  ('A', 7, -1.2500),
  ('AA', 7, 0.2500),
  ('AB', 7, -1.7500),
  ('B', 7, -0.7500),
  ('BA', 7, -3.7500),
  ('BB', 7, 5.2500),
  ('BC', 7, -1.7500),
  ('T', 7, -1.1250),
  ('A', 8, 10.6250),
  ('AA', 8, 5.0000),
  ('AB', 8, 3.0000),
  ('B', 8, 5.1250),
  ('BA', 8, 1.0000),
  ('BB', 8, -0.7500),
  ('BC', 8, 3.0000),
  ('T', 8, 8.8750),
  ('A', 9, -3.3750),
  ('AA', 9, -3.2500),
  ('AB', 9, -2.7500),
  ('B', 9, -2.0000),
  ('BA', 9, 0.2500),
  ('BB', 9, 1.0000),
  ('BC', 9, -3.5000),
  ('T', 9, -7.2500),
  ('A', 10, -0.2500),
  ('AA', 10, -3.0000),
  ('AB', 10, 2.5000),
  ('B', 10, 4.7500),
  ('BA', 10, 4.7500),
  ('BB', 10, -0.2500),
  ('BC', 10, 0.2500),
  ('T', 10, 4.2500),
  ('A', 11, -6.8750),
  ('AA', 11, -5.0000),
  ('AB', 11, -2.7500),
  ('B', 11, 3.8750),
  ('BA', 11, 3.7500),
  ('BB', 11, -4.5000),
  ('BC', 11, 3.5000),
  ('T', 11, -5.0000),
  ('A', 12, 3.6250),
  ('AA', 12, 1.5000),
  ('AB', 12, 3.0000),
  ('B', 12, -10.0000),
  ('BA', 12, -2.7500),
  ('BB', 12, -1.0000),
  ('BC', 12, -4.5000),
  ('T', 12, -2.7500);
-- computed by R (base solve() on S (S'W^-1 S)^-1 S'W^-1 y, W from hts::shrink.estim's code); lambda 0.382517944819
CREATE TEMP TABLE rec_ref(method text, node text, step int4, value float8);
INSERT INTO rec_ref VALUES
  ('ols', 'A', 1, 40.3103448276),
  ('ols', 'A', 2, 45.5172413793),
  ('ols', 'AA', 1, 18.6551724138),
  ('ols', 'AA', 2, 20.7586206897),
  ('ols', 'AB', 1, 21.6551724138),
  ('ols', 'AB', 2, 24.7586206897),
  ('ols', 'B', 1, 62.7241379310),
  ('ols', 'B', 2, 63.2068965517),
  ('ols', 'BA', 1, 30.2413793103),
  ('ols', 'BA', 2, 29.0689655172),
  ('ols', 'BB', 1, 18.2413793103),
  ('ols', 'BB', 2, 20.0689655172),
  ('ols', 'BC', 1, 14.2413793103),
  ('ols', 'BC', 2, 14.0689655172),
  ('ols', 'T', 1, 103.0344827586),
  ('ols', 'T', 2, 108.7241379310),
  ('wls_struct', 'A', 1, 41.4000000000),
  ('wls_struct', 'A', 2, 45.4666666667),
  ('wls_struct', 'AA', 1, 19.2000000000),
  ('wls_struct', 'AA', 2, 20.7333333333),
  ('wls_struct', 'AB', 1, 22.2000000000),
  ('wls_struct', 'AB', 2, 24.7333333333),
  ('wls_struct', 'B', 1, 62.6000000000),
  ('wls_struct', 'B', 2, 62.2000000000),
  ('wls_struct', 'BA', 1, 30.2000000000),
  ('wls_struct', 'BA', 2, 28.7333333333),
  ('wls_struct', 'BB', 1, 18.2000000000),
  ('wls_struct', 'BB', 2, 19.7333333333),
  ('wls_struct', 'BC', 1, 14.2000000000),
  ('wls_struct', 'BC', 2, 13.7333333333),
  ('wls_struct', 'T', 1, 104.0000000000),
  ('wls_struct', 'T', 2, 107.6666666667),
  ('wls_var', 'A', 1, 41.3471294245),
  ('wls_var', 'A', 2, 45.8168545907),
  ('wls_var', 'AA', 1, 18.9982355168),
  ('wls_var', 'AA', 2, 20.8890000409),
  ('wls_var', 'AB', 1, 22.3488939076),
  ('wls_var', 'AB', 2, 24.9278545498),
  ('wls_var', 'B', 1, 62.2630765100),
  ('wls_var', 'B', 2, 62.0399446501),
  ('wls_var', 'BA', 1, 30.0907537420),
  ('wls_var', 'BA', 2, 28.7037215543),
  ('wls_var', 'BB', 1, 18.0805849492),
  ('wls_var', 'BB', 2, 19.6248708259),
  ('wls_var', 'BC', 1, 14.0917378187),
  ('wls_var', 'BC', 2, 13.7113522699),
  ('wls_var', 'T', 1, 103.6102059345),
  ('wls_var', 'T', 2, 107.8567992408),
  ('mint_shrink', 'A', 1, 41.2248828559),
  ('mint_shrink', 'A', 2, 45.9458027042),
  ('mint_shrink', 'AA', 1, 18.8894117983),
  ('mint_shrink', 'AA', 2, 20.9344733800),
  ('mint_shrink', 'AB', 1, 22.3354710576),
  ('mint_shrink', 'AB', 2, 25.0113293243),
  ('mint_shrink', 'B', 1, 61.7366180644),
  ('mint_shrink', 'B', 2, 62.1116212032),
  ('mint_shrink', 'BA', 1, 29.8683676135),
  ('mint_shrink', 'BA', 2, 28.6669989679),
  ('mint_shrink', 'BB', 1, 18.0887894967),
  ('mint_shrink', 'BB', 2, 19.5910016312),
  ('mint_shrink', 'BC', 1, 13.7794609542),
  ('mint_shrink', 'BC', 2, 13.8536206041),
  ('mint_shrink', 'T', 1, 102.9615009203),
  ('mint_shrink', 'T', 2, 108.0574239074),
  ('mint_sample', 'A', 1, 37.5286131014),
  ('mint_sample', 'A', 2, 50.5568296568),
  ('mint_sample', 'AA', 1, 18.1326038359),
  ('mint_sample', 'AA', 2, 20.8500790767),
  ('mint_sample', 'AB', 1, 19.3960092655),
  ('mint_sample', 'AB', 2, 29.7067505801),
  ('mint_sample', 'B', 1, 58.5485346645),
  ('mint_sample', 'B', 2, 57.2170075299),
  ('mint_sample', 'BA', 1, 28.4921019632),
  ('mint_sample', 'BA', 2, 24.7928336777),
  ('mint_sample', 'BB', 1, 19.3230356298),
  ('mint_sample', 'BB', 2, 17.6992827222),
  ('mint_sample', 'BC', 1, 10.7333970714),
  ('mint_sample', 'BC', 2, 14.7248911300),
  ('mint_sample', 'T', 1, 96.0771477659),
  ('mint_sample', 'T', 2, 107.7738371866),
  ('top_down', 'A', 1, 39.0660377358),
  ('top_down', 'A', 2, 45.2336448598),
  ('top_down', 'AA', 1, 18.1702501097),
  ('top_down', 'AA', 2, 20.6501422186),
  ('top_down', 'AB', 1, 20.8957876262),
  ('top_down', 'AB', 2, 24.5835026412),
  ('top_down', 'B', 1, 61.9339622642),
  ('top_down', 'B', 2, 64.7663551402),
  ('top_down', 'BA', 1, 29.9680462568),
  ('top_down', 'BA', 2, 30.2242990654),
  ('top_down', 'BB', 1, 17.9808277541),
  ('top_down', 'BB', 2, 20.5093457944),
  ('top_down', 'BC', 1, 13.9850882532),
  ('top_down', 'BC', 2, 14.0327102804),
  ('top_down', 'T', 1, 101.0000000000),
  ('top_down', 'T', 2, 110.0000000000);
CREATE FUNCTION pg_temp.rec(method text) RETURNS SETOF record LANGUAGE sql AS $$
  SELECT node, step, base, reconciled, lambda FROM retail_mid.forecast_reconcile(
    'SELECT child, parent FROM rec_edge', 'SELECT node, step, f FROM rec_fc', method,
    'SELECT node, period, r FROM rec_res') $$;
CREATE TEMP TABLE rec_out AS
SELECT m.method, r.* FROM unnest(ARRAY['bottom_up', 'top_down', 'ols', 'wls_struct', 'wls_var', 'mint_shrink', 'mint_sample']) m(method),
       LATERAL pg_temp.rec(m.method) AS r(node text, step int4, base float8, reconciled float8, lambda float8);
-- agreement with R: largest absolute difference per method (every node and step compared)
SELECT o.method, count(*) AS cells, max(abs(o.reconciled - r.value)) < 1e-8 AS agrees_with_r,
       round(max(o.lambda)::numeric, 10) AS lambda
  FROM rec_out o JOIN rec_ref r USING (method, node, step) GROUP BY o.method ORDER BY o.method;
-- R's shrinkage intensity: 0.382517944819
SELECT abs(max(lambda) - 0.382517944819) < 1e-11 AS lambda_agrees FROM rec_out WHERE method = 'mint_shrink';
-- coherence: every aggregate equals the sum of its children, for every method and step
SELECT o.method, max(abs(o.reconciled - c.s)) < 1e-9 AS coherent
  FROM rec_out o JOIN (SELECT x.method, e.parent, x.step, sum(x.reconciled) s FROM rec_out x JOIN rec_edge e ON e.child = x.node
                        GROUP BY 1, 2, 3) c ON c.method = o.method AND c.parent = o.node AND c.step = o.step
 GROUP BY o.method ORDER BY o.method;
-- base forecasts are incoherent (T = 101 but A + B = 106); bottom-up keeps the leaves, top-down keeps the root
SELECT bool_and(base = reconciled) FILTER (WHERE method = 'bottom_up' AND node IN ('AA', 'AB', 'BA', 'BB', 'BC')) AS bu_leaves,
       bool_and(abs(base - reconciled) < 1e-9) FILTER (WHERE method = 'top_down' AND node = 'T') AS td_root,
       bool_and(lambda IS NULL) FILTER (WHERE method NOT IN ('mint_shrink', 'mint_sample')) AS lambda_null
  FROM rec_out;
SELECT node, step, base, round(reconciled::numeric, 6) AS mint_shrink FROM rec_out WHERE method = 'mint_shrink' ORDER BY node, step;
-- the array form gives the same rows as the query form
SELECT count(*) AS same_rows FROM rec_out o JOIN retail_mid.forecast_reconcile_arrays(
  (SELECT array_agg(child) FROM rec_edge), (SELECT array_agg(parent) FROM rec_edge),
  (SELECT array_agg(node) FROM rec_fc), (SELECT array_agg(step) FROM rec_fc), (SELECT array_agg(f) FROM rec_fc),
  'mint_shrink', (SELECT array_agg(node) FROM rec_res), (SELECT array_agg(period) FROM rec_res),
  (SELECT array_agg(r) FROM rec_res)) a USING (node, step) WHERE o.method = 'mint_shrink' AND o.reconciled = a.reconciled;

-- a grouped structure: SKU x store leaves roll up to their SKU and to their store; the total has both groupings
-- as children (each leaf counted twice: coherent). Explicit root row (parent NULL) is allowed.
CREATE TEMP TABLE g_edge(child text, parent text);
INSERT INTO g_edge VALUES ('s1/p1', 'p1'), ('s1/p2', 'p2'), ('s2/p1', 'p1'), ('s2/p2', 'p2'),
  ('s1/p1', 's1'), ('s1/p2', 's1'), ('s2/p1', 's2'), ('s2/p2', 's2'),
  ('p1', 'total'), ('p2', 'total'), ('s1', 'total'), ('s2', 'total'), ('total', NULL);
CREATE TEMP TABLE g_fc(node text, step int4, f float8);
INSERT INTO g_fc VALUES ('s1/p1', 1, 10), ('s1/p2', 1, 5), ('s2/p1', 1, 7), ('s2/p2', 1, 3),
  ('p1', 1, 18), ('p2', 1, 9), ('s1', 1, 14), ('s2', 1, 11), ('total', 1, 26);
-- WLS-structural by R (same S-matrix computation; S rows p1, p2, s1, s2, total, leaves):
-- p1 17.375, p2 8.375, s1 14.875, s2 10.875, total 25.75, s1/p1 9.9375, s1/p2 4.9375, s2/p1 7.4375, s2/p2 3.4375
SELECT node, round(reconciled::numeric, 4) AS wls_struct,
       abs(reconciled - (ARRAY[17.375, 8.375, 14.875, 10.875, 25.75, 9.9375, 4.9375, 7.4375, 3.4375])[
         array_position(ARRAY['p1', 'p2', 's1', 's2', 'total', 's1/p1', 's1/p2', 's2/p1', 's2/p2'], node)]) < 1e-9 AS agrees_with_r
  FROM retail_mid.forecast_reconcile('SELECT * FROM g_edge', 'SELECT * FROM g_fc', 'wls_struct') ORDER BY node;
SELECT bool_and(abs(r.reconciled - c.s) < 1e-9) AS grouped_coherent FROM retail_mid.forecast_reconcile(
  'SELECT * FROM g_edge', 'SELECT * FROM g_fc', 'ols') r
  JOIN (SELECT e.parent, sum(x.reconciled) / CASE WHEN e.parent = 'total' THEN 2 ELSE 1 END AS s
          FROM retail_mid.forecast_reconcile('SELECT * FROM g_edge', 'SELECT * FROM g_fc', 'ols') x
          JOIN g_edge e ON e.child = x.node WHERE e.parent IS NOT NULL GROUP BY e.parent) c ON c.parent = r.node;

-- bad inputs: each with its SQLSTATE
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.err(q) FROM (VALUES
  ($q$SELECT * FROM retail_mid.forecast_reconcile($$VALUES ('a', 'b'), ('b', 'c'), ('c', 'a')$$, $$VALUES ('a', 1, 1.0)$$, 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile($$VALUES ('a', 'a')$$, $$VALUES ('a', 1, 1.0)$$, 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile($$VALUES ('x', 'T'), ('y', 'T'), ('x', 'A'), ('A', 'T')$$, $$VALUES ('x', 1, 1.0), ('y', 1, 1.0), ('A', 1, 1.0), ('T', 1, 1.0)$$, 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc WHERE node <> ''BB''', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc WHERE NOT (node = ''BB'' AND step = 2)', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc UNION ALL SELECT ''ZZ'', 1, 1', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc UNION ALL SELECT ''AA'', 1, 1', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge UNION ALL SELECT ''AA'', ''A''', 'SELECT * FROM rec_fc', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM g_edge', 'SELECT * FROM g_fc', 'top_down')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge WHERE parent <> ''T''', 'SELECT * FROM rec_fc WHERE node <> ''T''', 'top_down')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc', 'mint_shrink', 'SELECT node, period, CASE WHEN node = ''BC'' THEN 0 ELSE r END FROM rec_res')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc', 'mint_sample', 'SELECT * FROM rec_res WHERE period <= 2')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc', 'mint_shrink', 'SELECT * FROM rec_res WHERE period = 1')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc', 'mint_shrink', 'SELECT * FROM rec_res WHERE NOT (node = ''A'' AND period = 4)')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc', 'mint_shrink')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc', 'mint')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT node, step, CASE WHEN node = ''A'' THEN ''NaN'' ELSE f END FROM rec_fc', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT node, step, CASE WHEN node = ''A'' THEN NULL ELSE f END FROM rec_fc', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge WHERE false', 'SELECT * FROM rec_fc', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile('SELECT * FROM rec_edge', 'SELECT * FROM rec_fc WHERE false', 'ols')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile(NULL, 'SELECT * FROM rec_fc')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile_arrays('{a,b}', '{c}', '{a}', '{1}', '{1}')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile_arrays('{a,b}', '{c,c}', '{a,b,c}', '{1,1,1}', '{1,2}')$q$),
  ($q$SELECT * FROM retail_mid.forecast_reconcile_arrays(NULL, '{c}', '{a}', '{1}', '{1}')$q$)
) v(q);
-- a hierarchy of leaves only (nothing to reconcile) returns the base forecasts
SELECT * FROM retail_mid.forecast_reconcile_arrays('{a,b}', '{NULL,NULL}', '{a,b}', '{1,1}', '{3,4}', 'mint_shrink',
  '{a,a,b,b}', '{1,2,1,2}', '{1,-1,2,-2}');
