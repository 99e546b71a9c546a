SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- retail_mid.forecast models of issue 18: Theta against R's thetaf(), the M4 Comb benchmark, mean / median /
-- select combinations (exact means of their components), parallel plans, bad options.
SET extra_float_digits = 0;

-- R's datasets and forecast 8.20 thetaf(y, h) (mean, lower 80%, upper 95%), printed with 15 digits
CREATE TEMP TABLE theta_ref (name text, m int, y float8[], mean float8[], lo80 float8[], hi95 float8[]);
INSERT INTO theta_ref VALUES ('AirPassengers', 12,
  '{112.0,118.0,132.0,129.0,121.0,135.0,148.0,148.0,136.0,119.0,104.0,118.0,115.0,126.0,141.0,135.0,125.0,149.0,170.0,170.0,158.0,133.0,114.0,140.0,145.0,150.0,178.0,163.0,172.0,178.0,199.0,199.0,184.0,162.0,146.0,166.0,171.0,180.0,193.0,181.0,183.0,218.0,230.0,242.0,209.0,191.0,172.0,194.0,196.0,196.0,236.0,235.0,229.0,243.0,264.0,272.0,237.0,211.0,180.0,201.0,204.0,188.0,235.0,227.0,234.0,264.0,302.0,293.0,259.0,229.0,203.0,229.0,242.0,233.0,267.0,269.0,270.0,315.0,364.0,347.0,312.0,274.0,237.0,278.0,284.0,277.0,317.0,313.0,318.0,374.0,413.0,405.0,355.0,306.0,271.0,306.0,315.0,301.0,356.0,348.0,355.0,422.0,465.0,467.0,404.0,347.0,305.0,336.0,340.0,318.0,362.0,348.0,363.0,435.0,491.0,505.0,404.0,359.0,310.0,337.0,360.0,342.0,406.0,396.0,420.0,472.0,548.0,559.0,463.0,407.0,362.0,405.0,417.0,391.0,419.0,461.0,472.0,535.0,622.0,606.0,508.0,461.0,390.0,432.0}'::float8[],
  '{440.078191081586,428.384280556983,489.707098669638,475.704627661373,479.670388669209,545.366272154216,602.752001822396,601.100763091486,523.951492158653,456.62714491283,397.953734665557,447.644908742896,454.529768932994,442.413454457602,505.700887552132,491.198926927015,495.251566219845,563.033630953556,622.225822465096,620.469088933685,540.788748170755,471.261733031822,410.673907322799,461.91539576709}'::float8[],
  '{426.293757125054,410.401914200672,468.33608137885,451.413162898751,452.773731988791,516.095381821756,571.285513281005,567.582189413657,488.499416596472,419.341698128097,358.920935352571,406.939696515488,412.218196251883,398.554315580744,460.3469578074,444.397924549281,447.046911840509,513.465056391624,571.329865215307,568.279498547834,487.336823744093,416.576606121627,354.782781144713,404.843748991083}'::float8[],
  '{461.159663593848,455.885936645395,522.391249139328,512.855217108183,520.805275329628,590.132235841883,650.875843202793,652.362997860619,578.170762882684,513.650314959451,457.649249794299,509.898158704693,519.239735206559,509.490218984867,575.063737434227,562.774883421401,568.974223201306,638.842223848598,700.064471997615,700.286179618365,622.536412172159,554.895417477783,496.152008485182,549.198947382768}'::float8[]);
INSERT INTO theta_ref VALUES ('UKgas', 4,
  '{160.1,129.7,84.8,120.1,160.1,124.9,84.8,116.9,169.7,140.9,89.7,123.3,187.3,144.1,92.9,120.1,176.1,147.3,89.7,123.3,185.7,155.3,99.3,131.3,200.1,161.7,102.5,136.1,204.9,176.1,112.1,140.9,227.3,195.3,115.3,142.5,244.9,214.5,118.5,153.7,244.9,216.1,188.9,142.5,301.0,196.9,136.1,267.3,317.0,230.5,152.1,336.2,371.4,240.1,158.5,355.4,449.9,286.6,179.3,403.4,491.5,321.8,177.7,409.8,593.9,329.8,176.1,483.5,584.3,395.4,187.3,485.1,669.2,421.0,216.1,509.1,827.7,467.5,209.7,542.7,840.5,414.6,217.7,670.8,848.5,437.0,209.7,701.2,925.3,443.4,214.5,683.6,917.3,515.5,224.1,694.8,989.4,477.1,233.7,730.0,1087.0,534.7,281.8,787.6,1163.9,613.1,347.4,782.8}'::float8[],
  '{999.743917143094,660.09764195381,387.189467224458,718.36074299386,1016.076372642662,670.837555334751,393.46359272601,729.954293411251}'::float8[],
  '{900.500536889818,558.095308831398,282.50086516705,611.053097231532,906.212100573111,558.474813664341,278.656741214394,612.754290884249}'::float8[],
  '{1151.52356942558,816.096748532113,547.296867613901,882.473625077204,1184.099277247772,842.681539454574,569.04552028238,909.196229605454}'::float8[]);
