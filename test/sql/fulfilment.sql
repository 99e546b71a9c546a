-- fulfilment: nearest complete location, fewest-shipment splits, available-to-promise, bad inputs
SET client_min_messages = warning;  -- the install notice depends on which test file ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET extra_float_digits = 0;
-- delivery point in Shanghai; locations from 1 km to 190 km away
INSERT INTO retail_mid.fulfilment_location (location_id, code, kind, geom, active) VALUES
    (1, 'CDC-HZ',  'CDC',   ST_SetSRID(ST_MakePoint(120.00, 30.00), 4326), true),
    (2, 'RDC-SJ',  'RDC',   ST_SetSRID(ST_MakePoint(121.00, 31.00), 4326), true),
    (3, 'FDC-XH',  'FDC',   ST_Transform(ST_SetSRID(ST_MakePoint(121.40, 31.20), 4326), 3857), true),
    (4, 'S-JA',    'store', ST_SetSRID(ST_MakePoint(121.47, 31.24), 4326), true),
    (5, 'S-HP',    'store', ST_SetSRID(ST_MakePoint(121.47, 31.231), 4326), false);
INSERT INTO retail_mid.fulfilment_stock (location_id, sku_id, on_hand) VALUES
    (1, 'A', 100), (1, 'B', 100), (1, 'C', 100), (1, 'D', 100),
    (2, 'E', 2), (2, 'F', 2),
    (3, 'A', 10), (3, 'B', 10), (3, 'F', 4),
    (4, 'A', 5), (4, 'E', 4),
    (5, 'A', 50), (5, 'B', 50), (5, 'E', 50), (5, 'F', 50);
\set here 'ST_SetSRID(ST_MakePoint(121.47, 31.23), 4326)'
-- one line the nearest store has: the inactive store 5 (even nearer) is never used
SELECT * FROM retail_mid.fulfilment_route('o1', :here, '{A}', '{1}');
-- A and B: the store lacks B, the FDC has both
SELECT * FROM retail_mid.fulfilment_route('o2', :here, '{A,B}', '{2,1}');
-- C and D: only the far CDC has them, and one location beats a split
SELECT * FROM retail_mid.fulfilment_route('o3', :here, '{C,D}', '{3,3}');
-- E 4 and F 4: nobody has both; the fewest shipments are 2, and {store, FDC} is the nearest pair
SELECT * FROM retail_mid.fulfilment_route('o4', :here, '{E,F}', '{4,4}');
-- ATP counts the reservations: the store has 5 - 1 = 4 A left, so 5 A come from the FDC (10 - 2 = 8 left)
SELECT location_id, sku_id, on_hand, reserved, atp FROM retail_mid.fulfilment_atp WHERE sku_id = 'A' ORDER BY 1;
SELECT * FROM retail_mid.fulfilment_route('o5', :here, '{A}', '{5}');
-- repeated SKUs are one line (5 A): no near location has 5 left (store 4, FDC 3), so the CDC ships it whole,
-- since one location beats a split
SELECT * FROM retail_mid.fulfilment_route('o6', :here, '{A,A}', '{3,2}');
-- within 10 km nobody has 7 A: the line is split, 4 from the store and 3 from the FDC
SELECT * FROM retail_mid.fulfilment_route('o7', :here, '{A}', '{7}', max_distance => 10000);
SELECT location_id, sku_id, on_hand, reserved, atp FROM retail_mid.fulfilment_atp ORDER BY 1, 2;
-- reservations agree with the stock's reserved column
SELECT bool_and(s.reserved = coalesce(r.q, 0)) AS reserved_consistent
  FROM retail_mid.fulfilment_stock s
  LEFT JOIN (SELECT location_id, sku_id, sum(quantity) q FROM retail_mid.fulfilment_reservation WHERE status = 'reserved'
              GROUP BY 1, 2) r USING (location_id, sku_id);
-- ship o1 (store 4: on hand 5 -> 4, reserved 5 -> 4), release o5 (FDC 3: reserved 10 -> 5)
SELECT retail_mid.fulfilment_settle('o1', true) AS shipped, retail_mid.fulfilment_settle('o5', false) AS released;
SELECT location_id, sku_id, on_hand, reserved, atp FROM retail_mid.fulfilment_atp WHERE sku_id = 'A' ORDER BY 1;
SELECT order_id, status, count(*) FROM retail_mid.fulfilment_reservation GROUP BY 1, 2 ORDER BY 1;
-- a released order can be routed again
SELECT * FROM retail_mid.fulfilment_route('o5', :here, '{A}', '{1}');

