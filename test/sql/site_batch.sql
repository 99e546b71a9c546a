-- site_batch: the C batch path of site_score_candidates against the SQL/PostGIS reference, piece by piece
SET client_min_messages = warning;  -- the install notice depends on which test file ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET extra_float_digits = 0;

-- zones around three places, one of them across the antimeridian and one near the north pole
INSERT INTO retail_mid.site_demand_zone (zone_id, geom, population, income)
SELECT i, ST_SetSRID(ST_MakePoint(CASE WHEN x > 180 THEN x - 360 ELSE x END, y), 4326),
       100 + (i * 37) % 900, CASE WHEN i % 7 = 0 THEN NULL ELSE 20000 + (i * 7919) % 40000 END
  FROM generate_series(1, 1500) i,
       LATERAL (SELECT (ARRAY[-71.06, 179.9, 15.0])[1 + i % 3] AS lon, (ARRAY[42.36, -16.5, 89.6])[1 + i % 3] AS lat) c,
       LATERAL (SELECT c.lon + 0.35 * cos(i * 2.4) * (i % 17) / 17.0 AS x, least(89.99, c.lat + 0.3 * sin(i * 2.4) * (i % 13) / 13.0) AS y) p;
SELECT count(*) FILTER (WHERE lon < -179) AS west_of_antimeridian, count(*) FILTER (WHERE lon > 179) AS east_of_antimeridian,
       count(*) FILTER (WHERE lat > 89.5) AS near_pole FROM retail_mid.site_demand_zone;
INSERT INTO retail_mid.site_store (store_id, own, geom, attractiveness)
SELECT 10000 + z.zone_id, z.zone_id % 2 = 0, ST_Translate(z.geom, 0.001, -0.0007), 5 + z.zone_id % 40
  FROM retail_mid.site_demand_zone z WHERE z.zone_id % 25 = 0;
INSERT INTO retail_mid.site_candidate (candidate_id, geom, attractiveness)
SELECT 20000 + z.zone_id, ST_Translate(z.geom, -0.0013, 0.0009), 10 + z.zone_id % 30
  FROM retail_mid.site_demand_zone z WHERE z.zone_id % 40 = 7;
-- one candidate with no zone in reach, one exactly on a zone
INSERT INTO retail_mid.site_candidate (candidate_id, geom, attractiveness) VALUES (30001, 'SRID=4326;POINT(100 0)', 20);
INSERT INTO retail_mid.site_candidate (candidate_id, geom, attractiveness) SELECT 30002, geom, 20 FROM retail_mid.site_demand_zone WHERE zone_id = 300;
SELECT (SELECT count(*) FROM retail_mid.site_demand_zone) AS zones, (SELECT count(*) FROM retail_mid.site_store) AS stores,
       (SELECT count(*) FROM retail_mid.site_candidate) AS candidates;

CREATE TEMP TABLE arr AS
SELECT (SELECT array_agg(zone_id) FROM retail_mid.site_demand_zone) zid, (SELECT array_agg(lon) FROM retail_mid.site_demand_zone) zlon,
       (SELECT array_agg(lat) FROM retail_mid.site_demand_zone) zlat, (SELECT array_agg(population) FROM retail_mid.site_demand_zone) zdem,
       (SELECT array_agg(coalesce(income, 'NaN')) FROM retail_mid.site_demand_zone) zinc,
       (SELECT array_agg(is_point) FROM retail_mid.site_demand_zone) zpt,
       (SELECT array_agg(store_id) FROM retail_mid.site_store) sid, (SELECT array_agg(own) FROM retail_mid.site_store) sown,
       (SELECT array_agg(lon) FROM retail_mid.site_store) slon, (SELECT array_agg(lat) FROM retail_mid.site_store) slat,
       (SELECT array_agg(attractiveness) FROM retail_mid.site_store) sattr,
       (SELECT array_agg(lon) FROM retail_mid.site_store WHERE NOT own) klon, (SELECT array_agg(lat) FROM retail_mid.site_store WHERE NOT own) klat,
       (SELECT array_agg(candidate_id) FROM retail_mid.site_candidate) cid, (SELECT array_agg(lon) FROM retail_mid.site_candidate) clon,
       (SELECT array_agg(lat) FROM retail_mid.site_candidate) clat, (SELECT array_agg(attractiveness) FROM retail_mid.site_candidate) cattr;

