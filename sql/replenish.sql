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
       retail_mid.order_quantity(0, 0, 0, 20, 24, 6, 20) AS above_min_24;    -- 24 = 4 packs exactly
-- bad input
SELECT retail_mid.normal_quantile(1);
SELECT retail_mid.normal_quantile(0);
SELECT retail_mid.safety_stock(0.95, -1, 4);
SELECT retail_mid.safety_stock(1.5, 1, 4);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 10, 0);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 4, 1);
SELECT retail_mid.order_quantity(1, 0, 0, 5, 10, 1, -1);
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
-- A constant forecast of 10 a day (zero-width intervals), L = 3 days with sd 1, review 7 days, 95%:
-- normal: SS = z * sqrt(3 * 0 + 10^2 * 1^2) = 16.448536, reorder point 30 + SS; quantile: 50 (above), SS = 50 - 30.00;
-- review demand = days 4..10 = 70, order-up-to = reorder point + 70.
SELECT p.mean_daily_demand, p.sigma_daily, p.lead_time_demand, round(p.safety_stock_normal::numeric, 6) AS ss_normal,
       round(p.reorder_point_normal::numeric, 6) AS rop_normal, round(p.reorder_point_quantile::numeric, 6) AS rop_quantile,
       round(p.safety_stock_quantile::numeric, 2) AS ss_quantile, p.review_demand,
       round(p.order_up_to_normal::numeric, 6) AS s_normal, round(p.order_up_to_quantile::numeric, 6) AS s_quantile
  FROM retail_mid.replenish_policy(retail_mid.forecast_array(array_fill(10::float8, ARRAY[30]), 28, 7), 3, 1, 7, 0.95) p;
-- naive forecast: sigma1 = the naive residual sd s, normal SS with a fixed lead time = z s sqrt(L)
WITH y AS (SELECT * FROM unnest('{1,5,3,8,2,6,4,9}'::float8[]) WITH ORDINALITY u(v, t)),
     s AS (SELECT sqrt(avg((v - l) ^ 2)) s FROM (SELECT v, lag(v) OVER (ORDER BY t) l FROM y) d WHERE l IS NOT NULL)
SELECT abs(p.sigma_daily - s.s) < 1e-9 AS sigma1_ok, abs(p.safety_stock_normal - 1.644853626951472 * s.s * 2) < 1e-9 AS ss_ok,
       p.mean_daily_demand, p.review_demand
  FROM s, retail_mid.replenish_policy(retail_mid.forecast_array('{1,5,3,8,2,6,4,9}', 10, 1, '{"model": "naive"}'), 4, 0, 3, 0.95) p;
SELECT * FROM retail_mid.replenish_policy(retail_mid.forecast_array('{1,2,3}', 5, 1), 3, 0, 3, 0.95);
SELECT * FROM retail_mid.replenish_policy('{"mean": [1]}', 1, 0, 1, 0.95);

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
-- X: L = 2, sd 0, review 1: reorder point 20, order-up-to 20 + day 3 = 30; C: 30 - 10 = 20 -> 4 packs of 6 = 24;
-- D: 30 - 5 = 25 -> 30. Y in C: L from history (mean 4, sd 2): normal reorder point 5 * 4 + z sqrt(25 * 4) =
-- 36.448536, order-up-to + 5 (day 5), order ceil(41.448536 - 3) = 39 (minimum 12 does not bind).
SELECT site_id, sku_id, as_of, source_id, lead_time_basis, lead_time_mean, lead_time_sd, mean_daily_demand,
       round(reorder_point::numeric, 6) AS reorder_point, round(order_up_to::numeric, 6) AS order_up_to,
       snapshot_date, on_hand, reserved, inventory_position, round(cover_days::numeric, 2) AS cover_days, pack_size, order_qty
  FROM retail_mid.suggested_orders('rpt_test') ORDER BY sku_id, site_id;
-- quantile method for Y: lead time ~ N(4, 2^2) in days, 5 a day exactly: P(K <= k) = Phi((k + 0.5 - 4) / 2);
-- Phi(1.25) = 0.894 < 0.95 <= Phi(1.75) = 0.960, so 7 days = 35 units; order-up-to 40, order 37
SELECT sku_id, site_id, round(reorder_point_quantile::numeric, 6) AS rop_q, round(reorder_point::numeric, 6) AS rop,
       round(order_up_to::numeric, 6) AS s, order_qty
  FROM retail_mid.suggested_orders('rpt_test', 'quantile') WHERE sku_id = 'Y';
-- the same order quantities by plain arithmetic over the view
SELECT count(*) AS rows_differing FROM retail_mid.replenish_suggested_order o
 WHERE o.brand = 'rpt_test'
   AND o.order_qty IS DISTINCT FROM CASE WHEN o.inventory_position > o.reorder_point THEN 0
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
-- forecast is the constant 10 (sd 0), W has L = 2, sd 0, review 7: reorder point 20, order-up-to 20 + 70 = 90,
-- exactly the hand case above (start at the first order-up-to level, 90).
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
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2);
SELECT site_id, sku_id, fill_rate, days_out_of_stock FROM retail_mid.replenish_backtest('rpt_test', 2, 'quantile', '{"history_days": 30}');
SELECT job, rows_written, outcome, detail ->> 'fill_rate' AS fill_rate, detail ->> 'days_out_of_stock' AS days_out_of_stock
  FROM retail_mid.job_log WHERE job = 'replenish_backtest' ORDER BY job_id DESC LIMIT 1;
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 0);
SELECT * FROM retail_mid.replenish_backtest('rpt_test', 2, 'normal', '{"history": 3}');
SELECT * FROM retail_mid.replenish_backtest('nobody', 2);

-- clean up the fixture (other tests share the database)
DELETE FROM retail_mid.dws_trade_sku_store_1d WHERE brand = 'rpt_test';
DELETE FROM retail_mid.replenish_forecast WHERE brand = 'rpt_test';
DELETE FROM retail_mid.replenish_parameter WHERE brand = 'rpt_test';
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
   AND (p.proname LIKE '%replenish%' OR p.proname LIKE 'suggested\_%' OR p.proname LIKE 'lead\_time%');
