-- governance/quality.sql: data quality rules as data, checked in one scan per table, with results, history and scores.

-- ----------------------------------------------------------------- the two C aggregates
CREATE FUNCTION retail_mid.quality_profile_transfn(internal, tid, VARIADIC "any") RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_profile_transfn(internal, tid, "any") IS 'Transition function of quality_profile.';
CREATE FUNCTION retail_mid.quality_profile_combinefn(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_profile_combinefn(internal, internal) IS 'Combine function of quality_profile.';
CREATE FUNCTION retail_mid.quality_profile_serialfn(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_profile_serialfn(internal) IS 'Serial function of quality_profile.';
CREATE FUNCTION retail_mid.quality_profile_deserialfn(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_profile_deserialfn(bytea, internal) IS 'Deserial function of quality_profile; rejects malformed bytes.';
CREATE FUNCTION retail_mid.quality_profile_finalfn(internal, tid, VARIADIC "any") RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_profile_finalfn(internal, tid, "any") IS 'Final function of quality_profile.';

CREATE AGGREGATE retail_mid.quality_profile(row_id tid, VARIADIC "any") (
    SFUNC = retail_mid.quality_profile_transfn, STYPE = internal,
    FINALFUNC = retail_mid.quality_profile_finalfn, FINALFUNC_EXTRA, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.quality_profile_combinefn,
    SERIALFUNC = retail_mid.quality_profile_serialfn, DESERIALFUNC = retail_mid.quality_profile_deserialfn,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.quality_profile(tid, "any") IS 'Profiles a table in one scan: per boolean argument the count of true values (rule violations) and the 5 smallest row ids among them; per numeric argument n, nulls, non-finite values, sum, mean, stddev, min, max. Returns jsonb {"rows", "columns": [...]}. At most 98 profiled arguments per call.';

CREATE FUNCTION retail_mid.quality_profile_state_rows(bytea) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_profile_state_rows(bytea) IS 'Validates a serialized quality_profile state as its deserializer does and returns its row count (for diagnosis and tests).';

CREATE FUNCTION retail_mid.quality_duplicates_transfn(internal, boolean, VARIADIC "any") RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_duplicates_transfn(internal, boolean, "any") IS 'Transition function of quality_duplicates.';
CREATE FUNCTION retail_mid.quality_duplicates_combinefn(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_duplicates_combinefn(internal, internal) IS 'Combine function of quality_duplicates.';
CREATE FUNCTION retail_mid.quality_duplicates_serialfn(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_duplicates_serialfn(internal) IS 'Serial function of quality_duplicates.';
CREATE FUNCTION retail_mid.quality_duplicates_deserialfn(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_duplicates_deserialfn(bytea, internal) IS 'Deserial function of quality_duplicates; rejects malformed bytes.';
CREATE FUNCTION retail_mid.quality_duplicates_finalfn(internal) RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_duplicates_finalfn(internal) IS 'Final function of quality_duplicates.';
CREATE FUNCTION retail_mid.quality_duplicates_state_keys(bytea) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_duplicates_state_keys(bytea) IS 'Validates a serialized quality_duplicates state as its deserializer does and returns its key count (for diagnosis and tests).';
CREATE FUNCTION retail_mid.quality_key_hash(VARIADIC "any") RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.quality_key_hash("any") IS 'The 64-bit key hash quality_duplicates uses (NULL parts hash to a constant), to find the rows behind its duplicated hashes.';

CREATE AGGREGATE retail_mid.quality_duplicates(skip_nulls boolean, VARIADIC "any") (
    SFUNC = retail_mid.quality_duplicates_transfn, STYPE = internal,
    FINALFUNC = retail_mid.quality_duplicates_finalfn, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = retail_mid.quality_duplicates_combinefn,
    SERIALFUNC = retail_mid.quality_duplicates_serialfn, DESERIALFUNC = retail_mid.quality_duplicates_deserialfn,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.quality_duplicates(boolean, "any") IS 'Key uniqueness in one pass over 64-bit key hashes: jsonb {"duplicates": rows whose key hash equals an earlier row''s, "keys": duplicated hashes, "hashes": up to 1000 of them (else null)}. duplicates = 0 proves the key unique; otherwise it is exact unless two distinct keys collide, and quality_evaluate confirms it with GROUP BY ... HAVING over the rows with those hashes. skip_nulls: ignore rows with a NULL key part (unique keys) or treat NULLs as equal (duplicate rows).';

-- ----------------------------------------------------------------- templates, rules, history
CREATE TABLE retail_mid.quality_template (
    template          text PRIMARY KEY,
    dimension         text NOT NULL CHECK (dimension IN ('completeness', 'uniqueness', 'validity', 'consistency', 'timeliness', 'stability')),
    needs_column      boolean NOT NULL,
    parameters        text[] NOT NULL,
    threshold_on      text NOT NULL CHECK (threshold_on IN ('ratio', 'count', 'value')),
    warn_threshold    float8 NOT NULL,
    fail_threshold    float8 NOT NULL,
    observed          text NOT NULL,
    description       text NOT NULL
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_template', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.quality_template FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.quality_template IS 'The rule templates quality rules are instances of, with their quality dimension, parameters and default thresholds.';
COMMENT ON COLUMN retail_mid.quality_template.template IS 'Template name used in quality_rule.template.';
COMMENT ON COLUMN retail_mid.quality_template.dimension IS 'Quality dimension: completeness, uniqueness, validity, consistency, timeliness or stability.';
COMMENT ON COLUMN retail_mid.quality_template.needs_column IS 'Whether a rule of this template names one column (column_name).';
COMMENT ON COLUMN retail_mid.quality_template.parameters IS 'Keys the rule''s parameters jsonb may hold; any other key is an error.';
COMMENT ON COLUMN retail_mid.quality_template.threshold_on IS 'Default quantity compared with the thresholds: ratio (violating rows / rows), count (violating rows) or value (the observed value).';
COMMENT ON COLUMN retail_mid.quality_template.warn_threshold IS 'Default warning threshold: the rule warns when the compared quantity exceeds it.';
COMMENT ON COLUMN retail_mid.quality_template.fail_threshold IS 'Default failure threshold: the rule fails when the compared quantity exceeds it.';
COMMENT ON COLUMN retail_mid.quality_template.observed IS 'What quality_result.observed holds for this template.';
COMMENT ON COLUMN retail_mid.quality_template.description IS 'What the template checks.';

INSERT INTO retail_mid.quality_template VALUES
 ('not_null', 'completeness', true, '{}', 'ratio', 0, 0, 'rows where the column is NULL', 'The column is not NULL.'),
 ('not_blank', 'completeness', true, '{}', 'ratio', 0, 0, 'rows where the column is NULL or only white space', 'The column is neither NULL nor an empty or blank string.'),
 ('unique_key', 'uniqueness', false, '{columns}', 'count', 0, 0, 'rows beyond the first for each duplicated key (rows with a NULL key part are skipped)', 'The key (column_name, or parameters.columns for a compound key) identifies each row.'),
 ('duplicate_rows', 'uniqueness', false, '{}', 'count', 0, 0, 'rows identical in every column to an earlier row', 'No row is an exact copy of another.'),
 ('regex', 'validity', true, '{pattern}', 'ratio', 0, 0, 'non-null values that do not match the pattern', 'Non-null values match the POSIX regular expression parameters.pattern.'),
 ('range', 'validity', true, '{min,max,min_exclusive,max_exclusive}', 'ratio', 0, 0, 'non-null values outside the range', 'Non-null values lie within [min, max] (either bound optional, each inclusive unless *_exclusive is true).'),
 ('length', 'validity', true, '{min,max}', 'ratio', 0, 0, 'non-null values whose text length is outside [min, max]', 'The text length of non-null values lies within [min, max].'),
 ('accepted_values', 'validity', true, '{values}', 'ratio', 0, 0, 'non-null values not in the list', 'Non-null values are one of parameters.values (a JSON array).'),
 ('reference', 'validity', true, '{table,column}', 'ratio', 0, 0, 'non-null values absent from the referenced column', 'Non-null values exist in parameters.table.parameters.column (schema-qualified table).'),
 ('expression', 'consistency', false, '{expression}', 'ratio', 0, 0, 'rows where the expression is false (NULL counts as not violated)', 'A boolean SQL expression over the row''s columns holds, e.g. amount = quantity * unit_price - discount.'),
 ('tables_agree', 'consistency', false, '{expression,filter,other_table,other_expression,other_filter}', 'value', 0, 0, 'absolute difference between the two aggregates', 'An aggregate expression over this table equals one over another table (each with an optional WHERE filter).'),
 ('freshness', 'timeliness', true, '{}', 'value', 24, 48, 'hours from the newest value of the column to the evaluation time (as_of)', 'The newest value of a date/timestamp column is recent enough: warn/fail thresholds are in hours.'),
 ('stability', 'stability', false, '{metric,seasonality,sides,warmup,window}', 'value', 2, 3, 'the metric value (row_count, or mean, sum, min, max or null_fraction of column_name); statistic holds its z-score', 'The metric does not move away from its own history: z-score against the last `window` (default 8) daily values, of the same weekday when seasonality = weekday (default), sides two (default), upper or lower, no verdict before `warmup` (default 4) history points.');

CREATE TABLE retail_mid.quality_rule (
    rule_id        int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_name      text NOT NULL UNIQUE CHECK (rule_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    table_name     regclass NOT NULL,
    column_name    text,
    template       text NOT NULL,
    parameters     jsonb NOT NULL DEFAULT '{}',
    weight         float8 NOT NULL DEFAULT 1,
    threshold_on   text,
    warn_threshold float8,
    fail_threshold float8,
    data_domain    text NOT NULL DEFAULT 'general',
    enabled        boolean NOT NULL DEFAULT true,
    version        int NOT NULL DEFAULT 1,
    description    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    by_brand       boolean NOT NULL DEFAULT false,
    author         regrole DEFAULT (quote_ident(CURRENT_USER))::regrole
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_rule', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_rule_rule_id_seq', '');
COMMENT ON TABLE retail_mid.quality_rule IS 'Quality rules as data: one row per check of a table (or one column of it), an instance of a quality_template. Checked on insert and update; every change of definition bumps version.';
COMMENT ON COLUMN retail_mid.quality_rule.rule_name IS 'Unique name, lower-case letters, digits and underscores.';
COMMENT ON COLUMN retail_mid.quality_rule.table_name IS 'Table, view or materialized view checked.';
COMMENT ON COLUMN retail_mid.quality_rule.column_name IS 'Column checked, for templates that need one.';
COMMENT ON COLUMN retail_mid.quality_rule.template IS 'Template (quality_template.template).';
COMMENT ON COLUMN retail_mid.quality_rule.parameters IS 'Template parameters (see quality_template.parameters).';
COMMENT ON COLUMN retail_mid.quality_rule.weight IS 'Weight of the rule in the weighted scores (> 0).';
COMMENT ON COLUMN retail_mid.quality_rule.threshold_on IS 'Quantity compared with the thresholds: ratio, count or value; defaults to the template''s.';
COMMENT ON COLUMN retail_mid.quality_rule.warn_threshold IS 'The rule warns when the compared quantity exceeds this; defaults to the template''s.';
COMMENT ON COLUMN retail_mid.quality_rule.fail_threshold IS 'The rule fails when the compared quantity exceeds this (>= warn_threshold); defaults to the template''s.';
COMMENT ON COLUMN retail_mid.quality_rule.data_domain IS 'Data domain the rule belongs to, for domain scores (e.g. trade, customer).';
COMMENT ON COLUMN retail_mid.quality_rule.enabled IS 'Disabled rules are not evaluated.';
COMMENT ON COLUMN retail_mid.quality_rule.version IS 'Definition version, bumped by every change of table, column, template, parameters, thresholds or weight.';
COMMENT ON COLUMN retail_mid.quality_rule.description IS 'Free text.';
COMMENT ON COLUMN retail_mid.quality_rule.by_brand IS 'Also judge the rule per brand (the table needs a brand column; not for tables_agree): one result per brand next to the whole table''s, from the same scan, the scan then grouped by brand.';
COMMENT ON COLUMN retail_mid.quality_rule.rule_id IS 'Identifier of the rule, kept across its versions.';
COMMENT ON COLUMN retail_mid.quality_rule.created_at IS 'When the rule was added.';
COMMENT ON COLUMN retail_mid.quality_rule.updated_at IS 'When the rule was last changed (a change adds a row to quality_rule_version).';
COMMENT ON COLUMN retail_mid.quality_rule.author IS 'The role that wrote the rule (its expressions run in the scan of the table): quality_evaluate runs them with that role''s rights, never more (retail_mid.registry_role); set by default and when another user changes the definition; NULL (rules from before 1.1.0) runs as retail_mid_admin.';
CREATE TRIGGER quality_rule_author BEFORE INSERT OR UPDATE ON retail_mid.quality_rule
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('rule_name', 'table_name', 'column_name', 'template', 'parameters');

CREATE TABLE retail_mid.quality_rule_version (
    rule_id     int NOT NULL,
    version     int NOT NULL,
    definition  jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, version)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_rule_version', '');
COMMENT ON TABLE retail_mid.quality_rule_version IS 'Every version of every rule''s definition, so that each stored result can be read with the rule as it was.';
COMMENT ON COLUMN retail_mid.quality_rule_version.definition IS 'The rule row (table, column, template, parameters, thresholds, weight) at that version.';
COMMENT ON COLUMN retail_mid.quality_rule_version.recorded_at IS 'When the version was created.';
COMMENT ON COLUMN retail_mid.quality_rule_version.rule_id IS 'quality_rule.rule_id.';
COMMENT ON COLUMN retail_mid.quality_rule_version.version IS 'Version number of the rule, from 1, raised by each change of its definition.';

CREATE TABLE retail_mid.quality_result (
    result_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint NOT NULL,
    as_of           timestamptz NOT NULL,
    evaluated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    rule_id         int NOT NULL,
    rule_version    int NOT NULL,
    rule_name       text NOT NULL,
    table_name      text NOT NULL,
    column_name     text,
    template        text NOT NULL,
    dimension       text NOT NULL,
    data_domain     text NOT NULL,
    weight          float8 NOT NULL,
    rows_checked    bigint NOT NULL,
    observed        float8,
    violation_ratio float8,
    statistic       float8,
    threshold_on    text NOT NULL,
    compared_value  float8,
    warn_threshold  float8 NOT NULL,
    fail_threshold  float8 NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('pass', 'warn', 'fail', 'warmup')),
    score           float8 CHECK (score IN (0, 50, 100)),
    sample          jsonb NOT NULL DEFAULT '[]',
    detail          jsonb NOT NULL DEFAULT '{}',
    brand           text NOT NULL DEFAULT '*'
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_result', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.quality_result_result_id_seq', '');
CREATE INDEX ON retail_mid.quality_result (rule_id, as_of);
COMMENT ON TABLE retail_mid.quality_result IS 'Every evaluation of every rule, kept as history: the rule version and its definition at the time, the observed value, thresholds, outcome, score and a sample of failing rows.';
COMMENT ON COLUMN retail_mid.quality_result.run_id IS 'job_log.job_id of the quality_evaluate run.';
COMMENT ON COLUMN retail_mid.quality_result.as_of IS 'Evaluation time the rule was judged at (freshness age and stability history are relative to it).';
COMMENT ON COLUMN retail_mid.quality_result.evaluated_at IS 'Wall-clock time the result was stored.';
COMMENT ON COLUMN retail_mid.quality_result.rule_version IS 'quality_rule.version evaluated (see quality_rule_version).';
COMMENT ON COLUMN retail_mid.quality_result.rule_name IS 'Rule name at evaluation time.';
COMMENT ON COLUMN retail_mid.quality_result.table_name IS 'Checked table, as text.';
COMMENT ON COLUMN retail_mid.quality_result.dimension IS 'Quality dimension of the template.';
COMMENT ON COLUMN retail_mid.quality_result.data_domain IS 'Data domain of the rule.';
COMMENT ON COLUMN retail_mid.quality_result.weight IS 'Rule weight at evaluation time.';
COMMENT ON COLUMN retail_mid.quality_result.rows_checked IS 'Rows of the table at evaluation.';
COMMENT ON COLUMN retail_mid.quality_result.observed IS 'Observed value: violating rows for row rules, hours for freshness, the metric for stability, the absolute difference for tables_agree.';
COMMENT ON COLUMN retail_mid.quality_result.violation_ratio IS 'Violating rows / rows for row rules (0 on an empty table), else NULL.';
COMMENT ON COLUMN retail_mid.quality_result.statistic IS 'z-score of the metric against its history (stability rules), else NULL.';
COMMENT ON COLUMN retail_mid.quality_result.threshold_on IS 'Which quantity was compared with the thresholds: ratio, count or value (z-score for stability).';
COMMENT ON COLUMN retail_mid.quality_result.compared_value IS 'The quantity compared with the thresholds.';
COMMENT ON COLUMN retail_mid.quality_result.outcome IS 'pass, warn, fail, or warmup (stability rule with too little history: no verdict, no score).';
COMMENT ON COLUMN retail_mid.quality_result.score IS '100 for pass, 50 for warn, 0 for fail, NULL for warmup.';
COMMENT ON COLUMN retail_mid.quality_result.sample IS 'Up to 5 failing rows (or duplicated keys with their counts) as JSON.';
COMMENT ON COLUMN retail_mid.quality_result.brand IS '''*'' for the whole table (admins read it), else the brand the result counts for (rules with by_brand; brand-isolated: analysts and BI of the brand read it). The sample of a brand''s result leaves out the columns under a masking rule.';
COMMENT ON COLUMN retail_mid.quality_result.detail IS 'Template specific details (history size and mean for stability, both sides for tables_agree, the newest value for freshness).';
COMMENT ON COLUMN retail_mid.quality_result.result_id IS 'Identifier of the result.';
COMMENT ON COLUMN retail_mid.quality_result.rule_id IS 'quality_rule.rule_id of the rule evaluated.';
COMMENT ON COLUMN retail_mid.quality_result.column_name IS 'Column checked; NULL for table-level rules.';
COMMENT ON COLUMN retail_mid.quality_result.template IS 'Rule template evaluated (a quality_template name, e.g. not_null, unique_key, range, freshness).';
COMMENT ON COLUMN retail_mid.quality_result.warn_threshold IS 'Threshold of the rule version at evaluation time beyond which the outcome is warn.';
COMMENT ON COLUMN retail_mid.quality_result.fail_threshold IS 'Threshold of the rule version at evaluation time beyond which the outcome is fail.';

-- ----------------------------------------------------------------- rule compilation
-- Turns a rule into the SQL it is evaluated with. Each rule contributes to the one scan of its table:
--   flag:       a boolean violation expression over alias t, an argument of quality_profile
--   measure:    a double precision expression, an argument of quality_profile (stability of a column)
--   rows:       nothing: the row count of the scan (stability of row_count)
--   duplicates: the argument of quality_duplicates, with the exact GROUP BY query that confirms it
--   newest:     an expression whose max() is taken in the same scan (freshness)
--   queries:    two separate scalar queries (tables_agree)
CREATE FUNCTION retail_mid.quality_rule_plan(r retail_mid.quality_rule)
RETURNS jsonb LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p jsonb := r.parameters;
    tpl retail_mid.quality_template;
    c text;
    bad text;
    lo text; hi text;
    cols text[];
    ref regclass;
    keyexpr text;
    v_notnull text;
    grp text;
    m text;
    ncols int;
BEGIN
    SELECT * INTO tpl FROM retail_mid.quality_template WHERE template = r.template;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown quality rule template "%"', r.template USING ERRCODE = 'invalid_parameter_value',
            HINT = 'See retail_mid.quality_template for the templates.';
    END IF;
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'parameters of rule "%" must be a JSON object', r.rule_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(p) k WHERE k <> ALL (tpl.parameters);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown parameter % for template "%"', bad, r.template USING ERRCODE = 'invalid_parameter_value',
            HINT = format('Template %s takes: %s.', r.template, coalesce(nullif(array_to_string(tpl.parameters, ', '), ''), 'no parameters'));
    END IF;
    IF tpl.needs_column AND r.column_name IS NULL AND NOT (r.template = 'unique_key') THEN
        RAISE EXCEPTION 'template "%" needs a column_name', r.template USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.column_name IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.table_name AND a.attname = r.column_name
                        AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', r.column_name, r.table_name USING ERRCODE = 'undefined_column';
        END IF;
        c := 't.' || quote_ident(r.column_name);
    END IF;

    CASE r.template
    WHEN 'not_null' THEN
        RETURN jsonb_build_object('kind', 'flag', 'expr', c || ' IS NULL');
    WHEN 'not_blank' THEN
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('(%s IS NULL OR btrim(%s::text) = '''')', c, c));
    WHEN 'regex' THEN
        IF jsonb_typeof(p->'pattern') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'template "regex" needs parameters.pattern as a string' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM '' ~ (p->>'pattern');   -- compiles the pattern: a malformed one raises invalid_regular_expression
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('%s::text !~ %L', c, p->>'pattern'));
    WHEN 'range' THEN
        IF p->'min' IS NULL AND p->'max' IS NULL THEN
            RAISE EXCEPTION 'template "range" needs parameters.min or parameters.max' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(p->'min') = 'null' OR jsonb_typeof(p->'max') = 'null' THEN
            RAISE EXCEPTION 'range bounds must not be null' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p->>'min' IN ('NaN', 'Infinity', '-Infinity') OR p->>'max' IN ('NaN', 'Infinity', '-Infinity') THEN
            RAISE EXCEPTION 'range bounds must be finite' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p ? 'min' THEN
            lo := format('%s %s %L', c, CASE WHEN (p->>'min_exclusive')::boolean THEN '<=' ELSE '<' END, p->>'min');
        END IF;
        IF p ? 'max' THEN
            hi := format('%s %s %L', c, CASE WHEN (p->>'max_exclusive')::boolean THEN '>=' ELSE '>' END, p->>'max');
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr', '(' || concat_ws(' OR ', lo, hi) || ')');
    WHEN 'length' THEN
        IF p->'min' IS NULL AND p->'max' IS NULL THEN
            RAISE EXCEPTION 'template "length" needs parameters.min or parameters.max' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (p->>'min')::int < 0 OR (p->>'max')::int < 0 OR (p->>'max')::int < (p->>'min')::int THEN
            RAISE EXCEPTION 'length bounds must satisfy 0 <= min <= max' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p ? 'min' THEN lo := format('length(%s::text) < %s', c, (p->>'min')::int); END IF;
        IF p ? 'max' THEN hi := format('length(%s::text) > %s', c, (p->>'max')::int); END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr', '(' || concat_ws(' OR ', lo, hi) || ')');
    WHEN 'accepted_values' THEN
        IF jsonb_typeof(p->'values') IS DISTINCT FROM 'array' OR jsonb_array_length(p->'values') = 0 THEN
            RAISE EXCEPTION 'template "accepted_values" needs parameters.values as a non-empty JSON array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(p->'values') v WHERE jsonb_typeof(v) IN ('null', 'object', 'array')) THEN
            RAISE EXCEPTION 'accepted values must be strings, numbers or booleans' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr',
            format('%s <> ALL (%L)', c, ARRAY(SELECT jsonb_array_elements_text(p->'values'))::text));
    WHEN 'reference' THEN
        ref := to_regclass(p->>'table');
        IF ref IS NULL THEN
            RAISE EXCEPTION 'referenced table "%" does not exist', p->>'table' USING ERRCODE = 'undefined_table',
                HINT = 'Give parameters.table schema-qualified.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = ref AND a.attname = p->>'column' AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', p->>'column', ref USING ERRCODE = 'undefined_column';
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr',
            format('NOT (%s = ANY (SELECT r.%I FROM %s AS r WHERE r.%I IS NOT NULL))', c, p->>'column', ref, p->>'column'));
    WHEN 'expression' THEN
        IF coalesce(btrim(p->>'expression'), '') = '' THEN
            RAISE EXCEPTION 'template "expression" needs parameters.expression' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('NOT (%s)',
            retail_mid.registry_check_sql(p->>'expression', 'expression', format('expression of quality rule %s', r.rule_name))));
    WHEN 'unique_key' THEN
        IF p ? 'columns' THEN
            IF jsonb_typeof(p->'columns') IS DISTINCT FROM 'array' OR jsonb_array_length(p->'columns') = 0 OR r.column_name IS NOT NULL THEN
                RAISE EXCEPTION 'template "unique_key" needs either column_name or parameters.columns (a non-empty JSON array), not both'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            cols := ARRAY(SELECT jsonb_array_elements_text(p->'columns'));
        ELSIF r.column_name IS NOT NULL THEN
            cols := ARRAY[r.column_name];
        ELSE
            RAISE EXCEPTION 'template "unique_key" needs column_name or parameters.columns' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT string_agg(k, ', ') INTO bad FROM unnest(cols) k
         WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.table_name AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'column % does not exist in %', bad, r.table_name USING ERRCODE = 'undefined_column';
        END IF;
        grp := (SELECT string_agg('t.' || quote_ident(k), ', ') FROM unnest(cols) k);
        v_notnull := (SELECT string_agg('t.' || quote_ident(k) || ' IS NOT NULL', ' AND ') FROM unnest(cols) k);
        RETURN jsonb_build_object('kind', 'duplicates', 'expr', 'true, ' || grp,
            'confirm', format('WITH d AS (SELECT %s, count(*) AS rows FROM %s AS t WHERE %s AND ($1 IS NULL OR retail_mid.quality_key_hash(%s) = ANY ($1))%s '
                              'GROUP BY %s HAVING count(*) > 1) '
                              'SELECT (SELECT coalesce(sum(rows - 1), 0) FROM d), '
                              '(SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT * FROM d ORDER BY rows DESC, %s LIMIT 5) s)',
                              grp, r.table_name, v_notnull, grp, CASE WHEN r.by_brand THEN ' AND ($2::text IS NULL OR t.brand = $2)' ELSE '' END, grp,
                              (SELECT string_agg(format('%s', i), ', ') FROM generate_series(1, cardinality(cols)) i)));
    WHEN 'duplicate_rows' THEN
        SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attnum), count(*) INTO grp, ncols
          FROM pg_attribute a WHERE a.attrelid = r.table_name AND a.attnum > 0 AND NOT a.attisdropped;
        -- the columns as separate key parts (faster than hashing a whole-row record) while they fit in one call
        keyexpr := CASE WHEN ncols <= 98 THEN grp ELSE 't' END;
        RETURN jsonb_build_object('kind', 'duplicates', 'expr', 'false, ' || keyexpr,
            'confirm', format('WITH d AS (SELECT %s, count(*) AS rows FROM %s AS t WHERE ($1 IS NULL OR retail_mid.quality_key_hash(%s) = ANY ($1))%s '
                              'GROUP BY %s HAVING count(*) > 1) '
                              'SELECT (SELECT coalesce(sum(rows - 1), 0) FROM d), '
                              '(SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT * FROM d ORDER BY rows DESC, d LIMIT 5) s)',
                              grp, r.table_name, keyexpr, CASE WHEN r.by_brand THEN ' AND ($2::text IS NULL OR t.brand = $2)' ELSE '' END, grp));
    WHEN 'freshness' THEN
        RETURN jsonb_build_object('kind', 'newest', 'expr', format('(%s)::timestamptz', c));
    WHEN 'stability' THEN
        m := coalesce(p->>'metric', 'row_count');
        IF m NOT IN ('row_count', 'mean', 'sum', 'min', 'max', 'null_fraction') THEN
            RAISE EXCEPTION 'unknown stability metric "%"', m USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Use row_count, mean, sum, min, max or null_fraction.';
        END IF;
        IF coalesce(p->>'seasonality', 'weekday') NOT IN ('weekday', 'none') THEN
            RAISE EXCEPTION 'stability seasonality must be weekday or none' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF coalesce(p->>'sides', 'two') NOT IN ('two', 'upper', 'lower') THEN
            RAISE EXCEPTION 'stability sides must be two, upper or lower' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF coalesce((p->>'warmup')::int, 4) < 2 OR coalesce((p->>'window')::int, 8) < coalesce((p->>'warmup')::int, 4) THEN
            RAISE EXCEPTION 'stability needs 2 <= warmup <= window' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF m = 'row_count' THEN
            IF r.column_name IS NOT NULL THEN
                RAISE EXCEPTION 'stability metric row_count takes no column_name' USING ERRCODE = 'invalid_parameter_value';
            END IF;
            RETURN jsonb_build_object('kind', 'rows', 'metric', m);
        END IF;
        IF c IS NULL THEN
            RAISE EXCEPTION 'stability metric % needs a column_name', m USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('kind', 'measure', 'metric', m,
            'expr', CASE WHEN m = 'null_fraction' THEN format('CASE WHEN %s IS NULL THEN NULL ELSE 0::float8 END', c)
                         ELSE format('(%s)::float8', c) END);
    WHEN 'tables_agree' THEN
        IF coalesce(btrim(p->>'expression'), '') = '' OR coalesce(btrim(p->>'other_expression'), '') = '' THEN
            RAISE EXCEPTION 'template "tables_agree" needs parameters.expression and parameters.other_expression'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        ref := to_regclass(p->>'other_table');
        IF ref IS NULL THEN
            RAISE EXCEPTION 'other table "%" does not exist', p->>'other_table' USING ERRCODE = 'undefined_table',
                HINT = 'Give parameters.other_table schema-qualified.';
        END IF;
        RETURN jsonb_build_object('kind', 'queries',
            'query', format('SELECT (%s)::float8 FROM %s AS t WHERE (%s)',
                            retail_mid.registry_check_sql(p->>'expression', 'expression', format('expression of quality rule %s', r.rule_name)), r.table_name,
                            retail_mid.registry_check_sql(coalesce(p->>'filter', 'true'), 'expression', format('filter of quality rule %s', r.rule_name))),
            'other_query', format('SELECT (%s)::float8 FROM %s AS t WHERE (%s)',
                            retail_mid.registry_check_sql(p->>'other_expression', 'expression', format('other_expression of quality rule %s', r.rule_name)), ref,
                            retail_mid.registry_check_sql(coalesce(p->>'other_filter', 'true'), 'expression', format('other_filter of quality rule %s', r.rule_name))));
    END CASE;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_rule_plan(retail_mid.quality_rule) IS 'The SQL a rule is evaluated with (its part of the one scan of its table), after checking the template, parameters and columns.';

-- Checks and completes a rule on insert and update; bumps the version when the definition changes.
CREATE FUNCTION retail_mid.quality_rule_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tpl retail_mid.quality_template;
    plan jsonb;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
    IF NEW.rule_name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid quality rule name "%"', NEW.rule_name USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 63 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    SELECT * INTO tpl FROM retail_mid.quality_template WHERE template = NEW.template;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown quality rule template "%"', NEW.template USING ERRCODE = 'invalid_parameter_value',
            HINT = 'See retail_mid.quality_template for the templates.';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = NEW.table_name) NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table or view', NEW.table_name USING ERRCODE = 'wrong_object_type';
    END IF;
    NEW.threshold_on := coalesce(NEW.threshold_on, tpl.threshold_on);
    NEW.warn_threshold := coalesce(NEW.warn_threshold, tpl.warn_threshold);
    NEW.fail_threshold := coalesce(NEW.fail_threshold, greatest(tpl.fail_threshold, NEW.warn_threshold));
    IF NEW.threshold_on NOT IN ('ratio', 'count', 'value')
       OR (tpl.threshold_on = 'value') <> (NEW.threshold_on = 'value') THEN
        RAISE EXCEPTION 'threshold_on "%" does not fit template "%"', NEW.threshold_on, NEW.template
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Row rules compare ratio or count; freshness, stability and tables_agree compare value.';
    END IF;
    IF NEW.warn_threshold IN ('NaN', 'Infinity', '-Infinity') OR NEW.fail_threshold IN ('NaN', 'Infinity', '-Infinity')
       OR NEW.warn_threshold < 0 OR NEW.fail_threshold < NEW.warn_threshold
       OR (NEW.threshold_on = 'ratio' AND NEW.fail_threshold > 1) THEN
        RAISE EXCEPTION 'thresholds must be finite with 0 <= warn_threshold <= fail_threshold (<= 1 for ratios)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (NEW.weight > 0 AND NEW.weight < 'Infinity') THEN
        RAISE EXCEPTION 'rule weight must be positive and finite' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    plan := retail_mid.quality_rule_plan(NEW);
    -- compile the generated SQL once now, so that a typo fails at insert rather than at night; as the rule's author,
    -- restricted, because planning may evaluate functions (src/common/registry.sql)
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('quality rule %s', NEW.rule_name)));
    IF plan->>'kind' = 'queries' THEN
        EXECUTE (plan->>'query') || ' LIMIT 0';
        EXECUTE (plan->>'other_query') || ' LIMIT 0';
    ELSIF plan ? 'expr' THEN
        EXECUTE format('SELECT %s FROM %s AS t LIMIT 0', plan->>'expr', NEW.table_name);
    END IF;
    PERFORM retail_mid.registry_leave(tok);
    IF NEW.by_brand AND NEW.template = 'tables_agree' THEN
        RAISE EXCEPTION 'template "tables_agree" has no per-brand results' USING ERRCODE = 'feature_not_supported',
            HINT = 'Filter each side by brand in parameters.filter and parameters.other_filter instead.';
    END IF;
    IF NEW.by_brand AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = NEW.table_name AND a.attname = 'brand'
                                       AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'rule "%" is by brand but % has no brand column', NEW.rule_name, NEW.table_name USING ERRCODE = 'undefined_column';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.table_name, NEW.column_name, NEW.template, NEW.parameters, NEW.weight, NEW.threshold_on, NEW.warn_threshold, NEW.fail_threshold)
           IS DISTINCT FROM
           (OLD.table_name, OLD.column_name, OLD.template, OLD.parameters, OLD.weight, OLD.threshold_on, OLD.warn_threshold, OLD.fail_threshold) THEN
            NEW.version := OLD.version + 1;
            NEW.updated_at := now();
        ELSE
            NEW.version := OLD.version;
        END IF;
    ELSE
        NEW.version := 1;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_rule_check() IS 'Trigger: validates a quality rule, fills default thresholds and bumps version on changes of definition.';
