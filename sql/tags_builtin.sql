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

-- the built-in definitions: eleven tags over three sources
SELECT source, count(*) AS tags, string_agg(tag_name || ':' || value_type || CASE WHEN value_type = 'numeric' THEN '/' || numeric_scale ELSE '' END, ', ' ORDER BY tag_name) AS definitions
  FROM tag_definition WHERE tag_name ~ '^(rfm|aipl|clv)_' GROUP BY source ORDER BY source;

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

-- every tag equals its source, computed in plain SQL (numeric tags rounded to their scale)
CREATE TEMP VIEW tagb_expected AS
SELECT 'rfm_segment' AS tag_name, customer_key, segment AS value FROM rfm_customer_current WHERE segment IS NOT NULL
UNION ALL SELECT 'rfm_r_score', customer_key, r_score::text FROM rfm_customer_current
UNION ALL SELECT 'rfm_f_score', customer_key, f_score::text FROM rfm_customer_current
UNION ALL SELECT 'rfm_m_score', customer_key, m_score::text FROM rfm_customer_current
UNION ALL SELECT 'rfm_recency_days', customer_key, recency_days::text FROM rfm_customer_current
UNION ALL SELECT 'rfm_frequency', customer_key, frequency::text FROM rfm_customer_current
UNION ALL SELECT 'rfm_monetary', customer_key, round(monetary::numeric, 2)::text FROM rfm_customer_current
UNION ALL SELECT 'aipl_stage', customer_key, stage FROM aipl_customer_current
UNION ALL SELECT 'clv_p_alive', customer_key, round(p_alive::numeric, 4)::text FROM clv_customer_score
UNION ALL SELECT 'clv_expected_purchases', customer_key, round(expected_purchases::numeric, 4)::text FROM clv_customer_score
UNION ALL SELECT 'clv_value', customer_key, round(clv::numeric, 2)::text FROM clv_customer_score;
CREATE TEMP VIEW tagb_actual AS
SELECT tag_name, customer_key, value FROM tag_value WHERE valid_to IS NULL AND tag_name ~ '^(rfm|aipl|clv)_';
SELECT e.tag_name, e.n AS source_rows,
       (SELECT count(*) FROM (SELECT * FROM tagb_expected x WHERE x.tag_name = e.tag_name
                              EXCEPT SELECT * FROM tagb_actual a WHERE a.tag_name = e.tag_name) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM tagb_actual a WHERE a.tag_name = e.tag_name
                              EXCEPT SELECT * FROM tagb_expected x WHERE x.tag_name = e.tag_name) d) AS extra
  FROM (SELECT tag_name, count(*) > 0 AS n FROM tagb_expected GROUP BY tag_name) e ORDER BY 1;
-- the values of this brand's customers: every segment and stage occurs, CLV quantities are in range
SELECT count(DISTINCT r.segment) >= 5 AS segments, count(DISTINCT a.stage) AS stages,
       bool_and(c.p_alive BETWEEN 0 AND 1) AS p_alive_in_0_1, bool_and(c.expected_purchases >= 0) AS purchases_non_negative
  FROM rfm_customer_current r LEFT JOIN aipl_customer_current a USING (customer_key)
  LEFT JOIN clv_customer_score c USING (customer_key) WHERE r.brand = 'tagb_t';

-- audiences over them count right (plain SQL over the sources)
CREATE FUNCTION pg_temp.tagb_count(p text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM retail_mid.rfm_customer_current r
               FULL JOIN retail_mid.aipl_customer_current a USING (customer_key)
               FULL JOIN retail_mid.clv_customer_score c USING (customer_key) WHERE ' || p INTO n;
    RETURN n;
END $$;
SELECT e, audience_count(e) = pg_temp.tagb_count(p) AS matches_sql, pg_temp.tagb_count(p) > 0 AS non_empty
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
  FROM tag_value v JOIN tag_value n ON n.tag_name = v.tag_name AND n.customer_key = v.customer_key AND n.valid_to IS NULL
 WHERE v.tag_name = 'rfm_recency_days' AND v.valid_to IS NOT NULL;
SELECT (SELECT count(*) FROM (SELECT * FROM tagb_expected WHERE tag_name IN ('rfm_segment', 'rfm_recency_days')
                              EXCEPT SELECT * FROM tagb_actual) d)
     + (SELECT count(*) FROM (SELECT * FROM tagb_actual WHERE tag_name IN ('rfm_segment', 'rfm_recency_days')
                              EXCEPT SELECT * FROM tagb_expected) d) AS differences_after_change;

-- a broken expression fails alone: its source is then read once per tag to find it, the others are written
INSERT INTO tag_definition (tag_name, level1, level2, value_type, source, expression, owner) VALUES
  ('tagb_bad', '其他', '其他', 'numeric', 'retail_mid.clv_customer_score', 'brand', 'test'),
  ('tagb_ok', '其他', '其他', 'boolean', 'retail_mid.clv_customer_score', 'p_alive > 0.9', 'test');
SET client_min_messages = error;
SELECT evaluate_tags(ARRAY['tagb_bad', 'tagb_ok', 'clv_value']) >= 0 AS evaluated;
RESET client_min_messages;
SELECT detail -> 'source_scans' AS source_scans, detail -> 'failed' -> 0 ->> 'tag' AS failed_tag,
       detail -> 'failed' -> 0 ->> 'sqlstate' AS sqlstate, detail -> 'tags' ? 'tagb_ok' AS ok_written
  FROM job_log WHERE job = 'evaluate_tags' ORDER BY job_id DESC LIMIT 1;
SELECT audience_count('tagb_ok') = (SELECT count(*) FROM clv_customer_score WHERE p_alive > 0.9) AS ok_tag_right;

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
