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
       retail_mid.order_quantity(20, 0, 0, 20, 50) AS at_reorder_point,
       retail_mid.order_quantity(18, 0, 0, 20, 24, 6, 20) AS min_order_24,   -- 6 -> 1 pack, below 20 -> 4 packs
       retail_mid.order_quantity(0, 0, 0, 20, 24, 6, 20) AS above_min_24,    -- 24 = 4 packs exactly
       retail_mid.order_quantity(20, 0, 0, 20, 20, 6, 20) AS at_base_stock,  -- s = S and position at S: nothing
       retail_mid.order_quantity(19, 0, 0, 20, 20, 6, 20) AS below_base_stock; -- 1 -> 1 pack, below 20 -> 4 packs
-- bad input
SELECT retail_mid.normal_quantile(1);
SELECT retail_mid.normal_quantile(0);
SELECT retail_mid.safety_stock(0.95, -1, 4);
SELECT retail_mid.safety_stock(1.5, 1, 4);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 10, 0);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 4, 1);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 10, 1, -1);
-- issue 19: NaN and +-Infinity in any argument of the replenishment scalars are 22023, not a NaN, an Infinity or
-- an "order 0" answer (safety_stock and order_quantity used to return them); SQLSTATE and message of each call
CREATE FUNCTION pg_temp.outcome(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE 'SELECT (' || call || ')::text' INTO r;
    RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT call, pg_temp.outcome(call) FROM (VALUES
    ($$retail_mid.safety_stock(0.95, 'NaN', 4)$$),
    ($$retail_mid.safety_stock(0.95, 1, 'Infinity')$$),
    ($$retail_mid.safety_stock(0.95, 1, 4, 'NaN')$$),
    ($$retail_mid.safety_stock(0.95, 1, 4, 20, '-Infinity')$$),
    ($$retail_mid.safety_stock('NaN', 1, 4)$$),
    ($$retail_mid.safety_stock('Infinity', 1, 4)$$),
    ($$retail_mid.order_quantity('NaN', 0, 0, 5, 10)$$),
    ($$retail_mid.order_quantity(0, 'NaN', 0, 5, 10)$$),
    ($$retail_mid.order_quantity(0, 0, 'Infinity', 5, 10)$$),
    ($$retail_mid.order_quantity(0, 0, 0, 'NaN', 10)$$),
    ($$retail_mid.order_quantity(0, 0, 0, 5, 'Infinity')$$),
    ($$retail_mid.order_quantity(0, 0, 0, 5, 10, 'NaN')$$),
    ($$retail_mid.order_quantity(0, 0, 0, 5, 10, 1, 'Infinity')$$),
    ($$retail_mid.order_quantity('-Infinity', 0, 0, 5, 10)$$),
    ($$retail_mid.normal_quantile('NaN')$$),
    ($$retail_mid.normal_loss('NaN')$$),
    ($$retail_mid.fill_rate_safety_factor('NaN', 1, 10)$$),
    ($$retail_mid.fill_rate_safety_factor(0.9, 'Infinity', 10)$$),
    ($$(retail_mid.lead_time_demand(retail_mid.forecast_array('{1,2,3}', 2, 1), 1, 'NaN')).quantile$$),
    ($$(retail_mid.lead_time_demand_mixture('{1,2}', '{1,1}', 'Infinity', 0, 0.9)).quantile$$),
    ($$(retail_mid.lead_time_demand_fill_rate('{1,2}', '{1,1}', 1, 0, 0.9, 'NaN')).level$$),
    ($$retail_mid.replenish_lead_time_draws(1, 'Infinity', 3)$$),
    ($$(retail_mid.replenish_simulate('{1,2}', '{1,1}', '{2,2}', 1, 'NaN', 1, 0)).fill_rate$$),
    ($$(retail_mid.replenish_simulate('{1,2}', '{1,1}', '{2,2}', '{1,1}'::int4[], 3, 'Infinity', 0)).fill_rate$$),
    ($$(retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3,4,5,6,7,8,9,10}', 10, 1), 'NaN', 0, 2, 0.9)).reorder_point_normal$$),
    ($$(retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3,4,5,6,7,8,9,10}', 10, 1), 1, 0, 2, 'Infinity', 'fill_rate')).reorder_point_normal$$)
) v(call);
-- the message names every input
SELECT retail_mid.order_quantity(0, 0, 0, 5, 10, 1, 'Infinity');
SELECT * FROM retail_mid.lead_time_demand(retail_mid.forecast_array('{1,2,3}', 2, 1), 3, 0.9);

-- ===== lead-time demand with a variable lead time =====
-- fixed L = 3: 3 days of N(10, 2^2): mean 30, sd 2 sqrt(3), quantile 30 + z(0.95) 2 sqrt(3); L = 2.5: variance 2.5 * 4
SELECT m.mean, abs(m.sd - 2 * sqrt(3)) < 1e-12 AS sd_ok,
       abs(m.quantile - (30 + 1.644853626951472 * 2 * sqrt(3))) < 1e-6 AS quantile_ok,
       abs(h.mean - 25) < 1e-12 AS half_mean_ok, abs(h.quantile - (25 + 1.644853626951472 * sqrt(10))) < 1e-6 AS half_quantile_ok
  FROM retail_mid.lead_time_demand_mixture(array_fill(10::float8, ARRAY[10]), array_fill(2::float8, ARRAY[10]), 3, 0, 0.95) m,
       retail_mid.lead_time_demand_mixture(array_fill(10::float8, ARRAY[10]), array_fill(2::float8, ARRAY[10]), 2.5, 0, 0.95) h;
-- L ~ N(3, 1) in whole days, demand exactly 10 a day: P(K <= k) = Phi(k + 0.5 - 3); Phi(1.5) = 0.9332 < 0.95
-- <= Phi(2.5) = 0.9938, so the 95% quantile is 5 days = 50 units, the 90% one 4 days = 40 (Phi(0.5) = 0.69 < 0.9
-- <= 0.9332); the mean is 30 up to the tails put at day 0 (Phi(-3.5) = 0.0002)
SELECT round(m.mean::numeric, 2) AS mean, round(m.sd::numeric, 2) AS sd_about_10, round(m.quantile::numeric, 6) AS q95,
       round(q.quantile::numeric, 6) AS q90
  FROM retail_mid.lead_time_demand_mixture(array_fill(10::float8, ARRAY[10]), array_fill(0::float8, ARRAY[10]), 3, 1, 0.95) m,
       retail_mid.lead_time_demand_mixture(array_fill(10::float8, ARRAY[10]), array_fill(0::float8, ARRAY[10]), 3, 1, 0.90) q;
SELECT * FROM retail_mid.lead_time_demand_mixture('{1,2}', '{1}', 1, 0, 0.9);
SELECT * FROM retail_mid.lead_time_demand_mixture('{1,2}', '{1,-1}', 1, 0, 0.9);
SELECT * FROM retail_mid.lead_time_demand_mixture('{1,2}', '{1,1}', 3, 0, 0.9);
SELECT * FROM retail_mid.lead_time_demand_mixture('{1,2}', '{1,1}', 1, 'NaN', 0.9);
SELECT * FROM retail_mid.lead_time_demand_mixture('{1,NULL}', '{1,1}', 1, 0, 0.9);
SELECT * FROM retail_mid.lead_time_demand_mixture('{1,2}', '{1,1}', 1, 0, 1);

-- ===== the policy from a forecast, both methods =====
-- Periodic review: the stock at a review must last until the NEXT review's order arrives, so the protection interval
-- is P = L + R. A constant forecast of 10 a day (zero-width intervals), L = 3 days with sd 1, review 7 days, 95%:
-- normal: SS = z * sqrt(10 * 0 + 10^2 * 1^2) = 16.448536, reorder point 10 * 10 + SS; quantile: the lead time plus
-- the review period ~ N(10, 1) in whole days, P(K <= k) = Phi(k + 0.5 - 10): Phi(1.5) = 0.933 < 0.95 <= Phi(2.5),
-- 12 days = 120, SS = 120 - 100.00; review demand = days 4..10 = 70; lot 0: order-up-to = reorder point.
SELECT p.mean_daily_demand, p.sigma_daily, p.lead_time_demand, round(p.safety_stock_normal::numeric, 6) AS ss_normal,
       round(p.reorder_point_normal::numeric, 6) AS rop_normal, round(p.reorder_point_quantile::numeric, 6) AS rop_quantile,
       round(p.safety_stock_quantile::numeric, 2) AS ss_quantile, p.review_demand,
       round(p.order_up_to_normal::numeric, 6) AS s_normal, round(p.order_up_to_quantile::numeric, 6) AS s_quantile
  FROM retail_mid.replenish_policy(retail_mid.forecast_array(array_fill(10::float8, ARRAY[30]), 28, 7), 3, 1, 7, 0.95) p;
-- lot_days 7: order-up-to = reorder point + 7 x 10
SELECT round(p.order_up_to_normal::numeric, 6) AS s_normal, round(p.order_up_to_quantile::numeric, 6) AS s_quantile
  FROM retail_mid.replenish_policy(retail_mid.forecast_array(array_fill(10::float8, ARRAY[30]), 28, 7), 3, 1, 7, 0.95, 'cycle', 7) p;
-- naive forecast: sigma1 = the naive residual sd s, normal SS with a fixed lead time = z s sqrt(L + R)
WITH y AS (SELECT * FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)),
     s AS (SELECT sqrt(avg((v - l) ^ 2)) s FROM (SELECT v, lag(v) OVER (ORDER BY t) l FROM y) d WHERE l IS NOT NULL)
SELECT abs(p.sigma_daily - s.s) < 1e-9 AS sigma1_ok, abs(p.safety_stock_normal - 1.644853626951472 * s.s * sqrt(4 + 3)) < 1e-9 AS ss_ok,
       p.mean_daily_demand, p.review_demand
  FROM s, retail_mid.replenish_policy(retail_mid.forecast_array('{1,5,3,8,2,6,4,9}', 10, 1, '{"model": "naive"}'), 4, 0, 3, 0.95) p;
SELECT * FROM retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3}', 5, 1), 3, 0, 3, 0.95);
SELECT * FROM retail_mid.replenish_policy('{"mean": [1]}', 1, 0, 1, 0.95);
SELECT * FROM retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3}', 9, 1), 3, 0, 3, 0.95, 'fill');
SELECT * FROM retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3}', 9, 1), 3, -1, 3, 0.95);
SELECT * FROM retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3}', 9, 1), 3, 0, 3, 0.95, 'cycle', -1);

