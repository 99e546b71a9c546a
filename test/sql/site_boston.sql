-- site_boston: the Huff model on the 506 Boston census tracts (1970) as demand zones
SET client_min_messages = warning;  -- the install notice depends on which test file ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET extra_float_digits = 0;
\getenv data_dir RETAIL_MID_DATA
SELECT coalesce(:'data_dir', '') <> '' AS have_data \gset
\if :have_data
\set cmd 'gzip -cdf ' :'data_dir' '/geo/boston_tracts.csv'
CREATE TEMP TABLE boston_raw (poltract text, town text, townno text, tract text, lon float8, lat float8, medv float8,
    cmedv float8, crim text, zn text, indus text, chas text, nox text, rm text, age text, dis text, rad text, tax text,
    ptratio text, b text, lstat text, units int, cu5k int, c5_7_5 int, c7_5_10 int, c10_15 int, c15_20 int,
    c20_25 int, c25_35 int, c35_50 int, co50k int, median float8, bb text, censored text, nox_id text, pop int, wkt text);
COPY boston_raw FROM PROGRAM :'cmd' CSV HEADER;
-- income: households per band times the band midpoint (top band $50k+ taken as $60k); spend potential 5% of it
INSERT INTO retail_mid.site_demand_zone (zone_id, name, geom, population, households, income, spend_potential)
SELECT row_number() OVER (ORDER BY poltract), town || ' ' || poltract, ST_GeomFromText(wkt, 4326), pop, h, ti / h, 0.05 * ti
  FROM (SELECT *, cu5k + c5_7_5 + c7_5_10 + c10_15 + c15_20 + c20_25 + c25_35 + c35_50 + co50k AS h,
               2500.0 * cu5k + 6250 * c5_7_5 + 8750 * c7_5_10 + 12500 * c10_15 + 17500 * c15_20 + 22500 * c20_25
               + 30000 * c25_35 + 42500 * c35_50 + 60000 * co50k AS ti
          FROM boston_raw) r;
SELECT count(*) AS zones, sum(population) AS population, sum(households) AS households,
       round(sum(spend_potential)::numeric) AS spend_potential FROM retail_mid.site_demand_zone;
-- own stores on every 40th tract's centroid, competitors 20 tracts further; candidates on other tracts and one
-- on own store 41 (same attractiveness)
INSERT INTO retail_mid.site_store (store_id, name, own, geom, attractiveness)
SELECT zone_id, name, zone_id % 40 = 1, ST_Centroid(geom), 50 + (zone_id * 37) % 100
  FROM retail_mid.site_demand_zone WHERE zone_id % 40 IN (1, 21);
INSERT INTO retail_mid.site_candidate (candidate_id, name, geom, attractiveness)
SELECT zone_id, 'tract ' || name, ST_PointOnSurface(geom), 60 + (zone_id * 13) % 50
  FROM retail_mid.site_demand_zone WHERE zone_id % 97 = 50
UNION ALL
SELECT 10000 + store_id, 'on store ' || store_id, geom, attractiveness FROM retail_mid.site_store WHERE store_id = 41;
SELECT count(*) FILTER (WHERE own) AS own_stores, count(*) FILTER (WHERE NOT own) AS competitors,
       (SELECT count(*) FROM retail_mid.site_candidate) AS candidates FROM retail_mid.site_store;

-- plain-SQL Huff (alpha 1, beta 2, cut-off 5 km, floor 100 m): baseline and one scenario per candidate
CREATE TEMP TABLE b_pairs AS
SELECT z.zone_id, 's' AS kind, s.store_id AS site_id, coalesce(z.spend_potential, z.population) AS demand,
       s.attractiveness * power(greatest(ST_Distance(z.centre, s.centre, false), 100), -2) AS u
  FROM retail_mid.site_demand_zone z JOIN retail_mid.site_store s ON ST_DWithin(z.centre, s.centre, 5000, false)
UNION ALL
SELECT z.zone_id, 'c', c.candidate_id, coalesce(z.spend_potential, z.population),
       c.attractiveness * power(greatest(ST_Distance(z.centre, c.centre, false), 100), -2)
  FROM retail_mid.site_demand_zone z JOIN retail_mid.site_candidate c ON ST_DWithin(z.centre, c.centre, 5000, false);
CREATE TEMP TABLE b_tot AS SELECT zone_id, sum(u) AS s FROM b_pairs WHERE kind = 's' GROUP BY zone_id;
CREATE TEMP TABLE b_base AS
SELECT p.site_id AS store_id, sum(p.demand * p.u / t.s) AS sales FROM b_pairs p JOIN b_tot t USING (zone_id)
 WHERE p.kind = 's' GROUP BY p.site_id;
CREATE TEMP TABLE b_scenario AS
SELECT c.candidate_id, p.kind, p.site_id, sum(p.demand * p.u / (coalesce(t.s, 0) + coalesce(cz.u, 0))) AS sales
  FROM retail_mid.site_candidate c CROSS JOIN b_pairs p
  LEFT JOIN b_tot t ON t.zone_id = p.zone_id
  LEFT JOIN b_pairs cz ON cz.kind = 'c' AND cz.site_id = c.candidate_id AND cz.zone_id = p.zone_id
 WHERE p.kind = 's' OR p.site_id = c.candidate_id
 GROUP BY c.candidate_id, p.kind, p.site_id;

-- Huff shares sum to 1 in every zone with a store in reach (within 1e-9)
SELECT count(*) AS zones_served, bool_and(abs(s - 1) < 1e-9) AS shares_sum_to_one
  FROM (SELECT zone_id, (SELECT sum(x) FROM unnest(retail_mid.huff_probabilities(array_agg(attractiveness), array_agg(distance), 1, 2)) x) s
          FROM retail_mid.site_zone_store_pairs(5000) GROUP BY zone_id) q;
