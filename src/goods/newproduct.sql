-- goods/newproduct.sql: new-product 4A (Attraction, Acceptance, Activation, Allocation) against a benchmark product.
--
-- The seed's new-product chapter: a new product has a type (follower, improved, innovative ...) with trial-sale
-- targets, a benchmark product whose curve at the same age it is measured against, and a stage by months since
-- launch. Configuration: newproduct_type, newproduct_stage_threshold (brand '*' rows are the defaults of every brand),
-- newproduct (type, benchmark and launch date of each new SKU, loaded by load_newproducts). Measures read the public
-- layer only (dim_product, dwd_behavior_event_di, dwd_trade_order_line_di, dws_trade_sku_store_1d,
-- dws_inventory_site_sku_1d, dim_store, dim_customer): newproduct_tracking per SKU and week since launch,
-- newproduct_refresh stores it (newproduct_week) for the dashboards (dash_newproduct, newproduct_competitiveness),
-- newproduct_estimate / newproduct_backtest scale the benchmark's curve, newproduct_potential_customers ranks the
-- customers near a store with the lookalike scoring of tags/insight.sql. generate_synthetic_launches plants launches
-- with known curves and shares to test all of it.

-- ----------------------------------------------------------------- configuration
CREATE TABLE retail_mid.newproduct_type (
    brand               text NOT NULL CHECK (brand <> ''),
    np_type             text NOT NULL CHECK (btrim(np_type) <> ''),
    description         text NOT NULL DEFAULT '',
    needs_benchmark     boolean NOT NULL DEFAULT true,
    target_week         int NOT NULL DEFAULT 12 CHECK (target_week BETWEEN 1 AND 520),
    trial_rate_target   float8 CHECK (trial_rate_target BETWEEN 0 AND 1),
    repeat_rate_target  float8 CHECK (repeat_rate_target BETWEEN 0 AND 1),
    distribution_target float8 CHECK (distribution_target BETWEEN 0 AND 1),
    volume_index_target float8 CHECK (volume_index_target > 0 AND volume_index_target < 'Infinity'),
    PRIMARY KEY (brand, np_type)
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.newproduct_type', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.newproduct_type FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.newproduct_type IS 'New-product types and their trial-sale targets, per brand; brand ''*'' rows are the defaults of every brand without a row of that type (the seed''s follower, improved and innovative types).';
COMMENT ON COLUMN retail_mid.newproduct_type.brand IS 'Brand, ''*'' for the defaults of every brand.';
COMMENT ON COLUMN retail_mid.newproduct_type.np_type IS 'Type name (follower, improved, innovative, or the brand''s own: line extension, seasonal ...).';
COMMENT ON COLUMN retail_mid.newproduct_type.description IS 'What the type is and what its benchmark is.';
COMMENT ON COLUMN retail_mid.newproduct_type.needs_benchmark IS 'Whether a new product of this type must name a benchmark SKU (load_newproducts rejects it otherwise).';
COMMENT ON COLUMN retail_mid.newproduct_type.target_week IS 'Age in weeks since launch at which the targets are judged (the end of the trial sale).';
COMMENT ON COLUMN retail_mid.newproduct_type.trial_rate_target IS 'Target trial rate at target_week: trial buyers / exposed customers; NULL = no target.';
COMMENT ON COLUMN retail_mid.newproduct_type.repeat_rate_target IS 'Target repeat rate at target_week: repeat buyers / trial buyers; NULL = no target.';
COMMENT ON COLUMN retail_mid.newproduct_type.distribution_target IS 'Target distribution at target_week: share of the brand''s open stores that have sold the product; NULL = no target.';
COMMENT ON COLUMN retail_mid.newproduct_type.volume_index_target IS 'Target cumulative units relative to the benchmark at the same age (1 = as the benchmark); NULL = no target.';
INSERT INTO retail_mid.newproduct_type (brand, np_type, description, needs_benchmark, target_week, trial_rate_target, repeat_rate_target,
                                        distribution_target, volume_index_target) VALUES
  ('*', 'follower', '跟随型: follows a competitor''s product, the benchmark.', true, 12, 0.20, 0.25, 0.80, 0.8),
  ('*', 'improved', '改进型: improves one of the brand''s own products, the benchmark.', true, 12, 0.25, 0.30, 0.90, 1.0),
  ('*', 'innovative', '创新型: new to the brand; the benchmark is a similar innovation.', true, 12, 0.15, 0.20, 0.60, 0.7);

CREATE TABLE retail_mid.newproduct_stage_threshold (
    brand       text NOT NULL CHECK (brand <> ''),
    stage       text NOT NULL CHECK (btrim(stage) <> ''),
    from_months numeric NOT NULL CHECK (from_months >= 0 AND from_months < 1200),
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (brand, stage),
    UNIQUE (brand, from_months)
);
-- kept by pg_dump with the user's changes to its default rows; a restore merges them (restore_merge)
SELECT pg_catalog.pg_extension_config_dump('retail_mid.newproduct_stage_threshold', '');
CREATE TRIGGER restore_merge BEFORE INSERT ON retail_mid.newproduct_stage_threshold FOR EACH ROW EXECUTE FUNCTION retail_mid.restore_merge();
COMMENT ON TABLE retail_mid.newproduct_stage_threshold IS 'Stages of a new product by months since launch: a stage runs from its from_months to the next stage''s. A brand with rows of its own uses only those; brand ''*'' holds the seed''s defaults (incubation 0-3, growth 3-9, maturity 9+ months).';
COMMENT ON COLUMN retail_mid.newproduct_stage_threshold.brand IS 'Brand, ''*'' for the defaults of every brand.';
COMMENT ON COLUMN retail_mid.newproduct_stage_threshold.stage IS 'Stage name.';
COMMENT ON COLUMN retail_mid.newproduct_stage_threshold.from_months IS 'Months since launch (a month = 30.4375 days) from which the stage applies.';
COMMENT ON COLUMN retail_mid.newproduct_stage_threshold.description IS 'What the stage is.';
INSERT INTO retail_mid.newproduct_stage_threshold (brand, stage, from_months, description) VALUES
  ('*', 'incubation', 0, '孵化期: 0-3 months, trial sale.'),
  ('*', 'growth', 3, '成长期: 3-9 months.'),
  ('*', 'maturity', 9, '成熟期: 9 months and more.');

CREATE TABLE retail_mid.newproduct (
    brand         text NOT NULL,
    sku_id        text NOT NULL CHECK (btrim(sku_id) <> ''),
    np_type       text NOT NULL,
    benchmark_sku text CHECK (benchmark_sku <> sku_id),
    launch_date   date CHECK (launch_date > '-infinity' AND launch_date < 'infinity'),
    load_id       bigint REFERENCES retail_mid.ods_load,
    PRIMARY KEY (brand, sku_id)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.newproduct', '');
COMMENT ON TABLE retail_mid.newproduct IS 'The brand''s new products: type (newproduct_type), benchmark SKU and launch date; loaded by load_newproducts (all-or-nothing, with reasons) or inserted (checked by a trigger).';
COMMENT ON COLUMN retail_mid.newproduct.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.newproduct.sku_id IS 'The new SKU (a product of the brand).';
COMMENT ON COLUMN retail_mid.newproduct.np_type IS 'New-product type: a newproduct_type of the brand or of ''*''.';
COMMENT ON COLUMN retail_mid.newproduct.benchmark_sku IS 'Benchmark SKU (对标品) of the brand whose curve at the same age the new product is measured against; NULL when the type needs none.';
COMMENT ON COLUMN retail_mid.newproduct.launch_date IS 'Launch date; NULL: dim_product.launch_date (ods_product.attributes.launch_date, else the first day with a sale).';
COMMENT ON COLUMN retail_mid.newproduct.load_id IS 'Load (ods_load) that wrote the row, NULL when inserted by hand.';

-- The type row that applies to a brand: its own, else '*'.
CREATE FUNCTION retail_mid.newproduct_type_of(brand text, np_type text)
RETURNS SETOF retail_mid.newproduct_type LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT t.* FROM retail_mid.newproduct_type t
     WHERE t.np_type OPERATOR(pg_catalog.=) newproduct_type_of.np_type
       AND t.brand OPERATOR(pg_catalog.=) ANY (ARRAY[newproduct_type_of.brand, '*'])
     ORDER BY t.brand OPERATOR(pg_catalog.=) '*' LIMIT 1;
END;
COMMENT ON FUNCTION retail_mid.newproduct_type_of(text, text) IS 'The newproduct_type row that applies to a brand: the brand''s own, else the ''*'' default; no row for an unknown type.';

-- Why a new-product row is not acceptable (NULL when it is): the checks of load_newproducts and of the trigger.
CREATE FUNCTION retail_mid.newproduct_problem(brand text, sku_id text, np_type text, benchmark_sku text, launch_date date)
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE t retail_mid.newproduct_type;
BEGIN
    IF sku_id IS NULL OR btrim(sku_id) = '' THEN RETURN 'missing sku_id'; END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.ods_product p WHERE p.brand = newproduct_problem.brand AND p.sku_id = newproduct_problem.sku_id)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.dim_product p WHERE p.brand = newproduct_problem.brand AND p.sku_id = newproduct_problem.sku_id) THEN
        RETURN 'unknown sku_id';
    END IF;
    IF np_type IS NULL OR btrim(np_type) = '' THEN RETURN 'missing type'; END IF;
    SELECT * INTO t FROM retail_mid.newproduct_type_of(brand, np_type);
    IF NOT FOUND THEN RETURN 'unknown type'; END IF;
    IF benchmark_sku IS NULL AND t.needs_benchmark THEN RETURN 'missing benchmark_sku'; END IF;
    IF benchmark_sku = sku_id THEN RETURN 'benchmark_sku is the product itself'; END IF;
    IF benchmark_sku IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM retail_mid.ods_product p WHERE p.brand = newproduct_problem.brand AND p.sku_id = benchmark_sku)
       AND NOT EXISTS (SELECT 1 FROM retail_mid.dim_product p WHERE p.brand = newproduct_problem.brand AND p.sku_id = benchmark_sku) THEN
        RETURN 'unknown benchmark_sku';
    END IF;
    IF launch_date > current_date THEN RETURN 'launch_date is in the future'; END IF;
    IF launch_date = '-infinity' OR launch_date = 'infinity' THEN RETURN 'launch_date is not a valid date'; END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_problem(text, text, text, text, date) IS 'Why a new-product row is not acceptable, NULL when it is: missing or unknown SKU (ods_product or dim_product of the brand), missing or unknown type (newproduct_type of the brand or ''*''), missing benchmark when the type needs one, a benchmark that is the product itself or unknown, a launch date in the future or infinite.';

