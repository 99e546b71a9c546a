-- tags/reach.sql: reach plans: an audience sent to one consented channel per member, and the feedback loop.
--
-- A plan gives a content template per segment and a frequency cap across all channels, and is written to an
-- idempotent outbox; media feedback is loaded back as behaviour events that feed shipped tags; campaign tags and
-- tag percentiles for audience expressions. Times are `timestamp` in the brand's local time, like the ODS.

CREATE TABLE retail_mid.reach_channel (
    channel     text PRIMARY KEY CHECK (channel ~ '^([a-z][a-z0-9_]*|\*)$'),
    description text
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_channel', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.reach_channel FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.reach_channel IS 'Channels a reach plan may use; * stands for every channel and is only valid for global opt-outs in reach_consent.';
COMMENT ON COLUMN retail_mid.reach_channel.channel IS 'Channel code (lower case), or * for every channel.';
COMMENT ON COLUMN retail_mid.reach_channel.description IS 'What the channel is.';
INSERT INTO retail_mid.reach_channel VALUES
 ('sms', 'text message'), ('email', 'e-mail'), ('wechat', 'WeChat official account or mini program message'),
 ('app_push', 'app push notification'), ('media', 'paid media audience (DMP upload)'), ('mail', 'printed mail'),
 ('*', 'every channel (global opt-out only)');

CREATE TABLE retail_mid.reach_consent (
    brand        text NOT NULL,
    customer_key int4 NOT NULL CHECK (customer_key >= 0),
    channel      text NOT NULL REFERENCES retail_mid.reach_channel,
    status       text NOT NULL CHECK (status IN ('granted', 'opted_out')),
    preference   smallint CHECK (preference > 0),
    changed_at   timestamp NOT NULL CHECK (changed_at > '-infinity' AND changed_at < 'infinity'),
    source       text,
    PRIMARY KEY (brand, customer_key, channel, changed_at),
    CHECK (channel <> '*' OR (status = 'opted_out' AND preference IS NULL))
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_consent', '');
COMMENT ON TABLE retail_mid.reach_consent IS 'Consent and channel preference history per brand, customer and channel: the latest row at or before a send time is what holds then. Channel * rows are global opt-outs.';
COMMENT ON COLUMN retail_mid.reach_consent.brand IS 'Brand the consent was given to.';
COMMENT ON COLUMN retail_mid.reach_consent.customer_key IS 'Customer (retail_mid.customer_key).';
COMMENT ON COLUMN retail_mid.reach_consent.channel IS 'Channel, or * for a global opt-out.';
COMMENT ON COLUMN retail_mid.reach_consent.status IS 'granted or opted_out.';
COMMENT ON COLUMN retail_mid.reach_consent.preference IS 'The customer''s rank of the channel (1 = most preferred); NULL = no stated preference.';
COMMENT ON COLUMN retail_mid.reach_consent.changed_at IS 'When the consent or preference changed.';
COMMENT ON COLUMN retail_mid.reach_consent.source IS 'Where the change came from (form, unsubscribe link, store ...).';

CREATE TABLE retail_mid.reach_plan (
    plan_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand       text NOT NULL CHECK (brand <> ''),
    name        text,
    audience    text NOT NULL,
    channels    text[] NOT NULL,
    segment_tag text REFERENCES retail_mid.tag_definition ON UPDATE CASCADE,
    templates   jsonb NOT NULL DEFAULT '{"*": "default"}',
    cap_touches int NOT NULL DEFAULT 7 CHECK (cap_touches > 0),
    cap_days    int NOT NULL DEFAULT 30 CHECK (cap_days > 0),
    send_at     timestamp NOT NULL,
    campaign_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    holdout_share numeric NOT NULL DEFAULT 0 CHECK (holdout_share >= 0 AND holdout_share < 1)  -- issue 16
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_plan', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_plan_plan_id_seq', '');
COMMENT ON TABLE retail_mid.reach_plan IS 'Reach plans: an audience, the channels in priority order, a content template per segment, a frequency cap (at most cap_touches touches in any cap_days days, all channels) and the send time.';
COMMENT ON COLUMN retail_mid.reach_plan.plan_id IS 'Identity of the plan.';
COMMENT ON COLUMN retail_mid.reach_plan.brand IS 'Brand that sends; consent, touch history and the cap are the brand''s.';
COMMENT ON COLUMN retail_mid.reach_plan.name IS 'Free text name.';
COMMENT ON COLUMN retail_mid.reach_plan.audience IS 'Tag expression selecting the audience, evaluated at each run; @name uses a saved audience package.';
COMMENT ON COLUMN retail_mid.reach_plan.channels IS 'Channels the plan may use, in the brand''s priority order (a customer''s stated preference comes first).';
COMMENT ON COLUMN retail_mid.reach_plan.segment_tag IS 'Tag whose current value is the member''s segment for template choice; NULL = everyone gets the * template.';
COMMENT ON COLUMN retail_mid.reach_plan.templates IS 'Segment value -> content template; the * entry is the default and is required.';
COMMENT ON COLUMN retail_mid.reach_plan.cap_touches IS 'Frequency cap: at most this many touches (this one included) in any cap_days-day window.';
COMMENT ON COLUMN retail_mid.reach_plan.cap_days IS 'Length of the frequency cap window in days.';
COMMENT ON COLUMN retail_mid.reach_plan.send_at IS 'When the touches are planned (consent as of this time counts).';
COMMENT ON COLUMN retail_mid.reach_plan.campaign_id IS 'Campaign id of the plan''s touches (default reach_plan_<plan_id>); touches of plan campaigns in ods_campaign_touch are not counted twice: the outbox counts them.';
COMMENT ON COLUMN retail_mid.reach_plan.created_at IS 'When the plan was created.';
COMMENT ON COLUMN retail_mid.reach_plan.created_by IS 'Who created it.';
COMMENT ON COLUMN retail_mid.reach_plan.holdout_share IS 'Control group: the share (0 <= share < 1) of the members who would be touched that is held out instead, chosen by reach_holdout_bucket(plan_id, customer_key) < holdout_share and recorded in reach_holdout; 0 (the default) = no control group.';

-- Plans are data; this trigger refuses bad ones with specific SQLSTATEs before the CHECK constraints see them.
CREATE FUNCTION retail_mid.reach_plan_check() RETURNS trigger
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

CREATE TABLE retail_mid.reach_outbox (
    plan_id      bigint NOT NULL REFERENCES retail_mid.reach_plan,
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    channel      text REFERENCES retail_mid.reach_channel,
    template     text,
    planned_at   timestamp NOT NULL,
    status       text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'sent', 'delivered', 'failed', 'skipped')),
    reason       text CHECK (reason IN ('frequency_cap', 'no_consent', 'global_opt_out', 'same_person')),
    run_id       bigint NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, customer_key),
    CHECK ((status = 'skipped') = (reason IS NOT NULL)),
    CHECK (status = 'skipped' OR (channel IS NOT NULL AND template IS NOT NULL))
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_outbox', '');
CREATE INDEX reach_outbox_cap ON retail_mid.reach_outbox (brand, customer_key, planned_at) WHERE status IN ('planned', 'sent', 'delivered');
COMMENT ON TABLE retail_mid.reach_outbox IS 'One decision per plan and audience member: a planned touch (channel, template) for the delivery systems, or skipped with the reason. The primary key makes re-runs write nothing twice.';
COMMENT ON COLUMN retail_mid.reach_outbox.plan_id IS 'Reach plan.';
COMMENT ON COLUMN retail_mid.reach_outbox.brand IS 'Brand of the plan.';
COMMENT ON COLUMN retail_mid.reach_outbox.customer_key IS 'Audience member.';
COMMENT ON COLUMN retail_mid.reach_outbox.channel IS 'Channel chosen (NULL when skipped).';
COMMENT ON COLUMN retail_mid.reach_outbox.template IS 'Content template for the member''s segment (NULL when skipped).';
COMMENT ON COLUMN retail_mid.reach_outbox.planned_at IS 'Planned send time (the plan''s send_at).';
COMMENT ON COLUMN retail_mid.reach_outbox.status IS 'planned, then sent / delivered / failed as the delivery system reports; skipped when not touched. planned, sent and delivered count towards frequency caps.';
COMMENT ON COLUMN retail_mid.reach_outbox.reason IS 'Why a member was skipped: frequency_cap (counted per OneID person), no_consent (no channel of the plan consented as of send_at), global_opt_out, or same_person (another key of the same OneID person gets this plan''s touch).';
COMMENT ON COLUMN retail_mid.reach_outbox.run_id IS 'The reach_run that decided.';
COMMENT ON COLUMN retail_mid.reach_outbox.decided_at IS 'When the decision was written.';

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

