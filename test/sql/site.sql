-- site: Huff model arithmetic, batch candidate scoring, calibration, bad inputs, parallel and partitionwise plans
SET client_min_messages = warning;  -- the install notice depends on which test file ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET extra_float_digits = 0;

-- ---------- huff_probabilities against the formula ----------
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 1, 2) AS equal_split;
-- A = {2,1}, d = {1000, 2000}, alpha 1, beta 2: u = {2e-6, 0.25e-6} -> {8/9, 1/9}
SELECT abs(p[1] - 8.0/9) < 1e-15 AND abs(p[2] - 1.0/9) < 1e-15 AS matches_formula
  FROM retail_mid.huff_probabilities('{2,1}', '{1000,2000}', 1, 2) p;
-- alpha 0.5, beta 1.5 against plain SQL
SELECT abs(p[1] - (sqrt(4) * 300^(-1.5)) / (sqrt(4) * 300^(-1.5) + sqrt(9) * 700^(-1.5) + sqrt(1) * 150^(-1.5))) < 1e-15 AS matches_sql
  FROM retail_mid.huff_probabilities('{4,9,1}', '{300,700,150}', 0.5, 1.5) p;
-- zero distance: both stores are inside the 100 m floor, so they split the zone like equals
SELECT retail_mid.huff_probabilities('{5,5}', '{0,50}', 1, 2) AS zero_distance_floor;
SELECT retail_mid.huff_probabilities('{5,5}', '{0,50}', 1, 2, 10) AS floor_10m;
SELECT retail_mid.huff_probabilities('{}', '{}', 1, 2) AS empty_in_empty_out;
-- beta 0: distance does not matter
SELECT retail_mid.huff_probabilities('{1,3}', '{10,10000}', 1, 0) AS beta_zero;

-- bad inputs
SELECT retail_mid.huff_probabilities('{1,0}', '{1000,1000}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,-3}', '{1000,1000}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,NaN}', '{1000,1000}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,Infinity}', '{1000,1000}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,-1}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,NaN}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,NULL}', '{1000,1000}', 1, 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 10.5, 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 1, -0.1);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 'NaN', 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 1, 'NaN');
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 1, 2, 0);
SELECT retail_mid.huff_probabilities('{1e-300,1}', '{1000,1000}', 10, 2);
SELECT retail_mid.huff_probabilities('{1,1}', '{1000,1000}', 1, NULL) IS NULL AS strict_null;

-- ---------- distances: great_circle_distance equals PostGIS geography with use_spheroid = false ----------
SELECT count(*) AS pairs,
       max(abs(retail_mid.great_circle_distance(a.x, a.y, b.x, b.y) - ST_Distance(ST_MakePoint(a.x, a.y)::geography, ST_MakePoint(b.x, b.y)::geography, false))
           / greatest(ST_Distance(ST_MakePoint(a.x, a.y)::geography, ST_MakePoint(b.x, b.y)::geography, false), 1)) < 1e-10 AS equal_to_postgis
  FROM (SELECT -180 + 7.3 * i AS x, -90 + 3.7 * i AS y FROM generate_series(0, 48) i) a,
       (SELECT 179.99 - 5.1 * j AS x, 89.99 - 2.9 * j AS y FROM generate_series(0, 60) j) b;
SELECT retail_mid.great_circle_distance(0, 0, 0, 0) AS zero, round(retail_mid.great_circle_distance(179.9, 0, -179.9, 0)::numeric, 3) AS across_antimeridian;
SELECT retail_mid.great_circle_distance(0, 91, 0, 0);
SELECT retail_mid.great_circle_distance('NaN', 0, 0, 0);
-- the search boxes find every pair ST_DWithin finds, at the antimeridian and the poles too
CREATE TEMP TABLE pts AS
SELECT i AS id, x, y, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
  FROM (SELECT i, CASE WHEN i % 3 = 0 THEN 179.5 + (i % 11) * 0.1 - 0.5 ELSE -180 + (i * 37 % 3600) / 10.0 END AS x,
               CASE WHEN i % 5 = 0 THEN 89.0 + (i % 7) * 0.15 ELSE -89.9 + (i * 53 % 1798) / 10.0 END AS y
          FROM generate_series(1, 600) i) q
 WHERE x BETWEEN -180 AND 180;
SELECT count(*) AS pairs_dwithin,
       count(*) FILTER (WHERE found) AS found_by_boxes
  FROM (SELECT a.id, b.id AS bid,
               EXISTS (SELECT 1 FROM retail_mid.site_search_boxes(a.x, a.y, 150000) bx WHERE b.g && bx.box) AS found
          FROM pts a JOIN pts b ON ST_DWithin(a.g::geography, b.g::geography, 150000, false)) q;