CREATE FUNCTION retail_mid.newproduct_check()
RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE problem text;
BEGIN
    IF retail_mid.restoring() THEN RETURN NEW; END IF;  -- a restore keeps the rows as dumped
    problem := retail_mid.newproduct_problem(NEW.brand, NEW.sku_id, NEW.np_type, NEW.benchmark_sku, NEW.launch_date);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'new product "%" of brand "%": %', NEW.sku_id, NEW.brand, problem
            USING ERRCODE = CASE WHEN problem LIKE 'unknown%' THEN 'foreign_key_violation'
                                 WHEN problem LIKE 'missing%' THEN 'not_null_violation'
                                 ELSE 'check_violation' END;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_check() IS 'Trigger of newproduct: refuses a row newproduct_problem finds fault with (unknown SKU, type or benchmark 23503, missing type or benchmark 23502, launch in the future 23514).';
CREATE TRIGGER newproduct_check BEFORE INSERT OR UPDATE ON retail_mid.newproduct FOR EACH ROW EXECUTE FUNCTION retail_mid.newproduct_check();

-- New products (CSV with a header: sku_id, np_type, benchmark_sku, launch_date; benchmark_sku and launch_date may be
-- empty). All or nothing by default: a file with more than max_rejected bad rows loads nothing (22000).
CREATE FUNCTION retail_mid.load_newproducts(path text, brand text, max_rejected bigint DEFAULT 0)
RETURNS TABLE (load_id bigint, rows_read bigint, rows_loaded bigint, rows_rejected bigint, rejects jsonb)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE v_read bigint; v_loaded bigint; v_rejects jsonb; v_load bigint; v_job bigint; b text := brand;
BEGIN
    IF path IS NULL OR brand IS NULL OR max_rejected IS NULL THEN
        RAISE EXCEPTION 'load_newproducts arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('load_newproducts', jsonb_build_object('path', path, 'brand', brand));
    CREATE TEMP TABLE rm_stage (line_no bigint GENERATED ALWAYS AS IDENTITY, sku_id text, np_type text, benchmark_sku text,
        launch_date text, reason text) ON COMMIT DROP;
    v_read := retail_mid.stage_csv(path, 'pg_temp.rm_stage', 'sku_id, np_type, benchmark_sku, launch_date');
    UPDATE rm_stage SET sku_id = nullif(btrim(sku_id), ''), np_type = nullif(btrim(np_type), ''),
                        benchmark_sku = nullif(btrim(benchmark_sku), ''), launch_date = nullif(btrim(launch_date), '');
    UPDATE rm_stage SET reason = CASE
        WHEN launch_date IS NOT NULL AND launch_date !~ '^\d{4}-\d{2}-\d{2}$' THEN 'launch_date is not a YYYY-MM-DD date'
        WHEN launch_date IS NOT NULL AND (substr(launch_date, 6, 2)::int NOT BETWEEN 1 AND 12 OR substr(launch_date, 9, 2)::int < 1
             OR substr(launch_date, 9, 2)::int > extract(day FROM make_date(substr(launch_date, 1, 4)::int, substr(launch_date, 6, 2)::int, 1)
                                                           + interval '1 month - 1 day')) THEN 'launch_date is not a valid date' END;
    UPDATE rm_stage SET reason = retail_mid.newproduct_problem(b, sku_id, np_type, benchmark_sku, launch_date::date) WHERE reason IS NULL;
    UPDATE rm_stage s SET reason = 'duplicate sku_id'
      FROM (SELECT line_no, row_number() OVER (PARTITION BY sku_id ORDER BY line_no DESC) AS rn FROM rm_stage WHERE reason IS NULL) x
     WHERE x.line_no = s.line_no AND x.rn > 1;
    v_rejects := retail_mid.take_rejects('pg_temp.rm_stage');
    SELECT count(*) INTO v_loaded FROM rm_stage;
    v_load := retail_mid.finish_load('newproducts', path, b, v_read, v_loaded, v_rejects, max_rejected);
    INSERT INTO retail_mid.newproduct AS n (brand, sku_id, np_type, benchmark_sku, launch_date, load_id)
    SELECT b, sku_id, np_type, benchmark_sku, launch_date::date, v_load FROM rm_stage
    ON CONFLICT ON CONSTRAINT newproduct_pkey DO UPDATE
       SET np_type = excluded.np_type, benchmark_sku = excluded.benchmark_sku, launch_date = excluded.launch_date, load_id = excluded.load_id;
    DROP TABLE rm_stage;
    PERFORM retail_mid.job_finish(v_job, v_loaded, jsonb_build_object('load_id', v_load));
    RAISE NOTICE 'load_newproducts: % rows read, % loaded', v_read, v_loaded;
    RETURN QUERY SELECT * FROM retail_mid.load_report(v_load);
END;
$$;
COMMENT ON FUNCTION retail_mid.load_newproducts(text, text, bigint) IS 'Loads new products (CSV: sku_id, np_type, benchmark_sku, launch_date) into newproduct for a brand, replacing rows of the same SKU. Rows are rejected with their reason (unknown SKU, type or benchmark, missing benchmark for a type that needs one, benchmark = product, malformed or future launch date, SKU twice); with more than max_rejected rejects (default 0) nothing is loaded (22000).';

-- ----------------------------------------------------------------- stages
CREATE FUNCTION retail_mid.newproduct_stage(launch_date date, as_of date, brand text DEFAULT '*')
RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE months numeric; b text; v text;
BEGIN
    IF launch_date IS NULL OR as_of IS NULL OR brand IS NULL THEN
        RAISE EXCEPTION 'newproduct_stage arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF launch_date IN ('infinity', '-infinity') OR as_of IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'launch date and as_of must be finite' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF launch_date > as_of THEN
        RAISE EXCEPTION 'launch date % is after %', launch_date, as_of USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A product not launched yet has no stage.';
    END IF;
    b := CASE WHEN EXISTS (SELECT 1 FROM retail_mid.newproduct_stage_threshold t WHERE t.brand = newproduct_stage.brand) THEN brand ELSE '*' END;
    months := (as_of - launch_date) / 30.4375;
    SELECT t.stage INTO v FROM retail_mid.newproduct_stage_threshold t
     WHERE t.brand = b ORDER BY (t.from_months <= months) DESC, CASE WHEN t.from_months <= months THEN -t.from_months ELSE t.from_months END LIMIT 1;
    IF v IS NULL THEN
        RAISE EXCEPTION 'no new-product stages are defined' USING ERRCODE = 'undefined_object',
            HINT = 'Add rows to retail_mid.newproduct_stage_threshold (brand ''*'' for every brand).';
    END IF;
    RETURN v;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_stage(date, date, text) IS 'Stage of a new product launched on launch_date as of a day, by months since launch (30.4375 days) and newproduct_stage_threshold (the brand''s rows, else ''*'': incubation 0-3, growth 3-9, maturity 9+ months); before the first threshold, the first stage. NULL 22004, infinite dates or a launch after as_of 22023, no stages 42704.';

-- ----------------------------------------------------------------- the launches, as the public layer sees them
-- The brand's latest day of trade in the DWD: the end of what can be measured.
CREATE FUNCTION retail_mid.newproduct_data_end(brand text)
RETURNS date LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT max(l.dt) FROM retail_mid.dwd_trade_order_line_di l WHERE l.brand OPERATOR(pg_catalog.=) newproduct_data_end.brand;
END;
COMMENT ON FUNCTION retail_mid.newproduct_data_end(text) IS 'The brand''s latest day with trade in dwd_trade_order_line_di: what a new product''s age is measured up to.';

CREATE VIEW retail_mid.newproduct_launch WITH (security_invoker = true) AS
SELECT n.brand, n.sku_id, p.sku_name, p.category_l1, n.np_type, n.benchmark_sku,
       coalesce(n.launch_date, p.launch_date) AS launch_date,
       CASE WHEN n.launch_date IS NOT NULL THEN 'newproduct' WHEN p.launch_date IS NOT NULL THEN 'dim_product' END AS launch_source,
       coalesce(bn.launch_date, bp.launch_date) AS benchmark_launch_date,
       t.target_week, t.trial_rate_target, t.repeat_rate_target, t.distribution_target, t.volume_index_target
  FROM retail_mid.newproduct n
  LEFT JOIN retail_mid.dim_product p ON p.brand = n.brand AND p.sku_id = n.sku_id AND p.is_current
  LEFT JOIN retail_mid.newproduct bn ON bn.brand = n.brand AND bn.sku_id = n.benchmark_sku
  LEFT JOIN retail_mid.dim_product bp ON bp.brand = n.brand AND bp.sku_id = n.benchmark_sku AND bp.is_current
  LEFT JOIN LATERAL retail_mid.newproduct_type_of(n.brand, n.np_type) t ON true;
