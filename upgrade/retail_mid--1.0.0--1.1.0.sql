-- retail_mid 1.0.0 -> 1.1.0: every change to the install script since the 1.0.0 release, in the order of CHANGELOG.md.
\echo Use "ALTER EXTENSION retail_mid UPDATE TO '1.1.0'" to load this file. \quit

-- Install order (issue 12): no file calls an object a later file creates. retail_mid.refresh moved to src/pipeline.sql
-- and now rebuilds the per-brand tag bitmaps itself; refresh_customer_brand (foundation/tenancy.sql, installed before
-- the tags) rebuilds customer_brand only.
CREATE OR REPLACE FUNCTION retail_mid.refresh_customer_brand()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    CREATE TEMP TABLE rm_customer_brand ON COMMIT DROP AS
    SELECT c.brand, k.customer_key FROM retail_mid.ods_customer c
      JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = c.customer_id
    UNION
    SELECT i.brand, k.customer_key FROM retail_mid.ods_customer_identifier i
      JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.id_value = i.id_value
    UNION
    SELECT DISTINCT d.brand, d.customer_key FROM retail_mid.dwd_trade_order_line_di d WHERE d.customer_key IS NOT NULL;
    DELETE FROM retail_mid.customer_brand cb
     WHERE NOT EXISTS (SELECT 1 FROM rm_customer_brand x WHERE x.brand = cb.brand AND x.customer_key = cb.customer_key);
    INSERT INTO retail_mid.customer_brand SELECT brand, customer_key FROM rm_customer_brand ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n FROM rm_customer_brand;
    DROP TABLE rm_customer_brand;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_customer_brand() IS 'Rebuilds retail_mid.customer_brand from the ODS customers and identifiers and the DWD trade; called by retail_mid.refresh (which then rebuilds the per-brand tag bitmaps); returns its rows.';