-- exact versus greedy cover: lines 1..6; location 1 has {1,2,3}, 2 has {4,5,6}, 3 has {1,2,4,5} (nearest)
SELECT retail_mid.fulfilment_plan('{1,1,1,0,0,0, 0,0,0,1,1,1, 1,1,0,1,1,0}', '{1,1,1,1,1,1}', '{20,30,10}') AS exact_two;
SELECT retail_mid.fulfilment_plan('{1,1,1,0,0,0, 0,0,0,1,1,1, 1,1,0,1,1,0}', '{1,1,1,1,1,1}', '{20,30,10}', 0) AS greedy_three;
SELECT retail_mid.fulfilment_plan('{1,0, 0,1}', '{1,1}', '{5,5}') AS tie_by_index;
SELECT retail_mid.fulfilment_plan('{1,0, 0,1}', '{1,2}', '{5,5}') AS not_coverable;
SELECT retail_mid.fulfilment_plan('{}', '{1}', '{}') AS no_locations;
-- exact search against brute force in SQL on random instances: same number of shipments, same total distance
SELECT count(*) AS instances,
       count(*) FILTER (WHERE cardinality(plan) = coalesce(bf.k, 0)) AS same_size,
       count(*) FILTER (WHERE cardinality(plan) = 0 OR abs((SELECT sum(dist[i]) FROM unnest(plan) i) - bf.d) < 1e-9) AS same_distance
  FROM (SELECT inst, array_agg(a ORDER BY loc, line) atp, (array_agg(q ORDER BY loc, line))[1:4] qty,
               (SELECT array_agg(10 + (inst * 7 + l2 * 13) % 50 ORDER BY l2)::float8[] FROM generate_series(1, 8) l2) dist
          FROM (SELECT inst, loc, line, ((inst * 31 + loc * 17 + line * 7) % 5)::float8 AS a, (1 + (inst + line) % 4)::float8 AS q
                  FROM generate_series(1, 40) inst, generate_series(1, 8) loc, generate_series(1, 4) line) g
         GROUP BY inst) t
 CROSS JOIN LATERAL (SELECT retail_mid.fulfilment_plan(t.atp, t.qty, t.dist) AS plan) p
 LEFT JOIN LATERAL (
       SELECT bit_count(m::bit(8)) AS k, sum_d AS d
         FROM generate_series(1, 255) m
        CROSS JOIN LATERAL (SELECT sum(t.dist[i]) sum_d FROM generate_series(1, 8) i WHERE (m >> (i - 1)) & 1 = 1) sd
        WHERE NOT EXISTS (SELECT 1 FROM generate_series(1, 4) line
                           WHERE (SELECT coalesce(sum(t.atp[(i - 1) * 4 + line]), 0) FROM generate_series(1, 8) i
                                   WHERE (m >> (i - 1)) & 1 = 1) < t.qty[line])
        ORDER BY 1, 2 LIMIT 1) bf ON true;

-- bad inputs
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{A}', '{1000}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{ZZ}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o2', :here, '{A}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{}', '{}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{A,B}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{A}', '{0}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{A}', '{NaN}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{NULL}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o8', ST_MakePoint(121.47, 31.23), '{A}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o8', 'SRID=4326;POINT EMPTY', '{A}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o8', 'SRID=4326;LINESTRING(121 31, 122 32)', '{A}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('', :here, '{A}', '{1}');
SELECT * FROM retail_mid.fulfilment_route('o8', :here, '{A}', '{1}', max_distance => -5);
SELECT retail_mid.fulfilment_plan('{1,1,1}', '{1,1}', '{1,2}');
SELECT retail_mid.fulfilment_plan('{1,NaN}', '{1}', '{1,2}');
SELECT retail_mid.fulfilment_plan('{1,1}', '{-1}', '{1,2}');
SELECT retail_mid.fulfilment_plan('{1,1}', '{1}', '{1,NULL}');
SELECT retail_mid.fulfilment_plan('{1,1}', '{1}', '{1,2}', 31);
INSERT INTO retail_mid.fulfilment_stock (location_id, sku_id, on_hand) VALUES (2, 'G', 'NaN');
UPDATE retail_mid.fulfilment_stock SET reserved = on_hand + 1 WHERE location_id = 2 AND sku_id = 'E';
SELECT count(*) AS reservations_after_errors FROM retail_mid.fulfilment_reservation WHERE order_id = 'o8';
DELETE FROM retail_mid.fulfilment_reservation; DELETE FROM retail_mid.fulfilment_stock; DELETE FROM retail_mid.fulfilment_location;
-- leave the database as a fresh one, so that no later test file depends on this one
DROP EXTENSION retail_mid;
DROP EXTENSION postgis;
