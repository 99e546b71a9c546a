-- retail_mid 1.0.0 -> 1.1.0: every change to the install script since the 1.0.0 release, in the order of CHANGELOG.md.
\echo Use "ALTER EXTENSION retail_mid UPDATE TO '1.1.0'" to load this file. \quit

-- Install order (issue 12): no file calls an object a later file creates. retail_mid.refresh moved to src/pipeline.sql
-- and now rebuilds the per-brand tag bitmaps itself; refresh_customer_brand (foundation/tenancy.sql, installed before
-- the tags) rebuilds customer_brand only.
CREATE OR REPLACE FUNCTION retail_mid.refresh_customer_brand()
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
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh_customer_brand() IS 'Rebuilds retail_mid.customer_brand from the ODS customers and identifiers and the DWD trade; called by retail_mid.refresh (which then rebuilds the per-brand tag bitmaps); returns its rows.';

CREATE OR REPLACE FUNCTION retail_mid.refresh(from_date date, to_date date)
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
    -- the brand scope of customers (foundation/tenancy.sql) and of the shared group tags' bitmaps (tags/brand_scope.sql),
    -- and the metric registry's generated tables (governance/metric.sql)
    v_customers := retail_mid.refresh_customer_brand();
    PERFORM retail_mid.refresh_brand_tag_bitmaps();
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
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Rebuilds DWD and DWS for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';