CREATE OR REPLACE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'refresh dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'refresh range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_date = '-infinity' OR to_date = 'infinity' OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'refresh range must be finite and at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One refresh at a time: a second one waits rather than interleaving its deletes and inserts.
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.refresh'));
    v_job := retail_mid.job_start('refresh', jsonb_build_object('from_date', from_date, 'to_date', to_date));

    RAISE NOTICE 'refresh % .. % (% days): building DWD', from_date, to_date, to_date - from_date + 1;
    v_dwd := retail_mid.build_dwd_trade(from_date, to_date);
    t1 := clock_timestamp();
    RAISE NOTICE 'refresh: % DWD lines written; building DWS', v_dwd;
    v_dws := retail_mid.build_dws_trade(from_date, to_date);
    RAISE NOTICE 'refresh: % DWS rows written', v_dws;

    DELETE FROM retail_mid.dws_refresh_state;
    INSERT INTO retail_mid.dws_refresh_state (brand, as_of, refreshed_at)
    SELECT brand, max(last_sale_date), now() FROM retail_mid.dws_trade_store_td GROUP BY brand;
    -- the brand scope of customers (foundation/tenancy.sql) and of the shared group tags' bitmaps (tags/brand_scope.sql),
    -- and the metric registry's generated tables (governance/metric.sql)
    v_customers := retail_mid.refresh_customer_brand();
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    t2 := clock_timestamp();
    RAISE NOTICE 'refresh: % customer-brand pairs; refreshing the metric registry', v_customers;
    v_metric := retail_mid.metric_refresh(from_date, to_date);
    RAISE NOTICE 'refresh: % metric rows written', v_metric;
    PERFORM retail_mid.job_finish(v_job, v_dwd + v_dws + v_metric,
        jsonb_build_object('dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Rebuilds DWD and DWS for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';

-- One spelling of SQLSTATEs (issue 12): the condition names instead of the codes 22023 and 22004 (invalid_parameter_value,
-- null_value_not_allowed); the errors raised are the same. CREATE OR REPLACE resets a function's SET clauses, so
-- suggested_transfers gets its PostGIS search_path again, as on install.
CREATE OR REPLACE FUNCTION retail_mid.metric_check(actual float8[], forecast float8[])
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

CREATE OR REPLACE FUNCTION retail_mid.naive_scale(insample float8[], season_length int4, power int4, from_first_nonzero boolean)
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

CREATE OR REPLACE FUNCTION retail_mid.pinball(actual float8[], forecast float8[], quantile float8)
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

CREATE OR REPLACE FUNCTION retail_mid.wmean_trans(state float8[], value float8, weight float8)
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

CREATE OR REPLACE FUNCTION retail_mid.forecast_backtest(y float8[], horizon int4, origins int4, season_length int4,
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

CREATE OR REPLACE FUNCTION retail_mid.safety_stock(service_level float8, sigma_demand float8, lead_time float8,
                                        mean_demand float8 DEFAULT 0, sigma_lead_time float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sigma_demand < 0 OR lead_time < 0 OR mean_demand < 0 OR sigma_lead_time < 0 THEN
        RAISE EXCEPTION 'safety stock inputs must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN retail_mid.normal_quantile(service_level)
           * sqrt(lead_time * sigma_demand ^ 2 + mean_demand ^ 2 * sigma_lead_time ^ 2);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.lead_time_demand(result jsonb, lead_time int4, service_level float8,
                                            OUT mean float8, OUT quantile float8, OUT sigma float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lead_time < 1 OR lead_time > jsonb_array_length(result -> 'mean') THEN
        RAISE EXCEPTION 'lead time must be between 1 and the forecast horizon (%)', jsonb_array_length(result -> 'mean')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT sum(r.mean), sqrt(sum(((r.hi80 - r.mean) / 1.2815515655446004) ^ 2))
      INTO mean, sigma FROM retail_mid.forecast_rows(result) r WHERE r.step <= lead_time;
    quantile := greatest(0, mean + retail_mid.normal_quantile(service_level) * coalesce(sigma, 0));
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.order_quantity(on_hand float8, on_order float8, reserved float8, reorder_point float8,
                                          order_up_to float8, pack_size float8 DEFAULT 1, min_order_qty float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_position float8 := on_hand + on_order - reserved;
    v_qty float8;
BEGIN
    IF pack_size <= 0 THEN
        RAISE EXCEPTION 'pack size must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_order_qty < 0 THEN
        RAISE EXCEPTION 'minimum order quantity must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF order_up_to < reorder_point THEN
        RAISE EXCEPTION 'order-up-to level must not be below the reorder point' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_position > reorder_point OR v_position >= order_up_to THEN
        RETURN 0;   -- with reorder point = order-up-to (base stock) a position at the level needs nothing
    END IF;
    -- the 1e-9 keeps an exact multiple (computed in floating point) from rounding up to one pack more
    v_qty := ceil((order_up_to - v_position) / pack_size - 1e-9) * pack_size;
    IF v_qty < min_order_qty THEN
        v_qty := ceil(min_order_qty / pack_size - 1e-9) * pack_size;
    END IF;
    RETURN greatest(v_qty, 0);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.replenish_lead_time_draws(lead_time_mean float8, lead_time_sd float8, days int4,
                                                     seed bigint DEFAULT 1, stream int4 DEFAULT 0)
RETURNS int4[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (lead_time_mean >= 0 AND lead_time_mean <= 3660) OR NOT (lead_time_sd >= 0 AND lead_time_sd <= 3660) THEN
        RAISE EXCEPTION 'lead time mean and sd must be between 0 and 3660 days' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got mean %s and sd %s.', lead_time_mean, lead_time_sd);
    END IF;
    IF days < 1 OR days > 100000 THEN
        RAISE EXCEPTION 'days must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY(
        SELECT CASE WHEN u.u <= 0 THEN 0
                    ELSE least(3660, greatest(0, floor(lead_time_mean + lead_time_sd * retail_mid.normal_quantile(u.u) + 0.5)))::int4 END
          FROM generate_series(1, days) i, LATERAL (SELECT retail_mid.synth_uniform(seed, stream, i) AS u) u
         ORDER BY i);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.replenish_lead_time_replay(brand text, source_id text, site_id text, first_day date,
                                                      days int4, min_shipments int4 DEFAULT 3,
                                                      OUT basis text, OUT shipments int4, OUT lead_times int4[])
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text := brand; src text := source_id; st text := site_id; v_site int; v_all int; v_one_site bool;
BEGIN
    IF days < 1 OR days > 100000 THEN
        RAISE EXCEPTION 'days must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*) FILTER (WHERE x.site_id = st), count(*) INTO v_site, v_all
      FROM retail_mid.replenish_shipment_lead_times(b, src) x;
    v_one_site := v_site >= min_shipments;
    basis := CASE WHEN v_one_site THEN 'history (source, site)' WHEN v_all >= min_shipments THEN 'history (source)' END;
    IF basis IS NULL THEN
        RETURN;
    END IF;
    shipments := CASE WHEN v_one_site THEN v_site ELSE v_all END;
    lead_times := ARRAY(
        WITH r AS (SELECT * FROM retail_mid.replenish_shipment_lead_times(b, src) x WHERE NOT v_one_site OR x.site_id = st)
        SELECT coalesce((SELECT r.days FROM r WHERE r.ordered_on <= first_day + i
                          ORDER BY r.ordered_on DESC, r.shipment_id DESC, r.site_id DESC LIMIT 1),
                        (SELECT r.days FROM r ORDER BY r.ordered_on, r.shipment_id, r.site_id LIMIT 1))
          FROM generate_series(0, days - 1) i ORDER BY i);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.replenish_policy(result jsonb, lead_time_mean float8, lead_time_sd float8,
                                            review_period int4, service_level float8, service_measure text DEFAULT 'cycle',
                                            lot_days int4 DEFAULT 0,
                                            OUT mean_daily_demand float8, OUT sigma_daily float8,
                                            OUT lead_time_demand float8,
                                            OUT safety_stock_normal float8, OUT reorder_point_normal float8,
                                            OUT safety_stock_quantile float8, OUT reorder_point_quantile float8,
                                            OUT review_demand float8,
                                            OUT order_up_to_normal float8, OUT order_up_to_quantile float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_means float8[]; v_sig float8[]; v_h int; v_nl int; v_p float8; v_sigma_p float8; v_k float8; v_mean float8; v_level float8;
BEGIN
    IF jsonb_typeof(result -> 'mean') IS DISTINCT FROM 'array' OR jsonb_typeof(result -> 'hi80') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'not a forecast result: mean and hi80 arrays are missing' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF review_period < 1 THEN
        RAISE EXCEPTION 'review period must be at least 1 day' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lot_days < 0 OR lot_days > 365 THEN
        RAISE EXCEPTION 'lot_days must be between 0 and 365' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF service_measure NOT IN ('cycle', 'fill_rate') THEN
        RAISE EXCEPTION 'service measure must be cycle or fill_rate' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (lead_time_mean >= 0 AND lead_time_mean <= 3660) OR NOT (lead_time_sd >= 0 AND lead_time_sd <= 3660) THEN
        RAISE EXCEPTION 'lead time mean and sd must be between 0 and 3660 days' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(e.v::float8 ORDER BY e.k),
           array_agg(greatest(0, coalesce(((result -> 'hi80' ->> (e.k::int - 1))::float8 - e.v::float8) / 1.2815515655446004, 0)) ORDER BY e.k)
      INTO v_means, v_sig
      FROM jsonb_array_elements_text(result -> 'mean') WITH ORDINALITY e(v, k);
    v_h := cardinality(v_means);
    v_nl := greatest(1, ceil(lead_time_mean)::int);
    IF v_h IS NULL OR v_nl + review_period > v_h THEN
        RAISE EXCEPTION 'forecast horizon % is shorter than the lead time plus the review period (% + % days)',
            coalesce(v_h, 0), lead_time_mean, review_period
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Forecast a longer horizon.';
    END IF;
    v_p := lead_time_mean + review_period;
    mean_daily_demand := (SELECT avg(x) FROM unnest(v_means) x);
    sigma_daily := v_sig[1];
    review_demand := greatest(0, (SELECT sum(x) FROM unnest(v_means[v_nl + 1 : v_nl + review_period]) x));
    lead_time_demand := mean_daily_demand * v_p;
    v_sigma_p := sqrt(v_p * sigma_daily ^ 2 + greatest(mean_daily_demand, 0) ^ 2 * lead_time_sd ^ 2);
    IF service_measure = 'cycle' THEN
        v_k := retail_mid.normal_quantile(service_level);
        SELECT m.mean, m.quantile INTO v_mean, v_level
          FROM retail_mid.lead_time_demand_mixture(v_means, v_sig, v_p, lead_time_sd, service_level) m;
    ELSE
        v_k := retail_mid.fill_rate_safety_factor(service_level, v_sigma_p, review_demand);
        SELECT m.mean, m.level INTO v_mean, v_level
          FROM retail_mid.lead_time_demand_fill_rate(v_means, v_sig, v_p, lead_time_sd, service_level, review_demand) m;
    END IF;
    safety_stock_normal := v_k * v_sigma_p;
    reorder_point_normal := greatest(0, lead_time_demand + safety_stock_normal);
    reorder_point_quantile := v_level;
    safety_stock_quantile := v_level - v_mean;
    order_up_to_normal := reorder_point_normal + lot_days * greatest(mean_daily_demand, 0);
    order_up_to_quantile := reorder_point_quantile + lot_days * greatest(mean_daily_demand, 0);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.replenish_refresh_forecasts(brand text, as_of date DEFAULT NULL, history_days int4 DEFAULT 365,
                                                       horizon int4 DEFAULT 28, options jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_asof date := as_of; v_n bigint; b text := brand;
BEGIN
    IF brand IS NULL OR history_days IS NULL OR horizon IS NULL THEN
        RAISE EXCEPTION 'brand, history_days and horizon must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF history_days < 7 OR history_days > 3660 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_asof := coalesce(v_asof, (SELECT max(dt) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_asof IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d', brand USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('replenish_refresh_forecasts', jsonb_build_object('brand', brand, 'as_of', v_asof,
                 'history_days', history_days, 'horizon', horizon, 'options', options));
    DELETE FROM retail_mid.replenish_forecast f WHERE f.brand = b;
    INSERT INTO retail_mid.replenish_forecast (brand, site_id, sku_id, made_on, result)
    SELECT b, a.site_id, a.sku_id, v_asof, retail_mid.forecast_array(a.y, horizon, 7, options)
      FROM retail_mid.replenish_demand_arrays(b, v_asof - history_days + 1, v_asof) a;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RAISE NOTICE 'replenish_refresh_forecasts: % store x SKU series forecast as of %', v_n, v_asof;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('series', v_n, 'as_of', v_asof));
    RETURN v_n;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.suggested_orders(brand text, method text DEFAULT 'normal', min_shipments int4 DEFAULT 3)
RETURNS TABLE (site_id text, sku_id text, as_of date, source_id text, rule text, lead_time_basis text,
               lead_time_mean float8, lead_time_sd float8, review_period int4, service_level float8,
               service_measure text, lot_days int4, mean_daily_demand float8, sigma_daily float8, lead_time_demand float8,
               safety_stock_normal float8, reorder_point_normal float8,
               safety_stock_quantile float8, reorder_point_quantile float8,
               reorder_point float8, order_up_to float8,
               snapshot_date date, on_hand float8, on_order float8, reserved float8, inventory_position float8,
               cover_days float8, pack_size float8, min_order_qty float8, order_qty float8, unit_margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF method IS NULL OR method NOT IN ('normal', 'quantile') THEN
        RAISE EXCEPTION 'method must be normal or quantile' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT f.site_id, f.sku_id, f.made_on, p.source_id, p.rule, p.lead_time_basis,
           p.lead_time_mean, p.lead_time_sd, p.review_period, p.service_level, p.service_measure, p.lot_days,
           pol.mean_daily_demand, pol.sigma_daily, pol.lead_time_demand,
           pol.safety_stock_normal, pol.reorder_point_normal, pol.safety_stock_quantile, pol.reorder_point_quantile,
           x.rop, x.s,
           inv.snapshot_date, coalesce(inv.on_hand, 0), coalesce(inv.on_order, 0), coalesce(inv.reserved, 0),
           coalesce(inv.on_hand, 0) + coalesce(inv.on_order, 0) - coalesce(inv.reserved, 0),
           CASE WHEN pol.mean_daily_demand > 0 THEN (coalesce(inv.on_hand, 0) - coalesce(inv.reserved, 0)) / pol.mean_daily_demand
                WHEN coalesce(inv.on_hand, 0) - coalesce(inv.reserved, 0) > 0 THEN 'Infinity'::float8 ELSE 0 END,
           p.pack_size, p.min_order_qty,
           retail_mid.order_quantity(coalesce(inv.on_hand, 0), coalesce(inv.on_order, 0), coalesce(inv.reserved, 0),
                                     x.rop, x.s, p.pack_size, p.min_order_qty),
           p.unit_margin
      FROM retail_mid.replenish_forecast f
      CROSS JOIN LATERAL retail_mid.replenish_resolve(f.brand, f.site_id, f.sku_id, min_shipments) p
      LEFT JOIN LATERAL (SELECT q.* FROM retail_mid.replenish_policy(f.result, p.lead_time_mean, p.lead_time_sd,
                                                                      p.review_period, p.service_level, p.service_measure, p.lot_days) q
                          WHERE p.lead_time_mean IS NOT NULL) pol ON true
      LEFT JOIN LATERAL (SELECT CASE method WHEN 'normal' THEN pol.reorder_point_normal ELSE pol.reorder_point_quantile END AS rop,
                                CASE method WHEN 'normal' THEN pol.order_up_to_normal ELSE pol.order_up_to_quantile END AS s) x ON true
      LEFT JOIN LATERAL (SELECT i.snapshot_date, i.on_hand::float8 AS on_hand, i.on_order::float8 AS on_order, i.reserved::float8 AS reserved
                           FROM retail_mid.ods_inventory_snapshot i
                          WHERE i.brand = f.brand AND i.site_id = f.site_id AND i.sku_id = f.sku_id AND i.snapshot_date <= f.made_on
                          ORDER BY i.snapshot_date DESC LIMIT 1) inv ON true
     WHERE f.brand = suggested_orders.brand
     ORDER BY f.site_id, f.sku_id;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.suggested_transfers(brand text, cover_days float8 DEFAULT 28, method text DEFAULT 'normal',
                                               max_distance_m float8 DEFAULT NULL)
RETURNS TABLE (sku_id text, from_site_id text, to_site_id text, distance_m float8, quantity float8,
               from_cover_days float8, from_excess float8, to_need float8, pack_size float8, transfer_cost float8,
               margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record; v_sku text; v_give jsonb; v_need jsonb; v_q float8; v_cost float8;
BEGIN
    IF cover_days IS NULL OR NOT (cover_days >= 0 AND cover_days < 'Infinity') THEN
        RAISE EXCEPTION 'cover_days must be a finite number of days, not negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_distance_m IS NOT NULL AND NOT (max_distance_m >= 0) THEN
        RAISE EXCEPTION 'max_distance_m must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN
        WITH o AS (SELECT so.*, st.geom FROM retail_mid.suggested_orders(brand, method) so
                     JOIN retail_mid.ods_site st ON st.brand = suggested_transfers.brand AND st.site_id = so.site_id AND st.kind = 'store'
                    WHERE st.geom IS NOT NULL AND so.reorder_point IS NOT NULL),
             give AS (SELECT o.*, floor(o.on_hand - o.reserved - suggested_transfers.cover_days * o.mean_daily_demand) AS excess
                        FROM o WHERE o.cover_days > suggested_transfers.cover_days),
             need AS (SELECT o.*, ceil(o.order_up_to - o.inventory_position) AS need
                        FROM o WHERE o.inventory_position < o.reorder_point)
        SELECT g.sku_id, g.site_id AS from_site, n.site_id AS to_site,
               ST_Distance(g.geom::geography, n.geom::geography) AS dist, g.cover_days AS cov, g.excess, n.need,
               coalesce(l.pack_size, 1) AS pack, coalesce(l.cost_per_unit, 0) AS cpu, coalesce(l.cost_per_transfer, 0) AS cpt,
               n.unit_margin
          FROM give g JOIN need n ON n.sku_id = g.sku_id AND n.site_id <> g.site_id
          LEFT JOIN LATERAL (SELECT * FROM retail_mid.replenish_transfer_lane l
                              WHERE l.brand = suggested_transfers.brand AND l.from_site_id IN (g.site_id, '*') AND l.to_site_id IN (n.site_id, '*')
                              ORDER BY (l.from_site_id <> '*') DESC, (l.to_site_id <> '*') DESC LIMIT 1) l ON true
         WHERE g.excess > 0 AND n.need > 0
           AND (max_distance_m IS NULL OR ST_DWithin(g.geom::geography, n.geom::geography, max_distance_m))
         ORDER BY g.sku_id, dist, g.site_id, n.site_id
    LOOP
        IF v_sku IS DISTINCT FROM r.sku_id THEN
            v_sku := r.sku_id; v_give := '{}'; v_need := '{}';
        END IF;
        v_q := least(coalesce((v_give ->> r.from_site)::float8, r.excess), coalesce((v_need ->> r.to_site)::float8, r.need));
        -- whole packs of the lane, never more than the donor can give (the 1e-9 keeps an exact multiple whole)
        v_q := floor(v_q / r.pack + 1e-9) * r.pack;
        CONTINUE WHEN v_q <= 0;
        v_cost := r.cpt + r.cpu * v_q;
        CONTINUE WHEN r.unit_margin IS NOT NULL AND v_cost > r.unit_margin * v_q;
        v_give := jsonb_set(v_give, ARRAY[r.from_site], to_jsonb(coalesce((v_give ->> r.from_site)::float8, r.excess) - v_q));
        v_need := jsonb_set(v_need, ARRAY[r.to_site], to_jsonb(coalesce((v_need ->> r.to_site)::float8, r.need) - v_q));
        sku_id := r.sku_id; from_site_id := r.from_site; to_site_id := r.to_site; distance_m := r.dist; quantity := v_q;
        from_cover_days := r.cov; from_excess := r.excess; to_need := r.need; pack_size := r.pack; transfer_cost := v_cost;
        margin := r.unit_margin * v_q;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- plpgsql bodies resolve PostGIS names at run time: give them PostGIS's schema (unknown until install).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION retail_mid.suggested_transfers(text, float8, text, float8) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'));
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.replenish_backtest(brand text, weeks int4 DEFAULT 8, method text DEFAULT 'normal',
                                              options jsonb DEFAULT '{}')
RETURNS TABLE (site_id text, sku_id text, days int4, lead_time_days int4, lead_time_model text, review_period int4,
               service_measure text, service_level float8, demand float8,
               sold float8, lost float8, fill_rate float8, days_out_of_stock int4, days_with_lost_sales int4,
               avg_on_hand float8, orders int4, units_ordered float8, cycles int4, stockout_cycles int4,
               cycle_service_level float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text := brand; v_job bigint; v_end date; v_start date; v_hist int; v_h int; v_opts jsonb; v_max int;
    v_n int := 0; v_total int; r record; v_sim record; v_rop float8[]; v_S float8[]; v_dem float8[]; v_first int;
    v_lt int; v_k int; v_pol record; v_res jsonb; v_tot_d float8 := 0; v_tot_s float8 := 0; v_tot_oos bigint := 0;
    v_tot_days bigint := 0; v_tot_inv float8 := 0; v_tot_lost_days bigint := 0; v_tot_orders bigint := 0; v_tot_units float8 := 0;
    v_tot_cycles bigint := 0; v_tot_so bigint := 0; v_mode text; v_seed bigint; v_measure text; v_level float8;
    v_min_ship int; v_lot int; v_lts int4[]; v_replay record; v_model text; v_days int;
BEGIN
    IF brand IS NULL OR weeks IS NULL OR options IS NULL THEN
        RAISE EXCEPTION 'brand, weeks and options must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF weeks < 1 OR weeks > 104 THEN
        RAISE EXCEPTION 'weeks must be between 1 and 104' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF method IS NULL OR method NOT IN ('normal', 'quantile') THEN
        RAISE EXCEPTION 'method must be normal or quantile' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'replenish_backtest options must be a json object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(options) k WHERE k NOT IN ('history_days', 'horizon', 'forecast', 'max_series', 'end_date',
                                                                          'min_shipments', 'lead_time', 'seed', 'service_level', 'service_measure', 'lot_days')) THEN
        RAISE EXCEPTION 'unknown replenish_backtest option' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Options: history_days, horizon, forecast, max_series, end_date, min_shipments, lead_time, seed, service_level, service_measure, lot_days.';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(options) e WHERE e.value = 'null'::jsonb) THEN
        RAISE EXCEPTION 'replenish_backtest options must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    BEGIN
        v_hist := coalesce((options ->> 'history_days')::int, 365);
        v_h := coalesce((options ->> 'horizon')::int, 28);
        v_max := (options ->> 'max_series')::int;
        v_seed := coalesce((options ->> 'seed')::bigint, 1);
        v_level := (options ->> 'service_level')::float8;
        v_min_ship := coalesce((options ->> 'min_shipments')::int, 3);
        v_end := (options ->> 'end_date')::date;
        v_lot := (options ->> 'lot_days')::int;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'malformed replenish_backtest option value' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('options: %s', options), HINT = 'history_days, horizon, max_series, seed, min_shipments and lot_days are integers, service_level a number, end_date a date.';
    END;
    v_opts := options -> 'forecast';
    v_mode := coalesce(options ->> 'lead_time', 'normal');
    IF v_mode NOT IN ('mean', 'normal', 'history') THEN
        RAISE EXCEPTION 'lead_time must be mean, normal or history' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got %s.', v_mode);
    END IF;
    v_measure := options ->> 'service_measure';
    IF v_measure IS NOT NULL AND v_measure NOT IN ('cycle', 'fill_rate') THEN
        RAISE EXCEPTION 'service_measure must be cycle or fill_rate' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_level IS NOT NULL AND NOT (v_level > 0 AND v_level < 1) THEN
        RAISE EXCEPTION 'service_level must be strictly between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_lot IS NOT NULL AND (v_lot < 0 OR v_lot > 365) THEN
        RAISE EXCEPTION 'lot_days must be between 0 and 365' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_max IS NOT NULL AND v_max < 1 OR v_min_ship < 1 THEN
        RAISE EXCEPTION 'max_series and min_shipments must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_end := coalesce(v_end, (SELECT max(dt) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_end IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d', brand USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_hist < 7 OR v_hist > 3660 OR v_h < 2 OR v_h > 366 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660 and horizon between 2 and 366' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_days := 7 * weeks;
    v_start := v_end - v_days + 1;
    v_job := retail_mid.job_start('replenish_backtest', jsonb_build_object('brand', brand, 'weeks', weeks, 'method', method,
                 'options', options, 'start', v_start, 'end', v_end));
    -- every store x SKU that sold in the history before the window or in it; y runs from history start to v_end
    CREATE TEMP TABLE rm_bt_series ON COMMIT DROP AS
    SELECT a.site_id, a.sku_id, a.first_sale, a.y
      FROM retail_mid.replenish_demand_arrays(b, v_start - v_hist, v_end) a
     ORDER BY (SELECT sum(x) FROM unnest(a.y) x) DESC, a.site_id, a.sku_id
     LIMIT v_max;
    SELECT count(*) INTO v_total FROM rm_bt_series;
    RAISE NOTICE 'replenish_backtest: % store x SKU series, % to % (% weeks), lead times %', v_total, v_start, v_end, weeks, v_mode;
    FOR r IN SELECT s.*, p.* FROM rm_bt_series s
               CROSS JOIN LATERAL retail_mid.replenish_resolve(b, s.site_id, s.sku_id, v_min_ship) p
              ORDER BY s.site_id, s.sku_id
    LOOP
        v_n := v_n + 1;
        IF v_n % 100 = 0 THEN
            RAISE NOTICE 'replenish_backtest: % of % series', v_n, v_total;
        END IF;
        CONTINUE WHEN r.lead_time_mean IS NULL;   -- no lead time known: nothing to simulate
        r.service_level := coalesce(v_level, r.service_level);
        r.service_measure := coalesce(v_measure, r.service_measure);
        r.lot_days := coalesce(v_lot, r.lot_days);
        -- index in y of the window's first day (y[1] = first_sale)
        v_first := v_start - r.first_sale + 1;
        v_dem := ARRAY(SELECT coalesce(r.y[i], 0) FROM generate_series(v_first, v_first + v_days - 1) i);
        v_rop := array_fill(NULL::float8, ARRAY[v_days]);
        v_S := array_fill(NULL::float8, ARRAY[v_days]);
        FOR v_k IN 0 .. v_days - 1 BY r.review_period LOOP
            -- forecast with the history up to the day before the review day (at most history_days days)
            IF v_first + v_k - 1 >= 1 THEN
                v_res := retail_mid.forecast_array(r.y[greatest(1, v_first + v_k - v_hist) : v_first + v_k - 1], v_h, 7, v_opts);
                v_pol := retail_mid.replenish_policy(v_res, r.lead_time_mean, r.lead_time_sd, r.review_period, r.service_level,
                                                     r.service_measure, r.lot_days);
                v_rop[v_k + 1] := CASE method WHEN 'normal' THEN v_pol.reorder_point_normal ELSE v_pol.reorder_point_quantile END;
                v_S[v_k + 1] := CASE method WHEN 'normal' THEN v_pol.order_up_to_normal ELSE v_pol.order_up_to_quantile END;
            ELSE
                v_rop[v_k + 1] := 0; v_S[v_k + 1] := 0;   -- no history yet (first sale inside the window)
            END IF;
        END LOOP;
        v_lt := round(r.lead_time_mean)::int;
        -- lead time of an order placed on each day: the rounded mean, a draw, or the observed one replayed
        v_lts := NULL;
        IF v_mode = 'history' THEN
            v_replay := retail_mid.replenish_lead_time_replay(b, r.source_id, r.site_id, v_start, v_days, v_min_ship);
            v_lts := v_replay.lead_times;
            v_model := coalesce(v_replay.basis || ', ' || v_replay.shipments || ' shipments', 'normal (no history)');
        END IF;
        IF v_mode = 'mean' THEN
            v_lts := array_fill(v_lt, ARRAY[v_days]);
            v_model := 'mean';
        ELSIF v_lts IS NULL THEN
            v_lts := retail_mid.replenish_lead_time_draws(r.lead_time_mean, r.lead_time_sd, v_days, v_seed,
                                                          hashtext(r.site_id || '|' || r.sku_id));
            v_model := coalesce(v_model, 'normal');
        END IF;
        -- start at the first review's order-up-to level (whole units), nothing on order
        v_sim := retail_mid.replenish_simulate(v_dem, v_rop, v_S, v_lts, ceil(v_S[1]), r.pack_size, r.min_order_qty);
        site_id := r.site_id; sku_id := r.sku_id; days := v_sim.days; lead_time_days := v_lt; lead_time_model := v_model;
        review_period := r.review_period; service_measure := r.service_measure; service_level := r.service_level;
        demand := v_sim.demand_units; sold := v_sim.sold; lost := v_sim.lost; fill_rate := v_sim.fill_rate;
        days_out_of_stock := v_sim.days_out_of_stock; days_with_lost_sales := v_sim.days_with_lost_sales;
        avg_on_hand := v_sim.avg_on_hand; orders := v_sim.orders; units_ordered := v_sim.units_ordered;
        cycles := v_sim.cycles; stockout_cycles := v_sim.stockout_cycles; cycle_service_level := v_sim.cycle_service_level;
        RETURN NEXT;
        v_tot_d := v_tot_d + demand; v_tot_s := v_tot_s + sold; v_tot_oos := v_tot_oos + days_out_of_stock;
        v_tot_days := v_tot_days + days; v_tot_inv := v_tot_inv + avg_on_hand * days;
        v_tot_lost_days := v_tot_lost_days + days_with_lost_sales; v_tot_orders := v_tot_orders + orders; v_tot_units := v_tot_units + units_ordered;
        v_tot_cycles := v_tot_cycles + cycles; v_tot_so := v_tot_so + stockout_cycles;
    END LOOP;
    -- the overall row: sums, fill rate = sold / demand over all series, average on hand per series-day,
    -- cycle service level over all counted cycles
    site_id := '*'; sku_id := '*'; days := v_tot_days; lead_time_days := NULL; lead_time_model := v_mode; review_period := NULL;
    service_measure := v_measure; service_level := v_level;
    demand := v_tot_d; sold := v_tot_s; lost := v_tot_d - v_tot_s; fill_rate := CASE WHEN v_tot_d > 0 THEN v_tot_s / v_tot_d END;
    days_out_of_stock := v_tot_oos; days_with_lost_sales := v_tot_lost_days;
    avg_on_hand := CASE WHEN v_tot_days > 0 THEN v_tot_inv / v_tot_days END; orders := v_tot_orders; units_ordered := v_tot_units;
    cycles := v_tot_cycles; stockout_cycles := v_tot_so;
    cycle_service_level := CASE WHEN v_tot_cycles > 0 THEN 1 - v_tot_so::float8 / v_tot_cycles END;
    RETURN NEXT;
    DROP TABLE rm_bt_series;
    RAISE NOTICE 'replenish_backtest: % series simulated, fill rate %, % series-days out of stock of %', v_n, round(fill_rate::numeric, 4), v_tot_oos, v_tot_days;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('series', v_n, 'fill_rate', fill_rate, 'days_out_of_stock', v_tot_oos,
                                  'series_days', v_tot_days, 'avg_on_hand', avg_on_hand, 'cycle_service_level', cycle_service_level,
                                  'lead_time', v_mode, 'start', v_start, 'end', v_end));
END;
$$;

-- layout: the catalog comment names the new source path
COMMENT ON TABLE retail_mid.dwd_trade_order_line_di IS 'Cleaned order lines, one row per kept ODS line (rules in src/foundation/dwd.sql and docs/foundation.md); rebuilt per day by retail_mid.refresh.';

-- docs: every column a user can read carries a COMMENT (docs/reference.md is generated from them)
COMMENT ON COLUMN retail_mid.customer_key.created_at IS 'When the key was given (the first load that saw the identifier).';
COMMENT ON COLUMN retail_mid.job_log.job_id IS 'Identifier of the run; other tables refer to it (e.g. quality_result.run_id).';
COMMENT ON COLUMN retail_mid.job_log.started_at IS 'When the run started (clock time).';
COMMENT ON COLUMN retail_mid.job_log.finished_at IS 'When the run ended; NULL while it runs or when it died without writing its outcome.';
COMMENT ON COLUMN retail_mid.quality_rule.rule_id IS 'Identifier of the rule, kept across its versions.';
COMMENT ON COLUMN retail_mid.quality_rule.created_at IS 'When the rule was added.';
COMMENT ON COLUMN retail_mid.quality_rule.updated_at IS 'When the rule was last changed (a change adds a row to quality_rule_version).';
COMMENT ON COLUMN retail_mid.quality_rule_version.rule_id IS 'quality_rule.rule_id.';
COMMENT ON COLUMN retail_mid.quality_rule_version.version IS 'Version number of the rule, from 1, raised by each change of its definition.';
COMMENT ON COLUMN retail_mid.quality_result.result_id IS 'Identifier of the result.';
COMMENT ON COLUMN retail_mid.quality_result.rule_id IS 'quality_rule.rule_id of the rule evaluated.';
COMMENT ON COLUMN retail_mid.quality_result.column_name IS 'Column checked; NULL for table-level rules.';
COMMENT ON COLUMN retail_mid.quality_result.template IS 'Rule template evaluated (a quality_template name, e.g. not_null, unique_key, range, freshness).';
COMMENT ON COLUMN retail_mid.quality_result.warn_threshold IS 'Threshold of the rule version at evaluation time beyond which the outcome is warn.';
COMMENT ON COLUMN retail_mid.quality_result.fail_threshold IS 'Threshold of the rule version at evaluation time beyond which the outcome is fail.';
COMMENT ON COLUMN retail_mid.rfm_segment_map_def.map_name IS 'Name of the segment map (e.g. ten_segment, eight_class).';
COMMENT ON COLUMN retail_mid.rfm_segment_map_def.description IS 'What the map is for.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.map_name IS 'rfm_segment_map_def.map_name the rule belongs to.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.r_min IS 'Lowest R score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.r_max IS 'Highest R score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.f_min IS 'Lowest F score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.f_max IS 'Highest F score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.m_min IS 'Lowest M score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.m_max IS 'Highest M score of the box (1..k).';
COMMENT ON COLUMN retail_mid.rfm_segment_map.description IS 'What the segment means for marketing.';
COMMENT ON COLUMN retail_mid.rfm_config.brand IS 'Brand the configuration applies to; ''*'' for every brand without its own row.';
COMMENT ON COLUMN retail_mid.rfm_config.map_name IS 'Segment map scored with this configuration.';
COMMENT ON COLUMN retail_mid.rfm_config.k IS 'Number of score levels 1..k for R, F and M; equals the map''s k.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.brand IS 'Brand scored.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.map_name IS 'Segment map used.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.window_days IS 'Look-back window in days ending on as_of.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.as_of IS 'Date the scores are as of.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.customer_key IS 'Customer (customer_key dictionary).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.recency_days IS 'Days from the last order day in the window to as_of.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.frequency IS 'Orders in the window.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.monetary IS 'Net amount in the window (currency units).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.r_score IS 'Recency score 1..k (k = most recent).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.f_score IS 'Frequency score 1..k (k = most orders).';
COMMENT ON COLUMN retail_mid.rfm_snapshot.m_score IS 'Monetary score 1..k (k = highest amount).';
COMMENT ON COLUMN retail_mid.tag_bitmap.tag_name IS 'tag_definition.tag_name.';
COMMENT ON COLUMN retail_mid.tag_bitmap.tag_value IS 'The value (as text) whose customers the bitmap holds.';
-- issue 19: registry SQL runs as its author
-- Tag rules, metric expressions, qualifiers and composites and quality rules record their author (a column added at the
-- end of each registry table; rows from 1.0.0 keep NULL = retail_mid_admin), are checked to be one expression, relation
-- or SELECT, and run as their author in a security-restricted operation (src/common/registry.sql, registry.c).
-- metric_compile_predicate and run_logged (which execute text) are no longer executable by PUBLIC.

CREATE OR REPLACE FUNCTION retail_mid.registry_check_sql(fragment text, kind text, what text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'registry_check_sql' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.registry_check_sql(text, text, text) IS 'Returns the stored SQL fragment when it is one piece of its kind: expression (a scalar expression), relation (a table or view name or a parenthesised SELECT) or query (one SELECT); parsed inside the text it is embedded in, so a semicolon, a second statement or an unbalanced parenthesis is error 42601 naming what. NULL gives NULL.';

CREATE OR REPLACE FUNCTION retail_mid.registry_enter(role regrole) RETURNS int8
    AS 'MODULE_PATHNAME', 'registry_enter' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION retail_mid.registry_enter(regrole) IS 'Internal to the jobs: becomes role (whose privileges the current user must hold) in a security-restricted operation (no SET ROLE, no SET SESSION AUTHORIZATION, no new temporary tables) with its own settings, and returns the token registry_leave needs. Errors in between are undone by the (sub)transaction abort.';

CREATE OR REPLACE FUNCTION retail_mid.registry_leave(token int8) RETURNS void
    AS 'MODULE_PATHNAME', 'registry_leave' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION retail_mid.registry_leave(int8) IS 'Internal to the jobs: ends the section registry_enter opened (discarding the settings changed inside) and returns to the previous user; a wrong token is error 42501.';

CREATE OR REPLACE FUNCTION retail_mid.registry_role(authors regrole[], what text) RETURNS regrole
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a regrole;
    lesser regrole[] := '{}';
    me regrole := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)::regrole;
BEGIN
    IF authors IS NULL OR cardinality(authors) = 0 THEN
        RAISE EXCEPTION 'registry_role needs the authors of %', coalesce(what, 'the SQL') USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH a IN ARRAY authors LOOP
        IF a IS NULL THEN
            a := 'retail_mid_admin'::regrole;
        ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = a) THEN
            RAISE EXCEPTION '% was written by a role that no longer exists', coalesce(what, 'stored SQL')
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('The author''s role OID is %s.', a::oid),
                      HINT = 'An administrator who reviews it saves it again (UPDATE ... SET author = DEFAULT) and becomes its author.';
        ELSIF NOT pg_catalog.pg_has_role(a::oid, 'retail_mid_admin', 'MEMBER') THEN
            RAISE EXCEPTION '% was written by %, who is not a member of retail_mid_admin', coalesce(what, 'stored SQL'), a
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Only administrators'' SQL runs in the jobs: an administrator who reviews it saves it again and becomes its author.';
        END IF;
        IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = a) AND a <> ALL (lesser) THEN
            lesser := lesser || a;
        END IF;
    END LOOP;
    IF cardinality(lesser) = 0 THEN
        RETURN me;
    ELSIF cardinality(lesser) = 1 AND pg_catalog.pg_has_role(current_user, lesser[1]::oid, 'USAGE') THEN
        RETURN lesser[1];
    ELSIF pg_catalog.pg_has_role(current_user, 'retail_mid_admin', 'USAGE') THEN
        RETURN 'retail_mid_admin'::regrole;
    END IF;
    RAISE EXCEPTION 'cannot run % as an administrator', coalesce(what, 'stored SQL') USING ERRCODE = 'insufficient_privilege',
        DETAIL = format('Its authors are %s; the current user %s does not have their privileges nor those of retail_mid_admin.',
                        array_to_string(authors::text[], ', '), current_user),
        HINT = 'Run the jobs as a superuser or as a member of retail_mid_admin.';
END;
$$;
COMMENT ON FUNCTION retail_mid.registry_role(regrole[], text) IS 'The role stored SQL written by authors runs as: 42501 when an author no longer exists or is not a member of retail_mid_admin; NULL authors count as retail_mid_admin, superusers restrict nothing; then the one remaining author (when the current user holds its privileges), the current user (none remains), or retail_mid_admin.';

CREATE OR REPLACE FUNCTION retail_mid.registry_author_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me regrole := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)::regrole;
    col text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.author IS NOT DISTINCT FROM OLD.author THEN
        FOREACH col IN ARRAY TG_ARGV[1:] LOOP
            IF (to_jsonb(NEW) -> col) IS DISTINCT FROM (to_jsonb(OLD) -> col) THEN
                NEW.author := me;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF NEW.author IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.author IS DISTINCT FROM OLD.author)
       AND NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = NEW.author)
                AND pg_catalog.pg_has_role(current_user, NEW.author::oid, 'MEMBER')) THEN
        RAISE EXCEPTION 'cannot record % as the author of % %', NEW.author, TG_TABLE_NAME, to_jsonb(NEW) -> TG_ARGV[0]
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The current user %s is not a member of %s.', current_user, NEW.author),
                  HINT = 'Leave author at its default (the current user).';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.registry_author_check() IS 'Trigger of the registry tables: the author of a row''s SQL is the current user by default, may be set only to NULL or a role the current user is a member of (42501), and becomes the current user when the SQL columns named by the trigger''s arguments (after the key column) change.';

