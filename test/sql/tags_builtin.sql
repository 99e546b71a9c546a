-- tags_builtin: RFM segment and scores, AIPL stage and CLV as tags, evaluated one scan per source, equal to
-- their source views (plain SQL), usable in audience expressions, idempotent, with history, and bad input
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
SELECT retail_mid.generate_synthetic(seed => 77, customers => 400, days => 200, orders_per_day => 30, stores => 3,
                                     skus => 50, start_date => '2024-01-01', brand => 'tagb_t') > 0 AS generated;
SELECT retail_mid.refresh('2024-01-01', '2024-07-18') > 0 AS refreshed;
SELECT retail_mid.rfm_refresh('tagb_t', '2024-06-30', 90) > 0 AS rfm_scored;
SELECT retail_mid.aipl_refresh('tagb_t', '2024-06-01', '2024-06-30') > 0 AS aipl_staged;
SELECT retail_mid.clv_score_refresh('2024-06-30', 26, 0.002, 'tagb_t') > 0 AS clv_scored;
RESET client_min_messages;
SET search_path = retail_mid, public;

-- the built-in definitions: eleven tags over three sources, all of scope brand
SELECT source, scope, count(*) AS tags, string_agg(tag_name || ':' || value_type || CASE WHEN value_type = 'numeric' THEN '/' || numeric_scale ELSE '' END, ', ' ORDER BY tag_name) AS definitions
  FROM tag_definition WHERE tag_name ~ '^(rfm|aipl|clv)_' GROUP BY source, scope ORDER BY source;

-- one evaluation: 16 tags (the eleven and the five DWS seed tags) in four scans, one per source
SET client_min_messages = warning;  -- the per-tag counts include other tests' customers
SELECT evaluate_tags(ARRAY(SELECT tag_name FROM tag_definition
                            WHERE tag_name ~ '^(rfm|aipl|clv)_' OR tag_name IN ('monetary_td', 'orders_td', 'repeat_buyer', 'returner', 'lifecycle'))) > 0 AS written;
RESET client_min_messages;
SELECT detail -> 'source_scans' AS source_scans, jsonb_array_length(detail -> 'sources') AS sources,
       (SELECT string_agg((s ->> 'source') || ' ' || (s ->> 'tags') || ' tags/' || (s ->> 'scans') || ' scan', '; ' ORDER BY s ->> 'source')
          FROM jsonb_array_elements(detail -> 'sources') s) AS per_source,
       jsonb_array_length(detail -> 'failed') AS failed
  FROM job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1;

-- every tag equals its source per brand and customer, computed in plain SQL from the models' tables (numeric
-- tags rounded to their scale): the latest ten_segment snapshot per brand, the brand's latest AIPL day, the
-- brand's CLV fit
CREATE TEMP VIEW tagb_rfm AS
SELECT DISTINCT ON (brand, customer_key) * FROM rfm_snapshot WHERE map_name = 'ten_segment' ORDER BY brand, customer_key, as_of DESC, window_days;
CREATE TEMP VIEW tagb_aipl AS
SELECT s.brand, s.customer_key, s.stage::text AS stage FROM dws_aipl_customer_stage_1d s
  JOIN (SELECT brand, max(dt) AS dt FROM dws_aipl_customer_stage_1d GROUP BY brand) m ON m.brand = s.brand AND m.dt = s.dt;
