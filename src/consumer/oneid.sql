-- consumer/oneid.sql: one customer identity across channels: the identity graph and its persons.
--
-- The identity graph links customer keys (of member ids, phones, e-mails, devices, open ids) seen together; its
-- connected components are persons, each with a stable person key.

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
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.oneid_person_map', '');
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
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.oneid_merge_log', '');
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
  JOIN retail_mid.customer_key p ON p.id_type = c.id_type AND p.issuer = retail_mid.customer_key_issuer(c.id_type, c.brand)
                                AND p.id_value = c.customer_id
  JOIN retail_mid.customer_key k ON k.id_type = i.id_type AND k.issuer = retail_mid.customer_key_issuer(i.id_type, i.brand)
                                AND k.id_value = i.id_value;
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
    PERFORM retail_mid.assign_customer_keys(array_agg(id_type), array_agg(id_value), array_agg(brand))
       FROM (SELECT DISTINCT id_type, id_value, brand FROM retail_mid.ods_customer_identifier
             UNION SELECT DISTINCT id_type, customer_id, brand FROM retail_mid.ods_customer) i;
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

-- OneID persons are group-wide (a customer may buy from several brands). Analysts and BI read them only through
-- this view: one row per brand of the customer, rows of the caller's brands only (retail_mid.customer_brand is
-- brand-isolated; the view, owned by retail_mid_view_owner (governance/lockdown.sql), reads the group-wide map
-- the callers may not read).
CREATE VIEW retail_mid.oneid_person_brand WITH (security_barrier = true) AS
SELECT cb.brand::text AS brand, m.customer_key::int4 AS customer_key, m.person_key::int4 AS person_key
  FROM retail_mid.oneid_person_map m JOIN retail_mid.customer_brand cb ON cb.customer_key = m.customer_key;
COMMENT ON VIEW retail_mid.oneid_person_brand IS 'OneID persons of the customers of the caller''s brands: the brand-scoped way to read retail_mid.oneid_person_map.';
COMMENT ON COLUMN retail_mid.oneid_person_brand.brand IS 'Brand the customer key belongs to.';
COMMENT ON COLUMN retail_mid.oneid_person_brand.customer_key IS 'Customer key (one identifier).';
COMMENT ON COLUMN retail_mid.oneid_person_brand.person_key IS 'Person the identifier resolves to.';
