-- site_huff_peer.sql: the peer of test/bench/site_huff.sh (included by it, not run alone). The same Huff batch
-- scoring as retail_mid.site_score_candidates, written as one plain SQL statement with PostGIS: pairs by
-- ST_DWithin on geography (GiST), distances by ST_Distance (sphere), the arithmetic in SQL, per-zone totals
-- computed once and shared by all candidates. Writes peer_score / peer_cannibalisation and a timing row.
TRUNCATE peer_score, peer_cannibalisation;
SELECT clock_timestamp() AS t0 \gset
WITH zs AS MATERIALIZED (
    SELECT z.zone_id, s.store_id, s.own, coalesce(z.spend_potential, z.population) AS demand,
           power(s.attractiveness, 1.0) * power(greatest(ST_Distance(z.centre, s.centre, false), 100), -2.0) AS u
      FROM retail_mid.site_demand_zone z
      JOIN retail_mid.site_store s ON ST_DWithin(z.centre, s.centre, :cutoff, false)),
tot AS MATERIALIZED (SELECT zone_id, sum(u) AS s FROM zs GROUP BY zone_id),
base AS MATERIALIZED (SELECT zs.store_id, sum(zs.demand * (zs.u / t.s)) AS sales FROM zs JOIN tot t USING (zone_id) GROUP BY zs.store_id),
czp AS MATERIALIZED (
    SELECT c.candidate_id, z.zone_id, coalesce(z.spend_potential, z.population) AS demand, coalesce(t.s, 0) AS s, q.u,
           q.u / (coalesce(t.s, 0) + q.u) AS p
      FROM retail_mid.site_candidate c
      JOIN retail_mid.site_demand_zone z ON ST_DWithin(z.centre, c.centre, :cutoff, false)
     CROSS JOIN LATERAL (SELECT power(c.attractiveness, 1.0) * power(greatest(ST_Distance(z.centre, c.centre, false), 100), -2.0) AS u) q
      LEFT JOIN tot t ON t.zone_id = z.zone_id),
cand AS (SELECT candidate_id, count(*) AS zones, sum(demand) AS reach, sum(demand * p) AS sales FROM czp GROUP BY candidate_id),
ta AS (SELECT czp.candidate_id, count(*) AS zones,
              CASE WHEN count(*) FILTER (WHERE GeometryType(z.geom_4326) = 'POINT') = 0
                   THEN ST_Union(z.geom_4326) FILTER (WHERE GeometryType(z.geom_4326) <> 'POINT')
                   WHEN count(*) FILTER (WHERE GeometryType(z.geom_4326) <> 'POINT') = 0
                   THEN ST_ConvexHull(ST_Collect(z.geom_4326) FILTER (WHERE GeometryType(z.geom_4326) = 'POINT'))
                   ELSE ST_Union(ST_Union(z.geom_4326) FILTER (WHERE GeometryType(z.geom_4326) <> 'POINT'),
                                 ST_ConvexHull(ST_Collect(z.geom_4326) FILTER (WHERE GeometryType(z.geom_4326) = 'POINT'))) END AS area
         FROM czp JOIN retail_mid.site_demand_zone z USING (zone_id) WHERE czp.p > 0.3 GROUP BY czp.candidate_id),
-- an own store's loss = its sales without the candidate minus with it, over the zones they share
loss AS MATERIALIZED (
    SELECT czp.candidate_id, zs.store_id, sum(zs.demand * (zs.u / czp.s)) - sum(zs.demand * (zs.u / (czp.s + czp.u))) AS loss
      FROM czp JOIN zs USING (zone_id) WHERE zs.own GROUP BY czp.candidate_id, zs.store_id),
ins AS (INSERT INTO peer_cannibalisation
        SELECT l.candidate_id, l.store_id, b.sales, b.sales - l.loss, l.loss FROM loss l JOIN base b USING (store_id)),
catch AS (SELECT c.candidate_id,
                 sum(z.population) FILTER (WHERE dd.d <= 1000) AS p1, sum(z.population) FILTER (WHERE dd.d <= 3000) AS p3,
                 sum(z.population) AS p5,
                 sum(z.population * z.income) FILTER (WHERE dd.d <= 1000) / nullif(sum(z.population) FILTER (WHERE dd.d <= 1000 AND z.income IS NOT NULL), 0) AS i1,
                 sum(z.population * z.income) FILTER (WHERE dd.d <= 3000) / nullif(sum(z.population) FILTER (WHERE dd.d <= 3000 AND z.income IS NOT NULL), 0) AS i3,
                 sum(z.population * z.income) / nullif(sum(z.population) FILTER (WHERE z.income IS NOT NULL), 0) AS i5
            FROM retail_mid.site_candidate c
            JOIN retail_mid.site_demand_zone z ON ST_DWithin(z.centre, c.centre, 5000, false)
           CROSS JOIN LATERAL (SELECT ST_Distance(z.centre, c.centre, false) AS d) dd
           GROUP BY c.candidate_id),
comp AS (SELECT c.candidate_id, count(*) AS n FROM retail_mid.site_candidate c
           JOIN retail_mid.site_store s ON NOT s.own AND ST_DWithin(s.centre, c.centre, :cutoff, false) GROUP BY c.candidate_id),
lt AS (SELECT candidate_id, sum(loss) AS loss FROM loss GROUP BY candidate_id)
INSERT INTO peer_score
SELECT c.candidate_id, coalesce(cand.sales, 0), coalesce(cand.reach, 0), coalesce(cand.sales / nullif(cand.reach, 0), 0),
       coalesce(cand.zones, 0), coalesce(ta.area, ST_SetSRID('POLYGON EMPTY'::geometry, 4326)), coalesce(ta.zones, 0),
       coalesce(catch.p1, 0), coalesce(catch.p3, 0), coalesce(catch.p5, 0), catch.i1, catch.i3, catch.i5,
       coalesce(comp.n, 0), nc.d, coalesce(lt.loss, 0), coalesce(cand.sales, 0) - coalesce(lt.loss, 0)
  FROM retail_mid.site_candidate c
  LEFT JOIN cand USING (candidate_id) LEFT JOIN ta USING (candidate_id) LEFT JOIN catch USING (candidate_id)
  LEFT JOIN comp USING (candidate_id) LEFT JOIN lt USING (candidate_id)
  LEFT JOIN LATERAL (SELECT ST_Distance(s.centre, c.centre, false) AS d FROM retail_mid.site_store s
                      WHERE NOT s.own ORDER BY s.centre <-> c.centre LIMIT 1) nc ON true;
INSERT INTO timings SELECT 'plain SQL', :r, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000;
