-- governance/metric.sql: the metric registry: atomic, derived and composite metrics, and the DWS tables holding them.
--
-- Atomic metrics, business qualifiers, periods and granularities are defined once; a derived metric is one of
-- each, named <qualifier>_<atomic>_<period>; composite metrics are expressions of derived ones. The registry
-- generates and refreshes the DWS tables holding them and reconciles them against DWD.

CREATE TABLE retail_mid.metric_atomic (
    atomic       text PRIMARY KEY CHECK (atomic ~ '^[a-z][a-z0-9_]{0,30}$'),
    dwd_table    regclass NOT NULL,
    time_column  text NOT NULL,
    expression   text NOT NULL,
    unit         text NOT NULL,
    additivity   text NOT NULL CHECK (additivity IN ('additive', 'semi_additive', 'non_additive')),
    description  text,
    distinct_key text,
    distinct_key_type text CHECK (distinct_key_type IN ('int4', 'dictionary')),
    author       regrole DEFAULT (quote_ident(CURRENT_USER))::regrole
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_atomic', '');
COMMENT ON TABLE retail_mid.metric_atomic IS 'Atomic metrics: an aggregate SQL expression over the rows of a DWD table (alias t), with unit and additivity.';
COMMENT ON COLUMN retail_mid.metric_atomic.atomic IS 'Name (lower case, digits, underscores), the middle part of derived metric names.';
COMMENT ON COLUMN retail_mid.metric_atomic.dwd_table IS 'The DWD table the expression aggregates.';
COMMENT ON COLUMN retail_mid.metric_atomic.time_column IS 'Date or timestamp column of the DWD table that places a row on a day.';
COMMENT ON COLUMN retail_mid.metric_atomic.expression IS 'Aggregate expression over alias t, e.g. sum(t.amount) or count(DISTINCT t.customer_key).';
COMMENT ON COLUMN retail_mid.metric_atomic.unit IS 'Unit of the value, e.g. CNY, orders, customers, ratio.';
COMMENT ON COLUMN retail_mid.metric_atomic.additivity IS 'additive: daily values may be summed over days and dimensions; semi_additive: summed over dimensions, not over time (a window takes its last day, e.g. stock on hand); non_additive: a distinct count, never summed: its daily bitmaps of keys are OR-ed over the window.';
COMMENT ON COLUMN retail_mid.metric_atomic.description IS 'Business definition in words.';
COMMENT ON COLUMN retail_mid.metric_atomic.distinct_key IS 'For a distinct count count(DISTINCT key): the key expression (set by the registry).';
COMMENT ON COLUMN retail_mid.metric_atomic.distinct_key_type IS 'int4: keys (smallint/integer, >= 0) go into the bitmaps as they are; dictionary: other keys are numbered through retail_mid.metric_distinct_key first.';

CREATE TABLE retail_mid.metric_distinct_key (
    value text PRIMARY KEY,
    key   int4 GENERATED ALWAYS AS IDENTITY (MAXVALUE 2147483647) UNIQUE
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_distinct_key', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_distinct_key_key_seq', '');
COMMENT ON TABLE retail_mid.metric_distinct_key IS 'Dictionary numbering the keys of distinct-count metrics that are not integers (e.g. order ids), so that they can be stored in roaring bitmaps and OR-ed exactly over windows.';
COMMENT ON COLUMN retail_mid.metric_distinct_key.value IS 'Key as text.';
COMMENT ON COLUMN retail_mid.metric_distinct_key.key IS 'Its number in the bitmaps.';

CREATE TABLE retail_mid.metric_qualifier (
    qualifier    text PRIMARY KEY CHECK (qualifier ~ '^[a-z][a-z0-9_]{0,30}$'),
    predicate    text NOT NULL,
    description  text,
    author       regrole DEFAULT (quote_ident(CURRENT_USER))::regrole
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_qualifier', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.metric_qualifier FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.metric_qualifier IS 'Business qualifiers: named row predicates over DWD rows (alias t). The qualifier all (predicate true) is left out of metric names.';
COMMENT ON COLUMN retail_mid.metric_qualifier.qualifier IS 'Name, the first part of derived metric names (omitted for all).';
COMMENT ON COLUMN retail_mid.metric_qualifier.predicate IS 'Boolean SQL expression over alias t, e.g. t.line_type = ''sale''.';
COMMENT ON COLUMN retail_mid.metric_qualifier.description IS 'Business meaning.';
INSERT INTO retail_mid.metric_qualifier VALUES ('all', 'true', 'No restriction.');

CREATE TABLE retail_mid.metric_period (
    period       text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('rolling', 'to_date', 'calendar_week', 'calendar_month')),
    days         int CHECK ((kind = 'rolling') = (days IS NOT NULL) AND (days IS NULL OR days > 0)),
    description  text NOT NULL
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_period', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.metric_period FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.metric_period IS 'Statistical periods: the window of days ending on the statistics date dt that a derived metric covers.';
COMMENT ON COLUMN retail_mid.metric_period.period IS 'Name, the last part of derived metric names.';
COMMENT ON COLUMN retail_mid.metric_period.kind IS 'rolling (the last days days up to dt), to_date (all history up to dt), calendar_week (ISO week of dt up to dt), calendar_month (month of dt up to dt).';
COMMENT ON COLUMN retail_mid.metric_period.days IS 'Window length of rolling periods.';
COMMENT ON COLUMN retail_mid.metric_period.description IS 'Meaning.';
INSERT INTO retail_mid.metric_period VALUES
 ('1d', 'rolling', 1, 'The day dt.'), ('7d', 'rolling', 7, 'The 7 days ending on dt.'),
 ('30d', 'rolling', 30, 'The 30 days ending on dt.'), ('90d', 'rolling', 90, 'The 90 days ending on dt.'),
 ('365d', 'rolling', 365, 'The 365 days ending on dt.'), ('td', 'to_date', NULL, 'All days up to dt.'),
 ('cw', 'calendar_week', NULL, 'The ISO week of dt, Monday to dt.'), ('cm', 'calendar_month', NULL, 'The month of dt, first day to dt.');

CREATE TABLE retail_mid.metric_granularity (
    granularity  text PRIMARY KEY CHECK (granularity ~ '^[a-z][a-z0-9_]{0,30}$' AND granularity !~ '_1d$'),
    dimensions   text[] NOT NULL CHECK (cardinality(dimensions) >= 0),
    description  text
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_granularity', '');
COMMENT ON TABLE retail_mid.metric_granularity IS 'Granularities: the dimension columns a metric is broken down by (the DWD column names); each has two generated DWS tables, retail_mid.dws_metric_<granularity>_1d (daily values and key bitmaps) and retail_mid.dws_metric_<granularity> (every derived metric per statistics date).';
COMMENT ON COLUMN retail_mid.metric_granularity.granularity IS 'Name, also the suffix of the generated DWS tables (not ending in _1d).';

CREATE TABLE retail_mid.metric_coverage (
    granularity text PRIMARY KEY REFERENCES retail_mid.metric_granularity ON DELETE CASCADE,
    days        datemultirange NOT NULL,
    day_columns text[] NOT NULL
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_coverage', '');
COMMENT ON TABLE retail_mid.metric_coverage IS 'Which days the daily table dws_metric_<granularity>_1d holds, and for which columns (a new daily column empties it, so history is rebuilt where windows need it).';
COMMENT ON COLUMN retail_mid.metric_coverage.granularity IS 'Granularity.';
COMMENT ON COLUMN retail_mid.metric_coverage.days IS 'Days built from DWD.';
COMMENT ON COLUMN retail_mid.metric_coverage.day_columns IS 'The daily columns they were built with.';
COMMENT ON COLUMN retail_mid.metric_granularity.dimensions IS 'DWD column names, e.g. {brand,store_id}; empty for the grand total.';
COMMENT ON COLUMN retail_mid.metric_granularity.description IS 'Meaning.';

CREATE TABLE retail_mid.metric_derived (
    metric       text NOT NULL,
    atomic       text NOT NULL REFERENCES retail_mid.metric_atomic,
    qualifier    text NOT NULL DEFAULT 'all' REFERENCES retail_mid.metric_qualifier,
    period       text NOT NULL REFERENCES retail_mid.metric_period,
    granularity  text NOT NULL REFERENCES retail_mid.metric_granularity,
    description  text,
    PRIMARY KEY (metric, granularity),
    UNIQUE (atomic, qualifier, period, granularity)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_derived', '');
COMMENT ON TABLE retail_mid.metric_derived IS 'Derived metrics: one atomic metric, one qualifier, one period, computed at one granularity. The name is <qualifier>_<atomic>_<period> (<atomic>_<period> for qualifier all); a name means one definition (atomic, qualifier, period) at every granularity it is computed at.';
COMMENT ON COLUMN retail_mid.metric_derived.metric IS 'Name, also the column of the DWS table.';
COMMENT ON COLUMN retail_mid.metric_derived.atomic IS 'Atomic metric.';
COMMENT ON COLUMN retail_mid.metric_derived.qualifier IS 'Business qualifier.';
COMMENT ON COLUMN retail_mid.metric_derived.period IS 'Statistical period.';
COMMENT ON COLUMN retail_mid.metric_derived.granularity IS 'Granularity (DWS table) it is computed at.';
COMMENT ON COLUMN retail_mid.metric_derived.description IS 'Meaning.';

CREATE TABLE retail_mid.metric_composite (
    metric       text NOT NULL CHECK (metric ~ '^[a-z][a-z0-9_]{0,62}$'),
    granularity  text NOT NULL REFERENCES retail_mid.metric_granularity,
    expression   text NOT NULL,
    unit         text NOT NULL,
    description  text,
    author       regrole DEFAULT (quote_ident(CURRENT_USER))::regrole,
    PRIMARY KEY (metric, granularity)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.metric_composite', '');
COMMENT ON TABLE retail_mid.metric_composite IS 'Composite metrics: an expression of derived metrics of the same granularity, written with {derived_name} placeholders, e.g. {sale_amount_7d} / nullif({sale_orders_7d}, 0).';
COMMENT ON COLUMN retail_mid.metric_composite.metric IS 'Name, also the column of the DWS table.';
COMMENT ON COLUMN retail_mid.metric_composite.granularity IS 'Granularity; every referenced derived metric must exist at it.';
COMMENT ON COLUMN retail_mid.metric_composite.expression IS 'SQL expression with {derived_name} placeholders.';
COMMENT ON COLUMN retail_mid.metric_composite.unit IS 'Unit of the value.';
COMMENT ON COLUMN retail_mid.metric_composite.description IS 'Meaning.';
COMMENT ON COLUMN retail_mid.metric_atomic.author IS 'The role that wrote the expression: the registry runs it with that role''s rights, never more (retail_mid.registry_role); set by default and when another user changes the expression; NULL (definitions from before 1.1.0) runs as retail_mid_admin.';
COMMENT ON COLUMN retail_mid.metric_qualifier.author IS 'The role that wrote the predicate: the registry runs it with that role''s rights, never more; set by default and when another user changes the predicate; NULL runs as retail_mid_admin.';
COMMENT ON COLUMN retail_mid.metric_composite.author IS 'The role that wrote the expression: the registry runs it with that role''s rights, never more; set by default and when another user changes the expression; NULL runs as retail_mid_admin.';
CREATE TRIGGER metric_atomic_author BEFORE INSERT OR UPDATE ON retail_mid.metric_atomic
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('atomic', 'expression', 'dwd_table', 'time_column');
CREATE TRIGGER metric_qualifier_author BEFORE INSERT OR UPDATE ON retail_mid.metric_qualifier
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('qualifier', 'predicate');
CREATE TRIGGER metric_composite_author BEFORE INSERT OR UPDATE ON retail_mid.metric_composite
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('metric', 'expression');

-- The role the SQL of an atomic metric under a qualifier runs as (src/common/registry.sql), once the expression,
-- its distinct key and the predicate are each checked to be a single expression.
CREATE FUNCTION retail_mid.metric_role(atomic text, qualifier text) RETURNS regrole
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a retail_mid.metric_atomic;
    q retail_mid.metric_qualifier;
BEGIN
    SELECT * INTO a FROM retail_mid.metric_atomic x WHERE x.atomic = metric_role.atomic;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown atomic metric "%"', atomic USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO q FROM retail_mid.metric_qualifier x WHERE x.qualifier = metric_role.qualifier;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown qualifier "%"', qualifier USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM retail_mid.registry_check_sql(a.expression, 'expression', format('expression of atomic metric %s', a.atomic)),
            retail_mid.registry_check_sql(a.distinct_key, 'expression', format('distinct key of atomic metric %s', a.atomic)),
            retail_mid.registry_check_sql(q.predicate, 'expression', format('predicate of qualifier %s', q.qualifier));
    RETURN retail_mid.registry_role(ARRAY[a.author, q.author], format('atomic metric %s under qualifier %s', a.atomic, q.qualifier));
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_role(text, text) IS 'The role the expression of an atomic metric and the predicate of a qualifier run as (retail_mid.registry_role of their authors), after checking that each is a single expression (42601).';

-- Checks an atomic metric: the expression and the time column must compile against the DWD table, and the
-- additivity must be one the registry can roll up exactly: sums and counts are additive (or semi-additive),
-- non-additive metrics are distinct counts (rolled up through bitmaps of their keys), and ratios or averages
-- are refused (they are composite metrics of their additive parts).
CREATE FUNCTION retail_mid.metric_atomic_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[];
    keytype text;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
    IF NEW.atomic !~ '^[a-z][a-z0-9_]{0,30}$' THEN
        RAISE EXCEPTION 'invalid atomic metric name "%"', NEW.atomic USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 31 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF NEW.additivity IS NULL OR NEW.additivity NOT IN ('additive', 'semi_additive', 'non_additive') THEN
        RAISE EXCEPTION 'unknown additivity "%"', NEW.additivity USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use additive, semi_additive or non_additive.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = NEW.dwd_table AND a.attname = NEW.time_column
                    AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in %', NEW.time_column, NEW.dwd_table USING ERRCODE = 'undefined_column';
    END IF;
    -- compiled as its author, restricted (planning may evaluate functions): src/common/registry.sql
    PERFORM retail_mid.registry_check_sql(NEW.expression, 'expression', format('expression of atomic metric %s', NEW.atomic));
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('atomic metric %s', NEW.atomic)));
    EXECUTE format('SELECT (t.%I)::date, (%s)::numeric FROM %s AS t GROUP BY 1 LIMIT 0', NEW.time_column, NEW.expression, NEW.dwd_table);
    PERFORM retail_mid.registry_leave(tok);
    NEW.distinct_key := NULL;
    NEW.distinct_key_type := NULL;
    IF NEW.additivity <> 'non_additive' AND NEW.expression ~* 'distinct' THEN
        RAISE EXCEPTION 'atomic metric "%" counts distinct values and cannot be %', NEW.atomic, NEW.additivity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Declare distinct counts non_additive: their daily key bitmaps are OR-ed over windows, never summed.';
    END IF;
    IF NEW.additivity <> 'non_additive'
       AND (NEW.expression ~* '\m(avg|min|max|mode|percentile_cont|percentile_disc|stddev[a-z_]*|variance|var_pop|var_samp|bool_and|bool_or|every)\s*\('
            OR NEW.expression ~* '/\s*(nullif\s*\(\s*)?(sum|count)\s*\(') THEN
        RAISE EXCEPTION 'atomic metric "%" is not a sum or a count and cannot be %', NEW.atomic, NEW.additivity
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Averages, ratios, minima and maxima of days are not the sum of their daily values.',
                  HINT = 'Define the numerator and the denominator as additive atomic metrics and the ratio as a composite metric, e.g. {sale_amount_7d} / nullif({sale_orders_7d}, 0).';
    END IF;
    IF NEW.additivity = 'non_additive' THEN
        m := regexp_match(NEW.expression, '^\s*count\s*\(\s*distinct\s+(.+)\)\s*$', 'i');
        IF m IS NULL THEN
            RAISE EXCEPTION 'non-additive atomic metric "%" must be a distinct count', NEW.atomic
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Only count(DISTINCT key) rolls up exactly over periods (through roaring bitmaps of the keys).',
                      HINT = 'Write ratios and averages as composite metrics of additive atomic metrics, e.g. {sale_amount_7d} / nullif({sale_orders_7d}, 0).';
        END IF;
        NEW.distinct_key := btrim(m[1]);
        -- the key's type, also when the table is empty: the outer join yields one NULL of that type
        PERFORM retail_mid.registry_check_sql(NEW.distinct_key, 'expression', format('distinct key of atomic metric %s', NEW.atomic));
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('atomic metric %s', NEW.atomic)));
        EXECUTE format('SELECT pg_typeof(s.k)::text FROM (SELECT 1) one LEFT JOIN (SELECT (%s) AS k FROM %s AS t LIMIT 0) s ON true',
                       NEW.distinct_key, NEW.dwd_table) INTO keytype;
        PERFORM retail_mid.registry_leave(tok);
        NEW.distinct_key_type := CASE WHEN keytype IN ('integer', 'smallint') THEN 'int4' ELSE 'dictionary' END;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_atomic_check() IS 'Trigger: an atomic metric''s expression compiles against its DWD table; additive and semi-additive metrics are sums or counts, non-additive ones are distinct counts (their key is recorded).';
CREATE TRIGGER metric_atomic_check BEFORE INSERT OR UPDATE ON retail_mid.metric_atomic
    FOR EACH ROW EXECUTE FUNCTION retail_mid.metric_atomic_check();

CREATE FUNCTION retail_mid.metric_qualifier_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
    IF NEW.qualifier !~ '^[a-z][a-z0-9_]{0,30}$' THEN
        RAISE EXCEPTION 'invalid qualifier name "%"', NEW.qualifier USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 31 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF coalesce(btrim(NEW.predicate), '') = '' THEN
        RAISE EXCEPTION 'qualifier "%" needs a predicate', NEW.qualifier USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the predicate is one expression, and compiles against the DWD tables of the derived metrics using it
    -- (checked there), as its author
    PERFORM retail_mid.registry_check_sql(NEW.predicate, 'expression', format('predicate of qualifier %s', NEW.qualifier));
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('qualifier %s', NEW.qualifier)));
    PERFORM retail_mid.metric_compile_predicate(NEW.predicate, a.dwd_table)
       FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic) WHERE d.qualifier = NEW.qualifier;
    PERFORM retail_mid.registry_leave(tok);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_qualifier_check() IS 'Trigger: checks a qualifier''s name and that its predicate still compiles where it is used.';
