SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
-- issue 17: marketing mix model. Synthetic brand with media of known adstock and Hill saturation added to its sales;
-- mmm_fit must recover every parameter within 10%, its ROIs must beat a plain OLS on raw spend, the contributions
-- must add up to the fitted sales, and gmv_simulate / budget_optimise are checked against plain SQL.
SET extra_float_digits = 0;
SELECT retail_mid.generate_synthetic(seed => 7, customers => 300, days => 728, orders_per_day => 15, stores => 3, skus => 50,
       start_date => '2023-01-02', dirty_rate => 0, with_events => false, brand => 'mmm_syn') > 0 AS generated;
CREATE TEMP TABLE mmm_params AS
SELECT '{"tv":     {"decay": 0.7,  "half_saturation": 12000, "slope": 2.0, "beta": 40000, "mean_spend": 3000, "on_share": 0.5},
         "search": {"decay": 0.2,  "half_saturation": 1500,  "slope": 1.2, "beta": 25000, "mean_spend": 1500, "on_share": 0.8},
         "social": {"decay": 0.45, "half_saturation": 2500,  "slope": 2.5, "beta": 30000, "mean_spend": 1500, "on_share": 0.6}}'::jsonb AS p;
CREATE TEMP TABLE mmm_truth AS
SELECT * FROM retail_mid.generate_synthetic_media('mmm_syn', (SELECT p FROM mmm_params), seed => 7);
RESET client_min_messages;
SELECT channel, count(*) AS weeks, count(*) FILTER (WHERE spend > 0) AS weeks_on FROM mmm_truth GROUP BY channel ORDER BY channel;
-- the truth is what the ODS hold: daily spend adds up to the weekly spend, and the media orders to the contributions
SELECT (SELECT sum(spend) FROM retail_mid.ods_media_spend WHERE brand = 'mmm_syn') = (SELECT sum(spend) FROM mmm_truth) AS spend_matches,
       abs((SELECT sum(l.quantity * l.unit_price) FROM retail_mid.ods_order_line l WHERE l.brand = 'mmm_syn' AND l.order_id LIKE 'MM%')
           - (SELECT sum(contribution) FROM mmm_truth)) < 0.01 * 7 * (SELECT count(*) FROM mmm_truth) AS sales_match;
-- the adstock of the truth is the geometric recursion (checked by a recursive CTE)
WITH RECURSIVE t AS (SELECT channel, week_start, spend, row_number() OVER (PARTITION BY channel ORDER BY week_start) AS i FROM mmm_truth),
     a AS (SELECT channel, i, spend::float8 AS ad FROM t WHERE i = 1
           UNION ALL
           SELECT t.channel, t.i, t.spend::float8 + (mp.p -> t.channel ->> 'decay')::float8 * a.ad
             FROM a JOIN t ON t.channel = a.channel AND t.i = a.i + 1 CROSS JOIN mmm_params mp)
SELECT max(abs(a.ad - m.adstock)) < 1e-6 AS adstock_ok
  FROM a JOIN t ON t.channel = a.channel AND t.i = a.i JOIN mmm_truth m ON m.channel = t.channel AND m.week_start = t.week_start;
SET client_min_messages = warning;
SELECT retail_mid.refresh('2023-01-02', '2024-12-29') > 0 AS refreshed;
RESET client_min_messages;

-- fit (NOTICEs with the counts)
CREATE TEMP TABLE mmm_fit AS SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '{"bootstrap": 30}');
SELECT weeks, channels, controls, r2 > 0.99 AS r2_high, mape < 0.02 AS mape_low, ols_r2 < r2 AS ols_fits_worse FROM retail_mid.mmm_model;
-- recovery: each parameter within 10% of what was put in
SELECT f.channel,
       round(f.decay::numeric, 2) AS decay, (mp.p -> f.channel ->> 'decay')::float8 AS true_decay,
       abs(f.decay / (mp.p -> f.channel ->> 'decay')::float8 - 1) < 0.10 AS decay_ok,
       abs(f.half_saturation / (mp.p -> f.channel ->> 'half_saturation')::float8 - 1) < 0.10 AS half_saturation_ok,
       abs(f.slope / (mp.p -> f.channel ->> 'slope')::float8 - 1) < 0.10 AS slope_ok,
       abs(f.beta / (mp.p -> f.channel ->> 'beta')::float8 - 1) < 0.10 AS beta_ok
  FROM mmm_fit f CROSS JOIN mmm_params mp ORDER BY f.channel;