REVOKE EXECUTE ON FUNCTION retail_mid.registry_enter(regrole), retail_mid.registry_leave(int8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.registry_enter(regrole), retail_mid.registry_leave(int8) TO retail_mid_admin;
REVOKE EXECUTE ON PROCEDURE retail_mid.run_logged(text, text) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE retail_mid.run_logged(text, text) TO retail_mid_admin;

ALTER TABLE retail_mid.tag_definition ADD COLUMN author regrole;
ALTER TABLE retail_mid.tag_definition ALTER COLUMN author SET DEFAULT (quote_ident(CURRENT_USER))::regrole;
COMMENT ON COLUMN retail_mid.tag_definition.author IS 'The role that wrote the rule (rule_sql, source, expression): evaluate_tags runs it with that role''s rights, never more (retail_mid.registry_role); set by default and when another user changes the rule; NULL (definitions from before 1.1.0) runs as retail_mid_admin.';
CREATE TRIGGER tag_definition_author BEFORE INSERT OR UPDATE ON retail_mid.tag_definition
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('tag_name', 'rule_sql', 'source', 'expression');

ALTER TABLE retail_mid.metric_atomic ADD COLUMN author regrole;
ALTER TABLE retail_mid.metric_atomic ALTER COLUMN author SET DEFAULT (quote_ident(CURRENT_USER))::regrole;
COMMENT ON COLUMN retail_mid.metric_atomic.author IS 'The role that wrote the expression: the registry runs it with that role''s rights, never more (retail_mid.registry_role); set by default and when another user changes the expression; NULL (definitions from before 1.1.0) runs as retail_mid_admin.';
CREATE TRIGGER metric_atomic_author BEFORE INSERT OR UPDATE ON retail_mid.metric_atomic
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('atomic', 'expression', 'dwd_table', 'time_column');

ALTER TABLE retail_mid.metric_qualifier ADD COLUMN author regrole;
ALTER TABLE retail_mid.metric_qualifier ALTER COLUMN author SET DEFAULT (quote_ident(CURRENT_USER))::regrole;
COMMENT ON COLUMN retail_mid.metric_qualifier.author IS 'The role that wrote the predicate: the registry runs it with that role''s rights, never more; set by default and when another user changes the predicate; NULL runs as retail_mid_admin.';
CREATE TRIGGER metric_qualifier_author BEFORE INSERT OR UPDATE ON retail_mid.metric_qualifier
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('qualifier', 'predicate');

ALTER TABLE retail_mid.metric_composite ADD COLUMN author regrole;
ALTER TABLE retail_mid.metric_composite ALTER COLUMN author SET DEFAULT (quote_ident(CURRENT_USER))::regrole;
COMMENT ON COLUMN retail_mid.metric_composite.author IS 'The role that wrote the expression: the registry runs it with that role''s rights, never more; set by default and when another user changes the expression; NULL runs as retail_mid_admin.';
CREATE TRIGGER metric_composite_author BEFORE INSERT OR UPDATE ON retail_mid.metric_composite
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('metric', 'expression');

ALTER TABLE retail_mid.quality_rule ADD COLUMN author regrole;
ALTER TABLE retail_mid.quality_rule ALTER COLUMN author SET DEFAULT (quote_ident(CURRENT_USER))::regrole;
COMMENT ON COLUMN retail_mid.quality_rule.author IS 'The role that wrote the rule (its expressions run in the scan of the table): quality_evaluate runs them with that role''s rights, never more (retail_mid.registry_role); set by default and when another user changes the definition; NULL (rules from before 1.1.0) runs as retail_mid_admin.';
CREATE TRIGGER quality_rule_author BEFORE INSERT OR UPDATE ON retail_mid.quality_rule
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('rule_name', 'table_name', 'column_name', 'template', 'parameters');

CREATE OR REPLACE FUNCTION retail_mid.tag_eval_scan(tags text[], only_tag text DEFAULT NULL,
                                         OUT source_rows bigint, OUT duplicate_keys bigint, OUT negative_keys bigint,
                                         OUT value_counts bigint[])
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src text; cols text; arr text; cnt text; n bigint; scopes int; by_brand boolean; no_brand bigint;
        authors regrole[]; run_as regrole; tok int8; granted boolean := false;
BEGIN
    IF tags IS NULL THEN
        RAISE EXCEPTION 'tag_eval_scan needs tags' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- stored SQL is one piece of its kind (no second statement), and runs as its authors (src/common/registry.sql)
    PERFORM retail_mid.registry_check_sql(d.rule_sql, 'query', format('rule_sql of tag %s', d.tag_name)),
            retail_mid.registry_check_sql(d.source, 'relation', format('source of tag %s', d.tag_name)),
            retail_mid.registry_check_sql(d.expression, 'expression', format('expression of tag %s', d.tag_name))
       FROM retail_mid.tag_definition d
      WHERE d.tag_name = ANY (tags) AND (only_tag IS NULL OR d.tag_name = only_tag);
    SELECT array_agg(d.author) INTO authors FROM retail_mid.tag_definition d
     WHERE d.tag_name = ANY (tags) AND (only_tag IS NULL OR d.tag_name = only_tag);
    run_as := retail_mid.registry_role(authors, format('the rule of tag %s', coalesce(only_tag, array_to_string(tags, ', '))));
    SELECT CASE WHEN min(d.source) IS NULL THEN format('(%s) AS s(customer_key, value)', min(d.rule_sql))
                ELSE format('%s AS s', min(d.source)) END,
           string_agg(format('%s AS c%s', CASE WHEN only_tag IS NOT NULL AND d.tag_name IS DISTINCT FROM only_tag THEN 'NULL::text'
                           ELSE CASE d.value_type
                                  WHEN 'boolean' THEN format('((%s)::boolean)::text', e.x)
                                  WHEN 'numeric' THEN format('retail_mid.tag_numeric_value((%s)::numeric, %s, %L)::text', e.x, d.numeric_scale, d.tag_name)
                                  ELSE format('(%s)::text', e.x) END END, t.i), ', ' ORDER BY t.i),
           string_agg('x.c' || t.i, ', ' ORDER BY t.i),
           string_agg(format('count(x.c%s) FILTER (WHERE x.customer_key IS NOT NULL)', t.i), ', ' ORDER BY t.i),
           count(DISTINCT coalesce(d.source, d.tag_name)), count(DISTINCT d.scope), bool_and(d.scope = 'brand')
      INTO src, cols, arr, cnt, n, scopes, by_brand
      FROM unnest(tags) WITH ORDINALITY AS t(tag_name, i)
      JOIN retail_mid.tag_definition d ON d.tag_name = t.tag_name
     CROSS JOIN LATERAL (SELECT coalesce(d.expression, 's.value') AS x) e;
    IF n IS DISTINCT FROM 1 OR scopes IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'tag_eval_scan needs tags of one source and one scope' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the author writes the scan's rows into the caller's work table (the grant is taken back after the scan, so that
    -- no privilege outlives it and the role stays droppable)
    IF NOT has_table_privilege(run_as::oid, 'pg_temp.retail_mid_tag_eval_w', 'INSERT') THEN
        EXECUTE format('GRANT INSERT ON pg_temp.retail_mid_tag_eval_w TO %s', run_as);
        granted := true;
    END IF;
    tok := retail_mid.registry_enter(run_as);
    IF by_brand THEN
        -- a clear error instead of "column s.brand does not exist" (LIMIT 0: planned, no row read)
        BEGIN
            EXECUTE format('SELECT s.brand FROM %s LIMIT 0', src);
        EXCEPTION WHEN undefined_column THEN
            RAISE EXCEPTION 'tags of scope brand need a brand column in their source' USING ERRCODE = 'undefined_column',
                DETAIL = format('Tags: %s. Source: %s.', array_to_string(tags, ', '), src),
                HINT = 'Add a brand column to the source (for rule_sql: a column named brand after customer_key and the value), or set scope to group.';
        END;
    END IF;
    EXECUTE format('WITH x AS MATERIALIZED (SELECT %s AS brand, (s.customer_key)::int4 AS customer_key, %s FROM %s), '
                   'ins AS (INSERT INTO pg_temp.retail_mid_tag_eval_w (brand, customer_key, vals) '
                   '        SELECT x.brand, x.customer_key, ARRAY[%s]::text[] FROM x WHERE x.customer_key IS NOT NULL) '
                   'SELECT count(customer_key), count(customer_key) - count(DISTINCT %s), '
                   '       count(*) FILTER (WHERE customer_key < 0), %s, ARRAY[%s]::bigint[] FROM x',
                   CASE WHEN by_brand THEN '(s.brand)::text' ELSE '''*''::text' END, cols, src, arr,
                   CASE WHEN by_brand THEN '(brand, customer_key)' ELSE 'customer_key' END,
                   CASE WHEN by_brand THEN 'count(*) FILTER (WHERE customer_key IS NOT NULL AND (brand IS NULL OR brand IN ('''', ''*'')))'
                        ELSE '0' END, cnt)
       INTO source_rows, duplicate_keys, negative_keys, no_brand, value_counts;
    PERFORM retail_mid.registry_leave(tok);
    IF granted THEN
        EXECUTE format('REVOKE INSERT ON pg_temp.retail_mid_tag_eval_w FROM %s', run_as);
    END IF;
    IF no_brand > 0 THEN
        RAISE EXCEPTION 'source of tags of scope brand returns % rows without a brand', no_brand USING ERRCODE = 'not_null_violation',
            DETAIL = format('Tags: %s. A brand of NULL, '''' or ''*'' is not a brand.', array_to_string(tags, ', '));
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_eval_scan(text[], text) IS 'Internal to evaluate_tags: evaluates the tags of one source and scope (or only only_tag of them) in one scan into pg_temp.retail_mid_tag_eval_w, with the brand of each row (scope brand) or ''*''; returns the source rows with a key, how many (brand, key) pairs repeat, how many keys are negative, and the number of values of each tag. A brand tag whose source has no brand column is error 42703; rows without a brand (NULL, '''' or ''*'') are 23502. The rules run as their authors (retail_mid.registry_role; 42501 when an author is gone or no administrator) and must be one expression, relation or SELECT each (42601).';

CREATE OR REPLACE FUNCTION retail_mid.metric_role(atomic text, qualifier text) RETURNS regrole
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a retail_mid.metric_atomic;
    q retail_mid.metric_qualifier;
BEGIN
    SELECT * INTO a FROM retail_mid.metric_atomic x WHERE x.atomic = metric_role.atomic;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown atomic metric "%"', atomic USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO q FROM retail_mid.metric_qualifier x WHERE x.qualifier = metric_role.qualifier;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown qualifier "%"', qualifier USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM retail_mid.registry_check_sql(a.expression, 'expression', format('expression of atomic metric %s', a.atomic)),
            retail_mid.registry_check_sql(a.distinct_key, 'expression', format('distinct key of atomic metric %s', a.atomic)),
            retail_mid.registry_check_sql(q.predicate, 'expression', format('predicate of qualifier %s', q.qualifier));
    RETURN retail_mid.registry_role(ARRAY[a.author, q.author], format('atomic metric %s under qualifier %s', a.atomic, q.qualifier));
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_role(text, text) IS 'The role the expression of an atomic metric and the predicate of a qualifier run as (retail_mid.registry_role of their authors), after checking that each is a single expression (42601).';

CREATE OR REPLACE FUNCTION retail_mid.metric_atomic_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[];
    keytype text;
    tok int8;
BEGIN
    IF NEW.atomic !~ '^[a-z][a-z0-9_]{0,30}$' THEN
        RAISE EXCEPTION 'invalid atomic metric name "%"', NEW.atomic USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 31 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF NEW.additivity IS NULL OR NEW.additivity NOT IN ('additive', 'semi_additive', 'non_additive') THEN
        RAISE EXCEPTION 'unknown additivity "%"', NEW.additivity USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use additive, semi_additive or non_additive.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = NEW.dwd_table AND a.attname = NEW.time_column
                    AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in %', NEW.time_column, NEW.dwd_table USING ERRCODE = 'undefined_column';
    END IF;
    -- compiled as its author, restricted (planning may evaluate functions): src/common/registry.sql
    PERFORM retail_mid.registry_check_sql(NEW.expression, 'expression', format('expression of atomic metric %s', NEW.atomic));
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('atomic metric %s', NEW.atomic)));
    EXECUTE format('SELECT (t.%I)::date, (%s)::numeric FROM %s AS t GROUP BY 1 LIMIT 0', NEW.time_column, NEW.expression, NEW.dwd_table);
    PERFORM retail_mid.registry_leave(tok);
    NEW.distinct_key := NULL;
    NEW.distinct_key_type := NULL;
    IF NEW.additivity <> 'non_additive' AND NEW.expression ~* 'distinct' THEN
        RAISE EXCEPTION 'atomic metric "%" counts distinct values and cannot be %', NEW.atomic, NEW.additivity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Declare distinct counts non_additive: their daily key bitmaps are OR-ed over windows, never summed.';
    END IF;
    IF NEW.additivity <> 'non_additive'
       AND (NEW.expression ~* '\m(avg|min|max|mode|percentile_cont|percentile_disc|stddev[a-z_]*|variance|var_pop|var_samp|bool_and|bool_or|every)\s*\('
            OR NEW.expression ~* '/\s*(nullif\s*\(\s*)?(sum|count)\s*\(') THEN
        RAISE EXCEPTION 'atomic metric "%" is not a sum or a count and cannot be %', NEW.atomic, NEW.additivity
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Averages, ratios, minima and maxima of days are not the sum of their daily values.',
                  HINT = 'Define the numerator and the denominator as additive atomic metrics and the ratio as a composite metric, e.g. {sale_amount_7d} / nullif({sale_orders_7d}, 0).';
    END IF;
    IF NEW.additivity = 'non_additive' THEN
        m := regexp_match(NEW.expression, '^\s*count\s*\(\s*distinct\s+(.+)\)\s*$', 'i');
        IF m IS NULL THEN
            RAISE EXCEPTION 'non-additive atomic metric "%" must be a distinct count', NEW.atomic
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Only count(DISTINCT key) rolls up exactly over periods (through roaring bitmaps of the keys).',
                      HINT = 'Write ratios and averages as composite metrics of additive atomic metrics, e.g. {sale_amount_7d} / nullif({sale_orders_7d}, 0).';
        END IF;
        NEW.distinct_key := btrim(m[1]);
        -- the key's type, also when the table is empty: the outer join yields one NULL of that type
        PERFORM retail_mid.registry_check_sql(NEW.distinct_key, 'expression', format('distinct key of atomic metric %s', NEW.atomic));
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('atomic metric %s', NEW.atomic)));
        EXECUTE format('SELECT pg_typeof(s.k)::text FROM (SELECT 1) one LEFT JOIN (SELECT (%s) AS k FROM %s AS t LIMIT 0) s ON true',
                       NEW.distinct_key, NEW.dwd_table) INTO keytype;
        PERFORM retail_mid.registry_leave(tok);
        NEW.distinct_key_type := CASE WHEN keytype IN ('integer', 'smallint') THEN 'int4' ELSE 'dictionary' END;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_atomic_check() IS 'Trigger: an atomic metric''s expression compiles against its DWD table; additive and semi-additive metrics are sums or counts, non-additive ones are distinct counts (their key is recorded).';

CREATE OR REPLACE FUNCTION retail_mid.metric_qualifier_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tok int8;
BEGIN
    IF NEW.qualifier !~ '^[a-z][a-z0-9_]{0,30}$' THEN
        RAISE EXCEPTION 'invalid qualifier name "%"', NEW.qualifier USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 31 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF coalesce(btrim(NEW.predicate), '') = '' THEN
        RAISE EXCEPTION 'qualifier "%" needs a predicate', NEW.qualifier USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the predicate is one expression, and compiles against the DWD tables of the derived metrics using it
    -- (checked there), as its author
    PERFORM retail_mid.registry_check_sql(NEW.predicate, 'expression', format('predicate of qualifier %s', NEW.qualifier));
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('qualifier %s', NEW.qualifier)));
    PERFORM retail_mid.metric_compile_predicate(NEW.predicate, a.dwd_table)
       FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic) WHERE d.qualifier = NEW.qualifier;
    PERFORM retail_mid.registry_leave(tok);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_qualifier_check() IS 'Trigger: checks a qualifier''s name and that its predicate still compiles where it is used.';

CREATE OR REPLACE FUNCTION retail_mid.metric_compile_predicate(predicate text, dwd_table regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT 1 FROM %s AS t WHERE (%s) LIMIT 0', dwd_table,
                   retail_mid.registry_check_sql(predicate, 'expression', 'a qualifier predicate'));
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) IS 'Raises the parser''s error when a predicate does not compile against a DWD table; a predicate that is not one expression is 42601. Internal to the registry''s triggers, which call it as the predicate''s author: not executable by PUBLIC.';