-- ---------- huff_impact_batch = huff_impact over the ST_DWithin / ST_Distance pairs (PostGIS reference) ----------
CREATE TEMP TABLE b AS SELECT (u).* FROM arr, unnest(retail_mid.huff_impact_batch(zid, zlon, zlat, zdem, sid, sown, slon, slat, sattr,
                                                                       cid, clon, clat, cattr, 1.2, 1.8, 100, 0.3, 20000)) u;
CREATE TEMP TABLE r AS
SELECT (u).* FROM (SELECT unnest(retail_mid.huff_impact(p.zone_id, p.site_id, p.role, p.attractiveness, p.distance, p.demand, 1.2, 1.8, 100, 0.3)) u
                     FROM (SELECT s.zone_id, s.store_id AS site_id, CASE WHEN s.own THEN 'own' ELSE 'competitor' END AS role,
                                  s.attractiveness, s.distance, s.demand FROM retail_mid.site_zone_store_pairs(20000) s
                           UNION ALL
                           SELECT c.zone_id, c.candidate_id, 'candidate', c.attractiveness, c.distance, c.demand
                             FROM retail_mid.site_zone_candidate_pairs(20000) c) p) x;
SELECT kind, count(*) AS rows,
       count(*) FILTER (WHERE r.candidate_id IS NOT NULL AND b.candidate_id IS NOT NULL AND b.zones = r.zones
                          AND abs(b.before - r.before) <= 1e-9 * greatest(abs(r.before), 1)
                          AND abs(b.after - r.after) <= 1e-9 * greatest(abs(r.before), 1)) AS equal
  FROM b FULL JOIN r USING (candidate_id, kind, object_id) GROUP BY kind ORDER BY kind;
SELECT (SELECT count(DISTINCT candidate_id) FROM b WHERE kind = 'candidate') AS candidates_in_reach,
       (SELECT count(*) FROM r WHERE kind = 'candidate' AND candidate_id = 30001) AS far_candidate_rows;

-- ---------- site_catchment_batch = site_catchment for every candidate ----------
SELECT count(*) AS candidates,
       count(*) FILTER (WHERE k.population_1km = s.population_1km AND k.population_3km = s.population_3km
                          AND k.population_5km = s.population_5km
                          AND abs(coalesce(k.income_1km, -1) - coalesce(s.income_1km, -1)) < 1e-9 * 60000
                          AND abs(coalesce(k.income_3km, -1) - coalesce(s.income_3km, -1)) < 1e-9 * 60000
                          AND abs(coalesce(k.income_5km, -1) - coalesce(s.income_5km, -1)) < 1e-9 * 60000
                          AND (k.income_5km IS NULL) = (s.income_5km IS NULL)
                          AND k.competitors = s.competitors
                          AND abs(k.nearest_competitor_m - s.nearest_competitor_m) <= 1e-9 * s.nearest_competitor_m) AS equal,
       count(*) FILTER (WHERE s.competitors = 0) AS without_competitor_in_radius,
       count(*) FILTER (WHERE s.population_1km > 0) AS with_population_1km
  FROM arr, retail_mid.site_catchment_batch(zlon, zlat, zdem, zinc, cid, clon, clat, klon, klat, 3000) k
  JOIN retail_mid.site_candidate c ON c.candidate_id = k.candidate_id
 CROSS JOIN LATERAL retail_mid.site_catchment(c.lon, c.lat, 3000) s;
-- no competitors at all: nearest is null
SELECT count(*) AS rows, count(nearest_competitor_m) AS nearest_known, sum(competitors) AS competitors
  FROM arr, retail_mid.site_catchment_batch(zlon, zlat, zdem, zinc, cid, clon, clat, '{}', '{}', 3000);

-- ---------- site_trade_area_hulls = ST_ConvexHull(ST_Collect(points)) ----------
CREATE TEMP TABLE tp (candidate_id int8, zone_id int8);
INSERT INTO tp SELECT candidate_id, object_id FROM b WHERE kind = 'zone';
-- a single zone, two zones, three collinear zones (a line), a duplicate pair
INSERT INTO tp VALUES (1, 1), (2, 1), (2, 4), (3, 10), (4, 4), (4, 4), (4, 7);
INSERT INTO retail_mid.site_demand_zone (zone_id, geom) VALUES (5001, 'SRID=4326;POINT(10 10)'), (5002, 'SRID=4326;POINT(10.5 10.5)'),
    (5003, 'SRID=4326;POINT(11 11)'), (5004, 'SRID=4326;POLYGON((10 10, 10.1 10, 10.1 10.1, 10 10))');
