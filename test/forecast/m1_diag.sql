-- Runs inside m1_diag.sh: R's per-series ets() fits against ours on M1 (R's files from m1_diag.R).
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
\pset footer off
CREATE TEMP TABLE m1(series text, type text, period text, freq int, h int, t int, split text, value float8);
\set cmd 'gzip -cdf ' :data '/m1.csv.gz'
COPY m1 FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
CREATE TEMP TABLE r_fit(series text, model text, aicc float8, loglik float8, alpha float8, beta float8, gamma float8, phi float8);
CREATE TEMP TABLE r_fc(series text, method text, step int, mean float8);
\set f :out '/r_m1_fit.csv'
COPY r_fit FROM :'f' (FORMAT csv, HEADER, NULL 'NA');
\set f :out '/r_m1.csv'
COPY r_fc FROM :'f' (FORMAT csv, HEADER, NULL 'NA');
DELETE FROM m1 WHERE series NOT IN (SELECT series FROM r_fit);
-- R's names ETS(M,Ad,N) -> the spec AAdN etc.
UPDATE r_fit SET model = replace(replace(replace(model, 'ETS(', ''), ')', ''), ',', '');
CREATE TEMP TABLE ours AS
SELECT series, retail_mid.forecast_series(t, value, h, freq) AS r FROM m1 WHERE split = 'train' GROUP BY series;
CREATE TEMP TABLE ev AS
SELECT s.series, s.period, s.freq, s.h,
       (SELECT array_agg(value ORDER BY t) FROM m1 WHERE m1.series = s.series AND split = 'train') ins,
       (SELECT array_agg(value ORDER BY t) FROM m1 WHERE m1.series = s.series AND split = 'test') act,
       (SELECT array_agg((o.r->'mean'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) ours,
       (SELECT array_agg(mean ORDER BY step) FROM r_fc WHERE r_fc.series = s.series) r_ets,
       replace(replace(replace(o.r->>'model', 'ETS(', ''), ')', ''), ',', '') AS our_model,
       (o.r->'stats'->>'aicc')::float8 AS our_aicc, (o.r->'stats'->>'loglik')::float8 AS our_loglik,
       f.model AS r_model, f.aicc AS r_aicc, f.loglik AS r_loglik
  FROM (SELECT DISTINCT series, period, freq, h FROM m1) s JOIN ours o USING (series) JOIN r_fit f USING (series);
ALTER TABLE ev ADD mase_ours float8, ADD mase_r float8;
UPDATE ev SET mase_ours = retail_mid.mase(act, ours, ins, freq), mase_r = retail_mid.mase(act, r_ets, ins, freq)
 WHERE coalesce(retail_mid.naive_scale(ins, freq, 1, false), 0) > 0;
\echo === mean MASE / RMSSE by period (all series with a non-zero scale)
SELECT coalesce(period, 'ALL') AS period, count(*) AS series,
       round(avg(mase_ours)::numeric, 4) AS mase_ours, round(avg(mase_r)::numeric, 4) AS mase_r,
       round(avg(retail_mid.rmsse(act, ours, ins))::numeric, 4) AS rmsse_ours,
       round(avg(retail_mid.rmsse(act, r_ets, ins))::numeric, 4) AS rmsse_r
  FROM ev WHERE mase_ours IS NOT NULL AND coalesce(retail_mid.naive_scale(ins, 1, 2, true), 0) > 0
 GROUP BY ROLLUP (period) ORDER BY period NULLS LAST;
\echo === same model chosen; same forecasts (max relative difference < 1e-3)
SELECT period, count(*) AS series, count(*) FILTER (WHERE our_model = r_model) AS same_model,
       count(*) FILTER (WHERE (SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b)) < 1e-3) AS same_forecast,
       count(*) FILTER (WHERE our_model = r_model AND our_aicc < r_aicc - 0.01) AS same_model_we_fit_better,
       count(*) FILTER (WHERE our_model = r_model AND our_aicc > r_aicc + 0.01) AS same_model_r_fits_better
  FROM ev GROUP BY period ORDER BY period;
\echo === where the choice differs: AICc of the model each side chose
SELECT series, period, our_model, round(our_aicc::numeric, 2) AS our_aicc, r_model, round(r_aicc::numeric, 2) AS r_aicc,
       round(mase_ours::numeric, 3) AS mase_ours, round(mase_r::numeric, 3) AS mase_r
  FROM ev WHERE our_model <> r_model ORDER BY mase_ours - mase_r DESC NULLS LAST LIMIT 40;
\echo === the 25 series where our MASE is most above that of R
SELECT series, period, our_model, r_model, round(our_aicc::numeric, 2) AS our_aicc, round(r_aicc::numeric, 2) AS r_aicc,
       round(mase_ours::numeric, 3) AS mase_ours, round(mase_r::numeric, 3) AS mase_r
  FROM ev ORDER BY mase_ours - mase_r DESC NULLS LAST LIMIT 25;
\echo === sum of the MASE differences by kind of disagreement
SELECT CASE WHEN our_model <> r_model THEN 'different model'
            WHEN (SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b)) < 1e-3 THEN 'same forecast'
            ELSE 'same model, different fit' END AS kind,
       count(*), round(sum(mase_ours - mase_r)::numeric, 3) AS sum_mase_diff
  FROM ev WHERE mase_ours IS NOT NULL GROUP BY 1 ORDER BY 1;
\echo === series whose forecasts differ (max relative difference >= 1e-3), by model and by whether the fit differs (|AICc difference| > 0.01)
SELECT our_model AS model, abs(our_aicc - r_aicc) > 0.01 AS fit_differs, count(*) AS series,
       round(sum(mase_ours - mase_r)::numeric, 3) AS sum_mase_diff,
       round(sum(mase_ours - mase_r) FILTER (WHERE mase_ours > mase_r)::numeric, 3) AS sum_where_r_better,
       round(sum(mase_ours - mase_r) FILTER (WHERE mase_ours < mase_r)::numeric, 3) AS sum_where_we_are_better
  FROM ev
 WHERE our_model = r_model AND (SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b)) >= 1e-3
 GROUP BY 1, 2 ORDER BY 1, 2;
\echo === those series one by one
SELECT series, period, our_model, round(our_aicc::numeric, 2) AS our_aicc, round(r_aicc::numeric, 2) AS r_aicc,
       round((SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b))::numeric, 4) AS max_rel_diff,
       round(mase_ours::numeric, 3) AS mase_ours, round(mase_r::numeric, 3) AS mase_r
  FROM ev
 WHERE our_model = r_model AND (SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b)) >= 1e-3
 ORDER BY mase_ours - mase_r;
\echo === all series by model family (ETS(M,Ad,M), whose first forecast step R computes undamped, or other) and forecast agreement
SELECT our_model = 'MAdM' AS madm,
       CASE WHEN our_model <> r_model THEN 'different model'
            WHEN (SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b)) < 1e-6 THEN 'equal to 1e-6'
            WHEN (SELECT max(abs(a - b) / greatest(abs(b), 1e-9)) FROM unnest(ours, r_ets) u(a, b)) < 1e-3 THEN 'equal to 1e-3'
            ELSE 'differ' END AS forecasts,
       count(*) AS series, round(sum(mase_ours - mase_r)::numeric, 4) AS sum_mase_diff
  FROM ev WHERE mase_ours IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2;
