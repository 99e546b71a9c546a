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
    v_job bigint; v_dim bigint; v_dwd bigint; v_dws bigint; v_metric bigint; v_domains bigint; v_customers bigint; t0 timestamptz := clock_timestamp(); t1 timestamptz; t2 timestamptz;
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
    -- issue 13: days dropped by retain are in the *_retained baselines; rebuilding them would count them twice
    IF from_date < (SELECT h.kept_from FROM retail_mid.history_retention h) THEN
        RAISE EXCEPTION 'refresh range starts at %, before the retained history (kept from %)', from_date,
                        (SELECT h.kept_from FROM retail_mid.history_retention h)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'retail_mid.retain dropped the days before it; their totals live on in the _td tables.',
                  HINT = 'Refresh from the first kept day on.';
    END IF;
    v_job := retail_mid.job_start('refresh', jsonb_build_object('from_date', from_date, 'to_date', to_date));

    -- issue 15: the dimensions first (the DWD labels lines with the categories and regions valid on their day)
    v_dim := retail_mid.refresh_dims(CURRENT_DATE, from_date, to_date);
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
        jsonb_build_object('dim_rows', v_dim, 'dwd_lines', v_dwd, 'dws_rows', v_dws, 'metric_rows', v_metric, 'domain_rows', v_domains, 'customer_brand_rows', v_customers,
                           'dwd_seconds', extract(epoch FROM t1 - t0),
                           'dws_seconds', extract(epoch FROM t2 - t1),
                           'metric_seconds', extract(epoch FROM clock_timestamp() - t2)));
    RETURN v_dwd + v_dws + v_metric;
END;
$$;
COMMENT ON FUNCTION retail_mid.refresh(date, date) IS 'Brings the DIM layer up to date, rebuilds DWD and DWS (trade, then behaviour, marketing, inventory and members) for the given days, the brand scope of customers (and of the shared group tags'' bitmaps) and the metric registry''s generated tables (idempotent, transactional); returns rows written and logs a job_log row.';

-- Refreshes every day that has ODS orders, as one job (the full rebuild).
CREATE FUNCTION retail_mid.refresh_all()
RETURNS bigint LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT retail_mid.refresh(greatest(min(order_time)::date, (SELECT h.kept_from FROM retail_mid.history_retention h)), max(order_time)::date)
      FROM retail_mid.ods_order
    HAVING max(order_time)::date >= coalesce((SELECT h.kept_from FROM retail_mid.history_retention h), '-infinity');
END;
COMMENT ON FUNCTION retail_mid.refresh_all() IS 'Refreshes every day that has ODS orders (the full rebuild), from the first day kept by retail_mid.retain on; NULL when the ODS has no such day.';

-- ----------------------------------------------------------------- retention of partitioned history (issue 13)
-- The partitioned history tables, in the order refresh writes them.
CREATE FUNCTION retail_mid.partitioned_history_tables()
RETURNS regclass[] LANGUAGE sql STABLE PARALLEL SAFE
RETURN ARRAY['retail_mid.dwd_trade_order_line_di', 'retail_mid.dws_trade_customer_1d',
             'retail_mid.dws_trade_sku_store_1d', 'retail_mid.dws_trade_store_1d',
             'retail_mid.dwd_behavior_event_di', 'retail_mid.dwd_marketing_touch_di',
             'retail_mid.dws_behavior_customer_1d', 'retail_mid.dws_marketing_campaign_1d',
             'retail_mid.dws_inventory_site_sku_1d', 'retail_mid.dws_member_1d',
             'retail_mid.dws_aipl_stage_bitmap_1d']::text[]::regclass[];
COMMENT ON FUNCTION retail_mid.partitioned_history_tables() IS 'The day-grained history tables partitioned by month: dwd_trade_order_line_di and the trade _1d tables, the behaviour, marketing, inventory and member DWD/DWS, and the AIPL stage bitmaps.';

