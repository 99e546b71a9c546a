-- clv_cdnow: BG/NBD and Gamma-Gamma on the CDNOW 1/10 sample against the published estimates
-- (Fader, Hardie & Lee 2005: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; "RFM and CLV" 2005:
-- p = 6.25, q = 3.74, gamma = 15.44), 39-week calibration period ending 1997-09-30.
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
CREATE TEMP TABLE cdnow_elog (masterid int, sampleid int, d text, cds int, sales numeric);
SELECT format('COPY cdnow_elog FROM PROGRAM %L WITH (FORMAT csv, HEADER true)',
              'gzip -cdf ' || :'data_dir' || '/cdnow_elog.csv') AS copy_cmd \gset
:copy_cmd;
CREATE TEMP TABLE cdnow_cbs AS
SELECT masterid, (retail_mid.clv_summary(to_date(d, 'YYYYMMDD'), sales::float8, '1997-09-30', '1998-06-30', 7)).*
  FROM cdnow_elog GROUP BY masterid;
-- the summary checked against plain SQL doing the same (same-day merge, birth = first day, weeks)
WITH days AS (SELECT masterid, to_date(d, 'YYYYMMDD') AS day, sum(sales)::float8 AS amt FROM cdnow_elog GROUP BY 1, 2),
b AS (SELECT masterid, min(day) AS birth FROM days GROUP BY 1),
ref AS (
  SELECT b.masterid,
         count(*) FILTER (WHERE day > birth AND day <= '1997-09-30')::int AS x,
         coalesce(max(day) FILTER (WHERE day > birth AND day <= '1997-09-30') - birth, 0) / 7.0 AS t_x,
         ('1997-09-30'::date - birth) / 7.0 AS t_cal,
         avg(amt) FILTER (WHERE day > birth AND day <= '1997-09-30') AS mean_spend,
         count(*) FILTER (WHERE day > '1997-09-30' AND day <= '1998-06-30')::int AS x_holdout
    FROM b JOIN days USING (masterid) GROUP BY b.masterid, birth)
SELECT count(*) AS mismatches FROM ref FULL JOIN cdnow_cbs c USING (masterid)
 WHERE c.x IS DISTINCT FROM ref.x OR abs(c.t_x - ref.t_x) > 1e-12 OR abs(c.t_cal - ref.t_cal) > 1e-12
    OR abs(coalesce(c.mean_spend, -1) - coalesce(ref.mean_spend, -1)) > 1e-9 OR c.x_holdout IS DISTINCT FROM ref.x_holdout;
SELECT count(*) AS customers, count(*) FILTER (WHERE x > 0) AS repeaters, sum(x) AS repeat_transactions,
       sum(x_holdout) AS holdout_transactions, min(first_date), max(first_date) FROM cdnow_cbs;
-- BG/NBD: published estimates, 0.5 % relative
CREATE TEMP TABLE cdnow_bg AS SELECT (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM cdnow_cbs;
SELECT abs(r / 0.243 - 1) < 0.005 AS r_ok, abs(alpha / 4.414 - 1) < 0.005 AS alpha_ok,
       abs(a / 0.793 - 1) < 0.005 AS a_ok, abs(b / 2.426 - 1) < 0.005 AS b_ok,
       round(loglik::numeric, 1) AS loglik, n FROM cdnow_bg;
-- Gamma-Gamma on the repeat customers' mean spend per (same-day merged) repeat transaction
CREATE TEMP TABLE cdnow_gg AS SELECT (retail_mid.gammagamma_fit(x, mean_spend)).* FROM cdnow_cbs;
SELECT abs(p / 6.25 - 1) < 0.005 AS p_ok, abs(q / 3.74 - 1) < 0.005 AS q_ok,
       abs(gamma / 15.44 - 1) < 0.005 AS gamma_ok, n FROM cdnow_gg;
-- the paper's worked example (FHL 2005, section 5): x = 2, t_x = 30.43, T = 38.86 -> 1.226 transactions in 39 weeks
SELECT round(retail_mid.bgnbd_expected_purchases(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), 39, 2, 30.43, 38.86)::numeric, 3) AS paper_example_1_226;
-- holdout: aggregate forecast for the 39-week holdout (informational: not part of the published comparison)
SELECT sum(x_holdout) AS observed,
       round(sum(retail_mid.bgnbd_expected_purchases(g::retail_mid.bgnbd_params, t_holdout, x, t_x, t_cal))::numeric) AS predicted
  FROM cdnow_cbs, (SELECT * FROM cdnow_bg) g;
-- CLV of the worked example with the fitted models: 52 weeks, 0.2 % per week
-- CLV with the fitted models: one-year value of the worked example, 52 weekly periods at 0.2 % per week,
-- against its definition evaluated in SQL
SELECT round(retail_mid.clv(bg, gg, 2, 30.43, 38.86, 30, 52, 0.002)::numeric, 6)
     = round((retail_mid.gammagamma_expected_spend(gg, 2, 30)
              * (SELECT sum((retail_mid.bgnbd_expected_purchases(bg, k, 2, 30.43, 38.86)
                             - retail_mid.bgnbd_expected_purchases(bg, k - 1, 2, 30.43, 38.86)) / 1.002 ^ k)
                   FROM generate_series(1, 52) k))::numeric, 6) AS clv_ok,
       round(retail_mid.clv(bg, gg, 2, 30.43, 38.86, 30, 52, 0.002)::numeric, 2) AS clv_one_year
  FROM (SELECT ROW(r, alpha, a, b, loglik, n, iterations)::retail_mid.bgnbd_params AS bg FROM cdnow_bg) b,
       (SELECT ROW(p, q, gamma, loglik, n, iterations)::retail_mid.gammagamma_params AS gg FROM cdnow_gg) g;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