CREATE TEMP VIEW tagb_expected AS
SELECT 'rfm_segment' AS tag_name, brand, customer_key, segment AS value FROM tagb_rfm WHERE segment IS NOT NULL
UNION ALL SELECT 'rfm_r_score', brand, customer_key, r_score::text FROM tagb_rfm
UNION ALL SELECT 'rfm_f_score', brand, customer_key, f_score::text FROM tagb_rfm
UNION ALL SELECT 'rfm_m_score', brand, customer_key, m_score::text FROM tagb_rfm
UNION ALL SELECT 'rfm_recency_days', brand, customer_key, recency_days::text FROM tagb_rfm
UNION ALL SELECT 'rfm_frequency', brand, customer_key, frequency::text FROM tagb_rfm
UNION ALL SELECT 'rfm_monetary', brand, customer_key, round(monetary::numeric, 2)::text FROM tagb_rfm
UNION ALL SELECT 'aipl_stage', brand, customer_key, stage FROM tagb_aipl
UNION ALL SELECT 'clv_p_alive', brand, customer_key, round(p_alive::numeric, 4)::text FROM clv_customer_score WHERE brand <> '*'
UNION ALL SELECT 'clv_expected_purchases', brand, customer_key, round(expected_purchases::numeric, 4)::text FROM clv_customer_score WHERE brand <> '*'
UNION ALL SELECT 'clv_value', brand, customer_key, round(clv::numeric, 2)::text FROM clv_customer_score WHERE brand <> '*';
CREATE TEMP VIEW tagb_actual AS
SELECT tag_name, brand, customer_key, value FROM tag_value WHERE valid_to IS NULL AND tag_name ~ '^(rfm|aipl|clv)_';
-- the seed DWS tags: per brand and customer, from dws_trade_customer_td (lifecycle relative to the brand's last order)
SELECT t.tag_name,
       (SELECT count(*) FROM (SELECT brand, customer_key, CASE t.tag_name WHEN 'monetary_td' THEN round(net_amount, 2)::text
                                                                         WHEN 'orders_td' THEN orders::text
                                                                         WHEN 'repeat_buyer' THEN (orders >= 2)::text
                                                                         WHEN 'returner' THEN (return_amount <> 0)::text
                                                                         ELSE CASE WHEN last_order_date >= e - 90 THEN CASE WHEN first_order_date >= e - 90 THEN 'new' ELSE 'active' END
                                                                                   WHEN last_order_date >= e - 365 THEN 'lapsing' ELSE 'churned' END END
                                FROM (SELECT *, max(last_order_date) OVER (PARTITION BY brand) AS e FROM dws_trade_customer_td) d
                              EXCEPT SELECT brand, customer_key, value FROM tag_value WHERE tag_name = t.tag_name AND valid_to IS NULL) x) AS missing,
       (SELECT count(*) FROM tag_value v WHERE v.tag_name = t.tag_name AND v.valid_to IS NULL) = (SELECT count(*) FROM dws_trade_customer_td) AS same_count
  FROM unnest(ARRAY['lifecycle', 'monetary_td', 'orders_td', 'repeat_buyer', 'returner']) t(tag_name);
SELECT e.tag_name, e.n AS source_rows,
       (SELECT count(*) FROM (SELECT * FROM tagb_expected x WHERE x.tag_name = e.tag_name
                              EXCEPT SELECT * FROM tagb_actual a WHERE a.tag_name = e.tag_name) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM tagb_actual a WHERE a.tag_name = e.tag_name
                              EXCEPT SELECT * FROM tagb_expected x WHERE x.tag_name = e.tag_name) d) AS extra
  FROM (SELECT tag_name, count(*) > 0 AS n FROM tagb_expected GROUP BY tag_name) e ORDER BY 1;
-- the values of this brand's customers: every segment and stage occurs, CLV quantities are in range
SELECT count(DISTINCT r.segment) >= 5 AS segments, count(DISTINCT a.stage) AS stages,
       bool_and(c.p_alive BETWEEN 0 AND 1) AS p_alive_in_0_1, bool_and(c.expected_purchases >= 0) AS purchases_non_negative
  FROM (WITH x AS MATERIALIZED (SELECT * FROM rfm_customer_current WHERE brand = 'tagb_t') SELECT * FROM x) r
  LEFT JOIN (WITH x AS MATERIALIZED (SELECT * FROM aipl_customer_current WHERE brand = 'tagb_t') SELECT * FROM x) a USING (customer_key)
  LEFT JOIN (SELECT * FROM clv_customer_score WHERE brand = 'tagb_t') c USING (customer_key);