-- and so do the grid cells (the batch scorer's equi-join), for a small and a large radius
SELECT r AS radius, count(*) AS pairs_dwithin,
       count(*) FILTER (WHERE retail_mid.site_grid_cell(b.x, b.y, r) = ANY (retail_mid.site_grid_cells(a.x, a.y, r))) AS sharing_a_cell
  FROM (VALUES (150000::float8), (2000000)) rr(r)
  JOIN pts a ON true JOIN pts b ON ST_DWithin(a.g::geography, b.g::geography, r, false)
 GROUP BY r ORDER BY r;
SELECT cardinality(retail_mid.site_grid_cells(179.9, 10, 50000)) AS cells_at_antimeridian,
       cardinality(retail_mid.site_grid_cells(0, 89.99, 50000)) AS cells_near_pole;
SELECT retail_mid.site_grid_cell(0, 0, 0);
SELECT retail_mid.site_grid_cells(0, 0, 'NaN');
SELECT retail_mid.site_grid_cell(200, 0, 1000);
SELECT count(*) AS boxes FROM retail_mid.site_search_boxes(179.9, 10, 50000);
SELECT count(*) AS boxes FROM retail_mid.site_search_boxes(0, 89.9, 50000);
DROP TABLE pts;

-- ---------- fixture: zones (points in 4326, one polygon in 3857), stores (one in 3857), candidates ----------
INSERT INTO retail_mid.site_demand_zone (zone_id, name, geom, population, households, income, spend_potential)
SELECT i * 10 + j, format('grid %s,%s', i, j),
       ST_SetSRID(ST_MakePoint(-71.08 + 0.01 * i, 42.34 + 0.01 * j), 4326),
       1000 + 100 * i + 10 * j, 400 + 40 * i, 40000 + 1000 * j,
       CASE WHEN (i + j) % 3 = 0 THEN 500 + 50 * i ELSE NULL END
  FROM generate_series(0, 4) i, generate_series(0, 4) j;
INSERT INTO retail_mid.site_demand_zone (zone_id, name, geom, population, households, income)
VALUES (100, 'polygon in 3857', ST_Transform(ST_MakeEnvelope(-71.05, 42.385, -71.04, 42.395, 4326), 3857), 3000, 1200, 52000);
INSERT INTO retail_mid.site_store (store_id, name, own, geom, attractiveness, observed_sales) VALUES
    (1, 'own A',  true,  ST_SetSRID(ST_MakePoint(-71.06, 42.36), 4326), 100, NULL),
    (2, 'own B',  true,  ST_SetSRID(ST_MakePoint(-71.03, 42.38), 4326), 60, NULL),
    (3, 'comp C', false, ST_SetSRID(ST_MakePoint(-71.05, 42.35), 4326), 80, NULL),
    (4, 'comp D', false, ST_Transform(ST_SetSRID(ST_MakePoint(-71.02, 42.37), 4326), 3857), 120, NULL);
INSERT INTO retail_mid.site_candidate (candidate_id, name, geom, attractiveness) VALUES
    (10, 'between', ST_SetSRID(ST_MakePoint(-71.045, 42.365), 4326), 70),
    (11, 'on own A', ST_SetSRID(ST_MakePoint(-71.06, 42.36), 4326), 100),
    (12, 'far away', ST_SetSRID(ST_MakePoint(-70.0, 41.0), 4326), 50);
-- mixed SRIDs: the 3857 store is where it would be in 4326
SELECT store_id, round(ST_X(centre::geometry)::numeric, 9) AS lon, round(ST_Y(centre::geometry)::numeric, 9) AS lat
  FROM retail_mid.site_store ORDER BY store_id;

-- plain-SQL reference of the Huff model (alpha 1, beta 2, cut-off 2500 m, floor 100 m)
CREATE TEMP TABLE ref_pairs AS
SELECT z.zone_id, 's' AS kind, s.store_id AS site_id, s.own, coalesce(z.spend_potential, z.population) AS demand,
       power(s.attractiveness, 1) * power(greatest(ST_Distance(z.centre, s.centre, false), 100), -2) AS u
  FROM retail_mid.site_demand_zone z JOIN retail_mid.site_store s ON ST_DWithin(z.centre, s.centre, 2500, false)
UNION ALL
SELECT z.zone_id, 'c', c.candidate_id, false, coalesce(z.spend_potential, z.population),
       power(c.attractiveness, 1) * power(greatest(ST_Distance(z.centre, c.centre, false), 100), -2)
  FROM retail_mid.site_demand_zone z JOIN retail_mid.site_candidate c ON ST_DWithin(z.centre, c.centre, 2500, false);
CREATE TEMP TABLE ref_base AS
SELECT p.site_id AS store_id, sum(p.demand * p.u / t.s) AS sales
  FROM ref_pairs p JOIN (SELECT zone_id, sum(u) s FROM ref_pairs WHERE kind = 's' GROUP BY zone_id) t USING (zone_id)
 WHERE p.kind = 's' GROUP BY p.site_id;
-- every candidate scenario: existing stores plus that one candidate
CREATE TEMP TABLE ref_scenario AS
SELECT c.candidate_id, p.kind, p.site_id, sum(p.demand * p.u / (coalesce(t.s, 0) + coalesce(cz.u, 0))) AS sales
  FROM retail_mid.site_candidate c
 CROSS JOIN ref_pairs p
  LEFT JOIN (SELECT zone_id, sum(u) s FROM ref_pairs WHERE kind = 's' GROUP BY zone_id) t ON t.zone_id = p.zone_id
  LEFT JOIN ref_pairs cz ON cz.kind = 'c' AND cz.site_id = c.candidate_id AND cz.zone_id = p.zone_id
 WHERE p.kind = 's' OR p.site_id = c.candidate_id
 GROUP BY c.candidate_id, p.kind, p.site_id;

-- baseline sales: the aggregate against the reference
SELECT h.store_id, h.own, round(h.expected_sales::numeric, 6) AS expected_sales, h.zones,
       abs(h.expected_sales - coalesce(r.sales, 0)) < 1e-9 * greatest(r.sales, 1) AS matches_reference
  FROM retail_mid.site_huff_sales(1, 2, 2500) h LEFT JOIN ref_base r USING (store_id) ORDER BY h.store_id;
-- shares of every zone with a store in reach sum to 1
SELECT count(*) AS zones, bool_and(abs(s - 1) < 1e-12) AS shares_sum_to_one
  FROM (SELECT zone_id, (SELECT sum(x) FROM unnest(retail_mid.huff_probabilities(array_agg(attractiveness), array_agg(distance), 1, 2)) x) s
          FROM retail_mid.site_zone_store_pairs(2500) GROUP BY zone_id) q;

-- huff_impact_geo (coordinates in, distance in C) agrees with huff_impact over ST_Distance pairs, in both forms
CREATE TEMP TABLE geo_sites AS
SELECT store_id AS site_id, CASE WHEN own THEN 'own' ELSE 'competitor' END AS role, lon, lat, attractiveness FROM retail_mid.site_store
UNION ALL SELECT candidate_id, 'candidate', lon, lat, attractiveness FROM retail_mid.site_candidate;
CREATE TEMP TABLE by_pairs AS
SELECT (u).* FROM (SELECT unnest(retail_mid.huff_impact(zone_id, site_id, role, attractiveness, distance, demand, 1, 2, 100, 0.3)) u
                     FROM (SELECT zone_id, store_id site_id, CASE WHEN own THEN 'own' ELSE 'competitor' END role, attractiveness, distance, demand
                             FROM retail_mid.site_zone_store_pairs(2500)
                           UNION ALL
                           SELECT zone_id, candidate_id, 'candidate', attractiveness, distance, demand
                             FROM retail_mid.site_zone_candidate_pairs(2500)) p) q;
SELECT count(*) AS rows_by_pairs,
       (SELECT count(*) FROM by_pairs b FULL JOIN (
            SELECT (u).* FROM (SELECT unnest(retail_mid.huff_impact_geo(z.zone_id, z.lon, z.lat, coalesce(z.spend_potential, z.population),
                                                                        p.site_id, p.role, p.lon, p.lat, p.attractiveness, 1, 2, 100, 0.3, 2500)) u
                                 FROM geo_sites p CROSS JOIN retail_mid.site_demand_zone z) q) g USING (candidate_id, kind, object_id)
         WHERE NOT (abs(b.before - g.before) <= 1e-9 * greatest(abs(b.before), 1) AND abs(b.after - g.after) <= 1e-9 * greatest(abs(b.after), 1)
                    AND b.zones = g.zones) OR b.kind IS NULL OR g.kind IS NULL) AS scalar_form_differences,
       (SELECT count(*) FROM by_pairs b FULL JOIN (
            SELECT (u).* FROM (SELECT unnest(retail_mid.huff_impact_geo(k.ids, k.lons, k.lats, k.demands,
                                                                        p.site_id, p.role, p.lon, p.lat, p.attractiveness, 1, 2, 100, 0.3, 2500)) u
                                 FROM (SELECT *, unnest(retail_mid.site_grid_cells(lon, lat, 2500)) AS cell FROM geo_sites) p
                                 JOIN (SELECT retail_mid.site_grid_cell(lon, lat, 2500) AS cell, array_agg(zone_id) ids, array_agg(lon) lons,
                                              array_agg(lat) lats, array_agg(coalesce(spend_potential, population)) demands
                                         FROM retail_mid.site_demand_zone GROUP BY 1) k USING (cell)) q) g USING (candidate_id, kind, object_id)
         WHERE NOT (abs(b.before - g.before) <= 1e-9 * greatest(abs(b.before), 1) AND abs(b.after - g.after) <= 1e-9 * greatest(abs(b.after), 1)
                    AND b.zones = g.zones) OR b.kind IS NULL OR g.kind IS NULL) AS cell_form_differences
  FROM by_pairs;
SELECT retail_mid.huff_impact_geo(1, 0, 0, 5, 2, 'own', 0, 0.01, 1, 1, 2, 100, 0.5, 0);
SELECT retail_mid.huff_impact_geo('{1,2}'::int8[], '{0}'::float8[], '{0,0}'::float8[], '{5,5}'::float8[], 2, 'own', 0, 0.01, 1, 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_geo('{1,2}'::int8[], '{0,NULL}'::float8[], '{0,0}'::float8[], '{5,5}'::float8[], 2, 'own', 0, 0.01, 1, 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_geo('{1}'::int8[], '{0}'::float8[], '{95}'::float8[], '{5}'::float8[], 2, 'own', 0, 0.01, 1, 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_geo('{1}'::int8[], '{0}'::float8[], '{0}'::float8[], '{5}'::float8[], 2, 'candidate', 0, 0.01, 1, 1, 2, 100, 0.5, 2000) AS candidate_alone;

-- ---------- batch scoring ----------
SELECT retail_mid.site_score_candidates(1, 2, 2500, threshold => 0.3);
SELECT candidate_id, round(expected_sales::numeric, 4) AS expected_sales, round(demand_in_reach::numeric, 1) AS demand_in_reach,
       round(market_share::numeric, 6) AS market_share, zones_in_reach, trade_area_zones, ST_GeometryType(trade_area) AS area_type,
       ST_IsEmpty(trade_area) AS area_empty, population_1km, population_3km, population_5km, round(income_5km::numeric, 2) AS income_5km,
       competitors, round(nearest_competitor_m::numeric, 1) AS nearest_competitor_m, round(cannibalisation::numeric, 4) AS cannibalisation,
       round(net_gain::numeric, 4) AS net_gain, comparable_estimate
  FROM retail_mid.site_candidate_score ORDER BY candidate_id;
-- expected sales against the reference scenarios
SELECT s.candidate_id, abs(s.expected_sales - coalesce(r.sales, 0)) < 1e-9 * greatest(r.sales, 1) AS matches_reference
  FROM retail_mid.site_candidate_score s
  LEFT JOIN ref_scenario r ON r.candidate_id = s.candidate_id AND r.kind = 'c' AND r.site_id = s.candidate_id
 ORDER BY 1;
-- own stores' before/after against the reference; cannibalisation = before - after
SELECT k.candidate_id, k.store_id, round(k.sales_before::numeric, 4) AS before, round(k.sales_after::numeric, 4) AS after,
       abs(k.sales_before - b.sales) < 1e-9 * b.sales AS before_ok,
       abs(k.sales_after - r.sales) < 1e-9 * b.sales AS after_ok,
       k.cannibalisation = k.sales_before - k.sales_after AS exact_difference
  FROM retail_mid.site_candidate_cannibalisation k
  JOIN ref_base b ON b.store_id = k.store_id
  JOIN ref_scenario r ON r.candidate_id = k.candidate_id AND r.kind = 's' AND r.site_id = k.store_id
 ORDER BY 1, 2;
-- total cannibalisation equals the own stores' total loss in the reference
SELECT s.candidate_id,
       abs(s.cannibalisation - coalesce((SELECT sum(b.sales - r.sales) FROM ref_scenario r JOIN ref_base b ON b.store_id = r.site_id
                                          JOIN retail_mid.site_store st ON st.store_id = r.site_id
                                         WHERE r.candidate_id = s.candidate_id AND r.kind = 's' AND st.own), 0)) < 1e-9 * greatest(s.cannibalisation, 1) AS own_loss_ok
  FROM retail_mid.site_candidate_score s ORDER BY 1;
-- conservation: a candidate's sales = what all existing stores lose + the demand of zones no store reached
SELECT i.candidate_id,
       abs((i).after - (SELECT coalesce(sum(x.before - x.after), 0) FROM unnest(a.r) x WHERE x.kind = 'store' AND x.candidate_id = i.candidate_id)
           - (SELECT coalesce(sum(p.demand), 0) FROM retail_mid.site_zone_candidate_pairs(2500) p
               WHERE p.candidate_id = i.candidate_id
                 AND NOT EXISTS (SELECT 1 FROM retail_mid.site_zone_store_pairs(2500) q WHERE q.zone_id = p.zone_id))) < 1e-9 AS conserved
  FROM (SELECT retail_mid.huff_impact(zone_id, site_id, role, attractiveness, distance, demand, 1, 2, 100, 0.3) r
          FROM (SELECT zone_id, store_id site_id, CASE WHEN own THEN 'own' ELSE 'competitor' END role, attractiveness, distance, demand
                  FROM retail_mid.site_zone_store_pairs(2500)
                UNION ALL
                SELECT zone_id, candidate_id, 'candidate', attractiveness, distance, demand
                  FROM retail_mid.site_zone_candidate_pairs(2500)) p) a
 CROSS JOIN LATERAL unnest(a.r) i WHERE i.kind = 'candidate' ORDER BY 1;
-- the candidate on own store A (same attractiveness) splits A's demand: in every zone both get the same
-- probability, so the candidate sells exactly what A keeps
SELECT abs(s.expected_sales - k.sales_after) < 1e-9 AS splits_store_a, k.sales_after < b.sales AS a_lost_sales
  FROM retail_mid.site_candidate_score s
  JOIN retail_mid.site_candidate_cannibalisation k ON k.candidate_id = s.candidate_id AND k.store_id = 1
  JOIN ref_base b ON b.store_id = 1
 WHERE s.candidate_id = 11;
SELECT rank, candidate_id, name, round(net_gain::numeric, 4) AS net_gain FROM retail_mid.site_candidate_ranking ORDER BY rank;
SELECT job, outcome, rows_written FROM retail_mid.job_log WHERE job = 'site_score_candidates';
-- two runs in one transaction
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT retail_mid.site_score_candidates(1, 2, 2500, threshold => 0.3) AS first_run, retail_mid.site_score_candidates(1, 2, 2500, threshold => 0.3) AS second_run;
COMMIT;

-- ---------- travel-cost alternative: costs in km give the same shares as metres (d^-beta scales away) ----------
INSERT INTO retail_mid.site_travel_cost (zone_id, site_kind, site_id, cost)
SELECT zone_id, 'store', store_id, distance / 1000 FROM retail_mid.site_zone_store_pairs(2500)
UNION ALL
SELECT zone_id, 'candidate', candidate_id, distance / 1000 FROM retail_mid.site_zone_candidate_pairs(2500);
CREATE TEMP TABLE by_distance AS SELECT candidate_id, expected_sales, cannibalisation FROM retail_mid.site_candidate_score;
SELECT retail_mid.site_score_candidates(1, 2, 2.5, threshold => 0.3, min_distance => 0.1, use_travel_cost => true);
SELECT s.candidate_id, abs(s.expected_sales - d.expected_sales) < 1e-9 * greatest(d.expected_sales, 1)
                      AND abs(s.cannibalisation - d.cannibalisation) < 1e-9 * greatest(d.cannibalisation, 1) AS same_as_distance
  FROM retail_mid.site_candidate_score s JOIN by_distance d USING (candidate_id) ORDER BY 1;

-- ---------- calibration: observed sales generated by alpha 1.3, beta 1.7, scale 3 are recovered ----------
INSERT INTO retail_mid.site_store (store_id, name, own, geom, attractiveness)
SELECT 20 + i, 'own ' || i, true, ST_SetSRID(ST_MakePoint(-71.075 + 0.009 * i, 42.345 + 0.0045 * ((i * 5) % 9)), 4326), 30 + 9 * ((i * 7) % 11)
  FROM generate_series(0, 7) i;
UPDATE retail_mid.site_store s SET observed_sales = 3 * h.expected_sales
  FROM (SELECT (x).store_id, (x).expected_sales
          FROM (SELECT unnest(retail_mid.huff_sales(zone_id, store_id, attractiveness, distance, demand, 1.3, 1.7, 100)) x
                  FROM retail_mid.site_zone_store_pairs(2500)) q) h
 WHERE h.store_id = s.store_id;
SELECT round(alpha::numeric, 4) AS alpha, round(beta::numeric, 4) AS beta, round(scale::numeric, 4) AS scale,
       rmse < 1e-4 AS rmse_small, round(r_squared::numeric, 6) AS r_squared, stores
  FROM retail_mid.site_calibrate(2500, alpha0 => 1, beta0 => 2);
-- noisy observations: fitted parameters give the least SSE of a grid of alternatives
UPDATE retail_mid.site_store SET observed_sales = observed_sales * (1 + 0.03 * ((store_id % 3) - 1));
CREATE TEMP TABLE fit AS SELECT * FROM retail_mid.site_calibrate(2500);
SELECT round(f.alpha::numeric, 2) AS alpha, round(f.beta::numeric, 2) AS beta, f.r_squared > 0.9 AND f.r_squared < 1 AS good_fit,
       (SELECT bool_and(f.sse <= q.sse + 1e-9)
          FROM (SELECT a, b FROM (VALUES (f.alpha - 0.05), (f.alpha), (f.alpha + 0.05)) va(a),
                                 (VALUES (f.beta - 0.05), (f.beta), (f.beta + 0.05)) vb(b)
                 WHERE a BETWEEN 0 AND 10 AND b BETWEEN 0 AND 10) g
          CROSS JOIN LATERAL (
              SELECT sum((o.observed_sales - k * h.expected_sales)^2) AS sse
                FROM (SELECT sum(o2.observed_sales * h2.expected_sales) / sum(h2.expected_sales^2) AS k
                        FROM retail_mid.site_huff_sales(g.a, g.b, 2500) h2 JOIN retail_mid.site_store o2 USING (store_id)) kk,
                     retail_mid.site_huff_sales(g.a, g.b, 2500) h JOIN retail_mid.site_store o USING (store_id)) q) AS least_sse_on_grid
  FROM fit f;
-- comparable stores: every own store with observed sales, nearest profile first
SELECT store_id, round(profile_distance::numeric, 6) AS profile_distance FROM retail_mid.site_comparable_stores(10, 2);
SELECT retail_mid.site_score_candidates(1, 2, 2500, k_comparable => 2);
SELECT candidate_id, comparable_estimate = (SELECT avg(observed_sales) FROM retail_mid.site_comparable_stores(candidate_id, 2, 2500)) AS comparable_ok
  FROM retail_mid.site_candidate_score ORDER BY 1;

-- ---------- bad inputs ----------
SELECT retail_mid.site_score_candidates(11, 2, 2500);
SELECT retail_mid.site_score_candidates(1, -2, 2500);
SELECT retail_mid.site_score_candidates(1, 2, 0);
SELECT retail_mid.site_score_candidates(1, 2, 'NaN');
SELECT retail_mid.site_score_candidates(1, 2, 2500, threshold => 1.5);
SELECT retail_mid.site_score_candidates(NULL, 2, 2500);
SELECT * FROM retail_mid.site_huff_sales(1, 'Infinity', 2500);
SELECT retail_mid.site_calibrate(2500, alpha0 => -1);
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (900, 'POINT EMPTY'::geometry);
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (900, ST_MakePoint(-71, 42));
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (900, ST_SetSRID(ST_MakePoint(-71, 42), 999999));
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (900, 'SRID=4326;LINESTRING(-71 42, -71.1 42.1)');
SET client_min_messages = warning;  -- ST_IsValid's own notice prints platform-dependent digits
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (900, 'SRID=4326;POLYGON((-71 42, -70.9 42.1, -70.9 42, -71 42.1, -71 42))');
RESET client_min_messages;
INSERT INTO retail_mid.site_demand_zone (zone_id, geom, population) VALUES (900, 'SRID=4326;POINT(-71 42)', 'NaN');
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (900, NULL);
INSERT INTO retail_mid.site_store (store_id, own, geom, attractiveness) VALUES (900, true, 'SRID=4326;POINT(-71 42)', 0);
INSERT INTO retail_mid.site_store (store_id, own, geom, attractiveness) VALUES (900, true, 'SRID=4326;POINT(-71 42)', -5);
INSERT INTO retail_mid.site_candidate (candidate_id, geom, attractiveness) VALUES (900, 'SRID=4326;POINT(-71 42)', 'NaN');
-- aggregate inputs
SELECT retail_mid.huff_sales(z, s, a, d, m, 1, 2, 100) FROM (VALUES (1::int8, 1::int8, 1::float8, 10::float8, 5::float8), (1, 1, 1, 20, 5)) v(z, s, a, d, m);
SELECT retail_mid.huff_sales(z, s, a, d, m, 1, 2, 100) FROM (VALUES (1::int8, 1::int8, 1::float8, 10::float8, 5::float8), (1, 2, 1, 20, 6)) v(z, s, a, d, m);
SELECT retail_mid.huff_sales(z, s, a, d, m, 1, 2, 100) FROM (VALUES (1::int8, 1::int8, 1::float8, 10::float8, 5::float8), (1, 2, 1, NULL, 5)) v(z, s, a, d, m);
SELECT retail_mid.huff_sales(z, s, a, d, m, 1, 2, 100) FROM (VALUES (1::int8, 1::int8, 1::float8, 10::float8, -5::float8)) v(z, s, a, d, m);
SELECT retail_mid.huff_sales(z, s, a, d, m, 1, b, 100) FROM (VALUES (1::int8, 1::int8, 1::float8, 10::float8, 5::float8, 2::float8), (1, 2, 1, 20, 5, 3)) v(z, s, a, d, m, b);
SELECT retail_mid.huff_impact(1, 1, 'ally', 1, 10, 5, 1, 2, 100, 0.5);
SELECT retail_mid.huff_sales(z, s, a, d, m, 1, 2, 100) FROM (VALUES (1::int8, 1::int8, 1::float8, 10::float8, 5::float8)) v(z, s, a, d, m) WHERE false;
SELECT retail_mid.huff_impact(z, s, 'candidate', a, d, m, 1, 2, 100, 0.5) FROM (VALUES (7::int8, 3::int8, 1::float8, 0::float8, 5::float8)) v(z, s, a, d, m);

-- ---------- parallel and partitionwise plans give the serial answer ----------
CREATE TABLE site_test_pairs (scenario int, zone_id int8, store_id int8, attractiveness float8, distance float8, demand float8);
INSERT INTO site_test_pairs
SELECT sc, z, s, 1 + (s * 7 % 13), 50 + ((z * 31 + s * 17) % 5000), 100 + z % 97
  FROM generate_series(1, 2) sc, generate_series(1, 20000) z, generate_series(1, 5) s0
 CROSS JOIN LATERAL (SELECT ((z * 3 + s0 * 11) % 200) AS s) ss;
ANALYZE site_test_pairs;
ALTER TABLE site_test_pairs SET (parallel_workers = 2);
CREATE TEMP TABLE serial_answer AS
SELECT scenario, (x).* FROM (SELECT scenario, unnest(retail_mid.huff_sales(zone_id, store_id, attractiveness, distance, demand, 1.2, 1.8, 100)) x
                               FROM site_test_pairs GROUP BY scenario) q;
CREATE TEMP TABLE serial_impact AS
SELECT (x).* FROM (SELECT unnest(retail_mid.huff_impact(zone_id, store_id, CASE WHEN store_id < 10 THEN 'candidate' WHEN store_id % 2 = 0 THEN 'own' ELSE 'competitor' END,
                                                        attractiveness, distance, demand, 1.2, 1.8, 100, 0.2)) x
                     FROM site_test_pairs WHERE scenario = 1) q;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT retail_mid.huff_sales(zone_id, store_id, attractiveness, distance, demand, 1.2, 1.8, 100) FROM site_test_pairs WHERE scenario = 1;
SELECT count(*) AS differences FROM (
    SELECT (x).* FROM (SELECT unnest(retail_mid.huff_sales(zone_id, store_id, attractiveness, distance, demand, 1.2, 1.8, 100)) x
                         FROM site_test_pairs WHERE scenario = 1) q
    EXCEPT
    SELECT store_id, expected_sales, zones FROM serial_answer WHERE scenario = 1) d;
EXPLAIN (COSTS OFF) SELECT retail_mid.huff_impact(zone_id, store_id, 'own', attractiveness, distance, demand, 1.2, 1.8, 100, 0.2) FROM site_test_pairs WHERE scenario = 1;
-- huff_impact: stores 0..9 play candidates; compared on values rounded to 1e-6 (summation order differs)
SELECT count(*) AS impact_rows, count(*) FILTER (WHERE kind = 'store') AS store_rows FROM serial_impact;
SELECT count(*) AS differences FROM (
    SELECT (x).candidate_id, (x).kind, (x).object_id, round((x).before::numeric, 6), round((x).after::numeric, 6), (x).zones
      FROM (SELECT unnest(retail_mid.huff_impact(zone_id, store_id, CASE WHEN store_id < 10 THEN 'candidate' WHEN store_id % 2 = 0 THEN 'own' ELSE 'competitor' END,
                                                 attractiveness, distance, demand, 1.2, 1.8, 100, 0.2)) x
              FROM site_test_pairs WHERE scenario = 1) q
    EXCEPT
    SELECT candidate_id, kind, object_id, round(before::numeric, 6), round(after::numeric, 6), zones FROM serial_impact) d;
-- huff_impact_geo (coordinates in) under a parallel plan against its serial answer
CREATE TABLE site_test_geo AS
SELECT z AS zone_id, -71.5 + (z % 100) * 0.01 AS zlon, 42.0 + (z / 100) * 0.01 AS zlat, 100 + z % 37 AS demand,
       s AS site_id, CASE WHEN s < 5 THEN 'candidate' WHEN s % 2 = 0 THEN 'own' ELSE 'competitor' END AS role,
       -71.5 + (s % 10) * 0.1 AS slon, 42.0 + (s / 10) * 0.1 AS slat, 1 + s % 7 AS attractiveness
  FROM generate_series(0, 9999) z, generate_series(0, 99) s
 WHERE abs((z % 100) * 0.01 - (s % 10) * 0.1) < 0.15 AND abs((z / 100) * 0.01 - (s / 10) * 0.1) < 0.15;
ALTER TABLE site_test_geo SET (parallel_workers = 2);
ANALYZE site_test_geo;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
CREATE TEMP TABLE serial_geo AS
SELECT (x).* FROM (SELECT unnest(retail_mid.huff_impact_geo(zone_id, zlon, zlat, demand, site_id, role, slon, slat, attractiveness,
                                                            1.1, 2.1, 100, 0.4, 12000)) x FROM site_test_geo) q;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT retail_mid.huff_impact_geo(zone_id, zlon, zlat, demand, site_id, role, slon, slat, attractiveness, 1.1, 2.1, 100, 0.4, 12000) FROM site_test_geo;
SELECT (SELECT count(*) FROM serial_geo) AS serial_rows, count(*) AS differences FROM (
    SELECT (x).candidate_id, (x).kind, (x).object_id, round((x).before::numeric, 6), round((x).after::numeric, 6), (x).zones
      FROM (SELECT unnest(retail_mid.huff_impact_geo(zone_id, zlon, zlat, demand, site_id, role, slon, slat, attractiveness,
                                                     1.1, 2.1, 100, 0.4, 12000)) x FROM site_test_geo) q
    EXCEPT
    SELECT candidate_id, kind, object_id, round(before::numeric, 6), round(after::numeric, 6), zones FROM serial_geo) d;
DROP TABLE site_test_geo;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
CREATE TABLE site_test_parts (scenario int, zone_id int8, store_id int8, attractiveness float8, distance float8, demand float8)
    PARTITION BY RANGE (zone_id);
CREATE TABLE site_test_parts_1 PARTITION OF site_test_parts FOR VALUES FROM (MINVALUE) TO (10001);
CREATE TABLE site_test_parts_2 PARTITION OF site_test_parts FOR VALUES FROM (10001) TO (MAXVALUE);
INSERT INTO site_test_parts SELECT * FROM site_test_pairs;
ANALYZE site_test_parts;
SET enable_partitionwise_aggregate = on; SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT scenario, retail_mid.huff_sales(zone_id, store_id, attractiveness, distance, demand, 1.2, 1.8, 100)
  FROM site_test_parts GROUP BY scenario;
SELECT count(*) AS differences FROM (
    SELECT scenario, (x).store_id, round((x).expected_sales::numeric, 6), (x).zones
      FROM (SELECT scenario, unnest(retail_mid.huff_sales(zone_id, store_id, attractiveness, distance, demand, 1.2, 1.8, 100)) x
              FROM site_test_parts GROUP BY scenario) q
    EXCEPT
    SELECT scenario, store_id, round(expected_sales::numeric, 6), zones FROM serial_answer) d;
RESET enable_partitionwise_aggregate; RESET max_parallel_workers_per_gather;
DROP TABLE site_test_pairs, site_test_parts;
DELETE FROM retail_mid.site_travel_cost; DELETE FROM retail_mid.site_candidate_cannibalisation; DELETE FROM retail_mid.site_candidate_score;
DELETE FROM retail_mid.site_candidate; DELETE FROM retail_mid.site_store; DELETE FROM retail_mid.site_demand_zone;
-- leave the database as a fresh one, so that no later test file depends on this one
DROP EXTENSION retail_mid;
DROP EXTENSION postgis;
