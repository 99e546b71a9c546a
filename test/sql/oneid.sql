-- oneid: connected components of the identity graph, stable person keys, merges, parallel plans, bad input
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
-- job_log rows of this test only (an earlier test, keydict, resolves identities too)
SELECT coalesce(max(job_id), 0) AS oneid_job0 FROM retail_mid.job_log \gset

-- a small graph: {1,2,3} via a chain, {10,11}, {20} alone through a self-loop, NULL ends skipped
SELECT (cc).nodes, (cc).components
  FROM (SELECT retail_mid.connected_components(a, b) AS cc
          FROM (VALUES (3, 2), (2, 1), (11, 10), (20, 20), (NULL, 5), (7, NULL)) e(a, b)) s;
SELECT retail_mid.connected_components(a, b) IS NULL AS no_edges FROM (VALUES (NULL::int, NULL::int)) e(a, b);
SELECT retail_mid.connected_components(a, b) FROM (SELECT 1, 2 WHERE false) e(a, b);
SELECT retail_mid.connected_components(a, b) FROM (VALUES (1, -2)) e(a, b);

-- against a plain recursive-CTE labelling on a random graph of 3,000 edges over 4,000 nodes
CREATE TABLE oneid_edges_t AS
SELECT (1 + floor(4000 * retail_mid.synth_uniform(5, 1, g)))::int AS a, (1 + floor(4000 * retail_mid.synth_uniform(5, 2, g)))::int AS b
  FROM generate_series(1, 3000) g;
CREATE TABLE oneid_ours AS
SELECT u.node, u.component FROM (SELECT retail_mid.connected_components(a, b) cc FROM oneid_edges_t) s,
       LATERAL unnest((s.cc).nodes, (s.cc).components) u(node, component);
CREATE TABLE oneid_cte AS
WITH RECURSIVE und AS (SELECT a, b FROM oneid_edges_t UNION SELECT b, a FROM oneid_edges_t),
reach(node, other) AS (SELECT a, b FROM und UNION SELECT r.node, u.b FROM reach r JOIN und u ON u.a = r.other)
SELECT node, least(node, min(other)) AS component FROM reach GROUP BY node;
SELECT (SELECT count(*) FROM oneid_ours) AS nodes, (SELECT count(DISTINCT component) FROM oneid_ours) AS components,
       (SELECT count(*) FROM (SELECT * FROM oneid_ours EXCEPT SELECT * FROM oneid_cte) x)
     + (SELECT count(*) FROM (SELECT * FROM oneid_cte EXCEPT SELECT * FROM oneid_ours) x) AS differences;

-- keys spread over the int4 range take the sorted path, keys far from 0 the offset dense path: same components
SELECT (SELECT retail_mid.connected_components(a * 500000, b * 500000) FROM oneid_edges_t)::text
     = (SELECT ROW(array_agg(n * 500000 ORDER BY n), array_agg(c * 500000 ORDER BY n))::retail_mid.oneid_components::text
          FROM (SELECT unnest((cc).nodes) n, unnest((cc).components) c
                  FROM (SELECT retail_mid.connected_components(a, b) cc FROM oneid_edges_t) s) x) AS sparse_same,
       (SELECT retail_mid.connected_components(a + 1000000000, b + 1000000000) FROM oneid_edges_t)::text
     = (SELECT ROW(array_agg(n + 1000000000 ORDER BY n), array_agg(c + 1000000000 ORDER BY n))::retail_mid.oneid_components::text
          FROM (SELECT unnest((cc).nodes) n, unnest((cc).components) c
                  FROM (SELECT retail_mid.connected_components(a, b) cc FROM oneid_edges_t) s) x) AS offset_same;
SELECT (cc).nodes, (cc).components
  FROM (SELECT retail_mid.connected_components(a, b) AS cc
          FROM (VALUES (2147483647, 5), (0, 2147483647), (7, 7)) e(a, b)) s;

