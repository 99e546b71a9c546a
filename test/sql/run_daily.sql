-- run_daily: the daily pipeline (issue 13). In a database of its own, so that the brands and the job log of the
-- other tests do not take part: two synthetic brands; every step logged per brand; the rows each step reports
-- against the tables it wrote; a second run of the same day does nothing and leaves every table identical; a
-- step forced to fail is logged (SQLSTATE, message) while the others commit, and the next run redoes it; the
-- schedule functions without pg_cron (55000); bad calls. Concurrency and pg_cron: test/t/run_daily.t.
SELECT current_database() AS home_db \gset
DROP DATABASE IF EXISTS retail_mid_run_daily;
CREATE DATABASE retail_mid_run_daily;
\c retail_mid_run_daily
SET client_min_messages = warning;
CREATE EXTENSION retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 5, customers => 300, days => 45, orders_per_day => 30, stores => 3, skus => 20, brand => 'rd_a') > 0 AS loaded_a;
SELECT retail_mid.generate_synthetic(seed => 6, customers => 200, days => 40, orders_per_day => 20, stores => 2, skus => 15, brand => 'rd_b') > 0 AS loaded_b;
-- fingerprint of every table of the extension but the job log
CREATE FUNCTION pg_temp.fingerprint() RETURNS TABLE (tbl text, rows bigint, md5 text) LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS t FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND c.relname NOT IN ('job_log') ORDER BY 1 LOOP
        tbl := r.t::text;
        EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x', E'\n', '', r.t) INTO rows, md5;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- first run, as of the last day of rd_a
CALL retail_mid.run_daily('2024-02-14');
SELECT arguments->>'step' AS step, arguments->>'brand' AS brand, arguments->>'as_of' AS as_of, outcome, rows_written > 0 AS wrote
  FROM retail_mid.job_log WHERE job = 'run_daily' ORDER BY job_id;
-- the refresh step covered every loaded day; rows reported = rows in the tables
SELECT (detail->>'from_date')::date = (SELECT min(order_time)::date FROM retail_mid.ods_order)
   AND (detail->>'to_date')::date = (SELECT max(order_time)::date FROM retail_mid.ods_order) AS refreshed_all_days
  FROM retail_mid.job_log WHERE job = 'run_daily' AND arguments->>'step' = 'refresh';
SELECT l.arguments->>'brand' AS brand, l.rows_written = (SELECT count(*) FROM retail_mid.rfm_snapshot s
        WHERE s.brand = l.arguments->>'brand' AND s.as_of = (l.arguments->>'as_of')::date) AS rfm_rows_match
  FROM retail_mid.job_log l WHERE l.job = 'run_daily' AND l.arguments->>'step' = 'rfm' ORDER BY 1;
SELECT l.arguments->>'brand' AS brand, l.rows_written = (SELECT count(*) FROM retail_mid.replenish_forecast f
        WHERE f.brand = l.arguments->>'brand' AND f.made_on = (l.arguments->>'as_of')::date) AS forecast_rows_match
  FROM retail_mid.job_log l WHERE l.job = 'run_daily' AND l.arguments->>'step' = 'forecast' ORDER BY 1;
-- the brand whose data ends earlier runs as of its own last day; the AIPL step covers the 30 days up to it
SELECT brand, as_of FROM retail_mid.dws_refresh_state ORDER BY 1;
SELECT brand, min(dt), max(dt), count(DISTINCT dt) AS days FROM retail_mid.dws_aipl_customer_stage_1d GROUP BY 1 ORDER BY 1;
-- every due tag was evaluated, the manual ones not
SELECT (SELECT count(*) FROM retail_mid.tag_definition WHERE enabled AND schedule <> 'manual')
       = jsonb_array_length(detail->'tags') AS all_due_tags
  FROM retail_mid.job_log WHERE job = 'run_daily' AND arguments->>'step' = 'tags';
SELECT step, brand, last_outcome, last_success_as_of, last_success_rows > 0 AS wrote, failures_since_success
  FROM retail_mid.run_daily_summary ORDER BY 1, 2;

-- second run of the same day: every step skipped, every table identical
CREATE TEMP TABLE fp1 AS SELECT * FROM pg_temp.fingerprint();
SELECT max(job_id) AS run1_end FROM retail_mid.job_log \gset
CALL retail_mid.run_daily('2024-02-14');
CREATE TEMP TABLE fp2 AS SELECT * FROM pg_temp.fingerprint();
SELECT count(*) AS tables, count(*) FILTER (WHERE fp1.md5 IS DISTINCT FROM fp2.md5) AS changed, sum(fp1.rows) > 0 AS has_rows
  FROM fp1 FULL JOIN fp2 USING (tbl);
