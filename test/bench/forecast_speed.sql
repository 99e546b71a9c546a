-- Runs inside forecast_speed.sh. Prints lines "OURS <set> <series> <elapsed s> <cpu s>" and writes R's samples as CSV.
-- CPU time is read from /proc: the backend's own utime + stime, plus the cutime + cstime of the postmaster, which
-- reaps the parallel workers (so their CPU lands there when they exit); a throw-away cluster has no other children
-- that exit during a statement except the odd autovacuum worker, which makes the figure a slight overestimate.
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT setseed(0.42);
CREATE FUNCTION pg_temp.cpu_ticks() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (s[12]::bigint + s[13]::bigint) + (p[14]::bigint + p[15]::bigint)
      FROM (SELECT string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS s,
                   string_to_array(split_part(pg_read_file('/proc/' || split_part(pg_read_file('postmaster.pid'), E'\n', 1)
                                                           || '/stat'), ') ', 2), ' ') AS p) x
$$;
SELECT current_setting('max_parallel_workers_per_gather') AS workers \gset

-- orange juice: store x brand weekly series, zero-filled between the first and the last week
CREATE TEMP TABLE oj_raw(store int, brand int, week int, logmove float8, constant int, p1 float8, p2 float8, p3 float8,
  p4 float8, p5 float8, p6 float8, p7 float8, p8 float8, p9 float8, p10 float8, p11 float8, deal int, feat float8,
  profit float8, units float8);
\set cmd 'gzip -cdf ' :data '/orange_juice_weekly.csv.gz'
COPY oj_raw FROM PROGRAM :'cmd' (FORMAT csv, HEADER);
CREATE TABLE oj AS
SELECT s.store * 100 + s.brand AS series, w - s.w0 + 1 AS t, coalesce(r.units, 0) AS value
  FROM (SELECT store, brand, min(week) w0, max(week) w1 FROM oj_raw GROUP BY 1, 2) s
  CROSS JOIN LATERAL generate_series(s.w0, s.w1) w
  LEFT JOIN oj_raw r ON r.store = s.store AND r.brand = s.brand AND r.week = w;
ANALYZE oj;
\set f :out '/r_oj.csv'
COPY (SELECT series, t, value FROM oj WHERE series IN (SELECT series FROM (SELECT DISTINCT series FROM oj) s ORDER BY random() LIMIT :oj_r_sample) ORDER BY series, t)
  TO :'f' (FORMAT csv, HEADER);
-- the aggregate: its final function (the fit) runs in the leader, so this is one core
SELECT clock_timestamp() AS t0, pg_temp.cpu_ticks() AS c0 \gset
CREATE TEMP TABLE oj_fc AS SELECT series, retail_mid.forecast_series(t, value, 12, 52) r FROM oj GROUP BY series;
SELECT format('OURS oj %s %s %s', count(*), extract(epoch FROM clock_timestamp() - :'t0'), (pg_temp.cpu_ticks() - :c0) / 100.0) FROM oj_fc \gset
\echo :format
SELECT r->>'model' AS model, count(*) FROM oj_fc GROUP BY 1 ORDER BY 2 DESC LIMIT 5;

-- The synthetic daily set: series s = 1 .. :syn, days 1 .. 730; level, weekly pattern, slow trend and noise are pure
-- functions of (s, d) (hash-based, retail_mid.synth_uniform), so any subset of the 30,000 series can be generated
-- on its own and is the same subset of the full set.
CREATE FUNCTION pg_temp.syn_arrays(s_from int, s_to int) RETURNS TABLE (series int, y float8[]) LANGUAGE sql AS $$
    SELECT s, array_agg(greatest(0, round(lvl * (1 + 0.25 * (d % 7 IN (5, 6))::int - 0.1 * (d % 7 = 0)::int) * (1 + tr * d / 730.0)
                        + sqrt(lvl) * (retail_mid.synth_uniform(7, 1, s * 1000 + d) + retail_mid.synth_uniform(7, 2, s * 1000 + d)
                                       + retail_mid.synth_uniform(7, 3, s * 1000 + d) - 1.5) * 2))::float8 ORDER BY d)
      FROM (SELECT s, 5 + (hashint4(s) & 1023) / 20.0 AS lvl, ((hashint4(s * 7) & 255) - 128) / 512.0 AS tr
              FROM generate_series(s_from, s_to) s) p,
           generate_series(1, 730) d
     GROUP BY s