-- ===== a target fill rate: the loss-function method =====
-- R: G <- function(k) dnorm(k) - k * (1 - pnorm(k)); G(0), G(1), G(-0.5), G(2.5) =
-- 0.398942280401433, 0.083315470587686, 0.697796557401306, 0.002004137179128
SELECT abs(retail_mid.normal_loss(0) - 0.398942280401433) < 1e-14 AS g0, abs(retail_mid.normal_loss(1) - 0.083315470587686) < 1e-14 AS g1,
       abs(retail_mid.normal_loss(-0.5) - 0.697796557401306) < 1e-14 AS g_neg, abs(retail_mid.normal_loss(2.5) - 0.002004137179128) < 1e-14 AS g25;
-- R: uniroot(function(k) sigma * G(k) - (1 - b) / b * Q): (b, sigma, Q) = (0.95, 10, 100) -> -0.233157303691,
-- (0.99, 20, 35) -> 1.713913343250, (0.9, 1, 50) -> -5.555555553205 (a large order needs little protection)
SELECT abs(retail_mid.fill_rate_safety_factor(0.95, 10, 100) + 0.233157303691) < 1e-9 AS k1,
       abs(retail_mid.fill_rate_safety_factor(0.99, 20, 35) - 1.713913343250) < 1e-9 AS k2,
       abs(retail_mid.fill_rate_safety_factor(0.9, 1, 50) + 5.555555553205) < 1e-8 AS k3,
       retail_mid.fill_rate_safety_factor(0.95, 0, 100) AS no_sigma,
       abs(retail_mid.fill_rate_safety_factor(0.95, 10, 0) - 1.644853626951472) < 1e-12 AS no_demand_is_z;
-- Demand N(10, 2^2) a day, lead time ~ N(3, 1) in whole days, fill rate 0.95, 70 units a cycle: the level x with
-- E[(X - x)+] = 0.05 / 0.95 * 70 = 3.684210526316. R, by numerical integration of each component's density
-- (integrate, then uniroot): x = 31.425193770, mixture mean 30.002360457819. Fixed lead time 3 (one normal
-- N(30, 12)): x = 26.617600103, below the mean (a large order per cycle).
SELECT abs(f.level - 31.425193770) < 1e-6 AS level_ok, abs(f.mean - 30.002360457819) < 1e-9 AS mean_ok,
       abs(f.expected_shortage - 3.684210526316) < 1e-8 AS shortage_ok, abs(x.level - 26.617600103) < 1e-6 AS fixed_ok,
       abs(x.level - (30 + sqrt(12) * retail_mid.fill_rate_safety_factor(0.95, sqrt(12), 70))) < 1e-6 AS same_as_normal_method
  FROM retail_mid.lead_time_demand_fill_rate(array_fill(10::float8, ARRAY[10]), array_fill(2::float8, ARRAY[10]), 3, 1, 0.95, 70) f,
       retail_mid.lead_time_demand_fill_rate(array_fill(10::float8, ARRAY[10]), array_fill(2::float8, ARRAY[10]), 3, 0, 0.95, 70) x;
-- the policy with service_measure fill_rate: a naive forecast (sigma_h = s sqrt(h)), L = 4, R = 3, 95%:
-- normal: SS = k s sqrt(7), k from fill_rate_safety_factor(0.95, s sqrt(7), Q), Q = 3 days of the last value 9
WITH y AS (SELECT * FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)),
     s AS (SELECT sqrt(avg((v - l) ^ 2)) s FROM (SELECT v, lag(v) OVER (ORDER BY t) l FROM y) d WHERE l IS NOT NULL)
SELECT p.review_demand,
       abs(p.safety_stock_normal - retail_mid.fill_rate_safety_factor(0.95, s.s * sqrt(7), 27) * s.s * sqrt(7)) < 1e-9 AS ss_ok,
       abs(p.reorder_point_quantile - (SELECT level FROM retail_mid.lead_time_demand_fill_rate(array_fill(9::float8, ARRAY[10]),
           ARRAY(SELECT s.s * sqrt(h) FROM generate_series(1, 10) h), 7, 0, 0.95, 27))) < 1e-6 AS quantile_ok
  FROM s, retail_mid.replenish_policy(retail_mid.forecast_array('{1,5,3,8,2,6,4,9}', 10, 1, '{"model": "naive"}'), 4, 0, 3, 0.95, 'fill_rate') p;
SELECT retail_mid.fill_rate_safety_factor(1, 1, 1);
SELECT retail_mid.fill_rate_safety_factor(0.9, -1, 1);
SELECT retail_mid.fill_rate_safety_factor(0.9, 1, 'NaN');
SELECT retail_mid.normal_loss('Infinity');
SELECT * FROM retail_mid.lead_time_demand_fill_rate('{1,2}', '{1,1}', 1, 0, 0.9, -1);