CREATE TRIGGER metric_qualifier_check BEFORE INSERT OR UPDATE ON retail_mid.metric_qualifier
    FOR EACH ROW EXECUTE FUNCTION retail_mid.metric_qualifier_check();

CREATE FUNCTION retail_mid.metric_compile_predicate(predicate text, dwd_table regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT 1 FROM %s AS t WHERE (%s) LIMIT 0', dwd_table,
                   retail_mid.registry_check_sql(predicate, 'expression', 'a qualifier predicate'));
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) IS 'Raises the parser''s error when a predicate does not compile against a DWD table; a predicate that is not one expression is 42601. Internal to the registry''s triggers, which call it as the predicate''s author: not executable by PUBLIC.';
REVOKE EXECUTE ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) TO retail_mid_admin;

-- Enforces the naming rules of derived metrics: the name is the one its parts give, one name means one
-- definition, and the qualifier and dimensions must compile against the atomic metric's DWD table.
CREATE FUNCTION retail_mid.metric_derived_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expected text;
    other record;
    a retail_mid.metric_atomic;
    missing text;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
    IF NOT EXISTS (SELECT 1 FROM retail_mid.metric_period p WHERE p.period = NEW.period) THEN
        RAISE EXCEPTION 'unknown period "%"', NEW.period USING ERRCODE = 'invalid_parameter_value',
            HINT = (SELECT 'Use one of ' || string_agg(p.period, ', ' ORDER BY p.days NULLS LAST, p.period) || '.' FROM retail_mid.metric_period p);
    END IF;
    expected := CASE WHEN NEW.qualifier = 'all' THEN '' ELSE NEW.qualifier || '_' END || NEW.atomic || '_' || NEW.period;
    IF length(expected) > 53 THEN
        RAISE EXCEPTION 'derived metric name "%" is too long', expected USING ERRCODE = 'invalid_name',
            DETAIL = 'Names (and the daily bitmap columns <qualifier>_<atomic>_1d_bitmap) must fit in 63 bytes.',
            HINT = 'Shorten the qualifier or the atomic metric name.';
    END IF;
    IF NEW.metric IS NULL THEN
        NEW.metric := expected;
    ELSIF NEW.metric <> expected THEN
        RAISE EXCEPTION 'derived metric name "%" does not follow the naming rule', NEW.metric USING ERRCODE = 'invalid_name',
            DETAIL = format('A metric of qualifier %s, atomic metric %s and period %s is named %s.', NEW.qualifier, NEW.atomic, NEW.period, expected),
            HINT = 'Names are <qualifier>_<atomic>_<period>, without the qualifier when it is all; leave metric NULL to have it set.';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE (d.atomic, d.qualifier, d.period, d.granularity) = (NEW.atomic, NEW.qualifier, NEW.period, NEW.granularity)
                  AND (TG_OP = 'INSERT' OR (d.metric, d.granularity) <> (OLD.metric, OLD.granularity))) THEN
        RAISE EXCEPTION 'derived metric "%" is already defined at granularity %', NEW.metric, NEW.granularity
            USING ERRCODE = 'unique_violation';
    END IF;
    SELECT d.atomic, d.qualifier, d.period INTO other FROM retail_mid.metric_derived d
     WHERE d.metric = NEW.metric AND (d.atomic, d.qualifier, d.period) IS DISTINCT FROM (NEW.atomic, NEW.qualifier, NEW.period)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'metric name "%" already names another definition', NEW.metric USING ERRCODE = 'unique_violation',
            DETAIL = format('It is qualifier %s, atomic metric %s, period %s.', other.qualifier, other.atomic, other.period),
            HINT = 'Rename the qualifier or the atomic metric so that names stay unambiguous.';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.metric_composite c WHERE c.metric = NEW.metric) THEN
        RAISE EXCEPTION 'metric name "%" is already a composite metric', NEW.metric USING ERRCODE = 'unique_violation';
    END IF;
    SELECT * INTO a FROM retail_mid.metric_atomic WHERE atomic = NEW.atomic;
    IF FOUND THEN
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY(SELECT q.author FROM retail_mid.metric_qualifier q WHERE q.qualifier = NEW.qualifier),
                                                                  format('qualifier %s', NEW.qualifier)));
        PERFORM retail_mid.metric_compile_predicate(q.predicate, a.dwd_table) FROM retail_mid.metric_qualifier q WHERE q.qualifier = NEW.qualifier;
        PERFORM retail_mid.registry_leave(tok);
        SELECT string_agg(d, ', ') INTO missing FROM retail_mid.metric_granularity g, unnest(g.dimensions) d
         WHERE g.granularity = NEW.granularity
           AND NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = a.dwd_table AND x.attname = d AND x.attnum > 0 AND NOT x.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'granularity "%" needs column % missing from %', NEW.granularity, missing, a.dwd_table
                USING ERRCODE = 'undefined_column';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_derived_check() IS 'Trigger: derived metric naming rules (<qualifier>_<atomic>_<period>, one definition per name) and compatibility of its parts.';
