-- pipeline.sql: the orchestration across domains: the incremental refresh and the full rebuild.
--
-- Installed last: it calls into every layer (foundation's DWD and DWS, the brand scope of customers, the tags'
-- per-brand bitmaps, the metric registry), so each domain file only holds what its own layer needs.

-- The incremental refresh: DWD then DWS for the days [from_date, to_date], in the caller's transaction (so a
-- failure leaves the previous state, and readers keep seeing the previous state until it commits). Running the
-- same days twice gives the same tables; late data for a past day is picked up by refreshing that day.
CREATE FUNCTION retail_mid.refresh(from_date date, to_date date)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_domains bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
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
    -- issue 15: the behaviour, marketing, inventory and member DWD/DWS (foundation/dwd_domains.sql, dws_domains.sql)
    -- (their rows are logged, not returned: the count refresh returns stays the trade layer's, as in 1.0.0)
    v_domains := retail_mid.refresh_domains(from_date, to_date);

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
        jsonb_build_object('dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'domain_rows', v_domains, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Rebuilds DWD and DWS (trade, then behaviour, marketing, inventory and members) for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';

-- Refreshes every day that has ODS orders, as one job (the full rebuild).
CREATE FUNCTION retail_mid.refresh_all()
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT retail_mid.refresh(min(order_time)::date, max(order_time)::date) FROM retail_mid.ods_order HAVING count(*) > 0;
END;
COMMENT ON FUNCTION retail_mid.refresh_all() IS 'Refreshes every day that has ODS orders (the full rebuild); NULL when the ODS is empty.';