REVOKE EXECUTE ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) TO retail_mid_admin;

CREATE OR REPLACE FUNCTION retail_mid.metric_derived_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expected text;
    other record;
    a retail_mid.metric_atomic;
    missing text;
    tok int8;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM retail_mid.metric_period p WHERE p.period = NEW.period) THEN
        RAISE EXCEPTION 'unknown period "%"', NEW.period USING ERRCODE = 'invalid_parameter_value',
            HINT = (SELECT 'Use one of ' || string_agg(p.period, ', ' ORDER BY p.days NULLS LAST, p.period) || '.' FROM retail_mid.metric_period p);
    END IF;
    expected := CASE WHEN NEW.qualifier = 'all' THEN '' ELSE NEW.qualifier || '_' END || NEW.atomic || '_' || NEW.period;
    IF length(expected) > 53 THEN
        RAISE EXCEPTION 'derived metric name "%" is too long', expected USING ERRCODE = 'invalid_name',
            DETAIL = 'Names (and the daily bitmap columns <qualifier>_<atomic>_1d_bitmap) must fit in 63 bytes.',
            HINT = 'Shorten the qualifier or the atomic metric name.';
    END IF;
    IF NEW.metric IS NULL THEN
        NEW.metric := expected;
    ELSIF NEW.metric <> expected THEN
        RAISE EXCEPTION 'derived metric name "%" does not follow the naming rule', NEW.metric USING ERRCODE = 'invalid_name',
            DETAIL = format('A metric of qualifier %s, atomic metric %s and period %s is named %s.', NEW.qualifier, NEW.atomic, NEW.period, expected),
            HINT = 'Names are <qualifier>_<atomic>_<period>, without the qualifier when it is all; leave metric NULL to have it set.';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE (d.atomic, d.qualifier, d.period, d.granularity) = (NEW.atomic, NEW.qualifier, NEW.period, NEW.granularity)
                  AND (TG_OP = 'INSERT' OR (d.metric, d.granularity) <> (OLD.metric, OLD.granularity))) THEN
        RAISE EXCEPTION 'derived metric "%" is already defined at granularity %', NEW.metric, NEW.granularity
            USING ERRCODE = 'unique_violation';
    END IF;
    SELECT d.atomic, d.qualifier, d.period INTO other FROM retail_mid.metric_derived d
     WHERE d.metric = NEW.metric AND (d.atomic, d.qualifier, d.period) IS DISTINCT FROM (NEW.atomic, NEW.qualifier, NEW.period)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'metric name "%" already names another definition', NEW.metric USING ERRCODE = 'unique_violation',
            DETAIL = format('It is qualifier %s, atomic metric %s, period %s.', other.qualifier, other.atomic, other.period),
            HINT = 'Rename the qualifier or the atomic metric so that names stay unambiguous.';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.metric_composite c WHERE c.metric = NEW.metric) THEN
        RAISE EXCEPTION 'metric name "%" is already a composite metric', NEW.metric USING ERRCODE = 'unique_violation';
    END IF;
    SELECT * INTO a FROM retail_mid.metric_atomic WHERE atomic = NEW.atomic;
    IF FOUND THEN
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY(SELECT q.author FROM retail_mid.metric_qualifier q WHERE q.qualifier = NEW.qualifier),
                                                                  format('qualifier %s', NEW.qualifier)));
        PERFORM retail_mid.metric_compile_predicate(q.predicate, a.dwd_table) FROM retail_mid.metric_qualifier q WHERE q.qualifier = NEW.qualifier;
        PERFORM retail_mid.registry_leave(tok);
        SELECT string_agg(d, ', ') INTO missing FROM retail_mid.metric_granularity g, unnest(g.dimensions) d
         WHERE g.granularity = NEW.granularity
           AND NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = a.dwd_table AND x.attname = d AND x.attnum > 0 AND NOT x.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'granularity "%" needs column % missing from %', NEW.granularity, missing, a.dwd_table
                USING ERRCODE = 'undefined_column';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_derived_check() IS 'Trigger: derived metric naming rules (<qualifier>_<atomic>_<period>, one definition per name) and compatibility of its parts.';

CREATE OR REPLACE FUNCTION retail_mid.metric_composite_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    expr text;
    tok int8;
BEGIN
    IF EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.metric = NEW.metric) THEN
        RAISE EXCEPTION 'metric name "%" is already a derived metric', NEW.metric USING ERRCODE = 'unique_violation';
    END IF;
    IF NEW.expression !~ '\{[a-z][a-z0-9_]*\}' THEN
        RAISE EXCEPTION 'composite metric "%" references no derived metric', NEW.metric USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Write derived metrics as {name}.';
    END IF;
    SELECT string_agg(m[1], ', ') INTO missing FROM regexp_matches(NEW.expression, '\{([a-z][a-z0-9_]*)\}', 'g') m
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.metric = m[1] AND d.granularity = NEW.granularity);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'composite metric "%" references %, not a derived metric of granularity %', NEW.metric, missing, NEW.granularity
            USING ERRCODE = 'undefined_object';
    END IF;
    expr := regexp_replace(NEW.expression, '\{([a-z][a-z0-9_]*)\}', '1::numeric', 'g');
    PERFORM retail_mid.registry_check_sql(expr, 'expression', format('expression of composite metric %s', NEW.metric));
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('composite metric %s', NEW.metric)));
    EXECUTE format('SELECT (%s)::numeric LIMIT 0', expr);
    PERFORM retail_mid.registry_leave(tok);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_composite_check() IS 'Trigger: a composite metric references derived metrics of its granularity and compiles.';