CREATE TRIGGER quality_rule_check BEFORE INSERT OR UPDATE ON retail_mid.quality_rule
    FOR EACH ROW EXECUTE FUNCTION retail_mid.quality_rule_check();

CREATE FUNCTION retail_mid.quality_rule_record_version()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN IF retail_mid.restoring() THEN RETURN NULL; END IF;  -- a restore keeps the rows as dumped
    INSERT INTO retail_mid.quality_rule_version (rule_id, version, definition)
    VALUES (NEW.rule_id, NEW.version,
            jsonb_build_object('rule_name', NEW.rule_name, 'table_name', NEW.table_name::text, 'column_name', NEW.column_name,
                               'template', NEW.template, 'parameters', NEW.parameters, 'weight', NEW.weight,
                               'threshold_on', NEW.threshold_on, 'warn_threshold', NEW.warn_threshold,
                               'fail_threshold', NEW.fail_threshold, 'data_domain', NEW.data_domain))
    ON CONFLICT (rule_id, version) DO NOTHING;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_rule_record_version() IS 'Trigger: records each new version of a rule''s definition in quality_rule_version.';
CREATE TRIGGER quality_rule_record_version AFTER INSERT OR UPDATE ON retail_mid.quality_rule
    FOR EACH ROW EXECUTE FUNCTION retail_mid.quality_rule_record_version();