CREATE TABLE retail_mid.reach_run (
    run_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id         bigint NOT NULL REFERENCES retail_mid.reach_plan,
    brand           text NOT NULL,
    job_id          bigint,
    ran_at          timestamptz NOT NULL DEFAULT now(),
    members         bigint NOT NULL,
    already_decided bigint NOT NULL,
    planned         bigint NOT NULL,
    skipped         jsonb NOT NULL DEFAULT '{}',
    held_out        bigint NOT NULL DEFAULT 0  -- issue 16
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_run', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_run_run_id_seq', '');
COMMENT ON TABLE retail_mid.reach_run IS 'One row per reach_plan_run call: audience size, members decided before, touches planned and members skipped by reason.';
COMMENT ON COLUMN retail_mid.reach_run.run_id IS 'Identity of the run.';
COMMENT ON COLUMN retail_mid.reach_run.plan_id IS 'Plan run.';
COMMENT ON COLUMN retail_mid.reach_run.brand IS 'Brand of the plan.';
COMMENT ON COLUMN retail_mid.reach_run.job_id IS 'The job_log row of the run.';
COMMENT ON COLUMN retail_mid.reach_run.ran_at IS 'When the run happened.';
COMMENT ON COLUMN retail_mid.reach_run.members IS 'Audience members at this run.';
COMMENT ON COLUMN retail_mid.reach_run.already_decided IS 'Members with a decision from an earlier run (left as they were).';
COMMENT ON COLUMN retail_mid.reach_run.planned IS 'Touches planned by this run.';
COMMENT ON COLUMN retail_mid.reach_run.skipped IS 'Members skipped by this run, per reason.';
COMMENT ON COLUMN retail_mid.reach_run.held_out IS 'Members put in the control group (reach_holdout) by this run.';