CREATE TRIGGER metric_derived_check BEFORE INSERT OR UPDATE ON retail_mid.metric_derived
    FOR EACH ROW EXECUTE FUNCTION retail_mid.metric_derived_check();

CREATE FUNCTION retail_mid.metric_composite_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    expr text;
    tok int8;
BEGIN IF TG_OP = 'INSERT' AND retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
    IF EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.metric = NEW.metric) THEN
        RAISE EXCEPTION 'metric name "%" is already a derived metric', NEW.metric USING ERRCODE = 'unique_violation';
    END IF;
    IF NEW.expression !~ '\{[a-z][a-z0-9_]*\}' THEN
        RAISE EXCEPTION 'composite metric "%" references no derived metric', NEW.metric USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Write derived metrics as {name}.';
    END IF;
    SELECT string_agg(m[1], ', ') INTO missing FROM regexp_matches(NEW.expression, '\{([a-z][a-z0-9_]*)\}', 'g') m
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.metric = m[1] AND d.granularity = NEW.granularity);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'composite metric "%" references %, not a derived metric of granularity %', NEW.metric, missing, NEW.granularity
            USING ERRCODE = 'undefined_object';
    END IF;
    expr := regexp_replace(NEW.expression, '\{([a-z][a-z0-9_]*)\}', '1::numeric', 'g');
    PERFORM retail_mid.registry_check_sql(expr, 'expression', format('expression of composite metric %s', NEW.metric));
    tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[NEW.author], format('composite metric %s', NEW.metric)));
    EXECUTE format('SELECT (%s)::numeric LIMIT 0', expr);
    PERFORM retail_mid.registry_leave(tok);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_composite_check() IS 'Trigger: a composite metric references derived metrics of its granularity and compiles.';