-- ROI: the true ROI (true contribution / spend) within 10% of the fit and inside its bootstrap interval; the plain OLS
-- on raw spend (no carry-over, no saturation) understates every ROI by far more (the carry-over of a week's spend lands
-- in later weeks and the diminishing returns flatten the line)
SELECT f.channel, round(t.roi::numeric, 2) AS true_roi, round(f.roi::numeric, 2) AS mmm_roi, round(f.ols_roi::numeric, 2) AS ols_roi,
       abs(f.roi / t.roi - 1) < 0.10 AS mmm_within_10pct,
       t.roi BETWEEN f.roi_low AND f.roi_high AS truth_in_interval,
       abs(f.ols_roi / t.roi - 1) > 3 * abs(f.roi / t.roi - 1) AS ols_bias_larger,
       round((100 * (f.ols_roi / t.roi - 1))::numeric) AS ols_bias_pct
  FROM mmm_fit f JOIN (SELECT channel, sum(contribution) / sum(spend) AS roi FROM mmm_truth GROUP BY channel) t USING (channel)
 ORDER BY f.channel;
-- contributions add up to the fitted sales, week by week, and the fit's channel totals are their sums
SELECT count(DISTINCT k.week_start) AS weeks, max(abs(k.s - w.fitted)) < 1e-6 AS adds_up
  FROM (SELECT week_start, sum(contribution) AS s FROM retail_mid.mmm_contribution GROUP BY week_start) k
  JOIN retail_mid.mmm_week w USING (week_start);
SELECT bool_and(abs(c.contribution - k.s) < 1e-6 AND abs(c.spend - k.sp) < 1e-6) AS channel_totals_ok
  FROM retail_mid.mmm_channel c
  JOIN (SELECT component, sum(contribution) AS s, sum(spend) AS sp FROM retail_mid.mmm_contribution WHERE is_media GROUP BY component) k
    ON k.component = c.channel;
-- the media contributions follow the truth week by week (correlation)
SELECT k.component, corr(k.contribution, t.contribution) > 0.99 AS tracks_truth
  FROM retail_mid.mmm_contribution k JOIN mmm_truth t ON t.channel = k.component AND t.week_start = k.week_start
 GROUP BY k.component ORDER BY 1;
-- the dashboard tile
SELECT component, is_media, count(*) AS weeks, bool_and(share_of_fitted IS NOT NULL) AS shares
  FROM retail_mid.dash_channel_contribution WHERE brand = 'mmm_syn' GROUP BY component, is_media ORDER BY component;
-- the job log
SELECT job, rows_written, (detail ->> 'weeks')::int AS weeks FROM retail_mid.job_log WHERE job = 'mmm_fit';

-- gmv_simulate against plain SQL on the stored curves
SELECT g.channel, g.weekly_spend,
       abs(g.expected_gmv - coalesce((SELECT c.beta / (1 + (c.half_saturation / (g.weekly_spend / (1 - c.decay))) ^ c.slope)
                                        FROM retail_mid.mmm_channel c WHERE c.channel = g.channel AND g.weekly_spend > 0), 0)) < 1e-6 AS gmv_ok
  FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": 3000, "search": 1500}') g WHERE g.channel NOT LIKE '(%' ORDER BY g.channel;
