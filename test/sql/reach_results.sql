-- reach_results: campaign results (issue 16): the control group of a plan, delivery receipts loaded all or nothing,
-- reach_plan_performance against plain SQL, the response-rate tags and the seed's churn-SMS example
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
CREATE FUNCTION pg_temp.try_detail(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(E'\n  ' || d, '');
END;
$$;

-- fixture: 600 members of brand rr_t, all in the audience tag rr_in; sms consent for all but every tenth member,
-- email (preferred) for every third
CREATE TABLE public.rr_cust AS
SELECT g, retail_mid.customer_key_of('member_id', 'rr_' || g, 'rr_t') AS customer_key FROM generate_series(1, 600) g;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql) VALUES
 ('rr_in', '其他', '其他', 'boolean', 'SELECT customer_key, true FROM public.rr_cust');
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['rr_in']) > 0 AS tags_evaluated;
RESET client_min_messages;
INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, preference, changed_at)
SELECT 'rr_t', customer_key, 'sms', 'granted', NULL, timestamp '2026-01-01' FROM public.rr_cust WHERE g % 10 <> 0
UNION ALL
SELECT 'rr_t', customer_key, 'email', 'granted', 1, timestamp '2026-01-01' FROM public.rr_cust WHERE g % 3 = 0 AND g % 10 <> 0;

-- ------------------------------------------------------------ control group
-- bad shares are refused; the default is no control group, as before issue 16
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms}', '2026-06-01', holdout_share => -0.1)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms}', '2026-06-01', holdout_share => 1)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms}', '2026-06-01', holdout_share => NULL)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms}', '2026-06-01', holdout_share => 'NaN')$$);
SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms,email}', '2026-06-01 10:00', name => 'rr none') AS plan_none \gset
SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms,email}', '2026-06-01 10:00', holdout_share => 0.2,
                                    templates => '{"*": "generic"}', name => 'rr A', cap_touches => 5) AS plan_a \gset
SELECT holdout_share FROM retail_mid.reach_plan WHERE plan_id = :plan_none;
SET client_min_messages = warning;
-- (plan ids and customer keys depend on the tests run before in the database, and with them the hash: the
-- output shows what does not depend on them)
SELECT members, planned + held_out AS would_be_touched, skipped_no_consent, held_out BETWEEN 0.13 * 540 AND 0.27 * 540 AS about_a_fifth
  FROM retail_mid.reach_plan_run(:plan_a);
RESET client_min_messages;
-- the control group is exactly the members that would be touched whose bucket is below 0.2, computed here from md5
-- directly; none of them is in the outbox; the share is near 0.2
CREATE TEMP TABLE rr_bucket AS
SELECT c.g, c.customer_key, (('x' || substr(md5(:plan_a || ':' || c.customer_key), 1, 13))::bit(52)::int8)::float8 / 2^52 AS u
  FROM public.rr_cust c;
SELECT (SELECT count(*) FROM rr_bucket b JOIN retail_mid.reach_holdout h ON h.plan_id = :plan_a AND h.customer_key = b.customer_key
         WHERE h.bucket <> b.u OR retail_mid.reach_holdout_bucket(:plan_a, b.customer_key) <> b.u) AS bucket_mismatches,
       (SELECT count(*) FROM ((SELECT b.customer_key FROM rr_bucket b WHERE b.g % 10 <> 0 AND b.u < 0.2)
                              EXCEPT (SELECT h.customer_key FROM retail_mid.reach_holdout h WHERE h.plan_id = :plan_a)) x) AS missing,
       (SELECT count(*) FROM ((SELECT h.customer_key FROM retail_mid.reach_holdout h WHERE h.plan_id = :plan_a)
                              EXCEPT (SELECT b.customer_key FROM rr_bucket b WHERE b.g % 10 <> 0 AND b.u < 0.2)) x) AS extra,
       (SELECT count(*) FROM retail_mid.reach_holdout h JOIN retail_mid.reach_outbox o USING (plan_id, customer_key)
         WHERE h.plan_id = :plan_a) AS held_out_and_sent,
       (SELECT count(*) FROM retail_mid.reach_outbox o WHERE o.plan_id = :plan_a AND o.status = 'planned')
     + (SELECT count(*) FROM retail_mid.reach_holdout h WHERE h.plan_id = :plan_a) AS planned_or_held_out;
