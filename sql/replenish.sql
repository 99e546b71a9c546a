SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- replenishment arithmetic against hand-computed values
SET extra_float_digits = 0;
-- R: qnorm(c(0.5, 0.95, 0.975, 0.999)) = 0, 1.644853626951472, 1.959963984540054, 3.090232306167813
SELECT abs(retail_mid.normal_quantile(0.5)) < 1e-15 AS median_ok,
       abs(retail_mid.normal_quantile(0.95) - 1.644853626951472) < 1e-12 AS q95_ok,
       abs(retail_mid.normal_quantile(0.975) - 1.959963984540054) < 1e-12 AS q975_ok,
       abs(retail_mid.normal_quantile(0.999) - 3.090232306167813) < 1e-12 AS q999_ok,
       abs(retail_mid.normal_quantile(0.01) + retail_mid.normal_quantile(0.99)) < 1e-12 AS symmetric;
-- z sigma sqrt(L) and, with lead-time variability, z sqrt(L sigma^2 + d^2 sigma_L^2)
SELECT round(retail_mid.safety_stock(0.95, 10, 4)::numeric, 6) AS ss_fixed_lead_time,
       round((1.644853626951472 * 10 * 2)::numeric, 6) AS by_hand,
       round(retail_mid.safety_stock(0.95, 10, 4, 20, 1)::numeric, 6) AS ss_variable_lead_time,
       round((1.644853626951472 * sqrt(4 * 100 + 400 * 1))::numeric, 6) AS by_hand_2;
-- lead-time demand of a naive forecast: mean 3 x 9, sigma = s sqrt(1 + 2 + 3), s^2 = mean squared difference
WITH y AS (SELECT * FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)),
     s AS (SELECT sqrt(avg((v - l) ^ 2)) s FROM (SELECT v, lag(v) OVER (ORDER BY t) l FROM y) d WHERE l IS NOT NULL),
     f AS (SELECT retail_mid.forecast_series(t, v, 5, 1, '{"model": "naive"}') r FROM y)
SELECT d.mean, abs(d.sigma - s.s * sqrt(6)) < 1e-9 AS sigma_ok,
       abs(d.quantile - (27 + 1.644853626951472 * s.s * sqrt(6))) < 1e-9 AS quantile_ok
  FROM f, s, retail_mid.lead_time_demand(f.r, 3, 0.95) d;
-- (s, S) order quantity rounded up to packs: position 10 + 5 - 2 = 13 <= 20, order 37 -> 7 packs of 6 = 42
SELECT retail_mid.order_quantity(10, 5, 2, 20, 50, 6) AS order_qty,
       retail_mid.order_quantity(30, 0, 0, 20, 50, 6) AS above_reorder_point,
       retail_mid.order_quantity(20, 0, 0, 20, 50) AS at_reorder_point;
-- bad input
SELECT retail_mid.normal_quantile(1);
SELECT retail_mid.normal_quantile(0);
SELECT retail_mid.safety_stock(0.95, -1, 4);
SELECT retail_mid.safety_stock(1.5, 1, 4);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 10, 0);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 4, 1);
SELECT * FROM retail_mid.lead_time_demand(retail_mid.forecast_array('{1,2,3}', 2, 1), 3, 0.9);
