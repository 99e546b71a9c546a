-- Runs inside compare_r.sh: loads the data and R's forecasts, forecasts the same series here, prints the metrics.
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
\pset footer off
SELECT position('m1' IN :'sets') > 0 AS do_m1, position('carparts' IN :'sets') > 0 AS do_cp \gset
CREATE TEMP TABLE r_fc(series text, method text, step int, mean float8);
CREATE TEMP TABLE r_time(method text, seconds float8, series int);

\if :do_m1
CREATE TEMP TABLE m1(series text, type text, period text, freq int, h int, t int, split text, value float8);
\set cmd 'gzip -cdf ' :data '/m1.csv.gz'
COPY m1 FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
\set f :out '/r_m1.csv'
COPY r_fc FROM :'f' (FORMAT csv, HEADER, NULL 'NA');
\set f :out '/r_m1_time.csv'
COPY r_time FROM :'f' (FORMAT csv, HEADER);
UPDATE r_time SET method = 'm1 ' || method WHERE method NOT LIKE 'm1 %' AND method NOT LIKE 'carparts %';
DELETE FROM m1 WHERE series NOT IN (SELECT series FROM r_fc);
SELECT clock_timestamp() AS t0 \gset
CREATE TEMP TABLE our_m1 AS
SELECT series, retail_mid.forecast_series(t, value, h, freq, :'opts') AS r FROM m1 WHERE split = 'train' GROUP BY series;
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS our_s \gset
CREATE TEMP TABLE m1_eval AS
SELECT s.series, s.period, s.freq,
       (SELECT array_agg(value ORDER BY t) FROM m1 WHERE m1.series = s.series AND split = 'train') ins,
       (SELECT array_agg(value ORDER BY t) FROM m1 WHERE m1.series = s.series AND split = 'test') act,
       (SELECT array_agg((o.r->'mean'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) ours,
       (SELECT array_agg(mean ORDER BY step) FROM r_fc WHERE r_fc.series = s.series AND method = 'ets') r_ets,
       o.r->>'model' AS our_model
  FROM (SELECT DISTINCT series, period, freq, h FROM m1) s JOIN our_m1 o USING (series);
\echo
\echo === M1: mean MASE (in-sample seasonal-naive scale, m = frequency) and RMSSE (M5 definition, lag 1), official horizons
SELECT coalesce(period, 'ALL') AS period, count(*) AS series,
       round(avg(retail_mid.mase(act, ours, ins, freq))::numeric, 4) AS mase_retail_mid,
       round(avg(retail_mid.mase(act, r_ets, ins, freq))::numeric, 4) AS mase_r_ets,
       round(avg(retail_mid.rmsse(act, ours, ins))::numeric, 4) AS rmsse_retail_mid,
       round(avg(retail_mid.rmsse(act, r_ets, ins))::numeric, 4) AS rmsse_r_ets,
       round(avg(retail_mid.smape(act, ours))::numeric, 3) AS smape_retail_mid,
       round(avg(retail_mid.smape(act, r_ets))::numeric, 3) AS smape_r_ets
  FROM m1_eval WHERE coalesce(retail_mid.naive_scale(ins, freq, 1, false), 0) > 0 AND coalesce(retail_mid.naive_scale(ins, 1, 2, true), 0) > 0
   AND r_ets IS NOT NULL
 GROUP BY ROLLUP (period) ORDER BY period NULLS LAST;
\echo === M1: every R method in the run (R_METHODS=ets,theta,arima) against our choice, on the series each covers
SELECT m.method, coalesce(e.period, 'ALL') AS period, count(*) AS series,
       round(avg(retail_mid.mase(e.act, e.ours, e.ins, e.freq))::numeric, 4) AS mase_retail_mid,
       round(avg(retail_mid.mase(e.act, m.fc, e.ins, e.freq))::numeric, 4) AS mase_r,
       round(avg(retail_mid.rmsse(e.act, e.ours, e.ins))::numeric, 4) AS rmsse_retail_mid,
       round(avg(retail_mid.rmsse(e.act, m.fc, e.ins))::numeric, 4) AS rmsse_r
  FROM m1_eval e JOIN (SELECT series, method, array_agg(mean ORDER BY step) AS fc FROM r_fc GROUP BY 1, 2) m USING (series)
 WHERE coalesce(retail_mid.naive_scale(e.ins, e.freq, 1, false), 0) > 0 AND coalesce(retail_mid.naive_scale(e.ins, 1, 2, true), 0) > 0
   AND array_position(m.fc, NULL) IS NULL
 GROUP BY m.method, ROLLUP (e.period) ORDER BY m.method, e.period NULLS LAST;
SELECT format('R %s: %s s elapsed for %s series', method, round(seconds::numeric, 1), series) AS r_time FROM r_time ORDER BY 1;
SELECT count(*) FILTER (WHERE our_model LIKE 'ETS%') AS our_ets, count(*) FILTER (WHERE our_model NOT LIKE 'ETS%') AS our_other FROM m1_eval;
SELECT format('M1 time: retail_mid %s s for %s series (serial, one backend, with 80/95%% intervals); R ets() %s s (no intervals); ratio R/retail_mid = %s',
              round(:our_s::numeric, 1), (SELECT count(*) FROM our_m1), round(seconds::numeric, 1), round((seconds / :our_s)::numeric, 1)) AS timing
  FROM r_time WHERE method = 'm1 ets';
\endif

\if :do_cp
TRUNCATE r_fc, r_time;
CREATE TEMP TABLE cp(series text, t int, value float8);
\set cmd 'gzip -cdf ' :data '/carparts_monthly.csv.gz'
COPY cp FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
\set f :out '/r_carparts.csv'
COPY r_fc FROM :'f' (FORMAT csv, HEADER, NULL 'NA');
\set f :out '/r_carparts_time.csv'
COPY r_time FROM :'f' (FORMAT csv, HEADER);
DELETE FROM cp WHERE series NOT IN (SELECT series FROM r_fc);
CREATE TEMP TABLE cp_n AS SELECT series, max(t) AS n FROM cp GROUP BY series HAVING count(*) >= 24;
SELECT clock_timestamp() AS t0 \gset
CREATE TEMP TABLE our_cp AS
SELECT series, retail_mid.forecast_series(t, value, 12, 12, :'opts') AS r FROM cp JOIN cp_n USING (series) WHERE t <= n - 12 GROUP BY series;
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS our_s \gset
CREATE TEMP TABLE cp_eval AS
SELECT c.series,
       (SELECT array_agg(value ORDER BY t) FROM cp WHERE cp.series = c.series AND t <= c.n - 12) ins,
       (SELECT array_agg(value ORDER BY t) FROM cp WHERE cp.series = c.series AND t > c.n - 12) act,
       (SELECT array_agg((o.r->'mean'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, 12) i) ours,
       (SELECT array_agg(mean ORDER BY step) FROM r_fc WHERE r_fc.series = c.series AND method = 'ets') r_ets,
       (SELECT array_agg(mean ORDER BY step) FROM r_fc WHERE r_fc.series = c.series AND method = 'croston') r_croston,
       (SELECT array_agg(mean ORDER BY step) FROM r_fc WHERE r_fc.series = c.series AND method = 'naive') r_naive,
       o.r->>'model' AS our_model, o.r->>'demand_class' AS class
  FROM cp_n c JOIN our_cp o USING (series);
\echo
\echo === Car parts (series >= 24 months, last 12 held out): mean RMSSE (M5) and MASE (lag-1 scale); series with a zero scale are left out
SELECT count(*) AS series,
       round(avg(retail_mid.rmsse(act, ours, ins))::numeric, 4) AS rmsse_retail_mid,
       round(avg(retail_mid.rmsse(act, r_ets, ins))::numeric, 4) AS rmsse_r_ets,
       round(avg(retail_mid.rmsse(act, r_croston, ins))::numeric, 4) AS rmsse_r_croston,
       round(avg(retail_mid.rmsse(act, r_naive, ins))::numeric, 4) AS rmsse_r_naive,
       round(avg(retail_mid.mase(act, ours, ins))::numeric, 4) AS mase_retail_mid,
       round(avg(retail_mid.mase(act, r_ets, ins))::numeric, 4) AS mase_r_ets,
       round(avg(retail_mid.mase(act, r_croston, ins))::numeric, 4) AS mase_r_croston,
       round(avg(retail_mid.mase(act, r_naive, ins))::numeric, 4) AS mase_r_naive
  FROM cp_eval WHERE coalesce(retail_mid.naive_scale(ins, 1, 2, true), 0) > 0 AND r_croston IS NOT NULL
   AND array_position(r_croston, NULL) IS NULL AND 'NaN'::float8 <> ALL (r_croston);
SELECT class, our_model, count(*) FROM cp_eval GROUP BY 1, 2 ORDER BY 1, 3 DESC;
SELECT format('Car parts time: retail_mid %s s for %s series (serial, with intervals); R ets() %s s, croston() %s s',
              round(:our_s::numeric, 1), (SELECT count(*) FROM our_cp),
              round((SELECT seconds FROM r_time WHERE method = 'ets')::numeric, 1),
              round((SELECT seconds FROM r_time WHERE method = 'croston')::numeric, 1)) AS timing;
\endif