CREATE TABLE retail_mid.reach_brand_lock (
    brand       text PRIMARY KEY,
    last_run_at timestamptz NOT NULL DEFAULT now()
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.reach_brand_lock', '');
COMMENT ON TABLE retail_mid.reach_brand_lock IS 'One row per brand, updated by every reach run: the row lock serialises the runs of a brand, so concurrent plans cannot together exceed a frequency cap.';
COMMENT ON COLUMN retail_mid.reach_brand_lock.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.reach_brand_lock.last_run_at IS 'When a reach run of the brand last started.';

CREATE TRIGGER reach_plan_check BEFORE INSERT OR UPDATE ON retail_mid.reach_plan
    FOR EACH ROW EXECUTE FUNCTION retail_mid.reach_plan_check();

-- Touches that count towards a brand's frequency caps, with customer keys: the outbox (planned, sent, delivered)
-- and the touch history of the public layer (dwd_marketing_touch_di: sent, exposed) except the touches of plan
-- campaigns (the outbox has those). reach_plan_run checks that the DWD is current (domain_require_fresh).
CREATE VIEW retail_mid.reach_touch AS
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

-- Creates a plan from arguments (a convenience over INSERT; the trigger validates both ways in).
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

-- Runs a plan: every audience member without a decision gets one, in one transaction.
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

-- ----------------------------------------------------------------- media backflow
-- The end of the window of behaviour tags: the setting retail_mid.as_of when set (reproducible runs, back-fills),
-- else the current local time.
CREATE FUNCTION retail_mid.behavior_as_of() RETURNS timestamp
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE s text := nullif(btrim(current_setting('retail_mid.as_of', true)), '');
BEGIN
    IF s IS NULL THEN
        RETURN localtimestamp;
    END IF;
    -- checked by pattern, not by catching the cast's error: an exception block would start a subtransaction,
    -- which a parallel worker may not
    IF retail_mid.invalid_field(s, 'timestamp') THEN
        RAISE EXCEPTION 'retail_mid.as_of is not a timestamp: "%"', s USING ERRCODE = 'invalid_datetime_format';
    END IF;
    RETURN s::timestamp;
END;
$$;
COMMENT ON FUNCTION retail_mid.behavior_as_of() IS 'End of the windows of behaviour tags (media_exposures_30d ...): the setting retail_mid.as_of if set, else the local time now.';

-- Media feedback file (CSV with header): id_type, id_value, event_time, event_type (exposure|impression|click),
-- campaign_id, media, event_count. Rows become ods_behavior_event rows (exposure or click, object campaign =
-- campaign_id, channel = the media platform, default 'media'); the behaviour DWD/DWS of the loaded days are
-- refreshed (refresh_domains), then the enabled tags reading behaviour (ods_behavior_event, dwd_behavior_event_di,
-- dws_behavior_customer_1d) are re-evaluated, so the media tags follow the load.
CREATE FUNCTION retail_mid.load_media_feedback(path text, brand text DEFAULT 'media', max_rejected bigint DEFAULT 0,
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

INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, rule_sql, description, numeric_scale, scope) VALUES
 ('media_exposures_30d', '客户行为数据', '营销行为', '营销响应', '', 'numeric',
  $r$SELECT e.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'exposure'), 0), e.brand
       FROM retail_mid.dwd_behavior_event_di e
      WHERE e.event_type IN ('exposure', 'click')
        AND e.event_time > (SELECT retail_mid.behavior_as_of()) - interval '30 days' AND e.event_time <= (SELECT retail_mid.behavior_as_of())
        AND (SELECT retail_mid.domain_require_fresh('behavior', NULL, ((SELECT retail_mid.behavior_as_of()) - interval '30 days')::date,
                                                    (SELECT retail_mid.behavior_as_of())::date))
      GROUP BY e.brand, e.customer_key$r$,
  'Exposures (ad impressions) in the 30 days up to behavior_as_of(), per brand (the brand the feedback was loaded for), all channels; 0 for customers who only clicked.', 0, 'brand'),
 ('media_clicks_30d', '客户行为数据', '营销行为', '营销响应', '', 'numeric',
  $r$SELECT e.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'click'), 0), e.brand
       FROM retail_mid.dwd_behavior_event_di e
      WHERE e.event_type IN ('exposure', 'click')
        AND e.event_time > (SELECT retail_mid.behavior_as_of()) - interval '30 days' AND e.event_time <= (SELECT retail_mid.behavior_as_of())
        AND (SELECT retail_mid.domain_require_fresh('behavior', NULL, ((SELECT retail_mid.behavior_as_of()) - interval '30 days')::date,
                                                    (SELECT retail_mid.behavior_as_of())::date))
      GROUP BY e.brand, e.customer_key$r$,
  'Clicks in the 30 days up to behavior_as_of(), per brand (the brand the feedback was loaded for), all channels; 0 for customers exposed but never clicking in the window.', 0, 'brand');

