-- tags/tags_builtin.sql: the shipped tags: DWS trade, RFM segment and scores, AIPL stage and customer lifetime value.
--
-- Each model gets a source with one row per brand and customer (the data of a brand describes its customers in
-- that brand only: the tags are of scope brand) and tag definitions over it, so evaluate_tags() reads each source
-- once for all of its tags.

-- The source of the seed tags over the DWS layer (monetary_td, orders_td, repeat_buyer, returner, lifecycle).
CREATE VIEW retail_mid.tag_source_trade_td AS
SELECT t.brand, t.customer_key, t.net_amount AS monetary, t.orders, t.return_amount,
       t.first_order_date, t.last_order_date,
       max(t.last_order_date) OVER (PARTITION BY t.brand) AS data_end
  FROM retail_mid.dws_trade_customer_td t;
COMMENT ON VIEW retail_mid.tag_source_trade_td IS 'One row per brand and customer of the to-date trade table; the source of the seed DWS tags (scope brand).';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.monetary IS 'Net amount to date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.orders IS 'Orders to date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.return_amount IS 'Returned amount to date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.first_order_date IS 'First order date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.last_order_date IS 'Last order date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.data_end IS 'The brand''s latest order date (lifecycle is relative to it, so a brand whose data ends earlier is not aged by another brand''s newer data).';

-- Seed definitions over the DWS layer (evaluated once retail_mid.refresh() has filled it): five tags of one
-- source, so one scan of the to-date customer table; of scope brand (one value per brand and customer).
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, source, expression, numeric_scale, description, scope) VALUES
 ('monetary_td', '消费者价值', '价值', '消费者价值', '', 'numeric', 'retail_mid.tag_source_trade_td', 'monetary', 2,
  'Net amount spent to date in the brand.', 'brand'),
 ('orders_td', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric', 'retail_mid.tag_source_trade_td', 'orders', 0,
  'Orders to date in the brand.', 'brand'),
 ('repeat_buyer', '消费者价值', '价值', '忠诚度', '', 'boolean', 'retail_mid.tag_source_trade_td', 'orders >= 2',  2,
  'Has ordered at least twice in the brand.', 'brand'),
 ('returner', '客户行为数据', '消费互动', '购买行为', '退换货相关', 'boolean', 'retail_mid.tag_source_trade_td', 'return_amount <> 0', 2,
  'Has returned goods to the brand.', 'brand'),
 ('lifecycle', '生命周期阶段', '所属阶段', '', '', 'enum', 'retail_mid.tag_source_trade_td',
  $r$CASE WHEN last_order_date >= data_end - 90 THEN CASE WHEN first_order_date >= data_end - 90 THEN 'new' ELSE 'active' END
          WHEN last_order_date >= data_end - 365 THEN 'lapsing' ELSE 'churned' END$r$, 2,
  'new / active / lapsing / churned in the brand by first and last order date relative to the brand''s latest order in the data.', 'brand');

-- RFM: per brand, each customer's latest ten_segment snapshot (several windows that day: the shorter one).
CREATE VIEW retail_mid.rfm_customer_current AS
SELECT DISTINCT ON (s.brand, s.customer_key)
       s.customer_key, s.brand, s.window_days, s.as_of, s.recency_days, s.frequency, s.monetary,
       s.r_score, s.f_score, s.m_score, s.segment
  FROM retail_mid.rfm_snapshot s
 WHERE s.map_name = 'ten_segment'
 ORDER BY s.brand, s.customer_key, s.as_of DESC, s.window_days;
COMMENT ON VIEW retail_mid.rfm_customer_current IS 'One row per brand and customer: the latest ten_segment RFM snapshot row of the customer in that brand (the shorter window when several were scored that day); the source of the rfm_* tags (scope brand).';
COMMENT ON COLUMN retail_mid.rfm_customer_current.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.brand IS 'Brand of the snapshot.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.as_of IS 'Snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.recency_days IS 'Days since the last order at as_of.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.frequency IS 'Orders within the window.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.monetary IS 'Net amount within the window.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.r_score IS 'Recency score 1..5.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.f_score IS 'Frequency score 1..5.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.m_score IS 'Monetary score 1..5.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.segment IS 'ten_segment segment (NULL when no rule covers the scores).';