COMMENT ON VIEW retail_mid.newproduct_launch IS 'Each new product with its launch date (newproduct.launch_date, else dim_product''s), its benchmark''s launch date and the trial-sale targets of its type (the brand''s newproduct_type row, else ''*'').';
COMMENT ON COLUMN retail_mid.newproduct_launch.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.newproduct_launch.sku_id IS 'New SKU.';
COMMENT ON COLUMN retail_mid.newproduct_launch.sku_name IS 'Product name (dim_product).';
COMMENT ON COLUMN retail_mid.newproduct_launch.category_l1 IS 'Top-level category (dim_product).';
COMMENT ON COLUMN retail_mid.newproduct_launch.np_type IS 'New-product type.';
COMMENT ON COLUMN retail_mid.newproduct_launch.benchmark_sku IS 'Benchmark SKU, NULL when none.';
COMMENT ON COLUMN retail_mid.newproduct_launch.launch_date IS 'Launch date: newproduct.launch_date, else dim_product.launch_date; NULL when neither is known (not refreshed, never sold).';
COMMENT ON COLUMN retail_mid.newproduct_launch.launch_source IS 'Where the launch date comes from: newproduct or dim_product.';
COMMENT ON COLUMN retail_mid.newproduct_launch.benchmark_launch_date IS 'The benchmark''s launch date (its newproduct row, else dim_product), the origin of its curve.';
COMMENT ON COLUMN retail_mid.newproduct_launch.target_week IS 'Age in weeks at which the targets are judged.';
COMMENT ON COLUMN retail_mid.newproduct_launch.trial_rate_target IS 'Target trial rate (trial buyers / exposed customers).';
COMMENT ON COLUMN retail_mid.newproduct_launch.repeat_rate_target IS 'Target repeat rate (repeat buyers / trial buyers).';
COMMENT ON COLUMN retail_mid.newproduct_launch.distribution_target IS 'Target share of open stores that have sold it.';
COMMENT ON COLUMN retail_mid.newproduct_launch.volume_index_target IS 'Target cumulative units relative to the benchmark at the same age.';