-- ===== fixture: four stores on the equator, 0.1 degree apart (11,131.95 m on the WGS84 equator), one of another brand =====
INSERT INTO retail_mid.ods_site (brand, site_id, kind, geom, parent_site_id) VALUES
    ('rpt_test', 'A', 'store', ST_SetSRID(ST_MakePoint(0.0, 0), 4326), 'DC1'),
    ('rpt_test', 'B', 'store', ST_SetSRID(ST_MakePoint(0.1, 0), 4326), 'DC1'),
    ('rpt_test', 'C', 'store', ST_SetSRID(ST_MakePoint(0.2, 0), 4326), 'DC1'),
    ('rpt_test', 'D', 'store', ST_SetSRID(ST_MakePoint(0.5, 0), 4326), 'DC1'),
    ('rpt_test', 'DC1', 'RDC', ST_SetSRID(ST_MakePoint(0.3, 0.3), 4326), NULL),
    ('rpt_other', 'E', 'store', ST_SetSRID(ST_MakePoint(0.15, 0), 4326), NULL);
INSERT INTO retail_mid.ods_product (brand, sku_id, category_l1, category_l2) VALUES
    ('rpt_test', 'X', 'Food', 'Snacks'), ('rpt_test', 'Y', 'Food', 'Dairy'), ('rpt_test', 'Z', 'Food', 'Dairy'),
    ('rpt_test', 'W', 'Home', 'Cleaning'), ('rpt_other', 'X', 'Food', 'Snacks');
-- lead times of supplier SUP1 into C: 2, 4 and 6 days (mean 4, sd 2); one open shipment that does not count
INSERT INTO retail_mid.ods_inbound_shipment (brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, received_on, quantity) VALUES
    ('rpt_test', 'S1', 'C', 'Y', 'SUP1', '2024-01-01', '2024-01-03', 10), ('rpt_test', 'S2', 'C', 'Y', 'SUP1', '2024-01-10', '2024-01-14', 10),
    ('rpt_test', 'S2', 'C', 'Z', 'SUP1', '2024-01-10', '2024-01-14', 10), ('rpt_test', 'S3', 'C', 'Y', 'SUP1', '2024-01-20', '2024-01-26', 10),
    ('rpt_test', 'S4', 'C', 'Y', 'SUP1', '2024-02-01', NULL, 10);
-- issue 15: replenishment reads the public layer: sites and products from the DIM layer (refresh_dims), shipments
-- from the inbound DWD (dwd_inventory_inbound_di, refresh_domains over their order days)
SET client_min_messages = warning;
SELECT retail_mid.refresh_dims() >= 0 AS dims, retail_mid.refresh_domains('2024-01-01', '2024-02-29') >= 0 AS inbound;
RESET client_min_messages;
SELECT source_id, site_id, shipments, lead_time_mean, lead_time_sd FROM retail_mid.replenish_lead_time_history
 WHERE brand = 'rpt_test' ORDER BY 1, 2;
-- parameters: a brand default, a SKU row for X (packs of 6), a category row for Dairy with the lead time from history
-- and a minimum order of 12, a category row for Dairy from supplier SUP1 only (wins over source * at equal
-- specificity), a SKU row for Z (wins over any category row)
INSERT INTO retail_mid.replenish_parameter (brand, source_id, sku_id, category, lead_time_mean, lead_time_sd, review_period, pack_size, min_order_qty, service_level) VALUES
    ('rpt_test', '*', '*', '*', 2, 0, 1, 1, 0, 0.95),
    ('rpt_test', '*', 'X', '*', 2, 0, 1, 6, 0, 0.95),
    ('rpt_test', '*', '*', 'Dairy', NULL, NULL, 1, 1, 12, 0.95),
    ('rpt_test', 'SUP1', '*', 'Dairy', NULL, NULL, 1, 1, 12, 0.95),
    ('rpt_test', 'SUP2', '*', 'Food', 9, 0, 1, 1, 0, 0.95),
    ('rpt_test', '*', 'Z', '*', 5, 1, 2, 10, 0, 0.9),
    ('rpt_test', '*', 'W', '*', 2, 0, 7, 1, 0, 0.95);
SELECT x.site_id, x.sku_id, r.*
  FROM (VALUES ('A', 'X'), ('C', 'Y'), ('A', 'Y'), ('C', 'Z'), ('B', 'W'), ('A', 'Q')) x(site_id, sku_id),
       retail_mid.replenish_resolve('rpt_test', x.site_id, x.sku_id) r ORDER BY 1, 2;
-- a brand without parameters and without history: defaults, no lead time
SELECT * FROM retail_mid.replenish_resolve('rpt_other', 'E', 'X');

-- observed lead times replayed day by day: SUP1 into C: S1 ordered 1 Jan (2 days), S2 10 Jan (4), S3 20 Jan (6); S4 is
-- open. From 30 Dec for 25 days: 2 (before the first shipment: the first) x 2, 2 x 9, 4 x 10, 6 x 4
SELECT basis, shipments, lead_times FROM retail_mid.replenish_lead_time_replay('rpt_test', 'SUP1', 'C', '2023-12-30', 25);
-- into A there is none: the source's shipments into all sites; more shipments required than there are: none
SELECT basis, shipments, lead_times FROM retail_mid.replenish_lead_time_replay('rpt_test', 'SUP1', 'A', '2024-01-09', 3);
SELECT basis IS NULL AS no_history, lead_times IS NULL AS no_lead_times FROM retail_mid.replenish_lead_time_replay('rpt_test', 'SUP1', 'C', '2024-01-09', 3, 4);
SELECT * FROM retail_mid.replenish_lead_time_replay('rpt_test', 'SUP1', 'C', '2024-01-09', 0);
-- the new parameter columns reject bad values
INSERT INTO retail_mid.replenish_parameter (brand, service_measure) VALUES ('rpt_test', 'fill');
INSERT INTO retail_mid.replenish_parameter (brand, lot_days) VALUES ('rpt_test', -1);

-- ===== suggested orders =====
-- constant forecasts: X 10 a day in every store, Y 5 a day in C; stock from the latest snapshot
INSERT INTO retail_mid.replenish_forecast (brand, site_id, sku_id, made_on, result)
SELECT 'rpt_test', s, 'X', date '2024-03-01', retail_mid.forecast_array(array_fill(10::float8, ARRAY[30]), 28, 7) FROM unnest('{A,B,C,D}'::text[]) s
UNION ALL SELECT 'rpt_test', 'C', 'Y', '2024-03-01', retail_mid.forecast_array(array_fill(5::float8, ARRAY[30]), 28, 7);
INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, on_order, reserved) VALUES
    ('rpt_test', 'A', 'X', '2024-02-28', 999, 0, 0), ('rpt_test', 'A', 'X', '2024-03-01', 170, 0, 0),
    ('rpt_test', 'A', 'X', '2024-03-02', 0, 0, 0),   -- after the forecast day: not used
    ('rpt_test', 'B', 'X', '2024-03-01', 150, 0, 5), ('rpt_test', 'C', 'X', '2024-03-01', 10, 0, 0),
    ('rpt_test', 'D', 'X', '2024-02-25', 5, 0, 0), ('rpt_test', 'C', 'Y', '2024-03-01', 3, 0, 0);
