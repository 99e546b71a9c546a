-- consumer/aipl.sql: the seed platform's AIPL customer funnel (Awareness, Interest, Purchase, Loyalty), on bitmaps.
--
-- Rules are data, per brand: a rule holds on day d for a customer when the customer's matching signals in the
-- look-back window (d - days, d] reach a minimum count and a minimum amount; a stage holds when any of its rules
-- holds (rules of a stage are ORed). Priority L > P > I > A: one stage per customer per day. The daily members of each
-- stage are stored as one roaring bitmap per brand, day and stage (dws_aipl_stage_bitmap_1d), built by the C aggregate
-- aipl_window_agg (consumer/aipl.c); dws_aipl_customer_stage_1d gives the per-customer rows back.

CREATE TABLE retail_mid.aipl_rule (
    brand         text    NOT NULL DEFAULT '*',
    stage         char(1) NOT NULL CHECK (stage IN ('A', 'I', 'P', 'L')),
    source        text    NOT NULL CHECK (source IN ('event', 'touch', 'order')),
    signal_types  text[]  NOT NULL,
    lookback_days int     NOT NULL CHECK (lookback_days BETWEEN 1 AND 3660),
    min_count     int     NOT NULL DEFAULT 1 CHECK (min_count >= 1),
    min_amount    numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    -- issue 16: several rules per stage (ORed), object filters
    rule_name     text    NOT NULL,
    object_filter text    NOT NULL DEFAULT 'any' CONSTRAINT aipl_rule_object_filter_check CHECK (object_filter IN ('any', 'own_brand', 'category')),
    object_value  text,
    description   text,
    CONSTRAINT aipl_rule_pkey PRIMARY KEY (brand, stage, rule_name),
    CONSTRAINT aipl_rule_object_check CHECK ((object_filter <> 'category' OR object_value IS NOT NULL)
                                             AND (source <> 'touch' OR object_filter = 'any'))
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.aipl_rule', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.aipl_rule FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
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
-- The seed platform's configuration: exposure and search make aware; click, view, favourite, cart, follow and
-- register show interest; a purchase in 90 days; loyalty = purchases on two days within 180 days, or a review or share.
INSERT INTO retail_mid.aipl_rule (brand, stage, source, signal_types, lookback_days, min_count, min_amount, rule_name, description) VALUES
    ('*', 'A', 'event', '{exposure,search}', 30, 1, 0, 'event', 'Exposed to or searched for the brand in 30 days.'),
    ('*', 'A', 'touch', '{sent,exposed}', 30, 1, 0, 'touch', 'Sent or shown a campaign in 30 days.'),
    ('*', 'I', 'event', '{click,view,favorite,cart,follow,register}', 30, 1, 0, 'event', 'Clicked, viewed, favourited, added to cart, followed or registered in 30 days.'),
    ('*', 'I', 'touch', '{clicked,redeemed}', 30, 1, 0, 'touch', 'Clicked a campaign or redeemed its coupon in 30 days.'),
    ('*', 'P', 'order', '{}', 90, 1, 0, 'order', 'Bought in 90 days.'),
    ('*', 'L', 'order', '{}', 180, 2, 0, 'order', 'Bought on two or more days in 180 days.'),
    ('*', 'L', 'event', '{review,share}', 180, 1, 0, 'event', 'Reviewed or shared in 180 days.');

-- issue 16: the daily members of each stage, one bitmap per brand, day and stage
CREATE TABLE retail_mid.dws_aipl_stage_bitmap_1d (
    brand     text              NOT NULL,
    dt        date              NOT NULL,
    stage     char(1)           NOT NULL CHECK (stage IN ('A', 'I', 'P', 'L')),
    customers retail_mid.rbitmap NOT NULL,
    members   bigint            NOT NULL
) PARTITION BY RANGE (dt);  -- issue 13: monthly partitions, each with primary key (brand, dt, stage) (retail_mid.ensure_partitions)
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.dws_aipl_stage_bitmap_1d', '');
COMMENT ON TABLE retail_mid.dws_aipl_stage_bitmap_1d IS 'AIPL stage members per brand, day and stage as a bitmap of customer keys (a customer is in the highest stage whose rules hold; days and stages without members have no row); written by aipl_refresh.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.stage IS 'A, I, P or L.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.customers IS 'Customer keys in the stage on the day.';
COMMENT ON COLUMN retail_mid.dws_aipl_stage_bitmap_1d.members IS 'Cardinality of customers.';

-- The per-customer stage of a day, derived from the bitmaps (filter brand and dt: only those bitmaps are read).
CREATE VIEW retail_mid.dws_aipl_customer_stage_1d AS
SELECT s.dt, s.brand, k.customer_key, s.stage
  FROM retail_mid.dws_aipl_stage_bitmap_1d s
 CROSS JOIN LATERAL retail_mid.rb_iterate(s.customers) AS k(customer_key);
COMMENT ON VIEW retail_mid.dws_aipl_customer_stage_1d IS 'AIPL stage of every customer with a stage, per day (the highest stage whose rules hold), one row per customer from the bitmaps of dws_aipl_stage_bitmap_1d.';
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

-- The daily signals of a brand per customer, stage and source, from the ODS through the keyed views: what aipl_refresh
-- read before issue 16 (orders counted, not order days; rules of one stage and source summed together). Kept for the
-- analysts who call it; aipl_refresh now reads aipl_rule_signals.
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
CREATE FUNCTION retail_mid.aipl_refresh(brand text, from_date date, to_date date)
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
    -- issue 13: the days before the history kept by retain have no signals left (their partitions were dropped)
    IF from_date < (SELECT h.kept_from FROM retail_mid.history_retention h) THEN
        RAISE EXCEPTION 'aipl_refresh range starts at %, before the retained history (kept from %)', from_date,
                        (SELECT h.kept_from FROM retail_mid.history_retention h)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retail_mid.retain dropped the days before it.',
                  HINT = 'Refresh from the first kept day on.';
    END IF;
    v_job := retail_mid.job_start('aipl_refresh', jsonb_build_object('brand', brand, 'from_date', from_date, 'to_date', to_date));
    SELECT count(*) INTO v_rules FROM retail_mid.aipl_rules_of(b);
    RAISE NOTICE 'aipl_refresh: brand %, % days, % rules', b, to_date - from_date + 1, v_rules;
    -- issue 13: a rule's window reaching before the history kept by retain sees only the kept signals
    IF from_date - (SELECT max(r.lookback_days) FROM retail_mid.aipl_rules_of(b) r) + 1 < (SELECT h.kept_from FROM retail_mid.history_retention h) THEN
        RAISE NOTICE 'aipl_refresh: the rules'' windows of the days from % reach before the retained history (kept from %): only kept signals count',
            from_date, (SELECT h.kept_from FROM retail_mid.history_retention h);
    END IF;
    PERFORM retail_mid.ensure_partitions('retail_mid.dws_aipl_stage_bitmap_1d', from_date, to_date);  -- issue 13
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
CREATE FUNCTION retail_mid.aipl_flow(brand text, d1 date, d2 date)
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

CREATE VIEW retail_mid.aipl_trend_30d AS
SELECT s.brand, s.dt, coalesce(sum(s.members) FILTER (WHERE s.stage = 'A'), 0)::bigint AS awareness,
       coalesce(sum(s.members) FILTER (WHERE s.stage = 'I'), 0)::bigint AS interest,
       coalesce(sum(s.members) FILTER (WHERE s.stage = 'P'), 0)::bigint AS purchase,
       coalesce(sum(s.members) FILTER (WHERE s.stage = 'L'), 0)::bigint AS loyalty
  FROM retail_mid.dws_aipl_stage_bitmap_1d s
  JOIN (SELECT brand, max(dt) AS last_dt FROM retail_mid.dws_aipl_stage_bitmap_1d GROUP BY brand) m
    ON m.brand = s.brand AND s.dt > m.last_dt - 30
 GROUP BY s.brand, s.dt;
COMMENT ON VIEW retail_mid.aipl_trend_30d IS 'Customers per AIPL stage per day over the last 30 days of each brand''s history (the cardinalities of the stage bitmaps).';
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
