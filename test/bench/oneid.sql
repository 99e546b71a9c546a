-- Benchmark: identity resolution (connected components) by retail_mid.connected_components against the usual
-- recursive-CTE query on the same identity-shaped graph (CTE_EDGES edges, default 20,000) (persons with 1-5 identifiers, 1% of them
-- linked to another person), then how the aggregate's time grows up to 10M edges.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SET max_parallel_workers_per_gather = 2;
-- edges of n_edges: person p has a hub identifier 4p linked to three more (4p+1 .. 4p+3); every 100th edge links
-- the hub to another random person's hub instead, so a few persons merge
CREATE FUNCTION pg_temp.identity_graph(n_edges bigint) RETURNS TABLE (a int, b int) LANGUAGE sql AS $$
    SELECT (4 * (g / 3))::int,
           CASE WHEN g % 100 = 0 THEN (4 * floor(n_edges / 3 * retail_mid.synth_uniform(9, 1, g)))::int
                ELSE (4 * (g / 3) + g % 3 + 1)::int END
      FROM generate_series(0, n_edges - 1) g $$;
SELECT coalesce(nullif(:'cte_edges', ''), '100000')::int AS cte_edges \gset
CREATE TABLE graph_small AS SELECT * FROM pg_temp.identity_graph(:cte_edges);
ANALYZE graph_small;
-- Both sides write the (node, component) table as resolve_identities() does: a temporary table. Three rounds,
-- interleaved, best of each; then the two queries alone (rows produced and counted, nothing written).
CREATE TABLE timing (who text, round int, seconds float8);
\set round 1
\ir oneid_round.sql
\set round 2
\ir oneid_round.sql
\set round 3
\ir oneid_round.sql
SELECT (SELECT count(*) FROM ours_small) AS nodes, (SELECT count(DISTINCT component) FROM ours_small) AS persons,
       (SELECT count(*) FROM (SELECT * FROM ours_small EXCEPT SELECT * FROM cte_small) x)
     + (SELECT count(*) FROM (SELECT * FROM cte_small EXCEPT SELECT * FROM ours_small) x) AS differences;
\echo
\echo === OneID: connected components of :cte_edges edges, aggregate against the recursive CTE (best of 3) ===
SELECT what, round(o::numeric, 4) AS connected_components_s, round(c::numeric, 3) AS recursive_cte_s,
       round((c / o)::numeric, 1) AS speedup
  FROM (SELECT w.what, min(t.seconds) FILTER (WHERE t.who = 'ours' || w.sfx) AS o,
               min(t.seconds) FILTER (WHERE t.who = 'cte' || w.sfx) AS c
          FROM (VALUES ('into a temporary table', ''), ('rows only (count)', '_rows')) w(what, sfx), timing t
         GROUP BY w.what) x ORDER BY what;

\echo '=== growth of the aggregate (edges -> seconds, including the scan) ==='
CREATE TABLE growth (edges bigint, seconds float8);
CREATE TABLE graph_n (a int, b int);
\set n 1000000
TRUNCATE graph_n; INSERT INTO graph_n SELECT * FROM pg_temp.identity_graph(:n); VACUUM ANALYZE graph_n;
SELECT clock_timestamp() AS t0 \gset
SELECT cardinality((retail_mid.connected_components(a, b)).nodes) AS nodes FROM graph_n;
INSERT INTO growth VALUES (:n, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
\set n 3000000
TRUNCATE graph_n; INSERT INTO graph_n SELECT * FROM pg_temp.identity_graph(:n); VACUUM ANALYZE graph_n;
SELECT clock_timestamp() AS t0 \gset
SELECT cardinality((retail_mid.connected_components(a, b)).nodes) AS nodes FROM graph_n;
INSERT INTO growth VALUES (:n, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
\set n 10000000
TRUNCATE graph_n; INSERT INTO graph_n SELECT * FROM pg_temp.identity_graph(:n); VACUUM ANALYZE graph_n;
SELECT clock_timestamp() AS t0 \gset
SELECT cardinality((retail_mid.connected_components(a, b)).nodes) AS nodes FROM graph_n;
INSERT INTO growth VALUES (:n, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
SELECT edges, round(seconds::numeric, 2) AS seconds, round((1e6 * seconds / edges)::numeric, 3) AS us_per_edge FROM growth ORDER BY edges;