-- audiences over them in the context of the brand count right (plain SQL over the brand's rows of the sources)
CREATE FUNCTION pg_temp.tagb_count(p text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE 'WITH r AS MATERIALIZED (SELECT * FROM tagb_rfm WHERE brand = ''tagb_t''),
                  a AS MATERIALIZED (SELECT * FROM tagb_aipl WHERE brand = ''tagb_t''),
                  c AS MATERIALIZED (SELECT * FROM retail_mid.clv_customer_score WHERE brand = ''tagb_t'')
             SELECT count(*) FROM r FULL JOIN a USING (customer_key) FULL JOIN c USING (customer_key) WHERE ' || p INTO n;
    RETURN n;
END $$;
SELECT e, audience_count(e, 'tagb_t') = pg_temp.tagb_count(p) AS matches_sql, pg_temp.tagb_count(p) > 0 AS non_empty
  FROM (VALUES
    ($$rfm_segment = 'Champions' AND aipl_stage IN ('P', 'L')$$, $$r.segment = 'Champions' AND a.stage IN ('P', 'L')$$),
    ($$rfm_segment IN ('At Risk', 'Hibernating') AND NOT aipl_stage = 'L'$$,
     $$r.segment IN ('At Risk', 'Hibernating') AND a.stage IS DISTINCT FROM 'L'$$),
    ($$clv_p_alive >= 0.5 AND clv_value > 50 AND rfm_r_score <= 3$$,
     $$round(c.p_alive::numeric, 4) >= 0.5 AND round(c.clv::numeric, 2) > 50 AND r.r_score <= 3$$),
    ($$clv_expected_purchases BETWEEN 1 AND 3 OR rfm_monetary >= 500$$,
     $$round(c.expected_purchases::numeric, 4) BETWEEN 1 AND 3 OR round(r.monetary::numeric, 2) >= 500$$)) v(e, p);

-- re-evaluating unchanged sources writes nothing; a later RFM snapshot changes some values, with history
SET client_min_messages = warning;
SELECT evaluate_tags(ARRAY(SELECT tag_name FROM tag_definition WHERE tag_name ~ '^(rfm|aipl|clv)_')) AS rows_written_again;
SELECT retail_mid.rfm_refresh('tagb_t', '2024-07-18', 90) > 0 AS rfm_rescored;
SELECT evaluate_tags(ARRAY['rfm_segment', 'rfm_recency_days']) > 0 AS changes_written;
RESET client_min_messages;
SELECT count(*) > 0 AS closed_values, bool_and(v.valid_to = n.valid_from) AS closed_when_reopened
  FROM tag_value v JOIN tag_value n ON n.tag_name = v.tag_name AND n.brand = v.brand AND n.customer_key = v.customer_key AND n.valid_to IS NULL
 WHERE v.tag_name = 'rfm_recency_days' AND v.valid_to IS NOT NULL;
SELECT (SELECT count(*) FROM (SELECT * FROM tagb_expected WHERE tag_name IN ('rfm_segment', 'rfm_recency_days')
                              EXCEPT SELECT * FROM tagb_actual) d)
     + (SELECT count(*) FROM (SELECT * FROM tagb_actual WHERE tag_name IN ('rfm_segment', 'rfm_recency_days')
                              EXCEPT SELECT * FROM tagb_expected) d) AS differences_after_change;

-- a broken expression fails alone: its source is then read once per tag to find it, the others are written. A
-- brand tag whose source has no brand column fails (42703), so does one whose rows lack a brand (23502), and a
-- source shared by tags of both scopes is read once per scope
INSERT INTO tag_definition (tag_name, level1, level2, value_type, source, expression, owner) VALUES
  ('tagb_bad', '其他', '其他', 'numeric', 'retail_mid.clv_customer_score', 'brand', 'test'),
  ('tagb_ok', '其他', '其他', 'boolean', 'retail_mid.clv_customer_score', 'p_alive > 0.9', 'test');
INSERT INTO tag_definition (tag_name, level1, level2, value_type, source, expression, rule_sql, owner, scope) VALUES
  ('tagb_nobrand', '其他', '其他', 'boolean', '(SELECT customer_key, p_alive FROM retail_mid.clv_customer_score)', 'p_alive > 0.5', NULL, 'test', 'brand'),
  ('tagb_nullbrand', '其他', '其他', 'boolean', NULL, NULL, 'SELECT customer_key, true, NULL::text AS brand FROM retail_mid.clv_customer_score', 'test', 'brand'),
  ('tagb_ok_brand', '其他', '其他', 'boolean', 'retail_mid.clv_customer_score', 'p_alive > 0.9', NULL, 'test', 'brand');
SET client_min_messages = error;
SELECT evaluate_tags(ARRAY['tagb_bad', 'tagb_ok', 'clv_value', 'tagb_nobrand', 'tagb_nullbrand', 'tagb_ok_brand']) >= 0 AS evaluated;
RESET client_min_messages;
SELECT detail -> 'source_scans' AS source_scans, f ->> 'tag' AS failed_tag, f ->> 'sqlstate' AS sqlstate, f ->> 'error' AS error,
       detail -> 'tags' ? 'tagb_ok' AND detail -> 'tags' ? 'tagb_ok_brand' AS ok_written
  FROM (SELECT * FROM job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1) l, jsonb_array_elements(l.detail -> 'failed') f ORDER BY 2;
SELECT audience_count('tagb_ok') = (SELECT count(*) FROM clv_customer_score WHERE p_alive > 0.9) AS ok_tag_right,
       audience_count('tagb_ok_brand', 'tagb_t') = (SELECT count(*) FROM clv_customer_score WHERE p_alive > 0.9 AND brand = 'tagb_t') AS ok_brand_tag_right,
       (SELECT count(*) FROM tag_value WHERE tag_name = 'tagb_ok_brand' AND brand = 'tagb_t') = (SELECT count(*) FROM clv_customer_score WHERE brand = 'tagb_t') AS one_value_per_brand_customer;

-- bad definitions and arguments
INSERT INTO tag_definition (tag_name, level1, level2, value_type, rule_sql, source, expression) VALUES
  ('tagb_both', '其他', '其他', 'enum', 'SELECT 1, 2', 'retail_mid.clv_customer_score', 'brand');
INSERT INTO tag_definition (tag_name, level1, level2, value_type, source) VALUES
  ('tagb_half', '其他', '其他', 'enum', 'retail_mid.clv_customer_score');
SELECT tag_eval_scan(ARRAY['tagb_ok', 'rfm_segment']);
SELECT clv_score_refresh(NULL);
SELECT clv_score_refresh('2024-06-30', 0);
SELECT clv_score_refresh('2024-06-30', 26, 'NaN');
SELECT clv_score_refresh('2024-06-30', 26, 1);
SELECT clv_score_refresh('1999-01-01', 26, 0.002, 'tagb_t');
DELETE FROM tag_definition WHERE tag_name LIKE 'tagb\_%';
