-- consumer/clv.sql: customer lifetime value: BG/NBD and Gamma-Gamma fitted by maximum likelihood.
--
-- The fits are parallel-safe aggregates; per-customer predictions, and the calibration/holdout summary of a
-- transaction log.

CREATE TYPE retail_mid.bgnbd_params AS (r float8, alpha float8, a float8, b float8, loglik float8, n bigint, iterations int4);
COMMENT ON TYPE retail_mid.bgnbd_params IS 'BG/NBD parameters (r, alpha: gamma purchase-rate heterogeneity; a, b: beta dropout), the maximised log-likelihood, customers fitted and likelihood evaluations. Build one by hand with ROW(r, alpha, a, b, NULL, NULL, NULL)::retail_mid.bgnbd_params.';
CREATE TYPE retail_mid.gammagamma_params AS (p float8, q float8, gamma float8, loglik float8, n bigint, iterations int4);
COMMENT ON TYPE retail_mid.gammagamma_params IS 'Gamma-Gamma spend parameters (p, q, gamma), the maximised log-likelihood, repeat customers fitted and likelihood evaluations.';
CREATE TYPE retail_mid.clv_summary_row AS (
    first_date date, x int4, t_x float8, t_cal float8, first_spend float8, mean_spend float8, repeat_spend float8,
    x_holdout int4, spend_holdout float8, t_holdout float8);
COMMENT ON TYPE retail_mid.clv_summary_row IS 'A customer''s calibration/holdout summary: first purchase date, repeat transactions x, time of the last repeat t_x and age t_cal (= T) in periods, spend of the first day, mean and total spend of the repeat days (mean NULL when x = 0), transactions and spend in the holdout and its length in periods.';