-- issue 15: the suggested orders read the stock from the inventory DWS (dws_inventory_site_sku_1d): while it is
-- behind the snapshots they refuse (55000); on order is the DWS's, the open inbound shipments (S4: 10 Y into C)
SELECT pg_temp.outcome($$(SELECT count(*) FROM retail_mid.suggested_orders('rpt_test'))$$) AS stale;
SELECT dt, ods_rows, refreshed_rows FROM retail_mid.domain_stale_days('inventory', 'rpt_test') ORDER BY dt;
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2024-02-01', '2024-03-31') >= 0 AS refreshed;
RESET client_min_messages;
SELECT count(*) AS stale_days FROM retail_mid.domain_stale_days('inventory', 'rpt_test');
-- X: L = 2, sd 0, review 1: protection interval 3 days, reorder point = order-up-to = 30 (lot 0); C: 30 - 10 = 20 ->
-- 4 packs of 6 = 24; D: 30 - 5 = 25 -> 30. Y in C: L from history (mean 4, sd 2), review 1: normal reorder point
-- 5 * (4 + 1) + z sqrt(25 * 4) = 41.448536 = order-up-to, position 3 on hand + 10 on order (S4, open) = 13, order ceil(41.448536 - 13) = 29 (minimum 12 does not bind).
SELECT site_id, sku_id, as_of, source_id, lead_time_basis, lead_time_mean, lead_time_sd, mean_daily_demand,
       round(reorder_point::numeric, 6) AS reorder_point, round(order_up_to::numeric, 6) AS order_up_to,
       snapshot_date, on_hand, reserved, inventory_position, round(cover_days::numeric, 2) AS cover_days, pack_size, order_qty
  FROM retail_mid.suggested_orders('rpt_test') ORDER BY sku_id, site_id;
-- quantile method for Y: lead time + review ~ N(5, 2^2) in days, 5 a day exactly: P(K <= k) = Phi((k + 0.5 - 5) / 2);
-- Phi(1.25) = 0.894 < 0.95 <= Phi(1.75) = 0.960, so 8 days = 40 units = order-up-to, order 40 - 13 = 27
SELECT sku_id, site_id, round(reorder_point_quantile::numeric, 6) AS rop_q, round(reorder_point::numeric, 6) AS rop,
       round(order_up_to::numeric, 6) AS s, order_qty
  FROM retail_mid.suggested_orders('rpt_test', 'quantile') WHERE sku_id = 'Y';
-- the same order quantities by plain arithmetic over the view
SELECT count(*) AS rows_differing FROM retail_mid.replenish_suggested_order o
 WHERE o.brand = 'rpt_test'
   AND o.order_qty IS DISTINCT FROM CASE WHEN o.inventory_position > o.reorder_point OR o.inventory_position >= o.order_up_to THEN 0
                                         ELSE greatest(ceil((o.order_up_to - o.inventory_position) / o.pack_size - 1e-9) * o.pack_size,
                                                       ceil(o.min_order_qty / o.pack_size - 1e-9) * o.pack_size) END;
SELECT * FROM retail_mid.suggested_orders('rpt_test', 'median');

-- ===== transfers =====
-- 14 days of cover: A gives 170 - 140 = 30, B gives floor(150 - 5 - 140) = 5; C needs 30 - 10 = 20, D 30 - 5 = 25.
-- Nearest first: B->C (11.1 km) 5, A->C (22.3 km) 15 (C is full), B->D nothing left, A->D (55.7 km) the rest of A, 15.
SELECT sku_id, from_site_id, to_site_id, round(distance_m::numeric) AS distance_m, quantity, round(from_cover_days::numeric, 1) AS from_cover,
       from_excess, to_need FROM retail_mid.suggested_transfers('rpt_test', 14);
SELECT round(6378137 * 0.1 * pi() / 180) AS equator_tenth_degree_m;
-- within 30 km only; a cover threshold above everybody's cover: nothing
SELECT from_site_id, to_site_id, quantity FROM retail_mid.suggested_transfers('rpt_test', 14, 'normal', 30000);
SELECT count(*) FROM retail_mid.suggested_transfers('rpt_test', 100);
SELECT * FROM retail_mid.suggested_transfers('rpt_test', -1);
SELECT * FROM retail_mid.suggested_transfers('rpt_test', 14, 'normal', -5);
-- lanes: every move in packs of 6 (lane *, *). B->C: min(5, 20) = 5, not a whole pack: skipped (B keeps its 5);
-- A->C: 20 -> 3 packs = 18; B->D: 5 -> none; A->D: A has 12 left, C is not full (2 left) but A->D comes next by
-- distance: min(12, 25) = 12 = 2 packs.
INSERT INTO retail_mid.replenish_transfer_lane (brand, pack_size) VALUES ('rpt_test', 6);
SELECT sku_id, from_site_id, to_site_id, quantity, pack_size, transfer_cost, margin FROM retail_mid.suggested_transfers('rpt_test', 14);
-- a margin of 2 a unit for X and a costly lane A->D (packs of 1, 20 per transfer + 0.5 a unit), a lane A->any in
-- packs of 5: A->C now uses (A, *): 20 = 4 packs, cost 0 <= margin 40; A->D: min(10, 25) = 10 units would cost
-- 20 + 5 = 25 > margin 20: skipped. With 10 per transfer: 15 <= 20, moved.
UPDATE retail_mid.replenish_parameter SET unit_margin = 2 WHERE brand = 'rpt_test' AND sku_id = 'X';
INSERT INTO retail_mid.replenish_transfer_lane (brand, from_site_id, to_site_id, pack_size, cost_per_unit, cost_per_transfer) VALUES
    ('rpt_test', 'A', 'D', 1, 0.5, 20), ('rpt_test', 'A', '*', 5, 0, 0);
SELECT sku_id, from_site_id, to_site_id, quantity, pack_size, transfer_cost, margin FROM retail_mid.suggested_transfers('rpt_test', 14);
UPDATE retail_mid.replenish_transfer_lane SET cost_per_transfer = 10 WHERE brand = 'rpt_test' AND from_site_id = 'A' AND to_site_id = 'D';
SELECT sku_id, from_site_id, to_site_id, quantity, pack_size, transfer_cost, margin FROM retail_mid.suggested_transfers('rpt_test', 14);
-- checked over the result: every move is whole packs of its lane and costs no more than the margin it saves
SELECT bool_and(t.quantity / t.pack_size = floor(t.quantity / t.pack_size)) AS whole_packs,
       bool_and(t.transfer_cost <= t.margin) AS cost_within_margin
  FROM retail_mid.suggested_transfers('rpt_test', 14) t;
INSERT INTO retail_mid.replenish_transfer_lane (brand, from_site_id, to_site_id, pack_size) VALUES ('rpt_test', 'B', 'C', 0);
INSERT INTO retail_mid.replenish_transfer_lane (brand, from_site_id, to_site_id, cost_per_unit) VALUES ('rpt_test', 'B', 'C', -1);
INSERT INTO retail_mid.replenish_transfer_lane (brand, from_site_id, to_site_id) VALUES ('rpt_test', 'B', 'B');
UPDATE retail_mid.replenish_parameter SET unit_margin = -1 WHERE brand = 'rpt_test' AND sku_id = 'X';
DELETE FROM retail_mid.replenish_transfer_lane WHERE brand = 'rpt_test';

-- ===== the simulation =====
-- by hand: reorder point 20, order-up-to 90 on review days 1 and 8, lead time 2, start with 90; demand 10 a day, 15 on
-- day 9. Day 8: position 20 -> order 70, arriving on day 10; day 9 sells the last 10 and loses 5. End-of-day stock
-- 80 70 60 50 40 30 20 10 0 60 50 40 30 20 = 560 / 14 = 40; fill rate 140 / 145.
SELECT * FROM retail_mid.replenish_simulate('{10,10,10,10,10,10,10,10,15,10,10,10,10,10}',
    '{20,NULL,NULL,NULL,NULL,NULL,NULL,20,NULL,NULL,NULL,NULL,NULL,NULL}', '{90,NULL,NULL,NULL,NULL,NULL,NULL,90,NULL,NULL,NULL,NULL,NULL,NULL}', 2, 90, 1, 0);
