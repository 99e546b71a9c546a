-- shard/shard.sql: a sharded deployment on postgres_fdw: one coordinator and N shard servers (docs/shards.md).
--
-- The coordinator owns the customer key dictionary and the global settings; it routes ODS rows to the shard that
-- owns their customer (a hash of the customer key, PostgreSQL's own hash partitioning) or their SKU x store series
-- (a hash of the series); every shard runs the whole pipeline on its own rows; the coordinator sees the shards'
-- customer tables as hash partitions of one table (postgres_fdw foreign tables, server option extensions
-- 'retail_mid' so that whole per-customer aggregates run on the shards) and their per-store tables as views with a
-- shard column. Installed last but one: it secures what it creates with governance/security.sql. postgres_fdw is
-- not required by CREATE EXTENSION; shard_add creates it when a first shard is added.

CREATE TABLE retail_mid.shard (
    shard_no  int4 PRIMARY KEY CHECK (shard_no >= 0),
    server    text NOT NULL UNIQUE CHECK (server ~ '^[a-z_][a-z0-9_]*$'),
    host      text NOT NULL,
    port      int4 NOT NULL CHECK (port BETWEEN 1 AND 65535),
    dbname    text NOT NULL,
    added_at  timestamptz NOT NULL DEFAULT now()
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard', '');
COMMENT ON TABLE retail_mid.shard IS 'The shards of a sharded deployment, on its coordinator (docs/shards.md): shard number (the remainder of the hash partitioning), the postgres_fdw server and where it runs. Empty on a single server and on the shards.';
COMMENT ON COLUMN retail_mid.shard.shard_no IS 'Shard number 0 .. N-1: the remainder of the hash partitioning (modulus N) of the customers and series it owns.';
COMMENT ON COLUMN retail_mid.shard.server IS 'Name of the postgres_fdw foreign server created by shard_add.';
COMMENT ON COLUMN retail_mid.shard.host IS 'Host of the shard''s PostgreSQL (a name, an address or a socket directory).';
COMMENT ON COLUMN retail_mid.shard.port IS 'Port of the shard''s PostgreSQL.';
COMMENT ON COLUMN retail_mid.shard.dbname IS 'Database of the shard (retail_mid installed in it).';
COMMENT ON COLUMN retail_mid.shard.added_at IS 'When shard_add registered the shard.';

-- The hash of PostgreSQL's hash partitioning, through satisfies_hash_partition on these two empty parents: the
-- coordinator's partitioned tables use the same bounds, so routing and partition pruning always agree.
CREATE TABLE retail_mid.shard_customer_route (customer_key int4) PARTITION BY HASH (customer_key);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard_customer_route', '');  -- empty; listed like every table
COMMENT ON TABLE retail_mid.shard_customer_route IS 'Empty, never written: its hash partition key (customer_key) defines which shard owns a customer (shard_of_customer).';
COMMENT ON COLUMN retail_mid.shard_customer_route.customer_key IS 'Customer key (the partition key).';
CREATE TABLE retail_mid.shard_series_route (brand text, store_id text, sku_id text) PARTITION BY HASH (brand, store_id, sku_id);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard_series_route', '');
COMMENT ON TABLE retail_mid.shard_series_route IS 'Empty, never written: its hash partition key (brand, store_id, sku_id) defines which shard owns a SKU x store series (shard_of_series).';
COMMENT ON COLUMN retail_mid.shard_series_route.brand IS 'Brand.';
SELECT retail_mid.secure_brand_table('retail_mid.shard_series_route');
COMMENT ON COLUMN retail_mid.shard_series_route.store_id IS 'Store (site) id.';
COMMENT ON COLUMN retail_mid.shard_series_route.sku_id IS 'SKU id.';

CREATE FUNCTION retail_mid.shard_of_customer(customer_key int4, shards int4)
RETURNS int4 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF shards IS NULL OR shards < 1 OR shards > 1024 THEN
        RAISE EXCEPTION 'shards must be between 1 and 1024' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN 0 .. shards - 1 LOOP
        IF pg_catalog.satisfies_hash_partition('retail_mid.shard_customer_route'::regclass, shards, r, customer_key) THEN
            RETURN r;
        END IF;
    END LOOP;
    RETURN NULL;  -- not reached
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_of_customer(int4, int4) IS 'The shard (0 .. shards-1) owning a customer key: PostgreSQL''s hash partitioning of int4 with that modulus (so the coordinator''s partitions prune correctly); a NULL key (anonymous orders) is owned by the shard PostgreSQL gives NULL to.';

CREATE FUNCTION retail_mid.shard_of_series(brand text, store_id text, sku_id text, shards int4)
RETURNS int4 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF shards IS NULL OR shards < 1 OR shards > 1024 THEN
        RAISE EXCEPTION 'shards must be between 1 and 1024' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN 0 .. shards - 1 LOOP
        IF pg_catalog.satisfies_hash_partition('retail_mid.shard_series_route'::regclass, shards, r, brand, store_id, sku_id) THEN
            RETURN r;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_of_series(text, text, text, int4) IS 'The shard (0 .. shards-1) owning a SKU x store series of a brand: PostgreSQL''s hash partitioning of (brand, store_id, sku_id) with that modulus.';

-- On every node: what the coordinator writes through postgres_fdw where a column is GENERATED ALWAYS (the keys of
-- the coordinator's dictionary and its load ids must arrive unchanged).
CREATE VIEW retail_mid.shard_key_import WITH (security_invoker = true) AS
SELECT customer_key, id_type, issuer, id_value, created_at FROM retail_mid.customer_key WHERE false;
COMMENT ON VIEW retail_mid.shard_key_import IS 'Write-only entry of a shard''s key dictionary: the coordinator inserts its keys here (through postgres_fdw) and they are stored with the same numbers; a key that exists with another identifier is error 22000. Reads return nothing.';
COMMENT ON COLUMN retail_mid.shard_key_import.customer_key IS 'Key given by the coordinator.';
COMMENT ON COLUMN retail_mid.shard_key_import.id_type IS 'Identifier type.';
COMMENT ON COLUMN retail_mid.shard_key_import.issuer IS 'Issuer (namespace) of the identifier.';
COMMENT ON COLUMN retail_mid.shard_key_import.id_value IS 'The identifier.';
COMMENT ON COLUMN retail_mid.shard_key_import.created_at IS 'When the coordinator gave the key.';

CREATE FUNCTION retail_mid.shard_key_import_row() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO retail_mid.customer_key (customer_key, id_type, issuer, id_value, created_at) OVERRIDING SYSTEM VALUE
    VALUES (NEW.customer_key, NEW.id_type, coalesce(NEW.issuer, ''), NEW.id_value, coalesce(NEW.created_at, now()))
    ON CONFLICT DO NOTHING;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.customer_key k
                    WHERE k.customer_key = NEW.customer_key AND k.id_type = NEW.id_type
                      AND k.issuer = coalesce(NEW.issuer, '') AND k.id_value = NEW.id_value) THEN
        RAISE EXCEPTION 'key % of the coordinator''s dictionary is another identifier on this shard', NEW.customer_key
            USING ERRCODE = 'data_exception',
                  DETAIL = format('Coordinator: %s %s (issuer %L).', NEW.id_type, NEW.id_value, NEW.issuer),
                  HINT = 'Keys of a shard are given by its coordinator only; see docs/shards.md.';
    END IF;
    -- a key made here later (it should not be) cannot take a number the coordinator gave
    PERFORM setval('retail_mid.customer_key_customer_key_seq', NEW.customer_key)
       FROM retail_mid.customer_key_customer_key_seq s WHERE s.last_value < NEW.customer_key OR NOT s.is_called;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_key_import_row() IS 'INSTEAD OF INSERT trigger of shard_key_import: stores the coordinator''s key unchanged (OVERRIDING SYSTEM VALUE), checks that it agrees with the shard''s dictionary, and keeps the key sequence above it.';
CREATE TRIGGER shard_key_import INSTEAD OF INSERT ON retail_mid.shard_key_import
    FOR EACH ROW EXECUTE FUNCTION retail_mid.shard_key_import_row();

CREATE VIEW retail_mid.shard_load_import WITH (security_invoker = true) AS
SELECT load_id, source, path, brand, loaded_at, rows_read, rows_loaded, rows_rejected, rejects FROM retail_mid.ods_load WHERE false;
COMMENT ON VIEW retail_mid.shard_load_import IS 'Write-only entry of a shard''s ods_load: the coordinator inserts its loads here (through postgres_fdw) with the same load ids. Reads return nothing.';
COMMENT ON COLUMN retail_mid.shard_load_import.load_id IS 'Load id given by the coordinator.';
COMMENT ON COLUMN retail_mid.shard_load_import.source IS 'Source of the load.';
COMMENT ON COLUMN retail_mid.shard_load_import.path IS 'Path or description of the load.';
COMMENT ON COLUMN retail_mid.shard_load_import.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.shard_load_import.loaded_at IS 'When the coordinator loaded it.';
COMMENT ON COLUMN retail_mid.shard_load_import.rows_read IS 'Rows read (on the coordinator).';
COMMENT ON COLUMN retail_mid.shard_load_import.rows_loaded IS 'Rows loaded (on the coordinator).';
COMMENT ON COLUMN retail_mid.shard_load_import.rows_rejected IS 'Rows rejected (on the coordinator).';
COMMENT ON COLUMN retail_mid.shard_load_import.rejects IS 'Rejects by reason (on the coordinator).';

CREATE FUNCTION retail_mid.shard_load_import_row() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO retail_mid.ods_load (load_id, source, path, brand, loaded_at, rows_read, rows_loaded, rows_rejected, rejects)
    OVERRIDING SYSTEM VALUE
    VALUES (NEW.load_id, NEW.source, NEW.path, NEW.brand, coalesce(NEW.loaded_at, now()), coalesce(NEW.rows_read, 0),
            coalesce(NEW.rows_loaded, 0), coalesce(NEW.rows_rejected, 0), coalesce(NEW.rejects, '{}'))
    ON CONFLICT (load_id) DO NOTHING;
    PERFORM setval('retail_mid.ods_load_load_id_seq', NEW.load_id)
       FROM retail_mid.ods_load_load_id_seq s WHERE s.last_value < NEW.load_id OR NOT s.is_called;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_load_import_row() IS 'INSTEAD OF INSERT trigger of shard_load_import: stores the coordinator''s load with its load id (OVERRIDING SYSTEM VALUE) and keeps the load id sequence above it.';
CREATE TRIGGER shard_load_import INSTEAD OF INSERT ON retail_mid.shard_load_import
    FOR EACH ROW EXECUTE FUNCTION retail_mid.shard_load_import_row();

-- On every shard: the whole daily history of the SKU x store series it owns, handed over by the coordinator
-- (shard_forecast_refresh), fitted here and stored in the shard's replenish_forecast.
CREATE TABLE retail_mid.shard_forecast_input (
    brand    text NOT NULL,
    site_id  text NOT NULL,
    sku_id   text NOT NULL,
    made_on  date NOT NULL,
    horizon  int4 NOT NULL,
    options  jsonb,
    y        float8[] NOT NULL,
    PRIMARY KEY (brand, site_id, sku_id)
);
SELECT pg_catalog.pg_extension_config_dump('retail_mid.shard_forecast_input', '');  -- empty between refreshes
SELECT retail_mid.secure_brand_table('retail_mid.shard_forecast_input');
COMMENT ON TABLE retail_mid.shard_forecast_input IS 'On a shard: the series it owns (a hash of brand, site and SKU), each with its whole zero-filled daily demand summed over every shard, written by the coordinator''s shard_forecast_refresh and emptied when shard_forecast_fit has fitted them. Empty between refreshes.';
COMMENT ON COLUMN retail_mid.shard_forecast_input.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.shard_forecast_input.site_id IS 'Store.';
COMMENT ON COLUMN retail_mid.shard_forecast_input.sku_id IS 'SKU.';
COMMENT ON COLUMN retail_mid.shard_forecast_input.made_on IS 'Last day of the history (replenish_forecast.made_on).';
COMMENT ON COLUMN retail_mid.shard_forecast_input.horizon IS 'Days to forecast.';
COMMENT ON COLUMN retail_mid.shard_forecast_input.options IS 'forecast_array options (NULL: defaults).';
COMMENT ON COLUMN retail_mid.shard_forecast_input.y IS 'Units sold per day from the first sale in the window to made_on, zero-filled, summed over every shard.';

CREATE FUNCTION retail_mid.shard_forecast_fit()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_job bigint; n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM retail_mid.shard_forecast_input) THEN
        RETURN 0;
    END IF;
    v_job := retail_mid.job_start('shard_forecast_fit', jsonb_build_object('series', (SELECT count(*) FROM retail_mid.shard_forecast_input)));
    INSERT INTO retail_mid.replenish_forecast AS f (brand, site_id, sku_id, made_on, result)
    SELECT i.brand, i.site_id, i.sku_id, i.made_on, retail_mid.forecast_array(i.y, i.horizon, 7, i.options)
      FROM retail_mid.shard_forecast_input i
     ORDER BY 1, 2, 3
    ON CONFLICT (brand, site_id, sku_id) DO UPDATE SET made_on = EXCLUDED.made_on, result = EXCLUDED.result;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM retail_mid.shard_forecast_input;
    RAISE NOTICE 'shard_forecast_fit: % series fitted', n;
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_forecast_fit() IS 'On a shard: fits every series of shard_forecast_input with forecast_array (daily, weekly season, as replenish_refresh_forecasts), stores the results in replenish_forecast (replacing a series'' row) and empties the input; logs a job_log row. Returns series fitted. Called by the coordinator through the view shard_forecast_run.';

-- Reading this view runs the fits: the coordinator reads every shard's at once (postgres_fdw's asynchronous
-- Append), so the shards fit their series in parallel, and only a count travels back.
CREATE VIEW retail_mid.shard_forecast_run WITH (security_invoker = true) AS SELECT retail_mid.shard_forecast_fit() AS series;
COMMENT ON VIEW retail_mid.shard_forecast_run IS 'On a shard: reading it fits the series the coordinator handed over (shard_forecast_fit) and returns how many; the coordinator reads every shard''s at once, so the shards fit in parallel.';
COMMENT ON COLUMN retail_mid.shard_forecast_run.series IS 'Series fitted.';

