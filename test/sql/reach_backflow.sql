-- reach_backflow: media exposure/click feedback loaded back as behaviour events feeds the media tags, and the
-- audience "exposed >= 3 times, never clicked" matches plain SQL over the raw file
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv fixtures RETAIL_MID_FIXTURES
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || replace(SQLERRM, current_setting('rm.fixtures'), '<fixtures>');
END;
$$;
SELECT set_config('rm.fixtures', :'fixtures', false) IS NOT NULL AS fixtures_set;
-- the 30-day windows end at a fixed time: the file's events lie in March 2026
SET retail_mid.as_of = '2026-03-31 00:00:00';
SELECT retail_mid.behavior_as_of();

-- the load re-evaluates the tags that read ods_behavior_event (the media tags among them)
SET client_min_messages = warning;
SELECT rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.load_media_feedback(:'fixtures' || '/media_feedback.csv', 'media_t');
RESET client_min_messages;
SELECT event_type, channel, count(*), sum(event_count) FROM retail_mid.ods_behavior_event WHERE brand = 'media_t' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT l.job, l.outcome, l.arguments ? 'tag_names' AS tags_job FROM retail_mid.job_log l
 WHERE l.job_id > (SELECT max(job_id) FROM retail_mid.job_log WHERE job = 'load_media_feedback') - 1
 ORDER BY l.job_id;

-- the reference: the raw file, read by plain SQL
CREATE TEMP TABLE mf_raw (id_type text, id_value text, event_time text, event_type text, campaign_id text, media text, event_count text);
SELECT format('COPY mf_raw FROM %L WITH (FORMAT csv, HEADER true)', :'fixtures' || '/media_feedback.csv') AS copy_cmd \gset
:copy_cmd;
CREATE TEMP TABLE mf_ref AS
SELECT k.customer_key,
       coalesce(sum(coalesce(nullif(r.event_count, '')::int, 1)) FILTER (WHERE lower(r.event_type) IN ('exposure', 'impression')), 0) AS exposures,
       coalesce(sum(coalesce(nullif(r.event_count, '')::int, 1)) FILTER (WHERE lower(r.event_type) = 'click'), 0) AS clicks
  FROM mf_raw r JOIN retail_mid.customer_key k ON k.id_type = r.id_type AND k.id_value = btrim(r.id_value)
 WHERE r.event_time::timestamp > '2026-03-01 00:00' AND r.event_time::timestamp <= '2026-03-31 00:00'
 GROUP BY k.customer_key;
SELECT count(*) AS customers, sum(exposures) AS exposures, sum(clicks) AS clicks FROM mf_ref;
-- the tags hold the same values for the file's customers (other tests' events may add other customers)
SELECT (SELECT count(*) FROM (SELECT customer_key, exposures FROM mf_ref
                              EXCEPT SELECT customer_key, numeric_value FROM retail_mid.tag_value
                                      WHERE tag_name = 'media_exposures_30d' AND valid_to IS NULL) x) AS exposures_missing,
       (SELECT count(*) FROM (SELECT customer_key, clicks FROM mf_ref
                              EXCEPT SELECT customer_key, numeric_value FROM retail_mid.tag_value
                                      WHERE tag_name = 'media_clicks_30d' AND valid_to IS NULL) x) AS clicks_missing;
-- the window is (as_of - 30 days, as_of]: an event exactly 30 days back is out, one exactly at as_of is in
SELECT k.id_value, v.numeric_value FROM retail_mid.customer_key k
  LEFT JOIN retail_mid.tag_value v ON v.customer_key = k.customer_key AND v.tag_name = 'media_exposures_30d' AND v.valid_to IS NULL
 WHERE k.id_type = 'device_id' AND k.id_value LIKE 'mf-edge-%' ORDER BY 1;

-- exposed at least 3 times, never clicked (in the window): bitmap audience against plain SQL over the whole table
CREATE TEMP TABLE mf_all AS
SELECT k.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'exposure'), 0) AS exposures,
       coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'click'), 0) AS clicks
  FROM retail_mid.ods_behavior_event e JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = e.id_value
 WHERE e.event_type IN ('exposure', 'click') AND e.event_time > '2026-03-01 00:00' AND e.event_time <= '2026-03-31 00:00'
 GROUP BY k.customer_key;
SELECT retail_mid.audience_count('media_exposures_30d >= 3 AND media_clicks_30d = 0') AS audience_count,
       (SELECT count(*) FROM mf_all WHERE exposures >= 3 AND clicks = 0) AS plain_sql,
       retail_mid.rb_xor_cardinality(retail_mid.audience('media_exposures_30d >= 3 AND media_clicks_30d = 0'),
                                     (SELECT retail_mid.rb_build_agg(customer_key) FROM mf_all WHERE exposures >= 3 AND clicks = 0)) AS differing,
       (SELECT count(*) FROM mf_ref WHERE exposures >= 3 AND clicks = 0) AS from_the_file;