SELECT channel, template, count(*) > 0 AS some_held_out FROM retail_mid.reach_holdout WHERE plan_id = :plan_a GROUP BY 1, 2 ORDER BY 1, 2;
SELECT held_out = (SELECT count(*) FROM retail_mid.reach_holdout WHERE plan_id = :plan_a) AS run_counts_holdout, held_out + planned
  FROM retail_mid.reach_run WHERE plan_id = :plan_a;
-- re-running writes nothing; decided again from scratch, the same members are held out (deterministic)
SET client_min_messages = warning;
SELECT members, already_decided, planned, held_out FROM retail_mid.reach_plan_run(:plan_a);
CREATE TEMP TABLE rr_holdout_first AS SELECT customer_key FROM retail_mid.reach_holdout WHERE plan_id = :plan_a;
DELETE FROM retail_mid.reach_holdout WHERE plan_id = :plan_a;
DELETE FROM retail_mid.reach_outbox WHERE plan_id = :plan_a;
SELECT planned + held_out AS decided_again FROM retail_mid.reach_plan_run(:plan_a);
RESET client_min_messages;
SELECT (SELECT count(*) FROM ((TABLE rr_holdout_first) EXCEPT (SELECT customer_key FROM retail_mid.reach_holdout WHERE plan_id = :plan_a)
                              UNION ALL
                              (SELECT customer_key FROM retail_mid.reach_holdout WHERE plan_id = :plan_a) EXCEPT (TABLE rr_holdout_first)) x) AS differences;
-- another plan draws another control group (the hash includes the plan), of about the same share
SELECT retail_mid.reach_plan_create('rr_t', 'rr_in', '{sms,email}', '2026-09-01 10:00', holdout_share => 0.2, name => 'rr B') AS plan_b \gset
SET client_min_messages = warning;
SELECT held_out BETWEEN 0.13 * 540 AND 0.27 * 540 AS about_a_fifth FROM retail_mid.reach_plan_run(:plan_b);
RESET client_min_messages;
SELECT count(*) BETWEEN 4 AND 45 AS independent_draws FROM retail_mid.reach_holdout a JOIN retail_mid.reach_holdout b USING (customer_key)
 WHERE a.plan_id = :plan_a AND b.plan_id = :plan_b;
SELECT count(*) FILTER (WHERE u < 0.2) = (SELECT count(*) FROM retail_mid.reach_holdout WHERE plan_id = :plan_a) AS same_as_md5_count
  FROM rr_bucket WHERE g % 10 <> 0;
-- a plan that has run keeps its share; a held-out member is never in the outbox
SELECT pg_temp.try('UPDATE retail_mid.reach_plan SET holdout_share = 0.5 WHERE plan_id = ' || :plan_a);
SELECT pg_temp.try('UPDATE retail_mid.reach_plan SET holdout_share = 0.2 WHERE plan_id = ' || :plan_a) AS same_share_ok;

-- ------------------------------------------------------------ receipts
-- the delivery system's report for plan A: every touch sent a minute after the planned time; nine in ten delivered
-- after 2 minutes, the others bounced; opens, clicks, redemptions and unsubscriptions on some
CREATE TEMP TABLE rr_touch AS
SELECT c.g, o.customer_key, o.channel, o.template, o.planned_at FROM retail_mid.reach_outbox o JOIN public.rr_cust c USING (customer_key)
 WHERE o.plan_id = :plan_a AND o.status = 'planned';
CREATE TEMP TABLE rr_events AS
SELECT t.customer_key, t.channel, t.template, e.event, t.planned_at + e.after AS event_at
  FROM rr_touch t, LATERAL (VALUES
      ('sent', interval '1 minute', true),
      ('delivered', interval '2 minutes', t.g % 9 <> 4),
      ('bounced', interval '2 minutes', t.g % 9 = 4),
      ('opened', interval '3 hours', t.g % 9 <> 4 AND t.g % 4 <> 1),
      ('opened', interval '2 days', t.g % 9 <> 4 AND t.g % 4 = 2),        -- opened twice: one opened touch
      ('clicked', interval '4 hours', t.g % 9 <> 4 AND t.g % 4 = 0 AND t.g % 3 <> 1),
      ('redeemed', interval '3 days', t.g % 9 <> 4 AND t.g % 8 = 0),
      ('unsubscribed', interval '5 days', t.g % 9 <> 4 AND t.g % 23 = 0)) e(event, after, applies)
 WHERE e.applies;