-- ----------------------------------------------------------------- evaluation
CREATE FUNCTION retail_mid.quality_outcome(compared float8, warn_threshold float8, fail_threshold float8)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN compared IS NULL OR compared = 'NaN' OR compared > fail_threshold THEN 'fail'
            WHEN compared > warn_threshold THEN 'warn' ELSE 'pass' END;
COMMENT ON FUNCTION retail_mid.quality_outcome(float8, float8, float8) IS 'pass when compared <= warn_threshold, warn up to fail_threshold, fail above it or when nothing could be compared.';

-- Evaluates the enabled rules of one table (or of all tables) and stores one quality_result row per rule.
-- All flag, measure, duplicate and freshness rules of a table share one scan: a single SELECT with one
-- quality_profile call per 98 profiled expressions, one quality_duplicates per uniqueness rule and one max()
-- per freshness rule. Extra queries run only for what cannot be counted in the scan: the failing row sample
-- (a TID lookup of at most 5 rows), the exact confirmation of a positive duplicate count, tables_agree.
CREATE FUNCTION retail_mid.quality_evaluate(table_name regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint;
    v_tbl regclass;
    v_kind "char";
    rules retail_mid.quality_rule[];
    plans jsonb[];
    r retail_mid.quality_rule;
    plan jsonb;
    items text[];
    prof text[];
    i int;
    k int;
    res jsonb;
    col jsonb;
    v_rows bigint;
    v_obs float8; v_ratio float8; v_stat float8; v_cmp float8; v_outcome text;
    v_sample jsonb; v_detail jsonb;
    v_a float8; v_b float8;
    v_n bigint; v_mean float8; v_sd float8;
    v_tables int := 0; v_results bigint := 0;
    v_pass int := 0; v_warn int := 0; v_fail int := 0; v_warmup int := 0;
    rowid text;
    tid_list tid[];
    hashes bigint[]; v_by_brand boolean; brand_res jsonb; cur jsonb; rec record; v_brand text; masked text[];   -- per-brand results
    tok int8;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('quality_evaluate', jsonb_build_object('table', table_name::text, 'as_of', as_of));
    FOR v_tbl IN SELECT DISTINCT q.table_name FROM retail_mid.quality_rule q
                  WHERE q.enabled AND (quality_evaluate.table_name IS NULL OR q.table_name = quality_evaluate.table_name)
                  ORDER BY 1
    LOOP
        SELECT c.relkind INTO v_kind FROM pg_class c WHERE c.oid = v_tbl;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table with OID % of a quality rule no longer exists', v_tbl::oid USING ERRCODE = 'undefined_table',
                HINT = 'Delete or disable its rules.';
        END IF;
        rowid := CASE WHEN v_kind IN ('r', 'p', 'm') THEN 't.ctid' ELSE 'NULL::tid' END;
        rules := ARRAY(SELECT q FROM retail_mid.quality_rule q WHERE q.enabled AND q.table_name = v_tbl ORDER BY q.rule_id);
        plans := '{}';
        items := '{}';
        prof := '{}';
        FOREACH r IN ARRAY rules LOOP
            plan := retail_mid.quality_rule_plan(r);
            IF plan->>'kind' IN ('flag', 'measure') THEN
                prof := prof || (plan->>'expr');
                plan := plan || jsonb_build_object('item', 'p' || ((cardinality(prof) - 1) / 98), 'index', (cardinality(prof) - 1) % 98);
            ELSIF plan->>'kind' = 'duplicates' THEN
                items := items || format('retail_mid.quality_duplicates(%s) AS d%s', plan->>'expr', r.rule_id);
                plan := plan || jsonb_build_object('item', 'd' || r.rule_id);
            ELSIF plan->>'kind' = 'newest' THEN
                items := items || format('max(%s) AS n%s', plan->>'expr', r.rule_id);
                plan := plan || jsonb_build_object('item', 'n' || r.rule_id);
            END IF;
            plans := plans || plan;
        END LOOP;
        -- profiled expressions in chunks of 98 (a function takes at most 100 arguments with state and row id)
        IF cardinality(prof) = 0 THEN
            items := format('jsonb_build_object(''rows'', count(*)) AS p0') || items;
        END IF;
        FOR k IN 0 .. (cardinality(prof) + 97) / 98 - 1 LOOP
            items := format('retail_mid.quality_profile(%s%s) AS p%s', rowid,
                            (SELECT string_agg(', ' || e, '' ORDER BY o) FROM unnest(prof[k * 98 + 1 : k * 98 + 98]) WITH ORDINALITY u(e, o)),
                            k) || items;
        END LOOP;
        brand_res := '{}';
        v_by_brand := EXISTS (SELECT 1 FROM unnest(rules) q WHERE q.by_brand);
        -- the scan runs the rules' expressions as their authors, restricted (src/common/registry.sql)
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY(SELECT q.author FROM unnest(rules) q),
                                                                  format('the quality rules of %s', v_tbl)));
        IF v_by_brand THEN
            -- the same one scan, grouped by brand: a row per brand and the whole table's row (the empty grouping
            -- set). Rows with a NULL brand (or the brand '*', the key of the whole table) count in the whole only.
            FOR rec IN EXECUTE format('SELECT q.whole, q.b, to_jsonb(q) - ''whole'' - ''b'' AS j FROM (SELECT grouping(t.brand) = 1 AS whole, t.brand::text AS b, %s '
                                      'FROM %s AS t GROUP BY GROUPING SETS ((t.brand), ())) q', array_to_string(items, ', '), v_tbl) LOOP
                IF rec.whole THEN
                    res := rec.j;
                ELSIF rec.b IS NOT NULL AND rec.b <> '*' THEN
                    brand_res := brand_res || jsonb_build_object(rec.b, rec.j);
                END IF;
            END LOOP;
            -- a brand's results are read by the brand's analysts: its samples leave out personal data columns
            masked := ARRAY(SELECT m.column_name FROM retail_mid.pii_mask_rule m WHERE m.table_name = v_tbl);
        ELSE
            EXECUTE format('SELECT to_jsonb(q) FROM (SELECT %s FROM %s AS t) q', array_to_string(items, ', '), v_tbl) INTO res;
        END IF;
        PERFORM retail_mid.registry_leave(tok);
        v_rows := (res->'p0'->>'rows')::bigint;
        v_tables := v_tables + 1;
        RAISE NOTICE 'quality: % rules on %: % rows profiled in one scan%', cardinality(rules), v_tbl, v_rows,
            CASE WHEN v_by_brand THEN format(' (and per brand: %s brands)', (SELECT count(*) FROM jsonb_object_keys(brand_res))) ELSE '' END;

        FOR i IN 1 .. cardinality(rules) LOOP
            r := rules[i];
            plan := plans[i];
          -- the whole table, then each brand for a by_brand rule
          FOR v_brand, cur IN SELECT x.b, x.j FROM (SELECT '*'::text AS b, res AS j, 0 AS o
                                                    UNION ALL SELECT e.key, e.value, 1 FROM jsonb_each(brand_res) e WHERE r.by_brand) x
                               ORDER BY x.o, x.b LOOP
            v_rows := (cur->'p0'->>'rows')::bigint;
            v_obs := NULL; v_ratio := NULL; v_stat := NULL; v_sample := '[]'; v_detail := '{}';
            -- the rule's own queries (samples, confirmations, tables_agree) run as its author, restricted
            tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[r.author], format('quality rule %s', r.rule_name)));
            IF plan->>'kind' = 'flag' THEN
                col := cur->(plan->>'item')->'columns'->((plan->>'index')::int);
                v_obs := (col->>'violations')::float8;
                v_ratio := CASE WHEN v_rows > 0 THEN v_obs / v_rows ELSE 0 END;
                IF v_obs > 0 THEN
                    IF rowid = 't.ctid' THEN
                        tid_list := ARRAY(SELECT jsonb_array_elements_text(col->'sample')::tid);
                        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT t.* FROM %s AS t WHERE t.ctid = ANY ($1) AND (%s) ORDER BY t.ctid LIMIT 5) s',
                                       v_tbl, plan->>'expr') INTO v_sample USING tid_list;
                    ELSE
                        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT t.* FROM %s AS t WHERE (%s)%s LIMIT 5) s',
                                       v_tbl, plan->>'expr', CASE WHEN v_brand <> '*' THEN ' AND t.brand = $1' ELSE '' END) INTO v_sample USING v_brand;
                    END IF;
                END IF;
            ELSIF plan->>'kind' = 'duplicates' THEN
                col := cur->(plan->>'item');
                v_obs := (col->>'duplicates')::float8;
                IF v_obs > 0 THEN
                    -- the hashes found possible duplicates: count them exactly over the rows with those hashes
                    v_detail := jsonb_build_object('hash_duplicates', v_obs, 'duplicated_hashes', col->'keys');
                    hashes := CASE WHEN jsonb_typeof(col->'hashes') = 'array'
                                   THEN ARRAY(SELECT jsonb_array_elements_text(col->'hashes')::bigint) END;
                    EXECUTE plan->>'confirm' INTO v_obs, v_sample USING hashes, nullif(v_brand, '*');
                END IF;
                v_ratio := CASE WHEN v_rows > 0 THEN v_obs / v_rows ELSE 0 END;
            ELSIF plan->>'kind' = 'newest' THEN
                v_detail := jsonb_build_object('newest', cur->(plan->>'item'));
                v_obs := extract(epoch FROM as_of - (cur->>(plan->>'item'))::timestamptz) / 3600.0;
            ELSIF plan->>'kind' = 'queries' THEN
                EXECUTE plan->>'query' INTO v_a;
                EXECUTE plan->>'other_query' INTO v_b;
                v_obs := abs(v_a - v_b);
                v_detail := jsonb_build_object('value', v_a, 'other_value', v_b);
            ELSE
                -- stability: the metric from the scan, then its z-score against the same rule's daily history
                IF plan->>'kind' = 'rows' THEN
                    v_obs := v_rows;
                ELSE
                    col := cur->(plan->>'item')->'columns'->((plan->>'index')::int);
                    v_obs := CASE plan->>'metric'
                                 WHEN 'null_fraction' THEN CASE WHEN v_rows > 0 THEN (col->>'nulls')::float8 / v_rows ELSE 0 END
                                 ELSE (col->>(plan->>'metric'))::float8 END;
                END IF;
                SELECT count(*), avg(h.observed), stddev_samp(h.observed) INTO v_n, v_mean, v_sd
                  FROM (SELECT DISTINCT ON (x.as_of::date) x.observed
                          FROM retail_mid.quality_result x
                         WHERE x.rule_id = r.rule_id AND x.brand = v_brand AND x.as_of::date < quality_evaluate.as_of::date AND x.observed IS NOT NULL
                           AND (coalesce(r.parameters->>'seasonality', 'weekday') = 'none'
                                OR extract(isodow FROM x.as_of) = extract(isodow FROM quality_evaluate.as_of))
                         ORDER BY x.as_of::date DESC, x.as_of DESC
                         LIMIT coalesce((r.parameters->>'window')::int, 8)) h;
                v_detail := jsonb_build_object('history', v_n, 'history_mean', v_mean, 'history_stddev', v_sd);
                IF v_obs IS NOT NULL AND v_n >= 2 THEN
                    v_stat := CASE WHEN v_obs = v_mean THEN 0
                                   WHEN coalesce(v_sd, 0) = 0 THEN CASE WHEN v_obs > v_mean THEN 'Infinity'::float8 ELSE '-Infinity'::float8 END
                                   ELSE (v_obs - v_mean) / v_sd END;
                END IF;
            END IF;
            PERFORM retail_mid.registry_leave(tok);

            v_cmp := CASE WHEN r.template = 'stability' THEN
                              CASE coalesce(r.parameters->>'sides', 'two') WHEN 'two' THEN abs(v_stat) WHEN 'upper' THEN v_stat ELSE -v_stat END
                          WHEN r.threshold_on = 'ratio' THEN v_ratio
                          ELSE v_obs END;
            IF r.template = 'stability' AND (v_obs IS NULL OR v_n < coalesce((r.parameters->>'warmup')::int, 4)) THEN
                v_outcome := CASE WHEN v_obs IS NULL THEN 'fail' ELSE 'warmup' END;
            ELSE
                v_outcome := retail_mid.quality_outcome(v_cmp, r.warn_threshold, r.fail_threshold);
            END IF;
            IF v_brand <> '*' AND cardinality(masked) > 0 AND jsonb_array_length(v_sample) > 0 THEN
                v_sample := (SELECT jsonb_agg(e - masked) FROM jsonb_array_elements(v_sample) e);
            END IF;
            INSERT INTO retail_mid.quality_result (run_id, as_of, rule_id, rule_version, rule_name, table_name, column_name,
                    template, dimension, data_domain, weight, rows_checked, observed, violation_ratio, statistic,
                    threshold_on, compared_value, warn_threshold, fail_threshold, outcome, score, sample, detail, brand)
            SELECT v_job, as_of, r.rule_id, r.version, r.rule_name, v_tbl::text, r.column_name,
                   r.template, tp.dimension, r.data_domain, r.weight, v_rows, v_obs, v_ratio, v_stat,
                   r.threshold_on, v_cmp, r.warn_threshold, r.fail_threshold, v_outcome,
                   CASE v_outcome WHEN 'pass' THEN 100 WHEN 'warn' THEN 50 WHEN 'fail' THEN 0 END, v_sample, v_detail, v_brand
              FROM retail_mid.quality_template tp WHERE tp.template = r.template;
            v_results := v_results + 1;
            CASE v_outcome WHEN 'pass' THEN v_pass := v_pass + 1; WHEN 'warn' THEN v_warn := v_warn + 1;
                           WHEN 'fail' THEN v_fail := v_fail + 1; ELSE v_warmup := v_warmup + 1; END CASE;
          END LOOP;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'quality: % tables, % results: % pass, % warn, % fail, % warming up', v_tables, v_results, v_pass, v_warn, v_fail, v_warmup;
    PERFORM retail_mid.job_finish(v_job, v_results, jsonb_build_object('tables', v_tables, 'pass', v_pass, 'warn', v_warn, 'fail', v_fail, 'warmup', v_warmup));
    RETURN v_job;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_evaluate(regclass, timestamptz) IS 'Evaluates the enabled quality rules of one table (NULL: all tables) in one scan per table, stores a quality_result per rule and returns the run id (job_log.job_id).';

