SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- retail_mid.forecast model arima (issue 18): fixed orders against R's stats::arima / forecast::Arima
-- (coefficients, log-likelihood, forecasts), the orders forecast::auto.arima chooses, interval widths,
-- degenerate inputs, arima as a component of combinations, parallel plans, bad options.
SET extra_float_digits = 0;
CREATE TEMP TABLE ar_data (name text, y float8[]);
INSERT INTO ar_data VALUES
 ('AirPassengers', '{112.0,118.0,132.0,129.0,121.0,135.0,148.0,148.0,136.0,119.0,104.0,118.0,115.0,126.0,141.0,135.0,125.0,149.0,170.0,170.0,158.0,133.0,114.0,140.0,145.0,150.0,178.0,163.0,172.0,178.0,199.0,199.0,184.0,162.0,146.0,166.0,171.0,180.0,193.0,181.0,183.0,218.0,230.0,242.0,209.0,191.0,172.0,194.0,196.0,196.0,236.0,235.0,229.0,243.0,264.0,272.0,237.0,211.0,180.0,201.0,204.0,188.0,235.0,227.0,234.0,264.0,302.0,293.0,259.0,229.0,203.0,229.0,242.0,233.0,267.0,269.0,270.0,315.0,364.0,347.0,312.0,274.0,237.0,278.0,284.0,277.0,317.0,313.0,318.0,374.0,413.0,405.0,355.0,306.0,271.0,306.0,315.0,301.0,356.0,348.0,355.0,422.0,465.0,467.0,404.0,347.0,305.0,336.0,340.0,318.0,362.0,348.0,363.0,435.0,491.0,505.0,404.0,359.0,310.0,337.0,360.0,342.0,406.0,396.0,420.0,472.0,548.0,559.0,463.0,407.0,362.0,405.0,417.0,391.0,419.0,461.0,472.0,535.0,622.0,606.0,508.0,461.0,390.0,432.0}'),
 ('lh', '{2.4,2.4,2.4,2.2,2.1,1.5,2.3,2.3,2.5,2,1.9,1.7,2.2,1.8,3.2,3.2,2.7,2.2,2.2,1.9,1.9,1.8,2.7,3,2.3,2,2,2.9,2.9,2.7,2.7,2.3,2.6,2.4,1.8,1.7,1.5,1.4,2.1,3.3,3.5,3.5,3.1,2.6,2.1,3.4,3,2.9}'),
 ('LakeHuron', '{580.38,581.86,580.97,580.8,579.79,580.39,580.42,580.82,581.4,581.32,581.44,581.68,581.17,580.53,580.01,579.91,579.14,579.16,579.55,579.67,578.44,578.24,579.1,579.09,579.35,578.82,579.32,579.01,579,579.8,579.83,579.72,579.89,580.01,579.37,578.69,578.19,578.67,579.55,578.92,578.09,579.37,580.13,580.14,579.51,579.24,578.66,578.86,578.05,577.79,576.75,576.75,577.82,578.64,580.58,579.48,577.38,576.9,576.94,576.24,576.84,576.85,576.9,577.79,578.18,577.51,577.23,578.42,579.61,579.05,579.26,579.22,579.38,579.1,577.95,578.12,579.75,580.85,580.41,579.96,579.61,578.76,578.18,577.21,577.13,579.1,578.25,577.91,576.89,575.96,576.8,577.68,578.38,578.52,579.74,579.31,579.89,579.96}'),
 ('WWWusage', '{88,84,85,85,84,85,83,85,88,89,91,99,104,112,126,138,146,151,150,148,147,149,143,132,131,139,147,150,148,145,140,134,131,131,129,126,126,132,137,140,142,150,159,167,170,171,172,172,174,175,172,172,174,174,169,165,156,142,131,121,112,104,102,99,99,95,88,84,84,87,89,88,85,86,89,91,91,94,101,110,121,135,145,149,156,165,171,175,177,182,193,204,208,210,215,222,228,226,222,220}');
INSERT INTO ar_data SELECT 'logAirPassengers', array(SELECT ln(v) FROM unnest(y) v) FROM ar_data WHERE name = 'AirPassengers';

