-- foundation/keydict.sql: the customer key dictionary: one dense int4 key per source customer identifier.
--
-- Every source customer identifier (type + text value) gets one key, so that bitmaps and C aggregates work on
-- integers. Keys never change once given.

CREATE TABLE retail_mid.customer_key (
    customer_key int4 GENERATED ALWAYS AS IDENTITY (MAXVALUE 2147483647) PRIMARY KEY,
    id_type      text NOT NULL,
    id_value     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id_type, id_value),
    CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    CHECK (id_value <> '')
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_key', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_key_customer_key_seq', '');
COMMENT ON TABLE retail_mid.customer_key IS 'Dictionary from source customer identifiers (type, value) to dense int4 keys; a key, once given, never changes.';
COMMENT ON COLUMN retail_mid.customer_key.customer_key IS 'Dense integer key used by every DWD/DWS table, bitmap and aggregate.';
COMMENT ON COLUMN retail_mid.customer_key.id_type IS 'Kind of identifier: member_id, phone, email, device_id, open_id, household_id or customer_id.';
COMMENT ON COLUMN retail_mid.customer_key.id_value IS 'The identifier as the source system spells it (trimmed).';
COMMENT ON COLUMN retail_mid.customer_key.created_at IS 'When the key was given (the first load that saw the identifier).';

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
