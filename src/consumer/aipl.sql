-- consumer/aipl.sql: the seed platform's AIPL customer funnel (Awareness, Interest, Purchase, Loyalty).
--
-- Rules are data, per brand: a stage holds on day d when the customer's matching signals in the look-back window
-- (d - days, d] reach a minimum count and a minimum amount. Priority L > P > I > A: one stage per customer per day.

CREATE TABLE retail_mid.aipl_rule (
    brand         text    NOT NULL DEFAULT '*',
    stage         char(1) NOT NULL CHECK (stage IN ('A', 'I', 'P', 'L')),
    source        text    NOT NULL CHECK (source IN ('event', 'touch', 'order')),
    signal_types  text[]  NOT NULL,
    lookback_days int     NOT NULL CHECK (lookback_days BETWEEN 1 AND 3660),
    min_count     int     NOT NULL DEFAULT 1 CHECK (min_count >= 1),
    min_amount    numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    PRIMARY KEY (brand, stage, source)
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.aipl_rule', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.aipl_rule FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.aipl_rule IS 'AIPL stage rules per brand (brand ''*'' is the default for brands without rules of their own): which signals, over how many days, how many and how much.';
COMMENT ON COLUMN retail_mid.aipl_rule.brand IS 'Brand the rule is for; ''*'' = every brand without its own rules.';
COMMENT ON COLUMN retail_mid.aipl_rule.stage IS 'A awareness, I interest, P purchase, L loyalty.';
COMMENT ON COLUMN retail_mid.aipl_rule.source IS 'event: ods_behavior_event types; touch: ods_campaign_touch types; order: days with orders in dws_trade_customer_1d (signal_types ignored).';
COMMENT ON COLUMN retail_mid.aipl_rule.signal_types IS 'Event types or touch types that count.';
COMMENT ON COLUMN retail_mid.aipl_rule.lookback_days IS 'Window length: signals on days (d - lookback_days, d] count for day d.';
COMMENT ON COLUMN retail_mid.aipl_rule.min_count IS 'Minimum number of signals (events x event_count, touches, or orders) in the window.';
COMMENT ON COLUMN retail_mid.aipl_rule.min_amount IS 'Minimum amount of the signals in the window (order net amount, event amount).';
-- The seed platform's configuration: exposure and search make aware; click, view, favourite, cart, follow and
-- register show interest; a purchase in 90 days; loyalty = a repeat purchase within 180 days, or a review or share.
INSERT INTO retail_mid.aipl_rule VALUES
    ('*', 'A', 'event', '{exposure,search}', 30, 1, 0),
    ('*', 'A', 'touch', '{sent,exposed}', 30, 1, 0),
    ('*', 'I', 'event', '{click,view,favorite,cart,follow,register}', 30, 1, 0),
    ('*', 'I', 'touch', '{clicked,redeemed}', 30, 1, 0),
    ('*', 'P', 'order', '{}', 90, 1, 0),
    ('*', 'L', 'order', '{}', 180, 2, 0),
    ('*', 'L', 'event', '{review,share}', 180, 1, 0);

CREATE TABLE retail_mid.dws_aipl_customer_stage_1d (
    dt           date    NOT NULL,
    brand        text    NOT NULL,
    customer_key int4    NOT NULL,
    stage        char(1) NOT NULL,
    PRIMARY KEY (brand, dt, customer_key)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_aipl_customer_stage_1d', '');
COMMENT ON TABLE retail_mid.dws_aipl_customer_stage_1d IS 'AIPL stage of every customer with a stage, per day (the highest stage whose rule holds).';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.stage IS 'A, I, P or L.';

-- Behaviour events and campaign touches by customer key instead of identifier: what aipl_signals reads. Owned by
-- retail_mid_view_owner (governance/lockdown.sql), they give analysts the events of their brands without the identifiers
-- (personal data, masked for them): the row-level security of the ODS tables applies for the caller. No security
-- barrier: the views filter nothing themselves and expose no personal column, and the time predicates of
-- aipl_signals must reach the scans.
CREATE VIEW retail_mid.behavior_event_keyed AS
SELECT e.brand::text AS brand, k.customer_key::int4 AS customer_key, e.event_time::timestamp AS event_time, e.event_type::text AS event_type,
       e.channel::text AS channel, e.event_count::int AS event_count, e.amount::numeric(14,4) AS amount
  FROM retail_mid.ods_behavior_event e
  JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.issuer = retail_mid.customer_key_issuer(e.id_type, e.brand)
                                AND k.id_value = retail_mid.identifier_value(e.id_value);
COMMENT ON VIEW retail_mid.behavior_event_keyed IS 'Behaviour events of the caller''s brands with the customer key of their identifier (events of identifiers without a key are left out); no identifiers.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.customer_key IS 'Customer key of the event''s identifier.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.event_time IS 'When.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.event_type IS 'Event type.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.channel IS 'Channel.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.event_count IS 'How many events the row stands for.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.amount IS 'Amount, if any.';

CREATE VIEW retail_mid.campaign_touch_keyed AS
SELECT t.brand::text AS brand, k.customer_key::int4 AS customer_key, t.campaign_id::text AS campaign_id, t.channel::text AS channel,
       t.touched_at::timestamp AS touched_at, t.touch_type::text AS touch_type, t.coupon_id::text AS coupon_id
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.issuer = retail_mid.customer_key_issuer(t.id_type, t.brand)
                                AND k.id_value = retail_mid.identifier_value(t.id_value);
COMMENT ON VIEW retail_mid.campaign_touch_keyed IS 'Campaign touches of the caller''s brands with the customer key of their identifier (touches of identifiers without a key are left out); no identifiers.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.customer_key IS 'Customer key of the touched identifier.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.campaign_id IS 'Campaign.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.channel IS 'Channel.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.touched_at IS 'When.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.touch_type IS 'sent, exposed, clicked or redeemed.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.coupon_id IS 'Coupon, if any.';

-- The daily signals of a brand, one row per customer, rule and day: what the rules count.
CREATE FUNCTION retail_mid.aipl_signals(brand text, from_date date, to_date date)
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
COMMENT ON FUNCTION retail_mid.aipl_signals(text, date, date) IS 'Daily AIPL signals of a brand per customer and rule, from the days the rules'' windows need; reads events and touches by customer key (behavior_event_keyed, campaign_touch_keyed), so analysts of the brand may call it.';

-- Rebuilds the stage history of [from_date, to_date]. Each rule's windowed sums are a step function that changes
-- only where a signal enters (day t) or leaves (day t + lookback) the window, so they are computed at those
-- change points with running sums and expanded to days only where a stage holds.
CREATE FUNCTION retail_mid.aipl_refresh(brand text, from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; v_rows bigint; b text := brand;
BEGIN
    IF brand IS NULL OR from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'aipl_refresh arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'aipl_refresh range must run forwards and span at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('aipl_refresh', jsonb_build_object('brand', brand, 'from_date', from_date, 'to_date', to_date));
    DELETE FROM retail_mid.dws_aipl_customer_stage_1d s WHERE s.brand = b AND s.dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_aipl_customer_stage_1d (dt, brand, customer_key, stage)
    WITH r AS (SELECT * FROM retail_mid.aipl_rule r
                WHERE r.brand = b OR (r.brand = '*' AND NOT EXISTS (SELECT 1 FROM retail_mid.aipl_rule o WHERE o.brand = b))),
    sig AS (SELECT s.*, r.lookback_days, r.min_count, r.min_amount
              FROM retail_mid.aipl_signals(b, from_date, to_date) s JOIN r USING (stage, source)),
    change AS (   -- a signal enters the window on its day and leaves it lookback_days later
        SELECT customer_key, stage, source, min_count, min_amount, dt AS at, n, amount FROM sig
        UNION ALL
        SELECT customer_key, stage, source, min_count, min_amount, dt + lookback_days, -n, -amount FROM sig),
    level AS (SELECT customer_key, stage, source, min_count, min_amount, at, sum(n) AS n, sum(amount) AS amount
                FROM change GROUP BY 1, 2, 3, 4, 5, 6),
    running AS (SELECT customer_key, stage, at,
                       sum(n) OVER w >= min_count AND sum(amount) OVER w >= min_amount AS holds,
                       lead(at) OVER (PARTITION BY customer_key, stage, source ORDER BY at) AS next_at
                  FROM level WINDOW w AS (PARTITION BY customer_key, stage, source ORDER BY at)),
    held AS (SELECT customer_key, stage, greatest(at, from_date) AS d0, least(coalesce(next_at, to_date + 1), to_date + 1) - 1 AS d1
               FROM running WHERE holds)
    SELECT d.dt::date, b, h.customer_key,
           (ARRAY['A', 'I', 'P', 'L'])[max(array_position(ARRAY['A', 'I', 'P', 'L']::bpchar[], h.stage))]
      FROM held h, LATERAL generate_series(h.d0, h.d1, interval '1 day') AS d(dt)
     WHERE h.d0 <= h.d1
     GROUP BY d.dt, h.customer_key;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RAISE NOTICE 'aipl_refresh: % customer-days for brand % from % to %', v_rows, b, from_date, to_date;
    PERFORM retail_mid.job_finish(v_job, v_rows);
    RETURN v_rows;
END;
$$;
COMMENT ON FUNCTION retail_mid.aipl_refresh(text, date, date) IS 'Rebuilds the AIPL stage history of a brand for the given days (idempotent); returns the customer-days written.';

-- Customers per stage on day d1 against their stage on day d2 ('-' = no stage).
CREATE FUNCTION retail_mid.aipl_flow(brand text, d1 date, d2 date)
RETURNS TABLE (from_stage text, to_stage text, customers bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(a.stage::text, '-'), coalesce(z.stage::text, '-'), count(*)
      FROM (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = aipl_flow.brand AND dt = aipl_flow.d1) a
      FULL JOIN (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = aipl_flow.brand AND dt = aipl_flow.d2) z
        USING (customer_key)
     GROUP BY 1, 2;
END;
COMMENT ON FUNCTION retail_mid.aipl_flow(text, date, date) IS 'AIPL flow: customers by stage on d1 and stage on d2 (''-'' for no stage).';

CREATE VIEW retail_mid.aipl_trend_30d AS
SELECT s.brand, s.dt, count(*) FILTER (WHERE s.stage = 'A') AS awareness, count(*) FILTER (WHERE s.stage = 'I') AS interest,
       count(*) FILTER (WHERE s.stage = 'P') AS purchase, count(*) FILTER (WHERE s.stage = 'L') AS loyalty
  FROM retail_mid.dws_aipl_customer_stage_1d s
  JOIN (SELECT brand, max(dt) AS last_dt FROM retail_mid.dws_aipl_customer_stage_1d GROUP BY brand) m
    ON m.brand = s.brand AND s.dt > m.last_dt - 30
 GROUP BY s.brand, s.dt;
COMMENT ON VIEW retail_mid.aipl_trend_30d IS 'Customers per AIPL stage per day over the last 30 days of each brand''s history.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.awareness IS 'Customers in stage A.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.interest IS 'Customers in stage I.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.purchase IS 'Customers in stage P.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.loyalty IS 'Customers in stage L.';

-- GMV = sum over stages of (customers in the stage at the start x conversion rate x average transaction value):
-- the customers of each stage on from_date, the share of them that bought in (from_date, to_date], and their
-- average net amount per buyer. The parts add up to the GMV of those customers in the period exactly.
CREATE FUNCTION retail_mid.aipl_gmv_decomposition(brand text, from_date date, to_date date)
RETURNS TABLE (stage text, customers bigint, buyers bigint, conversion_rate numeric, avg_transaction_value numeric, gmv numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.stage::text, count(*), count(g.customer_key), round(count(g.customer_key)::numeric / count(*), 6),
           round(sum(g.net) / nullif(count(g.customer_key), 0), 4), coalesce(sum(g.net), 0)
      FROM retail_mid.dws_aipl_customer_stage_1d s
      LEFT JOIN (SELECT c.customer_key, sum(c.net_amount) AS net FROM retail_mid.dws_trade_customer_1d c
                  WHERE c.brand = aipl_gmv_decomposition.brand AND c.dt > aipl_gmv_decomposition.from_date
                    AND c.dt <= aipl_gmv_decomposition.to_date
                  GROUP BY c.customer_key HAVING sum(c.orders) > 0) g USING (customer_key)
     WHERE s.brand = aipl_gmv_decomposition.brand AND s.dt = aipl_gmv_decomposition.from_date
     GROUP BY s.stage ORDER BY array_position(ARRAY['A', 'I', 'P', 'L'], s.stage::text);
END;
COMMENT ON FUNCTION retail_mid.aipl_gmv_decomposition(text, date, date) IS 'GMV of (from_date, to_date] decomposed by the customers'' AIPL stage on from_date: customers x conversion rate x average transaction value per stage.';
