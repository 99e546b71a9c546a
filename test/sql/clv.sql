-- clv: BG/NBD and Gamma-Gamma on simulated customers, parallel and partitionwise plans, formulas, bad input
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- Simulated BG/NBD customers: lambda ~ Gamma(r = 1, alpha = 5) (exponential), p ~ Beta(a = 1, b = 3),
-- ages T uniform in [20, 40) weeks; Gamma-Gamma spend with p = 4, q = 3 (nu ~ Gamma(q, gamma = 20), spend ~ Gamma(4, nu)).
SELECT setseed(0.25);
CREATE TEMP TABLE clv_sim_c AS
SELECT i AS customer, -ln(1 - random()) / 5 AS lambda, 1 - (1 - random()) ^ (1.0 / 3) AS p,
       20 + 20 * random() AS t_cal, random() AS u_life
  FROM generate_series(1, 6000) i;
CREATE TEMP TABLE clv_sim_tx AS
SELECT c.customer, g.k, -ln(1 - random()) / c.lambda AS gap
  FROM clv_sim_c c, generate_series(1, 40) g(k);
CREATE TEMP TABLE clv_sim AS
WITH cum AS (SELECT customer, k, sum(gap) OVER (PARTITION BY customer ORDER BY k) AS at FROM clv_sim_tx),
life AS (SELECT customer, t_cal, 1 + floor(ln(1 - u_life) / ln(1 - greatest(p, 1e-9))) AS repeats_allowed FROM clv_sim_c)
SELECT l.customer, count(cum.k)::float8 AS x, coalesce(max(cum.at), 0) AS t_x, l.t_cal
  FROM life l LEFT JOIN cum ON cum.customer = l.customer AND cum.at <= l.t_cal AND cum.k <= l.repeats_allowed
 GROUP BY l.customer, l.t_cal;
SELECT count(*) AS customers, count(*) FILTER (WHERE x > 0) AS repeaters FROM clv_sim;
-- the fit recovers the simulation's parameters (sampling error of 6,000 customers: within 35 %)
CREATE TEMP TABLE clv_sim_fit AS SELECT (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_sim;
SELECT abs(r / 1 - 1) < 0.35 AS r_near, abs(alpha / 5 - 1) < 0.35 AS alpha_near,
       abs(a / 1 - 1) < 0.35 AS a_near, abs(b / 3 - 1) < 0.35 AS b_near, n FROM clv_sim_fit;
-- the maximum is a maximum: the log-likelihood sums to loglik and moving any parameter by 1 % lowers it
SELECT abs(sum(retail_mid.bgnbd_loglik(ROW(f.r, f.alpha, f.a, f.b, NULL, NULL, NULL), x, t_x, t_cal)) - f.loglik) < 1e-6 AS loglik_matches
  FROM clv_sim, clv_sim_fit f GROUP BY f.r, f.alpha, f.a, f.b, f.loglik;
SELECT bool_and(f.loglik > (SELECT sum(retail_mid.bgnbd_loglik(ROW(f.r * m[1], f.alpha * m[2], f.a * m[3], f.b * m[4], NULL, NULL, NULL), x, t_x, t_cal)) FROM clv_sim))
       AS is_local_max
  FROM clv_sim_fit f,
       (VALUES (ARRAY[1.01,1,1,1]), (ARRAY[0.99,1,1,1]), (ARRAY[1,1.01,1,1]), (ARRAY[1,0.99,1,1]),
               (ARRAY[1,1,1.01,1]), (ARRAY[1,1,0.99,1]), (ARRAY[1,1,1,1.01]), (ARRAY[1,1,1,0.99])) v(m);
-- spends: per-customer mean of x Gamma(4, nu) draws = Gamma(4x, x nu)
CREATE TEMP TABLE clv_sim_spend AS
SELECT s.customer, s.x, (SELECT avg(-ln(1 - random()) * 0) FROM generate_series(1, 1)) AS dummy,
       NULL::float8 AS mean_spend FROM clv_sim s WHERE s.x > 0;
UPDATE clv_sim_spend SET mean_spend = (
  SELECT avg(v) FROM (SELECT sum(-ln(1 - random())) / nu AS v
                        FROM (SELECT sum(-ln(1 - random())) / 20 AS nu FROM generate_series(1, 3) WHERE clv_sim_spend.customer > 0) n,
                             generate_series(1, clv_sim_spend.x::int) j, generate_series(1, 4) e
                       GROUP BY j, nu) t);
CREATE TEMP TABLE clv_sim_gg AS SELECT (retail_mid.gammagamma_fit(x, mean_spend)).* FROM clv_sim_spend;
SELECT abs(p / 4 - 1) < 0.35 AS p_near, abs(q / 3 - 1) < 0.35 AS q_near, abs(gamma / 20 - 1) < 0.35 AS gamma_near, n
  FROM clv_sim_gg;

-- formulas against plain SQL
SELECT round(retail_mid.bgnbd_p_alive(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), 2, 30.43, 38.86)::numeric, 12)
     = round((1 / (1 + 0.793 / (2.426 + 2 - 1) * ((4.414 + 38.86) / (4.414 + 30.43)) ^ (0.243 + 2)))::numeric, 12) AS p_alive_ok,
       retail_mid.bgnbd_p_alive(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), 0, 0, 38.86) AS p_alive_no_repeat;