-- ----------------------------------------------------------------- shipped default rule sets
CREATE FUNCTION retail_mid.quality_add_default_rules(table_name regclass, rule_set text DEFAULT 'order_line', data_domain text DEFAULT 'trade')
RETURNS int LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
    base text := (SELECT c.relname FROM pg_class c WHERE c.oid = table_name);
    defs jsonb;
BEGIN
    IF rule_set = 'online_retail' THEN
        -- the raw UCI Online Retail columns (lower-case): invoiceno, stockcode, description, quantity,
        -- invoicedate, unitprice, customerid, country
        defs := '[
          {"n": "customerid_not_null",      "c": "customerid",  "t": "not_null", "w": 2},
          {"n": "description_not_blank",    "c": "description", "t": "not_blank"},
          {"n": "country_not_blank",        "c": "country",     "t": "not_blank"},
          {"n": "invoice_not_cancellation", "c": "invoiceno",   "t": "regex", "p": {"pattern": "^[^C]"}, "warn": 0.05, "fail": 0.1},
          {"n": "invoiceno_format",         "c": "invoiceno",   "t": "regex", "p": {"pattern": "^C?[0-9]{6}$"}},
          {"n": "stockcode_format",         "c": "stockcode",   "t": "regex", "p": {"pattern": "^[0-9]{5}[A-Za-z]{0,2}$"}, "warn": 0.01, "fail": 0.05},
          {"n": "quantity_positive",        "c": "quantity",    "t": "range", "p": {"min": 1}, "warn": 0.05, "fail": 0.1},
          {"n": "unitprice_positive",       "c": "unitprice",   "t": "range", "p": {"min": 0, "min_exclusive": true}},
          {"n": "unitprice_not_negative",   "c": "unitprice",   "t": "range", "p": {"min": 0}},
          {"n": "cancellation_consistency",                     "t": "expression", "p": {"expression": "(quantity < 0) = (invoiceno LIKE ''C%'')"}},
          {"n": "duplicate_lines",                              "t": "duplicate_rows"},
          {"n": "invoicedate_fresh",        "c": "invoicedate", "t": "freshness"},
          {"n": "row_count_stable",                             "t": "stability", "p": {"metric": "row_count"}}
        ]';
    ELSIF rule_set = 'order_line' THEN
        -- the DWD order line shape (dwd_trade_order_line_di)
        defs := '[
          {"n": "dt_not_null",          "c": "dt",          "t": "not_null"},
          {"n": "brand_not_null",       "c": "brand",       "t": "not_null"},
          {"n": "order_id_not_null",    "c": "order_id",    "t": "not_null"},
          {"n": "line_no_not_null",     "c": "line_no",     "t": "not_null"},
          {"n": "order_time_not_null",  "c": "order_time",  "t": "not_null"},
          {"n": "store_id_not_null",    "c": "store_id",    "t": "not_null"},
          {"n": "channel_not_null",     "c": "channel",     "t": "not_null"},
          {"n": "sku_id_not_null",      "c": "sku_id",      "t": "not_null"},
          {"n": "quantity_not_null",    "c": "quantity",    "t": "not_null"},
          {"n": "unit_price_not_null",  "c": "unit_price",  "t": "not_null"},
          {"n": "discount_not_null",    "c": "discount",    "t": "not_null"},
          {"n": "amount_not_null",      "c": "amount",      "t": "not_null"},
          {"n": "line_type_not_null",   "c": "line_type",   "t": "not_null"},
          {"n": "customer_key_known",   "c": "customer_key", "t": "not_null", "warn": 0.3, "fail": 0.6},
          {"n": "line_key_unique",                          "t": "unique_key", "p": {"columns": ["brand", "order_id", "line_no"]}},
          {"n": "unit_price_range",     "c": "unit_price",  "t": "range", "p": {"min": 0, "max": 100000}},
          {"n": "discount_range",       "c": "discount",    "t": "range", "p": {"min": 0}},
          {"n": "quantity_range",       "c": "quantity",    "t": "range", "p": {"min": -1000, "max": 1000}},
          {"n": "line_type_accepted",   "c": "line_type",   "t": "accepted_values", "p": {"values": ["sale", "return"]}},
          {"n": "sku_id_format",        "c": "sku_id",      "t": "regex", "p": {"pattern": "^[A-Z0-9][A-Z0-9_-]*$"}},
          {"n": "order_time_fresh",     "c": "order_time",  "t": "freshness"}
        ]';
    ELSE
        RAISE EXCEPTION 'unknown default rule set "%"', rule_set USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use order_line or online_retail.';
    END IF;
    INSERT INTO retail_mid.quality_rule (rule_name, table_name, column_name, template, parameters, weight,
                                         warn_threshold, fail_threshold, data_domain, description)
    SELECT left(base || '_' || (d->>'n'), 63), quality_add_default_rules.table_name, d->>'c', d->>'t', coalesce(d->'p', '{}'),
           coalesce((d->>'w')::float8, 1), (d->>'warn')::float8, (d->>'fail')::float8, quality_add_default_rules.data_domain,
           'default rule set ' || rule_set
      FROM jsonb_array_elements(defs) d
    ON CONFLICT (rule_name) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.quality_add_default_rules(regclass, text, text) IS 'Adds a shipped default rule set to a table (order_line: the DWD order line shape; online_retail: the raw UCI Online Retail columns); rules are named <table>_<rule>; returns how many were added.';

