-- demand/forecast.sql: demand forecasting aggregates, their accuracy metrics and a rolling-origin backtest.
--
-- Automatic ETS, Theta, the M4 Comb benchmark and combinations, Croston/SBA/TSB/ADIDA, naive and seasonal naive, their row expansion, and accuracy metrics with
-- their published definitions.

CREATE FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_date_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4) IS 'Transition function of retail_mid.forecast: collects (date, quantity) points.';
CREATE FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_date_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4, jsonb) IS 'Transition function of retail_mid.forecast with options: collects (date, quantity) points.';
CREATE FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_index_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4) IS 'Transition function of retail_mid.forecast_series: collects (period, value) points.';
CREATE FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_index_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4, jsonb) IS 'Transition function of retail_mid.forecast_series with options: collects (period, value) points.';
CREATE FUNCTION retail_mid.forecast_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_combine(internal, internal) IS 'Combine function of the forecast aggregates: concatenates two partial series.';
CREATE FUNCTION retail_mid.forecast_serial(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'forecast_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_serial(internal) IS 'Serialises a partial forecast series for parallel aggregation.';
CREATE FUNCTION retail_mid.forecast_deserial(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_deserial(bytea, internal) IS 'Deserialises a partial forecast series; rejects malformed bytes.';
CREATE FUNCTION retail_mid.forecast_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME', 'forecast_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_final(internal) IS 'Final function of the forecast aggregates: sorts the series, fills or rejects gaps, fits and forecasts.';

CREATE AGGREGATE retail_mid.forecast(day date, qty float8, horizon int4) (
    SFUNC = retail_mid.forecast_date_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast(date, float8, int4) IS 'Forecasts one daily series per group (automatic choice by demand class: smooth and erratic series get the mean of the AICc-best ETS and Theta, or damped Holt without a season; intermittent ones the best Croston-type method); returns jsonb with model, parameters, fit statistics, point forecasts and 80%/95% intervals.';

CREATE AGGREGATE retail_mid.forecast(day date, qty float8, horizon int4, options jsonb) (
    SFUNC = retail_mid.forecast_date_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast(date, float8, int4, jsonb) IS 'Forecasts one dated series per group with options (model: auto, ets, theta, comb, ses, holt, damped, mean, median, select, weighted, croston, sba, tsb, adida, naive, snaive; ets, auto_model, components, origins, frequency, season_length, gaps, quantiles, max_evals, tolerance, nsim, seed, alpha, beta); returns jsonb.';

CREATE AGGREGATE retail_mid.forecast_series(t int8, value float8, horizon int4, season_length int4) (
    SFUNC = retail_mid.forecast_index_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast_series(int8, float8, int4, int4) IS 'Forecasts one series indexed by an integer period (t, t+1, ...) per group with the given season length; returns jsonb.';

CREATE AGGREGATE retail_mid.forecast_series(t int8, value float8, horizon int4, season_length int4, options jsonb) (
    SFUNC = retail_mid.forecast_index_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast_series(int8, float8, int4, int4, jsonb) IS 'Forecasts one integer-indexed series per group with options; returns jsonb.';

CREATE FUNCTION retail_mid.forecast_array(y float8[], horizon int4, season_length int4, options jsonb DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'forecast_array' LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION retail_mid.forecast_array(float8[], int4, int4, jsonb) IS 'Forecasts one series given as an array of consecutive periods (no NULLs); same models, options and result as forecast_series, periods numbered 1..n. Runs in parallel workers when called per row of a parallel scan.';

CREATE FUNCTION retail_mid.forecast_rows(result jsonb)
RETURNS TABLE (step int4, date date, mean float8, lo80 float8, hi80 float8, lo95 float8, hi95 float8)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.i, (result -> 'dates' ->> (s.i - 1))::date,
           (result -> 'mean' ->> (s.i - 1))::float8,
           (result -> 'lo80' ->> (s.i - 1))::float8, (result -> 'hi80' ->> (s.i - 1))::float8,
           (result -> 'lo95' ->> (s.i - 1))::float8, (result -> 'hi95' ->> (s.i - 1))::float8
      FROM generate_series(1, jsonb_array_length(result -> 'mean')) AS s(i)
     ORDER BY s.i;
END;
COMMENT ON FUNCTION retail_mid.forecast_rows(jsonb) IS 'Expands a forecast result to one row per step: step, date (NULL for integer-indexed series), mean and the 80%/95% interval bounds.';

CREATE FUNCTION retail_mid.forecast_quantile_rows(result jsonb)
RETURNS TABLE (step int4, quantile float8, value float8)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.i, q.key::float8, (q.value ->> (s.i - 1))::float8
      FROM jsonb_each(result -> 'quantiles') AS q,
           generate_series(1, jsonb_array_length(q.value)) AS s(i)
     ORDER BY 2, 1;
END;
COMMENT ON FUNCTION retail_mid.forecast_quantile_rows(jsonb) IS 'Expands the requested quantiles of a forecast result to (step, quantile, value) rows.';

-- ----------------------------------------------------------------- accuracy metrics
-- Each takes the actuals and forecasts of one horizon as arrays of equal, non-zero length without NULLs.

CREATE FUNCTION retail_mid.metric_check(actual float8[], forecast float8[])
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF actual IS NULL OR forecast IS NULL OR cardinality(actual) = 0 THEN
        RAISE EXCEPTION 'accuracy metrics need non-empty actual and forecast arrays' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(actual) <> cardinality(forecast) THEN
        RAISE EXCEPTION 'actual and forecast arrays differ in length (% and %)', cardinality(actual), cardinality(forecast)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(actual, NULL) IS NOT NULL OR array_position(forecast, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'accuracy metrics do not accept NULL elements' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF 'NaN'::float8 = ANY (actual || forecast) OR 'Infinity'::float8 = ANY (actual || forecast)
       OR '-Infinity'::float8 = ANY (actual || forecast) THEN
        RAISE EXCEPTION 'accuracy metrics need finite values' USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_check(float8[], float8[]) IS 'Raises an error unless actual and forecast are non-empty arrays of equal length with finite, non-NULL elements.';

CREATE FUNCTION retail_mid.mae(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT avg(abs(a - f)) FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.mae(float8[], float8[]) IS 'Mean absolute error: mean |y - f|.';

CREATE FUNCTION retail_mid.rmse(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT sqrt(avg((a - f) ^ 2)) FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.rmse(float8[], float8[]) IS 'Root mean squared error: sqrt(mean (y - f)^2).';

CREATE FUNCTION retail_mid.bias(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT avg(f - a) FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.bias(float8[], float8[]) IS 'Mean forecast error, forecast minus actual (positive = over-forecast).';

CREATE FUNCTION retail_mid.smape(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT 200 * avg(CASE WHEN abs(a) + abs(f) = 0 THEN 0 ELSE abs(a - f) / (abs(a) + abs(f)) END)
              FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.smape(float8[], float8[]) IS 'Symmetric MAPE in percent as in the M4 competition: 200/h sum |y - f| / (|y| + |f|); a step where both are 0 counts as 0.';

-- The scale of MASE/RMSSE: in-sample mean |y_t - y_{t-m}|^p over t = m+1..n.
CREATE FUNCTION retail_mid.naive_scale(insample float8[], season_length int4, power int4, from_first_nonzero boolean)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_start int := 1; v_scale float8;
BEGIN
    IF insample IS NULL OR array_position(insample, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'the in-sample series must not be NULL or contain NULLs' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF season_length IS NULL OR season_length < 1 THEN
        RAISE EXCEPTION 'season length must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_first_nonzero THEN
        SELECT min(i) INTO v_start FROM generate_subscripts(insample, 1) AS i WHERE insample[i] <> 0;
    END IF;
    SELECT avg(abs(insample[i] - insample[i - season_length]) ^ power) INTO v_scale
      FROM generate_series(coalesce(v_start, 1) + season_length, cardinality(insample)) AS i;
    IF cardinality(insample) <= season_length THEN
        RAISE EXCEPTION 'the in-sample series is too short for a naive scale with season length %', season_length
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_scale;
END;
$$;
COMMENT ON FUNCTION retail_mid.naive_scale(float8[], int4, int4, boolean) IS 'In-sample mean of |y_t - y_{t-m}|^power (power 1 for MASE, 2 for RMSSE), optionally starting at the first non-zero value as in the M5 guide (NULL when no pair of values is left after it).';

CREATE FUNCTION retail_mid.mase(actual float8[], forecast float8[], insample float8[], season_length int4 DEFAULT 1)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN retail_mid.mae(actual, forecast) / nullif(retail_mid.naive_scale(insample, season_length, 1, false), 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.mase(float8[], float8[], float8[], int4) IS 'Mean absolute scaled error (Hyndman and Koehler 2006): MAE over the in-sample mean |y_t - y_{t-m}| (m = 1 naive, m = season length seasonal naive); NULL when the in-sample scale is 0 (a constant series).';

CREATE FUNCTION retail_mid.rmsse(actual float8[], forecast float8[], insample float8[], season_length int4 DEFAULT 1)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN sqrt((SELECT avg((a - f) ^ 2) FROM unnest(actual, forecast) AS u(a, f))
                / nullif(retail_mid.naive_scale(insample, season_length, 2, true), 0));
END;
$$;
COMMENT ON FUNCTION retail_mid.rmsse(float8[], float8[], float8[], int4) IS 'Root mean squared scaled error of the M5 guide: sqrt(mean (y - f)^2 / in-sample mean (y_t - y_{t-m})^2), the scale computed from the first non-zero demand on; NULL when that scale is 0.';

CREATE FUNCTION retail_mid.pinball(actual float8[], forecast float8[], quantile float8)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    IF quantile IS NULL OR NOT (quantile > 0 AND quantile < 1) THEN
        RAISE EXCEPTION 'quantile must be strictly between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (SELECT avg(CASE WHEN a >= f THEN quantile * (a - f) ELSE (1 - quantile) * (f - a) END)
              FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.pinball(float8[], float8[], float8) IS 'Pinball (quantile) loss averaged over the horizon: tau (y - q) when y >= q, else (1 - tau) (q - y).';

CREATE FUNCTION retail_mid.coverage(actual float8[], lower float8[], upper float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, lower);
    PERFORM retail_mid.metric_check(actual, upper);
    RETURN (SELECT avg(CASE WHEN a >= l AND a <= u THEN 1.0 ELSE 0.0 END)
              FROM unnest(actual, lower, upper) AS x(a, l, u));
END;
$$;
COMMENT ON FUNCTION retail_mid.coverage(float8[], float8[], float8[]) IS 'Share of actuals inside [lower, upper] (interval coverage, 0..1).';

-- WRMSSE: the M5 weighted mean of per-series RMSSE, weights = each series'' dollar sales over the last 28 days.
CREATE FUNCTION retail_mid.wmean_trans(state float8[], value float8, weight float8)
RETURNS float8[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR weight IS NULL THEN
        RETURN state;
    END IF;
    IF weight < 0 OR weight = 'Infinity'::float8 OR weight = 'NaN'::float8 THEN
        RAISE EXCEPTION 'weights must be finite and non-negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY[state[1] + value * weight, state[2] + weight];
END;
$$;
COMMENT ON FUNCTION retail_mid.wmean_trans(float8[], float8, float8) IS 'Transition function of retail_mid.wrmsse: sums weight x value and weight.';
CREATE FUNCTION retail_mid.wmean_combine(a float8[], b float8[])
RETURNS float8[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY[a[1] + b[1], a[2] + b[2]];
COMMENT ON FUNCTION retail_mid.wmean_combine(float8[], float8[]) IS 'Combine function of retail_mid.wrmsse.';
CREATE FUNCTION retail_mid.wmean_final(state float8[])
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN state[2] > 0 THEN state[1] / state[2] END;
COMMENT ON FUNCTION retail_mid.wmean_final(float8[]) IS 'Final function of retail_mid.wrmsse: the weighted mean, NULL when all weights are 0.';
CREATE AGGREGATE retail_mid.wrmsse(rmsse float8, dollar_weight float8) (
    SFUNC = retail_mid.wmean_trans, STYPE = float8[], INITCOND = '{0,0}',
    COMBINEFUNC = retail_mid.wmean_combine, FINALFUNC = retail_mid.wmean_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.wrmsse(float8, float8) IS 'Weighted RMSSE of the M5 guide: sum(w_i RMSSE_i) / sum(w_i), w_i = series i dollar sales over the last 28 days of the training data.';

-- ----------------------------------------------------------------- rolling-origin backtest
CREATE FUNCTION retail_mid.forecast_backtest(y float8[], horizon int4, origins int4, season_length int4,
                                             options jsonb DEFAULT '{}', stride int4 DEFAULT 1)
RETURNS TABLE (origin int4, step int4, actual float8, mean float8, lo80 float8, hi80 float8, lo95 float8, hi95 float8)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n int := cardinality(y); v_cut int; v_res jsonb;
BEGIN
    IF y IS NULL OR horizon IS NULL OR origins IS NULL OR season_length IS NULL OR stride IS NULL THEN
        RAISE EXCEPTION 'forecast_backtest arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF origins < 1 OR stride < 1 OR horizon < 1 THEN
        RAISE EXCEPTION 'horizon, origins and stride must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_n - horizon - (origins - 1) * stride < 1 THEN
        RAISE EXCEPTION 'series of % points is too short for % origins of horizon % and stride %', v_n, origins, horizon, stride
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN 1 .. origins LOOP
        v_cut := v_n - horizon - (origins - k) * stride;
        SELECT retail_mid.forecast_series(t, y[t], horizon, season_length, coalesce(options, '{}'))
          INTO v_res FROM generate_series(1, v_cut) AS t;
        RETURN QUERY
            SELECT v_cut, r.step, y[v_cut + r.step], r.mean, r.lo80, r.hi80, r.lo95, r.hi95
              FROM retail_mid.forecast_rows(v_res) AS r;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.forecast_backtest(float8[], int4, int4, int4, jsonb, int4) IS 'Rolling-origin evaluation (Tashman 2000): fits on y[1..origin] for origins n-h-(k-1)*stride, k = origins..1, and returns each step''s forecast next to the actual.';