-- The 4A measures of one SKU by week since a launch day, from the DWD/DWS/DIM: the building block of the tracking
-- (for the new product and, from its own launch, its benchmark).
CREATE FUNCTION retail_mid.newproduct_sku_weeks(brand text, sku_id text, launch_date date, weeks int)
RETURNS TABLE (week int, exposed bigint, exposed_cum bigint, visitors bigint, visitors_cum bigint,
               trial_buyers bigint, trial_buyers_cum bigint, repeat_buyers bigint, repeat_buyers_cum bigint,
               units numeric, units_cum numeric, net_sales numeric, stores_selling bigint, stores_selling_cum bigint,
               stores_open bigint, stockout_store_days bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH wk AS (SELECT w FROM pg_catalog.generate_series(0, newproduct_sku_weeks.weeks - 1) w),
         beh AS (SELECT e.customer_key, (e.dt - newproduct_sku_weeks.launch_date) / 7 AS w,
                        e.event_type = 'exposure' AS is_exposure
                   FROM retail_mid.dwd_behavior_event_di e
                  WHERE e.brand = newproduct_sku_weeks.brand AND e.object_attribute = 'sku_id'
                    AND e.object_value = newproduct_sku_weeks.sku_id
                    AND e.event_type = ANY (ARRAY['exposure', 'view', 'click', 'favorite', 'cart', 'share'])
                    AND e.dt >= newproduct_sku_weeks.launch_date
                    AND e.dt < newproduct_sku_weeks.launch_date + 7 * newproduct_sku_weeks.weeks),
         sale AS (SELECT l.customer_key, l.dt FROM retail_mid.dwd_trade_order_line_di l
                   WHERE l.brand = newproduct_sku_weeks.brand AND l.sku_id = newproduct_sku_weeks.sku_id
                     AND l.line_type = 'sale' AND l.customer_key IS NOT NULL
                     AND l.dt >= newproduct_sku_weeks.launch_date
                     AND l.dt < newproduct_sku_weeks.launch_date + 7 * newproduct_sku_weeks.weeks),
         first_buy AS (SELECT s.customer_key, pg_catalog.min(s.dt) AS d FROM sale s GROUP BY s.customer_key),
         second_buy AS (SELECT s.customer_key, pg_catalog.min(s.dt) AS d FROM sale s JOIN first_buy f ON f.customer_key = s.customer_key
                         WHERE s.dt > f.d GROUP BY s.customer_key),
         sku_store AS (SELECT d.store_id, (d.dt - newproduct_sku_weeks.launch_date) / 7 AS w, d.quantity, d.net_amount, d.sales_quantity
                         FROM retail_mid.dws_trade_sku_store_1d d
                        WHERE d.brand = newproduct_sku_weeks.brand AND d.sku_id = newproduct_sku_weeks.sku_id
                          AND d.dt >= newproduct_sku_weeks.launch_date
                          AND d.dt < newproduct_sku_weeks.launch_date + 7 * newproduct_sku_weeks.weeks),
         store_first AS (SELECT s.store_id, pg_catalog.min(s.w) AS w FROM sku_store s WHERE s.sales_quantity > 0 GROUP BY s.store_id),
         per_week AS (
            SELECT wk.w,
                   (SELECT pg_catalog.count(DISTINCT b.customer_key) FROM beh b WHERE b.is_exposure AND b.w = wk.w) AS exposed,
                   (SELECT pg_catalog.count(DISTINCT b.customer_key) FROM beh b WHERE b.is_exposure AND b.w <= wk.w) AS exposed_cum,
                   (SELECT pg_catalog.count(DISTINCT b.customer_key) FROM beh b WHERE NOT b.is_exposure AND b.w = wk.w) AS visitors,
                   (SELECT pg_catalog.count(DISTINCT b.customer_key) FROM beh b WHERE NOT b.is_exposure AND b.w <= wk.w) AS visitors_cum,
                   (SELECT pg_catalog.count(*) FROM first_buy f
                     WHERE (f.d - newproduct_sku_weeks.launch_date) / 7 = wk.w) AS trial_buyers,
                   (SELECT pg_catalog.count(*) FROM first_buy f
                     WHERE (f.d - newproduct_sku_weeks.launch_date) / 7 <= wk.w) AS trial_buyers_cum,
                   (SELECT pg_catalog.count(*) FROM second_buy f
                     WHERE (f.d - newproduct_sku_weeks.launch_date) / 7 = wk.w) AS repeat_buyers,
                   (SELECT pg_catalog.count(*) FROM second_buy f
                     WHERE (f.d - newproduct_sku_weeks.launch_date) / 7 <= wk.w) AS repeat_buyers_cum,
                   (SELECT coalesce(pg_catalog.sum(s.quantity), 0) FROM sku_store s WHERE s.w = wk.w) AS units,
                   (SELECT coalesce(pg_catalog.sum(s.quantity), 0) FROM sku_store s WHERE s.w <= wk.w) AS units_cum,
                   (SELECT coalesce(pg_catalog.sum(s.net_amount), 0) FROM sku_store s WHERE s.w = wk.w) AS net_sales,
                   (SELECT pg_catalog.count(DISTINCT s.store_id) FROM sku_store s
                     WHERE s.w = wk.w AND s.sales_quantity > 0) AS stores_selling,
                   (SELECT pg_catalog.count(*) FROM store_first f WHERE f.w <= wk.w) AS stores_selling_cum,
                   (SELECT pg_catalog.count(*) FROM retail_mid.dim_store st
                     WHERE st.brand = newproduct_sku_weeks.brand AND st.is_current AND st.status <> 'planned'
                       AND (st.opened_on IS NULL OR st.opened_on <= newproduct_sku_weeks.launch_date + (7 * wk.w + 6))
                       AND (st.closed_on IS NULL OR st.closed_on > newproduct_sku_weeks.launch_date + 7 * wk.w)) AS stores_open,
                   (SELECT pg_catalog.count(*) FROM retail_mid.dws_inventory_site_sku_1d i
                     WHERE i.brand = newproduct_sku_weeks.brand AND i.sku_id = newproduct_sku_weeks.sku_id
                       AND i.site_kind = 'store' AND i.stock_out
                       AND i.dt >= newproduct_sku_weeks.launch_date + 7 * wk.w
                       AND i.dt < newproduct_sku_weeks.launch_date + (7 * wk.w + 7)) AS stockout_store_days
              FROM wk)
    SELECT p.w, p.exposed, p.exposed_cum, p.visitors, p.visitors_cum, p.trial_buyers, p.trial_buyers_cum, p.repeat_buyers,
           p.repeat_buyers_cum, p.units, p.units_cum, p.net_sales, p.stores_selling, p.stores_selling_cum, p.stores_open, p.stockout_store_days
      FROM per_week p ORDER BY p.w;
END;
COMMENT ON FUNCTION retail_mid.newproduct_sku_weeks(text, text, date, int) IS 'Internal to newproduct_tracking: the 4A measures of one SKU for weeks 0..weeks-1 since a launch day (week w = days since launch div 7): customers exposed to it and visiting it (exposure; view, click, favourite, cart or share events on the SKU in dwd_behavior_event_di), trial buyers (first purchase since launch) and repeat buyers (a purchase on a later day) from dwd_trade_order_line_di, net units and sales and stores selling from dws_trade_sku_store_1d, open stores (dim_store) and store-days out of stock (dws_inventory_site_sku_1d), per week and cumulated.';

CREATE FUNCTION retail_mid.newproduct_tracking(of_brand text, of_sku text DEFAULT NULL, weeks int DEFAULT 26)
RETURNS TABLE (brand text, sku_id text, np_type text, benchmark_sku text, launch_date date, week int, week_start date, stage text,
               exposed bigint, exposed_cum bigint, visitors bigint, visitors_cum bigint,
               trial_buyers bigint, trial_buyers_cum bigint, trial_rate float8,
               repeat_buyers bigint, repeat_buyers_cum bigint, repeat_rate float8,
               units numeric, units_cum numeric, net_sales numeric,
               stores_selling bigint, stores_selling_cum bigint, stores_open bigint, distribution float8, stockout_store_days bigint,
               bm_trial_buyers_cum bigint, bm_trial_rate float8, bm_repeat_rate float8, bm_units_cum numeric, bm_distribution float8,
               volume_index float8, trial_rate_target float8, repeat_rate_target float8, distribution_target float8, volume_index_target float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE b text := of_brand; s text := of_sku; v_end date; l record; n_weeks int; bm_weeks int; found_any boolean := false;
BEGIN
    IF of_brand IS NULL OR weeks IS NULL THEN
        RAISE EXCEPTION 'brand and weeks must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF weeks < 1 OR weeks > 520 THEN
        RAISE EXCEPTION 'weeks must be between 1 and 520' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM retail_mid.newproduct n WHERE n.brand = b AND n.sku_id = s) THEN
        RAISE EXCEPTION 'unknown new product "%" of brand "%"', s, b USING ERRCODE = 'undefined_object',
            HINT = CASE WHEN EXISTS (SELECT 1 FROM retail_mid.dim_product p WHERE p.brand = b AND p.sku_id = s)
                        THEN 'The SKU is a product of the brand but not a new product: add it to retail_mid.newproduct (load_newproducts).'
                        ELSE 'The brand has no such SKU.' END;
    END IF;
    v_end := retail_mid.newproduct_data_end(b);
    FOR l IN SELECT * FROM retail_mid.newproduct_launch nl WHERE nl.brand = b AND (s IS NULL OR nl.sku_id = s) ORDER BY nl.sku_id LOOP
        IF l.launch_date IS NULL OR v_end IS NULL OR l.launch_date > v_end THEN
            IF s IS NOT NULL THEN
                RAISE EXCEPTION 'new product "%" of brand "%" is not launched in the data', s, b USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('Launch date %s, trade data up to %s.', coalesce(l.launch_date::text, 'unknown'), coalesce(v_end::text, 'none')),
                    HINT = 'Tracking starts at the launch date; run refresh after the first sales.';
            END IF;
            CONTINUE;
        END IF;
        found_any := true;
        n_weeks := least(weeks, (v_end - l.launch_date + 1) / 7);
        IF n_weeks < 1 THEN CONTINUE; END IF;   -- less than a full week observed
        bm_weeks := CASE WHEN l.benchmark_launch_date IS NOT NULL AND l.benchmark_launch_date <= v_end
                         THEN least(n_weeks, (v_end - l.benchmark_launch_date + 1) / 7) ELSE 0 END;
        RETURN QUERY
        SELECT b, l.sku_id, l.np_type, l.benchmark_sku, l.launch_date, t.week, l.launch_date + 7 * t.week,
               retail_mid.newproduct_stage(l.launch_date, l.launch_date + 7 * t.week + 6, b),
               t.exposed, t.exposed_cum, t.visitors, t.visitors_cum,
               t.trial_buyers, t.trial_buyers_cum, t.trial_buyers_cum::float8 / nullif(t.exposed_cum, 0),
               t.repeat_buyers, t.repeat_buyers_cum, t.repeat_buyers_cum::float8 / nullif(t.trial_buyers_cum, 0),
               t.units, t.units_cum, t.net_sales,
               t.stores_selling, t.stores_selling_cum, t.stores_open, t.stores_selling_cum::float8 / nullif(t.stores_open, 0), t.stockout_store_days,
               m.trial_buyers_cum, m.trial_buyers_cum::float8 / nullif(m.exposed_cum, 0), m.repeat_buyers_cum::float8 / nullif(m.trial_buyers_cum, 0),
               m.units_cum, m.stores_selling_cum::float8 / nullif(m.stores_open, 0),
               (t.units_cum / nullif(m.units_cum, 0))::float8,
               l.trial_rate_target, l.repeat_rate_target, l.distribution_target, l.volume_index_target
          FROM retail_mid.newproduct_sku_weeks(b, l.sku_id, l.launch_date, n_weeks) t
          LEFT JOIN retail_mid.newproduct_sku_weeks(b, l.benchmark_sku, l.benchmark_launch_date, greatest(bm_weeks, 1)) m
            ON bm_weeks > 0 AND m.week = t.week
         ORDER BY t.week;
    END LOOP;
    IF s IS NULL AND NOT found_any AND NOT EXISTS (SELECT 1 FROM retail_mid.newproduct n WHERE n.brand = b) THEN
        RAISE EXCEPTION 'brand "%" has no new products', b USING ERRCODE = 'undefined_object',
            HINT = 'Load them with retail_mid.load_newproducts.';
    END IF;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_tracking(text, text, int) IS 'New-product 4A tracking per SKU (one, or every new product of the brand launched in the data) and week since launch, for up to weeks full weeks observed: Attraction (customers exposed and visiting), Acceptance (trial buyers, trial rate = trial buyers / exposed customers, cumulated), Activation (repeat buyers, repeat rate = repeat / trial buyers), Allocation (stores selling, distribution = stores that have sold it / open stores, store-days out of stock), next to the benchmark SKU at the same age (from its own launch) and the trial-sale targets of the type; stage by newproduct_stage at the week''s end. Reads DWD/DWS/DIM (run refresh first). Unknown new product 42704, a product not launched in the data 22023, weeks outside 1..520 22023.';

-- ----------------------------------------------------------------- stored tracking, for the dashboards
CREATE TABLE retail_mid.newproduct_week (
    brand text NOT NULL, sku_id text NOT NULL, np_type text NOT NULL, benchmark_sku text, launch_date date NOT NULL,
    week int NOT NULL, week_start date NOT NULL, stage text NOT NULL,
    exposed bigint NOT NULL, exposed_cum bigint NOT NULL, visitors bigint NOT NULL, visitors_cum bigint NOT NULL,
    trial_buyers bigint NOT NULL, trial_buyers_cum bigint NOT NULL, trial_rate float8,
    repeat_buyers bigint NOT NULL, repeat_buyers_cum bigint NOT NULL, repeat_rate float8,
    units numeric NOT NULL, units_cum numeric NOT NULL, net_sales numeric NOT NULL,
    stores_selling bigint NOT NULL, stores_selling_cum bigint NOT NULL, stores_open bigint NOT NULL, distribution float8,
    stockout_store_days bigint NOT NULL,
    bm_trial_buyers_cum bigint, bm_trial_rate float8, bm_repeat_rate float8, bm_units_cum numeric, bm_distribution float8,
    volume_index float8, trial_rate_target float8, repeat_rate_target float8, distribution_target float8, volume_index_target float8,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand, sku_id, week)
);
-- kept by pg_dump: docs/installation.md, Backup and restore
SELECT pg_catalog.pg_extension_config_dump('retail_mid.newproduct_week', '');
COMMENT ON TABLE retail_mid.newproduct_week IS 'New-product 4A tracking as of the last newproduct_refresh: the rows of newproduct_tracking for every new product of the brand (the dashboards read this table, BI does not read the DWD).';
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 'retail_mid.newproduct_week'::regclass AND a.attnum > 0 AND NOT a.attisdropped LOOP
        EXECUTE format('COMMENT ON COLUMN retail_mid.newproduct_week.%I IS %L', c.attname, CASE c.attname
            WHEN 'brand' THEN 'Brand.'
            WHEN 'sku_id' THEN 'New SKU.'
            WHEN 'np_type' THEN 'New-product type.'
            WHEN 'benchmark_sku' THEN 'Benchmark SKU, NULL when none.'
            WHEN 'launch_date' THEN 'Launch date (newproduct_launch).'
            WHEN 'week' THEN 'Week since launch, 0 = the launch day and the 6 days after.'
            WHEN 'week_start' THEN 'First day of the week: launch_date + 7 * week.'
            WHEN 'stage' THEN 'Stage at the end of the week (newproduct_stage).'
            WHEN 'exposed' THEN 'Attraction: distinct customers with an exposure event on the SKU in the week.'
            WHEN 'exposed_cum' THEN 'Distinct customers exposed since launch.'
            WHEN 'visitors' THEN 'Attraction: distinct customers with a view, click, favourite, cart or share event on the SKU in the week.'
            WHEN 'visitors_cum' THEN 'Distinct visiting customers since launch.'
            WHEN 'trial_buyers' THEN 'Acceptance: customers whose first purchase of the SKU since launch is in the week.'
            WHEN 'trial_buyers_cum' THEN 'Trial buyers since launch.'
            WHEN 'trial_rate' THEN 'trial_buyers_cum / exposed_cum (NULL without exposure).'
            WHEN 'repeat_buyers' THEN 'Activation: customers whose second purchase day of the SKU is in the week.'
            WHEN 'repeat_buyers_cum' THEN 'Repeat buyers since launch.'
            WHEN 'repeat_rate' THEN 'repeat_buyers_cum / trial_buyers_cum.'
            WHEN 'units' THEN 'Net units sold in the week (dws_trade_sku_store_1d).'
            WHEN 'units_cum' THEN 'Net units since launch.'
            WHEN 'net_sales' THEN 'Net sales amount in the week.'
            WHEN 'stores_selling' THEN 'Allocation: stores with a sale of the SKU in the week.'
            WHEN 'stores_selling_cum' THEN 'Stores that have sold the SKU since launch.'
            WHEN 'stores_open' THEN 'Open stores of the brand in the week (dim_store, current).'
            WHEN 'distribution' THEN 'stores_selling_cum / stores_open.'
            WHEN 'stockout_store_days' THEN 'Store-days out of stock of the SKU in the week (dws_inventory_site_sku_1d).'
            WHEN 'bm_trial_buyers_cum' THEN 'The benchmark''s trial buyers at the same age (from its own launch).'
            WHEN 'bm_trial_rate' THEN 'The benchmark''s trial rate at the same age.'
            WHEN 'bm_repeat_rate' THEN 'The benchmark''s repeat rate at the same age.'
            WHEN 'bm_units_cum' THEN 'The benchmark''s cumulative units at the same age.'
            WHEN 'bm_distribution' THEN 'The benchmark''s distribution at the same age.'
            WHEN 'volume_index' THEN 'units_cum / bm_units_cum: 1 = sells as the benchmark did at the same age.'
            WHEN 'trial_rate_target' THEN 'Target trial rate of the type.'
            WHEN 'repeat_rate_target' THEN 'Target repeat rate of the type.'
            WHEN 'distribution_target' THEN 'Target distribution of the type.'
            WHEN 'volume_index_target' THEN 'Target volume index of the type.'
            WHEN 'refreshed_at' THEN 'When newproduct_refresh wrote the row.' END);
    END LOOP;
END;
$$;