INSERT INTO tp VALUES (5, 5001), (5, 5002), (5, 5003), (6, 5001), (6, 5004);
SELECT count(*) AS candidates,
       count(*) FILTER (WHERE h.polygon_zones = 0) AS point_only,
       count(*) FILTER (WHERE h.polygon_zones = 0 AND ST_Equals(ST_GeomFromEWKB(h.hull), ref.hull)
                          AND ST_GeometryType(ST_GeomFromEWKB(h.hull)) = ST_GeometryType(ref.hull)
                          AND ST_SRID(ST_GeomFromEWKB(h.hull)) = 4326) AS equal_hulls,
       count(*) FILTER (WHERE h.zones = ref.zones) AS equal_zone_counts,
       string_agg(DISTINCT ST_GeometryType(ref.hull), ', ') AS types,
       count(*) FILTER (WHERE h.polygon_zones > 0) AS with_polygon_zones
  FROM (SELECT array_agg(zone_id) zid, array_agg(lon) zlon, array_agg(lat) zlat, array_agg(is_point) zpt FROM retail_mid.site_demand_zone) a,
       (SELECT array_agg(candidate_id) c, array_agg(zone_id) z FROM tp) p,
       retail_mid.site_trade_area_hulls(a.zid, a.zlon, a.zlat, a.zpt, p.c, p.z) h
  JOIN LATERAL (SELECT count(DISTINCT t.zone_id) AS zones, ST_ConvexHull(ST_Collect(z.geom_4326) FILTER (WHERE z.is_point)) AS hull
                  FROM tp t JOIN retail_mid.site_demand_zone z USING (zone_id) WHERE t.candidate_id = h.candidate_id) ref ON true;

-- ---------- bad input ----------
SELECT retail_mid.huff_impact_batch('{1,2}', '{0,0}', '{0}', '{1,1}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1,1}', '{0,0}', '{0,0}', '{1,1}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{0}', '{1}', '{7,7}', '{t,t}', '{0,0}', '{0,0}', '{1,1}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{0}', '{1}', '{7}', '{t}', '{0}', '{0}', '{0}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{95}', '{1}', '{7}', '{t}', '{0}', '{0}', '{1}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{0}', '{-1}', '{7}', '{t}', '{0}', '{0}', '{1}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{NULL}', '{1}', '{7}', '{t}', '{0}', '{0}', '{1}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000);
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{0}', '{1}', '{7}', '{t}', '{0}', '{0}', '{1}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 'NaN');
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{0}', '{1}', '{7}', '{t}', '{0}', '{0}', '{1}', '{}', '{}', '{}', '{}', 1, 12, 100, 0.5, 1000);
-- empty in, empty out; a zone on a store is floored at min_distance
SELECT retail_mid.huff_impact_batch('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', 1, 2, 100, 0.5, 1000) AS empty;
SELECT retail_mid.huff_impact_batch('{1}', '{0}', '{0}', '{10}', '{7}', '{t}', '{0}', '{0}', '{1}', '{8}', '{0}', '{0}', '{1}', 1, 2, 100, 0.5, 1000) AS split;
SELECT * FROM retail_mid.site_catchment_batch('{0}', '{0}', '{1}', '{NaN}', '{1}', '{0}', '{0}', '{}', '{}', 0);
SELECT * FROM retail_mid.site_catchment_batch('{0}', '{0}', '{-1}', '{NaN}', '{1}', '{0}', '{0}', '{}', '{}', 10);
SELECT * FROM retail_mid.site_catchment_batch('{0}', '{0}', '{1}', '{NaN}', '{1}', '{0}', '{0}', '{}', '{}', 10);
SELECT * FROM retail_mid.site_trade_area_hulls('{1}', '{0}', '{0}', '{t}', '{5}', '{2}');

-- leave the database as a fresh one
DROP EXTENSION retail_mid;
DROP EXTENSION postgis;