SELECT abs((SELECT expected_gmv FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": 3000}') WHERE channel = '(base)')
           - (SELECT avg(s) FROM (SELECT sum(contribution) AS s FROM retail_mid.mmm_contribution WHERE NOT is_media GROUP BY week_start) x)) < 1e-6 AS base_ok,
       abs((SELECT expected_gmv FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": 3000, "social": 100}') WHERE channel = '(total)')
           - (SELECT sum(expected_gmv) FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": 3000, "social": 100}') WHERE channel NOT IN ('(total)'))) < 1e-6 AS total_ok;
-- budget_optimise: spends the whole budget and is at least as good as the best split on a 1% grid (plain SQL)
CREATE TEMP TABLE mmm_opt AS SELECT * FROM retail_mid.budget_optimise('mmm_syn', 6000);
SELECT abs(sum(weekly_spend) - 6000) < 1e-6 AS whole_budget, bool_and(weekly_spend >= 0) AS non_negative FROM mmm_opt;
WITH c AS (SELECT * FROM retail_mid.mmm_channel),
     grid AS (SELECT i * 60.0 AS s_search, j * 60.0 AS s_social, 6000 - (i + j) * 60.0 AS s_tv
                FROM generate_series(0, 100) i, generate_series(0, 100) j WHERE i + j <= 100),
     val AS (SELECT g.*, (SELECT sum(retail_mid.mmm_response(CASE c.channel WHEN 'search' THEN s_search WHEN 'social' THEN s_social ELSE s_tv END,
                                                             c.decay, c.half_saturation, c.slope, c.beta)) FROM c) AS gmv FROM grid g)
SELECT (SELECT sum(expected_gmv) FROM mmm_opt) >= max(gmv) - 1e-6 AS beats_grid,
       (SELECT sum(expected_gmv) FROM mmm_opt) - max(gmv) < 0.01 * max(gmv) AS near_grid,
       (SELECT sum(expected_gmv) FROM mmm_opt) >= (SELECT sum(retail_mid.mmm_response(2000, decay, half_saturation, slope, beta)) FROM c) AS beats_equal_split
  FROM val;
SELECT sum(weekly_spend) AS zero_budget FROM retail_mid.budget_optimise('mmm_syn', 0);

-- bad inputs
SELECT * FROM retail_mid.mmm_fit('no_such_brand', '2023-01-02', '2024-12-29');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2024-12-29', '2023-01-02');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2030-01-01', '2030-06-30');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2023-01-05');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2023-03-31');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '{"channels": ["tv", "radio"]}');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '{"bootstrapp": 3}');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '{"fourier": "two"}');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '{"fourier": 7}');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '{"bounds": {"decay": [0, 1.5]}}');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '2023-01-02', '2024-12-29', '[]');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', NULL, '2024-12-29');
SELECT * FROM retail_mid.mmm_fit('mmm_syn', '-infinity', '2024-12-29');
INSERT INTO retail_mid.ods_media_spend (brand, spend_date, channel, spend) VALUES ('mmm_syn', '2023-01-02', 'radio', -5);
SELECT * FROM retail_mid.mmm_fit_core('{1,2,3,4,5,6,7,8}', '{-1,2,3,4,5,6,7,8}', '{1,1,1,1,1,1,1,1}', '{0,0.2,0.5}', '{0.9,3,4}', 1, 0, 1);
SELECT * FROM retail_mid.mmm_fit_core('{1,2,3}', '{1,2}', '{1,1,1}', '{0,0.2,0.5}', '{0.9,3,4}', 1, 0, 1);
-- a tiny valid fit: fitted sales are the contributions' sum; no bootstrap, no interval
SELECT rss >= 0 AS rss_ok, roi_boot IS NULL AS no_bootstrap,
       (SELECT max(abs(fitted[t] - contribution[1][t] - control_contribution[1][t])) < 1e-9 FROM generate_series(1, 8) t) AS adds_up
  FROM retail_mid.mmm_fit_core('{1,2,3,4,5,6,7,8}', '{1,2,3,4,5,6,7,8}', '{1,1,1,1,1,1,1,1}', '{0,0.2,0.5}', '{0.9,3,4}', 1, 0, 1);
