-- demand/promo.sql: promotion attribution: a log-log demand model per SKU splitting promoted units into parts.
--
-- A parallel least-squares aggregate and, on the ODS sales and promotions, a log-log demand model per SKU pooled
-- across stores: ln(units) on ln(own price), deal share and feature share, with store fixed effects (within
-- transformation); coefficients are the own-price elasticity and the deal and feature uplifts, and each promoted
-- week's units are split into base, deal and feature parts.

CREATE FUNCTION retail_mid.ols_trans(internal, float8, float8[])
RETURNS internal AS 'MODULE_PATHNAME', 'ols_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_trans(internal, float8, float8[]) IS 'Transition function of retail_mid.ols: accumulates X''X, X''y, y''y and n.';
CREATE FUNCTION retail_mid.ols_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'ols_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_combine(internal, internal) IS 'Combine function of retail_mid.ols: adds the sufficient statistics.';
CREATE FUNCTION retail_mid.ols_serial(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'ols_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_serial(internal) IS 'Serialises a partial least-squares state.';
CREATE FUNCTION retail_mid.ols_deserial(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'ols_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_deserial(bytea, internal) IS 'Deserialises a partial least-squares state; rejects malformed bytes.';
CREATE FUNCTION retail_mid.ols_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME', 'ols_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_final(internal) IS 'Final function of retail_mid.ols: solves the normal equations.';
CREATE AGGREGATE retail_mid.ols(y float8, x float8[]) (
    SFUNC = retail_mid.ols_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.ols_combine,
    SERIALFUNC = retail_mid.ols_serial, DESERIALFUNC = retail_mid.ols_deserial,
    FINALFUNC = retail_mid.ols_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.ols(float8, float8[]) IS 'Ordinary least squares of y on up to 32 regressors (put 1 first for an intercept): jsonb {n, k, coef[], se[], sigma, r2}; NULL when X''X is singular or n <= k. Rows with a NULL y or x are left out.';

-- Weekly store x SKU panel from the ODS: units, average paid price, and the deal/feature shares of the week.
CREATE FUNCTION retail_mid.promo_panel(brand text)
RETURNS TABLE (sku_id text, store_id text, week date, units float8, price float8, deal float8, feature float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT l.sku_id, o.store_id, date_trunc('week', o.order_time)::date AS week,
           sum(l.quantity)::float8, (sum(l.quantity * l.unit_price) / nullif(sum(l.quantity), 0))::float8,
           coalesce(max(coalesce(p.display_share, p.display::int)), 0)::float8,
           coalesce(max(coalesce(p.feature_share, p.feature::int)), 0)::float8
      FROM retail_mid.ods_order_line l
      JOIN retail_mid.ods_order o ON o.brand = l.brand AND o.order_id = l.order_id
      LEFT JOIN retail_mid.ods_promotion p
        ON p.brand = l.brand AND p.sku_id = l.sku_id AND p.store_id = o.store_id
       AND o.order_time::date BETWEEN p.start_date AND p.end_date
     WHERE l.brand = promo_panel.brand AND o.store_id IS NOT NULL AND l.quantity > 0 AND l.unit_price > 0
     GROUP BY 1, 2, 3;
END;
COMMENT ON FUNCTION retail_mid.promo_panel(text) IS 'Weekly store x SKU sales panel of a brand from the ODS: units sold, average paid price, and the share of the week with an in-store deal (display) and with feature advertising.';

-- Elasticities per SKU, pooled across stores with store fixed effects (each variable demeaned within store x SKU).
CREATE FUNCTION retail_mid.promo_elasticities(brand text)
RETURNS TABLE (sku_id text, observations bigint, stores bigint, price_elasticity float8, price_elasticity_se float8,
               deal_coef float8, deal_uplift float8, feature_coef float8, feature_uplift float8, r2_within float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH p AS (
        SELECT pp.sku_id, pp.store_id, ln(pp.units) AS lu, ln(pp.price) AS lp, pp.deal, pp.feature
          FROM retail_mid.promo_panel(promo_elasticities.brand) pp),
    d AS (
        SELECT sku_id, store_id,
               lu - avg(lu) OVER w AS lu, lp - avg(lp) OVER w AS lp,
               deal - avg(deal) OVER w AS deal, feature - avg(feature) OVER w AS feature
          FROM p WINDOW w AS (PARTITION BY sku_id, store_id)),
    f AS (
        SELECT sku_id, count(DISTINCT store_id) AS stores,
               retail_mid.ols(lu, ARRAY[lp, deal, feature]) AS m
          FROM d GROUP BY sku_id)
    SELECT sku_id, (m->>'n')::bigint, stores,
           (m->'coef'->>0)::float8, (m->'se'->>0)::float8,
           (m->'coef'->>1)::float8, exp((m->'coef'->>1)::float8) - 1,
           (m->'coef'->>2)::float8, exp((m->'coef'->>2)::float8) - 1,
           1 - power((m->>'sigma')::float8, 2) * ((m->>'n')::float8 - 3)
               / nullif((SELECT sum(d2.lu ^ 2) FROM d d2 WHERE d2.sku_id = f.sku_id), 0)
      FROM f
     ORDER BY sku_id;
END;
COMMENT ON FUNCTION retail_mid.promo_elasticities(text) IS 'Log-log demand model per SKU pooled across stores with store fixed effects: ln(units) = a_store + e ln(price) + d deal + f feature; returns e (own-price elasticity) with its standard error, and the deal and feature uplifts exp(coef) - 1 for a full promoted week. NULL coefficients when a regressor never varies.';

-- Each promoted week's units split into base demand and the parts due to deal and feature (multiplicative model).
CREATE FUNCTION retail_mid.promo_attribution(brand text)
RETURNS TABLE (sku_id text, store_id text, week date, units float8, base_units float8, deal_units float8, feature_units float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pp.sku_id, pp.store_id, pp.week, pp.units,
           pp.units / exp(coalesce(e.deal_coef, 0) * pp.deal + coalesce(e.feature_coef, 0) * pp.feature),
           pp.units / exp(coalesce(e.feature_coef, 0) * pp.feature)
             - pp.units / exp(coalesce(e.deal_coef, 0) * pp.deal + coalesce(e.feature_coef, 0) * pp.feature),
           pp.units - pp.units / exp(coalesce(e.feature_coef, 0) * pp.feature)
      FROM retail_mid.promo_panel(promo_attribution.brand) pp
      JOIN retail_mid.promo_elasticities(promo_attribution.brand) e USING (sku_id)
     WHERE pp.deal > 0 OR pp.feature > 0
     ORDER BY 1, 2, 3;
END;
COMMENT ON FUNCTION retail_mid.promo_attribution(text) IS 'Promoted weeks with their units split into base units (what the model expects without deal and feature), the deal part and the feature part (feature attributed last); the three parts add up to the units sold.';