INSERT INTO theta_ref VALUES ('WWWusage', 1,
  '{88.0,84.0,85.0,85.0,84.0,85.0,83.0,85.0,88.0,89.0,91.0,99.0,104.0,112.0,126.0,138.0,146.0,151.0,150.0,148.0,147.0,149.0,143.0,132.0,131.0,139.0,147.0,150.0,148.0,145.0,140.0,134.0,131.0,131.0,129.0,126.0,126.0,132.0,137.0,140.0,142.0,150.0,159.0,167.0,170.0,171.0,172.0,172.0,174.0,175.0,172.0,172.0,174.0,174.0,169.0,165.0,156.0,142.0,131.0,121.0,112.0,104.0,102.0,99.0,99.0,95.0,88.0,84.0,84.0,87.0,89.0,88.0,85.0,86.0,89.0,91.0,91.0,94.0,101.0,110.0,121.0,135.0,145.0,149.0,156.0,165.0,171.0,175.0,177.0,182.0,193.0,204.0,208.0,210.0,215.0,222.0,228.0,226.0,222.0,220.0}'::float8[],
  '{220.309628080144,220.619025019838,220.928421959532,221.237818899226,221.54721583892,221.856612778614,222.166009718308,222.475406658002}'::float8[],
  '{212.838505910962,210.053791357445,207.988922038164,206.29669597994,204.842616174057,203.557701722558,202.400973879444,201.345732321049}'::float8[],
  '{231.735723423778,236.77715554168,240.717679376625,244.088294524014,247.094696408207,249.842382208758,252.39402350943,254.790454931451}'::float8[]);
CREATE TEMP TABLE theta_ours AS
SELECT name, retail_mid.forecast_array(y, cardinality(mean), m, '{"model": "theta"}') r FROM theta_ref;
-- largest relative difference from R: below 1e-9 (same ses() fit by MSE, same decomposition)
SELECT name, r->>'model' AS model, r->'params'->>'seasonal' AS seasonal,
       (SELECT max(abs((r->'mean'->>(i-1))::float8 - mean[i]) / abs(mean[i])) FROM generate_subscripts(mean, 1) i) < 1e-9 AS mean_ok,
       (SELECT max(abs((r->'lo80'->>(i-1))::float8 - lo80[i]) / abs(lo80[i])) FROM generate_subscripts(mean, 1) i) < 1e-9 AS lo80_ok,
       (SELECT max(abs((r->'hi95'->>(i-1))::float8 - hi95[i]) / abs(hi95[i])) FROM generate_subscripts(mean, 1) i) < 1e-9 AS hi95_ok
  FROM theta_ref JOIN theta_ours USING (name) ORDER BY name;

-- combinations: the mean and the median of the components' forecasts and quantiles, exactly
CREATE TEMP TABLE comp AS
SELECT name, o->>'model' AS model, retail_mid.forecast_array(y, 8, m, o) r
  FROM theta_ref, (VALUES ('{"model": "theta"}'::jsonb), ('{"model": "naive"}'), ('{"model": "snaive"}'),
                          ('{"model": "ses"}'), ('{"model": "holt"}'), ('{"model": "damped"}'),
                          ('{"model": "mean", "components": ["theta", "naive", "snaive"]}'),
                          ('{"model": "median", "components": ["theta", "naive", "snaive"]}'),
                          ('{"model": "comb"}'),
                          ('{"model": "select", "components": ["theta", "naive", "snaive"], "quantiles": [0.3]}'),
                          ('{"model": "weighted", "components": ["theta", "naive", "snaive"]}')) v(o);
CREATE TEMP TABLE comp_v AS
SELECT name, model, i, (r->'mean'->>(i-1))::float8 mean, (r->'lo80'->>(i-1))::float8 lo80, (r->'hi95'->>(i-1))::float8 hi95
  FROM comp, generate_series(1, 8) i;
SELECT c.name,
       max(abs(c.mean - (t.mean + n.mean + s.mean) / 3)) < 1e-9 AS mean_is_mean,
       max(abs(c.lo80 - (t.lo80 + n.lo80 + s.lo80) / 3)) < 1e-9 AS lo80_is_mean,
       max(abs(d.mean - (t.mean + n.mean + s.mean - greatest(t.mean, n.mean, s.mean) - least(t.mean, n.mean, s.mean)))) < 1e-9 AS median_is_median,
       max(abs(d.hi95 - (t.hi95 + n.hi95 + s.hi95 - greatest(t.hi95, n.hi95, s.hi95) - least(t.hi95, n.hi95, s.hi95)))) < 1e-9 AS hi95_is_median,
       max(abs(k.mean - (a.mean + b.mean + e.mean) / 3)) < 1e-9 AS comb_is_mean_of_ses_holt_damped
  FROM comp_v c
  JOIN comp_v t ON t.name = c.name AND t.i = c.i AND t.model = 'theta'
  JOIN comp_v n ON n.name = c.name AND n.i = c.i AND n.model = 'naive'
  JOIN comp_v s ON s.name = c.name AND s.i = c.i AND s.model = 'snaive'
  JOIN comp_v d ON d.name = c.name AND d.i = c.i AND d.model = 'median'
  JOIN comp_v k ON k.name = c.name AND k.i = c.i AND k.model = 'comb'
  JOIN comp_v a ON a.name = c.name AND a.i = c.i AND a.model = 'ses'
  JOIN comp_v b ON b.name = c.name AND b.i = c.i AND b.model = 'holt'
  JOIN comp_v e ON e.name = c.name AND e.i = c.i AND e.model = 'damped'
 WHERE c.model = 'mean' GROUP BY c.name ORDER BY c.name;
