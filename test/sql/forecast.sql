SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- retail_mid.forecast: hand-checkable models, agreement with R's forecast 8.20, parallel plans, bad input.
SET extra_float_digits = 0;
SET datestyle = ISO;

-- naive and seasonal naive: exact values
SELECT r->'model' AS model, r->'mean' AS mean
  FROM (SELECT retail_mid.forecast_series(t, v, 5, 4, '{"model": "naive"}') r
          FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)) x;
SELECT r->'model' AS model, r->'mean' AS mean
  FROM (SELECT retail_mid.forecast_series(t, v, 6, 4, '{"model": "snaive"}') r
          FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)) x;
-- naive interval: sigma = sqrt(mean of squared first differences), sd_h = sigma sqrt(h)
WITH y AS (SELECT * FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)),
     f AS (SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "naive"}') r FROM y),
     s AS (SELECT sqrt(avg((v - lag) ^ 2)) sigma FROM (SELECT v, lag(v) OVER (ORDER BY t) lag FROM y) d WHERE lag IS NOT NULL)
SELECT step, abs(hi95 - (9 + 1.959963984540054 * sigma * sqrt(step))) < 1e-9 AS hi95_ok,
       abs(lo80 - (9 - 1.2815515655446004 * sigma * sqrt(step))) < 1e-9 AS lo80_ok
  FROM f, s, retail_mid.forecast_rows(f.r);

-- Croston and SBA against a plain-SQL Croston (SES of sizes and intervals, both started at their first value)
CREATE TEMP TABLE fc_int(t int8, v float8);
INSERT INTO fc_int SELECT t, v FROM unnest('{0,3,0,0,5,0,2,0,0,0,4,0,0,1,0,0,0,6,0,0}'::float8[]) WITH ORDINALITY u(v, t);
WITH RECURSIVE d AS (
    SELECT row_number() OVER (ORDER BY t) k, v, t - coalesce(lag(t) OVER (ORDER BY t), 0) tt FROM fc_int WHERE v > 0),
  s(k, z, p) AS (
    SELECT 1::int8, v, tt::float8 FROM d WHERE k = 1
    UNION ALL
    SELECT d.k, s.z + 0.1 * (d.v - s.z), s.p + 0.1 * (d.tt - s.p) FROM s JOIN d ON d.k = s.k + 1),
  ref AS (SELECT z / p AS croston FROM s ORDER BY k DESC LIMIT 1)
SELECT round((ref.croston)::numeric, 6) AS plain_sql,
       round((c->'mean'->>0)::numeric, 6) AS croston,
       abs((c->'mean'->>2)::float8 - ref.croston) < 1e-12 AS croston_exact,
       abs((b->'mean'->>0)::float8 - 0.95 * ref.croston) < 1e-12 AS sba_exact
  FROM ref,
       (SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "croston"}') c FROM fc_int) x,
       (SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "sba"}') b FROM fc_int) y;
-- the same series in R 8.20: croston(y, h = 3)$mean = 1.294609 and croston(y, h = 3, alpha = 0.2)$mean = 1.197217
SELECT round((retail_mid.forecast_series(t, v, 1, 1, '{"model": "croston"}')->'mean'->>0)::numeric, 6) AS r_1_294609,
       round((retail_mid.forecast_series(t, v, 1, 1, '{"model": "croston", "alpha": 0.2}')->'mean'->>0)::numeric, 6) AS r_1_197217
  FROM fc_int;
-- intermittent intervals never go negative; TSB and ADIDA on the same series
SELECT r->>'model' AS model, (SELECT bool_and(lo95 >= 0 AND lo80 >= 0 AND hi95 >= hi80 AND hi80 >= mean) FROM retail_mid.forecast_rows(r)) AS bounds_ok
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 1, jsonb_build_object('model', m)) r
          FROM fc_int, unnest('{croston,sba,tsb,adida}'::text[]) m GROUP BY m) x ORDER BY 1;
-- TSB by hand: p0 = 6/20 (share of periods with demand), z0 = 21/6 (mean size), then p += 0.1 (1[y>0] - p), z += 0.1 (y - z) after demands
WITH RECURSIVE s(t, p, z) AS (
    SELECT 0::int8, 6 / 20.0::float8, 21 / 6.0::float8
    UNION ALL
    SELECT f.t, s.p + 0.1 * ((f.v > 0)::int - s.p), CASE WHEN f.v > 0 THEN s.z + 0.1 * (f.v - s.z) ELSE s.z END
      FROM s JOIN fc_int f ON f.t = s.t + 1)
