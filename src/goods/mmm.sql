-- goods/mmm.sql: marketing mix model and GMV simulation: which media drove sales, and how to split a budget.
--
-- mmm_fit regresses weekly sales (dws_trade_store_1d) on media spend (ods_media_spend) through a geometric adstock
-- and a Hill saturation per channel, with the promotions (ods_promotion) and seasonality (Fourier terms) and a
-- trend as controls; the nonlinear parameters are searched by NLopt within bounds (goods/mmm.c). A fit is kept
-- (mmm_model, mmm_channel, mmm_week, mmm_contribution); gmv_simulate and budget_optimise read the latest fit.

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