SELECT event, count(*) > 0 AS some FROM rr_events GROUP BY 1 ORDER BY 1;
-- channel and template are optional; when given they must be the touch's
CREATE TEMP TABLE rr_batch AS
SELECT jsonb_agg(jsonb_build_object('plan_id', :plan_a, 'customer_key', customer_key, 'event', event, 'event_at', to_jsonb(event_at))
                 || CASE WHEN customer_key % 2 = 0 THEN jsonb_build_object('channel', channel, 'template', template) ELSE '{}' END
                 ORDER BY event_at, customer_key, event) AS v
  FROM rr_events;
SELECT count(*) AS reasons FROM rr_batch, retail_mid.reach_receipt_check(v);
SET client_min_messages = warning;
SELECT r.rows_loaded = (SELECT count(*) FROM rr_events) AS all_loaded,
       r.events = (SELECT jsonb_object_agg(event, n) FROM (SELECT event, count(*) AS n FROM rr_events GROUP BY 1) e) AS events_counted
  FROM rr_batch, retail_mid.reach_receipt_load(v) r;
RESET client_min_messages;
SELECT (SELECT count(*) FROM retail_mid.reach_receipt WHERE plan_id = :plan_a) = (SELECT count(*) FROM rr_events) AS loaded,
       (SELECT count(*) FROM ((SELECT customer_key, channel, template, event, event_at FROM retail_mid.reach_receipt WHERE plan_id = :plan_a)
                              EXCEPT (SELECT * FROM rr_events)) x) AS differ_from_report;
-- the outbox follows: delivered, or failed when only bounced
SELECT o.status, count(*) = count(*) FILTER (WHERE CASE o.status
           WHEN 'delivered' THEN EXISTS (SELECT 1 FROM rr_events e WHERE e.customer_key = o.customer_key AND e.event = 'delivered')
           WHEN 'failed' THEN NOT EXISTS (SELECT 1 FROM rr_events e WHERE e.customer_key = o.customer_key AND e.event = 'delivered')
                          AND EXISTS (SELECT 1 FROM rr_events e WHERE e.customer_key = o.customer_key AND e.event = 'bounced')
           WHEN 'skipped' THEN NOT EXISTS (SELECT 1 FROM rr_events e WHERE e.customer_key = o.customer_key) END) AS as_reported
  FROM retail_mid.reach_outbox o WHERE o.plan_id = :plan_a GROUP BY 1 ORDER BY 1;
SELECT outcome, rows_written = (SELECT count(*) FROM rr_events) AS rows_written,
       (detail ->> 'outbox_status_changed')::int = (SELECT count(*) FROM rr_touch) AS every_touch_moved_on FROM retail_mid.job_log
 WHERE job = 'reach_receipt_load' ORDER BY job_id DESC LIMIT 1;

-- bad batches: three good receipts (the redeemed receipts of three delivered touches not yet redeemed) and one bad
-- row; each batch is rejected whole, with the reason, and nothing of it is loaded
CREATE TEMP TABLE rr_good AS
SELECT jsonb_agg(jsonb_build_object('plan_id', :plan_a, 'customer_key', t.customer_key, 'event', 'redeemed',
                                    'event_at', to_jsonb(t.planned_at + interval '6 days')) ORDER BY t.g) AS v
  FROM (SELECT * FROM rr_touch t WHERE t.g % 9 <> 4 AND t.g % 8 <> 0 ORDER BY t.g LIMIT 3) t;
SELECT (SELECT customer_key FROM retail_mid.reach_holdout WHERE plan_id = :plan_a ORDER BY customer_key LIMIT 1) AS held_key,
       (SELECT customer_key FROM retail_mid.reach_outbox WHERE plan_id = :plan_a AND status = 'skipped' ORDER BY customer_key LIMIT 1) AS skipped_key,
       (SELECT customer_key FROM rr_touch WHERE g % 9 <> 4 ORDER BY g LIMIT 1) AS touch_key,
       (SELECT customer_key FROM public.rr_cust WHERE g = 1) AS other_key \gset
SELECT count(*) AS receipts_before FROM retail_mid.reach_receipt \gset
-- plan ids and customer keys depend on the tests run before in the database: shown by name
CREATE TEMP TABLE rr_ids (id text, name text);
INSERT INTO rr_ids VALUES ('plan ' || :plan_a, 'plan <A>'), ('plan ' || :plan_none, 'plan <none>'),
    ('customer ' || :held_key, 'customer <held>'), ('customer ' || :skipped_key, 'customer <skipped>'),
    ('customer ' || :touch_key, 'customer <touched>');