-- lead time 0: the order arrives before the day's demand
SELECT days, sold, lost, orders, units_ordered, final_on_hand FROM retail_mid.replenish_simulate('{5,5,5}', '{5,5,5}', '{10,10,10}', 0, 0, 1, 0);
-- a pseudo-random case against the same rules written as a recursive CTE in plain SQL
CREATE TEMP TABLE rpt_sim AS
SELECT array_agg(floor(20 * retail_mid.synth_uniform(3, 1, i))::float8 ORDER BY i) AS d,
       array_agg(CASE WHEN i % 3 = 1 THEN 25::float8 END ORDER BY i) AS rop,
       array_agg(CASE WHEN i % 3 = 1 THEN 60::float8 END ORDER BY i) AS s
  FROM generate_series(1, 40) i;
WITH RECURSIVE sim(t, oh, oo, pipe, sold, demand, oos, lostdays, inv, orders, units) AS (
    SELECT 0, 30::float8, 0::float8, array_fill(0::float8, ARRAY[45]), 0::float8, 0::float8, 0, 0, 0::float8, 0, 0::float8
    UNION ALL
    SELECT sim.t + 1, a.oh - v.served, a.oo + q.q, q.pipe, sim.sold + v.served, sim.demand + v.dd,
           sim.oos + (a.oh - v.served <= 0)::int, sim.lostdays + (v.dd > v.served)::int, sim.inv + a.oh - v.served,
           sim.orders + (q.q > 0)::int, sim.units + q.q
      FROM sim CROSS JOIN rpt_sim r
      CROSS JOIN LATERAL (SELECT sim.oh + sim.pipe[sim.t + 1] AS oh, sim.oo - sim.pipe[sim.t + 1] AS oo) a
      CROSS JOIN LATERAL (SELECT CASE WHEN r.rop[sim.t + 1] IS NOT NULL AND a.oh + a.oo <= r.rop[sim.t + 1]
                                      THEN greatest(ceil((r.s[sim.t + 1] - a.oh - a.oo) / 5) * 5, 20) ELSE 0 END AS q) q0
      CROSS JOIN LATERAL (SELECT q0.q, CASE WHEN q0.q > 0 THEN sim.pipe[:sim.t + 4] || (sim.pipe[sim.t + 5] + q0.q) || sim.pipe[sim.t + 6:]
                                            ELSE sim.pipe END AS pipe) q
      CROSS JOIN LATERAL (SELECT r.d[sim.t + 1] AS dd, least(a.oh, r.d[sim.t + 1]) AS served) v
     WHERE sim.t < 40)
SELECT (s.days, s.demand_units, s.sold, s.fill_rate, s.days_out_of_stock, s.days_with_lost_sales, s.avg_on_hand, s.orders, s.units_ordered, s.final_on_hand)
       = (40, x.demand, x.sold, x.sold / x.demand, x.oos, x.lostdays, x.inv / 40, x.orders, x.units, x.oh) AS same_as_plain_sql,
       s.fill_rate, s.days_out_of_stock, s.orders
  FROM rpt_sim r, retail_mid.replenish_simulate(r.d, r.rop, r.s, 4, 30, 5, 20) s, (SELECT * FROM sim WHERE t = 40) x;
-- ===== lead times that vary from order to order =====
-- by hand, orders crossing: start with 30, 10 a day; day 1 (s = S = 100): position 30, order 70, lead time 5 ->
-- day 6; day 2: position 20 + 70 = 90, order 10, lead time 1 -> day 3, before the first order. End-of-day stock
-- 20 10 10 0 0 60 50 40 30 20 = 240 / 10 = 24; day 5 loses 10; cycles: days 1-2 (closed by day 3's arrival, no
-- loss), days 3-5 (closed by day 6, lost sales); the cycle from day 6 is open and not counted: 1 of 2 cycles short.
SELECT * FROM retail_mid.replenish_simulate(array_fill(10::float8, ARRAY[10]), '{100,100,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL}',
    '{100,100,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL}', '{5,1,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL}'::int4[], 30, 1, 0);
-- The simulation rules once more as a recursive CTE in plain SQL, with one lead time per day, cycles and a count of
-- crossing order pairs (placed earlier, arriving later)
CREATE FUNCTION pg_temp.rpt_ref_sim(d float8[], rop float8[], s float8[], lt int4[], init float8, pack float8, moq float8)
RETURNS TABLE (r_demand float8, r_sold float8, r_oos int, r_lostdays int, r_inv float8, r_orders int, r_units float8,
               r_final float8, r_cycles int, r_stockout_cycles int, r_crossings int)
LANGUAGE sql AS $$
WITH RECURSIVE sim(t, oh, oo, pipe, sold, demand, oos, lostdays, inv, orders, units, cycles, so, cl, arrivals) AS (
    SELECT 0, init, 0::float8, array_fill(0::float8, ARRAY[cardinality(d) + (SELECT max(x) FROM unnest(lt) x) + 1]),
           0::float8, 0::float8, 0, 0, 0::float8, 0, 0::float8, 0, 0, false, '{}'::int[]
    UNION ALL
    SELECT sim.t + 1, b.oh2 - v.served, b.oo2, b.pipe2, sim.sold + v.served, sim.demand + v.dd,
           sim.oos + (b.oh2 - v.served <= 0)::int, sim.lostdays + (v.dd > v.served)::int, sim.inv + b.oh2 - v.served,
           sim.orders + (q.q > 0)::int, sim.units + q.q, sim.cycles + c.close::int, sim.so + (c.close AND sim.cl)::int,
           (CASE WHEN c.close THEN false ELSE sim.cl END) OR v.dd > v.served,
           sim.arrivals || CASE WHEN q.q > 0 THEN ARRAY[i.i + q.lead] ELSE '{}'::int[] END
      FROM sim
      CROSS JOIN LATERAL (SELECT sim.t + 1 AS i) i
      CROSS JOIN LATERAL (SELECT sim.pipe[i.i] AS arr, sim.oh + sim.pipe[i.i] AS oh, sim.oo - sim.pipe[i.i] AS oo) a
      CROSS JOIN LATERAL (SELECT coalesce(lt[i.i], 0) AS lead,
                                 CASE WHEN rop[i.i] IS NOT NULL AND a.oh + a.oo <= rop[i.i] AND a.oh + a.oo < s[i.i]
                                      THEN greatest(ceil((s[i.i] - a.oh - a.oo) / pack - 1e-9) * pack, ceil(moq / pack - 1e-9) * pack)
                                      ELSE 0 END AS q) q
      CROSS JOIN LATERAL (SELECT CASE WHEN q.q > 0 AND q.lead = 0 THEN a.oh + q.q ELSE a.oh END AS oh2,
                                 CASE WHEN q.q > 0 AND q.lead > 0 THEN a.oo + q.q ELSE a.oo END AS oo2,
                                 CASE WHEN q.q > 0 AND q.lead > 0
                                      THEN sim.pipe[:i.i + q.lead - 1] || (sim.pipe[i.i + q.lead] + q.q) || sim.pipe[i.i + q.lead + 1:]
                                      ELSE sim.pipe END AS pipe2) b
      CROSS JOIN LATERAL (SELECT (a.arr > 0 OR (q.q > 0 AND q.lead = 0)) AND sim.t > 0 AS close) c
      CROSS JOIN LATERAL (SELECT d[i.i] AS dd, least(b.oh2, d[i.i]) AS served) v
     WHERE sim.t < cardinality(d))
SELECT demand, sold, oos, lostdays, inv, orders, units, oh, cycles, so,
       (SELECT count(*)::int FROM unnest(arrivals) WITH ORDINALITY x(a, i), unnest(arrivals) WITH ORDINALITY y(b, j) WHERE x.i < y.j AND x.a > y.b)
  FROM sim WHERE t = cardinality(d);
