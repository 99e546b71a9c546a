-- reach: reach plans write one decision per audience member (consented channel by preference, template per
-- segment, frequency cap over any window), checked against the same rules written as plain SQL
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

-- fixture: 240 members of brand reach_t; audience = the reach_t_in tag, segment = the reach_t_seg tag
CREATE TABLE public.reach_t_cust AS
SELECT g, retail_mid.customer_key_of('member_id', 'reach_t_' || g, 'reach_t') AS customer_key FROM generate_series(1, 240) g;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql) VALUES
 ('reach_t_in', '其他', '其他', 'boolean', 'SELECT customer_key, g % 10 <> 0 FROM public.reach_t_cust'),
 ('reach_t_seg', '其他', '其他', 'enum',
  $$SELECT customer_key, CASE g % 3 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' END FROM public.reach_t_cust$$);
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['reach_t_in', 'reach_t_seg']) > 0 AS tags_evaluated;
RESET client_min_messages;

-- consent and preference history; T = 2026-06-01 10:00 is the send time of the main plan
CREATE TEMP TABLE rt_consent AS
SELECT c.customer_key, x.* FROM public.reach_t_cust c, LATERAL (VALUES
    ('sms', 'granted', NULL::smallint, timestamp '2026-02-20 00:00', c.g % 2 = 0),
    ('email', 'granted', CASE WHEN c.g % 5 = 0 THEN 1 END::smallint, timestamp '2026-04-12 00:00', c.g % 3 <> 0),
    ('wechat', 'granted', 2::smallint, timestamp '2026-03-01 00:00', c.g % 7 = 0),
    ('app_push', 'granted', 1::smallint, timestamp '2026-06-02 00:00', c.g % 11 = 0),   -- after the send time
    ('sms', 'opted_out', NULL, timestamp '2026-05-22 00:00', c.g % 4 = 0),
    ('*', 'opted_out', NULL, timestamp '2026-05-27 00:00', c.g % 13 = 0),
    ('email', 'granted', NULL, timestamp '2026-05-31 00:00', c.g % 26 = 0),            -- after the global opt-out
    ('*', 'opted_out', NULL, timestamp '2026-06-03 00:00', c.g % 17 = 0),               -- after the send time
    ('sms', 'granted', NULL, timestamp '2026-06-01 10:00', c.g % 19 = 0),               -- exactly at the send time
    ('*', 'opted_out', NULL, timestamp '2026-06-01 10:00', c.g % 38 = 0)                -- same instant: opt-out wins
  ) x(channel, status, preference, changed_at, applies) WHERE x.applies;
INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, preference, changed_at, source)
SELECT 'reach_t', customer_key, channel, status, preference, changed_at, 'test' FROM rt_consent;
-- bad consent rows
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at) VALUES ('reach_t', 1, 'fax', 'granted', '2026-01-01')$$);
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at) VALUES ('reach_t', 1, 'sms', NULL, '2026-01-01')$$);
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at) VALUES ('reach_t', 1, 'sms', 'maybe', '2026-01-01')$$);
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at) VALUES ('reach_t', 1, '*', 'granted', '2026-01-01')$$);
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at) VALUES ('reach_t', 1, 'sms', 'granted', NULL)$$);
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, changed_at) VALUES ('reach_t', 1, 'sms', 'granted', 'infinity')$$);
SELECT pg_temp.try($$INSERT INTO retail_mid.reach_consent (brand, customer_key, channel, status, preference, changed_at) VALUES ('reach_t', 1, 'sms', 'granted', 0, '2026-01-01')$$);

-- touch history in the ODS: sent and exposed count, clicked does not, other brands and undated touches do not
INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type)
SELECT 'reach_t', 'hist' || j, 'member_id', 'reach_t_' || c.g, 'sms',
       timestamp '2026-06-01 10:00' - make_interval(days => (c.g * 7 + j * 11) % 45) + make_interval(hours => j),
       CASE WHEN j % 3 = 0 THEN 'exposed' ELSE 'sent' END
  FROM public.reach_t_cust c, generate_series(1, 9) j WHERE j <= (hashint4(c.g) & 15) % 10;
INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type)
SELECT b, 'noise', 'member_id', 'reach_t_' || g, 'sms', t, tt
  FROM generate_series(1, 240) g,
       (VALUES ('reach_t', timestamp '2026-05-30', 'clicked'), ('other_brand', timestamp '2026-05-30', 'sent'),
               ('reach_t', NULL, 'sent')) v(b, t, tt);
-- the frequency caps read the touch DWD: while it is behind the ODS, reach refuses to count (55000), then refresh
SELECT count(*) AS stale_days, min(dt) AS first_day, max(dt) AS last_day FROM retail_mid.domain_stale_days('touch', 'reach_t');
SELECT pg_temp.try($$SELECT retail_mid.domain_require_fresh('touch', 'reach_t', '2026-05-01', '2026-06-30')$$);
SELECT pg_temp.try($$SELECT retail_mid.domain_require_fresh('pos', 'reach_t', NULL, NULL)$$);
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2026-01-01', '2026-12-31') >= 0 AS refreshed;
RESET client_min_messages;
SELECT count(*) AS stale_days FROM retail_mid.domain_stale_days('touch', 'reach_t');

-- plan A (sent 10 days after T) runs first: its touches lie after T and count for plan B's cap
SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in AND reach_t_seg = gold', '{email,sms}', '2026-06-11 09:00',
                                    cap_touches => 7, name => 'plan A') AS plan_a \gset
SET client_min_messages = warning;
SELECT members, already_decided, planned > 0 AS some_planned FROM retail_mid.reach_plan_run(:plan_a);
RESET client_min_messages;
SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms,email,wechat,app_push}', '2026-06-01 10:00',
                                    templates => '{"*": "generic", "gold": "gold_offer", "silver": "silver_offer"}',
                                    segment_tag => 'reach_t_seg', cap_touches => 6, cap_days => 30, name => 'plan B') AS plan_b \gset

-- the reference, in plain SQL, decided before plan B runs
CREATE TEMP TABLE rt_expected AS
WITH p AS (SELECT * FROM retail_mid.reach_plan WHERE plan_id = :plan_b),
members AS (SELECT c.customer_key, c.g FROM public.reach_t_cust c WHERE c.g % 10 <> 0),
ch AS (SELECT c, i FROM p, unnest(p.channels) WITH ORDINALITY u(c, i)),
-- a channel row holds when no row of the same channel is newer and not after the send time
cur AS (SELECT r.* FROM retail_mid.reach_consent r, p
         WHERE r.brand = 'reach_t' AND r.changed_at <= p.send_at
           AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_consent r2 WHERE r2.brand = r.brand AND r2.customer_key = r.customer_key
                             AND r2.channel = r.channel AND r2.changed_at > r.changed_at AND r2.changed_at <= p.send_at)),
ok AS (SELECT cur.customer_key, cur.channel, cur.preference, ch.i FROM cur JOIN ch ON ch.c = cur.channel
        WHERE cur.status = 'granted'
          AND NOT EXISTS (SELECT 1 FROM cur g WHERE g.customer_key = cur.customer_key AND g.channel = '*' AND g.changed_at >= cur.changed_at)),
best AS (SELECT m.customer_key,
                (SELECT ok.channel FROM ok WHERE ok.customer_key = m.customer_key ORDER BY ok.preference NULLS LAST, ok.i LIMIT 1) AS channel,
                EXISTS (SELECT 1 FROM cur WHERE cur.customer_key = m.customer_key AND cur.channel = '*') AS opted_out
           FROM members m),
touches AS (SELECT k.customer_key, t.touched_at FROM retail_mid.ods_campaign_touch t
              JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = t.id_value
             WHERE t.brand = 'reach_t' AND t.touch_type IN ('sent', 'exposed') AND t.touched_at IS NOT NULL
            UNION ALL
            SELECT o.customer_key, o.planned_at FROM retail_mid.reach_outbox o WHERE o.brand = 'reach_t' AND o.status = 'planned'),
-- every window (e - 30 days, e] that contains T, for e at T, at each touch, and just before each touch leaves
ends AS (SELECT DISTINCT b.customer_key, e FROM best b, p,
                LATERAL (SELECT p.send_at UNION ALL SELECT t.touched_at FROM touches t WHERE t.customer_key = b.customer_key
                         UNION ALL SELECT t.touched_at + interval '30 days' - interval '1 microsecond' FROM touches t
                          WHERE t.customer_key = b.customer_key) x(e)
          WHERE e >= p.send_at AND e < p.send_at + interval '30 days'),