-- What the coordinator sees of the shards, and how. Customer tables: hash partitions on customer_key. Per-store
-- and per-series tables, partial per shard (every shard sells every SKU to its own customers): a view with the
-- shard number. ODS: foreign tables per shard, written by shard_load. Global: written by shard_sync_global.
CREATE FUNCTION retail_mid.shard_tables(kind text)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind
    WHEN 'customer' THEN ARRAY['dwd_trade_order_line_di', 'dws_trade_customer_1d', 'dws_trade_customer_td',
                               'dws_aipl_customer_stage_1d', 'rfm_snapshot', 'customer_brand', 'tag_value']
    WHEN 'series' THEN ARRAY['replenish_forecast']
    WHEN 'partial' THEN ARRAY['dws_trade_store_1d', 'dws_trade_sku_store_1d', 'dws_trade_store_td', 'dws_trade_sku_store_td',
                              'dwd_trade_cleaning_1d', 'tag_bitmap', 'quality_result', 'job_log']
    WHEN 'ods_customer' THEN ARRAY['ods_customer', 'ods_customer_identifier', 'ods_order', 'ods_order_line',
                                   'ods_behavior_event', 'ods_campaign_touch']
    WHEN 'ods_series' THEN ARRAY['ods_inventory_snapshot', 'ods_inbound_shipment']
    WHEN 'ods_reference' THEN ARRAY['ods_product', 'ods_site', 'ods_promotion', 'ods_campaign', 'ods_demand_zone']
    WHEN 'global' THEN ARRAY['brand_entitlement', 'rfm_segment_map_def', 'rfm_segment_map', 'rfm_config', 'aipl_rule',
                             'tag_taxonomy', 'tag_definition']
    WHEN 'import' THEN ARRAY['shard_key_import', 'shard_load_import', 'shard_forecast_input', 'shard_forecast_run']
END;
COMMENT ON FUNCTION retail_mid.shard_tables(text) IS 'The tables of each kind in a sharded deployment: customer (hash partitions on customer_key on the coordinator), series (hash partitions on brand, site and SKU), partial (views with a shard column), ods_customer (routed by customer key), ods_series (routed by series), ods_reference (copied to every shard), global (kept in step by shard_sync_global), import (write-only entries); NULL for another kind.';

CREATE FUNCTION retail_mid.shard_count()
RETURNS int4 LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n int4; m int4;
BEGIN
    SELECT count(*), max(shard_no) INTO n, m FROM retail_mid.shard;
    IF n = 0 THEN
        RAISE EXCEPTION 'no shard is registered' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Add the shards with retail_mid.shard_add on the coordinator first.';
    END IF;
    IF m <> n - 1 THEN
        RAISE EXCEPTION 'shard numbers must be 0 .. %', n - 1 USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_count() IS 'The number of registered shards (the modulus of the hash partitioning); error 55000 when there is none.';