-- ----------------------------------------------------------------- campaign tags and tag percentiles
-- One boolean tag per campaign and response: <prefix>received_<id> (touch sent or exposed) and
-- <prefix>redeemed_<id> (coupon redeemed), of scope brand (the campaign's brand: its analysts read them). The tag system keeps one value per customer and tag, so a
-- multi-valued "received campaign" becomes a family of boolean tags; customers without the response have no
-- value, and NOT received_<id> is everyone else.
CREATE FUNCTION retail_mid.define_campaign_tags(brand text, prefix text DEFAULT '')
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
    -- the tags read the touch DWD (its build gives keys to touch identifiers without one, e.g. Complete Journey
    -- households that received a campaign but are in no other file): the days on which it is behind the brand's
    -- ODS touches are refreshed first (the rules check again when they are evaluated)
    SELECT min(s.dt), max(s.dt) INTO v_from, v_to FROM retail_mid.domain_stale_days('touch', define_campaign_tags.brand) s;
    IF v_from IS NOT NULL THEN
        PERFORM retail_mid.refresh_domains(v_from, v_to);
    END IF;
    -- the campaigns: dim_campaign and the touch DWD (public layer, issue 15)
    IF NOT EXISTS (SELECT 1 FROM retail_mid.dim_campaign c WHERE c.brand = define_campaign_tags.brand)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.dwd_marketing_touch_di t WHERE t.brand = define_campaign_tags.brand) THEN
        RAISE EXCEPTION 'brand "%" has no campaigns', brand USING ERRCODE = 'undefined_object';
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
      FROM (SELECT dc.campaign_id FROM retail_mid.dim_campaign dc WHERE dc.brand = define_campaign_tags.brand
            UNION SELECT t.campaign_id FROM retail_mid.dwd_marketing_touch_di t WHERE t.brand = define_campaign_tags.brand) c
     CROSS JOIN (VALUES ('received'), ('redeemed')) v(kind)
    ON CONFLICT (tag_name) DO UPDATE SET rule_sql = excluded.rule_sql, description = excluded.description,
                                         value_type = excluded.value_type, scope = excluded.scope,
                                         shared_with_brands = false;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.define_campaign_tags(text, text) IS 'Creates or updates two boolean tags of scope brand per campaign of a brand (dim_campaign and the touch DWD), <prefix>received_<campaign_id> and <prefix>redeemed_<campaign_id>, reading dwd_marketing_touch_di (after refreshing, with refresh_domains, the days on which that DWD is behind the brand''s ODS touches); returns how many definitions were written (evaluate them with evaluate_tags).';