SELECT abs((SELECT p * z FROM s WHERE t = 20) - (retail_mid.forecast_series(t, v, 1, 1, '{"model": "tsb"}')->'mean'->>0)::float8) < 1e-12 AS tsb_exact
  FROM fc_int;
-- automatic choice on intermittent data: demand class and an intermittent-capable model
SELECT r->>'demand_class' AS class, round((r->>'adi')::numeric, 4) AS adi, round((r->>'cv2')::numeric, 4) AS cv2,
       r->>'model' IN ('CROSTON', 'SBA', 'TSB', 'ADIDA', 'ETS(A,N,N)') AS intermittent_model
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 1) r FROM fc_int) x;
-- plain-SQL ADI and CV^2 (sample variance of the non-zero sizes)
SELECT round(20.0 / count(*), 4) AS adi, round((var_samp(v) / avg(v) ^ 2)::numeric, 4) AS cv2 FROM fc_int WHERE v > 0;

-- SES on a constant series: level = the constant, whatever alpha
SELECT r->>'model' AS model, (SELECT bool_and(abs(mean - 7) < 1e-6) FROM retail_mid.forecast_rows(r)) AS level_is_constant
  FROM (SELECT retail_mid.forecast_series(t, 7, 4, 1, '{"model": "ets", "ets": "ANN"}') r FROM generate_series(1, 30) t) x;
-- constant and all-zero series in automatic mode: the constant, zero-width intervals
SELECT r->>'model' AS model, r->'mean'->>0 AS mean, r->'lo95'->>0 AS lo95, r->'hi95'->>0 AS hi95
  FROM (SELECT retail_mid.forecast_series(t, c, 2, 1) r FROM generate_series(1, 30) t, (VALUES (0.0), (3.5)) c(c) GROUP BY c ORDER BY c) x;

-- Parameters against R 8.20, computed once with:
--   Rscript -e 'library(forecast); f <- ets(Nile); f$method; f$aicc; coef(f)'
--     -> ETS(M,N,N), AICc 1458.552, alpha 0.1514, l 1087.7718
--   Rscript -e 'library(forecast); f <- ets(UKgas); f$method; f$aicc; coef(f)'
--     -> ETS(M,A,M), AICc 1256.558, alpha 0.03054, beta 0.03054, gamma 0.62384
--   Rscript -e 'library(forecast); f <- forecast(ets(Nile, model = "ANN"), h = 3); f$mean; f$upper'
--     -> alpha 0.2455, mean 805.3813, upper 95% 1088.070 1096.467 1104.628, upper 80% 990.2217 995.7119 1001.0481
CREATE TEMP TABLE fc_nile(t int8, v float8);
INSERT INTO fc_nile SELECT t, v FROM unnest('{1120,1160,963,1210,1160,1160,813,1230,1370,1140,995,935,1110,994,1020,960,1180,799,958,1140,1100,1210,1150,1250,1260,1220,1030,1100,774,840,874,694,940,833,701,916,692,1020,1050,969,831,726,456,824,702,1120,1100,832,764,821,768,845,864,862,698,845,744,796,1040,759,781,865,845,944,984,897,822,1010,771,676,649,846,812,742,801,1040,860,874,848,890,744,749,838,1050,918,986,797,923,975,815,1020,906,901,1170,912,746,919,718,714,740}'::float8[]) WITH ORDINALITY u(v, t);
CREATE TEMP TABLE fc_ukgas(t int8, v float8);
INSERT INTO fc_ukgas SELECT t, v FROM unnest('{160.1,129.7,84.8,120.1,160.1,124.9,84.8,116.9,169.7,140.9,89.7,123.3,187.3,144.1,92.9,120.1,176.1,147.3,89.7,123.3,185.7,155.3,99.3,131.3,200.1,161.7,102.5,136.1,204.9,176.1,112.1,140.9,227.3,195.3,115.3,142.5,244.9,214.5,118.5,153.7,244.9,216.1,188.9,142.5,301,196.9,136.1,267.3,317,230.5,152.1,336.2,371.4,240.1,158.5,355.4,449.9,286.6,179.3,403.4,491.5,321.8,177.7,409.8,593.9,329.8,176.1,483.5,584.3,395.4,187.3,485.1,669.2,421,216.1,509.1,827.7,467.5,209.7,542.7,840.5,414.6,217.7,670.8,848.5,437,209.7,701.2,925.3,443.4,214.5,683.6,917.3,515.5,224.1,694.8,989.4,477.1,233.7,730,1087,534.7,281.8,787.6,1163.9,613.1,347.4,782.8}'::float8[]) WITH ORDINALITY u(v, t);
SELECT r->>'model' AS model, abs((r->'stats'->>'aicc')::float8 - 1458.552) < 0.05 AS aicc_as_r,
       round((r->'params'->>'alpha')::numeric, 3) AS alpha, abs((r->'params'->>'l0')::float8 - 1087.77) < 2 AS l0_as_r
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 1, '{"auto_model": "ets"}') r FROM fc_nile) x;
-- (same optimiser as ets(): AICc, parameters and forecasts agree with R to at least 7 digits)
SELECT r->>'model' AS model, abs((r->'stats'->>'aicc')::float8 - 1256.558) < 0.001 AS aicc_as_r,
       round((r->'params'->>'alpha')::numeric, 5) AS alpha, round((r->'params'->>'gamma')::numeric, 5) AS gamma,
       abs((r->'mean'->>0)::float8 - 1258.8236182) < 1e-5 AS first_forecast_as_r
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 4, '{"auto_model": "ets"}') r FROM fc_ukgas) x;
SELECT step, round(mean::numeric, 0) AS mean, abs(hi95 - (ARRAY[1088.070, 1096.467, 1104.628])[step]) < 0.5 AS hi95_as_r,
       abs(hi80 - (ARRAY[990.2217, 995.7119, 1001.0481])[step]) < 0.5 AS hi80_as_r
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "ets", "ets": "ANN"}') r FROM fc_nile) x,
       retail_mid.forecast_rows(x.r);