$$;
-- the hand case through the reference: the same figures, one crossing
SELECT * FROM pg_temp.rpt_ref_sim(array_fill(10::float8, ARRAY[10]), '{100,100,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL}',
    '{100,100,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL}', '{5,1,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL}', 30, 1, 0);
-- pseudo-random demand and lead times 0..8 (reviews every 2nd day, s = 75, S = 80, packs of 5, minimum 20): the C
-- kernel equals the reference, and orders do cross; a constant lead time gives the same as the int4 variant
CREATE TEMP TABLE rpt_sim2 AS
SELECT array_agg(floor(20 * retail_mid.synth_uniform(3, 1, i))::float8 ORDER BY i) AS d,
       array_agg(CASE WHEN i % 2 = 1 THEN 75::float8 END ORDER BY i) AS rop,
       array_agg(CASE WHEN i % 2 = 1 THEN 80::float8 END ORDER BY i) AS s,
       array_agg(floor(9 * retail_mid.synth_uniform(3, 2, i))::int4 ORDER BY i) AS lt
  FROM generate_series(1, 60) i;
SELECT (s.demand_units, s.sold, s.days_out_of_stock, s.days_with_lost_sales, s.avg_on_hand, s.orders, s.units_ordered,
        s.final_on_hand, s.cycles, s.stockout_cycles)
       = (x.r_demand, x.r_sold, x.r_oos, x.r_lostdays, x.r_inv / 60, x.r_orders, x.r_units, x.r_final, x.r_cycles, x.r_stockout_cycles)
       AS same_as_plain_sql,
       x.r_crossings AS crossing_pairs, s.fill_rate, s.cycles, s.stockout_cycles, s.cycle_service_level
  FROM rpt_sim2 r, retail_mid.replenish_simulate(r.d, r.rop, r.s, r.lt, 30, 5, 20) s,
       pg_temp.rpt_ref_sim(r.d, r.rop, r.s, r.lt, 30, 5, 20) x;
SELECT a = b AS same_as_int4_variant, (b).cycles, (b).stockout_cycles
  FROM (SELECT retail_mid.replenish_simulate(r.d, r.rop, r.s, array_fill(4, ARRAY[60]), 30, 5, 20) a,
               retail_mid.replenish_simulate(r.d, r.rop, r.s, 4, 30, 5, 20) b FROM rpt_sim2 r) z;
SELECT (s.sold, s.orders, s.cycles, s.stockout_cycles) = (x.r_sold, x.r_orders, x.r_cycles, x.r_stockout_cycles) AS constant_lead_same_as_plain_sql
  FROM rpt_sim2 r, retail_mid.replenish_simulate(r.d, r.rop, r.s, 4, 30, 5, 20) s,
       pg_temp.rpt_ref_sim(r.d, r.rop, r.s, array_fill(4, ARRAY[60]), 30, 5, 20) x;
-- bad lead times: NULL on a review day, negative, absurd, wrong length, two-dimensional, a NULL array
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', '{NULL,1}'::int4[], 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', '{-1,1}'::int4[], 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', '{5000,1}'::int4[], 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', '{1}'::int4[], 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', '{{1,1}}'::int4[], 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', NULL::int4[], 0, 1, 0);

-- ===== drawn lead times =====
-- 20,000 draws of L = 4, sd 1.5 against P(K = k) = Phi((k + 0.5 - 4) / 1.5) - Phi((k - 0.5 - 4) / 1.5) (k = 0: the
-- mass below 0.5), from R (pnorm): the largest difference in frequency is below 0.01 (about 3 standard errors)
WITH x AS (SELECT unnest(retail_mid.replenish_lead_time_draws(4, 1.5, 20000, 7, 3)) AS k),
     p(k, p) AS (VALUES (0, 0.009815), (1, 0.037975), (2, 0.110865), (3, 0.210786), (4, 0.261117), (5, 0.210786),
                        (6, 0.110865), (7, 0.037975), (8, 0.008465), (9, 0.001227))
SELECT max(abs(coalesce(f.freq, 0) - p.p)) < 0.01 AS frequencies_ok, (SELECT abs(avg(k) - 4) < 0.03 FROM x) AS mean_ok,
       (SELECT min(k) >= 0 FROM x) AS non_negative
  FROM p LEFT JOIN (SELECT k, count(*) / 20000.0 AS freq FROM x GROUP BY k) f USING (k);
-- truncation at 0: L = 1, sd = 3, P(K = 0) = Phi(-0.5 / 3) = 0.433816; the same seed and stream give the same draws
SELECT abs(avg((k = 0)::int) - 0.433816) < 0.01 AS zero_mass_ok
  FROM unnest(retail_mid.replenish_lead_time_draws(1, 3, 20000, 7, 4)) k;
SELECT retail_mid.replenish_lead_time_draws(4, 1.5, 10, 1, 9) = retail_mid.replenish_lead_time_draws(4, 1.5, 10, 1, 9) AS deterministic,
       retail_mid.replenish_lead_time_draws(4, 1.5, 10, 1, 9) <> retail_mid.replenish_lead_time_draws(4, 1.5, 10, 2, 9) AS seed_matters,
       retail_mid.replenish_lead_time_draws(3.4, 0, 5) AS fixed_rounds;
SELECT retail_mid.replenish_lead_time_draws(4, -1, 10);
SELECT retail_mid.replenish_lead_time_draws('NaN', 1, 10);
SELECT retail_mid.replenish_lead_time_draws(4, 1e9, 10);
SELECT retail_mid.replenish_lead_time_draws(4, 1, 0);
SELECT retail_mid.replenish_lead_time_draws(4, NULL, 10) IS NULL AS strict_null;

SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1}', '{2}', 1, 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,-2}', '{1,NULL}', '{2,NULL}', 1, 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{NULL,NULL}', 1, 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{3,NULL}', '{2,NULL}', 1, 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,NULL}', '{1,NULL}', '{2,NULL}', 1, 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', -1, 0, 1, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', 1, 0, 0, 0);
SELECT * FROM retail_mid.replenish_simulate('{1,2}', '{1,NULL}', '{2,NULL}', 1, 'Infinity', 1, 0);
SELECT * FROM retail_mid.replenish_simulate(NULL, '{1,NULL}', '{2,NULL}', 1, 0, 1, 0);

-- ===== backtest =====
-- store A, SKU W: 60 days of 10 a day, then a 2-week window of 10 a day with 15 on its 9th day. Every review
-- forecast is the constant 10 (sd 0), W has L = 2, sd 0, review 7: reorder point = order-up-to = 10 x (2 + 7) = 90;
-- the hand case above up to the reorder point (20 there, but no review finds the position between 20 and 90):
-- start at 90, day 8 orders 70. (The _1d tables are partitioned by month: the months written here get theirs.)
DO $$ BEGIN PERFORM retail_mid.ensure_partitions('retail_mid.dws_trade_sku_store_1d', '2024-01-01', '2024-03-31'); END $$;
INSERT INTO retail_mid.dws_trade_sku_store_1d (dt, brand, store_id, sku_id, orders, quantity, sales_quantity, return_quantity,
                                               sales_amount, return_amount, net_amount, buyers, buyer_bitmap)
SELECT d::date, 'rpt_test', 'A', 'W', 1, q, q, 0, q, 0, q, 1, '{}'
  FROM generate_series(date '2024-01-01', date '2024-03-14', interval '1 day') d,
       LATERAL (SELECT CASE WHEN d = date '2024-03-09' THEN 15 ELSE 10 END AS q) x;
