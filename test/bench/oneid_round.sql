-- One round of test/bench/oneid.sql (included with \ir; :round set by the caller).
DROP TABLE IF EXISTS ours_small, cte_small;
SELECT clock_timestamp() AS t0 \gset
CREATE TEMP TABLE ours_small AS
SELECT unnest((s.cc).nodes) AS node, unnest((s.cc).components) AS component
  FROM (SELECT retail_mid.connected_components(a, b) cc FROM graph_small) s;
INSERT INTO timing VALUES ('ours', :round, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
SELECT clock_timestamp() AS t0 \gset
CREATE TEMP TABLE cte_small AS
WITH RECURSIVE und AS (SELECT a, b FROM graph_small UNION SELECT b, a FROM graph_small),
reach(node, other) AS (SELECT a, b FROM und UNION SELECT r.node, u.b FROM reach r JOIN und u ON u.a = r.other)
SELECT node, least(node, min(other)) AS component FROM reach GROUP BY node;
INSERT INTO timing VALUES ('cte', :round, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS ours_rows FROM (SELECT unnest((s.cc).nodes) AS node, unnest((s.cc).components) AS component
  FROM (SELECT retail_mid.connected_components(a, b) cc FROM graph_small) s) x \gset
INSERT INTO timing VALUES ('ours_rows', :round, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS cte_rows FROM (
WITH RECURSIVE und AS (SELECT a, b FROM graph_small UNION SELECT b, a FROM graph_small),
reach(node, other) AS (SELECT a, b FROM und UNION SELECT r.node, u.b FROM reach r JOIN und u ON u.a = r.other)
SELECT node, least(node, min(other)) AS component FROM reach GROUP BY node) x \gset
INSERT INTO timing VALUES ('cte_rows', :round, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));