-- damped trend: mean l + (phi + ... + phi^h) b, and the class-3 mean of a multiplicative-seasonal model (with its
-- sigma2 terms beyond one season), against R 8.20 on M1 series MND7 and QNB11:
--   forecast(ets(ts(y, frequency = f)), h, PI = FALSE)$mean
--   MND7 (f = 12) -> ETS(A,Ad,N), steps 1, 2, 3, 18: 12.60147016 12.90280630 13.14387523 14.07422365
--   QNB11 (f = 4) -> ETS(M,A,M), steps 1, 2, 5, 8: 20457.28753 23033.17819 22222.81316 25623.84472
SELECT r->>'model' AS model, abs((r->'mean'->>0)::float8 - 12.60147016) < 1e-6 AS step1_as_r,
       abs((r->'mean'->>1)::float8 - 12.90280630) < 1e-6 AS step2_as_r, abs((r->'mean'->>2)::float8 - 13.14387523) < 1e-6 AS step3_as_r,
       abs((r->'mean'->>17)::float8 - 14.07422365) < 1e-6 AS step18_as_r
  FROM retail_mid.forecast_array('{14.6,11.7,11,10.6,10,9.7,9.5,9.8,9.4,10.4,10.4,10.6,10.9,10.5,10.8,10.6,10.3,9.7,9.7,9.4,9.8,10.8,10.9,11.1,12.5,11.3,11,11.1,10.4,10.1,10,10.1,9.7,10.4,10.3,10.9,11.2,12,12.2}', 18, 12, '{"auto_model": "ets"}') r;
SELECT r->>'model' AS model, abs((r->'mean'->>0)::float8 - 20457.28753) < 1e-4 AS step1_as_r,
       abs((r->'mean'->>1)::float8 - 23033.17819) < 1e-4 AS step2_as_r, abs((r->'mean'->>4)::float8 - 22222.81316) < 1e-4 AS step5_as_r,
       abs((r->'mean'->>7)::float8 - 25623.84472) < 1e-4 AS step8_as_r
  FROM retail_mid.forecast_array('{2334,2598,3067,3318,2710,3075,3847,3969,3258,3939,4815,4570,3594,4023,4496,4545,3675,4408,5124,5103,4080,4529,4998,5128,5004,5092,4340,4801,5149,5453,4922,5254,5245,5667,5451,5636,5298,5573,5448,5476,5168,5476,5409,5636,5388,6130,6365,6527,5757,7830,7092,7376,6518,7113,7265,7312,6669,7350,7730,8181,7295,8353,8532,9124,8438,9047,9831,10462,9632,10446,10930,11131,10012,11241,11655,11841,11392,13012,13424,14258,13692,18577,18753,18041,17580,19558,19693,19846,18919,20851,21589,21843}', 8, 4, '{"auto_model": "ets"}') r;
