-- tags/insight.sql: audience insight (profile, TGI, comparison, overlap), lookalike expansion, stored profiles.
--
-- The counting is C (tags/insight.c) on the bitmaps and bit-sliced indexes of tags/audience.sql; the functions
-- here check their inputs, evaluate the audiences and the base, and turn counts into shares and TGI.

CREATE FUNCTION retail_mid.audience_profile_counts(members retail_mid.rbitmap, base retail_mid.rbitmap, tags text[],
                                                   brand text, buckets int)
RETURNS TABLE (tag text, value text, bucket int, lo_scaled int8, hi_scaled int8, scale int, members bigint, base_members bigint)
    AS 'MODULE_PATHNAME', 'audience_profile_counts' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience_profile_counts(retail_mid.rbitmap, retail_mid.rbitmap, text[], text, int) IS 'Internal to audience_profile and audience_compare: per value of each boolean/enumerated tag and per quantile bucket of each numeric tag (bounds scaled by 10^scale, lower inclusive, upper exclusive, NULL = open; boundaries are quantiles of the base''s values), how many members and base customers hold it, by bitmap intersections; rows with neither are left out. In a brand context (brand not NULL) brand tags are read with that brand''s bitmaps. NULL members, base, tags or buckets are 22004; buckets outside 2..20 are 22023.';

CREATE FUNCTION retail_mid.audience_lookalike_scores(seed retail_mid.rbitmap, base retail_mid.rbitmap, tags text[], brand text,
                                                     size int, buckets int)
RETURNS TABLE (customer_key int4, score float8, rank bigint)
    AS 'MODULE_PATHNAME', 'audience_lookalike_scores' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION retail_mid.audience_lookalike_scores(retail_mid.rbitmap, retail_mid.rbitmap, text[], text, int, int) IS 'Internal to audience_lookalike: weighs every feature of the tags (value or quantile bucket of the base) by its smoothed log-odds among the seed minus among the base customers outside the seed, scores each of those customers by the sum of the weights of the features it holds, and returns the size best (ties by key).';