SELECT round(retail_mid.gammagamma_expected_spend(ROW(6.25, 3.74, 15.44, NULL, NULL, NULL), 3, 40)::numeric, 10)
     = round((6.25 * (15.44 + 3 * 40) / (6.25 * 3 + 3.74 - 1))::numeric, 10) AS spend_ok,
       round(retail_mid.gammagamma_expected_spend(ROW(6.25, 3.74, 15.44, NULL, NULL, NULL), 0, NULL)::numeric, 4) AS population_mean;
-- the 2F1 series against the closed form E[X(t)] when b = 1, a = 2: 2F1(r, 1; 2; z) = (1 - (1 - z)^(1 - r)) / ((1 - r) z)
SELECT round(retail_mid.bgnbd_expectation(ROW(0.5, 4, 2, 1, NULL, NULL, NULL), 10)::numeric, 10)
     = round((2 * (1 - (4.0 / 14) ^ 0.5 * (1 - (4.0 / 14) ^ 0.5) / (0.5 * 10.0 / 14)))::numeric, 10) AS series_ok;
-- clv against its definition summed in SQL
SELECT round(retail_mid.clv(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), ROW(6.25, 3.74, 15.44, NULL, NULL, NULL),
                            2, 30.43, 38.86, 40, 12, 0.01, 4.33)::numeric, 9)
     = round((SELECT sum((retail_mid.bgnbd_expected_purchases(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), k * 4.33, 2, 30.43, 38.86)
                          - retail_mid.bgnbd_expected_purchases(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), (k - 1) * 4.33, 2, 30.43, 38.86))
                         / 1.01 ^ k)
                 * retail_mid.gammagamma_expected_spend(ROW(6.25, 3.74, 15.44, NULL, NULL, NULL), 2, 40)
                FROM generate_series(1, 12) k)::numeric, 9) AS clv_ok;