CREATE FUNCTION retail_mid.newproduct_refresh(brand text, weeks int DEFAULT 52)
RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE b text := brand; n bigint; v_job bigint;
BEGIN
    IF brand IS NULL OR weeks IS NULL THEN
        RAISE EXCEPTION 'brand and weeks must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_job := retail_mid.job_start('newproduct_refresh', jsonb_build_object('brand', brand, 'weeks', weeks));
    CREATE TEMP TABLE rm_np_week ON COMMIT DROP AS SELECT * FROM retail_mid.newproduct_tracking(b, NULL, weeks);
    DELETE FROM retail_mid.newproduct_week w WHERE w.brand = b;
    INSERT INTO retail_mid.newproduct_week SELECT t.*, now() FROM rm_np_week t;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE rm_np_week;
    RAISE NOTICE 'newproduct_refresh: % rows for % new products', n, (SELECT count(DISTINCT w.sku_id) FROM retail_mid.newproduct_week w WHERE w.brand = b);
    PERFORM retail_mid.job_finish(v_job, n, '{}');
    RETURN n;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_refresh(text, int) IS 'Stores newproduct_tracking of every new product of a brand (up to weeks weeks since launch) in newproduct_week for the dashboards, replacing the brand''s rows; returns the rows written.';

CREATE VIEW retail_mid.newproduct_competitiveness WITH (security_invoker = true) AS
WITH latest AS (
    SELECT w.*, row_number() OVER (PARTITION BY w.brand, w.sku_id ORDER BY w.week DESC) AS rn
      FROM retail_mid.newproduct_week w
      JOIN retail_mid.newproduct_launch l ON l.brand = w.brand AND l.sku_id = w.sku_id
     WHERE w.week < coalesce(l.target_week, 12)),
     growth AS (
    SELECT w.brand, w.sku_id,
           sum(w.units) FILTER (WHERE w.week > lt.week - 4) AS last4,
           sum(w.units) FILTER (WHERE w.week <= lt.week - 4 AND w.week > lt.week - 8) AS prev4
      FROM retail_mid.newproduct_week w JOIN latest lt ON lt.brand = w.brand AND lt.sku_id = w.sku_id AND lt.rn = 1
     WHERE w.week <= lt.week GROUP BY w.brand, w.sku_id)
SELECT l.brand, l.sku_id, l.np_type, l.benchmark_sku, l.week AS at_week, l.volume_index,
       (g.last4 / nullif(g.prev4, 0) - 1)::float8 AS growth_4w, l.repeat_rate, l.trial_rate,
       coalesce(l.volume_index_target, 1)::float8 AS growth_threshold,
       coalesce(l.repeat_rate_target, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.repeat_rate) FROM latest x
                                        WHERE x.brand = l.brand AND x.rn = 1))::float8 AS repeat_threshold,
       CASE WHEN l.volume_index IS NULL OR l.repeat_rate IS NULL THEN 'unrated'
            WHEN l.volume_index >= coalesce(l.volume_index_target, 1) THEN
                 CASE WHEN l.repeat_rate >= coalesce(l.repeat_rate_target, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.repeat_rate) FROM latest x WHERE x.brand = l.brand AND x.rn = 1))
                      THEN 'star' ELSE 'trial_driven' END
            ELSE CASE WHEN l.repeat_rate >= coalesce(l.repeat_rate_target, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.repeat_rate) FROM latest x WHERE x.brand = l.brand AND x.rn = 1))
                      THEN 'loyal_niche' ELSE 'laggard' END END AS quadrant
  FROM latest l JOIN growth g ON g.brand = l.brand AND g.sku_id = l.sku_id
 WHERE l.rn = 1;
COMMENT ON VIEW retail_mid.newproduct_competitiveness IS 'New-product competitiveness matrix (竞争力矩阵), from newproduct_week at the latest week before the type''s target_week: growth (volume index against the benchmark at the same age) against repeat (repeat rate), each split at the type''s target (the brand''s median repeat rate when the type has no repeat target): star (both high), trial_driven (sells, few come back), loyal_niche (few buyers who come back), laggard (both low); unrated without a benchmark curve or trial buyers.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.sku_id IS 'New SKU.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.np_type IS 'New-product type.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.benchmark_sku IS 'Benchmark SKU.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.at_week IS 'Week since launch the position is read at: the latest stored week before the type''s target_week.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.volume_index IS 'Growth axis: cumulative units / the benchmark''s at the same age.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.growth_4w IS 'Units of the last 4 weeks over the 4 weeks before, minus 1 (NULL before week 4 or without sales then).';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.repeat_rate IS 'Repeat axis: repeat buyers / trial buyers.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.trial_rate IS 'Trial buyers / exposed customers.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.growth_threshold IS 'Where the growth axis is split: the type''s volume_index_target, else 1.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.repeat_threshold IS 'Where the repeat axis is split: the type''s repeat_rate_target, else the brand''s median repeat rate.';
COMMENT ON COLUMN retail_mid.newproduct_competitiveness.quadrant IS 'star, trial_driven, loyal_niche, laggard or unrated.';

CREATE VIEW retail_mid.dash_newproduct WITH (security_invoker = true) AS
SELECT w.brand, w.sku_id, l.sku_name, w.np_type, w.benchmark_sku, w.launch_date, w.week AS weeks_tracked, w.stage,
       w.exposed_cum, w.visitors_cum, w.trial_buyers_cum, w.trial_rate, w.trial_rate_target,
       w.repeat_buyers_cum, w.repeat_rate, w.repeat_rate_target,
       w.stores_selling_cum, w.distribution, w.distribution_target,
       (SELECT sum(x.stockout_store_days) FROM retail_mid.newproduct_week x WHERE x.brand = w.brand AND x.sku_id = w.sku_id)::bigint AS stockout_store_days,
       w.units_cum, w.bm_units_cum, w.volume_index, w.volume_index_target,
       c.quadrant, w.refreshed_at
  FROM retail_mid.newproduct_week w
  LEFT JOIN retail_mid.newproduct_launch l ON l.brand = w.brand AND l.sku_id = w.sku_id
  LEFT JOIN retail_mid.newproduct_competitiveness c ON c.brand = w.brand AND c.sku_id = w.sku_id
 WHERE w.week = (SELECT max(x.week) FROM retail_mid.newproduct_week x WHERE x.brand = w.brand AND x.sku_id = w.sku_id);
COMMENT ON VIEW retail_mid.dash_newproduct IS 'New-product dashboard (新品运营全链路看板): one row per new product at its latest tracked week, the 4A funnel (exposed, visiting, trial, repeat, distribution, stock-outs) against the type''s targets and the benchmark, and its quadrant of the competitiveness matrix; weekly detail in newproduct_week. As of the last newproduct_refresh.';
COMMENT ON COLUMN retail_mid.dash_newproduct.brand IS 'Brand.';
COMMENT ON COLUMN retail_mid.dash_newproduct.sku_id IS 'New SKU.';
COMMENT ON COLUMN retail_mid.dash_newproduct.sku_name IS 'Product name.';
COMMENT ON COLUMN retail_mid.dash_newproduct.np_type IS 'New-product type.';
COMMENT ON COLUMN retail_mid.dash_newproduct.benchmark_sku IS 'Benchmark SKU.';
COMMENT ON COLUMN retail_mid.dash_newproduct.launch_date IS 'Launch date.';
COMMENT ON COLUMN retail_mid.dash_newproduct.weeks_tracked IS 'Latest week since launch tracked (0-based).';
COMMENT ON COLUMN retail_mid.dash_newproduct.stage IS 'Stage at that week.';
COMMENT ON COLUMN retail_mid.dash_newproduct.exposed_cum IS 'Attraction: customers exposed since launch.';
COMMENT ON COLUMN retail_mid.dash_newproduct.visitors_cum IS 'Attraction: customers visiting since launch.';
COMMENT ON COLUMN retail_mid.dash_newproduct.trial_buyers_cum IS 'Acceptance: trial buyers since launch.';
COMMENT ON COLUMN retail_mid.dash_newproduct.trial_rate IS 'Trial buyers / exposed customers.';
COMMENT ON COLUMN retail_mid.dash_newproduct.trial_rate_target IS 'Target trial rate of the type.';
COMMENT ON COLUMN retail_mid.dash_newproduct.repeat_buyers_cum IS 'Activation: repeat buyers since launch.';
COMMENT ON COLUMN retail_mid.dash_newproduct.repeat_rate IS 'Repeat buyers / trial buyers.';
COMMENT ON COLUMN retail_mid.dash_newproduct.repeat_rate_target IS 'Target repeat rate of the type.';
COMMENT ON COLUMN retail_mid.dash_newproduct.stores_selling_cum IS 'Allocation: stores that have sold it.';
COMMENT ON COLUMN retail_mid.dash_newproduct.distribution IS 'Stores that have sold it / open stores.';
COMMENT ON COLUMN retail_mid.dash_newproduct.distribution_target IS 'Target distribution of the type.';
COMMENT ON COLUMN retail_mid.dash_newproduct.stockout_store_days IS 'Store-days out of stock since launch.';
COMMENT ON COLUMN retail_mid.dash_newproduct.units_cum IS 'Net units since launch.';
COMMENT ON COLUMN retail_mid.dash_newproduct.bm_units_cum IS 'The benchmark''s units at the same age.';
COMMENT ON COLUMN retail_mid.dash_newproduct.volume_index IS 'units_cum / bm_units_cum.';
COMMENT ON COLUMN retail_mid.dash_newproduct.volume_index_target IS 'Target volume index of the type.';
COMMENT ON COLUMN retail_mid.dash_newproduct.quadrant IS 'Quadrant of the competitiveness matrix (newproduct_competitiveness).';
COMMENT ON COLUMN retail_mid.dash_newproduct.refreshed_at IS 'When newproduct_refresh wrote the rows.';