CREATE FUNCTION pg_temp.mask(t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM rr_ids LOOP
        t := regexp_replace(t, r.id || '\M', r.name, 'g');
    END LOOP;
    RETURN t;
END;
$$;
CREATE TEMP TABLE rr_bad (n int, label text, bad jsonb);
INSERT INTO rr_bad VALUES
 (1, 'unknown plan', jsonb_build_object('plan_id', 999999999, 'customer_key', :touch_key, 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (2, 'touch of another plan''s member', jsonb_build_object('plan_id', :plan_none, 'customer_key', :held_key, 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (3, 'member of the control group', jsonb_build_object('plan_id', :plan_a, 'customer_key', :held_key, 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (4, 'skipped member', jsonb_build_object('plan_id', :plan_a, 'customer_key', :skipped_key, 'event', 'delivered', 'event_at', '2026-06-02 10:00')),
 (5, 'unknown event type', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event', 'seen', 'event_at', '2026-06-02 10:00')),
 (6, 'missing event type', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event_at', '2026-06-02 10:00')),
 (7, 'before the planned send', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event', 'clicked', 'event_at', '2026-06-01 09:59')),
 (8, 'before the sent receipt', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event', 'clicked', 'event_at', '2026-06-01 10:00:30')),
 (9, 'duplicate of a loaded receipt', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event', 'delivered', 'event_at', '2026-06-01 10:02')),
 (10, 'not a date', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event', 'opened', 'event_at', '2026-02-30 10:00')),
 (11, 'not a timestamp', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'event', 'opened', 'event_at', 'yesterday')),
 (12, 'plan_id not a number', jsonb_build_object('plan_id', 'abc', 'customer_key', :touch_key, 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (13, 'customer_key missing', jsonb_build_object('plan_id', :plan_a, 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (14, 'customer_key out of range', jsonb_build_object('plan_id', :plan_a, 'customer_key', 9999999999, 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (15, 'another channel', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'channel', 'wechat', 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (16, 'another template', jsonb_build_object('plan_id', :plan_a, 'customer_key', :touch_key, 'template', 'vip', 'event', 'opened', 'event_at', '2026-06-02 10:00')),
 (17, 'not an object', '42'),
 (18, 'unknown customer', jsonb_build_object('plan_id', :plan_a, 'customer_key', 2000000000, 'event', 'opened', 'event_at', '2026-06-02 10:00'));
SELECT b.n, b.label, pg_temp.mask(pg_temp.try_detail(format('SELECT * FROM retail_mid.reach_receipt_load(%L)', g.v || jsonb_build_array(b.bad)))) AS result
  FROM rr_bad b, rr_good g ORDER BY b.n;
-- a duplicate inside the batch: the later row is the bad one
SELECT pg_temp.try_detail(format('SELECT * FROM retail_mid.reach_receipt_load(%L)', g.v || (g.v -> 1))) AS duplicate_in_batch FROM rr_good g;
SELECT count(*) - :receipts_before AS receipts_loaded_by_bad_batches FROM retail_mid.reach_receipt;
-- every bad row at once: the message counts them, the detail lists the first five, the check function lists all
SELECT pg_temp.mask(pg_temp.try_detail(format('SELECT * FROM retail_mid.reach_receipt_load(%L)', g.v || (SELECT jsonb_agg(bad ORDER BY n) FROM rr_bad)))) AS all_bad
  FROM rr_good g;
SELECT c.row_no, pg_temp.mask(c.reason) AS reason FROM rr_good g, retail_mid.reach_receipt_check(g.v || (SELECT jsonb_agg(bad ORDER BY n) FROM rr_bad)) c;
SELECT pg_temp.try($$SELECT * FROM retail_mid.reach_receipt_load(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM retail_mid.reach_receipt_load('{"plan_id": 1}')$$);
SELECT pg_temp.try($$SELECT * FROM retail_mid.reach_receipt_check('"x"')$$);
SELECT pg_temp.try($$SELECT * FROM retail_mid.load_reach_receipts('/nonexistent/receipts.csv')$$);
SELECT count(*) - :receipts_before AS receipts_loaded_by_bad_batches FROM retail_mid.reach_receipt;
-- an empty batch loads nothing; the good three load (and the same three again are duplicates)
SET client_min_messages = warning;
SELECT rows_loaded, events FROM retail_mid.reach_receipt_load('[]');
SELECT r.rows_loaded, r.events FROM rr_good g, retail_mid.reach_receipt_load(g.v) r;
RESET client_min_messages;
SELECT pg_temp.try(format('SELECT * FROM retail_mid.reach_receipt_load(%L)', g.v)) AS again FROM rr_good g;
-- the CSV loader: same rules (a file with one unsubscribed receipt, then the same file again: a duplicate)
CREATE TEMP TABLE rr_csv_path AS SELECT '/tmp/rr_receipts_' || pg_backend_pid() || '.csv' AS p;
SELECT p AS csv_path FROM rr_csv_path \gset
COPY (SELECT :plan_a AS plan_id, customer_key, channel, template, 'unsubscribed' AS event, to_char(planned_at + interval '9 days', 'YYYY-MM-DD HH24:MI:SS') AS event_at
        FROM rr_touch WHERE g % 9 <> 4 AND g % 23 <> 0 ORDER BY g LIMIT 2) TO :'csv_path' WITH (FORMAT csv, HEADER true);
SET client_min_messages = warning;
SELECT rows_loaded, events FROM retail_mid.load_reach_receipts(:'csv_path');
RESET client_min_messages;
SELECT pg_temp.try(format('SELECT * FROM retail_mid.load_reach_receipts(%L)', :'csv_path')) AS csv_again;

-- ------------------------------------------------------------ performance
-- trade of the brand: members buy (or not) before, inside and after the 30 days following the send; the control
-- buys less. Lines written to the trade DWD directly, as retail_mid.refresh would (into its monthly partitions).
SELECT retail_mid.ensure_partitions('retail_mid.dwd_trade_order_line_di', '2026-05-01', '2026-07-31') AS partitions;
INSERT INTO retail_mid.dwd_trade_order_line_di (dt, brand, order_id, line_no, order_time, customer_key, channel, sku_id, quantity,
                                                unit_price, discount, amount, line_type)
SELECT x.t::date, 'rr_t', 'rr' || c.g || '_' || x.j, 1, x.t, c.customer_key, 'online', 'sku' || (c.g % 7), 1, x.amt, 0,
       CASE WHEN x.kind = 'return' THEN -x.amt ELSE x.amt END, x.kind
  FROM public.rr_cust c
  LEFT JOIN retail_mid.reach_holdout h ON h.plan_id = :plan_a AND h.customer_key = c.customer_key,
  LATERAL (VALUES
      (1, timestamp '2026-05-20 12:00', 50 + c.g % 17, 'sale', c.g % 5 = 0),                                 -- before the send
      (2, timestamp '2026-06-01 10:00', 40, 'sale', c.g % 31 = 0),                                            -- at the send: not after it
      (3, timestamp '2026-06-03 12:00' + make_interval(hours => c.g % 200), 20 + (c.g * 7) % 90, 'sale',
          CASE WHEN h.customer_key IS NULL THEN c.g % 4 = 0 ELSE c.g % 7 = 0 END),                           -- inside the window
      (4, timestamp '2026-06-20 12:00', 15 + c.g % 13, 'sale', c.g % 6 = 0),                                 -- second purchase
      (5, timestamp '2026-06-21 12:00', 10, 'return', c.g % 12 = 0),                                         -- a return: not GMV
      (6, timestamp '2026-07-01 10:00', 30, 'sale', c.g % 11 = 0),                                           -- exactly day 30: inside
      (7, timestamp '2026-07-01 10:00:01', 30, 'sale', c.g % 13 = 0)                                         -- after day 30
  ) x(j, t, amt, kind, applies)
 WHERE x.applies;
-- the same numbers in plain SQL (per member: funnel flags, buyer, GMV in (send, send + 30 days]; then per group)
CREATE TEMP VIEW rr_expected AS
WITH mem AS (
    SELECT o.plan_id, o.channel, o.template, o.customer_key, o.planned_at, false AS ctl FROM retail_mid.reach_outbox o
     WHERE o.plan_id = :plan_a AND o.status <> 'skipped'
    UNION ALL
    SELECT h.plan_id, h.channel, h.template, h.customer_key, h.planned_at, true FROM retail_mid.reach_holdout h WHERE h.plan_id = :plan_a),
per AS (
    SELECT mem.*,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'sent') AS s,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'delivered') AS d,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'opened') AS o,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'clicked') AS c,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'redeemed') AS rd,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'unsubscribed') AS u,
           EXISTS (SELECT 1 FROM retail_mid.reach_receipt r WHERE r.plan_id = mem.plan_id AND r.customer_key = mem.customer_key AND r.event = 'bounced') AS b,
           (SELECT sum(l.amount) FROM retail_mid.dwd_trade_order_line_di l
             WHERE l.brand = 'rr_t' AND l.customer_key = mem.customer_key AND l.line_type = 'sale'
               AND l.order_time > mem.planned_at AND l.order_time <= mem.planned_at + interval '30 days') AS gmv
      FROM mem),
grp AS (
    SELECT channel, template,
           count(*) FILTER (WHERE NOT ctl) AS nt, count(*) FILTER (WHERE ctl) AS nc,
           count(*) FILTER (WHERE NOT ctl AND s) AS s, count(*) FILTER (WHERE NOT ctl AND d) AS d, count(*) FILTER (WHERE NOT ctl AND o) AS o,
           count(*) FILTER (WHERE NOT ctl AND c) AS c, count(*) FILTER (WHERE NOT ctl AND rd) AS rd, count(*) FILTER (WHERE NOT ctl AND u) AS u,
           count(*) FILTER (WHERE NOT ctl AND b) AS b,
           count(*) FILTER (WHERE NOT ctl AND gmv IS NOT NULL) AS bt, count(*) FILTER (WHERE ctl AND gmv IS NOT NULL) AS bc,
           coalesce(sum(gmv) FILTER (WHERE NOT ctl), 0) AS gt, coalesce(sum(gmv) FILTER (WHERE ctl), 0) AS gc,
           -- sample variances of GMV per head (zero for non-buyers), from the sums of squares
           (sum(coalesce(gmv, 0)^2) FILTER (WHERE NOT ctl) - sum(coalesce(gmv, 0)) FILTER (WHERE NOT ctl)^2 / count(*) FILTER (WHERE NOT ctl))
               / (count(*) FILTER (WHERE NOT ctl) - 1) AS vt,
           (sum(coalesce(gmv, 0)^2) FILTER (WHERE ctl) - sum(coalesce(gmv, 0)) FILTER (WHERE ctl)^2 / nullif(count(*) FILTER (WHERE ctl), 0))
               / nullif(count(*) FILTER (WHERE ctl) - 1, 0) AS vc
      FROM per GROUP BY channel, template)
SELECT channel, template, nt AS touches, s AS sent, d AS delivered, o AS opened, c AS clicked, rd AS redeemed, u AS unsubscribed, b AS bounced,
       d::float8 / s AS delivery_rate, b::float8 / s AS bounce_rate, o::float8 / d AS open_rate, c::float8 / d AS click_rate,
       rd::float8 / d AS redeem_rate, u::float8 / d AS unsubscribe_rate,
       bt AS buyers, gt AS gmv, bt::float8 / nt AS conversion, gt::float8 / nt AS gmv_per_head,
       nc AS control, bc AS control_buyers, gc AS control_gmv, bc::float8 / nc AS control_conversion, gc::float8 / nc AS control_gmv_per_head,
       bt::float8 / nt - bc::float8 / nc AS uplift,
       sqrt((bt::float8 / nt) * (1 - bt::float8 / nt) / nt + (bc::float8 / nc) * (1 - bc::float8 / nc) / nc) AS se,
       gt::float8 / nt - gc::float8 / nc AS gmv_uplift,
       sqrt(vt::float8 / nt + vc::float8 / nc) AS gse,
       (vt::float8 / nt + vc::float8 / nc)^2 / ((vt::float8 / nt)^2 / (nt - 1) + (vc::float8 / nc)^2 / (nc - 1)) AS df
  FROM grp;
SELECT channel, template, touches > 0 AS touched, sent = touches AS all_sent, delivered + bounced = sent AS delivered_or_bounced,
       control > 0 AS has_control, buyers > 0 AND control_buyers > 0 AS buyers_in_both, uplift_low < uplift AND uplift < uplift_high AS uplift_inside,
       gmv_per_head_uplift_low < gmv_per_head_uplift AND gmv_per_head_uplift < gmv_per_head_uplift_high AS gmv_uplift_inside
  FROM retail_mid.reach_plan_performance(30, :plan_a);
-- every column equal to the plain SQL (floats to 1e-9)
SELECT e.channel, e.template,
       (p.touches, p.sent, p.delivered, p.opened, p.clicked, p.redeemed, p.unsubscribed, p.bounced, p.buyers, p.gmv, p.control, p.control_buyers, p.control_gmv)
         = (e.touches, e.sent, e.delivered, e.opened, e.clicked, e.redeemed, e.unsubscribed, e.bounced, e.buyers, e.gmv, e.control, e.control_buyers, e.control_gmv) AS counts_equal,
       greatest(abs(p.delivery_rate - e.delivery_rate), abs(p.bounce_rate - e.bounce_rate), abs(p.open_rate - e.open_rate),
                abs(p.click_rate - e.click_rate), abs(p.redeem_rate - e.redeem_rate), abs(p.unsubscribe_rate - e.unsubscribe_rate)) < 1e-12 AS rates_equal,
       greatest(abs(p.conversion - e.conversion), abs(p.control_conversion - e.control_conversion), abs(p.uplift - e.uplift),
                abs(p.uplift_low - (e.uplift - 1.959963984540054 * e.se)), abs(p.uplift_high - (e.uplift + 1.959963984540054 * e.se))) < 1e-12 AS uplift_equal,
       greatest(abs(p.gmv_per_head - e.gmv_per_head), abs(p.control_gmv_per_head - e.control_gmv_per_head),
                abs(p.gmv_per_head_uplift - e.gmv_uplift),
                abs(p.gmv_per_head_uplift_low - (e.gmv_uplift - retail_mid.reach_t975(e.df) * e.gse)),
                abs(p.gmv_per_head_uplift_high - (e.gmv_uplift + retail_mid.reach_t975(e.df) * e.gse))) < 1e-9 AS gmv_uplift_equal,
       e.df > 30 AS welch_df_over_30
  FROM rr_expected e JOIN retail_mid.reach_plan_performance(30, :plan_a) p USING (channel, template)
 ORDER BY 1, 2;
SELECT count(*) AS groups FROM retail_mid.reach_plan_performance(30, :plan_a);
-- all plans at once: plan A's rows are the same; a plan without a control group has NULL uplift
SET client_min_messages = warning;
SELECT planned, held_out FROM retail_mid.reach_plan_run(:plan_none);
RESET client_min_messages;
SELECT count(*) AS same_rows FROM retail_mid.reach_plan_performance(30, :plan_a) a JOIN retail_mid.reach_plan_performance(30) b USING (plan_id, channel, template)
 WHERE (a.touches, a.sent, a.delivered, a.opened, a.buyers, a.gmv, a.control, a.control_buyers, a.control_gmv)
     = (b.touches, b.sent, b.delivered, b.opened, b.buyers, b.gmv, b.control, b.control_buyers, b.control_gmv)
   AND abs(a.uplift_high - b.uplift_high) < 1e-12 AND abs(a.gmv_per_head_uplift_high - b.gmv_per_head_uplift_high) < 1e-9;
SELECT channel, touches > 0 AS touched, sent, buyers > 0 AS some_buyers, control, control_conversion IS NULL AS no_control_conversion,
       uplift IS NULL AS no_uplift, gmv_per_head_uplift IS NULL AS no_gmv_uplift
  FROM retail_mid.reach_plan_performance(30, :plan_none) ORDER BY channel;
-- a shorter window: fewer or equal buyers
SELECT bool_and(s.buyers <= l.buyers AND s.gmv <= l.gmv) AS shorter_window_le
  FROM retail_mid.reach_plan_performance(7, :plan_a) s JOIN retail_mid.reach_plan_performance(30, :plan_a) l USING (channel, template);
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_performance(0)');
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_performance(-5)');
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_performance(NULL)');
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_performance(5000)');
SELECT count(*) AS unknown_plan_rows FROM retail_mid.reach_plan_performance(30, -1);
-- the t quantile of the Welch interval against the tables (qt(0.975, df) in R)
SELECT df, round(retail_mid.reach_t975(df)::numeric, 4) AS t975, round(abs(retail_mid.reach_t975(df) - q)::numeric, 5) AS error
  FROM (VALUES (1, 12.7062047), (2, 4.3026527), (3, 3.1824463), (5, 2.5705818), (10, 2.2281389), (30, 2.0422725),
               (100, 1.9839715), (1e6, 1.9599659)) v(df, q);
SELECT retail_mid.reach_t975(0.5) IS NULL AS below_one, retail_mid.reach_t975('NaN') IS NULL AS nan, retail_mid.reach_t975(NULL) IS NULL AS null_df;

-- ------------------------------------------------------------ response-rate tags and the churn-SMS example
-- open rate of SMS over the touches delivered in the 180 days up to behavior_as_of(), per brand and customer
SET retail_mid.as_of = '2026-07-15 00:00';
SELECT tag_name, value_type, scope, numeric_scale FROM retail_mid.tag_definition WHERE tag_name ~ '_rate_180d$' ORDER BY 1;
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['sms_open_rate_180d', 'sms_click_rate_180d', 'email_open_rate_180d', 'email_click_rate_180d']) > 0 AS evaluated;
RESET client_min_messages;
CREATE TEMP VIEW rr_rate_expected AS
SELECT t.channel || '_' || x.w || '_rate_180d' AS tag_name, t.customer_key,
       round(count(*) FILTER (WHERE CASE x.w WHEN 'open' THEN t.o ELSE t.c END)::numeric / count(*), 4) AS value
  FROM (SELECT r.plan_id, r.customer_key, r.channel, bool_or(r.event = 'opened') AS o, bool_or(r.event = 'clicked') AS c
          FROM retail_mid.reach_receipt r WHERE r.brand = 'rr_t'
         GROUP BY 1, 2, 3
        HAVING min(r.event_at) FILTER (WHERE r.event = 'delivered') > '2026-07-15'::timestamp - interval '180 days'
           AND min(r.event_at) FILTER (WHERE r.event = 'delivered') <= '2026-07-15') t,
       (VALUES ('open'), ('click')) x(w)
 GROUP BY 1, 2;
SELECT e.tag_name, count(*) > 0 AS some_customers,
       count(*) FILTER (WHERE v.numeric_value IS DISTINCT FROM e.value) AS differences,
       (SELECT count(*) FROM retail_mid.tag_value v2 WHERE v2.tag_name = e.tag_name AND v2.brand = 'rr_t' AND v2.valid_to IS NULL) - count(*) AS extra_values
  FROM rr_rate_expected e
  LEFT JOIN retail_mid.tag_value v ON v.tag_name = e.tag_name AND v.customer_key = e.customer_key AND v.brand = 'rr_t' AND v.valid_to IS NULL
 GROUP BY e.tag_name ORDER BY 1;
-- likely churners of the brand: lifecycle from the to-date trade (written here as retail_mid.refresh would)
INSERT INTO retail_mid.dws_trade_customer_td (brand, customer_key, first_order_date, last_order_date, orders, return_orders, active_days,
                                              quantity, sales_amount, return_amount, net_amount)
SELECT 'rr_t', customer_key, date '2024-01-01', date '2026-06-30' - (g % 5) * 100, 3, 0, 3, 3, 100, 0, 100 FROM public.rr_cust;
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['lifecycle']) > 0 AS evaluated;
RESET client_min_messages;
-- the seed's example: "SMS to likely churners whose open rate is high", as an audience expression
SELECT retail_mid.audience_count('lifecycle IN (lapsing, churned) AND sms_open_rate_180d >= 0.5', 'rr_t') > 0 AS non_empty,
       retail_mid.audience_count('lifecycle IN (lapsing, churned) AND sms_open_rate_180d >= 0.5', 'rr_t') = (SELECT count(*) FROM public.rr_cust c
          JOIN retail_mid.dws_trade_customer_td t ON t.brand = 'rr_t' AND t.customer_key = c.customer_key
          JOIN rr_rate_expected e ON e.tag_name = 'sms_open_rate_180d' AND e.customer_key = c.customer_key
         WHERE t.last_order_date < date '2026-06-30' - 90 AND e.value >= 0.5) AS equals_plain_sql;
SELECT retail_mid.reach_plan_create('rr_t', 'lifecycle IN (lapsing, churned) AND sms_open_rate_180d >= 0.5', '{sms}', '2026-07-20 10:00',
                                    templates => '{"*": "win_back_sms"}', holdout_share => 0.1, name => 'churn sms') AS plan_churn \gset
SET client_min_messages = warning;
SELECT members > 0 AS some_members, planned + skipped_frequency_cap + skipped_no_consent + skipped_global_opt_out + skipped_same_person + held_out = members AS all_decided,
       members = (SELECT retail_mid.audience_count('lifecycle IN (lapsing, churned) AND sms_open_rate_180d >= 0.5', 'rr_t')) AS whole_audience
  FROM retail_mid.reach_plan_run(:plan_churn);
RESET client_min_messages;
SELECT count(*) FILTER (WHERE channel <> 'sms') AS not_sms, count(*) FILTER (WHERE status = 'planned') > 0 AS some_planned
  FROM retail_mid.reach_outbox WHERE plan_id = :plan_churn;
RESET retail_mid.as_of;
