-- foundation/loaders.sql: the public files of ../shared/data mapped into the ODS contract.
--
-- Each loader reads its files with server-side COPY (so the server must be able to read them; superuser or
-- pg_read_server_files and pg_execute_server_program), validates every row, and either loads everything or
-- nothing: a structurally malformed file or more rejected rows than max_rejected raises an error and the
-- transaction loads nothing. Rows of a file that were loaded before are replaced (reloading a file is idempotent).

-- The size of a file the server is to read, NULL when it does not exist. pg_stat_file reports a path the
-- operating system refuses as too long (ENAMETOOLONG), or a loop of symbolic links, as an internal error (XX000):
-- over-long paths are refused here first with name_too_long, and what stat still cannot classify becomes
-- invalid_parameter_value with the system's message. PARALLEL UNSAFE: the exception block is a subtransaction.
CREATE FUNCTION retail_mid.server_file_size(path text)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE v_longest int;
BEGIN
    IF path IS NULL OR path = '' THEN
        RAISE EXCEPTION 'file path must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(path) >= 4096 THEN
        RAISE EXCEPTION 'file path is too long' USING ERRCODE = 'name_too_long',
            DETAIL = format('The path has %s bytes; the server accepts at most 4095.', octet_length(path));
    END IF;
    SELECT max(octet_length(c)) INTO v_longest FROM regexp_split_to_table(path, '/') c;
    IF v_longest > 255 THEN
        RAISE EXCEPTION 'file path is too long' USING ERRCODE = 'name_too_long',
            DETAIL = format('A component of the path has %s bytes; file names have at most 255.', v_longest);
    END IF;
    BEGIN
        RETURN (pg_stat_file(path, true)).size;
    EXCEPTION WHEN internal_error THEN
        RAISE EXCEPTION '%', SQLERRM USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The path is read by the database server, not by the client.';
    END;
END;
$$;
COMMENT ON FUNCTION retail_mid.server_file_size(text) IS 'Size in bytes of a file on the database server, NULL when it does not exist (used by the loaders); an empty path is invalid_parameter_value, a path of 4096 bytes or more or with a component over 255 bytes is name_too_long.';

-- Copies a CSV file (plain or gzip) with a header into an existing staging table; the file must exist.
CREATE FUNCTION retail_mid.stage_csv(path text, staging regclass, columns text)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n bigint;
BEGIN
    IF retail_mid.server_file_size(path) IS NULL THEN
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
    PERFORM retail_mid.assign_customer_keys(array_agg('customer_id'::text), array_agg(cid), array_agg(load_online_retail.brand))
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
        f := CASE WHEN retail_mid.server_file_size(dir || '/' || f || '.csv.gz') IS NOT NULL THEN dir || '/' || f || '.csv.gz'
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
    PERFORM retail_mid.assign_customer_keys(array_agg('household_id'::text), array_agg(customer_id), array_agg(load_complete_journey.brand))
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
    PERFORM retail_mid.assign_customer_keys(array_agg('customer_id'::text), array_agg(m), array_agg(load_cdnow.brand))
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
    f := CASE WHEN retail_mid.server_file_size(dir || '/orange_juice_weekly.csv.gz') IS NOT NULL
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