-- stored forecasts from the DWS: one series (A, W) as of 8 March, 60 days of history, all 10 (the 15 is on 9 March):
-- the constant model, 14 steps
SELECT retail_mid.replenish_refresh_forecasts('rpt_test', date '2024-03-08', 60, 14);
SELECT site_id, sku_id, made_on, result ->> 'model' AS model, jsonb_array_length(result -> 'mean') AS horizon
  FROM retail_mid.replenish_forecast WHERE brand = 'rpt_test';
SELECT job, rows_written, outcome FROM retail_mid.job_log WHERE job = 'replenish_refresh_forecasts' ORDER BY job_id DESC LIMIT 1;
SELECT retail_mid.replenish_refresh_forecasts('rpt_test', date '2024-03-08', 3);
-- issue 19: the demand window is checked as retail_mid.refresh checks its range (an infinite last_day used to
-- zero-fill without end); the timeout turns a regression into a failure
SET statement_timeout = '60s';
SELECT call, pg_temp.outcome(call) FROM (VALUES
    ($$(SELECT count(*) || ' series, ' || sum(cardinality(y)) || ' days' FROM retail_mid.replenish_demand_arrays('rpt_test', '2024-01-01', '2024-03-14'))$$),
    ($$(SELECT count(*) FROM retail_mid.replenish_demand_arrays('rpt_test', '2024-01-01', 'infinity'))$$),
    ($$(SELECT count(*) FROM retail_mid.replenish_demand_arrays('rpt_test', '-infinity', '2024-03-14'))$$),
    ($$(SELECT count(*) FROM retail_mid.replenish_demand_arrays('rpt_test', '4713-01-01 BC', '2024-03-14'))$$),
    ($$(SELECT count(*) FROM retail_mid.replenish_demand_arrays('rpt_test', NULL, '2024-03-14'))$$),
    ($$(SELECT count(*) FROM retail_mid.replenish_demand_arrays('rpt_test', '2024-03-14', '2024-01-01'))$$),
    ($$retail_mid.replenish_refresh_forecasts('rpt_test', 'infinity')$$)
) v(call);
RESET statement_timeout;
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2);
SELECT site_id, sku_id, fill_rate, days_out_of_stock FROM retail_mid.replenish_backtest('rpt_test', 2, 'quantile', '{"history_days": 30}');
SELECT job, rows_written, outcome, detail ->> 'fill_rate' AS fill_rate, detail ->> 'days_out_of_stock' AS days_out_of_stock
  FROM retail_mid.job_log WHERE job = 'replenish_backtest' ORDER BY job_id DESC LIMIT 1;
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 0);
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"history": 3}');
SELECT * FROM retail_mid.replenish_backtest('nobody', 2);

-- ===== backtest with variable lead times, against the plain-SQL simulation =====
-- store C, SKU Y: 5 a day; two more SUP1 shipments into C in the window: ordered 3 March (6 days) and 5 March
-- (1 day). The SUP1 history into C is then 2, 4, 6, 6, 1 days: mean 3.8, sd sqrt(5.2). Y's parameter row: review
-- 1 day, minimum order 12, 95% cycle service level; also run at 50% (option), where the lead times show in lost
-- sales. Every forecast is the constant 5 (sd 0), so the normal method gives s = S = 5 (3.8 + 1) + z sqrt(25 * 5.2)
-- on every day (z(0.5) = 0: 24); the simulation starts at ceil(S).
INSERT INTO retail_mid.dws_trade_sku_store_1d (dt, brand, store_id, sku_id, orders, quantity, sales_quantity, return_quantity,
                                               sales_amount, return_amount, net_amount, buyers, buyer_bitmap)
SELECT d::date, 'rpt_test', 'C', 'Y', 1, 5, 5, 0, 5, 0, 5, 1, '{}'
  FROM generate_series(date '2024-01-01', date '2024-03-14', interval '1 day') d;
INSERT INTO retail_mid.ods_inbound_shipment (brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, received_on, quantity) VALUES
    ('rpt_test', 'S5', 'C', 'Y', 'SUP1', '2024-03-03', '2024-03-09', 10), ('rpt_test', 'S6', 'C', 'Y', 'SUP1', '2024-03-05', '2024-03-06', 10);
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2024-03-01', '2024-03-31') >= 0 AS inbound;
RESET client_min_messages;
SELECT lead_time_mean, abs(lead_time_sd - sqrt(5.2)) < 1e-12 AS sd_ok, lead_time_basis FROM retail_mid.replenish_resolve('rpt_test', 'C', 'Y');
CREATE TEMP TABLE rpt_bt AS
SELECT m.mode, l.level, b.*
  FROM (VALUES ('history'), ('normal'), ('mean')) m(mode), (VALUES (0.95::float8), (0.5)) l(level),
       LATERAL retail_mid.replenish_backtest('rpt_test', 2, 'normal',
                   jsonb_build_object('lead_time', m.mode, 'seed', 5, 'service_level', l.level)) b;
SELECT mode, level, site_id, sku_id, lead_time_days, lead_time_model, round(fill_rate::numeric, 4) AS fill_rate, days_out_of_stock,
       orders, cycles, stockout_cycles
  FROM rpt_bt ORDER BY level DESC, mode, site_id, sku_id;
-- the plain-SQL reference for C, Y with the same lead times: replayed (from 1 March: S3's 6 days on 1-2 March, S5's 6
-- on 3-4 March, S6's 1 from 5 March, so orders placed from 5 March can overtake those of 1-4 March), drawn (seed 5,
-- stream hashtext('C|Y')), and the rounded mean 4
WITH lt(mode, lt) AS (SELECT 'history', (SELECT lead_times FROM retail_mid.replenish_lead_time_replay('rpt_test', 'SUP1', 'C', '2024-03-01', 14))
                      UNION ALL SELECT 'normal', retail_mid.replenish_lead_time_draws(3.8, sqrt(5.2), 14, 5, hashtext('C|Y'))
                      UNION ALL SELECT 'mean', array_fill(4, ARRAY[14])),
     pol(level, s) AS (VALUES (0.95::float8, 5 * 4.8 + 1.644853626951472 * sqrt(25 * 5.2)), (0.5, 5 * 4.8))
SELECT lt.mode, pol.level, lt.lt AS lead_times, x.r_crossings AS crossing_pairs,
       (b.sold, b.lost, b.days_out_of_stock, b.days_with_lost_sales, b.orders, b.units_ordered, b.cycles, b.stockout_cycles)
       = (x.r_sold, x.r_demand - x.r_sold, x.r_oos, x.r_lostdays, x.r_orders, x.r_units, x.r_cycles, x.r_stockout_cycles) AS same_as_plain_sql,
       abs(b.avg_on_hand - x.r_inv / 14) < 1e-9 AS avg_on_hand_ok
  FROM pol CROSS JOIN lt
  CROSS JOIN LATERAL pg_temp.rpt_ref_sim(array_fill(5::float8, ARRAY[14]), array_fill(pol.s, ARRAY[14]), array_fill(pol.s, ARRAY[14]),
                                         lt.lt, ceil(pol.s), 1, 12) x
  JOIN rpt_bt b ON b.mode = lt.mode AND b.level = pol.level AND b.site_id = 'C' AND b.sku_id = 'Y'
 ORDER BY pol.level DESC, lt.mode;
-- a target fill rate instead (option service_measure); the overall row sums the series
SELECT site_id, sku_id, service_measure, service_level, fill_rate, orders
  FROM retail_mid.replenish_backtest('rpt_test', 2, 'quantile', '{"service_measure": "fill_rate", "service_level": 0.9, "lot_days": 2}')
 ORDER BY site_id, sku_id;
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"lead_time": "gamma"}');
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"seed": "x"}');
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"seed": null}');
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"service_level": 1.5}');
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"service_measure": "cycles"}');
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"lot_days": -1}');
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '[]');

