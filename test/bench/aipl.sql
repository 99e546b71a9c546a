-- bench/aipl: AIPL on bitmaps (aipl_refresh: the C aggregate aipl_window_agg, one bitmap per brand, day and stage)
-- against the 1.0 plpgsql aipl_refresh (reimplemented below as bench_aipl_refresh_v10: window sums at change points,
-- expanded to one row per customer and day), on the same signals of the same synthetic DWD.
-- Usage: make bench BENCH=aipl [CUSTOMERS=1000000]   (CUSTOMERS: the size the bitmap path runs alone; the comparison
-- with the row path runs on :compare customers, 20,000 unless psql -v compare=N, because the row path cannot finish
-- 1M x 365 days here: its figures at the large size are extrapolated linearly per customer-day)
\set ON_ERROR_STOP 1
\pset pager off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT coalesce(nullif(:'customers', ''), '1000000')::int AS customers \gset
\if :{?compare}
\else
\set compare 20000
\endif
SELECT least(:compare, :customers) AS compare \gset
\set days 365
SET max_parallel_workers_per_gather = 0;  -- INSERT plans are serial anyway; the same for both paths

-- synthetic DWD signals for n customers over :days days (per customer and year on average: 10 exposure days,
-- 6 view days, 4 campaigns sent, 1 coupon redeemed, 4 order days, 0.3 reviews): what the default rules read
CREATE FUNCTION pg_temp.bench_fill(b text, n int, days int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO retail_mid.dwd_behavior_event_di (dt, brand, customer_key, event_time, event_type, channel, event_count)
    SELECT d, b, c, d, t, 'app', 1
      FROM (SELECT c, t, date '2024-01-01' + floor(random() * days)::int AS d
              FROM generate_series(1, n) c,
                   LATERAL (SELECT 'exposure' FROM generate_series(1, 10) UNION ALL SELECT 'view' FROM generate_series(1, 6)
                            UNION ALL SELECT 'review' WHERE random() < 0.3) x(t)) s;
    INSERT INTO retail_mid.dwd_marketing_touch_di (dt, brand, campaign_id, customer_key, channel, touched_at, touch_type)
    SELECT d, b, 'c1', c, 'sms', d, t
      FROM (SELECT c, t, date '2024-01-01' + floor(random() * days)::int AS d
              FROM generate_series(1, n) c,
                   LATERAL (SELECT 'sent' FROM generate_series(1, 4) UNION ALL SELECT 'redeemed') x(t)) s;
    INSERT INTO retail_mid.dws_trade_customer_1d (dt, brand, customer_key, orders, return_orders, lines, quantity, sales_amount,
                                                  return_amount, net_amount, first_order_time, last_order_time)
    SELECT d, b, c, 1 + (random() < 0.2)::int, 0, 2, 2, 20, 0, 20, d, d
      FROM (SELECT DISTINCT c, date '2024-01-01' + floor(random() * days)::int AS d
              FROM generate_series(1, n) c, generate_series(1, 4) k) s;
$$;

-- the 1.0 aipl_refresh, reading the same signals (aipl_rule_signals: order days) and writing one row per customer-day
CREATE TABLE bench_stage_rows (dt date NOT NULL, brand text NOT NULL, customer_key int4 NOT NULL, stage char(1) NOT NULL,
                               PRIMARY KEY (brand, dt, customer_key));
CREATE FUNCTION pg_temp.bench_aipl_refresh_v10(b text, from_date date, to_date date) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE v_rows bigint;
BEGIN
    DELETE FROM bench_stage_rows s WHERE s.brand = b AND s.dt BETWEEN from_date AND to_date;
    INSERT INTO bench_stage_rows (dt, brand, customer_key, stage)
    WITH r AS (SELECT * FROM retail_mid.aipl_rules_of(b)),
    sig AS (SELECT s.*, r.lookback_days, r.min_count, r.min_amount
              FROM retail_mid.aipl_rule_signals(b, from_date, to_date) s JOIN r USING (stage, rule_name)),
    change AS (
        SELECT customer_key, stage, rule_name, min_count, min_amount, dt AS at, n, amount FROM sig
        UNION ALL
        SELECT customer_key, stage, rule_name, min_count, min_amount, dt + lookback_days, -n, -amount FROM sig),
    level AS (SELECT customer_key, stage, rule_name, min_count, min_amount, at, sum(n) AS n, sum(amount) AS amount
                FROM change GROUP BY 1, 2, 3, 4, 5, 6),
    running AS (SELECT customer_key, stage, at,
                       sum(n) OVER w >= min_count AND sum(amount) OVER w >= min_amount AS holds,
                       lead(at) OVER (PARTITION BY customer_key, stage, rule_name ORDER BY at) AS next_at
                  FROM level WINDOW w AS (PARTITION BY customer_key, stage, rule_name ORDER BY at)),
    held AS (SELECT customer_key, stage, greatest(at, from_date) AS d0, least(coalesce(next_at, to_date + 1), to_date + 1) - 1 AS d1
               FROM running WHERE holds)
    SELECT d.dt::date, b, h.customer_key,
           (ARRAY['A', 'I', 'P', 'L'])[max(array_position(ARRAY['A', 'I', 'P', 'L']::bpchar[], h.stage))]
      FROM held h, LATERAL generate_series(h.d0, h.d1, interval '1 day') AS d(dt)
     WHERE h.d0 <= h.d1
     GROUP BY d.dt, h.customer_key;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END;
$$;

CREATE TEMP TABLE bench_result (label text, customers int, days int, seconds float8, customer_days bigint, bytes bigint);
CREATE FUNCTION pg_temp.bench_run(label text, b text, n int, days int, bitmap bool) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; v bigint; secs float8; sz bigint;
BEGIN
    t0 := clock_timestamp();
    IF bitmap THEN
        v := retail_mid.aipl_refresh(b, '2024-01-01', date '2024-01-01' + days - 1);
    ELSE
        v := pg_temp.bench_aipl_refresh_v10(b, '2024-01-01', date '2024-01-01' + days - 1);
    END IF;
    secs := extract(epoch FROM clock_timestamp() - t0);
    sz := pg_total_relation_size(CASE WHEN bitmap THEN 'retail_mid.dws_aipl_stage_bitmap_1d' ELSE 'bench_stage_rows' END);
    INSERT INTO bench_result VALUES (label, n, days, secs, v, sz);
END;
$$;

-- 1. both paths on :compare customers x :days days
SELECT pg_temp.bench_fill('bench_cmp', :compare, :days);
ANALYZE;
SELECT pg_temp.bench_run('rows (1.0 plpgsql)', 'bench_cmp', :compare, :days, false);
SELECT pg_temp.bench_run('bitmaps (C aggregate)', 'bench_cmp', :compare, :days, true);
-- same answers
SELECT count(*) AS differences FROM (
  (SELECT dt, customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'bench_cmp'
   EXCEPT SELECT dt, customer_key, stage FROM bench_stage_rows)
  UNION ALL
  (SELECT dt, customer_key, stage FROM bench_stage_rows
   EXCEPT SELECT dt, customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = 'bench_cmp')) d;

-- 2. the bitmap path alone on :customers customers x :days days (the table emptied first: its size is this brand's)
DELETE FROM retail_mid.dws_aipl_stage_bitmap_1d WHERE brand = 'bench_cmp';
VACUUM FULL retail_mid.dws_aipl_stage_bitmap_1d;
DELETE FROM retail_mid.dwd_behavior_event_di WHERE brand = 'bench_cmp';
DELETE FROM retail_mid.dwd_marketing_touch_di WHERE brand = 'bench_cmp';
DELETE FROM retail_mid.dws_trade_customer_1d WHERE brand = 'bench_cmp';
SELECT pg_temp.bench_fill('bench_big', :customers, :days);
ANALYZE;
SELECT pg_temp.bench_run('bitmaps (C aggregate)', 'bench_big', :customers, :days, true);

\echo
\echo 'AIPL refresh: time and storage (storage = pg_total_relation_size: table, TOAST and primary key)'
SELECT label, customers, days, round(seconds::numeric, 2) AS seconds, customer_days, pg_size_pretty(bytes) AS storage,
       round(bytes::numeric / nullif(customer_days, 0), 2) AS bytes_per_customer_day
  FROM bench_result ORDER BY customers, label DESC;
\echo 'Ratios at the comparison size (rows path / bitmap path):'
SELECT round((r.seconds / b.seconds)::numeric, 1) AS speedup, round((r.bytes::numeric / b.bytes), 1) AS storage_ratio
  FROM bench_result r JOIN bench_result b ON b.customers = r.customers AND b.label LIKE 'bitmaps%'
 WHERE r.label LIKE 'rows%';
\echo 'At the large size: the rows path extrapolated linearly from its measured seconds and bytes per customer-day:'
SELECT big.customers, round(big.seconds::numeric, 1) AS bitmap_seconds,
       round((r.seconds / r.customer_days * big.customer_days)::numeric, 0) AS rows_seconds_extrapolated,
       round((r.seconds / r.customer_days * big.customer_days / big.seconds)::numeric, 1) AS speedup_extrapolated,
       pg_size_pretty(big.bytes) AS bitmap_storage,
       pg_size_pretty((r.bytes::numeric / r.customer_days * big.customer_days)::bigint) AS rows_storage_extrapolated,
       round(r.bytes::numeric / r.customer_days * big.customer_days / big.bytes, 1) AS storage_ratio
  FROM bench_result big JOIN bench_result r ON r.label LIKE 'rows%'
 WHERE big.customers = :customers AND big.label LIKE 'bitmaps%';
