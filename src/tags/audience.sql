-- tags/audience.sql: tags and audiences: taxonomy, definitions, values with history, bitmaps, the evaluator.
--
-- The four-level tag taxonomy, tag definitions as data, tag values with history, one bitmap per (tag, value) and
-- a bit-sliced index per numeric tag, the C tag-expression evaluator and saved audiences.

CREATE TABLE retail_mid.tag_taxonomy (
    level1 text NOT NULL,
    level2 text NOT NULL,
    level3 text NOT NULL DEFAULT '',
    level4 text NOT NULL DEFAULT '',
    description text,
    PRIMARY KEY (level1, level2, level3, level4)
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_taxonomy', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.tag_taxonomy FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
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
    rule_sql    text,
    source      text,
    expression  text,
    numeric_scale int NOT NULL DEFAULT 2 CHECK (numeric_scale BETWEEN 0 AND 12),
    description text,
    owner       text NOT NULL DEFAULT current_user,
    schedule    text NOT NULL DEFAULT 'daily' CHECK (schedule IN ('hourly', 'daily', 'weekly', 'monthly', 'manual')),
    enabled     boolean NOT NULL DEFAULT true,
    last_evaluated_at timestamptz,
    scope       text NOT NULL DEFAULT 'group' CHECK (scope IN ('brand', 'group')),
    shared_with_brands boolean NOT NULL DEFAULT false,
    author      regrole DEFAULT (quote_ident(CURRENT_USER))::regrole,
    CONSTRAINT tag_definition_shared CHECK (scope = 'group' OR NOT shared_with_brands),
    FOREIGN KEY (level1, level2, level3, level4) REFERENCES retail_mid.tag_taxonomy,
    CONSTRAINT tag_definition_rule CHECK ((rule_sql IS NOT NULL AND source IS NULL AND expression IS NULL)
                                       OR (rule_sql IS NULL AND source IS NOT NULL AND expression IS NOT NULL))
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_definition', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.tag_definition FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.tag_definition IS 'Tag definitions as data: a rule (either a SELECT returning customer_key, value, or an expression over a source shared with other tags), value type, scope (per brand or group-wide), place in the taxonomy, owner and refresh schedule.';
COMMENT ON COLUMN retail_mid.tag_definition.tag_name IS 'Name used in tag expressions (no spaces or quotes).';
COMMENT ON COLUMN retail_mid.tag_definition.level1 IS 'Taxonomy level 1 (with level2..level4 a path of retail_mid.tag_taxonomy).';
COMMENT ON COLUMN retail_mid.tag_definition.level2 IS 'Taxonomy level 2.';
COMMENT ON COLUMN retail_mid.tag_definition.level3 IS 'Taxonomy level 3, '''' when unused.';
COMMENT ON COLUMN retail_mid.tag_definition.level4 IS 'Taxonomy level 4, '''' when unused.';
COMMENT ON COLUMN retail_mid.tag_definition.description IS 'What the tag means.';
COMMENT ON COLUMN retail_mid.tag_definition.value_type IS 'boolean (values true/false), enum (text values) or numeric (range predicates).';
COMMENT ON COLUMN retail_mid.tag_definition.rule_sql IS 'A SELECT whose first two columns are customer_key (int4) and the value (and, for a tag of scope brand, a column named brand after them); customers it does not return have no value. Each such tag costs one scan. NULL when source and expression are used.';
COMMENT ON COLUMN retail_mid.tag_definition.source IS 'A table or view name, or a parenthesised SELECT, with a customer_key column and one row per customer (tags of scope brand: a brand column and one row per brand and customer): all enabled tags with the same source text and scope are evaluated in one scan of it.';
COMMENT ON COLUMN retail_mid.tag_definition.expression IS 'SQL expression over the columns of source giving the value; NULL means no value.';
COMMENT ON COLUMN retail_mid.tag_definition.numeric_scale IS 'Numeric tags: values are stored rounded to this many decimals, and the bit-sliced index holds value * 10^numeric_scale as int8.';
COMMENT ON COLUMN retail_mid.tag_definition.owner IS 'Who maintains the tag.';
COMMENT ON COLUMN retail_mid.tag_definition.schedule IS 'Intended refresh cadence: hourly, daily, weekly, monthly or manual (for an external scheduler).';
COMMENT ON COLUMN retail_mid.tag_definition.enabled IS 'Disabled tags are skipped by evaluate_tags().';
COMMENT ON COLUMN retail_mid.tag_definition.last_evaluated_at IS 'When evaluate_tags() last evaluated the tag successfully.';
COMMENT ON COLUMN retail_mid.tag_definition.scope IS 'brand: evaluated per brand (the source or rule_sql has a brand column; one value per brand and customer, read by the analysts of that brand); group: one group-wide value per customer (brand ''*''), read by administrators only unless shared_with_brands.';
COMMENT ON COLUMN retail_mid.tag_definition.shared_with_brands IS 'Group tags only: an administrator''s decision that the group-wide values may be read by every brand''s analysts for the customers of their brands.';
COMMENT ON COLUMN retail_mid.tag_definition.author IS 'The role that wrote the rule (rule_sql, source, expression): evaluate_tags runs it with that role''s rights, never more (retail_mid.registry_role); set by default and when another user changes the rule; NULL (definitions from before 1.1.0) runs as retail_mid_admin.';
CREATE TRIGGER tag_definition_author BEFORE INSERT OR UPDATE ON retail_mid.tag_definition
    FOR EACH ROW EXECUTE FUNCTION retail_mid.registry_author_check('tag_name', 'rule_sql', 'source', 'expression');

CREATE TABLE retail_mid.tag_value (
    tag_name      text NOT NULL REFERENCES retail_mid.tag_definition ON DELETE CASCADE,
    brand         text NOT NULL DEFAULT '*' CHECK (brand <> ''),
    customer_key  int4 NOT NULL CHECK (customer_key >= 0),
    value         text NOT NULL,
    numeric_value numeric,
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_value', '');
CREATE UNIQUE INDEX tag_value_current ON retail_mid.tag_value (tag_name, brand, customer_key) WHERE valid_to IS NULL;
CREATE INDEX tag_value_numeric ON retail_mid.tag_value (tag_name, numeric_value) WHERE valid_to IS NULL;
COMMENT ON TABLE retail_mid.tag_value IS 'Tag values per (brand, customer) with history: the current value has valid_to NULL; a change closes the old row and opens a new one.';
COMMENT ON COLUMN retail_mid.tag_value.tag_name IS 'The tag.';
COMMENT ON COLUMN retail_mid.tag_value.brand IS 'Brand whose data gave the value (tags of scope brand); ''*'' for the group-wide value of a tag of scope group.';
COMMENT ON COLUMN retail_mid.tag_value.customer_key IS 'The customer (retail_mid.customer_key).';
COMMENT ON COLUMN retail_mid.tag_value.value IS 'The value as text (true/false for boolean tags, the number rounded to numeric_scale decimals for numeric tags).';
COMMENT ON COLUMN retail_mid.tag_value.numeric_value IS 'The value of a numeric tag, rounded to the tag''s numeric_scale.';
COMMENT ON COLUMN retail_mid.tag_value.valid_from IS 'When the value was first observed.';
COMMENT ON COLUMN retail_mid.tag_value.valid_to IS 'When the value stopped holding; NULL for the current value.';

CREATE TABLE retail_mid.tag_bitmap (
    tag_name  text NOT NULL REFERENCES retail_mid.tag_definition ON DELETE CASCADE,
    tag_value text NOT NULL,
    brand     text NOT NULL DEFAULT '*',
    bitmap    retail_mid.rbitmap NOT NULL,
    customers bigint NOT NULL,
    PRIMARY KEY (tag_name, tag_value, brand)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_bitmap', '');
COMMENT ON TABLE retail_mid.tag_bitmap IS 'One bitmap of customer keys per (boolean or enumerated tag, value, brand), rebuilt by evaluate_tags().';
COMMENT ON COLUMN retail_mid.tag_bitmap.brand IS 'A brand: the customers whose value of the tag in that brand is tag_value (tags of scope brand), or the group-wide bitmap restricted to the brand''s customers (group tags shared with brands). ''*'': the group-wide bitmap of a group tag, or the union over brands of a brand tag (a customer with the value in some brand).';
COMMENT ON COLUMN retail_mid.tag_bitmap.bitmap IS 'Customers whose current value of the tag is tag_value.';
COMMENT ON COLUMN retail_mid.tag_bitmap.customers IS 'Cardinality of the bitmap.';
COMMENT ON COLUMN retail_mid.tag_bitmap.tag_name IS 'tag_definition.tag_name.';
COMMENT ON COLUMN retail_mid.tag_bitmap.tag_value IS 'The value (as text) whose customers the bitmap holds.';

-- Bit-sliced indexes (src/bitmap/bsi.c): built by an aggregate from (customer_key, scaled value), queried by range.
CREATE FUNCTION retail_mid.bsi_build_trans(internal, int4, int8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.bsi_build_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.bsi_build_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.bsi_build_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.bsi_build_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bsi_build_trans(internal, int4, int8) IS 'Transition of bsi_build_agg: appends (customer_key, value).';
COMMENT ON FUNCTION retail_mid.bsi_build_combine(internal, internal) IS 'Combine of bsi_build_agg: concatenates the pairs.';
COMMENT ON FUNCTION retail_mid.bsi_build_serial(internal) IS 'Serialises a bsi_build_agg state.';
COMMENT ON FUNCTION retail_mid.bsi_build_deserial(bytea, internal) IS 'Deserialises (and validates) a bsi_build_agg state.';
COMMENT ON FUNCTION retail_mid.bsi_build_final(internal) IS 'Final of bsi_build_agg: builds the existence bitmap and the slices.';
CREATE AGGREGATE retail_mid.bsi_build_agg(customer_key int4, value int8) (
    SFUNC = retail_mid.bsi_build_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.bsi_build_combine,
    SERIALFUNC = retail_mid.bsi_build_serial, DESERIALFUNC = retail_mid.bsi_build_deserial,
    FINALFUNC = retail_mid.bsi_build_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.bsi_build_agg(int4, int8) IS 'Bit-sliced index of int8 values per customer key (O''Neil & Quass): existence bitmap plus one roaring bitmap per bit of value - min. Rows with a NULL key or value are skipped; a key given twice is error 21000; NULL when there is no value.';
CREATE FUNCTION retail_mid.bsi_range(bsi bytea, lo int8, hi int8) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bsi_range(bytea, int8, int8) IS 'Customers of a bit-sliced index whose value v satisfies lo <= v <= hi (a NULL bound is open; a NULL index gives NULL); malformed data is error 22000.';
CREATE FUNCTION retail_mid.bsi_cardinality(bsi bytea) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bsi_cardinality(bytea) IS 'Customers having a value in a bit-sliced index.';

CREATE TABLE retail_mid.tag_bsi (
    tag_name  text NOT NULL REFERENCES retail_mid.tag_definition ON DELETE CASCADE,
    brand     text NOT NULL DEFAULT '*',
    scale     int NOT NULL CHECK (scale BETWEEN 0 AND 12),
    min_value numeric NOT NULL,
    max_value numeric NOT NULL,
    customers bigint NOT NULL,
    bsi       bytea NOT NULL,
    CHECK (min_value <= max_value),
    PRIMARY KEY (tag_name, brand)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.tag_bsi', '');
-- roaring slices do not compress: stored out of line uncompressed, read without a decompression pass
ALTER TABLE retail_mid.tag_bsi ALTER COLUMN bsi SET STORAGE EXTERNAL;
COMMENT ON TABLE retail_mid.tag_bsi IS 'One bit-sliced index per numeric tag, rebuilt by evaluate_tags(): range predicates (>=, <, BETWEEN, =) are answered exactly from it, without reading tag_value.';
COMMENT ON COLUMN retail_mid.tag_bsi.tag_name IS 'The numeric tag.';
COMMENT ON COLUMN retail_mid.tag_bsi.brand IS 'A brand: the index of that brand''s values (tags of scope brand), or of its customers'' group-wide values (group tags shared with brands). ''*'': the group-wide index of a group tag (a brand tag has none: a customer may hold several values; its group-wide ranges are the union of the brands'' ranges).';
COMMENT ON COLUMN retail_mid.tag_bsi.scale IS 'The index holds value * 10^scale as int8 (the tag''s numeric_scale when it was built).';
COMMENT ON COLUMN retail_mid.tag_bsi.min_value IS 'Smallest current value.';
COMMENT ON COLUMN retail_mid.tag_bsi.max_value IS 'Largest current value.';
COMMENT ON COLUMN retail_mid.tag_bsi.customers IS 'Customers having a value.';
COMMENT ON COLUMN retail_mid.tag_bsi.bsi IS 'The bit-sliced index (retail_mid.bsi_build_agg).';

CREATE TABLE retail_mid.customer_universe (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_key   int4 NOT NULL,
    bitmap    retail_mid.rbitmap NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_universe', '');
COMMENT ON TABLE retail_mid.customer_universe IS 'Cache of the bitmap of all customer keys (the universe NOT is relative to); keys above max_key are added on the fly.';
COMMENT ON COLUMN retail_mid.customer_universe.singleton IS 'Always true: the table has at most one row.';
COMMENT ON COLUMN retail_mid.customer_universe.max_key IS 'Largest retail_mid.customer_key key when the cache was built; larger dictionary keys are added on read.';
COMMENT ON COLUMN retail_mid.customer_universe.bitmap IS 'Dictionary keys up to max_key and every tagged customer.';
COMMENT ON COLUMN retail_mid.customer_universe.refreshed_at IS 'When the cache was rebuilt.';

CREATE TABLE retail_mid.audience_package (
    name        text NOT NULL CHECK (name <> ''),
    brand       text NOT NULL DEFAULT '*' CHECK (brand <> ''),
    version     int  NOT NULL CHECK (version > 0),
    expression  text NOT NULL,
    canonical_expression text NOT NULL,
    snapshot    retail_mid.rbitmap NOT NULL,
    customers   bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    PRIMARY KEY (name, brand, version)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.audience_package', '');
COMMENT ON TABLE retail_mid.audience_package IS 'Saved audiences: each save_audience() call keeps the expression and a snapshot bitmap under the next version of its name and brand.';
COMMENT ON COLUMN retail_mid.audience_package.name IS 'Audience name (@name in tag expressions; @brand/name when the caller sees it for several brands).';
COMMENT ON COLUMN retail_mid.audience_package.brand IS 'Brand whose customers the snapshot holds, or ''*'' for a group-wide audience (saved and read by admins); under brand isolation.';
COMMENT ON COLUMN retail_mid.audience_package.version IS 'Version, counted per name and brand.';
COMMENT ON COLUMN retail_mid.audience_package.created_at IS 'When the version was saved.';
COMMENT ON COLUMN retail_mid.audience_package.created_by IS 'Who saved it.';
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
CREATE FUNCTION retail_mid.audience(expression text, brand text) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'audience_in_brand' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience(text, text) IS 'The customers matching a tag expression in the context of a brand: tags of scope brand are read with that brand''s values only (group tags and saved audiences as without a brand), and NOT is the complement within the brand''s customers. A brand the caller may not see is error 42501.';
CREATE FUNCTION retail_mid.audience_count(expression text, brand text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'audience_count_in_brand' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience_count(text, text) IS 'How many customers match a tag expression in the context of a brand (see audience(text, text)).';
CREATE FUNCTION retail_mid.audience_parse(expression text) RETURNS text
    AS 'MODULE_PATHNAME', 'audience_parse' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.audience_parse(text) IS 'Checks the syntax of a tag expression and returns it fully parenthesised.';

CREATE FUNCTION retail_mid.tag_numeric_range(tag text, lo numeric, lo_inclusive boolean, hi numeric, hi_inclusive boolean)
RETURNS retail_mid.rbitmap AS 'MODULE_PATHNAME', 'tag_numeric_range' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.tag_numeric_range(text, numeric, boolean, numeric, boolean) IS 'Customers whose numeric tag lies between lo and hi (NULL bound = open), from the tag''s bit-sliced index: the bounds are scaled to the index''s scale and rounded inwards, so the answer is exact for the stored values. NaN bounds are error 22023; NULL tag or flags give NULL.';

-- Known customers: every key of the dictionary plus every customer holding a tag value (tags may be loaded
-- for keys assigned elsewhere). Cached, because building it for millions of keys takes about a second. In C with
-- the evaluator (tags/audience.c), whose NOT reads it through the same prepared query.
CREATE FUNCTION retail_mid.customer_universe() RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'customer_universe' LANGUAGE C STABLE PARALLEL RESTRICTED;
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

CREATE VIEW retail_mid.audience_member AS
SELECT p.name::text AS audience_name, p.version::int AS version, m.customer_key::int4 AS customer_key, p.brand::text AS brand
  FROM (SELECT DISTINCT ON (name, brand) name, brand, version, snapshot FROM retail_mid.audience_package ORDER BY name, brand, version DESC) p
 CROSS JOIN LATERAL retail_mid.rb_iterate(p.snapshot) AS m(customer_key);
COMMENT ON VIEW retail_mid.audience_member IS 'The members of the latest version of every saved audience (per name and brand) the caller may read, one row per customer.';
COMMENT ON COLUMN retail_mid.audience_member.brand IS 'Brand of the saved audience (''*'': group-wide).';
COMMENT ON COLUMN retail_mid.audience_member.audience_name IS 'Name of the saved audience.';
COMMENT ON COLUMN retail_mid.audience_member.version IS 'Its latest version.';
COMMENT ON COLUMN retail_mid.audience_member.customer_key IS 'A member (join retail_mid.customer_key for identifiers).';

CREATE FUNCTION retail_mid.tag_numeric_value(value numeric, scale int4, tag text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'tag_numeric_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.tag_numeric_value(numeric, int4, text) IS 'The value of a numeric tag as stored: rounded to scale decimals; NaN is error 22000, infinities and values whose value * 10^scale exceeds int8 are 22003 (the message names the tag).';

-- One scan of a group of tags sharing a source and a scope (or of one rule_sql tag): one row per source row, the
-- tags' values in an array in the order of tags, appended to pg_temp.retail_mid_tag_eval_w with the row's brand
-- (the source's brand column for tags of scope brand, '*' for group tags; one row per customer and brand rather
-- than per value keeps the history comparison's hash table small). Boolean values are normalised to true/false,
-- numeric ones rounded to the scale and range-checked (an error fails the scan; evaluate_tags then scans per tag,
-- with only_tag, to find the culprit). Also counts the source rows whose (brand, key) repeats or whose key is
-- negative, so that the expensive per-tag checks run only when needed.
CREATE FUNCTION retail_mid.tag_eval_scan(tags text[], only_tag text DEFAULT NULL,
                                         OUT source_rows bigint, OUT duplicate_keys bigint, OUT negative_keys bigint,
                                         OUT value_counts bigint[])
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src text; cols text; arr text; cnt text; n bigint; scopes int; by_brand boolean; no_brand bigint;
        authors regrole[]; run_as regrole; tok int8; granted boolean := false;
BEGIN
    IF tags IS NULL THEN
        RAISE EXCEPTION 'tag_eval_scan needs tags' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- stored SQL is one piece of its kind (no second statement), and runs as its authors (src/common/registry.sql)
    PERFORM retail_mid.registry_check_sql(d.rule_sql, 'query', format('rule_sql of tag %s', d.tag_name)),
            retail_mid.registry_check_sql(d.source, 'relation', format('source of tag %s', d.tag_name)),
            retail_mid.registry_check_sql(d.expression, 'expression', format('expression of tag %s', d.tag_name))
       FROM retail_mid.tag_definition d
      WHERE d.tag_name = ANY (tags) AND (only_tag IS NULL OR d.tag_name = only_tag);
    SELECT array_agg(d.author) INTO authors FROM retail_mid.tag_definition d
     WHERE d.tag_name = ANY (tags) AND (only_tag IS NULL OR d.tag_name = only_tag);
    run_as := retail_mid.registry_role(authors, format('the rule of tag %s', coalesce(only_tag, array_to_string(tags, ', '))));
    SELECT CASE WHEN min(d.source) IS NULL THEN format('(%s) AS s(customer_key, value)', min(d.rule_sql))
                ELSE format('%s AS s', min(d.source)) END,
           string_agg(format('%s AS c%s', CASE WHEN only_tag IS NOT NULL AND d.tag_name IS DISTINCT FROM only_tag THEN 'NULL::text'
                           ELSE CASE d.value_type
                                  WHEN 'boolean' THEN format('((%s)::boolean)::text', e.x)
                                  WHEN 'numeric' THEN format('retail_mid.tag_numeric_value((%s)::numeric, %s, %L)::text', e.x, d.numeric_scale, d.tag_name)
                                  ELSE format('(%s)::text', e.x) END END, t.i), ', ' ORDER BY t.i),
           string_agg('x.c' || t.i, ', ' ORDER BY t.i),
           string_agg(format('count(x.c%s) FILTER (WHERE x.customer_key IS NOT NULL)', t.i), ', ' ORDER BY t.i),
           count(DISTINCT coalesce(d.source, d.tag_name)), count(DISTINCT d.scope), bool_and(d.scope = 'brand')
      INTO src, cols, arr, cnt, n, scopes, by_brand
      FROM unnest(tags) WITH ORDINALITY AS t(tag_name, i)
      JOIN retail_mid.tag_definition d ON d.tag_name = t.tag_name
     CROSS JOIN LATERAL (SELECT coalesce(d.expression, 's.value') AS x) e;
    IF n IS DISTINCT FROM 1 OR scopes IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'tag_eval_scan needs tags of one source and one scope' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the author writes the scan's rows into the caller's work table (the grant is taken back after the scan, so that
    -- no privilege outlives it and the role stays droppable)
    IF NOT has_table_privilege(run_as::oid, 'pg_temp.retail_mid_tag_eval_w', 'INSERT') THEN
        EXECUTE format('GRANT INSERT ON pg_temp.retail_mid_tag_eval_w TO %s', run_as);
        granted := true;
    END IF;
    tok := retail_mid.registry_enter(run_as);
    IF by_brand THEN
        -- a clear error instead of "column s.brand does not exist" (LIMIT 0: planned, no row read)
        BEGIN
            EXECUTE format('SELECT s.brand FROM %s LIMIT 0', src);
        EXCEPTION WHEN undefined_column THEN
            RAISE EXCEPTION 'tags of scope brand need a brand column in their source' USING ERRCODE = 'undefined_column',
                DETAIL = format('Tags: %s. Source: %s.', array_to_string(tags, ', '), src),
                HINT = 'Add a brand column to the source (for rule_sql: a column named brand after customer_key and the value), or set scope to group.';
        END;
    END IF;
    EXECUTE format('WITH x AS MATERIALIZED (SELECT %s AS brand, (s.customer_key)::int4 AS customer_key, %s FROM %s), '
                   'ins AS (INSERT INTO pg_temp.retail_mid_tag_eval_w (brand, customer_key, vals) '
                   '        SELECT x.brand, x.customer_key, ARRAY[%s]::text[] FROM x WHERE x.customer_key IS NOT NULL) '
                   'SELECT count(customer_key), count(customer_key) - count(DISTINCT %s), '
                   '       count(*) FILTER (WHERE customer_key < 0), %s, ARRAY[%s]::bigint[] FROM x',
                   CASE WHEN by_brand THEN '(s.brand)::text' ELSE '''*''::text' END, cols, src, arr,
                   CASE WHEN by_brand THEN '(brand, customer_key)' ELSE 'customer_key' END,
                   CASE WHEN by_brand THEN 'count(*) FILTER (WHERE customer_key IS NOT NULL AND (brand IS NULL OR brand IN ('''', ''*'')))'
                        ELSE '0' END, cnt)
       INTO source_rows, duplicate_keys, negative_keys, no_brand, value_counts;
    PERFORM retail_mid.registry_leave(tok);
    IF granted THEN
        EXECUTE format('REVOKE INSERT ON pg_temp.retail_mid_tag_eval_w FROM %s', run_as);
    END IF;
    IF no_brand > 0 THEN
        RAISE EXCEPTION 'source of tags of scope brand returns % rows without a brand', no_brand USING ERRCODE = 'not_null_violation',
            DETAIL = format('Tags: %s. A brand of NULL, '''' or ''*'' is not a brand.', array_to_string(tags, ', '));
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_eval_scan(text[], text) IS 'Internal to evaluate_tags: evaluates the tags of one source and scope (or only only_tag of them) in one scan into pg_temp.retail_mid_tag_eval_w, with the brand of each row (scope brand) or ''*''; returns the source rows with a key, how many (brand, key) pairs repeat, how many keys are negative, and the number of values of each tag. A brand tag whose source has no brand column is error 42703; rows without a brand (NULL, '''' or ''*'') are 23502. The rules run as their authors (retail_mid.registry_role; 42501 when an author is gone or no administrator) and must be one expression, relation or SELECT each (42601).';

-- Evaluates tag definitions: one scan per source (tags sharing a source are columns of one SELECT; each rule_sql
-- tag is its own scan), then records value changes with history in bulk (re-running with unchanged data writes
-- nothing), and rebuilds the bitmaps (boolean/enum) and bit-sliced indexes (numeric) of the tags that changed.
-- work_mem: the history comparison of a source's tags joins all their values at once; with the default 4MB it
-- sorts them on disk (a merge anti-join) instead of hashing them in memory, about 10x slower.
CREATE FUNCTION retail_mid.evaluate_tags(tag_names text[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp SET work_mem = '256MB'
AS $$
DECLARE
    g record; c record; job bigint; ts timestamptz := clock_timestamp();
    total bigint := 0; scans int := 0; n_groups int; gi int := 0; one text;
    failed jsonb := '[]'; per_tag jsonb := '{}'; per_source jsonb := '[]';
    bad text[]; ok text[]; changed text[]; closed jsonb; opened jsonb; n_scan int; n_rows bigint;
    msg text; st text; r record; suspicious bigint; counts jsonb; cnt bigint[];
BEGIN
    job := retail_mid.job_start('evaluate_tags', jsonb_build_object('tag_names', tag_names));
    IF tag_names IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(tag_names) x
                                          WHERE x NOT IN (SELECT tag_name FROM retail_mid.tag_definition)) THEN
        RAISE EXCEPTION 'unknown tag in tag_names' USING ERRCODE = 'undefined_object',
            DETAIL = (SELECT string_agg(x, ', ') FROM unnest(tag_names) x
                       WHERE x NOT IN (SELECT tag_name FROM retail_mid.tag_definition));
    END IF;
    IF to_regclass('pg_temp.retail_mid_tag_eval_w') IS NULL THEN
        CREATE TEMP TABLE retail_mid_tag_eval_w (brand text, customer_key int4, vals text[]);
    END IF;
    -- tags of one source are read in one scan per scope (brand tags read the source's brand column)
    SELECT count(DISTINCT coalesce(t.source, '') || '/' || t.scope || '/' || CASE WHEN t.source IS NULL THEN t.tag_name ELSE '' END)
      INTO n_groups FROM retail_mid.tag_definition t
     WHERE t.enabled AND (tag_names IS NULL OR t.tag_name = ANY (tag_names));
    FOR g IN SELECT coalesce(t.source, '(rule of ' || min(t.tag_name) || ')') AS source, t.scope,
                    array_agg(t.tag_name ORDER BY t.tag_name) AS tags
               FROM retail_mid.tag_definition t
              WHERE t.enabled AND (tag_names IS NULL OR t.tag_name = ANY (tag_names))
              GROUP BY t.source, t.scope, CASE WHEN t.source IS NULL THEN t.tag_name END
              ORDER BY 1, 2
    LOOP
        gi := gi + 1;
        bad := '{}';
        n_scan := 0;
        suspicious := 0;
        TRUNCATE pg_temp.retail_mid_tag_eval_w;
        BEGIN
            r := retail_mid.tag_eval_scan(g.tags);
            suspicious := r.duplicate_keys + r.negative_keys;
            cnt := r.value_counts;
            n_scan := 1;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, st = RETURNED_SQLSTATE;
            IF cardinality(g.tags) = 1 THEN
                bad := g.tags;
                failed := failed || jsonb_build_object('tag', g.tags[1], 'sqlstate', st, 'error', msg);
                RAISE WARNING 'evaluate_tags: % failed: %', g.tags[1], msg;
            ELSE
                -- find the failing expressions: one scan per tag of this source
                cnt := array_fill(0::bigint, ARRAY[cardinality(g.tags)]);
                FOREACH one IN ARRAY g.tags LOOP
                    BEGIN
                        r := retail_mid.tag_eval_scan(g.tags, one);
                        suspicious := suspicious + r.duplicate_keys + r.negative_keys;
                        cnt := ARRAY(SELECT a + b FROM unnest(cnt, r.value_counts) AS u(a, b));
                        n_scan := n_scan + 1;
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, st = RETURNED_SQLSTATE;
                        bad := bad || one;
                        failed := failed || jsonb_build_object('tag', one, 'sqlstate', st, 'error', msg);
                        RAISE WARNING 'evaluate_tags: % failed: %', one, msg;
                    END;
                END LOOP;
            END IF;
        END;
        scans := scans + n_scan;
        ANALYZE pg_temp.retail_mid_tag_eval_w;
        -- a source key seen twice or negative: find the tags it breaks (they fail, keeping their stored values)
        IF suspicious > 0 THEN
            FOR c IN SELECT m.tag_name, count(*) FILTER (WHERE w.customer_key < 0) AS neg,
                            count(*) - count(DISTINCT (w.brand, w.customer_key)) AS extra,
                            (SELECT count(*) FROM (SELECT 1 FROM pg_temp.retail_mid_tag_eval_w ww WHERE ww.vals[m.i] IS NOT NULL
                                                    GROUP BY ww.brand, ww.customer_key HAVING count(*) > 1) x) AS dup
                       FROM unnest(g.tags) WITH ORDINALITY AS m(tag_name, i)
                       JOIN pg_temp.retail_mid_tag_eval_w w ON w.vals[m.i] IS NOT NULL
                      WHERE m.tag_name <> ALL (bad)
                      GROUP BY m.tag_name, m.i
                     HAVING count(*) FILTER (WHERE w.customer_key < 0) > 0 OR count(*) > count(DISTINCT (w.brand, w.customer_key))
            LOOP
                bad := bad || c.tag_name;
                IF c.dup > 0 THEN
                    st := '21000'; msg := format('rule of tag %s returns several values for %s customers%s', c.tag_name, c.dup,
                                                 CASE WHEN g.scope = 'brand' THEN ' of one brand' ELSE '' END);
                ELSE
                    st := '22003'; msg := format('rule of tag %s returns negative customer keys', c.tag_name);
                END IF;
                failed := failed || jsonb_build_object('tag', c.tag_name, 'sqlstate', st, 'error', msg);
                RAISE WARNING 'evaluate_tags: % failed: %', c.tag_name, msg;
            END LOOP;
        END IF;
        ok := ARRAY(SELECT x FROM unnest(g.tags) x WHERE x <> ALL (bad));
        -- history, in bulk for the source's tags: close changed or vanished values, open new ones. The new values
        -- are probed by customer (a hash of the source's rows), the tag's value picked from the array.
        WITH m AS (SELECT u.tag_name, u.i FROM unnest(g.tags) WITH ORDINALITY AS u(tag_name, i) WHERE u.tag_name = ANY (ok)),
        x AS (UPDATE retail_mid.tag_value t SET valid_to = ts FROM m
               WHERE t.tag_name = m.tag_name AND t.valid_to IS NULL
                 AND NOT EXISTS (SELECT 1 FROM pg_temp.retail_mid_tag_eval_w n
                                  WHERE n.customer_key = t.customer_key AND n.brand = t.brand AND n.vals[m.i] = t.value)
              RETURNING t.tag_name)
        SELECT coalesce(jsonb_object_agg(tag_name, k), '{}') INTO closed FROM (SELECT tag_name, count(*) AS k FROM x GROUP BY 1) y;
        -- a tag none of whose current values closed, with as many current values (counted by its bitmaps: the '*'
        -- rows of a group tag, the brand rows of a brand tag) as new ones, has nothing to open (every current value
        -- matched a new one, one to one): unchanged tags skip the second anti-join
        SELECT coalesce(jsonb_object_agg(m.tag_name, coalesce(cnt[m.i], 0)), '{}'), coalesce(sum(cnt[m.i]), 0) INTO counts, n_rows
          FROM unnest(g.tags) WITH ORDINALITY AS m(tag_name, i) WHERE m.tag_name = ANY (ok);
        changed := ARRAY(SELECT x FROM unnest(ok) x
                          WHERE closed ? x
                             OR coalesce((SELECT sum(b.customers) FROM retail_mid.tag_bitmap b
                                           WHERE b.tag_name = x AND (b.brand = '*') = (g.scope = 'group')),
                                         (SELECT sum(b.customers) FROM retail_mid.tag_bsi b
                                           WHERE b.tag_name = x AND (b.brand = '*') = (g.scope = 'group')), -1)
                                <> (counts ->> x)::bigint);
        WITH m AS (SELECT u.tag_name, u.i, d.value_type FROM unnest(g.tags) WITH ORDINALITY AS u(tag_name, i)
                     JOIN retail_mid.tag_definition d ON d.tag_name = u.tag_name WHERE u.tag_name = ANY (changed)),
        x AS (INSERT INTO retail_mid.tag_value (tag_name, brand, customer_key, value, numeric_value, valid_from)
              SELECT m.tag_name, n.brand, n.customer_key, n.vals[m.i], CASE WHEN m.value_type = 'numeric' THEN n.vals[m.i]::numeric END, ts
                FROM m CROSS JOIN pg_temp.retail_mid_tag_eval_w n
               WHERE n.vals[m.i] IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM retail_mid.tag_value t
                                  WHERE t.tag_name = m.tag_name AND t.brand = n.brand AND t.customer_key = n.customer_key AND t.valid_to IS NULL)
              RETURNING tag_name)
        SELECT coalesce(jsonb_object_agg(tag_name, k), '{}') INTO opened FROM (SELECT tag_name, count(*) AS k FROM x GROUP BY 1) y;
        -- rebuild the bitmaps / bit-sliced indexes of every tag that changed or has none yet: one row per value and
        -- brand (a group tag's brand is '*'; its brand rows, when shared, follow by the trigger of src/security.sql),
        -- and for a brand tag the union over brands as its '*' bitmap rows
        changed := ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d
                          WHERE d.tag_name = ANY (ok)
                            AND (closed ? d.tag_name OR opened ? d.tag_name
                                 OR NOT EXISTS (SELECT 1 FROM retail_mid.tag_bitmap b WHERE b.tag_name = d.tag_name)
                                    AND NOT EXISTS (SELECT 1 FROM retail_mid.tag_bsi b WHERE b.tag_name = d.tag_name)));
        IF cardinality(changed) > 0 THEN
            DELETE FROM retail_mid.tag_bitmap b WHERE b.tag_name = ANY (changed);
            DELETE FROM retail_mid.tag_bsi b WHERE b.tag_name = ANY (changed);
            INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
            SELECT v.tag_name, v.value, v.brand, retail_mid.rb_build_agg(v.customer_key), count(*)
              FROM retail_mid.tag_value v JOIN retail_mid.tag_definition d USING (tag_name)
             WHERE v.tag_name = ANY (changed) AND v.valid_to IS NULL AND d.value_type <> 'numeric'
             GROUP BY v.tag_name, v.value, v.brand
            UNION ALL
            SELECT u.tag_name, u.value, '*', u.b, retail_mid.rb_cardinality(u.b)
              FROM (SELECT v.tag_name, v.value, retail_mid.rb_build_agg(v.customer_key) AS b
                      FROM retail_mid.tag_value v
                     WHERE v.tag_name = ANY (ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d
                                                    WHERE d.tag_name = ANY (changed) AND d.scope = 'brand' AND d.value_type <> 'numeric'))
                       AND v.valid_to IS NULL AND v.brand <> '*'
                     GROUP BY v.tag_name, v.value) u;
            INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
            SELECT v.tag_name, v.brand, d.numeric_scale, min(v.numeric_value), max(v.numeric_value), count(*),
                   retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, d.numeric_scale))::int8)
              FROM retail_mid.tag_value v JOIN retail_mid.tag_definition d USING (tag_name)
             WHERE v.tag_name = ANY (changed) AND v.valid_to IS NULL AND d.value_type = 'numeric'
             GROUP BY v.tag_name, v.brand, d.numeric_scale;
        END IF;
        UPDATE retail_mid.tag_definition t SET last_evaluated_at = ts WHERE t.tag_name = ANY (ok);
        FOR c IN SELECT x AS tag_name, coalesce((counts ->> x)::bigint, 0) AS customers,
                        coalesce((closed ->> x)::bigint, 0) AS n_closed, coalesce((opened ->> x)::bigint, 0) AS n_opened
                   FROM unnest(ok) x ORDER BY 1
        LOOP
            total := total + c.n_closed + c.n_opened;
            per_tag := per_tag || jsonb_build_object(c.tag_name,
                       jsonb_build_object('customers', c.customers, 'closed', c.n_closed, 'opened', c.n_opened));
            RAISE NOTICE 'evaluate_tags: %: % customers, % values closed, % opened', c.tag_name, c.customers, c.n_closed, c.n_opened;
        END LOOP;
        per_source := per_source || jsonb_build_object('source', g.source, 'scope', g.scope, 'tags', cardinality(g.tags),
                                                       'scans', n_scan, 'rows', n_rows);
        RAISE NOTICE 'evaluate_tags: source % (%/%): % tags in % scan(s), % values',
            g.source || CASE WHEN g.scope = 'brand' THEN ' by brand' ELSE '' END, gi, n_groups, cardinality(g.tags), n_scan, n_rows;
    END LOOP;
    PERFORM retail_mid.refresh_customer_universe();
    PERFORM retail_mid.job_finish(job, total, jsonb_build_object('tags', per_tag, 'failed', failed, 'source_scans', scans,
                                                                 'sources', per_source));
    RETURN total;
END;
$$;
COMMENT ON FUNCTION retail_mid.evaluate_tags(text[]) IS 'Evaluates the enabled tag definitions (or the named ones) in one scan per source: writes value changes with history, rebuilds changed bitmaps and bit-sliced indexes, logs to job_log (detail: per-tag counts, failures, source_scans); returns the number of value rows closed or opened. A failing rule is reported as a WARNING and in job_log, the others still run.';
