-- security_escalation: SQL stored in the registries runs with no more rights than its author's (issue 19, finding 2).
-- An administrator who is not a superuser plants tag rules, a metric qualifier and quality expressions that would make
-- her a superuser or create a table where only a superuser can; a superuser then runs the jobs. Every payload fails
-- (42501), she is still no superuser, no table appears, ordinary rules of the same author still work, and
-- multi-statement text is refused (42601).
SET client_min_messages = warning;  -- the NOTICEs of CREATE EXTENSION depend on which test ran first
CREATE EXTENSION IF NOT EXISTS retail_mid CASCADE;
RESET client_min_messages;
CREATE ROLE esc_mallory LOGIN IN ROLE retail_mid_admin;
CREATE ROLE esc_former LOGIN IN ROLE retail_mid_admin;
CREATE ROLE esc_analyst LOGIN IN ROLE retail_mid_analyst;
CREATE SCHEMA esc AUTHORIZATION esc_mallory;
SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_mallory';

-- the administrator's payloads, in a schema of her own: each does what only a superuser may
SET ROLE esc_mallory;
CREATE FUNCTION esc.promote() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE esc_mallory SUPERUSER';
    RETURN true;
END;
$$;
CREATE FUNCTION esc.plant_table() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'CREATE TABLE public.esc_planted (x int)';
    RETURN true;
END;
$$;
-- takes back the session user's role (the superuser's) inside the statement, then promotes
CREATE FUNCTION esc.hijack() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('role', session_user, true);
    EXECUTE 'ALTER ROLE esc_mallory SUPERUSER';
    RETURN true;
END;
$$;
CREATE FUNCTION esc.hijack_authorization() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('session_authorization', session_user, true);
    EXECUTE 'ALTER ROLE esc_mallory SUPERUSER';
    RETURN true;
END;
$$;
CREATE TABLE esc.lines (dt date, brand text, amount numeric, note text);
INSERT INTO esc.lines VALUES ('2026-03-01', 'esc_a', 10, 'x'), ('2026-03-01', 'esc_a', 5, ''), ('2026-03-02', 'esc_a', 7, 'y');

-- tags: planted rules, one ordinary rule, multi-statement text
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql) VALUES
 ('esc_promote', '其他', '其他', 'boolean', 'SELECT 1, esc.promote()'),
 ('esc_hijack', '其他', '其他', 'boolean', 'SELECT 1, esc.hijack()'),
 ('esc_hijack_auth', '其他', '其他', 'boolean', 'SELECT 1, esc.hijack_authorization()'),
 ('esc_multi', '其他', '其他', 'boolean', 'SELECT 1, true) AS s(customer_key, value); CREATE TABLE public.esc_multi (x int); SELECT * FROM (SELECT 1, true'),
 ('esc_ok', '其他', '其他', 'boolean', 'SELECT 1, true');
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, source, expression) VALUES
 ('esc_plant', '其他', '其他', 'boolean', '(SELECT 1 AS customer_key)', 'esc.plant_table()'),
 ('esc_expr_multi', '其他', '其他', 'boolean', '(SELECT 1 AS customer_key)', 'true); CREATE TABLE public.esc_multi (x int); SELECT (true');
SELECT tag_name, author FROM retail_mid.tag_definition WHERE tag_name LIKE 'esc\_%' ORDER BY 1;
-- nobody attributes SQL to a more powerful role
\set VERBOSITY sqlstate
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, author)
VALUES ('esc_forged', '其他', '其他', 'boolean', 'SELECT 1, esc.promote()', session_user::regrole);
UPDATE retail_mid.tag_definition SET author = session_user::regrole WHERE tag_name = 'esc_promote';
\set VERBOSITY default
-- a tag of another administrator, who then leaves the administrators, and one whose author is dropped
SET ROLE esc_former;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql) VALUES
 ('esc_former', '其他', '其他', 'boolean', 'SELECT 2, true');
RESET ROLE;
CREATE ROLE esc_gone LOGIN IN ROLE retail_mid_admin;
SET ROLE esc_gone;
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql) VALUES
 ('esc_gone', '其他', '其他', 'boolean', 'SELECT 3, true');
RESET ROLE;
REVOKE retail_mid_admin FROM esc_former;
DROP ROLE esc_gone;

-- the superuser's nightly run
SELECT retail_mid.evaluate_tags(ARRAY['esc_promote', 'esc_hijack', 'esc_hijack_auth', 'esc_multi', 'esc_ok', 'esc_plant',
                                      'esc_expr_multi', 'esc_former', 'esc_gone']) AS values_written;