-- The column list of a local table, for a foreign table of the same shape.
CREATE FUNCTION retail_mid.shard_columns(tbl regclass)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
END;
COMMENT ON FUNCTION retail_mid.shard_columns(regclass) IS 'Column definitions of a table (name and type, in order), for the foreign tables of the shards.';

-- Registers a shard: the postgres_fdw server (extensions 'retail_mid', async_capable), the user mapping, and the
-- foreign tables of the ODS, import and global tables (schema retail_mid_dist, suffix _s<shard_no>).
CREATE FUNCTION retail_mid.shard_add(server text, host text, port int4, dbname text, user_name text DEFAULT NULL,
                                     password text DEFAULT NULL)
RETURNS int4 LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_no int4; t text; v_user text := coalesce(user_name, CURRENT_USER::text);
BEGIN
    IF server IS NULL OR host IS NULL OR port IS NULL OR dbname IS NULL THEN
        RAISE EXCEPTION 'shard_add arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF server !~ '^[a-z_][a-z0-9_]*$' OR length(server) > 50 THEN
        RAISE EXCEPTION 'invalid shard server name "%"', server USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use lower-case letters, digits and underscores, at most 50 characters.';
    END IF;
    IF port NOT BETWEEN 1 AND 65535 THEN
        RAISE EXCEPTION 'port % is out of range', port USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.shard s WHERE s.server = shard_add.server) THEN
        RAISE EXCEPTION 'shard "%" is already registered', server USING ERRCODE = 'duplicate_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'postgres_fdw') THEN
        RAISE EXCEPTION 'postgres_fdw is not installed' USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'A sharded deployment reads its shards through PostgreSQL''s postgres_fdw.',
            HINT = 'Install PostgreSQL''s contrib modules (in Debian they are part of the postgresql-15 package).';
    END IF;
    CREATE EXTENSION IF NOT EXISTS postgres_fdw;
    SELECT coalesce(max(shard_no) + 1, 0) INTO v_no FROM retail_mid.shard;
    EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L, '
                   'extensions %L, async_capable %L, fetch_size %L, batch_size %L, application_name %L)',
                   server, host, port::text, dbname, 'retail_mid', 'true', '10000', '1000', 'retail_mid coordinator');
    -- every coordinator user reads the shards as this user: brand isolation is applied on the coordinator
    IF password IS NULL THEN
        EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L, password_required %L)', server, v_user, 'false');
    ELSE
        EXECUTE format('CREATE USER MAPPING FOR PUBLIC SERVER %I OPTIONS (user %L, password %L)', server, v_user, password);
    END IF;
    CREATE SCHEMA IF NOT EXISTS retail_mid_dist;
    COMMENT ON SCHEMA retail_mid_dist IS 'The shards as seen from the coordinator (docs/shards.md): customer tables as hash partitions, per-store tables as views with a shard column, the foreign tables of each shard (suffix _s<shard_no>).';
    FOREACH t IN ARRAY retail_mid.shard_tables('ods_customer') || retail_mid.shard_tables('ods_series')
                       || retail_mid.shard_tables('ods_reference') || retail_mid.shard_tables('global')
                       || retail_mid.shard_tables('import') || retail_mid.shard_tables('partial') LOOP
        EXECUTE format('CREATE FOREIGN TABLE retail_mid_dist.%I (%s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                       t || '_s' || v_no, retail_mid.shard_columns(format('retail_mid.%I', t)::regclass), server, 'retail_mid', t);
        EXECUTE format('REVOKE ALL ON retail_mid_dist.%I FROM PUBLIC', t || '_s' || v_no);
    END LOOP;
    INSERT INTO retail_mid.shard (shard_no, server, host, port, dbname) VALUES (v_no, server, host, port, dbname);
    RAISE NOTICE 'shard_add: shard % is server % (%:%, database %)', v_no, server, host, port, dbname;
    RETURN v_no;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_add(text, text, int4, text, text, text) IS 'On the coordinator: registers a shard (retail_mid installed there) as the next shard number; creates postgres_fdw when missing (error 55000 when it is not installed), the foreign server (extensions retail_mid, async_capable), a user mapping for every user, and the foreign tables of the shard in schema retail_mid_dist. Without a password the mapping does not require one (superuser only). Returns the shard number.';

-- Builds the coordinator's view of every shard: one partitioned table per customer table (hash on customer_key,
-- a foreign partition per shard) and one view per partial table, brand-isolated and granted like on one server.
CREATE FUNCTION retail_mid.shard_attach_tables()
RETURNS int4 LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n int4 := retail_mid.shard_count(); t text; s record; v_union text; v_made int4 := 0;
BEGIN
    FOREACH t IN ARRAY retail_mid.shard_tables('customer') LOOP
        EXECUTE format('DROP TABLE IF EXISTS retail_mid_dist.%I CASCADE', t);
        EXECUTE format('CREATE TABLE retail_mid_dist.%I (LIKE retail_mid.%I) PARTITION BY HASH (customer_key)', t, t);
        FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
            EXECUTE format('CREATE FOREIGN TABLE retail_mid_dist.%I PARTITION OF retail_mid_dist.%I '
                           'FOR VALUES WITH (MODULUS %s, REMAINDER %s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                           t || '_p' || s.shard_no, t, n, s.shard_no, s.server, 'retail_mid', t);
            EXECUTE format('REVOKE ALL ON retail_mid_dist.%I FROM PUBLIC', t || '_p' || s.shard_no);
            EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin', t || '_p' || s.shard_no);
        END LOOP;
        EXECUTE format('COMMENT ON TABLE retail_mid_dist.%I IS %L', t,
                       format('retail_mid.%s of every shard: hash partitions on customer_key over postgres_fdw (built by shard_attach_tables).', t));
        PERFORM retail_mid.secure_brand_table(format('retail_mid_dist.%I', t)::regclass);
        EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin, retail_mid_analyst, retail_mid_bi', t);
        v_made := v_made + 1;
    END LOOP;
    -- per-series tables: hash partitions on (brand, site_id, sku_id), the bounds of shard_of_series
    FOREACH t IN ARRAY retail_mid.shard_tables('series') LOOP
        EXECUTE format('DROP TABLE IF EXISTS retail_mid_dist.%I CASCADE', t);
        EXECUTE format('CREATE TABLE retail_mid_dist.%I (LIKE retail_mid.%I) PARTITION BY HASH (brand, site_id, sku_id)', t, t);
        FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
            EXECUTE format('CREATE FOREIGN TABLE retail_mid_dist.%I PARTITION OF retail_mid_dist.%I '
                           'FOR VALUES WITH (MODULUS %s, REMAINDER %s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                           t || '_p' || s.shard_no, t, n, s.shard_no, s.server, 'retail_mid', t);
            EXECUTE format('REVOKE ALL ON retail_mid_dist.%I FROM PUBLIC', t || '_p' || s.shard_no);
            EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin', t || '_p' || s.shard_no);
        END LOOP;
        EXECUTE format('COMMENT ON TABLE retail_mid_dist.%I IS %L', t,
                       format('retail_mid.%s of every shard: hash partitions on (brand, site_id, sku_id) over postgres_fdw, each series on the shard that owns it (built by shard_attach_tables).', t));
        PERFORM retail_mid.secure_brand_table(format('retail_mid_dist.%I', t)::regclass);
        EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin, retail_mid_analyst, retail_mid_bi', t);
        v_made := v_made + 1;
    END LOOP;
    -- the write-only entries of shards added before a newer version of the extension listed them
    FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
        FOREACH t IN ARRAY retail_mid.shard_tables('import') LOOP
            IF to_regclass(format('retail_mid_dist.%I', t || '_s' || s.shard_no)) IS NULL THEN
                EXECUTE format('CREATE FOREIGN TABLE retail_mid_dist.%I (%s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                               t || '_s' || s.shard_no, retail_mid.shard_columns(format('retail_mid.%I', t)::regclass), s.server, 'retail_mid', t);
                EXECUTE format('REVOKE ALL ON retail_mid_dist.%I FROM PUBLIC', t || '_s' || s.shard_no);
            END IF;
        END LOOP;
    END LOOP;
    FOREACH t IN ARRAY retail_mid.shard_tables('partial') LOOP
        SELECT string_agg(format('SELECT %s AS shard_no, * FROM retail_mid_dist.%I', sh.shard_no, t || '_s' || sh.shard_no),
                          ' UNION ALL ' ORDER BY sh.shard_no) INTO v_union FROM retail_mid.shard sh;
        EXECUTE format('DROP VIEW IF EXISTS retail_mid_dist.%I', t);
        -- the shards' rows carry no row-level security across postgres_fdw: the view filters by brand itself
        EXECUTE format('CREATE VIEW retail_mid_dist.%I WITH (security_barrier) AS SELECT * FROM (%s) u %s', t, v_union,
                       CASE WHEN t IN ('quality_result', 'job_log') THEN 'WHERE pg_catalog.pg_has_role(CURRENT_USER, ''retail_mid_admin'', ''USAGE'')'
                            ELSE 'WHERE retail_mid.brand_visible(u.brand)' END);
        EXECUTE format('COMMENT ON VIEW retail_mid_dist.%I IS %L', t,
                       format('retail_mid.%s of every shard with its shard number (each shard''s part, over postgres_fdw; sum or OR them for the whole); brand-isolated.', t));
        EXECUTE format('GRANT SELECT ON retail_mid_dist.%I TO retail_mid_admin, retail_mid_analyst, retail_mid_bi', t);
        v_made := v_made + 1;
    END LOOP;
    GRANT USAGE ON SCHEMA retail_mid_dist TO retail_mid_admin, retail_mid_analyst, retail_mid_bi;
    -- whole per-customer aggregates run on the shards only with partitionwise aggregation
    EXECUTE format('ALTER DATABASE %I SET enable_partitionwise_aggregate = on', current_database());
    SET enable_partitionwise_aggregate = on;
    RAISE NOTICE 'shard_attach_tables: % tables over % shards', v_made, n;
    RETURN v_made;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_attach_tables() IS 'On the coordinator: (re)builds schema retail_mid_dist: every customer table as a table hash-partitioned on customer_key whose partitions are the shards'' tables (postgres_fdw), every per-series table (replenish_forecast) hash-partitioned on (brand, site_id, sku_id), every per-store table as a view of all shards with a shard_no column; both brand-isolated and readable by the shipped roles. Turns enable_partitionwise_aggregate on for the database. Returns the number of relations built.';

-- Gives a key to every customer identifier of the local ODS (a brand, or all), in one deterministic order; used
-- by shard_load before routing (the coordinator owns the dictionary).
CREATE FUNCTION retail_mid.shard_assign_keys(brand text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint := 0; m bigint;
BEGIN
    SELECT retail_mid.assign_customer_keys(array_agg(x.t ORDER BY x.b, x.t, x.v), array_agg(x.v ORDER BY x.b, x.t, x.v),
                                           array_agg(x.b ORDER BY x.b, x.t, x.v)) INTO m
      FROM (SELECT c.id_type AS t, btrim(c.customer_id) AS v, c.brand AS b FROM retail_mid.ods_customer c
             WHERE shard_assign_keys.brand IS NULL OR c.brand = shard_assign_keys.brand
            UNION
            SELECT i.id_type, btrim(i.id_value), i.brand FROM retail_mid.ods_customer_identifier i
             WHERE shard_assign_keys.brand IS NULL OR i.brand = shard_assign_keys.brand
            UNION
            SELECT o.id_type, btrim(o.customer_id), o.brand FROM retail_mid.ods_order o
             WHERE o.id_type IS NOT NULL AND o.customer_id IS NOT NULL AND (shard_assign_keys.brand IS NULL OR o.brand = shard_assign_keys.brand)
            UNION
            SELECT e.id_type, btrim(e.id_value), e.brand FROM retail_mid.ods_behavior_event e
             WHERE shard_assign_keys.brand IS NULL OR e.brand = shard_assign_keys.brand
            UNION
            SELECT t.id_type, btrim(t.id_value), t.brand FROM retail_mid.ods_campaign_touch t
             WHERE shard_assign_keys.brand IS NULL OR t.brand = shard_assign_keys.brand) x
     WHERE x.v <> '';
    n := n + coalesce(m, 0);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_assign_keys(text) IS 'Gives keys to every customer identifier of the local ODS (of a brand, or all brands: customers, identifiers, orders, behaviour events, campaign touches) in a fixed order; returns how many keys were created. The coordinator''s first step of shard_load.';

-- The key of an identifier of a brand, for routing (NULL when anonymous or unknown).
CREATE FUNCTION retail_mid.shard_key_lookup(id_type text, id_value text, brand text)
RETURNS int4 LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT k.customer_key FROM retail_mid.customer_key k
     WHERE k.id_type = shard_key_lookup.id_type AND k.issuer = retail_mid.customer_key_issuer(shard_key_lookup.id_type, shard_key_lookup.brand)
       AND k.id_value = btrim(shard_key_lookup.id_value);
END;
COMMENT ON FUNCTION retail_mid.shard_key_lookup(text, text, text) IS 'The key of an identifier seen in a brand''s data, without creating it (NULL when there is none).';

-- Routes the local ODS rows of a brand to the shards and replaces the brand's ODS rows there; the keys first.
CREATE FUNCTION retail_mid.shard_load(brand text, keep_local boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int4 := retail_mid.shard_count(); b text := brand; s record; t text; v_job bigint; v_rows bigint; v_total bigint := 0;
    v_keys bigint; v_per jsonb := '{}'; v_where text; v_cols text;
BEGIN
    IF brand IS NULL OR keep_local IS NULL THEN
        RAISE EXCEPTION 'shard_load arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regclass('retail_mid_dist.ods_order_s0') IS NULL THEN
        RAISE EXCEPTION 'the shards'' foreign tables are missing' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Register the shards with retail_mid.shard_add.';
    END IF;
    v_job := retail_mid.job_start('shard_load', jsonb_build_object('brand', brand, 'shards', n));
    v_keys := retail_mid.shard_assign_keys(b);
    RAISE NOTICE 'shard_load: % new keys for brand %; routing to % shards', v_keys, b, n;

    -- the owner of each customer-keyed row: its identifier's key; order lines follow their order
    DROP TABLE IF EXISTS pg_temp.rm_shard_keys;
    CREATE TEMP TABLE rm_shard_keys ON COMMIT DROP AS
    SELECT k.customer_key, retail_mid.shard_of_customer(k.customer_key, n) AS shard_no FROM retail_mid.customer_key k;
    CREATE UNIQUE INDEX ON rm_shard_keys (customer_key);
    DROP TABLE IF EXISTS pg_temp.rm_shard_order;
    CREATE TEMP TABLE rm_shard_order ON COMMIT DROP AS
    SELECT o.order_id, retail_mid.shard_of_customer(retail_mid.shard_key_lookup(o.id_type, o.customer_id, o.brand), n) AS shard_no
      FROM retail_mid.ods_order o WHERE o.brand = b;
    CREATE UNIQUE INDEX ON rm_shard_order (order_id);
    ANALYZE rm_shard_keys; ANALYZE rm_shard_order;

    FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
        -- the brand's rows on the shard are replaced (children first)
        FOREACH t IN ARRAY ARRAY['ods_order_line', 'ods_order', 'ods_behavior_event', 'ods_campaign_touch', 'ods_campaign',
                                 'ods_promotion', 'ods_inventory_snapshot', 'ods_inbound_shipment', 'ods_customer_identifier',
                                 'ods_customer', 'ods_product', 'ods_site', 'ods_demand_zone'] LOOP
            EXECUTE format('DELETE FROM retail_mid_dist.%I WHERE brand = $1', t || '_s' || s.shard_no) USING b;
        END LOOP;
        -- keys of the shard's customers, and the loads
        EXECUTE format('INSERT INTO retail_mid_dist.%I SELECT k.customer_key, k.id_type, k.issuer, k.id_value, k.created_at
                          FROM retail_mid.customer_key k JOIN rm_shard_keys r USING (customer_key) WHERE r.shard_no = $1
                           AND NOT EXISTS (SELECT 1 FROM retail_mid_dist.%I x WHERE x.customer_key = k.customer_key)',
                       'shard_key_import_s' || s.shard_no, 'shard_key_import_s' || s.shard_no) USING s.shard_no;
        EXECUTE format('INSERT INTO retail_mid_dist.%I SELECT l.load_id, l.source, l.path, l.brand, l.loaded_at, l.rows_read,
                               l.rows_loaded, l.rows_rejected, l.rejects FROM retail_mid.ods_load l WHERE l.brand = $1',
                       'shard_load_import_s' || s.shard_no) USING b;
        v_rows := 0;
        FOREACH t IN ARRAY ARRAY['ods_site', 'ods_product', 'ods_demand_zone', 'ods_customer', 'ods_customer_identifier',
                                 'ods_order', 'ods_order_line', 'ods_promotion', 'ods_campaign', 'ods_campaign_touch',
                                 'ods_behavior_event', 'ods_inventory_snapshot', 'ods_inbound_shipment'] LOOP
            v_where := CASE t
                WHEN 'ods_customer' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.customer_id, x.brand))'
                WHEN 'ods_customer_identifier' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.id_value, x.brand))'
                WHEN 'ods_behavior_event' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.id_value, x.brand))'
                WHEN 'ods_campaign_touch' THEN 'EXISTS (SELECT 1 FROM rm_shard_keys r WHERE r.shard_no = $2 AND r.customer_key = retail_mid.shard_key_lookup(x.id_type, x.id_value, x.brand))'
                WHEN 'ods_order' THEN 'EXISTS (SELECT 1 FROM rm_shard_order r WHERE r.shard_no = $2 AND r.order_id = x.order_id)'
                WHEN 'ods_order_line' THEN 'EXISTS (SELECT 1 FROM rm_shard_order r WHERE r.shard_no = $2 AND r.order_id = x.order_id)'
                WHEN 'ods_inventory_snapshot' THEN 'retail_mid.shard_of_series(x.brand, x.site_id, x.sku_id, $3) = $2'
                WHEN 'ods_inbound_shipment' THEN 'retail_mid.shard_of_series(x.brand, x.site_id, x.sku_id, $3) = $2'
                ELSE 'true' END;
            SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY a.attnum) INTO v_cols
              FROM pg_attribute a WHERE a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
            EXECUTE format('INSERT INTO retail_mid_dist.%I SELECT %s FROM retail_mid.%I x WHERE x.brand = $1 AND %s',
                           t || '_s' || s.shard_no, v_cols, t, v_where) USING b, s.shard_no, n;
            GET DIAGNOSTICS v_total = ROW_COUNT;
            v_rows := v_rows + v_total;
        END LOOP;
        v_per := v_per || jsonb_build_object(s.server, v_rows);
        RAISE NOTICE 'shard_load: % ODS rows of brand % to shard % (%)', v_rows, b, s.shard_no, s.server;
    END LOOP;
    SELECT sum(value::bigint) INTO v_total FROM jsonb_each_text(v_per);
    IF NOT keep_local THEN
        FOREACH t IN ARRAY ARRAY['ods_order_line', 'ods_order', 'ods_behavior_event', 'ods_campaign_touch',
                                 'ods_inventory_snapshot', 'ods_inbound_shipment', 'ods_customer_identifier', 'ods_customer'] LOOP
            EXECUTE format('DELETE FROM retail_mid.%I WHERE brand = $1', t) USING b;
        END LOOP;
    END IF;
    PERFORM retail_mid.job_finish(v_job, v_total, jsonb_build_object('keys_created', v_keys, 'rows_per_shard', v_per));
    RETURN v_total;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_load(text, boolean) IS 'On the coordinator: gives keys to the brand''s identifiers in the local ODS, copies to each shard the keys it owns and the loads, replaces the brand''s ODS rows on every shard with the local ones routed by owner (customer rows by a hash of their key, order lines with their order, anonymous orders to the shard of the NULL key, inventory and shipments by a hash of the series; products, sites, promotions, campaigns and zones to every shard), and, unless keep_local, empties the brand''s customer and series rows of the local ODS. One transaction; returns rows written to the shards and logs a job_log row with the rows per shard.';