CREATE TRIGGER metric_composite_check BEFORE INSERT OR UPDATE ON retail_mid.metric_composite
    FOR EACH ROW EXECUTE FUNCTION retail_mid.metric_composite_check();

-- First day of the window of a period ending on dt.
CREATE FUNCTION retail_mid.metric_window_start(period text, dt date)
RETURNS date LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT CASE p.kind WHEN 'rolling' THEN dt - (p.days - 1)
                           WHEN 'to_date' THEN date '-infinity'
                           WHEN 'calendar_week' THEN date_trunc('week', dt)::date
                           ELSE date_trunc('month', dt)::date END
          FROM retail_mid.metric_period p WHERE p.period = metric_window_start.period);
COMMENT ON FUNCTION retail_mid.metric_window_start(text, date) IS 'First day of the window of a period ending on dt (-infinity for to-date periods).';

-- Name of the daily column of an (atomic metric, qualifier) pair in dws_metric_<granularity>_1d.
CREATE FUNCTION retail_mid.metric_day_column(atomic text, qualifier text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN qualifier = 'all' THEN '' ELSE qualifier || '_' END || atomic || '_1d';
COMMENT ON FUNCTION retail_mid.metric_day_column(text, text) IS 'Daily column of an atomic metric under a qualifier in dws_metric_<granularity>_1d: <qualifier>_<atomic>_1d (distinct counts add <...>_1d_bitmap).';

-- The SQL computing one derived metric for the statistics dates $1..$2, as rows (dt, dims text[], value).
-- Rolled up from the daily table dws_metric_<granularity>_1d: additive metrics sum their daily values over the
-- window, semi-additive ones take the window's last day with a value, distinct counts OR their daily key
-- bitmaps over the window and count the result, so they are exact and never summed. direct = true computes
-- the same straight from the DWD rows of each window (the reconciliation reference).
CREATE FUNCTION retail_mid.metric_sql(metric text, granularity text, direct boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d retail_mid.metric_derived;
    a retail_mid.metric_atomic;
    q text;
    dims text[];
    dimlist text;
    dimarr text;
    spine text;
    t1d text;
    col text;
BEGIN
    SELECT * INTO d FROM retail_mid.metric_derived x WHERE x.metric = metric_sql.metric AND x.granularity = metric_sql.granularity;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no derived metric "%" at granularity "%"', metric, granularity USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO a FROM retail_mid.metric_atomic x WHERE x.atomic = d.atomic;
    SELECT predicate INTO q FROM retail_mid.metric_qualifier x WHERE x.qualifier = d.qualifier;
    SELECT g.dimensions INTO dims FROM retail_mid.metric_granularity g WHERE g.granularity = d.granularity;
    dimlist := (SELECT string_agg(', t.' || quote_ident(x), '' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o));
    dimarr := 'ARRAY[' || coalesce((SELECT string_agg('t.' || quote_ident(x) || '::text', ', ' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o)), '') || ']::text[]';
    spine := format('SELECT s::date AS dt, retail_mid.metric_window_start(%L, s::date) AS ws '
                    'FROM generate_series($1::timestamp, $2::timestamp, interval ''1 day'') s', d.period);
    IF direct THEN
        IF a.additivity = 'semi_additive' THEN
            -- the expression over the DWD rows of the window's last day with rows, per dimension values
            RETURN format('SELECT t.stat_dt AS dt, %s AS dims, (%s)::numeric AS value FROM '
                          '(SELECT w.dt AS stat_dt, t.*, max((t.%I)::date) OVER (PARTITION BY w.dt%s) AS stat_last '
                          '   FROM (%s) w JOIN %s AS t ON (t.%I)::date BETWEEN w.ws AND w.dt WHERE (%s)) t '
                          'WHERE (t.%I)::date = t.stat_last GROUP BY t.stat_dt%s',
                          dimarr, a.expression, a.time_column, dimlist, spine, a.dwd_table, a.time_column, q,
                          a.time_column, dimlist);
        END IF;
        RETURN format('SELECT w.dt, %s AS dims, (%s)::numeric AS value FROM (%s) w JOIN %s AS t '
                      'ON (t.%I)::date BETWEEN w.ws AND w.dt WHERE (%s) GROUP BY w.dt%s',
                      dimarr, a.expression, spine, a.dwd_table, a.time_column, q, dimlist);
    END IF;
    t1d := 'retail_mid.' || quote_ident('dws_metric_' || d.granularity || '_1d');
    col := retail_mid.metric_day_column(d.atomic, d.qualifier);
    IF a.additivity = 'additive' THEN
        RETURN format('SELECT w.dt, %s AS dims, sum(t.%I) AS value FROM (%s) w JOIN %s AS t ON t.dt BETWEEN w.ws AND w.dt '
                      'WHERE t.%I IS NOT NULL GROUP BY w.dt%s',
                      dimarr, col, spine, t1d, col, dimlist);
    ELSIF a.additivity = 'non_additive' THEN
        RETURN format('SELECT w.dt, %s AS dims, retail_mid.rb_cardinality(retail_mid.rb_or_agg(t.%I))::numeric AS value '
                      'FROM (%s) w JOIN %s AS t ON t.dt BETWEEN w.ws AND w.dt WHERE t.%I IS NOT NULL GROUP BY w.dt%s',
                      dimarr, col || '_bitmap', spine, t1d, col || '_bitmap', dimlist);
    END IF;
    RETURN format('SELECT DISTINCT ON (w.dt%s) w.dt, %s AS dims, t.%I AS value FROM (%s) w JOIN %s AS t ON t.dt BETWEEN w.ws AND w.dt '
                  'WHERE t.%I IS NOT NULL ORDER BY w.dt%s, t.dt DESC',
                  dimlist, dimarr, col, spine, t1d, col, dimlist);
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_sql(text, text, boolean) IS 'SQL computing a derived metric as rows (dt, dims, value) for the statistics dates $1..$2, rolled up from the daily table (sums, last day, or the cardinality of OR-ed key bitmaps); direct = true: straight from DWD.';

-- Rebuilds the days [lo, hi] of dws_metric_<granularity>_1d from DWD: one row per day and dimension values,
-- one column per (atomic metric, qualifier), plus the bitmap of the distinct keys for distinct counts.
CREATE FUNCTION retail_mid.metric_build_day(granularity text, lo date, hi date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dims text[];
    dimlist text;
    dimarr text;
    dims_sel text;
    t1d text;
    p record;
    col text;
    sel text;
    cols text := '';
    aggs text := '';
    n bigint;
    dwd regclass;
    run_as regrole;
    tok int8;
BEGIN
    SELECT g.dimensions INTO dims FROM retail_mid.metric_granularity g WHERE g.granularity = metric_build_day.granularity;
    t1d := 'retail_mid.' || quote_ident('dws_metric_' || granularity || '_1d');
    dimlist := (SELECT string_agg(', t.' || quote_ident(x), '' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o));
    dimarr := 'ARRAY[' || coalesce((SELECT string_agg('t.' || quote_ident(x) || '::text', ', ' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o)), '') || ']::text[]';
    SELECT a.dwd_table INTO dwd FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
     WHERE d.granularity = metric_build_day.granularity ORDER BY d.metric LIMIT 1;
    SELECT string_agg(format(', (dims[%s])::%s', o, format_type(att.atttypid, att.atttypmod)), '' ORDER BY o)
      INTO dims_sel
      FROM unnest(dims) WITH ORDINALITY u(x, o) JOIN pg_attribute att ON att.attrelid = dwd AND att.attname = x;
    IF to_regclass('pg_temp.metric_day_long') IS NULL THEN
        CREATE TEMP TABLE metric_day_long (col text, dt date, dims text[], value numeric, bitmap retail_mid.rbitmap) ON COMMIT DROP;
    END IF;
    TRUNCATE metric_day_long;
    FOR p IN SELECT DISTINCT a.atomic, d.qualifier, a.dwd_table, a.time_column, a.expression, a.additivity,
                    a.distinct_key, a.distinct_key_type, q.predicate
               FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
               JOIN retail_mid.metric_qualifier q ON q.qualifier = d.qualifier
              WHERE d.granularity = metric_build_day.granularity ORDER BY 1, 2 LOOP
        col := retail_mid.metric_day_column(p.atomic, p.qualifier);
        -- the expression and the predicate run as their authors, restricted (src/common/registry.sql)
        run_as := retail_mid.metric_role(p.atomic, p.qualifier);
        IF run_as::text <> quote_ident(current_user) THEN
            EXECUTE format('GRANT INSERT ON pg_temp.metric_day_long TO %s', run_as);
        END IF;
        tok := retail_mid.registry_enter(run_as);
        IF p.additivity <> 'non_additive' THEN
            sel := format('SELECT %L, (t.%I)::date, %s, (%s)::numeric, NULL::retail_mid.rbitmap FROM %s AS t '
                          'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 GROUP BY (t.%I)::date%s',
                          col, p.time_column, dimarr, p.expression, p.dwd_table, p.predicate, p.time_column, p.time_column, dimlist);
        ELSIF p.distinct_key_type = 'int4' THEN
            sel := format('SELECT %L, (t.%I)::date, %s, NULL::numeric, coalesce(retail_mid.rb_build_agg((%s)::int4), ''{}'') FROM %s AS t '
                          'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 GROUP BY (t.%I)::date%s',
                          col, p.time_column, dimarr, p.distinct_key, p.dwd_table, p.predicate, p.time_column, p.time_column, dimlist);
        ELSE
            -- keys that are not integers are numbered first (new ones get the next number; numbers never change)
            EXECUTE format('INSERT INTO retail_mid.metric_distinct_key (value) SELECT DISTINCT (%s)::text FROM %s AS t '
                           'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 AND (%s) IS NOT NULL ORDER BY 1 ON CONFLICT (value) DO NOTHING',
                           p.distinct_key, p.dwd_table, p.predicate, p.time_column, p.distinct_key) USING lo, hi;
            sel := format('SELECT %L, (t.%I)::date, %s, NULL::numeric, coalesce(retail_mid.rb_build_agg(k.key), ''{}'') FROM %s AS t '
                          'LEFT JOIN retail_mid.metric_distinct_key k ON k.value = (%s)::text '
                          'WHERE (%s) AND (t.%I)::date BETWEEN $1 AND $2 GROUP BY (t.%I)::date%s',
                          col, p.time_column, dimarr, p.dwd_table, p.distinct_key, p.predicate, p.time_column, p.time_column, dimlist);
        END IF;
        EXECUTE 'INSERT INTO metric_day_long ' || sel USING lo, hi;
        PERFORM retail_mid.registry_leave(tok);
        IF p.additivity = 'non_additive' THEN
            EXECUTE 'UPDATE metric_day_long SET value = retail_mid.rb_cardinality(bitmap) WHERE col = $1' USING col;
            cols := cols || format(', %I, %I', col, col || '_bitmap');
            aggs := aggs || format(', max(value) FILTER (WHERE col = %L), retail_mid.rb_or_agg(bitmap) FILTER (WHERE col = %L)', col, col);
        ELSE
            cols := cols || format(', %I', col);
            aggs := aggs || format(', max(value) FILTER (WHERE col = %L)', col);
        END IF;
    END LOOP;
    EXECUTE format('DELETE FROM %s WHERE dt BETWEEN $1 AND $2', t1d) USING lo, hi;
    EXECUTE format('INSERT INTO %s (dt%s%s) SELECT dt%s%s FROM metric_day_long GROUP BY dt, dims',
                   t1d, coalesce((SELECT string_agg(format(', %I', x), '' ORDER BY o) FROM unnest(dims) WITH ORDINALITY u(x, o)), ''),
                   cols, coalesce(dims_sel, ''), aggs);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_build_day(text, date, date) IS 'Rebuilds the days [lo, hi] of dws_metric_<granularity>_1d from DWD (daily values, and key bitmaps for distinct counts); called by metric_generate.';

-- Creates or extends retail_mid.dws_metric_<granularity>_1d and retail_mid.dws_metric_<granularity>, rebuilds
-- the daily rows of [from_date, to_date] (and any day a window needs that the daily table lacks), and
-- recomputes the derived and composite metrics of every statistics date whose window those days touch: from
-- from_date up to the last date already generated, as far as the longest window reaches.
CREATE FUNCTION retail_mid.metric_generate(granularity text, from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g retail_mid.metric_granularity;
    tbl text;
    t1d text;
    v_job bigint;
    m record;
    dims_def text;
    dims_sel text;
    cols text;
    metric_cols text;
    day_cols text[] := '{}';
    n bigint;
    k int := 0;
    dwd regclass;
    cov retail_mid.metric_coverage;
    covered datemultirange;
    need_from date;
    reach int;
    last_dt date;
    win_to date;
    r daterange;
    built datemultirange := '{}';
    days_built bigint := 0;
    expr text;
    tok int8;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'metric_generate dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'metric_generate range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer range would run until cancelled
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'metric_generate range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got from_date %s and to_date %s.', from_date, to_date);
    END IF;
    SELECT * INTO g FROM retail_mid.metric_granularity x WHERE x.granularity = metric_generate.granularity;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown granularity "%"', granularity USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity) THEN
        RAISE EXCEPTION 'granularity "%" has no derived metrics', granularity USING ERRCODE = 'undefined_object';
    END IF;
    v_job := retail_mid.job_start('metric_generate', jsonb_build_object('granularity', granularity, 'from', from_date, 'to', to_date));
    tbl := 'retail_mid.' || quote_ident('dws_metric_' || g.granularity);
    t1d := 'retail_mid.' || quote_ident('dws_metric_' || g.granularity || '_1d');
    -- dimension column types from the DWD table of the first atomic metric at this granularity
    SELECT a.dwd_table INTO dwd FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
     WHERE d.granularity = g.granularity ORDER BY d.metric LIMIT 1;
    SELECT string_agg(format(', %I %s', x, format_type(att.atttypid, att.atttypmod)), '' ORDER BY o),
           string_agg(format(', (dims[%s])::%s', o, format_type(att.atttypid, att.atttypmod)), '' ORDER BY o)
      INTO dims_def, dims_sel
      FROM unnest(g.dimensions) WITH ORDINALITY u(x, o)
      JOIN pg_attribute att ON att.attrelid = dwd AND att.attname = x;
    IF to_regclass(t1d) IS NULL THEN
        EXECUTE format('CREATE TABLE %s (dt date NOT NULL%s)', t1d, coalesce(dims_def, ''));
        EXECUTE format('CREATE INDEX ON %s (dt)', t1d);
    END IF;
    IF to_regclass(tbl) IS NULL THEN
        EXECUTE format('CREATE TABLE %s (dt date NOT NULL%s)', tbl, coalesce(dims_def, ''));
        EXECUTE format('CREATE INDEX ON %s (dt)', tbl);
    END IF;
    EXECUTE format('COMMENT ON TABLE %s IS %L', t1d, format('Daily values of the metrics at granularity %s (%s), one row per day dt and dimension values, with the bitmap of the distinct keys of each distinct count; generated by retail_mid.metric_generate, the base every period is rolled up from.',
                                                            g.granularity, array_to_string(g.dimensions, ', ')));
    EXECUTE format('COMMENT ON TABLE %s IS %L', tbl, format('DWS metrics at granularity %s (%s), one row per statistics date dt and dimension values; generated by retail_mid.metric_generate from the metric registry.',
                                                            g.granularity, array_to_string(g.dimensions, ', ')));
    EXECUTE format('COMMENT ON COLUMN %s.dt IS %L', t1d, 'Day.');
    EXECUTE format('COMMENT ON COLUMN %s.dt IS %L', tbl, 'Statistics date: the last day of every window.');
    FOR m IN SELECT x, o FROM unnest(g.dimensions) WITH ORDINALITY u(x, o) LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', t1d, m.x, format('Dimension %s.', m.x));
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, m.x, format('Dimension %s.', m.x));
    END LOOP;

    -- daily columns, one per (atomic metric, qualifier), and a bitmap column for distinct counts
    FOR m IN SELECT DISTINCT retail_mid.metric_day_column(a.atomic, d.qualifier) AS col, a.atomic, d.qualifier, a.unit, a.additivity
               FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
              WHERE d.granularity = g.granularity ORDER BY 1 LOOP
        day_cols := day_cols || m.col;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(t1d) AND x.attname = m.col AND NOT x.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I numeric', t1d, m.col);
        END IF;
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', t1d, m.col, format('Atomic metric %s under qualifier %s on the day (%s, %s).', m.atomic, m.qualifier, m.unit, m.additivity));
        IF m.additivity = 'non_additive' THEN
            day_cols := day_cols || (m.col || '_bitmap');
            IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(t1d) AND x.attname = m.col || '_bitmap' AND NOT x.attisdropped) THEN
                EXECUTE format('ALTER TABLE %s ADD COLUMN %I retail_mid.rbitmap', t1d, m.col || '_bitmap');
            END IF;
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', t1d, m.col || '_bitmap', format('The distinct keys counted by %s, OR-ed over the days of a window for exact distinct counts.', m.col));
        END IF;
    END LOOP;

    -- the statistics dates to recompute: from from_date to the last one generated, as far as a window reaches
    SELECT max(CASE p.kind WHEN 'rolling' THEN p.days - 1 WHEN 'calendar_week' THEN 6 WHEN 'calendar_month' THEN 30 ELSE 36600 END)
      INTO reach FROM retail_mid.metric_derived d JOIN retail_mid.metric_period p USING (period) WHERE d.granularity = g.granularity;
    EXECUTE format('SELECT max(dt) FROM %s', tbl) INTO last_dt;
    win_to := greatest(to_date, least(coalesce(last_dt, to_date), to_date + reach));

    -- the daily rows: [from_date, to_date] always, and whatever else the windows need that is not there yet
    SELECT * INTO cov FROM retail_mid.metric_coverage c WHERE c.granularity = g.granularity FOR UPDATE;
    covered := CASE WHEN FOUND AND cov.day_columns = day_cols THEN cov.days ELSE '{}' END;
    SELECT min(retail_mid.metric_window_start(d.period, from_date)) INTO need_from
      FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity;
    IF need_from = '-infinity' THEN
        need_from := from_date;
        FOR m IN SELECT DISTINCT a.dwd_table, a.time_column FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
                  WHERE d.granularity = g.granularity LOOP
            EXECUTE format('SELECT least($1, min((t.%I)::date)) FROM %s AS t', m.time_column, m.dwd_table) INTO need_from USING need_from;
        END LOOP;
    END IF;
    FOR r IN SELECT x FROM unnest((datemultirange(daterange(need_from, win_to, '[]')) - covered)
                                  + datemultirange(daterange(from_date, to_date, '[]'))) x ORDER BY x LOOP
        n := retail_mid.metric_build_day(g.granularity, lower(r), upper(r) - 1);
        built := built + datemultirange(r);
        days_built := days_built + (upper(r) - lower(r));
        RAISE NOTICE 'metric: % daily rows of % for % .. %', n, t1d, lower(r), upper(r) - 1;
    END LOOP;
    INSERT INTO retail_mid.metric_coverage (granularity, days, day_columns) VALUES (g.granularity, covered + built, day_cols)
        ON CONFLICT ON CONSTRAINT metric_coverage_pkey DO UPDATE SET days = EXCLUDED.days, day_columns = EXCLUDED.day_columns;

    -- every derived metric of the statistics dates [from_date, win_to], rolled up from the daily table
    IF to_regclass('pg_temp.metric_long') IS NULL THEN
        CREATE TEMP TABLE metric_long (metric text, dt date, dims text[], value numeric) ON COMMIT DROP;
    END IF;
    TRUNCATE metric_long;
    FOR m IN SELECT d.metric, a.unit, a.additivity FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic)
              WHERE d.granularity = g.granularity ORDER BY d.metric LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(tbl) AND x.attname = m.metric AND NOT x.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I numeric', tbl, m.metric);
        END IF;
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, m.metric, format('Derived metric %s (%s, %s).', m.metric, m.unit, m.additivity));
        EXECUTE format('INSERT INTO metric_long SELECT %L, x.dt, x.dims, x.value FROM (%s) x', m.metric, retail_mid.metric_sql(m.metric, g.granularity))
            USING from_date, win_to;
        k := k + 1;
        RAISE NOTICE 'metric: % computed for % .. %', m.metric, from_date, win_to;
    END LOOP;
    FOR m IN SELECT c.metric, c.unit FROM retail_mid.metric_composite c WHERE c.granularity = g.granularity ORDER BY c.metric LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = to_regclass(tbl) AND x.attname = m.metric AND NOT x.attisdropped) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I numeric', tbl, m.metric);
        END IF;
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, m.metric, format('Composite metric %s (%s).', m.metric, m.unit));
    END LOOP;
    EXECUTE format('DELETE FROM %s WHERE dt BETWEEN $1 AND $2', tbl) USING from_date, win_to;
    SELECT string_agg(format(', max(value) FILTER (WHERE metric = %L)', d.metric), '' ORDER BY d.metric),
           string_agg(format(', %I', d.metric), '' ORDER BY d.metric)
      INTO cols, metric_cols
      FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity;
    EXECUTE format('INSERT INTO %s (dt%s%s) SELECT dt%s%s FROM metric_long GROUP BY dt, dims',
                   tbl, coalesce((SELECT string_agg(format(', %I', x), '' ORDER BY o) FROM unnest(g.dimensions) WITH ORDINALITY u(x, o)), ''),
                   metric_cols, coalesce(dims_sel, ''), cols);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- brand isolation and role grants, as for every table of the extension (before the composite metrics, which
    -- update the table as their authors)
    PERFORM retail_mid.secure_generated_table(t1d::regclass);
    PERFORM retail_mid.secure_generated_table(tbl::regclass);
    -- composite metrics are expressions of the window values (a ratio of sums, never a sum of ratios), run as
    -- their authors, restricted (src/common/registry.sql)
    FOR m IN SELECT c.metric, c.expression, c.author FROM retail_mid.metric_composite c WHERE c.granularity = g.granularity ORDER BY c.metric LOOP
        expr := retail_mid.registry_check_sql(regexp_replace(m.expression, '\{([a-z][a-z0-9_]*)\}', '"\1"', 'g'), 'expression',
                                              format('expression of composite metric %s', m.metric));
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[m.author], format('composite metric %s', m.metric)));
        EXECUTE format('UPDATE %s SET %I = %s WHERE dt BETWEEN $1 AND $2', tbl, m.metric, expr) USING from_date, win_to;
        PERFORM retail_mid.registry_leave(tok);
    END LOOP;
    RAISE NOTICE 'metric: % rows of % for % metrics (% .. %)', n, tbl, k, from_date, win_to;
    PERFORM retail_mid.job_finish(v_job, n, jsonb_build_object('table', tbl, 'metrics', k, 'days_built', days_built,
                                                               'dates', format('%s .. %s', from_date, win_to)));
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_generate(text, date, date) IS 'Creates (or adds columns to) retail_mid.dws_metric_<granularity>_1d and retail_mid.dws_metric_<granularity>, rebuilds the daily rows of [from_date, to_date] and recomputes every derived and composite metric of the statistics dates those days reach; secures both tables; returns the metric rows written.';

