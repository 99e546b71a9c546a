-- demand/reconcile.sql: coherent forecasts for a hierarchy (bottom-up, top-down, OLS/WLS and MinT reconciliation).

CREATE FUNCTION retail_mid.forecast_reconcile_arrays(child text[], parent text[], node text[], step int4[],
                                                     forecast float8[], method text DEFAULT 'mint_shrink',
                                                     res_node text[] DEFAULT NULL, res_period int8[] DEFAULT NULL,
                                                     res_value float8[] DEFAULT NULL)
RETURNS TABLE (node text, step int4, base float8, reconciled float8, lambda float8)
AS 'MODULE_PATHNAME', 'forecast_reconcile_arrays' LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10000 ROWS 1000;
COMMENT ON FUNCTION retail_mid.forecast_reconcile_arrays(text[], text[], text[], int4[], float8[], text, text[], int8[], float8[]) IS 'Reconciles base forecasts given as parallel arrays: hierarchy edges (child, parent; parent NULL for a root), forecasts (node, step, value), method (bottom_up, top_down, ols, wls_struct, wls_var, mint_shrink, mint_sample) and, for wls_var and MinT, one-step in-sample residuals (node, period, value); returns one row per node and step with the base and the coherent forecast, and the shrinkage intensity of mint_shrink.';

CREATE FUNCTION retail_mid.forecast_reconcile(hierarchy text, forecasts text, method text DEFAULT 'mint_shrink',
                                              residuals text DEFAULT NULL)
RETURNS TABLE (node text, step int4, base float8, reconciled float8, lambda float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
-- No SET search_path: the caller's queries are run with the caller's search_path; everything here is qualified.
DECLARE
    e_child text[]; e_parent text[];
    f_node text[]; f_step int4[]; f_value float8[];
    r_node text[]; r_period int8[]; r_value float8[];
BEGIN
    IF hierarchy IS NULL OR forecasts IS NULL THEN
        RAISE EXCEPTION 'hierarchy and forecasts queries must not be null' USING ERRCODE = '22004';
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(q.c::text), pg_catalog.array_agg(q.p::text) FROM (%s) AS q(c, p)', hierarchy)
       INTO e_child, e_parent;
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(q.n::text), pg_catalog.array_agg(q.s::int4), pg_catalog.array_agg(q.v::float8) FROM (%s) AS q(n, s, v)', forecasts)
       INTO f_node, f_step, f_value;
    IF residuals IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(q.n::text), pg_catalog.array_agg(q.t::int8), pg_catalog.array_agg(q.r::float8) FROM (%s) AS q(n, t, r)', residuals)
           INTO r_node, r_period, r_value;
        r_node := COALESCE(r_node, '{}'); r_period := COALESCE(r_period, '{}'); r_value := COALESCE(r_value, '{}');
    END IF;
    RETURN QUERY SELECT * FROM retail_mid.forecast_reconcile_arrays(
        COALESCE(e_child, '{}'), COALESCE(e_parent, '{}'),
        COALESCE(f_node, '{}'), COALESCE(f_step, '{}'), COALESCE(f_value, '{}'),
        method, r_node, r_period, r_value);
END
$$;
COMMENT ON FUNCTION retail_mid.forecast_reconcile(text, text, text, text) IS 'Coherent forecasts for a hierarchy or grouped structure: runs the hierarchy query (child, parent), the base forecasts query (node, step, forecast) and, for wls_var, mint_shrink and mint_sample, the residuals query (node, period, one-step in-sample error), and reconciles by bottom_up, top_down (forecast proportions), ols, wls_struct, wls_var, mint_shrink (default; Wickramasuriya et al. 2019) or mint_sample; returns node, step, base, reconciled, lambda.';
