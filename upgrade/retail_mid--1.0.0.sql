-- retail_mid 1.0.0: generated from src/*.sql by the Makefile; edit those files, not this one.
\echo Use "CREATE EXTENSION retail_mid CASCADE" to load this file. \quit

-- ===== src/core.sql =====
-- core: the job log every long-running retail_mid job writes to, and its progress helpers.

CREATE TABLE retail_mid.job_log (
    job_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text        NOT NULL,
    arguments   jsonb       NOT NULL DEFAULT '{}',
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    duration    interval GENERATED ALWAYS AS (finished_at - started_at) STORED,
    rows_written bigint,
    outcome     text        NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed')),
    detail      jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE retail_mid.job_log IS 'One row per run of a long retail_mid job (refresh, loads, tag evaluation, forecasting): what ran, when, how long, rows written, outcome.';
COMMENT ON COLUMN retail_mid.job_log.job IS 'Name of the job, e.g. refresh or load_online_retail.';
COMMENT ON COLUMN retail_mid.job_log.arguments IS 'The arguments the job was called with.';
COMMENT ON COLUMN retail_mid.job_log.duration IS 'Wall-clock time from start to finish.';
COMMENT ON COLUMN retail_mid.job_log.rows_written IS 'Rows the job inserted or replaced, over all its steps.';
COMMENT ON COLUMN retail_mid.job_log.outcome IS 'running, ok or failed.';
COMMENT ON COLUMN retail_mid.job_log.detail IS 'Per-step counts and, for failures, the error.';

-- Opens a job_log row. The row is part of the caller's transaction, so a job that fails and is rolled back
-- leaves no half-done state and no row either; retail_mid.run_logged records failed runs as well.
CREATE FUNCTION retail_mid.job_start(job text, arguments jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO retail_mid.job_log (job, arguments) VALUES (job, arguments) RETURNING job_id;
END;
COMMENT ON FUNCTION retail_mid.job_start(text, jsonb) IS 'Opens a job_log row and returns its id.';

CREATE FUNCTION retail_mid.job_finish(job_id bigint, rows_written bigint, detail jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    UPDATE retail_mid.job_log l
       SET finished_at = clock_timestamp(), rows_written = job_finish.rows_written,
           outcome = 'ok', detail = l.detail || job_finish.detail
     WHERE l.job_id = job_finish.job_id;
END;
COMMENT ON FUNCTION retail_mid.job_finish(bigint, bigint, jsonb) IS 'Closes a job_log row as successful.';

-- Runs one SQL statement (normally SELECT retail_mid.refresh(...) or a loader) as a job whose failure is
-- recorded too: the work is rolled back, the failed job_log row is committed, then the error is re-raised.
-- (No SET search_path here: a procedure with SET clauses may not COMMIT. Every name in it is qualified.)
CREATE PROCEDURE retail_mid.run_logged(job text, statement text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text; v_message text; v_detail text; v_id bigint;
BEGIN
    BEGIN
        EXECUTE statement;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    IF v_state IS NOT NULL THEN
        INSERT INTO retail_mid.job_log (job, arguments, finished_at, outcome, detail)
        VALUES (job, jsonb_build_object('statement', statement), clock_timestamp(), 'failed',
                jsonb_build_object('sqlstate', v_state, 'error', v_message, 'error_detail', v_detail))
        RETURNING job_id INTO v_id;
        COMMIT;
        RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_message,
            DETAIL = coalesce(v_detail, ''), HINT = format('The failure is recorded as job_log row %s.', v_id);
    END IF;
END;
$$;
COMMENT ON PROCEDURE retail_mid.run_logged(text, text) IS 'Runs a statement as a job: on failure its work is rolled back, a failed job_log row is committed and the error re-raised.';

-- ===== src/keydict.sql =====
-- keydict: the customer key dictionary. Every source customer identifier (type + text value) gets one dense
-- int4 key, so that bitmaps and C aggregates work on integers. Keys never change once given.

CREATE TABLE retail_mid.customer_key (
    customer_key int4 GENERATED ALWAYS AS IDENTITY (MAXVALUE 2147483647) PRIMARY KEY,
    id_type      text NOT NULL,
    id_value     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id_type, id_value),
    CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    CHECK (id_value <> '')
);
COMMENT ON TABLE retail_mid.customer_key IS 'Dictionary from source customer identifiers (type, value) to dense int4 keys; a key, once given, never changes.';
COMMENT ON COLUMN retail_mid.customer_key.customer_key IS 'Dense integer key used by every DWD/DWS table, bitmap and aggregate.';
COMMENT ON COLUMN retail_mid.customer_key.id_type IS 'Kind of identifier: member_id, phone, email, device_id, open_id, household_id or customer_id.';
COMMENT ON COLUMN retail_mid.customer_key.id_value IS 'The identifier as the source system spells it (trimmed).';

-- Gives keys to every (type, value) of the staging query that has none yet, in one statement. Safe under
-- concurrent loads: ON CONFLICT makes a racing second loader reuse the first one's key. Keys stay dense up to
-- the numbers consumed by rolled-back loads or lost races.
CREATE FUNCTION retail_mid.assign_customer_keys(id_types text[], id_values text[])
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF coalesce(array_length(id_types, 1), 0) <> coalesce(array_length(id_values, 1), 0) THEN
        RAISE EXCEPTION 'id_types and id_values must have the same length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(id_types) t
                WHERE t IS NULL OR t NOT IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')) THEN
        RAISE EXCEPTION 'unknown customer identifier type'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use member_id, phone, email, device_id, open_id, household_id or customer_id.';
    END IF;
    INSERT INTO retail_mid.customer_key (id_type, id_value)
    SELECT DISTINCT t, btrim(v)
      FROM unnest(id_types, id_values) AS u(t, v)
     WHERE v IS NOT NULL AND btrim(v) <> ''
       AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k WHERE k.id_type = u.t AND k.id_value = btrim(u.v))
     ORDER BY 1, 2
    ON CONFLICT (id_type, id_value) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.assign_customer_keys(text[], text[]) IS 'Gives a dense int4 key to each new (id_type, id_value); returns how many keys were created.';

-- Looks a key up, creating it when missing.
CREATE FUNCTION retail_mid.customer_key_of(id_type text, id_value text)
RETURNS int4 LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE k int4;
BEGIN
    SELECT c.customer_key INTO k FROM retail_mid.customer_key c
     WHERE c.id_type = customer_key_of.id_type AND c.id_value = btrim(customer_key_of.id_value);
    IF k IS NULL THEN
        PERFORM retail_mid.assign_customer_keys(ARRAY[id_type], ARRAY[id_value]);
        SELECT c.customer_key INTO k FROM retail_mid.customer_key c
         WHERE c.id_type = customer_key_of.id_type AND c.id_value = btrim(customer_key_of.id_value);
    END IF;
    RETURN k;
END;
$$;
COMMENT ON FUNCTION retail_mid.customer_key_of(text, text) IS 'The customer key of an identifier, created on first use.';

-- ===== src/bitmap.sql =====
-- bitmap: retail_mid.rbitmap, a roaring bitmap (CRoaring) of int4 customer keys, with set operators and aggregates.

CREATE TYPE retail_mid.rbitmap;

CREATE FUNCTION retail_mid.rbitmap_in(cstring) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rbitmap_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rbitmap_in(cstring) IS 'Text input of rbitmap: {1,2,3} or {} (keys 0..2147483647, any order, duplicates allowed).';
CREATE FUNCTION retail_mid.rbitmap_out(retail_mid.rbitmap) RETURNS cstring
    AS 'MODULE_PATHNAME', 'rbitmap_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rbitmap_out(retail_mid.rbitmap) IS 'Text output of rbitmap: the keys ascending in braces.';
CREATE FUNCTION retail_mid.rbitmap_recv(internal) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rbitmap_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rbitmap_recv(internal) IS 'Binary input of rbitmap: the CRoaring portable serialization, validated completely.';
CREATE FUNCTION retail_mid.rbitmap_send(retail_mid.rbitmap) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rbitmap_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rbitmap_send(retail_mid.rbitmap) IS 'Binary output of rbitmap: the CRoaring portable serialization.';

-- EXTERNAL storage: the serialization is already compressed, so pglz would only cost CPU on every read.
CREATE TYPE retail_mid.rbitmap (
    INPUT = retail_mid.rbitmap_in, OUTPUT = retail_mid.rbitmap_out,
    RECEIVE = retail_mid.rbitmap_recv, SEND = retail_mid.rbitmap_send,
    INTERNALLENGTH = VARIABLE, STORAGE = external, ALIGNMENT = int4
);
COMMENT ON TYPE retail_mid.rbitmap IS 'Roaring bitmap of customer keys (int4, 0..2147483647), stored in CRoaring''s portable format.';

-- bytea exchange (portable format, compatible with the Java/Go/Python roaring libraries)
CREATE FUNCTION retail_mid.rb_from_bytea(bytea) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_from_bytea(bytea) IS 'Imports a roaring bitmap in the portable serialization format, rejecting malformed bytes.';
CREATE FUNCTION retail_mid.rb_to_bytea(retail_mid.rbitmap) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rb_to_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_to_bytea(retail_mid.rbitmap) IS 'Exports the bitmap in the roaring portable serialization format.';

-- construction and expansion
CREATE FUNCTION retail_mid.rb_build(int4[]) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_build' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_build(int4[]) IS 'Bitmap of the keys of an array; NULL elements are skipped, negative keys are an error.';
CREATE FUNCTION retail_mid.rb_range(lo int4, hi int4) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_range' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_range(int4, int4) IS 'Bitmap of all keys k with lo <= k < hi.';
CREATE FUNCTION retail_mid.rb_to_array(retail_mid.rbitmap) RETURNS int4[]
    AS 'MODULE_PATHNAME', 'rb_to_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_to_array(retail_mid.rbitmap) IS 'The keys of the bitmap as an ascending array ({} when empty).';
CREATE FUNCTION retail_mid.rb_iterate(retail_mid.rbitmap) RETURNS SETOF int4
    AS 'MODULE_PATHNAME', 'rb_iterate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retail_mid.rb_iterate(retail_mid.rbitmap) IS 'Expands the bitmap to one row per key, ascending.';

-- scalar functions
CREATE FUNCTION retail_mid.rb_cardinality(retail_mid.rbitmap) RETURNS int8
    AS 'MODULE_PATHNAME', 'rb_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_cardinality(retail_mid.rbitmap) IS 'Number of keys in the bitmap.';
CREATE FUNCTION retail_mid.rb_is_empty(retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_is_empty' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_is_empty(retail_mid.rbitmap) IS 'True when the bitmap holds no key.';
CREATE FUNCTION retail_mid.rb_min(retail_mid.rbitmap) RETURNS int4
    AS 'MODULE_PATHNAME', 'rb_min' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_min(retail_mid.rbitmap) IS 'Smallest key, NULL for the empty bitmap.';
CREATE FUNCTION retail_mid.rb_max(retail_mid.rbitmap) RETURNS int4
    AS 'MODULE_PATHNAME', 'rb_max' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_max(retail_mid.rbitmap) IS 'Largest key, NULL for the empty bitmap.';
CREATE FUNCTION retail_mid.rb_add(retail_mid.rbitmap, int4) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_add(retail_mid.rbitmap, int4) IS 'The bitmap with one more key.';
CREATE FUNCTION retail_mid.rb_remove(retail_mid.rbitmap, int4) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_remove' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_remove(retail_mid.rbitmap, int4) IS 'The bitmap without the key (unchanged when absent).';
CREATE FUNCTION retail_mid.rb_contains(retail_mid.rbitmap, int4) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_contains_key' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_contains(retail_mid.rbitmap, int4) IS 'True when the key is in the bitmap (false for negative keys).';
CREATE FUNCTION retail_mid.rb_contained(int4, retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_key_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_contained(int4, retail_mid.rbitmap) IS 'True when the key is in the bitmap (false for negative keys).';
CREATE FUNCTION retail_mid.rb_contains(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_contains' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_contains(retail_mid.rbitmap, retail_mid.rbitmap) IS 'True when the first bitmap holds every key of the second.';
CREATE FUNCTION retail_mid.rb_contained(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_contained' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_contained(retail_mid.rbitmap, retail_mid.rbitmap) IS 'True when every key of the first bitmap is in the second.';
CREATE FUNCTION retail_mid.rb_intersect(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_intersect' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_intersect(retail_mid.rbitmap, retail_mid.rbitmap) IS 'True when the bitmaps share at least one key.';
CREATE FUNCTION retail_mid.rb_equals(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_equals' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_equals(retail_mid.rbitmap, retail_mid.rbitmap) IS 'True when the bitmaps hold the same keys.';
CREATE FUNCTION retail_mid.rb_not_equals(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS bool
    AS 'MODULE_PATHNAME', 'rb_not_equals' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_not_equals(retail_mid.rbitmap, retail_mid.rbitmap) IS 'True when the bitmaps differ.';

CREATE FUNCTION retail_mid.rb_and(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_and' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_and(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Intersection.';
CREATE FUNCTION retail_mid.rb_or(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_or' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_or(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Union.';
CREATE FUNCTION retail_mid.rb_andnot(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_andnot' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_andnot(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Difference: keys of the first bitmap not in the second.';
CREATE FUNCTION retail_mid.rb_xor(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_xor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_xor(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Symmetric difference.';
CREATE FUNCTION retail_mid.rb_and_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS int8
    AS 'MODULE_PATHNAME', 'rb_and_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_and_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Size of the intersection, without building it.';
CREATE FUNCTION retail_mid.rb_or_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS int8
    AS 'MODULE_PATHNAME', 'rb_or_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_or_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Size of the union, without building it.';
CREATE FUNCTION retail_mid.rb_andnot_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS int8
    AS 'MODULE_PATHNAME', 'rb_andnot_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_andnot_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Size of the difference, without building it.';
CREATE FUNCTION retail_mid.rb_xor_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) RETURNS int8
    AS 'MODULE_PATHNAME', 'rb_xor_cardinality' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_xor_cardinality(retail_mid.rbitmap, retail_mid.rbitmap) IS 'Size of the symmetric difference, without building it.';

CREATE OPERATOR retail_mid.& (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_and, COMMUTATOR = OPERATOR(retail_mid.&));
CREATE OPERATOR retail_mid.| (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_or, COMMUTATOR = OPERATOR(retail_mid.|));
CREATE OPERATOR retail_mid.- (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_andnot);
CREATE OPERATOR retail_mid.# (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_xor, COMMUTATOR = OPERATOR(retail_mid.#));
CREATE OPERATOR retail_mid.@> (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_contains, COMMUTATOR = OPERATOR(retail_mid.<@),
    RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR retail_mid.<@ (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_contained, COMMUTATOR = OPERATOR(retail_mid.@>),
    RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR retail_mid.@> (LEFTARG = retail_mid.rbitmap, RIGHTARG = int4,
    FUNCTION = retail_mid.rb_contains, COMMUTATOR = OPERATOR(retail_mid.<@),
    RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR retail_mid.<@ (LEFTARG = int4, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_contained, COMMUTATOR = OPERATOR(retail_mid.@>),
    RESTRICT = contsel, JOIN = contjoinsel);
CREATE OPERATOR retail_mid.&& (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_intersect, COMMUTATOR = OPERATOR(retail_mid.&&),
    RESTRICT = areasel, JOIN = areajoinsel);
CREATE OPERATOR retail_mid.= (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_equals, COMMUTATOR = OPERATOR(retail_mid.=), NEGATOR = OPERATOR(retail_mid.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR retail_mid.<> (LEFTARG = retail_mid.rbitmap, RIGHTARG = retail_mid.rbitmap,
    FUNCTION = retail_mid.rb_not_equals, COMMUTATOR = OPERATOR(retail_mid.<>), NEGATOR = OPERATOR(retail_mid.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
COMMENT ON OPERATOR retail_mid.& (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Intersection.';
COMMENT ON OPERATOR retail_mid.| (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Union.';
COMMENT ON OPERATOR retail_mid.- (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Difference.';
COMMENT ON OPERATOR retail_mid.# (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Symmetric difference.';
COMMENT ON OPERATOR retail_mid.@> (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Contains every key of.';
COMMENT ON OPERATOR retail_mid.<@ (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Is contained in.';
COMMENT ON OPERATOR retail_mid.@> (retail_mid.rbitmap, int4) IS 'Contains the key.';
COMMENT ON OPERATOR retail_mid.<@ (int4, retail_mid.rbitmap) IS 'The key is in the bitmap.';
COMMENT ON OPERATOR retail_mid.&& (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Share at least one key.';
COMMENT ON OPERATOR retail_mid.= (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Hold the same keys.';
COMMENT ON OPERATOR retail_mid.<> (retail_mid.rbitmap, retail_mid.rbitmap) IS 'Hold different keys.';

-- aggregates: internal state (a CRoaring bitmap owned by the aggregate context), parallel safe
CREATE FUNCTION retail_mid.rb_build_agg_trans(internal, int4) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_build_agg_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_build_agg_trans(internal, int4) IS 'Transition function of rb_build_agg.';
CREATE FUNCTION retail_mid.rb_or_agg_trans(internal, retail_mid.rbitmap) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_or_agg_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_or_agg_trans(internal, retail_mid.rbitmap) IS 'Transition function of rb_or_agg and rb_or_cardinality_agg.';
CREATE FUNCTION retail_mid.rb_and_agg_trans(internal, retail_mid.rbitmap) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_and_agg_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_and_agg_trans(internal, retail_mid.rbitmap) IS 'Transition function of rb_and_agg and rb_and_cardinality_agg.';
CREATE FUNCTION retail_mid.rb_xor_agg_trans(internal, retail_mid.rbitmap) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_xor_agg_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_xor_agg_trans(internal, retail_mid.rbitmap) IS 'Transition function of rb_xor_agg.';
CREATE FUNCTION retail_mid.rb_or_agg_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_or_agg_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_or_agg_combine(internal, internal) IS 'Combine function of rb_build_agg, rb_or_agg and rb_or_cardinality_agg.';
CREATE FUNCTION retail_mid.rb_and_agg_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_and_agg_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_and_agg_combine(internal, internal) IS 'Combine function of rb_and_agg and rb_and_cardinality_agg.';
CREATE FUNCTION retail_mid.rb_xor_agg_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_xor_agg_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_xor_agg_combine(internal, internal) IS 'Combine function of rb_xor_agg.';
CREATE FUNCTION retail_mid.rb_agg_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rb_agg_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_agg_serialize(internal) IS 'Serialises an rbitmap aggregate state for parallel aggregation.';
CREATE FUNCTION retail_mid.rb_agg_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rb_agg_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_agg_deserialize(bytea, internal) IS 'Deserialises (and validates) an rbitmap aggregate state.';
CREATE FUNCTION retail_mid.rb_agg_final(internal) RETURNS retail_mid.rbitmap
    AS 'MODULE_PATHNAME', 'rb_agg_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_agg_final(internal) IS 'Final function of the rbitmap aggregates: the bitmap, NULL without input.';
CREATE FUNCTION retail_mid.rb_agg_cardinality_final(internal) RETURNS int8
    AS 'MODULE_PATHNAME', 'rb_agg_cardinality_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rb_agg_cardinality_final(internal) IS 'Final function of the _cardinality_agg aggregates: 0 without input.';

CREATE AGGREGATE retail_mid.rb_build_agg(int4) (
    SFUNC = retail_mid.rb_build_agg_trans, STYPE = internal, FINALFUNC = retail_mid.rb_agg_final,
    COMBINEFUNC = retail_mid.rb_or_agg_combine, SERIALFUNC = retail_mid.rb_agg_serialize,
    DESERIALFUNC = retail_mid.rb_agg_deserialize, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rb_build_agg(int4) IS 'Bitmap of the non-NULL keys of a group (NULL when there are none); negative keys are an error.';
CREATE AGGREGATE retail_mid.rb_or_agg(retail_mid.rbitmap) (
    SFUNC = retail_mid.rb_or_agg_trans, STYPE = internal, FINALFUNC = retail_mid.rb_agg_final,
    COMBINEFUNC = retail_mid.rb_or_agg_combine, SERIALFUNC = retail_mid.rb_agg_serialize,
    DESERIALFUNC = retail_mid.rb_agg_deserialize, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rb_or_agg(retail_mid.rbitmap) IS 'Union of the non-NULL bitmaps of a group (NULL when there are none).';
CREATE AGGREGATE retail_mid.rb_and_agg(retail_mid.rbitmap) (
    SFUNC = retail_mid.rb_and_agg_trans, STYPE = internal, FINALFUNC = retail_mid.rb_agg_final,
    COMBINEFUNC = retail_mid.rb_and_agg_combine, SERIALFUNC = retail_mid.rb_agg_serialize,
    DESERIALFUNC = retail_mid.rb_agg_deserialize, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rb_and_agg(retail_mid.rbitmap) IS 'Intersection of the non-NULL bitmaps of a group (NULL when there are none).';
CREATE AGGREGATE retail_mid.rb_xor_agg(retail_mid.rbitmap) (
    SFUNC = retail_mid.rb_xor_agg_trans, STYPE = internal, FINALFUNC = retail_mid.rb_agg_final,
    COMBINEFUNC = retail_mid.rb_xor_agg_combine, SERIALFUNC = retail_mid.rb_agg_serialize,
    DESERIALFUNC = retail_mid.rb_agg_deserialize, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rb_xor_agg(retail_mid.rbitmap) IS 'Symmetric difference of the non-NULL bitmaps of a group (NULL when there are none).';
CREATE AGGREGATE retail_mid.rb_or_cardinality_agg(retail_mid.rbitmap) (
    SFUNC = retail_mid.rb_or_agg_trans, STYPE = internal, FINALFUNC = retail_mid.rb_agg_cardinality_final,
    COMBINEFUNC = retail_mid.rb_or_agg_combine, SERIALFUNC = retail_mid.rb_agg_serialize,
    DESERIALFUNC = retail_mid.rb_agg_deserialize, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rb_or_cardinality_agg(retail_mid.rbitmap) IS 'Size of the union of the bitmaps of a group (0 when there are none).';
CREATE AGGREGATE retail_mid.rb_and_cardinality_agg(retail_mid.rbitmap) (
    SFUNC = retail_mid.rb_and_agg_trans, STYPE = internal, FINALFUNC = retail_mid.rb_agg_cardinality_final,
    COMBINEFUNC = retail_mid.rb_and_agg_combine, SERIALFUNC = retail_mid.rb_agg_serialize,
    DESERIALFUNC = retail_mid.rb_agg_deserialize, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rb_and_cardinality_agg(retail_mid.rbitmap) IS 'Size of the intersection of the bitmaps of a group (0 when there are none).';

-- ===== src/audience.sql =====
-- audience: the four-level tag taxonomy, tag definitions as data, tag values with history, one bitmap per
-- (tag, value) and a bit-sliced index per numeric tag, the C tag-expression evaluator and saved audiences.

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
    CONSTRAINT tag_definition_shared CHECK (scope = 'group' OR NOT shared_with_brands),
    FOREIGN KEY (level1, level2, level3, level4) REFERENCES retail_mid.tag_taxonomy,
    CONSTRAINT tag_definition_rule CHECK ((rule_sql IS NOT NULL AND source IS NULL AND expression IS NULL)
                                       OR (rule_sql IS NULL AND source IS NOT NULL AND expression IS NOT NULL))
);
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
COMMENT ON TABLE retail_mid.tag_bitmap IS 'One bitmap of customer keys per (boolean or enumerated tag, value, brand), rebuilt by evaluate_tags().';
COMMENT ON COLUMN retail_mid.tag_bitmap.brand IS 'A brand: the customers whose value of the tag in that brand is tag_value (tags of scope brand), or the group-wide bitmap restricted to the brand''s customers (group tags shared with brands). ''*'': the group-wide bitmap of a group tag, or the union over brands of a brand tag (a customer with the value in some brand).';
COMMENT ON COLUMN retail_mid.tag_bitmap.bitmap IS 'Customers whose current value of the tag is tag_value.';
COMMENT ON COLUMN retail_mid.tag_bitmap.customers IS 'Cardinality of the bitmap.';

-- Bit-sliced indexes (src/bsi.c): built by an aggregate from (customer_key, scaled value), queried by range.
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
COMMENT ON FUNCTION retail_mid.audience(text, text) IS 'The customers matching a tag expression in the context of a brand: tags of scope brand are read with that brand''s values only (group tags, saved audiences and NOT as without a brand). A brand the caller may not see is error 42501.';
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

-- Saves an audience under the next version of its name and brand (concurrent saves of one are serialised). The
-- expression is evaluated as the caller (an analyst's bitmaps hold the customers of its brands only), and a
-- brand's snapshot is cut down to that brand's customers (retail_mid.customer_brand, from src/security.sql).
CREATE FUNCTION retail_mid.save_audience(name text, expression text, brand text DEFAULT '*') RETURNS int
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v int; b retail_mid.rbitmap; entitled boolean;
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
    RETURN v;
END;
$$;
COMMENT ON FUNCTION retail_mid.save_audience(text, text, text) IS 'Evaluates the expression as the caller (in the brand''s context: brand tags with that brand''s values) and saves its snapshot, restricted to the brand''s customers, as the next version of the named audience of that brand (''*'', the default: group-wide, admins only); returns the version. Error 42501 for a brand the caller is not entitled to.';

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
BEGIN
    IF tags IS NULL THEN
        RAISE EXCEPTION 'tag_eval_scan needs tags' USING ERRCODE = 'null_value_not_allowed';
    END IF;
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
    IF no_brand > 0 THEN
        RAISE EXCEPTION 'source of tags of scope brand returns % rows without a brand', no_brand USING ERRCODE = 'not_null_violation',
            DETAIL = format('Tags: %s. A brand of NULL, '''' or ''*'' is not a brand.', array_to_string(tags, ', '));
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_eval_scan(text[], text) IS 'Internal to evaluate_tags: evaluates the tags of one source and scope (or only only_tag of them) in one scan into pg_temp.retail_mid_tag_eval_w, with the brand of each row (scope brand) or ''*''; returns the source rows with a key, how many (brand, key) pairs repeat, how many keys are negative, and the number of values of each tag. A brand tag whose source has no brand column is error 42703; rows without a brand (NULL, '''' or ''*'') are 23502.';

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

-- Seed definitions over the DWS layer (evaluated once retail_mid.refresh() has filled it): five tags of one
-- source, so one scan of the to-date customer table; of scope brand (one value per brand and customer).
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, source, expression, numeric_scale, description, scope) VALUES
 ('monetary_td', '消费者价值', '价值', '消费者价值', '', 'numeric', 'retail_mid.tag_source_trade_td', 'monetary', 2,
  'Net amount spent to date in the brand.', 'brand'),
 ('orders_td', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric', 'retail_mid.tag_source_trade_td', 'orders', 0,
  'Orders to date in the brand.', 'brand'),
 ('repeat_buyer', '消费者价值', '价值', '忠诚度', '', 'boolean', 'retail_mid.tag_source_trade_td', 'orders >= 2',  2,
  'Has ordered at least twice in the brand.', 'brand'),
 ('returner', '客户行为数据', '消费互动', '购买行为', '退换货相关', 'boolean', 'retail_mid.tag_source_trade_td', 'return_amount <> 0', 2,
  'Has returned goods to the brand.', 'brand'),
 ('lifecycle', '生命周期阶段', '所属阶段', '', '', 'enum', 'retail_mid.tag_source_trade_td',
  $r$CASE WHEN last_order_date >= data_end - 90 THEN CASE WHEN first_order_date >= data_end - 90 THEN 'new' ELSE 'active' END
          WHEN last_order_date >= data_end - 365 THEN 'lapsing' ELSE 'churned' END$r$, 2,
  'new / active / lapsing / churned in the brand by first and last order date relative to the brand''s latest order in the data.', 'brand');

-- ===== src/ods.sql =====
-- ods: the landing contract. Loaders write here, one load at a time (load_id); nothing is cleaned yet.
-- Every table carries brand (the tenant) and the load that brought the row.

CREATE TABLE retail_mid.ods_load (
    load_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text        NOT NULL,
    path          text,
    brand         text        NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    rows_read     bigint      NOT NULL DEFAULT 0,
    rows_loaded   bigint      NOT NULL DEFAULT 0,
    rows_rejected bigint      NOT NULL DEFAULT 0,
    rejects       jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE retail_mid.ods_load IS 'One row per completed load: source, file, rows read / loaded / rejected and the rejection reasons with counts.';
COMMENT ON COLUMN retail_mid.ods_load.rejects IS 'Rejection reason -> number of rows, e.g. {"quantity is not an integer": 3}.';

CREATE TABLE retail_mid.ods_customer (
    brand            text NOT NULL,
    customer_id      text NOT NULL,
    id_type          text NOT NULL DEFAULT 'member_id',
    name             text,
    gender           text CHECK (gender IN ('F', 'M', 'U')),
    birth_date       date,
    phone            text,
    email            text,
    city             text,
    province         text,
    country          text,
    register_time    timestamp,
    register_channel text,
    home_store_id    text,
    guide_id         text,
    attributes       jsonb NOT NULL DEFAULT '{}',
    load_id          bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, customer_id)
);
COMMENT ON TABLE retail_mid.ods_customer IS 'Customers (members) as the brand knows them; further identifiers in ods_customer_identifier.';

CREATE TABLE retail_mid.ods_customer_identifier (
    brand       text NOT NULL,
    customer_id text NOT NULL,
    id_type     text NOT NULL CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    id_value    text NOT NULL,
    seen_at     timestamp,
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, customer_id, id_type, id_value)
);
COMMENT ON TABLE retail_mid.ods_customer_identifier IS 'Every identifier seen for a customer (member id, phone, e-mail, device, social open id): the edges of the identity graph.';

CREATE TABLE retail_mid.ods_product (
    brand         text NOT NULL,
    sku_id        text NOT NULL,
    sku_name      text,
    category_l1   text,
    category_l2   text,
    category_l3   text,
    category_l4   text,
    product_brand text,
    list_price    numeric(14,4) CHECK (list_price >= 0),
    package_size  text,
    load_id       bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, sku_id)
);
COMMENT ON TABLE retail_mid.ods_product IS 'Products (SKUs) with a four-level category, the product brand and the list price.';

CREATE TABLE retail_mid.ods_site (
    brand       text NOT NULL,
    site_id     text NOT NULL,
    site_name   text,
    kind        text NOT NULL CHECK (kind IN ('store', 'CDC', 'RDC', 'FDC')),
    geom        geometry(Point, 4326),
    opened_on   date,
    closed_on   date,
    floor_area  numeric CHECK (floor_area > 0),
    city        text,
    parent_site_id text,
    attributes  jsonb NOT NULL DEFAULT '{}',
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, site_id)
);
CREATE INDEX ON retail_mid.ods_site USING gist (geom);
COMMENT ON TABLE retail_mid.ods_site IS 'Stores and warehouses (central, regional and front distribution centres) as WGS84 points.';

CREATE TABLE retail_mid.ods_order (
    brand             text NOT NULL,
    order_id          text NOT NULL,
    id_type           text CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    customer_id       text,
    order_time        timestamp NOT NULL,
    channel           text NOT NULL DEFAULT 'store',
    store_id          text,
    status            text NOT NULL DEFAULT 'paid' CHECK (status IN ('paid', 'cancelled', 'returned')),
    original_order_id text,
    country           text,
    load_id           bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, order_id)
);
CREATE INDEX ON retail_mid.ods_order (order_time);
COMMENT ON TABLE retail_mid.ods_order IS 'Order headers. Cancellations and returns are orders of their own with status cancelled/returned, negative lines and original_order_id.';

CREATE TABLE retail_mid.ods_order_line (
    brand             text NOT NULL,
    order_id          text NOT NULL,
    line_no           int  NOT NULL,
    sku_id            text NOT NULL,
    quantity          numeric(14,3) NOT NULL,
    unit_price        numeric(14,4) NOT NULL,
    discount          numeric(14,4) NOT NULL DEFAULT 0,
    original_order_id text,
    original_line_no  int,
    load_id           bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, order_id, line_no)
);
COMMENT ON TABLE retail_mid.ods_order_line IS 'Order lines as received: negative quantity for cancelled or returned goods, referring to the original order where known.';

CREATE TABLE retail_mid.ods_behavior_event (
    brand            text NOT NULL,
    id_type          text NOT NULL CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    id_value         text NOT NULL,
    event_time       timestamp NOT NULL,
    event_type       text NOT NULL CHECK (event_type IN ('exposure', 'click', 'view', 'search', 'favorite', 'cart',
                                                          'register', 'follow', 'review', 'share', 'purchase')),
    object_attribute text,
    object_value     text,
    channel          text,
    event_count      int NOT NULL DEFAULT 1 CHECK (event_count > 0),
    amount           numeric(14,4),
    load_id          bigint REFERENCES retail_mid.ods_load
);
CREATE INDEX ON retail_mid.ods_behavior_event (event_time);
COMMENT ON TABLE retail_mid.ods_behavior_event IS 'Behaviour events in the shape of the seed platform''s behaviour quick config: who (identifier + type), when, what (event type), on which object (attribute = value), where (channel), how many and how much.';

CREATE TABLE retail_mid.ods_promotion (
    brand       text NOT NULL,
    sku_id      text NOT NULL,
    store_id    text NOT NULL,
    start_date  date NOT NULL,
    end_date    date NOT NULL CHECK (end_date >= start_date),
    promo_price numeric(14,4) CHECK (promo_price >= 0),
    display     boolean NOT NULL DEFAULT false,
    feature     boolean NOT NULL DEFAULT false,
    display_share numeric(6,5) CHECK (display_share BETWEEN 0 AND 1),
    feature_share numeric(6,5) CHECK (feature_share BETWEEN 0 AND 1),
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, sku_id, store_id, start_date)
);
COMMENT ON TABLE retail_mid.ods_promotion IS 'Promotions per product x store x period: promoted price, in-store display (deal), feature advertising.';
COMMENT ON COLUMN retail_mid.ods_promotion.display_share IS 'Share of the period with the in-store display, when the source gives it (NULL: display says it all).';
COMMENT ON COLUMN retail_mid.ods_promotion.feature_share IS 'Share of the period with feature advertising, when the source gives it (Dominick''s feat).';

CREATE TABLE retail_mid.ods_inventory_snapshot (
    brand         text NOT NULL,
    site_id       text NOT NULL,
    sku_id        text NOT NULL,
    snapshot_date date NOT NULL,
    on_hand       numeric(14,3) NOT NULL,
    on_order      numeric(14,3) NOT NULL DEFAULT 0,
    reserved      numeric(14,3) NOT NULL DEFAULT 0,
    load_id       bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, site_id, sku_id, snapshot_date)
);
COMMENT ON TABLE retail_mid.ods_inventory_snapshot IS 'Stock per site and SKU at the end of a day: on hand, on order, reserved.';

CREATE TABLE retail_mid.ods_inbound_shipment (
    brand        text NOT NULL,
    shipment_id  text NOT NULL,
    site_id      text NOT NULL,
    sku_id       text NOT NULL,
    supplier_id  text,
    ordered_on   date NOT NULL,
    expected_on  date,
    received_on  date,
    quantity     numeric(14,3) NOT NULL CHECK (quantity > 0),
    load_id      bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, shipment_id, site_id, sku_id)
);
COMMENT ON TABLE retail_mid.ods_inbound_shipment IS 'Purchase orders and transfers into a site: the lead time is received_on - ordered_on.';

CREATE TABLE retail_mid.ods_campaign (
    brand       text NOT NULL,
    campaign_id text NOT NULL,
    name        text,
    kind        text,
    start_date  date,
    end_date    date,
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, campaign_id)
);
COMMENT ON TABLE retail_mid.ods_campaign IS 'Marketing campaigns.';

CREATE TABLE retail_mid.ods_campaign_touch (
    brand       text NOT NULL,
    campaign_id text NOT NULL,
    id_type     text NOT NULL CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    id_value    text NOT NULL,
    channel     text,
    touched_at  timestamp,
    touch_type  text NOT NULL CHECK (touch_type IN ('sent', 'exposed', 'clicked', 'redeemed')),
    coupon_id   text,
    load_id     bigint REFERENCES retail_mid.ods_load
);
COMMENT ON TABLE retail_mid.ods_campaign_touch IS 'Who a campaign reached, through which channel, and how they responded (sent, exposed, clicked, redeemed).';

CREATE TABLE retail_mid.ods_demand_zone (
    brand       text NOT NULL,
    zone_id     text NOT NULL,
    zone_name   text,
    geom        geometry(Geometry, 4326) NOT NULL,
    population  numeric CHECK (population >= 0),
    households  numeric CHECK (households >= 0),
    income      numeric,
    spend_potential numeric,
    attributes  jsonb NOT NULL DEFAULT '{}',
    load_id     bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, zone_id)
);
CREATE INDEX ON retail_mid.ods_demand_zone USING gist (geom);
COMMENT ON TABLE retail_mid.ods_demand_zone IS 'Demand zones (census tracts, grid cells, cities) with population and purchasing power, for site selection.';

-- Column documentation of the contract (the README's ODS tables are generated from these comments).
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('ods_load', 'load_id', 'Identity of the load.'), ('ods_load', 'source', 'Loader: online_retail, complete_journey, cdnow, orange_juice, boston_tracts, synthetic.'),
        ('ods_load', 'path', 'File or directory read (for the generator, its seed).'), ('ods_load', 'brand', 'Brand the rows were loaded for.'),
        ('ods_load', 'loaded_at', 'When the load committed.'), ('ods_load', 'rows_read', 'Rows read from the files.'),
        ('ods_load', 'rows_loaded', 'Rows that passed validation and were loaded.'), ('ods_load', 'rows_rejected', 'Rows rejected (see rejects).'),
        ('ods_customer', 'brand', 'Brand (tenant) the customer belongs to.'), ('ods_customer', 'customer_id', 'The brand''s primary identifier of the customer.'),
        ('ods_customer', 'id_type', 'Type of customer_id: member_id, phone, email, device_id, open_id, household_id or customer_id.'),
        ('ods_customer', 'name', 'Full name (personal data).'), ('ods_customer', 'gender', 'F, M or U (unknown).'),
        ('ods_customer', 'birth_date', 'Date of birth (personal data).'), ('ods_customer', 'phone', 'Mobile phone number (personal data).'),
        ('ods_customer', 'email', 'E-mail address (personal data).'), ('ods_customer', 'city', 'City of residence.'),
        ('ods_customer', 'province', 'Province or state.'), ('ods_customer', 'country', 'Country.'),
        ('ods_customer', 'register_time', 'When the customer became a member.'), ('ods_customer', 'register_channel', 'Where the customer registered (store, app, mini_program, web).'),
        ('ods_customer', 'home_store_id', 'Store the customer belongs to (affiliation).'), ('ods_customer', 'guide_id', 'Shopping guide in charge of the customer.'),
        ('ods_customer', 'attributes', 'Further source attributes as JSON (e.g. Complete Journey demographics).'), ('ods_customer', 'load_id', 'Load that brought the row.'),
        ('ods_customer_identifier', 'brand', 'Brand.'), ('ods_customer_identifier', 'customer_id', 'The customer (ods_customer.customer_id).'),
        ('ods_customer_identifier', 'id_type', 'member_id, phone, email, device_id, open_id, household_id or customer_id.'),
        ('ods_customer_identifier', 'id_value', 'The identifier''s value.'), ('ods_customer_identifier', 'seen_at', 'When the pair was observed.'),
        ('ods_customer_identifier', 'load_id', 'Load that brought the row.'),
        ('ods_product', 'brand', 'Brand.'), ('ods_product', 'sku_id', 'SKU id.'), ('ods_product', 'sku_name', 'Product name.'),
        ('ods_product', 'category_l1', 'Category, level 1 (e.g. department).'), ('ods_product', 'category_l2', 'Category, level 2.'),
        ('ods_product', 'category_l3', 'Category, level 3.'), ('ods_product', 'category_l4', 'Category, level 4.'),
        ('ods_product', 'product_brand', 'Manufacturer''s or private-label brand.'), ('ods_product', 'list_price', 'Regular shelf price.'),
        ('ods_product', 'package_size', 'Package size as text (e.g. 64 oz).'), ('ods_product', 'load_id', 'Load that brought the row.'),
        ('ods_site', 'brand', 'Brand.'), ('ods_site', 'site_id', 'Store or warehouse id.'), ('ods_site', 'site_name', 'Name.'),
        ('ods_site', 'kind', 'store, CDC (central DC), RDC (regional DC) or FDC (front DC).'), ('ods_site', 'geom', 'Location, WGS84 point.'),
        ('ods_site', 'opened_on', 'Opening date.'), ('ods_site', 'closed_on', 'Closing date, NULL while open.'), ('ods_site', 'floor_area', 'Selling area in m2 (an attractiveness measure).'),
        ('ods_site', 'city', 'City.'), ('ods_site', 'parent_site_id', 'Site that replenishes this one (store -> FDC -> RDC -> CDC).'),
        ('ods_site', 'attributes', 'Further attributes as JSON (e.g. trade-area demographics).'), ('ods_site', 'load_id', 'Load that brought the row.'),
        ('ods_order', 'brand', 'Brand.'), ('ods_order', 'order_id', 'Order id.'), ('ods_order', 'id_type', 'Type of the customer identifier, NULL for anonymous orders.'),
        ('ods_order', 'customer_id', 'Customer identifier as the channel knows it, NULL for anonymous orders.'), ('ods_order', 'order_time', 'When the order was placed.'),
        ('ods_order', 'channel', 'Sales channel (store, online, app, catalogue ...).'), ('ods_order', 'store_id', 'Selling or fulfilling store.'),
        ('ods_order', 'status', 'paid, cancelled or returned.'), ('ods_order', 'original_order_id', 'For cancellations and returns, the order they undo.'),
        ('ods_order', 'country', 'Country of the customer or delivery.'), ('ods_order', 'load_id', 'Load that brought the row.'),
        ('ods_order_line', 'brand', 'Brand.'), ('ods_order_line', 'order_id', 'Order id.'), ('ods_order_line', 'line_no', 'Line number within the order.'),
        ('ods_order_line', 'sku_id', 'SKU id.'), ('ods_order_line', 'quantity', 'Units; negative for cancelled or returned goods.'),
        ('ods_order_line', 'unit_price', 'Price per unit before the line discount.'), ('ods_order_line', 'discount', 'Discount on the line, in currency.'),
        ('ods_order_line', 'original_order_id', 'For return lines, the order of the original sale.'), ('ods_order_line', 'original_line_no', 'For return lines, the original line.'),
        ('ods_order_line', 'load_id', 'Load that brought the row.'),
        ('ods_behavior_event', 'brand', 'Brand.'), ('ods_behavior_event', 'id_type', 'Type of the customer identifier.'), ('ods_behavior_event', 'id_value', 'Customer identifier.'),
        ('ods_behavior_event', 'event_time', 'When it happened.'),
        ('ods_behavior_event', 'event_type', 'exposure, click, view, search, favorite, cart, register, follow, review, share or purchase.'),
        ('ods_behavior_event', 'object_attribute', 'What the event was about: sku_id, category, brand, content, campaign ...'),
        ('ods_behavior_event', 'object_value', 'The value of that attribute.'), ('ods_behavior_event', 'channel', 'app, web, store, media ...'),
        ('ods_behavior_event', 'event_count', 'How many times (pre-aggregated sources).'), ('ods_behavior_event', 'amount', 'Money involved, e.g. a purchase amount.'),
        ('ods_behavior_event', 'load_id', 'Load that brought the row.'),
        ('ods_promotion', 'brand', 'Brand.'), ('ods_promotion', 'sku_id', 'Promoted SKU.'), ('ods_promotion', 'store_id', 'Store.'),
        ('ods_promotion', 'start_date', 'First day.'), ('ods_promotion', 'end_date', 'Last day.'), ('ods_promotion', 'promo_price', 'Promoted price.'),
        ('ods_promotion', 'display', 'In-store display or deal.'), ('ods_promotion', 'feature', 'Feature advertising (mailer, flyer).'), ('ods_promotion', 'load_id', 'Load that brought the row.'),
        ('ods_inventory_snapshot', 'brand', 'Brand.'), ('ods_inventory_snapshot', 'site_id', 'Store or warehouse.'), ('ods_inventory_snapshot', 'sku_id', 'SKU.'),
        ('ods_inventory_snapshot', 'snapshot_date', 'Day the stock was counted (end of day).'), ('ods_inventory_snapshot', 'on_hand', 'Units on hand.'),
        ('ods_inventory_snapshot', 'on_order', 'Units ordered, not yet received.'), ('ods_inventory_snapshot', 'reserved', 'Units promised to open orders.'),
        ('ods_inventory_snapshot', 'load_id', 'Load that brought the row.'),
        ('ods_inbound_shipment', 'brand', 'Brand.'), ('ods_inbound_shipment', 'shipment_id', 'Purchase order or transfer id.'), ('ods_inbound_shipment', 'site_id', 'Receiving site.'),
        ('ods_inbound_shipment', 'sku_id', 'SKU.'), ('ods_inbound_shipment', 'supplier_id', 'Supplier or shipping warehouse.'), ('ods_inbound_shipment', 'ordered_on', 'Day ordered.'),
        ('ods_inbound_shipment', 'expected_on', 'Day promised.'), ('ods_inbound_shipment', 'received_on', 'Day received, NULL while open.'), ('ods_inbound_shipment', 'quantity', 'Units.'),
        ('ods_inbound_shipment', 'load_id', 'Load that brought the row.'),
        ('ods_campaign', 'brand', 'Brand.'), ('ods_campaign', 'campaign_id', 'Campaign id.'), ('ods_campaign', 'name', 'Name.'), ('ods_campaign', 'kind', 'Type of campaign.'),
        ('ods_campaign', 'start_date', 'First day.'), ('ods_campaign', 'end_date', 'Last day.'), ('ods_campaign', 'load_id', 'Load that brought the row.'),
        ('ods_campaign_touch', 'brand', 'Brand.'), ('ods_campaign_touch', 'campaign_id', 'Campaign.'), ('ods_campaign_touch', 'id_type', 'Type of the customer identifier.'),
        ('ods_campaign_touch', 'id_value', 'Customer identifier.'), ('ods_campaign_touch', 'channel', 'sms, email, wechat, app_push, media, mail, store ...'),
        ('ods_campaign_touch', 'touched_at', 'When.'), ('ods_campaign_touch', 'touch_type', 'sent, exposed, clicked or redeemed.'),
        ('ods_campaign_touch', 'coupon_id', 'Coupon redeemed, if any.'), ('ods_campaign_touch', 'load_id', 'Load that brought the row.'),
        ('ods_demand_zone', 'brand', 'Brand (or data set) the zones were loaded for.'), ('ods_demand_zone', 'zone_id', 'Zone id (e.g. census tract).'),
        ('ods_demand_zone', 'zone_name', 'Name (e.g. town).'), ('ods_demand_zone', 'geom', 'Polygon or point, WGS84.'), ('ods_demand_zone', 'population', 'Residents.'),
        ('ods_demand_zone', 'households', 'Households.'), ('ods_demand_zone', 'income', 'Median household income.'),
        ('ods_demand_zone', 'spend_potential', 'Estimated retail spend of the zone, when known.'), ('ods_demand_zone', 'attributes', 'Further attributes (income bands ...) as JSON.'),
        ('ods_demand_zone', 'load_id', 'Load that brought the row.')) AS c(tbl, col, txt)
    LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.%I.%I IS %L', r.tbl, r.col, r.txt);
    END LOOP;
END $$;

-- ===== src/dwd.sql =====
-- dwd: the cleaned detail layer. dwd_trade_order_line_di holds one row per kept order line, rebuilt day by day
-- from the ODS by retail_mid.refresh. The cleaning rules (each counted per day in dwd_trade_cleaning_1d):
--   duplicate_line   an exact duplicate of an earlier line of the same order (same SKU, quantity, unit price,
--                    discount) is dropped; the first line number is kept.
--   zero_price       a line with unit price 0 (free goods, manual adjustments) is dropped.
--   negative_price   a line with a negative unit price (bad-debt adjustments) is dropped.
--   zero_quantity    a line with quantity 0 is dropped.
--   return_line      a line with negative quantity (a cancellation or a return) is kept as line_type 'return'
--                    with a negative amount, so that net sales reconcile with the source.
--   anonymous_line   a line whose order has no customer identifier is kept with customer_key NULL: it counts
--                    in store and SKU sales but in no customer table.

CREATE TABLE retail_mid.dwd_trade_order_line_di (
    dt                date      NOT NULL,
    brand             text      NOT NULL,
    order_id          text      NOT NULL,
    line_no           int       NOT NULL,
    order_time        timestamp NOT NULL,
    customer_key      int4,
    store_id          text,
    channel           text      NOT NULL,
    sku_id            text      NOT NULL,
    quantity          numeric(14,3) NOT NULL,
    unit_price        numeric(14,4) NOT NULL,
    discount          numeric(14,4) NOT NULL,
    amount            numeric(18,4) NOT NULL,
    line_type         text      NOT NULL CHECK (line_type IN ('sale', 'return')),
    original_order_id text
);
CREATE INDEX ON retail_mid.dwd_trade_order_line_di (dt);
COMMENT ON TABLE retail_mid.dwd_trade_order_line_di IS 'Cleaned order lines, one row per kept ODS line (rules in src/dwd.sql and the README); rebuilt per day by retail_mid.refresh.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.dt IS 'Business date of the order (order_time::date).';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.brand IS 'Brand (tenant) the order belongs to.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.order_id IS 'Source order id.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.line_no IS 'Source line number within the order.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.order_time IS 'Time the order was placed.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.customer_key IS 'Dense customer key (retail_mid.customer_key); NULL for anonymous orders.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.store_id IS 'Selling store, NULL for channels without one.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.channel IS 'Sales channel, e.g. store, online, app.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.sku_id IS 'Product (SKU) id.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.quantity IS 'Units; negative for returned or cancelled goods.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.unit_price IS 'Price per unit, always > 0 after cleaning.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.discount IS 'Discount on the line, in currency.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.amount IS 'quantity * unit_price - discount; negative for returns.';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.line_type IS 'sale or return (returns include cancellations).';
COMMENT ON COLUMN retail_mid.dwd_trade_order_line_di.original_order_id IS 'For returns: the order the goods were bought with, when the source says.';

CREATE TABLE retail_mid.dwd_trade_cleaning_1d (
    dt     date   NOT NULL,
    brand  text   NOT NULL,
    rule   text   NOT NULL CHECK (rule IN ('source_line', 'duplicate_line', 'zero_price', 'negative_price', 'zero_quantity',
                                           'return_line', 'anonymous_line', 'kept_line')),
    lines  bigint NOT NULL,
    amount numeric(18,4) NOT NULL,
    PRIMARY KEY (dt, brand, rule)
);
COMMENT ON TABLE retail_mid.dwd_trade_cleaning_1d IS 'How many ODS lines (and how much quantity*price) each DWD cleaning rule touched per day; source_line = kept_line + the dropped rules.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.dt IS 'Business date of the order.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.rule IS 'source_line, duplicate_line, zero_price, negative_price, zero_quantity (dropped), return_line, anonymous_line (kept, flagged), kept_line.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.lines IS 'Number of lines the rule applied to.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_1d.amount IS 'Sum of quantity * unit_price over those lines.';

-- Rebuilds the DWD days [from_date, to_date] from the ODS and returns the number of lines written.
-- Rules apply in the order listed above: a line is counted under the first dropping rule that matches.
CREATE FUNCTION retail_mid.build_dwd_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    -- Customers first seen in this range get their keys before the lines refer to them.
    PERFORM retail_mid.assign_customer_keys(array_agg(o.id_type), array_agg(o.customer_id))
       FROM (SELECT DISTINCT o.id_type, btrim(o.customer_id) AS customer_id
               FROM retail_mid.ods_order o
              WHERE o.order_time >= from_date AND o.order_time < to_date + 1
                AND o.customer_id IS NOT NULL AND btrim(o.customer_id) <> '' AND o.id_type IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                                 WHERE k.id_type = o.id_type AND k.id_value = btrim(o.customer_id))) o;

    DELETE FROM retail_mid.dwd_trade_order_line_di WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dwd_trade_cleaning_1d WHERE dt BETWEEN from_date AND to_date;

    CREATE TEMP TABLE pg_temp.rm_dwd_lines ON COMMIT DROP AS
    SELECT o.order_time::date AS dt, o.brand, o.order_id, l.line_no, o.order_time, k.customer_key,
           o.store_id, o.channel, l.sku_id, l.quantity, l.unit_price, l.discount,
           coalesce(l.original_order_id, o.original_order_id) AS original_order_id,
           CASE WHEN row_number() OVER (PARTITION BY o.brand, o.order_id, l.sku_id, l.quantity, l.unit_price, l.discount
                                        ORDER BY l.line_no) > 1 THEN 'duplicate_line'
                WHEN l.unit_price = 0 THEN 'zero_price'
                WHEN l.unit_price < 0 THEN 'negative_price'
                WHEN l.quantity = 0 THEN 'zero_quantity'
           END AS dropped_by
      FROM retail_mid.ods_order o
      JOIN retail_mid.ods_order_line l ON l.brand = o.brand AND l.order_id = o.order_id
      LEFT JOIN retail_mid.customer_key k ON k.id_type = o.id_type AND k.id_value = btrim(o.customer_id)
     WHERE o.order_time >= from_date AND o.order_time < to_date + 1;
    ANALYZE pg_temp.rm_dwd_lines;

    INSERT INTO retail_mid.dwd_trade_order_line_di
    SELECT dt, brand, order_id, line_no, order_time, customer_key, store_id, channel, sku_id, quantity, unit_price,
           discount, quantity * unit_price - discount,
           CASE WHEN quantity < 0 THEN 'return' ELSE 'sale' END, original_order_id
      FROM pg_temp.rm_dwd_lines WHERE dropped_by IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO retail_mid.dwd_trade_cleaning_1d (dt, brand, rule, lines, amount)
    SELECT dt, brand, r.rule, count(*), coalesce(sum(quantity * unit_price), 0)
      FROM pg_temp.rm_dwd_lines,
           LATERAL (VALUES ('source_line', true),
                           (dropped_by, dropped_by IS NOT NULL),
                           ('kept_line', dropped_by IS NULL),
                           ('return_line', dropped_by IS NULL AND quantity < 0),
                           ('anonymous_line', dropped_by IS NULL AND customer_key IS NULL)) AS r(rule, applies)
     WHERE r.applies
     GROUP BY dt, brand, r.rule;

    DROP TABLE pg_temp.rm_dwd_lines;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dwd_trade(date, date) IS 'Rebuilds dwd_trade_order_line_di and dwd_trade_cleaning_1d for the given days from the ODS; called by retail_mid.refresh.';

CREATE VIEW retail_mid.dwd_trade_cleaning_report AS
SELECT brand, rule, sum(lines)::bigint AS lines, sum(amount)::numeric(18,2) AS amount
  FROM retail_mid.dwd_trade_cleaning_1d GROUP BY brand, rule;
COMMENT ON VIEW retail_mid.dwd_trade_cleaning_report IS 'Effect of each DWD cleaning rule over all refreshed days, per brand.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.rule IS 'Cleaning rule (see dwd_trade_cleaning_1d).';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.lines IS 'Lines the rule applied to.';
COMMENT ON COLUMN retail_mid.dwd_trade_cleaning_report.amount IS 'Sum of quantity * unit_price over those lines.';

-- ===== src/dws.sql =====
-- dws: the shared summary layer. _1d tables per day, _td tables to date, _nd views over the 7/30/90/365 days up to
-- an as-of date. Distinct customers are kept as bitmaps of customer keys so that they roll up exactly from days
-- to longer periods (a sum of daily distinct counts would count a returning customer twice).

CREATE TABLE retail_mid.dws_refresh_state (
    brand        text PRIMARY KEY,
    as_of        date NOT NULL,
    refreshed_at timestamptz NOT NULL
);
COMMENT ON TABLE retail_mid.dws_refresh_state IS 'Per brand, the latest business date with trade in the DWS: the as-of date of the _nd views.';
COMMENT ON COLUMN retail_mid.dws_refresh_state.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_refresh_state.as_of IS 'Latest day with trade in dws_trade_store_1d.';
COMMENT ON COLUMN retail_mid.dws_refresh_state.refreshed_at IS 'When a refresh last touched the brand.';

CREATE TABLE retail_mid.dws_trade_customer_1d (
    dt               date   NOT NULL,
    brand            text   NOT NULL,
    customer_key     int4   NOT NULL,
    orders           int    NOT NULL,
    return_orders    int    NOT NULL,
    lines            int    NOT NULL,
    quantity         numeric(18,3) NOT NULL,
    sales_amount     numeric(18,4) NOT NULL,
    return_amount    numeric(18,4) NOT NULL,
    net_amount       numeric(18,4) NOT NULL,
    first_order_time timestamp NOT NULL,
    last_order_time  timestamp NOT NULL,
    PRIMARY KEY (dt, brand, customer_key)
);
CREATE INDEX ON retail_mid.dws_trade_customer_1d (customer_key);
COMMENT ON TABLE retail_mid.dws_trade_customer_1d IS 'Trade per customer and day (identified customers only).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.customer_key IS 'Customer key (retail_mid.customer_key).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.orders IS 'Orders with at least one sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.return_orders IS 'Orders with at least one return line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.lines IS 'Kept DWD lines, sales and returns.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.quantity IS 'Net units (sales minus returns).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.sales_amount IS 'Gross sales amount (sale lines).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.return_amount IS 'Returned amount as a positive number.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.first_order_time IS 'First order time of the day.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_1d.last_order_time IS 'Last order time of the day.';

CREATE TABLE retail_mid.dws_trade_sku_store_1d (
    dt              date   NOT NULL,
    brand           text   NOT NULL,
    store_id        text   NOT NULL,
    sku_id          text   NOT NULL,
    orders          int    NOT NULL,
    quantity        numeric(18,3) NOT NULL,
    sales_quantity  numeric(18,3) NOT NULL,
    return_quantity numeric(18,3) NOT NULL,
    sales_amount    numeric(18,4) NOT NULL,
    return_amount   numeric(18,4) NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    buyers          int    NOT NULL,
    buyer_bitmap    retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (dt, brand, store_id, sku_id)
);
CREATE INDEX ON retail_mid.dws_trade_sku_store_1d (brand, store_id, sku_id);
COMMENT ON TABLE retail_mid.dws_trade_sku_store_1d IS 'Trade per SKU x store x day; the demand series for forecasting. Lines without a store are under store_id ''(none)''.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.orders IS 'Orders with a sale line of this SKU.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.quantity IS 'Net units sold (sales minus returns).';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.sales_quantity IS 'Units on sale lines.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.return_quantity IS 'Units returned, as a positive number.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.sales_amount IS 'Gross sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.return_amount IS 'Returned amount, positive.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.buyers IS 'Distinct identified customers with a sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_1d.buyer_bitmap IS 'Those customers'' keys, for exact distinct counts over longer periods.';

CREATE TABLE retail_mid.dws_trade_store_1d (
    dt                date   NOT NULL,
    brand             text   NOT NULL,
    store_id          text   NOT NULL,
    orders            int    NOT NULL,
    anonymous_orders  int    NOT NULL,
    return_orders     int    NOT NULL,
    lines             int    NOT NULL,
    quantity          numeric(18,3) NOT NULL,
    sales_amount      numeric(18,4) NOT NULL,
    return_amount     numeric(18,4) NOT NULL,
    net_amount        numeric(18,4) NOT NULL,
    customers         int    NOT NULL,
    customer_bitmap   retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (dt, brand, store_id)
);
COMMENT ON TABLE retail_mid.dws_trade_store_1d IS 'Trade per store and day.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.dt IS 'Business date.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.orders IS 'Orders with at least one sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.anonymous_orders IS 'Of those, orders without an identified customer.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.return_orders IS 'Orders with at least one return line.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.lines IS 'Kept DWD lines.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.quantity IS 'Net units.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.sales_amount IS 'Gross sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.return_amount IS 'Returned amount, positive.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.customers IS 'Distinct identified customers with a sale.';
COMMENT ON COLUMN retail_mid.dws_trade_store_1d.customer_bitmap IS 'Those customers'' keys, for exact distinct counts over longer periods.';

CREATE TABLE retail_mid.dws_trade_customer_td (
    brand            text NOT NULL,
    customer_key     int4 NOT NULL,
    first_order_date date NOT NULL,
    last_order_date  date NOT NULL,
    orders           bigint NOT NULL,
    return_orders    bigint NOT NULL,
    active_days      int  NOT NULL,
    quantity         numeric(18,3) NOT NULL,
    sales_amount     numeric(18,4) NOT NULL,
    return_amount    numeric(18,4) NOT NULL,
    net_amount       numeric(18,4) NOT NULL,
    first_sale_date  date,
    last_sale_date   date,
    PRIMARY KEY (brand, customer_key)
);
COMMENT ON TABLE retail_mid.dws_trade_customer_td IS 'Trade per customer over all refreshed history (to date).';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.first_order_date IS 'Date of the first day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.last_order_date IS 'Date of the last day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.orders IS 'Orders with a sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.return_orders IS 'Orders with a return line.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.active_days IS 'Days with any trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.quantity IS 'Net units.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.sales_amount IS 'Gross sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.return_amount IS 'Returned amount, positive.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.net_amount IS 'sales_amount - return_amount.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.first_sale_date IS 'First day with a sale (orders > 0); NULL when the customer only returned goods. RFM recency counts from sale days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_td.last_sale_date IS 'Last day with a sale (orders > 0); NULL when the customer only returned goods.';

CREATE TABLE retail_mid.dws_trade_sku_store_td (
    brand         text NOT NULL,
    store_id      text NOT NULL,
    sku_id        text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    selling_days  int  NOT NULL,
    orders        bigint NOT NULL,
    quantity      numeric(18,3) NOT NULL,
    net_amount    numeric(18,4) NOT NULL,
    buyers        int  NOT NULL,
    PRIMARY KEY (brand, store_id, sku_id)
);
COMMENT ON TABLE retail_mid.dws_trade_sku_store_td IS 'Trade per SKU x store over all refreshed history.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.first_sale_date IS 'First day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.last_sale_date IS 'Last day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.selling_days IS 'Days with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.orders IS 'Orders with a sale line of the SKU.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.quantity IS 'Net units.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.net_amount IS 'Net sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_td.buyers IS 'Distinct identified buyers over all history (exact).';

CREATE TABLE retail_mid.dws_trade_store_td (
    brand           text NOT NULL,
    store_id        text NOT NULL,
    first_sale_date date NOT NULL,
    last_sale_date  date NOT NULL,
    orders          bigint NOT NULL,
    net_amount      numeric(18,4) NOT NULL,
    customers       int  NOT NULL,
    customer_bitmap retail_mid.rbitmap NOT NULL,
    PRIMARY KEY (brand, store_id)
);
COMMENT ON TABLE retail_mid.dws_trade_store_td IS 'Trade per store over all refreshed history.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.store_id IS 'Store id, ''(none)'' for orders without a store.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.first_sale_date IS 'First day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.last_sale_date IS 'Last day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.orders IS 'Orders with a sale line.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.net_amount IS 'Net sales amount.';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.customers IS 'Distinct identified customers over all history (exact).';
COMMENT ON COLUMN retail_mid.dws_trade_store_td.customer_bitmap IS 'Their keys.';

-- Rebuilds the _1d tables for [from_date, to_date] from the DWD and the _td rows of every key those days touch
-- (before or after the change, so that removed late data is taken out of the totals too).
CREATE FUNCTION retail_mid.build_dws_trade(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    CREATE TEMP TABLE rm_touched_customer ON COMMIT DROP AS
        SELECT DISTINCT brand, customer_key FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_sku_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    CREATE TEMP TABLE rm_touched_store ON COMMIT DROP AS
        SELECT DISTINCT brand, store_id FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_customer_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;
    DELETE FROM retail_mid.dws_trade_store_1d WHERE dt BETWEEN from_date AND to_date;

    -- One pass over the DWD lines to orders: an order has one customer, store and day, so customer and store
    -- counts become plain sums over it and need no count(DISTINCT).
    CREATE TEMP TABLE rm_order ON COMMIT DROP AS
    SELECT dt, brand, order_id, customer_key, coalesce(store_id, '(none)') AS store_id,
           count(*) AS lines, sum(quantity) AS quantity,
           bool_or(line_type = 'sale') AS has_sale, bool_or(line_type = 'return') AS has_return,
           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount,
           min(order_time) AS order_time
      FROM retail_mid.dwd_trade_order_line_di
     WHERE dt BETWEEN from_date AND to_date
     GROUP BY dt, brand, order_id, customer_key, coalesce(store_id, '(none)');
    ANALYZE rm_order;

    INSERT INTO retail_mid.dws_trade_customer_1d
    SELECT dt, brand, customer_key, count(*) FILTER (WHERE has_sale), count(*) FILTER (WHERE has_return),
           sum(lines), sum(quantity), sum(sales_amount), sum(return_amount), sum(sales_amount) - sum(return_amount),
           min(order_time), max(order_time)
      FROM rm_order WHERE customer_key IS NOT NULL
     GROUP BY dt, brand, customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    INSERT INTO retail_mid.dws_trade_store_1d
    SELECT dt, brand, store_id, orders, anonymous_orders, return_orders, lines, quantity, sales_amount, return_amount,
           sales_amount - return_amount, retail_mid.rb_cardinality(b), b
      FROM (SELECT dt, brand, store_id, count(*) FILTER (WHERE has_sale) AS orders,
                   count(*) FILTER (WHERE has_sale AND customer_key IS NULL) AS anonymous_orders,
                   count(*) FILTER (WHERE has_return) AS return_orders, sum(lines) AS lines, sum(quantity) AS quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE has_sale), '{}') AS b
              FROM rm_order GROUP BY dt, brand, store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- SKU lines are first summed per order, so that an order counts once per SKU.
    INSERT INTO retail_mid.dws_trade_sku_store_1d
    SELECT dt, brand, store_id, sku_id, orders, sales_quantity - return_quantity, sales_quantity, return_quantity,
           sales_amount, return_amount, sales_amount - return_amount, retail_mid.rb_cardinality(b), b
      FROM (SELECT dt, brand, store_id, sku_id, count(*) FILTER (WHERE sales_quantity > 0) AS orders,
                   sum(sales_quantity) AS sales_quantity, sum(return_quantity) AS return_quantity,
                   sum(sales_amount) AS sales_amount, sum(return_amount) AS return_amount,
                   coalesce(retail_mid.rb_build_agg(customer_key) FILTER (WHERE sales_quantity > 0), '{}') AS b
              FROM (SELECT dt, brand, coalesce(store_id, '(none)') AS store_id, sku_id, order_id, customer_key,
                           coalesce(sum(quantity) FILTER (WHERE line_type = 'sale'), 0) AS sales_quantity,
                           coalesce(-sum(quantity) FILTER (WHERE line_type = 'return'), 0) AS return_quantity,
                           coalesce(sum(amount) FILTER (WHERE line_type = 'sale'), 0) AS sales_amount,
                           coalesce(-sum(amount) FILTER (WHERE line_type = 'return'), 0) AS return_amount
                      FROM retail_mid.dwd_trade_order_line_di
                     WHERE dt BETWEEN from_date AND to_date
                     GROUP BY dt, brand, coalesce(store_id, '(none)'), sku_id, order_id, customer_key) per_order
             GROUP BY dt, brand, store_id, sku_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    -- To-date rows of every touched key, recomputed from the _1d history.
    INSERT INTO rm_touched_customer SELECT DISTINCT brand, customer_key FROM rm_order WHERE customer_key IS NOT NULL;
    INSERT INTO rm_touched_store SELECT DISTINCT brand, store_id FROM rm_order;
    INSERT INTO rm_touched_sku_store
        SELECT DISTINCT brand, store_id, sku_id FROM retail_mid.dws_trade_sku_store_1d WHERE dt BETWEEN from_date AND to_date;

    DELETE FROM retail_mid.dws_trade_customer_td t USING (SELECT DISTINCT * FROM rm_touched_customer) k
     WHERE t.brand = k.brand AND t.customer_key = k.customer_key;
    INSERT INTO retail_mid.dws_trade_customer_td
    SELECT d.brand, d.customer_key, min(dt), max(dt), sum(orders), sum(return_orders), count(*), sum(quantity),
           sum(sales_amount), sum(return_amount), sum(net_amount),
           min(dt) FILTER (WHERE orders > 0), max(dt) FILTER (WHERE orders > 0)
      FROM retail_mid.dws_trade_customer_1d d
      JOIN (SELECT DISTINCT * FROM rm_touched_customer) k ON k.brand = d.brand AND k.customer_key = d.customer_key
     GROUP BY d.brand, d.customer_key;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_sku_store_td t USING (SELECT DISTINCT * FROM rm_touched_sku_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id AND t.sku_id = k.sku_id;
    INSERT INTO retail_mid.dws_trade_sku_store_td
    SELECT d.brand, d.store_id, d.sku_id, min(dt), max(dt), count(*), sum(orders), sum(quantity), sum(net_amount),
           retail_mid.rb_cardinality(retail_mid.rb_or_agg(buyer_bitmap))
      FROM retail_mid.dws_trade_sku_store_1d d
      JOIN (SELECT DISTINCT * FROM rm_touched_sku_store) k
        ON k.brand = d.brand AND k.store_id = d.store_id AND k.sku_id = d.sku_id
     GROUP BY d.brand, d.store_id, d.sku_id;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DELETE FROM retail_mid.dws_trade_store_td t USING (SELECT DISTINCT * FROM rm_touched_store) k
     WHERE t.brand = k.brand AND t.store_id = k.store_id;
    INSERT INTO retail_mid.dws_trade_store_td
    SELECT brand, store_id, first_sale_date, last_sale_date, orders, net_amount, retail_mid.rb_cardinality(b), b
      FROM (SELECT d.brand, d.store_id, min(dt) AS first_sale_date, max(dt) AS last_sale_date, sum(orders) AS orders,
                   sum(net_amount) AS net_amount, retail_mid.rb_or_agg(customer_bitmap) AS b
              FROM retail_mid.dws_trade_store_1d d
              JOIN (SELECT DISTINCT * FROM rm_touched_store) k ON k.brand = d.brand AND k.store_id = d.store_id
             GROUP BY d.brand, d.store_id) s;
    GET DIAGNOSTICS m = ROW_COUNT; n := n + m;

    DROP TABLE rm_order, rm_touched_customer, rm_touched_sku_store, rm_touched_store;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.build_dws_trade(date, date) IS 'Rebuilds the trade _1d tables for the given days and the _td rows they touch; called by retail_mid.refresh.';

-- _nd: trade over the 7, 30, 90 and 365 days ending on an as-of date, computed from the _1d tables on read
-- (so a refresh never has to rewrite them). The views use each brand's latest day with trade.
CREATE FUNCTION retail_mid.dws_trade_customer_nd_at(as_of date, brand text)
RETURNS TABLE (as_of date, brand text, customer_key int4, last_order_date date,
               orders_7d bigint, orders_30d bigint, orders_90d bigint, orders_365d bigint,
               net_amount_7d numeric, net_amount_30d numeric, net_amount_90d numeric, net_amount_365d numeric,
               active_days_30d bigint, active_days_365d bigint)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT dws_trade_customer_nd_at.as_of, d.brand, d.customer_key, max(d.dt),
           coalesce(sum(d.orders) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 7), 0),
           coalesce(sum(d.orders) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 30), 0),
           coalesce(sum(d.orders) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 90), 0),
           sum(d.orders),
           coalesce(sum(d.net_amount) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 7), 0),
           coalesce(sum(d.net_amount) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 30), 0),
           coalesce(sum(d.net_amount) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 90), 0),
           sum(d.net_amount),
           count(*) FILTER (WHERE d.dt > dws_trade_customer_nd_at.as_of - 30),
           count(*)
      FROM retail_mid.dws_trade_customer_1d d
     WHERE d.dt > dws_trade_customer_nd_at.as_of - 365 AND d.dt <= dws_trade_customer_nd_at.as_of
       AND d.brand = dws_trade_customer_nd_at.brand
     GROUP BY d.brand, d.customer_key;
END;
COMMENT ON FUNCTION retail_mid.dws_trade_customer_nd_at(date, text) IS 'Trade per customer over the 7/30/90/365 days ending on as_of (customers with trade in the last 365 days).';

CREATE VIEW retail_mid.dws_trade_customer_nd AS
    SELECT n.* FROM retail_mid.dws_refresh_state s CROSS JOIN LATERAL retail_mid.dws_trade_customer_nd_at(s.as_of, s.brand) n;
COMMENT ON VIEW retail_mid.dws_trade_customer_nd IS 'Trade per customer over the 7/30/90/365 days ending on the brand''s latest day with trade.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.as_of IS 'Last day of every window.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.last_order_date IS 'Last day with trade within 365 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_7d IS 'Orders in the last 7 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_30d IS 'Orders in the last 30 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_90d IS 'Orders in the last 90 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.orders_365d IS 'Orders in the last 365 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_7d IS 'Net amount in the last 7 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_30d IS 'Net amount in the last 30 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_90d IS 'Net amount in the last 90 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.net_amount_365d IS 'Net amount in the last 365 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.active_days_30d IS 'Days with trade in the last 30 days.';
COMMENT ON COLUMN retail_mid.dws_trade_customer_nd.active_days_365d IS 'Days with trade in the last 365 days.';

CREATE FUNCTION retail_mid.dws_trade_store_nd_at(as_of date, brand text)
RETURNS TABLE (as_of date, brand text, store_id text, period_days int, orders bigint, net_amount numeric,
               customers bigint, customer_bitmap retail_mid.rbitmap)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT dws_trade_store_nd_at.as_of, d.brand, d.store_id, p.days, sum(d.orders), sum(d.net_amount),
           retail_mid.rb_cardinality(retail_mid.rb_or_agg(d.customer_bitmap)), retail_mid.rb_or_agg(d.customer_bitmap)
      FROM retail_mid.dws_trade_store_1d d
      JOIN (VALUES (7), (30), (90), (365)) AS p(days)
        ON d.dt > dws_trade_store_nd_at.as_of - p.days AND d.dt <= dws_trade_store_nd_at.as_of
     WHERE d.brand = dws_trade_store_nd_at.brand
     GROUP BY d.brand, d.store_id, p.days;
END;
COMMENT ON FUNCTION retail_mid.dws_trade_store_nd_at(date, text) IS 'Trade per store over the 7/30/90/365 days ending on as_of, with exact distinct customers.';

CREATE VIEW retail_mid.dws_trade_store_nd AS
    SELECT n.* FROM retail_mid.dws_refresh_state s CROSS JOIN LATERAL retail_mid.dws_trade_store_nd_at(s.as_of, s.brand) n;
COMMENT ON VIEW retail_mid.dws_trade_store_nd IS 'Trade per store over the 7/30/90/365 days ending on the brand''s latest day with trade (one row per period).';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.as_of IS 'Last day of the window.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.store_id IS 'Store id.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.period_days IS 'Window length in days: 7, 30, 90 or 365.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.orders IS 'Orders with a sale line in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.net_amount IS 'Net sales amount in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.customers IS 'Distinct identified customers in the window (exact, from bitmaps).';
COMMENT ON COLUMN retail_mid.dws_trade_store_nd.customer_bitmap IS 'Their keys.';

CREATE FUNCTION retail_mid.dws_trade_sku_store_nd_at(as_of date, brand text)
RETURNS TABLE (as_of date, brand text, store_id text, sku_id text, period_days int, orders bigint,
               quantity numeric, net_amount numeric, buyers bigint)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT dws_trade_sku_store_nd_at.as_of, d.brand, d.store_id, d.sku_id, p.days, sum(d.orders), sum(d.quantity),
           sum(d.net_amount), retail_mid.rb_cardinality(retail_mid.rb_or_agg(d.buyer_bitmap))
      FROM retail_mid.dws_trade_sku_store_1d d
      JOIN (VALUES (7), (30), (90), (365)) AS p(days)
        ON d.dt > dws_trade_sku_store_nd_at.as_of - p.days AND d.dt <= dws_trade_sku_store_nd_at.as_of
     WHERE d.brand = dws_trade_sku_store_nd_at.brand
     GROUP BY d.brand, d.store_id, d.sku_id, p.days;
END;
COMMENT ON FUNCTION retail_mid.dws_trade_sku_store_nd_at(date, text) IS 'Trade per SKU x store over the 7/30/90/365 days ending on as_of, with exact distinct buyers.';

CREATE VIEW retail_mid.dws_trade_sku_store_nd AS
    SELECT n.* FROM retail_mid.dws_refresh_state s CROSS JOIN LATERAL retail_mid.dws_trade_sku_store_nd_at(s.as_of, s.brand) n;
COMMENT ON VIEW retail_mid.dws_trade_sku_store_nd IS 'Trade per SKU x store over the 7/30/90/365 days ending on the brand''s latest day with trade (one row per period).';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.as_of IS 'Last day of the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.store_id IS 'Store id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.sku_id IS 'SKU id.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.period_days IS 'Window length in days: 7, 30, 90 or 365.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.orders IS 'Orders with a sale line of the SKU in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.quantity IS 'Net units in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.net_amount IS 'Net sales amount in the window.';
COMMENT ON COLUMN retail_mid.dws_trade_sku_store_nd.buyers IS 'Distinct identified buyers in the window (exact).';

-- The incremental refresh: DWD then DWS for the days [from_date, to_date], in the caller's transaction (so a
-- failure leaves the previous state, and readers keep seeing the previous state until it commits). Running the
-- same days twice gives the same tables; late data for a past day is picked up by refreshing that day.
CREATE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'refresh dates must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date THEN
        RAISE EXCEPTION 'refresh range is empty: from_date % is after to_date %', from_date, to_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_date = '-infinity' OR to_date = 'infinity' OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'refresh range must be finite and at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One refresh at a time: a second one waits rather than interleaving its deletes and inserts.
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.refresh'));
    v_job := retail_mid.job_start('refresh', jsonb_build_object('from_date', from_date, 'to_date', to_date));

    RAISE NOTICE 'refresh % .. % (% days): building DWD', from_date, to_date, to_date - from_date + 1;
    v_dwd := retail_mid.build_dwd_trade(from_date, to_date);
    t1 := clock_timestamp();
    RAISE NOTICE 'refresh: % DWD lines written; building DWS', v_dwd;
    v_dws := retail_mid.build_dws_trade(from_date, to_date);
    RAISE NOTICE 'refresh: % DWS rows written', v_dws;

    DELETE FROM retail_mid.dws_refresh_state;
    INSERT INTO retail_mid.dws_refresh_state (brand, as_of, refreshed_at)
    SELECT brand, max(last_sale_date), now() FROM retail_mid.dws_trade_store_td GROUP BY brand;
    -- the brand scope of customers (src/security.sql) and the metric registry's generated tables (src/metric.sql)
    v_customers := retail_mid.refresh_customer_brand();
    t2 := clock_timestamp();
    RAISE NOTICE 'refresh: % customer-brand pairs; refreshing the metric registry', v_customers;
    v_metric := retail_mid.metric_refresh(from_date, to_date);
    RAISE NOTICE 'refresh: % metric rows written', v_metric;
    PERFORM retail_mid.job_finish(v_job, v_dwd + v_dws + v_metric,
        jsonb_build_object('dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Rebuilds DWD and DWS for the given days, the brand scope of customers and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';

-- Refreshes every day that has ODS orders, as one job (the full rebuild).
CREATE FUNCTION retail_mid.refresh_all()
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT retail_mid.refresh(min(order_time)::date, max(order_time)::date) FROM retail_mid.ods_order HAVING count(*) > 0;
END;
COMMENT ON FUNCTION retail_mid.refresh_all() IS 'Refreshes every day that has ODS orders (the full rebuild); NULL when the ODS is empty.';

-- ===== src/loaders.sql =====
-- loaders: the public files of ../shared/data mapped into the ODS contract. Each loader reads its files with
-- server-side COPY (so the server must be able to read them; superuser or pg_read_server_files and
-- pg_execute_server_program), validates every row, and either loads everything or nothing: a structurally
-- malformed file or more rejected rows than max_rejected raises an error and the transaction loads nothing.
-- Rows of a file that were loaded before are replaced (reloading a file is idempotent).

-- Copies a CSV file (plain or gzip) with a header into an existing staging table; the file must exist.
CREATE FUNCTION retail_mid.stage_csv(path text, staging regclass, columns text)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF path IS NULL OR path = '' THEN
        RAISE EXCEPTION 'file path must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (pg_stat_file(path, true)).size IS NULL THEN
        RAISE EXCEPTION 'could not open file "%": no such file', path
            USING ERRCODE = 'undefined_file', HINT = 'The path is read by the database server, not by the client.';
    END IF;
    -- gzip -cdf passes plain files through unchanged; the path is shell-quoted.
    EXECUTE format('COPY %s %s FROM PROGRAM %L WITH (FORMAT csv, HEADER true)', staging,
                   CASE WHEN columns = '*' THEN '' ELSE '(' || columns || ')' END,
                   'gzip -cdf ''' || replace(path, '''', '''\''''') || '''');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.stage_csv(text, regclass, text) IS 'Copies a CSV file into the listed columns (* for all) (plain or gzip-compressed, with a header) into a staging table; raises undefined_file when it is missing.';

-- Records a finished load, or raises data_exception when too many rows were rejected (the caller's
-- transaction then loads nothing).
CREATE FUNCTION retail_mid.finish_load(source text, path text, brand text, rows_read bigint, rows_loaded bigint,
                                        rejects jsonb, max_rejected bigint)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_rejected bigint; v_id bigint;
BEGIN
    SELECT coalesce(sum(value::bigint), 0) INTO v_rejected FROM jsonb_each_text(coalesce(rejects, '{}'));
    IF v_rejected > max_rejected THEN
        RAISE EXCEPTION '% rows of % were rejected, more than the % allowed; nothing was loaded', v_rejected, path, max_rejected
            USING ERRCODE = 'data_exception', DETAIL = 'Rejected rows by reason: ' || rejects::text,
                  HINT = 'Fix the file, or pass a larger max_rejected to load the valid rows.';
    END IF;
    INSERT INTO retail_mid.ods_load (source, path, brand, rows_read, rows_loaded, rows_rejected, rejects)
    VALUES (source, path, brand, rows_read, rows_loaded, v_rejected, coalesce(rejects, '{}'))
    RETURNING load_id INTO v_id;
    RAISE NOTICE '%: % rows read, % loaded, % rejected', source, rows_read, rows_loaded, v_rejected;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.finish_load(text, text, text, bigint, bigint, jsonb, bigint) IS 'Records a load in ods_load, or fails the load when more than max_rejected rows were rejected.';

-- Takes the rows of a staging table whose reason column is set out of it and returns {reason: rows}.
CREATE FUNCTION retail_mid.take_rejects(staging regclass)
RETURNS jsonb LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_rejects jsonb;
BEGIN
    EXECUTE format('SELECT coalesce(jsonb_object_agg(reason, n), ''{}'') FROM (SELECT reason, count(*) AS n FROM %s
                     WHERE reason IS NOT NULL GROUP BY reason) r', staging) INTO v_rejects;
    EXECUTE format('DELETE FROM %s WHERE reason IS NOT NULL', staging);
    RETURN v_rejects;
END;
$$;
COMMENT ON FUNCTION retail_mid.take_rejects(regclass) IS 'Deletes the rejected rows (reason set) of a loader''s staging table and returns the rejection reasons with their counts.';

-- What a loader returns: its ods_load row.
CREATE FUNCTION retail_mid.load_report(load_id bigint)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT l.load_id, l.rows_read, l.rows_loaded, l.rows_rejected, l.rejects FROM retail_mid.ods_load l
     WHERE l.load_id = load_report.load_id;
END;
COMMENT ON FUNCTION retail_mid.load_report(bigint) IS 'Rows read, loaded and rejected (with reasons) of one load.';

-- True when a text field is missing or not a valid value of the kind.
CREATE FUNCTION retail_mid.invalid_field(value text, kind text)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind
    WHEN 'integer'   THEN value IS NULL OR value !~ '^\s*-?\d{1,12}\s*$'
    WHEN 'number'    THEN value IS NULL OR value !~ '^\s*-?(\d{1,14}(\.\d*)?|\.\d+)([eE][-+]?\d{1,2})?\s*$'
    WHEN 'timestamp' THEN value IS NULL OR value !~ '^\s*\d{4}-\d{2}-\d{2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*$'
    WHEN 'yyyymmdd'  THEN value IS NULL OR value !~ '^\s*\d{8}\s*$'
    WHEN 'text'      THEN value IS NULL OR btrim(value) = ''
END;
COMMENT ON FUNCTION retail_mid.invalid_field(text, text) IS 'True when a text field is missing or not a valid integer, number, timestamp, yyyymmdd date or non-empty text.';

-- UCI Online Retail: one row per invoice line. Invoices whose number starts with C are cancellations.
CREATE FUNCTION retail_mid.load_online_retail(path text, brand text DEFAULT 'online_retail', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    v_job := retail_mid.job_start('load_online_retail', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, invoice text, stock_code text,
        description text, quantity text, invoice_date text, unit_price text, customer_id text, country text,
        reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage',
        'invoice, stock_code, description, quantity, invoice_date, unit_price, customer_id, country');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(invoice, 'text') THEN 'missing InvoiceNo'
        WHEN retail_mid.invalid_field(stock_code, 'text') THEN 'missing StockCode'
        WHEN retail_mid.invalid_field(quantity, 'integer') THEN 'Quantity is not an integer'
        WHEN retail_mid.invalid_field(unit_price, 'number') THEN 'UnitPrice is not a number'
        WHEN retail_mid.invalid_field(invoice_date, 'timestamp') THEN 'InvoiceDate is not a timestamp'
        WHEN customer_id IS NOT NULL AND customer_id !~ '^\s*\d+(\.0*)?\s*$' THEN 'CustomerID is not a number' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('online_retail', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    ALTER TABLE rm_stage ADD COLUMN cid text, ADD COLUMN ts timestamp;
    UPDATE rm_stage SET cid = nullif(split_part(btrim(customer_id), '.', 1), ''), ts = invoice_date::timestamp,
                        invoice = btrim(invoice), stock_code = upper(btrim(stock_code));

    INSERT INTO retail_mid.ods_product AS p (brand, sku_id, sku_name, list_price, load_id)
    SELECT DISTINCT ON (stock_code) load_online_retail.brand, stock_code, btrim(description), NULL::numeric, v_load
      FROM rm_stage ORDER BY stock_code, (description IS NULL), line_no DESC
    ON CONFLICT ON CONSTRAINT ods_product_pkey DO UPDATE SET sku_name = coalesce(excluded.sku_name, p.sku_name), load_id = excluded.load_id;

    INSERT INTO retail_mid.ods_customer AS c (brand, customer_id, id_type, country, load_id)
    SELECT DISTINCT ON (cid) load_online_retail.brand, cid, 'customer_id', country, v_load
      FROM rm_stage WHERE cid IS NOT NULL ORDER BY cid, line_no DESC
    ON CONFLICT ON CONSTRAINT ods_customer_pkey DO UPDATE SET country = excluded.country, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, load_id)
    SELECT DISTINCT load_online_retail.brand, cid, 'customer_id', cid, v_load FROM rm_stage WHERE cid IS NOT NULL
    ON CONFLICT DO NOTHING;
    PERFORM retail_mid.assign_customer_keys(array_agg('customer_id'::text), array_agg(cid))
       FROM (SELECT DISTINCT cid FROM rm_stage WHERE cid IS NOT NULL) c;

    DELETE FROM retail_mid.ods_order_line l USING (SELECT DISTINCT invoice FROM rm_stage) s
     WHERE l.brand = load_online_retail.brand AND l.order_id = s.invoice;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, country, load_id)
    SELECT DISTINCT ON (invoice) load_online_retail.brand, invoice, CASE WHEN cid IS NOT NULL THEN 'customer_id' END, cid, ts,
           'online', NULL, CASE WHEN invoice LIKE 'C%' THEN 'cancelled' ELSE 'paid' END, country, v_load
      FROM rm_stage ORDER BY invoice, line_no
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE
       SET id_type = excluded.id_type, customer_id = excluded.customer_id, order_time = excluded.order_time,
           status = excluded.status, country = excluded.country, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_online_retail.brand, invoice, row_number() OVER (PARTITION BY invoice ORDER BY line_no), stock_code,
           quantity::numeric, unit_price::numeric, 0, v_load
      FROM rm_stage;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_customer, retail_mid.ods_customer_identifier, retail_mid.ods_order, retail_mid.ods_order_line;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_online_retail(text, text, bigint) IS 'Loads the UCI Online Retail file (csv or csv.gz) into the ODS: invoices as orders, C-invoices as cancellations, CustomerID as identifier.';

-- Dunnhumby The Complete Journey: a directory with transactions_sample, products, demographics, campaigns,
-- campaign_descriptions, coupon_redemptions and promotions_sample (csv or csv.gz). Households are customers
-- (id_type household_id), baskets are orders; a line's amount is sales_value exactly (the unit price is the
-- shelf price sales_value + retail_disc + coupon_match_disc over quantity, the discount makes up the rest).
CREATE FUNCTION retail_mid.load_complete_journey(dir text, brand text DEFAULT 'complete_journey', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint := 0; v_loaded bigint := 0; v_rejects jsonb; v_load bigint; v_job bigint;
        f text; n bigint;
BEGIN
    v_job := retail_mid.job_start('load_complete_journey', jsonb_build_object('dir', dir, 'brand', brand));
    CREATE TEMP TABLE rm_tx (line_no bigint GENERATED ALWAYS AS IDENTITY, household_id text, store_id text, basket_id text,
        product_id text, quantity text, sales_value text, retail_disc text, coupon_disc text, coupon_match_disc text,
        week text, ts text, reason text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_prod (product_id text, manufacturer_id text, department text, brand text, product_category text,
        product_type text, package_size text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_demo (household_id text, age text, income text, home_ownership text, marital_status text,
        household_size text, household_comp text, kids_count text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_camp (campaign_id text, household_id text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_campdesc (campaign_id text, campaign_type text, start_date text, end_date text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_redeem (household_id text, coupon_upc text, campaign_id text, redemption_date text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_promo (product_id text, store_id text, display_location text, mailer_location text, week text) ON COMMIT DROP;

    FOREACH f IN ARRAY ARRAY['transactions_sample', 'products', 'demographics', 'campaigns', 'campaign_descriptions',
                             'coupon_redemptions', 'promotions_sample'] LOOP
        f := CASE WHEN (pg_stat_file(dir || '/' || f || '.csv.gz', true)).size IS NOT NULL THEN dir || '/' || f || '.csv.gz'
                  ELSE dir || '/' || f || '.csv' END;
        n := CASE
            WHEN f LIKE '%transactions_sample%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_tx',
                 'household_id, store_id, basket_id, product_id, quantity, sales_value, retail_disc, coupon_disc, coupon_match_disc, week, ts')
            WHEN f LIKE '%products%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_prod', '*')
            WHEN f LIKE '%demographics%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_demo', '*')
            WHEN f LIKE '%campaign_descriptions%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_campdesc', '*')
            WHEN f LIKE '%campaigns%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_camp', '*')
            WHEN f LIKE '%coupon_redemptions%' THEN retail_mid.stage_csv(f, 'pg_temp.rm_redeem', '*')
            ELSE retail_mid.stage_csv(f, 'pg_temp.rm_promo', '*') END;
        v_read := v_read + n;
    END LOOP;

    UPDATE rm_tx SET reason = CASE
        WHEN retail_mid.invalid_field(household_id, 'text') THEN 'missing household_id'
        WHEN retail_mid.invalid_field(basket_id, 'text') THEN 'missing basket_id'
        WHEN retail_mid.invalid_field(product_id, 'text') THEN 'missing product_id'
        WHEN retail_mid.invalid_field(quantity, 'integer') THEN 'quantity is not an integer'
        WHEN retail_mid.invalid_field(sales_value, 'number') OR retail_mid.invalid_field(retail_disc, 'number')
          OR retail_mid.invalid_field(coupon_match_disc, 'number') THEN 'an amount is not a number'
        WHEN retail_mid.invalid_field(ts, 'timestamp') THEN 'transaction_timestamp is not a timestamp' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_tx');
    v_loaded := v_read - (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(v_rejects));
    v_load := retail_mid.finish_load('complete_journey', dir, brand, v_read, v_loaded, v_rejects, max_rejected);

    INSERT INTO retail_mid.ods_product AS p (brand, sku_id, category_l1, category_l2, category_l3, product_brand, package_size, load_id)
    SELECT load_complete_journey.brand, btrim(product_id), department, product_category, product_type, rm_prod.brand, package_size, v_load
      FROM rm_prod WHERE btrim(product_id) <> ''
    ON CONFLICT ON CONSTRAINT ods_product_pkey DO UPDATE
       SET category_l1 = excluded.category_l1, category_l2 = excluded.category_l2, category_l3 = excluded.category_l3,
           product_brand = excluded.product_brand, package_size = excluded.package_size, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_product (brand, sku_id, load_id)
    SELECT DISTINCT load_complete_journey.brand, btrim(product_id), v_load FROM rm_tx ON CONFLICT DO NOTHING;

    INSERT INTO retail_mid.ods_customer AS c (brand, customer_id, id_type, attributes, load_id)
    SELECT load_complete_journey.brand, h, 'household_id', coalesce(to_jsonb(d) - 'household_id', '{}'), v_load
      FROM (SELECT btrim(household_id) AS h FROM rm_tx UNION SELECT btrim(household_id) FROM rm_demo) hh
      LEFT JOIN rm_demo d ON btrim(d.household_id) = hh.h
    ON CONFLICT ON CONSTRAINT ods_customer_pkey DO UPDATE SET attributes = excluded.attributes, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, load_id)
    SELECT brand, customer_id, 'household_id', customer_id, v_load FROM retail_mid.ods_customer
     WHERE brand = load_complete_journey.brand ON CONFLICT DO NOTHING;
    PERFORM retail_mid.assign_customer_keys(array_agg('household_id'::text), array_agg(customer_id))
       FROM retail_mid.ods_customer WHERE brand = load_complete_journey.brand;

    INSERT INTO retail_mid.ods_site (brand, site_id, kind, load_id)
    SELECT DISTINCT load_complete_journey.brand, btrim(store_id), 'store', v_load FROM rm_tx WHERE btrim(store_id) <> ''
    ON CONFLICT DO NOTHING;

    DELETE FROM retail_mid.ods_order_line l USING (SELECT DISTINCT btrim(basket_id) AS b FROM rm_tx) s
     WHERE l.brand = load_complete_journey.brand AND l.order_id = s.b;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, load_id)
    SELECT DISTINCT ON (btrim(basket_id)) load_complete_journey.brand, btrim(basket_id), 'household_id', btrim(household_id),
           ts::timestamp, 'store', btrim(store_id), 'paid', v_load
      FROM rm_tx ORDER BY btrim(basket_id), ts
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE
       SET customer_id = excluded.customer_id, order_time = excluded.order_time, store_id = excluded.store_id, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_complete_journey.brand, btrim(basket_id), row_number() OVER (PARTITION BY btrim(basket_id) ORDER BY line_no),
           btrim(product_id), q, up, CASE WHEN q = 0 THEN 0 ELSE up * q - sv END, v_load
      FROM (SELECT *, quantity::numeric AS q, sales_value::numeric AS sv,
                   CASE WHEN quantity::numeric = 0 THEN sales_value::numeric
                        ELSE round((sales_value::numeric + abs(retail_disc::numeric) + abs(coupon_match_disc::numeric)) / quantity::numeric, 4) END AS up
              FROM rm_tx) t;

    INSERT INTO retail_mid.ods_campaign AS c (brand, campaign_id, name, kind, start_date, end_date, load_id)
    SELECT load_complete_journey.brand, btrim(campaign_id), 'Campaign ' || btrim(campaign_id), campaign_type,
           start_date::date, end_date::date, v_load
      FROM rm_campdesc
    ON CONFLICT ON CONSTRAINT ods_campaign_pkey DO UPDATE
       SET kind = excluded.kind, start_date = excluded.start_date, end_date = excluded.end_date, load_id = excluded.load_id;
    DELETE FROM retail_mid.ods_campaign_touch WHERE ods_campaign_touch.brand = load_complete_journey.brand;
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, load_id)
    SELECT load_complete_journey.brand, btrim(c.campaign_id), 'household_id', btrim(c.household_id), 'mail',
           d.start_date::timestamp, 'sent', v_load
      FROM rm_camp c LEFT JOIN rm_campdesc d ON btrim(d.campaign_id) = btrim(c.campaign_id);
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, coupon_id, load_id)
    SELECT load_complete_journey.brand, btrim(campaign_id), 'household_id', btrim(household_id), 'store',
           redemption_date::timestamp, 'redeemed', btrim(coupon_upc), v_load
      FROM rm_redeem;

    -- Promotion weeks follow the transactions' week numbers: week 1 starts on 2017-01-01.
    INSERT INTO retail_mid.ods_promotion AS p (brand, sku_id, store_id, start_date, end_date, display, feature, load_id)
    SELECT load_complete_journey.brand, btrim(product_id), btrim(store_id), date '2017-01-01' + (week::int - 1) * 7,
           date '2017-01-01' + (week::int - 1) * 7 + 6, bool_or(display_location <> '0'), bool_or(mailer_location <> '0'), v_load
      FROM rm_promo GROUP BY btrim(product_id), btrim(store_id), week::int
    ON CONFLICT ON CONSTRAINT ods_promotion_pkey DO UPDATE
       SET display = excluded.display, feature = excluded.feature, load_id = excluded.load_id;

    DROP TABLE rm_tx, rm_prod, rm_demo, rm_camp, rm_campdesc, rm_redeem, rm_promo;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_customer, retail_mid.ods_customer_identifier, retail_mid.ods_site, retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_campaign, retail_mid.ods_campaign_touch, retail_mid.ods_promotion;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_complete_journey(text, text, bigint) IS 'Loads the Dunnhumby Complete Journey files of a directory: households, baskets, products, stores, campaigns (sent), coupon redemptions, promotions.';

-- CDNOW 1/10 sample (the BG/NBD paper's data): one row per purchase. Each row becomes an
-- order of one line (sku 'CD', quantity cds) whose amount is sales exactly.
CREATE FUNCTION retail_mid.load_cdnow(path text, brand text DEFAULT 'cdnow', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    v_job := retail_mid.job_start('load_cdnow', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, masterid text, sampleid text, date text,
        cds text, sales text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'masterid, sampleid, date, cds, sales');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(masterid, 'integer') THEN 'masterid is not an integer'
        WHEN retail_mid.invalid_field(date, 'yyyymmdd') OR to_char(to_date(date, 'YYYYMMDD'), 'YYYYMMDD') <> btrim(date)
             THEN 'date is not a valid YYYYMMDD date'
        WHEN retail_mid.invalid_field(cds, 'integer') OR cds::int < 0 THEN 'cds is not a non-negative integer'
        WHEN retail_mid.invalid_field(sales, 'number') OR sales::numeric < 0 THEN 'sales is not a non-negative number' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('cdnow', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    -- A customer can have several rows on one day: the order id numbers them.
    ALTER TABLE rm_stage ADD COLUMN order_id text;
    UPDATE rm_stage s SET order_id = x.id
      FROM (SELECT line_no, btrim(masterid) || '-' || btrim(date) || '-' ||
                   row_number() OVER (PARTITION BY btrim(masterid), btrim(date) ORDER BY line_no) AS id FROM rm_stage) x
     WHERE x.line_no = s.line_no;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, load_id)
    VALUES (load_cdnow.brand, 'CD', 'Compact discs', v_load) ON CONFLICT DO NOTHING;
    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, load_id)
    SELECT DISTINCT load_cdnow.brand, btrim(masterid), 'customer_id', v_load FROM rm_stage ON CONFLICT DO NOTHING;
    PERFORM retail_mid.assign_customer_keys(array_agg('customer_id'::text), array_agg(m))
       FROM (SELECT DISTINCT btrim(masterid) AS m FROM rm_stage) s;
    DELETE FROM retail_mid.ods_order_line l USING rm_stage s WHERE l.brand = load_cdnow.brand AND l.order_id = s.order_id;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, id_type, customer_id, order_time, channel, status, load_id)
    SELECT load_cdnow.brand, order_id, 'customer_id', btrim(masterid), to_date(date, 'YYYYMMDD')::timestamp, 'catalogue', 'paid', v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE SET load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_cdnow.brand, order_id, 1, 'CD', cds::int, up, CASE WHEN cds::int = 0 THEN 0 ELSE up * cds::int - sales::numeric END, v_load
      FROM (SELECT *, CASE WHEN cds::int = 0 THEN sales::numeric ELSE round(sales::numeric / cds::int, 4) END AS up FROM rm_stage) s;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_customer, retail_mid.ods_order, retail_mid.ods_order_line;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_cdnow(text, text, bigint) IS 'Loads the CDNOW elog file (masterid, sampleid, date, cds, sales): one order per customer and purchase day.';

-- Dominick's refrigerated orange juice (bayesm): weekly units per store x brand with the prices of all eleven
-- brands, deal (in-store display) and feat (share of the week with feature advertising), plus the stores' trade-area demographics.
-- Each store x brand x week becomes one anonymous order line dated on the week's first day (week 1 began on
-- 1989-09-14), priced per carton (price per ounce x carton ounces); deal/feat weeks become promotions.
CREATE FUNCTION retail_mid.load_orange_juice(dir text, brand text DEFAULT 'dominicks', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; f text;
BEGIN
    v_job := retail_mid.job_start('load_orange_juice', jsonb_build_object('dir', dir, 'brand', brand));
    CREATE TEMP TABLE rm_stage (store text, ojbrand text, week text, logmove text, constant text,
        p1 text, p2 text, p3 text, p4 text, p5 text, p6 text, p7 text, p8 text, p9 text, p10 text, p11 text,
        deal text, feat text, profit text, units text, reason text) ON COMMIT DROP;
    CREATE TEMP TABLE rm_stores (store text, age60 text, educ text, ethnic text, income text, hhlarge text, workwom text,
        hval150 text, sstrdist text, sstrvol text, cpdist5 text, cpwvol5 text) ON COMMIT DROP;
    f := CASE WHEN (pg_stat_file(dir || '/orange_juice_weekly.csv.gz', true)).size IS NOT NULL
              THEN dir || '/orange_juice_weekly.csv.gz' ELSE dir || '/orange_juice_weekly.csv' END;
    v_read := retail_mid.stage_csv(f, 'pg_temp.rm_stage',
        'store, ojbrand, week, logmove, constant, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, deal, feat, profit, units');
    v_read := v_read + retail_mid.stage_csv(dir || '/orange_juice_stores.csv', 'pg_temp.rm_stores', '*');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(store, 'integer') THEN 'store is not an integer'
        WHEN retail_mid.invalid_field(ojbrand, 'integer') OR ojbrand::int NOT BETWEEN 1 AND 11 THEN 'brand is not 1..11'
        WHEN retail_mid.invalid_field(week, 'integer') THEN 'week is not an integer'
        WHEN retail_mid.invalid_field(units, 'integer') OR units::numeric < 0 THEN 'units is not a non-negative integer'
        WHEN retail_mid.invalid_field(deal, 'number') OR retail_mid.invalid_field(feat, 'number')
             OR deal::numeric NOT BETWEEN 0 AND 1 OR feat::numeric NOT BETWEEN 0 AND 1 THEN 'deal/feat is not a share between 0 and 1'
        WHEN retail_mid.invalid_field((ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11])[ojbrand::int], 'number')
             THEN 'own price is not a number' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    v_loaded := v_read - (SELECT coalesce(sum(value::bigint), 0) FROM jsonb_each_text(v_rejects));
    v_load := retail_mid.finish_load('orange_juice', dir, brand, v_read, v_loaded, v_rejects, max_rejected);

    INSERT INTO retail_mid.ods_product AS p (brand, sku_id, sku_name, category_l1, category_l2, product_brand, package_size, load_id)
    SELECT load_orange_juice.brand, 'oj' || b, name, 'Dairy', 'Refrigerated orange juice', split_part(name, ' ', 1),
           oz || ' oz', v_load
      FROM (VALUES (1, 'Tropicana Premium 64', 64), (2, 'Tropicana Premium 96', 96), (3, 'Florida''s Natural 64', 64),
                   (4, 'Tropicana 64', 64), (5, 'Minute Maid 64', 64), (6, 'Minute Maid 96', 96), (7, 'Citrus Hill 64', 64),
                   (8, 'Tree Fresh 64', 64), (9, 'Florida Gold 64', 64), (10, 'Dominicks 64', 64), (11, 'Dominicks 128', 128))
           AS b(b, name, oz)
    ON CONFLICT ON CONSTRAINT ods_product_pkey DO UPDATE SET sku_name = excluded.sku_name, load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_site AS s (brand, site_id, site_name, kind, attributes, load_id)
    SELECT load_orange_juice.brand, btrim(store), 'Dominick''s ' || btrim(store), 'store',
           coalesce((SELECT to_jsonb(st) - 'store' FROM rm_stores st WHERE btrim(st.store) = btrim(x.store)), '{}'), v_load
      FROM (SELECT DISTINCT store FROM rm_stage) x
    ON CONFLICT ON CONSTRAINT ods_site_pkey DO UPDATE SET attributes = excluded.attributes, load_id = excluded.load_id;

    CREATE TEMP TABLE rm_oj ON COMMIT DROP AS
    SELECT btrim(store) AS store, 'oj' || ojbrand::int AS sku, date '1989-09-14' + (week::int - 1) * 7 AS week_start,
           units::numeric AS units, deal::numeric AS deal, feat::numeric AS feat,
           round((ARRAY[p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11])[ojbrand::int]::numeric
                 * (ARRAY[64, 96, 64, 64, 64, 96, 64, 64, 64, 64, 128])[ojbrand::int], 4) AS price
      FROM rm_stage;
    DELETE FROM retail_mid.ods_order_line l USING rm_oj s
     WHERE l.brand = load_orange_juice.brand AND l.order_id = s.store || '-' || s.sku || '-' || s.week_start;
    INSERT INTO retail_mid.ods_order AS o (brand, order_id, order_time, channel, store_id, status, load_id)
    SELECT load_orange_juice.brand, store || '-' || sku || '-' || week_start, week_start, 'store', store, 'paid', v_load FROM rm_oj
    ON CONFLICT ON CONSTRAINT ods_order_pkey DO UPDATE SET load_id = excluded.load_id;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT load_orange_juice.brand, store || '-' || sku || '-' || week_start, 1, sku, units, price, 0, v_load FROM rm_oj;
    INSERT INTO retail_mid.ods_promotion AS p (brand, sku_id, store_id, start_date, end_date, promo_price, display, feature,
                                               display_share, feature_share, load_id)
    SELECT load_orange_juice.brand, sku, store, week_start, week_start + 6, price, deal > 0, feat > 0, round(deal, 5), round(feat, 5), v_load
      FROM rm_oj WHERE deal > 0 OR feat > 0
    ON CONFLICT ON CONSTRAINT ods_promotion_pkey DO UPDATE
       SET promo_price = excluded.promo_price, display = excluded.display, feature = excluded.feature,
           display_share = excluded.display_share, feature_share = excluded.feature_share, load_id = excluded.load_id;
    DROP TABLE rm_stage, rm_stores, rm_oj;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_product, retail_mid.ods_site, retail_mid.ods_order, retail_mid.ods_order_line, retail_mid.ods_promotion;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_orange_juice(text, text, bigint) IS 'Loads Dominick''s orange-juice weekly sales and store demographics: weekly store x brand sales as anonymous orders, deal/feat weeks as promotions.';

-- Boston census tracts (1970): tract polygons with population and income bands as demand zones.
CREATE FUNCTION retail_mid.load_boston_tracts(path text, brand text DEFAULT 'boston', max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    v_job := retail_mid.job_start('load_boston_tracts', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (poltract text, town text, townno text, tract text, lon text, lat text, medv text, cmedv text,
        crim text, zn text, indus text, chas text, nox text, rm text, age text, dis text, rad text, tax text, ptratio text,
        b text, lstat text, units text, cu5k text, c5_7_5 text, c7_5_10 text, c10_15 text, c15_20 text, c20_25 text,
        c25_35 text, c35_50 text, co50k text, median text, bb text, censored text, nox_id text, pop text, wkt text,
        reason text, geom geometry) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage',
        'poltract, town, townno, tract, lon, lat, medv, cmedv, crim, zn, indus, chas, nox, rm, age, dis, rad, tax, ptratio, b, lstat, units, cu5k, c5_7_5, c7_5_10, c10_15, c15_20, c20_25, c25_35, c35_50, co50k, median, bb, censored, nox_id, pop, wkt');
    UPDATE rm_stage SET reason = CASE
        WHEN retail_mid.invalid_field(poltract, 'text') THEN 'missing poltract'
        WHEN retail_mid.invalid_field(pop, 'number') OR pop::numeric < 0 THEN 'POP is not a non-negative number'
        WHEN nullif(nullif(btrim(median), ''), 'NA') IS NOT NULL AND retail_mid.invalid_field(median, 'number')
             THEN 'median income is not a number'
        WHEN retail_mid.invalid_field(wkt, 'text') THEN 'missing wkt' END;
    -- Geometry parsing errors are caught per row so that one bad polygon is a rejection, not an abort.
    DECLARE r record;
    BEGIN
        FOR r IN SELECT ctid AS id, wkt FROM rm_stage WHERE reason IS NULL LOOP
            BEGIN
                UPDATE rm_stage SET geom = ST_SetSRID(ST_GeomFromText(r.wkt), 4326) WHERE ctid = r.id;
            EXCEPTION WHEN OTHERS THEN
                UPDATE rm_stage SET reason = 'wkt is not a valid geometry' WHERE ctid = r.id;
            END;
        END LOOP;
    END;
    UPDATE rm_stage SET reason = 'wkt is not a valid geometry' WHERE reason IS NULL AND (geom IS NULL OR ST_IsEmpty(geom));
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('boston_tracts', path, brand, v_read, v_loaded, v_rejects, max_rejected);
    INSERT INTO retail_mid.ods_demand_zone AS z (brand, zone_id, zone_name, geom, population, households, income, attributes, load_id)
    SELECT load_boston_tracts.brand, btrim(poltract), town, geom, pop::numeric,
           (cu5k::numeric + c5_7_5::numeric + c7_5_10::numeric + c10_15::numeric + c15_20::numeric + c20_25::numeric
            + c25_35::numeric + c35_50::numeric + co50k::numeric),
           nullif(nullif(btrim(median), ''), 'NA')::numeric,
           jsonb_build_object('income_bands', jsonb_build_object('lt5k', cu5k::numeric, '5k_7.5k', c5_7_5::numeric,
               '7.5k_10k', c7_5_10::numeric, '10k_15k', c10_15::numeric, '15k_20k', c15_20::numeric, '20k_25k', c20_25::numeric,
               '25k_35k', c25_35::numeric, '35k_50k', c35_50::numeric, 'ge50k', co50k::numeric),
               'median_home_value', cmedv::numeric, 'centroid_lon', lon::numeric, 'centroid_lat', lat::numeric), v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_demand_zone_pkey DO UPDATE
       SET zone_name = excluded.zone_name, geom = excluded.geom, population = excluded.population,
           households = excluded.households, income = excluded.income, attributes = excluded.attributes, load_id = excluded.load_id;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    -- fresh statistics, so that the next queries (refresh, tests, dashboards) are not planned on empty tables
    ANALYZE retail_mid.ods_demand_zone;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_boston_tracts(text, text, bigint) IS 'Loads the Boston census tracts (polygons, population, income bands) as demand zones.';

-- ===== src/synthetic.sql =====
-- synthetic: a deterministic retail data generator for the demo, tests and benchmarks at any size. Every value is
-- retail_mid.synth_uniform(seed, stream, index), a hash, so the same arguments give the same rows under any plan.

CREATE FUNCTION retail_mid.synth_uniform(seed bigint, stream int, i bigint)
RETURNS float8 AS 'MODULE_PATHNAME', 'synth_uniform' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.synth_uniform(bigint, int, bigint) IS 'Uniform [0,1) number that is a pure function of (seed, stream, index): the generator''s source of randomness.';

CREATE FUNCTION retail_mid.synth_customer(seed bigint, stream int, i bigint, customers int)
RETURNS int AS 'MODULE_PATHNAME', 'synth_customer' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.synth_customer(bigint, int, bigint, int) IS 'The synthetic customer order i draws, NULL for anonymous (15%); Pareto-like tiers: 35% of orders from the top 5% of customers, 35% from the next 20%.';

CREATE FUNCTION retail_mid.synth_is_active(seed bigint, c int, d int, days int)
RETURNS boolean AS 'MODULE_PATHNAME', 'synth_is_active' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.synth_is_active(bigint, int, int, int) IS 'Whether synthetic customer c is active on day d: 40% are acquired during the first half of the period, 45% churn at a uniform day after their start.';

-- Generates one brand's stores, warehouses, demand zones, products, customers with several identifiers, orders
-- (weekly and yearly seasonality, Pareto-like customer spend, Zipf-like SKU popularity so that the tail is
-- intermittent, promotions with price cuts and uplift, returns), behaviour events consistent with the purchases,
-- campaigns, inventory and inbound shipments, and dirty lines (exact duplicates, zero and negative prices) at
-- dirty_rate. Replaces whatever the brand had in the ODS. Returns the number of order lines.
CREATE FUNCTION retail_mid.generate_synthetic(
    seed bigint DEFAULT 42, customers int DEFAULT 5000, days int DEFAULT 365, orders_per_day int DEFAULT 300,
    stores int DEFAULT 12, skus int DEFAULT 400, start_date date DEFAULT '2024-01-01', dirty_rate float8 DEFAULT 0.01,
    with_events boolean DEFAULT true, brand text DEFAULT 'synthetic')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    v_job bigint; v_load bigint; v_lines bigint; v_orders bigint; v_events bigint := 0; b text := brand;
    s bigint := seed;
BEGIN
    IF seed IS NULL OR customers IS NULL OR days IS NULL OR orders_per_day IS NULL OR stores IS NULL OR skus IS NULL
       OR start_date IS NULL OR dirty_rate IS NULL OR with_events IS NULL OR brand IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF customers < 1 OR days < 1 OR orders_per_day < 1 OR stores < 1 OR skus < 1 THEN
        RAISE EXCEPTION 'customers, days, orders_per_day, stores and skus must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF days > 3660 OR customers > 100000000 OR skus > 10000000 OR stores > 100000 OR orders_per_day > 10000000 THEN
        RAISE EXCEPTION 'generate_synthetic size out of range'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'At most 3660 days, 1e8 customers, 1e7 SKUs, 1e5 stores.';
    END IF;
    IF NOT (dirty_rate >= 0 AND dirty_rate <= 0.5) THEN
        RAISE EXCEPTION 'dirty_rate must be between 0 and 0.5' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('generate_synthetic', jsonb_build_object('seed', seed, 'customers', customers, 'days', days,
        'orders_per_day', orders_per_day, 'stores', stores, 'skus', skus, 'dirty_rate', dirty_rate, 'brand', brand));

    DELETE FROM retail_mid.ods_order_line WHERE brand = b;   DELETE FROM retail_mid.ods_order WHERE brand = b;
    DELETE FROM retail_mid.ods_behavior_event WHERE brand = b; DELETE FROM retail_mid.ods_campaign_touch WHERE brand = b;
    DELETE FROM retail_mid.ods_campaign WHERE brand = b;     DELETE FROM retail_mid.ods_promotion WHERE brand = b;
    DELETE FROM retail_mid.ods_inventory_snapshot WHERE brand = b; DELETE FROM retail_mid.ods_inbound_shipment WHERE brand = b;
    DELETE FROM retail_mid.ods_customer_identifier WHERE brand = b; DELETE FROM retail_mid.ods_customer WHERE brand = b;
    DELETE FROM retail_mid.ods_product WHERE brand = b;      DELETE FROM retail_mid.ods_site WHERE brand = b;
    DELETE FROM retail_mid.ods_demand_zone WHERE brand = b;
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic', 'seed=' || seed, b) RETURNING load_id INTO v_load;

    RAISE NOTICE 'generate_synthetic: sites, zones, % products, % customers', skus, customers;
    -- Sites around one city centre (Shanghai): stores, one CDC, two RDCs, one FDC per four stores.
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, floor_area, city, parent_site_id, load_id)
    SELECT b, 'S' || lpad(i::text, 4, '0'), 'Store ' || i, 'store',
           ST_SetSRID(ST_MakePoint(121.47 + 0.3 * sqrt(u1) * cos(2 * pi() * u2), 31.23 + 0.25 * sqrt(u1) * sin(2 * pi() * u2)), 4326),
           start_date - (30 + floor(u3 * 2000))::int, round((200 + 1800 * u3)::numeric, 0), 'Shanghai',
           'FDC' || lpad((1 + (i - 1) / 4)::text, 3, '0'), v_load
      FROM generate_series(1, stores) i,
           LATERAL (SELECT retail_mid.synth_uniform(s, 1, i) u1, retail_mid.synth_uniform(s, 2, i) u2, retail_mid.synth_uniform(s, 3, i) u3) u;
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, city, parent_site_id, load_id)
    VALUES (b, 'CDC01', 'Central DC', 'CDC', ST_SetSRID(ST_MakePoint(121.20, 31.10), 4326), start_date - 3000, 'Shanghai', NULL, v_load),
           (b, 'RDC01', 'Regional DC north', 'RDC', ST_SetSRID(ST_MakePoint(121.45, 31.40), 4326), start_date - 2500, 'Shanghai', 'CDC01', v_load),
           (b, 'RDC02', 'Regional DC south', 'RDC', ST_SetSRID(ST_MakePoint(121.50, 31.05), 4326), start_date - 2500, 'Shanghai', 'CDC01', v_load);
    INSERT INTO retail_mid.ods_site (brand, site_id, site_name, kind, geom, opened_on, city, parent_site_id, load_id)
    SELECT b, 'FDC' || lpad(f::text, 3, '0'), 'Front DC ' || f, 'FDC', ST_Centroid(ST_Collect(geom)), min(opened_on), 'Shanghai',
           CASE WHEN f % 2 = 0 THEN 'RDC01' ELSE 'RDC02' END, v_load
      FROM retail_mid.ods_site, LATERAL (SELECT substr(parent_site_id, 4)::int AS f) x
     WHERE brand = b AND kind = 'store' GROUP BY f;
    INSERT INTO retail_mid.ods_demand_zone (brand, zone_id, zone_name, geom, population, households, income, load_id)
    SELECT b, 'Z' || lpad(i::text, 4, '0'), 'Zone ' || i,
           ST_SetSRID(ST_MakePoint(121.47 + 0.4 * (retail_mid.synth_uniform(s, 4, i) - 0.5) * 2,
                                   31.23 + 0.35 * (retail_mid.synth_uniform(s, 5, i) - 0.5) * 2), 4326),
           round((2000 + 18000 * retail_mid.synth_uniform(s, 6, i))::numeric), round((800 + 7000 * retail_mid.synth_uniform(s, 6, i))::numeric),
           round((40000 + 80000 * retail_mid.synth_uniform(s, 7, i))::numeric), v_load
      FROM generate_series(1, greatest(50, stores * 10)) i;

    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, category_l3, category_l4, product_brand, list_price, load_id)
    SELECT b, 'P' || lpad(i::text, 6, '0'), 'Product ' || i, c1, c1 || ' ' || (1 + i % 4), c1 || ' ' || (1 + i % 4) || '.' || (1 + i % 3),
           c1 || ' ' || (1 + i % 4) || '.' || (1 + i % 3) || '.' || (1 + i % 2), 'Brand ' || (1 + i % 25),
           round(exp(1.0 + 2.6 * retail_mid.synth_uniform(s, 8, i))::numeric, 2), v_load
      FROM generate_series(1, skus) i,
           LATERAL (SELECT (ARRAY['Food', 'Beverage', 'Personal care', 'Home', 'Apparel'])[1 + i % 5] AS c1) c;

    INSERT INTO retail_mid.ods_customer (brand, customer_id, id_type, name, gender, birth_date, phone, email, city, province,
                                         register_time, register_channel, home_store_id, load_id)
    SELECT b, 'M' || lpad(i::text, 8, '0'), 'member_id', 'Customer ' || i,
           CASE WHEN u1 < 0.55 THEN 'F' WHEN u1 < 0.98 THEN 'M' ELSE 'U' END,
           date '1950-01-01' + floor(u2 * 18000)::int, '1' || lpad((3800000000 + i)::text, 10, '0'), 'c' || i || '@example.com',
           'Shanghai', 'Shanghai', start_date - floor(u3 * 1500)::int + time '10:00',
           (ARRAY['store', 'app', 'mini_program', 'web'])[1 + floor(u3 * 4)::int],
           'S' || lpad((1 + floor(retail_mid.synth_uniform(s, 11, i) * stores))::text, 4, '0'), v_load
      FROM generate_series(1, customers) i,
           LATERAL (SELECT retail_mid.synth_uniform(s, 9, i) u1, retail_mid.synth_uniform(s, 10, i) u2, retail_mid.synth_uniform(s, 12, i) u3) u;
    -- Identifiers: every member id, most phones, some e-mails, devices and WeChat open ids; 2% of customers share a
    -- device with the next customer (households), which gives the identity graph real merges.
    INSERT INTO retail_mid.ods_customer_identifier (brand, customer_id, id_type, id_value, seen_at, load_id)
    SELECT b, c.customer_id, t.id_type, t.id_value, c.register_time, v_load
      FROM retail_mid.ods_customer c,
           LATERAL (SELECT substr(c.customer_id, 2)::bigint AS i) k,
           LATERAL (VALUES ('member_id', c.customer_id, true),
                           ('phone', c.phone, retail_mid.synth_uniform(s, 13, k.i) < 0.8),
                           ('email', c.email, retail_mid.synth_uniform(s, 14, k.i) < 0.5),
                           ('device_id', 'D' || CASE WHEN retail_mid.synth_uniform(s, 15, k.i - 1) < 0.02 THEN k.i - 1 ELSE k.i END,
                            retail_mid.synth_uniform(s, 16, k.i) < 0.6 OR retail_mid.synth_uniform(s, 15, k.i - 1) < 0.02),
                           ('open_id', 'wx' || md5(s || ':' || k.i), retail_mid.synth_uniform(s, 17, k.i) < 0.4)) AS t(id_type, id_value, present)
     WHERE c.brand = b AND t.present;
    PERFORM retail_mid.assign_customer_keys(array_agg('member_id'::text), array_agg(customer_id))
       FROM retail_mid.ods_customer WHERE brand = b;

    RAISE NOTICE 'generate_synthetic: orders over % days', days;
    -- Orders per day: weekday profile x yearly wave x noise. Each order draws a customer (synth_customer); when
    -- that customer is not active on the day (not acquired yet, or churned), a second draw is tried, and when
    -- that one is not active either the order stays anonymous.
    CREATE TEMP TABLE rm_syn_order ON COMMIT DROP AS
    SELECT o, d, c,
           CASE WHEN c IS NOT NULL AND retail_mid.synth_uniform(s, 22, o) < 0.8
                THEN 1 + floor(retail_mid.synth_uniform(s, 11, c) * stores)::int
                ELSE 1 + floor(retail_mid.synth_uniform(s, 27, o) * stores)::int END AS store,
           retail_mid.synth_uniform(s, 23, o) AS u_channel,
           1 + least(19, floor(-ln(1 - retail_mid.synth_uniform(s, 24, o)) * 1.7))::int AS n_lines,
           start_date + d + make_interval(secs => 28800 + floor(46800 * retail_mid.synth_uniform(s, 25, o))) AS ts
      FROM (SELECT o, d, CASE WHEN c1 IS NOT NULL AND retail_mid.synth_is_active(s, c1, d, days) THEN c1
                              WHEN c2 IS NOT NULL AND retail_mid.synth_is_active(s, c2, d, days) THEN c2 END AS c
              FROM (SELECT d * 10000000::bigint + k AS o, d,
                           retail_mid.synth_customer(s, 20, d * 10000000::bigint + k, customers) AS c1,
                           retail_mid.synth_customer(s, 28, d * 10000000::bigint + k, customers) AS c2
                      FROM generate_series(0, days - 1) d,
                           LATERAL generate_series(1, greatest(1, round(orders_per_day
                                * (ARRAY[1.2, 0.85, 0.85, 0.9, 0.95, 1.1, 1.3])[1 + extract(dow FROM start_date + d)::int] / 1.0214
                                * (1 + 0.25 * sin(2 * pi() * (extract(doy FROM start_date + d) - 80) / 365.25))
                                * (0.9 + 0.2 * retail_mid.synth_uniform(s, 26, d))))::int) k) draws) x;
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, load_id)
    SELECT b, 'O' || o, CASE WHEN c IS NOT NULL THEN 'member_id' END, 'M' || lpad(c::text, 8, '0'), ts,
           CASE WHEN u_channel < 0.7 THEN 'store' WHEN u_channel < 0.9 THEN 'online' ELSE 'app' END,
           'S' || lpad(store::text, 4, '0'), 'paid', v_load
      FROM rm_syn_order;
    GET DIAGNOSTICS v_orders = ROW_COUNT;

    -- Lines: Zipf-like SKU choice; a SKU x store x week is on promotion with probability 0.06 (20% off, about
    -- twice the units). Dirt: exact duplicate lines, zero and negative prices, each at a third of dirty_rate.
    CREATE TEMP TABLE rm_syn_line ON COMMIT DROP AS
    SELECT o.o, j, o.d, x.sku, o.store, p.list_price,
           retail_mid.synth_uniform(s, 31, (x.sku::bigint * 100003 + o.store) * 1000 + o.d / 7) < 0.06 AS promo,
           retail_mid.synth_uniform(s, 32, o.o * 32 + j) AS u_qty, retail_mid.synth_uniform(s, 33, o.o * 32 + j) AS u_dirt
      FROM rm_syn_order o
      JOIN LATERAL generate_series(1, o.n_lines) j ON true
      CROSS JOIN LATERAL (SELECT 1 + ((floor(skus * power(retail_mid.synth_uniform(s, 30, o.o * 32 + j), 2.5))::bigint + (j - 1) * 7919) % skus)::int AS sku) x
      JOIN retail_mid.ods_product p ON p.brand = b AND p.sku_id = 'P' || lpad(x.sku::text, 6, '0');
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT b, 'O' || o, j + CASE WHEN dup THEN 100 ELSE 0 END, 'P' || lpad(sku::text, 6, '0'),
           1 + floor(-ln(1 - u_qty) * CASE WHEN promo THEN 1.6 ELSE 0.8 END),
           CASE WHEN u_dirt < dirty_rate / 3 THEN 0
                WHEN u_dirt < dirty_rate / 3 * 1.1 THEN -list_price
                WHEN promo THEN round(list_price * 0.8, 2) ELSE list_price END,
           0, v_load
      FROM rm_syn_line, LATERAL (VALUES (false), (true)) AS dd(dup)
     WHERE NOT dup OR u_dirt > 1 - dirty_rate / 3;
    GET DIAGNOSTICS v_lines = ROW_COUNT;

    INSERT INTO retail_mid.ods_promotion (brand, sku_id, store_id, start_date, end_date, promo_price, display, feature, load_id)
    SELECT DISTINCT ON (sku, store, d / 7) b, 'P' || lpad(sku::text, 6, '0'), 'S' || lpad(store::text, 4, '0'),
           start_date + (d / 7) * 7, start_date + (d / 7) * 7 + 6, round(list_price * 0.8, 2),
           retail_mid.synth_uniform(s, 34, sku) < 0.5, retail_mid.synth_uniform(s, 35, sku) < 0.3, v_load
      FROM rm_syn_line WHERE promo ORDER BY sku, store, d / 7;

    -- Returns: 2% of identified orders send their first line back 1 to 14 days later (within the period).
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, original_order_id, load_id)
    SELECT b, 'R' || substr(o.order_id, 2), o.id_type, o.customer_id,
           o.order_time + make_interval(days => 1 + floor(14 * retail_mid.synth_uniform(s, 41, substr(o.order_id, 2)::bigint))::int),
           o.channel, o.store_id, 'returned', o.order_id, v_load
      FROM retail_mid.ods_order o
     WHERE o.brand = b AND o.status = 'paid' AND o.customer_id IS NOT NULL
       AND retail_mid.synth_uniform(s, 40, substr(o.order_id, 2)::bigint) < 0.02
       AND o.order_time + interval '15 days' < start_date + days;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, original_order_id, original_line_no, load_id)
    SELECT b, r.order_id, 1, l.sku_id, -l.quantity, l.unit_price, 0, l.order_id, 1, v_load
      FROM retail_mid.ods_order r JOIN retail_mid.ods_order_line l ON l.brand = b AND l.order_id = r.original_order_id AND l.line_no = 1
     WHERE r.brand = b AND r.status = 'returned' AND l.unit_price > 0;

    IF with_events THEN
        RAISE NOTICE 'generate_synthetic: behaviour events';
        -- Every identified purchase is preceded by views and a cart event of its SKUs and followed by a purchase event;
        -- on top, exposures, clicks, searches and favourites for random customers, so that the funnel has non-buyers.
        INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, event_count, amount, load_id)
        SELECT b, 'member_id', 'M' || lpad(o.c::text, 8, '0'), o.ts - make_interval(mins => e.before_min), e.event_type,
               'sku_id', 'P' || lpad(l.sku::text, 6, '0'), CASE WHEN o.u_channel < 0.7 THEN 'store' ELSE 'app' END,
               e.cnt, CASE WHEN e.event_type = 'purchase' THEN l.list_price END, v_load
          FROM rm_syn_order o JOIN rm_syn_line l ON l.o = o.o AND l.j = 1,
               LATERAL (VALUES ('exposure', 1440, 1 + floor(3 * l.u_qty)::int), ('click', 1400, 1), ('view', 30, 1 + floor(2 * l.u_dirt)::int),
                               ('cart', 10, 1), ('purchase', 0, 1)) AS e(event_type, before_min, cnt)
         WHERE o.c IS NOT NULL;
        INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, event_count, load_id)
        SELECT b, 'member_id', 'M' || lpad(c::text, 8, '0'), start_date + d + time '12:00', et, 'sku_id',
               'P' || lpad((1 + floor(skus * retail_mid.synth_uniform(s, 52, i))::int)::text, 6, '0'),
               (ARRAY['app', 'web', 'media'])[1 + floor(3 * retail_mid.synth_uniform(s, 53, i))::int], 1, v_load
          FROM generate_series(0, days - 1) d,
               LATERAL generate_series(1, greatest(1, customers / 50)) k,
               LATERAL (SELECT d::bigint * 10000000 + k AS i) ii,
               LATERAL (SELECT 1 + floor(customers * retail_mid.synth_uniform(s, 50, i))::int AS c,
                               retail_mid.synth_uniform(s, 51, i) AS u) cu,
               LATERAL (VALUES ('exposure', true), ('click', u < 0.3), ('search', u < 0.15), ('favorite', u < 0.05),
                               ('follow', u < 0.01), ('review', u > 0.995), ('share', u > 0.99)) AS e(et, present)
         WHERE present;
        SELECT count(*) INTO v_events FROM retail_mid.ods_behavior_event WHERE brand = b;
    END IF;

    -- Campaigns: three, each sent to a share of customers; some are exposed, click and redeem.
    INSERT INTO retail_mid.ods_campaign (brand, campaign_id, name, kind, start_date, end_date, load_id)
    SELECT b, 'C' || i, 'Campaign ' || i, (ARRAY['coupon', 'newsletter', 'media'])[i], start_date + i * days / 4, start_date + i * days / 4 + 14, v_load
      FROM generate_series(1, 3) i;
    INSERT INTO retail_mid.ods_campaign_touch (brand, campaign_id, id_type, id_value, channel, touched_at, touch_type, load_id)
    SELECT b, 'C' || i, 'member_id', 'M' || lpad(c::text, 8, '0'), (ARRAY['sms', 'email', 'media'])[i],
           start_date + i * days / 4 + time '09:00', t.touch_type, v_load
      FROM generate_series(1, 3) i, generate_series(1, customers) c,
           LATERAL (SELECT retail_mid.synth_uniform(s, 60 + i, c) AS u) uu,
           LATERAL (VALUES ('sent', u < 0.3), ('exposed', u < 0.2), ('clicked', u < 0.06), ('redeemed', u < 0.02)) AS t(touch_type, present)
     WHERE present;

    -- Stock at the end of the period for every store x SKU that sold, and weekly replenishment from the RDCs.
    INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, on_order, reserved, load_id)
    SELECT b, 'S' || lpad(store::text, 4, '0'), 'P' || lpad(sku::text, 6, '0'), start_date + days - 1,
           floor(40 * retail_mid.synth_uniform(s, 70, sku::bigint * 100003 + store)), 0, 0, v_load
      FROM (SELECT DISTINCT store, sku FROM rm_syn_line) x;
    INSERT INTO retail_mid.ods_inbound_shipment (brand, shipment_id, site_id, sku_id, supplier_id, ordered_on, expected_on, received_on, quantity, load_id)
    SELECT b, 'SH' || w || '-' || store, 'S' || lpad(store::text, 4, '0'), 'P' || lpad(sku::text, 6, '0'),
           CASE WHEN store % 2 = 0 THEN 'RDC01' ELSE 'RDC02' END, start_date + w * 7, start_date + w * 7 + 3,
           start_date + w * 7 + 2 + floor(5 * retail_mid.synth_uniform(s, 71, w::bigint * 100003 + store))::int,
           1 + floor(30 * retail_mid.synth_uniform(s, 72, (w::bigint * 100003 + store) * 1000 + sku)), v_load
      FROM generate_series(0, days / 7 - 1) w, generate_series(1, stores) store,
           LATERAL (SELECT DISTINCT 1 + floor(skus * power(retail_mid.synth_uniform(s, 73, (w::bigint * 100003 + store) * 100 + q), 2.5))::int AS sku
                      FROM generate_series(1, 5) q) k;

    UPDATE retail_mid.ods_load SET rows_read = v_lines, rows_loaded = v_lines WHERE load_id = v_load;
    DROP TABLE rm_syn_order, rm_syn_line;
    RAISE NOTICE 'generate_synthetic: % orders, % lines, % behaviour events', v_orders, v_lines, v_events;
    PERFORM retail_mid.job_finish(v_job, v_lines, jsonb_build_object('orders', v_orders, 'lines', v_lines, 'events', v_events));
    RETURN v_lines;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic(bigint, int, int, int, int, int, date, float8, boolean, text) IS 'Deterministic synthetic retail data for one brand (replacing its ODS rows): sites, zones, products, customers and identifiers, seasonal orders with promotions, returns and dirty lines, behaviour events, campaigns, stock and shipments.';

-- ===== src/oneid.sql =====
-- oneid: one customer identity across channels. The identity graph links customer keys (of member ids, phones,
-- e-mails, devices, open ids) seen together; its connected components are persons, each with a stable person key.

CREATE TYPE retail_mid.oneid_components AS (nodes int4[], components int4[]);
COMMENT ON TYPE retail_mid.oneid_components IS 'Connected components: nodes ascending, and for each the smallest key of its component.';

CREATE FUNCTION retail_mid.oneid_edges_trans(internal, int4, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.oneid_edges_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.oneid_edges_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.oneid_edges_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.oneid_components_final(internal) RETURNS retail_mid.oneid_components
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.oneid_edges_trans(internal, int4, int4) IS 'Transition of connected_components: appends an edge.';
COMMENT ON FUNCTION retail_mid.oneid_edges_combine(internal, internal) IS 'Combine of connected_components: concatenates edge lists.';
COMMENT ON FUNCTION retail_mid.oneid_edges_serial(internal) IS 'Serialises a connected_components state.';
COMMENT ON FUNCTION retail_mid.oneid_edges_deserial(bytea, internal) IS 'Deserialises (and validates) a connected_components state.';
COMMENT ON FUNCTION retail_mid.oneid_components_final(internal) IS 'Final of connected_components: union-find over all edges.';

CREATE AGGREGATE retail_mid.connected_components(int4, int4) (
    SFUNC = retail_mid.oneid_edges_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.oneid_edges_combine,
    SERIALFUNC = retail_mid.oneid_edges_serial, DESERIALFUNC = retail_mid.oneid_edges_deserial,
    FINALFUNC = retail_mid.oneid_components_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.connected_components(int4, int4) IS 'Connected components of the graph whose edges are the (a, b) pairs: (nodes, components) with the smallest key of each component as its label. NULL ends are skipped; NULL when there is no edge.';

-- Every identifier key -> its person. A person key is the customer key of one of its identifiers; it never
-- changes except when two persons merge, and then the older (smaller) person key is kept.
CREATE TABLE retail_mid.oneid_person_map (
    customer_key int4 PRIMARY KEY,
    person_key   int4 NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON retail_mid.oneid_person_map (person_key);
COMMENT ON TABLE retail_mid.oneid_person_map IS 'OneID: the person each customer key (identifier) belongs to.';
COMMENT ON COLUMN retail_mid.oneid_person_map.customer_key IS 'Customer key of one identifier (retail_mid.customer_key).';
COMMENT ON COLUMN retail_mid.oneid_person_map.person_key IS 'The person: stable, the older key survives a merge.';
COMMENT ON COLUMN retail_mid.oneid_person_map.updated_at IS 'When the mapping last changed.';

CREATE TABLE retail_mid.oneid_merge_log (
    merged_at       timestamptz NOT NULL DEFAULT now(),
    kept_person_key int4 NOT NULL,
    merged_person_key int4 NOT NULL,
    identifiers     int NOT NULL,
    PRIMARY KEY (merged_at, merged_person_key)
);
COMMENT ON TABLE retail_mid.oneid_merge_log IS 'Each merge of two persons: the person key kept, the one absorbed and how many identifiers moved.';
COMMENT ON COLUMN retail_mid.oneid_merge_log.merged_at IS 'When resolve_identities saw the link.';
COMMENT ON COLUMN retail_mid.oneid_merge_log.kept_person_key IS 'The surviving (older) person key.';
COMMENT ON COLUMN retail_mid.oneid_merge_log.merged_person_key IS 'The person key that ceased to exist.';
COMMENT ON COLUMN retail_mid.oneid_merge_log.identifiers IS 'Identifiers that moved to the kept person.';

-- The identity graph of the ODS: every identifier of a customer is linked to the customer's primary identifier
-- (and so to each other); identifiers shared by two customers (a household device) join them.
CREATE VIEW retail_mid.oneid_edges AS
SELECT p.customer_key AS a, k.customer_key AS b
  FROM retail_mid.ods_customer_identifier i
  JOIN retail_mid.ods_customer c ON c.brand = i.brand AND c.customer_id = i.customer_id
  JOIN retail_mid.customer_key p ON p.id_type = c.id_type AND p.id_value = c.customer_id
  JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.id_value = i.id_value;
COMMENT ON VIEW retail_mid.oneid_edges IS 'Edges of the identity graph: (primary identifier key, other identifier key) per customer.';
COMMENT ON COLUMN retail_mid.oneid_edges.a IS 'Customer key of the customer''s primary identifier.';
COMMENT ON COLUMN retail_mid.oneid_edges.b IS 'Customer key of another identifier of the same customer.';

-- Resolves the identity graph into persons: keys for new identifiers, components by union-find, and a person key
-- per component that keeps the oldest existing person key; merges are logged. Identities only merge: removing an
-- edge from the ODS does not split a person (a split needs a decision a person should make).
CREATE FUNCTION retail_mid.resolve_identities()
RETURNS TABLE (identifiers bigint, persons bigint, merges bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; v_changed bigint; v_merges bigint;
BEGIN
    v_job := retail_mid.job_start('resolve_identities');
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.resolve_identities'));
    PERFORM retail_mid.assign_customer_keys(array_agg(id_type), array_agg(id_value))
       FROM (SELECT DISTINCT id_type, id_value FROM retail_mid.ods_customer_identifier
             UNION SELECT DISTINCT id_type, customer_id FROM retail_mid.ods_customer) i;
    CREATE TEMP TABLE rm_component ON COMMIT DROP AS
    SELECT unnest((g.cc).nodes) AS node, unnest((g.cc).components) AS component  -- in the target list: no tuplestore
      FROM (SELECT retail_mid.connected_components(a, b) AS cc FROM retail_mid.oneid_edges) g;
    -- identifiers with no edge are persons of their own
    INSERT INTO rm_component
    SELECT k.customer_key, k.customer_key FROM retail_mid.customer_key k
     WHERE NOT EXISTS (SELECT 1 FROM rm_component c WHERE c.node = k.customer_key);
    ANALYZE rm_component;
    RAISE NOTICE 'resolve_identities: % identifiers in % components', (SELECT count(*) FROM rm_component),
        (SELECT count(DISTINCT component) FROM rm_component);

    -- the person of a component: the smallest person key its identifiers already have, else its label
    CREATE TEMP TABLE rm_person ON COMMIT DROP AS
    SELECT c.component, coalesce(min(m.person_key), c.component) AS person_key
      FROM rm_component c LEFT JOIN retail_mid.oneid_person_map m ON m.customer_key = c.node
     GROUP BY c.component;
    INSERT INTO retail_mid.oneid_merge_log (kept_person_key, merged_person_key, identifiers)
    SELECT p.person_key, m.person_key, count(*)
      FROM rm_component c JOIN rm_person p USING (component)
      JOIN retail_mid.oneid_person_map m ON m.customer_key = c.node
     WHERE m.person_key <> p.person_key
     GROUP BY p.person_key, m.person_key;
    GET DIAGNOSTICS v_merges = ROW_COUNT;
    INSERT INTO retail_mid.oneid_person_map AS m (customer_key, person_key)
    SELECT c.node, p.person_key FROM rm_component c JOIN rm_person p USING (component)
    ON CONFLICT (customer_key) DO UPDATE SET person_key = excluded.person_key, updated_at = now()
     WHERE m.person_key IS DISTINCT FROM excluded.person_key;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    PERFORM retail_mid.job_finish(v_job, v_changed, jsonb_build_object('merges', v_merges));
    RETURN QUERY SELECT (SELECT count(*) FROM retail_mid.oneid_person_map),
                        (SELECT count(DISTINCT person_key) FROM retail_mid.oneid_person_map), v_merges;
END;
$$;
COMMENT ON FUNCTION retail_mid.resolve_identities() IS 'Resolves the ODS identity graph into persons (union-find), keeping person keys stable and logging merges; returns identifiers, persons and merges of this run.';

CREATE VIEW retail_mid.oneid_person AS
SELECT m.person_key, count(*) AS identifiers, array_agg(k.id_type || ':' || k.id_value ORDER BY k.customer_key) AS identities
  FROM retail_mid.oneid_person_map m JOIN retail_mid.customer_key k USING (customer_key)
 GROUP BY m.person_key;
COMMENT ON VIEW retail_mid.oneid_person IS 'Each person with all its identifiers.';
COMMENT ON COLUMN retail_mid.oneid_person.person_key IS 'The person''s stable key.';
COMMENT ON COLUMN retail_mid.oneid_person.identifiers IS 'How many identifiers the person has.';
COMMENT ON COLUMN retail_mid.oneid_person.identities IS 'The identifiers as type:value.';

-- ===== src/clv.sql =====
-- clv: customer lifetime value. BG/NBD and Gamma-Gamma fitted by maximum likelihood in parallel-safe
-- aggregates, per-customer predictions, and the calibration/holdout summary of a transaction log.

CREATE TYPE retail_mid.bgnbd_params AS (r float8, alpha float8, a float8, b float8, loglik float8, n bigint, iterations int4);
COMMENT ON TYPE retail_mid.bgnbd_params IS 'BG/NBD parameters (r, alpha: gamma purchase-rate heterogeneity; a, b: beta dropout), the maximised log-likelihood, customers fitted and likelihood evaluations. Build one by hand with ROW(r, alpha, a, b, NULL, NULL, NULL)::retail_mid.bgnbd_params.';
CREATE TYPE retail_mid.gammagamma_params AS (p float8, q float8, gamma float8, loglik float8, n bigint, iterations int4);
COMMENT ON TYPE retail_mid.gammagamma_params IS 'Gamma-Gamma spend parameters (p, q, gamma), the maximised log-likelihood, repeat customers fitted and likelihood evaluations.';
CREATE TYPE retail_mid.clv_summary_row AS (
    first_date date, x int4, t_x float8, t_cal float8, first_spend float8, mean_spend float8, repeat_spend float8,
    x_holdout int4, spend_holdout float8, t_holdout float8);
COMMENT ON TYPE retail_mid.clv_summary_row IS 'A customer''s calibration/holdout summary: first purchase date, repeat transactions x, time of the last repeat t_x and age t_cal (= T) in periods, spend of the first day, mean and total spend of the repeat days (mean NULL when x = 0), transactions and spend in the holdout and its length in periods.';

-- Fits: the state is the data points, the final function runs the optimiser.
CREATE FUNCTION retail_mid.clv_points_bgnbd_trans(internal, float8, float8, float8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_bgnbd_trans(internal, float8, float8, float8) IS 'Transition function of bgnbd_fit: collects (x, t_x, T).';
CREATE FUNCTION retail_mid.clv_points_gg_trans(internal, float8, float8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_gg_trans(internal, float8, float8) IS 'Transition function of gammagamma_fit: collects (x, mean spend) of repeat customers.';
CREATE FUNCTION retail_mid.clv_points_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_combine(internal, internal) IS 'Combine function of the lifetime value fits.';
CREATE FUNCTION retail_mid.clv_points_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_serial(internal) IS 'Serialisation function of the lifetime value fits.';
CREATE FUNCTION retail_mid.clv_points_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_points_deserial(bytea, internal) IS 'Deserialisation function of the lifetime value fits; rejects malformed states.';
CREATE FUNCTION retail_mid.bgnbd_fit_final(internal) RETURNS retail_mid.bgnbd_params
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_fit_final(internal) IS 'Final function of bgnbd_fit: maximum likelihood with NLopt.';
CREATE FUNCTION retail_mid.gammagamma_fit_final(internal) RETURNS retail_mid.gammagamma_params
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.gammagamma_fit_final(internal) IS 'Final function of gammagamma_fit: maximum likelihood with NLopt.';

CREATE AGGREGATE retail_mid.bgnbd_fit(x float8, t_x float8, t_cal float8) (
    SFUNC = retail_mid.clv_points_bgnbd_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.clv_points_combine,
    SERIALFUNC = retail_mid.clv_points_serial, DESERIALFUNC = retail_mid.clv_points_deserial,
    FINALFUNC = retail_mid.bgnbd_fit_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.bgnbd_fit(float8, float8, float8) IS 'Fits the BG/NBD model (Fader, Hardie & Lee 2005) by maximum likelihood to per-customer (x repeat transactions, t_x time of the last repeat, T age), all in one time unit. Rows with a NULL are skipped; NULL for no rows; error 22003 when the optimiser does not converge.';
CREATE AGGREGATE retail_mid.gammagamma_fit(x float8, mean_spend float8) (
    SFUNC = retail_mid.clv_points_gg_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.clv_points_combine,
    SERIALFUNC = retail_mid.clv_points_serial, DESERIALFUNC = retail_mid.clv_points_deserial,
    FINALFUNC = retail_mid.gammagamma_fit_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.gammagamma_fit(float8, float8) IS 'Fits the Gamma-Gamma spend model by maximum likelihood to (x repeat transactions, mean spend per repeat transaction); customers with x = 0 or a NULL are skipped; NULL for no repeat customers.';

-- Per-customer predictions.
CREATE FUNCTION retail_mid.bgnbd_loglik(params retail_mid.bgnbd_params, x float8, t_x float8, t_cal float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_loglik(retail_mid.bgnbd_params, float8, float8, float8) IS 'BG/NBD log-likelihood of one customer summary (FHL 2005 eq. 6); the sum over customers is what bgnbd_fit maximises.';
CREATE FUNCTION retail_mid.bgnbd_expected_purchases(params retail_mid.bgnbd_params, t float8, x float8, t_x float8, t_cal float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_expected_purchases(retail_mid.bgnbd_params, float8, float8, float8, float8) IS 'E[Y(t) | x, t_x, T]: transactions a customer is expected to make in the next t periods (FHL 2005 eq. 10, 2F1 by its series).';
CREATE FUNCTION retail_mid.bgnbd_expectation(params retail_mid.bgnbd_params, t float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_expectation(retail_mid.bgnbd_params, float8) IS 'E[X(t)]: repeat transactions a new customer is expected to make in t periods (FHL 2005 eq. 7).';
CREATE FUNCTION retail_mid.bgnbd_p_alive(params retail_mid.bgnbd_params, x float8, t_x float8, t_cal float8) RETURNS float8
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.bgnbd_p_alive(retail_mid.bgnbd_params, float8, float8, float8) IS 'P(alive | x, t_x, T) under BG/NBD: 1 for customers without repeats (the model lets customers drop out only after a purchase).';
CREATE FUNCTION retail_mid.gammagamma_expected_spend(params retail_mid.gammagamma_params, x float8, mean_spend float8) RETURNS float8
    AS 'MODULE_PATHNAME', 'gammagamma_expected_spend' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.gammagamma_expected_spend(retail_mid.gammagamma_params, float8, float8) IS 'E[M | x, mean spend] = p (gamma + x m) / (p x + q - 1); for x = 0 or a NULL mean spend the population mean p gamma / (q - 1). Needs q > 1.';
CREATE FUNCTION retail_mid.clv(bgnbd retail_mid.bgnbd_params, gammagamma retail_mid.gammagamma_params,
        x float8, t_x float8, t_cal float8, mean_spend float8,
        horizon int4, discount_rate float8, period_length float8 DEFAULT 1) RETURNS float8
    AS 'MODULE_PATHNAME', 'clv_value' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv(retail_mid.bgnbd_params, retail_mid.gammagamma_params, float8, float8, float8, float8, int4, float8, float8) IS 'Discounted customer lifetime value: E[M | x, m] * sum over k = 1..horizon of (E[Y(k L)] - E[Y((k-1) L)]) / (1 + discount_rate)^k, with L = period_length in model time units and discount_rate per period. NULL when any argument but mean_spend is NULL.';

-- Calibration/holdout summary of one customer's transaction log.
CREATE FUNCTION retail_mid.clv_summary_trans(internal, date, float8, date, date, float8) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_trans(internal, date, float8, date, date, float8) IS 'Transition function of clv_summary.';
CREATE FUNCTION retail_mid.clv_summary_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_combine(internal, internal) IS 'Combine function of clv_summary.';
CREATE FUNCTION retail_mid.clv_summary_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_serial(internal) IS 'Serialisation function of clv_summary.';
CREATE FUNCTION retail_mid.clv_summary_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_deserial(bytea, internal) IS 'Deserialisation function of clv_summary; rejects malformed states.';
CREATE FUNCTION retail_mid.clv_summary_final(internal) RETURNS retail_mid.clv_summary_row
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.clv_summary_final(internal) IS 'Final function of clv_summary.';
CREATE AGGREGATE retail_mid.clv_summary(event_date date, amount float8, calibration_end date, holdout_end date, period_days float8) (
    SFUNC = retail_mid.clv_summary_trans, STYPE = internal, SSPACE = 128,
    COMBINEFUNC = retail_mid.clv_summary_combine,
    SERIALFUNC = retail_mid.clv_summary_serial, DESERIALFUNC = retail_mid.clv_summary_deserial,
    FINALFUNC = retail_mid.clv_summary_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.clv_summary(date, float8, date, date, float8) IS 'One customer''s transactions (GROUP BY customer) to the BG/NBD calibration/holdout summary: same-day transactions merged (amounts summed); first purchase = birth; x = repeat days up to calibration_end; t_x and T = days from birth to the last repeat and to calibration_end divided by period_days (7 = weeks); holdout = (calibration_end, holdout_end], NULL holdout_end for none. NULL for customers born after calibration_end. Rows with a NULL date are skipped; a NULL amount is an error.';

-- ===== src/rfm.sql =====
-- rfm: recency, frequency, monetary value per customer (parallel-safe C aggregates), tie-safe scoring
-- configurable per brand, segment maps as data, snapshots and dashboard views.

CREATE TYPE retail_mid.rfm_row AS (recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date);
COMMENT ON TYPE retail_mid.rfm_row IS 'RFM raw values of one customer at an as-of date: days since the last sale, distinct orders and net amount within the window, first and last sale dates on or before as_of.';

CREATE FUNCTION retail_mid.rfm_lines_trans_text(internal, date, text, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_text(internal, date, text, float8, date, int4) IS 'Transition function of rfm_agg over order lines with text order ids.';
CREATE FUNCTION retail_mid.rfm_lines_trans_int8(internal, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_int8(internal, date, int8, float8, date, int4) IS 'Transition function of rfm_agg over order lines with bigint order ids.';
CREATE FUNCTION retail_mid.rfm_daily_trans(internal, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_daily_trans(internal, date, int8, float8, date, int4) IS 'Transition function of rfm_agg_daily.';
CREATE FUNCTION retail_mid.rfm_lines_trans_text_num(internal, date, text, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_text_num(internal, date, text, numeric, date, int4) IS 'Transition function of rfm_agg over order lines with text order ids and numeric amounts.';
CREATE FUNCTION retail_mid.rfm_lines_trans_int8_num(internal, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_lines_trans_int8_num(internal, date, int8, numeric, date, int4) IS 'Transition function of rfm_agg over order lines with bigint order ids and numeric amounts.';
CREATE FUNCTION retail_mid.rfm_daily_trans_num(internal, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_daily_trans_num(internal, date, int8, numeric, date, int4) IS 'Transition function of rfm_agg_daily with numeric amounts.';
CREATE FUNCTION retail_mid.rfm_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_combine(internal, internal) IS 'Combine function of the RFM aggregates.';
CREATE FUNCTION retail_mid.rfm_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_serial(internal) IS 'Serialisation function of the RFM aggregates.';
CREATE FUNCTION retail_mid.rfm_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_deserial(bytea, internal) IS 'Deserialisation function of the RFM aggregates; rejects malformed states.';
CREATE FUNCTION retail_mid.rfm_final(internal) RETURNS retail_mid.rfm_row
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_final(internal) IS 'Final function of the RFM aggregates.';

CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id text, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_text, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, text, float8, date, int4) IS 'RFM of one customer''s order lines (GROUP BY customer): lines after as_of are ignored; recency = as_of minus the last sale date; frequency = distinct order ids with a sale line dated in (as_of - window_days, as_of]; monetary = sum of all line amounts in that window (returns, i.e. negative amounts, subtract and add no order; summed exactly at 1/10000); NULL for a customer without a sale on or before as_of. Lines with a NULL date or order id are skipped; a NULL amount is an error.';
CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_int8, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, int8, float8, date, int4) IS 'rfm_agg for bigint order ids; same rules as the text form.';
CREATE AGGREGATE retail_mid.rfm_agg_daily(dt date, orders int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_daily_trans, STYPE = internal, SSPACE = 64, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg_daily(date, int8, float8, date, int4) IS 'RFM of one customer''s daily rows (dws_trade_customer_1d: dt, orders, net_amount): the same answer as rfm_agg over the order lines when every order lies on one day. Days with orders > 0 are sale days; rows after as_of are ignored.';

CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id text, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_text_num, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, text, numeric, date, int4) IS 'rfm_agg for numeric amounts (read without a float8 conversion, rounded half away from zero to 1/10000); same rules as the float8 form.';
CREATE AGGREGATE retail_mid.rfm_agg(order_date date, order_id int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_lines_trans_int8_num, STYPE = internal, SSPACE = 96, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg(date, int8, numeric, date, int4) IS 'rfm_agg for bigint order ids and numeric amounts.';
CREATE AGGREGATE retail_mid.rfm_agg_daily(dt date, orders int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_daily_trans_num, STYPE = internal, SSPACE = 64, COMBINEFUNC = retail_mid.rfm_combine,
    SERIALFUNC = retail_mid.rfm_serial, DESERIALFUNC = retail_mid.rfm_deserial,
    FINALFUNC = retail_mid.rfm_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_agg_daily(date, int8, numeric, date, int4) IS 'rfm_agg_daily for numeric amounts.';

-- Quantile breakpoints and scores.
CREATE FUNCTION retail_mid.rfm_breaks_trans(internal, float8, int4, bool) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_trans(internal, float8, int4, bool) IS 'Transition function of rfm_breaks.';
CREATE FUNCTION retail_mid.rfm_breaks_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_combine(internal, internal) IS 'Combine function of rfm_breaks.';
CREATE FUNCTION retail_mid.rfm_breaks_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_serial(internal) IS 'Serialisation function of rfm_breaks.';
CREATE FUNCTION retail_mid.rfm_breaks_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_deserial(bytea, internal) IS 'Deserialisation function of rfm_breaks; rejects malformed states.';
CREATE FUNCTION retail_mid.rfm_breaks_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_breaks_final(internal) IS 'Final function of rfm_breaks.';
CREATE AGGREGATE retail_mid.rfm_breaks(value float8, k int4, descending bool) (
    SFUNC = retail_mid.rfm_breaks_trans, STYPE = internal, COMBINEFUNC = retail_mid.rfm_breaks_combine,
    SERIALFUNC = retail_mid.rfm_breaks_serial, DESERIALFUNC = retail_mid.rfm_breaks_deserial,
    FINALFUNC = retail_mid.rfm_breaks_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_breaks(float8, int4, bool) IS 'The k - 1 breakpoints of tie-safe quantile scoring: with n values, c_s = ceil((s - 1) n / k), break s is the c_s-th smallest value (the c_s-th largest when descending). rfm_quantile_score then gives 1 + floor(k * #{x < v} / n) (descending: #{x > v}): equal values share a score, the worst value scores 1. NULL values are skipped.';
CREATE FUNCTION retail_mid.rfm_quantile_score(value float8, breaks float8[], descending bool) RETURNS int4
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_quantile_score(float8, float8[], bool) IS 'Score of a value against rfm_breaks: 1 + the number of breaks it exceeds (descending: it is below).';

-- Whole-population collection and scoring: what rfm_scores runs (one aggregate over all rows, scores in C).
CREATE FUNCTION retail_mid.rfm_collect_text(internal, int4, date, text, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_text_num(internal, int4, date, text, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_int8(internal, int4, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_int8_num(internal, int4, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_daily(internal, int4, date, int8, float8, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_daily_num(internal, int4, date, int8, numeric, date, int4) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_td(internal, int4, date, date, int8, numeric, date) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION retail_mid.rfm_collect_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.rfm_collect_text(internal, int4, date, text, float8, date, int4) IS 'Transition function of rfm_collect (text order ids, float8 amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_text_num(internal, int4, date, text, numeric, date, int4) IS 'Transition function of rfm_collect (text order ids, numeric amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_int8(internal, int4, date, int8, float8, date, int4) IS 'Transition function of rfm_collect (bigint order ids, float8 amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_int8_num(internal, int4, date, int8, numeric, date, int4) IS 'Transition function of rfm_collect (bigint order ids, numeric amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_daily(internal, int4, date, int8, float8, date, int4) IS 'Transition function of rfm_collect_daily (float8 amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_daily_num(internal, int4, date, int8, numeric, date, int4) IS 'Transition function of rfm_collect_daily (numeric amounts).';
COMMENT ON FUNCTION retail_mid.rfm_collect_td(internal, int4, date, date, int8, numeric, date) IS 'Transition function of rfm_collect_td.';
COMMENT ON FUNCTION retail_mid.rfm_collect_combine(internal, internal) IS 'Combine function of the rfm_collect aggregates (order pairs merged, so an order split between workers counts once).';
COMMENT ON FUNCTION retail_mid.rfm_collect_serial(internal) IS 'Serialisation function of the rfm_collect aggregates.';
COMMENT ON FUNCTION retail_mid.rfm_collect_deserial(bytea, internal) IS 'Deserialisation function of the rfm_collect aggregates; rejects malformed states.';
COMMENT ON FUNCTION retail_mid.rfm_collect_final(internal) IS 'Final function of the rfm_collect aggregates: the summary bytea.';
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id text, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_text, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id text, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_text_num, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_int8, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect(customer_key int4, order_date date, order_id int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_int8_num, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect_daily(customer_key int4, dt date, orders int8, amount float8, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_daily, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect_daily(customer_key int4, dt date, orders int8, amount numeric, as_of date, window_days int4) (
    SFUNC = retail_mid.rfm_collect_daily_num, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_ONLY, PARALLEL = SAFE);
CREATE AGGREGATE retail_mid.rfm_collect_td(customer_key int4, first_order_date date, last_order_date date, orders int8, amount numeric, as_of date) (
    SFUNC = retail_mid.rfm_collect_td, STYPE = internal, SSPACE = 67108864, COMBINEFUNC = retail_mid.rfm_collect_combine,
    SERIALFUNC = retail_mid.rfm_collect_serial, DESERIALFUNC = retail_mid.rfm_collect_deserial,
    FINALFUNC = retail_mid.rfm_collect_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, text, float8, date, int4) IS 'RFM summary of a whole population of order lines (no GROUP BY): per customer the values rfm_agg gives, as one opaque bytea for rfm_score_summary. Same rules as rfm_agg; rows with a NULL customer_key are skipped.';
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, text, numeric, date, int4) IS 'rfm_collect for numeric amounts.';
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, int8, float8, date, int4) IS 'rfm_collect for bigint order ids.';
COMMENT ON AGGREGATE retail_mid.rfm_collect(int4, date, int8, numeric, date, int4) IS 'rfm_collect for bigint order ids and numeric amounts.';
COMMENT ON AGGREGATE retail_mid.rfm_collect_daily(int4, date, int8, float8, date, int4) IS 'RFM summary of a whole population of daily customer rows (dws_trade_customer_1d), rules of rfm_agg_daily.';
COMMENT ON AGGREGATE retail_mid.rfm_collect_daily(int4, date, int8, numeric, date, int4) IS 'rfm_collect_daily for numeric amounts.';
COMMENT ON AGGREGATE retail_mid.rfm_collect_td(int4, date, date, int8, numeric, date) IS 'RFM summary from to-date customer rows (dws_trade_customer_td): the window is the whole history; an error when a row''s last order lies after as_of.';

CREATE FUNCTION retail_mid.rfm_score_summary(summary bytea, k int4, method text, r_thresholds float8[], f_thresholds float8[],
                                             m_thresholds float8[], segments text[])
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 100000;
COMMENT ON FUNCTION retail_mid.rfm_score_summary(bytea, int4, text, float8[], float8[], float8[], text[]) IS 'Scores every customer of an rfm_collect summary by method (quantile, threshold, average: the rules of rfm_config) on 1..k and looks up the segment in segments, a k^3 array indexed (r - 1) k^2 + (f - 1) k + m (NULL: no segment). Rows come in customer_key order; a NULL summary gives no rows.';

-- Configuration and segment maps, as data.
CREATE TABLE retail_mid.rfm_segment_map_def (
    map_name    text PRIMARY KEY,
    k           int4 NOT NULL CHECK (k BETWEEN 2 AND 100),
    description text NOT NULL DEFAULT ''
);
COMMENT ON TABLE retail_mid.rfm_segment_map_def IS 'The RFM segment maps: name and the score scale 1..k their rules are written in.';
COMMENT ON COLUMN retail_mid.rfm_segment_map_def.k IS 'Scores run 1..k; the scoring configuration used with the map must have the same k.';

CREATE TABLE retail_mid.rfm_segment_map (
    map_name  text NOT NULL REFERENCES retail_mid.rfm_segment_map_def ON DELETE CASCADE,
    segment   text NOT NULL,
    r_min int4 NOT NULL, r_max int4 NOT NULL, f_min int4 NOT NULL, f_max int4 NOT NULL, m_min int4 NOT NULL, m_max int4 NOT NULL,
    priority  int4 NOT NULL DEFAULT 100,
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (map_name, segment, r_min, f_min, m_min),
    CHECK (r_min <= r_max AND f_min <= f_max AND m_min <= m_max AND r_min >= 1 AND f_min >= 1 AND m_min >= 1)
);
COMMENT ON TABLE retail_mid.rfm_segment_map IS 'Segment rules: a customer whose (R, F, M) scores fall in the boxes gets the segment; where boxes overlap the lowest priority wins; a customer no rule covers gets a NULL segment.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.segment IS 'Segment name shown on dashboards.';
COMMENT ON COLUMN retail_mid.rfm_segment_map.priority IS 'Lower wins when several rules match.';

INSERT INTO retail_mid.rfm_segment_map_def VALUES
  ('eight_class', 2, 'The seed platform''s eight classes: R, F and M each high (2) or low (1) against the population average or a threshold.'),
  ('ten_segment', 5, 'The common ten segments on R and F scores 1..5 (M is not used).');
INSERT INTO retail_mid.rfm_segment_map (map_name, segment, r_min, r_max, f_min, f_max, m_min, m_max, priority, description) VALUES
  ('eight_class', '重要价值客户', 2, 2, 2, 2, 2, 2, 1, 'important value: recent, frequent, high spend'),
  ('eight_class', '重要发展客户', 2, 2, 1, 1, 2, 2, 2, 'important to develop: recent, infrequent, high spend'),
  ('eight_class', '重要保持客户', 1, 1, 2, 2, 2, 2, 3, 'important to keep: not recent, frequent, high spend'),
  ('eight_class', '重要挽留客户', 1, 1, 1, 1, 2, 2, 4, 'important to win back: not recent, infrequent, high spend'),
  ('eight_class', '一般价值客户', 2, 2, 2, 2, 1, 1, 5, 'ordinary value: recent, frequent, low spend'),
  ('eight_class', '一般发展客户', 2, 2, 1, 1, 1, 1, 6, 'ordinary to develop: recent, infrequent, low spend'),
  ('eight_class', '一般保持客户', 1, 1, 2, 2, 1, 1, 7, 'ordinary to keep: not recent, frequent, low spend'),
  ('eight_class', '一般挽留客户', 1, 1, 1, 1, 1, 1, 8, 'ordinary to win back: not recent, infrequent, low spend'),
  ('ten_segment', 'Champions',          5, 5, 4, 5, 1, 5, 1, 'R 5, F 4-5'),
  ('ten_segment', 'Loyal Customers',    3, 4, 4, 5, 1, 5, 2, 'R 3-4, F 4-5'),
  ('ten_segment', 'Potential Loyalist', 4, 5, 2, 3, 1, 5, 3, 'R 4-5, F 2-3'),
  ('ten_segment', 'New Customers',      5, 5, 1, 1, 1, 5, 4, 'R 5, F 1'),
  ('ten_segment', 'Promising',          4, 4, 1, 1, 1, 5, 5, 'R 4, F 1'),
  ('ten_segment', 'Need Attention',     3, 3, 3, 3, 1, 5, 6, 'R 3, F 3'),
  ('ten_segment', 'About To Sleep',     3, 3, 1, 2, 1, 5, 7, 'R 3, F 1-2'),
  ('ten_segment', 'At Risk',            1, 2, 3, 4, 1, 5, 8, 'R 1-2, F 3-4'),
  ('ten_segment', 'Can''t Lose Them',   1, 2, 5, 5, 1, 5, 9, 'R 1-2, F 5'),
  ('ten_segment', 'Hibernating',        1, 2, 1, 2, 1, 5, 10, 'R 1-2, F 1-2 (hibernating or lost)');

CREATE TABLE retail_mid.rfm_config (
    brand        text NOT NULL,
    map_name     text NOT NULL REFERENCES retail_mid.rfm_segment_map_def ON DELETE CASCADE,
    k            int4 NOT NULL CHECK (k BETWEEN 2 AND 100),
    method       text NOT NULL CHECK (method IN ('quantile', 'threshold', 'average')),
    r_thresholds float8[], f_thresholds float8[], m_thresholds float8[],
    PRIMARY KEY (brand, map_name),
    CONSTRAINT rfm_config_average_k CHECK (method <> 'average' OR k = 2),
    CONSTRAINT rfm_config_thresholds CHECK (method <> 'threshold' OR (cardinality(r_thresholds) = k - 1 AND cardinality(f_thresholds) = k - 1
                                     AND cardinality(m_thresholds) = k - 1))
);
COMMENT ON TABLE retail_mid.rfm_config IS 'How RFM scores are computed per brand and segment map; brand ''*'' is the default for brands without a row of their own.';
COMMENT ON COLUMN retail_mid.rfm_config.method IS 'quantile: tie-safe quantiles (see rfm_breaks); threshold: fixed ascending cut points; average: 2 = better than the population mean, 1 otherwise (k = 2).';
COMMENT ON COLUMN retail_mid.rfm_config.r_thresholds IS 'threshold method, k - 1 ascending day counts: R score = k - #{t : recency_days > t} (at most t1 days scores k).';
COMMENT ON COLUMN retail_mid.rfm_config.f_thresholds IS 'threshold method, k - 1 ascending order counts: F score = 1 + #{t : frequency >= t}.';
COMMENT ON COLUMN retail_mid.rfm_config.m_thresholds IS 'threshold method, k - 1 ascending amounts: M score = 1 + #{t : monetary >= t}.';
INSERT INTO retail_mid.rfm_config (brand, map_name, k, method) VALUES ('*', 'ten_segment', 5, 'quantile'), ('*', 'eight_class', 2, 'average');

-- The scoring rule of a brand and map: its rfm_config row (or brand '*') and the map as a k^3 segment array.
CREATE TYPE retail_mid.rfm_scoring AS (k int4, method text, r_thresholds float8[], f_thresholds float8[], m_thresholds float8[],
                                       segments text[]);
COMMENT ON TYPE retail_mid.rfm_scoring IS 'Arguments of rfm_score_summary for one brand and segment map (see rfm_scoring()).';

CREATE FUNCTION retail_mid.rfm_scoring(brand text, map_name text) RETURNS retail_mid.rfm_scoring
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg record;
    v_k int4;
    segs text[];
BEGIN
    SELECT d.k INTO v_k FROM retail_mid.rfm_segment_map_def d WHERE d.map_name = rfm_scoring.map_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown rfm segment map "%"', map_name USING ERRCODE = 'undefined_object',
            HINT = 'The maps are listed in retail_mid.rfm_segment_map_def.';
    END IF;
    SELECT c.* INTO cfg FROM retail_mid.rfm_config c
     WHERE c.map_name = rfm_scoring.map_name AND c.brand IN (rfm_scoring.brand, '*')
     ORDER BY c.brand = '*' LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no rfm configuration for brand "%" and map "%"', brand, map_name USING ERRCODE = 'undefined_object',
            HINT = 'Add a row to retail_mid.rfm_config (brand ''*'' applies to every brand).';
    END IF;
    IF cfg.k <> v_k THEN
        RAISE EXCEPTION 'rfm configuration scores 1..% but map "%" is written for 1..%', cfg.k, map_name, v_k
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- every (r, f, m) cell gets the matching rule of lowest priority (then segment name), NULL when none matches
    SELECT array_agg(cell.segment ORDER BY rs, fs, ms) INTO segs
      FROM generate_series(1, cfg.k) rs, generate_series(1, cfg.k) fs, generate_series(1, cfg.k) ms
      LEFT JOIN LATERAL (SELECT m.segment FROM retail_mid.rfm_segment_map m
                          WHERE m.map_name = rfm_scoring.map_name AND rs BETWEEN m.r_min AND m.r_max
                            AND fs BETWEEN m.f_min AND m.f_max AND ms BETWEEN m.m_min AND m.m_max
                          ORDER BY m.priority, m.segment LIMIT 1) cell ON true;
    RETURN ROW(cfg.k, cfg.method, cfg.r_thresholds, cfg.f_thresholds, cfg.m_thresholds, segs)::retail_mid.rfm_scoring;
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_scoring(text, text) IS 'The scoring rule (rfm_config row of the brand, else brand ''*'') and the segment map of map_name as arguments for rfm_score_summary; errors for an unknown map, a missing configuration or a k that differs from the map''s.';

-- Scores of every customer of a brand, from any table shaped like dws_trade_customer_1d
-- (brand, dt, customer_key, orders, net_amount) or like the order lines.
CREATE FUNCTION retail_mid.rfm_scores_from(source regclass, brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment',
                                           grain text DEFAULT 'daily')
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sc retail_mid.rfm_scoring;
    collect text;
BEGIN
    IF source IS NULL OR brand IS NULL OR as_of IS NULL OR window_days IS NULL OR map_name IS NULL THEN
        RAISE EXCEPTION 'rfm_scores arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF window_days <= 0 THEN
        RAISE EXCEPTION 'window_days must be positive' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Got %s.', window_days);
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    collect := CASE grain
      WHEN 'daily' THEN 'retail_mid.rfm_collect_daily(s.customer_key, s.dt, s.orders::int8, s.net_amount, $1, $2)'
      WHEN 'lines' THEN 'retail_mid.rfm_collect(s.customer_key, s.dt, s.order_id, s.amount, $1, $2)'
    END;
    IF collect IS NULL THEN
        RAISE EXCEPTION 'grain must be daily or lines' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    sc := retail_mid.rfm_scoring(brand, map_name);
    RETURN QUERY EXECUTE format(
        'SELECT * FROM retail_mid.rfm_score_summary((SELECT %s FROM %s s WHERE s.brand = $3 AND s.dt <= $1),
                                                   $4, $5, $6, $7, $8, $9)', collect, source)
      USING as_of, window_days, brand, sc.k, sc.method, sc.r_thresholds, sc.f_thresholds, sc.m_thresholds, sc.segments;
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_scores_from(regclass, text, date, int4, text, text) IS 'RFM raw values, scores and segment of every customer of a brand with a sale on or before as_of, scored by the brand''s rfm_config row for the map (or brand ''*''). grain daily: a table shaped like dws_trade_customer_1d (brand, dt, customer_key, orders, net_amount); grain lines: shaped like dwd_trade_order_line_di (brand, dt, customer_key, order_id, amount). One pass over the source (rfm_collect), scores in C (rfm_score_summary); rows in customer_key order.';

CREATE FUNCTION retail_mid.rfm_scores(brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src regclass := to_regclass('retail_mid.dws_trade_customer_1d');
BEGIN
    IF src IS NULL THEN
        RAISE EXCEPTION 'retail_mid.dws_trade_customer_1d does not exist' USING ERRCODE = 'undefined_table',
            HINT = 'Build the DWS layer with retail_mid.refresh first.';
    END IF;
    RETURN QUERY SELECT * FROM retail_mid.rfm_scores_from(src, brand, as_of, window_days, map_name, 'daily');
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_scores(text, date, int4, text) IS 'RFM raw values, scores and segment of every customer of a brand at as_of over the last window_days days, from retail_mid.dws_trade_customer_1d.';

-- The checks of rfm_scores_td, apart so that rfm_scores_td itself can be a SQL function the planner inlines:
-- its rows then stream from the C scorer into the caller's plan instead of through a PL/pgSQL result store.
CREATE FUNCTION retail_mid.rfm_td_as_of(brand text, as_of date, map_name text) RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_refreshed date;
BEGIN
    IF brand IS NULL OR map_name IS NULL THEN
        RAISE EXCEPTION 'rfm_scores_td arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.as_of INTO v_refreshed FROM retail_mid.dws_refresh_state r WHERE r.brand = rfm_td_as_of.brand;
    IF NOT FOUND THEN
        RETURN NULL;  -- nothing refreshed for the brand yet: no customers
    END IF;
    IF NOT isfinite(coalesce(as_of, v_refreshed)) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF as_of < v_refreshed THEN
        RAISE EXCEPTION 'as_of % is before the brand''s last refreshed day %', as_of, v_refreshed
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Totals to date cannot be wound back; use rfm_scores with a window for an earlier date.';
    END IF;
    RETURN coalesce(as_of, v_refreshed);
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_td_as_of(text, date, text) IS 'Internal to rfm_scores_td: checks its arguments and returns the as_of date to score at (the brand''s dws_refresh_state date when as_of is NULL), or NULL when the brand has not been refreshed.';

CREATE FUNCTION retail_mid.rfm_scores_td(brand text, as_of date DEFAULT NULL, map_name text DEFAULT 'ten_segment')
RETURNS TABLE (customer_key int4, recency_days int4, frequency int4, monetary float8, first_order_date date, last_order_date date,
               r_score int4, f_score int4, m_score int4, segment text)
LANGUAGE sql STABLE PARALLEL RESTRICTED
BEGIN ATOMIC
    SELECT s.*
      FROM (SELECT retail_mid.rfm_td_as_of(rfm_scores_td.brand, rfm_scores_td.as_of, rfm_scores_td.map_name) AS d
            OFFSET 0) a  -- not pulled up: the check runs once, not once per row of the aggregate
     CROSS JOIN LATERAL (SELECT (retail_mid.rfm_scoring(rfm_scores_td.brand, rfm_scores_td.map_name)).*) sc
     CROSS JOIN LATERAL retail_mid.rfm_score_summary(
           (SELECT retail_mid.rfm_collect_td(t.customer_key, t.first_sale_date, t.last_sale_date, t.orders, t.net_amount, a.d)
              FROM retail_mid.dws_trade_customer_td t WHERE t.brand = rfm_scores_td.brand),
           sc.k, sc.method, sc.r_thresholds, sc.f_thresholds, sc.m_thresholds, sc.segments) s
     WHERE a.d IS NOT NULL;
END;
COMMENT ON FUNCTION retail_mid.rfm_scores_td(text, date, text) IS 'RFM over the whole history from retail_mid.dws_trade_customer_td (one row per customer, so no pass over daily rows): recency to as_of (default: the brand''s dws_refresh_state date), frequency = orders to date, monetary = net amount to date. An as_of before the last refresh is an error (totals to date cannot be wound back); for a window use rfm_scores.';

-- Snapshots for dashboards.
CREATE TABLE retail_mid.rfm_snapshot (
    brand text NOT NULL, map_name text NOT NULL, window_days int4 NOT NULL, as_of date NOT NULL, customer_key int4 NOT NULL,
    recency_days int4 NOT NULL, frequency int4 NOT NULL, monetary float8 NOT NULL,
    r_score int4 NOT NULL, f_score int4 NOT NULL, m_score int4 NOT NULL, segment text,
    PRIMARY KEY (brand, map_name, window_days, as_of, customer_key)
);
COMMENT ON TABLE retail_mid.rfm_snapshot IS 'RFM scores and segments as of given dates, written by rfm_refresh; read by the dashboard views.';
COMMENT ON COLUMN retail_mid.rfm_snapshot.segment IS 'Segment of the map; NULL when no rule of a user map covers the scores.';

CREATE FUNCTION retail_mid.rfm_refresh_from(source regclass, brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; n bigint;
BEGIN
    v_job := retail_mid.job_start('rfm_refresh', jsonb_build_object('source', source::text, 'brand', brand, 'as_of', as_of,
                                                                   'window_days', window_days, 'map_name', map_name));
    DELETE FROM retail_mid.rfm_snapshot s WHERE s.brand = rfm_refresh_from.brand AND s.map_name = rfm_refresh_from.map_name
       AND s.window_days = rfm_refresh_from.window_days AND s.as_of = rfm_refresh_from.as_of;
    INSERT INTO retail_mid.rfm_snapshot
    SELECT brand, map_name, window_days, as_of, x.customer_key, x.recency_days, x.frequency, x.monetary,
           x.r_score, x.f_score, x.m_score, x.segment
      FROM retail_mid.rfm_scores_from(source, brand, as_of, window_days, map_name, 'daily') x;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'rfm_refresh: % customers of brand % scored as of %', n, brand, as_of;
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_refresh_from(regclass, text, date, int4, text) IS 'Replaces the rfm_snapshot rows of (brand, map, window, as_of) with fresh scores from a dws_trade_customer_1d-shaped table; logs to job_log; returns the customers written.';

CREATE FUNCTION retail_mid.rfm_refresh(brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src regclass := to_regclass('retail_mid.dws_trade_customer_1d');
BEGIN
    IF src IS NULL THEN
        RAISE EXCEPTION 'retail_mid.dws_trade_customer_1d does not exist' USING ERRCODE = 'undefined_table',
            HINT = 'Build the DWS layer with retail_mid.refresh first.';
    END IF;
    RETURN retail_mid.rfm_refresh_from(src, brand, as_of, window_days, map_name);
END;
$$;
COMMENT ON FUNCTION retail_mid.rfm_refresh(text, date, int4, text) IS 'rfm_refresh_from over retail_mid.dws_trade_customer_1d.';

CREATE VIEW retail_mid.rfm_segment_summary AS
SELECT s.brand, s.map_name, s.window_days, s.as_of, coalesce(s.segment, '(unmapped)') AS segment,
       count(*)::bigint AS customers,
       sum(s.monetary)::float8 AS monetary,
       (count(*)::float8 / sum(count(*)) OVER w)::float8 AS customer_share,
       coalesce(sum(s.monetary) / nullif(sum(sum(s.monetary)) OVER w, 0), 0)::float8 AS revenue_share
  FROM retail_mid.rfm_snapshot s
 GROUP BY s.brand, s.map_name, s.window_days, s.as_of, coalesce(s.segment, '(unmapped)')
WINDOW w AS (PARTITION BY s.brand, s.map_name, s.window_days, s.as_of);
COMMENT ON VIEW retail_mid.rfm_segment_summary IS 'Customers and revenue per RFM segment of each snapshot, with their shares.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.map_name IS 'Segment map.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.as_of IS 'Snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.segment IS 'Segment; (unmapped) for customers no rule covers.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.customers IS 'Customers in the segment.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.monetary IS 'Their net amount within the window.';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.customer_share IS 'Share of the snapshot''s customers (0..1).';
COMMENT ON COLUMN retail_mid.rfm_segment_summary.revenue_share IS 'Share of the snapshot''s net amount (0 when that total is 0).';

CREATE VIEW retail_mid.rfm_segment_migration AS
WITH snaps AS (SELECT DISTINCT brand, map_name, window_days, as_of FROM retail_mid.rfm_snapshot),
pairs AS (SELECT a.brand, a.map_name, a.window_days, a.as_of AS from_as_of, b.as_of AS to_as_of
            FROM snaps a JOIN snaps b USING (brand, map_name, window_days) WHERE a.as_of < b.as_of)
SELECT p.brand, p.map_name, p.window_days, p.from_as_of, p.to_as_of,
       x.from_segment, x.to_segment, count(*)::bigint AS customers
  FROM pairs p
  CROSS JOIN LATERAL (
      SELECT coalesce(f.segment, CASE WHEN f.customer_key IS NULL THEN '(not a customer)' ELSE '(unmapped)' END) AS from_segment,
             coalesce(t.segment, CASE WHEN t.customer_key IS NULL THEN '(not a customer)' ELSE '(unmapped)' END) AS to_segment
        FROM (SELECT * FROM retail_mid.rfm_snapshot s WHERE s.brand = p.brand AND s.map_name = p.map_name
                 AND s.window_days = p.window_days AND s.as_of = p.from_as_of) f
        FULL JOIN (SELECT * FROM retail_mid.rfm_snapshot s WHERE s.brand = p.brand AND s.map_name = p.map_name
                 AND s.window_days = p.window_days AND s.as_of = p.to_as_of) t ON t.customer_key = f.customer_key) x
 GROUP BY p.brand, p.map_name, p.window_days, p.from_as_of, p.to_as_of, x.from_segment, x.to_segment;
COMMENT ON VIEW retail_mid.rfm_segment_migration IS 'Customers moving from one RFM segment to another between two snapshot dates of the same brand, map and window (every ordered pair of snapshot dates; filter on from_as_of and to_as_of).';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.map_name IS 'Segment map.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.from_as_of IS 'Earlier snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.to_as_of IS 'Later snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.from_segment IS 'Segment at from_as_of; (not a customer) when the customer had no sale yet.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.to_segment IS 'Segment at to_as_of; (not a customer) when absent from that snapshot.';
COMMENT ON COLUMN retail_mid.rfm_segment_migration.customers IS 'Customers making that move.';

-- ===== src/aipl.sql =====
-- aipl: the seed platform's AIPL customer funnel (Awareness, Interest, Purchase, Loyalty). Rules are data, per
-- brand: a stage holds on day d when the customer's matching signals in the look-back window (d - days, d] reach
-- a minimum count and a minimum amount. Priority L > P > I > A: one stage per customer per day.

CREATE TABLE retail_mid.aipl_rule (
    brand         text    NOT NULL DEFAULT '*',
    stage         char(1) NOT NULL CHECK (stage IN ('A', 'I', 'P', 'L')),
    source        text    NOT NULL CHECK (source IN ('event', 'touch', 'order')),
    signal_types  text[]  NOT NULL,
    lookback_days int     NOT NULL CHECK (lookback_days BETWEEN 1 AND 3660),
    min_count     int     NOT NULL DEFAULT 1 CHECK (min_count >= 1),
    min_amount    numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    PRIMARY KEY (brand, stage, source)
);
COMMENT ON TABLE retail_mid.aipl_rule IS 'AIPL stage rules per brand (brand ''*'' is the default for brands without rules of their own): which signals, over how many days, how many and how much.';
COMMENT ON COLUMN retail_mid.aipl_rule.brand IS 'Brand the rule is for; ''*'' = every brand without its own rules.';
COMMENT ON COLUMN retail_mid.aipl_rule.stage IS 'A awareness, I interest, P purchase, L loyalty.';
COMMENT ON COLUMN retail_mid.aipl_rule.source IS 'event: ods_behavior_event types; touch: ods_campaign_touch types; order: days with orders in dws_trade_customer_1d (signal_types ignored).';
COMMENT ON COLUMN retail_mid.aipl_rule.signal_types IS 'Event types or touch types that count.';
COMMENT ON COLUMN retail_mid.aipl_rule.lookback_days IS 'Window length: signals on days (d - lookback_days, d] count for day d.';
COMMENT ON COLUMN retail_mid.aipl_rule.min_count IS 'Minimum number of signals (events x event_count, touches, or orders) in the window.';
COMMENT ON COLUMN retail_mid.aipl_rule.min_amount IS 'Minimum amount of the signals in the window (order net amount, event amount).';
-- The seed platform's configuration: exposure and search make aware; click, view, favourite, cart, follow and
-- register show interest; a purchase in 90 days; loyalty = a repeat purchase within 180 days, or a review or share.
INSERT INTO retail_mid.aipl_rule VALUES
    ('*', 'A', 'event', '{exposure,search}', 30, 1, 0),
    ('*', 'A', 'touch', '{sent,exposed}', 30, 1, 0),
    ('*', 'I', 'event', '{click,view,favorite,cart,follow,register}', 30, 1, 0),
    ('*', 'I', 'touch', '{clicked,redeemed}', 30, 1, 0),
    ('*', 'P', 'order', '{}', 90, 1, 0),
    ('*', 'L', 'order', '{}', 180, 2, 0),
    ('*', 'L', 'event', '{review,share}', 180, 1, 0);

CREATE TABLE retail_mid.dws_aipl_customer_stage_1d (
    dt           date    NOT NULL,
    brand        text    NOT NULL,
    customer_key int4    NOT NULL,
    stage        char(1) NOT NULL,
    PRIMARY KEY (brand, dt, customer_key)
);
COMMENT ON TABLE retail_mid.dws_aipl_customer_stage_1d IS 'AIPL stage of every customer with a stage, per day (the highest stage whose rule holds).';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.dws_aipl_customer_stage_1d.stage IS 'A, I, P or L.';

-- Behaviour events and campaign touches by customer key instead of identifier: what aipl_signals reads. Owned by
-- retail_mid_view_owner (src/security.sql), they give analysts the events of their brands without the identifiers
-- (personal data, masked for them): the row-level security of the ODS tables applies for the caller. No security
-- barrier: the views filter nothing themselves and expose no personal column, and the time predicates of
-- aipl_signals must reach the scans.
CREATE VIEW retail_mid.behavior_event_keyed AS
SELECT e.brand::text AS brand, k.customer_key::int4 AS customer_key, e.event_time::timestamp AS event_time, e.event_type::text AS event_type,
       e.channel::text AS channel, e.event_count::int AS event_count, e.amount::numeric(14,4) AS amount
  FROM retail_mid.ods_behavior_event e JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = e.id_value;
COMMENT ON VIEW retail_mid.behavior_event_keyed IS 'Behaviour events of the caller''s brands with the customer key of their identifier (events of identifiers without a key are left out); no identifiers.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.customer_key IS 'Customer key of the event''s identifier.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.event_time IS 'When.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.event_type IS 'Event type.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.channel IS 'Channel.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.event_count IS 'How many events the row stands for.';
COMMENT ON COLUMN retail_mid.behavior_event_keyed.amount IS 'Amount, if any.';

CREATE VIEW retail_mid.campaign_touch_keyed AS
SELECT t.brand::text AS brand, k.customer_key::int4 AS customer_key, t.campaign_id::text AS campaign_id, t.channel::text AS channel,
       t.touched_at::timestamp AS touched_at, t.touch_type::text AS touch_type, t.coupon_id::text AS coupon_id
  FROM retail_mid.ods_campaign_touch t JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = t.id_value;
COMMENT ON VIEW retail_mid.campaign_touch_keyed IS 'Campaign touches of the caller''s brands with the customer key of their identifier (touches of identifiers without a key are left out); no identifiers.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.customer_key IS 'Customer key of the touched identifier.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.campaign_id IS 'Campaign.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.channel IS 'Channel.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.touched_at IS 'When.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.touch_type IS 'sent, exposed, clicked or redeemed.';
COMMENT ON COLUMN retail_mid.campaign_touch_keyed.coupon_id IS 'Coupon, if any.';

-- The daily signals of a brand, one row per customer, rule and day: what the rules count.
CREATE FUNCTION retail_mid.aipl_signals(brand text, from_date date, to_date date)
RETURNS TABLE (customer_key int4, stage char(1), source text, dt date, n bigint, amount numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH r AS (SELECT * FROM retail_mid.aipl_rule r
                WHERE r.brand = aipl_signals.brand
                   OR (r.brand = '*' AND NOT EXISTS (SELECT 1 FROM retail_mid.aipl_rule o WHERE o.brand = aipl_signals.brand)))
    SELECT e.customer_key, r.stage, r.source, e.event_time::date, sum(e.event_count), coalesce(sum(e.amount), 0)
      FROM r JOIN retail_mid.behavior_event_keyed e ON r.source = 'event' AND e.event_type = ANY (r.signal_types)
     WHERE e.brand = aipl_signals.brand AND e.event_time >= aipl_signals.from_date - r.lookback_days
       AND e.event_time < aipl_signals.to_date + 1
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT t.customer_key, r.stage, r.source, t.touched_at::date, count(*), 0
      FROM r JOIN retail_mid.campaign_touch_keyed t ON r.source = 'touch' AND t.touch_type = ANY (r.signal_types)
     WHERE t.brand = aipl_signals.brand AND t.touched_at >= aipl_signals.from_date - r.lookback_days
       AND t.touched_at < aipl_signals.to_date + 1
     GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT c.customer_key, r.stage, r.source, c.dt, sum(c.orders), sum(c.net_amount)
      FROM r JOIN retail_mid.dws_trade_customer_1d c ON r.source = 'order'
     WHERE c.brand = aipl_signals.brand AND c.orders > 0
       AND c.dt > aipl_signals.from_date - r.lookback_days AND c.dt <= aipl_signals.to_date
     GROUP BY 1, 2, 3, 4;
END;
COMMENT ON FUNCTION retail_mid.aipl_signals(text, date, date) IS 'Daily AIPL signals of a brand per customer and rule, from the days the rules'' windows need; reads events and touches by customer key (behavior_event_keyed, campaign_touch_keyed), so analysts of the brand may call it.';

-- Rebuilds the stage history of [from_date, to_date]. Each rule's windowed sums are a step function that changes
-- only where a signal enters (day t) or leaves (day t + lookback) the window, so they are computed at those
-- change points with running sums and expanded to days only where a stage holds.
CREATE FUNCTION retail_mid.aipl_refresh(brand text, from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; v_rows bigint; b text := brand;
BEGIN
    IF brand IS NULL OR from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'aipl_refresh arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_date > to_date OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'aipl_refresh range must run forwards and span at most 100 years'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('aipl_refresh', jsonb_build_object('brand', brand, 'from_date', from_date, 'to_date', to_date));
    DELETE FROM retail_mid.dws_aipl_customer_stage_1d s WHERE s.brand = b AND s.dt BETWEEN from_date AND to_date;
    INSERT INTO retail_mid.dws_aipl_customer_stage_1d (dt, brand, customer_key, stage)
    WITH r AS (SELECT * FROM retail_mid.aipl_rule r
                WHERE r.brand = b OR (r.brand = '*' AND NOT EXISTS (SELECT 1 FROM retail_mid.aipl_rule o WHERE o.brand = b))),
    sig AS (SELECT s.*, r.lookback_days, r.min_count, r.min_amount
              FROM retail_mid.aipl_signals(b, from_date, to_date) s JOIN r USING (stage, source)),
    change AS (   -- a signal enters the window on its day and leaves it lookback_days later
        SELECT customer_key, stage, source, min_count, min_amount, dt AS at, n, amount FROM sig
        UNION ALL
        SELECT customer_key, stage, source, min_count, min_amount, dt + lookback_days, -n, -amount FROM sig),
    level AS (SELECT customer_key, stage, source, min_count, min_amount, at, sum(n) AS n, sum(amount) AS amount
                FROM change GROUP BY 1, 2, 3, 4, 5, 6),
    running AS (SELECT customer_key, stage, at,
                       sum(n) OVER w >= min_count AND sum(amount) OVER w >= min_amount AS holds,
                       lead(at) OVER (PARTITION BY customer_key, stage, source ORDER BY at) AS next_at
                  FROM level WINDOW w AS (PARTITION BY customer_key, stage, source ORDER BY at)),
    held AS (SELECT customer_key, stage, greatest(at, from_date) AS d0, least(coalesce(next_at, to_date + 1), to_date + 1) - 1 AS d1
               FROM running WHERE holds)
    SELECT d.dt::date, b, h.customer_key,
           (ARRAY['A', 'I', 'P', 'L'])[max(array_position(ARRAY['A', 'I', 'P', 'L']::bpchar[], h.stage))]
      FROM held h, LATERAL generate_series(h.d0, h.d1, interval '1 day') AS d(dt)
     WHERE h.d0 <= h.d1
     GROUP BY d.dt, h.customer_key;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RAISE NOTICE 'aipl_refresh: % customer-days for brand % from % to %', v_rows, b, from_date, to_date;
    PERFORM retail_mid.job_finish(v_job, v_rows);
    RETURN v_rows;
END;
$$;
COMMENT ON FUNCTION retail_mid.aipl_refresh(text, date, date) IS 'Rebuilds the AIPL stage history of a brand for the given days (idempotent); returns the customer-days written.';

-- Customers per stage on day d1 against their stage on day d2 ('-' = no stage).
CREATE FUNCTION retail_mid.aipl_flow(brand text, d1 date, d2 date)
RETURNS TABLE (from_stage text, to_stage text, customers bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(a.stage::text, '-'), coalesce(z.stage::text, '-'), count(*)
      FROM (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = aipl_flow.brand AND dt = aipl_flow.d1) a
      FULL JOIN (SELECT customer_key, stage FROM retail_mid.dws_aipl_customer_stage_1d WHERE brand = aipl_flow.brand AND dt = aipl_flow.d2) z
        USING (customer_key)
     GROUP BY 1, 2;
END;
COMMENT ON FUNCTION retail_mid.aipl_flow(text, date, date) IS 'AIPL flow: customers by stage on d1 and stage on d2 (''-'' for no stage).';

CREATE VIEW retail_mid.aipl_trend_30d AS
SELECT s.brand, s.dt, count(*) FILTER (WHERE s.stage = 'A') AS awareness, count(*) FILTER (WHERE s.stage = 'I') AS interest,
       count(*) FILTER (WHERE s.stage = 'P') AS purchase, count(*) FILTER (WHERE s.stage = 'L') AS loyalty
  FROM retail_mid.dws_aipl_customer_stage_1d s
  JOIN (SELECT brand, max(dt) AS last_dt FROM retail_mid.dws_aipl_customer_stage_1d GROUP BY brand) m
    ON m.brand = s.brand AND s.dt > m.last_dt - 30
 GROUP BY s.brand, s.dt;
COMMENT ON VIEW retail_mid.aipl_trend_30d IS 'Customers per AIPL stage per day over the last 30 days of each brand''s history.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.dt IS 'Day.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.awareness IS 'Customers in stage A.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.interest IS 'Customers in stage I.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.purchase IS 'Customers in stage P.';
COMMENT ON COLUMN retail_mid.aipl_trend_30d.loyalty IS 'Customers in stage L.';

-- GMV = sum over stages of (customers in the stage at the start x conversion rate x average transaction value):
-- the customers of each stage on from_date, the share of them that bought in (from_date, to_date], and their
-- average net amount per buyer. The parts add up to the GMV of those customers in the period exactly.
CREATE FUNCTION retail_mid.aipl_gmv_decomposition(brand text, from_date date, to_date date)
RETURNS TABLE (stage text, customers bigint, buyers bigint, conversion_rate numeric, avg_transaction_value numeric, gmv numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.stage::text, count(*), count(g.customer_key), round(count(g.customer_key)::numeric / count(*), 6),
           round(sum(g.net) / nullif(count(g.customer_key), 0), 4), coalesce(sum(g.net), 0)
      FROM retail_mid.dws_aipl_customer_stage_1d s
      LEFT JOIN (SELECT c.customer_key, sum(c.net_amount) AS net FROM retail_mid.dws_trade_customer_1d c
                  WHERE c.brand = aipl_gmv_decomposition.brand AND c.dt > aipl_gmv_decomposition.from_date
                    AND c.dt <= aipl_gmv_decomposition.to_date
                  GROUP BY c.customer_key HAVING sum(c.orders) > 0) g USING (customer_key)
     WHERE s.brand = aipl_gmv_decomposition.brand AND s.dt = aipl_gmv_decomposition.from_date
     GROUP BY s.stage ORDER BY array_position(ARRAY['A', 'I', 'P', 'L'], s.stage::text);
END;
COMMENT ON FUNCTION retail_mid.aipl_gmv_decomposition(text, date, date) IS 'GMV of (from_date, to_date] decomposed by the customers'' AIPL stage on from_date: customers x conversion rate x average transaction value per stage.';

-- ===== src/tags_builtin.sql =====
-- tags_builtin: RFM segment and scores, AIPL stage and customer lifetime value as tags. Each model gets a
-- source with one row per brand and customer (the data of a brand describes its customers in that brand only:
-- the tags are of scope brand) and tag definitions over it, so evaluate_tags() reads each source once for all
-- of its tags.

-- The source of the seed tags of src/audience.sql (monetary_td, orders_td, repeat_buyer, returner, lifecycle).
CREATE VIEW retail_mid.tag_source_trade_td AS
SELECT t.brand, t.customer_key, t.net_amount AS monetary, t.orders, t.return_amount,
       t.first_order_date, t.last_order_date,
       max(t.last_order_date) OVER (PARTITION BY t.brand) AS data_end
  FROM retail_mid.dws_trade_customer_td t;
COMMENT ON VIEW retail_mid.tag_source_trade_td IS 'One row per brand and customer of the to-date trade table; the source of the seed DWS tags (scope brand).';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.monetary IS 'Net amount to date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.orders IS 'Orders to date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.return_amount IS 'Returned amount to date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.first_order_date IS 'First order date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.last_order_date IS 'Last order date in the brand.';
COMMENT ON COLUMN retail_mid.tag_source_trade_td.data_end IS 'The brand''s latest order date (lifecycle is relative to it, so a brand whose data ends earlier is not aged by another brand''s newer data).';

-- RFM: per brand, each customer's latest ten_segment snapshot (several windows that day: the shorter one).
CREATE VIEW retail_mid.rfm_customer_current AS
SELECT DISTINCT ON (s.brand, s.customer_key)
       s.customer_key, s.brand, s.window_days, s.as_of, s.recency_days, s.frequency, s.monetary,
       s.r_score, s.f_score, s.m_score, s.segment
  FROM retail_mid.rfm_snapshot s
 WHERE s.map_name = 'ten_segment'
 ORDER BY s.brand, s.customer_key, s.as_of DESC, s.window_days;
COMMENT ON VIEW retail_mid.rfm_customer_current IS 'One row per brand and customer: the latest ten_segment RFM snapshot row of the customer in that brand (the shorter window when several were scored that day); the source of the rfm_* tags (scope brand).';
COMMENT ON COLUMN retail_mid.rfm_customer_current.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.brand IS 'Brand of the snapshot.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.window_days IS 'Window of frequency and monetary, in days.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.as_of IS 'Snapshot date.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.recency_days IS 'Days since the last order at as_of.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.frequency IS 'Orders within the window.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.monetary IS 'Net amount within the window.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.r_score IS 'Recency score 1..5.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.f_score IS 'Frequency score 1..5.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.m_score IS 'Monetary score 1..5.';
COMMENT ON COLUMN retail_mid.rfm_customer_current.segment IS 'ten_segment segment (NULL when no rule covers the scores).';

-- AIPL: each brand's stages on its latest staged day.
CREATE VIEW retail_mid.aipl_customer_current AS
SELECT s.customer_key, s.stage::text AS stage, s.brand, s.dt
  FROM retail_mid.dws_aipl_customer_stage_1d s
  JOIN (SELECT brand, max(dt) AS dt FROM retail_mid.dws_aipl_customer_stage_1d GROUP BY brand) l USING (brand, dt);
COMMENT ON VIEW retail_mid.aipl_customer_current IS 'One row per brand and customer staged on the brand''s latest staged day: the customer''s AIPL stage in that brand; the source of the aipl_stage tag (scope brand).';
COMMENT ON COLUMN retail_mid.aipl_customer_current.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.aipl_customer_current.stage IS 'A, I, P or L.';
COMMENT ON COLUMN retail_mid.aipl_customer_current.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.aipl_customer_current.dt IS 'That brand''s latest staged day.';

-- CLV: per-customer scores of the BG/NBD and Gamma-Gamma models fitted on the daily trade of the DWS.
CREATE TABLE retail_mid.clv_customer_score (
    customer_key  int4 NOT NULL,
    brand         text NOT NULL,
    as_of         date NOT NULL,
    x             int4 NOT NULL,
    t_x           float8 NOT NULL,
    t_cal         float8 NOT NULL,
    mean_spend    float8,
    p_alive       float8 NOT NULL,
    expected_purchases float8 NOT NULL,
    expected_spend float8 NOT NULL,
    clv           float8 NOT NULL,
    horizon_weeks int4 NOT NULL,
    discount_rate float8 NOT NULL,
    PRIMARY KEY (brand, customer_key)
);
COMMENT ON TABLE retail_mid.clv_customer_score IS 'Customer lifetime value scores written by clv_score_refresh, one set per scope (a brand, or * for all brands together; each call replaces its own scope); the brand rows are the source of the clv_* tags.';
COMMENT ON COLUMN retail_mid.clv_customer_score.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.clv_customer_score.brand IS 'Brand whose trade was modelled, * for all brands together.';
COMMENT ON COLUMN retail_mid.clv_customer_score.as_of IS 'End of the calibration period (last day of trade used).';
COMMENT ON COLUMN retail_mid.clv_customer_score.x IS 'Repeat purchase days in the calibration period.';
COMMENT ON COLUMN retail_mid.clv_customer_score.t_x IS 'Weeks from the first purchase to the last repeat.';
COMMENT ON COLUMN retail_mid.clv_customer_score.t_cal IS 'Weeks from the first purchase to as_of.';
COMMENT ON COLUMN retail_mid.clv_customer_score.mean_spend IS 'Mean net amount of the repeat days (NULL without repeats).';
COMMENT ON COLUMN retail_mid.clv_customer_score.p_alive IS 'BG/NBD probability that the customer is still active.';
COMMENT ON COLUMN retail_mid.clv_customer_score.expected_purchases IS 'BG/NBD expected purchase days in the next horizon_weeks.';
COMMENT ON COLUMN retail_mid.clv_customer_score.expected_spend IS 'Gamma-Gamma expected spend per purchase day (the population mean for customers without repeats or with a non-positive mean).';
COMMENT ON COLUMN retail_mid.clv_customer_score.clv IS 'Discounted lifetime value over horizon_weeks (weekly discount_rate).';
COMMENT ON COLUMN retail_mid.clv_customer_score.horizon_weeks IS 'Horizon of expected_purchases and clv, in weeks.';
COMMENT ON COLUMN retail_mid.clv_customer_score.discount_rate IS 'Discount rate per week.';

CREATE FUNCTION retail_mid.clv_score_refresh(as_of date, horizon_weeks int4 DEFAULT 52, discount_rate float8 DEFAULT 0.002,
                                             brand text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; n bigint; bg retail_mid.bgnbd_params; gg retail_mid.gammagamma_params; b text := brand;
BEGIN
    IF as_of IS NULL OR horizon_weeks IS NULL OR discount_rate IS NULL THEN
        RAISE EXCEPTION 'clv_score_refresh arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF horizon_weeks < 1 OR horizon_weeks > 1040 THEN
        RAISE EXCEPTION 'horizon_weeks must be between 1 and 1040' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF discount_rate < 0 OR discount_rate >= 1 OR discount_rate = 'NaN' THEN
        RAISE EXCEPTION 'discount_rate must be in [0, 1)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('clv_score_refresh', jsonb_build_object('as_of', as_of, 'horizon_weeks', horizon_weeks,
                                                                         'discount_rate', discount_rate, 'brand', b));
    -- one summary per customer in weeks; a day's orders across brands are one purchase day
    CREATE TEMP TABLE rm_clv_cbs ON COMMIT DROP AS
    SELECT d.customer_key, (retail_mid.clv_summary(d.dt, d.amount::float8, clv_score_refresh.as_of, NULL, 7)).*
      FROM (SELECT c.customer_key, c.dt, sum(c.net_amount) AS amount FROM retail_mid.dws_trade_customer_1d c
             WHERE c.orders > 0 AND c.dt <= clv_score_refresh.as_of AND (b IS NULL OR c.brand = b)
             GROUP BY 1, 2) d
     GROUP BY d.customer_key;
    DELETE FROM rm_clv_cbs WHERE x IS NULL;
    bg := (SELECT retail_mid.bgnbd_fit(c.x, c.t_x, c.t_cal) FROM rm_clv_cbs c);
    -- a repeat customer whose returns cancel the purchases has no positive mean spend: left out of the spend fit
    gg := (SELECT retail_mid.gammagamma_fit(c.x, c.mean_spend) FROM rm_clv_cbs c WHERE c.x = 0 OR c.mean_spend > 0);
    IF bg IS NULL OR gg IS NULL THEN
        RAISE EXCEPTION 'no trade on or before % to fit the lifetime value models', as_of USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM retail_mid.clv_customer_score s WHERE s.brand = coalesce(b, '*');
    INSERT INTO retail_mid.clv_customer_score
    SELECT c.customer_key, coalesce(b, '*'), clv_score_refresh.as_of, c.x, c.t_x, c.t_cal, c.mean_spend,
           retail_mid.bgnbd_p_alive(bg, c.x, c.t_x, c.t_cal),
           retail_mid.bgnbd_expected_purchases(bg, horizon_weeks, c.x, c.t_x, c.t_cal),
           retail_mid.gammagamma_expected_spend(gg, c.x, CASE WHEN c.mean_spend > 0 THEN c.mean_spend END),
           retail_mid.clv(bg, gg, c.x, c.t_x, c.t_cal, CASE WHEN c.mean_spend > 0 THEN c.mean_spend END, horizon_weeks, discount_rate),
           horizon_weeks, discount_rate
      FROM rm_clv_cbs c;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE rm_clv_cbs;
    RAISE NOTICE 'clv_score_refresh: % customers scored as of %', n, as_of;
    PERFORM retail_mid.job_finish(v_job, n, jsonb_build_object('bgnbd', to_jsonb(bg), 'gammagamma', to_jsonb(gg)));
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.clv_score_refresh(date, int4, float8, text) IS 'Fits BG/NBD and Gamma-Gamma on the daily trade up to as_of (weeks; one brand, or all brands when brand is NULL) and replaces that scope''s rows of retail_mid.clv_customer_score (the brand, or * for all brands) with P(alive), expected purchases and discounted CLV over horizon_weeks; logs the parameters to job_log; returns the customers scored.';

-- The scores of the brands (not the all-brands fit, brand '*', which mixes the brands' trade): the source of the
-- clv_* tags of scope brand.
CREATE VIEW retail_mid.tag_source_clv AS
SELECT s.brand, s.customer_key, s.as_of, s.p_alive, s.expected_purchases, s.clv
  FROM retail_mid.clv_customer_score s
 WHERE s.brand <> '*';
COMMENT ON VIEW retail_mid.tag_source_clv IS 'CLV scores of brand fits (clv_score_refresh with a brand), one row per brand and customer; the source of the clv_* tags (scope brand). The all-brands fit (brand *) is no built-in tag.';
COMMENT ON COLUMN retail_mid.tag_source_clv.brand IS 'Brand whose trade was modelled.';
COMMENT ON COLUMN retail_mid.tag_source_clv.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.tag_source_clv.as_of IS 'End of the calibration period.';
COMMENT ON COLUMN retail_mid.tag_source_clv.p_alive IS 'BG/NBD probability that the customer is still active.';
COMMENT ON COLUMN retail_mid.tag_source_clv.expected_purchases IS 'Expected purchase days over the horizon.';
COMMENT ON COLUMN retail_mid.tag_source_clv.clv IS 'Discounted lifetime value over the horizon.';

-- The tag definitions: three sources, so evaluate_tags() makes three scans for these eleven tags (all of scope
-- brand: one value per brand and customer).
INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, source, expression, numeric_scale, description, owner, scope) VALUES
 ('rfm_segment', '消费者价值', '价值', '消费者价值', '', 'enum', 'retail_mid.rfm_customer_current', 'segment', 2,
  'RFM segment of the ten_segment map (Champions, Loyal Customers, ...) at the latest snapshot.', 'retail_mid', 'brand'),
 ('rfm_r_score', '消费者价值', '价值', '忠诚度', '', 'numeric', 'retail_mid.rfm_customer_current', 'r_score', 0,
  'RFM recency score 1..5.', 'retail_mid', 'brand'),
 ('rfm_f_score', '消费者价值', '价值', '忠诚度', '', 'numeric', 'retail_mid.rfm_customer_current', 'f_score', 0,
  'RFM frequency score 1..5.', 'retail_mid', 'brand'),
 ('rfm_m_score', '消费者价值', '价值', '购买力', '', 'numeric', 'retail_mid.rfm_customer_current', 'm_score', 0,
  'RFM monetary score 1..5.', 'retail_mid', 'brand'),
 ('rfm_recency_days', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric', 'retail_mid.rfm_customer_current', 'recency_days', 0,
  'Days since the last order at the latest RFM snapshot.', 'retail_mid', 'brand'),
 ('rfm_frequency', '客户行为数据', '消费互动', '购买行为', '购买行为', 'numeric', 'retail_mid.rfm_customer_current', 'frequency', 0,
  'Orders within the RFM window.', 'retail_mid', 'brand'),
 ('rfm_monetary', '消费者价值', '价值', '购买力', '', 'numeric', 'retail_mid.rfm_customer_current', 'monetary', 2,
  'Net amount within the RFM window.', 'retail_mid', 'brand'),
 ('aipl_stage', '生命周期阶段', '所属阶段', '', '', 'enum', 'retail_mid.aipl_customer_current', 'stage', 2,
  'AIPL funnel stage (A, I, P, L) on the latest staged day.', 'retail_mid', 'brand'),
 ('clv_p_alive', '消费者价值', '价值', '忠诚度', '', 'numeric', 'retail_mid.tag_source_clv', 'p_alive', 4,
  'BG/NBD probability that the customer is still active.', 'retail_mid', 'brand'),
 ('clv_expected_purchases', '消费者价值', '价值', '消费者价值', '', 'numeric', 'retail_mid.tag_source_clv', 'expected_purchases', 4,
  'Expected purchase days over the CLV horizon.', 'retail_mid', 'brand'),
 ('clv_value', '消费者价值', '价值', '消费者价值', '', 'numeric', 'retail_mid.tag_source_clv', 'clv', 2,
  'Discounted customer lifetime value over the CLV horizon.', 'retail_mid', 'brand');

-- ===== src/forecast.sql =====
-- forecast: demand forecasting aggregates (automatic ETS, Croston/SBA/TSB/ADIDA, naive, seasonal naive),
-- their row expansion, accuracy metrics with their published definitions, and a rolling-origin backtest.

CREATE FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_date_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4) IS 'Transition function of retail_mid.forecast: collects (date, quantity) points.';
CREATE FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_date_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_date_trans(internal, date, float8, int4, jsonb) IS 'Transition function of retail_mid.forecast with options: collects (date, quantity) points.';
CREATE FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_index_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4) IS 'Transition function of retail_mid.forecast_series: collects (period, value) points.';
CREATE FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_index_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_index_trans(internal, int8, float8, int4, int4, jsonb) IS 'Transition function of retail_mid.forecast_series with options: collects (period, value) points.';
CREATE FUNCTION retail_mid.forecast_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_combine(internal, internal) IS 'Combine function of the forecast aggregates: concatenates two partial series.';
CREATE FUNCTION retail_mid.forecast_serial(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'forecast_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_serial(internal) IS 'Serialises a partial forecast series for parallel aggregation.';
CREATE FUNCTION retail_mid.forecast_deserial(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'forecast_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_deserial(bytea, internal) IS 'Deserialises a partial forecast series; rejects malformed bytes.';
CREATE FUNCTION retail_mid.forecast_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME', 'forecast_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.forecast_final(internal) IS 'Final function of the forecast aggregates: sorts the series, fills or rejects gaps, fits and forecasts.';

CREATE AGGREGATE retail_mid.forecast(day date, qty float8, horizon int4) (
    SFUNC = retail_mid.forecast_date_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast(date, float8, int4) IS 'Forecasts one daily series per group (automatic model choice by demand class and AICc); returns jsonb with model, parameters, fit statistics, point forecasts and 80%/95% intervals.';

CREATE AGGREGATE retail_mid.forecast(day date, qty float8, horizon int4, options jsonb) (
    SFUNC = retail_mid.forecast_date_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast(date, float8, int4, jsonb) IS 'Forecasts one dated series per group with options (model, ets, frequency, season_length, gaps, quantiles, max_evals, nsim, seed, alpha, beta); returns jsonb.';

CREATE AGGREGATE retail_mid.forecast_series(t int8, value float8, horizon int4, season_length int4) (
    SFUNC = retail_mid.forecast_index_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast_series(int8, float8, int4, int4) IS 'Forecasts one series indexed by an integer period (t, t+1, ...) per group with the given season length; returns jsonb.';

CREATE AGGREGATE retail_mid.forecast_series(t int8, value float8, horizon int4, season_length int4, options jsonb) (
    SFUNC = retail_mid.forecast_index_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.forecast_combine,
    SERIALFUNC = retail_mid.forecast_serial, DESERIALFUNC = retail_mid.forecast_deserial,
    FINALFUNC = retail_mid.forecast_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.forecast_series(int8, float8, int4, int4, jsonb) IS 'Forecasts one integer-indexed series per group with options; returns jsonb.';

CREATE FUNCTION retail_mid.forecast_array(y float8[], horizon int4, season_length int4, options jsonb DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'forecast_array' LANGUAGE C IMMUTABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION retail_mid.forecast_array(float8[], int4, int4, jsonb) IS 'Forecasts one series given as an array of consecutive periods (no NULLs); same models, options and result as forecast_series, periods numbered 1..n. Runs in parallel workers when called per row of a parallel scan.';

CREATE FUNCTION retail_mid.forecast_rows(result jsonb)
RETURNS TABLE (step int4, date date, mean float8, lo80 float8, hi80 float8, lo95 float8, hi95 float8)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.i, (result -> 'dates' ->> (s.i - 1))::date,
           (result -> 'mean' ->> (s.i - 1))::float8,
           (result -> 'lo80' ->> (s.i - 1))::float8, (result -> 'hi80' ->> (s.i - 1))::float8,
           (result -> 'lo95' ->> (s.i - 1))::float8, (result -> 'hi95' ->> (s.i - 1))::float8
      FROM generate_series(1, jsonb_array_length(result -> 'mean')) AS s(i)
     ORDER BY s.i;
END;
COMMENT ON FUNCTION retail_mid.forecast_rows(jsonb) IS 'Expands a forecast result to one row per step: step, date (NULL for integer-indexed series), mean and the 80%/95% interval bounds.';

CREATE FUNCTION retail_mid.forecast_quantile_rows(result jsonb)
RETURNS TABLE (step int4, quantile float8, value float8)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT s.i, q.key::float8, (q.value ->> (s.i - 1))::float8
      FROM jsonb_each(result -> 'quantiles') AS q,
           generate_series(1, jsonb_array_length(q.value)) AS s(i)
     ORDER BY 2, 1;
END;
COMMENT ON FUNCTION retail_mid.forecast_quantile_rows(jsonb) IS 'Expands the requested quantiles of a forecast result to (step, quantile, value) rows.';

-- ===== accuracy metrics =====
-- Each takes the actuals and forecasts of one horizon as arrays of equal, non-zero length without NULLs.

CREATE FUNCTION retail_mid.metric_check(actual float8[], forecast float8[])
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF actual IS NULL OR forecast IS NULL OR cardinality(actual) = 0 THEN
        RAISE EXCEPTION 'accuracy metrics need non-empty actual and forecast arrays' USING ERRCODE = '22023';
    END IF;
    IF cardinality(actual) <> cardinality(forecast) THEN
        RAISE EXCEPTION 'actual and forecast arrays differ in length (% and %)', cardinality(actual), cardinality(forecast)
            USING ERRCODE = '22023';
    END IF;
    IF array_position(actual, NULL) IS NOT NULL OR array_position(forecast, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'accuracy metrics do not accept NULL elements' USING ERRCODE = '22004';
    END IF;
    IF 'NaN'::float8 = ANY (actual || forecast) OR 'Infinity'::float8 = ANY (actual || forecast)
       OR '-Infinity'::float8 = ANY (actual || forecast) THEN
        RAISE EXCEPTION 'accuracy metrics need finite values' USING ERRCODE = '22023';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_check(float8[], float8[]) IS 'Raises an error unless actual and forecast are non-empty arrays of equal length with finite, non-NULL elements.';

CREATE FUNCTION retail_mid.mae(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT avg(abs(a - f)) FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.mae(float8[], float8[]) IS 'Mean absolute error: mean |y - f|.';

CREATE FUNCTION retail_mid.rmse(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT sqrt(avg((a - f) ^ 2)) FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.rmse(float8[], float8[]) IS 'Root mean squared error: sqrt(mean (y - f)^2).';

CREATE FUNCTION retail_mid.bias(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT avg(f - a) FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.bias(float8[], float8[]) IS 'Mean forecast error, forecast minus actual (positive = over-forecast).';

CREATE FUNCTION retail_mid.smape(actual float8[], forecast float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN (SELECT 200 * avg(CASE WHEN abs(a) + abs(f) = 0 THEN 0 ELSE abs(a - f) / (abs(a) + abs(f)) END)
              FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.smape(float8[], float8[]) IS 'Symmetric MAPE in percent as in the M4 competition: 200/h sum |y - f| / (|y| + |f|); a step where both are 0 counts as 0.';

-- The scale of MASE/RMSSE: in-sample mean |y_t - y_{t-m}|^p over t = m+1..n.
CREATE FUNCTION retail_mid.naive_scale(insample float8[], season_length int4, power int4, from_first_nonzero boolean)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_start int := 1; v_scale float8;
BEGIN
    IF insample IS NULL OR array_position(insample, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'the in-sample series must not be NULL or contain NULLs' USING ERRCODE = '22004';
    END IF;
    IF season_length IS NULL OR season_length < 1 THEN
        RAISE EXCEPTION 'season length must be at least 1' USING ERRCODE = '22023';
    END IF;
    IF from_first_nonzero THEN
        SELECT min(i) INTO v_start FROM generate_subscripts(insample, 1) AS i WHERE insample[i] <> 0;
    END IF;
    SELECT avg(abs(insample[i] - insample[i - season_length]) ^ power) INTO v_scale
      FROM generate_series(coalesce(v_start, 1) + season_length, cardinality(insample)) AS i;
    IF cardinality(insample) <= season_length THEN
        RAISE EXCEPTION 'the in-sample series is too short for a naive scale with season length %', season_length
            USING ERRCODE = '22023';
    END IF;
    RETURN v_scale;
END;
$$;
COMMENT ON FUNCTION retail_mid.naive_scale(float8[], int4, int4, boolean) IS 'In-sample mean of |y_t - y_{t-m}|^power (power 1 for MASE, 2 for RMSSE), optionally starting at the first non-zero value as in the M5 guide (NULL when no pair of values is left after it).';

CREATE FUNCTION retail_mid.mase(actual float8[], forecast float8[], insample float8[], season_length int4 DEFAULT 1)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN retail_mid.mae(actual, forecast) / nullif(retail_mid.naive_scale(insample, season_length, 1, false), 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.mase(float8[], float8[], float8[], int4) IS 'Mean absolute scaled error (Hyndman and Koehler 2006): MAE over the in-sample mean |y_t - y_{t-m}| (m = 1 naive, m = season length seasonal naive); NULL when the in-sample scale is 0 (a constant series).';

CREATE FUNCTION retail_mid.rmsse(actual float8[], forecast float8[], insample float8[], season_length int4 DEFAULT 1)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    RETURN sqrt((SELECT avg((a - f) ^ 2) FROM unnest(actual, forecast) AS u(a, f))
                / nullif(retail_mid.naive_scale(insample, season_length, 2, true), 0));
END;
$$;
COMMENT ON FUNCTION retail_mid.rmsse(float8[], float8[], float8[], int4) IS 'Root mean squared scaled error of the M5 guide: sqrt(mean (y - f)^2 / in-sample mean (y_t - y_{t-m})^2), the scale computed from the first non-zero demand on; NULL when that scale is 0.';

CREATE FUNCTION retail_mid.pinball(actual float8[], forecast float8[], quantile float8)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, forecast);
    IF quantile IS NULL OR NOT (quantile > 0 AND quantile < 1) THEN
        RAISE EXCEPTION 'quantile must be strictly between 0 and 1' USING ERRCODE = '22023';
    END IF;
    RETURN (SELECT avg(CASE WHEN a >= f THEN quantile * (a - f) ELSE (1 - quantile) * (f - a) END)
              FROM unnest(actual, forecast) AS u(a, f));
END;
$$;
COMMENT ON FUNCTION retail_mid.pinball(float8[], float8[], float8) IS 'Pinball (quantile) loss averaged over the horizon: tau (y - q) when y >= q, else (1 - tau) (q - y).';

CREATE FUNCTION retail_mid.coverage(actual float8[], lower float8[], upper float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.metric_check(actual, lower);
    PERFORM retail_mid.metric_check(actual, upper);
    RETURN (SELECT avg(CASE WHEN a >= l AND a <= u THEN 1.0 ELSE 0.0 END)
              FROM unnest(actual, lower, upper) AS x(a, l, u));
END;
$$;
COMMENT ON FUNCTION retail_mid.coverage(float8[], float8[], float8[]) IS 'Share of actuals inside [lower, upper] (interval coverage, 0..1).';

-- WRMSSE: the M5 weighted mean of per-series RMSSE, weights = each series'' dollar sales over the last 28 days.
CREATE FUNCTION retail_mid.wmean_trans(state float8[], value float8, weight float8)
RETURNS float8[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR weight IS NULL THEN
        RETURN state;
    END IF;
    IF weight < 0 OR weight = 'Infinity'::float8 OR weight = 'NaN'::float8 THEN
        RAISE EXCEPTION 'weights must be finite and non-negative' USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY[state[1] + value * weight, state[2] + weight];
END;
$$;
COMMENT ON FUNCTION retail_mid.wmean_trans(float8[], float8, float8) IS 'Transition function of retail_mid.wrmsse: sums weight x value and weight.';
CREATE FUNCTION retail_mid.wmean_combine(a float8[], b float8[])
RETURNS float8[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY[a[1] + b[1], a[2] + b[2]];
COMMENT ON FUNCTION retail_mid.wmean_combine(float8[], float8[]) IS 'Combine function of retail_mid.wrmsse.';
CREATE FUNCTION retail_mid.wmean_final(state float8[])
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN state[2] > 0 THEN state[1] / state[2] END;
COMMENT ON FUNCTION retail_mid.wmean_final(float8[]) IS 'Final function of retail_mid.wrmsse: the weighted mean, NULL when all weights are 0.';
CREATE AGGREGATE retail_mid.wrmsse(rmsse float8, dollar_weight float8) (
    SFUNC = retail_mid.wmean_trans, STYPE = float8[], INITCOND = '{0,0}',
    COMBINEFUNC = retail_mid.wmean_combine, FINALFUNC = retail_mid.wmean_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.wrmsse(float8, float8) IS 'Weighted RMSSE of the M5 guide: sum(w_i RMSSE_i) / sum(w_i), w_i = series i dollar sales over the last 28 days of the training data.';

-- ===== rolling-origin backtest =====
CREATE FUNCTION retail_mid.forecast_backtest(y float8[], horizon int4, origins int4, season_length int4,
                                             options jsonb DEFAULT '{}', stride int4 DEFAULT 1)
RETURNS TABLE (origin int4, step int4, actual float8, mean float8, lo80 float8, hi80 float8, lo95 float8, hi95 float8)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n int := cardinality(y); v_cut int; v_res jsonb;
BEGIN
    IF y IS NULL OR horizon IS NULL OR origins IS NULL OR season_length IS NULL OR stride IS NULL THEN
        RAISE EXCEPTION 'forecast_backtest arguments must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF origins < 1 OR stride < 1 OR horizon < 1 THEN
        RAISE EXCEPTION 'horizon, origins and stride must be at least 1' USING ERRCODE = '22023';
    END IF;
    IF v_n - horizon - (origins - 1) * stride < 1 THEN
        RAISE EXCEPTION 'series of % points is too short for % origins of horizon % and stride %', v_n, origins, horizon, stride
            USING ERRCODE = '22023';
    END IF;
    FOR k IN 1 .. origins LOOP
        v_cut := v_n - horizon - (origins - k) * stride;
        SELECT retail_mid.forecast_series(t, y[t], horizon, season_length, coalesce(options, '{}'))
          INTO v_res FROM generate_series(1, v_cut) AS t;
        RETURN QUERY
            SELECT v_cut, r.step, y[v_cut + r.step], r.mean, r.lo80, r.hi80, r.lo95, r.hi95
              FROM retail_mid.forecast_rows(v_res) AS r;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.forecast_backtest(float8[], int4, int4, int4, jsonb, int4) IS 'Rolling-origin evaluation (Tashman 2000): fits on y[1..origin] for origins n-h-(k-1)*stride, k = origins..1, and returns each step''s forecast next to the actual.';

-- ===== src/promo.sql =====
-- promo: promotion attribution. A parallel least-squares aggregate and, on the ODS sales and promotions, a
-- log-log demand model per SKU pooled across stores: ln(units) on ln(own price), deal share and feature share,
-- with store fixed effects (within transformation); coefficients are the own-price elasticity and the deal and
-- feature uplifts, and each promoted week's units are split into base, deal and feature parts.

CREATE FUNCTION retail_mid.ols_trans(internal, float8, float8[])
RETURNS internal AS 'MODULE_PATHNAME', 'ols_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_trans(internal, float8, float8[]) IS 'Transition function of retail_mid.ols: accumulates X''X, X''y, y''y and n.';
CREATE FUNCTION retail_mid.ols_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'ols_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_combine(internal, internal) IS 'Combine function of retail_mid.ols: adds the sufficient statistics.';
CREATE FUNCTION retail_mid.ols_serial(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'ols_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_serial(internal) IS 'Serialises a partial least-squares state.';
CREATE FUNCTION retail_mid.ols_deserial(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'ols_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_deserial(bytea, internal) IS 'Deserialises a partial least-squares state; rejects malformed bytes.';
CREATE FUNCTION retail_mid.ols_final(internal)
RETURNS jsonb AS 'MODULE_PATHNAME', 'ols_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.ols_final(internal) IS 'Final function of retail_mid.ols: solves the normal equations.';
CREATE AGGREGATE retail_mid.ols(y float8, x float8[]) (
    SFUNC = retail_mid.ols_trans, STYPE = internal,
    COMBINEFUNC = retail_mid.ols_combine,
    SERIALFUNC = retail_mid.ols_serial, DESERIALFUNC = retail_mid.ols_deserial,
    FINALFUNC = retail_mid.ols_final, FINALFUNC_MODIFY = READ_ONLY,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE retail_mid.ols(float8, float8[]) IS 'Ordinary least squares of y on up to 32 regressors (put 1 first for an intercept): jsonb {n, k, coef[], se[], sigma, r2}; NULL when X''X is singular or n <= k. Rows with a NULL y or x are left out.';

-- Weekly store x SKU panel from the ODS: units, average paid price, and the deal/feature shares of the week.
CREATE FUNCTION retail_mid.promo_panel(brand text)
RETURNS TABLE (sku_id text, store_id text, week date, units float8, price float8, deal float8, feature float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT l.sku_id, o.store_id, date_trunc('week', o.order_time)::date AS week,
           sum(l.quantity)::float8, (sum(l.quantity * l.unit_price) / nullif(sum(l.quantity), 0))::float8,
           coalesce(max(coalesce(p.display_share, p.display::int)), 0)::float8,
           coalesce(max(coalesce(p.feature_share, p.feature::int)), 0)::float8
      FROM retail_mid.ods_order_line l
      JOIN retail_mid.ods_order o ON o.brand = l.brand AND o.order_id = l.order_id
      LEFT JOIN retail_mid.ods_promotion p
        ON p.brand = l.brand AND p.sku_id = l.sku_id AND p.store_id = o.store_id
       AND o.order_time::date BETWEEN p.start_date AND p.end_date
     WHERE l.brand = promo_panel.brand AND o.store_id IS NOT NULL AND l.quantity > 0 AND l.unit_price > 0
     GROUP BY 1, 2, 3;
END;
COMMENT ON FUNCTION retail_mid.promo_panel(text) IS 'Weekly store x SKU sales panel of a brand from the ODS: units sold, average paid price, and the share of the week with an in-store deal (display) and with feature advertising.';

-- Elasticities per SKU, pooled across stores with store fixed effects (each variable demeaned within store x SKU).
CREATE FUNCTION retail_mid.promo_elasticities(brand text)
RETURNS TABLE (sku_id text, observations bigint, stores bigint, price_elasticity float8, price_elasticity_se float8,
               deal_coef float8, deal_uplift float8, feature_coef float8, feature_uplift float8, r2_within float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH p AS (
        SELECT pp.sku_id, pp.store_id, ln(pp.units) AS lu, ln(pp.price) AS lp, pp.deal, pp.feature
          FROM retail_mid.promo_panel(promo_elasticities.brand) pp),
    d AS (
        SELECT sku_id, store_id,
               lu - avg(lu) OVER w AS lu, lp - avg(lp) OVER w AS lp,
               deal - avg(deal) OVER w AS deal, feature - avg(feature) OVER w AS feature
          FROM p WINDOW w AS (PARTITION BY sku_id, store_id)),
    f AS (
        SELECT sku_id, count(DISTINCT store_id) AS stores,
               retail_mid.ols(lu, ARRAY[lp, deal, feature]) AS m
          FROM d GROUP BY sku_id)
    SELECT sku_id, (m->>'n')::bigint, stores,
           (m->'coef'->>0)::float8, (m->'se'->>0)::float8,
           (m->'coef'->>1)::float8, exp((m->'coef'->>1)::float8) - 1,
           (m->'coef'->>2)::float8, exp((m->'coef'->>2)::float8) - 1,
           1 - power((m->>'sigma')::float8, 2) * ((m->>'n')::float8 - 3)
               / nullif((SELECT sum(d2.lu ^ 2) FROM d d2 WHERE d2.sku_id = f.sku_id), 0)
      FROM f
     ORDER BY sku_id;
END;
COMMENT ON FUNCTION retail_mid.promo_elasticities(text) IS 'Log-log demand model per SKU pooled across stores with store fixed effects: ln(units) = a_store + e ln(price) + d deal + f feature; returns e (own-price elasticity) with its standard error, and the deal and feature uplifts exp(coef) - 1 for a full promoted week. NULL coefficients when a regressor never varies.';

-- Each promoted week's units split into base demand and the parts due to deal and feature (multiplicative model).
CREATE FUNCTION retail_mid.promo_attribution(brand text)
RETURNS TABLE (sku_id text, store_id text, week date, units float8, base_units float8, deal_units float8, feature_units float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pp.sku_id, pp.store_id, pp.week, pp.units,
           pp.units / exp(coalesce(e.deal_coef, 0) * pp.deal + coalesce(e.feature_coef, 0) * pp.feature),
           pp.units / exp(coalesce(e.feature_coef, 0) * pp.feature)
             - pp.units / exp(coalesce(e.deal_coef, 0) * pp.deal + coalesce(e.feature_coef, 0) * pp.feature),
           pp.units - pp.units / exp(coalesce(e.feature_coef, 0) * pp.feature)
      FROM retail_mid.promo_panel(promo_attribution.brand) pp
      JOIN retail_mid.promo_elasticities(promo_attribution.brand) e USING (sku_id)
     WHERE pp.deal > 0 OR pp.feature > 0
     ORDER BY 1, 2, 3;
END;
COMMENT ON FUNCTION retail_mid.promo_attribution(text) IS 'Promoted weeks with their units split into base units (what the model expects without deal and feature), the deal part and the feature part (feature attributed last); the three parts add up to the units sold.';

-- ===== src/replenish.sql =====
-- replenish: safety stock, lead-time demand, reorder point, order-up-to level and order quantities from forecasts.

CREATE FUNCTION retail_mid.normal_quantile(p float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'normal_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.normal_quantile(float8) IS 'Inverse standard normal CDF (z for a cycle service level), accurate to about 1e-15.';

CREATE FUNCTION retail_mid.safety_stock(service_level float8, sigma_demand float8, lead_time float8,
                                        mean_demand float8 DEFAULT 0, sigma_lead_time float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sigma_demand < 0 OR lead_time < 0 OR mean_demand < 0 OR sigma_lead_time < 0 THEN
        RAISE EXCEPTION 'safety stock inputs must not be negative' USING ERRCODE = '22023';
    END IF;
    RETURN retail_mid.normal_quantile(service_level)
           * sqrt(lead_time * sigma_demand ^ 2 + mean_demand ^ 2 * sigma_lead_time ^ 2);
END;
$$;
COMMENT ON FUNCTION retail_mid.safety_stock(float8, float8, float8, float8, float8) IS 'Safety stock z * sqrt(L * sigma_d^2 + d^2 * sigma_L^2) for a cycle service level (z = normal quantile); with a fixed lead time it is z * sigma_d * sqrt(L). Demand per period, lead time in periods.';

-- Lead-time demand from a forecast result: the sum of the first L point forecasts, and its quantile for a service
-- level with the per-step standard deviations read off the upper half of the 80% interval (the lower bound may be
-- clipped at 0) and added as independent (an
-- approximation: ETS forecast errors are positively correlated across steps, so this is on the low side).
CREATE FUNCTION retail_mid.lead_time_demand(result jsonb, lead_time int4, service_level float8,
                                            OUT mean float8, OUT quantile float8, OUT sigma float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lead_time < 1 OR lead_time > jsonb_array_length(result -> 'mean') THEN
        RAISE EXCEPTION 'lead time must be between 1 and the forecast horizon (%)', jsonb_array_length(result -> 'mean')
            USING ERRCODE = '22023';
    END IF;
    SELECT sum(r.mean), sqrt(sum(((r.hi80 - r.mean) / 1.2815515655446004) ^ 2))
      INTO mean, sigma FROM retail_mid.forecast_rows(result) r WHERE r.step <= lead_time;
    quantile := greatest(0, mean + retail_mid.normal_quantile(service_level) * coalesce(sigma, 0));
END;
$$;
COMMENT ON FUNCTION retail_mid.lead_time_demand(jsonb, int4, float8) IS 'Demand over the first lead_time forecast steps: its mean, its service-level quantile and sigma (per-step sigma = (hi80 - mean) / z(0.9), added as independent).';

CREATE FUNCTION retail_mid.order_quantity(on_hand float8, on_order float8, reserved float8, reorder_point float8,
                                          order_up_to float8, pack_size float8 DEFAULT 1, min_order_qty float8 DEFAULT 0)
RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_position float8 := on_hand + on_order - reserved;
    v_qty float8;
BEGIN
    IF pack_size <= 0 THEN
        RAISE EXCEPTION 'pack size must be positive' USING ERRCODE = '22023';
    END IF;
    IF min_order_qty < 0 THEN
        RAISE EXCEPTION 'minimum order quantity must not be negative' USING ERRCODE = '22023';
    END IF;
    IF order_up_to < reorder_point THEN
        RAISE EXCEPTION 'order-up-to level must not be below the reorder point' USING ERRCODE = '22023';
    END IF;
    IF v_position > reorder_point OR v_position >= order_up_to THEN
        RETURN 0;   -- with reorder point = order-up-to (base stock) a position at the level needs nothing
    END IF;
    -- the 1e-9 keeps an exact multiple (computed in floating point) from rounding up to one pack more
    v_qty := ceil((order_up_to - v_position) / pack_size - 1e-9) * pack_size;
    IF v_qty < min_order_qty THEN
        v_qty := ceil(min_order_qty / pack_size - 1e-9) * pack_size;
    END IF;
    RETURN greatest(v_qty, 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.order_quantity(float8, float8, float8, float8, float8, float8, float8) IS '(s, S) policy: when the inventory position (on hand + on order - reserved) is at or below the reorder point s and below S, order up to S, rounded up to whole packs and raised to the minimum order quantity (itself rounded up to packs); otherwise 0.';

-- ===== kernels in C (replenish.c) =====

CREATE FUNCTION retail_mid.lead_time_demand_mixture(means float8[], sigmas float8[], lead_time_mean float8,
                                                    lead_time_sd float8, service_level float8,
                                                    OUT mean float8, OUT sd float8, OUT quantile float8)
AS 'MODULE_PATHNAME', 'lead_time_demand_mixture' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.lead_time_demand_mixture(float8[], float8[], float8, float8, float8) IS 'Distribution of demand over a variable lead time: day h ~ Normal(means[h], sigmas[h]^2), days independent; lead time a whole number of days K with P(K = k) = Phi((k + 0.5 - L)/sd) - Phi((k - 0.5 - L)/sd) (tails put on 0 and on the horizon), or fixed L (fractional day pro rata) when sd = 0. Returns the mixture mean, sd and service-level quantile (bisection, clipped at 0).';

CREATE FUNCTION retail_mid.lead_time_demand_fill_rate(means float8[], sigmas float8[], lead_time_mean float8,
                                                      lead_time_sd float8, fill_rate float8, order_quantity float8,
                                                      OUT mean float8, OUT sd float8, OUT level float8,
                                                      OUT expected_shortage float8)
AS 'MODULE_PATHNAME', 'lead_time_demand_fill_rate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.lead_time_demand_fill_rate(float8[], float8[], float8, float8, float8, float8) IS 'The lead-time demand mixture of lead_time_demand_mixture; instead of a quantile, the smallest level x >= 0 whose expected shortage per cycle E[(X - x)+] (sum of w_k sd_k G((x - mean_k)/sd_k), G the normal loss function) is at most (1 - fill_rate) / fill_rate * order_quantity: the loss-function method for a target fill rate with lost sales (Silver, Pyke & Peterson). Returns the mixture mean and sd, that level and its expected shortage.';

CREATE FUNCTION retail_mid.normal_loss(k float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'normal_loss' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.normal_loss(float8) IS 'Standard normal loss function G(k) = E[(Z - k)+] = phi(k) - k (1 - Phi(k)): expected shortage per cycle in units of sigma for a safety factor k.';

CREATE FUNCTION retail_mid.fill_rate_safety_factor(fill_rate float8, sigma float8, order_quantity float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'fill_rate_safety_factor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.fill_rate_safety_factor(float8, float8, float8) IS 'Safety factor k for a target fill rate with lost sales: sigma G(k) = (1 - fill_rate) / fill_rate * order_quantity (G = normal_loss, sigma = sd of demand over the protection interval, order_quantity = expected units per cycle); safety stock = k sigma. 0 when sigma = 0; z(fill_rate) when order_quantity = 0.';

CREATE FUNCTION retail_mid.replenish_simulate(demand float8[], reorder_point float8[], order_up_to float8[],
                                              lead_time int4, initial_on_hand float8, pack_size float8 DEFAULT 1,
                                              min_order_qty float8 DEFAULT 0,
                                              OUT days int4, OUT demand_units float8, OUT sold float8, OUT lost float8,
                                              OUT fill_rate float8, OUT days_out_of_stock int4, OUT days_with_lost_sales int4,
                                              OUT avg_on_hand float8, OUT orders int4, OUT units_ordered float8,
                                              OUT final_on_hand float8, OUT cycles int4, OUT stockout_cycles int4,
                                              OUT cycle_service_level float8)
AS 'MODULE_PATHNAME', 'replenish_simulate' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.replenish_simulate(float8[], float8[], float8[], int4, float8, float8, float8) IS 'Day-by-day (s, S) simulation with lost sales: each day orders due arrive, on review days (reorder_point not NULL) an order up to order_up_to is placed when the position (on hand + on order) is at or below the reorder point (whole packs, at least min_order_qty; arrives lead_time days later, 0 = the same morning), then demand is served from stock and the rest is lost. Days out of stock = days ending with nothing on hand; fill rate = sold / demand; average on hand over end-of-day stock; a cycle runs from one arrival day to the day before the next (the last, open cycle is not counted), a stock-out cycle loses sales, cycle service level = 1 - stockout_cycles / cycles.';

CREATE FUNCTION retail_mid.replenish_simulate(demand float8[], reorder_point float8[], order_up_to float8[],
                                              lead_times int4[], initial_on_hand float8, pack_size float8 DEFAULT 1,
                                              min_order_qty float8 DEFAULT 0,
                                              OUT days int4, OUT demand_units float8, OUT sold float8, OUT lost float8,
                                              OUT fill_rate float8, OUT days_out_of_stock int4, OUT days_with_lost_sales int4,
                                              OUT avg_on_hand float8, OUT orders int4, OUT units_ordered float8,
                                              OUT final_on_hand float8, OUT cycles int4, OUT stockout_cycles int4,
                                              OUT cycle_service_level float8)
AS 'MODULE_PATHNAME', 'replenish_simulate_lead_times' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.replenish_simulate(float8[], float8[], float8[], int4[], float8, float8, float8) IS 'replenish_simulate with one lead time per day: an order placed on day t arrives lead_times[t] days later (0 to 3660; NULL allowed only on days without a review), so a later order can arrive before an earlier one (orders cross).';

-- Lead times drawn for a simulation: K = floor(L + sd z + 1/2) clipped to [0, 3660], z = Phi^-1(u), u from
-- synth_uniform(seed, stream, day): the discretised normal of lead_time_demand_mixture, P(K = k) =
-- Phi((k + 1/2 - L)/sd) - Phi((k - 1/2 - L)/sd), the mass below 1/2 on 0.
CREATE FUNCTION retail_mid.replenish_lead_time_draws(lead_time_mean float8, lead_time_sd float8, days int4,
                                                     seed bigint DEFAULT 1, stream int4 DEFAULT 0)
RETURNS int4[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (lead_time_mean >= 0 AND lead_time_mean <= 3660) OR NOT (lead_time_sd >= 0 AND lead_time_sd <= 3660) THEN
        RAISE EXCEPTION 'lead time mean and sd must be between 0 and 3660 days' USING ERRCODE = '22023',
            DETAIL = format('Got mean %s and sd %s.', lead_time_mean, lead_time_sd);
    END IF;
    IF days < 1 OR days > 100000 THEN
        RAISE EXCEPTION 'days must be between 1 and 100000' USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY(
        SELECT CASE WHEN u.u <= 0 THEN 0
                    ELSE least(3660, greatest(0, floor(lead_time_mean + lead_time_sd * retail_mid.normal_quantile(u.u) + 0.5)))::int4 END
          FROM generate_series(1, days) i, LATERAL (SELECT retail_mid.synth_uniform(seed, stream, i) AS u) u
         ORDER BY i);
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_lead_time_draws(float8, float8, int4, bigint, int4) IS 'One pseudo-random lead time per day (deterministic in seed and stream): K = floor(L + sd z + 1/2), z standard normal from synth_uniform, clipped to [0, 3660] days; P(K = k) = Phi((k + 1/2 - L)/sd) - Phi((k - 1/2 - L)/sd), the mass below 1/2 on 0, the lead-time distribution the quantile method assumes.';

-- ===== parameters: lead times, review period, packs, service level =====

CREATE TABLE retail_mid.replenish_parameter (
    brand          text NOT NULL,
    source_id      text NOT NULL DEFAULT '*',
    sku_id         text NOT NULL DEFAULT '*',
    category       text NOT NULL DEFAULT '*',
    lead_time_mean float8 CHECK (lead_time_mean >= 0 AND lead_time_mean <= 365),
    lead_time_sd   float8 CHECK (lead_time_sd >= 0 AND lead_time_sd <= 365),
    review_period  int4   NOT NULL DEFAULT 7 CHECK (review_period BETWEEN 1 AND 365),
    pack_size      float8 NOT NULL DEFAULT 1 CHECK (pack_size > 0 AND pack_size < 1e9),
    min_order_qty  float8 NOT NULL DEFAULT 0 CHECK (min_order_qty >= 0 AND min_order_qty < 1e12),
    service_level  float8 NOT NULL DEFAULT 0.95 CHECK (service_level > 0 AND service_level < 1),
    service_measure text  NOT NULL DEFAULT 'cycle' CHECK (service_measure IN ('cycle', 'fill_rate')),
    lot_days       int4   NOT NULL DEFAULT 0 CHECK (lot_days BETWEEN 0 AND 365),
    unit_margin    float8 CHECK (unit_margin >= 0 AND unit_margin < 1e12),
    PRIMARY KEY (brand, source_id, sku_id, category),
    CHECK (sku_id = '*' OR category = '*'),
    CHECK (lead_time_mean IS NOT NULL OR lead_time_sd IS NULL)
);
COMMENT ON TABLE retail_mid.replenish_parameter IS 'Replenishment parameters per brand, source (supplier or shipping site) and item (SKU, category or *). For a store x SKU the most specific row wins: SKU, then category level 4, 3, 2, 1, then *; among rows of equal item specificity one naming the store''s source beats source *. A NULL lead time means: estimate it from ods_inbound_shipment.';
COMMENT ON COLUMN retail_mid.replenish_parameter.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_parameter.source_id IS 'Supplier or shipping site (ods_inbound_shipment.supplier_id, or the store''s parent_site_id), * for any.';
COMMENT ON COLUMN retail_mid.replenish_parameter.sku_id IS 'SKU the row applies to, * for any (then category may narrow it).';
COMMENT ON COLUMN retail_mid.replenish_parameter.category IS 'Category value matched against category_l1 .. category_l4 of the SKU, * for any.';
COMMENT ON COLUMN retail_mid.replenish_parameter.lead_time_mean IS 'Mean lead time in days from order to receipt; NULL: estimated from received inbound shipments of the source.';
COMMENT ON COLUMN retail_mid.replenish_parameter.lead_time_sd IS 'Standard deviation of the lead time in days (NULL with a given mean = 0).';
COMMENT ON COLUMN retail_mid.replenish_parameter.review_period IS 'Days between two order reviews (the order-up-to level covers it).';
COMMENT ON COLUMN retail_mid.replenish_parameter.pack_size IS 'Orders are whole multiples of this.';
COMMENT ON COLUMN retail_mid.replenish_parameter.min_order_qty IS 'Smallest order, rounded up to whole packs.';
COMMENT ON COLUMN retail_mid.replenish_parameter.service_level IS 'Target service: a cycle service level (probability of no stock-out over the protection interval, lead time + review period) or a fill rate (share of demand served from stock), as service_measure says.';
COMMENT ON COLUMN retail_mid.replenish_parameter.lot_days IS 'Days of mean forecast demand between the reorder point and the order-up-to level: 0 = order up to the reorder point at every review where the position is below it (the (R, S) base-stock policy); more = larger, rarer orders and more stock.';
COMMENT ON COLUMN retail_mid.replenish_parameter.unit_margin IS 'Margin of one unit sold (price - cost); suggested_transfers skips a transfer whose cost exceeds the margin of the units it moves. NULL: unknown, no cost check.';
COMMENT ON COLUMN retail_mid.replenish_parameter.service_measure IS 'cycle: service_level is a cycle service level (safety factor z = Phi^-1(service_level)); fill_rate: it is a target fill rate, safety stock by the loss-function method (expected shortage per cycle = (1 - fill rate) / fill rate x review-period demand, lost sales).';

-- Lead times observed: one value per shipment (its earliest ordered and latest received day over its lines).
CREATE VIEW retail_mid.replenish_lead_time_history AS
SELECT brand, source_id, coalesce(site_id, '*')::text AS site_id, count(*)::int4 AS shipments,
       avg(days)::float8 AS lead_time_mean, coalesce(stddev_samp(days), 0)::float8 AS lead_time_sd,
       min(ordered_on) AS first_ordered_on, max(received_on) AS last_received_on
  FROM (SELECT brand, supplier_id AS source_id, site_id, shipment_id, min(ordered_on) AS ordered_on,
               max(received_on) AS received_on, max(received_on) - min(ordered_on) AS days
          FROM retail_mid.ods_inbound_shipment
         WHERE supplier_id IS NOT NULL
         GROUP BY brand, supplier_id, site_id, shipment_id
        HAVING bool_and(received_on IS NOT NULL)) s
 GROUP BY GROUPING SETS ((brand, source_id, site_id), (brand, source_id));
COMMENT ON VIEW retail_mid.replenish_lead_time_history IS 'Observed lead times (received - ordered, days) per source and receiving site, and per source over all sites (site_id *), from fully received inbound shipments.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.source_id IS 'Supplier or shipping site.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.site_id IS 'Receiving site, * for all sites together.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.shipments IS 'Received shipments.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.lead_time_mean IS 'Mean days from order to receipt.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.lead_time_sd IS 'Sample standard deviation of those days (0 for one shipment).';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.first_ordered_on IS 'Earliest order day.';
COMMENT ON COLUMN retail_mid.replenish_lead_time_history.last_received_on IS 'Latest receipt day.';

-- One lead time per fully received shipment of a source (the same shipments as replenish_lead_time_history).
CREATE FUNCTION retail_mid.replenish_shipment_lead_times(brand text, source_id text)
RETURNS TABLE (site_id text, shipment_id text, ordered_on date, received_on date, days int4)
LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT i.site_id, i.shipment_id, min(i.ordered_on), max(i.received_on), (max(i.received_on) - min(i.ordered_on))::int4
      FROM retail_mid.ods_inbound_shipment i
     WHERE i.brand = replenish_shipment_lead_times.brand AND i.supplier_id = replenish_shipment_lead_times.source_id
     GROUP BY i.site_id, i.shipment_id
    HAVING bool_and(i.received_on IS NOT NULL)
     ORDER BY 3, 2, 1;
END;
COMMENT ON FUNCTION retail_mid.replenish_shipment_lead_times(text, text) IS 'Fully received inbound shipments of a source (supplier) per receiving site: earliest order day, latest receipt day and the lead time in days between them.';

-- Observed lead times replayed over a simulation window: for each day, the lead time of the latest fully received
-- shipment from the source ordered on or before that day (before the first one: the first one), from the shipments
-- into the site when there are at least min_shipments of them, else from the shipments into all sites of the source.
CREATE FUNCTION retail_mid.replenish_lead_time_replay(brand text, source_id text, site_id text, first_day date,
                                                      days int4, min_shipments int4 DEFAULT 3,
                                                      OUT basis text, OUT shipments int4, OUT lead_times int4[])
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text := brand; src text := source_id; st text := site_id; v_site int; v_all int; v_one_site bool;
BEGIN
    IF days < 1 OR days > 100000 THEN
        RAISE EXCEPTION 'days must be between 1 and 100000' USING ERRCODE = '22023';
    END IF;
    SELECT count(*) FILTER (WHERE x.site_id = st), count(*) INTO v_site, v_all
      FROM retail_mid.replenish_shipment_lead_times(b, src) x;
    v_one_site := v_site >= min_shipments;
    basis := CASE WHEN v_one_site THEN 'history (source, site)' WHEN v_all >= min_shipments THEN 'history (source)' END;
    IF basis IS NULL THEN
        RETURN;
    END IF;
    shipments := CASE WHEN v_one_site THEN v_site ELSE v_all END;
    lead_times := ARRAY(
        WITH r AS (SELECT * FROM retail_mid.replenish_shipment_lead_times(b, src) x WHERE NOT v_one_site OR x.site_id = st)
        SELECT coalesce((SELECT r.days FROM r WHERE r.ordered_on <= first_day + i
                          ORDER BY r.ordered_on DESC, r.shipment_id DESC, r.site_id DESC LIMIT 1),
                        (SELECT r.days FROM r ORDER BY r.ordered_on, r.shipment_id, r.site_id LIMIT 1))
          FROM generate_series(0, days - 1) i ORDER BY i);
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_lead_time_replay(text, text, text, date, int4, int4) IS 'Observed lead times replayed day by day from first_day: the lead time (received - ordered, days) of the latest fully received shipment of the source ordered on or before each day (before the first: the first), from the shipments into the site if at least min_shipments, else into all sites of the source (basis says which; NULL basis and lead_times when neither has min_shipments).';

-- The parameters in force for one store x SKU (see the table comment for the precedence). The source is the
-- supplier of the latest shipment of the SKU into the site, else of any shipment into the site, else the site's
-- parent. Lead time: the rule's, else the history of (source, site) with at least min_shipments shipments, else
-- of (source, all sites), else none (basis 'none': no order can be suggested).
CREATE FUNCTION retail_mid.replenish_resolve(brand text, site_id text, sku_id text, min_shipments int4 DEFAULT 3)
RETURNS TABLE (source_id text, rule text, lead_time_mean float8, lead_time_sd float8, lead_time_basis text,
               review_period int4, pack_size float8, min_order_qty float8, service_level float8, service_measure text,
               lot_days int4, unit_margin float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT src.source_id,
           CASE WHEN r.brand IS NULL THEN 'default' ELSE format('source=%s sku=%s category=%s', r.source_id, r.sku_id, r.category) END,
           coalesce(r.lead_time_mean, h1.lead_time_mean, h2.lead_time_mean),
           CASE WHEN r.lead_time_mean IS NOT NULL THEN coalesce(r.lead_time_sd, 0)
                ELSE coalesce(h1.lead_time_sd, h2.lead_time_sd) END,
           CASE WHEN r.lead_time_mean IS NOT NULL THEN 'parameter'
                WHEN h1.lead_time_mean IS NOT NULL THEN 'history (source, site)'
                WHEN h2.lead_time_mean IS NOT NULL THEN 'history (source)' ELSE 'none' END,
           coalesce(r.review_period, 7), coalesce(r.pack_size, 1), coalesce(r.min_order_qty, 0), coalesce(r.service_level, 0.95),
           coalesce(r.service_measure, 'cycle'), coalesce(r.lot_days, 0), r.unit_margin
      FROM (SELECT coalesce(
                (SELECT i.supplier_id FROM retail_mid.ods_inbound_shipment i
                  WHERE i.brand = replenish_resolve.brand AND i.site_id = replenish_resolve.site_id
                    AND i.sku_id = replenish_resolve.sku_id AND i.supplier_id IS NOT NULL
                  ORDER BY i.ordered_on DESC, i.shipment_id DESC LIMIT 1),
                (SELECT i.supplier_id FROM retail_mid.ods_inbound_shipment i
                  WHERE i.brand = replenish_resolve.brand AND i.site_id = replenish_resolve.site_id AND i.supplier_id IS NOT NULL
                  ORDER BY i.ordered_on DESC, i.shipment_id DESC LIMIT 1),
                (SELECT st.parent_site_id FROM retail_mid.ods_site st
                  WHERE st.brand = replenish_resolve.brand AND st.site_id = replenish_resolve.site_id),
                '*') AS source_id) src
      LEFT JOIN LATERAL (
            SELECT p.*
              FROM retail_mid.replenish_parameter p
              LEFT JOIN retail_mid.ods_product pr ON pr.brand = replenish_resolve.brand AND pr.sku_id = replenish_resolve.sku_id
             WHERE p.brand = replenish_resolve.brand AND p.source_id IN (src.source_id, '*')
               AND p.sku_id IN (replenish_resolve.sku_id, '*')
               AND (p.category = '*' OR p.category IN (pr.category_l1, pr.category_l2, pr.category_l3, pr.category_l4))
             ORDER BY CASE WHEN p.sku_id <> '*' THEN 5 WHEN p.category = '*' THEN 0
                           WHEN p.category = pr.category_l4 THEN 4 WHEN p.category = pr.category_l3 THEN 3
                           WHEN p.category = pr.category_l2 THEN 2 ELSE 1 END DESC,
                      (p.source_id <> '*') DESC
             LIMIT 1) r ON true
      LEFT JOIN retail_mid.replenish_lead_time_history h1
             ON h1.brand = replenish_resolve.brand AND h1.source_id = src.source_id
            AND h1.site_id = replenish_resolve.site_id AND h1.shipments >= min_shipments
      LEFT JOIN retail_mid.replenish_lead_time_history h2
             ON h2.brand = replenish_resolve.brand AND h2.source_id = src.source_id
            AND h2.site_id = '*' AND h2.shipments >= min_shipments;
END;
COMMENT ON FUNCTION retail_mid.replenish_resolve(text, text, text, int4) IS 'Replenishment parameters in force for one site x SKU: source, the winning replenish_parameter row (or default: review 7 days, pack 1, no minimum, cycle service level 0.95, lot 0 days, margin unknown), the lead time and where it came from (parameter, history of source and site, history of source, none).';

-- ===== the policy from a forecast =====

-- Both safety-stock methods from one forecast result (daily steps). Orders are reviewed every R days and arrive L
-- days after they are placed, so the stock at a review must last until the order of the NEXT review arrives: the
-- protection interval is P = L + R (Silver, Pyke & Peterson, periodic review), not L.
--  d = mean of the horizon's point forecasts (mean daily demand), sigma1 = one-step forecast standard deviation,
--  Q = review demand = sum of the point forecasts of the R days after ceil(L) (the expected order per cycle);
--  normal: sigma_P = sqrt(P * sigma1^2 + d^2 * sdL^2), SS = k * sigma_P, reorder point = d * P + SS;
--  quantile: reorder point = the level of demand over P (lead_time_demand_mixture over the forecast's own daily
--    means and per-step sigmas, lead time L + R with sd sdL), SS = that - its mean;
--  k and the level: service_measure 'cycle': k = z(service_level), the service_level quantile;
--    'fill_rate': the loss-function method, expected shortage per cycle = (1 - b) / b * Q (b = service_level, lost
--    sales): k from fill_rate_safety_factor, the level from lead_time_demand_fill_rate;
--  order-up-to = reorder point + lot_days * d (0: the (R, S) base-stock policy, an order at every review where the
--  position is below the level). Per-step sigma = (hi80 - mean) / z(0.9): the upper half, never clipped at 0.
CREATE FUNCTION retail_mid.replenish_policy(result jsonb, lead_time_mean float8, lead_time_sd float8,
                                            review_period int4, service_level float8, service_measure text DEFAULT 'cycle',
                                            lot_days int4 DEFAULT 0,
                                            OUT mean_daily_demand float8, OUT sigma_daily float8,
                                            OUT lead_time_demand float8,
                                            OUT safety_stock_normal float8, OUT reorder_point_normal float8,
                                            OUT safety_stock_quantile float8, OUT reorder_point_quantile float8,
                                            OUT review_demand float8,
                                            OUT order_up_to_normal float8, OUT order_up_to_quantile float8)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_means float8[]; v_sig float8[]; v_h int; v_nl int; v_p float8; v_sigma_p float8; v_k float8; v_mean float8; v_level float8;
BEGIN
    IF jsonb_typeof(result -> 'mean') IS DISTINCT FROM 'array' OR jsonb_typeof(result -> 'hi80') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'not a forecast result: mean and hi80 arrays are missing' USING ERRCODE = '22023';
    END IF;
    IF review_period < 1 THEN
        RAISE EXCEPTION 'review period must be at least 1 day' USING ERRCODE = '22023';
    END IF;
    IF lot_days < 0 OR lot_days > 365 THEN
        RAISE EXCEPTION 'lot_days must be between 0 and 365' USING ERRCODE = '22023';
    END IF;
    IF service_measure NOT IN ('cycle', 'fill_rate') THEN
        RAISE EXCEPTION 'service measure must be cycle or fill_rate' USING ERRCODE = '22023';
    END IF;
    IF NOT (lead_time_mean >= 0 AND lead_time_mean <= 3660) OR NOT (lead_time_sd >= 0 AND lead_time_sd <= 3660) THEN
        RAISE EXCEPTION 'lead time mean and sd must be between 0 and 3660 days' USING ERRCODE = '22023';
    END IF;
    SELECT array_agg(e.v::float8 ORDER BY e.k),
           array_agg(greatest(0, coalesce(((result -> 'hi80' ->> (e.k::int - 1))::float8 - e.v::float8) / 1.2815515655446004, 0)) ORDER BY e.k)
      INTO v_means, v_sig
      FROM jsonb_array_elements_text(result -> 'mean') WITH ORDINALITY e(v, k);
    v_h := cardinality(v_means);
    v_nl := greatest(1, ceil(lead_time_mean)::int);
    IF v_h IS NULL OR v_nl + review_period > v_h THEN
        RAISE EXCEPTION 'forecast horizon % is shorter than the lead time plus the review period (% + % days)',
            coalesce(v_h, 0), lead_time_mean, review_period
            USING ERRCODE = '22023', HINT = 'Forecast a longer horizon.';
    END IF;
    v_p := lead_time_mean + review_period;
    mean_daily_demand := (SELECT avg(x) FROM unnest(v_means) x);
    sigma_daily := v_sig[1];
    review_demand := greatest(0, (SELECT sum(x) FROM unnest(v_means[v_nl + 1 : v_nl + review_period]) x));
    lead_time_demand := mean_daily_demand * v_p;
    v_sigma_p := sqrt(v_p * sigma_daily ^ 2 + greatest(mean_daily_demand, 0) ^ 2 * lead_time_sd ^ 2);
    IF service_measure = 'cycle' THEN
        v_k := retail_mid.normal_quantile(service_level);
        SELECT m.mean, m.quantile INTO v_mean, v_level
          FROM retail_mid.lead_time_demand_mixture(v_means, v_sig, v_p, lead_time_sd, service_level) m;
    ELSE
        v_k := retail_mid.fill_rate_safety_factor(service_level, v_sigma_p, review_demand);
        SELECT m.mean, m.level INTO v_mean, v_level
          FROM retail_mid.lead_time_demand_fill_rate(v_means, v_sig, v_p, lead_time_sd, service_level, review_demand) m;
    END IF;
    safety_stock_normal := v_k * v_sigma_p;
    reorder_point_normal := greatest(0, lead_time_demand + safety_stock_normal);
    reorder_point_quantile := v_level;
    safety_stock_quantile := v_level - v_mean;
    order_up_to_normal := reorder_point_normal + lot_days * greatest(mean_daily_demand, 0);
    order_up_to_quantile := reorder_point_quantile + lot_days * greatest(mean_daily_demand, 0);
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_policy(jsonb, float8, float8, int4, float8, text, int4) IS 'Reorder point and order-up-to level of a periodic-review (R, s, S) policy from a daily forecast result by both methods, over the protection interval P = lead time + review period: normal (d P + k sqrt(P sigma1^2 + d^2 sdL^2), d = mean daily forecast, sigma1 = one-step sd) and the level of demand over P (lead_time_demand_mixture over the forecast''s daily means and sigmas, lead time L + R); k and the level for a cycle service level (z, quantile) or, with service_measure fill_rate, a target fill rate (loss-function method, lost sales, Q = review demand); Q = review demand, the forecast demand of the review period after the lead time; order-up-to = reorder point + lot_days d (0: the (R, S) base-stock policy). lead_time_demand is d P.';

-- ===== stored forecasts =====

CREATE TABLE retail_mid.replenish_forecast (
    brand    text NOT NULL,
    site_id  text NOT NULL,
    sku_id   text NOT NULL,
    made_on  date NOT NULL,
    result   jsonb NOT NULL,
    PRIMARY KEY (brand, site_id, sku_id)
);
COMMENT ON TABLE retail_mid.replenish_forecast IS 'The latest daily demand forecast per store x SKU that replenishment uses (written by replenish_refresh_forecasts, or by the user with any forecast result of daily steps starting the day after made_on).';
COMMENT ON COLUMN retail_mid.replenish_forecast.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_forecast.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.replenish_forecast.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.replenish_forecast.made_on IS 'Last day of history; step 1 is the next day.';
COMMENT ON COLUMN retail_mid.replenish_forecast.result IS 'Forecast result (retail_mid.forecast / forecast_array jsonb).';

-- Dense daily demand (sales_quantity, 0 on days without sales) per store x SKU from the first sale in the window
-- to the window's last day: the input of the forecasts. Store sites only.
CREATE FUNCTION retail_mid.replenish_demand_arrays(brand text, first_day date, last_day date)
RETURNS TABLE (site_id text, sku_id text, first_sale date, y float8[])
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT p.store_id, p.sku_id, p.f,
           (SELECT array_agg(coalesce(t.sales_quantity, 0)::float8 ORDER BY d.d)
              FROM generate_series(p.f, last_day, interval '1 day') d(d)
              LEFT JOIN retail_mid.dws_trade_sku_store_1d t
                     ON t.brand = replenish_demand_arrays.brand AND t.store_id = p.store_id AND t.sku_id = p.sku_id AND t.dt = d.d::date)
      FROM (SELECT w.store_id, w.sku_id, min(w.dt) AS f
              FROM retail_mid.dws_trade_sku_store_1d w
              JOIN retail_mid.ods_site s ON s.brand = w.brand AND s.site_id = w.store_id AND s.kind = 'store'
             WHERE w.brand = replenish_demand_arrays.brand AND w.dt BETWEEN first_day AND last_day AND w.sales_quantity > 0
             GROUP BY w.store_id, w.sku_id) p
     ORDER BY 1, 2;
END;
COMMENT ON FUNCTION retail_mid.replenish_demand_arrays(text, date, date) IS 'Daily units sold per store x SKU as an array from the first sale in [first_day, last_day] to last_day, zero-filled.';

CREATE FUNCTION retail_mid.replenish_refresh_forecasts(brand text, as_of date DEFAULT NULL, history_days int4 DEFAULT 365,
                                                       horizon int4 DEFAULT 28, options jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_asof date := as_of; v_n bigint; b text := brand;
BEGIN
    IF brand IS NULL OR history_days IS NULL OR horizon IS NULL THEN
        RAISE EXCEPTION 'brand, history_days and horizon must not be null' USING ERRCODE = '22004';
    END IF;
    IF history_days < 7 OR history_days > 3660 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660' USING ERRCODE = '22023';
    END IF;
    v_asof := coalesce(v_asof, (SELECT max(dt) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_asof IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d', brand USING ERRCODE = '22023';
    END IF;
    v_job := retail_mid.job_start('replenish_refresh_forecasts', jsonb_build_object('brand', brand, 'as_of', v_asof,
                 'history_days', history_days, 'horizon', horizon, 'options', options));
    DELETE FROM retail_mid.replenish_forecast f WHERE f.brand = b;
    INSERT INTO retail_mid.replenish_forecast (brand, site_id, sku_id, made_on, result)
    SELECT b, a.site_id, a.sku_id, v_asof, retail_mid.forecast_array(a.y, horizon, 7, options)
      FROM retail_mid.replenish_demand_arrays(b, v_asof - history_days + 1, v_asof) a;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RAISE NOTICE 'replenish_refresh_forecasts: % store x SKU series forecast as of %', v_n, v_asof;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('series', v_n, 'as_of', v_asof));
    RETURN v_n;
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_refresh_forecasts(text, date, int4, int4, jsonb) IS 'Replaces a brand''s rows of replenish_forecast: forecast_array (daily, weekly season) of each store x SKU that sold in the history_days before as_of (default: the last day with sales), zero-filled up to as_of. Logged in job_log.';

-- ===== suggested orders =====

CREATE FUNCTION retail_mid.suggested_orders(brand text, method text DEFAULT 'normal', min_shipments int4 DEFAULT 3)
RETURNS TABLE (site_id text, sku_id text, as_of date, source_id text, rule text, lead_time_basis text,
               lead_time_mean float8, lead_time_sd float8, review_period int4, service_level float8,
               service_measure text, lot_days int4, mean_daily_demand float8, sigma_daily float8, lead_time_demand float8,
               safety_stock_normal float8, reorder_point_normal float8,
               safety_stock_quantile float8, reorder_point_quantile float8,
               reorder_point float8, order_up_to float8,
               snapshot_date date, on_hand float8, on_order float8, reserved float8, inventory_position float8,
               cover_days float8, pack_size float8, min_order_qty float8, order_qty float8, unit_margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF method IS NULL OR method NOT IN ('normal', 'quantile') THEN
        RAISE EXCEPTION 'method must be normal or quantile' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT f.site_id, f.sku_id, f.made_on, p.source_id, p.rule, p.lead_time_basis,
           p.lead_time_mean, p.lead_time_sd, p.review_period, p.service_level, p.service_measure, p.lot_days,
           pol.mean_daily_demand, pol.sigma_daily, pol.lead_time_demand,
           pol.safety_stock_normal, pol.reorder_point_normal, pol.safety_stock_quantile, pol.reorder_point_quantile,
           x.rop, x.s,
           inv.snapshot_date, coalesce(inv.on_hand, 0), coalesce(inv.on_order, 0), coalesce(inv.reserved, 0),
           coalesce(inv.on_hand, 0) + coalesce(inv.on_order, 0) - coalesce(inv.reserved, 0),
           CASE WHEN pol.mean_daily_demand > 0 THEN (coalesce(inv.on_hand, 0) - coalesce(inv.reserved, 0)) / pol.mean_daily_demand
                WHEN coalesce(inv.on_hand, 0) - coalesce(inv.reserved, 0) > 0 THEN 'Infinity'::float8 ELSE 0 END,
           p.pack_size, p.min_order_qty,
           retail_mid.order_quantity(coalesce(inv.on_hand, 0), coalesce(inv.on_order, 0), coalesce(inv.reserved, 0),
                                     x.rop, x.s, p.pack_size, p.min_order_qty),
           p.unit_margin
      FROM retail_mid.replenish_forecast f
      CROSS JOIN LATERAL retail_mid.replenish_resolve(f.brand, f.site_id, f.sku_id, min_shipments) p
      LEFT JOIN LATERAL (SELECT q.* FROM retail_mid.replenish_policy(f.result, p.lead_time_mean, p.lead_time_sd,
                                                                      p.review_period, p.service_level, p.service_measure, p.lot_days) q
                          WHERE p.lead_time_mean IS NOT NULL) pol ON true
      LEFT JOIN LATERAL (SELECT CASE method WHEN 'normal' THEN pol.reorder_point_normal ELSE pol.reorder_point_quantile END AS rop,
                                CASE method WHEN 'normal' THEN pol.order_up_to_normal ELSE pol.order_up_to_quantile END AS s) x ON true
      LEFT JOIN LATERAL (SELECT i.snapshot_date, i.on_hand::float8 AS on_hand, i.on_order::float8 AS on_order, i.reserved::float8 AS reserved
                           FROM retail_mid.ods_inventory_snapshot i
                          WHERE i.brand = f.brand AND i.site_id = f.site_id AND i.sku_id = f.sku_id AND i.snapshot_date <= f.made_on
                          ORDER BY i.snapshot_date DESC LIMIT 1) inv ON true
     WHERE f.brand = suggested_orders.brand
     ORDER BY f.site_id, f.sku_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.suggested_orders(text, text, int4) IS 'Suggested order per store x SKU of a brand: stored forecast, parameters in force (replenish_resolve), safety stock and reorder point by both methods, the one of method (normal | quantile) driving reorder point, order-up-to level and the order, stock from the latest inventory snapshot on or before the forecast day (none: 0), cover in days, order quantity in whole packs (NULL when no lead time is known).';

CREATE VIEW retail_mid.replenish_suggested_order AS
SELECT b.brand, o.* FROM (SELECT DISTINCT f.brand FROM retail_mid.replenish_forecast f) b,
       LATERAL retail_mid.suggested_orders(b.brand) o;
COMMENT ON VIEW retail_mid.replenish_suggested_order IS 'suggested_orders(brand) with the normal method for every brand that has stored forecasts.';
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('brand', 'Brand.'), ('site_id', 'Store.'), ('sku_id', 'SKU.'), ('as_of', 'Day the forecast was made (last day of history).'),
        ('source_id', 'Supplier or shipping site that replenishes the store (latest shipment, else parent site).'),
        ('rule', 'The replenish_parameter row in force, or default.'),
        ('lead_time_basis', 'parameter, history (source, site), history (source) or none.'),
        ('lead_time_mean', 'Mean lead time, days.'), ('lead_time_sd', 'Standard deviation of the lead time, days.'),
        ('review_period', 'Days between reviews.'), ('service_level', 'Target service level (cycle service level or fill rate).'),
        ('service_measure', 'cycle or fill_rate: how service_level is read.'),
        ('lot_days', 'Days of mean demand between reorder point and order-up-to level (0: base stock).'),
        ('mean_daily_demand', 'Mean of the forecast''s daily point forecasts over the horizon.'),
        ('sigma_daily', 'One-step forecast standard deviation ((hi80 - mean) / z(0.9) of step 1).'),
        ('lead_time_demand', 'Mean daily demand x protection interval (mean lead time + review period).'),
        ('safety_stock_normal', 'k sqrt(P sigma^2 + d^2 sd_L^2), P = L + R, k = z(service level) or the fill-rate factor.'),
        ('reorder_point_normal', 'Demand over the protection interval + normal safety stock.'),
        ('safety_stock_quantile', 'Quantile-method reorder point minus the mean demand over the protection interval.'),
        ('reorder_point_quantile', 'Service-level quantile (or fill-rate level) of demand over lead time + review period (variable lead time, daily forecast profile).'),
        ('reorder_point', 'Reorder point of the chosen method.'), ('order_up_to', 'Reorder point + lot_days x mean daily demand.'),
        ('snapshot_date', 'Inventory snapshot used (latest on or before as_of); NULL when there is none (stock taken as 0).'),
        ('on_hand', 'Units on hand.'), ('on_order', 'Units on order.'), ('reserved', 'Units reserved for open orders.'),
        ('inventory_position', 'on_hand + on_order - reserved.'),
        ('cover_days', 'Days the free stock (on hand - reserved) lasts at the mean daily forecast (Infinity when it is 0 with stock).'),
        ('pack_size', 'Pack size.'), ('min_order_qty', 'Minimum order.'),
        ('order_qty', 'Suggested order in units (whole packs), 0 above the reorder point, NULL without a lead time.'),
        ('unit_margin', 'Margin of one unit (replenish_parameter), NULL when unknown.')) AS c(col, txt)
    LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.replenish_suggested_order.%I IS %L', r.col, r.txt);
    END LOOP;
END $$;

-- ===== transfers between stores =====

-- Transfer lanes: what moving stock from one store to another costs and in which packs it moves.
CREATE TABLE retail_mid.replenish_transfer_lane (
    brand             text NOT NULL,
    from_site_id      text NOT NULL DEFAULT '*',
    to_site_id        text NOT NULL DEFAULT '*',
    pack_size         float8 NOT NULL DEFAULT 1 CHECK (pack_size > 0 AND pack_size < 1e9),
    cost_per_unit     float8 NOT NULL DEFAULT 0 CHECK (cost_per_unit >= 0 AND cost_per_unit < 1e12),
    cost_per_transfer float8 NOT NULL DEFAULT 0 CHECK (cost_per_transfer >= 0 AND cost_per_transfer < 1e12),
    PRIMARY KEY (brand, from_site_id, to_site_id),
    CHECK (from_site_id <> to_site_id OR from_site_id = '*')
);
COMMENT ON TABLE retail_mid.replenish_transfer_lane IS 'Cost and pack size of moving stock between two stores of a brand (* = any store). For a pair the most specific lane wins: (from, to), then (from, *), then (*, to), then (*, *); none: pack 1, no cost.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.from_site_id IS 'Giving store, * for any.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.to_site_id IS 'Receiving store, * for any.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.pack_size IS 'Transfers on this lane move whole multiples of this (rounded down).';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.cost_per_unit IS 'Cost of moving one unit.';
COMMENT ON COLUMN retail_mid.replenish_transfer_lane.cost_per_transfer IS 'Fixed cost of one transfer (one SKU, one lane).';

-- Donors: stores whose free stock covers more than cover_days days of forecast; they can give the stock above
-- cover_days of demand (floor). Receivers: stores whose position is below the reorder point; they need up to the
-- order-up-to level (ceil). Pairs of the same brand and SKU are taken nearest first (geography distance in metres,
-- ties by donor then receiver id), each moving min(what the donor still has to give, what the receiver still needs)
-- rounded down to the lane's packs; a pair is skipped when that is 0, or when the lane's cost (per transfer + per
-- unit x units) exceeds the margin of the units moved (receiver's unit_margin x units: the stock saved from being a
-- lost sale there; no margin known: no cost check).
CREATE FUNCTION retail_mid.suggested_transfers(brand text, cover_days float8 DEFAULT 28, method text DEFAULT 'normal',
                                               max_distance_m float8 DEFAULT NULL)
RETURNS TABLE (sku_id text, from_site_id text, to_site_id text, distance_m float8, quantity float8,
               from_cover_days float8, from_excess float8, to_need float8, pack_size float8, transfer_cost float8,
               margin float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record; v_sku text; v_give jsonb; v_need jsonb; v_q float8; v_cost float8;
BEGIN
    IF cover_days IS NULL OR NOT (cover_days >= 0 AND cover_days < 'Infinity') THEN
        RAISE EXCEPTION 'cover_days must be a finite number of days, not negative' USING ERRCODE = '22023';
    END IF;
    IF max_distance_m IS NOT NULL AND NOT (max_distance_m >= 0) THEN
        RAISE EXCEPTION 'max_distance_m must not be negative' USING ERRCODE = '22023';
    END IF;
    FOR r IN
        WITH o AS (SELECT so.*, st.geom FROM retail_mid.suggested_orders(brand, method) so
                     JOIN retail_mid.ods_site st ON st.brand = suggested_transfers.brand AND st.site_id = so.site_id AND st.kind = 'store'
                    WHERE st.geom IS NOT NULL AND so.reorder_point IS NOT NULL),
             give AS (SELECT o.*, floor(o.on_hand - o.reserved - suggested_transfers.cover_days * o.mean_daily_demand) AS excess
                        FROM o WHERE o.cover_days > suggested_transfers.cover_days),
             need AS (SELECT o.*, ceil(o.order_up_to - o.inventory_position) AS need
                        FROM o WHERE o.inventory_position < o.reorder_point)
        SELECT g.sku_id, g.site_id AS from_site, n.site_id AS to_site,
               ST_Distance(g.geom::geography, n.geom::geography) AS dist, g.cover_days AS cov, g.excess, n.need,
               coalesce(l.pack_size, 1) AS pack, coalesce(l.cost_per_unit, 0) AS cpu, coalesce(l.cost_per_transfer, 0) AS cpt,
               n.unit_margin
          FROM give g JOIN need n ON n.sku_id = g.sku_id AND n.site_id <> g.site_id
          LEFT JOIN LATERAL (SELECT * FROM retail_mid.replenish_transfer_lane l
                              WHERE l.brand = suggested_transfers.brand AND l.from_site_id IN (g.site_id, '*') AND l.to_site_id IN (n.site_id, '*')
                              ORDER BY (l.from_site_id <> '*') DESC, (l.to_site_id <> '*') DESC LIMIT 1) l ON true
         WHERE g.excess > 0 AND n.need > 0
           AND (max_distance_m IS NULL OR ST_DWithin(g.geom::geography, n.geom::geography, max_distance_m))
         ORDER BY g.sku_id, dist, g.site_id, n.site_id
    LOOP
        IF v_sku IS DISTINCT FROM r.sku_id THEN
            v_sku := r.sku_id; v_give := '{}'; v_need := '{}';
        END IF;
        v_q := least(coalesce((v_give ->> r.from_site)::float8, r.excess), coalesce((v_need ->> r.to_site)::float8, r.need));
        -- whole packs of the lane, never more than the donor can give (the 1e-9 keeps an exact multiple whole)
        v_q := floor(v_q / r.pack + 1e-9) * r.pack;
        CONTINUE WHEN v_q <= 0;
        v_cost := r.cpt + r.cpu * v_q;
        CONTINUE WHEN r.unit_margin IS NOT NULL AND v_cost > r.unit_margin * v_q;
        v_give := jsonb_set(v_give, ARRAY[r.from_site], to_jsonb(coalesce((v_give ->> r.from_site)::float8, r.excess) - v_q));
        v_need := jsonb_set(v_need, ARRAY[r.to_site], to_jsonb(coalesce((v_need ->> r.to_site)::float8, r.need) - v_q));
        sku_id := r.sku_id; from_site_id := r.from_site; to_site_id := r.to_site; distance_m := r.dist; quantity := v_q;
        from_cover_days := r.cov; from_excess := r.excess; to_need := r.need; pack_size := r.pack; transfer_cost := v_cost;
        margin := r.unit_margin * v_q;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.suggested_transfers(text, float8, text, float8) IS 'Stock moves between stores of a brand: stores with more than cover_days of free stock give the units above cover_days of forecast demand to stores below their reorder point (up to their order-up-to level), pairs of the same SKU nearest first (PostGIS geography distance, optionally within max_distance_m), never more than the giver''s excess or the receiver''s need, rounded down to the lane''s packs (replenish_transfer_lane); a pair whose cost (per transfer + per unit) exceeds the margin of the units moved (receiver''s unit_margin) is skipped. Returns the lane''s pack size, the transfer''s cost and that margin (NULL when unknown).';

-- plpgsql bodies resolve PostGIS names at run time: give them PostGIS's schema (unknown until install).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION retail_mid.suggested_transfers(text, float8, text, float8) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'));
END;
$$;

-- ===== service-level backtest =====

CREATE FUNCTION retail_mid.replenish_backtest(brand text, weeks int4 DEFAULT 8, method text DEFAULT 'normal',
                                              options jsonb DEFAULT '{}')
RETURNS TABLE (site_id text, sku_id text, days int4, lead_time_days int4, lead_time_model text, review_period int4,
               service_measure text, service_level float8, demand float8,
               sold float8, lost float8, fill_rate float8, days_out_of_stock int4, days_with_lost_sales int4,
               avg_on_hand float8, orders int4, units_ordered float8, cycles int4, stockout_cycles int4,
               cycle_service_level float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b text := brand; v_job bigint; v_end date; v_start date; v_hist int; v_h int; v_opts jsonb; v_max int;
    v_n int := 0; v_total int; r record; v_sim record; v_rop float8[]; v_S float8[]; v_dem float8[]; v_first int;
    v_lt int; v_k int; v_pol record; v_res jsonb; v_tot_d float8 := 0; v_tot_s float8 := 0; v_tot_oos bigint := 0;
    v_tot_days bigint := 0; v_tot_inv float8 := 0; v_tot_lost_days bigint := 0; v_tot_orders bigint := 0; v_tot_units float8 := 0;
    v_tot_cycles bigint := 0; v_tot_so bigint := 0; v_mode text; v_seed bigint; v_measure text; v_level float8;
    v_min_ship int; v_lot int; v_lts int4[]; v_replay record; v_model text; v_days int;
BEGIN
    IF brand IS NULL OR weeks IS NULL OR options IS NULL THEN
        RAISE EXCEPTION 'brand, weeks and options must not be null' USING ERRCODE = '22004';
    END IF;
    IF weeks < 1 OR weeks > 104 THEN
        RAISE EXCEPTION 'weeks must be between 1 and 104' USING ERRCODE = '22023';
    END IF;
    IF method IS NULL OR method NOT IN ('normal', 'quantile') THEN
        RAISE EXCEPTION 'method must be normal or quantile' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'replenish_backtest options must be a json object' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(options) k WHERE k NOT IN ('history_days', 'horizon', 'forecast', 'max_series', 'end_date',
                                                                          'min_shipments', 'lead_time', 'seed', 'service_level', 'service_measure', 'lot_days')) THEN
        RAISE EXCEPTION 'unknown replenish_backtest option' USING ERRCODE = '22023',
            HINT = 'Options: history_days, horizon, forecast, max_series, end_date, min_shipments, lead_time, seed, service_level, service_measure, lot_days.';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(options) e WHERE e.value = 'null'::jsonb) THEN
        RAISE EXCEPTION 'replenish_backtest options must not be null' USING ERRCODE = '22004';
    END IF;
    BEGIN
        v_hist := coalesce((options ->> 'history_days')::int, 365);
        v_h := coalesce((options ->> 'horizon')::int, 28);
        v_max := (options ->> 'max_series')::int;
        v_seed := coalesce((options ->> 'seed')::bigint, 1);
        v_level := (options ->> 'service_level')::float8;
        v_min_ship := coalesce((options ->> 'min_shipments')::int, 3);
        v_end := (options ->> 'end_date')::date;
        v_lot := (options ->> 'lot_days')::int;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'malformed replenish_backtest option value' USING ERRCODE = '22023',
            DETAIL = format('options: %s', options), HINT = 'history_days, horizon, max_series, seed, min_shipments and lot_days are integers, service_level a number, end_date a date.';
    END;
    v_opts := options -> 'forecast';
    v_mode := coalesce(options ->> 'lead_time', 'normal');
    IF v_mode NOT IN ('mean', 'normal', 'history') THEN
        RAISE EXCEPTION 'lead_time must be mean, normal or history' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', v_mode);
    END IF;
    v_measure := options ->> 'service_measure';
    IF v_measure IS NOT NULL AND v_measure NOT IN ('cycle', 'fill_rate') THEN
        RAISE EXCEPTION 'service_measure must be cycle or fill_rate' USING ERRCODE = '22023';
    END IF;
    IF v_level IS NOT NULL AND NOT (v_level > 0 AND v_level < 1) THEN
        RAISE EXCEPTION 'service_level must be strictly between 0 and 1' USING ERRCODE = '22023';
    END IF;
    IF v_lot IS NOT NULL AND (v_lot < 0 OR v_lot > 365) THEN
        RAISE EXCEPTION 'lot_days must be between 0 and 365' USING ERRCODE = '22023';
    END IF;
    IF v_max IS NOT NULL AND v_max < 1 OR v_min_ship < 1 THEN
        RAISE EXCEPTION 'max_series and min_shipments must be at least 1' USING ERRCODE = '22023';
    END IF;
    v_end := coalesce(v_end, (SELECT max(dt) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_end IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d', brand USING ERRCODE = '22023';
    END IF;
    IF v_hist < 7 OR v_hist > 3660 OR v_h < 2 OR v_h > 366 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660 and horizon between 2 and 366' USING ERRCODE = '22023';
    END IF;
    v_days := 7 * weeks;
    v_start := v_end - v_days + 1;
    v_job := retail_mid.job_start('replenish_backtest', jsonb_build_object('brand', brand, 'weeks', weeks, 'method', method,
                 'options', options, 'start', v_start, 'end', v_end));
    -- every store x SKU that sold in the history before the window or in it; y runs from history start to v_end
    CREATE TEMP TABLE rm_bt_series ON COMMIT DROP AS
    SELECT a.site_id, a.sku_id, a.first_sale, a.y
      FROM retail_mid.replenish_demand_arrays(b, v_start - v_hist, v_end) a
     ORDER BY (SELECT sum(x) FROM unnest(a.y) x) DESC, a.site_id, a.sku_id
     LIMIT v_max;
    SELECT count(*) INTO v_total FROM rm_bt_series;
    RAISE NOTICE 'replenish_backtest: % store x SKU series, % to % (% weeks), lead times %', v_total, v_start, v_end, weeks, v_mode;
    FOR r IN SELECT s.*, p.* FROM rm_bt_series s
               CROSS JOIN LATERAL retail_mid.replenish_resolve(b, s.site_id, s.sku_id, v_min_ship) p
              ORDER BY s.site_id, s.sku_id
    LOOP
        v_n := v_n + 1;
        IF v_n % 100 = 0 THEN
            RAISE NOTICE 'replenish_backtest: % of % series', v_n, v_total;
        END IF;
        CONTINUE WHEN r.lead_time_mean IS NULL;   -- no lead time known: nothing to simulate
        r.service_level := coalesce(v_level, r.service_level);
        r.service_measure := coalesce(v_measure, r.service_measure);
        r.lot_days := coalesce(v_lot, r.lot_days);
        -- index in y of the window's first day (y[1] = first_sale)
        v_first := v_start - r.first_sale + 1;
        v_dem := ARRAY(SELECT coalesce(r.y[i], 0) FROM generate_series(v_first, v_first + v_days - 1) i);
        v_rop := array_fill(NULL::float8, ARRAY[v_days]);
        v_S := array_fill(NULL::float8, ARRAY[v_days]);
        FOR v_k IN 0 .. v_days - 1 BY r.review_period LOOP
            -- forecast with the history up to the day before the review day (at most history_days days)
            IF v_first + v_k - 1 >= 1 THEN
                v_res := retail_mid.forecast_array(r.y[greatest(1, v_first + v_k - v_hist) : v_first + v_k - 1], v_h, 7, v_opts);
                v_pol := retail_mid.replenish_policy(v_res, r.lead_time_mean, r.lead_time_sd, r.review_period, r.service_level,
                                                     r.service_measure, r.lot_days);
                v_rop[v_k + 1] := CASE method WHEN 'normal' THEN v_pol.reorder_point_normal ELSE v_pol.reorder_point_quantile END;
                v_S[v_k + 1] := CASE method WHEN 'normal' THEN v_pol.order_up_to_normal ELSE v_pol.order_up_to_quantile END;
            ELSE
                v_rop[v_k + 1] := 0; v_S[v_k + 1] := 0;   -- no history yet (first sale inside the window)
            END IF;
        END LOOP;
        v_lt := round(r.lead_time_mean)::int;
        -- lead time of an order placed on each day: the rounded mean, a draw, or the observed one replayed
        v_lts := NULL;
        IF v_mode = 'history' THEN
            v_replay := retail_mid.replenish_lead_time_replay(b, r.source_id, r.site_id, v_start, v_days, v_min_ship);
            v_lts := v_replay.lead_times;
            v_model := coalesce(v_replay.basis || ', ' || v_replay.shipments || ' shipments', 'normal (no history)');
        END IF;
        IF v_mode = 'mean' THEN
            v_lts := array_fill(v_lt, ARRAY[v_days]);
            v_model := 'mean';
        ELSIF v_lts IS NULL THEN
            v_lts := retail_mid.replenish_lead_time_draws(r.lead_time_mean, r.lead_time_sd, v_days, v_seed,
                                                          hashtext(r.site_id || '|' || r.sku_id));
            v_model := coalesce(v_model, 'normal');
        END IF;
        -- start at the first review's order-up-to level (whole units), nothing on order
        v_sim := retail_mid.replenish_simulate(v_dem, v_rop, v_S, v_lts, ceil(v_S[1]), r.pack_size, r.min_order_qty);
        site_id := r.site_id; sku_id := r.sku_id; days := v_sim.days; lead_time_days := v_lt; lead_time_model := v_model;
        review_period := r.review_period; service_measure := r.service_measure; service_level := r.service_level;
        demand := v_sim.demand_units; sold := v_sim.sold; lost := v_sim.lost; fill_rate := v_sim.fill_rate;
        days_out_of_stock := v_sim.days_out_of_stock; days_with_lost_sales := v_sim.days_with_lost_sales;
        avg_on_hand := v_sim.avg_on_hand; orders := v_sim.orders; units_ordered := v_sim.units_ordered;
        cycles := v_sim.cycles; stockout_cycles := v_sim.stockout_cycles; cycle_service_level := v_sim.cycle_service_level;
        RETURN NEXT;
        v_tot_d := v_tot_d + demand; v_tot_s := v_tot_s + sold; v_tot_oos := v_tot_oos + days_out_of_stock;
        v_tot_days := v_tot_days + days; v_tot_inv := v_tot_inv + avg_on_hand * days;
        v_tot_lost_days := v_tot_lost_days + days_with_lost_sales; v_tot_orders := v_tot_orders + orders; v_tot_units := v_tot_units + units_ordered;
        v_tot_cycles := v_tot_cycles + cycles; v_tot_so := v_tot_so + stockout_cycles;
    END LOOP;
    -- the overall row: sums, fill rate = sold / demand over all series, average on hand per series-day,
    -- cycle service level over all counted cycles
    site_id := '*'; sku_id := '*'; days := v_tot_days; lead_time_days := NULL; lead_time_model := v_mode; review_period := NULL;
    service_measure := v_measure; service_level := v_level;
    demand := v_tot_d; sold := v_tot_s; lost := v_tot_d - v_tot_s; fill_rate := CASE WHEN v_tot_d > 0 THEN v_tot_s / v_tot_d END;
    days_out_of_stock := v_tot_oos; days_with_lost_sales := v_tot_lost_days;
    avg_on_hand := CASE WHEN v_tot_days > 0 THEN v_tot_inv / v_tot_days END; orders := v_tot_orders; units_ordered := v_tot_units;
    cycles := v_tot_cycles; stockout_cycles := v_tot_so;
    cycle_service_level := CASE WHEN v_tot_cycles > 0 THEN 1 - v_tot_so::float8 / v_tot_cycles END;
    RETURN NEXT;
    DROP TABLE rm_bt_series;
    RAISE NOTICE 'replenish_backtest: % series simulated, fill rate %, % series-days out of stock of %', v_n, round(fill_rate::numeric, 4), v_tot_oos, v_tot_days;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('series', v_n, 'fill_rate', fill_rate, 'days_out_of_stock', v_tot_oos,
                                  'series_days', v_tot_days, 'avg_on_hand', avg_on_hand, 'cycle_service_level', cycle_service_level,
                                  'lead_time', v_mode, 'start', v_start, 'end', v_end));
END;
$$;
COMMENT ON FUNCTION retail_mid.replenish_backtest(text, int4, text, jsonb) IS 'Service-level backtest of the suggested-order policy over the last weeks of a brand''s sales: per store x SKU, on every review day a forecast from the history up to the day before, reorder point and order-up-to by method (protection interval lead time + review period), start at the first order-up-to level (rounded up), orders arriving after a simulated lead time (option lead_time: normal = drawn from the discretised normal of the lead-time mean and sd, seed option; history = the observed lead times of the source replayed, normal draws where there is no history; mean = the rounded mean), orders may cross; demand = actual units sold, lost sales; returns fill rate, days out of stock, average on hand, cycles and cycle service level per store x SKU and an overall row (site_id and sku_id *). Options: history_days (365), horizon (28), forecast (forecast options), max_series (largest sellers first), end_date, min_shipments (3), lead_time (normal), seed (1), service_level, service_measure and lot_days (override the parameters). Logged in job_log.';

-- ===== src/site.sql =====
-- site: site selection with the Huff gravity model (demand zones, stores, candidates, scoring, calibration).
--
-- Spatial pruning and distances are done here in SQL on geography columns with GiST indexes; the Huff
-- arithmetic is done by the C aggregates huff_sales and huff_impact over plain numbers (src/site.c).
-- Distances are great-circle metres on the WGS84 mean-radius sphere (PostGIS geography with
-- use_spheroid = false). Own stores live in retail_mid.site_store until ods_site(kind = 'store') is on main
-- (site_store.store_code is meant to hold ods_site.site_id); competitors have no ODS source.

-- ---------------------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE retail_mid.site_demand_zone (
    zone_id         bigint PRIMARY KEY,
    name            text,
    geom            geometry NOT NULL,
    population      float8 NOT NULL DEFAULT 0 CHECK (population >= 0 AND population < 'Infinity'),
    households      float8 CHECK (households >= 0 AND households < 'Infinity'),
    income          float8 CHECK (income >= 0 AND income < 'Infinity'),
    spend_potential float8 CHECK (spend_potential >= 0 AND spend_potential < 'Infinity'),
    centre          geography(Point, 4326) NOT NULL,
    lon             float8 NOT NULL,
    lat             float8 NOT NULL,
    geom_4326       geometry NOT NULL,
    is_point        boolean NOT NULL
);
COMMENT ON TABLE retail_mid.site_demand_zone IS 'Demand zones of the Huff model: census tracts, grid cells or points, in any SRID, with population and purchasing power.';
COMMENT ON COLUMN retail_mid.site_demand_zone.zone_id IS 'Zone identifier.';
COMMENT ON COLUMN retail_mid.site_demand_zone.name IS 'Optional label.';
COMMENT ON COLUMN retail_mid.site_demand_zone.geom IS 'Point or (multi)polygon in any SRID other than 0; must be valid and non-empty.';
COMMENT ON COLUMN retail_mid.site_demand_zone.population IS 'Residents of the zone.';
COMMENT ON COLUMN retail_mid.site_demand_zone.households IS 'Households of the zone, if known.';
COMMENT ON COLUMN retail_mid.site_demand_zone.income IS 'Mean household income of the zone, if known.';
COMMENT ON COLUMN retail_mid.site_demand_zone.spend_potential IS 'Spending on the category per period; the Huff demand of the zone. When null, population is the demand.';
COMMENT ON COLUMN retail_mid.site_demand_zone.centre IS 'Set by trigger: centroid of geom in EPSG:4326, the point distances are measured from.';
COMMENT ON COLUMN retail_mid.site_demand_zone.lon IS 'Set by trigger: longitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_demand_zone.lat IS 'Set by trigger: latitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_demand_zone.geom_4326 IS 'Set by trigger: geom transformed to EPSG:4326, used for trade-area polygons.';
COMMENT ON COLUMN retail_mid.site_demand_zone.is_point IS 'Set by trigger: true when geom is a point (trade areas hull point zones and union polygon zones).';
CREATE INDEX site_demand_zone_centre_idx ON retail_mid.site_demand_zone USING gist (centre);
-- 2-D index for the bounding-box pruning of the batch scorer (cheaper to probe than geography's 3-D boxes)
CREATE INDEX site_demand_zone_point_idx ON retail_mid.site_demand_zone USING gist (geometry(centre));

CREATE TABLE retail_mid.site_store (
    store_id        bigint PRIMARY KEY,
    brand           text NOT NULL DEFAULT '',
    store_code      text,
    name            text,
    own             boolean NOT NULL,
    geom            geometry NOT NULL,
    attractiveness  float8 NOT NULL CHECK (attractiveness > 0 AND attractiveness < 'Infinity'),
    observed_sales  float8 CHECK (observed_sales >= 0 AND observed_sales < 'Infinity'),
    centre          geography(Point, 4326) NOT NULL,
    lon             float8 NOT NULL,
    lat             float8 NOT NULL
);
COMMENT ON TABLE retail_mid.site_store IS 'Existing stores, the brand''s own and competitors, with attractiveness; stand-in for ods_site(kind = ''store'') plus competitor data.';
COMMENT ON COLUMN retail_mid.site_store.store_id IS 'Store identifier (numeric, shared by own and competitor stores).';
COMMENT ON COLUMN retail_mid.site_store.brand IS 'Brand of the store.';
COMMENT ON COLUMN retail_mid.site_store.store_code IS 'The source system''s store id (ods_site.site_id for own stores).';
COMMENT ON COLUMN retail_mid.site_store.name IS 'Optional label.';
COMMENT ON COLUMN retail_mid.site_store.own IS 'True for the brand''s own stores (cannibalisation is reported for these), false for competitors.';
COMMENT ON COLUMN retail_mid.site_store.geom IS 'Point (or polygon: its centroid is used) in any SRID other than 0.';
COMMENT ON COLUMN retail_mid.site_store.attractiveness IS 'Positive attractiveness A: floor area, rating or any numeric score.';
COMMENT ON COLUMN retail_mid.site_store.observed_sales IS 'Observed sales per period, for calibration and comparable-store estimates (own stores).';
COMMENT ON COLUMN retail_mid.site_store.centre IS 'Set by trigger: the store point in EPSG:4326.';
COMMENT ON COLUMN retail_mid.site_store.lon IS 'Set by trigger: longitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_store.lat IS 'Set by trigger: latitude of centre in degrees.';
CREATE INDEX site_store_centre_idx ON retail_mid.site_store USING gist (centre);
CREATE INDEX site_store_point_idx ON retail_mid.site_store USING gist (geometry(centre));

CREATE TABLE retail_mid.site_candidate (
    candidate_id    bigint PRIMARY KEY,
    name            text,
    geom            geometry NOT NULL,
    attractiveness  float8 NOT NULL CHECK (attractiveness > 0 AND attractiveness < 'Infinity'),
    centre          geography(Point, 4326) NOT NULL,
    lon             float8 NOT NULL,
    lat             float8 NOT NULL
);
COMMENT ON TABLE retail_mid.site_candidate IS 'Candidate sites for a new own store, scored in batch by site_score_candidates.';
COMMENT ON COLUMN retail_mid.site_candidate.candidate_id IS 'Candidate identifier.';
COMMENT ON COLUMN retail_mid.site_candidate.name IS 'Optional label.';
COMMENT ON COLUMN retail_mid.site_candidate.geom IS 'Point (or polygon: its centroid is used) in any SRID other than 0.';
COMMENT ON COLUMN retail_mid.site_candidate.attractiveness IS 'Positive attractiveness the store would have (same scale as site_store).';
COMMENT ON COLUMN retail_mid.site_candidate.centre IS 'Set by trigger: the candidate point in EPSG:4326.';
COMMENT ON COLUMN retail_mid.site_candidate.lon IS 'Set by trigger: longitude of centre in degrees.';
COMMENT ON COLUMN retail_mid.site_candidate.lat IS 'Set by trigger: latitude of centre in degrees.';
CREATE INDEX site_candidate_centre_idx ON retail_mid.site_candidate USING gist (centre);

CREATE TABLE retail_mid.site_travel_cost (
    zone_id   bigint NOT NULL REFERENCES retail_mid.site_demand_zone ON DELETE CASCADE,
    site_kind text   NOT NULL CHECK (site_kind IN ('store', 'candidate')),
    site_id   bigint NOT NULL,
    cost      float8 NOT NULL CHECK (cost >= 0 AND cost < 'Infinity'),
    PRIMARY KEY (zone_id, site_kind, site_id)
);
COMMENT ON TABLE retail_mid.site_travel_cost IS 'Optional user-supplied travel cost (e.g. drive minutes) from zones to stores and candidates, used instead of distance when use_travel_cost is true; missing pairs are out of reach.';
COMMENT ON COLUMN retail_mid.site_travel_cost.zone_id IS 'Demand zone.';
COMMENT ON COLUMN retail_mid.site_travel_cost.site_kind IS 'store (site_store.store_id) or candidate (site_candidate.candidate_id).';
COMMENT ON COLUMN retail_mid.site_travel_cost.site_id IS 'Store or candidate id.';
COMMENT ON COLUMN retail_mid.site_travel_cost.cost IS 'Non-negative travel cost; the cut-off and min_distance are in the same unit.';

CREATE TABLE retail_mid.site_candidate_score (
    candidate_id        bigint PRIMARY KEY,
    expected_sales      float8 NOT NULL,
    demand_in_reach     float8 NOT NULL,
    market_share        float8 NOT NULL,
    zones_in_reach      int4   NOT NULL,
    trade_area          geometry NOT NULL,
    trade_area_zones    int4   NOT NULL,
    population_1km      float8 NOT NULL,
    population_3km      float8 NOT NULL,
    population_5km      float8 NOT NULL,
    income_1km          float8,
    income_3km          float8,
    income_5km          float8,
    competitors         int4   NOT NULL,
    nearest_competitor_m float8,
    cannibalisation     float8 NOT NULL,
    net_gain            float8 NOT NULL,
    comparable_estimate float8,
    alpha               float8 NOT NULL,
    beta                float8 NOT NULL,
    cutoff              float8 NOT NULL,
    scored_at           timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE retail_mid.site_candidate_score IS 'Result of the last site_score_candidates run: one row per candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_score.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_score.expected_sales IS 'Huff expected sales (demand units) of the candidate opened alone beside the existing stores.';
COMMENT ON COLUMN retail_mid.site_candidate_score.demand_in_reach IS 'Demand of the zones within the cut-off of the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_score.market_share IS 'expected_sales / demand_in_reach; 0 when no zone is in reach.';
COMMENT ON COLUMN retail_mid.site_candidate_score.zones_in_reach IS 'Zones within the cut-off.';
COMMENT ON COLUMN retail_mid.site_candidate_score.trade_area IS 'EPSG:4326 union of the zones where the candidate''s probability exceeds the threshold (convex hull for point zones); empty when none.';
COMMENT ON COLUMN retail_mid.site_candidate_score.trade_area_zones IS 'Zones in the trade area.';
COMMENT ON COLUMN retail_mid.site_candidate_score.population_1km IS 'Population of the zones whose centre is within 1 km.';
COMMENT ON COLUMN retail_mid.site_candidate_score.population_3km IS 'Population of the zones whose centre is within 3 km.';
COMMENT ON COLUMN retail_mid.site_candidate_score.population_5km IS 'Population of the zones whose centre is within 5 km.';
COMMENT ON COLUMN retail_mid.site_candidate_score.income_1km IS 'Population-weighted mean income within 1 km; null when no zone with income is there.';
COMMENT ON COLUMN retail_mid.site_candidate_score.income_3km IS 'Population-weighted mean income within 3 km; null when no zone with income is there.';
COMMENT ON COLUMN retail_mid.site_candidate_score.income_5km IS 'Population-weighted mean income within 5 km; null when no zone with income is there.';
COMMENT ON COLUMN retail_mid.site_candidate_score.competitors IS 'Competitor stores within the cut-off distance (metres, also when travel cost is used).';
COMMENT ON COLUMN retail_mid.site_candidate_score.nearest_competitor_m IS 'Distance in metres to the nearest competitor at any distance; null when there are none.';
COMMENT ON COLUMN retail_mid.site_candidate_score.cannibalisation IS 'Expected sales the brand''s own stores lose when the candidate opens (sum of site_candidate_cannibalisation).';
COMMENT ON COLUMN retail_mid.site_candidate_score.net_gain IS 'expected_sales - cannibalisation: what the brand gains.';
COMMENT ON COLUMN retail_mid.site_candidate_score.comparable_estimate IS 'Mean observed sales of the k own stores with the most similar catchment profile; null when no own store has observed sales.';
COMMENT ON COLUMN retail_mid.site_candidate_score.alpha IS 'alpha used.';
COMMENT ON COLUMN retail_mid.site_candidate_score.beta IS 'beta used.';
COMMENT ON COLUMN retail_mid.site_candidate_score.cutoff IS 'Cut-off used (metres, or travel-cost units).';
COMMENT ON COLUMN retail_mid.site_candidate_score.scored_at IS 'When the run happened.';

CREATE TABLE retail_mid.site_candidate_cannibalisation (
    candidate_id    bigint NOT NULL,
    store_id        bigint NOT NULL,
    sales_before    float8 NOT NULL,
    sales_after     float8 NOT NULL,
    cannibalisation float8 NOT NULL,
    PRIMARY KEY (candidate_id, store_id)
);
COMMENT ON TABLE retail_mid.site_candidate_cannibalisation IS 'Result of the last site_score_candidates run: expected sales of each own store sharing a zone with a candidate, before and after it opens.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.store_id IS 'Own store that shares at least one zone with the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.sales_before IS 'Expected sales of the store without the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.sales_after IS 'Expected sales of the store with the candidate open.';
COMMENT ON COLUMN retail_mid.site_candidate_cannibalisation.cannibalisation IS 'sales_before - sales_after.';

-- ---------------------------------------------------------------------------------------------------------
-- Geometry checks: clear errors instead of PostGIS internals, and the EPSG:4326 centre every query uses
-- ---------------------------------------------------------------------------------------------------------
CREATE FUNCTION retail_mid.site_prepare_geometry()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g geometry := NEW.geom;
    t text;
BEGIN
    IF g IS NULL THEN
        RETURN NEW;     -- the NOT NULL constraint reports it
    END IF;
    IF ST_IsEmpty(g) THEN
        RAISE EXCEPTION 'geometry of % must not be empty', TG_TABLE_NAME USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ST_SRID(g) = 0 THEN
        RAISE EXCEPTION 'geometry of % has no SRID', TG_TABLE_NAME
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Set one with ST_SetSRID; any SRID known to spatial_ref_sys works.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM spatial_ref_sys WHERE srid = ST_SRID(g)) THEN
        RAISE EXCEPTION 'geometry of % has unknown SRID %', TG_TABLE_NAME, ST_SRID(g) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    t := GeometryType(g);
    IF t NOT IN ('POINT', 'POLYGON', 'MULTIPOLYGON') THEN
        RAISE EXCEPTION 'geometry of % must be a point or a polygon, not %', TG_TABLE_NAME, lower(t)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT ST_IsValid(g) THEN
        RAISE EXCEPTION 'geometry of % is invalid', TG_TABLE_NAME
            USING ERRCODE = 'invalid_parameter_value', DETAIL = ST_IsValidReason(g) || '.', HINT = 'Repair it with ST_MakeValid.';
    END IF;
    NEW.centre := geography(ST_Transform(ST_Centroid(g), 4326));
    IF TG_TABLE_NAME IN ('site_demand_zone', 'site_store', 'site_candidate') THEN
        NEW.lon := ST_X(geometry(NEW.centre));
        NEW.lat := ST_Y(geometry(NEW.centre));
    END IF;
    IF TG_TABLE_NAME = 'site_demand_zone' THEN
        NEW.geom_4326 := ST_Transform(g, 4326);
        NEW.is_point := t = 'POINT';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_prepare_geometry() IS 'Trigger: rejects empty, SRID-less, unknown-SRID, non point/polygon and invalid geometries, and sets the EPSG:4326 centre (and lon/lat, geom_4326, is_point where the table has them).';

CREATE TRIGGER site_demand_zone_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.site_demand_zone
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();
CREATE TRIGGER site_store_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.site_store
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();
CREATE TRIGGER site_candidate_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.site_candidate
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();

-- ---------------------------------------------------------------------------------------------------------
-- C core
-- ---------------------------------------------------------------------------------------------------------
CREATE TYPE retail_mid.huff_store_sales AS (store_id int8, expected_sales float8, zones int4);
COMMENT ON TYPE retail_mid.huff_store_sales IS 'One store''s Huff expected sales and the number of zones it draws from.';
CREATE TYPE retail_mid.huff_impact AS (candidate_id int8, kind text, object_id int8, before float8, after float8, zones int4);
COMMENT ON TYPE retail_mid.huff_impact IS 'One row of huff_impact: kind candidate (before = demand in reach, after = expected sales, zones = zones in reach), store (expected sales of an existing store before/after the candidate opens, zones shared) or zone (before = zone demand, after = probability above threshold).';

CREATE FUNCTION retail_mid.huff_probabilities(attractiveness float8[], distance float8[], alpha float8,
                                              beta float8, min_distance float8 DEFAULT 100)
RETURNS float8[] AS 'MODULE_PATHNAME', 'huff_probabilities' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_probabilities(float8[], float8[], float8, float8, float8) IS 'Huff probabilities of one zone choosing each store: A^alpha * max(d, min_distance)^-beta, normalised to sum 1.';

CREATE FUNCTION retail_mid.huff_sales_transfn(internal, int8, int8, float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_sales_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_sales_transfn(internal, int8, int8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_sales.';
CREATE FUNCTION retail_mid.huff_impact_transfn(internal, int8, int8, text, float8, float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_impact_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_transfn(internal, int8, int8, text, float8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_impact.';
CREATE FUNCTION retail_mid.huff_combinefn(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_combinefn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_combinefn(internal, internal) IS 'Combine function of huff_sales and huff_impact (appends a worker''s pairs).';
CREATE FUNCTION retail_mid.huff_serialfn(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'huff_serialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_serialfn(internal) IS 'Serial function of huff_sales and huff_impact.';
CREATE FUNCTION retail_mid.huff_deserialfn(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_deserialfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_deserialfn(bytea, internal) IS 'Deserial function of huff_sales and huff_impact; rejects malformed bytes.';
CREATE FUNCTION retail_mid.huff_sales_finalfn(internal)
RETURNS retail_mid.huff_store_sales[] AS 'MODULE_PATHNAME', 'huff_sales_finalfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_sales_finalfn(internal) IS 'Final function of huff_sales.';
CREATE FUNCTION retail_mid.huff_impact_finalfn(internal)
RETURNS retail_mid.huff_impact[] AS 'MODULE_PATHNAME', 'huff_impact_finalfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_finalfn(internal) IS 'Final function of huff_impact.';

CREATE AGGREGATE retail_mid.huff_sales(zone_id int8, store_id int8, attractiveness float8, distance float8,
                                       demand float8, alpha float8, beta float8, min_distance float8) (
    SFUNC = retail_mid.huff_sales_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_sales_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_sales(int8, int8, float8, float8, float8, float8, float8, float8) IS 'Huff expected sales per store over (zone, store) pairs within reach: sum over zones of demand * P(zone -> store). One row per pair; demand must be the same on every row of a zone.';

CREATE AGGREGATE retail_mid.huff_impact(zone_id int8, site_id int8, role text, attractiveness float8,
                                        distance float8, demand float8, alpha float8, beta float8,
                                        min_distance float8, threshold float8) (
    SFUNC = retail_mid.huff_impact_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_impact_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_impact(int8, int8, text, float8, float8, float8, float8, float8, float8, float8) IS 'For each candidate opened alone beside the existing stores: its expected sales, each existing store''s sales before and after, and its trade-area zones. role is own, competitor or candidate.';

CREATE FUNCTION retail_mid.great_circle_distance(lon1 float8, lat1 float8, lon2 float8, lat2 float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'great_circle_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.great_circle_distance(float8, float8, float8, float8) IS 'Great-circle metres between two lon/lat points in degrees, on the sphere of PostGIS geography with use_spheroid = false (equal to ST_Distance(a::geography, b::geography, false) to rounding).';

CREATE FUNCTION retail_mid.huff_impact_geo_transfn(internal, int8, float8, float8, float8, int8, text, float8, float8,
                                                   float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_impact_geo_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_geo_transfn(internal, int8, float8, float8, float8, int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_impact_geo.';

CREATE AGGREGATE retail_mid.huff_impact_geo(zone_id int8, zone_lon float8, zone_lat float8, demand float8,
                                            site_id int8, role text, site_lon float8, site_lat float8,
                                            attractiveness float8, alpha float8, beta float8,
                                            min_distance float8, threshold float8, cutoff float8) (
    SFUNC = retail_mid.huff_impact_geo_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_impact_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_impact_geo(int8, float8, float8, float8, int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'huff_impact over (zone, site) candidate pairs given by coordinates: the great-circle distance is computed in C and pairs beyond cutoff metres are skipped, so SQL only needs a bounding-box prune (site_search_boxes).';

CREATE FUNCTION retail_mid.site_grid_cell(lon float8, lat float8, radius float8)
RETURNS int8 AS 'MODULE_PATHNAME', 'site_grid_cell' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.site_grid_cell(float8, float8, float8) IS 'Cell of a lon/lat point in the latitude/longitude grid whose cells are at least radius metres across (for pruning pairs by an equi-join).';
CREATE FUNCTION retail_mid.site_grid_cells(lon float8, lat float8, radius float8)
RETURNS int8[] AS 'MODULE_PATHNAME', 'site_grid_cells' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.site_grid_cells(float8, float8, float8) IS 'Every grid cell (site_grid_cell with the same radius) that points within radius metres of lon/lat can lie in, across the antimeridian and the poles.';

CREATE FUNCTION retail_mid.huff_impact_cell_transfn(internal, int8[], float8[], float8[], float8[], int8, text, float8, float8,
                                                    float8, float8, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'huff_impact_cell_transfn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_cell_transfn(internal, int8[], float8[], float8[], float8[], int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'Transition function of huff_impact_geo over the zones of a grid cell given as arrays.';

CREATE AGGREGATE retail_mid.huff_impact_geo(zone_ids int8[], zone_lons float8[], zone_lats float8[], demands float8[],
                                            site_id int8, role text, site_lon float8, site_lat float8,
                                            attractiveness float8, alpha float8, beta float8,
                                            min_distance float8, threshold float8, cutoff float8) (
    SFUNC = retail_mid.huff_impact_cell_transfn, STYPE = internal,
    FINALFUNC = retail_mid.huff_impact_finalfn, FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = retail_mid.huff_combinefn,
    SERIALFUNC = retail_mid.huff_serialfn, DESERIALFUNC = retail_mid.huff_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE retail_mid.huff_impact_geo(int8[], float8[], float8[], float8[], int8, text, float8, float8, float8, float8, float8, float8, float8, float8) IS 'huff_impact_geo with the zones of one grid cell per row as arrays (one row per site and cell it touches): the form the batch scorer uses, since it calls C once per site and cell instead of once per pair.';

CREATE FUNCTION retail_mid.huff_impact_batch(zone_id int8[], zone_lon float8[], zone_lat float8[], demand float8[],
    store_id int8[], store_own boolean[], store_lon float8[], store_lat float8[], store_attractiveness float8[],
    candidate_id int8[], candidate_lon float8[], candidate_lat float8[], candidate_attractiveness float8[],
    alpha float8, beta float8, min_distance float8, threshold float8, cutoff float8)
RETURNS retail_mid.huff_impact[] AS 'MODULE_PATHNAME', 'huff_impact_batch' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_impact_batch(int8[], float8[], float8[], float8[], int8[], boolean[], float8[], float8[], float8[], int8[], float8[], float8[], float8[], float8, float8, float8, float8, float8) IS 'huff_impact_geo over every zone-site pair within cutoff great-circle metres, from whole tables passed as arrays: the zones are bucketed by grid cell in C, so one call replaces the grid join (the batch scorer''s path).';

CREATE FUNCTION retail_mid.site_catchment_batch(zone_lon float8[], zone_lat float8[], population float8[], income float8[],
    candidate_id int8[], candidate_lon float8[], candidate_lat float8[], competitor_lon float8[], competitor_lat float8[],
    competitor_radius float8)
RETURNS TABLE (candidate_id int8, population_1km float8, population_3km float8, population_5km float8,
               income_1km float8, income_3km float8, income_5km float8, competitors int4, nearest_competitor_m float8)
AS 'MODULE_PATHNAME', 'site_catchment_batch' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retail_mid.site_catchment_batch(float8[], float8[], float8[], float8[], int8[], float8[], float8[], float8[], float8[], float8) IS 'site_catchment for many points at once (income NaN = unknown): population and population-weighted income within 1/3/5 km, competitors within competitor_radius, and the great-circle metres to the nearest competitor at any distance (null when there are none).';

CREATE FUNCTION retail_mid.site_trade_area_hulls(zone_id int8[], zone_lon float8[], zone_lat float8[], zone_is_point boolean[],
    pair_candidate int8[], pair_zone int8[])
RETURNS TABLE (candidate_id int8, zones int4, polygon_zones int4, zone_ids int8[], hull bytea)
AS 'MODULE_PATHNAME', 'site_trade_area_hulls' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION retail_mid.site_trade_area_hulls(int8[], float8[], float8[], boolean[], int8[], int8[]) IS 'Per candidate of the (candidate, zone) pairs: its trade-area zones, how many are polygons, and the EWKB (EPSG:4326) convex hull of its point zones as ST_ConvexHull(ST_Collect(...)) gives it (point, line when collinear, polygon); null when it has no point zone.';

-- Bounding boxes (EPSG:4326 degrees) holding every point within radius metres of (lon, lat) on the sphere:
-- the spherical cap's latitude band and its widest longitude span asin(sin r / cos lat); a second box when the
-- span crosses the antimeridian; the whole longitude range when the cap reaches a pole.
CREATE FUNCTION retail_mid.site_search_boxes(lon float8, lat float8, radius float8)
RETURNS TABLE (box geometry)
LANGUAGE sql IMMUTABLE PARALLEL SAFE   -- not STRICT and one plain SELECT, so that the planner inlines it
BEGIN ATOMIC
    SELECT v.box
      FROM (SELECT degrees(r.a) AS dlat,
                   CASE WHEN abs(lat) + degrees(r.a) >= 90 OR r.a >= pi() / 2 THEN 180
                        ELSE degrees(asin(least(1, sin(r.a) / cos(radians(lat))))) END AS dlon
              FROM (SELECT radius / 6371008.771415059 * (1 + 1e-9) + 1e-12 AS a) r) d
     CROSS JOIN LATERAL (VALUES
        (ST_MakeEnvelope(CASE WHEN d.dlon >= 180 THEN -180 ELSE lon - d.dlon END, greatest(-90, lat - d.dlat),
                         CASE WHEN d.dlon >= 180 THEN 180 ELSE lon + d.dlon END, least(90, lat + d.dlat), 4326)),
        (CASE WHEN d.dlon < 180 AND lon - d.dlon < -180
              THEN ST_MakeEnvelope(lon - d.dlon + 360, greatest(-90, lat - d.dlat), 180, least(90, lat + d.dlat), 4326) END),
        (CASE WHEN d.dlon < 180 AND lon + d.dlon > 180
              THEN ST_MakeEnvelope(-180, greatest(-90, lat - d.dlat), lon + d.dlon - 360, least(90, lat + d.dlat), 4326) END)
     ) v(box)
     WHERE v.box IS NOT NULL;
END;
COMMENT ON FUNCTION retail_mid.site_search_boxes(float8, float8, float8) IS 'EPSG:4326 boxes that contain every point within radius metres (great circle) of lon/lat, split at the antimeridian; used to prune zone-site pairs with the 2-D GiST index.';

CREATE FUNCTION retail_mid.huff_calibrate(zone_id int8[], store_id int8[], attractiveness float8[],
    distance float8[], demand float8[], observed_store_id int8[], observed_sales float8[],
    alpha0 float8 DEFAULT 1, beta0 float8 DEFAULT 2, min_distance float8 DEFAULT 100,
    OUT alpha float8, OUT beta float8, OUT scale float8, OUT sse float8, OUT rmse float8,
    OUT r_squared float8, OUT stores int4, OUT evaluations int4)
RETURNS record AS 'MODULE_PATHNAME', 'huff_calibrate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_calibrate(int8[], int8[], float8[], float8[], float8[], int8[], float8[], float8, float8, float8) IS 'Least-squares fit of alpha and beta (BOBYQA, bounds [0, 10]) so that scale * Huff sales match observed store sales; reports the closed-form scale, SSE, RMSE and R^2.';

CREATE FUNCTION retail_mid.huff_fit(zone_id int8[], store_id int8[], attractiveness float8[], distance float8[],
    demand float8[], obs_zone_id int8[], obs_store_id int8[], observed float8[], method text DEFAULT 'ml',
    fit_attractiveness boolean DEFAULT false, reference_store int8 DEFAULT NULL, alpha0 float8 DEFAULT 1,
    beta0 float8 DEFAULT 2, min_distance float8 DEFAULT 100, max_evaluations int4 DEFAULT 1000,
    OUT fit_method text, OUT alpha float8, OUT beta float8, OUT scale float8, OUT log_likelihood float8,
    OUT null_log_likelihood float8, OUT pseudo_r_squared float8, OUT r_squared float8, OUT rmse float8,
    OUT mape float8, OUT observations int4, OUT parameters int4, OUT evaluations int4, OUT converged boolean,
    OUT status text, OUT factor_store_id int8[], OUT attractiveness_factor float8[])
RETURNS record AS 'MODULE_PATHNAME', 'huff_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.huff_fit(int8[], int8[], float8[], float8[], float8[], int8[], int8[], float8[], text, boolean, int8, float8, float8, float8, int4) IS 'Fits the Huff model to observed store totals (obs_zone_id empty) or zone-level flows: method ml (Poisson, scale profiled out = multinomial likelihood) or ls (least squares, closed-form scale), NLopt L-BFGS with analytic gradients, alpha and beta in [0, 10]; with fit_attractiveness alpha is held at alpha0 and each observed store but the reference gets a multiplier on its attractiveness in [1/1000, 1000]. Reports log-likelihood, null log-likelihood, deviance pseudo-R^2, R^2, RMSE, MAPE (percent) and convergence status.';

-- ---------------------------------------------------------------------------------------------------------
-- SQL layer
-- ---------------------------------------------------------------------------------------------------------

-- The (zone, store) pairs within reach, with the distance or travel cost: the input of every Huff computation.
CREATE FUNCTION retail_mid.site_zone_store_pairs(cutoff float8, use_travel_cost boolean DEFAULT false)
RETURNS TABLE (zone_id bigint, store_id bigint, own boolean, attractiveness float8, distance float8,
               demand float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT z.zone_id, s.store_id, s.own, s.attractiveness,
           ST_Distance(z.centre, s.centre, false), coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_demand_zone z
      JOIN retail_mid.site_store s ON ST_DWithin(z.centre, s.centre, cutoff, false)
     WHERE NOT use_travel_cost
    UNION ALL
    SELECT z.zone_id, s.store_id, s.own, s.attractiveness, c.cost, coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_travel_cost c
      JOIN retail_mid.site_demand_zone z ON z.zone_id = c.zone_id
      JOIN retail_mid.site_store s ON s.store_id = c.site_id
     WHERE use_travel_cost AND c.site_kind = 'store' AND c.cost <= cutoff;
END;
COMMENT ON FUNCTION retail_mid.site_zone_store_pairs(float8, boolean) IS 'Zone-store pairs within the cut-off (great-circle metres, GiST-pruned with ST_DWithin) or, with use_travel_cost, the site_travel_cost pairs with cost <= cutoff; demand = coalesce(spend_potential, population).';

CREATE FUNCTION retail_mid.site_zone_candidate_pairs(cutoff float8, use_travel_cost boolean DEFAULT false)
RETURNS TABLE (zone_id bigint, candidate_id bigint, attractiveness float8, distance float8, demand float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT z.zone_id, c.candidate_id, c.attractiveness,
           ST_Distance(z.centre, c.centre, false), coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_candidate c
      JOIN retail_mid.site_demand_zone z ON ST_DWithin(z.centre, c.centre, cutoff, false)
     WHERE NOT use_travel_cost
    UNION ALL
    SELECT z.zone_id, c.candidate_id, c.attractiveness, t.cost, coalesce(z.spend_potential, z.population)
      FROM retail_mid.site_travel_cost t
      JOIN retail_mid.site_demand_zone z ON z.zone_id = t.zone_id
      JOIN retail_mid.site_candidate c ON c.candidate_id = t.site_id
     WHERE use_travel_cost AND t.site_kind = 'candidate' AND t.cost <= cutoff;
END;
COMMENT ON FUNCTION retail_mid.site_zone_candidate_pairs(float8, boolean) IS 'Zone-candidate pairs within the cut-off, like site_zone_store_pairs.';

CREATE FUNCTION retail_mid.site_check_model(alpha float8, beta float8, cutoff float8)
RETURNS void LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF alpha IS NULL OR beta IS NULL OR cutoff IS NULL THEN
        RAISE EXCEPTION 'alpha, beta and cutoff must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT (alpha >= 0 AND alpha <= 10) THEN
        RAISE EXCEPTION 'alpha must be between 0 and 10' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('alpha is %s.', alpha);
    END IF;
    IF NOT (beta >= 0 AND beta <= 10) THEN
        RAISE EXCEPTION 'beta must be between 0 and 10' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('beta is %s.', beta);
    END IF;
    IF NOT (cutoff > 0 AND cutoff < 'Infinity') THEN
        RAISE EXCEPTION 'cutoff must be a positive finite number' USING ERRCODE = 'invalid_parameter_value', DETAIL = format('cutoff is %s.', cutoff);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_check_model(float8, float8, float8) IS 'Validates alpha, beta and the cut-off before any spatial work is done.';

CREATE FUNCTION retail_mid.site_huff_sales(alpha float8, beta float8, cutoff float8,
                                           min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false)
RETURNS TABLE (store_id bigint, own boolean, expected_sales float8, zones int4)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.site_check_model(alpha, beta, cutoff);
    RETURN QUERY
    SELECT s.store_id, s.own, coalesce(h.expected_sales, 0), coalesce(h.zones, 0)
      FROM retail_mid.site_store s
      LEFT JOIN unnest((SELECT retail_mid.huff_sales(p.zone_id, p.store_id, p.attractiveness, p.distance, p.demand,
                                                     alpha, beta, min_distance)
                          FROM retail_mid.site_zone_store_pairs(cutoff, use_travel_cost) p)) h
             ON h.store_id = s.store_id
     ORDER BY s.store_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_huff_sales(float8, float8, float8, float8, boolean) IS 'Huff expected sales of every existing store (0 for stores with no zone in reach).';

-- Catchment profile of any point: population and population-weighted income within 1/3/5 km, competitors.
-- Pruned with site_search_boxes on the 2-D indexes, measured with great_circle_distance.
CREATE FUNCTION retail_mid.site_catchment(lon float8, lat float8, competitor_radius float8 DEFAULT 5000)
RETURNS TABLE (population_1km float8, population_3km float8, population_5km float8, income_1km float8,
               income_3km float8, income_5km float8, competitors int4, nearest_competitor_m float8)
LANGUAGE sql STABLE PARALLEL SAFE   -- not STRICT, so that the planner can inline it
BEGIN ATOMIC
    SELECT coalesce(sum(z.population) FILTER (WHERE dd.d <= 1000), 0),
           coalesce(sum(z.population) FILTER (WHERE dd.d <= 3000), 0),
           coalesce(sum(z.population), 0),
           sum(z.population * z.income) FILTER (WHERE dd.d <= 1000)
               / nullif(sum(z.population) FILTER (WHERE dd.d <= 1000 AND z.income IS NOT NULL), 0),
           sum(z.population * z.income) FILTER (WHERE dd.d <= 3000)
               / nullif(sum(z.population) FILTER (WHERE dd.d <= 3000 AND z.income IS NOT NULL), 0),
           sum(z.population * z.income) / nullif(sum(z.population) FILTER (WHERE z.income IS NOT NULL), 0),
           (SELECT count(*)::int4
              FROM retail_mid.site_search_boxes(site_catchment.lon, site_catchment.lat, competitor_radius) cb
              JOIN retail_mid.site_store s ON geometry(s.centre) && cb.box
             WHERE NOT s.own
               AND retail_mid.great_circle_distance(s.lon, s.lat, site_catchment.lon, site_catchment.lat) <= competitor_radius),
           (SELECT retail_mid.great_circle_distance(s.lon, s.lat, site_catchment.lon, site_catchment.lat)
              FROM retail_mid.site_store s WHERE NOT s.own
             ORDER BY s.centre <-> geography(ST_SetSRID(ST_MakePoint(site_catchment.lon, site_catchment.lat), 4326)) LIMIT 1)
      FROM retail_mid.site_search_boxes(site_catchment.lon, site_catchment.lat, 5000) b
      JOIN retail_mid.site_demand_zone z ON geometry(z.centre) && b.box
     CROSS JOIN LATERAL (SELECT retail_mid.great_circle_distance(z.lon, z.lat, site_catchment.lon, site_catchment.lat) AS d) dd
     WHERE dd.d <= 5000;
END;
COMMENT ON FUNCTION retail_mid.site_catchment(float8, float8, float8) IS 'Catchment profile of a lon/lat point: population and population-weighted mean income of the zones whose centre is within 1, 3 and 5 km (great circle), competitors within competitor_radius metres and the distance to the nearest competitor (null when there is none).';

-- Comparable-store estimate: the k own stores with observed sales whose catchment profile is closest
-- (z-scored population 1/3/5 km, income 5 km, competitors; Euclidean distance).
CREATE FUNCTION retail_mid.site_comparable_stores(candidate_id bigint, k int4 DEFAULT 5, competitor_radius float8 DEFAULT 5000)
RETURNS TABLE (store_id bigint, profile_distance float8, observed_sales float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF k IS NULL OR k < 1 THEN
        RAISE EXCEPTION 'k must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH prof AS (
        SELECT s.store_id AS id, false AS is_candidate, s.observed_sales AS sales, p.*
          FROM retail_mid.site_store s CROSS JOIN LATERAL retail_mid.site_catchment(s.lon, s.lat, competitor_radius) p
         WHERE s.own AND s.observed_sales IS NOT NULL
        UNION ALL
        SELECT c.candidate_id, true, NULL, p.*
          FROM retail_mid.site_candidate c CROSS JOIN LATERAL retail_mid.site_catchment(c.lon, c.lat, competitor_radius) p
         WHERE c.candidate_id = site_comparable_stores.candidate_id
    ), stats AS (
        SELECT avg(population_1km) m1, nullif(stddev_pop(population_1km), 0) s1,
               avg(population_3km) m3, nullif(stddev_pop(population_3km), 0) s3,
               avg(population_5km) m5, nullif(stddev_pop(population_5km), 0) s5,
               avg(income_5km) mi, nullif(stddev_pop(income_5km), 0) si,
               avg(competitors) mc, nullif(stddev_pop(competitors), 0) sc
          FROM prof WHERE NOT is_candidate
    ), z AS (
        SELECT p.id, p.is_candidate, p.sales,
               coalesce((p.population_1km - m1) / s1, 0) z1, coalesce((p.population_3km - m3) / s3, 0) z3,
               coalesce((p.population_5km - m5) / s5, 0) z5, coalesce((p.income_5km - mi) / si, 0) zi,
               coalesce((p.competitors - mc) / sc, 0) zc
          FROM prof p CROSS JOIN stats
    )
    SELECT o.id, sqrt((o.z1 - c.z1)^2 + (o.z3 - c.z3)^2 + (o.z5 - c.z5)^2 + (o.zi - c.zi)^2 + (o.zc - c.zc)^2),
           o.sales
      FROM z o CROSS JOIN z c
     WHERE NOT o.is_candidate AND c.is_candidate
     ORDER BY 2, 1
     LIMIT k;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_comparable_stores(bigint, int4, float8) IS 'The k own stores with observed sales whose catchment profile (population 1/3/5 km, income 5 km, competitors; z-scored) is nearest to the candidate''s, with their sales.';

-- Batch scoring of every candidate. Replaces the contents of site_candidate_score and
-- site_candidate_cannibalisation; returns the number of candidates scored.
CREATE FUNCTION retail_mid.site_score_candidates(alpha float8, beta float8, cutoff float8,
    threshold float8 DEFAULT 0.5, min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false,
    k_comparable int4 DEFAULT 5)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint;
    v_n bigint;
    v_pairs bigint;
    v_competitor_radius float8 := CASE WHEN use_travel_cost THEN 5000 ELSE cutoff END;
    v_zone_id int8[]; v_zone_lon float8[]; v_zone_lat float8[]; v_zone_demand float8[];
    v_zone_population float8[]; v_zone_income float8[]; v_zone_is_point boolean[];
BEGIN
    PERFORM retail_mid.site_check_model(alpha, beta, cutoff);
    IF threshold IS NULL OR NOT (threshold >= 0 AND threshold <= 1) THEN
        RAISE EXCEPTION 'threshold must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('threshold is %s.', threshold);
    END IF;
    IF min_distance IS NULL OR NOT (min_distance > 0 AND min_distance < 'Infinity') THEN
        RAISE EXCEPTION 'min_distance must be a positive finite number' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('min_distance is %s.', min_distance);
    END IF;
    IF k_comparable IS NULL OR k_comparable < 1 THEN
        RAISE EXCEPTION 'k_comparable must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one scoring run at a time: a second run waits here instead of colliding on the result tables
    LOCK TABLE retail_mid.site_candidate_score, retail_mid.site_candidate_cannibalisation IN SHARE ROW EXCLUSIVE MODE;
    IF to_regclass('pg_temp.site_impact_tmp') IS NOT NULL THEN
        DROP TABLE site_impact_tmp;          -- left over by an earlier run in the same transaction
    END IF;
    v_job := retail_mid.job_start('site_score_candidates', jsonb_build_object('alpha', alpha, 'beta', beta,
        'cutoff', cutoff, 'threshold', threshold, 'min_distance', min_distance, 'use_travel_cost', use_travel_cost));

    SELECT coalesce(array_agg(z.zone_id), '{}'), coalesce(array_agg(z.lon), '{}'), coalesce(array_agg(z.lat), '{}'),
           coalesce(array_agg(coalesce(z.spend_potential, z.population)), '{}'), coalesce(array_agg(z.population), '{}'),
           coalesce(array_agg(coalesce(z.income, 'NaN')), '{}'), coalesce(array_agg(z.is_point), '{}')
      INTO v_zone_id, v_zone_lon, v_zone_lat, v_zone_demand, v_zone_population, v_zone_income, v_zone_is_point
      FROM retail_mid.site_demand_zone z;

    IF use_travel_cost THEN
        CREATE TEMP TABLE site_impact_tmp ON COMMIT DROP AS
        SELECT (u).candidate_id, (u).kind, (u).object_id, (u).before, (u).after, (u).zones
          FROM (SELECT unnest(retail_mid.huff_impact(p.zone_id, p.site_id, p.role, p.attractiveness, p.distance,
                                                     p.demand, alpha, beta, min_distance, threshold)) u
                  FROM (SELECT s.zone_id, s.store_id AS site_id, CASE WHEN s.own THEN 'own' ELSE 'competitor' END AS role,
                               s.attractiveness, s.distance, s.demand
                          FROM retail_mid.site_zone_store_pairs(cutoff, true) s
                        UNION ALL
                        SELECT c.zone_id, c.candidate_id, 'candidate', c.attractiveness, c.distance, c.demand
                          FROM retail_mid.site_zone_candidate_pairs(cutoff, true) c) p) x;
    ELSE
        -- one scan of each table into arrays; the grid pruning, the great-circle distances and the cut-off
        -- are done in C (huff_impact_batch), which returns the same rows as huff_impact_geo over the grid join
        CREATE TEMP TABLE site_impact_tmp ON COMMIT DROP AS
        SELECT (u).candidate_id, (u).kind, (u).object_id, (u).before, (u).after, (u).zones
          FROM (SELECT unnest(retail_mid.huff_impact_batch(v_zone_id, v_zone_lon, v_zone_lat, v_zone_demand,
                                                           s.ids, s.owns, s.lons, s.lats, s.attrs,
                                                           c.ids, c.lons, c.lats, c.attrs,
                                                           alpha, beta, min_distance, threshold, cutoff)) u
                  FROM (SELECT coalesce(array_agg(store_id), '{}') ids, coalesce(array_agg(own), '{}') owns,
                               coalesce(array_agg(lon), '{}') lons, coalesce(array_agg(lat), '{}') lats,
                               coalesce(array_agg(attractiveness), '{}') attrs FROM retail_mid.site_store) s,
                       (SELECT coalesce(array_agg(candidate_id), '{}') ids, coalesce(array_agg(lon), '{}') lons,
                               coalesce(array_agg(lat), '{}') lats, coalesce(array_agg(attractiveness), '{}') attrs
                          FROM retail_mid.site_candidate) c) x;
    END IF;
    GET DIAGNOSTICS v_pairs = ROW_COUNT;
    ANALYZE site_impact_tmp (kind);   -- row counts per kind: the joins below are planned far better with them
    RAISE NOTICE 'site_score_candidates: Huff impact computed, % result rows', v_pairs;

    DELETE FROM retail_mid.site_candidate_cannibalisation;
    DELETE FROM retail_mid.site_candidate_score;
    INSERT INTO retail_mid.site_candidate_cannibalisation (candidate_id, store_id, sales_before, sales_after, cannibalisation)
    SELECT i.candidate_id, i.object_id, i.before, i.after, i.before - i.after
      FROM site_impact_tmp i JOIN retail_mid.site_store s ON s.store_id = i.object_id
     WHERE i.kind = 'store' AND s.own;

    INSERT INTO retail_mid.site_candidate_score
    -- catchments and competitors of every candidate in one C call (the same numbers as site_catchment)
    WITH ci AS (SELECT * FROM site_impact_tmp WHERE kind = 'candidate'),
         catch AS (
            SELECT k.* FROM (SELECT coalesce(array_agg(candidate_id), '{}') ids, coalesce(array_agg(lon), '{}') lons,
                                    coalesce(array_agg(lat), '{}') lats FROM retail_mid.site_candidate) c,
                            (SELECT coalesce(array_agg(lon), '{}') lons, coalesce(array_agg(lat), '{}') lats
                               FROM retail_mid.site_store WHERE NOT own) s,
                            retail_mid.site_catchment_batch(v_zone_lon, v_zone_lat, v_zone_population, v_zone_income,
                                                            c.ids, c.lons, c.lats, s.lons, s.lats, v_competitor_radius) k),
         cn AS (SELECT k.candidate_id, sum(k.cannibalisation) AS total
                  FROM retail_mid.site_candidate_cannibalisation k GROUP BY k.candidate_id),
         -- trade areas: the hull of point zones in C; polygon zones (rare in batches) unioned with PostGIS, their
         -- rows fetched by primary key
         ta AS (SELECT h.candidate_id, h.zones,
                       CASE WHEN h.polygon_zones = 0 THEN ST_GeomFromEWKB(h.hull) ELSE (
                           -- polygons are unioned, points hulled; each aggregate only sees its own kind
                           SELECT CASE WHEN count(*) FILTER (WHERE z.is_point) = 0
                                       THEN ST_Union(z.geom_4326) FILTER (WHERE NOT z.is_point)
                                       ELSE ST_Union(ST_Union(z.geom_4326) FILTER (WHERE NOT z.is_point),
                                                     ST_ConvexHull(ST_Collect(z.geom_4326) FILTER (WHERE z.is_point))) END
                             FROM retail_mid.site_demand_zone z WHERE z.zone_id = ANY (h.zone_ids)) END AS area
                  FROM (SELECT coalesce(array_agg(candidate_id), '{}') c, coalesce(array_agg(object_id), '{}') z
                          FROM site_impact_tmp WHERE kind = 'zone') p,
                       retail_mid.site_trade_area_hulls(v_zone_id, v_zone_lon, v_zone_lat, v_zone_is_point, p.c, p.z) h)
    SELECT c.candidate_id,
           coalesce(ci.after, 0), coalesce(ci.before, 0),
           coalesce(ci.after / nullif(ci.before, 0), 0),
           coalesce(ci.zones, 0),
           coalesce(ta.area, ST_SetSRID('POLYGON EMPTY'::geometry, 4326)), coalesce(ta.zones, 0),
           coalesce(catch.population_1km, 0), coalesce(catch.population_3km, 0), coalesce(catch.population_5km, 0),
           catch.income_1km, catch.income_3km, catch.income_5km,
           coalesce(catch.competitors, 0), catch.nearest_competitor_m,
           coalesce(cn.total, 0), coalesce(ci.after, 0) - coalesce(cn.total, 0),
           NULL, alpha, beta, cutoff, now()
      FROM retail_mid.site_candidate c
      LEFT JOIN ci ON ci.candidate_id = c.candidate_id
      LEFT JOIN cn ON cn.candidate_id = c.candidate_id
      LEFT JOIN ta ON ta.candidate_id = c.candidate_id
      LEFT JOIN catch ON catch.candidate_id = c.candidate_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    RAISE NOTICE 'site_score_candidates: % candidates scored', v_n;

    IF EXISTS (SELECT 1 FROM retail_mid.site_store WHERE own AND observed_sales IS NOT NULL) THEN
        UPDATE retail_mid.site_candidate_score sc
           SET comparable_estimate = (SELECT avg(cs.observed_sales)
                                        FROM retail_mid.site_comparable_stores(sc.candidate_id, k_comparable, v_competitor_radius) cs);
        RAISE NOTICE 'site_score_candidates: comparable-store estimates done';
    END IF;
    PERFORM retail_mid.job_finish(v_job, v_n, jsonb_build_object('impact_rows', v_pairs));
    RETURN v_n;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_score_candidates(float8, float8, float8, float8, float8, boolean, int4) IS 'Scores every candidate (Huff expected sales, market share, trade area, catchment, competitors, cannibalisation of own stores, comparable-store estimate) into site_candidate_score and site_candidate_cannibalisation; returns the number of candidates.';

CREATE VIEW retail_mid.site_candidate_ranking AS
SELECT rank() OVER (ORDER BY s.net_gain DESC, s.candidate_id)::int4 AS rank,
       s.candidate_id, c.name, s.expected_sales, s.cannibalisation, s.net_gain, s.market_share,
       s.population_5km, s.income_5km, s.competitors, s.nearest_competitor_m, s.comparable_estimate,
       s.trade_area
  FROM retail_mid.site_candidate_score s
  JOIN retail_mid.site_candidate c ON c.candidate_id = s.candidate_id;
COMMENT ON VIEW retail_mid.site_candidate_ranking IS 'Candidates of the last scoring run ranked by net gain (expected sales minus cannibalisation of own stores).';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.rank IS '1 = best net gain.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.candidate_id IS 'Candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.name IS 'Candidate label.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.expected_sales IS 'Huff expected sales of the candidate.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.cannibalisation IS 'Sales taken from own stores.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.net_gain IS 'expected_sales - cannibalisation.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.market_share IS 'Share of the demand in reach.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.population_5km IS 'Population within 5 km.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.income_5km IS 'Population-weighted income within 5 km.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.competitors IS 'Competitors within the cut-off.';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.nearest_competitor_m IS 'Metres to the nearest competitor (null: none).';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.comparable_estimate IS 'Comparable-store sales estimate (null: no own store with observed sales).';
COMMENT ON COLUMN retail_mid.site_candidate_ranking.trade_area IS 'Trade-area polygon (EPSG:4326).';

-- Calibration against the observed sales of existing stores.
CREATE FUNCTION retail_mid.site_calibrate(cutoff float8, alpha0 float8 DEFAULT 1, beta0 float8 DEFAULT 2,
    min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false,
    OUT alpha float8, OUT beta float8, OUT scale float8, OUT sse float8, OUT rmse float8,
    OUT r_squared float8, OUT stores int4, OUT evaluations int4)
RETURNS record LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.site_check_model(alpha0, beta0, cutoff);
    SELECT r.* INTO alpha, beta, scale, sse, rmse, r_squared, stores, evaluations
      FROM (SELECT array_agg(p.zone_id) z, array_agg(p.store_id) s, array_agg(p.attractiveness) a,
                   array_agg(p.distance) d, array_agg(p.demand) m
              FROM retail_mid.site_zone_store_pairs(cutoff, use_travel_cost) p) pp,
           (SELECT coalesce(array_agg(o.store_id), '{}') os, coalesce(array_agg(o.observed_sales), '{}') ov
              FROM retail_mid.site_store o WHERE o.observed_sales IS NOT NULL) oo,
           retail_mid.huff_calibrate(coalesce(pp.z, '{}'), coalesce(pp.s, '{}'), coalesce(pp.a, '{}'),
                                     coalesce(pp.d, '{}'), coalesce(pp.m, '{}'), oo.os, oo.ov,
                                     alpha0, beta0, min_distance) r;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_calibrate(float8, float8, float8, float8, boolean) IS 'Fits alpha and beta to site_store.observed_sales by least squares (huff_calibrate) with goodness of fit.';

-- Observed flows (customers or sales of a zone at a store), e.g. from loyalty cards: the richer input of the
-- maximum-likelihood calibration, and the only one with which per-store attractiveness can be fitted.
CREATE TABLE retail_mid.site_observed_flow (
    zone_id  bigint NOT NULL REFERENCES retail_mid.site_demand_zone ON DELETE CASCADE,
    store_id bigint NOT NULL REFERENCES retail_mid.site_store ON DELETE CASCADE,
    observed float8 NOT NULL CHECK (observed >= 0 AND observed < 'Infinity'),
    PRIMARY KEY (zone_id, store_id)
);
COMMENT ON TABLE retail_mid.site_observed_flow IS 'Observed customers (or sales) per demand zone and store, for site_calibrate_fit(level => ''zone'').';
COMMENT ON COLUMN retail_mid.site_observed_flow.zone_id IS 'Demand zone the customers live in.';
COMMENT ON COLUMN retail_mid.site_observed_flow.store_id IS 'Store they bought at.';
COMMENT ON COLUMN retail_mid.site_observed_flow.observed IS 'Customers or sales, non-negative; zero counts are information too.';

CREATE FUNCTION retail_mid.site_calibrate_fit(cutoff float8, method text DEFAULT 'ml', level text DEFAULT 'store',
    fit_attractiveness boolean DEFAULT false, reference_store bigint DEFAULT NULL, alpha0 float8 DEFAULT 1,
    beta0 float8 DEFAULT 2, min_distance float8 DEFAULT 100, use_travel_cost boolean DEFAULT false,
    max_evaluations int4 DEFAULT 1000,
    OUT fit_method text, OUT alpha float8, OUT beta float8, OUT scale float8, OUT log_likelihood float8,
    OUT null_log_likelihood float8, OUT pseudo_r_squared float8, OUT r_squared float8, OUT rmse float8,
    OUT mape float8, OUT observations int4, OUT parameters int4, OUT evaluations int4, OUT converged boolean,
    OUT status text, OUT factor_store_id int8[], OUT attractiveness_factor float8[])
RETURNS record LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE m text := method;
BEGIN
    PERFORM retail_mid.site_check_model(alpha0, beta0, cutoff);
    IF level IS NULL OR level NOT IN ('store', 'zone') THEN
        RAISE EXCEPTION 'level must be store or zone' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'store fits site_store.observed_sales, zone fits site_observed_flow.';
    END IF;
    IF m IS NULL OR fit_attractiveness IS NULL OR max_evaluations IS NULL THEN
        RAISE EXCEPTION 'method, fit_attractiveness and max_evaluations must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.* INTO fit_method, alpha, beta, scale, log_likelihood, null_log_likelihood, pseudo_r_squared, r_squared,
                    rmse, mape, observations, parameters, evaluations, converged, status, factor_store_id,
                    attractiveness_factor
      FROM (SELECT array_agg(p.zone_id) z, array_agg(p.store_id) s, array_agg(p.attractiveness) a,
                   array_agg(p.distance) d, array_agg(p.demand) dm
              FROM retail_mid.site_zone_store_pairs(cutoff, use_travel_cost) p) pp,
           (SELECT coalesce(array_agg(o.zone_id ORDER BY o.zone_id, o.store_id), '{}') oz,
                   coalesce(array_agg(o.store_id ORDER BY o.zone_id, o.store_id), '{}') os,
                   coalesce(array_agg(o.observed ORDER BY o.zone_id, o.store_id), '{}') ov
              FROM (SELECT NULL::bigint AS zone_id, st.store_id, st.observed_sales AS observed
                      FROM retail_mid.site_store st WHERE level = 'store' AND st.observed_sales IS NOT NULL
                    UNION ALL
                    SELECT f.zone_id, f.store_id, f.observed FROM retail_mid.site_observed_flow f WHERE level = 'zone') o) oo,
           retail_mid.huff_fit(coalesce(pp.z, '{}'), coalesce(pp.s, '{}'), coalesce(pp.a, '{}'), coalesce(pp.d, '{}'),
                               coalesce(pp.dm, '{}'), CASE WHEN level = 'zone' THEN oo.oz ELSE '{}' END, oo.os, oo.ov,
                               m, fit_attractiveness, reference_store, alpha0, beta0, min_distance, max_evaluations) r;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_calibrate_fit(float8, text, text, boolean, bigint, float8, float8, float8, boolean, int4) IS 'Calibrates the Huff model (huff_fit) on the zone-store pairs within the cut-off: level store fits site_store.observed_sales, level zone fits site_observed_flow; method ml (maximum likelihood, default) or ls; with fit_attractiveness (level zone only) a multiplier per observed store, reference store fixed at 1, alpha held at alpha0.';

-- plpgsql bodies resolve PostGIS names at run time: give them PostGIS's schema (unknown until install).
DO $$
DECLARE
    v_schema text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                       WHERE e.extname = 'postgis');
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['retail_mid.site_prepare_geometry()',
                             'retail_mid.site_huff_sales(float8, float8, float8, float8, boolean)',
                             'retail_mid.site_comparable_stores(bigint, int4, float8)',
                             'retail_mid.site_score_candidates(float8, float8, float8, float8, float8, boolean, int4)',
                             'retail_mid.site_calibrate(float8, float8, float8, float8, boolean)',
                             'retail_mid.site_calibrate_fit(float8, text, text, boolean, bigint, float8, float8, float8, boolean, int4)'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, v_schema);
    END LOOP;
END;
$$;

-- Copies a brand's demand zones (ods_demand_zone) and own stores (ods_site, kind store, with a location) into the
-- site-selection tables, skipping those already there; competitors and candidates have no ODS source.
CREATE FUNCTION retail_mid.site_import_ods(brand text)
RETURNS TABLE (zones bigint, stores bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_zones bigint; v_stores bigint; b text := brand;
BEGIN
    IF b IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO retail_mid.site_demand_zone (zone_id, name, geom, population, households, income, spend_potential)
    SELECT (SELECT coalesce(max(zone_id), 0) FROM retail_mid.site_demand_zone) + row_number() OVER (ORDER BY z.zone_id),
           z.zone_id, z.geom, coalesce(z.population, 0), z.households, z.income, z.spend_potential
      FROM retail_mid.ods_demand_zone z
     WHERE z.brand = b AND NOT EXISTS (SELECT 1 FROM retail_mid.site_demand_zone s WHERE s.name = z.zone_id);
    GET DIAGNOSTICS v_zones = ROW_COUNT;
    INSERT INTO retail_mid.site_store (store_id, brand, store_code, name, own, geom, attractiveness)
    SELECT (SELECT coalesce(max(store_id), 0) FROM retail_mid.site_store) + row_number() OVER (ORDER BY o.site_id),
           o.brand, o.site_id, o.site_name, true, o.geom, coalesce(o.floor_area, 1)
      FROM retail_mid.ods_site o
     WHERE o.brand = b AND o.kind = 'store' AND o.geom IS NOT NULL AND o.closed_on IS NULL
       AND NOT EXISTS (SELECT 1 FROM retail_mid.site_store s WHERE s.brand = o.brand AND s.store_code = o.site_id);
    GET DIAGNOSTICS v_stores = ROW_COUNT;
    RETURN QUERY SELECT v_zones, v_stores;
END;
$$;
COMMENT ON FUNCTION retail_mid.site_import_ods(text) IS 'Copies a brand''s ODS demand zones and located, open own stores (attractiveness = floor area) into site_demand_zone / site_store; returns how many of each were added.';

-- ===== src/fulfilment.sql =====
-- fulfilment: routing an order to the location(s) that ship it, with available-to-promise and reservations.
--
-- Locations (CDC, RDC, FDC, stores) live in retail_mid.fulfilment_location, stock in retail_mid.fulfilment_stock
-- (on hand and reserved); fulfilment_import_ods(brand) fills both from ods_site and ods_inventory_snapshot. fulfilment_route locks the stock rows of the order's SKUs
-- in (location_id, sku_id) order, so concurrent routers queue instead of deadlocking and never promise the same
-- unit twice; the choice itself is made by the C function fulfilment_plan.

CREATE TABLE retail_mid.fulfilment_location (
    location_id bigint PRIMARY KEY,
    brand       text NOT NULL DEFAULT '',
    code        text,
    kind        text NOT NULL CHECK (kind IN ('CDC', 'RDC', 'FDC', 'store')),
    geom        geometry NOT NULL,
    centre      geography(Point, 4326) NOT NULL,
    active      boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE retail_mid.fulfilment_location IS 'Locations that can ship orders: central, regional and front distribution centres and stores; filled by hand or from ods_site by fulfilment_import_ods.';
COMMENT ON COLUMN retail_mid.fulfilment_location.location_id IS 'Location identifier.';
COMMENT ON COLUMN retail_mid.fulfilment_location.brand IS 'Brand (ods_site.brand for imported locations).';
COMMENT ON COLUMN retail_mid.fulfilment_location.code IS 'The source system''s site id (ods_site.site_id); unique per brand.';
COMMENT ON COLUMN retail_mid.fulfilment_location.kind IS 'CDC, RDC, FDC or store.';
COMMENT ON COLUMN retail_mid.fulfilment_location.geom IS 'Point in any SRID other than 0.';
COMMENT ON COLUMN retail_mid.fulfilment_location.centre IS 'Set by trigger: the point in EPSG:4326.';
COMMENT ON COLUMN retail_mid.fulfilment_location.active IS 'Inactive locations are never chosen.';
CREATE UNIQUE INDEX fulfilment_location_code_idx ON retail_mid.fulfilment_location (brand, code);
CREATE INDEX fulfilment_location_centre_idx ON retail_mid.fulfilment_location USING gist (centre);
CREATE TRIGGER fulfilment_location_geometry BEFORE INSERT OR UPDATE OF geom ON retail_mid.fulfilment_location
    FOR EACH ROW EXECUTE FUNCTION retail_mid.site_prepare_geometry();

CREATE TABLE retail_mid.fulfilment_stock (
    location_id bigint NOT NULL REFERENCES retail_mid.fulfilment_location,
    sku_id      text   NOT NULL,
    on_hand     numeric NOT NULL CHECK (on_hand >= 0 AND on_hand < 'Infinity'),
    reserved    numeric NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    PRIMARY KEY (location_id, sku_id)
);
COMMENT ON TABLE retail_mid.fulfilment_stock IS 'Stock per location and SKU: on hand, and reserved by routed orders not yet shipped.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.location_id IS 'Location.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.fulfilment_stock.reserved IS 'Units promised to routed orders (sum of their open reservations); never above on_hand.';

CREATE TABLE retail_mid.fulfilment_reservation (
    order_id    text   NOT NULL,
    location_id bigint NOT NULL REFERENCES retail_mid.fulfilment_location,
    sku_id      text   NOT NULL,
    shipment    int4   NOT NULL,
    quantity    numeric NOT NULL CHECK (quantity > 0),
    distance_m  float8 NOT NULL,
    status      text   NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'shipped', 'released')),
    reserved_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, location_id, sku_id)
);
COMMENT ON TABLE retail_mid.fulfilment_reservation IS 'What fulfilment_route promised: per order, location and SKU the units reserved.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.order_id IS 'Order.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.location_id IS 'Shipping location.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.shipment IS 'Shipment number within the order, 1 = nearest location.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.quantity IS 'Units reserved.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.distance_m IS 'Great-circle metres from the location to the delivery point.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.status IS 'reserved, shipped or released.';
COMMENT ON COLUMN retail_mid.fulfilment_reservation.reserved_at IS 'When it was routed.';

CREATE VIEW retail_mid.fulfilment_atp AS
SELECT s.location_id, l.kind, s.sku_id, s.on_hand, s.reserved, s.on_hand - s.reserved AS atp
  FROM retail_mid.fulfilment_stock s JOIN retail_mid.fulfilment_location l USING (location_id);
COMMENT ON VIEW retail_mid.fulfilment_atp IS 'Available-to-promise per location and SKU: on hand minus reserved.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.location_id IS 'Location.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.kind IS 'CDC, RDC, FDC or store.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.on_hand IS 'Units on hand.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.reserved IS 'Units reserved by routed orders.';
COMMENT ON COLUMN retail_mid.fulfilment_atp.atp IS 'Units that can still be promised.';

CREATE FUNCTION retail_mid.fulfilment_plan(atp float8[], quantity float8[], distance float8[], exact_limit int4 DEFAULT 16)
RETURNS int4[] AS 'MODULE_PATHNAME', 'fulfilment_plan' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION retail_mid.fulfilment_plan(float8[], float8[], float8[], int4) IS 'Chooses shipping locations (1-based indexes, nearest first) from an ATP matrix (locations x lines, row-major): the nearest single location that can ship everything, else the fewest locations (exact up to exact_limit candidates, greedy set cover above), ties by total distance; empty when the order cannot be shipped.';

CREATE FUNCTION retail_mid.fulfilment_route(order_id text, delivery geometry, sku_ids text[], quantities numeric[],
                                            max_distance float8 DEFAULT NULL, exact_limit int4 DEFAULT 16)
RETURNS TABLE (shipment int4, location_id bigint, kind text, sku_id text, quantity numeric, distance_m float8)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_point geography;
    v_skus text[];
    v_qty numeric[];
    v_locs bigint[];
    v_dist float8[];
    v_atp float8[];
    v_plan int4[];
    v_remaining numeric;
    v_take numeric;
    v_avail numeric;
    v_shipment int4 := 0;
    v_used boolean;
    i int; l int;
BEGIN
    IF order_id IS NULL OR order_id = '' THEN
        RAISE EXCEPTION 'order_id must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF delivery IS NULL OR ST_IsEmpty(delivery) THEN
        RAISE EXCEPTION 'delivery point must not be null or empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ST_SRID(delivery) = 0 THEN
        RAISE EXCEPTION 'delivery point has no SRID' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Set one with ST_SetSRID.';
    END IF;
    IF GeometryType(delivery) <> 'POINT' THEN
        RAISE EXCEPTION 'delivery must be a point, not %', lower(GeometryType(delivery)) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF sku_ids IS NULL OR quantities IS NULL OR cardinality(sku_ids) = 0 THEN
        RAISE EXCEPTION 'an order needs at least one line' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(sku_ids) <> cardinality(quantities) THEN
        RAISE EXCEPTION 'sku_ids and quantities must have the same length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(sku_ids, quantities) u(s, q) WHERE s IS NULL OR q IS NULL OR NOT (q > 0 AND q < 'Infinity')) THEN
        RAISE EXCEPTION 'order lines need a SKU and a positive finite quantity' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_distance IS NOT NULL AND NOT (max_distance > 0) THEN
        RAISE EXCEPTION 'max_distance must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.fulfilment_reservation r
                WHERE r.order_id = fulfilment_route.order_id AND r.status <> 'released') THEN
        RAISE EXCEPTION 'order % is already routed', order_id USING ERRCODE = 'unique_violation',
            HINT = 'Release it with fulfilment_settle(order_id, false) to route it again.';
    END IF;
    DELETE FROM retail_mid.fulfilment_reservation r WHERE r.order_id = fulfilment_route.order_id;
    v_point := geography(ST_Transform(delivery, 4326));
    -- one line per SKU (repeated SKUs are added up), in SKU order
    SELECT array_agg(s ORDER BY s), array_agg(q ORDER BY s) INTO v_skus, v_qty
      FROM (SELECT s, sum(q) q FROM unnest(sku_ids, quantities) u(s, q) GROUP BY s) g;

    -- lock every stock row of these SKUs in one global order: concurrent routers wait for each other here
    PERFORM 1 FROM retail_mid.fulfilment_stock s WHERE s.sku_id = ANY (v_skus)
     ORDER BY s.location_id, s.sku_id FOR UPDATE;

    -- candidate locations (any ATP for any line), nearest first, with their ATP per line
    SELECT array_agg(c.location_id ORDER BY c.d, c.location_id), array_agg(c.d ORDER BY c.d, c.location_id)
      INTO v_locs, v_dist
      FROM (SELECT l.location_id, ST_Distance(l.centre, v_point, false) AS d
              FROM retail_mid.fulfilment_location l
             WHERE l.active
               AND (max_distance IS NULL OR ST_DWithin(l.centre, v_point, max_distance, false))
               AND EXISTS (SELECT 1 FROM retail_mid.fulfilment_stock s
                            WHERE s.location_id = l.location_id AND s.sku_id = ANY (v_skus) AND s.on_hand > s.reserved)) c;
    IF v_locs IS NULL THEN
        RAISE EXCEPTION 'no location can ship any line of order %', order_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT array_agg(coalesce(s.on_hand - s.reserved, 0)::float8 ORDER BY li.o, k.o) INTO v_atp
      FROM unnest(v_locs) WITH ORDINALITY li(id, o)
     CROSS JOIN unnest(v_skus) WITH ORDINALITY k(sku, o)
      LEFT JOIN retail_mid.fulfilment_stock s ON s.location_id = li.id AND s.sku_id = k.sku;

    v_plan := retail_mid.fulfilment_plan(v_atp, v_qty::float8[], v_dist, exact_limit);
    IF cardinality(v_plan) = 0 THEN
        RAISE EXCEPTION 'not enough stock to ship order %', order_id USING ERRCODE = 'no_data_found',
            DETAIL = 'Even all candidate locations together do not have every line available to promise.';
    END IF;

    -- allocate each line from the nearest chosen location first
    FOREACH i IN ARRAY v_plan LOOP
        v_used := false;
        FOR l IN 1 .. cardinality(v_skus) LOOP
            v_remaining := v_qty[l];
            IF v_remaining <= 0 THEN CONTINUE; END IF;
            SELECT s.on_hand - s.reserved INTO v_avail FROM retail_mid.fulfilment_stock s
             WHERE s.location_id = v_locs[i] AND s.sku_id = v_skus[l];
            v_take := least(coalesce(v_avail, 0), v_remaining);
            IF v_take > 0 THEN
                IF NOT v_used THEN v_shipment := v_shipment + 1; v_used := true; END IF;
                UPDATE retail_mid.fulfilment_stock s SET reserved = s.reserved + v_take
                 WHERE s.location_id = v_locs[i] AND s.sku_id = v_skus[l];
                INSERT INTO retail_mid.fulfilment_reservation (order_id, location_id, sku_id, shipment, quantity, distance_m)
                VALUES (fulfilment_route.order_id, v_locs[i], v_skus[l], v_shipment, v_take, v_dist[i]);
                v_qty[l] := v_remaining - v_take;
            END IF;
        END LOOP;
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(v_qty) q WHERE q > 0) THEN
        RAISE EXCEPTION 'allocation left order % short', order_id;   -- cannot happen: the plan covers every line
    END IF;

    RETURN QUERY
    SELECT r.shipment, r.location_id, l.kind, r.sku_id, r.quantity, r.distance_m
      FROM retail_mid.fulfilment_reservation r JOIN retail_mid.fulfilment_location l USING (location_id)
     WHERE r.order_id = fulfilment_route.order_id
     ORDER BY r.shipment, r.sku_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.fulfilment_route(text, geometry, text[], numeric[], float8, int4) IS 'Routes an order (delivery point, SKUs, quantities): nearest location with everything available to promise, else the fewest locations that together have it (fulfilment_plan); reserves the units and returns the shipments. Concurrency-safe: stock rows are locked in (location, sku) order.';

CREATE FUNCTION retail_mid.fulfilment_settle(order_id text, ship boolean)
RETURNS bigint LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    PERFORM 1 FROM retail_mid.fulfilment_stock s
      JOIN retail_mid.fulfilment_reservation r ON r.location_id = s.location_id AND r.sku_id = s.sku_id
     WHERE r.order_id = fulfilment_settle.order_id AND r.status = 'reserved'
     ORDER BY s.location_id, s.sku_id FOR UPDATE OF s;
    UPDATE retail_mid.fulfilment_stock s
       SET reserved = s.reserved - r.quantity,
           on_hand = s.on_hand - CASE WHEN ship THEN r.quantity ELSE 0 END
      FROM retail_mid.fulfilment_reservation r
     WHERE r.order_id = fulfilment_settle.order_id AND r.status = 'reserved'
       AND r.location_id = s.location_id AND r.sku_id = s.sku_id;
    UPDATE retail_mid.fulfilment_reservation r SET status = CASE WHEN ship THEN 'shipped' ELSE 'released' END
     WHERE r.order_id = fulfilment_settle.order_id AND r.status = 'reserved';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.fulfilment_settle(text, boolean) IS 'Closes an order''s open reservations: ship = true takes the units off on_hand, false releases them back to ATP; returns the number of reservation rows closed.';

-- Feeds locations and stock from the ODS: every located site of the brand (CDC, RDC, FDC, store; active unless
-- closed) and the latest inventory snapshot per site and SKU, whose on_hand - reserved (what the source system
-- has not promised elsewhere) becomes on_hand here. Idempotent: a second run with the same ODS changes nothing.
CREATE FUNCTION retail_mid.fulfilment_import_ods(brand text)
RETURNS TABLE (locations_added bigint, locations_updated bigint, stock_rows bigint, stock_changed bigint,
               stock_clamped bigint, stock_skipped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    b text := brand;
    v_added bigint; v_updated bigint; v_rows bigint; v_changed bigint; v_clamped bigint; v_skipped bigint;
    v_job bigint;
BEGIN
    IF b IS NULL THEN
        RAISE EXCEPTION 'brand must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('fulfilment_import_ods', jsonb_build_object('brand', b));
    -- one import of a brand at a time; routers keep running (they lock stock rows, not the table)
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.fulfilment_import_ods'), hashtext(b));

    UPDATE retail_mid.fulfilment_location l
       SET kind = o.kind, geom = o.geom, active = o.closed_on IS NULL
      FROM retail_mid.ods_site o
     WHERE o.brand = b AND l.brand = o.brand AND l.code = o.site_id AND o.geom IS NOT NULL
       AND (l.kind IS DISTINCT FROM o.kind OR NOT ST_Equals(l.geom, o.geom) OR l.active IS DISTINCT FROM (o.closed_on IS NULL));
    GET DIAGNOSTICS v_updated = ROW_COUNT;
    INSERT INTO retail_mid.fulfilment_location (location_id, brand, code, kind, geom, active)
    SELECT (SELECT coalesce(max(location_id), 0) FROM retail_mid.fulfilment_location) + row_number() OVER (ORDER BY o.site_id),
           o.brand, o.site_id, o.kind, o.geom, o.closed_on IS NULL
      FROM retail_mid.ods_site o
     WHERE o.brand = b AND o.geom IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM retail_mid.fulfilment_location l WHERE l.brand = o.brand AND l.code = o.site_id);
    GET DIAGNOSTICS v_added = ROW_COUNT;

    CREATE TEMP TABLE fulfilment_import_tmp ON COMMIT DROP AS
    SELECT l.location_id, s.site_id, s.sku_id, greatest(s.on_hand - s.reserved, 0) AS available
      FROM (SELECT DISTINCT ON (i.site_id, i.sku_id) i.site_id, i.sku_id, i.on_hand, i.reserved
              FROM retail_mid.ods_inventory_snapshot i
             WHERE i.brand = b
             ORDER BY i.site_id, i.sku_id, i.snapshot_date DESC) s
      LEFT JOIN retail_mid.fulfilment_location l ON l.brand = b AND l.code = s.site_id;
    SELECT count(*) FILTER (WHERE location_id IS NOT NULL), count(*) FILTER (WHERE location_id IS NULL)
      INTO v_rows, v_skipped FROM fulfilment_import_tmp;
    -- stock this module has promised (reserved) stays promised: on_hand never drops below it
    SELECT count(*) INTO v_clamped
      FROM fulfilment_import_tmp t JOIN retail_mid.fulfilment_stock s ON s.location_id = t.location_id AND s.sku_id = t.sku_id
     WHERE t.available < s.reserved;
    INSERT INTO retail_mid.fulfilment_stock AS s (location_id, sku_id, on_hand)
    SELECT t.location_id, t.sku_id, t.available FROM fulfilment_import_tmp t
     WHERE t.location_id IS NOT NULL
     ORDER BY t.location_id, t.sku_id          -- the lock order of fulfilment_route
    ON CONFLICT (location_id, sku_id) DO UPDATE SET on_hand = greatest(excluded.on_hand, s.reserved)
     WHERE s.on_hand IS DISTINCT FROM greatest(excluded.on_hand, s.reserved);
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    DROP TABLE fulfilment_import_tmp;
    IF v_clamped > 0 THEN
        RAISE WARNING 'fulfilment_import_ods: % stock rows have less available than already reserved; on_hand kept at the reserved quantity', v_clamped;
    END IF;
    RAISE NOTICE 'fulfilment_import_ods: % locations added, % updated, % stock rows (% changed, % without a located site)',
        v_added, v_updated, v_rows, v_changed, v_skipped;
    PERFORM retail_mid.job_finish(v_job, v_rows, jsonb_build_object('locations_added', v_added, 'locations_updated', v_updated,
        'stock_changed', v_changed, 'stock_clamped', v_clamped, 'stock_skipped', v_skipped));
    RETURN QUERY SELECT v_added, v_updated, v_rows, v_changed, v_clamped, v_skipped;
END;
$$;
COMMENT ON FUNCTION retail_mid.fulfilment_import_ods(text) IS 'Feeds fulfilment_location from a brand''s located ods_site rows (CDC, RDC, FDC, store; inactive when closed) and fulfilment_stock.on_hand from the latest ods_inventory_snapshot per site and SKU (on_hand - reserved, at least 0, never below what fulfilment has reserved); idempotent. Returns locations added and updated, stock rows seen, changed, clamped to the reserved quantity, and skipped (site without location).';

DO $$
DECLARE
    v_schema text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                       WHERE e.extname = 'postgis');
BEGIN
    EXECUTE format('ALTER FUNCTION retail_mid.fulfilment_route(text, geometry, text[], numeric[], float8, int4) SET search_path = pg_catalog, %I, pg_temp', v_schema);
    EXECUTE format('ALTER FUNCTION retail_mid.fulfilment_import_ods(text) SET search_path = pg_catalog, %I, pg_temp', v_schema);
END;
$$;

-- ===== src/quality.sql =====
-- quality: data quality rules held as data, evaluated in one scan per table, with results, history and scores.

-- ===================================================================== the two C aggregates
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

-- ===================================================================== templates, rules, history
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
    by_brand       boolean NOT NULL DEFAULT false
);
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

CREATE TABLE retail_mid.quality_rule_version (
    rule_id     int NOT NULL,
    version     int NOT NULL,
    definition  jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, version)
);
COMMENT ON TABLE retail_mid.quality_rule_version IS 'Every version of every rule''s definition, so that each stored result can be read with the rule as it was.';
COMMENT ON COLUMN retail_mid.quality_rule_version.definition IS 'The rule row (table, column, template, parameters, thresholds, weight) at that version.';
COMMENT ON COLUMN retail_mid.quality_rule_version.recorded_at IS 'When the version was created.';

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

-- ===================================================================== rule compilation
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
        RETURN jsonb_build_object('kind', 'flag', 'expr', format('NOT (%s)', p->>'expression'));
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
            'query', format('SELECT (%s)::float8 FROM %s AS t WHERE %s', p->>'expression', r.table_name, coalesce(p->>'filter', 'true')),
            'other_query', format('SELECT (%s)::float8 FROM %s AS t WHERE %s', p->>'other_expression', ref, coalesce(p->>'other_filter', 'true')));
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
BEGIN
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
    -- compile the generated SQL once now, so that a typo fails at insert rather than at night
    IF plan->>'kind' = 'queries' THEN
        EXECUTE (plan->>'query') || ' LIMIT 0';
        EXECUTE (plan->>'other_query') || ' LIMIT 0';
    ELSIF plan ? 'expr' THEN
        EXECUTE format('SELECT %s FROM %s AS t LIMIT 0', plan->>'expr', NEW.table_name);
    END IF;
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
BEGIN
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

-- ===================================================================== evaluation
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

-- ===================================================================== shipped default rule sets
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

-- ===================================================================== dashboard views
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

-- ===== src/metric.sql =====
-- metric: the metric registry. Atomic metrics, business qualifiers, periods and granularities are defined
-- once; a derived metric is one of each, named <qualifier>_<atomic>_<period>; composite metrics are
-- expressions of derived ones. The registry generates and refreshes the DWS tables holding them and
-- reconciles them against DWD.

CREATE TABLE retail_mid.metric_atomic (
    atomic       text PRIMARY KEY CHECK (atomic ~ '^[a-z][a-z0-9_]{0,30}$'),
    dwd_table    regclass NOT NULL,
    time_column  text NOT NULL,
    expression   text NOT NULL,
    unit         text NOT NULL,
    additivity   text NOT NULL CHECK (additivity IN ('additive', 'semi_additive', 'non_additive')),
    description  text,
    distinct_key text,
    distinct_key_type text CHECK (distinct_key_type IN ('int4', 'dictionary'))
);
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
COMMENT ON TABLE retail_mid.metric_distinct_key IS 'Dictionary numbering the keys of distinct-count metrics that are not integers (e.g. order ids), so that they can be stored in roaring bitmaps and OR-ed exactly over windows.';
COMMENT ON COLUMN retail_mid.metric_distinct_key.value IS 'Key as text.';
COMMENT ON COLUMN retail_mid.metric_distinct_key.key IS 'Its number in the bitmaps.';

CREATE TABLE retail_mid.metric_qualifier (
    qualifier    text PRIMARY KEY CHECK (qualifier ~ '^[a-z][a-z0-9_]{0,30}$'),
    predicate    text NOT NULL,
    description  text
);
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
COMMENT ON TABLE retail_mid.metric_granularity IS 'Granularities: the dimension columns a metric is broken down by (the DWD column names); each has two generated DWS tables, retail_mid.dws_metric_<granularity>_1d (daily values and key bitmaps) and retail_mid.dws_metric_<granularity> (every derived metric per statistics date).';
COMMENT ON COLUMN retail_mid.metric_granularity.granularity IS 'Name, also the suffix of the generated DWS tables (not ending in _1d).';

CREATE TABLE retail_mid.metric_coverage (
    granularity text PRIMARY KEY REFERENCES retail_mid.metric_granularity ON DELETE CASCADE,
    days        datemultirange NOT NULL,
    day_columns text[] NOT NULL
);
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
    PRIMARY KEY (metric, granularity)
);
COMMENT ON TABLE retail_mid.metric_composite IS 'Composite metrics: an expression of derived metrics of the same granularity, written with {derived_name} placeholders, e.g. {sale_amount_7d} / nullif({sale_orders_7d}, 0).';
COMMENT ON COLUMN retail_mid.metric_composite.metric IS 'Name, also the column of the DWS table.';
COMMENT ON COLUMN retail_mid.metric_composite.granularity IS 'Granularity; every referenced derived metric must exist at it.';
COMMENT ON COLUMN retail_mid.metric_composite.expression IS 'SQL expression with {derived_name} placeholders.';
COMMENT ON COLUMN retail_mid.metric_composite.unit IS 'Unit of the value.';
COMMENT ON COLUMN retail_mid.metric_composite.description IS 'Meaning.';

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
BEGIN
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
    EXECUTE format('SELECT (t.%I)::date, (%s)::numeric FROM %s AS t GROUP BY 1 LIMIT 0', NEW.time_column, NEW.expression, NEW.dwd_table);
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
        EXECUTE format('SELECT pg_typeof(s.k)::text FROM (SELECT 1) one LEFT JOIN (SELECT (%s) AS k FROM %s AS t LIMIT 0) s ON true',
                       NEW.distinct_key, NEW.dwd_table) INTO keytype;
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
BEGIN
    IF NEW.qualifier !~ '^[a-z][a-z0-9_]{0,30}$' THEN
        RAISE EXCEPTION 'invalid qualifier name "%"', NEW.qualifier USING ERRCODE = 'invalid_name',
            HINT = 'Use up to 31 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF coalesce(btrim(NEW.predicate), '') = '' THEN
        RAISE EXCEPTION 'qualifier "%" needs a predicate', NEW.qualifier USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the predicate compiles against the DWD tables of the derived metrics using it (checked there)
    PERFORM retail_mid.metric_compile_predicate(NEW.predicate, a.dwd_table)
       FROM retail_mid.metric_derived d JOIN retail_mid.metric_atomic a USING (atomic) WHERE d.qualifier = NEW.qualifier;
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
    EXECUTE format('SELECT 1 FROM %s AS t WHERE %s LIMIT 0', dwd_table, predicate);
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_compile_predicate(text, regclass) IS 'Raises the parser''s error when a predicate does not compile against a DWD table.';

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
BEGIN
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
        PERFORM retail_mid.metric_compile_predicate(q.predicate, a.dwd_table) FROM retail_mid.metric_qualifier q WHERE q.qualifier = NEW.qualifier;
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
BEGIN
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
    EXECUTE format('SELECT (%s)::numeric LIMIT 0', expr);
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
BEGIN
    IF from_date IS NULL OR to_date IS NULL OR NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date < from_date THEN
        RAISE EXCEPTION 'metric_generate needs finite dates with from_date <= to_date' USING ERRCODE = 'invalid_parameter_value';
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
    -- composite metrics are expressions of the window values (a ratio of sums, never a sum of ratios)
    FOR m IN SELECT c.metric, c.expression FROM retail_mid.metric_composite c WHERE c.granularity = g.granularity ORDER BY c.metric LOOP
        EXECUTE format('UPDATE %s SET %I = %s WHERE dt BETWEEN $1 AND $2', tbl, m.metric,
                       regexp_replace(m.expression, '\{([a-z][a-z0-9_]*)\}', '"\1"', 'g')) USING from_date, win_to;
    END LOOP;
    -- brand isolation and role grants, as for every table of the extension
    PERFORM retail_mid.secure_generated_table(t1d::regclass);
    PERFORM retail_mid.secure_generated_table(tbl::regclass);
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
BEGIN
    IF from_date IS NULL OR to_date IS NULL OR to_date < from_date THEN
        RAISE EXCEPTION 'metric_reconcile needs dates with from_date <= to_date' USING ERRCODE = 'invalid_parameter_value';
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
    FOR m IN SELECT d.metric FROM retail_mid.metric_derived d WHERE d.granularity = g.granularity ORDER BY d.metric LOOP
        RETURN QUERY EXECUTE format(
            'WITH direct AS (%s), stored AS (SELECT s.dt, %s AS dims, s.%I AS value FROM %s s WHERE s.dt BETWEEN $1 AND $2 AND s.%I IS NOT NULL) '
            'SELECT %L::text, coalesce(a.dt, b.dt), coalesce(a.dims, b.dims), a.value, b.value '
            'FROM stored a FULL JOIN direct b ON a.dt = b.dt AND a.dims = b.dims '
            'WHERE a.value IS DISTINCT FROM b.value ORDER BY 2, 3',
            retail_mid.metric_sql(m.metric, g.granularity, true), dimarr, m.metric, tbl, m.metric, m.metric)
            USING from_date, to_date;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.metric_reconcile(text, date, date) IS 'Every difference between the DWS table of a granularity and the same derived metrics computed straight from DWD for [from_date, to_date]: no rows means the DWS layer reconciles.';

-- ===== src/reach.sql =====
-- reach: reach plans (audience -> one consented channel per member, a content template per segment, a
-- frequency cap across all channels) written to an idempotent outbox; media feedback loaded back as behaviour
-- events that feed shipped tags; campaign tags and tag percentiles for audience expressions.
-- Times are `timestamp` in the brand's local time, like the ODS.

CREATE TABLE retail_mid.reach_channel (
    channel     text PRIMARY KEY CHECK (channel ~ '^([a-z][a-z0-9_]*|\*)$'),
    description text
);
COMMENT ON TABLE retail_mid.reach_channel IS 'Channels a reach plan may use; * stands for every channel and is only valid for global opt-outs in reach_consent.';
COMMENT ON COLUMN retail_mid.reach_channel.channel IS 'Channel code (lower case), or * for every channel.';
COMMENT ON COLUMN retail_mid.reach_channel.description IS 'What the channel is.';
INSERT INTO retail_mid.reach_channel VALUES
 ('sms', 'text message'), ('email', 'e-mail'), ('wechat', 'WeChat official account or mini program message'),
 ('app_push', 'app push notification'), ('media', 'paid media audience (DMP upload)'), ('mail', 'printed mail'),
 ('*', 'every channel (global opt-out only)');

CREATE TABLE retail_mid.reach_consent (
    brand        text NOT NULL,
    customer_key int4 NOT NULL CHECK (customer_key >= 0),
    channel      text NOT NULL REFERENCES retail_mid.reach_channel,
    status       text NOT NULL CHECK (status IN ('granted', 'opted_out')),
    preference   smallint CHECK (preference > 0),
    changed_at   timestamp NOT NULL CHECK (changed_at > '-infinity' AND changed_at < 'infinity'),
    source       text,
    PRIMARY KEY (brand, customer_key, channel, changed_at),
    CHECK (channel <> '*' OR (status = 'opted_out' AND preference IS NULL))
);
COMMENT ON TABLE retail_mid.reach_consent IS 'Consent and channel preference history per brand, customer and channel: the latest row at or before a send time is what holds then. Channel * rows are global opt-outs.';
COMMENT ON COLUMN retail_mid.reach_consent.brand IS 'Brand the consent was given to.';
COMMENT ON COLUMN retail_mid.reach_consent.customer_key IS 'Customer (retail_mid.customer_key).';
COMMENT ON COLUMN retail_mid.reach_consent.channel IS 'Channel, or * for a global opt-out.';
COMMENT ON COLUMN retail_mid.reach_consent.status IS 'granted or opted_out.';
COMMENT ON COLUMN retail_mid.reach_consent.preference IS 'The customer''s rank of the channel (1 = most preferred); NULL = no stated preference.';
COMMENT ON COLUMN retail_mid.reach_consent.changed_at IS 'When the consent or preference changed.';
COMMENT ON COLUMN retail_mid.reach_consent.source IS 'Where the change came from (form, unsubscribe link, store ...).';

CREATE TABLE retail_mid.reach_plan (
    plan_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand       text NOT NULL CHECK (brand <> ''),
    name        text,
    audience    text NOT NULL,
    channels    text[] NOT NULL,
    segment_tag text REFERENCES retail_mid.tag_definition ON UPDATE CASCADE,
    templates   jsonb NOT NULL DEFAULT '{"*": "default"}',
    cap_touches int NOT NULL DEFAULT 7 CHECK (cap_touches > 0),
    cap_days    int NOT NULL DEFAULT 30 CHECK (cap_days > 0),
    send_at     timestamp NOT NULL,
    campaign_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE retail_mid.reach_plan IS 'Reach plans: an audience, the channels in priority order, a content template per segment, a frequency cap (at most cap_touches touches in any cap_days days, all channels) and the send time.';
COMMENT ON COLUMN retail_mid.reach_plan.plan_id IS 'Identity of the plan.';
COMMENT ON COLUMN retail_mid.reach_plan.brand IS 'Brand that sends; consent, touch history and the cap are the brand''s.';
COMMENT ON COLUMN retail_mid.reach_plan.name IS 'Free text name.';
COMMENT ON COLUMN retail_mid.reach_plan.audience IS 'Tag expression selecting the audience, evaluated at each run; @name uses a saved audience package.';
COMMENT ON COLUMN retail_mid.reach_plan.channels IS 'Channels the plan may use, in the brand''s priority order (a customer''s stated preference comes first).';
COMMENT ON COLUMN retail_mid.reach_plan.segment_tag IS 'Tag whose current value is the member''s segment for template choice; NULL = everyone gets the * template.';
COMMENT ON COLUMN retail_mid.reach_plan.templates IS 'Segment value -> content template; the * entry is the default and is required.';
COMMENT ON COLUMN retail_mid.reach_plan.cap_touches IS 'Frequency cap: at most this many touches (this one included) in any cap_days-day window.';
COMMENT ON COLUMN retail_mid.reach_plan.cap_days IS 'Length of the frequency cap window in days.';
COMMENT ON COLUMN retail_mid.reach_plan.send_at IS 'When the touches are planned (consent as of this time counts).';
COMMENT ON COLUMN retail_mid.reach_plan.campaign_id IS 'Campaign id of the plan''s touches (default reach_plan_<plan_id>); touches of plan campaigns in ods_campaign_touch are not counted twice: the outbox counts them.';
COMMENT ON COLUMN retail_mid.reach_plan.created_at IS 'When the plan was created.';
COMMENT ON COLUMN retail_mid.reach_plan.created_by IS 'Who created it.';

-- Plans are data; this trigger refuses bad ones with specific SQLSTATEs before the CHECK constraints see them.
CREATE FUNCTION retail_mid.reach_plan_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE bad text;
BEGIN
    IF NEW.cap_touches IS NULL OR NEW.cap_days IS NULL OR NEW.send_at IS NULL THEN
        RAISE EXCEPTION 'cap_touches, cap_days and send_at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NEW.cap_touches <= 0 OR NEW.cap_days IS NULL OR NEW.cap_days <= 0 THEN
        RAISE EXCEPTION 'frequency cap must be positive' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('cap_touches = %s, cap_days = %s', coalesce(NEW.cap_touches::text, 'NULL'), coalesce(NEW.cap_days::text, 'NULL'));
    END IF;
    IF NEW.cap_days > 3660 THEN
        RAISE EXCEPTION 'frequency cap window must be at most 3660 days' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.send_at IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'send time must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.audience IS NULL THEN
        RAISE EXCEPTION 'audience expression must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM retail_mid.audience_parse(NEW.audience);   -- 42601 with the position on a syntax error
    IF coalesce(cardinality(NEW.channels), 0) = 0 OR array_position(NEW.channels, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'a reach plan needs at least one channel and no NULL channel' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(c, ', ') INTO bad FROM unnest(NEW.channels) c
     WHERE c = '*' OR NOT EXISTS (SELECT 1 FROM retail_mid.reach_channel r WHERE r.channel = c);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown channel: %', bad USING ERRCODE = 'undefined_object',
            HINT = 'Channels are the rows of retail_mid.reach_channel (except *).';
    END IF;
    IF (SELECT count(DISTINCT c) FROM unnest(NEW.channels) c) <> cardinality(NEW.channels) THEN
        RAISE EXCEPTION 'a channel is listed twice' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.templates IS NULL OR jsonb_typeof(NEW.templates) <> 'object' OR NOT NEW.templates ? '*'
       OR EXISTS (SELECT 1 FROM jsonb_each(NEW.templates) e WHERE jsonb_typeof(e.value) <> 'string' OR btrim(e.value #>> '{}') = '') THEN
        RAISE EXCEPTION 'templates must map segments to non-empty template names and have a * default'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"*": "generic", "champions": "vip_offer"}.';
    END IF;
    IF NEW.segment_tag IS NOT NULL AND NOT EXISTS (SELECT 1 FROM retail_mid.tag_definition t WHERE t.tag_name = NEW.segment_tag) THEN
        RAISE EXCEPTION 'unknown segment tag "%"', NEW.segment_tag USING ERRCODE = 'undefined_object';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.campaign_id := coalesce(NEW.campaign_id, 'reach_plan_' || NEW.plan_id);
    ELSIF NEW.brand <> OLD.brand AND EXISTS (SELECT 1 FROM retail_mid.reach_outbox o WHERE o.plan_id = OLD.plan_id) THEN
        RAISE EXCEPTION 'the brand of a reach plan that has run cannot change' USING ERRCODE = 'object_in_use';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_check() IS 'Trigger of reach_plan: refuses bad plans (cap, channels, templates, segment tag, audience syntax) with specific SQLSTATEs.';

CREATE TABLE retail_mid.reach_outbox (
    plan_id      bigint NOT NULL REFERENCES retail_mid.reach_plan,
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    channel      text REFERENCES retail_mid.reach_channel,
    template     text,
    planned_at   timestamp NOT NULL,
    status       text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'sent', 'delivered', 'failed', 'skipped')),
    reason       text CHECK (reason IN ('frequency_cap', 'no_consent', 'global_opt_out', 'same_person')),
    run_id       bigint NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, customer_key),
    CHECK ((status = 'skipped') = (reason IS NOT NULL)),
    CHECK (status = 'skipped' OR (channel IS NOT NULL AND template IS NOT NULL))
);
CREATE INDEX reach_outbox_cap ON retail_mid.reach_outbox (brand, customer_key, planned_at) WHERE status IN ('planned', 'sent', 'delivered');
COMMENT ON TABLE retail_mid.reach_outbox IS 'One decision per plan and audience member: a planned touch (channel, template) for the delivery systems, or skipped with the reason. The primary key makes re-runs write nothing twice.';
COMMENT ON COLUMN retail_mid.reach_outbox.plan_id IS 'Reach plan.';
COMMENT ON COLUMN retail_mid.reach_outbox.brand IS 'Brand of the plan.';
COMMENT ON COLUMN retail_mid.reach_outbox.customer_key IS 'Audience member.';
COMMENT ON COLUMN retail_mid.reach_outbox.channel IS 'Channel chosen (NULL when skipped).';
COMMENT ON COLUMN retail_mid.reach_outbox.template IS 'Content template for the member''s segment (NULL when skipped).';
COMMENT ON COLUMN retail_mid.reach_outbox.planned_at IS 'Planned send time (the plan''s send_at).';
COMMENT ON COLUMN retail_mid.reach_outbox.status IS 'planned, then sent / delivered / failed as the delivery system reports; skipped when not touched. planned, sent and delivered count towards frequency caps.';
COMMENT ON COLUMN retail_mid.reach_outbox.reason IS 'Why a member was skipped: frequency_cap (counted per OneID person), no_consent (no channel of the plan consented as of send_at), global_opt_out, or same_person (another key of the same OneID person gets this plan''s touch).';
COMMENT ON COLUMN retail_mid.reach_outbox.run_id IS 'The reach_run that decided.';
COMMENT ON COLUMN retail_mid.reach_outbox.decided_at IS 'When the decision was written.';

CREATE TABLE retail_mid.reach_run (
    run_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id         bigint NOT NULL REFERENCES retail_mid.reach_plan,
    brand           text NOT NULL,
    job_id          bigint,
    ran_at          timestamptz NOT NULL DEFAULT now(),
    members         bigint NOT NULL,
    already_decided bigint NOT NULL,
    planned         bigint NOT NULL,
    skipped         jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE retail_mid.reach_run IS 'One row per reach_plan_run call: audience size, members decided before, touches planned and members skipped by reason.';
COMMENT ON COLUMN retail_mid.reach_run.run_id IS 'Identity of the run.';
COMMENT ON COLUMN retail_mid.reach_run.plan_id IS 'Plan run.';
COMMENT ON COLUMN retail_mid.reach_run.brand IS 'Brand of the plan.';
COMMENT ON COLUMN retail_mid.reach_run.job_id IS 'The job_log row of the run.';
COMMENT ON COLUMN retail_mid.reach_run.ran_at IS 'When the run happened.';
COMMENT ON COLUMN retail_mid.reach_run.members IS 'Audience members at this run.';
COMMENT ON COLUMN retail_mid.reach_run.already_decided IS 'Members with a decision from an earlier run (left as they were).';
COMMENT ON COLUMN retail_mid.reach_run.planned IS 'Touches planned by this run.';
COMMENT ON COLUMN retail_mid.reach_run.skipped IS 'Members skipped by this run, per reason.';

CREATE TABLE retail_mid.reach_brand_lock (
    brand       text PRIMARY KEY,
    last_run_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE retail_mid.reach_brand_lock IS 'One row per brand, updated by every reach run: the row lock serialises the runs of a brand, so concurrent plans cannot together exceed a frequency cap.';
COMMENT ON COLUMN retail_mid.reach_brand_lock.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.reach_brand_lock.last_run_at IS 'When a reach run of the brand last started.';

CREATE TRIGGER reach_plan_check BEFORE INSERT OR UPDATE ON retail_mid.reach_plan
    FOR EACH ROW EXECUTE FUNCTION retail_mid.reach_plan_check();

-- Touches that count towards a brand's frequency caps, with customer keys: the outbox (planned, sent, delivered)
-- and the ODS touch history (sent, exposed) except the touches of plan campaigns (the outbox has those).
CREATE VIEW retail_mid.reach_touch AS
SELECT o.brand::text AS brand, o.customer_key::int4 AS customer_key, o.planned_at::timestamp AS touched_at,
       o.channel::text AS channel, 'outbox'::text AS source
  FROM retail_mid.reach_outbox o WHERE o.status IN ('planned', 'sent', 'delivered')
UNION ALL
SELECT t.brand, k.customer_key, t.touched_at, t.channel, 'ods_campaign_touch'
  FROM retail_mid.ods_campaign_touch t
  JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = btrim(t.id_value)
 WHERE t.touch_type IN ('sent', 'exposed') AND t.touched_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM retail_mid.reach_plan p WHERE p.brand = t.brand AND p.campaign_id = t.campaign_id);
COMMENT ON VIEW retail_mid.reach_touch IS 'Every touch counted by frequency caps: outbox rows planned, sent or delivered, and ODS campaign touches sent or exposed (except those of reach plan campaigns, which the outbox counts).';
COMMENT ON COLUMN retail_mid.reach_touch.brand IS 'Brand that touched.';
COMMENT ON COLUMN retail_mid.reach_touch.customer_key IS 'Customer touched.';
COMMENT ON COLUMN retail_mid.reach_touch.touched_at IS 'When (planned time for outbox rows).';
COMMENT ON COLUMN retail_mid.reach_touch.channel IS 'Channel.';
COMMENT ON COLUMN retail_mid.reach_touch.source IS 'outbox or ods_campaign_touch.';

-- Creates a plan from arguments (a convenience over INSERT; the trigger validates both ways in).
CREATE FUNCTION retail_mid.reach_plan_create(brand text, audience text, channels text[], send_at timestamp,
                                             templates jsonb DEFAULT '{"*": "default"}', segment_tag text DEFAULT NULL,
                                             cap_touches int DEFAULT 7, cap_days int DEFAULT 30, name text DEFAULT NULL,
                                             campaign_id text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE id bigint;
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO retail_mid.reach_plan (brand, name, audience, channels, segment_tag, templates, cap_touches, cap_days, send_at, campaign_id)
    VALUES (brand, name, audience, channels, segment_tag, templates, cap_touches, cap_days, send_at, campaign_id)
    RETURNING plan_id INTO id;
    RETURN id;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_create(text, text, text[], timestamp, jsonb, text, int, int, text, text) IS 'Creates a reach plan (cap defaults to 7 touches in 30 days) and returns its plan_id.';

-- Runs a plan: every audience member without a decision gets one, in one transaction.
CREATE FUNCTION retail_mid.reach_plan_run(plan_id bigint)
RETURNS TABLE (run_id bigint, members bigint, already_decided bigint, planned bigint, skipped_frequency_cap bigint,
               skipped_no_consent bigint, skipped_global_opt_out bigint, skipped_same_person bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    p retail_mid.reach_plan; job bigint; aud retail_mid.rbitmap; n_members bigint; n_done bigint;
    n_planned bigint; n_cap bigint; n_consent bigint; n_opt bigint; n_same bigint; v_run bigint; win interval;
BEGIN
    IF plan_id IS NULL THEN
        RAISE EXCEPTION 'plan_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO p FROM retail_mid.reach_plan r WHERE r.plan_id = reach_plan_run.plan_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reach plan % does not exist', plan_id USING ERRCODE = 'undefined_object';
    END IF;
    job := retail_mid.job_start('reach_plan_run', jsonb_build_object('plan_id', plan_id, 'brand', p.brand));
    -- Serialise the runs of a brand: a concurrent run waits here, then (read committed) sees the first one's
    -- outbox rows; under repeatable read it fails with 40001 instead of counting from a stale snapshot.
    INSERT INTO retail_mid.reach_brand_lock AS l (brand) VALUES (p.brand)
    ON CONFLICT (brand) DO UPDATE SET last_run_at = now();
    SELECT * INTO p FROM retail_mid.reach_plan r WHERE r.plan_id = reach_plan_run.plan_id;
    win := make_interval(days => p.cap_days);

    -- the plan's brand is the context: brand tags answer with that brand's values, not another brand's
    aud := retail_mid.audience(p.audience, p.brand);
    n_members := retail_mid.rb_cardinality(aud);
    IF n_members = 0 THEN
        RAISE EXCEPTION 'the audience of reach plan % is empty', plan_id USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('Audience expression: %s', p.audience);
    END IF;
    CREATE TEMP TABLE rm_reach_member (customer_key int4 PRIMARY KEY, person int4, segment text, channel text, reason text) ON COMMIT DROP;
    -- the member's OneID person (oneid_person_brand, in the plan's brand: at most one row per key; a key without a
    -- person is its own): the keys of one person share the frequency cap and one touch per plan
    INSERT INTO rm_reach_member (customer_key, person)
    SELECT k, coalesce(ob.person_key, k) FROM retail_mid.rb_iterate(aud) k
      LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = k
     WHERE NOT EXISTS (SELECT 1 FROM retail_mid.reach_outbox o WHERE o.plan_id = p.plan_id AND o.customer_key = k);
    CREATE INDEX ON rm_reach_member (person);
    n_done := n_members - (SELECT count(*) FROM rm_reach_member);
    ANALYZE rm_reach_member;
    RAISE NOTICE 'reach_plan_run: plan %: % audience members, % decided before, % to decide', plan_id, n_members, n_done, n_members - n_done;

    IF p.segment_tag IS NOT NULL THEN
        -- a brand tag's segment in the plan's brand; a group tag's group-wide value
        UPDATE rm_reach_member m SET segment = v.value FROM retail_mid.tag_value v, retail_mid.tag_definition d
         WHERE d.tag_name = p.segment_tag AND v.tag_name = d.tag_name AND v.valid_to IS NULL AND v.customer_key = m.customer_key
           AND v.brand = CASE d.scope WHEN 'brand' THEN p.brand ELSE '*' END;
    END IF;

    -- Consent as of send_at: the latest row per channel; a channel is usable when that row grants it and no
    -- global opt-out is as recent or more recent. The customer's preference rank first, then the plan's order.
    WITH latest AS (
        SELECT DISTINCT ON (c.customer_key, c.channel) c.customer_key, c.channel, c.status, c.preference, c.changed_at
          FROM retail_mid.reach_consent c JOIN rm_reach_member m ON m.customer_key = c.customer_key
         WHERE c.brand = p.brand AND c.changed_at <= p.send_at AND (c.channel = '*' OR c.channel = ANY (p.channels))
         ORDER BY c.customer_key, c.channel, c.changed_at DESC),
    usable AS (
        SELECT DISTINCT ON (l.customer_key) l.customer_key, l.channel
          FROM latest l LEFT JOIN latest g ON g.customer_key = l.customer_key AND g.channel = '*'
         WHERE l.channel <> '*' AND l.status = 'granted' AND (g.changed_at IS NULL OR g.changed_at < l.changed_at)
         ORDER BY l.customer_key, l.preference NULLS LAST, array_position(p.channels, l.channel))
    UPDATE rm_reach_member m SET channel = u.channel FROM usable u WHERE u.customer_key = m.customer_key;
    UPDATE rm_reach_member m SET reason = CASE WHEN EXISTS (SELECT 1 FROM retail_mid.reach_consent c
                                                             WHERE c.brand = p.brand AND c.customer_key = m.customer_key
                                                               AND c.channel = '*' AND c.changed_at <= p.send_at)
                                               THEN 'global_opt_out' ELSE 'no_consent' END
     WHERE m.channel IS NULL;

    -- One person, one touch: a plan touches a person once, through the lowest key with a channel, unless an
    -- earlier run of the plan already touched the person through another key.
    WITH earlier AS (
        SELECT coalesce(ob.person_key, o.customer_key) AS person
          FROM retail_mid.reach_outbox o
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = o.customer_key
         WHERE o.plan_id = p.plan_id AND o.status IN ('planned', 'sent', 'delivered')),
    ranked AS (
        SELECT m.customer_key, row_number() OVER (PARTITION BY m.person ORDER BY m.customer_key) AS k,
               m.person IN (SELECT e.person FROM earlier e) AS touched
          FROM rm_reach_member m WHERE m.channel IS NOT NULL)
    UPDATE rm_reach_member m SET reason = 'same_person', channel = NULL
      FROM ranked r WHERE r.customer_key = m.customer_key AND (r.k > 1 OR r.touched);

    -- Frequency cap over every window (e - cap_days, e]: the new touch at send_at is allowed when each window
    -- containing it (e in [send_at, send_at + cap_days)) holds fewer than cap_touches touches. Such a window
    -- is fullest when it ends at send_at or at one of the touches after send_at (later plans count too).
    -- (per person: the touches of all the person's keys)
    WITH t AS (
        SELECT m.person AS customer_key, r.touched_at
          FROM retail_mid.reach_touch r
          LEFT JOIN retail_mid.oneid_person_brand ob ON ob.brand = p.brand AND ob.customer_key = r.customer_key
          JOIN rm_reach_member m ON m.person = coalesce(ob.person_key, r.customer_key)
         WHERE m.channel IS NOT NULL AND r.brand = p.brand
           AND r.touched_at > p.send_at - win AND r.touched_at < p.send_at + win),
    w AS (
        SELECT t.customer_key, t.touched_at,
               count(*) OVER (PARTITION BY t.customer_key ORDER BY t.touched_at
                              RANGE BETWEEN win - interval '1 microsecond' PRECEDING AND CURRENT ROW) AS ending_here,
               count(*) FILTER (WHERE t.touched_at <= p.send_at) OVER (PARTITION BY t.customer_key) AS ending_at_send
          FROM t),
    fullest AS (
        SELECT w.customer_key, max(greatest(CASE WHEN w.touched_at > p.send_at THEN w.ending_here ELSE 0 END, w.ending_at_send)) AS n
          FROM w GROUP BY w.customer_key)
    UPDATE rm_reach_member m SET reason = 'frequency_cap', channel = NULL
      FROM fullest f WHERE f.customer_key = m.person AND f.n >= p.cap_touches AND m.channel IS NOT NULL;

    INSERT INTO retail_mid.reach_run (plan_id, brand, job_id, members, already_decided, planned)
    VALUES (p.plan_id, p.brand, job, n_members, n_done, 0) RETURNING reach_run.run_id INTO v_run;
    INSERT INTO retail_mid.reach_outbox (plan_id, brand, customer_key, channel, template, planned_at, status, reason, run_id)
    SELECT p.plan_id, p.brand, m.customer_key, m.channel,
           CASE WHEN m.channel IS NOT NULL THEN coalesce(p.templates ->> m.segment, p.templates ->> '*') END,
           p.send_at, CASE WHEN m.channel IS NULL THEN 'skipped' ELSE 'planned' END, m.reason, v_run
      FROM rm_reach_member m ORDER BY m.customer_key
    ON CONFLICT ON CONSTRAINT reach_outbox_pkey DO NOTHING;
    SELECT count(*) FILTER (WHERE m.channel IS NOT NULL), count(*) FILTER (WHERE m.reason = 'frequency_cap'),
           count(*) FILTER (WHERE m.reason = 'no_consent'), count(*) FILTER (WHERE m.reason = 'global_opt_out'),
           count(*) FILTER (WHERE m.reason = 'same_person')
      INTO n_planned, n_cap, n_consent, n_opt, n_same FROM rm_reach_member m;
    UPDATE retail_mid.reach_run r SET planned = n_planned,
           skipped = jsonb_build_object('frequency_cap', n_cap, 'no_consent', n_consent, 'global_opt_out', n_opt, 'same_person', n_same)
     WHERE r.run_id = v_run;
    RAISE NOTICE 'reach_plan_run: plan %: % touches planned, skipped: % over the frequency cap, % without consent, % opted out, % other keys of a person touched',
        plan_id, n_planned, n_cap, n_consent, n_opt, n_same;
    PERFORM retail_mid.job_finish(job, n_planned + n_cap + n_consent + n_opt + n_same,
        jsonb_build_object('run_id', v_run, 'members', n_members, 'already_decided', n_done, 'planned', n_planned,
                           'skipped', jsonb_build_object('frequency_cap', n_cap, 'no_consent', n_consent, 'global_opt_out', n_opt, 'same_person', n_same)));
    DROP TABLE rm_reach_member;
    RETURN QUERY SELECT v_run, n_members, n_done, n_planned, n_cap, n_consent, n_opt, n_same;
END;
$$;
COMMENT ON FUNCTION retail_mid.reach_plan_run(bigint) IS 'Decides every audience member of a plan that has no decision yet: the most preferred consented channel and the segment''s template, or skipped (frequency_cap per OneID person, no_consent, global_opt_out, same_person); writes reach_outbox, reach_run and job_log. Re-running writes nothing twice; runs of one brand are serialised.';

-- ----------------------------------------------------------------- media backflow
-- The end of the window of behaviour tags: the setting retail_mid.as_of when set (reproducible runs, back-fills),
-- else the current local time.
CREATE FUNCTION retail_mid.behavior_as_of() RETURNS timestamp
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE s text := nullif(btrim(current_setting('retail_mid.as_of', true)), '');
BEGIN
    IF s IS NULL THEN
        RETURN localtimestamp;
    END IF;
    -- checked by pattern, not by catching the cast's error: an exception block would start a subtransaction,
    -- which a parallel worker may not
    IF retail_mid.invalid_field(s, 'timestamp') THEN
        RAISE EXCEPTION 'retail_mid.as_of is not a timestamp: "%"', s USING ERRCODE = 'invalid_datetime_format';
    END IF;
    RETURN s::timestamp;
END;
$$;
COMMENT ON FUNCTION retail_mid.behavior_as_of() IS 'End of the windows of behaviour tags (media_exposures_30d ...): the setting retail_mid.as_of if set, else the local time now.';

-- Media feedback file (CSV with header): id_type, id_value, event_time, event_type (exposure|impression|click),
-- campaign_id, media, event_count. Rows become ods_behavior_event rows (exposure or click, object campaign =
-- campaign_id, channel = the media platform, default 'media'); then the enabled tags reading ods_behavior_event
-- are re-evaluated, so the media tags follow the load.
CREATE FUNCTION retail_mid.load_media_feedback(path text, brand text DEFAULT 'media', max_rejected bigint DEFAULT 0,
                                               refresh_tags boolean DEFAULT true)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; v_tags text[];
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_rejected IS NULL OR max_rejected < 0 THEN
        RAISE EXCEPTION 'max_rejected must be zero or positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_job := retail_mid.job_start('load_media_feedback', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_media (line_no bigint GENERATED ALWAYS AS IDENTITY, id_type text, id_value text, event_time text,
        event_type text, campaign_id text, media text, event_count text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_media', 'id_type, id_value, event_time, event_type, campaign_id, media, event_count');
    UPDATE rm_media SET id_type = lower(btrim(id_type)), event_type = lower(btrim(event_type));
    UPDATE rm_media SET reason = CASE
        WHEN id_type IS NULL OR id_type NOT IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')
             THEN 'unknown id_type'
        WHEN retail_mid.invalid_field(id_value, 'text') THEN 'missing id_value'
        WHEN retail_mid.invalid_field(event_time, 'timestamp') THEN 'event_time is not a timestamp'
        WHEN event_type IS NULL OR event_type NOT IN ('exposure', 'impression', 'click') THEN 'event_type is not exposure, impression or click'
        WHEN event_count IS NOT NULL AND btrim(event_count) <> '' AND (event_count !~ '^\s*\d{1,9}\s*$' OR event_count::int = 0)
             THEN 'event_count is not a positive integer' END;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_media');
    SELECT count(*) INTO v_loaded FROM rm_media;
    v_load := retail_mid.finish_load('media_feedback', path, brand, v_read, v_loaded, v_rejects, max_rejected);

    -- reloading a file replaces its rows
    DELETE FROM retail_mid.ods_behavior_event e USING retail_mid.ods_load l
     WHERE e.load_id = l.load_id AND l.source = 'media_feedback' AND l.path = load_media_feedback.path
       AND l.brand = load_media_feedback.brand AND e.brand = load_media_feedback.brand AND l.load_id <> v_load;
    PERFORM retail_mid.assign_customer_keys(array_agg(id_type), array_agg(btrim(id_value))) FROM rm_media;
    INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value,
                                              channel, event_count, load_id)
    SELECT load_media_feedback.brand, id_type, btrim(id_value), btrim(event_time)::timestamp,
           CASE event_type WHEN 'click' THEN 'click' ELSE 'exposure' END,
           CASE WHEN nullif(btrim(campaign_id), '') IS NOT NULL THEN 'campaign' END, nullif(btrim(campaign_id), ''),
           coalesce(nullif(lower(btrim(media)), ''), 'media'), coalesce(nullif(btrim(event_count), '')::int, 1), v_load
      FROM rm_media ORDER BY line_no;
    DROP TABLE rm_media;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    IF refresh_tags THEN
        -- the tag rules are planned next: without statistics that include this load, their joins can be
        -- planned as if the new rows did not exist
        ANALYZE retail_mid.ods_behavior_event, retail_mid.customer_key;
        SELECT array_agg(t.tag_name ORDER BY t.tag_name) INTO v_tags FROM retail_mid.tag_definition t
         WHERE t.enabled AND t.rule_sql ~* 'ods_behavior_event';
        IF v_tags IS NOT NULL THEN
            PERFORM retail_mid.evaluate_tags(v_tags);
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_media_feedback(text, text, bigint, boolean) IS 'Loads a media feedback file (exposures and clicks per identifier and campaign) as behaviour events, then re-evaluates the enabled tags that read ods_behavior_event (media_exposures_30d, media_clicks_30d ...).';

INSERT INTO retail_mid.tag_definition (tag_name, level1, level2, level3, level4, value_type, rule_sql, description, numeric_scale, scope) VALUES
 ('media_exposures_30d', '客户行为数据', '营销行为', '营销响应', '', 'numeric',
  $r$SELECT k.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'exposure'), 0), e.brand
       FROM retail_mid.ods_behavior_event e
       JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = btrim(e.id_value)
      WHERE e.event_type IN ('exposure', 'click')
        AND e.event_time > (SELECT retail_mid.behavior_as_of()) - interval '30 days' AND e.event_time <= (SELECT retail_mid.behavior_as_of())
      GROUP BY e.brand, k.customer_key$r$,
  'Exposures (ad impressions) in the 30 days up to behavior_as_of(), per brand (the brand the feedback was loaded for), all channels; 0 for customers who only clicked.', 0, 'brand'),
 ('media_clicks_30d', '客户行为数据', '营销行为', '营销响应', '', 'numeric',
  $r$SELECT k.customer_key, coalesce(sum(e.event_count) FILTER (WHERE e.event_type = 'click'), 0), e.brand
       FROM retail_mid.ods_behavior_event e
       JOIN retail_mid.customer_key k ON k.id_type = e.id_type AND k.id_value = btrim(e.id_value)
      WHERE e.event_type IN ('exposure', 'click')
        AND e.event_time > (SELECT retail_mid.behavior_as_of()) - interval '30 days' AND e.event_time <= (SELECT retail_mid.behavior_as_of())
      GROUP BY e.brand, k.customer_key$r$,
  'Clicks in the 30 days up to behavior_as_of(), per brand (the brand the feedback was loaded for), all channels; 0 for customers exposed but never clicking in the window.', 0, 'brand');

-- ----------------------------------------------------------------- campaign tags and tag percentiles
-- One boolean tag per campaign and response: <prefix>received_<id> (touch sent or exposed) and
-- <prefix>redeemed_<id> (coupon redeemed), of scope brand (the campaign's brand: its analysts read them). The tag system keeps one value per customer and tag, so a
-- multi-valued "received campaign" becomes a family of boolean tags; customers without the response have no
-- value, and NOT received_<id> is everyone else.
CREATE FUNCTION retail_mid.define_campaign_tags(brand text, prefix text DEFAULT '')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF brand IS NULL OR btrim(brand) = '' THEN
        RAISE EXCEPTION 'brand must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prefix IS NULL OR prefix ~ '[\s"'']' THEN
        RAISE EXCEPTION 'tag name prefix must not be NULL or contain spaces or quotes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.ods_campaign c WHERE c.brand = define_campaign_tags.brand)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.ods_campaign_touch t WHERE t.brand = define_campaign_tags.brand) THEN
        RAISE EXCEPTION 'brand "%" has no campaigns', brand USING ERRCODE = 'undefined_object';
    END IF;
    -- touch identifiers without a key get one (Complete Journey: households that received a campaign but have no
    -- baskets and no demographics are in no other file)
    PERFORM retail_mid.assign_customer_keys(array_agg(t.id_type), array_agg(t.id_value))
       FROM (SELECT DISTINCT x.id_type, x.id_value FROM retail_mid.ods_campaign_touch x
              WHERE x.brand = define_campaign_tags.brand) t;
    INSERT INTO retail_mid.tag_definition AS d (tag_name, level1, level2, level3, level4, value_type, rule_sql, description, schedule, scope)
    SELECT prefix || kind || '_' || regexp_replace(c.campaign_id, '[\s"'']', '_', 'g'),
           '客户行为数据', '营销行为', CASE kind WHEN 'received' THEN '活动参与和偏好' ELSE '营销响应' END, '', 'boolean',
           format($r$SELECT k.customer_key, true, t.brand FROM retail_mid.ods_campaign_touch t
                      JOIN retail_mid.customer_key k ON k.id_type = t.id_type AND k.id_value = btrim(t.id_value)
                     WHERE t.brand = %L AND t.campaign_id = %L AND t.touch_type IN (%s) GROUP BY t.brand, k.customer_key$r$,
                  brand, c.campaign_id, CASE kind WHEN 'received' THEN '''sent'', ''exposed''' ELSE '''redeemed''' END),
           format('%s campaign %s of brand %s.', CASE kind WHEN 'received' THEN 'Received (sent or exposed)' ELSE 'Redeemed a coupon of' END,
                  c.campaign_id, brand),
           'manual', 'brand'
      FROM (SELECT campaign_id FROM retail_mid.ods_campaign WHERE ods_campaign.brand = define_campaign_tags.brand
            UNION SELECT campaign_id FROM retail_mid.ods_campaign_touch WHERE ods_campaign_touch.brand = define_campaign_tags.brand) c
     CROSS JOIN (VALUES ('received'), ('redeemed')) v(kind)
    ON CONFLICT (tag_name) DO UPDATE SET rule_sql = excluded.rule_sql, description = excluded.description,
                                         value_type = excluded.value_type, scope = excluded.scope,
                                         shared_with_brands = false;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.define_campaign_tags(text, text) IS 'Creates or updates two boolean tags of scope brand per campaign of a brand, <prefix>received_<campaign_id> and <prefix>redeemed_<campaign_id>, and gives customer keys to touch identifiers without one; returns how many definitions were written (evaluate them with evaluate_tags).';

-- The percentile of a numeric tag over the values the caller may read, for thresholds like "top 20%":
-- tag >= tag_percentile(tag, 0.8). percentile_disc returns an actual value, so ties at the threshold are all in.
-- A brand tag holds one value per brand and customer: without a brand the percentile is over all of them (the
-- caller's brands for an analyst), with a brand over that brand's values; a group tag's values are group-wide,
-- and with a brand only those of the brand's customers count.
CREATE FUNCTION retail_mid.tag_percentile(tag text, fraction float8, brand text DEFAULT NULL)
RETURNS numeric LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE vt text; sc text; r numeric; b text := brand;
BEGIN
    IF tag IS NULL OR fraction IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT d.value_type, d.scope INTO vt, sc FROM retail_mid.tag_definition d WHERE d.tag_name = tag;
    IF vt IS NULL THEN
        RAISE EXCEPTION 'unknown tag "%"', tag USING ERRCODE = 'undefined_object';
    ELSIF vt <> 'numeric' THEN
        RAISE EXCEPTION 'tag "%" is not numeric', tag USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF fraction = 'NaN' OR fraction < 0 OR fraction > 1 THEN
        RAISE EXCEPTION 'fraction must be between 0 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- like the audience evaluator: no silent NULL for a tag the caller may not read
    IF sc = 'group' AND NOT (SELECT d.shared_with_brands FROM retail_mid.tag_definition d WHERE d.tag_name = tag)
       AND NOT retail_mid.brand_visible('*') THEN
        RAISE EXCEPTION 'tag "%" is group-wide and not shared with brands', tag USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT percentile_disc(fraction) WITHIN GROUP (ORDER BY v.numeric_value) INTO r
      FROM retail_mid.tag_value v
     WHERE v.tag_name = tag AND v.valid_to IS NULL
       AND (b IS NULL OR CASE WHEN sc = 'brand' THEN v.brand = b
                              ELSE v.customer_key IN (SELECT cb.customer_key FROM retail_mid.customer_brand cb WHERE cb.brand = b) END);
    RETURN r;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_percentile(text, float8, text) IS 'percentile_disc of a numeric tag''s current values readable by the caller (NULL when there are none): the smallest value with at least that fraction of values at or below it; with a brand, that brand''s values of a brand tag, or a group tag''s values of the brand''s customers. NULL tag or fraction give NULL.';

-- ===== src/security.sql =====
-- security: shipped roles with least-privilege grants, brand isolation by row-level security driven by an
-- entitlement table, and personal data masked by rules held as data. Runs last: it secures what the other
-- domains created.

-- Roles are cluster-wide, so they are created only when missing (a second database or a reinstall reuses them).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_admin') THEN CREATE ROLE retail_mid_admin NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_analyst') THEN CREATE ROLE retail_mid_analyst NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_bi') THEN CREATE ROLE retail_mid_bi NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_pii_reader') THEN CREATE ROLE retail_mid_pii_reader NOLOGIN; END IF;
    -- owns the masked and brand-scoped views: not a superuser, not BYPASSRLS, owns no table, has no members, so
    -- the base tables' row-level security applies when its views read them (evaluated for the calling user)
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'retail_mid_view_owner') THEN
        CREATE ROLE retail_mid_view_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END;
$$;

CREATE TABLE retail_mid.brand_entitlement (
    grantee  regrole NOT NULL,
    brand    text NOT NULL CHECK (brand <> ''),
    PRIMARY KEY (grantee, brand)
);
COMMENT ON TABLE retail_mid.brand_entitlement IS 'Which role sees which brand. A session sees the brands of every role it is a member of; grant one entitlement role to several users to share a group of brands deliberately. Members of retail_mid_admin see every brand.';
COMMENT ON COLUMN retail_mid.brand_entitlement.grantee IS 'Role (a user or a group role) entitled to the brand.';
COMMENT ON COLUMN retail_mid.brand_entitlement.brand IS 'Brand code as in the brand columns.';

CREATE FUNCTION retail_mid.brand_visible(brand text)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE')
        OR EXISTS (SELECT 1 FROM retail_mid.brand_entitlement e
                    WHERE e.brand = brand_visible.brand AND pg_catalog.pg_has_role(CURRENT_USER, e.grantee::oid, 'USAGE'));
END;
COMMENT ON FUNCTION retail_mid.brand_visible(text) IS 'Whether the current user may see rows of a brand (retail_mid_admin, or an entitlement of one of its roles). Used by the brand_isolation policies.';

-- Puts a table with a brand column under brand isolation. Also usable on user tables.
CREATE FUNCTION retail_mid.secure_brand_table(tbl regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% has no brand column', tbl USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'brand_isolation') THEN
        EXECUTE format('CREATE POLICY brand_isolation ON %s USING (retail_mid.brand_visible(brand)) WITH CHECK (retail_mid.brand_visible(brand))', tbl);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.secure_brand_table(regclass) IS 'Enables row-level security on a table with a brand column, with the brand_isolation policy (rows of brands the user is entitled to).';

-- Which customers belong to which brand: the scope of the group-wide customer tables (customer keys, the values
-- and bitmaps of group tags shared with brands, OneID, audiences), through the customer_scope and
-- shared_group_values policies and the brand-scoped views.
CREATE TABLE retail_mid.customer_brand (
    brand        text NOT NULL,
    customer_key int4 NOT NULL,
    PRIMARY KEY (brand, customer_key)
);
CREATE INDEX ON retail_mid.customer_brand (customer_key);
COMMENT ON TABLE retail_mid.customer_brand IS 'Customers of each brand (keys of its ODS customers and identifiers and of its DWD trade), rebuilt by retail_mid.refresh; brand-isolated, it scopes the group-wide customer tables in the brand-scoped views.';
COMMENT ON COLUMN retail_mid.customer_brand.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.customer_brand.customer_key IS 'Customer key (retail_mid.customer_key).';

CREATE FUNCTION retail_mid.refresh_customer_brand()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    CREATE TEMP TABLE rm_customer_brand ON COMMIT DROP AS
    SELECT c.brand, k.customer_key FROM retail_mid.ods_customer c
      JOIN retail_mid.customer_key k ON k.id_type = c.id_type AND k.id_value = c.customer_id
    UNION
    SELECT i.brand, k.customer_key FROM retail_mid.ods_customer_identifier i
      JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.id_value = i.id_value
    UNION
    SELECT DISTINCT d.brand, d.customer_key FROM retail_mid.dwd_trade_order_line_di d WHERE d.customer_key IS NOT NULL;
    DELETE FROM retail_mid.customer_brand cb
     WHERE NOT EXISTS (SELECT 1 FROM rm_customer_brand x WHERE x.brand = cb.brand AND x.customer_key = cb.customer_key);
    INSERT INTO retail_mid.customer_brand SELECT brand, customer_key FROM rm_customer_brand ON CONFLICT DO NOTHING;
    SELECT count(*) INTO n FROM rm_customer_brand;
    DROP TABLE rm_customer_brand;
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_customer_brand() IS 'Rebuilds retail_mid.customer_brand from the ODS customers and identifiers and the DWD trade, and the per-brand tag bitmaps; called by retail_mid.refresh; returns its rows.';

-- Tag bitmaps per brand. The evaluator ORs every row of tag_bitmap / tag_bsi it may read for a tag value (or
-- range), and row-level security on their brand column decides which rows those are. Tags of scope brand get
-- their brand rows from evaluate_tags (each brand's own values). A group tag has only its group-wide row
-- (brand '*', admins), unless an administrator shared it (tag_definition.shared_with_brands): then one row per
-- entitled brand holds the group-wide bitmap AND the brand's customers, built here.

-- Rebuilds the per-brand rows of the shared group tags (of the named tags, or all) from their group-wide rows,
-- for every brand of brand_entitlement, and drops those of group tags no longer shared; brand tags are left
-- alone (evaluate_tags writes them). Returns the rows written.
CREATE FUNCTION retail_mid.refresh_brand_tag_bitmaps(tag_names text[] DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; m bigint; grp text[]; shared text[];
BEGIN
    SELECT coalesce(array_agg(d.tag_name), '{}'), coalesce(array_agg(d.tag_name) FILTER (WHERE d.shared_with_brands), '{}')
      INTO grp, shared
      FROM retail_mid.tag_definition d WHERE d.scope = 'group' AND (tag_names IS NULL OR d.tag_name = ANY (tag_names));
    DELETE FROM retail_mid.tag_bitmap t WHERE t.brand <> '*' AND t.tag_name = ANY (grp);
    DELETE FROM retail_mid.tag_bsi t WHERE t.brand <> '*' AND t.tag_name = ANY (grp);
    IF cardinality(shared) = 0 THEN
        RETURN 0;
    END IF;
    CREATE TEMP TABLE rm_brand_customers ON COMMIT DROP AS
    SELECT cb.brand, retail_mid.rb_build_agg(cb.customer_key) AS customers FROM retail_mid.customer_brand cb
     WHERE cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*') GROUP BY cb.brand;
    INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
    SELECT t.tag_name, t.tag_value, b.brand, retail_mid.rb_and(t.bitmap, b.customers), retail_mid.rb_and_cardinality(t.bitmap, b.customers)
      FROM retail_mid.tag_bitmap t CROSS JOIN rm_brand_customers b
     WHERE t.brand = '*' AND t.tag_name = ANY (shared) AND retail_mid.rb_and_cardinality(t.bitmap, b.customers) > 0;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- a brand's bit-sliced index is built from its customers' group-wide values at the scale of the group-wide one
    INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
    SELECT t.tag_name, cb.brand, t.scale, min(v.numeric_value), max(v.numeric_value), count(*),
           retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, t.scale))::int8)
      FROM retail_mid.tag_bsi t
      JOIN retail_mid.tag_value v ON v.tag_name = t.tag_name AND v.brand = '*' AND v.valid_to IS NULL AND v.numeric_value IS NOT NULL
      JOIN retail_mid.customer_brand cb ON cb.customer_key = v.customer_key
     WHERE t.brand = '*' AND t.tag_name = ANY (shared)
       AND cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*')
     GROUP BY t.tag_name, cb.brand, t.scale;
    GET DIAGNOSTICS m = ROW_COUNT;
    DROP TABLE rm_brand_customers;
    RETURN n + m;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_brand_tag_bitmaps(text[]) IS 'Rebuilds the per-brand rows of tag_bitmap (each group-wide bitmap AND the brand''s customers) and tag_bsi (the index of the brand''s customers'' values) of the group tags shared with brands, for every entitled brand, and drops those of unshared group tags; tags of scope brand are untouched. Called when tags are evaluated, customers refreshed, entitlements or sharing change.';

-- evaluate_tags writes the group-wide rows: the brand rows of shared group tags follow
CREATE FUNCTION retail_mid.tag_bitmap_written()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE tags text[];
BEGIN
    SELECT array_agg(DISTINCT n.tag_name) INTO tags FROM new_rows n
     WHERE n.brand = '*' AND n.tag_name IN (SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.scope = 'group');
    IF tags IS NOT NULL THEN
        PERFORM retail_mid.refresh_brand_tag_bitmaps(tags);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_bitmap_written() IS 'Trigger: rebuilds the per-brand rows of the group tags whose group-wide bitmaps were written (rows only when the tag is shared with brands).';
CREATE TRIGGER tag_bitmap_written AFTER INSERT ON retail_mid.tag_bitmap
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.tag_bitmap_written();
CREATE TRIGGER tag_bsi_written AFTER INSERT ON retail_mid.tag_bsi
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.tag_bitmap_written();

-- Sharing a group tag (or withdrawing it) adds (drops) its brand rows at once. A group tag turned into a brand
-- tag loses the brand rows derived from its group-wide values; its values and bitmaps by brand come with its
-- next evaluation (until then only administrators see its old group-wide values).
CREATE FUNCTION retail_mid.tag_sharing_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.scope = 'group' THEN
        PERFORM retail_mid.refresh_brand_tag_bitmaps(ARRAY[NEW.tag_name]);
    ELSIF OLD.scope = 'group' THEN
        DELETE FROM retail_mid.tag_bitmap t WHERE t.tag_name = NEW.tag_name AND t.brand <> '*';
        DELETE FROM retail_mid.tag_bsi t WHERE t.tag_name = NEW.tag_name AND t.brand <> '*';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.tag_sharing_changed() IS 'Trigger: keeps the per-brand tag bitmaps in line with tag_definition.scope and shared_with_brands.';
CREATE TRIGGER tag_sharing_changed AFTER UPDATE OF scope, shared_with_brands ON retail_mid.tag_definition
    FOR EACH ROW WHEN (OLD.scope IS DISTINCT FROM NEW.scope OR OLD.shared_with_brands IS DISTINCT FROM NEW.shared_with_brands)
    EXECUTE FUNCTION retail_mid.tag_sharing_changed();

SELECT retail_mid.secure_brand_table(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'retail_mid' AND c.relkind IN ('r', 'p')
   AND c.oid <> 'retail_mid.brand_entitlement'::regclass
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND NOT a.attisdropped);

-- The '*' rows of the per-brand settings tables are the defaults of every brand without its own settings, not
-- data of a brand: whoever reads the table reads them (policies are permissive: either one admits a row).
CREATE POLICY brand_defaults ON retail_mid.rfm_config FOR SELECT USING (brand = '*');
CREATE POLICY brand_defaults ON retail_mid.aipl_rule FOR SELECT USING (brand = '*');

-- Saved audiences (audience_package, brand-isolated above): a brand's audiences are read and saved by the users
-- entitled to the brand, group-wide ones ('*') by admins. An inserted snapshot must hold customers of its brand only
-- (save_audience cuts it down so; the check stops a hand-written INSERT). audience_member_brand, owned by
-- retail_mid_view_owner, also reads the group-wide audiences (the policy's role is the view's owner; the view
-- keeps only members of the caller's brands).
CREATE POLICY brand_members_only ON retail_mid.audience_package AS RESTRICTIVE FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE')
                OR (brand OPERATOR(pg_catalog.<>) '*'
                    AND retail_mid.rb_contained(snapshot, coalesce((SELECT retail_mid.rb_build_agg(cb.customer_key) FROM retail_mid.customer_brand cb
                                                                     WHERE cb.brand OPERATOR(pg_catalog.=) audience_package.brand), '{}'))
                    AND customers OPERATOR(pg_catalog.=) retail_mid.rb_cardinality(snapshot)));
CREATE POLICY groupwide_in_brand_view ON retail_mid.audience_package FOR SELECT TO retail_mid_view_owner USING (brand OPERATOR(pg_catalog.=) '*');

-- a user sees its own entitlements only (brand_visible cannot guard this table: it reads it)
ALTER TABLE retail_mid.brand_entitlement ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_entitlements ON retail_mid.brand_entitlement
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') OR pg_catalog.pg_has_role(CURRENT_USER, grantee::oid, 'USAGE'));

-- A new or withdrawn entitlement adds or drops the brand's rows of the tag bitmaps.
CREATE FUNCTION retail_mid.brand_entitlement_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.brand_entitlement_changed() IS 'Trigger: keeps the per-brand tag bitmaps in line with the entitled brands.';
CREATE TRIGGER brand_entitlement_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retail_mid.brand_entitlement
    FOR EACH STATEMENT EXECUTE FUNCTION retail_mid.brand_entitlement_changed();

-- Tag values: brand rows are under brand_isolation (above, like every table with a brand column). The group-wide
-- rows (brand '*') pass brand_isolation for admins only (retail_mid.brand_visible('*')); the policy below adds,
-- for reading, the group-wide values of the tags an administrator shared with brands, for the customers of the
-- reader's brands (customer_brand, itself brand-isolated). Both are STABLE and uncorrelated: the subqueries are
-- hashed once per query.
CREATE POLICY shared_group_values ON retail_mid.tag_value FOR SELECT
    USING (brand OPERATOR(pg_catalog.=) '*'
           AND tag_name OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.shared_with_brands))
           AND customer_key IN (SELECT cb.customer_key FROM retail_mid.customer_brand cb));
-- Group-wide customer tables under row-level security scoped by customer: a row is visible to admins, and to
-- others when its customer belongs to one of their brands (retail_mid.customer_brand, itself brand-isolated).
ALTER TABLE retail_mid.customer_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_scope ON retail_mid.customer_key
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE')
           OR EXISTS (SELECT 1 FROM retail_mid.customer_brand cb WHERE cb.customer_key OPERATOR(pg_catalog.=) customer_key.customer_key));
-- the cached universe of all customers is group-wide: admins only (others compute theirs from the two above)
ALTER TABLE retail_mid.customer_universe ENABLE ROW LEVEL SECURITY;
CREATE POLICY admins_only ON retail_mid.customer_universe
    USING (pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE'));

-- The extension's views run with the caller's rights, so the policies above apply through them too. (The masked
-- and brand-scoped views created below are the exception: they are owned by retail_mid_view_owner instead.)
DO $$
DECLARE v regclass;
BEGIN
    FOR v IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'retail_mid' AND c.relkind = 'v' LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END;
$$;

-- ----------------------------------------------------------------- personal data masking
CREATE TABLE retail_mid.pii_mask_rule (
    table_name  regclass NOT NULL,
    column_name text NOT NULL,
    method      text NOT NULL CHECK (method IN ('redact', 'partial', 'email', 'hash', 'year')),
    PRIMARY KEY (table_name, column_name)
);
COMMENT ON TABLE retail_mid.pii_mask_rule IS 'Personal data columns and how they are masked for roles that are not members of retail_mid_pii_reader. Changing a rule recreates the table''s _masked view and withdraws direct reads of the table from analysts and BI.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.table_name IS 'Table holding the column.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.column_name IS 'Personal data column.';
COMMENT ON COLUMN retail_mid.pii_mask_rule.method IS 'redact (NULL), partial (first 3 and last 2 characters), email (first character and the domain), hash (md5 text, stable for joins), year (dates to 1 January of their year).';

CREATE FUNCTION retail_mid.pii_mask(value text, method text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE WHEN value IS NULL OR pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_pii_reader', 'USAGE') THEN value
                WHEN method = 'redact' THEN NULL
                WHEN method = 'partial' THEN CASE WHEN pg_catalog.length(value) <= 5 THEN '***'
                                                  ELSE pg_catalog.left(value, 3) OPERATOR(pg_catalog.||) '****' OPERATOR(pg_catalog.||) pg_catalog.right(value, 2) END
                WHEN method = 'email' THEN pg_catalog.left(value, 1) OPERATOR(pg_catalog.||) '***' OPERATOR(pg_catalog.||) pg_catalog.substring(value, '@.*$')
                WHEN method = 'hash' THEN pg_catalog.md5(value)
                WHEN method = 'year' THEN pg_catalog.date_trunc('year', value::date)::date::text
                ELSE NULL END;
END;
COMMENT ON FUNCTION retail_mid.pii_mask(text, text) IS 'A personal data value as the current user may see it: unchanged for members of retail_mid_pii_reader, else masked by the method.';

-- Shipped rules: every ODS column holding a name, phone, e-mail, birth date or an identifier value (phones,
-- e-mails, device and social open ids). DWD and DWS carry only customer keys.
INSERT INTO retail_mid.pii_mask_rule
SELECT t::regclass, c, m FROM (VALUES
    ('retail_mid.ods_customer', 'name', 'partial'), ('retail_mid.ods_customer', 'phone', 'partial'),
    ('retail_mid.ods_customer', 'email', 'email'), ('retail_mid.ods_customer', 'birth_date', 'year'),
    ('retail_mid.ods_customer_identifier', 'id_value', 'hash'), ('retail_mid.customer_key', 'id_value', 'hash'),
    ('retail_mid.ods_behavior_event', 'id_value', 'hash'), ('retail_mid.ods_campaign_touch', 'id_value', 'hash')) v(t, c, m)
 WHERE to_regclass(t) IS NOT NULL;

-- Creates or replaces <table>_masked: every column, personal ones masked by their rule, over a security
-- barrier. It is owned by retail_mid_view_owner, so it reads the personal columns its callers may not read,
-- while the row-level security of the base table still applies (for the calling user: the policies test
-- CURRENT_USER, which a view does not change). A table without a brand column but with a customer_key is
-- scoped to the customers of the caller's brands (retail_mid.customer_brand, itself brand-isolated). Analysts
-- and BI read it; only pii_reader members and admins read the table itself.
-- The one SECURITY DEFINER function of the extension: handing a view to retail_mid_view_owner needs a superuser
-- (the extension's owner), and admins change masking rules. It takes only a table of the extension's schema or one
-- under brand isolation, builds every name from the catalog and the rules (quoted), pins search_path, and is
-- executable by retail_mid_admin only.
CREATE FUNCTION retail_mid.pii_create_masked_view(tbl regclass)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
    vname text;
    has_brand boolean;
    has_customer boolean;
    scope text := '';
    old_view regclass;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'pii_create_masked_view needs a table' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = tbl AND c.relkind IN ('r', 'p')
                      AND (c.relnamespace = 'retail_mid'::regnamespace
                           OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'brand_isolation'))) THEN
        RAISE EXCEPTION '% is not a table of retail_mid or under brand isolation', tbl USING ERRCODE = 'wrong_object_type',
            HINT = 'Masked views are made for the extension''s tables and for tables secured by retail_mid.secure_brand_table.';
    END IF;
    vname := format('%I.%I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl),
                    (SELECT c.relname FROM pg_class c WHERE c.oid = tbl) || '_masked');
    old_view := to_regclass(vname);
    IF old_view IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = old_view AND c.relkind = 'v'
                                                AND c.relowner = 'retail_mid_view_owner'::regrole) THEN
        RAISE EXCEPTION '% exists and is not a masked view', vname USING ERRCODE = 'duplicate_table';
    END IF;
    IF old_view IS NULL AND NOT EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule r WHERE r.table_name = tbl) THEN
        RAISE EXCEPTION '% has no masking rule', tbl USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Add its rules to retail_mid.pii_mask_rule (which creates the view).';
    END IF;
    SELECT string_agg(CASE WHEN r.method IS NULL THEN format('t.%I', a.attname)
                           WHEN r.method = 'hash' THEN format('retail_mid.pii_mask(t.%I::text, %L) AS %I', a.attname, r.method, a.attname)
                           ELSE format('retail_mid.pii_mask(t.%I::text, %L)::%s AS %I', a.attname, r.method, format_type(a.atttypid, a.atttypmod), a.attname) END,
                      ', ' ORDER BY a.attnum),
           bool_or(a.attname = 'brand'), bool_or(a.attname = 'customer_key')
      INTO cols, has_brand, has_customer
      FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
    IF cols IS NULL THEN
        RAISE EXCEPTION '% has no columns', tbl USING ERRCODE = 'undefined_table';
    END IF;
    IF NOT has_brand AND has_customer THEN
        scope := ' WHERE EXISTS (SELECT 1 FROM retail_mid.customer_brand cb WHERE cb.customer_key = t.customer_key)';
    END IF;
    -- dropped and created (not replaced): a hash rule changes the column's type to text
    IF old_view IS NOT NULL THEN
        EXECUTE format('DROP VIEW %s', vname);
    END IF;
    EXECUTE format('CREATE VIEW %s WITH (security_barrier = true) AS SELECT %s FROM %s AS t%s', vname, cols, tbl, scope);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_view_owner', tbl);
    IF scope <> '' THEN
        GRANT SELECT ON retail_mid.customer_brand TO retail_mid_view_owner;
    END IF;
    EXECUTE format('ALTER VIEW %s OWNER TO retail_mid_view_owner', vname);
    EXECUTE format('COMMENT ON VIEW %s IS %L', vname, format('%s with personal data masked by retail_mid.pii_mask_rule for non-members of retail_mid_pii_reader; %s',
                   tbl, CASE WHEN has_brand THEN 'brand-isolated by the table''s row-level security.'
                             WHEN has_customer THEN 'scoped to the customers of the caller''s brands.'
                             ELSE 'not brand-scoped (no brand or customer_key column): admins and pii_reader only.' END));
    -- the base table's column comments carry over, marked where the column is masked (BI tools show them)
    FOR cols IN SELECT format('COMMENT ON COLUMN %s.%I IS %L', vname, a.attname,
                              coalesce(col_description(tbl, a.attnum), a.attname) ||
                              CASE WHEN r.method IS NOT NULL THEN format(' Masked (%s) for non-members of retail_mid_pii_reader.', r.method) ELSE '' END)
                  FROM pg_attribute a LEFT JOIN retail_mid.pii_mask_rule r ON r.table_name = tbl AND r.column_name = a.attname
                 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE cols;
    END LOOP;
    -- the table itself: personal data, so only pii_reader members (and admins) read it directly
    EXECUTE format('REVOKE SELECT ON %s FROM retail_mid_analyst, retail_mid_bi', tbl);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_pii_reader, retail_mid_admin', tbl);
    EXECUTE format('GRANT SELECT ON %s TO retail_mid_admin, retail_mid_pii_reader', vname);
    IF has_brand OR has_customer THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst, retail_mid_bi', vname);
    END IF;
    RETURN vname;
END;
$$;
COMMENT ON FUNCTION retail_mid.pii_create_masked_view(regclass) IS 'Creates or replaces <table>_masked (owned by retail_mid_view_owner): personal data columns masked per pii_mask_rule, rows under the table''s row-level security or scoped to the caller''s brands'' customers; withdraws direct reads of the table from analysts and BI. SECURITY DEFINER (it hands the view to retail_mid_view_owner), for tables of the extension''s schema or under brand isolation that have rules or a masked view; executable by retail_mid_admin.';
REVOKE EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.pii_create_masked_view(regclass) TO retail_mid_admin;

SELECT retail_mid.pii_create_masked_view(t) FROM (SELECT DISTINCT table_name AS t FROM retail_mid.pii_mask_rule) x;

-- Masking rules are data: adding, changing or removing one recreates the masked view of its table.
CREATE FUNCTION retail_mid.pii_mask_rule_changed()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM retail_mid.pii_create_masked_view(NEW.table_name);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR OLD.table_name <> NEW.table_name) THEN
        PERFORM retail_mid.pii_create_masked_view(OLD.table_name);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.pii_mask_rule_changed() IS 'Trigger: recreates the masked view of a table whose masking rules changed.';
CREATE TRIGGER pii_mask_rule_changed AFTER INSERT OR UPDATE OR DELETE ON retail_mid.pii_mask_rule
    FOR EACH ROW EXECUTE FUNCTION retail_mid.pii_mask_rule_changed();

-- ----------------------------------------------------------------- brand-scoped views of group-wide customer data
-- OneID persons, tag values and audience members are group-wide (a customer may buy from several brands).
-- Analysts and BI read them only through these views: one row per brand of the customer, rows of the caller's
-- brands only (retail_mid.customer_brand is brand-isolated; the views, owned by retail_mid_view_owner, read
-- the group-wide tables the callers may not read).
CREATE VIEW retail_mid.oneid_person_brand WITH (security_barrier = true) AS
SELECT cb.brand::text AS brand, m.customer_key::int4 AS customer_key, m.person_key::int4 AS person_key
  FROM retail_mid.oneid_person_map m JOIN retail_mid.customer_brand cb ON cb.customer_key = m.customer_key;
COMMENT ON VIEW retail_mid.oneid_person_brand IS 'OneID persons of the customers of the caller''s brands: the brand-scoped way to read retail_mid.oneid_person_map.';
COMMENT ON COLUMN retail_mid.oneid_person_brand.brand IS 'Brand the customer key belongs to.';
COMMENT ON COLUMN retail_mid.oneid_person_brand.customer_key IS 'Customer key (one identifier).';
COMMENT ON COLUMN retail_mid.oneid_person_brand.person_key IS 'Person the identifier resolves to.';

CREATE VIEW retail_mid.tag_value_brand WITH (security_barrier = true) AS
SELECT v.brand::text AS brand, v.tag_name::text AS tag_name, v.customer_key::int4 AS customer_key, v.value::text AS value,
       v.numeric_value::numeric AS numeric_value, v.valid_from::timestamptz AS valid_from, 'brand'::text AS scope
  FROM retail_mid.tag_value v
 WHERE v.valid_to IS NULL AND v.brand <> '*'
UNION ALL
SELECT cb.brand::text, v.tag_name::text, v.customer_key::int4, v.value::text, v.numeric_value::numeric, v.valid_from::timestamptz,
       'group'::text
  FROM retail_mid.tag_value v JOIN retail_mid.customer_brand cb ON cb.customer_key = v.customer_key
 WHERE v.valid_to IS NULL AND v.brand = '*';
COMMENT ON VIEW retail_mid.tag_value_brand IS 'Current tag values the caller may read, by brand: the values of brand tags in the caller''s brands, and the group-wide values of group tags (shared with brands, or any for admins) once per brand of the customer. The brand-scoped way to read retail_mid.tag_value.';
COMMENT ON COLUMN retail_mid.tag_value_brand.brand IS 'Brand whose data gave the value (scope brand), or a brand the customer belongs to (scope group).';
COMMENT ON COLUMN retail_mid.tag_value_brand.tag_name IS 'Tag.';
COMMENT ON COLUMN retail_mid.tag_value_brand.customer_key IS 'Customer key.';
COMMENT ON COLUMN retail_mid.tag_value_brand.value IS 'Current value as text.';
COMMENT ON COLUMN retail_mid.tag_value_brand.numeric_value IS 'Current value of a numeric tag.';
COMMENT ON COLUMN retail_mid.tag_value_brand.valid_from IS 'Since when the value holds.';
COMMENT ON COLUMN retail_mid.tag_value_brand.scope IS 'brand: the value was computed from this brand''s data only; group: a group-wide value (all brands'' data).';

CREATE VIEW retail_mid.audience_member_brand WITH (security_barrier = true) AS
SELECT p.name::text AS audience_name, p.version::int AS version, cb.brand::text AS brand, m.customer_key::int4 AS customer_key,
       p.brand::text AS audience_brand
  FROM (SELECT DISTINCT ON (name, brand) name, brand, version, snapshot FROM retail_mid.audience_package ORDER BY name, brand, version DESC) p
 CROSS JOIN LATERAL retail_mid.rb_iterate(p.snapshot) AS m(customer_key)
  JOIN retail_mid.customer_brand cb ON cb.customer_key = m.customer_key AND (p.brand = '*' OR cb.brand = p.brand);
COMMENT ON VIEW retail_mid.audience_member_brand IS 'Members of the latest version of every saved audience (group-wide, or of the caller''s brands) that are customers of the caller''s brands: the brand-scoped way to read saved audiences.';
COMMENT ON COLUMN retail_mid.audience_member_brand.audience_brand IS 'Brand the audience was saved for (''*'': group-wide; its members appear under each of their brands the caller sees).';
COMMENT ON COLUMN retail_mid.audience_member_brand.audience_name IS 'Saved audience.';
COMMENT ON COLUMN retail_mid.audience_member_brand.version IS 'Its latest version.';
COMMENT ON COLUMN retail_mid.audience_member_brand.brand IS 'Brand the member belongs to.';
COMMENT ON COLUMN retail_mid.audience_member_brand.customer_key IS 'Member.';

GRANT USAGE ON SCHEMA retail_mid TO retail_mid_view_owner;
GRANT SELECT ON retail_mid.oneid_person_map, retail_mid.tag_value, retail_mid.tag_definition, retail_mid.audience_package, retail_mid.customer_brand TO retail_mid_view_owner;
-- events and touches by customer key (src/aipl.sql), for aipl_signals: the ODS rows of the caller's brands (their
-- row-level security) with the key of every identifier they name, also of identifiers not in customer_brand (an
-- anonymous device seen by brand A only), so the views read the whole dictionary. Every view owned by
-- retail_mid_view_owner that reads customer_key scopes its rows itself (customer_key_masked by customer_brand).
GRANT SELECT ON retail_mid.ods_behavior_event, retail_mid.ods_campaign_touch, retail_mid.customer_key TO retail_mid_view_owner;
CREATE POLICY keyed_views ON retail_mid.customer_key FOR SELECT TO retail_mid_view_owner USING (true);
ALTER VIEW retail_mid.behavior_event_keyed SET (security_invoker = false);
ALTER VIEW retail_mid.campaign_touch_keyed SET (security_invoker = false);
ALTER VIEW retail_mid.behavior_event_keyed OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.campaign_touch_keyed OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.oneid_person_brand OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.tag_value_brand OWNER TO retail_mid_view_owner;
ALTER VIEW retail_mid.audience_member_brand OWNER TO retail_mid_view_owner;

-- ----------------------------------------------------------------- grants (least privilege)
-- Reference data readable by analysts and BI although it has no brand column: definitions and settings only,
-- no rows of any brand. Every other relation without a brand column (group-wide customer data, job logs,
-- tables of domains without brands) is for admins only.
CREATE FUNCTION retail_mid.security_reference_relations()
RETURNS regclass[] LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT pg_catalog.array_agg(c.oid::regclass ORDER BY c.relname)
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'retail_mid'::regnamespace
       AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['metric_atomic', 'metric_qualifier', 'metric_period', 'metric_granularity',
                            'metric_derived', 'metric_composite', 'metric_coverage', 'pii_mask_rule', 'quality_template',
                            'quality_rule', 'quality_rule_version', 'rfm_segment_map', 'rfm_segment_map_def',
                            'tag_taxonomy', 'tag_definition']::name[]);
END;
COMMENT ON FUNCTION retail_mid.security_reference_relations() IS 'The relations without a brand column that analysts and BI may read: definitions and settings, no rows of any brand.';

-- Grants a relation of the extension (or one it generated) to the shipped roles by the rules above: admins
-- everything; analysts a relation with a brand column (under row-level security, or a security_invoker view
-- over such tables) or a reference relation; BI the same for views and DWS tables. Relations under a masking
-- rule are left to pii_create_masked_view.
CREATE FUNCTION retail_mid.security_grant(rel regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    has_brand boolean;
    kind "char";
    reference boolean;
BEGIN
    SELECT c.relkind, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped)
      INTO kind, has_brand FROM pg_class c WHERE c.oid = rel;
    IF kind IN ('r', 'p') THEN
        EXECUTE format('GRANT ALL ON %s TO retail_mid_admin', rel);
    ELSE
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_admin', rel);
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule r WHERE r.table_name = rel) THEN
        RETURN;
    END IF;
    reference := rel = ANY (retail_mid.security_reference_relations());
    IF has_brand OR reference THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_analyst', rel);
    ELSE
        EXECUTE format('REVOKE ALL ON %s FROM retail_mid_analyst, retail_mid_bi', rel);
    END IF;
    IF has_brand AND (kind IN ('v', 'm') OR rel::text LIKE 'retail\_mid.dws\_%') THEN
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', rel);
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.security_grant(regclass) IS 'Grants a relation to retail_mid_admin, retail_mid_analyst and retail_mid_bi by the least-privilege rules (brand column or reference data for analysts; brand-bearing views and DWS tables for BI).';

-- Secures a table generated after installation (the metric registry's dws_metric_* tables): brand isolation
-- when it has a brand column, and the role grants. A table without a brand column mixes brands: admins only.
CREATE FUNCTION retail_mid.secure_generated_table(tbl regclass)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'brand' AND a.attnum > 0 AND NOT a.attisdropped) THEN
        PERFORM retail_mid.secure_brand_table(tbl);
    END IF;
    PERFORM retail_mid.security_grant(tbl);
END;
$$;
COMMENT ON FUNCTION retail_mid.secure_generated_table(regclass) IS 'Brand isolation (when the table has a brand column) and least-privilege grants for a table created after installation; called by metric_generate.';

GRANT USAGE ON SCHEMA retail_mid TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
GRANT ALL ON ALL SEQUENCES IN SCHEMA retail_mid TO retail_mid_admin;
GRANT retail_mid_pii_reader TO retail_mid_admin;
SELECT retail_mid.security_grant(c.oid)
  FROM pg_class c WHERE c.relnamespace = 'retail_mid'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
   AND c.relowner <> 'retail_mid_view_owner'::regrole;
-- BI reads a view together with the brand-isolated tables it reads (security_invoker views need both)
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT d.refobjid::regclass AS base
               FROM pg_class v JOIN pg_rewrite w ON w.ev_class = v.oid
               JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid AND d.refclassid = 'pg_class'::regclass
               JOIN pg_class b ON b.oid = d.refobjid AND b.relkind IN ('r', 'p')
              WHERE v.relnamespace = 'retail_mid'::regnamespace AND v.relkind = 'v' AND d.refobjid <> v.oid
                AND has_table_privilege('retail_mid_bi', v.oid, 'SELECT') AND v.relowner <> 'retail_mid_view_owner'::regrole
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = b.oid AND a.attname = 'brand' AND NOT a.attisdropped)
                AND NOT EXISTS (SELECT 1 FROM retail_mid.pii_mask_rule m WHERE m.table_name = b.oid) LOOP
        EXECUTE format('GRANT SELECT ON %s TO retail_mid_bi', r.base);
    END LOOP;
END;
$$;
-- analysts and BI: the masked views were granted by pii_create_masked_view; the brand-scoped views here
GRANT SELECT ON retail_mid.oneid_person_brand, retail_mid.tag_value_brand, retail_mid.audience_member_brand,
                retail_mid.behavior_event_keyed, retail_mid.campaign_touch_keyed
    TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
-- analysts evaluate audiences: the tag bitmaps (brand rows, by the brand rule above), the current tag values
-- and the universe under their customer-scoped policies, and the keys (not the identifiers) of the dictionary
GRANT SELECT ON retail_mid.tag_value, retail_mid.customer_universe TO retail_mid_analyst;
-- analysts save audiences of their brands (save_audience; under the policies on audience_package above): INSERT of
-- the columns save_audience writes, so created_at and created_by keep their defaults
GRANT INSERT (name, brand, version, expression, canonical_expression, snapshot, customers) ON retail_mid.audience_package TO retail_mid_analyst;
GRANT SELECT (customer_key) ON retail_mid.customer_key TO retail_mid_analyst;
-- brand_visible reads the entitlements (each user sees only its own rows); the definitions BI dashboards label with
GRANT SELECT ON retail_mid.brand_entitlement, retail_mid.quality_rule, retail_mid.quality_template TO retail_mid_bi;