fullest AS (SELECT ends.customer_key, max((SELECT count(*) FROM touches t WHERE t.customer_key = ends.customer_key
                                            AND t.touched_at > ends.e - interval '30 days' AND t.touched_at <= ends.e)) AS n
              FROM ends GROUP BY ends.customer_key)
SELECT b.customer_key,
       CASE WHEN b.channel IS NOT NULL AND f.n < 6 THEN b.channel END AS channel,
       CASE WHEN b.channel IS NOT NULL AND f.n < 6
            THEN CASE m.g % 3 WHEN 0 THEN 'gold_offer' WHEN 1 THEN 'silver_offer' ELSE 'generic' END END AS template,
       CASE WHEN b.channel IS NULL AND b.opted_out THEN 'global_opt_out' WHEN b.channel IS NULL THEN 'no_consent'
            WHEN f.n >= 6 THEN 'frequency_cap' END AS reason
  FROM best b JOIN members m USING (customer_key) JOIN fullest f USING (customer_key);

SELECT * FROM retail_mid.reach_plan_run(:plan_b);
SELECT (SELECT count(*) FROM (SELECT customer_key, channel, template, reason FROM retail_mid.reach_outbox WHERE plan_id = :plan_b
                              EXCEPT SELECT * FROM rt_expected) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rt_expected
                              EXCEPT SELECT customer_key, channel, template, reason FROM retail_mid.reach_outbox WHERE plan_id = :plan_b) x) AS missing;
-- every rule was exercised
SELECT coalesce(reason, channel) AS decision, count(*) FROM rt_expected GROUP BY 1 ORDER BY 1;
SELECT template, count(*) FROM retail_mid.reach_outbox WHERE plan_id = :plan_b AND status = 'planned' GROUP BY 1 ORDER BY 1;
-- members capped only by a window that ends after T (plan A's touches): a check of (T - 30 days, T] alone misses them
SELECT count(*) AS capped_by_later_touches FROM retail_mid.reach_outbox o WHERE o.plan_id = :plan_b AND o.reason = 'frequency_cap'
   AND (SELECT count(*) FROM retail_mid.reach_touch t WHERE t.brand = 'reach_t' AND t.customer_key = o.customer_key
          AND t.touched_at > timestamp '2026-06-01 10:00' - interval '30 days' AND t.touched_at <= '2026-06-01 10:00'
          AND NOT (t.source = 'outbox' AND t.touched_at = '2026-06-01 10:00')) < 6;
-- after the run nobody planned by B exceeds 6 touches in any 30-day window around T (plain SQL over the final touches)
SELECT count(*) AS over_cap FROM (
    SELECT o.customer_key, e.e FROM retail_mid.reach_outbox o,
           LATERAL (SELECT touched_at FROM retail_mid.reach_touch t WHERE t.brand = 'reach_t' AND t.customer_key = o.customer_key) e(e)
     WHERE o.plan_id = :plan_b AND o.status = 'planned'
       AND (SELECT count(*) FROM retail_mid.reach_touch t WHERE t.brand = 'reach_t' AND t.customer_key = o.customer_key
              AND t.touched_at > e.e - interval '30 days' AND t.touched_at <= e.e) > 6
       AND e.e >= o.planned_at AND e.e < o.planned_at + interval '30 days') x;

-- re-running writes nothing twice
SELECT members, already_decided, planned, skipped_frequency_cap, skipped_no_consent, skipped_global_opt_out
  FROM retail_mid.reach_plan_run(:plan_b);
SELECT count(*) AS outbox_rows, count(DISTINCT customer_key) AS customers FROM retail_mid.reach_outbox WHERE plan_id = :plan_b;
-- the audience grows: only the new members are decided
UPDATE retail_mid.tag_definition SET rule_sql = 'SELECT customer_key, g % 20 <> 0 FROM public.reach_t_cust' WHERE tag_name = 'reach_t_in';
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['reach_t_in']) > 0 AS tags_evaluated;
RESET client_min_messages;
SELECT members, already_decided, planned + skipped_frequency_cap + skipped_no_consent + skipped_global_opt_out AS decided
  FROM retail_mid.reach_plan_run(:plan_b);