$$;
-- R's sample: r_sample random series of the whole set
\set f :out '/r_syn.csv'
COPY (SELECT a.series, u.t, u.v AS value
        FROM (SELECT s FROM generate_series(1, :syn) s ORDER BY random() LIMIT :r_sample) k,
             LATERAL pg_temp.syn_arrays(k.s, k.s) a, LATERAL unnest(a.y) WITH ORDINALITY u(v, t)
       ORDER BY 1, 2) TO :'f' (FORMAT csv, HEADER);

-- Scaling: the first n series for each n of :scale, forecast_array in a parallel scan (the fits run in the workers);
-- timed from ready arrays, like R's loop over ready vectors.
-- (fillfactor 10: the arrays are TOASTed, so without it hundreds of rows share a heap page and a parallel scan,
-- which hands out pages, leaves one process with most of a small table)
CREATE TABLE syn_arr (series int, y float8[]) WITH (fillfactor = 10, parallel_workers = 2);
INSERT INTO syn_arr SELECT * FROM pg_temp.syn_arrays(1, (SELECT max(x::int) FROM unnest(string_to_array(:'scale', ',')) x));
ANALYZE syn_arr;
EXPLAIN (COSTS OFF) SELECT series, retail_mid.forecast_array(y, 28, 7) r FROM syn_arr;
SELECT string_agg(format($q$SELECT clock_timestamp() AS t0, pg_temp.cpu_ticks() AS c0 \gset
CREATE TEMP TABLE syn_fc_%1$s AS SELECT series, retail_mid.forecast_array(y, 28, 7) r FROM syn_arr WHERE series <= %1$s;
SELECT format('OURS syn_scale_%1$s %%s %%s %%s', count(*), extract(epoch FROM clock_timestamp() - :'t0'), (pg_temp.cpu_ticks() - :c0) / 100.0) FROM syn_fc_%1$s \gset
\echo :format
$q$, x), E'\n' ORDER BY x::int) AS scale_script FROM unnest(string_to_array(:'scale', ',')) x \gset
\set f :out '/scale.sql'
SELECT :'scale_script' AS s \g (format=unaligned tuples_only) :f
\i :f

-- The full set (:full = 1): all :syn series in batches of 1,000 (arrays built per batch, outside the timed part),
-- with a progress line per batch; the total is the sum over batches. Each batch is a CREATE TABLE AS, which may
-- use a parallel plan (an INSERT ... SELECT may not, in PostgreSQL 15).
\if :full
CREATE TABLE syn_full_fc (series int, r jsonb);
SELECT 0 AS done, 0::float8 AS el, 0::bigint AS cpu \gset
SELECT string_agg(format($q$TRUNCATE syn_arr; INSERT INTO syn_arr SELECT * FROM pg_temp.syn_arrays(%1$s, %2$s); ANALYZE syn_arr;
SELECT clock_timestamp() AS t0, pg_temp.cpu_ticks() AS c0 \gset
CREATE TEMP TABLE syn_batch AS SELECT series, retail_mid.forecast_array(y, 28, 7) AS r FROM syn_arr;
SELECT :el + extract(epoch FROM clock_timestamp() - :'t0') AS el, :cpu + pg_temp.cpu_ticks() - :c0 AS cpu \gset
INSERT INTO syn_full_fc SELECT * FROM syn_batch; DROP TABLE syn_batch;
SELECT count(*) AS done FROM syn_full_fc \gset
\echo progress :done series, :el s elapsed, :cpu ticks CPU
$q$, b, least(b + 999, :syn)), E'\n' ORDER BY b) FROM generate_series(1, :syn, 1000) b \gset
\set f :out '/full.sql'
SELECT :'string_agg' AS s \g (format=unaligned tuples_only) :f
\i :f
SELECT format('OURS syn_full %s %s %s', :done, :el, :cpu / 100.0) \gset
\echo :format
SELECT r->>'model' AS model, count(*) FROM syn_full_fc GROUP BY 1 ORDER BY 2 DESC LIMIT 6;
\endif