-- Fits: the state is the data points, the final function runs the optimiser.
CREATE FUNCTION retail_mid.clv_points_bgnbd_trans(internal, float8, float8, float8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_bgnbd_trans(internal, float8, float8, float8) IS 'Transition function of bgnbd_fit: collects (x, t_x, T).';
CREATE FUNCTION retail_mid.clv_points_gg_trans(internal, float8, float8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_gg_trans(internal, float8, float8) IS 'Transition function of gammagamma_fit: collects (x, mean spend) of repeat customers.';
CREATE FUNCTION retail_mid.clv_points_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_combine(internal, internal) IS 'Combine function of the lifetime value fits.';
CREATE FUNCTION retail_mid.clv_points_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_serial(internal) IS 'Serialisation function of the lifetime value fits.';
CREATE FUNCTION retail_mid.clv_points_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_deserial(bytea, internal) IS 'Deserialisation function of the lifetime value fits; rejects malformed states.';
CREATE FUNCTION retail_mid.bgnbd_fit_final(internal) RETURNS retail_mid.bgnbd_params
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_fit_final(internal) IS 'Final function of bgnbd_fit: maximum likelihood with NLopt.';
CREATE FUNCTION retail_mid.gammagamma_fit_final(internal) RETURNS retail_mid.gammagamma_params
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.gammagamma_fit_final(internal) IS 'Final function of gammagamma_fit: maximum likelihood with NLopt.';

CREATE AGGREGATE retail_mid.bgnbd_fit(x float8, t_x float8, t_cal float8) (
    SFUNC = retail_mid.clv_points_bgnbd_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.clv_points_combine,
    SERIALFUNC = retail_mid.clv_points_serial, DESERIALFUNC = retail_mid.clv_points_deserial,
    FINALFUNC = retail_mid.bgnbd_fit_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.bgnbd_fit(float8, float8, float8) IS 'Fits the BG/NBD model (Fader, Hardie & Lee 2005) by maximum likelihood to per-customer (x repeat transactions, t_x time of the last repeat, T age), all in one time unit. Rows with a NULL are skipped; NULL for no rows; error 22003 when the optimiser does not converge.';
CREATE AGGREGATE retail_mid.gammagamma_fit(x float8, mean_spend float8) (
    SFUNC = retail_mid.clv_points_gg_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.clv_points_combine,
    SERIALFUNC = retail_mid.clv_points_serial, DESERIALFUNC = retail_mid.clv_points_deserial,
    FINALFUNC = retail_mid.gammagamma_fit_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.gammagamma_fit(float8, float8) IS 'Fits the Gamma-Gamma spend model by maximum likelihood to (x repeat transactions, mean spend per repeat transaction); customers with x = 0 or a NULL are skipped; NULL for no repeat customers.';

-- Per-customer predictions.
CREATE FUNCTION retail_mid.bgnbd_loglik(params retail_mid.bgnbd_params, x float8, t_x float8, t_cal float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_loglik(retail_mid.bgnbd_params, float8, float8, float8) IS 'BG/NBD log-likelihood of one customer summary (FHL 2005 eq. 6); the sum over customers is what bgnbd_fit maximises.';
CREATE FUNCTION retail_mid.bgnbd_expected_purchases(params retail_mid.bgnbd_params, t float8, x float8, t_x float8, t_cal float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_expected_purchases(retail_mid.bgnbd_params, float8, float8, float8, float8) IS 'E[Y(t) | x, t_x, T]: transactions a customer is expected to make in the next t periods (FHL 2005 eq. 10, 2F1 by its series).';
CREATE FUNCTION retail_mid.bgnbd_expectation(params retail_mid.bgnbd_params, t float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_expectation(retail_mid.bgnbd_params, float8) IS 'E[X(t)]: repeat transactions a new customer is expected to make in t periods (FHL 2005 eq. 7).';
CREATE FUNCTION retail_mid.bgnbd_p_alive(params retail_mid.bgnbd_params, x float8, t_x float8, t_cal float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_p_alive(retail_mid.bgnbd_params, float8, float8, float8) IS 'P(alive | x, t_x, T) under BG/NBD: 1 for customers without repeats (the model lets customers drop out only after a purchase).';
CREATE FUNCTION retail_mid.gammagamma_expected_spend(params retail_mid.gammagamma_params, x float8, mean_spend float8) RETURNS float8
    AS 'MODULE_PATHNAME', 'gammagamma_expected_spend' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.gammagamma_expected_spend(retail_mid.gammagamma_params, float8, float8) IS 'E[M | x, mean spend] = p (gamma + x m) / (p x + q - 1); for x = 0 or a NULL mean spend the population mean p gamma / (q - 1). Needs q > 1.';
CREATE FUNCTION retail_mid.clv(bgnbd retail_mid.bgnbd_params, gammagamma retail_mid.gammagamma_params,
        x float8, t_x float8, t_cal float8, mean_spend float8,
        horizon int4, discount_rate float8, period_length float8 DEFAULT 1) RETURNS float8
    AS 'MODULE_PATHNAME', 'clv_value' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv(retail_mid.bgnbd_params, retail_mid.gammagamma_params, float8, float8, float8, float8, int4, float8, float8) IS 'Discounted customer lifetime value: E[M | x, m] * sum over k = 1..horizon of (E[Y(k L)] - E[Y((k-1) L)]) / (1 + discount_rate)^k, with L = period_length in model time units and discount_rate per period. NULL when any argument but mean_spend is NULL.';

-- Calibration/holdout summary of one customer's transaction log.
CREATE FUNCTION retail_mid.clv_summary_trans(internal, date, float8, date, date, float8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_trans(internal, date, float8, date, date, float8) IS 'Transition function of clv_summary.';
CREATE FUNCTION retail_mid.clv_summary_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_combine(internal, internal) IS 'Combine function of clv_summary.';
CREATE FUNCTION retail_mid.clv_summary_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_serial(internal) IS 'Serialisation function of clv_summary.';
CREATE FUNCTION retail_mid.clv_summary_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_deserial(bytea, internal) IS 'Deserialisation function of clv_summary; rejects malformed states.';
CREATE FUNCTION retail_mid.clv_summary_final(internal) RETURNS retail_mid.clv_summary_row
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_final(internal) IS 'Final function of clv_summary.';
CREATE AGGREGATE retail_mid.clv_summary(event_date date, amount float8, calibration_end date, holdout_end date, period_days float8) (
    SFUNC = retail_mid.clv_summary_trans, STYPE = internal, SSPACE = 128,
    COMBINEFUNC = retail_mid.clv_summary_combine,
    SERIALFUNC = retail_mid.clv_summary_serial, DESERIALFUNC = retail_mid.clv_summary_deserial,
    FINALFUNC = retail_mid.clv_summary_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.clv_summary(date, float8, date, date, float8) IS 'One customer''s transactions (GROUP BY customer) to the BG/NBD calibration/holdout summary: same-day transactions merged (amounts summed); first purchase = birth; x = repeat days up to calibration_end; t_x and T = days from birth to the last repeat and to calibration_end divided by period_days (7 = weeks); holdout = (calibration_end, holdout_end], NULL holdout_end for none. NULL for customers born after calibration_end. Rows with a NULL date are skipped; a NULL amount is an error.';
