-- bitmap/bitmap.sql: retail_mid.rbitmap, a roaring bitmap of int4 customer keys, with set operators and aggregates.
--
-- The bitmaps are CRoaring's (src/bitmap/bitmap.c).

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
