-- replenish: safety stock, lead-time demand, reorder point, order-up-to level and order quantities from forecasts.

CREATE FUNCTION retail_mid.normal_quantile(p float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'normal_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.normal_quantile(float8) IS 'Inverse standard normal CDF (z for a cycle service level), accurate to about 1e-15.';

CREATE FUNCTION retail_mid.safety_stock(service_level float8, sigma_demand float8, lead_time float8,
                                        mean_demand float8 DEFAULT 0, sigma_lead_time float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sigma_demand < 0 OR lead_time < 0 OR mean_demand < 0 OR sigma_lead_time < 0 THEN
        RAISE EXCEPTION 'safety stock inputs must not be negative' USING ERRCODE = '22023';
    END IF;
    RETURN retail_mid.normal_quantile(service_level)
           * sqrt(lead_time * sigma_demand ^ 2 + mean_demand ^ 2 * sigma_lead_time ^ 2);
END;
$$;
COMMENT ON FUNCTION retail_mid.safety_stock(float8, float8, float8, float8, float8) IS 'Safety stock z * sqrt(L * sigma_d^2 + d^2 * sigma_L^2) for a cycle service level (z = normal quantile); with a fixed lead time it is z * sigma_d * sqrt(L). Demand per period, lead time in periods.';

-- Lead-time demand from a forecast result: the sum of the first L point forecasts, and its quantile for a service
-- level with the per-step standard deviations read off the 80% interval and added as independent (an
-- approximation: ETS forecast errors are positively correlated across steps, so this is on the low side).
CREATE FUNCTION retail_mid.lead_time_demand(result jsonb, lead_time int4, service_level float8,
                                            OUT mean float8, OUT quantile float8, OUT sigma float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lead_time < 1 OR lead_time > jsonb_array_length(result -> 'mean') THEN
        RAISE EXCEPTION 'lead time must be between 1 and the forecast horizon (%)', jsonb_array_length(result -> 'mean')
            USING ERRCODE = '22023';
    END IF;
    SELECT sum(r.mean), sqrt(sum(((r.hi80 - r.lo80) / (2 * 1.2815515655446004)) ^ 2))
      INTO mean, sigma FROM retail_mid.forecast_rows(result) r WHERE r.step <= lead_time;
    quantile := greatest(0, mean + retail_mid.normal_quantile(service_level) * coalesce(sigma, 0));
END;
$$;
COMMENT ON FUNCTION retail_mid.lead_time_demand(jsonb, int4, float8) IS 'Demand over the first lead_time forecast steps: its mean, its service-level quantile and sigma (per-step sigmas from the 80% intervals, added as independent; lower bounds clipped at 0 make it conservative for intermittent items).';

CREATE FUNCTION retail_mid.order_quantity(on_hand float8, on_order float8, reserved float8, reorder_point float8,
                                          order_up_to float8, pack_size float8 DEFAULT 1)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_position float8 := on_hand + on_order - reserved;
BEGIN
    IF pack_size <= 0 THEN
        RAISE EXCEPTION 'pack size must be positive' USING ERRCODE = '22023';
    END IF;
    IF order_up_to < reorder_point THEN
        RAISE EXCEPTION 'order-up-to level must not be below the reorder point' USING ERRCODE = '22023';
    END IF;
    IF v_position > reorder_point THEN
        RETURN 0;
    END IF;
    RETURN ceil((order_up_to - v_position) / pack_size) * pack_size;
END;
$$;
COMMENT ON FUNCTION retail_mid.order_quantity(float8, float8, float8, float8, float8, float8) IS '(s, S) policy: when the inventory position (on hand + on order - reserved) is at or below the reorder point s, order up to S, rounded up to whole packs; otherwise 0.';