-- ----------------------------------------------------------------- dashboard views
CREATE VIEW retail_mid.quality_result_daily AS
SELECT DISTINCT ON (r.rule_id, r.brand, r.as_of::date)
       r.as_of::date AS day, r.brand, r.rule_id, r.rule_version, r.rule_name, r.table_name, r.column_name, r.template,
       r.dimension, r.data_domain, r.weight, r.rows_checked, r.observed, r.violation_ratio, r.statistic,
       r.compared_value, r.warn_threshold, r.fail_threshold, r.outcome, r.score, r.as_of, r.result_id
  FROM retail_mid.quality_result r
 ORDER BY r.rule_id, r.brand, r.as_of::date, r.as_of DESC, r.result_id DESC;
COMMENT ON VIEW retail_mid.quality_result_daily IS 'The last result of each rule (and brand) on each day (day of as_of in the session time zone).';
COMMENT ON COLUMN retail_mid.quality_result_daily.brand IS '''*'' for the whole table, else the brand of a per-brand result.';
COMMENT ON COLUMN retail_mid.quality_result_daily.day IS 'Day of the evaluation time as_of.';
COMMENT ON COLUMN retail_mid.quality_result_daily.rule_id IS 'Rule.';
COMMENT ON COLUMN retail_mid.quality_result_daily.rule_version IS 'Rule version evaluated.';
COMMENT ON COLUMN retail_mid.quality_result_daily.rule_name IS 'Rule name.';
COMMENT ON COLUMN retail_mid.quality_result_daily.table_name IS 'Checked table.';
COMMENT ON COLUMN retail_mid.quality_result_daily.column_name IS 'Checked column, if any.';
COMMENT ON COLUMN retail_mid.quality_result_daily.template IS 'Rule template.';
COMMENT ON COLUMN retail_mid.quality_result_daily.dimension IS 'Quality dimension.';
COMMENT ON COLUMN retail_mid.quality_result_daily.data_domain IS 'Data domain.';
COMMENT ON COLUMN retail_mid.quality_result_daily.weight IS 'Rule weight.';
COMMENT ON COLUMN retail_mid.quality_result_daily.rows_checked IS 'Rows of the table.';
COMMENT ON COLUMN retail_mid.quality_result_daily.observed IS 'Observed value (see quality_result.observed).';
COMMENT ON COLUMN retail_mid.quality_result_daily.violation_ratio IS 'Violating rows / rows for row rules.';
COMMENT ON COLUMN retail_mid.quality_result_daily.statistic IS 'z-score for stability rules.';
COMMENT ON COLUMN retail_mid.quality_result_daily.compared_value IS 'Quantity compared with the thresholds.';
COMMENT ON COLUMN retail_mid.quality_result_daily.warn_threshold IS 'Warning threshold.';
COMMENT ON COLUMN retail_mid.quality_result_daily.fail_threshold IS 'Failure threshold.';
COMMENT ON COLUMN retail_mid.quality_result_daily.outcome IS 'pass, warn, fail or warmup.';
COMMENT ON COLUMN retail_mid.quality_result_daily.score IS '100, 50, 0, or NULL for warmup.';
COMMENT ON COLUMN retail_mid.quality_result_daily.as_of IS 'Evaluation time of this result.';
COMMENT ON COLUMN retail_mid.quality_result_daily.result_id IS 'quality_result row.';

CREATE VIEW retail_mid.quality_result_latest AS
SELECT DISTINCT ON (d.rule_id, d.brand) d.*
  FROM retail_mid.quality_result_daily d
 ORDER BY d.rule_id, d.brand, d.day DESC;
COMMENT ON VIEW retail_mid.quality_result_latest IS 'The latest result of each rule (and brand).';
COMMENT ON COLUMN retail_mid.quality_result_latest.brand IS '''*'' for the whole table, else the brand of a per-brand result.';
COMMENT ON COLUMN retail_mid.quality_result_latest.day IS 'Day of the evaluation time as_of.';
COMMENT ON COLUMN retail_mid.quality_result_latest.rule_id IS 'Rule.';
COMMENT ON COLUMN retail_mid.quality_result_latest.rule_version IS 'Rule version evaluated.';
COMMENT ON COLUMN retail_mid.quality_result_latest.rule_name IS 'Rule name.';
COMMENT ON COLUMN retail_mid.quality_result_latest.table_name IS 'Checked table.';
COMMENT ON COLUMN retail_mid.quality_result_latest.column_name IS 'Checked column, if any.';
COMMENT ON COLUMN retail_mid.quality_result_latest.template IS 'Rule template.';
COMMENT ON COLUMN retail_mid.quality_result_latest.dimension IS 'Quality dimension.';
COMMENT ON COLUMN retail_mid.quality_result_latest.data_domain IS 'Data domain.';
COMMENT ON COLUMN retail_mid.quality_result_latest.weight IS 'Rule weight.';
COMMENT ON COLUMN retail_mid.quality_result_latest.rows_checked IS 'Rows of the table.';
COMMENT ON COLUMN retail_mid.quality_result_latest.observed IS 'Observed value (see quality_result.observed).';
COMMENT ON COLUMN retail_mid.quality_result_latest.violation_ratio IS 'Violating rows / rows for row rules.';
COMMENT ON COLUMN retail_mid.quality_result_latest.statistic IS 'z-score for stability rules.';
COMMENT ON COLUMN retail_mid.quality_result_latest.compared_value IS 'Quantity compared with the thresholds.';
COMMENT ON COLUMN retail_mid.quality_result_latest.warn_threshold IS 'Warning threshold.';
COMMENT ON COLUMN retail_mid.quality_result_latest.fail_threshold IS 'Failure threshold.';
COMMENT ON COLUMN retail_mid.quality_result_latest.outcome IS 'pass, warn, fail or warmup.';
COMMENT ON COLUMN retail_mid.quality_result_latest.score IS '100, 50, 0, or NULL for warmup.';
COMMENT ON COLUMN retail_mid.quality_result_latest.as_of IS 'Evaluation time of this result.';
COMMENT ON COLUMN retail_mid.quality_result_latest.result_id IS 'quality_result row.';