CREATE OR REPLACE FUNCTION retail_mid.metric_build_day(granularity text, lo date, hi date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dims text[];
    dimlist text;
    dimarr text;
    dims_sel text;
    t1d text;
    p record;
    col text;
    sel text;
    cols text := '';
    aggs text := '';
    n bigint;
    dwd regclass;
    run_as regrole;
    tok int8;
BEGIN
    SELECT g.dimensions INTO dims FROM retail_mid.metric_granularity g WHERE g.granularity = metric_build_day.granularity;
    t1d := 'retail_mid.' || quote_ident('dws_metric_' || granularity || '_1d');
    dimlist := (SELECT string_agg(', t.' || quote_ident(x), '' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o));
    dimarr := 'ARRAY[' || coalesce((SELECT string_agg('t.' || quote_ident(x) || '::text', ', ' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o)), '') || ']::text[]';
    SELECT a.dwd_table INTO dwd FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
     WHERE d.granularity = metric_build_day.granularity ORDER BY d.metric LIMIT 1;
    SELECT string_agg(format(', (dims[%s])::%s', o, format_type(att.atttypid, att.atttypmod)), '' ORDER BY o)
      INTO dims_sel
      FROM unnest(dims) WITH ORDINALITY u(x, o) JOIN pg_attribute att ON att.attrelid = dwd AND att.attname = x;
    IF to_regclass('pg_temp.metric_day_long') IS NULL THEN
        CREATE TEMP TABLE metric_day_long (col text, dt date, dims text[], value numeric, bitmap retail_mid.rbitmap) ON COMMIT DROP;
    END IF;
    TRUNCATE metric_day_long;
    FOR p IN SELECT DISTINCT a.atomic, d.qualifier, a.dwd_table, a.time_column, a.expression, a.additivity,
                    a.distinct_key, a.distinct_key_type, q.predicate
               FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
               JOIN retail_mid.metric_qualifier q ON q.qualifier = d.qualifier
              WHERE d.granularity = metric_build_day.granularity ORDER BY 1, 2 LOOP
        col := retail_mid.metric_day_column(p.atomic, p.qualifier);
        -- the expression and the predicate run as their authors, restricted (src/common/registry.sql)
        run_as := retail_mid.metric_role(p.atomic, p.qualifier);
        IF run_as::text <> quote_ident(current_user) THEN
            EXECUTE format('GRANT INSERT ON pg_temp.metric_day_long TO %s', run_as);
        END IF;
        tok := retail_mid.registry_enter(run_as);
        IF p.additivity <> 'non_additive' THEN
            sel := format('SELECT %L, (t.%I)::date, %s, (%s)::numeric, NULL::retail_mid.rbitmap FROM %s AS t '
                          'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 GROUP BY (t.%I)::date%s',
                          col, p.time_column, dimarr, p.expression, p.dwd_table, p.predicate, p.time_column, p.time_column, dimlist);
        ELSIF p.distinct_key_type = 'int4' THEN
            sel := format('SELECT %L, (t.%I)::date, %s, NULL::numeric, coalesce(retail_mid.rb_build_agg((%s)::int4), ''{}'') FROM %s AS t '
                          'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 GROUP BY (t.%I)::date%s',
                          col, p.time_column, dimarr, p.distinct_key, p.dwd_table, p.predicate, p.time_column, p.time_column, dimlist);
        ELSE
            -- keys that are not integers are numbered first (new ones get the next number; numbers never change)
            EXECUTE format('INSERT INTO retail_mid.metric_distinct_key (value) SELECT DISTINCT (%s)::text FROM %s AS t '
                           'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 AND (%s) IS NOT NULL ORDER BY 1 ON CONFLICT (value) DO NOTHING',
                           p.distinct_key, p.dwd_table, p.predicate, p.time_column, p.distinct_key) USING lo, hi;
            sel := format('SELECT %L, (t.%I)::date, %s, NULL::numeric, coalesce(retail_mid.rb_build_agg(k.key), ''{}'') FROM %s AS t '
                          'LEFT JOIN retail_mid.metric_distinct_key k ON k.value = (%s)::text '
                          'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 GROUP BY (t.%I)::date%s',
                          col, p.time_column, dimarr, p.dwd_table, p.distinct_key, p.predicate, p.time_column, p.time_column, dimlist);
        END IF;
        EXECUTE 'INSERT INTO metric_day_long ' || sel USING lo, hi;
        PERFORM retail_mid.registry_leave(tok);
        IF p.additivity = 'non_additive' THEN
            EXECUTE 'UPDATE metric_day_long SET value = retail_mid.rb_cardinality(bitmap) WHERE col = $1' USING col;
            cols := cols || format(', %I, %I', col, col || '_bitmap');
            aggs := aggs || format(', max(value) FILTER (WHERE col = %L), retail_mid.rb_or_agg(bitmap) FILTER (WHERE col = %L)', col, col);
        ELSE
            cols := cols || format(', %I', col);
            aggs := aggs || format(', max(value) FILTER (WHERE col = %L)', col);
        END IF;
    END LOOP;
    EXECUTE format('DELETE FROM %s WHERE dt BETWEEN $1 AND $2', t1d) USING lo, hi;
    EXECUTE format('INSERT INTO %s (dt%s%s) SELECT dt%s%s FROM metric_day_long GROUP BY dt, dims',
                   t1d, coalesce((SELECT string_agg(format(', %I', x), '' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o)), ''),
                   cols, coalesce(dims_sel, ''), aggs);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_build_day(text, date, date) IS 'Rebuilds the days [lo, hi] of dws_metric_<granularity>_1d from DWD (daily values, and key bitmaps for distinct counts); called by metric_generate.';

COMMENT ON FUNCTION retail_mid.metric_generate(text, date, date) IS 'Creates (or adds columns to) retail_mid.dws_metric_<granularity>_1d and retail_mid.dws_metric_<granularity>, rebuilds the daily rows of [from_date, to_date] and recomputes every derived and composite metric of the statistics dates those days reach; secures both tables; returns the metric rows written.';

COMMENT ON FUNCTION retail_mid.metric_reconcile(text, date, date) IS 'Every difference between the DWS table of a granularity and the same derived metrics computed straight from DWD for [from_date, to_date]: no rows means the DWS layer reconciles.';

CREATE OR REPLACE FUNCTION retail_mid.quality_rule_plan(r retail_mid.quality_rule)
RETURNS jsonb LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p jsonb := r.parameters;
    tpl retail_mid.quality_template;
    c text;
    bad text;
    lo text; hi text;
    cols text[];
    ref regclass;
    keyexpr text;
    v_notnull text;
    grp text;
    m text;
    ncols int;
BEGIN
    SELECT * INTO tpl FROM retail_mid.quality_template WHERE template = r.template;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown quality rule template "%"', r.template USING ERRCODE = 'invalid_parameter_value',
            HINT = 'See retail_mid.quality_template for the templates.';
    END IF;
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'parameters of rule "%" must be a JSON object', r.rule_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(p) k WHERE k <> ALL (tpl.parameters);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown parameter % for template "%"', bad, r.template USING ERRCODE = 'invalid_parameter_value',
            HINT = format('Template %s takes: %s.', r.template, coalesce(nullif(array_to_string(tpl.parameters, ', '), ''), 'no parameters'));
    END IF;
    IF tpl.needs_column AND r.column_name IS NULL AND NOT (r.template = 'unique_key') THEN
        RAISE EXCEPTION 'template "%" needs a column_name', r.template USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.column_name IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.table_name AND a.attname = r.column_name
                        AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', r.column_name, r.table_name USING ERRCODE = 'undefined_column';
        END IF;
        c := 't.' || quote_ident(r.column_name);
    END IF;

    CASE r.template
    WHEN 'not_null' THEN
        RETURN jsonb_build_object('kind', 'flag', 'expr', c || ' IS NULL');
    WHEN 'not_blank' THEN
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('(%s IS NULL OR btrim(%s::text) = '''')', c, c));
    WHEN 'regex' THEN
        IF jsonb_typeof(p->'pattern') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'template "regex" needs parameters.pattern as a string' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM '' ~ (p->>'pattern');   -- compiles the pattern: a malformed one raises invalid_regular_expression
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('%s::text !~ %L', c, p->>'pattern'));
    WHEN 'range' THEN
        IF p->'min' IS NULL AND p->'max' IS NULL THEN
            RAISE EXCEPTION 'template "range" needs parameters.min or parameters.max' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(p->'min') = 'null' OR jsonb_typeof(p->'max') = 'null' THEN
            RAISE EXCEPTION 'range bounds must not be null' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p->>'min' IN ('NaN', 'Infinity', '-Infinity') OR p->>'max' IN ('NaN', 'Infinity', '-Infinity') THEN
            RAISE EXCEPTION 'range bounds must be finite' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p ? 'min' THEN
            lo := format('%s %s %L', c, CASE WHEN (p->>'min_exclusive')::boolean THEN '<=' ELSE '<' END, p->>'min');
        END IF;
        IF p ? 'max' THEN
            hi := format('%s %s %L', c, CASE WHEN (p->>'max_exclusive')::boolean THEN '>=' ELSE '>' END, p->>'max');
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr', '(' || concat_ws(' OR ', lo, hi) || ')');
    WHEN 'length' THEN
        IF p->'min' IS NULL AND p->'max' IS NULL THEN
            RAISE EXCEPTION 'template "length" needs parameters.min or parameters.max' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (p->>'min')::int < 0 OR (p->>'max')::int < 0 OR (p->>'max')::int < (p->>'min')::int THEN
            RAISE EXCEPTION 'length bounds must satisfy 0 <= min <= max' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p ? 'min' THEN lo := format('length(%s::text) < %s', c, (p->>'min')::int); END IF;
        IF p ? 'max' THEN hi := format('length(%s::text) > %s', c, (p->>'max')::int); END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr', '(' || concat_ws(' OR ', lo, hi) || ')');
    WHEN 'accepted_values' THEN
        IF jsonb_typeof(p->'values') IS DISTINCT FROM 'array' OR jsonb_array_length(p->'values') = 0 THEN
            RAISE EXCEPTION 'template "accepted_values" needs parameters.values as a non-empty JSON array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(p->'values') v WHERE jsonb_typeof(v) IN ('null', 'object', 'array')) THEN
            RAISE EXCEPTION 'accepted values must be strings, numbers or booleans' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr',
            format('%s <> ALL (%L)', c, ARRAY(SELECT jsonb_array_elements_text(p->'values'))::text));
    WHEN 'reference' THEN
        ref := to_regclass(p->>'table');
        IF ref IS NULL THEN
            RAISE EXCEPTION 'referenced table "%" does not exist', p->>'table' USING ERRCODE = 'undefined_table',
                HINT = 'Give parameters.table schema-qualified.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = ref AND a.attname = p->>'column' AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', p->>'column', ref USING ERRCODE = 'undefined_column';
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr',
            format('NOT (%s = ANY (SELECT r.%I FROM %s AS r WHERE r.%I IS NOT NULL))', c, p->>'column', ref, p->>'column'));
    WHEN 'expression' THEN
        IF coalesce(btrim(p->>'expression'), '') = '' THEN
            RAISE EXCEPTION 'template "expression" needs parameters.expression' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('NOT (%s)',
            retail_mid.registry_check_sql(p->>'expression', 'expression', format('expression of quality rule %s', r.rule_name))));
    WHEN 'unique_key' THEN
        IF p ? 'columns' THEN
            IF jsonb_typeof(p->'columns') IS DISTINCT FROM 'array' OR jsonb_array_length(p->'columns') = 0 OR r.column_name IS NOT NULL THEN
                RAISE EXCEPTION 'template "unique_key" needs either column_name or parameters.columns (a non-empty JSON array), not both'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            cols := ARRAY(SELECT jsonb_array_elements_text(p->'columns'));
        ELSIF r.column_name IS NOT NULL THEN
            cols := ARRAY[r.column_name];
        ELSE
            RAISE EXCEPTION 'template "unique_key" needs column_name or parameters.columns' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT string_agg(k, ', ') INTO bad FROM unnest(cols) k
         WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.table_name AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'column % does not exist in %', bad, r.table_name USING ERRCODE = 'undefined_column';
        END IF;
        grp := (SELECT string_agg('t.' || quote_ident(k), ', ') FROM unnest(cols) k);
        v_notnull := (SELECT string_agg('t.' || quote_ident(k) || ' IS NOT NULL', ' AND ') FROM unnest(cols) k);
        RETURN jsonb_build_object('kind', 'duplicates', 'expr', 'true, ' || grp,
            'confirm', format('WITH d AS (SELECT %s, count(*) AS rows FROM %s AS t WHERE %s AND ($1 IS NULL OR retail_mid.quality_key_hash(%s) = ANY ($1))%s '
                              'GROUP BY %s HAVING count(*) > 1) '
                              'SELECT (SELECT coalesce(sum(rows - 1), 0) FROM d), '
                              '(SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT * FROM d ORDER BY rows DESC, %s LIMIT 5) s)',
                              grp, r.table_name, v_notnull, grp, CASE WHEN r.by_brand THEN ' AND ($2::text IS NULL OR t.brand = $2)' ELSE '' END, grp,
                              (SELECT string_agg(format('%s', i), ', ') FROM generate_series(1, cardinality(cols)) i)));
    WHEN 'duplicate_rows' THEN
        SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attnum), count(*) INTO grp, ncols
          FROM pg_attribute a WHERE a.attrelid = r.table_name AND a.attnum > 0 AND NOT a.attisdropped;
        -- the columns as separate key parts (faster than hashing a whole-row record) while they fit in one call
        keyexpr := CASE WHEN ncols <= 98 THEN grp ELSE 't' END;
        RETURN jsonb_build_object('kind', 'duplicates', 'expr', 'false, ' || keyexpr,
            'confirm', format('WITH d AS (SELECT %s, count(*) AS rows FROM %s AS t WHERE ($1 IS NULL OR retail_mid.quality_key_hash(%s) = ANY ($1))%s '
                              'GROUP BY %s HAVING count(*) > 1) '
                              'SELECT (SELECT coalesce(sum(rows - 1), 0) FROM d), '
                              '(SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT * FROM d ORDER BY rows DESC, d LIMIT 5) s)',
                              grp, r.table_name, keyexpr, CASE WHEN r.by_brand THEN ' AND ($2::text IS NULL OR t.brand = $2)' ELSE '' END, grp));
    WHEN 'freshness' THEN
        RETURN jsonb_build_object('kind', 'newest', 'expr', format('(%s)::timestamptz', c));
    WHEN 'stability' THEN
        m := coalesce(p->>'metric', 'row_count');
        IF m NOT IN ('row_count', 'mean', 'sum', 'min', 'max', 'null_fraction') THEN
            RAISE EXCEPTION 'unknown stability metric "%"', m USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Use row_count, mean, sum, min, max or null_fraction.';
        END IF;
        IF coalesce(p->>'seasonality', 'weekday') NOT IN ('weekday', 'none') THEN
            RAISE EXCEPTION 'stability seasonality must be weekday or none' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF coalesce(p->>'sides', 'two') NOT IN ('two', 'upper', 'lower') THEN
            RAISE EXCEPTION 'stability sides must be two, upper or lower' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF coalesce((p->>'warmup')::int, 4) < 2 OR coalesce((p->>'window')::int, 8) < coalesce((p->>'warmup')::int, 4) THEN
            RAISE EXCEPTION 'stability needs 2 <= warmup <= window' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF m = 'row_count' THEN
            IF r.column_name IS NOT NULL THEN
                RAISE EXCEPTION 'stability metric row_count takes no column_name' USING ERRCODE = 'invalid_parameter_value';
            END IF;
            RETURN jsonb_build_object('kind', 'rows', 'metric', m);
        END IF;
        IF c IS NULL THEN
            RAISE EXCEPTION 'stability metric % needs a column_name', m USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('kind', 'measure', 'metric', m,
            'expr', CASE WHEN m = 'null_fraction' THEN format('CASE WHEN %s IS NULL THEN NULL ELSE 0::float8 END', c)
                         ELSE format('(%s)::float8', c) END);
    WHEN 'tables_agree' THEN
        IF coalesce(btrim(p->>'expression'), '') = '' OR coalesce(btrim(p->>'other_expression'), '') = '' THEN
            RAISE EXCEPTION 'template "tables_agree" needs parameters.expression and parameters.other_expression'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ref := to_regclass(p->>'other_table');
        IF ref IS NULL THEN
            RAISE EXCEPTION 'other table "%" does not exist', p->>'other_table' USING ERRCODE = 'undefined_table',
                HINT = 'Give parameters.other_table schema-qualified.';
        END IF;
        RETURN jsonb_build_object('kind', 'queries',
            'query', format('SELECT (%s)::float8 FROM %s AS t WHERE (%s)',
                            retail_mid.registry_check_sql(p->>'expression', 'expression', format('expression of quality rule %s', r.rule_name)), r.table_name,
                            retail_mid.registry_check_sql(coalesce(p->>'filter', 'true'), 'expression', format('filter of quality rule %s', r.rule_name))),
            'other_query', format('SELECT (%s)::float8 FROM %s AS t WHERE (%s)',
                            retail_mid.registry_check_sql(p->>'other_expression', 'expression', format('other_expression of quality rule %s', r.rule_name)), ref,
                            retail_mid.registry_check_sql(coalesce(p->>'other_filter', 'true'), 'expression', format('other_filter of quality rule %s', r.rule_name))));
    END CASE;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_rule_plan(retail_mid.quality_rule) IS 'The SQL a rule is evaluated with (its part of the one scan of its table), after checking the template, parameters and columns.';

CREATE OR REPLACE FUNCTION retail_mid.quality_rule_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tpl retail_mid.quality_template;
    plan jsonb;
    tok int8;
BEGIN
    IF NEW.rule_name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid quality rule name "%"', NEW.rule_name USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 63 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    SELECT * INTO tpl FROM retail_mid.quality_template WHERE template = NEW.template;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown quality rule template "%"', NEW.template USING ERRCODE = 'invalid_parameter_value',
            HINT = 'See retail_mid.quality_template for the templates.';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = NEW.table_name) NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table or view', NEW.table_name USING ERRCODE = 'wrong_object_type';
    END IF;
    NEW.threshold_on := coalesce(NEW.threshold_on, tpl.threshold_on);
    NEW.warn_threshold := coalesce(NEW.warn_threshold, tpl.warn_threshold);
    NEW.fail_threshold := coalesce(NEW.fail_threshold, greatest(tpl.fail_threshold, NEW.warn_threshold));
    IF NEW.threshold_on NOT IN ('ratio', 'count', 'value')
       OR (tpl.threshold_on = 'value') <> (NEW.threshold_on = 'value') THEN
        RAISE EXCEPTION 'threshold_on "%" does not fit template "%"', NEW.threshold_on, NEW.template
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Row rules compare ratio or count; freshness, stability and tables_agree compare value.';
    END IF;
    IF NEW.warn_threshold IN ('NaN', 'Infinity', '-Infinity') OR NEW.fail_threshold IN ('NaN', 'Infinity', '-Infinity')
       OR NEW.warn_threshold < 0 OR NEW.fail_threshold < NEW.warn_threshold
       OR (NEW.threshold_on = 'ratio' AND NEW.fail_threshold > 1) THEN
        RAISE EXCEPTION 'thresholds must be finite with 0 <= warn_threshold <= fail_threshold (<= 1 for ratios)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (NEW.weight > 0 AND NEW.weight < 'Infinity') THEN
        RAISE EXCEPTION 'rule weight must be positive and finite' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    plan := retail_mid.quality_rule_plan(NEW);
    -- compile the generated SQL once now, so that a typo fails at insert rather than at night; as the rule's author,
    -- restricted, because planning may evaluate functions (src/common/registry.sql)
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('quality rule %s', NEW.rule_name)));
    IF plan->>'kind' = 'queries' THEN
        EXECUTE (plan->>'query') || ' LIMIT 0';
        EXECUTE (plan->>'other_query') || ' LIMIT 0';
    ELSIF plan ? 'expr' THEN
        EXECUTE format('SELECT %s FROM %s AS t LIMIT 0', plan->>'expr', NEW.table_name);
    END IF;
    PERFORM retail_mid.registry_leave(tok);
    IF NEW.by_brand AND NEW.template = 'tables_agree' THEN
        RAISE EXCEPTION 'template "tables_agree" has no per-brand results' USING ERRCODE = 'feature_not_supported',
            HINT = 'Filter each side by brand in parameters.filter and parameters.other_filter instead.';
    END IF;
    IF NEW.by_brand AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = NEW.table_name AND a.attname = 'brand'
                                       AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'rule "%" is by brand but % has no brand column', NEW.rule_name, NEW.table_name USING ERRCODE = 'undefined_column';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.table_name, NEW.column_name, NEW.template, NEW.parameters, NEW.weight, NEW.threshold_on, NEW.warn_threshold, NEW.fail_threshold)
           IS DISTINCT FROM
           (OLD.table_name, OLD.column_name, OLD.template, OLD.parameters, OLD.weight, OLD.threshold_on, OLD.warn_threshold, OLD.fail_threshold) THEN
            NEW.version := OLD.version + 1;
            NEW.updated_at := now();
        ELSE
            NEW.version := OLD.version;
        END IF;
    ELSE
        NEW.version := 1;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_rule_check() IS 'Trigger: validates a quality rule, fills default thresholds and bumps version on changes of definition.';

CREATE OR REPLACE FUNCTION retail_mid.quality_evaluate(table_name regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint;
    v_tbl regclass;
    v_kind "char";
    rules retail_mid.quality_rule[];
    plans jsonb[];
    r retail_mid.quality_rule;
    plan jsonb;
    items text[];
    prof text[];
    i int;
    k int;
    res jsonb;
    col jsonb;
    v_rows bigint;
    v_obs float8; v_ratio float8; v_stat float8; v_cmp float8; v_outcome text;
    v_sample jsonb; v_detail jsonb;
    v_a float8; v_b float8;
    v_n bigint; v_mean float8; v_sd float8;
    v_tables int := 0; v_results bigint := 0;
    v_pass int := 0; v_warn int := 0; v_fail int := 0; v_warmup int := 0;
    rowid text;
    tid_list tid[];
    hashes bigint[]; v_by_brand boolean; brand_res jsonb; cur jsonb; rec record; v_brand text; masked text[];   -- per-brand results
    tok int8;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('quality_evaluate', jsonb_build_object('table', table_name::text, 'as_of', as_of));
    FOR v_tbl IN SELECT DISTINCT q.table_name FROM retail_mid.quality_rule q
                  WHERE q.enabled AND (quality_evaluate.table_name IS NULL OR q.table_name = quality_evaluate.table_name)
                  ORDER BY 1
    LOOP
        SELECT c.relkind INTO v_kind FROM pg_class c WHERE c.oid = v_tbl;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table with OID % of a quality rule no longer exists', v_tbl::oid USING ERRCODE = 'undefined_table',
                HINT = 'Delete or disable its rules.';
        END IF;
        rowid := CASE WHEN v_kind IN ('r', 'p', 'm') THEN 't.ctid' ELSE 'NULL::tid' END;
        rules := ARRAY(SELECT q FROM retail_mid.quality_rule q WHERE q.enabled AND q.table_name = v_tbl ORDER BY q.rule_id);
        plans := '{}';
        items := '{}';
        prof := '{}';
        FOREACH r IN ARRAY rules LOOP
            plan := retail_mid.quality_rule_plan(r);
            IF plan->>'kind' IN ('flag', 'measure') THEN
                prof := prof || (plan->>'expr');
                plan := plan || jsonb_build_object('item', 'p' || ((cardinality(prof) - 1) / 98), 'index', (cardinality(prof) - 1) % 98);
            ELSIF plan->>'kind' = 'duplicates' THEN
                items := items || format('retail_mid.quality_duplicates(%s) AS d%s', plan->>'expr', r.rule_id);
                plan := plan || jsonb_build_object('item', 'd' || r.rule_id);
            ELSIF plan->>'kind' = 'newest' THEN
                items := items || format('max(%s) AS n%s', plan->>'expr', r.rule_id);
                plan := plan || jsonb_build_object('item', 'n' || r.rule_id);
            END IF;
            plans := plans || plan;
        END LOOP;
        -- profiled expressions in chunks of 98 (a function takes at most 100 arguments with state and row id)
        IF cardinality(prof) = 0 THEN
            items := format('jsonb_build_object(''rows'', count(*)) AS p0') || items;
        END IF;
        FOR k IN 0 .. (cardinality(prof) + 97) / 98 - 1 LOOP
            items := format('retail_mid.quality_profile(%s%s) AS p%s', rowid,
                            (SELECT string_agg(', ' || e, '' ORDER BY o) FROM unnest(prof[k * 98 + 1 : k * 98 + 98]) WITH ORDINALITY u(e, o)),
                            k) || items;
        END LOOP;
        brand_res := '{}';
        v_by_brand := EXISTS (SELECT 1 FROM unnest(rules) q WHERE q.by_brand);
        -- the scan runs the rules' expressions as their authors, restricted (src/common/registry.sql)
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY(SELECT q.author FROM unnest(rules) q),
                                                                  format('the quality rules of %s', v_tbl)));
        IF v_by_brand THEN
            -- the same one scan, grouped by brand: a row per brand and the whole table's row (the empty grouping
            -- set). Rows with a NULL brand (or the brand '*', the key of the whole table) count in the whole only.
            FOR rec IN EXECUTE format('SELECT q.whole, q.b, to_jsonb(q) - ''whole'' - ''b'' AS j FROM (SELECT grouping(t.brand) = 1 AS whole, t.brand::text AS b, %s '
                                      'FROM %s AS t GROUP BY GROUPING SETS ((t.brand), ())) q', array_to_string(items, ', '), v_tbl) LOOP
                IF rec.whole THEN
                    res := rec.j;
                ELSIF rec.b IS NOT NULL AND rec.b <> '*' THEN
                    brand_res := brand_res || jsonb_build_object(rec.b, rec.j);
                END IF;
            END LOOP;
            -- a brand's results are read by the brand's analysts: its samples leave out personal data columns
            masked := ARRAY(SELECT m.column_name FROM retail_mid.pii_mask_rule m WHERE m.table_name = v_tbl);
        ELSE
            EXECUTE format('SELECT to_jsonb(q) FROM (SELECT %s FROM %s AS t) q', array_to_string(items, ', '), v_tbl) INTO res;
        END IF;
        PERFORM retail_mid.registry_leave(tok);
        v_rows := (res->'p0'->>'rows')::bigint;
        v_tables := v_tables + 1;
        RAISE NOTICE 'quality: % rules on %: % rows profiled in one scan%', cardinality(rules), v_tbl, v_rows,
            CASE WHEN v_by_brand THEN format(' (and per brand: %s brands)', (SELECT count(*) FROM jsonb_object_keys(brand_res))) ELSE '' END;

        FOR i IN 1 .. cardinality(rules) LOOP
            r := rules[i];
            plan := plans[i];
          -- the whole table, then each brand for a by_brand rule
          FOR v_brand, cur IN SELECT x.b, x.j FROM (SELECT '*'::text AS b, res AS j, 0 AS o
                                                    UNION ALL SELECT e.key, e.value, 1 FROM jsonb_each(brand_res) e WHERE r.by_brand) x
                               ORDER BY x.o, x.b LOOP
            v_rows := (cur->'p0'->>'rows')::bigint;
            v_obs := NULL; v_ratio := NULL; v_stat := NULL; v_sample := '[]'; v_detail := '{}';
            -- the rule's own queries (samples, confirmations, tables_agree) run as its author, restricted
            tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[r.author], format('quality rule %s', r.rule_name)));
            IF plan->>'kind' = 'flag' THEN
                col := cur->(plan->>'item')->'columns'->((plan->>'index')::int);
                v_obs := (col->>'violations')::float8;
                v_ratio := CASE WHEN v_rows > 0 THEN v_obs / v_rows ELSE 0 END;
                IF v_obs > 0 THEN
                    IF rowid = 't.ctid' THEN
                        tid_list := ARRAY(SELECT jsonb_array_elements_text(col->'sample')::tid);
                        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT t.* FROM %s AS t WHERE t.ctid = ANY ($1) AND (%s) ORDER BY t.ctid LIMIT 5) s',
                                       v_tbl, plan->>'expr') INTO v_sample USING tid_list;
                    ELSE
                        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT t.* FROM %s AS t WHERE (%s)%s LIMIT 5) s',
                                       v_tbl, plan->>'expr', CASE WHEN v_brand <> '*' THEN ' AND t.brand = $1' ELSE '' END) INTO v_sample USING v_brand;
                    END IF;
                END IF;
            ELSIF plan->>'kind' = 'duplicates' THEN
                col := cur->(plan->>'item');
                v_obs := (col->>'duplicates')::float8;
                IF v_obs > 0 THEN
                    -- the hashes found possible duplicates: count them exactly over the rows with those hashes
                    v_detail := jsonb_build_object('hash_duplicates', v_obs, 'duplicated_hashes', col->'keys');
                    hashes := CASE WHEN jsonb_typeof(col->'hashes') = 'array'
                                   THEN ARRAY(SELECT jsonb_array_elements_text(col->'hashes')::bigint) END;
                    EXECUTE plan->>'confirm' INTO v_obs, v_sample USING hashes, nullif(v_brand, '*');
                END IF;
                v_ratio := CASE WHEN v_rows > 0 THEN v_obs / v_rows ELSE 0 END;
            ELSIF plan->>'kind' = 'newest' THEN
                v_detail := jsonb_build_object('newest', cur->(plan->>'item'));
                v_obs := extract(epoch FROM as_of - (cur->>(plan->>'item'))::timestamptz) / 3600.0;
            ELSIF plan->>'kind' = 'queries' THEN
                EXECUTE plan->>'query' INTO v_a;
                EXECUTE plan->>'other_query' INTO v_b;
                v_obs := abs(v_a - v_b);
                v_detail := jsonb_build_object('value', v_a, 'other_value', v_b);
            ELSE
                -- stability: the metric from the scan, then its z-score against the same rule's daily history
                IF plan->>'kind' = 'rows' THEN
                    v_obs := v_rows;
                ELSE
                    col := cur->(plan->>'item')->'columns'->((plan->>'index')::int);
                    v_obs := CASE plan->>'metric'
                                 WHEN 'null_fraction' THEN CASE WHEN v_rows > 0 THEN (col->>'nulls')::float8 / v_rows ELSE 0 END
                                 ELSE (col->>(plan->>'metric'))::float8 END;
                END IF;
                SELECT count(*), avg(h.observed), stddev_samp(h.observed) INTO v_n, v_mean, v_sd
                  FROM (SELECT DISTINCT ON (x.as_of::date) x.observed
                          FROM retail_mid.quality_result x
                         WHERE x.rule_id = r.rule_id AND x.brand = v_brand AND x.as_of::date < quality_evaluate.as_of::date AND x.observed IS NOT NULL
                           AND (coalesce(r.parameters->>'seasonality', 'weekday') = 'none'
                                OR extract(isodow FROM x.as_of) = extract(isodow FROM quality_evaluate.as_of))
                         ORDER BY x.as_of::date DESC, x.as_of DESC
                         LIMIT coalesce((r.parameters->>'window')::int, 8)) h;
                v_detail := jsonb_build_object('history', v_n, 'history_mean', v_mean, 'history_stddev', v_sd);
                IF v_obs IS NOT NULL AND v_n >= 2 THEN
                    v_stat := CASE WHEN v_obs = v_mean THEN 0
                                   WHEN coalesce(v_sd, 0) = 0 THEN CASE WHEN v_obs > v_mean THEN 'Infinity'::float8 ELSE '-Infinity'::float8 END
                                   ELSE (v_obs - v_mean) / v_sd END;
                END IF;
            END IF;
            PERFORM retail_mid.registry_leave(tok);

            v_cmp := CASE WHEN r.template = 'stability' THEN
                              CASE coalesce(r.parameters->>'sides', 'two') WHEN 'two' THEN abs(v_stat) WHEN 'upper' THEN v_stat ELSE -v_stat END
                          WHEN r.threshold_on = 'ratio' THEN v_ratio
                          ELSE v_obs END;
            IF r.template = 'stability' AND (v_obs IS NULL OR v_n < coalesce((r.parameters->>'warmup')::int, 4)) THEN
                v_outcome := CASE WHEN v_obs IS NULL THEN 'fail' ELSE 'warmup' END;
            ELSE
                v_outcome := retail_mid.quality_outcome(v_cmp, r.warn_threshold, r.fail_threshold);
            END IF;
            IF v_brand <> '*' AND cardinality(masked) > 0 AND jsonb_array_length(v_sample) > 0 THEN
                v_sample := (SELECT jsonb_agg(e - masked) FROM jsonb_array_elements(v_sample) e);
            END IF;
            INSERT INTO retail_mid.quality_result (run_id, as_of, rule_id, rule_version, rule_name, table_name, column_name,
                    template, dimension, data_domain, weight, rows_checked, observed, violation_ratio, statistic,
                    threshold_on, compared_value, warn_threshold, fail_threshold, outcome, score, sample, detail, brand)
            SELECT v_job, as_of, r.rule_id, r.version, r.rule_name, v_tbl::text, r.column_name,
                   r.template, tp.dimension, r.data_domain, r.weight, v_rows, v_obs, v_ratio, v_stat,
                   r.threshold_on, v_cmp, r.warn_threshold, r.fail_threshold, v_outcome,
                   CASE v_outcome WHEN 'pass' THEN 100 WHEN 'warn' THEN 50 WHEN 'fail' THEN 0 END, v_sample, v_detail, v_brand
              FROM retail_mid.quality_template tp WHERE tp.template = r.template;
            v_results := v_results + 1;
            CASE v_outcome WHEN 'pass' THEN v_pass := v_pass + 1; WHEN 'warn' THEN v_warn := v_warn + 1;
                           WHEN 'fail' THEN v_fail := v_fail + 1; ELSE v_warmup := v_warmup + 1; END CASE;
          END LOOP;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'quality: % tables, % results: % pass, % warn, % fail, % warming up', v_tables, v_results, v_pass, v_warn, v_fail, v_warmup;
    PERFORM retail_mid.job_finish(v_job, v_results, jsonb_build_object('tables', v_tables, 'pass', v_pass, 'warn', v_warn, 'fail', v_fail, 'warmup', v_warmup));
    RETURN v_job;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_evaluate(regclass, timestamptz) IS 'Evaluates the enabled quality rules of one table (NULL: all tables) in one scan per table, stores a quality_result per rule and returns the run id (job_log.job_id).';

-- issue 19: safety_stock and order_quantity reject NaN and +-Infinity with 22023 (invalid_parameter_value)
CREATE OR REPLACE FUNCTION retail_mid.safety_stock(service_level float8, sigma_demand float8, lead_time float8,
                                        mean_demand float8 DEFAULT 0, sigma_lead_time float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- abs(x) < Infinity is false for NaN (greater than every number in PostgreSQL) and for +-Infinity
    IF NOT (abs(sigma_demand) < 'Infinity' AND abs(lead_time) < 'Infinity' AND abs(mean_demand) < 'Infinity'
            AND abs(sigma_lead_time) < 'Infinity') THEN
        RAISE EXCEPTION 'safety stock inputs must be finite numbers' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got sigma_demand %s, lead_time %s, mean_demand %s, sigma_lead_time %s.',
                            sigma_demand, lead_time, mean_demand, sigma_lead_time);
    END IF;
    IF sigma_demand < 0 OR lead_time < 0 OR mean_demand < 0 OR sigma_lead_time < 0 THEN
        RAISE EXCEPTION 'safety stock inputs must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN retail_mid.normal_quantile(service_level)
           * sqrt(lead_time * sigma_demand ^ 2 + mean_demand ^ 2 * sigma_lead_time ^ 2);
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.order_quantity(on_hand float8, on_order float8, reserved float8, reorder_point float8,
                                          order_up_to float8, pack_size float8 DEFAULT 1, min_order_qty float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_position float8 := on_hand + on_order - reserved;
    v_qty float8;
BEGIN
    -- abs(x) < Infinity is false for NaN (greater than every number in PostgreSQL) and for +-Infinity
    IF NOT (abs(on_hand) < 'Infinity' AND abs(on_order) < 'Infinity' AND abs(reserved) < 'Infinity'
            AND abs(reorder_point) < 'Infinity' AND abs(order_up_to) < 'Infinity' AND abs(pack_size) < 'Infinity'
            AND abs(min_order_qty) < 'Infinity') THEN
        RAISE EXCEPTION 'order quantity inputs must be finite numbers' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got on_hand %s, on_order %s, reserved %s, reorder_point %s, order_up_to %s, pack_size %s, min_order_qty %s.',
                            on_hand, on_order, reserved, reorder_point, order_up_to, pack_size, min_order_qty);
    END IF;
    IF pack_size <= 0 THEN
        RAISE EXCEPTION 'pack size must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_order_qty < 0 THEN
        RAISE EXCEPTION 'minimum order quantity must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF order_up_to < reorder_point THEN
        RAISE EXCEPTION 'order-up-to level must not be below the reorder point' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_position > reorder_point OR v_position >= order_up_to THEN
        RETURN 0;   -- with reorder point = order-up-to (base stock) a position at the level needs nothing
    END IF;
    -- the 1e-9 keeps an exact multiple (computed in floating point) from rounding up to one pack more
    v_qty := ceil((order_up_to - v_position) / pack_size - 1e-9) * pack_size;
    IF v_qty < min_order_qty THEN
        v_qty := ceil(min_order_qty / pack_size - 1e-9) * pack_size;
    END IF;
    RETURN greatest(v_qty, 0);
END;
$$;

-- issue 19: date ranges of metric_generate, metric_refresh, metric_reconcile and replenish_demand_arrays are checked as
-- refresh checks its own (NULL, reversed, infinite, more than 100 years); replenish_demand_arrays becomes PL/pgSQL for it
CREATE OR REPLACE FUNCTION retail_mid.replenish_demand_arrays(brand text, first_day date, last_day date)
RETURNS TABLE (site_id text, sku_id text, first_sale date, y float8[])
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF first_day IS NULL OR last_day IS NULL THEN
        RAISE EXCEPTION 'replenish_demand_arrays dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF first_day > last_day THEN
        RAISE EXCEPTION 'replenish_demand_arrays range is empty: first_day % is after last_day %', first_day, last_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer window would run until cancelled
    IF NOT isfinite(first_day) OR NOT isfinite(last_day) OR last_day - first_day > 36600 THEN
        RAISE EXCEPTION 'replenish_demand_arrays range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got first_day %s and last_day %s.', first_day, last_day);
    END IF;
    RETURN QUERY
    SELECT p.store_id, p.sku_id, p.f,
           (SELECT array_agg(coalesce(t.sales_quantity, 0)::float8 ORDER BY d.d)
              FROM generate_series(p.f, last_day, interval '1 day') d(d)
              LEFT JOIN retail_mid.dws_trade_sku_store_1d t
                     ON t.brand = replenish_demand_arrays.brand AND t.store_id = p.store_id AND t.sku_id = p.sku_id AND t.dt = d.d::date)
      FROM (SELECT w.store_id, w.sku_id, min(w.dt) AS f
              FROM retail_mid.dws_trade_sku_store_1d w
              JOIN retail_mid.ods_site s ON s.brand = w.brand AND s.site_id = w.store_id AND s.kind = 'store'
             WHERE w.brand = replenish_demand_arrays.brand AND w.dt BETWEEN first_day AND last_day AND w.sales_quantity > 0
             GROUP BY w.store_id, w.sku_id) p
     ORDER BY 1, 2;
END;
$$;

-- issue 19: loaders and stage_csv raise name_too_long (42622) instead of XX000 for a path the file system refuses as too long
CREATE FUNCTION retail_mid.server_file_size(path text)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_longest int;
BEGIN
    IF path IS NULL OR path = '' THEN
        RAISE EXCEPTION 'file path must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(path) >= 4096 THEN
        RAISE EXCEPTION 'file path is too long' USING ERRCODE = 'name_too_long',
            DETAIL = format('The path has %s bytes; the server accepts at most 4095.', octet_length(path));
    END IF;
    SELECT max(octet_length(c)) INTO v_longest FROM regexp_split_to_table(path, '/') c;
    IF v_longest > 255 THEN
        RAISE EXCEPTION 'file path is too long' USING ERRCODE = 'name_too_long',
            DETAIL = format('A component of the path has %s bytes; file names have at most 255.', v_longest);
    END IF;
    BEGIN
        RETURN (pg_stat_file(path, true)).size;
    EXCEPTION WHEN internal_error THEN
        RAISE EXCEPTION '%', SQLERRM USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The path is read by the database server, not by the client.';
    END;
END;
$$;
COMMENT ON FUNCTION retail_mid.server_file_size(text) IS 'Size in bytes of a file on the database server, NULL when it does not exist (used by the loaders); an empty path is invalid_parameter_value, a path of 4096 bytes or more or with a component over 255 bytes is name_too_long.';
CREATE OR REPLACE FUNCTION retail_mid.stage_csv(path text, staging regclass, columns text)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF retail_mid.server_file_size(path) IS NULL THEN
        RAISE EXCEPTION 'could not open file "%": no such file', path
            USING ERRCODE = 'undefined_file', HINT = 'The path is read by the database server, not by the client.';
    END IF;
    -- gzip -cdf passes plain files through unchanged; the path is shell-quoted.
    EXECUTE format('COPY %s %s FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', staging,
                   CASE WHEN columns = '*' THEN '' ELSE '(' || columns || ')' END,
                   'gzip -cdf ''' || replace(path, '''', '''\''''') || '''');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.load_complete_journey(dir text, brand text DEFAULT 'complete_journey', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint := 0; v_loaded bigint := 0; v_rejects jsonb; v_load bigint; v_job bigint;
        f text; n bigint;
BEGIN
    v_job := retail_mid.job_start('load_complete_journey', jsonb_build_object('dir', dir, 'brand', brand));
    CREATE TEMP TABLE rm_tx (line_no bigint GENERATED ALWAYS AS IDENTITY, household_id text, store_id text, basket_id text,
        product_id text, quantity text, sales_value text, retail_disc text, coupon_disc text, coupon_match_disc text,
        week text, ts text, reason text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_prod (product_id text, manufacturer_id text, department text, brand text, product_category text,
        product_type text, package_size text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_demo (household_id text, age text, income text, home_ownership text, marital_status text,
        household_size text, household_comp text, kids_count text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_camp (campaign_id text, household_id text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_campdesc (campaign_id text, campaign_type text, start_date text, end_date text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_redeem (household_id text, coupon_upc text, campaign_id text, redemption_date text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_promo (product_id text, store_id text, display_location text, mailer_location text, week text) ON COMMIT DROP;

    FOREACH f IN ARRAY ARRAY['transactions_sample', 'products', 'demographics', 'campaigns', 'campaign_descriptions',
                             'coupon_redemptions', 'promotions_sample'] LOOP
        f := CASE WHEN retail_mid.server_file_size(dir || '/' || f || '.csv.gz') IS NOT NULL THEN dir || '/' || f || '.csv.gz'
                  ELSE dir || '/' || f || '.csv' END;
        n := CASE
            WHEN f LIKE '%transactions_sample%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_tx',
                 'household_id, store_id, basket_id, product_id, quantity, sales_value, retail_disc, coupon_disc, coupon_match_disc, week, ts')
            WHEN f LIKE '%products%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_prod', '*')
            WHEN f LIKE '%demographics%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_demo', '*')
            WHEN f LIKE '%campaign_descriptions%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_campdesc', '*')
            WHEN f LIKE '%campaigns%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_camp', '*')
            WHEN f LIKE '%coupon_redemptions%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_redeem', '*')
            ELSE retail_mid.stage_csv(f, 'pg_temp.rm_promo', '*') END;
        v_read := v_read + n;
    END LOOP;

    UPDATE rm_tx SET reason = CASE
        WHEN retail_mid.invalid_field(household_id, 'text') THEN 'missing household_id'
        WHEN retail_mid.invalid_field(basket_id, 'text') THEN 'missing basket_id'
        WHEN retail_mid.invalid_field(product_id, 'text') THEN 'missing product_id'
        WHEN retail_mid.invalid_field(quantity, 'integer') THEN 'quantity is not an integer'
        WHEN retail_mid.invalid_field(sales_value, 'number') OR retail_mid.invalid_field(retail_disc, 'number')
          OR retail_mid.invalid_field(coupon_match_disc, 'number') THEN 'an amount is not a number'
        WHEN retail_mid.invalid_field(ts, 'timestamp') THEN 'transaction_timestamp is not a timestamp' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_tx');
    v_loaded := v_read - (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(v_rejects));
    v_load := retail_mid.finish_load('complete_journey', dir, brand, v_read, v_loaded, v_rejects, max_rejected);

    INSERT INTO retail_mid.ods_product AS p (brand, sku_id, category_l1, category_l2, category_l3, product_brand, package_size, load_id)
    SELECT load_complete_journey.brand, btrim(product_id), department, product_category, product_type, rm_prod.brand, package_size, v_load
      FROM rm_prod WHERE btrim(product_id) <> ''
    ON CONFLICT ON CONSTRAINT ods_product_pkey DO UPDATE
       SET category_l1 = excluded.category_l1, category_l2 = excluded.category_l2, category_l3 = excluded.category_l3,
           product_brand = excluded.product_brand, package_size = excluded.package_size, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_product (brand, sku_id, load_id)
    SELECT DISTINCT load_complete_journey.brand, btrim(product_id), v_load FROM rm_tx ON CONFLICT DO NOTHING;

    INSERT INTO retail_mid.ods_customer AS c (brand, customer_id, id_type, attributes, load_id)
    SELECT load_complete_journey.brand, h, 'household_id', coalesce(to_jsonb(d) - 'household_id', '{}'), v_load
      FROM (SELECT btrim(household_id) AS h FROM rm_tx UNION SELECT btrim(household_id) FROM rm_demo) hh
      LEFT JOIN rm_demo d ON btrim(d.household_id) = hh.h
    ON CONFLICT ON CONSTRAINT ods_customer_pkey DO UPDATE SET attributes = excluded.attributes, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, load_id)
    SELECT brand, customer_id, 'household_id', customer_id, v_load FROM retail_mid.ods_customer
     WHERE brand = load_complete_journey.brand ON CONFLICT DO NOTHING;
    PERFORM retail_mid.assign_customer_keys(array_agg('household_id'::text), array_agg(customer_id))
       FROM retail_mid.ods_customer WHERE brand = load_complete_journey.brand;

    INSERT INTO retail_mid.ods_site (brand, site_id, kind, load_id)
    SELECT DISTINCT load_complete_journey.brand, btrim(store_id), 'store', v_load FROM rm_tx WHERE btrim(store_id) <> ''
    ON CONFLICT DO NOTHING;

    DELETE FROM retail_mid.ods_order_line l USING (SELECT DISTINCT btrim(basket_id) AS b FROM rm_tx) s
     WHERE l.brand = load_complete_journey.brand AND l.order_id = s.b;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, load_id)
    SELECT DISTINCT ON (btrim(basket_id)) load_complete_journey.brand, btrim(basket_id), 'household_id', btrim(household_id),
           ts::timestamp, 'store', btrim(store_id), 'paid', v_load
      FROM rm_tx ORDER BY btrim(basket_id), ts
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE
       SET customer_id = excluded.customer_id, order_time = excluded.order_time, store_id = excluded.store_id, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_complete_journey.brand, btrim(basket_id), row_number() OVER (PARTITION BY btrim(basket_id) ORDER BY line_no),
           btrim(product_id), q, up, CASE WHEN q = 0 THEN 0 ELSE up * q - sv END, v_load
      FROM (SELECT *, quantity::numeric AS q, sales_value::numeric AS sv,
                   CASE WHEN quantity::numeric = 0 THEN sales_value::numeric
                        ELSE round((sales_value::numeric + abs(retail_disc::numeric) + abs(coupon_match_disc::numeric)) / quantity::numeric, 4) END AS up
              FROM rm_tx) t;

    INSERT INTO retail_mid.ods_campaign AS c (brand, campaign_id, name, kind, start_date, end_date, load_id)
    SELECT load_complete_journey.brand, btrim(campaign_id), 'Campaign ' || btrim(campaign_id), campaign_type,
           start_date::date, end_date::date, v_load
      FROM rm_campdesc
    ON CONFLICT ON CONSTRAINT ods_campaign_pkey DO UPDATE
       SET kind = excluded.kind, start_date = excluded.start_date, end_date = excluded.end_date, load_id = excluded.load_id;
    DELETE FROM retail_mid.ods_campaign_touch WHERE ods_campaign_touch.brand = load_complete_journey.brand;
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, load_id)
    SELECT load_complete_journey.brand, btrim(c.campaign_id), 'household_id', btrim(c.household_id), 'mail',
           d.start_date::timestamp, 'sent', v_load
      FROM rm_camp c LEFT JOIN rm_campdesc d ON btrim(d.campaign_id) = btrim(c.campaign_id);
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, coupon_id, load_id)
    SELECT load_complete_journey.brand, btrim(campaign_id), 'household_id', btrim(household_id), 'store',
           redemption_date::timestamp, 'redeemed', btrim(coupon_upc), v_load
      FROM rm_redeem;

    -- Promotion weeks follow the transactions' week numbers: week 1 starts on 2017-01-01.
    INSERT INTO retail_mid.ods_promotion AS p (brand, sku_id, store_id, start_date, end_date, display, feature, load_id)
    SELECT load_complete_journey.brand, btrim(product_id), btrim(store_id), date '2017-01-01' + (week::int - 1) * 7,
           date '2017-01-01' + (week::int - 1) * 7 + 6, bool_or(display_location <> '0'), bool_or(mailer_location <> '0'), v_load
      FROM rm_promo GROUP BY btrim(product_id), btrim(store_id), week::int
    ON CONFLICT ON CONSTRAINT ods_promotion_pkey DO UPDATE
       SET display = excluded.display, feature = excluded.feature, load_id = excluded.load_id;

    DROP TABLE rm_tx, rm_prod, rm_demo, rm_camp, rm_campdesc, rm_redeem, rm_promo;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_customer, retail_mid.ods_customer_identifier, retail_mid.ods_site, retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_campaign, retail_mid.ods_campaign_touch, retail_mid.ods_promotion;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.load_orange_juice(dir text, brand text DEFAULT 'dominicks', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; f text;
BEGIN
    v_job := retail_mid.job_start('load_orange_juice', jsonb_build_object('dir', dir, 'brand', brand));
    CREATE TEMP TABLE rm_stage (store text, ojbrand text, week text, logmove text, constant text,
        p1 text, p2 text, p3 text, p4 text, p5 text, p6 text, p7 text, p8 text, p9 text, p10 text, p11 text,
        deal text, feat text, profit text, units text, reason text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_stores (store text, age60 text, educ text, ethnic text, income text, hhlarge text, workwom text,
        hval150 text, sstrdist text, sstrvol text, cpdist5 text, cpwvol5 text) ON COMMIT DROP;
    f := CASE WHEN retail_mid.server_file_size(dir || '/orange_juice_weekly.csv.gz') IS NOT NULL
              THEN dir || '/orange_juice_weekly.csv.gz' ELSE dir || '/orange_juice_weekly.csv' END;
    v_read := retail_mid.stage_csv(f, 'pg_temp.rm_stage',
        'store, ojbrand, week, logmove, constant, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, deal, feat, profit, units');
    v_read := v_read + retail_mid.stage_csv(dir || '/orange_juice_stores.csv', 'pg_temp.rm_stores', '*');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(store, 'integer') THEN 'store is not an integer'
        WHEN retail_mid.invalid_field(ojbrand, 'integer') OR ojbrand::int NOT BETWEEN 1 AND 11 THEN 'brand is not 1..11'
        WHEN retail_mid.invalid_field(week, 'integer') THEN 'week is not an integer'
        WHEN retail_mid.invalid_field(units, 'integer') OR units::numeric < 0 THEN 'units is not a non-negative integer'
        WHEN retail_mid.invalid_field(deal, 'number') OR retail_mid.invalid_field(feat, 'number')
             OR deal::numeric NOT BETWEEN 0 AND 1 OR feat::numeric NOT BETWEEN 0 AND 1 THEN 'deal/feat is not a share between 0 and 1'
        WHEN retail_mid.invalid_field((ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11])[ojbrand::int], 'number')
             THEN 'own price is not a number' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    v_loaded := v_read - (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(v_rejects));
    v_load := retail_mid.finish_load('orange_juice', dir, brand, v_read, v_loaded, v_rejects, max_rejected);

    INSERT INTO retail_mid.ods_product AS p (brand, sku_id, sku_name, category_l1, category_l2, product_brand, package_size, load_id)
    SELECT load_orange_juice.brand, 'oj' || b, name, 'Dairy', 'Refrigerated orange juice', split_part(name, ' ', 1),
           oz || ' oz', v_load
      FROM (VALUES (1, 'Tropicana Premium 64', 64), (2, 'Tropicana Premium 96', 96), (3, 'Florida''s Natural 64', 64),
                   (4, 'Tropicana 64', 64), (5, 'Minute Maid 64', 64), (6, 'Minute Maid 96', 96), (7, 'Citrus Hill 64', 64),
                   (8, 'Tree Fresh 64', 64), (9, 'Florida Gold 64', 64), (10, 'Dominicks 64', 64), (11, 'Dominicks 128', 128))
           AS b(b, name, oz)
    ON CONFLICT ON CONSTRAINT ods_product_pkey DO UPDATE SET sku_name = excluded.sku_name, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_site AS s (brand, site_id, site_name, kind, attributes, load_id)
    SELECT load_orange_juice.brand, btrim(store), 'Dominick''s ' || btrim(store), 'store',
           coalesce((SELECT to_jsonb(st) - 'store' FROM rm_stores st WHERE btrim(st.store) = btrim(x.store)), '{}'), v_load
      FROM (SELECT DISTINCT store FROM rm_stage) x
    ON CONFLICT ON CONSTRAINT ods_site_pkey DO UPDATE SET attributes = excluded.attributes, load_id = excluded.load_id;

    CREATE TEMP TABLE rm_oj ON COMMIT DROP AS
    SELECT btrim(store) AS store, 'oj' || ojbrand::int AS sku, date '1989-09-14' + (week::int - 1) * 7 AS week_start,
           units::numeric AS units, deal::numeric AS deal, feat::numeric AS feat,
           round((ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11])[ojbrand::int]::numeric
                 * (ARRAY[64, 96, 64, 64, 64, 96, 64, 64, 64, 64, 128])[ojbrand::int], 4) AS price
      FROM rm_stage;
    DELETE FROM retail_mid.ods_order_line l USING rm_oj s
     WHERE l.brand = load_orange_juice.brand AND l.order_id = s.store || '-' || s.sku || '-' || s.week_start;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, order_time, channel, store_id, status, load_id)
    SELECT load_orange_juice.brand, store || '-' || sku || '-' || week_start, week_start, 'store', store, 'paid', v_load FROM rm_oj
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE SET load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_orange_juice.brand, store || '-' || sku || '-' || week_start, 1, sku, units, price, 0, v_load FROM rm_oj;
    INSERT INTO retail_mid.ods_promotion AS p (brand, sku_id, store_id, start_date, end_date, promo_price, display, feature,
                                               display_share, feature_share, load_id)
    SELECT load_orange_juice.brand, sku, store, week_start, week_start + 6, price, deal > 0, feat > 0, round(deal, 5), round(feat, 5), v_load
      FROM rm_oj WHERE deal > 0 OR feat > 0
    ON CONFLICT ON CONSTRAINT ods_promotion_pkey DO UPDATE
       SET promo_price = excluded.promo_price, display = excluded.display, feature = excluded.feature,
           display_share = excluded.display_share, feature_share = excluded.feature_share, load_id = excluded.load_id;
    DROP TABLE rm_stage, rm_stores, rm_oj;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_site, retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_promotion;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;

