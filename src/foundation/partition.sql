-- foundation/partition.sql: monthly range partitions of the day-grained history tables (issue 13).
--
-- dwd_trade_order_line_di and the trade _1d tables, the domain DWD/DWS (behaviour, marketing, inventory, members) and
-- the AIPL stage bitmaps are partitioned by dt, one partition per calendar month,
-- named <table>_pYYYYMM. refresh creates the months it is about to write (ensure_partitions) and retain drops
-- whole months. Partitions are created at run time, so they are not extension members: pg_dump writes them as
-- ordinary tables attached to their parent, with their rows. They get no grants: a non-owner reads through
-- the parent, whose grants and row-level security policies apply (a direct SELECT on a partition is denied; their
-- own row-level security, enabled without policies, would show no row even if someone granted one).

-- Creates the monthly partitions of a partitioned history table covering [from_date, to_date] that do not exist
-- yet and returns how many it created. A new partition is created as a plain table and then attached, which
-- locks the parent only in SHARE UPDATE EXCLUSIVE mode, so readers of the parent are not blocked. Concurrent
-- callers serialise on an advisory lock; a partition that exists already is skipped. A table that has the name of a
-- partition to create but is not that partition is an error (42P07), raised before anything is changed.
CREATE FUNCTION retail_mid.ensure_partitions(tbl regclass, from_date date, to_date date)
RETURNS int LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m date; v_name text; v_created int := 0; v_index text; v_existing regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
                    WHERE p.partrelid = tbl AND c.relnamespace = 'retail_mid'::regnamespace) THEN
        RAISE EXCEPTION '% is not a partitioned history table of retail_mid', tbl
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT isfinite(from_date) OR NOT isfinite(to_date) OR to_date - from_date > 36600 THEN
        RAISE EXCEPTION 'partition range must be finite and at most 100 years' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_date > to_date THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.ensure_partitions'));
    m := date_trunc('month', from_date)::date;
    WHILE m <= to_date LOOP
        v_name := (SELECT c.relname FROM pg_class c WHERE c.oid = tbl) || '_p' || to_char(m, 'YYYYMM');
        v_existing := to_regclass(format('retail_mid.%I', v_name));
        IF v_existing IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = v_existing AND i.inhparent = tbl) THEN
            -- a table of that name that is not this month's partition (made by hand, or detached): never adopt it
            RAISE EXCEPTION 'relation % already exists and is not a partition of %', v_existing, tbl
                USING ERRCODE = 'duplicate_table',
                      DETAIL = format('ensure_partitions would create it as the partition of %s for %s.', tbl, to_char(m, 'YYYY-MM')),
                      HINT = 'Rename or drop it (or attach it yourself with the month''s bounds), then refresh again.';
        END IF;
        IF v_existing IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', 'retail_mid', v_name, tbl);
                -- keys and indexes live on the partitions, not on the parent: an extension's parent is not dumped,
                -- so parent-level indexes would be created twice on restore (by ATTACH PARTITION and by the dump)
                FOREACH v_index IN ARRAY CASE (SELECT c.relname FROM pg_class c WHERE c.oid = tbl)  -- (the tables come later)
                        WHEN 'dwd_trade_order_line_di' THEN ARRAY['INDEX (dt)']
                        WHEN 'dws_trade_customer_1d' THEN ARRAY['PRIMARY KEY (dt, brand, customer_key)', 'INDEX (customer_key)']
                        WHEN 'dws_trade_sku_store_1d' THEN ARRAY['PRIMARY KEY (dt, brand, store_id, sku_id)', 'INDEX (brand, store_id, sku_id)']
                        WHEN 'dws_trade_store_1d' THEN ARRAY['PRIMARY KEY (dt, brand, store_id)']
                        -- the domain DWD/DWS (dwd_domains.sql, dws_domains.sql) and the AIPL stage bitmaps (aipl.sql)
                        WHEN 'dwd_behavior_event_di' THEN ARRAY['INDEX (dt)', 'INDEX (brand, customer_key)']
                        WHEN 'dwd_marketing_touch_di' THEN ARRAY['INDEX (dt)', 'INDEX (brand, campaign_id)']
                        WHEN 'dws_behavior_customer_1d' THEN ARRAY['PRIMARY KEY (dt, brand, customer_key, channel, category_l1)', 'INDEX (brand, customer_key)']
                        WHEN 'dws_marketing_campaign_1d' THEN ARRAY['PRIMARY KEY (dt, brand, campaign_id, channel)']
                        WHEN 'dws_inventory_site_sku_1d' THEN ARRAY['PRIMARY KEY (dt, brand, site_id, sku_id)', 'INDEX (brand, site_id, sku_id, dt)']
                        WHEN 'dws_member_1d' THEN ARRAY['PRIMARY KEY (dt, brand, store_id, channel)']
                        WHEN 'dws_aipl_stage_bitmap_1d' THEN ARRAY['PRIMARY KEY (brand, dt, stage)']
                        ELSE ARRAY[]::text[] END LOOP
                    IF v_index LIKE 'PRIMARY KEY%' THEN
                        EXECUTE format('ALTER TABLE retail_mid.%I ADD %s', v_name, v_index);
                    ELSE
                        EXECUTE format('CREATE INDEX ON retail_mid.%I %s', v_name, substr(v_index, 7));
                    END IF;
                END LOOP;
                EXECUTE format('ALTER TABLE %s ATTACH PARTITION retail_mid.%I FOR VALUES FROM (%L) TO (%L)',
                               tbl, v_name, m, (m + interval '1 month')::date);
                -- no grants (a new table's default privileges are the owner's only; an explicit REVOKE would
                -- leave an ACL that pg_dump does not reproduce), and row-level security without policies: only
                -- the owner reads a partition directly
                EXECUTE format('ALTER TABLE retail_mid.%I ENABLE ROW LEVEL SECURITY', v_name);
                EXECUTE format('COMMENT ON TABLE retail_mid.%I IS %L', v_name,
                               format('Partition of %s for %s (created by retail_mid.ensure_partitions; read the parent).', tbl, to_char(m, 'YYYY-MM')));
                v_created := v_created + 1;
            END;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN v_created;
END;
$$;
COMMENT ON FUNCTION retail_mid.ensure_partitions(regclass, date, date) IS 'Creates the missing monthly partitions (<table>_pYYYYMM, with the table''s keys and indexes) of a partitioned retail_mid history table for the days [from_date, to_date]; returns how many it created. Existing partitions are fine; a table of the same name that is not the partition raises 42P07; concurrent calls serialise.';
-- a security definer: refresh's callers only (retail_mid_admin is granted it in governance/lockdown.sql)
REVOKE EXECUTE ON FUNCTION retail_mid.ensure_partitions(regclass, date, date) FROM PUBLIC;