-- class-1 analytic variance for ANN: sigma2 (1 + (h-1) alpha^2); requested quantile 0.5 is the mean
SELECT s.i AS step,
       abs((r->'hi95'->>(s.i - 1))::float8 - (r->'mean'->>(s.i - 1))::float8
           - 1.959963984540054 * sqrt((r->'stats'->>'sigma2')::float8 * (1 + (s.i - 1) * ((r->'params'->>'alpha')::float8) ^ 2))) < 1e-6 AS var_ok,
       abs((r->'quantiles'->'0.5'->>(s.i - 1))::float8 - (r->'mean'->>(s.i - 1))::float8) < 1e-9 AS median_is_mean
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "ets", "ets": "ANN", "quantiles": [0.5, 0.9]}') r FROM fc_nile) x,
       generate_series(1, 3) s(i);
SELECT step, quantile, round(value::numeric, 6) AS value FROM retail_mid.forecast_quantile_rows((SELECT retail_mid.forecast_series(t, v, 2, 1, '{"model": "naive", "quantiles": [0.5, 0.99]}') FROM fc_nile));
-- simulated intervals (multiplicative model) are reproducible for a seed and ordered
SELECT a = b AS reproducible, (SELECT bool_and(lo95 <= lo80 AND lo80 <= hi80 AND hi80 <= hi95) FROM retail_mid.forecast_rows(a)) AS ordered
  FROM (SELECT retail_mid.forecast_series(t, v, 8, 4, '{"model": "ets", "ets": "MAM"}') a,
               retail_mid.forecast_series(t, v, 8, 4, '{"model": "ets", "ets": "MAM"}') b FROM fc_ukgas) x;
-- the optimiser stops at its evaluation budget
SELECT (r->'stats'->>'evals')::int <= 10 AS bounded, r->>'model' AS model
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 4, '{"model": "ets", "ets": "MAdM", "max_evals": 10}') r FROM fc_ukgas) x;
SELECT (r->'stats'->>'evals')::int AS evals
  FROM (SELECT retail_mid.forecast_series(t, v, 3, 4, '{"model": "ets", "ets": "AAA", "max_evals": 1}') r FROM fc_ukgas) x;

-- dates, frequencies and gaps
CREATE TEMP TABLE fc_daily(sku int, day date, qty float8);
INSERT INTO fc_daily
SELECT s, d::date, 20 + s + 5 * ((extract(isodow FROM d)::int) IN (6, 7))::int + ((s * 7 + extract(doy FROM d)::int * 13) % 11)
  FROM generate_series(1, 24) s, generate_series('2024-01-01'::date, '2024-03-10', '1 day') d;
-- R 8.20 on sku 1 as ts(qty, frequency = 7): ets() -> ETS(A,N,A), forecast(h = 3)$mean 25.746 25.785 25.504
SELECT r->>'model' AS model, r->>'season_length' AS m, date, round(mean::numeric, 3) AS mean
  FROM (SELECT retail_mid.forecast(day, qty, 3, '{"auto_model": "ets"}') r FROM fc_daily WHERE sku = 1) x, retail_mid.forecast_rows(x.r);
SELECT date, mean FROM retail_mid.forecast_rows((SELECT retail_mid.forecast(d::date, 10 + extract(month FROM d), 3, '{"frequency": "month", "model": "snaive"}')
  FROM generate_series('2022-01-15'::date, '2023-12-15', '1 month') d));
SELECT date, mean FROM retail_mid.forecast_rows((SELECT retail_mid.forecast(d::date, 4, 2, '{"frequency": "week"}')
  FROM generate_series('2024-01-01'::date, '2024-03-31', '1 week') d));