-- ----------------------------------------------------------------- launch-volume estimate from the benchmark
-- Weekly units of weeks known_weeks .. horizon-1 estimated as the benchmark's units at the same age times the ratio
-- of the two products' units over the first known_weeks weeks; the 95% interval treats both early totals and each
-- week's units as Poisson (delta method on the log ratio). The naive estimate repeats the mean of the known weeks.
CREATE FUNCTION retail_mid.newproduct_estimate(brand text, sku_id text, known_weeks int DEFAULT 4, horizon int DEFAULT 26)
RETURNS TABLE (week int, benchmark_units numeric, scale float8, estimate float8, estimate_low float8, estimate_high float8,
               naive float8, actual numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE b text := brand; s text := sku_id; l record; v_end date; ui numeric; ub numeric; r float8; v float8; naive_m float8; seen int;
        bus numeric[]; aus numeric[];
BEGIN
    IF brand IS NULL OR sku_id IS NULL OR known_weeks IS NULL OR horizon IS NULL THEN
        RAISE EXCEPTION 'newproduct_estimate arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF known_weeks < 1 OR horizon <= known_weeks OR horizon > 520 THEN
        RAISE EXCEPTION 'need 1 <= known_weeks < horizon <= 520' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO l FROM retail_mid.newproduct_launch nl WHERE nl.brand = b AND nl.sku_id = s;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown new product "%" of brand "%"', s, b USING ERRCODE = 'undefined_object';
    END IF;
    IF l.benchmark_sku IS NULL THEN
        RAISE EXCEPTION 'new product "%" has no benchmark', s USING ERRCODE = 'no_data_found',
            HINT = 'The estimate scales the benchmark''s curve: set newproduct.benchmark_sku.';
    END IF;
    v_end := retail_mid.newproduct_data_end(b);
    IF l.launch_date IS NULL OR v_end IS NULL OR l.launch_date > v_end THEN
        RAISE EXCEPTION 'new product "%" of brand "%" is not launched in the data', s, b USING ERRCODE = 'invalid_parameter_value';
    END IF;
    seen := (v_end - l.launch_date + 1) / 7;
    IF seen < known_weeks THEN
        RAISE EXCEPTION 'new product "%" has % full weeks of sales, fewer than known_weeks (%)', s, seen, known_weeks USING ERRCODE = 'no_data_found';
    END IF;
    IF l.benchmark_launch_date IS NULL OR (v_end - l.benchmark_launch_date + 1) / 7 < horizon THEN
        RAISE EXCEPTION 'benchmark "%" has fewer than % weeks of sales since its launch', l.benchmark_sku, horizon USING ERRCODE = 'no_data_found',
            DETAIL = format('Benchmark launch date %s, trade data up to %s.', coalesce(l.benchmark_launch_date::text, 'unknown'), v_end);
    END IF;
    SELECT array_agg(x.bu ORDER BY x.w), array_agg(x.au ORDER BY x.w) INTO bus, aus
      FROM (SELECT w,
                   coalesce((SELECT sum(d.quantity) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b AND d.sku_id = l.benchmark_sku
                               AND d.dt >= l.benchmark_launch_date + 7 * w AND d.dt < l.benchmark_launch_date + 7 * w + 7), 0) AS bu,
                   CASE WHEN w < seen THEN coalesce((SELECT sum(d.quantity) FROM retail_mid.dws_trade_sku_store_1d d WHERE d.brand = b AND d.sku_id = s
                               AND d.dt >= l.launch_date + 7 * w AND d.dt < l.launch_date + 7 * w + 7), 0) END AS au
              FROM generate_series(0, horizon - 1) w) x;
    SELECT sum(aus[w + 1]), sum(bus[w + 1]), avg(aus[w + 1]) INTO ui, ub, naive_m FROM generate_series(0, known_weeks - 1) w;
    IF ub <= 0 THEN
        RAISE EXCEPTION 'benchmark "%" sold nothing in its first % weeks', l.benchmark_sku, known_weeks USING ERRCODE = 'no_data_found';
    END IF;
    r := ui / ub;
    v := 1.0 / greatest(ui, 0.5) + 1.0 / ub;        -- variance of log r (Poisson counts)
    RETURN QUERY
    SELECT w, bus[w + 1], r, r * bus[w + 1], greatest(0, r * bus[w + 1] - 1.96 * sqrt((r * bus[w + 1]) ^ 2 * v + r * bus[w + 1])),
           r * bus[w + 1] + 1.96 * sqrt((r * bus[w + 1]) ^ 2 * v + r * bus[w + 1]), naive_m, aus[w + 1]
      FROM generate_series(known_weeks, horizon - 1) w ORDER BY w;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_estimate(text, text, int, int) IS 'Launch-volume estimate from the benchmark (analogous product): for weeks known_weeks..horizon-1 since launch, the benchmark''s net units at the same age times scale = the new product''s units over its first known_weeks weeks / the benchmark''s, with a 95% interval (Poisson counts, delta method on log scale, plus the week''s own Poisson noise); naive = the mean weekly units of the known weeks; actual when observed. Unknown new product 42704, no benchmark, too few weeks of the product or of the benchmark P0002, not launched 22023.';

CREATE FUNCTION retail_mid.newproduct_backtest(brand text, known_weeks int DEFAULT 4, horizon int DEFAULT 26)
RETURNS TABLE (sku_id text, benchmark_sku text, scale float8, actual numeric, estimate float8, estimate_low float8, estimate_high float8,
               naive float8, estimate_rel_error float8, naive_rel_error float8, estimate_mase float8, naive_mase float8, in_interval boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE b text := brand; l record; v_end date; e record; mae_scale float8;
BEGIN
    IF brand IS NULL OR known_weeks IS NULL OR horizon IS NULL THEN
        RAISE EXCEPTION 'newproduct_backtest arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF known_weeks < 2 OR horizon <= known_weeks OR horizon > 520 THEN
        RAISE EXCEPTION 'need 2 <= known_weeks < horizon <= 520' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_end := retail_mid.newproduct_data_end(b);
    FOR l IN SELECT * FROM retail_mid.newproduct_launch nl
              WHERE nl.brand = b AND nl.benchmark_sku IS NOT NULL AND nl.launch_date IS NOT NULL AND nl.benchmark_launch_date IS NOT NULL
                AND (v_end - nl.launch_date + 1) / 7 >= horizon AND (v_end - nl.benchmark_launch_date + 1) / 7 >= horizon
              ORDER BY nl.sku_id LOOP
        -- MASE scale: mean absolute week-on-week change of the known weeks (the in-sample naive one-step error)
        SELECT avg(abs(x.q - x.p)) INTO mae_scale
          FROM (SELECT sum(d.quantity) FILTER (WHERE d.dt >= l.launch_date + 7 * w AND d.dt < l.launch_date + 7 * w + 7) AS q,
                       sum(d.quantity) FILTER (WHERE d.dt >= l.launch_date + 7 * (w - 1) AND d.dt < l.launch_date + 7 * w) AS p
                  FROM generate_series(1, known_weeks - 1) w, retail_mid.dws_trade_sku_store_1d d
                 WHERE d.brand = b AND d.sku_id = l.sku_id AND d.dt >= l.launch_date AND d.dt < l.launch_date + 7 * known_weeks
                 GROUP BY w) x;
        SELECT max(t.scale) AS scale, sum(t.actual) AS actual, sum(t.estimate) AS est, sum(t.naive) AS nv,
               avg(abs(t.estimate - t.actual)) AS mae_e, avg(abs(t.naive - t.actual)) AS mae_n,
               sum(t.benchmark_units) AS bu
          INTO e FROM retail_mid.newproduct_estimate(b, l.sku_id, known_weeks, horizon) t;
        -- the interval of the total: the delta method of newproduct_estimate on the summed benchmark units
        RETURN QUERY
        SELECT l.sku_id, l.benchmark_sku, e.scale, e.actual, e.est,
               greatest(0, e.est - 1.96 * sqrt(e.est ^ 2 * iv.lv + e.est)), e.est + 1.96 * sqrt(e.est ^ 2 * iv.lv + e.est),
               e.nv, abs(e.est - e.actual) / nullif(e.actual, 0), abs(e.nv - e.actual) / nullif(e.actual, 0),
               e.mae_e / nullif(mae_scale, 0), e.mae_n / nullif(mae_scale, 0),
               e.actual BETWEEN greatest(0, e.est - 1.96 * sqrt(e.est ^ 2 * iv.lv + e.est)) AND e.est + 1.96 * sqrt(e.est ^ 2 * iv.lv + e.est)
          FROM (SELECT 1.0 / greatest(sum(d.quantity) FILTER (WHERE d.sku_id = l.sku_id), 0.5)
                       + 1.0 / nullif(sum(d.quantity) FILTER (WHERE d.sku_id = l.benchmark_sku), 0) AS lv
                  FROM retail_mid.dws_trade_sku_store_1d d
                 WHERE d.brand = b AND ((d.sku_id = l.sku_id AND d.dt >= l.launch_date AND d.dt < l.launch_date + 7 * known_weeks)
                                     OR (d.sku_id = l.benchmark_sku AND d.dt >= l.benchmark_launch_date AND d.dt < l.benchmark_launch_date + 7 * known_weeks))) iv;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_backtest(text, int, int) IS 'Scores the launch-volume estimate on every new product of a brand with a benchmark and horizon full weeks observed (its own and its benchmark''s): each is held back after known_weeks weeks, and the units of weeks known_weeks..horizon-1 are estimated from the benchmark (newproduct_estimate) and naively (the known weeks'' mean). Per SKU: the totals, the 95% interval of the estimate''s total and whether it holds the actual, relative errors of the totals, and MASE of the weekly errors (scaled by the known weeks'' mean absolute week-on-week change).';

-- ----------------------------------------------------------------- potential customers of a store
-- The brand's customers whose home store lies within radius_km of a store (great-circle distance between the stores'
-- points in dim_store; customers have no location of their own).
CREATE FUNCTION retail_mid.newproduct_near_customers(brand text, store_id text, radius_km float8)
RETURNS TABLE (customer_key int4, home_store_id text, distance_km float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT c.customer_key, min(c.home_store_id), min(ST_Distance(h.geom::geography, s.geom::geography)) / 1000
      FROM retail_mid.dim_store s
      JOIN retail_mid.dim_store h ON h.brand = s.brand AND h.is_current AND h.geom IS NOT NULL
                                  AND ST_DWithin(h.geom::geography, s.geom::geography, newproduct_near_customers.radius_km * 1000)
      JOIN retail_mid.dim_customer c ON c.brand = s.brand AND c.home_store_id = h.store_id AND c.customer_key IS NOT NULL
     WHERE s.brand = newproduct_near_customers.brand AND s.store_id = newproduct_near_customers.store_id AND s.is_current
     GROUP BY c.customer_key;
END;
COMMENT ON FUNCTION retail_mid.newproduct_near_customers(text, text, float8) IS 'The brand''s customers (dim_customer) whose home store lies within radius_km of a store (dim_store points, ST_DWithin on geography), with their home store and its distance in km; internal to newproduct_potential_customers.';

CREATE FUNCTION retail_mid.newproduct_potential_customers(brand text, store_id text, sku_id text, size int DEFAULT 100,
                                                         radius_km float8 DEFAULT 5, tags text[] DEFAULT NULL, buckets int DEFAULT 5)
RETURNS TABLE (customer_key int4, home_store_id text, distance_km float8, score float8, rank bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE b text := brand; st text := store_id; s text := sku_id; seed retail_mid.rbitmap; base retail_mid.rbitmap;
        t text[]; bench text;
BEGIN
    IF brand IS NULL OR store_id IS NULL OR sku_id IS NULL OR size IS NULL OR radius_km IS NULL OR buckets IS NULL THEN
        RAISE EXCEPTION 'newproduct_potential_customers arguments must not be null (tags may be)' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF size < 1 OR NOT (radius_km >= 0 AND radius_km < 20000) THEN
        RAISE EXCEPTION 'size must be positive and radius_km between 0 and 20000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.dim_store d WHERE d.brand = b AND d.store_id = st AND d.is_current) THEN
        RAISE EXCEPTION 'unknown store "%" of brand "%"', st, b USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT retail_mid.brand_visible(b) THEN
        RAISE EXCEPTION 'brand "%" is not visible to the current user', b USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM retail_mid.dim_store d WHERE d.brand = b AND d.store_id = st AND d.is_current AND d.geom IS NULL) THEN
        RAISE EXCEPTION 'store "%" has no location', st USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Load the store''s coordinates (geom) and run refresh.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retail_mid.dim_product p WHERE p.brand = b AND p.sku_id = s AND p.is_current) THEN
        RAISE EXCEPTION 'unknown SKU "%" of brand "%"', s, b USING ERRCODE = 'undefined_object';
    END IF;
    t := retail_mid.insight_tags(tags);
    -- the seed: the product's buyers, else (not sold yet) its benchmark's
    seed := (SELECT retail_mid.rb_build_agg(l.customer_key) FROM retail_mid.dwd_trade_order_line_di l
              WHERE l.brand = b AND l.sku_id = s AND l.line_type = 'sale' AND l.customer_key IS NOT NULL);
    IF seed IS NULL THEN
        SELECT n.benchmark_sku INTO bench FROM retail_mid.newproduct n WHERE n.brand = b AND n.sku_id = s;
        seed := (SELECT retail_mid.rb_build_agg(l.customer_key) FROM retail_mid.dwd_trade_order_line_di l
                  WHERE l.brand = b AND l.sku_id = bench AND l.line_type = 'sale' AND l.customer_key IS NOT NULL);
    END IF;
    IF seed IS NULL THEN
        RAISE EXCEPTION 'SKU "%" has no buyers yet, nor a benchmark with buyers', s USING ERRCODE = 'no_data_found',
            HINT = 'Name a benchmark SKU in retail_mid.newproduct.';
    END IF;
    -- the base: the brand's customers whose home store lies within radius_km of the store
    base := (SELECT retail_mid.rb_build_agg(n.customer_key) FROM retail_mid.newproduct_near_customers(b, st, radius_km) n);
    IF base IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT l.customer_key, n.home_store_id, n.distance_km, l.score, l.rank
      FROM retail_mid.audience_lookalike_scores(seed, retail_mid.rb_or(base, seed), t, b, size, buckets) l
      JOIN retail_mid.newproduct_near_customers(b, st, radius_km) n ON n.customer_key = l.customer_key
     ORDER BY l.rank;
END;
$$;
COMMENT ON FUNCTION retail_mid.newproduct_potential_customers(text, text, text, int, float8, text[], int) IS 'Potential customers of a store for a new product (门店新品潜客): the brand''s customers whose home store lies within radius_km of the store (dim_store geometry, ST_DWithin on geography) and who have not bought the product, ranked by how much their tags look like the product''s buyers (its benchmark''s while it has none), by the lookalike scoring of audience_lookalike (log-odds of each tag value or numeric bucket among the buyers against the brand''s other customers); the size best. tags NULL: every tag the caller may read. Unknown store or SKU 42704, a store without location or a bad size or radius 22023, no buyers P0002.';

-- ----------------------------------------------------------------- synthetic launches
-- Adds launches with known truth to a brand made by generate_synthetic: two benchmark SKUs (NPB1 rising to a peak,
-- NPB2 fading from the start: Bass curves over horizon_weeks) and `launches` new SKUs (NP01 ...) each following
-- its benchmark's curve with a scale factor on its trial buyers, with a known trial share (trial buyers / exposed
-- customers) and repeat share (repeat buyers / trial buyers). Trial buyers lean to women (the tags of
-- newproduct_potential_customers have something to find); every purchase is one unit at the customer's home store
-- within horizon_weeks of the launch; exposures and views as behaviour events; daily store stock with planted
-- stock-outs. Registers the new products (newproduct, the '*' types) and returns the truth.
CREATE FUNCTION retail_mid.generate_synthetic_launches(brand text DEFAULT 'synthetic', launches int DEFAULT 8, seed bigint DEFAULT 42,
                                                       horizon_weeks int DEFAULT 26, benchmark_buyers int DEFAULT 300)