-- Keeps the global tables of every shard equal to the coordinator's: rows missing here are deleted there (in
-- reverse order, for the foreign keys), changed rows updated, new rows inserted.
CREATE FUNCTION retail_mid.shard_sync_global()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int4 := retail_mid.shard_count(); s record; t text; v_job bigint; v_pk text; v_cols text; v_set text; v_cmp text;
    v_rows bigint; v_total bigint := 0; tabs text[] := retail_mid.shard_tables('global'); i int;
BEGIN
    v_job := retail_mid.job_start('shard_sync_global', jsonb_build_object('shards', n));
    FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
        FOR i IN REVERSE cardinality(tabs) .. 1 LOOP
            t := tabs[i];
            SELECT string_agg(format('f.%1$I IS NOT DISTINCT FROM l.%1$I', a.attname), ' AND ') INTO v_pk
              FROM pg_constraint c, unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum = k
             WHERE c.conrelid = format('retail_mid.%I', t)::regclass AND c.contype = 'p';
            EXECUTE format('DELETE FROM retail_mid_dist.%I f WHERE NOT EXISTS (SELECT 1 FROM retail_mid.%I l WHERE %s)',
                           t || '_s' || s.shard_no, t, v_pk);
            GET DIAGNOSTICS v_rows = ROW_COUNT; v_total := v_total + v_rows;
        END LOOP;
        FOREACH t IN ARRAY tabs LOOP
            SELECT string_agg(format('f.%1$I IS NOT DISTINCT FROM l.%1$I', a.attname), ' AND ') INTO v_pk
              FROM pg_constraint c, unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum = k
             WHERE c.conrelid = format('retail_mid.%I', t)::regclass AND c.contype = 'p';
            -- what the shard keeps of its own: when it last evaluated a tag
            SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                   string_agg(format('%1$I = l.%1$I', a.attname), ', ' ORDER BY a.attnum),
                   string_agg(format('f.%1$I IS DISTINCT FROM l.%1$I', a.attname), ' OR ' ORDER BY a.attnum)
              INTO v_cols, v_set, v_cmp
              FROM pg_attribute a WHERE a.attrelid = format('retail_mid.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname <> 'last_evaluated_at';
            EXECUTE format('UPDATE retail_mid_dist.%I f SET %s FROM retail_mid.%I l WHERE %s AND (%s)',
                           t || '_s' || s.shard_no, v_set, t, v_pk, v_cmp);
            GET DIAGNOSTICS v_rows = ROW_COUNT; v_total := v_total + v_rows;
            EXECUTE format('INSERT INTO retail_mid_dist.%I (%s) SELECT %s FROM retail_mid.%I l WHERE NOT EXISTS (SELECT 1 FROM retail_mid_dist.%I f WHERE %s)',
                           t || '_s' || s.shard_no, v_cols, v_cols, t, t || '_s' || s.shard_no, v_pk);
            GET DIAGNOSTICS v_rows = ROW_COUNT; v_total := v_total + v_rows;
        END LOOP;
        RAISE NOTICE 'shard_sync_global: shard % (%) in step', s.shard_no, s.server;
    END LOOP;
    PERFORM retail_mid.job_finish(v_job, v_total);
    RETURN v_total;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_sync_global() IS 'On the coordinator: makes the global tables of every shard (brand entitlements, RFM segment maps and settings, AIPL rules, the tag taxonomy and definitions) equal to the coordinator''s, in one transaction: rows deleted, changed and added. Roles are cluster objects: create them on every shard. Returns rows changed on the shards.';

-- Global RFM: scores from every shard's daily customer trade with breakpoints over all customers (exact: the
-- per-customer summaries of every shard are collected on the coordinator), written back to each customer's shard.
CREATE FUNCTION retail_mid.shard_rfm_refresh(brand text, as_of date, window_days int4, map_name text DEFAULT 'ten_segment')
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE src regclass := to_regclass('retail_mid_dist.dws_trade_customer_1d'); rdest regclass := to_regclass('retail_mid_dist.rfm_snapshot');
        v_job bigint; n bigint;