SELECT r->'dates' AS dates, r->'last_period' AS last_period FROM (SELECT retail_mid.forecast_series(t, 1.0 * t, 2, 1) r FROM generate_series(1, 9) t) x;
-- a missing day is zero demand by default (same as an explicit zero) and an error with gaps = error
SELECT retail_mid.forecast(day, qty, 2, '{"model": "naive"}')->'n' AS n_with_gap,
       retail_mid.forecast(day, qty, 2, '{"model": "naive"}') = (SELECT retail_mid.forecast(d::date, CASE WHEN d = '2024-01-05' THEN 0 ELSE 3 END, 2, '{"model": "naive"}') FROM generate_series('2024-01-01'::date, '2024-01-10', '1 day') d) AS same_as_zero
  FROM (SELECT d::date AS day, 3.0 AS qty FROM generate_series('2024-01-01'::date, '2024-01-10', '1 day') d WHERE d <> '2024-01-05') x;
SELECT retail_mid.forecast(d::date, 3, 2, '{"gaps": "error"}') FROM generate_series('2024-01-01'::date, '2024-01-10', '2 days') d;
-- NULL quantities are missing periods
SELECT retail_mid.forecast(d::date, CASE WHEN d = '2024-01-05' THEN NULL ELSE 3 END, 1, '{"model": "naive", "gaps": "error"}')
  FROM generate_series('2024-01-01'::date, '2024-01-10', '1 day') d;
-- window use: the final function runs repeatedly over a growing frame
SELECT t, (retail_mid.forecast_series(t, v, 1, 1, '{"model": "naive"}') OVER (ORDER BY t))->'mean'->>0 AS naive_so_far
  FROM fc_int WHERE t <= 5 ORDER BY t;

-- too-short series: documented naive fallback; negative demand: additive ETS only
SELECT n, r->>'model' AS model, r->>'note' AS note, r->'mean'->>0 AS mean, r->'hi95'->>0 AS hi95
  FROM (SELECT n, retail_mid.forecast_series(t, t * 2.0, 2, 1) r FROM generate_series(1, 3) n, generate_series(1, n) t GROUP BY n) x ORDER BY n;
SELECT r->>'model' LIKE '%ETS(A,%' AS additive_ets
  FROM (SELECT retail_mid.forecast_series(t, v - 1000, 3, 1) r FROM fc_nile) x;
SELECT r->>'model' AS model
  FROM (SELECT retail_mid.forecast_series(t, CASE WHEN t % 3 = 0 THEN -2.0 WHEN t % 2 = 0 THEN 5 ELSE 0 END, 3, 1) r FROM generate_series(1, 40) t) x;

-- bad input
SELECT retail_mid.forecast(NULL::date, 1, 3);
SELECT retail_mid.forecast('2024-01-01'::date, 'NaN', 3);
SELECT retail_mid.forecast('2024-01-01'::date, 'Infinity', 3);
SELECT retail_mid.forecast('2024-01-01'::date, 1, 0);
SELECT retail_mid.forecast('2024-01-01'::date, 1, 10001);
SELECT retail_mid.forecast('2024-01-01'::date, 1, NULL);
SELECT retail_mid.forecast('infinity'::date, 1, 3);
SELECT retail_mid.forecast(d, 1, 3) FROM (VALUES ('2024-01-01'::date), ('2024-01-02'), ('2024-01-01')) v(d);
SELECT retail_mid.forecast(d, 1, 3, '{"frequency": "month"}') FROM (VALUES ('2024-01-01'::date), ('2024-01-20')) v(d);
SELECT retail_mid.forecast(d::date, 1, 3, '{"frequency": "week"}') FROM generate_series('2024-01-01'::date, '2024-01-10', '3 days') d;
SELECT retail_mid.forecast_series(t, -1.0 * t, 3, 1, '{"model": "croston"}') FROM generate_series(1, 10) t;
SELECT retail_mid.forecast_series(t, v - 800, 3, 1, '{"model": "ets", "ets": "MNN"}') FROM fc_nile;
SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "ets", "ets": "ANA"}') FROM fc_nile;
SELECT retail_mid.forecast_series(t, v, 3, 1, '{"model": "ets", "ets": "AAA"}') FROM generate_series(1, 5) t, (VALUES (1.0)) c(v);
SELECT retail_mid.forecast_series(t, 1, 3, 0) FROM generate_series(1, 5) t;
SELECT retail_mid.forecast_series(NULL, 1, 3, 1);
SELECT retail_mid.forecast_series(1, 1, 3, 1, '[1, 2]');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"modle": "naive"}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"model": "arima"}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"model": 3}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"ets": "MMN"}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"quantiles": [0.5, 1.5]}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"quantiles": 0.5}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"max_evals": 0}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"tolerance": 1}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"alpha": 0}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"gaps": "fill"}');
SELECT retail_mid.forecast_series(1, 1, 3, 1, '{"frequency": "day"}');
SELECT retail_mid.forecast(current_date, 1, 3, '{"frequency": "hour"}');
SELECT retail_mid.forecast(d, 1, 3) FROM (VALUES ('2024-01-01'::date), ('200000-01-01')) v(d);
-- forecast_array gives the same result as the aggregate on the same periods
SELECT retail_mid.forecast_array(array_agg(v ORDER BY t), 4, 4) = retail_mid.forecast_series(t, v, 4, 4) AS array_equals_aggregate
  FROM fc_ukgas;