-- Weighted scores per day at five grains; warm-up results carry no score and are only counted.
CREATE VIEW retail_mid.quality_score AS
WITH d AS (SELECT * FROM retail_mid.quality_result_daily)
SELECT g.day, g.brand, g.grain, g.subject,
       round((sum(g.weight * g.score) FILTER (WHERE g.score IS NOT NULL)
              / nullif(sum(g.weight) FILTER (WHERE g.score IS NOT NULL), 0))::numeric, 2) AS score,
       count(*) AS rules,
       count(*) FILTER (WHERE g.outcome = 'pass') AS passed,
       count(*) FILTER (WHERE g.outcome = 'warn') AS warned,
       count(*) FILTER (WHERE g.outcome = 'fail') AS failed,
       count(*) FILTER (WHERE g.outcome = 'warmup') AS warming_up
  FROM (SELECT d.day, d.brand, x.grain, x.subject, d.weight, d.score, d.outcome
          FROM d CROSS JOIN LATERAL (VALUES ('rule', d.rule_name), ('table', d.table_name), ('domain', d.data_domain),
                                            ('dimension', d.dimension), ('overall', 'all')) AS x(grain, subject)) g
 GROUP BY g.day, g.brand, g.grain, g.subject;
COMMENT ON VIEW retail_mid.quality_score IS 'Daily quality scores (0..100, weighted by rule weight, from each rule''s last result of the day) per rule, table, data domain, quality dimension and overall; for the whole tables (brand ''*'') and per brand (the by_brand rules only).';
COMMENT ON COLUMN retail_mid.quality_score.brand IS '''*'': scores of the whole tables (every rule); a brand: scores of the by_brand rules'' results for that brand.';
COMMENT ON COLUMN retail_mid.quality_score.day IS 'Day of evaluation.';
COMMENT ON COLUMN retail_mid.quality_score.grain IS 'rule, table, domain, dimension or overall.';
COMMENT ON COLUMN retail_mid.quality_score.subject IS 'The rule name, table, data domain or dimension scored (all for overall).';
COMMENT ON COLUMN retail_mid.quality_score.score IS 'Weighted mean of rule scores (pass 100, warn 50, fail 0); NULL when every rule is warming up.';
COMMENT ON COLUMN retail_mid.quality_score.rules IS 'Rules evaluated that day.';
COMMENT ON COLUMN retail_mid.quality_score.passed IS 'Rules that passed.';
COMMENT ON COLUMN retail_mid.quality_score.warned IS 'Rules that warned.';
COMMENT ON COLUMN retail_mid.quality_score.failed IS 'Rules that failed.';
COMMENT ON COLUMN retail_mid.quality_score.warming_up IS 'Stability rules still without verdict.';

CREATE VIEW retail_mid.quality_worse_since_yesterday AS
WITH d AS (SELECT * FROM retail_mid.quality_result_daily),
     today AS (SELECT d.brand, max(d.day) AS day FROM d GROUP BY d.brand)
SELECT t.day, t.brand, t.rule_id, t.rule_name, t.table_name, t.dimension, t.data_domain,
       y.outcome AS outcome_before, t.outcome AS outcome_now,
       y.score AS score_before, t.score AS score_now,
       y.compared_value AS compared_before, t.compared_value AS compared_now,
       CASE WHEN t.score < y.score THEN 'outcome' ELSE 'value' END AS change
  FROM d t
  JOIN today ON t.brand = today.brand AND t.day = today.day
  JOIN d y ON y.rule_id = t.rule_id AND y.brand = t.brand AND y.day = today.day - 1
 WHERE t.score < y.score
    OR (t.score = y.score AND t.compared_value > y.compared_value);
COMMENT ON VIEW retail_mid.quality_worse_since_yesterday IS 'Rules whose result on the latest day with results is worse than the day before: a lower score (outcome), or the same outcome with a higher compared value (more violations, older data, larger z-score).';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.day IS 'Latest day with results (of the brand).';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.brand IS '''*'' for the whole table, else the brand of a per-brand result.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.rule_id IS 'Rule.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.rule_name IS 'Rule name.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.table_name IS 'Checked table.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.dimension IS 'Quality dimension.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.data_domain IS 'Data domain.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.outcome_before IS 'Outcome the day before.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.outcome_now IS 'Outcome on the latest day.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.score_before IS 'Score the day before.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.score_now IS 'Score on the latest day.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.compared_before IS 'Compared value the day before.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.compared_now IS 'Compared value on the latest day.';
COMMENT ON COLUMN retail_mid.quality_worse_since_yesterday.change IS 'outcome (the verdict got worse) or value (same verdict, worse figure).';
