-- loaders: all-or-nothing loading, rejection reasons, bad files (fixtures under test/fixtures)
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv fixtures RETAIL_MID_FIXTURES
-- Runs a statement and shows its SQLSTATE and message with the per-run fixture directory masked.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || replace(SQLERRM, current_setting('rm.fixtures'), '<fixtures>');
END $$;
SELECT set_config('rm.fixtures', :'fixtures', false) IS NOT NULL AS fixtures_set;
CREATE FUNCTION pg_temp.ods_rows() RETURNS bigint LANGUAGE sql AS
$$ SELECT (SELECT count(*) FROM retail_mid.ods_order WHERE brand = 'fixture') + (SELECT count(*) FROM retail_mid.ods_order_line WHERE brand = 'fixture') $$;

-- a small clean file loads: 7 lines, 5 invoices, 3 customers with an identifier
SELECT rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.load_online_retail(:'fixtures' || '/online_retail_small.csv', 'fixture');
SELECT order_id, customer_id, status, order_time FROM retail_mid.ods_order WHERE brand = 'fixture' ORDER BY order_id;
SELECT count(*) AS lines FROM retail_mid.ods_order_line WHERE brand = 'fixture';
-- reloading the same file (here its gzip copy) replaces, it does not duplicate
SELECT rows_loaded FROM retail_mid.load_online_retail(:'fixtures' || '/online_retail_small.csv.gz', 'fixture');
SELECT pg_temp.ods_rows() AS ods_rows_after_reload;

-- the cleaning rules on it: one duplicate, one zero price, one negative price, one return, one anonymous line kept
SELECT retail_mid.build_dwd_trade('2010-12-01', '2010-12-02');
SELECT rule, lines, amount FROM retail_mid.dwd_trade_cleaning_report WHERE brand = 'fixture' ORDER BY rule;
SELECT order_id, line_no, customer_key IS NULL AS anonymous, sku_id, quantity, amount, line_type
  FROM retail_mid.dwd_trade_order_line_di WHERE brand = 'fixture' ORDER BY order_id, line_no;

-- bad input: nothing is loaded and the error says why
SELECT pg_temp.try(format('SELECT retail_mid.load_online_retail(%L, %L)', :'fixtures' || '/no_such_file.csv', 'fixture'));
SELECT * FROM retail_mid.load_online_retail('', 'fixture');
SELECT * FROM retail_mid.load_online_retail(NULL, 'fixture');
SELECT pg_temp.try(format('SELECT retail_mid.load_online_retail(%L, %L)', :'fixtures' || '/online_retail_malformed.csv', 'fixture2'));
SELECT pg_temp.try(format('SELECT retail_mid.load_online_retail(%L, %L)', :'fixtures' || '/online_retail_bad_types.csv', 'fixture2'));
SELECT count(*) AS fixture2_rows FROM retail_mid.ods_order WHERE brand = 'fixture2';
-- with max_rejected the valid rows load and the reasons are kept
SELECT rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.load_online_retail(:'fixtures' || '/online_retail_bad_types.csv', 'fixture2', max_rejected => 3);
SELECT source, rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.ods_load WHERE brand = 'fixture2';
-- a path with a quote cannot escape the shell command
SELECT pg_temp.try(format('SELECT retail_mid.load_online_retail(%L, %L)', :'fixtures' || '/x''; touch /tmp/pwned; ''', 'fixture2'));
-- issue 19: a path component over 255 bytes (ENAMETOOLONG) or a path of 4096 bytes or more is name_too_long
-- (42622) from every loader and from stage_csv, not an internal error (XX000); a long but valid path is still
-- only missing (58P01)
CREATE TEMP TABLE rm_long_stage (a text);
SELECT loader, pg_temp.try(format('SELECT * FROM %s(%L)', loader, p)) AS outcome
  FROM unnest(ARRAY['retail_mid.load_online_retail', 'retail_mid.load_complete_journey', 'retail_mid.load_cdnow',
                    'retail_mid.load_orange_juice', 'retail_mid.load_boston_tracts', 'retail_mid.load_media_feedback']) loader,
       (VALUES ('/tmp/' || repeat('a', 256)), (repeat('/abc', 1024))) v(p)
 ORDER BY loader, p;
SELECT pg_temp.try(format('SELECT retail_mid.stage_csv(%L, %L, %L)', '/tmp/' || repeat('é', 128) || '/x.csv', 'pg_temp.rm_long_stage', '*'));
SELECT pg_temp.try(format('SELECT retail_mid.stage_csv(%L, %L, %L)', '/tmp/' || repeat('a', 255), 'pg_temp.rm_long_stage', '*'));
SELECT pg_temp.try(format('SELECT retail_mid.load_orange_juice(%L)', '/tmp/' || repeat('a', 255)));
\set VERBOSITY default
SELECT retail_mid.server_file_size('/tmp/' || repeat('a', 300) || '/x');
SELECT retail_mid.server_file_size(repeat('/abc', 1024));
SELECT retail_mid.server_file_size('/tmp/' || repeat('a', 255)) AS missing_is_null;
-- the job log has a row per successful load
SELECT job, outcome, rows_written FROM retail_mid.job_log WHERE job = 'load_online_retail' ORDER BY job_id;
-- a failed run through run_logged leaves a failed row and re-raises
\set VERBOSITY terse
CALL retail_mid.run_logged('load_online_retail', format('SELECT retail_mid.load_online_retail(%L, %L)', :'fixtures' || '/online_retail_malformed.csv', 'fixture3'));
\set VERBOSITY default
SELECT job, outcome, detail->>'sqlstate' AS sqlstate FROM retail_mid.job_log WHERE outcome = 'failed';