SELECT retail_mid.forecast_array('{1,NULL,3}', 2, 1);
SELECT retail_mid.forecast_array('{1,NaN,3}', 2, 1);
SELECT retail_mid.forecast_array('{{1,2},{3,4}}', 2, 1);
SELECT retail_mid.forecast_array('{1,2,3}', NULL, 1);
SELECT retail_mid.forecast_array('{1,2,3}', 2, 0);
SELECT retail_mid.forecast_array('{}', 2, 1) IS NULL AS null_for_empty_array;
-- empty input: no group, NULL result
SELECT retail_mid.forecast(d, 1, 3) IS NULL AS null_for_empty FROM (SELECT '2024-01-01'::date d WHERE false) x;
SELECT retail_mid.forecast('2024-01-01'::date, NULL, 3) IS NULL AS null_for_all_null;

-- forced parallel aggregation equals serial
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
ALTER TABLE fc_daily SET (parallel_workers = 2);
CREATE TABLE fc_par AS SELECT * FROM fc_daily;
ALTER TABLE fc_par SET (parallel_workers = 2);
ANALYZE fc_par;
EXPLAIN (COSTS OFF) SELECT sku, retail_mid.forecast(day, qty, 7) FROM fc_par GROUP BY sku;
CREATE TEMP TABLE fc_parallel_res AS SELECT sku, retail_mid.forecast(day, qty, 7, '{"quantiles": [0.3]}') r FROM fc_par GROUP BY sku;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE fc_serial_res AS SELECT sku, retail_mid.forecast(day, qty, 7, '{"quantiles": [0.3]}') r FROM fc_par GROUP BY sku;
SELECT count(*) AS series FROM fc_serial_res;
SELECT count(*) AS differences FROM ((SELECT * FROM fc_serial_res EXCEPT SELECT * FROM fc_parallel_res)
                                     UNION ALL (SELECT * FROM fc_parallel_res EXCEPT SELECT * FROM fc_serial_res)) d;
RESET max_parallel_workers_per_gather;

-- partitionwise aggregation (partitioned by date, so every series is split across partitions)
CREATE TABLE fc_part (sku int, day date, qty float8) PARTITION BY RANGE (day);
CREATE TABLE fc_part_1 PARTITION OF fc_part FOR VALUES FROM ('2024-01-01') TO ('2024-03-01');
CREATE TABLE fc_part_2 PARTITION OF fc_part FOR VALUES FROM ('2024-03-01') TO ('2025-01-01');
INSERT INTO fc_part SELECT * FROM fc_daily;
ANALYZE fc_part;
SET enable_partitionwise_aggregate = on;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT sku, retail_mid.forecast(day, qty, 7) FROM fc_part GROUP BY sku;
SELECT count(*) AS differences FROM ((SELECT sku, retail_mid.forecast(day, qty, 7, '{"quantiles": [0.3]}') r FROM fc_part GROUP BY sku)
                                     EXCEPT SELECT * FROM fc_serial_res) d;
RESET enable_partitionwise_aggregate;
RESET max_parallel_workers_per_gather;
DROP TABLE fc_par, fc_part;