BEGIN
    IF src IS NULL OR rdest IS NULL THEN
        RAISE EXCEPTION 'the shards'' tables are not attached' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run retail_mid.shard_attach_tables() on the coordinator.';
    END IF;
    v_job := retail_mid.job_start('shard_rfm_refresh', jsonb_build_object('brand', brand, 'as_of', as_of, 'window_days', window_days, 'map_name', map_name));
    DROP TABLE IF EXISTS pg_temp.rm_shard_rfm;
    CREATE TEMP TABLE rm_shard_rfm ON COMMIT DROP AS
    SELECT * FROM retail_mid.rfm_scores_from(src, brand, as_of, window_days, map_name, 'daily');
    DELETE FROM retail_mid_dist.rfm_snapshot s WHERE s.brand = shard_rfm_refresh.brand AND s.map_name = shard_rfm_refresh.map_name
       AND s.window_days = shard_rfm_refresh.window_days AND s.as_of = shard_rfm_refresh.as_of;
    INSERT INTO retail_mid_dist.rfm_snapshot
    SELECT brand, map_name, window_days, as_of, x.customer_key, x.recency_days, x.frequency, x.monetary, x.r_score, x.f_score, x.m_score, x.segment
      FROM rm_shard_rfm x;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'shard_rfm_refresh: % customers of brand % scored over every shard as of %', n, brand, as_of;
    PERFORM retail_mid.job_finish(v_job, n);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_rfm_refresh(text, date, int4, text) IS 'On the coordinator: RFM of a brand with breakpoints over the customers of every shard (rfm_scores_from over retail_mid_dist.dws_trade_customer_1d: exact, the same as on one server), written to each customer''s shard''s rfm_snapshot (through the partitions). Use it instead of rfm_refresh on the shards, whose breakpoints would be per shard. Returns customers scored.';