-- retail_mid.retain(before) drops the monthly partitions of the history tables (partitioned_history_tables())
-- that lie wholly before `before`, and the DWD cleaning counts of those months. The _td tables are not touched:
-- they keep the totals of the dropped days, which also go into the *_retained baselines (dws.sql) so that a later
-- rebuild of a _td row adds them; history_retention records the first kept day. The refresh window (the last 31 days up to the latest refreshed day,
-- which late data may still rewrite) is never dropped. One transaction: it drops everything or nothing.
CREATE FUNCTION retail_mid.retain(before date)
RETURNS TABLE (table_name text, partition_name text, from_date date, to_date date, rows_dropped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job bigint; v_latest date; v_limit date; r record; v_rows bigint; v_total bigint := 0; v_parts int := 0; v_cleaning bigint; v_upto date; v_cut date; v_base bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'retain needs a date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(before) THEN
        RAISE EXCEPTION 'retain needs a finite date, not %', before USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- no refresh in between: the window below stays true until commit
    PERFORM pg_advisory_xact_lock(hashtext('retail_mid.refresh'));
    v_latest := coalesce((SELECT max(s.as_of) FROM retail_mid.dws_refresh_state s), CURRENT_DATE);
    v_limit := v_latest - 30;
    IF before > v_limit THEN
        RAISE EXCEPTION 'retention date % is inside the refresh window', before
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The last 31 days up to the latest refreshed day %s (%s .. %s) may still be rewritten by late data.', v_latest, v_limit + 1, v_latest),
                  HINT = format('Use a date on or before %s.', v_limit);
    END IF;
    v_job := retail_mid.job_start('retain', jsonb_build_object('before', before));
    -- the partitions dropped are the whole months before v_cut; their totals go into the *_retained baselines
    -- first (the _td rebuild adds them), in this transaction: everything or nothing
    v_cut := date_trunc('month', before)::date;
    INSERT INTO retail_mid.dws_trade_customer_retained AS x
    SELECT d.brand, d.customer_key, min(d.dt), max(d.dt), sum(d.orders), sum(d.return_orders), count(*), sum(d.quantity),
           sum(d.sales_amount), sum(d.return_amount), sum(d.net_amount),
           min(d.dt) FILTER (WHERE d.orders > 0), max(d.dt) FILTER (WHERE d.orders > 0)
      FROM retail_mid.dws_trade_customer_1d d WHERE d.dt < v_cut GROUP BY d.brand, d.customer_key
    ON CONFLICT (brand, customer_key) DO UPDATE SET
           first_order_date = least(x.first_order_date, excluded.first_order_date),
           last_order_date = greatest(x.last_order_date, excluded.last_order_date),
           orders = x.orders + excluded.orders, return_orders = x.return_orders + excluded.return_orders,
           active_days = x.active_days + excluded.active_days, quantity = x.quantity + excluded.quantity,
           sales_amount = x.sales_amount + excluded.sales_amount, return_amount = x.return_amount + excluded.return_amount,
           net_amount = x.net_amount + excluded.net_amount,
           first_sale_date = least(x.first_sale_date, excluded.first_sale_date),
           last_sale_date = greatest(x.last_sale_date, excluded.last_sale_date);
    GET DIAGNOSTICS v_base = ROW_COUNT;
    INSERT INTO retail_mid.dws_trade_sku_store_retained AS x
    SELECT d.brand, d.store_id, d.sku_id, min(d.dt), max(d.dt), count(*), sum(d.orders), sum(d.quantity), sum(d.net_amount),
           retail_mid.rb_or_agg(d.buyer_bitmap)
      FROM retail_mid.dws_trade_sku_store_1d d WHERE d.dt < v_cut GROUP BY d.brand, d.store_id, d.sku_id
    ON CONFLICT (brand, store_id, sku_id) DO UPDATE SET
           first_sale_date = least(x.first_sale_date, excluded.first_sale_date),
           last_sale_date = greatest(x.last_sale_date, excluded.last_sale_date),
           selling_days = x.selling_days + excluded.selling_days, orders = x.orders + excluded.orders,
           quantity = x.quantity + excluded.quantity, net_amount = x.net_amount + excluded.net_amount,
           buyer_bitmap = retail_mid.rb_or(x.buyer_bitmap, excluded.buyer_bitmap);
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_base := v_base + v_rows;
    INSERT INTO retail_mid.dws_trade_store_retained AS x
    SELECT d.brand, d.store_id, min(d.dt), max(d.dt), sum(d.orders), sum(d.net_amount), retail_mid.rb_or_agg(d.customer_bitmap)
      FROM retail_mid.dws_trade_store_1d d WHERE d.dt < v_cut GROUP BY d.brand, d.store_id
    ON CONFLICT (brand, store_id) DO UPDATE SET
           first_sale_date = least(x.first_sale_date, excluded.first_sale_date),
           last_sale_date = greatest(x.last_sale_date, excluded.last_sale_date),
           orders = x.orders + excluded.orders, net_amount = x.net_amount + excluded.net_amount,
           customer_bitmap = retail_mid.rb_or(x.customer_bitmap, excluded.customer_bitmap);
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_base := v_base + v_rows;
    RAISE NOTICE 'retain: % baseline rows written for the days before %', v_base, v_cut;
    FOR r IN
        SELECT p.parent, c.oid AS part, c.relname, to_date(right(c.relname, 6), 'YYYYMM') AS m
          FROM unnest(retail_mid.partitioned_history_tables()) AS p(parent)
          JOIN pg_inherits i ON i.inhparent = p.parent
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE c.relname ~ '_p[0-9]{6}$'
           AND (to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month')::date <= v_cut
         ORDER BY 1::text, 4
    LOOP
        EXECUTE format('SELECT count(*) FROM %s', r.part::regclass) INTO v_rows;
        EXECUTE format('DROP TABLE %s', r.part::regclass);
        table_name := r.parent::text; partition_name := 'retail_mid.' || r.relname;
        from_date := r.m; to_date := (r.m + interval '1 month')::date - 1; rows_dropped := v_rows;
        v_total := v_total + v_rows; v_parts := v_parts + 1;
        v_upto := greatest(v_upto, to_date);
        RAISE NOTICE 'retain: dropped % (% .. %, % rows)', partition_name, from_date, to_date, v_rows;
        RETURN NEXT;
    END LOOP;
    -- the cleaning counts of the dropped months (a small unpartitioned table)
    DELETE FROM retail_mid.dwd_trade_cleaning_1d c WHERE c.dt < v_cut;
    GET DIAGNOSTICS v_cleaning = ROW_COUNT;
    -- the first kept day: refresh refuses the days before it (they would be counted twice)
    INSERT INTO retail_mid.history_retention AS h (singleton, kept_from, retained_at) VALUES (true, v_cut, now())
    ON CONFLICT (singleton) DO UPDATE SET kept_from = greatest(h.kept_from, excluded.kept_from), retained_at = excluded.retained_at;
    RAISE NOTICE 'retain: % partitions dropped (% rows), % cleaning rows deleted', v_parts, v_total, v_cleaning;
    PERFORM retail_mid.job_finish(v_job, v_total, jsonb_build_object('partitions', v_parts, 'cleaning_rows', v_cleaning, 'dropped_through', v_upto, 'baseline_rows', v_base, 'kept_from', v_cut));
END;
$$;
COMMENT ON FUNCTION retail_mid.retain(date) IS 'Drops the monthly partitions of the partitioned history tables (partitioned_history_tables(): the DWD, the _1d tables and the AIPL stage bitmaps) that end before the given date (and the cleaning counts of those days); returns what it dropped and logs a job_log row. The totals of the dropped days go into the *_retained baselines, which the _td rebuild adds, so _td stays the total over all history; refresh then refuses days before the first kept one. Refuses a date inside the refresh window (the last 31 days up to the latest refreshed day, 55000), NULL (22004) or infinity (22023).';

-- ----------------------------------------------------------------- the daily pipeline (issue 13)
-- retail_mid.run_daily(as_of) runs every step in dependency order, each step (and brand) in its own transaction
-- with its own job_log row (job 'run_daily', arguments {step, brand, as_of}); docs/operations.md.

-- One step: opens its job_log row (committed, so a dashboard sees it running), runs the statement (a SELECT
-- returning the rows written) in a subtransaction, closes the row as ok or failed with the error, and commits.
-- A failed step's work is rolled back; the steps before it stay committed. (No SET clauses: a procedure with SET
-- may not COMMIT; every name is qualified.)
CREATE PROCEDURE retail_mid.run_daily_step(step text, brand text, as_of date, statement text, detail jsonb DEFAULT '{}', INOUT succeeded boolean DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_job bigint; v_rows bigint; v_state text; v_message text; v_detail text; v_context text;
BEGIN
    INSERT INTO retail_mid.job_log (job, arguments, detail)
    VALUES ('run_daily', pg_catalog.jsonb_build_object('step', step, 'brand', brand, 'as_of', as_of, 'statement', statement),
            coalesce(detail, '{}'))
    RETURNING job_id INTO v_job;
    COMMIT;
    BEGIN
        EXECUTE statement INTO v_rows;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL,
                                v_context = PG_EXCEPTION_CONTEXT;
    END;
    IF v_state IS NULL THEN
        UPDATE retail_mid.job_log l SET finished_at = pg_catalog.clock_timestamp(), rows_written = coalesce(v_rows, 0), outcome = 'ok'
         WHERE l.job_id = v_job;
        succeeded := true;
    ELSE
        UPDATE retail_mid.job_log l SET finished_at = pg_catalog.clock_timestamp(), rows_written = 0, outcome = 'failed',
               detail = l.detail OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('sqlstate', v_state, 'error', v_message, 'error_detail', v_detail, 'error_context', v_context)
         WHERE l.job_id = v_job;
        RAISE WARNING 'run_daily: step % (brand %) failed: % (SQLSTATE %); logged as job_log row %, retried on the next run',
            step, brand, v_message, v_state, v_job;
        succeeded := false;
    END IF;
    COMMIT;
END;
$$;
COMMENT ON PROCEDURE retail_mid.run_daily_step(text, text, date, text, jsonb, boolean) IS 'One step of run_daily: a job_log row (job run_daily, arguments step, brand, as_of, statement; detail as given) committed first, the statement run in a subtransaction, the row closed as ok (rows written) or failed (SQLSTATE, message) and committed; a failure is a WARNING, not an error.';

-- A step of a brand is done for as_of when a run_daily row of that step, brand and as_of ended ok after the last
-- upstream step that wrote rows (refresh; for tags also RFM and AIPL, whose results tags read; for quality every
-- step): the second run of the same day does nothing again, and a step redone after a failure redoes what reads it.
CREATE FUNCTION retail_mid.run_daily_done(step text, brand text, as_of date)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT EXISTS (
        SELECT 1 FROM retail_mid.job_log l
         WHERE l.job OPERATOR(pg_catalog.=) 'run_daily' AND l.outcome OPERATOR(pg_catalog.=) 'ok'
           AND (l.arguments OPERATOR(pg_catalog.->>) 'step') OPERATOR(pg_catalog.=) run_daily_done.step
           AND (l.arguments OPERATOR(pg_catalog.->>) 'brand') OPERATOR(pg_catalog.=) run_daily_done.brand
           AND (l.arguments OPERATOR(pg_catalog.->>) 'as_of')::date OPERATOR(pg_catalog.=) run_daily_done.as_of
           AND l.job_id OPERATOR(pg_catalog.>) coalesce((
               SELECT pg_catalog.max(r.job_id) FROM retail_mid.job_log r
                WHERE r.job OPERATOR(pg_catalog.=) 'run_daily' AND r.outcome OPERATOR(pg_catalog.=) 'ok'
                  AND (r.arguments OPERATOR(pg_catalog.->>) 'step') OPERATOR(pg_catalog.=) ANY (
                      CASE run_daily_done.step WHEN 'tags' THEN ARRAY['refresh', 'rfm', 'aipl']
                                               WHEN 'quality' THEN ARRAY['refresh', 'rfm', 'aipl', 'tags', 'forecast']
                                               ELSE ARRAY['refresh'] END)
                  AND r.rows_written OPERATOR(pg_catalog.>) 0), 0));
END;
COMMENT ON FUNCTION retail_mid.run_daily_done(text, text, date) IS 'Whether run_daily already did a step for a brand and as_of: an ok run_daily job_log row of them newer than the last upstream step that wrote rows (refresh; for tags also rfm and aipl; for quality every step).';

-- The tags due at as_of (their schedule): never evaluated by run_daily; daily and hourly ones when as_of is past
-- their last evaluation or data changed since; weekly ones 7 days, monthly ones a month after; manual ones never.
CREATE FUNCTION retail_mid.run_daily_due_tags(as_of date)
RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH last AS (
        SELECT t.tag_name, t.schedule,
               (SELECT pg_catalog.max((l.arguments OPERATOR(pg_catalog.->>) 'as_of')::date)
                  FROM retail_mid.job_log l
                 WHERE l.job OPERATOR(pg_catalog.=) 'run_daily' AND l.outcome OPERATOR(pg_catalog.=) 'ok'
                   AND (l.arguments OPERATOR(pg_catalog.->>) 'step') OPERATOR(pg_catalog.=) 'tags'
                   AND (l.detail OPERATOR(pg_catalog.->) 'tags') OPERATOR(pg_catalog.?) t.tag_name) AS last_as_of
          FROM retail_mid.tag_definition t
         WHERE t.enabled AND t.schedule OPERATOR(pg_catalog.<>) 'manual')
    SELECT pg_catalog.array_agg(tag_name ORDER BY tag_name) FROM last
     WHERE last_as_of IS NULL
        OR CASE schedule
               WHEN 'weekly' THEN run_daily_due_tags.as_of OPERATOR(pg_catalog.>=) (last_as_of OPERATOR(pg_catalog.+) 7)
               WHEN 'monthly' THEN run_daily_due_tags.as_of OPERATOR(pg_catalog.>=) (last_as_of OPERATOR(pg_catalog.+) '1 month'::interval)
               ELSE run_daily_due_tags.as_of OPERATOR(pg_catalog.>) last_as_of
                    OR NOT retail_mid.run_daily_done('tags', '*', run_daily_due_tags.as_of) END;
END;
COMMENT ON FUNCTION retail_mid.run_daily_due_tags(date) IS 'Enabled tags due at as_of by their schedule: never evaluated by run_daily, daily/hourly when as_of is later than their last run_daily evaluation (or data changed since), weekly after 7 days, monthly after a month; manual never.';

-- The quality step: every enabled rule, as of the given time; returns the results stored.
CREATE FUNCTION retail_mid.run_daily_quality(as_of timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_run bigint;
BEGIN
    v_run := retail_mid.quality_evaluate(NULL, as_of);
    RETURN (SELECT count(*) FROM retail_mid.quality_result q WHERE q.run_id = v_run);
END;
$$;
COMMENT ON FUNCTION retail_mid.run_daily_quality(timestamptz) IS 'The quality step of run_daily: quality_evaluate of every enabled rule as of the given time; returns the number of results stored.';

-- The daily pipeline. Steps, in dependency order (each brand's steps run as of the earlier of as_of and the
-- brand's last day with sales, so a brand whose data stopped gets no new snapshot every day):
--   refresh  (brand *)  DWD, DWS, brand scope and the metric registry's tables (refresh() calls metric_refresh) for
--                       every day with orders in the loads that arrived since the last successful refresh step
--   rfm      per brand  rfm_refresh(brand, as_of, 365) (ten-segment map)
--   aipl     per brand  aipl_refresh over the 30 days up to as_of
--   tags     (brand *)  evaluate_tags of the tags due by their schedule (run_daily_due_tags)
--   forecast per brand  replenish_refresh_forecasts(brand, as_of): the stored forecasts that the suggested orders
--                       (view replenish_suggested_order) are computed from; brands without store x SKU sales skip
--   quality  (brand *)  quality_evaluate() of every enabled rule, as of the end of as_of
-- A step already done for its brand and as_of since the last refresh that changed data is skipped (its row says
-- so): a second run of the same day does no work and leaves the tables as they were. A failed step is logged
-- and the later steps still run (on the state before it); the next run does it again.
-- One run at a time: a session advisory lock, taken without waiting; a second run fails with 55P03.
CREATE PROCEDURE retail_mid.run_daily(as_of date DEFAULT CURRENT_DATE - 1)
LANGUAGE plpgsql
AS $$
DECLARE
    v_lock constant bigint := pg_catalog.hashtext('retail_mid.run_daily');
    v_holder int; v_prev_load bigint; v_last_load bigint; v_from date; v_to date; v_ok boolean;
    v_brand record; v_b_asof date; v_tags text[]; v_failed int := 0; v_steps int := 0; t0 timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'run_daily needs a finite as_of date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each step commits: CALL it on its own, not inside BEGIN ... COMMIT (2D000 here, before the lock is taken)
    COMMIT;
    IF NOT pg_catalog.pg_try_advisory_lock(v_lock) THEN
        SELECT l.pid INTO v_holder FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (v_lock OPERATOR(pg_catalog.&) 4294967295)::oid
           AND l.classid = ((v_lock OPERATOR(pg_catalog.>>) 32) OPERATOR(pg_catalog.&) 4294967295)::oid LIMIT 1;
        RAISE EXCEPTION 'retail_mid.run_daily is already running (backend %)', coalesce(v_holder::text, 'unknown')
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Two runs never interleave: wait until it ends (see retail_mid.run_daily_summary) and run again; a finished step is not done twice.';
    END IF;
    RAISE NOTICE 'run_daily as of %: start', as_of;

    -- 1. refresh the days of the loads that arrived since the last successful refresh step
    SELECT pg_catalog.max((l.detail OPERATOR(pg_catalog.->>) 'last_load_id')::bigint) INTO v_prev_load
      FROM retail_mid.job_log l
     WHERE l.job = 'run_daily' AND l.outcome = 'ok' AND (l.arguments OPERATOR(pg_catalog.->>) 'step') = 'refresh';
    SELECT pg_catalog.max(o.load_id) INTO v_last_load FROM retail_mid.ods_load o;
    SELECT pg_catalog.min(o.order_time)::date, pg_catalog.max(o.order_time)::date INTO v_from, v_to
      FROM retail_mid.ods_order o WHERE o.load_id > coalesce(v_prev_load, 0) AND o.load_id <= v_last_load;
    v_steps := v_steps + 1;
    IF v_from IS NULL THEN
        CALL retail_mid.run_daily_step('refresh', '*', as_of, 'SELECT 0::bigint',
             pg_catalog.jsonb_build_object('skipped', 'no orders loaded since the last refresh', 'last_load_id', coalesce(v_last_load, v_prev_load, 0)), v_ok);
    ELSE
        RAISE NOTICE 'run_daily: refreshing % .. % (loads % .. %)', v_from, v_to, coalesce(v_prev_load, 0) + 1, v_last_load;
        CALL retail_mid.run_daily_step('refresh', '*', as_of, pg_catalog.format('SELECT retail_mid.refresh(%L, %L)', v_from, v_to),
             pg_catalog.jsonb_build_object('from_date', v_from, 'to_date', v_to, 'last_load_id', v_last_load), v_ok);
    END IF;
    v_failed := v_failed + (NOT v_ok)::int;

    -- 2., 3. RFM and AIPL per brand
    FOR v_brand IN SELECT r.brand, r.as_of AS last_day FROM retail_mid.dws_refresh_state r ORDER BY r.brand LOOP
        v_b_asof := LEAST(as_of, v_brand.last_day);
        v_steps := v_steps + 2;
        IF retail_mid.run_daily_done('rfm', v_brand.brand, v_b_asof) THEN
            CALL retail_mid.run_daily_step('rfm', v_brand.brand, v_b_asof, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
        ELSE
            CALL retail_mid.run_daily_step('rfm', v_brand.brand, v_b_asof,
                 pg_catalog.format('SELECT retail_mid.rfm_refresh(%L, %L, 365)', v_brand.brand, v_b_asof), '{}', v_ok);
        END IF;
        v_failed := v_failed + (NOT v_ok)::int;
        IF retail_mid.run_daily_done('aipl', v_brand.brand, v_b_asof) THEN
            CALL retail_mid.run_daily_step('aipl', v_brand.brand, v_b_asof, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
        ELSE
            CALL retail_mid.run_daily_step('aipl', v_brand.brand, v_b_asof,
                 pg_catalog.format('SELECT retail_mid.aipl_refresh(%L, %L, %L)', v_brand.brand, v_b_asof - 29, v_b_asof), '{}', v_ok);
        END IF;
        v_failed := v_failed + (NOT v_ok)::int;
    END LOOP;

    -- 4. tags due by their schedule
    v_tags := retail_mid.run_daily_due_tags(as_of);
    v_steps := v_steps + 1;
    IF v_tags IS NULL THEN
        CALL retail_mid.run_daily_step('tags', '*', as_of, 'SELECT 0::bigint', '{"skipped": "no tag due", "tags": []}', v_ok);
    ELSE
        CALL retail_mid.run_daily_step('tags', '*', as_of, pg_catalog.format('SELECT retail_mid.evaluate_tags(%L::text[])', v_tags),
             pg_catalog.jsonb_build_object('tags', pg_catalog.to_jsonb(v_tags)), v_ok);
    END IF;
    v_failed := v_failed + (NOT v_ok)::int;

    -- 5. stored forecasts (the suggested orders read them), brands with store x SKU sales
    FOR v_brand IN SELECT r.brand, r.as_of AS last_day FROM retail_mid.dws_refresh_state r
                    WHERE EXISTS (SELECT 1 FROM retail_mid.dim_site s WHERE s.brand = r.brand AND s.is_current AND s.site_type = 'store')
                    ORDER BY r.brand LOOP
        v_b_asof := LEAST(as_of, v_brand.last_day);
        v_steps := v_steps + 1;
        IF retail_mid.run_daily_done('forecast', v_brand.brand, v_b_asof) THEN
            CALL retail_mid.run_daily_step('forecast', v_brand.brand, v_b_asof, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
        ELSE
            CALL retail_mid.run_daily_step('forecast', v_brand.brand, v_b_asof,
                 pg_catalog.format('SELECT retail_mid.replenish_refresh_forecasts(%L, %L)', v_brand.brand, v_b_asof), '{}', v_ok);
        END IF;
        v_failed := v_failed + (NOT v_ok)::int;
    END LOOP;

    -- 6. quality rules
    v_steps := v_steps + 1;
    IF retail_mid.run_daily_done('quality', '*', as_of) THEN
        CALL retail_mid.run_daily_step('quality', '*', as_of, 'SELECT 0::bigint', '{"skipped": "done for this day"}', v_ok);
    ELSE
        CALL retail_mid.run_daily_step('quality', '*', as_of,
             pg_catalog.format('SELECT retail_mid.run_daily_quality(%L::timestamptz)', (as_of + 1)::timestamp), '{}', v_ok);
    END IF;
    v_failed := v_failed + (NOT v_ok)::int;

    PERFORM pg_catalog.pg_advisory_unlock(v_lock);
    RAISE NOTICE 'run_daily as of %: % steps, % failed, % s', as_of, v_steps, v_failed,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - t0)::numeric, 1);
    IF v_failed > 0 THEN
        RAISE WARNING 'run_daily as of %: % of % steps failed (job_log, run_daily_summary); the next run retries them', as_of, v_failed, v_steps;
    END IF;
END;
$$;
COMMENT ON PROCEDURE retail_mid.run_daily(date) IS 'The daily pipeline (CALL it outside a transaction block): refresh of the days loaded since the last run, then per brand RFM (365 days) and AIPL (30 days), the tags due by their schedule, stored forecasts, quality rules; each step and brand in its own transaction with a job_log row (job run_daily); a failed step is logged and retried by the next run; steps already done for the day are skipped; one run at a time (55P03). docs/operations.md.';

-- For dashboards: per step and brand, the last run, the last success and the failures since.
CREATE VIEW retail_mid.run_daily_summary WITH (security_invoker = true) AS
WITH s AS (
    SELECT l.job_id, l.arguments ->> 'step' AS step, l.arguments ->> 'brand' AS brand, (l.arguments ->> 'as_of')::date AS as_of,
           l.started_at, l.finished_at, l.duration, l.rows_written, l.outcome, l.detail
      FROM retail_mid.job_log l WHERE l.job = 'run_daily')
SELECT k.step, k.brand,
       last.as_of AS last_as_of, last.outcome AS last_outcome, last.started_at AS last_started_at, last.duration AS last_duration,
       ok.as_of AS last_success_as_of, ok.finished_at AS last_success_at, ok.duration AS last_success_duration,
       ok.rows_written AS last_success_rows,
       (SELECT count(*) FROM s f WHERE f.step = k.step AND f.brand = k.brand AND f.outcome = 'failed'
           AND f.job_id > coalesce(okany.job_id, 0)) AS failures_since_success,
       fail.detail ->> 'sqlstate' AS last_error_sqlstate, fail.detail ->> 'error' AS last_error
  FROM (SELECT DISTINCT step, brand FROM s) k
  CROSS JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand ORDER BY s.job_id DESC LIMIT 1) last
  LEFT JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand AND s.outcome = 'ok' AND NOT s.detail ? 'skipped'
                      ORDER BY s.job_id DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand AND s.outcome = 'ok'
                      ORDER BY s.job_id DESC LIMIT 1) okany ON true
  LEFT JOIN LATERAL (SELECT * FROM s WHERE s.step = k.step AND s.brand = k.brand AND s.outcome = 'failed' ORDER BY s.job_id DESC LIMIT 1) fail ON true;
COMMENT ON VIEW retail_mid.run_daily_summary IS 'For dashboards: per step and brand of retail_mid.run_daily, the last run (as_of, outcome, duration), the last success (as_of, time, duration, rows written), the failures since the last success and the last error.';
COMMENT ON COLUMN retail_mid.run_daily_summary.step IS 'Step: refresh, rfm, aipl, tags, forecast or quality.';
COMMENT ON COLUMN retail_mid.run_daily_summary.brand IS 'Brand, or * for the steps that cover every brand at once (refresh, tags, quality).';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_as_of IS 'Day the last run of the step was for.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_outcome IS 'Outcome of the last run: running, ok or failed.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_started_at IS 'When the last run of the step started.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_duration IS 'Duration of the last run (NULL while it runs).';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_as_of IS 'Day the last successful run that did work was for (runs skipped as already done are not counted here).';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_at IS 'When the last successful run that did work ended.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_duration IS 'Duration of the last successful run that did work.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_success_rows IS 'Rows the last successful run that did work wrote.';
COMMENT ON COLUMN retail_mid.run_daily_summary.failures_since_success IS 'Failed runs since the last successful (or skipped as done) run; all of them when it never succeeded. 0 means healthy.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_error_sqlstate IS 'SQLSTATE of the last failure.';
COMMENT ON COLUMN retail_mid.run_daily_summary.last_error IS 'Message of the last failure.';

-- Scheduling through pg_cron (Debian postgresql-15-cron): one cron job named retail_mid_run_daily running
-- CALL retail_mid.run_daily() as the role that schedules it. pg_cron must be loaded (shared_preload_libraries)
-- and its extension created in this database (cron.database_name); otherwise 55000 with what to do.
CREATE FUNCTION retail_mid.cron_check()
RETURNS void LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN NOT pg_has_role('pg_read_all_settings', 'USAGE') THEN 'The pg_cron extension does not exist in this database.'
                                WHEN current_setting('shared_preload_libraries') ~ '(^|[\s,])pg_cron($|[\s,])'
                                THEN 'pg_cron is loaded but CREATE EXTENSION pg_cron was not run in this database.'
                                ELSE 'pg_cron is not in shared_preload_libraries.' END,
                  HINT = 'Install the package postgresql-15-cron, set shared_preload_libraries = ''pg_cron'' and cron.database_name = '''
                         || current_database() || ''' in postgresql.conf, restart the server, then CREATE EXTENSION pg_cron (as a superuser); or run CALL retail_mid.run_daily() from any other scheduler.';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.cron_check() IS 'Raises 55000 (with the steps to install it) when the pg_cron extension is not installed in the current database.';

CREATE FUNCTION retail_mid.schedule_daily(cron text DEFAULT '30 2 * * *')
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_id bigint;
BEGIN
    IF cron IS NULL OR btrim(cron) = '' THEN
        RAISE EXCEPTION 'schedule_daily needs a cron schedule, e.g. ''30 2 * * *''' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM retail_mid.cron_check();
    -- cron.schedule with a job name replaces an existing job of that name; pg_cron validates the schedule (22023)
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO v_id USING 'retail_mid_run_daily', cron, 'CALL retail_mid.run_daily()';
    RAISE NOTICE 'retail_mid_run_daily scheduled (%) as cron job % in database %, running as %', cron, v_id, current_database(), current_user;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION retail_mid.schedule_daily(text) IS 'Installs (or replaces) the pg_cron job retail_mid_run_daily running CALL retail_mid.run_daily() on the given cron schedule (default 02:30 daily) as the current user; returns the cron job id. 55000 with a hint when pg_cron is not installed.';

CREATE FUNCTION retail_mid.unschedule_daily()
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_found boolean;
BEGIN
    PERFORM retail_mid.cron_check();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO v_found USING 'retail_mid_run_daily';
    IF v_found THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING 'retail_mid_run_daily';
    END IF;
    RETURN v_found;
END;
$$;
COMMENT ON FUNCTION retail_mid.unschedule_daily() IS 'Removes the pg_cron job retail_mid_run_daily; true when there was one, false otherwise. 55000 with a hint when pg_cron is not installed.';

REVOKE EXECUTE ON PROCEDURE retail_mid.run_daily(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retail_mid.run_daily_quality(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retail_mid.run_daily_quality(timestamptz) TO retail_mid_admin;
REVOKE EXECUTE ON PROCEDURE retail_mid.run_daily_step(text, text, date, text, jsonb, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION retail_mid.schedule_daily(text), retail_mid.unschedule_daily() FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE retail_mid.run_daily(date) TO retail_mid_admin;
GRANT EXECUTE ON PROCEDURE retail_mid.run_daily_step(text, text, date, text, jsonb, boolean) TO retail_mid_admin;
GRANT EXECUTE ON FUNCTION retail_mid.schedule_daily(text), retail_mid.unschedule_daily() TO retail_mid_admin;
GRANT SELECT ON retail_mid.run_daily_summary TO retail_mid_admin;
