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