-- Forecasts per series: order lines follow the customer, so every shard holds its customers' part of each SKU x
-- store series. The shards' per-series daily sums (their dws_trade_sku_store_1d rows of the window) are added on
-- the coordinator into the series' whole zero-filled history, which goes to the shard that owns the series (a hash
-- of brand, site and SKU); the shards then fit their series in parallel and store them (docs/shards.md).
CREATE FUNCTION retail_mid.shard_forecast_refresh(brand text, as_of date DEFAULT NULL, history_days int4 DEFAULT 365,
                                                  horizon int4 DEFAULT 28, options jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int4 := retail_mid.shard_count(); b text := brand; v_asof date := as_of; v_first date; v_job bigint; s record;
    v_rows bigint; v_sent jsonb := '{}'; v_union text; v_fitted bigint; v_days bigint;
BEGIN
    IF brand IS NULL OR history_days IS NULL OR horizon IS NULL THEN
        RAISE EXCEPTION 'brand, history_days and horizon must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF history_days < 7 OR history_days > 3660 THEN
        RAISE EXCEPTION 'history_days must be between 7 and 3660' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass('retail_mid_dist.replenish_forecast') IS NULL OR to_regclass('retail_mid_dist.shard_forecast_run_s0') IS NULL THEN
        RAISE EXCEPTION 'the shards'' tables are not attached' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run retail_mid.shard_attach_tables() on the coordinator.';
    END IF;
    -- the horizon and options are checked here, before anything travels (the shards would refuse them one by one)
    PERFORM retail_mid.forecast_array(array_fill(1::float8, ARRAY[14]), horizon, 7, options);
    v_asof := coalesce(v_asof, (SELECT max(d.dt) FROM retail_mid_dist.dws_trade_sku_store_1d d WHERE d.brand = b));
    IF v_asof IS NULL THEN
        RAISE EXCEPTION 'brand % has no sales in dws_trade_sku_store_1d of any shard', brand USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_first := v_asof - history_days + 1;
    v_job := retail_mid.job_start('shard_forecast_refresh', jsonb_build_object('brand', brand, 'as_of', v_asof,
                 'history_days', history_days, 'horizon', horizon, 'options', options, 'shards', n));
    -- 1. each shard's part of every series and day (the shards filter; their daily rows travel) summed by series
    DROP TABLE IF EXISTS pg_temp.rm_shard_fc_sum;
    CREATE TEMP TABLE rm_shard_fc_sum ON COMMIT DROP AS
    SELECT w.store_id, w.sku_id, w.dt, sum(w.sales_quantity) AS q
      FROM retail_mid_dist.dws_trade_sku_store_1d w
     WHERE w.brand = b AND w.dt BETWEEN v_first AND v_asof
     GROUP BY 1, 2, 3;
    GET DIAGNOSTICS v_days = ROW_COUNT;
    -- 2. the whole history of each series, as replenish_demand_arrays builds it on one server (store sites only,
    --    from the first day with sales, zero-filled up to as_of)
    DROP TABLE IF EXISTS pg_temp.rm_shard_fc;
    CREATE TEMP TABLE rm_shard_fc ON COMMIT DROP AS
    SELECT p.store_id AS site_id, p.sku_id, retail_mid.shard_of_series(b, p.store_id, p.sku_id, n) AS shard_no,
           (SELECT array_agg(coalesce(t.q, 0)::float8 ORDER BY d.d)
              FROM generate_series(p.f, v_asof, interval '1 day') d(d)
              LEFT JOIN rm_shard_fc_sum t ON t.store_id = p.store_id AND t.sku_id = p.sku_id AND t.dt = d.d::date) AS y
      FROM (SELECT w.store_id, w.sku_id, min(w.dt) AS f
              FROM rm_shard_fc_sum w
              JOIN retail_mid.ods_site st ON st.brand = b AND st.site_id = w.store_id AND st.kind = 'store'
             WHERE w.q > 0
             GROUP BY w.store_id, w.sku_id) p;
    -- 3. the brand's old forecasts go; each series' history to the shard that owns it
    DELETE FROM retail_mid_dist.replenish_forecast f WHERE f.brand = b;
    FOR s IN SELECT * FROM retail_mid.shard ORDER BY shard_no LOOP
        EXECUTE format('DELETE FROM retail_mid_dist.%I', 'shard_forecast_input_s' || s.shard_no);
        EXECUTE format('INSERT INTO retail_mid_dist.%I (brand, site_id, sku_id, made_on, horizon, options, y) '
                       'SELECT $1, a.site_id, a.sku_id, $2, $3, $4, a.y FROM rm_shard_fc a WHERE a.shard_no = $5 ORDER BY 2, 3',
                       'shard_forecast_input_s' || s.shard_no) USING b, v_asof, horizon, options, s.shard_no;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_sent := v_sent || jsonb_build_object(s.server, v_rows);
    END LOOP;
    -- 4. every shard fits its series at once (an asynchronous Append over the shards' shard_forecast_run)
    SELECT string_agg(format('SELECT series FROM retail_mid_dist.%I', 'shard_forecast_run_s' || sh.shard_no), ' UNION ALL ' ORDER BY sh.shard_no)
      INTO v_union FROM retail_mid.shard sh;
    EXECUTE format('SELECT coalesce(sum(series), 0) FROM (%s) u', v_union) INTO v_fitted;
    RAISE NOTICE 'shard_forecast_refresh: % series of brand % (% shard-days summed) fitted on their shards as of % (%)',
        v_fitted, brand, v_days, v_asof, v_sent;
    PERFORM retail_mid.job_finish(v_job, v_fitted, jsonb_build_object('series', v_fitted, 'as_of', v_asof,
                 'shard_days', v_days, 'series_per_shard', v_sent));
    RETURN v_fitted;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_forecast_refresh(text, date, int4, int4, jsonb) IS 'On the coordinator: replenish_refresh_forecasts over every shard. Sums the shards'' daily units per store x SKU (each shard holds its customers'' part of a series), builds each series'' zero-filled history as on one server, hands it to the shard that owns the series (shard_of_series) and has every shard fit its series at once (shard_forecast_run) into its replenish_forecast, seen on the coordinator as retail_mid_dist.replenish_forecast. Same arguments and results as on one server; returns series fitted; logged in job_log.';

-- Quality rules over every shard: the rules of a customer or series table (retail_mid.quality_rule, on the
-- coordinator) are evaluated as quality_evaluate does, but the one scan runs on each shard at once (an aggregate
-- per shard and brand, pushed down whole: one row per shard and brand travels) and the counts are added; rules
-- that compare rows with each other (unique_key, duplicate_rows) and tables_agree run over the union of the
-- shards (retail_mid_dist), so a key duplicated across two shards is found. One result set, in the coordinator's
-- quality_result.
CREATE FUNCTION retail_mid.shard_quality_evaluate(table_name regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int4 := retail_mid.shard_count(); v_job bigint; v_tbl regclass; v_base text; v_dist regclass;
    sharded text[] := retail_mid.shard_tables('customer') || retail_mid.shard_tables('series');
    rules retail_mid.quality_rule[]; r retail_mid.quality_rule; r2 retail_mid.quality_rule; plans jsonb[]; plan jsonb;
    items text[]; sums text[]; i int; tok int8; v_union text; rec record; res jsonb; brand_res jsonb; cur jsonb;
    v_brand text; v_rows bigint; v_obs float8; v_ratio float8; v_stat float8; v_cmp float8; v_outcome text;
    v_sample jsonb; v_detail jsonb; v_a float8; v_b float8; v_n bigint; v_mean float8; v_sd float8; v_c float8;
    v_results bigint := 0; v_tables int := 0; v_by_brand boolean; masked text[]; ref regclass; id text;
    v_pass int := 0; v_warn int := 0; v_fail int := 0; v_warmup int := 0;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF table_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = table_name
                                                 AND c.relnamespace = 'retail_mid'::regnamespace AND c.relname = ANY (sharded)) THEN
        RAISE EXCEPTION '% is not a customer or series table of the shards', table_name USING ERRCODE = 'invalid_parameter_value',
            HINT = format('The tables evaluated over every shard: %s. Other tables: quality_evaluate on the server that holds them.', array_to_string(sharded, ', '));
    END IF;
    IF to_regclass('retail_mid_dist.replenish_forecast') IS NULL THEN
        RAISE EXCEPTION 'the shards'' tables are not attached' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run retail_mid.shard_attach_tables() on the coordinator.';
    END IF;
    v_job := retail_mid.job_start('shard_quality_evaluate', jsonb_build_object('table', table_name::text, 'as_of', as_of, 'shards', n));
    FOR v_tbl IN SELECT DISTINCT q.table_name FROM retail_mid.quality_rule q JOIN pg_class c ON c.oid = q.table_name
                  WHERE q.enabled AND (shard_quality_evaluate.table_name IS NULL OR q.table_name = shard_quality_evaluate.table_name)
                    AND c.relnamespace = 'retail_mid'::regnamespace AND c.relname = ANY (sharded)
                  ORDER BY 1
    LOOP
        v_base := (SELECT c.relname FROM pg_class c WHERE c.oid = v_tbl);
        v_dist := format('retail_mid_dist.%I', v_base)::regclass;
        rules := ARRAY(SELECT q FROM retail_mid.quality_rule q WHERE q.enabled AND q.table_name = v_tbl ORDER BY q.rule_id);
        plans := '{}';
        items := ARRAY['count(*)::float8 AS rows'];
        sums := ARRAY['sum(u.rows)::bigint AS rows'];
        FOREACH r IN ARRAY rules LOOP
            -- the rule as written, over the union of the shards (a sharded other table too)
            r2 := r;
            r2.table_name := v_dist;
            IF r.template = 'tables_agree' THEN
                ref := to_regclass(r.parameters->>'other_table');
                IF ref IS NOT NULL AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = ref AND c.relnamespace = 'retail_mid'::regnamespace
                                                  AND c.relname = ANY (sharded)) THEN
                    r2.parameters := r.parameters || jsonb_build_object('other_table',
                        format('retail_mid_dist.%I', (SELECT c.relname FROM pg_class c WHERE c.oid = ref)));
                END IF;
            END IF;
            plan := retail_mid.quality_rule_plan(r2);
            id := r.rule_id::text;
            IF plan->>'kind' = 'flag' THEN
                items := items || format('count(*) FILTER (WHERE %s)::float8 AS v%s', plan->>'expr', id);
                sums := sums || format('sum(u.v%1$s) AS v%1$s', id);
            ELSIF plan->>'kind' = 'newest' THEN
                items := items || format('max(%s) AS v%s', plan->>'expr', id);
                sums := sums || format('max(u.v%1$s) AS v%1$s', id);
            ELSIF plan->>'kind' = 'measure' THEN
                items := items || format('sum(%1$s) AS s%2$s, count(%1$s)::float8 AS c%2$s, min(%1$s) AS lo%2$s, max(%1$s) AS hi%2$s', plan->>'expr', id);
                sums := sums || format('sum(u.s%1$s) AS s%1$s, sum(u.c%1$s) AS c%1$s, min(u.lo%1$s) AS lo%1$s, max(u.hi%1$s) AS hi%1$s', id);
            END IF;
            plans := plans || plan;
        END LOOP;
        brand_res := '{}';
        v_by_brand := EXISTS (SELECT 1 FROM unnest(rules) q WHERE q.by_brand);
        masked := ARRAY(SELECT m.column_name FROM retail_mid.pii_mask_rule m WHERE m.table_name = v_tbl);
        -- one aggregate per shard and brand, each pushed down whole (an asynchronous Append over the shards)
        SELECT string_agg(format('SELECT t.brand::text AS brand, %s FROM retail_mid_dist.%I AS t GROUP BY t.brand',
                                 array_to_string(items, ', '), v_base || '_p' || sh.shard_no), ' UNION ALL ' ORDER BY sh.shard_no)
          INTO v_union FROM retail_mid.shard sh;
        tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY(SELECT q.author FROM unnest(rules) q),
                                                                  format('the quality rules of %s', v_tbl)));
        FOR rec IN EXECUTE format('SELECT q.whole, q.b, to_jsonb(q) - ''whole'' - ''b'' AS j FROM (SELECT grouping(u.brand) = 1 AS whole, u.brand AS b, %s '
                                  'FROM (%s) u GROUP BY GROUPING SETS ((u.brand), ())) q', array_to_string(sums, ', '), v_union) LOOP
            IF rec.whole THEN
                res := rec.j;
            ELSIF rec.b IS NOT NULL AND rec.b <> '*' THEN
                brand_res := brand_res || jsonb_build_object(rec.b, rec.j);
            END IF;
        END LOOP;
        PERFORM retail_mid.registry_leave(tok);
        v_tables := v_tables + 1;
        RAISE NOTICE 'shard_quality_evaluate: % rules on % over % shards: % rows', cardinality(rules), v_tbl, n, coalesce(res->>'rows', '0');

        FOR i IN 1 .. cardinality(rules) LOOP
            r := rules[i];
            plan := plans[i];
            id := r.rule_id::text;
          FOR v_brand, cur IN SELECT x.b, x.j FROM (SELECT '*'::text AS b, res AS j, 0 AS o
                                                    UNION ALL SELECT e.key, e.value, 1 FROM jsonb_each(brand_res) e WHERE r.by_brand) x
                               ORDER BY x.o, x.b LOOP
            v_rows := coalesce((cur->>'rows')::bigint, 0);
            v_obs := NULL; v_ratio := NULL; v_stat := NULL; v_sample := '[]'; v_detail := '{}';
            tok := retail_mid.registry_enter(retail_mid.registry_role(ARRAY[r.author], format('quality rule %s', r.rule_name)));
            IF plan->>'kind' = 'flag' THEN
                v_obs := coalesce((cur->>('v' || id))::float8, 0);
                v_ratio := CASE WHEN v_rows > 0 THEN v_obs / v_rows ELSE 0 END;
                IF v_obs > 0 THEN
                    EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(s)), ''[]'') FROM (SELECT t.* FROM %s AS t WHERE (%s)%s LIMIT 5) s',
                                   v_dist, plan->>'expr', CASE WHEN v_brand <> '*' THEN ' AND t.brand = $1' ELSE '' END) INTO v_sample USING v_brand;
                END IF;
            ELSIF plan->>'kind' = 'duplicates' THEN
                -- exact over the union of the shards: a key on two shards is a duplicate as on one server
                EXECUTE plan->>'confirm' INTO v_obs, v_sample USING NULL::bigint[], nullif(v_brand, '*');
                v_detail := jsonb_build_object('across_shards', true);
                v_ratio := CASE WHEN v_rows > 0 THEN v_obs / v_rows ELSE 0 END;
            ELSIF plan->>'kind' = 'newest' THEN
                v_detail := jsonb_build_object('newest', cur->('v' || id));
                v_obs := extract(epoch FROM as_of - (cur->>('v' || id))::timestamptz) / 3600.0;
            ELSIF plan->>'kind' = 'queries' THEN
                EXECUTE plan->>'query' INTO v_a;
                EXECUTE plan->>'other_query' INTO v_b;
                v_obs := abs(v_a - v_b);
                v_detail := jsonb_build_object('value', v_a, 'other_value', v_b);
            ELSE
                IF plan->>'kind' = 'rows' THEN
                    v_obs := v_rows;
                ELSE
                    v_c := coalesce((cur->>('c' || id))::float8, 0);
                    v_obs := CASE plan->>'metric'
                                 WHEN 'null_fraction' THEN CASE WHEN v_rows > 0 THEN (v_rows - v_c) / v_rows ELSE 0 END
                                 WHEN 'mean' THEN CASE WHEN v_c > 0 THEN (cur->>('s' || id))::float8 / v_c END
                                 WHEN 'sum' THEN (cur->>('s' || id))::float8
                                 WHEN 'min' THEN (cur->>('lo' || id))::float8
                                 ELSE (cur->>('hi' || id))::float8 END;
                END IF;
                SELECT count(*), avg(h.observed), stddev_samp(h.observed) INTO v_n, v_mean, v_sd
                  FROM (SELECT DISTINCT ON (x.as_of::date) x.observed
                          FROM retail_mid.quality_result x
                         WHERE x.rule_id = r.rule_id AND x.brand = v_brand AND x.as_of::date < shard_quality_evaluate.as_of::date AND x.observed IS NOT NULL
                           AND (coalesce(r.parameters->>'seasonality', 'weekday') = 'none'
                                OR extract(isodow FROM x.as_of) = extract(isodow FROM shard_quality_evaluate.as_of))
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
    RAISE NOTICE 'shard_quality_evaluate: % tables, % results: % pass, % warn, % fail, % warming up', v_tables, v_results, v_pass, v_warn, v_fail, v_warmup;
    PERFORM retail_mid.job_finish(v_job, v_results, jsonb_build_object('tables', v_tables, 'pass', v_pass, 'warn', v_warn, 'fail', v_fail, 'warmup', v_warmup, 'shards', n));
    RETURN v_job;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_quality_evaluate(regclass, timestamptz) IS 'On the coordinator: quality_evaluate over every shard for the enabled rules of the customer and series tables (one table, or all): per-row rules, freshness and stability are aggregated on each shard at once (one row per shard and brand travels) and added; unique_key, duplicate_rows and tables_agree run over the union of the shards (retail_mid_dist), so keys duplicated across shards count. Results (thresholds, outcomes, scores, by brand) go to the coordinator''s quality_result as on one server; samples are up to 5 rows from any shard. Returns the run id (job_log.job_id).';

-- The group tags' bitmaps of every shard OR-ed into the coordinator's tag_bitmap (the shards hold disjoint
-- customers): audience() and audience_count() on the coordinator then answer for the whole group.
CREATE FUNCTION retail_mid.shard_gather_tags()
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint; m bigint; k bigint; shared text[];
BEGIN
    IF to_regclass('retail_mid_dist.tag_bitmap') IS NULL OR to_regclass('retail_mid_dist.tag_value') IS NULL THEN
        RAISE EXCEPTION 'the shards'' tables are not attached' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run retail_mid.shard_attach_tables() on the coordinator.';
    END IF;
    IF NOT pg_catalog.pg_has_role(CURRENT_USER, 'retail_mid_admin', 'USAGE') THEN
        RAISE EXCEPTION 'shard_gather_tags is for administrators' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- the per-brand rows of shared group tags come last: writing a group-wide row rebuilds them from the local
    -- customer_brand (src/tags/brand_scope.sql), which the coordinator does not hold
    shared := ARRAY(SELECT d.tag_name FROM retail_mid.tag_definition d WHERE d.scope = 'group');
    -- the customers of each brand: in a brand context NOT is relative to them (audience) and profiles start from
    -- them (insight), so the coordinator keeps a copy (one row per customer and brand travels)
    DELETE FROM retail_mid.customer_brand;
    INSERT INTO retail_mid.customer_brand (brand, customer_key) SELECT cb.brand, cb.customer_key FROM retail_mid_dist.customer_brand cb;
    GET DIAGNOSTICS k = ROW_COUNT;
    RAISE NOTICE 'shard_gather_tags: % customers of brands copied from the shards', k;
    DROP TABLE IF EXISTS pg_temp.rm_shard_tags;
    CREATE TEMP TABLE rm_shard_tags ON COMMIT DROP AS
    SELECT b.tag_name, b.tag_value, b.brand, retail_mid.rb_or_agg(b.bitmap) AS bitmap
      FROM retail_mid_dist.tag_bitmap b
     WHERE EXISTS (SELECT 1 FROM retail_mid.tag_definition d WHERE d.tag_name = b.tag_name)
     GROUP BY 1, 2, 3;
    -- numeric tags: the shards' indexes cannot be OR-ed (each slices value - its own minimum), so each is rebuilt
    -- from the shards' current numeric values (one row per customer and tag travels), as evaluate_tags builds it
    DROP TABLE IF EXISTS pg_temp.rm_shard_bsi;
    CREATE TEMP TABLE rm_shard_bsi ON COMMIT DROP AS
    SELECT v.tag_name, v.brand, d.numeric_scale AS scale, min(v.numeric_value) AS min_value, max(v.numeric_value) AS max_value,
           count(*) AS customers,
           retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, d.numeric_scale))::int8) AS bsi
      FROM retail_mid_dist.tag_value v JOIN retail_mid.tag_definition d USING (tag_name)
     WHERE v.valid_to IS NULL AND d.value_type = 'numeric' AND v.numeric_value IS NOT NULL
     GROUP BY v.tag_name, v.brand, d.numeric_scale;
    DELETE FROM retail_mid.tag_bitmap;
    DELETE FROM retail_mid.tag_bsi;
    INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
    SELECT tag_name, tag_value, brand, bitmap, retail_mid.rb_cardinality(bitmap) FROM rm_shard_tags
     WHERE NOT (brand <> '*' AND tag_name = ANY (shared));
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
    SELECT tag_name, brand, scale, min_value, max_value, customers, bsi FROM rm_shard_bsi;
    GET DIAGNOSTICS m = ROW_COUNT;
    -- shared group tags by brand: the OR of the shards' brand rows; their indexes from the group-wide values of
    -- the brand's customers on every shard (as refresh_brand_tag_bitmaps)
    DELETE FROM retail_mid.tag_bitmap t WHERE t.brand <> '*' AND t.tag_name = ANY (shared);
    DELETE FROM retail_mid.tag_bsi t WHERE t.brand <> '*' AND t.tag_name = ANY (shared);
    INSERT INTO retail_mid.tag_bitmap (tag_name, tag_value, brand, bitmap, customers)
    SELECT tag_name, tag_value, brand, bitmap, retail_mid.rb_cardinality(bitmap) FROM rm_shard_tags
     WHERE brand <> '*' AND tag_name = ANY (shared);
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    INSERT INTO retail_mid.tag_bsi (tag_name, brand, scale, min_value, max_value, customers, bsi)
    SELECT t.tag_name, cb.brand, t.scale, min(v.numeric_value), max(v.numeric_value), count(*),
           retail_mid.bsi_build_agg(v.customer_key, (v.numeric_value * power(10::numeric, t.scale))::int8)
      FROM retail_mid.tag_bsi t
      JOIN retail_mid.tag_definition d ON d.tag_name = t.tag_name AND d.shared_with_brands
      JOIN retail_mid_dist.tag_value v ON v.tag_name = t.tag_name AND v.brand = '*' AND v.valid_to IS NULL AND v.numeric_value IS NOT NULL
      JOIN retail_mid_dist.customer_brand cb ON cb.customer_key = v.customer_key
     WHERE t.brand = '*' AND t.tag_name = ANY (shared)
       AND cb.brand IN (SELECT e.brand FROM retail_mid.brand_entitlement e WHERE e.brand <> '*')
     GROUP BY t.tag_name, cb.brand, t.scale;
    GET DIAGNOSTICS k = ROW_COUNT; m := m + k;
    DELETE FROM retail_mid.customer_universe;
    RAISE NOTICE 'shard_gather_tags: % tag bitmaps OR-ed and % numeric tag indexes rebuilt over % shards', n, m, retail_mid.shard_count();
    RETURN n + m;