SELECT name, r->>'model' AS model FROM comp WHERE model IN ('mean', 'median', 'comb') ORDER BY name, model;
-- select: the candidate with the lowest rolling-origin MAE, and its forecast is that candidate's
SELECT c.name, c.r->'params'->>'selected' AS selected,
       (SELECT min(value::float8) FROM jsonb_each_text(c.r->'params'->'selection_mae')) =
         (c.r->'params'->'selection_mae'->>(c.r->'params'->>'selected'))::float8 AS lowest,
       c.r->'mean' = s.r->'mean' AS same_forecast,
       jsonb_array_length(c.r->'quantiles'->'0.3') AS quantiles
  FROM comp c JOIN comp s ON s.name = c.name AND s.model = c.r->'params'->>'selected'
 WHERE c.model = 'select' ORDER BY c.name;

-- weighted: weights proportional to 1 / rolling-origin MAE of each component, summing to 1; the weighted mean
WITH w AS (SELECT c.name, k, (e->>'weight')::float8 AS w,
                  (c.r->'params'->'selection_mae'->>(ARRAY['theta', 'naive', 'snaive'])[k])::float8 AS mae
             FROM comp c, jsonb_array_elements(c.r->'params'->'components') WITH ORDINALITY x(e, k)
            WHERE c.model = 'weighted')
SELECT name, count(*) AS components, abs(sum(w) - 1) < 1e-12 AS sum_1,
       (max(w * mae) - min(w * mae)) / max(w * mae) < 1e-9 AS inverse_mae,
       (SELECT max(abs(v.mean - (SELECT sum(w2.w * cv.mean) FROM w w2 JOIN comp_v cv ON cv.name = w2.name AND cv.i = v.i
                                  AND cv.model = (ARRAY['theta', 'naive', 'snaive'])[w2.k] WHERE w2.name = w.name)))
          FROM comp_v v WHERE v.name = w.name AND v.model = 'weighted') < 1e-9 AS weighted_mean
  FROM w GROUP BY name ORDER BY name;

-- the aggregates with the new options, serial and under forced parallel plans: the same results
CREATE TABLE fm_long AS SELECT name, t, y[t] AS v FROM theta_ref, generate_subscripts(y, 1) t;
ALTER TABLE fm_long SET (parallel_workers = 2);
ANALYZE fm_long;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
CREATE TEMP TABLE fm_par AS
SELECT name, retail_mid.forecast_series(t, v, 6, 4, '{"model": "median", "components": ["ets", "theta", "comb"]}') r
  FROM fm_long GROUP BY name;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE fm_ser AS
SELECT name, retail_mid.forecast_series(t, v, 6, 4, '{"model": "median", "components": ["ets", "theta", "comb"]}') r
  FROM fm_long GROUP BY name;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS series, count(*) FILTER (WHERE p.r = s.r) AS identical FROM fm_ser s JOIN fm_par p USING (name);

-- bad options: SQLSTATE 22023 with the option named
\set VERBOSITY sqlstate
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "thetaf"}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "mean", "components": "ets"}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "mean", "components": ["croston"]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "mean", "components": ["ets", "ets"]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "mean", "components": []}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "mean", "components": [1]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "ets", "components": ["ets"]}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "select", "origins": 0}');
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "select", "origins": 2.5}');
SELECT retail_mid.forecast_array('{1,2}', 2, 1, '{"model": "theta"}');
SELECT retail_mid.forecast_array('{1,2,3}', 2, 1, '{"model": "damped"}');
SELECT retail_mid.forecast_array('{1,2}', 2, 1, '{"model": "median", "components": ["theta", "comb"]}');
\set VERBOSITY default
SELECT retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 2, 1, '{"model": "mean", "components": ["arima"]}');
-- short or odd series still work where a component can be fitted
SELECT r->>'model' AS model, r->'mean' AS mean
  FROM (SELECT retail_mid.forecast_array('{1,2}', 2, 1, '{"model": "mean", "components": ["theta", "naive"]}') r) x;
SELECT r->>'model' AS model, r->'params'->>'seasonal' AS seasonal
  FROM (SELECT retail_mid.forecast_array('{-1,2,-3,4,-5,6,-7,8,-9,10,-11,12}', 2, 2, '{"model": "theta"}') r) x;
DROP TABLE fm_long;
