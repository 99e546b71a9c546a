-- Runs inside prob_accuracy.sh: forecasts every series with every model family and scores the intervals.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\pset footer off
SELECT position('m1' IN :'sets') > 0 AS do_m1, position('carparts' IN :'sets') > 0 AS do_cp \gset
-- the model families: the values the aggregate's own error hint lists for an unknown model
CREATE FUNCTION pg_temp.model_families() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE v_hint text;
BEGIN
    PERFORM retail_mid.forecast_array('{1,2,3,4,5,6,7,8}', 1, 1, '{"model": "no such model"}');
    RAISE EXCEPTION 'an unknown model was accepted';
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN regexp_split_to_array(regexp_replace(v_hint, '^Use (.*)\.$', '\1'), ',\s*|\s+or\s+');
END $$;
-- one forecast, NULL (counted as not fitted) when the family rejects the series (too short, negative values ...)
CREATE FUNCTION pg_temp.try_forecast(y float8[], h int, m int, opts jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RETURN retail_mid.forecast_array(y, h, m, opts);
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN NULL;
END $$;
CREATE TEMP TABLE pa_family AS
SELECT f AS family, o AS ord FROM unnest(coalesce(nullif(string_to_array(:'families', ','), '{}'), pg_temp.model_families())) WITH ORDINALITY u(f, o);
SELECT string_agg(family, ', ' ORDER BY ord) AS families FROM pa_family;
CREATE TEMP TABLE pa_series(set_name text, series text, kind text, ins float8[], act float8[], m int, h int);

\if :do_m1
CREATE TEMP TABLE m1(series text, type text, period text, freq int, h int, t int, split text, value float8);
\set cmd 'gzip -cdf ' :data '/m1.csv.gz'
COPY m1 FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
INSERT INTO pa_series
SELECT 'm1', series, lower(min(period)), array_agg(value ORDER BY t) FILTER (WHERE split = 'train'),
       array_agg(value ORDER BY t) FILTER (WHERE split = 'test'), min(freq), min(h)
  FROM m1 GROUP BY series;
\endif
\if :do_cp
CREATE TEMP TABLE cp(series text, t int, value float8);
\set cmd 'gzip -cdf ' :data '/carparts_monthly.csv.gz'
COPY cp FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
INSERT INTO pa_series
SELECT 'carparts', series, NULL, (array_agg(value ORDER BY t))[1:count(*) - 12], (array_agg(value ORDER BY t))[count(*) - 11:], 12, 12
  FROM cp WHERE value IS NOT NULL GROUP BY series HAVING count(*) >= 24 ORDER BY md5(series) LIMIT :cp_sample;
-- the Syntetos-Boylan class of each car-parts series (ADI > 1.32: intermittent or lumpy)
UPDATE pa_series SET kind = CASE WHEN adi > 1.32 THEN 'intermittent/lumpy' ELSE 'smooth/erratic' END
  FROM (SELECT series AS s, cardinality(ins)::float8 / greatest(1, (SELECT count(*) FROM unnest(ins) v WHERE v <> 0)) AS adi FROM pa_series WHERE set_name = 'carparts') a
 WHERE set_name = 'carparts' AND series = a.s;
\endif
SELECT set_name, kind, count(*) AS series FROM pa_series GROUP BY 1, 2 ORDER BY 1, 2;

CREATE TEMP TABLE pa_fc(family text, set_name text, series text, r jsonb);
CREATE TEMP TABLE pa_time(family text, set_name text, seconds float8);
CREATE FUNCTION pg_temp.run_all() RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_t0 timestamptz; v_set text; v_fam text; v_n bigint;
BEGIN
    FOR v_set, v_fam IN SELECT s.set_name, f.family FROM (SELECT DISTINCT set_name FROM pa_series) s, pa_family f ORDER BY 1, f.ord LOOP
        v_t0 := clock_timestamp();
        INSERT INTO pa_fc
        SELECT v_fam, set_name, series,
               pg_temp.try_forecast(ins, h, m, jsonb_build_object('model', v_fam, 'quantiles', jsonb_build_array(0.1, 0.5, 0.9)))
          FROM pa_series WHERE set_name = v_set;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        INSERT INTO pa_time VALUES (v_fam, v_set, extract(epoch FROM clock_timestamp() - v_t0));
        RAISE NOTICE 'prob_accuracy: % % (% series) in % s', v_set, v_fam, v_n, round(extract(epoch FROM clock_timestamp() - v_t0)::numeric, 1);
    END LOOP;
END $$;
SELECT pg_temp.run_all();

-- per series: the 10/50/90 % quantiles (requested from the aggregate), the 80 % and 95 % bounds, the actuals
CREATE TEMP TABLE pa_eval AS
SELECT f.family, s.set_name, s.kind, s.series, s.ins, s.act, s.m, f.r IS NOT NULL AS fitted,
       (SELECT array_agg((f.r->'quantiles'->'0.1'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS q10,
       (SELECT array_agg((f.r->'quantiles'->'0.5'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS q50,
       (SELECT array_agg((f.r->'quantiles'->'0.9'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS q90,
       (SELECT array_agg((f.r->'lo80'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS lo80,
       (SELECT array_agg((f.r->'hi80'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS hi80,
       (SELECT array_agg((f.r->'lo95'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS lo95,
       (SELECT array_agg((f.r->'hi95'->>(i - 1))::float8 ORDER BY i) FROM generate_series(1, s.h) i) AS hi95,
       retail_mid.naive_scale(s.ins, 1, 1, true) AS scale
  FROM pa_fc f JOIN pa_series s USING (set_name, series);
-- pooled over every series and step: share of actuals inside the interval; the scaled pinball loss (M5's SPL:
-- pinball / in-sample mean |y_t - y_t-1| from the first non-zero value), averaged over the three quantiles and
-- the series with a non-zero scale and a full set of bounds
CREATE TEMP TABLE pa_score AS
SELECT family, set_name, coalesce(kind, 'all') AS kind, count(*) AS series, count(*) FILTER (WHERE fitted) AS fitted,
       sum(n_in80) / nullif(sum(n), 0) AS cov80, sum(n_in95) / nullif(sum(n), 0) AS cov95,
       avg(spl) AS spl
  FROM (SELECT e.*, (SELECT count(*) FROM generate_subscripts(e.act, 1) i WHERE e.act[i] BETWEEN e.lo80[i] AND e.hi80[i])::float8 AS n_in80,
               (SELECT count(*) FROM generate_subscripts(e.act, 1) i WHERE e.act[i] BETWEEN e.lo95[i] AND e.hi95[i])::float8 AS n_in95,
               CASE WHEN e.fitted AND array_position(e.lo95, NULL) IS NULL THEN cardinality(e.act) END::float8 AS n,
               CASE WHEN e.scale > 0 AND array_position(e.q10, NULL) IS NULL AND array_position(e.q90, NULL) IS NULL AND array_position(e.q50, NULL) IS NULL
                    THEN (retail_mid.pinball(e.act, e.q10, 0.1) + retail_mid.pinball(e.act, e.q50, 0.5) + retail_mid.pinball(e.act, e.q90, 0.9)) / 3 / e.scale END AS spl
          FROM pa_eval e) x
 GROUP BY GROUPING SETS ((family, set_name), (family, set_name, kind));
\echo === interval coverage (nominal 80 % and 95 %, goal within 3 points) and scaled pinball loss (10/50/90 %), per family
SELECT s.set_name, s.kind, s.family, s.series, s.fitted,
       round(100 * s.cov80::numeric, 1) AS cov80, round(100 * s.cov95::numeric, 1) AS cov95,
       CASE WHEN abs(s.cov80 - 0.8) <= 0.03 AND abs(s.cov95 - 0.95) <= 0.03 THEN 'ok' ELSE 'MISSES' END AS goal,
       round(s.spl::numeric, 4) AS spl, round(t.seconds::numeric, 1) AS seconds
  FROM pa_score s JOIN pa_family f USING (family) LEFT JOIN pa_time t ON t.family = s.family AND t.set_name = s.set_name AND s.kind = 'all'
 WHERE s.kind = 'all' OR s.set_name = 'carparts'
 ORDER BY s.set_name, s.kind, f.ord;
