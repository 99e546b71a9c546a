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

-- issue 16: one meaning for NOT, <>, NOT IN and NOT BETWEEN (the evaluator is C; only the description changes)
COMMENT ON FUNCTION retail_mid.audience(text, text) IS 'The customers matching a tag expression in the context of a brand: tags of scope brand are read with that brand''s values only (group tags and saved audiences as without a brand), and NOT is the complement within the brand''s customers. A brand the caller may not see is error 42501.';


-- issue 19: pii_create_masked_view only on the extension's tables (members of the extension in schema retail_mid), and
-- only for a session whose user is a member of retail_mid_admin or may read the table (SECURITY DEFINER, search_path
-- and grants repeated as in the install script)
CREATE OR REPLACE FUNCTION retail_mid.pii_create_masked_view(tbl regclass)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
    vname text;
    has_brand boolean;
    has_customer boolean;
    scope text := '';
    old_view regclass;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'pii_create_masked_view needs a table' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- only the extension's own tables: a member of the extension (created by its script), in its schema
    IF NOT EXISTS (SELECT 1 FROM pg_class c
                     JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.objsubid = 0 AND d.deptype = 'e'
                     JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'retail_mid'
                    WHERE c.oid = tbl AND c.relkind IN ('r', 'p') AND c.relnamespace = 'retail_mid'::regnamespace) THEN
        RAISE EXCEPTION '% is not a table of the retail_mid extension', tbl USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'This SECURITY DEFINER function makes masked views only for tables that belong to the extension (schema retail_mid).',
            HINT = 'Mask a table of your own with a view you create yourself.';
    END IF;
    -- the caller's rights (the session's user: inside a SECURITY DEFINER function current_user is the definer)
    IF NOT (pg_has_role(session_user, 'retail_mid_admin', 'MEMBER') OR has_table_privilege(session_user, tbl, 'SELECT')) THEN
        RAISE EXCEPTION 'permission denied to make a masked view of %', tbl USING ERRCODE = 'insufficient_privilege',
            DETAIL = format('Role %s is neither a member of retail_mid_admin nor allowed to read the table.', session_user);
    END IF;
    vname := format('%I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl),
                    (SELECT c.relname FROM pg_class c WHERE c.oid = tbl) || '_masked');
    old_view := to_regclass(vname);
    IF old_view IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = old_view AND c.relkind = 'v'
                                                AND c.relowner = 'retail_mid_view_owner'::regrole) THEN
        RAISE EXCEPTION '% exists and is not a masked view', vname USING ERRCODE = 'duplicate_table';
    END IF;
    IF old_view IS NULL AND NOT EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule r WHERE r.table_name = tbl) THEN
        RAISE EXCEPTION '% has no masking rule', tbl USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Add its rules to retail_mid.pii_mask_rule (which creates the view).';
    END IF;
    SELECT string_agg(CASE WHEN r.method IS NULL THEN format('t.%I', a.attname)
                           WHEN r.method = 'hash' THEN format('retail_mid.pii_mask(t.%I::text, %L) AS %I', a.attname, r.method, a.attname)
                           ELSE format('retail_mid.pii_mask(t.%I::text, %L)::%s AS %I', a.attname, r.method, format_type(a.atttypid, a.atttypmod), a.attname) END,
                      ', ' ORDER BY a.attnum),
           bool_or(a.attname = 'brand'), bool_or(a.attname = 'customer_key')
      INTO cols, has_brand, has_customer
      FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
    IF cols IS NULL THEN
        RAISE EXCEPTION '% has no columns', tbl USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT has_brand AND has_customer THEN
        scope := ' WHERE EXISTS (SELECT 1 FROM retail_mid.customer_brand cb WHERE cb.customer_key = t.customer_key)';
    END IF;
    -- dropped and created (not replaced): a hash rule changes the column's type to text
    IF old_view IS NOT NULL THEN
        EXECUTE format('DROP VIEW %s', vname);
    END IF;
    EXECUTE format('CREATE VIEW %s WITH (security_barrier = true) AS SELECT %s FROM %s AS t%s', vname, cols, tbl, scope);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_view_owner', tbl);
    IF scope <> '' THEN
        GRANT SELECT ON retail_mid.customer_brand TO retail_mid_view_owner;
    END IF;
    EXECUTE format('ALTER VIEW %s OWNER TO retail_mid_view_owner', vname);
    EXECUTE format('COMMENT ON VIEW %s IS %L', vname, format('%s with personal data masked by retail_mid.pii_mask_rule for non-members of retail_mid_pii_reader; %s',
                   tbl, CASE WHEN has_brand THEN 'brand-isolated by the table''s row-level security.'
                             WHEN has_customer THEN 'scoped to the customers of the caller''s brands.'
                             ELSE 'not brand-scoped (no brand or customer_key column): admins and pii_reader only.' END));
    -- the base table's column comments carry over, marked where the column is masked (BI tools show them)
    FOR cols IN SELECT format('COMMENT ON COLUMN %s.%I IS %L', vname, a.attname,
                              coalesce(col_description(tbl, a.attnum), a.attname) ||
                              CASE WHEN r.method IS NOT NULL THEN format(' Masked (%s) for non-members of retail_mid_pii_reader.', r.method) ELSE '' END)
                  FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
                 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE cols;
    END LOOP;
    -- the table itself: personal data, so only pii_reader members (and admins) read it directly
    EXECUTE format('REVOKE SELECT ON %s FROM retail_mid_analyst, retail_mid_bi', tbl);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_pii_reader, retail_mid_admin', tbl);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_admin, retail_mid_pii_reader', vname);
    IF has_brand OR has_customer THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst, retail_mid_bi', vname);
    END IF;
    RETURN vname;
END;
$$;
COMMENT ON FUNCTION retail_mid.pii_create_masked_view(regclass) IS 'Creates or replaces <table>_masked (owned by retail_mid_view_owner): personal data columns masked per pii_mask_rule, rows under the table''s row-level security or scoped to the caller''s brands'' customers; withdraws direct reads of the table from analysts and BI. SECURITY DEFINER (it hands the view to retail_mid_view_owner), only for the extension''s own tables (members of the extension in schema retail_mid) that have rules or a masked view, and only for a session whose user is a member of retail_mid_admin or may read the table; executable by retail_mid_admin.';
REVOKE EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) TO retail_mid_admin;

-- issue 15: the DIM layer (src/foundation/dim.sql), categories and region in the trade DWD and DWS, the BI contract
-- (added without a default, then filled and constrained, so the catalog equals a fresh install's)
ALTER TABLE retail_mid.ods_product ADD COLUMN attributes jsonb;
UPDATE retail_mid.ods_product SET attributes = '{}';
ALTER TABLE retail_mid.ods_product ALTER COLUMN attributes SET DEFAULT '{}', ALTER COLUMN attributes SET NOT NULL;
COMMENT ON COLUMN retail_mid.ods_product.attributes IS 'Further attributes as JSON (launch_date, status ... read by dim_product).';
-- ----------------------------------------------------------------- products
CREATE TABLE retail_mid.dim_product (
    brand         text NOT NULL,
    sku_id        text NOT NULL,
    valid_from    date NOT NULL,
    valid_to      date NOT NULL DEFAULT '9999-12-31',
    is_current    boolean NOT NULL DEFAULT true,
    sku_name      text,
    category_l1   text NOT NULL,
    category_l2   text NOT NULL,
    category_l3   text NOT NULL,
    category_l4   text NOT NULL,
    product_brand text NOT NULL,
    list_price    numeric(14,4),
    price_band    text NOT NULL CHECK (price_band IN ('low', 'mid', 'high', 'unknown')),
    package_size  text,
    launch_date   date,
    status        text NOT NULL,
    PRIMARY KEY (brand, sku_id, valid_from),
    CHECK (valid_from < valid_to)
);
CREATE UNIQUE INDEX ON retail_mid.dim_product (brand, sku_id) WHERE is_current;
COMMENT ON TABLE retail_mid.dim_product IS 'Products (SKUs), one row per version: the category (levels 1-4) keeps its history (SCD type 2, [valid_from, valid_to)), the other attributes are the current ones. Maintained by retail_mid.dim_refresh from ods_product.';

-- ----------------------------------------------------------------- sites and stores
CREATE TABLE retail_mid.dim_site (
    brand          text NOT NULL,
    site_id        text NOT NULL,
    valid_from     date NOT NULL,
    valid_to       date NOT NULL DEFAULT '9999-12-31',
    is_current     boolean NOT NULL DEFAULT true,
    site_name      text,
    site_type      text NOT NULL,
    region         text NOT NULL,
    city           text NOT NULL,
    floor_area     numeric,
    opened_on      date,
    closed_on      date,
    status         text NOT NULL CHECK (status IN ('open', 'closed', 'planned')),
    parent_site_id text,
    geom           geometry(Point, 4326),
    PRIMARY KEY (brand, site_id, valid_from),
    CHECK (valid_from < valid_to)
);
CREATE UNIQUE INDEX ON retail_mid.dim_site (brand, site_id) WHERE is_current;
COMMENT ON TABLE retail_mid.dim_site IS 'Stores and warehouses, one row per version: the region keeps its history (SCD type 2, [valid_from, valid_to)), the other attributes are the current ones. Maintained by retail_mid.dim_refresh from ods_site.';

CREATE VIEW retail_mid.dim_store AS
SELECT brand, site_id AS store_id, valid_from, valid_to, is_current, site_name AS store_name, region, city, floor_area,
       opened_on, closed_on, status, parent_site_id, geom
  FROM retail_mid.dim_site WHERE site_type = 'store';
COMMENT ON VIEW retail_mid.dim_store IS 'The stores of dim_site (site_type store), every version.';

-- ----------------------------------------------------------------- customers
CREATE TABLE retail_mid.dim_customer (
    brand            text NOT NULL,
    id_type          text NOT NULL,
    customer_id_hash text NOT NULL,
    customer_key     int4,
    gender           text NOT NULL,
    birth_year       int4,
    member_level     text NOT NULL,
    home_store_id    text,
    guide_id         text,
    register_channel text NOT NULL,
    register_date    date,
    city             text NOT NULL,
    province         text,
    country          text,
    PRIMARY KEY (brand, id_type, customer_id_hash)
);
CREATE INDEX ON retail_mid.dim_customer (customer_key);
COMMENT ON TABLE retail_mid.dim_customer IS 'Customers (members) of each brand with their current attributes (type 1): member level, home store, guide, register channel, city. Holds no personal data: no name, phone, e-mail or customer id (its md5 hash, as the hash masking rule shows it), the birth year only. Rebuilt by retail_mid.dim_refresh from ods_customer.';

-- ----------------------------------------------------------------- calendar
-- The retail calendar of the NRF (National Retail Federation) 4-5-4 convention: a fiscal year ends on the
-- Saturday nearest 31 January (of the next calendar year) and is named after the calendar year it starts in
-- (FY2023 = 2023-01-29 .. 2024-02-03). Its weeks run Sunday to Saturday; a year has 52 weeks, or 53 when the
-- nearest Saturday drifts (FY2012, FY2017, FY2023, FY2028 ...). Quarters have 13 weeks as months of 4, 5 and 4
-- weeks; a 53rd week belongs to the last month (January of the next calendar year), which then has 5 weeks.
CREATE FUNCTION retail_mid.nrf_fiscal_year_end(fiscal_year int4)
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.make_date(fiscal_year + 1, 1, 31)
           + ((9 - pg_catalog.date_part('dow', pg_catalog.make_date(fiscal_year + 1, 1, 31))::int4) % 7 - 3);
END;
COMMENT ON FUNCTION retail_mid.nrf_fiscal_year_end(int4) IS 'Last day of an NRF 4-5-4 fiscal year: the Saturday nearest 31 January of the next calendar year (FY2023 ends 2024-02-03).';

CREATE TABLE retail_mid.dim_calendar (
    date_key             date PRIMARY KEY,
    year                 int4 NOT NULL,
    quarter              int4 NOT NULL,
    month                int4 NOT NULL,
    month_name           text NOT NULL,
    day_of_month         int4 NOT NULL,
    day_of_year          int4 NOT NULL,
    iso_year             int4 NOT NULL,
    iso_week             int4 NOT NULL,
    iso_day_of_week      int4 NOT NULL,
    day_name             text NOT NULL,
    is_weekend           boolean NOT NULL,
    week_start           date NOT NULL,
    month_start          date NOT NULL,
    fiscal_year          int4 NOT NULL,
    fiscal_quarter       int4 NOT NULL,
    fiscal_month         int4 NOT NULL,
    fiscal_week          int4 NOT NULL,
    fiscal_day_of_week   int4 NOT NULL,
    fiscal_year_start    date NOT NULL,
    fiscal_year_end      date NOT NULL,
    fiscal_weeks_in_year int4 NOT NULL
);
COMMENT ON TABLE retail_mid.dim_calendar IS 'One row per day from 1980 to 2070 (retail_mid.dim_calendar_fill adds more): the Gregorian, ISO 8601 and NRF 4-5-4 retail calendars. Read dim_date, which adds the holidays.';

-- ISO weeks by the Thursday rule (the week belongs to the year of its Thursday), computed without extract(week)
-- so the test can compare the two.
CREATE FUNCTION retail_mid.dim_calendar_fill(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF from_date IS NULL OR to_date IS NULL OR from_date > to_date OR from_date < '1800-01-01' OR to_date > '2999-12-31' THEN
        RAISE EXCEPTION 'calendar range must be finite, ordered and between 1800 and 2999'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retail_mid.dim_calendar
    SELECT d, date_part('year', d), date_part('quarter', d), date_part('month', d), to_char(d, 'FMMonth'),
           date_part('day', d), date_part('doy', d),
           date_part('year', thu), (thu - make_date(date_part('year', thu)::int, 1, 1)) / 7 + 1, isodow,
           to_char(d, 'FMDay'), isodow >= 6, d - (isodow - 1), date_trunc('month', d)::date,
           fy, least((fw - 1) / 13, 3) + 1,
           3 * least((fw - 1) / 13, 3) + CASE WHEN fw - 13 * least((fw - 1) / 13, 3) <= 4 THEN 1
                                              WHEN fw - 13 * least((fw - 1) / 13, 3) <= 9 THEN 2 ELSE 3 END,
           fw, (d - fy_start) % 7 + 1, fy_start, retail_mid.nrf_fiscal_year_end(fy),
           (retail_mid.nrf_fiscal_year_end(fy) - fy_start + 1) / 7
      FROM generate_series(from_date, to_date, interval '1 day') g(ts),
           LATERAL (SELECT g.ts::date AS d, date_part('isodow', g.ts)::int AS isodow) a,
           LATERAL (SELECT a.d - a.isodow + 4 AS thu,
                           CASE WHEN a.d <= retail_mid.nrf_fiscal_year_end(date_part('year', a.d)::int - 1)
                                THEN date_part('year', a.d)::int - 1 ELSE date_part('year', a.d)::int END AS fy) b,
           LATERAL (SELECT retail_mid.nrf_fiscal_year_end(b.fy - 1) + 1 AS fy_start) c,
           LATERAL (SELECT (a.d - c.fy_start) / 7 + 1 AS fw) w
    ON CONFLICT (date_key) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.dim_calendar_fill(date, date) IS 'Adds the days of [from_date, to_date] missing from dim_calendar (1800-2999); returns the number added.';
SELECT retail_mid.dim_calendar_fill('1980-01-01', '2070-12-31');

CREATE TABLE retail_mid.dim_holiday (
    country      text NOT NULL CHECK (country ~ '^[A-Z]{2}$|^\*$'),
    holiday_date date NOT NULL,
    name         text NOT NULL CHECK (name <> ''),
    shipped      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (country, holiday_date, name)
);
COMMENT ON TABLE retail_mid.dim_holiday IS 'Holidays as data: add, change or delete rows (moveable feasts such as the Spring Festival, Easter or Thanksgiving, store-specific days). Ships the fixed-date public holidays of CN and US for 1980-2070 (shipped = true); pg_dump keeps the rows users add.';
INSERT INTO retail_mid.dim_holiday (country, holiday_date, name, shipped)
SELECT h.country, make_date(y, h.m, h.d), h.name, true
  FROM generate_series(1980, 2070) y,
       (VALUES ('CN', 1, 1, 'New Year''s Day'), ('CN', 5, 1, 'Labour Day'), ('CN', 10, 1, 'National Day'),
               ('CN', 10, 2, 'National Day holiday'), ('CN', 10, 3, 'National Day holiday'),
               ('US', 1, 1, 'New Year''s Day'), ('US', 7, 4, 'Independence Day'), ('US', 11, 11, 'Veterans Day'),
               ('US', 12, 25, 'Christmas Day')) h(country, m, d, name);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_holiday', 'WHERE NOT shipped');

CREATE VIEW retail_mid.dim_date AS
SELECT c.date_key, c.year, c.quarter, c.month, c.month_name, c.day_of_month, c.day_of_year, c.iso_year, c.iso_week,
       c.iso_day_of_week, c.day_name, c.is_weekend, c.week_start, c.month_start, c.fiscal_year, c.fiscal_quarter,
       c.fiscal_month, c.fiscal_week, c.fiscal_day_of_week, c.fiscal_year_start, c.fiscal_year_end, c.fiscal_weeks_in_year,
       h.holidays IS NOT NULL AS is_holiday, coalesce(h.holidays, '') AS holidays
  FROM retail_mid.dim_calendar c
  LEFT JOIN (SELECT holiday_date, string_agg(country || ': ' || name, '; ' ORDER BY country, name) AS holidays
               FROM retail_mid.dim_holiday GROUP BY holiday_date) h ON h.holiday_date = c.date_key;
COMMENT ON VIEW retail_mid.dim_date IS 'The calendar (dim_calendar) with the holidays of dim_holiday: Gregorian, ISO 8601 week and NRF 4-5-4 retail calendar attributes per day.';

-- ----------------------------------------------------------------- the state at a past date
CREATE FUNCTION retail_mid.dim_product_at(as_of date)
RETURNS SETOF retail_mid.dim_product LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT * FROM retail_mid.dim_product p WHERE p.valid_from <= as_of AND as_of < p.valid_to;
END;
COMMENT ON FUNCTION retail_mid.dim_product_at(date) IS 'Every product as it was on a date (the version valid then); brand-isolated like dim_product.';

CREATE FUNCTION retail_mid.dim_site_at(as_of date)
RETURNS SETOF retail_mid.dim_site LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT * FROM retail_mid.dim_site s WHERE s.valid_from <= as_of AND as_of < s.valid_to;
END;
COMMENT ON FUNCTION retail_mid.dim_site_at(date) IS 'Every site as it was on a date (the version valid then); brand-isolated like dim_site.';

-- ----------------------------------------------------------------- maintenance
-- Brings the dimensions up to date with the ODS. A change of a type-2 attribute seen by a refresh on day as_of
-- closes the current version on as_of and opens a new one from as_of (a second change the same day replaces it);
-- a key seen for the first time gets one version from 1900-01-01. Running it again without ODS changes changes
-- nothing. launch_date: attributes.launch_date of the ODS product, else the first order day seen by the refreshes
-- ([from_date, to_date], kept as the earliest). Returns the rows written.
CREATE FUNCTION retail_mid.dim_refresh(as_of date DEFAULT CURRENT_DATE, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) OR as_of <= '1900-01-01' OR as_of >= '9999-12-31' THEN
        RAISE EXCEPTION 'dim_refresh as_of must be a date after 1900-01-01 and before 9999-12-31'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- products
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    SELECT p.brand, p.sku_id, p.sku_name,
           coalesce(nullif(btrim(p.category_l1), ''), 'unknown') AS c1, coalesce(nullif(btrim(p.category_l2), ''), 'unknown') AS c2,
           coalesce(nullif(btrim(p.category_l3), ''), 'unknown') AS c3, coalesce(nullif(btrim(p.category_l4), ''), 'unknown') AS c4,
           coalesce(nullif(btrim(p.product_brand), ''), 'unknown') AS product_brand, p.list_price, p.package_size,
           CASE WHEN p.attributes ->> 'launch_date' ~ '^\d{4}-\d{2}-\d{2}$' THEN (p.attributes ->> 'launch_date')::date END AS launch_date,
           coalesce(nullif(btrim(p.attributes ->> 'status'), ''), 'active') AS status
      FROM retail_mid.ods_product p;
    -- a changed category closes the current version (or, changed again the same day, is replaced in place)
    UPDATE retail_mid.dim_product d SET valid_to = as_of, is_current = false
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current AND d.valid_from < as_of
       AND (d.category_l1, d.category_l2, d.category_l3, d.category_l4) IS DISTINCT FROM (s.c1, s.c2, s.c3, s.c4);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_product d SET category_l1 = s.c1, category_l2 = s.c2, category_l3 = s.c3, category_l4 = s.c4
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current
       AND (d.category_l1, d.category_l2, d.category_l3, d.category_l4) IS DISTINCT FROM (s.c1, s.c2, s.c3, s.c4);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO retail_mid.dim_product (brand, sku_id, valid_from, sku_name, category_l1, category_l2, category_l3, category_l4,
                                        product_brand, list_price, price_band, package_size, launch_date, status)
    SELECT s.brand, s.sku_id,
           CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_product o WHERE o.brand = s.brand AND o.sku_id = s.sku_id)
                THEN as_of ELSE date '1900-01-01' END,
           s.sku_name, s.c1, s.c2, s.c3, s.c4, s.product_brand, s.list_price, 'unknown', s.package_size, s.launch_date, s.status
      FROM rm_dim_src s
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.dim_product d WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    -- first sale days of the refreshed range
    IF from_date IS NOT NULL AND to_date IS NOT NULL THEN
        CREATE TEMP TABLE rm_dim_first ON COMMIT DROP AS
        SELECT l.brand, l.sku_id, min(o.order_time)::date AS first_day
          FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
         WHERE o.order_time >= from_date AND o.order_time < to_date + 1 AND l.quantity > 0
         GROUP BY l.brand, l.sku_id;
        UPDATE rm_dim_src s SET launch_date = least(f.first_day, d.launch_date)
          FROM rm_dim_first f, retail_mid.dim_product d
         WHERE s.launch_date IS NULL AND f.brand = s.brand AND f.sku_id = s.sku_id
           AND d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current;
        DROP TABLE rm_dim_first;
    END IF;
    -- type-1 attributes on every version; a product gone from the ODS is delisted
    UPDATE retail_mid.dim_product d
       SET sku_name = s.sku_name, product_brand = s.product_brand, list_price = s.list_price, package_size = s.package_size,
           launch_date = coalesce(s.launch_date, d.launch_date), status = s.status
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id
       AND (d.sku_name, d.product_brand, d.list_price, d.package_size, coalesce(s.launch_date, d.launch_date), d.status)
           IS DISTINCT FROM (s.sku_name, s.product_brand, s.list_price, s.package_size, d.launch_date, s.status);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_product d SET status = 'delisted'
     WHERE d.status <> 'delisted' AND NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.sku_id = d.sku_id);
    -- price band: tercile of the list price within brand x category level 1 (current versions)
    UPDATE retail_mid.dim_product d SET price_band = b.band
      FROM (SELECT p.brand, p.sku_id, CASE WHEN p.list_price IS NULL THEN 'unknown'
                                           ELSE (ARRAY['low', 'mid', 'high'])[ntile(3) OVER (PARTITION BY p.brand, p.category_l1, p.list_price IS NULL ORDER BY p.list_price)] END AS band
              FROM retail_mid.dim_product p WHERE p.is_current) b
     WHERE d.brand = b.brand AND d.sku_id = b.sku_id AND d.price_band IS DISTINCT FROM b.band;
    DROP TABLE rm_dim_src;

    -- sites: region = attributes.region, else attributes.province, else the name of the regional DC that serves it
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    WITH RECURSIVE up AS (
        SELECT s.brand, s.site_id, s.parent_site_id AS up_id, 0 AS depth FROM retail_mid.ods_site s
        UNION ALL
        SELECT u.brand, u.site_id, p.parent_site_id, u.depth + 1
          FROM up u JOIN retail_mid.ods_site p ON p.brand = u.brand AND p.site_id = u.up_id AND p.kind <> 'RDC'
         WHERE u.depth < 10),
    rdc AS (
        SELECT DISTINCT ON (u.brand, u.site_id) u.brand, u.site_id, coalesce(r.site_name, r.site_id) AS rdc_name
          FROM up u JOIN retail_mid.ods_site r ON r.brand = u.brand AND r.site_id = u.up_id AND r.kind = 'RDC'
         ORDER BY u.brand, u.site_id, u.depth)
    SELECT s.brand, s.site_id, s.site_name, s.kind,
           coalesce(nullif(btrim(s.attributes ->> 'region'), ''), nullif(btrim(s.attributes ->> 'province'), ''),
                    CASE WHEN s.kind = 'RDC' THEN coalesce(s.site_name, s.site_id) END, r.rdc_name, 'unknown') AS region,
           coalesce(nullif(btrim(s.city), ''), 'unknown') AS city, s.floor_area, s.opened_on, s.closed_on,
           CASE WHEN s.closed_on <= as_of THEN 'closed' WHEN s.opened_on > as_of THEN 'planned' ELSE 'open' END AS status,
           s.parent_site_id, s.geom
      FROM retail_mid.ods_site s LEFT JOIN rdc r ON r.brand = s.brand AND r.site_id = s.site_id;
    UPDATE retail_mid.dim_site d SET valid_to = as_of, is_current = false
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current AND d.valid_from < as_of AND d.region IS DISTINCT FROM s.region;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_site d SET region = s.region
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current AND d.region IS DISTINCT FROM s.region;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO retail_mid.dim_site (brand, site_id, valid_from, site_name, site_type, region, city, floor_area, opened_on,
                                     closed_on, status, parent_site_id, geom)
    SELECT s.brand, s.site_id,
           CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_site o WHERE o.brand = s.brand AND o.site_id = s.site_id)
                THEN as_of ELSE date '1900-01-01' END,
           s.site_name, s.kind, s.region, s.city, s.floor_area, s.opened_on, s.closed_on, s.status, s.parent_site_id, s.geom
      FROM rm_dim_src s
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.dim_site d WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_site d
       SET site_name = s.site_name, site_type = s.kind, city = s.city, floor_area = s.floor_area, opened_on = s.opened_on,
           closed_on = s.closed_on, status = s.status, parent_site_id = s.parent_site_id, geom = s.geom
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id
       AND (d.site_name, d.site_type, d.city, d.floor_area, d.opened_on, d.closed_on, d.status, d.parent_site_id, d.geom::bytea)
           IS DISTINCT FROM (s.site_name, s.kind, s.city, s.floor_area, s.opened_on, s.closed_on, s.status, s.parent_site_id, s.geom::bytea);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DELETE FROM retail_mid.dim_site d
     WHERE NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.site_id = d.site_id);
    DROP TABLE rm_dim_src;

    -- customers (type 1): rebuilt where changed
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    SELECT c.brand, c.id_type, md5(c.customer_id) AS customer_id_hash, k.customer_key, coalesce(c.gender, 'U') AS gender,
           date_part('year', c.birth_date)::int4 AS birth_year,
           coalesce(nullif(btrim(coalesce(c.attributes ->> 'member_level', c.attributes ->> 'level')), ''), 'member') AS member_level,
           c.home_store_id, coalesce(c.guide_id, nullif(btrim(c.attributes ->> 'guide_id'), '')) AS guide_id,
           coalesce(nullif(btrim(c.register_channel), ''), 'unknown') AS register_channel, c.register_time::date AS register_date,
           coalesce(nullif(btrim(c.city), ''), 'unknown') AS city, c.province, c.country
      FROM retail_mid.ods_customer c
      LEFT JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = btrim(c.customer_id);
    DELETE FROM retail_mid.dim_customer d
     WHERE NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE (s.brand, s.id_type, s.customer_id_hash, s.customer_key, s.gender, s.birth_year,
                               s.member_level, s.home_store_id, s.guide_id, s.register_channel, s.register_date, s.city,
                               s.province, s.country)
                             IS NOT DISTINCT FROM (d.brand, d.id_type, d.customer_id_hash, d.customer_key, d.gender, d.birth_year,
                               d.member_level, d.home_store_id, d.guide_id, d.register_channel, d.register_date, d.city,
                               d.province, d.country));
    INSERT INTO retail_mid.dim_customer
    SELECT * FROM rm_dim_src ON CONFLICT (brand, id_type, customer_id_hash) DO NOTHING;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DROP TABLE rm_dim_src;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.dim_refresh(date, date, date) IS 'Brings dim_product, dim_site and dim_customer up to date with the ODS (category and region changes seen on as_of open new versions from as_of); from_date/to_date: the refreshed order days, for first sale days. Idempotent; called by retail_mid.refresh; returns the rows written.';

-- Column documentation.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('dim_product', 'brand', 'Brand (tenant).'), ('dim_product', 'sku_id', 'SKU id.'),
        ('dim_product', 'valid_from', 'First day of this version (1900-01-01 for the first version).'),
        ('dim_product', 'valid_to', 'Day after the last day of this version (9999-12-31 for the current one).'),
        ('dim_product', 'is_current', 'Whether this is the current version.'), ('dim_product', 'sku_name', 'Product name.'),
        ('dim_product', 'category_l1', 'Category level 1 (department), ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'category_l2', 'Category level 2, ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'category_l3', 'Category level 3, ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'category_l4', 'Category level 4, ''unknown'' when the source has none; history kept.'),
        ('dim_product', 'product_brand', 'Manufacturer''s or private-label brand, ''unknown'' when the source has none.'),
        ('dim_product', 'list_price', 'Regular shelf price, NULL when the source has none.'),
        ('dim_product', 'price_band', 'low, mid or high: tercile of the list price within brand x category_l1 (current versions); unknown without a price.'),
        ('dim_product', 'package_size', 'Package size as text.'),
        ('dim_product', 'launch_date', 'Launch date: ods_product.attributes.launch_date, else the first day with a sale seen by refresh.'),
        ('dim_product', 'status', 'ods_product.attributes.status, else active; delisted when the product left the ODS.'),
        ('dim_site', 'brand', 'Brand (tenant).'), ('dim_site', 'site_id', 'Store or warehouse id.'),
        ('dim_site', 'valid_from', 'First day of this version (1900-01-01 for the first version).'),
        ('dim_site', 'valid_to', 'Day after the last day of this version (9999-12-31 for the current one).'),
        ('dim_site', 'is_current', 'Whether this is the current version.'), ('dim_site', 'site_name', 'Name.'),
        ('dim_site', 'site_type', 'store, CDC, RDC or FDC.'),
        ('dim_site', 'region', 'Region: ods_site.attributes.region, else attributes.province, else the name of the regional DC (RDC) that replenishes the site, else unknown; history kept.'),
        ('dim_site', 'city', 'City, ''unknown'' when the source has none.'), ('dim_site', 'floor_area', 'Selling area in m2.'),
        ('dim_site', 'opened_on', 'Opening date.'), ('dim_site', 'closed_on', 'Closing date, NULL while open.'),
        ('dim_site', 'status', 'open, closed (closed_on passed) or planned (opened_on in the future), as of the last dim_refresh.'),
        ('dim_site', 'parent_site_id', 'Site that replenishes this one.'), ('dim_site', 'geom', 'Location, WGS84 point.'),
        ('dim_store', 'brand', 'Brand (tenant).'), ('dim_store', 'store_id', 'Store id.'),
        ('dim_store', 'valid_from', 'First day of this version.'), ('dim_store', 'valid_to', 'Day after the last day of this version.'),
        ('dim_store', 'is_current', 'Whether this is the current version.'), ('dim_store', 'store_name', 'Name.'),
        ('dim_store', 'region', 'Region (see dim_site.region); history kept.'), ('dim_store', 'city', 'City.'),
        ('dim_store', 'floor_area', 'Selling area in m2.'), ('dim_store', 'opened_on', 'Opening date.'),
        ('dim_store', 'closed_on', 'Closing date, NULL while open.'), ('dim_store', 'status', 'open, closed or planned.'),
        ('dim_store', 'parent_site_id', 'Front or regional DC that replenishes the store.'), ('dim_store', 'geom', 'Location, WGS84 point.'),
        ('dim_customer', 'brand', 'Brand (tenant).'), ('dim_customer', 'customer_id_hash', 'md5 of the brand''s identifier of the customer (ods_customer.customer_id), the value the hash masking rule shows: stable for joins, not the identifier.'),
        ('dim_customer', 'id_type', 'Type of the customer''s identifier (member_id, phone, email ...).'), ('dim_customer', 'customer_key', 'Dense customer key (the key of the DWD and DWS), NULL until the customer is keyed (first order or identifier).'),
        ('dim_customer', 'gender', 'F, M or U (unknown).'), ('dim_customer', 'birth_year', 'Year of birth (the date itself is not kept).'),
        ('dim_customer', 'member_level', 'Membership level: ods_customer.attributes.member_level (or level), else member.'),
        ('dim_customer', 'home_store_id', 'Store the customer belongs to.'), ('dim_customer', 'guide_id', 'Shopping guide in charge (ods_customer.guide_id or attributes.guide_id).'),
        ('dim_customer', 'register_channel', 'Where the customer registered, unknown when the source does not say.'),
        ('dim_customer', 'register_date', 'Day the customer became a member.'), ('dim_customer', 'city', 'City, unknown when the source does not say.'),
        ('dim_customer', 'province', 'Province or state.'), ('dim_customer', 'country', 'Country.'),
        ('dim_calendar', 'date_key', 'The day.'), ('dim_calendar', 'year', 'Calendar year.'), ('dim_calendar', 'quarter', 'Calendar quarter 1-4.'),
        ('dim_calendar', 'month', 'Calendar month 1-12.'), ('dim_calendar', 'month_name', 'Month name (English).'),
        ('dim_calendar', 'day_of_month', 'Day of the month.'), ('dim_calendar', 'day_of_year', 'Day of the year 1-366.'),
        ('dim_calendar', 'iso_year', 'ISO 8601 week-numbering year (the year of the week''s Thursday).'),
        ('dim_calendar', 'iso_week', 'ISO 8601 week 1-53 (weeks start on Monday).'), ('dim_calendar', 'iso_day_of_week', 'ISO day of week, 1 = Monday .. 7 = Sunday.'),
        ('dim_calendar', 'day_name', 'Day name (English).'), ('dim_calendar', 'is_weekend', 'Saturday or Sunday.'),
        ('dim_calendar', 'week_start', 'Monday of the ISO week.'), ('dim_calendar', 'month_start', 'First day of the month.'),
        ('dim_calendar', 'fiscal_year', 'NRF 4-5-4 fiscal year, named after the calendar year it starts in.'),
        ('dim_calendar', 'fiscal_quarter', 'Fiscal quarter 1-4 (13 weeks; the 4th has 14 in a 53-week year).'),
        ('dim_calendar', 'fiscal_month', 'Fiscal month 1-12 (1 = February): 4, 5 and 4 weeks per quarter; month 12 has 5 weeks in a 53-week year.'),
        ('dim_calendar', 'fiscal_week', 'Fiscal week 1-53, Sunday to Saturday.'), ('dim_calendar', 'fiscal_day_of_week', 'Day of the fiscal week, 1 = Sunday .. 7 = Saturday.'),
        ('dim_calendar', 'fiscal_year_start', 'First day (a Sunday) of the fiscal year.'),
        ('dim_calendar', 'fiscal_year_end', 'Last day of the fiscal year: the Saturday nearest 31 January.'),
        ('dim_calendar', 'fiscal_weeks_in_year', '52, or 53 in a long year.'),
        ('dim_holiday', 'country', 'ISO 3166 country code, or * for every country.'), ('dim_holiday', 'holiday_date', 'The day.'),
        ('dim_holiday', 'name', 'Name of the holiday.'), ('dim_holiday', 'shipped', 'Row shipped with the extension (recreated at install; pg_dump keeps the others).'),
        ('dim_date', 'is_holiday', 'Whether dim_holiday has a holiday on the day (any country).'),
        ('dim_date', 'holidays', 'The day''s holidays as ''country: name'' separated by ''; '', empty when none.')) AS c(tbl, col, txt)
    LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.%I.%I IS %L', r.tbl, r.col, r.txt);
    END LOOP;
    -- dim_date repeats the calendar's columns
    FOR r IN SELECT a.attname, col_description('retail_mid.dim_calendar'::regclass, a.attnum) AS txt
               FROM pg_attribute a WHERE a.attrelid = 'retail_mid.dim_calendar'::regclass AND a.attnum > 0 LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.dim_date.%I IS %L', r.attname, r.txt);
    END LOOP;
END $$;

-- brand isolation, the calendar and the site candidates as reference data, grants (as governance/lockdown.sql does at install)
CREATE OR REPLACE FUNCTION retail_mid.security_reference_relations()
RETURNS regclass[] LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.array_agg(c.oid::regclass ORDER BY c.relname)
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'retail_mid'::regnamespace
       AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['metric_atomic', 'metric_qualifier', 'metric_period', 'metric_granularity',
                            'metric_derived', 'metric_composite', 'metric_coverage', 'pii_mask_rule', 'quality_template',
                            'quality_rule', 'quality_rule_version', 'rfm_segment_map', 'rfm_segment_map_def',
                            'tag_taxonomy', 'tag_definition', 'dim_calendar', 'dim_holiday', 'dim_date',
                            'site_candidate_ranking']::name[]);
END;
COMMENT ON FUNCTION retail_mid.security_reference_relations() IS 'The relations without a brand column that analysts and BI may read: definitions and settings, the calendar, the group''s site candidate ranking; no rows of any brand.';

CREATE OR REPLACE FUNCTION retail_mid.security_grant(rel regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    has_brand boolean;
    kind "char";
    reference boolean;
BEGIN
    SELECT c.relkind, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped)
      INTO kind, has_brand FROM pg_class c WHERE c.oid = rel;
    IF kind IN ('r', 'p') THEN
        EXECUTE format('GRANT ALL ON %s TO retail_mid_admin', rel);
    ELSE
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_admin', rel);
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule r WHERE r.table_name = rel) THEN
        RETURN;
    END IF;
    reference := rel = ANY (retail_mid.security_reference_relations());
    IF has_brand OR reference THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst', rel);
    ELSE
        EXECUTE format('REVOKE ALL ON %s FROM retail_mid_analyst, retail_mid_bi', rel);
    END IF;
    IF has_brand AND (kind IN ('v', 'm') OR rel::text LIKE 'retail\_mid.dws\_%')
       OR (has_brand OR reference) AND rel::text LIKE 'retail\_mid.dim\_%' THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', rel);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.security_grant(regclass) IS 'Grants a relation to retail_mid_admin, retail_mid_analyst and retail_mid_bi by the least-privilege rules (brand column or reference data for analysts; brand-bearing views, DWS and DIM tables and the calendar for BI).';

SELECT retail_mid.secure_brand_table(t) FROM unnest(ARRAY['retail_mid.dim_product', 'retail_mid.dim_site', 'retail_mid.dim_customer']::regclass[]) t;
ALTER VIEW retail_mid.dim_store SET (security_invoker = true);
ALTER VIEW retail_mid.dim_date SET (security_invoker = true);
SELECT retail_mid.security_grant(t) FROM unnest(ARRAY['retail_mid.dim_product', 'retail_mid.dim_site', 'retail_mid.dim_customer', 'retail_mid.dim_store',
    'retail_mid.dim_calendar', 'retail_mid.dim_holiday', 'retail_mid.dim_date']::regclass[]) t;

-- the trade DWD and DWS labelled with the categories and regions valid on their day, backfilled
ALTER TABLE retail_mid.dwd_trade_order_line_di ADD COLUMN category_l1 text, ADD COLUMN category_l2 text, ADD COLUMN store_region text;
ALTER TABLE retail_mid.dws_trade_sku_store_1d ADD COLUMN category_l1 text, ADD COLUMN category_l2 text, ADD COLUMN store_region text;
ALTER TABLE retail_mid.dws_trade_store_1d ADD COLUMN store_region text;
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.category_l1 IS 'Category level 1 of the SKU on the order date (dim_product version valid on dt); unknown when the product is not in the ODS.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.category_l2 IS 'Category level 2 of the SKU on the order date; unknown when the product is not in the ODS.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.store_region IS 'Region of the store on the order date (dim_site version valid on dt); unknown for a store not in the ODS, NULL for lines without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.category_l1 IS 'Category level 1 of the SKU on dt (dwd_trade_order_line_di.category_l1).';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.category_l2 IS 'Category level 2 of the SKU on dt.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.store_region IS 'Region of the store on dt (dim_site), NULL for store_id ''(none)''.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.store_region IS 'Region of the store on dt (dim_site), NULL for store_id ''(none)''.';
SELECT retail_mid.dim_refresh(CURRENT_DATE);
UPDATE retail_mid.dwd_trade_order_line_di x
   SET category_l1 = coalesce((SELECT p.category_l1 FROM retail_mid.dim_product p
                                WHERE p.brand = x.brand AND p.sku_id = x.sku_id AND p.valid_from <= x.dt AND x.dt < p.valid_to), 'unknown'),
       category_l2 = coalesce((SELECT p.category_l2 FROM retail_mid.dim_product p
                                WHERE p.brand = x.brand AND p.sku_id = x.sku_id AND p.valid_from <= x.dt AND x.dt < p.valid_to), 'unknown'),
       store_region = CASE WHEN x.store_id IS NOT NULL THEN
                          coalesce((SELECT s.region FROM retail_mid.dim_site s
                                     WHERE s.brand = x.brand AND s.site_id = x.store_id AND s.valid_from <= x.dt AND x.dt < s.valid_to), 'unknown') END;
UPDATE retail_mid.dws_trade_sku_store_1d k SET category_l1 = d.category_l1, category_l2 = d.category_l2, store_region = d.store_region
  FROM (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, sku_id, max(category_l1) AS category_l1, max(category_l2) AS category_l2,
               max(store_region) AS store_region
          FROM retail_mid.dwd_trade_order_line_di GROUP BY 1, 2, 3, 4) d
 WHERE k.dt = d.dt AND k.brand = d.brand AND k.store_id = d.store_id AND k.sku_id = d.sku_id;
UPDATE retail_mid.dws_trade_store_1d k SET store_region = d.store_region
  FROM (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, max(store_region) AS store_region
          FROM retail_mid.dwd_trade_order_line_di GROUP BY 1, 2, 3) d
 WHERE k.dt = d.dt AND k.brand = d.brand AND k.store_id = d.store_id;
CREATE OR REPLACE FUNCTION retail_mid.build_dwd_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    -- Customers first seen in this range get their keys before the lines refer to them.
    PERFORM retail_mid.assign_customer_keys(array_agg(o.id_type), array_agg(o.customer_id))
       FROM (SELECT DISTINCT o.id_type, btrim(o.customer_id) AS customer_id
               FROM retail_mid.ods_order o
              WHERE o.order_time >= from_date AND o.order_time < to_date + 1
                AND o.customer_id IS NOT NULL AND btrim(o.customer_id) <> '' AND o.id_type IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                                 WHERE k.id_type = o.id_type AND k.id_value = btrim(o.customer_id))) o;

    DELETE FROM retail_mid.dwd_trade_order_line_di WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dwd_trade_cleaning_1d WHERE dt BETWEEN from_date AND to_date;

    CREATE TEMP TABLE pg_temp.rm_dwd_lines ON COMMIT DROP AS
    SELECT o.order_time::date AS dt, o.brand, o.order_id, l.line_no, o.order_time, k.customer_key,
           o.store_id, o.channel, l.sku_id, l.quantity, l.unit_price, l.discount,
           coalesce(l.original_order_id, o.original_order_id) AS original_order_id,
           CASE WHEN row_number() OVER (PARTITION BY o.brand, o.order_id, l.sku_id, l.quantity, l.unit_price, l.discount
                                        ORDER BY l.line_no) > 1 THEN 'duplicate_line'
                WHEN l.unit_price = 0 THEN 'zero_price'
                WHEN l.unit_price < 0 THEN 'negative_price'
                WHEN l.quantity = 0 THEN 'zero_quantity'
           END AS dropped_by
      FROM retail_mid.ods_order o
      JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      LEFT JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.id_value = btrim(o.customer_id)
     WHERE o.order_time >= from_date AND o.order_time < to_date + 1;
    ANALYZE pg_temp.rm_dwd_lines;

    INSERT INTO retail_mid.dwd_trade_order_line_di
    SELECT x.dt, x.brand, x.order_id, x.line_no, x.order_time, x.customer_key, x.store_id, x.channel, x.sku_id, x.quantity, x.unit_price,
           x.discount, x.quantity * x.unit_price - x.discount,
           CASE WHEN x.quantity < 0 THEN 'return' ELSE 'sale' END, x.original_order_id,
           -- issue 15: categories and region as of the order date
           coalesce(p.category_l1, 'unknown'), coalesce(p.category_l2, 'unknown'),
           CASE WHEN x.store_id IS NOT NULL THEN coalesce(s.region, 'unknown') END
      FROM pg_temp.rm_dwd_lines x
      LEFT JOIN retail_mid.dim_product p ON p.brand = x.brand AND p.sku_id = x.sku_id AND p.valid_from <= x.dt AND x.dt < p.valid_to
      LEFT JOIN retail_mid.dim_site s ON s.brand = x.brand AND s.site_id = x.store_id AND s.valid_from <= x.dt AND x.dt < s.valid_to
     WHERE dropped_by IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO retail_mid.dwd_trade_cleaning_1d (dt, brand, rule, lines, amount)
    SELECT dt, brand, r.rule, count(*), coalesce(sum(quantity * unit_price), 0)
      FROM pg_temp.rm_dwd_lines,
           LATERAL (VALUES ('source_line', true),
                           (dropped_by, dropped_by IS NOT NULL),
                           ('kept_line', dropped_by IS NULL),
                           ('return_line', dropped_by IS NULL AND quantity < 0),
                           ('anonymous_line', dropped_by IS NULL AND customer_key IS NULL)) AS r(rule, applies)
     WHERE r.applies
     GROUP BY dt, brand, r.rule;

    DROP TABLE pg_temp.rm_dwd_lines;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dwd_trade(date, date) IS 'Rebuilds dwd_trade_order_line_di and dwd_trade_cleaning_1d for the given days from the ODS; called by retail_mid.refresh.';

CREATE OR REPLACE FUNCTION retail_mid.build_dws_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    CREATE TEMP TABLE rm_touched_customer ON COMMIT DROP AS
        SELECT DISTINCT brand, customer_key FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_sku_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;

    -- One pass over the DWD lines to orders: an order has one customer, store and day, so customer and store
    -- counts become plain sums over it and need no count(DISTINCT).
    CREATE TEMP TABLE rm_order ON COMMIT DROP AS
    SELECT dt, brand, order_id, customer_key, coalesce(store_id, '(none)') AS store_id,
           count(*) AS lines, sum(quantity) AS quantity,
           bool_or(line_type = 'sale') AS has_sale, bool_or(line_type = 'return') AS has_return,
           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount,
           min(order_time) AS order_time, max(store_region) AS store_region  -- issue 15
      FROM retail_mid.dwd_trade_order_line_di
     WHERE dt BETWEEN from_date AND to_date
     GROUP BY dt, brand, order_id, customer_key, coalesce(store_id, '(none)');
    ANALYZE rm_order;

    INSERT INTO retail_mid.dws_trade_customer_1d
    SELECT dt, brand, customer_key, count(*) FILTER (WHERE has_sale), count(*) FILTER (WHERE has_return),
           sum(lines), sum(quantity), sum(sales_amount), sum(return_amount), sum(sales_amount) - sum(return_amount),
           min(order_time), max(order_time)
      FROM rm_order WHERE customer_key IS NOT NULL
     GROUP BY dt, brand, customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    INSERT INTO retail_mid.dws_trade_store_1d
    SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, sales_amount, return_amount,
           sales_amount - return_amount, retail_mid.rb_cardinality(b), b, store_region
      FROM (SELECT dt, brand, store_id, max(store_region) AS store_region, count(*) FILTER (WHERE has_sale) AS orders,
                   count(*) FILTER (WHERE has_sale AND customer_key IS NULL) AS anonymous_orders,
                   count(*) FILTER (WHERE has_return) AS return_orders, sum(lines) AS lines, sum(quantity) AS quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE has_sale), '{}') AS b
              FROM rm_order GROUP BY dt, brand, store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- SKU lines are first summed per order, so that an order counts once per SKU.
    INSERT INTO retail_mid.dws_trade_sku_store_1d
    SELECT dt, brand, store_id, sku_id, orders, sales_quantity - return_quantity, sales_quantity, return_quantity,
           sales_amount, return_amount, sales_amount - return_amount, retail_mid.rb_cardinality(b), b,
           category_l1, category_l2, store_region  -- issue 15
      FROM (SELECT dt, brand, store_id, sku_id, max(category_l1) AS category_l1, max(category_l2) AS category_l2,
                   max(store_region) AS store_region, count(*) FILTER (WHERE sales_quantity > 0) AS orders,
                   sum(sales_quantity) AS sales_quantity, sum(return_quantity) AS return_quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE sales_quantity > 0), '{}') AS b
              FROM (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, sku_id, order_id, customer_key,
                           max(category_l1) AS category_l1, max(category_l2) AS category_l2, max(store_region) AS store_region,
                           coalesce(sum(quantity) FILTER (WHERE line_type = 'sale'), 0) AS sales_quantity,
                           coalesce(-sum(quantity) FILTER (WHERE line_type = 'return'), 0) AS return_quantity,
                           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
                           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount
                      FROM retail_mid.dwd_trade_order_line_di
                     WHERE dt BETWEEN from_date AND to_date
                     GROUP BY dt, brand, coalesce(store_id, '(none)'), sku_id, order_id, customer_key) per_order
             GROUP BY dt, brand, store_id, sku_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- To-date rows of every touched key, recomputed from the _1d history.
    INSERT INTO rm_touched_customer SELECT DISTINCT brand, customer_key FROM rm_order WHERE customer_key IS NOT NULL;
    INSERT INTO rm_touched_store SELECT DISTINCT brand, store_id FROM rm_order;
    INSERT INTO rm_touched_sku_store
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;

    DELETE FROM retail_mid.dws_trade_customer_td t USING (SELECT DISTINCT * FROM rm_touched_customer) k
     WHERE t.brand = k.brand AND t.customer_key = k.customer_key;
    INSERT INTO retail_mid.dws_trade_customer_td
    SELECT d.brand, d.customer_key, min(dt), max(dt), sum(orders), sum(return_orders), count(*), sum(quantity),
           sum(sales_amount), sum(return_amount), sum(net_amount),
           min(dt) FILTER (WHERE orders > 0), max(dt) FILTER (WHERE orders > 0)
      FROM retail_mid.dws_trade_customer_1d d
      JOIN (SELECT DISTINCT * FROM rm_touched_customer) k ON k.brand = d.brand AND k.customer_key = d.customer_key
     GROUP BY d.brand, d.customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_sku_store_td t USING (SELECT DISTINCT * FROM rm_touched_sku_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id AND t.sku_id = k.sku_id;
    INSERT INTO retail_mid.dws_trade_sku_store_td
    SELECT d.brand, d.store_id, d.sku_id, min(dt), max(dt), count(*), sum(orders), sum(quantity), sum(net_amount),
           retail_mid.rb_cardinality(retail_mid.rb_or_agg(buyer_bitmap))
      FROM retail_mid.dws_trade_sku_store_1d d
      JOIN (SELECT DISTINCT * FROM rm_touched_sku_store) k
        ON k.brand = d.brand AND k.store_id = d.store_id AND k.sku_id = d.sku_id
     GROUP BY d.brand, d.store_id, d.sku_id;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_store_td t USING (SELECT DISTINCT * FROM rm_touched_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id;
    INSERT INTO retail_mid.dws_trade_store_td
    SELECT brand, store_id, first_sale_date, last_sale_date, orders, net_amount, retail_mid.rb_cardinality(b), b
      FROM (SELECT d.brand, d.store_id, min(dt) AS first_sale_date, max(dt) AS last_sale_date, sum(orders) AS orders,
                   sum(net_amount) AS net_amount, retail_mid.rb_or_agg(customer_bitmap) AS b
              FROM retail_mid.dws_trade_store_1d d
              JOIN (SELECT DISTINCT * FROM rm_touched_store) k ON k.brand = d.brand AND k.store_id = d.store_id
             GROUP BY d.brand, d.store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DROP TABLE rm_order, rm_touched_customer, rm_touched_sku_store, rm_touched_store;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dws_trade(date, date) IS 'Rebuilds the trade _1d tables for the given days and the _td rows they touch; called by retail_mid.refresh.';

CREATE OR REPLACE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dim bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
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

    -- issue 15: the dimensions first (the DWD labels lines with the categories and regions valid on their day)
    v_dim := retail_mid.dim_refresh(CURRENT_DATE, from_date, to_date);
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
        jsonb_build_object('dim_rows', v_dim, 'dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Brings the DIM layer up to date, rebuilds DWD and DWS for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';

-- BI contract: fulfilment_atp gains its brand and, like reach_touch and site_candidate_ranking, is owned by the view owner and read by analysts and BI
CREATE OR REPLACE VIEW retail_mid.fulfilment_atp AS
SELECT s.location_id, l.kind, s.sku_id, s.on_hand, s.reserved, s.on_hand - s.reserved AS atp, l.brand
  FROM retail_mid.fulfilment_stock s JOIN retail_mid.fulfilment_location l USING (location_id);
COMMENT ON COLUMN retail_mid.fulfilment_atp.brand IS 'Brand of the location (rows of the caller''s brands only).';
ALTER VIEW retail_mid.reach_touch SET (security_invoker = false);
ALTER VIEW retail_mid.fulfilment_atp SET (security_invoker = false);
ALTER VIEW retail_mid.site_candidate_ranking SET (security_invoker = false);
ALTER VIEW retail_mid.reach_touch OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.fulfilment_atp OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.site_candidate_ranking OWNER TO retail_mid_view_owner;
REVOKE ALL ON retail_mid.reach_touch, retail_mid.fulfilment_atp, retail_mid.site_candidate_ranking FROM retail_mid_admin, retail_mid_analyst, retail_mid_bi;
GRANT SELECT ON retail_mid.reach_touch, retail_mid.fulfilment_atp, retail_mid.site_candidate_ranking TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
GRANT SELECT ON retail_mid.reach_outbox, retail_mid.reach_plan TO retail_mid_bi;
GRANT SELECT ON retail_mid.reach_outbox, retail_mid.reach_plan, retail_mid.fulfilment_stock, retail_mid.fulfilment_location,
                retail_mid.site_candidate, retail_mid.site_candidate_score TO retail_mid_view_owner;


-- issue 19: customer keys namespaced by issuer
-- Identifiers a brand issues itself (member_id, customer_id, household_id, open_id) are keyed per issuer, the brand:
-- customer "12346" of two brands are two customers with two keys. Phone, email and device_id stay shared (issuer '').
-- Schema and routines first, then the data: keys of brand-issued identifiers used by several brands are split.
-- (added without a default and filled, then given it: a fast default would leave a stored "missing value" a fresh
-- install does not have)
ALTER TABLE retail_mid.customer_key ADD COLUMN issuer text;
UPDATE retail_mid.customer_key SET issuer = '';
ALTER TABLE retail_mid.customer_key ALTER COLUMN issuer SET DEFAULT '', ALTER COLUMN issuer SET NOT NULL;
ALTER TABLE retail_mid.customer_key DROP CONSTRAINT customer_key_id_type_id_value_key;
ALTER TABLE retail_mid.customer_key ADD CONSTRAINT customer_key_id_type_issuer_id_value_key UNIQUE (id_type, issuer, id_value);
ALTER TABLE retail_mid.customer_key ADD CONSTRAINT customer_key_issuer_check CHECK (issuer = '' OR id_type NOT IN ('phone', 'email', 'device_id'));
COMMENT ON TABLE retail_mid.customer_key IS 'Dictionary from source customer identifiers (type, issuer, value) to dense int4 keys; a key, once given, never changes.';
COMMENT ON COLUMN retail_mid.customer_key.issuer IS 'Namespace of the identifier: the brand that issued it for member_id, customer_id, household_id and open_id; '''' for phone, email and device_id (the same person in every brand), and for brand-issued identifiers given a key without a brand (no issuer known).';

CREATE FUNCTION retail_mid.customer_key_issuer(id_type text, brand text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN id_type IN ('phone', 'email', 'device_id') THEN '' ELSE coalesce(brand, '') END;
COMMENT ON FUNCTION retail_mid.customer_key_issuer(text, text) IS 'Issuer (namespace) of an identifier seen in a brand''s data: '''' for phone, email and device_id, the brand for member_id, customer_id, household_id and open_id ('''' when the brand is NULL). Join an ODS row to its key on (id_type, customer_key_issuer(id_type, brand), id_value).';

CREATE OR REPLACE FUNCTION retail_mid.assign_customer_keys(id_types text[], id_values text[], brands text[])
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF coalesce(array_length(id_types, 1), 0) <> coalesce(array_length(id_values, 1), 0)
       OR (brands IS NOT NULL AND coalesce(array_length(brands, 1), 0) <> coalesce(array_length(id_types, 1), 0)) THEN
        RAISE EXCEPTION 'id_types, id_values and brands must have the same length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(id_types) t
                WHERE t IS NULL OR t NOT IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')) THEN
        RAISE EXCEPTION 'unknown customer identifier type'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use member_id, phone, email, device_id, open_id, household_id or customer_id.';
    END IF;
    INSERT INTO retail_mid.customer_key (id_type, issuer, id_value)
    SELECT DISTINCT u.t, retail_mid.customer_key_issuer(u.t, u.b), btrim(u.v)
      FROM unnest(id_types, id_values, coalesce(brands, array_fill(NULL::text, ARRAY[coalesce(array_length(id_types, 1), 0)])))
           AS u(t, v, b)
     WHERE u.v IS NOT NULL AND btrim(u.v) <> ''
       AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                        WHERE k.id_type = u.t AND k.issuer = retail_mid.customer_key_issuer(u.t, u.b) AND k.id_value = btrim(u.v))
     ORDER BY 1, 2, 3
    ON CONFLICT (id_type, issuer, id_value) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

COMMENT ON FUNCTION retail_mid.assign_customer_keys(text[], text[], text[]) IS 'Gives a dense int4 key to each new identifier (id_type, the issuer customer_key_issuer(id_type, brand), id_value); brands may be NULL (no issuer); returns how many keys were created.';

CREATE OR REPLACE FUNCTION retail_mid.assign_customer_keys(id_types text[], id_values text[])
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN retail_mid.assign_customer_keys(id_types, id_values, NULL::text[]);
COMMENT ON FUNCTION retail_mid.assign_customer_keys(text[], text[]) IS 'Gives a dense int4 key to each new identifier without an issuer (issuer ''''): the form for phone, email and device_id; pass brands (assign_customer_keys(text[], text[], text[])) for brand-issued identifiers. Returns how many keys were created.';

-- Looks the key of one identifier of a brand up, creating it when missing.
CREATE FUNCTION retail_mid.customer_key_of(id_type text, id_value text, brand text)
RETURNS int4 LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE k int4; v_issuer text := retail_mid.customer_key_issuer(id_type, brand);
BEGIN
    SELECT c.customer_key INTO k FROM retail_mid.customer_key c
     WHERE c.id_type = customer_key_of.id_type AND c.issuer = v_issuer AND c.id_value = btrim(customer_key_of.id_value);
    IF k IS NULL THEN
        PERFORM retail_mid.assign_customer_keys(ARRAY[id_type], ARRAY[id_value], ARRAY[brand]);
        SELECT c.customer_key INTO k FROM retail_mid.customer_key c
         WHERE c.id_type = customer_key_of.id_type AND c.issuer = v_issuer AND c.id_value = btrim(customer_key_of.id_value);
    END IF;
    RETURN k;
END;
$$;

COMMENT ON FUNCTION retail_mid.assign_customer_keys(text[], text[]) IS 'Gives a dense int4 key to each new identifier without an issuer (issuer ''''): the form for phone, email and device_id; pass brands (assign_customer_keys(text[], text[], text[])) for brand-issued identifiers. Returns how many keys were created.';

CREATE OR REPLACE FUNCTION retail_mid.customer_key_of(id_type text, id_value text, brand text)
RETURNS int4 LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE k int4; v_issuer text := retail_mid.customer_key_issuer(id_type, brand);
BEGIN
    SELECT c.customer_key INTO k FROM retail_mid.customer_key c
     WHERE c.id_type = customer_key_of.id_type AND c.issuer = v_issuer AND c.id_value = btrim(customer_key_of.id_value);
    IF k IS NULL THEN
        PERFORM retail_mid.assign_customer_keys(ARRAY[id_type], ARRAY[id_value], ARRAY[brand]);
        SELECT c.customer_key INTO k FROM retail_mid.customer_key c
         WHERE c.id_type = customer_key_of.id_type AND c.issuer = v_issuer AND c.id_value = btrim(customer_key_of.id_value);
    END IF;
    RETURN k;
END;
$$;

COMMENT ON FUNCTION retail_mid.customer_key_of(text, text, text) IS 'The customer key of an identifier seen in a brand''s data (brand-issued types are namespaced by the brand), created on first use.';

CREATE OR REPLACE FUNCTION retail_mid.customer_key_of(id_type text, id_value text)
RETURNS int4 LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE k int4[]; v text := btrim(id_value);
BEGIN
    SELECT array_agg(c.customer_key ORDER BY c.issuer <> '', c.issuer) INTO k FROM retail_mid.customer_key c
     WHERE c.id_type = customer_key_of.id_type AND c.id_value = v;
    IF cardinality(k) > 1 AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key c
                                           WHERE c.customer_key = k[1] AND c.issuer = '') THEN
        RAISE EXCEPTION 'customer identifier % "%" was issued by several brands', id_type, v
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Issuers: %s.', (SELECT string_agg(c.issuer, ', ' ORDER BY c.issuer) FROM retail_mid.customer_key c
                                                    WHERE c.id_type = customer_key_of.id_type AND c.id_value = v)),
                  HINT = 'Pass the brand: customer_key_of(id_type, id_value, brand).';
    END IF;
    RETURN coalesce(k[1], retail_mid.customer_key_of(id_type, id_value, ''));
END;
$$;

COMMENT ON FUNCTION retail_mid.customer_key_of(text, text) IS 'The customer key of an identifier without a brand: phone, email and device_id; for a brand-issued type the key without an issuer, else the key of the only brand that issued the value (error 22023 when several did); created without an issuer on first use.';

CREATE OR REPLACE FUNCTION retail_mid.build_dwd_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    -- Customers first seen in this range get their keys before the lines refer to them.
    PERFORM retail_mid.assign_customer_keys(array_agg(o.id_type), array_agg(o.customer_id), array_agg(o.brand))
       FROM (SELECT DISTINCT o.id_type, btrim(o.customer_id) AS customer_id, o.brand
               FROM retail_mid.ods_order o
              WHERE o.order_time >= from_date AND o.order_time < to_date + 1
                AND o.customer_id IS NOT NULL AND btrim(o.customer_id) <> '' AND o.id_type IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                                 WHERE k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                   AND k.id_value = btrim(o.customer_id))) o;

    DELETE FROM retail_mid.dwd_trade_order_line_di WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dwd_trade_cleaning_1d WHERE dt BETWEEN from_date AND to_date;

    CREATE TEMP TABLE pg_temp.rm_dwd_lines ON COMMIT DROP AS
    SELECT o.order_time::date AS dt, o.brand, o.order_id, l.line_no, o.order_time, k.customer_key,
           o.store_id, o.channel, l.sku_id, l.quantity, l.unit_price, l.discount,
           coalesce(l.original_order_id, o.original_order_id) AS original_order_id,
           CASE WHEN row_number() OVER (PARTITION BY o.brand, o.order_id, l.sku_id, l.quantity, l.unit_price, l.discount
                                        ORDER BY l.line_no) > 1 THEN 'duplicate_line'
                WHEN l.unit_price = 0 THEN 'zero_price'
                WHEN l.unit_price < 0 THEN 'negative_price'
                WHEN l.quantity = 0 THEN 'zero_quantity'
           END AS dropped_by
      FROM retail_mid.ods_order o
      JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      LEFT JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                         AND k.id_value = btrim(o.customer_id)
     WHERE o.order_time >= from_date AND o.order_time < to_date + 1;
    ANALYZE pg_temp.rm_dwd_lines;

    INSERT INTO retail_mid.dwd_trade_order_line_di
    SELECT dt, brand, order_id, line_no, order_time, customer_key, store_id, channel, sku_id, quantity, unit_price,
           discount, quantity * unit_price - discount,
           CASE WHEN quantity < 0 THEN 'return' ELSE 'sale' END, original_order_id
      FROM pg_temp.rm_dwd_lines WHERE dropped_by IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO retail_mid.dwd_trade_cleaning_1d (dt, brand, rule, lines, amount)
    SELECT dt, brand, r.rule, count(*), coalesce(sum(quantity * unit_price), 0)
      FROM pg_temp.rm_dwd_lines,
           LATERAL (VALUES ('source_line', true),
                           (dropped_by, dropped_by IS NOT NULL),
                           ('kept_line', dropped_by IS NULL),
                           ('return_line', dropped_by IS NULL AND quantity < 0),
                           ('anonymous_line', dropped_by IS NULL AND customer_key IS NULL)) AS r(rule, applies)
     WHERE r.applies
     GROUP BY dt, brand, r.rule;

    DROP TABLE pg_temp.rm_dwd_lines;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.refresh_customer_brand()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    CREATE TEMP TABLE rm_customer_brand ON COMMIT DROP AS
    SELECT c.brand, k.customer_key FROM retail_mid.ods_customer c
      JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                    AND k.id_value = c.customer_id
    UNION
    SELECT i.brand, k.customer_key FROM retail_mid.ods_customer_identifier i
      JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.issuer = retail_mid.customer_key_issuer(i.id_type, i.brand)
                                    AND k.id_value = i.id_value
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

CREATE OR REPLACE FUNCTION retail_mid.resolve_identities()
RETURNS TABLE (identifiers bigint, persons bigint, merges bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; v_changed bigint; v_merges bigint;
BEGIN
    v_job := retail_mid.job_start('resolve_identities');
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.resolve_identities'));
    PERFORM retail_mid.assign_customer_keys(array_agg(id_type), array_agg(id_value), array_agg(brand))
       FROM (SELECT DISTINCT id_type, id_value, brand FROM retail_mid.ods_customer_identifier
             UNION SELECT DISTINCT id_type, customer_id, brand FROM retail_mid.ods_customer) i;
    CREATE TEMP TABLE rm_component ON COMMIT DROP AS
    SELECT unnest((g.cc).nodes) AS node, unnest((g.cc).components) AS component  -- in the target list: no tuplestore
      FROM (SELECT retail_mid.connected_components(a, b) AS cc FROM retail_mid.oneid_edges) g;
    -- identifiers with no edge are persons of their own
    INSERT INTO rm_component
    SELECT k.customer_key, k.customer_key FROM retail_mid.customer_key k
     WHERE NOT EXISTS (SELECT 1 FROM rm_component c WHERE c.node = k.customer_key);
    ANALYZE rm_component;
    RAISE NOTICE 'resolve_identities: % identifiers in % components', (SELECT count(*) FROM rm_component),
        (SELECT count(DISTINCT component) FROM rm_component);

    -- the person of a component: the smallest person key its identifiers already have, else its label
    CREATE TEMP TABLE rm_person ON COMMIT DROP AS
    SELECT c.component, coalesce(min(m.person_key), c.component) AS person_key
      FROM rm_component c LEFT JOIN retail_mid.oneid_person_map m ON m.customer_key = c.node
     GROUP BY c.component;
    INSERT INTO retail_mid.oneid_merge_log (kept_person_key, merged_person_key, identifiers)
    SELECT p.person_key, m.person_key, count(*)
      FROM rm_component c JOIN rm_person p USING (component)
      JOIN retail_mid.oneid_person_map m ON m.customer_key = c.node
     WHERE m.person_key <> p.person_key
     GROUP BY p.person_key, m.person_key;
    GET DIAGNOSTICS v_merges = ROW_COUNT;
    INSERT INTO retail_mid.oneid_person_map AS m (customer_key, person_key)
    SELECT c.node, p.person_key FROM rm_component c JOIN rm_person p USING (component)
    ON CONFLICT (customer_key) DO UPDATE SET person_key = excluded.person_key, updated_at = now()
     WHERE m.person_key IS DISTINCT FROM excluded.person_key;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    PERFORM retail_mid.job_finish(v_job, v_changed, jsonb_build_object('merges', v_merges));
    RETURN QUERY SELECT (SELECT count(*) FROM retail_mid.oneid_person_map),
                        (SELECT count(DISTINCT person_key) FROM retail_mid.oneid_person_map), v_merges;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.load_online_retail(path text, brand text DEFAULT 'online_retail', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    v_job := retail_mid.job_start('load_online_retail', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, invoice text, stock_code text,
        description text, quantity text, invoice_date text, unit_price text, customer_id text, country text,
        reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage',
        'invoice, stock_code, description, quantity, invoice_date, unit_price, customer_id, country');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(invoice, 'text') THEN 'missing InvoiceNo'
        WHEN retail_mid.invalid_field(stock_code, 'text') THEN 'missing StockCode'
        WHEN retail_mid.invalid_field(quantity, 'integer') THEN 'Quantity is not an integer'
        WHEN retail_mid.invalid_field(unit_price, 'number') THEN 'UnitPrice is not a number'
        WHEN retail_mid.invalid_field(invoice_date, 'timestamp') THEN 'InvoiceDate is not a timestamp'
        WHEN customer_id IS NOT NULL AND customer_id !~ '^\s*\d+(\.0*)?\s*$' THEN 'CustomerID is not a number' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('online_retail', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    ALTER TABLE rm_stage ADD COLUMN cid text, ADD COLUMN ts timestamp;
    UPDATE rm_stage SET cid = nullif(split_part(btrim(customer_id), '.', 1), ''), ts = invoice_date::timestamp,
                        invoice = btrim(invoice), stock_code = upper(btrim(stock_code));

    INSERT INTO retail_mid.ods_product AS p (brand, sku_id, sku_name, list_price, load_id)
    SELECT DISTINCT ON (stock_code) load_online_retail.brand, stock_code, btrim(description), NULL::numeric, v_load
      FROM rm_stage ORDER BY stock_code, (description IS NULL), line_no DESC
    ON CONFLICT ON CONSTRAINT ods_product_pkey DO UPDATE SET sku_name = coalesce(excluded.sku_name, p.sku_name), load_id = excluded.load_id;

    INSERT INTO retail_mid.ods_customer AS c (brand, customer_id, id_type, country, load_id)
    SELECT DISTINCT ON (cid) load_online_retail.brand, cid, 'customer_id', country, v_load
      FROM rm_stage WHERE cid IS NOT NULL ORDER BY cid, line_no DESC
    ON CONFLICT ON CONSTRAINT ods_customer_pkey DO UPDATE SET country = excluded.country, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, load_id)
    SELECT DISTINCT load_online_retail.brand, cid, 'customer_id', cid, v_load FROM rm_stage WHERE cid IS NOT NULL
    ON CONFLICT DO NOTHING;
    PERFORM retail_mid.assign_customer_keys(array_agg('customer_id'::text), array_agg(cid), array_agg(load_online_retail.brand))
       FROM (SELECT DISTINCT cid FROM rm_stage WHERE cid IS NOT NULL) c;

    DELETE FROM retail_mid.ods_order_line l USING (SELECT DISTINCT invoice FROM rm_stage) s
     WHERE l.brand = load_online_retail.brand AND l.order_id = s.invoice;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, country, load_id)
    SELECT DISTINCT ON (invoice) load_online_retail.brand, invoice, CASE WHEN cid IS NOT NULL THEN 'customer_id' END, cid, ts,
           'online', NULL, CASE WHEN invoice LIKE 'C%' THEN 'cancelled' ELSE 'paid' END, country, v_load
      FROM rm_stage ORDER BY invoice, line_no
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE
       SET id_type = excluded.id_type, customer_id = excluded.customer_id, order_time = excluded.order_time,
           status = excluded.status, country = excluded.country, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_online_retail.brand, invoice, row_number() OVER (PARTITION BY invoice ORDER BY line_no), stock_code,
           quantity::numeric, unit_price::numeric, 0, v_load
      FROM rm_stage;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_customer, retail_mid.ods_customer_identifier, retail_mid.ods_order, retail_mid.ods_order_line;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
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
    PERFORM retail_mid.assign_customer_keys(array_agg('household_id'::text), array_agg(customer_id), array_agg(load_complete_journey.brand))
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

CREATE OR REPLACE FUNCTION retail_mid.load_cdnow(path text, brand text DEFAULT 'cdnow', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    v_job := retail_mid.job_start('load_cdnow', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, masterid text, sampleid text, date text,
        cds text, sales text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'masterid, sampleid, date, cds, sales');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(masterid, 'integer') THEN 'masterid is not an integer'
        WHEN retail_mid.invalid_field(date, 'yyyymmdd') OR to_char(to_date(date, 'YYYYMMDD'), 'YYYYMMDD') <> btrim(date)
             THEN 'date is not a valid YYYYMMDD date'
        WHEN retail_mid.invalid_field(cds, 'integer') OR cds::int < 0 THEN 'cds is not a non-negative integer'
        WHEN retail_mid.invalid_field(sales, 'number') OR sales::numeric < 0 THEN 'sales is not a non-negative number' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('cdnow', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    -- A customer can have several rows on one day: the order id numbers them.
    ALTER TABLE rm_stage ADD COLUMN order_id text;
    UPDATE rm_stage s SET order_id = x.id
      FROM (SELECT line_no, btrim(masterid) || '-' || btrim(date) || '-' ||
                   row_number() OVER (PARTITION BY btrim(masterid), btrim(date) ORDER BY line_no) AS id FROM rm_stage) x
     WHERE x.line_no = s.line_no;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, load_id)
    VALUES (load_cdnow.brand, 'CD', 'Compact discs', v_load) ON CONFLICT DO NOTHING;
    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, load_id)
    SELECT DISTINCT load_cdnow.brand, btrim(masterid), 'customer_id', v_load FROM rm_stage ON CONFLICT DO NOTHING;
    PERFORM retail_mid.assign_customer_keys(array_agg('customer_id'::text), array_agg(m), array_agg(load_cdnow.brand))
       FROM (SELECT DISTINCT btrim(masterid) AS m FROM rm_stage) s;
    DELETE FROM retail_mid.ods_order_line l USING rm_stage s WHERE l.brand = load_cdnow.brand AND l.order_id = s.order_id;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, id_type, customer_id, order_time, channel, status, load_id)
    SELECT load_cdnow.brand, order_id, 'customer_id', btrim(masterid), to_date(date, 'YYYYMMDD')::timestamp, 'catalogue', 'paid', v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE SET load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_cdnow.brand, order_id, 1, 'CD', cds::int, up, CASE WHEN cds::int = 0 THEN 0 ELSE up * cds::int - sales::numeric END, v_load
      FROM (SELECT *, CASE WHEN cds::int = 0 THEN sales::numeric ELSE round(sales::numeric / cds::int, 4) END AS up FROM rm_stage) s;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_customer, retail_mid.ods_order, retail_mid.ods_order_line;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.generate_synthetic(
    seed bigint DEFAULT 42, customers int DEFAULT 5000, days int DEFAULT 365, orders_per_day int DEFAULT 300,
    stores int DEFAULT 12, skus int DEFAULT 400, start_date date DEFAULT '2024-01-01', dirty_rate float8 DEFAULT 0.01,
    with_events boolean DEFAULT true, brand text DEFAULT 'synthetic')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_job bigint; v_load bigint; v_lines bigint; v_orders bigint; v_events bigint := 0; b text := brand;
    s bigint := seed;
BEGIN
    IF seed IS NULL OR customers IS NULL OR days IS NULL OR orders_per_day IS NULL OR stores IS NULL OR skus IS NULL
       OR start_date IS NULL OR dirty_rate IS NULL OR with_events IS NULL OR brand IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF customers < 1 OR days < 1 OR orders_per_day < 1 OR stores < 1 OR skus < 1 THEN
        RAISE EXCEPTION 'customers, days, orders_per_day, stores and skus must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF days > 3660 OR customers > 100000000 OR skus > 10000000 OR stores > 100000 OR orders_per_day > 10000000 THEN
        RAISE EXCEPTION 'generate_synthetic size out of range'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'At most 3660 days, 1e8 customers, 1e7 SKUs, 1e5 stores.';
    END IF;
    IF NOT (dirty_rate >= 0 AND dirty_rate <= 0.5) THEN
        RAISE EXCEPTION 'dirty_rate must be between 0 and 0.5' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('generate_synthetic', jsonb_build_object('seed', seed, 'customers', customers, 'days', days,
        'orders_per_day', orders_per_day, 'stores', stores, 'skus', skus, 'dirty_rate', dirty_rate, 'brand', brand));

    DELETE FROM retail_mid.ods_order_line WHERE brand = b;   DELETE FROM retail_mid.ods_order WHERE brand = b;
    DELETE FROM retail_mid.ods_behavior_event WHERE brand = b; DELETE FROM retail_mid.ods_campaign_touch WHERE brand = b;
    DELETE FROM retail_mid.ods_campaign WHERE brand = b;     DELETE FROM retail_mid.ods_promotion WHERE brand = b;
    DELETE FROM retail_mid.ods_inventory_snapshot WHERE brand = b; DELETE FROM retail_mid.ods_inbound_shipment WHERE brand = b;
    DELETE FROM retail_mid.ods_customer_identifier WHERE brand = b; DELETE FROM retail_mid.ods_customer WHERE brand = b;
    DELETE FROM retail_mid.ods_product WHERE brand = b;      DELETE FROM retail_mid.ods_site WHERE brand = b;
    DELETE FROM retail_mid.ods_demand_zone WHERE brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic', 'seed=' || seed, b) RETURNING load_id INTO v_load;

    RAISE NOTICE 'generate_synthetic: sites, zones, % products, % customers', skus, customers;
    -- Sites around one city centre (Shanghai): stores, one CDC, two RDCs, one FDC per four stores.
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, floor_area, city, parent_site_id, load_id)
    SELECT b, 'S' || lpad(i::text, 4, '0'), 'Store ' || i, 'store',
           ST_SetSRID(ST_MakePoint(121.47 + 0.3 * sqrt(u1) * cos(2 * pi() * u2), 31.23 + 0.25 * sqrt(u1) * sin(2 * pi() * u2)), 4326),
           start_date - (30 + floor(u3 * 2000))::int, round((200 + 1800 * u3)::numeric, 0), 'Shanghai',
           'FDC' || lpad((1 + (i - 1) / 4)::text, 3, '0'), v_load
      FROM generate_series(1, stores) i,
           LATERAL (SELECT retail_mid.synth_uniform(s, 1, i) u1, retail_mid.synth_uniform(s, 2, i) u2, retail_mid.synth_uniform(s, 3, i) u3) u;
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, city, parent_site_id, load_id)
    VALUES (b, 'CDC01', 'Central DC', 'CDC', ST_SetSRID(ST_MakePoint(121.20, 31.10), 4326), start_date - 3000, 'Shanghai', NULL, v_load),
           (b, 'RDC01', 'Regional DC north', 'RDC', ST_SetSRID(ST_MakePoint(121.45, 31.40), 4326), start_date - 2500, 'Shanghai', 'CDC01', v_load),
           (b, 'RDC02', 'Regional DC south', 'RDC', ST_SetSRID(ST_MakePoint(121.50, 31.05), 4326), start_date - 2500, 'Shanghai', 'CDC01', v_load);
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, city, parent_site_id, load_id)
    SELECT b, 'FDC' || lpad(f::text, 3, '0'), 'Front DC ' || f, 'FDC', ST_Centroid(ST_Collect(geom)), min(opened_on), 'Shanghai',
           CASE WHEN f % 2 = 0 THEN 'RDC01' ELSE 'RDC02' END, v_load
      FROM retail_mid.ods_site, LATERAL (SELECT substr(parent_site_id, 4)::int AS f) x
     WHERE brand = b AND kind = 'store' GROUP BY f;
    INSERT INTO retail_mid.ods_demand_zone (brand, zone_id, zone_name, geom, population, households, income, load_id)
    SELECT b, 'Z' || lpad(i::text, 4, '0'), 'Zone ' || i,
           ST_SetSRID(ST_MakePoint(121.47 + 0.4 * (retail_mid.synth_uniform(s, 4, i) - 0.5) * 2,
                                   31.23 + 0.35 * (retail_mid.synth_uniform(s, 5, i) - 0.5) * 2), 4326),
           round((2000 + 18000 * retail_mid.synth_uniform(s, 6, i))::numeric), round((800 + 7000 * retail_mid.synth_uniform(s, 6, i))::numeric),
           round((40000 + 80000 * retail_mid.synth_uniform(s, 7, i))::numeric), v_load
      FROM generate_series(1, greatest(50, stores * 10)) i;

    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, category_l3, category_l4, product_brand, list_price, load_id)
    SELECT b, 'P' || lpad(i::text, 6, '0'), 'Product ' || i, c1, c1 || ' ' || (1 + i % 4), c1 || ' ' || (1 + i % 4) || '.' || (1 + i % 3),
           c1 || ' ' || (1 + i % 4) || '.' || (1 + i % 3) || '.' || (1 + i % 2), 'Brand ' || (1 + i % 25),
           round(exp(1.0 + 2.6 * retail_mid.synth_uniform(s, 8, i))::numeric, 2), v_load
      FROM generate_series(1, skus) i,
           LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[1 + i % 5] AS c1) c;

    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, name, gender, birth_date, phone, email, city, province,
                                         register_time, register_channel, home_store_id, load_id)
    SELECT b, 'M' || lpad(i::text, 8, '0'), 'member_id', 'Customer ' || i,
           CASE WHEN u1 < 0.55 THEN 'F' WHEN u1 < 0.98 THEN 'M' ELSE 'U' END,
           date '1950-01-01' + floor(u2 * 18000)::int, '1' || lpad((3800000000 + i)::text, 10, '0'), 'c' || i || '@example.com',
           'Shanghai', 'Shanghai', start_date - floor(u3 * 1500)::int + time '10:00',
           (ARRAY['store', 'app', 'mini_program', 'web'])[1 + floor(u3 * 4)::int],
           'S' || lpad((1 + floor(retail_mid.synth_uniform(s, 11, i) * stores))::text, 4, '0'), v_load
      FROM generate_series(1, customers) i,
           LATERAL (SELECT retail_mid.synth_uniform(s, 9, i) u1, retail_mid.synth_uniform(s, 10, i) u2, retail_mid.synth_uniform(s, 12, i) u3) u;
    -- Identifiers: every member id, most phones, some e-mails, devices and WeChat open ids; 2% of customers share a
    -- device with the next customer (households), which gives the identity graph real merges.
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, seen_at, load_id)
    SELECT b, c.customer_id, t.id_type, t.id_value, c.register_time, v_load
      FROM retail_mid.ods_customer c,
           LATERAL (SELECT substr(c.customer_id, 2)::bigint AS i) k,
           LATERAL (VALUES ('member_id', c.customer_id, true),
                           ('phone', c.phone, retail_mid.synth_uniform(s, 13, k.i) < 0.8),
                           ('email', c.email, retail_mid.synth_uniform(s, 14, k.i) < 0.5),
                           ('device_id', 'D' || CASE WHEN retail_mid.synth_uniform(s, 15, k.i - 1) < 0.02 THEN k.i - 1 ELSE k.i END,
                            retail_mid.synth_uniform(s, 16, k.i) < 0.6 OR retail_mid.synth_uniform(s, 15, k.i - 1) < 0.02),
                           ('open_id', 'wx' || md5(s || ':' || k.i), retail_mid.synth_uniform(s, 17, k.i) < 0.4)) AS t(id_type, id_value, present)
     WHERE c.brand = b AND t.present;
    PERFORM retail_mid.assign_customer_keys(array_agg('member_id'::text), array_agg(customer_id), array_agg(b))
       FROM retail_mid.ods_customer WHERE brand = b;

    RAISE NOTICE 'generate_synthetic: orders over % days', days;
    -- Orders per day: weekday profile x yearly wave x noise. Each order draws a customer (synth_customer); when
    -- that customer is not active on the day (not acquired yet, or churned), a second draw is tried, and when
    -- that one is not active either the order stays anonymous.
    CREATE TEMP TABLE rm_syn_order ON COMMIT DROP AS
    SELECT o, d, c,
           CASE WHEN c IS NOT NULL AND retail_mid.synth_uniform(s, 22, o) < 0.8
                THEN 1 + floor(retail_mid.synth_uniform(s, 11, c) * stores)::int
                ELSE 1 + floor(retail_mid.synth_uniform(s, 27, o) * stores)::int END AS store,
           retail_mid.synth_uniform(s, 23, o) AS u_channel,
           1 + least(19, floor(-ln(1 - retail_mid.synth_uniform(s, 24, o)) * 1.7))::int AS n_lines,
           start_date + d + make_interval(secs => 28800 + floor(46800 * retail_mid.synth_uniform(s, 25, o))) AS ts
      FROM (SELECT o, d, CASE WHEN c1 IS NOT NULL AND retail_mid.synth_is_active(s, c1, d, days) THEN c1
                              WHEN c2 IS NOT NULL AND retail_mid.synth_is_active(s, c2, d, days) THEN c2 END AS c
              FROM (SELECT d * 10000000::bigint + k AS o, d,
                           retail_mid.synth_customer(s, 20, d * 10000000::bigint + k, customers) AS c1,
                           retail_mid.synth_customer(s, 28, d * 10000000::bigint + k, customers) AS c2
                      FROM generate_series(0, days - 1) d,
                           LATERAL generate_series(1, greatest(1, round(orders_per_day
                                * (ARRAY[1.2, 0.85, 0.85, 0.9, 0.95, 1.1, 1.3])[1 + extract(dow FROM start_date + d)::int] / 1.0214
                                * (1 + 0.25 * sin(2 * pi() * (extract(doy FROM start_date + d) - 80) / 365.25))
                                * (0.9 + 0.2 * retail_mid.synth_uniform(s, 26, d))))::int) k) draws) x;
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, load_id)
    SELECT b, 'O' || o, CASE WHEN c IS NOT NULL THEN 'member_id' END, 'M' || lpad(c::text, 8, '0'), ts,
           CASE WHEN u_channel < 0.7 THEN 'store' WHEN u_channel < 0.9 THEN 'online' ELSE 'app' END,
           'S' || lpad(store::text, 4, '0'), 'paid', v_load
      FROM rm_syn_order;
    GET DIAGNOSTICS v_orders = ROW_COUNT;

    -- Lines: Zipf-like SKU choice; a SKU x store x week is on promotion with probability 0.06 (20% off, about
    -- twice the units). Dirt: exact duplicate lines, zero and negative prices, each at a third of dirty_rate.
    CREATE TEMP TABLE rm_syn_line ON COMMIT DROP AS
    SELECT o.o, j, o.d, x.sku, o.store, p.list_price,
           retail_mid.synth_uniform(s, 31, (x.sku::bigint * 100003 + o.store) * 1000 + o.d / 7) < 0.06 AS promo,
           retail_mid.synth_uniform(s, 32, o.o * 32 + j) AS u_qty, retail_mid.synth_uniform(s, 33, o.o * 32 + j) AS u_dirt
      FROM rm_syn_order o
      JOIN LATERAL generate_series(1, o.n_lines) j ON true
      CROSS JOIN LATERAL (SELECT 1 + ((floor(skus * power(retail_mid.synth_uniform(s, 30, o.o * 32 + j), 2.5))::bigint + (j - 1) * 7919) % skus)::int AS sku) x
      JOIN retail_mid.ods_product p ON p.brand = b AND p.sku_id = 'P' || lpad(x.sku::text, 6, '0');
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT b, 'O' || o, j + CASE WHEN dup THEN 100 ELSE 0 END, 'P' || lpad(sku::text, 6, '0'),
           1 + floor(-ln(1 - u_qty) * CASE WHEN promo THEN 1.6 ELSE 0.8 END),
           CASE WHEN u_dirt < dirty_rate / 3 THEN 0
                WHEN u_dirt < dirty_rate / 3 * 1.1 THEN -list_price
                WHEN promo THEN round(list_price * 0.8, 2) ELSE list_price END,
           0, v_load
      FROM rm_syn_line, LATERAL (VALUES (false), (true)) AS dd(dup)
     WHERE NOT dup OR u_dirt > 1 - dirty_rate / 3;
    GET DIAGNOSTICS v_lines = ROW_COUNT;

    INSERT INTO retail_mid.ods_promotion (brand, sku_id, store_id, start_date, end_date, promo_price, display, feature, load_id)
    SELECT DISTINCT ON (sku, store, d / 7) b, 'P' || lpad(sku::text, 6, '0'), 'S' || lpad(store::text, 4, '0'),
           start_date + (d / 7) * 7, start_date + (d / 7) * 7 + 6, round(list_price * 0.8, 2),
           retail_mid.synth_uniform(s, 34, sku) < 0.5, retail_mid.synth_uniform(s, 35, sku) < 0.3, v_load
      FROM rm_syn_line WHERE promo ORDER BY sku, store, d / 7;

    -- Returns: 2% of identified orders send their first line back 1 to 14 days later (within the period).
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, original_order_id, load_id)
    SELECT b, 'R' || substr(o.order_id, 2), o.id_type, o.customer_id,
           o.order_time + make_interval(days => 1 + floor(14 * retail_mid.synth_uniform(s, 41, substr(o.order_id, 2)::bigint))::int),
           o.channel, o.store_id, 'returned', o.order_id, v_load
      FROM retail_mid.ods_order o
     WHERE o.brand = b AND o.status = 'paid' AND o.customer_id IS NOT NULL
       AND retail_mid.synth_uniform(s, 40, substr(o.order_id, 2)::bigint) < 0.02
       AND o.order_time + interval '15 days' < start_date + days;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, original_order_id, original_line_no, load_id)
    SELECT b, r.order_id, 1, l.sku_id, -l.quantity, l.unit_price, 0, l.order_id, 1, v_load
      FROM retail_mid.ods_order r JOIN retail_mid.ods_order_line l ON l.brand = b AND l.order_id = r.original_order_id AND l.line_no = 1
     WHERE r.brand = b AND r.status = 'returned' AND l.unit_price > 0;

    IF with_events THEN
        RAISE NOTICE 'generate_synthetic: behaviour events';
        -- Every identified purchase is preceded by views and a cart event of its SKUs and followed by a purchase event;
        -- on top, exposures, clicks, searches and favourites for random customers, so that the funnel has non-buyers.
        INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, event_count, amount, load_id)
        SELECT b, 'member_id', 'M' || lpad(o.c::text, 8, '0'), o.ts - make_interval(mins => e.before_min), e.event_type,
               'sku_id', 'P' || lpad(l.sku::text, 6, '0'), CASE WHEN o.u_channel < 0.7 THEN 'store' ELSE 'app' END,
               e.cnt, CASE WHEN e.event_type = 'purchase' THEN l.list_price END, v_load
          FROM rm_syn_order o JOIN rm_syn_line l ON l.o = o.o AND l.j = 1,
               LATERAL (VALUES ('exposure', 1440, 1 + floor(3 * l.u_qty)::int), ('click', 1400, 1), ('view', 30, 1 + floor(2 * l.u_dirt)::int),
                               ('cart', 10, 1), ('purchase', 0, 1)) AS e(event_type, before_min, cnt)
         WHERE o.c IS NOT NULL;
        INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, event_count, load_id)
        SELECT b, 'member_id', 'M' || lpad(c::text, 8, '0'), start_date + d + time '12:00', et, 'sku_id',
               'P' || lpad((1 + floor(skus * retail_mid.synth_uniform(s, 52, i))::int)::text, 6, '0'),
               (ARRAY['app', 'web', 'media'])[1 + floor(3 * retail_mid.synth_uniform(s, 53, i))::int], 1, v_load
          FROM generate_series(0, days - 1) d,
               LATERAL generate_series(1, greatest(1, customers / 50)) k,
               LATERAL (SELECT d::bigint * 10000000 + k AS i) ii,
               LATERAL (SELECT 1 + floor(customers * retail_mid.synth_uniform(s, 50, i))::int AS c,
                               retail_mid.synth_uniform(s, 51, i) AS u) cu,
               LATERAL (VALUES ('exposure', true), ('click', u < 0.3), ('search', u < 0.15), ('favorite', u < 0.05),
                               ('follow', u < 0.01), ('review', u > 0.995), ('share', u > 0.99)) AS e(et, present)
         WHERE present;
        SELECT count(*) INTO v_events FROM retail_mid.ods_behavior_event WHERE brand = b;
    END IF;

    -- Campaigns: three, each sent to a share of customers; some are exposed, click and redeem.
    INSERT INTO retail_mid.ods_campaign (brand, campaign_id, name, kind, start_date, end_date, load_id)
    SELECT b, 'C' || i, 'Campaign ' || i, (ARRAY['coupon', 'newsletter', 'media'])[i], start_date + i * days / 4, start_date + i * days / 4 + 14, v_load
      FROM generate_series(1, 3) i;
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, load_id)
    SELECT b, 'C' || i, 'member_id', 'M' || lpad(c::text, 8, '0'), (ARRAY['sms', 'email', 'media'])[i],
           start_date + i * days / 4 + time '09:00', t.touch_type, v_load
      FROM generate_series(1, 3) i, generate_series(1, customers) c,
           LATERAL (SELECT retail_mid.synth_uniform(s, 60 + i, c) AS u) uu,
           LATERAL (VALUES ('sent', u < 0.3), ('exposed', u < 0.2), ('clicked', u < 0.06), ('redeemed', u < 0.02)) AS t(touch_type, present)
     WHERE present;

    -- Stock at the end of the period for every store x SKU that sold, and weekly replenishment from the RDCs.
    INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, on_order, reserved, load_id)
    SELECT b, 'S' || lpad(store::text, 4, '0'), 'P' || lpad(sku::text, 6, '0'), start_date + days - 1,
           floor(40 * retail_mid.synth_uniform(s, 70, sku::bigint * 100003 + store)), 0, 0, v_load
      FROM (SELECT DISTINCT store, sku FROM rm_syn_line) x;
    INSERT INTO retail_mid.ods_inbound_shipment (brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, expected_on, received_on, quantity, load_id)
    SELECT b, 'SH' || w || '-' || store, 'S' || lpad(store::text, 4, '0'), 'P' || lpad(sku::text, 6, '0'),
           CASE WHEN store % 2 = 0 THEN 'RDC01' ELSE 'RDC02' END, start_date + w * 7, start_date + w * 7 + 3,
           start_date + w * 7 + 2 + floor(5 * retail_mid.synth_uniform(s, 71, w::bigint * 100003 + store))::int,
           1 + floor(30 * retail_mid.synth_uniform(s, 72, (w::bigint * 100003 + store) * 1000 + sku)), v_load
      FROM generate_series(0, days / 7 - 1) w, generate_series(1, stores) store,
           LATERAL (SELECT DISTINCT 1 + floor(skus * power(retail_mid.synth_uniform(s, 73, (w::bigint * 100003 + store) * 100 + q), 2.5))::int AS sku
                      FROM generate_series(1, 5) q) k;

    UPDATE retail_mid.ods_load SET rows_read = v_lines, rows_loaded = v_lines WHERE load_id = v_load;
    DROP TABLE rm_syn_order, rm_syn_line;
    RAISE NOTICE 'generate_synthetic: % orders, % lines, % behaviour events', v_orders, v_lines, v_events;
    PERFORM retail_mid.job_finish(v_job, v_lines, jsonb_build_object('orders', v_orders, 'lines', v_lines, 'events', v_events));
    RETURN v_lines;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.load_media_feedback(path text, brand text DEFAULT 'media', max_rejected bigint DEFAULT 0,
                                               refresh_tags boolean DEFAULT true)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; v_tags text[];
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_rejected IS NULL OR max_rejected < 0 THEN
        RAISE EXCEPTION 'max_rejected must be zero or positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('load_media_feedback', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_media (line_no bigint GENERATED ALWAYS AS IDENTITY, id_type text, id_value text, event_time text,
        event_type text, campaign_id text, media text, event_count text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_media', 'id_type, id_value, event_time, event_type, campaign_id, media, event_count');
    UPDATE rm_media SET id_type = lower(btrim(id_type)), event_type = lower(btrim(event_type));
    UPDATE rm_media SET reason = CASE
        WHEN id_type IS NULL OR id_type NOT IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')
             THEN 'unknown id_type'
        WHEN retail_mid.invalid_field(id_value, 'text') THEN 'missing id_value'
        WHEN retail_mid.invalid_field(event_time, 'timestamp') THEN 'event_time is not a timestamp'
        WHEN event_type IS NULL OR event_type NOT IN ('exposure', 'impression', 'click') THEN 'event_type is not exposure, impression or click'
        WHEN event_count IS NOT NULL AND btrim(event_count) <> '' AND (event_count !~ '^\s*\d{1,9}\s*$' OR event_count::int = 0)
             THEN 'event_count is not a positive integer' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_media');
    SELECT count(*) INTO v_loaded FROM rm_media;
    v_load := retail_mid.finish_load('media_feedback', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    -- reloading a file replaces its rows
    DELETE FROM retail_mid.ods_behavior_event e USING retail_mid.ods_load l
     WHERE e.load_id = l.load_id AND l.source = 'media_feedback' AND l.path = load_media_feedback.path
       AND l.brand = load_media_feedback.brand AND e.brand = load_media_feedback.brand AND l.load_id <> v_load;
    PERFORM retail_mid.assign_customer_keys(array_agg(id_type), array_agg(btrim(id_value)), array_agg(load_media_feedback.brand)) FROM rm_media;
    INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value,
                                              channel, event_count, load_id)
    SELECT load_media_feedback.brand, id_type, btrim(id_value), btrim(event_time)::timestamp,
           CASE event_type WHEN 'click' THEN 'click' ELSE 'exposure' END,
           CASE WHEN nullif(btrim(campaign_id), '') IS NOT NULL THEN 'campaign' END, nullif(btrim(campaign_id), ''),
           coalesce(nullif(lower(btrim(media)), ''), 'media'), coalesce(nullif(btrim(event_count), '')::int, 1), v_load
      FROM rm_media ORDER BY line_no;
    DROP TABLE rm_media;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    IF refresh_tags THEN
        -- the tag rules are planned next: without statistics that include this load, their joins can be
        -- planned as if the new rows did not exist
        ANALYZE retail_mid.ods_behavior_event, retail_mid.customer_key;
        SELECT array_agg(t.tag_name ORDER BY t.tag_name) INTO v_tags FROM retail_mid.tag_definition t
         WHERE t.enabled AND t.rule_sql ~* 'ods_behavior_event';
        IF v_tags IS NOT NULL THEN
            PERFORM retail_mid.evaluate_tags(v_tags);
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.define_campaign_tags(brand text, prefix text DEFAULT '')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prefix IS NULL OR prefix ~ '[\s"'']' THEN
        RAISE EXCEPTION 'tag name prefix must not be NULL or contain spaces or quotes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.ods_campaign c WHERE c.brand = define_campaign_tags.brand)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.ods_campaign_touch t WHERE t.brand = define_campaign_tags.brand) THEN
        RAISE EXCEPTION 'brand "%" has no campaigns', brand USING ERRCODE = 'undefined_object';
    END IF;
    -- touch identifiers without a key get one (Complete Journey: households that received a campaign but have no
    -- baskets and no demographics are in no other file)
    PERFORM retail_mid.assign_customer_keys(array_agg(t.id_type), array_agg(t.id_value), array_agg(t.brand))
       FROM (SELECT DISTINCT x.id_type, x.id_value, x.brand FROM retail_mid.ods_campaign_touch x
              WHERE x.brand = define_campaign_tags.brand) t;
    INSERT INTO retail_mid.tag_definition AS d (tag_name, level1, level2, level3, level4, value_type, rule_sql, description, schedule, scope)
    SELECT prefix || kind || '_' || regexp_replace(c.campaign_id, '[\s"'']', '_', 'g'),
           '客户行为数据', '营销行为', CASE kind WHEN 'received' THEN '活动参与和偏好' ELSE '营销响应' END, '', 'boolean',
           format($r$SELECT k.customer_key, true, t.brand FROM retail_mid.ods_campaign_touch t
                      JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                                    AND k.id_value = btrim(t.id_value)
                     WHERE t.brand = %L AND t.campaign_id = %L AND t.touch_type IN (%s) GROUP BY t.brand, k.customer_key$r$,
                  brand, c.campaign_id, CASE kind WHEN 'received' THEN '''sent'', ''exposed''' ELSE '''redeemed''' END),
           format('%s campaign %s of brand %s.', CASE kind WHEN 'received' THEN 'Received (sent or exposed)' ELSE 'Redeemed a coupon of' END,
                  c.campaign_id, brand),
           'manual', 'brand'
      FROM (SELECT campaign_id FROM retail_mid.ods_campaign WHERE ods_campaign.brand = define_campaign_tags.brand
            UNION SELECT campaign_id FROM retail_mid.ods_campaign_touch WHERE ods_campaign_touch.brand = define_campaign_tags.brand) c
     CROSS JOIN (VALUES ('received'), ('redeemed')) v(kind)
    ON CONFLICT (tag_name) DO UPDATE SET rule_sql = excluded.rule_sql, description = excluded.description,
                                         value_type = excluded.value_type, scope = excluded.scope,
                                         shared_with_brands = false;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;

CREATE OR REPLACE VIEW retail_mid.oneid_edges WITH (security_invoker = true) AS
SELECT p.customer_key AS a, k.customer_key AS b
  FROM retail_mid.ods_customer_identifier i
  JOIN retail_mid.ods_customer c ON c.brand = i.brand AND c.customer_id = i.customer_id
  JOIN retail_mid.customer_key p ON p.id_type = c.id_type AND p.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                AND p.id_value = c.customer_id
  JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.issuer = retail_mid.customer_key_issuer(i.id_type, i.brand)
                                AND k.id_value = i.id_value;

CREATE OR REPLACE VIEW retail_mid.reach_touch WITH (security_invoker = false) AS
SELECT o.brand::text AS brand, o.customer_key::int4 AS customer_key, o.planned_at::timestamp AS touched_at,
       o.channel::text AS channel, 'outbox'::text AS source
  FROM retail_mid.reach_outbox o WHERE o.status IN ('planned', 'sent', 'delivered')
UNION ALL
SELECT t.brand, k.customer_key, t.touched_at, t.channel, 'ods_campaign_touch'
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = btrim(t.id_value)
 WHERE t.touch_type IN ('sent', 'exposed') AND t.touched_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_plan p WHERE p.brand = t.brand AND p.campaign_id = t.campaign_id);

CREATE OR REPLACE VIEW retail_mid.behavior_event_keyed WITH (security_invoker = false) AS
SELECT e.brand::text AS brand, k.customer_key::int4 AS customer_key, e.event_time::timestamp AS event_time, e.event_type::text AS event_type,
       e.channel::text AS channel, e.event_count::int AS event_count, e.amount::numeric(14,4) AS amount
  FROM retail_mid.ods_behavior_event e
  JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)
                                AND k.id_value = e.id_value;

CREATE OR REPLACE VIEW retail_mid.campaign_touch_keyed WITH (security_invoker = false) AS
SELECT t.brand::text AS brand, k.customer_key::int4 AS customer_key, t.campaign_id::text AS campaign_id, t.channel::text AS channel,
       t.touched_at::timestamp AS touched_at, t.touch_type::text AS touch_type, t.coupon_id::text AS coupon_id
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = t.id_value;

-- the rules of the shipped media tags and of the campaign tags define_campaign_tags wrote join the dictionary by
-- issuer too (their author stays: the upgrade is not a change of the rule's meaning by another user)
ALTER TABLE retail_mid.tag_definition DISABLE TRIGGER tag_definition_author;
UPDATE retail_mid.tag_definition
   SET rule_sql = replace(rule_sql, 'JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = btrim(e.id_value)',
                          E'JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)\n                                     AND k.id_value = btrim(e.id_value)')
 WHERE tag_name IN ('media_exposures_30d', 'media_clicks_30d');
UPDATE retail_mid.tag_definition
   SET rule_sql = replace(rule_sql, 'JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = btrim(t.id_value)',
                          E'JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)\n                                                    AND k.id_value = btrim(t.id_value)')
 WHERE rule_sql LIKE '%FROM retail_mid.ods_campaign_touch t%JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = btrim(t.id_value)%';
ALTER TABLE retail_mid.tag_definition ENABLE TRIGGER tag_definition_author;

-- the masked view of the dictionary gets the new column (and its comment)
SELECT retail_mid.pii_create_masked_view('retail_mid.customer_key');
-- (which withdraws direct reads of the table; analysts keep reading the key column, as in governance/lockdown.sql)
GRANT SELECT (customer_key) ON retail_mid.customer_key TO retail_mid_analyst;

-- The data. Every key of a brand-issued identifier type is given the brand that uses it as its issuer. A key used
-- by several brands (the ODS rows naming the identifier, and every table with a brand and a customer_key column) is
-- split: the brand that loaded it first (smallest load_id, then name) keeps the key, every other brand gets a new
-- key (same type, value and created_at, its own issuer). Every table holding keys follows: brand rows move to the
-- brand's new key, group-wide ('*') rows are copied to the new keys, bitmaps are remapped the same way; then the
-- derived state is recomputed (tag bitmaps and bit-sliced indexes of the tags concerned, the brands' tag bitmaps,
-- the customer universe, the OneID persons of the split keys). Work tables are ordinary tables dropped at the end.
CREATE TABLE retail_mid.rm_upgrade_key_use (customer_key int4, brand text, first_load bigint);
CREATE TABLE retail_mid.rm_upgrade_key_split (brand text, old_key int4, new_key int4, PRIMARY KEY (brand, old_key));
DO $upgrade$
DECLARE
    r record; n bigint; n_keys bigint; n_split bigint; n_rows bigint := 0; job bigint; detail jsonb := '{}';
    brand_issued CONSTANT text := $t$ NOT IN ('phone', 'email', 'device_id') $t$;
    tags text[];
BEGIN
    -- who uses each key: ODS tables naming identifiers (brand, id_type and id_value, else customer_id) ...
    FOR r IN SELECT c.oid::regclass AS rel,
                    CASE WHEN bool_or(a.attname = 'id_value') THEN 'id_value' ELSE 'customer_id' END AS col,
                    bool_or(a.attname = 'load_id') AS has_load
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p')
              GROUP BY c.oid
             HAVING bool_or(a.attname = 'brand') AND bool_or(a.attname = 'id_type')
                AND (bool_or(a.attname = 'id_value') OR bool_or(a.attname = 'customer_id'))
              ORDER BY 1::text LOOP
        EXECUTE format($q$INSERT INTO retail_mid.rm_upgrade_key_use
                          SELECT k.customer_key, t.brand, min(%s) FROM %s t
                            JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = btrim(t.%I)
                           WHERE k.id_type %s AND t.brand IS NOT NULL AND t.brand NOT IN ('', '*')
                           GROUP BY 1, 2$q$,
                       CASE WHEN r.has_load THEN 't.load_id' ELSE 'NULL::bigint' END, r.rel, r.col, brand_issued);
    END LOOP;
    -- ... and every table with a brand and a customer key (keys of derived and saved state)
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.oid NOT IN ('retail_mid.customer_key'::regclass, 'retail_mid.rm_upgrade_key_use'::regclass,
                                  'retail_mid.rm_upgrade_key_split'::regclass)
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND a.atttypid = 'text'::regtype AND NOT a.attisdropped)
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_key' AND a.atttypid = 'int4'::regtype AND NOT a.attisdropped)
              ORDER BY 1::text LOOP
        EXECUTE format($q$INSERT INTO retail_mid.rm_upgrade_key_use
                          SELECT DISTINCT t.customer_key, t.brand, NULL::bigint FROM %s t
                            JOIN retail_mid.customer_key k ON k.customer_key = t.customer_key
                           WHERE k.id_type %s AND t.brand IS NOT NULL AND t.brand NOT IN ('', '*')$q$, r.rel, brand_issued);
    END LOOP;
    -- the first brand keeps the key and becomes its issuer; the others get new keys
    WITH o AS (SELECT customer_key, brand, row_number() OVER (PARTITION BY customer_key ORDER BY min(first_load) NULLS LAST, brand) AS rk
                 FROM retail_mid.rm_upgrade_key_use GROUP BY customer_key, brand)
    UPDATE retail_mid.customer_key k SET issuer = o.brand FROM o WHERE o.customer_key = k.customer_key AND o.rk = 1;
    GET DIAGNOSTICS n_keys = ROW_COUNT;
    WITH o AS (SELECT customer_key, brand, row_number() OVER (PARTITION BY customer_key ORDER BY min(first_load) NULLS LAST, brand) AS rk
                 FROM retail_mid.rm_upgrade_key_use GROUP BY customer_key, brand)
    INSERT INTO retail_mid.customer_key (id_type, issuer, id_value, created_at)
    SELECT k.id_type, o.brand, k.id_value, k.created_at FROM o JOIN retail_mid.customer_key k USING (customer_key)
     WHERE o.rk > 1 ORDER BY k.customer_key, o.rk;
    INSERT INTO retail_mid.rm_upgrade_key_split (brand, old_key, new_key)
    SELECT n.issuer, o.customer_key, n.customer_key
      FROM retail_mid.customer_key o JOIN retail_mid.customer_key n ON n.id_type = o.id_type AND n.id_value = o.id_value
     WHERE o.customer_key IN (SELECT u.customer_key FROM retail_mid.rm_upgrade_key_use u GROUP BY 1 HAVING count(DISTINCT u.brand) > 1)
       AND n.customer_key <> o.customer_key AND n.issuer <> '' AND o.issuer <> '';
    GET DIAGNOSTICS n_split = ROW_COUNT;
    RAISE NOTICE 'retail_mid 1.1.0: % keys of brand-issued identifiers given their issuer; % keys shared by several brands split into % new keys',
        n_keys, (SELECT count(DISTINCT old_key) FROM retail_mid.rm_upgrade_key_split), n_split;
    IF n_split = 0 THEN
        RETURN;
    END IF;
    job := retail_mid.job_start('upgrade_split_customer_keys', jsonb_build_object('keys', n_keys, 'new_keys', n_split));
    ANALYZE retail_mid.rm_upgrade_key_split;

    -- every table with a brand and a customer key: brand rows move to the brand's key, '*' rows are copied
    FOR r IN SELECT c.oid::regclass AS rel,
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = '') AS cols,
                    (SELECT string_agg(CASE WHEN a.attname = 'customer_key' THEN 's.new_key' ELSE 't.' || quote_ident(a.attname) END, ', ' ORDER BY a.attnum)
                       FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = '') AS vals
               FROM pg_class c
              WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.oid NOT IN ('retail_mid.customer_key'::regclass, 'retail_mid.rm_upgrade_key_use'::regclass,
                                  'retail_mid.rm_upgrade_key_split'::regclass)
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND a.atttypid = 'text'::regtype AND NOT a.attisdropped)
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_key' AND a.atttypid = 'int4'::regtype AND NOT a.attisdropped)
              ORDER BY 1::text LOOP
        EXECUTE format('UPDATE %s t SET customer_key = s.new_key FROM retail_mid.rm_upgrade_key_split s '
                       'WHERE t.brand = s.brand AND t.customer_key = s.old_key', r.rel);
        GET DIAGNOSTICS n = ROW_COUNT;
        EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s t JOIN retail_mid.rm_upgrade_key_split s ON s.old_key = t.customer_key '
                       'WHERE t.brand = ''*''', r.rel, r.cols, r.vals, r.rel);
        GET DIAGNOSTICS n_rows = ROW_COUNT;
        IF n + n_rows > 0 THEN
            detail := detail || jsonb_build_object(r.rel::text, jsonb_build_object('moved', n, 'copied', n_rows));
            RAISE NOTICE 'retail_mid 1.1.0: %: % rows moved to split keys, % group-wide rows copied', r.rel, n, n_rows;
        END IF;
    END LOOP;
    -- bitmaps of tables with a brand: a brand's row maps the brand's old keys to its new ones; a '*' row gains the new
    -- keys of the old keys it holds (and a customers count beside the bitmap is recounted)
    FOR r IN SELECT c.oid::regclass AS rel, a.attname AS col,
                    EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.oid AND x.attname = 'customers' AND NOT x.attisdropped) AS has_count
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p')
                AND a.atttypid = 'retail_mid.rbitmap'::regtype
                AND EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = c.oid AND b.attname = 'brand' AND NOT b.attisdropped)
              ORDER BY 1::text, 2 LOOP
        EXECUTE format($q$UPDATE %1$s t SET %2$I = (SELECT retail_mid.rb_build_agg(x.k) FROM (
                              SELECT coalesce(s.new_key, b.k) AS k FROM retail_mid.rb_iterate(t.%2$I) b(k)
                                LEFT JOIN retail_mid.rm_upgrade_key_split s ON t.brand <> '*' AND s.brand = t.brand AND s.old_key = b.k
                              UNION ALL
                              SELECT s.new_key FROM retail_mid.rb_iterate(t.%2$I) b(k)
                                JOIN retail_mid.rm_upgrade_key_split s ON t.brand = '*' AND s.old_key = b.k) x)
                          WHERE t.%2$I IS NOT NULL AND EXISTS (SELECT 1 FROM retail_mid.rm_upgrade_key_split s
                                                              WHERE retail_mid.rb_contains(t.%2$I, s.old_key)
                                                                AND (t.brand = '*' OR s.brand = t.brand))$q$,
                       r.rel, r.col, '');
        GET DIAGNOSTICS n = ROW_COUNT;
        IF r.has_count AND n > 0 THEN
            EXECUTE format('UPDATE %1$s t SET customers = retail_mid.rb_cardinality(t.%2$I) WHERE t.%2$I IS NOT NULL '
                           'AND t.customers IS DISTINCT FROM retail_mid.rb_cardinality(t.%2$I)', r.rel, r.col);
        END IF;
        IF n > 0 THEN
            detail := detail || jsonb_build_object(r.rel::text || '.' || r.col, jsonb_build_object('bitmaps', n));
            RAISE NOTICE 'retail_mid 1.1.0: %.%: % bitmaps remapped', r.rel, r.col, n;
        END IF;
    END LOOP;

    -- derived state: the bitmaps and bit-sliced indexes of the tags with values on split keys, as evaluate_tags
    -- builds them, then the brands' rows of shared group tags and the customer universe
    tags := ARRAY(SELECT DISTINCT v.tag_name FROM retail_mid.tag_value v JOIN retail_mid.rm_upgrade_key_split s ON v.customer_key = s.new_key
                   WHERE v.valid_to IS NULL ORDER BY 1);
    IF cardinality(tags) > 0 THEN
        DELETE FROM retail_mid.tag_bitmap b WHERE b.tag_name = ANY (tags);
        DELETE FROM retail_mid.tag_bsi b WHERE b.tag_name = ANY (tags);
        INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
        SELECT v.tag_name, v.value, v.brand, retail_mid.rb_build_agg(v.customer_key), count(*)
          FROM retail_mid.tag_value v JOIN retail_mid.tag_definition d USING (tag_name)
         WHERE v.tag_name = ANY (tags) AND v.valid_to IS NULL AND d.value_type <> 'numeric'
         GROUP BY v.tag_name, v.value, v.brand
        UNION ALL
        SELECT u.tag_name, u.value, '*', u.b, retail_mid.rb_cardinality(u.b)
          FROM (SELECT v.tag_name, v.value, retail_mid.rb_build_agg(v.customer_key) AS b
                  FROM retail_mid.tag_value v
                 WHERE v.tag_name = ANY (ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d
                                                WHERE d.tag_name = ANY (tags) AND d.scope = 'brand' AND d.value_type <> 'numeric'))
                   AND v.valid_to IS NULL AND v.brand <> '*'
                 GROUP BY v.tag_name, v.value) u;
        INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
        SELECT v.tag_name, v.brand, d.numeric_scale, min(v.numeric_value), max(v.numeric_value), count(*),
               retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, d.numeric_scale))::int8)
          FROM retail_mid.tag_value v JOIN retail_mid.tag_definition d USING (tag_name)
         WHERE v.tag_name = ANY (tags) AND v.valid_to IS NULL AND d.value_type = 'numeric'
         GROUP BY v.tag_name, v.brand, d.numeric_scale;
        -- the brands' rows of shared group tags, as refresh_brand_tag_bitmaps builds them (inline: it uses a
        -- temporary table, which an extension script would make a member of the extension)
        INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
        SELECT t.tag_name, t.tag_value, b.brand, retail_mid.rb_and(t.bitmap, b.customers), retail_mid.rb_and_cardinality(t.bitmap, b.customers)
          FROM retail_mid.tag_bitmap t
         CROSS JOIN (SELECT cb.brand, retail_mid.rb_build_agg(cb.customer_key) AS customers FROM retail_mid.customer_brand cb
                      WHERE cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*') GROUP BY cb.brand) b
         WHERE t.brand = '*' AND t.tag_name = ANY (tags)
           AND t.tag_name IN (SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.scope = 'group' AND d.shared_with_brands)
           AND retail_mid.rb_and_cardinality(t.bitmap, b.customers) > 0;
        INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
        SELECT t.tag_name, cb.brand, t.scale, min(v.numeric_value), max(v.numeric_value), count(*),
               retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, t.scale))::int8)
          FROM retail_mid.tag_bsi t
          JOIN retail_mid.tag_value v ON v.tag_name = t.tag_name AND v.brand = '*' AND v.valid_to IS NULL AND v.numeric_value IS NOT NULL
          JOIN retail_mid.customer_brand cb ON cb.customer_key = v.customer_key
         WHERE t.brand = '*' AND t.tag_name = ANY (tags)
           AND t.tag_name IN (SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.scope = 'group' AND d.shared_with_brands)
           AND cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*')
         GROUP BY t.tag_name, cb.brand, t.scale;
        RAISE NOTICE 'retail_mid 1.1.0: bitmaps of % tags rebuilt', cardinality(tags);
    END IF;
    PERFORM retail_mid.refresh_customer_universe();
    -- OneID: the persons holding a split key are resolved again (their identifiers now belong to two customers), as
    -- resolve_identities does (inline: temporary tables made in an extension script would become its members)
    IF EXISTS (SELECT 1 FROM retail_mid.oneid_person_map) THEN
        DELETE FROM retail_mid.oneid_person_map m
         WHERE m.person_key IN (SELECT p.person_key FROM retail_mid.oneid_person_map p
                                  JOIN retail_mid.rm_upgrade_key_split s ON s.old_key = p.customer_key);
        WITH g AS (SELECT retail_mid.connected_components(e.a, e.b) AS cc FROM retail_mid.oneid_edges e),
        comp AS (SELECT unnest((g.cc).nodes) AS node, unnest((g.cc).components) AS component FROM g),
        allc AS (SELECT node, component FROM comp
                 UNION ALL
                 SELECT k.customer_key, k.customer_key FROM retail_mid.customer_key k
                  WHERE NOT EXISTS (SELECT 1 FROM comp c WHERE c.node = k.customer_key)),
        person AS (SELECT c.component, coalesce(min(m.person_key), c.component) AS person_key
                     FROM allc c LEFT JOIN retail_mid.oneid_person_map m ON m.customer_key = c.node GROUP BY c.component)
        INSERT INTO retail_mid.oneid_person_map AS m (customer_key, person_key)
        SELECT c.node, p.person_key FROM allc c JOIN person p USING (component)
        ON CONFLICT (customer_key) DO UPDATE SET person_key = excluded.person_key, updated_at = now()
         WHERE m.person_key IS DISTINCT FROM excluded.person_key;
        GET DIAGNOSTICS n = ROW_COUNT;
        detail := detail || jsonb_build_object('oneid_person_map', jsonb_build_object('mapped', n));
        RAISE NOTICE 'retail_mid 1.1.0: OneID: % identifiers mapped again', n;
    END IF;
    -- temporary tables of the routines called above are not the extension's
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
              WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND c.relpersistence = 't'
                AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'retail_mid') LOOP
        EXECUTE format('ALTER EXTENSION retail_mid DROP TABLE %s', r.rel);
    END LOOP;
    PERFORM retail_mid.job_finish(job, n_split, detail || jsonb_build_object('split_keys', (SELECT count(DISTINCT old_key) FROM retail_mid.rm_upgrade_key_split),
                                                                        'new_keys', n_split, 'tags_rebuilt', cardinality(tags)));
END;
$upgrade$;
DROP TABLE retail_mid.rm_upgrade_key_use, retail_mid.rm_upgrade_key_split;

-- merge of issues 15 and 19: build_dwd_trade in its final text (both the DIM layer's categories and the issuer
-- namespaced keys change it; the section above replaced the DIM layer's version)
CREATE OR REPLACE FUNCTION retail_mid.build_dwd_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    -- Customers first seen in this range get their keys before the lines refer to them.
    PERFORM retail_mid.assign_customer_keys(array_agg(o.id_type), array_agg(o.customer_id), array_agg(o.brand))
       FROM (SELECT DISTINCT o.id_type, btrim(o.customer_id) AS customer_id, o.brand
               FROM retail_mid.ods_order o
              WHERE o.order_time >= from_date AND o.order_time < to_date + 1
                AND o.customer_id IS NOT NULL AND btrim(o.customer_id) <> '' AND o.id_type IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                                 WHERE k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                   AND k.id_value = btrim(o.customer_id))) o;

    DELETE FROM retail_mid.dwd_trade_order_line_di WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dwd_trade_cleaning_1d WHERE dt BETWEEN from_date AND to_date;

    CREATE TEMP TABLE pg_temp.rm_dwd_lines ON COMMIT DROP AS
    SELECT o.order_time::date AS dt, o.brand, o.order_id, l.line_no, o.order_time, k.customer_key,
           o.store_id, o.channel, l.sku_id, l.quantity, l.unit_price, l.discount,
           coalesce(l.original_order_id, o.original_order_id) AS original_order_id,
           CASE WHEN row_number() OVER (PARTITION BY o.brand, o.order_id, l.sku_id, l.quantity, l.unit_price, l.discount
                                        ORDER BY l.line_no) > 1 THEN 'duplicate_line'
                WHEN l.unit_price = 0 THEN 'zero_price'
                WHEN l.unit_price < 0 THEN 'negative_price'
                WHEN l.quantity = 0 THEN 'zero_quantity'
           END AS dropped_by
      FROM retail_mid.ods_order o
      JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      LEFT JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                         AND k.id_value = btrim(o.customer_id)
     WHERE o.order_time >= from_date AND o.order_time < to_date + 1;
    ANALYZE pg_temp.rm_dwd_lines;

    INSERT INTO retail_mid.dwd_trade_order_line_di
    SELECT x.dt, x.brand, x.order_id, x.line_no, x.order_time, x.customer_key, x.store_id, x.channel, x.sku_id, x.quantity, x.unit_price,
           x.discount, x.quantity * x.unit_price - x.discount,
           CASE WHEN x.quantity < 0 THEN 'return' ELSE 'sale' END, x.original_order_id,
           -- issue 15: categories and region as of the order date
           coalesce(p.category_l1, 'unknown'), coalesce(p.category_l2, 'unknown'),
           CASE WHEN x.store_id IS NOT NULL THEN coalesce(s.region, 'unknown') END
      FROM pg_temp.rm_dwd_lines x
      LEFT JOIN retail_mid.dim_product p ON p.brand = x.brand AND p.sku_id = x.sku_id AND p.valid_from <= x.dt AND x.dt < p.valid_to
      LEFT JOIN retail_mid.dim_site s ON s.brand = x.brand AND s.site_id = x.store_id AND s.valid_from <= x.dt AND x.dt < s.valid_to
     WHERE dropped_by IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO retail_mid.dwd_trade_cleaning_1d (dt, brand, rule, lines, amount)
    SELECT dt, brand, r.rule, count(*), coalesce(sum(quantity * unit_price), 0)
      FROM pg_temp.rm_dwd_lines,
           LATERAL (VALUES ('source_line', true),
                           (dropped_by, dropped_by IS NOT NULL),
                           ('kept_line', dropped_by IS NULL),
                           ('return_line', dropped_by IS NULL AND quantity < 0),
                           ('anonymous_line', dropped_by IS NULL AND customer_key IS NULL)) AS r(rule, applies)
     WHERE r.applies
     GROUP BY dt, brand, r.rule;

    DROP TABLE pg_temp.rm_dwd_lines;
    RETURN n;
END;
$$;

-- issue 13: tables and sequences kept by pg_dump
-- Every table of the extension (user data, configuration, and the derived DWD/DWS/model tables, so that a restore
-- needs no rebuild) and every identity sequence behind them is registered with pg_extension_config_dump. Tables
-- shipped with default rows are dumped whole and merged onto the reinstalled defaults on restore (restore_merge);
-- the triggers that derive rows, reset columns or re-check rows keep restored rows as dumped (restoring()).
-- Backup and restore. pg_dump writes CREATE EXTENSION and then the rows of every table registered with
-- pg_extension_config_dump; pg_restore (or psql running a plain dump) loads them with COPY ... FROM stdin into
-- the tables CREATE EXTENSION has just made, with the extension's triggers in place. The triggers that derive
-- rows, reset columns or would collide with the installed default rows ask restoring() first, so that a restore
-- brings back the rows exactly as they were dumped.
CREATE FUNCTION retail_mid.restoring()
RETURNS boolean LANGUAGE sql VOLATILE PARALLEL RESTRICTED
BEGIN ATOMIC
    SELECT pg_catalog.current_query() OPERATOR(pg_catalog.~*) '^\s*COPY\s+\S+(\s*\([^)]*\))?\s+FROM\s+STDIN\M'
       AND (SELECT bool_and(r.rolsuper) FROM pg_catalog.pg_roles r
             WHERE r.rolname OPERATOR(pg_catalog.=) ANY (ARRAY[CURRENT_USER, SESSION_USER]::pg_catalog.name[]))
       IS TRUE;
END;
COMMENT ON FUNCTION retail_mid.restoring() IS 'True while a superuser session (current and session user both superusers) runs COPY ... FROM STDIN, the way pg_restore and plain dumps load the rows of the extension''s tables: the extension''s triggers then keep the rows as dumped instead of deriving, resetting or re-checking them. A non-superuser''s COPY is an ordinary, fully checked insert.';

-- Tables that CREATE EXTENSION fills with default rows (segment maps, templates, taxonomy, ...) are dumped whole,
-- so that the user's changes to those rows survive too. On restore the installed default row with the same
-- primary key is already there: this BEFORE INSERT trigger replaces it by the dumped row (an UPDATE, only when
-- they differ) instead of failing the whole COPY on the duplicate key. Outside a restore it does nothing.
CREATE FUNCTION retail_mid.restore_merge()
RETURNS trigger LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE pk_cols text; pk_vals text; all_cols text; all_vals text; old_row text;
BEGIN
    IF NOT retail_mid.restoring() THEN
        RETURN NEW;
    END IF;
    SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.n), string_agg(format('($1).%I', a.attname), ', ' ORDER BY k.n)
      INTO pk_cols, pk_vals
      FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = TG_RELID AND i.indisprimary;
    IF pk_cols IS NULL THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT t::text FROM %s AS t WHERE ROW(%s) = ROW(%s)', TG_RELID::regclass, pk_cols, pk_vals)
       INTO old_row USING NEW;
    IF old_row IS NULL THEN
        RETURN NEW;                                  -- not an installed default: the user's own row
    END IF;
    IF old_row IS DISTINCT FROM NEW::text THEN      -- a default row the user had changed
        SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum), string_agg(format('($1).%I', a.attname), ', ' ORDER BY a.attnum)
          INTO all_cols, all_vals
          FROM pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        EXECUTE format('UPDATE %s AS t SET (%s) = ROW(%s) WHERE ROW(%s) = ROW(%s)', TG_RELID::regclass, all_cols, all_vals, pk_cols, pk_vals)
          USING NEW;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.restore_merge() IS 'Trigger (BEFORE INSERT) of the tables shipped with default rows: during a restore (restoring()) a dumped row whose primary key is already installed replaces the installed row instead of failing the COPY; otherwise nothing.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.job_log', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.job_log_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.aipl_rule', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.aipl_rule FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_aipl_customer_stage_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.oneid_person_map', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.oneid_merge_log', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_segment_map_def', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.rfm_segment_map_def FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_segment_map', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.rfm_segment_map FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_config', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.rfm_config FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.rfm_snapshot', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.replenish_parameter', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.replenish_forecast', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.replenish_transfer_lane', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_trade_order_line_di', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_trade_cleaning_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_refresh_state', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_customer_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_sku_store_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_store_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_customer_td', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_sku_store_td', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_store_td', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_key', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_key_customer_key_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_load', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_load_load_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_customer', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_customer_identifier', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_product', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_site', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_order', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_order_line', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_behavior_event', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_promotion', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_inventory_snapshot', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_inbound_shipment', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_campaign', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_campaign_touch', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_demand_zone', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.brand_entitlement', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_brand', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_atomic', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_distinct_key', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_distinct_key_key_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_qualifier', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.metric_qualifier FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_period', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.metric_period FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_granularity', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_coverage', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_derived', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_composite', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_template', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.quality_template FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_rule', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_rule_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_rule_version', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_result', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_result_result_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.pii_mask_rule', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.pii_mask_rule FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.fulfilment_location', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.fulfilment_stock', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.fulfilment_reservation', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_demand_zone', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_store', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_candidate', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_travel_cost', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_candidate_score', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_candidate_cannibalisation', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.site_observed_flow', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_taxonomy', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.tag_taxonomy FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_definition', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.tag_definition FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_value', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_bitmap', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_bsi', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_universe', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.audience_package', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_channel', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.reach_channel FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_consent', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_plan', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_plan_plan_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_run', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_run_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_brand_lock', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.clv_customer_score', '');
CREATE OR REPLACE FUNCTION retail_mid.quality_rule_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tpl retail_mid.quality_template;
    plan jsonb;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
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
CREATE OR REPLACE FUNCTION retail_mid.quality_rule_record_version()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    INSERT INTO retail_mid.quality_rule_version (rule_id, version, definition)
    VALUES (NEW.rule_id, NEW.version,
            jsonb_build_object('rule_name', NEW.rule_name, 'table_name', NEW.table_name::text, 'column_name', NEW.column_name,
                               'template', NEW.template, 'parameters', NEW.parameters, 'weight', NEW.weight,
                               'threshold_on', NEW.threshold_on, 'warn_threshold', NEW.warn_threshold,
                               'fail_threshold', NEW.fail_threshold, 'data_domain', NEW.data_domain))
    ON CONFLICT (rule_id, version) DO NOTHING;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.tag_bitmap_written()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE tags text[];
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    SELECT array_agg(DISTINCT n.tag_name) INTO tags FROM new_rows n
     WHERE n.brand = '*' AND n.tag_name IN (SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.scope = 'group');
    IF tags IS NOT NULL THEN
        PERFORM retail_mid.refresh_brand_tag_bitmaps(tags);
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.brand_entitlement_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.pii_mask_rule_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM retail_mid.pii_create_masked_view(NEW.table_name);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR OLD.table_name <> NEW.table_name) THEN
        PERFORM retail_mid.pii_create_masked_view(OLD.table_name);
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION retail_mid.metric_atomic_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[];
    keytype text;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
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
CREATE OR REPLACE FUNCTION retail_mid.metric_qualifier_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
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
CREATE OR REPLACE FUNCTION retail_mid.metric_derived_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expected text;
    other record;
    a retail_mid.metric_atomic;
    missing text;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
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
CREATE OR REPLACE FUNCTION retail_mid.metric_composite_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    expr text;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
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

-- issue 13: the daily pipeline (run_daily, run_daily_summary) and its pg_cron schedule
-- retail_mid.run_daily(as_of) runs every step in dependency order, each step (and brand) in its own transaction
-- with its own job_log row (job 'run_daily', arguments {step, brand, as_of}); docs/operations.md.

-- One step: opens its job_log row (committed, so a dashboard sees it running), runs the statement (a SELECT
-- returning the rows written) in a subtransaction, closes the row as ok or failed with the error, and commits.
-- A failed step's work is rolled back; the steps before it stay committed. (No SET clauses: a procedure with SET
-- may not COMMIT; every name is qualified.)
CREATE PROCEDURE retail_mid.run_daily_step(step text, brand text, as_of date, statement text, detail jsonb DEFAULT '{}', INOUT succeeded boolean DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_job bigint; v_rows bigint; v_state text; v_message text; v_detail text; v_context text;
BEGIN
    INSERT INTO retail_mid.job_log (job, arguments, detail)
    VALUES ('run_daily', pg_catalog.jsonb_build_object('step', step, 'brand', brand, 'as_of', as_of, 'statement', statement),
            coalesce(detail, '{}'))
    RETURNING job_id INTO v_job;
    COMMIT;
    BEGIN
        EXECUTE statement INTO v_rows;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL,
                                v_context = PG_EXCEPTION_CONTEXT;
    END;
    IF v_state IS NULL THEN
        UPDATE retail_mid.job_log l SET finished_at = pg_catalog.clock_timestamp(), rows_written = coalesce(v_rows, 0), outcome = 'ok'
         WHERE l.job_id = v_job;
        succeeded := true;
    ELSE
        UPDATE retail_mid.job_log l SET finished_at = pg_catalog.clock_timestamp(), rows_written = 0, outcome = 'failed',
               detail = l.detail OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('sqlstate', v_state, 'error', v_message, 'error_detail', v_detail, 'error_context', v_context)
         WHERE l.job_id = v_job;
        RAISE WARNING 'run_daily: step % (brand %) failed: % (SQLSTATE %); logged as job_log row %, retried on the next run',
            step, brand, v_message, v_state, v_job;
        succeeded := false;
    END IF;
    COMMIT;
END;
$$;
COMMENT ON PROCEDURE retail_mid.run_daily_step(text, text, date, text, jsonb, boolean) IS 'One step of run_daily: a job_log row (job run_daily, arguments step, brand, as_of, statement; detail as given) committed first, the statement run in a subtransaction, the row closed as ok (rows written) or failed (SQLSTATE, message) and committed; a failure is a WARNING, not an error.';

-- A step of a brand is done for as_of when a run_daily row of that step, brand and as_of ended ok after the last
-- upstream step that wrote rows (refresh; for tags also RFM and AIPL, whose results tags read; for quality every
-- step): the second run of the same day does nothing again, and a step redone after a failure redoes what reads it.
CREATE FUNCTION retail_mid.run_daily_done(step text, brand text, as_of date)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT EXISTS (
        SELECT 1 FROM retail_mid.job_log l
         WHERE l.job OPERATOR(pg_catalog.=) 'run_daily' AND l.outcome OPERATOR(pg_catalog.=) 'ok'
           AND (l.arguments OPERATOR(pg_catalog.->>) 'step') OPERATOR(pg_catalog.=) run_daily_done.step
           AND (l.arguments OPERATOR(pg_catalog.->>) 'brand') OPERATOR(pg_catalog.=) run_daily_done.brand
           AND (l.arguments OPERATOR(pg_catalog.->>) 'as_of')::date OPERATOR(pg_catalog.=) run_daily_done.as_of
           AND l.job_id OPERATOR(pg_catalog.>) coalesce((
               SELECT pg_catalog.max(r.job_id) FROM retail_mid.job_log r
                WHERE r.job OPERATOR(pg_catalog.=) 'run_daily' AND r.outcome OPERATOR(pg_catalog.=) 'ok'
                  AND (r.arguments OPERATOR(pg_catalog.->>) 'step') OPERATOR(pg_catalog.=) ANY (
                      CASE run_daily_done.step WHEN 'tags' THEN ARRAY['refresh', 'rfm', 'aipl']
                                               WHEN 'quality' THEN ARRAY['refresh', 'rfm', 'aipl', 'tags', 'forecast']
                                               ELSE ARRAY['refresh'] END)
                  AND r.rows_written OPERATOR(pg_catalog.>) 0), 0));
END;
COMMENT ON FUNCTION retail_mid.run_daily_done(text, text, date) IS 'Whether run_daily already did a step for a brand and as_of: an ok run_daily job_log row of them newer than the last upstream step that wrote rows (refresh; for tags also rfm and aipl; for quality every step).';

-- The tags due at as_of (their schedule): never evaluated by run_daily; daily and hourly ones when as_of is past
-- their last evaluation or data changed since; weekly ones 7 days, monthly ones a month after; manual ones never.
CREATE FUNCTION retail_mid.run_daily_due_tags(as_of date)
RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH last AS (
        SELECT t.tag_name, t.schedule,
               (SELECT pg_catalog.max((l.arguments OPERATOR(pg_catalog.->>) 'as_of')::date)
                  FROM retail_mid.job_log l
                 WHERE l.job OPERATOR(pg_catalog.=) 'run_daily' AND l.outcome OPERATOR(pg_catalog.=) 'ok'
                   AND (l.arguments OPERATOR(pg_catalog.->>) 'step') OPERATOR(pg_catalog.=) 'tags'
                   AND (l.detail OPERATOR(pg_catalog.->) 'tags') OPERATOR(pg_catalog.?) t.tag_name) AS last_as_of
          FROM retail_mid.tag_definition t
         WHERE t.enabled AND t.schedule OPERATOR(pg_catalog.<>) 'manual')
    SELECT pg_catalog.array_agg(tag_name ORDER BY tag_name) FROM last
     WHERE last_as_of IS NULL
        OR CASE schedule
               WHEN 'weekly' THEN run_daily_due_tags.as_of OPERATOR(pg_catalog.>=) (last_as_of OPERATOR(pg_catalog.+) 7)
               WHEN 'monthly' THEN run_daily_due_tags.as_of OPERATOR(pg_catalog.>=) (last_as_of OPERATOR(pg_catalog.+) '1 month'::interval)
               ELSE run_daily_due_tags.as_of OPERATOR(pg_catalog.>) last_as_of
                    OR NOT retail_mid.run_daily_done('tags', '*', run_daily_due_tags.as_of) END;
END;
COMMENT ON FUNCTION retail_mid.run_daily_due_tags(date) IS 'Enabled tags due at as_of by their schedule: never evaluated by run_daily, daily/hourly when as_of is later than their last run_daily evaluation (or data changed since), weekly after 7 days, monthly after a month; manual never.';

-- The quality step: every enabled rule, as of the given time; returns the results stored.
CREATE FUNCTION retail_mid.run_daily_quality(as_of timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_run bigint;
BEGIN
    v_run := retail_mid.quality_evaluate(NULL, as_of);
    RETURN (SELECT count(*) FROM retail_mid.quality_result q WHERE q.run_id = v_run);
END;
$$;
COMMENT ON FUNCTION retail_mid.run_daily_quality(timestamptz) IS 'The quality step of run_daily: quality_evaluate of every enabled rule as of the given time; returns the number of results stored.';

-- The daily pipeline. Steps, in dependency order (each brand's steps run as of the earlier of as_of and the
-- brand's last day with sales, so a brand whose data stopped gets no new snapshot every day):
--   refresh  (brand *)  DWD, DWS, brand scope and the metric registry's tables (refresh() calls metric_refresh) for
--                       every day with orders in the loads that arrived since the last successful refresh step
--   rfm      per brand  rfm_refresh(brand, as_of, 365) (ten-segment map)
--   aipl     per brand  aipl_refresh over the 30 days up to as_of
--   tags     (brand *)  evaluate_tags of the tags due by their schedule (run_daily_due_tags)
--   forecast per brand  replenish_refresh_forecasts(brand, as_of): the stored forecasts that the suggested orders
--                       (view replenish_suggested_order) are computed from; brands without store x SKU sales skip
--   quality  (brand *)  quality_evaluate() of every enabled rule, as of the end of as_of
-- A step already done for its brand and as_of since the last refresh that changed data is skipped (its row says
-- so): a second run of the same day does no work and leaves the tables as they were. A failed step is logged
-- and the later steps still run (on the state before it); the next run does it again.
-- One run at a time: a session advisory lock, taken without waiting; a second run fails with 55P03.
CREATE PROCEDURE retail_mid.run_daily(as_of date DEFAULT CURRENT_DATE - 1)
LANGUAGE plpgsql
AS $$
DECLARE
    v_lock constant bigint := pg_catalog.hashtext('retail_mid.run_daily');
    v_holder int; v_prev_load bigint; v_last_load bigint; v_from date; v_to date; v_ok boolean;
    v_brand record; v_b_asof date; v_tags text[]; v_failed int := 0; v_steps int := 0; t0 timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'run_daily needs a finite as_of date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each step commits: CALL it on its own, not inside BEGIN ... COMMIT (2D000 here, before the lock is taken)
    COMMIT;
    IF NOT pg_catalog.pg_try_advisory_lock(v_lock) THEN
        SELECT l.pid INTO v_holder FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (v_lock OPERATOR(pg_catalog.&) 4294967295)::oid
           AND l.classid = ((v_lock OPERATOR(pg_catalog.>>) 32) OPERATOR(pg_catalog.&) 4294967295)::oid LIMIT 1;
        RAISE EXCEPTION 'retail_mid.run_daily is already running (backend %)', coalesce(v_holder::text, 'unknown')
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Two runs never interleave: wait until it ends (see retail_mid.run_daily_summary) and run again; a finished step is not done twice.';
    END IF;
    RAISE NOTICE 'run_daily as of %: start', as_of;

    -- 1. refresh the days of the loads that arrived since the last successful refresh step
    SELECT pg_catalog.max((l.detail OPERATOR(pg_catalog.->>) 'last_load_id')::bigint) INTO v_prev_load
      FROM retail_mid.job_log l
     WHERE l.job = 'run_daily' AND l.outcome = 'ok' AND (l.arguments OPERATOR(pg_catalog.->>) 'step') = 'refresh';
    SELECT pg_catalog.max(o.load_id) INTO v_last_load FROM retail_mid.ods_load o;
    SELECT pg_catalog.min(o.order_time)::date, pg_catalog.max(o.order_time)::date INTO v_from, v_to
      FROM retail_mid.ods_order o WHERE o.load_id > coalesce(v_prev_load, 0) AND o.load_id <= v_last_load;
    v_steps := v_steps + 1;
    IF v_from IS NULL THEN
        CALL retail_mid.run_daily_step('refresh', '*', as_of, 'SELECT 0::bigint',
             pg_catalog.jsonb_build_object('skipped', 'no orders loaded since the last refresh', 'last_load_id', coalesce(v_last_load, v_prev_load, 0)), v_ok);
    ELSE
        RAISE NOTICE 'run_daily: refreshing % .. % (loads % .. %)', v_from, v_to, coalesce(v_prev_load, 0) + 1, v_last_load;
        CALL retail_mid.run_daily_step('refresh', '*', as_of, pg_catalog.format('SELECT retail_mid.refresh(%L, %L)', v_from, v_to),
             pg_catalog.jsonb_build_object('from_date', v_from, 'to_date', v_to, 'last_load_id', v_last_load), v_ok);
    END IF;
    v_failed := v_failed + (NOT v_ok)::int;

    -- 2., 3. RFM and AIPL per brand
    FOR v_brand IN SELECT r.brand, r.as_of AS last_day FROM retail_mid.dws_refresh_state r ORDER BY r.brand LOOP
        v_b_asof := LEAST(as_of, v_brand.last_day);
        v_steps := v_steps + 2;
        IF retail_mid.run_daily_done('rfm', v_brand.brand, v_b_asof) THEN
            CALL retail_mid.run_daily_step('rfm', v_brand.brand, v_b_asof, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
        ELSE
            CALL retail_mid.run_daily_step('rfm', v_brand.brand, v_b_asof,
                 pg_catalog.format('SELECT retail_mid.rfm_refresh(%L, %L, 365)', v_brand.brand, v_b_asof), '{}', v_ok);
        END IF;
        v_failed := v_failed + (NOT v_ok)::int;
        IF retail_mid.run_daily_done('aipl', v_brand.brand, v_b_asof) THEN
            CALL retail_mid.run_daily_step('aipl', v_brand.brand, v_b_asof, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
        ELSE
            CALL retail_mid.run_daily_step('aipl', v_brand.brand, v_b_asof,
                 pg_catalog.format('SELECT retail_mid.aipl_refresh(%L, %L, %L)', v_brand.brand, v_b_asof - 29, v_b_asof), '{}', v_ok);
        END IF;
        v_failed := v_failed + (NOT v_ok)::int;
    END LOOP;

    -- 4. tags due by their schedule
    v_tags := retail_mid.run_daily_due_tags(as_of);
    v_steps := v_steps + 1;
    IF v_tags IS NULL THEN
        CALL retail_mid.run_daily_step('tags', '*', as_of, 'SELECT 0::bigint', '{"skipped": "no tag due", "tags": []}', v_ok);
    ELSE
        CALL retail_mid.run_daily_step('tags', '*', as_of, pg_catalog.format('SELECT retail_mid.evaluate_tags(%L::text[])', v_tags),
             pg_catalog.jsonb_build_object('tags', pg_catalog.to_jsonb(v_tags)), v_ok);
    END IF;
    v_failed := v_failed + (NOT v_ok)::int;

    -- 5. stored forecasts (the suggested orders read them), brands with store x SKU sales
    FOR v_brand IN SELECT r.brand, r.as_of AS last_day FROM retail_mid.dws_refresh_state r
                    WHERE EXISTS (SELECT 1 FROM retail_mid.ods_site s WHERE s.brand = r.brand AND s.kind = 'store')
                    ORDER BY r.brand LOOP
        v_b_asof := LEAST(as_of, v_brand.last_day);
        v_steps := v_steps + 1;
        IF retail_mid.run_daily_done('forecast', v_brand.brand, v_b_asof) THEN
            CALL retail_mid.run_daily_step('forecast', v_brand.brand, v_b_asof, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
        ELSE
            CALL retail_mid.run_daily_step('forecast', v_brand.brand, v_b_asof,
                 pg_catalog.format('SELECT retail_mid.replenish_refresh_forecasts(%L, %L)', v_brand.brand, v_b_asof), '{}', v_ok);
        END IF;
        v_failed := v_failed + (NOT v_ok)::int;
    END LOOP;

    -- 6. quality rules
    v_steps := v_steps + 1;
    IF retail_mid.run_daily_done('quality', '*', as_of) THEN
        CALL retail_mid.run_daily_step('quality', '*', as_of, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
    ELSE
        CALL retail_mid.run_daily_step('quality', '*', as_of,
             pg_catalog.format('SELECT retail_mid.run_daily_quality(%L::timestamptz)', (as_of + 1)::timestamp), '{}', v_ok);
    END IF;
    v_failed := v_failed + (NOT v_ok)::int;

    PERFORM pg_catalog.pg_advisory_unlock(v_lock);
    RAISE NOTICE 'run_daily as of %: % steps, % failed, % s', as_of, v_steps, v_failed,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - t0)::numeric, 1);
    IF v_failed > 0 THEN
        RAISE WARNING 'run_daily as of %: % of % steps failed (job_log, run_daily_summary); the next run retries them', as_of, v_failed, v_steps;
    END IF;
END;
$$;
COMMENT ON PROCEDURE retail_mid.run_daily(date) IS 'The daily pipeline (CALL it outside a transaction block): refresh of the days loaded since the last run, then per brand RFM (365 days) and AIPL (30 days), the tags due by their schedule, stored forecasts, quality rules; each step and brand in its own transaction with a job_log row (job run_daily); a failed step is logged and retried by the next run; steps already done for the day are skipped; one run at a time (55P03). docs/operations.md.';

-- For dashboards: per step and brand, the last run, the last success and the failures since.
CREATE VIEW retail_mid.run_daily_summary WITH (security_invoker = true) AS
WITH s AS (
    SELECT l.job_id, l.arguments ->> 'step' AS step, l.arguments ->> 'brand' AS brand, (l.arguments ->> 'as_of')::date AS as_of,
           l.started_at, l.finished_at, l.duration, l.rows_written, l.outcome, l.detail
      FROM retail_mid.job_log l WHERE l.job = 'run_daily')
SELECT k.step, k.brand,
       last.as_of AS last_as_of, last.outcome AS last_outcome, last.started_at AS last_started_at, last.duration AS last_duration,
       ok.as_of AS last_success_as_of, ok.finished_at AS last_success_at, ok.duration AS last_success_duration,
       ok.rows_written AS last_success_rows,
       (SELECT count(*) FROM s f WHERE f.step = k.step AND f.brand = k.brand AND f.outcome = 'failed'
           AND f.job_id > coalesce(okany.job_id, 0)) AS failures_since_success,
       fail.detail ->> 'sqlstate' AS last_error_sqlstate, fail.detail ->> 'error' AS last_error
  FROM (SELECT DISTINCT step, brand FROM s) k
  CROSS JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand ORDER BY s.job_id DESC LIMIT 1) last
  LEFT JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand AND s.outcome = 'ok' AND NOT s.detail ? 'skipped'
                      ORDER BY s.job_id DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand AND s.outcome = 'ok'
                      ORDER BY s.job_id DESC LIMIT 1) okany ON true
  LEFT JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand AND s.outcome = 'failed' ORDER BY s.job_id DESC LIMIT 1) fail ON true;
COMMENT ON VIEW retail_mid.run_daily_summary IS 'For dashboards: per step and brand of retail_mid.run_daily, the last run (as_of, outcome, duration), the last success (as_of, time, duration, rows written), the failures since the last success and the last error.';
COMMENT ON COLUMN retail_mid.run_daily_summary.step IS 'Step: refresh, rfm, aipl, tags, forecast or quality.';
COMMENT ON COLUMN retail_mid.run_daily_summary.brand IS 'Brand, or * for the steps that cover every brand at once (refresh, tags, quality).';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_as_of IS 'Day the last run of the step was for.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_outcome IS 'Outcome of the last run: running, ok or failed.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_started_at IS 'When the last run of the step started.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_duration IS 'Duration of the last run (NULL while it runs).';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_as_of IS 'Day the last successful run that did work was for (runs skipped as already done are not counted here).';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_at IS 'When the last successful run that did work ended.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_duration IS 'Duration of the last successful run that did work.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_rows IS 'Rows the last successful run that did work wrote.';
COMMENT ON COLUMN retail_mid.run_daily_summary.failures_since_success IS 'Failed runs since the last successful (or skipped as done) run; all of them when it never succeeded. 0 means healthy.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_error_sqlstate IS 'SQLSTATE of the last failure.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_error IS 'Message of the last failure.';

-- Scheduling through pg_cron (Debian postgresql-15-cron): one cron job named retail_mid_run_daily running
-- CALL retail_mid.run_daily() as the role that schedules it. pg_cron must be loaded (shared_preload_libraries)
-- and its extension created in this database (cron.database_name); otherwise 55000 with what to do.
CREATE FUNCTION retail_mid.cron_check()
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN NOT pg_has_role('pg_read_all_settings', 'USAGE') THEN 'The pg_cron extension does not exist in this database.'
                                WHEN current_setting('shared_preload_libraries') ~ '(^|[\s,])pg_cron($|[\s,])'
                                THEN 'pg_cron is loaded but CREATE EXTENSION pg_cron was not run in this database.'
                                ELSE 'pg_cron is not in shared_preload_libraries.' END,
                  HINT = 'Install the package postgresql-15-cron, set shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                         || current_database() || ''' in postgresql.conf, restart the server, then CREATE EXTENSION pg_cron (as a superuser); or run CALL retail_mid.run_daily() from any other scheduler.';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.cron_check() IS 'Raises 55000 (with the steps to install it) when the pg_cron extension is not installed in the current database.';

CREATE FUNCTION retail_mid.schedule_daily(cron text DEFAULT '30 2 * * *')
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_id bigint;
BEGIN
    IF cron IS NULL OR btrim(cron) = '' THEN
        RAISE EXCEPTION 'schedule_daily needs a cron schedule, e.g. ''30 2 * * *''' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM retail_mid.cron_check();
    -- cron.schedule with a job name replaces an existing job of that name; pg_cron validates the schedule (22023)
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO v_id USING 'retail_mid_run_daily', cron, 'CALL retail_mid.run_daily()';
    RAISE NOTICE 'retail_mid_run_daily scheduled (%) as cron job % in database %, running as %', cron, v_id, current_database(), current_user;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.schedule_daily(text) IS 'Installs (or replaces) the pg_cron job retail_mid_run_daily running CALL retail_mid.run_daily() on the given cron schedule (default 02:30 daily) as the current user; returns the cron job id. 55000 with a hint when pg_cron is not installed.';

CREATE FUNCTION retail_mid.unschedule_daily()
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_found boolean;
BEGIN
    PERFORM retail_mid.cron_check();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO v_found USING 'retail_mid_run_daily';
    IF v_found THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING 'retail_mid_run_daily';
    END IF;
    RETURN v_found;
END;
$$;
COMMENT ON FUNCTION retail_mid.unschedule_daily() IS 'Removes the pg_cron job retail_mid_run_daily; true when there was one, false otherwise. 55000 with a hint when pg_cron is not installed.';

REVOKE EXECUTE ON PROCEDURE retail_mid.run_daily(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retail_mid.run_daily_quality(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.run_daily_quality(timestamptz) TO retail_mid_admin;
REVOKE EXECUTE ON PROCEDURE retail_mid.run_daily_step(text, text, date, text, jsonb, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retail_mid.schedule_daily(text), retail_mid.unschedule_daily() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE retail_mid.run_daily(date) TO retail_mid_admin;
GRANT EXECUTE ON PROCEDURE retail_mid.run_daily_step(text, text, date, text, jsonb, boolean) TO retail_mid_admin;
GRANT EXECUTE ON FUNCTION retail_mid.schedule_daily(text), retail_mid.unschedule_daily() TO retail_mid_admin;
GRANT SELECT ON retail_mid.run_daily_summary TO retail_mid_admin;

-- issue 13: the DIM tables (issue 15) kept by pg_dump too
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_product', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_site', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_customer', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_calendar', $$WHERE date_key < '1980-01-01' OR date_key > '2070-12-31'$$);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dim_holiday', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.dim_holiday FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.dim_holiday IS 'Holidays as data: add, change or delete rows (moveable feasts such as the Spring Festival, Easter or Thanksgiving, store-specific days). Ships the fixed-date public holidays of CN and US for 1980-2070 (shipped = true); pg_dump keeps the rows users add and their changes to shipped rows.';
COMMENT ON COLUMN retail_mid.dim_holiday.shipped IS 'Row shipped with the extension (created again by CREATE EXTENSION; a restore merges the dumped version onto it).';

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

-- issue 15 (merged with the issuer-namespaced keys of issue 19 and the backups of issue 13): the domain tables
-- are kept by pg_dump; the domain DWD, the member DWS, dim_customer, the keyed views and reach_touch map an
-- identifier to its key in its issuer's namespace (customer_key_issuer) after identifier_value; refresh builds the
-- DIM layer first and the domains after the trade DWS.
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_behavior_event_di', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dwd_marketing_touch_di', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_behavior_customer_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_marketing_campaign_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_inventory_site_sku_1d', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_member_1d', '');
CREATE OR REPLACE FUNCTION retail_mid.build_dwd_domains(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; m bigint;
BEGIN
    PERFORM retail_mid.assign_customer_keys(array_agg(x.id_type), array_agg(x.id_value), array_agg(x.brand))
       FROM (SELECT DISTINCT e.id_type, retail_mid.identifier_value(e.id_value) AS id_value, e.brand
               FROM retail_mid.ods_behavior_event e
              WHERE e.event_time >= from_date AND e.event_time < to_date + 1
                AND retail_mid.identifier_value(e.id_value) IS NOT NULL
             UNION
             SELECT DISTINCT t.id_type, retail_mid.identifier_value(t.id_value), t.brand
               FROM retail_mid.ods_campaign_touch t
              WHERE t.touched_at >= from_date AND t.touched_at < to_date + 1
                AND retail_mid.identifier_value(t.id_value) IS NOT NULL) x
      WHERE NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                         WHERE k.id_type = x.id_type AND k.issuer = retail_mid.customer_key_issuer(x.id_type, x.brand)
                           AND k.id_value = x.id_value);

    DELETE FROM retail_mid.dwd_behavior_event_di WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dwd_behavior_event_di
    SELECT DISTINCT e.event_time::date, e.brand, k.customer_key, e.event_time, e.event_type, btrim(e.object_attribute),
           btrim(e.object_value), coalesce(nullif(btrim(e.channel), ''), '(none)'), e.event_count, e.amount
      FROM retail_mid.ods_behavior_event e
      JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)
                                AND k.id_value = retail_mid.identifier_value(e.id_value)
     WHERE e.event_time >= from_date AND e.event_time < to_date + 1;
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM retail_mid.dwd_marketing_touch_di WHERE dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dwd_marketing_touch_di
    SELECT DISTINCT t.touched_at::date, t.brand, btrim(t.campaign_id), k.customer_key,
           coalesce(nullif(btrim(t.channel), ''), '(none)'), t.touched_at, t.touch_type, btrim(t.coupon_id)
      FROM retail_mid.ods_campaign_touch t
      JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = retail_mid.identifier_value(t.id_value)
     WHERE t.touched_at >= from_date AND t.touched_at < to_date + 1;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.build_dws_domains(from_date date, to_date date)
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
      LEFT JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                     AND k.id_value = retail_mid.identifier_value(c.customer_id);
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

CREATE OR REPLACE FUNCTION retail_mid.dim_refresh(as_of date DEFAULT CURRENT_DATE, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) OR as_of <= '1900-01-01' OR as_of >= '9999-12-31' THEN
        RAISE EXCEPTION 'dim_refresh as_of must be a date after 1900-01-01 and before 9999-12-31'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- products
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    SELECT p.brand, p.sku_id, p.sku_name,
           coalesce(nullif(btrim(p.category_l1), ''), 'unknown') AS c1, coalesce(nullif(btrim(p.category_l2), ''), 'unknown') AS c2,
           coalesce(nullif(btrim(p.category_l3), ''), 'unknown') AS c3, coalesce(nullif(btrim(p.category_l4), ''), 'unknown') AS c4,
           coalesce(nullif(btrim(p.product_brand), ''), 'unknown') AS product_brand, p.list_price, p.package_size,
           CASE WHEN p.attributes ->> 'launch_date' ~ '^\d{4}-\d{2}-\d{2}$' THEN (p.attributes ->> 'launch_date')::date END AS launch_date,
           coalesce(nullif(btrim(p.attributes ->> 'status'), ''), 'active') AS status
      FROM retail_mid.ods_product p;
    -- a changed category closes the current version (or, changed again the same day, is replaced in place)
    UPDATE retail_mid.dim_product d SET valid_to = as_of, is_current = false
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current AND d.valid_from < as_of
       AND (d.category_l1, d.category_l2, d.category_l3, d.category_l4) IS DISTINCT FROM (s.c1, s.c2, s.c3, s.c4);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_product d SET category_l1 = s.c1, category_l2 = s.c2, category_l3 = s.c3, category_l4 = s.c4
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current
       AND (d.category_l1, d.category_l2, d.category_l3, d.category_l4) IS DISTINCT FROM (s.c1, s.c2, s.c3, s.c4);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO retail_mid.dim_product (brand, sku_id, valid_from, sku_name, category_l1, category_l2, category_l3, category_l4,
                                        product_brand, list_price, price_band, package_size, launch_date, status)
    SELECT s.brand, s.sku_id,
           CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_product o WHERE o.brand = s.brand AND o.sku_id = s.sku_id)
                THEN as_of ELSE date '1900-01-01' END,
           s.sku_name, s.c1, s.c2, s.c3, s.c4, s.product_brand, s.list_price, 'unknown', s.package_size, s.launch_date, s.status
      FROM rm_dim_src s
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.dim_product d WHERE d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    -- first sale days of the refreshed range
    IF from_date IS NOT NULL AND to_date IS NOT NULL THEN
        CREATE TEMP TABLE rm_dim_first ON COMMIT DROP AS
        SELECT l.brand, l.sku_id, min(o.order_time)::date AS first_day
          FROM retail_mid.ods_order o JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
         WHERE o.order_time >= from_date AND o.order_time < to_date + 1 AND l.quantity > 0
         GROUP BY l.brand, l.sku_id;
        UPDATE rm_dim_src s SET launch_date = least(f.first_day, d.launch_date)
          FROM rm_dim_first f, retail_mid.dim_product d
         WHERE s.launch_date IS NULL AND f.brand = s.brand AND f.sku_id = s.sku_id
           AND d.brand = s.brand AND d.sku_id = s.sku_id AND d.is_current;
        DROP TABLE rm_dim_first;
    END IF;
    -- type-1 attributes on every version; a product gone from the ODS is delisted
    UPDATE retail_mid.dim_product d
       SET sku_name = s.sku_name, product_brand = s.product_brand, list_price = s.list_price, package_size = s.package_size,
           launch_date = coalesce(s.launch_date, d.launch_date), status = s.status
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.sku_id = s.sku_id
       AND (d.sku_name, d.product_brand, d.list_price, d.package_size, coalesce(s.launch_date, d.launch_date), d.status)
           IS DISTINCT FROM (s.sku_name, s.product_brand, s.list_price, s.package_size, d.launch_date, s.status);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_product d SET status = 'delisted'
     WHERE d.status <> 'delisted' AND NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.sku_id = d.sku_id);
    -- price band: tercile of the list price within brand x category level 1 (current versions)
    UPDATE retail_mid.dim_product d SET price_band = b.band
      FROM (SELECT p.brand, p.sku_id, CASE WHEN p.list_price IS NULL THEN 'unknown'
                                           ELSE (ARRAY['low', 'mid', 'high'])[ntile(3) OVER (PARTITION BY p.brand, p.category_l1, p.list_price IS NULL ORDER BY p.list_price)] END AS band
              FROM retail_mid.dim_product p WHERE p.is_current) b
     WHERE d.brand = b.brand AND d.sku_id = b.sku_id AND d.price_band IS DISTINCT FROM b.band;
    DROP TABLE rm_dim_src;

    -- sites: region = attributes.region, else attributes.province, else the name of the regional DC that serves it
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    WITH RECURSIVE up AS (
        SELECT s.brand, s.site_id, s.parent_site_id AS up_id, 0 AS depth FROM retail_mid.ods_site s
        UNION ALL
        SELECT u.brand, u.site_id, p.parent_site_id, u.depth + 1
          FROM up u JOIN retail_mid.ods_site p ON p.brand = u.brand AND p.site_id = u.up_id AND p.kind <> 'RDC'
         WHERE u.depth < 10),
    rdc AS (
        SELECT DISTINCT ON (u.brand, u.site_id) u.brand, u.site_id, coalesce(r.site_name, r.site_id) AS rdc_name
          FROM up u JOIN retail_mid.ods_site r ON r.brand = u.brand AND r.site_id = u.up_id AND r.kind = 'RDC'
         ORDER BY u.brand, u.site_id, u.depth)
    SELECT s.brand, s.site_id, s.site_name, s.kind,
           coalesce(nullif(btrim(s.attributes ->> 'region'), ''), nullif(btrim(s.attributes ->> 'province'), ''),
                    CASE WHEN s.kind = 'RDC' THEN coalesce(s.site_name, s.site_id) END, r.rdc_name, 'unknown') AS region,
           coalesce(nullif(btrim(s.city), ''), 'unknown') AS city, s.floor_area, s.opened_on, s.closed_on,
           CASE WHEN s.closed_on <= as_of THEN 'closed' WHEN s.opened_on > as_of THEN 'planned' ELSE 'open' END AS status,
           s.parent_site_id, s.geom
      FROM retail_mid.ods_site s LEFT JOIN rdc r ON r.brand = s.brand AND r.site_id = s.site_id;
    UPDATE retail_mid.dim_site d SET valid_to = as_of, is_current = false
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current AND d.valid_from < as_of AND d.region IS DISTINCT FROM s.region;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_site d SET region = s.region
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current AND d.region IS DISTINCT FROM s.region;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    INSERT INTO retail_mid.dim_site (brand, site_id, valid_from, site_name, site_type, region, city, floor_area, opened_on,
                                     closed_on, status, parent_site_id, geom)
    SELECT s.brand, s.site_id,
           CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_site o WHERE o.brand = s.brand AND o.site_id = s.site_id)
                THEN as_of ELSE date '1900-01-01' END,
           s.site_name, s.kind, s.region, s.city, s.floor_area, s.opened_on, s.closed_on, s.status, s.parent_site_id, s.geom
      FROM rm_dim_src s
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.dim_site d WHERE d.brand = s.brand AND d.site_id = s.site_id AND d.is_current);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    UPDATE retail_mid.dim_site d
       SET site_name = s.site_name, site_type = s.kind, city = s.city, floor_area = s.floor_area, opened_on = s.opened_on,
           closed_on = s.closed_on, status = s.status, parent_site_id = s.parent_site_id, geom = s.geom
      FROM rm_dim_src s
     WHERE d.brand = s.brand AND d.site_id = s.site_id
       AND (d.site_name, d.site_type, d.city, d.floor_area, d.opened_on, d.closed_on, d.status, d.parent_site_id, d.geom::bytea)
           IS DISTINCT FROM (s.site_name, s.kind, s.city, s.floor_area, s.opened_on, s.closed_on, s.status, s.parent_site_id, s.geom::bytea);
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DELETE FROM retail_mid.dim_site d
     WHERE NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE s.brand = d.brand AND s.site_id = d.site_id);
    DROP TABLE rm_dim_src;

    -- customers (type 1): rebuilt where changed
    CREATE TEMP TABLE rm_dim_src ON COMMIT DROP AS
    SELECT c.brand, c.id_type, md5(c.customer_id) AS customer_id_hash, k.customer_key, coalesce(c.gender, 'U') AS gender,
           date_part('year', c.birth_date)::int4 AS birth_year,
           coalesce(nullif(btrim(coalesce(c.attributes ->> 'member_level', c.attributes ->> 'level')), ''), 'member') AS member_level,
           c.home_store_id, coalesce(c.guide_id, nullif(btrim(c.attributes ->> 'guide_id'), '')) AS guide_id,
           coalesce(nullif(btrim(c.register_channel), ''), 'unknown') AS register_channel, c.register_time::date AS register_date,
           coalesce(nullif(btrim(c.city), ''), 'unknown') AS city, c.province, c.country
      FROM retail_mid.ods_customer c
      LEFT JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                         AND k.id_value = btrim(c.customer_id);
    DELETE FROM retail_mid.dim_customer d
     WHERE NOT EXISTS (SELECT 1 FROM rm_dim_src s WHERE (s.brand, s.id_type, s.customer_id_hash, s.customer_key, s.gender, s.birth_year,
                               s.member_level, s.home_store_id, s.guide_id, s.register_channel, s.register_date, s.city,
                               s.province, s.country)
                             IS NOT DISTINCT FROM (d.brand, d.id_type, d.customer_id_hash, d.customer_key, d.gender, d.birth_year,
                               d.member_level, d.home_store_id, d.guide_id, d.register_channel, d.register_date, d.city,
                               d.province, d.country));
    INSERT INTO retail_mid.dim_customer
    SELECT * FROM rm_dim_src ON CONFLICT (brand, id_type, customer_id_hash) DO NOTHING;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;
    DROP TABLE rm_dim_src;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dim bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_domains bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
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

    -- issue 15: the dimensions first (the DWD labels lines with the categories and regions valid on their day)
    v_dim := retail_mid.dim_refresh(CURRENT_DATE, from_date, to_date);
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
        jsonb_build_object('dim_rows', v_dim, 'dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'domain_rows', v_domains, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;

COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Brings the DIM layer up to date, rebuilds DWD and DWS (trade, then behaviour, marketing, inventory and members) for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';
CREATE OR REPLACE VIEW retail_mid.behavior_event_keyed AS
SELECT e.brand::text AS brand, k.customer_key::int4 AS customer_key, e.event_time::timestamp AS event_time, e.event_type::text AS event_type,
       e.channel::text AS channel, e.event_count::int AS event_count, e.amount::numeric(14,4) AS amount
  FROM retail_mid.ods_behavior_event e
  JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)
                                AND k.id_value = retail_mid.identifier_value(e.id_value);

ALTER VIEW retail_mid.behavior_event_keyed SET (security_invoker = false);
CREATE OR REPLACE VIEW retail_mid.campaign_touch_keyed AS
SELECT t.brand::text AS brand, k.customer_key::int4 AS customer_key, t.campaign_id::text AS campaign_id, t.channel::text AS channel,
       t.touched_at::timestamp AS touched_at, t.touch_type::text AS touch_type, t.coupon_id::text AS coupon_id
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = retail_mid.identifier_value(t.id_value);

ALTER VIEW retail_mid.campaign_touch_keyed SET (security_invoker = false);
CREATE OR REPLACE VIEW retail_mid.reach_touch AS
SELECT o.brand::text AS brand, o.customer_key::int4 AS customer_key, o.planned_at::timestamp AS touched_at,
       o.channel::text AS channel, 'outbox'::text AS source
  FROM retail_mid.reach_outbox o WHERE o.status IN ('planned', 'sent', 'delivered')
UNION ALL
SELECT t.brand, k.customer_key, t.touched_at, t.channel, 'ods_campaign_touch'
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = retail_mid.identifier_value(t.id_value)
 WHERE t.touch_type IN ('sent', 'exposed') AND t.touched_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_plan p WHERE p.brand = t.brand AND p.campaign_id = t.campaign_id);

ALTER VIEW retail_mid.reach_touch SET (security_invoker = false);

-- issue 16: campaign results
-- The control group of a reach plan (reach_plan.holdout_share, reach_holdout, reach_holdout_bucket; reach_plan_run
-- holds the share out and returns held_out), delivery receipts loaded all or nothing (reach_receipt,
-- reach_receipt_check, reach_receipt_load, load_reach_receipts), reach_plan_performance with the uplift against the
-- control, and the per-channel response-rate tags (src/tags/reach_results.sql).
-- (columns added without a stored missing value, then filled, as a fresh install has them)
ALTER TABLE retail_mid.reach_plan ADD COLUMN holdout_share numeric;
ALTER TABLE retail_mid.reach_plan DISABLE TRIGGER reach_plan_check;
UPDATE retail_mid.reach_plan SET holdout_share = 0;
ALTER TABLE retail_mid.reach_plan ENABLE TRIGGER reach_plan_check;
ALTER TABLE retail_mid.reach_plan ALTER COLUMN holdout_share SET DEFAULT 0, ALTER COLUMN holdout_share SET NOT NULL,
    ADD CONSTRAINT reach_plan_holdout_share_check CHECK (holdout_share >= 0 AND holdout_share < 1);
COMMENT ON COLUMN retail_mid.reach_plan.holdout_share IS 'Control group: the share (0 <= share < 1) of the members who would be touched that is held out instead, chosen by reach_holdout_bucket(plan_id, customer_key) < holdout_share and recorded in reach_holdout; 0 (the default) = no control group.';
ALTER TABLE retail_mid.reach_run ADD COLUMN held_out bigint;
UPDATE retail_mid.reach_run SET held_out = 0;
ALTER TABLE retail_mid.reach_run ALTER COLUMN held_out SET DEFAULT 0, ALTER COLUMN held_out SET NOT NULL;
COMMENT ON COLUMN retail_mid.reach_run.held_out IS 'Members put in the control group (reach_holdout) by this run.';
CREATE OR REPLACE FUNCTION retail_mid.reach_plan_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE bad text;
BEGIN
    IF NEW.cap_touches IS NULL OR NEW.cap_days IS NULL OR NEW.send_at IS NULL THEN
        RAISE EXCEPTION 'cap_touches, cap_days and send_at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NEW.cap_touches <= 0 OR NEW.cap_days IS NULL OR NEW.cap_days <= 0 THEN
        RAISE EXCEPTION 'frequency cap must be positive' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('cap_touches = %s, cap_days = %s', coalesce(NEW.cap_touches::text, 'NULL'), coalesce(NEW.cap_days::text, 'NULL'));
    END IF;
    IF NEW.cap_days > 3660 THEN
        RAISE EXCEPTION 'frequency cap window must be at most 3660 days' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.send_at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'send time must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.holdout_share IS NULL THEN
        RAISE EXCEPTION 'holdout_share must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Use 0 for no control group.';
    END IF;
    IF NEW.holdout_share = 'NaN' OR NEW.holdout_share < 0 OR NEW.holdout_share >= 1 THEN
        RAISE EXCEPTION 'holdout_share must be at least 0 and less than 1' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('holdout_share = %s', NEW.holdout_share);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.holdout_share <> OLD.holdout_share
       AND (EXISTS (SELECT 1 FROM retail_mid.reach_outbox o WHERE o.plan_id = OLD.plan_id)
            OR EXISTS (SELECT 1 FROM retail_mid.reach_holdout h WHERE h.plan_id = OLD.plan_id)) THEN
        RAISE EXCEPTION 'the holdout share of a reach plan that has run cannot change' USING ERRCODE = 'object_in_use';
    END IF;
    IF NEW.audience IS NULL THEN
        RAISE EXCEPTION 'audience expression must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM retail_mid.audience_parse(NEW.audience);   -- 42601 with the position on a syntax error
    IF coalesce(cardinality(NEW.channels), 0) = 0 OR array_position(NEW.channels, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'a reach plan needs at least one channel and no NULL channel' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(c, ', ') INTO bad FROM unnest(NEW.channels) c
     WHERE c = '*' OR NOT EXISTS (SELECT 1 FROM retail_mid.reach_channel r WHERE r.channel = c);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown channel: %', bad USING ERRCODE = 'undefined_object',
            HINT = 'Channels are the rows of retail_mid.reach_channel (except *).';
    END IF;
    IF (SELECT count(DISTINCT c) FROM unnest(NEW.channels) c) <> cardinality(NEW.channels) THEN
        RAISE EXCEPTION 'a channel is listed twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.templates IS NULL OR jsonb_typeof(NEW.templates) <> 'object' OR NOT NEW.templates ? '*'
       OR EXISTS (SELECT 1 FROM jsonb_each(NEW.templates) e WHERE jsonb_typeof(e.value) <> 'string' OR btrim(e.value #>> '{}') = '') THEN
        RAISE EXCEPTION 'templates must map segments to non-empty template names and have a * default'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"*": "generic", "champions": "vip_offer"}.';
    END IF;
    IF NEW.segment_tag IS NOT NULL AND NOT EXISTS (SELECT 1 FROM retail_mid.tag_definition t WHERE t.tag_name = NEW.segment_tag) THEN
        RAISE EXCEPTION 'unknown segment tag "%"', NEW.segment_tag USING ERRCODE = 'undefined_object';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.campaign_id := coalesce(NEW.campaign_id, 'reach_plan_' || NEW.plan_id);
    ELSIF NEW.brand <> OLD.brand AND EXISTS (SELECT 1 FROM retail_mid.reach_outbox o WHERE o.plan_id = OLD.plan_id) THEN
        RAISE EXCEPTION 'the brand of a reach plan that has run cannot change' USING ERRCODE = 'object_in_use';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_check() IS 'Trigger of reach_plan: refuses bad plans (cap, channels, templates, segment tag, audience syntax) with specific SQLSTATEs.';

-- issue 16: the control group of a plan. The members who would be touched and whose hash bucket of (plan,
-- customer key) is below the plan's holdout_share are written here instead of the outbox: recorded, never sent.
CREATE TABLE retail_mid.reach_holdout (
    plan_id      bigint NOT NULL REFERENCES retail_mid.reach_plan,
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    channel      text NOT NULL REFERENCES retail_mid.reach_channel,
    template     text NOT NULL,
    planned_at   timestamp NOT NULL,
    bucket       float8 NOT NULL CHECK (bucket >= 0 AND bucket < 1),
    run_id       bigint NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, customer_key)
);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_holdout', '');
COMMENT ON TABLE retail_mid.reach_holdout IS 'Control group members of reach plans: audience members who passed consent, the frequency cap and the one-touch-per-person rule but were held out by the deterministic hash (reach_holdout_bucket < the plan''s holdout_share); never written to the outbox, never sent.';
COMMENT ON COLUMN retail_mid.reach_holdout.plan_id IS 'Reach plan.';
COMMENT ON COLUMN retail_mid.reach_holdout.brand IS 'Brand of the plan.';
COMMENT ON COLUMN retail_mid.reach_holdout.customer_key IS 'Held-out audience member.';
COMMENT ON COLUMN retail_mid.reach_holdout.channel IS 'Channel the member would have been touched through (the control of that channel in reach_plan_performance).';
COMMENT ON COLUMN retail_mid.reach_holdout.template IS 'Template the member would have received.';
COMMENT ON COLUMN retail_mid.reach_holdout.planned_at IS 'The plan''s send time (the start of the response window of the control).';
COMMENT ON COLUMN retail_mid.reach_holdout.bucket IS 'reach_holdout_bucket(plan_id, customer_key), in [0, 1).';
COMMENT ON COLUMN retail_mid.reach_holdout.run_id IS 'The reach_run that decided.';
COMMENT ON COLUMN retail_mid.reach_holdout.decided_at IS 'When the decision was written.';

-- A uniform number in [0, 1) from (plan, customer key): the first 52 bits of md5('<plan_id>:<customer_key>').
-- md5 is the same on every platform and version, so the control group of a plan is reproducible anywhere.
CREATE FUNCTION retail_mid.reach_holdout_bucket(plan_id bigint, customer_key int4)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ((('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.md5(plan_id::text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) customer_key::text), 1, 13))::bit(52))::int8)::float8
       OPERATOR(pg_catalog./) 4503599627370496::float8;
COMMENT ON FUNCTION retail_mid.reach_holdout_bucket(bigint, int4) IS 'Deterministic hash bucket in [0, 1) of a plan and customer key (the first 52 bits of md5(''<plan_id>:<customer_key>'') / 2^52); a member is in the plan''s control group when it is below the plan''s holdout_share.';

DROP FUNCTION retail_mid.reach_plan_create(text, text, text[], timestamp, jsonb, text, int, int, text, text);
CREATE FUNCTION retail_mid.reach_plan_create(brand text, audience text, channels text[], send_at timestamp,
                                             templates jsonb DEFAULT '{"*": "default"}', segment_tag text DEFAULT NULL,
                                             cap_touches int DEFAULT 7, cap_days int DEFAULT 30, name text DEFAULT NULL,
                                             campaign_id text DEFAULT NULL, holdout_share numeric DEFAULT 0)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE id bigint;
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retail_mid.reach_plan (brand, name, audience, channels, segment_tag, templates, cap_touches, cap_days, send_at, campaign_id,
                                       holdout_share)
    VALUES (brand, name, audience, channels, segment_tag, templates, cap_touches, cap_days, send_at, campaign_id, holdout_share)
    RETURNING plan_id INTO id;
    RETURN id;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_create(text, text, text[], timestamp, jsonb, text, int, int, text, text, numeric) IS 'Creates a reach plan (cap defaults to 7 touches in 30 days; holdout_share, default 0, is the share held out as a control group) and returns its plan_id.';

DROP FUNCTION retail_mid.reach_plan_run(bigint);
CREATE FUNCTION retail_mid.reach_plan_run(plan_id bigint)
RETURNS TABLE (run_id bigint, members bigint, already_decided bigint, planned bigint, skipped_frequency_cap bigint,
               skipped_no_consent bigint, skipped_global_opt_out bigint, skipped_same_person bigint, held_out bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p retail_mid.reach_plan; job bigint; aud retail_mid.rbitmap; n_members bigint; n_done bigint;
    n_planned bigint; n_cap bigint; n_consent bigint; n_opt bigint; n_same bigint; n_held bigint; v_run bigint; win interval;
BEGIN
    IF plan_id IS NULL THEN
        RAISE EXCEPTION 'plan_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO p FROM retail_mid.reach_plan r WHERE r.plan_id = reach_plan_run.plan_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reach plan % does not exist', plan_id USING ERRCODE = 'undefined_object';
    END IF;
    job := retail_mid.job_start('reach_plan_run', jsonb_build_object('plan_id', plan_id, 'brand', p.brand));
    -- Serialise the runs of a brand: a concurrent run waits here, then (read committed) sees the first one's
    -- outbox rows; under repeatable read it fails with 40001 instead of counting from a stale snapshot.
    INSERT INTO retail_mid.reach_brand_lock AS l (brand) VALUES (p.brand)
    ON CONFLICT (brand) DO UPDATE SET last_run_at = now();
    SELECT * INTO p FROM retail_mid.reach_plan r WHERE r.plan_id = reach_plan_run.plan_id;
    win := make_interval(days => p.cap_days);

    -- the plan's brand is the context: brand tags answer with that brand's values, not another brand's
    aud := retail_mid.audience(p.audience, p.brand);
    n_members := retail_mid.rb_cardinality(aud);
    IF n_members = 0 THEN
        RAISE EXCEPTION 'the audience of reach plan % is empty', plan_id USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Audience expression: %s', p.audience);
    END IF;
    CREATE TEMP TABLE rm_reach_member (customer_key int4 PRIMARY KEY, person int4, segment text, channel text, reason text) ON COMMIT DROP;
    -- the member's OneID person (oneid_person_brand, in the plan's brand: at most one row per key; a key without a
    -- person is its own): the keys of one person share the frequency cap and one touch per plan
    INSERT INTO rm_reach_member (customer_key, person)
    SELECT k, coalesce(ob.person_key, k) FROM retail_mid.rb_iterate(aud) k
      LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = k
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.reach_outbox o WHERE o.plan_id = p.plan_id AND o.customer_key = k)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_holdout h WHERE h.plan_id = p.plan_id AND h.customer_key = k);
    CREATE INDEX ON rm_reach_member (person);
    n_done := n_members - (SELECT count(*) FROM rm_reach_member);
    ANALYZE rm_reach_member;
    RAISE NOTICE 'reach_plan_run: plan %: % audience members, % decided before, % to decide', plan_id, n_members, n_done, n_members - n_done;

    IF p.segment_tag IS NOT NULL THEN
        -- a brand tag's segment in the plan's brand; a group tag's group-wide value
        UPDATE rm_reach_member m SET segment = v.value FROM retail_mid.tag_value v, retail_mid.tag_definition d
         WHERE d.tag_name = p.segment_tag AND v.tag_name = d.tag_name AND v.valid_to IS NULL AND v.customer_key = m.customer_key
           AND v.brand = CASE d.scope WHEN 'brand' THEN p.brand ELSE '*' END;
    END IF;

    -- Consent as of send_at: the latest row per channel; a channel is usable when that row grants it and no
    -- global opt-out is as recent or more recent. The customer's preference rank first, then the plan's order.
    WITH latest AS (
        SELECT DISTINCT ON (c.customer_key, c.channel) c.customer_key, c.channel, c.status, c.preference, c.changed_at
          FROM retail_mid.reach_consent c JOIN rm_reach_member m ON m.customer_key = c.customer_key
         WHERE c.brand = p.brand AND c.changed_at <= p.send_at AND (c.channel = '*' OR c.channel = ANY (p.channels))
         ORDER BY c.customer_key, c.channel, c.changed_at DESC),
    usable AS (
        SELECT DISTINCT ON (l.customer_key) l.customer_key, l.channel
          FROM latest l LEFT JOIN latest g ON g.customer_key = l.customer_key AND g.channel = '*'
         WHERE l.channel <> '*' AND l.status = 'granted' AND (g.changed_at IS NULL OR g.changed_at < l.changed_at)
         ORDER BY l.customer_key, l.preference NULLS LAST, array_position(p.channels, l.channel))
    UPDATE rm_reach_member m SET channel = u.channel FROM usable u WHERE u.customer_key = m.customer_key;
    UPDATE rm_reach_member m SET reason = CASE WHEN EXISTS (SELECT 1 FROM retail_mid.reach_consent c
                                                             WHERE c.brand = p.brand AND c.customer_key = m.customer_key
                                                               AND c.channel = '*' AND c.changed_at <= p.send_at)
                                               THEN 'global_opt_out' ELSE 'no_consent' END
     WHERE m.channel IS NULL;

    -- One person, one touch: a plan touches a person once, through the lowest key with a channel, unless an
    -- earlier run of the plan already touched (or held out) the person through another key.
    WITH earlier AS (
        SELECT coalesce(ob.person_key, o.customer_key) AS person
          FROM retail_mid.reach_outbox o
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = o.customer_key
         WHERE o.plan_id = p.plan_id AND o.status IN ('planned', 'sent', 'delivered')
        UNION ALL
        SELECT coalesce(ob.person_key, h.customer_key)
          FROM retail_mid.reach_holdout h
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = h.customer_key
         WHERE h.plan_id = p.plan_id),
    ranked AS (
        SELECT m.customer_key, row_number() OVER (PARTITION BY m.person ORDER BY m.customer_key) AS k,
               m.person IN (SELECT e.person FROM earlier e) AS touched
          FROM rm_reach_member m WHERE m.channel IS NOT NULL)
    UPDATE rm_reach_member m SET reason = 'same_person', channel = NULL
      FROM ranked r WHERE r.customer_key = m.customer_key AND (r.k > 1 OR r.touched);

    -- Frequency cap over every window (e - cap_days, e]: the new touch at send_at is allowed when each window
    -- containing it (e in [send_at, send_at + cap_days)) holds fewer than cap_touches touches. Such a window
    -- is fullest when it ends at send_at or at one of the touches after send_at (later plans count too).
    -- (per person: the touches of all the person's keys)
    WITH t AS (
        SELECT m.person AS customer_key, r.touched_at
          FROM retail_mid.reach_touch r
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = r.customer_key
          JOIN rm_reach_member m ON m.person = coalesce(ob.person_key, r.customer_key)
         WHERE m.channel IS NOT NULL AND r.brand = p.brand
           AND r.touched_at > p.send_at - win AND r.touched_at < p.send_at + win),
    w AS (
        SELECT t.customer_key, t.touched_at,
               count(*) OVER (PARTITION BY t.customer_key ORDER BY t.touched_at
                              RANGE BETWEEN win - interval '1 microsecond' PRECEDING AND CURRENT ROW) AS ending_here,
               count(*) FILTER (WHERE t.touched_at <= p.send_at) OVER (PARTITION BY t.customer_key) AS ending_at_send
          FROM t),
    fullest AS (
        SELECT w.customer_key, max(greatest(CASE WHEN w.touched_at > p.send_at THEN w.ending_here ELSE 0 END, w.ending_at_send)) AS n
          FROM w GROUP BY w.customer_key)
    UPDATE rm_reach_member m SET reason = 'frequency_cap', channel = NULL
      FROM fullest f WHERE f.customer_key = m.person AND f.n >= p.cap_touches AND m.channel IS NOT NULL;

    -- issue 16: the control group, among the members who would be touched: the hash bucket of (plan, key) below
    -- the plan's share; recorded in reach_holdout with the channel and template they would have got, never sent
    IF p.holdout_share > 0 THEN
        UPDATE rm_reach_member m SET reason = 'holdout'
         WHERE m.channel IS NOT NULL AND retail_mid.reach_holdout_bucket(p.plan_id, m.customer_key) < p.holdout_share;
    END IF;

    INSERT INTO retail_mid.reach_run (plan_id, brand, job_id, members, already_decided, planned)
    VALUES (p.plan_id, p.brand, job, n_members, n_done, 0) RETURNING reach_run.run_id INTO v_run;
    INSERT INTO retail_mid.reach_outbox (plan_id, brand, customer_key, channel, template, planned_at, status, reason, run_id)
    SELECT p.plan_id, p.brand, m.customer_key, m.channel,
           CASE WHEN m.channel IS NOT NULL THEN coalesce(p.templates ->> m.segment, p.templates ->> '*') END,
           p.send_at, CASE WHEN m.channel IS NULL THEN 'skipped' ELSE 'planned' END, m.reason, v_run
      FROM rm_reach_member m WHERE m.reason IS DISTINCT FROM 'holdout' ORDER BY m.customer_key
    ON CONFLICT ON CONSTRAINT reach_outbox_pkey DO NOTHING;
    INSERT INTO retail_mid.reach_holdout (plan_id, brand, customer_key, channel, template, planned_at, bucket, run_id)
    SELECT p.plan_id, p.brand, m.customer_key, m.channel, coalesce(p.templates ->> m.segment, p.templates ->> '*'),
           p.send_at, retail_mid.reach_holdout_bucket(p.plan_id, m.customer_key), v_run
      FROM rm_reach_member m WHERE m.reason = 'holdout' ORDER BY m.customer_key
    ON CONFLICT ON CONSTRAINT reach_holdout_pkey DO NOTHING;
    SELECT count(*) FILTER (WHERE m.channel IS NOT NULL AND m.reason IS NULL), count(*) FILTER (WHERE m.reason = 'frequency_cap'),
           count(*) FILTER (WHERE m.reason = 'no_consent'), count(*) FILTER (WHERE m.reason = 'global_opt_out'),
           count(*) FILTER (WHERE m.reason = 'same_person'), count(*) FILTER (WHERE m.reason = 'holdout')
      INTO n_planned, n_cap, n_consent, n_opt, n_same, n_held FROM rm_reach_member m;
    UPDATE retail_mid.reach_run r SET planned = n_planned, held_out = n_held,
           skipped = jsonb_build_object('frequency_cap', n_cap, 'no_consent', n_consent, 'global_opt_out', n_opt, 'same_person', n_same)
     WHERE r.run_id = v_run;
    RAISE NOTICE 'reach_plan_run: plan %: % touches planned, skipped: % over the frequency cap, % without consent, % opted out, % other keys of a person touched',
        plan_id, n_planned, n_cap, n_consent, n_opt, n_same;
    IF p.holdout_share > 0 THEN
        RAISE NOTICE 'reach_plan_run: plan %: % members held out as the control group (share %)', plan_id, n_held, p.holdout_share;
    END IF;
    PERFORM retail_mid.job_finish(job, n_planned + n_cap + n_consent + n_opt + n_same + n_held,
        jsonb_build_object('run_id', v_run, 'members', n_members, 'already_decided', n_done, 'planned', n_planned,
                           'skipped', jsonb_build_object('frequency_cap', n_cap, 'no_consent', n_consent, 'global_opt_out', n_opt, 'same_person', n_same),
                           'held_out', n_held));
    DROP TABLE rm_reach_member;
    RETURN QUERY SELECT v_run, n_members, n_done, n_planned, n_cap, n_consent, n_opt, n_same, n_held;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_run(bigint) IS 'Decides every audience member of a plan that has no decision yet: the most preferred consented channel and the segment''s template, or skipped (frequency_cap per OneID person, no_consent, global_opt_out, same_person), or held out as the control group (holdout_share); writes reach_outbox, reach_holdout, reach_run and job_log. Re-running writes nothing twice; runs of one brand are serialised.';

-- ===== src/tags/reach_results.sql (new) =====
-- tags/reach_results.sql: campaign results (issue 16): delivery receipts and responses per touch, the
-- performance of each plan, channel and template against its control group, and per-channel response-rate tags.
--
-- A touch is an outbox row that was not skipped (reach.sql). Receipts come back from the delivery systems per touch
-- (plan, customer key) and are loaded all or nothing. The control group of a plan is reach_holdout (reach.sql).

CREATE SEQUENCE retail_mid.reach_receipt_batch_seq;
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_receipt_batch_seq', '');
COMMENT ON SEQUENCE retail_mid.reach_receipt_batch_seq IS 'Batch numbers of reach receipt loads.';

CREATE TABLE retail_mid.reach_receipt (
    plan_id      bigint NOT NULL,
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    channel      text NOT NULL,
    template     text NOT NULL,
    event        text NOT NULL CHECK (event IN ('sent', 'delivered', 'opened', 'clicked', 'redeemed', 'unsubscribed', 'bounced')),
    event_at     timestamp NOT NULL CHECK (event_at > '-infinity' AND event_at < 'infinity'),
    batch_id     bigint NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, customer_key, event, event_at),
    FOREIGN KEY (plan_id, customer_key) REFERENCES retail_mid.reach_outbox
);
CREATE INDEX reach_receipt_customer ON retail_mid.reach_receipt (brand, customer_key, event_at);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_receipt', '');
COMMENT ON TABLE retail_mid.reach_receipt IS 'Delivery receipts and responses of reach touches (sent, delivered, opened, clicked, redeemed, unsubscribed, bounced), one row per touch, event and time; loaded all or nothing by reach_receipt_load and load_reach_receipts.';
COMMENT ON COLUMN retail_mid.reach_receipt.plan_id IS 'Reach plan of the touch.';
COMMENT ON COLUMN retail_mid.reach_receipt.brand IS 'Brand of the plan.';
COMMENT ON COLUMN retail_mid.reach_receipt.customer_key IS 'Customer touched (with plan_id: the outbox row).';
COMMENT ON COLUMN retail_mid.reach_receipt.channel IS 'Channel of the touch (from the outbox).';
COMMENT ON COLUMN retail_mid.reach_receipt.template IS 'Content template of the touch (from the outbox).';
COMMENT ON COLUMN retail_mid.reach_receipt.event IS 'sent, delivered, opened, clicked, redeemed, unsubscribed or bounced.';
COMMENT ON COLUMN retail_mid.reach_receipt.event_at IS 'When the event happened (local time of the brand, like the outbox); never before the planned send time, and responses never before the touch''s sent receipt.';
COMMENT ON COLUMN retail_mid.reach_receipt.batch_id IS 'The load that brought the row (reach_receipt_batch_seq).';
COMMENT ON COLUMN retail_mid.reach_receipt.loaded_at IS 'When it was loaded.';

-- A timestamp from text, NULL when it is not one (2026-02-30, 25:00 ...): a bad time is a reason, not an error.
-- (The exception block starts a subtransaction, which a parallel worker may not: parallel unsafe.)
CREATE FUNCTION retail_mid.reach_receipt_time(value text)
RETURNS timestamp LANGUAGE plpgsql STABLE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF retail_mid.invalid_field(value, 'timestamp') THEN
        RETURN NULL;
    END IF;
    RETURN btrim(value)::timestamp;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_receipt_time(text) IS 'The text as a timestamp (YYYY-MM-DD[ HH:MM[:SS[.frac]]]), NULL when it is not a valid one.';

-- Stages a batch of receipts (a JSON array of objects) in pg_temp.rm_receipt and sets the first reason each bad
-- row has; returns the number of rows. Used by reach_receipt_check and reach_receipt_load.
CREATE FUNCTION retail_mid.reach_receipt_stage(receipts jsonb)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF receipts IS NULL OR jsonb_typeof(receipts) <> 'array' THEN
        RAISE EXCEPTION 'receipts must be a JSON array of objects' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'For example [{"plan_id": 1, "customer_key": 42, "event": "delivered", "event_at": "2026-06-01 10:02"}].';
    END IF;
    IF to_regclass('pg_temp.rm_receipt') IS NOT NULL THEN
        DROP TABLE pg_temp.rm_receipt;
    END IF;
    CREATE TEMP TABLE rm_receipt (row_no bigint PRIMARY KEY, plan_id text, customer_key text, channel text, template text,
        event text, event_at text, reason text, p bigint, k int4, t timestamp, brand text, o_channel text, o_template text,
        planned_at timestamp, o_status text) ON COMMIT DROP;
    INSERT INTO rm_receipt (row_no, plan_id, customer_key, channel, template, event, event_at, reason)
    SELECT e.n, e.v ->> 'plan_id', e.v ->> 'customer_key', nullif(btrim(e.v ->> 'channel'), ''), nullif(btrim(e.v ->> 'template'), ''),
           e.v ->> 'event', e.v ->> 'event_at', CASE WHEN jsonb_typeof(e.v) <> 'object' THEN 'not a JSON object' END
      FROM jsonb_array_elements(receipts) WITH ORDINALITY e(v, n);
    GET DIAGNOSTICS n = ROW_COUNT;

    -- the fields
    UPDATE rm_receipt r SET reason = CASE
        WHEN r.plan_id IS NULL OR r.plan_id !~ '^\s*\d{1,18}\s*$' THEN 'plan_id is missing or not a plan id'
        WHEN r.customer_key IS NULL OR r.customer_key !~ '^\s*\d{1,10}\s*$' OR btrim(r.customer_key)::int8 > 2147483647
             THEN 'customer_key is missing or not a customer key'
        WHEN r.event IS NULL OR lower(btrim(r.event)) NOT IN ('sent', 'delivered', 'opened', 'clicked', 'redeemed', 'unsubscribed', 'bounced')
             THEN format('unknown event type "%s"', coalesce(r.event, ''))
        WHEN retail_mid.reach_receipt_time(r.event_at) IS NULL THEN format('event_at "%s" is missing or not a timestamp', coalesce(r.event_at, ''))
        END
     WHERE r.reason IS NULL;
    UPDATE rm_receipt r SET p = btrim(r.plan_id)::bigint, k = btrim(r.customer_key)::int4, event = lower(btrim(r.event)),
                            t = retail_mid.reach_receipt_time(r.event_at)
     WHERE r.reason IS NULL;

    -- the touch: an outbox row of a plan the caller can see that was not skipped
    UPDATE rm_receipt r SET brand = o.brand, o_channel = o.channel, o_template = o.template, planned_at = o.planned_at, o_status = o.status
      FROM retail_mid.reach_outbox o WHERE r.reason IS NULL AND o.plan_id = r.p AND o.customer_key = r.k;
    UPDATE rm_receipt r SET reason = CASE
        WHEN NOT EXISTS (SELECT 1 FROM retail_mid.reach_plan x WHERE x.plan_id = r.p) THEN format('unknown plan %s', r.p)
        WHEN EXISTS (SELECT 1 FROM retail_mid.reach_holdout h WHERE h.plan_id = r.p AND h.customer_key = r.k)
             THEN format('unknown touch: customer %s is in the control group of plan %s and was never sent', r.k, r.p)
        WHEN r.o_status IS NULL THEN format('unknown touch: plan %s has no outbox row for customer %s', r.p, r.k)
        WHEN r.o_status = 'skipped' THEN format('unknown touch: customer %s was skipped by plan %s', r.k, r.p)
        WHEN r.channel IS NOT NULL AND r.channel <> r.o_channel THEN format('channel %s is not the touch''s channel %s', r.channel, r.o_channel)
        WHEN r.template IS NOT NULL AND r.template <> r.o_template THEN format('template %s is not the touch''s template %s', r.template, r.o_template)
        WHEN r.t < r.planned_at THEN format('%s at %s is before the send (planned at %s)', r.event, to_char(r.t, 'YYYY-MM-DD HH24:MI:SS'), to_char(r.planned_at, 'YYYY-MM-DD HH24:MI:SS'))
        END
     WHERE r.reason IS NULL;
    -- responses not before the touch's sent receipt (loaded before or in this batch)
    UPDATE rm_receipt r SET reason = format('%s at %s is before the send (sent at %s)', r.event, to_char(r.t, 'YYYY-MM-DD HH24:MI:SS'), to_char(s.sent_at, 'YYYY-MM-DD HH24:MI:SS'))
      FROM (SELECT x.p, x.k, min(x.sent_at) AS sent_at
              FROM (SELECT y.p, y.k, y.t AS sent_at FROM rm_receipt y WHERE y.reason IS NULL AND y.event = 'sent'
                    UNION ALL
                    SELECT q.plan_id, q.customer_key, q.event_at FROM retail_mid.reach_receipt q
                     WHERE q.event = 'sent' AND (q.plan_id, q.customer_key) IN (SELECT z.p, z.k FROM rm_receipt z)) x
             GROUP BY x.p, x.k) s
     WHERE r.reason IS NULL AND r.event <> 'sent' AND s.p = r.p AND s.k = r.k AND r.t < s.sent_at;
    -- duplicates: within the batch (the later rows), and of rows loaded before
    UPDATE rm_receipt r SET reason = format('duplicate of row %s', d.first_row)
      FROM (SELECT y.row_no, first_value(y.row_no) OVER w AS first_row, row_number() OVER w AS i
              FROM rm_receipt y WHERE y.p IS NOT NULL
            WINDOW w AS (PARTITION BY y.p, y.k, y.event, y.t ORDER BY y.row_no)) d
     WHERE r.reason IS NULL AND d.row_no = r.row_no AND d.i > 1;
    UPDATE rm_receipt r SET reason = format('already loaded (batch %s)', q.batch_id)
      FROM retail_mid.reach_receipt q
     WHERE r.reason IS NULL AND q.plan_id = r.p AND q.customer_key = r.k AND q.event = r.event AND q.event_at = r.t;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_receipt_stage(jsonb) IS 'Internal: stages a JSON array of receipts in pg_temp.rm_receipt with the first reason of each bad row (fields, unknown plan or touch, channel or template not the touch''s, before the send, duplicate); returns the row count.';

-- The reasons a batch would be rejected for, one row per bad receipt (none: the batch loads).
CREATE FUNCTION retail_mid.reach_receipt_check(receipts jsonb)
RETURNS TABLE (row_no bigint, reason text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM retail_mid.reach_receipt_stage(receipts);
    RETURN QUERY SELECT r.row_no, r.reason FROM pg_temp.rm_receipt r WHERE r.reason IS NOT NULL ORDER BY r.row_no;
    DROP TABLE pg_temp.rm_receipt;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_receipt_check(jsonb) IS 'Validates a batch of receipts without loading it: one row per bad receipt (row number = position in the array, from 1) with its first reason; no rows = the batch would load.';

-- Loads a batch of receipts, all or nothing; then moves the touches' outbox status forward (sent, delivered, or
-- failed when bounced and never delivered).
CREATE FUNCTION retail_mid.reach_receipt_load(receipts jsonb)
RETURNS TABLE (batch_id bigint, rows_loaded bigint, events jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE n bigint; n_bad bigint; v_detail text; v_batch bigint; v_job bigint; v_events jsonb; n_status bigint;
BEGIN
    v_job := retail_mid.job_start('reach_receipt_load', jsonb_build_object('rows', jsonb_array_length(CASE jsonb_typeof(receipts) WHEN 'array' THEN receipts ELSE '[]' END)));
    n := retail_mid.reach_receipt_stage(receipts);
    SELECT count(*), string_agg(format('row %s: %s', x.row_no, x.reason), '; ' ORDER BY x.row_no) FILTER (WHERE x.i <= 5)
      INTO n_bad, v_detail
      FROM (SELECT r.row_no, r.reason, row_number() OVER (ORDER BY r.row_no) AS i FROM pg_temp.rm_receipt r WHERE r.reason IS NOT NULL) x;
    IF n_bad > 0 THEN
        RAISE EXCEPTION 'reach receipts rejected: % of % rows are bad; nothing was loaded', n_bad, n
            USING ERRCODE = 'data_exception', DETAIL = v_detail || CASE WHEN n_bad > 5 THEN format('; and %s more', n_bad - 5) ELSE '' END,
                  HINT = 'retail_mid.reach_receipt_check(receipts) lists the reason of every bad row.';
    END IF;
    v_batch := nextval('retail_mid.reach_receipt_batch_seq');
    INSERT INTO retail_mid.reach_receipt (plan_id, brand, customer_key, channel, template, event, event_at, batch_id)
    SELECT r.p, r.brand, r.k, r.o_channel, r.o_template, r.event, r.t, v_batch FROM pg_temp.rm_receipt r ORDER BY r.row_no;
    SELECT coalesce(jsonb_object_agg(e.event, e.n ORDER BY e.event), '{}') INTO v_events
      FROM (SELECT r.event, count(*) AS n FROM pg_temp.rm_receipt r GROUP BY r.event) e;
    UPDATE retail_mid.reach_outbox o SET status = x.status
      FROM (SELECT q.plan_id, q.customer_key,
                   CASE WHEN bool_or(q.event IN ('delivered', 'opened', 'clicked', 'redeemed', 'unsubscribed')) THEN 'delivered'
                        WHEN bool_or(q.event = 'bounced') THEN 'failed' ELSE 'sent' END AS status
              FROM retail_mid.reach_receipt q
             WHERE (q.plan_id, q.customer_key) IN (SELECT r.p, r.k FROM pg_temp.rm_receipt r)
             GROUP BY q.plan_id, q.customer_key) x
     WHERE o.plan_id = x.plan_id AND o.customer_key = x.customer_key AND o.status <> x.status;
    GET DIAGNOSTICS n_status = ROW_COUNT;
    DROP TABLE pg_temp.rm_receipt;
    RAISE NOTICE 'reach_receipt_load: batch %: % receipts loaded %, % outbox statuses moved on', v_batch, n, v_events, n_status;
    PERFORM retail_mid.job_finish(v_job, n, jsonb_build_object('batch_id', v_batch, 'events', v_events, 'outbox_status_changed', n_status));
    RETURN QUERY SELECT v_batch, n, v_events;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_receipt_load(jsonb) IS 'Loads a JSON array of receipts ({plan_id, customer_key, event, event_at, optional channel and template}) into reach_receipt, all or nothing: any bad row (unknown plan or touch, unknown event type, bad time, time before the send, duplicate) rejects the whole batch with data_exception (22000) and the first reasons in the detail; moves the outbox status of the touches forward (sent, delivered, failed); returns the batch id, the rows loaded and the count per event.';

-- The same from a CSV file (header: plan_id, customer_key, channel, template, event, event_at; row n of the reasons
-- is the n-th data line).
CREATE FUNCTION retail_mid.load_reach_receipts(path text)
RETURNS TABLE (batch_id bigint, rows_loaded bigint, events jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v jsonb;
BEGIN
    CREATE TEMP TABLE rm_receipt_csv (line_no bigint GENERATED ALWAYS AS IDENTITY, plan_id text, customer_key text, channel text,
        template text, event text, event_at text) ON COMMIT DROP;
    PERFORM retail_mid.stage_csv(path, 'pg_temp.rm_receipt_csv', 'plan_id, customer_key, channel, template, event, event_at');
    SELECT coalesce(jsonb_agg(to_jsonb(c) - 'line_no' ORDER BY c.line_no), '[]') INTO v FROM pg_temp.rm_receipt_csv c;
    DROP TABLE pg_temp.rm_receipt_csv;
    RETURN QUERY SELECT * FROM retail_mid.reach_receipt_load(v);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_reach_receipts(text) IS 'Loads a receipts CSV file (plain or gzip, header plan_id, customer_key, channel, template, event, event_at) with reach_receipt_load: all or nothing.';

-- ----------------------------------------------------------------- plan performance
-- The 97.5% quantile of Student's t with df degrees of freedom: the Cornish-Fisher expansion around the normal
-- quantile for df >= 3 (within 0.004 at df = 3, 1e-5 from df = 10); the exact values of df = 1 and df = 2 below 3
-- (df in [1, 2) takes df = 1, [2, 3) df = 2: a wider, conservative interval); NULL for df < 1 or NaN.
CREATE FUNCTION retail_mid.reach_t975(df float8)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN df OPERATOR(pg_catalog.=) 'NaN'::float8 OR df OPERATOR(pg_catalog.<) 1::float8 THEN NULL
            WHEN df OPERATOR(pg_catalog.<) 2::float8 THEN 12.706204736174698::float8
            WHEN df OPERATOR(pg_catalog.<) 3::float8 THEN 4.302652729749464::float8
            -- z + g1/df + g2/df^2 + g3/df^3 + g4/df^4 (Horner in 1/df), g_i the Cornish-Fisher polynomials of z
            ELSE 1.959963984540054::float8 OPERATOR(pg_catalog.+) ((1::float8 OPERATOR(pg_catalog./) df) OPERATOR(pg_catalog.*)
                 (2.372271230298562::float8 OPERATOR(pg_catalog.+) ((1::float8 OPERATOR(pg_catalog./) df) OPERATOR(pg_catalog.*)
                 (2.8224986157396112::float8 OPERATOR(pg_catalog.+) ((1::float8 OPERATOR(pg_catalog./) df) OPERATOR(pg_catalog.*)
                 (2.555849679507722::float8 OPERATOR(pg_catalog.+) ((1::float8 OPERATOR(pg_catalog./) df) OPERATOR(pg_catalog.*) 1.5895340533938225::float8))))))) END;
COMMENT ON FUNCTION retail_mid.reach_t975(float8) IS 'The 0.975 quantile of Student''s t with df degrees of freedom (Cornish-Fisher expansion for df >= 3, the df = 1 or df = 2 value below; NULL for df < 1): the multiplier of the Welch interval of reach_plan_performance.';

CREATE FUNCTION retail_mid.reach_plan_performance(days int DEFAULT 30, plan bigint DEFAULT NULL)
RETURNS TABLE (plan_id bigint, brand text, channel text, template text, touches bigint,
               sent bigint, delivered bigint, opened bigint, clicked bigint, redeemed bigint, unsubscribed bigint, bounced bigint,
               delivery_rate float8, bounce_rate float8, open_rate float8, click_rate float8, redeem_rate float8, unsubscribe_rate float8,
               buyers bigint, gmv numeric, conversion float8, gmv_per_head float8,
               control bigint, control_buyers bigint, control_gmv numeric, control_conversion float8, control_gmv_per_head float8,
               uplift float8, uplift_low float8, uplift_high float8,
               gmv_per_head_uplift float8, gmv_per_head_uplift_low float8, gmv_per_head_uplift_high float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE win interval; pl bigint := plan;
BEGIN
    IF days IS NULL THEN
        RAISE EXCEPTION 'days must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF days < 1 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 1 and 3660' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('days = %s', days);
    END IF;
    win := make_interval(days => days);
    RETURN QUERY
    WITH m AS (   -- the treatment (touches) and the control (held out) of each plan, channel and template
        SELECT o.plan_id, o.brand, o.channel, o.template, o.customer_key, o.planned_at, false AS is_control
          FROM retail_mid.reach_outbox o WHERE o.status <> 'skipped' AND (pl IS NULL OR o.plan_id = pl)
        UNION ALL
        SELECT h.plan_id, h.brand, h.channel, h.template, h.customer_key, h.planned_at, true
          FROM retail_mid.reach_holdout h WHERE pl IS NULL OR h.plan_id = pl),
    f AS (        -- the funnel of each touch
        SELECT q.plan_id, q.customer_key,
               bool_or(q.event = 'sent') AS s, bool_or(q.event = 'delivered') AS d, bool_or(q.event = 'opened') AS op,
               bool_or(q.event = 'clicked') AS c, bool_or(q.event = 'redeemed') AS r, bool_or(q.event = 'unsubscribed') AS u,
               bool_or(q.event = 'bounced') AS b
          FROM retail_mid.reach_receipt q WHERE pl IS NULL OR q.plan_id = pl
         GROUP BY q.plan_id, q.customer_key),
    g AS (        -- purchases (sale lines) of the brand in (send time, send time + days]
        SELECT m.plan_id, m.customer_key, sum(l.amount) AS gmv
          FROM m JOIN retail_mid.dwd_trade_order_line_di l
            ON l.brand = m.brand AND l.customer_key = m.customer_key AND l.line_type = 'sale'
           AND l.order_time > m.planned_at AND l.order_time <= m.planned_at + win
           AND l.dt BETWEEN m.planned_at::date AND (m.planned_at + win)::date
         GROUP BY m.plan_id, m.customer_key),
    a AS (
        SELECT m.plan_id, m.brand, m.channel, m.template,
               count(*) FILTER (WHERE NOT m.is_control) AS n_t,
               count(*) FILTER (WHERE NOT m.is_control AND f.s) AS sent, count(*) FILTER (WHERE NOT m.is_control AND f.d) AS delivered,
               count(*) FILTER (WHERE NOT m.is_control AND f.op) AS opened, count(*) FILTER (WHERE NOT m.is_control AND f.c) AS clicked,
               count(*) FILTER (WHERE NOT m.is_control AND f.r) AS redeemed, count(*) FILTER (WHERE NOT m.is_control AND f.u) AS unsubscribed,
               count(*) FILTER (WHERE NOT m.is_control AND f.b) AS bounced,
               count(g.gmv) FILTER (WHERE NOT m.is_control) AS buyers_t, coalesce(sum(g.gmv) FILTER (WHERE NOT m.is_control), 0) AS gmv_t,
               var_samp(coalesce(g.gmv, 0)::float8) FILTER (WHERE NOT m.is_control) AS var_t,
               count(*) FILTER (WHERE m.is_control) AS n_c,
               count(g.gmv) FILTER (WHERE m.is_control) AS buyers_c, coalesce(sum(g.gmv) FILTER (WHERE m.is_control), 0) AS gmv_c,
               var_samp(coalesce(g.gmv, 0)::float8) FILTER (WHERE m.is_control) AS var_c
          FROM m LEFT JOIN f ON f.plan_id = m.plan_id AND f.customer_key = m.customer_key
                 LEFT JOIN g ON g.plan_id = m.plan_id AND g.customer_key = m.customer_key
         GROUP BY m.plan_id, m.brand, m.channel, m.template),
    r AS (
        SELECT a.*,
               a.buyers_t::float8 / nullif(a.n_t, 0) AS p_t, a.buyers_c::float8 / nullif(a.n_c, 0) AS p_c,
               a.gmv_t::float8 / nullif(a.n_t, 0) AS x_t, a.gmv_c::float8 / nullif(a.n_c, 0) AS x_c,
               CASE WHEN a.n_t >= 2 AND a.n_c >= 2 THEN a.var_t / a.n_t END AS e_t,
               CASE WHEN a.n_t >= 2 AND a.n_c >= 2 THEN a.var_c / a.n_c END AS e_c
          FROM a),
    z AS (
        SELECT r.*,
               1.959963984540054 * sqrt(r.p_t * (1 - r.p_t) / r.n_t + r.p_c * (1 - r.p_c) / r.n_c) AS h_p,
               CASE WHEN r.e_t + r.e_c = 0 THEN 0::float8
                    ELSE retail_mid.reach_t975((r.e_t + r.e_c) ^ 2 / (r.e_t ^ 2 / (r.n_t - 1) + r.e_c ^ 2 / (r.n_c - 1)))
                         * sqrt(r.e_t + r.e_c) END AS h_x
          FROM r)
    SELECT z.plan_id, z.brand, z.channel, z.template, z.n_t,
           z.sent, z.delivered, z.opened, z.clicked, z.redeemed, z.unsubscribed, z.bounced,
           z.delivered::float8 / nullif(z.sent, 0), z.bounced::float8 / nullif(z.sent, 0),
           z.opened::float8 / nullif(z.delivered, 0), z.clicked::float8 / nullif(z.delivered, 0),
           z.redeemed::float8 / nullif(z.delivered, 0), z.unsubscribed::float8 / nullif(z.delivered, 0),
           z.buyers_t, z.gmv_t, z.p_t, z.x_t,
           z.n_c, z.buyers_c, z.gmv_c, z.p_c, z.x_c,
           z.p_t - z.p_c, z.p_t - z.p_c - z.h_p, z.p_t - z.p_c + z.h_p,
           z.x_t - z.x_c, z.x_t - z.x_c - z.h_x, z.x_t - z.x_c + z.h_x
      FROM z ORDER BY z.plan_id, z.channel, z.template;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_performance(int, bigint) IS 'Per reach plan, channel and template (all plans, or one): touches and the receipt funnel (touches with at least one sent, delivered, opened ... receipt; delivery and bounce rates over sent, the others over delivered), buyers and GMV (sale lines of the brand in the trade DWD in the days after the planned send), the same for the control group (reach_holdout), and the uplift of conversion (two-proportion normal 95% interval) and of GMV per head (Welch 95% interval). NULL where a denominator or the control is empty.';

-- ----------------------------------------------------------------- response-rate tags
-- Per brand and customer, over the touches delivered in the 180 days up to behavior_as_of(): per channel, the
-- touches delivered, and those of them opened and clicked (at any time).
CREATE VIEW retail_mid.tag_source_reach_response AS
WITH t AS (
    SELECT q.brand, q.customer_key, q.plan_id, q.channel,
           min(q.event_at) FILTER (WHERE q.event = 'delivered') AS delivered_at,
           bool_or(q.event = 'opened') AS opened, bool_or(q.event = 'clicked') AS clicked
      FROM retail_mid.reach_receipt q
     GROUP BY q.brand, q.customer_key, q.plan_id, q.channel)
SELECT t.brand, t.customer_key,
       count(*) FILTER (WHERE t.channel = 'sms') AS sms_delivered,
       count(*) FILTER (WHERE t.channel = 'sms' AND t.opened) AS sms_opened,
       count(*) FILTER (WHERE t.channel = 'sms' AND t.clicked) AS sms_clicked,
       count(*) FILTER (WHERE t.channel = 'email') AS email_delivered,
       count(*) FILTER (WHERE t.channel = 'email' AND t.opened) AS email_opened,
       count(*) FILTER (WHERE t.channel = 'email' AND t.clicked) AS email_clicked,
       count(*) FILTER (WHERE t.channel = 'wechat') AS wechat_delivered,
       count(*) FILTER (WHERE t.channel = 'wechat' AND t.opened) AS wechat_opened,
       count(*) FILTER (WHERE t.channel = 'wechat' AND t.clicked) AS wechat_clicked,
       count(*) FILTER (WHERE t.channel = 'app_push') AS app_push_delivered,
       count(*) FILTER (WHERE t.channel = 'app_push' AND t.opened) AS app_push_opened,
       count(*) FILTER (WHERE t.channel = 'app_push' AND t.clicked) AS app_push_clicked
  FROM t
 WHERE t.delivered_at > (SELECT retail_mid.behavior_as_of()) - interval '180 days' AND t.delivered_at <= (SELECT retail_mid.behavior_as_of())
 GROUP BY t.brand, t.customer_key;
COMMENT ON VIEW retail_mid.tag_source_reach_response IS 'Per brand and customer: per channel (sms, email, wechat, app_push), the touches with a delivered receipt in the 180 days up to behavior_as_of(), and how many of them were opened and clicked; the source of the *_open_rate_180d and *_click_rate_180d tags (scope brand).';
COMMENT ON COLUMN retail_mid.tag_source_reach_response.brand IS 'Brand of the touches.';
COMMENT ON COLUMN retail_mid.tag_source_reach_response.customer_key IS 'Customer key.';
DO $$
DECLARE c text; w text;
BEGIN
    FOREACH c IN ARRAY ARRAY['sms', 'email', 'wechat', 'app_push'] LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.tag_source_reach_response.%I IS %L', c || '_delivered',
                       format('%s touches delivered in the 180 days.', c));
        FOREACH w IN ARRAY ARRAY['opened', 'clicked'] LOOP
            EXECUTE format('COMMENT ON COLUMN retail_mid.tag_source_reach_response.%I IS %L', c || '_' || w,
                           format('Of the %s touches delivered in the 180 days, those %s.', c, w));
        END LOOP;
    END LOOP;
END;
$$;

INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, source, expression, numeric_scale, description, owner, scope)
SELECT c || '_' || w || '_rate_180d', '客户行为数据', '营销行为', '营销响应', '', 'numeric', 'retail_mid.tag_source_reach_response',
       format('%I::numeric / nullif(%I, 0)', c || '_' || CASE w WHEN 'open' THEN 'opened' ELSE 'clicked' END, c || '_delivered'), 4,
       format('Share of the brand''s %s touches delivered in the 180 days up to behavior_as_of() that were %s (reach receipts); no value without a delivered %s touch.',
              c, CASE w WHEN 'open' THEN 'opened' ELSE 'clicked' END, c),
       'retail_mid', 'brand'
  FROM unnest(ARRAY['sms', 'email', 'wechat', 'app_push']) c, unnest(ARRAY['open', 'click']) w
 ORDER BY 1
ON CONFLICT (tag_name) DO NOTHING;

-- security, as governance/lockdown.sql gives it to the relations of a fresh install
SELECT retail_mid.secure_brand_table(t) FROM unnest(ARRAY['retail_mid.reach_holdout', 'retail_mid.reach_receipt']::regclass[]) t;
ALTER VIEW retail_mid.tag_source_reach_response SET (security_invoker = true);
SELECT retail_mid.security_grant(t)
  FROM unnest(ARRAY['retail_mid.reach_holdout', 'retail_mid.reach_receipt', 'retail_mid.tag_source_reach_response']::regclass[]) t;
-- BI reads the base tables of the brand views it reads (tag_source_reach_response reads reach_receipt)
GRANT SELECT ON retail_mid.reach_receipt TO retail_mid_bi;
GRANT ALL ON SEQUENCE retail_mid.reach_receipt_batch_seq TO retail_mid_admin;

-- issue 16: insight and lookalike (src/tags/insight.sql, the C of src/tags/insight.c; save_audience moved there from
-- tags/audience.sql and stores each version's profile; what governance/lockdown.sql gives the new relations in a
-- fresh install follows the file)

CREATE FUNCTION retail_mid.audience_profile_counts(members retail_mid.rbitmap, base retail_mid.rbitmap, tags text[],
                                                   brand text, buckets int)
RETURNS TABLE (tag text, value text, bucket int, lo_scaled int8, hi_scaled int8, scale int, members bigint, base_members bigint)
    AS 'MODULE_PATHNAME', 'audience_profile_counts' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience_profile_counts(retail_mid.rbitmap, retail_mid.rbitmap, text[], text, int) IS 'Internal to audience_profile and audience_compare: per value of each boolean/enumerated tag and per quantile bucket of each numeric tag (bounds scaled by 10^scale, lower inclusive, upper exclusive, NULL = open; boundaries are quantiles of the base''s values), how many members and base customers hold it, by bitmap intersections; rows with neither are left out. In a brand context (brand not NULL) brand tags are read with that brand''s bitmaps. NULL members, base, tags or buckets are 22004; buckets outside 2..20 are 22023.';

CREATE FUNCTION retail_mid.audience_lookalike_scores(seed retail_mid.rbitmap, base retail_mid.rbitmap, tags text[], brand text,
                                                     size int, buckets int)
RETURNS TABLE (customer_key int4, score float8, rank bigint)
    AS 'MODULE_PATHNAME', 'audience_lookalike_scores' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience_lookalike_scores(retail_mid.rbitmap, retail_mid.rbitmap, text[], text, int, int) IS 'Internal to audience_lookalike: weighs every feature of the tags (value or quantile bucket of the base) by its smoothed log-odds among the seed minus among the base customers outside the seed, scores each of those customers by the sum of the weights of the features it holds, and returns the size best (ties by key).';

-- The tags to profile: the named ones (each must exist and be readable by the caller), or every tag the caller
-- may read. Raises the errors the public functions document.
CREATE FUNCTION retail_mid.insight_tags(tags text[]) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE bad text; admin boolean := retail_mid.brand_visible('*');
BEGIN
    IF tags IS NULL THEN
        RETURN ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d
                      WHERE d.enabled AND (d.scope = 'brand' OR d.shared_with_brands OR admin) ORDER BY d.tag_name COLLATE "C");
    END IF;
    IF cardinality(tags) = 0 THEN
        RAISE EXCEPTION 'the list of tags must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL for every tag you may read.';
    END IF;
    IF array_position(tags, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'tag names must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x INTO bad FROM unnest(tags) x WHERE NOT EXISTS (SELECT 1 FROM retail_mid.tag_definition d WHERE d.tag_name = x) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tag "%" does not exist', bad USING ERRCODE = 'undefined_object';
    END IF;
    SELECT x INTO bad FROM unnest(tags) x GROUP BY x HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tag "%" is listed twice', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT d.tag_name INTO bad FROM retail_mid.tag_definition d
     WHERE d.tag_name = ANY (tags) AND d.scope = 'group' AND NOT d.shared_with_brands AND NOT admin LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tag "%" is group-wide and not shared with brands', bad USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its values are computed from the data of every brand; only administrators read them.';
    END IF;
    RETURN tags;
END;
$$;
COMMENT ON FUNCTION retail_mid.insight_tags(text[]) IS 'Internal to the insight functions: the tags to profile. NULL: every enabled tag the caller may read; otherwise the list, checked (empty 22023, NULL element 22004, unknown tag 42704, listed twice 22023, a group tag not shared with brands for a non-administrator 42501).';

-- The base an audience is compared with: the brand's customers, or without a brand the set NOT is relative to.
CREATE FUNCTION retail_mid.insight_base(brand text) RETURNS retail_mid.rbitmap
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF brand IS NULL THEN
        RETURN retail_mid.customer_universe();
    END IF;
    IF btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL for no brand context.';
    END IF;
    IF NOT retail_mid.brand_visible(brand) THEN
        RAISE EXCEPTION 'brand "%" is not visible to the current user', brand USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN coalesce((SELECT retail_mid.rb_build_agg(cb.customer_key) FROM retail_mid.customer_brand cb
                      WHERE cb.brand = insight_base.brand), '{}');
END;
$$;
COMMENT ON FUNCTION retail_mid.insight_base(text) IS 'Internal to the insight functions: the base of a profile, the brand''s customers (retail_mid.customer_brand), or without a brand every known customer the caller may see (retail_mid.customer_universe(), the set NOT is relative to). Empty brand 22023, a brand the caller may not see 42501.';

-- Counts to shares: the bucket label of a numeric row is its range in the tag's units.
CREATE FUNCTION retail_mid.insight_label(value text, lo_scaled int8, hi_scaled int8, scale int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN value IS NOT NULL THEN value
            WHEN lo_scaled IS NULL AND hi_scaled IS NULL THEN 'all values'
            WHEN lo_scaled IS NULL THEN '< ' || round(hi_scaled::numeric / 10::numeric ^ scale, scale)::text
            WHEN hi_scaled IS NULL THEN '>= ' || round(lo_scaled::numeric / 10::numeric ^ scale, scale)::text
            ELSE '[' || round(lo_scaled::numeric / 10::numeric ^ scale, scale)::text || ', '
                     || round(hi_scaled::numeric / 10::numeric ^ scale, scale)::text || ')' END;
COMMENT ON FUNCTION retail_mid.insight_label(text, int8, int8, int) IS 'Internal to the insight functions: the value of a boolean/enumerated row, or the range of a numeric bucket (< hi, [lo, hi), >= lo, in the tag''s units).';

CREATE FUNCTION retail_mid.audience_profile(expression text, brand text DEFAULT NULL, tags text[] DEFAULT NULL, buckets int DEFAULT 5)
RETURNS TABLE (tag text, value text, bucket int, lo numeric, hi numeric, members bigint, share float8,
               base_members bigint, base_share float8, tgi float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE m retail_mid.rbitmap; b retail_mid.rbitmap; t text[]; nm bigint; nb bigint;
BEGIN
    IF expression IS NULL THEN
        RAISE EXCEPTION 'expression must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF buckets IS NULL THEN
        RAISE EXCEPTION 'buckets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    t := retail_mid.insight_tags(tags);
    b := retail_mid.insight_base(brand);
    m := CASE WHEN brand IS NULL THEN retail_mid.audience(expression) ELSE retail_mid.audience(expression, brand) END;
    nm := retail_mid.rb_cardinality(m);
    nb := retail_mid.rb_cardinality(b);
    RETURN QUERY
    SELECT c.tag, retail_mid.insight_label(c.value, c.lo_scaled, c.hi_scaled, c.scale), c.bucket,
           round(c.lo_scaled::numeric / 10::numeric ^ c.scale, c.scale), round(c.hi_scaled::numeric / 10::numeric ^ c.scale, c.scale),
           c.members, c.members::float8 / nullif(nm, 0), c.base_members, c.base_members::float8 / nullif(nb, 0),
           (c.members::float8 / nullif(nm, 0)) / nullif(c.base_members::float8 / nullif(nb, 0), 0) * 100
      FROM retail_mid.audience_profile_counts(m, b, t, brand, buckets) c;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_profile(text, text, text[], int) IS 'Describes an audience against its base: per value of each boolean/enumerated tag and per quantile bucket of each numeric tag (buckets of the base''s values, default quintiles), the members holding it, their share of the audience, the base customers holding it, their share of the base, and TGI = share / base share * 100. Base: the brand''s customers (brand context, as audience(expression, brand)) or every known customer. Counted on the bitmaps, never on tag_value. tags NULL: every tag the caller may read.';

CREATE FUNCTION retail_mid.audience_compare(a text, b text, brand text DEFAULT NULL, tags text[] DEFAULT NULL, buckets int DEFAULT 5)
RETURNS TABLE (tag text, value text, bucket int, lo numeric, hi numeric, members_a bigint, share_a float8,
               members_b bigint, share_b float8, tgi float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE ma retail_mid.rbitmap; mb retail_mid.rbitmap; t text[]; na bigint; nb bigint;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RAISE EXCEPTION 'expressions must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF buckets IS NULL THEN
        RAISE EXCEPTION 'buckets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    t := retail_mid.insight_tags(tags);
    PERFORM retail_mid.insight_base(brand);      -- checks the brand
    ma := CASE WHEN brand IS NULL THEN retail_mid.audience(a) ELSE retail_mid.audience(a, brand) END;
    mb := CASE WHEN brand IS NULL THEN retail_mid.audience(b) ELSE retail_mid.audience(b, brand) END;
    na := retail_mid.rb_cardinality(ma);
    nb := retail_mid.rb_cardinality(mb);
    RETURN QUERY
    SELECT c.tag, retail_mid.insight_label(c.value, c.lo_scaled, c.hi_scaled, c.scale), c.bucket,
           round(c.lo_scaled::numeric / 10::numeric ^ c.scale, c.scale), round(c.hi_scaled::numeric / 10::numeric ^ c.scale, c.scale),
           c.members, c.members::float8 / nullif(na, 0), c.base_members, c.base_members::float8 / nullif(nb, 0),
           (c.members::float8 / nullif(na, 0)) / nullif(c.base_members::float8 / nullif(nb, 0), 0) * 100
      FROM retail_mid.audience_profile_counts(ma, mb, t, brand, buckets) c;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_compare(text, text, text, text[], int) IS 'Two audiences side by side: per tag value (numeric tags: quantile buckets of b''s values) the members of a and of b holding it, their shares, and TGI of a against b (share_a / share_b * 100). In a brand context both are evaluated as audience(expression, brand).';

CREATE FUNCTION retail_mid.audience_overlap(names text[])
RETURNS TABLE (audience_a text, audience_b text, members_a bigint, members_b bigint, both_members bigint,
               either_members bigint, jaccard float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE bm retail_mid.rbitmap[]; n int; bad text;
BEGIN
    IF names IS NULL THEN
        RAISE EXCEPTION 'names must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_position(names, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'audience names must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    n := cardinality(names);
    IF n < 2 THEN
        RAISE EXCEPTION 'audience_overlap needs at least two saved audiences' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x INTO bad FROM unnest(names) x GROUP BY x HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'audience "%" is listed twice', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each name as written after @ in an expression (vip, brand_a/vip, "my list"): the latest readable snapshot
    bm := ARRAY(SELECT retail_mid.audience('@' || x) FROM unnest(names) WITH ORDINALITY u(x, i) ORDER BY i);
    RETURN QUERY
    SELECT names[i], names[j], retail_mid.rb_cardinality(bm[i]), retail_mid.rb_cardinality(bm[j]),
           retail_mid.rb_and_cardinality(bm[i], bm[j]), retail_mid.rb_or_cardinality(bm[i], bm[j]),
           retail_mid.rb_and_cardinality(bm[i], bm[j])::float8 / nullif(retail_mid.rb_or_cardinality(bm[i], bm[j]), 0)
      FROM generate_series(1, n) i, generate_series(1, n) j
     WHERE i < j
     ORDER BY i, j;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_overlap(text[]) IS 'Pairwise overlap of saved audiences (each name written as after @ in a tag expression: vip, brand_a/vip): members of each, of both, of either, and the Jaccard index both / either (NULL when both are empty). NULL 22004, fewer than two names or a name twice 22023, an unknown audience 42704.';

CREATE FUNCTION retail_mid.audience_lookalike(seed_expression text, size int, brand text DEFAULT NULL, tags text[] DEFAULT NULL,
                                              buckets int DEFAULT 5)
RETURNS TABLE (customer_key int4, score float8, rank bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE s retail_mid.rbitmap; b retail_mid.rbitmap; t text[];
BEGIN
    IF seed_expression IS NULL OR size IS NULL OR buckets IS NULL THEN
        RAISE EXCEPTION 'seed expression, size and buckets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF size < 1 THEN
        RAISE EXCEPTION 'size must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    t := retail_mid.insight_tags(tags);
    b := retail_mid.insight_base(brand);
    s := CASE WHEN brand IS NULL THEN retail_mid.audience(seed_expression) ELSE retail_mid.audience(seed_expression, brand) END;
    IF retail_mid.rb_is_empty(s) THEN
        RAISE EXCEPTION 'the seed audience is empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT l.customer_key, l.score, l.rank FROM retail_mid.audience_lookalike_scores(s, b, t, brand, size, buckets) l;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_lookalike(text, int, text, text[], int) IS 'Lookalike expansion: ranks the base customers outside the seed audience (brand context as audience(expression, brand); base as audience_profile) by the sum of the weights of their tag values and numeric quantile buckets, a weight being the log-odds of the feature among the seed minus among the other base customers (counts smoothed by 0.5), and returns the size best (ties by key). tags NULL: every tag the caller may read (leave out tags derived from the outcome you predict). NULL 22004, size < 1 or an empty seed 22023.';

-- A profile is stored with each saved audience version (against its brand's customers, or every customer for a
-- group-wide audience), for the dashboards.
CREATE TABLE retail_mid.audience_profile_snapshot (
    name         text NOT NULL,
    brand        text NOT NULL,
    version      int NOT NULL,
    tag          text NOT NULL,
    value        text NOT NULL,
    bucket       int,
    lo           numeric,
    hi           numeric,
    members      bigint NOT NULL,
    share        float8,
    base_members bigint NOT NULL,
    base_share   float8,
    tgi          float8,
    PRIMARY KEY (name, brand, version, tag, value),
    FOREIGN KEY (name, brand, version) REFERENCES retail_mid.audience_package ON DELETE CASCADE
);
COMMENT ON TABLE retail_mid.audience_profile_snapshot IS 'The profile of each saved audience version when it was saved (audience_profile of its snapshot against its brand''s customers, or every known customer for a group-wide audience, over every tag the saver could read); written by a trigger on audience_package.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.name IS 'Saved audience (audience_package.name).';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.brand IS 'Its brand (''*'': group-wide); under brand isolation.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.version IS 'Its version.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.tag IS 'Tag.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.value IS 'Value of a boolean/enumerated tag, or the range label of a numeric bucket.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.bucket IS 'Numeric tags: bucket number (1 = lowest); NULL otherwise.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.lo IS 'Numeric tags: inclusive lower bound of the bucket (NULL: open).';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.hi IS 'Numeric tags: exclusive upper bound of the bucket (NULL: open).';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.members IS 'Members holding the value.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.share IS 'members / audience size.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.base_members IS 'Base customers holding the value.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.base_share IS 'base_members / base size.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.tgi IS 'share / base_share * 100 (NULL when the base share is 0).';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.audience_profile_snapshot', '');

-- Stores the profile of a saved version (save_audience calls it; a restore by pg_dump does not recompute it).
CREATE FUNCTION retail_mid.audience_profile_store(name text, brand text, version int) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE s retail_mid.rbitmap; b retail_mid.rbitmap; ctx text := nullif(brand, '*'); nm bigint; nb bigint; n bigint;
BEGIN
    SELECT p.snapshot INTO s FROM retail_mid.audience_package p
     WHERE p.name = audience_profile_store.name AND p.brand = audience_profile_store.brand AND p.version = audience_profile_store.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'saved audience "%" of brand "%" has no version %', name, brand, version USING ERRCODE = 'undefined_object';
    END IF;
    b := retail_mid.insight_base(ctx);
    nm := retail_mid.rb_cardinality(s);
    nb := retail_mid.rb_cardinality(b);
    INSERT INTO retail_mid.audience_profile_snapshot (name, brand, version, tag, value, bucket, lo, hi, members, share,
                                                      base_members, base_share, tgi)
    SELECT audience_profile_store.name, audience_profile_store.brand, audience_profile_store.version, c.tag,
           retail_mid.insight_label(c.value, c.lo_scaled, c.hi_scaled, c.scale), c.bucket,
           round(c.lo_scaled::numeric / 10::numeric ^ c.scale, c.scale), round(c.hi_scaled::numeric / 10::numeric ^ c.scale, c.scale),
           c.members, c.members::float8 / nullif(nm, 0), c.base_members, c.base_members::float8 / nullif(nb, 0),
           (c.members::float8 / nullif(nm, 0)) / nullif(c.base_members::float8 / nullif(nb, 0), 0) * 100
      FROM retail_mid.audience_profile_counts(s, b, retail_mid.insight_tags(NULL), ctx, 5) c;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_profile_store(text, text, int) IS 'Internal to save_audience: stores the profile of a saved version (every tag the caller reads, quintile buckets for numeric tags, against the brand''s customers or every known customer for a group-wide audience) in audience_profile_snapshot; returns the rows written.';

-- Saves an audience under the next version of its name and brand (concurrent saves of one are serialised). The
-- expression is evaluated as the caller (an analyst's bitmaps hold the customers of its brands only), and a
-- brand's snapshot is cut down to that brand's customers (retail_mid.customer_brand, from foundation/tenancy.sql).
CREATE OR REPLACE FUNCTION retail_mid.save_audience(name text, expression text, brand text DEFAULT '*') RETURNS int
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v int; b retail_mid.rbitmap; entitled boolean; msg text;
BEGIN
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'audience name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF btrim(brand) = '' THEN
        RAISE EXCEPTION 'audience brand must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Give a brand, or ''*'' for a group-wide audience.';
    END IF;
    entitled := CASE WHEN brand = '*' THEN pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') ELSE retail_mid.brand_visible(brand) END;
    IF NOT entitled THEN
        RAISE EXCEPTION 'permission denied to save audiences of brand "%"', brand USING ERRCODE = 'insufficient_privilege',
            HINT = CASE WHEN brand = '*' THEN 'Group-wide audiences are saved by members of retail_mid_admin; save it for one of your brands.'
                        ELSE 'It needs an entitlement to the brand (retail_mid.brand_entitlement).' END;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.audience_package'), hashtext(brand || '/' || name));
    -- in the brand's context: brand tags are read with that brand's values (a customer of several brands the
    -- caller sees counts by this brand's data)
    b := CASE WHEN brand = '*' THEN retail_mid.audience(expression) ELSE retail_mid.audience(expression, brand) END;
    IF brand <> '*' THEN
        b := retail_mid.rb_and(b, coalesce((SELECT retail_mid.rb_build_agg(cb.customer_key) FROM retail_mid.customer_brand cb
                                             WHERE cb.brand = save_audience.brand), '{}'));
    END IF;
    SELECT coalesce(max(p.version), 0) + 1 INTO v FROM retail_mid.audience_package p
     WHERE p.name = save_audience.name AND p.brand = save_audience.brand;
    INSERT INTO retail_mid.audience_package (name, brand, version, expression, canonical_expression, snapshot, customers)
    VALUES (name, brand, v, expression, retail_mid.audience_parse(expression), b, retail_mid.rb_cardinality(b));
    -- issue 16: the version's profile; an audience is still saved when a tag cannot be profiled now
    BEGIN
        PERFORM retail_mid.audience_profile_store(name, brand, v);
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        RAISE WARNING 'audience "%" version % saved without its profile: %', name, v, msg;
    END;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION retail_mid.save_audience(text, text, text) IS 'Evaluates the expression as the caller (in the brand''s context: brand tags with that brand''s values) and saves its snapshot, restricted to the brand''s customers, as the next version of the named audience of that brand (''*'', the default: group-wide, admins only); returns the version. Error 42501 for a brand the caller is not entitled to.';


CREATE VIEW retail_mid.audience_insight AS
SELECT s.name::text AS audience_name, s.brand::text AS brand, s.version::int AS version, p.customers::bigint AS audience_members,
       p.created_at::timestamptz AS saved_at, s.tag::text AS tag, s.value::text AS value, s.bucket::int AS bucket,
       s.lo::numeric AS lo, s.hi::numeric AS hi, s.members::bigint AS members, s.share::float8 AS share,
       s.base_members::bigint AS base_members, s.base_share::float8 AS base_share, s.tgi::float8 AS tgi
  FROM (SELECT DISTINCT ON (name, brand) name, brand, version, customers, created_at FROM retail_mid.audience_package
         ORDER BY name, brand, version DESC) p
  JOIN retail_mid.audience_profile_snapshot s ON s.name = p.name AND s.brand = p.brand AND s.version = p.version;
COMMENT ON VIEW retail_mid.audience_insight IS 'For dashboards: the stored profile of the latest version of every saved audience the caller may read, one row per tag value or numeric bucket, with shares and TGI against the brand''s customers (group-wide audiences: every customer).';
COMMENT ON COLUMN retail_mid.audience_insight.audience_name IS 'Saved audience.';
COMMENT ON COLUMN retail_mid.audience_insight.brand IS 'Its brand (''*'': group-wide).';
COMMENT ON COLUMN retail_mid.audience_insight.version IS 'Its latest version.';
COMMENT ON COLUMN retail_mid.audience_insight.audience_members IS 'Members of that version.';
COMMENT ON COLUMN retail_mid.audience_insight.saved_at IS 'When that version was saved (and profiled).';
COMMENT ON COLUMN retail_mid.audience_insight.tag IS 'Tag.';
COMMENT ON COLUMN retail_mid.audience_insight.value IS 'Value, or the range label of a numeric bucket.';
COMMENT ON COLUMN retail_mid.audience_insight.bucket IS 'Numeric bucket number (1 = lowest); NULL for boolean/enumerated tags.';
COMMENT ON COLUMN retail_mid.audience_insight.lo IS 'Inclusive lower bound of a numeric bucket (NULL: open or not numeric).';
COMMENT ON COLUMN retail_mid.audience_insight.hi IS 'Exclusive upper bound of a numeric bucket (NULL: open or not numeric).';
COMMENT ON COLUMN retail_mid.audience_insight.members IS 'Members holding the value.';
COMMENT ON COLUMN retail_mid.audience_insight.share IS 'Share of the audience.';
COMMENT ON COLUMN retail_mid.audience_insight.base_members IS 'Base customers holding the value.';
COMMENT ON COLUMN retail_mid.audience_insight.base_share IS 'Share of the base.';
COMMENT ON COLUMN retail_mid.audience_insight.tgi IS 'TGI: share / base_share * 100.';
SELECT retail_mid.secure_brand_table('retail_mid.audience_profile_snapshot');
ALTER VIEW retail_mid.audience_insight SET (security_invoker = true);
SELECT retail_mid.security_grant('retail_mid.audience_profile_snapshot');
SELECT retail_mid.security_grant('retail_mid.audience_insight');
GRANT SELECT ON retail_mid.audience_profile_snapshot TO retail_mid_bi;
GRANT INSERT ON retail_mid.audience_profile_snapshot TO retail_mid_analyst;

-- issue 15: dashboard views (src/dashboard/dashboard.sql): one view per dashboard tile; dash_site_candidate is reference data
CREATE OR REPLACE FUNCTION retail_mid.security_reference_relations()
RETURNS regclass[] LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.array_agg(c.oid::regclass ORDER BY c.relname)
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'retail_mid'::regnamespace
       AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['metric_atomic', 'metric_qualifier', 'metric_period', 'metric_granularity',
                            'metric_derived', 'metric_composite', 'metric_coverage', 'pii_mask_rule', 'quality_template',
                            'quality_rule', 'quality_rule_version', 'rfm_segment_map', 'rfm_segment_map_def',
                            'tag_taxonomy', 'tag_definition', 'dim_calendar', 'dim_holiday', 'dim_date',
                            'site_candidate_ranking', 'dash_site_candidate']::name[]);
END;
COMMENT ON FUNCTION retail_mid.security_reference_relations() IS 'The relations without a brand column that analysts and BI may read: definitions and settings, the calendar, the group''s site candidate ranking (and its dashboard view); no rows of any brand.';

-- ----------------------------------------------------------------- AIPL

CREATE VIEW retail_mid.dash_aipl_trend AS
SELECT s.brand, s.dt, s.stage::text AS stage,
       CASE s.stage WHEN 'A' THEN 'awareness' WHEN 'I' THEN 'interest' WHEN 'P' THEN 'purchase' ELSE 'loyalty' END AS stage_name,
       count(*) AS customers
  FROM retail_mid.dws_aipl_customer_stage_1d s
 GROUP BY s.brand, s.dt, s.stage;
COMMENT ON VIEW retail_mid.dash_aipl_trend IS 'Dashboard tile AIPL trend: customers per AIPL stage per day and brand, over every staged day (filter dt for a window).';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.stage IS 'Stage code: A, I, P or L.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.stage_name IS 'Stage name: awareness, interest, purchase or loyalty.';
COMMENT ON COLUMN retail_mid.dash_aipl_trend.customers IS 'Customers in the stage on the day.';

-- Day to day: the customers of each (previous staged day's stage, day's stage) pair; '-' for no stage.
CREATE VIEW retail_mid.dash_aipl_flow AS
WITH days AS (
    SELECT d.brand, d.dt, (SELECT max(p.dt) FROM retail_mid.dws_aipl_customer_stage_1d p WHERE p.brand = d.brand AND p.dt < d.dt) AS from_dt
      FROM (SELECT s.brand, s.dt FROM retail_mid.dws_aipl_customer_stage_1d s GROUP BY s.brand, s.dt) d
), pairs AS (
    SELECT d.brand, d.from_dt, d.dt, x.customer_key,
           coalesce(max(x.stage::text) FILTER (WHERE x.dt = d.from_dt), '-') AS from_stage,
           coalesce(max(x.stage::text) FILTER (WHERE x.dt = d.dt), '-') AS to_stage
      FROM days d
      JOIN retail_mid.dws_aipl_customer_stage_1d x ON x.brand = d.brand AND (x.dt = d.dt OR x.dt = d.from_dt)
     WHERE d.from_dt IS NOT NULL
     GROUP BY d.brand, d.from_dt, d.dt, x.customer_key
)
SELECT p.brand, p.from_dt, p.dt, p.from_stage, p.to_stage, count(*) AS customers
  FROM pairs p
 GROUP BY p.brand, p.from_dt, p.dt, p.from_stage, p.to_stage;
COMMENT ON VIEW retail_mid.dash_aipl_flow IS 'Dashboard tile AIPL flow: customers moving from their stage on the previous staged day (from_dt) to their stage on dt, per brand; between two chosen dates use retail_mid.aipl_flow(brand, d1, d2).';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.from_dt IS 'The previous staged day of the brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.from_stage IS 'Stage (A, I, P, L) on from_dt; - for no stage.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.to_stage IS 'Stage (A, I, P, L) on dt; - for no stage.';
COMMENT ON COLUMN retail_mid.dash_aipl_flow.customers IS 'Customers with that pair of stages.';

CREATE VIEW retail_mid.dash_aipl_gmv AS
SELECT b.brand, b.from_date, b.to_date, g.stage, g.customers, g.buyers, g.conversion_rate, g.avg_transaction_value, g.gmv,
       round(g.gmv / nullif(sum(g.gmv) OVER (PARTITION BY b.brand), 0), 6) AS gmv_share
  FROM (SELECT s.brand, greatest(min(s.dt), max(s.dt) - 30) AS from_date, max(s.dt) AS to_date
          FROM retail_mid.dws_aipl_customer_stage_1d s GROUP BY s.brand) b
 CROSS JOIN LATERAL retail_mid.aipl_gmv_decomposition(b.brand, b.from_date, b.to_date) g;
COMMENT ON VIEW retail_mid.dash_aipl_gmv IS 'Dashboard tile GMV contribution by AIPL stage: retail_mid.aipl_gmv_decomposition over the last 30 days of each brand''s staged history (customers by stage on from_date, their buyers and net amount in (from_date, to_date]).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.from_date IS 'Day the stages are taken (the latest staged day minus 30, or the first staged day).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.to_date IS 'Last day of the period (the latest staged day).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.stage IS 'Stage on from_date: A, I, P or L.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.customers IS 'Customers in the stage on from_date.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.buyers IS 'Of them, customers who bought in (from_date, to_date].';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.conversion_rate IS 'buyers / customers.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.avg_transaction_value IS 'Net amount per buyer in the period.';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.gmv IS 'Net amount of the stage''s buyers in the period (customers x conversion_rate x avg_transaction_value).';
COMMENT ON COLUMN retail_mid.dash_aipl_gmv.gmv_share IS 'Share of the brand''s GMV over the four stages (0..1; NULL when that is 0).';

-- ----------------------------------------------------------------- RFM

CREATE VIEW retail_mid.dash_rfm_distribution AS
SELECT s.brand, s.map_name, s.window_days, s.as_of, s.segment, s.customers, s.customer_share, s.monetary, s.revenue_share
  FROM retail_mid.rfm_segment_summary s
 WHERE s.as_of = (SELECT max(l.as_of) FROM retail_mid.rfm_snapshot l
                   WHERE l.brand = s.brand AND l.map_name = s.map_name AND l.window_days = s.window_days);
COMMENT ON VIEW retail_mid.dash_rfm_distribution IS 'Dashboard tile RFM distribution: customers and net amount per RFM segment in the latest snapshot of each brand, segment map and window (rfm_segment_summary; older snapshots are there).';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.map_name IS 'Segment map.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.as_of IS 'Snapshot date (the latest).';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.segment IS 'Segment; (unmapped) for customers no rule covers.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.customers IS 'Customers in the segment.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.customer_share IS 'Share of the snapshot''s customers (0..1).';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.monetary IS 'Their net amount within the window.';
COMMENT ON COLUMN retail_mid.dash_rfm_distribution.revenue_share IS 'Share of the snapshot''s net amount (0..1; 0 when that total is 0).';

-- ----------------------------------------------------------------- audience portrait

-- Categorical tag values (enum and boolean tags: no numeric value) of every saved audience's members against the
-- brand's tagged customers (the base), one row per audience, tag and value of the base.
CREATE VIEW retail_mid.dash_audience_portrait AS
WITH tags AS (
    SELECT v.brand, v.tag_name, v.customer_key, v.value
      FROM retail_mid.tag_value_brand v
     WHERE v.numeric_value IS NULL AND v.value IS NOT NULL
), base AS (
    SELECT t.brand, t.tag_name, t.value, count(*) AS customers,
           sum(count(*)) OVER (PARTITION BY t.brand, t.tag_name) AS tagged
      FROM tags t GROUP BY t.brand, t.tag_name, t.value
), aud AS (
    SELECT m.brand, m.audience_name, m.audience_brand, m.version, t.tag_name, t.value, count(*) AS customers
      FROM retail_mid.audience_member_brand m
      JOIN tags t ON t.brand = m.brand AND t.customer_key = m.customer_key
     GROUP BY m.brand, m.audience_name, m.audience_brand, m.version, t.tag_name, t.value
), aud_total AS (
    SELECT a.brand, a.audience_name, a.audience_brand, a.version, a.tag_name, sum(a.customers) AS tagged
      FROM aud a GROUP BY a.brand, a.audience_name, a.audience_brand, a.version, a.tag_name
)
SELECT b.brand, t.audience_name, t.audience_brand, t.version AS audience_version, b.tag_name, b.value,
       coalesce(a.customers, 0) AS audience_customers,
       round(coalesce(a.customers, 0) / t.tagged, 6) AS audience_share,
       b.customers AS base_customers,
       round(b.customers / b.tagged, 6) AS base_share,
       round((coalesce(a.customers, 0) / t.tagged) / (b.customers / b.tagged), 4) AS lift
  FROM aud_total t
  JOIN base b ON b.brand = t.brand AND b.tag_name = t.tag_name
  LEFT JOIN aud a ON a.brand = t.brand AND a.audience_name = t.audience_name AND a.audience_brand = t.audience_brand
                 AND a.version = t.version AND a.tag_name = t.tag_name AND a.value = b.value;
COMMENT ON VIEW retail_mid.dash_audience_portrait IS 'Dashboard tile audience portrait: for the latest version of every saved audience, the share of its members (customers of the brand) per value of each categorical tag (enum, boolean), against the share among all the brand''s customers with a value of that tag (the base).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.brand IS 'Brand of the customers.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_name IS 'Saved audience.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_brand IS 'Brand the audience was saved for (* for group-wide).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_version IS 'Version of the audience (the latest).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.tag_name IS 'Categorical tag.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.value IS 'Tag value.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_customers IS 'Audience members with the value.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.audience_share IS 'audience_customers / audience members with a value of the tag (0..1).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.base_customers IS 'The brand''s customers with the value.';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.base_share IS 'base_customers / the brand''s customers with a value of the tag (0..1).';
COMMENT ON COLUMN retail_mid.dash_audience_portrait.lift IS 'audience_share / base_share (over 1: the value is over-represented in the audience).';

-- ----------------------------------------------------------------- campaigns and reach

CREATE VIEW retail_mid.dash_campaign_performance AS
SELECT t.brand, t.campaign_id, coalesce(c.name, t.campaign_id) AS campaign_name, c.kind, c.start_date, c.end_date, t.channel,
       count(*) FILTER (WHERE t.touch_type = 'sent') AS sent,
       count(*) FILTER (WHERE t.touch_type = 'exposed') AS exposed,
       count(*) FILTER (WHERE t.touch_type = 'clicked') AS clicked,
       count(*) FILTER (WHERE t.touch_type = 'redeemed') AS redeemed,
       count(DISTINCT t.customer_key) AS customers,
       round(count(*) FILTER (WHERE t.touch_type = 'clicked')::numeric / nullif(count(*) FILTER (WHERE t.touch_type = 'sent'), 0), 6) AS click_rate,
       round(count(*) FILTER (WHERE t.touch_type = 'redeemed')::numeric / nullif(count(*) FILTER (WHERE t.touch_type = 'sent'), 0), 6) AS redemption_rate
  FROM retail_mid.campaign_touch_keyed t
  LEFT JOIN retail_mid.ods_campaign c ON c.brand = t.brand AND c.campaign_id = t.campaign_id
 GROUP BY t.brand, t.campaign_id, c.name, c.kind, c.start_date, c.end_date, t.channel;
COMMENT ON VIEW retail_mid.dash_campaign_performance IS 'Dashboard tile campaign performance: touches per campaign and channel by touch type (the ODS campaign touches of identifiers with a customer key, campaign_touch_keyed), with click and redemption rates.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.campaign_id IS 'Campaign.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.campaign_name IS 'Campaign name (the id when ods_campaign has no row for it).';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.kind IS 'Campaign kind (ods_campaign).';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.start_date IS 'First day of the campaign.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.end_date IS 'Last day of the campaign.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.channel IS 'Channel of the touches.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.sent IS 'Touches of type sent.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.exposed IS 'Touches of type exposed.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.clicked IS 'Touches of type clicked.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.redeemed IS 'Touches of type redeemed.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.customers IS 'Distinct customers touched.';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.click_rate IS 'clicked / sent (NULL without sent touches).';
COMMENT ON COLUMN retail_mid.dash_campaign_performance.redemption_rate IS 'redeemed / sent (NULL without sent touches).';

CREATE VIEW retail_mid.dash_reach_plan AS
SELECT o.brand, o.plan_id, p.name AS plan_name, p.audience, p.campaign_id,
       coalesce(o.channel, '(none)') AS channel, coalesce(o.template, '(none)') AS template,
       count(*) FILTER (WHERE o.status = 'planned') AS planned,
       count(*) FILTER (WHERE o.status = 'sent') AS sent,
       count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
       count(*) FILTER (WHERE o.status = 'failed') AS failed,
       count(*) FILTER (WHERE o.status = 'skipped') AS skipped,
       count(*) AS decided
  FROM retail_mid.reach_outbox o
  JOIN retail_mid.reach_plan p ON p.plan_id = o.plan_id
 GROUP BY o.brand, o.plan_id, p.name, p.audience, p.campaign_id, coalesce(o.channel, '(none)'), coalesce(o.template, '(none)');
COMMENT ON VIEW retail_mid.dash_reach_plan IS 'Dashboard tile campaign performance (reach plans): the outbox of every reach plan per channel and template by status: planned, then sent, delivered or failed as the delivery system reports, or skipped.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.plan_id IS 'Reach plan.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.plan_name IS 'Plan name.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.audience IS 'Saved audience the plan reaches.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.campaign_id IS 'Campaign the plan belongs to, if any.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.channel IS 'Channel; (none) for skipped customers.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.template IS 'Message template; (none) for skipped customers.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.planned IS 'Outbox rows still planned.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.sent IS 'Rows reported sent.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.delivered IS 'Rows reported delivered.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.failed IS 'Rows reported failed.';
COMMENT ON COLUMN retail_mid.dash_reach_plan.skipped IS 'Customers skipped (consent, frequency cap, no channel).';
COMMENT ON COLUMN retail_mid.dash_reach_plan.decided IS 'All outbox rows of the plan, channel and template.';

-- ----------------------------------------------------------------- stock, replenishment, forecasts

CREATE VIEW retail_mid.dash_stock_position AS
SELECT i.brand, i.site_id, d.site_type, d.region, i.sku_id, i.snapshot_date, i.on_hand, i.on_order, i.reserved,
       i.on_hand - i.reserved AS available
  FROM retail_mid.ods_inventory_snapshot i
  JOIN (SELECT l.brand, l.site_id, max(l.snapshot_date) AS snapshot_date
          FROM retail_mid.ods_inventory_snapshot l GROUP BY l.brand, l.site_id) m
    ON m.brand = i.brand AND m.site_id = i.site_id AND m.snapshot_date = i.snapshot_date
  LEFT JOIN retail_mid.dim_site d ON d.brand = i.brand AND d.site_id = i.site_id AND d.is_current;
COMMENT ON VIEW retail_mid.dash_stock_position IS 'Dashboard tile stock: stock per site and SKU in each site''s latest inventory snapshot, stores and warehouses alike, with the site''s type and region (dim_site).';
COMMENT ON COLUMN retail_mid.dash_stock_position.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_stock_position.site_id IS 'Site (store or warehouse).';
COMMENT ON COLUMN retail_mid.dash_stock_position.site_type IS 'Site type (dim_site; NULL for a site not in ods_site).';
COMMENT ON COLUMN retail_mid.dash_stock_position.region IS 'Region of the site (dim_site, current).';
COMMENT ON COLUMN retail_mid.dash_stock_position.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_stock_position.snapshot_date IS 'The site''s latest snapshot day.';
COMMENT ON COLUMN retail_mid.dash_stock_position.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.dash_stock_position.on_order IS 'Units on order.';
COMMENT ON COLUMN retail_mid.dash_stock_position.reserved IS 'Units reserved for open orders.';
COMMENT ON COLUMN retail_mid.dash_stock_position.available IS 'on_hand - reserved.';

CREATE VIEW retail_mid.dash_replenishment AS
SELECT o.brand, o.site_id, o.sku_id, o.as_of, o.snapshot_date, o.on_hand, o.on_order, o.reserved, o.inventory_position,
       o.mean_daily_demand, o.cover_days, o.lead_time_mean, o.reorder_point, o.order_up_to, o.order_qty,
       o.inventory_position < o.reorder_point AS below_reorder_point
  FROM retail_mid.replenish_suggested_order o;
COMMENT ON VIEW retail_mid.dash_replenishment IS 'Dashboard tile replenishment: the suggested order of every store x SKU with a stored forecast (replenish_suggested_order, normal method): stock, reorder point, order-up-to level and the order.';
COMMENT ON COLUMN retail_mid.dash_replenishment.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_replenishment.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_replenishment.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_replenishment.as_of IS 'Day the forecast was made.';
COMMENT ON COLUMN retail_mid.dash_replenishment.snapshot_date IS 'Inventory snapshot used; NULL when there is none (stock taken as 0).';
COMMENT ON COLUMN retail_mid.dash_replenishment.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.dash_replenishment.on_order IS 'Units on order.';
COMMENT ON COLUMN retail_mid.dash_replenishment.reserved IS 'Units reserved.';
COMMENT ON COLUMN retail_mid.dash_replenishment.inventory_position IS 'on_hand + on_order - reserved.';
COMMENT ON COLUMN retail_mid.dash_replenishment.mean_daily_demand IS 'Mean daily forecast over the horizon.';
COMMENT ON COLUMN retail_mid.dash_replenishment.cover_days IS 'Days the free stock lasts at the mean daily forecast (Infinity with stock and no demand).';
COMMENT ON COLUMN retail_mid.dash_replenishment.lead_time_mean IS 'Mean lead time in days (NULL when unknown).';
COMMENT ON COLUMN retail_mid.dash_replenishment.reorder_point IS 'Reorder point.';
COMMENT ON COLUMN retail_mid.dash_replenishment.order_up_to IS 'Order-up-to level.';
COMMENT ON COLUMN retail_mid.dash_replenishment.order_qty IS 'Suggested order in units (whole packs); NULL without a lead time.';
COMMENT ON COLUMN retail_mid.dash_replenishment.below_reorder_point IS 'inventory_position < reorder_point.';

CREATE VIEW retail_mid.dash_forecast_actual AS
SELECT f.brand, f.site_id, f.sku_id, f.made_on, r.step, f.made_on + r.step AS dt, r.mean AS forecast, r.lo80, r.hi80,
       CASE WHEN f.made_on + r.step <= s.as_of THEN coalesce(a.sales_quantity, 0)::float8 END AS actual
  FROM retail_mid.replenish_forecast f
 CROSS JOIN LATERAL retail_mid.forecast_rows(f.result) r
  LEFT JOIN retail_mid.dws_refresh_state s ON s.brand = f.brand
  LEFT JOIN retail_mid.dws_trade_sku_store_1d a
    ON a.brand = f.brand AND a.store_id = f.site_id AND a.sku_id = f.sku_id AND a.dt = f.made_on + r.step;
COMMENT ON VIEW retail_mid.dash_forecast_actual IS 'Dashboard tile forecast against actuals: every step of the stored daily forecasts (replenish_forecast) with the units sold that day (dws_trade_sku_store_1d); make the forecasts as of a past day (replenish_refresh_forecasts(brand, as_of)) to see both.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.made_on IS 'Last day of the forecast''s history.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.step IS 'Days ahead (1 = the day after made_on).';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.dt IS 'Day forecast (made_on + step).';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.forecast IS 'Point forecast, units.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.lo80 IS 'Lower bound of the 80% interval.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.hi80 IS 'Upper bound of the 80% interval.';
COMMENT ON COLUMN retail_mid.dash_forecast_actual.actual IS 'Units sold that day (0 on days without sales); NULL after the brand''s latest day with trade.';

-- ----------------------------------------------------------------- sites

CREATE VIEW retail_mid.dash_site_candidate AS
SELECT r.rank, r.candidate_id, r.name, c.lon, c.lat, r.expected_sales, r.cannibalisation, r.net_gain, r.market_share,
       r.competitors, r.nearest_competitor_m
  FROM retail_mid.site_candidate_ranking r
  JOIN retail_mid.site_candidate c ON c.candidate_id = r.candidate_id;
COMMENT ON VIEW retail_mid.dash_site_candidate IS 'Dashboard tile site candidates (map): the candidates of the last scoring run with their WGS 84 coordinates, ranked by net gain; the group''s planning output, of no brand.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.rank IS '1 = best net gain.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.name IS 'Candidate label.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.lon IS 'Longitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_candidate.lat IS 'Latitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_candidate.expected_sales IS 'Huff expected sales of the candidate.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.cannibalisation IS 'Sales taken from own stores.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.net_gain IS 'expected_sales - cannibalisation.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.market_share IS 'Share of the demand in reach.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.competitors IS 'Competitor stores within the trade area.';
COMMENT ON COLUMN retail_mid.dash_site_candidate.nearest_competitor_m IS 'Distance to the nearest competitor, metres.';

CREATE VIEW retail_mid.dash_site_store AS
SELECT s.brand, s.store_id, s.store_code, s.name, s.own, s.lon, s.lat, s.attractiveness, s.observed_sales
  FROM retail_mid.site_store s;
COMMENT ON VIEW retail_mid.dash_site_store IS 'Dashboard tile site candidates (map): the own and competitor stores of site selection with their WGS 84 coordinates, per brand.';
COMMENT ON COLUMN retail_mid.dash_site_store.brand IS 'Brand whose site selection the store belongs to.';
COMMENT ON COLUMN retail_mid.dash_site_store.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_site_store.store_code IS 'Store code.';
COMMENT ON COLUMN retail_mid.dash_site_store.name IS 'Store name.';
COMMENT ON COLUMN retail_mid.dash_site_store.own IS 'true for the brand''s own stores, false for competitors.';
COMMENT ON COLUMN retail_mid.dash_site_store.lon IS 'Longitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_store.lat IS 'Latitude (WGS 84).';
COMMENT ON COLUMN retail_mid.dash_site_store.attractiveness IS 'Huff attractiveness (e.g. floor area).';
COMMENT ON COLUMN retail_mid.dash_site_store.observed_sales IS 'Observed sales, when known.';

-- ----------------------------------------------------------------- governance

CREATE VIEW retail_mid.dash_quality_scorecard AS
SELECT q.brand, q.rule_id, q.rule_name, q.table_name, q.column_name, q.template, q.dimension, q.data_domain,
       q.day, q.as_of, q.outcome, q.score, q.rows_checked, q.violation_ratio, q.warn_threshold, q.fail_threshold
  FROM retail_mid.quality_result_latest q;
COMMENT ON VIEW retail_mid.dash_quality_scorecard IS 'Dashboard tile quality and governance scorecard: the latest result of every quality rule (quality_result_latest), pass, warn or fail; brand * rows (whole tables) are visible to administrators only.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.brand IS '* for the whole table, else the brand of a per-brand result.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.rule_id IS 'Rule.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.rule_name IS 'Rule name.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.table_name IS 'Checked table.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.column_name IS 'Checked column, if any.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.template IS 'Rule template.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.dimension IS 'Quality dimension.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.data_domain IS 'Data domain.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.day IS 'Day of the latest evaluation.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.as_of IS 'Evaluation time.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.outcome IS 'pass, warn, fail or warming_up.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.score IS 'Rule score: pass 100, warn 50, fail 0.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.rows_checked IS 'Rows checked.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.violation_ratio IS 'Share of checked rows violating the rule.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.warn_threshold IS 'Warning threshold.';
COMMENT ON COLUMN retail_mid.dash_quality_scorecard.fail_threshold IS 'Failure threshold.';

-- ----------------------------------------------------------------- security (as governance/lockdown.sql does)

DO $$
DECLARE v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_class c
              WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind = 'v' AND c.relname LIKE 'dash\_%'
                AND c.relname <> 'dash_site_candidate' ORDER BY c.relname LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
        PERFORM retail_mid.security_grant(v);
    END LOOP;
END;
$$;
-- the site candidates: owned by retail_mid_view_owner like site_candidate_ranking, readable by every shipped role
ALTER VIEW retail_mid.dash_site_candidate OWNER TO retail_mid_view_owner;
GRANT SELECT ON retail_mid.dash_site_candidate TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
-- BI reads the brand-isolated tables under the dashboard views (security_invoker views need both)
GRANT SELECT ON retail_mid.ods_campaign, retail_mid.ods_inventory_snapshot, retail_mid.site_store, retail_mid.replenish_forecast
    TO retail_mid_bi;

-- issue 16: audience latency. The evaluator keeps its queries prepared; customer_universe() is C, running the
-- same prepared query as the evaluator's NOT (as a SQL function its body was re-planned on every call).
CREATE OR REPLACE FUNCTION retail_mid.customer_universe() RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'customer_universe' LANGUAGE C STABLE PARALLEL RESTRICTED;

-- issue 18: Theta, the M4 Comb benchmark and combinations in retail_mid.forecast (C only; the comments list them)
COMMENT ON AGGREGATE retail_mid.forecast(date, float8, int4) IS 'Forecasts one daily series per group (automatic choice by demand class: smooth and erratic series get the mean of the AICc-best ETS and Theta, or damped Holt without a season; intermittent ones the best Croston-type method); returns jsonb with model, parameters, fit statistics, point forecasts and 80%/95% intervals.';
COMMENT ON AGGREGATE retail_mid.forecast(date, float8, int4, jsonb) IS 'Forecasts one dated series per group with options (model: auto, ets, theta, comb, ses, holt, damped, mean, median, select, weighted, croston, sba, tsb, adida, naive, snaive; ets, auto_model, components, origins, frequency, season_length, gaps, quantiles, max_evals, tolerance, nsim, seed, alpha, beta); returns jsonb.';

-- issue 15: consumers (tags, reach, replenishment) read the public layer; the freshness check of the domain layer
CREATE INDEX ON retail_mid.dws_inventory_site_sku_1d (brand, site_id, sku_id, dt);
CREATE TABLE retail_mid.domain_refresh_state (
    domain       text        NOT NULL CHECK (domain IN ('behavior', 'touch', 'inventory')),
    brand        text        NOT NULL,
    dt           date        NOT NULL,
    ods_rows     bigint      NOT NULL,
    ods_digest   numeric     NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, brand, dt)
);
COMMENT ON TABLE retail_mid.domain_refresh_state IS 'What refresh_domains read from the ODS, per domain (behavior: ods_behavior_event, touch: ods_campaign_touch, inventory: ods_inventory_snapshot), brand and day: compared with the ODS now by domain_stale_days so that consumers do not read a stale DWD/DWS.';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.domain_refresh_state', '');
COMMENT ON COLUMN retail_mid.domain_refresh_state.domain IS 'behavior (dwd_behavior_event_di, dws_behavior_customer_1d), touch (dwd_marketing_touch_di, dws_marketing_campaign_1d) or inventory (dws_inventory_site_sku_1d).';
COMMENT ON COLUMN retail_mid.domain_refresh_state.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.dt IS 'Day (event_time, touched_at or snapshot_date).';
COMMENT ON COLUMN retail_mid.domain_refresh_state.ods_rows IS 'ODS rows of the brand and day when the layer was rebuilt.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.ods_digest IS 'Sum of hashtextextended(row::text, 0) over those rows: changes when a row is added, removed, changed or reloaded.';
COMMENT ON COLUMN retail_mid.domain_refresh_state.refreshed_at IS 'When refresh_domains rebuilt the day.';

-- The ODS side of the digest, per domain, brand and day (brand NULL: every brand; a NULL bound: unbounded).
CREATE FUNCTION retail_mid.domain_ods_digest(which text, of_brand text, from_date date, to_date date)
RETURNS TABLE (domain text, brand text, dt date, ods_rows bigint, ods_digest numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE d text := which; b text := of_brand; lo date := coalesce(from_date, '-infinity'); hi date := coalesce(to_date, 'infinity');
BEGIN
    -- one table per domain, read only when asked for (a caller may read the snapshots but not the events)
    IF d IN ('behavior', '*') THEN
        RETURN QUERY
        SELECT 'behavior'::text, e.brand, e.event_time::date, count(*), sum(hashtextextended(e::text, 0))
          FROM retail_mid.ods_behavior_event e
         WHERE (b IS NULL OR e.brand = b) AND e.event_time >= lo AND e.event_time < hi + 1
         GROUP BY e.brand, e.event_time::date;
    END IF;
    IF d IN ('touch', '*') THEN
        RETURN QUERY
        SELECT 'touch'::text, t.brand, t.touched_at::date, count(*), sum(hashtextextended(t::text, 0))
          FROM retail_mid.ods_campaign_touch t
         WHERE (b IS NULL OR t.brand = b) AND t.touched_at >= lo AND t.touched_at < hi + 1
         GROUP BY t.brand, t.touched_at::date;
    END IF;
    IF d IN ('inventory', '*') THEN
        RETURN QUERY
        SELECT 'inventory'::text, i.brand, i.snapshot_date, count(*), sum(hashtextextended(i::text, 0))
          FROM retail_mid.ods_inventory_snapshot i
         WHERE (b IS NULL OR i.brand = b) AND i.snapshot_date >= lo AND i.snapshot_date <= hi
         GROUP BY i.brand, i.snapshot_date;
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.domain_ods_digest(text, text, date, date) IS 'Rows and digest (sum of hashtextextended of every whole row) of the ODS per domain (which: behavior, touch, inventory or * for all), brand (of_brand; NULL: all) and day in [from_date, to_date] (NULL: unbounded), reading only the table of the domain asked for; what refresh_domains records in domain_refresh_state.';

-- Days on which the domain layer is behind the ODS: the ODS digest differs from the recorded one (new, changed
-- or removed rows), or ODS rows were never refreshed.
CREATE FUNCTION retail_mid.domain_stale_days(domain text, brand text DEFAULT NULL, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (domain text, brand text, dt date, ods_rows bigint, refreshed_rows bigint, refreshed_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(o.domain, s.domain), coalesce(o.brand, s.brand), coalesce(o.dt, s.dt), coalesce(o.ods_rows, 0), s.ods_rows, s.refreshed_at
      FROM retail_mid.domain_ods_digest(domain_stale_days.domain, domain_stale_days.brand, domain_stale_days.from_date, domain_stale_days.to_date) o
      FULL JOIN (SELECT r.* FROM retail_mid.domain_refresh_state r
                  WHERE domain_stale_days.domain IN (r.domain, '*')
                    AND (domain_stale_days.brand IS NULL OR r.brand = domain_stale_days.brand)
                    AND r.dt >= coalesce(domain_stale_days.from_date, '-infinity'::date)
                    AND r.dt <= coalesce(domain_stale_days.to_date, 'infinity'::date)) s
        ON s.domain = o.domain AND s.brand = o.brand AND s.dt = o.dt
     WHERE o.ods_rows IS DISTINCT FROM s.ods_rows OR o.ods_digest IS DISTINCT FROM s.ods_digest
     ORDER BY 1, 2, 3;
END;
COMMENT ON FUNCTION retail_mid.domain_stale_days(text, text, date, date) IS 'Days on which a domain (behavior, touch, inventory or *) of a brand (NULL: all) is behind the ODS in [from_date, to_date] (NULL: unbounded): rows added, changed, removed or reloaded since refresh_domains last rebuilt the day, or never refreshed; empty when the layer is current.';

-- For consumers: true when the layer is current for the brand and days, else 55000 with the refresh to run.
CREATE FUNCTION retail_mid.domain_require_fresh(domain text, brand text, from_date date, to_date date)
RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; lo date; hi date;
BEGIN
    IF domain IS NULL THEN
        RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF domain NOT IN ('behavior', 'touch', 'inventory', '*') THEN
        RAISE EXCEPTION 'unknown domain "%"', domain USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use behavior, touch, inventory or *.';
    END IF;
    SELECT count(*), min(s.dt), max(s.dt) INTO n, lo, hi FROM retail_mid.domain_stale_days(domain, brand, from_date, to_date) s;
    IF n > 0 THEN
        RAISE EXCEPTION 'the % layer of brand % is behind the ODS on % day(s) between % and %', domain, coalesce(brand, '*'), n, to_char(lo, 'YYYY-MM-DD'), to_char(hi, 'YYYY-MM-DD')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The ODS rows of those days changed (or were never refreshed) after retail_mid.refresh_domains last rebuilt them; see retail_mid.domain_stale_days.',
                  HINT = format('Run SELECT retail_mid.refresh_domains(%L, %L); (or retail_mid.refresh over those days) and try again.', to_char(lo, 'YYYY-MM-DD'), to_char(hi, 'YYYY-MM-DD'));
    END IF;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION retail_mid.domain_require_fresh(text, text, date, date) IS 'For consumers of the domain DWD/DWS: true when domain_stale_days is empty for the domain, brand (NULL: all) and days (NULL bounds: unbounded), else an error with SQLSTATE 55000 whose hint names the refresh_domains call to run.';
SELECT retail_mid.secure_brand_table('retail_mid.domain_refresh_state');
SELECT retail_mid.security_grant('retail_mid.domain_refresh_state');
CREATE OR REPLACE FUNCTION retail_mid.refresh_domains(from_date date, to_date date)
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
    -- what was read, for the consumers' freshness check (domain_require_fresh)
    DELETE FROM retail_mid.domain_refresh_state s WHERE s.dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.domain_refresh_state (domain, brand, dt, ods_rows, ods_digest)
    SELECT d.domain, d.brand, d.dt, d.ods_rows, d.ods_digest FROM retail_mid.domain_ods_digest('*', NULL, from_date, to_date) d;
    RETURN v_dwd + v_dws;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_domains(date, date) IS 'Rebuilds the behaviour, marketing, inventory and member DWD/DWS for the given days (after the trade DWS, which it reads) and records what it read in domain_refresh_state (the consumers'' freshness check); called by retail_mid.refresh in its transaction; returns rows written.';
-- Touches that count towards a brand's frequency caps, with customer keys: the outbox (planned, sent, delivered)
-- and the touch history of the public layer (dwd_marketing_touch_di: sent, exposed) except the touches of plan
-- campaigns (the outbox has those). reach_plan_run checks that the DWD is current (domain_require_fresh).
CREATE OR REPLACE VIEW retail_mid.reach_touch AS
SELECT o.brand::text AS brand, o.customer_key::int4 AS customer_key, o.planned_at::timestamp AS touched_at,
       o.channel::text AS channel, 'outbox'::text AS source
  FROM retail_mid.reach_outbox o WHERE o.status IN ('planned', 'sent', 'delivered')
UNION ALL
SELECT t.brand, t.customer_key, t.touched_at, t.channel, 'ods_campaign_touch'
  FROM retail_mid.dwd_marketing_touch_di t
 WHERE t.touch_type IN ('sent', 'exposed')
   AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_plan p WHERE p.brand = t.brand AND p.campaign_id = t.campaign_id);
COMMENT ON VIEW retail_mid.reach_touch IS 'Every touch counted by frequency caps: outbox rows planned, sent or delivered, and the campaign touches sent or exposed of the touch DWD (dwd_marketing_touch_di: keyed, exact duplicates once), except those of reach plan campaigns, which the outbox counts.';
COMMENT ON COLUMN retail_mid.reach_touch.brand IS 'Brand that touched.';
COMMENT ON COLUMN retail_mid.reach_touch.customer_key IS 'Customer touched.';
COMMENT ON COLUMN retail_mid.reach_touch.touched_at IS 'When (planned time for outbox rows).';
COMMENT ON COLUMN retail_mid.reach_touch.channel IS 'Channel (''(none)'' for a campaign touch without one).';
COMMENT ON COLUMN retail_mid.reach_touch.source IS 'outbox, or ods_campaign_touch for the campaign touches (read from dwd_marketing_touch_di).';
ALTER VIEW retail_mid.reach_touch SET (security_invoker = false);
GRANT SELECT ON retail_mid.dwd_marketing_touch_di TO retail_mid_view_owner;
CREATE OR REPLACE FUNCTION retail_mid.reach_plan_run(plan_id bigint)
RETURNS TABLE (run_id bigint, members bigint, already_decided bigint, planned bigint, skipped_frequency_cap bigint,
               skipped_no_consent bigint, skipped_global_opt_out bigint, skipped_same_person bigint, held_out bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p retail_mid.reach_plan; job bigint; aud retail_mid.rbitmap; n_members bigint; n_done bigint;
    n_planned bigint; n_cap bigint; n_consent bigint; n_opt bigint; n_same bigint; n_held bigint; v_run bigint; win interval;
BEGIN
    IF plan_id IS NULL THEN
        RAISE EXCEPTION 'plan_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO p FROM retail_mid.reach_plan r WHERE r.plan_id = reach_plan_run.plan_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reach plan % does not exist', plan_id USING ERRCODE = 'undefined_object';
    END IF;
    job := retail_mid.job_start('reach_plan_run', jsonb_build_object('plan_id', plan_id, 'brand', p.brand));
    -- Serialise the runs of a brand: a concurrent run waits here, then (read committed) sees the first one's
    -- outbox rows; under repeatable read it fails with 40001 instead of counting from a stale snapshot.
    INSERT INTO retail_mid.reach_brand_lock AS l (brand) VALUES (p.brand)
    ON CONFLICT (brand) DO UPDATE SET last_run_at = now();
    SELECT * INTO p FROM retail_mid.reach_plan r WHERE r.plan_id = reach_plan_run.plan_id;
    win := make_interval(days => p.cap_days);
    -- the frequency caps read the touch DWD (reach_touch): it must hold every ODS touch of the cap windows
    PERFORM retail_mid.domain_require_fresh('touch', p.brand, (p.send_at - win)::date, (p.send_at + win)::date);

    -- the plan's brand is the context: brand tags answer with that brand's values, not another brand's
    aud := retail_mid.audience(p.audience, p.brand);
    n_members := retail_mid.rb_cardinality(aud);
    IF n_members = 0 THEN
        RAISE EXCEPTION 'the audience of reach plan % is empty', plan_id USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Audience expression: %s', p.audience);
    END IF;
    CREATE TEMP TABLE rm_reach_member (customer_key int4 PRIMARY KEY, person int4, segment text, channel text, reason text) ON COMMIT DROP;
    -- the member's OneID person (oneid_person_brand, in the plan's brand: at most one row per key; a key without a
    -- person is its own): the keys of one person share the frequency cap and one touch per plan
    INSERT INTO rm_reach_member (customer_key, person)
    SELECT k, coalesce(ob.person_key, k) FROM retail_mid.rb_iterate(aud) k
      LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = k
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.reach_outbox o WHERE o.plan_id = p.plan_id AND o.customer_key = k)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_holdout h WHERE h.plan_id = p.plan_id AND h.customer_key = k);
    CREATE INDEX ON rm_reach_member (person);
    n_done := n_members - (SELECT count(*) FROM rm_reach_member);
    ANALYZE rm_reach_member;
    RAISE NOTICE 'reach_plan_run: plan %: % audience members, % decided before, % to decide', plan_id, n_members, n_done, n_members - n_done;

    IF p.segment_tag IS NOT NULL THEN
        -- a brand tag's segment in the plan's brand; a group tag's group-wide value
        UPDATE rm_reach_member m SET segment = v.value FROM retail_mid.tag_value v, retail_mid.tag_definition d
         WHERE d.tag_name = p.segment_tag AND v.tag_name = d.tag_name AND v.valid_to IS NULL AND v.customer_key = m.customer_key
           AND v.brand = CASE d.scope WHEN 'brand' THEN p.brand ELSE '*' END;
    END IF;

    -- Consent as of send_at: the latest row per channel; a channel is usable when that row grants it and no
    -- global opt-out is as recent or more recent. The customer's preference rank first, then the plan's order.
    WITH latest AS (
        SELECT DISTINCT ON (c.customer_key, c.channel) c.customer_key, c.channel, c.status, c.preference, c.changed_at
          FROM retail_mid.reach_consent c JOIN rm_reach_member m ON m.customer_key = c.customer_key
         WHERE c.brand = p.brand AND c.changed_at <= p.send_at AND (c.channel = '*' OR c.channel = ANY (p.channels))
         ORDER BY c.customer_key, c.channel, c.changed_at DESC),
    usable AS (
        SELECT DISTINCT ON (l.customer_key) l.customer_key, l.channel
          FROM latest l LEFT JOIN latest g ON g.customer_key = l.customer_key AND g.channel = '*'
         WHERE l.channel <> '*' AND l.status = 'granted' AND (g.changed_at IS NULL OR g.changed_at < l.changed_at)
         ORDER BY l.customer_key, l.preference NULLS LAST, array_position(p.channels, l.channel))
    UPDATE rm_reach_member m SET channel = u.channel FROM usable u WHERE u.customer_key = m.customer_key;
    UPDATE rm_reach_member m SET reason = CASE WHEN EXISTS (SELECT 1 FROM retail_mid.reach_consent c
                                                             WHERE c.brand = p.brand AND c.customer_key = m.customer_key
                                                               AND c.channel = '*' AND c.changed_at <= p.send_at)
                                               THEN 'global_opt_out' ELSE 'no_consent' END
     WHERE m.channel IS NULL;

    -- One person, one touch: a plan touches a person once, through the lowest key with a channel, unless an
    -- earlier run of the plan already touched (or held out) the person through another key.
    WITH earlier AS (
        SELECT coalesce(ob.person_key, o.customer_key) AS person
          FROM retail_mid.reach_outbox o
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = o.customer_key
         WHERE o.plan_id = p.plan_id AND o.status IN ('planned', 'sent', 'delivered')
        UNION ALL
        SELECT coalesce(ob.person_key, h.customer_key)
          FROM retail_mid.reach_holdout h
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = h.customer_key
         WHERE h.plan_id = p.plan_id),
    ranked AS (
        SELECT m.customer_key, row_number() OVER (PARTITION BY m.person ORDER BY m.customer_key) AS k,
               m.person IN (SELECT e.person FROM earlier e) AS touched
          FROM rm_reach_member m WHERE m.channel IS NOT NULL)
    UPDATE rm_reach_member m SET reason = 'same_person', channel = NULL
      FROM ranked r WHERE r.customer_key = m.customer_key AND (r.k > 1 OR r.touched);

    -- Frequency cap over every window (e - cap_days, e]: the new touch at send_at is allowed when each window
    -- containing it (e in [send_at, send_at + cap_days)) holds fewer than cap_touches touches. Such a window
    -- is fullest when it ends at send_at or at one of the touches after send_at (later plans count too).
    -- (per person: the touches of all the person's keys)
    WITH t AS (
        SELECT m.person AS customer_key, r.touched_at
          FROM retail_mid.reach_touch r
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = r.customer_key
          JOIN rm_reach_member m ON m.person = coalesce(ob.person_key, r.customer_key)
         WHERE m.channel IS NOT NULL AND r.brand = p.brand
           AND r.touched_at > p.send_at - win AND r.touched_at < p.send_at + win),
    w AS (
        SELECT t.customer_key, t.touched_at,
               count(*) OVER (PARTITION BY t.customer_key ORDER BY t.touched_at
                              RANGE BETWEEN win - interval '1 microsecond' PRECEDING AND CURRENT ROW) AS ending_here,
               count(*) FILTER (WHERE t.touched_at <= p.send_at) OVER (PARTITION BY t.customer_key) AS ending_at_send
          FROM t),
    fullest AS (
        SELECT w.customer_key, max(greatest(CASE WHEN w.touched_at > p.send_at THEN w.ending_here ELSE 0 END, w.ending_at_send)) AS n
          FROM w GROUP BY w.customer_key)
    UPDATE rm_reach_member m SET reason = 'frequency_cap', channel = NULL
      FROM fullest f WHERE f.customer_key = m.person AND f.n >= p.cap_touches AND m.channel IS NOT NULL;

    -- issue 16: the control group, among the members who would be touched: the hash bucket of (plan, key) below
    -- the plan's share; recorded in reach_holdout with the channel and template they would have got, never sent
    IF p.holdout_share > 0 THEN
        UPDATE rm_reach_member m SET reason = 'holdout'
         WHERE m.channel IS NOT NULL AND retail_mid.reach_holdout_bucket(p.plan_id, m.customer_key) < p.holdout_share;
    END IF;

    INSERT INTO retail_mid.reach_run (plan_id, brand, job_id, members, already_decided, planned)
    VALUES (p.plan_id, p.brand, job, n_members, n_done, 0) RETURNING reach_run.run_id INTO v_run;
    INSERT INTO retail_mid.reach_outbox (plan_id, brand, customer_key, channel, template, planned_at, status, reason, run_id)
    SELECT p.plan_id, p.brand, m.customer_key, m.channel,
           CASE WHEN m.channel IS NOT NULL THEN coalesce(p.templates ->> m.segment, p.templates ->> '*') END,
           p.send_at, CASE WHEN m.channel IS NULL THEN 'skipped' ELSE 'planned' END, m.reason, v_run
      FROM rm_reach_member m WHERE m.reason IS DISTINCT FROM 'holdout' ORDER BY m.customer_key
    ON CONFLICT ON CONSTRAINT reach_outbox_pkey DO NOTHING;
    INSERT INTO retail_mid.reach_holdout (plan_id, brand, customer_key, channel, template, planned_at, bucket, run_id)
    SELECT p.plan_id, p.brand, m.customer_key, m.channel, coalesce(p.templates ->> m.segment, p.templates ->> '*'),
           p.send_at, retail_mid.reach_holdout_bucket(p.plan_id, m.customer_key), v_run
      FROM rm_reach_member m WHERE m.reason = 'holdout' ORDER BY m.customer_key
    ON CONFLICT ON CONSTRAINT reach_holdout_pkey DO NOTHING;
    SELECT count(*) FILTER (WHERE m.channel IS NOT NULL AND m.reason IS NULL), count(*) FILTER (WHERE m.reason = 'frequency_cap'),
           count(*) FILTER (WHERE m.reason = 'no_consent'), count(*) FILTER (WHERE m.reason = 'global_opt_out'),
           count(*) FILTER (WHERE m.reason = 'same_person'), count(*) FILTER (WHERE m.reason = 'holdout')
      INTO n_planned, n_cap, n_consent, n_opt, n_same, n_held FROM rm_reach_member m;
    UPDATE retail_mid.reach_run r SET planned = n_planned, held_out = n_held,
           skipped = jsonb_build_object('frequency_cap', n_cap, 'no_consent', n_consent, 'global_opt_out', n_opt, 'same_person', n_same)
     WHERE r.run_id = v_run;
    RAISE NOTICE 'reach_plan_run: plan %: % touches planned, skipped: % over the frequency cap, % without consent, % opted out, % other keys of a person touched',
        plan_id, n_planned, n_cap, n_consent, n_opt, n_same;
    IF p.holdout_share > 0 THEN
        RAISE NOTICE 'reach_plan_run: plan %: % members held out as the control group (share %)', plan_id, n_held, p.holdout_share;
    END IF;
    PERFORM retail_mid.job_finish(job, n_planned + n_cap + n_consent + n_opt + n_same + n_held,
        jsonb_build_object('run_id', v_run, 'members', n_members, 'already_decided', n_done, 'planned', n_planned,
                           'skipped', jsonb_build_object('frequency_cap', n_cap, 'no_consent', n_consent, 'global_opt_out', n_opt, 'same_person', n_same),
                           'held_out', n_held));
    DROP TABLE rm_reach_member;
    RETURN QUERY SELECT v_run, n_members, n_done, n_planned, n_cap, n_consent, n_opt, n_same, n_held;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_run(bigint) IS 'Decides every audience member of a plan that has no decision yet: the most preferred consented channel and the segment''s template, or skipped (frequency_cap per OneID person, no_consent, global_opt_out, same_person), or held out as the control group (holdout_share); writes reach_outbox, reach_holdout, reach_run and job_log. Re-running writes nothing twice; runs of one brand are serialised.';
CREATE OR REPLACE FUNCTION retail_mid.load_media_feedback(path text, brand text DEFAULT 'media', max_rejected bigint DEFAULT 0,
                                               refresh_tags boolean DEFAULT true)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; v_tags text[]; v_from date; v_to date;
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_rejected IS NULL OR max_rejected < 0 THEN
        RAISE EXCEPTION 'max_rejected must be zero or positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('load_media_feedback', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_media (line_no bigint GENERATED ALWAYS AS IDENTITY, id_type text, id_value text, event_time text,
        event_type text, campaign_id text, media text, event_count text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_media', 'id_type, id_value, event_time, event_type, campaign_id, media, event_count');
    UPDATE rm_media SET id_type = lower(btrim(id_type)), event_type = lower(btrim(event_type));
    UPDATE rm_media SET reason = CASE
        WHEN id_type IS NULL OR id_type NOT IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')
             THEN 'unknown id_type'
        WHEN retail_mid.invalid_field(id_value, 'text') THEN 'missing id_value'
        WHEN retail_mid.invalid_field(event_time, 'timestamp') THEN 'event_time is not a timestamp'
        WHEN event_type IS NULL OR event_type NOT IN ('exposure', 'impression', 'click') THEN 'event_type is not exposure, impression or click'
        WHEN event_count IS NOT NULL AND btrim(event_count) <> '' AND (event_count !~ '^\s*\d{1,9}\s*$' OR event_count::int = 0)
             THEN 'event_count is not a positive integer' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_media');
    SELECT count(*) INTO v_loaded FROM rm_media;
    v_load := retail_mid.finish_load('media_feedback', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    -- reloading a file replaces its rows (their days are refreshed below with the new ones)
    WITH d AS (
        DELETE FROM retail_mid.ods_behavior_event e USING retail_mid.ods_load l
         WHERE e.load_id = l.load_id AND l.source = 'media_feedback' AND l.path = load_media_feedback.path
           AND l.brand = load_media_feedback.brand AND e.brand = load_media_feedback.brand AND l.load_id <> v_load
        RETURNING e.event_time)
    SELECT min(d.event_time)::date, max(d.event_time)::date INTO v_from, v_to FROM d;
    PERFORM retail_mid.assign_customer_keys(array_agg(id_type), array_agg(btrim(id_value)), array_agg(load_media_feedback.brand)) FROM rm_media;
    INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value,
                                              channel, event_count, load_id)
    SELECT load_media_feedback.brand, id_type, btrim(id_value), btrim(event_time)::timestamp,
           CASE event_type WHEN 'click' THEN 'click' ELSE 'exposure' END,
           CASE WHEN nullif(btrim(campaign_id), '') IS NOT NULL THEN 'campaign' END, nullif(btrim(campaign_id), ''),
           coalesce(nullif(lower(btrim(media)), ''), 'media'), coalesce(nullif(btrim(event_count), '')::int, 1), v_load
      FROM rm_media ORDER BY line_no;
    DROP TABLE rm_media;
    -- the behaviour DWD/DWS of the days loaded (and of the days of the rows the reload replaced), so that the
    -- consumers reading them (the media tags) see this load
    SELECT least(v_from, min(e.event_time)::date), greatest(v_to, max(e.event_time)::date) INTO v_from, v_to
      FROM retail_mid.ods_behavior_event e WHERE e.load_id = v_load;
    IF v_from IS NOT NULL THEN
        PERFORM retail_mid.refresh_domains(v_from, v_to);
    END IF;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load, 'refreshed_from', v_from, 'refreshed_to', v_to));
    IF refresh_tags THEN
        -- the tag rules are planned next: without statistics that include this load, their joins can be
        -- planned as if the new rows did not exist
        ANALYZE retail_mid.dwd_behavior_event_di, retail_mid.customer_key;
        SELECT array_agg(t.tag_name ORDER BY t.tag_name) INTO v_tags FROM retail_mid.tag_definition t
         WHERE t.enabled AND t.rule_sql ~* '(ods_behavior_event|dwd_behavior_event_di|dws_behavior_customer_1d)';
        IF v_tags IS NOT NULL THEN
            PERFORM retail_mid.evaluate_tags(v_tags);
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_media_feedback(text, text, bigint, boolean) IS 'Loads a media feedback file (exposures and clicks per identifier and campaign) as behaviour events, refreshes the domain DWD/DWS of the loaded days (refresh_domains), then re-evaluates the enabled tags that read behaviour (ods_behavior_event, dwd_behavior_event_di or dws_behavior_customer_1d: media_exposures_30d, media_clicks_30d ...).';
CREATE OR REPLACE FUNCTION retail_mid.define_campaign_tags(brand text, prefix text DEFAULT '')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; v_from date; v_to date;
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prefix IS NULL OR prefix ~ '[\s"'']' THEN
        RAISE EXCEPTION 'tag name prefix must not be NULL or contain spaces or quotes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.ods_campaign c WHERE c.brand = define_campaign_tags.brand)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.ods_campaign_touch t WHERE t.brand = define_campaign_tags.brand) THEN
        RAISE EXCEPTION 'brand "%" has no campaigns', brand USING ERRCODE = 'undefined_object';
    END IF;
    -- the tags read the touch DWD (its build gives keys to touch identifiers without one, e.g. Complete Journey
    -- households that received a campaign but are in no other file): the days on which it is behind the brand's
    -- ODS touches are refreshed first (the rules check again when they are evaluated)
    SELECT min(s.dt), max(s.dt) INTO v_from, v_to FROM retail_mid.domain_stale_days('touch', define_campaign_tags.brand) s;
    IF v_from IS NOT NULL THEN
        PERFORM retail_mid.refresh_domains(v_from, v_to);
    END IF;
    INSERT INTO retail_mid.tag_definition AS d (tag_name, level1, level2, level3, level4, value_type, rule_sql, description, schedule, scope)
    SELECT prefix || kind || '_' || regexp_replace(c.campaign_id, '[\s"'']', '_', 'g'),
           '客户行为数据', '营销行为', CASE kind WHEN 'received' THEN '活动参与和偏好' ELSE '营销响应' END, '', 'boolean',
           format($r$SELECT t.customer_key, true, t.brand FROM retail_mid.dwd_marketing_touch_di t
                     WHERE t.brand = %L AND t.campaign_id = %L AND t.touch_type IN (%s)
                       AND (SELECT retail_mid.domain_require_fresh('touch', %L, NULL, NULL)) GROUP BY t.brand, t.customer_key$r$,
                  brand, c.campaign_id, CASE kind WHEN 'received' THEN '''sent'', ''exposed''' ELSE '''redeemed''' END, brand),
           format('%s campaign %s of brand %s.', CASE kind WHEN 'received' THEN 'Received (sent or exposed)' ELSE 'Redeemed a coupon of' END,
                  c.campaign_id, brand),
           'manual', 'brand'
      FROM (SELECT campaign_id FROM retail_mid.ods_campaign WHERE ods_campaign.brand = define_campaign_tags.brand
            UNION SELECT t.campaign_id FROM retail_mid.dwd_marketing_touch_di t WHERE t.brand = define_campaign_tags.brand) c
     CROSS JOIN (VALUES ('received'), ('redeemed')) v(kind)
    ON CONFLICT (tag_name) DO UPDATE SET rule_sql = excluded.rule_sql, description = excluded.description,
                                         value_type = excluded.value_type, scope = excluded.scope,
                                         shared_with_brands = false;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.define_campaign_tags(text, text) IS 'Creates or updates two boolean tags of scope brand per campaign of a brand (ods_campaign and the touch DWD), <prefix>received_<campaign_id> and <prefix>redeemed_<campaign_id>, reading dwd_marketing_touch_di (after refreshing, with refresh_domains, the days on which that DWD is behind the brand''s ODS touches); returns how many definitions were written (evaluate them with evaluate_tags).';
ALTER TABLE retail_mid.tag_definition DISABLE TRIGGER tag_definition_author;
UPDATE retail_mid.tag_definition SET rule_sql = $r$SELECT e.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'exposure'), 0), e.brand
       FROM retail_mid.dwd_behavior_event_di e
      WHERE e.event_type IN ('exposure', 'click')
        AND e.event_time > (SELECT retail_mid.behavior_as_of()) - interval '30 days' AND e.event_time <= (SELECT retail_mid.behavior_as_of())
        AND (SELECT retail_mid.domain_require_fresh('behavior', NULL, ((SELECT retail_mid.behavior_as_of()) - interval '30 days')::date,
                                                    (SELECT retail_mid.behavior_as_of())::date))
      GROUP BY e.brand, e.customer_key$r$
 WHERE tag_name = 'media_exposures_30d';
UPDATE retail_mid.tag_definition SET rule_sql = $r$SELECT e.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'click'), 0), e.brand
       FROM retail_mid.dwd_behavior_event_di e
      WHERE e.event_type IN ('exposure', 'click')
        AND e.event_time > (SELECT retail_mid.behavior_as_of()) - interval '30 days' AND e.event_time <= (SELECT retail_mid.behavior_as_of())
        AND (SELECT retail_mid.domain_require_fresh('behavior', NULL, ((SELECT retail_mid.behavior_as_of()) - interval '30 days')::date,
                                                    (SELECT retail_mid.behavior_as_of())::date))
      GROUP BY e.brand, e.customer_key$r$
 WHERE tag_name = 'media_clicks_30d';
ALTER TABLE retail_mid.tag_definition ENABLE TRIGGER tag_definition_author;
CREATE INDEX ON retail_mid.ods_inbound_shipment (brand, site_id, sku_id, ordered_on);
CREATE INDEX ON retail_mid.ods_inbound_shipment (brand, supplier_id, site_id);
CREATE OR REPLACE FUNCTION retail_mid.replenish_resolve(brand text, site_id text, sku_id text, min_shipments int4 DEFAULT 3)
RETURNS TABLE (source_id text, rule text, lead_time_mean float8, lead_time_sd float8, lead_time_basis text,
               review_period int4, pack_size float8, min_order_qty float8, service_level float8, service_measure text,
               lot_days int4, unit_margin float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT src.source_id,
           CASE WHEN r.brand IS NULL THEN 'default' ELSE format('source=%s sku=%s category=%s', r.source_id, r.sku_id, r.category) END,
           coalesce(r.lead_time_mean, h1.lead_time_mean, h2.lead_time_mean),
           CASE WHEN r.lead_time_mean IS NOT NULL THEN coalesce(r.lead_time_sd, 0)
                ELSE coalesce(h1.lead_time_sd, h2.lead_time_sd) END,
           CASE WHEN r.lead_time_mean IS NOT NULL THEN 'parameter'
                WHEN h1.lead_time_mean IS NOT NULL THEN 'history (source, site)'
                WHEN h2.lead_time_mean IS NOT NULL THEN 'history (source)' ELSE 'none' END,
           coalesce(r.review_period, 7), coalesce(r.pack_size, 1), coalesce(r.min_order_qty, 0), coalesce(r.service_level, 0.95),
           coalesce(r.service_measure, 'cycle'), coalesce(r.lot_days, 0), r.unit_margin
      FROM (SELECT coalesce(
                (SELECT i.supplier_id FROM retail_mid.ods_inbound_shipment i
                  WHERE i.brand = replenish_resolve.brand AND i.site_id = replenish_resolve.site_id
                    AND i.sku_id = replenish_resolve.sku_id AND i.supplier_id IS NOT NULL
                  ORDER BY i.ordered_on DESC, i.shipment_id DESC LIMIT 1),
                (SELECT i.supplier_id FROM retail_mid.ods_inbound_shipment i
                  WHERE i.brand = replenish_resolve.brand AND i.site_id = replenish_resolve.site_id AND i.supplier_id IS NOT NULL
                  ORDER BY i.ordered_on DESC, i.shipment_id DESC LIMIT 1),
                (SELECT st.parent_site_id FROM retail_mid.ods_site st
                  WHERE st.brand = replenish_resolve.brand AND st.site_id = replenish_resolve.site_id),
                '*') AS source_id) src
      LEFT JOIN LATERAL (
            SELECT p.*
              FROM retail_mid.replenish_parameter p
              LEFT JOIN retail_mid.ods_product pr ON pr.brand = replenish_resolve.brand AND pr.sku_id = replenish_resolve.sku_id
             WHERE p.brand = replenish_resolve.brand AND p.source_id IN (src.source_id, '*')
               AND p.sku_id IN (replenish_resolve.sku_id, '*')
               AND (p.category = '*' OR p.category IN (pr.category_l1, pr.category_l2, pr.category_l3, pr.category_l4))
             ORDER BY CASE WHEN p.sku_id <> '*' THEN 5 WHEN p.category = '*' THEN 0
                           WHEN p.category = pr.category_l4 THEN 4 WHEN p.category = pr.category_l3 THEN 3
                           WHEN p.category = pr.category_l2 THEN 2 ELSE 1 END DESC,
                      (p.source_id <> '*') DESC
             LIMIT 1) r ON true
      -- the history of replenish_lead_time_history, computed for this source only and only when needed (no
      -- parameter lead time; all sites only when the site has too few shipments): the suggested orders call this
      -- once per store x SKU
      LEFT JOIN LATERAL (
            SELECT avg(s.days)::float8 AS lead_time_mean, coalesce(stddev_samp(s.days), 0)::float8 AS lead_time_sd
              FROM (SELECT max(i.received_on) - min(i.ordered_on) AS days
                      FROM retail_mid.ods_inbound_shipment i
                     WHERE i.brand = replenish_resolve.brand AND i.supplier_id = src.source_id
                       AND i.site_id = replenish_resolve.site_id AND r.lead_time_mean IS NULL
                     GROUP BY i.shipment_id
                    HAVING bool_and(i.received_on IS NOT NULL)) s
            HAVING count(*) >= min_shipments AND count(*) > 0) h1 ON true
      LEFT JOIN LATERAL (
            SELECT avg(s.days)::float8 AS lead_time_mean, coalesce(stddev_samp(s.days), 0)::float8 AS lead_time_sd
              FROM (SELECT max(i.received_on) - min(i.ordered_on) AS days
                      FROM retail_mid.ods_inbound_shipment i
                     WHERE i.brand = replenish_resolve.brand AND i.supplier_id = src.source_id
                       AND r.lead_time_mean IS NULL AND h1.lead_time_mean IS NULL
                     GROUP BY i.site_id, i.shipment_id
                    HAVING bool_and(i.received_on IS NOT NULL)) s
            HAVING count(*) >= min_shipments AND count(*) > 0) h2 ON true;
END;
COMMENT ON FUNCTION retail_mid.replenish_resolve(text, text, text, int4) IS 'Replenishment parameters in force for one site x SKU: source, the winning replenish_parameter row (or default: review 7 days, pack 1, no minimum, cycle service level 0.95, lot 0 days, margin unknown), the lead time and where it came from (parameter, history of source and site, history of source, none).';
CREATE OR REPLACE FUNCTION retail_mid.suggested_orders(brand text, method text DEFAULT 'normal', min_shipments int4 DEFAULT 3)
RETURNS TABLE (site_id text, sku_id text, as_of date, source_id text, rule text, lead_time_basis text,
               lead_time_mean float8, lead_time_sd float8, review_period int4, service_level float8,
               service_measure text, lot_days int4, mean_daily_demand float8, sigma_daily float8, lead_time_demand float8,
               safety_stock_normal float8, reorder_point_normal float8,
               safety_stock_quantile float8, reorder_point_quantile float8,
               reorder_point float8, order_up_to float8,
               snapshot_date date, on_hand float8, on_order float8, reserved float8, inventory_position float8,
               cover_days float8, pack_size float8, min_order_qty float8, order_qty float8, unit_margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off
-- (jit off: one row per store x SKU through lateral functions costs much and runs fast; compiling it took longer
-- than running it, 10 of the 15 seconds of dash_replenishment on the demo brand)
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
      LEFT JOIN LATERAL (SELECT i.dt AS snapshot_date, i.on_hand::float8 AS on_hand, i.on_order::float8 AS on_order, i.reserved::float8 AS reserved
                           FROM retail_mid.dws_inventory_site_sku_1d i
                          WHERE i.brand = f.brand AND i.site_id = f.site_id AND i.sku_id = f.sku_id AND i.dt <= f.made_on
                          ORDER BY i.dt DESC LIMIT 1) inv ON true
     WHERE f.brand = suggested_orders.brand
       AND (SELECT retail_mid.domain_require_fresh('inventory', suggested_orders.brand, NULL, NULL))
     ORDER BY f.site_id, f.sku_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.suggested_orders(text, text, int4) IS 'Suggested order per store x SKU of a brand: stored forecast, parameters in force (replenish_resolve), safety stock and reorder point by both methods, the one of method (normal | quantile) driving reorder point, order-up-to level and the order, stock (on hand, open inbound orders, reserved) from the latest day of the inventory DWS (dws_inventory_site_sku_1d) on or before the forecast day (none: 0; 55000 when that DWS is behind the ODS snapshots), cover in days, order quantity in whole packs (NULL when no lead time is known).';
CREATE OR REPLACE VIEW retail_mid.dash_stock_position AS
SELECT i.brand, i.site_id, d.site_type, d.region, i.sku_id, i.dt AS snapshot_date, i.on_hand, i.on_order, i.reserved,
       i.on_hand - i.reserved AS available
  FROM retail_mid.dws_inventory_site_sku_1d i
  JOIN (SELECT l.brand, l.site_id, max(l.dt) AS dt
          FROM retail_mid.dws_inventory_site_sku_1d l GROUP BY l.brand, l.site_id) m
    ON m.brand = i.brand AND m.site_id = i.site_id AND m.dt = i.dt
  LEFT JOIN retail_mid.dim_site d ON d.brand = i.brand AND d.site_id = i.site_id AND d.is_current;
COMMENT ON VIEW retail_mid.dash_stock_position IS 'Dashboard tile stock: stock per site and SKU on each site''s latest snapshot day of the inventory DWS (dws_inventory_site_sku_1d), stores and warehouses alike, with the site''s type and region (dim_site).';
COMMENT ON COLUMN retail_mid.dash_stock_position.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_stock_position.site_id IS 'Site (store or warehouse).';
COMMENT ON COLUMN retail_mid.dash_stock_position.site_type IS 'Site type (dim_site; NULL for a site not in ods_site).';
COMMENT ON COLUMN retail_mid.dash_stock_position.region IS 'Region of the site (dim_site, current).';
COMMENT ON COLUMN retail_mid.dash_stock_position.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.dash_stock_position.snapshot_date IS 'The site''s latest snapshot day.';
COMMENT ON COLUMN retail_mid.dash_stock_position.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.dash_stock_position.on_order IS 'Units on open inbound orders (dws_inventory_site_sku_1d.on_order).';
ALTER VIEW retail_mid.dash_stock_position SET (security_invoker = true);
GRANT SELECT ON retail_mid.domain_refresh_state TO retail_mid_bi;

-- issue 13: partitioned history
--
-- dwd_trade_order_line_di and the trade _1d tables are partitioned by dt, one partition per calendar month,
-- named <table>_pYYYYMM. refresh creates the months it is about to write (ensure_partitions) and retain drops
-- whole months. Partitions are created at run time, so they are not extension members: pg_dump writes them as
-- ordinary tables attached to their parent, with their rows. They get no grants: a non-owner reads through
-- the parent, whose grants and row-level security policies apply (a direct SELECT on a partition is denied; their
-- own row-level security, enabled without policies, would show no row even if someone granted one).
-- This section comes last: it converts the tables in their final 1.1.0 form (DIM labels of issue 15 included) and
-- repoints every view, function and configuration row made above.

-- Creates the monthly partitions of a partitioned history table covering [from_date, to_date] that do not exist
-- yet and returns how many it created. A new partition is created as a plain table and then attached, which
-- locks the parent only in SHARE UPDATE EXCLUSIVE mode, so readers of the parent are not blocked. Concurrent
-- callers serialise on an advisory lock; a partition that exists already is skipped. A table that has the name of a
-- partition to create but is not that partition is an error (42P07), raised before anything is changed.
CREATE FUNCTION retail_mid.ensure_partitions(tbl regclass, from_date date, to_date date)
RETURNS int LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date; v_name text; v_created int := 0; v_index text; v_existing regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
                    WHERE p.partrelid = tbl AND c.relnamespace = 'retail_mid'::regnamespace) THEN
        RAISE EXCEPTION '% is not a partitioned history table of retail_mid', tbl
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'partition range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_date > to_date THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.ensure_partitions'));
    m := date_trunc('month', from_date)::date;
    WHILE m <= to_date LOOP
        v_name := (SELECT c.relname FROM pg_class c WHERE c.oid = tbl) || '_p' || to_char(m, 'YYYYMM');
        v_existing := to_regclass(format('retail_mid.%I', v_name));
        IF v_existing IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = v_existing AND i.inhparent = tbl) THEN
            -- a table of that name that is not this month's partition (made by hand, or detached): never adopt it
            RAISE EXCEPTION 'relation % already exists and is not a partition of %', v_existing, tbl
                USING ERRCODE = 'duplicate_table',
                      DETAIL = format('ensure_partitions would create it as the partition of %s for %s.', tbl, to_char(m, 'YYYY-MM')),
                      HINT = 'Rename or drop it (or attach it yourself with the month''s bounds), then refresh again.';
        END IF;
        IF v_existing IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', 'retail_mid', v_name, tbl);
                -- keys and indexes live on the partitions, not on the parent: an extension's parent is not dumped,
                -- so parent-level indexes would be created twice on restore (by ATTACH PARTITION and by the dump)
                FOREACH v_index IN ARRAY CASE (SELECT c.relname FROM pg_class c WHERE c.oid = tbl)  -- (the tables come later)
                        WHEN 'dwd_trade_order_line_di' THEN ARRAY['INDEX (dt)']
                        WHEN 'dws_trade_customer_1d' THEN ARRAY['PRIMARY KEY (dt, brand, customer_key)', 'INDEX (customer_key)']
                        WHEN 'dws_trade_sku_store_1d' THEN ARRAY['PRIMARY KEY (dt, brand, store_id, sku_id)', 'INDEX (brand, store_id, sku_id)']
                        WHEN 'dws_trade_store_1d' THEN ARRAY['PRIMARY KEY (dt, brand, store_id)']
                        ELSE ARRAY[]::text[] END LOOP
                    IF v_index LIKE 'PRIMARY KEY%' THEN
                        EXECUTE format('ALTER TABLE retail_mid.%I ADD %s', v_name, v_index);
                    ELSE
                        EXECUTE format('CREATE INDEX ON retail_mid.%I %s', v_name, substr(v_index, 7));
                    END IF;
                END LOOP;
                EXECUTE format('ALTER TABLE %s ATTACH PARTITION retail_mid.%I FOR VALUES FROM (%L) TO (%L)',
                               tbl, v_name, m, (m + interval '1 month')::date);
                -- no grants (a new table's default privileges are the owner's only; an explicit REVOKE would
                -- leave an ACL that pg_dump does not reproduce), and row-level security without policies: only
                -- the owner reads a partition directly
                EXECUTE format('ALTER TABLE retail_mid.%I ENABLE ROW LEVEL SECURITY', v_name);
                EXECUTE format('COMMENT ON TABLE retail_mid.%I IS %L', v_name,
                               format('Partition of %s for %s (created by retail_mid.ensure_partitions; read the parent).', tbl, to_char(m, 'YYYY-MM')));
                v_created := v_created + 1;
            END;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN v_created;
END;
$$;
COMMENT ON FUNCTION retail_mid.ensure_partitions(regclass, date, date) IS 'Creates the missing monthly partitions (<table>_pYYYYMM) of a partitioned retail_mid history table for the days [from_date, to_date]; returns how many it created. Existing partitions are fine; a table of the same name that is not the partition raises 42P07; concurrent calls serialise.';
-- a security definer: refresh's callers only (retail_mid_admin is granted it in governance/lockdown.sql)
REVOKE EXECUTE ON FUNCTION retail_mid.ensure_partitions(regclass, date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.ensure_partitions(regclass, date, date) TO retail_mid_admin;

-- Converts the history tables to monthly range partitions: the old heap is renamed, a partitioned table of the
-- same columns (LIKE ... INCLUDING ALL EXCLUDING INDEXES: column order, defaults, constraints, column comments; the
-- keys and indexes are made per partition by ensure_partitions, as in a fresh install) takes its
-- name, with its table comment, row-level security, policies, grants and pg_dump registration; the rows move into
-- partitions created for them (which are then released from the extension, like the ones refresh creates later)
-- and the old heap is dropped.
DO $conv$
DECLARE
    t text; v_old regclass; v_new regclass; r record; v_min date; v_max date; v_rows bigint;
BEGIN
    FOREACH t IN ARRAY ARRAY['dwd_trade_order_line_di', 'dws_trade_customer_1d', 'dws_trade_sku_store_1d', 'dws_trade_store_1d'] LOOP
        EXECUTE format('ALTER TABLE retail_mid.%I RENAME TO %I', t, t || '_unpartitioned');
        v_old := format('retail_mid.%I', t || '_unpartitioned')::regclass;
        FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = v_old LOOP
            EXECUTE format('ALTER INDEX retail_mid.%I RENAME TO %I', r.relname, left('old_' || r.relname, 63));
        END LOOP;
        EXECUTE format('CREATE TABLE retail_mid.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES) PARTITION BY RANGE (dt)', t, v_old);
        v_new := format('retail_mid.%I', t)::regclass;
        EXECUTE format('COMMENT ON TABLE %s IS %L', v_new, obj_description(v_old, 'pg_class'));
        IF (SELECT relrowsecurity FROM pg_class WHERE oid = v_old) THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_new);
        END IF;
        IF (SELECT relforcerowsecurity FROM pg_class WHERE oid = v_old) THEN
            EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', v_new);
        END IF;
        FOR r IN SELECT p.polname, p.polpermissive, p.polcmd, p.polroles,
                        pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS wcheck
                   FROM pg_policy p WHERE p.polrelid = v_old ORDER BY p.oid LOOP
            EXECUTE format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', r.polname, v_new,
                           CASE WHEN r.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                           CASE r.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                           CASE WHEN r.polroles = '{0}' THEN 'PUBLIC'
                                ELSE (SELECT string_agg(quote_ident(rolname), ', ') FROM pg_roles WHERE oid = ANY (r.polroles)) END,
                           CASE WHEN r.qual IS NOT NULL THEN ' USING (' || r.qual || ')' ELSE '' END,
                           CASE WHEN r.wcheck IS NOT NULL THEN ' WITH CHECK (' || r.wcheck || ')' ELSE '' END);
        END LOOP;
        FOR r IN SELECT a.grantee, a.privilege_type, a.is_grantable
                   FROM pg_class c, aclexplode(c.relacl) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, n)
                  WHERE c.oid = v_old AND a.grantee <> c.relowner ORDER BY a.n LOOP
            EXECUTE format('GRANT %s ON %s TO %s%s', r.privilege_type, v_new,
                           CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.grantee::regrole::text) END,
                           CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
        PERFORM pg_catalog.pg_extension_config_dump(v_new, '');
        EXECUTE format('SELECT min(dt), max(dt) FROM %s', v_old) INTO v_min, v_max;
        IF v_min IS NOT NULL THEN
            PERFORM retail_mid.ensure_partitions(v_new, v_min, v_max);
        END IF;
        EXECUTE format('INSERT INTO %s SELECT * FROM %s', v_new, v_old);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        -- SQL-standard function bodies bound to the old heap are recreated on the new table (same text otherwise)
        FOR r IN SELECT DISTINCT d.objid::regprocedure AS fn FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = v_old LOOP
            EXECUTE replace(pg_get_functiondef(r.fn), t || '_unpartitioned', t);
        END LOOP;
        -- views reading the old heap (dashboards, BI) are pointed at the new table, with their options
        FOR r IN SELECT DISTINCT rw.ev_class::regclass AS v, c.reloptions
                   FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid JOIN pg_class c ON c.oid = rw.ev_class
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = v_old
                    AND rw.ev_class <> v_old AND c.relkind = 'v' LOOP
            EXECUTE format('CREATE OR REPLACE VIEW %s%s AS %s', r.v,
                           CASE WHEN r.reloptions IS NOT NULL THEN ' WITH (' || array_to_string(r.reloptions, ', ') || ')' ELSE '' END,
                           replace(pg_get_viewdef(r.v), t || '_unpartitioned', t));
        END LOOP;
        -- configuration naming the table by regclass (quality rules, masking rules ...) follows it to the new oid,
        -- without firing the tables' triggers (a rule's version history is not a change of the rule)
        PERFORM set_config('session_replication_role', 'replica', true);
        FOR r IN SELECT a.attrelid::regclass AS rel, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind = 'r' AND a.atttypid = 'regclass'::regtype
                    AND a.attnum > 0 AND NOT a.attisdropped LOOP
            EXECUTE format('UPDATE %s SET %I = %L::regclass WHERE %I = %L::oid', r.rel, r.attname, v_new, r.attname, v_old::oid);
        END LOOP;
        PERFORM set_config('session_replication_role', 'origin', true);
        -- leaving the extension first also takes the old heap out of pg_dump's list (extconfig)
        EXECUTE format('ALTER EXTENSION retail_mid DROP TABLE %s', v_old);
        EXECUTE format('DROP TABLE %s', v_old);
        -- partitions hold user rows and are dumped as ordinary tables: not extension members
        FOR r IN SELECT i.inhrelid::regclass AS part FROM pg_inherits i WHERE i.inhparent = v_new LOOP
            EXECUTE format('ALTER EXTENSION retail_mid DROP TABLE %s', r.part);
        END LOOP;
        RAISE NOTICE 'issue 13: % partitioned by month, % rows moved', v_new, v_rows;
    END LOOP;
END;
$conv$;

-- issue 13: retained history (the totals of the days retain drops, so that _td stays right)
-- retail_mid.retain(before) drops whole months of the _1d tables; the totals of the dropped days move into these
-- baselines (in the same transaction), and the _td rebuild adds them, so a _td row stays the total over all history
-- although its oldest days are gone. history_retention holds the first day still kept: refresh refuses days before it.
CREATE TABLE retail_mid.history_retention (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    kept_from   date NOT NULL,
    retained_at timestamptz NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.history_retention', '');
COMMENT ON TABLE retail_mid.history_retention IS 'At most one row: the first day of the partitioned history still kept after retail_mid.retain (refresh refuses days before it).';
COMMENT ON COLUMN retail_mid.history_retention.singleton IS 'Always true (one row).';
COMMENT ON COLUMN retail_mid.history_retention.kept_from IS 'First day still kept: the _1d and DWD days before it were dropped and their totals are in the *_retained tables.';
COMMENT ON COLUMN retail_mid.history_retention.retained_at IS 'When retain last dropped history.';

CREATE TABLE retail_mid.dws_trade_customer_retained (
    brand            text NOT NULL,
    customer_key     int4 NOT NULL,
    first_order_date date NOT NULL,
    last_order_date  date NOT NULL,
    orders           bigint NOT NULL,
    return_orders    bigint NOT NULL,
    active_days      int  NOT NULL,
    quantity         numeric(18,3) NOT NULL,
    sales_amount     numeric(18,4) NOT NULL,
    return_amount    numeric(18,4) NOT NULL,
    net_amount       numeric(18,4) NOT NULL,
    first_sale_date  date,
    last_sale_date   date,
    PRIMARY KEY (brand, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_customer_retained', '');
COMMENT ON TABLE retail_mid.dws_trade_customer_retained IS 'Totals per customer of the days dropped by retail_mid.retain (columns as dws_trade_customer_td); added to the _1d rows when dws_trade_customer_td is rebuilt.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.first_order_date IS 'First dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.last_order_date IS 'Last dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.orders IS 'Orders with a sale line on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.return_orders IS 'Orders with a return line on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.active_days IS 'Dropped days with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.quantity IS 'Net units on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.sales_amount IS 'Sales amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.return_amount IS 'Returned amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.net_amount IS 'Net amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.first_sale_date IS 'First dropped day with a sale (NULL: returns only).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_retained.last_sale_date IS 'Last dropped day with a sale (NULL: returns only).';

CREATE TABLE retail_mid.dws_trade_sku_store_retained (
    brand           text NOT NULL,
    store_id        text NOT NULL,
    sku_id          text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    selling_days    int  NOT NULL,
    orders          bigint NOT NULL,
    quantity        numeric(18,3) NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    buyer_bitmap    retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (brand, store_id, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_sku_store_retained', '');
COMMENT ON TABLE retail_mid.dws_trade_sku_store_retained IS 'Totals per SKU x store of the days dropped by retail_mid.retain, with the buyers'' keys (so distinct buyers stay exact); added when dws_trade_sku_store_td is rebuilt.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.first_sale_date IS 'First dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.last_sale_date IS 'Last dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.selling_days IS 'Dropped days with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.orders IS 'Orders with a sale line of the SKU on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.quantity IS 'Net units on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.net_amount IS 'Net amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_retained.buyer_bitmap IS 'Keys of the identified buyers on the dropped days.';

CREATE TABLE retail_mid.dws_trade_store_retained (
    brand           text NOT NULL,
    store_id        text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    orders          bigint NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    customer_bitmap retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (brand, store_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_trade_store_retained', '');
COMMENT ON TABLE retail_mid.dws_trade_store_retained IS 'Totals per store of the days dropped by retail_mid.retain, with the customers'' keys; added when dws_trade_store_td is rebuilt.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.first_sale_date IS 'First dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.last_sale_date IS 'Last dropped day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.orders IS 'Orders with a sale line on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.net_amount IS 'Net amount on the dropped days.';
COMMENT ON COLUMN retail_mid.dws_trade_store_retained.customer_bitmap IS 'Keys of the identified customers on the dropped days.';

SELECT retail_mid.secure_brand_table(t) FROM unnest(ARRAY['retail_mid.dws_trade_customer_retained',
       'retail_mid.dws_trade_sku_store_retained', 'retail_mid.dws_trade_store_retained']::regclass[]) t;
SELECT retail_mid.security_grant(t) FROM unnest(ARRAY['retail_mid.history_retention', 'retail_mid.dws_trade_customer_retained',
       'retail_mid.dws_trade_sku_store_retained', 'retail_mid.dws_trade_store_retained']::regclass[]) t;

-- issue 13: refresh writes into monthly partitions, adds the retained totals to _td and refuses days before the kept history
-- Rebuilds the DWD days [from_date, to_date] from the ODS and returns the number of lines written.
-- Rules apply in the order listed above: a line is counted under the first dropping rule that matches.
CREATE OR REPLACE FUNCTION retail_mid.build_dwd_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    -- Customers first seen in this range get their keys before the lines refer to them.
    PERFORM retail_mid.assign_customer_keys(array_agg(o.id_type), array_agg(o.customer_id), array_agg(o.brand))
       FROM (SELECT DISTINCT o.id_type, btrim(o.customer_id) AS customer_id, o.brand
               FROM retail_mid.ods_order o
              WHERE o.order_time >= from_date AND o.order_time < to_date + 1
                AND o.customer_id IS NOT NULL AND btrim(o.customer_id) <> '' AND o.id_type IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                                 WHERE k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                   AND k.id_value = btrim(o.customer_id))) o;

    -- issue 13: the months of the range get their partitions; the delete and insert touch only those
    PERFORM retail_mid.ensure_partitions('retail_mid.dwd_trade_order_line_di', from_date, to_date);
    DELETE FROM retail_mid.dwd_trade_order_line_di WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dwd_trade_cleaning_1d WHERE dt BETWEEN from_date AND to_date;

    CREATE TEMP TABLE pg_temp.rm_dwd_lines ON COMMIT DROP AS
    SELECT o.order_time::date AS dt, o.brand, o.order_id, l.line_no, o.order_time, k.customer_key,
           o.store_id, o.channel, l.sku_id, l.quantity, l.unit_price, l.discount,
           coalesce(l.original_order_id, o.original_order_id) AS original_order_id,
           CASE WHEN row_number() OVER (PARTITION BY o.brand, o.order_id, l.sku_id, l.quantity, l.unit_price, l.discount
                                        ORDER BY l.line_no) > 1 THEN 'duplicate_line'
                WHEN l.unit_price = 0 THEN 'zero_price'
                WHEN l.unit_price < 0 THEN 'negative_price'
                WHEN l.quantity = 0 THEN 'zero_quantity'
           END AS dropped_by
      FROM retail_mid.ods_order o
      JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      LEFT JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.issuer = retail_mid.customer_key_issuer(o.id_type, o.brand)
                                         AND k.id_value = btrim(o.customer_id)
     WHERE o.order_time >= from_date AND o.order_time < to_date + 1;
    ANALYZE pg_temp.rm_dwd_lines;

    INSERT INTO retail_mid.dwd_trade_order_line_di
    SELECT x.dt, x.brand, x.order_id, x.line_no, x.order_time, x.customer_key, x.store_id, x.channel, x.sku_id, x.quantity, x.unit_price,
           x.discount, x.quantity * x.unit_price - x.discount,
           CASE WHEN x.quantity < 0 THEN 'return' ELSE 'sale' END, x.original_order_id,
           -- issue 15: categories and region as of the order date
           coalesce(p.category_l1, 'unknown'), coalesce(p.category_l2, 'unknown'),
           CASE WHEN x.store_id IS NOT NULL THEN coalesce(s.region, 'unknown') END
      FROM pg_temp.rm_dwd_lines x
      LEFT JOIN retail_mid.dim_product p ON p.brand = x.brand AND p.sku_id = x.sku_id AND p.valid_from <= x.dt AND x.dt < p.valid_to
      LEFT JOIN retail_mid.dim_site s ON s.brand = x.brand AND s.site_id = x.store_id AND s.valid_from <= x.dt AND x.dt < s.valid_to
     WHERE dropped_by IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO retail_mid.dwd_trade_cleaning_1d (dt, brand, rule, lines, amount)
    SELECT dt, brand, r.rule, count(*), coalesce(sum(quantity * unit_price), 0)
      FROM pg_temp.rm_dwd_lines,
           LATERAL (VALUES ('source_line', true),
                           (dropped_by, dropped_by IS NOT NULL),
                           ('kept_line', dropped_by IS NULL),
                           ('return_line', dropped_by IS NULL AND quantity < 0),
                           ('anonymous_line', dropped_by IS NULL AND customer_key IS NULL)) AS r(rule, applies)
     WHERE r.applies
     GROUP BY dt, brand, r.rule;

    DROP TABLE pg_temp.rm_dwd_lines;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dwd_trade(date, date) IS 'Rebuilds dwd_trade_order_line_di and dwd_trade_cleaning_1d for the given days from the ODS; called by retail_mid.refresh.';

-- Rebuilds the _1d tables for [from_date, to_date] from the DWD and the _td rows of every key those days touch
-- (before or after the change, so that removed late data is taken out of the totals too).
CREATE OR REPLACE FUNCTION retail_mid.build_dws_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    CREATE TEMP TABLE rm_touched_customer ON COMMIT DROP AS
        SELECT DISTINCT brand, customer_key FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_sku_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;
    PERFORM retail_mid.ensure_partitions(t, from_date, to_date)  -- issue 13
       FROM unnest(ARRAY['retail_mid.dws_trade_customer_1d', 'retail_mid.dws_trade_sku_store_1d', 'retail_mid.dws_trade_store_1d']::regclass[]) t;
    DELETE FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;

    -- One pass over the DWD lines to orders: an order has one customer, store and day, so customer and store
    -- counts become plain sums over it and need no count(DISTINCT).
    CREATE TEMP TABLE rm_order ON COMMIT DROP AS
    SELECT dt, brand, order_id, customer_key, coalesce(store_id, '(none)') AS store_id,
           count(*) AS lines, sum(quantity) AS quantity,
           bool_or(line_type = 'sale') AS has_sale, bool_or(line_type = 'return') AS has_return,
           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount,
           min(order_time) AS order_time, max(store_region) AS store_region  -- issue 15
      FROM retail_mid.dwd_trade_order_line_di
     WHERE dt BETWEEN from_date AND to_date
     GROUP BY dt, brand, order_id, customer_key, coalesce(store_id, '(none)');
    ANALYZE rm_order;

    INSERT INTO retail_mid.dws_trade_customer_1d
    SELECT dt, brand, customer_key, count(*) FILTER (WHERE has_sale), count(*) FILTER (WHERE has_return),
           sum(lines), sum(quantity), sum(sales_amount), sum(return_amount), sum(sales_amount) - sum(return_amount),
           min(order_time), max(order_time)
      FROM rm_order WHERE customer_key IS NOT NULL
     GROUP BY dt, brand, customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    INSERT INTO retail_mid.dws_trade_store_1d
    SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, sales_amount, return_amount,
           sales_amount - return_amount, retail_mid.rb_cardinality(b), b, store_region
      FROM (SELECT dt, brand, store_id, max(store_region) AS store_region, count(*) FILTER (WHERE has_sale) AS orders,
                   count(*) FILTER (WHERE has_sale AND customer_key IS NULL) AS anonymous_orders,
                   count(*) FILTER (WHERE has_return) AS return_orders, sum(lines) AS lines, sum(quantity) AS quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE has_sale), '{}') AS b
              FROM rm_order GROUP BY dt, brand, store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- SKU lines are first summed per order, so that an order counts once per SKU.
    INSERT INTO retail_mid.dws_trade_sku_store_1d
    SELECT dt, brand, store_id, sku_id, orders, sales_quantity - return_quantity, sales_quantity, return_quantity,
           sales_amount, return_amount, sales_amount - return_amount, retail_mid.rb_cardinality(b), b,
           category_l1, category_l2, store_region  -- issue 15
      FROM (SELECT dt, brand, store_id, sku_id, max(category_l1) AS category_l1, max(category_l2) AS category_l2,
                   max(store_region) AS store_region, count(*) FILTER (WHERE sales_quantity > 0) AS orders,
                   sum(sales_quantity) AS sales_quantity, sum(return_quantity) AS return_quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE sales_quantity > 0), '{}') AS b
              FROM (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, sku_id, order_id, customer_key,
                           max(category_l1) AS category_l1, max(category_l2) AS category_l2, max(store_region) AS store_region,
                           coalesce(sum(quantity) FILTER (WHERE line_type = 'sale'), 0) AS sales_quantity,
                           coalesce(-sum(quantity) FILTER (WHERE line_type = 'return'), 0) AS return_quantity,
                           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
                           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount
                      FROM retail_mid.dwd_trade_order_line_di
                     WHERE dt BETWEEN from_date AND to_date
                     GROUP BY dt, brand, coalesce(store_id, '(none)'), sku_id, order_id, customer_key) per_order
             GROUP BY dt, brand, store_id, sku_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- To-date rows of every touched key, recomputed from the _1d history.
    INSERT INTO rm_touched_customer SELECT DISTINCT brand, customer_key FROM rm_order WHERE customer_key IS NOT NULL;
    INSERT INTO rm_touched_store SELECT DISTINCT brand, store_id FROM rm_order;
    INSERT INTO rm_touched_sku_store
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;

    DELETE FROM retail_mid.dws_trade_customer_td t USING (SELECT DISTINCT * FROM rm_touched_customer) k
     WHERE t.brand = k.brand AND t.customer_key = k.customer_key;
    -- issue 13: plus the totals of the days retain dropped (dws_trade_customer_retained)
    INSERT INTO retail_mid.dws_trade_customer_td
    SELECT u.brand, u.customer_key, min(u.first_order_date), max(u.last_order_date), sum(u.orders), sum(u.return_orders),
           sum(u.active_days), sum(u.quantity), sum(u.sales_amount), sum(u.return_amount), sum(u.net_amount),
           min(u.first_sale_date), max(u.last_sale_date)
      FROM (SELECT d.brand, d.customer_key, min(dt) AS first_order_date, max(dt) AS last_order_date, sum(orders) AS orders,
                   sum(return_orders) AS return_orders, count(*) AS active_days, sum(quantity) AS quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount, sum(net_amount) AS net_amount,
                   min(dt) FILTER (WHERE orders > 0) AS first_sale_date, max(dt) FILTER (WHERE orders > 0) AS last_sale_date
              FROM retail_mid.dws_trade_customer_1d d
              JOIN (SELECT DISTINCT * FROM rm_touched_customer) k ON k.brand = d.brand AND k.customer_key = d.customer_key
             GROUP BY d.brand, d.customer_key
            UNION ALL
            SELECT r.brand, r.customer_key, r.first_order_date, r.last_order_date, r.orders, r.return_orders, r.active_days,
                   r.quantity, r.sales_amount, r.return_amount, r.net_amount, r.first_sale_date, r.last_sale_date
              FROM retail_mid.dws_trade_customer_retained r
              JOIN (SELECT DISTINCT * FROM rm_touched_customer) k ON k.brand = r.brand AND k.customer_key = r.customer_key) u
     GROUP BY u.brand, u.customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_sku_store_td t USING (SELECT DISTINCT * FROM rm_touched_sku_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id AND t.sku_id = k.sku_id;
    INSERT INTO retail_mid.dws_trade_sku_store_td  -- issue 13: plus dws_trade_sku_store_retained
    SELECT u.brand, u.store_id, u.sku_id, min(u.first_sale_date), max(u.last_sale_date), sum(u.selling_days), sum(u.orders),
           sum(u.quantity), sum(u.net_amount), retail_mid.rb_cardinality(retail_mid.rb_or_agg(u.b))
      FROM (SELECT d.brand, d.store_id, d.sku_id, min(dt) AS first_sale_date, max(dt) AS last_sale_date, count(*) AS selling_days,
                   sum(orders) AS orders, sum(quantity) AS quantity, sum(net_amount) AS net_amount, retail_mid.rb_or_agg(buyer_bitmap) AS b
              FROM retail_mid.dws_trade_sku_store_1d d
              JOIN (SELECT DISTINCT * FROM rm_touched_sku_store) k
                ON k.brand = d.brand AND k.store_id = d.store_id AND k.sku_id = d.sku_id
             GROUP BY d.brand, d.store_id, d.sku_id
            UNION ALL
            SELECT r.brand, r.store_id, r.sku_id, r.first_sale_date, r.last_sale_date, r.selling_days, r.orders, r.quantity,
                   r.net_amount, r.buyer_bitmap
              FROM retail_mid.dws_trade_sku_store_retained r
              JOIN (SELECT DISTINCT * FROM rm_touched_sku_store) k
                ON k.brand = r.brand AND k.store_id = r.store_id AND k.sku_id = r.sku_id) u
     GROUP BY u.brand, u.store_id, u.sku_id;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_store_td t USING (SELECT DISTINCT * FROM rm_touched_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id;
    INSERT INTO retail_mid.dws_trade_store_td
    SELECT brand, store_id, first_sale_date, last_sale_date, orders, net_amount, retail_mid.rb_cardinality(b), b
      FROM (SELECT u.brand, u.store_id, min(u.first_sale_date) AS first_sale_date, max(u.last_sale_date) AS last_sale_date,
                   sum(u.orders) AS orders, sum(u.net_amount) AS net_amount, retail_mid.rb_or_agg(u.b) AS b
              FROM (SELECT d.brand, d.store_id, min(dt) AS first_sale_date, max(dt) AS last_sale_date, sum(orders) AS orders,
                           sum(net_amount) AS net_amount, retail_mid.rb_or_agg(customer_bitmap) AS b
                      FROM retail_mid.dws_trade_store_1d d
                      JOIN (SELECT DISTINCT * FROM rm_touched_store) k ON k.brand = d.brand AND k.store_id = d.store_id
                     GROUP BY d.brand, d.store_id
                    UNION ALL  -- issue 13: plus dws_trade_store_retained
                    SELECT r.brand, r.store_id, r.first_sale_date, r.last_sale_date, r.orders, r.net_amount, r.customer_bitmap
                      FROM retail_mid.dws_trade_store_retained r
                      JOIN (SELECT DISTINCT * FROM rm_touched_store) k ON k.brand = r.brand AND k.store_id = r.store_id) u
             GROUP BY u.brand, u.store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DROP TABLE rm_order, rm_touched_customer, rm_touched_sku_store, rm_touched_store;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dws_trade(date, date) IS 'Rebuilds the trade _1d tables for the given days and the _td rows they touch; called by retail_mid.refresh.';

-- The incremental refresh: DWD then DWS for the days [from_date, to_date], in the caller's transaction (so a
-- failure leaves the previous state, and readers keep seeing the previous state until it commits). Running the
-- same days twice gives the same tables; late data for a past day is picked up by refreshing that day.
CREATE OR REPLACE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dim bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_domains bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
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
    -- issue 13: days dropped by retain are in the *_retained baselines; rebuilding them would count them twice
    IF from_date < (SELECT h.kept_from FROM retail_mid.history_retention h) THEN
        RAISE EXCEPTION 'refresh range starts at %, before the retained history (kept from %)', from_date,
                        (SELECT h.kept_from FROM retail_mid.history_retention h)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retail_mid.retain dropped the days before it; their totals live on in the _td tables.',
                  HINT = 'Refresh from the first kept day on.';
    END IF;
    v_job := retail_mid.job_start('refresh', jsonb_build_object('from_date', from_date, 'to_date', to_date));

    -- issue 15: the dimensions first (the DWD labels lines with the categories and regions valid on their day)
    v_dim := retail_mid.dim_refresh(CURRENT_DATE, from_date, to_date);
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
        jsonb_build_object('dim_rows', v_dim, 'dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'domain_rows', v_domains, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Brings the DIM layer up to date, rebuilds DWD and DWS (trade, then behaviour, marketing, inventory and members) for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';

-- Refreshes every day that has ODS orders, as one job (the full rebuild).
CREATE OR REPLACE FUNCTION retail_mid.refresh_all()
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT retail_mid.refresh(greatest(min(order_time)::date, (SELECT h.kept_from FROM retail_mid.history_retention h)), max(order_time)::date)
      FROM retail_mid.ods_order
    HAVING max(order_time)::date >= coalesce((SELECT h.kept_from FROM retail_mid.history_retention h), '-infinity');
END;
COMMENT ON FUNCTION retail_mid.refresh_all() IS 'Refreshes every day that has ODS orders (the full rebuild), from the first day kept by retail_mid.retain on; NULL when the ODS has no such day.';

-- issue 13: retention of partitioned history
-- ----------------------------------------------------------------- retention of partitioned history (issue 13)
-- The partitioned history tables, in the order refresh writes them.
CREATE OR REPLACE FUNCTION retail_mid.partitioned_history_tables()
RETURNS regclass[] LANGUAGE sql STABLE PARALLEL SAFE
RETURN ARRAY['retail_mid.dwd_trade_order_line_di', 'retail_mid.dws_trade_customer_1d',
             'retail_mid.dws_trade_sku_store_1d', 'retail_mid.dws_trade_store_1d']::text[]::regclass[];
COMMENT ON FUNCTION retail_mid.partitioned_history_tables() IS 'The day-grained history tables partitioned by month (dwd_trade_order_line_di and the trade _1d tables).';

-- retail_mid.retain(before) drops the monthly partitions of the history tables (partitioned_history_tables())
-- that lie wholly before `before`, and the DWD cleaning counts of those months. The _td tables are not touched:
-- they keep the totals of the dropped days, which also go into the *_retained baselines (dws.sql) so that a later
-- rebuild of a _td row adds them; history_retention records the first kept day. The refresh window (the last 31 days up to the latest refreshed day,
-- which late data may still rewrite) is never dropped. One transaction: it drops everything or nothing.
CREATE OR REPLACE FUNCTION retail_mid.retain(before date)
RETURNS TABLE (table_name text, partition_name text, from_date date, to_date date, rows_dropped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_latest date; v_limit date; r record; v_rows bigint; v_total bigint := 0; v_parts int := 0; v_cleaning bigint; v_upto date; v_cut date; v_base bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'retain needs a date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(before) THEN
        RAISE EXCEPTION 'retain needs a finite date, not %', before USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- no refresh in between: the window below stays true until commit
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.refresh'));
    v_latest := coalesce((SELECT max(s.as_of) FROM retail_mid.dws_refresh_state s), CURRENT_DATE);
    v_limit := v_latest - 30;
    IF before > v_limit THEN
        RAISE EXCEPTION 'retention date % is inside the refresh window', before
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The last 31 days up to the latest refreshed day %s (%s .. %s) may still be rewritten by late data.', v_latest, v_limit + 1, v_latest),
                  HINT = format('Use a date on or before %s.', v_limit);
    END IF;
    v_job := retail_mid.job_start('retain', jsonb_build_object('before', before));
    -- the partitions dropped are the whole months before v_cut; their totals go into the *_retained baselines
    -- first (the _td rebuild adds them), in this transaction: everything or nothing
    v_cut := date_trunc('month', before)::date;
    INSERT INTO retail_mid.dws_trade_customer_retained AS x
    SELECT d.brand, d.customer_key, min(d.dt), max(d.dt), sum(d.orders), sum(d.return_orders), count(*), sum(d.quantity),
           sum(d.sales_amount), sum(d.return_amount), sum(d.net_amount),
           min(d.dt) FILTER (WHERE d.orders > 0), max(d.dt) FILTER (WHERE d.orders > 0)
      FROM retail_mid.dws_trade_customer_1d d WHERE d.dt < v_cut GROUP BY d.brand, d.customer_key
    ON CONFLICT (brand, customer_key) DO UPDATE SET
           first_order_date = least(x.first_order_date, excluded.first_order_date),
           last_order_date = greatest(x.last_order_date, excluded.last_order_date),
           orders = x.orders + excluded.orders, return_orders = x.return_orders + excluded.return_orders,
           active_days = x.active_days + excluded.active_days, quantity = x.quantity + excluded.quantity,
           sales_amount = x.sales_amount + excluded.sales_amount, return_amount = x.return_amount + excluded.return_amount,
           net_amount = x.net_amount + excluded.net_amount,
           first_sale_date = least(x.first_sale_date, excluded.first_sale_date),
           last_sale_date = greatest(x.last_sale_date, excluded.last_sale_date);
    GET DIAGNOSTICS v_base = ROW_COUNT;
    INSERT INTO retail_mid.dws_trade_sku_store_retained AS x
    SELECT d.brand, d.store_id, d.sku_id, min(d.dt), max(d.dt), count(*), sum(d.orders), sum(d.quantity), sum(d.net_amount),
           retail_mid.rb_or_agg(d.buyer_bitmap)
      FROM retail_mid.dws_trade_sku_store_1d d WHERE d.dt < v_cut GROUP BY d.brand, d.store_id, d.sku_id
    ON CONFLICT (brand, store_id, sku_id) DO UPDATE SET
           first_sale_date = least(x.first_sale_date, excluded.first_sale_date),
           last_sale_date = greatest(x.last_sale_date, excluded.last_sale_date),
           selling_days = x.selling_days + excluded.selling_days, orders = x.orders + excluded.orders,
           quantity = x.quantity + excluded.quantity, net_amount = x.net_amount + excluded.net_amount,
           buyer_bitmap = retail_mid.rb_or(x.buyer_bitmap, excluded.buyer_bitmap);
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_base := v_base + v_rows;
    INSERT INTO retail_mid.dws_trade_store_retained AS x
    SELECT d.brand, d.store_id, min(d.dt), max(d.dt), sum(d.orders), sum(d.net_amount), retail_mid.rb_or_agg(d.customer_bitmap)
      FROM retail_mid.dws_trade_store_1d d WHERE d.dt < v_cut GROUP BY d.brand, d.store_id
    ON CONFLICT (brand, store_id) DO UPDATE SET
           first_sale_date = least(x.first_sale_date, excluded.first_sale_date),
           last_sale_date = greatest(x.last_sale_date, excluded.last_sale_date),
           orders = x.orders + excluded.orders, net_amount = x.net_amount + excluded.net_amount,
           customer_bitmap = retail_mid.rb_or(x.customer_bitmap, excluded.customer_bitmap);
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_base := v_base + v_rows;
    RAISE NOTICE 'retain: % baseline rows written for the days before %', v_base, v_cut;
    FOR r IN
        SELECT p.parent, c.oid AS part, c.relname, to_date(right(c.relname, 6), 'YYYYMM') AS m
          FROM unnest(retail_mid.partitioned_history_tables()) AS p(parent)
          JOIN pg_inherits i ON i.inhparent = p.parent
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE c.relname ~ '_p[0-9]{6}$'
           AND (to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month')::date <= v_cut
         ORDER BY 1::text, 4
    LOOP
        EXECUTE format('SELECT count(*) FROM %s', r.part::regclass) INTO v_rows;
        EXECUTE format('DROP TABLE %s', r.part::regclass);
        table_name := r.parent::text; partition_name := 'retail_mid.' || r.relname;
        from_date := r.m; to_date := (r.m + interval '1 month')::date - 1; rows_dropped := v_rows;
        v_total := v_total + v_rows; v_parts := v_parts + 1;
        v_upto := greatest(v_upto, to_date);
        RAISE NOTICE 'retain: dropped % (% .. %, % rows)', partition_name, from_date, to_date, v_rows;
        RETURN NEXT;
    END LOOP;
    -- the cleaning counts of the dropped months (a small unpartitioned table)
    DELETE FROM retail_mid.dwd_trade_cleaning_1d c WHERE c.dt < v_cut;
    GET DIAGNOSTICS v_cleaning = ROW_COUNT;
    -- the first kept day: refresh refuses the days before it (they would be counted twice)
    INSERT INTO retail_mid.history_retention AS h (singleton, kept_from, retained_at) VALUES (true, v_cut, now())
    ON CONFLICT (singleton) DO UPDATE SET kept_from = greatest(h.kept_from, excluded.kept_from), retained_at = excluded.retained_at;
    RAISE NOTICE 'retain: % partitions dropped (% rows), % cleaning rows deleted', v_parts, v_total, v_cleaning;
    PERFORM retail_mid.job_finish(v_job, v_total, jsonb_build_object('partitions', v_parts, 'cleaning_rows', v_cleaning, 'dropped_through', v_upto, 'baseline_rows', v_base, 'kept_from', v_cut));
END;
$$;
COMMENT ON FUNCTION retail_mid.retain(date) IS 'Drops the monthly partitions of the DWD and trade _1d tables that end before the given date (and the cleaning counts of those days); returns what it dropped and logs a job_log row. The totals of the dropped days go into the *_retained baselines, which the _td rebuild adds, so _td stays the total over all history; refresh then refuses days before the first kept one. Refuses a date inside the refresh window (the last 31 days up to the latest refreshed day, 55000), NULL (22004) or infinity (22023).';

-- issue 17: marketing mix and GMV simulation. Media spend per channel, campaign and day (ods_media_spend, brand-isolated
-- like the other ODS tables) and its loader (load_media_spend), synthetic media with known adstock and saturation
-- (generate_synthetic_media), the marketing mix model (src/goods/mmm.sql, the C of src/goods/mmm.c: mmm_fit,
-- gmv_simulate, budget_optimise and their tables) and the channel contribution tile (dash_channel_contribution).
CREATE TABLE retail_mid.ods_media_spend (
    brand       text NOT NULL,
    spend_date  date NOT NULL,
    channel     text NOT NULL CHECK (btrim(channel) <> ''),
    campaign_id text NOT NULL DEFAULT '(none)',
    spend       numeric(18,4) NOT NULL CHECK (spend >= 0),
    impressions bigint CHECK (impressions >= 0),
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, spend_date, channel, campaign_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_media_spend', '');
COMMENT ON TABLE retail_mid.ods_media_spend IS 'Paid media: spend and impressions per channel (tv, search, social ...), campaign and day; the input of the marketing mix model (mmm_fit).';
COMMENT ON COLUMN retail_mid.ods_media_spend.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.ods_media_spend.spend_date IS 'Day of the spend.';
COMMENT ON COLUMN retail_mid.ods_media_spend.channel IS 'Media channel (tv, search, social, outdoor ...).';
COMMENT ON COLUMN retail_mid.ods_media_spend.campaign_id IS 'Campaign (ods_campaign), ''(none)'' for spend not booked to a campaign.';
COMMENT ON COLUMN retail_mid.ods_media_spend.spend IS 'Spend in currency, not negative.';
COMMENT ON COLUMN retail_mid.ods_media_spend.impressions IS 'Impressions bought, when known.';
COMMENT ON COLUMN retail_mid.ods_media_spend.load_id IS 'Load that brought the row.';
SELECT retail_mid.secure_generated_table('retail_mid.ods_media_spend');

-- issue 17: media spend (CSV with a header: date, channel, campaign_id, spend, impressions; campaign_id and
-- impressions may be empty). Rows of a (day, channel, campaign) already loaded are replaced.
CREATE FUNCTION retail_mid.load_media_spend(path text, brand text, max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    IF path IS NULL OR brand IS NULL OR max_rejected IS NULL THEN
        RAISE EXCEPTION 'load_media_spend arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('load_media_spend', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, date text, channel text, campaign_id text,
        spend text, impressions text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'date, channel, campaign_id, spend, impressions');
    UPDATE rm_stage SET reason = CASE
        WHEN date IS NULL OR date !~ '^\s*\d{4}-\d{2}-\d{2}\s*$' THEN 'date is not a YYYY-MM-DD date'
        WHEN substr(btrim(date), 6, 2)::int NOT BETWEEN 1 AND 12 OR substr(btrim(date), 9, 2)::int < 1
          OR substr(btrim(date), 9, 2)::int > extract(day FROM make_date(substr(btrim(date), 1, 4)::int, substr(btrim(date), 6, 2)::int, 1)
                                                             + interval '1 month - 1 day') THEN 'date is not a valid date'
        WHEN retail_mid.invalid_field(channel, 'text') THEN 'missing channel'
        WHEN retail_mid.invalid_field(spend, 'number') THEN 'spend is not a number'
        WHEN spend::numeric < 0 THEN 'spend is negative'
        WHEN impressions IS NOT NULL AND btrim(impressions) <> ''
             AND (retail_mid.invalid_field(impressions, 'integer') OR impressions::bigint < 0) THEN 'impressions is not a non-negative integer' END;
    -- a (day, channel, campaign) twice in the file: the later row wins, the earlier is rejected
    UPDATE rm_stage s SET reason = 'duplicate day, channel and campaign'
      FROM (SELECT line_no, row_number() OVER (PARTITION BY date::date, btrim(channel), coalesce(nullif(btrim(campaign_id), ''), '(none)')
                                               ORDER BY line_no DESC) AS rn
              FROM rm_stage WHERE reason IS NULL) x
     WHERE x.line_no = s.line_no AND x.rn > 1;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('media_spend', path, brand, v_read, v_loaded, v_rejects, max_rejected);
    INSERT INTO retail_mid.ods_media_spend AS m (brand, spend_date, channel, campaign_id, spend, impressions, load_id)
    SELECT load_media_spend.brand, date::date, btrim(channel), coalesce(nullif(btrim(campaign_id), ''), '(none)'), spend::numeric,
           nullif(btrim(impressions), '')::bigint, v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_media_spend_pkey DO UPDATE
       SET spend = excluded.spend, impressions = excluded.impressions, load_id = excluded.load_id;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    ANALYZE retail_mid.ods_media_spend;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_media_spend(text, text, bigint) IS 'Loads media spend (CSV: date, channel, campaign_id, spend, impressions) into ods_media_spend for a brand, replacing rows of the same day, channel and campaign; negative or malformed rows are rejected.';

-- issue 17: paid media with known effects, added to a brand made by generate_synthetic. For every channel, weekly
-- spend is on in a share of the weeks (on_share) at a random level around mean_spend, spread evenly over the week's
-- days; its effect on the week's sales is beta * hill(adstock) with the geometric adstock a_w = x_w + decay * a_{w-1}
-- (weeks from start_date) and hill(a) = a^slope / (a^slope + half_saturation^slope). The effect is added as one
-- anonymous order per channel and day (the brand's first store and SKU, a seventh of the week's effect), so that
-- the DWS see it. Replaces the brand's earlier media spend and media orders. Returns the truth per channel and week.
CREATE FUNCTION retail_mid.generate_synthetic_media(
    brand text DEFAULT 'synthetic',
    channels jsonb DEFAULT '{"tv":     {"decay": 0.7, "half_saturation": 12000, "slope": 2.0, "beta": 12000, "mean_spend": 3000, "on_share": 0.5},
                             "search": {"decay": 0.2, "half_saturation": 1500,  "slope": 1.2, "beta": 6000,  "mean_spend": 1500, "on_share": 0.8},
                             "social": {"decay": 0.45, "half_saturation": 2500, "slope": 2.5, "beta": 8000,  "mean_spend": 1500, "on_share": 0.6}}',
    seed bigint DEFAULT 42, start_date date DEFAULT NULL, weeks int DEFAULT NULL)
RETURNS TABLE (channel text, week_start date, spend numeric, adstock float8, contribution float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    b text := brand; v_job bigint; v_load bigint; v_store text; v_sku text; v_from date; v_weeks int;
    ch record; p jsonb; k text; a float8; x numeric; w int; ci int := 0; s bigint := seed;
BEGIN
    IF brand IS NULL OR channels IS NULL OR seed IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic_media: brand, channels and seed must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT min(site_id) INTO v_store FROM retail_mid.ods_site WHERE brand = b AND kind = 'store';
    SELECT min(sku_id) INTO v_sku FROM retail_mid.ods_product WHERE brand = b;
    IF v_store IS NULL OR v_sku IS NULL THEN
        RAISE EXCEPTION 'unknown brand "%"', brand USING ERRCODE = 'undefined_object',
            DETAIL = 'The brand has no store or product in the ODS.', HINT = 'Run generate_synthetic for the brand first.';
    END IF;
    v_from := coalesce(start_date, (SELECT min(order_time)::date FROM retail_mid.ods_order WHERE brand = b AND order_id NOT LIKE 'MM%'));
    v_weeks := coalesce(weeks, (SELECT ((max(order_time)::date - v_from + 1) / 7)::int FROM retail_mid.ods_order WHERE brand = b AND order_id NOT LIKE 'MM%'));
    IF v_from IS NULL OR v_weeks IS NULL OR v_weeks < 1 OR v_weeks > 1000 THEN
        RAISE EXCEPTION 'generate_synthetic_media needs between 1 and 1000 weeks' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(channels) <> 'object' OR channels = '{}' THEN
        RAISE EXCEPTION 'channels must be a non-empty JSON object of channel parameters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k, p IN SELECT e.key, e.value FROM jsonb_each(channels) e LOOP
        IF jsonb_typeof(p) <> 'object' OR EXISTS (SELECT 1 FROM unnest(ARRAY['decay', 'half_saturation', 'slope', 'beta', 'mean_spend', 'on_share']) f
                                                   WHERE jsonb_typeof(p -> f) IS DISTINCT FROM 'number')
           OR (p ->> 'decay')::float8 NOT BETWEEN 0 AND 0.99 OR (p ->> 'half_saturation')::float8 <= 0 OR (p ->> 'slope')::float8 <= 0
           OR (p ->> 'mean_spend')::float8 < 0 OR (p ->> 'on_share')::float8 NOT BETWEEN 0.01 AND 1 THEN
            RAISE EXCEPTION 'bad parameters for channel "%"', k USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Each channel needs numbers decay (0 to 0.99), half_saturation > 0, slope > 0, beta, mean_spend >= 0 and on_share (0.01 to 1).';
        END IF;
    END LOOP;
    v_job := retail_mid.job_start('generate_synthetic_media', jsonb_build_object('brand', brand, 'channels', channels, 'seed', seed,
                                                                                  'start_date', v_from, 'weeks', v_weeks));
    DELETE FROM retail_mid.ods_order_line WHERE brand = b AND order_id LIKE 'MM%';
    DELETE FROM retail_mid.ods_order WHERE brand = b AND order_id LIKE 'MM%';
    DELETE FROM retail_mid.ods_media_spend WHERE brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic_media', 'seed=' || seed, b) RETURNING load_id INTO v_load;
    CREATE TEMP TABLE rm_syn_media (channel text, ci int, week_start date, spend numeric, adstock float8, contribution float8) ON COMMIT DROP;
    FOR k, p IN SELECT e.key, e.value FROM jsonb_each(channels) e ORDER BY e.key LOOP
        ci := ci + 1;
        a := 0;
        FOR w IN 0 .. v_weeks - 1 LOOP
            -- on in on_share of the weeks, at 0.3 to 1.7 times the level that gives mean_spend on average; whole cents a day
            x := CASE WHEN retail_mid.synth_uniform(s, 900 + ci, w) < (p ->> 'on_share')::float8
                      THEN 7 * round(((p ->> 'mean_spend')::float8 / (p ->> 'on_share')::float8
                                      * (0.3 + 1.4 * retail_mid.synth_uniform(s, 950 + ci, w)) / 7)::numeric, 2)
                      ELSE 0 END;
            a := x::float8 + (p ->> 'decay')::float8 * a;
            INSERT INTO rm_syn_media VALUES (k, ci, v_from + 7 * w, x, a,
                CASE WHEN a > 0 THEN (p ->> 'beta')::float8 / (1 + ((p ->> 'half_saturation')::float8 / a) ^ (p ->> 'slope')::float8) ELSE 0 END);
        END LOOP;
    END LOOP;
    INSERT INTO retail_mid.ods_media_spend (brand, spend_date, channel, campaign_id, spend, impressions, load_id)
    SELECT b, m.week_start + d, m.channel, '(none)', m.spend / 7, round(m.spend / 7 * (20 + 10 * m.ci))::bigint, v_load
      FROM rm_syn_media m, generate_series(0, 6) d;
    INSERT INTO retail_mid.ods_order (brand, order_id, order_time, channel, store_id, status, load_id)
    SELECT b, 'MM' || m.ci || '-' || (m.week_start + d - v_from), m.week_start + d + time '12:00', 'store', v_store, 'paid', v_load
      FROM rm_syn_media m, generate_series(0, 6) d WHERE m.contribution >= 0.07;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT b, 'MM' || m.ci || '-' || (m.week_start + d - v_from), 1, v_sku, 1, round((m.contribution / 7)::numeric, 2), 0, v_load
      FROM rm_syn_media m, generate_series(0, 6) d WHERE m.contribution >= 0.07;
    UPDATE retail_mid.ods_load SET rows_read = (SELECT count(*) * 7 FROM rm_syn_media), rows_loaded = (SELECT count(*) * 7 FROM rm_syn_media)
     WHERE load_id = v_load;
    RAISE NOTICE 'generate_synthetic_media: % channels, % weeks from %', ci, v_weeks, v_from;
    PERFORM retail_mid.job_finish(v_job, (SELECT count(*) * 7 FROM rm_syn_media), jsonb_build_object('channels', ci, 'weeks', v_weeks));
    ANALYZE retail_mid.ods_media_spend;
    RETURN QUERY SELECT m.channel, m.week_start, m.spend, m.adstock, m.contribution FROM rm_syn_media m ORDER BY m.channel, m.week_start;
    DROP TABLE rm_syn_media;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic_media(text, jsonb, bigint, date, int) IS 'Adds paid media with known geometric adstock and Hill saturation per channel to a synthetic brand: daily spend in ods_media_spend and the media''s sales as anonymous orders; returns the true spend, adstock and contribution per channel and week (the truth the marketing mix model must recover).';

CREATE FUNCTION retail_mid.mmm_fit_core(sales float8[], spend float8[], controls float8[], lower float8[], upper float8[],
                                        starts int, bootstrap int, seed bigint,
                                        OUT decay float8[], OUT half_saturation float8[], OUT slope float8[], OUT beta float8[],
                                        OUT gamma float8[], OUT fitted float8[], OUT contribution float8[],
                                        OUT control_contribution float8[], OUT rss float8, OUT roi_boot float8[])
RETURNS record AS 'MODULE_PATHNAME', 'mmm_fit_core' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.mmm_fit_core(float8[], float8[], float8[], float8[], float8[], int, int, bigint) IS 'Internal to mmm_fit: fits weekly sales on media spend (channels x weeks) through adstock and Hill saturation plus linear controls (controls x weeks), bounds per channel (decay, half-saturation relative to the mean adstock, slope); returns the parameters, fitted sales, contributions and bootstrap ROIs.';

CREATE FUNCTION retail_mid.mmm_allocate(total float8, decay float8[], half_saturation float8[], slope float8[], beta float8[])
RETURNS float8[] AS 'MODULE_PATHNAME', 'mmm_allocate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.mmm_allocate(float8, float8[], float8[], float8[], float8[]) IS 'The weekly split of total across channels that maximises the steady-state response sum of beta * hill(spend / (1 - decay)), by NLopt from several starts.';

-- Steady-state weekly effect of a constant weekly spend (adstock spend / (1 - decay)).
CREATE FUNCTION retail_mid.mmm_response(spend float8, decay float8, half_saturation float8, slope float8, beta float8)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN spend <= 0 THEN 0::float8
            ELSE beta / (1 + (half_saturation / (spend / (1 - decay))) ^ slope) END;
COMMENT ON FUNCTION retail_mid.mmm_response(float8, float8, float8, float8, float8) IS 'Weekly sales from a constant weekly spend once its adstock has settled: beta * hill(spend / (1 - decay)) with hill(a) = a^slope / (a^slope + half_saturation^slope).';

CREATE TABLE retail_mid.mmm_model (
    model_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand      text NOT NULL,
    from_date  date NOT NULL,
    to_date    date NOT NULL,
    weeks      int NOT NULL,
    channels   text[] NOT NULL,
    controls   text[] NOT NULL,
    options    jsonb NOT NULL,
    rss        float8 NOT NULL,
    r2         float8,
    mape       float8,
    ols_r2     float8,
    fitted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON retail_mid.mmm_model (brand, model_id);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.mmm_model', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.mmm_model_model_id_seq', '');
COMMENT ON TABLE retail_mid.mmm_model IS 'Marketing mix model fits (mmm_fit): one row per fit, the latest of a brand is the one gmv_simulate and budget_optimise use.';
COMMENT ON COLUMN retail_mid.mmm_model.model_id IS 'Fit id.';
COMMENT ON COLUMN retail_mid.mmm_model.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.mmm_model.from_date IS 'First day of the first week.';
COMMENT ON COLUMN retail_mid.mmm_model.to_date IS 'Last day asked for (the last full week ends on or before it).';
COMMENT ON COLUMN retail_mid.mmm_model.weeks IS 'Full weeks fitted.';
COMMENT ON COLUMN retail_mid.mmm_model.channels IS 'Media channels, in the order of the fit.';
COMMENT ON COLUMN retail_mid.mmm_model.controls IS 'Control regressors: intercept, trend, sin1/cos1 ... (annual Fourier terms), promotion.';
COMMENT ON COLUMN retail_mid.mmm_model.options IS 'Options of the fit, defaults filled in.';
COMMENT ON COLUMN retail_mid.mmm_model.rss IS 'Residual sum of squares of weekly sales.';
COMMENT ON COLUMN retail_mid.mmm_model.r2 IS 'R squared of weekly sales.';
COMMENT ON COLUMN retail_mid.mmm_model.mape IS 'Mean absolute percentage error of weekly sales.';
COMMENT ON COLUMN retail_mid.mmm_model.ols_r2 IS 'R squared of the plain OLS on raw spend with the same controls, for comparison.';
COMMENT ON COLUMN retail_mid.mmm_model.fitted_at IS 'When the fit ran.';

CREATE TABLE retail_mid.mmm_channel (
    model_id        bigint NOT NULL REFERENCES retail_mid.mmm_model ON DELETE CASCADE,
    brand           text NOT NULL,
    channel         text NOT NULL,
    decay           float8 NOT NULL,
    half_saturation float8 NOT NULL,
    slope           float8 NOT NULL,
    beta            float8 NOT NULL,
    spend           float8 NOT NULL,
    contribution    float8 NOT NULL,
    roi             float8,
    roi_low         float8,
    roi_high        float8,
    ols_roi         float8,
    PRIMARY KEY (model_id, channel)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.mmm_channel', '');
COMMENT ON TABLE retail_mid.mmm_channel IS 'Per channel of a marketing mix fit: adstock, saturation and scale, spend, contribution and ROI with its bootstrap interval, and the ROI a plain OLS on raw spend would claim.';
COMMENT ON COLUMN retail_mid.mmm_channel.model_id IS 'Fit (mmm_model).';
COMMENT ON COLUMN retail_mid.mmm_channel.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.mmm_channel.channel IS 'Media channel.';
COMMENT ON COLUMN retail_mid.mmm_channel.decay IS 'Geometric adstock decay per week: a_w = spend_w + decay * a_{w-1}.';
COMMENT ON COLUMN retail_mid.mmm_channel.half_saturation IS 'Hill half-saturation point, in adstocked spend.';
COMMENT ON COLUMN retail_mid.mmm_channel.slope IS 'Hill slope (shape): above 1 the response is S-shaped.';
COMMENT ON COLUMN retail_mid.mmm_channel.beta IS 'Weekly sales at full saturation.';
COMMENT ON COLUMN retail_mid.mmm_channel.spend IS 'Spend over the fitted weeks.';
COMMENT ON COLUMN retail_mid.mmm_channel.contribution IS 'Sales attributed to the channel over the fitted weeks.';
COMMENT ON COLUMN retail_mid.mmm_channel.roi IS 'contribution / spend (sales per unit of spend), NULL without spend.';
COMMENT ON COLUMN retail_mid.mmm_channel.roi_low IS 'Lower end of the 95% residual-bootstrap interval of the ROI, NULL without bootstrap.';
COMMENT ON COLUMN retail_mid.mmm_channel.roi_high IS 'Upper end of that interval.';
COMMENT ON COLUMN retail_mid.mmm_channel.ols_roi IS 'ROI by a plain OLS of weekly sales on raw weekly spend with the same controls (no adstock, no saturation): its coefficient.';

CREATE TABLE retail_mid.mmm_week (
    model_id   bigint NOT NULL REFERENCES retail_mid.mmm_model ON DELETE CASCADE,
    brand      text NOT NULL,
    week_start date NOT NULL,
    sales      float8 NOT NULL,
    fitted     float8 NOT NULL,
    PRIMARY KEY (model_id, week_start)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.mmm_week', '');
COMMENT ON TABLE retail_mid.mmm_week IS 'Weekly sales and fitted sales of a marketing mix fit.';
COMMENT ON COLUMN retail_mid.mmm_week.model_id IS 'Fit (mmm_model).';
COMMENT ON COLUMN retail_mid.mmm_week.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.mmm_week.week_start IS 'First day of the week.';
COMMENT ON COLUMN retail_mid.mmm_week.sales IS 'Net sales of the week (dws_trade_store_1d).';
COMMENT ON COLUMN retail_mid.mmm_week.fitted IS 'Fitted sales: the sum of the week''s contributions in mmm_contribution.';

CREATE TABLE retail_mid.mmm_contribution (
    model_id     bigint NOT NULL REFERENCES retail_mid.mmm_model ON DELETE CASCADE,
    brand        text NOT NULL,
    week_start   date NOT NULL,
    component    text NOT NULL,
    is_media     boolean NOT NULL,
    spend        float8,
    contribution float8 NOT NULL,
    PRIMARY KEY (model_id, week_start, component)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.mmm_contribution', '');
COMMENT ON TABLE retail_mid.mmm_contribution IS 'Fitted sales of a marketing mix fit split per week into media channels and the controls (base: intercept and trend; seasonality; promotion); the components of a week add up to its fitted sales.';
COMMENT ON COLUMN retail_mid.mmm_contribution.model_id IS 'Fit (mmm_model).';
COMMENT ON COLUMN retail_mid.mmm_contribution.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.mmm_contribution.week_start IS 'First day of the week.';
COMMENT ON COLUMN retail_mid.mmm_contribution.component IS 'A media channel, or base, seasonality or promotion.';
COMMENT ON COLUMN retail_mid.mmm_contribution.is_media IS 'True for media channels.';
COMMENT ON COLUMN retail_mid.mmm_contribution.spend IS 'Media spend of the week, NULL for controls.';
COMMENT ON COLUMN retail_mid.mmm_contribution.contribution IS 'Sales attributed to the component in the week.';

-- Fits the model on the full weeks from from_date to to_date. Options (all optional): channels (array, default every
-- channel with spend in the window), fourier (annual Fourier order 0 to 3, default 2), trend (default true),
-- promotions (default true: promotion-days of the week, left out when they never vary), starts (default 8),
-- bootstrap (replicates for the ROI interval, default 50), seed (default 1), and bounds {decay: [lo, hi],
-- half_saturation: [lo, hi] (relative to the channel's mean adstocked spend), slope: [lo, hi]} (defaults
-- [0, 0.9], [0.2, 3], [0.5, 4]).
CREATE FUNCTION retail_mid.mmm_fit(brand text, from_date date, to_date date, options jsonb DEFAULT '{}')
RETURNS TABLE (model_id bigint, channel text, decay float8, half_saturation float8, slope float8, beta float8,
               roi float8, roi_low float8, roi_high float8, ols_roi float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    b text := brand; v_job bigint; v_model bigint; v_weeks int; v_channels text[]; v_controls text[] := ARRAY['intercept'];
    v_fourier int; v_trend boolean; v_promo boolean; v_starts int; v_boot int; v_seed bigint; v_bounds jsonb;
    lo float8[] := '{}'; hi float8[] := '{}'; y float8[]; x float8[]; z float8[]; f record; bad text; i int;
    v_ols jsonb; v_opts jsonb; xm float8[];
BEGIN
    IF brand IS NULL OR from_date IS NULL OR to_date IS NULL OR options IS NULL THEN
        RAISE EXCEPTION 'mmm_fit arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(options) k
     WHERE k NOT IN ('channels', 'fourier', 'trend', 'promotions', 'starts', 'bootstrap', 'seed', 'bounds');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown mmm_fit option: %', bad USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Options are channels, fourier, trend, promotions, starts, bootstrap, seed and bounds.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.ods_media_spend m WHERE m.brand = b)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.dws_trade_store_1d d WHERE d.brand = b) THEN
        RAISE EXCEPTION 'unknown brand "%"', brand USING ERRCODE = 'undefined_object',
            DETAIL = 'The brand has neither media spend nor sales (or you are not entitled to it).';
    END IF;
    IF from_date > to_date OR from_date IN ('-infinity', 'infinity') OR to_date IN ('-infinity', 'infinity') THEN
        RAISE EXCEPTION 'from_date must be a finite date on or before to_date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_weeks := (to_date - from_date + 1) / 7;
    BEGIN
        v_fourier := coalesce((options ->> 'fourier')::int, 2);
        v_trend := coalesce((options ->> 'trend')::boolean, true);
        v_promo := coalesce((options ->> 'promotions')::boolean, true);
        v_starts := coalesce((options ->> 'starts')::int, 8);
        v_boot := coalesce((options ->> 'bootstrap')::int, 50);
        v_seed := coalesce((options ->> 'seed')::bigint, 1);
        v_bounds := coalesce(options -> 'bounds', '{}');
        FOR i IN 0 .. 2 LOOP
            lo := lo || coalesce((v_bounds -> (ARRAY['decay', 'half_saturation', 'slope'])[i + 1] ->> 0)::float8, (ARRAY[0, 0.2, 0.5])[i + 1]);
            hi := hi || coalesce((v_bounds -> (ARRAY['decay', 'half_saturation', 'slope'])[i + 1] ->> 1)::float8, (ARRAY[0.9, 3, 4])[i + 1]);
        END LOOP;
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range OR cannot_coerce THEN
        RAISE EXCEPTION 'malformed mmm_fit option' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = SQLERRM, HINT = 'fourier, starts, bootstrap and seed are integers, trend and promotions booleans, bounds pairs of numbers.';
    END;
    IF v_fourier NOT BETWEEN 0 AND 3 THEN
        RAISE EXCEPTION 'fourier must be between 0 and 3' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF options ? 'channels' THEN
        IF jsonb_typeof(options -> 'channels') <> 'array' OR jsonb_array_length(options -> 'channels') = 0 THEN
            RAISE EXCEPTION 'channels must be a non-empty array of channel names' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT array_agg(DISTINCT c ORDER BY c) INTO v_channels FROM jsonb_array_elements_text(options -> 'channels') c;
        SELECT string_agg(c, ', ') INTO bad FROM unnest(v_channels) c
         WHERE NOT EXISTS (SELECT 1 FROM retail_mid.ods_media_spend m WHERE m.brand = b AND m.channel = c);
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'unknown channel: %', bad USING ERRCODE = 'undefined_object',
                DETAIL = format('Brand %s has no media spend on it.', brand);
        END IF;
    ELSE
        SELECT array_agg(DISTINCT m.channel ORDER BY m.channel) INTO v_channels FROM retail_mid.ods_media_spend m
         WHERE m.brand = b AND m.spend_date BETWEEN from_date AND from_date + 7 * v_weeks - 1 AND m.spend > 0;
    END IF;
    IF v_weeks < 1 OR v_channels IS NULL
       OR NOT EXISTS (SELECT 1 FROM retail_mid.dws_trade_store_1d d WHERE d.brand = b AND d.dt BETWEEN from_date AND from_date + 7 * v_weeks - 1) THEN
        RAISE EXCEPTION 'no media spend or no sales of brand "%" in the full weeks from % to %', brand, from_date, to_date
            USING ERRCODE = 'no_data_found', HINT = 'The window needs full weeks with sales (dws_trade_store_1d, run refresh) and media spend.';
    END IF;
    v_job := retail_mid.job_start('mmm_fit', jsonb_build_object('brand', brand, 'from_date', from_date, 'to_date', to_date, 'options', options));
    RAISE NOTICE 'mmm_fit: % weeks, % channels', v_weeks, cardinality(v_channels);

    CREATE TEMP TABLE rm_mmm_week ON COMMIT DROP AS
    SELECT w, from_date + 7 * w AS week_start,
           coalesce((SELECT sum(d.net_amount) FROM retail_mid.dws_trade_store_1d d
                      WHERE d.brand = b AND d.dt BETWEEN from_date + 7 * w AND from_date + 7 * w + 6), 0)::float8 AS sales,
           coalesce((SELECT sum(least(p.end_date, from_date + 7 * w + 6) - greatest(p.start_date, from_date + 7 * w) + 1)
                       FROM retail_mid.ods_promotion p
                      WHERE p.brand = b AND p.start_date <= from_date + 7 * w + 6 AND p.end_date >= from_date + 7 * w), 0)::float8 AS promo,
           (from_date + 7 * w + 3 - date '2000-01-01') / 365.25 AS yr
      FROM generate_series(0, v_weeks - 1) w;
    SELECT array_agg(sales ORDER BY w) INTO y FROM rm_mmm_week;
    SELECT array_agg(s ORDER BY c) INTO x
      FROM (SELECT c, ARRAY(SELECT coalesce((SELECT sum(m.spend) FROM retail_mid.ods_media_spend m
                                              WHERE m.brand = b AND m.channel = c AND m.spend_date BETWEEN wk.week_start AND wk.week_start + 6), 0)::float8
                              FROM rm_mmm_week wk ORDER BY wk.w) AS s
              FROM unnest(v_channels) c) q;
    -- controls: intercept, trend (centred), Fourier terms, promotion-days scaled to their mean (when they vary)
    z := ARRAY[array_fill(1::float8, ARRAY[v_weeks])];
    IF v_trend AND v_weeks > 1 THEN
        z := z || ARRAY(SELECT (w::float8 / (v_weeks - 1) - 0.5) FROM rm_mmm_week ORDER BY w);
        v_controls := v_controls || 'trend'::text;
    END IF;
    FOR i IN 1 .. v_fourier LOOP
        z := z || ARRAY(SELECT sin(2 * pi() * i * yr) FROM rm_mmm_week ORDER BY w);
        z := z || ARRAY(SELECT cos(2 * pi() * i * yr) FROM rm_mmm_week ORDER BY w);
        v_controls := v_controls || ('sin' || i) || ('cos' || i);
    END LOOP;
    IF v_promo AND (SELECT stddev_pop(promo) > 1e-9 * greatest(avg(promo), 1) FROM rm_mmm_week) THEN
        z := z || ARRAY(SELECT promo / (SELECT avg(promo) FROM rm_mmm_week) FROM rm_mmm_week ORDER BY w);
        v_controls := v_controls || 'promotion'::text;
    END IF;
    SELECT * INTO f FROM retail_mid.mmm_fit_core(y, x, z,
        (SELECT array_agg(lo[1 + (g % 3)] ORDER BY g) FROM generate_series(0, 3 * cardinality(v_channels) - 1) g),
        (SELECT array_agg(hi[1 + (g % 3)] ORDER BY g) FROM generate_series(0, 3 * cardinality(v_channels) - 1) g),
        v_starts, v_boot, v_seed);

    -- plain OLS on raw spend with the same controls (retail_mid.ols), for comparison; spend scaled to its mean
    -- (the normal equations of ols are pivoted against the largest entry) and the coefficients scaled back below
    SELECT array_agg(coalesce(nullif((SELECT avg(x[c][w]) FROM generate_series(1, v_weeks) w), 0), 1) ORDER BY c)
      INTO xm FROM generate_series(1, cardinality(v_channels)) c;
    SELECT retail_mid.ols(wk.sales, ARRAY(SELECT z[p][wk.w + 1] FROM generate_series(1, cardinality(v_controls)) p)
                                    || ARRAY(SELECT x[c][wk.w + 1] / xm[c] FROM generate_series(1, cardinality(v_channels)) c))
      INTO v_ols FROM rm_mmm_week wk;

    v_opts := jsonb_build_object('channels', to_jsonb(v_channels), 'fourier', v_fourier, 'trend', v_trend, 'promotions', v_promo,
                                 'starts', v_starts, 'bootstrap', v_boot, 'seed', v_seed,
                                 'bounds', jsonb_build_object('decay', jsonb_build_array(lo[1], hi[1]),
                                                              'half_saturation', jsonb_build_array(lo[2], hi[2]),
                                                              'slope', jsonb_build_array(lo[3], hi[3])));
    INSERT INTO retail_mid.mmm_model (brand, from_date, to_date, weeks, channels, controls, options, rss, r2, mape, ols_r2)
    SELECT b, from_date, to_date, v_weeks, v_channels, v_controls, v_opts, f.rss,
           CASE WHEN sum((sales - m) ^ 2) > 0 THEN 1 - f.rss / sum((sales - m) ^ 2) END,
           avg(abs(sales - f.fitted[w + 1]) / nullif(abs(sales), 0)), (v_ols ->> 'r2')::float8
      FROM (SELECT *, avg(sales) OVER () AS m FROM rm_mmm_week) q
    RETURNING mmm_model.model_id INTO v_model;
    INSERT INTO retail_mid.mmm_week (model_id, brand, week_start, sales, fitted)
    SELECT v_model, b, week_start, sales, f.fitted[w + 1] FROM rm_mmm_week;
    INSERT INTO retail_mid.mmm_contribution (model_id, brand, week_start, component, is_media, spend, contribution)
    SELECT v_model, b, wk.week_start, v_channels[c], true, x[c][wk.w + 1], f.contribution[c][wk.w + 1]
      FROM rm_mmm_week wk, generate_series(1, cardinality(v_channels)) c
    UNION ALL
    SELECT v_model, b, wk.week_start, grp, false, NULL, sum(f.control_contribution[p][wk.w + 1])
      FROM rm_mmm_week wk, generate_series(1, cardinality(v_controls)) p,
           LATERAL (SELECT CASE WHEN v_controls[p] IN ('intercept', 'trend') THEN 'base'
                                WHEN v_controls[p] = 'promotion' THEN 'promotion' ELSE 'seasonality' END AS grp) g
     GROUP BY wk.week_start, grp;
    INSERT INTO retail_mid.mmm_channel (model_id, brand, channel, decay, half_saturation, slope, beta, spend, contribution,
                                        roi, roi_low, roi_high, ols_roi)
    SELECT v_model, b, v_channels[c], f.decay[c], f.half_saturation[c], f.slope[c], f.beta[c], sp, co,
           co / nullif(sp, 0), bt.lo, bt.hi, (v_ols -> 'coef' ->> (cardinality(v_controls) + c - 1))::float8 / xm[c]
      FROM generate_series(1, cardinality(v_channels)) c,
           LATERAL (SELECT sum(x[c][w]) AS sp, sum(f.contribution[c][w]) AS co FROM generate_series(1, v_weeks) w) s,
           LATERAL (SELECT percentile_cont(0.025) WITHIN GROUP (ORDER BY f.roi_boot[r][c]) AS lo,
                           percentile_cont(0.975) WITHIN GROUP (ORDER BY f.roi_boot[r][c]) AS hi
                      FROM generate_series(1, v_boot) r WHERE f.roi_boot[r][c] <> 'NaN') bt;
    DROP TABLE rm_mmm_week;
    PERFORM retail_mid.job_finish(v_job, cardinality(v_channels), jsonb_build_object('model_id', v_model, 'weeks', v_weeks, 'rss', f.rss));
    RAISE NOTICE 'mmm_fit: model % stored', v_model;
    RETURN QUERY SELECT c.model_id, c.channel, c.decay, c.half_saturation, c.slope, c.beta, c.roi, c.roi_low, c.roi_high, c.ols_roi
                   FROM retail_mid.mmm_channel c WHERE c.model_id = v_model ORDER BY c.channel;
END;
$$;
COMMENT ON FUNCTION retail_mid.mmm_fit(text, date, date, jsonb) IS 'Fits a marketing mix model for a brand: weekly net sales on media spend with geometric adstock and Hill saturation per channel, trend, annual seasonality and promotions as controls (NLopt within bounds); stores the fit (mmm_model, mmm_channel, mmm_week, mmm_contribution) with bootstrap ROI intervals and the plain-OLS ROI, and returns the channels.';

-- The latest fit of a brand (or the given one), checked.
CREATE FUNCTION retail_mid.mmm_latest(brand text, model_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v bigint;
BEGIN
    IF brand IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT max(m.model_id) INTO v FROM retail_mid.mmm_model m
     WHERE m.brand = mmm_latest.brand AND (mmm_latest.model_id IS NULL OR m.model_id = mmm_latest.model_id);
    IF v IS NULL THEN
        RAISE EXCEPTION 'brand "%" has no marketing mix model%', brand, CASE WHEN model_id IS NULL THEN '' ELSE ' ' || model_id END
            USING ERRCODE = 'undefined_object', HINT = 'Run retail_mid.mmm_fit for the brand first.';
    END IF;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION retail_mid.mmm_latest(text, bigint) IS 'The id of the latest marketing mix fit of a brand (or checks the given one belongs to it); undefined_object when there is none.';

-- Expected weekly GMV of a spend plan {channel: weekly spend} once adstock has settled: per channel, the base (the
-- fit's mean weekly non-media sales) and the total. Channels the plan leaves out get no spend.
CREATE FUNCTION retail_mid.gmv_simulate(brand text, plan jsonb, model_id bigint DEFAULT NULL)
RETURNS TABLE (channel text, weekly_spend float8, expected_gmv float8, roi float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v bigint; bad text;
BEGIN
    IF plan IS NULL THEN
        RAISE EXCEPTION 'plan must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v := retail_mid.mmm_latest(brand, model_id);
    IF jsonb_typeof(plan) <> 'object' THEN
        RAISE EXCEPTION 'plan must be a JSON object of weekly spend per channel' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'For example {"tv": 3000, "search": 1500}.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(plan) k
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.mmm_channel c WHERE c.model_id = v AND c.channel = k);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown channel in plan: %', bad USING ERRCODE = 'undefined_object',
            DETAIL = format('Model %s has channels %s.', v, (SELECT array_to_string(m.channels, ', ') FROM retail_mid.mmm_model m WHERE m.model_id = v));
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(plan) e WHERE jsonb_typeof(e.value) <> 'number' OR (e.value #>> '{}')::float8 < 0) THEN
        RAISE EXCEPTION 'plan spend must be non-negative numbers' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH ch AS (SELECT c.channel, coalesce((plan ->> c.channel)::float8, 0) AS sp,
                       retail_mid.mmm_response(coalesce((plan ->> c.channel)::float8, 0), c.decay, c.half_saturation, c.slope, c.beta) AS g
                  FROM retail_mid.mmm_channel c WHERE c.model_id = v),
         base AS (SELECT sum(k.contribution) / count(DISTINCT k.week_start) AS g FROM retail_mid.mmm_contribution k
                   WHERE k.model_id = v AND NOT k.is_media)
    SELECT * FROM (SELECT ch.channel, ch.sp, ch.g, ch.g / nullif(ch.sp, 0) FROM ch ORDER BY ch.channel) a
    UNION ALL SELECT '(base)', 0::float8, base.g, NULL::float8 FROM base
    UNION ALL SELECT '(total)', (SELECT sum(sp) FROM ch), base.g + (SELECT sum(g) FROM ch),
                     (SELECT sum(g) / nullif(sum(sp), 0) FROM ch) FROM base;
END;
$$;
COMMENT ON FUNCTION retail_mid.gmv_simulate(text, jsonb, bigint) IS 'Expected weekly GMV of a media plan {channel: weekly spend} under a brand''s latest (or the given) marketing mix fit, at steady state: one row per channel (its media GMV and ROI), (base) for the mean weekly non-media sales, and (total).';

-- The split of a weekly budget that maximises expected GMV under the fitted curves, next to the current mean split.
CREATE FUNCTION retail_mid.budget_optimise(brand text, total float8, model_id bigint DEFAULT NULL)
RETURNS TABLE (channel text, weekly_spend float8, expected_gmv float8, roi float8, current_spend float8, current_gmv float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v bigint; alloc float8[]; chans text[];
BEGIN
    IF total IS NULL THEN
        RAISE EXCEPTION 'total must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v := retail_mid.mmm_latest(brand, model_id);
    IF total = 'NaN' OR total < 0 OR total = 'Infinity' THEN
        RAISE EXCEPTION 'total must be a finite non-negative weekly budget' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(c.channel ORDER BY c.channel),
           retail_mid.mmm_allocate(total, array_agg(c.decay ORDER BY c.channel), array_agg(c.half_saturation ORDER BY c.channel),
                                   array_agg(c.slope ORDER BY c.channel), array_agg(c.beta ORDER BY c.channel))
      INTO chans, alloc FROM retail_mid.mmm_channel c WHERE c.model_id = v;
    RETURN QUERY
    SELECT c.channel, alloc[i], retail_mid.mmm_response(alloc[i], c.decay, c.half_saturation, c.slope, c.beta),
           retail_mid.mmm_response(alloc[i], c.decay, c.half_saturation, c.slope, c.beta) / nullif(alloc[i], 0),
           c.spend / m.weeks, retail_mid.mmm_response(c.spend / m.weeks, c.decay, c.half_saturation, c.slope, c.beta)
      FROM generate_subscripts(chans, 1) i
      JOIN retail_mid.mmm_channel c ON c.model_id = v AND c.channel = chans[i]
      JOIN retail_mid.mmm_model m ON m.model_id = v
     ORDER BY c.channel;
END;
$$;
COMMENT ON FUNCTION retail_mid.budget_optimise(text, float8, bigint) IS 'Splits a weekly media budget across the channels of a brand''s latest (or the given) marketing mix fit so that the expected steady-state GMV is largest (NLopt); per channel the proposed spend, its GMV and ROI, and the mean weekly spend of the fitted window with its GMV.';

-- the grants and brand isolation governance/lockdown.sql gives them in a fresh install
SELECT retail_mid.secure_generated_table(t::regclass)
  FROM unnest(ARRAY['retail_mid.mmm_model', 'retail_mid.mmm_channel', 'retail_mid.mmm_week', 'retail_mid.mmm_contribution']) t;
GRANT ALL ON SEQUENCE retail_mid.mmm_model_model_id_seq TO retail_mid_admin;

-- issue 17: channel contribution (marketing mix): the latest fit of each brand, per week and component
CREATE VIEW retail_mid.dash_channel_contribution AS
SELECT k.brand, k.model_id, k.week_start, k.component, k.is_media, k.spend, k.contribution,
       k.contribution / nullif(w.fitted, 0) AS share_of_fitted,
       CASE WHEN k.is_media THEN k.contribution / nullif(k.spend, 0) END AS roi
  FROM retail_mid.mmm_contribution k
  JOIN retail_mid.mmm_week w ON w.model_id = k.model_id AND w.week_start = k.week_start
 WHERE k.model_id = (SELECT max(m.model_id) FROM retail_mid.mmm_model m WHERE m.brand = k.brand);
COMMENT ON VIEW retail_mid.dash_channel_contribution IS 'Channel contribution tile: the weekly sales of each brand''s latest marketing mix fit split into media channels, base, seasonality and promotion.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.model_id IS 'Fit (mmm_model), the brand''s latest.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.week_start IS 'First day of the week.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.component IS 'Media channel, or base, seasonality or promotion.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.is_media IS 'True for media channels.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.spend IS 'Media spend of the week, NULL for the controls.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.contribution IS 'Sales attributed to the component in the week.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.share_of_fitted IS 'Contribution / fitted sales of the week.';
COMMENT ON COLUMN retail_mid.dash_channel_contribution.roi IS 'Contribution / spend of a media channel in the week (carry-over included), NULL for controls or no spend.';

ALTER VIEW retail_mid.dash_channel_contribution SET (security_invoker = true);
SELECT retail_mid.security_grant('retail_mid.dash_channel_contribution');
GRANT SELECT ON retail_mid.mmm_contribution, retail_mid.mmm_week, retail_mid.mmm_model TO retail_mid_bi;

-- issue 16: AIPL in C on bitmaps (src/consumer/aipl.sql, the C aggregate of src/consumer/aipl.c). The stage history
-- becomes one bitmap per brand, day and stage (dws_aipl_stage_bitmap_1d; the 1.0 rows are carried over), the table
-- dws_aipl_customer_stage_1d becomes a view of the same columns over the bitmaps; rules get a name (several per
-- stage, ORed) and object filters; loyalty counts order days; the signals come from the DWD (aipl_rule_signals).
ALTER TABLE retail_mid.aipl_rule ADD COLUMN rule_name text;
UPDATE retail_mid.aipl_rule SET rule_name = source;
ALTER TABLE retail_mid.aipl_rule ALTER COLUMN rule_name SET NOT NULL;
-- (no fast default: a fresh install's table has none, and pg_dump --binary-upgrade would show it)
ALTER TABLE retail_mid.aipl_rule ADD COLUMN object_filter text;
UPDATE retail_mid.aipl_rule SET object_filter = 'any';
ALTER TABLE retail_mid.aipl_rule ALTER COLUMN object_filter SET DEFAULT 'any', ALTER COLUMN object_filter SET NOT NULL;
ALTER TABLE retail_mid.aipl_rule ADD CONSTRAINT aipl_rule_object_filter_check CHECK (object_filter IN ('any', 'own_brand', 'category'));
ALTER TABLE retail_mid.aipl_rule ADD COLUMN object_value text;
ALTER TABLE retail_mid.aipl_rule ADD COLUMN description text;
ALTER TABLE retail_mid.aipl_rule DROP CONSTRAINT aipl_rule_pkey;
ALTER TABLE retail_mid.aipl_rule ADD CONSTRAINT aipl_rule_pkey PRIMARY KEY (brand, stage, rule_name);
ALTER TABLE retail_mid.aipl_rule ADD CONSTRAINT aipl_rule_object_check CHECK ((object_filter <> 'category' OR object_value IS NOT NULL)
                                             AND (source <> 'touch' OR object_filter = 'any'));
UPDATE retail_mid.aipl_rule r SET description = d.description
  FROM (VALUES ('A', 'event', 'Exposed to or searched for the brand in 30 days.'),
               ('A', 'touch', 'Sent or shown a campaign in 30 days.'),
               ('I', 'event', 'Clicked, viewed, favourited, added to cart, followed or registered in 30 days.'),
               ('I', 'touch', 'Clicked a campaign or redeemed its coupon in 30 days.'),
               ('P', 'order', 'Bought in 90 days.'),
               ('L', 'order', 'Bought on two or more days in 180 days.'),
               ('L', 'event', 'Reviewed or shared in 180 days.')) d(stage, rule_name, description)
 WHERE r.brand = '*' AND r.stage = d.stage AND r.rule_name = d.rule_name;
COMMENT ON TABLE retail_mid.aipl_rule IS 'AIPL stage rules per brand (brand ''*'' is the default for brands without rules of their own): which signals, over how many days, how many and how much; a stage holds when any of its rules holds.';
COMMENT ON COLUMN retail_mid.aipl_rule.brand IS 'Brand the rule is for; ''*'' = every brand without its own rules.';
COMMENT ON COLUMN retail_mid.aipl_rule.stage IS 'A awareness, I interest, P purchase, L loyalty.';
COMMENT ON COLUMN retail_mid.aipl_rule.source IS 'event: dwd_behavior_event_di types; touch: dwd_marketing_touch_di types; order: order days (days with a sale, from dws_trade_customer_1d, or dwd_trade_order_line_di with an object filter; signal_types ignored).';
COMMENT ON COLUMN retail_mid.aipl_rule.signal_types IS 'Event types or touch types that count.';
COMMENT ON COLUMN retail_mid.aipl_rule.lookback_days IS 'Window length: signals on days (d - lookback_days, d] count for day d.';
COMMENT ON COLUMN retail_mid.aipl_rule.min_count IS 'Minimum number of signals in the window: events x event_count, touches, or order days (two baskets on one day are one order day).';
COMMENT ON COLUMN retail_mid.aipl_rule.min_amount IS 'Minimum amount of the signals in the window (net amount of the order days, event amount).';
COMMENT ON COLUMN retail_mid.aipl_rule.rule_name IS 'Name of the rule, unique within brand and stage; the rules of a stage are combined with OR.';
COMMENT ON COLUMN retail_mid.aipl_rule.object_filter IS 'Which objects count: any; own_brand (events on, or order lines of, SKUs whose dim_product.product_brand is object_value, or the brand itself when NULL); category (SKUs with object_value as category level 1, 2, 3 or 4 in dim_product). Event objects are object_attribute = sku_id events. Touch rules take any only.';
COMMENT ON COLUMN retail_mid.aipl_rule.object_value IS 'The product brand (own_brand; NULL = the rule''s brand) or the category (category, required).';
COMMENT ON COLUMN retail_mid.aipl_rule.description IS 'What the rule means, for the people who maintain the rules.';

CREATE TABLE retail_mid.dws_aipl_stage_bitmap_1d (
    brand     text              NOT NULL,
    dt        date              NOT NULL,
    stage     char(1)           NOT NULL CHECK (stage IN ('A', 'I', 'P', 'L')),
    customers retail_mid.rbitmap NOT NULL,
    members   bigint            NOT NULL,
    PRIMARY KEY (brand, dt, stage)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_aipl_stage_bitmap_1d', '');
COMMENT ON TABLE retail_mid.dws_aipl_stage_bitmap_1d IS 'AIPL stage members per brand, day and stage as a bitmap of customer keys (a customer is in the highest stage whose rules hold; days and stages without members have no row); written by aipl_refresh.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.stage IS 'A, I, P or L.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.customers IS 'Customer keys in the stage on the day.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.members IS 'Cardinality of customers.';

ALTER TABLE retail_mid.dws_aipl_customer_stage_1d RENAME TO dws_aipl_customer_stage_1d_v10;
INSERT INTO retail_mid.dws_aipl_stage_bitmap_1d (brand, dt, stage, customers, members)
SELECT brand, dt, stage, retail_mid.rb_build_agg(customer_key), count(*)
  FROM retail_mid.dws_aipl_customer_stage_1d_v10 GROUP BY brand, dt, stage;
CREATE VIEW retail_mid.dws_aipl_customer_stage_1d AS
SELECT s.dt, s.brand, k.customer_key, s.stage
  FROM retail_mid.dws_aipl_stage_bitmap_1d s
 CROSS JOIN LATERAL retail_mid.rb_iterate(s.customers) AS k(customer_key);
COMMENT ON VIEW retail_mid.dws_aipl_customer_stage_1d IS 'AIPL stage of every customer with a stage, per day (the highest stage whose rules hold), one row per customer from the bitmaps of dws_aipl_stage_bitmap_1d.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.stage IS 'A, I, P or L.';

ALTER VIEW retail_mid.dws_aipl_customer_stage_1d SET (security_invoker = true);
-- aipl_signals reads aipl_rule.*: recreated so its body names the columns a fresh install's does
CREATE OR REPLACE FUNCTION retail_mid.aipl_signals(brand text, from_date date, to_date date)
RETURNS TABLE (customer_key int4, stage char(1), source text, dt date, n bigint, amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH r AS (SELECT * FROM retail_mid.aipl_rule r
                WHERE r.brand = aipl_signals.brand
                   OR (r.brand = '*' AND NOT EXISTS (SELECT 1 FROM retail_mid.aipl_rule o WHERE o.brand = aipl_signals.brand)))
    SELECT e.customer_key, r.stage, r.source, e.event_time::date, sum(e.event_count), coalesce(sum(e.amount), 0)
      FROM r JOIN retail_mid.behavior_event_keyed e ON r.source = 'event' AND e.event_type = ANY (r.signal_types)
     WHERE e.brand = aipl_signals.brand AND e.event_time >= aipl_signals.from_date - r.lookback_days
       AND e.event_time < aipl_signals.to_date + 1
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT t.customer_key, r.stage, r.source, t.touched_at::date, count(*), 0
      FROM r JOIN retail_mid.campaign_touch_keyed t ON r.source = 'touch' AND t.touch_type = ANY (r.signal_types)
     WHERE t.brand = aipl_signals.brand AND t.touched_at >= aipl_signals.from_date - r.lookback_days
       AND t.touched_at < aipl_signals.to_date + 1
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT c.customer_key, r.stage, r.source, c.dt, sum(c.orders), sum(c.net_amount)
      FROM r JOIN retail_mid.dws_trade_customer_1d c ON r.source = 'order'
     WHERE c.brand = aipl_signals.brand AND c.orders > 0
       AND c.dt > aipl_signals.from_date - r.lookback_days AND c.dt <= aipl_signals.to_date
     GROUP BY 1, 2, 3, 4;
END;
COMMENT ON FUNCTION retail_mid.aipl_signals(text, date, date) IS 'Daily AIPL signals of a brand per customer and rule, from the days the rules'' windows need; reads events and touches by customer key (behavior_event_keyed, campaign_touch_keyed), so analysts of the brand may call it; the pre-1.1 signals (orders, not order days), no longer read by aipl_refresh (see aipl_rule_signals).';

-- The rules that apply to a brand: its own, or the '*' defaults when it has none.
CREATE FUNCTION retail_mid.aipl_rules_of(brand text)
RETURNS SETOF retail_mid.aipl_rule
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT * FROM retail_mid.aipl_rule r
     WHERE r.brand = aipl_rules_of.brand
        OR (r.brand = '*' AND NOT EXISTS (SELECT 1 FROM retail_mid.aipl_rule o WHERE o.brand = aipl_rules_of.brand));
END;
COMMENT ON FUNCTION retail_mid.aipl_rules_of(text) IS 'The AIPL rules of a brand: its own rows of aipl_rule, or the ''*'' defaults when it has none.';

-- The daily signals of each rule of a brand, from the public layer (behaviour and marketing DWD, the trade DWS for
-- order days, the order-line DWD for order rules with an object filter): what aipl_refresh counts.
CREATE FUNCTION retail_mid.aipl_rule_signals(brand text, from_date date, to_date date)
RETURNS TABLE (stage char(1), rule_name text, customer_key int4, dt date, n bigint, amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH r AS (SELECT * FROM retail_mid.aipl_rules_of(aipl_rule_signals.brand))
    SELECT r.stage, r.rule_name, e.customer_key, e.dt, sum(e.event_count)::bigint, coalesce(sum(e.amount), 0)
      FROM r JOIN retail_mid.dwd_behavior_event_di e ON r.source = 'event' AND e.event_type = ANY (r.signal_types)
      LEFT JOIN retail_mid.dim_product p ON r.object_filter <> 'any' AND e.object_attribute = 'sku_id'
                                        AND p.brand = e.brand AND p.sku_id = e.object_value AND p.is_current
     WHERE e.brand = aipl_rule_signals.brand AND e.dt > aipl_rule_signals.from_date - r.lookback_days
       AND e.dt <= aipl_rule_signals.to_date
       AND (r.object_filter = 'any'
            OR (r.object_filter = 'own_brand' AND p.product_brand = coalesce(r.object_value, e.brand))
            OR (r.object_filter = 'category' AND r.object_value IN (p.category_l1, p.category_l2, p.category_l3, p.category_l4)))
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT r.stage, r.rule_name, t.customer_key, t.dt, count(*), 0
      FROM r JOIN retail_mid.dwd_marketing_touch_di t ON r.source = 'touch' AND t.touch_type = ANY (r.signal_types)
     WHERE t.brand = aipl_rule_signals.brand AND t.dt > aipl_rule_signals.from_date - r.lookback_days
       AND t.dt <= aipl_rule_signals.to_date
     GROUP BY 1, 2, 3, 4
    UNION ALL
    -- an order day counts once however many baskets it has
    SELECT r.stage, r.rule_name, c.customer_key, c.dt, 1::bigint, c.net_amount
      FROM r JOIN retail_mid.dws_trade_customer_1d c ON r.source = 'order' AND r.object_filter = 'any'
     WHERE c.brand = aipl_rule_signals.brand AND c.orders > 0
       AND c.dt > aipl_rule_signals.from_date - r.lookback_days AND c.dt <= aipl_rule_signals.to_date
    UNION ALL
    SELECT r.stage, r.rule_name, l.customer_key, l.dt, 1::bigint, sum(l.amount)
      FROM r JOIN retail_mid.dwd_trade_order_line_di l ON r.source = 'order' AND r.object_filter <> 'any'
      JOIN retail_mid.dim_product p ON p.brand = l.brand AND p.sku_id = l.sku_id AND p.is_current
     WHERE l.brand = aipl_rule_signals.brand AND l.line_type = 'sale' AND l.customer_key IS NOT NULL
       AND l.dt > aipl_rule_signals.from_date - r.lookback_days AND l.dt <= aipl_rule_signals.to_date
       AND ((r.object_filter = 'own_brand' AND p.product_brand = coalesce(r.object_value, l.brand))
            OR (r.object_filter = 'category' AND r.object_value IN (p.category_l1, p.category_l2, p.category_l3, p.category_l4)))
     GROUP BY 1, 2, 3, 4;
END;
COMMENT ON FUNCTION retail_mid.aipl_rule_signals(text, date, date) IS 'Daily AIPL signals of a brand per rule and customer from the public layer (dwd_behavior_event_di, dwd_marketing_touch_di, dws_trade_customer_1d, dwd_trade_order_line_di): event counts, touches, or 1 per order day; the days the rules'' windows need.';

-- One rule's daily holders: the C aggregate of consumer/aipl.c (sorts each customer's signals and sweeps the window).
CREATE FUNCTION retail_mid.aipl_window_agg_trans(internal, int4, date, int8, float8, date, date, int4, int8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'aipl_window_agg_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.aipl_window_agg_trans(internal, int4, date, int8, float8, date, date, int4, int8, float8) IS 'Transition function of aipl_window_agg.';
CREATE FUNCTION retail_mid.aipl_window_agg_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'aipl_window_agg_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.aipl_window_agg_combine(internal, internal) IS 'Combine function of aipl_window_agg (appends the signals).';
CREATE FUNCTION retail_mid.aipl_window_agg_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'aipl_window_agg_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.aipl_window_agg_serialize(internal) IS 'Serial function of aipl_window_agg.';
CREATE FUNCTION retail_mid.aipl_window_agg_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'aipl_window_agg_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.aipl_window_agg_deserialize(bytea, internal) IS 'Deserial function of aipl_window_agg (validates the bytes).';
CREATE FUNCTION retail_mid.aipl_window_agg_final(internal)
RETURNS retail_mid.rbitmap[] AS 'MODULE_PATHNAME', 'aipl_window_agg_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.aipl_window_agg_final(internal) IS 'Final function of aipl_window_agg: the holders of each day.';
CREATE AGGREGATE retail_mid.aipl_window_agg(customer_key int4, dt date, n int8, amount float8, from_date date, to_date date,
                                            lookback_days int4, min_count int8, min_amount float8) (
    SFUNC = retail_mid.aipl_window_agg_trans, STYPE = internal, FINALFUNC = retail_mid.aipl_window_agg_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = retail_mid.aipl_window_agg_combine,
    SERIALFUNC = retail_mid.aipl_window_agg_serialize, DESERIALFUNC = retail_mid.aipl_window_agg_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.aipl_window_agg(int4, date, int8, float8, date, date, int4, int8, float8) IS 'One AIPL rule over daily signals (one row per customer and day: count n, amount): element i of the result is the bitmap of the customers whose signals in (day - lookback_days, day] reach min_count and min_amount, day = from_date + i - 1; the parameters must be the same on every row.';

-- Rebuilds the stage bitmaps of [from_date, to_date]: per rule the holders of each day (aipl_window_agg), ORed per
-- stage, then each customer kept in its highest stage only.
CREATE OR REPLACE FUNCTION retail_mid.aipl_refresh(brand text, from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; v_rows bigint; v_bitmaps bigint; v_rules bigint; b text := brand;
BEGIN
    IF brand IS NULL OR from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'aipl_refresh arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'aipl_refresh range must run forwards and span at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('aipl_refresh', jsonb_build_object('brand', brand, 'from_date', from_date, 'to_date', to_date));
    SELECT count(*) INTO v_rules FROM retail_mid.aipl_rules_of(b);
    RAISE NOTICE 'aipl_refresh: brand %, % days, % rules', b, to_date - from_date + 1, v_rules;
    DELETE FROM retail_mid.dws_aipl_stage_bitmap_1d s WHERE s.brand = b AND s.dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_aipl_stage_bitmap_1d (brand, dt, stage, customers, members)
    WITH held AS (
        SELECT s.stage, retail_mid.aipl_window_agg(s.customer_key, s.dt, s.n, s.amount::float8, from_date, to_date,
                                                   r.lookback_days, r.min_count::int8, r.min_amount::float8) AS days
          FROM retail_mid.aipl_rule_signals(b, from_date, to_date) s
          JOIN retail_mid.aipl_rules_of(b) r ON r.stage = s.stage AND r.rule_name = s.rule_name
         GROUP BY s.stage, s.rule_name, r.lookback_days, r.min_count, r.min_amount),
    per_day AS (
        SELECT d.i, retail_mid.rb_or_agg(d.bm) FILTER (WHERE h.stage = 'A') AS a, retail_mid.rb_or_agg(d.bm) FILTER (WHERE h.stage = 'I') AS i_,
               retail_mid.rb_or_agg(d.bm) FILTER (WHERE h.stage = 'P') AS p, retail_mid.rb_or_agg(d.bm) FILTER (WHERE h.stage = 'L') AS l
          FROM held h CROSS JOIN LATERAL unnest(h.days) WITH ORDINALITY AS d(bm, i)
         GROUP BY d.i),
    nonempty AS (
        SELECT p.i, coalesce(p.a, '{}') AS a, coalesce(p.i_, '{}') AS i_, coalesce(p.p, '{}') AS p, coalesce(p.l, '{}') AS l
          FROM per_day p),
    excl AS (
        SELECT from_date + (n.i - 1)::int AS dt, x.stage, x.bm
          FROM nonempty n CROSS JOIN LATERAL (VALUES
               ('L', n.l),
               ('P', retail_mid.rb_andnot(n.p, n.l)),
               ('I', retail_mid.rb_andnot(n.i_, retail_mid.rb_or(n.p, n.l))),
               ('A', retail_mid.rb_andnot(n.a, retail_mid.rb_or(n.i_, retail_mid.rb_or(n.p, n.l))))) AS x(stage, bm))
    SELECT b, e.dt, e.stage, e.bm, retail_mid.rb_cardinality(e.bm) FROM excl e WHERE NOT retail_mid.rb_is_empty(e.bm);
    GET DIAGNOSTICS v_bitmaps = ROW_COUNT;
    SELECT coalesce(sum(s.members), 0) INTO v_rows FROM retail_mid.dws_aipl_stage_bitmap_1d s
     WHERE s.brand = b AND s.dt BETWEEN from_date AND to_date;
    RAISE NOTICE 'aipl_refresh: % customer-days in % bitmaps for brand % from % to %', v_rows, v_bitmaps, b, from_date, to_date;
    PERFORM retail_mid.job_finish(v_job, v_rows);
    RETURN v_rows;
END;
$$;
COMMENT ON FUNCTION retail_mid.aipl_refresh(text, date, date) IS 'Rebuilds the AIPL stage bitmaps of a brand for the given days (idempotent); returns the customer-days staged.';

-- The stage of one customer on one day ('-' for none), from the bitmaps.
CREATE FUNCTION retail_mid.aipl_stage_of(brand text, dt date, customer_key int4)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce((SELECT s.stage::text FROM retail_mid.dws_aipl_stage_bitmap_1d s
                      WHERE s.brand = aipl_stage_of.brand AND s.dt = aipl_stage_of.dt
                        AND retail_mid.rb_contains(s.customers, aipl_stage_of.customer_key)), '-');
END;
COMMENT ON FUNCTION retail_mid.aipl_stage_of(text, date, int4) IS 'AIPL stage (A, I, P, L; - for none) of a customer of a brand on a day, from the stage bitmaps.';

-- Customers per stage on day d1 against their stage on day d2 ('-' = no stage): intersections of the bitmaps.
CREATE OR REPLACE FUNCTION retail_mid.aipl_flow(brand text, d1 date, d2 date)
RETURNS TABLE (from_stage text, to_stage text, customers bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH a AS (SELECT s.stage::text AS stage, s.customers FROM retail_mid.dws_aipl_stage_bitmap_1d s
                WHERE s.brand = aipl_flow.brand AND s.dt = aipl_flow.d1),
         z AS (SELECT s.stage::text AS stage, s.customers FROM retail_mid.dws_aipl_stage_bitmap_1d s
                WHERE s.brand = aipl_flow.brand AND s.dt = aipl_flow.d2),
         ua AS (SELECT coalesce(retail_mid.rb_or_agg(a.customers), '{}') AS u FROM a),
         uz AS (SELECT coalesce(retail_mid.rb_or_agg(z.customers), '{}') AS u FROM z),
         f AS (SELECT a.stage AS from_stage, z.stage AS to_stage, retail_mid.rb_and_cardinality(a.customers, z.customers) AS customers
                 FROM a CROSS JOIN z
               UNION ALL
               SELECT a.stage, '-', retail_mid.rb_andnot_cardinality(a.customers, uz.u) FROM a CROSS JOIN uz
               UNION ALL
               SELECT '-', z.stage, retail_mid.rb_andnot_cardinality(z.customers, ua.u) FROM z CROSS JOIN ua)
    SELECT f.from_stage, f.to_stage, f.customers FROM f WHERE f.customers > 0;
END;
COMMENT ON FUNCTION retail_mid.aipl_flow(text, date, date) IS 'AIPL flow: customers by stage on d1 and stage on d2 (''-'' for no stage), from the stage bitmaps.';

CREATE OR REPLACE VIEW retail_mid.aipl_trend_30d WITH (security_invoker = true) AS
SELECT s.brand, s.dt, coalesce(sum(s.members) FILTER (WHERE s.stage = 'A'), 0)::bigint AS awareness,
       coalesce(sum(s.members) FILTER (WHERE s.stage = 'I'), 0)::bigint AS interest,
       coalesce(sum(s.members) FILTER (WHERE s.stage = 'P'), 0)::bigint AS purchase,
       coalesce(sum(s.members) FILTER (WHERE s.stage = 'L'), 0)::bigint AS loyalty
  FROM retail_mid.dws_aipl_stage_bitmap_1d s
  JOIN (SELECT brand, max(dt) AS last_dt FROM retail_mid.dws_aipl_stage_bitmap_1d GROUP BY brand) m
    ON m.brand = s.brand AND s.dt > m.last_dt - 30
 GROUP BY s.brand, s.dt;
COMMENT ON VIEW retail_mid.aipl_trend_30d IS 'Customers per AIPL stage per day over the last 30 days of each brand''s history (the cardinalities of the stage bitmaps).';

-- GMV = sum over stages of (customers in the stage at the start x conversion rate x average transaction value):
-- the customers of each stage on from_date, the share of them that bought in (from_date, to_date], and their
-- average net amount per buyer. The parts add up to the GMV of those customers in the period exactly.
CREATE OR REPLACE FUNCTION retail_mid.aipl_gmv_decomposition(brand text, from_date date, to_date date)
RETURNS TABLE (stage text, customers bigint, buyers bigint, conversion_rate numeric, avg_transaction_value numeric, gmv numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.stage::text, count(*), count(g.customer_key), round(count(g.customer_key)::numeric / count(*), 6),
           round(sum(g.net) / nullif(count(g.customer_key), 0), 4), coalesce(sum(g.net), 0)
      FROM retail_mid.dws_aipl_stage_bitmap_1d b
     CROSS JOIN LATERAL (SELECT b.stage, k.customer_key FROM retail_mid.rb_iterate(b.customers) AS k(customer_key)) s
      LEFT JOIN (SELECT c.customer_key, sum(c.net_amount) AS net FROM retail_mid.dws_trade_customer_1d c
                  WHERE c.brand = aipl_gmv_decomposition.brand AND c.dt > aipl_gmv_decomposition.from_date
                    AND c.dt <= aipl_gmv_decomposition.to_date
                  GROUP BY c.customer_key HAVING sum(c.orders) > 0) g ON g.customer_key = s.customer_key
     WHERE b.brand = aipl_gmv_decomposition.brand AND b.dt = aipl_gmv_decomposition.from_date
     GROUP BY s.stage ORDER BY array_position(ARRAY['A', 'I', 'P', 'L'], s.stage::text);
END;
COMMENT ON FUNCTION retail_mid.aipl_gmv_decomposition(text, date, date) IS 'GMV of (from_date, to_date] decomposed by the customers'' AIPL stage on from_date (the stage bitmaps): customers x conversion rate x average transaction value per stage.';

CREATE OR REPLACE VIEW retail_mid.aipl_customer_current WITH (security_invoker = true) AS
SELECT s.customer_key, s.stage::text AS stage, s.brand, s.dt
  FROM retail_mid.dws_aipl_customer_stage_1d s
  JOIN (SELECT brand, max(dt) AS dt FROM retail_mid.dws_aipl_stage_bitmap_1d GROUP BY brand) l USING (brand, dt);
CREATE OR REPLACE VIEW retail_mid.dash_aipl_trend WITH (security_invoker = true) AS
SELECT s.brand, s.dt, s.stage::text AS stage,
       CASE s.stage WHEN 'A' THEN 'awareness' WHEN 'I' THEN 'interest' WHEN 'P' THEN 'purchase' ELSE 'loyalty' END AS stage_name,
       s.members AS customers
  FROM retail_mid.dws_aipl_stage_bitmap_1d s;
CREATE OR REPLACE VIEW retail_mid.dash_aipl_flow WITH (security_invoker = true) AS
WITH days AS (
    SELECT d.brand, d.dt, (SELECT max(p.dt) FROM retail_mid.dws_aipl_stage_bitmap_1d p WHERE p.brand = d.brand AND p.dt < d.dt) AS from_dt
      FROM (SELECT s.brand, s.dt FROM retail_mid.dws_aipl_stage_bitmap_1d s GROUP BY s.brand, s.dt) d
)
SELECT d.brand, d.from_dt, d.dt, f.from_stage, f.to_stage, f.customers
  FROM days d CROSS JOIN LATERAL retail_mid.aipl_flow(d.brand, d.from_dt, d.dt) f
 WHERE d.from_dt IS NOT NULL;
CREATE OR REPLACE VIEW retail_mid.dash_aipl_gmv WITH (security_invoker = true) AS
SELECT b.brand, b.from_date, b.to_date, g.stage, g.customers, g.buyers, g.conversion_rate, g.avg_transaction_value, g.gmv,
       round(g.gmv / nullif(sum(g.gmv) OVER (PARTITION BY b.brand), 0), 6) AS gmv_share
  FROM (SELECT s.brand, greatest(min(s.dt), max(s.dt) - 30) AS from_date, max(s.dt) AS to_date
          FROM retail_mid.dws_aipl_stage_bitmap_1d s GROUP BY s.brand) b
 CROSS JOIN LATERAL retail_mid.aipl_gmv_decomposition(b.brand, b.from_date, b.to_date) g;
ALTER EXTENSION retail_mid DROP TABLE retail_mid.dws_aipl_customer_stage_1d_v10;
DROP TABLE retail_mid.dws_aipl_customer_stage_1d_v10;
-- security, as governance/lockdown.sql gives it to the relations of a fresh install
SELECT retail_mid.secure_brand_table('retail_mid.dws_aipl_stage_bitmap_1d'::regclass);
SELECT retail_mid.security_grant(t)
  FROM unnest(ARRAY['retail_mid.dws_aipl_stage_bitmap_1d', 'retail_mid.dws_aipl_customer_stage_1d']::regclass[]) t;
-- BI reads the base tables of the brand views it reads
GRANT SELECT ON retail_mid.dws_aipl_stage_bitmap_1d TO retail_mid_bi;

-- issue 14: a sharded deployment on postgres_fdw (src/shard/shard.sql, docs/shards.md)
-- shard/shard.sql: a sharded deployment on postgres_fdw: one coordinator and N shard servers (docs/shards.md).
--
-- The coordinator owns the customer key dictionary and the global settings; it routes ODS rows to the shard that
-- owns their customer (a hash of the customer key, PostgreSQL's own hash partitioning) or their SKU x store series
-- (a hash of the series); every shard runs the whole pipeline on its own rows; the coordinator sees the shards'
-- customer tables as hash partitions of one table (postgres_fdw foreign tables, server option extensions
-- 'retail_mid' so that whole per-customer aggregates run on the shards) and their per-store tables as views with a
-- shard column. Installed last but one: it secures what it creates with governance/security.sql. postgres_fdw is
-- not required by CREATE EXTENSION; shard_add creates it when a first shard is added.

CREATE TABLE retail_mid.shard (
    shard_no  int4 PRIMARY KEY CHECK (shard_no >= 0),
    server    text NOT NULL UNIQUE CHECK (server ~ '^[a-z_][a-z0-9_]*$'),
    host      text NOT NULL,
    port      int4 NOT NULL CHECK (port BETWEEN 1 AND 65535),
    dbname    text NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now()
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard', '');
COMMENT ON TABLE retail_mid.shard IS 'The shards of a sharded deployment, on its coordinator (docs/shards.md): shard number (the remainder of the hash partitioning), the postgres_fdw server and where it runs. Empty on a single server and on the shards.';
COMMENT ON COLUMN retail_mid.shard.shard_no IS 'Shard number 0 .. N-1: the remainder of the hash partitioning (modulus N) of the customers and series it owns.';
COMMENT ON COLUMN retail_mid.shard.server IS 'Name of the postgres_fdw foreign server created by shard_add.';
COMMENT ON COLUMN retail_mid.shard.host IS 'Host of the shard''s PostgreSQL (a name, an address or a socket directory).';
COMMENT ON COLUMN retail_mid.shard.port IS 'Port of the shard''s PostgreSQL.';
COMMENT ON COLUMN retail_mid.shard.dbname IS 'Database of the shard (retail_mid installed in it).';
COMMENT ON COLUMN retail_mid.shard.added_at IS 'When shard_add registered the shard.';

-- The hash of PostgreSQL's hash partitioning, through satisfies_hash_partition on these two empty parents: the
-- coordinator's partitioned tables use the same bounds, so routing and partition pruning always agree.
CREATE TABLE retail_mid.shard_customer_route (customer_key int4) PARTITION BY HASH (customer_key);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard_customer_route', '');  -- empty; listed like every table
COMMENT ON TABLE retail_mid.shard_customer_route IS 'Empty, never written: its hash partition key (customer_key) defines which shard owns a customer (shard_of_customer).';
COMMENT ON COLUMN retail_mid.shard_customer_route.customer_key IS 'Customer key (the partition key).';
CREATE TABLE retail_mid.shard_series_route (brand text, store_id text, sku_id text) PARTITION BY HASH (brand, store_id, sku_id);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard_series_route', '');
COMMENT ON TABLE retail_mid.shard_series_route IS 'Empty, never written: its hash partition key (brand, store_id, sku_id) defines which shard owns a SKU x store series (shard_of_series).';
COMMENT ON COLUMN retail_mid.shard_series_route.brand IS 'Brand.';
SELECT retail_mid.secure_brand_table('retail_mid.shard_series_route');
COMMENT ON COLUMN retail_mid.shard_series_route.store_id IS 'Store (site) id.';
COMMENT ON COLUMN retail_mid.shard_series_route.sku_id IS 'SKU id.';

CREATE FUNCTION retail_mid.shard_of_customer(customer_key int4, shards int4)
RETURNS int4 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF shards IS NULL OR shards < 1 OR shards > 1024 THEN
        RAISE EXCEPTION 'shards must be between 1 and 1024' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN 0 .. shards - 1 LOOP
        IF pg_catalog.satisfies_hash_partition('retail_mid.shard_customer_route'::regclass, shards, r, customer_key) THEN
            RETURN r;
        END IF;
    END LOOP;
    RETURN NULL;  -- not reached
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_of_customer(int4, int4) IS 'The shard (0 .. shards-1) owning a customer key: PostgreSQL''s hash partitioning of int4 with that modulus (so the coordinator''s partitions prune correctly); a NULL key (anonymous orders) is owned by the shard PostgreSQL gives NULL to.';

CREATE FUNCTION retail_mid.shard_of_series(brand text, store_id text, sku_id text, shards int4)
RETURNS int4 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF shards IS NULL OR shards < 1 OR shards > 1024 THEN
        RAISE EXCEPTION 'shards must be between 1 and 1024' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN 0 .. shards - 1 LOOP
        IF pg_catalog.satisfies_hash_partition('retail_mid.shard_series_route'::regclass, shards, r, brand, store_id, sku_id) THEN
            RETURN r;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_of_series(text, text, text, int4) IS 'The shard (0 .. shards-1) owning a SKU x store series of a brand: PostgreSQL''s hash partitioning of (brand, store_id, sku_id) with that modulus.';

-- On every node: what the coordinator writes through postgres_fdw where a column is GENERATED ALWAYS (the keys of
-- the coordinator's dictionary and its load ids must arrive unchanged).
CREATE VIEW retail_mid.shard_key_import WITH (security_invoker = true) AS
SELECT customer_key, id_type, issuer, id_value, created_at FROM retail_mid.customer_key WHERE false;
COMMENT ON VIEW retail_mid.shard_key_import IS 'Write-only entry of a shard''s key dictionary: the coordinator inserts its keys here (through postgres_fdw) and they are stored with the same numbers; a key that exists with another identifier is error 22000. Reads return nothing.';
COMMENT ON COLUMN retail_mid.shard_key_import.customer_key IS 'Key given by the coordinator.';
COMMENT ON COLUMN retail_mid.shard_key_import.id_type IS 'Identifier type.';
COMMENT ON COLUMN retail_mid.shard_key_import.issuer IS 'Issuer (namespace) of the identifier.';
COMMENT ON COLUMN retail_mid.shard_key_import.id_value IS 'The identifier.';
COMMENT ON COLUMN retail_mid.shard_key_import.created_at IS 'When the coordinator gave the key.';

CREATE FUNCTION retail_mid.shard_key_import_row() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO retail_mid.customer_key (customer_key, id_type, issuer, id_value, created_at) OVERRIDING SYSTEM VALUE
    VALUES (NEW.customer_key, NEW.id_type, coalesce(NEW.issuer, ''), NEW.id_value, coalesce(NEW.created_at, now()))
    ON CONFLICT DO NOTHING;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                    WHERE k.customer_key = NEW.customer_key AND k.id_type = NEW.id_type
                      AND k.issuer = coalesce(NEW.issuer, '') AND k.id_value = NEW.id_value) THEN
        RAISE EXCEPTION 'key % of the coordinator''s dictionary is another identifier on this shard', NEW.customer_key
            USING ERRCODE = 'data_exception',
                  DETAIL = format('Coordinator: %s %s (issuer %L).', NEW.id_type, NEW.id_value, NEW.issuer),
                  HINT = 'Keys of a shard are given by its coordinator only; see docs/shards.md.';
    END IF;
    -- a key made here later (it should not be) cannot take a number the coordinator gave
    PERFORM setval('retail_mid.customer_key_customer_key_seq', NEW.customer_key)
       FROM retail_mid.customer_key_customer_key_seq s WHERE s.last_value < NEW.customer_key OR NOT s.is_called;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_key_import_row() IS 'INSTEAD OF INSERT trigger of shard_key_import: stores the coordinator''s key unchanged (OVERRIDING SYSTEM VALUE), checks that it agrees with the shard''s dictionary, and keeps the key sequence above it.';
CREATE TRIGGER shard_key_import INSTEAD OF INSERT ON retail_mid.shard_key_import
    FOR EACH ROW EXECUTE FUNCTION retail_mid.shard_key_import_row();

CREATE VIEW retail_mid.shard_load_import WITH (security_invoker = true) AS
SELECT load_id, source, path, brand, loaded_at, rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.ods_load WHERE false;
COMMENT ON VIEW retail_mid.shard_load_import IS 'Write-only entry of a shard''s ods_load: the coordinator inserts its loads here (through postgres_fdw) with the same load ids. Reads return nothing.';
COMMENT ON COLUMN retail_mid.shard_load_import.load_id IS 'Load id given by the coordinator.';
COMMENT ON COLUMN retail_mid.shard_load_import.source IS 'Source of the load.';
COMMENT ON COLUMN retail_mid.shard_load_import.path IS 'Path or description of the load.';
COMMENT ON COLUMN retail_mid.shard_load_import.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.shard_load_import.loaded_at IS 'When the coordinator loaded it.';
COMMENT ON COLUMN retail_mid.shard_load_import.rows_read IS 'Rows read (on the coordinator).';
COMMENT ON COLUMN retail_mid.shard_load_import.rows_loaded IS 'Rows loaded (on the coordinator).';
COMMENT ON COLUMN retail_mid.shard_load_import.rows_rejected IS 'Rows rejected (on the coordinator).';
COMMENT ON COLUMN retail_mid.shard_load_import.rejects IS 'Rejects by reason (on the coordinator).';

CREATE FUNCTION retail_mid.shard_load_import_row() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO retail_mid.ods_load (load_id, source, path, brand, loaded_at, rows_read, rows_loaded, rows_rejected, rejects)
    OVERRIDING SYSTEM VALUE
    VALUES (NEW.load_id, NEW.source, NEW.path, NEW.brand, coalesce(NEW.loaded_at, now()), coalesce(NEW.rows_read, 0),
            coalesce(NEW.rows_loaded, 0), coalesce(NEW.rows_rejected, 0), coalesce(NEW.rejects, '{}'))
    ON CONFLICT (load_id) DO NOTHING;
    PERFORM setval('retail_mid.ods_load_load_id_seq', NEW.load_id)
       FROM retail_mid.ods_load_load_id_seq s WHERE s.last_value < NEW.load_id OR NOT s.is_called;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_load_import_row() IS 'INSTEAD OF INSERT trigger of shard_load_import: stores the coordinator''s load with its load id (OVERRIDING SYSTEM VALUE) and keeps the load id sequence above it.';
CREATE TRIGGER shard_load_import INSTEAD OF INSERT ON retail_mid.shard_load_import
    FOR EACH ROW EXECUTE FUNCTION retail_mid.shard_load_import_row();

-- What the coordinator sees of the shards, and how. Customer tables: hash partitions on customer_key. Per-store
-- and per-series tables, partial per shard (every shard sells every SKU to its own customers): a view with the
-- shard number. ODS: foreign tables per shard, written by shard_load. Global: written by shard_sync_global.
CREATE FUNCTION retail_mid.shard_tables(kind text)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind
    WHEN 'customer' THEN ARRAY['dwd_trade_order_line_di', 'dws_trade_customer_1d', 'dws_trade_customer_td',
                               'dws_aipl_customer_stage_1d', 'rfm_snapshot', 'customer_brand']
    WHEN 'partial' THEN ARRAY['dws_trade_store_1d', 'dws_trade_sku_store_1d', 'dws_trade_store_td', 'dws_trade_sku_store_td',
                              'dwd_trade_cleaning_1d', 'tag_bitmap', 'quality_result', 'job_log']
    WHEN 'ods_customer' THEN ARRAY['ods_customer', 'ods_customer_identifier', 'ods_order', 'ods_order_line',
                                   'ods_behavior_event', 'ods_campaign_touch']
    WHEN 'ods_series' THEN ARRAY['ods_inventory_snapshot', 'ods_inbound_shipment']
    WHEN 'ods_reference' THEN ARRAY['ods_product', 'ods_site', 'ods_promotion', 'ods_campaign', 'ods_demand_zone']
    WHEN 'global' THEN ARRAY['brand_entitlement', 'rfm_segment_map_def', 'rfm_segment_map', 'rfm_config', 'aipl_rule',
                             'tag_taxonomy', 'tag_definition']
    WHEN 'import' THEN ARRAY['shard_key_import', 'shard_load_import']
END;
COMMENT ON FUNCTION retail_mid.shard_tables(text) IS 'The tables of each kind in a sharded deployment: customer (hash partitions on the coordinator), partial (views with a shard column), ods_customer (routed by customer key), ods_series (routed by series), ods_reference (copied to every shard), global (kept in step by shard_sync_global), import (write-only entries); NULL for another kind.';

CREATE FUNCTION retail_mid.shard_count()
RETURNS int4 LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n int4; m int4;
BEGIN
    SELECT count(*), max(shard_no) INTO n, m FROM retail_mid.shard;
    IF n = 0 THEN
        RAISE EXCEPTION 'no shard is registered' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Add the shards with retail_mid.shard_add on the coordinator first.';
    END IF;
    IF m <> n - 1 THEN
        RAISE EXCEPTION 'shard numbers must be 0 .. %', n - 1 USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_count() IS 'The number of registered shards (the modulus of the hash partitioning); error 55000 when there is none.';

-- The column list of a local table, for a foreign table of the same shape.
CREATE FUNCTION retail_mid.shard_columns(tbl regclass)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
END;
COMMENT ON FUNCTION retail_mid.shard_columns(regclass) IS 'Column definitions of a table (name and type, in order), for the foreign tables of the shards.';

-- Registers a shard: the postgres_fdw server (extensions 'retail_mid', async_capable), the user mapping, and the
-- foreign tables of the ODS, import and global tables (schema retail_mid_dist, suffix _s<shard_no>).
CREATE FUNCTION retail_mid.shard_add(server text, host text, port int4, dbname text, user_name text DEFAULT NULL,
                                     password text DEFAULT NULL)
RETURNS int4 LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_no int4; t text; v_user text := coalesce(user_name, CURRENT_USER::text);
BEGIN
    IF server IS NULL OR host IS NULL OR port IS NULL OR dbname IS NULL THEN
        RAISE EXCEPTION 'shard_add arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF server !~ '^[a-z_][a-z0-9_]*$' OR length(server) > 50 THEN
        RAISE EXCEPTION 'invalid shard server name "%"', server USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use lower-case letters, digits and underscores, at most 50 characters.';
    END IF;
    IF port NOT BETWEEN 1 AND 65535 THEN
        RAISE EXCEPTION 'port % is out of range', port USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.shard s WHERE s.server = shard_add.server) THEN
        RAISE EXCEPTION 'shard "%" is already registered', server USING ERRCODE = 'duplicate_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'postgres_fdw') THEN
        RAISE EXCEPTION 'postgres_fdw is not installed' USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'A sharded deployment reads its shards through PostgreSQL''s postgres_fdw.',
            HINT = 'Install PostgreSQL''s contrib modules (in Debian they are part of the postgresql-15 package).';
    END IF;
    CREATE EXTENSION IF NOT EXISTS postgres_fdw;
    SELECT coalesce(max(shard_no) + 1, 0) INTO v_no FROM retail_mid.shard;
    EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L, '
                   'extensions %L, async_capable %L, fetch_size %L, batch_size %L, application_name %L)',
                   server, host, port::text, dbname, 'retail_mid', 'true', '10000', '1000', 'retail_mid coordinator');
    -- every coordinator user reads the shards as this user: brand isolation is applied on the coordinator
    IF password IS NULL THEN
        EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L, password_required %L)', server, v_user, 'false');
    ELSE
        EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L, password %L)', server, v_user, password);
    END IF;
    CREATE SCHEMA IF NOT EXISTS retail_mid_dist;
    COMMENT ON SCHEMA retail_mid_dist IS 'The shards as seen from the coordinator (docs/shards.md): customer tables as hash partitions, per-store tables as views with a shard column, the foreign tables of each shard (suffix _s<shard_no>).';
    FOREACH t IN ARRAY retail_mid.shard_tables('ods_customer') || retail_mid.shard_tables('ods_series')
                       || retail_mid.shard_tables('ods_reference') || retail_mid.shard_tables('global')
                       || retail_mid.shard_tables('import') || retail_mid.shard_tables('partial') LOOP
        EXECUTE format('CREATE FOREIGN TABLE retail_mid_dist.%I (%s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                       t || '_s' || v_no, retail_mid.shard_columns(format('retail_mid.%I', t)::regclass), server, 'retail_mid', t);
        EXECUTE format('REVOKE ALL ON retail_mid_dist.%I FROM PUBLIC', t || '_s' || v_no);
    END LOOP;
    INSERT INTO retail_mid.shard (shard_no, server, host, port, dbname) VALUES (v_no, server, host, port, dbname);
    RAISE NOTICE 'shard_add: shard % is server % (%:%, database %)', v_no, server, host, port, dbname;
    RETURN v_no;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_add(text, text, int4, text, text, text) IS 'On the coordinator: registers a shard (retail_mid installed there) as the next shard number; creates postgres_fdw when missing (error 55000 when it is not installed), the foreign server (extensions retail_mid, async_capable), a user mapping for every user, and the foreign tables of the shard in schema retail_mid_dist. Without a password the mapping does not require one (superuser only). Returns the shard number.';

-- Builds the coordinator's view of every shard: one partitioned table per customer table (hash on customer_key,
-- a foreign partition per shard) and one view per partial table, brand-isolated and granted like on one server.
CREATE FUNCTION retail_mid.shard_attach_tables()
RETURNS int4 LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n int4 := retail_mid.shard_count(); t text; s record; v_union text; v_made int4 := 0;
BEGIN
    FOREACH t IN ARRAY retail_mid.shard_tables('customer') LOOP
        EXECUTE format('DROP TABLE IF EXISTS retail_mid_dist.%I CASCADE', t);
        EXECUTE format('CREATE TABLE retail_mid_dist.%I (LIKE retail_mid.%I) PARTITION BY HASH (customer_key)', t, t);
        FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
            EXECUTE format('CREATE FOREIGN TABLE retail_mid_dist.%I PARTITION OF retail_mid_dist.%I '
                           'FOR VALUES WITH (MODULUS %s, REMAINDER %s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                           t || '_p' || s.shard_no, t, n, s.shard_no, s.server, 'retail_mid', t);
            EXECUTE format('REVOKE ALL ON retail_mid_dist.%I FROM PUBLIC', t || '_p' || s.shard_no);
        END LOOP;
        EXECUTE format('COMMENT ON TABLE retail_mid_dist.%I IS %L', t,
                       format('retail_mid.%s of every shard: hash partitions on customer_key over postgres_fdw (built by shard_attach_tables).', t));
        PERFORM retail_mid.secure_brand_table(format('retail_mid_dist.%I', t)::regclass);
        EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin, retail_mid_analyst, retail_mid_bi', t);
        v_made := v_made + 1;
    END LOOP;
    FOREACH t IN ARRAY retail_mid.shard_tables('partial') LOOP
        SELECT string_agg(format('SELECT %s AS shard_no, * FROM retail_mid_dist.%I', sh.shard_no, t || '_s' || sh.shard_no),
                          ' UNION ALL ' ORDER BY sh.shard_no) INTO v_union FROM retail_mid.shard sh;
        EXECUTE format('DROP VIEW IF EXISTS retail_mid_dist.%I', t);
        -- the shards' rows carry no row-level security across postgres_fdw: the view filters by brand itself
        EXECUTE format('CREATE VIEW retail_mid_dist.%I WITH (security_barrier) AS SELECT * FROM (%s) u %s', t, v_union,
                       CASE WHEN t IN ('quality_result', 'job_log') THEN 'WHERE pg_catalog.pg_has_role(CURRENT_USER, ''retail_mid_admin'', ''USAGE'')'
                            ELSE 'WHERE retail_mid.brand_visible(u.brand)' END);
        EXECUTE format('COMMENT ON VIEW retail_mid_dist.%I IS %L', t,
                       format('retail_mid.%s of every shard with its shard number (each shard''s part, over postgres_fdw; sum or OR them for the whole); brand-isolated.', t));
        EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin, retail_mid_analyst, retail_mid_bi', t);
        v_made := v_made + 1;
    END LOOP;
    GRANT USAGE ON SCHEMA retail_mid_dist TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
    -- whole per-customer aggregates run on the shards only with partitionwise aggregation
    EXECUTE format('ALTER DATABASE %I SET enable_partitionwise_aggregate = on', current_database());
    SET enable_partitionwise_aggregate = on;
    RAISE NOTICE 'shard_attach_tables: % tables over % shards', v_made, n;
    RETURN v_made;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_attach_tables() IS 'On the coordinator: (re)builds schema retail_mid_dist: every customer table as a table hash-partitioned on customer_key whose partitions are the shards'' tables (postgres_fdw), every per-store table as a view of all shards with a shard_no column; both brand-isolated and readable by the shipped roles. Turns enable_partitionwise_aggregate on for the database. Returns the number of relations built.';

-- Gives a key to every customer identifier of the local ODS (a brand, or all), in one deterministic order; used
-- by shard_load before routing (the coordinator owns the dictionary).
CREATE FUNCTION retail_mid.shard_assign_keys(brand text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    SELECT retail_mid.assign_customer_keys(array_agg(x.t ORDER BY x.b, x.t, x.v), array_agg(x.v ORDER BY x.b, x.t, x.v),
                                           array_agg(x.b ORDER BY x.b, x.t, x.v)) INTO m
      FROM (SELECT c.id_type AS t, btrim(c.customer_id) AS v, c.brand AS b FROM retail_mid.ods_customer c
             WHERE shard_assign_keys.brand IS NULL OR c.brand = shard_assign_keys.brand
            UNION
            SELECT i.id_type, btrim(i.id_value), i.brand FROM retail_mid.ods_customer_identifier i
             WHERE shard_assign_keys.brand IS NULL OR i.brand = shard_assign_keys.brand
            UNION
            SELECT o.id_type, btrim(o.customer_id), o.brand FROM retail_mid.ods_order o
             WHERE o.id_type IS NOT NULL AND o.customer_id IS NOT NULL AND (shard_assign_keys.brand IS NULL OR o.brand = shard_assign_keys.brand)
            UNION
            SELECT e.id_type, btrim(e.id_value), e.brand FROM retail_mid.ods_behavior_event e
             WHERE shard_assign_keys.brand IS NULL OR e.brand = shard_assign_keys.brand
            UNION
            SELECT t.id_type, btrim(t.id_value), t.brand FROM retail_mid.ods_campaign_touch t
             WHERE shard_assign_keys.brand IS NULL OR t.brand = shard_assign_keys.brand) x
     WHERE x.v <> '';
    n := n + coalesce(m, 0);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_assign_keys(text) IS 'Gives keys to every customer identifier of the local ODS (of a brand, or all brands: customers, identifiers, orders, behaviour events, campaign touches) in a fixed order; returns how many keys were created. The coordinator''s first step of shard_load.';

-- The key of an identifier of a brand, for routing (NULL when anonymous or unknown).
CREATE FUNCTION retail_mid.shard_key_lookup(id_type text, id_value text, brand text)
RETURNS int4 LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT k.customer_key FROM retail_mid.customer_key k
     WHERE k.id_type = shard_key_lookup.id_type AND k.issuer = retail_mid.customer_key_issuer(shard_key_lookup.id_type, shard_key_lookup.brand)
       AND k.id_value = btrim(shard_key_lookup.id_value);
END;
COMMENT ON FUNCTION retail_mid.shard_key_lookup(text, text, text) IS 'The key of an identifier seen in a brand''s data, without creating it (NULL when there is none).';

-- Routes the local ODS rows of a brand to the shards and replaces the brand's ODS rows there; the keys first.
CREATE FUNCTION retail_mid.shard_load(brand text, keep_local boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int4 := retail_mid.shard_count(); b text := brand; s record; t text; v_job bigint; v_rows bigint; v_total bigint := 0;
    v_keys bigint; v_per jsonb := '{}'; v_where text; v_cols text;
BEGIN
    IF brand IS NULL OR keep_local IS NULL THEN
        RAISE EXCEPTION 'shard_load arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regclass('retail_mid_dist.ods_order_s0') IS NULL THEN
        RAISE EXCEPTION 'the shards'' foreign tables are missing' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Register the shards with retail_mid.shard_add.';
    END IF;
    v_job := retail_mid.job_start('shard_load', jsonb_build_object('brand', brand, 'shards', n));
    v_keys := retail_mid.shard_assign_keys(b);
    RAISE NOTICE 'shard_load: % new keys for brand %; routing to % shards', v_keys, b, n;

    -- the owner of each customer-keyed row: its identifier's key; order lines follow their order
    DROP TABLE IF EXISTS pg_temp.rm_shard_keys;
    CREATE TEMP TABLE rm_shard_keys ON COMMIT DROP AS
    SELECT k.customer_key, retail_mid.shard_of_customer(k.customer_key, n) AS shard_no FROM retail_mid.customer_key k;
    CREATE UNIQUE INDEX ON rm_shard_keys (customer_key);
    DROP TABLE IF EXISTS pg_temp.rm_shard_order;
    CREATE TEMP TABLE rm_shard_order ON COMMIT DROP AS
    SELECT o.order_id, retail_mid.shard_of_customer(retail_mid.shard_key_lookup(o.id_type, o.customer_id, o.brand), n) AS shard_no
      FROM retail_mid.ods_order o WHERE o.brand = b;
    CREATE UNIQUE INDEX ON rm_shard_order (order_id);
    ANALYZE rm_shard_keys; ANALYZE rm_shard_order;

    FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
        -- the brand's rows on the shard are replaced (children first)
        FOREACH t IN ARRAY ARRAY['ods_order_line', 'ods_order', 'ods_behavior_event', 'ods_campaign_touch', 'ods_campaign',
                                 'ods_promotion', 'ods_inventory_snapshot', 'ods_inbound_shipment', 'ods_customer_identifier',
                                 'ods_customer', 'ods_product', 'ods_site', 'ods_demand_zone'] LOOP
            EXECUTE format('DELETE FROM retail_mid_dist.%I WHERE brand = $1', t || '_s' || s.shard_no) USING b;
        END LOOP;
        -- keys of the shard's customers, and the loads
        EXECUTE format('INSERT INTO retail_mid_dist.%I SELECT k.customer_key, k.id_type, k.issuer, k.id_value, k.created_at
                          FROM retail_mid.customer_key k JOIN rm_shard_keys r USING (customer_key) WHERE r.shard_no = $1
                           AND NOT EXISTS (SELECT 1 FROM retail_mid_dist.%I x WHERE x.customer_key = k.customer_key)',
                       'shard_key_import_s' || s.shard_no, 'shard_key_import_s' || s.shard_no) USING s.shard_no;
        EXECUTE format('INSERT INTO retail_mid_dist.%I SELECT l.load_id, l.source, l.path, l.brand, l.loaded_at, l.rows_read,
                               l.rows_loaded, l.rows_rejected, l.rejects FROM retail_mid.ods_load l WHERE l.brand = $1',
                       'shard_load_import_s' || s.shard_no) USING b;
        v_rows := 0;
        FOREACH t IN ARRAY ARRAY['ods_site', 'ods_product', 'ods_demand_zone', 'ods_customer', 'ods_customer_identifier',
                                 'ods_order', 'ods_order_line', 'ods_promotion', 'ods_campaign', 'ods_campaign_touch',
                                 'ods_behavior_event', 'ods_inventory_snapshot', 'ods_inbound_shipment'] LOOP
            v_where := CASE t
                WHEN 'ods_customer' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.customer_id, x.brand))'
                WHEN 'ods_customer_identifier' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.id_value, x.brand))'
                WHEN 'ods_behavior_event' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.id_value, x.brand))'
                WHEN 'ods_campaign_touch' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.id_value, x.brand))'
                WHEN 'ods_order' THEN 'EXISTS (SELECT 1 FROM rm_shard_order r WHERE r.shard_no = $2 AND r.order_id = x.order_id)'
                WHEN 'ods_order_line' THEN 'EXISTS (SELECT 1 FROM rm_shard_order r WHERE r.shard_no = $2 AND r.order_id = x.order_id)'
                WHEN 'ods_inventory_snapshot' THEN 'retail_mid.shard_of_series(x.brand, x.site_id, x.sku_id, $3) = $2'
                WHEN 'ods_inbound_shipment' THEN 'retail_mid.shard_of_series(x.brand, x.site_id, x.sku_id, $3) = $2'
                ELSE 'true' END;
            SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY a.attnum) INTO v_cols
              FROM pg_attribute a WHERE a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
            EXECUTE format('INSERT INTO retail_mid_dist.%I SELECT %s FROM retail_mid.%I x WHERE x.brand = $1 AND %s',
                           t || '_s' || s.shard_no, v_cols, t, v_where) USING b, s.shard_no, n;
            GET DIAGNOSTICS v_total = ROW_COUNT;
            v_rows := v_rows + v_total;
        END LOOP;
        v_per := v_per || jsonb_build_object(s.server, v_rows);
        RAISE NOTICE 'shard_load: % ODS rows of brand % to shard % (%)', v_rows, b, s.shard_no, s.server;
    END LOOP;
    SELECT sum(value::bigint) INTO v_total FROM jsonb_each_text(v_per);
    IF NOT keep_local THEN
        FOREACH t IN ARRAY ARRAY['ods_order_line', 'ods_order', 'ods_behavior_event', 'ods_campaign_touch',
                                 'ods_inventory_snapshot', 'ods_inbound_shipment', 'ods_customer_identifier', 'ods_customer'] LOOP
            EXECUTE format('DELETE FROM retail_mid.%I WHERE brand = $1', t) USING b;
        END LOOP;
    END IF;
    PERFORM retail_mid.job_finish(v_job, v_total, jsonb_build_object('keys_created', v_keys, 'rows_per_shard', v_per));
    RETURN v_total;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_load(text, boolean) IS 'On the coordinator: gives keys to the brand''s identifiers in the local ODS, copies to each shard the keys it owns and the loads, replaces the brand''s ODS rows on every shard with the local ones routed by owner (customer rows by a hash of their key, order lines with their order, anonymous orders to the shard of the NULL key, inventory and shipments by a hash of the series; products, sites, promotions, campaigns and zones to every shard), and, unless keep_local, empties the brand''s customer and series rows of the local ODS. One transaction; returns rows written to the shards and logs a job_log row with the rows per shard.';

-- Keeps the global tables of every shard equal to the coordinator's: rows missing here are deleted there (in
-- reverse order, for the foreign keys), changed rows updated, new rows inserted.
CREATE FUNCTION retail_mid.shard_sync_global()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int4 := retail_mid.shard_count(); s record; t text; v_job bigint; v_pk text; v_cols text; v_set text; v_cmp text;
    v_rows bigint; v_total bigint := 0; tabs text[] := retail_mid.shard_tables('global'); i int;
BEGIN
    v_job := retail_mid.job_start('shard_sync_global', jsonb_build_object('shards', n));
    FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
        FOR i IN REVERSE cardinality(tabs) .. 1 LOOP
            t := tabs[i];
            SELECT string_agg(format('f.%1$I IS NOT DISTINCT FROM l.%1$I', a.attname), ' AND ') INTO v_pk
              FROM pg_constraint c, unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum = k
             WHERE c.conrelid = format('retail_mid.%I', t)::regclass AND c.contype = 'p';
            EXECUTE format('DELETE FROM retail_mid_dist.%I f WHERE NOT EXISTS (SELECT 1 FROM retail_mid.%I l WHERE %s)',
                           t || '_s' || s.shard_no, t, v_pk);
            GET DIAGNOSTICS v_rows = ROW_COUNT; v_total := v_total + v_rows;
        END LOOP;
        FOREACH t IN ARRAY tabs LOOP
            SELECT string_agg(format('f.%1$I IS NOT DISTINCT FROM l.%1$I', a.attname), ' AND ') INTO v_pk
              FROM pg_constraint c, unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum = k
             WHERE c.conrelid = format('retail_mid.%I', t)::regclass AND c.contype = 'p';
            -- what the shard keeps of its own: when it last evaluated a tag
            SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                   string_agg(format('%1$I = l.%1$I', a.attname), ', ' ORDER BY a.attnum),
                   string_agg(format('f.%1$I IS DISTINCT FROM l.%1$I', a.attname), ' OR ' ORDER BY a.attnum)
              INTO v_cols, v_set, v_cmp
              FROM pg_attribute a WHERE a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname <> 'last_evaluated_at';
            EXECUTE format('UPDATE retail_mid_dist.%I f SET %s FROM retail_mid.%I l WHERE %s AND (%s)',
                           t || '_s' || s.shard_no, v_set, t, v_pk, v_cmp);
            GET DIAGNOSTICS v_rows = ROW_COUNT; v_total := v_total + v_rows;
            EXECUTE format('INSERT INTO retail_mid_dist.%I (%s) SELECT %s FROM retail_mid.%I l WHERE NOT EXISTS (SELECT 1 FROM retail_mid_dist.%I f WHERE %s)',
                           t || '_s' || s.shard_no, v_cols, v_cols, t, t || '_s' || s.shard_no, v_pk);
            GET DIAGNOSTICS v_rows = ROW_COUNT; v_total := v_total + v_rows;
        END LOOP;
        RAISE NOTICE 'shard_sync_global: shard % (%) in step', s.shard_no, s.server;
    END LOOP;
    PERFORM retail_mid.job_finish(v_job, v_total);
    RETURN v_total;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_sync_global() IS 'On the coordinator: makes the global tables of every shard (brand entitlements, RFM segment maps and settings, AIPL rules, the tag taxonomy and definitions) equal to the coordinator''s, in one transaction: rows deleted, changed and added. Roles are cluster objects: create them on every shard. Returns rows changed on the shards.';

-- Global RFM: scores from every shard's daily customer trade with breakpoints over all customers (exact: the
-- per-customer summaries of every shard are collected on the coordinator), written back to each customer's shard.
CREATE FUNCTION retail_mid.shard_rfm_refresh(brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src regclass := to_regclass('retail_mid_dist.dws_trade_customer_1d'); rdest regclass := to_regclass('retail_mid_dist.rfm_snapshot');
        v_job bigint; n bigint;
BEGIN
    IF src IS NULL OR rdest IS NULL THEN
        RAISE EXCEPTION 'the shards'' tables are not attached' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run retail_mid.shard_attach_tables() on the coordinator.';
    END IF;
    v_job := retail_mid.job_start('shard_rfm_refresh', jsonb_build_object('brand', brand, 'as_of', as_of, 'window_days', window_days, 'map_name', map_name));
    DROP TABLE IF EXISTS pg_temp.rm_shard_rfm;
    CREATE TEMP TABLE rm_shard_rfm ON COMMIT DROP AS
    SELECT * FROM retail_mid.rfm_scores_from(src, brand, as_of, window_days, map_name, 'daily');
    DELETE FROM retail_mid_dist.rfm_snapshot s WHERE s.brand = shard_rfm_refresh.brand AND s.map_name = shard_rfm_refresh.map_name
       AND s.window_days = shard_rfm_refresh.window_days AND s.as_of = shard_rfm_refresh.as_of;
    INSERT INTO retail_mid_dist.rfm_snapshot
    SELECT brand, map_name, window_days, as_of, x.customer_key, x.recency_days, x.frequency, x.monetary, x.r_score, x.f_score, x.m_score, x.segment
      FROM rm_shard_rfm x;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'shard_rfm_refresh: % customers of brand % scored over every shard as of %', n, brand, as_of;
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_rfm_refresh(text, date, int4, text) IS 'On the coordinator: RFM of a brand with breakpoints over the customers of every shard (rfm_scores_from over retail_mid_dist.dws_trade_customer_1d: exact, the same as on one server), written to each customer''s shard''s rfm_snapshot (through the partitions). Use it instead of rfm_refresh on the shards, whose breakpoints would be per shard. Returns customers scored.';

-- The group tags' bitmaps of every shard OR-ed into the coordinator's tag_bitmap (the shards hold disjoint
-- customers): audience() and audience_count() on the coordinator then answer for the whole group.
CREATE FUNCTION retail_mid.shard_gather_tags()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF to_regclass('retail_mid_dist.tag_bitmap') IS NULL THEN
        RAISE EXCEPTION 'the shards'' tables are not attached' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run retail_mid.shard_attach_tables() on the coordinator.';
    END IF;
    IF NOT pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') THEN
        RAISE EXCEPTION 'shard_gather_tags is for administrators' USING ERRCODE = 'insufficient_privilege';
    END IF;
    DROP TABLE IF EXISTS pg_temp.rm_shard_tags;
    CREATE TEMP TABLE rm_shard_tags ON COMMIT DROP AS
    SELECT b.tag_name, b.tag_value, b.brand, retail_mid.rb_or_agg(b.bitmap) AS bitmap
      FROM retail_mid_dist.tag_bitmap b
     WHERE EXISTS (SELECT 1 FROM retail_mid.tag_definition d WHERE d.tag_name = b.tag_name)
     GROUP BY 1, 2, 3;
    DELETE FROM retail_mid.tag_bitmap;
    INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
    SELECT tag_name, tag_value, brand, bitmap, retail_mid.rb_cardinality(bitmap) FROM rm_shard_tags;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM retail_mid.customer_universe;
    RAISE NOTICE 'shard_gather_tags: % tag bitmaps OR-ed over % shards', n, retail_mid.shard_count();
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_gather_tags() IS 'On the coordinator (administrators): replaces the local tag_bitmap by the OR of every shard''s bitmaps per tag, value and brand (the shards hold disjoint customers, so the OR is the whole group); audience() and audience_count() of boolean and enumerated tags then answer on the coordinator as on one server. Numeric tags (bit-sliced indexes) are not gathered. Returns bitmaps written.';

-- The shipped roles: set-up and loading are for administrators.
REVOKE EXECUTE ON FUNCTION retail_mid.shard_add(text, text, int4, text, text, text), retail_mid.shard_attach_tables(),
    retail_mid.shard_load(text, boolean), retail_mid.shard_sync_global(), retail_mid.shard_rfm_refresh(text, date, int4, text),
    retail_mid.shard_gather_tags(), retail_mid.shard_assign_keys(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.shard_add(text, text, int4, text, text, text), retail_mid.shard_attach_tables(),
    retail_mid.shard_load(text, boolean), retail_mid.shard_sync_global(), retail_mid.shard_rfm_refresh(text, date, int4, text),
    retail_mid.shard_gather_tags(), retail_mid.shard_assign_keys(text) TO retail_mid_admin;
REVOKE ALL ON retail_mid.shard_key_import, retail_mid.shard_load_import FROM PUBLIC;
GRANT SELECT ON retail_mid.shard TO retail_mid_admin;

-- issue 17: product selection and store assortment. Category space per store (ods_store_category_space, brand-isolated,
-- kept by pg_dump) and its loader; benchmark stores, preferences, assortment suggestions, sales and margin per square
-- metre, the assortment_gap table and the synthetic brand with a planted gap (src/goods/assortment.sql); the dashboard
-- tiles dash_assortment_gap and dash_store_category_sqm (src/dashboard/dashboard.sql).
CREATE TABLE retail_mid.ods_store_category_space (
    brand        text NOT NULL,
    store_id     text NOT NULL,
    category_l1  text NOT NULL CHECK (btrim(category_l1) <> ''),
    space_sqm    numeric(14,3) NOT NULL CHECK (space_sqm > 0),
    shelf_metres numeric(14,3) CHECK (shelf_metres >= 0),
    load_id      bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, store_id, category_l1)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.ods_store_category_space', '');
COMMENT ON TABLE retail_mid.ods_store_category_space IS 'Selling space of each level-1 category in each store (square metres, and shelf metres when known): the denominator of sales and margin per square metre.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.store_id IS 'Store (ods_site of kind store).';
COMMENT ON COLUMN retail_mid.ods_store_category_space.category_l1 IS 'Level-1 category (ods_product.category_l1).';
COMMENT ON COLUMN retail_mid.ods_store_category_space.space_sqm IS 'Selling area given to the category, in square metres, positive.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.shelf_metres IS 'Shelf length given to the category, in metres, when known.';
COMMENT ON COLUMN retail_mid.ods_store_category_space.load_id IS 'Load that brought the row.';
SELECT retail_mid.secure_generated_table('retail_mid.ods_store_category_space');

-- issue 17: category space per store (CSV with a header: store_id, category_l1, space_sqm, shelf_metres; shelf_metres
-- may be empty). Every row names a store of the brand (ods_site of kind store). Rows of a (store, category) already
-- loaded are replaced; nothing is loaded when more than max_rejected rows are rejected.
CREATE FUNCTION retail_mid.load_store_category_space(path text, brand text, max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; b text := brand;
BEGIN
    IF path IS NULL OR brand IS NULL OR max_rejected IS NULL THEN
        RAISE EXCEPTION 'load_store_category_space arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('load_store_category_space', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, store_id text, category_l1 text,
        space_sqm text, shelf_metres text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'store_id, category_l1, space_sqm, shelf_metres');
    UPDATE rm_stage s SET reason = CASE
        WHEN retail_mid.invalid_field(store_id, 'text') THEN 'missing store_id'
        WHEN NOT EXISTS (SELECT 1 FROM retail_mid.ods_site o WHERE o.brand = b AND o.site_id = btrim(s.store_id) AND o.kind = 'store')
             THEN 'store_id is not a store of the brand'
        WHEN retail_mid.invalid_field(category_l1, 'text') THEN 'missing category_l1'
        WHEN retail_mid.invalid_field(space_sqm, 'number') THEN 'space_sqm is not a number'
        WHEN space_sqm::numeric <= 0 OR space_sqm::numeric >= 1e11 THEN 'space_sqm is not a positive area'
        WHEN shelf_metres IS NOT NULL AND btrim(shelf_metres) <> ''
             AND (retail_mid.invalid_field(shelf_metres, 'number') OR shelf_metres::numeric < 0 OR shelf_metres::numeric >= 1e11)
             THEN 'shelf_metres is not a non-negative length' END;
    -- a (store, category) twice in the file: the later row wins, the earlier is rejected
    UPDATE rm_stage s SET reason = 'duplicate store and category'
      FROM (SELECT line_no, row_number() OVER (PARTITION BY btrim(store_id), btrim(category_l1) ORDER BY line_no DESC) AS rn
              FROM rm_stage WHERE reason IS NULL) x
     WHERE x.line_no = s.line_no AND x.rn > 1;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('store_category_space', path, brand, v_read, v_loaded, v_rejects, max_rejected);
    INSERT INTO retail_mid.ods_store_category_space AS m (brand, store_id, category_l1, space_sqm, shelf_metres, load_id)
    SELECT b, btrim(store_id), btrim(category_l1), space_sqm::numeric, nullif(btrim(shelf_metres), '')::numeric, v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_store_category_space_pkey DO UPDATE
       SET space_sqm = excluded.space_sqm, shelf_metres = excluded.shelf_metres, load_id = excluded.load_id;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_store_category_space(text, text, bigint) IS 'Loads the selling space of each level-1 category per store (CSV: store_id, category_l1, space_sqm, shelf_metres) into ods_store_category_space for a brand, replacing rows of the same store and category; rows naming no store of the brand, or with a missing, non-numeric or non-positive area, are rejected.';

-- The set-based functions below join large sets on equality (customers, stores, SKUs) through CTEs whose sizes the
-- planner cannot estimate; they run with enable_nestloop off so those joins are hashed (a nested loop over two CTE
-- scans took minutes on Complete Journey).

-- The window of an analysis: to_date defaults to the brand's latest day in the DWS, from_date to 364 days before it.
CREATE FUNCTION retail_mid.assortment_window(brand text, from_date date, to_date date, OUT window_from date, OUT window_to date)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF brand IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    window_to := coalesce(to_date, (SELECT r.as_of FROM retail_mid.dws_refresh_state r WHERE r.brand = assortment_window.brand));
    IF window_to IS NULL THEN
        RAISE EXCEPTION 'brand "%" has no trade in the DWS', brand USING ERRCODE = 'undefined_object',
            HINT = 'Load its orders and run retail_mid.refresh, or pass to_date.';
    END IF;
    window_from := coalesce(from_date, window_to - 364);
    IF NOT isfinite(window_from) OR NOT isfinite(window_to) OR window_from > window_to THEN
        RAISE EXCEPTION 'the window % .. % is not a finite range of days', window_from, window_to USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_window(text, date, date) IS 'Internal to the assortment functions: the analysis window, to_date defaulting to the brand''s latest DWS day (dws_refresh_state) and from_date to 364 days before it; checks the brand has trade and the window is a finite range.';

-- The profile of every store in a window: kind customer: the share of the store's identified customers (a sale line
-- at the store in the window) with each value of five features: gender, age band (years at the end of the window),
-- member level (dim_customer), frequency band (brand-wide orders in the window: 1, 2-3, 4-7, 8+) and spend quartile
-- (brand-wide net spend in the window, quartiles of the brand's customers); each feature's shares add up to 1. kind
-- category: the share of the store's gross sales (dws_trade_sku_store_1d) in each level-1 category.
CREATE FUNCTION retail_mid.store_profile(brand text, from_date date, to_date date)
RETURNS TABLE (store_id text, kind text, feature text, share float8, customers int)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH lines AS MATERIALIZED (
        SELECT l.store_id AS st, l.customer_key AS ck, l.order_id AS oid, l.amount AS amt, l.line_type AS lt
          FROM retail_mid.dwd_trade_order_line_di l
         WHERE l.brand = store_profile.brand AND l.dt BETWEEN store_profile.from_date AND store_profile.to_date
           AND l.customer_key IS NOT NULL),
    cust AS (
        SELECT c.ck, count(DISTINCT c.oid) FILTER (WHERE c.lt = 'sale') AS orders,
               ntile(4) OVER (ORDER BY sum(c.amt), c.ck) AS spend_q
          FROM lines c GROUP BY c.ck),
    dimc AS (
        SELECT DISTINCT ON (d.customer_key) d.customer_key AS ck, d.gender, d.birth_year, d.member_level
          FROM retail_mid.dim_customer d
         WHERE d.brand = store_profile.brand AND d.customer_key IS NOT NULL
         ORDER BY d.customer_key, d.id_type, d.customer_id_hash),
    feat AS (
        SELECT c.ck, x.f
          FROM cust c LEFT JOIN dimc d ON d.ck = c.ck
         CROSS JOIN LATERAL (VALUES
               ('gender:' || coalesce(d.gender, 'U')),
               ('age:' || CASE WHEN d.birth_year IS NULL THEN 'unknown'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 25 THEN '<25'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 35 THEN '25-34'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 45 THEN '35-44'
                    WHEN pg_catalog.date_part('year', store_profile.to_date)::int - d.birth_year < 55 THEN '45-54'
                    ELSE '55+' END),
               ('level:' || coalesce(d.member_level, 'unknown')),
               ('frequency:' || CASE WHEN c.orders <= 1 THEN '1' WHEN c.orders <= 3 THEN '2-3'
                                                          WHEN c.orders <= 7 THEN '4-7' ELSE '8+' END),
               ('spend:q' || c.spend_q)) x(f)),
    sc AS (SELECT DISTINCT l.st, l.ck FROM lines l WHERE l.lt = 'sale' AND l.st IS NOT NULL),
    n AS (SELECT sc.st, count(*) AS customers FROM sc GROUP BY sc.st),
    cat AS (
        SELECT s.store_id AS st, coalesce(s.category_l1, '(unknown)') AS category, sum(s.sales_amount) AS sales
          FROM retail_mid.dws_trade_sku_store_1d s
         WHERE s.brand = store_profile.brand AND s.dt BETWEEN store_profile.from_date AND store_profile.to_date
           AND s.store_id <> '(none)'
         GROUP BY 1, 2)
    SELECT sc.st, 'customer', f.f, (count(*)::float8 / max(n.customers)::float8), max(n.customers)::int
      FROM sc JOIN feat f ON f.ck = sc.ck JOIN n ON n.st = sc.st
     GROUP BY sc.st, f.f
    UNION ALL
    SELECT c.st, 'category', c.category,
           (c.sales / sum(c.sales) OVER (PARTITION BY c.st))::float8, n.customers::int
      FROM cat c LEFT JOIN n ON n.st = c.st
     WHERE c.sales > 0;
END;
COMMENT ON FUNCTION retail_mid.store_profile(text, date, date) IS 'Profile of every store of a brand in a window: kind customer, the share of its identified customers per gender, age band, member level, frequency band and spend quartile (each feature adds up to 1); kind category, the share of its gross sales per level-1 category. The input of store_similarity.';

-- Every pair of stores with both profiles: the cosine of their customer profiles, the cosine of their category
-- profiles and customer_weight * the first + (1 - customer_weight) * the second. stores NULL: all stores, else the
-- pairs whose first store is listed. One join on the features: pairs that share no feature value (similarity 0) are
-- left out.
CREATE FUNCTION retail_mid.store_similarity_pairs(brand text, from_date date, to_date date, stores text[], customer_weight float8)
RETURNS TABLE (store_id text, benchmark_store_id text, similarity float8, customer_similarity float8, category_similarity float8,
               customers int, benchmark_customers int)
LANGUAGE sql STABLE PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH p AS MATERIALIZED (SELECT * FROM retail_mid.store_profile(store_similarity_pairs.brand, store_similarity_pairs.from_date, store_similarity_pairs.to_date)),
    norms AS (SELECT p.store_id AS st, p.kind, pg_catalog.sqrt(sum(p.share * p.share)) AS norm, max(p.customers) AS customers
                FROM p GROUP BY 1, 2),
    st AS (SELECT a.st, a.norm AS cnorm, b.norm AS gnorm, a.customers FROM norms a JOIN norms b ON b.st = a.st
            WHERE a.kind = 'customer' AND b.kind = 'category'),
    dots AS (SELECT a.store_id AS s, b.store_id AS t,
                    sum(a.share * b.share) FILTER (WHERE a.kind = 'customer') AS dc,
                    sum(a.share * b.share) FILTER (WHERE a.kind = 'category') AS dg
               FROM p a JOIN p b ON b.kind = a.kind AND b.feature = a.feature AND b.store_id <> a.store_id
              WHERE store_similarity_pairs.stores IS NULL OR a.store_id = ANY (store_similarity_pairs.stores)
              GROUP BY 1, 2),
    pairs AS (SELECT d.s, d.t, coalesce(d.dc, 0) / (a.cnorm * b.cnorm) AS cc, coalesce(d.dg, 0) / (a.gnorm * b.gnorm) AS gc,
                     a.customers AS ac, b.customers AS bc
                FROM dots d JOIN st a ON a.st = d.s JOIN st b ON b.st = d.t)
    SELECT s, t, store_similarity_pairs.customer_weight * cc + (1 - store_similarity_pairs.customer_weight) * gc, cc, gc, ac, bc
      FROM pairs;
END;
COMMENT ON FUNCTION retail_mid.store_similarity_pairs(text, date, date, text[], float8) IS 'Internal to store_similarity and assortment_suggest: for every pair of stores (the first among stores, NULL for all) the cosine similarity of their customer profiles and of their category profiles (store_profile) and their weighted sum.';

CREATE FUNCTION retail_mid.assortment_check_weight(benchmarks int, customer_weight float8)
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF benchmarks IS NULL OR customer_weight IS NULL THEN
        RAISE EXCEPTION 'benchmarks and customer_weight must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF benchmarks < 1 OR benchmarks > 1000 THEN
        RAISE EXCEPTION 'benchmarks must be between 1 and 1000, not %', benchmarks USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF customer_weight = 'NaN'::float8 OR customer_weight < 0 OR customer_weight > 1 THEN
        RAISE EXCEPTION 'customer_weight must be between 0 and 1, not %', customer_weight USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_check_weight(int, float8) IS 'Internal to the assortment functions: checks the number of benchmark stores (1 to 1000) and the customer weight (0 to 1).';

-- Benchmark stores: for every store with identified customers and sales in the window, its most similar stores.
CREATE FUNCTION retail_mid.store_similarity(brand text, benchmarks int DEFAULT 5, customer_weight float8 DEFAULT 0.5,
                                            from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (store_id text, rank int, benchmark_store_id text, similarity float8, customer_similarity float8,
               category_similarity float8, customers int, benchmark_customers int)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    PERFORM retail_mid.assortment_check_weight(benchmarks, customer_weight);
    w := retail_mid.assortment_window(brand, from_date, to_date);
    RETURN QUERY
    SELECT x.store_id, x.rk::int, x.benchmark_store_id, x.similarity, x.customer_similarity, x.category_similarity,
           x.customers, x.benchmark_customers
      FROM (SELECT p.*, row_number() OVER (PARTITION BY p.store_id ORDER BY p.similarity DESC, p.benchmark_store_id) AS rk
              FROM retail_mid.store_similarity_pairs(brand, w.window_from, w.window_to, NULL, customer_weight) p) x
     WHERE x.rk <= benchmarks
     ORDER BY x.store_id, x.rk;
END;
$$;
COMMENT ON FUNCTION retail_mid.store_similarity(text, int, float8, date, date) IS 'Benchmark stores: for every store of a brand (identified customers and sales in the window, default the 365 days ending the latest DWS day) its most similar stores, by customer_weight * cosine of the customer profiles + (1 - customer_weight) * cosine of the category profiles (store_profile), with both components.';

-- People x goods x place: for each store, its identified customers' spend on each item (level-1 or level-2 category,
-- or SKU) bought anywhere in the brand, against the brand's customers.
CREATE FUNCTION retail_mid.store_preference_core(brand text, from_date date, to_date date, level text)
RETURNS TABLE (store_id text, item text, customers int, buyers int, penetration float8, brand_penetration float8,
               spend_share float8, brand_spend_share float8, preference_index float8, penetration_index float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH lines AS MATERIALIZED (
        SELECT l.store_id AS st, l.customer_key AS ck, l.line_type AS lt, l.amount AS amt,
               CASE store_preference_core.level WHEN 'sku' THEN l.sku_id WHEN 'category_l2' THEN coalesce(l.category_l2, '(unknown)')
                    ELSE coalesce(l.category_l1, '(unknown)') END AS it
          FROM retail_mid.dwd_trade_order_line_di l
         WHERE l.brand = store_preference_core.brand
           AND l.dt BETWEEN store_preference_core.from_date AND store_preference_core.to_date AND l.customer_key IS NOT NULL),
    sc AS (SELECT DISTINCT l.st, l.ck FROM lines l WHERE l.lt = 'sale' AND l.st IS NOT NULL),
    ci AS MATERIALIZED (SELECT l.ck, l.it, sum(l.amt) AS spend, bool_or(l.lt = 'sale') AS bought FROM lines l GROUP BY 1, 2),
    ct AS (SELECT ci.ck, sum(ci.spend) AS spend FROM ci GROUP BY 1),
    bi AS (SELECT ci.it, sum(ci.spend) AS spend, count(*) FILTER (WHERE ci.bought) AS buyers FROM ci GROUP BY 1),
    bt AS (SELECT sum(ct.spend) AS spend, count(*) AS customers FROM ct),
    stt AS (SELECT sc.st, count(*) AS customers, sum(ct.spend) AS spend FROM sc JOIN ct ON ct.ck = sc.ck GROUP BY 1),
    si AS (SELECT sc.st, ci.it, sum(ci.spend) AS spend, count(*) FILTER (WHERE ci.bought) AS buyers
             FROM sc JOIN ci ON ci.ck = sc.ck GROUP BY 1, 2)
    SELECT si.st, si.it, stt.customers::int, si.buyers::int,
           si.buyers::float8 / stt.customers::float8,
           bi.buyers::float8 / bt.customers::float8,
           (si.spend / nullif(stt.spend, 0))::float8,
           (bi.spend / nullif(bt.spend, 0))::float8,
           (100 * (si.spend / nullif(stt.spend, 0))
                / nullif(bi.spend / nullif(bt.spend, 0), 0))::float8,
           100 * (si.buyers::float8 / stt.customers::float8)
               / nullif(bi.buyers::float8 / bt.customers::float8, 0)
      FROM si JOIN stt ON stt.st = si.st JOIN bi ON bi.it = si.it CROSS JOIN bt
     WHERE si.buyers > 0;
END;
COMMENT ON FUNCTION retail_mid.store_preference_core(text, date, date, text) IS 'Internal to store_preference: the preference of each store''s identified customers for each item of a level (category_l1, category_l2 or sku), bought anywhere in the brand, against all the brand''s customers.';

CREATE FUNCTION retail_mid.store_preference(brand text, level text DEFAULT 'category_l1', from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (store_id text, item text, customers int, buyers int, penetration float8, brand_penetration float8,
               spend_share float8, brand_spend_share float8, preference_index float8, penetration_index float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    IF level IS NULL OR level NOT IN ('category_l1', 'category_l2', 'sku') THEN
        RAISE EXCEPTION 'level must be category_l1, category_l2 or sku, not %', coalesce(level, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    w := retail_mid.assortment_window(brand, from_date, to_date);
    RETURN QUERY SELECT * FROM retail_mid.store_preference_core(brand, w.window_from, w.window_to, level) p ORDER BY p.store_id, p.item;
END;
$$;
COMMENT ON FUNCTION retail_mid.store_preference(text, text, date, date) IS 'People x goods x place: for each store and item (level category_l1, category_l2 or sku) the store''s identified customers (a sale at the store in the window), those who bought the item anywhere in the brand, penetration and spend share against the brand''s customers, and the indices 100 * store / brand (100 = like the brand).';

-- The suggestions of one or more stores (NULL: all). For a store a, its benchmarks b (the top `benchmarks` of
-- store_similarity_pairs, weight w_ab = similarity) and a SKU s it did not sell in the window (no sale line at a, also
-- anonymous) but its benchmarks did: customers are split by frequency band g (brand-wide orders in the window: 1, 2-3,
-- 4-7, 8+; not by spend, which the missing SKU itself lowers, biasing the estimate down); the rate of s per customer of
-- segment g is sum_b w_ab * sales_b(s, g) / sum_b w_ab * customers_b(g) (sales of s at b to identified customers of g;
-- customers of b in g), and the expected sales are sum_g customers_a(g) * rate(s, g) (a segment no benchmark has:
-- the rate over all segments). Expected buyers likewise. Net sales to identified customers over the window.
CREATE FUNCTION retail_mid.assortment_candidates(brand text, from_date date, to_date date, stores text[], k int, benchmarks int, customer_weight float8)
RETURNS TABLE (store_id text, rank int, sku_id text, category_l1 text, expected_sales float8, expected_buyers float8,
               benchmark_stores int, benchmark_sales float8, preference_index float8, category_preference_index float8, evidence jsonb)
LANGUAGE sql STABLE PARALLEL SAFE SET enable_nestloop = off
BEGIN ATOMIC
    WITH sim AS MATERIALIZED (
        SELECT x.store_id AS a, x.benchmark_store_id AS b, x.similarity AS w, x.benchmark_customers AS bn
          FROM (SELECT p.*, row_number() OVER (PARTITION BY p.store_id ORDER BY p.similarity DESC, p.benchmark_store_id) AS rk
                  FROM retail_mid.store_similarity_pairs(assortment_candidates.brand, assortment_candidates.from_date, assortment_candidates.to_date,
                                                         assortment_candidates.stores, assortment_candidates.customer_weight) p) x
         WHERE x.rk <= assortment_candidates.benchmarks),
    lines AS MATERIALIZED (
        SELECT l.store_id AS st, l.customer_key AS ck, l.sku_id AS sku, l.amount AS amt, l.line_type AS lt,
               coalesce(l.category_l1, '(unknown)') AS cat, l.order_id AS oid
          FROM retail_mid.dwd_trade_order_line_di l
         WHERE l.brand = assortment_candidates.brand
           AND l.dt BETWEEN assortment_candidates.from_date AND assortment_candidates.to_date AND l.customer_key IS NOT NULL),
    seg AS MATERIALIZED (SELECT x.ck, CASE WHEN x.o <= 1 THEN 1 WHEN x.o <= 3 THEN 2 WHEN x.o <= 7 THEN 3 ELSE 4 END AS g
                           FROM (SELECT l.ck, count(DISTINCT l.oid) FILTER (WHERE l.lt = 'sale') AS o FROM lines l GROUP BY l.ck) x),
    sc AS MATERIALIZED (SELECT DISTINCT l.st, l.ck FROM lines l WHERE l.lt = 'sale' AND l.st IS NOT NULL),
    nseg AS (SELECT sc.st, seg.g, count(*) AS n FROM sc JOIN seg ON seg.ck = sc.ck GROUP BY 1, 2),
    carried AS (SELECT DISTINCT d.store_id AS st, d.sku_id AS sku FROM retail_mid.dws_trade_sku_store_1d d
                 WHERE d.brand = assortment_candidates.brand
                   AND d.dt BETWEEN assortment_candidates.from_date AND assortment_candidates.to_date
                   AND d.sales_quantity > 0 AND d.store_id IN (SELECT sim.a FROM sim)),
    bsales AS (SELECT l.st AS b, l.sku, seg.g, sum(l.amt) AS sales,
                      count(DISTINCT l.ck) FILTER (WHERE l.lt = 'sale') AS buyers
                 FROM lines l JOIN seg ON seg.ck = l.ck
                WHERE l.st IN (SELECT sim.b FROM sim) GROUP BY 1, 2, 3),
    den AS (SELECT sim.a, nseg.g, sum(sim.w * nseg.n) AS d
              FROM sim JOIN nseg ON nseg.st = sim.b GROUP BY 1, 2),
    den_all AS (SELECT den.a, sum(den.d) AS d FROM den GROUP BY 1),
    num AS (SELECT sim.a, bs.sku, bs.g, sum(sim.w * bs.sales::float8) AS sales, sum(sim.w * bs.buyers) AS buyers
              FROM sim JOIN bsales bs ON bs.b = sim.b GROUP BY 1, 2, 3),
    cand AS (SELECT num.a, num.sku, sum(num.sales) AS sales, sum(num.buyers) AS buyers FROM num
              WHERE NOT EXISTS (SELECT 1 FROM carried c WHERE c.st = num.a AND c.sku = num.sku)
              GROUP BY 1, 2 HAVING sum(num.sales) > 0),
    est AS (SELECT c.a, c.sku,
                   sum(ns.n * CASE WHEN dn.d > 0 THEN coalesce(nm.sales, 0) / dn.d
                                                        ELSE c.sales / nullif(da.d, 0) END) AS expected_sales,
                   sum(ns.n * CASE WHEN dn.d > 0 THEN coalesce(nm.buyers, 0) / dn.d
                                                        ELSE c.buyers / nullif(da.d, 0) END) AS expected_buyers
              FROM cand c JOIN nseg ns ON ns.st = c.a
              JOIN den_all da ON da.a = c.a
              LEFT JOIN den dn ON dn.a = c.a AND dn.g = ns.g
              LEFT JOIN num nm ON nm.a = c.a AND nm.sku = c.sku AND nm.g = ns.g
             GROUP BY 1, 2),
    top AS MATERIALIZED (
        SELECT r.* FROM (SELECT e.*, row_number() OVER (PARTITION BY e.a ORDER BY e.expected_sales DESC, e.sku) AS rk
                           FROM est e WHERE e.expected_sales > 0) r
         WHERE r.rk <= assortment_candidates.k),
    skucat AS (SELECT l.sku, max(l.cat) AS cat FROM lines l WHERE l.sku IN (SELECT top.sku FROM top) GROUP BY 1),
    -- preference of the store's customers (spend anywhere in the brand) for the SKU and its category, against the brand
    brand_tot AS (SELECT sum(l.amt) AS s FROM lines l),
    sku_tot AS (SELECT l.sku, sum(l.amt) AS s FROM lines l WHERE l.sku IN (SELECT top.sku FROM top) GROUP BY 1),
    cat_tot AS (SELECT l.cat, sum(l.amt) AS s FROM lines l WHERE l.cat IN (SELECT skucat.cat FROM skucat) GROUP BY 1),
    mine AS MATERIALIZED (SELECT sc.st, l.sku, l.cat, l.amt FROM sc JOIN lines l ON l.ck = sc.ck
                           WHERE sc.st IN (SELECT top.a FROM top)),
    store_tot AS (SELECT m.st, sum(m.amt) AS s FROM mine m GROUP BY 1),
    store_sku AS (SELECT m.st, m.sku, sum(m.amt) AS s FROM mine m GROUP BY 1, 2),
    store_cat AS (SELECT m.st, m.cat, sum(m.amt) AS s FROM mine m GROUP BY 1, 2),
    ev AS (SELECT t.a, t.sku, count(*) FILTER (WHERE coalesce(bs.sales, 0) > 0) AS nb, sum(coalesce(bs.sales, 0)) AS bsales,
                  pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('store_id', sim.b, 'similarity', pg_catalog.round(sim.w::numeric, 4),
                                       'customers', sim.bn, 'sales', coalesce(bs.sales, 0), 'buyers', coalesce(bs.buyers, 0))
                                       ORDER BY sim.w DESC, sim.b) AS benchmarks
             FROM top t JOIN sim ON sim.a = t.a
             LEFT JOIN (SELECT bsales.b, bsales.sku, sum(bsales.sales) AS sales, sum(bsales.buyers) AS buyers FROM bsales GROUP BY 1, 2) bs
                    ON bs.b = sim.b AND bs.sku = t.sku
            GROUP BY 1, 2)
    SELECT t.a, t.rk::int, t.sku, sk.cat, t.expected_sales, t.expected_buyers, ev.nb::int, ev.bsales::float8,
           (100 * (coalesce(ss.s, 0) / nullif(stt.s, 0))
                / nullif(skt.s / nullif(bt.s, 0), 0))::float8,
           (100 * (coalesce(scat.s, 0) / nullif(stt.s, 0))
                / nullif(ctt.s / nullif(bt.s, 0), 0))::float8,
           pg_catalog.jsonb_build_object('store_customers', (SELECT sum(ns.n) FROM nseg ns WHERE ns.st = t.a),
                                         'benchmarks', ev.benchmarks,
                                         'estimate', 'sum over frequency bands of this store''s customers x the similarity-weighted sales per customer of the benchmarks')
      FROM top t
      JOIN ev ON ev.a = t.a AND ev.sku = t.sku
      JOIN skucat sk ON sk.sku = t.sku
      CROSS JOIN brand_tot bt
      LEFT JOIN sku_tot skt ON skt.sku = t.sku
      LEFT JOIN cat_tot ctt ON ctt.cat = sk.cat
      LEFT JOIN store_tot stt ON stt.st = t.a
      LEFT JOIN store_sku ss ON ss.st = t.a AND ss.sku = t.sku
      LEFT JOIN store_cat scat ON scat.st = t.a AND scat.cat = sk.cat
     ORDER BY t.a, t.rk;
END;
COMMENT ON FUNCTION retail_mid.assortment_candidates(text, date, date, text[], int, int, float8) IS 'Internal to assortment_suggest and assortment_refresh: the k SKUs each listed store (NULL: all) did not sell in the window that its benchmark stores sold, ranked by expected sales (benchmarks'' similarity-weighted sales per customer by frequency band, scaled to the store''s customers), with the evidence.';

CREATE FUNCTION retail_mid.assortment_suggest(brand text, store text, k int DEFAULT 10, benchmarks int DEFAULT 5,
                                              customer_weight float8 DEFAULT 0.5, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (rank int, sku_id text, category_l1 text, expected_sales float8, expected_buyers float8, benchmark_stores int,
               benchmark_sales float8, preference_index float8, category_preference_index float8, evidence jsonb)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    IF store IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'store and k must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF k < 1 OR k > 100000 THEN
        RAISE EXCEPTION 'k must be between 1 and 100000, not %', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM retail_mid.assortment_check_weight(benchmarks, customer_weight);
    w := retail_mid.assortment_window(brand, from_date, to_date);
    IF NOT EXISTS (SELECT 1 FROM retail_mid.ods_site s WHERE s.brand = assortment_suggest.brand AND s.site_id = store AND s.kind = 'store') THEN
        RAISE EXCEPTION 'store "%" is not a store of brand "%"', store, brand USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.dwd_trade_order_line_di l WHERE l.brand = assortment_suggest.brand AND l.store_id = store
                      AND l.dt BETWEEN w.window_from AND w.window_to AND l.customer_key IS NOT NULL AND l.line_type = 'sale') THEN
        RAISE EXCEPTION 'store "%" has no identified customers from % to %', store, w.window_from, w.window_to USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT c.rank, c.sku_id, c.category_l1, c.expected_sales, c.expected_buyers, c.benchmark_stores, c.benchmark_sales,
           c.preference_index, c.category_preference_index, c.evidence
      FROM retail_mid.assortment_candidates(brand, w.window_from, w.window_to, ARRAY[store], k, benchmarks, customer_weight) c
     ORDER BY c.rank;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_suggest(text, text, int, int, float8, date, date) IS 'The k SKUs a store did not sell in the window (default the 365 days ending the latest DWS day) that its benchmark stores (store_similarity) sold, by expected sales to the store''s identified customers: per frequency band (brand-wide orders in the window: 1, 2-3, 4-7, 8+), the benchmarks'' similarity-weighted sales per customer times the store''s customers; with expected buyers, the benchmarks selling it and their sales, the store''s customers'' preference index for the SKU and its category (store_preference), and the evidence per benchmark.';

-- ----------------------------------------------------------------- sales and margin per square metre
-- Per store and level-1 category over a window: net sales and units (dws_trade_sku_store_1d), the category's space
-- (ods_store_category_space), sales per square metre and its index against the brand's category (its sales over its
-- space in every store with space for it). Margin: net sales - net units x unit cost, where ods_product.attributes
-- has unit_cost; cost_coverage is the share of net sales whose SKU has a cost, and margin per square metre is given
-- only when it is 1 (no cost: no margin, not a guess).
CREATE FUNCTION retail_mid.store_category_productivity_core(brand text, from_date date, to_date date)
RETURNS TABLE (store_id text, category_l1 text, space_sqm numeric, floor_area numeric, net_sales numeric, units numeric,
               sales_per_sqm float8, sales_per_sqm_index float8, gross_margin numeric, cost_coverage float8, margin_per_sqm float8)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    WITH sales AS (
        SELECT d.store_id AS st, coalesce(d.category_l1, '(unknown)') AS cat, sum(d.net_amount) AS net, sum(d.quantity) AS units,
               sum(d.net_amount - d.quantity * c.cost) FILTER (WHERE c.cost IS NOT NULL) AS margin,
               sum(d.net_amount) FILTER (WHERE c.cost IS NOT NULL) AS net_costed
          FROM retail_mid.dws_trade_sku_store_1d d
          LEFT JOIN LATERAL (SELECT CASE WHEN p.attributes ->> 'unit_cost' ~ '^\s*\d{1,12}(\.\d*)?\s*$' THEN (p.attributes ->> 'unit_cost')::numeric END AS cost
                               FROM retail_mid.ods_product p
                              WHERE p.brand = d.brand AND p.sku_id = d.sku_id) c ON true
         WHERE d.brand = store_category_productivity_core.brand
           AND d.dt BETWEEN store_category_productivity_core.from_date AND store_category_productivity_core.to_date
           AND d.store_id <> '(none)'
         GROUP BY 1, 2),
    space AS (SELECT s.store_id AS st, s.category_l1 AS cat, s.space_sqm FROM retail_mid.ods_store_category_space s
               WHERE s.brand = store_category_productivity_core.brand),
    j AS (SELECT coalesce(a.st, sp.st) AS st, coalesce(a.cat, sp.cat) AS cat, sp.space_sqm, coalesce(a.net, 0) AS net,
                 coalesce(a.units, 0) AS units, a.margin, a.net_costed
            FROM sales a FULL JOIN space sp ON sp.st = a.st AND sp.cat = a.cat),
    bcat AS (SELECT j.cat, sum(j.net) / sum(j.space_sqm) AS per_sqm FROM j WHERE j.space_sqm IS NOT NULL GROUP BY 1)
    SELECT j.st, j.cat, j.space_sqm, f.floor_area, j.net, j.units,
           (j.net / j.space_sqm)::float8,
           (100 * (j.net / j.space_sqm) / nullif(b.per_sqm, 0))::float8,
           j.margin,
           CASE WHEN j.net <> 0 THEN (coalesce(j.net_costed, 0) / j.net)::float8 END,
           CASE WHEN j.net <> 0 AND coalesce(j.net_costed, 0) = j.net
                THEN (j.margin / j.space_sqm)::float8 END
      FROM j LEFT JOIN bcat b ON b.cat = j.cat
      LEFT JOIN retail_mid.dim_site f ON f.brand = store_category_productivity_core.brand
                                     AND f.site_id = j.st AND f.is_current;
END;
COMMENT ON FUNCTION retail_mid.store_category_productivity_core(text, date, date) IS 'Internal to store_category_productivity and dash_store_category_sqm: sales and margin per square metre per store and level-1 category over a window.';

CREATE FUNCTION retail_mid.store_category_productivity(brand text, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (store_id text, category_l1 text, space_sqm numeric, floor_area numeric, net_sales numeric, units numeric,
               sales_per_sqm float8, sales_per_sqm_index float8, gross_margin numeric, cost_coverage float8, margin_per_sqm float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record;
BEGIN
    w := retail_mid.assortment_window(brand, from_date, to_date);
    RETURN QUERY SELECT * FROM retail_mid.store_category_productivity_core(brand, w.window_from, w.window_to) p ORDER BY p.store_id, p.category_l1;
END;
$$;
COMMENT ON FUNCTION retail_mid.store_category_productivity(text, date, date) IS 'Sales and margin per square metre per store and level-1 category over a window (default the 365 days ending the latest DWS day): net sales and units (DWS), space (ods_store_category_space; NULL without it), sales per square metre and its index against the brand''s category (100 = the brand''s sales per square metre of the category), gross margin over the SKUs with a unit_cost in ods_product.attributes, the share of sales it covers, and margin per square metre when every sale has a cost.';

-- ----------------------------------------------------------------- every store's gaps, for the dashboard
CREATE TABLE retail_mid.assortment_gap (
    brand                     text NOT NULL,
    store_id                  text NOT NULL,
    rank                      int  NOT NULL,
    sku_id                    text NOT NULL,
    category_l1               text,
    expected_sales            float8 NOT NULL,
    expected_buyers           float8,
    benchmark_stores          int NOT NULL,
    benchmark_sales           float8 NOT NULL,
    preference_index          float8,
    category_preference_index float8,
    evidence                  jsonb NOT NULL,
    from_date                 date NOT NULL,
    to_date                   date NOT NULL,
    computed_at               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand, store_id, rank)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.assortment_gap', '');
COMMENT ON TABLE retail_mid.assortment_gap IS 'Assortment gaps of every store of a brand (assortment_refresh): the SKUs assortment_suggest proposes, with their expected sales and evidence; read by dash_assortment_gap.';
COMMENT ON COLUMN retail_mid.assortment_gap.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.assortment_gap.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.assortment_gap.rank IS 'Rank by expected sales, 1 = largest.';
COMMENT ON COLUMN retail_mid.assortment_gap.sku_id IS 'SKU the store did not sell in the window.';
COMMENT ON COLUMN retail_mid.assortment_gap.category_l1 IS 'Level-1 category of the SKU.';
COMMENT ON COLUMN retail_mid.assortment_gap.expected_sales IS 'Expected net sales to the store''s identified customers over a window as long as the one analysed.';
COMMENT ON COLUMN retail_mid.assortment_gap.expected_buyers IS 'Expected buyers among the store''s identified customers over such a window.';
COMMENT ON COLUMN retail_mid.assortment_gap.benchmark_stores IS 'Benchmark stores that sold the SKU.';
COMMENT ON COLUMN retail_mid.assortment_gap.benchmark_sales IS 'Their net sales of the SKU to identified customers in the window.';
COMMENT ON COLUMN retail_mid.assortment_gap.preference_index IS 'The store''s customers'' share of spend on the SKU anywhere in the brand, against the brand''s (100 = like the brand).';
COMMENT ON COLUMN retail_mid.assortment_gap.category_preference_index IS 'The same for the SKU''s level-1 category.';
COMMENT ON COLUMN retail_mid.assortment_gap.evidence IS 'Store customers and, per benchmark store, its similarity, customers, sales and buyers of the SKU.';
COMMENT ON COLUMN retail_mid.assortment_gap.from_date IS 'First day of the window analysed.';
COMMENT ON COLUMN retail_mid.assortment_gap.to_date IS 'Last day of the window analysed.';
COMMENT ON COLUMN retail_mid.assortment_gap.computed_at IS 'When assortment_refresh wrote the row.';

CREATE FUNCTION retail_mid.assortment_refresh(brand text, k int DEFAULT 10, benchmarks int DEFAULT 5, customer_weight float8 DEFAULT 0.5,
                                              from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE w record; v_job bigint; n bigint; b text := brand;
BEGIN
    IF k IS NULL OR k < 1 OR k > 1000 THEN
        RAISE EXCEPTION 'k must be between 1 and 1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM retail_mid.assortment_check_weight(benchmarks, customer_weight);
    w := retail_mid.assortment_window(brand, from_date, to_date);
    v_job := retail_mid.job_start('assortment_refresh', jsonb_build_object('brand', brand, 'k', k, 'benchmarks', benchmarks,
             'customer_weight', customer_weight, 'from_date', w.window_from, 'to_date', w.window_to));
    RAISE NOTICE 'assortment_refresh: brand %, % .. %', brand, w.window_from, w.window_to;
    DELETE FROM retail_mid.assortment_gap g WHERE g.brand = b;
    INSERT INTO retail_mid.assortment_gap (brand, store_id, rank, sku_id, category_l1, expected_sales, expected_buyers, benchmark_stores,
                                           benchmark_sales, preference_index, category_preference_index, evidence, from_date, to_date)
    SELECT b, c.store_id, c.rank, c.sku_id, c.category_l1, c.expected_sales, c.expected_buyers, c.benchmark_stores, c.benchmark_sales,
           c.preference_index, c.category_preference_index, c.evidence, w.window_from, w.window_to
      FROM retail_mid.assortment_candidates(b, w.window_from, w.window_to, NULL, k, benchmarks, customer_weight) c;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'assortment_refresh: % suggestions for % stores', n, (SELECT count(DISTINCT g.store_id) FROM retail_mid.assortment_gap g WHERE g.brand = b);
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.assortment_refresh(text, int, int, float8, date, date) IS 'Replaces a brand''s rows of assortment_gap with the k suggestions of assortment_suggest for every store (one set-based pass); logs to job_log; returns the rows written.';

-- ----------------------------------------------------------------- synthetic stores with a planted gap
-- Nine stores in three groups of twins (A1-A3, B1-B3, C1-C3). The customers of a group are alike (gender, age,
-- member level) and unlike the others', and each group buys its own category mix; a customer shops at her home store
-- and, one order in ten, at a twin of it. Every store sells the 40 regular SKUs (R<category>_<n>), except that A1 never
-- sells R1_1. Each group has three signature SKUs (SIG_<group><n>) added to an order at a store of the group with a
-- known probability (A: 0.30, 0.20, 0.12; B and C: 0.45, 0.40, 0.35, so that a store paired with the wrong twins would
-- be offered those first); A1 never sells SIG_A1..SIG_A3: the planted gap. Regular SKUs outside Apparel carry a
-- unit_cost (60% of the price) in ods_product.attributes, and every store gets the space of each category. Returns
-- the truth: per store and signature SKU, its probability per order (0 where the store lacks it).
CREATE FUNCTION retail_mid.generate_synthetic_assortment(brand text DEFAULT 'assort_syn', seed bigint DEFAULT 7,
    start_date date DEFAULT '2024-01-01', days int DEFAULT 84, customers_per_store int DEFAULT 120)
RETURNS TABLE (store_id text, sku_id text, planted boolean, order_rate float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_job bigint; v_load bigint; b text := brand; s bigint := seed; n bigint;
BEGIN
    IF brand IS NULL OR seed IS NULL OR start_date IS NULL OR days IS NULL OR customers_per_store IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic_assortment arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF days < 7 OR days > 3660 OR customers_per_store < 10 OR customers_per_store > 100000 OR NOT isfinite(start_date) THEN
        RAISE EXCEPTION 'days must be between 7 and 3660 and customers_per_store between 10 and 100000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('generate_synthetic_assortment', jsonb_build_object('brand', brand, 'seed', seed, 'days', days,
             'customers_per_store', customers_per_store));
    DELETE FROM retail_mid.ods_order_line l WHERE l.brand = b; DELETE FROM retail_mid.ods_order o WHERE o.brand = b;
    DELETE FROM retail_mid.ods_customer_identifier c WHERE c.brand = b; DELETE FROM retail_mid.ods_customer c WHERE c.brand = b;
    DELETE FROM retail_mid.ods_store_category_space c WHERE c.brand = b;
    DELETE FROM retail_mid.ods_product p WHERE p.brand = b; DELETE FROM retail_mid.ods_site o WHERE o.brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic_assortment', 'seed=' || seed, b) RETURNING load_id INTO v_load;

    CREATE TEMP TABLE rm_as_store ON COMMIT DROP AS
    SELECT k, g, chr(64 + g) || (1 + (k - 1) % 3) AS st,
           chr(64 + g) || (1 + (k % 3)) AS twin1, chr(64 + g) || (1 + (k + 1) % 3) AS twin2
      FROM generate_series(1, 9) k, LATERAL (SELECT 1 + (k - 1) / 3 AS g) x;
    -- category weights per group (categories 1..5), as cumulative bounds
    CREATE TEMP TABLE rm_as_mix ON COMMIT DROP AS
    SELECT g, c, w, sum(w) OVER (PARTITION BY g ORDER BY c) - w AS lo, sum(w) OVER (PARTITION BY g ORDER BY c) AS hi
      FROM (VALUES (1, 1, 0.10), (1, 2, 0.15), (1, 3, 0.45), (1, 4, 0.10), (1, 5, 0.20),
                   (2, 1, 0.40), (2, 2, 0.20), (2, 3, 0.10), (2, 4, 0.20), (2, 5, 0.10),
                   (3, 1, 0.15), (3, 2, 0.40), (3, 3, 0.10), (3, 4, 0.25), (3, 5, 0.10)) v(g, c, w);
    CREATE TEMP TABLE rm_as_sig ON COMMIT DROP AS
    SELECT g, j, 'SIG_' || chr(64 + g) || j AS sku, r AS rate, cat
      FROM (VALUES (1, 1, 0.30, 3), (1, 2, 0.20, 3), (1, 3, 0.12, 3), (2, 1, 0.45, 1), (2, 2, 0.40, 1), (2, 3, 0.35, 1),
                   (3, 1, 0.45, 2), (3, 2, 0.40, 2), (3, 3, 0.35, 2)) v(g, j, r, cat);

    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, opened_on, floor_area, city, load_id)
    SELECT b, st, 'Store ' || st, 'store', start_date - 1000, round((800 + 400 * retail_mid.synth_uniform(s, 101, k))::numeric, 0), 'Shanghai', v_load
      FROM rm_as_store;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, product_brand, list_price, attributes, load_id)
    SELECT b, 'R' || c || '_' || j, 'Regular ' || c || '.' || j, cn, cn || ' ' || (1 + j % 2), 'House', p,
           CASE WHEN c = 5 THEN '{}'::jsonb ELSE jsonb_build_object('unit_cost', round(0.6 * p, 2)) END, v_load
      FROM generate_series(1, 5) c, generate_series(1, 8) j,
           LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[c] AS cn,
                           round((4 + 16 * retail_mid.synth_uniform(s, 102, c * 100 + j))::numeric, 2) AS p) x;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, product_brand, list_price, attributes, load_id)
    SELECT b, sku, 'Signature ' || sku, cn, cn || ' signature', 'House', 30, '{"unit_cost": 18}', v_load
      FROM rm_as_sig, LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[cat] AS cn) x;
    INSERT INTO retail_mid.ods_store_category_space (brand, store_id, category_l1, space_sqm, shelf_metres, load_id)
    SELECT b, a.st, (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[m.c],
           round((o.floor_area * 0.6 * m.w * (0.8 + 0.4 * retail_mid.synth_uniform(s, 103, a.k * 10 + m.c)))::numeric, 1),
           round((o.floor_area * 0.6 * m.w / 2)::numeric, 1), v_load
      FROM rm_as_store a JOIN rm_as_mix m ON m.g = a.g JOIN retail_mid.ods_site o ON o.brand = b AND o.site_id = a.st;

    -- customers: i = (k - 1) * customers_per_store + j; the group sets gender, age and member level
    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, gender, birth_date, home_store_id, register_time, attributes, load_id)
    SELECT b, 'AC' || lpad(i::text, 7, '0'), 'member_id',
           CASE WHEN retail_mid.synth_uniform(s, 104, i) < (ARRAY[0.85, 0.5, 0.15])[a.g] THEN 'F' ELSE 'M' END,
           make_date((ARRAY[1995, 1975, 1950])[a.g] + floor(retail_mid.synth_uniform(s, 105, i) * 12)::int, 6, 1),
           a.st, start_date - 400 + time '10:00', jsonb_build_object('member_level', (ARRAY['gold', 'silver', 'member'])[a.g]), v_load
      FROM rm_as_store a, generate_series((a.k - 1) * customers_per_store + 1, a.k * customers_per_store) i;
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, seen_at, load_id)
    SELECT b, c.customer_id, 'member_id', c.customer_id, c.register_time, v_load FROM retail_mid.ods_customer c WHERE c.brand = b;
    PERFORM retail_mid.assign_customer_keys(array_agg('member_id'::text), array_agg(c.customer_id), array_agg(b))
       FROM retail_mid.ods_customer c WHERE c.brand = b;

    -- orders: a customer orders on a day with probability 0.07, at a twin of her home store one time in ten
    CREATE TEMP TABLE rm_as_order ON COMMIT DROP AS
    SELECT i * 10000 + d AS o, 'AC' || lpad(i::text, 7, '0') AS cust, a.g,
           CASE WHEN u < 0.05 THEN a.twin1 WHEN u < 0.10 THEN a.twin2 ELSE a.st END AS st,
           start_date + d + time '12:00' AS t
      FROM rm_as_store a, generate_series((a.k - 1) * customers_per_store + 1, a.k * customers_per_store) i,
           generate_series(0, days - 1) d, LATERAL (SELECT retail_mid.synth_uniform(s, 107, i * 10000 + d) AS u) x
     WHERE retail_mid.synth_uniform(s, 106, i * 10000 + d) < 0.07;
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, load_id)
    SELECT b, 'AO' || o, 'member_id', cust, t, 'store', st, v_load FROM rm_as_order;
    -- three regular lines (category by the group's mix, SKU uniform in it; A1 sells R1_2 for R1_1)
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, load_id)
    SELECT b, 'AO' || r.o, ln, x.sku, 1, p.list_price, v_load
      FROM rm_as_order r, generate_series(1, 3) ln,
           LATERAL (SELECT m.c FROM rm_as_mix m WHERE m.g = r.g AND retail_mid.synth_uniform(s, 110 + ln, r.o) >= m.lo
                       AND retail_mid.synth_uniform(s, 110 + ln, r.o) < m.hi) m,
           LATERAL (SELECT 'R' || m.c || '_' || (1 + floor(retail_mid.synth_uniform(s, 120 + ln, r.o) * 8)::int) AS raw) y,
           LATERAL (SELECT CASE WHEN y.raw = 'R1_1' AND r.st = 'A1' THEN 'R1_2' ELSE y.raw END AS sku) x,
           retail_mid.ods_product p
     WHERE p.brand = b AND p.sku_id = x.sku;
    -- signature lines: at a store of the group, with the SKU's probability; never at A1 for group A
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, load_id)
    SELECT b, 'AO' || r.o, 3 + g.j, g.sku, 1, 30, v_load
      FROM rm_as_order r JOIN rm_as_store a ON a.st = r.st JOIN rm_as_sig g ON g.g = a.g
     WHERE r.st <> 'A1' AND retail_mid.synth_uniform(s, 130 + g.j, r.o) < g.rate;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'generate_synthetic_assortment: % orders, % signature lines', (SELECT count(*) FROM rm_as_order), n;
    ANALYZE retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_customer;
    PERFORM retail_mid.job_finish(v_job, (SELECT count(*) FROM retail_mid.ods_order_line l WHERE l.brand = b));
    RETURN QUERY
    SELECT a.st, g.sku, a.st = 'A1' AND g.g = 1, CASE WHEN a.st = 'A1' OR g.g <> a.g THEN 0 ELSE g.rate END::float8
      FROM rm_as_store a CROSS JOIN rm_as_sig g ORDER BY 1, 2;
    DROP TABLE rm_as_order, rm_as_sig, rm_as_mix, rm_as_store;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic_assortment(text, bigint, date, int, int) IS 'Generates a brand of nine stores in three groups of twins (alike customers and category mix per group) with category space, unit costs and orders, in which store A1 lacks the signature SKUs its twins sell (the planted gap) and R1_1; replaces the brand''s ODS rows; returns the truth per store and signature SKU (its probability per order, 0 where the store lacks it).';

-- the grants and brand isolation governance/lockdown.sql gives them in a fresh install
SELECT retail_mid.secure_generated_table('retail_mid.assortment_gap');

-- issue 17: store assortment (goods/assortment.sql): every store's gaps as assortment_refresh last wrote them, and
-- sales and margin per square metre per store and category over the 91 days ending each brand's latest DWS day
CREATE VIEW retail_mid.dash_assortment_gap AS
SELECT g.brand, g.store_id, s.site_name AS store_name, g.rank, g.sku_id, p.sku_name, g.category_l1, g.expected_sales, g.expected_buyers,
       g.benchmark_stores, g.benchmark_sales, g.preference_index, g.category_preference_index, g.from_date, g.to_date, g.computed_at
  FROM retail_mid.assortment_gap g
  LEFT JOIN retail_mid.dim_site s ON s.brand = g.brand AND s.site_id = g.store_id AND s.is_current
  LEFT JOIN retail_mid.dim_product p ON p.brand = g.brand AND p.sku_id = g.sku_id AND p.is_current;
COMMENT ON VIEW retail_mid.dash_assortment_gap IS 'Store assortment gaps tile: per store the SKUs it does not sell that its benchmark stores sell to customers like its own, ranked by expected sales (assortment_gap, written by assortment_refresh).';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.store_name IS 'Store name (dim_site), NULL when unknown.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.rank IS 'Rank by expected sales, 1 = largest.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.sku_id IS 'SKU the store did not sell in the window.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.sku_name IS 'SKU name (dim_product), NULL when unknown.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.category_l1 IS 'Level-1 category of the SKU.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.expected_sales IS 'Expected net sales to the store''s identified customers over a window as long as the one analysed.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.expected_buyers IS 'Expected buyers among the store''s identified customers.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.benchmark_stores IS 'Benchmark stores that sold the SKU.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.benchmark_sales IS 'Their net sales of the SKU to identified customers in the window.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.preference_index IS 'The store''s customers'' preference for the SKU bought anywhere in the brand (100 = like the brand).';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.category_preference_index IS 'The same for its level-1 category.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.from_date IS 'First day of the window analysed.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.to_date IS 'Last day of the window analysed.';
COMMENT ON COLUMN retail_mid.dash_assortment_gap.computed_at IS 'When assortment_refresh computed it.';

CREATE VIEW retail_mid.dash_store_category_sqm AS
WITH sales AS (
    SELECT d.brand, d.store_id, coalesce(d.category_l1, '(unknown)') AS category_l1, sum(d.net_amount) AS net_sales, sum(d.quantity) AS units
      FROM retail_mid.dws_trade_sku_store_1d d JOIN retail_mid.dws_refresh_state r ON r.brand = d.brand
     WHERE d.dt BETWEEN r.as_of - 90 AND r.as_of AND d.store_id <> '(none)'
     GROUP BY 1, 2, 3),
j AS (
    SELECT coalesce(a.brand, sp.brand) AS brand, coalesce(a.store_id, sp.store_id) AS store_id,
           coalesce(a.category_l1, sp.category_l1) AS category_l1, sp.space_sqm, coalesce(a.net_sales, 0) AS net_sales,
           coalesce(a.units, 0) AS units
      FROM sales a
      FULL JOIN retail_mid.ods_store_category_space sp ON sp.brand = a.brand AND sp.store_id = a.store_id AND sp.category_l1 = a.category_l1),
b AS (SELECT j.brand, j.category_l1, sum(j.net_sales) / sum(j.space_sqm) AS per_sqm FROM j WHERE j.space_sqm IS NOT NULL GROUP BY 1, 2)
SELECT j.brand, j.store_id, j.category_l1, r.as_of - 90 AS from_date, r.as_of AS to_date, j.space_sqm, j.net_sales, j.units,
       (j.net_sales / j.space_sqm)::float8 AS sales_per_sqm,
       (100 * (j.net_sales / j.space_sqm) / nullif(b.per_sqm, 0))::float8 AS sales_per_sqm_index
  FROM j JOIN retail_mid.dws_refresh_state r ON r.brand = j.brand
  LEFT JOIN b ON b.brand = j.brand AND b.category_l1 = j.category_l1;
COMMENT ON VIEW retail_mid.dash_store_category_sqm IS 'Sales per square metre tile: per brand, store and level-1 category over the 91 days ending the brand''s latest DWS day, net sales, space and sales per square metre against the brand''s category (as store_category_productivity; the margin, which needs the product costs, is left to that function).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.store_id IS 'Store.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.category_l1 IS 'Level-1 category.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.from_date IS 'First day of the window (as_of - 90).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.to_date IS 'Last day of the window (the brand''s latest DWS day).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.space_sqm IS 'Space of the category in the store (ods_store_category_space), NULL when not loaded.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.net_sales IS 'Net sales of the category in the store in the window (0 for a category with space and no sales).';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.units IS 'Net units.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.sales_per_sqm IS 'Net sales per square metre, NULL without space.';
COMMENT ON COLUMN retail_mid.dash_store_category_sqm.sales_per_sqm_index IS '100 * sales per square metre / the brand''s sales per square metre of the category (its sales over its space in the stores with space for it).';

ALTER VIEW retail_mid.dash_assortment_gap SET (security_invoker = true);
ALTER VIEW retail_mid.dash_store_category_sqm SET (security_invoker = true);
SELECT retail_mid.security_grant('retail_mid.dash_assortment_gap');
SELECT retail_mid.security_grant('retail_mid.dash_store_category_sqm');
GRANT SELECT ON retail_mid.assortment_gap, retail_mid.ods_store_category_space TO retail_mid_bi;