SELECT f->>'tag' AS tag, f->>'sqlstate' AS sqlstate
  FROM retail_mid.job_log l, jsonb_array_elements(l.detail->'failed') f
 WHERE l.job_id = (SELECT max(job_id) FROM retail_mid.job_log WHERE job = 'evaluate_tags') ORDER BY 1;
SELECT tag_name, customer_key, value FROM retail_mid.tag_value WHERE tag_name LIKE 'esc\_%' ORDER BY 1, 2;
SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_mallory';
SELECT to_regclass('public.esc_planted') AS planted, to_regclass('public.esc_multi') AS multi;
SELECT current_user = session_user AS back_to_the_caller, current_setting('search_path') AS search_path;

-- metric registry: a qualifier that is harmless when the table is generated, then turned into a payload
SET ROLE esc_mallory;
INSERT INTO retail_mid.metric_atomic (atomic, dwd_table, time_column, expression, unit, additivity) VALUES
 ('esc_amount', 'esc.lines', 'dt', 'sum(t.amount)', 'CNY', 'additive');
INSERT INTO retail_mid.metric_qualifier VALUES ('esc_q', 't.amount > 0', 'Planted.');
INSERT INTO retail_mid.metric_granularity VALUES ('esc_g', '{brand}', 'Brand.');
INSERT INTO retail_mid.metric_derived (atomic, qualifier, period, granularity) VALUES ('esc_amount', 'esc_q', '1d', 'esc_g');
-- multi-statement text is refused when it is written
INSERT INTO retail_mid.metric_qualifier VALUES ('esc_multi', 'true LIMIT 0; CREATE TABLE public.esc_multi (x int); SELECT 1 WHERE true', 'Planted.');
INSERT INTO retail_mid.metric_composite VALUES ('esc_comp', 'esc_g', '{esc_q_esc_amount_1d}); CREATE TABLE public.esc_multi (x int); SELECT (1', 'CNY');
RESET ROLE;
SELECT retail_mid.metric_generate('esc_g', '2026-03-01', '2026-03-02') AS rows_written;
SELECT dt, brand, esc_q_esc_amount_1d FROM retail_mid.dws_metric_esc_g ORDER BY 1, 2;
SET ROLE esc_mallory;
UPDATE retail_mid.metric_qualifier SET predicate = 'esc.promote()' WHERE qualifier = 'esc_q';
RESET ROLE;
SELECT retail_mid.metric_refresh('2026-03-01', '2026-03-02');
SET ROLE esc_mallory;
UPDATE retail_mid.metric_qualifier SET predicate = 'esc.hijack()' WHERE qualifier = 'esc_q';
RESET ROLE;
SELECT retail_mid.metric_refresh('2026-03-01', '2026-03-02');
SELECT * FROM retail_mid.metric_reconcile('esc_g', '2026-03-01', '2026-03-02');
SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_mallory';
-- metric_compile_predicate: one expression only, and not for PUBLIC
SELECT retail_mid.metric_compile_predicate('true LIMIT 0; CREATE TABLE public.esc_multi (x int); SELECT 1 WHERE true', 'esc.lines');
SELECT retail_mid.metric_compile_predicate('t.amount > 0', 'esc.lines') AS compiles;
SELECT has_function_privilege('public', 'retail_mid.metric_compile_predicate(text, regclass)', 'EXECUTE') AS public_may_execute,
       has_function_privilege('esc_analyst', 'retail_mid.metric_compile_predicate(text, regclass)', 'EXECUTE') AS analyst_may_execute;
SET ROLE esc_analyst;
SELECT retail_mid.metric_compile_predicate('true', 'retail_mid.customer_key');
RESET ROLE;
SELECT to_regclass('public.esc_multi') AS multi;

-- quality rules: payloads in the one scan of a table, one ordinary rule next to them
SET ROLE esc_mallory;
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES
 ('esc_ok', 'esc.lines', 'expression', '{"expression": "t.amount > 0"}');
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES
 ('esc_promote', 'esc.lines', 'expression', '{"expression": "esc.promote()"}');
RESET ROLE;
SELECT retail_mid.quality_evaluate('esc.lines', '2026-03-03 00:00+00') > 0 AS evaluated;
SET ROLE esc_mallory;
UPDATE retail_mid.quality_rule SET parameters = '{"expression": "esc.plant_table()"}' WHERE rule_name = 'esc_promote';
INSERT INTO retail_mid.quality_rule (rule_name, table_name, template, parameters) VALUES
 ('esc_multi', 'esc.lines', 'expression', '{"expression": "true) FROM esc.lines t; CREATE TABLE public.esc_multi (x int); SELECT (true"}');