-- The registry's part of the incremental refresh: regenerates every granularity already generated for the
-- days retail_mid.refresh rebuilt.
CREATE FUNCTION retail_mid.metric_refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g text;
    n bigint := 0;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'metric_refresh dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'metric_refresh range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer range would run until cancelled
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'metric_refresh range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got from_date %s and to_date %s.', from_date, to_date);
    END IF;
    FOR g IN SELECT x.granularity FROM retail_mid.metric_granularity x
              WHERE to_regclass('retail_mid.' || quote_ident('dws_metric_' || x.granularity)) IS NOT NULL
                AND EXISTS (SELECT 1 FROM retail_mid.metric_derived d WHERE d.granularity = x.granularity)
              ORDER BY 1 LOOP
        n := n + retail_mid.metric_generate(g, from_date, to_date);
    END LOOP;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_refresh(date, date) IS 'Regenerates every already generated granularity of the metric registry for [from_date, to_date] (and the later dates their windows reach); called by retail_mid.refresh.';

-- Recomputes every derived metric of a granularity straight from DWD and compares with the DWS table.
CREATE FUNCTION retail_mid.metric_reconcile(granularity text, from_date date, to_date date)
RETURNS TABLE (metric text, dt date, dims text[], dws_value numeric, dwd_value numeric)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g retail_mid.metric_granularity;
    m record;
    tbl text;
    dimarr text;
    tok int8;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'metric_reconcile dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'metric_reconcile range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- as retail_mid.refresh: an infinite or longer range would run until cancelled
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'metric_reconcile range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got from_date %s and to_date %s.', from_date, to_date);
    END IF;
    SELECT * INTO g FROM retail_mid.metric_granularity x WHERE x.granularity = metric_reconcile.granularity;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown granularity "%"', granularity USING ERRCODE = 'undefined_object';
    END IF;
    tbl := 'retail_mid.' || quote_ident('dws_metric_' || g.granularity);
    IF to_regclass(tbl) IS NULL THEN
        RAISE EXCEPTION 'table % has not been generated', tbl USING ERRCODE = 'undefined_table',
            HINT = 'Run retail_mid.metric_generate first.';
    END IF;
    dimarr := 'ARRAY[' || coalesce((SELECT string_agg('s.' || quote_ident(x) || '::text', ', ' ORDER BY o) FROM unnest(g.dimensions) WITH ORDINALITY u(x, o)), '') || ']::text[]';
    FOR m IN SELECT d.metric, d.atomic, d.qualifier FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity ORDER BY d.metric LOOP
        -- straight from DWD: the expression and the predicate run as their authors (src/common/registry.sql)
        tok := retail_mid.registry_enter(retail_mid.metric_role(m.atomic, m.qualifier));
        RETURN QUERY EXECUTE format(
            'WITH direct AS (%s), stored AS (SELECT s.dt, %s AS dims, s.%I AS value FROM %s s WHERE s.dt BETWEEN $1 AND $2 AND s.%I IS NOT NULL) '
            'SELECT %L::text, coalesce(a.dt, b.dt), coalesce(a.dims, b.dims), a.value, b.value '
            'FROM stored a FULL JOIN direct b ON a.dt = b.dt AND a.dims = b.dims '
            'WHERE a.value IS DISTINCT FROM b.value ORDER BY 2, 3',
            retail_mid.metric_sql(m.metric, g.granularity, true), dimarr, m.metric, tbl, m.metric, m.metric)
            USING from_date, to_date;
        PERFORM retail_mid.registry_leave(tok);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_reconcile(text, date, date) IS 'Every difference between the DWS table of a granularity and the same derived metrics computed straight from DWD for [from_date, to_date]: no rows means the DWS layer reconciles.';