SELECT arguments->>'step' AS step, arguments->>'brand' AS brand, outcome, rows_written, detail->>'skipped' AS skipped
  FROM retail_mid.job_log WHERE job = 'run_daily' AND job_id > :run1_end ORDER BY job_id;

-- a step forced to fail: the RFM snapshot refuses rows; a new day is loaded
CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'disk full (simulated)' USING ERRCODE = 'disk_full';
END;
$$;
CREATE TRIGGER refuse BEFORE INSERT ON retail_mid.rfm_snapshot FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
SELECT retail_mid.generate_synthetic(seed => 8, customers => 300, days => 1, orders_per_day => 30, stores => 3, skus => 20,
                                     start_date => '2024-02-15', brand => 'rd_a') > 0 AS loaded_day;
\set VERBOSITY terse
CALL retail_mid.run_daily('2024-02-15');
\set VERBOSITY default
SELECT arguments->>'step' AS step, arguments->>'brand' AS brand, arguments->>'as_of' AS as_of, outcome, detail->>'sqlstate' AS sqlstate, detail->>'error' AS error
  FROM retail_mid.job_log WHERE job = 'run_daily' AND arguments->>'as_of' = '2024-02-15' ORDER BY job_id;
-- the others committed: the new day is in the DWS, AIPL and forecasts moved on; no RFM snapshot of the day
SELECT (SELECT max(dt) FROM retail_mid.dws_trade_store_1d WHERE brand = 'rd_a') AS dws_last_day,
       (SELECT max(dt) FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'rd_a') AS aipl_last_day,
       (SELECT max(made_on) FROM retail_mid.replenish_forecast WHERE brand = 'rd_a') AS forecast_made_on,
       (SELECT count(*) FROM retail_mid.rfm_snapshot WHERE brand = 'rd_a' AND as_of = '2024-02-15') AS rfm_rows;
SELECT step, brand, last_outcome, last_as_of, last_success_as_of, failures_since_success, last_error_sqlstate, last_error
  FROM retail_mid.run_daily_summary WHERE step = 'rfm' ORDER BY 1, 2;

-- the cause removed, the next run redoes only the failed step
DROP TRIGGER refuse ON retail_mid.rfm_snapshot;
SELECT max(job_id) AS run3_end FROM retail_mid.job_log \gset
CALL retail_mid.run_daily('2024-02-15');
SELECT arguments->>'step' AS step, arguments->>'brand' AS brand, arguments->>'as_of' AS as_of, outcome, detail ? 'skipped' AS skipped
  FROM retail_mid.job_log WHERE job = 'run_daily' AND job_id > :run3_end ORDER BY job_id;
SELECT count(*) = (SELECT rows_written FROM retail_mid.job_log WHERE job = 'run_daily' AND arguments->>'step' = 'rfm'
                    AND arguments->>'brand' = 'rd_a' AND job_id > :run3_end) AND count(*) > 0 AS rfm_recovered
  FROM retail_mid.rfm_snapshot WHERE brand = 'rd_a' AND as_of = '2024-02-15';
SELECT step, brand, last_outcome, failures_since_success FROM retail_mid.run_daily_summary WHERE step = 'rfm' ORDER BY 1, 2;

-- tag schedules: a weekly tag evaluated on the 15th is not due on the 16th, is on the 22nd; manual ones never
UPDATE retail_mid.tag_definition SET schedule = 'weekly' WHERE tag_name = 'orders_td';
UPDATE retail_mid.tag_definition SET schedule = 'manual' WHERE tag_name = 'returner';
SELECT 'orders_td' = ANY (retail_mid.run_daily_due_tags('2024-02-16')) AS weekly_due_next_day,
       'orders_td' = ANY (retail_mid.run_daily_due_tags('2024-02-22')) AS weekly_due_after_a_week,
       'monetary_td' = ANY (retail_mid.run_daily_due_tags('2024-02-16')) AS daily_due_next_day,
       'returner' = ANY (retail_mid.run_daily_due_tags('2024-02-22')) AS manual_due;

-- bad calls
CALL retail_mid.run_daily(NULL);
CALL retail_mid.run_daily('infinity');
BEGIN;
CALL retail_mid.run_daily('2024-02-15');
ROLLBACK;
SELECT retail_mid.schedule_daily();
SELECT retail_mid.unschedule_daily();
SELECT retail_mid.schedule_daily(NULL);
SELECT has_function_privilege('public', 'retail_mid.schedule_daily(text)', 'EXECUTE') AS public_may_schedule,
       has_function_privilege('public', 'retail_mid.run_daily(date)', 'EXECUTE') AS public_may_run,
       has_function_privilege('retail_mid_admin', 'retail_mid.run_daily(date)', 'EXECUTE') AS admin_may_run;

\c :home_db
DROP DATABASE retail_mid_run_daily;
