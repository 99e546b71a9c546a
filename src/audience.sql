-- audience: the four-level tag taxonomy, tag definitions as data, tag values with history, one bitmap per
-- (tag, value) plus bucketed bitmaps for numeric tags, the C tag-expression evaluator and saved audiences.

CREATE TABLE retail_mid.tag_taxonomy (
    level1 text NOT NULL,
    level2 text NOT NULL,
    level3 text NOT NULL DEFAULT '',
    level4 text NOT NULL DEFAULT '',
    description text,
    PRIMARY KEY (level1, level2, level3, level4)
);
COMMENT ON TABLE retail_mid.tag_taxonomy IS 'Four-level tag taxonomy (seeded with the industry tag template: customer information, lifecycle, consumer value, behaviour, customer management); '''' marks an unused level.';
COMMENT ON COLUMN retail_mid.tag_taxonomy.level1 IS 'Top-level category, e.g. 客户信息 (customer information).';
COMMENT ON COLUMN retail_mid.tag_taxonomy.level2 IS 'Second level, e.g. 基础信息 (basics).';
COMMENT ON COLUMN retail_mid.tag_taxonomy.level3 IS 'Third level, '''' when unused.';
COMMENT ON COLUMN retail_mid.tag_taxonomy.level4 IS 'Fourth level, '''' when unused.';
COMMENT ON COLUMN retail_mid.tag_taxonomy.description IS 'English gloss of the path.';

INSERT INTO retail_mid.tag_taxonomy (level1, level2, level3, level4, description) VALUES
 ('客户信息', '基础信息', '基础信息', '', 'customer information / basics'),
 ('客户信息', '基础信息', '地理信息', '', 'customer information / geography'),
 ('客户信息', '基础信息', '家庭信息', '', 'customer information / family'),
 ('客户信息', '基础信息', '社会信息', '', 'customer information / society'),
 ('客户信息', '组织归属', '', '', 'customer information / affiliation to an organisation'),
 ('客户信息', '门店归属', '', '', 'customer information / home store'),
 ('客户信息', '导购归属', '', '', 'customer information / shopping guide'),
 ('客户信息', '其他归属', '', '', 'customer information / other affiliation'),
 ('生命周期阶段', '关注和注册', '', '', 'lifecycle / follow and registration'),
 ('生命周期阶段', '等级', '', '', 'lifecycle / membership level'),
 ('生命周期阶段', '所属阶段', '', '', 'lifecycle / stage'),
 ('生命周期阶段', '特征身份', '', '', 'lifecycle / identity features'),
 ('消费者价值', '价值', '消费者价值', '', 'consumer value / value'),
 ('消费者价值', '价值', '购买力', '', 'consumer value / purchasing power'),
 ('消费者价值', '价值', '忠诚度', '', 'consumer value / loyalty'),
 ('消费者价值', '价值', '传播价值', '', 'consumer value / influence'),
 ('客户行为数据', '消费互动', '购买行为', '浏览和收藏行为', 'behaviour / browsing and favourites'),
 ('客户行为数据', '消费互动', '购买行为', '购买行为', 'behaviour / purchases'),
 ('客户行为数据', '消费互动', '购买行为', '和商家品牌互动', 'behaviour / brand interaction'),
 ('客户行为数据', '消费互动', '购买行为', '购买品牌特征习惯', 'behaviour / brand purchasing habits'),
 ('客户行为数据', '消费互动', '购买行为', '支付方式与偏好', 'behaviour / payment methods and preferences'),
 ('客户行为数据', '消费互动', '购买行为', '退换货相关', 'behaviour / returns and exchanges'),
 ('客户行为数据', '营销行为', '营销响应', '', 'behaviour / marketing responses'),
 ('客户行为数据', '营销行为', '内容引流偏好', '', 'behaviour / content preferences'),
 ('客户行为数据', '营销行为', '内容平台偏好', '', 'behaviour / content platform preferences'),
 ('客户行为数据', '营销行为', '活动参与和偏好', '', 'behaviour / campaign participation and preferences'),
 ('客户行为数据', '营销行为', '其他偏好', '', 'behaviour / other preferences'),
 ('客户管理', '异常行为', '异常', '安全', 'customer management / anomalies / security'),
 ('客户管理', '服务行为', '', '', 'customer management / service'),
 ('客户管理', '社群行为', '', '', 'customer management / community'),
 ('其他', '其他', '', '', 'other');

CREATE TABLE retail_mid.tag_definition (
    tag_name    text PRIMARY KEY CHECK (tag_name ~ '^[^\s"'']+$'),
    level1      text NOT NULL,
    level2      text NOT NULL,
    level3      text NOT NULL DEFAULT '',
    level4      text NOT NULL DEFAULT '',
    value_type  text NOT NULL CHECK (value_type IN ('boolean', 'enum', 'numeric')),
    rule_sql    text NOT NULL,
    description text,
    owner       text NOT NULL DEFAULT current_user,
    schedule    text NOT NULL DEFAULT 'daily' CHECK (schedule IN ('hourly', 'daily', 'weekly', 'monthly', 'manual')),
    enabled     boolean NOT NULL DEFAULT true,
    last_evaluated_at timestamptz,
    FOREIGN KEY (level1, level2, level3, level4) REFERENCES retail_mid.tag_taxonomy
);
COMMENT ON TABLE retail_mid.tag_definition IS 'Tag definitions as data: a rule (a SELECT returning customer_key, value), value type, place in the taxonomy, owner and refresh schedule.';
COMMENT ON COLUMN retail_mid.tag_definition.tag_name IS 'Name used in tag expressions (no spaces or quotes).';
COMMENT ON COLUMN retail_mid.tag_definition.value_type IS 'boolean (values true/false), enum (text values) or numeric (range predicates).';
COMMENT ON COLUMN retail_mid.tag_definition.rule_sql IS 'A SELECT whose first two columns are customer_key (int4) and the value; customers it does not return have no value.';
COMMENT ON COLUMN retail_mid.tag_definition.owner IS 'Who maintains the tag.';
COMMENT ON COLUMN retail_mid.tag_definition.schedule IS 'Intended refresh cadence: hourly, daily, weekly, monthly or manual (for an external scheduler).';
COMMENT ON COLUMN retail_mid.tag_definition.enabled IS 'Disabled tags are skipped by evaluate_tags().';
COMMENT ON COLUMN retail_mid.tag_definition.last_evaluated_at IS 'When evaluate_tags() last evaluated the tag successfully.';

CREATE TABLE retail_mid.tag_value (
    tag_name      text NOT NULL REFERENCES retail_mid.tag_definition ON DELETE CASCADE,
    customer_key  int4 NOT NULL CHECK (customer_key >= 0),
    value         text NOT NULL,
    numeric_value numeric,
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE UNIQUE INDEX tag_value_current ON retail_mid.tag_value (tag_name, customer_key) WHERE valid_to IS NULL;
CREATE INDEX tag_value_numeric ON retail_mid.tag_value (tag_name, numeric_value) WHERE valid_to IS NULL;
COMMENT ON TABLE retail_mid.tag_value IS 'Tag values per customer with history: the current value has valid_to NULL; a change closes the old row and opens a new one.';
COMMENT ON COLUMN retail_mid.tag_value.value IS 'The value as text (true/false for boolean tags, the canonical numeric text for numeric tags).';
COMMENT ON COLUMN retail_mid.tag_value.numeric_value IS 'The value of a numeric tag; used to filter the boundary buckets of range predicates exactly.';
COMMENT ON COLUMN retail_mid.tag_value.valid_from IS 'When the value was first observed.';
COMMENT ON COLUMN retail_mid.tag_value.valid_to IS 'When the value stopped holding; NULL for the current value.';

CREATE TABLE retail_mid.tag_bitmap (
    tag_name  text NOT NULL REFERENCES retail_mid.tag_definition ON DELETE CASCADE,
    tag_value text NOT NULL,
    bitmap    retail_mid.rbitmap NOT NULL,
    customers bigint NOT NULL,
    PRIMARY KEY (tag_name, tag_value)
);
COMMENT ON TABLE retail_mid.tag_bitmap IS 'One bitmap of customer keys per (boolean or enumerated tag, value), rebuilt by evaluate_tags().';
COMMENT ON COLUMN retail_mid.tag_bitmap.bitmap IS 'Customers whose current value of the tag is tag_value.';
COMMENT ON COLUMN retail_mid.tag_bitmap.customers IS 'Cardinality of the bitmap.';

CREATE TABLE retail_mid.tag_numeric_bitmap (
    tag_name  text NOT NULL REFERENCES retail_mid.tag_definition ON DELETE CASCADE,
    bucket    int NOT NULL,
    min_value numeric NOT NULL,
    max_value numeric NOT NULL,
    bitmap    retail_mid.rbitmap NOT NULL,
    customers bigint NOT NULL,
    PRIMARY KEY (tag_name, bucket),
    CHECK (min_value <= max_value)
);
COMMENT ON TABLE retail_mid.tag_numeric_bitmap IS 'Numeric tags as up to 64 equal-depth buckets of disjoint value ranges, one bitmap each: a range predicate ORs the buckets inside it and filters only the boundary buckets exactly.';
COMMENT ON COLUMN retail_mid.tag_numeric_bitmap.bucket IS 'Bucket number, ascending with the values.';
COMMENT ON COLUMN retail_mid.tag_numeric_bitmap.min_value IS 'Smallest value in the bucket.';
COMMENT ON COLUMN retail_mid.tag_numeric_bitmap.max_value IS 'Largest value in the bucket.';
COMMENT ON COLUMN retail_mid.tag_numeric_bitmap.bitmap IS 'Customers whose value lies in [min_value, max_value].';
COMMENT ON COLUMN retail_mid.tag_numeric_bitmap.customers IS 'Cardinality of the bitmap.';

CREATE TABLE retail_mid.customer_universe (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_key   int4 NOT NULL,
    bitmap    retail_mid.rbitmap NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE retail_mid.customer_universe IS 'Cache of the bitmap of all customer keys (the universe NOT is relative to); keys above max_key are added on the fly.';
COMMENT ON COLUMN retail_mid.customer_universe.singleton IS 'Always true: the table has at most one row.';
COMMENT ON COLUMN retail_mid.customer_universe.max_key IS 'Largest retail_mid.customer_key key when the cache was built; larger dictionary keys are added on read.';
COMMENT ON COLUMN retail_mid.customer_universe.bitmap IS 'Dictionary keys up to max_key and every tagged customer.';
COMMENT ON COLUMN retail_mid.customer_universe.refreshed_at IS 'When the cache was rebuilt.';

CREATE TABLE retail_mid.audience_package (
    name        text NOT NULL CHECK (name <> ''),
    version     int  NOT NULL CHECK (version > 0),
    expression  text NOT NULL,
    canonical_expression text NOT NULL,
    snapshot    retail_mid.rbitmap NOT NULL,
    customers   bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    PRIMARY KEY (name, version)
);
COMMENT ON TABLE retail_mid.audience_package IS 'Saved audiences: each save_audience() call keeps the expression and a snapshot bitmap under the next version.';
COMMENT ON COLUMN retail_mid.audience_package.expression IS 'The tag expression as written.';
COMMENT ON COLUMN retail_mid.audience_package.canonical_expression IS 'The expression as parsed (fully parenthesised), for review.';
COMMENT ON COLUMN retail_mid.audience_package.snapshot IS 'The members when the version was saved; @name in later expressions refers to the latest snapshot.';
COMMENT ON COLUMN retail_mid.audience_package.customers IS 'Cardinality of the snapshot.';

-- The evaluator (C) and the helpers it calls.
CREATE FUNCTION retail_mid.audience(expression text) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'audience' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience(text) IS 'The customers matching a tag expression, e.g. lifecycle IN (''active'',''new'') AND monetary_365d >= 500 AND NOT churn_risk.';
CREATE FUNCTION retail_mid.audience_count(expression text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'audience_count' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience_count(text) IS 'How many customers match a tag expression.';
CREATE FUNCTION retail_mid.audience_parse(expression text) RETURNS text
    AS 'MODULE_PATHNAME', 'audience_parse' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.audience_parse(text) IS 'Checks the syntax of a tag expression and returns it fully parenthesised.';

-- plpgsql with EXECUTE for the boundary buckets: each is planned with its actual bounds, so the partial index
-- (tag_name, numeric_value) reads just the bucket's rows (a generic plan with "lo IS NULL OR ..." would scan them all).
CREATE FUNCTION retail_mid.tag_numeric_range(tag text, lo numeric, lo_inclusive boolean, hi numeric, hi_inclusive boolean)
RETURNS retail_mid.rbitmap LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result retail_mid.rbitmap; part retail_mid.rbitmap; b record;
BEGIN
    IF lo = 'NaN' OR hi = 'NaN' THEN
        RAISE EXCEPTION 'NaN is not a valid bound for a numeric tag' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- buckets entirely inside the range: their bitmaps as they are
    SELECT retail_mid.rb_or_agg(nb.bitmap) INTO result
      FROM retail_mid.tag_numeric_bitmap nb
     WHERE nb.tag_name = tag
       AND (lo IS NULL OR nb.min_value > lo OR (lo_inclusive AND nb.min_value = lo))
       AND (hi IS NULL OR nb.max_value < hi OR (hi_inclusive AND nb.max_value = hi));
    -- buckets straddling a bound (at most two): filtered exactly from the current values
    FOR b IN SELECT nb.min_value, nb.max_value FROM retail_mid.tag_numeric_bitmap nb
              WHERE nb.tag_name = tag
                AND NOT ((lo IS NULL OR nb.min_value > lo OR (lo_inclusive AND nb.min_value = lo))
                     AND (hi IS NULL OR nb.max_value < hi OR (hi_inclusive AND nb.max_value = hi)))
                AND NOT ((lo IS NOT NULL AND (nb.max_value < lo OR (NOT lo_inclusive AND nb.max_value = lo)))
                      OR (hi IS NOT NULL AND (nb.min_value > hi OR (NOT hi_inclusive AND nb.min_value = hi))))
    LOOP
        EXECUTE format('SELECT retail_mid.rb_build_agg(v.customer_key) FROM retail_mid.tag_value v '
                       'WHERE v.tag_name = $1 AND v.valid_to IS NULL AND v.numeric_value BETWEEN $2 AND $3 %s %s',
                       CASE WHEN lo IS NULL THEN '' WHEN lo_inclusive THEN 'AND v.numeric_value >= $4' ELSE 'AND v.numeric_value > $4' END,
                       CASE WHEN hi IS NULL THEN '' WHEN hi_inclusive THEN 'AND v.numeric_value <= $5' ELSE 'AND v.numeric_value < $5' END)
           INTO part USING tag, b.min_value, b.max_value, lo, hi;
        IF part IS NOT NULL THEN
            result := CASE WHEN result IS NULL THEN part ELSE retail_mid.rb_or(result, part) END;
        END IF;
    END LOOP;
    RETURN coalesce(result, '{}');
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_numeric_range(text, numeric, boolean, numeric, boolean) IS 'Customers whose numeric tag lies between lo and hi (NULL = unbounded): whole buckets by bitmap, boundary buckets filtered exactly from tag_value.';

-- Known customers: every key of the dictionary plus every customer holding a tag value (tags may be loaded
-- for keys assigned elsewhere). Cached, because building it for millions of keys takes about a second.
CREATE FUNCTION retail_mid.customer_universe() RETURNS retail_mid.rbitmap LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(retail_mid.rb_or(u.bitmap, coalesce((SELECT retail_mid.rb_build_agg(k.customer_key)
                                                             FROM retail_mid.customer_key k
                                                            WHERE k.customer_key > u.max_key), '{}')),
                    (SELECT retail_mid.rb_build_agg(x.customer_key)
                       FROM (SELECT k.customer_key FROM retail_mid.customer_key k
                             UNION ALL
                             SELECT v.customer_key FROM retail_mid.tag_value v WHERE v.valid_to IS NULL) x),
                    '{}')
      FROM (SELECT 1) one LEFT JOIN retail_mid.customer_universe u ON true;
END;
COMMENT ON FUNCTION retail_mid.customer_universe() IS 'Bitmap of every known customer (dictionary keys and tagged customers; cached, plus dictionary keys added since); NOT in tag expressions is relative to it.';

CREATE FUNCTION retail_mid.refresh_customer_universe() RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE b retail_mid.rbitmap; mk int4;
BEGIN
    SELECT coalesce(max(customer_key), 0) INTO mk FROM retail_mid.customer_key;
    SELECT retail_mid.rb_build_agg(x.customer_key) INTO b
      FROM (SELECT k.customer_key FROM retail_mid.customer_key k WHERE k.customer_key <= mk
            UNION ALL
            SELECT v.customer_key FROM retail_mid.tag_value v WHERE v.valid_to IS NULL) x;
    DELETE FROM retail_mid.customer_universe;
    INSERT INTO retail_mid.customer_universe (max_key, bitmap) VALUES (mk, coalesce(b, '{}'));
    RETURN coalesce(retail_mid.rb_cardinality(b), 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_customer_universe() IS 'Rebuilds the cached bitmap of all known customers; returns its cardinality.';

-- Saves an audience under the next version of its name (concurrent saves of one name are serialised).
CREATE FUNCTION retail_mid.save_audience(name text, expression text) RETURNS int
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v int; b retail_mid.rbitmap;
BEGIN
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'audience name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.audience_package'), hashtext(name));
    b := retail_mid.audience(expression);
    SELECT coalesce(max(p.version), 0) + 1 INTO v FROM retail_mid.audience_package p WHERE p.name = save_audience.name;
    INSERT INTO retail_mid.audience_package (name, version, expression, canonical_expression, snapshot, customers)
    VALUES (name, v, expression, retail_mid.audience_parse(expression), b, retail_mid.rb_cardinality(b));
    RETURN v;
END;
$$;
COMMENT ON FUNCTION retail_mid.save_audience(text, text) IS 'Evaluates the expression and saves its snapshot as the next version of the named audience; returns the version.';

CREATE VIEW retail_mid.audience_member AS
SELECT p.name::text AS audience_name, p.version::int AS version, m.customer_key::int4 AS customer_key
  FROM (SELECT DISTINCT ON (name) name, version, snapshot FROM retail_mid.audience_package ORDER BY name, version DESC) p
 CROSS JOIN LATERAL retail_mid.rb_iterate(p.snapshot) AS m(customer_key);
COMMENT ON VIEW retail_mid.audience_member IS 'The members of the latest version of every saved audience, one row per customer.';
COMMENT ON COLUMN retail_mid.audience_member.audience_name IS 'Name of the saved audience.';
COMMENT ON COLUMN retail_mid.audience_member.version IS 'Its latest version.';
COMMENT ON COLUMN retail_mid.audience_member.customer_key IS 'A member (join retail_mid.customer_key for identifiers).';

-- Evaluates tag definitions: runs each rule once over all customers, records value changes with history
-- (re-running with unchanged data writes nothing), and rebuilds the tag's bitmaps when anything changed.
CREATE FUNCTION retail_mid.evaluate_tags(tag_names text[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record; job bigint; ts timestamptz := clock_timestamp();
    n_rows bigint; n_closed bigint; n_opened bigint; total bigint := 0; done int := 0; todo int;
    failed jsonb := '[]'; per_tag jsonb := '{}'; n_dup bigint; msg text; st text;
BEGIN
    job := retail_mid.job_start('evaluate_tags', jsonb_build_object('tag_names', tag_names));
    SELECT count(*) INTO todo FROM retail_mid.tag_definition t
     WHERE t.enabled AND (tag_names IS NULL OR t.tag_name = ANY (tag_names));
    IF tag_names IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(tag_names) x
                                          WHERE x NOT IN (SELECT tag_name FROM retail_mid.tag_definition)) THEN
        RAISE EXCEPTION 'unknown tag in tag_names' USING ERRCODE = 'undefined_object',
            DETAIL = (SELECT string_agg(x, ', ') FROM unnest(tag_names) x
                       WHERE x NOT IN (SELECT tag_name FROM retail_mid.tag_definition));
    END IF;
    IF to_regclass('pg_temp.retail_mid_tag_eval') IS NULL THEN
        CREATE TEMP TABLE retail_mid_tag_eval (customer_key int4, value text, numeric_value numeric);
    END IF;
    FOR d IN SELECT * FROM retail_mid.tag_definition t
              WHERE t.enabled AND (tag_names IS NULL OR t.tag_name = ANY (tag_names)) ORDER BY t.tag_name
    LOOP
        done := done + 1;
        BEGIN
            TRUNCATE pg_temp.retail_mid_tag_eval;
            EXECUTE format('INSERT INTO pg_temp.retail_mid_tag_eval (customer_key, value) '
                           'SELECT r.customer_key::int4, r.value::text FROM (%s) AS r(customer_key, value) '
                           'WHERE r.customer_key IS NOT NULL AND r.value IS NOT NULL', d.rule_sql);
            IF d.value_type = 'boolean' THEN
                UPDATE pg_temp.retail_mid_tag_eval SET value = value::boolean::text;
            ELSIF d.value_type = 'numeric' THEN
                UPDATE pg_temp.retail_mid_tag_eval SET numeric_value = value::numeric;
                IF EXISTS (SELECT 1 FROM pg_temp.retail_mid_tag_eval WHERE numeric_value = 'NaN') THEN
                    RAISE EXCEPTION 'rule of numeric tag % returns NaN', d.tag_name USING ERRCODE = 'data_exception';
                END IF;
                UPDATE pg_temp.retail_mid_tag_eval SET value = numeric_value::text;
            END IF;
            SELECT count(*), count(*) - count(DISTINCT customer_key) INTO n_rows, n_dup FROM pg_temp.retail_mid_tag_eval;
            IF n_dup > 0 THEN
                RAISE EXCEPTION 'rule of tag % returns several values for % customers', d.tag_name, n_dup
                    USING ERRCODE = 'cardinality_violation';
            END IF;
            IF EXISTS (SELECT 1 FROM pg_temp.retail_mid_tag_eval WHERE customer_key < 0) THEN
                RAISE EXCEPTION 'rule of tag % returns negative customer keys', d.tag_name USING ERRCODE = 'numeric_value_out_of_range';
            END IF;
            UPDATE retail_mid.tag_value t SET valid_to = ts
             WHERE t.tag_name = d.tag_name AND t.valid_to IS NULL
               AND NOT EXISTS (SELECT 1 FROM pg_temp.retail_mid_tag_eval n
                                WHERE n.customer_key = t.customer_key AND n.value = t.value);
            GET DIAGNOSTICS n_closed = ROW_COUNT;
            INSERT INTO retail_mid.tag_value (tag_name, customer_key, value, numeric_value, valid_from)
            SELECT d.tag_name, n.customer_key, n.value, n.numeric_value, ts FROM pg_temp.retail_mid_tag_eval n
             WHERE NOT EXISTS (SELECT 1 FROM retail_mid.tag_value t
                                WHERE t.tag_name = d.tag_name AND t.customer_key = n.customer_key AND t.valid_to IS NULL);
            GET DIAGNOSTICS n_opened = ROW_COUNT;
            IF n_closed + n_opened > 0
               OR NOT EXISTS (SELECT 1 FROM retail_mid.tag_bitmap b WHERE b.tag_name = d.tag_name)
                  AND NOT EXISTS (SELECT 1 FROM retail_mid.tag_numeric_bitmap b WHERE b.tag_name = d.tag_name) THEN
                DELETE FROM retail_mid.tag_bitmap b WHERE b.tag_name = d.tag_name;
                DELETE FROM retail_mid.tag_numeric_bitmap b WHERE b.tag_name = d.tag_name;
                IF d.value_type = 'numeric' THEN
                    -- equal-depth buckets; a value's bucket is the lowest ntile any of its rows got, so the
                    -- buckets' value ranges are disjoint
                    INSERT INTO retail_mid.tag_numeric_bitmap (tag_name, bucket, min_value, max_value, bitmap, customers)
                    SELECT d.tag_name, bucket, min(numeric_value), max(numeric_value),
                           retail_mid.rb_build_agg(customer_key), count(*)
                      FROM (SELECT customer_key, numeric_value, min(nt) OVER (PARTITION BY numeric_value) AS bucket
                              FROM (SELECT customer_key, numeric_value, ntile(64) OVER (ORDER BY numeric_value) AS nt
                                      FROM retail_mid.tag_value
                                     WHERE tag_name = d.tag_name AND valid_to IS NULL) a) b
                     GROUP BY bucket;
                ELSE
                    INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, bitmap, customers)
                    SELECT d.tag_name, value, retail_mid.rb_build_agg(customer_key), count(*)
                      FROM retail_mid.tag_value WHERE tag_name = d.tag_name AND valid_to IS NULL
                     GROUP BY value;
                END IF;
            END IF;
            UPDATE retail_mid.tag_definition t SET last_evaluated_at = ts WHERE t.tag_name = d.tag_name;
            total := total + n_closed + n_opened;
            per_tag := per_tag || jsonb_build_object(d.tag_name,
                       jsonb_build_object('customers', n_rows, 'closed', n_closed, 'opened', n_opened));
            RAISE NOTICE 'evaluate_tags: % (%/%): % customers, % values closed, % opened',
                d.tag_name, done, todo, n_rows, n_closed, n_opened;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, st = RETURNED_SQLSTATE;
            failed := failed || jsonb_build_object('tag', d.tag_name, 'sqlstate', st, 'error', msg);
            RAISE WARNING 'evaluate_tags: % (%/%) failed: %', d.tag_name, done, todo, msg;
        END;
    END LOOP;
    PERFORM retail_mid.refresh_customer_universe();
    PERFORM retail_mid.job_finish(job, total, jsonb_build_object('tags', per_tag, 'failed', failed));
    RETURN total;
END;
$$;
COMMENT ON FUNCTION retail_mid.evaluate_tags(text[]) IS 'Evaluates the enabled tag definitions (or the named ones): writes value changes with history, rebuilds changed bitmaps, logs to job_log; returns the number of value rows closed or opened. A failing rule is reported as a WARNING and in job_log, the others still run.';

-- Seed definitions over the DWS layer (evaluated once retail_mid.refresh() has filled it).
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, rule_sql, description) VALUES
 ('monetary_td', '消费者价值', '价值', '消费者价值', '', 'numeric',
  'SELECT customer_key, sum(net_amount) FROM retail_mid.dws_trade_customer_td GROUP BY customer_key',
  'Net amount spent to date, all brands.'),
 ('orders_td', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric',
  'SELECT customer_key, sum(orders) FROM retail_mid.dws_trade_customer_td GROUP BY customer_key',
  'Orders to date, all brands.'),
 ('repeat_buyer', '消费者价值', '价值', '忠诚度', '', 'boolean',
  'SELECT customer_key, sum(orders) >= 2 FROM retail_mid.dws_trade_customer_td GROUP BY customer_key',
  'Has ordered at least twice.'),
 ('returner', '客户行为数据', '消费互动', '购买行为', '退换货相关', 'boolean',
  'SELECT customer_key, sum(return_amount) < 0 OR sum(return_amount) > 0 FROM retail_mid.dws_trade_customer_td GROUP BY customer_key',
  'Has returned goods.'),
 ('lifecycle', '生命周期阶段', '所属阶段', '', '', 'enum',
  $r$SELECT customer_key, CASE WHEN max(last_order_date) >= (SELECT max(last_order_date) FROM retail_mid.dws_trade_customer_td) - 90
                         THEN CASE WHEN min(first_order_date) >= (SELECT max(last_order_date) FROM retail_mid.dws_trade_customer_td) - 90
                                   THEN 'new' ELSE 'active' END
                         WHEN max(last_order_date) >= (SELECT max(last_order_date) FROM retail_mid.dws_trade_customer_td) - 365 THEN 'lapsing'
                         ELSE 'churned' END
        FROM retail_mid.dws_trade_customer_td GROUP BY customer_key$r$,
  'new / active / lapsing / churned by first and last order date relative to the latest order in the data.');