SELECT count(*) AS outbox_rows FROM retail_mid.reach_outbox WHERE plan_id = :plan_b;
-- each run is in reach_run and job_log
SELECT r.members, r.already_decided, r.planned, r.skipped, l.outcome, l.rows_written
  FROM retail_mid.reach_run r JOIN retail_mid.job_log l ON l.job_id = r.job_id WHERE r.plan_id = :plan_b ORDER BY r.run_id;

-- plan touches reported back as sent by the delivery system in ods_campaign_touch are not counted twice
INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type)
SELECT 'reach_t', p.campaign_id, k.id_type, k.id_value, o.channel, o.planned_at, 'sent'
  FROM retail_mid.reach_outbox o JOIN retail_mid.reach_plan p USING (plan_id) JOIN retail_mid.customer_key k USING (customer_key)
 WHERE o.plan_id = :plan_a AND o.status = 'planned';
UPDATE retail_mid.reach_outbox SET status = 'sent' WHERE plan_id = :plan_a AND status = 'planned';
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2026-01-01', '2026-12-31') >= 0 AS refreshed;
RESET client_min_messages;
SELECT source, count(*) FROM retail_mid.reach_touch WHERE brand = 'reach_t' AND touched_at = '2026-06-11 09:00' GROUP BY 1;

-- a cap of one touch: anyone touched in the 30 days either side of the send time is skipped
SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms,email,wechat}', '2026-07-05', cap_touches => 1) AS plan_c \gset
SELECT planned > 0 AS some_planned, skipped_frequency_cap > 0 AS some_capped FROM retail_mid.reach_plan_run(:plan_c);
WITH near AS (SELECT o.customer_key, o.reason,
                     EXISTS (SELECT 1 FROM retail_mid.reach_touch t WHERE t.brand = 'reach_t' AND t.customer_key = o.customer_key
                               AND t.touched_at > '2026-06-05 00:00' AND t.touched_at < '2026-08-04 00:00'
                               AND NOT (t.source = 'outbox' AND t.touched_at = '2026-07-05')) AS touched_near
                FROM retail_mid.reach_outbox o WHERE o.plan_id = :plan_c AND o.reason IS DISTINCT FROM 'no_consent'
                 AND o.reason IS DISTINCT FROM 'global_opt_out')
SELECT count(*) FILTER (WHERE reason IS NULL AND touched_near) AS planned_but_touched,
       count(*) FILTER (WHERE reason = 'frequency_cap' AND NOT touched_near) AS skipped_but_free FROM near;

-- OneID: the keys of one person share the cap, and a plan touches a person once. Members g and g + 120 are one
-- person (of brand reach_t's customers); near the send time 2026-09-20 the only touches are these: pairs with
-- g % 4 = 1 have one touch on each key (two for the person: at a cap of 2, capped, though each key alone has
-- one), pairs with g % 4 = 2 one touch on the second key only (allowed).
INSERT INTO retail_mid.customer_brand (brand, customer_key) SELECT 'reach_t', customer_key FROM public.reach_t_cust;
INSERT INTO retail_mid.oneid_person_map (customer_key, person_key)
SELECT c.customer_key, p.customer_key FROM public.reach_t_cust c JOIN public.reach_t_cust p ON p.g = (c.g - 1) % 120 + 1;
INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type)
SELECT 'reach_t', 'oneid', 'member_id', 'reach_t_' || k, 'sms', timestamp '2026-09-10 00:00' + make_interval(days => k / 120), 'sent'
  FROM generate_series(1, 120) g, LATERAL (VALUES (g), (g + 120)) v(k)
 WHERE g % 4 = 1 OR (g % 4 = 2 AND k > 120);
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2026-01-01', '2026-12-31') >= 0 AS refreshed;
RESET client_min_messages;
SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms,email,wechat}', '2026-09-20', cap_touches => 2) AS plan_d \gset
SELECT planned > 0 AS some_planned, skipped_frequency_cap > 0 AS some_capped, skipped_same_person > 0 AS some_same_person
  FROM retail_mid.reach_plan_run(:plan_d);
-- against plain SQL: per person, the injected touches of both keys
WITH person AS (SELECT c.customer_key, (c.g - 1) % 120 + 1 AS pg FROM public.reach_t_cust c),
touches AS (SELECT pg, count(*) AS n FROM public.reach_t_cust c JOIN person USING (customer_key)
              JOIN retail_mid.ods_campaign_touch t ON t.campaign_id = 'oneid' AND t.id_value = 'reach_t_' || c.g GROUP BY pg),
