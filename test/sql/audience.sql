-- audience: tag expressions parsed in C, evaluated on tag bitmaps, checked against the same predicate in plain SQL
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
SET search_path = retail_mid, public;

-- the parser: canonical form (fully parenthesised, AND binds tighter than OR, NOT tightest)
SELECT e AS expression, audience_parse(e) AS canonical FROM (VALUES
  ('a = 1'),
  ('a = 1 OR b = 2 AND NOT c'),
  ('(a = 1 OR b = 2) AND NOT (c OR d)'),
  ('x IN (''gold'', silver, 3) and y not in (''it''''s'')'),
  ('m >= 500 AND m < 1e3 AND n BETWEEN -2.5 AND 7 AND n NOT BETWEEN 0 AND 1'),
  ('a <> ''x'' OR a != y OR a <= 1 OR a > .5'),
  ('@vip OR audience(''spring campaign'') OR audience(lapsed) OR audience'),
  ('性别 = ''女'' AND "odd""name" = 1'),
  ('NOT NOT a')) v(e);
-- syntax errors carry the position and a caret
SELECT audience_parse('');
SELECT audience_parse('a =');
SELECT audience_parse('a = 1 AND');
SELECT audience_parse('(a = 1 OR b = 2');
SELECT audience_parse('a = 1)');
SELECT audience_parse('a < ''x''');
SELECT audience_parse('a IN ()');
SELECT audience_parse('a IN (1 2)');
SELECT audience_parse('a BETWEEN 1 OR 2');
SELECT audience_parse('a NOT = 1');
SELECT audience_parse('a = ''unterminated');
SELECT audience_parse('12abc = 1');
SELECT audience_parse('a = 1 b = 2');
SELECT audience_parse('a # 1');
SELECT audience_parse('@');
SELECT audience_parse('audience()');
SELECT audience_parse('"" = 1');
SELECT audience_parse('AND = 1');
SELECT audience_parse('性别 = ''女'' AND ?');
SELECT audience_parse(repeat('(', 300) || 'a' || repeat(')', 300));
SELECT audience_parse(repeat('NOT ', 300) || 'a');
SELECT length(audience_parse(repeat('(', 150) || 'a' || repeat(')', 150))) AS deep_but_allowed;
SELECT audience_parse('a' || repeat(' OR a', 2000));
SELECT length(audience_parse('a' || repeat(' OR a', 900))) AS long_chain_allowed;
SELECT audience_parse(NULL) IS NULL AS null_in_null_out;

-- fixture: 3000 customers with enumerated, boolean and numeric attributes (some missing)
CREATE TEMP TABLE aud_cust AS
SELECT g AS customer_key,
       (ARRAY['F', 'M', 'U'])[1 + (hashint4(g) & 3) % 3] AS gender,
       CASE WHEN g % 17 = 0 THEN NULL ELSE (ARRAY['上海', 'Beijing', 'Shenzhen', 'Hangzhou'])[1 + (hashint4(g * 7) & 7) % 4] END AS city,
       CASE WHEN g % 13 = 0 THEN NULL ELSE (hashint4(g * 3) & 15) < 4 END AS vip,
       CASE WHEN g % 11 = 0 THEN NULL ELSE round(((hashint4(g * 5) & 65535) / 65.535)::numeric, 1) END AS monetary,
       (hashint4(g * 11) & 7) AS orders
  FROM generate_series(1, 3000) g;
-- a lump of equal values, so that one value spans what would be several buckets
UPDATE aud_cust SET monetary = 500 WHERE customer_key % 10 = 3;
INSERT INTO tag_definition (tag_name, level1, level2, level3, value_type, rule_sql, owner) VALUES
  ('aud_gender', '客户信息', '基础信息', '基础信息', 'enum', 'SELECT customer_key, gender FROM pg_temp.aud_cust', 'test'),
  ('aud_city', '客户信息', '基础信息', '地理信息', 'enum', 'SELECT customer_key, city FROM pg_temp.aud_cust', 'test'),
  ('aud_vip', '消费者价值', '价值', '忠诚度', 'boolean', 'SELECT customer_key, vip FROM pg_temp.aud_cust', 'test'),
  ('aud_monetary', '消费者价值', '价值', '消费者价值', 'numeric', 'SELECT customer_key, monetary FROM pg_temp.aud_cust', 'test'),
  ('aud_orders', '客户行为数据', '营销行为', '营销响应', 'numeric', 'SELECT customer_key, orders FROM pg_temp.aud_cust', 'test');
SELECT evaluate_tags(ARRAY['aud_gender', 'aud_city', 'aud_vip', 'aud_monetary', 'aud_orders']) AS rows_written;
-- idempotent: the same data writes nothing
SELECT evaluate_tags(ARRAY['aud_gender', 'aud_city', 'aud_vip', 'aud_monetary', 'aud_orders']) AS rows_written_again;
SELECT tag_name, count(*) AS bitmaps, sum(customers) AS customers FROM tag_bitmap WHERE tag_name LIKE 'aud\_%' GROUP BY 1 ORDER BY 1;
SELECT b.tag_name, b.scale, b.customers, b.min_value, b.max_value, bsi_cardinality(b.bsi) AS in_index,
       (SELECT count(*) FROM tag_value v WHERE v.tag_name = b.tag_name AND v.valid_to IS NULL) AS current_values
  FROM tag_bsi b WHERE tag_name LIKE 'aud\_%' ORDER BY 1;
SELECT job, outcome, rows_written, detail -> 'tags' -> 'aud_vip' AS vip_detail
  FROM job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 2;

-- reference: the universe (dictionary keys and tagged customers) joined to the attributes; NOT is "not true"
CREATE TEMP TABLE aud_universe AS
SELECT customer_key FROM customer_key UNION SELECT customer_key FROM tag_value WHERE valid_to IS NULL;
CREATE TEMP VIEW aud_ref AS
SELECT u.customer_key, c.gender, c.city, c.vip, c.monetary, c.orders FROM aud_universe u LEFT JOIN aud_cust c USING (customer_key);
CREATE TEMP TABLE aud_cases (expr text, pred text);
INSERT INTO aud_cases VALUES
  ('aud_gender = F', 'gender = ''F'''),
  ('aud_gender <> ''F''', 'gender <> ''F'''),
  ('aud_city IN (''上海'', Beijing)', 'city IN (''上海'', ''Beijing'')'),
  ('aud_city NOT IN (''上海'', Beijing)', 'city NOT IN (''上海'', ''Beijing'')'),
  ('NOT aud_city IN (''上海'', Beijing)', 'NOT coalesce(city IN (''上海'', ''Beijing''), false)'),
  ('aud_vip', 'vip'),
  ('aud_vip = false', 'NOT vip'),
  ('NOT aud_vip', 'NOT coalesce(vip, false)'),
  ('aud_vip = yes AND aud_gender = M', 'vip AND gender = ''M'''),
  ('aud_monetary >= 500', 'monetary >= 500'),
  ('aud_monetary > 500', 'monetary > 500'),
  ('aud_monetary = 500', 'monetary = 500'),
  ('aud_monetary <> 500', 'monetary <> 500'),
  ('aud_monetary BETWEEN 100 AND 500', 'monetary BETWEEN 100 AND 500'),
  ('aud_monetary NOT BETWEEN 100 AND 500', 'monetary NOT BETWEEN 100 AND 500'),
  ('aud_orders IN (0, 7)', 'orders IN (0, 7)'),
  ('aud_orders NOT IN (0, 7)', 'orders NOT IN (0, 7)'),
  ('aud_city = Shenzhen AND aud_monetary >= 500 AND NOT aud_vip', 'city = ''Shenzhen'' AND monetary >= 500 AND NOT coalesce(vip, false)'),
  ('(aud_gender = F OR aud_orders >= 6) AND NOT (aud_city = Beijing OR aud_monetary < 100.5)',
   '(gender = ''F'' OR orders >= 6) AND NOT coalesce(city = ''Beijing'' OR monetary < 100.5, false)'),
  ('aud_gender = nobody', 'false'),
  ('NOT (aud_monetary >= 0 OR NOT aud_monetary >= 0)', 'false');
CREATE FUNCTION pg_temp.aud_check(e text, p text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE ref retail_mid.rbitmap;
BEGIN
    EXECUTE format('SELECT coalesce(retail_mid.rb_build_agg(customer_key), ''{}'') FROM pg_temp.aud_ref WHERE %s', p) INTO ref;
    RETURN retail_mid.audience(e) = ref AND retail_mid.audience_count(e) = retail_mid.rb_cardinality(ref);
END $$;
SELECT expr, pg_temp.aud_check(expr, pred) AS matches_sql FROM aud_cases;
SELECT audience_count('aud_city = Shenzhen AND aud_monetary >= 500 AND NOT aud_vip') AS three_tag_count,
       (SELECT count(*) FROM aud_ref WHERE city = 'Shenzhen' AND monetary >= 500 AND NOT coalesce(vip, false)) AS plain_sql;
-- numeric predicates are exact at every boundary: each operator at a sample of the values, +-0.05 and +-0.005
-- around them (between two representable values), and outside the range
SELECT count(*) AS comparisons,
       count(*) FILTER (WHERE NOT pg_temp.aud_check(format('aud_monetary %s %s', op, t), format('monetary %s %s', op, t))) AS wrong
  FROM (SELECT DISTINCT v.x AS t
          FROM (SELECT numeric_value AS e FROM tag_value WHERE tag_name = 'aud_monetary' AND valid_to IS NULL AND customer_key % 40 = 0
                UNION SELECT min_value FROM tag_bsi WHERE tag_name = 'aud_monetary'
                UNION SELECT max_value FROM tag_bsi WHERE tag_name = 'aud_monetary') edges,
               LATERAL (VALUES (edges.e), (edges.e - 0.05), (edges.e + 0.05), (edges.e - 0.005), (edges.e + 0.005)) v(x)
        UNION SELECT -1 UNION SELECT 5000) ts,
       unnest(ARRAY['<', '<=', '>', '>=', '=', '<>']) op;

-- changes are recorded with history; only the changed customers get new rows
UPDATE aud_cust SET city = 'Hangzhou' WHERE customer_key IN (1, 2, 3);
UPDATE aud_cust SET city = NULL WHERE customer_key = 4;
SELECT evaluate_tags(ARRAY['aud_city']) AS rows_written;
SELECT customer_key, value, valid_to IS NULL AS current FROM tag_value
 WHERE tag_name = 'aud_city' AND customer_key IN (1, 2, 3, 4) AND (valid_to IS NOT NULL OR value = 'Hangzhou')
 ORDER BY customer_key, valid_from, current;
SELECT pg_temp.aud_check('aud_city = Hangzhou', 'city = ''Hangzhou''') AS after_change;

-- saved audiences: versions, references, member view
SELECT save_audience('aud_high', 'aud_monetary >= 800') AS v1;
UPDATE aud_cust SET monetary = 900 WHERE customer_key = 11 * 5;  -- had no value (key % 11 = 0)
SELECT evaluate_tags(ARRAY['aud_monetary']) AS rows_written;
SELECT save_audience('aud_high', 'aud_monetary >= 800') AS v2;
SELECT name, version, customers, canonical_expression FROM audience_package WHERE name = 'aud_high' ORDER BY version;
SELECT audience_count('@aud_high') = (SELECT count(*) FROM aud_cust WHERE monetary >= 800) AS ref_latest,
       audience_count('audience(''aud_high'') AND NOT aud_vip') = (SELECT count(*) FROM aud_ref WHERE monetary >= 800 AND NOT coalesce(vip, false)) AS ref_combined;
SELECT (SELECT count(*) FROM audience_member WHERE audience_name = 'aud_high') AS members,
       (SELECT max(version) FROM audience_member WHERE audience_name = 'aud_high') AS version,
       (SELECT count(*) FROM audience_member m JOIN aud_cust c USING (customer_key)
         WHERE m.audience_name = 'aud_high' AND c.monetary < 800) AS wrong_members;

-- evaluation errors point at the offending term
SELECT audience_count('aud_gender = F AND nosuch = 1');
SELECT audience_count('@nosuch OR aud_vip');
SELECT audience_count('aud_gender < 3');
SELECT audience_count('aud_gender BETWEEN 1 AND 2');
SELECT audience_count('aud_monetary');
SELECT audience_count('aud_monetary = ''abc''');
SELECT audience_count('aud_city');
SELECT audience_count('aud_vip = maybe');
SELECT audience_count('aud_vip AND (');
SELECT save_audience('', 'aud_vip');
SELECT evaluate_tags(ARRAY['nosuch']);

-- a broken rule fails alone: a WARNING, a job_log entry, and the other tags still evaluate
INSERT INTO tag_definition (tag_name, level1, level2, value_type, rule_sql, owner) VALUES
  ('aud_broken', '其他', '其他', 'numeric', 'SELECT customer_key, gender FROM pg_temp.aud_cust', 'test'),
  ('aud_dup', '其他', '其他', 'enum', 'SELECT 1, ''a'' UNION ALL SELECT 1, ''b''', 'test');
SELECT evaluate_tags(ARRAY['aud_broken', 'aud_dup', 'aud_gender']) AS rows_written;
SELECT jsonb_array_length(detail -> 'failed') AS failed_tags, detail -> 'failed' -> 1 ->> 'sqlstate' AS dup_state
  FROM job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1;

-- the taxonomy is seeded with the four-level industry template
SELECT level1, count(*) AS nodes FROM tag_taxonomy GROUP BY level1 ORDER BY min(description);
DELETE FROM tag_definition WHERE tag_name LIKE 'aud\_%';
DELETE FROM audience_package WHERE name = 'aud_high';
SELECT refresh_customer_universe() >= 0 AS universe_refreshed;
