SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- retail_mid.ols against exact and plain-SQL answers, bad input, and its parallel plan
SET extra_float_digits = 0;
CREATE TEMP TABLE po(i int, x1 float8, x2 float8, y float8);
INSERT INTO po SELECT i, i % 7, (i * 3) % 11, 1 + 2 * (i % 7) - 3 * ((i * 3) % 11) FROM generate_series(1, 200) i;
-- exact fit: coefficients 1, 2, -3 and R^2 = 1
SELECT (SELECT array_agg(round(c::numeric, 9)) FROM jsonb_array_elements_text(m->'coef') c) AS coef,
       round((m->>'r2')::numeric, 9) AS r2, m->>'n' AS n
  FROM (SELECT retail_mid.ols(y, ARRAY[1, x1, x2]) m FROM po) s;
-- one regressor with noise: the same as regr_intercept, regr_slope, regr_r2 and the slope's standard error
UPDATE po SET y = y + ((i * 37) % 13 - 6) / 4.0;
SELECT abs((m->'coef'->>0)::float8 - regr_intercept) < 1e-9 AS intercept_ok,
       abs((m->'coef'->>1)::float8 - regr_slope) < 1e-9 AS slope_ok,
       abs((m->>'r2')::float8 - regr_r2) < 1e-9 AS r2_ok,
       abs((m->'se'->>1)::float8 - sqrt((regr_syy - regr_slope ^ 2 * regr_sxx) / (n - 2) / regr_sxx)) < 1e-9 AS se_ok
  FROM (SELECT retail_mid.ols(y, ARRAY[1, x1]) m, regr_intercept(y, x1), regr_slope(y, x1), regr_r2(y, x1),
               regr_syy(y, x1), regr_sxx(y, x1), count(*) n FROM po) s;
-- singular design (a regressor that never varies next to the intercept) and too few rows: NULL
SELECT retail_mid.ols(y, ARRAY[1, 5]) IS NULL AS singular_is_null FROM po;
SELECT retail_mid.ols(y, ARRAY[1, x1]) IS NULL AS too_few_rows FROM po WHERE i <= 2;
SELECT retail_mid.ols(y, ARRAY[1, x1]) FROM po WHERE false;
-- rows with a NULL response or regressor array are left out
SELECT (retail_mid.ols(CASE WHEN i <= 10 THEN NULL ELSE y END, ARRAY[1, x1])->>'n')::int AS n_without_nulls FROM po;
-- issue 19: a group whose first (or only) rows have a NULL y or x has no state yet, which must stay SQL NULL:
-- the final and serial functions used to dereference a NULL pointer here and crash the server
SELECT retail_mid.ols(NULL::float8, NULL::float8[]) AS all_null;
SELECT retail_mid.ols(NULL::float8, ARRAY[1.0, 2.0]) AS null_y, retail_mid.ols(1.0::float8, NULL::float8[]) AS null_x;
SELECT i, (retail_mid.ols(CASE WHEN i <= 3 THEN NULL ELSE y END, CASE WHEN i = 2 THEN NULL ELSE ARRAY[1, x1] END)
           OVER (ORDER BY i) ->> 'n')::int AS n_so_far
  FROM po WHERE i <= 6 ORDER BY i;
SELECT i, (retail_mid.ols(CASE WHEN i <= 3 THEN NULL ELSE y END, ARRAY[1.0])
           OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) ->> 'n')::int AS n_in_frame
  FROM po WHERE i <= 5 ORDER BY i;
-- bad input
SELECT retail_mid.ols(y, ARRAY[1, NULL]) FROM po;
SELECT retail_mid.ols(y, CASE WHEN i = 5 THEN ARRAY[1.0] ELSE ARRAY[1, x1] END) FROM po;
SELECT retail_mid.ols('NaN', ARRAY[1.0]);
SELECT retail_mid.ols(1, ARRAY['Infinity'::float8]);
SELECT retail_mid.ols(1, array_fill(1.0::float8, ARRAY[33]));
SELECT retail_mid.ols(1, '{}'::float8[]);
SELECT retail_mid.ols(1, '{{1,2},{3,4}}'::float8[]);

-- forced parallel aggregation: the same coefficients as serial to a relative 1e-9 (the sums are added in another
-- order; rounding both to 9 digits could still differ in the last digit)
CREATE TABLE po_big AS SELECT g % 5 AS grp, g::float8 AS x, 3 + 0.5 * g + (g * 7919 % 101) / 10.0 AS y FROM generate_series(1, 100000) g;
ALTER TABLE po_big SET (parallel_workers = 2);
ANALYZE po_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT grp, retail_mid.ols(y, ARRAY[1, x]) FROM po_big GROUP BY grp;
CREATE TEMP TABLE po_par AS SELECT grp, (m->'coef'->>0)::float8 a, (m->'coef'->>1)::float8 b
  FROM (SELECT grp, retail_mid.ols(y, ARRAY[1, x]) m FROM po_big GROUP BY grp) s;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE po_ser AS SELECT grp, (m->'coef'->>0)::float8 a, (m->'coef'->>1)::float8 b
  FROM (SELECT grp, retail_mid.ols(y, ARRAY[1, x]) m FROM po_big GROUP BY grp) s;
SELECT count(*) AS differences FROM po_par p FULL JOIN po_ser s USING (grp)
 WHERE NOT (abs(p.a - s.a) <= 1e-9 * greatest(1, abs(s.a)) AND abs(p.b - s.b) <= 1e-9 * greatest(1, abs(s.b)));
SELECT count(*) AS groups FROM po_ser;
-- issue 19: in a parallel plan a worker whose rows are all NULL, an all-NULL group and an empty input hand on no state
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT grp, retail_mid.ols(CASE WHEN grp = 0 OR x <= 60000 THEN NULL ELSE y END, ARRAY[1, x]) FROM po_big GROUP BY grp;
SELECT grp, (m->>'n')::int AS n, round((m->'coef'->>1)::numeric, 6) AS slope
  FROM (SELECT grp, retail_mid.ols(CASE WHEN grp = 0 OR x <= 60000 THEN NULL ELSE y END, ARRAY[1, x]) m
          FROM po_big GROUP BY grp) s ORDER BY grp;
SELECT retail_mid.ols(NULL::float8, ARRAY[1, x]) AS all_null_parallel FROM po_big;
SELECT retail_mid.ols(y, ARRAY[1, x]) AS empty_parallel FROM po_big WHERE x < 0;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
DROP TABLE po_big;
