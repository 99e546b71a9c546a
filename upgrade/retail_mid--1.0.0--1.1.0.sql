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
    -- composite metrics are expressions of the window values (a ratio of sums, never a sum of ratios)
    FOR m IN SELECT c.metric, c.expression FROM retail_mid.metric_composite c WHERE c.granularity = g.granularity ORDER BY c.metric LOOP
        EXECUTE format('UPDATE %s SET %I = %s WHERE dt BETWEEN $1 AND $2', tbl, m.metric,
                       regexp_replace(m.expression, '\{([a-z][a-z0-9_]*)\}', '"\1"', 'g')) USING from_date, win_to;
    END LOOP;
    -- brand isolation and role grants, as for every table of the extension
    PERFORM retail_mid.secure_generated_table(t1d::regclass);
    PERFORM retail_mid.secure_generated_table(tbl::regclass);
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
    FOR m IN SELECT d.metric FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity ORDER BY d.metric LOOP
        RETURN QUERY EXECUTE format(
            'WITH direct AS (%s), stored AS (SELECT s.dt, %s AS dims, s.%I AS value FROM %s s WHERE s.dt BETWEEN $1 AND $2 AND s.%I IS NOT NULL) '
            'SELECT %L::text, coalesce(a.dt, b.dt), coalesce(a.dims, b.dims), a.value, b.value '
            'FROM stored a FULL JOIN direct b ON a.dt = b.dt AND a.dims = b.dims '
            'WHERE a.value IS DISTINCT FROM b.value ORDER BY 2, 3',
            retail_mid.metric_sql(m.metric, g.granularity, true), dimarr, m.metric, tbl, m.metric, m.metric)
            USING from_date, to_date;
    END LOOP;
END;
$$;
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