-- a channel that never spends is collinear with nothing to fit: specific error
SELECT * FROM retail_mid.mmm_fit_core('{1,2,3,4,5,6,7,8}', '{0,0,0,0,0,0,0,0}', '{1,1,1,1,1,1,1,1}', '{0,0.2,0.5}', '{0.9,3,4}', 1, 0, 1);
SELECT * FROM retail_mid.mmm_fit_core('{1,NaN}', '{1,2}', '{1,1}', '{0,0.2,0.5}', '{0.9,3,4}', 1, 0, 1);
SELECT * FROM retail_mid.gmv_simulate('no_such_brand', '{"tv": 1}');
SELECT * FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": 1, "radio": 2}');
SELECT * FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": -1}');
SELECT * FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": "lots"}');
SELECT * FROM retail_mid.gmv_simulate('mmm_syn', '[1000]');
SELECT * FROM retail_mid.gmv_simulate('mmm_syn', NULL);
SELECT * FROM retail_mid.gmv_simulate('mmm_syn', '{"tv": 1}', -1);
SELECT * FROM retail_mid.budget_optimise('mmm_syn', -1);
SELECT * FROM retail_mid.budget_optimise('mmm_syn', 'NaN');
SELECT * FROM retail_mid.budget_optimise('mmm_syn', 'Infinity');
SELECT * FROM retail_mid.budget_optimise('no_such_brand', 100);
SELECT retail_mid.mmm_allocate(100, '{0.5,1}', '{1,1}', '{1,1}', '{1,1}');
SELECT retail_mid.generate_synthetic_media('no_such_brand');
SELECT retail_mid.generate_synthetic_media('mmm_syn', '{"tv": {"decay": 2}}');
SELECT retail_mid.load_media_spend('/nonexistent/media.csv', 'mmm_syn');
-- the loader: a file with a negative spend, a bad date and a duplicate is refused whole, or loads its valid rows
SELECT format('/tmp/retail_mid_mmm_%s.csv', pg_backend_pid()) AS csv_path \gset
SELECT format($c$COPY (SELECT * FROM (VALUES ('2030-01-01', 'radio', 'C1', '100.5', '2000'), ('2030-01-02', 'radio', '', '80', ''),
                                            ('2030-01-03', 'radio', '', '-3', '10'), ('2030-13-01', 'radio', '', '3', '10'),
                                            ('2030-01-02', 'radio', '', '90', '5')) v(date, channel, campaign_id, spend, impressions))
               TO %L WITH (FORMAT csv, HEADER true)$c$, :'csv_path') AS copy_out \gset
:copy_out;
SET client_min_messages = warning;
\set VERBOSITY sqlstate
SELECT rows_read, rows_loaded FROM retail_mid.load_media_spend(:'csv_path', 'mmm_syn');
\set VERBOSITY default
SELECT rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.load_media_spend(:'csv_path', 'mmm_syn', 5);
RESET client_min_messages;
SELECT spend_date, channel, campaign_id, spend, impressions FROM retail_mid.ods_media_spend WHERE brand = 'mmm_syn' AND channel = 'radio' ORDER BY 1, 3;
SELECT format('COPY (SELECT 1) TO PROGRAM %L', 'cat > /dev/null; rm -f ' || :'csv_path') AS rm_cmd \gset
:rm_cmd;
-- nothing was left behind by the failed calls: still one fit
SELECT count(*) AS fits FROM retail_mid.mmm_model;
-- leave the shared tables as they were
DO $$
DECLARE t regclass; pending bool := true; pass int := 0;
BEGIN
    WHILE pending AND pass < 10 LOOP   -- foreign keys: delete referencing rows first, whatever the table order
        pending := false; pass := pass + 1;
        FOR t IN SELECT a.attrelid::regclass FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p') AND a.attname = 'brand'
                    AND NOT a.attisdropped AND NOT c.relispartition
        LOOP
            BEGIN
                EXECUTE format('DELETE FROM %s WHERE brand = %L', t, 'mmm_syn');
            EXCEPTION WHEN foreign_key_violation THEN
                pending := true;
            END;
        END LOOP;
    END LOOP;
    IF pending THEN
        RAISE EXCEPTION 'could not remove the mmm_syn rows';
    END IF;
END;
$$;
SELECT count(*) AS rows_left FROM retail_mid.dws_trade_store_1d WHERE brand = 'mmm_syn';