RESET ROLE;
SELECT retail_mid.quality_evaluate('esc.lines', '2026-03-03 00:00+00') > 0 AS evaluated;
-- the ordinary rule alone still evaluates (as its author)
UPDATE retail_mid.quality_rule SET enabled = false WHERE rule_name = 'esc_promote';
SELECT retail_mid.quality_evaluate('esc.lines', '2026-03-03 00:00+00') > 0 AS evaluated;
SELECT rule_name, observed, outcome FROM retail_mid.quality_result WHERE rule_name LIKE 'esc\_%' ORDER BY 1;
SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_mallory';
SELECT to_regclass('public.esc_planted') AS planted, to_regclass('public.esc_multi') AS multi;

-- the section helpers: a wrong token is refused, nobody climbs to a role whose rights they lack
SELECT retail_mid.registry_leave(42);
SET ROLE esc_mallory;
\set VERBOSITY sqlstate
SELECT retail_mid.registry_enter(session_user::regrole);
\set VERBOSITY default
RESET ROLE;
SELECT has_function_privilege('public', 'retail_mid.registry_enter(regrole)', 'EXECUTE') AS public_may_enter,
       has_function_privilege('public', 'retail_mid.run_logged(text, text)', 'EXECUTE') AS public_may_run_logged,
       has_function_privilege('retail_mid_admin', 'retail_mid.run_logged(text, text)', 'EXECUTE') AS admin_may_run_logged;
SELECT retail_mid.registry_check_sql('t.a = 1', 'expression') AS one_expression,
       retail_mid.registry_check_sql('(SELECT 1 AS customer_key)', 'relation') AS one_relation,
       retail_mid.registry_check_sql('SELECT 1, true', 'query') AS one_query;
SELECT retail_mid.registry_check_sql('1), (2', 'expression', 'x');
SELECT retail_mid.registry_check_sql('retail_mid.customer_key AS s, pg_authid', 'relation', 'x');
SELECT retail_mid.registry_check_sql('1 -- a comment', 'expression', 'x') AS with_comment;
SELECT retail_mid.registry_check_sql('WITH d AS (DELETE FROM esc.lines RETURNING 1) SELECT 1', 'query', 'x');

-- the restore path (issue 13): pg_restore loads rows with COPY ... FROM STDIN and the extension's triggers then keep
-- restored rows as dumped, but only in a superuser session. An administrator's own COPY ... FROM STDIN is an
-- ordinary insert: she cannot forge a superuser as the author of a tag rule or a qualifier, nor slip a
-- multi-statement quality expression past the checks.
CREATE ROLE esc_root SUPERUSER;
SET ROLE esc_mallory;
\set VERBOSITY sqlstate
COPY retail_mid.tag_definition (tag_name, level1, level2, value_type, rule_sql, author) FROM STDIN;
esc_copy_forged	其他	其他	boolean	SELECT 1, esc.promote()	esc_root
\.
COPY retail_mid.metric_qualifier (qualifier, predicate, author) FROM STDIN;
esc_copy_q	esc.promote()	esc_root
\.
COPY retail_mid.quality_rule (rule_name, table_name, template, parameters) FROM STDIN;
esc_copy_multi	esc.lines	expression	{"expression": "true) FROM esc.lines t; CREATE TABLE public.esc_multi (x int); SELECT (true"}
\.
\set VERBOSITY default
RESET ROLE;
SELECT count(*) AS copied FROM retail_mid.tag_definition WHERE tag_name = 'esc_copy_forged';
SELECT count(*) AS copied FROM retail_mid.metric_qualifier WHERE qualifier = 'esc_copy_q';
SELECT count(*) AS copied FROM retail_mid.quality_rule WHERE rule_name = 'esc_copy_multi';
DROP ROLE esc_root;

-- clean up
DELETE FROM retail_mid.quality_result WHERE rule_name LIKE 'esc\_%';
DELETE FROM retail_mid.quality_rule WHERE rule_name LIKE 'esc\_%';
DELETE FROM retail_mid.metric_derived WHERE granularity = 'esc_g';
DELETE FROM retail_mid.metric_coverage WHERE granularity = 'esc_g';
DELETE FROM retail_mid.metric_granularity WHERE granularity = 'esc_g';
DELETE FROM retail_mid.metric_qualifier WHERE qualifier = 'esc_q';
DELETE FROM retail_mid.metric_atomic WHERE atomic = 'esc_amount';
DROP TABLE retail_mid.dws_metric_esc_g, retail_mid.dws_metric_esc_g_1d;
DELETE FROM retail_mid.tag_definition WHERE tag_name LIKE 'esc\_%';
DROP SCHEMA esc CASCADE;
DROP ROLE esc_mallory, esc_former, esc_analyst;