-- issue 19: metric_generate, metric_refresh and metric_reconcile, once, in their final text (both findings above change
-- them: they run registry SQL as its author, and check their date ranges)
CREATE OR REPLACE FUNCTION retail_mid.metric_generate(granularity text, from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g retail_mid.metric_granularity;
    tbl text;
    t1d text;
    v_job bigint;
    m record;
    dims_def text;
    dims_sel text;
    cols text;
    metric_cols text;
    day_cols text[] := '{}';
    n bigint;
    k int := 0;
    dwd regclass;
    cov retail_mid.metric_coverage;
    covered datemultirange;
    need_from date;
    reach int;
    last_dt date;
    win_to date;
    r daterange;
    built datemultirange := '{}';
    days_built bigint := 0;
    expr text;
    tok int8;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'metric_generate dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'metric_generate range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer range would run until cancelled
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'metric_generate range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got from_date %s and to_date %s.', from_date, to_date);
    END IF;
    SELECT * INTO g FROM retail_mid.metric_granularity x WHERE x.granularity = metric_generate.granularity;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown granularity "%"', granularity USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity) THEN
        RAISE EXCEPTION 'granularity "%" has no derived metrics', granularity USING ERRCODE = 'undefined_object';
    END IF;
    v_job := retail_mid.job_start('metric_generate', jsonb_build_object('granularity', granularity, 'from', from_date, 'to', to_date));
    tbl := 'retail_mid.' || quote_ident('dws_metric_' || g.granularity);
    t1d := 'retail_mid.' || quote_ident('dws_metric_' || g.granularity || '_1d');
    -- dimension column types from the DWD table of the first atomic metric at this granularity
    SELECT a.dwd_table INTO dwd FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
     WHERE d.granularity = g.granularity ORDER BY d.metric LIMIT 1;
    SELECT string_agg(format(', %I %s', x, format_type(att.atttypid, att.atttypmod)), '' ORDER BY o),
           string_agg(format(', (dims[%s])::%s', o, format_type(att.atttypid, att.atttypmod)), '' ORDER BY o)
      INTO dims_def, dims_sel
      FROM unnest(g.dimensions) WITH ORDINALITY u(x, o)
      JOIN pg_attribute att ON att.attrelid = dwd AND att.attname = x;
    IF to_regclass(t1d) IS NULL THEN
        EXECUTE format('CREATE TABLE %s (dt date NOT NULL%s)', t1d, coalesce(dims_def, ''));
        EXECUTE format('CREATE INDEX ON %s (dt)', t1d);
    END IF;
    IF to_regclass(tbl) IS NULL THEN
        EXECUTE format('CREATE TABLE %s (dt date NOT NULL%s)', tbl, coalesce(dims_def, ''));
        EXECUTE format('CREATE INDEX ON %s (dt)', tbl);
    END IF;
    EXECUTE format('COMMENT ON TABLE %s IS %L', t1d, format('Daily values of the metrics at granularity %s (%s), one row per day dt and dimension values, with the bitmap of the distinct keys of each distinct count; generated by retail_mid.metric_generate, the base every period is rolled up from.',
                                                            g.granularity, array_to_string(g.dimensions, ', ')));
    EXECUTE format('COMMENT ON TABLE %s IS %L', tbl, format('DWS metrics at granularity %s (%s), one row per statistics date dt and dimension values; generated by retail_mid.metric_generate from the metric registry.',
                                                            g.granularity, array_to_string(g.dimensions, ', ')));
    EXECUTE format('COMMENT ON COLUMN %s.dt IS %L', t1d, 'Day.');
    EXECUTE format('COMMENT ON COLUMN %s.dt IS %L', tbl, 'Statistics date: the last day of every window.');
    FOR m IN SELECT x, o FROM unnest(g.dimensions) WITH ORDINALITY u(x, o) LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', t1d, m.x, format('Dimension %s.', m.x));
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, m.x, format('Dimension %s.', m.x));
    END LOOP;

    -- daily columns, one per (atomic metric, qualifier), and a bitmap column for distinct counts
    FOR m IN SELECT DISTINCT retail_mid.metric_day_column(a.atomic, d.qualifier) AS col, a.atomic, d.qualifier, a.unit, a.additivity
               FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
              WHERE d.granularity = g.granularity ORDER BY 1 LOOP
        day_cols := day_cols || m.col;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(t1d) AND x.attname = m.col AND NOT x.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I numeric', t1d, m.col);
        END IF;
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', t1d, m.col, format('Atomic metric %s under qualifier %s on the day (%s, %s).', m.atomic, m.qualifier, m.unit, m.additivity));
        IF m.additivity = 'non_additive' THEN
            day_cols := day_cols || (m.col || '_bitmap');
            IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(t1d) AND x.attname = m.col || '_bitmap' AND NOT x.attisdropped) THEN
                EXECUTE format('ALTER TABLE %s ADD COLUMN %I retail_mid.rbitmap', t1d, m.col || '_bitmap');
            END IF;
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', t1d, m.col || '_bitmap', format('The distinct keys counted by %s, OR-ed over the days of a window for exact distinct counts.', m.col));
        END IF;
    END LOOP;

    -- the statistics dates to recompute: from from_date to the last one generated, as far as a window reaches
    SELECT max(CASE p.kind WHEN 'rolling' THEN p.days - 1 WHEN 'calendar_week' THEN 6 WHEN 'calendar_month' THEN 30 ELSE 36600 END)
      INTO reach FROM retail_mid.metric_derived d JOIN retail_mid.metric_period p USING (period) WHERE d.granularity = g.granularity;
    EXECUTE format('SELECT max(dt) FROM %s', tbl) INTO last_dt;
    win_to := greatest(to_date, least(coalesce(last_dt, to_date), to_date + reach));

    -- the daily rows: [from_date, to_date] always, and whatever else the windows need that is not there yet
    SELECT * INTO cov FROM retail_mid.metric_coverage c WHERE c.granularity = g.granularity FOR UPDATE;
    covered := CASE WHEN FOUND AND cov.day_columns = day_cols THEN cov.days ELSE '{}' END;
    SELECT min(retail_mid.metric_window_start(d.period, from_date)) INTO need_from
      FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity;
    IF need_from = '-infinity' THEN
        need_from := from_date;
        FOR m IN SELECT DISTINCT a.dwd_table, a.time_column FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
                  WHERE d.granularity = g.granularity LOOP
            EXECUTE format('SELECT least($1, min((t.%I)::date)) FROM %s AS t', m.time_column, m.dwd_table) INTO need_from USING need_from;
        END LOOP;
    END IF;
    FOR r IN SELECT x FROM unnest((datemultirange(daterange(need_from, win_to, '[]')) - covered)
                                  + datemultirange(daterange(from_date, to_date, '[]'))) x ORDER BY x LOOP
        n := retail_mid.metric_build_day(g.granularity, lower(r), upper(r) - 1);
        built := built + datemultirange(r);
        days_built := days_built + (upper(r) - lower(r));
        RAISE NOTICE 'metric: % daily rows of % for % .. %', n, t1d, lower(r), upper(r) - 1;
    END LOOP;
    INSERT INTO retail_mid.metric_coverage (granularity, days, day_columns) VALUES (g.granularity, covered + built, day_cols)
        ON CONFLICT ON CONSTRAINT metric_coverage_pkey DO UPDATE SET days = EXCLUDED.days, day_columns = EXCLUDED.day_columns;

    -- every derived metric of the statistics dates [from_date, win_to], rolled up from the daily table
    IF to_regclass('pg_temp.metric_long') IS NULL THEN
        CREATE TEMP TABLE metric_long (metric text, dt date, dims text[], value numeric) ON COMMIT DROP;
    END IF;
    TRUNCATE metric_long;
    FOR m IN SELECT d.metric, a.unit, a.additivity FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
              WHERE d.granularity = g.granularity ORDER BY d.metric LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(tbl) AND x.attname = m.metric AND NOT x.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I numeric', tbl, m.metric);
        END IF;
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, m.metric, format('Derived metric %s (%s, %s).', m.metric, m.unit, m.additivity));
        EXECUTE format('INSERT INTO metric_long SELECT %L, x.dt, x.dims, x.value FROM (%s) x', m.metric, retail_mid.metric_sql(m.metric, g.granularity))
            USING from_date, win_to;
        k := k + 1;
        RAISE NOTICE 'metric: % computed for % .. %', m.metric, from_date, win_to;
    END LOOP;
    FOR m IN SELECT c.metric, c.unit FROM retail_mid.metric_composite c WHERE c.granularity = g.granularity ORDER BY c.metric LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(tbl) AND x.attname = m.metric AND NOT x.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I numeric', tbl, m.metric);
        END IF;
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, m.metric, format('Composite metric %s (%s).', m.metric, m.unit));
    END LOOP;
    EXECUTE format('DELETE FROM %s WHERE dt BETWEEN $1 AND $2', tbl) USING from_date, win_to;
    SELECT string_agg(format(', max(value) FILTER (WHERE metric = %L)', d.metric), '' ORDER BY d.metric),
           string_agg(format(', %I', d.metric), '' ORDER BY d.metric)
      INTO cols, metric_cols
      FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity;
    EXECUTE format('INSERT INTO %s (dt%s%s) SELECT dt%s%s FROM metric_long GROUP BY dt, dims',
                   tbl, coalesce((SELECT string_agg(format(', %I', x), '' ORDER BY o) FROM unnest(g.dimensions) WITH ORDINALITY u(x, o)), ''),
                   metric_cols, coalesce(dims_sel, ''), cols);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- brand isolation and role grants, as for every table of the extension (before the composite metrics, which
    -- update the table as their authors)
    PERFORM retail_mid.secure_generated_table(t1d::regclass);
    PERFORM retail_mid.secure_generated_table(tbl::regclass);
    -- composite metrics are expressions of the window values (a ratio of sums, never a sum of ratios), run as
    -- their authors, restricted (src/common/registry.sql)
    FOR m IN SELECT c.metric, c.expression, c.author FROM retail_mid.metric_composite c WHERE c.granularity = g.granularity ORDER BY c.metric LOOP
        expr := retail_mid.registry_check_sql(regexp_replace(m.expression, '\{([a-z][a-z0-9_]*)\}', '"\1"', 'g'), 'expression',
                                              format('expression of composite metric %s', m.metric));
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[m.author], format('composite metric %s', m.metric)));
        EXECUTE format('UPDATE %s SET %I = %s WHERE dt BETWEEN $1 AND $2', tbl, m.metric, expr) USING from_date, win_to;
        PERFORM retail_mid.registry_leave(tok);
    END LOOP;
    RAISE NOTICE 'metric: % rows of % for % metrics (% .. %)', n, tbl, k, from_date, win_to;
    PERFORM retail_mid.job_finish(v_job, n, jsonb_build_object('table', tbl, 'metrics', k, 'days_built', days_built,
                                                               'dates', format('%s .. %s', from_date, win_to)));
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.metric_refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g text;
    n bigint := 0;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'metric_refresh dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'metric_refresh range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer range would run until cancelled
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'metric_refresh range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got from_date %s and to_date %s.', from_date, to_date);
    END IF;
    FOR g IN SELECT x.granularity FROM retail_mid.metric_granularity x
              WHERE to_regclass('retail_mid.' || quote_ident('dws_metric_' || x.granularity)) IS NOT NULL
                AND EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.granularity = x.granularity)
              ORDER BY 1 LOOP
        n := n + retail_mid.metric_generate(g, from_date, to_date);
    END LOOP;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.metric_reconcile(granularity text, from_date date, to_date date)