-- The percentile of a numeric tag over the values the caller may read, for thresholds like "top 20%":
-- tag >= tag_percentile(tag, 0.8). percentile_disc returns an actual value, so ties at the threshold are all in.
-- A brand tag holds one value per brand and customer: without a brand the percentile is over all of them (the
-- caller's brands for an analyst), with a brand over that brand's values; a group tag's values are group-wide,
-- and with a brand only those of the brand's customers count.
CREATE FUNCTION retail_mid.tag_percentile(tag text, fraction float8, brand text DEFAULT NULL)
RETURNS numeric LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE vt text; sc text; r numeric; b text := brand;
BEGIN
    IF tag IS NULL OR fraction IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT d.value_type, d.scope INTO vt, sc FROM retail_mid.tag_definition d WHERE d.tag_name = tag;
    IF vt IS NULL THEN
        RAISE EXCEPTION 'unknown tag "%"', tag USING ERRCODE = 'undefined_object';
    ELSIF vt <> 'numeric' THEN
        RAISE EXCEPTION 'tag "%" is not numeric', tag USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF fraction = 'NaN' OR fraction < 0 OR fraction > 1 THEN
        RAISE EXCEPTION 'fraction must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- like the audience evaluator: no silent NULL for a tag the caller may not read
    IF sc = 'group' AND NOT (SELECT d.shared_with_brands FROM retail_mid.tag_definition d WHERE d.tag_name = tag)
       AND NOT retail_mid.brand_visible('*') THEN
        RAISE EXCEPTION 'tag "%" is group-wide and not shared with brands', tag USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT percentile_disc(fraction) WITHIN GROUP (ORDER BY v.numeric_value) INTO r
      FROM retail_mid.tag_value v
     WHERE v.tag_name = tag AND v.valid_to IS NULL
       AND (b IS NULL OR CASE WHEN sc = 'brand' THEN v.brand = b
                              ELSE v.customer_key IN (SELECT cb.customer_key FROM retail_mid.customer_brand cb WHERE cb.brand = b) END);
    RETURN r;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_percentile(text, float8, text) IS 'percentile_disc of a numeric tag''s current values readable by the caller (NULL when there are none): the smallest value with at least that fraction of values at or below it; with a brand, that brand''s values of a brand tag, or a group tag''s values of the brand''s customers. NULL tag or fraction give NULL.';
