SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- accuracy metrics against plain SQL on a small fixture, and the rolling-origin backtest
SET extra_float_digits = 0;
CREATE TEMP TABLE fm(t int, a float8, f float8, lo float8, hi float8);
INSERT INTO fm VALUES (1, 3, 2.5, 1, 4), (2, 0, 1.0, 0, 2), (3, 5, 4.0, 3, 4.5), (4, 2, 2.0, 1, 3), (5, 0, 0.5, 0, 1);
CREATE TEMP TABLE fm_in(t int, y float8);
INSERT INTO fm_in VALUES (1, 0), (2, 0), (3, 4), (4, 1), (5, 0), (6, 3), (7, 5), (8, 2), (9, 0), (10, 6);
CREATE TEMP VIEW fm_arr AS
SELECT array_agg(a ORDER BY t) a, array_agg(f ORDER BY t) f, array_agg(lo ORDER BY t) lo, array_agg(hi ORDER BY t) hi,
       (SELECT array_agg(y ORDER BY t) FROM fm_in) ins FROM fm;
-- each metric next to its plain-SQL definition; the *_ok columns must all be true
SELECT round(retail_mid.mae(a, f)::numeric, 10) AS mae,
       abs(retail_mid.mae(a, f) - (SELECT avg(abs(a - f)) FROM fm)) < 1e-12 AS mae_ok,
       abs(retail_mid.rmse(a, f) - (SELECT sqrt(avg((a - f) ^ 2)) FROM fm)) < 1e-12 AS rmse_ok,
       abs(retail_mid.bias(a, f) - (SELECT avg(f - a) FROM fm)) < 1e-12 AS bias_ok,
       abs(retail_mid.smape(a, f) - (SELECT 200 * avg(abs(a - f) / (abs(a) + abs(f))) FROM fm)) < 1e-12 AS smape_ok,
       abs(retail_mid.pinball(a, f, 0.9) - (SELECT avg(greatest(0.9 * (a - f), (0.9 - 1) * (a - f))) FROM fm)) < 1e-12 AS pinball_ok,
       retail_mid.coverage(a, lo, hi) = (SELECT avg((a BETWEEN lo AND hi)::int) FROM fm) AS coverage_ok
  FROM fm_arr;
SELECT round(retail_mid.rmse(a, f)::numeric, 10) AS rmse, round(retail_mid.bias(a, f)::numeric, 10) AS bias,
       round(retail_mid.smape(a, f)::numeric, 10) AS smape, round(retail_mid.pinball(a, f, 0.9)::numeric, 10) AS pinball_90,
       retail_mid.coverage(a, lo, hi) AS coverage
  FROM fm_arr;
-- MASE: MAE / in-sample mean |y_t - y_{t-m}| over all of the in-sample series (m = 1 and m = 2)
SELECT abs(retail_mid.mase(a, f, ins) - (SELECT avg(abs(a - f)) FROM fm)
           / (SELECT avg(abs(y - l)) FROM (SELECT y, lag(y) OVER (ORDER BY t) l FROM fm_in) d WHERE l IS NOT NULL)) < 1e-12 AS mase1_ok,
       abs(retail_mid.mase(a, f, ins, 2) - (SELECT avg(abs(a - f)) FROM fm)
           / (SELECT avg(abs(y - l)) FROM (SELECT y, lag(y, 2) OVER (ORDER BY t) l FROM fm_in) d WHERE l IS NOT NULL)) < 1e-12 AS mase2_ok,
       round(retail_mid.mase(a, f, ins)::numeric, 10) AS mase
  FROM fm_arr;
-- RMSSE (M5): the squared-difference scale starts at the first non-zero in-sample value (t = 3 here)
SELECT abs(retail_mid.rmsse(a, f, ins) - sqrt((SELECT avg((a - f) ^ 2) FROM fm)
           / (SELECT avg((y - l) ^ 2) FROM (SELECT t, y, lag(y) OVER (ORDER BY t) l FROM fm_in WHERE t >= 3) d WHERE l IS NOT NULL))) < 1e-12 AS rmsse_ok,
       round(retail_mid.rmsse(a, f, ins)::numeric, 10) AS rmsse
  FROM fm_arr;
-- WRMSSE: dollar-weighted mean, parallel-safe aggregate
SELECT round(retail_mid.wrmsse(r, w)::numeric, 10) AS wrmsse, round((sum(r * w) / sum(w))::numeric, 10) AS plain_sql
  FROM (VALUES (0.5, 100.0), (1.2, 50), (0.8, 0), (2.0, NULL)) v(r, w);
SELECT retail_mid.wrmsse(r, w) IS NULL AS null_when_no_weight FROM (VALUES (0.5, 0.0)) v(r, w);
-- MASE and RMSSE are undefined (NULL, skipped by avg) for a constant in-sample series (zero scale)
SELECT retail_mid.mase('{1,2}', '{1,1}', '{5,5,5}') IS NULL AS mase_null, retail_mid.rmsse('{1}', '{1}', '{0,0,0}') IS NULL AS rmsse_null;

-- bad input
SELECT retail_mid.mae('{1,2}', '{1}');
SELECT retail_mid.mae('{}', '{}');
SELECT retail_mid.mae('{1,NULL}', '{1,2}');
SELECT retail_mid.rmse('{1,NaN}', '{1,2}');
SELECT retail_mid.smape(NULL, '{1}');
SELECT retail_mid.pinball('{1}', '{1}', 1.5);
SELECT retail_mid.mase('{1}', '{1}', '{3}');
SELECT retail_mid.mase('{1}', '{1}', '{1,2,3}', 0);
SELECT retail_mid.wrmsse(r, w) FROM (VALUES (0.5, -1.0)) v(r, w);

-- rolling-origin backtest: 3 origins of horizon 2, stride 1, naive model; actuals and forecasts by hand
SELECT origin, step, actual, mean
  FROM retail_mid.forecast_backtest('{1,5,3,8,2,6,4,9}', 2, 3, 1, '{"model": "naive"}');
-- the backtest output feeds the metrics: per-origin MAE equals the plain-SQL MAE over the same rows
SELECT origin, retail_mid.mae(array_agg(actual ORDER BY step), array_agg(mean ORDER BY step)) AS mae,
       avg(abs(actual - mean)) AS plain_sql
  FROM retail_mid.forecast_backtest('{1,5,3,8,2,6,4,9}', 2, 3, 1, '{"model": "naive"}') GROUP BY origin ORDER BY origin;
SELECT count(*) FROM retail_mid.forecast_backtest('{1,5,3,8,2,6,4,9}', 2, 2, 3, '{}', 3);
SELECT * FROM retail_mid.forecast_backtest('{1,5,3}', 2, 3, 1);
SELECT * FROM retail_mid.forecast_backtest('{1,5,3,8}', 0, 1, 1);
SELECT * FROM retail_mid.forecast_backtest('{1,5,3,8}', 1, 1, NULL);