d AS (SELECT o.customer_key, o.reason, p.pg, coalesce(t.n, 0) AS n
        FROM retail_mid.reach_outbox o JOIN person p USING (customer_key) LEFT JOIN touches t USING (pg)
       WHERE o.plan_id = :plan_d)
SELECT (SELECT count(*) FROM (SELECT pg FROM d WHERE reason IS NULL GROUP BY pg HAVING count(*) > 1) x) AS persons_touched_twice,
       count(*) FILTER (WHERE reason IS NULL AND n >= 2) AS planned_over_cap,
       count(*) FILTER (WHERE reason = 'frequency_cap' AND n < 2) AS capped_below_cap,
       count(*) FILTER (WHERE reason = 'frequency_cap' AND n = 2) AS capped_by_the_persons_two_keys,
       count(*) FILTER (WHERE reason = 'same_person' AND NOT EXISTS (SELECT 1 FROM d d2 WHERE d2.pg = d.pg AND d2.customer_key < d.customer_key
                                                                   AND d2.reason IS DISTINCT FROM 'no_consent' AND d2.reason IS DISTINCT FROM 'global_opt_out')) AS same_person_without_a_lower_key
  FROM d;
-- re-running decides nothing twice
SELECT planned, skipped_same_person FROM retail_mid.reach_plan_run(:plan_d);
DELETE FROM retail_mid.oneid_person_map WHERE customer_key IN (SELECT customer_key FROM public.reach_t_cust);
DELETE FROM retail_mid.customer_brand WHERE brand = 'reach_t';

-- bad input
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_run(NULL)');
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_run(-1)');
SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in AND NOT reach_t_in', '{sms}', '2026-06-01') AS plan_empty \gset
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_run(' || :plan_empty || ')');
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', cap_touches => 0)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', cap_touches => -3)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', cap_days => 0)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', cap_touches => NULL)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', cap_days => 5000)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms,fax}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{*}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', NULL, '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms,NULL}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms,email,sms}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', templates => '{"gold": "x"}')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', templates => '{"*": 3}')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', templates => '{"*": " "}')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', templates => '["*"]')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', '2026-06-01', segment_tag => 'no_such_tag')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in AND', '{sms}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', NULL, '{sms}', '2026-06-01')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', 'infinity')$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('reach_t', 'reach_t_in', '{sms}', NULL)$$);
SELECT pg_temp.try($$SELECT retail_mid.reach_plan_create('', 'reach_t_in', '{sms}', '2026-06-01')$$);
SELECT retail_mid.reach_plan_create('reach_t', 'no_such_tag', '{sms}', '2026-06-01') AS plan_unknown_tag \gset
SELECT pg_temp.try('SELECT * FROM retail_mid.reach_plan_run(' || :plan_unknown_tag || ')');
SELECT pg_temp.try(format('UPDATE retail_mid.reach_plan SET brand = %L WHERE plan_id = %s', 'other', :plan_b));
SELECT pg_temp.try(format('UPDATE retail_mid.reach_plan SET cap_touches = 0 WHERE plan_id = %s', :plan_b));
SELECT pg_temp.try(format('UPDATE retail_mid.reach_outbox SET status = %L WHERE plan_id = %s', 'lost', :plan_b));
-- the reach tables are brand-isolated like every brand table
SELECT c.relname, c.relrowsecurity FROM pg_class c
 WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relname IN ('reach_consent', 'reach_plan', 'reach_outbox', 'reach_run', 'reach_brand_lock')
 ORDER BY 1;

-- clean up what other tests could see
DELETE FROM retail_mid.reach_outbox WHERE brand = 'reach_t';
DELETE FROM retail_mid.reach_run WHERE brand = 'reach_t';
DELETE FROM retail_mid.reach_plan WHERE brand = 'reach_t';
DELETE FROM retail_mid.reach_consent WHERE brand = 'reach_t';
DELETE FROM retail_mid.ods_campaign_touch WHERE brand IN ('reach_t', 'other_brand');
DELETE FROM retail_mid.tag_definition WHERE tag_name IN ('reach_t_in', 'reach_t_seg');
DROP TABLE public.reach_t_cust;