-- forced parallel and partitionwise plans give the serial answer
CREATE TABLE oneid_big AS SELECT * FROM oneid_edges_t, generate_series(1, 40) rep;
ALTER TABLE oneid_big SET (parallel_workers = 2);
ANALYZE oneid_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT retail_mid.connected_components(a, b) FROM oneid_big;
SELECT (SELECT retail_mid.connected_components(a, b) FROM oneid_big)::text
     = (SELECT retail_mid.connected_components(a, b) FROM oneid_edges_t)::text AS parallel_same;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
CREATE TABLE oneid_part (grp int, a int, b int) PARTITION BY LIST (grp);
CREATE TABLE oneid_part_0 PARTITION OF oneid_part FOR VALUES IN (0);
CREATE TABLE oneid_part_1 PARTITION OF oneid_part FOR VALUES IN (1);
INSERT INTO oneid_part SELECT a % 2, a, b FROM oneid_edges_t;
SET enable_partitionwise_aggregate = on;
EXPLAIN (COSTS OFF) SELECT grp, retail_mid.connected_components(a, b) FROM oneid_part GROUP BY grp;
SELECT count(*) AS partitionwise_differences FROM (
    SELECT grp, retail_mid.connected_components(a, b)::text FROM oneid_part GROUP BY grp
    EXCEPT SELECT a % 2, retail_mid.connected_components(a, b)::text FROM oneid_edges_t GROUP BY a % 2) x;
RESET enable_partitionwise_aggregate;
-- as a window aggregate the final function runs repeatedly on one state
SELECT a, (retail_mid.connected_components(a, b) OVER (ORDER BY a ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)).components
  FROM (VALUES (1, 2), (3, 4), (2, 3)) e(a, b) ORDER BY a;

-- persons from the ODS: two customers share a device, so they become one person; the older key is kept
INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type) VALUES ('oneid_t', 'A', 'member_id'), ('oneid_t', 'B', 'member_id'), ('oneid_t', 'C', 'member_id');
INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value) VALUES
    ('oneid_t', 'A', 'phone', '1380000'), ('oneid_t', 'A', 'device_id', 'dev-A'),
    ('oneid_t', 'B', 'email', 'b@x.cn'), ('oneid_t', 'C', 'open_id', 'wx-C');
SET client_min_messages = warning;  -- the counts include other tests' customer keys: show only this run's merges
SELECT merges FROM retail_mid.resolve_identities();
RESET client_min_messages;
SELECT identifiers, identities FROM retail_mid.oneid_person p
 WHERE EXISTS (SELECT 1 FROM retail_mid.oneid_person_map m JOIN retail_mid.customer_key k USING (customer_key)
                WHERE m.person_key = p.person_key AND k.id_value IN ('A', 'B', 'C')) ORDER BY 2;
SELECT person_key AS person_of_b FROM retail_mid.oneid_person_map JOIN retail_mid.customer_key USING (customer_key)
 WHERE id_type = 'member_id' AND id_value = 'B' \gset
-- later, B logs in on A's device: A and B merge, and the older person key survives
INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value) VALUES ('oneid_t', 'B', 'device_id', 'dev-A');
SET client_min_messages = warning;  -- the counts include other tests' customer keys: show only this run's merges
SELECT merges FROM retail_mid.resolve_identities();
RESET client_min_messages;
SELECT count(DISTINCT person_key) AS persons_of_a_and_b,
       min(person_key) = least(min(person_key), :person_of_b) AS older_key_kept
  FROM retail_mid.oneid_person_map JOIN retail_mid.customer_key USING (customer_key)
 WHERE id_type = 'member_id' AND id_value IN ('A', 'B');
SELECT identifiers FROM retail_mid.oneid_merge_log ORDER BY merged_at DESC LIMIT 1;
-- running again changes nothing
SET client_min_messages = warning;  -- the counts include other tests' customer keys: show only this run's merges
SELECT merges FROM retail_mid.resolve_identities();
RESET client_min_messages;
SELECT job, outcome FROM retail_mid.job_log WHERE job = 'resolve_identities' AND job_id > :oneid_job0 ORDER BY job_id;
DROP TABLE oneid_edges_t, oneid_ours, oneid_cte, oneid_big, oneid_part;
DELETE FROM retail_mid.ods_customer_identifier WHERE brand = 'oneid_t';
DELETE FROM retail_mid.ods_customer WHERE brand = 'oneid_t';