-- The tags to profile: the named ones (each must exist and be readable by the caller), or every tag the caller
-- may read. Raises the errors the public functions document.
CREATE FUNCTION retail_mid.insight_tags(tags text[]) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE bad text; admin boolean := retail_mid.brand_visible('*');
BEGIN
    IF tags IS NULL THEN
        RETURN ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d
                      WHERE d.enabled AND (d.scope = 'brand' OR d.shared_with_brands OR admin) ORDER BY d.tag_name COLLATE "C");
    END IF;
    IF cardinality(tags) = 0 THEN
        RAISE EXCEPTION 'the list of tags must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL for every tag you may read.';
    END IF;
    IF array_position(tags, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'tag names must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x INTO bad FROM unnest(tags) x WHERE NOT EXISTS (SELECT 1 FROM retail_mid.tag_definition d WHERE d.tag_name = x) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tag "%" does not exist', bad USING ERRCODE = 'undefined_object';
    END IF;
    SELECT x INTO bad FROM unnest(tags) x GROUP BY x HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tag "%" is listed twice', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT d.tag_name INTO bad FROM retail_mid.tag_definition d
     WHERE d.tag_name = ANY (tags) AND d.scope = 'group' AND NOT d.shared_with_brands AND NOT admin LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tag "%" is group-wide and not shared with brands', bad USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its values are computed from the data of every brand; only administrators read them.';
    END IF;
    RETURN tags;
END;
$$;
COMMENT ON FUNCTION retail_mid.insight_tags(text[]) IS 'Internal to the insight functions: the tags to profile. NULL: every enabled tag the caller may read; otherwise the list, checked (empty 22023, NULL element 22004, unknown tag 42704, listed twice 22023, a group tag not shared with brands for a non-administrator 42501).';

-- The base an audience is compared with: the brand's customers, or without a brand the set NOT is relative to.
CREATE FUNCTION retail_mid.insight_base(brand text) RETURNS retail_mid.rbitmap
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF brand IS NULL THEN
        RETURN retail_mid.customer_universe();
    END IF;
    IF btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL for no brand context.';
    END IF;
    IF NOT retail_mid.brand_visible(brand) THEN
        RAISE EXCEPTION 'brand "%" is not visible to the current user', brand USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN coalesce((SELECT retail_mid.rb_build_agg(cb.customer_key) FROM retail_mid.customer_brand cb
                      WHERE cb.brand = insight_base.brand), '{}');
END;
$$;
COMMENT ON FUNCTION retail_mid.insight_base(text) IS 'Internal to the insight functions: the base of a profile, the brand''s customers (retail_mid.customer_brand), or without a brand every known customer the caller may see (retail_mid.customer_universe(), the set NOT is relative to). Empty brand 22023, a brand the caller may not see 42501.';

-- Counts to shares: the bucket label of a numeric row is its range in the tag's units.
CREATE FUNCTION retail_mid.insight_label(value text, lo_scaled int8, hi_scaled int8, scale int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN value IS NOT NULL THEN value
            WHEN lo_scaled IS NULL AND hi_scaled IS NULL THEN 'all values'
            WHEN lo_scaled IS NULL THEN '< ' || round(hi_scaled::numeric / 10::numeric ^ scale, scale)::text
            WHEN hi_scaled IS NULL THEN '>= ' || round(lo_scaled::numeric / 10::numeric ^ scale, scale)::text
            ELSE '[' || round(lo_scaled::numeric / 10::numeric ^ scale, scale)::text || ', '
                     || round(hi_scaled::numeric / 10::numeric ^ scale, scale)::text || ')' END;
COMMENT ON FUNCTION retail_mid.insight_label(text, int8, int8, int) IS 'Internal to the insight functions: the value of a boolean/enumerated row, or the range of a numeric bucket (< hi, [lo, hi), >= lo, in the tag''s units).';

CREATE FUNCTION retail_mid.audience_profile(expression text, brand text DEFAULT NULL, tags text[] DEFAULT NULL, buckets int DEFAULT 5)
RETURNS TABLE (tag text, value text, bucket int, lo numeric, hi numeric, members bigint, share float8,
               base_members bigint, base_share float8, tgi float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE m retail_mid.rbitmap; b retail_mid.rbitmap; t text[]; nm bigint; nb bigint;
BEGIN
    IF expression IS NULL THEN
        RAISE EXCEPTION 'expression must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF buckets IS NULL THEN
        RAISE EXCEPTION 'buckets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    t := retail_mid.insight_tags(tags);
    b := retail_mid.insight_base(brand);
    m := CASE WHEN brand IS NULL THEN retail_mid.audience(expression) ELSE retail_mid.audience(expression, brand) END;
    nm := retail_mid.rb_cardinality(m);
    nb := retail_mid.rb_cardinality(b);
    RETURN QUERY
    SELECT c.tag, retail_mid.insight_label(c.value, c.lo_scaled, c.hi_scaled, c.scale), c.bucket,
           round(c.lo_scaled::numeric / 10::numeric ^ c.scale, c.scale), round(c.hi_scaled::numeric / 10::numeric ^ c.scale, c.scale),
           c.members, c.members::float8 / nullif(nm, 0), c.base_members, c.base_members::float8 / nullif(nb, 0),
           (c.members::float8 / nullif(nm, 0)) / nullif(c.base_members::float8 / nullif(nb, 0), 0) * 100
      FROM retail_mid.audience_profile_counts(m, b, t, brand, buckets) c;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_profile(text, text, text[], int) IS 'Describes an audience against its base: per value of each boolean/enumerated tag and per quantile bucket of each numeric tag (buckets of the base''s values, default quintiles), the members holding it, their share of the audience, the base customers holding it, their share of the base, and TGI = share / base share * 100. Base: the brand''s customers (brand context, as audience(expression, brand)) or every known customer. Counted on the bitmaps, never on tag_value. tags NULL: every tag the caller may read.';

CREATE FUNCTION retail_mid.audience_compare(a text, b text, brand text DEFAULT NULL, tags text[] DEFAULT NULL, buckets int DEFAULT 5)
RETURNS TABLE (tag text, value text, bucket int, lo numeric, hi numeric, members_a bigint, share_a float8,
               members_b bigint, share_b float8, tgi float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE ma retail_mid.rbitmap; mb retail_mid.rbitmap; t text[]; na bigint; nb bigint;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RAISE EXCEPTION 'expressions must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF buckets IS NULL THEN
        RAISE EXCEPTION 'buckets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    t := retail_mid.insight_tags(tags);
    PERFORM retail_mid.insight_base(brand);      -- checks the brand
    ma := CASE WHEN brand IS NULL THEN retail_mid.audience(a) ELSE retail_mid.audience(a, brand) END;
    mb := CASE WHEN brand IS NULL THEN retail_mid.audience(b) ELSE retail_mid.audience(b, brand) END;
    na := retail_mid.rb_cardinality(ma);
    nb := retail_mid.rb_cardinality(mb);
    RETURN QUERY
    SELECT c.tag, retail_mid.insight_label(c.value, c.lo_scaled, c.hi_scaled, c.scale), c.bucket,
           round(c.lo_scaled::numeric / 10::numeric ^ c.scale, c.scale), round(c.hi_scaled::numeric / 10::numeric ^ c.scale, c.scale),
           c.members, c.members::float8 / nullif(na, 0), c.base_members, c.base_members::float8 / nullif(nb, 0),
           (c.members::float8 / nullif(na, 0)) / nullif(c.base_members::float8 / nullif(nb, 0), 0) * 100
      FROM retail_mid.audience_profile_counts(ma, mb, t, brand, buckets) c;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_compare(text, text, text, text[], int) IS 'Two audiences side by side: per tag value (numeric tags: quantile buckets of b''s values) the members of a and of b holding it, their shares, and TGI of a against b (share_a / share_b * 100). In a brand context both are evaluated as audience(expression, brand).';

CREATE FUNCTION retail_mid.audience_overlap(names text[])
RETURNS TABLE (audience_a text, audience_b text, members_a bigint, members_b bigint, both_members bigint,
               either_members bigint, jaccard float8)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE bm retail_mid.rbitmap[]; n int; bad text;
BEGIN
    IF names IS NULL THEN
        RAISE EXCEPTION 'names must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_position(names, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'audience names must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    n := cardinality(names);
    IF n < 2 THEN
        RAISE EXCEPTION 'audience_overlap needs at least two saved audiences' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x INTO bad FROM unnest(names) x GROUP BY x HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'audience "%" is listed twice', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each name as written after @ in an expression (vip, brand_a/vip, "my list"): the latest readable snapshot
    bm := ARRAY(SELECT retail_mid.audience('@' || x) FROM unnest(names) WITH ORDINALITY u(x, i) ORDER BY i);
    RETURN QUERY
    SELECT names[i], names[j], retail_mid.rb_cardinality(bm[i]), retail_mid.rb_cardinality(bm[j]),
           retail_mid.rb_and_cardinality(bm[i], bm[j]), retail_mid.rb_or_cardinality(bm[i], bm[j]),
           retail_mid.rb_and_cardinality(bm[i], bm[j])::float8 / nullif(retail_mid.rb_or_cardinality(bm[i], bm[j]), 0)
      FROM generate_series(1, n) i, generate_series(1, n) j
     WHERE i < j
     ORDER BY i, j;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_overlap(text[]) IS 'Pairwise overlap of saved audiences (each name written as after @ in a tag expression: vip, brand_a/vip): members of each, of both, of either, and the Jaccard index both / either (NULL when both are empty). NULL 22004, fewer than two names or a name twice 22023, an unknown audience 42704.';

CREATE FUNCTION retail_mid.audience_lookalike(seed_expression text, size int, brand text DEFAULT NULL, tags text[] DEFAULT NULL,
                                              buckets int DEFAULT 5)
RETURNS TABLE (customer_key int4, score float8, rank bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE s retail_mid.rbitmap; b retail_mid.rbitmap; t text[];
BEGIN
    IF seed_expression IS NULL OR size IS NULL OR buckets IS NULL THEN
        RAISE EXCEPTION 'seed expression, size and buckets must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF size < 1 THEN
        RAISE EXCEPTION 'size must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    t := retail_mid.insight_tags(tags);
    b := retail_mid.insight_base(brand);
    s := CASE WHEN brand IS NULL THEN retail_mid.audience(seed_expression) ELSE retail_mid.audience(seed_expression, brand) END;
    IF retail_mid.rb_is_empty(s) THEN
        RAISE EXCEPTION 'the seed audience is empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY SELECT l.customer_key, l.score, l.rank FROM retail_mid.audience_lookalike_scores(s, b, t, brand, size, buckets) l;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_lookalike(text, int, text, text[], int) IS 'Lookalike expansion: ranks the base customers outside the seed audience (brand context as audience(expression, brand); base as audience_profile) by the sum of the weights of their tag values and numeric quantile buckets, a weight being the log-odds of the feature among the seed minus among the other base customers (counts smoothed by 0.5), and returns the size best (ties by key). tags NULL: every tag the caller may read (leave out tags derived from the outcome you predict). NULL 22004, size < 1 or an empty seed 22023.';

-- A profile is stored with each saved audience version (against its brand's customers, or every customer for a
-- group-wide audience), for the dashboards.
CREATE TABLE retail_mid.audience_profile_snapshot (
    name         text NOT NULL,
    brand        text NOT NULL,
    version      int NOT NULL,
    tag          text NOT NULL,
    value        text NOT NULL,
    bucket       int,
    lo           numeric,
    hi           numeric,
    members      bigint NOT NULL,
    share        float8,
    base_members bigint NOT NULL,
    base_share   float8,
    tgi          float8,
    PRIMARY KEY (name, brand, version, tag, value),
    FOREIGN KEY (name, brand, version) REFERENCES retail_mid.audience_package ON DELETE CASCADE
);
COMMENT ON TABLE retail_mid.audience_profile_snapshot IS 'The profile of each saved audience version when it was saved (audience_profile of its snapshot against its brand''s customers, or every known customer for a group-wide audience, over every tag the saver could read); written by a trigger on audience_package.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.name IS 'Saved audience (audience_package.name).';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.brand IS 'Its brand (''*'': group-wide); under brand isolation.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.version IS 'Its version.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.tag IS 'Tag.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.value IS 'Value of a boolean/enumerated tag, or the range label of a numeric bucket.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.bucket IS 'Numeric tags: bucket number (1 = lowest); NULL otherwise.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.lo IS 'Numeric tags: inclusive lower bound of the bucket (NULL: open).';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.hi IS 'Numeric tags: exclusive upper bound of the bucket (NULL: open).';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.members IS 'Members holding the value.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.share IS 'members / audience size.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.base_members IS 'Base customers holding the value.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.base_share IS 'base_members / base size.';
COMMENT ON COLUMN retail_mid.audience_profile_snapshot.tgi IS 'share / base_share * 100 (NULL when the base share is 0).';
SELECT pg_catalog.pg_extension_config_dump('retail_mid.audience_profile_snapshot', '');

-- Stores the profile of a saved version (save_audience calls it; a restore by pg_dump does not recompute it).
CREATE FUNCTION retail_mid.audience_profile_store(name text, brand text, version int) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE s retail_mid.rbitmap; b retail_mid.rbitmap; ctx text := nullif(brand, '*'); nm bigint; nb bigint; n bigint;
BEGIN
    SELECT p.snapshot INTO s FROM retail_mid.audience_package p
     WHERE p.name = audience_profile_store.name AND p.brand = audience_profile_store.brand AND p.version = audience_profile_store.version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'saved audience "%" of brand "%" has no version %', name, brand, version USING ERRCODE = 'undefined_object';
    END IF;
    b := retail_mid.insight_base(ctx);
    nm := retail_mid.rb_cardinality(s);
    nb := retail_mid.rb_cardinality(b);
    INSERT INTO retail_mid.audience_profile_snapshot (name, brand, version, tag, value, bucket, lo, hi, members, share,
                                                      base_members, base_share, tgi)
    SELECT audience_profile_store.name, audience_profile_store.brand, audience_profile_store.version, c.tag,
           retail_mid.insight_label(c.value, c.lo_scaled, c.hi_scaled, c.scale), c.bucket,
           round(c.lo_scaled::numeric / 10::numeric ^ c.scale, c.scale), round(c.hi_scaled::numeric / 10::numeric ^ c.scale, c.scale),
           c.members, c.members::float8 / nullif(nm, 0), c.base_members, c.base_members::float8 / nullif(nb, 0),
           (c.members::float8 / nullif(nm, 0)) / nullif(c.base_members::float8 / nullif(nb, 0), 0) * 100
      FROM retail_mid.audience_profile_counts(s, b, retail_mid.insight_tags(NULL), ctx, 5) c;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.audience_profile_store(text, text, int) IS 'Internal to save_audience: stores the profile of a saved version (every tag the caller reads, quintile buckets for numeric tags, against the brand''s customers or every known customer for a group-wide audience) in audience_profile_snapshot; returns the rows written.';

-- Saves an audience under the next version of its name and brand (concurrent saves of one are serialised). The
-- expression is evaluated as the caller (an analyst's bitmaps hold the customers of its brands only), and a
-- brand's snapshot is cut down to that brand's customers (retail_mid.customer_brand, from foundation/tenancy.sql).
CREATE FUNCTION retail_mid.save_audience(name text, expression text, brand text DEFAULT '*') RETURNS int
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v int; b retail_mid.rbitmap; entitled boolean; msg text;
BEGIN
    IF btrim(name) = '' THEN
        RAISE EXCEPTION 'audience name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF btrim(brand) = '' THEN
        RAISE EXCEPTION 'audience brand must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Give a brand, or ''*'' for a group-wide audience.';
    END IF;
    entitled := CASE WHEN brand = '*' THEN pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') ELSE retail_mid.brand_visible(brand) END;
    IF NOT entitled THEN
        RAISE EXCEPTION 'permission denied to save audiences of brand "%"', brand USING ERRCODE = 'insufficient_privilege',
            HINT = CASE WHEN brand = '*' THEN 'Group-wide audiences are saved by members of retail_mid_admin; save it for one of your brands.'
                        ELSE 'It needs an entitlement to the brand (retail_mid.brand_entitlement).' END;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.audience_package'), hashtext(brand || '/' || name));
    -- in the brand's context: brand tags are read with that brand's values (a customer of several brands the
    -- caller sees counts by this brand's data)
    b := CASE WHEN brand = '*' THEN retail_mid.audience(expression) ELSE retail_mid.audience(expression, brand) END;
    IF brand <> '*' THEN
        b := retail_mid.rb_and(b, coalesce((SELECT retail_mid.rb_build_agg(cb.customer_key) FROM retail_mid.customer_brand cb
                                             WHERE cb.brand = save_audience.brand), '{}'));
    END IF;
    SELECT coalesce(max(p.version), 0) + 1 INTO v FROM retail_mid.audience_package p
     WHERE p.name = save_audience.name AND p.brand = save_audience.brand;
    INSERT INTO retail_mid.audience_package (name, brand, version, expression, canonical_expression, snapshot, customers)
    VALUES (name, brand, v, expression, retail_mid.audience_parse(expression), b, retail_mid.rb_cardinality(b));
    -- issue 16: the version's profile; an audience is still saved when a tag cannot be profiled now
    BEGIN
        PERFORM retail_mid.audience_profile_store(name, brand, v);
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        RAISE WARNING 'audience "%" version % saved without its profile: %', name, v, msg;
    END;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION retail_mid.save_audience(text, text, text) IS 'Evaluates the expression as the caller (in the brand''s context: brand tags with that brand''s values) and saves its snapshot, restricted to the brand''s customers, as the next version of the named audience of that brand (''*'', the default: group-wide, admins only); returns the version. Error 42501 for a brand the caller is not entitled to.';


CREATE VIEW retail_mid.audience_insight AS
SELECT s.name::text AS audience_name, s.brand::text AS brand, s.version::int AS version, p.customers::bigint AS audience_members,
       p.created_at::timestamptz AS saved_at, s.tag::text AS tag, s.value::text AS value, s.bucket::int AS bucket,
       s.lo::numeric AS lo, s.hi::numeric AS hi, s.members::bigint AS members, s.share::float8 AS share,
       s.base_members::bigint AS base_members, s.base_share::float8 AS base_share, s.tgi::float8 AS tgi
  FROM (SELECT DISTINCT ON (name, brand) name, brand, version, customers, created_at FROM retail_mid.audience_package
         ORDER BY name, brand, version DESC) p
  JOIN retail_mid.audience_profile_snapshot s ON s.name = p.name AND s.brand = p.brand AND s.version = p.version;
COMMENT ON VIEW retail_mid.audience_insight IS 'For dashboards: the stored profile of the latest version of every saved audience the caller may read, one row per tag value or numeric bucket, with shares and TGI against the brand''s customers (group-wide audiences: every customer).';
COMMENT ON COLUMN retail_mid.audience_insight.audience_name IS 'Saved audience.';
COMMENT ON COLUMN retail_mid.audience_insight.brand IS 'Its brand (''*'': group-wide).';
COMMENT ON COLUMN retail_mid.audience_insight.version IS 'Its latest version.';
COMMENT ON COLUMN retail_mid.audience_insight.audience_members IS 'Members of that version.';
COMMENT ON COLUMN retail_mid.audience_insight.saved_at IS 'When that version was saved (and profiled).';
COMMENT ON COLUMN retail_mid.audience_insight.tag IS 'Tag.';
COMMENT ON COLUMN retail_mid.audience_insight.value IS 'Value, or the range label of a numeric bucket.';
COMMENT ON COLUMN retail_mid.audience_insight.bucket IS 'Numeric bucket number (1 = lowest); NULL for boolean/enumerated tags.';
COMMENT ON COLUMN retail_mid.audience_insight.lo IS 'Inclusive lower bound of a numeric bucket (NULL: open or not numeric).';
COMMENT ON COLUMN retail_mid.audience_insight.hi IS 'Exclusive upper bound of a numeric bucket (NULL: open or not numeric).';
COMMENT ON COLUMN retail_mid.audience_insight.members IS 'Members holding the value.';
COMMENT ON COLUMN retail_mid.audience_insight.share IS 'Share of the audience.';
COMMENT ON COLUMN retail_mid.audience_insight.base_members IS 'Base customers holding the value.';
COMMENT ON COLUMN retail_mid.audience_insight.base_share IS 'Share of the base.';
COMMENT ON COLUMN retail_mid.audience_insight.tgi IS 'TGI: share / base_share * 100.';