-- ===== issue 15: the public layer and its freshness =====
-- the forecasts of the suggested-orders fixture again (X 10 a day in every store, Y 5 a day in C, made 1 March)
DELETE FROM retail_mid.replenish_forecast WHERE brand = 'rpt_test';
INSERT INTO retail_mid.replenish_forecast (brand, site_id, sku_id, made_on, result)
SELECT 'rpt_test', s, 'X', date '2024-03-01', retail_mid.forecast_array(array_fill(10::float8, ARRAY[30]), 28, 7) FROM unnest('{A,B,C,D}'::text[]) s
UNION ALL SELECT 'rpt_test', 'C', 'Y', '2024-03-01', retail_mid.forecast_array(array_fill(5::float8, ARRAY[30]), 28, 7);
-- the inbound DWD is the ODS lines of the refreshed days (supplier blank -> NULL), against plain SQL
SELECT (SELECT count(*) FROM (SELECT brand, shipment_id, site_id, sku_id, nullif(btrim(supplier_id), ''), ordered_on, expected_on, received_on,
                                     quantity, received_on - ordered_on FROM retail_mid.ods_inbound_shipment WHERE brand = 'rpt_test'
                              EXCEPT SELECT brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, expected_on, received_on, quantity, lead_time_days
                                       FROM retail_mid.dwd_inventory_inbound_di WHERE brand = 'rpt_test') x) AS missing,
       (SELECT count(*) FROM retail_mid.dwd_inventory_inbound_di WHERE brand = 'rpt_test')
     - (SELECT count(*) FROM retail_mid.ods_inbound_shipment WHERE brand = 'rpt_test') AS extra;
-- a late receipt: S4 (10 Y into C, ordered 1 February, open) was received on 27 February. The suggested orders see
-- the inbound layer behind the ODS (55000, the hint names the day), refresh_domains over that day makes them work,
-- and the open orders of the later snapshot day (1 March) follow: C, Y on order 10 -> 0, position 13 -> 3; S4 now
-- counts as a received shipment of 26 days, so Y's lead time from the SUP1 history into C (2, 4, 6, 26, 6, 1) is 7.5
UPDATE retail_mid.ods_inbound_shipment SET received_on = '2024-02-27' WHERE brand = 'rpt_test' AND shipment_id = 'S4';
SELECT domain, dt, ods_rows, refreshed_rows FROM retail_mid.domain_stale_days('*', 'rpt_test');
CREATE FUNCTION pg_temp.error_of(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; hint text;
BEGIN
    EXECUTE call;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || E'\nHINT: ' || hint;
END $$;
SELECT pg_temp.error_of($$SELECT * FROM retail_mid.suggested_orders('rpt_test')$$) AS suggested_orders;
SELECT pg_temp.error_of($$SELECT * FROM retail_mid.dash_replenishment$$) AS dash_replenishment;
SELECT pg_temp.error_of($$SELECT * FROM retail_mid.replenish_backtest('rpt_test', 1)$$) AS backtest;
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2024-02-01', '2024-02-01') >= 0 AS refreshed;
RESET client_min_messages;
SELECT site_id, sku_id, snapshot_date, on_hand, on_order, inventory_position, lead_time_mean, round(order_up_to::numeric, 6) AS order_up_to, order_qty,
       order_qty = ceil(order_up_to - inventory_position) AS order_is_up_to_level
  FROM retail_mid.suggested_orders('rpt_test') WHERE sku_id = 'Y';
-- the inventory DWS's open orders = plain SQL over the ODS shipments, on every snapshot day
SELECT count(*) AS on_order_mismatches
  FROM retail_mid.dws_inventory_site_sku_1d i
 WHERE i.brand = 'rpt_test'
   AND i.on_order <> coalesce((SELECT sum(sh.quantity) FROM retail_mid.ods_inbound_shipment sh
                                WHERE sh.brand = i.brand AND sh.site_id = i.site_id AND sh.sku_id = i.sku_id AND sh.ordered_on <= i.dt
                                  AND (sh.received_on IS NULL OR sh.received_on > i.dt)), 0);
-- a changed snapshot (not a new day): noticed too; C, X then has 12 on hand, order 30 - 12 = 18 = 3 packs of 6
UPDATE retail_mid.ods_inventory_snapshot SET on_hand = 12 WHERE brand = 'rpt_test' AND site_id = 'C' AND sku_id = 'X' AND snapshot_date = '2024-03-01';
SELECT pg_temp.error_of($$SELECT * FROM retail_mid.suggested_orders('rpt_test')$$) AS suggested_orders;
SET client_min_messages = warning;
SELECT retail_mid.refresh_domains('2024-03-01', '2024-03-01') >= 0 AS refreshed;
RESET client_min_messages;
SELECT site_id, on_hand, order_qty FROM retail_mid.suggested_orders('rpt_test') WHERE sku_id = 'X' AND site_id = 'C';
-- a changed site (A now served by DC2) and a changed product (Y moved out of Dairy): the DIM layer is behind the
-- ODS until refresh_dims; then A's source is DC2 and Y in C falls back to the brand default (lead time 2)
UPDATE retail_mid.ods_site SET parent_site_id = 'DC2' WHERE brand = 'rpt_test' AND site_id = 'A';
UPDATE retail_mid.ods_product SET category_l2 = 'Chilled' WHERE brand = 'rpt_test' AND sku_id = 'Y';
SELECT domain, dt, ods_rows, refreshed_rows FROM retail_mid.domain_stale_days('*', 'rpt_test');
SELECT pg_temp.error_of($$SELECT * FROM retail_mid.suggested_orders('rpt_test')$$) AS suggested_orders;
SELECT pg_temp.error_of($$SELECT retail_mid.replenish_refresh_forecasts('rpt_test', '2024-03-08', 60, 14)$$) AS refresh_forecasts;
SET client_min_messages = warning;
SELECT retail_mid.refresh_dims() >= 0 AS refreshed;
RESET client_min_messages;
SELECT count(*) AS stale FROM retail_mid.domain_stale_days('*', 'rpt_test');
SELECT site_id, sku_id, source_id, rule, lead_time_basis FROM retail_mid.suggested_orders('rpt_test') WHERE site_id = 'A' OR sku_id = 'Y' ORDER BY 1, 2;
SELECT retail_mid.domain_require_fresh('stock', 'rpt_test', NULL, NULL);

-- clean up the fixture (other tests share the database)
DELETE FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'rpt_test';
DELETE FROM retail_mid.replenish_forecast WHERE brand = 'rpt_test';
DELETE FROM retail_mid.replenish_parameter WHERE brand = 'rpt_test';
DELETE FROM retail_mid.replenish_transfer_lane WHERE brand = 'rpt_test';
DELETE FROM retail_mid.ods_inventory_snapshot WHERE brand = 'rpt_test';
DELETE FROM retail_mid.ods_inbound_shipment WHERE brand = 'rpt_test';
DELETE FROM retail_mid.ods_product WHERE brand IN ('rpt_test', 'rpt_other');
DELETE FROM retail_mid.ods_site WHERE brand IN ('rpt_test', 'rpt_other');
-- every replenishment table and view column and every function carries a comment
SELECT c.relname, count(*) FILTER (WHERE col_description(c.oid, a.attnum) IS NULL) AS uncommented
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE n.nspname = 'retail_mid' AND c.relname LIKE 'replenish\_%' AND c.relkind IN ('r', 'v') GROUP BY c.relname ORDER BY 1;
SELECT p.oid::regprocedure AS function_without_comment FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'retail_mid' AND obj_description(p.oid, 'pg_proc') IS NULL
   AND (p.proname LIKE '%replenish%' OR p.proname LIKE 'suggested\_%' OR p.proname LIKE 'lead\_time%'
        OR p.proname IN ('normal_loss', 'fill_rate_safety_factor'));