END;
$$;
COMMENT ON FUNCTION retail_mid.shard_gather_tags() IS 'On the coordinator (administrators): replaces the local tag_bitmap by the OR of every shard''s bitmaps per tag, value and brand (the shards hold disjoint customers, so the OR is the whole group), and the local tag_bsi by the bit-sliced indexes of numeric tags rebuilt from every shard''s current values (one row per customer and tag travels); and the local customer_brand by the shards'' (NOT in a brand context is relative to the brand''s customers); audience() and audience_count() then answer on the coordinator as on one server, numeric ranges included. Returns bitmaps and indexes written.';

-- The shipped roles: set-up and loading are for administrators.
REVOKE EXECUTE ON FUNCTION retail_mid.shard_add(text, text, int4, text, text, text), retail_mid.shard_attach_tables(),
    retail_mid.shard_load(text, boolean), retail_mid.shard_sync_global(), retail_mid.shard_rfm_refresh(text, date, int4, text),
    retail_mid.shard_gather_tags(), retail_mid.shard_forecast_refresh(text, date, int4, int4, jsonb),
    retail_mid.shard_quality_evaluate(regclass, timestamptz), retail_mid.shard_assign_keys(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.shard_add(text, text, int4, text, text, text), retail_mid.shard_attach_tables(),
    retail_mid.shard_load(text, boolean), retail_mid.shard_sync_global(), retail_mid.shard_rfm_refresh(text, date, int4, text),
    retail_mid.shard_gather_tags(), retail_mid.shard_forecast_refresh(text, date, int4, int4, jsonb),
    retail_mid.shard_quality_evaluate(regclass, timestamptz), retail_mid.shard_assign_keys(text) TO retail_mid_admin;
REVOKE ALL ON retail_mid.shard_key_import, retail_mid.shard_load_import, retail_mid.shard_forecast_input,
    retail_mid.shard_forecast_run FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retail_mid.shard_forecast_fit() FROM PUBLIC;
GRANT SELECT ON retail_mid.shard TO retail_mid_admin;