-- issue 17: media spend (CSV with a header: date, channel, campaign_id, spend, impressions; campaign_id and
-- impressions may be empty). Rows of a (day, channel, campaign) already loaded are replaced.
CREATE FUNCTION retail_mid.load_media_spend(path text, brand text, max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint;
BEGIN
    IF path IS NULL OR brand IS NULL OR max_rejected IS NULL THEN
        RAISE EXCEPTION 'load_media_spend arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('load_media_spend', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, date text, channel text, campaign_id text,
        spend text, impressions text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'date, channel, campaign_id, spend, impressions');
    UPDATE rm_stage SET reason = CASE
        WHEN date IS NULL OR date !~ '^\s*\d{4}-\d{2}-\d{2}\s*$' THEN 'date is not a YYYY-MM-DD date'
        WHEN substr(btrim(date), 6, 2)::int NOT BETWEEN 1 AND 12 OR substr(btrim(date), 9, 2)::int < 1
          OR substr(btrim(date), 9, 2)::int > extract(day FROM make_date(substr(btrim(date), 1, 4)::int, substr(btrim(date), 6, 2)::int, 1)
                                                             + interval '1 month - 1 day') THEN 'date is not a valid date'
        WHEN retail_mid.invalid_field(channel, 'text') THEN 'missing channel'
        WHEN retail_mid.invalid_field(spend, 'number') THEN 'spend is not a number'
        WHEN spend::numeric < 0 THEN 'spend is negative'
        WHEN impressions IS NOT NULL AND btrim(impressions) <> ''
             AND (retail_mid.invalid_field(impressions, 'integer') OR impressions::bigint < 0) THEN 'impressions is not a non-negative integer' END;
    -- a (day, channel, campaign) twice in the file: the later row wins, the earlier is rejected
    UPDATE rm_stage s SET reason = 'duplicate day, channel and campaign'
      FROM (SELECT line_no, row_number() OVER (PARTITION BY date::date, btrim(channel), coalesce(nullif(btrim(campaign_id), ''), '(none)')
                                               ORDER BY line_no DESC) AS rn
              FROM rm_stage WHERE reason IS NULL) x
     WHERE x.line_no = s.line_no AND x.rn > 1;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('media_spend', path, brand, v_read, v_loaded, v_rejects, max_rejected);
    INSERT INTO retail_mid.ods_media_spend AS m (brand, spend_date, channel, campaign_id, spend, impressions, load_id)
    SELECT load_media_spend.brand, date::date, btrim(channel), coalesce(nullif(btrim(campaign_id), ''), '(none)'), spend::numeric,
           nullif(btrim(impressions), '')::bigint, v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_media_spend_pkey DO UPDATE
       SET spend = excluded.spend, impressions = excluded.impressions, load_id = excluded.load_id;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    ANALYZE retail_mid.ods_media_spend;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_media_spend(text, text, bigint) IS 'Loads media spend (CSV: date, channel, campaign_id, spend, impressions) into ods_media_spend for a brand, replacing rows of the same day, channel and campaign; negative or malformed rows are rejected.';

-- issue 17: category space per store (CSV with a header: store_id, category_l1, space_sqm, shelf_metres; shelf_metres
-- may be empty). Every row names a store of the brand (ods_site of kind store). Rows of a (store, category) already
-- loaded are replaced; nothing is loaded when more than max_rejected rows are rejected.
CREATE FUNCTION retail_mid.load_store_category_space(path text, brand text, max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; b text := brand;
BEGIN
    IF path IS NULL OR brand IS NULL OR max_rejected IS NULL THEN
        RAISE EXCEPTION 'load_store_category_space arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('load_store_category_space', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, store_id text, category_l1 text,
        space_sqm text, shelf_metres text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'store_id, category_l1, space_sqm, shelf_metres');
    UPDATE rm_stage s SET reason = CASE
        WHEN retail_mid.invalid_field(store_id, 'text') THEN 'missing store_id'
        WHEN NOT EXISTS (SELECT 1 FROM retail_mid.ods_site o WHERE o.brand = b AND o.site_id = btrim(s.store_id) AND o.kind = 'store')
             THEN 'store_id is not a store of the brand'
        WHEN retail_mid.invalid_field(category_l1, 'text') THEN 'missing category_l1'
        WHEN retail_mid.invalid_field(space_sqm, 'number') THEN 'space_sqm is not a number'
        WHEN space_sqm::numeric <= 0 OR space_sqm::numeric >= 1e11 THEN 'space_sqm is not a positive area'
        WHEN shelf_metres IS NOT NULL AND btrim(shelf_metres) <> ''
             AND (retail_mid.invalid_field(shelf_metres, 'number') OR shelf_metres::numeric < 0 OR shelf_metres::numeric >= 1e11)
             THEN 'shelf_metres is not a non-negative length' END;
    -- a (store, category) twice in the file: the later row wins, the earlier is rejected
    UPDATE rm_stage s SET reason = 'duplicate store and category'
      FROM (SELECT line_no, row_number() OVER (PARTITION BY btrim(store_id), btrim(category_l1) ORDER BY line_no DESC) AS rn
              FROM rm_stage WHERE reason IS NULL) x
     WHERE x.line_no = s.line_no AND x.rn > 1;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('store_category_space', path, brand, v_read, v_loaded, v_rejects, max_rejected);
    INSERT INTO retail_mid.ods_store_category_space AS m (brand, store_id, category_l1, space_sqm, shelf_metres, load_id)
    SELECT b, btrim(store_id), btrim(category_l1), space_sqm::numeric, nullif(btrim(shelf_metres), '')::numeric, v_load
      FROM rm_stage
    ON CONFLICT ON CONSTRAINT ods_store_category_space_pkey DO UPDATE
       SET space_sqm = excluded.space_sqm, shelf_metres = excluded.shelf_metres, load_id = excluded.load_id;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_store_category_space(text, text, bigint) IS 'Loads the selling space of each level-1 category per store (CSV: store_id, category_l1, space_sqm, shelf_metres) into ods_store_category_space for a brand, replacing rows of the same store and category; rows naming no store of the brand, or with a missing, non-numeric or non-positive area, are rejected.';