-- parallel plan: identical to serial (the final function sorts the points, so the order of partial states does not matter)
CREATE TABLE clv_par AS SELECT c.*, g AS copy FROM clv_sim c, generate_series(1, 5) g WHERE c.customer <= 2000;
ALTER TABLE clv_par SET (parallel_workers = 2);
ANALYZE clv_par;
CREATE TEMP TABLE clv_serial AS SELECT copy % 2 AS grp, (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_par GROUP BY 1;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT copy % 2 AS grp, (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_par GROUP BY 1;
SELECT count(*) AS parallel_differences FROM (
  (SELECT copy % 2 AS grp, (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_par GROUP BY 1 EXCEPT SELECT * FROM clv_serial)
  UNION ALL
  (SELECT * FROM clv_serial EXCEPT SELECT copy % 2 AS grp, (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_par GROUP BY 1)) d;
-- clv_summary in parallel: the simulated log of 40 events per customer, one row per customer
CREATE TABLE clv_par_tx AS SELECT customer, date '2020-01-01' + (k * 3 + customer % 5) AS day, (k % 7 + 1)::float8 AS amount FROM clv_sim_tx WHERE gap < 3;
ALTER TABLE clv_par_tx SET (parallel_workers = 2);
ANALYZE clv_par_tx;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE clv_sum_serial AS SELECT customer, (retail_mid.clv_summary(day, amount, '2020-03-01', '2020-04-15', 7)).* FROM clv_par_tx GROUP BY customer;
SET max_parallel_workers_per_gather = 2; SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT customer, (retail_mid.clv_summary(day, amount, '2020-03-01', '2020-04-15', 7)).* FROM clv_par_tx GROUP BY customer;
SELECT count(*) AS parallel_summary_differences FROM (
  (SELECT customer, (retail_mid.clv_summary(day, amount, '2020-03-01', '2020-04-15', 7)).* FROM clv_par_tx GROUP BY customer
   EXCEPT SELECT * FROM clv_sum_serial)
  UNION ALL
  (SELECT * FROM clv_sum_serial
   EXCEPT SELECT customer, (retail_mid.clv_summary(day, amount, '2020-03-01', '2020-04-15', 7)).* FROM clv_par_tx GROUP BY customer)) d;
SELECT count(*) AS summary_rows FROM clv_sum_serial;
RESET enable_hashagg; RESET parallel_leader_participation;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- partitionwise: partial fits per partition, combined
CREATE TABLE clv_part (customer int, x float8, t_x float8, t_cal float8) PARTITION BY HASH (customer);
CREATE TABLE clv_part_0 PARTITION OF clv_part FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE clv_part_1 PARTITION OF clv_part FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO clv_part SELECT customer, x, t_x, t_cal FROM clv_sim;
ANALYZE clv_part;
SET enable_partitionwise_aggregate = on; SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_part;
SELECT count(*) AS partitionwise_differences FROM (
  SELECT (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_part EXCEPT SELECT * FROM clv_sim_fit) d;
RESET enable_partitionwise_aggregate; RESET max_parallel_workers_per_gather;

-- bad input and edge cases
SELECT (retail_mid.bgnbd_fit(x, t_x, t_cal)).* FROM clv_sim WHERE false;
SELECT (retail_mid.bgnbd_fit(x, t_x, t_cal)).r IS NULL AS null_rows_skipped FROM (VALUES (NULL::float8, 1::float8, 2::float8)) v(x, t_x, t_cal);
SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (-1::float8, 0::float8, 2::float8)) v(x, t_x, t_cal);
SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1.5::float8, 1::float8, 2::float8)) v(x, t_x, t_cal);
SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1::float8, 3::float8, 2::float8)) v(x, t_x, t_cal);
SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1::float8, 'NaN'::float8, 2::float8)) v(x, t_x, t_cal);
SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (0::float8, 0::float8, 2::float8)) v(x, t_x, t_cal);
SELECT retail_mid.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1::float8, 1::float8, 2::float8), (1, 1, 2)) v(x, t_x, t_cal);
SELECT retail_mid.gammagamma_fit(x, m) FROM (VALUES (2::float8, -5::float8)) v(x, m);
SELECT retail_mid.gammagamma_fit(x, m) IS NULL AS no_repeaters_null FROM (VALUES (0::float8, 5::float8)) v(x, m);
SELECT retail_mid.bgnbd_expected_purchases(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), -1, 2, 30, 38);
SELECT retail_mid.bgnbd_expected_purchases(ROW(0.243, 4.414, 1, 2.426, NULL, NULL, NULL), 1, 2, 30, 38);
SELECT retail_mid.bgnbd_expected_purchases(ROW(NULL, 4.414, 0.793, 2.426, NULL, NULL, NULL), 1, 2, 30, 38);
SELECT retail_mid.bgnbd_p_alive(ROW(-0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), 2, 30, 38);
SELECT retail_mid.gammagamma_expected_spend(ROW(6.25, 0.9, 15.44, NULL, NULL, NULL), 2, 30);
SELECT retail_mid.clv(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), ROW(6.25, 3.74, 15.44, NULL, NULL, NULL), 2, 30, 38, 40, 12, -1);
SELECT retail_mid.clv(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), ROW(6.25, 3.74, 15.44, NULL, NULL, NULL), 2, 30, 38, 40, 12, 0.01, 0);
SELECT retail_mid.clv(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL), ROW(6.25, 3.74, 15.44, NULL, NULL, NULL), 2, 30, 38, 40, 0, 0.01) AS zero_horizon;
SELECT retail_mid.clv_summary(d, a, '2020-01-31', NULL, 7) IS NULL AS born_after_calibration FROM (VALUES ('2020-02-01'::date, 1::float8)) v(d, a);
SELECT (retail_mid.clv_summary(d, a, '2020-01-31', NULL, 7)).* FROM (VALUES ('2020-01-01'::date, 1::float8), ('2020-01-01', 2), ('2020-01-15', 5), ('2020-01-15', 1), ('2020-01-29', 3), ('2020-03-01', 9)) v(d, a);
SELECT retail_mid.clv_summary(d, a, '2020-01-31', NULL, 7) FROM (VALUES ('2020-01-01'::date, NULL::float8)) v(d, a);
SELECT retail_mid.clv_summary(d, a, '2020-01-31', '2020-01-01', 7) FROM (VALUES ('2020-01-01'::date, 1::float8)) v(d, a);
SELECT retail_mid.clv_summary(d, a, c, NULL, 7) FROM (VALUES ('2020-01-01'::date, 1::float8, '2020-01-31'::date), ('2020-01-02', 1, '2020-02-28')) v(d, a, c);
SELECT retail_mid.clv_summary(d, a, '2020-01-31', NULL, 0) FROM (VALUES ('2020-01-01'::date, 1::float8)) v(d, a);
SELECT retail_mid.clv_summary(d, a, NULL, NULL, 7) FROM (VALUES ('2020-01-01'::date, 1::float8)) v(d, a);
SELECT retail_mid.clv_summary(d, a, '2020-01-31', NULL, 7) FROM (VALUES ('infinity'::date, 1::float8)) v(d, a);
DROP TABLE clv_par, clv_par_tx, clv_part;