-- Fixed orders. Reference values from R 4 / forecast 8.20 (Arima() with method CSS-ML):
--   log AirPassengers (0,1,1)(0,1,1)[12]: ma1 -0.4018280 sma1 -0.5569448 loglik 244.699531, forecasts
--     6.110186 6.053775 6.171715; stats::arima on the differenced series (exact likelihood, what we compute):
--     ma1 -0.4018234 sma1 -0.5569361 loglik 244.696487 sigma2 0.0013480991 (the ML estimate; we report
--     forecast::Arima's residual sum of squares / (n - coefficients), 0.0013480991 * 131 / 129)
--   AirPassengers (2,1,1)(0,1,0)[12]: ar 0.5959801 0.2142750 ma1 -0.9818755 loglik -504.924
--   lh (1,0,0) with mean: ar1 0.5739296 intercept 2.4132880 loglik -29.379162 sigma2 0.20607602
--   lh (3,0,0) with mean: ar 0.64479652 -0.06337353 -0.21980619 intercept 2.39312747 loglik -27.092411
--   LakeHuron (2,0,1) with mean: ar 0.78294422 -0.03420689 ma1 0.28570872 intercept 579.05327824
--     loglik -103.238176 sigma2 0.49507385; upper 95% of h = 1, 2: 581.1198 581.5788
CREATE TEMP TABLE ar_ref (name text, m int, opts jsonb, coef float8[], loglik float8, sigma2 float8, mean float8[], hi95 float8[]);
INSERT INTO ar_ref VALUES
 ('logAirPassengers', 12, '{"order": [0,1,1], "seasonal_order": [0,1,1]}', '{-0.4018234,-0.5569361}', 244.696487, 0.0013480991 * 131 / 129, '{6.110186,6.053775,6.171715}', NULL),
 ('AirPassengers', 12, '{"order": [2,1,1], "seasonal_order": [0,1,0]}', '{0.5959801,0.2142750,-0.9818755}', -504.924, NULL, NULL, NULL),
 ('lh', 1, '{"order": [1,0,0]}', '{0.5739296,2.4132880}', -29.379162, 0.20607602, NULL, NULL),
 ('lh', 1, '{"order": [3,0,0]}', '{0.64479652,-0.06337353,-0.21980619,2.39312747}', -27.092411, NULL, NULL, NULL),
 ('LakeHuron', 1, '{"order": [2,0,1]}', '{0.78294422,-0.03420689,0.28570872,579.05327824}', -103.238176, 0.49507385, NULL, '{581.1198,581.5788}');
CREATE TEMP TABLE ar_fix AS
SELECT f.*, retail_mid.forecast_array(d.y, 3, f.m, f.opts || '{"model": "arima"}') r
  FROM ar_ref f JOIN ar_data d USING (name);
SELECT name, opts, r->>'model' AS model,
       (SELECT max(abs(c - coef[i])) FROM (
          SELECT row_number() OVER () i, c FROM (
            SELECT jsonb_array_elements_text(r->'params'->'ar')::float8 c
            UNION ALL SELECT jsonb_array_elements_text(r->'params'->'ma')::float8
            UNION ALL SELECT jsonb_array_elements_text(r->'params'->'sar')::float8
            UNION ALL SELECT jsonb_array_elements_text(r->'params'->'sma')::float8
            UNION ALL SELECT (r->'params'->>'intercept')::float8 WHERE r->'params' ? 'intercept') x) z) < 2e-4 AS coef_ok,
       abs((r->'stats'->>'loglik')::float8 - loglik) < 1e-3 AS loglik_ok,
       sigma2 IS NULL OR abs((r->'stats'->>'sigma2')::float8 / sigma2 - 1) < 1e-3 AS sigma2_ok,
       mean IS NULL OR (SELECT max(abs((r->'mean'->>(i-1))::float8 - mean[i])) FROM generate_subscripts(mean, 1) i) < 1e-5 AS mean_ok,
       hi95 IS NULL OR (SELECT max(abs((r->'hi95'->>(i-1))::float8 - hi95[i])) FROM generate_subscripts(hi95, 1) i) < 2e-3 AS hi95_ok
  FROM ar_fix ORDER BY name, opts::text;

-- the orders auto.arima chooses (R: log AirPassengers (0,1,1)(0,1,1)[12], AirPassengers (2,1,1)(0,1,0)[12],
-- lh (1,0,0) with non-zero mean, LakeHuron (0,1,0), WWWusage (1,1,1))
CREATE TEMP TABLE ar_auto AS
SELECT name, retail_mid.forecast_array(y, 12, CASE WHEN name LIKE '%AirPassengers' THEN 12 ELSE 1 END,
                                       '{"model": "arima", "quantiles": [0.1, 0.9]}') r
  FROM ar_data;
SELECT name, r->>'model' AS model, (r->'stats'->>'models_tried')::int BETWEEN 5 AND 94 AS searched
  FROM ar_auto ORDER BY name;

-- interval widths: ARIMA(0,1,0) (LakeHuron) has sd sqrt(h sigma2) exactly; every model's 80% and 95% bands
-- are mean -/+ 1.2816 and 1.9600 sd, and the 10%/90% quantiles equal the 80% band
SELECT (SELECT max(abs(((r->'hi95'->>(h-1))::float8 - (r->'mean'->>(h-1))::float8)
                       / (1.959963984540054 * sqrt(h * (r->'stats'->>'sigma2')::float8)) - 1))
          FROM generate_series(1, 12) h) < 1e-9 AS rw_width_ok
  FROM ar_auto WHERE name = 'LakeHuron';
SELECT name,
       bool_and(abs(((r->'hi95'->>i)::float8 - (r->'mean'->>i)::float8) / ((r->'hi80'->>i)::float8 - (r->'mean'->>i)::float8)
                    - 1.959963984540054 / 1.2815515655446004) < 1e-9) AS ratio_ok,
       bool_and(abs((r->'quantiles'->'0.9'->>i)::float8 - (r->'hi80'->>i)::float8) < 1e-9) AS q90_ok,
       bool_and((r->'hi95'->>i)::float8 - (r->'lo95'->>i)::float8 >= (r->'hi95'->>0)::float8 - (r->'lo95'->>0)::float8 - 1e-9) AS widening
  FROM ar_auto, generate_series(0, 11) i GROUP BY name ORDER BY name;

-- degenerate inputs: constant and all-zero series give the constant with zero-width intervals; a series too
-- short for any model is an error with SQLSTATE 22023 when arima is asked for, naive under auto
SELECT r->>'model' AS model, r->'mean' AS mean, r->'hi95' AS hi95
  FROM (SELECT retail_mid.forecast_array('{5,5,5,5,5,5,5,5,5,5}', 3, 1, '{"model": "arima"}') r) x;
SELECT r->>'model' AS model, r->'mean' AS mean, r->'hi95' AS hi95
  FROM (SELECT retail_mid.forecast_array('{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}', 2, 12, '{"model": "arima"}') r) x;
SELECT r->>'model' AS model, jsonb_array_length(r->'mean') AS h
  FROM (SELECT retail_mid.forecast_array('{3,1,4}', 2, 1, '{"model": "arima"}') r) x;
SELECT r->>'model' AS model, jsonb_array_length(r->'mean') AS h
  FROM (SELECT retail_mid.forecast_array('{1,2,4,3,5,7,6,8,9,11,10,12,14,13,15}', 4, 4, '{"model": "arima"}') r) x;
\set VERBOSITY sqlstate
SELECT retail_mid.forecast_array('{1}', 2, 1, '{"model": "arima"}');
SELECT retail_mid.forecast_array('{1,2,3,4,5}', 2, 1, '{"model": "arima", "order": [3,1,1]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "order": [1,1]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "order": [6,0,0]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "order": [0,3,0]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "order": "1,0,0"}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "seasonal_order": [1,0,0]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "order": [0,2,0], "constant": true}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "arima", "constant": 1}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8,1,2,3,4,5,6,7,8}', 2, 30, '{"model": "arima", "seasonal_order": [0,1,0]}');
SELECT retail_mid.forecast_array('{1,2,3,NaN,5,6,7,8}', 2, 1, '{"model": "arima"}');
SELECT retail_mid.forecast_array('{1,2,3,Infinity,5,6,7,8}', 2, 1, '{"model": "arima"}');
\set VERBOSITY default

-- arima in combinations: the mean and median are exactly the mean / median of the components
CREATE TEMP TABLE ar_comb AS
SELECT name, model, retail_mid.forecast_array(y, 6, 12, jsonb_build_object('model', model)
         || CASE WHEN model IN ('mean', 'median') THEN '{"components": ["ets", "arima", "theta"]}' ELSE '{}' END::jsonb) r
  FROM ar_data, unnest(ARRAY['ets', 'arima', 'theta', 'mean', 'median']) model
 WHERE name IN ('AirPassengers', 'logAirPassengers');
SELECT c.name,
       (SELECT max(abs((c.r->'mean'->>i)::float8 - (SELECT avg((x.r->'mean'->>i)::float8) FROM ar_comb x
                 WHERE x.name = c.name AND x.model IN ('ets', 'arima', 'theta')))) FROM generate_series(0, 5) i) < 1e-9 AS mean_ok,
       (SELECT max(abs((m.r->'mean'->>i)::float8 - (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY (x.r->'mean'->>i)::float8) FROM ar_comb x
                 WHERE x.name = c.name AND x.model IN ('ets', 'arima', 'theta')))) FROM generate_series(0, 5) i) < 1e-9 AS median_ok
  FROM ar_comb c JOIN ar_comb m ON m.name = c.name AND m.model = 'median' WHERE c.model = 'mean' ORDER BY c.name;
SELECT r->'params'->'selection_mae' ? 'arima' AS arima_scored, jsonb_array_length(r->'params'->'components') AS components
  FROM (SELECT retail_mid.forecast_array(y, 6, 12, '{"model": "weighted", "components": ["ets", "arima", "theta"]}') r
          FROM ar_data WHERE name = 'AirPassengers') x;

-- serial and forced-parallel plans give the same answers
CREATE TABLE ar_long AS SELECT name, t, y[t] AS v FROM ar_data, generate_subscripts(y, 1) t;
ALTER TABLE ar_long SET (parallel_workers = 2);
ANALYZE ar_long;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
CREATE TEMP TABLE ar_par AS SELECT name, retail_mid.forecast_series(t, v, 6, 12, '{"model": "arima"}') r FROM ar_long GROUP BY name;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ar_ser AS SELECT name, retail_mid.forecast_series(t, v, 6, 12, '{"model": "arima"}') r FROM ar_long GROUP BY name;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS series, count(*) FILTER (WHERE p.r = s.r) AS identical FROM ar_ser s JOIN ar_par p USING (name);
DROP TABLE ar_long;