-- the same audience with NOT: exposed at least 3 times AND NOT clicked at least once
SELECT retail_mid.audience_count('media_exposures_30d >= 3 AND NOT media_clicks_30d >= 1') AS with_not;

-- the next window: moving as_of forward and re-evaluating changes the tags (history kept)
SET retail_mid.as_of = '2026-04-15 00:00:00';
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['media_exposures_30d', 'media_clicks_30d']) > 0 AS changed;
RESET client_min_messages;
SELECT retail_mid.audience_count('media_exposures_30d >= 3 AND media_clicks_30d = 0') AS audience_count,
       (SELECT count(*) FROM (SELECT k.customer_key FROM retail_mid.ods_behavior_event e
                                JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = e.id_value
                               WHERE e.event_type IN ('exposure', 'click') AND e.event_time > '2026-03-16' AND e.event_time <= '2026-04-15'
                               GROUP BY 1 HAVING coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'exposure'), 0) >= 3
                                  AND coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'click'), 0) = 0) x) AS plain_sql;
SELECT count(*) > 0 AS history_kept FROM retail_mid.tag_value WHERE tag_name = 'media_exposures_30d' AND valid_to IS NOT NULL;

-- behavior_as_of() is parallel safe (no subtransaction): evaluated per row by parallel workers, same answer
SET retail_mid.as_of = '2026-03-31 00:00:00';
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
ALTER TABLE retail_mid.ods_behavior_event SET (parallel_workers = 2);
CREATE FUNCTION pg_temp.has_gather(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF l ~ 'Gather' THEN RETURN true; END IF;
    END LOOP;
    RETURN false;
END;
$$;
SELECT pg_temp.has_gather($$SELECT count(*) FROM retail_mid.ods_behavior_event WHERE brand = 'media_t' AND event_time <= retail_mid.behavior_as_of()$$) AS parallel_plan;
SELECT count(*) AS parallel_count FROM retail_mid.ods_behavior_event WHERE brand = 'media_t' AND event_time <= retail_mid.behavior_as_of();
ALTER TABLE retail_mid.ods_behavior_event RESET (parallel_workers);
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
SELECT count(*) AS serial_count FROM retail_mid.ods_behavior_event WHERE brand = 'media_t' AND event_time <= '2026-03-31 00:00:00';

-- reloading the file replaces its rows
SET client_min_messages = warning;
SELECT rows_loaded FROM retail_mid.load_media_feedback(:'fixtures' || '/media_feedback.csv', 'media_t', refresh_tags => false);
RESET client_min_messages;
SELECT count(*), sum(event_count) FROM retail_mid.ods_behavior_event WHERE brand = 'media_t';

-- bad input: a file with bad rows loads nothing unless max_rejected allows them
SELECT pg_temp.try(format('SELECT * FROM retail_mid.load_media_feedback(%L, %L)', :'fixtures' || '/media_feedback_bad.csv', 'media_bad'));
SET client_min_messages = warning;
SELECT rows_read, rows_loaded, rows_rejected, rejects
  FROM retail_mid.load_media_feedback(:'fixtures' || '/media_feedback_bad.csv', 'media_bad', max_rejected => 6, refresh_tags => false);
RESET client_min_messages;
SELECT id_value, event_type, channel, event_count FROM retail_mid.ods_behavior_event WHERE brand = 'media_bad' ORDER BY 1;
SELECT pg_temp.try(format('SELECT * FROM retail_mid.load_media_feedback(%L, %L)', :'fixtures' || '/no_such_file.csv', 'media_t'));
SELECT pg_temp.try(format('SELECT * FROM retail_mid.load_media_feedback(%L, %L)', :'fixtures' || '/media_feedback.csv', ''));
SELECT pg_temp.try(format('SELECT * FROM retail_mid.load_media_feedback(%L, %L, -1)', :'fixtures' || '/media_feedback.csv', 'media_t'));
SELECT pg_temp.try('SELECT * FROM retail_mid.load_media_feedback(NULL)');
SET retail_mid.as_of = 'last tuesday';
SELECT pg_temp.try('SELECT retail_mid.behavior_as_of()');
SET retail_mid.as_of = '2026-02-30';
SELECT pg_temp.try('SELECT retail_mid.behavior_as_of()');
RESET retail_mid.as_of;
SELECT retail_mid.behavior_as_of() = localtimestamp AS defaults_to_now;

DELETE FROM retail_mid.ods_behavior_event WHERE brand IN ('media_t', 'media_bad');
SET client_min_messages = warning;
SELECT retail_mid.evaluate_tags(ARRAY['media_exposures_30d', 'media_clicks_30d']) >= 0 AS reevaluated;
RESET client_min_messages;