RETURNS TABLE (metric text, dt date, dims text[], dws_value numeric, dwd_value numeric)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g retail_mid.metric_granularity;
    m record;
    tbl text;
    dimarr text;
    tok int8;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'metric_reconcile dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'metric_reconcile range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer range would run until cancelled
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'metric_reconcile range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got from_date %s and to_date %s.', from_date, to_date);
    END IF;
    SELECT * INTO g FROM retail_mid.metric_granularity x WHERE x.granularity = metric_reconcile.granularity;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown granularity "%"', granularity USING ERRCODE = 'undefined_object';
    END IF;
    tbl := 'retail_mid.' || quote_ident('dws_metric_' || g.granularity);
    IF to_regclass(tbl) IS NULL THEN
        RAISE EXCEPTION 'table % has not been generated', tbl USING ERRCODE = 'undefined_table',
            HINT = 'Run retail_mid.metric_generate first.';
    END IF;
    dimarr := 'ARRAY[' || coalesce((SELECT string_agg('s.' || quote_ident(x) || '::text', ', ' ORDER BY o) FROM unnest(g.dimensions) WITH ORDINALITY u(x, o)), '') || ']::text[]';
    FOR m IN SELECT d.metric, d.atomic, d.qualifier FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity ORDER BY d.metric LOOP
        -- straight from DWD: the expression and the predicate run as their authors (src/common/registry.sql)
        tok := retail_mid.registry_enter(retail_mid.metric_role(m.atomic, m.qualifier));
        RETURN QUERY EXECUTE format(
            'WITH direct AS (%s), stored AS (SELECT s.dt, %s AS dims, s.%I AS value FROM %s s WHERE s.dt BETWEEN $1 AND $2 AND s.%I IS NOT NULL) '
            'SELECT %L::text, coalesce(a.dt, b.dt), coalesce(a.dims, b.dims), a.value, b.value '
            'FROM stored a FULL JOIN direct b ON a.dt = b.dt AND a.dims = b.dims '
            'WHERE a.value IS DISTINCT FROM b.value ORDER BY 2, 3',
            retail_mid.metric_sql(m.metric, g.granularity, true), dimarr, m.metric, tbl, m.metric, m.metric)
            USING from_date, to_date;
        PERFORM retail_mid.registry_leave(tok);
    END LOOP;
END;
$$;

-- docs: the masked view of customer_key took its column comments from the table when it was created
COMMENT ON COLUMN retail_mid.customer_key_masked.created_at IS 'When the key was given (the first load that saw the identifier).';