-- AIPL: each brand's stages on its latest staged day.
CREATE VIEW retail_mid.aipl_customer_current AS
SELECT s.customer_key, s.stage::text AS stage, s.brand, s.dt
  FROM retail_mid.dws_aipl_customer_stage_1d s
  JOIN (SELECT brand, max(dt) AS dt FROM retail_mid.dws_aipl_stage_bitmap_1d GROUP BY brand) l USING (brand, dt);
COMMENT ON VIEW retail_mid.aipl_customer_current IS 'One row per brand and customer staged on the brand''s latest staged day: the customer''s AIPL stage in that brand; the source of the aipl_stage tag (scope brand).';
COMMENT ON COLUMN retail_mid.aipl_customer_current.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.aipl_customer_current.stage IS 'A, I, P or L.';
COMMENT ON COLUMN retail_mid.aipl_customer_current.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.aipl_customer_current.dt IS 'That brand''s latest staged day.';

-- CLV: per-customer scores of the BG/NBD and Gamma-Gamma models fitted on the daily trade of the DWS.
CREATE TABLE retail_mid.clv_customer_score (
    customer_key  int4 NOT NULL,
    brand         text NOT NULL,
    as_of         date NOT NULL,
    x             int4 NOT NULL,
    t_x           float8 NOT NULL,
    t_cal         float8 NOT NULL,
    mean_spend    float8,
    p_alive       float8 NOT NULL,
    expected_purchases float8 NOT NULL,
    expected_spend float8 NOT NULL,
    clv           float8 NOT NULL,
    horizon_weeks int4 NOT NULL,
    discount_rate float8 NOT NULL,
    PRIMARY KEY (brand, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.clv_customer_score', '');
COMMENT ON TABLE retail_mid.clv_customer_score IS 'Customer lifetime value scores written by clv_score_refresh, one set per scope (a brand, or * for all brands together; each call replaces its own scope); the brand rows are the source of the clv_* tags.';
COMMENT ON COLUMN retail_mid.clv_customer_score.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.clv_customer_score.brand IS 'Brand whose trade was modelled, * for all brands together.';
COMMENT ON COLUMN retail_mid.clv_customer_score.as_of IS 'End of the calibration period (last day of trade used).';
COMMENT ON COLUMN retail_mid.clv_customer_score.x IS 'Repeat purchase days in the calibration period.';
COMMENT ON COLUMN retail_mid.clv_customer_score.t_x IS 'Weeks from the first purchase to the last repeat.';
COMMENT ON COLUMN retail_mid.clv_customer_score.t_cal IS 'Weeks from the first purchase to as_of.';
COMMENT ON COLUMN retail_mid.clv_customer_score.mean_spend IS 'Mean net amount of the repeat days (NULL without repeats).';
COMMENT ON COLUMN retail_mid.clv_customer_score.p_alive IS 'BG/NBD probability that the customer is still active.';
COMMENT ON COLUMN retail_mid.clv_customer_score.expected_purchases IS 'BG/NBD expected purchase days in the next horizon_weeks.';
COMMENT ON COLUMN retail_mid.clv_customer_score.expected_spend IS 'Gamma-Gamma expected spend per purchase day (the population mean for customers without repeats or with a non-positive mean).';
COMMENT ON COLUMN retail_mid.clv_customer_score.clv IS 'Discounted lifetime value over horizon_weeks (weekly discount_rate).';
COMMENT ON COLUMN retail_mid.clv_customer_score.horizon_weeks IS 'Horizon of expected_purchases and clv, in weeks.';
COMMENT ON COLUMN retail_mid.clv_customer_score.discount_rate IS 'Discount rate per week.';

CREATE FUNCTION retail_mid.clv_score_refresh(as_of date, horizon_weeks int4 DEFAULT 52, discount_rate float8 DEFAULT 0.002,
                                             brand text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; n bigint; bg retail_mid.bgnbd_params; gg retail_mid.gammagamma_params; b text := brand;
BEGIN
    IF as_of IS NULL OR horizon_weeks IS NULL OR discount_rate IS NULL THEN
        RAISE EXCEPTION 'clv_score_refresh arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF horizon_weeks < 1 OR horizon_weeks > 1040 THEN
        RAISE EXCEPTION 'horizon_weeks must be between 1 and 1040' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF discount_rate < 0 OR discount_rate >= 1 OR discount_rate = 'NaN' THEN
        RAISE EXCEPTION 'discount_rate must be in [0, 1)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('clv_score_refresh', jsonb_build_object('as_of', as_of, 'horizon_weeks', horizon_weeks,
                                                                         'discount_rate', discount_rate, 'brand', b));
    -- one summary per customer in weeks; a day's orders across brands are one purchase day
    CREATE TEMP TABLE rm_clv_cbs ON COMMIT DROP AS
    SELECT d.customer_key, (retail_mid.clv_summary(d.dt, d.amount::float8, clv_score_refresh.as_of, NULL, 7)).*
      FROM (SELECT c.customer_key, c.dt, sum(c.net_amount) AS amount FROM retail_mid.dws_trade_customer_1d c
             WHERE c.orders > 0 AND c.dt <= clv_score_refresh.as_of AND (b IS NULL OR c.brand = b)
             GROUP BY 1, 2) d
     GROUP BY d.customer_key;
    DELETE FROM rm_clv_cbs WHERE x IS NULL;
    bg := (SELECT retail_mid.bgnbd_fit(c.x, c.t_x, c.t_cal) FROM rm_clv_cbs c);
    -- a repeat customer whose returns cancel the purchases has no positive mean spend: left out of the spend fit
    gg := (SELECT retail_mid.gammagamma_fit(c.x, c.mean_spend) FROM rm_clv_cbs c WHERE c.x = 0 OR c.mean_spend > 0);
    IF bg IS NULL OR gg IS NULL THEN
        RAISE EXCEPTION 'no trade on or before % to fit the lifetime value models', as_of USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM retail_mid.clv_customer_score s WHERE s.brand = coalesce(b, '*');
    INSERT INTO retail_mid.clv_customer_score
    SELECT c.customer_key, coalesce(b, '*'), clv_score_refresh.as_of, c.x, c.t_x, c.t_cal, c.mean_spend,
           retail_mid.bgnbd_p_alive(bg, c.x, c.t_x, c.t_cal),
           retail_mid.bgnbd_expected_purchases(bg, horizon_weeks, c.x, c.t_x, c.t_cal),
           retail_mid.gammagamma_expected_spend(gg, c.x, CASE WHEN c.mean_spend > 0 THEN c.mean_spend END),
           retail_mid.clv(bg, gg, c.x, c.t_x, c.t_cal, CASE WHEN c.mean_spend > 0 THEN c.mean_spend END, horizon_weeks, discount_rate),
           horizon_weeks, discount_rate
      FROM rm_clv_cbs c;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE rm_clv_cbs;
    RAISE NOTICE 'clv_score_refresh: % customers scored as of %', n, as_of;
    PERFORM retail_mid.job_finish(v_job, n, jsonb_build_object('bgnbd', to_jsonb(bg), 'gammagamma', to_jsonb(gg)));
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.clv_score_refresh(date, int4, float8, text) IS 'Fits BG/NBD and Gamma-Gamma on the daily trade up to as_of (weeks; one brand, or all brands when brand is NULL) and replaces that scope''s rows of retail_mid.clv_customer_score (the brand, or * for all brands) with P(alive), expected purchases and discounted CLV over horizon_weeks; logs the parameters to job_log; returns the customers scored.';

-- The scores of the brands (not the all-brands fit, brand '*', which mixes the brands' trade): the source of the
-- clv_* tags of scope brand.
CREATE VIEW retail_mid.tag_source_clv AS
SELECT s.brand, s.customer_key, s.as_of, s.p_alive, s.expected_purchases, s.clv
  FROM retail_mid.clv_customer_score s
 WHERE s.brand <> '*';
COMMENT ON VIEW retail_mid.tag_source_clv IS 'CLV scores of brand fits (clv_score_refresh with a brand), one row per brand and customer; the source of the clv_* tags (scope brand). The all-brands fit (brand *) is no built-in tag.';
COMMENT ON COLUMN retail_mid.tag_source_clv.brand IS 'Brand whose trade was modelled.';
COMMENT ON COLUMN retail_mid.tag_source_clv.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.tag_source_clv.as_of IS 'End of the calibration period.';
COMMENT ON COLUMN retail_mid.tag_source_clv.p_alive IS 'BG/NBD probability that the customer is still active.';
COMMENT ON COLUMN retail_mid.tag_source_clv.expected_purchases IS 'Expected purchase days over the horizon.';
COMMENT ON COLUMN retail_mid.tag_source_clv.clv IS 'Discounted lifetime value over the horizon.';

-- The tag definitions: three sources, so evaluate_tags() makes three scans for these eleven tags (all of scope
-- brand: one value per brand and customer).
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, source, expression, numeric_scale, description, owner, scope) VALUES
 ('rfm_segment', '消费者价值', '价值', '消费者价值', '', 'enum', 'retail_mid.rfm_customer_current', 'segment', 2,
  'RFM segment of the ten_segment map (Champions, Loyal Customers, ...) at the latest snapshot.', 'retail_mid', 'brand'),
 ('rfm_r_score', '消费者价值', '价值', '忠诚度', '', 'numeric', 'retail_mid.rfm_customer_current', 'r_score', 0,
  'RFM recency score 1..5.', 'retail_mid', 'brand'),
 ('rfm_f_score', '消费者价值', '价值', '忠诚度', '', 'numeric', 'retail_mid.rfm_customer_current', 'f_score', 0,
  'RFM frequency score 1..5.', 'retail_mid', 'brand'),
 ('rfm_m_score', '消费者价值', '价值', '购买力', '', 'numeric', 'retail_mid.rfm_customer_current', 'm_score', 0,
  'RFM monetary score 1..5.', 'retail_mid', 'brand'),
 ('rfm_recency_days', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric', 'retail_mid.rfm_customer_current', 'recency_days', 0,
  'Days since the last order at the latest RFM snapshot.', 'retail_mid', 'brand'),
 ('rfm_frequency', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric', 'retail_mid.rfm_customer_current', 'frequency', 0,
  'Orders within the RFM window.', 'retail_mid', 'brand'),
 ('rfm_monetary', '消费者价值', '价值', '购买力', '', 'numeric', 'retail_mid.rfm_customer_current', 'monetary', 2,
  'Net amount within the RFM window.', 'retail_mid', 'brand'),
 ('aipl_stage', '生命周期阶段', '所属阶段', '', '', 'enum', 'retail_mid.aipl_customer_current', 'stage', 2,
  'AIPL funnel stage (A, I, P, L) on the latest staged day.', 'retail_mid', 'brand'),
 ('clv_p_alive', '消费者价值', '价值', '忠诚度', '', 'numeric', 'retail_mid.tag_source_clv', 'p_alive', 4,
  'BG/NBD probability that the customer is still active.', 'retail_mid', 'brand'),
 ('clv_expected_purchases', '消费者价值', '价值', '消费者价值', '', 'numeric', 'retail_mid.tag_source_clv', 'expected_purchases', 4,
  'Expected purchase days over the CLV horizon.', 'retail_mid', 'brand'),
 ('clv_value', '消费者价值', '价值', '消费者价值', '', 'numeric', 'retail_mid.tag_source_clv', 'clv', 2,
  'Discounted customer lifetime value over the CLV horizon.', 'retail_mid', 'brand');