RETURNS TABLE (sku_id text, role text, benchmark_sku text, np_type text, launch_date date, scale float8, trial_share float8,
               repeat_share float8, bass_p float8, bass_q float8, exposed int, trial_buyers int, repeat_buyers int)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    b text := brand; s bigint := seed; h int := horizon_weeks; v_job bigint; v_load bigint; v_from date; v_to date; v_cust int;
    v_cat record; k int; n_orders bigint;
BEGIN
    IF brand IS NULL OR launches IS NULL OR seed IS NULL OR horizon_weeks IS NULL OR benchmark_buyers IS NULL THEN
        RAISE EXCEPTION 'generate_synthetic_launches arguments must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF launches NOT BETWEEN 1 AND 99 OR horizon_weeks NOT BETWEEN 4 AND 104 OR benchmark_buyers NOT BETWEEN 10 AND 1000000 THEN
        RAISE EXCEPTION 'launches must be 1 to 99, horizon_weeks 4 to 104 and benchmark_buyers 10 to 1000000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(o.order_time)::date, max(o.order_time)::date INTO v_from, v_to FROM retail_mid.ods_order o
     WHERE o.brand = b AND o.order_id NOT LIKE 'NP%' AND o.order_id NOT LIKE 'MM%';
    SELECT count(*) INTO v_cust FROM retail_mid.ods_customer c WHERE c.brand = b;
    IF v_from IS NULL OR v_cust = 0 OR NOT EXISTS (SELECT 1 FROM retail_mid.ods_site t WHERE t.brand = b AND t.kind = 'store') THEN
        RAISE EXCEPTION 'unknown brand "%"', brand USING ERRCODE = 'undefined_object',
            DETAIL = 'The brand has no orders, customers or stores in the ODS.', HINT = 'Run generate_synthetic for the brand first.';
    END IF;
    IF v_to - v_from + 1 < 7 * (h + 3) THEN
        RAISE EXCEPTION 'the brand''s % days of orders are too few for launches of % weeks', v_to - v_from + 1, h
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Generate at least %s days.', 7 * (h + 3));
    END IF;
    v_job := retail_mid.job_start('generate_synthetic_launches', jsonb_build_object('brand', brand, 'launches', launches, 'seed', seed,
                                                                                    'horizon_weeks', h, 'benchmark_buyers', benchmark_buyers));
    DELETE FROM retail_mid.newproduct n WHERE n.brand = b;
    DELETE FROM retail_mid.ods_order_line l WHERE l.brand = b AND l.order_id LIKE 'NP%';
    DELETE FROM retail_mid.ods_order o WHERE o.brand = b AND o.order_id LIKE 'NP%';
    DELETE FROM retail_mid.ods_behavior_event e WHERE e.brand = b AND e.object_attribute = 'sku_id' AND e.object_value LIKE 'NP%';
    DELETE FROM retail_mid.ods_inventory_snapshot i WHERE i.brand = b AND i.sku_id LIKE 'NP%';
    DELETE FROM retail_mid.ods_product p WHERE p.brand = b AND p.sku_id LIKE 'NP%';
    INSERT INTO retail_mid.ods_load (source, path, brand) VALUES ('synthetic_launches', 'seed=' || seed, b) RETURNING load_id INTO v_load;

    -- the plan: k = 1, 2 the benchmarks, k = 2 + i the new products
    CREATE TEMP TABLE rm_np_plan ON COMMIT DROP AS
    SELECT k, CASE WHEN k <= 2 THEN 'NPB' || k ELSE 'NP' || lpad((k - 2)::text, 2, '0') END AS sku,
           CASE WHEN k <= 2 THEN 'benchmark' ELSE 'new' END AS role,
           CASE WHEN k <= 2 THEN NULL ELSE 'NPB' || (1 + (k - 3) % 2) END AS bench,
           CASE WHEN k <= 2 THEN NULL ELSE (ARRAY['follower', 'improved', 'innovative'])[1 + (k - 3) % 3] END AS np_type,
           CASE WHEN k <= 2 THEN v_from + 7
                ELSE v_from + 14 + floor(retail_mid.synth_uniform(s, 3001, k) * (v_to - 7 * h - v_from - 13))::int END AS launch,
           CASE WHEN k <= 2 THEN 1.0 ELSE 0.5 + retail_mid.synth_uniform(s, 3002, k) END AS scale,
           CASE WHEN k <= 2 THEN 0.30 ELSE 0.25 + 0.25 * retail_mid.synth_uniform(s, 3003, k) END AS trial_share,
           CASE WHEN k <= 2 THEN 0.30 ELSE 0.15 + 0.35 * retail_mid.synth_uniform(s, 3004, k) END AS repeat_share,
           CASE WHEN (CASE WHEN k <= 2 THEN k ELSE 1 + (k - 3) % 2 END) = 1 THEN 0.04 ELSE 0.25 END AS p,
           CASE WHEN (CASE WHEN k <= 2 THEN k ELSE 1 + (k - 3) % 2 END) = 1 THEN 0.45 ELSE 0.05 END AS q
      FROM generate_series(1, launches + 2) k;
    ALTER TABLE rm_np_plan ADD COLUMN n int, ADD COLUMN e int, ADD COLUMN r int;
    UPDATE rm_np_plan SET n = round(benchmark_buyers * scale)::int;
    UPDATE rm_np_plan SET e = round(n / trial_share)::int, r = round(n * repeat_share)::int;
    IF (SELECT max(e) FROM rm_np_plan) > v_cust THEN
        RAISE EXCEPTION 'the brand has % customers, launches need up to %', v_cust, (SELECT max(e) FROM rm_np_plan)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Lower benchmark_buyers or generate more customers.';
    END IF;
    -- Bass adoption: the share of the horizon's trial buyers who have tried by the end of week w
    CREATE TEMP TABLE rm_np_cdf ON COMMIT DROP AS
    SELECT pl.k, w, ((1 - exp(-(pl.p + pl.q) * (w + 1))) / (1 + pl.q / pl.p * exp(-(pl.p + pl.q) * (w + 1))))
                    / ((1 - exp(-(pl.p + pl.q) * h)) / (1 + pl.q / pl.p * exp(-(pl.p + pl.q) * h))) AS cum
      FROM rm_np_plan pl, generate_series(0, h - 1) w;
    -- customers: exposed = the e first by a hash; trial buyers = the n first of them by a hash that favours women;
    -- repeat buyers = r of the trial buyers with a day left after their trial
    CREATE TEMP TABLE rm_np_cust ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY c.customer_id) AS ci, c.customer_id, c.gender,
           coalesce(c.home_store_id, (SELECT min(t.site_id) FROM retail_mid.ods_site t WHERE t.brand = b AND t.kind = 'store')) AS store
      FROM retail_mid.ods_customer c WHERE c.brand = b;
    CREATE TEMP TABLE rm_np_exp ON COMMIT DROP AS
    SELECT pl.k, x.ci, x.customer_id, x.store,
           row_number() OVER (PARTITION BY pl.k ORDER BY retail_mid.synth_uniform(s, 3010 + pl.k, x.ci)
                                                         - CASE WHEN x.gender = 'F' THEN 0.6 ELSE 0 END, x.ci) <= pl.n AS trial
      FROM rm_np_plan pl
      JOIN (SELECT c.*, pl2.k AS kk, row_number() OVER (PARTITION BY pl2.k ORDER BY retail_mid.synth_uniform(s, 3020 + pl2.k, c.ci), c.ci) AS rk
              FROM rm_np_cust c, rm_np_plan pl2) x ON x.kk = pl.k AND x.rk <= pl.e;
    ALTER TABLE rm_np_exp ADD COLUMN day int, ADD COLUMN repeat_day int;
    -- trial day: the week from the Bass curve (inverse of cum), a uniform day within it; others: an exposure day
    UPDATE rm_np_exp x SET day = CASE WHEN x.trial
        THEN 7 * (SELECT coalesce(min(c.w), h - 1) FROM rm_np_cdf c WHERE c.k = x.k AND c.cum > retail_mid.synth_uniform(s, 3030 + x.k, x.ci))
             + floor(7 * retail_mid.synth_uniform(s, 3040 + x.k, x.ci))::int
        ELSE floor(7 * h * retail_mid.synth_uniform(s, 3050 + x.k, x.ci))::int END;
    UPDATE rm_np_exp x SET repeat_day = x.day + 1 + floor((7 * h - 2 - x.day) * retail_mid.synth_uniform(s, 3060 + x.k, x.ci))::int
      FROM (SELECT y.k, y.ci, row_number() OVER (PARTITION BY y.k ORDER BY retail_mid.synth_uniform(s, 3070 + y.k, y.ci), y.ci) AS rk
              FROM rm_np_exp y WHERE y.trial AND y.day < 7 * h - 1) q
      JOIN rm_np_plan pl ON pl.k = q.k
     WHERE q.k = x.k AND q.ci = x.ci AND q.rk <= pl.r;

    SELECT * INTO v_cat FROM retail_mid.ods_product p WHERE p.brand = b AND p.sku_id NOT LIKE 'NP%' ORDER BY p.sku_id LIMIT 1;
    INSERT INTO retail_mid.ods_product (brand, sku_id, sku_name, category_l1, category_l2, category_l3, category_l4, product_brand,
                                        list_price, load_id, attributes)
    SELECT b, pl.sku, CASE WHEN pl.role = 'benchmark' THEN 'Benchmark ' ELSE 'New product ' END || pl.sku,
           v_cat.category_l1, v_cat.category_l2, v_cat.category_l3, v_cat.category_l4, v_cat.product_brand, 20, v_load,
           jsonb_build_object('launch_date', pl.launch)
      FROM rm_np_plan pl;
    INSERT INTO retail_mid.newproduct (brand, sku_id, np_type, benchmark_sku, launch_date, load_id)
    SELECT b, pl.sku, pl.np_type, pl.bench, NULL, v_load FROM rm_np_plan pl WHERE pl.role = 'new';
    -- purchases: the trial, and the repeat
    CREATE TEMP TABLE rm_np_buy ON COMMIT DROP AS
    SELECT x.k, pl.sku, x.customer_id, x.store, pl.launch + x.day AS d, 1 AS nth FROM rm_np_exp x JOIN rm_np_plan pl USING (k) WHERE x.trial
    UNION ALL
    SELECT x.k, pl.sku, x.customer_id, x.store, pl.launch + x.repeat_day, 2 FROM rm_np_exp x JOIN rm_np_plan pl USING (k) WHERE x.repeat_day IS NOT NULL;
    INSERT INTO retail_mid.ods_order (brand, order_id, id_type, customer_id, order_time, channel, store_id, status, load_id)
    SELECT b, 'NP' || y.k || '-' || y.customer_id || '-' || y.nth, 'member_id', y.customer_id, y.d + time '12:00', 'store', y.store, 'paid', v_load
      FROM rm_np_buy y;
    INSERT INTO retail_mid.ods_order_line (brand, order_id, line_no, sku_id, quantity, unit_price, discount, load_id)
    SELECT b, 'NP' || y.k || '-' || y.customer_id || '-' || y.nth, 1, y.sku, 1, 20, 0, v_load FROM rm_np_buy y;
    GET DIAGNOSTICS n_orders = ROW_COUNT;
    -- attraction: every exposed customer sees the product (a trial buyer on the trial day); trial buyers and a third
    -- of the others view it
    INSERT INTO retail_mid.ods_behavior_event (brand, id_type, id_value, event_time, event_type, object_attribute, object_value, channel, load_id)
    SELECT b, 'member_id', x.customer_id, pl.launch + x.day + ev.t, ev.type, 'sku_id', pl.sku, 'app', v_load
      FROM rm_np_exp x JOIN rm_np_plan pl USING (k),
           LATERAL (VALUES ('exposure', time '09:00', true),
                           ('view', time '10:00', x.trial OR retail_mid.synth_uniform(s, 3080 + x.k, x.ci) < 0.3)) ev(type, t, present)
     WHERE ev.present;
    -- stock: every store holds every launched product daily over the horizon, out of stock on 3% of the days
    INSERT INTO retail_mid.ods_inventory_snapshot (brand, site_id, sku_id, snapshot_date, on_hand, load_id)
    SELECT b, t.site_id, pl.sku, pl.launch + d,
           CASE WHEN retail_mid.synth_uniform(s, 3090 + pl.k, hashtext(t.site_id)::bigint * 1000 + d) < 0.03 THEN 0 ELSE 20 END, v_load
      FROM rm_np_plan pl, retail_mid.ods_site t, generate_series(0, 7 * h - 1) d
     WHERE t.brand = b AND t.kind = 'store' AND pl.launch + d <= v_to;
    UPDATE retail_mid.ods_load SET rows_read = n_orders, rows_loaded = n_orders WHERE load_id = v_load;
    RAISE NOTICE 'generate_synthetic_launches: 2 benchmarks, % new products, % purchases', launches, n_orders;
    PERFORM retail_mid.job_finish(v_job, n_orders, jsonb_build_object('launches', launches));
    RETURN QUERY
    SELECT pl.sku, pl.role, pl.bench, pl.np_type, pl.launch, pl.scale::float8, pl.trial_share::float8, pl.repeat_share::float8,
           pl.p::float8, pl.q::float8, pl.e, pl.n, pl.r
      FROM rm_np_plan pl ORDER BY pl.k;
    DROP TABLE rm_np_plan, rm_np_cdf, rm_np_cust, rm_np_exp, rm_np_buy;
END;
$$;
COMMENT ON FUNCTION retail_mid.generate_synthetic_launches(text, int, bigint, int, int) IS 'Adds new-product launches with known truth to a brand made by generate_synthetic: benchmarks NPB1 (Bass p 0.04, q 0.45: rises to a peak) and NPB2 (p 0.25, q 0.05: fades) with benchmark_buyers trial buyers each, and new SKUs NP01.. following their benchmark''s curve with trial buyers = scale x the benchmark''s, a known trial share (of the exposed customers) and repeat share (of the trial buyers), purchases within horizon_weeks, exposure and view events, daily store stock with stock-outs; registers them in newproduct. Returns the truth per SKU.';