-- issue 15: the behaviour, marketing, inventory and member DWD/DWS (src/foundation/dwd_domains.sql, dws_domains.sql),
-- built by retail_mid.refresh through retail_mid.refresh_domains, and one identifier-to-key rule (identifier_value).
-- Like the trade DWD/DWS they are rebuilt from the ODS, so they are not registered with pg_extension_config_dump.
-- The update creates them empty: the first retail_mid.refresh over the loaded days (or retail_mid.refresh_all(), or
-- retail_mid.refresh_domains(from, to) alone) fills them for data loaded under 1.0.0 (building them here would give
-- keys to identifiers seen only in events and touches, which an update must not do behind the user's back).

CREATE FUNCTION retail_mid.identifier_value(id_value text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NULLIF(pg_catalog.btrim(id_value), '');
COMMENT ON FUNCTION retail_mid.identifier_value(text) IS 'The customer identifier as the key dictionary spells it: trimmed, NULL when blank. Every mapping of ODS identifiers to customer keys (trade, behaviour and touch DWD, keyed views, reach) compares retail_mid.customer_key.id_value with it.';

CREATE TABLE retail_mid.dwd_behavior_event_di (
    dt               date      NOT NULL,
    brand            text      NOT NULL,
    customer_key     int4      NOT NULL,
    event_time       timestamp NOT NULL,
    event_type       text      NOT NULL,
    object_attribute text,
    object_value     text,
    channel          text      NOT NULL,
    event_count      int       NOT NULL,
    amount           numeric(14,4)
);
CREATE INDEX ON retail_mid.dwd_behavior_event_di (dt);
CREATE INDEX ON retail_mid.dwd_behavior_event_di (brand, customer_key);
COMMENT ON TABLE retail_mid.dwd_behavior_event_di IS 'Behaviour events with the customer key of their identifier, one row per distinct ODS event (exact duplicates, i.e. same identifier, time, type, object, channel, count and amount, are kept once; events with a blank identifier are left out); rebuilt per day by retail_mid.refresh.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.dt IS 'Business date of the event (event_time::date).';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.customer_key IS 'Customer key of the event''s identifier (retail_mid.customer_key, via retail_mid.identifier_value).';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.event_time IS 'When.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.event_type IS 'exposure, click, view, search, favorite, cart, register, follow, review, share or purchase.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.object_attribute IS 'Kind of object (e.g. sku_id, campaign), NULL when none.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.object_value IS 'The object (e.g. the SKU id), trimmed.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.channel IS 'Channel, ''(none)'' when the source gives none.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.event_count IS 'How many events the row stands for.';
COMMENT ON COLUMN retail_mid.dwd_behavior_event_di.amount IS 'Amount, if any.';

CREATE TABLE retail_mid.dwd_marketing_touch_di (
    dt           date      NOT NULL,
    brand        text      NOT NULL,
    campaign_id  text      NOT NULL,
    customer_key int4      NOT NULL,
    channel      text      NOT NULL,
    touched_at   timestamp NOT NULL,
    touch_type   text      NOT NULL,
    coupon_id    text
);
CREATE INDEX ON retail_mid.dwd_marketing_touch_di (dt);
CREATE INDEX ON retail_mid.dwd_marketing_touch_di (brand, campaign_id);
COMMENT ON TABLE retail_mid.dwd_marketing_touch_di IS 'Campaign touches with the customer key of the touched identifier, one row per distinct ODS touch (exact duplicates kept once; touches without a time or with a blank identifier are left out); rebuilt per day by retail_mid.refresh.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.dt IS 'Business date of the touch (touched_at::date).';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.campaign_id IS 'Campaign (ods_campaign), trimmed.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.customer_key IS 'Customer key of the touched identifier (retail_mid.customer_key, via retail_mid.identifier_value).';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.channel IS 'Channel, ''(none)'' when the source gives none.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.touched_at IS 'When.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.touch_type IS 'sent, exposed, clicked or redeemed.';
COMMENT ON COLUMN retail_mid.dwd_marketing_touch_di.coupon_id IS 'Coupon redeemed or offered, if any.';

-- Rebuilds both DWD tables for [from_date, to_date]; returns the rows written.
CREATE FUNCTION retail_mid.build_dwd_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; m bigint;
BEGIN
    PERFORM retail_mid.assign_customer_keys(array_agg(x.id_type), array_agg(x.id_value))
       FROM (SELECT DISTINCT e.id_type, retail_mid.identifier_value(e.id_value) AS id_value
               FROM retail_mid.ods_behavior_event e
              WHERE e.event_time >= from_date AND e.event_time < to_date + 1
                AND retail_mid.identifier_value(e.id_value) IS NOT NULL
             UNION
             SELECT DISTINCT t.id_type, retail_mid.identifier_value(t.id_value)
               FROM retail_mid.ods_campaign_touch t
              WHERE t.touched_at >= from_date AND t.touched_at < to_date + 1
                AND retail_mid.identifier_value(t.id_value) IS NOT NULL) x
      WHERE NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k WHERE k.id_type = x.id_type AND k.id_value = x.id_value);

    DELETE FROM retail_mid.dwd_behavior_event_di WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dwd_behavior_event_di
    SELECT DISTINCT e.event_time::date, e.brand, k.customer_key, e.event_time, e.event_type, btrim(e.object_attribute),
           btrim(e.object_value), coalesce(nullif(btrim(e.channel), ''), '(none)'), e.event_count, e.amount
      FROM retail_mid.ods_behavior_event e
      JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = retail_mid.identifier_value(e.id_value)
     WHERE e.event_time >= from_date AND e.event_time < to_date + 1;
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM retail_mid.dwd_marketing_touch_di WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dwd_marketing_touch_di
    SELECT DISTINCT t.touched_at::date, t.brand, btrim(t.campaign_id), k.customer_key,
           coalesce(nullif(btrim(t.channel), ''), '(none)'), t.touched_at, t.touch_type, btrim(t.coupon_id)
      FROM retail_mid.ods_campaign_touch t
      JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = retail_mid.identifier_value(t.id_value)
     WHERE t.touched_at >= from_date AND t.touched_at < to_date + 1;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dwd_domains(date, date) IS 'Rebuilds dwd_behavior_event_di and dwd_marketing_touch_di for the given days from the ODS (keys for new identifiers first); called by retail_mid.refresh_domains.';


CREATE TABLE retail_mid.dws_behavior_customer_1d (
    dt            date   NOT NULL,
    brand         text   NOT NULL,
    customer_key  int4   NOT NULL,
    channel       text   NOT NULL,
    category_l1   text   NOT NULL,
    views         bigint NOT NULL,
    carts         bigint NOT NULL,
    favorites     bigint NOT NULL,
    shares        bigint NOT NULL,
    events        bigint NOT NULL,
    PRIMARY KEY (dt, brand, customer_key, channel, category_l1)
);
CREATE INDEX ON retail_mid.dws_behavior_customer_1d (brand, customer_key);
COMMENT ON TABLE retail_mid.dws_behavior_customer_1d IS 'Behaviour per customer, day, channel and object category (from dwd_behavior_event_di; counts are sums of event_count).';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.channel IS 'Channel, ''(none)'' when the event has none.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.category_l1 IS 'Top-level category (ods_product.category_l1) of the object when it is a SKU (object_attribute sku_id); ''(none)'' for other objects, ''(unknown)'' for a SKU without a category.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.views IS 'View events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.carts IS 'Add-to-cart events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.favorites IS 'Favourite events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.shares IS 'Share events.';
COMMENT ON COLUMN retail_mid.dws_behavior_customer_1d.events IS 'All events of any type.';

CREATE TABLE retail_mid.dws_marketing_campaign_1d (
    dt          date   NOT NULL,
    brand       text   NOT NULL,
    campaign_id text   NOT NULL,
    channel     text   NOT NULL,
    sent        bigint NOT NULL,
    delivered   bigint NOT NULL,
    opened      bigint NOT NULL,
    clicked     bigint NOT NULL,
    redeemed    bigint NOT NULL,
    redemptions bigint NOT NULL,
    PRIMARY KEY (dt, brand, campaign_id, channel)
);
COMMENT ON TABLE retail_mid.dws_marketing_campaign_1d IS 'Campaign funnel per campaign, channel and day (from dwd_marketing_touch_di): distinct customers per touch type on the day.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.dt IS 'Business date of the touches.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.campaign_id IS 'Campaign.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.channel IS 'Channel of the touches.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.sent IS 'Distinct customers with a sent touch.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.delivered IS 'Distinct customers with evidence of delivery: an exposed, clicked or redeemed touch (the ODS has no delivery receipt, so this is a lower bound).';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.opened IS 'Distinct customers with an exposed touch (opened / seen).';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.clicked IS 'Distinct customers with a clicked touch.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.redeemed IS 'Distinct customers with a redeemed touch.';
COMMENT ON COLUMN retail_mid.dws_marketing_campaign_1d.redemptions IS 'Redeemed touches (a customer may redeem several coupons).';

CREATE TABLE retail_mid.dws_inventory_site_sku_1d (
    dt                  date    NOT NULL,
    brand               text    NOT NULL,
    site_id             text    NOT NULL,
    site_kind           text    NOT NULL,
    sku_id              text    NOT NULL,
    on_hand             numeric(14,3) NOT NULL,
    on_order            numeric(14,3) NOT NULL,
    reserved            numeric(14,3) NOT NULL,
    available_to_promise numeric(14,3) NOT NULL,
    mean_daily_sales_28d numeric(18,6) NOT NULL,
    days_of_cover       numeric(14,2),
    stock_out           boolean NOT NULL,
    PRIMARY KEY (dt, brand, site_id, sku_id)
);
COMMENT ON TABLE retail_mid.dws_inventory_site_sku_1d IS 'Stock per site (store or warehouse) x SKU on each day with an ODS inventory snapshot, with open inbound orders, available to promise and days of cover.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.dt IS 'Snapshot date (stock at the end of the day).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.site_id IS 'Site (store or warehouse).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.site_kind IS 'ods_site.kind: store, CDC, RDC or FDC; ''(unknown)'' for a site not in ods_site.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.on_hand IS 'Units on hand (snapshot).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.on_order IS 'Units on open inbound orders (ods_inbound_shipment ordered on or before dt, not received by dt).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.reserved IS 'Units reserved (snapshot).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.available_to_promise IS 'greatest(on_hand - reserved, 0): what can be promised from stock now (open orders are not promised).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.mean_daily_sales_28d IS 'Net units sold at the site (dws_trade_sku_store_1d.quantity, store_id = site_id) over the 28 days ending dt, divided by 28; 0 for warehouses.';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.days_of_cover IS 'on_hand / (net units sold in the 28 days ending dt / 28), rounded to 2 decimals; NULL when those sales are 0 or less (cover undefined).';
COMMENT ON COLUMN retail_mid.dws_inventory_site_sku_1d.stock_out IS 'on_hand <= 0.';

CREATE TABLE retail_mid.dws_member_1d (
    dt              date   NOT NULL,
    brand           text   NOT NULL,
    store_id        text   NOT NULL,
    channel         text   NOT NULL,
    new_members     bigint NOT NULL,
    active_members  bigint NOT NULL,
    lapsed_members  bigint NOT NULL,
    PRIMARY KEY (dt, brand, store_id, channel)
);
COMMENT ON TABLE retail_mid.dws_member_1d IS 'Members (ods_customer rows) per home store, register channel and day: new, active (a sale day in the 90 days ending dt) and lapsed (sales before, none in those 90 days).';
COMMENT ON COLUMN retail_mid.dws_member_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_member_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_member_1d.store_id IS 'Member''s home store (ods_customer.home_store_id), ''(none)'' when unknown.';
COMMENT ON COLUMN retail_mid.dws_member_1d.channel IS 'Member''s register channel (ods_customer.register_channel), ''(none)'' when unknown.';
COMMENT ON COLUMN retail_mid.dws_member_1d.new_members IS 'Members registered on dt (register_time::date = dt).';
COMMENT ON COLUMN retail_mid.dws_member_1d.active_members IS 'Members with a sale day (dws_trade_customer_1d.orders > 0) in the 90 days ending dt (dt - 89 .. dt).';
COMMENT ON COLUMN retail_mid.dws_member_1d.lapsed_members IS 'Members with a sale day before dt - 89 and none from dt - 89 to dt.';

-- Rebuilds the four _1d tables for [from_date, to_date]; returns the rows written. Reads the domain DWD (build it
-- first), the trade DWS (days of cover, member activity) and the ODS (snapshots, shipments, sites, customers).
CREATE FUNCTION retail_mid.build_dws_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    DELETE FROM retail_mid.dws_behavior_customer_1d WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_behavior_customer_1d
    SELECT e.dt, e.brand, e.customer_key, e.channel,
           CASE WHEN e.object_attribute = 'sku_id' THEN coalesce(p.category_l1, '(unknown)') ELSE '(none)' END,
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'view'), 0),
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'cart'), 0),
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'favorite'), 0),
           coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'share'), 0),
           sum(e.event_count)
      FROM retail_mid.dwd_behavior_event_di e
      LEFT JOIN retail_mid.ods_product p ON e.object_attribute = 'sku_id' AND p.brand = e.brand AND p.sku_id = e.object_value
     WHERE e.dt BETWEEN from_date AND to_date
     GROUP BY 1, 2, 3, 4, 5;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_marketing_campaign_1d WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_marketing_campaign_1d
    SELECT dt, brand, campaign_id, channel,
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'sent'),
           count(DISTINCT customer_key) FILTER (WHERE touch_type IN ('exposed', 'clicked', 'redeemed')),
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'exposed'),
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'clicked'),
           count(DISTINCT customer_key) FILTER (WHERE touch_type = 'redeemed'),
           count(*) FILTER (WHERE touch_type = 'redeemed')
      FROM retail_mid.dwd_marketing_touch_di
     WHERE dt BETWEEN from_date AND to_date
     GROUP BY dt, brand, campaign_id, channel;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_inventory_site_sku_1d WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_inventory_site_sku_1d
    SELECT i.snapshot_date, i.brand, i.site_id, coalesce(s.kind, '(unknown)'), i.sku_id, i.on_hand, coalesce(o.on_order, 0),
           i.reserved, greatest(i.on_hand - i.reserved, 0), round(coalesce(d.sold, 0) / 28.0, 6),
           CASE WHEN d.sold > 0 THEN round(i.on_hand * 28 / d.sold, 2) END, i.on_hand <= 0
      FROM retail_mid.ods_inventory_snapshot i
      LEFT JOIN retail_mid.ods_site s ON s.brand = i.brand AND s.site_id = i.site_id
      LEFT JOIN LATERAL (SELECT sum(sh.quantity) AS on_order FROM retail_mid.ods_inbound_shipment sh
                          WHERE sh.brand = i.brand AND sh.site_id = i.site_id AND sh.sku_id = i.sku_id
                            AND sh.ordered_on <= i.snapshot_date
                            AND (sh.received_on IS NULL OR sh.received_on > i.snapshot_date)) o ON true
      LEFT JOIN LATERAL (SELECT sum(t.quantity) AS sold FROM retail_mid.dws_trade_sku_store_1d t
                          WHERE t.brand = i.brand AND t.store_id = i.site_id AND t.sku_id = i.sku_id
                            AND t.dt > i.snapshot_date - 28 AND t.dt <= i.snapshot_date) d ON true
     WHERE i.snapshot_date BETWEEN from_date AND to_date;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- Member activity as intervals: a sale day s followed by the next sale day s2 makes the member active on
    -- [s, least(s2 - 1, s + 89)] and lapsed on [s + 90, s2 - 1] (open-ended after the last sale day).
    DELETE FROM retail_mid.dws_member_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_member ON COMMIT DROP AS
    SELECT c.brand, k.customer_key, coalesce(nullif(btrim(c.home_store_id), ''), '(none)') AS store_id,
           coalesce(nullif(btrim(c.register_channel), ''), '(none)') AS channel, c.register_time::date AS registered
      FROM retail_mid.ods_customer c
      LEFT JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = retail_mid.identifier_value(c.customer_id);
    CREATE TEMP TABLE rm_member_state ON COMMIT DROP AS
    SELECT m.brand, m.store_id, m.channel, x.lo, x.hi, x.state
      FROM (SELECT d.brand, d.customer_key, d.dt AS s,
                   lead(d.dt) OVER (PARTITION BY d.brand, d.customer_key ORDER BY d.dt) AS s2
              FROM retail_mid.dws_trade_customer_1d d
             WHERE d.orders > 0 AND d.dt <= to_date) a
      JOIN rm_member m ON m.brand = a.brand AND m.customer_key = a.customer_key,
           LATERAL (VALUES (a.s, least(coalesce(a.s2, 'infinity'::date) - 1, a.s + 89), 'active'),
                           (a.s + 90, coalesce(a.s2, 'infinity'::date) - 1, 'lapsed')) x(lo, hi, state)
     WHERE x.lo <= x.hi AND x.hi >= from_date AND x.lo <= to_date;
    INSERT INTO retail_mid.dws_member_1d
    SELECT dt, brand, store_id, channel, sum(new_members), sum(active_members), sum(lapsed_members)
      FROM (SELECT registered AS dt, brand, store_id, channel, count(*) AS new_members, 0 AS active_members, 0 AS lapsed_members
              FROM rm_member WHERE registered BETWEEN from_date AND to_date
             GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT g.dt::date, s.brand, s.store_id, s.channel, 0,
                   count(*) FILTER (WHERE s.state = 'active'), count(*) FILTER (WHERE s.state = 'lapsed')
              FROM rm_member_state s,
                   LATERAL generate_series(greatest(s.lo, from_date), least(s.hi, to_date), interval '1 day') g(dt)
             GROUP BY 1, 2, 3, 4) u
     GROUP BY dt, brand, store_id, channel;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DROP TABLE rm_member, rm_member_state;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dws_domains(date, date) IS 'Rebuilds dws_behavior_customer_1d, dws_marketing_campaign_1d, dws_inventory_site_sku_1d and dws_member_1d for the given days; called by retail_mid.refresh_domains.';

-- The domain layer in one call, for refresh (and for a first build after upgrading from 1.0.0).
CREATE FUNCTION retail_mid.refresh_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_dwd bigint; v_dws bigint;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'refresh_domains dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date OR from_date = '-infinity' OR to_date = 'infinity' OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'refresh_domains range must be non-empty, finite and at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_dwd := retail_mid.build_dwd_domains(from_date, to_date);
    RAISE NOTICE 'refresh: % behaviour/touch DWD rows written; building domain DWS', v_dwd;
    v_dws := retail_mid.build_dws_domains(from_date, to_date);
    RAISE NOTICE 'refresh: % domain DWS rows written', v_dws;
    RETURN v_dwd + v_dws;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_domains(date, date) IS 'Rebuilds the behaviour, marketing, inventory and member DWD/DWS for the given days (after the trade DWS, which it reads); called by retail_mid.refresh in its transaction; returns rows written.';

-- brand isolation and grants as governance/lockdown.sql gives them at install
SELECT retail_mid.secure_brand_table(t) FROM unnest(ARRAY['retail_mid.dwd_behavior_event_di', 'retail_mid.dwd_marketing_touch_di', 'retail_mid.dws_behavior_customer_1d', 'retail_mid.dws_marketing_campaign_1d', 'retail_mid.dws_inventory_site_sku_1d', 'retail_mid.dws_member_1d']::regclass[]) t;
SELECT retail_mid.security_grant(t) FROM unnest(ARRAY['retail_mid.dwd_behavior_event_di', 'retail_mid.dwd_marketing_touch_di', 'retail_mid.dws_behavior_customer_1d', 'retail_mid.dws_marketing_campaign_1d', 'retail_mid.dws_inventory_site_sku_1d', 'retail_mid.dws_member_1d']::regclass[]) t;

-- issue 15: the keyed views and reach_touch map identifiers with retail_mid.identifier_value (the keyed views did not
-- trim); their reloptions are set again (CREATE OR REPLACE VIEW resets them), owner, grants and comments stay.
CREATE OR REPLACE VIEW retail_mid.behavior_event_keyed AS
SELECT e.brand::text AS brand, k.customer_key::int4 AS customer_key, e.event_time::timestamp AS event_time, e.event_type::text AS event_type,
       e.channel::text AS channel, e.event_count::int AS event_count, e.amount::numeric(14,4) AS amount
  FROM retail_mid.ods_behavior_event e JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = retail_mid.identifier_value(e.id_value);
ALTER VIEW retail_mid.behavior_event_keyed SET (security_invoker = false);
CREATE OR REPLACE VIEW retail_mid.campaign_touch_keyed AS
SELECT t.brand::text AS brand, k.customer_key::int4 AS customer_key, t.campaign_id::text AS campaign_id, t.channel::text AS channel,
       t.touched_at::timestamp AS touched_at, t.touch_type::text AS touch_type, t.coupon_id::text AS coupon_id
  FROM retail_mid.ods_campaign_touch t JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = retail_mid.identifier_value(t.id_value);
ALTER VIEW retail_mid.campaign_touch_keyed SET (security_invoker = false);
CREATE OR REPLACE VIEW retail_mid.reach_touch AS
SELECT o.brand::text AS brand, o.customer_key::int4 AS customer_key, o.planned_at::timestamp AS touched_at,
       o.channel::text AS channel, 'outbox'::text AS source
  FROM retail_mid.reach_outbox o WHERE o.status IN ('planned', 'sent', 'delivered')
UNION ALL
SELECT t.brand, k.customer_key, t.touched_at, t.channel, 'ods_campaign_touch'
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = retail_mid.identifier_value(t.id_value)
 WHERE t.touch_type IN ('sent', 'exposed') AND t.touched_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_plan p WHERE p.brand = t.brand AND p.campaign_id = t.campaign_id);
ALTER VIEW retail_mid.reach_touch SET (security_invoker = true);


-- issue 15: refresh calls refresh_domains after the trade DWS
CREATE OR REPLACE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_domains bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'refresh dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'refresh range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_date = '-infinity' OR to_date = 'infinity' OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'refresh range must be finite and at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One refresh at a time: a second one waits rather than interleaving its deletes and inserts.
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.refresh'));
    v_job := retail_mid.job_start('refresh', jsonb_build_object('from_date', from_date, 'to_date', to_date));

    RAISE NOTICE 'refresh % .. % (% days): building DWD', from_date, to_date, to_date - from_date + 1;
    v_dwd := retail_mid.build_dwd_trade(from_date, to_date);
    t1 := clock_timestamp();
    RAISE NOTICE 'refresh: % DWD lines written; building DWS', v_dwd;
    v_dws := retail_mid.build_dws_trade(from_date, to_date);
    RAISE NOTICE 'refresh: % DWS rows written', v_dws;
    -- issue 15: the behaviour, marketing, inventory and member DWD/DWS (foundation/dwd_domains.sql, dws_domains.sql)
    -- (their rows are logged, not returned: the count refresh returns stays the trade layer's, as in 1.0.0)
    v_domains := retail_mid.refresh_domains(from_date, to_date);

    DELETE FROM retail_mid.dws_refresh_state;
    INSERT INTO retail_mid.dws_refresh_state (brand, as_of, refreshed_at)
    SELECT brand, max(last_sale_date), now() FROM retail_mid.dws_trade_store_td GROUP BY brand;
    -- the brand scope of customers (foundation/tenancy.sql) and of the shared group tags' bitmaps (tags/brand_scope.sql),
    -- and the metric registry's generated tables (governance/metric.sql)
    v_customers := retail_mid.refresh_customer_brand();
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    t2 := clock_timestamp();
    RAISE NOTICE 'refresh: % customer-brand pairs; refreshing the metric registry', v_customers;
    v_metric := retail_mid.metric_refresh(from_date, to_date);
    RAISE NOTICE 'refresh: % metric rows written', v_metric;
    PERFORM retail_mid.job_finish(v_job, v_dwd + v_dws + v_metric,
        jsonb_build_object('dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'domain_rows', v_domains, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Rebuilds DWD and DWS (trade, then behaviour, marketing, inventory and members) for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';
