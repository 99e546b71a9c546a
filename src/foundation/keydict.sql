-- foundation/keydict.sql: the customer key dictionary: one dense int4 key per source customer identifier.
--
-- Every source customer identifier (type + issuer + text value) gets one key, so that bitmaps and C aggregates work
-- on integers. Keys never change once given. Identifiers a brand issues itself (member_id, customer_id,
-- household_id, open_id) are namespaced by their issuer, the brand: customer "12346" of one brand and customer
-- "12346" of another are different people with different keys. Identifiers that name the same person everywhere
-- (phone, email, device_id) have no issuer ('') and are shared by every brand; OneID links the rest.

CREATE TABLE retail_mid.customer_key (
    customer_key int4 GENERATED ALWAYS AS IDENTITY (MAXVALUE 2147483647) PRIMARY KEY,
    id_type      text NOT NULL,
    id_value     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    issuer       text NOT NULL DEFAULT '',
    CONSTRAINT customer_key_id_type_issuer_id_value_key UNIQUE (id_type, issuer, id_value),
    CHECK (id_type IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')),
    CHECK (id_value <> ''),
    CONSTRAINT customer_key_issuer_check CHECK (issuer = '' OR id_type NOT IN ('phone', 'email', 'device_id'))
);
-- kept by pg_dump (and where its ids continue): docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_key', '');
SELECT pg_catalog.pg_extension_config_dump('retail_mid.customer_key_customer_key_seq', '');
COMMENT ON TABLE retail_mid.customer_key IS 'Dictionary from source customer identifiers (type, issuer, value) to dense int4 keys; a key, once given, never changes.';
COMMENT ON COLUMN retail_mid.customer_key.customer_key IS 'Dense integer key used by every DWD/DWS table, bitmap and aggregate.';
COMMENT ON COLUMN retail_mid.customer_key.id_type IS 'Kind of identifier: member_id, phone, email, device_id, open_id, household_id or customer_id.';
COMMENT ON COLUMN retail_mid.customer_key.id_value IS 'The identifier as the source system spells it (trimmed).';
COMMENT ON COLUMN retail_mid.customer_key.created_at IS 'When the key was given (the first load that saw the identifier).';
COMMENT ON COLUMN retail_mid.customer_key.issuer IS 'Namespace of the identifier: the brand that issued it for member_id, customer_id, household_id and open_id; '''' for phone, email and device_id (the same person in every brand), and for brand-issued identifiers given a key without a brand (no issuer known).';

-- The namespace of an identifier of a brand: '' for the identifier types that name the same person everywhere,
-- the brand for the types a brand issues itself (member and customer ids, households, and open ids, which a
-- platform issues per app: the brand is the closest issuer the ODS knows); '' when the brand is unknown (NULL).
CREATE FUNCTION retail_mid.customer_key_issuer(id_type text, brand text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN id_type IN ('phone', 'email', 'device_id') THEN '' ELSE coalesce(brand, '') END;
COMMENT ON FUNCTION retail_mid.customer_key_issuer(text, text) IS 'Issuer (namespace) of an identifier seen in a brand''s data: '''' for phone, email and device_id, the brand for member_id, customer_id, household_id and open_id ('''' when the brand is NULL). Join an ODS row to its key on (id_type, customer_key_issuer(id_type, brand), id_value).';

-- Gives keys to every (type, issuer, value) of the arrays that has none yet, in one statement. Safe under concurrent
-- loads: ON CONFLICT makes a racing second loader reuse the first one's key. Keys stay dense up to the numbers
-- consumed by rolled-back loads or lost races.
CREATE FUNCTION retail_mid.assign_customer_keys(id_types text[], id_values text[], brands text[])
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF coalesce(array_length(id_types, 1), 0) <> coalesce(array_length(id_values, 1), 0)
       OR (brands IS NOT NULL AND coalesce(array_length(brands, 1), 0) <> coalesce(array_length(id_types, 1), 0)) THEN
        RAISE EXCEPTION 'id_types, id_values and brands must have the same length' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(id_types) t
                WHERE t IS NULL OR t NOT IN ('member_id', 'phone', 'email', 'device_id', 'open_id', 'household_id', 'customer_id')) THEN
        RAISE EXCEPTION 'unknown customer identifier type'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use member_id, phone, email, device_id, open_id, household_id or customer_id.';
    END IF;
    INSERT INTO retail_mid.customer_key (id_type, issuer, id_value)
    SELECT DISTINCT u.t, retail_mid.customer_key_issuer(u.t, u.b), btrim(u.v)
      FROM unnest(id_types, id_values, coalesce(brands, array_fill(NULL::text, ARRAY[coalesce(array_length(id_types, 1), 0)])))
           AS u(t, v, b)
     WHERE u.v IS NOT NULL AND btrim(u.v) <> ''
       AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                        WHERE k.id_type = u.t AND k.issuer = retail_mid.customer_key_issuer(u.t, u.b) AND k.id_value = btrim(u.v))
     ORDER BY 1, 2, 3
    ON CONFLICT (id_type, issuer, id_value) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.assign_customer_keys(text[], text[], text[]) IS 'Gives a dense int4 key to each new identifier (id_type, the issuer customer_key_issuer(id_type, brand), id_value); brands may be NULL (no issuer); returns how many keys were created.';

-- The 1.0.0 form, without brands: identifiers with no issuer. Right for phone, email and device_id; a
-- brand-issued identifier given this way gets a key of its own that no brand's data uses (pass the brands).
CREATE FUNCTION retail_mid.assign_customer_keys(id_types text[], id_values text[])
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN retail_mid.assign_customer_keys(id_types, id_values, NULL::text[]);
COMMENT ON FUNCTION retail_mid.assign_customer_keys(text[], text[]) IS 'Gives a dense int4 key to each new identifier without an issuer (issuer ''''): the form for phone, email and device_id; pass brands (assign_customer_keys(text[], text[], text[])) for brand-issued identifiers. Returns how many keys were created.';

-- Looks the key of one identifier of a brand up, creating it when missing.
CREATE FUNCTION retail_mid.customer_key_of(id_type text, id_value text, brand text)
RETURNS int4 LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE k int4; v_issuer text := retail_mid.customer_key_issuer(id_type, brand);
BEGIN
    SELECT c.customer_key INTO k FROM retail_mid.customer_key c
     WHERE c.id_type = customer_key_of.id_type AND c.issuer = v_issuer AND c.id_value = btrim(customer_key_of.id_value);
    IF k IS NULL THEN
        PERFORM retail_mid.assign_customer_keys(ARRAY[id_type], ARRAY[id_value], ARRAY[brand]);
        SELECT c.customer_key INTO k FROM retail_mid.customer_key c
         WHERE c.id_type = customer_key_of.id_type AND c.issuer = v_issuer AND c.id_value = btrim(customer_key_of.id_value);
    END IF;
    RETURN k;
END;
$$;
COMMENT ON FUNCTION retail_mid.customer_key_of(text, text, text) IS 'The customer key of an identifier seen in a brand''s data (brand-issued types are namespaced by the brand), created on first use.';

-- The 1.0.0 form, without a brand: phone, email and device_id as before. For a brand-issued type it answers what
-- the old call asked, "the key of this identifier", where that is still one key: the key without an issuer if
-- there is one, else the key of the only brand that issued the value; when several brands issued it the call is
-- ambiguous (22023); when none did, a key without an issuer is created.
CREATE FUNCTION retail_mid.customer_key_of(id_type text, id_value text)
RETURNS int4 LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE k int4[]; v text := btrim(id_value);
BEGIN
    SELECT array_agg(c.customer_key ORDER BY c.issuer <> '', c.issuer) INTO k FROM retail_mid.customer_key c
     WHERE c.id_type = customer_key_of.id_type AND c.id_value = v;
    IF cardinality(k) > 1 AND NOT EXISTS (SELECT 1 FROM retail_mid.customer_key c
                                           WHERE c.customer_key = k[1] AND c.issuer = '') THEN
        RAISE EXCEPTION 'customer identifier % "%" was issued by several brands', id_type, v
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Issuers: %s.', (SELECT string_agg(c.issuer, ', ' ORDER BY c.issuer) FROM retail_mid.customer_key c
                                                    WHERE c.id_type = customer_key_of.id_type AND c.id_value = v)),
                  HINT = 'Pass the brand: customer_key_of(id_type, id_value, brand).';
    END IF;
    RETURN coalesce(k[1], retail_mid.customer_key_of(id_type, id_value, ''));
END;
$$;
COMMENT ON FUNCTION retail_mid.customer_key_of(text, text) IS 'The customer key of an identifier without a brand: phone, email and device_id; for a brand-issued type the key without an issuer, else the key of the only brand that issued the value (error 22023 when several did); created without an issuer on first use.';