-- so the stores' expected sales add up to the demand of the zones they serve
SELECT abs((SELECT sum(expected_sales) FROM retail_mid.site_huff_sales(1, 2, 5000))
           - (SELECT sum(coalesce(spend_potential, population)) FROM retail_mid.site_demand_zone z
               WHERE EXISTS (SELECT 1 FROM b_tot t WHERE t.zone_id = z.zone_id))) < 1e-9 * 1e6 AS demand_conserved;
-- baseline store sales against plain SQL
SELECT count(*) AS stores, bool_and(abs(h.expected_sales - coalesce(b.sales, 0)) <= 1e-9 * greatest(b.sales, 1)) AS matches_plain_sql
  FROM retail_mid.site_huff_sales(1, 2, 5000) h LEFT JOIN b_base b USING (store_id);

SELECT retail_mid.site_score_candidates(1, 2, 5000, threshold => 0.25);
SELECT candidate_id, round(expected_sales::numeric, 2) AS expected_sales, round(market_share::numeric, 4) AS share,
       zones_in_reach, trade_area_zones, round((ST_Area(trade_area::geography) / 1e6)::numeric, 2) AS trade_area_km2,
       population_1km, population_3km, population_5km, round(income_5km::numeric) AS income_5km, competitors,
       round(nearest_competitor_m::numeric) AS nearest_competitor_m, round(cannibalisation::numeric, 2) AS cannibalisation
  FROM retail_mid.site_candidate_score ORDER BY candidate_id;
-- expected sales of every candidate against plain SQL
SELECT count(*) AS candidates, bool_and(abs(s.expected_sales - r.sales) <= 1e-9 * r.sales) AS matches_plain_sql
  FROM retail_mid.site_candidate_score s
  JOIN b_scenario r ON r.candidate_id = s.candidate_id AND r.kind = 'c' AND r.site_id = s.candidate_id;
-- every own store's sales before and after against plain SQL; cannibalisation is exactly before - after
SELECT count(*) AS pairs,
       bool_and(abs(k.sales_before - b.sales) <= 1e-9 * b.sales) AS before_ok,
       bool_and(abs(k.sales_after - r.sales) <= 1e-9 * b.sales) AS after_ok,
       bool_and(k.cannibalisation = k.sales_before - k.sales_after) AS exact
  FROM retail_mid.site_candidate_cannibalisation k
  JOIN b_base b ON b.store_id = k.store_id
  JOIN b_scenario r ON r.candidate_id = k.candidate_id AND r.kind = 's' AND r.site_id = k.store_id;
-- a candidate's cannibalisation equals the own stores' total loss in the plain-SQL scenario
SELECT bool_and(abs(s.cannibalisation - coalesce(l.loss, 0)) <= 1e-9 * greatest(l.loss, 1)) AS cannibalisation_is_own_loss
  FROM retail_mid.site_candidate_score s
  LEFT JOIN (SELECT r.candidate_id, sum(b.sales - r.sales) AS loss
               FROM b_scenario r JOIN b_base b ON b.store_id = r.site_id JOIN retail_mid.site_store st ON st.store_id = r.site_id
              WHERE r.kind = 's' AND st.own GROUP BY r.candidate_id) l ON l.candidate_id = s.candidate_id;
-- the candidate on store 41 (equal attractiveness) splits that store's demand: equal shares in every zone
SELECT abs(s.expected_sales - k.sales_after) <= 1e-9 * s.expected_sales AS equal_split,
       round(k.sales_before::numeric, 2) AS store_before, round(k.sales_after::numeric, 2) AS store_after
  FROM retail_mid.site_candidate_score s
  JOIN retail_mid.site_candidate_cannibalisation k ON k.candidate_id = s.candidate_id AND k.store_id = 41
 WHERE s.candidate_id = 10041;
SELECT rank, candidate_id, name, round(net_gain::numeric, 2) AS net_gain FROM retail_mid.site_candidate_ranking ORDER BY rank;

-- calibration on the tracts: sales generated with alpha 1.5, beta 1.8 (scale 0.9) are recovered
UPDATE retail_mid.site_store s SET observed_sales = 0.9 * h.expected_sales
  FROM retail_mid.site_huff_sales(1.5, 1.8, 5000) h WHERE h.store_id = s.store_id;
SELECT round(alpha::numeric, 3) AS alpha, round(beta::numeric, 3) AS beta, round(scale::numeric, 3) AS scale,
       round(r_squared::numeric, 6) AS r_squared, stores FROM retail_mid.site_calibrate(5000);
-- and by maximum likelihood (site_calibrate_fit), from alpha 1, beta 2
SELECT fit_method, round(alpha::numeric, 3) AS alpha, round(beta::numeric, 3) AS beta, round(scale::numeric, 3) AS scale,
       round(pseudo_r_squared::numeric, 6) AS pseudo_r2, observations, converged FROM retail_mid.site_calibrate_fit(5000);

DELETE FROM retail_mid.site_candidate_cannibalisation; DELETE FROM retail_mid.site_candidate_score;
DELETE FROM retail_mid.site_candidate; DELETE FROM retail_mid.site_store; DELETE FROM retail_mid.site_demand_zone;
\else
\echo SKIPPED: shared data is absent (set RETAIL_MID_DATA)
\endif
-- leave the database as a fresh one, so that no later test file depends on this one
DROP EXTENSION retail_mid;
DROP EXTENSION postgis;
