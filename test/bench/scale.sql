-- Benchmark (issue 13): one size of the scale curve, run by test/bench/scale.sh in a fresh database. Synthetic
-- history of 760 days (two years and a month): the first 730 days are the first full build, the last 30 are
-- refreshed one day at a time (the daily refresh, in its own transaction each). Then RFM (365 days), the
-- evaluation of every enabled tag and one audience. Prints one CSV row (the columns of scale.sh's header) on stdout.
-- Variables: lines (target order lines), events (true/false: behaviour events from the generator), daily (how many
-- daily refreshes, 30 unless given).
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
-- about 2.23 lines per order, one customer per 10 lines; stores and SKUs scale too (as the dws benchmark)
SELECT coalesce(nullif(:'daily', ''), '30')::int AS daily \gset
SELECT 730 + :daily AS days, ('2024-12-31'::date + :daily - 1) AS last_day \gset
SELECT greatest(1, round(:lines / 2.23 / :days))::int AS opd, greatest(1000, :lines / 10)::int AS customers,
       greatest(10, least(400, :lines / 50000))::int AS stores, greatest(500, least(20000, :lines / 500))::int AS skus \gset
\o /dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.generate_synthetic(seed => 1, customers => :customers, days => :days, orders_per_day => :opd,
       stores => :stores, skus => :skus, start_date => '2023-01-01', with_events => :events, brand => 'bench');
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS load_s \gset
VACUUM ANALYZE;
-- the first full build: 730 days
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.refresh('2023-01-01', '2024-12-30');
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS build_s \gset
SELECT count(*) AS dwd_lines FROM retail_mid.dwd_trade_order_line_di \gset
-- 30 daily refreshes, each a transaction of its own (psql autocommit), as run_daily would run them
CREATE TEMP TABLE scale_daily (dt date, seconds float8);
SELECT set_config('scale.daily', :'daily', false) \gset
DO $$
DECLARE d date; t timestamptz;
BEGIN
    FOR d IN SELECT g::date FROM generate_series('2024-12-31'::date, '2024-12-30'::date + current_setting('scale.daily')::int, interval '1 day') g LOOP
        t := clock_timestamp();
        PERFORM retail_mid.refresh(d, d);
        INSERT INTO scale_daily VALUES (d, extract(epoch FROM clock_timestamp() - t));
        COMMIT;
    END LOOP;
END $$;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS refresh1_s, max(seconds) AS refresh1_max_s FROM scale_daily \gset
-- where a daily refresh spends its time (refresh's job_log detail), medians over the daily refreshes
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (detail ->> 'dwd_seconds')::float8)::numeric, 3) AS r_dwd_s,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (detail ->> 'dws_seconds')::float8)::numeric, 3) AS r_dws_s,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (detail ->> 'metric_seconds')::float8)::numeric, 3) AS r_metric_s
  FROM retail_mid.job_log WHERE job = 'refresh' AND (arguments ->> 'from_date')::date >= '2024-12-31' AND (arguments ->> 'from_date') = (arguments ->> 'to_date') \gset
-- RFM over 365 days, every enabled tag, one audience
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.rfm_refresh('bench', :'last_day', 365);
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS rfm_s \gset
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.evaluate_tags();
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS tags_s \gset
SELECT clock_timestamp() AS t0 \gset
SELECT retail_mid.audience_count('rfm_r_score >= 4 AND rfm_f_score >= 2') AS audience_members \gset
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS audience_s \gset
\o
-- sizes of everything in the schema (partitions included; heap with TOAST, and indexes)
SELECT round(sum(pg_table_size(c.oid)) / 1048576.0, 1) AS table_mb, round(sum(pg_indexes_size(c.oid)) / 1048576.0, 1) AS index_mb
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind = 'r' \gset
-- dead tuples after the 30 daily refreshes (autovacuum on, as in production), in a new session so that the
-- statistics of the refreshes are flushed: all tables of the schema, and the DWD/DWS history alone
\o /dev/null
SELECT pg_sleep(2);
\o
\c
SELECT coalesce(round(100.0 * sum(n_dead_tup) / nullif(sum(n_live_tup), 0), 2)::text, '') AS dead_pct,
       coalesce(round(100.0 * sum(n_dead_tup) FILTER (WHERE relname ~ '^(dwd|dws)_') / nullif(sum(n_live_tup) FILTER (WHERE relname ~ '^(dwd|dws)_'), 0), 2)::text, '') AS dead_pct_history
  FROM pg_stat_user_tables WHERE schemaname = 'retail_mid' \gset
\pset tuples_only on
\pset format unaligned
SELECT concat_ws(',', :lines, :dwd_lines, round(:load_s, 2), round(:build_s, 2), round(:refresh1_s::numeric, 3), round(:refresh1_max_s::numeric, 3),
                 round(:rfm_s, 3), round(:tags_s, 3), round(:audience_s, 4), :audience_members, :table_mb, :index_mb, :'dead_pct', :'dead_pct_history', :r_dwd_s, :r_dws_s, :r_metric_s, :daily) AS csv;
